"""Jobs run as Azure Batch tasks, through byok8s's plugin `byok8s-batch`
(snakemake-executor-plugin-azure-batch with the pool request fixed; see
byok8s.batch_plugin)."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from byok8s.backends.base import Backend, Given, check_rules
from byok8s.declare import Option
from byok8s.errors import ConfigError

if TYPE_CHECKING:
    from byok8s.config import RunConfig
    from byok8s.staging import Run

ACCOUNT_URL_RE = re.compile(r"^https://[a-z0-9]{3,24}\.[a-z0-9-]+\.batch\.azure\.com/?$")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
OWNER = "azure-batch"
log = logging.getLogger(__name__)


def _batch(**kwargs: Any) -> Option:
    return Option(owner=OWNER, **kwargs)


OPTIONS = (
    _batch(name="az_batch_account_url", metavar="URL", plugin="account_url",
           help="Azure Batch: the account, https://ACCOUNT.REGION.batch.azure.com (needed)."),
    _batch(name="az_batch_resource_group", metavar="NAME", plugin="resource_group_name",
           help="Azure Batch: the account's resource group (needed)."),
    _batch(name="az_batch_subscription_id", metavar="ID", plugin="subscription_id",
           help="Azure Batch: the account's subscription (needed)."),
    _batch(name="az_batch_vm_size", metavar="SIZE", default="Standard_D2_v3",
           plugin="pool_vm_size", help="Azure Batch: the pool's VM size."),
    _batch(name="az_batch_nodes", type=int, default=1, metavar="N", least=1, must="at least 1",
           plugin="pool_node_count",
           help="Azure Batch: the pool's nodes, or its most with --az-batch-autoscale."),
    _batch(name="az_batch_autoscale", type=bool, plugin="autoscale",
           help="Azure Batch: size the pool to the pending tasks, from 0 nodes."),
    _batch(name="az_batch_tasks_per_node", type=int, default=1, metavar="N", least=1,
           must="at least 1", plugin="tasks_per_node",
           help="Azure Batch: tasks a node runs at once."),
    _batch(name="az_batch_spot", type=bool, plugin="spot",
           help="Azure Batch: spot (low-priority) nodes instead of dedicated ones: cheaper, "
           "but Azure may take them back."),
    _batch(name="az_batch_keep_pool", type=bool, plugin="keep_pool",
           help="Azure Batch: keep the pool and Batch job after the run."),
    _batch(name="az_batch_identity", metavar="RESOURCE_ID",
           plugin="managed_identity_resource_id",
           help="Azure Batch: a user-assigned managed identity for the nodes (Azure storage, "
           "a private registry)."),
    _batch(name="az_batch_identity_client_id", metavar="ID", plugin="managed_identity_client_id",
           help="Azure Batch: its client id, given to the tasks as AZURE_CLIENT_ID."),
)  # fmt: skip
REQUIRED = ("az_batch_account_url", "az_batch_resource_group", "az_batch_subscription_id")


def resolve(values: Mapping[str, Any], sources: Mapping[str, str]) -> Mapping[str, Any]:
    """The --az-batch-* values of an azure-batch run (each in range: config), checked
    together."""
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
    flags = {o.name: bool(values[o.name]) for o in OPTIONS if o.type is bool}
    return MappingProxyType({**values, **flags, "az_batch_account_url": url.rstrip("/")})


def rules(given: Given) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The workflow config's `rules`: each `rules.RULE.image`, checked (the rule's task
    container; it wins over its container:), and the names of each rule's other
    options, which are for pods."""
    from snakemake_executor_plugin_byok8s import options

    images: dict[str, str] = {}
    pods: dict[str, list[str]] = {}
    for rule, plan in dict(given.wf_config.get("rules", {})).items():
        where = f"workflow config {given.config_file}: rules: {rule}"
        if not isinstance(plan, dict):
            raise ConfigError(f"{where} must be a mapping (of image and pod options)")
        if "image" in plan:
            try:
                images[rule] = options.image(plan["image"], where)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        pods[rule] = sorted(k for k in plan if k != "image")
    return images, pods


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
        pods_only = sorted({k for plan in cfg.backend["pod_options"].values() for k in plan})
        if pods_only:
            log.warning("workflow config rules: %s only apply to pods (--executor kubernetes); "
                        "ignored for this azure-batch run", ", ".join(pods_only))  # fmt: skip

    def check(self, given: Given) -> Mapping[str, Any]:
        images, pods = rules(given)
        resolved = resolve(given.values, given.sources)
        return MappingProxyType({**resolved, "rule_images": images, "pod_options": pods})

    def check_workflow(self, cfg: RunConfig, images: Mapping[str, str | None]) -> None:
        check_rules(cfg, cfg.backend["pod_options"], images)

    def record(self, cfg: RunConfig) -> dict[str, Any]:
        return {
            **{o.plugin: cfg.backend[o.name] for o in OPTIONS},
            "rule_images": dict(cfg.backend["rule_images"]),
        }

    def settings(self, cfg: RunConfig, run: Run | None = None) -> dict[str, Any]:
        found = {**self.record(cfg), "keep_sources": cfg.keep_sources}
        found["rule_images"] = json.dumps(found["rule_images"], sort_keys=True)
        return found

    def cluster(self, cfg: RunConfig) -> str | None:
        return f"Azure Batch {cfg.backend['az_batch_account_url']}"

    def describe(self, cfg: RunConfig) -> str:
        if not isinstance(cfg.backend, Mapping):
            return "Azure Batch"
        batch = {name.removeprefix("az_batch_"): value for name, value in cfg.backend.items()}
        size = f"up to {batch['nodes']}" if batch["autoscale"] else str(batch["nodes"])
        kind = "spot" if batch["spot"] else "dedicated"
        return (
            f"Azure Batch {batch['account_url']}: {size} {kind} {batch['vm_size']} node(s), "
            f"{batch['tasks_per_node']} task(s) each, image {cfg.container_image}"
        )
