"""Runs with S3 default storage against a real S3 server (moto_server), executor local."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import S3_KEY, S3_SECRET
from helpers import run_cli, run_on_bucket, write_json

from byok8s.errors import ExitCode

pytestmark = pytest.mark.s3


def s3_text(s3: dict, key: str) -> str:
    return s3["client"].get_object(Bucket=s3["bucket"], Key=key)["Body"].read().decode()


def keys(s3: dict) -> set[str]:
    return {o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"]).get("Contents", [])}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert S3_SECRET not in text and S3_KEY not in text


def test_alpha_writes_to_bucket(workdir: Path, s3: dict) -> None:
    url = f"s3://{s3['bucket']}/runs/one"
    result = run_on_bucket(
        "workflow-alpha",
        "params-blue",
        url,
        "--s3-endpoint-url",
        s3["endpoint"],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert s3_text(s3, "runs/one/alpha.txt") == "alpha blue\n"
    assert f"{url}/alpha.txt" in result.stdout
    assert not (workdir / "alpha.txt").exists()
    logs = "".join(p.read_text() for p in (workdir / ".snakemake" / "log").glob("*.log"))
    assert_no_secret(result.stdout, result.stderr, logs)


def test_fanout_reads_inputs_from_bucket(workdir: Path, s3: dict) -> None:
    """An input already in the bucket is used, not re-simulated; outputs land in the bucket."""
    reads = "".join(f"@x.{i}\nGGGGCCCCAT\n+\nIIIIIIIIII\n" for i in range(3))
    s3["client"].put_object(Bucket=s3["bucket"], Key="p/data/s1.fastq", Body=reads.encode())
    write_json(workdir / "p.json", {"samples": ["s1", "s2"], "reads_per_sample": 5, "k": 2})
    result = run_on_bucket(
        "workflow-fanout",
        "p",
        f"s3://{s3['bucket']}/p",
        cwd=workdir,
        env={"AWS_ENDPOINT_URL": s3["endpoint"]},
    )
    assert result.returncode == 0, result.stderr
    assert "jobs: 7 run" in result.stdout
    assert "simulate (sample=s1)" not in result.stderr  # taken from the bucket
    assert "simulate (sample=s2)" in result.stderr
    assert s3_text(s3, "p/data/s1.fastq") == reads
    summary = s3_text(s3, "p/summary.tsv").splitlines()
    assert summary[1] == "s1\t3\t30\t0.8000\tCC\t9"
    assert summary[2].startswith("s2\t5\t250\t")
    assert {"p/qc/s1.tsv", "p/qc/s2.tsv", "p/kmers/s1.tsv", "p/kmers/s2.tsv"} <= keys(s3)


def test_options_from_environment(workdir: Path, s3: dict) -> None:
    env = {
        "BYOK8S_BUCKET": f"s3://{s3['bucket']}",
        "BYOK8S_EXECUTOR": "local",
        "BYOK8S_S3_ENDPOINT_URL": s3["endpoint"],
    }
    result = run_cli("workflow-gamma", "params-blue", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    assert s3_text(s3, "gamma.txt") == "gamma blue\n"


def test_missing_bucket_is_one_clear_line(workdir: Path, s3: dict) -> None:
    result = run_on_bucket(
        "workflow-alpha",
        "params-blue",
        "s3://no-such-bucket-here",
        "--s3-endpoint-url",
        s3["endpoint"],
        cwd=workdir,
    )
    assert result.returncode == ExitCode.STORAGE
    assert result.stderr.strip().splitlines() == [
        "byok8s: error: cannot reach s3://no-such-bucket-here: bucket 'no-such-bucket-here' "
        f"does not exist at {s3['endpoint']}; create it first"
    ]
    assert list(workdir.iterdir()) == []


def test_unreachable_endpoint(workdir: Path, s3: dict) -> None:
    from services import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    result = run_on_bucket(
        "workflow-alpha",
        "params-blue",
        f"s3://{s3['bucket']}",
        "--s3-endpoint-url",
        endpoint,
        cwd=workdir,
    )
    assert result.returncode == ExitCode.STORAGE
    assert "cannot connect to" in result.stderr and endpoint in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
