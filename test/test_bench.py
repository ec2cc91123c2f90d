"""bench/bench.py's results files and the README's table made from them (no
cluster: the runs are written here)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name: str) -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / f"bench/{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "bench"))


bench = load("bench")
provenance = load("provenance")


def run(way: str, n: int, jobs: int, seconds: float, **more: Any) -> dict[str, Any]:
    return {"n": n, "jobs": jobs, "way": way, "rep": 1, "load": 0.5, "seconds": seconds,
            "cpu_s": more.get("cpu_s"), "rss_mb": more.get("rss_mb"),
            "api_own": more.get("own", {}), "api_all": more.get("all", {})}  # fmt: skip


def report(commit: str = "abc", clean: bool = True, when: str = "2026-12-01T10:00:00+00:00",
           runs: list | None = None) -> dict[str, Any]:  # fmt: skip
    return {"format": bench.FORMAT, "when": when, "commit": commit, "clean": clean,
            "machine": {"cores": 2, "memory_gib": 23.5, "cpu": "x"}, "load_before": [0.1, 0.2, 0.3],
            "load_after": [1.0, 1.1, 1.2], "runs": runs or [], "staging": None,
            "help_runs": [0.5, 0.6], "idle_api_per_s": 3.0}  # fmt: skip


def test_the_readme_shows_the_newest_results_file() -> None:
    readme = (ROOT / "README.md").read_text()
    assert bench.with_newest(readme) == readme, "run bench/bench.py (it writes the README)"


def test_the_table_has_medians_with_min_and_max_ratios_and_per_job_costs() -> None:
    runs = [
        run(
            "byok8s",
            1,
            1,
            s,
            cpu_s=3.0,
            rss_mb=200,
            own={"POST jobs": 1, "GET pods": 2},
            all={"POST jobs": 1, "PATCH pods/status": 5},
        )
        for s in (5.0, 4.0, 6.0)
    ]
    runs += [run("bare", 1, 1, s, own={"POST jobs": 1}) for s in (1.0, 2.0, 1.5)]
    runs += [run("plain", 1, 1, 20.0, cpu_s=5.0)]
    runs += [run("byok8s", 11, 4, 21.0, cpu_s=4.0, own={"POST jobs": 11, "GET pods": 11})]
    text = bench.render(report(runs=runs))
    assert "Commit abc (clean tree)" in text and "2 cores" in text
    assert "0.1 0.2 0.3 before, 1.0 1.1 1.2 after" in text
    row = next(line for line in text.splitlines() if line.startswith("| 1 trivial job,"))
    assert row == ("| 1 trivial job, `--jobs 1` | 5.0 [4.0-6.0] | 20.0 | 1.5 [1.0-2.0] | 0.25 | "
                   "3.33 | 3/1/3 |")  # fmt: skip
    cost = next(line for line in text.splitlines() if line.startswith("| 11, `--jobs 4` | byok8s"))
    # CPU per job 4/11; one more job beyond the one-job run: (4 - 3) / 10
    assert "| 0.364 | 0.100 | - | 2.0 |" in cost
    assert "| GET pods | 2.00 | 1.00 |" in text  # own requests by verb and resource
    assert "`byok8s --help`: 0.55 [0.50-0.60] s (2 runs)" in text


def test_a_dirty_tree_is_marked() -> None:
    assert "**the tree had uncommitted changes**" in bench.render(report(clean=False))


def test_combine_takes_whole_files_of_one_commit_only() -> None:
    one = report(when="2026-12-01T10:00:00+00:00", runs=[run("byok8s", 1, 1, 5.0)])
    two = report(when="2026-12-01T11:00:00+00:00", runs=[run("bare", 1, 1, 1.0)])
    merged = bench.combine([two, one], ["b.json", "a.json"])
    assert [r["way"] for r in merged["runs"]] == ["byok8s", "bare"]  # in time order
    assert merged["combined"] == ["b.json", "a.json"] and merged["commit"] == "abc"
    assert merged["when"] == two["when"] and merged["load_before"] == one["load_before"]
    with pytest.raises(ValueError, match="different commits"):
        bench.combine([one, report(commit="def")], ["a", "b"])
    with pytest.raises(ValueError, match="different commits"):
        bench.combine([one, report(clean=False)], ["a", "b"])
    with pytest.raises(ValueError, match="format"):
        bench.combine([one, {**two, "format": 1}], ["a", "b"])


def test_a_tree_that_differs_from_its_commit_is_refused_without_allow_dirty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provenance, "commit", lambda: ("abc123", False))
    with pytest.raises(provenance.DirtyTree, match="differs from commit abc123"):
        provenance.require_clean(False)
    assert provenance.require_clean(True) == ("abc123", False)


def test_the_commit_measured_is_the_newest_that_changed_more_than_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit of results files and the README alone changes nothing measured: runs
    on either side of it are of one commit (and combine); any other change is not."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip

    def commit_all(message: str) -> str:
        git("add", "-A")
        git("commit", "-q", "-m", message)
        return git("log", "-1", "--format=%h", "--abbrev=12")

    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    git("init", "-q")
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    code = commit_all("code")
    (tmp_path / "bench" / "results" / "bench-1.json").write_text("{}")
    (tmp_path / "README.md").write_text("table\n")
    assert provenance.commit() == (code, True)  # what the scripts write is aside
    commit_all("results")
    assert provenance.commit() == (code, True)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test_x.py").write_text("def test_x(): pass\n")
    assert provenance.commit() == (code, True)  # a test changes nothing measured
    commit_all("a test")
    assert provenance.commit() == (code, True)
    (tmp_path / "test" / "localcluster.py").write_text("CLUSTER = 1\n")  # the bench imports it
    assert provenance.commit() == (code, False)
    (tmp_path / "test" / "localcluster.py").unlink()
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.commit() == (code, False)
    more = commit_all("more code")
    assert more != code and provenance.commit() == (more, True)


def test_the_plan_has_every_readme_case_and_can_be_narrowed() -> None:
    plan = {(n, j): w for n, j, w in bench.choose(None, None, None)}
    assert plan[(200, 50)] == {"byok8s": 3, "plain": 1, "bare": 3}
    assert plan[(1000, 50)] == {"byok8s": 1, "bare": 1}
    assert bench.choose("1x1", "byok8s,bare", 1) == [(1, 1, {"byok8s": 1, "bare": 1})]
    assert bench.choose("7x2", None, None) == [(7, 2, {"byok8s": 3, "plain": 3, "bare": 3})]


def test_the_newest_results_file_is_a_combination_over_its_last_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    for name in ("bench-20261202T002239", "bench-20261202T005329-combined",
                 "bench-20261202T005329"):  # fmt: skip
        (tmp_path / f"{name}.json").write_text(json.dumps(report()))
    (tmp_path / "bench-20261203T000000.json").write_text(json.dumps({"format": 1}))
    assert bench.newest().name == "bench-20261202T005329-combined.json"


def test_results_files_are_json_of_every_run() -> None:
    path = bench.newest()
    data = json.loads(path.read_text())
    assert data["format"] == bench.FORMAT and data["runs"]
    assert all({"n", "jobs", "way", "seconds", "load"} <= set(r) for r in data["runs"])


def test_the_readme_shows_the_newest_profile() -> None:
    readme = (ROOT / "README.md").read_text()
    assert load("profile").with_newest(readme) == readme, "run bench/profile.py (it writes it)"


def audit_event(agent: str, verb: str, resource: str) -> str:
    return json.dumps({"stage": "ResponseComplete", "userAgent": f"{agent}/1.0 (linux)",
                       "verb": verb, "objectRef": {"resource": resource}}) + "\n"  # fmt: skip


def test_audit_counts_follow_a_rotation(tmp_path: Path) -> None:
    """Requests logged before a rotation (in the renamed file, after the mark) and
    after it (in the new file) are all counted; those before the mark are not."""
    measure = load("measure")
    api = object.__new__(measure.Api)
    api.audit = tmp_path / "audit.log"
    api.audit.write_text(audit_event("byok8s", "create", "jobs"))
    mark = api._position()
    with open(api.audit, "a") as log:
        log.write(audit_event("byok8s", "create", "pods") + "not json\n")
    api.audit.rename(tmp_path / "audit-2026-12-01T10-00-00.000.log")
    api.audit.write_text(audit_event("byok8s", "delete", "jobs")
                         + audit_event("kubelet", "get", "nodes"))  # fmt: skip
    assert api._audited(mark) == {
        "byok8s": {"POST pods": 1, "DELETE jobs": 1},
        "kubelet": {"GET nodes": 1},
    }
    assert api._audited(api._position()) == {}
    (tmp_path / "audit-2026-12-01T10-00-00.000.log").unlink()
    with pytest.raises(RuntimeError, match="rotated more than once"):
        api._audited(mark)


def test_sampled_shares_count_each_function_once_a_stack(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "main (byok8s:8);run (a/engine.py:3);deserialize (k/api_client.py:1) 6\n"
        "main (byok8s:8);f (x.py:1);f (x.py:1) 4\n"
    )
    total, shares = load("sample").inclusive(raw)
    assert total == 10 and shares["main (byok8s)"] == 10 and shares["f (x.py)"] == 4
    assert shares["deserialize (api_client.py)"] == 6


ab = load("ab")


def bench_ways() -> Any:
    """bench_ways.py, which imports the test helpers beside it (localcluster)."""
    sys.path.insert(0, str(ROOT / "test"))
    try:
        return load("bench_ways")
    finally:
        sys.path.remove(str(ROOT / "test"))


def ab_report(seconds: tuple[list[float], list[float]]) -> dict[str, Any]:
    runs = [
        {"revision": commit, "way": way, "rep": i + 1, "load": 1.0, "seconds": s,
         "cpu_s": s / 4, "rss_mb": 180.0, "api_own": {"POST jobs": 10, "LIST jobs": 2},
         "pod_cpu_s": s / 10}
        for way, commit, values in (("A", "a" * 40, seconds[0]), ("B", "b" * 40, seconds[1]))
        for i, s in enumerate(values)
    ]  # fmt: skip
    return {"when": "2026-12-06T22:00:00Z", "script_commit": "c" * 40, "script_clean": True,
            "machine": {"cores": 2, "cpu": "AMD EPYC"}, "load_before": [0.5, 0.4, 0.3],
            "load_after": [1.5, 1.0, 0.7], "case": {"n": 10, "jobs": 4},
            "revisions": ["a" * 40, "b" * 40], "runs": runs}  # fmt: skip


def test_ab_shows_each_revisions_median_with_min_and_max_and_the_ratio() -> None:
    text = ab.render(ab_report(([20.0, 24.0, 22.0], [11.0, 12.0, 10.0])))
    assert "A = aaaaaaaaaaaa, B = bbbbbbbbbbbb" in text and "3 runs of each revision" in text
    assert "| wall seconds | 22.00 [20.00-24.00] | 11.00 [10.00-12.00] | 0.50 |" in text
    assert "| main-process CPU s | 5.50 [5.00-6.00] | 2.75 [2.50-3.00] | 0.50 |" in text
    assert "| own API requests | 12 | 12 | - |" in text
    assert "| a job's own CPU s in its pod (median job) | 2.20 [2.00-2.40] | 1.10 [1.00-1.20] " \
        "| 0.50 |" in text  # fmt: skip
    assert "own wall s in its pod" not in text  # not measured: no row
    assert "load average before 0.5 / 0.4 / 0.3, after 1.5 / 1.0 / 0.7" in text


def test_ab_refuses_a_revision_git_does_not_know() -> None:
    with pytest.raises(SystemExit, match="no such revision: 'no-such-rev'"):
        ab.resolve("no-such-rev")


def test_the_table_says_each_target_met_or_missed_by_how_much() -> None:
    runs = [run("byok8s", 1, 1, 8.0, cpu_s=0.3, own={"POST jobs": 17}),
            run("bare", 1, 1, 2.0),
            run("byok8s", 10, 4, 20.0, cpu_s=1.2, own={"POST jobs": 50}),
            run("bare", 10, 4, 10.0), run("plain", 10, 4, 100.0)]  # fmt: skip
    text = bench.render(
        report(runs=runs)
        | {
            "staging": {
                "mb": 512,
                "reps": 3,
                "ratio": 0.86,
                "runs": {"boto3": [25], "byok8s": [22]},
            }
        }
    )
    assert "| 1 trivial job, byok8s/bare at most 5 | 4.00 | met |" in text
    assert "| 10 jobs `--jobs 4`, byok8s/bare at most 2.5 | 2.00 | met |" in text
    assert "| 10 jobs `--jobs 4`, byok8s/plain at most 0.25 | 0.20 | met |" in text
    assert "| 50 jobs `--jobs 4`, byok8s/bare at most 1.6 | - | not measured |" in text
    assert "| byok8s's own API requests per job at most 8, 10 jobs `--jobs 4` | 5.0 | met |" in text
    assert (
        "| byok8s's main-process CPU s per job at most 0.15, 10 jobs `--jobs 4` "
        "| 0.120 (0.100 per more job) | met |"
    ) in text
    assert "main-process CPU s per job at most 0.15, 1000 jobs `--jobs 50` | - | not measured |" \
        in text  # fmt: skip
    assert "| staging 512 MB in and out, byok8s/boto3 at least 0.90 | 0.86 | missed by 4% |" in text


def test_staging_alone_is_read_from_the_jobs_own_marks_in_the_run_record(tmp_path: Path) -> None:
    ways = bench_ways()
    run_dir = tmp_path / ".byok8s" / "runs" / "20261206T000000Z-abc"
    run_dir.mkdir(parents=True)
    used = {"staged_in_bytes": 512 * 2**20, "staged_out_bytes": 512 * 2**20,
            "staged_in_s": 10.0, "staged_out_s": 6.0}  # fmt: skip
    (run_dir / "jobs.jsonl").write_text(
        json.dumps({"event": "submitted"}) + "\n" + json.dumps({"event": "ended", "usage": used})
    )
    assert ways.staged_mb_s(tmp_path) == 64.0
    used |= {"wall_s": 2.5, "cpu_s": 1.5}
    (run_dir / "jobs.jsonl").write_text(
        "\n".join(
            json.dumps({"event": "ended", "usage": used | {"wall_s": w}}) for w in (2.5, 1.0, 4.0)
        )
    )
    assert ways.pod_costs(tmp_path) == {"pod_wall_s": 2.5, "pod_cpu_s": 1.5}
    text = bench.render(report(runs=[run("byok8s", 1, 1, 8.0)]) | {"staging": {
        "mb": 512, "reps": 1, "ratio": 0.8,
        "runs": {"boto3": [30], "byok8s": [24], "byok8s_staging_alone": [64]}}})  # fmt: skip
    assert "| the same job's staging alone (its own marks: the seconds its storage plugin " \
        "took) | 64 |" in text  # fmt: skip


def test_a_cluster_whose_job_image_is_not_this_checkouts_is_refused() -> None:
    """A cluster started before the code changed runs the old code in its pods."""
    import subprocess
    from types import SimpleNamespace

    ways = bench_ways()
    key = subprocess.run(["bash", str(ROOT / "test/cluster/job-image.sh"), "--key"],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert ways.job_image_tag() == f"byok8s-job:{key}" and re.fullmatch(r"[0-9a-f]{16}", key)
    ways.require_current_image(SimpleNamespace(image=f"byok8s-job:{key}", state="/s"))
    stale = SimpleNamespace(image="byok8s-job:0123456789abcdef", state="/tmp/state")
    with pytest.raises(SystemExit, match=r"byok8s-job:0123456789abcdef is not this checkout's "
                       rf"\(byok8s-job:{key}\).*bash test/cluster/up.sh /tmp/state"):  # fmt: skip
        ways.require_current_image(stale)


def test_the_job_image_tag_is_of_the_sources_of_the_tree_it_is_given(tmp_path: Path) -> None:
    """ab.py tags each revision's image by its own tree; bench.py by this checkout."""
    import os
    import shutil

    ways = bench_ways()
    env = {**os.environ, "PYTHON": sys.executable}
    for name in ("setup.cfg", "pyproject.toml", "byok8s", "workflows",
                 "snakemake_storage_plugin_byok8s_azure", "snakemake_executor_plugin_byok8s",
                 "test/cluster/job-image.sh", "test/cluster/pack-image.sh"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, tmp_path / name)
    assert ways.job_image_tag(tmp_path, env) == ways.job_image_tag(ROOT, env)
    with (tmp_path / "byok8s/__init__.py").open("a") as module:
        module.write("# another revision\n")
    assert ways.job_image_tag(tmp_path, env) != ways.job_image_tag(ROOT, env)


def test_the_readme_shows_every_ab_results_file() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == ab.with_all(readme), "run bench/ab.py --readme (it writes the README)"
    files = sorted((ROOT / "bench" / "results").glob("ab-*.json"))
    assert files and all(f"`{f.name}`" in readme for f in files)


def test_the_ab_table_gives_each_medians_and_b_over_a() -> None:
    text = ab.table([("ab-x.json", ab_report(([20.0, 24.0, 22.0], [11.0, 12.0, 10.0])))])
    assert "| aaaaaaa → bbbbbbb | 10 jobs, `--jobs 4` | 3 | 22.0 / 11.0 (0.50) | 5.50 / 2.75 " \
        "(0.50) | 2.20 / 1.10 (0.50) | `ab-x.json` |" in text  # fmt: skip
