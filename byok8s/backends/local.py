"""Jobs run as processes on this machine."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from byok8s.backends.base import Backend

if TYPE_CHECKING:
    from byok8s.config import RunConfig
    from byok8s.staging import Run


class LocalBackend(Backend):
    """Without a bucket: Snakemake's own local executor, in the working directory."""

    plugin = "local"
    jobs_in_process = True  # Snakemake's local executor: measured there (usage.py)


class ProcessBackend(LocalBackend):
    """With a bucket: each job a process in a directory of its own, its files
    through the bucket, as in a pod (snakemake_executor_plugin_byok8s.processes)."""

    plugin = "byok8s-process"
    jobs_in_process = False  # each job a process of its own, which measures itself
    module = "snakemake_executor_plugin_byok8s.processes"

    def settings(self, cfg: RunConfig, run: Run | None = None) -> dict[str, Any]:
        return {
            "cores": cfg.cores or 1,
            "record_dir": str(run.record_dir) if run and run.record_dir else None,
            "run_id": run.id if run else None,
        }

    def remove_dead_run(self, cfg: RunConfig, held: dict[str, Any]) -> None:
        """A run killed outright leaves its jobs running (each in a session of its
        own): stop them, on the machine they run on."""
        from snakemake_executor_plugin_byok8s import processes

        run_id, host = held.get("run"), held.get("host")
        if not run_id or run_id == "?":
            return
        if host != socket.gethostname():
            print(f"run {run_id} ran its jobs on {host}: any still running there go on")
            return
        stopped = processes.stop_left(processes.jobs_dir(str(run_id)))
        if stopped:
            groups = f"{len(stopped)} job process{'es' * (len(stopped) > 1)}"
            pids = ", ".join(map(str, stopped))
            print(f"stopped what run {run_id} left on this machine: {groups} ({pids})")
        else:
            print(f"run {run_id} left no job running on this machine")

    def describe(self, cfg: RunConfig) -> str:
        return f"this machine ({cfg.cores} cores), each job in a directory of its own"
