"""make stress: the counts of tooling/guest/stress.sh, summed over its
generations, the kernel log sorted by kind of report, and the verdict."""

import re

from . import results

_STAT = re.compile(r"^KFORK-STRESS (\d+) (\w+) (\d+)$")
_END = re.compile(r"^KFORK-STRESS-END (\d+) (\d+)$")

# Counts that are a maximum over the generations, not a sum.
MAXIMA = ("reclaim_max_us", "lru_hold_max_us")

# What the kernel log may say, by kind; each line counts once, under the
# first kind that matches it.
REPORTS = (
    ("KASAN", re.compile(r"KASAN|KFENCE")),
    ("lockdep", re.compile(r"possible (circular|recursive) locking|inconsistent lock state|"
                           r"suspicious RCU usage|lock held when returning|"
                           r"bad unlock balance|possible irq lock inversion")),
    ("RCU stall", re.compile(r"rcu_.*detected stalls?|rcu: INFO")),
    ("soft lockup", re.compile(r"soft lockup|hung_task|INFO: task .* blocked")),
    ("BUG", re.compile(r"BUG:|Oops|Kernel panic|general protection fault|"
                       r"list_(add|del) corruption|kernel BUG")),
    ("WARNING", re.compile(r"WARNING:")),
    ("OOM kill", re.compile(r"invoked oom-killer|Killed process")),
)


def parse(lines):
    """(totals {name: value}, generations, failed) from the console."""
    totals, gens, failed = {}, 0, True
    for ln in lines:
        m = _STAT.match(ln)
        if m:
            name, val = m[2], int(m[3])
            if name in MAXIMA:
                totals[name] = max(totals.get(name, 0), val)
            else:
                totals[name] = totals.get(name, 0) + val
            continue
        m = _END.match(ln)
        if m:
            gens, failed = int(m[1]), m[2] != "0"
    return totals, gens, failed


def kernel_reports(lines):
    """{kind: number of console lines} for every kind of REPORTS."""
    out = {kind: 0 for kind, _ in REPORTS}
    for ln in lines:
        for kind, rx in REPORTS:
            if rx.search(ln):
                out[kind] += 1
                break
    return out


def _g(t, name):
    return t.get(name, 0)


def rows(totals, reports, gens):
    """The report as (label, value) rows."""
    t = totals
    freed = [(f"pages freed in c{c} ({'under the parent with memory.high' if c < 2 else 'memory.max squeezes' if c == 2 else 'no limit'})",
              f"{_g(t, f'freed_c{c}')} shadow, {_g(t, f'cache_freed_c{c}')} cached")
             for c in range(4)]
    return [
        ("generations (kvm_amd loaded, npt=0 and npt=1 in turn)", str(gens)),
        ("VMs created / destroyed", f"{_g(t, 'vms_created')} / {_g(t, 'vms_destroyed')}"),
        ("guest passes (every chunk checked and rewritten)", str(_g(t, "guest_passes"))),
        ("memory.reclaim writes (EAGAIN; cgroup gone)",
         f"{_g(t, 'memory_reclaim')} ({_g(t, 'memory_reclaim_eagain')}; "
         f"{_g(t, 'memory_reclaim_gone')})"),
        ("drop_caches writes", str(_g(t, "drop_caches"))),
        ("shrinker_debugfs scans of 10^6 pages", str(_g(t, "debugfs_scans"))),
        ("cgroups removed / created / processes moved",
         f"{_g(t, 'cgroup_rmdirs')} / {_g(t, 'cgroup_mkdirs')} / {_g(t, 'procs_moved')}"),
        ("memory.max squeezes (usage hit max)",
         f"{_g(t, 'memory_max_squeezes')} ({_g(t, 'memory_max_hits')})"),
        ("memory.high updates (usage over high)",
         f"{_g(t, 'memory_high_updates')} ({_g(t, 'memory_high_hits')})"),
        ("kvm_amd unloads / kvm.ko unloads",
         f"{_g(t, 'kvm_amd_unloads')} / {_g(t, 'kvm_unloads')}"),
        *freed,
        ("guest verification mismatches", str(_g(t, "mismatches"))),
        ("VM or helper processes that died", str(_g(t, "processes_died"))),
        ("OOM kills (memory.events)", str(_g(t, "oom_kills"))),
        ("kernel log reports", ", ".join(f"{k} {v}" for k, v in reports.items())),
        ("longest memory.reclaim call", f"{_g(t, 'reclaim_max_us') / 1000:.1f} ms"),
        ("longest list_lru lock hold of kvm-mmu", f"{_g(t, 'lru_hold_max_us')} us"),
    ]


def render(table):
    w = max(len(lbl) for lbl, _ in table)
    return "\n".join(f"  {lbl:{w}}  {val}" for lbl, val in table)


def verdict(label, totals, reports, gens, failed, rc, log_path):
    """Results: the run as a whole and each count that must be 0."""
    t = totals
    res = []
    ok = rc == 0 and not failed and gens > 0
    res.append(results.Result(f"{label}:stress-run", results.PASS if ok else results.FAIL,
                              "" if ok else f"exit {rc}, {gens} generation(s); console: {log_path}"))
    work = {"VMs created and destroyed": _g(t, "vms_destroyed"),
            "guest passes": _g(t, "guest_passes"),
            "pages freed": sum(v for k, v in t.items() if "freed_c" in k),
            "cgroups removed": _g(t, "cgroup_rmdirs"),
            "kvm_amd unloads": _g(t, "kvm_amd_unloads")}
    idle = [k for k, v in work.items() if not v]
    res.append(results.Result(f"{label}:stress-did-work",
                              results.FAIL if idle else results.PASS,
                              f"none: {', '.join(idle)}" if idle else ""))
    for name, val in (("mismatches", _g(t, "mismatches")),
                      ("processes-died", _g(t, "processes_died")),
                      ("oom-kills", _g(t, "oom_kills") + reports["OOM kill"]),
                      ("unbalanced-vms", _g(t, "vms_created") - _g(t, "vms_destroyed"))):
        res.append(results.Result(f"{label}:stress-{name}-0",
                                  results.FAIL if val else results.PASS,
                                  f"{val}; console: {log_path}" if val else ""))
    bad = {k: v for k, v in reports.items() if v and k != "OOM kill"}
    res.append(results.Result(f"{label}:stress-kernel-log-clean",
                              results.FAIL if bad else results.PASS,
                              f"{bad}; console: {log_path}" if bad else ""))
    return res
