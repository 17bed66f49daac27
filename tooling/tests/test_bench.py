"""Host-side tests of the comparison table's parser."""

import unittest

from kforklib import bench

RUN = """\
# before A memory.reclaim A: shrinker count 391, sec_pagetables 1564 KiB, mmu_shrinker_freed 0, mmu_shadow_zapped 0
# before A memory.reclaim B: shrinker count 391, sec_pagetables 1564 KiB, mmu_shrinker_freed 0, mmu_shadow_zapped 0
# after A memory.reclaim A: shrinker count 4, sec_pagetables 16 KiB, mmu_shrinker_freed 387, mmu_shadow_zapped 387
# after A memory.reclaim B: shrinker count 391, sec_pagetables 1564 KiB, mmu_shrinker_freed 0, mmu_shadow_zapped 0
# memory.max VM: died, oom_kill 1, mmu_shrinker_freed 0, max 5767168, events max 35
# bench: shrinker=c chunks=384 hot=96 freed=192 rounds=6 scan_ns_per_freed_page=26053 hot_pass_nominal_us=143 hot_extra_us=6444 hot_rebuilt_pages=52
# bench: shrinker=c chunks=384 hot=96 freed=192 rounds=6 scan_ns_per_freed_page=24000 hot_pass_nominal_us=143 hot_extra_us=6000 hot_rebuilt_pages=52
"""


class BenchParseTest(unittest.TestCase):
    def test_parse(self):
        p = bench.parse(RUN.splitlines())
        self.assertEqual(p["snap"][("after", "memory.reclaim", "A")]["zapped"], 387)
        self.assertEqual(p["memory_max"], {"ran": False, "oom_kill": 1, "shrinker_freed": 0})
        self.assertEqual([b["freed"] for b in p["bench"]], [192, 192])
        self.assertEqual(p["bench"][0]["shrinker"], "c")

    def test_rows(self):
        p = bench.parse(RUN.splitlines())
        table = dict(bench.rows({"baseline": p, "qemu": p}))
        self.assertEqual(table["  A sec_pagetables (KiB), before -> after"][0], "1564 -> 16")
        self.assertEqual(table["bench: shrinker time per freed page (us)"][0],
                         "25.1 (24.0-26.1)")
        self.assertEqual(table["VM under memory.max (room for 64 of ~390 pages)"][1],
                         "killed, oom_kill 1")
        self.assertIn("ours", bench.render(list(table.items())))
