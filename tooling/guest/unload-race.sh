#!/bin/sh
# kvm.ko unload while reclaim runs.  Booted with single-threaded TCG and
# without the idle VM that other runs hold (multi-threaded TCG oopses when
# KVM creates its first VM or destroys its last one; see README).  Each
# round loads kvm_amd (npt=0), races VMs against reclaim for a few seconds
# (mmu_shrinker_memcg_test -t), then unloads kvm_amd and kvm while another
# process keeps calling the shrinkers (drop_caches, the kvm-mmu scan file).
rounds=${1:-3}
root_ino=$(stat -c %i /sys/fs/cgroup 2>/dev/null || echo 0)
i=0
while [ "$i" -lt "$rounds" ]; do
	i=$((i + 1))
	if ! modprobe kvm_amd npt=0 nested=1; then
		echo "round $i: modprobe kvm_amd failed"
		exit 1
	fi
	if ! /kselftests/x86*/mmu_shrinker_memcg_test -t 3 >/tmp/race.out 2>&1; then
		sed 's/^/# /' /tmp/race.out
		echo "round $i: mmu_shrinker_memcg_test -t 3 failed"
		exit 1
	fi
	grep '^# race' /tmp/race.out
	(
		while :; do
			echo 2 > /proc/sys/vm/drop_caches
			for f in /sys/kernel/debug/shrinker/kvm-mmu-*/scan; do
				echo "$root_ino 0 64" 2>/dev/null > "$f"
			done
		done
	) 2>/dev/null &
	loop=$!
	sleep 0.3
	rmmod kvm_amd && rmmod kvm
	rc=$?
	kill "$loop"
	wait "$loop" 2>/dev/null
	if [ "$rc" -ne 0 ] || [ -d /sys/module/kvm ]; then
		echo "round $i: unloading kvm failed (rmmod status $rc)"
		exit 1
	fi
	echo "round $i: VMs raced with reclaim, then kvm was unloaded under reclaim"
done
echo "KFORK-UNLOAD-RACE-OK $rounds"
