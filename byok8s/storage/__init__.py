"""Object storage backends, chosen by the bucket URL's scheme."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from byok8s.errors import StorageError
from byok8s.storage.base import BucketUrl, Storage, parse_prefix

SCHEMES = ("s3", "az", "gs")

__all__ = ["SCHEMES", "BucketUrl", "Storage", "parse_url", "resolve"]


def parse_url(text: str) -> BucketUrl:
    if "://" not in text:
        raise StorageError(
            f"bucket {text!r} is not a URL; pass --bucket s3://NAME, az://CONTAINER "
            "or gs://NAME (or --s3-bucket NAME)"
        )
    scheme, _, rest = text.partition("://")
    if scheme not in SCHEMES:
        raise StorageError(
            f"bucket URL {text!r} has unsupported scheme {scheme!r}; use s3://, az:// or gs://"
        )
    split = urlsplit(f"x://{rest}")
    if split.query or split.fragment or "@" in rest.split("/")[0]:
        raise StorageError(
            f"bucket URL {text!r} must not carry a query, fragment or user info; "
            "pass credentials through the environment (see the README)"
        )
    name, _, prefix = rest.partition("/")
    backend = _backend(scheme)
    problem = backend.name_problem(name)
    if problem:
        raise StorageError(f"bucket URL {text!r}: {problem}")
    return BucketUrl(scheme=scheme, name=name, prefix=parse_prefix(text, prefix))


def resolve(text: str, s3_endpoint_url: str | None, env: Mapping[str, str]) -> Storage:
    """Parse the URL and find the credentials for it (nothing is contacted)."""
    url = parse_url(text)
    backend = _backend(url.scheme)
    return backend.resolve(url, env, endpoint_url=s3_endpoint_url)


def _backend(scheme: str):  # type: ignore[no-untyped-def]
    if scheme == "s3":
        from byok8s.storage.s3 import S3Storage

        return S3Storage
    if scheme == "az":
        from byok8s.storage.azure import AzureStorage

        return AzureStorage
    from byok8s.storage.gcs import GcsStorage

    return GcsStorage
