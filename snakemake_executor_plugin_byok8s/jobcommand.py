"""The Snakemake command a remote job runs, made to run in the job's own directory.

Snakemake passes `--directory <the working directory on the submitting machine>`
to every remote job when no filesystem is shared: the job then creates that path
inside its pod (or Batch task) and runs there, away from the workflow sources
unpacked in its own directory, so a shell command that names a workflow file
(`python scripts/x.py`, `include:`d data) does not find it. Outputs still reach
storage, which is why it goes unnoticed. byok8s jobs run where their sources are.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def without_workdir(command: str, workflow: Any) -> str:
    from snakemake_interface_executor_plugins.utils import format_cli_arg

    workdir = getattr(workflow, "overwrite_workdir", None)
    if not workdir:
        return command
    return command.replace(" " + format_cli_arg("--directory", workdir), "", 1)


SNAKEMAKE = " -m snakemake "
JOBRUN = " -m snakemake_executor_plugin_byok8s.jobrun "


HOME_OPTION = "--storage-home="
STORAGE_OPTION = "--storage-plugins="


def storage_home(workflow: Any, local_prefix: str | None = None) -> str | None:
    """Where a job's local copies of the default storage's files live in its pod
    (Snakemake's `<local storage prefix>/<provider>/<bucket>/<prefix>`), or None
    without a default storage; with `local_prefix`, where a process keeps them
    under that prefix (the main process: `storage_settings.local_storage_prefix`).

    jobrun makes that directory a link to the job's own directory, so the pod looks
    like the working directory on the submitting machine: a command that writes
    `clustering/a/1.txt` rather than `{output}`, or reads an input by its plain
    path, finds it where plain Snakemake would.
    """
    provider = workflow.storage_registry.default_storage_provider
    prefix = workflow.storage_settings.default_storage_prefix
    if provider is None or not prefix:
        return None
    probe = "byok8s-probe"
    suffix = provider.object(f"{prefix.rstrip('/')}/{probe}").local_suffix()
    if not suffix.endswith("/" + probe):
        return None  # a provider that names local copies otherwise: leave it be
    if local_prefix is None:
        local_prefix = workflow.storage_settings.remote_job_local_storage_prefix
    return str(Path(local_prefix) / Path(provider.local_prefix).name / suffix[: -len(probe) - 1])


def through_python(command: str, python: str) -> str:
    """Each `python` that starts Snakemake in `command` replaced by `python` (in a
    rule's own image: the job runtime's)."""
    return re.sub(r"(^|[\s;&|(])python(?= -m snakemake )", rf"\g<1>{python}", command)


def through_jobrun(
    command: str,
    home: str | None = None,
    python: str | None = None,
    storage: Sequence[str] | None = None,
) -> str:
    """Snakemake's job command, run through byok8s's jobrun (Snakemake with the
    fixes of compat, and the default storage's local copies in the job's own
    directory when `home` is given); `python` replaces each `python` that starts
    Snakemake (in a rule's own image: the job runtime's); `storage`: the storage
    plugins the job imports at its start (compat.storage_plugins_only)."""
    option = f"{HOME_OPTION}{shlex.quote(home)} " if home else ""
    if storage is not None:
        option += f"{STORAGE_OPTION}{shlex.quote(','.join(storage))} "
    if python:
        command = through_python(command, python)
    # The last one: with sources staged through storage, an earlier
    # `python -m snakemake --deploy-sources` unpacks them.
    before, found, after = command.rpartition(SNAKEMAKE)
    return before + JOBRUN + option + after if found else command
