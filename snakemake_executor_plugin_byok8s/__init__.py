"""Snakemake executor plugin `byok8s`: the stock Kubernetes executor, for clusters
without egress, with failures that say why, and with little overhead per job
(executor.py says how).

Snakemake finds `Executor`, `ExecutorSettings` and `common_settings` here; they
load on first use, so that byok8s's command line can read the plugin's option
declarations (settings.py) without importing Kubernetes and Snakemake.
"""

from typing import Any

__all__ = ["Executor", "ExecutorSettings", "common_settings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from snakemake_executor_plugin_byok8s import executor

        return getattr(executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
