"""Jobs run as pods on the user's Kubernetes cluster."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from byok8s.errors import ClusterError
from byok8s.executors.base import Executor
from byok8s.kube import check_namespace, core_api, short

if TYPE_CHECKING:
    from byok8s.config import RunConfig

log = logging.getLogger(__name__)


class KubernetesExecutor(Executor):
    plugin = "byok8s"  # snakemake_executor_plugin_byok8s: the stock one, no pip in pods
    module = "snakemake_executor_plugin_byok8s"

    def preflight(self, cfg: RunConfig) -> None:
        api, config = core_api()
        check_namespace(api, config.host, cfg.namespace)
        if not config.verify_ssl:
            log.warning("TLS verification is off for %s (insecure-skip-tls-verify)", config.host)

    def settings(self, cfg: RunConfig) -> dict[str, Any]:
        return {
            "namespace": cfg.namespace,
            "service_account_name": cfg.service_account,
            "run_as_user": cfg.run_as_user,
            **cfg.pod_options(),
            "follow": cfg.follow,
            "record_dir": str(cfg.record_dir) if cfg.record_dir else None,
            "run_id": cfg.run_id,
        }

    def describe(self, cfg: RunConfig) -> str:
        return f"Kubernetes namespace {cfg.namespace!r}, image {cfg.container_image}"

    def where(self, cfg: RunConfig) -> dict[str, Any]:
        return {"executor": cfg.executor, "namespace": cfg.namespace}

    def finish(self, cfg: RunConfig, run_id: str) -> None:
        """The run's Secret stays when Snakemake had nothing to do (the executor
        is made, never shut down), and a Job whose creation failed after the API
        took it stays too: whatever carries the run's label goes."""
        from snakemake_executor_plugin_byok8s import leftovers

        try:
            core, batch = _apis()
            found = leftovers.find(core, batch, cfg.namespace, leftovers.run_name(run_id))
            if found:
                log.debug("removing what the run left: %s", found.describe())
                leftovers.remove(core, batch, cfg.namespace, found)
        except Exception as exc:  # noqa: BLE001 - the run's own outcome comes first
            log.warning(
                "could not remove the run's objects from namespace %s (%s); delete what "
                "has the label byok8s.io/run=%s", cfg.namespace, short(exc),
                leftovers.run_name(run_id),
            )  # fmt: skip

    def remove_dead_run(self, cfg: RunConfig, held: dict[str, Any]) -> None:
        from snakemake_executor_plugin_byok8s import leftovers

        run_id, namespace = held.get("run"), held.get("namespace") or cfg.namespace
        if not run_id or run_id == "?":
            return
        core, batch = _apis()
        try:
            found = leftovers.find(core, batch, namespace, leftovers.run_name(str(run_id)))
            if not found:
                print(f"run {run_id} left nothing in namespace {namespace}")
                return
            print(f"deleting what run {run_id} left in namespace {namespace}: "
                  f"{found.describe()}")  # fmt: skip
            leftovers.remove(core, batch, namespace, found)
            still = leftovers.wait_gone(core, batch, namespace, leftovers.run_name(str(run_id)))
            if still:
                print(f"still going after {leftovers.GONE_WAIT} s: {still.describe()}; "
                      "Kubernetes removes them when their pods have stopped")  # fmt: skip
        except Exception as exc:
            raise ClusterError(
                f"could not remove what run {run_id} left in namespace {namespace}: "
                f"{short(exc)}; check access to the cluster and run --unlock again"
            ) from exc


def _apis() -> tuple[Any, Any]:
    import kubernetes

    core, _ = core_api()
    return core, kubernetes.client.BatchV1Api(core.api_client)
