"""Host-side tests of the console parser (KTAP and KFORK-RESULT lines)."""

import unittest

from kforklib import results

KTAP_OK = """\
[    1.000000] random kernel line
KTAP version 1
1..2
    KTAP version 1
    # Subtest: rust_doctests_kernel
    # module: kernel
    1..3
    ok 1 rust_doctest_kernel_a
    not ok 2 rust_doctest_kernel_b
    ok 3 rust_doctest_kernel_c # SKIP not here
# rust_doctests_kernel: pass:1 fail:1 skip:1 total:3
ok 1 rust_doctests_kernel
    KTAP version 1
    # Subtest: params
    1..1
        KTAP version 1
        # Subtest: case_p
        ok 1 p0
        ok 2 p1
    ok 1 case_p
ok 2 params
KFORK-BOOTED 6.12.117
KFORK-RESULT selftest:x86_64/foo PASS 0.31
# ok 1 something printed by a test
KFORK-RESULT selftest:x86_64/bar FAIL 1.00 exit status 1
KFORK-RESULT selftest:x86_64/baz SKIP 0.01 no SVM
"""


class TestKtap(unittest.TestCase):
    def test_leaves_only(self):
        kunit, tests = results.parse_console(KTAP_OK.splitlines())
        got = {(r.name, r.status) for r in kunit}
        self.assertEqual(got, {
            ("kunit:rust_doctests_kernel.rust_doctest_kernel_a", "pass"),
            ("kunit:rust_doctests_kernel.rust_doctest_kernel_b", "fail"),
            ("kunit:rust_doctests_kernel.rust_doctest_kernel_c", "skip"),
            ("kunit:params.case_p.p0", "pass"),
            ("kunit:params.case_p.p1", "pass"),
        })
        self.assertEqual([(t.name, t.status) for t in tests], [
            ("selftest:x86_64/foo", "pass"), ("selftest:x86_64/bar", "fail"),
            ("selftest:x86_64/baz", "skip")])
        self.assertEqual(tests[1].detail, "exit status 1")

    def test_truncated_output_fails(self):
        # The kernel died after the first case of a suite that planned three.
        lines = KTAP_OK.splitlines()[:8]
        kunit, _ = results.parse_console(lines)
        self.assertIn("fail", [r.status for r in kunit])
        self.assertTrue(any("only 1 of 3" in r.detail for r in kunit))

    def test_selftest_lines_before_boot_are_not_results(self):
        kunit, tests = results.parse_console(
            ["KFORK-RESULT selftest:x PASS 0.1", "KFORK-BOOTED x"])
        self.assertEqual(tests, [])

    def test_summary_line(self):
        rs = [results.Result("a", "pass"), results.Result("b", "fail"),
              results.Result("c", "skip"), results.Result("d", "pass")]
        self.assertEqual(results.summary(rs), "2 passed, 1 failed, 1 skipped")


if __name__ == "__main__":
    unittest.main()


class OomReportTest(unittest.TestCase):
    def test_drops_only_the_oom_report(self):
        lines = [
            "before",
            "mmu_shrinker_me invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)",
            "Call Trace:",
            " dump_stack_lvl+0x5d/0x80",
            "Memory cgroup out of memory: Killed process 309 (mmu_shrinker_me)",
            "after",
            "Call Trace:",
        ]
        self.assertEqual(results.without_oom_reports(lines),
                         ["before", "after", "Call Trace:"])
