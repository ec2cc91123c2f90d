"""The executor of the Snakemake plugin `byok8s`: the stock Kubernetes executor,
for clusters without egress, with failures that say why, and with little overhead
per job.

It extends snakemake-executor-plugin-kubernetes (settings, Secret handling, job
deletion and API retries are inherited) and changes:
- no `pip install` in the pods: the job image already has byok8s, snakemake and
  the storage plugins (`auto_deploy_default_storage_provider` is off);
- the workflow sources travel in the run's Secret, mounted into each pod and
  unpacked by plain Python, instead of a second Snakemake start per pod that
  fetches them from storage (`can_transfer_local_files`; large sources still go
  through storage);
- completion is seen when it happens: one watch on the run's pods wakes the
  status loop, which reads that cache (and lists the run's Jobs only for a new
  one or every 10 s) instead of two API calls per job every 10 s (status.py,
  watch.py);
- jobs run in their own directory, where their sources are (jobcommand.py);
- a job the cluster failed (pod evicted, preempted, deleted; node lost) is
  submitted again, with back-off, without spending the user's --retries;
- a failed job's message names the pod and the reason (exit code, OOMKilled,
  eviction, an image that cannot start, a deleted Job or pod) with the last lines
  of the pod's own log (the stock read asks for a `previous` container, which a
  pod that ran once does not have, and fails with HTTP 400).
"""

import asyncio
import base64
import dataclasses
import json
import re
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import snakemake_executor_plugin_kubernetes as stock
from snakemake_interface_executor_plugins.executors.base import (
    AbstractExecutor,
    SubmittedJobInfo,
)
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from byok8s.declare import plugin_fields
from snakemake_executor_plugin_byok8s import (
    apis,
    capacity,
    compat,
    images,
    jobcommand,
    leftovers,
    nodes,
    options,
    podspec,
    runtime,
    settings,
    sources,
    status,
    usage,
)
from snakemake_executor_plugin_byok8s.follow import FOLLOW_MARK, Follower
from snakemake_executor_plugin_byok8s.journal import Journal
from snakemake_executor_plugin_byok8s.watch import PodWatcher, by_job

common_settings = dataclasses.replace(
    stock.common_settings,
    auto_deploy_default_storage_provider=False,
    can_transfer_local_files=True,
)
SECRET_LIMIT = 900_000  # bytes of sources kept in the Secret (Kubernetes allows 1 MiB)
MAX_SLEEP = 10.0  # seconds between status checks when nothing is heard from the watch
MIN_SLEEP = 0.2
JOB_LIST_AGE = 10.0  # seconds a list of the run's Jobs is used for
CANCEL_GRACE = 2  # seconds a cancelled job's pod has to stop
INFRA_BACKOFF = 2.0  # seconds before the first re-submission, doubled each time


def _internal(help_text: str) -> Any:
    return dataclasses.field(default=None, metadata={"help": help_text, "type": str})


# The declared options handed to the plugin (settings.OPTIONS), and what byok8s sets
# for each run.
ExecutorSettings = dataclasses.make_dataclass(
    "ExecutorSettings",
    [
        *plugin_fields(settings.OPTIONS, stock.ExecutorSettings),
        ("scheduling", str | None, _internal(
            'JSON {"run": {...}, "rules": {RULE: {...}}}: the pods\' scheduling for the run '
            "and per rule (options.SCHEDULING_KEYS).")),
        ("record_dir", str | None, _internal(
            "Directory for the run record: every job's pod log and a journal of its Job, "
            "pod, node and times (jobs.jsonl).")),
        ("run_id", str | None, _internal(
            "The byok8s run this is: names the run's Secret and labels its Jobs and pods, "
            "so that whatever the run leaves is found and removed.")),
    ],
    bases=(stock.ExecutorSettings,),
    namespace={"__module__": "snakemake_executor_plugin_byok8s"},
)  # fmt: skip


class Executor(stock.Executor):
    watcher: PodWatcher | None = None  # the status thread starts before __post_init__
    follower: Follower | None = None
    _cleanup: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        given = self._parse_options()  # before the Secret exists: a bad value leaves nothing
        self._sources = self._source_archive()
        self._storage_home = jobcommand.storage_home(self.workflow)
        super().__post_init__()  # kubeconfig, API clients, the run's Secret
        self._selector = f"{podspec.RUN_LABEL}={self.run_namespace}"
        self._jobs: dict[str, Any] = {}  # the last list of the run's Jobs, by name
        self._jobs_at = float("-inf")
        self._submitted: dict[str, float] = {}  # Job name -> when it was created
        self._stuck: set[str] = set()  # Jobs whose waiting reason was reported
        # Whether the run has a pod on a node now: a pod that finds no room then
        # waits its turn behind the run's own; when each was last seen so.
        self._holding = False
        self._queued: dict[str, float] = {}
        self._said_image: set[str] = set()  # rules whose two images were told apart
        self._too_big: set[str] = set()  # Jobs no node can hold today (an autoscaler may)
        self._infra_tries: dict[int, int] = {}  # jobid -> re-submissions so far
        self._on_demand: set[str] = set()  # Job names kept off spot nodes (a last try)
        # Job names due to be created again (None) or whose creation failed (why).
        self._scheduled: dict[str, str | None] = {}
        self._stopping = threading.Event()
        self._pod_settings = dataclasses.replace(
            given,
            image=self.container_image,
            secret=self.run_namespace,
            env_keys=dict(self.secret_envvars),
            sources_in_secret=self._sources is not None,
            cpu_scalar=self.k8s_cpu_scalar,
            privileged=bool(self.privileged),
            options=self.workflow.executor_settings,
        )
        self.journal = Journal(self.workflow.executor_settings.record_dir)
        self._capacity = capacity.Capacity(self.kubeapi)
        self._health = nodes.Health(self.kubeapi)
        self._check_spot()
        # Successful jobs: their logs are saved and their Jobs deleted off the status loop.
        self._cleanup = ThreadPoolExecutor(max_workers=4, thread_name_prefix="byok8s-cleanup")
        self.follower = None
        if self.workflow.executor_settings.follow:
            self.follower = Follower(self.kubeapi, self.namespace, self._show_line)
        self.watcher = PodWatcher(self.kubeapi, self.namespace, self._selector)
        self.watcher.start()

    def _show_line(self, text: str) -> None:
        self.logger.info(text, extra={FOLLOW_MARK: True})

    def _parse_options(self) -> podspec.PodSettings:
        """The pod options of the executor settings (image and Secret come later)."""
        from snakemake_interface_common.exceptions import WorkflowError

        given = self.workflow.executor_settings
        try:
            claims = [options.claim(c) for c in given.pvc]
            claims += [options.Claim(pv.name, str(pv.path)) for pv in given.persistent_volumes]
            scratch = [options.scratch(s) for s in given.scratch]
            options.unique_paths([c.path for c in claims] + [s.path for s in scratch])
            spot_labels = [options.spot_label(t) for t in given.spot_label]
            plans = json.loads(given.scheduling) if given.scheduling else {}
            run = options.scheduling(plans.get("run", {}), "scheduling of the run").over(
                options.scheduling(
                    {
                        "node_selector": list(given.node_selector),
                        "toleration": list(given.toleration),
                        "service_account": given.service_account_name,
                    },
                    "--node-selector/--toleration/--service-account",
                )
            )
            self._rule_plans = {
                rule: options.scheduling(plan, f"scheduling of rule {rule}")
                for rule, plan in plans.get("rules", {}).items()
            }
        except ValueError as exc:
            raise WorkflowError(str(exc)) from exc
        return podspec.PodSettings(
            image="",
            secret="",
            run_as_user=given.run_as_user,
            claims=claims,
            scratch=scratch,
            scheduling=run,
            spot_labels=(*options.SPOT_LABELS, *spot_labels),
            node_lost_after=given.node_lost_after,
        )

    # --- sources -------------------------------------------------------------

    def _source_archive(self) -> bytes | None:
        """The workflow sources as Snakemake packs them; None (and uploaded to the
        default storage, as the stock executor does) when too large for a Secret."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sources.tar.xz"
            left = sources.archive(self.workflow, path)
            data = path.read_bytes()
        if left:
            self.logger.warning(sources.not_sent(left))
        if len(data) <= SECRET_LIMIT:
            return data
        self.logger.info(f"workflow sources are {len(data)} bytes: staged through storage")
        compat.upload_sources(self.workflow)
        return None

    def register_secret(self) -> None:
        """The stock Secret (the environment variables, with its size check), plus
        the run label and, when small enough, the workflow sources."""
        apis.prepare_clients(self.kubeapi, self.batchapi)  # made just before, by the stock one
        run_id = self.workflow.executor_settings.run_id
        if run_id:  # the run's Secret and label are named after byok8s's run id
            self.run_namespace = leftovers.run_name(run_id)
        super().register_secret()
        patch: dict[str, Any] = {"metadata": {"labels": {podspec.RUN_LABEL: self.run_namespace}}}
        if self._sources is not None:
            patch["data"] = {podspec.SOURCES_KEY: base64.b64encode(self._sources).decode()}
        self.kubeapi.patch_namespaced_secret(self.run_namespace, self.namespace, patch)

    def get_job_exec_prefix(self, job: JobExecutorInterface) -> str:
        if self._sources is not None:
            return ""
        return f"python -m snakemake {compat.deploy_sources_args(self.workflow)}"

    # --- submission ----------------------------------------------------------

    def run_job(self, job: JobExecutorInterface) -> None:
        name = "snakejob-{}".format(
            stock.get_uuid(f"{self.run_namespace}-{job.jobid}-{job.attempt}")
        )
        info = SubmittedJobInfo(job=job, external_jobid=name)
        try:
            self._create(job, name)
        except capacity.NeverFits as exc:  # fails now, not after --pending-timeout
            self.journal.finished(info, status.Outcome("failed", str(exc)), None, None)
            self.report_job_error(info, msg=f"{exc}\n")
            return
        self.report_job_submission(info)

    def _create(self, job: JobExecutorInterface, name: str) -> None:
        from kubernetes.client.exceptions import ApiException
        from snakemake_interface_common.exceptions import WorkflowError

        try:
            own = options.from_resources(dict(job.resources), job.name)
            rule_plan = self._rule_plans.get(job.name, options.Scheduling())
            plan = own.over(rule_plan.over(self._pod_settings.scheduling))
            image = images.job_image(
                job, plan.image, self._pod_settings.image, self.logger, self._said_image
            )
            body = podspec.job_body(
                name=name,
                run=self.run_namespace,
                rule=job.name,
                jobid=job.jobid,
                command=jobcommand.through_jobrun(
                    jobcommand.without_workdir(self.format_job_exec(job), self.workflow),
                    self._storage_home,
                    python=runtime.COMMAND if image != self._pod_settings.image else None,
                    storage=compat.storage_in_use(self.workflow),
                ),
                resources=dict(job.resources),
                settings=self._pod_settings,
                scheduling=plan,
                image=image,
                on_demand=name in self._on_demand,
            )
            cores = int(job.resources.get("_cores", 1))
            if self._capacity.check(status.job_label(job), cores, body):
                self._too_big.add(name)  # waits for an autoscaler: its wait says more
            created = compat.kubernetes_retry(
                self, lambda: self.batchapi.create_namespaced_job(self.namespace, body)
            )
            # Known as the API server returned it: no list of the run's Jobs just to
            # learn that it exists (with many jobs, one list a job).
            if getattr(getattr(created, "metadata", None), "name", None) == name:
                self._jobs[name] = created
            self._submitted[name] = time.monotonic()
            self.journal.submitted(job, name)
        except capacity.NeverFits:
            raise
        except Exception as exc:  # the Job may exist: the run's end removes it (leftovers)
            detail = _api_detail(exc) if isinstance(exc, ApiException) else exc
            raise WorkflowError(
                f"could not create the Kubernetes Job for {status.job_label(job)}: {detail}"
            ) from exc

    def print_job_error(self, job_info: SubmittedJobInfo, msg: Any = None, **kwargs: Any) -> None:
        """The job's error as byok8s words it: the stock remote executor adds "see
        the cluster/cloud log and the log files", which byok8s's message already
        holds, and names a Job even when none was created."""
        if job_info.external_jobid in self._submitted:
            kwargs["external_jobid"] = job_info.external_jobid
        job = job_info.job
        if not job.is_group() or not msg:
            AbstractExecutor.print_job_error(self, job_info, msg=msg, **kwargs)
            return
        status.log_group_error(job, msg, **kwargs)

    # --- status --------------------------------------------------------------

    async def sleep(self) -> None:
        """Until the watch reports a change (or MAX_SLEEP passes), gently."""
        watcher = self.watcher
        healthy = watcher is not None and watcher.healthy
        deadline = time.monotonic() + (MAX_SLEEP if healthy else 1.0)
        await asyncio.sleep(MIN_SLEEP)
        while time.monotonic() < deadline and self.wait:
            if watcher is not None and watcher.changed.is_set():
                return
            await asyncio.sleep(0.05)

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        watcher = self.watcher
        if watcher is None or not active_jobs:
            for j in active_jobs:
                yield j
            return
        watcher.changed.clear()
        try:
            jobs = self._run_jobs(
                [j.external_jobid for j in active_jobs if j.external_jobid not in self._scheduled]
            )
            pods = watcher.pods_by_job() if watcher.healthy else self._run_pods()
            self._holding = any(status.holds_node(p) for ps in pods.values() for p in ps)
        except Exception as exc:  # noqa: BLE001 - never end the status loop: ask again
            self.logger.warning(f"could not read the run's jobs and pods: {exc}")
            jobs = None
        for j in active_jobs:
            if j.external_jobid in self._scheduled:  # to be submitted again
                error = self._scheduled[j.external_jobid]
                if error is None:
                    yield j
                else:
                    del self._scheduled[j.external_jobid]
                    self.report_job_error(j, msg=error)
                continue
            if jobs is None:
                yield j
                continue
            job_pods = pods.get(j.external_jobid, [])
            pod = status.newest(job_pods)
            result = status.outcome(jobs.get(j.external_jobid), pod)
            if self.follower is not None and pod is not None:
                self.follower.pod_started(pod, status.job_label(j.job))
            if result.state == "running":
                result = self._lost(result, pod)
            if result.state == "running":
                result = self._waited(j, result)
            if result.state == "running":
                yield j
                continue
            if result.state == "succeeded":
                self.report_job_success(j)
                assert self._cleanup is not None
                self._cleanup.submit(self._succeeded, j, result, pod)
                continue
            if result.infra:
                result = self._recheck(j, result, pod)
            again = self._infra_retry(j, result, job_pods, pod)
            if again is not None:
                yield again
                continue
            self.logger.debug(f"Job {j.external_jobid} failed: {result.reason}")
            self.report_job_error(j, msg=self._failure_message(j, result, pod))
            if not self.workflow.executor_settings.omit_job_cleanup:
                # A failed Job's pods go at once: a pod deleted from outside is not a
                # failure to the Job controller, which starts a new one that would
                # race a retry of the same job. With no grace when its job's container
                # ended: what may still run is the runtime's copy beside it.
                self._delete_job(j.external_jobid, job_pods, ended=status.ended(pod))

    def _lost(self, result: status.Outcome, pod: Any) -> status.Outcome:
        """A job whose pod's node has not answered for node_lost_after s: lost with
        it (the pod still looks as if it runs, and may until the node comes back)."""
        name = pod.spec.node_name if pod is not None and pod.spec else None
        gone = self._health.lost_for(name) if name else None
        if gone is None or gone[0] < self.workflow.executor_settings.node_lost_after:
            return result
        text = f"was lost: {gone[1]}, {gone[0]:.0f} s ago"
        return status.Outcome("failed", text, result.pod, infra=True, node_event=nodes.LOST)

    def _recheck(self, j: SubmittedJobInfo, result: status.Outcome, pod: Any) -> status.Outcome:
        """A pod gone before its job finished, read against the Job as it is now (the
        list may be 10 s old): its own deadline deletes it too, which is no reason to
        run it again. Then its node: lost or drained says why, and a spot node
        that it ran on the spot pool."""
        try:
            if not result.node_event:  # a lost node's pod: the Job says nothing new
                job = self.batchapi.read_namespaced_job(
                    j.external_jobid, self.namespace, _request_timeout=10
                )
                result = status.outcome(job, pod)
        except Exception:  # noqa: BLE001 - gone too, or no answer: keep what we know
            pass
        name = pod.spec.node_name if pod is not None and pod.spec else None
        if not result.infra or not name:
            return result
        node = self._read_node(name)
        if node is False:  # cannot be read: what the pod says is all there is
            return result
        # A lost node's pod has said why already.
        event, why = (result.node_event, "") if result.node_event else nodes.fate(node, name)
        spot = nodes.is_spot(node.metadata.labels if node else None, self._pod_settings.spot_labels)
        reason = f"{result.reason}: {why}" if why else result.reason
        if spot:
            reason += " (a spot node)"
        return dataclasses.replace(result, reason=reason, node_event=event, spot=spot)

    def _read_node(self, name: str) -> Any:
        """The V1Node, None when it is gone, False when it cannot be read."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.kubeapi.read_node(name, _request_timeout=10)
        except ApiException as exc:
            return None if exc.status == 404 else False
        except Exception:  # noqa: BLE001 - no answer: not known
            return False

    def _check_spot(self) -> None:
        """--spot on a cluster where no node has a spot label: said once, at start
        (the pods prefer spot nodes, so they run on the others meanwhile)."""
        given = self._pod_settings.scheduling
        if not (given.spot or any(p.spot for p in self._rule_plans.values())):
            return
        try:
            items = self.kubeapi.list_node(_request_timeout=30).items
        except Exception:  # noqa: BLE001 - a namespaced user may not list nodes
            return
        labels = self._pod_settings.spot_labels
        if not any(nodes.is_spot(n.metadata.labels, labels) for n in items):
            said = ", ".join(f"{k}={v}" for k, v in labels)
            self.logger.warning(
                f"--spot: none of the cluster's {len(items)} nodes has a spot label ({said}); "
                "the jobs run on the other nodes until a spot node comes (an autoscaler "
                "may add one). If your spot pool has another label, give it with "
                "--spot-label KEY=VALUE"
            )

    def _infra_retry(
        self, j: SubmittedJobInfo, result: status.Outcome, pods: Sequence[Any], pod: Any
    ) -> SubmittedJobInfo | None:
        """A job the cluster failed (its pod evicted, preempted, deleted, its node
        lost) goes again as a new Job, after a back-off, without spending the
        user's --retries; None when it is the job's own failure or tries are used up."""
        limit = self.workflow.executor_settings.infra_retries
        tries = self._infra_tries.get(j.job.jobid, 0)
        if not result.infra or tries >= limit:
            return None
        self._infra_tries[j.job.jobid] = tries + 1
        self.journal.finished(j, result, pod, None)
        # A pod on a lost node never hears its deletion: it is removed at once.
        self._delete_job(j.external_jobid, pods, ended=result.node_event == nodes.LOST)
        name = f"{re.sub(r'-r[0-9]+$', '', j.external_jobid)}-r{tries + 1}"
        delay = INFRA_BACKOFF * 2**tries
        where = ""
        if result.spot and tries + 1 == limit:  # the last try: where no spot is
            self._on_demand.add(name)
            where = " on an on-demand node (the last try: spot nodes left out)"
        self.logger.warning(
            f"{status.job_label(j.job)}: pod {result.pod} {result.reason}; submitting it again"
            f"{where} in {delay:.0f} s (infrastructure retry {tries + 1} of {limit}, not "
            "counted against --retries)"
        )
        self._scheduled[name] = None
        assert self._cleanup is not None
        self._cleanup.submit(self._resubmit, j.job, name, delay)
        return SubmittedJobInfo(job=j.job, external_jobid=name)

    def _resubmit(self, job: JobExecutorInterface, name: str, delay: float) -> None:
        if self._stopping.wait(delay):
            return  # cancelled meanwhile: nothing new is created
        try:
            self._create(job, name)
            self._scheduled.pop(name, None)
        except Exception as exc:  # noqa: BLE001 - reported as the job's failure
            self._scheduled[name] = str(exc)

    def _succeeded(self, j: SubmittedJobInfo, result: status.Outcome, pod: Any) -> None:
        """Save the log of a job that went well (for the run record), then delete its Job."""
        try:
            log = self._pod_log(result.pod) if result.pod and self.journal.active else None
            self.journal.finished(j, result, pod, log)
        except Exception as exc:  # noqa: BLE001 - a record is never worth a failed run
            self.logger.warning(f"could not record {status.job_label(j.job)}: {exc}")
        if not self.workflow.executor_settings.omit_job_cleanup:
            self._delete_job(j.external_jobid)

    def _waited(self, j: SubmittedJobInfo, result: status.Outcome) -> status.Outcome:
        """A job whose pod has not started: say why once, and fail it after
        pending_timeout (the scheduler keeps an impossible pod pending forever).
        A pod that finds no room while the run's own pods hold nodes waits its
        turn, as in a queue: nothing is said, and its wait counts from its turn
        (a run of many jobs on a small cluster does not fail)."""
        name = j.external_jobid
        now = time.monotonic()
        if not result.waiting:
            self._queued.pop(name, None)
            return result
        if result.unschedulable and self._holding:
            self._queued[name] = now
            return result
        waited = now - max(self._submitted.get(name, now), self._queued.get(name, float("-inf")))
        limit = self.workflow.executor_settings.pending_timeout
        hint = f"; {capacity.WAIT_HINT}" if name in self._too_big else ""
        if limit and waited >= limit:
            return status.Outcome(
                "failed",
                f"did not start in {limit} s (--pending-timeout): {result.waiting}{hint}",
                result.pod,
            )
        if result.stuck and name not in self._stuck:
            self._stuck.add(name)
            after = f"; it fails after {limit} s (--pending-timeout)" if limit else ""
            after += hint  # no node holds it today: what to change if none ever will
            self.logger.warning(
                f"{status.job_label(j.job)}, pod {result.pod}, is waiting: {result.waiting}{after}"
            )
        return result

    def _run_jobs(self, wanted: list[str]) -> dict[str, Any]:
        """The run's Jobs by name. Listed again only when one is not known yet or
        the last list is JOB_LIST_AGE old: pods say almost everything, and a list
        on every wake-up costs the API server and this process dearly with many
        jobs (the Jobs add deletions and deadline conditions). A Job is known from
        its creation on (as the API server returned it)."""
        now = time.monotonic()
        if now - self._jobs_at > JOB_LIST_AGE or any(n not in self._jobs for n in wanted):
            listing = self.batchapi.list_namespaced_job(
                self.namespace,
                label_selector=self._selector,
                _request_timeout=30,
            )
            self._jobs = {job.metadata.name: job for job in listing.items}
            self._jobs_at = now
        return self._jobs

    def _run_pods(self) -> dict[str, list[Any]]:
        listing = self.kubeapi.list_namespaced_pod(
            self.namespace, label_selector=self._selector, _request_timeout=30
        )
        return by_job(listing.items)

    def _delete_job(self, name: str, pods: Sequence[Any] = (), ended: bool = False) -> None:
        """Delete a Job in the background (the API server's garbage collector
        removes its pods), and the given pods of it now, with CANCEL_GRACE, or none
        when the job's container `ended` (a pod still running is gone at once)."""
        from kubernetes.client import V1DeleteOptions
        from kubernetes.client.exceptions import ApiException

        try:
            self.batchapi.delete_namespaced_job(
                name, self.namespace, body=V1DeleteOptions(propagation_policy="Background")
            )
        except ApiException as exc:
            if exc.status != 404:
                self.logger.warning(f"could not delete Kubernetes Job {name}: {exc.reason}")
        for pod in pods:
            try:
                self.kubeapi.delete_namespaced_pod(
                    pod.metadata.name,
                    self.namespace,
                    grace_period_seconds=0 if ended else CANCEL_GRACE,
                )
            except ApiException as exc:
                if exc.status != 404:
                    self.logger.warning(f"could not delete pod {pod.metadata.name}: {exc.reason}")

    def _failure_message(self, j: SubmittedJobInfo, result: status.Outcome, pod: Any) -> str:
        lines: list[str] = []
        log_file = None
        text = None
        if result.pod and result.started:
            text = self._pod_log(result.pod)
            log_file = self.log_path / f"{j.external_jobid}.log"
            log_file.write_text(usage.without(text))
            lines = status.log_tail(text)
        try:
            self.journal.finished(j, result, pod, text)
        except OSError as exc:
            self.logger.warning(f"could not record {status.job_label(j.job)}: {exc}")
        return status.failure_message(
            f"pod {result.pod or '(none)'}: {result.reason}",
            lines,
            str(log_file) if log_file else None,
            result.started,
        )

    def _pod_log(self, pod: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            text: Any = self.kubeapi.read_namespaced_pod_log(
                pod, self.namespace, container=podspec.CONTAINER
            )
        except ApiException as exc:
            return f"(the pod log could not be read: HTTP {exc.status} {exc.reason})"
        return str(text or "")

    # --- end -----------------------------------------------------------------

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        """Ctrl-C or SIGTERM: the Jobs go, and their pods get CANCEL_GRACE seconds
        instead of the default 30 (a job's shell, PID 1, ignores SIGTERM)."""
        self._stopping.set()
        pods = self.watcher.pods_by_job() if self.watcher is not None else {}
        for j in active_jobs:
            self._delete_job(j.external_jobid, pods.get(j.external_jobid, []))

    def shutdown(self) -> None:
        if hasattr(self, "_stopping"):
            self._stopping.set()
        if self._cleanup is not None:
            self._cleanup.shutdown(wait=True)
        if self.watcher is not None:
            self.watcher.stop()
        if self.follower is not None:
            self.follower.stop()
        super().shutdown()


def _api_detail(exc: Any) -> str:
    """An ApiException in one line: status, reason and the API server's message."""
    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return f"HTTP {exc.status} {exc.reason}" + (f": {message}" if message else "")
