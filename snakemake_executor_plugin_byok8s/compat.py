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
- snakemake 9.27, `snakemake.io._IOFile.retrieve_from_storage` and
  `store_in_storage`: wrapped to count the bytes a job stages in and out and the
  time it takes (usage.py), for the run record; nothing else changes. In the job.
- snakemake 9.27, `snakemake.shell.sp` (its subprocess module) and
  `shell._processes` (each job's running command): a run on this machine without a
  bucket runs its jobs' commands in its own process; their processes are waited
  for with their rusage (os.wait4), kept per job for the run record (usage.py).
  Nothing else changes. In the main process, for --executor local only.
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
  Snakefile named (the storage query less the default prefix) and maps each
  result to the default storage, marked as modified as Snakemake marks a rule's
  output, so that a module's `replace_prefix` is not applied to it twice. In
  the main process and the job.
- snakemake 9.27, `snakemake.io._IOFile.size`: a storage file's size is asked
  of the storage, but a remote group job stores its outputs only when the whole
  group is done; a later job of the group whose resources depend on its input's
  size (`mem_mb=2*input.size_mb`) gets `<TBD>` for them. In a job, a storage
  file whose local copy exists has that copy's size (the bytes the job reads).
  `_IOFile.checksum` likewise for `ensure(sha256=...)`, which the job checks
  before it stores its outputs ("Storage object ... not found in storage").
- snakemake-interface-storage-plugins 4.x, `StorageObjectBase.local_path`: a
  job's copy of a default-storage file is at `.snakemake/storage/<provider>/
  <bucket>/<prefix>/<path>`, and that is the name `{input}`, `{output}`,
  `input.x` and `subpath()` give the job's code, which writes it into outputs
  (`echo {input} > {output}`) and asserts on it. In a job, the copy is at the
  plain path, in the job's own directory. In the job.
- snakemake 9.27, `snakemake.path_modifier.PathModifier.apply_default_storage`:
  the main process's copy of a default-storage file (`.snakemake/storage/s3/
  <bucket>/<prefix>/files`, what `checkpoints.NAME.get().output` and
  `glob_wildcards()` over it give) is mapped to storage again when a Snakefile
  builds a path from it (`s3://<bucket>/<prefix>/.snakemake/storage/...`,
  snakemake/snakemake#3876). byok8s maps it to the file it is a copy of. In the
  main process.
- snakemake 9.27, `snakemake.rules.Rule.update_wildcard_constraints`: a rule's
  `wildcard_constraints:` go into a copy of its storage output's query, but a
  plugin parses the query when the object is made (the S3 plugin's bucket, key
  and local name), so the local name, which Snakemake matches targets against,
  keeps no constraint: rules told apart only by constraints become ambiguous
  with a default storage. byok8s has the copy parse its new query. In the main
  process and the job.
- snakemake 9.27, `PathModifier.apply_default_storage` (through
  `Rule.apply_path_modifier`): a path is mapped to the default storage with the
  workflow's pathvars only, before the rule's own (`pathvars: resname=...`) are
  applied: "Undefined pathvar". byok8s applies the rule's first. In the main
  process and the job.
- snakemake 9.27, `snakemake.common.parse_uri` (also as `snakemake.sourcecache`
  imports it) and `snakemake.sourcecache.SourceCache._open`: Snakemake asks
  smart_open for the scheme and path of every source file, a local Snakefile
  too, and opens it with smart_open; importing smart_open imports every
  transport whose library is installed (Azure Blob, Google Cloud Storage,
  requests, google-auth...): 0.22 s of a job's CPU in its pod (bench/ab.py,
  ab-20261206T222754), at each start, in every job. A
  local path or `file://` URI is parsed, and a local source file opened, here
  exactly as smart_open's local-file transport and its shortcut to the builtin
  open() do it (Snakemake opens sources with compression disabled); any other
  source goes to smart_open as before. Speed only. In the main process and the
  job.

Besides the fixes, what byok8s reads or calls that no plugin interface offers,
each through one function here: a run's DAG (its target jobs and their outputs,
for the summary and the record), the name of Snakemake's console log handler
(shown only with --verbose), uploading the workflow's sources to storage and the
arguments that deploy them in a job, forgetting the upload so that it is kept
(Azure Batch --keep-sources), and the stock Kubernetes plugin's retry of API calls.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

CHECKED = {
    "snakemake": "9.27.1",
    "snakemake-storage-plugin-s3": "0.3.6",
    "snakemake-executor-plugin-kubernetes": "0.5.1",
}
MARK = "byok8s"
# Every private (or not plugin-interface) name byok8s uses, as module:attribute
# paths (an attribute of a class: on the class, or set as `self.NAME =` in its
# source), or module:'text' for a literal the module's source must hold;
# test_compat.py checks that the installed versions have each.
NAMES = (
    "snakemake.api:WorkflowApi._workflow",  # dag()
    "snakemake.dag:DAG.targetjobs",
    "snakemake.dag:DAG.jobs",  # engine: each job's outputs, and the reused ones
    "snakemake.dag:DAG.jobid",
    "snakemake.dag:DAG.needrun",
    "snakemake.jobs:Job.wildcards_dict",
    "snakemake.workflow:Workflow.rules",  # rule_names()
    "snakemake.logging:'DefaultStreamHandler'",  # CONSOLE_HANDLER
    "snakemake.workflow:Workflow.upload_sources",  # upload_sources()
    "snakemake.workflow:Workflow.source_archive",  # deploy_sources_args()
    "snakemake.workflow:Workflow.spawned_job_args_factory",
    "snakemake.spawn_jobs:SpawnedJobArgsFactory.get_default_storage_provider_args",
    "snakemake.spawn_jobs:SpawnedJobArgsFactory.get_storage_provider_args",
    "snakemake.workflow:Workflow._source_archive",  # forget_uploaded_sources()
    "snakemake_executor_plugin_kubernetes:Executor._kubernetes_retry",  # kubernetes_retry()
    "snakemake_storage_plugin_s3:StorageObject.is_dir",
    "snakemake_storage_plugin_s3:StorageObject.get_subkeys",
    "snakemake.io:_IOFile.store_in_storage",
    "snakemake.io:_IOFile.retrieve_from_storage",  # measure_staging()
    "snakemake.shell:sp",  # measure_local_jobs()
    "snakemake.shell:shell._processes",  # measure_local_jobs()
    "snakemake.io:_IOFile.size",
    "snakemake.io:_IOFile.checksum",
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
    "snakemake_interface_storage_plugins.storage_object:StorageObjectBase.local_path",
    "snakemake.path_modifier:PathModifier.modify",
    "snakemake.rules:Rule.update_wildcard_constraints",
    "snakemake.rules:Rule.apply_path_modifier",
    "snakemake.rules:Rule.pathvars",
    "snakemake.path_modifier:PathModifier.apply_default_storage",
    "snakemake.path_modifier:PathModifier.replace_prefix",
    "snakemake.path_modifier:PATH_MODIFIER_FLAG",
    "snakemake.workflow:Workflow.storage_registry",  # jobcommand.storage_home
    "snakemake.workflow:Workflow.write_source_archive",  # sources.archive
    "snakemake.jobs:Job.container_img_url",  # container_images()
    "snakemake.rules:Rule.container_img",  # rule_images()
    "snakemake.script:PythonScript.execute_script",  # _scripts_with_the_images_python()
    "snakemake.script:ScriptBase._execute_cmd",
    "snakemake.script:get_snakemake_searchpaths",
    "snakemake.common:parse_uri",  # _local_uris_without_smart_open()
    "snakemake.sourcecache:parse_uri",
    "snakemake.sourcecache:SourceCache._open",
    "snakemake.sourcecache:LocalSourceFile",
    "snakemake.sourcecache:'compression=\"disable\"'",
)


CONSOLE_HANDLER = "DefaultStreamHandler"  # the name snakemake.logging gives its console handler


def dag(workflow_api: Any) -> Any:
    """The DAG of a run (`SnakemakeApi.workflow(...)`'s WorkflowApi): its target
    jobs and each job's outputs, which no public API gives."""
    return workflow_api._workflow.dag


def rule_names(workflow_api: Any) -> list[str]:
    """The names of a loaded workflow's rules, which no public API lists."""
    return sorted(rule.name for rule in workflow_api._workflow.rules)


def rule_images(workflow_api: Any) -> dict[str, str | None]:
    """Each rule's `container:` (its own or the Snakefile's global one) as written;
    None for none, or for a function of the wildcards."""
    return workflow_images(workflow_api._workflow)


def workflow_images(workflow: Any) -> dict[str, str | None]:
    """rule_images() of a Workflow (an executor's `self.workflow`)."""
    return {
        rule.name: rule.container_img if isinstance(rule.container_img, str) else None
        for rule in workflow.rules
    }


def container_images(job: Any) -> set[str]:
    """The images a job's rules name with `container:` (a group job: each member's),
    as Snakemake has them (docker:// and all)."""
    members = job.jobs if job.is_group() else [job]
    return {m.container_img_url for m in members if m.container_img_url}


def upload_sources(workflow: Any) -> None:
    """Put the workflow's source archive into the default storage, for jobs."""
    workflow.upload_sources()


def deploy_sources_args(workflow: Any) -> str:
    """The arguments of `python -m snakemake` that fetch the uploaded sources in a job."""
    factory = workflow.spawned_job_args_factory
    archive = workflow.source_archive
    return (
        f"--deploy-sources {archive.query} {archive.checksum} "
        f"{factory.get_default_storage_provider_args()} "
        f"{' '.join(factory.get_storage_provider_args())}"
    )


def forget_uploaded_sources(workflow: Any) -> None:
    """Snakemake removes the sources it uploaded when its scheduler returns, with
    no setting to keep them: forgetting the upload keeps them."""
    workflow._source_archive = None


def kubernetes_retry(executor: Any, call: Callable[[], Any]) -> Any:
    """The stock Kubernetes executor's retry of an API call (new connection on
    a dropped one)."""
    return executor._kubernetes_retry(call)


def _replace(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """`owner.name = make(original)`, once for each fix (`make`): the replacement
    is marked with the fixes it holds, and a fix already there is not made again."""
    original = getattr(owner, name)
    held = getattr(original, MARK, ())
    fix = make.__qualname__
    if fix in held:
        return
    made = make(original)
    setattr(made, MARK, (*held, fix))
    setattr(owner, name, made)


def apply() -> None:
    """The main process's fixes (idempotent); call before Snakemake reads storage."""
    import snakemake.api  # noqa: F401  (Snakemake's modules import in its own order)
    import snakemake_storage_plugin_s3 as s3

    _local_uris_without_smart_open()
    _fetch_checkpoint_outputs()
    _expand_stored_patterns()
    _copies_mapped_to_their_files()
    _constraints_in_storage_paths()
    _rule_pathvars_first()
    _skip_unneeded_temp_outputs()
    _keep_checkpoint_temp_outputs()
    _resources_as_given()

    def is_dir(self: Any) -> bool:
        if not self._is_dir:  # "no" may be stale: a job elsewhere may have made it since
            self._is_dir = any(self.get_subkeys())
        return bool(self._is_dir)

    _replace(s3.StorageObject, "is_dir", lambda _: is_dir)


def measure_staging(tally: Any) -> None:
    """Count what a remote job stages in and out, and the seconds it takes, into
    `tally` (usage.Tally): around each file's retrieval and store."""
    from snakemake.io import _IOFile

    def timed(way: str) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            async def staged(self: Any) -> None:
                started = time.monotonic()
                if way == "out":
                    size = _local_size(self.file)
                await original(self)
                if way == "in":
                    size = _local_size(self.file)
                tally.staged(way, size if self.is_storage else 0, time.monotonic() - started)

            return staged

        make.__qualname__ = f"measure_staging_{way}"
        return make

    _replace(_IOFile, "retrieve_from_storage", timed("in"))
    _replace(_IOFile, "store_in_storage", timed("out"))


def measure_local_jobs(found: dict[int, dict[str, float]]) -> None:
    """Each shell command a job runs in this process is waited for with its rusage,
    added into `found[jobid]`: its peak RSS (the largest), CPU seconds (the sum)."""
    import importlib
    import subprocess
    import types

    # The module: `snakemake.shell` as an attribute is its class (snakemake/__init__).
    shell_module = importlib.import_module("snakemake.shell")

    if getattr(shell_module.sp, MARK, False):
        return

    class Measured(subprocess.Popen):  # type: ignore[type-arg]
        def _try_wait(self, wait_flags: int) -> tuple[int, int]:
            try:
                pid, sts, used = os.wait4(self.pid, wait_flags)
            except ChildProcessError:
                return self.pid, 0
            if pid == self.pid:
                jobs = shell_module.shell._processes
                jobid = next((j for j, p in list(jobs.items()) if p is self), None)
                if jobid is not None:
                    row = found.setdefault(int(jobid), {"job_peak_rss_bytes": 0, "job_cpu_s": 0})
                    row["job_peak_rss_bytes"] = max(row["job_peak_rss_bytes"],
                                                    used.ru_maxrss * 1024)  # fmt: skip
                    row["job_cpu_s"] = round(row["job_cpu_s"] + used.ru_utime + used.ru_stime, 3)
            return pid, sts

    module = types.SimpleNamespace(**vars(subprocess))
    module.Popen = Measured
    setattr(module, MARK, True)
    shell_module.sp = module  # type: ignore[attr-defined]


def _local_size(path: str) -> int:
    """A local file's size, or a directory's files' (0 for none)."""
    found = Path(path)
    try:
        if found.is_dir():
            return sum(f.stat().st_size for f in found.rglob("*") if f.is_file())
        return found.stat().st_size
    except OSError:
        return 0


def local_executors_only() -> None:
    """In a job's own process, before Snakemake is imported: Snakemake runs the job
    with its own local executor, so the executor plugins installed beside it
    (byok8s's, Kubernetes's, Azure Batch's, and the kubernetes and Azure SDKs they
    import: about a third of Snakemake's start) are not imported. The job's
    command line names no executor and none of their options."""
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    def collect_plugins(self: Any) -> None:
        from snakemake.executors import dryrun, local, touch

        self.plugins = {}
        self.register_plugin("local", local)
        self.register_plugin("dryrun", dryrun)
        self.register_plugin("touch", touch)

    ExecutorPluginRegistry.collect_plugins = collect_plugins  # type: ignore[method-assign]


def no_report_plugins() -> None:
    """In a job's own process, before Snakemake is imported: no report plugin, not
    even Snakemake's own HTML reporter (jinja2, docutils...: a tenth of a job's
    start), is imported to build the command line's options. A job's command line
    names no report and none of their options, and a job makes no report."""
    from snakemake_interface_report_plugins.registry import ReportPluginRegistry

    def collect_plugins(self: Any) -> None:
        self.plugins = {}

    ReportPluginRegistry.collect_plugins = collect_plugins  # type: ignore[method-assign]


def apply_in_job(home: str | None = None, own_image: bool = False) -> None:
    """A remote job's fixes (idempotent), before Snakemake runs the job; `home`:
    where the job's local copies of the default storage's files would live
    (jobcommand.storage_home), now a link to the job's directory; `own_image`: the
    job runs in its rule's own image (with the job runtime)."""
    import snakemake.api  # noqa: F401  (Snakemake's modules import in its own order)
    from snakemake.io import _IOFile, is_flagged

    if home:
        _plain_local_paths(home)
    if own_image:
        _scripts_with_the_images_python()
    _local_uris_without_smart_open()
    _fetch_checkpoint_outputs()
    _expand_stored_patterns()
    _constraints_in_storage_paths()
    _rule_pathvars_first()
    _size_of_local_copies()
    _checksum_of_local_copies()
    _remove_local_copies()

    def make(original: Any) -> Any:
        async def store_in_storage(self: Any) -> None:
            if is_flagged(self, "pipe") or is_flagged(self, "service") or _fifo(self.file):
                return
            await original(self)

        return store_in_storage

    _replace(_IOFile, "store_in_storage", make)


def _local_path(path_or_uri: str) -> str | None:
    """The file a local path or file:// URI names, as smart_open finds it (the
    scheme urlsplit() finds picks its transport, "" a local file; the local one
    strips file:// once and expands ~), None for any other URI."""
    import urllib.parse

    if os.name == "nt" or urllib.parse.urlsplit(path_or_uri).scheme not in ("", "file"):
        return None
    if path_or_uri.startswith("file://"):
        path_or_uri = path_or_uri.replace("file://", "", 1)
    return os.path.expanduser(path_or_uri)


def _local_uris_without_smart_open() -> None:
    """parse_uri() of a local path or file:// URI, and the opening of a local
    source file, without importing smart_open (see the module's docstring)."""
    import collections

    import snakemake.common
    import snakemake.sourcecache
    from snakemake.exceptions import WorkflowError
    from snakemake.sourcecache import LocalSourceFile, SourceCache

    Uri = collections.namedtuple("Uri", ["scheme", "uri_path"])  # as smart_open's

    def make_parse(original: Any) -> Any:
        def parse_uri(path_or_uri: str) -> Any:
            path = _local_path(path_or_uri)
            return original(path_or_uri) if path is None else Uri("file", path)

        return parse_uri

    def make_open(original: Any) -> Any:
        def _open(self: Any, source_file: Any, mode: str, encoding: str | None = None) -> Any:
            target, path = None, None
            if type(source_file) is LocalSourceFile:  # not a git or hosted one
                target = source_file.get_path_or_uri(secret_free=False)
                path = _local_path(os.fspath(target))
            if path is None:
                return original(self, source_file, mode, encoding)
            # smart_open.open(target, mode, encoding=None if "b" in mode else encoding,
            # compression="disable") of a local file: a str through its shortcut, the
            # builtin open(); a Path (the cached copy) through its local transport,
            # text decoded as UTF-8 unless told otherwise, universal newlines.
            if "b" not in mode and not isinstance(target, str):
                encoding = encoding or "utf-8"
            try:
                if "b" not in mode and encoding is not None:
                    return open(path, mode, encoding=encoding)
                return open(path, mode)
            except Exception as e:
                log_path = source_file.get_path_or_uri(secret_free=True)
                raise WorkflowError(f"Failed to open source file {log_path}", e) from e

        return _open

    _replace(snakemake.common, "parse_uri", make_parse)
    _replace(snakemake.sourcecache, "parse_uri", make_parse)
    _replace(SourceCache, "_open", make_open)


def _scripts_with_the_images_python() -> None:
    """A `script:` runs with the image's own `python`, as Snakemake runs it in a
    container, not with the job runtime's interpreter (sys.executable); the paths
    its preamble adds for Snakemake's own modules include the runtime's zip."""
    import sys

    import snakemake.script
    from snakemake.script import PythonScript

    def make(original: Any) -> Any:
        def execute_script(self: Any, fname: str, edit: bool = False) -> None:
            self._execute_cmd("python {fname:q}", fname=fname, is_python_script=True)

        return execute_script

    def make_paths(original: Any) -> Any:
        def get_snakemake_searchpaths() -> list[str]:
            return [*original(), *(p for p in sys.path if p.endswith(".zip"))]

        return get_snakemake_searchpaths

    _replace(PythonScript, "execute_script", make)
    _replace(snakemake.script, "get_snakemake_searchpaths", make_paths)


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

    def stored(path: Any) -> Any:
        """An expanded path as the default storage maps it, marked as modified: a
        module's replace_prefix is in the rule's output already (plain Snakemake
        marks the expansion of a rule's output so, and keeps it as it is)."""
        from snakemake.io import flag
        from snakemake.path_modifier import PATH_MODIFIER_FLAG

        modifier = vars(snakemake.workflow)["workflow"].modifier.path_modifier
        return flag(modifier.apply_default_storage(path), PATH_MODIFIER_FLAG)

    def expand(*args: Any, **wildcards: Any) -> Any:
        if not args:
            return original(*args, **wildcards)
        many = isinstance(args[0], (list, tuple))
        patterns = list(args[0]) if many else [args[0]]
        plain = [named(p) for p in patterns]
        made = original(plain if many else plain[0], *args[1:], **wildcards)
        if any(p is q for p, q in zip(plain, patterns, strict=True)):
            return made  # a pattern the default storage did not map: as Snakemake does
        if callable(made):  # a wildcard's values from a function: an input function
            return lambda wildcards: [stored(p) for p in made(wildcards)]
        return [stored(p) for p in made]

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


def _plain_local_paths(home: str) -> None:
    from snakemake_interface_storage_plugins.storage_object import StorageObjectBase

    below = os.path.abspath(home)

    def make(original: Any) -> Any:
        def local_path(self: Any) -> Any:
            path = original(self)
            if getattr(self, "_overwrite_local_path", None):
                return path
            rest = os.path.relpath(os.path.abspath(path), below)
            if rest == "." or rest == ".." or rest.startswith("../"):
                return path
            return type(path)(rest)

        return local_path

    _replace(StorageObjectBase, "local_path", make)
    _modify_to_same_name()


def _constraints_in_storage_paths() -> None:
    from snakemake.io import IOFile
    from snakemake.rules import Rule

    def make(original: Any) -> Any:
        def update_wildcard_constraints(self: Any) -> None:
            original(self)
            for i, item in enumerate(self.output):
                if not item.is_storage:
                    continue
                storage_object = item.storage_object  # Snakemake's copy, with the new query
                storage_object.__post_init__()  # a plugin reads its query there
                storage_object.print_query = storage_object.provider.safe_print(
                    storage_object.query
                )
                if str(storage_object.local_path()) == str(item):
                    continue
                made = IOFile(storage_object.local_path(), rule=self)
                made.clone_flags(item, skip_storage_object=True)
                made.flags["storage_object"] = storage_object
                self.output[i] = made

        return update_wildcard_constraints

    _replace(Rule, "update_wildcard_constraints", make)


def _rule_pathvars_first() -> None:
    from snakemake.io import AnnotatedString, is_flagged
    from snakemake.path_modifier import PathModifier
    from snakemake.rules import Rule

    current: list[Any] = []  # the rule whose paths are being modified (parsing is serial)

    def make_modifier(original: Any) -> Any:
        def apply_path_modifier(self: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
            current.append(self)
            try:
                return original(self, item, *args, **kwargs)
            finally:
                current.pop()

        return apply_path_modifier

    def make_storage(original: Any) -> Any:
        def apply_default_storage(self: Any, path: Any) -> Any:
            pathvars = getattr(current[-1], "pathvars", None) if current else None
            if (
                pathvars is not None
                and isinstance(path, str)
                and "<" in path
                and not getattr(path, "callable", None)  # unpack(function): not a path
                and self.workflow.storage_settings.default_storage_provider is not None
                and not is_flagged(path, "storage_object")
                and not is_flagged(path, "local")
            ):
                resolved = AnnotatedString(pathvars.apply(str(path)))
                resolved.flags = dict(getattr(path, "flags", None) or {})
                path = resolved
            return original(self, path)

        return apply_default_storage

    _replace(Rule, "apply_path_modifier", make_modifier)
    _replace(PathModifier, "apply_default_storage", make_storage)


def _copies_mapped_to_their_files() -> None:
    from snakemake.io import AnnotatedString
    from snakemake.path_modifier import PathModifier

    from snakemake_executor_plugin_byok8s.jobcommand import storage_home

    def make(original: Any) -> Any:
        def apply_default_storage(self: Any, path: Any) -> Any:
            workflow = self.workflow
            home = vars(workflow).get("_byok8s_copies", False)
            if home is False:  # once a workflow: where this process keeps its copies
                found = storage_home(workflow, workflow.storage_settings.local_storage_prefix)
                home = os.path.normpath(found) + "/" if found else None
                workflow._byok8s_copies = home
            if (
                home
                and isinstance(path, str)
                and not getattr(path, "callable", None)
                and path.startswith(home)
            ):
                named = AnnotatedString(path[len(home) :])
                named.flags = dict(getattr(path, "flags", None) or {})
                path = named
            return original(self, path)

        return apply_default_storage

    _replace(PathModifier, "apply_default_storage", make)


def _modify_to_same_name() -> None:
    """PathModifier.modify returns the path unflagged when the default storage
    leaves its name as it was ("nothing has changed"), which a plain local path
    now does: it is a storage file all the same."""
    from snakemake.io import flag, get_flag_value, is_flagged
    from snakemake.path_modifier import PATH_MODIFIER_FLAG, PathModifier

    def make(original: Any) -> Any:
        def modify(self: Any, path: Any, property: Any = None) -> Any:
            made = original(self, path, property)
            if (
                made is not path
                or self.workflow.storage_settings.default_storage_provider is None
                or is_flagged(path, "storage_object")
                or get_flag_value(path, PATH_MODIFIER_FLAG)
                or get_flag_value(path, "local")
            ):
                return made
            stored = self.apply_default_storage(self.replace_prefix(path, property))
            if not is_flagged(stored, "storage_object"):
                return made
            stored.flags.update(getattr(path, "flags", {}))
            if is_flagged(stored, "multiext"):
                value = stored.flags["multiext"]
                value.prefix = self.apply_default_storage(
                    self.replace_prefix(value.prefix, property)
                )
            return flag(stored, PATH_MODIFIER_FLAG)

        return modify

    _replace(PathModifier, "modify", make)


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


def _checksum_of_local_copies() -> None:
    import hashlib

    from snakemake.io import _IOFile

    def make(original: Any) -> Any:
        async def checksum(self: Any, *args: Any, **kwargs: Any) -> Any:
            force = kwargs.get("force", len(args) > 1 and args[1])  # (threshold, force, algorithm)
            if self.is_storage and force:  # ensure(sha256=...), before the job stores it
                local = self.storage_object.local_path()
                if os.path.isfile(local):
                    algorithm = kwargs.get("algorithm", args[2] if len(args) > 2 else None)
                    with open(local, "rb") as f:
                        digest = hashlib.file_digest(f, algorithm or hashlib.sha256)
                    return f"{digest.name}:{digest.hexdigest()}"
            return await original(self, *args, **kwargs)

        return checksum

    _replace(_IOFile, "checksum", make)


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


STORAGE_MODULE = "snakemake_storage_plugin_"


def storage_in_use(workflow: Any) -> list[str]:
    """The storage plugins the main process's workflow has used so far, by plugin
    name: its default storage and each one its Snakefile named or inferred."""
    found = set()
    for provider in workflow.storage_registry._storages.values():
        module = type(provider).__module__.split(".")[0]
        if module.startswith(STORAGE_MODULE):
            found.add(_plugin_name(module))
    return sorted(found)


def _plugin_name(module: str) -> str:
    """A storage plugin's name from its module's (snakemake_storage_plugin_byok8s_azure:
    byok8s-azure)."""
    return module[len(STORAGE_MODULE) :].replace("_", "-")


def storage_plugins_only(names: Iterable[str] | None, args: list[str], own: Iterable[str]) -> None:
    """In a job's own process, before Snakemake is imported: of the storage plugins
    installed beside it (each one's SDK is a tenth of Snakemake's start), those in
    `names` (the ones the main process's workflow used: they get their settings
    from the command line and the environment as ever) and those the command line
    `args` names are imported at the start. Any other is imported when first named
    (a `run:` block's `storage.gcs(...)`), all of them when a query's provider is
    inferred. `names` None: all of them at the start. `own`: plugin modules that
    discovery may miss (editable installs)."""
    import importlib
    import pkgutil

    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    installed = {_plugin_name(m.name) for m in pkgutil.iter_modules()
                 if m.ispkg and m.name.startswith(STORAGE_MODULE)}  # fmt: skip
    installed |= {_plugin_name(module) for module in own}
    named = _storage_named(args)
    wanted = sorted(installed if names is None else installed & (set(names) | named))

    class Plugins(dict[str, Any]):
        """Registered plugins; an installed one not yet imported is imported when
        asked for."""

        def load(self, name: str) -> bool:
            if not dict.__contains__(self, name) and name in installed:
                module = STORAGE_MODULE + name.replace("-", "_")
                registry = StoragePluginRegistry()  # the one being made, too
                registry.register_plugin(module, importlib.import_module(module))
            return dict.__contains__(self, name)

        def __missing__(self, name: str) -> Any:
            if self.load(name):
                return dict.__getitem__(self, name)
            raise KeyError(name)

        def __contains__(self, name: object) -> bool:
            return isinstance(name, str) and self.load(name)

        def values(self) -> Any:  # every plugin: a provider inferred from a query
            for name in sorted(installed):
                self.load(name)
            return dict.values(self)

    def collect_plugins(self: Any) -> None:
        self.plugins = Plugins()
        for name in wanted:
            self.plugins.load(name)

    StoragePluginRegistry.collect_plugins = collect_plugins  # type: ignore[method-assign]


def _storage_named(args: list[str]) -> set[str]:
    """Storage plugins a Snakemake command line names: its default storage provider
    and those with settings (`--storage-NAME-SETTING`; NAME may hold dashes: every
    prefix is a candidate)."""
    named = set()
    for before, arg in zip(["", *args], args, strict=False):
        if before == "--default-storage-provider":
            named.add(arg)
        elif arg.startswith("--default-storage-provider="):
            named.add(arg.split("=", 1)[1])
        elif arg.startswith("--storage-"):
            parts = arg[len("--storage-") :].split("=", 1)[0].split("-")
            named.update("-".join(parts[:i]) for i in range(1, len(parts)))
    return named
