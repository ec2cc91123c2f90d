"""A failed job shows why: the end of each of its `log:` files (where tools write
their errors), read from this machine or the bucket, and files beside its inputs
that it was not given. No line that is not true ("Logfile ... not found", "command
exited with non-zero exit code" for a job that never ran its command)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import S3_KEY, S3_SECRET
from helpers import run_cli, write_json

from byok8s import diagnose, storage

BWA = """
rule all:
    input: "mapped.sam"
rule bwa_map:
    input: "data/genome.fa"
    output: "mapped.sam"
    log: "logs/bwa_map.log"
    shell: "(echo working; echo '[E::bwa_idx_load_from_disk] fail to locate the index files' >&2;"
           " exit 1) > {output} 2> {log}"
"""
CAUSE = "[E::bwa_idx_load_from_disk] fail to locate the index files"
UNTRUE = ("Logfile", "(command exited with non-zero exit code)", "message: None")


def own(workdir: Path, snakefile: str = BWA) -> None:
    (workdir / "Snakefile").write_text(snakefile)
    write_json(workdir / "wf.json", {"snakefile": "Snakefile"})
    write_json(workdir / "p.json", {})


def record(workdir: Path) -> dict:
    (path,) = (workdir / ".byok8s" / "runs").glob("*/record.json")
    return dict(json.loads(path.read_text()))


def test_a_local_jobs_log_file_tail_is_shown_kept_and_in_byok8s_logs(workdir: Path) -> None:
    own(workdir)
    (workdir / "data").mkdir()
    (workdir / "data" / "genome.fa").write_text(">chr1\nACGT\n")
    (workdir / "data" / "genome.fa.bwt").write_text("index")  # here: nothing is left out
    result = run_cli("wf.json", "p.json", cwd=workdir)
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert f"    log logs/bwa_map.log ends:\n        | {CAUSE}\n" in err
    assert not any(text in err for text in UNTRUE), err
    assert "hint:" not in err  # jobs on this machine read its files
    (job,) = record(workdir)["jobs"]
    assert job["log_files"] == {"logs/bwa_map.log": [CAUSE]}
    shown = run_cli("logs", "last", cwd=workdir)
    assert f"==> rule bwa_map [job 1] log file logs/bwa_map.log (the run record: its last " \
           f"lines) <==\n{CAUSE}\n" in shown.stdout  # fmt: skip


@pytest.mark.s3
def test_with_a_bucket_the_log_tail_and_the_undeclared_index_files_are_named(
    workdir: Path, s3: dict
) -> None:
    own(workdir)
    client, bucket = s3["client"], s3["bucket"]
    for key in (
        "genome.fa",
        "genome.fa.amb",
        "genome.fa.ann",
        "genome.fa.bwt",
        "genome.fa.pac",
        "genome.fa.sa",
        "genome.dict",
        "genome2.fa",
        "notes.txt",
    ):
        client.put_object(Bucket=bucket, Key=f"run/data/{key}", Body=b"x")  # fmt: skip
    result = run_cli("wf.json", "p.json", "--bucket", f"s3://{bucket}/run", "--executor", "local",
                     "--s3-endpoint-url", s3["endpoint"], cwd=workdir)  # fmt: skip
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert f"    log s3://{bucket}/run/logs/bwa_map.log ends:\n        | {CAUSE}\n" in err
    assert not any(text in err for text in UNTRUE), err
    hint = (
        "data/genome.dict, data/genome.fa.amb, data/genome.fa.ann, data/genome.fa.bwt, "
        "data/genome.fa.pac, data/genome.fa.sa exist in the bucket next to input data/genome.fa "
        "but are not inputs of rule bwa_map, and a job gets only its declared inputs; declare "
        'them as input (e.g. multiext("data/genome.fa", ".amb", ".ann", ".bwt", ".pac", ".sa"), '
        '"data/genome.dict") so that they are staged'
    )
    assert f"    hint: {hint}\n" in err
    (job,) = record(workdir)["jobs"]
    assert job["hints"] == [hint]
    assert job["log_files"] == {f"s3://{bucket}/run/logs/bwa_map.log": [CAUSE]}


@pytest.mark.s3
def test_a_declared_index_is_no_hint_and_only_the_end_of_a_large_log_is_read(
    workdir: Path, s3: dict
) -> None:
    own(workdir, BWA.replace('input: "data/genome.fa"',
                             'input: multiext("data/genome.fa", "", ".bwt")')
                    .replace("echo working;", "seq 1 100000 >&2;"))  # fmt: skip
    client, bucket = s3["client"], s3["bucket"]
    for key in ("genome.fa", "genome.fa.bwt"):
        client.put_object(Bucket=bucket, Key=f"run/data/{key}", Body=b"x")
    result = run_cli("wf.json", "p.json", "--bucket", f"s3://{bucket}/run", "--executor", "local",
                     "--s3-endpoint-url", s3["endpoint"], cwd=workdir)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "hint:" not in result.stderr
    (job,) = record(workdir)["jobs"]
    (tail,) = job["log_files"].values()
    assert tail == [str(n) for n in range(99982, 100001)] + [CAUSE]
    # The bucket's copy: the tail is a ranged read of the end, not the whole object.
    store = storage.resolve(
        f"s3://{bucket}/run",
        s3["endpoint"],
        {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET},
    )
    client.put_object(Bucket=bucket, Key="run/big.log", Body=b"a" * 100_000 + b"\nlast\n")
    assert store.tail("big.log", 10) == b"aaaa\nlast\n"


def test_hint_wording() -> None:
    one = diagnose._hint("sort", "x/reads.bam", ["x/reads.bam.bai"], "on this machine")
    assert one == (
        "x/reads.bam.bai exists on this machine next to input x/reads.bam but is not an input "
        "of rule sort, and a job gets only its declared inputs; declare it as input (e.g. "
        '"x/reads.bam.bai") so that it is staged'
    )
    assert diagnose.plain("s3://b/p/x.log (send to storage)") == "s3://b/p/x.log"
    assert diagnose.plain("logs/x.log") == "logs/x.log"
    assert diagnose._index_like("ref/genome.fa.fai", "ref/genome.fa")
    assert diagnose._index_like("ref/genome.dict", "ref/genome.fa")
    assert diagnose._index_like("r/s.bai", "r/s.bam")
    assert not diagnose._index_like("r/s.txt", "r/s.bam")
    assert diagnose._named("genome.fa.bwt", "cannot open genome.fa.bwt: no such file")
    assert not diagnose._named("test.in", "cp test.inter out/test.inter.bak")
