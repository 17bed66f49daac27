"""Configure and build the fork kernel, its modules and the KVM selftests."""

import glob
import hashlib
import os
import re
import shutil

from .common import (BASE, BASE_BINDGEN_ROOT, BASE_LLVM, REPO, KforkError, bpath, git,
                     log, path, run, run_logged, tree_dir)

VARIANTS = {
    # name: config fragments merged, in order, on top of tinyconfig
    "qemu": ["configs/qemu.config"],
    "debug": ["configs/qemu.config", "configs/debug.config"],
    # Memory cgroups compiled out: rust/kvm_shrinker must build and its
    # shrinkers must work as plain global ones; and KVM built in, so that
    # the Rust MMU shrinker links into vmlinux (one kernel for both, to
    # save a build: neither needs the other's opposite).
    "nomemcg": ["configs/qemu.config", "configs/nomemcg.config", "configs/kvmy.config"],
    # Our option off: the C shrinker on 6.12, no MMU shrinker on 7.3.
    "baseline": ["configs/qemu.config", "configs/baseline.config"],
    # No Rust at all: KVM with the C shrinker, what Rust-less builds get.
    "norust": ["configs/qemu.config", "configs/norust.config"],
}

LLVM_BIN = f"/usr/lib/llvm-{BASE_LLVM}/bin"


def tools_env():
    env = dict(os.environ)
    env["CCACHE_DIR"] = path("ccache")
    env.setdefault("CCACHE_MAXSIZE", "5G")
    env["LIBCLANG_PATH"] = f"{os.path.dirname(LLVM_BIN)}/lib"
    env["PATH"] = path("tools", "bin") + ":" + env.get("PATH", "")
    return env


def make_args(outdir, tree=None):
    """The kbuild command line: the base's clang/lld, Debian's rustc,
    ccache, O=."""
    return ["make", "-C", tree or tree_dir(), f"O={outdir}", "ARCH=x86_64",
            f"LLVM=-{BASE_LLVM}", f"CC=ccache clang-{BASE_LLVM}",
            "RUSTC=/usr/bin/rustc", "RUSTDOC=/usr/bin/rustdoc",
            f"BINDGEN={path(BASE_BINDGEN_ROOT, 'bin', 'bindgen')}",
            f"-j{os.cpu_count() or 2}"]


def build_dir(variant):
    return bpath("build", variant)


def fragments(variant, extra=()):
    """The variant's fragments, then the base's own (options whose name or
    existence differs between the bases), then `extra`."""
    if variant not in VARIANTS:
        raise KforkError(f"unknown variant {variant}; one of {sorted(VARIANTS)}")
    return ([os.path.join(REPO, f) for f in VARIANTS[variant]]
            + [os.path.join(REPO, "configs", f"base-{BASE}.config")] + list(extra))


def parse_fragment(p):
    """{CONFIG_X: value} with 'n' for '# CONFIG_X is not set'."""
    want = {}
    with open(p) as f:
        for line in f:
            line = line.strip()
            m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
            if m:
                want[m[1]] = m[2]
            m = re.match(r"^# (CONFIG_\w+) is not set$", line)
            if m:
                want[m[1]] = "n"
    return want


def check_config(config_file, frags):
    """Every option of the fragments, later ones overriding earlier ones, must
    have its value in the final .config."""
    have = parse_fragment(config_file)
    want = {}
    for frag in frags:
        for k, v in parse_fragment(frag).items():
            want[k] = (v, frag)
    bad = []
    for k, (v, frag) in want.items():
        got = have.get(k, "n")
        if got != v:
            bad.append(f"  {k}={v} (from {os.path.relpath(frag, REPO)}) "
                       f"ended up as {k}={got}")
    if bad:
        raise KforkError("kernel config: options did not stick (unmet "
                         "dependencies or typos):\n" + "\n".join(bad))


def configure(variant, extra=(), out=None, tree=None, check=True):
    """Configure `tree` (the fork tree) for `variant` in `out` (its build
    dir). `check=False` skips checking that every option stuck, for trees
    of earlier commits that do not have all of our options yet."""
    out = out or build_dir(variant)
    tree = tree or tree_dir()
    frags = fragments(variant, extra)
    h = hashlib.sha256()
    for f in frags:
        with open(f, "rb") as fh:
            h.update(fh.read())
    h.update(" ".join(make_args("O", tree)).encode())
    stamp = os.path.join(out, ".kfork-config")
    cfg = os.path.join(out, ".config")
    if os.path.exists(stamp) and os.path.exists(cfg):
        with open(stamp) as f:
            if f.read().strip() == h.hexdigest():
                return out
    os.makedirs(out, exist_ok=True)
    env = tools_env()
    log(f"configuring the {variant} kernel in {out}")
    logf = bpath("logs", f"config-{variant}.log")
    run_logged(make_args(out, tree) + ["tinyconfig"], logf, env=env,
               label="make tinyconfig")
    run_logged([os.path.join(tree, "scripts/kconfig/merge_config.sh"),
                "-m", "-O", out, cfg, *frags], logf + ".merge", env=env,
               cwd=tree, label="merge_config")
    run_logged(make_args(out, tree) + ["olddefconfig"], logf + ".olddefconfig",
               env=env, label="make olddefconfig")
    if check:
        check_config(cfg, frags)
    with open(stamp, "w") as f:
        f.write(h.hexdigest() + "\n")
    return out


def _progress(line):
    m = re.match(r"\s+(CC|RUSTC|LD|AR|BINDGEN|AS)\b.*?(\S+)$", line)
    return f"now at {m[1]} {m[2]}" if m else None


def tree_kernel(tree, variant, out, label):
    """Build bzImage and modules of another tree (a commit of the series)
    into `out`; returns the seconds it took."""
    configure(variant, out=out, tree=tree, check=False)
    return run_logged(make_args(out, tree) + ["bzImage", "modules"],
                      bpath("logs", f"series-build-{variant}.log"), env=tools_env(),
                      label=label, progress=_progress)


def kernel(variant="qemu", extra=()):
    """Build bzImage, modules and uapi headers; install modules for the VM."""
    out = configure(variant, extra)
    env = tools_env()
    t = run_logged(make_args(out) + ["bzImage", "modules"],
                   bpath("logs", f"kernel-{variant}.log"), env=env,
                   label=f"kernel build ({variant})", progress=_progress)
    log(f"kernel ({variant}) built in {t:.0f}s: {out}/arch/x86/boot/bzImage")
    modroot = os.path.join(out, "modroot")
    shutil.rmtree(modroot, ignore_errors=True)
    run_logged(make_args(out) + ["modules_install",
                                 f"INSTALL_MOD_PATH={modroot}"],
               bpath("logs", f"modules-{variant}.log"), env=env,
               label="modules_install")
    run_logged(make_args(out) + ["headers"], bpath("logs", f"headers-{variant}.log"),
               env=env, label="make headers")
    return out


def selftests(variant="qemu"):
    """Build the KVM selftests of the assembled tree, statically."""
    out = build_dir(variant)
    hdrs = os.path.join(out, "usr", "include")
    if not os.path.isdir(hdrs):
        raise KforkError(f"no uapi headers in {hdrs}: build the kernel first")
    st_out = bpath("build", "selftests")
    # The output directory serves every tree assembled here (from any
    # worktree of this repository), and make only compares times: a test
    # source that assembly wrote back to an older version (another
    # worktree's series) looks older than the binary built from the newer
    # one, and the stale binary would run. So a new tree commit builds from
    # scratch (about 15 s).
    stamp = os.path.join(st_out, ".kfork-tree-commit")
    head = git(tree_dir(), "rev-parse", "HEAD")
    built_for = None
    if os.path.exists(stamp):
        with open(stamp) as f:
            built_for = f.read().strip()
    if built_for != head:
        shutil.rmtree(st_out, ignore_errors=True)
    os.makedirs(st_out, exist_ok=True)
    t = run_logged(["make", "-C", os.path.join(tree_dir(), "tools/testing/selftests/kvm"),
                    f"OUTPUT={st_out}", f"KHDR_INCLUDES=-isystem {hdrs}",
                    "EXTRA_CFLAGS=-static", f"-j{os.cpu_count() or 2}"],
                   bpath("logs", "selftests.log"), env=tools_env(),
                   label="KVM selftests build")
    # Our cgroup selftest (only ours: the other cgroup tests are not run).
    cg_out = os.path.join(st_out, "cgroup")
    os.makedirs(cg_out, exist_ok=True)
    env = tools_env()
    env["LDFLAGS"] = "-static"
    run_logged(["make", "-C", os.path.join(tree_dir(), "tools/testing/selftests/cgroup"),
                f"OUTPUT={cg_out}", f"KHDR_INCLUDES=-isystem {hdrs}",
                os.path.join(cg_out, "test_rust_shrinker")],
               bpath("logs", "selftests-cgroup.log"), env=env,
               label="cgroup selftest build")
    helper_src = os.path.join(REPO, "tooling", "guest", "kvm-hold.c")
    helper = os.path.join(st_out, "kfork-kvm-hold")
    if (not os.path.exists(helper)
            or os.path.getmtime(helper) < os.path.getmtime(helper_src)):
        run(["gcc", "-static", "-O2", "-Wall", "-isystem", hdrs, "-o", helper,
             helper_src])
    with open(stamp, "w") as f:
        f.write(head + "\n")
    log(f"KVM selftests built in {t:.0f}s: {st_out}")
    return st_out


def selftest_binaries(st_out):
    """Relative paths of the built selftest executables."""
    found = []
    for p in sorted(glob.glob(os.path.join(st_out, "**", "*"), recursive=True)):
        if (os.path.isfile(p) and os.access(p, os.X_OK) and "." not in
                os.path.basename(p) and not os.path.basename(p).startswith("kfork-")):
            found.append(os.path.relpath(p, st_out))
    return found
