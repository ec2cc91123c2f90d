"""What a byok8s job runs in its pod: Snakemake's own command line, with the fixes
of `compat` applied first (`python -m snakemake_executor_plugin_byok8s.jobrun
ARGS` is `python -m snakemake ARGS` otherwise).

`--storage-home=DIR` first (see `jobcommand.storage_home`): DIR, where Snakemake
keeps the job's local copies of the default storage's files, becomes a link to
the job's directory, so the job's files are where plain Snakemake has them.
The process ends when Snakemake returns, whatever threads the Snakefile left.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from snakemake_executor_plugin_byok8s import compat
from snakemake_executor_plugin_byok8s.jobcommand import HOME_OPTION


def link_home(home: Path) -> None:
    """`home` as a link to the current directory (nothing if it is one already or
    exists as a real directory: then Snakemake's own layout is kept)."""
    if home.is_symlink() or home.exists():
        return
    home.parent.mkdir(parents=True, exist_ok=True)
    home.symlink_to(Path.cwd(), target_is_directory=True)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0].startswith(HOME_OPTION):
        link_home(Path(args.pop(0)[len(HOME_OPTION) :]))
    compat.apply_in_job()
    from snakemake.cli import main as snakemake

    sys.argv = ["snakemake", *args]
    try:
        snakemake()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    # The job is over when Snakemake says so: a thread the Snakefile started and
    # left running (one feeding `from_queue()`, say) must not keep the pod alive.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
