"""A rule's own image, without a cluster: the exact pod spec (a container of the job
image brings the job runtime), the command that starts the runtime's
Python, image references as rules give them, and what a failed or stuck pod says.
The runtime itself runs in test_cluster_images.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client as k8s

from snakemake_executor_plugin_byok8s import jobcommand, options, podspec, runtime, status

SETTINGS = podspec.PodSettings(image="reg.io/byok8s-job:1", secret="run-1", run_as_user=1000)
TOOL = "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8"


def spec(image: str | None, **settings: object) -> dict:
    cfg = podspec.PodSettings(**{**SETTINGS.__dict__, **settings})  # type: ignore[arg-type]
    job = podspec.job_body(name="snakejob-1", run="run-1", rule="bwa_map", jobid=3,
                           command=f"{runtime.COMMAND} -m snakemake --snakefile Snakefile",
                           resources={"_cores": 1}, settings=cfg, image=image)  # fmt: skip
    return k8s.ApiClient().sanitize_for_serialization(job)["spec"]["template"]["spec"]


def test_a_rules_own_image_gets_the_runtime_from_a_container_beside_it() -> None:
    pod = spec(TOOL)
    copy, main = pod["containers"]
    assert "initContainers" not in pod
    assert main["image"] == TOOL and copy["image"] == SETTINGS.image
    assert copy["name"] == podspec.RUNTIME
    assert copy["command"][:2] == ["/bin/sh", "-c"]
    assert f"cd {runtime.BUILT} && {{ cp -dR --preserve=mode,timestamps" in copy["command"][2]
    assert copy["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert {"name": podspec.RUNTIME, "emptyDir": {}} in pod["volumes"]
    assert {"name": podspec.RUNTIME, "mountPath": runtime.MOUNT} in copy["volumeMounts"]
    assert {"name": podspec.RUNTIME, "mountPath": runtime.MOUNT, "readOnly": True} in main[
        "volumeMounts"
    ]
    # Same user, no privileges; its own small requests (a pod asks for the sum).
    assert copy["securityContext"] == main["securityContext"]
    assert copy["resources"] == {"requests": podspec.RUNTIME_REQUESTS}
    assert copy.get("imagePullPolicy") == main.get("imagePullPolicy")
    script = main["args"][1]
    # Checked first, sources unpacked and Snakemake run by the runtime's Python; the
    # image's own `python` is never used, and nothing is put into the environment.
    check = podspec.runtime_check(TOOL)
    assert script.index(podspec.waiting_for_runtime()) < script.index(check)
    assert script.index(check) < script.index("tarfile")
    assert f"{runtime.COMMAND} -c 'import sys, tarfile" in script
    assert " python " not in f" {script} " and "LD_LIBRARY_PATH" not in script
    assert "PYTHONPATH" not in script and "PATH=" not in script
    assert all("valueFrom" in e for e in main.get("env") or [])


@pytest.mark.parametrize("image", [None, "", SETTINGS.image])
def test_the_job_image_itself_needs_no_runtime_copy(image: str | None) -> None:
    pod = spec(image)
    assert "initContainers" not in pod and len(pod["containers"]) == 1
    assert pod["containers"][0]["image"] == SETTINGS.image
    assert runtime.MOUNT not in str(pod["volumes"]) + str(pod["containers"][0]["volumeMounts"])
    assert podspec.runtime_check(SETTINGS.image) not in pod["containers"][0]["args"][1]


def test_the_job_waits_for_the_runtime_and_stops_when_its_copy_failed(tmp_path: Path) -> None:
    """The wait as /bin/sh runs it: until the copy says it is ready (a real wait, ended
    by the copy's mark), or at once with the runtime's exit code when it failed."""
    wait = podspec.waiting_for_runtime().replace(runtime.MOUNT, str(tmp_path))
    ready, broken = (p.replace(runtime.MOUNT, str(tmp_path)) for p in
                     (podspec.RUNTIME_READY, podspec.RUNTIME_BROKEN))  # fmt: skip
    waiting = subprocess.Popen(["/bin/sh", "-c", f"{wait}; echo started"], stdout=subprocess.PIPE)
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(timeout=0.5)
    Path(ready).touch()
    assert waiting.communicate(timeout=30)[0] == b"started\n"
    Path(ready).unlink()
    Path(broken).touch()
    done = subprocess.run(["/bin/sh", "-c", f"{wait}; echo started"], capture_output=True)
    assert done.returncode == podspec.RUNTIME_FAILED and not done.stdout


def test_the_copy_has_room_on_disk_where_the_jobs_disk_is_limited() -> None:
    """With scale=0 a job's disk is a limit, and the pod's emptyDirs (the runtime's
    too) count against the sum of its containers' limits."""
    job = podspec.job_body(name="j", run="r", rule="a", jobid=1, command="true",
                           resources={"_cores": 1, "disk_mb": 100, "scale": 0},
                           settings=SETTINGS, image=TOOL)  # fmt: skip
    copy, main = job.spec.template.spec.containers
    assert main.resources.limits["ephemeral-storage"] == "100M"
    assert copy.resources.limits == {"ephemeral-storage": podspec.RUNTIME_DISK}
    assert copy.resources.requests["ephemeral-storage"] == podspec.RUNTIME_DISK


def test_the_runtime_check_names_the_image_and_exits_with_its_own_code(tmp_path: Path) -> None:
    check = podspec.runtime_check(TOOL).replace(runtime.COMMAND, str(tmp_path / "missing"))
    done = subprocess.run(["/bin/sh", "-c", check], capture_output=True, text=True)
    assert done.returncode == podspec.RUNTIME_FAILED
    assert f"byok8s: the job runtime does not run in image {TOOL}" in done.stderr


def test_snakemakes_command_is_started_by_the_given_python() -> None:
    command = "python -m snakemake --deploy-sources x && python -m snakemake --snakefile S"
    made = jobcommand.through_jobrun(command, "/h", runtime.COMMAND)
    jobrun = "-m snakemake_executor_plugin_byok8s.jobrun --storage-home=/h --snakefile S"
    assert (
        made == f"{runtime.COMMAND} -m snakemake --deploy-sources x && {runtime.COMMAND} {jobrun}"
    )
    assert jobcommand.through_jobrun(command).startswith("python -m snakemake ")


@pytest.mark.parametrize(
    "given, expected",
    [
        ("docker://quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8", TOOL),
        (TOOL, TOOL),
        ("ubuntu@sha256:" + "a" * 64, "ubuntu@sha256:" + "a" * 64),
    ],
)
def test_image_references(given: str, expected: str) -> None:
    assert options.image(given, "rule x") == expected


@pytest.mark.parametrize(
    "given, message",
    [
        ("", "rule x: image '' is empty; give an image such as"),
        ("  ", "rule x: image '  ' is empty"),
        (3, "rule x: image 3 is empty"),
        ("bwa latest", "rule x: image 'bwa latest' is not an image reference (no spaces)"),
        ("docker://", "rule x: image 'docker://' is not an image reference"),
        ("library://a/b", "rule x: image 'library://a/b': a library:// image is for Apptainer"),
    ],
)
def test_bad_image_references_say_what_and_how(given: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        options.image(given, "rule x")


def test_a_rules_image_in_the_workflow_config_is_checked_with_its_scheduling() -> None:
    plan = options.scheduling({"image": "docker://" + TOOL, "node_selector": "a=b"}, "bwa_map")
    assert plan.image == TOOL
    assert plan.over(options.Scheduling(image="other")).image == TOOL
    assert options.Scheduling().over(plan).image == TOOL
    with pytest.raises(ValueError, match="^bwa_map: image '' is empty"):
        options.scheduling({"image": ""}, "bwa_map")


def _status(name: str, image: str, state: object) -> list[k8s.V1ContainerStatus] | None:
    if state is None:
        return None
    return [k8s.V1ContainerStatus(name=name, image=image, image_id="", ready=False,
                                  restart_count=0, state=state)]  # fmt: skip


def _pod(copy: object = None, main: object = None, copy_spec: bool = True,
         old: bool = False) -> k8s.V1Pod:  # fmt: skip
    """A pod in a rule's own image; `old`: its runtime copy an init container, as in
    an earlier byok8s's pods."""
    runtime_copy = [k8s.V1Container(name=podspec.RUNTIME, image="job:1")] if copy_spec else []
    job = [k8s.V1Container(name=podspec.CONTAINER, image=TOOL)]
    copied = _status(podspec.RUNTIME, "job:1", copy) or []
    ran = _status(podspec.CONTAINER, TOOL, main) or []
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="p1"),
        spec=k8s.V1PodSpec(
            containers=job if old else runtime_copy + job,
            init_containers=runtime_copy if old else None,
        ),  # fmt: skip
        status=k8s.V1PodStatus(
            phase="Pending",
            init_container_statuses=copied if old else None,
            container_statuses=ran if old else copied + ran,
        ),
    )


JOB = k8s.V1Job(metadata=k8s.V1ObjectMeta(name="j"), status=k8s.V1JobStatus())


def _ended(code: int, reason: str, message: str = "") -> k8s.V1ContainerState:
    return k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(
        exit_code=code, reason=reason, message=message or None))  # fmt: skip


def test_an_image_without_a_shell_says_so() -> None:
    said = ('failed to create containerd task: OCI runtime create failed: exec: "/bin/sh": '
            "stat /bin/sh: no such file or directory: unknown")  # fmt: skip
    result = status.outcome(JOB, _pod(main=_ended(128, "StartError", said)))
    assert result.state == "failed"
    assert result.reason.startswith(f"image {TOOL} has no /bin/sh, which a job's image needs")


def test_a_runtime_that_does_not_run_says_so() -> None:
    result = status.outcome(JOB, _pod(main=_ended(podspec.RUNTIME_FAILED, "Error")))
    assert result.reason.startswith(f"byok8s's job runtime does not run in image {TOOL}")
    plain = status.outcome(JOB, _pod(main=_ended(podspec.RUNTIME_FAILED, "Error"), copy_spec=False))
    assert plain.reason == f"exited with code {podspec.RUNTIME_FAILED}"


@pytest.mark.parametrize("old", [False, True])
def test_the_runtime_copy_failing_or_not_pulled_says_so(old: bool) -> None:
    """Said as the copy's failure, also when the job's container stopped for it; and
    so for the init container of an earlier byok8s's pods."""
    broken = _ended(1, "Error", "cp: disk full")
    for main in (None, _ended(podspec.RUNTIME_FAILED, "Error")):
        failed = status.outcome(JOB, _pod(copy=broken, main=main, old=old))
        assert failed.state == "failed" and failed.reason == (
            f"its container {podspec.RUNTIME} could not copy the job runtime from image "
            "job:1 (exit code 1: cp: disk full)")  # fmt: skip
    waiting = k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(
        reason="ImagePullBackOff", message="not found"))  # fmt: skip
    running = k8s.V1ContainerState(running=k8s.V1ContainerStateRunning())
    stuck = status.outcome(JOB, _pod(copy=waiting, main=None if old else running, old=old))
    assert stuck.state == "running" and stuck.stuck
    assert stuck.waiting == "image job:1 cannot be pulled (ImagePullBackOff: not found)"
    copied = status.outcome(JOB, _pod(copy=_ended(0, "Completed"), main=_ended(0, "Completed")))
    assert copied.state == "succeeded"
    # Stopped because its pod was deleted (evicted, preempted) while it copied: that is
    # the pod's fate, which byok8s runs again, not the copy's failure.
    gone = _pod(copy=_ended(143, "Error"), main=running if not old else None, old=old)
    gone.metadata.deletion_timestamp = "2026-12-01T10:00:00Z"
    taken = status.outcome(JOB, gone)
    assert taken.state == "failed" and taken.infra, taken


def test_the_images_a_workflow_names_for_doctor(tmp_path: Path, monkeypatch) -> None:
    from byok8s import workflow_images
    from byok8s.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "Snakefile").write_text(
        'container: "docker://img/all:1"\n'
        'rule a:\n    output: "a"\n    shell: "touch {output}"\n'
        'rule b:\n    output: "b"\n    container: "img/b:2"\n    shell: "touch {output}"\n'
        'rule c:\n    output: "c"\n    container: config["c"]\n    shell: "touch {output}"\n'
    )
    (tmp_path / "params.json").write_text('{"c": "img/c:3"}')
    (tmp_path / "wf.json").write_text(
        '{"snakefile": "Snakefile", "rules": {"a": {"image": "x/a:9"}}}'
    )
    found = workflow_images.of("wf.json", "params.json", None)
    assert found == {"x/a:9": ["a"], "img/b:2": ["b"], "img/c:3": ["c"]}
    assert workflow_images.of(None, "params.json", "Snakefile")["img/all:1"] == ["a"]
    with pytest.raises(ConfigError, match=r"does not load \(.*'c'.*\); give its params"):
        workflow_images.of("wf.json", None, None)
    (tmp_path / "wf.json").write_text('{"snakefile": "Snakefile", "rules": {"a": {"image": " "}}}')
    with pytest.raises(ConfigError, match="rule a: image ' ' is empty"):
        workflow_images.of("wf.json", "params.json", None)


def test_what_a_probe_pod_says() -> None:
    from byok8s import pull

    def pod(state: k8s.V1ContainerState) -> k8s.V1Pod:
        return k8s.V1Pod(status=k8s.V1PodStatus(container_statuses=_status("probe", TOOL, state)))

    waiting = k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(
        reason="ErrImagePull", message="rpc error:\n not found"))  # fmt: skip
    assert pull._said(pod(waiting)) == pull.Found(False, "cannot be pulled (ErrImagePull: rpc "
                                                  "error: not found)")  # fmt: skip
    creating = k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="ContainerCreating"))
    assert pull._said(pod(creating)) is None
    assert pull._said(pod(_ended(0, "Completed"))) == pull.Found(True, "pulled by a probe pod")
    noshell = _ended(128, "StartError", 'exec: "/bin/sh": stat /bin/sh: no such file or directory')
    assert pull._said(pod(noshell)).got is False
    assert pull.full_reference("bwa:1") == "docker.io/library/bwa:1"
    assert pull.full_reference("byok8s-tool/bwa:1") == "docker.io/byok8s-tool/bwa:1"
    assert pull.full_reference("quay.io/x/y:1") == "quay.io/x/y:1"
