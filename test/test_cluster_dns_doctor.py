"""`byok8s fix-dns` and `byok8s doctor` on the local cluster.

The local cluster has no CoreDNS, so the DNS tests run a stand-in: a Deployment
`kube-system/coredns` (pods labelled k8s-app=kube-dns) that reads its Corefile
from the ConfigMap `coredns` like CoreDNS does, and crashes with CoreDNS's own
loop message while the Corefile forwards to /etc/resolv.conf."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import run_cli
from kubernetes import client as k8s
from localcluster import Cluster
from test_dns import MINIKUBE

from byok8s import dns

pytestmark = pytest.mark.cluster

STANDIN = r"""
import pathlib, sys, time
corefile = pathlib.Path("/etc/coredns/Corefile").read_text()
print(".:53\nCoreDNS-1.11.1 (byok8s test stand-in)", flush=True)
if "BROKEN" in corefile:
    print("[FATAL] plugin/kubernetes: cannot list services: connection refused", flush=True)
    sys.exit(2)
if "/etc/resolv.conf" in corefile:
    print('[FATAL] plugin/loop: Loop (127.0.0.1:41343 -> :53) detected for zone ".", see '
          'https://coredns.io/plugins/loop#troubleshooting.', flush=True)
    sys.exit(1)
pathlib.Path("/tmp/ready").touch()
time.sleep(3600)
"""


def standin(image: str) -> k8s.V1Deployment:
    labels = {"k8s-app": "kube-dns"}
    container = k8s.V1Container(
        name="coredns", image=image, command=["python3", "-c", STANDIN],
        volume_mounts=[k8s.V1VolumeMount(name="config", mount_path="/etc/coredns")],
        readiness_probe=k8s.V1Probe(_exec=k8s.V1ExecAction(command=["test", "-f", "/tmp/ready"]),
                                    period_seconds=1),
    )  # fmt: skip
    volume = k8s.V1Volume(name="config", config_map=k8s.V1ConfigMapVolumeSource(name="coredns"))
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="coredns", labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=1, selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(containers=[container], volumes=[volume],
                                   termination_grace_period_seconds=1)),
        ),
    )  # fmt: skip


@pytest.fixture
def coredns(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Start the stand-in CoreDNS with a given Corefile; removed after the test."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    api = cluster.api()
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)

    def start(corefile: str) -> None:
        core.create_namespaced_config_map("kube-system", {
            "metadata": {"name": "coredns"}, "data": {"Corefile": corefile}})  # fmt: skip
        apps.create_namespaced_deployment("kube-system", standin(cluster.image))

    yield start
    # In the background: the Deployment's name is free at once (a foreground deletion
    # keeps it, "being deleted", until the garbage collector is done with it, which
    # the next test's Deployment of that name runs into); its pods are waited for.
    for delete in (apps.delete_namespaced_deployment, core.delete_namespaced_config_map):
        try:
            delete("coredns", "kube-system", propagation_policy="Background")
        except k8s.ApiException as exc:
            assert exc.status == 404
    deadline = time.monotonic() + 240  # the garbage collector is slow on a loaded node
    while core.list_namespaced_pod("kube-system", label_selector=dns.SELECTOR).items or any(
        d.metadata.name == "coredns" for d in apps.list_namespaced_deployment("kube-system").items
    ):
        assert time.monotonic() < deadline, "stand-in CoreDNS did not go away"
        time.sleep(0.5)


def wait_for(cluster: Cluster, state: str, seconds: float = 90) -> dns.Diagnosis:
    core = k8s.CoreV1Api(cluster.api())
    deadline = time.monotonic() + seconds
    while (found := dns.diagnose(core)).state != state:
        assert time.monotonic() < deadline, found
        time.sleep(1)
    return found


def corefile(cluster: Cluster) -> tuple[str, str]:
    cm = k8s.CoreV1Api(cluster.api()).read_namespaced_config_map("coredns", "kube-system")
    return cm.data["Corefile"], cm.metadata.resource_version


def doctor(*args: str, cwd: Path, env: dict | None = None) -> tuple[int, dict[str, dict]]:
    """The cluster's own job image is always given: the default one would be pulled
    from ghcr.io, away from this machine."""
    assert "--container-image" in args
    done = run_cli("doctor", "--json", *args, cwd=cwd, env=env, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, {r["name"]: r for r in json.loads(done.stdout)}


def test_a_cluster_without_coredns_is_left_alone(coredns, tmp_path: Path) -> None:
    done = run_cli("fix-dns", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "no CoreDNS in kube-system (no pods labelled k8s-app=kube-dns)",
        "nothing changed",
    ]


def test_fix_dns_finds_the_loop_shows_the_change_and_fixes_it(
    cluster: Cluster, coredns, namespace: str, tmp_path: Path
) -> None:
    coredns(MINIKUBE)
    looping = wait_for(cluster, dns.LOOP)
    assert "plugin/loop: Loop (127.0.0.1:41343 -> :53) detected" in looping.detail

    code, found = doctor("-k", namespace, "--container-image", cluster.image, cwd=tmp_path)
    assert (code, found["cluster DNS"]["status"]) == (5, "FAIL")
    assert found["cluster DNS"]["fix"] == "run 'byok8s fix-dns'"

    dry = run_cli("fix-dns", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "-    forward . /etc/resolv.conf {\n+    forward . 8.8.8.8 8.8.4.4 {" in dry.stdout
    assert dry.stdout.rstrip().endswith("dry run: nothing changed")
    assert corefile(cluster)[0] == MINIKUBE

    started = time.monotonic()
    fixed = run_cli("fix-dns", cwd=tmp_path, timeout=200)
    assert fixed.returncode == 0, fixed.stderr
    assert "fixed: CoreDNS is healthy (1 pod Ready)" in fixed.stdout
    print(f"fix-dns took {time.monotonic() - started:.1f} s")
    text, version = corefile(cluster)
    assert text == dns.fixed_corefile(MINIKUBE) and "host.minikube.internal" in text
    healthy = wait_for(cluster, dns.HEALTHY, 5)
    assert not set(healthy.pods) & set(looping.pods)  # restarted

    again = run_cli("fix-dns", cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout.splitlines() == ["CoreDNS is healthy (1 pod Ready)", "nothing changed"]
    assert corefile(cluster)[1] == version
    code, found = doctor("-k", namespace, "--container-image", cluster.image, cwd=tmp_path)
    assert found["cluster DNS"]["status"] == "ok"


def test_coredns_failing_for_another_reason_is_reported_not_changed(
    cluster: Cluster, coredns, tmp_path: Path
) -> None:
    coredns(MINIKUBE.replace("    cache 30\n", "    cache 30\n    # BROKEN\n"))
    wait_for(cluster, dns.FAILING)
    done = run_cli("fix-dns", cwd=tmp_path)
    assert done.returncode == 5
    error = [ln for ln in done.stderr.splitlines() if ln.startswith("byok8s: error: ")]
    assert len(error) == 1 and "not with the forwarding loop" in error[0]
    assert "plugin/kubernetes: cannot list services" in error[0] and "--force" in error[0]
    assert "BROKEN" in corefile(cluster)[0]


def test_doctor_passes_with_the_cluster_bucket_and_image(
    cluster: Cluster, cluster_s3: dict, namespace: str, tmp_path: Path
) -> None:
    code, found = doctor(
        "-k", namespace, "--bucket", f"s3://{cluster_s3['bucket']}/doctor",
        "--s3-endpoint-url", cluster_s3["endpoint"], "--container-image", cluster.image,
        cwd=tmp_path, env={"KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    assert code == 0, found
    assert {n: r["status"] for n, r in found.items()} == {
        "kubeconfig": "ok", "cluster": "ok", "namespace": "ok", "permissions": "ok",
        "cluster DNS": "warn",  # no CoreDNS here: pods reach storage by IP
        "bucket": "ok", "job credentials": "ok",
        "image": "skip",  # the local tag names no snakemake version
    }  # fmt: skip
    assert "Kubernetes v1.20" in found["cluster"]["detail"]
    assert "on node" in found["image"]["detail"]
    assert cluster_s3["client"].list_objects_v2(Bucket=cluster_s3["bucket"])["KeyCount"] == 0


def test_doctor_names_a_missing_namespace(cluster: Cluster, tmp_path: Path) -> None:
    code, found = doctor("-k", "no-such-namespace", "--container-image", cluster.image,
                         cwd=tmp_path, env={"KUBECONFIG": str(cluster.kubeconfig)})  # fmt: skip
    assert code == 5
    assert found["namespace"]["status"] == "FAIL"
    assert "'no-such-namespace' does not exist" in found["namespace"]["detail"]
    assert "kubectl create namespace no-such-namespace" in found["namespace"]["fix"]
    assert found["permissions"]["status"] == "skip"


def test_doctor_lists_what_a_user_may_not_do(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    env = {"KUBECONFIG": str(cluster.kubeconfig_as("limited", tmp_path / "limited.yaml"))}
    code, found = doctor("-k", namespace, "--container-image", cluster.image, cwd=tmp_path, env=env)
    assert code == 5 and found["namespace"]["status"] == "FAIL"
    assert "refused access" in found["namespace"]["detail"]
    assert "HTTP 403" in found["namespace"]["detail"]

    rbac = k8s.RbacAuthorizationV1Api(cluster.api())
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "some"}, "rules": [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]})  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "some"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "some"},
        "subjects": [{"kind": "User", "name": "limited"}]})  # fmt: skip
    code, found = doctor("-k", namespace, "--container-image", cluster.image, cwd=tmp_path, env=env)
    # It may not read Namespace objects, but may list pods there: the namespace is usable.
    assert code == 5 and found["namespace"]["status"] == "ok", found["namespace"]
    assert found["permissions"]["status"] == "FAIL"
    assert found["permissions"]["detail"] == (
        f"not allowed in {namespace!r}: delete jobs, watch pods, get pods/log, "
        "create secrets, patch secrets, delete secrets"
    )
    assert found["cluster DNS"]["status"] == "warn"  # may not read kube-system
    assert "403" in found["cluster DNS"]["detail"]


def test_the_readme_role_is_enough_for_doctor_and_a_real_run(
    cluster: Cluster, cluster_s3: dict, namespace: str, tmp_path: Path
) -> None:
    import yaml

    root = Path(__file__).resolve().parent.parent
    role = yaml.safe_load((root / "byok8s-role.yml").read_text())
    rbac = k8s.RbacAuthorizationV1Api(cluster.api())
    rbac.create_namespaced_role(namespace, role)
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "byok8s-runner"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "byok8s-runner"},
        "subjects": [{"kind": "User", "name": "limited"}]})  # fmt: skip
    env = {"KUBECONFIG": str(cluster.kubeconfig_as("limited", tmp_path / "limited.yaml"))}
    bucket = ["--bucket", f"s3://{cluster_s3['bucket']}/rbac",
              "--s3-endpoint-url", cluster_s3["endpoint"]]  # fmt: skip
    # A namespace-scoped user: no ClusterRole, not even to read its Namespace.
    code, found = doctor(
        "-k", namespace, *bucket, "--container-image", cluster.image, cwd=tmp_path, env=env
    )
    assert found["namespace"]["status"] == "ok" and found["permissions"]["status"] == "ok"
    done = run_cli("workflow-alpha", "params-blue", *bucket, "-k", namespace,
                   "--container-image", cluster.image, cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    body = cluster_s3["client"].get_object(Bucket=cluster_s3["bucket"], Key="rbac/alpha.txt")
    assert body["Body"].read().decode().strip() == "alpha blue"
