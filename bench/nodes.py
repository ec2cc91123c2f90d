"""What the local cluster's extra nodes cost (test/cluster/up.sh --nodes N): the time
to add them to a running cluster (first with a fresh state: their containerd
imports every image; then again after they were stopped), and each node's CPU
while idle (its kubelet and containerd, no pods), beside the control plane's.

    [TEST_CLUSTER_STATE=/tmp/byok8s-cluster] .venv/bin/python bench/nodes.py [--nodes 3]

Idle CPU is read from /proc (utime + stime) over --window seconds, --reps times,
after --settle seconds; the machine runs nothing else of ours meanwhile. Results
go to bench/results/nodes-*.md and stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
sys.path.insert(0, str(ROOT / "bench"))
import localcluster  # noqa: E402
import provenance  # noqa: E402
from provenance import RESULTS  # noqa: E402

README = ROOT / "README.md"
MARKS = ("<!-- nodes:begin -->", "<!-- nodes:end -->")  # the README's copy of the newest
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def processes(state: Path, k: int) -> list[str]:
    """The pid files of node k (its kubelet and containerd)."""
    prefix = "" if k == 1 else f"node-{k}-"
    return [f"{prefix}kubelet", f"{prefix}containerd"]


def idle_shares(state: Path, groups: dict[str, list[str]], window: float) -> dict[str, float]:
    """Percent of one core each group of processes used over the same `window` s."""
    pids = {g: [int((state / "pids" / n).read_text()) for n in names]
            for g, names in groups.items()}  # fmt: skip
    before = {g: sum(cpu_seconds(p) for p in ps) for g, ps in pids.items()}
    time.sleep(window)
    return {g: 100 * (sum(cpu_seconds(p) for p in ps) - before[g]) / window
            for g, ps in pids.items()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--window", type=float, default=60.0, help="seconds a reading lasts")
    parser.add_argument("--reps", type=int, default=3, help="readings of each")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before reading")
    args = parser.parse_args()
    head, clean = provenance.commit()
    commit = provenance.described(head, clean)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    cluster = localcluster.start()
    load = os.getloadavg()
    try:
        cluster.grow(1)  # the job image built and loaded first: not part of adding a node
        cluster.shrink()
        for k in range(2, args.nodes + 1):  # a fresh state: their images imported anew
            shutil.rmtree(cluster.state / "nodes" / str(k), ignore_errors=True)
        started = time.monotonic()
        cluster.grow(args.nodes)
        fresh = time.monotonic() - started
        time.sleep(args.settle)
        shares: dict[str, list[float]] = {}
        groups = {"control plane": list(CONTROL_PLANE),
                  **{f"node {k}": processes(cluster.state, k)
                     for k in range(1, args.nodes + 1)}}  # fmt: skip
        for rep in range(args.reps):
            for group, share in idle_shares(cluster.state, groups, args.window).items():
                shares.setdefault(group, []).append(share)
                print(f"{group} {rep + 1}: {share:.1f} %", file=sys.stderr, flush=True)
        for k in range(2, args.nodes + 1):
            cluster.stop_node(k)
        started = time.monotonic()
        cluster.grow(args.nodes)
        again = time.monotonic() - started
        cluster.shrink()
    finally:
        cluster.stop()

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"

    lines = [
        f"# Local cluster nodes, {when}", "",
        f"Commit {commit}. Machine: {os.cpu_count()} cores; load average before "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; nothing else of ours running.", "",
        f"- nodes 2-{args.nodes} added to a running cluster, fresh state (images imported): "
        f"{fresh:.1f} s",
        f"- the same nodes started again after they were stopped: {again:.1f} s", "",
        f"Idle CPU, percent of one core, median [min-max] of {args.reps} readings of "
        f"{args.window:.0f} s each:", "",
        "| processes | idle CPU % |", "|---|---|",
        *(f"| {group} ({', '.join(groups[group])}) | {cell(values)} |"
          for group, values in shares.items()),
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"nodes-{when.replace(':', '').replace('-', '')[:15]}.md"
    path.write_text(text)
    README.write_text(with_newest(README.read_text()))
    print(text)
    return 0


def with_newest(readme: str) -> str:
    """The README with the newest nodes-*.md between MARKS (a test checks it)."""
    newest = sorted(RESULTS.glob("nodes-*.md"))[-1]
    body = newest.read_text().split("\n", 2)[2]  # without its title
    return provenance.with_block(readme, MARKS, f"From `bench/results/{newest.name}`:\n\n{body}")


if __name__ == "__main__":
    sys.exit(main())
