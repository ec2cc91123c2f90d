"""A rule's own image on the local Kubernetes: tool images built from Debian
packages with no Python (test/cluster/tool-images.txt) get the job runtime from a
container of the job image beside the job's; the bundled varcall workflow calls
exactly the planted SNPs through S3 and through Azure; the user's command sees
the image's environment; images that cannot work fail at once, in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import write_json
from test_cluster_e2e import left_behind, own_workflow, run_on_s3, run_recorded, s3_text

pytestmark = pytest.mark.cluster

BWA = "byok8s-tool/bwa:0.7.17"
SAMTOOLS = "byok8s-tool/samtools-bcftools:1.16"
NOSHELL = "byok8s-tool/noshell:1"
PYTHON = "byok8s-tool/python:3.11"  # Debian's python3: a script: runs with it
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # pack-image.sh's
TOOL_RULES = {"bwa_index": BWA, "bwa_map": BWA, "samtools_sort": SAMTOOLS,
              "samtools_index": SAMTOOLS, "samtools_faidx": SAMTOOLS,
              "bcftools_call": SAMTOOLS}  # fmt: skip


def varcall_params(workdir: Path, images: dict[str, str]) -> str:
    from byok8s import bundled

    params = bundled.find_file("params-varcall")
    assert params is not None
    import json

    given = json.loads(params.read_text())
    write_json(workdir / "params.json", {**given, "images": images})
    return "params.json"


def positions(vcf: str) -> list[tuple[str, int, str, str]]:
    rows = [line.split("\t") for line in vcf.splitlines() if line and not line.startswith("#")]
    return [(r[0], int(r[1]), r[3], r[4]) for r in rows]


def planted(truth: str) -> list[tuple[str, int, str, str]]:
    rows = [line.split("\t") for line in truth.splitlines()[1:] if line]
    return [(r[0], int(r[1]), r[2], r[3]) for r in rows]


def assert_tool_pods(pods: dict[str, Any], job_image: str) -> None:
    """Each tool rule's pod ran in its tool image beside the runtime's copy (a
    container of the job image), both ended well; simulate, which names no image, in
    the job image alone."""
    from snakemake_executor_plugin_byok8s import podspec

    by_rule: dict[str, set[str]] = {}
    for pod in pods.values():
        rule = pod.metadata.labels[podspec.RULE_LABEL]
        *copy, container = pod.spec.containers
        by_rule.setdefault(rule, set()).add(container.image)
        assert not pod.spec.init_containers
        for each in pod.status.container_statuses:
            terminated = each.state.terminated
            assert terminated is not None and terminated.exit_code == 0, (rule, pod.status)
        if rule == "simulate":
            assert container.image == job_image and not copy
        else:
            assert [(c.name, c.image) for c in copy] == [(podspec.RUNTIME, job_image)]
            mounts = {m.mount_path: m.read_only for m in container.volume_mounts}
            assert mounts["/byok8s/rt"] is True
    assert by_rule == {"simulate": {job_image}, **{r: {i} for r, i in TOOL_RULES.items()}}


def test_varcall_in_tool_images_calls_the_planted_snps_on_s3(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    """The Snakefile's container: (docker:// and plain names) picks each pod's image."""
    params = varcall_params(workdir, {"bwa": f"docker://{BWA}", "samtools": SAMTOOLS,
                                      "bcftools": f"docker://{SAMTOOLS}"})  # fmt: skip
    result, seen = run_on_s3(on_cluster, cluster_s3, "workflow-varcall", params, "vc",
                             "--jobs", "4", "--cpu-scalar", "0.25", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    calls = positions(s3_text(cluster_s3, "vc/calls/variants.vcf"))
    truth = planted(s3_text(cluster_s3, "vc/truth/snps.tsv"))
    assert len(truth) == 12 and calls == truth
    assert_tool_pods(seen.pods, on_cluster["cluster"].image)
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


def test_varcall_on_azure_with_the_images_of_the_workflow_config(
    on_cluster: dict, cluster_azure: dict, workdir: Path
) -> None:
    """The workflow config's rules.RULE.image wins over the Snakefile's container:
    (here images no registry has)."""
    params = varcall_params(workdir, {t: f"docker://registry.invalid/{t}:0"
                                      for t in ("bwa", "samtools", "bcftools")})  # fmt: skip
    rules = {r: {"image": i} for r, i in TOOL_RULES.items()}
    write_json(workdir / "wf.json", {"workflow": "varcall", "targets": ["all"], "rules": rules})
    env = {"AZ_BLOB_ACCOUNT_URL": cluster_azure["url"],
           "AZ_BLOB_CREDENTIAL": cluster_azure["key"]}  # fmt: skip
    url = f"az://{cluster_azure['container']}/vc"
    result, seen = run_recorded(on_cluster, "wf.json", params, "--bucket", url, "--jobs", "4",
                                "--cpu-scalar", "0.25",
                                "--verbose", cwd=workdir, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    blobs = cluster_azure["client"]
    calls = positions(blobs.download_blob("vc/calls/variants.vcf").readall().decode())
    truth = planted(blobs.download_blob("vc/truth/snps.tsv").readall().decode())
    assert len(truth) == 12 and calls == truth
    assert_tool_pods(seen.pods, on_cluster["cluster"].image)
    said = result.stdout + result.stderr
    assert f"image {BWA} from the workflow config, not registry.invalid/bwa:0" in said
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


LEAK_SNAKEFILE = f"""
rule all:
    input: "env.txt", "where.txt", "script.txt"
rule shell_in_image:
    output: "env.txt"
    container: "docker://{BWA}"
    shell:
        "env > {{output}}; echo PYTHON=$(command -v python python3 || echo none) >> {{output}}; "
        "bwa 2>&1 | grep -q Usage && echo BWA=yes >> {{output}}"
rule run_in_image:
    output: "where.txt"
    container: "docker://{BWA}"
    run:
        import sys
        with open(output[0], "w") as f:
            f.write(sys.prefix + "\\n")
rule script_in_image:
    output: "script.txt"
    container: "docker://{PYTHON}"
    script: "where.py"
"""
WHERE_PY = """
import sys
with open(snakemake.output[0], "w") as f:
    f.write(sys.executable + "\\n")
"""


def test_the_users_command_sees_the_images_own_environment(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, LEAK_SNAKEFILE)
    (workdir / "where.py").write_text(WHERE_PY)
    result, seen = run_on_s3(on_cluster, cluster_s3, wf, params, "leak", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    env = dict(line.split("=", 1) for line in s3_text(cluster_s3, "leak/env.txt").splitlines()
               if "=" in line)  # fmt: skip
    assert env["PATH"] == IMAGE_PATH
    assert env["PYTHON"] == "none" and env["BWA"] == "yes"
    leaked = {k for k in env if k.startswith(("LD_", "PYTHON")) and k != "PYTHON"}
    assert not leaked, leaked
    assert not any("/byok8s/rt" in v for v in env.values()), env
    # A run: block runs in byok8s's runtime, a script: with the image's python.
    assert s3_text(cluster_s3, "leak/where.txt").strip() == "/byok8s/rt"
    assert s3_text(cluster_s3, "leak/script.txt").strip() == "/usr/bin/python"
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


def test_an_image_without_a_shell_fails_at_once_in_one_line(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    wf, params = own_workflow(workdir, f"""
rule all:
    output: "x.txt"
    container: "docker://{NOSHELL}"
    shell: "echo x > {{output}}"
""")  # fmt: skip
    result, _ = run_on_s3(on_cluster, cluster_s3, wf, params, "noshell", cwd=workdir)
    assert result.returncode == 1, result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert f"image {NOSHELL} has no /bin/sh" in said and "rule all" in said, said
    assert "exec format error" not in said and "Traceback" not in said
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


TOOL_PAIR = f"""
container: "docker://{BWA}"
rule all:
    input: "fast.txt", "slow.txt"
rule fast:
    output: "fast.txt"
    shell: "echo fast > {{output}}"
rule slow:
    output: "slow.txt"
    shell: "echo slow-started; sleep 15; echo slow > {{output}}"
"""


def test_in_a_tool_image_follow_infra_retries_and_ctrl_c_work_as_in_the_job_image(
    on_cluster: dict, cluster_s3: dict, workdir: Path
) -> None:
    """A followed run whose pod is evicted mid-job goes on with a new pod (the log of
    each shown as it runs); a run interrupted by Ctrl-C cancels its tool-image pods
    at once, and nothing is left."""
    import signal
    import time

    from test_cluster_faults import (
        NOTHING,
        bucket_args,
        byok8s,
        running_pods,
        take_pod_when_running,
        wait_until,
    )  # fmt: skip

    wf, params = own_workflow(workdir, TOOL_PAIR)
    args = [wf, params, *on_cluster["options"]]
    proc = byok8s(*args, *bucket_args(cluster_s3, "toolfault"), "--follow", cwd=workdir)
    evicted = take_pod_when_running(on_cluster, "slow", evict=True, logged="slow-started")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert [line for line in stderr.splitlines() if f"pod {evicted} was deleted" in line]
    started = [line for line in stderr.splitlines() if line.endswith("| slow-started")]
    assert len(started) == 2 and started[0].startswith("rule slow [job "), stderr
    assert s3_text(cluster_s3, "toolfault/slow.txt") == "slow\n"
    assert s3_text(cluster_s3, "toolfault/fast.txt") == "fast\n"
    wait_until("no Job, pod or Secret left", lambda: left_behind(on_cluster) == NOTHING)

    (workdir / "Snakefile").write_text(TOOL_PAIR.replace("sleep 15", "sleep 300"))
    proc = byok8s(*args, *bucket_args(cluster_s3, "toolsig"), cwd=workdir)
    wait_until("slow's pod running", lambda: running_pods(on_cluster, "slow"))
    assert running_pods(on_cluster, "slow")[0].spec.containers[-1].image.endswith(BWA)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - sent < 10
    assert stderr.strip().splitlines()[-1] == (
        "byok8s: error: interrupted by Ctrl-C; the run's jobs were cancelled"
    )
    wait_until("no Job, pod or Secret left", lambda: left_behind(on_cluster) == NOTHING)


@pytest.mark.parametrize(
    "container, rules, fragment",
    [
        (f'"{BWA}"', {"all": {"image": ""}}, "image '' is empty"),
        ('"byok8s-tool/bwa: 0.7.17"', {}, "rule all's container: image 'byok8s-tool/bwa: "),
        ('"shub://vsoch/hello-world"', {}, "a shub:// image is for Apptainer"),
        (f'"{BWA}"', {"bwa_mem": {"image": BWA}}, "'bwa_mem' is not a rule of this workflow"),
        (f'"{BWA}"', {"all": {"image": " "}}, "image ' ' is empty"),
    ],
    ids=["empty", "spaces", "apptainer", "no such rule", "blank in config"],
)
def test_bad_rule_images_are_one_line_before_anything_runs(
    on_cluster: dict, cluster_s3: dict, workdir: Path, container: str, rules: dict, fragment: str
) -> None:
    (workdir / "Snakefile").write_text(
        f'rule all:\n    output: "x.txt"\n    container: {container}\n'
        '    shell: "echo x > {output}"\n'
    )
    write_json(workdir / "wf.json", {"snakefile": "Snakefile", "targets": ["all"], "rules": rules})
    write_json(workdir / "params.json", {})
    result, seen = run_on_s3(on_cluster, cluster_s3, "wf.json", "params.json", "bad", cwd=workdir)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and "TLS verification is off" not in line
    ]  # the local cluster's own warning
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not seen.pods and "Traceback" not in result.stderr
    assert left_behind(on_cluster) == {"jobs": [], "pods": [], "secrets": []}


def test_doctor_lists_the_rules_images_and_whether_the_cluster_gets_them(
    on_cluster: dict, workdir: Path
) -> None:
    """One row per image the rules name: on a node, or not pullable (with the
    kubelet's reason and the fix); the job image's row says the same of it."""
    import json

    from helpers import run_cli

    params = varcall_params(workdir, {"bwa": f"docker://{BWA}",
                                      "samtools": "registry.invalid/samtools:1",
                                      "bcftools": SAMTOOLS})  # fmt: skip
    cluster, namespace = on_cluster["cluster"], on_cluster["namespace"]
    done = run_cli("doctor", "--json", "workflow-varcall", params, "-k", namespace,
                   "--container-image", cluster.image, cwd=workdir, timeout=300)  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert done.returncode == 5, rows
    assert rows["image"]["status"] == "skip" and "on node" in rows["image"]["detail"]
    bwa = rows[f"image {BWA}"]
    assert bwa["status"] == "ok" and bwa["detail"] == "rules bwa_index, bwa_map: on node " + (
        "byok8s-node")  # fmt: skip
    assert rows[f"image {SAMTOOLS}"]["detail"].startswith("rule bcftools_call: on node")
    bad = rows["image registry.invalid/samtools:1"]
    assert bad["status"] == "FAIL", bad
    assert bad["detail"].startswith("rules samtools_faidx, samtools_index, samtools_sort: "
                                    "cannot be pulled (")  # fmt: skip
    assert "--image-pull-secret" in bad["fix"]
    # The probe Job is gone.
    assert left_behind(on_cluster)["jobs"] == []
    # A job image that cannot be pulled is said plainly too, with what to do.
    image = "registry.invalid/byok8s-job:0.1.0-snakemake1"
    done = run_cli("doctor", "--json", "-k", namespace, "--container-image", image,
                   cwd=workdir, timeout=300)  # fmt: skip
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["image"]["status"] == "FAIL"
    assert rows["image"]["detail"].startswith(f"{image} cannot be pulled (")
    assert "--container-image" in rows["image"]["fix"]
