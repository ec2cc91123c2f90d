"""Where jobs run: executor backends chosen by `--executor`."""

from __future__ import annotations

from byok8s.backends.base import Backend, Given

NAMES = ("local", "kubernetes", "azure-batch")


def default(bucket: bool) -> str:
    """The executor of a run that names none: a bucket means a cluster."""
    return "kubernetes" if bucket else "local"


def get(name: str, bucket: bool = False) -> Backend:
    """The backend of `--executor NAME`; `local` with a bucket runs each job in a
    directory of its own, as a pod would."""
    if name == "kubernetes":
        from byok8s.backends.kubernetes import KubernetesBackend

        return KubernetesBackend()
    if name == "azure-batch":
        from byok8s.backends.azure_batch import AzureBatchBackend

        return AzureBatchBackend()
    from byok8s.backends.local import LocalBackend, ProcessBackend

    return ProcessBackend() if bucket else LocalBackend()


__all__ = ["NAMES", "Backend", "Given", "default", "get"]
