"""The buckets the conformance runs go through: one prefix per test and way, on the
S3 server or Azurite the tests start (test/services.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SKIPPED = (".byok8s/", ".snakemake/", "snakemake-workflow-sources.")  # byok8s's own objects


@dataclass
class S3Bucket:
    client: Any  # boto3 S3 client
    name: str
    prefix: str
    endpoint: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    @property
    def options(self) -> list[str]:
        return ["--s3-endpoint-url", self.endpoint]

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=f"{self.prefix}/{key}", Body=data)

    def fetch(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=self.prefix + "/"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"][len(self.prefix) + 1 :]
                if not key.startswith(SKIPPED):
                    found[key] = self.client.get_object(Bucket=self.name, Key=obj["Key"])[
                        "Body"
                    ].read()
        return found


@dataclass
class AzureBucket:
    container: Any  # azure ContainerClient
    prefix: str
    account_url: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"az://{self.container.container_name}/{self.prefix}"

    @property
    def options(self) -> list[str]:
        return []

    def put(self, key: str, data: bytes) -> None:
        self.container.upload_blob(f"{self.prefix}/{key}", data, overwrite=True)

    def fetch(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for blob in self.container.list_blobs(name_starts_with=self.prefix + "/"):
            key = blob.name[len(self.prefix) + 1 :]
            if not key.startswith(SKIPPED):
                found[key] = self.container.download_blob(blob.name).readall()
        return found
