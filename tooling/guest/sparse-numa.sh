#!/bin/sh
# The sparse node map boot (make check, stage sparse-numa; SPARSE_NUMA_* in
# tooling/kforklib/vm.py): nodes 0 and 2 are possible, node 1 is not. The
# rust_shrinker_cache sample must load, work, be driven through
# shrinker_debugfs on every node id the core accepts (0 to nr_node_ids - 1,
# so node 1 too) and unload with objects left, with a clean kernel log.
# Prints one "KFORK-RESULT PREFIX:NAME PASS|FAIL SECONDS [why]" per check;
# cgroup/test_rust_shrinker runs through check.sh with $KFORK_LIST.
P=${KFORK_RESULT_PREFIX:-sparse-numa}
WANT=${KFORK_SPARSE_POSSIBLE:-0,2}
SAMPLE=/sys/kernel/debug/rust_shrinker_cache

result() {	# name, PASS|FAIL, why
	echo "KFORK-RESULT $P:$1 $2 0 $3"
}

objects() {
	awk '$1 == "objects" { print $2 }' "$SAMPLE/stats"
}

possible=$(cat /sys/devices/system/node/possible)
echo "possible nodes: $possible; online: $(cat /sys/devices/system/node/online)"
if [ "$possible" = "$WANT" ]; then
	result node-map PASS
else
	result node-map FAIL "possible nodes are $possible, want $WANT"
fi

sh /kfork/check.sh

# Objects of the root memcg, on the nodes of the CPUs that allocate them.
if [ ! -d "$SAMPLE" ] && ! modprobe rust_shrinker_cache; then
	result debugfs-scan FAIL "cannot load rust_shrinker_cache"
	result rmmod FAIL "not loaded"
	exit 1
fi
scan=$(ls -d /sys/kernel/debug/shrinker/rust_shrinker_cache-*/scan | head -n 1)
ino=$(ls -id /sys/fs/cgroup | awk '{ print $1 }')
echo 2000 > "$SAMPLE/fill"
before=$(objects)
# nid 1 < nr_node_ids: shrinker_debugfs passes it on, and nothing may
# be scanned there.
echo "$ino 1 100000" > "$scan"
rc1=$?
after1=$(objects)
# Objects of the test's removed cgroups reach the root's lists once those
# memcgs are offline, which is asynchronous: scan until none is left.
i=0
while [ "$i" -lt 20 ]; do
	for n in $(echo "$possible" | tr ',' ' '); do
		echo "$ino $n 100000" > "$scan"
	done
	after=$(objects)
	[ "$after" -eq 0 ] && break
	sleep 0.2
	i=$((i + 1))
done
echo "objects: $before; after a scan of node 1: $after1; of every possible node: $after"
if [ "$rc1" -eq 0 ] && [ "$after1" -eq "$before" ] && [ "$after" -eq 0 ]; then
	result debugfs-scan PASS
else
	result debugfs-scan FAIL "objects $before, after node 1 $after1, after all $after (write $rc1)"
fi

# Unload with objects left: the module frees them on every possible node.
echo 1000 > "$SAMPLE/fill"
if rmmod rust_shrinker_cache && [ ! -d /sys/module/rust_shrinker_cache ]; then
	result rmmod PASS
else
	result rmmod FAIL "rmmod rust_shrinker_cache failed"
fi
