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


PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# What a run or a rule may set about where and how its pods run, with the forms
# a workflow config gives them in (rule resources give each as one string).
SCHEDULING_KEYS = (
    "node_selector",  # {KEY: VALUE} | "KEY=VALUE,..."
    "toleration",  # ["KEY[=VALUE][:EFFECT]", ...] | "A,B"
    "affinity",  # a Kubernetes Affinity mapping (workflow config only)
    "priority_class",
    "service_account",
    "image_pull_policy",
    "image_pull_secret",  # ["NAME", ...] | "A,B"
    "label",  # {KEY: VALUE} | "KEY=VALUE,..."
    "annotation",  # {KEY: VALUE} | "KEY=VALUE,..."
    "active_deadline",  # seconds
    "image",  # the rule's own image (wins over its container: directive)
    "spot",  # true | false: prefer spot nodes, the last infrastructure retry on others
)
# The spot (preemptible) pools' node labels: their nodes are also tainted with them
# (AKS always; GKE and EKS when asked), so a pod that may run there tolerates them.
SPOT_LABELS = (
    ("kubernetes.azure.com/scalesetpriority", "spot"),  # AKS spot node pools
    ("eks.amazonaws.com/capacityType", "SPOT"),  # EKS managed node groups
    ("karpenter.sh/capacity-type", "spot"),  # Karpenter (EKS, AKS)
    ("cloud.google.com/gke-spot", "true"),  # GKE Spot VMs
    ("cloud.google.com/gke-preemptible", "true"),  # GKE preemptible VMs
)
# Image references a rule may give: Snakemake's docker:// prefix is dropped; other
# schemes name Singularity/Apptainer images, which Kubernetes cannot run.
DOCKER_PREFIX = "docker://"
RESOURCE_PREFIX = "k8s_"  # rule resources: k8s_node_selector="disk=ssd", ...


@dataclass(frozen=True)
class Scheduling:
    """Where and how pods run: per run, and per rule on top of it."""

    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    affinity: str | None = None  # JSON of a Kubernetes Affinity
    priority_class: str | None = None
    service_account: str | None = None
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    active_deadline: int | None = None
    image: str | None = None
    spot: bool | None = None  # None: as the run says

    def over(self, base: Scheduling) -> Scheduling:
        """These settings on top of `base`: mappings merged (these win), lists joined,
        single values replaced when set here."""
        return Scheduling(
            node_selector=tuple({**dict(base.node_selector), **dict(self.node_selector)}.items()),
            tolerations=base.tolerations + self.tolerations,
            affinity=self.affinity or base.affinity,
            priority_class=self.priority_class or base.priority_class,
            service_account=self.service_account or base.service_account,
            image_pull_policy=self.image_pull_policy or base.image_pull_policy,
            image_pull_secrets=tuple(
                dict.fromkeys(base.image_pull_secrets + self.image_pull_secrets)
            ),
            labels=tuple({**dict(base.labels), **dict(self.labels)}.items()),
            annotations=tuple({**dict(base.annotations), **dict(self.annotations)}.items()),
            active_deadline=self.active_deadline or base.active_deadline,
            image=self.image or base.image,
            spot=self.spot if self.spot is not None else base.spot,
        )


def scheduling(given: dict, where: str) -> Scheduling:
    """Scheduling from a mapping of SCHEDULING_KEYS (a workflow config's, or a
    rule's resources without their k8s_ prefix); `where` names it in errors."""
    import json

    unknown = sorted(set(given) - set(SCHEDULING_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; use {', '.join(SCHEDULING_KEYS)}")

    def items(key: str) -> list[str]:
        value = given.get(key)
        if value is None:
            return []
        if isinstance(value, dict):
            return [f"{k}={v}" for k, v in value.items()]
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ValueError(f"{where}: {key} must be a mapping, a list of strings or 'A,B'")

    def pairs(key: str, what: str) -> tuple[tuple[str, str], ...]:
        found = []
        for item in items(key):
            k, sep, v = item.partition("=")
            if not sep or not label_key(k) or (what == "label" and not LABEL_VALUE_RE.match(v)):
                raise ValueError(f"{where}: {key} {item!r} is not a {what} KEY=VALUE")
            found.append((k, v))
        return tuple(found)

    def name(key: str) -> str | None:
        value = given.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > 253 or not SUBDOMAIN_RE.match(value):
            raise ValueError(f"{where}: {key} {value!r} is not a Kubernetes name")
        return value

    try:
        tolerations = tuple(toleration(t) for t in items("toleration"))
        selector = tuple(node_selector(n) for n in items("node_selector"))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    policy = given.get("image_pull_policy")
    if policy is not None and policy not in PULL_POLICIES:
        raise ValueError(
            f"{where}: image_pull_policy {policy!r} must be one of {', '.join(PULL_POLICIES)}"
        )
    deadline = given.get("active_deadline")
    if deadline is not None and (
        isinstance(deadline, bool) or not isinstance(deadline, int) or deadline < 1
    ):
        raise ValueError(f"{where}: active_deadline must be whole seconds, 1 or more")
    affinity = given.get("affinity")
    if affinity is not None and not isinstance(affinity, dict):
        raise ValueError(f"{where}: affinity must be a Kubernetes Affinity mapping")
    given_image = given.get("image")
    if given_image is not None:
        given_image = image(given_image, where)
    spot = given.get("spot")
    if isinstance(spot, str) and spot.strip().lower() in ("true", "false"):
        spot = spot.strip().lower() == "true"  # a rule resource is a string
    if spot is not None and not isinstance(spot, bool):
        raise ValueError(f"{where}: spot {spot!r} must be true or false")
    secrets = tuple(items("image_pull_secret"))
    for secret in secrets:
        if not SUBDOMAIN_RE.match(secret):
            raise ValueError(f"{where}: image pull secret {secret!r} is not a Kubernetes name")
    return Scheduling(
        node_selector=selector,
        tolerations=tolerations,
        affinity=json.dumps(affinity, sort_keys=True) if affinity is not None else None,
        priority_class=name("priority_class"),
        service_account=name("service_account"),
        image_pull_policy=policy,
        image_pull_secrets=secrets,
        labels=pairs("label", "label"),
        annotations=pairs("annotation", "annotation"),
        active_deadline=deadline,
        image=given_image,
        spot=spot,
    )


def spot_label(text: str) -> tuple[str, str]:
    """`KEY=VALUE`, the node label of a spot pool byok8s does not know."""
    key, sep, value = text.partition("=")
    if not sep or not label_key(key) or not value or not LABEL_VALUE_RE.match(value):
        raise ValueError(
            f"--spot-label {text!r} is not a node label KEY=VALUE; give your spot pool's "
            "label, e.g. node-pool/capacity=spot"
        )
    return key, value


def image(value: object, where: str) -> str:
    """An image a rule names (`container:` or the workflow config's `image`), as
    Kubernetes takes it: `docker://` dropped."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: image {value!r} is empty; give an image such as "
                         "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8")  # fmt: skip
    text = value[len(DOCKER_PREFIX) :] if value.startswith(DOCKER_PREFIX) else value
    scheme = re.match(r"^([a-z]+)://", text)
    if scheme:
        raise ValueError(f"{where}: image {value!r}: a {scheme.group(1)}:// image is for "
                         "Apptainer; Kubernetes runs OCI images: give docker://NAME "
                         "or NAME")  # fmt: skip
    if any(c.isspace() for c in text) or not text or len(text) > 512:
        raise ValueError(f"{where}: image {value!r} is not an image reference (no spaces); "
                         "e.g. quay.io/biocontainers/samtools:1.16.1--h6899075_1")  # fmt: skip
    return text


def from_resources(resources: dict, rule: str) -> Scheduling:
    """A rule's own k8s_* resources (strings; active_deadline a number)."""
    given = {
        k[len(RESOURCE_PREFIX) :]: v for k, v in resources.items() if k.startswith(RESOURCE_PREFIX)
    }
    if "affinity" in given:
        raise ValueError(
            f"rule {rule}: set affinity in the workflow config's 'rules', not as a resource"
        )
    return scheduling(given, f"rule {rule} resources (k8s_*)")
