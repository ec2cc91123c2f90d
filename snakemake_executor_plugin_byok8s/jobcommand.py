"""The Snakemake command a remote job runs, made to run in the job's own directory.

Snakemake passes `--directory <the working directory on the submitting machine>`
to every remote job when no filesystem is shared: the job then creates that path
inside its pod (or Batch task) and runs there, away from the workflow sources
unpacked in its own directory, so a shell command that names a workflow file
(`python scripts/x.py`, `include:`d data) does not find it. Outputs still reach
storage, which is why it goes unnoticed. byok8s jobs run where their sources are.
"""

from __future__ import annotations

from typing import Any


def without_workdir(command: str, workflow: Any) -> str:
    from snakemake_interface_executor_plugins.utils import format_cli_arg

    workdir = getattr(workflow, "overwrite_workdir", None)
    if not workdir:
        return command
    return command.replace(" " + format_cli_arg("--directory", workdir), "", 1)


SNAKEMAKE = " -m snakemake "
JOBRUN = " -m snakemake_executor_plugin_byok8s.jobrun "


def through_jobrun(command: str) -> str:
    """Snakemake's job command, run through byok8s's jobrun (Snakemake with the
    fixes of compat)."""
    return command.replace(SNAKEMAKE, JOBRUN, 1)
