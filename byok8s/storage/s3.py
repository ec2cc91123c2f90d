"""S3 and S3-compatible storage (AWS, MinIO, moto, ...) through boto3."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urlsplit

from byok8s.errors import StorageError
from byok8s.storage.base import BucketUrl, Storage

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
DEFAULT_REGION = "us-east-1"
CHECK_READ_TIMEOUT = 8  # seconds


@dataclass(frozen=True)
class S3Storage(Storage):
    url: BucketUrl
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    credential_source: str = ""
    provider: ClassVar[str] = "s3"

    @staticmethod
    def name_problem(name: str) -> str | None:
        if not NAME_RE.match(name) or ".." in name or IP_RE.match(name):
            return (
                f"{name!r} is not a valid S3 bucket name; use 3-63 lowercase letters, "
                "digits, '.' and '-', starting and ending with a letter or digit"
            )
        return None

    @classmethod
    def resolve(
        cls, url: BucketUrl, env: Mapping[str, str], endpoint_url: str | None = None
    ) -> S3Storage:
        endpoint_url = endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if endpoint_url:
            parts = urlsplit(endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise StorageError(
                    f"S3 endpoint URL {endpoint_url!r} is not an http(s) URL; "
                    "pass e.g. --s3-endpoint-url http://minio.example:9000"
                )
        access, secret, token, source = _credentials(env)
        if not access or not secret:
            raise StorageError(
                f"no AWS credentials found for {url}; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE for a profile in ~/.aws)"
            )
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        return cls(
            url=url,
            access_key=access,
            secret_key=secret,
            token=token,
            endpoint_url=endpoint_url,
            region=region,
            credential_source=source,
        )

    def plugin_settings(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "token": self.token,
        }

    def secret_values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.access_key, self.secret_key, self.token) if v)

    @cached_property
    def client(self) -> Any:
        return self._client(read_timeout=60, attempts=3)

    @cached_property
    def quick_client(self) -> Any:
        """For the check at the start: a server that does not answer fails it soon."""
        return self._client(read_timeout=CHECK_READ_TIMEOUT, attempts=2)

    def _client(self, read_timeout: float, attempts: int) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.token,
            config=Config(connect_timeout=5, read_timeout=read_timeout,
                          retries={"max_attempts": attempts, "mode": "standard"}),
        )  # fmt: skip

    def put(self, relative: str, data: bytes) -> None:
        with self.errors("write", relative):
            self.client.put_object(Bucket=self.url.name, Key=self.url.key(relative), Body=data)

    def create(self, relative: str, data: bytes) -> bool:
        import botocore.exceptions as bex

        with self.errors("write", relative):
            try:
                self.client.put_object(Bucket=self.url.name, Key=self.url.key(relative),
                                       Body=data, IfNoneMatch="*")  # fmt: skip
            except bex.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    return False
                raise
        return True

    def get(self, relative: str, start: int = 0) -> bytes:
        with self.errors("read", relative):
            ranged = {"Range": f"bytes={start}-"} if start else {}
            obj = self.client.get_object(Bucket=self.url.name, Key=self.url.key(relative), **ranged)
            return bytes(obj["Body"].read())

    def stat(self, relative: str) -> dict[str, Any]:
        with self.errors("read", relative):
            head = self.client.head_object(Bucket=self.url.name, Key=self.url.key(relative))
        etag = str(head.get("ETag", "")).strip('"')
        found: dict[str, Any] = {"size": int(head["ContentLength"]), "etag": etag}
        if etag and "-" not in etag:  # a multipart upload's ETag is not the object's MD5
            found["md5"] = etag
        return found

    def delete(self, relative: str) -> None:
        with self.errors("delete", relative):
            self.client.delete_object(Bucket=self.url.name, Key=self.url.key(relative))

    def list(self, relative_prefix: str = "") -> dict[str, int]:
        prefix = self.url.list_prefix(relative_prefix)
        found: dict[str, int] = {}
        with self.errors("list", relative_prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.url.name, Prefix=prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    found[self.url.relative(obj["Key"])] = obj["Size"]
        return found

    def check(self) -> None:
        with self.errors("reach", ""):
            self.quick_client.head_bucket(Bucket=self.url.name)

    def missing(self, exc: BaseException) -> bool:
        import botocore.exceptions as bex

        return (isinstance(exc, bex.ClientError)
                and exc.response.get("Error", {}).get("Code") == "NoSuchKey")  # fmt: skip

    def explain(self, exc: BaseException) -> str | None:
        import botocore.exceptions as bex

        if not isinstance(exc, (bex.BotoCoreError, bex.ClientError)):
            return None
        where = self.endpoint_url or "AWS S3"
        code = ""
        if isinstance(exc, bex.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            return f"bucket {self.url.name!r} does not exist at {where}; create it first"
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"access denied at {where}; check the AWS credentials ({self.credential_source})"
        if self.missing(exc):
            return "no such object"
        if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError)):
            return f"cannot connect to {where}; check --s3-endpoint-url and the network"
        if isinstance(exc, bex.ReadTimeoutError):
            return f"cannot get an answer from {where} (timed out); check that it is up"
        return f"{type(exc).__name__}: {exc}"


def _credentials(env: Mapping[str, str]) -> tuple[str | None, str | None, str | None, str]:
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        return access, secret, env.get("AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID"
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=env.get("AWS_PROFILE"))
        creds = session.get_credentials()
    except botocore.exceptions.ProfileNotFound as exc:
        raise StorageError(
            f"AWS profile {env.get('AWS_PROFILE')!r} not found ({exc}); "
            "fix AWS_PROFILE or run 'aws configure'"
        ) from exc
    if creds is None:
        return None, None, None, ""
    frozen = creds.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token, f"AWS {creds.method}"
