"""Run records: written for every run (here and in the bucket), listed by
`byok8s runs`, and read back by `byok8s logs` from the saved copies."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import assert_one_line_error, invoke, run_cli, run_on_bucket, write_json
from kubernetes import client as k8s

from byok8s import logs, records
from byok8s.errors import ExitCode, NotFound, StorageError
from snakemake_executor_plugin_byok8s import status
from snakemake_executor_plugin_byok8s.journal import Journal


def only_record(workdir: Path) -> dict:
    (path,) = (workdir / records.RUNS).glob(f"*/{records.RECORD}")
    return json.loads(path.read_text())


def test_a_local_run_is_recorded_with_its_jobs_and_checksummed_outputs(workdir: Path) -> None:
    result = run_cli("workflow-fanout", "params-fanout", cwd=workdir)
    assert result.returncode == 0, result.stderr
    record = only_record(workdir)
    assert record["state"] == "succeeded" and record["error"] is None
    assert f"record: {workdir / records.RUNS / record['run']}" in result.stdout
    assert record["workflow"]["bundled"] == "fanout"
    assert record["workflow"]["config"]["targets"] == ["all"]
    assert record["params"]["samples"] == ["s1", "s2", "s3", "s4"]
    assert {"python", "byok8s", "snakemake"} <= set(record["versions"])
    assert record["options"]["executor"] == "local" and record["seconds"] > 0
    assert len(record["jobs"]) == 14 and all(j["state"] == "done" for j in record["jobs"])
    simulate = next(j for j in record["jobs"] if j["wildcards"] == {"sample": "s2"}
                    and j["rule"] == "simulate")  # fmt: skip
    assert simulate["ready"] <= simulate["ended"]
    assert simulate["outputs"] == [str(workdir / "data/s2.fastq")]
    summary = next(o for o in record["outputs"] if o["path"].endswith("summary.tsv"))
    data = (workdir / "summary.tsv").read_bytes()
    assert summary["size"] == len(data)
    assert summary["sha256"] == hashlib.sha256(data).hexdigest()

    listing = invoke("runs", "--workdir", str(workdir))
    assert listing.exit_code == 0
    assert record["run"] in listing.stdout and "succeeded" in listing.stdout
    assert "14 done" in listing.stdout
    as_json = json.loads(invoke("runs", "--workdir", str(workdir), "--json").stdout)
    assert [r["run"] for r in as_json] == [record["run"]]
    here = invoke("logs", "last", "summary", "--workdir", str(workdir))
    assert here.exit_code == 0 and "it ran on this machine" in here.stdout


def test_a_bucket_prefix_of_another_workflow_is_refused_and_a_rerun_reuses(
    s3: dict, workdir: Path, tmp_path: Path
) -> None:
    """A second run of the same workflow from another (empty) directory reuses what
    the bucket holds and its record says so; a different workflow (no rule in
    common) in that prefix is refused before anything runs, naming the first."""
    bucket = f"s3://{s3['bucket']}/shared"
    endpoint = ["--s3-endpoint-url", s3["endpoint"]]
    first = run_on_bucket("workflow-alpha", "params-blue", bucket, *endpoint, cwd=workdir)
    assert first.returncode == 0, first.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = run_on_bucket("workflow-alpha", "params-blue", bucket, *endpoint, cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert "jobs: none needed, outputs are up to date (1 jobs reused)" in again.stdout
    record = only_record(elsewhere)
    assert record["jobs"] == [] and record["rules"] == ["target1", "target2"]
    assert record["reused"] == [{"jobid": 0, "rule": "target1", "wildcards": {},
                                 "outputs": [f"{bucket}/alpha.txt"]}]  # fmt: skip

    before = {o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"])["Contents"]}
    other = tmp_path / "other"
    other.mkdir()
    refused = run_on_bucket("workflow-fanout", "params-fanout", bucket, *endpoint, cwd=other)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == ExitCode.CONFIG, refused.stderr
    assert last.startswith(f"byok8s: error: bucket prefix {bucket} holds the outputs of "
                           "another workflow: run "), last  # fmt: skip
    assert "of 'alpha' (rules target1, target2)" in last and f"--bucket {bucket}/alpha" in last
    after = {o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"])["Contents"]}
    assert after == before  # nothing written: no output, no record
    assert not (other / records.RUNS).exists()


def test_failed_and_dry_runs(workdir: Path) -> None:
    (workdir / "Snakefile").write_text("rule all:\n    output: 'x'\n    shell: 'exit 2'\n")
    write_json(workdir / "wf.json", {"snakefile": "Snakefile"})
    write_json(workdir / "params.json", {})
    assert run_cli("wf.json", "params.json", "--dry-run", cwd=workdir).returncode == 0
    assert not (workdir / records.RUNS).exists()  # a dry run runs nothing: no record
    assert run_cli("wf.json", "params.json", cwd=workdir).returncode == 1
    record = only_record(workdir)
    assert record["state"] == "failed" and "1 job failed: rule all [job 0]" in record["error"]
    assert [j["state"] for j in record["jobs"]] == ["failed"]
    assert record["outputs"] == []
    assert "failed" in invoke("runs", "--workdir", str(workdir)).stdout


def test_a_run_with_a_bucket_saves_its_record_next_to_the_outputs(s3: dict, workdir: Path) -> None:
    bucket = f"s3://{s3['bucket']}/runs"
    endpoint = ["--s3-endpoint-url", s3["endpoint"]]
    result = run_on_bucket("workflow-alpha", "params-blue", bucket, *endpoint, cwd=workdir)
    assert result.returncode == 0, result.stderr
    record = only_record(workdir)
    key = f"runs/{records.RUNS}/{record['run']}/{records.RECORD}"
    saved = json.loads(s3["client"].get_object(Bucket=s3["bucket"], Key=key)["Body"].read())
    assert saved == record
    (alpha,) = record["outputs"]
    assert alpha["path"] == f"s3://{s3['bucket']}/runs/alpha.txt"
    assert alpha["size"] == len(b"alpha blue\n")
    assert alpha["md5"] == hashlib.md5(b"alpha blue\n").hexdigest()
    assert record["options"]["bucket"] == f"s3://{s3['bucket']}/runs"
    listing = invoke("runs", "--bucket", bucket, *endpoint)
    assert listing.exit_code == 0 and record["run"] in listing.stdout


def _pod(node: str) -> k8s.V1Pod:
    t0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    t1 = datetime(2026, 11, 23, 10, 0, 3, tzinfo=UTC)
    state = k8s.V1ContainerState(
        terminated=k8s.V1ContainerStateTerminated(exit_code=0, started_at=t0, finished_at=t1)
    )
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="snakejob-abc-x1"),
        spec=k8s.V1PodSpec(containers=[], node_name=node),
        status=k8s.V1PodStatus(container_statuses=[k8s.V1ContainerStatus(
            name="snakemake", state=state, image="i", image_id="", ready=False,
            restart_count=0)]),
    )  # fmt: skip


def fake_cluster_run(workdir: Path, run: str = "20261123T100000Z-abcdef") -> Path:
    """A run record as a cluster run leaves it: the plugin's journal and logs."""
    directory = workdir / records.RUNS / run
    journal = Journal(str(directory))
    job = SimpleNamespace(jobid=3, name="align", attempt=1, is_group=lambda: False)
    journal.submitted(job, "snakejob-abc")
    ok = status.Outcome("succeeded", pod="snakejob-abc-x1", started=True)
    journal.finished(SimpleNamespace(job=job, external_jobid="snakejob-abc"), ok,
                     _pod("node-a"), "aligned 100 reads\n")  # fmt: skip
    entries = [json.loads(line) for line in (directory / "jobs.jsonl").read_text().splitlines()]
    assert [e["event"] for e in entries] == ["submitted", "ended"]
    assert entries[1]["node"] == "node-a" and entries[1]["started"] == "2026-11-23T10:00:00+00:00"
    assert entries[1]["log"] == "logs/3-align-1.log"
    jobs = records.jobs(None, directory / "jobs.jsonl")
    (attempt,) = jobs[0]["attempts"]
    assert jobs[0]["rule"] == "align" and attempt["pod"] == "snakejob-abc-x1"
    write_json(directory / records.RECORD,
               {"run": run, "state": "succeeded", "options": {"namespace": "default"},
                "jobs": [{"jobid": 3, "rule": "align", "state": "done", "attempts": jobs[0][
                    "attempts"]}]})  # fmt: skip
    return directory


def test_logs_are_read_from_the_saved_copy(workdir: Path) -> None:
    directory = fake_cluster_run(workdir)
    for job in ("align", "3", None):
        result = invoke("logs", "20261123T10", *([job] if job else []), "--workdir", str(workdir))
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"==> rule align [job 3] attempt 1, pod snakejob-abc-x1 "
            f"({directory / 'logs/3-align-1.log'}) <==",
            "aligned 100 reads",
        ]
    (directory / "logs/3-align-1.log").unlink()
    gone = invoke("logs", "last", "--workdir", str(workdir))
    assert gone.exit_code == ExitCode.WORKFLOW_FAILED
    assert "no saved copy, and the pod is gone" in gone.stdout


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["logs", "nope"], ["no run 'nope' in", "byok8s runs"]),
        (["logs", "2026", "align"], ["run '2026' is ambiguous", "give more of the id"]),
        (["logs", "last", "sort"], ["has no job 'sort'", "rules: align"]),
    ],
)
def test_logs_of_unknown_runs_and_jobs(workdir: Path, args: list[str], fragments: list) -> None:
    fake_cluster_run(workdir)
    fake_cluster_run(workdir, "20261124T100000Z-123456")
    result = invoke(*args, "--workdir", str(workdir))
    assert_one_line_error(result, ExitCode.CONFIG, *fragments)


@pytest.mark.parametrize("error, where", [
    (NotFound("cannot read s3://b/p/.byok8s/runs/r/logs/3-align-1.log: no such object"),
     "no saved copy, and the pod is gone from the cluster"),
    (StorageError("cannot read s3://b/p/.byok8s/runs/r/logs/3-align-1.log: access denied"),
     "the saved copy could not be read (cannot read s3://b/p/.byok8s/runs/r/logs/3-align-1.log: "
     "access denied), and the pod is gone from the cluster"),
])  # fmt: skip
def test_logs_say_whether_the_bucket_copy_is_missing_or_unreadable(
    error: Exception, where: str, workdir: Path
) -> None:
    """A copy that is not in the bucket is a NotFound (typed, not worded); any other
    storage error is shown, since it may hide a log that is there."""

    class Failing:
        url = SimpleNamespace(url=lambda relative: f"s3://b/p/{relative}")

        def get(self, relative: str) -> bytes:
            raise error

    attempt = {"attempt": 1, "pod": "snakejob-abc-x1", "log": "logs/3-align-1.log"}
    record = {"run": "r", "jobs": [{"jobid": 3, "rule": "align", "attempts": [attempt]}]}
    (found,) = logs.fetch(record, record["jobs"], workdir, Failing())  # type: ignore[arg-type]
    assert found.text is None and found.origin == where
