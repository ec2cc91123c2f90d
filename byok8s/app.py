"""One run, start to end: checks, staging, the Snakemake run, the summary."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from functools import partial

from byok8s import backends, engine, lock, output, records, signals, staging
from byok8s.config import RunConfig
from byok8s.errors import Byok8sError, ConfigError, Interrupted, StorageError, WorkflowFailed
from byok8s.staging import STAGE_DIR, Run

log = logging.getLogger(__name__)
SOURCES_PREFIX = "snakemake-workflow-sources."  # Snakemake's name for uploaded sources


def run(cfg: RunConfig) -> engine.RunResult:
    """Run the workflow; raises the run's error after printing the summary."""
    redact = output.Redactor(cfg.storage.secret_values() if cfg.storage else ())
    output.setup_logging(cfg.verbose, redact)
    if cfg.unlock:
        _unlock(cfg)
        return engine.RunResult()
    executor = backends.get(cfg.executor, bucket=cfg.storage is not None)
    executor.preflight(cfg)
    if cfg.storage is not None:
        cfg.storage.check()
    run_id = records.new_id()  # names the run's record, lock and cluster objects
    mine = None
    if cfg.storage is not None and not cfg.dry_run:
        where = executor.where(cfg)
        mine = lock.acquire(cfg.storage, cfg.workflow.config_file.name, run_id, where)
    stopped = False  # by Ctrl-C or SIGTERM: the user wants it to end, not to wait
    try:
        return _run(cfg, run_id, executor, redact)
    except (KeyboardInterrupt, Interrupted):
        stopped = True
        raise
    finally:  # Snakemake may take the signal's KeyboardInterrupt and return
        executor.finish(cfg, run_id, wait=not (stopped or signals.received()))
        if mine is not None and cfg.storage is not None:
            lock.release(cfg.storage, mine)


def _run(
    cfg: RunConfig, run_id: str, executor: backends.Backend, redact: output.Redactor
) -> engine.RunResult:
    created = [p for p in (cfg.workdir / ".snakemake", cfg.workdir / STAGE_DIR) if not p.exists()]
    workdir_existed = cfg.workdir.exists()
    record = None
    result = None
    run: Run | None = None
    try:
        run = staging.stage(cfg, run_id)
        if not cfg.dry_run:
            record = records.Record.begin(cfg, run)
            run = replace(run, record_dir=record.directory)
        plan = output.plan_lines(cfg, executor.describe(cfg))
        with output.ConsoleListener(redact, cfg.verbose, plan) as listener:
            guard = None if cfg.storage is None else partial(records.check_prefix, cfg.storage)
            result = engine.run(cfg, run, executor, listener, guard)
    except ConfigError:
        # Bad input found by Snakemake (e.g. an unknown target): leave nothing behind.
        if record is not None:
            record.discard()
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        if not workdir_existed:
            shutil.rmtree(cfg.workdir, ignore_errors=True)
        raise
    except BaseException as exc:  # interrupted, or a bug: the record says so
        if record is not None:
            state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            record.end(result, state, str(exc) or type(exc).__name__)
        raise
    finally:
        if not cfg.dry_run:
            _remove_sources(cfg)
        if run is not None and run.configfile is not None:
            run.configfile.unlink(missing_ok=True)  # the record keeps the params
    assert result is not None
    error = _error(result)
    if record is not None:
        record.end(result, "failed" if error else "succeeded", error.message if error else None)
    output.print_summary(result, cfg, redact, record.directory if record else None)
    if error is not None:
        raise error
    return result


def _error(result: engine.RunResult) -> Byok8sError | None:
    """The run's own error when it is more than its jobs failing (storage, cluster),
    else the failed jobs."""
    if result.error is not None and not isinstance(result.error, WorkflowFailed):
        return result.error
    if result.failed:
        names = "; ".join(job.label() for job in result.failed)
        count = len(result.failed)
        return WorkflowFailed(
            f"{count} job{'s' if count > 1 else ''} failed: {names}; see the error above"
            + (f" and the log {result.logfile}" if result.logfile else "")
        )
    return result.error


def _remove_sources(cfg: RunConfig) -> None:
    """The workflow sources Snakemake uploaded for the jobs (when too large for the
    run's Secret, or for Azure Batch) go at the end, unless --keep-sources."""
    if cfg.storage is None or cfg.keep_sources or not cfg.remote:
        return
    try:
        for key in cfg.storage.list(SOURCES_PREFIX):
            if "/" not in key:
                cfg.storage.delete(key)
                log.debug("removed the workflow sources %s", cfg.storage.url.url(key))
    except StorageError as exc:
        log.warning("could not remove the workflow sources from the bucket: %s", exc)


def _unlock(cfg: RunConfig) -> None:
    """`--unlock`: what a killed run left locked, on the bucket and here."""
    if cfg.storage is not None:
        held = lock.holder(cfg.storage)
        if held is not None:  # first what the run left running, then its lock
            backend = backends.get(str(held.get("executor") or cfg.executor), bucket=True)
            backend.remove_dead_run(cfg, held)
            lock.unlock(cfg.storage)
        print(f"removed the lock of {lock.describe(held)} on {cfg.storage.url}" if held
              else f"no lock on {cfg.storage.url}")  # fmt: skip
    if (cfg.workdir / ".snakemake" / "locks").is_dir():
        engine.unlock(cfg, staging.stage(cfg, None))
        print(f"removed Snakemake's locks in {cfg.workdir}")
