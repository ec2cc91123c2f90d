"""Per-job overhead and staging speed of byok8s, side by side with plain
`snakemake --executor kubernetes` and with bare Kubernetes Jobs (the floor), on
the local cluster of test/cluster/ and one S3 server (moto) on its bridge.

    .venv/bin/python bench/bench.py                 # the full set (about an hour)
    .venv/bin/python bench/bench.py --quick         # N = 1 and 10, one repetition
    TEST_CLUSTER_STATE=/tmp/byok8s-cluster .venv/bin/python bench/bench.py  # reuse a cluster

Runs alternate between the three ways within each repetition; the table of
medians and ratios goes to bench/results/ (Markdown and JSON) and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
import localcluster  # noqa: E402
import services  # noqa: E402
from bench_ways import Bench  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1 and 10, one repetition")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each case")
    parser.add_argument("--staging-mb", type=int, default=512, help="size of the staged file")
    parser.add_argument("--ways", default="byok8s,plain,bare",
                        help="comma-separated subset; 'tool': byok8s with the rule in a tool "
                        "image (e.g. --ways byok8s,tool --cases 10x10 --no-staging)")  # fmt: skip
    parser.add_argument("--cases", help="comma-separated NxJOBS, e.g. 50x4,50x50")
    parser.add_argument("--no-staging", action="store_true", help="skip the staging case")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="merge earlier results into one table")  # fmt: skip
    args = parser.parse_args()
    if args.combine:
        _write(_combine([json.loads(Path(f).read_text()) for f in args.combine]))
        return 0
    reps = 1 if args.quick else args.reps
    cases = [(1, 1), (10, 10), (10, 4)] if args.quick else [(1, 1), (10, 10), (10, 4), (50, 50),
                                                             (50, 4)]  # fmt: skip
    if args.cases:
        cases = [(int(n), int(j)) for n, j in (c.split("x") for c in args.cases.split(","))]
    ways = args.ways.split(",")

    help_s = _help_seconds()
    cluster = localcluster.start()
    s3 = services.start_s3(host=cluster.gateway)
    bench = Bench(cluster, s3, BIN)
    report: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                              "reps": reps, "machine": f"{os.cpu_count()} cores", "rows": [],
                              "staging": None, "help_s": help_s,
                              "commit": _commit()}  # fmt: skip
    try:
        bench.prepare(need_wheelhouse="plain" in ways)
        for n, jobs in cases:
            times: dict[str, list[float]] = {w: [] for w in ways}
            for rep in range(reps):
                for way in ways:
                    seconds = bench.trivial(way, n, jobs)
                    times[way].append(seconds)
                    print(f"trivial N={n} --jobs {jobs} {way} rep {rep + 1}: {seconds:.1f} s",
                          file=sys.stderr, flush=True)  # fmt: skip
            report["rows"].append(_row(f"{n} trivial jobs, --jobs {jobs}", times, n))
            _write(report)  # what is measured so far survives a failure later on
        if not args.no_staging:
            report["staging"] = bench.staging(args.staging_mb, reps)
            _write(report)
    finally:
        bench.close()
        s3.stop()
        cluster.stop()
    return 0


def _commit() -> str:
    """The commit measured, marked when the tree differs from it (results aside: an
    earlier run's files change nothing that is measured)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short=12", "HEAD").strip() or "unknown"
    changed = git("status", "--porcelain", "--", ".", ":!bench/results").strip()
    return head + (" (with uncommitted changes)" if changed else "")


def _help_seconds(runs: int = 7) -> float:
    """Median wall time of `byok8s --help` (what every typo costs)."""
    import subprocess
    import time

    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([str(BIN / "byok8s"), "--help"], capture_output=True, check=True)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def _row(name: str, times: dict[str, list[float]], n: int | None = None) -> dict[str, Any]:
    med = {w: statistics.median(t) for w, t in times.items()}
    row: dict[str, Any] = {"case": name, "median_s": med, "runs_s": times, "n": n}
    if "tool" in med and "byok8s" in med:
        row["tool/byok8s"] = med["tool"] / med["byok8s"]
    if "byok8s" in med and "plain" in med:
        row["byok8s/plain"] = med["byok8s"] / med["plain"]
    if "byok8s" in med and "bare" in med:
        row["byok8s/bare"] = med["byok8s"] / med["bare"]
    return row


def _combine(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several: the runs of each case and way put together."""
    cases: dict[str, dict[str, list[float]]] = {}
    for report in reports:
        for row in report["rows"]:
            for way, runs in row["runs_s"].items():
                cases.setdefault(row["case"], {}).setdefault(way, []).extend(runs)
    staging = next((r["staging"] for r in reports if r.get("staging")), None)
    last = max(reports, key=lambda r: r["when"])
    return {"when": last["when"], "combined": len(reports), "machine": last["machine"],
            "rows": [_row(case, times, int(case.split()[0])) for case, times in cases.items()],
            "staging": staging, "help_s": last["help_s"]}  # fmt: skip


def _write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = report["when"].replace(":", "").replace("-", "")[:15]
    stamp += "-combined" if report.get("combined") else ""
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"# byok8s benchmark, {report['when']} ({report['machine']}; medians, runs per way in the "
        "last column)",
        "",
        f"Commit {report.get('commit', 'not recorded')}.",
        "",
        "| case | byok8s s | plain snakemake s | bare Jobs s | byok8s/plain | byok8s/bare | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    ways = ("byok8s", "plain", "bare")
    for row in report["rows"]:
        med = row["median_s"]
        cells = [f"{med[w]:.1f}" if w in med else "-" for w in ways]
        ratios = [f"{row[k]:.2f}" if k in row else "-" for k in ("byok8s/plain", "byok8s/bare")]
        runs = "/".join(str(len(row["runs_s"].get(w, []))) for w in ways)
        lines.append(f"| {row['case']} | " + " | ".join(cells + ratios + [runs]) + " |")
    tools = [row for row in report["rows"] if "tool/byok8s" in row]
    if tools:
        lines += ["", "A rule in a tool image (no Python; the job runtime copied by a "
                  "container of the job image beside the job's) against the same rule in the "
                  "job image (min-max in brackets):",
                  "", "| case | job image s | tool image s | tool/job image | more per job s |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for row in tools:
            med, runs = row["median_s"], row["runs_s"]
            spans = {w: f"{med[w]:.1f} [{min(runs[w]):.1f}-{max(runs[w]):.1f}]"
                     for w in ("byok8s", "tool")}  # fmt: skip
            extra = (med["tool"] - med["byok8s"]) / (row.get("n") or 1)
            lines.append(f"| {row['case']} | {spans['byok8s']} | {spans['tool']} | "
                         f"{row['tool/byok8s']:.2f} | {extra:.1f} |")  # fmt: skip
    st = report["staging"]
    lines += (
        []
        if st is None
        else [
            "",
            f"Staging {st['mb']} MB in and out of S3 (moto on the bridge), median of {st['reps']}:",
            "",
            "| path | MB/s |",
            "|---|---|",
            f"| boto3 managed transfer, up + down, from the host | {st['boto3_mb_s']:.0f} |",
            f"| byok8s job (copy rule), job - trivial job | {st['byok8s_mb_s']:.0f} |",
            f"| ratio byok8s/boto3 | {st['ratio']:.2f} |",
        ]
    )
    lines += ["", f"`byok8s --help`: {report['help_s']:.2f} s (median of 7)."]
    text = "\n".join(lines) + "\n"
    (RESULTS / f"bench-{stamp}.md").write_text(text)
    (RESULTS / "latest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
