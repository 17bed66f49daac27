"""scripts/checkpatch.pl --strict on the exported series.

Every ERROR fails. A WARNING or CHECK fails unless it is listed, with its
justification, in tooling/checkpatch-accepted.txt; the cover letter repeats
those justifications for reviewers.
"""

import os
import re
import subprocess

from .common import REPO, tree_dir

ACCEPTED = os.path.join(REPO, "tooling", "checkpatch-accepted.txt")

_HEAD = re.compile(r"^(ERROR|WARNING|CHECK):(\w+): (.*)$")
_WHERE = re.compile(r"^#\d+: FILE: ([^:]+):")


class Finding:
    def __init__(self, level, kind, msg, file=None):
        self.level, self.kind, self.msg, self.file = level, kind, msg, file

    def __repr__(self):
        return f"{self.level}:{self.kind} {self.file or '-'}: {self.msg}"


def parse(output):
    """The findings of one checkpatch run (non-terse, --show-types)."""
    found = []
    for ln in output.splitlines():
        m = _HEAD.match(ln)
        if m:
            found.append(Finding(m[1], m[2], m[3]))
            continue
        m = _WHERE.match(ln)
        if m and found and found[-1].file is None:
            found[-1].file = m[1]
    return found


def read_accepted(p=ACCEPTED):
    """[(TYPE, FILE or '*', justification)] from the accepted list."""
    out = []
    with open(p) as f:
        for ln in f:
            ln = ln.strip()
            if not ln or ln.startswith("#"):
                continue
            kind, where, why = ln.split(None, 2)
            out.append((kind, where, why))
    return out


def unaccepted(findings, accepted):
    """Findings that fail: errors, and warnings or checks not accepted."""
    bad = []
    for f in findings:
        ok = f.level != "ERROR" and any(
            kind == f.kind and where in ("*", f.file) for kind, where, _ in accepted)
        if not ok:
            bad.append(f)
    return bad


def run(patch):
    """checkpatch's findings for one patch file."""
    env = dict(os.environ)
    # spdxcheck.py needs Debian's python3 (python3-ply, python3-git).
    env["PATH"] = "/usr/bin:" + env.get("PATH", "")
    r = subprocess.run(["perl", "scripts/checkpatch.pl", "--strict", "--show-types",
                        "--no-summary", patch], cwd=tree_dir(), env=env,
                       capture_output=True, text=True)
    return parse(r.stdout + r.stderr), r.stdout + r.stderr


def recipients(patch):
    """What scripts/get_maintainer.pl names for a patch (no git history)."""
    r = subprocess.run(["perl", "scripts/get_maintainer.pl", "--no-git", "--no-git-fallback",
                        "--nogit-blame", "--norolestats", patch], cwd=tree_dir(),
                       capture_output=True, text=True)
    return [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
