"""Host-side tests of the make stress report (tooling/kforklib/stress.py)."""

import unittest

from kforklib import results, stress

GOOD = """\
KFORK-STRESS 1 kvm_amd_loads 1
KFORK-STRESS 1 vms_created 56
KFORK-STRESS 1 vms_destroyed 56
KFORK-STRESS 1 guest_passes 1517
KFORK-STRESS 1 mismatches 0
KFORK-STRESS 1 freed_c0 4960
KFORK-STRESS 1 cache_freed_c3 715
KFORK-STRESS 1 reclaim_max_us 3522437
KFORK-STRESS 1 cgroup_rmdirs 20
KFORK-STRESS 1 kvm_amd_unloads 1
KFORK-STRESS 2 vms_created 10
KFORK-STRESS 2 vms_destroyed 10
KFORK-STRESS 2 reclaim_max_us 1000
KFORK-STRESS 2 kvm_amd_unloads 1
KFORK-STRESS 2 kvm_unloads 1
mmu_shrinker_me (317): drop_caches: 6
KFORK-STRESS-END 2 0
""".splitlines()


def verdict(lines, rc=0):
    totals, gens, failed = stress.parse(lines)
    res = stress.verdict("s", totals, stress.kernel_reports(lines), gens, failed, rc, "log")
    return {x.name: x.status for x in res}


class StressTest(unittest.TestCase):
    def test_sums_and_maxima(self):
        totals, gens, failed = stress.parse(GOOD)
        self.assertEqual((gens, failed), (2, False))
        self.assertEqual(totals["vms_created"], 66)
        self.assertEqual(totals["kvm_amd_unloads"], 2)
        # The longest call is the longest of any generation, not a sum.
        self.assertEqual(totals["reclaim_max_us"], 3522437)

    def test_clean_run_passes(self):
        got = verdict(GOOD)
        self.assertTrue(got)
        self.assertEqual({v for v in got.values()}, {results.PASS}, got)

    def test_each_bad_count_fails(self):
        for line, name in (("KFORK-STRESS 2 mismatches 3", "s:stress-mismatches-0"),
                           ("KFORK-STRESS 2 processes_died 1", "s:stress-processes-died-0"),
                           ("KFORK-STRESS 2 oom_kills 1", "s:stress-oom-kills-0"),
                           ("KFORK-STRESS 2 vms_created 1", "s:stress-unbalanced-vms-0")):
            got = verdict(GOOD[:-1] + [line, GOOD[-1]])
            self.assertEqual(got[name], results.FAIL, line)

    def test_kernel_reports_fail_by_kind(self):
        for line, kind in (("WARNING: CPU: 1 PID: 3 at mm/list_lru.c:10", "WARNING"),
                           ("BUG: KASAN: slab-use-after-free in foo", "KASAN"),
                           ("WARNING: possible circular locking dependency detected",
                            "lockdep"),
                           ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
                            "RCU stall"),
                           ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s!",
                            "soft lockup"),
                           ("list_del corruption. next->prev should be", "BUG")):
            reports = stress.kernel_reports([line])
            self.assertEqual(reports[kind], 1, line)
            self.assertEqual(sum(reports.values()), 1, line)
            self.assertEqual(verdict(GOOD + [line])["s:stress-kernel-log-clean"],
                             results.FAIL)

    def test_oom_in_log_fails(self):
        got = verdict(GOOD + ["foo invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)"])
        self.assertEqual(got["s:stress-oom-kills-0"], results.FAIL)

    def test_no_end_line_or_no_work_fails(self):
        self.assertEqual(verdict(GOOD[:-1])["s:stress-run"], results.FAIL)
        self.assertEqual(verdict(GOOD, rc=1)["s:stress-run"], results.FAIL)
        self.assertEqual(verdict(["KFORK-STRESS-END 1 0"])["s:stress-did-work"],
                         results.FAIL)

    def test_report_rows(self):
        totals, gens, _ = stress.parse(GOOD)
        text = stress.render(stress.rows(totals, stress.kernel_reports(GOOD), gens))
        self.assertIn("guest verification mismatches", text)
        self.assertIn("3522.4 ms", text)


if __name__ == "__main__":
    unittest.main()
