"""What a byok8s job runs in its pod: Snakemake's own command line, with the fixes
of `compat` applied first (`python -m snakemake_executor_plugin_byok8s.jobrun
ARGS` is `python -m snakemake ARGS` otherwise)."""

from __future__ import annotations

import sys

from snakemake_executor_plugin_byok8s import compat


def main() -> None:
    compat.apply_in_job()
    from snakemake.cli import main as snakemake

    sys.argv[0] = "snakemake"
    snakemake()


if __name__ == "__main__":
    main()
