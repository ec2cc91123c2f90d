"""Jobs run as Azure Batch tasks, through byok8s's plugin `byok8s-batch`
(snakemake-executor-plugin-azure-batch with the pool request fixed; see
byok8s.batch_plugin)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from byok8s.backends.base import Backend, Given
from byok8s.declare import Option
from byok8s.errors import ConfigError

if TYPE_CHECKING:
    from byok8s.config import RunConfig
    from byok8s.staging import Run

ACCOUNT_URL_RE = re.compile(r"^https://[a-z0-9]{3,24}\.[a-z0-9-]+\.batch\.azure\.com/?$")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
OWNER = "azure-batch"


def _batch(**kwargs: Any) -> Option:
    return Option(owner=OWNER, **kwargs)


OPTIONS = (
    _batch(name="az_batch_account_url", metavar="URL",
           help="Azure Batch: the account, https://ACCOUNT.REGION.batch.azure.com (needed)."),
    _batch(name="az_batch_resource_group", metavar="NAME",
           help="Azure Batch: the account's resource group (needed)."),
    _batch(name="az_batch_subscription_id", metavar="ID",
           help="Azure Batch: the account's subscription (needed)."),
    _batch(name="az_batch_vm_size", metavar="SIZE", shown="`Standard_D2_v3`",
           help="Azure Batch: the pool's VM size."),
    _batch(name="az_batch_nodes", type=int, metavar="N", least=1, must="at least 1", shown="1",
           help="Azure Batch: the pool's nodes, or its most with --az-batch-autoscale."),
    _batch(name="az_batch_autoscale", type=bool,
           help="Azure Batch: size the pool to the pending tasks, from 0 nodes."),
    _batch(name="az_batch_tasks_per_node", type=int, metavar="N", least=1, must="at least 1",
           shown="1", help="Azure Batch: tasks a node runs at once."),
    _batch(name="az_batch_spot", type=bool, help="Azure Batch: spot (low-priority) nodes."),
    _batch(name="az_batch_keep_pool", type=bool,
           help="Azure Batch: keep the pool and Batch job after the run."),
    _batch(name="az_batch_identity", metavar="RESOURCE_ID",
           help="Azure Batch: a user-assigned managed identity for the nodes (Azure storage, "
           "a private registry)."),
    _batch(name="az_batch_identity_client_id", metavar="ID",
           help="Azure Batch: its client id."),
)  # fmt: skip
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


def resolve(values: Mapping[str, Any], sources: Mapping[str, str]) -> BatchSettings:
    """The --az-batch-* values of an azure-batch run (in range: config.resolve), checked."""
    missing = [f"--{n.replace('_', '-')}" for n in REQUIRED if not values.get(n)]
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
    given = {k: v for k, v in values.items() if v not in (None, False)}
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


class AzureBatchBackend(Backend):
    plugin = "byok8s-batch"
    module = "byok8s.batch_plugin"
    needs_bucket = True
    applies_to = "Azure Batch (--executor azure-batch)"

    def preflight(self, cfg: RunConfig) -> None:
        super().preflight(cfg)
        if importlib.util.find_spec("snakemake_executor_plugin_azure_batch") is None:
            raise ConfigError(
                "--executor azure-batch needs snakemake-executor-plugin-azure-batch; "
                "install it with: pip install 'byok8s[azure-batch]'"
            )

    def check(self, given: Given) -> BatchSettings:
        return resolve(given.values, given.sources)

    def record(self, cfg: RunConfig) -> dict[str, Any]:
        return dataclasses.asdict(cfg.backend)

    def settings(self, cfg: RunConfig, run: Run | None = None) -> dict[str, Any]:
        batch = cfg.backend
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
        batch = cfg.backend
        if not isinstance(batch, BatchSettings):
            return "Azure Batch"
        size = f"up to {batch.nodes}" if batch.autoscale else str(batch.nodes)
        kind = "spot" if batch.spot else "dedicated"
        return (
            f"Azure Batch {batch.account_url}: {size} {kind} {batch.vm_size} node(s), "
            f"{batch.tasks_per_node} task(s) each, image {cfg.container_image}"
        )
