"""`byok8s report` and the report.html every run writes, without a cluster: a local
run's report opened in real headless Chromium; a pod run's report built from a
record with measured usage (the right-sizing hint, a failure and an infrastructure
retry on the timeline); old and partial records; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import assert_report_looks_right
from helpers import assert_one_line_error, invoke, run_cli

from byok8s import records, report
from byok8s.errors import ExitCode

MB = 1_000_000
T = "2026-12-01T10:00:{:02d}+00:00"


def attempt(rule_start: int, state: str = "succeeded", **extra: object) -> dict:
    s = rule_start
    return {"k8s_job": f"snakejob-{s}", "attempt": 1, "state": state, "pod": f"pod-{s}",
            "node": "node-1", "submitted": T.format(s), "scheduled": T.format(s + 1),
            "started": T.format(s + 2), "finished": T.format(s + 8), "ended": T.format(s + 9),
            "requests": {"cpu": 1.0, "memory_bytes": 4000 * MB},
            "usage": {"wall_s": 6.0, "cpu_s": 1.5, "job_cpu_s": 0.2, "peak_bytes": 150 * MB,
                      "job_peak_rss_bytes": 50 * MB, "memory_limit_bytes": 4000 * MB,
                      "staged_in_bytes": 10, "staged_in_s": 1.0, "staged_out_bytes": 20,
                      "staged_out_s": 1.0},
            **extra}  # fmt: skip


def pod_record(state: str = "failed") -> dict:
    evicted = "was deleted (or evicted, or preempted) before its job finished"
    return {
        "format": records.FORMAT, "run": "20261201T100000Z-abcdef", "state": state,
        "started": T.format(0), "ended": T.format(40), "seconds": 40.0,
        "options": {"executor": "kubernetes", "namespace": "ns", "bucket": "s3://b/p",
                    "cluster": "context aks-genomics (cluster aks-genomics)"},
        "versions": {"byok8s": "0.1.0", "snakemake": "9.27.1"}, "image": "job:1",
        "jobs": [
            {"jobid": 1, "rule": "roomy", "state": "succeeded", "attempts": [attempt(0)]},
            {"jobid": 2, "rule": "roomy", "state": "succeeded", "attempts": [attempt(3)]},
            {"jobid": 3, "rule": "flaky", "state": "succeeded", "attempts": [
                attempt(5, "failed", reason=evicted, infra=True), attempt(20, infra=False)]},
            {"jobid": 4, "rule": "broken", "state": "failed", "attempts": [
                attempt(10, "failed", reason="exited with code 3", log="logs/4-broken-1.log")]},
        ],
    }  # fmt: skip


def test_a_pod_runs_report_has_its_bars_rules_hint_and_failure(tmp_path: Path) -> None:
    found = report.data(pod_record(), {"logs/4-broken-1.log": "step 1\nboom: no such file\n"})
    assert len(found["timeline"]) == 5
    flaky = [b for b in found["timeline"] if b["rule"] == "flaky"]
    assert [b["infra"] for b in flaky] == [True, False]
    phases = [p["phase"] for p in found["timeline"][0]["phases"]]
    assert phases == list(report.PHASES)
    roomy = next(r for r in found["rules"] if r["rule"] == "roomy")
    assert roomy["jobs"] == 2 and roomy["memory_peak"] == 150 * MB
    assert roomy["cpu_h_requested"] == round(2 * 6 / 3600, 4)
    assert "roomy: asks 4.0 GB, peak 150 MB over 2 jobs; mem_mb=300 would fit" in found["hints"]
    (failure,) = [f for f in found["failures"] if f["label"].startswith("broken")]
    assert failure["reason"] == "exited with code 3" and failure["log"][-1] == "boom: no such file"
    page = tmp_path / "report.html"
    page.write_text(report.html_page(found))
    shown = assert_report_looks_right(page, tmp_path / "pod.png")
    assert shown["bars"] == 5 and shown["failedBars"] == 2 and shown["retried"] == 1
    assert shown["rules"] == ["broken", "flaky", "roomy"]
    assert any("mem_mb=300 would fit" in h for h in shown["hints"])
    assert any("boom: no such file" in f for f in shown["failures"])
    assert not shown["partial"] and shown["width"] > 800
    assert "context aks-genomics" in page.read_text()
    assert any("pod pod-5 on node-1" in t and "waiting for a node: 1.0 s" in t
               for t in shown["titles"])  # fmt: skip


def test_a_local_run_writes_its_report_which_chromium_shows(workdir: Path, tmp_path: Path) -> None:
    result = run_cli("workflow-fanout", "params-fanout", "--cores", "2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (run,) = (workdir / records.RUNS).iterdir()
    assert f"report: {run / records.REPORT}" in result.stdout
    shown = assert_report_looks_right(run / records.REPORT, tmp_path / "local.png")
    record = json.loads((run / records.RECORD).read_text())
    ran = [j for j in record["jobs"] if j.get("ready")]
    assert shown["bars"] == len(ran) >= 1 and not shown["partial"]
    again = invoke("report", "last", "-o", str(tmp_path / "again.html"))
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"report: {tmp_path / 'again.html'}"
    assert (tmp_path / "again.html").read_text() == (run / records.REPORT).read_text()
    as_json = invoke("report", record["run"][:15], "--json")
    assert json.loads(as_json.stdout)["summary"]["run"] == record["run"]


def test_an_older_or_partial_record_gives_what_it_has(tmp_path: Path) -> None:
    old = pod_record("running")
    old["format"] = 1
    for job in old["jobs"]:
        for each in job["attempts"]:
            for key in ("usage", "requests", "scheduled"):
                each.pop(key)
    for each in old["jobs"][2]["attempts"]:
        each.pop("infra")  # a format-1 record: the retry is told from its reason
    found = report.data(old)
    assert found["partial"] and found["hints"] == []
    assert [b["infra"] for b in found["timeline"] if b["rule"] == "flaky"] == [True, False]
    # No scheduling time nor staging measured: waiting, then running.
    assert [p["phase"] for p in found["timeline"][0]["phases"]] == ["waiting for a node", "running"]
    page = tmp_path / "old.html"
    page.write_text(report.html_page(found))
    shown = assert_report_looks_right(page, tmp_path / "old.png")
    assert shown["partial"] and shown["bars"] == 5


def _saved(workdir: Path, record: dict, text: str | None = None) -> Path:
    run = workdir / records.RUNS / record["run"]
    run.mkdir(parents=True)
    (run / records.RECORD).write_text(text if text is not None else json.dumps(record))
    return run


@pytest.mark.parametrize(
    ("args", "text", "fragments"),
    [
        (["nope"], None, ["no run 'nope' in", "see 'byok8s runs'"]),
        (["last"], '{"run": "20261201T10', ["is not JSON", "cut short or changed"]),
        (["last"], "[1, 2]", ["is not a record"]),
        (["last"], json.dumps({**pod_record(), "format": 99}),
         ["has format 99, newer than this byok8s reads", "upgrade byok8s"]),
        (["last", "-o", "missing/dir/r.html"], None, ["directory", "does not exist"]),
        (["last", "-o", "."], None, ["is a directory"]),
        (["last", "-o", "/proc/r.html"], None, ["cannot write the report to /proc/r.html"]),
    ],
)  # fmt: skip
def test_bad_report_input_is_one_line_and_writes_nothing(
    workdir: Path, args: list, text: str | None, fragments: list
) -> None:
    run = _saved(workdir, pod_record(), text)
    before = sorted(p.name for p in workdir.iterdir())
    result = invoke("report", *args)
    assert_one_line_error(result, ExitCode.CONFIG, *fragments)
    assert sorted(p.name for p in workdir.iterdir()) == before
    assert sorted(p.name for p in run.iterdir()) == [records.RECORD]


def test_no_records_here_or_in_a_bucket(workdir: Path, s3: dict) -> None:
    assert_one_line_error(invoke("report", "last"), ExitCode.CONFIG, "no run records in")
    url = f"s3://{s3['bucket']}/empty"
    result = invoke("report", "last", "--bucket", url, "--s3-endpoint-url", s3["endpoint"])
    assert_one_line_error(result, ExitCode.CONFIG, f"no run records in {url}")


def test_a_report_from_the_bucket(workdir: Path, s3: dict, tmp_path: Path) -> None:
    record = pod_record()
    key = f"p/{records.RUNS}/{record['run']}"
    client = s3["client"]
    client.put_object(Bucket=s3["bucket"], Key=f"{key}/{records.RECORD}", Body=json.dumps(record))
    client.put_object(Bucket=s3["bucket"], Key=f"{key}/logs/4-broken-1.log", Body=b"boom\n")
    out = tmp_path / "b.html"
    result = invoke("report", "last", "--bucket", f"s3://{s3['bucket']}/p",
                    "--s3-endpoint-url", s3["endpoint"], "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "boom" in out.read_text() and not (workdir / records.RUNS).exists()


ALLOCATES = """
rule all:
    input: "big.txt"
rule big:
    output: "big.txt"
    resources: mem_mb=4000
    shell: "python3 -c 'b = b\\"x\\" * (200 << 20)'; echo big > {output}"
"""
MIB = 1 << 20


def _measured(workdir: Path) -> dict:
    record = json.loads(next((workdir / records.RUNS).glob(f"*/{records.RECORD}")).read_text())
    (job,) = [j for j in record["jobs"] if j["rule"] == "big"]
    return dict(job.get("usage") or job["attempts"][0]["usage"])


def test_a_local_job_that_allocates_200_mb_is_measured_within_20_percent(workdir: Path) -> None:
    """On this machine (Snakemake's local executor, in byok8s's process): the job's
    command is waited for with its rusage; the report shows the rule's peak."""
    (workdir / "Snakefile").write_text(ALLOCATES)
    (workdir / "wf.json").write_text(json.dumps({"snakefile": "Snakefile"}))
    (workdir / "params.json").write_text("{}")
    result = run_cli("wf.json", "params.json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    used = _measured(workdir)
    assert 0.8 * 200 * MIB <= used["job_peak_rss_bytes"] <= 1.2 * 200 * MIB, used
    assert used["job_cpu_s"] > 0
    shown = invoke("report", "last", "--json", "--workdir", str(workdir))
    (big,) = json.loads(shown.stdout)["rules"]
    assert big["memory_peak"] == used["job_peak_rss_bytes"]


def test_a_job_run_as_a_process_with_a_bucket_is_measured_too(workdir: Path, s3: dict) -> None:
    """`--executor local --bucket`: the job's own process (jobrun) measures its
    commands and its staging; it has no container, so no cgroup figures."""
    (workdir / "Snakefile").write_text(ALLOCATES)
    (workdir / "wf.json").write_text(json.dumps({"snakefile": "Snakefile"}))
    (workdir / "params.json").write_text("{}")
    result = run_cli("wf.json", "params.json", "--executor", "local", "--bucket",
                     f"s3://{s3['bucket']}/proc", "--s3-endpoint-url", s3["endpoint"],
                     cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    used = _measured(workdir)
    assert 0.8 * 200 * MIB <= used["job_peak_rss_bytes"] <= 1.2 * 200 * MIB, used
    assert used["peak_bytes"] is None and used["cpu_s"] is None
    assert used["staged_out_bytes"] == len(b"big\n") and "byok8s-usage" not in result.stderr
