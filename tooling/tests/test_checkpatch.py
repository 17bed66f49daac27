"""Host-side tests of the checkpatch output parser."""

import unittest

from kforklib import checkpatch

OUT = """\
WARNING:FILE_PATH_CHANGES: added, moved or deleted file(s), does MAINTAINERS need updating?
#185:
new file mode 100644

WARNING:EMBEDDED_FILENAME: It's generally not useful to have the filename in the file
#325: FILE: rust/kvm_shrinker/kunit.rs:24:
+        kernel::kunit_assert!("rust_kvm_shrinker", "rust/kvm_shrinker/kunit.rs", 0, $cond)

CHECK:BIT_MACRO: Prefer using the BIT macro
#93: FILE: tools/testing/selftests/kvm/x86_64/mmu_shrinker_memcg_test.c:43:
+#define GUEST_BASE_GVA	(1UL << 32)

ERROR:TRAILING_WHITESPACE: trailing whitespace
#10: FILE: rust/kvm_shrinker/kunit.rs:3:
"""

ACCEPTED = [
    ("FILE_PATH_CHANGES", "*", "last patch"),
    ("EMBEDDED_FILENAME", "rust/kvm_shrinker/kunit.rs", "literal"),
    ("TRAILING_WHITESPACE", "*", "errors are never accepted"),
]


class CheckpatchTest(unittest.TestCase):
    def test_parse(self):
        f = checkpatch.parse(OUT)
        self.assertEqual([x.kind for x in f], ["FILE_PATH_CHANGES", "EMBEDDED_FILENAME",
                                               "BIT_MACRO", "TRAILING_WHITESPACE"])
        self.assertIsNone(f[0].file)
        self.assertEqual(f[1].file, "rust/kvm_shrinker/kunit.rs")

    def test_unaccepted(self):
        bad = checkpatch.unaccepted(checkpatch.parse(OUT), ACCEPTED)
        self.assertEqual([x.kind for x in bad], ["BIT_MACRO", "TRAILING_WHITESPACE"])

    def test_accepted_file_is_exact(self):
        f = checkpatch.parse(OUT.replace("FILE: rust/kvm_shrinker/kunit.rs:24",
                                         "FILE: rust/kvm_shrinker/lib.rs:24"))
        bad = checkpatch.unaccepted(f, ACCEPTED)
        self.assertIn("EMBEDDED_FILENAME", [x.kind for x in bad])

    def test_accepted_list_parses(self):
        kinds = [k for k, _, _ in checkpatch.read_accepted()]
        self.assertIn("FILE_PATH_CHANGES", kinds)
