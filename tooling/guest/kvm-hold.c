// SPDX-License-Identifier: GPL-2.0
/*
 * kfork-kvm-hold: create one idle KVM VM and keep it open until killed.
 *
 * Under multi-threaded QEMU TCG the guest kernel was seen to oops ("int3" in
 * __schedule) when KVM created its first VM or destroyed its last one (see
 * shared/notes/qemu-tcg-kvm.md).  Holding one VM for the whole test run
 * means no test ever creates the first or destroys the last VM.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm;

	if (kvm < 0) {
		perror("kfork-kvm-hold: open /dev/kvm");
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		perror("kfork-kvm-hold: KVM_CREATE_VM");
		return 1;
	}
	printf("kfork-kvm-hold: holding an idle VM (fd %d)\n", vm);
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}
