"""Staging for remote jobs: Snakefile and params below the working directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import tree
from test_config import CLI, given

from byok8s import config, staging
from byok8s.errors import ConfigError

CREDS = {"AWS_ACCESS_KEY_ID": "AKIAXX", "AWS_SECRET_ACCESS_KEY": "s3cr3tvalue"}


def test_remote_run_stages_bundled_workflow_and_params(workdir: Path) -> None:
    cfg = config.resolve(
        given(
            workflow_config=("workflow-fanout", CLI),
            params=("params-fanout", CLI),
            bucket=("s3://my-bucket", CLI),
        ),
        CREDS,
    )
    run = staging.stage(cfg, "RUN1")
    assert run.snakefile == workdir / ".byok8s/workflows/fanout/Snakefile"
    assert (workdir / ".byok8s/workflows/fanout/scripts/summary.py").is_file()
    assert run.configfile == workdir / ".byok8s/params-RUN1.json"
    assert json.loads(run.configfile.read_text()) == dict(cfg.workflow.params)


def test_local_run_stages_only_the_params(workdir: Path) -> None:
    """Jobs Snakemake spawns here get the params through the same config file."""
    cfg = config.resolve(given(), {})
    run = staging.stage(cfg, "RUN1")
    assert staging.staged_snakefile(cfg, run) == cfg.workflow.snakefile
    assert run.configfile == workdir / ".byok8s/params-RUN1.json"
    assert tree(workdir) == {".byok8s", ".byok8s/params-RUN1.json"}


def test_remote_snakefile_outside_workdir_is_refused(workdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "Snakefile").write_text("rule a:\n    output: 'a'\n    shell: 'touch a'\n")
    cfg = config.resolve(
        given(snakefile=(str(outside / "Snakefile"), CLI), bucket=("s3://my-bucket", CLI)), CREDS
    )
    with pytest.raises(ConfigError, match="outside the working directory"):
        staging.stage(cfg, "RUN1")
