"""What a run created on the cluster (its Jobs, their pods and its Secret), found by
the run's label and removed: at the end of every run, whatever its shape (nothing
to do, failed before submitting, interrupted), and by `--unlock` for a run that
was killed outright."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from snakemake_executor_plugin_byok8s.nodes import not_ready
from snakemake_executor_plugin_byok8s.podspec import RUN_LABEL

GRACE = 2  # seconds a left-over pod has to stop
GONE_WAIT = 120  # seconds --unlock waits for what it deleted to be gone
FINISH_WAIT = 30  # seconds a run's end waits for the same
ENDED = ("Succeeded", "Failed")  # phases of a pod with nothing left to stop


def run_name(run_id: str) -> str:
    """The run's Secret name and the value of its RUN_LABEL, from byok8s's run id."""
    return "byok8s-" + re.sub(r"[^a-z0-9-]", "-", run_id.lower())[:48].strip("-")


@dataclass
class Found:
    jobs: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    stranded: set[str] = field(default_factory=set)  # pods on nodes that stopped answering
    ended: set[str] = field(default_factory=set)  # pods whose containers have all ended

    def __bool__(self) -> bool:
        return bool(self.jobs or self.pods or self.secrets)

    def describe(self) -> str:
        parts = [
            f"{len(names)} {kind}{'s' * (len(names) != 1)} ({', '.join(sorted(names))})"
            for kind, names in (("Job", self.jobs), ("pod", self.pods), ("Secret", self.secrets))
            if names
        ]
        return ", ".join(parts) or "nothing"


def find(core: Any, batch: Any, namespace: str, run: str) -> Found:
    from kubernetes.client.exceptions import ApiException

    selector = f"{RUN_LABEL}={run}"
    pods = core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=30).items
    found = Found(
        jobs=[j.metadata.name for j in batch.list_namespaced_job(
            namespace, label_selector=selector, _request_timeout=30).items],
        pods=[p.metadata.name for p in pods],
        secrets=[s.metadata.name for s in core.list_namespaced_secret(
            namespace, label_selector=selector, _request_timeout=30).items],
    )  # fmt: skip
    found.ended = {p.metadata.name for p in pods if p.status and p.status.phase in ENDED}
    if pods:
        lost = _lost_nodes(core)
        found.stranded = {p.metadata.name for p in pods if p.spec and p.spec.node_name in lost}
    if run not in found.secrets:  # created, but stopped before it was labelled
        try:
            core.read_namespaced_secret(run, namespace, _request_timeout=30)
            found.secrets.append(run)
        except ApiException as exc:
            if exc.status != 404:
                raise
    return found


def remove(core: Any, batch: Any, namespace: str, found: Found) -> None:
    """Delete what `find` found; what is already gone is no error."""
    from kubernetes.client import V1DeleteOptions
    from kubernetes.client.exceptions import ApiException

    # Pods first: the Job's garbage collection would give them their full grace. None
    # for a pod that has ended (nothing to stop) or is on a lost node (none ever will).
    now = found.stranded | found.ended
    deletions = [
        *(lambda n=n: core.delete_namespaced_pod(
            n, namespace, grace_period_seconds=0 if n in now else GRACE)
          for n in found.pods),
        *(lambda n=n: batch.delete_namespaced_job(
            n, namespace, body=V1DeleteOptions(propagation_policy="Background"))
          for n in found.jobs),
        *(lambda n=n: core.delete_namespaced_secret(n, namespace) for n in found.secrets),
    ]  # fmt: skip
    for delete in deletions:
        try:
            delete()
        except ApiException as exc:
            if exc.status != 404:
                raise


def _lost_nodes(core: Any) -> set[str]:
    """The nodes that stopped answering (none known when nodes cannot be listed)."""
    try:
        return not_ready(core.list_node(_request_timeout=30).items)
    except Exception:  # noqa: BLE001 - a namespaced user may not list nodes
        return set()


def wait_gone(core: Any, batch: Any, namespace: str, run: str, seconds: float = GONE_WAIT) -> Found:
    """Wait until nothing of the run is left (a running pod takes its grace and
    the kubelet's time to go); what is still there after `seconds`."""
    deadline = time.monotonic() + seconds
    while (found := find(core, batch, namespace, run)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found
