"""`--executor azure-batch`: the settings mapping and the exact requests sent to
Azure Batch, against the recorded fake of its REST APIs (test/fake_batch.py);
the tasks run on this machine with S3 (moto) as storage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# test/setup.sh installs the azure-batch extra: missing, these tests fail, not skip.
import snakemake_executor_plugin_azure_batch  # noqa: E402, F401
from conftest import S3_SECRET
from fake_batch import ARM, STATES, TOKEN, FakeBatch
from helpers import assert_one_line_error, invoke, write_json

from byok8s.errors import ExitCode

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
ACCOUNT = "https://byok8stest.westeurope.batch.azure.com"
IMAGE = "byok8sacr.azurecr.io/byok8s-job:test"
BATCH = [
    "--executor", "azure-batch",
    "--az-batch-account-url", ACCOUNT,
    "--az-batch-resource-group", "rg-genomics",
    "--az-batch-subscription-id", SUBSCRIPTION,
    "--container-image", IMAGE,
]  # fmt: skip


def run_on_batch(
    s3: dict, monkeypatch: pytest.MonkeyPatch, *extra: str, fake: FakeBatch | None = None,
    workflow: str = "workflow-alpha",
) -> tuple:  # fmt: skip
    fake = fake or FakeBatch()
    fake.install(monkeypatch)
    url = f"s3://{s3['bucket']}/batch"
    result = invoke(
        workflow, "params-blue", "--bucket", url, "--s3-endpoint-url", s3["endpoint"],
        *BATCH, *extra,
    )  # fmt: skip
    return result, fake


def test_a_run_on_azure_batch_sends_exactly_these_requests(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, fake = run_on_batch(
        s3, monkeypatch,
        "--az-batch-vm-size", "Standard_E4s_v5", "--az-batch-nodes", "3",
        "--az-batch-tasks-per-node", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    body = s3["client"].get_object(Bucket=s3["bucket"], Key="batch/alpha.txt")["Body"].read()
    assert body == b"alpha blue\n"  # the task really ran (here) and staged its output

    (pool_id,) = fake.pools
    (task_id,) = fake.tasks
    job_id = next(c.body["id"] for c in fake.calls if c.path == "/jobs")
    assert fake.paths()[:3] == [
        f"PUT {ARM} /subscriptions/{SUBSCRIPTION}/resourceGroups/rg-genomics/providers/"
        f"Microsoft.Batch/batchAccounts/byok8stest/pools/{pool_id}",
        "POST batch /jobs",
        f"POST batch /jobs/{job_id}/tasks",
    ]
    assert fake.paths()[-2:] == [f"DELETE batch /jobs/{job_id}", f"DELETE batch /pools/{pool_id}"]
    assert all(c.authorization == f"Bearer {TOKEN}" for c in fake.calls)
    assert {c.api_version for c in fake.calls} == {"2024-02-01", "2024-02-01.19.0"}

    props = fake.pools[pool_id]["properties"]
    assert props["vmSize"] == "Standard_E4s_v5"
    assert props["taskSlotsPerNode"] == 2
    assert props["scaleSettings"] == {"fixedScale": {"resizeTimeout": "PT15M",
                                                     "targetDedicatedNodes": 3}}  # fmt: skip
    vm = props["deploymentConfiguration"]["virtualMachineConfiguration"]
    assert vm["containerConfiguration"] == {"type": "dockerCompatible",
                                            "containerImageNames": [IMAGE]}  # fmt: skip
    job = next(c.body for c in fake.calls if c.path == "/jobs")
    assert job == {"id": job_id, "poolInfo": {"poolId": pool_id}, "maxParallelTasks": -1,
                   "constraints": {"maxTaskRetryCount": 0}}  # fmt: skip

    task = fake.tasks[task_id]["add"]
    assert task["containerSettings"] == {"imageName": IMAGE, "containerRunOptions": "--rm"}
    command = task["commandLine"]
    assert command.startswith("/bin/bash -c ") and "pip install" not in command
    assert "--deploy-sources s3://" in command  # the sources travel through the bucket
    assert "--directory" not in command  # the task runs where its sources are
    # Credentials go in the task's environment settings (Batch has no secret
    # references), never in its command line, which every reader of the job sees.
    env = {s["name"]: s.get("value") for s in task["environmentSettings"]}
    assert env["SNAKEMAKE_STORAGE_S3_SECRET_KEY"] == S3_SECRET
    assert S3_SECRET not in command and "export " not in command
    assert S3_SECRET not in result.stdout + result.stderr
    # The sources uploaded for the tasks are removed at the end.
    keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"])["Contents"]]
    assert not [k for k in keys if "snakemake-workflow-sources" in k], keys


@pytest.mark.parametrize(
    "extra, scale",
    [
        (["--az-batch-spot", "--az-batch-nodes", "5"],
         {"fixedScale": {"resizeTimeout": "PT15M", "targetDedicatedNodes": 0,
                         "targetLowPriorityNodes": 5}}),
        (["--az-batch-autoscale", "--az-batch-nodes", "8", "--az-batch-tasks-per-node", "4"],
         {"autoScale": {"evaluationInterval": "PT5M", "formula": "$TargetDedicatedNodes = "
                        "max(0, min($nodes, 8));", "tasks_per_node": 4}}),
        (["--az-batch-autoscale", "--az-batch-spot", "--az-batch-nodes", "2"],
         {"autoScale": {"evaluationInterval": "PT5M", "formula": "$TargetLowPriorityNodes = "
                        "max(0, min($nodes, 2));", "tasks_per_node": 1}}),
    ],
)  # fmt: skip
def test_spot_and_autoscaled_pools(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch, extra: list, scale: dict
) -> None:
    """The stock plugin overwrites its autoscale formula with a fixed scale of 0
    nodes (a pool that never runs anything) and has no spot nodes: ours asks for
    what the options say, and keeps the sources with --keep-sources."""
    result, fake = run_on_batch(s3, monkeypatch, *extra, "--keep-sources")
    assert result.exit_code == 0, result.stderr
    (pool,) = fake.pools.values()
    sent = pool["properties"]["scaleSettings"]
    if "fixedScale" in scale:
        assert sent == scale
    else:
        auto = sent["autoScale"]
        assert auto["evaluationInterval"] == scale["autoScale"]["evaluationInterval"]
        assert scale["autoScale"]["formula"] in auto["formula"]
        assert f"ceil($tasks / {scale['autoScale']['tasks_per_node']})" in auto["formula"]
        assert "$NodeDeallocationOption = taskcompletion;" in auto["formula"]
    keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"])["Contents"]]
    assert [k for k in keys if "snakemake-workflow-sources" in k]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--executor", "azure-batch"],
         ["needs --az-batch-account-url, --az-batch-resource-group, --az-batch-subscription-id"]),
        ([*BATCH[:2], "--az-batch-account-url", "https://batch.azure.com",
          *BATCH[4:]], ["is not a Batch account URL", "https://ACCOUNT.REGION.batch.azure.com"]),
        ([*BATCH[:6], "--az-batch-subscription-id", "my-sub"], ["is not a subscription id"]),
        ([*BATCH, "--az-batch-nodes", "0"], ["--az-batch-nodes must be at least 1, got 0"]),
    ],
)  # fmt: skip
def test_bad_batch_settings(s3: dict, workdir: Path, args: list, fragments: list) -> None:
    url = f"s3://{s3['bucket']}/batch"
    result = invoke("workflow-alpha", "params-blue", "--bucket", url, *args)
    assert_one_line_error(result, ExitCode.CONFIG, *fragments)


def test_a_task_is_followed_through_its_states_and_busy_answers_are_retried(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task is active, then running, then completed; the service answers the task's
    submission 429 and the management API the pool's creation 503, each with
    Retry-After: both are sent again after that wait, and the run succeeds."""
    fake = FakeBatch(
        states=STATES,
        throttle=[(r"POST /jobs/[^/]+/tasks", 429), (r"PUT /subscriptions/.*/pools/.*", 503)],
    )
    result, fake = run_on_batch(s3, monkeypatch, fake=fake)
    assert result.exit_code == 0, result.stderr
    (task,) = fake.tasks.values()
    assert task["states"] == ["active", "running", "completed"]
    assert fake.throttle == []  # both busy answers were given
    for pattern in (r"POST /jobs/[^/]+/tasks", r"PUT /subscriptions/.*/pools/.*"):
        sent = [c for c in fake.calls if re.fullmatch(pattern, f"{c.method} {c.path}")]
        assert [c.status for c in sent] in ([429, 201], [503, 200]), pattern
        assert sent[1].at - sent[0].at >= 1.0  # after Retry-After, not at once


def test_a_failing_task_says_its_exit_code_and_batchs_reason_in_one_line(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "Snakefile").write_text(
        "rule all:\n    output: 'out.txt'\n    shell: 'echo the tool broke >&2; exit 3'\n"
    )
    write_json(workdir / "wf.json", {"snakefile": "Snakefile"})
    result, fake = run_on_batch(s3, monkeypatch, workflow="wf.json")
    assert result.exit_code == ExitCode.WORKFLOW_FAILED, result.stderr
    (task_id,) = fake.tasks
    # The task is Snakemake running the job: it exits 1; its stderr says the rest.
    assert (
        f"Azure Batch task {task_id} failed with exit code 1 (usererror FailureExitCode: The "
        "task exited with an exit code representing a failure)" in result.stderr
    )
    assert "| the tool broke" in result.stderr  # the end of the task's stderr
    assert "returned non-zero exit status 3" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("byok8s: error: 1 job failed: rule all [job 0]"), last
    assert "Traceback" not in result.stderr


def test_an_existing_pool_is_used(s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, fake = run_on_batch(s3, monkeypatch, "--verbose", fake=FakeBatch(pool_exists=True))
    assert result.exit_code == 0, result.stderr
    assert [c.status for c in fake.calls if c.host == ARM] == [409]
    assert "exists" in result.stderr and len(fake.tasks) == 1


def test_keep_pool_and_a_managed_identity(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--az-batch-keep-pool deletes neither the Batch job nor the pool; the identity
    is the pool's (for storage and registries) and the tasks know its client id."""
    identity = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-genomics/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/byok8s-nodes"
    )
    client_id = "6e0c4a5b-0d52-4c5e-9d7e-2f0f3b1f2a11"
    result, fake = run_on_batch(
        s3, monkeypatch, "--az-batch-keep-pool", "--az-batch-identity", identity,
        "--az-batch-identity-client-id", client_id,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert not [c for c in fake.calls if c.method == "DELETE"], fake.paths()
    (pool,) = fake.pools.values()
    assert pool["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
    (task,) = fake.tasks.values()
    env = {s["name"]: s.get("value") for s in task["add"]["environmentSettings"]}
    assert env["AZURE_CLIENT_ID"] == client_id


def test_a_rules_own_image_is_its_tasks_container_with_the_runtime_from_the_node(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool prefetches the rule's image and copies the job runtime to each node
    (its start task, in the job image); the rule's task runs in its image with the
    runtime mounted, started by the runtime's Python; the other rule's as before.
    (The fake runs the tasks here: the mounted runtime is this venv's Python.)"""
    from byok8s.batch_plugin import NODE_RUNTIME

    tool = "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8"
    (workdir / "Snakefile").write_text(
        'rule all:\n    input: "a.txt", "b.txt"\n'
        f'rule a:\n    output: "a.txt"\n    container: "docker://{tool}"\n'
        '    shell: "echo a > {output}"\n'
        'rule b:\n    output: "b.txt"\n    shell: "echo b > {output}"\n'
    )
    write_json(workdir / "wf.json", {"snakefile": "Snakefile", "targets": ["all"]})
    write_json(workdir / "params.json", {})
    fake = FakeBatch()
    fake.install(monkeypatch)
    result = invoke("wf.json", "params.json", "--bucket", f"s3://{s3['bucket']}/own",
                    "--s3-endpoint-url", s3["endpoint"], *BATCH)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    for name in ("a", "b"):
        got = s3["client"].get_object(Bucket=s3["bucket"], Key=f"own/{name}.txt")["Body"].read()
        assert got == f"{name}\n".encode()
    (pool_id,) = fake.pools
    props = fake.pools[pool_id]["properties"]
    vm = props["deploymentConfiguration"]["virtualMachineConfiguration"]
    assert vm["containerConfiguration"]["containerImageNames"] == [IMAGE, tool]
    start = props["startTask"]
    mount = f"--rm -v {NODE_RUNTIME}:{NODE_RUNTIME}"
    assert start["containerSettings"] == {"imageName": IMAGE, "containerRunOptions": mount}
    copy = "cp -dR --preserve=mode,timestamps --"
    assert start["commandLine"] == (
        f"/bin/sh -c 'rm -rf {NODE_RUNTIME} && mkdir -p {NODE_RUNTIME} && cd "
        f"/opt/byok8s-runtime && {copy} * {NODE_RUNTIME}/'"
    )
    assert start["waitForSuccess"] is True
    tasks = {t["add"]["displayName"]: t["add"] for t in fake.tasks.values()}
    mounted = f"--rm -v {NODE_RUNTIME}:/byok8s/rt:ro"
    assert tasks["a"]["containerSettings"] == {"imageName": tool, "containerRunOptions": mounted}
    command = tasks["a"]["commandLine"]
    assert (
        command.startswith("/bin/sh -c ") and "/byok8s/rt/bin/python3 -E -s -m snakemake" in command
    )
    assert f"the job runtime does not run in image {tool}" in command
    assert tasks["b"]["containerSettings"] == {"imageName": IMAGE, "containerRunOptions": "--rm"}
    assert tasks["b"]["commandLine"].startswith("/bin/bash -c ")


def test_the_workflow_configs_rule_image_is_its_tasks_container(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rules.RULE.image` wins over the rule's container: (said with --verbose), gives
    a rule without one its image, and is prefetched by the pool; the rules' pod options
    are said to be ignored."""
    bwa, samtools = "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8", "samtools:1.16"
    (workdir / "Snakefile").write_text(
        'rule all:\n    input: "a.txt", "b.txt"\n'
        f'rule a:\n    output: "a.txt"\n    container: "docker://{bwa}"\n'
        '    shell: "echo a > {output}"\n'
        'rule b:\n    output: "b.txt"\n    shell: "echo b > {output}"\n'
    )
    rules = {"a": {"image": samtools, "node_selector": {"pool": "big"}},
             "b": {"image": f"docker://{bwa}"}}  # fmt: skip
    write_json(workdir / "wf.json", {"snakefile": "Snakefile", "targets": ["all"], "rules": rules})
    write_json(workdir / "params.json", {})
    fake = FakeBatch()
    fake.install(monkeypatch)
    result = invoke("wf.json", "params.json", "--bucket", f"s3://{s3['bucket']}/given",
                    "--s3-endpoint-url", s3["endpoint"], "--verbose", *BATCH)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "rules: node_selector only apply to pods (--executor kubernetes)" in result.stderr
    assert f"rule a [job 1]: image {samtools} from the workflow config, not {bwa}" in (
        result.stderr
    )
    (pool,) = fake.pools.values()
    vm = pool["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]
    assert vm["containerConfiguration"]["containerImageNames"] == [IMAGE, bwa, samtools]
    tasks = {t["add"]["displayName"]: t["add"] for t in fake.tasks.values()}
    assert tasks["a"]["containerSettings"]["imageName"] == samtools
    assert tasks["b"]["containerSettings"]["imageName"] == bwa
    for name in ("a", "b"):
        got = s3["client"].get_object(Bucket=s3["bucket"], Key=f"given/{name}.txt")["Body"]
        assert got.read() == f"{name}\n".encode()


@pytest.mark.parametrize(
    ("rules", "fragments"),
    [
        ({"nope": {"image": "samtools:1.16"}},
         ["rules: 'nope' is not a rule of this workflow", "its rules: a"]),
        ({"a": {"image": ""}}, ["rules: a: image '' is empty"]),
        ({"a": {"image": "two words"}}, ["image 'two words' is not an image reference"]),
        ({"a": "samtools"}, ["rules: a must be a mapping"]),
    ],
)  # fmt: skip
def test_a_bad_rule_image_for_batch_is_one_line_and_sends_nothing(
    s3: dict, workdir: Path, monkeypatch: pytest.MonkeyPatch, rules: dict, fragments: list
) -> None:
    (workdir / "Snakefile").write_text(
        'rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n'
    )
    write_json(workdir / "wf.json", {"snakefile": "Snakefile", "rules": rules})
    write_json(workdir / "params.json", {})
    fake = FakeBatch()
    fake.install(monkeypatch)
    result = invoke("wf.json", "params.json", "--bucket", f"s3://{s3['bucket']}/bad",
                    "--s3-endpoint-url", s3["endpoint"], *BATCH)  # fmt: skip
    assert_one_line_error(result, ExitCode.CONFIG, *fragments)
    assert not fake.calls
    assert "Contents" not in s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix="bad/")
