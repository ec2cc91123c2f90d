"""Private names of Snakemake and its plugins that byok8s relies on, in one place,
with the versions they were checked against. Each is a fix for a case where
Snakemake alone fails on a cluster without a shared filesystem.

- snakemake-storage-plugin-s3 0.3.6, `StorageObject._is_dir`: the object keeps
  the first answer to "is this a directory?" for good. Asked before a remote job
  made its `directory()` output (while the DAG is built), the answer "no" stays,
  and Snakemake then finds the directory "missing in storage" after the job
  uploaded it. byok8s asks again while the answer is "no" (one listing of the
  prefix, for an object that does not exist as a file). In the main process.
- snakemake 9.27, `snakemake.io._IOFile.store_in_storage`: a remote job stores
  every output that exists on its disk, a `pipe()` too; reading a FIFO with no
  writer left blocks for ever, so a pipe group's pod never ends. Pipes and
  service outputs live only while their group runs: they are not stored. In
  the job (snakemake_executor_plugin_byok8s.jobrun).
- snakemake 9.27, `snakemake.checkpoints.Checkpoint.get` and `_IOFile.is_storage`
  / `storage_object`: a checkpoint's outputs are fetched from storage to the
  process that asks for them (`checkpoints.NAME.get(...)`, in an input function),
  once per process, so that `glob_wildcards()` over a checkpoint's directory or
  `open()` of its file sees what a shared filesystem would show. Snakemake alone
  finds nothing there, in the main process and in the pods alike, and the job
  that aggregates silently gets no input. In the main process and in the job.
- snakemake 9.27, `snakemake.jobs.Job.postprocess` and
  `DAG.get_unneeded_temp_files`: a remote job is told which of its temp() outputs
  no other job needs (`--unneeded-temp-files`) and does not store them, but the
  main process then waits for every output in storage and fails the run
  ("Missing files ... (missing in storage)"). byok8s's main process does not
  wait for those, as Snakemake already does for a group job. Only without a
  shared filesystem. In the main process.
"""

from __future__ import annotations

import os
import stat
from typing import Any

CHECKED = {"snakemake": "9.27.1", "snakemake-storage-plugin-s3": "0.3.6"}
MARK = "byok8s"
# Every private (or not plugin-interface) name the fixes use, as module:attribute
# paths; test_compat.py checks that the installed versions have each.
NAMES = (
    "snakemake_storage_plugin_s3:StorageObject.is_dir",
    "snakemake_storage_plugin_s3:StorageObject.get_subkeys",
    "snakemake.io:_IOFile.store_in_storage",
    "snakemake.io:is_flagged",
    "snakemake.checkpoints:Checkpoint.get",
    "snakemake.jobs:Job.postprocess",
    "snakemake.jobs:Job.is_local",
    "snakemake.dag:DAG.get_unneeded_temp_files",
    "snakemake.cli:main",
)


def apply() -> None:
    """The main process's fixes (idempotent); call before Snakemake reads storage."""
    import snakemake_storage_plugin_s3 as s3

    _fetch_checkpoint_outputs()
    _skip_unneeded_temp_outputs()
    if getattr(s3.StorageObject.is_dir, MARK, False):
        return

    def is_dir(self: Any) -> bool:
        if not self._is_dir:  # "no" may be stale: a job elsewhere may have made it since
            self._is_dir = any(self.get_subkeys())
        return bool(self._is_dir)

    setattr(is_dir, MARK, True)
    s3.StorageObject.is_dir = is_dir


def apply_in_job() -> None:
    """A remote job's fixes (idempotent), before Snakemake runs the job."""
    from snakemake.io import _IOFile, is_flagged

    _fetch_checkpoint_outputs()
    original = _IOFile.store_in_storage
    if getattr(original, MARK, False):
        return

    async def store_in_storage(self: Any) -> None:
        if is_flagged(self, "pipe") or is_flagged(self, "service") or _fifo(self.file):
            return
        await original(self)

    setattr(store_in_storage, MARK, True)
    _IOFile.store_in_storage = store_in_storage


def _fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _fetch_checkpoint_outputs() -> None:
    from snakemake import checkpoints

    original = checkpoints.Checkpoint.get
    if getattr(original, MARK, False):
        return
    fetched: set[str] = set()

    def get(self: Any, **wildcards: Any) -> Any:
        job = original(self, **wildcards)
        for f in job.output:
            if getattr(f, "is_storage", False) and str(f) not in fetched:
                fetched.add(str(f))
                storage_object = f.storage_object
                storage_object.local_path().parent.mkdir(parents=True, exist_ok=True)
                storage_object.retrieve_object()
        return job

    setattr(get, MARK, True)
    checkpoints.Checkpoint.get = get


def _skip_unneeded_temp_outputs() -> None:
    from snakemake.jobs import Job
    from snakemake_interface_executor_plugins.settings import SharedFSUsage

    original = Job.postprocess
    if getattr(original, MARK, False):
        return

    async def postprocess(self: Any, *args: Any, **kwargs: Any) -> Any:
        shared = self.dag.workflow.storage_settings.shared_fs_usage
        remote = not self.is_local and SharedFSUsage.INPUT_OUTPUT not in shared
        if remote and not kwargs.get("error") and not kwargs.get("ignore_missing_output"):
            unneeded = list(self.dag.get_unneeded_temp_files(self))
            if unneeded:
                kwargs["ignore_missing_output"] = unneeded
        return await original(self, *args, **kwargs)

    setattr(postprocess, MARK, True)
    Job.postprocess = postprocess  # type: ignore[method-assign]
