"""Jobs run as Azure Batch tasks, through byok8s's plugin `byok8s-batch`
(snakemake-executor-plugin-azure-batch with the pool request fixed; see
byok8s.batch_plugin)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from byok8s.errors import ConfigError
from byok8s.executors.base import Executor

if TYPE_CHECKING:
    from byok8s.config import RunConfig

ACCOUNT_URL_RE = re.compile(r"^https://[a-z0-9]{3,24}\.[a-z0-9-]+\.batch\.azure\.com/?$")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# The run options of Azure Batch, with their types (also workflow config keys).
OPTION_TYPES: dict[str, type] = {
    "az_batch_account_url": str,
    "az_batch_resource_group": str,
    "az_batch_subscription_id": str,
    "az_batch_vm_size": str,
    "az_batch_nodes": int,
    "az_batch_autoscale": bool,
    "az_batch_tasks_per_node": int,
    "az_batch_spot": bool,
    "az_batch_keep_pool": bool,
    "az_batch_identity": str,
    "az_batch_identity_client_id": str,
}
REQUIRED = ("az_batch_account_url", "az_batch_resource_group", "az_batch_subscription_id")


@dataclass(frozen=True)
class BatchSettings:
    account_url: str
    resource_group: str
    subscription_id: str
    vm_size: str = "Standard_D2_v3"
    nodes: int = 1  # the pool's size, or its largest size with autoscale
    autoscale: bool = False
    tasks_per_node: int = 1
    spot: bool = False
    keep_pool: bool = False
    identity: str | None = None  # a user-assigned managed identity's resource id
    identity_client_id: str | None = None


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve(values: Mapping[str, Any], sources: Mapping[str, str]) -> BatchSettings:
    """Check the --az-batch-* values of an azure-batch run."""
    missing = [option(n) for n in REQUIRED if not values.get(n)]
    if missing:
        raise ConfigError(
            f"--executor azure-batch needs {', '.join(missing)} (or BYOK8S_"
            f"{missing[0][2:].replace('-', '_').upper()} ...); find them in the Azure portal "
            "on the Batch account's overview page"
        )
    url = values["az_batch_account_url"]
    if not ACCOUNT_URL_RE.match(url):
        raise ConfigError(
            f"--az-batch-account-url {url!r} (from {sources['az_batch_account_url']}) is not a "
            "Batch account URL; use https://ACCOUNT.REGION.batch.azure.com"
        )
    if not GUID_RE.match(values["az_batch_subscription_id"]):
        raise ConfigError(
            f"--az-batch-subscription-id {values['az_batch_subscription_id']!r} is not a "
            "subscription id (a GUID like 00000000-0000-0000-0000-000000000000)"
        )
    for name, least in (("az_batch_nodes", 1), ("az_batch_tasks_per_node", 1)):
        value = values.get(name)
        if value is not None and value < least:
            raise ConfigError(
                f"{option(name)} must be at least {least}, got {value} (from {sources[name]})"
            )
    given = {k: v for k, v in values.items() if k in OPTION_TYPES and v not in (None, False)}
    return BatchSettings(
        account_url=url.rstrip("/"),
        resource_group=given["az_batch_resource_group"],
        subscription_id=given["az_batch_subscription_id"],
        vm_size=given.get("az_batch_vm_size", BatchSettings.vm_size),
        nodes=given.get("az_batch_nodes", BatchSettings.nodes),
        autoscale="az_batch_autoscale" in given,
        tasks_per_node=given.get("az_batch_tasks_per_node", BatchSettings.tasks_per_node),
        spot="az_batch_spot" in given,
        keep_pool="az_batch_keep_pool" in given,
        identity=given.get("az_batch_identity"),
        identity_client_id=given.get("az_batch_identity_client_id"),
    )


class AzureBatchExecutor(Executor):
    plugin = "byok8s-batch"
    module = "byok8s.batch_plugin"

    def preflight(self, cfg: RunConfig) -> None:
        super().preflight(cfg)
        if importlib.util.find_spec("snakemake_executor_plugin_azure_batch") is None:
            raise ConfigError(
                "--executor azure-batch needs snakemake-executor-plugin-azure-batch; "
                "install it with: pip install 'byok8s[azure-batch]'"
            )

    def settings(self, cfg: RunConfig) -> dict[str, Any]:
        batch = cfg.azure_batch
        assert batch is not None, "config.resolve sets it for azure-batch runs"
        return {
            "account_url": batch.account_url,
            "resource_group_name": batch.resource_group,
            "subscription_id": batch.subscription_id,
            "pool_vm_size": batch.vm_size,
            "pool_node_count": batch.nodes,
            "autoscale": batch.autoscale,
            "tasks_per_node": batch.tasks_per_node,
            "spot": batch.spot,
            "keep_pool": batch.keep_pool,
            "keep_sources": cfg.keep_sources,
            "managed_identity_resource_id": batch.identity,
            "managed_identity_client_id": batch.identity_client_id,
        }

    def describe(self, cfg: RunConfig) -> str:
        batch = cfg.azure_batch
        if batch is None:
            return "Azure Batch"
        size = f"up to {batch.nodes}" if batch.autoscale else str(batch.nodes)
        kind = "spot" if batch.spot else "dedicated"
        return (
            f"Azure Batch {batch.account_url}: {size} {kind} {batch.vm_size} node(s), "
            f"{batch.tasks_per_node} task(s) each, image {cfg.container_image}"
        )
