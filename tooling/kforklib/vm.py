"""Boot the fork kernel under QEMU TCG and run one command inside it.

The guest is a hand-made initramfs: busybox-static, the kernel's modules, the
static KVM selftests and the scripts in tooling/guest.  It needs no disk
image, no root and no network, boots in seconds, and is rebuilt for every
run from its parts, so what runs is always what was just built.
"""

import os
import queue
import re
import shlex
import shutil
import subprocess
import threading
import time

from .common import REPO, KforkError, bpath, log, path

BUSYBOX = "/bin/busybox"
EXIT_RE = re.compile(r"^KFORK-EXIT (\d+)\s*$")
BOOT_MARK = "KFORK-BOOTED"
# What the console must never show, whatever the command's exit status.
KERNEL_PROBLEMS = re.compile(
    r"(BUG:|Oops|WARNING:|Kernel panic|general protection fault|"
    r"KASAN|UBSAN|possible circular locking|possible recursive locking|"
    r"inconsistent lock state|suspicious RCU usage|list_(add|del) corruption|"
    r"INFO: task .* blocked|rcu_.*detected stall|Call Trace:)")


class VmResult:
    def __init__(self, rc, log_path, lines, booted, timed_out, elapsed):
        self.rc = rc
        self.log_path = log_path
        self.lines = lines
        self.booted = booted
        self.timed_out = timed_out
        self.elapsed = elapsed

    def kernel_problems(self):
        return [ln for ln in self.lines if KERNEL_PROBLEMS.search(ln)]


def _copytree(src, dst):
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)


def make_initramfs(kernel_out, command, env, selftests_dir=None, files=()):
    """Write the initramfs for one run and return its path."""
    root = bpath("vm", "root")
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev",
              "tmp", "run", "kfork", "lib", "kselftests", "root", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    guest = os.path.join(REPO, "tooling", "guest")
    shutil.copy2(os.path.join(guest, "init"), os.path.join(root, "init"))
    for f in os.listdir(guest):
        if f.endswith(".sh"):
            shutil.copy2(os.path.join(guest, f), os.path.join(root, "kfork", f))
    for src, rel in files:
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(root, rel))
    with open(os.path.join(root, "kfork", "cmd.sh"), "w") as f:
        f.write("#!/bin/sh\n" + command + "\n")
    with open(os.path.join(root, "kfork", "env"), "w") as f:
        for k, v in env.items():
            f.write(f"{k}={shlex.quote(str(v))}\nexport {k}\n")
    mods = os.path.join(kernel_out, "modroot", "lib", "modules")
    if os.path.isdir(mods):
        _copytree(mods, os.path.join(root, "lib", "modules"))
    if selftests_dir:
        _copytree(selftests_dir, os.path.join(root, "kselftests"))
        # Object files and dependency files are not needed in the guest.
        for dp, _, fs in os.walk(os.path.join(root, "kselftests")):
            for f in fs:
                if f.endswith((".o", ".d", ".a")):
                    os.remove(os.path.join(dp, f))
    return write_cpio(root, bpath("vm", "initramfs.cpio"))


def write_cpio(root, initrd):
    """Packs the directory `root` into the initramfs `initrd`; returns it."""
    res = subprocess.run(f"find . -print0 | cpio --null -o -H newc --quiet "
                         f"-R 0:0 > '{initrd}'", shell=True, cwd=root)
    if res.returncode != 0:
        raise KforkError(f"building the initramfs {initrd} with cpio failed")
    return initrd


# 3 GiB: q35 then keeps 2 GiB below the PCI hole and maps the rest at 4 GiB,
# so the last RAM page frame is 64-aligned.  With 2 GiB, RAM ended at pfn
# 0x7ffdf and access_tracking_perf_test failed whenever the guest memory
# landed in that last partial 64-page chunk: /sys/kernel/mm/page_idle/bitmap
# gives a short read there (seen once in four runs).
def qemu_cmd(bzimage, initrd, append, mem_mb=3072, smp=2, numa_nodes=2,
             single_thread=False):
    accel = "tcg,thread=single" if single_thread else "tcg"
    cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", accel,
           "-cpu", "max", "-m", f"{mem_mb}M",
           # one socket per vCPU, so that each NUMA node has its own LLC
           "-smp", f"{smp},sockets={smp},cores=1,threads=1", "-nographic",
           "-no-reboot", "-nic", "none", "-kernel", bzimage, "-initrd", initrd,
           "-append", append]
    for n in range(numa_nodes):
        cpus = [c for c in range(smp) if c % numa_nodes == n]
        cmd += ["-object", f"memory-backend-ram,id=m{n},size={mem_mb // numa_nodes}M",
                "-numa", f"node,nodeid={n},memdev=m{n}" +
                (f",cpus={cpus[0]}" if len(cpus) == 1 else
                 f",cpus={cpus[0]}-{cpus[-1]}" if cpus else "")]
    return cmd


# A sparse NUMA node map: nodes 0 and 2 are possible, node 1 is not, and
# nr_node_ids is 3.  QEMU cannot declare it ("numa: Node ID missing: 1"), and
# Linux numbers ACPI proximity domains densely anyway, so the hole is made by
# the guest kernel: QEMU gives it 2 GiB and no NUMA topology (a single dummy
# node), numa=fake=3U splits that node by address into three fake nodes of
# 704 MiB (the uniform split ignores holes), and memmap= reserves the range
# of the middle one, [672 MiB, 1440 MiB).  A fake node without RAM is dropped
# from the possible map, so node 1 never exists, and the two vCPUs are
# spread over nodes 0 and 2.
SPARSE_NUMA_MEM_MB = 2048
SPARSE_NUMA_APPEND = "numa=fake=3U memmap=768M$672M"
SPARSE_NUMA_POSSIBLE = "0,2"


def run_command(kernel_out, command, timeout=600, modules="kvm_amd:npt=0,nested=1",
                selftests_dir=None, files=(), append_extra="", env=None,
                echo=True, single_thread=False, hold_vm=True, name="vm",
                sparse_numa=False):
    """Boot, run `command` in the guest, return a VmResult (never raises on
    a guest failure; raises KforkError only when the host side is broken).
    With `sparse_numa`, the guest has the node map of SPARSE_NUMA_APPEND."""
    bzimage = os.path.join(kernel_out, "arch", "x86", "boot", "bzImage")
    if not os.path.exists(bzimage):
        raise KforkError(f"no kernel at {bzimage}: run `make kernel` first")
    genv = {"KFORK_MODULES": modules, "KFORK_HOLD_VM": 1 if hold_vm else 0}
    genv.update(env or {})
    initrd = make_initramfs(kernel_out, command, genv, selftests_dir, files)
    if sparse_numa:
        append_extra = f"{SPARSE_NUMA_APPEND} {append_extra}"
    append = ("console=ttyS0 panic=-1 oops=panic rdinit=/init "
              "kunit.stats_enabled=1 " + append_extra).strip()
    if sparse_numa:
        cmd = qemu_cmd(bzimage, initrd, append, mem_mb=SPARSE_NUMA_MEM_MB,
                       numa_nodes=0, single_thread=single_thread)
    else:
        cmd = qemu_cmd(bzimage, initrd, append, single_thread=single_thread)
    os.makedirs(bpath("logs"), exist_ok=True)
    log_path = bpath("logs", f"{name}-console-{time.strftime('%Y%m%d-%H%M%S')}.log")
    log(f"booting {bzimage} under QEMU TCG (timeout {timeout}s); console log: "
        f"{log_path}")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    lines_q = queue.Queue()

    def reader():
        for raw in proc.stdout:
            lines_q.put(raw.decode("utf-8", "replace").rstrip("\r\n").replace("\r", ""))
        lines_q.put(None)

    threading.Thread(target=reader, daemon=True).start()
    lines, rc, booted, timed_out = [], None, False, False
    deadline = start + timeout
    with open(log_path, "w") as lf:
        lf.write("# " + shlex.join(cmd) + "\n")
        while True:
            left = deadline - time.monotonic()
            if rc is not None:
                left = min(left, 10)  # the guest is powering off
            try:
                line = lines_q.get(timeout=max(left, 0.1))
            except queue.Empty:
                if rc is None:
                    timed_out = True
                break
            if line is None:
                break
            lines.append(line)
            lf.write(line + "\n")
            lf.flush()
            if echo is True or (echo == "progress" and (
                    line.startswith(("KFORK-", "# Totals:"))
                    or KERNEL_PROBLEMS.search(line))):
                print(line, flush=True)
            if line.startswith(BOOT_MARK):
                booted = True
            m = EXIT_RE.match(line)
            if m:
                rc = int(m[1])
            if time.monotonic() > deadline and rc is None:
                timed_out = True
                break
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    elapsed = time.monotonic() - start
    res = VmResult(rc, log_path, lines, booted, timed_out, elapsed)
    if not booted:
        tail = "\n".join(lines[-200:])
        log(f"the VM did not boot (QEMU exit {proc.returncode}); console:\n{tail}")
        log(f"full console log: {log_path}")
    elif timed_out:
        log(f"the guest command timed out after {timeout}s; console log: {log_path}")
    elif rc is None:
        log(f"the guest died before reporting an exit status; console log: {log_path}")
    return res
