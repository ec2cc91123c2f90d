"""Runs with Azure Blob default storage against Azurite: SAS and account-key forms."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import error_line, run_on_bucket

from byok8s.errors import ExitCode

pytestmark = pytest.mark.azure


def blob_text(azure: dict, name: str) -> str:
    return azure["client"].download_blob(name).readall().decode()


def credential_forms(azure: dict) -> dict[str, dict[str, str]]:
    return {
        "sas-in-url": {"AZ_BLOB_ACCOUNT_URL": f"{azure['url']}?{azure['sas']}"},
        "sas-credential": {
            "AZ_BLOB_ACCOUNT_URL": azure["url"],
            "AZ_BLOB_CREDENTIAL": "?" + azure["sas"],
        },
        "account-key": {"AZ_BLOB_ACCOUNT_URL": azure["url"], "AZ_BLOB_CREDENTIAL": azure["key"]},
    }


@pytest.mark.parametrize("form", ["sas-in-url", "sas-credential", "account-key"])
def test_alpha_in_container(form: str, workdir: Path, azure: dict) -> None:
    env = credential_forms(azure)[form]
    url = f"az://{azure['container']}/{form}"
    result = run_on_bucket(
        "workflow-alpha",
        "params-blue",
        url,
        cwd=workdir,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert blob_text(azure, f"{form}/alpha.txt") == "alpha blue\n"
    assert f"{url}/alpha.txt" in result.stdout
    secret = env.get("AZ_BLOB_CREDENTIAL", azure["sas"]).lstrip("?")
    signature = secret.split("sig=")[-1].split("&")[0]
    logs = "".join(p.read_text() for p in (workdir / ".snakemake" / "log").glob("*.log"))
    for text in (result.stdout, result.stderr, logs):
        assert secret not in text and signature not in text


def test_fanout_with_sas(workdir: Path, azure: dict) -> None:
    env = credential_forms(azure)["sas-credential"]
    result = run_on_bucket(
        "workflow-fanout",
        "params-fanout",
        f"az://{azure['container']}",
        cwd=workdir,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    summary = blob_text(azure, "summary.tsv").splitlines()
    assert summary[0].startswith("sample\treads") and len(summary) == 5
    names = set(azure["client"].list_blob_names())
    assert {f"qc/s{i}.tsv" for i in range(1, 5)} <= names


def test_missing_container(workdir: Path, azure: dict) -> None:
    env = credential_forms(azure)["account-key"]
    result = run_on_bucket(
        "workflow-alpha",
        "params-blue",
        "az://no-such-container",
        cwd=workdir,
        env=env,
    )
    assert result.returncode == ExitCode.STORAGE
    line = error_line(result)
    assert "container 'no-such-container' does not exist" in line


def test_bad_signature_is_access_denied(workdir: Path, azure: dict) -> None:
    sas = azure["sas"].replace("sig=", "sig=AAAA")
    env = {"AZ_BLOB_ACCOUNT_URL": azure["url"], "AZ_BLOB_CREDENTIAL": sas}
    result = run_on_bucket(
        "workflow-alpha",
        "params-blue",
        f"az://{azure['container']}",
        cwd=workdir,
        env=env,
    )
    assert result.returncode == ExitCode.STORAGE
    line = error_line(result)
    assert "access denied" in line
    assert sas.split("sig=")[1].split("&")[0] not in result.stderr
