"""A workflow's first failures on the real local cluster, as a new user meets them:
the cause on screen (the end of the rule's `log:` file, files it was not given), a
request no node can hold failed at once with what to change, and nothing of the
run left in the namespace whatever its shape."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from helpers import run_cli
from kubernetes import client as k8s
from test_cluster_e2e import left_behind, own_workflow, run_on_s3
from test_cluster_faults import NOTHING, bucket_args, byok8s, running_pods, wait_until
from test_failure_causes import BWA, CAUSE, UNTRUE

from snakemake_executor_plugin_byok8s import capacity

pytestmark = pytest.mark.cluster


def test_the_log_files_tail_and_the_missing_index_are_shown(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, BWA)
    client, bucket = cluster_s3["client"], cluster_s3["bucket"]
    for key in ("genome.fa", "genome.fa.bwt", "genome.fa.sa"):
        client.put_object(Bucket=bucket, Key=f"bwa/data/{key}", Body=b"x")
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "bwa", cwd=workdir)
    assert result.returncode == 1, result.stderr
    err = result.stderr
    (pod,) = seen.pods
    assert f"pod {pod}: exited with code 1" in err
    assert f"    log s3://{bucket}/bwa/logs/bwa_map.log ends:\n        | {CAUSE}\n" in err
    assert "    hint: data/genome.fa.bwt, data/genome.fa.sa exist in the bucket next to input " \
           "data/genome.fa but are not inputs of rule bwa_map" in err  # fmt: skip
    assert not any(text in err for text in UNTRUE), err
    assert "see the cluster/cloud log" not in err
    shown = run_cli("logs", "last", cwd=workdir)
    assert f"log file s3://{bucket}/bwa/logs/bwa_map.log (the run record: its last lines) " \
           f"<==\n{CAUSE}\n" in shown.stdout  # fmt: skip
    assert left_behind(on_cluster) == NOTHING


GREEDY = """
rule all:
    input: "big.txt"
rule big:
    output: "big.txt"
    threads: 8
    shell: "echo big > {output}"
"""


def test_a_rule_no_node_can_hold_fails_at_once_with_the_fix(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, GREEDY)
    started = time.monotonic()
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "greedy", cwd=workdir)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert re.search(
        r"message: rule big \[job 1\] asks for 7\.6 CPUs \(threads: 8\), but the largest node "
        r"its placement allows \(byok8s-node\) has [0-9.]+ CPUs allocatable, and no cluster "
        r"autoscaler was found to add a bigger one; cap threads with --cores [0-9]+, lower the "
        r"rule's threads or resources \(mem_mb, disk_mb\), or add a node pool with bigger nodes",
        result.stderr,
    ), result.stderr
    assert "external_jobid" not in result.stderr  # no Job was made
    assert seen.pods == {}
    assert took < 60, took  # not the 900 s of --pending-timeout
    assert left_behind(on_cluster) == NOTHING
    # The fix it names works.
    fixed = run_cli(wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "greedy"),
                    "--cores", "1", cwd=workdir, timeout=300)  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr


def test_with_an_autoscaler_the_job_waits_and_the_wait_says_what_to_change(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    core = k8s.CoreV1Api(on_cluster["cluster"].api())
    namespace, name = capacity.AUTOSCALER_STATUS
    status = {"metadata": {"name": name}, "data": {"status": "Health: Healthy"}}
    core.create_namespaced_config_map(namespace, status)
    try:
        wf, params = own_workflow(workdir, GREEDY)
        result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "scaled",
                                 "--pending-timeout", "10", cwd=workdir)  # fmt: skip
    finally:
        core.delete_namespaced_config_map(name, namespace)
    assert result.returncode == 1, result.stderr
    (pod,) = seen.pods
    err = result.stderr
    assert f"rule big [job 1], pod {pod}, is waiting: unschedulable: 0/1 nodes are available: " \
           f"1 Insufficient cpu.; it fails after 10 s (--pending-timeout); " \
           f"{capacity.WAIT_HINT}" in err  # fmt: skip
    assert f"pod {pod}: did not start in 10 s (--pending-timeout): unschedulable: " in err
    assert err.count(capacity.WAIT_HINT) == 2
    assert left_behind(on_cluster) == NOTHING


ONE = """
rule all:
    input: "one.txt"
rule one:
    output: "one.txt"
    shell: "echo one > {output}"
"""


def test_runs_of_every_shape_leave_no_job_pod_or_secret(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, ONE)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "shapes")]
    assert run_cli(*args, cwd=workdir, timeout=300).returncode == 0  # ran a job
    assert left_behind(on_cluster) == NOTHING
    again = run_cli(*args, cwd=workdir, timeout=300)  # nothing to do
    assert again.returncode == 0 and "outputs are up to date" in again.stdout, again.stderr
    assert left_behind(on_cluster) == NOTHING
    dry = run_cli(*args, "--dry-run", "--forceall", cwd=workdir, timeout=300)
    assert dry.returncode == 0 and "jobs: would run 2" in dry.stdout, dry.stderr
    assert left_behind(on_cluster) == NOTHING
    # A run that fails before its first Job exists (the API refuses nothing here:
    # byok8s itself cannot build the pod).
    (workdir / "Snakefile").write_text(
        ONE.replace('"echo one', '"echo two').replace(
            "    shell:", "    resources: gpu=1, gpu_manufacturer='intel'\n    shell:"
        )
    )
    failed = run_cli(*args, "--forceall", cwd=workdir, timeout=300)
    assert failed.returncode == 1, failed.stderr
    assert "unsupported gpu_manufacturer 'intel'" in failed.stderr
    assert left_behind(on_cluster) == NOTHING


LOCAL_FIRST = """
localrules: wait
rule all:
    input: "b.txt"
rule wait:
    output: "a.txt"
    shell: "touch started.flag; sleep 120; echo a > {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}"
"""


def test_ctrl_c_before_the_first_job_leaves_nothing(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, LOCAL_FIRST)
    proc = byok8s(wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "early"),
                  cwd=workdir)  # fmt: skip
    core = k8s.CoreV1Api(on_cluster["cluster"].api())
    # The run's Secret exists (the executor is up) while its local job runs.
    wait_until("the run's Secret", lambda: core.list_namespaced_secret(
        on_cluster["namespace"]).items and (workdir / "started.flag").exists())  # fmt: skip
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert left_behind(on_cluster) == NOTHING


SLOW = """
rule all:
    input: "slow.txt"
rule slow:
    output: "slow.txt"
    shell: "sleep 300; echo slow > {output}"
"""


def test_unlock_after_a_killed_run_deletes_its_job_pod_and_secret(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, SLOW)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "killed")]
    proc = byok8s(*args, cwd=workdir)
    (pod,) = wait_until("a running pod", lambda: running_pods(on_cluster))  # type: ignore[misc]
    os.kill(proc.pid, signal.SIGKILL)  # nothing cleans up
    proc.communicate(timeout=30)
    left = left_behind(on_cluster)
    assert left["jobs"] and left["pods"] and left["secrets"], left
    refused = run_cli(*args, cwd=workdir, timeout=120)
    assert refused.returncode == 6 and "--unlock" in refused.stderr, refused.stderr
    unlocked = run_cli(*args, "--unlock", cwd=workdir, timeout=300)
    assert unlocked.returncode == 0, unlocked.stderr
    run = re.search(r"deleting what run (\S+) left in namespace", unlocked.stdout)
    assert run, unlocked.stdout
    (job,), (secret,) = left["jobs"], left["secrets"]
    assert unlocked.stdout.splitlines()[0] == (
        f"deleting what run {run.group(1)} left in namespace {on_cluster['namespace']}: "
        f"1 Job ({job}), 1 pod ({pod.metadata.name}), 1 Secret ({secret})"
    )
    assert "removed the lock of run " + run.group(1) in unlocked.stdout
    assert "still going" not in unlocked.stdout, unlocked.stdout
    assert left_behind(on_cluster) == NOTHING  # --unlock waited for the pod to stop
