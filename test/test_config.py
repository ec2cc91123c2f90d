"""Config resolution: files, precedence, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_json

from byok8s import config, files
from byok8s.errors import ConfigError

CLI, ENV, DEFAULT = config.CLI, "environment (BYOK8S_X)", config.DEFAULT


# A Kubernetes run (the environment's S3 credentials: see resolve's env argument).
ON_K8S = {
    "executor": ("kubernetes", CLI),
    "bucket": ("s3://my-bucket", CLI),
    "container_image": ("img:1", CLI),
}
KEYS = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}


def given(**overrides: tuple) -> dict:
    base = {
        "workflow_config": ("workflow-alpha", CLI),
        "params": ("params-blue", CLI),
        "snakefile": (None, DEFAULT),
        "k8s_namespace": ("default", DEFAULT),
        "bucket": (None, DEFAULT),
        "s3_bucket": (None, DEFAULT),
        "executor": (None, DEFAULT),
        "jobs": (10, DEFAULT),
        "cores": (None, DEFAULT),
        "container_image": (None, DEFAULT),
        "envvars": ((), DEFAULT),
        "s3_endpoint_url": (None, DEFAULT),
        "workdir": (".", DEFAULT),
        "dry_run": (False, DEFAULT),
        "forceall": (False, DEFAULT),
        "keep_going": (False, DEFAULT),
        "retries": (0, DEFAULT),
        "use_conda": (False, DEFAULT),
        "verbose": (False, DEFAULT),
        "pvc": ((), DEFAULT),
        "scratch": ((), DEFAULT),
        "node_selector": ((), DEFAULT),
        "toleration": ((), DEFAULT),
        "pending_timeout": (900, DEFAULT),
        "cpu_scalar": (0.95, DEFAULT),
        "default_resources": ((), DEFAULT),
        "priority_class": (None, DEFAULT),
        "image_pull_policy": (None, DEFAULT),
        "image_pull_secret": ((), DEFAULT),
        "pod_label": ((), DEFAULT),
        "pod_annotation": ((), DEFAULT),
        "active_deadline": (None, DEFAULT),
    }
    base.update(overrides)
    return base


def test_bundled_names_resolve(workdir: Path) -> None:
    cfg = config.resolve(given(), {})
    assert cfg.workflow.bundled == "alpha"
    assert cfg.workflow.snakefile.name == "Snakefile" and cfg.workflow.snakefile.is_file()
    assert cfg.workflow.targets == ("target1",)
    assert dict(cfg.workflow.params) == {"name": "blue"}
    assert cfg.executor == "local" and cfg.storage is None
    assert cfg.cores >= 1


def test_local_file_wins_over_bundled(workdir: Path) -> None:
    (workdir / "Snakefile").write_text("rule x:\n    output: 'x'\n    shell: 'touch x'\n")
    write_json(workdir / "workflow-alpha.json", {"workflow_target": "x"})
    cfg = config.resolve(given(), {})
    assert cfg.workflow.bundled is None
    assert cfg.workflow.snakefile == workdir / "Snakefile"
    assert cfg.workflow.targets == ("x",)


def test_yaml_files_accepted(workdir: Path) -> None:
    (workdir / "wf.yaml").write_text("workflow: alpha\ntargets: target2\n")
    (workdir / "p.yml").write_text("name: green\n")
    cfg = config.resolve(given(workflow_config=("wf", CLI), params=("p", CLI)), {})
    assert cfg.workflow.targets == ("target2",)
    assert cfg.workflow.params["name"] == "green"


def test_precedence_cli_over_config_over_env(workdir: Path) -> None:
    write_json(
        workdir / "wf.json", {"workflow": "alpha", "k8s_namespace": "from-config", "jobs": 3}
    )
    cfg = config.resolve(
        given(
            workflow_config=("wf", CLI), k8s_namespace=("from-env", ENV), jobs=(7, CLI), **ON_K8S
        ),
        KEYS,
    )
    assert cfg.backend["k8s_namespace"] == "from-config"
    assert cfg.sources["k8s_namespace"] == f"workflow config {workdir / 'wf.json'}"
    assert cfg.jobs == 7 and cfg.sources["jobs"] == CLI
    cfg = config.resolve(
        given(workflow_config=("wf", CLI), k8s_namespace=("from-cli", CLI), **ON_K8S), KEYS
    )
    assert cfg.backend["k8s_namespace"] == "from-cli"
    cfg = config.resolve(given(k8s_namespace=("from-env", ENV), **ON_K8S), KEYS)
    assert cfg.backend["k8s_namespace"] == "from-env" and cfg.sources["k8s_namespace"] == ENV


def test_executor_defaults_to_kubernetes_with_bucket(workdir: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAXX", "AWS_SECRET_ACCESS_KEY": "s3cr3tvalue"}
    cfg = config.resolve(given(bucket=("s3://my-bucket/runs/1", CLI)), env)
    assert cfg.executor == "kubernetes" and cfg.remote
    assert str(cfg.storage.url) == "s3://my-bucket/runs/1"
    assert cfg.storage.url.key("alpha.txt") == "runs/1/alpha.txt"
    cfg = config.resolve(given(s3_bucket=("my-bucket", CLI), executor=("local", CLI)), env)
    assert str(cfg.storage.url) == "s3://my-bucket" and cfg.executor == "local"


def test_secrets_hidden_from_repr(workdir: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAHIDDEN1", "AWS_SECRET_ACCESS_KEY": "very-secret-value"}
    cfg = config.resolve(given(bucket=("s3://my-bucket", CLI)), env)
    text = repr(cfg)
    assert "very-secret-value" not in text and "AKIAHIDDEN1" not in text
    assert "my-bucket" in text


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"workflow": "alpha", "colour": "red"}, "unknown key 'colour'"),
        ({"workflow": "alpha", "targets": 5}, "'targets' must be a list of strings"),
        ({"workflow": "alpha", "targets": ["a", 1]}, "'targets' must be a list of strings"),
        ({"workflow": "alpha", "jobs": "many"}, "'jobs' must be an integer"),
        ({"workflow": "alpha", "jobs": True}, "'jobs' must be an integer"),
        ({"workflow": "alpha", "keep_going": "yes"}, "'keep_going' must be true or false"),
        ({"workflow": "alpha", "snakefile": "S"}, "either 'workflow'"),
    ],
)
def test_workflow_config_schema(data: dict, fragment: str, tmp_path: Path) -> None:
    path = write_json(tmp_path / "wf.json", data)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")) as info:
        config.check_workflow_config(files.load_mapping(path, "workflow config"), path)
    assert str(path) in str(info.value)


def test_envvars_split_and_checked(workdir: Path) -> None:
    cfg = config.resolve(given(envvars=(("A,B", "C"), CLI)), {"A": "1", "B": "2", "C": "3"})
    assert cfg.envvars == ("A", "B", "C")
    with pytest.raises(ConfigError, match="names B but it is not set"):
        config.resolve(given(envvars=(("A", "B"), CLI)), {"A": "1"})


def test_azure_forms_and_what_jobs_get(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://acct.blob.core.windows.net"
    sas = "sv=2024-01-01&ss=b&sig=c2lnbmF0dXJl"
    cfg = config.resolve(
        given(bucket=("az://data/run", CLI)), {"AZ_BLOB_ACCOUNT_URL": f"{url}?{sas}"}
    )
    assert cfg.storage.plugin_settings() == {"account_url": url, "credential": sas}
    assert "c2lnbmF0dXJl" in cfg.storage.secret_values() and sas not in repr(cfg)
    assert cfg.storage.job_envvar_names() == ()
    aad = {
        "AZ_BLOB_ACCOUNT_URL": url,
        "AZURE_CLIENT_ID": "id",
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_SECRET": "aad-client-secret",
    }
    for name, value in aad.items():
        monkeypatch.setenv(name, value)
    cfg = config.resolve(given(bucket=("az://data", CLI)), aad)
    assert cfg.storage.credential_kind == "Azure AD"
    assert cfg.storage.plugin_settings()["credential"] is None
    assert cfg.storage.job_envvar_names() == (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
    )
    assert cfg.storage.secret_values() == ("aad-client-secret",)


def test_pod_options_from_the_workflow_config_and_the_command_line(workdir: Path) -> None:
    write_json(
        workdir / "wf.json",
        {
            "workflow": "alpha",
            "pvc": ["refdata:/ref:ro"],
            "scratch": ["/scratch:1Gi"],
            "node_selector": {"agentpool": "highmem", "kubernetes.io/arch": "amd64"},
            "toleration": ["sku=highmem:NoSchedule"],
            "pending_timeout": 60,
            "default_resources": {"mem_mb": 4000, "disk_mb": "2*input.size_mb"},
        },
    )
    cfg = config.resolve(given(workflow_config=("wf.json", CLI)), {})
    assert cfg.default_resources == ("mem_mb=4000", "disk_mb=2*input.size_mb")
    assert cfg.ignored == (
        "--pvc", "--scratch", "--node-selector", "--toleration", "--pending-timeout"
    )  # fmt: skip
    pods = config.resolve(given(workflow_config=("wf.json", CLI), **ON_K8S), KEYS).backend
    assert pods["pvc"] == ("refdata:/ref:ro",) and pods["scratch"] == ("/scratch:1Gi",)
    assert pods["node_selector"] == ("agentpool=highmem", "kubernetes.io/arch=amd64")
    assert pods["toleration"] == ("sku=highmem:NoSchedule",) and pods["pending_timeout"] == 60
    cli = config.resolve(
        given(workflow_config=("wf.json", CLI), node_selector=(("agentpool=gpu",), CLI), **ON_K8S),
        KEYS,
    )
    assert cli.backend["node_selector"] == ("agentpool=gpu",)


def test_pod_options_are_ignored_with_a_warning_when_jobs_run_here(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from byok8s import backends

    cfg = config.resolve(given(pvc=(("refdata:/ref",), CLI)), {})
    backends.get(cfg.executor).preflight(cfg)
    assert "--pvc only apply to pods (--executor kubernetes); ignored for this local run" in (
        caplog.text
    )


def test_kubernetes_runs_hand_the_pod_options_to_the_plugin(workdir: Path) -> None:
    from byok8s.backends.kubernetes import KubernetesBackend
    from snakemake_executor_plugin_byok8s import ExecutorSettings

    cfg = config.resolve(
        given(
            executor=("kubernetes", CLI),
            bucket=("s3://my-bucket", CLI),
            container_image=("img:1", CLI),
            pvc=(("refdata:/ref:ro",), CLI),
            toleration=(("dedicated",), CLI),
            pending_timeout=(30, CLI),
        ),
        {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
    )
    settings = ExecutorSettings(**KubernetesBackend().settings(cfg))
    assert settings.pvc == ["refdata:/ref:ro"] and settings.toleration == ["dedicated"]
    assert settings.pending_timeout == 30 and settings.scratch == []


def test_scheduling_for_the_run_and_per_rule_reaches_the_plugin(workdir: Path) -> None:
    import json

    from byok8s.backends.kubernetes import KubernetesBackend

    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    write_json(
        workdir / "wf.json",
        {
            "workflow": "alpha",
            "affinity": affinity,
            "pod_label": {"team": "genomics"},
            "rules": {"target1": {"priority_class": "urgent", "toleration": ["gpu"]}},
        },
    )
    cfg = config.resolve(
        given(
            workflow_config=("wf.json", CLI),
            executor=("kubernetes", CLI),
            bucket=("s3://my-bucket", CLI),
            container_image=("img:1", CLI),
            image_pull_secret=(("acr",), CLI),
            active_deadline=(3600, CLI),
        ),
        {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
    )
    sent = json.loads(KubernetesBackend().settings(cfg)["scheduling"])
    assert sent == {
        "run": {"image_pull_secret": ["acr"], "label": ["team=genomics"],
                "active_deadline": 3600, "affinity": affinity},
        "rules": {"target1": {"priority_class": "urgent", "toleration": ["gpu"]}},
    }  # fmt: skip


def test_cpu_scalar_from_the_workflow_config_reaches_the_pods(workdir: Path) -> None:
    from byok8s.backends.kubernetes import KubernetesBackend

    write_json(workdir / "wf.json", {"workflow": "alpha", "cpu_scalar": 0.5})
    cfg = config.resolve(given(workflow_config=("wf.json", CLI), **ON_K8S), KEYS)
    assert KubernetesBackend().settings(cfg)["cpu_scalar"] == 0.5
    for bad in (0, 1.5, True, "half"):
        write_json(workdir / "wf.json", {"workflow": "alpha", "cpu_scalar": bad})
        with pytest.raises(ConfigError, match="cpu.scalar must be|'cpu_scalar' must be a number"):
            config.resolve(given(workflow_config=("wf.json", CLI)), {})
