"""Snakemake's semantics kept on the real local cluster, where Snakemake alone
breaks without a shared filesystem: directory() outputs and checkpoint
directories (S3 and Azure Blob), pipe groups in one pod, params of any shape in
every job, and nothing left behind when a Job's submission fails after the API
took it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cluster_e2e import left_behind, own_workflow, run_on_s3, run_recorded, s3_text
from test_cluster_faults import NOTHING

pytestmark = pytest.mark.cluster

CHECKPOINT_DIR = """
rule all:
    input: "aggregated/a.txt", "aggregated/b.txt"

checkpoint split:
    output: directory("chunks/{sample}")
    shell: "mkdir -p {output}; for i in 1 2 3; do echo {wildcards.sample}$i > {output}/$i.txt; done"

rule post:
    input: "chunks/{sample}"
    output: "post/{sample}/{i}.txt"
    shell: "cp {input}/{wildcards.i}.txt {output}"

def chunks(wildcards):
    out = checkpoints.split.get(**wildcards).output[0]
    return sorted(expand("post/{sample}/{i}.txt", sample=wildcards.sample,
                         i=glob_wildcards(os.path.join(out, "{i}.txt")).i))

rule aggregate:
    input: chunks
    output: "aggregated/{sample}.txt"
    shell: "cat {input} > {output}"
"""
EXPECTED = {"a": "a1\na2\na3\n", "b": "b1\nb2\nb3\n"}


def test_checkpoint_directories_on_s3(on_cluster: dict, cluster_s3: dict, workdir: Path) -> None:
    wf, params = own_workflow(workdir, CHECKPOINT_DIR)
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "ckpt", cwd=workdir)
    assert result.returncode == 0, result.stderr
    for sample, text in EXPECTED.items():
        assert s3_text(cluster_s3, f"ckpt/aggregated/{sample}.txt") == text
        assert s3_text(cluster_s3, f"ckpt/chunks/{sample}/2.txt") == f"{sample}2\n"
    # 2 splits, 6 posts, 2 aggregates and all: the count grows with the checkpoints.
    assert "jobs: 11 run, 0 failed, 0 skipped (of 11)" in result.stdout
    assert len(seen.pods) == 10
    assert left_behind(on_cluster) == NOTHING


def test_checkpoint_directories_on_azure(
    on_cluster: dict, cluster_azure: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, CHECKPOINT_DIR)
    env = {"AZ_BLOB_ACCOUNT_URL": cluster_azure["url"], "AZ_BLOB_CREDENTIAL": cluster_azure["sas"]}
    url = f"az://{cluster_azure['container']}/ckpt"
    result, _ = run_recorded(on_cluster, wf, params, "--bucket", url, cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    for sample, text in EXPECTED.items():
        blob = cluster_azure["client"].download_blob(f"ckpt/aggregated/{sample}.txt")
        assert blob.readall().decode() == text
    assert left_behind(on_cluster) == NOTHING


PIPE_GROUP = """
rule all:
    input: "counted.txt"
rule numbers:
    output: pipe("numbers.pipe")
    group: "stream"
    shell: "seq 1 {config[n]} > {output}"
rule count:
    input: "numbers.pipe"
    output: "counted.txt"
    group: "stream"
    params: extra=config["nested"]["labels"]
    shell: "wc -l < {input} > {output}; echo {params.extra} >> {output}"
"""


def test_a_pipe_group_runs_as_one_pod_with_params_of_any_shape(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, _ = own_workflow(workdir, PIPE_GROUP)
    (workdir / "params.json").write_text(json.dumps({"n": 7, "nested": {"labels": ["x", "y"]}}))
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, "params.json", "pipe", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert s3_text(cluster_s3, "pipe/counted.txt") == "7\nx y\n"
    (pod,) = seen.pods  # numbers and count, in one pod
    (record,) = (workdir / ".byok8s" / "runs").glob("*/record.json")
    jobs = {j["rule"]: j for j in json.loads(record.read_text())["jobs"]}
    assert jobs["numbers"]["attempts"][0]["pod"] == jobs["count"]["attempts"][0]["pod"] == pod
    assert sorted(jobs["count"]["attempts"][0]["members"]) == sorted(
        [jobs["numbers"]["jobid"], jobs["count"]["jobid"]])  # fmt: skip
    assert left_behind(on_cluster) == NOTHING


# byok8s with the journal's submission record failing, as the group job's did:
# after the API took the Job, before the executor knew.
FAULTY = """
import sys
from snakemake_executor_plugin_byok8s import journal
def fail(*args, **kwargs):
    raise OSError("disk full (injected)")
journal.Journal.submitted = fail
from byok8s.cli import main
sys.argv[0] = "byok8s"
main()
"""


def test_a_submission_that_fails_after_the_job_exists_leaves_nothing(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, "rule all:\n    output: 'x.txt'\n"
                                       "    shell: 'sleep 20; echo x > {output}'\n")  # fmt: skip
    args = [wf, params, *on_cluster["options"], "--bucket", f"s3://{cluster_s3['bucket']}/fault",
            "--s3-endpoint-url", cluster_s3["endpoint"]]  # fmt: skip
    result = subprocess.run([sys.executable, "-c", FAULTY, *args], cwd=workdir,
                            env=dict(os.environ), capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "could not create the Kubernetes Job for rule all" in result.stderr
    assert "disk full (injected)" in result.stderr
    assert left_behind(on_cluster)["jobs"] == [] and left_behind(on_cluster)["secrets"] == []
    from test_cluster_faults import wait_until

    wait_until("its pod gone", lambda: left_behind(on_cluster) == NOTHING)
