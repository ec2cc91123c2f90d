"""Snakemake's semantics through byok8s on this machine: params of any shape reach
jobs Snakemake spawns itself (a pipe group runs in its own Snakemake process), and
a checkpoint's directory is seen by the input functions that depend on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, write_json
from test_cluster_semantics import CHECKPOINT_DIR, EXPECTED, PIPE_GROUP


def own(workdir: Path, snakefile: str, params: dict) -> None:
    (workdir / "Snakefile").write_text(snakefile)
    write_json(workdir / "wf.json", {"snakefile": "Snakefile"})
    write_json(workdir / "p.json", params)


def test_a_spawned_group_gets_params_snakemakes_config_option_cannot_carry(
    workdir: Path,
) -> None:
    # "n": one letter, a list inside a mapping: `--config` cannot spell either.
    own(workdir, PIPE_GROUP, {"n": 4, "nested": {"labels": ["x", "y"]}})
    result = run_cli("wf.json", "p.json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "counted.txt").read_text() == "4\nx y\n"
    assert list((workdir / ".byok8s").glob("params-*.json")) == []  # the record keeps them
    (record,) = (workdir / ".byok8s" / "runs").glob("*/record.json")
    assert json.loads(record.read_text())["params"] == {"n": 4, "nested": {"labels": ["x", "y"]}}


@pytest.mark.s3
def test_checkpoint_directories_with_a_bucket(workdir: Path, s3: dict) -> None:
    own(workdir, CHECKPOINT_DIR, {})
    result = run_cli("wf.json", "p.json", "--bucket", f"s3://{s3['bucket']}/ck", "--executor",
                     "local", "--s3-endpoint-url", s3["endpoint"], cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for sample, text in EXPECTED.items():
        obj = s3["client"].get_object(Bucket=s3["bucket"], Key=f"ck/aggregated/{sample}.txt")
        assert obj["Body"].read().decode() == text
    assert "jobs: 11 run, 0 failed, 0 skipped (of 11)" in result.stdout
