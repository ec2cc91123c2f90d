"""What byok8s makes of a job's node when the cluster took its pod away (lost,
drained, spot), what a run leaves on a lost node, and the spot options."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client as k8s

from snakemake_executor_plugin_byok8s import leftovers, nodes, options, status
from snakemake_executor_plugin_byok8s.journal import Journal


def node(name: str = "n2", ready: str = "True", cordoned: bool = False, **labels: str) -> Any:
    condition = k8s.V1NodeCondition(
        type="Ready", status=ready,
        reason="NodeStatusUnknown" if ready != "True" else "KubeletReady",
        message="Kubelet stopped posting node status." if ready != "True" else "ok",
    )  # fmt: skip
    return k8s.V1Node(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1NodeSpec(unschedulable=cordoned or None),
        status=k8s.V1NodeStatus(conditions=[condition]),
    )


def test_a_node_that_stopped_answering_or_went_away_is_lost() -> None:
    assert nodes.fate(node(ready="Unknown"), "n2") == (
        nodes.LOST,
        "its node n2 stopped answering (NodeStatusUnknown: Kubelet stopped posting node status.)",
    )
    assert nodes.fate(None, "n2") == (nodes.LOST, "its node n2 was removed from the cluster")
    assert nodes.fate(node(cordoned=True), "n2") == (
        nodes.DRAINED,
        "its node n2 is being drained (cordoned)",
    )
    assert nodes.fate(node(), "n2") == ("", "")  # a pod deleted by hand: nothing to add
    assert nodes.not_ready([node("a"), node("b", ready="False"), node("c", ready="Unknown")]) == {
        "b",
        "c",
    }


def test_spot_nodes_are_told_by_any_known_pool_label() -> None:
    labels = options.SPOT_LABELS
    assert nodes.is_spot({"kubernetes.azure.com/scalesetpriority": "spot"}, labels)
    assert nodes.is_spot({"eks.amazonaws.com/capacityType": "SPOT"}, labels)
    assert nodes.is_spot({"cloud.google.com/gke-spot": "true"}, labels)
    assert not nodes.is_spot({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, labels)
    assert not nodes.is_spot(None, labels)
    assert nodes.is_spot({"pool": "cheap"}, [("pool", "cheap")])


@pytest.mark.parametrize(
    "given, expected",
    [(True, True), (False, False), ("true", True), (" False ", False), (None, None)],
)
def test_spot_is_true_or_false_in_a_config_or_a_rule_resource(given: Any, expected: Any) -> None:
    assert options.scheduling({"spot": given}, "rule a").spot is expected


@pytest.mark.parametrize("given", ["yes", 1, "spot", ["true"]])
def test_spot_of_another_kind_is_one_line_that_says_so(given: Any) -> None:
    with pytest.raises(ValueError, match=r"^rule a: spot .* must be true or false$"):
        options.scheduling({"spot": given}, "rule a")


def test_a_rules_spot_wins_over_the_runs_either_way() -> None:
    run = options.Scheduling(spot=True)
    assert options.Scheduling(spot=False).over(run).spot is False
    assert options.Scheduling().over(run).spot is True
    assert options.Scheduling(spot=True).over(options.Scheduling()).spot is True


@pytest.mark.parametrize("text", ["pool", "pool=", "=spot", "Bad Key=spot", "pool=a b"])
def test_a_spot_label_is_a_node_label(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--spot-label .* is not a node label KEY=VALUE; "):
        options.spot_label(text)
    assert options.spot_label("node-pool/capacity=spot") == ("node-pool/capacity", "spot")


def pod(name: str, node_name: str, labels: dict | None = None, phase: str = "Running") -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1PodSpec(containers=[], node_name=node_name),
        status=k8s.V1PodStatus(phase=phase),
    )


class FakeCore:
    def __init__(self, pods: list, node_list: list | Exception) -> None:
        self.pods, self.node_list, self.deleted = pods, node_list, {}

    def list_namespaced_pod(self, namespace: str, **_: Any) -> Any:
        return SimpleNamespace(items=self.pods)

    def list_namespaced_secret(self, namespace: str, **_: Any) -> Any:
        return SimpleNamespace(items=[])

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> Any:
        raise k8s.exceptions.ApiException(status=404)

    def list_node(self, **_: Any) -> Any:
        if isinstance(self.node_list, Exception):
            raise self.node_list
        return SimpleNamespace(items=self.node_list)

    def delete_namespaced_pod(self, name: str, namespace: str, grace_period_seconds: int) -> None:
        self.deleted[name] = grace_period_seconds


class StoppingCore(FakeCore):
    """Deleted pods that take `lists` more listings to go (their grace and the kubelet)."""

    def __init__(self, pods: list, lists: int) -> None:
        super().__init__(pods, [node("n1")])
        self.lists, self.listed = lists, 0

    def list_namespaced_pod(self, namespace: str, **_: Any) -> Any:
        self.listed += 1
        if self.deleted:
            self.lists -= 1
            if self.lists < 0:
                self.pods = [p for p in self.pods if p.metadata.name not in self.deleted]
        return SimpleNamespace(items=self.pods)


class FakeBatch:
    def list_namespaced_job(self, namespace: str, **_: Any) -> Any:
        return SimpleNamespace(items=[])


def test_a_runs_pods_on_a_lost_node_are_removed_at_once() -> None:
    """Nothing stops a pod on a node that stopped answering: its deletion waits for
    ever unless it is forced, and the run would leave it behind."""
    core = FakeCore([pod("p1", "n1"), pod("p2", "n2")], [node("n1"), node("n2", ready="Unknown")])
    found = leftovers.find(core, FakeBatch(), "ns", "byok8s-run")
    assert found.stranded == {"p2"}
    leftovers.remove(core, FakeBatch(), "ns", found)
    assert core.deleted == {"p1": leftovers.GRACE, "p2": 0}
    forbidden = FakeCore([pod("p1", "n1")], k8s.exceptions.ApiException(status=403))
    found = leftovers.find(forbidden, FakeBatch(), "ns", "byok8s-run")
    assert found.pods == ["p1"] and found.stranded == set()  # a namespaced user: as before


def test_a_runs_pods_that_ended_are_removed_at_once() -> None:
    """Nothing runs in them to be given time to stop."""
    pods = [pod("p1", "n1"), pod("p2", "n1", phase="Succeeded"), pod("p3", "n1", phase="Failed")]
    core = FakeCore(pods, [node("n1")])
    found = leftovers.find(core, FakeBatch(), "ns", "byok8s-run")
    assert found.ended == {"p2", "p3"}
    leftovers.remove(core, FakeBatch(), "ns", found)
    assert core.deleted == {"p1": leftovers.GRACE, "p2": 0, "p3": 0}


def test_a_run_ends_when_what_it_left_has_gone(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """A pod of a deleted Job (the garbage collector's, or one the Job controller
    started as its Job went) is deleted and waited for: the run leaves nothing."""
    from byok8s.backends import kubernetes as backend

    cfg = SimpleNamespace(backend={"k8s_namespace": "ns"})
    core = StoppingCore([pod("p1", "n1")], lists=2)
    monkeypatch.setattr(backend, "_apis", lambda: (core, FakeBatch()))
    monkeypatch.setattr(leftovers.time, "sleep", lambda _: None)
    backend.KubernetesBackend().finish(cfg, "run-1")
    assert core.deleted == {"p1": leftovers.GRACE} and core.pods == []
    assert core.listed == 4 and not caplog.records  # found, then gone on the third look
    # A run that was stopped (Ctrl-C, SIGTERM) deletes and ends.
    core = StoppingCore([pod("p1", "n1")], lists=2)
    monkeypatch.setattr(backend, "_apis", lambda: (core, FakeBatch()))
    backend.KubernetesBackend().finish(cfg, "run-1", wait=False)
    assert core.deleted == {"p1": leftovers.GRACE} and core.listed == 1
    # One that does not go in FINISH_WAIT is said, with how to remove it.
    core = StoppingCore([pod("p1", "n1")], lists=10**6)
    monkeypatch.setattr(backend, "_apis", lambda: (core, FakeBatch()))
    monkeypatch.setattr(leftovers, "FINISH_WAIT", 0)
    backend.KubernetesBackend().finish(cfg, "run-1")
    (said,) = [r.getMessage() for r in caplog.records]
    assert said == (
        "still going after 0 s: 1 pod (p1) in namespace ns; Kubernetes removes them when "
        "their pods have stopped (if not, delete what has the label byok8s.io/run=byok8s-run-1)"
    )


def test_the_journal_says_what_befell_the_node_and_which_try_was_kept_off_spot(
    tmp_path: Path,
) -> None:
    journal = Journal(str(tmp_path))
    job = SimpleNamespace(jobid=4, name="align", attempt=1, is_group=lambda: False)
    lost = status.Outcome(
        "failed", "was deleted ...: its node n2 stopped answering (a spot node)", "p1",
        infra=True, node_event=nodes.LOST, spot=True,
    )  # fmt: skip
    journal.finished(SimpleNamespace(job=job, external_jobid="snakejob-a"), lost,
                     pod("p1", "n2"), None)  # fmt: skip
    kept_off = pod("p2", "n1", {"byok8s.io/fallback": "on-demand"})
    done = status.Outcome("succeeded", pod="p2", started=True)
    journal.finished(SimpleNamespace(job=job, external_jobid="snakejob-a-r1"), done,
                     kept_off, "")  # fmt: skip
    first, last = [json.loads(line) for line in (tmp_path / "jobs.jsonl").read_text().splitlines()]
    assert (first["node"], first["node_event"], first["spot_node"], first["infra"]) == (
        "n2", "lost", True, True,
    )  # fmt: skip
    assert first["on_demand"] is None
    assert (last["node"], last["on_demand"], last["node_event"]) == ("n1", True, None)


class Nodes:
    """A CoreV1Api that lists the given nodes (or fails with `status`)."""

    def __init__(self, items: list, status: int | None = None) -> None:
        self.items, self.status, self.calls = items, status, 0

    def list_node(self, **_: Any) -> Any:
        self.calls += 1
        if self.status is not None:
            raise k8s.exceptions.ApiException(status=self.status)
        return SimpleNamespace(items=self.items)


def test_health_says_how_long_a_node_has_not_answered_and_reads_the_nodes_sparingly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(nodes.time, "monotonic", lambda: clock[0])
    api = Nodes([node("a"), node("b", ready="Unknown")])
    health = nodes.Health(api, every=5)
    assert health.lost_for("a") is None
    assert health.lost_for("b") == (0.0, "its node b stopped answering (NodeStatusUnknown: "
                                         "Kubelet stopped posting node status.)")  # fmt: skip
    clock[0] += 3
    assert health.lost_for("b")[0] == 3.0 and api.calls == 1  # type: ignore[index]
    clock[0] += 3  # a new reading: still lost, since the first time seen
    assert health.lost_for("b")[0] == 6.0 and api.calls == 2  # type: ignore[index]
    assert health.lost_for("gone") == (0.0, "its node gone was removed from the cluster")
    clock[0] += 5  # a new reading: still missing, lost since it was first missed
    assert health.lost_for("gone")[0] == 5.0 and api.calls == 3  # type: ignore[index]
    api.items = [node("a"), node("b")]  # back
    clock[0] += 5
    assert health.lost_for("b") is None


def test_health_knows_nothing_when_the_nodes_cannot_be_listed() -> None:
    api = Nodes([], status=403)
    health = nodes.Health(api, every=0)
    assert health.lost_for("a") is None and health.lost_for("b") is None
    assert api.calls == 1  # forbidden: not asked again


def test_the_readme_shows_the_newest_figures_of_bench_nodes() -> None:
    """The README's node costs are bench/nodes.py's newest results file, as written."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("bench_nodes", root / "bench/nodes.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(root / "bench"))
    readme = (root / "README.md").read_text()
    assert module.with_newest(readme) == readme, "run bench/nodes.py (it writes the README)"


@pytest.mark.parametrize(("raised", "signum", "waits"), [
    (KeyboardInterrupt, None, False), (RuntimeError, None, True),
    (RuntimeError, 15, False),  # Snakemake took the signal's KeyboardInterrupt and returned
])  # fmt: skip
def test_only_a_stopped_run_ends_without_waiting_for_what_it_left(
    monkeypatch: pytest.MonkeyPatch, raised: type[BaseException], signum: int | None, waits: bool
) -> None:
    """Ctrl-C and SIGTERM end at once; a failure waits as a success does."""
    from byok8s import app, backends, signals

    monkeypatch.setattr(signals, "received", lambda: signum)

    finished: list[bool] = []

    class Backend:
        def preflight(self, cfg: Any) -> None: ...

        def finish(self, cfg: Any, run_id: str, wait: bool = True) -> None:
            finished.append(wait)

    def run(*_: Any) -> None:
        raise raised

    monkeypatch.setattr(backends, "get", lambda *_, **__: Backend())
    monkeypatch.setattr(app, "_run", run)
    cfg = SimpleNamespace(unlock=False, storage=None, executor="kubernetes", verbose=False)
    with pytest.raises(raised):
        app.run(cfg)  # type: ignore[arg-type]
    assert finished == [waits]
