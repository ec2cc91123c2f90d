"""What a job's node says about its pod: whether the node was lost (stopped
answering, or removed) or drained (cordoned), and whether it is a spot node; and
which nodes have not answered for how long (Health)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LOST = "lost"
DRAINED = "drained"


def fate(node: Any | None, name: str) -> tuple[str, str]:
    """("lost" | "drained" | "", the words for it) of node `name` (None: removed)."""
    if node is None:
        return LOST, f"its node {name} was removed from the cluster"
    ready = next(
        (c for c in (node.status.conditions if node.status else None) or () if c.type == "Ready"),
        None,
    )
    if ready is not None and ready.status != "True":
        said = " ".join(f"{ready.reason or 'NotReady'}: {ready.message or ''}".split())
        return LOST, f"its node {name} stopped answering ({said.rstrip(':')})"
    if node.spec is not None and node.spec.unschedulable:
        return DRAINED, f"its node {name} is being drained (cordoned)"
    return "", ""


def not_ready(nodes: Iterable[Any]) -> set[str]:
    """The names of the nodes that are not Ready (a pod there cannot be stopped)."""
    return {n.metadata.name for n in nodes if fate(n, n.metadata.name)[0] == LOST}


def is_spot(labels: Mapping[str, str] | None, spot_labels: Iterable[tuple[str, str]]) -> bool:
    return any((labels or {}).get(key) == value for key, value in spot_labels)


@dataclass
class Health:
    """Which nodes stopped answering, and since when (as this process first saw it),
    from a list of the nodes at most every `every` seconds. A pod on such a node
    looks as if it still runs; the cluster evicts it only when its taint manager
    does (after the pods' toleration), which byok8s does not wait on."""

    core: Any  # CoreV1Api
    every: float = 5.0
    _since: dict[str, tuple[float, str]] = field(default_factory=dict)  # name -> (when, why)
    _known: set[str] = field(default_factory=set)
    _at: float = float("-inf")
    _readable: bool = True

    def lost_for(self, name: str) -> tuple[float, str] | None:
        """How long node `name` has not answered, and why; None while it answers
        (or when the nodes cannot be read)."""
        self._refresh()
        found = self._since.get(name)
        if found is None and self._readable and self._known and name not in self._known:
            found = self._since[name] = (time.monotonic(), f"its node {name} was removed "
                                                            "from the cluster")  # fmt: skip
        return (time.monotonic() - found[0], found[1]) if found else None

    def _refresh(self) -> None:
        if not self._readable or time.monotonic() - self._at < self.every:
            return
        self._at = time.monotonic()
        try:
            items = self.core.list_node(_request_timeout=10).items
        except Exception as exc:  # noqa: BLE001 - a namespaced user may not list nodes
            status = getattr(exc, "status", None)
            self._readable = status not in (401, 403)  # forbidden: never asked again
            return
        now = time.monotonic()
        self._known = {n.metadata.name for n in items}
        fates = {n.metadata.name: fate(n, n.metadata.name) for n in items}
        self._since = {  # a removed node stays lost since it was first missed
            name: self._since.get(name, (now, why))
            for name, (event, why) in fates.items()
            if event == LOST
        } | {name: seen for name, seen in self._since.items() if name not in self._known}
