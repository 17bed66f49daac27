"""The series manifest (series.toml) and the assembled fork tree.

series.toml lists the commits of our series in order.  Each entry owns:
  - `files`: new files at their kernel paths in this repository, added whole
    by this commit (a new file belongs to exactly one entry);
  - `patch`: optionally, one diff of upstream files (patches/NAME.diff);
  - `subject` and `body`: the commit message, upstream style.
Every line of the fork thus has one source of truth here: upstream lines in
the pinned base, changed lines in one patch, new files in one place.

Two bases (KFORK_BASE, common.BASES) share this manifest and the new files.
Mainline comes first: the keys above, and our files at their kernel paths,
are the default base's (common.DEFAULT_BASE, 7.3), so that reading the
mainline series never means applying a diff in one's head.  A sub-table
named after another base, [commit."6.12"], says how the backport of that
entry differs there, the way a stable backport carries it:
  - `patch`: the diff for that base (patches/6.12/NAME.diff), if the
    default base's does not apply there.  It is applied after the entry's
    new files are copied, so it also carries the differences of our own new
    files on that base;
  - `rename`: {repository path = path in that base's tree} for new files
    whose kernel path differs (the KVM selftests' x86/ is x86_64/ in 6.12);
  - `subject`, `body`: a different commit message;
  - `skip = true`: the entry is not part of that base's series;
  - `reason`: why the entry differs there (kept for readers).
An entry with `bases = ["6.12"]` exists only there (a fix that mainline
has), and one with `bases = ["7.3"]` only on mainline; [series."6.12"]
overrides the cover letter.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib

from .common import BASE, BASES, DEFAULT_BASE, REPO, SERIES_DATE, KforkError, git, log, run

MANIFEST = "series.toml"
DEFAULT_AUTHOR = "KVM shrinker fork developers <kvm-shrinker@localhost>"


class Entry:
    def __init__(self, name, subject, body="", files=(), patch=None, author=None,
                 rename=None):
        self.name = name
        self.subject = subject
        self.body = body
        self.files = list(files)
        self.patch = patch
        self.author = author
        # repository path -> path in the tree, for files whose kernel path
        # differs on this base
        self.rename = dict(rename or {})
        # The manifest's `bases` and other-base tables, as written: `pull`
        # on the default base writes them back unchanged.
        self.other = {}

    def tree_path(self, rel):
        return self.rename.get(rel, rel)

    def message(self):
        body = self.body.strip("\n")
        return self.subject + ("\n\n" + body if body else "") + "\n"

    def as_dict(self):
        d = {"name": self.name, "subject": self.subject, "body": self.body,
             "files": self.files, "patch": self.patch, "author": self.author}
        if self.rename:
            d["rename"] = self.rename
        return d


class Series:
    def __init__(self, entries, author=DEFAULT_AUTHOR, cover_subject="",
                 cover_body="", subject_prefix="PATCH"):
        self.entries = entries
        self.author = author
        self.cover_subject = cover_subject
        self.cover_body = cover_body
        self.subject_prefix = subject_prefix
        # [series."BASE"] tables of the other bases, and the entries that
        # are not part of this base's series, as written in the manifest:
        # [(number of this base's entries before it, table)] (see `pull`)
        self.other_meta = {}
        self.hidden = []


def slug(subject):
    s = re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-").lower()
    return s[:52].rstrip("-") or "patch"


def load(repo=REPO):
    p = os.path.join(repo, MANIFEST)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise KforkError(f"{p}: {e}") from None
    meta = dict(data.get("series", {}))
    other_meta = {b: meta.pop(b) for b in BASES if b != DEFAULT_BASE and b in meta}
    meta.update(other_meta.get(BASE, {}))
    hidden = []
    entries = []
    seen_names, owner = set(), {}
    for i, d in enumerate(data.get("commit", []), 1):
        for key in ("name", "subject"):
            if not d.get(key):
                raise KforkError(f"{MANIFEST}: commit #{i} has no '{key}'")
        unknown = set(d) - {"name", "subject", "body", "files", "patch", "author",
                            "bases"} - set(BASES)
        if unknown:
            raise KforkError(f"{MANIFEST}: commit #{i} ({d['name']}): unknown "
                             f"keys {sorted(unknown)}")
        for b in (b for b in BASES if b in d):
            bad = set(d[b]) - {"patch", "rename", "subject", "body", "skip", "reason"}
            if bad or b == DEFAULT_BASE:
                raise KforkError(f"{MANIFEST}: {d['name']}.{b}: unknown keys "
                                 f"{sorted(bad) or [b]}")
        over = d.get(BASE, {}) if BASE != DEFAULT_BASE else {}
        other = {k: d[k] for k in ("bases", *BASES) if k in d}
        if BASE not in d.get("bases", BASES) or over.get("skip"):
            # kept as written, with its place among this base's entries
            hidden.append((len(entries), d))
            continue
        if BASE != DEFAULT_BASE:
            d = {**d, "patch": over.get("patch", d.get("patch")),
                 **{k: over[k] for k in ("subject", "body", "rename") if k in over}}
        e = Entry(d["name"], d["subject"], d.get("body", ""), d.get("files", []),
                  d.get("patch"), d.get("author"), d.get("rename"))
        e.other = other
        for f in e.files:
            if f in owner:
                raise KforkError(f"{MANIFEST}: {f} is listed by both "
                                 f"{owner[f]} and {e.name}; a new file "
                                 "belongs to exactly one commit")
            owner[f] = e.name
            if not os.path.isfile(os.path.join(repo, f)):
                raise KforkError(f"{MANIFEST}: {e.name} lists {f}, which is "
                                 "not a file in the repository")
        if e.patch and not os.path.isfile(os.path.join(repo, e.patch)):
            raise KforkError(f"{MANIFEST}: {e.name}: patch {e.patch} is missing")
        entries.append(e)
    series = Series(entries, meta.get("author", DEFAULT_AUTHOR),
                    meta.get("cover_subject", ""), meta.get("cover_body", ""),
                    meta.get("subject_prefix", "PATCH"))
    series.other_meta, series.hidden = other_meta, hidden
    return series


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_str(k)} = {_toml_value(x)}"
                                for k, x in v.items()) + " }"
    if isinstance(v, str) and "\n" in v:
        return _toml_multiline(v)
    return _toml_str(v)


def _toml_table(header, table):
    return [header] + [f"{_toml_str(k) if '.' in k else k} = {_toml_value(v)}"
                       for k, v in table.items()] + [""]


def _toml_str(s):
    return json.dumps(s, ensure_ascii=False)


def _toml_multiline(s):
    if "'''" not in s and "\r" not in s:
        return "'''\n" + s + "'''"
    return _toml_str(s)


def dump(series, repo=REPO):
    """Write series.toml (used by `pull`); the format round-trips via load()."""
    out = ["# The patch series of the fork, in order: one [[commit]] per commit",
           "# of the assembled tree.  See README.md, 'How it works'.", "",
           "[series]",
           f"author = {_toml_str(series.author)}",
           f"subject_prefix = {_toml_str(series.subject_prefix)}",
           f"cover_subject = {_toml_str(series.cover_subject)}",
           f"cover_body = {_toml_multiline(series.cover_body)}", ""]
    for b, table in series.other_meta.items():
        out += _toml_table(f'[series."{b}"]', table)
    tables = [{**e.as_dict(), **e.other} for e in series.entries]
    for pos, d in reversed(series.hidden):  # last first: positions stay right
        tables.insert(min(pos, len(tables)), d)
    for d in tables:
        out += ["[[commit]]", f"name = {_toml_str(d['name'])}",
                f"subject = {_toml_str(d['subject'])}"]
        if d.get("author"):
            out.append(f"author = {_toml_str(d['author'])}")
        if d.get("files"):
            out.append("files = [")
            out += [f"    {_toml_str(f)}," for f in d["files"]]
            out.append("]")
        if d.get("patch"):
            out.append(f"patch = {_toml_str(d['patch'])}")
        if "bases" in d:
            out.append(f"bases = {_toml_value(d['bases'])}")
        out += [f"body = {_toml_multiline(d.get('body', ''))}", ""]
        for b in BASES:
            if b in d:
                out += _toml_table(f'[commit."{b}"]', d[b])
    with open(os.path.join(repo, MANIFEST), "w") as f:
        f.write("\n".join(out))


def entry_keys(series, base_id, repo=REPO):
    """One key per entry, chained: it changes when the entry or any earlier
    entry changes (message, author, patch text, file contents or modes)."""
    keys, prev = [], base_id
    for e in series.entries:
        h = hashlib.sha256(prev.encode())
        h.update(json.dumps(e.as_dict(), sort_keys=True).encode())
        h.update((e.author or series.author).encode())
        for rel in ([e.patch] if e.patch else []) + e.files:
            p = os.path.join(repo, rel)
            h.update(rel.encode() + b"\0" + oct(os.stat(p).st_mode & 0o111).encode())
            with open(p, "rb") as f:
                h.update(f.read())
        prev = h.hexdigest()
        keys.append(prev)
    return keys


def _state_path(tree):
    return os.path.join(tree, ".git", "kfork-state.json")


def read_state(tree):
    try:
        with open(_state_path(tree)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"entries": []}


def write_state(tree, state):
    tmp = _state_path(tree) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, _state_path(tree))


def author_env(author, date=SERIES_DATE):
    env = dict(os.environ)
    m = re.match(r"^(.*?)\s*<([^>]*)>$", author)
    if not m:
        raise KforkError(f"author {author!r} is not 'Name <email>'")
    env.update(GIT_AUTHOR_NAME=m[1], GIT_AUTHOR_EMAIL=m[2],
               GIT_COMMITTER_NAME=m[1], GIT_COMMITTER_EMAIL=m[2],
               GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return env


def _hunks(patch_text):
    """[(file, hunk_number, header)] for every hunk of a unified diff."""
    out, cur, n = [], None, 0
    for line in patch_text.splitlines():
        if line.startswith("+++ "):
            cur = line[4:].split("\t")[0]
            cur = cur[2:] if cur.startswith("b/") else cur
            n = 0
        elif line.startswith("@@") and cur:
            n += 1
            out.append((cur, n, line))
    return out


def explain_apply_failure(patch_file, patch_text, git_output):
    """Name the patch, the file and the hunk that git apply rejected."""
    lines = [f"patch {patch_file} does not apply:"]
    for m in re.finditer(r"patch failed: (.+):(\d+)", git_output):
        fname, start = m[1], int(m[2])
        for f, n, hdr in _hunks(patch_text):
            hm = re.match(r"@@ -(\d+)", hdr)
            if f == fname and hm and int(hm[1]) == start:
                lines.append(f"  hunk #{n} of {f}: {hdr}")
                break
        else:
            lines.append(f"  {fname} at line {start}")
    lines.append("git apply said:\n" + git_output.strip())
    return "\n".join(lines)


def apply_entry(tree, e, series, repo=REPO):
    for rel in e.files:
        dst = os.path.join(tree, e.tree_path(rel))
        if os.path.lexists(dst):
            raise KforkError(
                f"series entry '{e.name}': new file {e.tree_path(rel)} already "
                "exists in the tree. If it is an upstream file, change it with "
                "a patch.")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(repo, rel), dst)
        git(tree, "add", "-f", "--", e.tree_path(rel))
    if e.patch:
        p = os.path.join(repo, e.patch)
        with open(p) as f:
            text = f.read()
        res = run(["git", "-C", tree, "apply", "--index", "--verbose",
                   "--whitespace=nowarn", p], check=False, capture=True)
        if res.returncode != 0:
            out = (res.stdout or "") + (res.stderr or "")
            raise KforkError(f"series entry '{e.name}' ({e.subject}):\n" +
                             explain_apply_failure(e.patch, text, out))
    git(tree, "commit", "-q", "--no-verify", "--allow-empty", "-F", "-",
        env=author_env(e.author or series.author), input=e.message())
    return git(tree, "rev-parse", "HEAD")


def tree_is_clean(tree):
    # Debian's .gitignore ignores everything at the top level, so new files
    # show up only as ignored ones; every base file is tracked.
    return git(tree, "status", "--porcelain", "--untracked-files=normal",
               "--ignored=traditional") == ""


def save_local_work(tree, reason):
    """Keep whatever is in the tree that the manifest does not know about."""
    stamp = git(tree, "log", "-1", "--format=%cd", "--date=format:%Y%m%d-%H%M%S")
    branch = f"kfork-saved-{stamp}-{git(tree, 'rev-parse', '--short', 'HEAD')}"
    if not tree_is_clean(tree):
        git(tree, "stash", "push", "--all", "-q", "-m",
            f"kfork: saved before re-assembly ({reason})")
        log(f"uncommitted changes of {tree} saved: git -C {tree} stash list")
    git(tree, "branch", "-f", branch, "HEAD")
    log(f"commits of {tree} saved on branch {branch}")


def assemble(tree, force=False, repo=REPO, keep_local=False):
    """Bring the tree to base + series, re-doing only what changed.

    Work in the tree that the repository does not have (uncommitted changes,
    new commits) stops assembly: with keep_local the tree is left as it is
    (to build and test work in progress), otherwise it is an error. With
    force, that work is saved on a branch and in the stash first.
    """
    series = load(repo)
    # Commits made by hand in the tree get the series' identity, so that
    # `pull` brings them back without a per-commit author.
    name, email = re.match(r"^(.*?)\s*<([^>]*)>$", series.author).groups()
    git(tree, "config", "user.name", name)
    git(tree, "config", "user.email", email)
    base_id = git(tree, "rev-parse", "base^{commit}")
    keys = entry_keys(series, base_id, repo)
    state = read_state(tree)
    known = state.get("entries", [])
    head = git(tree, "rev-parse", "HEAD")
    expected_head = known[-1]["commit"] if known else base_id
    if head != expected_head or not tree_is_clean(tree):
        what = ("has uncommitted changes" if head == expected_head else
                "has commits that are not in series.toml")
        if not force and keep_local:
            log(f"{tree} {what}: building it as it is, not as in the "
                "repository (`make pull` brings the work back, FORCE=1 "
                "sets it aside)")
            return False
        if not force:
            raise KforkError(
                f"{tree} {what}. Bring them into the repository with "
                "`make pull`, or re-run with FORCE=1 to set them aside on a "
                "branch (nothing is deleted).")
        save_local_work(tree, what)
    keep = 0
    while (keep < len(keys) and keep < len(known)
           and known[keep]["key"] == keys[keep]):
        keep += 1
    target = known[keep - 1]["commit"] if keep else base_id
    if keep == len(keys) == len(known) and head == target and tree_is_clean(tree):
        log(f"tree up to date: base + {len(keys)} commits ({tree})")
        return False
    git(tree, "checkout", "-q", "-B", "fork", head)
    git(tree, "reset", "-q", "--hard", target)
    state = {"entries": known[:keep]}
    write_state(tree, state)
    for e, key in zip(series.entries[keep:], keys[keep:]):
        commit = apply_entry(tree, e, series, repo)
        state["entries"].append({"key": key, "commit": commit, "name": e.name})
        write_state(tree, state)
        log(f"applied {e.name}: {e.subject}")
    log(f"tree assembled: base + {len(keys)} commits, {len(keys) - keep} "
        f"re-applied ({tree})")
    return True


def cover_letter_text(series):
    n = len(series.entries)
    return series.cover_subject or f"KVM x86 memcg-aware MMU shrinker ({n} patches)"


def trailer_errors(series):
    """What is wrong with the entries' trailers: each message needs a
    Signed-off-by that `git interpret-trailers --parse` finds, which takes
    a blank line before the trailer block."""
    errors = []
    for e in series.entries:
        found = run(["git", "interpret-trailers", "--parse"], input=e.message(),
                    capture=True).stdout
        if not re.search(r"^Signed-off-by: ", found, re.M):
            errors.append(f"{e.name}: git interpret-trailers finds no "
                          "Signed-off-by (is there a blank line before the "
                          "trailers?)")
    return errors


def sender_identity(repo=REPO):
    """'Name <email>' of whoever sends the series: user.name and user.email
    of git config, as `git commit` would take them.  The placeholder
    author of series.toml cannot certify the DCO, so it is refused."""
    name = git(repo, "config", "user.name", check=False)
    email = git(repo, "config", "user.email", check=False)
    if not name or not email:
        raise KforkError("make export writes the series for sending, signed "
                         "off by you: set git config user.name and user.email "
                         "(the DCO sign-off must be a real person's)")
    ident = f"{name} <{email}>"
    if ident == DEFAULT_AUTHOR:
        raise KforkError(f"git config names the placeholder {ident}, which "
                         "cannot sign the DCO: set your own user.name and "
                         "user.email")
    return ident


def _sign_for(text, placeholder, sender):
    """A format-patch file with `sender` for `placeholder` as From:, in the
    cover letter's shortlog and as Signed-off-by:, and the sender's
    sign-off added to a patch by another author, at the end of its
    trailers."""
    pname, sname = placeholder.split(" <")[0], sender.split(" <")[0]
    text = text.replace(f"From: {placeholder}\n", f"From: {sender}\n")
    text = re.sub(rf"^{re.escape(pname)} (\(\d+\):)$", rf"{sname} \1", text,
                  flags=re.M)
    text = text.replace(f"Signed-off-by: {placeholder}\n", f"Signed-off-by: {sender}\n")
    sob = f"Signed-off-by: {sender}\n"
    end = text.find("\n---\n")
    if sob not in text and end >= 0:
        last = text[:end].rsplit("\n", 1)[-1]
        sep = "\n" if re.match(r"^[A-Za-z-]+: ", last) else "\n\n"
        text = text[:end] + sep + sob + text[end + 1:]
    return text


def export(tree, outdir, repo=REPO, sender=None):
    """git format-patch the series, with the cover letter from series.toml
    and a base-commit: line naming the assembled base (the pinned Debian
    source).  With `sender` ('Name <email>'), the series is the sender's:
    From: and Signed-off-by: name the sender instead of the placeholder
    author (make export); without, the checks see it as assembled."""
    series = load(repo)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    git(tree, "format-patch", "-q", "--cover-letter", "--no-signature",
        "--base=base", f"--subject-prefix={series.subject_prefix}", "-o", outdir,
        "base..HEAD")
    if sender:
        for name in os.listdir(outdir):
            p = os.path.join(outdir, name)
            with open(p) as f:
                text = f.read()
            with open(p, "w") as f:
                f.write(_sign_for(text, series.author, sender))
    covers = [f for f in os.listdir(outdir) if f.startswith("0000-")]
    if covers:
        p = os.path.join(outdir, covers[0])
        with open(p) as f:
            text = f.read()
        text = text.replace("*** SUBJECT HERE ***", cover_letter_text(series))
        text = text.replace("*** BLURB HERE ***", series.cover_body.strip()
                            or "(no cover text in series.toml)")
        with open(p, "w") as f:
            f.write(text)
    files = sorted(os.listdir(outdir))
    log(f"exported {len(files)} files to {outdir}")
    return [os.path.join(outdir, f) for f in files]


def _commits(tree):
    out = git(tree, "rev-list", "--reverse", "--parents", "base..HEAD")
    commits = []
    for line in out.splitlines():
        ids = line.split()
        if len(ids) != 2:
            raise KforkError(f"commit {ids[0][:12]} is a merge; the series "
                             "must be linear")
        commits.append(ids[0])
    return commits


def pull(tree, repo=REPO):
    """Bring the tree's commits (base..HEAD) back into the repository.

    On a base other than the default, see pull_other_base().

    Commit i of the tree becomes entry i of series.toml: its added files are
    copied to their kernel paths, its other changes become patches/NAME.diff,
    its message becomes subject and body.  Entry names are kept by position,
    and so are the entries' tables for the other bases; the entries that
    only other bases have stay where they were among them.
    """
    if BASE != DEFAULT_BASE:
        return pull_other_base(tree, repo)
    old = load(repo)
    commits = _commits(tree)
    if not tree_is_clean(tree):
        raise KforkError(f"{tree} has uncommitted changes; commit them first")
    owner, entries = {}, []
    used_names = set()
    for i, c in enumerate(commits):
        status = git(tree, "diff-tree", "--no-commit-id", "-r", "-M0",
                     "--no-renames", "--name-status", f"{c}^", c)
        added, changed = [], []
        for line in status.splitlines():
            st, f = line.split("\t", 1)
            if st == "A":
                added.append(f)
            else:
                if f in owner:
                    raise KforkError(
                        f"commit {c[:12]} changes {f}, a new file of the "
                        f"earlier commit '{owner[f]}'. Fold the change into "
                        "that commit (git rebase -i) and pull again.")
                changed.append(f)
        name = old.entries[i].name if i < len(old.entries) else None
        subject = git(tree, "log", "-1", "--format=%s", c)
        if not name or name in used_names:
            name = slug(subject)
            while name in used_names:
                name += "-x"
        used_names.add(name)
        for f in added:
            owner[f] = name
        author = git(tree, "log", "-1", "--format=%an <%ae>", c)
        body = git(tree, "log", "-1", "--format=%b", c)
        e = Entry(name, subject, body + "\n" if body else "", sorted(added),
                  f"patches/{name}.diff" if changed else None,
                  None if author == old.author else author)
        e._commit, e._changed = c, changed
        if i < len(old.entries):
            e.other = old.entries[i].other
        entries.append(e)
    # Write the new state: first remove what the old manifest owned.
    for e in old.entries:
        for rel in e.files + ([e.patch] if e.patch else []):
            p = os.path.join(repo, rel)
            if os.path.exists(p):
                os.remove(p)
    for e in entries:
        for rel in e.files:
            dst = os.path.join(repo, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            mode = git(tree, "ls-tree", e._commit, "--", rel).split()[0]
            raw = _git_blob(tree, e._commit, rel)
            with open(dst, "wb") as f:
                f.write(raw)
            os.chmod(dst, 0o755 if mode == "100755" else 0o644)
        if e.patch:
            diff = _git_bytes(tree, ["diff", "--binary", f"{e._commit}^",
                                     e._commit, "--", *e._changed])
            with open(os.path.join(repo, e.patch), "wb") as f:
                f.write(diff)
    new = Series(entries, old.author, old.cover_subject, old.cover_body,
                 old.subject_prefix)
    new.other_meta, new.hidden = old.other_meta, old.hidden
    dump(new, repo)
    # The tree now matches the manifest: record it so that assemble is a no-op.
    base_id = git(tree, "rev-parse", "base^{commit}")
    keys = entry_keys(load(repo), base_id, repo)
    write_state(tree, {"entries": [{"key": k, "commit": e._commit, "name": e.name}
                                   for k, e in zip(keys, entries)]})
    log(f"pulled {len(entries)} commits into {repo}; review with git status")


def _git_bytes(tree, args):
    res = subprocess.run(["git", "-C", tree, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise KforkError(f"git {' '.join(args)}: {res.stderr.decode()}")
    return res.stdout


def _git_blob(tree, commit, rel):
    return _git_bytes(tree, ["show", f"{commit}:{rel}"])


def _file_delta(rel_tree, old_text, new_text):
    """A unified diff of one file of ours from its shared version (what
    assembly copies) to its version on this base, for `git apply`."""
    import difflib
    if old_text == new_text:
        return ""
    lines = list(difflib.unified_diff(
        old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
        f"a/{rel_tree}", f"b/{rel_tree}", n=3))
    for i, ln in enumerate(lines):
        if not ln.endswith("\n"):
            lines[i] = ln + "\n\\ No newline at end of file\n"
    return f"diff --git a/{rel_tree} b/{rel_tree}\n" + "".join(lines)


def _diff_body(text):
    """A diff without what differs when the same change applies at another
    place: index lines and the line numbers of hunk headers."""
    return [re.sub(r"^@@ [^@]* @@", "@@", ln) for ln in text.splitlines()
            if not ln.startswith("index ")]


def pull_other_base(tree, repo=REPO):
    """`pull` on a base other than the default (KFORK_BASE=6.12).

    The new files and the commit messages belong to both bases and stay as
    they are; what the tree's commit i changes beyond entry i's shared files
    becomes that entry's patch for this base: the diff of upstream files
    plus, for each of our files, the diff from its shared version. The
    patch's path is the entry's [commit."BASE"] patch key.
    """
    series = load(repo)
    commits = _commits(tree)
    if not tree_is_clean(tree):
        raise KforkError(f"{tree} has uncommitted changes; commit them first")
    if len(commits) != len(series.entries):
        raise KforkError(
            f"{tree} has {len(commits)} commits and series.toml has "
            f"{len(series.entries)} entries for base {BASE}: add or skip "
            f"entries ([commit.\"{BASE}\"] skip, bases) in series.toml first")
    problems, written = [], []
    for e, c in zip(series.entries, commits):
        status = git(tree, "diff-tree", "--no-commit-id", "-r", "--no-renames",
                     "--name-status", f"{c}^", c)
        added, other = set(), []
        for line in status.splitlines():
            st, f = line.split("\t", 1)
            (added.add if st == "A" else other.append)(f)
        delta = []
        for rel in e.files:
            tp = e.tree_path(rel)
            if tp not in added:
                problems.append(f"{e.name}: commit {c[:12]} does not add {tp}")
                continue
            added.discard(tp)
            with open(os.path.join(repo, rel), encoding="utf-8") as f:
                shared = f.read()
            delta.append(_file_delta(tp, shared,
                                     _git_blob(tree, c, tp).decode("utf-8")))
        paths = sorted(other) + sorted(added)  # upstream files, base-only files
        text = ""
        if paths:
            text = _git_bytes(tree, ["diff", f"{c}^", c, "--", *paths]).decode()
        text += "".join(delta)
        if text and not e.patch:
            problems.append(f"{e.name}: has changes on base {BASE} but no patch: "
                            f"add  [commit.\"{BASE}\"] patch = \"patches/{BASE}/"
                            f"{e.name}.diff\"  to its entry")
            continue
        if e.patch and not e.patch.startswith(f"patches/{BASE}/"):
            with open(os.path.join(repo, e.patch)) as f:
                if _diff_body(f.read()) != _diff_body(text):
                    problems.append(
                        f"{e.name}: differs on base {BASE} from {e.patch}, which "
                        f"it shares: add  [commit.\"{BASE}\"] patch = \"patches/"
                        f"{BASE}/{e.name}.diff\"  to its entry")
            continue
        if e.patch:
            with open(os.path.join(repo, e.patch), "w") as f:
                f.write(text)
            written.append(e.patch)
            if not text:
                problems.append(f"{e.name}: {e.patch} is empty now: drop its "
                                "patch key and the file")
        msg = git(tree, "log", "-1", "--format=%B", c).strip()
        if msg != e.message().strip():
            problems.append(f"{e.name}: the commit message differs from "
                            "series.toml; edit the entry (or its "
                            f"[commit.\"{BASE}\"] subject/body) by hand")
    if problems:
        raise KforkError("pull: " + "\n  ".join(
            [f"wrote {len(written)} patches; to fix:"] + problems))
    base_id = git(tree, "rev-parse", "base^{commit}")
    keys = entry_keys(load(repo), base_id, repo)
    write_state(tree, {"entries": [{"key": k, "commit": c, "name": e.name}
                                   for k, c, e in zip(keys, commits, series.entries)]})
    log(f"pulled {len(commits)} commits of base {BASE} into {len(written)} "
        "patches; review with git status")
