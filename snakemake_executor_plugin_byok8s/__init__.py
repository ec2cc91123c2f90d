"""Snakemake executor plugin `byok8s`: the stock Kubernetes executor, for clusters
without egress.

Differences from snakemake-executor-plugin-kubernetes (everything else is inherited):
- no `pip install` of storage plugins in each pod: the job image already has them
  (it is built from byok8s), so `auto_deploy_default_storage_provider` is off.
"""

import dataclasses

import snakemake_executor_plugin_kubernetes as stock

common_settings = dataclasses.replace(
    stock.common_settings, auto_deploy_default_storage_provider=False
)


@dataclasses.dataclass
class ExecutorSettings(stock.ExecutorSettings):
    pass


class Executor(stock.Executor):
    pass
