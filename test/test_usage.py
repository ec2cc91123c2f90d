"""What a job really used (usage.py): the container's cgroup, v2 and v1, as the
files read in a pod; the children's rusage, from a real process that allocates a
known amount; the marked line a job's log ends with, and the log without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from snakemake_executor_plugin_byok8s import journal, status, usage

MB = 1 << 20


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_cgroup_v2(tmp_path: Path) -> None:
    root = write(tmp_path, {"cgroup.controllers": "cpu memory\n", "memory.peak": "734003200\n",
                            "memory.max": "2000000000\n",
                            "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\n"})  # fmt: skip
    assert usage.of_cgroup(root) == {
        "peak_bytes": 734003200, "cpu_s": 2.5, "memory_limit_bytes": 2000000000,
    }  # fmt: skip
    (root / "memory.max").write_text("max\n")
    (root / "memory.peak").unlink()  # a kernel before 5.19 has none
    assert usage.of_cgroup(root) == {"peak_bytes": None, "cpu_s": 2.5, "memory_limit_bytes": None}


@pytest.mark.parametrize("cpu_dir", ["cpuacct", "cpu,cpuacct"])
def test_cgroup_v1(tmp_path: Path, cpu_dir: str) -> None:
    root = write(tmp_path, {"memory/memory.max_usage_in_bytes": "52428800\n",
                            "memory/memory.limit_in_bytes": "9223372036854771712\n",
                            f"{cpu_dir}/cpuacct.usage": "1500000000\n"})  # fmt: skip
    assert usage.of_cgroup(root) == {"peak_bytes": 52428800, "cpu_s": 1.5,
                                     "memory_limit_bytes": None}  # fmt: skip
    (root / "memory/memory.limit_in_bytes").write_text("419430400\n")
    assert usage.of_cgroup(root)["memory_limit_bytes"] == 419430400


def test_a_child_that_allocates_200_mb_is_measured_within_20_percent(tmp_path: Path) -> None:
    """In a fresh process, as jobrun is in a pod (the children's rusage is the
    process's own: a test worker's would count every test's children)."""
    child = "b = b'x' * (200 << 20); import time; t = time.process_time()" + (
        "\nwhile time.process_time() - t < 0.3: pass"
    )
    measure = f"""
import json, subprocess, sys
from pathlib import Path
from snakemake_executor_plugin_byok8s import usage
tally = usage.Tally()
subprocess.run([sys.executable, "-c", {child!r}], check=True)
tally.staged("in", 1000, 0.25)
tally.staged("out", 24, 0.5)
print(json.dumps(tally.measured(Path({str(tmp_path)!r}))))
"""
    done = subprocess.run([sys.executable, "-c", measure], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)  # no cgroup files in tmp_path
    assert 0.8 * 200 * MB <= found["job_peak_rss_bytes"] <= 1.2 * 200 * MB, found
    assert found["job_cpu_s"] >= 0.3 and found["wall_s"] >= 0.3
    assert (found["staged_in_bytes"], found["staged_in_s"]) == (1000, 0.25)
    assert (found["staged_out_bytes"], found["staged_out_s"]) == (24, 0.5)
    assert found["peak_bytes"] is None and found["cpu_s"] is None


def test_the_usage_line_is_read_back_and_left_out_of_what_people_read() -> None:
    measured = {"wall_s": 1.5, "job_peak_rss_bytes": 5 * MB}
    log = f"Building DAG of jobs...\nline-1\n{usage.line(measured)}\n"
    assert usage.parse(log) == measured
    assert usage.without(log) == "Building DAG of jobs...\nline-1\n"
    assert status.log_tail(log) == ["Building DAG of jobs...", "line-1"]
    assert usage.parse("no line\n") is None
    assert usage.parse(usage.MARK + "{cut short\n") is None


@pytest.mark.parametrize(("quantity", "found"), [
    ("400M", 400_000_000), ("2Gi", 2 << 30), ("1500Mi", 1500 * MB), ("512", 512), (None, None),
    ("", None), ("12Q", None),
])  # fmt: skip
def test_memory_limits_in_bytes(quantity: str | None, found: int | None) -> None:
    assert journal._limit_bytes(quantity) == found


def test_the_usage_says_when_the_job_started_called_snakemake_and_ended() -> None:
    tally = usage.Tally()
    tally.mark("snakemake")
    at = tally.measured(None)["at"]
    assert set(at) == {"process", "jobrun", "snakemake", "end"}
    # This process started before jobrun would have (within the test run), 10 ms steps.
    assert at["process"] <= at["jobrun"] + 0.01 <= at["snakemake"] + 0.01 <= at["end"] + 0.01
    assert at["end"] - at["process"] < 3600
