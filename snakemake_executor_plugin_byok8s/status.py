"""What a Kubernetes Job and its pod say about a Snakemake job: still running,
succeeded, or failed and why. Pure functions over the API objects, so each case
is testable without a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from snakemake_executor_plugin_byok8s import usage
from snakemake_executor_plugin_byok8s.podspec import CONTAINER, RUNTIME, RUNTIME_FAILED

OOM = "killed for running out of memory"  # how a job killed for its memory is said

LOG_TAIL_LINES = 20
DEADLINE = "DeadlineExceeded: Job was active longer than specified deadline"  # as Kubernetes says
# Waiting reasons that no amount of waiting fixes.
HOPELESS_WAITING = ("InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError")
# Pod failure reasons the node gives when it goes away or refuses the pod.
NODE_FAILURES = ("NodeLost", "Shutdown", "NodeShutdown", "Terminated", "UnexpectedAdmissionError")
# Waiting reasons that may clear (a registry back, a secret added) but usually do not.
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff")


@dataclass(frozen=True)
class Outcome:
    state: str  # running | succeeded | failed
    reason: str = ""  # one line, for a failure
    pod: str | None = None
    started: bool = False  # the container ran, so it has a log to read
    waiting: str = ""  # running, but not started yet: why (one line)
    stuck: bool = False  # waiting for something that will not come by itself
    unschedulable: bool = False  # waiting for a node with room (the scheduler found none)
    infra: bool = False  # failed by the cluster (evicted, preempted, deleted), not the job
    node_event: str = ""  # what befell its node, for an infra failure (nodes.LOST, DRAINED)
    spot: bool = False  # it ran on a spot node


RUNNING = Outcome("running")
DELETED = "was deleted (or evicted, or preempted) before its job finished"


def outcome(job: Any, pod: Any | None, now: datetime | None = None) -> Outcome:
    """Classify a V1Job (None: deleted) and its newest pod (None: not created yet)."""
    name = pod.metadata.name if pod is not None else None
    if job is None:
        return Outcome("failed", "its Kubernetes Job was deleted before it finished", name)
    failed = _condition(job, "Failed")
    if failed is not None and failed.reason == "DeadlineExceeded":
        # Before the pod: the Job controller kills and deletes it, which is not why.
        return Outcome("failed", _job_failure(failed), name)
    if (
        _past_deadline(job, now or datetime.now(UTC))
        and pod is not None
        and (pod.metadata.deletion_timestamp is not None)
    ):  # the same, seen before the Job's own status says so
        return Outcome("failed", f"Kubernetes Job failed ({DEADLINE})", name)
    container = container_status(pod)
    terminated = container.state.terminated if container and container.state else None
    copied = _runtime_copy(pod)
    if copied is not None and (terminated is None or copied.state == "failed"):
        return copied  # the job's container waits for it, or stopped because it failed
    if terminated is not None:
        ended = terminated.finished_at
        if terminated.exit_code == 0 and ended is not None and _past_deadline(job, ended):
            # A Job controller that missed the deadline (seen on Kubernetes 1.20 under
            # load) calls the Job DeadlineExceeded when the pod ends: so does byok8s.
            return Outcome("failed", f"Kubernetes Job failed ({DEADLINE})", name, started=True)
        if terminated.exit_code == 0:
            return Outcome("succeeded", pod=name, started=True)
        if _ended_by_deletion(pod, terminated):  # a drain's eviction, a preemption
            return Outcome("failed", DELETED, name, started=True, infra=True)
        return Outcome("failed", _exit_reason(terminated, pod), name, started=True)
    if pod is not None and pod.metadata.deletion_timestamp is not None:
        return Outcome("failed", DELETED, name, infra=True)
    pod_status = pod.status if pod is not None else None
    reason = pod_status.reason if pod_status is not None else None
    message = (pod_status.message if pod_status is not None else None) or ""
    if reason == "Evicted":
        text = f"was evicted: {message or 'no message'}"
        return Outcome("failed", text, name, infra=True)
    if reason in NODE_FAILURES:
        detail = f": {message}" if message else ""
        return Outcome("failed", f"failed with its node ({reason}{detail})", name, infra=True)
    waiting = container.state.waiting if container and container.state else None
    if waiting is not None and waiting.reason in HOPELESS_WAITING:
        detail = f": {waiting.message}" if waiting.message else ""
        return Outcome("failed", f"container cannot start ({waiting.reason}{detail})", name)
    if failed is not None:
        return Outcome("failed", _job_failure(failed), name)
    if _condition(job, "Complete") is not None:
        return Outcome("succeeded", pod=name, started=True)
    return _pending(pod, waiting)


def _pending(pod: Any | None, waiting: Any | None) -> Outcome:
    """A job still running: if its container has not started, why not."""
    if pod is None:
        return Outcome("running", waiting="its pod has not been created yet")
    name = pod.metadata.name
    scheduled = _pod_condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.status == "False":
        text = " ".join((scheduled.message or scheduled.reason or "no node fits").split())
        return Outcome("running", pod=name, waiting=f"unschedulable: {text}", stuck=True,
                       unschedulable=True)  # fmt: skip
    if waiting is not None and waiting.reason in PULL_FAILURES:
        image = _image(pod)
        detail = f": {waiting.message}" if waiting.message else ""
        return Outcome(
            "running",
            pod=name,
            waiting=f"image {image} cannot be pulled ({waiting.reason}{detail})",
            stuck=True,
        )
    if waiting is not None:
        return Outcome("running", pod=name, waiting=f"container not started ({waiting.reason})")
    if pod.status is None or pod.status.phase == "Pending":
        return Outcome("running", pod=name, waiting="pod pending")
    return Outcome("running", pod=name)


def job_label(job: Any) -> str:
    """`rule NAME (wildcards) [job N]`, as byok8s names jobs everywhere; a group job
    `group NAME (rule a [job 1], rule b [job 2])`."""
    if job.is_group():
        members = sorted(job.jobs, key=lambda j: int(j.jobid))
        return f"group {job.name} (" + ", ".join(job_label(j) for j in members) + ")"
    wildcards = dict(getattr(job, "wildcards_dict", None) or {})
    wc = ", ".join(f"{k}={v}" for k, v in wildcards.items())
    return f"rule {job.name}" + (f" ({wc})" if wc else "") + f" [job {job.jobid}]"


def log_group_error(job: Any, msg: str, place: str = "pod", **kwargs: Any) -> None:
    """A group job's failure, said by each member, the first in full: Snakemake's
    group error drops the executor's message (GroupJob.log_error)."""
    members = sorted(job.jobs, key=lambda j: int(j.jobid))
    first = job_label(members[0])
    for n, member in enumerate(members):
        said = msg if n == 0 else f"failed with {first}, in the same {place} (group {job.name})"
        member.log_error(said, **kwargs)


def newest(pods: list[Any]) -> Any | None:
    """The pod that says how a Job went: one deleted before it finished (the Job
    controller replaces it, but the job did not run through), else the newest."""
    if not pods:
        return None
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None and not ended(pod):
            return pod
    return max(pods, key=lambda p: (p.metadata.creation_timestamp or 0, p.metadata.name))


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a pod log that say what went wrong: when the job's own
    command failed, its output up to Snakemake's exception and the two lines
    naming the command and its exit status (the rest repeats what the user sees)."""
    kept = [line.rstrip() for line in usage.without(text).splitlines() if line.strip()]
    for i, line in enumerate(kept):
        if line.strip() == "RuleException:":
            return kept[max(i - lines + 2, 0) : i] + [s.strip() for s in kept[i + 1 : i + 3]]
    return kept[-lines:]


def failure_message(
    reason: str, log_lines: list[str], log_file: str | None, started: bool, log: str = "pod log"
) -> str:
    """What the user reads: why, then the last lines of the job's `log` (a pod's,
    or a local process's) and where the whole of it is."""
    pad = " " * 8  # Snakemake prints the message after "    message: "
    text = reason
    if log_lines:
        text += f"\n{pad}the {log} ends:\n" + "\n".join(f"{pad}| {line}" for line in log_lines)
    elif started:
        text += f"\n{pad}the {log} is empty"
    if log_file:
        text += f"\n{pad}full {log}: {log_file}"
    return text + "\n"


def container_status(pod: Any | None) -> Any | None:
    if pod is None or pod.status is None:
        return None
    for status in pod.status.container_statuses or ():
        if status.name == CONTAINER:
            return status
    return None


def holds_node(pod: Any) -> bool:
    """Whether a pod takes room on a node: bound to one, and neither done nor failed."""
    bound = pod.spec is not None and pod.spec.node_name
    phase = pod.status.phase if pod.status is not None else None
    return bool(bound) and phase not in ("Succeeded", "Failed")


def ended(pod: Any | None) -> bool:
    """Whether the job's container in a pod has ended."""
    container = container_status(pod)
    return bool(container and container.state and container.state.terminated)


def no_shell(message: str) -> bool:
    """Whether a container's start failed for want of /bin/sh (the runtime's words)."""
    return "/bin/sh" in message and "no such file" in message.lower()


def _runtime_copy(pod: Any | None) -> Outcome | None:
    """A failed or stuck container that brings the job runtime (podspec.py; an init
    container in the pods of an earlier byok8s)."""
    if pod is None or pod.status is None:
        return None
    statuses = [*(pod.status.init_container_statuses or ()), *(pod.status.container_statuses or ())]
    found = [s for s in statuses if s.name == RUNTIME]
    state = found[0].state if found else None
    if state is None:
        return None
    image = found[0].image
    name = pod.metadata.name
    deleted = pod.metadata.deletion_timestamp is not None  # stopped by it: not its fault
    if state.terminated is not None and state.terminated.exit_code != 0 and not deleted:
        said = state.terminated.message or state.terminated.reason or "no message"
        text = (f"its container {RUNTIME} could not copy the job runtime from image {image} "
                f"(exit code {state.terminated.exit_code}: {said})")  # fmt: skip
        return Outcome("failed", text, name)
    waiting = state.waiting
    if waiting is not None and waiting.reason in HOPELESS_WAITING:
        detail = f": {waiting.message}" if waiting.message else ""
        return Outcome("failed", f"container cannot start ({waiting.reason}{detail})", name)
    if waiting is not None and waiting.reason in PULL_FAILURES:
        detail = f": {waiting.message}" if waiting.message else ""
        text = f"image {image} cannot be pulled ({waiting.reason}{detail})"
        return Outcome("running", pod=name, waiting=text, stuck=True)
    return None


def _ended_by_deletion(pod: Any, terminated: Any) -> bool:
    """Whether a container that failed ended once its pod was being deleted (the
    deletion's SIGTERM), not before it; running out of memory is its own doing."""
    deleted = pod.metadata.deletion_timestamp if pod is not None else None
    if deleted is None or terminated.reason == "OOMKilled":
        return False
    grace = pod.metadata.deletion_grace_period_seconds or 0  # the deletion asked at deleted - grace
    ended = terminated.finished_at
    return ended is None or ended >= deleted - timedelta(seconds=grace)


def _exit_reason(terminated: Any, pod: Any) -> str:
    image = _image(pod)
    message = terminated.message or ""
    if no_shell(message):
        return (f"image {image} has no /bin/sh, which a job's image needs (a distroless "
                "image has none): add a shell to the image, or use another one")  # fmt: skip
    if terminated.reason == "StartError":
        return f"its container could not start in image {image} (StartError: {message})"
    if terminated.exit_code == RUNTIME_FAILED and _spec_init(pod):
        return (f"byok8s's job runtime does not run in image {image} (exit code "
                f"{RUNTIME_FAILED}; its error is in the pod log)")  # fmt: skip
    if terminated.reason == "OOMKilled":
        limit = memory_limit(pod)
        return OOM + " (OOMKilled" + (f", memory limit {limit})" if limit else ")")
    text = f"exited with code {terminated.exit_code}"
    if terminated.reason and terminated.reason != "Error":
        text += f" ({terminated.reason})"
    return text


def memory_limit(pod: Any) -> str | None:
    container = _spec_container(pod)
    if container is not None and container.resources and container.resources.limits:
        return container.resources.limits.get("memory")
    return None


def _past_deadline(job: Any, now: datetime) -> bool:
    deadline = job.spec.active_deadline_seconds if job.spec else None
    started = job.status.start_time if job.status else None
    return bool(deadline and started and (now - started).total_seconds() >= deadline)


def _job_failure(condition: Any) -> str:
    text = condition.reason or "Failed"
    if condition.message:
        text += f": {condition.message}"
    return f"Kubernetes Job failed ({text})"


def _image(pod: Any) -> str:
    container = _spec_container(pod)
    return str(container.image) if container is not None else "(unknown)"


def _spec_container(pod: Any) -> Any | None:
    """The job's container as the pod spec declares it."""
    for container in pod.spec.containers if pod.spec else ():
        if container.name == CONTAINER:
            return container
    return None


def _spec_init(pod: Any) -> bool:
    """Whether the pod brings the job runtime (its rule's own image)."""
    spec = pod.spec
    return spec is not None and any(
        c.name == RUNTIME for c in [*(spec.init_containers or ()), *(spec.containers or ())]
    )


def _pod_condition(pod: Any, kind: str) -> Any | None:
    for condition in (pod.status.conditions if pod.status else None) or ():
        if condition.type == kind:
            return condition
    return None


def _condition(job: Any, kind: str) -> Any | None:
    for condition in (job.status.conditions if job.status else None) or ():
        if condition.type == kind and condition.status == "True":
            return condition
    return None
