"""Whether a job's pod could ever be scheduled: its requests against the largest
node its placement allows. A pod no node can hold waits forever (or for
--pending-timeout) unless a cluster autoscaler adds a bigger node; without one,
the job fails at submission with what to change."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

REFRESH = 60.0  # seconds a reading of the nodes is used for
# A cluster autoscaler (AKS, EKS, GKE and upstream) writes this ConfigMap; Karpenter
# labels the nodes it makes.
AUTOSCALER_STATUS = ("kube-system", "cluster-autoscaler-status")
AUTOSCALER_LABELS = ("karpenter.sh/nodepool", "karpenter.sh/provisioner-name")
BLOCKING = ("NoSchedule", "NoExecute")
FIX = (
    "cap threads with --cores N, lower the rule's threads or resources (mem_mb, "
    "disk_mb), or add a node pool with bigger nodes"
)
WAIT_HINT = f"if no node will ever be big enough: {FIX}"


class NeverFits(ValueError):
    """No node the job may run on is big enough, and none will be added."""


@dataclass(frozen=True)
class Node:
    name: str
    labels: Mapping[str, str]
    taints: Sequence[Any]  # V1Taint
    allocatable: Mapping[str, Decimal]


@dataclass
class Capacity:
    core: Any  # CoreV1Api
    _nodes: list[Node] | None = None
    _autoscaler: bool | None = None
    _at: float = field(default=float("-inf"))

    def check(self, label: str, threads: int, body: Any) -> bool:
        """Raise NeverFits for a Job whose pod no allowed node can hold, when no
        autoscaler is known to add one. True when no node can hold it today but an
        autoscaler may (its wait says what to change); False otherwise, also when
        the nodes cannot be read (the scheduler's own reason will say it)."""
        self._refresh()
        if self._nodes is None:
            return False
        reason = never_fits(self._nodes, body.spec.template.spec)
        if reason is None:
            return False
        if self._autoscaler is not False:
            return True
        resource, wanted, node, have = reason
        fix = FIX
        if resource == "cpu" and have >= 1:
            fix = fix.replace("--cores N", f"--cores {int(have)}")
        raise NeverFits(
            f"{label} asks for {describe(resource, wanted, threads)}, but the largest "
            f"node its placement allows ({node}) has {describe(resource, have, None)} "
            f"allocatable, and no cluster autoscaler was found to add a bigger one; {fix}"
        )

    def _refresh(self) -> None:
        from kubernetes.client.exceptions import ApiException

        if time.monotonic() - self._at < REFRESH:
            return
        self._at = time.monotonic()
        try:
            items = self.core.list_node(_request_timeout=30).items
        except ApiException as exc:  # a namespaced user may not list nodes
            log.debug("cannot list the nodes (HTTP %s): no capacity check", exc.status)
            self._nodes = None
            return
        self._nodes = [_node(n) for n in items]
        self._autoscaler = self._find_autoscaler()

    def _find_autoscaler(self) -> bool | None:
        from kubernetes.client.exceptions import ApiException

        if any(k in n.labels for n in self._nodes or () for k in AUTOSCALER_LABELS):
            return True
        namespace, name = AUTOSCALER_STATUS
        try:
            self.core.read_namespaced_config_map(name, namespace, _request_timeout=30)
            return True
        except ApiException as exc:
            return False if exc.status == 404 else None  # forbidden: it may be there


def never_fits(nodes: Sequence[Node], pod: Any) -> tuple[str, Decimal, str, Decimal] | None:
    """(resource, requested, largest allowed node, its allocatable) for the first
    resource no allowed node has enough of; None if one fits, or none is allowed."""
    container = pod.containers[0]
    requests = (container.resources.requests if container.resources else None) or {}
    wanted = {k: _quantity(v) for k, v in requests.items()}
    allowed = [n for n in nodes if allows(n, pod)]
    if not allowed or any(_holds(n, wanted) for n in allowed):
        return None
    for resource, amount in wanted.items():
        best = max(allowed, key=lambda n: n.allocatable.get(resource, Decimal(0)))
        have = best.allocatable.get(resource, Decimal(0))
        if have < amount:
            return resource, amount, best.name, have
    return None  # each fits somewhere, not all on one node: may change, keep waiting


def allows(node: Node, pod: Any) -> bool:
    """The node selector, taints and required node affinity let the pod on `node`."""
    selector = pod.node_selector or {}
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    tolerations = pod.tolerations or []
    for taint in node.taints:
        if taint.effect in BLOCKING and not any(_tolerates(t, taint) for t in tolerations):
            return False
    return _affinity_allows(node, pod.affinity)


def describe(resource: str, amount: Decimal, threads: int | None) -> str:
    if resource == "cpu":
        text = f"{_number(amount)} CPU{'s' * (amount != 1)}"
        return f"{text} (threads: {threads})" if threads is not None else text
    if resource in ("memory", "ephemeral-storage"):
        name = "memory" if resource == "memory" else "disk"
        return f"{_number(amount / 10**6)} MB {name}"
    return f"{_number(amount)} {resource}"


def _number(value: Decimal) -> str:
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _holds(node: Node, wanted: Mapping[str, Decimal]) -> bool:
    return all(node.allocatable.get(k, Decimal(0)) >= v for k, v in wanted.items())


def _tolerates(toleration: Any, taint: Any) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.operator == "Exists":
        return not toleration.key or toleration.key == taint.key
    return bool(toleration.key == taint.key and (toleration.value or "") == (taint.value or ""))


def _affinity_allows(node: Node, affinity: Any) -> bool:
    if not isinstance(affinity, Mapping):
        return True
    required = (affinity.get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(
        all(_matches(node, e) for e in term.get("matchExpressions") or [])
        for term in terms
        if term.get("matchExpressions")
    )


def _matches(node: Node, expression: Mapping[str, Any]) -> bool:
    key, op = expression.get("key"), expression.get("operator")
    values = [str(v) for v in expression.get("values") or []]
    value = node.labels.get(str(key))
    if op == "In":
        return value in values
    if op == "NotIn":
        return value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            return (int(value) > int(values[0])) if op == "Gt" else (int(value) < int(values[0]))
        except ValueError:
            return False
    return True  # an operator not known here: let the scheduler decide


def _node(item: Any) -> Node:
    allocatable = (item.status.allocatable if item.status else None) or {}
    return Node(
        name=item.metadata.name,
        labels=dict(item.metadata.labels or {}),
        taints=list((item.spec.taints if item.spec else None) or []),
        allocatable={k: _quantity(v) for k, v in allocatable.items()},
    )


def _quantity(text: Any) -> Decimal:
    return quantity(text) or Decimal(0)


def quantity(text: Any) -> Decimal | None:
    """A Kubernetes quantity ("950m", "2000M", "2Gi") as a number; None if it is none."""
    from kubernetes.utils import parse_quantity

    if text is None or text == "":
        return None
    try:
        return Decimal(parse_quantity(text))
    except (ValueError, TypeError):
        return None
