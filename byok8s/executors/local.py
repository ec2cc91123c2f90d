"""Jobs run as processes on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from byok8s.executors.base import Executor

if TYPE_CHECKING:
    from byok8s.config import RunConfig


class LocalExecutor(Executor):
    """Without a bucket: Snakemake's own local executor, in the working directory."""

    plugin = "local"


class ProcessExecutor(LocalExecutor):
    """With a bucket: each job a process in a directory of its own, its files
    through the bucket, as in a pod (snakemake_executor_plugin_byok8s.processes)."""

    plugin = "byok8s-process"
    module = "snakemake_executor_plugin_byok8s.processes"

    def settings(self, cfg: RunConfig) -> dict[str, Any]:
        return {
            "cores": cfg.cores or 1,
            "record_dir": str(cfg.record_dir) if cfg.record_dir else None,
        }

    def describe(self, cfg: RunConfig) -> str:
        return f"this machine ({cfg.cores} cores), each job in a directory of its own"
