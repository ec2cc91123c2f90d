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
    yield _image(opts.container_image, core)


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


def _image(image: str | None, core: Any) -> Check:
    from importlib.metadata import version

    from byok8s.image import default_image

    image = image or default_image()
    local = version("snakemake")
    found = SNAKEMAKE_TAG_RE.search(image.rpartition(":")[2] if ":" in image else "")
    where = _on_nodes(core, image)
    if not found:
        return Check("image", SKIP, f"{image}: its tag does not name a snakemake version "
                     f"(local {local}); make sure it matches{where}")  # fmt: skip
    if found["version"] != local:
        return Check("image", FAIL, f"{image} has snakemake {found['version']}, this machine "
                     f"{local}", "build the image for this version (README: The job image) or "
                     f"install snakemake=={found['version']} here", ExitCode.CONFIG)  # fmt: skip
    return Check("image", OK, f"{image}: snakemake {local} as here{where}")


def _on_nodes(core: Any, image: str) -> str:
    """'; on node X' / '; on no node yet (pulled at the first job)' (cluster known)."""
    if core is None:
        return ""
    try:
        nodes = core.list_node(_request_timeout=TIMEOUT).items
    except Exception:  # noqa: BLE001 - only a hint; reading nodes is often not allowed
        return ""
    want = _full_reference(image)
    names = [n.metadata.name for n in nodes if any(
        want in map(_full_reference, i.names or []) for i in (n.status.images or []))]  # fmt: skip
    if names:
        return f"; on node {', '.join(names)}"
    return "; on no node yet (pulled at the first job)"


def _full_reference(image: str) -> str:
    """docker.io/library/NAME:TAG for NAME:TAG, as container runtimes report it."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image
