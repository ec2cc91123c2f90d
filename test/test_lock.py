"""One run per bucket prefix: the lock object, --unlock, and Snakemake's own
working-directory lock, against the real S3 server and Azurite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import error_line, run_cli, run_on_bucket

from byok8s import errors, lock, storage

HELD = {"run": "0123456789ab", "workflow": "workflow-alpha.json", "user": "ada",
        "host": "lab-pc", "pid": 4242, "started": "2026-11-22T10:00:00+00:00"}  # fmt: skip


def s3_storage(s3: dict, prefix: str) -> storage.Storage:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    return storage.resolve(f"s3://{s3['bucket']}/{prefix}", s3["endpoint"], env)


def start_own_run(workdir: Path, shell: str, started: Callable[[], bool]) -> subprocess.Popen:
    """A one-rule workflow run in the background (its own session, so it can be
    killed outright), returned once `started()` says its job is under way."""
    (workdir / "Snakefile").write_text(
        f"rule slow:\n    output: 'slow.txt'\n    shell: '{shell}'\n"
    )
    (workdir / "wf.json").write_text(json.dumps({"snakefile": "Snakefile"}))
    (workdir / "p.json").write_text("{}")
    proc = subprocess.Popen([sys.executable, "-m", "byok8s", "wf.json", "p.json"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not started():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    return proc


def kill_outright(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # a run that dies without cleaning up
    proc.wait()


@pytest.mark.s3
def test_create_is_atomic_on_s3(s3: dict) -> None:
    store = s3_storage(s3, "p")
    assert store.create("x/obj", b"first") is True
    assert store.create("x/obj", b"second") is False
    assert store.get("x/obj") == b"first"
    assert_missing_is_not_found(store)


@pytest.mark.azure
def test_create_is_atomic_on_azurite(azure: dict) -> None:
    env = {"AZ_BLOB_ACCOUNT_URL": f"{azure['url']}?{azure['sas']}"}
    store = storage.resolve(f"az://{azure['container']}/p", None, env)
    assert store.create("x/obj", b"first") is True
    assert store.create("x/obj", b"second") is False
    assert store.get("x/obj") == b"first"
    assert_missing_is_not_found(store)


def assert_missing_is_not_found(store: storage.Storage) -> None:
    """A missing object is the typed NotFound, which is how the lock knows there is
    none: its message's wording may change freely."""
    with pytest.raises(errors.NotFound):
        store.get("x/none")
    assert lock.holder(store) is None


def test_gcs_tells_a_missing_object_from_a_missing_bucket() -> None:
    from google.api_core.exceptions import Forbidden, NotFound

    from byok8s.storage.gcs import GcsStorage

    gcs = object.__new__(GcsStorage)  # missing() needs no client
    assert gcs.missing(NotFound("No such object: b/p/.byok8s/lock"))
    assert gcs.missing(NotFound("No such object: my-bucket/p/.byok8s/lock"))
    assert not gcs.missing(NotFound("The specified bucket does not exist."))
    assert not gcs.missing(Forbidden("denied"))


@pytest.mark.s3
def test_a_second_run_into_a_locked_prefix_refuses_and_changes_nothing(
    s3: dict, workdir: Path
) -> None:
    store = s3_storage(s3, "shared")
    store.put(lock.LOCK, json.dumps(HELD).encode())
    before = store.list()
    done = run_on_bucket("workflow-alpha", "params-blue", f"s3://{s3['bucket']}/shared",
                         "--s3-endpoint-url", s3["endpoint"], cwd=workdir)  # fmt: skip
    assert done.returncode == 6, done.stderr
    line = error_line(done)
    assert f"s3://{s3['bucket']}/shared is in use by another byok8s run" in line
    assert "run 0123456789ab of workflow-alpha.json" in line and "ada@lab-pc, pid 4242" in line
    assert "--unlock" in line
    assert store.list() == before
    assert json.loads(store.get(lock.LOCK)) == HELD


@pytest.mark.s3
def test_runs_into_other_prefixes_go_on_and_release_their_lock(s3: dict, workdir: Path) -> None:
    s3_storage(s3, "a").put(lock.LOCK, json.dumps(HELD).encode())
    done = run_on_bucket("workflow-alpha", "params-blue", f"s3://{s3['bucket']}/b",
                         "--s3-endpoint-url", s3["endpoint"], cwd=workdir)  # fmt: skip
    assert done.returncode == 0, done.stderr
    b = s3_storage(s3, "b").list()
    assert "alpha.txt" in b and lock.LOCK not in b


@pytest.mark.s3
def test_a_failed_run_releases_its_lock(s3: dict, workdir: Path) -> None:
    (workdir / "Snakefile").write_text("rule fail:\n    output: 'x.txt'\n    shell: 'exit 3'\n")
    (workdir / "wf.json").write_text(json.dumps({"snakefile": "Snakefile"}))
    (workdir / "p.json").write_text("{}")
    done = run_on_bucket("wf.json", "p.json", f"s3://{s3['bucket']}/f",
                         "--s3-endpoint-url", s3["endpoint"], cwd=workdir)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert lock.LOCK not in s3_storage(s3, "f").list()


@pytest.mark.s3
def test_unlock_stops_the_job_processes_a_killed_local_run_left(s3: dict, workdir: Path) -> None:
    """`--executor local --bucket` runs each job in a session of its own: killed
    outright, the run leaves them writing to the bucket; --unlock stops them."""
    from snakemake_executor_plugin_byok8s import processes

    (workdir / "Snakefile").write_text(
        "rule slow:\n    output: 'slow.txt'\n    shell: 'sleep 300; echo late > {output}'\n"
    )
    (workdir / "wf.json").write_text(json.dumps({"snakefile": "Snakefile"}))
    (workdir / "p.json").write_text("{}")
    url = f"s3://{s3['bucket']}/killed"
    args = ("wf.json", "p.json", "--bucket", url, "--executor", "local",
            "--s3-endpoint-url", s3["endpoint"])  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "byok8s", *args], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    store = s3_storage(s3, "killed")
    deadline = time.monotonic() + 120
    while not (lock.holder(store) and _pids(processes.jobs_dir(lock.holder(store)["run"]))):
        assert time.monotonic() < deadline and proc.poll() is None, "the job never started"
        time.sleep(0.2)
    run = lock.holder(store)["run"]
    root = processes.jobs_dir(run)
    (job,) = _pids(root)
    kill_outright(proc)
    assert _running(job)  # the job goes on without its run
    done = run_cli(*args, "--unlock", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"stopped what run {run} left on this machine: 1 job process ({job})"
    )
    assert _running(job) == []  # a zombie left for init to reap has stopped
    assert not root.exists() and lock.LOCK not in store.list()
    again = run_cli(*args, "--unlock", cwd=workdir)
    assert again.stdout.splitlines()[0] == f"no lock on {url}"


def test_stop_left_stops_only_the_runs_own_jobs(tmp_path: Path) -> None:
    """A listed number whose process is not in the run's jobs directory (a later
    process that got the number) is left alone, and a cut-short line is skipped."""
    from snakemake_executor_plugin_byok8s import processes

    root = tmp_path / "byok8s-jobs-r"
    (root / "job-1-1").mkdir(parents=True)
    own = subprocess.Popen(["sleep", "60"], cwd=root / "job-1-1", start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], cwd=tmp_path, start_new_session=True)
    (root / "pids").write_text(f"{own.pid}\n{other.pid}\n12a")
    try:
        assert processes.stop_left(root) == [own.pid]
        assert own.wait(10) is not None and other.poll() is None
        assert not root.exists()
    finally:
        other.kill()
        other.wait()


def _running(group: int) -> list[int]:
    """The processes of process group `group` that still run (zombies have ended)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group and fields[0] != "Z":  # state, ppid, pgrp
            found.append(int(stat.parent.name))
    return found


def _pids(root: Path) -> list[int]:
    pids = root / "pids"
    return [int(p) for p in pids.read_text().split()] if pids.is_file() else []


@pytest.mark.s3
def test_unlock_removes_a_dead_runs_lock_and_the_next_run_works(s3: dict, workdir: Path) -> None:
    store = s3_storage(s3, "stale")
    store.put(lock.LOCK, json.dumps(HELD).encode())
    url = f"s3://{s3['bucket']}/stale"
    args = ("workflow-alpha", "params-blue", url, "--s3-endpoint-url", s3["endpoint"])
    done = run_on_bucket(*args, "--unlock", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "run 0123456789ab ran its jobs on lab-pc: any still running there go on",
        f"removed the lock of run 0123456789ab of workflow-alpha.json, started "
        f"2026-11-22T10:00:00+00:00 by ada@lab-pc, pid 4242 on {url}",
    ]
    assert store.list() == {}
    again = run_on_bucket(*args, "--unlock", cwd=workdir)
    assert again.stdout.strip() == f"no lock on {url}"
    assert run_on_bucket(*args, cwd=workdir).returncode == 0


def test_snakemakes_own_lock_is_explained_and_unlock_clears_it(workdir: Path) -> None:
    locks = workdir / ".snakemake" / "locks"
    first = start_own_run(workdir, "sleep 60; touch {output}",
                          lambda: locks.is_dir() and any(locks.iterdir()))  # fmt: skip
    try:
        done = run_cli("wf.json", "p.json", cwd=workdir)
        assert done.returncode == 6, done.stderr
        line = error_line(done)
        assert "is locked by another Snakemake run" in line and "--unlock" in line
    finally:
        kill_outright(first)
    assert any(locks.iterdir())
    assert run_cli("wf.json", "p.json", cwd=workdir).returncode == 6
    unlocked = run_cli("wf.json", "p.json", "--unlock", cwd=workdir)
    assert unlocked.returncode == 0, unlocked.stderr
    assert f"removed Snakemake's locks in {workdir}" in unlocked.stdout
    assert not locks.exists() or not list(locks.iterdir())
    (workdir / "Snakefile").write_text(
        "rule slow:\n    output: 'slow.txt'\n    shell: 'touch {output}'\n"
    )
    assert run_cli("wf.json", "p.json", cwd=workdir).returncode == 0
    assert (workdir / "slow.txt").exists()


@pytest.mark.s3
def test_the_users_bucket_is_never_deleted(s3: dict, workdir: Path) -> None:
    """snakemake-storage-plugin-s3 deletes a bucket when its last object is removed
    (as --forceall does with the outputs it reruns); the run's lock object keeps
    the bucket non-empty for the whole run, so it is never deleted (or re-created
    without its policies)."""

    def created() -> object:
        buckets = s3["client"].list_buckets()["Buckets"]
        return next(b["CreationDate"] for b in buckets if b["Name"] == s3["bucket"])

    url = f"s3://{s3['bucket']}"  # outputs at the bucket's root: they are all it holds
    args = ("workflow-alpha", "params-blue", url, "--s3-endpoint-url", s3["endpoint"])
    assert run_on_bucket(*args, cwd=workdir).returncode == 0
    before = created()
    time.sleep(1.1)  # a re-created bucket would show a later creation time
    again = run_on_bucket(*args, "--forceall", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert created() == before
    keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"])["Contents"]]
    assert [k for k in keys if not k.startswith(".byok8s/runs/")] == ["alpha.txt"]


def test_a_rerun_after_an_interrupted_run_remakes_the_incomplete_output(workdir: Path) -> None:
    """Outputs of jobs that did not finish are made again without --rerun-incomplete."""
    first = start_own_run(workdir, "echo partial > {output}; sleep 60",
                          (workdir / "slow.txt").exists)  # fmt: skip
    kill_outright(first)  # slow.txt is left incomplete
    run_cli("wf.json", "p.json", "--unlock", cwd=workdir)
    (workdir / "Snakefile").write_text(
        "rule slow:\n    output: 'slow.txt'\n    shell: 'echo whole > {output}'\n"
    )
    again = run_cli("wf.json", "p.json", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert (workdir / "slow.txt").read_text() == "whole\n"


def test_the_lock_goes_when_the_storage_answers_again_as_the_run_ends() -> None:
    """A run that failed because the storage was away for a moment ends while it
    still is: it tries again for a while before it leaves the lock to --unlock."""
    from byok8s.errors import StorageError

    class Away:
        def __init__(self, refusals: int) -> None:
            self.refusals, self.deleted = refusals, []

        def get(self, key: str) -> bytes:
            if self.refusals:
                self.refusals -= 1
                raise StorageError("s3://lab/run: connection refused")
            return json.dumps({"run": "r1"}).encode()

        def delete(self, key: str) -> None:
            self.deleted.append(key)

    back = Away(2)
    lock.release(back, {"run": "r1"}, waits=(0.0, 0.0, 0.0))  # type: ignore[arg-type]
    assert back.deleted == [lock.LOCK]
    gone = Away(5)
    lock.release(gone, {"run": "r1"}, waits=(0.0, 0.0))  # type: ignore[arg-type]
    assert gone.deleted == [] and gone.refusals == 2
