"""What the user sees: progress, job lines, summary, redaction."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from byok8s import config, output
from byok8s.engine import JobRecord, RunResult
from byok8s.errors import WorkflowFailed


def cfg(tmp_path: Path, **changes: object) -> config.RunConfig:
    wf = config.Workflow(
        snakefile=tmp_path / "Snakefile",
        targets=("all",),
        params={},
        config_file=tmp_path / "wf.json",
        params_file=tmp_path / "p.json",
    )
    base = dict(
        workflow=wf,
        executor="local",
        workdir=tmp_path,
        jobs=1,
        cores=1,
        storage=None,
        container_image=None,
        envvars=(),
    )
    base.update(changes)
    return config.RunConfig(**base)  # type: ignore[arg-type]


def test_redactor_hides_every_secret() -> None:
    redact = output.Redactor(["sv=2024&sig=abcdEFGH", "abcdEFGH", "x"])
    assert redact("url?sv=2024&sig=abcdEFGH and abcdEFGH and x") == "url?*** and *** and x"


def test_summary_counts_and_outputs(tmp_path: Path) -> None:
    result = RunResult(planned=3, seconds=1.25, outputs=["s3://b/summary.tsv"], logfile="/l.log")
    result.jobs = {1: JobRecord(1, "a", {}, state="done"), 2: JobRecord(2, "b", {"s": "x"})}
    result.jobs[2].state = "failed"
    lines = output.summary_lines(result, cfg(tmp_path))
    assert lines[:3] == [
        "byok8s: OK in 1.2 s",
        "jobs: 1 run, 1 failed, 1 skipped (of 3)",
        "failed: rule b (s=x) [job 2]",
    ]
    assert "  s3://b/summary.tsv" in lines and "log: /l.log" in lines
    result.error = WorkflowFailed("x")
    failed = output.summary_lines(result, cfg(tmp_path))
    assert failed[0].startswith("byok8s: FAILED") and "outputs:" not in failed
    assert output.summary_lines(RunResult(), cfg(tmp_path))[1] == (
        "jobs: none needed, outputs are up to date"
    )
    dry = output.summary_lines(RunResult(planned=4), cfg(tmp_path, dry_run=True))
    assert dry[:2] == ["byok8s: dry run in 0.0 s", "jobs: would run 4"]


def test_a_run_that_ends_on_a_storage_error_counts_what_happened(tmp_path: Path) -> None:
    """A job started and not seen to end (the run failed checking its outputs in
    storage) is neither run nor skipped."""
    from byok8s.errors import StorageError

    result = RunResult(planned=3, error=StorageError("storage s3://b: Missing files"))
    result.jobs = {2: JobRecord(2, "split", {"sample": "a"})}
    result.mark_unfinished()
    lines = output.summary_lines(result, cfg(tmp_path))
    assert lines[1:3] == [
        "jobs: 0 run, 0 failed, 1 unfinished, 2 skipped (of 3)",
        "unfinished: rule split (sample=a) [job 2]",
    ]


def _feed(listener: output.ConsoleListener) -> None:
    with listener:
        listener.planned(2, {"qc": 1, "kmers": 1})
        job = JobRecord(7, "qc", {"sample": "s1"})
        listener.job_started(job)
        listener.job_finished(job)
        listener.job_failed(JobRecord(8, "kmers", {}), "Error in rule kmers: key=SECRETVALUE")


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=False, width=200)
    _feed(output.ConsoleListener(output.Redactor(["SECRETVALUE"]), False, ["plan line"], console))
    text = stream.getvalue()
    assert text.splitlines()[:3] == [
        "plan line",
        "2 jobs to run",
        "done     rule qc (sample=s1) [job 7]  (1/2)",
    ]
    assert "FAILED   rule kmers [job 8]" in text and "SECRETVALUE" not in text
    assert "progress" not in text  # a run shorter than PROGRESS_EVERY has no such line


def test_per_rule_progress_in_one_line_at_most_every_10_s_when_not_a_terminal() -> None:
    stream = io.StringIO()
    now = [0.0]
    listener = output.ConsoleListener(output.Redactor(), False, [], Console(
        file=stream, force_terminal=False, width=300), clock=lambda: now[0])  # fmt: skip
    with listener:
        listener.planned(5, {"align": 3, "call": 2})
        for jobid, at in ((1, 1.0), (2, 4.0), (3, 10.5), (4, 12.0)):
            now[0] = at
            listener.job_started(JobRecord(jobid, "align" if jobid < 4 else "call", {}))
        listener.job_finished(JobRecord(1, "align", {}))
        now[0] = 21.0
        listener.job_failed(JobRecord(4, "call", {}), "")
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("progress")]
    assert lines == [
        "progress  align 0/3 done, 3 running | call 0/2 done, 2 pending",
        "progress  align 1/3 done, 2 running | call 0/2 done, 1 pending, 1 failed",
    ]


def test_a_live_table_per_rule_on_a_terminal() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    listener = output.ConsoleListener(output.Redactor(), False, [], console)
    _feed(listener)
    assert listener.live is not None
    assert listener.counts.rows() == [("qc", 1, 0, 0, 0), ("kmers", 0, 0, 0, 1)]
    shown = stream.getvalue()
    for word in ("rule", "done", "running", "pending", "failed", "qc", "kmers"):
        assert word in shown


def test_snakemake_noise_is_shown_only_with_verbose() -> None:
    """Snakemake's warning about git (meaningless for staged sources) is demoted
    to debug; other warnings stay warnings."""
    import logging

    from byok8s.engine import Listener, _EventHandler

    seen: list[tuple[int, str]] = []

    class Recording(Listener):
        def message(self, level: int, text: str) -> None:
            seen.append((level, text))

    handler = _EventHandler(RunResult(), Recording(), formatter=None, cfg=None)
    noise = "Unable to retrieve additional files from git. This is not a git repository."
    for text in (noise, "Some other warning"):
        handler.emit(logging.LogRecord("snakemake", logging.WARNING, "", 0, text, None, None))
    assert seen == [(logging.DEBUG, noise), (logging.WARNING, "Some other warning")]


def test_followed_log_lines_are_shown_and_other_info_is_not() -> None:
    """--follow: the plugin's marked INFO lines are shown (the same mark on both
    sides); Snakemake's own INFO chatter is not."""
    import logging

    from byok8s.engine import FOLLOW_MARK, Listener, _EventHandler
    from snakemake_executor_plugin_byok8s import follow

    assert follow.FOLLOW_MARK == FOLLOW_MARK
    seen: list[tuple[int, str]] = []

    class Recording(Listener):
        def message(self, level: int, text: str) -> None:
            seen.append((level, text))

    handler = _EventHandler(RunResult(), Recording(), formatter=None, cfg=None)
    line = logging.LogRecord("snakemake", logging.INFO, "", 0, "rule a [job 1] | hi", None, None)
    setattr(line, FOLLOW_MARK, True)
    handler.emit(line)
    handler.emit(logging.LogRecord("snakemake", logging.INFO, "", 0, "Select jobs", None, None))
    assert seen == [(logging.INFO, "rule a [job 1] | hi")]


def test_follow_splits_chunks_into_lines_and_is_quiet_when_stopped() -> None:
    """Log chunks cut mid-line come out as whole lines; a stream that stop() closes
    says nothing."""
    import threading
    import time
    from types import SimpleNamespace

    from kubernetes import client as k8s

    from snakemake_executor_plugin_byok8s.follow import Follower

    release = threading.Event()

    class Stream:
        def __init__(self, chunks: list[bytes], block: bool) -> None:
            self.chunks, self.block = chunks, block

        def stream(self, size: int):  # type: ignore[no-untyped-def]
            yield from self.chunks
            if self.block:
                release.wait(5)
                raise OSError("connection closed")

        def close(self) -> None:
            release.set()

    streams = {"p1": Stream([b"line-1\nli", b"ne-2\nlast"], False), "p2": Stream([], True)}
    api = SimpleNamespace(read_namespaced_pod_log=lambda pod, *a, **k: streams[pod])
    shown: list[str] = []
    follower = Follower(api, "ns", shown.append)
    for name in streams:
        pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name=name),
            status=k8s.V1PodStatus(container_statuses=[k8s.V1ContainerStatus(
                name="snakemake", image="i", image_id="", ready=True, restart_count=0,
                state=k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()))]),
        )  # fmt: skip
        follower.pod_started(pod, f"rule a [job {name}]")
        follower.pod_started(pod, f"rule a [job {name}]")  # followed once
    deadline = time.monotonic() + 5
    while len(shown) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    follower.stop()
    time.sleep(0.2)
    assert shown == ["rule a [job p1] | line-1", "rule a [job p1] | line-2",
                     "rule a [job p1] | last"]  # fmt: skip


LIVE = """
rule all:
    input: expand("a{i}.txt", i=range(3)), "b.txt"
rule a:
    output: "a{i}.txt"
    shell: "sleep 1; echo {wildcards.i} > {output}"
rule b:
    input: "a0.txt"
    output: "b.txt"
    shell: "sleep 1; cat {input} > {output}"
"""


def test_the_live_table_in_a_real_terminal(workdir: Path) -> None:
    """A local run in a pseudo-terminal: the live per-rule table is drawn while the
    run goes on, then cleared for the summary, which keeps its form."""
    import json
    import os
    import pty
    import select
    import subprocess
    import sys

    (workdir / "Snakefile").write_text(LIVE)
    (workdir / "wf.json").write_text(json.dumps({"snakefile": "Snakefile", "targets": ["all"]}))
    (workdir / "params.json").write_text("{}")
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen([sys.executable, "-m", "byok8s", "wf.json", "params.json",
                             "--cores", "2"], cwd=workdir, env=env, stdin=follower,
                            stdout=follower, stderr=follower)  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        assert ready, "no output for 120 s"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the run ended and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    header = [line for line in text.splitlines() if "rule" in line and "pending" in line]
    assert header and all(w in header[0] for w in ("done", "running", "failed")), text
    assert any(line.split()[:1] == ["a"] for line in text.splitlines()), text
    assert "byok8s: OK in" in text and "jobs: 5 run, 0 failed, 0 skipped (of 5)" in text
