"""Snakemake storage plugin `byok8s-azure`: Azure Blob with SAS, key or Azure AD.

It is the upstream snakemake-storage-plugin-azure (same `az://CONTAINER/PATH`
queries, same storage objects) with one change: the client is built from an
account URL plus a SAS token or an account key, falling back to Azure AD, instead
of Azure AD only. The credential is an `env_var` setting, so Snakemake hands it
to remote jobs as an environment variable, which the Kubernetes executor keeps
in a per-run Secret.
"""

from dataclasses import dataclass, field
from typing import Optional

import snakemake_storage_plugin_azure as upstream
from snakemake_interface_storage_plugins.settings import StorageProviderSettingsBase
from snakemake_interface_storage_plugins.storage_object import retry_decorator

from snakemake_storage_plugin_byok8s_azure.client import blob_service_client


@dataclass
class StorageProviderSettings(StorageProviderSettingsBase):
    account_url: Optional[str] = field(
        default=None,
        metadata={
            "help": "Blob service URL, e.g. https://ACCOUNT.blob.core.windows.net",
            "env_var": False,
            "required": True,
        },
    )
    credential: Optional[str] = field(
        default=None,
        repr=False,
        metadata={
            "help": "SAS token or account key (omit for Azure AD)",
            "env_var": True,
            "required": False,
        },
    )


class StorageProvider(upstream.StorageProvider):
    def __post_init__(self):
        self.bsc = blob_service_client(self.settings.account_url, self.settings.credential)


class StorageObject(upstream.StorageObject):
    """Upstream's, with directories found when a job elsewhere made them: upstream
    answers "exists?" for a `directory()` output only after it listed the prefix
    once (which the main process of a remote run never does, so the directory a
    pod uploaded is "missing in storage"), and keeps a first "no" for good."""

    def is_dir(self):
        if not self._is_dir:
            self._is_dir = any(self.get_prefix_blobs())
        return self._is_dir

    @retry_decorator
    def exists(self) -> bool:
        if not self.container_client().exists():
            return False
        return self.blob_client().exists() or self.is_dir()
