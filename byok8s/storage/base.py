"""What every object-storage backend offers byok8s (one small interface)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from byok8s.errors import NotFound, StorageError


@dataclass(frozen=True)
class BucketUrl:
    """`SCHEME://NAME[/PREFIX]`; objects of a run live below the prefix."""

    scheme: str
    name: str
    prefix: str = ""

    def __str__(self) -> str:
        return self.url("")

    def key(self, relative: str) -> str:
        """The object key in the bucket for a path relative to the prefix."""
        return "/".join(p for p in (self.prefix, relative.strip("/")) if p)

    def list_prefix(self, relative: str) -> str:
        """The key prefix to list for a relative prefix ("" = the whole run prefix)."""
        prefix = self.key(relative)
        if relative.endswith("/") or (not relative and self.prefix):
            prefix += "/"
        return prefix

    def relative(self, key: str) -> str:
        return key[len(self.prefix) :].lstrip("/") if self.prefix else key

    def url(self, relative: str) -> str:
        key = self.key(relative)
        return f"{self.scheme}://{self.name}/{key}" if key else f"{self.scheme}://{self.name}"


PREFIX_RE = re.compile(r"^[A-Za-z0-9!_.*'()/=+-]*$")


def parse_prefix(url: str, prefix: str) -> str:
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if any(p in ("", ".", "..") for p in parts) or not PREFIX_RE.match(prefix):
        raise StorageError(
            f"bucket URL {url!r} has an invalid path {prefix!r}; use letters, digits "
            "and -_.!*'()=+ separated by single '/', without '.' or '..' parts"
        )
    return prefix


class Storage(ABC):
    """A resolved bucket or container with the credentials to use it."""

    url: BucketUrl
    provider: ClassVar[str]  # the Snakemake storage plugin that serves it
    credential_source: str

    @abstractmethod
    def plugin_settings(self) -> dict[str, Any]:
        """Keyword arguments for the plugin's own StorageProviderSettings."""

    def job_envvar_names(self) -> tuple[str, ...]:
        """Environment variables jobs need besides the plugin settings (e.g. Azure AD)."""
        return ()

    def secret_values(self) -> tuple[str, ...]:
        """Values that must never be shown (used to redact output)."""
        return ()

    @abstractmethod
    def put(self, relative: str, data: bytes) -> None: ...

    @abstractmethod
    def create(self, relative: str, data: bytes) -> bool:
        """Write an object only if it does not exist, atomically; False if it did."""

    @abstractmethod
    def get(self, relative: str, start: int = 0) -> bytes:
        """The object's bytes from `start` on."""

    def tail(self, relative: str, limit: int) -> bytes:
        """At most the last `limit` bytes of an object."""
        return self.get(relative, max(int(self.stat(relative)["size"]) - limit, 0))

    @abstractmethod
    def delete(self, relative: str) -> None: ...

    @abstractmethod
    def stat(self, relative: str) -> dict[str, Any]:
        """`size` and the checksums the store keeps: `md5` when it is of the whole
        object, `etag` always (an MD5 for S3 single-part uploads only)."""

    @abstractmethod
    def list(self, relative_prefix: str = "") -> dict[str, int]:
        """Object paths (relative to the URL prefix) below a prefix, with sizes."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError unless the bucket exists and answers."""

    @abstractmethod
    def explain(self, exc: BaseException) -> str | None:
        """A one-line reason for a client library error, or None if not ours."""

    @abstractmethod
    def missing(self, exc: BaseException) -> bool:
        """Whether a client library error says that the object is not there."""

    @contextmanager
    def errors(self, action: str, relative: str) -> Iterator[None]:
        """Turn the client library's errors into one-line StorageErrors."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            hint = self.explain(exc)
            if hint is None:
                raise
            kind = NotFound if self.missing(exc) else StorageError
            raise kind(f"cannot {action} {self.url.url(relative)}: {hint}") from exc

    def describe(self) -> str:
        return f"{self.url} ({self.credential_source})"
