"""Jobs run as Azure Batch tasks (snakemake-executor-plugin-azure-batch)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from byok8s.errors import ConfigError
from byok8s.executors.base import Executor

if TYPE_CHECKING:
    from byok8s.config import RunConfig


class AzureBatchExecutor(Executor):
    plugin = "azure-batch"

    def preflight(self, cfg: RunConfig) -> None:
        super().preflight(cfg)
        if importlib.util.find_spec("snakemake_executor_plugin_azure_batch") is None:
            raise ConfigError(
                "--executor azure-batch needs snakemake-executor-plugin-azure-batch; "
                "install it with: pip install 'byok8s[azure-batch]'"
            )

    def describe(self, cfg: RunConfig) -> str:
        return "Azure Batch"
