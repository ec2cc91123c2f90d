"""Talking to the user's Kubernetes API: the client from the kubeconfig, and the
checks every command makes before it relies on the cluster."""

from __future__ import annotations

import logging
import os
from typing import Any

from byok8s.errors import ClusterError

TIMEOUT = (3, 10)  # connect, read seconds for preflight calls


def kubeconfig_path() -> str:
    # Read KUBECONFIG now: the client library reads it once, at import.
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def current_cluster() -> str | None:
    """The kubeconfig's current context and its cluster's name, read from the file
    (no request); None without one."""
    import kubernetes

    try:
        _, active = kubernetes.config.list_kube_config_contexts(kubeconfig_path())
    except Exception:  # noqa: BLE001 - the record says nothing, the run goes on
        return None
    if not active or not active.get("name"):
        return None
    return f"context {active['name']} (cluster {active.get('context', {}).get('cluster')})"


def core_api() -> tuple[Any, Any]:
    """A CoreV1Api and its configuration for the current kubeconfig context."""
    import kubernetes

    config = kubernetes.client.Configuration()
    path = kubeconfig_path()
    try:
        kubernetes.config.load_kube_config(config_file=path, client_configuration=config)
    except (kubernetes.config.ConfigException, OSError) as exc:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=config)
        else:
            raise ClusterError(
                f"no usable kubeconfig at {path} ({short(exc)}); point KUBECONFIG at "
                "your cluster's config (e.g. 'az aks get-credentials', 'minikube start')"
            ) from exc
    config.retries = 0
    if not config.verify_ssl:
        # Said once here instead of a urllib3 warning on every API call of the run.
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        warnings.simplefilter("ignore", InsecureRequestWarning)
    from snakemake_executor_plugin_byok8s.apis import prepare_clients

    api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))
    prepare_clients(api)
    return api, config


def context_name() -> str:
    """The kubeconfig's current context ("in-cluster" inside a pod)."""
    import kubernetes

    try:
        _contexts, active = kubernetes.config.list_kube_config_contexts(
            config_file=kubeconfig_path()
        )
    except (kubernetes.config.ConfigException, OSError):
        return "in-cluster"
    return str(active.get("name", "?"))


def check_namespace(api: Any, host: str, namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        api.read_namespace(namespace, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise ClusterError(
                f"namespace {namespace!r} does not exist on {host}; create it with "
                f"'kubectl create namespace {namespace}' or pass -k/--k8s-namespace"
            ) from exc
        if exc.status == 403 and _may_list_pods(api, namespace):
            return  # a namespace-scoped user: cannot read Namespace objects, may work here
        if exc.status in (401, 403):
            raise ClusterError(
                f"the cluster at {host} refused access to namespace {namespace!r} "
                f"(HTTP {exc.status}); check the kubeconfig user's credentials and RBAC"
            ) from exc
        raise ClusterError(
            f"the cluster at {host} answered HTTP {exc.status}: {exc.reason}"
        ) from exc
    except (HTTPError, OSError) as exc:
        raise ClusterError(
            f"cannot reach the Kubernetes API at {host} ({short(exc)}); check that the "
            "cluster is running and the kubeconfig context is right"
        ) from exc


def short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


def _may_list_pods(api: Any, namespace: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        api.list_namespaced_pod(namespace, limit=1, _request_timeout=TIMEOUT)
    except ApiException:
        return False
    return True


def job_log(namespace: str, k8s_job: str) -> str | None:
    """The log of a Job's newest pod, while the cluster still has it (None if not)."""
    from kubernetes.client.exceptions import ApiException

    from byok8s.errors import Byok8sError
    from snakemake_executor_plugin_byok8s import usage
    from snakemake_executor_plugin_byok8s.podspec import CONTAINER

    try:
        api, _ = core_api()
        pods = api.list_namespaced_pod(
            namespace, label_selector=f"job-name={k8s_job}", _request_timeout=TIMEOUT
        ).items
        if not pods:
            return None
        newest = max(pods, key=lambda p: p.metadata.creation_timestamp)
        text = api.read_namespaced_pod_log(
            newest.metadata.name, namespace, container=CONTAINER, _request_timeout=TIMEOUT
        )
        return usage.without(str(text))  # the usage line is the record's, not the reader's
    except (ApiException, Byok8sError, OSError) as exc:
        logging.getLogger(__name__).debug("no log from the cluster: %s", exc)
        return None
