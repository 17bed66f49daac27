"""The KVM MMU shrinker comparison: baseline (C) kernel against ours (Rust).

Both kernels run the same guest command: mmu_shrinker_memcg_test once (two
VMs in two cgroups, memory.reclaim in A, drop_caches, a VM under memory.max)
and its benchmark mode (-b) several times.  This module parses what the test
prints and renders the side-by-side table; it measures nothing itself.
"""

import re
import statistics

TEST = "/kselftests/x86_64/mmu_shrinker_memcg_test"
KERNELS = (("baseline", "baseline (C x86-mmu)"), ("qemu", "ours (Rust kvm-mmu)"))

_SNAP = re.compile(r"^# (before|after) (A memory\.reclaim|drop_caches) (\w+): "
                   r"count (-?\d+), sec_pagetables (\d+) KiB, "
                   r"freed (\d+), zapped (\d+)")
_MAX = re.compile(r"^# memory\.max VM: (ran to the end|died), oom_kill (\d+), "
                  r"freed (\d+)")
_HIGH = re.compile(r"^# memory\.high VM: (ran to the end|died), high events (\d+), "
                   r"freed (\d+)")
_STALL = re.compile(r"^# memory\.high VM: memory stall (\d+) us")
_BENCH = re.compile(r"^# bench: (.*)$")

# The nested case: L2 guests with nested paging (kvm_amd npt=1), whose
# nested page tables L0 shadows; the test's -N.
NESTED_MODULES = "kvm_amd:npt=1,nested=1"


def guest_command(runs, nested=False):
    test = f"{TEST} -N" if nested else TEST
    bench = "; ".join([f"{test} -b"] * runs)
    return f"{test}; {bench}"


def parse(lines):
    """The numbers one kernel's run printed: {'snap': {(when, phase, vm):
    {...}}, 'memory_max': {...}, 'bench': [{...}, ...]}."""
    out = {"snap": {}, "memory_max": None, "memory_high": None, "bench": []}
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
        m = _BENCH.match(ln)
        if m:
            # A run prints two lines; the first starts with shrinker=.
            kv = dict(x.split("=", 1) for x in m.group(1).split() if "=" in x)
            vals = {k: (v if k == "shrinker" else int(v)) for k, v in kv.items()}
            if "shrinker" in vals or not out["bench"]:
                out["bench"].append(vals)
            else:
                out["bench"][-1].update(vals)
    return out


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
            (f"cgroup {name}: shadow pages", per(lambda p: pages(p, name))),
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


def svg(title, table, note=""):
    """The table as an SVG picture (monospace text, no dependencies)."""
    heads = [h for _, h in KERNELS]
    w0 = max(len(lbl) for lbl, _ in table)
    ws = [max(len(h), *(len(v[i]) for _, v in table)) for i, h in enumerate(heads)]
    cw, lh = 8.4, 22
    cols = [w0 + 2] + [w + 3 for w in ws]
    width = int(max(sum(cols), len(title), len(note) * 0.86) * cw + 40)
    rows = [("", heads)] + table
    height = int(lh * (len(rows) + 3) + 20)
    esc = (lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="DejaVu Sans Mono, monospace" font-size="14">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="20" y="{lh + 4}" font-weight="bold">{esc(title)}</text>']
    for i, (lbl, vals) in enumerate(rows):
        y = lh * (i + 2) + 10
        if i % 2 == 1:
            out.append(f'<rect x="14" y="{y - lh + 6}" width="{width - 28}" height="{lh}" '
                       f'fill="#f0f4f8"/>')
        x = 20
        weight = ' font-weight="bold"' if i == 0 else ""
        out.append(f'<text x="{x}" y="{y}"{weight}>{esc(lbl)}</text>')
        x += cols[0] * cw
        for v, c in zip(vals, cols[1:]):
            x += c * cw
            out.append(f'<text x="{x - 3 * cw:.0f}" y="{y}" text-anchor="end"{weight}>'
                       f'{esc(v)}</text>')
    if note:
        out.append(f'<text x="20" y="{height - 14}" font-size="12" fill="#555">'
                   f'{esc(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
