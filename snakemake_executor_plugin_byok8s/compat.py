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
  shared filesystem. In the main process. A checkpoint's temp() outputs are
  never "unneeded": the jobs that need them are known only after it ran (and
  its outputs are fetched then, see Checkpoint.get above).
- snakemake 9.27, `snakemake.resources.Resource.standardize_size` and
  `Resources.args`: a default resource given in MiB (`mem_mib=953.67`) is
  stored as `mem_mb` with the text as given, and handed to remote and spawned
  jobs as `mem_mb=953.67`: the job then gets 954 MB, not 1000. byok8s hands it
  on under the name it was given. In the main process.
- snakemake 9.27, `snakemake.io._IOFile.remove`: removing a storage file (a
  temp() output once its group no longer needs it) removes it from storage but
  leaves the job's local copy, which a later job of the group still sees. In a
  job, the local copy goes too.
- snakemake 9.27, `snakemake.io.expand` (also `snakemake.workflow.expand` and
  `snakemake.ioutils.collect.collect`): with a default storage,
  `expand(rules.a.output[0], x=...)` fails ("Flags ({'storage_object': ...}) in
  file pattern ... given to expand() are invalid", snakemake/snakemake#3027): the
  rule's output already carries its storage. byok8s expands the path the
  Snakefile named (the storage query less the default prefix), which the
  default storage then maps as any other path. In the main process and the job.
- snakemake 9.27, `snakemake.io._IOFile.size`: a storage file's size is asked
  of the storage, but a remote group job stores its outputs only when the whole
  group is done; a later job of the group whose resources depend on its input's
  size (`mem_mb=2*input.size_mb`) gets `<TBD>` for them. In a job, a storage
  file whose local copy exists has that copy's size (the bytes the job reads).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from typing import Any

CHECKED = {"snakemake": "9.27.1", "snakemake-storage-plugin-s3": "0.3.6"}
MARK = "byok8s"
# Every private (or not plugin-interface) name the fixes use, as module:attribute
# paths; test_compat.py checks that the installed versions have each.
NAMES = (
    "snakemake_storage_plugin_s3:StorageObject.is_dir",
    "snakemake_storage_plugin_s3:StorageObject.get_subkeys",
    "snakemake.io:_IOFile.store_in_storage",
    "snakemake.io:_IOFile.size",
    "snakemake.io:expand",
    "snakemake.workflow:expand",
    "snakemake.ioutils:collect",
    "snakemake.io:_IOFile.remove",
    "snakemake.resources:Resource.standardize_size",
    "snakemake.resources:Resources.args",
    "snakemake.io:is_flagged",
    "snakemake.checkpoints:Checkpoint.get",
    "snakemake.jobs:Job.postprocess",
    "snakemake.jobs:Job.is_local",
    "snakemake.dag:DAG.get_unneeded_temp_files",
    "snakemake.cli:main",
    "snakemake.workflow:Workflow.storage_registry",  # jobcommand.storage_home
    "snakemake.workflow:Workflow.write_source_archive",  # sources.archive
)


def _replace(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """`owner.name = make(original)`, once: the replacement is marked, and a marked
    attribute is left as it is."""
    original = getattr(owner, name)
    if getattr(original, MARK, False):
        return
    made = make(original)
    setattr(made, MARK, True)
    setattr(owner, name, made)


def apply() -> None:
    """The main process's fixes (idempotent); call before Snakemake reads storage."""
    import snakemake.api  # noqa: F401  (Snakemake's modules import in its own order)
    import snakemake_storage_plugin_s3 as s3

    _fetch_checkpoint_outputs()
    _expand_stored_patterns()
    _skip_unneeded_temp_outputs()
    _keep_checkpoint_temp_outputs()
    _resources_as_given()

    def is_dir(self: Any) -> bool:
        if not self._is_dir:  # "no" may be stale: a job elsewhere may have made it since
            self._is_dir = any(self.get_subkeys())
        return bool(self._is_dir)

    _replace(s3.StorageObject, "is_dir", lambda _: is_dir)


def apply_in_job() -> None:
    """A remote job's fixes (idempotent), before Snakemake runs the job."""
    import snakemake.api  # noqa: F401  (Snakemake's modules import in its own order)
    from snakemake.io import _IOFile, is_flagged

    _fetch_checkpoint_outputs()
    _expand_stored_patterns()
    _size_of_local_copies()
    _remove_local_copies()

    def make(original: Any) -> Any:
        async def store_in_storage(self: Any) -> None:
            if is_flagged(self, "pipe") or is_flagged(self, "service") or _fifo(self.file):
                return
            await original(self)

        return store_in_storage

    _replace(_IOFile, "store_in_storage", make)


def _expand_stored_patterns() -> None:
    import sys

    import snakemake.ioutils
    import snakemake.workflow
    from snakemake import io

    original = io.expand
    if getattr(original, MARK, False):
        return

    def named(pattern: Any) -> Any:
        """The path the Snakefile named for a pattern the default storage mapped."""
        flags = getattr(pattern, "flags", None) or {}
        if set(flags) - {"storage_object", "path_modified"} or "storage_object" not in flags:
            return pattern  # no storage, or other flags: Snakemake's own answer
        workflow = vars(snakemake.workflow).get("workflow")
        prefix = getattr(getattr(workflow, "storage_settings", None), "default_storage_prefix", "")
        query = str(flags["storage_object"].query)
        start = prefix.rstrip("/") + "/" if prefix else ""
        return query[len(start) :] if start and query.startswith(start) else pattern

    def expand(*args: Any, **wildcards: Any) -> Any:
        if args:
            given = args[0]
            many = isinstance(given, (list, tuple))
            args = ([named(p) for p in given] if many else named(given), *args[1:])
        return original(*args, **wildcards)

    setattr(expand, MARK, True)
    io.expand = expand
    snakemake.workflow.expand = expand  # type: ignore[attr-defined]
    snakemake.ioutils.collect = expand  # type: ignore[attr-defined]
    sys.modules["snakemake.ioutils.collect"].collect = expand  # type: ignore[attr-defined]


def _resources_as_given() -> None:
    from snakemake.resources import Resource, Resources

    def make(original: Any) -> Any:
        def standardize_size(self: Any) -> Any:
            made = original(self)
            if made.name != self.name:
                made.given_as = getattr(self, "given_as", self.name)
            return made

        return standardize_size

    def args(self: Any) -> list[str]:
        return [
            f"{getattr(value, 'given_as', name)}={value.raw}"
            for name, value in self._data.items()
            if value.raw is not None
        ]

    _replace(Resource, "standardize_size", make)
    Resources.args = property(args)  # type: ignore[method-assign, assignment]


def _remove_local_copies() -> None:
    from snakemake.io import _IOFile

    def make(original: Any) -> Any:
        async def remove(
            self: Any, remove_non_empty_dir: bool = False, only_local: bool = False
        ) -> None:
            await original(self, remove_non_empty_dir=remove_non_empty_dir, only_local=only_local)
            if not self.is_storage or only_local:
                return
            local = self.storage_object.local_path()
            if os.path.isdir(local) and not os.path.islink(local):
                shutil.rmtree(local, ignore_errors=True)
            elif os.path.lexists(local):
                os.remove(local)

        return remove

    _replace(_IOFile, "remove", make)


def _size_of_local_copies() -> None:
    from snakemake.io import _IOFile

    def make(original: Any) -> Any:
        async def size(self: Any) -> int:
            if self.is_storage:
                local = self.storage_object.local_path()
                if os.path.isfile(local):
                    return os.path.getsize(local)
            return int(await original(self))

        return size

    _replace(_IOFile, "size", make)


def _fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _fetch_checkpoint_outputs() -> None:
    from snakemake import checkpoints

    fetched: set[str] = set()

    def make(original: Any) -> Any:
        def get(self: Any, **wildcards: Any) -> Any:
            job = original(self, **wildcards)
            for f in job.output:
                if getattr(f, "is_storage", False) and str(f) not in fetched:
                    fetched.add(str(f))
                    storage_object = f.storage_object
                    storage_object.local_path().parent.mkdir(parents=True, exist_ok=True)
                    storage_object.retrieve_object()
            return job

        return get

    _replace(checkpoints.Checkpoint, "get", make)


def _keep_checkpoint_temp_outputs() -> None:
    from snakemake.dag import DAG

    def make(original: Any) -> Any:
        def get_unneeded_temp_files(self: Any, job: Any) -> list[Any]:
            members = list(job) if job.is_group() else [job]
            kept = {str(f) for j in members if j.is_checkpoint for f in j.output}
            return [f for f in original(self, job) if str(f) not in kept]

        return get_unneeded_temp_files

    _replace(DAG, "get_unneeded_temp_files", make)


def _skip_unneeded_temp_outputs() -> None:
    from snakemake.jobs import Job
    from snakemake_interface_executor_plugins.settings import SharedFSUsage

    def make(original: Any) -> Any:
        async def postprocess(self: Any, *args: Any, **kwargs: Any) -> Any:
            shared = self.dag.workflow.storage_settings.shared_fs_usage
            remote = not self.is_local and SharedFSUsage.INPUT_OUTPUT not in shared
            if remote and not kwargs.get("error") and not kwargs.get("ignore_missing_output"):
                unneeded = list(self.dag.get_unneeded_temp_files(self))
                if unneeded:
                    kwargs["ignore_missing_output"] = unneeded
            return await original(self, *args, **kwargs)

        return postprocess

    _replace(Job, "postprocess", make)
