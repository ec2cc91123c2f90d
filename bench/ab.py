"""Two revisions of byok8s side by side in one run: the same trivial case, their
runs alternated (A B A B ...), each revision with its own job image, so that one
change is measured on its own and kept only if it helps.

    TEST_CLUSTER_STATE=/tmp/byok8s-bench .venv/bin/python bench/ab.py BASE NEW \\
        --case 10x4 --reps 3

Each revision is exported from git into a directory of its own; its byok8s runs
from there (on PYTHONPATH, ahead of this checkout's editable install) with this
checkout's venv, and its pods run the job image built from its own sources. What
is measured is bench.py's: wall seconds, main-process CPU and peak memory,
byok8s's own API requests, and the median job's own wall and CPU seconds in its
pod. Results: bench/results/ab-*.json and .md (both commits, the machine, the
load before each run); the README's table of every such file between its ab
marks (`ab.py --readme` writes it again).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "test"), str(ROOT / "bench")]
import provenance  # noqa: E402
from bench_ways import compile_own, job_image_tag  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", help="revision A (the one without the change)")
    parser.add_argument("new", nargs="?", help="revision B (with it)")
    parser.add_argument("--readme", action="store_true",
                        help="only write the README's table of every A/B results file")  # fmt: skip
    parser.add_argument("--case", default="10x4", help="NxJOBS: N trivial jobs, --jobs JOBS")
    parser.add_argument("--reps", type=int, default=3, help="runs of each revision")
    args = parser.parse_args()
    if args.readme:
        README.write_text(with_all(README.read_text()))
        return 0
    if not (args.base and args.new):
        parser.error("give the two revisions, BASE and NEW")
    n, jobs = (int(x) for x in args.case.split("x"))
    revisions = [resolve(args.base), resolve(args.new)]
    if revisions[0] == revisions[1]:
        raise SystemExit(f"ab: {args.base} and {args.new} are the same commit")
    head, clean = provenance.commit()
    report: dict[str, Any] = {
        "format": 1, "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script_commit": head, "script_clean": clean, "machine": provenance.machine(),
        "load_before": provenance.load(), "case": {"n": n, "jobs": jobs},
        "revisions": revisions, "runs": [],
    }  # fmt: skip
    measure(report, n, jobs, args.reps)
    report["load_after"] = provenance.load()
    write(report)
    return 0


def resolve(rev: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"ab: no such revision: {rev!r}; give a commit, tag or branch")
    return done.stdout.strip()


def export(commit: str, into: Path) -> Path:
    """The revision's tree, its byok8s modules compiled as a wheel's install does."""
    tree = into / commit[:12]
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True,
                             check=True).stdout  # fmt: skip
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as t:
            t.extractall(tree, filter="data")
    compile_own(tree)
    return tree


def job_image(tree: Path, cluster: Any) -> str:
    """The revision's job image, built from its sources and loaded into the node."""
    tag = job_image_tag(tree, _env())
    tar = subprocess.run(["bash", str(tree / "test/cluster/job-image.sh"), tag],
                         capture_output=True, text=True, check=True, env=_env()).stdout  # fmt: skip
    subprocess.run(["ctr", "--address", str(cluster.state / "containerd.sock"), "-n", "k8s.io",
                    "images", "import", tar.strip().splitlines()[-1]],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return tag


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHON": str(BIN / "python")}


def runs_from(tree: Path) -> str:
    """Where a byok8s started with the revision's PYTHONPATH imports itself from."""
    code = (
        "import byok8s, snakemake_executor_plugin_byok8s as p; print(byok8s.__file__, p.__file__)"
    )
    return subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True,
                          check=True, env={**_env(), "PYTHONPATH": str(tree)},
                          cwd=tempfile.gettempdir()).stdout  # fmt: skip


def measure(report: dict[str, Any], n: int, jobs: int, reps: int) -> None:
    import localcluster
    import services
    from bench_ways import Bench

    cluster = localcluster.start()
    s3 = services.start_s3(host=cluster.gateway)
    bench = Bench(cluster, s3, BIN)
    work = Path(tempfile.mkdtemp(prefix="byok8s-ab-"))
    try:
        trees = [export(c, work) for c in report["revisions"]]
        for tree in trees:
            where = runs_from(tree)
            if where.count(str(tree)) != 2:
                raise SystemExit(f"ab: the revision's byok8s is not the one imported: {where}")
        images = [job_image(tree, cluster) for tree in trees]
        report["images"] = images
        bench.prepare(["byok8s"])
        base_env = dict(bench.env)
        revisions = list(zip(report["revisions"], trees, images, strict=True))
        for rep in range(reps):
            for way, (commit, tree, image) in enumerate(revisions):
                bench.env = {**base_env, "PYTHONPATH": str(tree)}
                bench.cluster = dataclasses.replace(cluster, image=image)
                load = provenance.load()[0]
                run = bench.trivial("byok8s", n, jobs)
                report["runs"].append({"revision": commit, "way": "AB"[way], "rep": rep + 1,
                                       "load": load, **run})  # fmt: skip
                print(
                    f"{'AB'[way]} {commit[:12]} run {rep + 1}: {run['seconds']:.1f} s, "
                    f"CPU {run['cpu_s']:.2f} s, load {load}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        bench.close()
        s3.stop()
        cluster.stop()


FIGURES = {
    "seconds": "wall seconds",
    "cpu_s": "main-process CPU s",
    "rss_mb": "peak RSS MB",
    "pod_wall_s": "a job's own wall s in its pod (median job)",
    "pod_cpu_s": "a job's own CPU s in its pod (median job)",
}


def summary(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per revision: each figure's median, min and max, and the median of its own requests."""
    out: dict[str, dict[str, Any]] = {}
    for way in "AB":
        runs = [r for r in report["runs"] if r["way"] == way]
        out[way] = {
            key: [
                statistics.median(r[key] for r in runs),
                min(r[key] for r in runs),
                max(r[key] for r in runs),
            ]
            for key in FIGURES
            if all(key in r for r in runs)
        } | {"own_requests": statistics.median(sum(r["api_own"].values()) for r in runs)}
    return out


def render(report: dict[str, Any]) -> str:
    s = summary(report)
    a, b = (c[:12] for c in report["revisions"])
    n, jobs = report["case"]["n"], report["case"]["jobs"]
    m = report["machine"]
    lines = [
        f"{n} trivial jobs, `--jobs {jobs}`, {len(report['runs']) // 2} runs of each "
        f"revision, alternated; A = {a}, B = {b} (each exported whole from git); "
        f"script at {report['script_commit']}"
        f"{'' if report['script_clean'] else ' with uncommitted changes'}; "
        f"{m.get('cores')} cores, {m.get('cpu')}; load average before "
        f"{' / '.join(map(str, report['load_before']))}, after "
        f"{' / '.join(map(str, report['load_after']))}.",
        "",
        "| figure | A | B | B/A |",
        "|---|---|---|---|",
    ]
    for key, name in FIGURES.items():
        if key not in s["A"] or key not in s["B"]:
            continue
        ratio = s["B"][key][0] / s["A"][key][0] if s["A"][key][0] else float("nan")
        lines.append(f"| {name} | {_span(s['A'][key])} | {_span(s['B'][key])} | {ratio:.2f} |")
    lines.append(f"| own API requests | {s['A']['own_requests']:g} | "
                 f"{s['B']['own_requests']:g} | - |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _span(v: list[float]) -> str:
    return f"{v[0]:.2f} [{v[1]:.2f}-{v[2]:.2f}]"


README = ROOT / "README.md"
MARKS = ("<!-- ab:begin -->", "<!-- ab:end -->")


def table(reports: list[tuple[str, dict[str, Any]]]) -> str:
    """One row per A/B results file: each revision's medians and B/A."""
    lines = [
        "| A → B | case | runs each | wall s A / B | main-process CPU s A / B "
        "| a job's CPU s in its pod A / B | file |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, report in reports:
        s = summary(report)
        a, b = (c[:7] for c in report["revisions"])
        n, jobs = report["case"]["n"], report["case"]["jobs"]
        lines.append(f"| {a} → {b} | {n} jobs, `--jobs {jobs}` | {len(report['runs']) // 2} "
                     f"| {_pair(s, 'seconds', 1)} | {_pair(s, 'cpu_s')} "
                     f"| {_pair(s, 'pod_cpu_s')} | `{name}` |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _pair(s: dict[str, dict[str, Any]], key: str, digits: int = 2) -> str:
    """A's and B's medians of `key`, and B/A."""
    if key not in s["A"] or key not in s["B"]:
        return "-"
    x, y = s["A"][key][0], s["B"][key][0]
    return f"{x:.{digits}f} / {y:.{digits}f} ({y / x:.2f})"


def with_all(readme: str) -> str:
    """The README with the table of every A/B results file, oldest first, between MARKS."""
    files = sorted(provenance.RESULTS.glob("ab-*.json"))
    return provenance.with_block(readme, MARKS, table(
        [(f.name, json.loads(f.read_text())) for f in files]))  # fmt: skip


def write(report: dict[str, Any]) -> None:
    provenance.RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = report["when"].replace(":", "").replace("-", "")[:15]
    (provenance.RESULTS / f"ab-{stamp}.json").write_text(json.dumps(report, indent=1) + "\n")
    text = render(report)
    (provenance.RESULTS / f"ab-{stamp}.md").write_text(f"# byok8s A/B, {report['when']}\n\n{text}")
    README.write_text(with_all(README.read_text()))
    print(text)


if __name__ == "__main__":
    sys.exit(main())
