"""Draws the README's charts: runs tooling/plot.py (matplotlib) with
Debian's /usr/bin/python3, which has python3-matplotlib (tooling/setup.sh
installs it), whatever python3 runs the tooling."""

import json
import os
import subprocess
import tempfile

from .common import KforkError, REPO

PYTHON = "/usr/bin/python3"
SCRIPT = os.path.join(REPO, "tooling", "plot.py")


def draw(kind, data, out):
    """Writes chart `kind` ('demo' or 'scale') of `data` to the SVG `out`."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
    try:
        r = subprocess.run([PYTHON, SCRIPT, kind, f.name, out],
                           capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise KforkError(f"drawing {out} failed (is python3-matplotlib installed? "
                         f"tooling/setup.sh installs it):\n{r.stderr.strip()}")
    return out
