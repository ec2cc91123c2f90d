"""Snakemake executor plugin `byok8s`: the stock Kubernetes executor, for clusters
without egress and with failures that say why.

Differences from snakemake-executor-plugin-kubernetes (everything else is inherited):
- no `pip install` of storage plugins in each pod: the job image already has them
  (it is built from byok8s), so `auto_deploy_default_storage_provider` is off;
- job status: a failed job's message names the pod and the reason (exit code,
  OOMKilled, eviction, an image that cannot start, a deleted Job) and carries the
  last lines of the pod's own log, read from the terminated container (the stock
  read asks for the `previous` container, which a pod that ran once does not have).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

import snakemake_executor_plugin_kubernetes as stock
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from snakemake_executor_plugin_byok8s import status

common_settings = dataclasses.replace(
    stock.common_settings, auto_deploy_default_storage_provider=False
)


@dataclasses.dataclass
class ExecutorSettings(stock.ExecutorSettings):
    pass


class Executor(stock.Executor):
    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        for j in active_jobs:
            async with self.status_rate_limiter:
                result = self._outcome(j.external_jobid)
            if result.state == "running":
                yield j
                continue
            if result.state == "succeeded":
                self.report_job_success(j)
            else:
                self.logger.debug(f"Job {j.external_jobid} failed: {result.reason}")
                self.report_job_error(j, msg=self._failure_message(j, result))
            if not self.workflow.executor_settings.omit_job_cleanup:
                self._kubernetes_retry(lambda jobid=j.external_jobid: self.safe_delete_job(jobid))

    def _outcome(self, jobid: str) -> status.Outcome:
        from kubernetes.client.exceptions import ApiException

        try:
            job = self.batchapi.read_namespaced_job_status(jobid, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                self.logger.warning(f"could not read Kubernetes Job {jobid}: {exc.reason}")
                return status.RUNNING  # ask again at the next check
            job = None
        pods = self._kubernetes_retry(
            lambda: self.kubeapi.list_namespaced_pod(
                self.namespace, label_selector=f"job-name={jobid}"
            )
        )
        return status.outcome(job, status.newest(pods.items))

    def _failure_message(self, j: SubmittedJobInfo, result: status.Outcome) -> str:
        lines: list[str] = []
        log_file = None
        if result.pod and result.started:
            text = self._pod_log(result.pod)
            log_file = self.log_path / f"{j.external_jobid}.log"
            log_file.write_text(text)
            lines = status.log_tail(text)
        return status.failure_message(result, lines, str(log_file) if log_file else None)

    def _pod_log(self, pod: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            text: Any = self.kubeapi.read_namespaced_pod_log(
                pod, self.namespace, container=status.CONTAINER
            )
        except ApiException as exc:
            return f"(the pod log could not be read: HTTP {exc.status} {exc.reason})"
        return str(text or "")
