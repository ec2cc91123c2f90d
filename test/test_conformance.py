"""Snakemake's own test workflows through byok8s (test/conformance/): the CI subset,
every way. A test that passes with plain Snakemake on this machine (no storage)
must pass through byok8s every way, but for the storage ways' tests that need a
shared filesystem (shared_fs.tsv) and fail with plain Snakemake on the same
bucket too; those, and tests plain Snakemake fails, are expected failures with
the reason, as the README's table says, never counted as passes.

Plain Snakemake's outcomes (without and with the bucket) are those the newest full
run recorded (conformance/results/) when it ran the installed Snakemake; plain
Snakemake runs here only for a test it has no record of. The runs of a way go
three at a time (each in its own directory, bucket prefix and namespace), started
by the first test of the way; each test then checks its own.
The whole suite: `.venv/bin/python test/conformance/run_suite.py` (README)."""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "conformance"))
import buckets  # noqa: E402
import runner  # noqa: E402
import suite  # noqa: E402
from ci_subset import AZURE, SUBSET  # noqa: E402

ROOT = suite.sdist()
TESTS = ROOT / "tests"
CASES = {c.name: c for c in suite.cases(ROOT) if c.name in SUBSET}
SHARED_FS = suite.read_tsv(suite.SHARED_FS)
AT_ONCE = 3
PLAIN = ("plain", "plain-bucket")
RECORDED = suite.recorded(PLAIN)


def test_the_subset_is_selected_and_big_enough() -> None:
    assert sorted(CASES) == sorted(SUBSET), set(SUBSET) - set(CASES)
    assert len(SUBSET) >= 30 and set(AZURE) <= set(SUBSET)


def test_plain_snakemakes_outcomes_are_the_recorded_ones() -> None:
    """The full run on record ran the installed Snakemake over every case of the
    subset: CI takes plain Snakemake's outcomes from it instead of running it."""
    assert RECORDED, "no full run of the installed Snakemake is recorded: run run_suite.py"
    assert all((name, way) in RECORDED for name in SUBSET for way in PLAIN)


def run_all(names: list[str], way: str, where: Callable[[str], tuple[Any, list[str]]],
            work: Path) -> dict[str, runner.Outcome]:  # fmt: skip
    """Every named case one way, AT_ONCE at a time."""

    def one(name: str) -> runner.Outcome:
        bucket, options = where(name)
        return runner.run(CASES[name], TESTS, way, work, bucket, options)

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def s3_bucket(s3: dict, name: str) -> buckets.S3Bucket:
    from conftest import S3_KEY, S3_SECRET

    prefix = f"{name}-{uuid.uuid4().hex[:6]}".replace("_", "-")
    env = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    return buckets.S3Bucket(s3["client"], s3["bucket"], prefix, s3["endpoint"], env)


@pytest.fixture(scope="session")
def work() -> Any:
    with tempfile.TemporaryDirectory(prefix="byok8s-conformance-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def session_s3(s3_server: Any) -> dict:
    """One bucket for the session's conformance runs (a prefix a run)."""
    return _session_bucket(s3_server)


def _session_bucket(server: Any) -> dict:
    import boto3
    from conftest import S3_KEY, S3_SECRET

    endpoint = f"http://{server.host}:{server.port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET)  # fmt: skip
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    return {"client": client, "bucket": name, "endpoint": endpoint}


def where(way: str, s3: dict) -> Callable[[str], tuple[Any, list[str]]]:
    bucketed = way in ("plain-bucket", "bucket")
    return lambda name: (s3_bucket(s3, name) if bucketed else None, [])


@pytest.fixture(scope="session")
def plain_ways(work: Path, request: pytest.FixtureRequest) -> dict[str, dict[str, runner.Outcome]]:
    """Plain Snakemake's outcomes (plain, plain-bucket) as recorded, run here only
    where there is no record (then with the S3 server)."""
    found = {}
    for way in PLAIN:
        known = {name: runner.Outcome(name, way, RECORDED[(name, way)]["status"],
                                      RECORDED[(name, way)]["reason"])
                 for name in SUBSET if (name, way) in RECORDED}  # fmt: skip
        missing = [name for name in SUBSET if name not in known]
        if missing:
            known |= run_all(missing, way, where(way, request.getfixturevalue("session_s3")), work)
        found[way] = known
    return found


@pytest.fixture(scope="session")
def local_ways(
    work: Path, session_s3: dict, plain_ways: dict
) -> dict[str, dict[str, runner.Outcome]]:
    """local and bucket for the whole subset, with plain Snakemake's beside them."""
    ways = {way: run_all(SUBSET, way, where(way, session_s3), work) for way in ("local", "bucket")}
    return ways | plain_ways


@pytest.fixture(scope="session")
def cluster_ways(cluster: Any, cluster_s3_server: Any, cluster_azurite_server: Any,
                 work: Path) -> dict[str, dict[str, runner.Outcome]]:  # fmt: skip
    """cluster (S3) for the whole subset and azure for its AZURE part, each run in
    its own namespace, removed after."""
    import os

    import kubernetes
    import services
    from azure.storage.blob import BlobServiceClient

    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    core = kubernetes.client.CoreV1Api(cluster.api())
    s3 = _session_bucket(cluster_s3_server)
    url = services.azurite_url(cluster_azurite_server)
    blobs = BlobServiceClient(url, credential={"account_name": services.AZURITE_ACCOUNT,
                                               "account_key": services.AZURITE_KEY})  # fmt: skip
    container = blobs.create_container(f"conformance-{uuid.uuid4().hex[:8]}")
    namespaces: list[str] = []

    def options() -> list[str]:
        name = f"conf-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name}})
        namespaces.append(name)
        # A quarter CPU a pod: more of the (mostly waiting) jobs fit the 2-core node.
        return ["-k", name, "--container-image", cluster.image, "--cpu-scalar", "0.25"]

    def on_s3(name: str) -> tuple[Any, list[str]]:
        return s3_bucket(s3, name), options()

    def on_azure(name: str) -> tuple[Any, list[str]]:
        prefix = f"{name}-{uuid.uuid4().hex[:6]}".replace("_", "-")
        env = {"AZ_BLOB_ACCOUNT_URL": url, "AZ_BLOB_CREDENTIAL": services.AZURITE_KEY}
        return buckets.AzureBucket(container, prefix, url, env), options()

    try:
        yield {"cluster": run_all(SUBSET, "cluster", on_s3, work),
               "azure": run_all(AZURE, "azure", on_azure, work)}  # fmt: skip
    finally:
        for name in namespaces:
            core.delete_namespace(name)
        os.environ.pop("KUBECONFIG", None)


def check(outcome: runner.Outcome, base: runner.Outcome) -> None:
    if outcome.status == "n/a":
        pytest.skip(f"not applicable here: {outcome.reason}")
    if base.status != "passed" and outcome.status != "passed":
        pytest.xfail(f"fails with plain Snakemake too ({base.way}): {base.reason}")
    assert outcome.status == "passed", f"{outcome.reason}\n{outcome.output[-3000:]}"


@pytest.mark.parametrize("name", SUBSET)
@pytest.mark.s3
def test_this_machine(name: str, local_ways: dict) -> None:
    check(local_ways["local"][name], local_ways["plain"][name])


@pytest.mark.parametrize("name", SUBSET)
@pytest.mark.s3
def test_this_machine_with_a_bucket(name: str, local_ways: dict) -> None:
    on_storage(local_ways["bucket"][name], local_ways)


def on_storage(outcome: runner.Outcome, plain: dict) -> None:
    """Held to plain Snakemake on this machine, without storage: a test may fail
    with a bucket only if it needs a shared filesystem (shared_fs.tsv), and then
    only if plain Snakemake with the same bucket fails it too."""
    why = SHARED_FS.get(outcome.case)
    if why and outcome.status == "failed":
        base = plain["plain-bucket"][outcome.case]
        assert base.status != "passed", f"passes with plain Snakemake on the bucket: {why}"
        pytest.xfail(f"needs a shared filesystem: {why}")
    check(outcome, plain["plain"][outcome.case])


@pytest.mark.cluster
@pytest.mark.parametrize("name", SUBSET)
def test_cluster(name: str, cluster_ways: dict, plain_ways: dict) -> None:
    on_storage(cluster_ways["cluster"][name], plain_ways)


@pytest.mark.cluster
@pytest.mark.parametrize("name", AZURE)
def test_azure(name: str, cluster_ways: dict, plain_ways: dict) -> None:
    on_storage(cluster_ways["azure"][name], plain_ways)
