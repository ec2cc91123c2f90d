"""byok8s end to end on the real local Kubernetes (test/cluster/), through the CLI
entry point, with S3 (moto) and Azure Blob (Azurite) as default storage."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import S3_SECRET
from helpers import run_cli, tree, write_json
from localcluster import Recorder

pytestmark = pytest.mark.cluster

TOKEN = "tok-3f9a1c77e2b54d0b9f5e-secret"


def run_recorded(on_cluster: dict, *args: str, cwd: Path, env: dict | None = None) -> tuple:
    """Run byok8s on the cluster, recording every pod and Secret of the namespace."""
    cluster, namespace = on_cluster["cluster"], on_cluster["namespace"]
    with Recorder(cluster.api(), namespace) as seen:
        result = run_cli(
            *args, *on_cluster["options"], cwd=cwd, env=env, timeout=600, entry_point=True
        )
    return result, seen


def run_on_s3(
    on_cluster: dict, cluster_s3: dict, wf: str, params: str, prefix: str, *extra: str, **kw: Any
) -> tuple:
    url = f"s3://{cluster_s3['bucket']}/{prefix}"
    endpoint = ["--s3-endpoint-url", cluster_s3["endpoint"]]
    return run_recorded(on_cluster, wf, params, "--bucket", url, *endpoint, *extra, **kw)


def s3_text(cluster_s3: dict, key: str) -> str:
    obj = cluster_s3["client"].get_object(Bucket=cluster_s3["bucket"], Key=key)
    return obj["Body"].read().decode()


def own_workflow(workdir: Path, snakefile: str) -> tuple[str, str]:
    """A user's own Snakefile with its workflow config and (empty) params."""
    (workdir / "Snakefile").write_text(snakefile)
    write_json(workdir / "wf.json", {"snakefile": "Snakefile", "targets": ["all"]})
    write_json(workdir / "params.json", {})
    return "wf.json", "params.json"


def jobs_run(stdout: str) -> int:
    line = next(x for x in stdout.splitlines() if x.startswith("jobs: "))
    return int(line.split()[1])


def left_behind(on_cluster: dict) -> dict[str, list[str]]:
    import kubernetes

    api = on_cluster["cluster"].api()
    ns = on_cluster["namespace"]
    core, batch = kubernetes.client.CoreV1Api(api), kubernetes.client.BatchV1Api(api)
    return {
        "jobs": [j.metadata.name for j in batch.list_namespaced_job(ns).items],
        "pods": [p.metadata.name for p in core.list_namespaced_pod(ns).items],
        "secrets": [s.metadata.name for s in core.list_namespaced_secret(ns).items],
    }


def assert_pods_clean(pods: dict[str, Any], image: str, count: int, *secrets: str) -> None:
    """Every job ran as its own pod of the job image, succeeded, installed nothing,
    and got credentials only as references to a Secret."""
    assert len(pods) == count, sorted(pods)
    for pod in pods.values():
        (container,) = pod.spec.containers
        assert container.image == image
        terminated = pod.status.container_statuses[0].state.terminated
        assert terminated is not None and terminated.exit_code == 0, pod.status
        command = " ".join(container.command + container.args)
        assert "pip install" not in command
        assert "--deploy-sources" not in command  # one Snakemake start per pod
        for env in container.env or ():
            assert env.value is None, env.name
            assert env.value_from.secret_key_ref is not None, env.name
        spec = json.dumps(pod.to_dict(), default=str)
        for secret in secrets:
            assert secret not in spec


def test_bundled_example_on_s3(on_cluster: dict, cluster_s3: dict, workdir: Path) -> None:
    result, seen = run_on_s3(
        on_cluster, cluster_s3, "workflow-alpha", "params-blue", "run1", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert s3_text(cluster_s3, "run1/alpha.txt") == "alpha blue\n"
    assert f"s3://{cluster_s3['bucket']}/run1/alpha.txt" in result.stdout
    assert_pods_clean(seen.pods, on_cluster["cluster"].image, 1, S3_SECRET)
    # The run's Secret held the S3 credentials and is gone now.
    assert len(seen.secrets) == 1
    (secret,) = seen.secrets.values()
    values = {k: base64.b64decode(v).decode(errors="replace") for k, v in secret.data.items()}
    assert S3_SECRET in values.values(), sorted(values)
    assert "byok8s-sources.tar.xz" in values  # the workflow sources travel with it
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


def test_multi_step_workflow_on_s3(on_cluster: dict, cluster_s3: dict, workdir: Path) -> None:
    result, seen = run_on_s3(
        on_cluster,
        cluster_s3,
        "workflow-fanout",
        "params-fanout",
        "fan",
        "--jobs",
        "4",
        "--cpu-scalar",
        "0.25",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert jobs_run(result.stdout) == 14
    # 13 pods: the target rule `all` has no command, so Snakemake runs no job for it.
    assert_pods_clean(seen.pods, on_cluster["cluster"].image, 13, S3_SECRET)
    # The same workflow run on this machine gives the same summary, byte for byte.
    local = workdir.parent / "local"
    local.mkdir()
    assert run_cli("workflow-fanout", "params-fanout", cwd=local).returncode == 0
    assert s3_text(cluster_s3, "fan/summary.tsv") == (local / "summary.tsv").read_text()
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}
    # Its report, written beside its record here and in the bucket, as Chromium shows it.
    from browser import assert_report_looks_right

    from byok8s import records

    (run,) = (workdir / records.RUNS).iterdir()
    assert f"report: {run / records.REPORT}" in result.stdout
    shown = assert_report_looks_right(run / records.REPORT, workdir.parent / "fanout.png")
    assert shown["bars"] == 13 and shown["failedBars"] == 0 and not shown["partial"]
    assert len(shown["rules"]) == 4, shown["rules"]
    saved = s3_text(cluster_s3, f"fan/{records.RUNS}/{run.name}/{records.REPORT}")
    assert saved == (run / records.REPORT).read_text()


def test_bundled_example_on_azurite_with_sas(
    on_cluster: dict, cluster_azure: dict, workdir: Path
) -> None:
    container, sas = cluster_azure["container"], cluster_azure["sas"]
    env = {"AZ_BLOB_ACCOUNT_URL": f"{cluster_azure['url']}?{sas}"}
    url = f"az://{container}/runs/a"
    result, seen = run_recorded(
        on_cluster, "workflow-alpha", "params-red", "--bucket", url, cwd=workdir, env=env
    )
    assert result.returncode == 0, result.stderr
    blob = cluster_azure["client"].download_blob("runs/a/alpha.txt").readall()
    assert blob == b"alpha red\n"
    signature = sas.split("sig=")[1].split("&")[0]
    assert_pods_clean(seen.pods, on_cluster["cluster"].image, 1, sas, signature)
    for text in (result.stdout, result.stderr):
        assert signature not in text and sas not in text
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


def test_multi_step_workflow_on_gcs(on_cluster: dict, cluster_gcs: dict, workdir: Path) -> None:
    """GCS (fake-gcs-server, STORAGE_EMULATOR_HOST) as S3: the same summary as a
    run on this machine, and nothing left."""
    url = f"gs://{cluster_gcs['bucket']}/fan"
    result, seen = run_recorded(on_cluster, "workflow-fanout", "params-fanout", "--bucket", url,
                                "--jobs", "4", "--cpu-scalar", "0.25", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert jobs_run(result.stdout) == 14
    assert_pods_clean(seen.pods, on_cluster["cluster"].image, 13)
    local = workdir.parent / "local"
    local.mkdir()
    assert run_cli("workflow-fanout", "params-fanout", cwd=local).returncode == 0
    blob = cluster_gcs["client"].bucket(cluster_gcs["bucket"]).blob("fan/summary.tsv")
    assert blob.download_as_text() == (local / "summary.tsv").read_text()
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


ENV_SNAKEFILE = """
rule all:
    output: "token.txt"
    shell: "printf %s \\"$APP_TOKEN\\" | sha256sum | cut -d' ' -f1 > {output}"
"""


def test_envvars_reach_pods_through_a_secret(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, ENV_SNAKEFILE)
    result, seen = run_on_s3(
        on_cluster, cluster_s3, wf, params, "env", "--envvars", "APP_TOKEN",
        cwd=workdir, env={"APP_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        s3_text(cluster_s3, "env/token.txt").strip() == hashlib.sha256(TOKEN.encode()).hexdigest()
    )
    assert_pods_clean(seen.pods, on_cluster["cluster"].image, 1, TOKEN)
    (pod,) = seen.pods.values()
    refs = {e.name: e.value_from.secret_key_ref for e in pod.spec.containers[0].env}
    assert refs["APP_TOKEN"].name in seen.secrets
    assert TOKEN not in result.stdout + result.stderr
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


FAILING_SNAKEFILE = """
rule all:
    input: "out.txt"
rule align:
    output: "out.txt"
    shell: "echo 'reference index ref.fa.fai is missing' >&2; exit 3"
"""


def test_failed_job_shows_the_pod_log(on_cluster: dict, cluster_s3: dict, workdir: Path) -> None:
    wf, params = own_workflow(workdir, FAILING_SNAKEFILE)
    before = tree(workdir)
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "fail", cwd=workdir)
    assert result.returncode == 1, result.stderr
    (pod,) = seen.pods
    # The command's own stderr, its exit status and the pod's name are shown...
    assert "| reference index ref.fa.fai is missing" in result.stderr
    assert "returned non-zero exit status 3" in result.stderr
    assert f"pod {pod}: exited with code 1" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("byok8s: error: 1 job failed: rule align [job 1]")
    # ...and the whole pod log is kept.
    logs = [p for p in tree(workdir) - before if p.endswith(".log") and "kubernetes-logs" in p]
    assert len(logs) == 1
    assert "ref.fa.fai is missing" in (workdir / logs[0]).read_text()
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}
