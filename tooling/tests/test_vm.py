"""Host-side tests of the QEMU command line."""

import re
import unittest

from kforklib import vm


class QemuCmdTest(unittest.TestCase):
    def test_two_nodes_by_default(self):
        cmd = vm.qemu_cmd("bz", "rd", "console=ttyS0")
        numa = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-numa"]
        self.assertEqual(numa, ["node,nodeid=0,memdev=m0,cpus=0",
                                "node,nodeid=1,memdev=m1,cpus=1"])
        self.assertIn("3072M", cmd)

    def test_sparse_map_is_made_by_the_guest(self):
        # QEMU refuses node ids with a gap, so the sparse boot declares no
        # NUMA topology and lets the guest kernel make the map.
        cmd = vm.qemu_cmd("bz", "rd", vm.SPARSE_NUMA_APPEND,
                          mem_mb=vm.SPARSE_NUMA_MEM_MB, numa_nodes=0)
        self.assertNotIn("-numa", cmd)
        self.assertIn(f"{vm.SPARSE_NUMA_MEM_MB}M", cmd)

    def test_sparse_map_hole_covers_the_middle_fake_node(self):
        # numa=fake=3U on the RAM below SPARSE_NUMA_MEM_MB: nodes of 704 MiB
        # (the third of the RAM, rounded up to 32 MiB) from 4 KiB up; the
        # memmap= hole must hold all of node 1 and leave RAM in 0 and 2.
        m = re.search(r"numa=fake=3U memmap=(\d+)M\$(\d+)M", vm.SPARSE_NUMA_APPEND)
        self.assertIsNotNone(m)
        size, start = int(m[1]), int(m[2])
        node = -(-(vm.SPARSE_NUMA_MEM_MB // 3) // 32) * 32
        self.assertEqual(node, 704)
        self.assertLess(start, node)
        self.assertGreater(start + size, 2 * node + 1)
        self.assertLess(start + size, vm.SPARSE_NUMA_MEM_MB)
        self.assertEqual(vm.SPARSE_NUMA_POSSIBLE, "0,2")


if __name__ == "__main__":
    unittest.main()
