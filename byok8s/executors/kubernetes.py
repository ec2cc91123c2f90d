"""Jobs run as pods on the user's Kubernetes cluster."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from byok8s.executors.base import Executor
from byok8s.kube import check_namespace, core_api

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
        }

    def describe(self, cfg: RunConfig) -> str:
        return f"Kubernetes namespace {cfg.namespace!r}, image {cfg.container_image}"
