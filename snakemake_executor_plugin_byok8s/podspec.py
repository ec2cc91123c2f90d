"""The Kubernetes Job byok8s submits for one Snakemake job.

Same contents as the stock executor's (container `snakemake` in /workdir on an
emptyDir, resources from the rule, credentials as Secret references, persistent
volumes, GPU requests and tolerations, machine type selector) plus: labels that
name the run, rule and job, and the workflow sources mounted from the run's
Secret instead of a second Snakemake start in every pod to fetch them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from snakemake_executor_plugin_byok8s import runtime
from snakemake_executor_plugin_byok8s.options import (
    SPOT_LABELS,
    Claim,
    Scheduling,
    Scratch,
    Toleration,
)
from snakemake_executor_plugin_byok8s.settings import BY_NAME

CONTAINER = "snakemake"
RUNTIME = "byok8s-runtime"  # the container (and volume) that brings the job runtime
RUN_LABEL = "byok8s.io/run"
RULE_LABEL = "byok8s.io/rule"
JOBID_LABEL = "byok8s.io/jobid"
FALLBACK_LABEL = "byok8s.io/fallback"  # "on-demand": a spot job's last try, off spot nodes
# The taints of a node that stopped answering: a pod tolerates them node_lost_after s.
NODE_LOST_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
SOURCES_KEY = "byok8s-sources.tar.xz"
SOURCES_DIR = "/byok8s/sources"
GPU_VENDORS = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
DEFAULT_USER: int = BY_NAME["run_as_user"].default  # unless asked otherwise
TERMINATION_GRACE = 5  # seconds

# Unpacks the workflow sources (Snakefile, scripts, config) into the work dir:
# a plain Python start, not a Snakemake one.
UNPACK = (
    "python -c 'import sys, tarfile; t = tarfile.open(sys.argv[1]); "
    't.extractall(**({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))\' '
    f"{SOURCES_DIR}/{SOURCES_KEY}"
)
# In a rule's own image: the runtime's Python, checked first so that an image it
# cannot run in fails at once, with one line, instead of in the middle of a job.
RUNTIME_FAILED = 121  # the exit code of that check (status.py names it)
RUNTIME_READY = f"{runtime.MOUNT}/.ready"  # written by the copy when done
RUNTIME_BROKEN = f"{runtime.MOUNT}/.failed"  # written by the copy when it failed
RUNTIME_REQUESTS = {"cpu": "10m", "memory": "16Mi"}  # the copy's (cp, for a second)
RUNTIME_DISK = "512Mi"  # room for the runtime (about 260 MB) where disk is limited


def runtime_check(image: str) -> str:
    said = shlex.quote(f"byok8s: the job runtime does not run in image {image}")
    return f"{runtime.COMMAND} -c '' || {{ echo {said} >&2; exit {RUNTIME_FAILED}; }}"


# A user without a passwd entry (run_as_user) has no name, which Snakemake asks
# for (getpass), and gets HOME=/, which it cannot write to.
USER_ENV = 'export USER="${USER:-byok8s}"; [ -w "$HOME" ] || export HOME=/tmp'


@dataclass(frozen=True)
class PodSettings:
    image: str
    secret: str  # the run's Secret: credentials and (when small) the sources
    env_keys: Mapping[str, str] = field(default_factory=dict)  # secret key -> env name
    sources_in_secret: bool = True
    cpu_scalar: float = 0.95
    privileged: bool = False
    run_as_user: int | None = DEFAULT_USER  # 0 or None: as the image says (root)
    claims: Sequence[Claim] = ()
    scratch: Sequence[Scratch] = ()
    scheduling: Scheduling = Scheduling()  # the run's; a job's own is given to job_body
    spot_labels: Sequence[tuple[str, str]] = SPOT_LABELS  # and --spot-label's
    node_lost_after: int | None = BY_NAME["node_lost_after"].default  # None: Kubernetes's
    # The plugin's ExecutorSettings: every declared option by its name (settings.py).
    options: Any = None


def label_value(text: str) -> str:
    """A valid label value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63].strip("_.-") or "x"


def job_body(
    name: str,
    run: str,
    rule: str,
    jobid: int,
    command: str,
    resources: Mapping[str, Any],
    settings: PodSettings,
    scheduling: Scheduling | None = None,
    image: str | None = None,
    on_demand: bool = False,
) -> k8s.V1Job:
    """The Job for one Snakemake job; `scheduling` is the job's own (its rule's on top
    of the run's), the run's when None; `image` its rule's own image, when it is not
    the job image: then a container of the job image brings the job runtime
    (runtime.py), and `command` must start it from there (jobcommand.through_jobrun);
    `on_demand`: kept off spot nodes (a spot job's last infrastructure retry)."""
    plan = scheduling if scheduling is not None else settings.scheduling
    own = bool(image) and image != settings.image
    image = image if own and image else settings.image
    unpack = UNPACK.replace("python", runtime.COMMAND, 1) if own else UNPACK
    script = f"{unpack} && {command}" if settings.sources_in_secret else command
    labels = {
        **dict(plan.labels),
        "app": "snakemake",
        RUN_LABEL: run,
        RULE_LABEL: label_value(rule),
        JOBID_LABEL: str(jobid),
    }  # byok8s's own labels win over the user's
    if on_demand:
        labels[FALLBACK_LABEL] = "on-demand"
    container = k8s.V1Container(
        name=CONTAINER,
        image=image,
        command=["/bin/sh"],
        args=[
            "-c",
            f"{waiting_for_runtime()}; {runtime_check(image)} && {script}" if own else script,
        ],  # fmt: skip
        working_dir="/workdir",
        env=[
            k8s.V1EnvVar(
                name=env,
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=settings.secret, key=key)
                ),
            )
            for key, env in sorted(settings.env_keys.items())
        ],
        resources=_resources(resources, settings.cpu_scalar),
        volume_mounts=[k8s.V1VolumeMount(name="workdir", mount_path="/workdir")],
    )
    volumes = [k8s.V1Volume(name="workdir", empty_dir=k8s.V1EmptyDirVolumeSource())]
    copy = [_runtime(container, volumes, settings.image)] if own else []
    if settings.sources_in_secret:
        container.volume_mounts.append(
            k8s.V1VolumeMount(name="byok8s-sources", mount_path=SOURCES_DIR, read_only=True)
        )
        volumes.append(
            k8s.V1Volume(
                name="byok8s-sources",
                secret=k8s.V1SecretVolumeSource(
                    secret_name=settings.secret,
                    items=[k8s.V1KeyToPath(key=SOURCES_KEY, path=SOURCES_KEY)],
                ),
            )
        )
    _add_volumes(container, volumes, settings)
    pod_security = None
    if settings.privileged:
        container.security_context = k8s.V1SecurityContext(privileged=True)
        for each in copy:
            each.security_context = container.security_context
    elif settings.run_as_user:
        uid = settings.run_as_user
        pod_security = k8s.V1PodSecurityContext(
            run_as_user=uid, run_as_group=uid, fs_group=uid, run_as_non_root=True
        )
        container.security_context = k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        )
        for each in copy:
            each.security_context = container.security_context
        # A user without a passwd entry gets HOME=/, which it cannot write to.
        container.args[1] = f"{USER_ENV}; {container.args[1]}"
    pod = k8s.V1PodSpec(
        # A job's shell runs as PID 1 and ignores SIGTERM: waiting 30 s for it
        # only delays cancellation and node drains.
        termination_grace_period_seconds=TERMINATION_GRACE,
        security_context=pod_security,
        containers=[*copy, container],  # the copy first: the kubelet starts them in order
        volumes=volumes,
        restart_policy="Never",
        node_selector={**_node_selector(resources), **dict(plan.node_selector)} or None,
        tolerations=(
            _tolerations(plan.tolerations)
            + _gpu_tolerations(resources)
            + _placement_tolerations(plan, settings)
        )
        or None,
        affinity=_affinity(plan, settings.spot_labels, on_demand),
        priority_class_name=plan.priority_class,
        service_account_name=plan.service_account,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in plan.image_pull_secrets]
        or None,
    )
    container.image_pull_policy = plan.image_pull_policy
    for each in copy:
        each.image_pull_policy = plan.image_pull_policy
    template = k8s.V1ObjectMeta(labels=labels, annotations=dict(plan.annotations) or None)
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=plan.active_deadline,
            template=k8s.V1PodTemplateSpec(metadata=template, spec=pod),
        ),
    )


def _runtime(container: k8s.V1Container, volumes: list, job_image: str) -> k8s.V1Container:
    """The container (of the job image) that copies the job runtime into an emptyDir
    the job's container mounts read-only at runtime.MOUNT, and then ends. It runs
    beside the job's container, which waits for it (waiting_for_runtime), not before
    it as an init container: the kubelet starts a pod's next container only after it
    notices the init container ended, up to a second (its relist) per job."""
    volumes.append(k8s.V1Volume(name=RUNTIME, empty_dir=k8s.V1EmptyDirVolumeSource()))
    container.volume_mounts.append(
        k8s.V1VolumeMount(name=RUNTIME, mount_path=runtime.MOUNT, read_only=True)
    )
    # Timestamps kept: the .pyc files stay valid (the mount point's own are not ours).
    # In the background, so that the shell (PID 1, deaf to signals it does not trap)
    # ends at once when the pod is deleted, as when the job failed before the copy did.
    copy = (f"trap 'exit 143' TERM; cd {runtime.BUILT} && {{ cp -dR --preserve=mode,"
            f"timestamps -- * {runtime.MOUNT}/ & wait $!; }} && : > {RUNTIME_READY} || "
            f"{{ : > {RUNTIME_BROKEN}; exit 1; }}")  # fmt: skip
    return k8s.V1Container(
        name=RUNTIME,
        image=job_image,
        command=["/bin/sh", "-c", copy],
        resources=_runtime_resources(container.resources),
        volume_mounts=[k8s.V1VolumeMount(name=RUNTIME, mount_path=runtime.MOUNT)],
        termination_message_policy="FallbackToLogsOnError",  # cp's own words, in the status
    )


def _runtime_resources(job: k8s.V1ResourceRequirements) -> k8s.V1ResourceRequirements:
    """The copy's own small requests (a pod asks for the sum of its containers'); and
    room for the runtime on disk where the job's disk is limited, since the pod's
    emptyDirs count against the sum of its containers' limits."""
    requests = dict(RUNTIME_REQUESTS)
    limits = {}
    if "ephemeral-storage" in (job.limits or {}):
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = RUNTIME_DISK
    return k8s.V1ResourceRequirements(requests=requests, limits=limits or None)


def waiting_for_runtime() -> str:
    """The job's container's first step in a rule's own image: wait until the runtime
    is copied (sleep's fractions where it has them), or stop if the copy failed."""
    nap = "sleep 0.05 2>/dev/null || sleep 1 2>/dev/null || :"
    return (f"until [ -e {RUNTIME_READY} ]; do [ -e {RUNTIME_BROKEN} ] && exit {RUNTIME_FAILED}; "
            f"{nap}; done")  # fmt: skip


def _add_volumes(container: k8s.V1Container, volumes: list, settings: PodSettings) -> None:
    """Persistent volume claims and emptyDir scratch, each under its own path."""
    for i, claim in enumerate(settings.claims):
        name = f"pvc-{i}"
        container.volume_mounts.append(
            k8s.V1VolumeMount(name=name, mount_path=claim.path, read_only=claim.read_only or None)
        )
        source = k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=claim.name, read_only=claim.read_only or None
        )
        volumes.append(k8s.V1Volume(name=name, persistent_volume_claim=source))
    for i, space in enumerate(settings.scratch):
        name = f"scratch-{i}"
        container.volume_mounts.append(k8s.V1VolumeMount(name=name, mount_path=space.path))
        empty = k8s.V1EmptyDirVolumeSource(
            medium="Memory" if space.memory else None, size_limit=space.size
        )
        volumes.append(k8s.V1Volume(name=name, empty_dir=empty))


MEMORY_FLOOR_MB = 256  # Snakemake itself runs in the pod before the job does


def _resources(resources: Mapping[str, Any], cpu_scalar: float) -> k8s.V1ResourceRequirements:
    """Requests from the rule's threads and resources, what the scheduler and the
    cluster autoscaler act on. Memory and GPUs are limits too (a job past its
    mem_mb is OOMKilled, as on a batch system, instead of starving its node; an
    extended resource needs a limit); CPU and disk are limits only with scale=0,
    so a job may use idle cores. The memory limit is never below MEMORY_FLOOR_MB:
    the pod also runs Snakemake itself, which a limit of a few MB (`mem="5MB"`,
    or one inferred from small inputs) kills before the job's command starts."""
    cores = resources.get("_cores", 1)
    wanted: dict[str, str] = {"cpu": f"{int(cores * cpu_scalar * 1000)}m"}
    hard: dict[str, str] = {}
    strict: dict[str, str] = {"cpu": f"{int(cores * 1000)}m"}
    if "mem_mb" in resources:
        wanted["memory"] = f"{resources['mem_mb']}M"
        hard["memory"] = f"{max(int(resources['mem_mb']), MEMORY_FLOOR_MB)}M"
    if "disk_mb" in resources:
        wanted["ephemeral-storage"] = strict["ephemeral-storage"] = f"{resources['disk_mb']}M"
    if "gpu" in resources:
        kind = _gpu_kind(resources)
        wanted[kind] = hard[kind] = str(resources["gpu"])
    limits = hard if resources.get("scale", 1) else {**strict, **hard}
    return k8s.V1ResourceRequirements(requests=wanted, limits=limits or None)


def _node_selector(resources: Mapping[str, Any]) -> dict[str, str]:
    if "machine_type" in resources:
        return {"node.kubernetes.io/instance-type": str(resources["machine_type"])}
    return {}


def _gpu_kind(resources: Mapping[str, Any]) -> str:
    """The extended resource name of the rule's GPUs (nvidia unless it says amd)."""
    manufacturer = str(resources.get("gpu_manufacturer", "nvidia")).lower()
    if manufacturer not in GPU_VENDORS:
        raise ValueError(
            f"unsupported gpu_manufacturer {resources['gpu_manufacturer']!r}; use nvidia or amd"
        )
    return GPU_VENDORS[manufacturer]


def _tolerations(given: Sequence[Toleration]) -> list[k8s.V1Toleration]:
    return [
        k8s.V1Toleration(
            key=t.key,
            operator="Exists" if t.value is None else "Equal",
            value=t.value,
            effect=t.effect,
        )
        for t in given
    ]


def _placement_tolerations(plan: Scheduling, settings: PodSettings) -> list[k8s.V1Toleration]:
    """A spot job tolerates the spot pools' taints; every pod tolerates a node that
    stopped answering for node_lost_after s (Kubernetes's default: 300), unless the
    user's own tolerations say how long."""
    found = []
    if plan.spot:
        found += [
            k8s.V1Toleration(key=k, operator="Equal", value=v) for k, v in settings.spot_labels
        ]
    given = {t.key for t in plan.tolerations}
    if settings.node_lost_after is not None:
        found += [
            k8s.V1Toleration(
                key=taint,
                operator="Exists",
                effect="NoExecute",
                toleration_seconds=settings.node_lost_after,
            )
            for taint in NODE_LOST_TAINTS
            if taint not in given
        ]
    return found


def _affinity(
    plan: Scheduling, spot_labels: Sequence[tuple[str, str]], on_demand: bool
) -> dict[str, Any] | None:
    """The user's affinity, with a spot job's preference for spot nodes, or (its last
    try) a requirement to keep off them, added to it."""
    import json

    affinity = json.loads(plan.affinity) if plan.affinity else {}
    if not (plan.spot or on_demand):
        return affinity or None
    node = dict(affinity.get("nodeAffinity") or {})
    if on_demand:  # every term the user gave (any one will do) also keeps off spot
        away = [{"key": k, "operator": "NotIn", "values": [v]} for k, v in spot_labels]
        required = dict(node.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        required["nodeSelectorTerms"] = [
            {**term, "matchExpressions": [*(term.get("matchExpressions") or []), *away]}
            for term in required.get("nodeSelectorTerms") or [{}]
        ]
        node["requiredDuringSchedulingIgnoredDuringExecution"] = required
    else:
        node["preferredDuringSchedulingIgnoredDuringExecution"] = [
            *(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []),
            *(
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": k, "operator": "In", "values": [v]}]}}
                for k, v in spot_labels
            ),
        ]  # fmt: skip
    return {**affinity, "nodeAffinity": node}


def _gpu_tolerations(resources: Mapping[str, Any]) -> list[k8s.V1Toleration]:
    if "gpu" not in resources:
        return []
    kind = _gpu_kind(resources)
    return [k8s.V1Toleration(key=kind, operator="Equal", value="present", effect="NoSchedule")]
