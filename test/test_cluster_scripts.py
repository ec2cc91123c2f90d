"""The local cluster scripts themselves: a second up.sh changes nothing, down.sh
stops by pid what up.sh recorded."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from localcluster import Cluster, script


@pytest.mark.cluster
def test_up_again_on_a_running_cluster_changes_nothing(cluster: Cluster) -> None:
    pids = {p.name: p.read_text() for p in (cluster.state / "pids").iterdir()}
    started = time.monotonic()
    proc = script("up.sh", str(cluster.state), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(cluster.kubeconfig)
    assert time.monotonic() - started < 20
    assert {p.name: p.read_text() for p in (cluster.state / "pids").iterdir()} == pids
    assert (cluster.state / "job-image").read_text().strip() == cluster.image


def test_down_stops_every_recorded_process_by_pid(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    procs = {}
    for name in ("etcd", "kube-apiserver", "kubelet", "containerd"):
        procs[name] = subprocess.Popen(["sleep", "300"])
        (tmp_path / "pids" / name).write_text(str(procs[name].pid))
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        script("down.sh", str(tmp_path), check=True)
        for name, proc in procs.items():
            assert proc.wait(5) is not None, name
        assert not list((tmp_path / "pids").iterdir())
        assert bystander.poll() is None  # nothing it did not start
    finally:
        bystander.kill()


def test_down_on_a_state_dir_that_never_ran_is_a_no_op(tmp_path: Path) -> None:
    proc = script("down.sh", str(tmp_path / "none"))
    assert proc.returncode == 0
