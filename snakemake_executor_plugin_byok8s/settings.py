"""The Kubernetes backend's options, each declared once (byok8s.declare.Option):
byok8s's command line, workflow config and README are made from them, and so is
the plugin's ExecutorSettings (executor.py). Imports neither Kubernetes nor
Snakemake: `byok8s --help` reads these."""

from __future__ import annotations

import re
from typing import Any

from byok8s.declare import Option
from snakemake_executor_plugin_byok8s import options

OWNER = "kubernetes"
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _namespace(name: str) -> str:
    if len(name) > 63 or not NAMESPACE_RE.match(name):
        raise ValueError(
            f"namespace {name!r} is not a valid Kubernetes name; use at most 63 lowercase "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
    return name


def _service_account(name: str) -> str:
    if len(name) > 253 or not options.SUBDOMAIN_RE.match(name):
        raise ValueError(
            f"service account {name!r} is not a valid Kubernetes name; use lowercase "
            "letters, digits, '-' and '.'"
        )
    return name


def _pod(**kwargs: Any) -> Option:
    return Option(owner=OWNER, **kwargs)


OPTIONS = (
    _pod(
        name="k8s_namespace",
        short="-k",
        default="default",
        metavar="NAME",
        help="Kubernetes namespace for the job pods.",
        parse=_namespace,
        plugin="namespace",
    ),
    _pod(
        name="service_account",
        metavar="NAME",
        shown="the namespace's default",
        help="Kubernetes service account of the job pods (workload identity, IRSA).",
        parse=_service_account,
        plugin="service_account_name",
    ),
    _pod(
        name="run_as_user",
        type=int,
        default=1000,
        metavar="UID",
        least=0,
        must="a user id (0 or more)",
        plugin="run_as_user",
        help="User id the job containers run as: not root, no privilege escalation, all "
        "capabilities dropped; 0 runs them as the image's user (root).",
    ),
    _pod(
        name="pvc",
        type=list,
        metavar="CLAIM:PATH[:ro]",
        parse=options.claim,
        plugin="pvc",
        help="Mount an existing PersistentVolumeClaim into every job pod (repeatable), "
        "read-only with :ro.",
    ),
    _pod(
        name="scratch",
        type=list,
        metavar="PATH[:SIZE][:memory]",
        parse=options.scratch,
        plugin="scratch",
        help="An emptyDir scratch volume in every job pod (repeatable), "
        "e.g. /scratch:20Gi; :memory makes it a tmpfs.",
    ),
    _pod(
        name="node_selector",
        type=list,
        pairs=True,
        metavar="KEY=VALUE",
        parse=options.node_selector,
        plugin="node_selector",
        help="Node label the job pods must run on (repeatable), e.g. agentpool=highmem.",
    ),
    _pod(
        name="toleration",
        type=list,
        metavar="KEY[=VALUE][:EFFECT]",
        parse=options.toleration,
        plugin="toleration",
        help="Node taint the job pods tolerate (repeatable; kubectl's "
        "taint spelling), e.g. sku=gpu:NoSchedule.",
    ),
    _pod(
        name="priority_class",
        metavar="NAME",
        scheduling="priority_class",
        help="PriorityClass of the job pods (preemption order).",
    ),
    _pod(
        name="image_pull_policy",
        choices=options.PULL_POLICIES,
        shown="Kubernetes's",
        scheduling="image_pull_policy",
        help="When nodes pull the job image.",
    ),
    _pod(
        name="image_pull_secret",
        type=list,
        metavar="NAME",
        scheduling="image_pull_secret",
        help="Secret with registry credentials for the job image (repeatable).",
    ),
    _pod(
        name="pod_label",
        type=list,
        pairs=True,
        metavar="KEY=VALUE",
        scheduling="label",
        help="Label on the job pods (repeatable).",
    ),
    _pod(
        name="pod_annotation",
        type=list,
        pairs=True,
        metavar="KEY=VALUE",
        scheduling="annotation",
        help="Annotation on the job pods (repeatable), e.g. "
        "cluster-autoscaler.kubernetes.io/safe-to-evict=false.",
    ),
    _pod(
        name="active_deadline",
        type=int,
        metavar="SECONDS",
        scheduling="active_deadline",
        help="A job running longer fails (DeadlineExceeded).",
    ),
    _pod(
        name="cpu_scalar",
        type=float,
        default=0.95,
        metavar="FACTOR",
        plugin="cpu_scalar",
        least=0.01,
        most=1.0,
        must="a number above 0 and at most 1",
        help="A pod requests threads x FACTOR CPUs: lower it for rules whose threads are "
        "mostly idle, or to fit a rule's threads on smaller nodes.",
    ),
    _pod(
        name="pending_timeout",
        type=int,
        default=900,
        metavar="SECONDS",
        least=0,
        must="seconds (0 or more; 0 waits forever)",
        plugin="pending_timeout",
        help="Fail a job whose pod has not started after this long (unschedulable, image "
        "pull), with the reason; a pod waiting for room while the run's own pods hold "
        "nodes waits its turn, counted from then; 0 waits forever.",
    ),
    _pod(
        name="infra_retries",
        type=int,
        default=3,
        metavar="N",
        least=0,
        must="0 or more",
        plugin="infra_retries",
        help="Times a job whose pod was evicted, preempted or deleted, or whose node was "
        "lost, is submitted again (2, 4, 8 s back-off), not counted against --retries.",
    ),
    _pod(
        name="node_lost_after",
        type=int,
        default=60,
        metavar="SECONDS",
        least=1,
        must="seconds (1 or more)",
        plugin="node_lost_after",
        help="How long a job's pod stays on a node that stopped answering (NotReady, "
        "unreachable) before it is run again elsewhere (an infrastructure retry); "
        "Kubernetes's own default is 300.",
    ),
    _pod(
        name="spot",
        type=bool,
        scheduling="spot",
        help="Run the job pods on spot (preemptible) nodes where there are some: they "
        "tolerate and prefer the spot pools of AKS, EKS, Karpenter and GKE (and "
        "--spot-label), and a job preempted or evicted on a spot node runs its last "
        "infrastructure retry on an on-demand node. Per rule: spot in the workflow "
        "config's rules.",
    ),
    _pod(
        name="spot_label",
        type=list,
        pairs=True,
        metavar="KEY=VALUE",
        parse=options.spot_label,
        plugin="spot_label",
        help="Node label of a spot pool that --spot does not know (repeatable); its nodes' "
        "taint of the same key is tolerated.",
    ),
    _pod(
        name="follow",
        short="-f",
        type=bool,
        plugin="follow",
        help="Show every job's pod log as it is written, each line prefixed with its rule and job.",
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}
