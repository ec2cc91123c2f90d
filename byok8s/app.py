"""One run, start to end: checks, staging, the Snakemake run, the summary."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from byok8s import engine, executors, lock, output
from byok8s.config import RunConfig
from byok8s.errors import ConfigError, WorkflowFailed

log = logging.getLogger(__name__)
STAGE_DIR = ".byok8s"


def run(cfg: RunConfig) -> engine.RunResult:
    """Run the workflow; raises the run's error after printing the summary."""
    redact = output.Redactor(cfg.storage.secret_values() if cfg.storage else ())
    output.setup_logging(cfg.verbose, redact)
    if cfg.unlock:
        _unlock(cfg)
        return engine.RunResult()
    executor = executors.get(cfg.executor)
    executor.preflight(cfg)
    if cfg.storage is not None:
        cfg.storage.check()
    mine = None
    if cfg.storage is not None and not cfg.dry_run:
        mine = lock.acquire(cfg.storage, cfg.workflow.config_file.name)
    try:
        return _run(cfg, executor, redact)
    finally:
        if mine is not None and cfg.storage is not None:
            lock.release(cfg.storage, mine)


def _run(cfg: RunConfig, executor: executors.Executor, redact: output.Redactor) -> engine.RunResult:
    created = [p for p in (cfg.workdir / ".snakemake", cfg.workdir / STAGE_DIR) if not p.exists()]
    workdir_existed = cfg.workdir.exists()
    try:
        staged = _stage(cfg)
        plan = output.plan_lines(staged, executor.describe(staged))
        with output.ConsoleListener(redact, cfg.verbose, plan) as listener:
            result = engine.run(staged, executor, listener)
    except ConfigError:
        # Bad input found by Snakemake (e.g. an unknown target): leave nothing behind.
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        if not workdir_existed:
            shutil.rmtree(cfg.workdir, ignore_errors=True)
        raise
    output.print_summary(result, staged, redact)
    if result.failed:
        names = "; ".join(job.label() for job in result.failed)
        count = len(result.failed)
        raise WorkflowFailed(
            f"{count} job{'s' if count > 1 else ''} failed: {names}; see the error above"
            + (f" and the log {result.logfile}" if result.logfile else "")
        )
    if result.error is not None:
        raise result.error
    return result


def _unlock(cfg: RunConfig) -> None:
    """`--unlock`: what a killed run left locked, on the bucket and here."""
    if cfg.storage is not None:
        held = lock.unlock(cfg.storage)
        print(f"removed the lock of {lock.describe(held)} on {cfg.storage.url}" if held
              else f"no lock on {cfg.storage.url}")  # fmt: skip
    if (cfg.workdir / ".snakemake" / "locks").is_dir():
        engine.unlock(_stage(cfg))
        print(f"removed Snakemake's locks in {cfg.workdir}")


def _stage(cfg: RunConfig) -> RunConfig:
    """Remote jobs only get files below the working directory: put the Snakefile there."""
    from dataclasses import replace

    cfg.workdir.mkdir(parents=True, exist_ok=True)
    wf = cfg.workflow
    if not cfg.remote:
        return cfg
    # Params go to jobs as a config file in the source archive: Snakemake's
    # --config serialisation does not carry lists or nested values.
    stage = cfg.workdir / STAGE_DIR
    stage.mkdir(exist_ok=True)
    configfile = stage / "params.json"
    configfile.write_text(json.dumps(dict(wf.params), indent=1))
    wf = replace(wf, configfile=configfile)
    if wf.bundled is not None:
        target = stage / "workflows" / wf.bundled
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(wf.snakefile.parent, target, ignore=shutil.ignore_patterns("__pycache__"))
        wf = replace(wf, snakefile=target / "Snakefile")
    elif not _inside(wf.snakefile, cfg.workdir):
        raise ConfigError(
            f"Snakefile {wf.snakefile} is outside the working directory {cfg.workdir}; "
            "remote jobs only receive files below it: run byok8s from the workflow's "
            "directory or pass --workdir"
        )
    return replace(cfg, workflow=wf)


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False
