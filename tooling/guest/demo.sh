#!/bin/sh
# What `make demo` shows from inside the fork kernel.  Lines that start with
# "DEMO " are printed by the host in its summary.
echo "DEMO kernel: $(uname -r) ($(nproc) vCPUs, $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo))"
echo "DEMO Rust: $(grep -c kvm_shrinker /proc/kallsyms) symbols of the rust/kvm_shrinker crate in the kernel"
echo "DEMO NUMA nodes: $(ls -d /sys/devices/system/node/node* | wc -l)"
if [ -d /sys/module/kvm_amd ]; then
	echo "DEMO kvm_amd: loaded, npt=$(cat /sys/module/kvm_amd/parameters/npt)" \
		"nested=$(cat /sys/module/kvm_amd/parameters/nested)" \
		"(npt=N: shadow paging; npt=Y: TDP, nested shadow pages for L2)"
else
	echo "DEMO kvm_amd: NOT loaded"
	exit 1
fi
echo "DEMO memory controller: $(grep -qw memory /sys/fs/cgroup/cgroup.controllers && echo cgroup v2 memory available || echo MISSING)"
echo "DEMO shrinker_debugfs: $(ls /sys/kernel/debug/shrinker | wc -l) shrinkers registered"
mmu=none
for d in /sys/kernel/debug/shrinker/kvm-mmu-* /sys/kernel/debug/shrinker/x86-mmu-*; do
	[ -d "$d" ] || continue
	case "$d" in
	*/kvm-mmu-*) mmu="$(basename "$d") (memcg-aware, Rust)" ;;
	*) mmu="$(basename "$d") (the C shrinker, not memcg-aware)" ;;
	esac
done
[ "$mmu" = none ] && mmu="none (since Linux 6.13 KVM has no MMU shrinker without ours)"
echo "DEMO MMU shrinker: $mmu"
# Two VMs in two cgroups; memory.reclaim in A; drop_caches; memory.max.
# The host turns its "# before/after" lines into the demo's table.  The
# arguments go to the test: -N runs L2 guests (nested).
# (x86_64/ up to Linux 6.12, x86/ since 6.13)
t=$(cd /kselftests && ls x86*/mmu_shrinker_memcg_test | head -n 1)
/kselftests/$t "$@"
rc=$?
echo "DEMO KVM selftest $t${*:+ $*}: exit $rc"
exit $rc
