#!/bin/sh
# Run the selftests listed in $KFORK_LIST ("run PATH [ARGS...]", or
# "run:SECONDS PATH [ARGS...]" for a timeout other than $T) one by one,
# each under its timeout.  For each, print one line that the host
# counts:  KFORK-RESULT PREFIX:NAME PASS|FAIL|SKIP SECONDS [why]
# where NAME is PATH followed by ARGS without spaces ("x86_64/foo-t20"),
# and, for a test that did not pass, its output prefixed with "# ".
T=${KFORK_TEST_TIMEOUT:-120}
LIST=${KFORK_LIST:-/kfork/selftests.list}
PREFIX=${KFORK_RESULT_PREFIX:-selftest}
uptime_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }

grep -E '^run(:[0-9]+)? ' "$LIST" | while read -r kind t args; do
	tt=${kind#run}
	tt=${tt#:}
	tt=${tt:-$T}
	start=$(uptime_cs)
	timeout "$tt" "/kselftests/$t" $args >/tmp/test.out 2>&1 </dev/null
	rc=$?
	# timeout does not kill forked children: make sure nothing is left.
	pkill -9 -f "/kselftests/$t" 2>/dev/null
	end=$(uptime_cs)
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", (b - a) / 100 }')
	why=
	if [ "$rc" -eq 0 ]; then
		st=PASS
	elif [ "$rc" -eq 4 ]; then
		st=SKIP
		why=$(grep -m1 -iE 'skip' /tmp/test.out | tr -s ' \t' ' ' | cut -c1-100)
	elif [ $((end - start)) -ge $((tt * 100)) ]; then
		st=FAIL
		why="timeout after ${tt}s"
	else
		st=FAIL
		why="exit status $rc"
	fi
	if [ "$st" = FAIL ]; then
		tail -n 40 /tmp/test.out | sed 's/^/# /'
	fi
	echo "KFORK-RESULT $PREFIX:$t$(printf %s "$args" | tr -d ' \t') $st $secs $why"
done
