#!/usr/bin/env python3
"""kfork: assemble, build, boot and test the KVM memcg-aware shrinker fork.

The Makefile at the repository root is the front door; it calls this script.
Run `tooling/kfork.py --help` for the commands.
"""

import argparse
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kforklib import (base, bench, build, checkpatch, plot, realvmm, results,  # noqa: E402
                      series, stress, vm)
from kforklib.common import (BASE, BASELINE_LABEL, BASES, DEBUG_APPEND,  # noqa: E402
                             DEFAULT_BASE, FULL_VM_CHECK, KVM_X86, REPO, KforkError,
                             bpath, git, log, path, tree_dir)

SELFTEST_LIST = os.path.join(REPO, "tooling", "kvm-selftests.list")
# KUnit suites that must show up in every check run: if one is missing, the
# kernel was built without it or crashed before it ran.
REQUIRED_SUITES = ["rust_doctests_kernel", "rust_kvm_shrinker"]

# Static checks of our Rust code, run by `make check` after the VM run (the
# clippy build replaces the crate's object, which the next build restores).
LINTS = [
    ("rustfmt", ["RUSTFMT=/usr/bin/rustfmt", "rustfmtcheck"]),
    ("clippy", ["CLIPPY=1", "CLIPPY_DRIVER=/usr/bin/clippy-driver",
                "rust/kvm_shrinker.o", "samples/rust/rust_shrinker_cache.o",
                "arch/x86/kvm/mmu/shrinker.o"]),
    ("rustdoc", ["rustdoc"]),
]


def cmd_fetch(args):
    print(base.fetch())


def cmd_assemble(args, keep_local=True):
    base.ensure_base_tree(tree_dir())
    force = args.force or os.environ.get("CI") == "true"
    series.assemble(tree_dir(), force=force, keep_local=keep_local)


def cmd_export(args):
    sender = series.sender_identity()
    cmd_assemble(args)
    series.export(tree_dir(), args.out or bpath("series"), sender=sender)


def cmd_pull(args):
    series.pull(tree_dir())


def cmd_kernel(args):
    cmd_assemble(args)
    build.kernel(args.variant)


def cmd_kmake(args):
    """Run kbuild in the variant's build directory with the fork's toolchain."""
    cmd = build.make_args(build.build_dir(args.variant)) + args.targets
    return subprocess.run(cmd, env=build.tools_env()).returncode


def lint_results(variant):
    """rustfmt, clippy and rustdoc: each passes only with no warning."""
    out = []
    for name, targets in LINTS:
        logf = bpath("logs", f"lint-{name}.log")
        os.makedirs(os.path.dirname(logf), exist_ok=True)
        with open(logf, "w") as f:
            rc = subprocess.run(build.make_args(build.build_dir(variant)) + targets,
                                env=build.tools_env(), stdout=f,
                                stderr=subprocess.STDOUT).returncode
        with open(logf) as f:
            text = f.read()
        bad = [ln for ln in text.splitlines()
               if ln.startswith(("warning", "error", "Diff in"))]
        ok = rc == 0 and not bad
        out.append(results.Result(
            f"lint:{name}", results.PASS if ok else results.FAIL,
            "" if ok else f"{(bad or ['exit %d' % rc])[0]} (log: {logf})"))
    return out


def cmd_selftests(args):
    build.selftests(args.variant)


def read_selftest_list(p=SELFTEST_LIST):
    """[(kind, test, rest)] with kind 'run' or 'skip' ('run:SECONDS', a run
    with its own timeout, counts as 'run')."""
    out = []
    with open(p) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if re.fullmatch(r"run:[1-9][0-9]*", parts[0]):
                parts[0] = "run"
            if parts[0] not in ("run", "skip") or len(parts) < 2:
                raise KforkError(f"{p}:{n}: expected 'run[:SECONDS] TEST [ARGS]' or "
                                 f"'skip TEST REASON', got: {line}")
            if parts[0] == "skip" and len(parts) < 3:
                raise KforkError(f"{p}:{n}: a skipped test needs a reason")
            out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return out


def result_name(test, args=""):
    """The name tooling/guest/check.sh reports for `test` run with `args`
    (`test` may carry the arguments itself): both without spaces."""
    return "".join(f"{test} {args}".split())


def selftest_list_results(st_out):
    """Every built selftest must be listed, to run or to skip with a reason."""
    listed = {t for _, t, _ in read_selftest_list()}
    built = set(build.selftest_binaries(st_out))
    res = [results.Result(f"selftest-list:{t}", results.FAIL,
                          "built but neither run nor skipped in "
                          "tooling/kvm-selftests.list") for t in sorted(built - listed)]
    res += [results.Result(f"selftest-list:{t}", results.FAIL,
                           "listed but not built") for t in sorted(listed - built)]
    if not res:
        res.append(results.Result("selftest-list:complete", results.PASS))
    return res


def cmd_vm(args):
    out = build.build_dir(args.variant)
    st = bpath("build", "selftests")
    r = vm.run_command(out, args.cmd, timeout=args.timeout,
                       selftests_dir=st if os.path.isdir(st) else None,
                       modules=bench.NESTED_MODULES if args.npt else args.modules,
                       append_extra=args.append,
                       single_thread=args.single_thread, sparse_numa=args.sparse_numa)
    if r.rc is None:
        return 1
    if r.rc != 0:
        log(f"guest command exited {r.rc}; console log: {r.log_path}")
    return r.rc


def debug_realvmm_options(guest_kernel_out=None):
    """run_case()'s options for a debug kernel: its own, and the plain
    kernel for the guests: `guest_kernel_out` if the caller built it,
    otherwise built here."""
    return {**realvmm.DEBUG_OPTIONS,
            "guest_kernel_out": guest_kernel_out or build.kernel("qemu")}


def cmd_realvmm(args):
    """The real-VMM case (tooling/guest/realvmm.sh) --runs times in one
    kernel, with npt=0 or --npt; prints each run and the failure rate."""
    cmd_assemble(args)
    out = build.kernel(args.variant)
    st = build.selftests(args.variant)
    modules = bench.NESTED_MODULES if args.npt else "kvm_amd:npt=0,nested=1"
    append = DEBUG_APPEND if args.variant == "debug" else ""
    label = (f"realvmm-{args.variant}{'-debugopts' if args.debug_options else ''}"
             f"-npt{1 if args.npt else 0}")
    options = (debug_realvmm_options() if args.variant == "debug" or args.debug_options
               else {})
    all_res, failed = [], 0
    start = time.monotonic()
    for i in range(args.runs):
        res, r = realvmm.run_case(f"{label}-{i + 1}", out, st, modules, passes=args.passes,
                                  append=append, wait=args.wait, **options)
        all_res += res
        bad = [x for x in res if x.status == results.FAIL]
        failed += bool(bad)
        log(f"run {i + 1}/{args.runs}: {'FAIL' if bad else 'ok'} in {r.elapsed:.0f}s "
            f"(TCG wall clock); console log: {r.log_path}")
        for x in bad:
            log(f"  {x.name}: {x.detail}")
    log(f"{BASE} {args.variant} {modules}: {failed} of {args.runs} runs failed")
    report(all_res, start)
    return 1 if failed else 0


def host_tests():
    """Run tooling/tests with unittest; one Result per test."""
    suite = unittest.defaultTestLoader.discover(os.path.join(REPO, "tooling", "tests"),
                                                top_level_dir=os.path.join(REPO, "tooling"))
    out = []

    class Collect(unittest.TextTestResult):
        def addSuccess(self, test):
            super().addSuccess(test)
            out.append(results.Result(f"host:{test.id()}", results.PASS))

        def addFailure(self, test, err):
            super().addFailure(test, err)
            out.append(results.Result(f"host:{test.id()}", results.FAIL,
                                      self._exc_info_to_string(err, test)))

        def addError(self, test, err):
            super().addError(test, err)
            out.append(results.Result(f"host:{test.id()}", results.FAIL,
                                      self._exc_info_to_string(err, test)))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            out.append(results.Result(f"host:{test.id()}", results.SKIP, reason))

    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=1,
                                     resultclass=Collect)
    runner.run(suite)
    return out


def export_series():
    """The series as git format-patch files (cover letter first), for the
    checks below."""
    return series.export(tree_dir(), bpath("series-check", "patches"))


def series_check(files):
    """The exported series applies with git am on the base and gives exactly
    the assembled tree."""
    tree = tree_dir()
    patches = [f for f in files if not os.path.basename(f).startswith("0000-")]
    wt = bpath("series-check", "base")
    git(tree, "worktree", "remove", "--force", wt, check=False)
    git(tree, "worktree", "prune")
    git(tree, "worktree", "add", "-q", "--detach", wt, "base")
    try:
        if patches:
            git(wt, "am", "-q", "--whitespace=nowarn", *patches)
        got = git(wt, "rev-parse", "HEAD^{tree}")
        want = git(tree, "rev-parse", "HEAD^{tree}")
        ok = got == want
        detail = "" if ok else f"tree {got[:12]} after git am != assembled {want[:12]}"
    finally:
        git(tree, "worktree", "remove", "--force", wt, check=False)
    return [results.Result(f"series:git-am-{len(patches)}-patches-onto-base",
                           results.PASS if ok else results.FAIL, detail)]


def checkpatch_results(files):
    """scripts/checkpatch.pl --strict on every patch of the exported series."""
    accepted = checkpatch.read_accepted()
    res = []
    for f in files:
        name = os.path.basename(f)
        if name.startswith("0000-"):
            continue
        found, out = checkpatch.run(f)
        bad = checkpatch.unaccepted(found, accepted)
        detail = "; ".join(repr(x) for x in bad) if bad else (
            f"{len(found)} accepted warning(s)" if found else "")
        res.append(results.Result(f"checkpatch:{name[:40]}",
                                  results.FAIL if bad else results.PASS, detail))
    return res


# Lists that get_maintainer.pl must name for a patch touching these paths
# (our MAINTAINERS entries), besides what it names anyway.
EXPECTED_LISTS = {
    "rust/kvm_shrinker/": ["rust-for-linux@vger.kernel.org", "linux-mm@kvack.org"],
    "samples/rust/rust_shrinker_cache.rs": ["rust-for-linux@vger.kernel.org"],
    "arch/x86/kvm/mmu/shrinker.": ["kvm@vger.kernel.org", "linux-mm@kvack.org",
                                   "rust-for-linux@vger.kernel.org"],
    f"tools/testing/selftests/kvm/{KVM_X86}/mmu_shrinker": ["kvm@vger.kernel.org",
                                                         "linux-mm@kvack.org"],
    "Documentation/virt/kvm/x86/mmu-shrinker.rst": ["kvm@vger.kernel.org",
                                                     "linux-mm@kvack.org"],
}


def recipient_results(files):
    """get_maintainer.pl names the lists of our MAINTAINERS entries for every
    patch that touches their files, and some list for every patch."""
    res = []
    for p in files:
        f = os.path.basename(p)
        if f.startswith("0000-"):
            continue
        names = checkpatch.recipients(p)
        lists = [n for n in names if "@vger.kernel.org" in n or "@kvack.org" in n]
        with open(p) as fh:
            touched = re.findall(r"^\+\+\+ b/(\S+)", fh.read(), re.M)
        want = sorted({x for prefix, ls in EXPECTED_LISTS.items()
                       if any(t.startswith(prefix) for t in touched) for x in ls})
        missing = [x for x in want if x not in lists]
        log(f"{f[:40]}: {', '.join(lists) or 'no list'}")
        ok = lists and not missing
        res.append(results.Result(f"maintainers:{f[:40]}",
                                  results.PASS if ok else results.FAIL,
                                  "" if ok else f"get_maintainer.pl does not name {missing or 'any list'}"))
    return res


def commit_build_results():
    """Every commit of the series builds with Rust (and the Rust MMU
    shrinker) on, and with Rust off."""
    tree = tree_dir()
    commits = git(tree, "rev-list", "--reverse", "base..HEAD").split()
    wt = bpath("series-check", "commit")
    git(tree, "worktree", "remove", "--force", wt, check=False)
    git(tree, "worktree", "prune")
    git(tree, "worktree", "add", "-q", "--detach", wt, commits[0])
    res = []
    try:
        for i, c in enumerate(commits, 1):
            git(wt, "checkout", "-q", "--detach", c)
            subj = git(wt, "log", "-1", "--format=%s")
            for variant, label in (("qemu", "rust-on"), ("norust", "rust-off")):
                name = f"commit-build:{i}-{label}"
                log(f"commit {i}/{len(commits)} ({label}): {subj}")
                try:
                    t = build.tree_kernel(wt, variant, bpath("build", f"series-{variant}"),
                                          f"build of commit {i} ({label})")
                    res.append(results.Result(name, results.PASS, f"{t:.0f}s"))
                except KforkError as e:
                    res.append(results.Result(name, results.FAIL, f"{subj}: {e}"))
    finally:
        git(tree, "worktree", "remove", "--force", wt, check=False)
    return res


def cmd_series_check(args):
    """The whole series: checkpatch, every commit built with Rust on and off,
    the Rust lints and the selftests build at the end."""
    if not os.environ.get("KFORK_BASE"):
        return for_each_base(args)
    start = time.monotonic()
    cmd_assemble(args)
    files = export_series()
    all_res = series_check(files)
    log("checkpatch --strict on every patch")
    all_res += checkpatch_results(files)
    log("get_maintainer.pl on every patch")
    all_res += recipient_results(files)
    all_res += commit_build_results()
    build.kernel("qemu")
    st = build.selftests("qemu")
    if FULL_VM_CHECK:
        all_res += selftest_list_results(st)
    else:
        # tooling/kvm-selftests.list is 6.12's; on 7.3 our tests must build.
        for t in (x.split()[0] for x in MAIN_TESTS):
            ok = os.access(os.path.join(st, t), os.X_OK)
            all_res.append(results.Result(f"selftest-build:{t}",
                                          results.PASS if ok else results.FAIL,
                                          "" if ok else f"not built in {st}"))
    log("lints: rustfmt, clippy, rustdoc")
    all_res += lint_results("qemu")
    report(all_res, start)
    return 1 if any(x.status == results.FAIL for x in all_res) else 0


def kernel_log_result(name, r, expect_oom=False):
    """Fails when the console of VM run `r` shows a kernel problem. With
    `expect_oom`, the report of an OOM kill is not one."""
    lines = results.without_oom_reports(r.lines) if expect_oom else r.lines
    problems = [ln for ln in lines if vm.KERNEL_PROBLEMS.search(ln)]
    return results.Result(name, results.FAIL if problems else results.PASS,
                          "; ".join(problems[:5]))


def vm_results(r, expect_tests):
    """Results that judge the VM run as a whole."""
    res = []
    kunit, tests = results.parse_console(r.lines)
    res += kunit
    res += tests
    if not r.booted:
        res.append(results.Result("vm:boot", results.FAIL, f"console: {r.log_path}"))
        return res
    suites = {x.name.split(":", 1)[1].split(".")[0] for x in kunit}
    for s in REQUIRED_SUITES:
        if s not in suites:
            res.append(results.Result(f"kunit:{s}", results.FAIL,
                                      "required KUnit suite did not run"))
    got = {t.name.split(":", 1)[1] for t in tests}
    for t in expect_tests:
        if t not in got:
            res.append(results.Result(f"selftest:{t}", results.FAIL,
                                      "no result reported (guest died or hung?)"))
    if r.timed_out or r.rc is None:
        res.append(results.Result("vm:exit", results.FAIL,
                                  "timed out" if r.timed_out else "no exit status"))
    res.append(kernel_log_result("vm:kernel-log-clean", r))
    return res


# The memcg-aware shrinker sample and the KVM MMU shrinker must still work,
# as plain per-node shrinkers, when memcg is disabled at boot and when it is
# compiled out.
SHRINKER_TEST = f"{KVM_X86}/mmu_shrinker_memcg_test"
# The vCPUs' MMU page caches (the kvm-mmu-cache shrinker): with shadow
# paging in the main boot, with the TDP MMU in the npt=1 boot.
CACHE_TEST = f"{KVM_X86}/mmu_cache_reclaim_test"
NO_MEMCG_TESTS = ["cgroup/test_rust_shrinker --no-memcg", SHRINKER_TEST]


# On the baseline kernel (the C shrinker), the KVM shrinker test reports
# the expected baseline behaviour: memcg reclaim frees nothing and the
# memory.max VM is OOM-killed (XFAIL), the other VM and the guests' data are
# untouched (PASS).
BASELINE_TESTS = [SHRINKER_TEST]

# kvm_amd npt=1: L1 runs on the TDP MMU and gives its L2 nested page
# tables, which L0 shadows (nested shadow pages, charged to L1's VMM): the
# case the shrinker matters most for.  The plain test needs shadow paging
# and skips there; -N runs the L2 guests.  On the baseline kernel the test
# reports what the C shrinker does with the same load.
NPT_TESTS = [f"{SHRINKER_TEST} -N", CACHE_TEST]

# Run again under lockdep, KASAN and DEBUG_LIST (VARIANT=debug): our
# shrinkers' reclaim paths, VM teardown and module paths.  On 7.3 KFENCE
# samples no allocation in this boot: there its pool's slab objects have no
# obj_exts and are never charged to a memcg (__memcg_slab_post_alloc_hook()
# skips them), so list_lru files the odd sampled object under no memcg and
# the tests' exact per-memcg counts are one or two short (seen: 1998 of
# 2000, 391 of 392).  6.12 charges them, and keeps KFENCE on here; make
# stress runs with it on both tracks.  (common.BASES: debug_append)
DEBUG_TESTS = [SHRINKER_TEST, f"{SHRINKER_TEST} -t 20", CACHE_TEST,
               "cgroup/test_rust_shrinker"]


def unload_race_results(label, out, st, args, rounds=3):
    """kvm.ko unloaded while reclaim runs (tooling/guest/unload-race.sh):
    single-threaded TCG and no idle VM, so that KVM may see its last VM go."""
    r = vm.run_command(out, f"sh /kfork/unload-race.sh {rounds}", timeout=900, modules="",
                       selftests_dir=st, single_thread=True, hold_vm=False,
                       echo=True if args.verbose else "progress", name=f"check-{label}")
    ok = r.rc == 0 and any(ln.startswith(f"KFORK-UNLOAD-RACE-OK {rounds}") for ln in r.lines)
    said = [ln for ln in r.lines if ln.startswith("round ")]
    detail = (said[-1] if said else "no round completed") + f"; console: {r.log_path}"
    return [results.Result(f"{label}:kvm-unload-under-reclaim",
                           results.PASS if ok else results.FAIL, "" if ok else detail),
            kernel_log_result(f"{label}:kernel-log-clean-after-unload", r)]


# make check runs a short make stress in the debug kernel, and the real-VMM
# case with shadow paging in the main kernel and in the debug kernel; make
# stress runs the latter longer, with npt=0 and npt=1.
CHECK_STRESS_SECONDS = 180
CHECK_REALVMM_PASSES = 2
STRESS_REALVMM_PASSES = 10


def stress_run(label, out, st, args, seconds, gen_seconds):
    """tooling/guest/stress.sh for `seconds` in the kernel built in `out`:
    (results, report text)."""
    r = vm.run_command(out, f"sh /kfork/stress.sh {seconds} {gen_seconds}",
                       timeout=seconds + 900, modules="", selftests_dir=st,
                       single_thread=True, hold_vm=False,
                       echo=True if getattr(args, "verbose", False) else "progress",
                       name=f"stress-{label}")
    totals, gens, failed = stress.parse(r.lines)
    reports = stress.kernel_reports(r.lines)
    res = stress.verdict(label, totals, reports, gens, failed, r.rc, r.log_path)
    text = "\n".join([
        f"make stress ({BASE}): {seconds} s in the debug kernel (lockdep, PROVE_RCU, "
        "KASAN, KFENCE, DEBUG_LIST), single-threaded TCG",
        stress.render(stress.rows(totals, reports, gens)),
        f"console log: {r.log_path}"])
    return res, text


def cmd_stress(args):
    """Everything at once in the debug kernel for --minutes, then a report."""
    if not os.environ.get("KFORK_BASE"):
        return for_each_base(args)
    start = time.monotonic()
    cmd_assemble(args)
    dbg = build.kernel("debug")
    st = build.selftests("debug")
    realvmm_options = debug_realvmm_options()
    seconds = int(args.minutes * 60)
    res, text = stress_run("stress", dbg, st, args, seconds, 120 if seconds >= 600 else 60)
    for npt, modules in ((0, "kvm_amd:npt=0,nested=1"), (1, bench.NESTED_MODULES)):
        log(f"the real-VMM case, npt={npt}, {STRESS_REALVMM_PASSES} passes after the resume")
        rres, r = realvmm.run_case(f"stress-realvmm-npt{npt}", dbg, st, modules,
                                   passes=STRESS_REALVMM_PASSES, append=DEBUG_APPEND,
                                   timeout=3600, **realvmm_options)
        res += rres
        ok = all(x.status == results.PASS for x in rres)
        text += (f"\nreal-VMM case, npt={npt}: {'ok' if ok else 'FAILED'}; "
                 f"console log: {r.log_path}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outf = bpath("logs", f"stress-{stamp}.txt")
    with open(outf, "w") as f:
        f.write(text + "\n")
    print()
    print(text)
    print(f"report: {outf}")
    report(res, start)
    return 1 if any(x.status == results.FAIL for x in res) else 0


def no_memcg_results(label, out, st, args, append="", kunit=False):
    return list_results(label, out, st, args, NO_MEMCG_TESTS, append, kunit)


def list_results(label, out, st, args, wanted, append="", kunit=False, expect_oom=False,
                 command="sh /kfork/check.sh", checks=(), env=None, **vm_args):
    """Boot `out` and run the selftests `wanted` (paths with arguments).
    `command` runs them (check.sh reads the list); `checks` names further
    results, LABEL:NAME, that it must report; `env` adds to the guest's
    environment and `vm_args` go to vm.run_command."""
    listf = bpath("vm", f"{label}.list")
    os.makedirs(os.path.dirname(listf), exist_ok=True)
    with open(listf, "w") as f:
        f.writelines(f"run {t}\n" for t in wanted)
    genv = {"KFORK_LIST": f"/kfork/{label}.list", "KFORK_RESULT_PREFIX": label}
    genv.update(env or {})
    r = vm.run_command(out, command, timeout=300, selftests_dir=st,
                       files=[(listf, f"kfork/{label}.list")], env=genv,
                       append_extra=append,
                       echo=True if args.verbose else "progress", name=f"check-{label}",
                       **vm_args)
    kunit_res, tests = results.parse_console(r.lines)
    res = list(tests)
    if kunit:
        # Only our suite: the kernel crate's doctests already ran above.
        ours = [x for x in kunit_res if x.name.startswith("kunit:rust_kvm_shrinker.")]
        res += [results.Result(f"{label}:{x.name}", x.status, x.detail) for x in ours]
        if not ours:
            res.append(results.Result(f"{label}:kunit:rust_kvm_shrinker", results.FAIL,
                                      f"suite did not run; console: {r.log_path}"))
    got = {t.name for t in tests}
    for name in [f"{label}:" + result_name(t) for t in wanted] + [f"{label}:{c}" for c in checks]:
        if name not in got:
            res.append(results.Result(name, results.FAIL, f"no result; console: {r.log_path}"))
    if r.timed_out or r.rc is None:
        res.append(results.Result(f"{label}:vm-exit", results.FAIL,
                                  ("timed out" if r.timed_out else "no exit status") +
                                  f"; console: {r.log_path}"))
    res.append(kernel_log_result(f"{label}:kernel-log-clean", r, expect_oom))
    return res


# A sparse NUMA node map (vm.SPARSE_NUMA_APPEND: nodes 0 and 2 possible, 1
# not, nr_node_ids 3): the crate's KUnit suite, the sample's selftest, then
# tooling/guest/sparse-numa.sh checks the node map, scans the sample through
# shrinker_debugfs on node 1 (nothing may be scanned) and on the possible
# nodes, and unloads it with objects left.
SPARSE_NUMA_TESTS = ["cgroup/test_rust_shrinker"]
SPARSE_NUMA_CHECKS = ["node-map", "debugfs-scan", "rmmod"]


def sparse_numa_results(label, out, st, args):
    return list_results(label, out, st, args, SPARSE_NUMA_TESTS, kunit=True,
                        command="sh /kfork/sparse-numa.sh", checks=SPARSE_NUMA_CHECKS,
                        env={"KFORK_SPARSE_POSSIBLE": vm.SPARSE_NUMA_POSSIBLE},
                        modules="", hold_vm=False, sparse_numa=True)


# What the main boot of a base other than the default runs (its upstream
# KVM selftests are not run there: see README.md, 'Two tracks'), after
# KUnit at boot.
MAIN_TESTS = ["cgroup/test_rust_shrinker", SHRINKER_TEST, CACHE_TEST]


def cmd_check(args):
    if not os.environ.get("KFORK_BASE"):
        return for_each_base(args)
    start = time.monotonic()
    all_res = []
    if BASE == DEFAULT_BASE:
        log("host-side tests of the tooling")
        all_res += host_tests()
    cmd_assemble(args)
    files = export_series()
    all_res += series_check(files)
    log("checkpatch --strict and get_maintainer.pl on every patch")
    all_res += checkpatch_results(files)
    all_res += recipient_results(files)
    out = build.kernel(args.variant)
    st = build.selftests(args.variant)
    console = None
    if FULL_VM_CHECK:
        all_res += selftest_list_results(st)
        runs = [result_name(t, a) for kind, t, a in read_selftest_list() if kind == "run"]
        # The guest reads the list itself; per-test timeouts bound the total.
        r = vm.run_command(out, "sh /kfork/check.sh", timeout=args.timeout,
                           selftests_dir=st, files=[(SELFTEST_LIST, "kfork/selftests.list")],
                           echo=True if args.verbose else "progress", name="check")
        all_res += vm_results(r, runs)
        console = r.log_path
    else:
        log("KUnit at boot, the cgroup selftest and the KVM shrinker selftest")
        all_res += list_results("main", out, st, args, MAIN_TESTS, kunit=True)
    log("the real-VMM case: Debian's QEMU and two Linux guests, reclaimed running "
        "and stopped")
    all_res += realvmm.run_case("realvmm", out, st, "kvm_amd:npt=0,nested=1",
                                passes=CHECK_REALVMM_PASSES,
                                echo=True if args.verbose else "progress")[0]
    log("kvm_amd npt=1: nested shadow pages of L2 guests with nested paging")
    all_res += list_results("npt", out, st, args, NPT_TESTS, modules=bench.NESTED_MODULES)
    log("a sparse NUMA node map (nodes 0 and 2, not 1)")
    all_res += sparse_numa_results("sparse-numa", out, st, args)
    all_res += no_memcg_results("memcg-disabled", out, st, args,
                                append="cgroup_disable=memory")
    if FULL_VM_CHECK:
        log("the kernel with CONFIG_MEMCG=n and KVM built in (KVM=y)")
        all_res += no_memcg_results("memcg-compiled-out-kvm-builtin", build.kernel("nomemcg"),
                                    st, args, kunit=True,
                                    append="kvm_amd.npt=0 kvm_amd.nested=1")
    log(f"the {BASELINE_LABEL} kernel (CONFIG_KVM_MMU_SHRINKER_RUST=n)")
    base = build.kernel("baseline")
    all_res += list_results("baseline", base, st, args, BASELINE_TESTS, expect_oom=True)
    all_res += list_results("baseline-npt", base, st, args, NPT_TESTS, expect_oom=True,
                            modules=bench.NESTED_MODULES)
    log("the debug kernel (lockdep, KASAN, DEBUG_LIST)")
    dbg = build.kernel("debug")
    all_res += list_results("debug", dbg, st, args, DEBUG_TESTS, kunit=True,
                            append=DEBUG_APPEND)
    all_res += unload_race_results("debug", dbg, st, args)
    log("the real-VMM case in the debug kernel")
    all_res += realvmm.run_case("debug-realvmm", dbg, st, "kvm_amd:npt=0,nested=1",
                                passes=CHECK_REALVMM_PASSES, append=DEBUG_APPEND,
                                echo=True if args.verbose else "progress",
                                **debug_realvmm_options(
                                    out if args.variant == "qemu" else None))[0]
    log(f"make stress for {CHECK_STRESS_SECONDS} s in the debug kernel")
    res, text = stress_run("debug", dbg, st, args, CHECK_STRESS_SECONDS, 60)
    print(text)
    all_res += res
    log("lints: rustfmt, clippy, rustdoc")
    all_res += lint_results(args.variant)
    report(all_res, start, console, args.results)
    return 1 if any(x.status == results.FAIL for x in all_res) else 0


def for_each_base(args):
    """Run this command once per base (KFORK_BASE=7.3, then 6.12), each in
    its own process; for `check`, print the results of both together."""
    start = time.monotonic()
    all_res, rcs = [], []
    for b in BASES:
        log(f"=== base {b} ===")
        env = dict(os.environ, KFORK_BASE=b)
        extra = []
        resf = bpath("logs", f"check-results-{b}.json")
        os.makedirs(os.path.dirname(resf), exist_ok=True)
        if args.cmd == "check":
            extra = ["--results", resf]
            if os.path.exists(resf):
                os.remove(resf)
        rc = subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:], *extra],
                            env=env).returncode
        rcs.append(rc)
        if args.cmd == "check":
            got = results.load(resf) if os.path.exists(resf) else []
            if not got:
                got = [results.Result(f"{b}:check", results.FAIL,
                                      f"no results (exit {rc})")]
            all_res += [results.Result(f"{b}/{x.name}", x.status, x.detail) for x in got]
    if args.cmd == "check":
        print(f"\n=== both bases ({', '.join(BASES)}) ===")
        report(all_res, start)
    return max(rcs)


def report(all_res, start, console_log=None, results_file=None):
    groups = {}
    for x in all_res:
        g = x.name.split(":", 1)[0]
        groups.setdefault(g, []).append(x)
    print()
    for g, xs in groups.items():
        print(f"  {g:14s} {results.summary(xs)}")
    fails = [x for x in all_res if x.status == results.FAIL]
    for x in fails:
        print(f"FAILED {x.name}: {x.detail.strip().splitlines()[-1] if x.detail.strip() else ''}")
    if console_log:
        print(f"console log: {console_log}")
    print(f"elapsed: {time.monotonic() - start:.0f}s")
    if results_file:
        results.save(all_res, results_file)
    print(results.summary(all_res))


def run_on_kernels(args, command, what, name, echo, **vm_args):
    """Build the baseline and our kernel (bench.KERNELS) and run the same
    guest command in each; {kernel key: VmResult}. Fails on the first run
    that does not exit 0, naming its console log. `vm_args` go to
    vm.run_command."""
    cmd_assemble(args)
    runs = {}
    for key, label in bench.KERNELS:
        out = build.kernel(key)
        st = build.selftests(key)
        log(f"booting the {label} kernel: {what}")
        r = vm.run_command(out, command, timeout=args.timeout, selftests_dir=st,
                           echo=echo, name=f"{name}-{key}", **vm_args)
        if r.rc != 0:
            raise KforkError(f"the {name} run on the {label} kernel failed "
                             f"(exit {r.rc}); console log: {r.log_path}")
        runs[key] = r
    return runs


# The two cases make bench and make demo show: (title, -N, vm_args).
CASES = (("shadow paging (kvm_amd npt=0): the VMs' own shadow pages", False, {}),
         ("nested paging (kvm_amd npt=1): L2 guests, L0's shadows of L1's nested "
          "page tables", True, {"modules": bench.NESTED_MODULES}))


def cmd_bench(args):
    """The baseline kernel (our option off) against ours, same guest command on both,
    with shadow paging and with nested paging."""
    if not os.environ.get("KFORK_BASE"):
        return for_each_base(args)
    text = []
    for title, nested, vm_args in CASES:
        runs = run_on_kernels(args, bench.guest_command(args.runs, nested),
                              f"{title}: the memcg test once, then -b {args.runs} times",
                              "bench-nested" if nested else "bench", "progress", **vm_args)
        parsed = {}
        for key, r in runs.items():
            parsed[key] = bench.parse(r.lines)
        text += [title, bench.render(bench.rows(parsed))]
        if not nested:
            scale = parsed
            text += ["", "scale: the same shadow pages shared by 1 to 64 VMs in one cgroup",
                     bench.render(bench.scale_rows(parsed))]
        text += [f"console log, {label}: {runs[key].log_path}" for key, label in bench.KERNELS]
        text.append("")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outf = bpath("logs", f"bench-{stamp}.txt")
    with open(outf, "w") as f:
        f.write("\n".join(text))
    chart = plot.draw("scale", bench.scale_data(
        scale, f"{bench.TEST.rsplit('/', 1)[1]} -s: reclaim cost against the number of VMs",
        f"make bench, {time.strftime('%Y-%m-%d')}: QEMU TCG, kvm_amd npt=0, "
        "384 chunks in all, three repetitions per point"),
        bpath("logs", f"bench-scale-{stamp}.svg"))
    print()
    print("\n".join(text))
    print(f"table: {outf}\nchart: {chart}")
    return 0


def cmd_demo(args):
    """Build the fork and the baseline kernel, boot each, and show what the
    memcg-aware shrinker changes: a table per cgroup, and a chart."""
    if not os.environ.get("KFORK_BASE"):
        return for_each_base(args)
    runs, tables = None, []
    for title, nested, vm_args in CASES:
        got = run_on_kernels(args, "sh /kfork/demo.sh" + (" -N" if nested else ""),
                             f"{title}: two VMs in two cgroups, memory.reclaim "
                             "written to cgroup A only",
                             "demo-nested" if nested else "demo", False, **vm_args)
        runs = runs or got
        tables.append((title, got, {k: bench.parse(got[k].lines) for k, _ in bench.KERNELS}))
    r = runs["qemu"]
    kunit, _ = results.parse_console(r.lines)
    print()
    print("=== the fork kernel, booted under QEMU TCG ===")
    commits = git(tree_dir(), "log", "--reverse", "--format=%s", "base..HEAD")
    print(f"  fork tree: {tree_dir()}, base + {len(commits.splitlines())} commits:")
    for c in commits.splitlines():
        print(f"    {c}")
    for ln in r.lines:
        if ln.startswith("DEMO "):
            print("  " + ln[5:])
    print(f"  KUnit at boot: {results.summary(kunit)} "
          f"({len({k.name.split('.')[0] for k in kunit})} suites)")
    for ln in runs["baseline"].lines:
        if ln.startswith("DEMO MMU shrinker"):
            print("  baseline kernel: " + ln[5:])
    title = ("Two VMs, each in its own memory cgroup; memory.reclaim written "
             "to cgroup A only (before -> after)")
    print()
    print(title)
    for case, got, parsed in tables:
        print(f"\n{case}")
        print(bench.render(bench.demo_rows(parsed)))
        for key, label in bench.KERNELS:
            print(f"  console log, {label}: {got[key].log_path}")
    chart = plot.draw("demo", bench.demo_data(
        [(case.split(":")[0], parsed) for case, _, parsed in tables],
        "Page tables per cgroup before and after memory.reclaim written to cgroup A only",
        f"make demo, {time.strftime('%Y-%m-%d')}: QEMU TCG, two VMs of 384 chunks, "
        "each in its own cgroup"), bpath("logs", "demo-chart.svg"))
    print(f"\n  as a chart: {chart}")
    ok = kunit and not any(k.status == results.FAIL for k in kunit)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = {}
    for name, fn, hlp in (
            ("fetch", cmd_fetch, "download and verify the pinned base .deb"),
            ("assemble", lambda a: cmd_assemble(a, keep_local=False),
             "assemble the fork tree (base + series)"),
            ("export", cmd_export, "git format-patch the series with a cover letter"),
            ("pull", cmd_pull, "bring commits made in the fork tree back into the repo"),
            ("kernel", cmd_kernel, "build the kernel and modules"),
            ("selftests", cmd_selftests, "build the KVM selftests (static)"),
            ("kmake", cmd_kmake, "run kbuild with the fork's toolchain: kmake TARGET.. [VAR=..]"),
            ("vm", cmd_vm, "boot the kernel and run a command inside"),
            ("check", cmd_check, "run every test, print 'N passed, N failed, N skipped'"),
            ("demo", cmd_demo, "build, boot and show the fork working"),
            ("bench", cmd_bench, "compare the baseline (C) MMU shrinker with ours"),
            ("stress", cmd_stress, "everything at once in the debug kernel, then a report"),
            ("realvmm", cmd_realvmm, "Debian's QEMU running Linux guests in the fork, "
             "reclaimed while running and stopped"),
            ("series-check", cmd_series_check,
             "checkpatch, every commit built with Rust on and off, lints")):
        s = sub.add_parser(name, help=hlp)
        s.set_defaults(fn=fn)
        s.add_argument("--force", action="store_true",
                       help="set aside local work in the fork tree on a branch")
        s.add_argument("--variant", default="qemu", choices=sorted(build.VARIANTS))
        sp[name] = s
    sp["export"].add_argument("--out", help="output directory")
    sp["kmake"].add_argument("targets", nargs="*", help="make targets and variables")
    sp["vm"].add_argument("cmd", help="shell command to run in the guest")
    sp["vm"].add_argument("--modules", default="kvm_amd:npt=0,nested=1",
                          help="modules to load: NAME[:P=V,P=V] ...")
    sp["vm"].add_argument("--npt", action="store_true",
                          help=f"load {bench.NESTED_MODULES} instead (TDP; nested "
                          "shadow pages for L2 guests)")
    sp["vm"].add_argument("--append", default="", help="extra kernel command line")
    sp["vm"].add_argument("--single-thread", action="store_true",
                          help="single-threaded TCG")
    sp["vm"].add_argument("--sparse-numa", action="store_true",
                          help="a sparse node map: nodes 0 and 2 possible, 1 not "
                          "(see SPARSE_NUMA_APPEND in tooling/kforklib/vm.py)")
    for name in ("vm", "check", "demo", "bench"):
        sp[name].add_argument("--timeout", type=int, default=1800 if name == "check" else 600)
    sp["bench"].add_argument("--runs", type=int, default=3,
                             help="benchmark (-b) runs per kernel")
    sp["check"].add_argument("--verbose", action="store_true", help="echo the console")
    sp["stress"].add_argument("--minutes", type=float, default=30,
                              help="how long (default 30)")
    sp["check"].add_argument("--results", help=argparse.SUPPRESS)
    sp["realvmm"].add_argument("--runs", type=int, default=1, help="how many boots")
    sp["realvmm"].add_argument("--passes", type=int, default=3,
                               help="guest passes required after the resume")
    sp["realvmm"].add_argument("--wait", type=int,
                               help="polls (a second or more each) a step may wait "
                               "for the guests (600)")
    sp["realvmm"].add_argument("--debug-options", action="store_true",
                               help="run any variant as the debug kernel runs (qboot, "
                                    "the plain kernel in the guests), to tell the debug "
                                    "kernel's findings from the setup's")
    sp["realvmm"].add_argument("--npt", action="store_true",
                               help=f"load {bench.NESTED_MODULES} (TDP MMU in the fork)")
    args = p.parse_args()
    try:
        return args.fn(args) or 0
    except KforkError as e:
        print(f"kfork: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
