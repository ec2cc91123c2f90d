"""Where a figure comes from: the commit measured (and whether the tree was clean),
the machine and its load, written into every results file; and the README's
copies of the newest results, between marks, which tests check."""

from __future__ import annotations

import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


class DirtyTree(SystemExit):
    pass


# What the scripts write, and what changes nothing measured: the tests and CI's
# files, which no bench script imports (test/localcluster.py, test/services.py and
# test/cluster/, which they do import or run, count).
UNMEASURED = (":!bench/results", ":!README.md", ":!test/test_*.py", ":!test/conftest.py",
              ":!test/conformance", ":!.ci", ":!.github")  # fmt: skip


def commit() -> tuple[str, bool]:
    """The commit measured: the newest one checked out that changed more than
    UNMEASURED (so runs of one code on either side of a commit of results, or of a
    test, are of one commit, and combine), and whether the tree equals it there."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("log", "-1", "--format=%h", "--abbrev=12", "--", ".", *UNMEASURED).strip()
    changed = git("status", "--porcelain", "--", ".", *UNMEASURED).strip()
    return head or "unknown", not changed


def described(head: str, clean: bool) -> str:
    return head if clean else f"{head} (with uncommitted changes: --allow-dirty)"


def require_clean(allow_dirty: bool) -> tuple[str, bool]:
    """The commit, refused when the tree differs from it unless `allow_dirty`."""
    head, clean = commit()
    if not clean and not allow_dirty:
        raise DirtyTree(
            f"bench: the tree differs from commit {head}: a figure must come from one "
            "commit. Commit (or stash) the changes, or give --allow-dirty for a trial "
            "whose results file is marked as such"
        )
    return head, clean


def machine() -> dict[str, Any]:
    """Cores, memory and CPU model of this machine."""
    memory = 0
    model = ""
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                memory = int(text.split()[1]) * 1024
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": round(memory / 2**30, 1), "cpu": model}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def with_block(readme: str, marks: tuple[str, str], body: str) -> str:
    """`readme` with `body` between the two marks (which stay)."""
    begin, end = readme.index(marks[0]), readme.index(marks[1])
    return readme[:begin] + f"{marks[0]}\n{body}{marks[1]}" + readme[end + len(marks[1]) :]


def span(values: list[float], digits: int = 1) -> str:
    """median [min-max]; the median alone for one value."""
    if not values:
        return "-"
    med = f"{statistics.median(values):.{digits}f}"
    if len(values) == 1:
        return med
    return f"{med} [{min(values):.{digits}f}-{max(values):.{digits}f}]"
