"""Host-side tests of the real-VMM case's verdict (tooling/kforklib/realvmm.py),
on lines recorded from a run of tooling/guest/realvmm.sh."""

import unittest

from kforklib import realvmm, results, vm

GOOD = """\
realvmm: started QEMU 312 (A) and 314 (B)
realvmm-stat running_A_pt_before 397312
realvmm-stat running_A_pt_after 8192
realvmm-stat stopped_A_kvm_mmu 2
realvmm-stat stopped_A_kvm_mmu_cache 0
realvmm-stat resumed_A_passes 75
KFORK-REALVMM-OK
KFORK-EXIT 0
""".splitlines()

# The WARNING reported in the first session's run on 7.3 (abridged).
RMAP_WARNING = [
    "WARNING: arch/x86/kvm/mmu/mmu.c:1134 at pte_list_remove+0x113/0x150 [kvm], "
    "CPU#1: qemu-system-x86/129",
    " mmu_page_zap_pte+0xff/0x110 [kvm]",
]


def run(lines, rc=0, timed_out=False):
    r = vm.VmResult(rc, "console.log", lines, True, timed_out, 1.0)
    return {x.name: (x.status, x.detail) for x in realvmm.verdict("t", r)}


class RealVmmTest(unittest.TestCase):
    def test_good_run_passes(self):
        got = run(GOOD)
        self.assertEqual(got["t:realvmm"][0], results.PASS)
        self.assertEqual(got["t:realvmm-kernel-log-clean"][0], results.PASS)
        self.assertEqual(realvmm.parse(GOOD)["running_A_pt_after"], 8192)

    def test_kernel_report_fails_even_if_the_guests_survived(self):
        got = run(GOOD[:3] + RMAP_WARNING + GOOD[3:])
        self.assertEqual(got["t:realvmm"][0], results.PASS)
        self.assertEqual(got["t:realvmm-kernel-log-clean"][0], results.FAIL)
        self.assertIn("pte_list_remove", got["t:realvmm-kernel-log-clean"][1])

    def test_failed_step_is_named(self):
        lines = GOOD[:2] + ["realvmm: FAIL: guest A: MEMCHECK FAIL pass 9 page 3 word 0: "
                            "got 0 want 5", "KFORK-EXIT 1"]
        got = run(lines, rc=1)
        self.assertEqual(got["t:realvmm"][0], results.FAIL)
        self.assertIn("MEMCHECK FAIL", got["t:realvmm"][1])

    def test_no_ok_mark_fails(self):
        got = run(GOOD[:-2] + ["KFORK-EXIT 0"])
        self.assertEqual(got["t:realvmm"][0], results.FAIL)

    def test_timeout_fails(self):
        got = run(GOOD[:2], rc=None, timed_out=True)
        self.assertEqual(got["t:realvmm"][0], results.FAIL)
        self.assertIn("timed out", got["t:realvmm"][1])


if __name__ == "__main__":
    unittest.main()
