"""Why a job failed, in one line naming rule, job and pod, on the real local
cluster: a command past its rule's mem_mb (OOMKilled, with the limit), and an
image that cannot be pulled (waiting, then failed after --pending-timeout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cluster_e2e import left_behind, own_workflow, run_on_s3

from byok8s import records

pytestmark = pytest.mark.cluster

GREEDY = """
rule all:
    input: "big.txt"
rule greedy:
    output: "big.txt"
    resources: mem_mb=400
    shell: "python3 -c 'x = bytearray(1500 * 1024 * 1024); print(len(x))' > {output}"
"""


def test_a_job_past_its_memory_is_oomkilled_and_says_so(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, GREEDY)
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "oom", cwd=workdir)
    assert result.returncode == 1, result.stderr
    (pod,) = seen.pods
    limits = seen.pods[pod].spec.containers[0].resources.limits
    assert limits == {"memory": "400M"}
    assert f"pod {pod}: killed for running out of memory (OOMKilled, memory limit 400M)" in (
        result.stderr
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("byok8s: error: 1 job failed: rule greedy [job 1]")
    assert left_behind(on_cluster)["jobs"] == []
    # The record says the limit it hit, and what the container used up to it when
    # Snakemake outlived the killed command.
    record = json.loads(next((workdir / records.RUNS).glob(f"*/{records.RECORD}")).read_text())
    (attempt,) = next(j for j in record["jobs"] if j["rule"] == "greedy")["attempts"]
    used = attempt["usage"]
    assert used["oom"] is True and used["memory_limit_bytes"] == 400_000_000, used
    assert used.get("peak_bytes") is None or used["peak_bytes"] >= 0.9 * 400_000_000, used


def test_an_image_that_cannot_be_pulled_fails_after_the_pending_timeout(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, GREEDY.replace("mem_mb=400", "mem_mb=100"))
    image = "127.0.0.1:9/byok8s/does-not-exist:1"  # refused on loopback, nothing leaves
    options = [o if o != on_cluster["cluster"].image else image for o in on_cluster["options"]]
    result, seen = run_on_s3(
        {**on_cluster, "options": options}, cluster_s3, wf, params, "pull",
        "--pending-timeout", "20", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (pod,) = seen.pods
    err = result.stderr
    assert f"rule greedy [job 1], pod {pod}, is waiting: image {image} cannot be pulled (" in err
    assert f"pod {pod}: did not start in 20 s (--pending-timeout): image {image} cannot be" in err
    assert left_behind(on_cluster)["jobs"] == []


TALKING = """
rule all:
    input: "talk.txt"
rule talk:
    output: "talk.txt"
    shell: "for i in 1 2 3; do echo line-$i; sleep 1; done; echo done > {output}"
"""


def test_follow_streams_each_jobs_log_as_it_runs(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, TALKING)
    result, _ = run_on_s3(on_cluster, cluster_s3, wf, params, "follow", "--follow", cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    followed = [i for i, line in enumerate(lines) if line.startswith("rule talk [job 1] | line-")]
    assert [lines[i].rsplit("| ", 1)[1] for i in followed] == ["line-1", "line-2", "line-3"]
    done = next(i for i, line in enumerate(lines) if line.startswith("done     rule talk"))
    assert followed[-1] < done  # shown while it ran, before the job was seen done
