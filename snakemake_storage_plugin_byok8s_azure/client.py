"""The Blob service client of an account URL and a SAS token, an account key or
nothing (Azure AD: environment, workload identity, managed identity, Azure CLI).
The storage plugin and byok8s's own Azure storage both build clients here."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit


def is_sas(text: str) -> bool:
    return "sig=" in text


def account_name(account_url: str) -> str:
    """ACCOUNT of https://ACCOUNT.blob.core.windows.net or http://host:port/ACCOUNT."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    path_style = host == "localhost"
    try:
        ipaddress.ip_address(host)
        path_style = True
    except ValueError:
        pass
    if path_style:
        return parts.path.strip("/").split("/")[0]
    return host.split(".")[0]


def blob_service_client(account_url: str, credential: str | None, **options: Any) -> Any:
    """A BlobServiceClient from an account URL and a SAS, a key or nothing (AD)."""
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
    from azure.storage.blob import BlobServiceClient

    cred: Any
    if credential is None:
        import os

        from azure.identity import (
            AzureCliCredential,
            ChainedTokenCredential,
            EnvironmentCredential,
            ManagedIdentityCredential,
            WorkloadIdentityCredential,
        )

        chain: list[Any] = [EnvironmentCredential()]
        if os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
            chain.append(WorkloadIdentityCredential())
        chain += [ManagedIdentityCredential(), AzureCliCredential()]
        cred = ChainedTokenCredential(*chain)
    elif is_sas(credential):
        cred = AzureSasCredential(credential.lstrip("?"))
    else:
        cred = AzureNamedKeyCredential(account_name(account_url), credential)
    return BlobServiceClient(account_url, credential=cred, connection_timeout=5, **options)
