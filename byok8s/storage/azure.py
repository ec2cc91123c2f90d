"""Azure Blob Storage, with a SAS token, an account key or Azure AD.

The credential forms follow the ones users already have:
  AZ_BLOB_ACCOUNT_URL=https://ACCOUNT.blob.core.windows.net?<SAS>      (SAS in URL)
  AZ_BLOB_ACCOUNT_URL=https://ACCOUNT.blob.core.windows.net + AZ_BLOB_CREDENTIAL=<SAS or key>
  AZ_BLOB_ACCOUNT_URL + AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET (Azure AD)
Jobs use byok8s's storage plugin `byok8s-azure`, which builds its client
with `blob_service_client` below (the upstream azure plugin only knows Azure AD).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from byok8s.errors import StorageError
from byok8s.storage.base import BucketUrl, Storage
from snakemake_storage_plugin_byok8s_azure.client import account_name, blob_service_client, is_sas

NAME_RE = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
AAD_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")
WORKLOAD_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")
SAS = "SAS token"
KEY = "account key"
AAD = "Azure AD"


@dataclass(frozen=True)
class AzureStorage(Storage):
    url: BucketUrl
    account_url: str  # without any query: never secret
    credential: str | None = field(default=None, repr=False)  # SAS or key; None = AD
    credential_kind: str = AAD
    credential_source: str = ""
    provider: ClassVar[str] = "byok8s-azure"

    @staticmethod
    def name_problem(name: str) -> str | None:
        if not NAME_RE.match(name):
            return (
                f"{name!r} is not a valid Azure container name; use 3-63 lowercase "
                "letters, digits and single '-', starting and ending with a letter or digit"
            )
        return None

    @classmethod
    def resolve(
        cls, url: BucketUrl, env: Mapping[str, str], endpoint_url: str | None = None
    ) -> AzureStorage:
        raw = env.get("AZ_BLOB_ACCOUNT_URL", "")
        if not raw:
            raise StorageError(
                f"no Azure storage account for {url}; set AZ_BLOB_ACCOUNT_URL="
                "https://ACCOUNT.blob.core.windows.net (with a SAS after '?', or set "
                "AZ_BLOB_CREDENTIAL to a SAS token or account key)"
            )
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise StorageError(
                "AZ_BLOB_ACCOUNT_URL is not an http(s) URL; set it to "
                "https://ACCOUNT.blob.core.windows.net"
            )
        account_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        given = env.get("AZ_BLOB_CREDENTIAL", "").strip()
        if parts.query:
            if not is_sas(parts.query):
                raise StorageError(
                    "AZ_BLOB_ACCOUNT_URL has a query that is not a SAS token (no 'sig='); "
                    "put only a SAS after '?', or none"
                )
            credential, kind, source = parts.query, SAS, "SAS in AZ_BLOB_ACCOUNT_URL"
        elif given:
            if is_sas(given):
                credential, kind = given.lstrip("?"), SAS
            else:
                _check_key(given)
                credential, kind = given, KEY
            source = f"{kind} in AZ_BLOB_CREDENTIAL"
        elif all(env.get(v) for v in AAD_VARS) or all(env.get(v) for v in WORKLOAD_VARS):
            credential, kind, source = None, AAD, "Azure AD (AZURE_CLIENT_ID)"
        else:
            raise StorageError(
                f"no Azure credentials for {url}; set AZ_BLOB_CREDENTIAL to a SAS token "
                "or account key, put a SAS in AZ_BLOB_ACCOUNT_URL, or set "
                "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET"
            )
        if kind == KEY and not account_name(account_url):
            raise StorageError(
                "cannot tell the storage account from AZ_BLOB_ACCOUNT_URL for the account "
                "key; use https://ACCOUNT.blob.core.windows.net"
            )
        return cls(
            url=url,
            account_url=account_url,
            credential=credential,
            credential_kind=kind,
            credential_source=source,
        )

    def plugin_settings(self) -> dict[str, Any]:
        return {"account_url": self.account_url, "credential": self.credential}

    def job_envvar_names(self) -> tuple[str, ...]:
        if self.credential_kind != AAD:
            return ()
        import os

        return tuple(n for n in dict.fromkeys(AAD_VARS + WORKLOAD_VARS) if os.environ.get(n))

    def secret_values(self) -> tuple[str, ...]:
        if not self.credential:
            import os

            return tuple(v for v in [os.environ.get("AZURE_CLIENT_SECRET")] if v)
        values = [self.credential]
        # The signature alone is what makes a SAS secret; redact it wherever it shows.
        values += re.findall(r"sig=([^&]+)", self.credential)
        return tuple(values)

    @cached_property
    def container(self) -> Any:
        return blob_service_client(self.account_url, self.credential).get_container_client(
            self.url.name
        )

    def put(self, relative: str, data: bytes) -> None:
        with self.errors("write", relative):
            self.container.upload_blob(self.url.key(relative), data, overwrite=True)

    def create(self, relative: str, data: bytes) -> bool:
        from azure.core.exceptions import ResourceExistsError

        with self.errors("write", relative):
            try:
                self.container.upload_blob(self.url.key(relative), data, overwrite=False)
            except ResourceExistsError:
                return False
        return True

    def get(self, relative: str, start: int = 0) -> bytes:
        with self.errors("read", relative):
            blob = self.container.download_blob(self.url.key(relative), offset=start or None)
            return bytes(blob.readall())

    def stat(self, relative: str) -> dict[str, Any]:
        with self.errors("read", relative):
            props = self.container.get_blob_client(self.url.key(relative)).get_blob_properties()
        found: dict[str, Any] = {"size": int(props.size), "etag": str(props.etag).strip('"')}
        md5 = props.content_settings.content_md5 if props.content_settings else None
        if md5:
            found["md5"] = bytes(md5).hex()
        return found

    def delete(self, relative: str) -> None:
        with self.errors("delete", relative):
            self.container.delete_blob(self.url.key(relative))

    def list(self, relative_prefix: str = "") -> dict[str, int]:
        prefix = self.url.list_prefix(relative_prefix)
        with self.errors("list", relative_prefix):
            return {
                self.url.relative(b.name): b.size
                for b in self.container.list_blobs(name_starts_with=prefix or None)
            }

    def check(self) -> None:
        # At the start a server that does not answer fails the run soon: one retry,
        # short timeouts (the run's own transfers keep the library's patient ones).
        from azure.storage.blob import LinearRetry

        quick = blob_service_client(
            self.account_url,
            self.credential,
            retry_policy=LinearRetry(backoff=1, random_jitter_range=0, retry_total=1),
            read_timeout=8,
        )
        with self.errors("reach", ""):
            quick.get_container_client(self.url.name).get_container_properties()

    def missing(self, exc: BaseException) -> bool:
        return getattr(exc, "error_code", None) == "BlobNotFound"

    def explain(self, exc: BaseException) -> str | None:
        from azure.core.exceptions import AzureError, HttpResponseError

        if not isinstance(exc, AzureError):
            return None
        code = getattr(exc, "error_code", None) or ""
        status = exc.status_code if isinstance(exc, HttpResponseError) else None
        if code == "ContainerNotFound":
            return (
                f"container {self.url.name!r} does not exist in {self.account_url}; create it first"
            )
        if status == 403 or code in ("AuthenticationFailed", "AuthorizationFailure"):
            return (
                f"access denied by {self.account_url}; check the {self.credential_source} "
                "(expired SAS or wrong key?)"
            )
        if self.missing(exc):
            return "no such blob"
        if status is None:
            return f"cannot connect to {self.account_url}; check AZ_BLOB_ACCOUNT_URL"
        return f"{code or status}"


def _check_key(key: str) -> None:
    try:
        ok = len(base64.b64decode(key, validate=True)) >= 32
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise StorageError(
            "AZ_BLOB_CREDENTIAL is neither a SAS token (with 'sig=') nor a base64 "
            "account key; copy it again from the portal or 'az storage account keys list'"
        )
