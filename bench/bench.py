"""Per-job overhead, controller cost and staging speed of byok8s, side by side with
plain `snakemake --executor kubernetes` and with bare Kubernetes Jobs (the floor),
on the local cluster of test/cluster/ and one S3 server (moto) on its bridge.

    .venv/bin/python bench/bench.py                  # every case (several hours)
    .venv/bin/python bench/bench.py --cases 1x1,10x4 # some of them
    .venv/bin/python bench/bench.py --combine A.json B.json  # runs of one commit, merged
    TEST_CLUSTER_STATE=/tmp/byok8s-cluster .venv/bin/python bench/bench.py  # reuse a cluster

Within each repetition the ways run one after the other. Every run is kept: the
results file (bench/results/bench-*.json, and the same as a table in .md) has each
run's seconds, main-process CPU and memory and API requests, with the commit, the
machine and the load. The README's table is made from the newest results file
(between its bench marks; a test checks it). A tree that differs from its commit
is refused unless --allow-dirty, which marks the file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))
sys.path.insert(0, str(ROOT / "bench"))
import provenance  # noqa: E402
from provenance import RESULTS, span  # noqa: E402

BIN = Path(sys.executable).parent
README = ROOT / "README.md"
MARKS = ("<!-- bench:begin -->", "<!-- bench:end -->")
FORMAT = 2  # results files with every run's measurements (1: medians of seconds only)
WAYS = ("byok8s", "plain", "bare")
NAMES = {"byok8s": "byok8s", "plain": "plain snakemake", "plain-all": "plain snakemake, "
         "byok8s's venv", "bare": "bare Jobs", "tool": "byok8s, tool image"}  # fmt: skip
# (jobs, --jobs, runs of each way): every figure of the README.
PLAN: list[tuple[int, int, dict[str, int]]] = [
    (1, 1, {"byok8s": 3, "plain": 3, "bare": 3}),
    (10, 4, {"byok8s": 3, "plain": 3, "bare": 3}),
    (50, 4, {"byok8s": 3, "bare": 3}),
    (200, 50, {"byok8s": 3, "plain": 1, "bare": 3}),
    (1000, 50, {"byok8s": 1, "bare": 1}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated NxJOBS of the plan (e.g. 1x1,10x4), "
                        "or others (run by every way of --ways)")  # fmt: skip
    parser.add_argument("--ways", help="comma-separated subset of byok8s, plain, bare; also "
                        "plain-all (plain snakemake from byok8s's venv) and tool (byok8s "
                        "with the rule in a tool image)")  # fmt: skip
    parser.add_argument("--reps", type=int, help="runs of each way (instead of the plan's)")
    parser.add_argument("--staging-mb", type=int, default=512, help="size of the staged file")
    parser.add_argument("--staging-reps", type=int, default=3)
    parser.add_argument("--no-staging", action="store_true", help="skip the staging case")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="measure a tree that differs from its commit (marked so)")  # fmt: skip
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="merge whole results files of one commit into one")  # fmt: skip
    args = parser.parse_args()
    if args.combine:
        try:
            report = combine([json.loads(Path(f).read_text()) for f in args.combine],
                             [Path(f).name for f in args.combine])  # fmt: skip
        except ValueError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
        write(report)
        return 0
    head, clean = provenance.require_clean(args.allow_dirty)
    plan = choose(args.cases, args.ways, args.reps)
    report: dict[str, Any] = {
        "format": FORMAT, "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": head, "clean": clean, "machine": provenance.machine(),
        "load_before": provenance.load(), "runs": [], "staging": None,
        "help_runs": help_seconds(),
    }  # fmt: skip
    measure_all(report, plan, args)
    return 0


def choose(cases: str | None, ways: str | None, reps: int | None) -> list[tuple[int, int, dict]]:
    """The plan, or the cases and ways asked for."""
    wanted = ways.split(",") if ways else None
    plan = []
    if cases:
        planned = {(n, j): w for n, j, w in PLAN}
        for case in cases.split(","):
            n, jobs = (int(x) for x in case.split("x"))
            plan.append((n, jobs, dict(planned.get((n, jobs), {w: 3 for w in WAYS}))))
    else:
        plan = [(n, j, dict(w)) for n, j, w in PLAN]
    chosen = []
    for n, jobs, runs in plan:
        if wanted:
            runs = {w: runs.get(w, max(runs.values())) for w in wanted}
        if reps:
            runs = dict.fromkeys(runs, reps)
        chosen.append((n, jobs, runs))
    return chosen


def measure_all(report: dict[str, Any], plan: list[tuple[int, int, dict]], args: Any) -> None:
    import localcluster
    import services
    from bench_ways import Bench, require_current_image

    cluster = localcluster.start()
    require_current_image(cluster)
    s3 = services.start_s3(host=cluster.gateway)
    bench = Bench(cluster, s3, BIN)
    try:
        bench.prepare(sorted({w for _, _, runs in plan for w in runs}))
        report["idle_api_per_s"] = bench.idle_requests()
        for n, jobs, runs in plan:
            for rep in range(max(runs.values())):
                for way, count in runs.items():
                    if rep >= count:
                        continue
                    load = provenance.load()[0]
                    run = {"n": n, "jobs": jobs, "way": way, "rep": rep + 1, "load": load,
                           **bench.trivial(way, n, jobs)}  # fmt: skip
                    report["runs"].append(run)
                    print(f"{n}x{jobs} {way} run {rep + 1}: {run['seconds']:.1f} s, "
                          f"CPU {run.get('cpu_s', 0):.1f} s, load {load}",
                          file=sys.stderr, flush=True)  # fmt: skip
            report["load_after"] = provenance.load()
            write(report)  # what is measured so far survives a failure later on
        if not args.no_staging:
            report["staging"] = bench.staging(args.staging_mb, args.staging_reps)
            report["load_after"] = provenance.load()
            write(report)
    finally:
        bench.close()
        s3.stop()
        cluster.stop()


def help_seconds(runs: int = 7) -> list[float]:
    """Wall times of `byok8s --help` (what every typo costs)."""
    import subprocess
    import time

    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([str(BIN / "byok8s"), "--help"], capture_output=True, check=True)
        times.append(round(time.monotonic() - started, 3))
    return times


def combine(reports: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One report of the whole files given, which must be of one commit, all clean
    or all not: their runs together."""
    if any(r.get("format") != FORMAT for r in reports):
        raise ValueError(f"only results files of format {FORMAT} combine (every run kept)")
    commits = {(r["commit"], r["clean"]) for r in reports}
    if len(commits) != 1:
        raise ValueError("the files are of different commits (or clean and not): "
                         + ", ".join(sorted(f"{c}{'' if k else ' (dirty)'}"
                                            for c, k in commits)))  # fmt: skip
    first, last = (min(reports, key=lambda r: r["when"]), max(reports, key=lambda r: r["when"]))
    stagings = [r["staging"] for r in reports if r.get("staging")]
    staging = None
    if stagings:
        staging = {**stagings[-1], "reps": sum(s["reps"] for s in stagings),
                   "runs": {k: [x for s in stagings for x in s["runs"][k]]
                            for k in ("boto3", "byok8s")}}  # fmt: skip
        staging["boto3_mb_s"] = statistics.median(staging["runs"]["boto3"])
        staging["byok8s_mb_s"] = statistics.median(staging["runs"]["byok8s"])
        staging["ratio"] = staging["byok8s_mb_s"] / staging["boto3_mb_s"]
    return {
        **last, "combined": names, "load_before": first["load_before"],
        "runs": [run for r in sorted(reports, key=lambda r: r["when"]) for run in r["runs"]],
        "help_runs": [t for r in reports for t in r["help_runs"]], "staging": staging,
        "idle_api_per_s": [r.get("idle_api_per_s") for r in reports],
    }  # fmt: skip


# --- the results file and the README ------------------------------------------------


def write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = report["when"].replace(":", "").replace("-", "")[:15]
    stamp += "-combined" if report.get("combined") else ""
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(report, indent=1) + "\n")
    text = render(report)
    (RESULTS / f"bench-{stamp}.md").write_text(f"# byok8s benchmark, {report['when']}\n\n{text}")
    README.write_text(with_newest(README.read_text()))
    print(text)


def newest() -> Path:
    """The newest results file with every run in it: of a file and the combination
    named by the same (its last) stamp, the combination."""

    def order(path: Path) -> tuple[str, bool]:
        return path.stem.removesuffix("-combined"), path.stem.endswith("-combined")

    files = [p for p in sorted(RESULTS.glob("bench-*.json"), key=order)
             if json.loads(p.read_text()).get("format") == FORMAT]  # fmt: skip
    return files[-1]


def with_newest(readme: str) -> str:
    """The README with the table of the newest results file between MARKS."""
    path = newest()
    body = f"From `bench/results/{path.name}`:\n\n" + render(json.loads(path.read_text()))
    return provenance.with_block(readme, MARKS, body)


def cases(runs: Iterable[dict[str, Any]]) -> dict[tuple[int, int], dict[str, list[dict]]]:
    """The runs by case (jobs, --jobs), then by way, in the order they came."""
    found: dict[tuple[int, int], dict[str, list[dict]]] = {}
    for run in runs:
        found.setdefault((run["n"], run["jobs"]), {}).setdefault(run["way"], []).append(run)
    return dict(sorted(found.items()))


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def requests(run: dict[str, Any], key: str) -> int:
    return sum(run.get(key, {}).values())


def render(report: dict[str, Any]) -> str:
    by_case = cases(report["runs"])
    ways = [w for w in (*WAYS, "plain-all", "tool") if any(w in c for c in by_case.values())]
    m = report["machine"]
    clean = "clean tree" if report["clean"] else "**the tree had uncommitted changes**"
    lines = [
        f"Commit {report['commit']} ({clean}), {report['when']}. Machine: {m['cores']} cores "
        f"({m['cpu'] or 'CPU not known'}), {m['memory_gib']} GiB; load average (1, 5, 15 min) "
        f"{' '.join(map(str, report['load_before']))} before, "
        f"{' '.join(map(str, report.get('load_after', [])))} after; nothing else ran but the "
        "local cluster and the S3 server." + (
            f" Combined from {', '.join(report['combined'])}." if report.get("combined") else ""),
        "",
        "Seconds, median [min-max]; ratios of the medians; runs of each way in the last column:",
        "",
        "| case | " + " | ".join(f"{NAMES[w]} s" for w in ways)
        + " | byok8s/plain | byok8s/bare | runs |",
        "|---|" + "---|" * (len(ways) + 3),
    ]  # fmt: skip
    for (n, jobs), by_way in by_case.items():
        seconds = {w: [r["seconds"] for r in by_way.get(w, [])] for w in ways}
        med = {w: statistics.median(s) for w, s in seconds.items() if s}
        ratio = [f"{med['byok8s'] / med[o]:.2f}" if "byok8s" in med and o in med else "-"
                 for o in ("plain", "bare")]  # fmt: skip
        counts = "/".join(str(len(seconds[w])) for w in ways)
        lines.append(f"| {n} trivial job{'s' if n > 1 else ''}, `--jobs {jobs}` | "
                     + " | ".join(span(seconds[w]) for w in ways)
                     + f" | {' | '.join(ratio)} | {counts} |")  # fmt: skip
    lines += [
        "",
        "Per job: the main process's CPU seconds (with what it waited for), the same "
        "beyond the one-job run's (what one more job costs), its peak memory, and API "
        "requests: the run's own client's (audit log, by user agent) and all clients' "
        "(`apiserver_request_total`: with what the controllers, the scheduler and the "
        f"kubelet did, and their background, {idle(report)} requests a second when idle):",
        "",
        "| case | way | s per job | CPU s per job | CPU s per more job | peak RSS MB "
        "| own API requests per job | all API requests per job |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for (n, jobs), by_way in by_case.items():
        for way in ways:
            runs = by_way.get(way, [])
            if not runs:
                continue
            one = by_case.get((1, 1), {}).get(way, [])
            cpu, cpu_one = median_of(runs, "cpu_s"), median_of(one, "cpu_s")
            more = (f"{(cpu - cpu_one) / (n - 1):.3f}" if n > 1 and cpu is not None
                    and cpu_one is not None else "-")  # fmt: skip
            rss = median_of(runs, "rss_mb")
            lines.append(" | ".join([
                f"| {n}, `--jobs {jobs}`", NAMES[way], span([r["seconds"] / n for r in runs], 2),
                span([r["cpu_s"] / n for r in runs if r.get("cpu_s") is not None], 3), more,
                f"{rss:.0f}" if rss is not None else "-",
                span([requests(r, "api_own") / n for r in runs]),
                span([requests(r, "api_all") / n for r in runs]),
            ]) + " |")  # fmt: skip
    lines += own_requests(by_case)
    st = report.get("staging")
    if st:
        lines += [
            "",
            f"Staging {st['mb']} MB in and out of S3 (moto on the bridge), {st['reps']} runs:",
            "",
            "| path | MB/s, median [min-max] |",
            "|---|---|",
            "| boto3 managed transfer, up + down, from the host | "
            f"{span(st['runs']['boto3'], 0)} |",
            f"| byok8s job (copy rule): its time less the 1-job run's | "
            f"{span(st['runs']['byok8s'], 0)} |",
            *([f"| the same job's staging alone (its own marks: the seconds its storage "
               f"plugin took) | {span(st['runs']['byok8s_staging_alone'], 0)} |"]
              if st["runs"].get("byok8s_staging_alone") else []),
            f"| ratio byok8s/boto3 (medians) | {st['ratio']:.2f} |",
        ]  # fmt: skip
    help_runs = report.get("help_runs") or []
    lines += ["", f"`byok8s --help`: {span(help_runs, 2)} s ({len(help_runs)} runs)."]
    lines += targets(report, by_case)
    return "\n".join(lines) + "\n"


# (what, case, the way byok8s is divided by, the most the ratio may be); issue 21's.
TARGETS = [
    ("1 trivial job, byok8s/bare", (1, 1), "bare", 5.0),
    ("10 jobs `--jobs 4`, byok8s/bare", (10, 4), "bare", 2.5),
    ("50 jobs `--jobs 4`, byok8s/bare", (50, 4), "bare", 1.6),
    ("10 jobs `--jobs 4`, byok8s/plain", (10, 4), "plain", 0.25),
]
SCALE = [(10, 4), (50, 4), (200, 50), (1000, 50)]  # where the per-job costs must stay flat


def targets(report: dict[str, Any], by_case: dict[tuple[int, int], dict[str, list[dict]]]
            ) -> list[str]:  # fmt: skip
    """The figures of this file against the targets, each met or missed by how much."""

    def verdict(value: float | None, bound: float, at_least: bool = False) -> str:
        if value is None:
            return "not measured"
        if (value >= bound) if at_least else (value <= bound):
            return "met"
        return f"missed by {abs(value / bound - 1) * 100:.0f}%"

    def seconds(case: tuple[int, int], way: str) -> float | None:
        runs = by_case.get(case, {}).get(way, [])
        return statistics.median(r["seconds"] for r in runs) if runs else None

    lines = ["", "Against the targets (medians of this file):", "",
             "| target | figure | result |", "|---|---|---|"]  # fmt: skip
    for name, case, other, bound in TARGETS:
        mine, theirs = seconds(case, "byok8s"), seconds(case, other)
        ratio = mine / theirs if mine is not None and theirs else None
        lines.append(f"| {name} at most {bound:g} | {'-' if ratio is None else f'{ratio:.2f}'} "
                     f"| {verdict(ratio, bound)} |")  # fmt: skip
    for name, key, bound in (("byok8s's own API requests per job", "api_own", 8.0),
                             ("byok8s's main-process CPU s per job", "cpu_s", 0.15)):  # fmt: skip
        for case in SCALE:
            runs = by_case.get(case, {}).get("byok8s", [])
            value, more = None, ""
            if key == "api_own" and runs:
                value = statistics.median(requests(r, key) / case[0] for r in runs)
            elif key == "cpu_s" and (cpu := median_of(runs, key)) is not None:
                value = cpu / case[0]
                one = median_of(by_case.get((1, 1), {}).get("byok8s", []), key)
                if one is not None:  # what one more job adds, the run's fixed cost aside
                    more = f" ({(cpu - one) / (case[0] - 1):.3f} per more job)"
            shown = "-" if value is None else f"{value:.{1 if key == 'api_own' else 3}f}{more}"
            lines.append(f"| {name} at most {bound:g}, {case[0]} jobs `--jobs {case[1]}` "
                         f"| {shown} | {verdict(value, bound)} |")  # fmt: skip
    st = report.get("staging")
    ratio = st["ratio"] if st else None
    lines.append(
        f"| staging 512 MB in and out, byok8s/boto3 at least 0.90 "
        f"| {'-' if ratio is None else f'{ratio:.2f}'} | {verdict(ratio, 0.90, True)} |"
    )
    return lines


def idle(report: dict[str, Any]) -> str:
    rates = report.get("idle_api_per_s")
    rates = [r for r in (rates if isinstance(rates, list) else [rates]) if r is not None]
    return span(rates) if rates else "not measured"


def own_requests(by_case: dict[tuple[int, int], dict[str, list[dict]]]) -> list[str]:
    """byok8s's own requests per job by verb and resource, case by case."""
    columns = [(key, c["byok8s"]) for key, c in by_case.items() if c.get("byok8s")]
    if not columns:
        return []
    names = sorted({k for _, runs in columns for r in runs for k in r.get("api_own", {})})
    lines = [
        "",
        "byok8s's own API requests per job by verb and resource (medians):",
        "",
        "| request | " + " | ".join(f"{n}, `--jobs {j}`" for (n, j), _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name in names:
        cells = [f"{statistics.median(r.get('api_own', {}).get(name, 0) for r in runs) / n:.2f}"
                 for (n, _), runs in columns]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
