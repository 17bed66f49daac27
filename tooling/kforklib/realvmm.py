"""The real-VMM case: Debian's QEMU with KVM, running Linux guests, inside
the fork (tooling/guest/realvmm.sh says what it checks).

The fork's initramfs gets the host's qemu-system-x86_64 (the Debian package
that setup.sh installs) with the shared libraries it links and its
firmware, and the guests' kernel and initramfs: the fork's own bzImage,
whose init is tooling/guest/memcheck.c.
"""

import os
import re
import shutil

from . import results, vm
from .common import REPO, KforkError, bpath, run

QEMU = "/usr/bin/qemu-system-x86_64"
# What the debug kernels need (see run_case): qboot, and multi-threaded
# TCG like every other run.  Not single-threaded TCG: under it the guests'
# kernels die early ("Fatal exception in interrupt" in exc_page_fault(),
# a per-CPU access through a GS base of 0), in the baseline kernel (our
# option off) as in ours: 5 of 5 runs of 6.12's baseline, 2 of 2 of it
# under multi-threaded TCG clean.
DEBUG_OPTIONS = {"firmware": "qboot", "single_thread": False}
FIRMWARE_DIRS = ("/usr/share/qemu", "/usr/share/seabios")
OK_MARK = "KFORK-REALVMM-OK"
STAT_RE = re.compile(r"^realvmm-stat (\S+) (-?\d+)\s*$")


def _shared_libraries(binary):
    """The absolute paths of the shared objects `binary` loads (ldd)."""
    res = run(["ldd", binary], capture=True)
    found = []
    for line in res.stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            found.append(m[1])
    if not found:
        raise KforkError(f"ldd found no shared libraries for {binary}:\n{res.stdout}")
    return found


def _l2_initrd():
    """Builds memcheck (static) and the guests' initramfs; returns its path."""
    d = bpath("realvmm")
    root = os.path.join(d, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    run(["gcc", "-static", "-O2", "-Wall", "-o", os.path.join(root, "init"),
         os.path.join(REPO, "tooling", "guest", "memcheck.c")])
    return vm.write_cpio(root, os.path.join(d, "initrd.cpio"))


def payload(selftests_dir, guest_kernel_out):
    """(source, path in the fork's initramfs) of everything the case needs:
    QEMU, the guests' kernel (the bzImage in `guest_kernel_out`) and
    initramfs, and the helper that holds an idle VM (see tooling/guest/init)."""
    if not os.path.exists(QEMU):
        raise KforkError(f"no {QEMU}: run `make setup` (package qemu-system-x86)")
    files = [(QEMU, QEMU.lstrip("/")),
             (os.path.join(selftests_dir, "kfork-kvm-hold"), "kselftests/kfork-kvm-hold")]
    files += [(lib, lib.lstrip("/")) for lib in _shared_libraries(QEMU)]
    for d in FIRMWARE_DIRS:
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p):  # follows links; skips directories
                files.append((p, p.lstrip("/")))
    files.append((os.path.join(guest_kernel_out, "arch", "x86", "boot", "bzImage"),
                  "kfork/l2/bzImage"))
    files.append((_l2_initrd(), "kfork/l2/initrd.cpio"))
    return files


def parse(lines):
    """{name: value} of the realvmm-stat lines of a run."""
    stats = {}
    for ln in lines:
        m = STAT_RE.match(ln)
        if m:
            stats[m[1]] = int(m[2])
    return stats


def verdict(label, r):
    """The results of one run: the case itself, and the kernel log."""
    ok = r.rc == 0 and any(ln.startswith(OK_MARK) for ln in r.lines)
    said = [ln for ln in r.lines if ln.startswith("realvmm: FAIL")]
    if ok:
        detail = ""
    elif said:
        detail = f"{said[0]}; console: {r.log_path}"
    elif r.timed_out:
        detail = f"timed out; console: {r.log_path}"
    else:
        detail = f"exit {r.rc}; console: {r.log_path}"
    problems = r.kernel_problems()
    return [results.Result(f"{label}:realvmm", results.PASS if ok else results.FAIL, detail),
            results.Result(f"{label}:realvmm-kernel-log-clean",
                           results.FAIL if problems else results.PASS,
                           "; ".join(problems[:5]))]


def run_case(label, kernel_out, selftests_dir, modules, passes=3, timeout=1500,
             echo="progress", append="", wait=None, firmware=None, single_thread=False,
             guest_kernel_out=None):
    """Boots the kernel in `kernel_out` and runs the case once: (results,
    VmResult).  The guests run the bzImage of `guest_kernel_out` (default:
    `kernel_out`); a debug kernel's guests run the plain one, since
    KASAN in the guests only slows down what the host kernel is checked
    for.  `wait`: how long each step may wait for the guests, in
    polls of a second or more (600 if None); `firmware`: "qboot" for
    qboot without VGA (see realvmm.sh);
    `single_thread`: single-threaded TCG (see DEBUG_OPTIONS)."""
    r = vm.run_command(kernel_out, f"sh /kfork/realvmm.sh {passes}", timeout=timeout,
                       single_thread=single_thread,
                       modules=modules,
                       files=payload(selftests_dir, guest_kernel_out or kernel_out), echo=echo,
                       name=f"realvmm-{label}", append_extra=append,
                       env={"KFORK_REALVMM_WAIT": wait or 600,
                            "KFORK_REALVMM_FIRMWARE": firmware or "seabios"})
    return verdict(label, r), r
