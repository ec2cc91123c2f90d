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


def test_a_pid_that_went_to_another_process_is_not_taken_for_the_one_recorded(
    tmp_path: Path,
) -> None:
    """A session's end kills the cluster's processes and a pid goes to another one
    later: up.sh must start that part again (not take it for running), and down.sh
    must not stop the other process."""
    from localcluster import SCRIPTS

    (tmp_path / "pids").mkdir()
    ours, other = subprocess.Popen(["sleep", "300"]), subprocess.Popen(["sleep", "300"])

    def nodes_sh(command: str) -> str:
        return subprocess.run(["bash", "-c", f"source {SCRIPTS}/nodes.sh; {command}"],
                              capture_output=True, text=True).stdout.strip()  # fmt: skip

    try:
        nodes_sh(f"record {tmp_path}/pids/etcd {ours.pid}")
        at = int(nodes_sh(f"started_at {other.pid}"))
        (tmp_path / "pids" / "kubelet").write_text(f"{other.pid} {at - 1}\n")  # another's
        (tmp_path / "pids" / "containerd").write_text(f"{other.pid}\n")  # an older file
        assert nodes_sh(f"recorded {tmp_path}/pids/etcd") == str(ours.pid)
        assert nodes_sh(f"recorded {tmp_path}/pids/kubelet || echo none") == "none"
        assert nodes_sh(f"recorded {tmp_path}/pids/containerd") == str(other.pid)
        (tmp_path / "pids" / "containerd").unlink()
        script("down.sh", str(tmp_path), check=True)
        assert ours.wait(5) is not None
        assert other.poll() is None and not list((tmp_path / "pids").iterdir())
    finally:
        ours.kill()
        other.kill()


def test_down_on_a_state_dir_that_never_ran_is_a_no_op(tmp_path: Path) -> None:
    proc = script("down.sh", str(tmp_path / "none"))
    assert proc.returncode == 0
