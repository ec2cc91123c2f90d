"""How long a pod takes from its creation to its job's first command, and to its end,
on the local cluster: in the job image alone; in a tool image with the job runtime
copied by a container beside the job's (as byok8s does); and with the same copy as
an init container (as byok8s did), which the kubelet follows with the job's
container only once it notices the copy ended (its relist, every second).

    TEST_CLUSTER_STATE=/tmp/byok8s-cluster .venv/bin/python bench/pod_start.py [--reps 10]

Pods run one at a time; the job's command prints the time (the runtime's Python in
the tool image) and ends. Results go to bench/results/pod-start-*.md and stdout.
"""

from __future__ import annotations

import argparse
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

TOOL = "docker.io/byok8s-tool/bwa:0.7.17"
WAYS = ("job image", "tool image, copy beside", "tool image, copy as init container")
CLOCK = "-c 'import time; print(time.time())'"


def pod(name: str, way: str, job_image: str):  # noqa: ANN201 - a V1Pod
    from kubernetes import client as k8s

    from snakemake_executor_plugin_byok8s import podspec, runtime

    job = k8s.V1Container(
        name=podspec.CONTAINER, image=job_image, image_pull_policy="Never",
        resources=k8s.V1ResourceRequirements(), volume_mounts=[],
        command=["/bin/sh", "-c", f"python3 {CLOCK}"],
    )  # fmt: skip
    volumes: list = []
    containers, init = [job], None
    if way != WAYS[0]:
        copy = podspec._runtime(job, volumes, job_image)
        copy.image_pull_policy = "Never"
        job.image = TOOL
        job.command[2] = f"{podspec.waiting_for_runtime()}; {runtime.COMMAND} {CLOCK}"
        if way == WAYS[1]:
            containers = [copy, job]
        else:
            init = [copy]
    spec = k8s.V1PodSpec(restart_policy="Never", containers=containers, init_containers=init,
                         volumes=volumes or None, termination_grace_period_seconds=1)  # fmt: skip
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=name, labels={"app": "pod-start"}), spec=spec)


def once(core, name: str, way: str, job_image: str) -> tuple[float, float]:  # noqa: ANN001
    """Seconds from the creation to the job's first command, and to the pod's end."""
    from snakemake_executor_plugin_byok8s import podspec

    created = time.time()
    core.create_namespaced_pod("default", pod(name, way, job_image))
    while True:
        phase = core.read_namespaced_pod(name, "default").status.phase
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.05)
    ended = time.time()
    said = core.read_namespaced_pod_log(name, "default", container=podspec.CONTAINER)
    core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    if phase != "Succeeded":
        raise SystemExit(f"pod {name} ({way}) failed: {said}")
    return float(said.split()[-1]) - created, ended - created


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10, help="pods of each way")
    args = parser.parse_args()
    cluster = localcluster.start()
    commit = provenance.described(*provenance.commit())
    when = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        from kubernetes import client

        core = client.CoreV1Api(cluster.api())
        found: dict[str, list[tuple[float, float]]] = {w: [] for w in WAYS}
        for rep in range(args.reps):  # the ways alternate
            for n, way in enumerate(WAYS):
                found[way].append(once(core, f"pod-start-{rep}-{n}-{int(time.time())}", way,
                                       cluster.image))  # fmt: skip
                print(f"{way} {rep + 1}: " + " ".join(f"{s:.2f}" for s in found[way][-1]),
                      file=sys.stderr, flush=True)  # fmt: skip
    finally:
        cluster.stop()

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"

    lines = [f"# Pod start, {when} (one pod at a time; median [min-max] of {args.reps})", "",
             f"Commit {commit}.", "", "| way | to the job's first command s | to the pod's "
             "end s |", "|---|---|---|"]  # fmt: skip
    for way, rows in found.items():
        lines.append(f"| {way} | {cell([r[0] for r in rows])} | {cell([r[1] for r in rows])} |")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"pod-start-{when.replace(':', '').replace('-', '')[:15]}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
