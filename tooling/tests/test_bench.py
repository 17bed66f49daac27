"""Host-side tests of the comparison table's parser."""

import os
import subprocess
import tempfile
import unittest
from unittest import mock

from kforklib import bench

RUN = """\
# before A memory.reclaim A: count 391, sec_pagetables 1564 KiB, freed 0, zapped 0
# before A memory.reclaim B: count 391, sec_pagetables 1564 KiB, freed 0, zapped 0
# after A memory.reclaim A: count 4, sec_pagetables 16 KiB, freed 387, zapped 387
# after A memory.reclaim B: count 391, sec_pagetables 1564 KiB, freed 0, zapped 0
# memory.max VM: died, oom_kill 1, freed 0, max 5767168
# memory.high VM: ran to the end, high events 204, freed 0, high 7462912
# memory.high VM: memory stall 18029903 us
# bench: shrinker=c chunks=384 hot=96 freed=192 rounds=6
# bench: ns_per_freed=26053 nominal_us=143 extra_us=6444 rebuilt=52
# bench: shrinker=c chunks=384 hot=96 freed=192 rounds=6
# bench: ns_per_freed=24000 nominal_us=143 extra_us=6000 rebuilt=52
# scale: shrinker=rust vms=8 pages=440 freed=390 rounds=20
# scale: ns_per_freed=31000 reclaim_us=2500 reclaim_freed=388
"""


class BenchParseTest(unittest.TestCase):
    def test_parse(self):
        p = bench.parse(RUN.splitlines())
        self.assertEqual(p["snap"][("after", "memory.reclaim", "A")]["zapped"], 387)
        self.assertEqual(p["memory_max"], {"ran": False, "oom_kill": 1, "shrinker_freed": 0})
        self.assertEqual([b["freed"] for b in p["bench"]], [192, 192])
        self.assertEqual(p["bench"][0]["shrinker"], "c")
        self.assertEqual([b["rebuilt"] for b in p["bench"]], [52, 52])
        self.assertEqual(p["memory_high"], {"ran": True, "high": 204, "shrinker_freed": 0,
                                            "stall_us": 18029903})

    def test_rows(self):
        p = bench.parse(RUN.splitlines())
        table = dict(bench.rows({"baseline": p, "qemu": p}))
        self.assertEqual(table["  A sec_pagetables (KiB), before -> after"][0], "1564 -> 16")
        self.assertEqual(table["bench: shrinker time per freed page (us)"][0],
                         "25.1 (24.0-26.1)")
        self.assertEqual(table["VM under memory.max (room for 64 of ~390 pages)"][1],
                         "killed, oom_kill 1")
        self.assertEqual(table["VM under memory.high (same room)"][0],
                         "ran, 204 high events, stalled 18030 ms")
        self.assertIn("ours", bench.render(list(table.items())))

    def test_scale(self):
        p = bench.parse(RUN.splitlines())
        self.assertEqual(p["scale"], [{"shrinker": "rust", "vms": 8, "pages": 440, "freed": 390,
                                       "rounds": 20, "ns_per_freed": 31000,
                                       "reclaim_us": 2500, "reclaim_freed": 388}])
        rows = dict(bench.scale_rows({"baseline": p, "qemu": p}))
        self.assertEqual(rows[" 8 VMs: shrinker time per freed page (us)"], ["31.0", "31.0"])
        self.assertEqual(rows[" 8 VMs: one memory.reclaim of all pages"][1], "2.5 ms, freed 388")
        self.assertEqual(rows[" 1 VMs: shrinker time per freed page (us)"][0], "n/a")
        data = bench.scale_data({"baseline": p, "qemu": p}, "t", "n")
        self.assertEqual(data["kernels"]["ours (Rust kvm-mmu)"]["us_per_freed"][1], 31.0)

    def test_guest_command(self):
        """Every run is made; a skipped measurement (exit 4: no shrinker to
        scan) passes, any other failure fails the command."""
        def status(main_rc, bench_rc):
            with tempfile.TemporaryDirectory() as d:
                fake = os.path.join(d, "t")
                with open(fake, "w") as f:
                    f.write(f'#!/bin/sh\necho "$*" >> {d}/log\n'
                            f'case "$*" in *-b*|*-s*) exit {bench_rc};; esac\n'
                            f'exit {main_rc}\n')
                os.chmod(fake, 0o755)
                with mock.patch.object(bench, "TEST", fake):
                    cmd = bench.guest_command(2, nested=True)
                rc = subprocess.run(["sh", "-c", cmd]).returncode
                with open(os.path.join(d, "log")) as f:
                    return rc, f.read().split("\n")[:-1]
        self.assertEqual(status(0, 0), (0, ["-N", "-N -b", "-N -b"]))
        self.assertEqual(status(0, 4)[0], 0)
        self.assertEqual(status(0, 1)[0], 1)
        self.assertEqual(status(1, 0), (1, ["-N", "-N -b", "-N -b"]))


class DemoTableTest(unittest.TestCase):
    def test_demo_rows_and_svg(self):
        p = bench.parse(RUN.splitlines())
        table = bench.demo_rows({"baseline": p, "qemu": p})
        rows = dict(table)
        self.assertEqual(rows["cgroup A: page tables (sec_pagetables / 4 KiB)"][0], "391 -> 4")
        self.assertEqual(rows["cgroup B: pages freed by the shrinker"][1], "0")
        self.assertEqual(rows["VM in a cgroup with a low memory.max"][0], "OOM-killed")
        self.assertEqual(rows["VM in a cgroup with a low memory.high"][0], "stalled 18030 ms")
        data = bench.demo_data([("npt=0", {"baseline": p, "qemu": p})], "t", "n")
        self.assertEqual(data["cases"][0]["cgroups"]["A"]["ours"], [391, 4])
