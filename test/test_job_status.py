"""How the byok8s executor reads a Kubernetes Job and its pod (no cluster needed:
the API objects are built as the API server returns them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as k8s

from snakemake_executor_plugin_byok8s import status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(*conditions: tuple[str, str, str]) -> k8s.V1Job:
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name="snakejob-1"),
        status=k8s.V1JobStatus(
            conditions=[
                k8s.V1JobCondition(type=t, status="True", reason=r, message=m)
                for t, r, m in conditions
            ]
        ),
    )


def pod(
    state: k8s.V1ContainerState | None = None,
    name: str = "snakejob-1-abcde",
    reason: str | None = None,
    message: str | None = None,
    memory_limit: str | None = None,
    created: datetime = T0,
) -> k8s.V1Pod:
    limits = {"memory": memory_limit} if memory_limit else None
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, creation_timestamp=created),
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(
                    name="snakemake", resources=k8s.V1ResourceRequirements(limits=limits)
                )
            ]
        ),
        status=k8s.V1PodStatus(
            reason=reason,
            message=message,
            container_statuses=None
            if state is None
            else [
                k8s.V1ContainerStatus(
                    name="snakemake",
                    state=state,
                    image="i",
                    image_id="",
                    ready=False,
                    restart_count=0,
                )
            ],
        ),
    )


def terminated(code: int, reason: str = "Error") -> k8s.V1ContainerState:
    return k8s.V1ContainerState(
        terminated=k8s.V1ContainerStateTerminated(exit_code=code, reason=reason)
    )


def waiting(reason: str, message: str | None = None) -> k8s.V1ContainerState:
    return k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason=reason, message=message))


def deleted(p: k8s.V1Pod) -> k8s.V1Pod:
    p.metadata.deletion_timestamp = T0
    return p


CASES = [
    ("pod not created yet", job(), None, "running", ""),
    ("container creating", job(), pod(waiting("ContainerCreating")), "running", ""),
    ("running", job(), pod(k8s.V1ContainerState(running={})), "running", ""),
    ("exit 0", job(), pod(terminated(0, "Completed")), "succeeded", ""),
    ("job complete, pod gone", job(("Complete", "", "")), None, "succeeded", ""),
    ("exit 1", job(), pod(terminated(1)), "failed", "exited with code 1"),
    (
        "exit 137 other reason",
        job(),
        pod(terminated(137, "ContainerCannotRun")),
        "failed",
        "exited with code 137 (ContainerCannotRun)",
    ),
    (
        "oom with limit",
        job(),
        pod(terminated(137, "OOMKilled"), memory_limit="100M"),
        "failed",
        "killed for running out of memory (OOMKilled, memory limit 100M)",
    ),
    (
        "oom without limit",
        job(),
        pod(terminated(137, "OOMKilled")),
        "failed",
        "killed for running out of memory (OOMKilled)",
    ),
    (
        "evicted",
        job(),
        pod(reason="Evicted", message="The node was low on resource: memory."),
        "failed",
        "was evicted: The node was low on resource: memory.",
    ),
    (
        "node lost",
        job(),
        pod(reason="NodeLost", message="Node n1 which was running pod p is unresponsive"),
        "failed",
        "failed with its node (NodeLost: Node n1 which was running pod p is unresponsive)",
    ),
    (
        "image never pulled",
        job(),
        pod(waiting("ErrImageNeverPull", "image x not present")),
        "failed",
        "container cannot start (ErrImageNeverPull: image x not present)",
    ),
    (
        "bad image name",
        job(),
        pod(waiting("InvalidImageName")),
        "failed",
        "container cannot start (InvalidImageName)",
    ),
    (
        "deadline",
        job(("Failed", "DeadlineExceeded", "Job was active longer than specified")),
        pod(k8s.V1ContainerState(running={})),
        "failed",
        "Kubernetes Job failed (DeadlineExceeded: Job was active longer than specified)",
    ),
    (
        "deadline, its pod killed and deleted",
        job(("Failed", "DeadlineExceeded", "Job was active longer than specified")),
        deleted(pod(terminated(137))),
        "failed",
        "Kubernetes Job failed (DeadlineExceeded: Job was active longer than specified)",
    ),
    ("job deleted", None, None, "failed", "its Kubernetes Job was deleted before it finished"),
    (
        "pod deleted while running",
        job(),
        deleted(pod(k8s.V1ContainerState(running={}))),
        "failed",
        "was deleted (or evicted, or preempted) before its job finished",
    ),
    ("pod deleted after success", job(), deleted(pod(terminated(0, "Completed"))), "succeeded", ""),
    (  # a drain's eviction: SIGTERM, and the job's shell ends with it
        "pod deleted, its container stopped by it",
        job(),
        deleted(pod(terminated(143))),
        "failed",
        "was deleted (or evicted, or preempted) before its job finished",
    ),
    (  # out of memory is the job's, even if the pod is being deleted meanwhile
        "pod deleted after its container ran out of memory",
        job(),
        deleted(pod(terminated(137, "OOMKilled"))),
        "failed",
        "killed for running out of memory (OOMKilled)",
    ),
]


@pytest.mark.parametrize(
    "the_job, the_pod, state, reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_outcome(the_job: k8s.V1Job, the_pod: k8s.V1Pod, state: str, reason: str) -> None:
    result = status.outcome(the_job, the_pod)
    assert (result.state, result.reason) == (state, reason)
    # The cluster's failures, not the job's: submitted again without spending --retries.
    assert result.infra == (reason.startswith(("was ", "failed with its node")))
    if the_pod is not None:
        assert result.pod == the_pod.metadata.name


def test_a_container_that_failed_before_its_pod_was_deleted_failed_by_itself() -> None:
    failed = pod(terminated(1))
    failed.status.container_statuses[0].state.terminated.finished_at = T0
    failed.metadata.deletion_timestamp = T0 + timedelta(seconds=40)  # kubectl delete, later
    failed.metadata.deletion_grace_period_seconds = 30
    assert status.outcome(job(), failed) == status.Outcome(
        "failed", "exited with code 1", failed.metadata.name, started=True
    )
    failed.metadata.deletion_timestamp = T0 + timedelta(seconds=5)  # deleted, then it ended
    assert status.outcome(job(), failed).infra


def test_the_newest_pod_is_the_one_read() -> None:
    old = pod(terminated(1), name="old", created=T0)
    new = pod(terminated(0), name="new", created=T0 + timedelta(seconds=5))
    assert status.newest([new, old]).metadata.name == "new"
    assert status.newest([]) is None


def test_a_pod_deleted_before_it_finished_decides_even_if_replaced() -> None:
    """The Job controller replaces a deleted pod; the job still did not run through."""
    deleted = pod(k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()), name="gone")
    deleted.metadata.deletion_timestamp = T0 + timedelta(seconds=3)
    replacement = pod(None, name="replacement", created=T0 + timedelta(seconds=4))
    chosen = status.newest([replacement, deleted])
    assert chosen.metadata.name == "gone"
    assert status.outcome(job(), chosen) == status.Outcome(
        "failed",
        "was deleted (or evicted, or preempted) before its job finished",
        "gone",
        infra=True,
    )
    done = pod(terminated(0), name="done")  # deleted after it finished: not a failure
    done.metadata.deletion_timestamp = T0
    assert status.newest([done]).metadata.name == "done"
    assert status.outcome(job(), done).state == "succeeded"


POD_LOG = """Building DAG of jobs...
Select jobs to execute...
rule align:
    output: out.txt
line from the command 1
samtools: reference index ref.fa.fai is missing
RuleException:
CalledProcessError in file "/workdir/Snakefile", line 5:
Command 'set -euo pipefail; samtools ...' returned non-zero exit status 3.
[Sun Nov 22 21:13:52 2026]
Error in rule align:
    message: None
Shutting down, this might take some time.
"""


def test_the_log_tail_ends_at_the_failed_command() -> None:
    lines = status.log_tail(POD_LOG, lines=4)
    assert lines == [
        "line from the command 1",
        "samtools: reference index ref.fa.fai is missing",
        'CalledProcessError in file "/workdir/Snakefile", line 5:',
        "Command 'set -euo pipefail; samtools ...' returned non-zero exit status 3.",
    ]


def test_a_log_without_a_rule_exception_gives_its_last_lines() -> None:
    text = "\n".join(f"line {i}" for i in range(50)) + "\n\n"
    assert status.log_tail(text, lines=3) == ["line 47", "line 48", "line 49"]


def test_the_failure_message_names_pod_reason_log_lines_and_log_file() -> None:
    text = status.failure_message(
        "pod snakejob-1-abcde: exited with code 1", ["boom"], "/w/.snakemake/x.log", True
    )
    assert text.splitlines() == [
        "pod snakejob-1-abcde: exited with code 1",
        "        the pod log ends:",
        "        | boom",
        "        full pod log: /w/.snakemake/x.log",
    ]
    empty = status.failure_message("pod p: exited with code 1", [], None, True)
    assert "the pod log is empty" in empty
    never_ran = "pod p: container cannot start (InvalidImageName)"
    assert status.failure_message(never_ran, [], None, False) == never_ran + "\n"
    local = status.failure_message("exited with code 2", [], "/w/l.log", True, log="job's log")
    assert local.splitlines()[1:] == [
        "        the job's log is empty",
        "        full job's log: /w/l.log",
    ]


def pending_pod(
    scheduled: tuple[str, str, str] | None = None, waiting: tuple[str, str] | None = None
) -> k8s.V1Pod:
    """A pod that has not started: not scheduled (status, reason, message), or
    scheduled with its container waiting (reason, message)."""
    state = None
    if waiting is not None:
        state = k8s.V1ContainerState(
            waiting=k8s.V1ContainerStateWaiting(reason=waiting[0], message=waiting[1])
        )
    p = pod(state)
    p.spec.containers[0].image = "registry.invalid/nope:1"
    p.status.phase = "Pending"
    if scheduled is not None:
        s, r, m = scheduled
        p.status.conditions = [k8s.V1PodCondition(type="PodScheduled", status=s, reason=r,
                                                  message=m)]  # fmt: skip
    return p


@pytest.mark.parametrize(
    "the_pod, waiting, stuck",
    [
        (None, "its pod has not been created yet", False),
        (
            pending_pod(("False", "Unschedulable",
                         "0/1 nodes are available: 1 Insufficient cpu.  preemption: 0/1 nodes")),
            "unschedulable: 0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes",
            True,
        ),
        (
            pending_pod(("True", None, None), ("ImagePullBackOff",
                                               'Back-off pulling image "registry.invalid/nope:1"')),
            "image registry.invalid/nope:1 cannot be pulled (ImagePullBackOff: Back-off pulling "
            'image "registry.invalid/nope:1")',
            True,
        ),
        (pending_pod(("True", None, None), ("ErrImagePull", None)),
         "image registry.invalid/nope:1 cannot be pulled (ErrImagePull)", True),
        (pending_pod(("True", None, None), ("ContainerCreating", None)),
         "container not started (ContainerCreating)", False),
        (pending_pod(), "pod pending", False),
    ],
)  # fmt: skip
def test_a_job_that_has_not_started_says_why(the_pod, waiting: str, stuck: bool) -> None:
    result = status.outcome(job(), the_pod)
    assert (result.state, result.waiting, result.stuck) == ("running", waiting, stuck)
    assert result.unschedulable == waiting.startswith("unschedulable:")


def test_a_pod_holds_a_node_from_its_binding_until_it_ends() -> None:
    unbound = pending_pod(("False", "Unschedulable", "0/1 nodes are available"))
    bound = pending_pod(("True", None, None), ("ContainerCreating", None))
    bound.spec.node_name = "node-1"
    assert not status.holds_node(unbound) and status.holds_node(bound)
    for phase, holds in (("Running", True), ("Succeeded", False), ("Failed", False)):
        bound.status.phase = phase
        assert status.holds_node(bound) == holds, phase


def test_a_pod_waiting_for_room_behind_the_runs_own_pods_waits_its_turn() -> None:
    """1000 jobs at --jobs 50 on one 2-core node: pods wait for room far longer than
    --pending-timeout while the run's own pods hold the node, and must not fail
    (nor be reported, each one, as waiting). Its wait counts from its turn: when
    it was last seen queued so; a pod that has had no turn to wait, from its
    submission."""
    import time
    from types import SimpleNamespace

    from snakemake_executor_plugin_byok8s.executor import Executor

    executor = object.__new__(Executor)
    now = time.monotonic()
    executor._submitted, executor._queued = {"snakejob-1": now - 1000}, {}
    executor._stuck, executor._too_big = set(), set()
    executor.workflow = SimpleNamespace(executor_settings=SimpleNamespace(pending_timeout=900))
    said: list[str] = []
    executor.logger = SimpleNamespace(warning=said.append)
    the_job = SimpleNamespace(name="one", jobid=1, is_group=lambda: False, wildcards_dict={})
    j = SimpleNamespace(external_jobid="snakejob-1", job=the_job)
    queued = status.outcome(job(), pending_pod(("False", "Unschedulable", "1 Insufficient cpu.")))
    executor._holding = True
    assert executor._waited(j, queued) is queued and said == []
    assert executor._queued["snakejob-1"] >= now
    executor._holding, executor._queued["snakejob-1"] = False, now - 10  # the run's pods ended
    assert executor._waited(j, queued) is queued
    assert said == ["rule one [job 1], pod snakejob-1-abcde, is waiting: unschedulable: "
                    "1 Insufficient cpu.; it fails after 900 s (--pending-timeout)"]  # fmt: skip
    executor._queued["snakejob-1"] = now - 901
    failed = executor._waited(j, queued)
    assert (failed.state, failed.reason) == (
        "failed",
        "did not start in 900 s (--pending-timeout): unschedulable: 1 Insufficient cpu.",
    )
    # Its turn came 5 s ago: bound to the node, its container being created.
    executor._queued["snakejob-1"], executor._holding = now - 5, True
    creating = status.outcome(job(), pending_pod(("True", None, None), ("ContainerCreating", None)))
    assert executor._waited(j, creating) is creating
    started = status.outcome(
        job(), pod(k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()))
    )
    assert executor._waited(j, started) is started and "snakejob-1" not in executor._queued
    pulling = status.outcome(job(), pending_pod(("True", None, None), ("ErrImagePull", None)))
    assert executor._waited(j, pulling).state == "failed"  # never queued: from its submission
    executor._submitted["snakejob-1"] = now - 10
    assert executor._waited(j, pulling).state == "running"


def test_a_running_pod_is_not_waiting() -> None:
    running = pod(k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()))
    running.status.phase = "Running"
    assert status.outcome(job(), running) == status.Outcome("running", pod="snakejob-1-abcde")


def test_a_pod_that_ended_past_its_jobs_deadline_failed_by_the_deadline() -> None:
    """Kubernetes 1.20's Job controller, late under load, marks the Job
    DeadlineExceeded only when the pod ends: the pod's success does not count."""
    timed = job()
    timed.spec = k8s.V1JobSpec(active_deadline_seconds=4, template=k8s.V1PodTemplateSpec())
    timed.status.start_time = T0

    def ended(seconds: float) -> k8s.V1Pod:
        return pod(k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(
            exit_code=0, finished_at=T0 + timedelta(seconds=seconds))))  # fmt: skip

    late = status.outcome(timed, ended(64))
    assert (late.state, late.reason) == ("failed", f"Kubernetes Job failed ({status.DEADLINE})")
    assert status.outcome(timed, ended(3)).state == "succeeded"


def test_a_pod_deleted_past_its_jobs_deadline_is_the_deadline_not_the_cluster() -> None:
    """The Job controller deletes the pod before it writes DeadlineExceeded."""
    running = deleted(pod(k8s.V1ContainerState(running=k8s.V1ContainerStateRunning())))
    timed = job()
    timed.spec = k8s.V1JobSpec(active_deadline_seconds=4, template=k8s.V1PodTemplateSpec())
    timed.status.start_time = T0
    late = status.outcome(timed, running, now=T0 + timedelta(seconds=5))
    assert (late.reason, late.infra) == (f"Kubernetes Job failed ({status.DEADLINE})", False)
    early = status.outcome(timed, running, now=T0 + timedelta(seconds=2))
    assert early.infra  # deleted before its deadline: the cluster's doing


def test_a_job_known_from_its_creation_is_not_listed_again() -> None:
    """With many jobs, each creation made the next status check list every Job of
    the run: a created Job is known as the API server returned it."""
    from snakemake_executor_plugin_byok8s.executor import JOB_LIST_AGE, Executor

    class Batch:
        lists = 0

        def list_namespaced_job(self, namespace: str, **_: object) -> object:
            Batch.lists += 1
            return k8s.V1JobList(items=[k8s.V1Job(metadata=k8s.V1ObjectMeta(name="old"))])

    executor = object.__new__(Executor)
    executor.batchapi, executor.namespace, executor._selector = Batch(), "ns", "x=y"
    executor._jobs, executor._jobs_at = {}, float("-inf")
    assert set(executor._run_jobs(["old"])) == {"old"} and Batch.lists == 1
    executor._jobs["new"] = k8s.V1Job(metadata=k8s.V1ObjectMeta(name="new"))  # as _create does
    assert set(executor._run_jobs(["old", "new"])) == {"old", "new"} and Batch.lists == 1
    assert "gone" not in executor._run_jobs(["gone"]) and Batch.lists == 2  # unknown: listed
    executor._jobs_at -= JOB_LIST_AGE + 1
    executor._run_jobs(["old"])
    assert Batch.lists == 3  # and every JOB_LIST_AGE s


def test_a_created_job_is_kept_as_the_api_server_returned_it(monkeypatch) -> None:
    """_create keeps the Job the API server returned, so the next status check
    knows it without listing the run's Jobs (the test above relies on it)."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_byok8s import executor as module
    from snakemake_executor_plugin_byok8s.executor import Executor

    returned = k8s.V1Job(metadata=k8s.V1ObjectMeta(name="snakejob-1"))

    class Batch:
        def create_namespaced_job(self, namespace: str, body: object) -> k8s.V1Job:
            return returned

    monkeypatch.setattr(module.images, "job_image", lambda *_: "image")
    monkeypatch.setattr(module.podspec, "job_body", lambda **_: {})
    monkeypatch.setattr(module.jobcommand, "through_jobrun", lambda *_, **__: "true")
    monkeypatch.setattr(module.jobcommand, "without_workdir", lambda *_: "true")
    executor = object.__new__(Executor)
    executor.batchapi, executor.namespace, executor.run_namespace = Batch(), "ns", "run"
    executor._jobs, executor._submitted, executor._rule_plans = {}, {}, {}
    executor._pod_settings = SimpleNamespace(image="image", scheduling=module.options.Scheduling())
    executor._capacity = SimpleNamespace(check=lambda *_: False)
    executor._storage_home, executor._on_demand, executor._too_big = None, set(), set()
    executor.format_job_exec = lambda job: "true"
    executor._kubernetes_retry = lambda call: call()
    executor.journal = SimpleNamespace(submitted=lambda *_: None)
    executor.workflow = SimpleNamespace(storage_registry=SimpleNamespace(_storages={}))
    executor.logger, executor._said_image = None, set()
    job = SimpleNamespace(name="a", jobid=1, resources={"_cores": 1}, is_group=lambda: False)
    executor._create(job, "snakejob-1")
    assert executor._jobs == {"snakejob-1": returned} and "snakejob-1" in executor._submitted
