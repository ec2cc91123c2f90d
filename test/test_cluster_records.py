"""Run records of cluster runs on the real local cluster: pods, nodes and logs of
every job, `byok8s logs` from the cluster while a job runs and from the saved
copies after, here or in the bucket; and the workflow sources a run uploads are
removed at its end unless --keep-sources."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import invoke
from test_cluster_e2e import own_workflow, run_on_s3

from byok8s import records

pytestmark = pytest.mark.cluster

TWO_JOBS = """
rule all:
    input: "slow.txt", "quick.txt"
rule slow:
    output: "slow.txt"
    shell: "echo slow-job-started; sleep 12; echo slow > {output}"
rule quick:
    output: "quick.txt"
    shell: "echo quick-job-says-hello; python3 -c 'b = b\\"x\\" * (200 << 20)'; "
           "test -f Snakefile && echo quick > {output}"
"""
MB = 1 << 20


def test_a_cluster_run_records_pods_nodes_and_logs(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, TWO_JOBS)
    url = f"s3://{cluster_s3['bucket']}/rec"
    endpoint = ["--s3-endpoint-url", cluster_s3["endpoint"]]
    command = [str(Path(sys.executable).parent / "byok8s"), wf, params, "--bucket", url,
               *endpoint, *on_cluster["options"]]  # fmt: skip
    run = subprocess.Popen(command, cwd=workdir, env=os.environ.copy(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        # While the slow job runs, its log comes from the cluster.
        deadline = time.monotonic() + 120
        live = None
        while time.monotonic() < deadline and run.poll() is None:
            live = invoke("logs", "last", "slow", "--workdir", str(workdir))
            if live.exit_code == 0 and "slow-job-started" in live.stdout:
                break
            time.sleep(1)
        assert live is not None and "slow-job-started" in live.stdout, live and live.output
        assert f"(the cluster (namespace {on_cluster['namespace']}))" in live.stdout
        out, err = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode == 0, err

    (path,) = (workdir / records.RUNS).glob(f"*/{records.RECORD}")
    record = json.loads(path.read_text())
    assert record["state"] == "succeeded"
    assert record["image"] == on_cluster["cluster"].image
    assert record["options"]["namespace"] == on_cluster["namespace"]
    assert record["options"]["cluster"].startswith("context ")  # the kubeconfig's, by name
    by_rule = {j["rule"]: j for j in record["jobs"]}
    assert sorted(by_rule) == ["all", "quick", "slow"]
    assert by_rule.pop("all")["attempts"] == []  # no command: no pod
    for job in by_rule.values():
        (attempt,) = job["attempts"]
        assert attempt["state"] == "succeeded" and attempt["pod"].startswith(attempt["k8s_job"])
        assert attempt["node"] and attempt["started"] <= attempt["finished"]
        assert (path.parent / attempt["log"]).is_file()
        assert "byok8s-usage" not in (path.parent / attempt["log"]).read_text()
    # What the quick job used: its command's 200 MB (within 20 %), the container's
    # cgroup (Snakemake with it), and its output staged out.
    used = by_rule["quick"]["attempts"][0]["usage"]
    assert 0.8 * 200 * MB <= used["job_peak_rss_bytes"] <= 1.2 * 200 * MB, used
    assert used["peak_bytes"] >= used["job_peak_rss_bytes"] and used["cpu_s"] > 0, used
    assert used["job_cpu_s"] > 0 and used["wall_s"] > 0 and used["memory_limit_bytes"] is None
    assert (used["staged_in_bytes"], used["staged_out_bytes"]) == (0, len(b"quick\n")), used
    assert used["staged_out_s"] > 0
    outputs = {o["path"].rsplit("/", 1)[1]: o for o in record["outputs"]}
    assert outputs["quick.txt"]["size"] == len(b"quick\n")

    # After the run: the saved copy, here...
    quick = invoke("logs", record["run"][:12], "quick", "--workdir", str(workdir))
    assert quick.exit_code == 0 and "quick-job-says-hello" in quick.stdout
    assert "byok8s-usage" not in quick.stdout
    assert str(path.parent / "logs") in quick.stdout
    # ...and in the bucket, with the record, for another machine.
    shutil.rmtree(workdir / records.RUNS)
    elsewhere = workdir.parent / "elsewhere"
    elsewhere.mkdir()
    listing = invoke("runs", "--bucket", url, *endpoint)
    assert listing.exit_code == 0 and record["run"] in listing.stdout
    saved = invoke("logs", "last", "slow", "--bucket", url, *endpoint,
                   "--workdir", str(elsewhere))  # fmt: skip
    assert saved.exit_code == 0, saved.output
    assert "slow-job-started" in saved.stdout and f"{url}/.byok8s/runs/" in saved.stdout


BIG_SOURCES = """
include: "big.smk"
rule all:
    input: "size.txt"
rule size:
    output: "size.txt"
    shell: "wc -c < big.smk > {output}"
"""


def test_uploaded_sources_are_removed_unless_kept(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    """Sources too large for the run's Secret travel through the bucket."""
    wf, params = own_workflow(workdir, BIG_SOURCES)
    # An included file of incompressible text: the packed sources are over 900 kB.
    noise = base64.b64encode(os.urandom(1_200_000)).decode()
    (workdir / "big.smk").write_text(f"# {noise}\n")
    client, bucket = cluster_s3["client"], cluster_s3["bucket"]

    def sources() -> list[str]:
        listing = client.list_objects_v2(Bucket=bucket, Prefix="src/").get("Contents", [])
        return [o["Key"] for o in listing if "snakemake-workflow-sources" in o["Key"]]

    result, _ = run_on_s3(on_cluster, cluster_s3, wf, params, "src", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert sources() == []
    kept, _ = run_on_s3(on_cluster, cluster_s3, wf, params, "src", "--forceall",
                        "--keep-sources", cwd=workdir)  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert len(sources()) == 1
    size = client.get_object(Bucket=bucket, Key="src/size.txt")["Body"].read()
    assert int(size) == (workdir / "big.smk").stat().st_size


REPORTED = """
rule all:
    input: "roomy.txt", "slow.txt", "broken.txt"
rule roomy:
    output: "roomy.txt"
    resources: mem_mb=4000
    shell: "python3 -c 'b = b\\"x\\" * (50 << 20)'; echo roomy > {output}"
rule slow:
    output: "slow.txt"
    shell: "echo slow-started; sleep 15; echo slow > {output}"
rule broken:
    output: "broken.txt"
    shell: "echo broken-says-why; exit 3"
"""


def test_the_report_of_a_run_with_a_failure_and_an_infrastructure_retry(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    """One bar per pod, the failed job and the evicted pod marked, the hint for the
    rule that asks for 4000 MB and uses about 50 MB, and the failure's log lines."""
    from browser import assert_report_looks_right
    from test_cluster_faults import bucket_args, byok8s, take_pod_when_running

    wf, params = own_workflow(workdir, REPORTED)
    proc = byok8s(wf, params, *on_cluster["options"], *bucket_args(cluster_s3, "report"),
                  "--keep-going", "--cpu-scalar", "0.25", cwd=workdir)  # fmt: skip
    take_pod_when_running(on_cluster, "slow", evict=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    (run,) = (workdir / records.RUNS).iterdir()
    assert f"report: {run / records.REPORT}" in out
    shown = assert_report_looks_right(run / records.REPORT, workdir.parent / "report.png")
    assert shown["bars"] == 4 and shown["failedBars"] == 2 and shown["retried"] == 1, shown
    assert shown["rules"] == ["broken", "roomy", "slow"]
    (hint,) = [h for h in shown["hints"] if h.startswith("roomy:")]
    assert hint.startswith("roomy: asks 4.0 GB, peak ") and hint.endswith("would fit"), hint
    assert any("broken-says-why" in f and "exited with code" in f for f in shown["failures"])
    listed = invoke("report", "last", "--json", "--workdir", str(workdir))
    data = json.loads(listed.stdout)
    roomy = next(r for r in data["rules"] if r["rule"] == "roomy")
    assert roomy["memory_requested"] == 4000 * 1_000_000 and roomy["memory_peak"] < 400 * MB
