"""Ctrl-C and SIGTERM on a run whose jobs run on this machine: the job processes
stop, the bucket's lock goes, the exit code says which signal, and a rerun works
(the cluster's case is in test_cluster_faults.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_cli

from byok8s import lock, storage

SLOW = "rule slow:\n    output: 'slow.txt'\n    shell: 'sleep 120; echo {SLEEPER} > {output}'\n"


def job_processes(run_id: str) -> list[str]:
    """The live processes working in the run's job directories (processes.jobs_dir)."""
    from snakemake_executor_plugin_byok8s.processes import jobs_dir

    root = str(jobs_dir(run_id))
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            where = os.readlink(cwd)
            state = (cwd.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if where.startswith(root) and state != "Z":
            found.append(f"{cwd.parent.name}: {where}")
    return found


def sleepers(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "sleep 120" in line]


@pytest.mark.s3
@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "Ctrl-C"),
                                              (signal.SIGTERM, 143, "SIGTERM")])  # fmt: skip
def test_a_signal_stops_the_jobs_releases_the_lock_and_exits_with_its_code(
    sig: int, code: int, name: str, s3: dict, workdir: Path
) -> None:
    marker = f"byok8s-test-{workdir.name}-{sig}"
    (workdir / "Snakefile").write_text(SLOW.replace("{SLEEPER}", marker))
    (workdir / "wf.json").write_text(json.dumps({"snakefile": "Snakefile"}))
    (workdir / "p.json").write_text("{}")
    url = f"s3://{s3['bucket']}/sig"
    args = ["wf.json", "p.json", "--bucket", url, "--s3-endpoint-url", s3["endpoint"],
            "--executor", "local"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "byok8s", *args], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not sleepers(marker):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(sig)  # to byok8s alone, as `kill` or a scheduler does
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"byok8s: error: interrupted by {name}; the run's jobs were cancelled"
    )
    assert took < 10, took
    time.sleep(0.5)
    assert sleepers(marker) == []
    (run,) = (workdir / ".byok8s" / "runs").iterdir()
    assert job_processes(run.name) == []  # the job's Snakemake too, not only its command
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    assert lock.LOCK not in storage.resolve(url, s3["endpoint"], env).list()
    (workdir / "Snakefile").write_text(SLOW.replace("{SLEEPER}", marker).replace("sleep 120; ", ""))
    again = run_cli(*args, cwd=workdir)
    assert again.returncode == 0, again.stderr
