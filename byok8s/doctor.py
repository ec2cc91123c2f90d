"""`byok8s doctor`: the preflight a cluster run depends on, as a table of checks,
each failure with its fix. Checks run in order; one that cannot run because an
earlier one failed is skipped."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from byok8s.errors import Byok8sError, ExitCode
from byok8s.kube import TIMEOUT, short

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
PROBE_DIR = ".byok8s-doctor"
# What a run does in its namespace: (verb, API group, resource, subresource).
NEEDED = (
    ("create", "batch", "jobs", ""),
    ("list", "batch", "jobs", ""),
    ("delete", "batch", "jobs", ""),
    ("list", "", "pods", ""),
    ("watch", "", "pods", ""),
    ("get", "", "pods", "log"),
    ("create", "", "secrets", ""),
    ("patch", "", "secrets", ""),
    ("delete", "", "secrets", ""),
)
SNAKEMAKE_TAG_RE = re.compile(r"snakemake[-_]?v?(?P<version>\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, WARN, FAIL or SKIP
    detail: str
    fix: str = ""
    exit_code: ExitCode = ExitCode.OK  # what a failure of this check exits with


@dataclass(frozen=True)
class Options:
    namespace: str
    bucket: str | None
    s3_endpoint_url: str | None
    envvars: tuple[str, ...]
    container_image: str | None
    pull_secrets: tuple[str, ...] = ()
    workflow_config: str | None = None  # with params: the rules' own images get a row each
    params: str | None = None
    snakefile: str | None = None


def run(opts: Options, env: Mapping[str, str]) -> list[Check]:
    """Every check, in order, with any secret value (a SAS, a key) blanked out."""
    from dataclasses import replace

    from byok8s.output import Redactor

    secrets: list[str] = []
    checks = list(_checks(opts, env, secrets))
    redact = Redactor(secrets)
    return [replace(c, detail=redact(c.detail), fix=redact(c.fix)) for c in checks]


def exit_code(checks: list[Check]) -> ExitCode:
    return next((c.exit_code for c in checks if c.status == FAIL), ExitCode.OK)


def _failed(name: str, err: Byok8sError) -> Check:
    """A check failed with one of byok8s's errors: 'what failed; how to fix it'."""
    detail, _, fix = err.message.partition("; ")
    return Check(name, FAIL, detail, fix, err.exit_code)


def _checks(opts: Options, env: Mapping[str, str], secrets: list[str]) -> Iterator[Check]:
    from byok8s import kube

    core = None
    try:
        core, config = kube.core_api()
        yield Check("kubeconfig", OK, f"context {kube.context_name()!r}, server {config.host}")
    except Byok8sError as err:
        yield _failed("kubeconfig", err)
        yield Check("cluster", SKIP, "needs a kubeconfig")
    if core is not None:
        reached = _reach(core, config.host)
        yield reached
        if reached.status != OK:
            core = None
    if core is None:
        for name in ("namespace", "permissions", "cluster DNS"):
            yield Check(name, SKIP, "needs a reachable cluster")
    else:
        try:
            kube.check_namespace(core, config.host, opts.namespace)
            yield Check("namespace", OK, f"{opts.namespace!r} exists")
            yield _permissions(core, opts.namespace)
        except Byok8sError as err:
            yield _failed("namespace", err)
            yield Check("permissions", SKIP, "needs the namespace")
        yield _dns(core)
    storage = None
    if not opts.bucket:
        yield Check("bucket", SKIP, "no --bucket given: runs would use this machine")
    else:
        storage, check = _bucket(opts, env)
        secrets.extend(storage.secret_values() if storage else ())
        yield check
    yield _credentials(opts, env, storage)
    yield _image(opts, core)
    yield from _rule_images(opts, core)


def _reach(core: Any, host: str) -> Check:
    import kubernetes
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        info = kubernetes.client.VersionApi(core.api_client).get_code(_request_timeout=TIMEOUT)
    except ApiException as exc:  # fmt: skip
        return Check("cluster", FAIL, f"the API at {host} answered HTTP {exc.status}",
                     "check the kubeconfig user's credentials", ExitCode.CLUSTER)  # fmt: skip
    except (HTTPError, OSError) as exc:
        return Check("cluster", FAIL, f"cannot reach the Kubernetes API at {host} "
                     f"({short(exc)})", "check that the cluster is running and the kubeconfig "
                     "context is right", ExitCode.CLUSTER)  # fmt: skip
    return Check("cluster", OK, f"Kubernetes {info.git_version} answers at {host}")


def _permissions(core: Any, namespace: str) -> Check:
    import kubernetes

    auth = kubernetes.client.AuthorizationV1Api(core.api_client)
    denied = []
    for verb, group, resource, sub in NEEDED:
        review = kubernetes.client.V1SelfSubjectAccessReview(
            spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=kubernetes.client.V1ResourceAttributes(
                    namespace=namespace, verb=verb, group=group, resource=resource,
                    subresource=sub or None)))  # fmt: skip
        answer = auth.create_self_subject_access_review(review, _request_timeout=TIMEOUT)
        if not answer.status.allowed:
            denied.append(f"{verb} {resource}{'/' + sub if sub else ''}")
    if denied:
        return Check("permissions", FAIL, f"not allowed in {namespace!r}: {', '.join(denied)}",
                     "ask your cluster admin for a Role granting these (README: Kubernetes "
                     "permissions)", ExitCode.CLUSTER)  # fmt: skip
    return Check("permissions", OK, "may create, watch and delete Jobs, read pods and their "
                 "logs, manage Secrets")  # fmt: skip


def _dns(core: Any) -> Check:
    from kubernetes.client.exceptions import ApiException

    from byok8s import dns

    try:
        found = dns.diagnose(core)
    except ApiException as exc:
        return Check("cluster DNS", WARN, f"cannot read pods in kube-system (HTTP {exc.status})",
                     "ask your admin whether CoreDNS is healthy")  # fmt: skip
    if found.state == dns.HEALTHY:
        return Check("cluster DNS", OK, found.describe())
    if found.state == dns.LOOP:
        return Check("cluster DNS", FAIL, found.describe(), "run 'byok8s fix-dns'",
                     ExitCode.CLUSTER)  # fmt: skip
    if found.state == dns.FAILING:
        return Check("cluster DNS", FAIL, found.describe(),
                     "see 'kubectl -n kube-system logs -l k8s-app=kube-dns --previous'",
                     ExitCode.CLUSTER)  # fmt: skip
    if found.state == dns.STARTING:
        return Check("cluster DNS", WARN, found.describe(), "wait, then run doctor again")
    return Check("cluster DNS", WARN, found.describe() + ": pods can reach storage by IP only",
                 "use an IP address in --s3-endpoint-url, or install CoreDNS")  # fmt: skip


def _bucket(opts: Options, env: Mapping[str, str]) -> tuple[Any, Check]:
    from byok8s import storage as storages

    try:
        storage = storages.resolve(opts.bucket or "", opts.s3_endpoint_url, env)
    except Byok8sError as err:
        return None, _failed("bucket", err)
    probe = f"{PROBE_DIR}/{uuid.uuid4().hex}"
    data = b"byok8s doctor probe\n"
    try:
        storage.check()
        with storage.errors("write", probe):
            storage.put(probe, data)
        with storage.errors("read", probe):
            back = storage.get(probe)
        with storage.errors("delete", probe):
            storage.delete(probe)
    except Byok8sError as err:
        return storage, _failed("bucket", err)
    if back != data:
        return storage, Check("bucket", FAIL, f"{storage.url} returned other bytes than written",
                              "check the endpoint (a proxy or cache in the way?)",
                              ExitCode.STORAGE)  # fmt: skip
    return storage, Check("bucket", OK, f"{storage.url}: wrote, read back and deleted a probe")


def _credentials(opts: Options, env: Mapping[str, str], storage: Any) -> Check:
    from byok8s.config import parse_envvars

    try:
        names = parse_envvars(opts.envvars, "--envvars", env)
    except Byok8sError as err:
        return _failed("job credentials", err)
    missing = [n for n in (storage.job_envvar_names() if storage else ()) if n not in env]
    if missing:
        fix = "export them; jobs need them to reach the bucket"
        return Check("job credentials", FAIL, f"{', '.join(missing)} not set", fix,
                     ExitCode.STORAGE)  # fmt: skip
    if opts.bucket and storage is None:
        return Check("job credentials", SKIP, "needs a usable bucket URL and credentials")
    parts = [f"storage: {storage.credential_source}"] if storage else []
    parts += [f"--envvars: {', '.join(names)} set"] if names else []
    if not parts:
        return Check("job credentials", SKIP, "no bucket and no --envvars: nothing to pass")
    return Check("job credentials", OK, "; ".join(parts) + " (values go in a per-run Secret)")


def _image(opts: Options, core: Any) -> Check:
    """The job image: its snakemake is this machine's, and the cluster can get it."""
    from importlib.metadata import version

    from byok8s.image import default_image

    image = opts.container_image or default_image()
    local = version("snakemake")
    found = SNAKEMAKE_TAG_RE.search(image.rpartition(":")[2] if ":" in image else "")
    got = _got(core, opts, image)
    if got is not None and got.got is False:
        default = "" if opts.container_image else " (the default)"
        return Check("image", FAIL, f"{image}{default} {got.detail}",
                     "build and push the job image to a registry the cluster can pull from "
                     "(README: The job image) and pass --container-image, or give "
                     "--image-pull-secret", ExitCode.CLUSTER)  # fmt: skip
    where = f"; {got.detail}" if got is not None else ""
    if not found:
        return Check("image", SKIP, f"{image}: its tag does not name a snakemake version "
                     f"(local {local}); make sure it matches{where}")  # fmt: skip
    if found["version"] != local:
        return Check("image", FAIL, f"{image} has snakemake {found['version']}, this machine "
                     f"{local}", "build the image for this version (README: The job image) or "
                     f"install snakemake=={found['version']} here", ExitCode.CONFIG)  # fmt: skip
    return Check("image", OK, f"{image}: snakemake {local} as here{where}")


def _got(core: Any, opts: Options, image: str) -> Any:
    """Whether the cluster can get `image` (None: no cluster to ask)."""
    from byok8s import pull

    if core is None:
        return None
    nodes = pull.on_nodes(core, image)
    if nodes:
        return pull.Found(True, f"on node {', '.join(nodes)}")
    return pull.probe(core, opts.namespace, image, opts.pull_secrets)


def _rule_images(opts: Options, core: Any) -> Iterator[Check]:
    """A row for each image the workflow's rules name (their own images)."""
    from byok8s import workflow_images

    if not (opts.workflow_config or opts.snakefile):
        return
    try:
        images = workflow_images.of(opts.workflow_config, opts.params, opts.snakefile)
    except Byok8sError as err:
        yield _failed("workflow", err)
        return
    if not images:
        yield Check("rule images", OK, "no rule names an image of its own (all run in the "
                    "job image)")  # fmt: skip
    for image, rules in sorted(images.items()):
        name = f"image {image}"
        said = f"rules {', '.join(rules)}" if len(rules) > 1 else f"rule {rules[0]}"
        got = _got(core, opts, image)
        if got is None:
            yield Check(name, SKIP, f"{said}: needs a reachable cluster")
        elif got.got is False:
            yield Check(name, FAIL, f"{said}: {got.detail}",
                        "push it where the cluster can pull it, or give --image-pull-secret "
                        "(or the rule's image_pull_secret in the workflow config)",
                        ExitCode.CLUSTER)  # fmt: skip
        else:
            yield Check(name, OK if got.got else WARN, f"{said}: {got.detail}")
