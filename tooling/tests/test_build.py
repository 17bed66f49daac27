"""Host-side tests of the kernel config checks."""

import os
import tempfile
import unittest

from kforklib import build
from kforklib.common import KforkError


class ConfigCheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        p = os.path.join(self.tmp.name, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_later_fragment_overrides(self):
        base = self.write("a.config", "CONFIG_MEMCG=y\nCONFIG_KVM=m\n")
        over = self.write("b.config", "# CONFIG_MEMCG is not set\n")
        final = self.write(".config", "CONFIG_KVM=m\n# CONFIG_MEMCG is not set\n")
        build.check_config(final, [base, over])

    def test_option_that_did_not_stick_is_named(self):
        frag = self.write("a.config", "CONFIG_KASAN=y\nCONFIG_KVM=m\n")
        final = self.write(".config", "CONFIG_KVM=m\n")
        with self.assertRaisesRegex(KforkError, "CONFIG_KASAN=y .* ended up as CONFIG_KASAN=n"):
            build.check_config(final, [frag])


if __name__ == "__main__":
    unittest.main()
