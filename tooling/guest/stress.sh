#!/bin/sh
# make stress: generations of `mmu_shrinker_memcg_test -S` (eight VMs in
# four cgroups under memory.reclaim, drop_caches, shrinker_debugfs scans,
# cgroup churn, VM churn, memory.high and memory.max squeezes; see
# run_stress() in the test) for TOTAL seconds in all, GEN seconds each.
# Between generations kvm_amd is unloaded while another process keeps
# calling the shrinkers, and after every second generation kvm.ko too.
# Odd generations load kvm_amd with npt=0 (the VMs' shadow pages, and L0's
# shadows of L2's page tables), even ones with npt=1 (the TDP MMU, and
# nested shadow pages of L1's NPT).  Booted with single-threaded TCG and
# without the idle VM (see unload-race.sh).
#
# Prints "KFORK-STRESS GEN NAME VALUE" for each count, and at the end
# "KFORK-STRESS-END GENERATIONS FAILED" (FAILED 0 or 1).
total=${1:-180}
gen_secs=${2:-60}
test=$(ls /kselftests/x86*/mmu_shrinker_memcg_test)
root_ino=$(stat -c %i /sys/fs/cgroup 2>/dev/null || echo 0)
up() { cut -d. -f1 /proc/uptime; }
end=$(($(up) + total))
gen=0
failed=0

stat_line() { echo "KFORK-STRESS $gen $1 $2"; }

while [ "$failed" -eq 0 ]; do
	# What a generation needs besides its run: module loads and unloads,
	# VM teardown, and the test's cgroup setup.
	secs=$((end - $(up) - 20))
	[ "$secs" -gt "$gen_secs" ] && secs=$gen_secs
	[ "$secs" -ge 15 ] || break
	gen=$((gen + 1))
	npt=$(((gen + 1) % 2))
	if ! modprobe kvm_amd npt=$npt nested=1; then
		echo "generation $gen: modprobe kvm_amd npt=$npt failed"
		failed=1
		break
	fi
	stat_line kvm_amd_loads 1
	echo "generation $gen: kvm_amd npt=$npt, $secs s"
	timeout $((secs + 180)) "$test" -S "$secs" >/tmp/stress.out 2>&1 </dev/null
	rc=$?
	pkill -9 -f "$test" 2>/dev/null
	sed -n "s/^# stress-stat /KFORK-STRESS $gen /p" /tmp/stress.out
	grep -E '^# stress:|^(not )?ok ' /tmp/stress.out
	if [ "$rc" -ne 0 ]; then
		tail -n 40 /tmp/stress.out | sed 's/^/# /'
		echo "generation $gen: the test exited $rc"
		failed=1
	fi
	(
		while :; do
			echo 6 >/proc/sys/vm/drop_caches
			for f in /sys/kernel/debug/shrinker/kvm-mmu-*/scan; do
				echo "$root_ino 0 1000000" >"$f"
			done
		done
	) 2>/dev/null &
	loop=$!
	sleep 0.3
	if rmmod kvm_amd; then
		stat_line kvm_amd_unloads 1
	else
		echo "generation $gen: rmmod kvm_amd failed"
		failed=1
	fi
	if [ "$failed" -eq 0 ] && [ $((gen % 2)) -eq 0 ]; then
		if rmmod kvm && [ ! -d /sys/module/kvm ]; then
			stat_line kvm_unloads 1
		else
			echo "generation $gen: rmmod kvm failed"
			failed=1
		fi
	fi
	kill "$loop"
	wait "$loop" 2>/dev/null
done
echo "KFORK-STRESS-END $gen $failed"
[ "$failed" -eq 0 ] && [ "$gen" -gt 0 ]
