"""Host-side tests of the series tooling on a tiny base tree.

They exercise the same code that assembles the real fork: assembly and its
incremental re-run, refusal to lose local work, failed patches naming the
hunk, export with git am, and the pull round trip.
"""

import os
import re
import subprocess
import tempfile
import unittest
from unittest import mock

from kforklib import series
from kforklib.common import KforkError

UPSTREAM = "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\n"


def sh(cwd, *cmd):
    return subprocess.run(cmd, cwd=cwd, check=True, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.strip()


def write(p, text, mode=0o644):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)


class SeriesTest(unittest.TestCase):
    def setUp(self):
        quiet = mock.patch.object(series, "log", lambda msg: None)
        quiet.start()
        self.addCleanup(quiet.stop)
        self.tmp = tempfile.TemporaryDirectory()
        self.tree = os.path.join(self.tmp.name, "tree")
        self.repo = os.path.join(self.tmp.name, "repo")
        write(os.path.join(self.tree, "mm", "up.c"), UPSTREAM)
        sh(self.tree, "git", "init", "-q", "-b", "fork")
        sh(self.tree, "git", "config", "user.name", "t")
        sh(self.tree, "git", "config", "user.email", "t@t")
        sh(self.tree, "git", "add", "-A")
        sh(self.tree, "git", "commit", "-q", "-m", "base")
        sh(self.tree, "git", "tag", "base")
        write(os.path.join(self.repo, "rust", "new.rs"), "// new file\n")
        write(os.path.join(self.repo, "tools", "run.sh"), "#!/bin/sh\n", 0o755)
        write(os.path.join(self.repo, "patches", "edit.diff"),
              "--- a/mm/up.c\n+++ b/mm/up.c\n@@ -2,3 +2,3 @@ line 1\n"
              " line 2\n-line 3\n+line three\n line 4\n")
        write(os.path.join(self.repo, series.MANIFEST), """\
[series]
author = "A U Thor <a@example.org>"
cover_subject = "test series"
cover_body = "why"

[[commit]]
name = "add-new"
subject = "rust: add new.rs"
files = ["rust/new.rs"]
body = '''
Because.

Signed-off-by: A U Thor <a@example.org>
'''

[[commit]]
name = "edit-up"
subject = "mm: edit up.c"
files = ["tools/run.sh"]
patch = "patches/edit.diff"
body = "Edit.\\n"
""")

    def tearDown(self):
        self.tmp.cleanup()

    def log(self):
        return sh(self.tree, "git", "log", "--format=%s", "base..HEAD").splitlines()

    def test_assemble_and_incremental(self):
        self.assertTrue(series.assemble(self.tree, repo=self.repo))
        self.assertEqual(self.log(), ["mm: edit up.c", "rust: add new.rs"])
        with open(os.path.join(self.tree, "mm", "up.c")) as f:
            self.assertIn("line three", f.read())
        self.assertTrue(os.access(os.path.join(self.tree, "tools", "run.sh"), os.X_OK))
        first = sh(self.tree, "git", "rev-parse", "HEAD~1")
        self.assertFalse(series.assemble(self.tree, repo=self.repo))
        # Changing the second entry re-applies only the second entry.
        write(os.path.join(self.repo, "tools", "run.sh"), "#!/bin/sh\necho\n", 0o755)
        self.assertTrue(series.assemble(self.tree, repo=self.repo))
        self.assertEqual(sh(self.tree, "git", "rev-parse", "HEAD~1"), first)
        self.assertEqual(len(self.log()), 2)

    def test_reproducible_commit_ids(self):
        series.assemble(self.tree, repo=self.repo)
        a = sh(self.tree, "git", "rev-parse", "HEAD")
        sh(self.tree, "git", "reset", "-q", "--hard", "base")
        os.remove(os.path.join(self.tree, ".git", "kfork-state.json"))
        series.assemble(self.tree, repo=self.repo)
        self.assertEqual(sh(self.tree, "git", "rev-parse", "HEAD"), a)

    def test_refuses_to_lose_local_work(self):
        series.assemble(self.tree, repo=self.repo)
        write(os.path.join(self.tree, "mm", "up.c"), "local edit\n")
        with self.assertRaisesRegex(KforkError, "uncommitted changes"):
            series.assemble(self.tree, repo=self.repo)
        sh(self.tree, "git", "commit", "-q", "-am", "local commit")
        with self.assertRaisesRegex(KforkError, "commits that are not in"):
            series.assemble(self.tree, repo=self.repo)
        # Builds keep local work as it is.
        self.assertFalse(series.assemble(self.tree, repo=self.repo, keep_local=True))
        self.assertEqual(self.log()[0], "local commit")
        series.assemble(self.tree, force=True, repo=self.repo)
        saved = sh(self.tree, "git", "branch", "--list", "kfork-saved-*")
        self.assertTrue(saved)
        self.assertEqual(sh(self.tree, "git", "log", "-1", "--format=%s",
                            saved.split()[-1]), "local commit")

    def test_new_file_in_tree_is_local_work(self):
        # A new file under a .gitignore rule (Debian ignores all of "/*")
        # is local work too, and FORCE saves it in the stash.
        with open(os.path.join(self.tree, ".gitignore"), "w") as f:
            f.write("/*\n")
        sh(self.tree, "git", "add", "-f", ".gitignore")
        sh(self.tree, "git", "commit", "-q", "-m", "ignore all")
        sh(self.tree, "git", "tag", "-f", "base")
        series.assemble(self.tree, repo=self.repo)
        write(os.path.join(self.tree, "rust", "extra.rs"), "// wip\n")
        with self.assertRaisesRegex(KforkError, "uncommitted changes"):
            series.assemble(self.tree, repo=self.repo)
        series.assemble(self.tree, force=True, repo=self.repo)
        self.assertFalse(os.path.exists(os.path.join(self.tree, "rust", "extra.rs")))
        self.assertIn("saved before re-assembly", sh(self.tree, "git", "stash", "list"))

    def test_failed_patch_names_patch_and_hunk(self):
        write(os.path.join(self.repo, "patches", "edit.diff"),
              "--- a/mm/up.c\n+++ b/mm/up.c\n@@ -1,2 +1,3 @@\n line 1\n+x\n"
              " line 2\n@@ -5,3 +6,3 @@\n line 5\n-line 99\n+line six\n line 7\n")
        with self.assertRaises(KforkError) as cm:
            series.assemble(self.tree, repo=self.repo)
        msg = str(cm.exception)
        self.assertIn("patches/edit.diff", msg)
        self.assertIn("hunk #2 of mm/up.c", msg)
        self.assertIn("edit-up", msg)

    def test_new_file_may_not_shadow_upstream(self):
        write(os.path.join(self.repo, "mm", "up.c"), "mine\n")
        with open(os.path.join(self.repo, series.MANIFEST), "a") as f:
            f.write('\n[[commit]]\nname = "bad"\nsubject = "x"\nfiles = ["mm/up.c"]\n')
        with self.assertRaisesRegex(KforkError, "already exists"):
            series.assemble(self.tree, repo=self.repo)

    def test_file_owned_once(self):
        with open(os.path.join(self.repo, series.MANIFEST), "a") as f:
            f.write('\n[[commit]]\nname = "dup"\nsubject = "x"\nfiles = ["rust/new.rs"]\n')
        with self.assertRaisesRegex(KforkError, "exactly one commit"):
            series.load(self.repo)

    def test_export_applies_with_git_am(self):
        series.assemble(self.tree, repo=self.repo)
        out = os.path.join(self.tmp.name, "out")
        files = series.export(self.tree, out, repo=self.repo)
        self.assertEqual(len(files), 3)
        with open(files[0]) as f:
            cover = f.read()
        self.assertIn("test series", cover)
        self.assertNotIn("*** BLURB HERE ***", cover)
        clone = os.path.join(self.tmp.name, "clone")
        sh(self.tmp.name, "git", "clone", "-q", "-b", "base", self.tree, clone)
        sh(clone, "git", "config", "user.name", "t")
        sh(clone, "git", "config", "user.email", "t@t")
        sh(clone, "git", "am", "-q", *files[1:])
        self.assertEqual(sh(clone, "git", "rev-parse", "HEAD^{tree}"),
                         sh(self.tree, "git", "rev-parse", "HEAD^{tree}"))

    def test_export_for_the_sender(self):
        series.assemble(self.tree, repo=self.repo)
        out = os.path.join(self.tmp.name, "out")
        files = series.export(self.tree, out, repo=self.repo,
                              sender="S E Nder <s@example.org>")
        with open(files[0]) as f:
            self.assertRegex(f.read(), r"\nbase-commit: [0-9a-f]{40}\n")
        for p in files[1:]:
            with open(p) as f:
                text = f.read()
            self.assertIn("From: S E Nder <s@example.org>\n", text)
            self.assertNotIn("a@example.org", text)
        with open(files[0]) as f:
            self.assertIn("\nS E Nder (2):\n", f.read())
            headers, body = text.split("\n\n", 1)
            subject = re.search(r"^Subject: (.*)$", headers, re.M)[1]
            msg = subject + "\n\n" + body.split("\n---\n", 1)[0] + "\n"
            found = subprocess.run(["git", "interpret-trailers", "--parse"], input=msg,
                                   text=True, capture_output=True, check=True).stdout
            self.assertEqual(found, "Signed-off-by: S E Nder <s@example.org>\n")

    def test_sender_identity_refuses_placeholder_and_none(self):
        sh(self.repo, "git", "init", "-q")
        env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull,
               "GIT_CONFIG_NOSYSTEM": "1", "HOME": self.tmp.name}
        with mock.patch.dict(os.environ, env):
            with self.assertRaisesRegex(KforkError, "user.name and user.email"):
                series.sender_identity(self.repo)
            name, email = series.DEFAULT_AUTHOR[:-1].split(" <")
            sh(self.repo, "git", "config", "user.name", name)
            sh(self.repo, "git", "config", "user.email", email)
            with self.assertRaisesRegex(KforkError, "placeholder"):
                series.sender_identity(self.repo)
            sh(self.repo, "git", "config", "user.email", "me@example.org")
            self.assertEqual(series.sender_identity(self.repo), f"{name} <me@example.org>")

    def test_trailer_errors(self):
        s = series.load(self.repo)
        self.assertEqual(series.trailer_errors(s), [
            "edit-up: git interpret-trailers finds no Signed-off-by (is there "
            "a blank line before the trailers?)"])
        s.entries[0].body = ("Because\nof\nthis\nand that.\n"
                             "Signed-off-by: A U Thor <a@example.org>\n")
        self.assertEqual(len(series.trailer_errors(s)), 2)

    def test_pull_round_trip(self):
        series.assemble(self.tree, repo=self.repo)
        # A developer amends entry 1 and adds a commit in the tree.
        write(os.path.join(self.tree, "rust", "new.rs"), "// new file, v2\n")
        sh(self.tree, "git", "commit", "-q", "--fixup", "HEAD~1", "-a")
        env = dict(os.environ, GIT_SEQUENCE_EDITOR="true")
        subprocess.run(["git", "rebase", "-q", "-i", "--autosquash", "base"],
                       cwd=self.tree, check=True, env=env)
        write(os.path.join(self.tree, "virt", "added.c"), "int x;\n")
        write(os.path.join(self.tree, "mm", "up.c"),
              UPSTREAM.replace("line 3", "line three").replace("line 7", "seven"))
        sh(self.tree, "git", "add", "-A")
        sh(self.tree, "git", "commit", "-q", "-m", "virt: add added.c\n\nBody.")
        tree_id = sh(self.tree, "git", "rev-parse", "HEAD^{tree}")
        series.pull(self.tree, repo=self.repo)
        s = series.load(self.repo)
        self.assertEqual([e.name for e in s.entries], ["add-new", "edit-up",
                                                       "virt-add-added-c"])
        self.assertEqual(s.entries[2].files, ["virt/added.c"])
        self.assertEqual(s.entries[2].patch, "patches/virt-add-added-c.diff")
        self.assertEqual(s.entries[2].body.strip(), "Body.")
        self.assertIn("Signed-off-by", s.entries[0].body)
        with open(os.path.join(self.repo, "rust", "new.rs")) as f:
            self.assertEqual(f.read(), "// new file, v2\n")
        # assemble is a no-op now, and a fresh assembly gives the same tree.
        self.assertFalse(series.assemble(self.tree, repo=self.repo))
        sh(self.tree, "git", "checkout", "-q", "-B", "fork", "base")
        os.remove(os.path.join(self.tree, ".git", "kfork-state.json"))
        series.assemble(self.tree, repo=self.repo)
        self.assertEqual(sh(self.tree, "git", "rev-parse", "HEAD^{tree}"), tree_id)

    def test_other_base_tables(self):
        """[commit."BASE"] and [series."BASE"] of the other base apply there
        only, and a pull on the default base keeps them."""
        other = next(b for b in series.BASES if b != series.DEFAULT_BASE)
        path = os.path.join(self.repo, series.MANIFEST)
        with open(path) as f:
            text = f.read()
        text = text.replace('cover_body = "why"\n', 'cover_body = "why"\n\n'
                            f'[series."{other}"]\ncover_subject = "on {other}"\n')
        text += f'\n[commit."{other}"]\nskip = true\nreason = "not there"\n'
        write(path, text)

        def on(base):
            return mock.patch.object(series, "BASE", base)
        with on(other):
            s = series.load(self.repo)
            self.assertEqual([e.name for e in s.entries], ["add-new"])
            self.assertEqual(s.cover_subject, f"on {other}")
        series.assemble(self.tree, repo=self.repo)
        series.pull(self.tree, repo=self.repo)
        with on(other):
            s = series.load(self.repo)
            self.assertEqual([e.name for e in s.entries], ["add-new"])
            self.assertEqual(s.cover_subject, f"on {other}")
        self.assertEqual(series.load(self.repo).cover_subject, "test series")

    def test_pull_keeps_entries_of_other_bases(self):
        """An entry that only another base has (a backport's own fix) keeps
        its place and its text through a pull on the default base."""
        other = next(b for b in series.BASES if b != series.DEFAULT_BASE)
        path = os.path.join(self.repo, series.MANIFEST)
        with open(path) as f:
            text = f.read()
        backport = (f'[[commit]]\nname = "backport-only"\nsubject = "mm: a fix"\n'
                    f'bases = ["{other}"]\nbody = "Fixed upstream.\\n"\n\n')
        text = text.replace('[[commit]]\nname = "edit-up"', backport + '[[commit]]\nname = "edit-up"')
        write(path, text)
        series.assemble(self.tree, repo=self.repo)
        series.pull(self.tree, repo=self.repo)
        with open(path) as f:
            names = [ln for ln in f.read().splitlines() if ln.startswith("name = ")]
        self.assertEqual(names, ['name = "add-new"', 'name = "backport-only"',
                                 'name = "edit-up"'])
        with mock.patch.object(series, "BASE", other):
            s = series.load(self.repo)
        self.assertEqual([e.name for e in s.entries], ["add-new", "backport-only", "edit-up"])
        self.assertEqual(s.entries[1].body, "Fixed upstream.\n")

    def test_pull_refuses_edit_of_earlier_new_file(self):
        series.assemble(self.tree, repo=self.repo)
        write(os.path.join(self.tree, "rust", "new.rs"), "// edited later\n")
        sh(self.tree, "git", "commit", "-q", "-am", "later edit")
        with self.assertRaisesRegex(KforkError, "Fold the change"):
            series.pull(self.tree, repo=self.repo)


if __name__ == "__main__":
    unittest.main()


class RealSeriesTest(unittest.TestCase):
    """The project's own series.toml, on every base."""

    def test_every_message_has_parseable_trailers(self):
        for base in series.BASES:
            with self.subTest(base=base), mock.patch.object(series, "BASE", base):
                self.assertEqual(series.trailer_errors(series.load()), [])

    def test_message_lines_fit(self):
        # checkpatch's COMMIT_LOG_LONG_LINE, found before a series check.
        for base in series.BASES:
            with mock.patch.object(series, "BASE", base):
                for e in series.load().entries:
                    long = [ln for ln in e.message().splitlines()[1:]
                            if len(ln) > 75 and not ln.startswith(("Fixes: ", "Link: "))]
                    with self.subTest(base=base, entry=e.name):
                        self.assertEqual(long, [])
