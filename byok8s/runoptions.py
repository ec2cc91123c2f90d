"""The options of `byok8s run`, in the order --help shows them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from byok8s.config import EXECUTORS

OPTIONS: list[Callable[[Any], Any]] = [
    click.option("-s", "--snakefile", help="Snakefile to run (overrides the workflow config)."),
    click.option(
        "-k",
        "--k8s-namespace",
        default="default",
        show_default=True,
        help="Kubernetes namespace for the jobs.",
    ),
    click.option(
        "--bucket",
        metavar="URL",
        help="Object storage for inputs and outputs: s3://NAME[/PREFIX], "
        "az://CONTAINER[/PREFIX] or gs://NAME[/PREFIX].",
    ),
    click.option("--s3-bucket", metavar="NAME", help="Same as --bucket s3://NAME (byok8s 2019)."),
    click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        help="Where jobs run [default: local without a bucket, kubernetes with one].",
    ),
    click.option(
        "-j",
        "--jobs",
        type=int,
        default=10,
        show_default=True,
        help="Jobs (pods) running at once on a cluster.",
    ),
    click.option(
        "--cores",
        type=int,
        help="Cores to use locally [default: all]; on a cluster, a cap on every rule's threads "
        "[default: none].",
    ),
    click.option(
        "--service-account",
        metavar="NAME",
        help="Kubernetes service account for the job pods (e.g. for workload identity).",
    ),
    click.option(
        "--run-as-user",
        type=int,
        default=1000,
        show_default=True,
        metavar="UID",
        help="User id job containers run as, without privileges; 0 runs them as the image's "
        "user (root).",
    ),
    click.option(
        "--pvc",
        multiple=True,
        metavar="CLAIM:PATH[:ro]",
        help="Mount an existing PersistentVolumeClaim into every job pod (repeatable), "
        "read-only with :ro.",
    ),
    click.option(
        "--scratch",
        multiple=True,
        metavar="PATH[:SIZE][:memory]",
        help="An emptyDir scratch volume in every job pod (repeatable), e.g. /scratch:20Gi; "
        ":memory makes it a tmpfs.",
    ),
    click.option(
        "--node-selector",
        multiple=True,
        metavar="KEY=VALUE",
        help="Node label the job pods must run on (repeatable), e.g. agentpool=highmem.",
    ),
    click.option(
        "--toleration",
        multiple=True,
        metavar="KEY[=VALUE][:EFFECT]",
        help="Node taint the job pods tolerate (repeatable), e.g. sku=gpu:NoSchedule.",
    ),
    click.option(
        "--priority-class", metavar="NAME", help="PriorityClass of the job pods (preemption order)."
    ),
    click.option(
        "--image-pull-policy",
        type=click.Choice(("Always", "IfNotPresent", "Never")),
        help="When nodes pull the job image [default: Kubernetes's].",
    ),
    click.option(
        "--image-pull-secret",
        multiple=True,
        metavar="NAME",
        help="Secret with registry credentials for the job image (repeatable).",
    ),
    click.option(
        "--pod-label",
        multiple=True,
        metavar="KEY=VALUE",
        help="Pod label (repeatable).",
    ),
    click.option(
        "--pod-annotation",
        multiple=True,
        metavar="KEY=VALUE",
        help="Annotation on the job pods (repeatable), e.g. "
        "cluster-autoscaler.kubernetes.io/safe-to-evict=false.",
    ),
    click.option(
        "--active-deadline",
        type=click.IntRange(min=1),
        metavar="SECONDS",
        help="A job running longer fails (DeadlineExceeded).",
    ),
    click.option(
        "--default-resources",
        multiple=True,
        metavar="NAME=VALUE",
        help="Resources of rules that do not set them (repeatable), e.g. mem_mb=4000; they "
        "become pod requests (mem_mb also the memory limit).",
    ),
    click.option(
        "--cpu-scalar",
        type=click.FloatRange(min=0.01, max=1.0),
        default=0.95,
        show_default=True,
        metavar="FACTOR",
        help="A pod requests threads x FACTOR CPUs (lower it for rules whose threads are "
        "mostly idle, or to fit a rule's threads on smaller nodes).",
    ),
    click.option(
        "--pending-timeout",
        type=int,
        default=900,
        show_default=True,
        metavar="SECONDS",
        help="Fail a job whose pod has not started after this long (unschedulable, image "
        "pull), with the reason; 0 waits forever.",
    ),
    click.option(
        "--container-image",
        metavar="IMAGE",
        help="Image for the job pods [default: the output of 'byok8s image'; build it from "
        "the Dockerfile].",
    ),
    click.option(
        "--envvars",
        multiple=True,
        metavar="NAME",
        help="Environment variable passed to jobs (repeatable, or comma-separated); "
        "values travel in a Kubernetes Secret.",
    ),
    click.option(
        "--s3-endpoint-url",
        metavar="URL",
        help="S3-compatible endpoint (MinIO, Ceph, ...) instead of AWS.",
    ),
    click.option(
        "--workdir",
        type=click.Path(file_okay=False),
        default=".",
        show_default=True,
        help="Working directory for the run (local outputs land here).",
    ),
    click.option("-n", "--dry-run", is_flag=True, help="Show what would run; run nothing."),
    click.option("-F", "--forceall", is_flag=True, help="Rerun every job, even if up to date."),
    click.option(
        "--unlock",
        is_flag=True,
        help="Remove the locks a killed run left (on the bucket prefix and in the working "
        "directory), then exit.",
    ),
    click.option(
        "-f",
        "--follow",
        is_flag=True,
        help="Show every job's pod log as it is written, each line prefixed with its rule and job.",
    ),
    click.option("--keep-going", is_flag=True, help="Go on with independent jobs after a failure."),
    click.option(
        "--retries", type=int, default=0, show_default=True, help="Times to retry a failed job."
    ),
    click.option(
        "--infra-retries",
        type=int,
        default=3,
        show_default=True,
        metavar="N",
        help="Times a job whose pod was evicted, preempted or deleted is submitted again "
        "(with back-off), not counted against --retries.",
    ),
    click.option("--use-conda", is_flag=True, help="Run jobs in their rules' conda environments."),
    click.option(
        "--keep-sources",
        is_flag=True,
        help="Keep the workflow sources uploaded to the bucket for the jobs (removed at the end "
        "by default).",
    ),
    click.option(
        "--az-batch-account-url",
        metavar="URL",
        help="Azure Batch: the account, https://ACCOUNT.REGION.batch.azure.com.",
    ),
    click.option("--az-batch-resource-group", metavar="NAME", help="Azure Batch: resource group."),
    click.option("--az-batch-subscription-id", metavar="ID", help="Azure Batch: its subscription."),
    click.option(
        "--az-batch-vm-size",
        metavar="SIZE",
        help="Azure Batch: the pool's VM size [default: Standard_D2_v3].",
    ),
    click.option(
        "--az-batch-nodes",
        type=int,
        metavar="N",
        help="Azure Batch: the pool's nodes, or its most with --az-batch-autoscale [default: 1].",
    ),
    click.option(
        "--az-batch-autoscale",
        is_flag=True,
        help="Azure Batch: size the pool to the tasks.",
    ),
    click.option(
        "--az-batch-tasks-per-node",
        type=int,
        metavar="N",
        help="Azure Batch: tasks a node runs at once.",
    ),
    click.option(
        "--az-batch-spot",
        is_flag=True,
        help="Azure Batch: spot (low-priority) nodes.",
    ),
    click.option(
        "--az-batch-keep-pool",
        is_flag=True,
        help="Azure Batch: keep the pool after the run.",
    ),
    click.option(
        "--az-batch-identity",
        metavar="RESOURCE_ID",
        help="Azure Batch: a user-assigned managed identity for the nodes (storage, registry).",
    ),
    click.option(
        "--az-batch-identity-client-id",
        metavar="ID",
        help="Azure Batch: its client id.",
    ),
    click.option("-v", "--verbose", is_flag=True, help="Show Snakemake's output and tracebacks."),
]


def run_options(command: Any) -> Any:
    for option in reversed(OPTIONS):
        command = option(command)
    return command
