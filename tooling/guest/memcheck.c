// SPDX-License-Identifier: GPL-2.0
/*
 * PID 1 of the Linux guests that Debian's QEMU runs inside the fork
 * (tooling/guest/realvmm.sh): writes and checks MIB MiB of memory in
 * passes, forever.  Pass N writes 8 words per page, a function of the pass
 * and the page, after checking the words that pass N-1 wrote, so a lost
 * write, a stale page or a page mapped at the wrong address shows up as a
 * wrong word.  It prints one line per pass to the console:
 *
 *   MEMCHECK pass N ok
 *   MEMCHECK FAIL pass N page P word W: got X want Y
 *
 * and powers the guest off after a failure.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MIB 128
#define PAGE 4096UL
#define WORDS 8

static uint64_t word(uint64_t pass, uint64_t page, int w)
{
	uint64_t x = (pass << 40) ^ (page << 8) ^ (uint64_t)w;

	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ULL;
	return x ^ (x >> 29);
}

static void console(void)
{
	int fd;

	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mknod("/dev/console", S_IFCHR | 0600, makedev(5, 1));
	fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
}

int main(void)
{
	size_t pages = (size_t)MIB * 1024 * 1024 / PAGE;
	uint64_t pass, p;
	char *mem;
	int w;

	console();
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("MEMCHECK FAIL mmap of %d MiB\n", MIB);
		goto off;
	}
	printf("MEMCHECK start %d MiB\n", MIB);
	for (pass = 1;; pass++) {
		for (p = 0; p < pages; p++) {
			uint64_t *page = (uint64_t *)(mem + p * PAGE);

			for (w = 0; w < WORDS; w++) {
				uint64_t *x = page + w * (PAGE / 8 / WORDS);

				if (pass > 1 && *x != word(pass - 1, p, w)) {
					printf("MEMCHECK FAIL pass %llu page %llu word %d: got %llx want %llx\n",
					       (unsigned long long)pass,
					       (unsigned long long)p, w,
					       (unsigned long long)*x,
					       (unsigned long long)word(pass - 1, p, w));
					goto off;
				}
				*x = word(pass, p, w);
			}
		}
		printf("MEMCHECK pass %llu ok\n", (unsigned long long)pass);
	}
off:
	sync();
	reboot(RB_POWER_OFF);
	return 1;
}
