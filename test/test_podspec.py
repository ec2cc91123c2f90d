"""The Kubernetes Job byok8s sends for one Snakemake job (the exact request body)."""

from __future__ import annotations

import json
import re

import pytest
from kubernetes import client as k8s

from snakemake_executor_plugin_byok8s import options, podspec

SETTINGS = podspec.PodSettings(
    image="reg.io/byok8s-job:1",
    secret="run-1234",
    env_keys={"aws_secret_access_key": "AWS_SECRET_ACCESS_KEY", "app_token": "APP_TOKEN"},
)


# Every pod tolerates a node that stopped answering for node_lost_after seconds.
NODE_LOST = [
    {"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
]


def body(
    resources: dict | None = None,
    scheduling: object = None,
    on_demand: bool = False,
    **settings: object,
) -> dict:
    settings.pop("settings_scheduling", None)
    cfg = podspec.PodSettings(**{**SETTINGS.__dict__, **settings})  # type: ignore[arg-type]
    job = podspec.job_body(
        name="snakejob-1",
        run="run-1234",
        rule="align reads",
        jobid=7,
        command="python -m snakemake --snakefile Snakefile",
        resources=resources or {"_cores": 2, "mem_mb": 1000},
        settings=cfg,
        scheduling=scheduling,  # type: ignore[arg-type]
        on_demand=on_demand,
    )
    return k8s.ApiClient().sanitize_for_serialization(job)


def test_labels_name_the_run_rule_and_job_on_job_and_pod() -> None:
    job = body()
    expected = {
        "app": "snakemake",
        "byok8s.io/run": "run-1234",
        "byok8s.io/rule": "align_reads",
        "byok8s.io/jobid": "7",
    }
    assert job["metadata"]["labels"] == expected
    assert job["spec"]["template"]["metadata"]["labels"] == expected
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 5


def test_credentials_are_secret_references_only() -> None:
    (container,) = body()["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {
            "name": "APP_TOKEN",
            "valueFrom": {"secretKeyRef": {"key": "app_token", "name": "run-1234"}},
        },
        {
            "name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"key": "aws_secret_access_key", "name": "run-1234"}},
        },
    ]


def test_sources_come_from_the_secret_and_are_unpacked_before_the_job() -> None:
    spec = body()["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["/bin/sh"]
    script = container["args"][1]
    assert script.startswith(podspec.USER_ENV + "; python -c ") and "tarfile" in script
    assert script.endswith("&& python -m snakemake --snakefile Snakefile")
    assert "pip install" not in script and "--deploy-sources" not in script
    assert {"name": "byok8s-sources", "mountPath": "/byok8s/sources", "readOnly": True} in (
        container["volumeMounts"]
    )
    sources = next(v for v in spec["volumes"] if v["name"] == "byok8s-sources")
    assert sources["secret"] == {
        "secretName": "run-1234",
        "items": [{"key": podspec.SOURCES_KEY, "path": podspec.SOURCES_KEY}],
    }
    large = body(sources_in_secret=False, run_as_user=0)["spec"]["template"]["spec"]
    assert large["containers"][0]["args"][1] == "python -m snakemake --snakefile Snakefile"
    assert [v["name"] for v in large["volumes"]] == ["workdir"]


def test_the_unpack_command_works(tmp_path, monkeypatch) -> None:
    import subprocess
    import tarfile

    archive = tmp_path / "src" / podspec.SOURCES_KEY
    archive.parent.mkdir()
    (tmp_path / "Snakefile").write_text("rule a: pass\n")
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(tmp_path / "Snakefile", arcname="Snakefile")
    work = tmp_path / "work"
    work.mkdir()
    command = podspec.UNPACK.replace(podspec.SOURCES_DIR, str(archive.parent))
    subprocess.run(["/bin/sh", "-c", command.replace("python ", "python3 ", 1)], cwd=work,
                   check=True)  # fmt: skip
    assert (work / "Snakefile").read_text() == "rule a: pass\n"


@pytest.mark.parametrize(
    "resources, requests, limits",
    [
        ({"_cores": 2, "mem_mb": 1000}, {"cpu": "1900m", "memory": "1000M"},
         {"memory": "1000M"}),
        ({"_cores": 2, "mem_mb": 1000, "disk_mb": 5000},
         {"cpu": "1900m", "memory": "1000M", "ephemeral-storage": "5000M"}, {"memory": "1000M"}),
        ({"_cores": 1, "disk_mb": 5000, "scale": 0}, {"cpu": "950m", "ephemeral-storage": "5000M"},
         {"cpu": "1000m", "ephemeral-storage": "5000M"}),
        ({"_cores": 1, "scale": 1}, {"cpu": "950m"}, None),
        # A limit of a few MB would kill Snakemake itself in the pod: never below 256M.
        ({"_cores": 1, "mem_mb": 5}, {"cpu": "950m", "memory": "5M"}, {"memory": "256M"}),
        ({"_cores": 1, "gpu": 2}, {"cpu": "950m", "nvidia.com/gpu": "2"}, {"nvidia.com/gpu": "2"}),
        ({"_cores": 1, "gpu": 2, "gpu_manufacturer": "amd", "scale": 0},
         {"cpu": "950m", "amd.com/gpu": "2"}, {"cpu": "1000m", "amd.com/gpu": "2"}),
    ],
)  # fmt: skip
def test_rule_resources_become_requests_and_limits(resources, requests, limits) -> None:
    """Requests from threads and resources, for the scheduler and the autoscaler.
    Memory and GPUs are limits too (OOMKilled past mem_mb; an extended resource
    needs a limit); CPU and disk only with `scale=0`."""
    (container,) = body(resources)["spec"]["template"]["spec"]["containers"]
    assert container["resources"].get("requests") == requests
    assert container["resources"].get("limits") == limits


def test_gpus_machine_types_and_service_account() -> None:
    spec = body(
        {"_cores": 1, "gpu": 1, "machine_type": "Standard_NC6"},
        scheduling=options.Scheduling(service_account="pipeline"),
    )["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"node.kubernetes.io/instance-type": "Standard_NC6"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        *NODE_LOST,
    ]
    assert spec["serviceAccountName"] == "pipeline"
    with pytest.raises(ValueError, match="gpu_manufacturer"):
        body({"_cores": 1, "gpu": 1, "gpu_manufacturer": "intel"})


def test_claims_and_scratch_are_mounted_each_under_its_path() -> None:
    spec = body(
        claims=[options.claim("ref.data:/ref:ro"), options.claim("work:/shared")],
        scratch=[options.scratch("/scratch:20Gi"), options.scratch("/ram:memory")],
    )["spec"]["template"]["spec"]
    assert spec["volumes"][-4:] == [
        {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "ref.data", "readOnly": True}},
        {"name": "pvc-1", "persistentVolumeClaim": {"claimName": "work"}},
        {"name": "scratch-0", "emptyDir": {"sizeLimit": "20Gi"}},
        {"name": "scratch-1", "emptyDir": {"medium": "Memory"}},
    ]
    assert spec["containers"][0]["volumeMounts"][-4:] == [
        {"name": "pvc-0", "mountPath": "/ref", "readOnly": True},
        {"name": "pvc-1", "mountPath": "/shared"},
        {"name": "scratch-0", "mountPath": "/scratch"},
        {"name": "scratch-1", "mountPath": "/ram"},
    ]


def test_node_selectors_and_tolerations_from_the_run_join_the_rules() -> None:
    spec = body(
        {"_cores": 1, "gpu": 1, "machine_type": "Standard_NC6"},
        scheduling=options.Scheduling(
            node_selector=(("agentpool", "gpu"),),
            tolerations=(
                options.toleration("kubernetes.azure.com/scalesetpriority=spot:NoSchedule"),
                options.toleration("dedicated"),
            ),
        ),
    )["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {
        "node.kubernetes.io/instance-type": "Standard_NC6",
        "agentpool": "gpu",
    }
    assert spec["tolerations"] == [
        {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
         "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists"},
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        *NODE_LOST,
    ]  # fmt: skip
    plain = body()["spec"]["template"]["spec"]
    assert "nodeSelector" not in plain and plain["tolerations"] == NODE_LOST
    assert "tolerations" not in body(node_lost_after=None)["spec"]["template"]["spec"]


def test_no_plain_value_of_any_kind_in_the_spec() -> None:
    text = json.dumps(body())
    assert '"value"' not in text.replace('"value": "present"', "")


@pytest.mark.parametrize(
    "text, expected",
    [("align", "align"), ("align reads", "align_reads"), ("-x-", "x"), ("a" * 80, "a" * 63),
     ("", "x")],
)  # fmt: skip
def test_label_values_are_valid(text: str, expected: str) -> None:
    assert podspec.label_value(text) == expected


def test_jobs_run_as_a_user_without_privileges_unless_asked() -> None:
    spec = body()["spec"]["template"]["spec"]
    assert spec["securityContext"] == {"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": True,
                                       "runAsUser": 1000}  # fmt: skip
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}  # fmt: skip
    assert (
        body(run_as_user=2000)["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 2000
    )
    root = body(run_as_user=0)["spec"]["template"]["spec"]
    assert "securityContext" not in root and "securityContext" not in root["containers"][0]
    assert not root["containers"][0]["args"][1].startswith(podspec.USER_ENV)
    privileged = body(privileged=True)["spec"]["template"]["spec"]
    assert "securityContext" not in privileged
    assert privileged["containers"][0]["securityContext"] == {"privileged": True}


def test_a_user_without_a_passwd_entry_gets_a_name_and_a_writable_home(tmp_path) -> None:
    import subprocess

    script = (
        f'{podspec.USER_ENV}; echo "$HOME"; python3 -c "import getpass; print(getpass.getuser())"'
    )
    env = {"HOME": "/nonexistent-dir", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["/tmp", "byok8s"]
    env = {"HOME": str(tmp_path), "USER": "ada", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True)
    assert out.stdout.split() == [str(tmp_path), "ada"]


def test_the_plugin_settings_parse_on_the_command_line_as_in_the_pods() -> None:
    """The pods' Snakemake builds its argument parser from every installed
    executor plugin's settings: ours must register and parse."""
    import argparse
    import importlib

    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    registry = ExecutorPluginRegistry()
    name = "snakemake_executor_plugin_byok8s"
    registry.register_plugin(name, importlib.import_module(name))
    parser = argparse.ArgumentParser()
    registry.get_plugin("byok8s").register_cli_args(parser, "executor")
    assert parser.parse_args(["--byok8s-run-as-user", "0"]).byok8s_run_as_user == 0
    args = parser.parse_args(
        ["--byok8s-pvc", "ref:/ref:ro", "work:/w", "--byok8s-pending-timeout", "30"]
    )
    assert args.byok8s_pvc == ["ref:/ref:ro", "work:/w"] and args.byok8s_pending_timeout == 30


def test_jobs_run_in_their_own_directory_not_the_submitting_machines() -> None:
    from types import SimpleNamespace

    from snakemake_interface_executor_plugins.utils import format_cli_arg

    from snakemake_executor_plugin_byok8s.jobcommand import without_workdir

    workflow = SimpleNamespace(overwrite_workdir="/home/ada/my project")
    arg = format_cli_arg("--directory", workflow.overwrite_workdir)
    command = f"python -m snakemake --cores 2 {arg} --configfiles .byok8s/params.json"
    assert "'/home/ada/my project'" in command
    assert without_workdir(command, workflow) == (
        "python -m snakemake --cores 2 --configfiles .byok8s/params.json"
    )
    assert without_workdir(command, SimpleNamespace(overwrite_workdir=None)) == command


def test_a_rules_scheduling_goes_on_top_of_the_runs() -> None:
    run = options.scheduling(
        {"node_selector": {"pool": "general", "zone": "a"}, "toleration": ["spot"],
         "label": {"team": "genomics"}, "priority_class": "batch-low",
         "image_pull_secret": "acr-pull", "service_account": "pipeline"},
        "run",
    )  # fmt: skip
    rule = options.scheduling(
        {"node_selector": "pool=highmem", "toleration": "sku=highmem:NoSchedule",
         "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
             "nodeSelectorTerms": [{"matchExpressions": [
                 {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
         "annotation": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
         "image_pull_policy": "IfNotPresent", "image_pull_secret": ["acr-pull", "other"],
         "active_deadline": 3600},
        "rule align",
    )  # fmt: skip
    own = options.from_resources(
        {"_cores": 1, "k8s_priority_class": "urgent", "k8s_label": "byok8s.io/rule=hijack,x=y"},
        "align",
    )
    job = body(settings_scheduling=None, scheduling=own.over(rule.over(run)))
    spec, template = job["spec"], job["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "highmem", "zone": "a"}
    assert [t["key"] for t in pod["tolerations"]] == ["spot", "sku", *(t["key"] for t in NODE_LOST)]
    assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["priorityClassName"] == "urgent" and pod["serviceAccountName"] == "pipeline"
    assert pod["imagePullSecrets"] == [{"name": "acr-pull"}, {"name": "other"}]
    assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert spec["activeDeadlineSeconds"] == 3600
    assert template["metadata"]["labels"]["team"] == "genomics"
    assert template["metadata"]["labels"]["x"] == "y"
    assert template["metadata"]["labels"]["byok8s.io/rule"] == "align_reads"  # ours win
    assert template["metadata"]["annotations"] == {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"
    }


@pytest.mark.parametrize(
    "given, message",
    [
        ({"node_selectr": "a=b"}, "unknown key 'node_selectr'"),
        ({"priority_class": "Urgent!"}, "priority_class 'Urgent!' is not a Kubernetes name"),
        ({"image_pull_policy": "Sometimes"}, "must be one of Always, IfNotPresent, Never"),
        ({"active_deadline": 0}, "active_deadline must be whole seconds"),
        ({"label": "team"}, "label 'team' is not a label KEY=VALUE"),
        ({"toleration": "a:Sometimes"}, "EFFECT one of"),
        ({"affinity": "close"}, "affinity must be a Kubernetes Affinity mapping"),
        ({"image_pull_secret": ["Bad_Name"]}, "is not a Kubernetes name"),
    ],
)
def test_bad_scheduling_says_where_and_what(given: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        options.scheduling(given, "rule align")
    assert str(caught.value).startswith("rule align: ")
    with pytest.raises(ValueError, match="set affinity in the workflow config"):
        options.from_resources({"k8s_affinity": "x"}, "align")


def test_a_node_that_stops_answering_is_tolerated_for_node_lost_after_unless_the_user_says() -> (
    None
):
    own = options.Scheduling(tolerations=(options.toleration("node.kubernetes.io/unreachable"),))
    pod = body(scheduling=own, node_lost_after=15)["spec"]["template"]["spec"]
    assert pod["tolerations"] == [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 15},
    ]  # fmt: skip


def test_a_spot_job_tolerates_and_prefers_every_known_spot_pool() -> None:
    labels = (*options.SPOT_LABELS, ("pool/capacity", "cheap"))
    pod = body(scheduling=options.Scheduling(spot=True), spot_labels=labels)["spec"]["template"][
        "spec"
    ]
    spot = [t for t in pod["tolerations"] if t not in NODE_LOST]
    assert spot == [{"key": k, "operator": "Equal", "value": v} for k, v in labels]
    assert ("kubernetes.azure.com/scalesetpriority", "spot") in labels
    assert ("eks.amazonaws.com/capacityType", "SPOT") in labels
    assert ("cloud.google.com/gke-spot", "true") in labels
    preferred = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred == [
        {"weight": 100, "preference": {"matchExpressions": [
            {"key": k, "operator": "In", "values": [v]}]}}
        for k, v in labels
    ]  # fmt: skip
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["nodeAffinity"]
    assert "byok8s.io/fallback" not in pod.get("metadata", {}).get("labels", {})
    plain = body(scheduling=options.Scheduling(spot=False))["spec"]["template"]["spec"]
    assert "affinity" not in plain


def test_the_on_demand_try_keeps_off_every_spot_pool_within_each_of_the_users_terms() -> None:
    users = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
        ]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "preference": {"matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd"]}]}}],
    }, "podAntiAffinity": {"x": 1}}  # fmt: skip
    plan = options.Scheduling(spot=True, affinity=json.dumps(users))
    job = body(scheduling=plan, on_demand=True)
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["byok8s.io/fallback"] == "on-demand"
    affinity = pod["spec"]["affinity"]
    away = [{"key": k, "operator": "NotIn", "values": [v]} for k, v in options.SPOT_LABELS]
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, *away]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}],
         "matchExpressions": away},
    ]  # fmt: skip
    assert (
        affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        == (users["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"])
    )  # the spot preference is gone, the user's stays
    assert affinity["podAntiAffinity"] == {"x": 1}
