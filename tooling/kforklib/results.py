"""Turn a console log into counted test results.

Two sources are counted:
  - KUnit's KTAP output, printed by the kernel while it boots (everything
    before the init's KFORK-BOOTED line).  Only leaf tests count: a suite's
    own result line summarises its cases and is not counted again.
  - KFORK-RESULT lines printed by tooling/guest/check.sh, one per selftest.
"""

import json
import re

PASS, FAIL, SKIP = "pass", "fail", "skip"

_TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_RESULT = re.compile(r"^(\s*)(ok|not ok) (\d+)(?: -)?(?: ([^#]*?))?\s*(?:#\s*(.*))?$")
_SUBTEST = re.compile(r"^(\s*)# Subtest: (\S+)")
_PLAN = re.compile(r"^(\s*)1\.\.(\d+)\s*$")
_KFORK = re.compile(r"^KFORK-RESULT (\S+) (PASS|FAIL|SKIP)(?: (\S+))?(?: (.*))?$")


class Result:
    def __init__(self, name, status, detail=""):
        self.name = name
        self.status = status
        self.detail = detail

    def __repr__(self):
        return f"Result({self.name!r}, {self.status!r}, {self.detail!r})"


def parse_ktap(lines):
    """Leaf results of KTAP/TAP output, named suite.case, plus a failure for
    each (sub)test whose plan announced more results than it printed."""
    results = []
    names = {}          # indent -> name of the subtest whose children sit there
    children = {}       # indent -> number of results seen at that indent
    plans = {}          # indent -> announced count
    diag = {}           # indent -> diagnostic lines since the last result
    for raw in lines:
        line = _TS.sub("", raw)
        d = re.match(r"^(\s*)# (.*)$", line)
        if d and not _SUBTEST.match(line):
            diag.setdefault(len(d[1]), []).append(d[2])
        m = _SUBTEST.match(line)
        if m:
            ind = len(m[1])
            names[ind] = m[2]
            children[ind] = 0
            plans.pop(ind, None)
            continue
        m = _PLAN.match(line)
        if m:
            plans[len(m[1])] = int(m[2])
            children.setdefault(len(m[1]), 0)
            continue
        m = _RESULT.match(line)
        if not m:
            continue
        ind, ok, name = len(m[1]), m[2] == "ok", (m[4] or "").strip()
        directive = (m[5] or "").strip()
        child_ind = [i for i in children if i > ind and children[i] is not None]
        had_children = any(children[i] for i in child_ind)
        for i in child_ind:
            planned = plans.get(i)
            if planned is not None and children[i] < planned:
                results.append(Result(f"{_qual(names, i, name)}", FAIL,
                                      f"only {children[i]} of {planned} "
                                      "results were printed"))
            children[i] = None
            plans.pop(i, None)
            names.pop(i, None)
        children[ind] = (children.get(ind) or 0) + 1
        if had_children:
            continue
        notes = diag.pop(ind, []) + diag.pop(ind + 4, [])
        if directive.upper().startswith("SKIP"):
            status = SKIP
        else:
            status = PASS if ok else FAIL
        detail = directive
        if status == FAIL:
            detail = " | ".join([n for n in notes if "location:" not in n][-4:])
        results.append(Result(_qual(names, ind, name), status, detail))
    # Output that stops early (a crash, a hang) leaves plans unfinished.
    for i, planned in plans.items():
        if children.get(i) is not None and children[i] < planned:
            results.append(Result(_qual(names, i, "(plan)"), FAIL,
                                  f"only {children[i]} of {planned} results "
                                  "were printed"))
    return results


def _qual(names, ind, name):
    prefix = [names[i] for i in sorted(names) if i <= ind and i > 0]
    return ".".join(prefix + [name]) if prefix else name


def parse_console(lines, boot_mark="KFORK-BOOTED"):
    """(kunit results, selftest results) of one VM run."""
    boot = next((i for i, ln in enumerate(lines) if ln.startswith(boot_mark)),
                len(lines))
    kunit = [Result("kunit:" + r.name, r.status, r.detail)
             for r in parse_ktap(lines[:boot])]
    tests = []
    for ln in lines[boot:]:
        m = _KFORK.match(ln)
        if m:
            tests.append(Result(m[1], m[2].lower(), (m[4] or "").strip()))
    return kunit, tests


def summary(results):
    n = {PASS: 0, FAIL: 0, SKIP: 0}
    for r in results:
        n[r.status] += 1
    return f"{n[PASS]} passed, {n[FAIL]} failed, {n[SKIP]} skipped"


def without_oom_reports(lines):
    """`lines` without the reports of OOM kills (which include a stack dump)."""
    out, inside = [], False
    for ln in lines:
        if "invoked oom-killer" in ln:
            inside = True
        if not inside:
            out.append(ln)
        if inside and ("Killed process" in ln or "oom_reaper" in ln):
            inside = False
    return out


def save(res, path):
    """Write results as JSON (for a run that combines several)."""
    with open(path, "w") as f:
        json.dump([[x.name, x.status, x.detail] for x in res], f)


def load(path):
    with open(path) as f:
        return [Result(*x) for x in json.load(f)]
