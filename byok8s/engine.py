"""The one module that talks to Snakemake (`snakemake.api`).

The call chain follows Snakemake's own CLI (`args_to_api`):
SnakemakeApi(OutputSettings) -> workflow(...) -> dag(...) -> execute_workflow(...).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from byok8s import diagnose, snakefile
from byok8s.backends import Backend
from byok8s.config import RunConfig
from byok8s.errors import Byok8sError, ConfigError, Locked, StorageError, WorkflowFailed
from byok8s.staging import Run, staged_snakefile

log = logging.getLogger(__name__)
FOLLOW_MARK = "byok8s_follow"  # as snakemake_executor_plugin_byok8s.follow marks its lines


@dataclass
class JobRecord:
    jobid: int
    rule: str
    wildcards: Mapping[str, str]
    state: str = "running"  # running | done | failed | unfinished (the run ended first)
    ready: str | None = None  # when Snakemake handed it to the executor (UTC, ISO 8601)
    ended: str | None = None
    outputs: list[str] = field(default_factory=list)  # paths or storage URLs
    # A failed job's log files (path or URL -> last lines) and what it may lack.
    logs: dict[str, list[str]] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)
    usage: dict[str, float] | None = None  # measured on this machine (usage.py's keys)

    def label(self) -> str:
        wc = ", ".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"rule {self.rule}" + (f" ({wc})" if wc else "") + f" [job {self.jobid}]"


@dataclass
class RunResult:
    planned: int = 0
    jobs: dict[int, JobRecord] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    logfile: str | None = None
    error: Byok8sError | None = None
    rules: list[str] = field(default_factory=list)  # the workflow's rule names
    used: dict[int, dict[str, float]] = field(default_factory=dict)  # local jobs', by jobid
    # Jobs of the targets whose outputs were up to date (the bucket's, say, from an
    # earlier run on another machine): not run again.
    reused: list[JobRecord] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(1 for j in self.jobs.values() if j.state == "done")

    @property
    def failed(self) -> list[JobRecord]:
        return [j for j in self.jobs.values() if j.state == "failed"]

    def mark_unfinished(self) -> None:
        """Jobs started and never seen to end: the run ended (on an error) first."""
        for job in self.jobs.values():
            if job.state == "running":
                job.state, job.ended = "unfinished", _now()

    @property
    def unfinished(self) -> list[JobRecord]:
        return [j for j in self.jobs.values() if j.state == "unfinished"]

    @property
    def skipped(self) -> int:
        return max(self.planned - self.done - len(self.failed) - len(self.unfinished), 0)


class Listener:
    """What the engine reports while a run goes on (see byok8s.output)."""

    def planned(self, total: int, by_rule: Mapping[str, int] | None = None) -> None: ...
    def grown(self, total: int) -> None: ...  # a checkpoint added jobs
    def job_started(self, job: JobRecord) -> None: ...
    def job_finished(self, job: JobRecord) -> None: ...
    def job_failed(self, job: JobRecord, message: str) -> None: ...
    def message(self, level: int, text: str) -> None: ...


# Snakemake warnings that say nothing useful about a byok8s run (the sources of a
# remote run are staged below the working directory, git or not): debug only.
NOISE = ("Unable to retrieve additional files from git.",)
# A line of Snakemake's job error that is not always true: the message above it
# says how the job really ended (an exit status, or the pod's fate).
UNFOUNDED = ("(command exited with non-zero exit code)", "message: None")


class _EventHandler(logging.Handler):
    """Turns Snakemake's structured log records into Listener calls."""

    def __init__(
        self, result: RunResult, listener: Listener, formatter: Any, cfg: RunConfig
    ) -> None:
        super().__init__(logging.DEBUG)
        self.result, self.listener, self.snakemake_formatter = result, listener, formatter
        self.cfg = cfg
        # Snakemake's scheduler turns SIGTERM into "finish the running jobs, start no
        # more"; byok8s cancels them instead, like Ctrl-C: its handler is put back.
        self.sigterm = signal.getsignal(signal.SIGTERM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._handle(record)
        except Exception:  # never let reporting break the run
            self.handleError(record)

    def _reclaim_sigterm(self) -> None:
        if threading.current_thread() is threading.main_thread() and callable(self.sigterm):
            signal.signal(signal.SIGTERM, self.sigterm)

    def _handle(self, record: logging.LogRecord) -> None:
        event = str(getattr(record, "event", "") or "")
        jobs = self.result.jobs
        if event == "run_info":
            self._reclaim_sigterm()
            stats = getattr(record, "stats", {}) or {}
            self.result.planned = int(stats.get("total", 0))
            by_rule = {str(k): int(v) for k, v in stats.items() if k != "total"}
            self.listener.planned(self.result.planned, by_rule)
        elif event == "job_info":
            job = JobRecord(
                jobid=int(record.jobid),  # type: ignore[attr-defined]
                rule=str(record.rule_name),  # type: ignore[attr-defined]
                wildcards=dict(getattr(record, "wildcards", {}) or {}),
                ready=_now(),
            )
            jobs[job.jobid] = job
            if len(jobs) > self.result.planned:  # a checkpoint added jobs to the DAG
                self.result.planned = len(jobs)
                self.listener.grown(self.result.planned)
            self.listener.job_started(job)
        elif event == "job_finished":
            finished = jobs.get(int(record.job_id))  # type: ignore[attr-defined]
            if finished is not None:
                finished.state, finished.ended = "done", _now()
                finished.usage = self.result.used.pop(finished.jobid, None)
                self.listener.job_finished(finished)
        elif event == "job_error":
            jobid = int(getattr(record, "jobid", -1))
            job = jobs.setdefault(
                jobid, JobRecord(jobid, str(getattr(record, "rule_name", "?")), {})
            )
            job.state, job.ended = "failed", _now()
            job.usage = self.result.used.pop(jobid, None)
            self.listener.job_failed(job, self._failure(job, record))
        elif getattr(record, FOLLOW_MARK, False):  # --follow: a pod's log line
            self.listener.message(logging.INFO, record.getMessage())
        elif not event and record.levelno >= logging.WARNING:
            text = record.getMessage()
            quiet = text.startswith(NOISE)
            self.listener.message(logging.DEBUG if quiet else record.levelno, text)
        elif not event and record.levelno == logging.DEBUG:
            self.listener.message(logging.DEBUG, record.getMessage())

    def _failure(self, job: JobRecord, record: logging.LogRecord) -> str:
        """Snakemake's account of a failed job, less what may not be true (it says
        the command exited non-zero also for a pod that never started, and cannot
        find a log file that is in the bucket), plus the end of each log file
        and files the job may have needed but was not given."""
        text = self.snakemake_formatter.format(record)
        kept = [line for line in text.splitlines() if line.strip() not in UNFOUNDED]
        found = diagnose.examine(
            self.cfg,
            job.rule,
            list(getattr(record, "input", None) or ()),
            list(getattr(record, "output", None) or ()),
            list(getattr(record, "log", None) or ()),
            text,
        )
        job.logs, job.hints = found.logs, found.hints
        return "\n".join(kept + found.lines())


def run(
    cfg: RunConfig,
    run: Run,
    executor: Backend,
    listener: Listener,
    guard: Callable[[list[str]], None] | None = None,
) -> RunResult:
    """Run the workflow. Bad input found by Snakemake raises ConfigError; a failure
    while running is returned in `RunResult.error`, with the counts so far.
    `guard` sees the workflow's rule names once it is loaded, before any job runs,
    and may refuse the run (ConfigError)."""
    from snakemake.api import SnakemakeApi
    from snakemake.logging import DefaultFormatter
    from snakemake.logging import logger as snakemake_logger
    from snakemake.settings import types as st

    _register_own_plugins(executor)
    from snakemake_executor_plugin_byok8s import compat

    compat.apply()
    result = RunResult()
    if executor.jobs_in_process:
        compat.measure_local_jobs(result.used)
    started = time.monotonic()
    output_settings = st.OutputSettings(
        dryrun=cfg.dry_run,
        verbose=cfg.verbose,
        printshellcmds=cfg.verbose,
        show_failed_logs=True,
        nocolor=True,
    )
    with SnakemakeApi(output_settings) as api:
        # Log files are shown by diagnose (Snakemake's own read misses the bucket).
        handler = _EventHandler(result, listener, DefaultFormatter(None, False), cfg)
        _route_logging(snakemake_logger, handler, cfg.verbose)
        workflow_api = None
        try:
            workflow_api, dag_api = _dag(api, cfg, run, st)
            result.rules = compat.rule_names(workflow_api)
            if guard is not None:
                guard(result.rules)
            executor.check_workflow(cfg, compat.rule_images(workflow_api))
            dag_api.execute_workflow(
                executor=executor.plugin,
                pseudo_executor="dryrun" if cfg.dry_run else None,
                executor_settings=_executor_settings(executor, cfg, run),
                execution_settings=st.ExecutionSettings(
                    keep_going=cfg.keep_going, retries=cfg.retries, latency_wait=5
                ),
                remote_execution_settings=st.RemoteExecutionSettings(
                    envvars=list(cfg.envvars)
                    + list(cfg.storage.job_envvar_names() if cfg.storage else ()),
                    **({"container_image": cfg.container_image} if cfg.container_image else {}),
                ),
            )
        except (Byok8sError, KeyboardInterrupt):
            raise
        except Exception as exc:
            error = _translate(exc, cfg)
            if isinstance(error, ConfigError):
                raise error from exc
            log.debug("Snakemake raised", exc_info=True)
            result.error = error
        finally:
            result.seconds = time.monotonic() - started
            if result.error is not None:
                result.mark_unfinished()
            if workflow_api is not None:
                result.outputs = _final_outputs(workflow_api, cfg)
                _job_outputs(workflow_api, cfg, result)
            logfiles = api.logger_manager.get_logfile()
            result.logfile = logfiles[0] if logfiles else None
    return result


def rule_images(snakefile: Path, params: Path | None) -> dict[str, str | None]:
    """Each rule's `container:` as the Snakefile gives it, read without running
    anything (byok8s doctor); a Snakefile that does not load is a ConfigError."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings import types as st

    from snakemake_executor_plugin_byok8s import compat

    _register_own_plugins()
    quiet = st.OutputSettings(quiet={st.Quietness.ALL}, nocolor=True)
    with SnakemakeApi(quiet) as api:
        workflow_api = api.workflow(
            resource_settings=st.ResourceSettings(),
            config_settings=st.ConfigSettings(configfiles=[params] if params else []),
            storage_settings=st.StorageSettings(),
            snakefile=snakefile,
            workdir=Path.cwd(),
        )
        try:
            return compat.rule_images(workflow_api)
        except Exception as exc:
            text = " ".join(str(exc).split())[:300]
            raise ConfigError(f"Snakefile {snakefile} does not load ({text}); give its "
                              "params (byok8s doctor WORKFLOW_CONFIG PARAMS)") from exc  # fmt: skip


def unlock(cfg: RunConfig, run: Run) -> None:
    """Remove Snakemake's own locks in the working directory (a killed run's)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings import types as st

    _register_own_plugins()
    with SnakemakeApi(st.OutputSettings(quiet={st.Quietness.ALL}, nocolor=True)) as api:
        _dag(api, cfg, run, st)[1].unlock()


def _dag(api: Any, cfg: RunConfig, run: Run, st: Any) -> tuple[Any, Any]:
    """The workflow and DAG APIs for a run (Snakemake's own order of settings)."""
    workflow_api = api.workflow(
        resource_settings=st.ResourceSettings(
            cores=cfg.cores,
            nodes=cfg.jobs if cfg.remote else None,
            default_resources=_default_resources(cfg),
        ),
        config_settings=_config_settings(cfg, run, st),
        storage_settings=_storage_settings(cfg, st),
        storage_provider_settings=_storage_provider_settings(cfg),
        deployment_settings=st.DeploymentSettings(
            deployment_method=(
                frozenset({st.DeploymentMethod.CONDA}) if cfg.use_conda else frozenset()
            )
        ),
        snakefile=staged_snakefile(cfg, run),
        workdir=cfg.workdir,
    )
    try:  # this reads and evaluates the Snakefile
        dag_api = workflow_api.dag(
            # Outputs of jobs that did not finish (a failed or interrupted run) are
            # made again, so the next run resumes without --rerun-incomplete.
            st.DAGSettings(
                targets=frozenset(cfg.workflow.targets),
                forceall=cfg.forceall,
                force_incomplete=True,
            )
        )
    except Exception as exc:
        error = snakefile.load_error(exc, workflow_api, cfg)
        if error is None:
            raise
        raise error from exc
    return workflow_api, dag_api


def _default_resources(cfg: RunConfig) -> Any:
    """--default-resources over Snakemake's own defaults ("full" for remote jobs:
    mem_mb and disk_mb from the input size), or None for Snakemake's choice."""
    if not cfg.default_resources:
        return None
    from snakemake.resources import Resources

    try:
        return Resources.parse(
            list(cfg.default_resources),
            allow_expressions=True,
            defaults="full" if cfg.remote else "bare",
        )
    except Exception as exc:
        raise ConfigError(
            f"--default-resources {' '.join(cfg.default_resources)}: {_brief(exc)}; "
            "use NAME=VALUE, e.g. mem_mb=4000, mem=4G or disk_mb='2*input.size_mb'"
        ) from exc


def _register_own_plugins(executor: Backend | None = None) -> None:
    """Register byok8s's own plugins by module, so they are found even in an
    editable install (Snakemake's discovery only scans plain sys.path entries),
    and a plugin module Snakemake must not import by itself (byok8s.batch_plugin)."""
    import importlib

    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    from snakemake_executor_plugin_byok8s.jobrun import register_own_storage

    register_own_storage()
    if executor is not None and executor.module:
        registry = ExecutorPluginRegistry()
        name = registry.module_prefix + executor.plugin.replace("-", "_")
        registry.register_plugin(name, importlib.import_module(executor.module))


def _route_logging(
    snakemake_logger: logging.Logger, handler: logging.Handler, verbose: bool
) -> None:
    """Our handler gets every record; Snakemake's own console output only with --verbose."""
    from snakemake_executor_plugin_byok8s import compat

    if not verbose:
        for existing in list(snakemake_logger.handlers):
            if existing.name == compat.CONSOLE_HANDLER:
                snakemake_logger.removeHandler(existing)
    snakemake_logger.addHandler(handler)


def _config_settings(cfg: RunConfig, run: Run, st: Any) -> Any:
    if run.configfile is not None:
        return st.ConfigSettings(configfiles=[run.configfile])
    return st.ConfigSettings(config=dict(cfg.workflow.params))


def _storage_settings(cfg: RunConfig, st: Any) -> Any:
    if cfg.storage is None:
        return st.StorageSettings()
    return st.StorageSettings(
        default_storage_provider=cfg.storage.provider,
        default_storage_prefix=str(cfg.storage.url),
        shared_fs_usage=frozenset() if cfg.remote else st.SharedFSUsage.all(),
    )


def _storage_provider_settings(cfg: RunConfig) -> dict[str, Any]:
    if cfg.storage is None:
        return {}
    from snakemake_interface_common.plugin_registry.plugin import TaggedSettings
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    plugin = StoragePluginRegistry().get_plugin(cfg.storage.provider)
    tagged = TaggedSettings()
    tagged.register_settings(plugin.settings_cls(**cfg.storage.plugin_settings()))
    return {cfg.storage.provider: tagged}


def _executor_settings(executor: Backend, cfg: RunConfig, run: Run) -> Any:
    kwargs = executor.settings(cfg, run)
    if kwargs is None:
        return None
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    plugin = ExecutorPluginRegistry().get_plugin(executor.plugin)
    return plugin.settings_cls(**kwargs)


def _final_outputs(workflow_api: Any, cfg: RunConfig) -> list[str]:
    """Where the run's final results are: the targets' files, as paths or URLs."""
    from snakemake_executor_plugin_byok8s import compat

    try:
        dag = compat.dag(workflow_api)
        files: list[str] = []
        for job in dag.targetjobs:
            for f in job.output or job.input:
                files.append(_location(f, cfg))
        return sorted(dict.fromkeys(files))
    except Exception:  # reporting only; never fail a run over it
        log.debug("could not list the final outputs", exc_info=True)
        return []


def _job_outputs(workflow_api: Any, cfg: RunConfig, result: RunResult) -> None:
    """Each job's output files, as paths or URLs, for the run record."""
    from snakemake_executor_plugin_byok8s import compat

    try:
        dag = compat.dag(workflow_api)
        for job in dag.jobs:
            record = result.jobs.get(dag.jobid(job))
            if record is None and not dag.needrun(job):
                wildcards = {k: str(v) for k, v in dict(job.wildcards_dict).items()}
                record = JobRecord(dag.jobid(job), job.rule.name, wildcards, state="reused")
                result.reused.append(record)
            if record is not None:
                record.outputs = [_location(f, cfg) for f in job.output]
    except Exception:  # reporting only
        log.debug("could not list the jobs' outputs", exc_info=True)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _location(iofile: Any, cfg: RunConfig) -> str:
    if cfg.storage is not None and getattr(iofile, "is_storage", False):
        return str(iofile.storage_object.query)
    path = Path(str(iofile))
    return str(path if path.is_absolute() else cfg.workdir / path)


def _translate(exc: Exception, cfg: RunConfig) -> Byok8sError:
    from snakemake.exceptions import (
        LockException,
        MissingInputException,
        MissingRuleException,
        RuleException,
        WorkflowError,
    )

    text = _brief(exc)
    if isinstance(exc, LockException):
        return Locked(
            f"the working directory {cfg.workdir} is locked by another Snakemake run; wait for "
            "it, or if it is gone (killed), run the same command again with --unlock"
        )
    if isinstance(exc, MissingRuleException) or "Target rules may not contain" in text:
        return ConfigError(
            f"workflow config {cfg.workflow.config_file}: target not found: {text}; "
            "name a rule or output file of the Snakefile"
        )
    if isinstance(exc, MissingInputException):
        return WorkflowFailed(f"missing input: {text}; create it or fix the workflow")
    if "storage" in text.lower() and cfg.storage is not None:
        return StorageError(f"storage {cfg.storage.url}: {text}")
    if isinstance(exc, (WorkflowError, RuleException)):
        return WorkflowFailed(f"Snakemake rejected the workflow: {text}")
    return WorkflowFailed(f"{type(exc).__name__}: {text}")


def _brief(exc: BaseException) -> str:
    """The exception's first three non-empty lines, joined into one."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else text
