"""Snakemake executor plugin `byok8s-batch`: snakemake-executor-plugin-azure-batch
with the pool request fixed, spot nodes, and no package install in the tasks.

It is a module of byok8s, registered by byok8s.engine for azure-batch runs, not
a `snakemake_executor_plugin_*` package: Snakemake imports every such package
it finds, and this one needs the optional azure-batch plugin.

It extends the stock plugin (0.3.x; clients, tasks, status and clean-up are
inherited) and changes the pool it creates:
- autoscale: the stock plugin builds the autoscale formula and then overwrites
  it with a fixed scale of 0 nodes, so an autoscaled pool never gets a node;
  here the pool gets the formula, capped at `pool_node_count` nodes and sized by
  `tasks_per_node`;
- spot: low-priority (spot) nodes instead of dedicated ones, fixed or autoscaled;
- the tasks do not pip-install storage plugins: byok8s's job image has them;
- tasks run in their own directory, where their sources are;
- credentials are not written into the task's command line (only into its
  environment settings, which Batch has no secret references for);
- a failed task says why in one line (exit code, Batch's failure category, code
  and message) with the end of its stderr; the stock message is a multi-line
  dump, and fails itself when Batch sends no failure details;
- the Batch service's throttling answers (429, as well as 503) are retried after
  their Retry-After, as the management client already does;
- a rule's own image (its `container:`) is its tasks' container: the pool
  prefetches it, and its start task (in the job image) copies byok8s's job runtime
  to the node's shared directory, which those tasks mount at /byok8s/rt
  (snakemake_executor_plugin_byok8s/runtime.py), as a pod's runtime copy does.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
from typing import Any

import snakemake_executor_plugin_azure_batch as stock
from snakemake_executor_plugin_azure_batch import build

from byok8s.backends.azure_batch import OPTIONS
from byok8s.declare import plugin_fields

common_settings = dataclasses.replace(
    stock.common_settings,
    auto_deploy_default_storage_provider=False,
    # The task's environment settings carry the variables; the stock plugin also
    # writes them into its command line ("export KEY=secret && ..."), which every
    # reader of the Batch job sees and logs show.
    pass_envvar_declarations_to_cmd=False,
)
EVALUATION_MINUTES = 5  # Azure Batch evaluates an autoscale formula at most this often
BUSY_TRIES = 5  # tries of a request the service answers 429 or 503 (Retry-After)
BUSY_WAIT_MAX = 30.0  # seconds, at most, one such wait
NODE_RUNTIME = "/mnt/batch/tasks/shared/byok8s-rt"  # $AZ_BATCH_NODE_SHARED_DIR/byok8s-rt


def _byok8s_fields() -> list[tuple]:
    """--keep-sources, and the workflow config's rules' images (JSON, rule -> image)."""
    from byok8s.runoptions import by_name

    option = by_name()["keep_sources"]
    help_text = {"help": option.help, "required": False, "env_var": False}
    images = {"help": "rule images, as JSON (byok8s sets it)", "required": False,
              "env_var": False}  # fmt: skip
    return [
        ("keep_sources", bool, dataclasses.field(default=False, metadata=help_text)),
        ("rule_images", str | None, dataclasses.field(default=None, metadata=images)),
    ]


# The --az-batch-* options the stock plugin does not have (spot), --keep-sources and
# the rules' images.
ExecutorSettings = dataclasses.make_dataclass(
    "ExecutorSettings",
    [*plugin_fields(OPTIONS, stock.ExecutorSettings), *_byok8s_fields()],
    bases=(stock.ExecutorSettings,),
    namespace={"__module__": __name__},
)


def add_task(client: Any, job_id: str, task: Any, tries: int = BUSY_TRIES) -> None:
    """Add a task, again after Retry-After when the service answers 429 or 503 (msrest
    retries neither for a POST); a task found to exist after such an answer was
    added by the earlier try."""
    import time

    import azure.batch.models as bm

    for attempt in range(tries):
        try:
            client.task.add(job_id, task)
            return
        except bm.BatchErrorException as exc:
            status = getattr(exc.response, "status_code", None)
            if attempt and exc.error is not None and exc.error.code == "TaskExists":
                return
            if status not in (429, 503) or attempt == tries - 1:
                raise
            after = (exc.response.headers or {}).get("Retry-After", "")
            wait = float(after) if after.isdigit() else 2.0**attempt
            time.sleep(min(wait, BUSY_WAIT_MAX))  # the scheduler waits meanwhile


def task_failure(task_id: str, info: Any, stderr: str) -> str:
    """A failed task's reason (exit code, Batch's failure information) and the end
    of its stderr."""
    from snakemake_executor_plugin_byok8s.status import failure_message, log_tail

    reason = f"Azure Batch task {task_id} failed"
    if info is not None and info.exit_code is not None:
        reason += f" with exit code {info.exit_code}"
    failure = getattr(info, "failure_info", None)
    if failure is not None:
        said = [str(getattr(failure.category, "value", failure.category) or ""), failure.code or ""]
        reason += f" ({' '.join(w for w in said if w)}: {failure.message or 'no message'})"
    return failure_message(reason, log_tail(stderr), None, True, log="task's stderr")


def autoscale_formula(max_nodes: int, tasks_per_node: int, spot: bool) -> str:
    """Nodes for the pending tasks (tasks_per_node each), between 0 and max_nodes;
    nodes go when their tasks are done."""
    target = "$TargetLowPriorityNodes" if spot else "$TargetDedicatedNodes"
    return (
        "$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);"
        "$tasks = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : "
        "max($PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 5)));"
        f"$nodes = ceil($tasks / {tasks_per_node});"
        f"{target} = max(0, min($nodes, {max_nodes}));"
        "$NodeDeallocationOption = taskcompletion;"
    )


def scale_settings(settings: Any, max_nodes: int) -> Any:
    from azure.mgmt.batch.models import AutoScaleSettings, FixedScaleSettings, ScaleSettings

    if settings.autoscale:
        return ScaleSettings(
            auto_scale=AutoScaleSettings(
                formula=autoscale_formula(max_nodes, settings.tasks_per_node, settings.spot),
                evaluation_interval=datetime.timedelta(minutes=EVALUATION_MINUTES),
            )
        )
    if settings.spot:
        return ScaleSettings(
            fixed_scale=FixedScaleSettings(
                target_dedicated_nodes=0, target_low_priority_nodes=max_nodes
            )
        )
    return ScaleSettings(fixed_scale=FixedScaleSettings(target_dedicated_nodes=max_nodes))


class Executor(stock.Executor):
    def init_batch_client(self) -> None:
        super().init_batch_client()
        # msrest retries 503 (after its Retry-After) but takes every other status
        # below 500 as final, 429 Too Many Requests included.
        retry = self.batch_client.config.retry_policy.policy
        retry.status_forcelist = sorted({*retry.status_forcelist, 429})

    def envvars(self) -> dict:
        """The task's environment; with --az-batch-identity-client-id, AZURE_CLIENT_ID
        too, so that Azure clients in the task (storage) use the pool's identity."""
        found = dict(super().envvars())
        if self.settings.managed_identity_client_id:
            found.setdefault("AZURE_CLIENT_ID", self.settings.managed_identity_client_id)
        return found

    def run_job(self, job: Any) -> None:
        """The stock submission, with a busy service's answer retried; a task that
        cannot be added is reported once (the stock one is also reported submitted)."""
        import shlex

        from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

        image = self._image(job)
        if image == self.container_image:
            command = f"/bin/bash -c {shlex.quote(self.format_job_exec(job))}"
            task = build.batch_task(job, image, self.envvars(), command)
        else:  # the rule's own image, with the runtime the pool's start task copied
            from snakemake_executor_plugin_byok8s import jobcommand, podspec, runtime

            run = jobcommand.through_python(self.format_job_exec(job), runtime.COMMAND)
            command = f"/bin/sh -c {shlex.quote(f'{podspec.runtime_check(image)} && {run}')}"
            task = build.batch_task(job, image, self.envvars(), command)
            task.container_settings.container_run_options = (
                f"--rm -v {NODE_RUNTIME}:{runtime.MOUNT}:ro"
            )
        info = SubmittedJobInfo(job, external_jobid=task.id)
        try:
            add_task(self.batch_client, self.job_id, task)
        except Exception as exc:
            self.report_job_error(info, msg=f"could not add the Azure Batch task {task.id}: {exc}")
            return
        self.report_job_submission(info)

    def _image(self, job: Any) -> str:
        """A job's container: its rule's workflow config `image`, else its `container:`
        (a group job's rules must agree), else the job image."""
        from snakemake_executor_plugin_byok8s.images import job_image

        members = job.jobs if job.is_group() else [job]
        given = {self._given_images[m.name] for m in members if m.name in self._given_images}
        if len(given) > 1:
            raise ValueError(f"group {job.name}: the workflow config gives its rules different "
                             f"images ({', '.join(sorted(given))}); a task has one")  # fmt: skip
        return job_image(job, given.pop() if given else None, self.container_image,
                         self.logger, self._told_image)  # fmt: skip

    @functools.cached_property
    def _told_image(self) -> set[str]:
        """The rules whose workflow config image and container: were told apart."""
        return set()

    @functools.cached_property
    def _given_images(self) -> dict[str, str]:
        """The workflow config's `rules.RULE.image` (byok8s checked them)."""
        return json.loads(self.settings.rule_images or "{}")

    def _rule_images(self) -> list[str]:
        """The images the workflow's rules run in besides the job image."""
        from snakemake_executor_plugin_byok8s import compat, options

        given = self._given_images
        found = {
            given.get(r) or options.image(i, f"rule {r}")
            for r, i in compat.workflow_images(self.workflow).items()
            if i or r in given
        }
        return sorted(found - {self.container_image})

    def _report_task_status(self, job: Any) -> bool:
        """True while the task runs; a failed one is reported with why, in one line."""
        import azure.batch.models as bm

        try:
            task = self.batch_client.task.get(job_id=self.job_id, task_id=job.external_jobid)
        except Exception as exc:  # noqa: BLE001 - looked at again on the next round
            self.logger.warning(f"could not read Azure Batch task {job.external_jobid}: {exc}")
            return True
        if task.state != bm.TaskState.completed:
            return True
        info = task.execution_info
        if info is not None and info.result == bm.TaskExecutionResult.success:
            self.report_job_success(job)
            return False
        # The stock read decodes with encoding None, fails, and shows nothing.
        stderr = self._get_task_output(self.job_id, job.external_jobid, "stderr", "utf-8") or ""
        self.report_job_error(job, msg=task_failure(task.id, info, stderr))
        return False

    def format_job_exec(self, job: Any) -> str:
        """The task runs where its sources are unpacked (see jobcommand.py)."""
        from snakemake_executor_plugin_byok8s.jobcommand import without_workdir

        return without_workdir(super().format_job_exec(job), self.workflow)

    def shutdown(self) -> None:
        super().shutdown()
        if self.settings.keep_sources:
            from snakemake_executor_plugin_byok8s import compat

            compat.forget_uploaded_sources(self.workflow)

    def create_batch_pool(self) -> None:
        from azure.core.exceptions import HttpResponseError
        from snakemake_interface_common.exceptions import WorkflowError

        max_nodes = self.settings.pool_node_count  # the stock builder sets it to 0 to autoscale
        params = build.batch_pool_params(
            pool_id=self.pool_id, settings=self.settings, container_image=self.container_image
        )
        self.settings.pool_node_count = max_nodes
        params.scale_settings = scale_settings(self.settings, max_nodes)
        own = self._rule_images()
        if own:
            vm = params.deployment_configuration.virtual_machine_configuration
            vm.container_configuration.container_image_names = [self.container_image, *own]
            if params.start_task is None:
                params.start_task = runtime_start_task(self.container_image)
            else:
                self.logger.warning(
                    f"rules run in their own images ({', '.join(own)}), which need byok8s's "
                    f"job runtime in {NODE_RUNTIME} on each node: the pool's start task is "
                    "--az-batch-node-start-task-url's, so it must copy it there (README)"
                )
        try:
            self.logger.info(f"Creating Batch Pool: {self.pool_id}")
            self.batch_mgmt_client.pool.create(
                resource_group_name=self.settings.resource_group_name,
                account_name=self.settings.batch_account_name,
                pool_name=self.pool_id,
                parameters=params,
            )
        except HttpResponseError as err:
            if err.error is None or err.error.code != "PoolExists":
                raise WorkflowError(
                    f"could not create the Batch pool {self.pool_id}: {err}"
                ) from err
            self.logger.info(f"Batch pool {self.pool_id} exists")


def runtime_start_task(job_image: str) -> Any:
    """The pool's start task: copy the job runtime out of the job image into the
    node's shared directory, which tasks in a rule's own image mount read-only."""
    from azure.mgmt.batch.models import (
        AutoUserScope,
        AutoUserSpecification,
        ElevationLevel,
        StartTask,
        TaskContainerSettings,
        UserIdentity,
    )

    from snakemake_executor_plugin_byok8s import runtime

    copy = (f"rm -rf {NODE_RUNTIME} && mkdir -p {NODE_RUNTIME} && cd {runtime.BUILT} && "
            f"cp -dR --preserve=mode,timestamps -- * {NODE_RUNTIME}/")  # fmt: skip
    return StartTask(
        command_line=f"/bin/sh -c '{copy}'",
        container_settings=TaskContainerSettings(
            image_name=job_image, container_run_options=f"--rm -v {NODE_RUNTIME}:{NODE_RUNTIME}"
        ),
        user_identity=UserIdentity(
            auto_user=AutoUserSpecification(
                elevation_level=ElevationLevel.ADMIN, scope=AutoUserScope.POOL
            )
        ),  # fmt: skip
        wait_for_success=True,
        max_task_retry_count=2,
    )
