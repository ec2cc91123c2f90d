"""Jobs run as pods on the user's Kubernetes cluster."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from byok8s.backends.base import Backend, Given, check_rules
from byok8s.errors import ClusterError
from byok8s.kube import check_namespace, core_api, short

if TYPE_CHECKING:
    from byok8s.config import RunConfig
    from byok8s.staging import Run

log = logging.getLogger(__name__)


class KubernetesBackend(Backend):
    plugin = "byok8s"  # snakemake_executor_plugin_byok8s: the stock one, no pip in pods
    module = "snakemake_executor_plugin_byok8s"
    needs_bucket = True
    applies_to = "pods (--executor kubernetes)"

    def check(self, given: Given) -> Mapping[str, Any]:
        from byok8s.backends import pods

        return pods.settings(given)

    def validate(self, given: Given) -> None:
        self.check(given)

    def preflight(self, cfg: RunConfig) -> None:
        super().preflight(cfg)
        api, config = core_api()
        check_namespace(api, config.host, namespace(cfg))
        if not config.verify_ssl:
            log.warning("TLS verification is off for %s (insecure-skip-tls-verify)", config.host)

    def check_workflow(self, cfg: RunConfig, images: Mapping[str, str | None]) -> None:
        check_rules(cfg, (cfg.backend.get("scheduling") or {}).get("rules", {}), images)

    def settings(self, cfg: RunConfig, run: Run | None = None) -> dict[str, Any]:
        return {
            **self.record(cfg),
            "record_dir": str(run.record_dir) if run and run.record_dir else None,
            "run_id": run.id if run else None,
        }

    def record(self, cfg: RunConfig) -> dict[str, Any]:
        """Its settings as the plugin takes them (and the run record keeps them)."""
        from snakemake_executor_plugin_byok8s.settings import OPTIONS

        given = cfg.backend
        scheduling = given["scheduling"]
        return {
            **{o.plugin: _plain(given[o.name]) for o in OPTIONS if o.plugin},
            "scheduling": json.dumps(dict(scheduling), sort_keys=True) if scheduling else None,
        }

    def cluster(self, cfg: RunConfig) -> str | None:
        from byok8s.kube import current_cluster

        return current_cluster()

    def describe(self, cfg: RunConfig) -> str:
        return f"Kubernetes namespace {namespace(cfg)!r}, image {cfg.container_image}"

    def where(self, cfg: RunConfig) -> dict[str, Any]:
        return {"executor": cfg.executor, "namespace": namespace(cfg)}

    def finish(self, cfg: RunConfig, run_id: str, wait: bool = True) -> None:
        """The run's Secret stays when Snakemake had nothing to do (the executor
        is made, never shut down), a Job whose creation failed after the API took
        it stays too, and the pods of deleted Jobs stay until the garbage collector
        comes (a pod the Job controller started while its Job was being deleted
        gets the pod's full grace then): whatever carries the run's label goes,
        and the run ends when it has gone (FINISH_WAIT at most), unless it was
        stopped (its cancelled pods take the kubelet 10 s to a minute to go)."""
        from snakemake_executor_plugin_byok8s import leftovers

        where, run = namespace(cfg), leftovers.run_name(run_id)
        try:
            core, batch = _apis()
            found = leftovers.find(core, batch, where, run)
            if not found:
                return
            log.debug("removing what the run left: %s", found.describe())
            leftovers.remove(core, batch, where, found)
            if not wait:
                return
            still = leftovers.wait_gone(core, batch, where, run, leftovers.FINISH_WAIT)
            if still:
                log.warning(
                    "still going after %d s: %s in namespace %s; Kubernetes removes them "
                    "when their pods have stopped (if not, delete what has the label "
                    "byok8s.io/run=%s)", leftovers.FINISH_WAIT, still.describe(), where, run,
                )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the run's own outcome comes first
            log.warning(
                "could not remove the run's objects from namespace %s (%s); delete what "
                "has the label byok8s.io/run=%s", where, short(exc), run,
            )  # fmt: skip

    def remove_dead_run(self, cfg: RunConfig, held: dict[str, Any]) -> None:
        from snakemake_executor_plugin_byok8s import leftovers

        run_id, where = held.get("run"), str(held.get("namespace") or namespace(cfg))
        if not run_id or run_id == "?":
            return
        core, batch = _apis()
        try:
            found = leftovers.find(core, batch, where, leftovers.run_name(str(run_id)))
            if not found:
                print(f"run {run_id} left nothing in namespace {where}")
                return
            print(f"deleting what run {run_id} left in namespace {where}: "
                  f"{found.describe()}")  # fmt: skip
            leftovers.remove(core, batch, where, found)
            still = leftovers.wait_gone(core, batch, where, leftovers.run_name(str(run_id)))
            if still:
                print(f"still going after {leftovers.GONE_WAIT} s: {still.describe()}; "
                      "Kubernetes removes them when their pods have stopped")  # fmt: skip
        except Exception as exc:
            raise ClusterError(
                f"could not remove what run {run_id} left in namespace {where}: "
                f"{short(exc)}; check access to the cluster and run --unlock again"
            ) from exc


def namespace(cfg: RunConfig) -> str:
    """The run's namespace; the option's default when the run is not a Kubernetes one
    (`--unlock` of a run that was)."""
    from snakemake_executor_plugin_byok8s.settings import BY_NAME

    given = cfg.backend if isinstance(cfg.backend, Mapping) else {}
    return str(given.get("k8s_namespace") or BY_NAME["k8s_namespace"].default)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _apis() -> tuple[Any, Any]:
    import kubernetes

    core, _ = core_api()
    return core, kubernetes.client.BatchV1Api(core.api_client)
