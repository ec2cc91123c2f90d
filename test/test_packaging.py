"""The wheel works on its own: built, installed in a fresh venv, run outside the tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_runs_bundled_workflow(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("byok8s-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for packaged in (
        "byok8s/workflows/alpha/Snakefile",
        "byok8s/workflows/alpha/params-blue.json",
        "byok8s/workflows/fanout/scripts/summary.py",
        "snakemake_storage_plugin_byok8s_azure/__init__.py",
        "snakemake_executor_plugin_byok8s/__init__.py",
        "snakemake_executor_plugin_byok8s/executor.py",
    ):
        assert packaged in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stderr[-2000:]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = subprocess.run(
        [str(venv / "bin" / "byok8s"), "workflow-alpha", "params-blue"],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (outside / "alpha.txt").read_text() == "alpha blue\n"
    # Snakemake's own plugin discovery sees our Azure plugin (as pods will).
    probe = (
        "from snakemake_interface_storage_plugins.registry import StoragePluginRegistry as R;"
        "from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry as E;"
        "print(R().is_installed('byok8s-azure'), E().is_installed('byok8s'))"
    )
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=outside,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "True True"
