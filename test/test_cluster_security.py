"""No secret value anywhere a user or a log collector could see it: byok8s's
output (also with --verbose, also when a job fails), every file the run leaves
in the working directory (Snakemake's log, saved pod logs, staged files), and
the pod specs; the per-run Secret is gone after the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import S3_KEY, S3_SECRET
from test_cluster_e2e import assert_pods_clean, left_behind, own_workflow, run_on_s3, run_recorded

pytestmark = pytest.mark.cluster

TOKEN = "tok-8d1e5b0f2a9c4e77-very-secret"
FAILING = """
rule all:
    input: "a.txt", "b.txt"
rule a:
    output: "a.txt"
    shell: "test -n \\"$APP_TOKEN\\" && echo ok > {output}"
rule b:
    output: "b.txt"
    shell: "echo 'b failed on purpose' >&2; exit 2"
"""


def everything_shown(result, workdir: Path) -> str:  # type: ignore[no-untyped-def]
    files = [p.read_text(errors="replace") for p in workdir.rglob("*") if p.is_file()]
    return "\n".join([result.stdout, result.stderr, *files])


def test_no_secret_in_verbose_output_logs_or_pod_specs_of_a_failed_run(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, FAILING)
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "sec", "--verbose",
                             "--envvars", "APP_TOKEN", "--keep-going", cwd=workdir,
                             env={"APP_TOKEN": TOKEN})  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "b failed on purpose" in result.stderr  # the output is really there
    shown = everything_shown(result, workdir)
    for secret in (S3_SECRET, TOKEN):
        assert secret not in shown
    assert S3_KEY not in result.stdout + result.stderr
    rule_a = {k: v for k, v in seen.pods.items() if v.metadata.labels["byok8s.io/rule"] == "a"}
    assert_pods_clean(rule_a, on_cluster["cluster"].image, 1, S3_SECRET, TOKEN)
    assert len(seen.pods) == 2
    for pod in seen.pods.values():
        spec = json.dumps(pod.to_dict(), default=str)
        assert S3_SECRET not in spec and TOKEN not in spec
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


def test_no_sas_in_verbose_output_or_logs(
    on_cluster: dict, cluster_azure: dict, workdir: Path
) -> None:
    sas = cluster_azure["sas"]
    signature = sas.split("sig=")[1].split("&")[0]
    env = {"AZ_BLOB_ACCOUNT_URL": f"{cluster_azure['url']}?{sas}"}
    url = f"az://{cluster_azure['container']}/sec"
    result, seen = run_recorded(on_cluster, "workflow-alpha", "params-red", "--bucket", url,
                                "--verbose", cwd=workdir, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = everything_shown(result, workdir)
    assert signature not in shown and sas not in shown
    assert_pods_clean(seen.pods, on_cluster["cluster"].image, 1, sas, signature)
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


WHOAMI = """
rule all:
    output: "who.txt"
    shell: "echo $(id -u) $(id -g) $HOME ${{USER:-}} > {output}"
"""


def test_jobs_run_unprivileged_as_a_user_with_the_given_service_account(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    from kubernetes import client as k8s
    from test_cluster_e2e import s3_text

    core = k8s.CoreV1Api(on_cluster["cluster"].api())
    core.create_namespaced_service_account(on_cluster["namespace"],
                                           {"metadata": {"name": "pipeline"}})  # fmt: skip
    wf, params = own_workflow(workdir, WHOAMI)
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "who", "--service-account",
                             "pipeline", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert s3_text(cluster_s3, "who/who.txt").split() == ["1000", "1000", "/tmp", "byok8s"]
    (pod,) = seen.pods.values()
    assert pod.spec.service_account_name == "pipeline"
    assert pod.spec.security_context.run_as_non_root is True
    container = pod.spec.containers[0].security_context
    assert container.allow_privilege_escalation is False and container.capabilities.drop == ["ALL"]
    assert not container.privileged
    # As root only when asked:
    wf, params = own_workflow(workdir, WHOAMI.replace("who.txt", "root.txt"))
    result, _ = run_on_s3(on_cluster, cluster_s3, wf, params, "who", "--run-as-user", "0",
                          cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert s3_text(cluster_s3, "who/root.txt").split()[:2] == ["0", "0"]
