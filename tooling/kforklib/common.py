"""Shared paths, constants and small helpers of the kfork tooling."""

import hashlib
import os
import re
import shlex
import subprocess
import sys
import time

# The pinned bases, chosen with KFORK_BASE (the Makefile's BASE=): Debian's
# linux-source packages.  Changing a version is a deliberate act: update the
# version and sha256 together after checking the new .deb by hand
# (apt-cache show linux-source-X=VERSION | grep SHA256).  Each base builds
# with its own clang and bindgen (the minima of its min-tool-version.sh).
BASES = {
    # Mainline, the source of truth: series.toml's default entries and our
    # files at their kernel paths are this base's.  From trixie-backports,
    # fetched with a private apt configuration (base.py) so the system's apt
    # is untouched.
    "7.3": dict(package="linux-source-7.3", version="7.3.4-1~bpo13+1",
                sha256="703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3",
                suite="trixie-backports", llvm="19", bindgen="0.72.1",
                bindgen_root="tools/bindgen-0.72.1",
                kvm_x86="x86", baseline="baseline (no shrinker)", cache_suffix="-7.3",
                full_vm_check=False,
                # KFENCE off in the debug kernel's tests: see DEBUG_APPEND
                # in kfork.py
                debug_append="kfence.sample_interval=0"),
    # Debian 13's kernel series, the backport: [commit."6.12"] tables and
    # patches/6.12/ carry its differences.
    "6.12": dict(package="linux-source-6.12", version="6.12.117-1~deb12u1",
                 sha256="e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703",
                 suite=None, llvm="16", bindgen="0.70.1", bindgen_root="tools",
                 kvm_x86="x86_64", baseline="baseline (C x86-mmu)", cache_suffix="",
                 # tooling/kvm-selftests.list (the whole KVM selftest list) and
                 # the CONFIG_MEMCG=n kernel run on this base
                 full_vm_check=True, debug_append=""),
}
# The base whose versions series.toml and our files hold (mainline first).
DEFAULT_BASE = "7.3"
BASE = os.environ.get("KFORK_BASE") or DEFAULT_BASE
if BASE not in BASES:
    sys.exit(f"[kfork] unknown BASE={BASE}; one of {', '.join(BASES)}")
_B = BASES[BASE]
BASE_PACKAGE = _B["package"]
BASE_VERSION = _B["version"]
BASE_SHA256 = _B["sha256"]
BASE_SUITE = _B["suite"]
BASE_LLVM = _B["llvm"]
BASE_BINDGEN = _B["bindgen"]
BASE_BINDGEN_ROOT = _B["bindgen_root"]  # under the cache (setup.sh installs)
# The KVM selftests' x86 directory, and the baseline kernel (our option off)
KVM_X86 = _B["kvm_x86"]
BASELINE_LABEL = _B["baseline"]
FULL_VM_CHECK = _B["full_vm_check"]
DEBUG_APPEND = _B["debug_append"]
BASE_TARBALL = f"./usr/src/{BASE_PACKAGE}.tar.xz"
BASE_TOPDIR = BASE_PACKAGE

# Fixed identity and dates make the assembled commits reproducible: the same
# repository state gives the same commit ids on every machine.
BASE_AUTHOR = "Debian kernel source <debian-kernel@lists.debian.org>"
BASE_DATE = "2026-11-14T12:56:00+00:00"
SERIES_DATE = "2026-11-26T00:00:00+00:00"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class KforkError(Exception):
    """An error that is reported to the user as is, without a traceback."""


def home():
    """Cache and work directory outside the repository (KFORK_HOME)."""
    default = os.path.join(os.environ.get("XDG_CACHE_HOME")
                           or os.path.expanduser("~/.cache"), "kvm-fork")
    return os.environ.get("KFORK_HOME", default)


def path(*parts):
    return os.path.join(home(), *parts)


def bpath(first, *rest):
    """A per-base cache path: path(first + the base's cache_suffix, ...)
    (trees, build dirs and logs of the two bases never mix; downloads, tools
    and ccache are shared).  6.12's has no suffix: it was the default base
    when the caches got their names, and renaming them would throw away
    every machine's builds."""
    return path(first + _B["cache_suffix"], *rest)


def tree_dir():
    """The assembled fork: a git tree, base commit plus one commit per entry."""
    return os.environ.get("KFORK_TREE", bpath("linux"))


def log(msg):
    print(f"[kfork] {msg}", flush=True)


def run(cmd, cwd=None, env=None, check=True, capture=False, input=None):
    """Run a command; on failure raise KforkError naming it and its output."""
    if isinstance(cmd, str):
        cmd = shlex.split(cmd)
    res = subprocess.run(cmd, cwd=cwd, env=env, input=input, text=True,
                         stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.PIPE if capture else None)
    if check and res.returncode != 0:
        out = ""
        if capture:
            out = "\n" + (res.stdout or "") + (res.stderr or "")
        raise KforkError(f"command failed (exit {res.returncode}): "
                         f"{shlex.join(cmd)}" + (f" [in {cwd}]" if cwd else "") + out)
    return res


def git(tree, *args, capture=True, check=True, env=None, input=None):
    res = run(["git", "-C", tree, *args], capture=capture, check=check,
              env=env, input=input)
    return res.stdout.strip() if capture and res.stdout is not None else res


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_logged(cmd, logfile, cwd=None, env=None, label="", progress=None):
    """Run a long command with its output in logfile; print progress lines.

    progress(line) may return a short string that is printed (at most every
    20 s), so that a long build shows it is alive without flooding.  On
    failure the tail of the log and its path are printed.
    """
    os.makedirs(os.path.dirname(logfile), exist_ok=True)
    start = time.monotonic()
    last = start
    count = 0
    with open(logfile, "w") as lf:
        lf.write(f"$ {shlex.join(cmd)}\n")
        lf.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        for line in proc.stdout:
            lf.write(line)
            count += 1
            now = time.monotonic()
            if now - last >= 20:
                extra = progress(line) if progress else None
                print(f"[kfork] {label}: {int(now - start)}s, {count} lines of "
                      f"output" + (f", {extra}" if extra else ""), flush=True)
                last = now
        rc = proc.wait()
    elapsed = time.monotonic() - start
    if rc != 0:
        with open(logfile) as lf:
            lines = lf.readlines()
        errors = [ln for ln in lines if re.search(
            r"(error|Error \d|\*\*\*|undefined reference|No such file)", ln)]
        if errors:
            sys.stdout.write("first error lines:\n" + "".join(errors[:15]))
        sys.stdout.write("last lines of the log:\n" + "".join(lines[-25:]))
        raise KforkError(f"{label} failed (exit {rc}) after {elapsed:.0f}s; "
                         f"full log: {logfile}")
    return elapsed
