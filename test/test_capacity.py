"""Whether a job's pod could ever be scheduled: requests against the largest node
its placement (node selector, taints, required node affinity) allows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client as k8s

from snakemake_executor_plugin_byok8s import capacity, podspec
from snakemake_executor_plugin_byok8s.options import Scheduling, Toleration


def node(name: str, cpu: str, memory: str, labels: dict | None = None,
         taints: list | None = None, **extra: str) -> capacity.Node:  # fmt: skip
    allocatable = {"cpu": cpu, "memory": memory, **extra}
    return capacity.Node(name, labels or {}, taints or [],
                         {k: capacity._quantity(v) for k, v in allocatable.items()})  # fmt: skip


def pod(resources: dict, **plan: Any) -> Any:
    settings = podspec.PodSettings(image="i", secret="s")
    body = podspec.job_body("j", "r", "align", 1, "true", resources, settings,
                            Scheduling(**plan))  # fmt: skip
    return body.spec.template.spec


SMALL, BIG = node("small", "2", "8Gi"), node("big", "16", "64Gi")


def test_the_largest_allowed_node_decides() -> None:
    assert capacity.never_fits([SMALL], pod({"_cores": 1, "mem_mb": 1000})) is None
    assert capacity.never_fits([SMALL], pod({"_cores": 8})) == (
        "cpu",
        Decimal("7.6"),
        "small",
        Decimal(2),
    )
    assert capacity.never_fits([SMALL, BIG], pod({"_cores": 8})) is None
    assert capacity.never_fits([SMALL, BIG], pod({"_cores": 1, "mem_mb": 100_000})) == (
        "memory",
        Decimal(100_000 * 10**6),
        "big",
        Decimal(64 * 2**30),
    )
    gpu = capacity.never_fits([BIG], pod({"_cores": 1, "gpu": 1}))
    assert gpu == ("nvidia.com/gpu", Decimal(1), "big", Decimal(0))


def test_placement_narrows_the_nodes() -> None:
    big_gpu_pool = node("big", "16", "64Gi", {"pool": "gpu"},
                        [k8s.V1Taint(key="sku", value="gpu", effect="NoSchedule")])  # fmt: skip
    eight = {"_cores": 8}
    # Untolerated taint: only the small node is allowed.
    assert capacity.never_fits([SMALL, big_gpu_pool], pod(eight))[2] == "small"
    tolerated = pod(eight, tolerations=(Toleration("sku", "gpu", "NoSchedule"),))
    assert capacity.never_fits([SMALL, big_gpu_pool], tolerated) is None
    # A node selector that only the small node matches.
    small = node("small", "2", "8Gi", {"pool": "cpu"})
    selected = pod(eight, node_selector=(("pool", "cpu"),),
                   tolerations=(Toleration("sku", None, None),))  # fmt: skip
    assert capacity.never_fits([small, big_gpu_pool], selected)[2] == "small"
    # No node allowed at all: not ours to say, the scheduler's reason stands.
    assert capacity.never_fits([small], pod(eight, node_selector=(("pool", "x"),))) is None


@pytest.mark.parametrize("operator, values, allowed", [
    ("In", ["big"], True), ("NotIn", ["big"], False), ("Exists", None, True),
    ("DoesNotExist", None, False), ("Gt", ["8"], True), ("Lt", ["8"], False),
])  # fmt: skip
def test_required_node_affinity(operator: str, values: list | None, allowed: bool) -> None:
    labelled = node("big", "16", "64Gi", {"size": "big", "cores": "16"})
    key = "cores" if operator in ("Gt", "Lt") else "size"
    term = {"key": key, "operator": operator, **({"values": values} if values else {})}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [term]}]}}}  # fmt: skip
    assert capacity.allows(labelled, pod({"_cores": 1}, affinity=_json(affinity))) is allowed


def _json(value: dict) -> str:
    import json

    return json.dumps(value)


class FakeCore:
    """The two reads the check makes, answering as a cluster would."""

    def __init__(self, nodes: list, autoscaler: int | None) -> None:
        self.nodes, self.autoscaler, self.calls = nodes, autoscaler, 0

    def list_node(self, **_: Any) -> Any:
        self.calls += 1
        return k8s.V1NodeList(items=self.nodes)

    def read_namespaced_config_map(self, name: str, namespace: str, **_: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        assert (namespace, name) == capacity.AUTOSCALER_STATUS
        if self.autoscaler != 200:
            raise ApiException(status=self.autoscaler)
        return k8s.V1ConfigMap()


def v1node(name: str, cpu: str, labels: dict | None = None) -> k8s.V1Node:
    status = k8s.V1NodeStatus(allocatable={"cpu": cpu, "memory": "8Gi"})
    return k8s.V1Node(metadata=k8s.V1ObjectMeta(name=name, labels=labels), status=status)


def body(cores: int) -> Any:
    settings = podspec.PodSettings(image="i", secret="s")
    return podspec.job_body("j", "r", "align", 1, "true", {"_cores": cores}, settings)


def test_without_an_autoscaler_the_job_fails_at_once_naming_the_fix() -> None:
    check = capacity.Capacity(FakeCore([v1node("n1", "2"), v1node("n2", "4")], 404))
    assert check.check("rule align [job 1]", 2, body(2)) is False  # fits
    with pytest.raises(capacity.NeverFits) as err:
        check.check("rule align [job 1]", 8, body(8))
    assert str(err.value) == (
        "rule align [job 1] asks for 7.6 CPUs (threads: 8), but the largest node its placement "
        "allows (n2) has 4 CPUs allocatable, and no cluster autoscaler was found to add a "
        "bigger one; cap threads with --cores 4, lower the rule's threads or resources "
        "(mem_mb, disk_mb), or add a node pool with bigger nodes"
    )
    assert check.core.calls == 1  # the nodes are read once a minute, not per job


@pytest.mark.parametrize("core", [
    FakeCore([v1node("n1", "2")], 200),  # the cluster autoscaler's status ConfigMap
    FakeCore([v1node("n1", "2")], 403),  # may not read it: it may be there
    FakeCore([v1node("n1", "2", {"karpenter.sh/nodepool": "default"})], 404),
])  # fmt: skip
def test_with_an_autoscaler_or_unknown_the_job_waits(core: FakeCore) -> None:
    # No error: the job waits, and its wait message says what to change.
    assert capacity.Capacity(core).check("rule align [job 1]", 8, body(8)) is True
    assert capacity.Capacity(core).check("rule align [job 1]", 1, body(1)) is False


def test_a_user_who_may_not_list_nodes_gets_no_check() -> None:
    from kubernetes.client.exceptions import ApiException

    class Forbidden(FakeCore):
        def list_node(self, **_: Any) -> Any:
            raise ApiException(status=403)

    assert capacity.Capacity(Forbidden([], 404)).check("rule align [job 1]", 8, body(8)) is False
