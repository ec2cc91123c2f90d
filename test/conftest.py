from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import localcluster  # noqa: E402
import services  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SCRUBBED = ("AWS_", "AZ_BLOB_", "AZURE_", "BYOK8S_", "GOOGLE_", "KUBECONFIG", "SNAKEMAKE_")


def _unavailable(reason: str) -> None:
    """A missing service fails in CI and is reported as skipped elsewhere."""
    if IN_CI:
        pytest.fail(f"required test service missing in CI: {reason}")
    pytest.skip(reason)


def group_of(nodeid: str) -> str | None:
    """The worker group of a test, from its id: every test on the one local cluster
    (test_cluster_*.py and the conformance tests' cluster ways) in one, the
    conformance runs on this machine (one session fixture runs them all) in another."""
    path, _, name = nodeid.partition("::")
    module = Path(path).name  # ids start where pytest was started
    if module.startswith("test_cluster_") or (
        module == "test_conformance.py" and name.startswith(("test_cluster[", "test_azure["))
    ):
        return "cluster"
    if module == "test_conformance.py" and name.startswith("test_this_machine"):
        return "this-machine"
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """The tests run on two pytest-xdist workers (pyproject's addopts): each group of
    group_of() on one worker, the biggest (the cluster's) first, and the other tests
    beside them. (xdist's own --dist loadgroup renames items, which pytest 9.2's
    node ids no longer allow.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or nodeid

    return Groups(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The groups are told by test ids: a test that needs the cluster must be in the
    cluster's group, or two workers would start two clusters."""

    def on_cluster(item: pytest.Item) -> bool:
        return "cluster" in getattr(item, "fixturenames", ())

    wrong = [i.nodeid for i in items if on_cluster(i) and group_of(i.nodeid) != "cluster"]
    if wrong:
        raise pytest.UsageError(f"tests on the cluster must be in test_cluster_*.py: {wrong}")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with no cloud credentials, no BYOK8S_* and no kubeconfig,
    and never asks a cloud metadata service (traffic stays on this machine)."""
    for name in list(os.environ):
        if name.startswith(SCRUBBED):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def _serve(start: Callable[[], services.Server]) -> Iterator[services.Server]:
    try:
        server = start()
    except services.ServiceMissing as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[services.Server]:
    yield from _serve(services.start_s3)


S3_KEY, S3_SECRET = "AKIAbyok8stestkey", "byok8s-test-secret-value-0123456789"


@pytest.fixture
def s3(s3_server: services.Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A fresh bucket on the S3 server, with credentials in the environment."""
    yield from _bucket(s3_server, monkeypatch)


def _bucket(s3_server: services.Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    import boto3

    endpoint = f"http://{s3_server.host}:{s3_server.port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
    )
    bucket = f"byok8s-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    yield {"bucket": bucket, "endpoint": endpoint, "client": client}
    try:
        for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
    except client.exceptions.NoSuchBucket:
        pass


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[services.Server]:
    yield from _serve(services.start_azurite)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[services.Server]:
    yield from _serve(services.start_gcs)


@pytest.fixture
def gcs(gcs_server: services.Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A fresh bucket on fake-gcs-server; the environment points the google client
    (and byok8s) at it, as STORAGE_EMULATOR_HOST does for any GCS emulator."""
    yield from _gcs_bucket(gcs_server, monkeypatch)


def _gcs_bucket(gcs_server: services.Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs_client

    url = gcs_server.extra["url"]
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "byok8s-test")
    client = gcs_client.Client(project="byok8s-test", credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": url})  # fmt: skip
    bucket = client.create_bucket(f"byok8s-{uuid.uuid4().hex[:12]}")
    yield {"bucket": bucket.name, "url": url, "client": client}
    for blob in client.list_blobs(bucket.name):
        blob.delete()
    bucket.delete()


@pytest.fixture
def azure(azurite_server: services.Server) -> Iterator[dict]:
    """A fresh container on Azurite, with its URL, key and an account SAS."""
    yield from _container(azurite_server)


def _container(azurite_server: services.Server) -> Iterator[dict]:
    from azure.storage.blob import BlobServiceClient

    url = services.azurite_url(azurite_server)
    service = BlobServiceClient(
        url,
        credential={"account_name": services.AZURITE_ACCOUNT, "account_key": services.AZURITE_KEY},
    )
    name = f"byok8s-{uuid.uuid4().hex[:12]}"
    container = service.create_container(name)
    yield {
        "container": name,
        "client": container,
        "url": url,
        "key": services.AZURITE_KEY,
        "sas": services.azurite_sas(),
    }
    container.delete_container()


# --- The local Kubernetes cluster (test/cluster/), for tests marked `cluster` ---


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[localcluster.Cluster]:
    """A real single-node Kubernetes, started once per session and stopped (by pid)
    at its end, also when tests fail."""
    try:
        running = localcluster.start()
    except localcluster.ClusterMissing as exc:
        _unavailable(str(exc))
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown in CI's log, not captured
        print(
            f"\nlocal cluster: kubeconfig {running.kubeconfig}, job image {running.image}, "
            f"up in {running.setup_seconds:.1f} s",
            flush=True,
        )
    yield running
    running.stop()


NODES = 3  # the multi-node tests' cluster: the first node and two more


@pytest.fixture(scope="module")
def multinode(
    cluster: localcluster.Cluster, pytestconfig: pytest.Config
) -> Iterator[localcluster.Cluster]:
    """The cluster with NODES nodes (up.sh --nodes) for a module of tests marked
    multinode; back to one node after it, as every other test expects."""
    started = time.monotonic()
    cluster.grow(NODES)
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown in CI's log, not captured
        print(f"\nlocal cluster: {NODES} nodes Ready in {time.monotonic() - started:.1f} s",
              flush=True)  # fmt: skip
    yield cluster
    cluster.shrink()


@pytest.fixture
def nodes(multinode: localcluster.Cluster) -> list[str]:
    """The names of the NODES nodes, every one of them Ready (one a test stopped
    starts again)."""
    return multinode.grow(NODES)


@pytest.fixture(scope="session")
def cluster_s3_server(cluster: localcluster.Cluster) -> Iterator[services.Server]:
    """The S3 server on the bridge's gateway address, where pods reach it."""
    yield from _serve(lambda: services.start_s3(host=cluster.gateway))


@pytest.fixture(scope="session")
def cluster_azurite_server(cluster: localcluster.Cluster) -> Iterator[services.Server]:
    yield from _serve(lambda: services.start_azurite(host=cluster.gateway))


@pytest.fixture
def cluster_s3(
    cluster_s3_server: services.Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict]:
    """A fresh bucket that pods can reach, with credentials in the environment."""
    yield from _bucket(cluster_s3_server, monkeypatch)


@pytest.fixture(scope="session")
def cluster_gcs_server(cluster: localcluster.Cluster) -> Iterator[services.Server]:
    yield from _serve(lambda: services.start_gcs(host=cluster.gateway))


@pytest.fixture
def cluster_gcs(
    cluster_gcs_server: services.Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict]:
    """A fresh bucket on fake-gcs-server that pods can reach."""
    yield from _gcs_bucket(cluster_gcs_server, monkeypatch)


@pytest.fixture
def cluster_azure(cluster_azurite_server: services.Server) -> Iterator[dict]:
    """A fresh container on Azurite that pods can reach."""
    yield from _container(cluster_azurite_server)


@pytest.fixture
def namespace(cluster: localcluster.Cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted after it."""
    import kubernetes

    core = kubernetes.client.CoreV1Api(cluster.api())
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def on_cluster(
    cluster: localcluster.Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> dict:
    """Environment and options for a byok8s run on the local cluster."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    return {
        "cluster": cluster,
        "namespace": namespace,
        "options": ["-k", namespace, "--container-image", cluster.image],
    }
