"""The KVM MMU shrinker comparison: the baseline kernel (our option off: the
C shrinker on 6.12, no shrinker on 7.3) against ours (Rust).

Both kernels run the same guest command: mmu_shrinker_memcg_test once (two
VMs in two cgroups, memory.reclaim in A, drop_caches, a VM under memory.max)
and its benchmark mode (-b) several times.  This module parses what the test
prints and renders the side-by-side table; it measures nothing itself.
"""

import re
import statistics

from .common import BASELINE_LABEL, KVM_X86

TEST = f"/kselftests/{KVM_X86}/mmu_shrinker_memcg_test"
KERNELS = (("baseline", BASELINE_LABEL), ("qemu", "ours (Rust kvm-mmu)"))

_SNAP = re.compile(r"^# (before|after) (A memory\.reclaim|drop_caches) (\w+): "
                   r"count (-?\d+), sec_pagetables (\d+) KiB, "
                   r"freed (\d+), zapped (\d+)")
_MAX = re.compile(r"^# memory\.max VM: (ran to the end|died), oom_kill (\d+), "
                  r"freed (\d+)")
_HIGH = re.compile(r"^# memory\.high VM: (ran to the end|died), high events (\d+), "
                   r"freed (\d+)")
_STALL = re.compile(r"^# memory\.high VM: memory stall (\d+) us")
_BENCH = re.compile(r"^# bench: (.*)$")
_SCALE = re.compile(r"^# scale: (.*)$")

# Scale mode (-s N): N VMs in one cgroup share the same shadow pages.
SCALE_VMS = (1, 8, 32, 64)

# The nested case: L2 guests with nested paging (kvm_amd npt=1), whose
# nested page tables L0 shadows; the test's -N.
NESTED_MODULES = "kvm_amd:npt=1,nested=1"


def guest_command(runs, nested=False):
    """The memcg test, its benchmark `runs` times and, without `nested`,
    its scale mode for each of SCALE_VMS."""
    test = f"{TEST} -N" if nested else TEST
    cmds = [f"{test} -b"] * runs
    if not nested:
        cmds += [f"{TEST} -s {n}" for n in SCALE_VMS]
    # The measurement modes skip (exit 4) on a kernel without any MMU
    # shrinker to scan (7.3's baseline); any other failure fails the run.
    return "; ".join([f"rc=0; {test} || rc=1"] +
                     [f"{{ {c} || [ $? -eq 4 ] || rc=1; }}" for c in cmds] + ["exit $rc"])


def parse(lines):
    """The numbers one kernel's run printed: {'snap': {(when, phase, vm):
    {...}}, 'memory_max': {...}, 'bench': [{...}, ...]}."""
    out = {"snap": {}, "memory_max": None, "memory_high": None, "bench": [], "scale": []}
    for ln in lines:
        ln = ln.rstrip("\n")
        m = _SNAP.match(ln)
        if m:
            when, phase, name = m.group(1), m.group(2).split()[-1], m.group(3)
            out["snap"][(when, phase, name)] = {
                "count": int(m.group(4)), "sec_kib": int(m.group(5)),
                "shrinker_freed": int(m.group(6)), "zapped": int(m.group(7))}
            continue
        m = _MAX.match(ln)
        if m:
            out["memory_max"] = {"ran": m.group(1) == "ran to the end",
                                 "oom_kill": int(m.group(2)),
                                 "shrinker_freed": int(m.group(3))}
            continue
        m = _HIGH.match(ln)
        if m:
            out["memory_high"] = {"ran": m.group(1) == "ran to the end",
                                  "high": int(m.group(2)), "shrinker_freed": int(m.group(3)),
                                  "stall_us": None}
            continue
        m = _STALL.match(ln)
        if m and out["memory_high"]:
            out["memory_high"]["stall_us"] = int(m.group(1))
            continue
        for regex, key in ((_SCALE, "scale"), (_BENCH, "bench")):
            m = regex.match(ln)
            if m:
                _add_run_line(out[key], m.group(1))
    return out


def _add_run_line(runs, text):
    """A bench or scale run prints two lines of key=value; the first starts
    with shrinker=."""
    kv = dict(x.split("=", 1) for x in text.split() if "=" in x)
    vals = {k: (v if k == "shrinker" else int(v)) for k, v in kv.items()}
    if "shrinker" in vals or not runs:
        runs.append(vals)
    else:
        runs[-1].update(vals)


def _pair(p, phase, name, key):
    """`key` of VM `name` before and after `phase`; None if not printed."""
    b = p["snap"].get(("before", phase, name))
    a = p["snap"].get(("after", phase, name))
    return (b[key], a[key]) if a and b else None


def _delta(p, phase, name, key):
    ba = _pair(p, phase, name, key)
    return ba[1] - ba[0] if ba else None


def _before_after(p, phase, name, key):
    ba = _pair(p, phase, name, key)
    if not ba or min(ba) < 0:
        return "n/a"
    return f"{ba[0]} -> {ba[1]}"


def _stat(values):
    if not values:
        return "n/a"
    med = round(statistics.median(values), 1)
    if len(values) == 1 or min(values) == max(values):
        return f"{med:g}"
    return f"{med:g} ({min(values)}-{max(values)})"


def _per(parsed, fn):
    """`fn` of each kernel's parsed run, in the order of KERNELS."""
    return [fn(parsed[k]) for k, _ in KERNELS]


def rows(parsed):
    """The table: a list of (label, value per kernel) rows. `parsed` maps
    each kernel key of KERNELS to parse() output."""
    def per(fn):
        return _per(parsed, fn)

    def mm(p):
        m = p["memory_max"]
        if not m:
            return "n/a"
        if m["ran"]:
            return f"ran, oom_kill {m['oom_kill']}, shrinker freed {m['shrinker_freed']}"
        return f"killed, oom_kill {m['oom_kill']}"

    def bench(key, scale=1):
        return lambda p: _stat([round(b[key] / scale, 1) if scale != 1 else b[key]
                                for b in p["bench"] if key in b])

    def mh(p):
        m = p["memory_high"]
        if not m:
            return "n/a"
        stall = m["stall_us"]
        return (("ran" if m["ran"] else "died") + f", {m['high']} high events" +
                (f", stalled {stall / 1000:.0f} ms" if stall is not None else ""))

    r = [
        ("memory.reclaim in A: shadow pages zapped in A",
         per(lambda p: str(_delta(p, "memory.reclaim", "A", "zapped")))),
        ("  A sec_pagetables (KiB), before -> after",
         per(lambda p: _before_after(p, "memory.reclaim", "A", "sec_kib"))),
        ("  B sec_pagetables (KiB), before -> after",
         per(lambda p: _before_after(p, "memory.reclaim", "B", "sec_kib"))),
        ("  A kvm-mmu shrinker_debugfs count, before -> after",
         per(lambda p: _before_after(p, "memory.reclaim", "A", "count"))),
        ("drop_caches=2: pages zapped in A / B",
         per(lambda p: f"{_delta(p, 'drop_caches', 'A', 'zapped')} / "
                       f"{_delta(p, 'drop_caches', 'B', 'zapped')}")),
        ("VM under memory.max (room for 64 of ~390 pages)", per(mm)),
        ("VM under memory.high (same room)", per(mh)),
        ("bench: pages freed (goal: half of the chunks)", per(bench("freed"))),
        ("bench: shrinker time per freed page (us)", per(bench("ns_per_freed", 1000))),
        ("bench: working set, extra time over all rounds (us)", per(bench("extra_us"))),
        ("bench: working set, shadow pages rebuilt", per(bench("rebuilt"))),
        ("bench: runs", per(lambda p: str(len(p["bench"])))),
    ]
    return r


def render(table):
    heads = [h for _, h in KERNELS]
    w0 = max(len(lbl) for lbl, _ in table)
    ws = [max(len(h), *(len(v[i]) for _, v in table)) for i, h in enumerate(heads)]
    out = [f"{'':{w0}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, ws))]
    for lbl, vals in table:
        out.append(f"{lbl:{w0}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(vals, ws)))
    return "\n".join(out)


def demo_rows(parsed):
    """Per cgroup, before and after memory.reclaim was written to A only."""
    def per(fn):
        return _per(parsed, fn)

    def pages(p, name):
        ba = _pair(p, "memory.reclaim", name, "sec_kib")
        return f"{ba[0] // 4} -> {ba[1] // 4}" if ba else "n/a"

    def mm(p):
        m = p["memory_max"]
        if not m:
            return "n/a"
        return "runs, no OOM" if m["ran"] and not m["oom_kill"] else "OOM-killed"

    r = []
    for name in ("A", "B"):
        r += [
            (f"cgroup {name}: page tables (sec_pagetables / 4 KiB)",
             per(lambda p: pages(p, name))),
            (f"cgroup {name}: sec_pagetables (KiB)",
             per(lambda p: _before_after(p, "memory.reclaim", name, "sec_kib"))),
            (f"cgroup {name}: pages freed by the shrinker",
             per(lambda p: str(_delta(p, "memory.reclaim", name, "zapped")))),
        ]
    def mh(p):
        m = p["memory_high"]
        if not m or m["stall_us"] is None:
            return "n/a"
        return f"stalled {m['stall_us'] / 1000:.0f} ms" if m["ran"] else "died"

    r.append(("VM in a cgroup with a low memory.max", per(mm)))
    r.append(("VM in a cgroup with a low memory.high", per(mh)))
    return r


def _scale_of(p, vms):
    return next((x for x in p["scale"] if x.get("vms") == vms), None)


def scale_rows(parsed):
    """Per number of VMs: shrinker time per freed page, and one
    memory.reclaim call for all the cgroup's pages."""
    r = []
    for n in SCALE_VMS:
        def us(p, n=n):
            x = _scale_of(p, n)
            return f"{x['ns_per_freed'] / 1000:.1f}" if x and x.get("freed") else "n/a"

        def rec(p, n=n):
            x = _scale_of(p, n)
            return (f"{x['reclaim_us'] / 1000:.1f} ms, freed {x['reclaim_freed']}"
                    if x and "reclaim_us" in x else "n/a")
        r += [(f"{n:2} VMs: shrinker time per freed page (us)", _per(parsed, us)),
              (f"{n:2} VMs: one memory.reclaim of all pages", _per(parsed, rec))]
    return r


def scale_data(parsed, title, note):
    """The numbers of tooling/plot.py's scale chart."""
    kernels = {}
    for key, label in KERNELS:
        xs = [_scale_of(parsed[key], n) or {} for n in SCALE_VMS]
        kernels[label] = {
            "us_per_freed": [x.get("ns_per_freed", 0) / 1000 for x in xs],
            "reclaim_ms": [x.get("reclaim_us", 0) / 1000 for x in xs],
            "reclaim_freed": [x.get("reclaim_freed", 0) for x in xs]}
    return {"title": title, "note": note, "vms": list(SCALE_VMS), "kernels": kernels}


def demo_data(cases, title, note):
    """The numbers of tooling/plot.py's demo chart. `cases`: [(case title,
    {kernel key: parse() output})]: shadow pages per cgroup (sec_pagetables
    / 4 KiB), before and after memory.reclaim in A."""
    out = []
    for case, parsed in cases:
        cgroups = {}
        for name in ("A", "B"):
            cgroups[name] = {}
            for key, who in (("baseline", "baseline"), ("qemu", "ours")):
                ba = _pair(parsed[key], "memory.reclaim", name, "sec_kib")
                cgroups[name][who] = [ba[0] // 4, ba[1] // 4] if ba else [0, 0]
        out.append({"title": case, "cgroups": cgroups})
    return {"title": title, "note": note, "cases": out}
