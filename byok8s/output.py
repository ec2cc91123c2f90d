"""Everything byok8s shows: logs and progress on stderr, results on stdout.

Secret values (keys, SAS tokens) are redacted from every line shown here.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from byok8s.engine import JobRecord, Listener, RunResult
from byok8s.records import REPORT

if TYPE_CHECKING:
    from byok8s.config import RunConfig

REDACTED = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        return True


def setup_logging(verbose: bool, redact: Redactor | None = None) -> None:
    """byok8s's own log records go to stderr (DEBUG with --verbose)."""
    root = logging.getLogger("byok8s")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("byok8s: %(message)s"))
    if redact is not None:
        handler.addFilter(_RedactingFilter(redact))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


class RuleCounts:
    """Per rule: jobs planned, handed to the executor (running), done and failed."""

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, int]] = {}

    def plan(self, by_rule: Mapping[str, int]) -> None:
        for rule, n in by_rule.items():
            self._of(rule)["planned"] = n

    def _of(self, rule: str) -> dict[str, int]:
        return self.rules.setdefault(rule, {"planned": 0, "started": 0, "done": 0, "failed": 0})

    def count(self, rule: str, what: str) -> None:
        row = self._of(rule)
        row[what] += 1
        row["started"] = max(row["started"], row["done"] + row["failed"])  # ended unseen
        row["planned"] = max(row["planned"], row["started"])  # a checkpoint added jobs

    def rows(self) -> list[tuple[str, int, int, int, int]]:
        """(rule, done, running, pending, failed), in the order rules were planned."""
        found = []
        for rule, row in list(self.rules.items()):  # the live table reads it from its thread
            running = max(row["started"] - row["done"] - row["failed"], 0)
            pending = max(row["planned"] - row["started"], 0)
            found.append((rule, row["done"], running, pending, row["failed"]))
        return found

    def line(self) -> str:
        parts = []
        for rule, done, running, pending, failed in self.rows():
            text = f"{rule} {done}/{done + running + pending + failed} done"
            for n, word in ((running, "running"), (pending, "pending"), (failed, "failed")):
                if n:
                    text += f", {n} {word}"
            parts.append(text)
        return "progress  " + " | ".join(parts)


class ConsoleListener(Listener):
    """Shows a run as it goes: on a terminal, a live table of each rule's jobs done,
    running, pending and failed; otherwise one line a job, and the same counts in
    one line at most every PROGRESS_EVERY seconds."""

    PROGRESS_EVERY = 10.0  # seconds

    def __init__(
        self, redact: Redactor, verbose: bool, plan: list[str] | None = None, console: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.redact, self.verbose = redact, verbose
        self.plan = plan or []
        self.console = console or stderr_console()
        self.live: Any = None
        self.counts = RuleCounts()
        self.total = 0
        self.finished = 0
        self.clock = clock
        self.began = self.said = clock()

    def __enter__(self) -> ConsoleListener:
        if self.console.is_terminal and not self.verbose:
            from rich.live import Live

            self.live = Live(get_renderable=self._table, console=self.console, transient=True,
                             refresh_per_second=2, redirect_stderr=False)  # fmt: skip
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()

    def _table(self) -> Any:
        from rich.table import Table

        elapsed = int(self.clock() - self.began)
        title = f"jobs {self.finished}/{self.total}, {elapsed // 60}:{elapsed % 60:02d}"
        table = Table(title=title, title_justify="left", box=None, padding=(0, 1))
        for name in ("rule", "done", "running", "pending", "failed"):
            table.add_column(name, justify="left" if name == "rule" else "right")
        for rule, *numbers in self.counts.rows():
            table.add_row(rule, *(str(n) for n in numbers))
        return table

    def _changed(self) -> None:
        if self.live is not None:
            self.live.refresh()
        elif self.counts.rules and self.clock() - self.said >= self.PROGRESS_EVERY:
            self.said = self.clock()
            self._print(self.counts.line())

    def _print(self, text: str, style: str = "") -> None:
        self.console.print(self.redact(text), style=style or None, markup=False)

    def planned(self, total: int, by_rule: Mapping[str, int] | None = None) -> None:
        # The plan is shown once Snakemake accepted the workflow and targets.
        for line in self.plan:
            self._print(line)
        self.plan = []
        self.total = total
        self.counts.plan(by_rule or {})
        if self.live is None and total:
            self._print(f"{total} job{'s' if total != 1 else ''} to run")
        self._changed()

    def grown(self, total: int) -> None:
        self.total = total
        self._changed()

    def job_started(self, job: JobRecord) -> None:
        self.counts.count(job.rule, "started")
        if self.verbose:
            self._print(f"started  {job.label()}")
        self._changed()

    def job_finished(self, job: JobRecord) -> None:
        self.finished += 1
        self.counts.count(job.rule, "done")
        self._print(f"done     {job.label()}  ({self.finished}/{self.total})", "green")
        self._changed()

    def job_failed(self, job: JobRecord, message: str) -> None:
        self.counts.count(job.rule, "failed")
        self._print(f"FAILED   {job.label()}", "bold red")
        if message:
            self._print(message.strip())
        self._changed()

    def message(self, level: int, text: str) -> None:
        if level == logging.DEBUG and not self.verbose:
            return
        style = "red" if level >= logging.ERROR else "yellow" if level >= logging.WARNING else ""
        self._print(text, style)


def plan_lines(cfg: RunConfig, executor_text: str) -> list[str]:
    """One short block for stderr: what will run where."""
    wf = cfg.workflow
    snakefile = f"bundled workflow {wf.bundled!r}" if wf.bundled else str(wf.snakefile)
    lines = [
        f"workflow  {wf.config_file.name} ({snakefile})",
        f"params    {wf.params_file}",
        f"targets   {', '.join(wf.targets) or '(first rule)'}",
        f"jobs on   {executor_text}",
        f"storage   {cfg.storage.describe() if cfg.storage else f'local files in {cfg.workdir}'}",
    ]
    if cfg.dry_run:
        lines.append("dry run   nothing will be executed")
    return lines


def summary_lines(result: RunResult, cfg: RunConfig, record: Path | None = None) -> list[str]:
    verb = "would run" if cfg.dry_run else "ran"
    status = "FAILED" if result.error else ("dry run" if cfg.dry_run else "OK")
    lines = [f"byok8s: {status} in {result.seconds:.1f} s"]
    if result.planned == 0 and not result.error:
        reused = f" ({len(result.reused)} jobs reused)" if result.reused else ""
        lines.append(f"jobs: none needed, outputs are up to date{reused}")
    elif cfg.dry_run:
        lines.append(f"jobs: {verb} {result.planned}")
    else:
        unfinished = f"{len(result.unfinished)} unfinished, " if result.unfinished else ""
        reused = f", {len(result.reused)} up to date (reused)" if result.reused else ""
        lines.append(
            f"jobs: {result.done} run, {len(result.failed)} failed, {unfinished}"
            f"{result.skipped} skipped (of {result.planned}){reused}"
        )
    for job in result.failed:
        lines.append(f"failed: {job.label()}")
    for job in result.unfinished:
        lines.append(f"unfinished: {job.label()}")
    if result.outputs and not result.error and not cfg.dry_run:
        lines.append("outputs:")
        lines += [f"  {o}" for o in result.outputs]
    if result.logfile:
        lines.append(f"log: {result.logfile}")
    if record is not None:
        lines.append(f"record: {record}")
        if (record / REPORT).is_file():
            lines.append(f"report: {record / REPORT}")
    return lines


def print_summary(
    result: RunResult, cfg: RunConfig, redact: Redactor, record: Path | None = None
) -> None:
    for line in summary_lines(result, cfg, record):
        print(redact(line), file=sys.stdout)
    sys.stdout.flush()


def print_error(message: str, redact: Redactor, details: str = "") -> None:
    print(f"byok8s: error: {redact(message)}", file=sys.stderr)
    if details:
        print(redact(details.rstrip()), file=sys.stderr)
    sys.stderr.flush()


def print_checks(checks: Iterable[Any], as_json: bool) -> None:
    """`byok8s doctor`'s table (or JSON) on stdout."""
    import json
    from dataclasses import asdict

    checks = list(checks)
    if as_json:
        rows = [{**asdict(c), "exit_code": int(c.exit_code)} for c in checks]
        print(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table("check", "result", "detail", "fix", box=None, pad_edge=False)
    styles = {"ok": "green", "warn": "yellow", "FAIL": "bold red", "skip": "dim"}
    for c in checks:
        table.add_row(c.name, c.status, c.detail, c.fix, style=styles.get(c.status))
    console.print(table)
    failed = sum(c.status == "FAIL" for c in checks)
    console.print(f"{failed} check{'s' * (failed != 1)} failed" if failed else "all checks passed")


def print_runs(found: Iterable[Any], as_json: bool) -> None:
    """`byok8s runs`: one row a run, newest first (or the records as JSON)."""
    import json

    found = list(found)
    if as_json:
        print(json.dumps(found, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    if not found:
        console.print("no runs recorded here")
        return
    table = Table("run", "state", "started", "seconds", "workflow", "jobs", "where", box=None,
                  pad_edge=False)  # fmt: skip
    styles = {"failed": "bold red", "interrupted": "yellow", "running": "cyan"}
    for r in found:
        jobs = r.get("jobs") or []
        done = sum(j.get("state") == "done" for j in jobs)
        failed = sum(j.get("state") == "failed" for j in jobs)
        wf = r.get("workflow") or {}
        opts = r.get("options") or {}
        where = opts.get("executor", "?") + (f" {opts['bucket']}" if opts.get("bucket") else "")
        table.add_row(
            str(r.get("run")),
            str(r.get("state")),
            str(r.get("started")),
            "" if r.get("seconds") is None else f"{r['seconds']:.1f}",
            wf.get("bundled") or Path(str(wf.get("config_file", "?"))).name,
            f"{done} done" + (f", {failed} failed" if failed else ""),
            where,
            style=styles.get(str(r.get("state"))),
        )
    console.print(table)
