"""Snakemake executor plugin `byok8s-process`: `byok8s --executor local --bucket`.

Every job is a process on this machine, in a directory of its own that holds
the workflow sources and nothing else, and its files go through the bucket: a
pod without Kubernetes. Snakemake's own local executor runs jobs in the working
directory, where the main process keeps its copies of the bucket's files under
`.snakemake/storage/`, so a job sees other names for its files than it would
in a pod or without a bucket (`echo {input}` writes the copy's name) and a
command that writes `clustering/a/1.txt` instead of `{output}` writes beside
the copy. Here a job finds what it would find in a pod (README, "What a job
finds in its pod"), and a workflow that works this way works on the cluster.

The jobs share `cores` cores: a job waits until its threads are free (threads
above `cores` are capped, as Snakemake's local executor does).

A run's jobs live in `jobs_dir(run_id)`, which lists their process groups in
`pids`: when byok8s is killed outright its jobs go on (each is a session of its
own), and `--unlock` stops them from there (`stop_left`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import IO, Any

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import ExecutorSettingsBase

import snakemake_executor_plugin_byok8s as pods
from snakemake_executor_plugin_byok8s import compat, jobcommand, sources, status, usage
from snakemake_executor_plugin_byok8s.journal import LOGS, Journal, log_name

# A pod's: no shared filesystem, the sources unpacked into each job's directory.
common_settings = pods.common_settings
POLL = 0.05  # seconds between looks at the jobs' processes
STOP_GRACE = 5  # seconds a cancelled job's processes get before they are killed


@dataclasses.dataclass
class ExecutorSettings(ExecutorSettingsBase):
    cores: int = dataclasses.field(
        default=1, metadata={"help": "Cores the jobs share on this machine.", "type": int}
    )
    record_dir: str | None = dataclasses.field(
        default=None,
        metadata={"help": "Directory for the run record (jobs.jsonl, job logs).", "type": str},
    )
    run_id: str | None = dataclasses.field(
        default=None,
        metadata={"help": "byok8s's run id: names the directory of the run's jobs.", "type": str},
    )


def jobs_dir(run_id: str) -> Path:
    """Where a run's jobs have their directories (and `pids`)."""
    return Path(tempfile.gettempdir()) / f"byok8s-jobs-{run_id}"


def stop_left(root: Path) -> list[int]:
    """Stop the job processes a killed run left in `root` (SIGTERM, SIGKILL after
    STOP_GRACE seconds) and remove it; the process groups that were stopped."""
    groups = []
    pids = root / "pids"
    for line in pids.read_text().split() if pids.is_file() else ():
        pid = int(line) if line.isdigit() else 0  # 0: a line cut short by the kill
        if pid and _in(pid, root):
            groups.append(pid)
            _signal(pid, signal.SIGTERM)
    _wait_gone(groups, root)
    for pid in groups:
        if _in(pid, root):
            _signal(pid, signal.SIGKILL)
    _wait_gone(groups, root)  # SIGKILL is not instant either
    shutil.rmtree(root, ignore_errors=True)
    return groups


def _wait_gone(groups: list[int], root: Path) -> None:
    for _ in range(int(STOP_GRACE / POLL)):
        if not any(_in(pid, root) for pid in groups):
            return
        time.sleep(POLL)


def _in(pid: int, root: Path) -> bool:
    """Whether process group `pid` has a live process that is a job of `root` (where
    /proc tells), not a later process that got the same number. Any of them: the
    shell that leads the group may be gone while Snakemake below it is not."""
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not Path("/proc/self").exists():  # no /proc (macOS): the group is there
        return True
    for member in _members(pid):
        try:
            if Path(os.readlink(f"/proc/{member}/cwd")).is_relative_to(root):
                return True
        except OSError:
            continue
    return False


def _members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 2 and fields[0] != "Z" and fields[2] == str(group):
            found.append(int(stat.parent.name))
    return found


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # the leader, reaped once it ended
    if Path("/proc/self").exists():
        return bool(_members(process.pid))
    try:
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal(group: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, number)


@dataclasses.dataclass
class _Running:
    process: subprocess.Popen[bytes]
    directory: Path
    log: IO[bytes]
    cores: int


class Executor(RemoteExecutor):
    # The status thread starts before __post_init__: nothing to check until then.
    _ready = False

    def __post_init__(self) -> None:
        settings = self.workflow.executor_settings
        self._cores = max(1, int(settings.cores))
        if settings.run_id:
            self._root = jobs_dir(settings.run_id)
            self._root.mkdir(mode=0o700)
        else:
            self._root = Path(tempfile.mkdtemp(prefix="byok8s-jobs-"))
        self._archive = self._root / "sources.tar.xz"
        left = sources.archive(self.workflow, self._archive)
        if left:
            self.logger.warning(sources.not_sent(left))
        self._home = jobcommand.storage_home(self.workflow)
        self._running: dict[str, _Running] = {}
        self._waiting: list[tuple[str, JobExecutorInterface]] = []  # until cores are free
        self._guard = threading.Lock()  # submission and status run in two threads
        self.journal = Journal(settings.record_dir)
        self.log_dir = self._root / "logs"
        self.log_dir.mkdir()
        self._ready = True

    def get_python_executable(self) -> str:
        return sys.executable  # this machine's Python, with byok8s and Snakemake

    def run_job(self, job: JobExecutorInterface) -> None:
        name = f"job-{job.jobid}-{job.attempt}"
        info = SubmittedJobInfo(job=job, external_jobid=name)
        self.report_job_submission(info)
        self.journal.submitted(job, name)
        with self._guard:
            self._waiting.append((name, job))
            self._start_waiting()

    def _need(self, job: JobExecutorInterface) -> int:
        return min(max(1, int(job.resources.get("_cores", 1) or 1)), self._cores)

    def _start_waiting(self) -> None:
        """Start waiting jobs, in order, while their cores are free."""
        while self._waiting:
            name, job = self._waiting[0]
            used = sum(r.cores for r in self._running.values())
            if used + self._need(job) > self._cores:
                return
            self._waiting.pop(0)
            self._start(name, job)

    def _start(self, name: str, job: JobExecutorInterface) -> None:
        directory = self._root / name
        directory.mkdir()
        with tarfile.open(self._archive) as archive:
            archive.extractall(directory, filter="data")
        command = jobcommand.through_jobrun(
            jobcommand.without_workdir(self.format_job_exec(job), self.workflow),
            self._home,
            storage=compat.storage_in_use(self.workflow),
        )
        self.logger.debug(f"{name} in {directory}: {command}")
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed at the end
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: cancelled as one
            # Storage settings, as a pod's Secret; and no cgroup of its own to measure.
            env={**os.environ, **self.envvars(), usage.NOT_CONTAINED: "1"},
        )
        with open(self._root / "pids", "a") as pids:  # for --unlock after a kill -9
            pids.write(f"{process.pid}\n")
        self._running[name] = _Running(process, directory, log, self._need(job))

    async def sleep(self) -> None:
        """Until a job's process ends (or a second passes)."""
        for _ in range(int(1 / POLL)):
            await asyncio.sleep(POLL)
            if self._ready and any(r.process.poll() is not None for r in self._running.values()):
                return

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not self._ready:
            for j in active_jobs:
                yield j
            return
        for j in active_jobs:
            running = self._running.get(j.external_jobid)
            code = running.process.poll() if running is not None else None
            if code is None:
                yield j
                continue
            assert running is not None
            with self._guard:
                del self._running[j.external_jobid]
                self._start_waiting()
            running.log.close()
            text = (self.log_dir / f"{j.external_jobid}.log").read_text(errors="replace")
            shutil.rmtree(running.directory, ignore_errors=True)
            if code == 0:
                self.journal.finished(j, status.Outcome("succeeded"), None, text)
                self.report_job_success(j)
            else:
                reason = f"its process ended with exit code {code}"
                self.journal.finished(j, status.Outcome("failed", reason), None, text)
                self.report_job_error(j, msg=self._failure(j, reason, text))

    def _failure(self, j: SubmittedJobInfo, reason: str, text: str) -> str:
        """What the user reads, as for a pod: why, then the last lines of its log
        and where the whole log is (the run record, or Snakemake's log directory)."""
        kept = Path(".snakemake") / "log" / f"byok8s-{j.external_jobid}.log"
        if self.journal.root is not None:
            job = j.job
            kept = self.journal.root / LOGS / log_name(job.jobid, job.name, job.attempt)
        else:
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(text)
        return status.failure_message(
            reason, status.log_tail(text), str(kept.resolve()), True, log="job's log"
        )

    def print_job_error(self, job_info: SubmittedJobInfo, msg: Any = None, **kwargs: Any) -> None:
        if job_info.job.is_group() and msg:
            status.log_group_error(job_info.job, msg, place="process", **kwargs)
        else:
            super().print_job_error(job_info, msg=msg, **kwargs)

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        with self._guard:
            self._waiting.clear()
            stopping = list(self._running.values())
            self._running.clear()
        for running in stopping:
            _stop(running.process)
            running.log.close()

    def shutdown(self) -> None:
        super().shutdown()
        shutil.rmtree(self._root, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the job's process group, SIGKILL after STOP_GRACE seconds to what
    is left of it: the shell that leads it may end at once while Snakemake below it
    does not (seen: a job's Snakemake stuck after SIGTERM, left running for ever)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_GRACE
    while _group_alive(process) and time.monotonic() < deadline:
        time.sleep(POLL)
    if _group_alive(process):
        _signal(process.pid, signal.SIGKILL)
    process.wait()
