"""Google Cloud Storage through google-cloud-storage (the gcs plugin's client)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from byok8s.errors import StorageError
from byok8s.storage.base import BucketUrl, Storage

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
ADC = Path("~/.config/gcloud/application_default_credentials.json")
PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
# A GCS emulator (fake-gcs-server, ...): the google client's own variable; no credentials.
EMULATOR = "STORAGE_EMULATOR_HOST"


@dataclass(frozen=True)
class GcsStorage(Storage):
    url: BucketUrl
    project: str
    credentials_file: str | None = None
    credential_source: str = ""
    emulator: str | None = None
    provider: ClassVar[str] = "gcs"

    @staticmethod
    def name_problem(name: str) -> str | None:
        if not NAME_RE.match(name) or name.startswith("goog"):
            return (
                f"{name!r} is not a valid GCS bucket name; use 3-63 lowercase letters, "
                "digits, '-', '_' and '.', starting and ending with a letter or digit"
            )
        return None

    @classmethod
    def resolve(
        cls, url: BucketUrl, env: Mapping[str, str], endpoint_url: str | None = None
    ) -> GcsStorage:
        project = next((env[v] for v in PROJECT_VARS if env.get(v)), "")
        if not project:
            raise StorageError(f"no Google Cloud project for {url}; set GOOGLE_CLOUD_PROJECT")
        emulator = env.get(EMULATOR)
        if emulator:
            source = f"{EMULATOR} (an emulator at {emulator}, no credentials)"
            return cls(url=url, project=project, credential_source=source, emulator=emulator)
        creds = env.get("GOOGLE_APPLICATION_CREDENTIALS")
        if creds:
            if not Path(creds).is_file():
                raise StorageError(
                    f"GOOGLE_APPLICATION_CREDENTIALS points to {creds}, which is not a file; "
                    "fix the path to your service-account key"
                )
            _check_key_file(Path(creds))
            source = "GOOGLE_APPLICATION_CREDENTIALS"
        elif ADC.expanduser().is_file():
            creds, source = None, "gcloud application-default credentials"
        else:
            raise StorageError(
                f"no Google Cloud credentials for {url}; set GOOGLE_APPLICATION_CREDENTIALS "
                "to a service-account key file or run 'gcloud auth application-default login'"
            )
        return cls(url=url, project=project, credentials_file=creds, credential_source=source)

    def plugin_settings(self) -> dict[str, Any]:
        return {"project": self.project}

    def job_envvar_names(self) -> tuple[str, ...]:
        return (EMULATOR,) if self.emulator else ()

    @cached_property
    def bucket(self) -> Any:
        from google.cloud import storage as gcs

        if self.emulator:
            from google.auth.credentials import AnonymousCredentials

            client = gcs.Client(
                project=self.project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": self.emulator},
            )
        else:
            client = gcs.Client(project=self.project)
        return client.bucket(self.url.name)

    def put(self, relative: str, data: bytes) -> None:
        with self.errors("write", relative):
            self.bucket.blob(self.url.key(relative)).upload_from_string(data)

    def create(self, relative: str, data: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        with self.errors("write", relative):
            try:
                blob = self.bucket.blob(self.url.key(relative))
                blob.upload_from_string(data, if_generation_match=0)
            except PreconditionFailed:
                return False
        return True

    def get(self, relative: str, start: int = 0) -> bytes:
        with self.errors("read", relative):
            blob = self.bucket.blob(self.url.key(relative))
            return bytes(blob.download_as_bytes(start=start or None))

    def stat(self, relative: str) -> dict[str, Any]:
        import base64

        with self.errors("read", relative):
            blob = self.bucket.get_blob(self.url.key(relative))
            if blob is None:
                raise StorageError(f"{self.url.url(relative)} does not exist")
        found: dict[str, Any] = {"size": int(blob.size), "etag": blob.etag}
        if blob.md5_hash:
            found["md5"] = base64.b64decode(blob.md5_hash).hex()
        return found

    def delete(self, relative: str) -> None:
        with self.errors("delete", relative):
            self.bucket.blob(self.url.key(relative)).delete()

    def list(self, relative_prefix: str = "") -> dict[str, int]:
        prefix = self.url.list_prefix(relative_prefix)
        with self.errors("list", relative_prefix):
            return {
                self.url.relative(b.name): b.size
                for b in self.bucket.list_blobs(prefix=prefix or None)
            }

    def check(self) -> None:
        with self.errors("reach", ""):
            if not self.bucket.exists():
                raise StorageError(f"bucket {self.url.name!r} does not exist; create it first")

    def missing(self, exc: BaseException) -> bool:
        """GCS answers 404 for a missing bucket too ("The specified bucket does not
        exist."); a bucket's name may hold the word "bucket" itself."""
        from google.api_core.exceptions import NotFound

        return isinstance(exc, NotFound) and "bucket does not exist" not in str(exc).lower()

    def explain(self, exc: BaseException) -> str | None:
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError

        if not isinstance(exc, (GoogleAPIError, GoogleAuthError)):
            return None
        if self.missing(exc):
            return "no such object"
        return f"{type(exc).__name__}: {exc}"


def _check_key_file(path: Path) -> None:
    """A service-account key (or any credential file gcloud writes) is a JSON object
    with a "type"; anything else fails later with a long traceback."""
    import json

    problem = None
    try:
        if path.stat().st_size > 1 << 20:
            problem = "larger than 1 MiB"
        else:
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict) or "type" not in data:
                problem = 'JSON, but not a credential file (no "type")'
    except (OSError, ValueError) as exc:
        problem = f"not JSON ({type(exc).__name__})"
    if problem:
        raise StorageError(
            f"GOOGLE_APPLICATION_CREDENTIALS file {path} is {problem}; point it to a "
            "service-account key file (JSON) or run 'gcloud auth application-default login'"
        )
