"""More than one node (up.sh --nodes 3): a node lost under running jobs, a node
drained during a run, spot nodes with an on-demand last try; and up.sh's own
faults. Each run ends with its outputs complete and correct and nothing of its
own left on the cluster."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import localcluster
import pytest
from kubernetes import client as k8s
from test_cluster_e2e import left_behind, own_workflow, s3_text
from test_cluster_faults import NOTHING, bucket_args, byok8s, running_pods, wait_until

from snakemake_executor_plugin_byok8s import nodes as nodes_of

pytestmark = [pytest.mark.cluster, pytest.mark.multinode]

AKS_SPOT = "kubernetes.azure.com/scalesetpriority"
NODE_LOST_AFTER = 5  # seconds, for the tests (byok8s's default is 60)
# When a lost node's jobs are seen: the controller's grace (up.sh: 16 s), the pods'
# toleration (NODE_LOST_AFTER), the taint manager's and the watch's delays.
LOST_SEEN_WITHIN = 45

SIX = """
rule all:
    input: expand("out/{i}.txt", i=range(6))
rule work:
    output: "out/{i}.txt"
    shell: "sleep 15; echo {wildcards.i} > {output}"
"""
ONE = """
rule all:
    input: "out/one.txt"
rule work:
    output: "out/one.txt"
    shell: "sleep 8; echo one > {output}"
"""


def core(on_cluster: dict) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(on_cluster["cluster"].api())


def on_node(on_cluster: dict, node: str) -> list[k8s.V1Pod]:
    return [p for p in running_pods(on_cluster) if p.spec.node_name == node]


def evict(on_cluster: dict, pod: k8s.V1Pod) -> None:
    """As `kubectl drain` does (policy/v1beta1 on Kubernetes 1.20)."""
    namespace = on_cluster["namespace"]
    body = {"apiVersion": "policy/v1beta1", "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": namespace}}  # fmt: skip
    try:
        core(on_cluster).create_namespaced_pod_eviction(pod.metadata.name, namespace, body)
    except k8s.exceptions.ApiException as exc:
        if exc.status != 404:  # gone meanwhile
            raise


def record_of(workdir: Path) -> dict:
    (path,) = (workdir / ".byok8s/runs").glob("*/record.json")
    return json.loads(path.read_text())


def attempts(record: dict) -> list[list[dict]]:
    return [job["attempts"] for job in record["jobs"] if job["rule"] == "work"]


def outputs_correct(cluster_s3: dict, prefix: str, names: list[str]) -> None:
    for name in names:
        assert s3_text(cluster_s3, f"{prefix}/out/{name}.txt") == f"{name}\n", name


def test_the_nodes_are_three_each_with_its_own_name_labels_and_pod_subnet(
    nodes: list[str], on_cluster: dict
) -> None:
    found = {n.metadata.name: n for n in core(on_cluster).list_node().items}
    assert sorted(found) == sorted(nodes) == ["byok8s-node", "byok8s-node-2", "byok8s-node-3"]
    addresses = {name: n.status.addresses[0].address for name, n in found.items()}
    assert addresses == {"byok8s-node": "10.244.0.1", "byok8s-node-2": "10.244.1.1",
                         "byok8s-node-3": "10.244.2.1"}  # fmt: skip
    assert found["byok8s-node-3"].metadata.labels["byok8s.io/node"] == "3"


def test_a_lost_nodes_jobs_run_again_on_the_others(
    nodes: list[str], on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, SIX)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "lost"),
            "--jobs", "6", "--node-lost-after", str(NODE_LOST_AFTER)]  # fmt: skip
    proc = byok8s(*args, cwd=workdir)  # --retries 0
    wait_until("six jobs running", lambda: len(running_pods(on_cluster)) == 6)
    lost = on_node(on_cluster, nodes[1])
    assert lost  # two CPUs a node, a job asks for one: each node runs two
    time.sleep(2)  # their commands have started
    stopped = datetime.now(UTC)
    on_cluster["cluster"].stop_node(2)
    stdout, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stderr
    outputs_correct(cluster_s3, "lost", [str(i) for i in range(6)])
    said = f"its node {nodes[1]} stopped answering (NodeStatusUnknown: Kubelet stopped posting"
    warnings = [line for line in stderr.splitlines() if said in line]
    assert len(warnings) == len(lost), stderr  # type: ignore[arg-type]
    assert all("infrastructure retry 1 of 3, not counted against --retries" in w for w in warnings)
    retried = [a for a in attempts(record_of(workdir)) if len(a) > 1]
    assert len(retried) == len(lost)  # type: ignore[arg-type]
    for first, again in retried:
        assert (first["node"], first["node_event"], first["infra"]) == (nodes[1], "lost", True)
        assert again["state"] == "succeeded" and again["node"] != nodes[1]
        assert first["attempt"] == again["attempt"] == 1  # --retries untouched
        seen = datetime.fromisoformat(first["ended"]) - stopped
        assert seen.total_seconds() < LOST_SEEN_WITHIN, seen
    # Its pods on the lost node were removed by force: nothing stops them there.
    wait_until("no Job, pod or Secret left", lambda: left_behind(on_cluster) == NOTHING, 60)


def test_a_node_drained_during_a_run(
    nodes: list[str], on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, SIX)
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "drain"), "--jobs", "6"]
    proc = byok8s(*args, cwd=workdir)
    api = core(on_cluster)
    wait_until("six jobs running", lambda: len(running_pods(on_cluster)) == 6)
    drained = on_node(on_cluster, nodes[2])
    assert drained
    time.sleep(2)
    try:  # kubectl drain: cordon, then evict every pod
        api.patch_node(nodes[2], {"spec": {"unschedulable": True}})
        for pod in drained:  # type: ignore[attr-defined]
            evict(on_cluster, pod)
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        api.patch_node(nodes[2], {"spec": {"unschedulable": False}})
    assert proc.returncode == 0, stderr
    outputs_correct(cluster_s3, "drain", [str(i) for i in range(6)])
    said = f"its node {nodes[2]} is being drained (cordoned); submitting it again in 2 s"
    assert sum(said in line for line in stderr.splitlines()) == len(drained), stderr  # type: ignore[arg-type]
    retried = [a for a in attempts(record_of(workdir)) if len(a) > 1]
    assert len(retried) == len(drained)  # type: ignore[arg-type]
    for first, again in retried:
        assert (first["node"], first["node_event"]) == (nodes[2], "drained")
        assert again["state"] == "succeeded" and again["node"] != nodes[2]
    wait_until("no Job, pod or Secret left", lambda: left_behind(on_cluster) == NOTHING, 60)


@pytest.fixture
def spot_node(nodes: list[str], on_cluster: dict) -> Any:
    """Node 2 as an AKS spot node (its label and taint); 1 and 3 on-demand."""
    api = core(on_cluster)
    api.patch_node(nodes[1], {"metadata": {"labels": {AKS_SPOT: "spot"}},
                              "spec": {"taints": [{"key": AKS_SPOT, "value": "spot",
                                                   "effect": "NoSchedule"}]}})  # fmt: skip
    yield nodes[1]
    api.patch_node(nodes[1], {"metadata": {"labels": {AKS_SPOT: None}}, "spec": {"taints": None}})


def test_spot_without_spot_nodes_warns_at_start_and_runs_on_the_others(
    nodes: list[str], on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, ONE.replace("sleep 8; ", ""))
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "nospot"), "--spot"]
    proc = byok8s(*args, cwd=workdir)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    (warning,) = [line for line in stderr.splitlines() if "--spot:" in line]
    assert "none of the cluster's 3 nodes has a spot label (kubernetes.azure.com/" in warning
    assert warning.endswith("give it with --spot-label KEY=VALUE")
    outputs_correct(cluster_s3, "nospot", ["one"])


def test_a_spot_job_evicted_again_and_again_ends_on_an_on_demand_node(
    spot_node: str, on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, ONE)
    # A small CPU request: the nodes' free CPU, which the scheduler also weighs, then
    # differs too little to outweigh the spot preference.
    args = [wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "spot"),
            "--spot", "--infra-retries", "2", "--cpu-scalar", "0.05"]  # fmt: skip
    proc = byok8s(*args, cwd=workdir)  # --retries 0
    evicted: list[str] = []

    def preempt() -> None:  # the spot pool takes its nodes back, every time
        while proc.poll() is None:
            for pod in on_node(on_cluster, spot_node):
                if pod.metadata.name not in evicted:
                    time.sleep(1)
                    evicted.append(pod.metadata.name)
                    evict(on_cluster, pod)
            time.sleep(0.3)

    thread = threading.Thread(target=preempt, daemon=True)
    thread.start()
    stdout, stderr = proc.communicate(timeout=400)
    thread.join(10)
    assert proc.returncode == 0, stderr
    outputs_correct(cluster_s3, "spot", ["one"])
    (tries,) = attempts(record_of(workdir))
    assert len(evicted) == 2 and [a["pod"] for a in tries[:2]] == evicted
    assert [a["state"] for a in tries] == ["failed", "failed", "succeeded"]
    assert [a["node"] for a in tries[:2]] == [spot_node, spot_node]
    assert all(a["spot_node"] and a["infra"] for a in tries[:2])
    assert tries[2]["on_demand"] is True and tries[2]["node"] != spot_node
    assert [a["attempt"] for a in tries] == [1, 1, 1]  # --retries untouched
    last = [line for line in stderr.splitlines() if "infrastructure retry 2 of 2" in line]
    assert len(last) == 1 and "(a spot node); submitting it again on an on-demand node (the " \
        "last try: spot nodes left out) in 4 s" in last[0]  # fmt: skip
    wait_until("no Job, pod or Secret left", lambda: left_behind(on_cluster) == NOTHING, 60)


def test_a_node_that_never_becomes_ready_fails_up_sh_with_its_kubelet_log(
    nodes: list[str], on_cluster: dict
) -> None:
    cluster = on_cluster["cluster"]
    env = {**os.environ, "BYOK8S_CLUSTER_CACHE": localcluster.CACHE, "BYOK8S_NODE_WAIT": "30",
           "BYOK8S_KUBELET_ARGS": "--node-labels=kubernetes.io/not-allowed=x"}  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(localcluster.SCRIPTS / "up.sh"), str(cluster.state), "--nodes", "4"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert time.monotonic() - started < 60  # its kubelet ended: no waiting for the rest
    said = [line for line in proc.stderr.splitlines() if not line.startswith("unpacking")]
    assert said[-2] == (
        "up.sh: node byok8s-node-4 did not become Ready in 30 s; its kubelet's last "
        f"errors ({cluster.state}/logs/node-4-kubelet.log):"
    )
    assert "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels" in said[-1]
    # What it started is stopped; the other nodes are as they were.
    assert not [p for p in (cluster.state / "pids").iterdir() if p.name.startswith("node-4-")]
    assert subprocess.run(["ip", "link", "show", "byok8s3"], capture_output=True).returncode
    found = core(on_cluster).list_node().items
    assert sorted(n.metadata.name for n in found) == nodes
    assert all(nodes_of.fate(n, n.metadata.name) == ("", "") for n in found)  # all Ready


@pytest.mark.parametrize("count", ["0", "99", "two"])
def test_a_node_count_this_machine_cannot_hold_is_one_line(count: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = localcluster.script("up.sh", str(state), "--nodes", count,
                               capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"up.sh: --nodes {count}: this machine holds 1 to ")
    assert (
        "MiB memory free" in line
        and line.endswith("; use --nodes 1..8")
        or "use --nodes 1.." in line
    )
    assert not state.exists()  # nothing written
