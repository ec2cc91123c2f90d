"""The pod options of a run, from their command-line spelling: persistent volume
claims, scratch space, node selectors and tolerations. Pure parsing (no
Kubernetes client), shared by the plugin and byok8s's own config checks; each
parser raises ValueError with a one-line message that shows the right form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RESERVED_PATHS = ("/workdir", "/byok8s")  # the job's work dir and its sources
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Claim:
    """An existing PersistentVolumeClaim mounted into every job pod."""

    name: str
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class Scratch:
    """An emptyDir for temporary files: on the node's disk, or in memory (tmpfs)."""

    path: str
    size: str | None = None  # a Kubernetes quantity: sizeLimit
    memory: bool = False


@dataclass(frozen=True)
class Toleration:
    key: str
    value: str | None = None  # None: operator Exists
    effect: str | None = None  # None: every effect


def claim(text: str) -> Claim:
    """`NAME:/mount/path[:ro|:rw]`."""
    form = "use --pvc CLAIM:/mount/path[:ro], e.g. refdata:/ref:ro"
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ValueError(f"--pvc {text!r} is not of the form CLAIM:/mount/path[:ro]; {form}")
    name, path = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if len(name) > 253 or not SUBDOMAIN_RE.match(name):
        raise ValueError(
            f"--pvc {text!r}: {name!r} is not a valid claim name "
            "(lowercase letters, digits, '-' and '.'); " + form
        )
    if mode not in ("ro", "rw"):
        raise ValueError(f"--pvc {text!r}: mode {mode!r} must be ro or rw; {form}")
    return Claim(name, mount_path(path, f"--pvc {text!r}"), mode == "ro")


def scratch(text: str) -> Scratch:
    """`/path[:SIZE][:memory]`, e.g. /scratch:20Gi or /dev/shm:memory:1Gi."""
    form = "use --scratch /path[:SIZE][:memory], e.g. /scratch:20Gi or /ramdisk:memory:1Gi"
    parts = text.split(":")
    path, size, memory = parts[0], None, False
    for part in parts[1:]:
        if part == "memory" and not memory:
            memory = True
        elif size is None and QUANTITY_RE.match(part):
            size = part
        else:
            raise ValueError(f"--scratch {text!r}: {part!r} is not a size or 'memory'; {form}")
    return Scratch(mount_path(path, f"--scratch {text!r}"), size, memory)


def node_selector(text: str) -> tuple[str, str]:
    """`KEY=VALUE`, a node label."""
    key, sep, value = text.partition("=")
    if not sep or not label_key(key) or not LABEL_VALUE_RE.match(value):
        raise ValueError(
            f"--node-selector {text!r} is not a node label KEY=VALUE, "
            "e.g. kubernetes.io/arch=amd64 or agentpool=highmem"
        )
    return key, value


def toleration(text: str) -> Toleration:
    """kubectl's taint spelling: `KEY[=VALUE][:EFFECT]`."""
    spec, _, effect = text.partition(":")
    key, sep, value = spec.partition("=")
    if (
        not label_key(key)
        or (effect and effect not in EFFECTS)
        or (sep and not LABEL_VALUE_RE.match(value))
    ):
        raise ValueError(
            f"--toleration {text!r} is not KEY[=VALUE][:EFFECT] with EFFECT one of "
            f"{', '.join(EFFECTS)}, e.g. sku=gpu:NoSchedule or "
            "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
        )
    return Toleration(key, value if sep else None, effect or None)


def label_key(key: str) -> bool:
    """A label key: [DNS subdomain prefix/]name."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not SUBDOMAIN_RE.match(prefix)):
        return False
    return bool(LABEL_NAME_RE.match(name))


def mount_path(path: str, what: str) -> str:
    clean = "/" + "/".join(p for p in path.split("/") if p)
    if not path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"{what}: mount path {path!r} must be absolute, without '..'")
    for reserved in RESERVED_PATHS:
        if clean == reserved or clean.startswith(reserved + "/") or clean == "/":
            raise ValueError(
                f"{what}: mount path {clean!r} is used by byok8s itself "
                f"({', '.join(RESERVED_PATHS)}) or is '/'; pick another path"
            )
    return clean


def unique_paths(paths: list[str]) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise ValueError(f"mount path {path!r} is used twice; give each volume its own path")
        seen.add(path)
