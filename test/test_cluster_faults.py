"""Faults on the real local cluster and storage servers: each run ends with its
outputs complete and correct, or fails clearly and a rerun completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import localcluster
import pytest
import services
from helpers import run_cli
from kubernetes import client as k8s
from test_cluster_e2e import left_behind, own_workflow, s3_text

from byok8s import lock
from byok8s.errors import ExitCode
from snakemake_executor_plugin_byok8s.podspec import CONTAINER

pytestmark = pytest.mark.cluster

NOTHING = {"jobs": [], "pods": [], "secrets": []}


def byok8s(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen[str]:
    """byok8s started in the background, as a user starts it in a terminal."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "byok8s"), *args], cwd=cwd,
        env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_until(what: str, check: Callable[[], object], seconds: float = 120) -> object:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.3)
    return found


def running_pods(on_cluster: dict, rule: str | None = None) -> list[k8s.V1Pod]:
    core = k8s.CoreV1Api(on_cluster["cluster"].api())
    selector = f"byok8s.io/rule={rule}" if rule else "byok8s.io/run"
    pods = core.list_namespaced_pod(on_cluster["namespace"], label_selector=selector).items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def bucket_args(cluster_s3: dict, prefix: str, endpoint: str | None = None) -> list[str]:
    return ["--bucket", f"s3://{cluster_s3['bucket']}/{prefix}",
            "--s3-endpoint-url", endpoint or cluster_s3["endpoint"]]  # fmt: skip


SLOW = """
rule all:
    input: expand("slow/{i}.txt", i=range(2))
rule slow:
    output: "slow/{i}.txt"
    shell: "sleep 300; echo {wildcards.i} > {output}"
"""
QUICK = SLOW.replace("sleep 300; ", "")


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "Ctrl-C"),
                                              (signal.SIGTERM, 143, "SIGTERM")])  # fmt: skip
def test_a_signal_cancels_the_runs_pods_and_secret_and_a_rerun_works(
    sig: int, code: int, name: str, on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, SLOW)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "sig")]
    proc = byok8s(*args, cwd=workdir)
    wait_until("two running pods", lambda: len(running_pods(on_cluster)) == 2)
    sent = time.monotonic()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    exited = time.monotonic() - sent
    assert proc.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"byok8s: error: interrupted by {name}; the run's jobs were cancelled"
    )
    wait_until("no Job, pod or Secret left", lambda: left_behind(on_cluster) == NOTHING)
    took = time.monotonic() - sent
    print(f"{name}: byok8s exited after {exited:.1f} s, nothing left after {took:.1f} s")
    assert exited < 10  # the kubelet then takes its own time (10 s to a minute) to remove pods
    assert lock.LOCK not in {o["Key"][len("sig/"):] for o in cluster_s3["client"].list_objects_v2(
        Bucket=cluster_s3["bucket"], Prefix="sig/").get("Contents", [])}  # fmt: skip
    (workdir / "Snakefile").write_text(QUICK)
    rerun = run_cli(*args, cwd=workdir, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert s3_text(cluster_s3, "sig/slow/1.txt") == "1\n"


PAIR = """
rule all:
    input: "fast.txt", "slow.txt"
rule fast:
    output: "fast.txt"
    shell: "echo fast > {output}"
rule slow:
    output: "slow.txt"
    shell: "sleep 15; echo slow > {output}"
"""


def take_pod_when_running(
    on_cluster: dict, rule: str, evict: bool = False, logged: str | None = None
) -> str:
    """Delete a running pod of `rule`, or evict it through the Eviction API; once its
    job's log has the line `logged` when given."""
    pod = wait_until(f"a running pod of {rule}", lambda: running_pods(on_cluster, rule))
    name = str(pod[0].metadata.name)  # type: ignore[index]
    namespace = on_cluster["namespace"]
    core = k8s.CoreV1Api(on_cluster["cluster"].api())

    def log_has_it() -> bool:
        try:
            log = core.read_namespaced_pod_log(name, namespace, container=CONTAINER)
        except k8s.ApiException:
            return False
        return logged in str(log).splitlines()

    if logged:
        wait_until(f"{logged!r} in the log of {name}", log_has_it)
    else:
        time.sleep(2)  # the job's command has started
    if evict:  # as `kubectl drain` does, in the version the server serves
        groups = k8s.ApisApi(on_cluster["cluster"].api()).get_api_versions().groups
        policy = next(g for g in groups if g.name == "policy")
        version = "v1" if "v1" in {v.version for v in policy.versions} else "v1beta1"
        body = {"apiVersion": f"policy/{version}", "kind": "Eviction",
                "metadata": {"name": name, "namespace": namespace}}  # fmt: skip
        core.create_namespaced_pod_eviction(name, namespace, body)
    else:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    return name


def test_an_evicted_pod_is_submitted_again_without_spending_retries(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, PAIR)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "evict")]
    proc = byok8s(*args, cwd=workdir)  # --retries 0
    evicted = take_pod_when_running(on_cluster, "slow", evict=True)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    (warning,) = [line for line in stderr.splitlines() if f"pod {evicted} was" in line]
    assert warning.startswith("rule slow [job ") and warning.endswith(
        f"]: pod {evicted} was deleted (or evicted, or preempted) before its job finished; "
        "submitting it again in 2 s (infrastructure retry 1 of 3, not counted against --retries)"
    )
    assert s3_text(cluster_s3, "evict/slow.txt") == "slow\n"
    assert s3_text(cluster_s3, "evict/fast.txt") == "fast\n"
    record = json.loads(next((workdir / ".byok8s/runs").glob("*/record.json")).read_text())
    slow = next(j for j in record["jobs"] if j["rule"] == "slow")
    assert [a["state"] for a in slow["attempts"]] == ["failed", "succeeded"]
    assert slow["attempts"][1]["k8s_job"] == slow["attempts"][0]["k8s_job"] + "-r1"
    # The evicted pod is deleted; the kubelet may take its time to remove it.
    wait_until("no Job, pod or Secret left", lambda: left_behind(on_cluster) == NOTHING)


def test_a_deleted_pod_past_the_infra_retries_fails_and_a_second_run_resumes(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, PAIR)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "resume")]
    proc = byok8s(*args, "--infra-retries", "0", cwd=workdir)
    deleted = take_pod_when_running(on_cluster, "slow")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    assert f"pod {deleted}: was deleted (or evicted, or preempted) before its job" in stderr
    assert (
        stderr.strip().splitlines()[-1].startswith("byok8s: error: 1 job failed: rule slow [job ")
    )
    assert s3_text(cluster_s3, "resume/fast.txt") == "fast\n"
    again = run_cli(*args, cwd=workdir, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "jobs: 2 run, 0 failed" in again.stdout  # slow and the target rule `all`
    assert "rule fast" not in again.stderr  # what was done is not done again
    assert s3_text(cluster_s3, "resume/slow.txt") == "slow\n"
    assert left_behind(on_cluster) == NOTHING


CHAIN = """
N = 12
rule all:
    input: f"step/{N - 1}.txt"
rule first:
    output: "step/0.txt"
    shell: "echo 0 > {output}"
rule step:
    input: lambda w: f"step/{int(w.i) - 1}.txt"
    output: "step/{i}.txt"
    wildcard_constraints: i="[1-9][0-9]*"
    shell: "sleep 1; echo $(( $(cat {input}) + 1 )) > {output}"
"""


def test_the_s3_server_going_away_mid_run(
    on_cluster: dict, cluster_s3: dict, cluster_s3_server, workdir: Path
) -> None:
    """The S3 server restarts (every connection dropped, refused for at least 6 s and
    until requests were refused) while a chain of jobs reads and writes it: the run
    completes, or fails clearly with no object left that looks complete but is
    not."""
    outage = services.Outage(on_cluster["cluster"].gateway,
                             (cluster_s3_server.host, cluster_s3_server.port))  # fmt: skip
    endpoint = f"http://{outage.host}:{outage.port}"
    wf, params = own_workflow(workdir, CHAIN)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "chain", endpoint)]
    proc = byok8s(*args, cwd=workdir)
    wait_until("step 3", lambda: "Contents" in cluster_s3["client"].list_objects_v2(
        Bucket=cluster_s3["bucket"], Prefix="chain/step/3.txt"), 180)  # fmt: skip
    outage.down()
    time.sleep(6)  # as long as a server restart takes, at least
    wait_until("a request refused", lambda: outage.refused > 0, 120)
    outage.up()
    stdout, stderr = proc.communicate(timeout=400)
    outage.close()
    keys = {o["Key"]: o["Size"] for o in cluster_s3["client"].list_objects_v2(
        Bucket=cluster_s3["bucket"], Prefix="chain/step/")["Contents"]}  # fmt: skip
    for key in keys:  # every object there is whole and right
        i = int(key.rsplit("/", 1)[1].split(".")[0])
        assert s3_text(cluster_s3, key) == f"{i}\n", key
    print(f"S3 outage: exit {proc.returncode}, {len(keys)} of 12 steps written, "
          f"{outage.dropped} connections dropped, {outage.refused} refused")  # fmt: skip
    assert outage.refused > 0  # the outage hit requests
    if proc.returncode != 0:
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("byok8s: error: "), stderr
        rerun = run_cli(*args[:-1], cluster_s3["endpoint"], cwd=workdir, timeout=400)
        assert rerun.returncode == 0, rerun.stderr
    assert s3_text(cluster_s3, "chain/step/11.txt") == "11\n"
    assert left_behind(on_cluster) == NOTHING


def test_resume_from_another_machine_after_the_first_was_killed(
    on_cluster: dict, cluster_s3: dict, tmp_path: Path
) -> None:
    """A run is killed outright (SIGKILL: nothing cleans up) partway through a chain;
    a second machine, from a fresh empty directory with the same workflow and
    bucket, is refused while the lock stands, unlocks (the dead run's Job, pods and
    Secret go), then runs only the jobs whose outputs are missing in the bucket; its
    record says which jobs it reused, and every output is whole and right."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    wf, params = own_workflow(first, CHAIN)
    own_workflow(second, CHAIN)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "resume")]
    proc = byok8s(*args, cwd=first)
    wait_until("step 4", lambda: "Contents" in cluster_s3["client"].list_objects_v2(
        Bucket=cluster_s3["bucket"], Prefix="resume/step/4.txt"), 180)  # fmt: skip
    proc.kill()
    proc.communicate(timeout=30)

    refused = run_cli(*args, cwd=second)
    assert refused.returncode == ExitCode.LOCKED, refused.stderr
    assert "--unlock" in refused.stderr.strip().splitlines()[-1]
    unlock = run_cli(*args, "--unlock", cwd=second)
    assert unlock.returncode == 0, unlock.stderr
    assert left_behind(on_cluster) == NOTHING  # the dead run's Job, pods and Secret
    there = {o["Key"].rsplit("/", 1)[1] for o in cluster_s3["client"].list_objects_v2(
        Bucket=cluster_s3["bucket"], Prefix="resume/step/")["Contents"]}  # fmt: skip

    resumed = run_cli(*args, cwd=second, timeout=400)
    assert resumed.returncode == 0, resumed.stderr
    (path,) = (second / ".byok8s" / "runs").glob("*/record.json")
    record = json.loads(path.read_text())
    ran = {f"{j['wildcards'].get('i', '0')}.txt" for j in record["jobs"] if j["rule"] != "all"}
    reused = {f"{j['wildcards'].get('i', '0')}.txt" for j in record["reused"]}
    assert reused == there and ran == {f"{i}.txt" for i in range(12)} - there, (there, ran)
    assert f"{len(there)} up to date (reused)" in resumed.stdout
    for i in range(12):  # the chain adds one a step: a partial output would break it
        assert s3_text(cluster_s3, f"resume/step/{i}.txt") == f"{i}\n"
    assert left_behind(on_cluster) == NOTHING


def test_a_kubelet_restart_mid_run(on_cluster: dict, cluster_s3: dict, workdir: Path) -> None:
    cluster = on_cluster["cluster"]
    wf, params = own_workflow(workdir, PAIR)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "kubelet")]
    proc = byok8s(*args, cwd=workdir)
    wait_until("the slow pod running", lambda: running_pods(on_cluster, "slow"))
    pid = int((cluster.state / "pids" / "kubelet").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    time.sleep(3)
    up = localcluster.script("up.sh", str(cluster.state), capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert up.returncode == 0, up.stderr
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert s3_text(cluster_s3, "kubelet/slow.txt") == "slow\n"
    assert left_behind(on_cluster) == NOTHING


def test_two_runs_at_once(on_cluster: dict, cluster_s3: dict, workdir: Path) -> None:
    """Different prefixes of one bucket: both complete. The same prefix: the second
    refuses while the first holds it."""
    wf, params = own_workflow(workdir, PAIR)
    other = workdir.parent / "other"
    other.mkdir()
    own_workflow(other, PAIR)
    first = byok8s(wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "one"),
                   cwd=workdir)  # fmt: skip
    wait_until("the first run's lock", lambda: "Contents" in cluster_s3["client"].list_objects_v2(
        Bucket=cluster_s3["bucket"], Prefix=f"one/{lock.LOCK}"))  # fmt: skip
    same = run_cli(wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "one"),
                   cwd=other)  # fmt: skip
    assert same.returncode == 6, same.stderr
    assert "is in use by another byok8s run" in same.stderr
    second = run_cli(wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "two"),
                     cwd=other, timeout=300)  # fmt: skip
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert second.returncode == 0, second.stderr
    for prefix in ("one", "two"):
        assert s3_text(cluster_s3, f"{prefix}/slow.txt") == "slow\n"
    assert left_behind(on_cluster) == NOTHING
