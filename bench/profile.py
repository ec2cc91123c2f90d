"""Where one trivial byok8s job's time goes, end to end, beside a bare Job's: the
main process's start and DAG, submission, the pod's scheduling and container
start, the job's own start inside the pod, staging, the job's end being noticed,
and the clean-up.

    [TEST_CLUSTER_STATE=/tmp/byok8s-cluster] .venv/bin/python bench/profile.py [--reps 5]

The times are when this script heard of each step (a watch on the run's
Secret, Jobs and pods; the kubelet reports a container's start and end at its
next relist, about every second) and the job's own marks (its usage line: when
its Python started, when Snakemake was called, the seconds staging took, when it
ended; the pod shares this machine's clock). Results go to
bench/results/profile-*.md and the README (between its profile marks).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
sys.path.insert(0, str(ROOT / "bench"))
import provenance  # noqa: E402
from provenance import RESULTS, span  # noqa: E402

README = ROOT / "README.md"
MARKS = ("<!-- profile:begin -->", "<!-- profile:end -->")
PHASES = [  # (name, from, to): marks of one run
    ("main process: start, checks, staging the params, Snakemake's start and DAG",
     "spawned", "secret"),
    ("main process: the executor's start and the Job submitted", "secret", "job"),
    ("Job controller: the pod created", "job", "pod"),
    ("scheduler: the pod bound to the node", "pod", "scheduled"),
    ("kubelet: sandbox and container started, sources unpacked, until the job's Python "
     "runs", "scheduled", "python"),
    ("in the pod: Python's start and imports (Snakemake's, with its storage plugins), "
     "until Snakemake is called", "python", "snakemake"),
    ("in the pod: Snakemake's start, DAG, the command (staging aside)", "snakemake", "staged"),
    ("in the pod: staging in and out", "staged", "job_end"),
    ("kubelet: the job's end seen, pod Succeeded", "job_end", "succeeded"),
    ("main process: the end noticed, the log saved, the Job deleted", "succeeded", "deleted"),
    ("main process: the workflow's end, record, clean-up, exit", "deleted", "exited"),
]  # fmt: skip
BARE = [
    ("Job controller: the pod created", "job", "pod"),
    ("scheduler: the pod bound to the node", "pod", "scheduled"),
    ("kubelet: the pod started, the command ran, pod Succeeded", "scheduled", "succeeded"),
]


class Heard:
    """When each object of the namespace was first seen in each state."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        import kubernetes

        api = cluster.api()
        self.core = kubernetes.client.CoreV1Api(api)
        self.batch = kubernetes.client.BatchV1Api(api)
        self.namespace = namespace
        self.at: dict[str, float] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._watch, args=(f,), daemon=True)
                        for f in ("secret", "job", "pod")]  # fmt: skip

    def __enter__(self) -> Heard:
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # the watches are open
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()

    def _note(self, key: str) -> None:
        self.at.setdefault(key, time.time())

    def _watch(self, kind: str) -> None:
        from kubernetes import watch

        lister = {"secret": (self.core.list_namespaced_secret),
                  "job": self.batch.list_namespaced_job,
                  "pod": self.core.list_namespaced_pod}[kind]  # fmt: skip
        for event in watch.Watch().stream(lister, self.namespace, timeout_seconds=600):
            if self.stop.is_set():
                return
            obj, kind_ = event["object"], event["type"]
            if kind == "secret" and kind_ == "ADDED" and "default-token" not in obj.metadata.name:
                self._note("secret")
            elif kind == "job":
                self._note("job" if kind_ != "DELETED" else "deleted")
            elif kind == "pod":
                self._note("pod")
                if obj.spec.node_name:
                    self._note("scheduled")
                if obj.status.phase == "Succeeded":
                    self._note("succeeded")


def one(bench: Any, way: str) -> dict[str, float]:
    """The marks of one run of one trivial job, in seconds from its start."""
    import uuid

    import kubernetes

    namespace, own = f"profile-{uuid.uuid4().hex[:6]}", bench.namespace
    bench.core.create_namespace({"metadata": {"name": namespace}})
    try:
        bench.namespace = namespace  # a namespace a run: what the watches hear is its own
        with Heard(bench.cluster, namespace) as heard:
            spawned = time.time()
            if way == "bare":
                bench._bare(1, 1)
                heard.at["exited"] = time.time()
            else:
                work = bench._workdir({"count": 1})
                bench._byok8s(work, "wf.json", f"s3://bench/{work.name}", 1)
                heard.at["exited"] = time.time()
                journal = next(work.glob(".byok8s/runs/*/jobs.jsonl"))
                ended = [json.loads(t) for t in journal.read_text().splitlines()
                         if json.loads(t).get("event") == "ended"]  # fmt: skip
                used = ended[0]["usage"]
                heard.at["python"] = used["at"]["process"]
                heard.at["snakemake"] = used["at"]["snakemake"]
                heard.at["job_end"] = used["at"]["end"]
                heard.at["staged"] = used["at"]["end"] - used["staged_in_s"] - used["staged_out_s"]
            time.sleep(0.5)
        return {k: round(v - spawned, 3) for k, v in heard.at.items()}
    finally:
        bench.namespace = own
        kubernetes.client.CoreV1Api(bench.cluster.api()).delete_namespace(namespace)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args()
    head, clean = provenance.require_clean(args.allow_dirty)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    import localcluster
    import services
    from bench_ways import Bench, require_current_image

    cluster = localcluster.start()
    require_current_image(cluster)
    s3 = services.start_s3(host=cluster.gateway)
    bench = Bench(cluster, s3, Path(sys.executable).parent)
    load = provenance.load()
    runs: dict[str, list[dict[str, float]]] = {"byok8s": [], "bare": []}
    try:
        bench.prepare(["byok8s", "bare"])
        for rep in range(args.reps):
            for way in runs:
                runs[way].append(one(bench, way))
                print(f"{way} {rep + 1}: {runs[way][-1]}", file=sys.stderr, flush=True)
    finally:
        bench.close()
        s3.stop()
        cluster.stop()
    report = {"when": when, "commit": head, "clean": clean, "machine": provenance.machine(),
              "load_before": load, "load_after": provenance.load(), "runs": runs}  # fmt: skip
    stamp = when.replace(":", "").replace("-", "")[:15]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"profile-{stamp}.json").write_text(json.dumps(report, indent=1) + "\n")
    README.write_text(with_newest(README.read_text()))
    print(render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    clean = "clean tree" if report["clean"] else "**the tree had uncommitted changes**"
    byok8s, bare = report["runs"]["byok8s"], report["runs"]["bare"]
    lines = [
        f"Commit {report['commit']} ({clean}), {report['when']}; {m['cores']} cores; load "
        f"average {' '.join(map(str, report['load_before']))} before, "
        f"{' '.join(map(str, report['load_after']))} after; {len(byok8s)} runs of each, "
        "alternating. Seconds, median [min-max]:",
        "",
        "| step of one trivial job | byok8s s | bare Job s |",
        "|---|---|---|",
    ]
    for name, start, end in PHASES:
        floor = next((f"{_span(bare, s, e)}" for n, s, e in BARE if (s, e) == (start, end)), "")
        lines.append(f"| {name} | {_span(byok8s, start, end)} | {floor} |")
    lines.append(f"| the bare pod from scheduled to Succeeded | | "
                 f"{_span(bare, 'scheduled', 'succeeded')} |")  # fmt: skip
    lines.append(f"| **whole run** | **{_span(byok8s, 'spawned', 'exited')}** | "
                 f"**{_span(bare, 'spawned', 'exited')}** |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _span(runs: list[dict[str, float]], start: str, end: str) -> str:
    """The step from mark `start` to mark `end` (marks count from the spawn)."""
    steps = [r.get(end, float("nan")) - r.get(start, 0.0) for r in runs]
    return span([s for s in steps if s == s], 2)


def with_newest(readme: str) -> str:
    path = sorted(RESULTS.glob("profile-*.json"))[-1]
    body = f"From `bench/results/{path.name}`:\n\n" + render(json.loads(path.read_text()))
    return provenance.with_block(readme, MARKS, body)


if __name__ == "__main__":
    sys.exit(main())
