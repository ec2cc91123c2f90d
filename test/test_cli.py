"""The command line: help, listing, and every kind of bad input (exit code + one line)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_one_line_error, invoke, tree, write_json

from byok8s.errors import ExitCode


def test_help_lists_options_and_hides_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-show-this-secret")
    monkeypatch.setenv("BYOK8S_BUCKET", "s3://secret-bucket-name")
    result = invoke("run", "--help")
    assert result.exit_code == 0
    for option in (
        "--snakefile",
        "--k8s-namespace",
        "--bucket",
        "--s3-bucket",
        "--executor",
        "--jobs",
        "--cores",
        "--container-image",
        "--envvars",
        "--s3-endpoint-url",
        "--dry-run",
        "--forceall",
        "--keep-going",
        "--retries",
        "--use-conda",
        "--verbose",
    ):
        assert option in result.stdout
    assert "do-not-show-this-secret" not in result.stdout
    assert "secret-bucket-name" not in result.stdout


def test_version_and_workflows() -> None:
    from byok8s import __version__

    assert __version__ in invoke("--version").stdout
    listing = invoke("workflows").stdout
    assert "alpha" in listing and "fanout" in listing
    assert "params-blue" in listing and "workflow-fanout" in listing


def test_help_is_fast() -> None:
    """`byok8s --help` imports no heavy library (snakemake, kubernetes, boto3, azure)."""
    code = (
        "import sys, byok8s.cli as c\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(c.cli, ['run', '--help'])\n"
        "heavy = [m for m in ('snakemake', 'kubernetes', 'boto3', 'azure', 'rich')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _bad_files(tmp: Path) -> None:
    (tmp / "broken.json").write_text('{"workflow": "alpha",')
    (tmp / "broken.yaml").write_text("workflow: [alpha\n")
    write_json(tmp / "list.json", ["workflow", "alpha"])
    write_json(tmp / "unknown-key.json", {"workflow": "alpha", "tagret": "x"})
    write_json(tmp / "wrong-type.json", {"workflow": "alpha", "targets": 5})
    write_json(tmp / "no-such-workflow.json", {"workflow": "omega"})
    write_json(tmp / "bad-target.json", {"workflow": "alpha", "targets": ["no_such_rule"]})
    write_json(tmp / "escaping-target.json", {"workflow": "alpha", "targets": ["../x.txt"]})
    write_json(tmp / "reserved.json", {"byok8s": {"run": 1}, "name": "x"})
    (tmp / "truncated.json").write_text('{"name": "bl')
    (tmp / "empty.yaml").write_text("")
    (tmp / "tabs.yaml").write_text("workflow:\talpha\n\ttargets: [x]\n")
    write_json(tmp / "null-params.json", None)
    write_json(tmp / "list-params.json", ["name", "blue"])
    write_json(tmp / "absolute-target.json", {"workflow": "alpha", "targets": ["/etc/passwd"]})
    write_json(tmp / "jobs-string.json", {"workflow": "alpha", "jobs": "4"})
    write_json(tmp / "both.json", {"workflow": "alpha", "snakefile": "Snakefile"})
    write_json(tmp / "selector-number.json", {"workflow": "alpha", "node_selector": 5})
    write_json(tmp / "selector-nested.json", {"workflow": "alpha", "node_selector": {"a": [1]}})
    write_json(tmp / "bad-pvc.json", {"workflow": "alpha", "pvc": ["refdata:/ref:rx"]})
    write_json(
        tmp / "bad-rule-plan.json",
        {"workflow": "alpha", "rules": {"target1": {"priority_class": "Urgent!"}}},
    )
    write_json(
        tmp / "bad-spot.json", {"workflow": "alpha", "rules": {"target1": {"spot": "sometimes"}}}
    )
    write_json(tmp / "rule-plan-list.json", {"workflow": "alpha", "rules": {"target1": ["x"]}})
    write_json(tmp / "bad-affinity.json", {"workflow": "alpha", "affinity": "close"})


BAD_INPUT = [
    # (args, env, exit code, message fragments)
    (["missing-wf", "params-blue"], {}, ExitCode.CONFIG, ["'missing-wf' not found"]),
    (["workflow-alpha", "missing-params"], {}, ExitCode.CONFIG, ["'missing-params' not found"]),
    (["broken", "params-blue"], {}, ExitCode.CONFIG, ["not valid JSON", "line 1"]),
    (["broken.yaml", "params-blue"], {}, ExitCode.CONFIG, ["not valid YAML"]),
    (["workflow-alpha", "truncated"], {}, ExitCode.CONFIG, ["not valid JSON"]),
    (["list", "params-blue"], {}, ExitCode.CONFIG, ["must hold a mapping"]),
    (["unknown-key", "params-blue"], {}, ExitCode.CONFIG, ["unknown key 'tagret'"]),
    (["wrong-type", "params-blue"], {}, ExitCode.CONFIG, ["'targets' must be a list"]),
    (
        ["no-such-workflow", "params-blue"],
        {},
        ExitCode.CONFIG,
        ["unknown bundled workflow 'omega'", "alpha"],
    ),
    (["escaping-target", "params-blue"], {}, ExitCode.CONFIG, ["'../x.txt'"]),
    (["workflow-alpha", "reserved"], {}, ExitCode.CONFIG, ["'byok8s' is reserved"]),
    (["bad-target", "params-blue"], {}, ExitCode.CONFIG, ["target not found", "no_such_rule"]),
    (
        ["workflow-alpha", "params-blue", "-s", "nope/Snakefile"],
        {},
        ExitCode.CONFIG,
        ["Snakefile", "not found"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "http://x/y"],
        {},
        ExitCode.STORAGE,
        ["unsupported scheme 'http'"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "my-bucket"],
        {},
        ExitCode.STORAGE,
        ["is not a URL", "s3://NAME"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://"],
        {},
        ExitCode.STORAGE,
        ["not a valid S3 bucket name"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://Bad_Name"],
        {},
        ExitCode.STORAGE,
        ["'Bad_Name' is not a valid S3 bucket name"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "az://a--b"],
        {},
        ExitCode.STORAGE,
        ["not a valid Azure container name"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://ok-bucket/a/../b"],
        {},
        ExitCode.STORAGE,
        ["invalid path"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://ok-bucket/a b"],
        {},
        ExitCode.STORAGE,
        ["invalid path"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://ok-bucket?x=1"],
        {},
        ExitCode.STORAGE,
        ["must not carry a query"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://ok-bucket", "--executor", "local"],
        {},
        ExitCode.STORAGE,
        ["no AWS credentials", "AWS_ACCESS_KEY_ID"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "az://container", "--executor", "local"],
        {},
        ExitCode.STORAGE,
        ["AZ_BLOB_ACCOUNT_URL"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "az://container", "--executor", "local"],
        {"AZ_BLOB_ACCOUNT_URL": "https://acct.blob.core.windows.net"},
        ExitCode.STORAGE,
        ["no Azure credentials", "AZ_BLOB_CREDENTIAL"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "az://container", "--executor", "local"],
        {
            "AZ_BLOB_ACCOUNT_URL": "https://acct.blob.core.windows.net",
            "AZ_BLOB_CREDENTIAL": "not-a-key",
        },
        ExitCode.STORAGE,
        ["neither a SAS token"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "gs://my-bucket", "--executor", "local"],
        {},
        ExitCode.STORAGE,
        ["GOOGLE_CLOUD_PROJECT"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "gs://my-bucket", "--executor", "local"],
        {"GOOGLE_CLOUD_PROJECT": "p"},
        ExitCode.STORAGE,
        ["no Google Cloud credentials"],
    ),
    (
        ["workflow-alpha", "params-blue", "--executor", "kubernetes"],
        {},
        ExitCode.CONFIG,
        ["needs object storage", "--bucket"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://a-bucket", "--s3-bucket", "b"],
        {},
        ExitCode.CONFIG,
        ["only one"],
    ),
    (
        ["workflow-alpha", "params-blue", "-k", "Bad_Namespace"],
        {},
        ExitCode.CONFIG,
        ["'Bad_Namespace'", "not a valid Kubernetes name"],
    ),
    (
        ["workflow-alpha", "params-blue", "--envvars", "NOT_SET_ANYWHERE"],
        {},
        ExitCode.CONFIG,
        ["NOT_SET_ANYWHERE", "not set"],
    ),
    (["workflow-alpha", "params-blue", "--jobs", "0"], {}, ExitCode.CONFIG, ["at least 1"]),
    (["workflow-alpha", "params-blue", "--cores", "0"], {}, ExitCode.CONFIG, ["at least 1"]),
    (["workflow-alpha", "params-blue", "--retries", "-1"], {}, ExitCode.CONFIG, ["0 or more"]),
    (["workflow-alpha", "params-blue", "--run-as-user", "-1"], {}, ExitCode.CONFIG, ["user id"]),
    (
        ["workflow-alpha", "params-blue", "--service-account", "Bad_SA"],
        {},
        ExitCode.CONFIG,
        ["service account 'Bad_SA'", "not a valid Kubernetes name"],
    ),
    (["workflow-alpha", "params-blue", "--jobs", "many"], {}, ExitCode.USAGE, ["'many'"]),
    (["empty.yaml", "params-blue"], {}, ExitCode.CONFIG, ["Snakefile", "not found"]),
    (["tabs.yaml", "params-blue"], {}, ExitCode.CONFIG, ["not valid YAML"]),
    (["workflow-alpha", "null-params"], {}, ExitCode.CONFIG, ["must hold a mapping"]),
    (["workflow-alpha", "list-params"], {}, ExitCode.CONFIG, ["must hold a mapping"]),
    (["absolute-target", "params-blue"], {}, ExitCode.CONFIG, ["'/etc/passwd'"]),
    (["jobs-string", "params-blue"], {}, ExitCode.CONFIG, ["'jobs' must be an integer"]),
    (["both", "params-blue"], {}, ExitCode.CONFIG, ["either 'workflow'", "not both"]),
    (["workflow-omega", "params-blue"], {}, ExitCode.CONFIG, ["'workflow-omega' not found"]),
    (
        ["workflow-alpha", "params-blue", "-k", "a" * 64],
        {},
        ExitCode.CONFIG,
        ["not a valid Kubernetes name", "at most 63"],
    ),
    (
        ["workflow-alpha", "params-blue", "-k", "ends-with-"],
        {},
        ExitCode.CONFIG,
        ["'ends-with-'", "not a valid Kubernetes name"],
    ),
    (
        ["workflow-alpha", "params-blue", "--envvars", "BAD-NAME"],
        {},
        ExitCode.CONFIG,
        ["'BAD-NAME'", "not a valid environment variable name"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://ok-bucket/../../etc"],
        {},
        ExitCode.STORAGE,
        ["invalid path"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "az://"],
        {},
        ExitCode.STORAGE,
        ["not a valid Azure container name"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "gs://x"],
        {},
        ExitCode.STORAGE,
        ["not a valid"],
    ),
    (
        ["workflow-alpha", "params-blue", "--bucket", "s3://user:pw@ok-bucket"],
        {},
        ExitCode.STORAGE,
        ["must not carry", "user info"],
    ),
    (
        ["workflow-alpha", "params-blue"],
        {"BYOK8S_BUCKET": "ftp://x"},
        ExitCode.STORAGE,
        ["unsupported scheme 'ftp'"],
    ),
    (
        ["workflow-alpha", "params-blue"],
        {"BYOK8S_EXECUTOR": "kubernetes"},
        ExitCode.CONFIG,
        ["needs object storage"],
    ),
    *[
        (["workflow-alpha", "params-blue", *extra], {}, ExitCode.CONFIG, fragments)
        for extra, fragments in [
            (["--pvc", "refdata"], ["--pvc 'refdata' is not of the form CLAIM:/mount/path"]),
            (["--pvc", "refdata:/workdir"], ["'/workdir' is used by byok8s itself"]),
            (["--scratch", "/tmp:lots"], ["'lots' is not a size or 'memory'"]),
            (["--pvc", "ref:/x", "--scratch", "/x/"], ["'/x' is used twice"]),
            (["--node-selector", "agentpool"], ["is not a node label KEY=VALUE"]),
            (["--toleration", "sku=gpu:NoRun"], ["EFFECT one of NoSchedule"]),
            (["--pending-timeout", "-5"], ["--pending-timeout must be seconds", "-5"]),
            (["--infra-retries", "-1"], ["--infra-retries must be 0 or more, got -1"]),
            (["--pod-label", "team"], ["pod options: label 'team' is not a label KEY=VALUE",
                                       "(from command line)"]),
            (["--priority-class", "Urgent!"], ["priority_class 'Urgent!' is not a Kubernetes"]),
            (["--image-pull-secret", "Bad_Name"], ["image pull secret 'Bad_Name'"]),
            (["--default-resources", "mem_mb"], ["'mem_mb' (from command line) is not NAME=VALUE"]),
            (["--spot-label", "pool"], ["--spot-label 'pool' is not a node label KEY=VALUE",
                                        "e.g. node-pool/capacity=spot"]),
            (["--node-lost-after", "0"], ["--node-lost-after must be seconds (1 or more), got 0"]),
        ]
    ],
    (["bad-rule-plan", "params-blue"], {}, ExitCode.CONFIG,
     ["bad-rule-plan.json: rules: target1: priority_class 'Urgent!' is not a Kubernetes name"]),
    (["bad-spot", "params-blue"], {}, ExitCode.CONFIG,
     ["bad-spot.json: rules: target1: spot 'sometimes' must be true or false"]),
    (["rule-plan-list", "params-blue"], {}, ExitCode.CONFIG,
     ["rules: 'target1' must be a mapping of pod options"]),
    (["bad-affinity", "params-blue"], {}, ExitCode.CONFIG, ["key 'affinity' must be"]),
    (["selector-number", "params-blue"], {}, ExitCode.CONFIG,
     ["'node_selector' must be a list of 'KEY=VALUE' strings or a mapping, got an integer"]),
    (["selector-nested", "params-blue"], {}, ExitCode.CONFIG, ["'node_selector' must be"]),
    (["bad-pvc", "params-blue"], {}, ExitCode.CONFIG, ["mode 'rx' must be ro or rw",
                                                       "from workflow config"]),
    (["workflow-alpha", "params-blue", "--default-resources", "mem_mb=lots"], {}, ExitCode.CONFIG,
     ["--default-resources 'mem_mb=lots'", "quote text"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "args, env, code, fragments",
    BAD_INPUT,
    ids=[" ".join(case[0][:1] + case[0][2:]) for case in BAD_INPUT],
)
def test_bad_input(
    args: list[str],
    env: dict,
    code: int,
    fragments: list[str],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _bad_files(workdir)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = tree(workdir)
    result = invoke(*args)
    assert_one_line_error(result, code, *fragments)
    assert tree(workdir) == before, "bad input must leave nothing behind"
    assert result.stdout == ""


def test_unknown_executor_is_a_usage_error(workdir: Path) -> None:
    result = invoke("workflow-alpha", "params-blue", "--executor", "slurm")
    assert result.exit_code == ExitCode.USAGE
    assert "slurm" in result.stderr


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: k\n  cluster:\n    server: {server}\n"
        "    insecure-skip-tls-verify: true\n"
        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
        "users:\n- name: u\n  user:\n    token: abc\n"
    )
    return path


def test_missing_kubeconfig(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAXX")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secretvalue")
    before = tree(workdir)
    result = invoke("workflow-alpha", "params-blue", "--bucket", "s3://some-bucket")
    assert_one_line_error(result, ExitCode.CLUSTER, "no usable kubeconfig", "KUBECONFIG")
    assert tree(workdir) == before


def test_unreachable_cluster_fails_fast(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from services import free_port

    port = free_port()  # nothing listens there
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{port}")))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAXX")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secretvalue")
    before = tree(workdir)
    started = time.monotonic()
    result = invoke("workflow-alpha", "params-blue", "--bucket", "s3://some-bucket")
    assert time.monotonic() - started < 15
    assert_one_line_error(
        result, ExitCode.CLUSTER, "cannot reach the Kubernetes API", f"127.0.0.1:{port}"
    )
    assert tree(workdir) == before


def test_verbose_shows_traceback(workdir: Path) -> None:
    result = invoke("missing-wf", "params-blue", "--verbose")
    assert result.exit_code == ExitCode.CONFIG
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_a_missing_input_is_told_by_snakemakes_exception_type(workdir: Path) -> None:
    """A failed run (with its record), not bad input: the line names the file."""
    (workdir / "needs.smk").write_text("rule all:\n    input: 'absent.txt'\n")
    write_json(workdir / "wf.json", {"snakefile": "needs.smk"})
    write_json(workdir / "p.json", {})
    result = invoke("wf.json", "p.json")
    assert_one_line_error(result, ExitCode.WORKFLOW_FAILED, "missing input", "absent.txt",
                          "create it or fix the workflow")  # fmt: skip
