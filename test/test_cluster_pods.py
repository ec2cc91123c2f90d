"""What reaches the job pods on the real local cluster: persistent volume claims
(a hostPath PersistentVolume and its claim), scratch space, resources, node
selectors and tolerations (checked by where the pods land), and jobs no node
can take failing after --pending-timeout with the scheduler's reason."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cluster_e2e import left_behind, own_workflow, run_on_s3, s3_text

pytestmark = pytest.mark.cluster


def _core(on_cluster: dict):  # type: ignore[no-untyped-def]
    import kubernetes

    return kubernetes.client.CoreV1Api(on_cluster["cluster"].api())


@contextlib.contextmanager
def host_claim(on_cluster: dict, name: str, directory: Path) -> Iterator[str]:
    """A hostPath PersistentVolume over `directory`, bound to claim `name`."""
    core, ns = _core(on_cluster), on_cluster["namespace"]
    volume = f"{ns}-{name}"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o777)  # the job runs as uid 1000; hostPath has no fsGroup
    core.create_persistent_volume(
        {
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(directory), "type": "Directory"},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    try:
        yield name
    finally:
        core.delete_namespaced_persistent_volume_claim(name, ns)
        core.delete_persistent_volume(volume)


VOLUMES_SNAKEFILE = """
rule all:
    input: "result.txt"
rule use_volumes:
    output: "result.txt"
    shell:
        "cat /ref/genome.fa > {output}; "
        "if touch /ref/written 2>/dev/null; then echo 'the reference is writable' >&2; exit 1; fi; "
        "echo from-the-job > /shared/out.txt; "
        "echo scratch-ok > /scratch/tmp.txt && cat /scratch/tmp.txt >> {output}; "
        "df -P /ram | tail -1 | cut -d' ' -f1 >> {output}"
"""


def test_claims_read_only_and_shared_and_scratch(
    on_cluster: dict, cluster_s3: dict, workdir: Path, tmp_path: Path
) -> None:
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "genome.fa").write_text(">chr1\nACGT\n")
    wf, params = own_workflow(workdir, VOLUMES_SNAKEFILE)
    with (
        host_claim(on_cluster, "refdata", tmp_path / "ref"),
        host_claim(on_cluster, "workspace", tmp_path / "shared"),
    ):
        result, seen = run_on_s3(
            on_cluster, cluster_s3, wf, params, "vol",
            "--pvc", "refdata:/ref:ro", "--pvc", "workspace:/shared",
            "--scratch", "/scratch:64Mi", "--scratch", "/ram:memory",
            cwd=workdir,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert s3_text(cluster_s3, "vol/result.txt") == ">chr1\nACGT\nscratch-ok\ntmpfs\n"
    assert (tmp_path / "shared" / "out.txt").read_text() == "from-the-job\n"
    assert not (tmp_path / "ref" / "written").exists()
    (pod,) = seen.pods.values()
    mounts = {m.mount_path: m.read_only for m in pod.spec.containers[0].volume_mounts}
    assert mounts["/ref"] is True and not mounts["/shared"]
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes["scratch-0"].empty_dir.size_limit == "64Mi"
    assert volumes["scratch-1"].empty_dir.medium == "Memory"
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


PLACED_SNAKEFILE = """
rule all:
    input: "sized.txt", "plain.txt"
rule sized:
    output: "sized.txt"
    threads: 1
    resources: mem_mb=300, disk_mb=200
    shell: "echo sized > {output}"
rule plain:
    output: "plain.txt"
    shell: "echo plain > {output}"
"""


@contextlib.contextmanager
def tainted_node(on_cluster: dict, key: str) -> Iterator[str]:
    """The local node, tainted `key=yes:NoSchedule` and labelled `key=yes` meanwhile."""
    core = _core(on_cluster)
    (node,) = core.list_node().items
    name = node.metadata.name
    taints = list(node.spec.taints or [])
    patch = {
        "metadata": {"labels": {key: "yes"}},
        "spec": {
            "taints": [t.to_dict() for t in taints]
            + [{"key": key, "value": "yes", "effect": "NoSchedule"}]
        },
    }
    core.patch_node(name, patch)
    try:
        yield name
    finally:
        core.patch_node(
            name,
            {
                "metadata": {"labels": {key: None}},
                "spec": {"taints": [t.to_dict() for t in taints] or None},
            },
        )


def test_resources_selectors_and_tolerations_place_the_pods(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, PLACED_SNAKEFILE)
    key = f"byok8s-test-{uuid.uuid4().hex[:6]}"
    with tainted_node(on_cluster, key) as node:
        result, seen = run_on_s3(
            on_cluster, cluster_s3, wf, params, "placed", "--jobs", "2",
            "--node-selector", f"{key}=yes", "--toleration", f"{key}=yes:NoSchedule",
            "--default-resources", "mem_mb=256",
            cwd=workdir,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pods = {p.metadata.labels["byok8s.io/rule"]: p for p in seen.pods.values()}
    assert sorted(pods) == ["plain", "sized"]
    for pod in pods.values():
        assert pod.spec.node_name == node  # it landed on the tainted, labelled node
        assert pod.spec.node_selector == {key: "yes"}
        assert {"key": key, "operator": "Equal", "value": "yes", "effect": "NoSchedule"} in [
            {k: v for k, v in t.to_dict().items() if v is not None} for t in pod.spec.tolerations
        ]
    sized = pods["sized"].spec.containers[0].resources
    assert sized.requests == {"cpu": "950m", "memory": "300M", "ephemeral-storage": "200M"}
    assert sized.limits == {"memory": "300M"}
    plain = pods["plain"].spec.containers[0].resources
    assert plain.requests["memory"] == "256M" and plain.limits == {"memory": "256M"}


HUGE_SNAKEFILE = """
rule all:
    input: "huge.txt"
rule huge:
    output: "huge.txt"
    threads: 1000
    shell: "echo never > {output}"
"""


QUEUE = """
rule all:
    input: expand("queue/{i}.txt", i=range(4))
rule wait:
    output: "queue/{i}.txt"
    threads: 1
    shell: "sleep 30; echo {wildcards.i} > {output}"
"""


def test_pods_that_wait_for_room_behind_the_runs_own_wait_their_turn(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    """More jobs in flight than the node holds (two 1-thread pods fit its 2 cores):
    the second two wait for room longer than --pending-timeout while the first two
    run, and must neither fail nor each be reported as waiting (1000 jobs at
    --jobs 50 failed so; a wait counts from its turn)."""
    from datetime import datetime

    wf, params = own_workflow(workdir, QUEUE)
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "queue", "--jobs", "4",
                             "--pending-timeout", "25", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "is waiting" not in result.stderr and len(seen.pods) == 4
    (journal,) = workdir.glob(".byok8s/runs/*/jobs.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    submitted = {e["jobid"]: e["submitted"] for e in events if e["event"] == "submitted"}
    at = datetime.fromisoformat
    waits = [(at(e["scheduled"]) - at(submitted[e["jobid"]])).total_seconds()
             for e in events if e["event"] == "ended"]  # fmt: skip
    assert len(waits) == 4 and max(waits) > 25, waits  # some did wait past the timeout
    assert left_behind(on_cluster)["jobs"] == []


def test_pods_no_node_takes_fail_after_the_pending_timeout_with_the_reason(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    """A request no node can hold (1000 CPUs: a rule's threads are not capped at this
    machine's cores for a cluster) fails at once, as no autoscaler runs here (the
    wait with an autoscaler: test_cluster_first_failures); a taint the pod does not
    tolerate is said while waiting, naming rule, job and pod, and fails the job
    after --pending-timeout with the scheduler's reason."""
    wf, params = own_workflow(workdir, HUGE_SNAKEFILE)
    result, seen = run_on_s3(
        on_cluster, cluster_s3, wf, params, "huge", "--pending-timeout", "8", cwd=workdir
    )
    assert result.returncode == 1, result.stderr
    assert seen.pods == {}
    err = result.stderr
    assert "message: rule huge [job 1] asks for 950 CPUs (threads: 1000), but the largest " in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("byok8s: error: 1 job failed: rule huge [job 1]")

    wf, params = own_workflow(workdir, HUGE_SNAKEFILE.replace("threads: 1000", "threads: 1"))
    key = f"byok8s-test-{uuid.uuid4().hex[:6]}"
    with tainted_node(on_cluster, key):
        result, seen = run_on_s3(
            on_cluster, cluster_s3, wf, params, "tainted", "--pending-timeout", "8",
            cwd=workdir,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (pod,) = seen.pods
    assert f"pod {pod}: did not start in 8 s (--pending-timeout): unschedulable:" in (result.stderr)
    assert f"had untolerated taint {{{key}: yes}}" in result.stderr or (
        f"had taint {{{key}: yes}}, that the pod didn't tolerate" in result.stderr
    )
    assert left_behind(on_cluster)["jobs"] == []


RULES_SNAKEFILE = """
rule all:
    input: "pinned.txt", "own.txt", "slowpoke.txt"
rule pinned:
    output: "pinned.txt"
    shell: "echo pinned > {output}"
rule own:
    output: "own.txt"
    resources: k8s_node_selector="KEY=yes", k8s_toleration="KEY=yes:NoSchedule",
               k8s_label="stage=own", k8s_image_pull_policy="Never"
    shell: "echo own > {output}"
rule slowpoke:
    output: "slowpoke.txt"
    resources: k8s_active_deadline=4, k8s_toleration="KEY"
    shell: "sleep 60; echo late > {output}"
"""


@contextlib.contextmanager
def priority_class(on_cluster: dict, name: str) -> Iterator[str]:
    import kubernetes

    api = kubernetes.client.SchedulingV1Api(on_cluster["cluster"].api())
    api.create_priority_class({"metadata": {"name": name}, "value": 1000})
    try:
        yield name
    finally:
        api.delete_priority_class(name)


def test_scheduling_per_rule_from_the_workflow_config_and_resources(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    """On a tainted, labelled node: one rule placed by the workflow config's `rules`,
    one by its own k8s_* resources, one stopped by its deadline."""
    key = f"byok8s-test-{uuid.uuid4().hex[:6]}"
    wf, params = own_workflow(workdir, RULES_SNAKEFILE.replace("KEY", key))
    high = f"{on_cluster['namespace']}-high"
    config = json.loads((workdir / wf).read_text())
    config["rules"] = {"pinned": {
        "node_selector": {key: "yes"}, "toleration": [f"{key}=yes:NoSchedule"],
        "priority_class": high, "label": {"stage": "pinned"},
        "annotation": {"example.com/owner": "genomics"}, "image_pull_policy": "IfNotPresent",
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": key, "operator": "In", "values": ["yes"]}]}]}}},
    }, "slowpoke": {"priority_class": high}}  # fmt: skip
    # (pinned, at priority 1000, may preempt `own` on the 2-CPU node, not slowpoke)
    (workdir / wf).write_text(json.dumps(config))
    with tainted_node(on_cluster, key) as node, priority_class(on_cluster, high):
        result, seen = run_on_s3(
            on_cluster, cluster_s3, wf, params, "rules", "--jobs", "3", "--keep-going",
            "--pod-label", "team=genomics", cwd=workdir,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr  # slowpoke passed its deadline
    pods = {p.metadata.labels["byok8s.io/rule"]: p for p in seen.pods.values()}
    pinned, own = pods["pinned"], pods["own"]
    for pod in (pinned, own):
        assert pod.spec.node_name == node and pod.spec.node_selector == {key: "yes"}
        assert pod.metadata.labels["team"] == "genomics"  # the run's label, on every pod
    assert pinned.spec.priority_class_name == high and pinned.spec.priority == 1000
    terms = pinned.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    assert terms.node_selector_terms[0].match_expressions[0].key == key
    assert pinned.metadata.labels["stage"] == "pinned"
    assert pinned.metadata.annotations["example.com/owner"] == "genomics"
    assert pinned.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert own.metadata.labels["stage"] == "own"
    assert own.spec.containers[0].image_pull_policy == "Never"
    assert s3_text(cluster_s3, "rules/pinned.txt") == "pinned\n"
    assert s3_text(cluster_s3, "rules/own.txt") == "own\n"
    slowpoke = pods["slowpoke"].metadata.name
    assert (
        f"pod {slowpoke}: Kubernetes Job failed (DeadlineExceeded: Job was active longer "
        "than specified deadline)"
    ) in result.stderr
    # A deadline is the job's own failure, never run again as the cluster's. (The
    # high-priority pod may preempt another on the 2-CPU node: that one does go again.)
    retried = [line for line in result.stderr.splitlines() if "infrastructure retry" in line]
    assert not [line for line in retried if line.startswith("rule slowpoke")], retried
    assert left_behind(on_cluster)["jobs"] == []
