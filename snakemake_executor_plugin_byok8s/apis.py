"""Every Kubernetes API group/version byok8s calls: this plugin, the stock
Kubernetes plugin it extends, and byok8s's doctor, fix-dns, logs and --unlock.
test_kube_apis.py finds the API clients the code uses and checks them against
this list, and the list against the versions current Kubernetes removed.

Each is GA (core v1 since Kubernetes 1.0, batch/v1 Jobs since 1.2,
authorization.k8s.io/v1 since 1.6) and none is deprecated in any release since,
so every current release serves them. The tests call them on Kubernetes 1.20
(test/cluster/, built from Debian's source); newer releases are checked only
by this list.
"""

from __future__ import annotations

# group/version: what byok8s does with it
API_VERSIONS = {
    "v1": "pods (listed, watched, their logs), Secrets, namespaces, nodes, and "
    "CoreDNS's ConfigMap (fix-dns)",
    "batch/v1": "Jobs, one per job (or group) of the workflow",
    "authorization.k8s.io/v1": "SelfSubjectAccessReview: doctor's permission checks",
}
# The kubernetes client's classes for them (VersionApi reads /version, no group).
CLIENTS = {
    "CoreV1Api": "v1",
    "BatchV1Api": "batch/v1",
    "AuthorizationV1Api": "authorization.k8s.io/v1",
}
# Versions Kubernetes no longer serves, with the release that removed them
# (kubernetes.io/docs/reference/using-api/deprecation-guide); none may be called.
REMOVED = {
    "batch/v1beta1": "1.25",
    "batch/v2alpha1": "1.21",
    "policy/v1beta1": "1.25",
    "authorization.k8s.io/v1beta1": "1.22",
    "rbac.authorization.k8s.io/v1beta1": "1.22",
    "scheduling.k8s.io/v1beta1": "1.22",
    "extensions/v1beta1": "1.22",
    "apps/v1beta1": "1.16",
    "apps/v1beta2": "1.16",
    "autoscaling/v2beta1": "1.25",
    "autoscaling/v2beta2": "1.26",
}


def user_agent() -> str:
    """How byok8s names itself to the API server (its audit log shows this, so a
    cluster's admins can tell byok8s's requests from other clients')."""
    from importlib import metadata

    try:
        version = metadata.version("byok8s")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"byok8s/{version}"


def prepare_clients(*apis: object) -> None:
    """Every API client of `apis` says it is byok8s (the kubernetes library's
    default is "OpenAPI-Generator/VERSION/python", the same for every client), and
    decodes its responses the cheap way (decode.py)."""
    from snakemake_executor_plugin_byok8s.decode import cheap_decoding

    for api in apis:
        client = api.api_client  # type: ignore[attr-defined]
        client.user_agent = user_agent()
        cheap_decoding(client)
