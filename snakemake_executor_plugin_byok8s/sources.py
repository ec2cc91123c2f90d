"""The workflow sources a remote job gets.

Snakemake packs the files it knows (Snakefiles, `include:`s, scripts and their
directories, conda environment files, config files) and, in a git repository,
every file git tracks. Outside git it packs nothing more, so a pod misses what
the Snakefile or a script imports from beside it (`import helpers`), a second
Snakefile a command runs, or a resource read with `workflow.source_path()`;
the job then fails on the cluster although the run works on this machine.
byok8s adds, outside git, the files below the working directory (where
Snakemake would ask git, `git ls-files .`), up to a size: the sources of a
workflow are small, its data comes through storage.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_FILE = 1 << 20  # bytes: a larger file is data, not a source
MAX_TOTAL = 16 << 20  # bytes added at most
SKIPPED_DIRS = {".snakemake", ".git", ".byok8s", "__pycache__", ".venv", "node_modules"}


def in_git(directory: Path) -> bool:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no git: Snakemake says so itself
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


def below(workdir: Path) -> Iterator[tuple[Path, int]]:
    """Regular files below `workdir` (not hidden, nor in hidden or cache directories), as
    relative paths with their sizes, smallest first, at most MAX_FILE bytes each."""
    found = []
    for dirpath, dirnames, filenames in os.walk(workdir):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in filenames:
            if name.startswith("."):  # .env and the like: never sent
                continue
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if size <= MAX_FILE:
                found.append((size, path.relative_to(workdir)))
    for size, path in sorted(found):
        yield path, size


def archive(workflow: Any, path: Path, workdir: Path | None = None) -> list[str]:
    """Snakemake's source archive at `path`, with the files below the working
    directory added outside git; returns what was left out for size."""
    workflow.write_source_archive(path)
    workdir = (workdir or Path.cwd()).resolve()
    if in_git(workdir):
        return []
    with tarfile.open(path) as packed:
        names = [m.name for m in packed.getmembers() if m.isfile()]
    known = {os.path.normpath(n) for n in names}
    added, left, total = [], [], 0
    for rel, size in below(workdir):
        if str(rel) in known:
            continue
        if total + size > MAX_TOTAL:
            left.append(str(rel))
            continue
        total += size
        added.append(str(rel))
    if added:
        with tarfile.open(path, "w:xz") as packed:
            for name in [*names, *added]:
                packed.add(workdir / name, arcname=name, recursive=False)
    return left


def not_sent(left: list[str]) -> str:
    """The warning for the files `archive` left out."""
    return (
        f"{len(left)} files of the working directory are not sent to the jobs "
        f"(more than {MAX_TOTAL >> 20} MiB in all), first {left[0]}: "
        "put the workflow in git, or its data in storage"
    )
