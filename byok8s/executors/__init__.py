"""Where jobs run: executor backends chosen by `--executor`."""

from __future__ import annotations

from byok8s.executors.base import Executor

NAMES = ("local", "kubernetes", "azure-batch")


def default(bucket: bool) -> str:
    """The executor of a run that names none: a bucket means a cluster."""
    return "kubernetes" if bucket else "local"


def get(name: str, bucket: bool = False) -> Executor:
    """The backend of `--executor NAME`; `local` with a bucket runs each job in a
    directory of its own, as a pod would."""
    if name == "kubernetes":
        from byok8s.executors.kubernetes import KubernetesExecutor

        return KubernetesExecutor()
    if name == "azure-batch":
        from byok8s.executors.azure_batch import AzureBatchExecutor

        return AzureBatchExecutor()
    from byok8s.executors.local import LocalExecutor, ProcessExecutor

    return ProcessExecutor() if bucket else LocalExecutor()


__all__ = ["NAMES", "Executor", "default", "get"]
