#!/bin/sh
# The real-VMM case: Debian's qemu-system-x86_64 with KVM boots two Linux
# guests (the fork's own bzImage; init is memcheck.c, which writes and
# checks 128 MiB in passes) in memory cgroups A and B, inside the fork.
#
#   1. once both guests run, memory.reclaim on A while both run: A's
#      shadow pages (npt=0) or cached MMU pages (npt=1, TDP MMU) must go,
#      B's sec_pagetables must not;
#   2. both QEMUs stopped (SIGSTOP), A reclaimed (memory.reclaim and
#      shrinker_debugfs scans) until its kvm-mmu count stops falling;
#   3. both resumed (SIGCONT): both guests must go on passing their checks.
#
# Usage: realvmm.sh [PASSES]  (passes each guest must complete after the
# resume; default 3).  Prints "realvmm-stat NAME VALUE" lines and
# "KFORK-REALVMM-OK" when every step held; the host fails the run on any
# kernel report in the console (tooling/kforklib/vm.py).
set -u
PASSES=${1:-3}
CG=/sys/fs/cgroup
SHR=/sys/kernel/debug/shrinker
L2=/kfork/l2
WAIT=${KFORK_REALVMM_WAIT:-600}
fail=0

say() { echo "realvmm: $*"; }
note() { echo "realvmm-stat $1 $2"; }
bad() { say "FAIL: $*"; fail=1; }

# On failure: what each guest and its QEMU printed last.
consoles() {
	for v in A B; do
		echo "--- guest $v console (last 40 lines) ---"
		tail -40 "/tmp/$v.log" 2>/dev/null
		echo "--- QEMU $v ---"
		cat "/tmp/$v.qemu" 2>/dev/null
	done
}
trap '[ "$fail" = 0 ] || consoles' EXIT

passes() {
	n=$(grep -c '^MEMCHECK pass [0-9]* ok' "/tmp/$1.log" 2>/dev/null)
	echo "${n:-0}"
}
pt_bytes() { awk '$1 == "sec_pagetables" { print $2 }' "$CG/rv$1/memory.stat"; }

# The count of shrinker $1 (kvm-mmu or kvm-mmu-cache) for cgroup $2, summed
# over nodes (shrinker_debugfs: "<cgroup inode> <node 0> <node 1> ...").
shr_count() {
	ino=$(stat -c %i "$CG/rv$2")
	for d in "$SHR/$1"-[0-9]*; do
		[ -d "$d" ] || continue
		awk -v ino="$ino" '$1 == ino { s = 0; for (i = 2; i <= NF; i++) s += $i; print s; f = 1 }
			END { if (!f) print 0 }' "$d/count"
		return
	done
	echo 0
}

# Scan shrinker $1 for cgroup $2 on every node.
shr_scan() {
	ino=$(stat -c %i "$CG/rv$2")
	for d in "$SHR/$1"-[0-9]*; do
		[ -d "$d" ] || continue
		for n in $(ls -d /sys/devices/system/node/node* | sed 's/.*node//'); do
			echo "$ino $n 1000000" > "$d/scan" 2>/dev/null
		done
	done
}

# The per-VM KVM statistic $2 of QEMU process $1 (KVM's debugfs).
vm_stat() {
	for d in /sys/kernel/debug/kvm/"$1"-*; do
		[ -f "$d/$2" ] && { cat "$d/$2"; return; }
	done
	echo 0
}

# KFORK_REALVMM_FIRMWARE=qboot: qboot and no VGA instead of SeaBIOS and
# its VGA BIOS, whose real-mode code traps to KVM thousands of times: in the
# debug kernel under TCG that alone takes minutes.
FIRMWARE=
[ "${KFORK_REALVMM_FIRMWARE:-}" = qboot ] && FIRMWARE="-bios qboot.rom -vga none"

start_vm() {
	mkdir -p "$CG/rv$1"
	sh -c "echo \$\$ > $CG/rv$1/cgroup.procs; exec qemu-system-x86_64 \
		-enable-kvm -cpu host -m 256M -nographic -monitor none $FIRMWARE \
		-serial file:/tmp/$1.log -nic none \
		-kernel $L2/bzImage -initrd $L2/initrd.cpio \
		-append 'console=ttyS0 panic=-1 rdinit=/init quiet kunit.enable=0'" \
		</dev/null >"/tmp/$1.qemu" 2>&1 &
	eval "pid_$1=$!"
}

# Where guest $1's QEMU is: per thread, its state, CPU ticks (user+system)
# and the kernel function it waits in; the stacks of threads in the kernel.
qemu_state() {
	qs_v=$1
	eval "qs_p=\$pid_$qs_v"
	for qs_t in /proc/"$qs_p"/task/[0-9]*; do
		[ -r "$qs_t/stat" ] || continue
		# shellcheck disable=SC2046
		set -- $(sed 's/.*) //' "$qs_t/stat")
		echo "realvmm: $qs_v thread ${qs_t##*/} $(cat "$qs_t/comm") state $1" \
			"ticks $(($12 + $13)) wchan $(cat "$qs_t/wchan" 2>/dev/null)"
		case "$1" in R|D) sed 's/^/    /' "$qs_t/stack" 2>/dev/null ;; esac
	done
}

# Wait until both guests have completed $1 passes, or fail.
wait_passes() {
	t=0
	while [ "$(passes A)" -lt "$1" ] || [ "$(passes B)" -lt "$1" ]; do
		for v in A B; do
			if grep -q 'MEMCHECK FAIL' "/tmp/$v.log" 2>/dev/null; then
				bad "guest $v: $(grep 'MEMCHECK FAIL' /tmp/$v.log)"
				return 1
			fi
			if grep -q 'Kernel panic' "/tmp/$v.log" 2>/dev/null; then
				bad "guest $v's kernel panicked: $(grep -m1 'Kernel panic' /tmp/$v.log)"
				return 1
			fi
			eval "p=\$pid_$v"
			if ! kill -0 "$p" 2>/dev/null; then
				bad "QEMU of guest $v died: $(tail -5 /tmp/$v.qemu)"
				return 1
			fi
		done
		t=$((t + 1))
		if [ $((t % 60)) = 0 ]; then
			say "waiting for pass $1: A $(passes A), B $(passes B) after ${t}s;" \
				"A's console: $(tail -c 80 /tmp/A.log | tr -cd 'A-Za-z0-9 .:_=-')"
			qemu_state A
			qemu_state B
		fi
		if [ "$t" -ge "$WAIT" ]; then
			bad "guests did not reach $1 passes in ${WAIT}s (A $(passes A), B $(passes B))"
			return 1
		fi
		sleep 1
	done
}

show() {
	for v in A B; do
		eval "p=\$pid_$v"
		say "$1: $v sec_pagetables $(pt_bytes $v) kvm-mmu $(shr_count kvm-mmu $v)" \
		    "kvm-mmu-cache $(shr_count kvm-mmu-cache $v) passes $(passes $v)" \
		    "mmu_shrinker_freed $(vm_stat "$p" mmu_shrinker_freed)"
	done
}

command -v qemu-system-x86_64 >/dev/null || { say "no qemu-system-x86_64"; exit 1; }
[ -e /dev/kvm ] || { say "no /dev/kvm"; exit 1; }
echo +memory > "$CG/cgroup.subtree_control"
# Without the shrinker (the baseline kernel) the same steps run, and only
# the guests' survival is checked.
shrinker=$(ls -d "$SHR"/kvm-mmu-[0-9]* 2>/dev/null)
[ -n "$shrinker" ] || say "no kvm-mmu shrinker: baseline kernel, reclaim is not checked"
start_vm A
start_vm B
say "started QEMU $pid_A (A) and $pid_B (B)"

# Both guests boot and build their shadow pages.
wait_passes 2 || exit 1
show "running"
a0=$(pt_bytes A)
b0=$(pt_bytes B)
ca0=$(shr_count kvm-mmu-cache A)

# 1. Reclaim A while both run.  With npt=1 the guests run on the TDP MMU,
# whose page tables no shrinker frees: then only A's cached pages go.
echo 64M > "$CG/rvA/memory.reclaim" 2>/dev/null
a1=$(pt_bytes A)
b1=$(pt_bytes B)
ca1=$(shr_count kvm-mmu-cache A)
show "after reclaim of A, running"
note running_A_pt_before "$a0"
note running_A_pt_after "$a1"
note running_B_pt_before "$b0"
note running_B_pt_after "$b1"
note running_A_cache_before "$ca0"
note running_A_cache_after "$ca1"
if [ -n "$shrinker" ]; then
	[ "$a1" -lt "$a0" ] || [ "$ca1" -lt "$ca0" ] ||
		bad "reclaim of A while running freed nothing (page tables $a0 -> $a1 bytes, cached pages $ca0 -> $ca1)"
fi
[ $((b1 * 10)) -ge $((b0 * 9)) ] || bad "reclaim of A shrank B's page tables ($b0 -> $b1)"
wait_passes $(($(passes A) + 1)) || exit 1

# 2. Stop both, reclaim A until its count stops falling.
kill -STOP "$pid_A" "$pid_B"
sleep 1
prev=-1
i=0
while [ "$i" -lt 20 ]; do
	echo 64M > "$CG/rvA/memory.reclaim" 2>/dev/null
	shr_scan kvm-mmu A
	shr_scan kvm-mmu-cache A
	c=$(shr_count kvm-mmu A)
	[ "$c" = "$prev" ] && break
	prev=$c
	i=$((i + 1))
done
show "after reclaim of A, stopped"
note stopped_A_kvm_mmu "$(shr_count kvm-mmu A)"
note stopped_A_kvm_mmu_cache "$(shr_count kvm-mmu-cache A)"
note stopped_A_freed "$(vm_stat "$pid_A" mmu_shrinker_freed)"
note stopped_A_cache_freed "$(vm_stat "$pid_A" mmu_shrinker_cache_freed)"
if [ -n "$shrinker" ]; then
	[ "$(shr_count kvm-mmu-cache A)" = 0 ] || bad "A's cached pages were not all freed"
fi

# 3. Resume both: both guests must go on.
pa=$(passes A)
pb=$(passes B)
kill -CONT "$pid_A" "$pid_B"
say "resumed at pass $pa (A), $pb (B)"
t=$((pa > pb ? pa : pb))
wait_passes $((t + PASSES)) || exit 1
show "resumed"
note resumed_A_passes "$(($(passes A) - pa))"
note resumed_B_passes "$(($(passes B) - pb))"

kill "$pid_A" "$pid_B" 2>/dev/null
wait
[ "$fail" = 0 ] || exit 1
echo KFORK-REALVMM-OK
