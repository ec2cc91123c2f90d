"""GCS for real: runs, the lock, records, `runs`/`logs` and `doctor` against
fake-gcs-server, as test_storage_s3.py, test_lock.py and test_doctor.py do for
S3 and Azurite; and the GCS credential mistakes, each one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import invoke, run_cli, run_on_bucket, write_json
from test_doctor import rows

from byok8s import errors, lock, records, storage
from byok8s.errors import ExitCode

pytestmark = pytest.mark.gcs


def text(gcs: dict, key: str) -> str:
    return str(gcs["client"].bucket(gcs["bucket"]).blob(key).download_as_text())


def keys(gcs: dict) -> set[str]:
    return {b.name for b in gcs["client"].list_blobs(gcs["bucket"])}


def test_alpha_writes_to_the_bucket_and_saves_its_record(workdir: Path, gcs: dict) -> None:
    url = f"gs://{gcs['bucket']}/runs/one"
    result = run_on_bucket("workflow-alpha", "params-blue", url, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert text(gcs, "runs/one/alpha.txt") == "alpha blue\n"
    assert f"{url}/alpha.txt" in result.stdout
    assert not (workdir / "alpha.txt").exists()
    (run,) = [p.name for p in (workdir / records.RUNS).iterdir()]
    saved = json.loads(text(gcs, f"runs/one/{records.RUNS}/{run}/{records.RECORD}"))
    assert saved["state"] == "succeeded" and saved["options"]["bucket"] == url
    listing = invoke("runs", "--bucket", url)
    assert listing.exit_code == 0 and run in listing.stdout
    elsewhere = workdir.parent / "elsewhere"  # another machine: only the bucket's copy
    elsewhere.mkdir()
    logs = invoke("logs", "last", "--bucket", url, "--workdir", str(elsewhere))
    assert logs.exit_code == 0, logs.stderr
    header = logs.stdout.splitlines()[0]
    assert header == (f"==> rule target1 [job 0] attempt 1 ({url}/{records.RUNS}/{run}/"
                      "logs/0-target1-1.log) <==")  # fmt: skip
    assert f"Storing in storage: {url}/alpha.txt" in logs.stdout


def test_fanout_reads_inputs_from_the_bucket(workdir: Path, gcs: dict) -> None:
    """An input already in the bucket is used; each job a process of its own."""
    reads = "".join(f"@x.{i}\nGGGGCCCCAT\n+\nIIIIIIIIII\n" for i in range(3))
    gcs["client"].bucket(gcs["bucket"]).blob("p/data/s1.fastq").upload_from_string(reads)
    write_json(workdir / "p.json", {"samples": ["s1", "s2"], "reads_per_sample": 5, "k": 2})
    result = run_on_bucket("workflow-fanout", "p", f"gs://{gcs['bucket']}/p", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "jobs: 7 run" in result.stdout
    assert "simulate (sample=s1)" not in result.stderr
    assert text(gcs, "p/summary.tsv").splitlines()[1] == "s1\t3\t30\t0.8000\tCC\t9"
    assert {"p/qc/s1.tsv", "p/qc/s2.tsv", "p/kmers/s1.tsv", "p/kmers/s2.tsv"} <= keys(gcs)


def test_the_lock_is_created_atomically_and_a_missing_one_is_not_found(gcs: dict) -> None:
    import os

    store = storage.resolve(f"gs://{gcs['bucket']}/p", None, os.environ)
    assert store.create("x/obj", b"first") is True
    assert store.create("x/obj", b"second") is False
    assert store.get("x/obj") == b"first"
    with pytest.raises(errors.NotFound):
        store.get("x/none")
    assert lock.holder(store) is None
    assert store.list("x/") == {"x/obj": 5}
    store.delete("x/obj")
    assert store.list() == {}


def test_a_second_run_into_a_locked_prefix_refuses(workdir: Path, gcs: dict) -> None:
    held = {"run": "0123456789ab", "workflow": "w.json", "user": "ada", "host": "lab-pc",
            "pid": 4242, "started": "2026-11-22T10:00:00+00:00"}  # fmt: skip
    blob = gcs["client"].bucket(gcs["bucket"]).blob(f"shared/{lock.LOCK}")
    blob.upload_from_string(json.dumps(held))
    done = run_on_bucket("workflow-alpha", "params-blue", f"gs://{gcs['bucket']}/shared",
                         cwd=workdir)  # fmt: skip
    assert done.returncode == ExitCode.LOCKED, done.stderr
    assert "is in use by another byok8s run (run 0123456789ab" in done.stderr
    assert keys(gcs) == {f"shared/{lock.LOCK}"}


def test_the_doctors_bucket_probe_writes_reads_and_deletes(gcs: dict) -> None:
    _, found = rows("--bucket", f"gs://{gcs['bucket']}/runs")
    assert found["bucket"]["status"] == "ok", found["bucket"]
    assert "wrote, read back and deleted" in found["bucket"]["detail"]
    assert keys(gcs) == set()


def test_a_missing_bucket_is_one_line_and_writes_nothing(workdir: Path, gcs: dict) -> None:
    result = run_on_bucket("workflow-alpha", "params-blue", "gs://no-such-bucket-here",
                           cwd=workdir)  # fmt: skip
    assert result.returncode == ExitCode.STORAGE, result.stderr
    assert result.stderr.strip().splitlines() == [
        "byok8s: error: bucket 'no-such-bucket-here' does not exist; create it first"
    ]
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("content, problem", [
    ("not json at all", "is not JSON (JSONDecodeError)"),
    ('["a", "list"]', 'is JSON, but not a credential file (no "type")'),
])  # fmt: skip
def test_a_credential_file_that_is_not_a_key_is_one_line(
    content: str, problem: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = workdir.parent / "key.json"
    key.write_text(content)
    env = {"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    result = run_cli("workflow-alpha", "params-blue", "--bucket", "gs://some-bucket",
                     "--executor", "local", cwd=workdir, env=env)  # fmt: skip
    assert result.returncode == ExitCode.STORAGE, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"byok8s: error: GOOGLE_APPLICATION_CREDENTIALS file {key} {problem}; point it to a "
        "service-account key file (JSON) or run 'gcloud auth application-default login'"
    ]
    assert list(workdir.iterdir()) == []
