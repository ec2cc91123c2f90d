"""Whether the cluster can get an image (for `byok8s doctor`): already on a node, or
pulled by a short probe Job with the pods' pull secrets, whose pod says what the
kubelet said. The probe is removed whatever happens."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from byok8s.kube import TIMEOUT

WAIT = 120  # seconds a probe may take to pull (a big image on a slow registry: warn)
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


@dataclass(frozen=True)
class Found:
    got: bool | None  # True: pullable or there; False: cannot be pulled; None: unknown
    detail: str


def on_nodes(core: Any, image: str) -> list[str] | None:
    """The nodes that hold `image` (None: nodes may not be read)."""
    try:
        nodes = core.list_node(_request_timeout=TIMEOUT).items
    except Exception:  # noqa: BLE001 - reading nodes is often not allowed
        return None
    want = full_reference(image)
    return [n.metadata.name for n in nodes if any(
        want in map(full_reference, i.names or []) for i in (n.status.images or []))]  # fmt: skip


def full_reference(image: str) -> str:
    """docker.io/library/NAME:TAG for NAME:TAG, as container runtimes report it."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def probe(core: Any, namespace: str, image: str, secrets: Sequence[str] = (),
          wait: float = WAIT) -> Found:  # fmt: skip
    """Pull `image` with a one-pod Job (the command is never needed: a pod that
    starts, or fails to start, had its image)."""
    import kubernetes

    batch = kubernetes.client.BatchV1Api(core.api_client)
    name = f"byok8s-doctor-{uuid.uuid4().hex[:8]}"
    body = _job(name, image, secrets)
    try:
        batch.create_namespaced_job(namespace, body, _request_timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - said in the row
        return Found(None, f"could not start a probe Job ({_short(exc)})")
    try:
        return _watch(core, namespace, name, image, wait)
    finally:
        with contextlib.suppress(Exception):  # its label names it for a later cleanup
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background",
                                        _request_timeout=TIMEOUT)  # fmt: skip


def _job(name: str, image: str, secrets: Sequence[str]) -> Any:
    from kubernetes import client as k8s

    from snakemake_executor_plugin_byok8s.settings import BY_NAME

    user = BY_NAME["run_as_user"].default  # as a job's pod runs
    labels = {"app": "byok8s-doctor", "byok8s.io/run": name}
    pod = k8s.V1PodSpec(
        restart_policy="Never",
        termination_grace_period_seconds=0,
        containers=[k8s.V1Container(name="probe", image=image, command=["/bin/sh", "-c", "true"],
                                    resources=k8s.V1ResourceRequirements(
                                        requests={"cpu": "10m", "memory": "16Mi"}))],
        image_pull_secrets=[k8s.V1LocalObjectReference(name=s) for s in secrets] or None,
        security_context=k8s.V1PodSecurityContext(run_as_user=user, run_as_non_root=True),
    )  # fmt: skip
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=WAIT + 60,
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod),
        ),
    )


def _watch(core: Any, namespace: str, name: str, image: str, wait: float) -> Found:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, label_selector=f"byok8s.io/run={name}",
                                        _request_timeout=TIMEOUT).items  # fmt: skip
        for pod in pods:
            found = _said(pod)
            if found is not None:
                return found
        time.sleep(0.5)
    return Found(None, f"still pulling after {wait:.0f} s")


def _said(pod: Any) -> Found | None:
    from snakemake_executor_plugin_byok8s import status

    statuses = (pod.status.container_statuses or []) if pod.status else []
    for container in statuses:
        state = container.state
        if state.waiting is not None and state.waiting.reason in PULL_FAILURES:
            message = " ".join((state.waiting.message or "").split())
            return Found(False, f"cannot be pulled ({state.waiting.reason}"
                                + (f": {message})" if message else ")"))  # fmt: skip
        if state.running is not None or state.terminated is not None:
            said = (state.terminated.message or "") if state.terminated else ""
            if status.no_shell(said):
                return Found(False, "pulled, but it has no /bin/sh, which a job's image needs")
            return Found(True, "pulled by a probe pod")
    return None


def _short(exc: BaseException) -> str:
    from byok8s.kube import short

    return short(exc)
