#!/usr/bin/python3
"""Charts for the README, drawn with matplotlib (Debian's python3-matplotlib,
hence /usr/bin/python3).  The numbers come from make demo and make bench,
which call this script through kforklib.plot; it measures nothing itself.

  plot.py demo  DATA.json OUT.svg
  plot.py scale DATA.json OUT.svg

demo:  {"title": str, "note": str, "cases": [{"title": str, "cgroups":
        {"A": {"baseline": [before, after], "ours": [before, after]}, ...}}]}
scale: {"title": str, "note": str, "vms": [1, 8, ...], "kernels": {label:
        {"us_per_freed": [...], "reclaim_ms": [...], "reclaim_freed": [...]}}}
"""

import json
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

BASELINE, OURS = "#c0504d", "#2e75b6"
plt.rcParams.update({"font.size": 10, "svg.fonttype": "none",
                     "axes.spines.top": False, "axes.spines.right": False})


def demo(data, out):
    """Per case, shadow pages per cgroup before and after memory.reclaim in
    A: baseline against ours, before light, after dark."""
    cases = data["cases"]
    fig, axes = plt.subplots(1, len(cases), figsize=(5.2 * len(cases), 4.6),
                             squeeze=False)
    for ax, case in zip(axes[0], cases):
        groups = list(case["cgroups"])
        width = 0.2
        for k, (kernel, colour) in enumerate((("baseline", BASELINE), ("ours", OURS))):
            for w, when in enumerate(("before", "after")):
                xs = [g + (2 * k + w - 1.5) * width for g in range(len(groups))]
                ys = [case["cgroups"][g][kernel][w] for g in groups]
                bars = ax.bar(xs, ys, width, color=colour, alpha=0.35 if w == 0 else 1.0,
                              label=f"{'baseline (C)' if k == 0 else 'ours (Rust)'}, {when}")
                ax.bar_label(bars, padding=2, fontsize=8)
        ax.set_xticks(range(len(groups)), [f"cgroup {g}" for g in groups])
        ax.set_ylabel("page tables (sec_pagetables / 4 KiB)")
        ax.set_title(case["title"], fontsize=10)
        ax.set_ylim(0, max(max(v[kernel]) for v in case["cgroups"].values()
                           for kernel in ("baseline", "ours")) * 1.18)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.04))
    fig.suptitle(data["title"], fontsize=11, fontweight="bold")
    fig.text(0.01, 0.01, data.get("note", ""), fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out)


def scale(data, out):
    """Shrinker time per freed page and one memory.reclaim call, against the
    number of VMs sharing the same shadow pages."""
    vms = data["vms"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label, colour in zip(data["kernels"], (BASELINE, OURS)):
        k = data["kernels"][label]
        left.plot(vms, k["us_per_freed"], "o-", color=colour, label=label)
        if any(f for f in k["reclaim_freed"]):
            right.plot(vms, k["reclaim_ms"], "o-", color=colour, label=label)
            for x, y, f in zip(vms, k["reclaim_ms"], k["reclaim_freed"]):
                right.annotate(f"{f} freed", (x, y), textcoords="offset points",
                               xytext=(0, 7), ha="center", fontsize=7, color=colour)
        else:
            right.plot(vms, k["reclaim_ms"], "o--", color=colour,
                       label=f"{label} (freed no shadow page)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(vms, [str(v) for v in vms])
        ax.set_xlabel("VMs sharing the shadow pages")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, frameon=False)
    left.set_ylabel("shrinker time per freed page (us)")
    left.set_title("scan through shrinker_debugfs", fontsize=10)
    right.set_ylabel("one memory.reclaim call (ms)")
    right.set_title("memory.reclaim for all the cgroup's pages", fontsize=10)
    fig.suptitle(data["title"], fontsize=11, fontweight="bold")
    fig.text(0.01, 0.01, data.get("note", ""), fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("demo", "scale"):
        sys.exit(__doc__)
    with open(sys.argv[2]) as f:
        data = json.load(f)
    {"demo": demo, "scale": scale}[sys.argv[1]](data, sys.argv[3])


if __name__ == "__main__":
    main()
