"""What a run makes before Snakemake starts, kept in a `Run` beside the frozen
RunConfig (which stays as the user gave it): the run's id, its params as a config
file, for remote jobs (which only get files below the working directory) the
Snakefile there too, and its record's directory."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from byok8s.errors import ConfigError

if TYPE_CHECKING:
    from byok8s.config import RunConfig

STAGE_DIR = ".byok8s"


@dataclass(frozen=True)
class Run:
    id: str | None = None  # names the run's record, lock and cluster objects; None: --unlock
    snakefile: Path | None = None  # the Snakefile Snakemake reads; None: the workflow's own
    configfile: Path | None = None  # the params as a config file (None: passed as values)
    record_dir: Path | None = None  # the run record's directory (none for a dry run)


def staged_snakefile(cfg: RunConfig, run: Run) -> Path:
    """The Snakefile Snakemake reads for this run."""
    return run.snakefile or cfg.workflow.snakefile


def stage(cfg: RunConfig, run_id: str | None) -> Run:
    """Stage the run's files below its working directory (none for --unlock, where
    Snakemake runs no job)."""
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    wf = cfg.workflow
    if run_id is None:
        return Run()
    # Params reach every job, spawned here (a group, a local rule of a remote run)
    # or remotely, as one config file (in the sources for remote jobs): Snakemake's
    # --config spelling carries no lists, no nested values and no one-letter keys.
    stage_dir = cfg.workdir / STAGE_DIR
    stage_dir.mkdir(exist_ok=True)
    configfile = stage_dir / f"params-{run_id}.json"
    configfile.write_text(json.dumps(dict(wf.params), indent=1))
    run = Run(id=run_id, configfile=configfile)
    if not cfg.remote:
        return run
    if wf.bundled is not None:
        target = stage_dir / "workflows" / wf.bundled
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(wf.snakefile.parent, target, ignore=shutil.ignore_patterns("__pycache__"))
        return Run(id=run_id, snakefile=target / "Snakefile", configfile=configfile)
    if not _inside(wf.snakefile, cfg.workdir):
        raise ConfigError(
            f"Snakefile {wf.snakefile} is outside the working directory {cfg.workdir}; "
            "remote jobs only receive files below it: run byok8s from the workflow's "
            "directory or pass --workdir"
        )
    return run


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False
