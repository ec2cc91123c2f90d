"""`byok8s doctor` against the real S3 server and Azurite, without a cluster (the
cluster checks are in test_cluster_dns_doctor.py)."""

from __future__ import annotations

import json

import pytest
from helpers import invoke

from byok8s import image


def rows(*args: str, env: dict | None = None) -> tuple[int, dict[str, dict]]:
    result = invoke("doctor", "--json", *args, env=env)
    assert "Traceback" not in result.output
    return result.exit_code, {r["name"]: r for r in json.loads(result.stdout)}


def test_every_check_is_listed_in_order_and_no_cluster_fails_with_5() -> None:
    code, found = rows()
    assert list(found) == ["kubeconfig", "cluster", "namespace", "permissions", "cluster DNS",
                           "bucket", "job credentials", "image"]  # fmt: skip
    assert code == 5
    assert found["kubeconfig"]["status"] == "FAIL"
    assert "point KUBECONFIG" in found["kubeconfig"]["fix"]
    assert {found[n]["status"] for n in ("cluster", "namespace", "permissions")} == {"skip"}


@pytest.mark.s3
def test_the_bucket_probe_writes_reads_and_deletes_on_s3(s3: dict) -> None:
    _, found = rows("--bucket", f"s3://{s3['bucket']}/runs", "--s3-endpoint-url", s3["endpoint"])
    assert found["bucket"]["status"] == "ok", found["bucket"]
    assert "wrote, read back and deleted" in found["bucket"]["detail"]
    assert s3["client"].list_objects_v2(Bucket=s3["bucket"]).get("KeyCount") == 0
    assert found["job credentials"]["status"] == "ok"
    assert "AWS_ACCESS_KEY_ID" in found["job credentials"]["detail"]


@pytest.mark.s3
def test_a_missing_bucket_fails_with_4(s3: dict) -> None:
    # (moto accepts any keys, so wrong keys are tested on Azurite below.)
    code, found = rows("--bucket", "s3://no-such-bucket-here", "--s3-endpoint-url",
                       s3["endpoint"])  # fmt: skip
    assert found["bucket"]["status"] == "FAIL" and found["bucket"]["exit_code"] == 4
    assert "no-such-bucket-here" in found["bucket"]["detail"]


def test_missing_storage_credentials_fail_the_bucket_and_skip_job_credentials() -> None:
    code, found = rows("--bucket", "s3://some-bucket")
    assert found["bucket"]["status"] == "FAIL"
    assert "no AWS credentials" in found["bucket"]["detail"]
    assert "AWS_ACCESS_KEY_ID" in found["bucket"]["fix"]
    assert found["job credentials"]["status"] == "skip"


def test_a_bucket_url_of_the_wrong_form_fails() -> None:
    _, found = rows("--bucket", "ftp://x")
    assert found["bucket"]["status"] == "FAIL" and "unsupported scheme" in found["bucket"]["detail"]


@pytest.mark.azure
def test_azurite_with_a_sas_passes_and_never_shows_it(azure: dict) -> None:
    env = {"AZ_BLOB_ACCOUNT_URL": f"{azure['url']}?{azure['sas']}"}
    result = invoke("doctor", "--bucket", f"az://{azure['container']}/x", env=env)
    assert "wrote, read back and deleted" in result.stdout
    assert azure["sas"] not in result.output
    signature = azure["sas"].split("sig=")[1].split("&")[0]
    assert signature not in result.output
    assert list(azure["client"].list_blobs()) == []


@pytest.mark.azure
def test_a_wrong_azure_key_fails_and_is_not_shown(azure: dict) -> None:
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS13cm9uZw=="
    env = {"AZ_BLOB_ACCOUNT_URL": azure["url"], "AZ_BLOB_CREDENTIAL": wrong}
    result = invoke("doctor", "--json", "--bucket", f"az://{azure['container']}", env=env)
    found = {r["name"]: r for r in json.loads(result.stdout)}
    assert found["bucket"]["status"] == "FAIL", found["bucket"]
    assert wrong not in result.output


def test_envvars_that_are_not_set_fail_job_credentials(monkeypatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "x")
    _, found = rows("--envvars", "APP_TOKEN,NOT_SET_HERE")
    assert found["job credentials"]["status"] == "FAIL"
    assert "NOT_SET_HERE" in found["job credentials"]["detail"]
    _, found = rows("--envvars", "APP_TOKEN")
    assert found["job credentials"]["status"] == "ok"
    assert "x" not in found["job credentials"]["detail"].split()


def test_the_image_must_carry_this_snakemake() -> None:
    _, found = rows()
    assert found["image"]["status"] == "ok"
    assert found["image"]["detail"].startswith(image.default_image())
    code, found = rows("--container-image", "ghcr.io/byok8s/byok8s-job:0.1.0-snakemake8.30.0")
    assert found["image"]["status"] == "FAIL" and found["image"]["exit_code"] == 3
    assert "snakemake 8.30.0" in found["image"]["detail"]
    _, found = rows("--container-image", "myregistry.example/own:latest")
    assert found["image"]["status"] == "skip"


def test_the_table_is_readable_and_exit_code_follows_the_first_failure() -> None:
    result = invoke("doctor")
    assert result.exit_code == 5
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["check", "result", "detail", "fix"]
    assert any(ln.startswith("kubeconfig") and " FAIL " in ln for ln in lines)
    assert lines[-1] == "1 check failed"


def test_an_unreachable_cluster_fails_fast(tmp_path, monkeypatch) -> None:
    import time

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
        "users: [{name: u, user: {token: abc}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    started = time.monotonic()
    code, found = rows()
    assert time.monotonic() - started < 20
    assert code == 5
    assert found["kubeconfig"]["status"] == "ok" and "'gone'" in found["kubeconfig"]["detail"]
    assert found["cluster"]["status"] == "FAIL"
    assert "cannot reach the Kubernetes API at https://127.0.0.1:1" in found["cluster"]["detail"]
    assert found["namespace"]["status"] == "skip"
