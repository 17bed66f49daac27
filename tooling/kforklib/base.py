"""The pinned base: download, verify and extract Debian's linux-source."""

import functools
import os
import re
import shutil
import subprocess

from .common import (BASE, BASE_AUTHOR, BASE_DATE, BASE_PACKAGE, BASE_SHA256,
                     BASE_SUITE, BASE_TARBALL, BASE_TOPDIR, BASE_VERSION,
                     KforkError, git, log, path, run, sha256_file)


def deb_path():
    ver = BASE_VERSION.replace(":", "%3a")
    return path("downloads", f"{BASE_PACKAGE}_{ver}_all.deb")


@functools.cache
def apt_options():
    """apt options for a base from another suite (7.3: trixie-backports):
    a private sources list, lists and cache under the kfork cache, with the
    archive mirror the system already uses. [] for the system's suites."""
    if not BASE_SUITE:
        return []
    root = path("apt", BASE_SUITE)
    for d in ("lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    sources = os.path.join(root, "sources.list")
    with open(sources, "w") as f:
        f.write(f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                f"{system_mirror()} {BASE_SUITE} main\n")
    return ["-o", f"Dir::Etc::SourceList={sources}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={root}/lists",
            "-o", f"Dir::Cache={root}/cache"]


def system_mirror():
    """The Debian archive URI of the system's apt sources."""
    for d in ("/etc/apt/sources.list.d", "/etc/apt"):
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            p = os.path.join(d, name)
            if not os.path.isfile(p) or not name.endswith((".list", ".sources")):
                continue
            with open(p) as f:
                for line in f:
                    m = re.match(r"^\s*(?:URIs:|deb(?:\s+\[[^]]*\])?)\s+(\S+/debian)/?\s",
                                 line + " ")
                    if m:
                        return m[1]
    return "http://deb.debian.org/debian"


def available_versions():
    res = run(["apt-cache", *apt_options(), "madison", BASE_PACKAGE], capture=True,
              check=False)
    return [line.split("|")[1].strip() for line in (res.stdout or "").splitlines()
            if line.count("|") >= 2]


def fetch():
    """Download the pinned .deb once into the cache and check its sha256."""
    deb = deb_path()
    if os.path.exists(deb) and sha256_file(deb) == BASE_SHA256:
        return deb
    os.makedirs(os.path.dirname(deb), exist_ok=True)
    if BASE_VERSION not in available_versions():
        # The index may just be stale: refresh once before giving up.
        run(["apt-get", *apt_options(), "update", "-qq"], check=False, capture=True)
    versions = available_versions()
    if BASE_VERSION not in versions:
        raise KforkError(
            f"the pinned base {BASE_PACKAGE}={BASE_VERSION} is not in the "
            f"Debian archive any more.\n  available: {', '.join(versions) or 'none'}"
            f"\n  Pick one deliberately: set the version and sha256 of base {BASE} "
            "in BASES, tooling/kforklib/common.py, re-assemble and re-run "
            "`make check`.")
    log(f"downloading {BASE_PACKAGE}={BASE_VERSION}")
    tmpdir = path("downloads", "tmp")
    shutil.rmtree(tmpdir, ignore_errors=True)
    os.makedirs(tmpdir)
    os.chmod(tmpdir, 0o777)  # apt drops privileges to _apt for the download
    run(["apt-get", *apt_options(), "download", f"{BASE_PACKAGE}={BASE_VERSION}"],
        cwd=tmpdir,
        capture=True)
    got = [f for f in os.listdir(tmpdir) if f.endswith(".deb")]
    if len(got) != 1:
        raise KforkError(f"apt-get download left {got} in {tmpdir}")
    digest = sha256_file(os.path.join(tmpdir, got[0]))
    if digest != BASE_SHA256:
        raise KforkError(
            f"checksum mismatch for {got[0]}: got sha256 {digest}, pinned "
            f"{BASE_SHA256}. The file is kept in {tmpdir} for inspection.")
    os.replace(os.path.join(tmpdir, got[0]), deb)
    shutil.rmtree(tmpdir, ignore_errors=True)
    log(f"verified sha256 {BASE_SHA256[:16]}... of {os.path.basename(deb)}")
    return deb


def extract(deb, dest):
    """Extract the kernel source tarball of the .deb into dest (new dir)."""
    os.makedirs(dest)
    cmd = (f"dpkg-deb --fsys-tarfile '{deb}' | tar -xO '{BASE_TARBALL}' | "
           f"xz -dc -T0 | tar -x --strip-components=1 -C '{dest}' "
           f"'{BASE_TOPDIR}'")
    res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd])
    if res.returncode != 0:
        raise KforkError(f"extracting {deb} into {dest} failed")


def base_env():
    env = dict(os.environ)
    name, email = BASE_AUTHOR.rsplit(" <", 1)
    env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email.rstrip(">"),
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email.rstrip(">"),
               GIT_AUTHOR_DATE=BASE_DATE, GIT_COMMITTER_DATE=BASE_DATE)
    return env


def base_message():
    return (f"Linux {BASE_VERSION.split('-')[0]} from Debian {BASE_PACKAGE} "
            f"{BASE_VERSION}\n\nUnmodified contents of {BASE_TARBALL} from "
            f"the .deb with sha256\n{BASE_SHA256}.\n")


def make_git_tree(src):
    """Turn an extracted source dir into a git repo with the base commit."""
    git(src, "init", "-q", "-b", "fork")
    # The commit identity is set by series.assemble() from series.toml.
    for key, val in (("feature.manyFiles", "true"), ("core.autocrlf", "false"),
                     ("gc.auto", "0")):
        git(src, "config", key, val)
    # -f: files that match the tree's own .gitignore are part of the base too.
    git(src, "add", "-f", "-A", ".")
    git(src, "commit", "-q", "--no-verify", "-m", base_message(), env=base_env())
    git(src, "tag", "-f", "base")
    return git(src, "rev-parse", "HEAD")


def ensure_base_tree(tree):
    """Create the assembled tree's repository with the base commit, once."""
    marker = os.path.join(tree, ".git", "kfork-base")
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read().strip() == BASE_SHA256:
                return
        raise KforkError(
            f"{tree} was assembled from another base than the pinned "
            f"{BASE_VERSION}; move it away (or delete it) and re-run.")
    if os.path.exists(tree):
        raise KforkError(f"{tree} exists but is not a kfork tree; move it away")
    deb = fetch()
    tmp = tree + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"extracting the base into {tree} (once; about a minute)")
    extract(deb, tmp)
    log("committing the base (once; about a minute)")
    make_git_tree(tmp)
    with open(os.path.join(tmp, ".git", "kfork-base"), "w") as f:
        f.write(BASE_SHA256 + "\n")
    os.rename(tmp, tree)
