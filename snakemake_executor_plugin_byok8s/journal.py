"""The executor's part of a run record: one JSON line per job submitted and per
job ended (Job, pod, node, container start and end, outcome), and every ended
job's pod log, in the directory byok8s gives as `record_dir`."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_byok8s import usage
from snakemake_executor_plugin_byok8s.capacity import quantity
from snakemake_executor_plugin_byok8s.podspec import CONTAINER, FALLBACK_LABEL, label_value
from snakemake_executor_plugin_byok8s.status import OOM, container_status, memory_limit

JOURNAL = "jobs.jsonl"
LOGS = "logs"


def log_name(jobid: int | str, rule: str, attempt: int) -> str:
    return f"{jobid}-{label_value(rule)}-{attempt}.log"


class Journal:
    def __init__(self, record_dir: str | None) -> None:
        self.root = Path(record_dir) if record_dir else None
        self._lock = threading.Lock()
        if self.root is not None:
            (self.root / LOGS).mkdir(parents=True, exist_ok=True)

    @property
    def active(self) -> bool:
        return self.root is not None

    def submitted(self, job: Any, k8s_job: str) -> None:
        self._write(
            {
                "event": "submitted",
                **_job_keys(job),
                "k8s_job": k8s_job,
                "submitted": _now(),
            }
        )

    def finished(self, j: Any, result: Any, pod: Any, log: str | None) -> None:
        """`j` a SubmittedJobInfo, `result` its status.Outcome, `pod` the newest pod."""
        if self.root is None:
            return
        keys = _job_keys(j.job)
        entry: dict[str, Any] = {
            "event": "ended",
            **keys,
            "k8s_job": j.external_jobid,
            "state": result.state,
            "reason": result.reason or None,
            "infra": result.infra,  # the cluster's doing (evicted, node lost), run again
            "node_event": result.node_event or None,  # its node lost or drained
            "spot_node": result.spot or None,  # it ran on a spot node (known when it failed)
            "on_demand": _on_demand(pod),  # a spot job's last try, kept off spot nodes
            "pod": result.pod,
            "node": pod.spec.node_name if pod is not None and pod.spec else None,
            "scheduled": _scheduled(pod),
            **_container_times(pod),
            "requests": _requests(pod),
            "ended": _now(),
        }
        measured = usage.parse(log) if log is not None else None
        if result.reason and result.reason.startswith(OOM):  # the limit it hit, said plainly
            measured = {**(measured or {}), "oom": True,
                        "memory_limit_bytes": _limit_bytes(memory_limit(pod))}  # fmt: skip
        entry["usage"] = measured
        if log is not None:
            name = log_name(keys["jobid"], keys["rule"], keys["attempt"])
            (self.root / LOGS / name).write_text(usage.without(log))
            entry["log"] = f"{LOGS}/{name}"
        self._write(entry)

    def _write(self, entry: dict[str, Any]) -> None:
        if self.root is None:
            return
        line = json.dumps(entry, sort_keys=True)
        with self._lock, open(self.root / JOURNAL, "a") as f:
            f.write(line + "\n")


def _job_keys(job: Any) -> dict[str, Any]:
    """A job's id, rule and attempt; a group job (one pod for several jobs) has a
    uuid for an id, its group's name for a rule, and lists its members' ids."""
    if job.is_group():
        return {"jobid": str(job.jobid), "rule": str(job.name), "attempt": int(job.attempt),
                "members": sorted(int(j.jobid) for j in job.jobs)}  # fmt: skip
    return {"jobid": int(job.jobid), "rule": str(job.name), "attempt": int(job.attempt)}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _container_times(pod: Any) -> dict[str, str | None]:
    """When the job's container started and ended, as the kubelet saw it."""
    times: dict[str, str | None] = {"started": None, "finished": None}
    status = container_status(pod)
    if status is None or status.state is None:
        return times
    state = status.state.terminated or status.state.running
    if state is not None and state.started_at is not None:
        times["started"] = state.started_at.isoformat()
    if status.state.terminated is not None and status.state.terminated.finished_at:
        times["finished"] = status.state.terminated.finished_at.isoformat()
    return times


def _on_demand(pod: Any) -> bool | None:
    labels = (pod.metadata.labels if pod is not None and pod.metadata else None) or {}
    return True if labels.get(FALLBACK_LABEL) == "on-demand" else None


def _scheduled(pod: Any) -> str | None:
    """When the pod was given its node."""
    for condition in (pod.status.conditions if pod is not None and pod.status else None) or ():
        if condition.type == "PodScheduled" and condition.status == "True":
            when = condition.last_transition_time
            return when.isoformat() if when is not None else None
    return None


def _requests(pod: Any) -> dict[str, float | None] | None:
    """The job's container's CPU (cores) and memory (bytes) requests."""
    for container in pod.spec.containers if pod is not None and pod.spec else ():
        if container.name == CONTAINER and container.resources is not None:
            asked = container.resources.requests or {}
            cores = quantity(asked.get("cpu"))
            return {"cpu": float(cores) if cores is not None else None,
                    "memory_bytes": _limit_bytes(asked.get("memory"))}  # fmt: skip
    return None


def _limit_bytes(text: str | None) -> int | None:
    """A memory quantity as the pod spec has it ("2000M", "2Gi" ...), in bytes."""
    found = quantity(text)
    return int(found) if found is not None else None
