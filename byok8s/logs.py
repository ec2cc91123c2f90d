"""`byok8s logs RUN [JOB]`: a job's pod log, from the run's saved copy (below the
working directory or in the bucket) or, while the pod is still there, from the
cluster."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byok8s import records
from byok8s.errors import ConfigError, NotFound, StorageError
from byok8s.kube import job_log
from byok8s.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    header: str  # names the rule, job, attempt and pod
    text: str | None  # None: no copy anywhere
    origin: str  # where the text came from, or why there is none
    ran_here: bool = False  # a local job: it has no pod log


def select(record: Mapping[str, Any], job: str | None) -> list[Mapping[str, Any]]:
    """Jobs by id or rule name; without one, the failed jobs, else all of them."""
    jobs = list(record.get("jobs") or [])
    if job is None:
        failed = [j for j in jobs if j.get("state") == "failed"]
        return failed or jobs
    chosen = [j for j in jobs if str(j.get("jobid")) == job or j.get("rule") == job]
    if not chosen:
        known = ", ".join(sorted({str(j.get("rule")) for j in jobs})) or "none"
        raise ConfigError(
            f"run {record.get('run')} has no job {job!r}; give a job id or a rule name "
            f"(rules: {known})"
        )
    return chosen


def fetch(
    record: Mapping[str, Any], jobs: list[Mapping[str, Any]], workdir: Path, storage: Storage | None
) -> Iterator[Found]:
    run = str(record.get("run"))
    local_dir = workdir / records.RUNS / run
    namespace = (record.get("options") or {}).get("namespace")
    for job in jobs:
        attempts = job.get("attempts") or []
        label = f"rule {job.get('rule')} [job {job.get('jobid')}]"
        if not attempts:
            yield Found(label, None, "it ran on this machine: see the Snakemake log "
                        f"{record.get('snakemake_log')}", ran_here=True)  # fmt: skip
        for attempt in attempts:
            pod = f", pod {attempt['pod']}" if attempt.get("pod") else ""  # none: a local process
            header = f"{label} attempt {attempt.get('attempt', 1)}{pod}"
            yield _one(header, attempt, local_dir, run, storage, namespace)
        # A failed job's own log: files (its command's errors), as the record kept them.
        for name, tail in (job.get("log_files") or {}).items():
            text = "\n".join(tail) if tail else "(empty)"
            yield Found(f"{label} log file {name}", text, "the run record: its last lines")
        for hint in job.get("hints") or ():
            yield Found(f"{label} hint", hint, "the run record")


def _one(
    header: str,
    attempt: Mapping[str, Any],
    local_dir: Path,
    run: str,
    storage: Storage | None,
    namespace: str | None,
) -> Found:
    saved = attempt.get("log")
    if saved and (local_dir / saved).is_file():
        return Found(
            header, (local_dir / saved).read_text(errors="replace"), str(local_dir / saved)
        )
    unread = "no saved copy"
    if saved and storage is not None:
        try:
            text = storage.get(f"{records.RUNS}/{run}/{saved}").decode(errors="replace")
            return Found(header, text, storage.url.url(f"{records.RUNS}/{run}/{saved}"))
        except NotFound as exc:
            log.debug("no saved copy in the bucket: %s", exc)
        except StorageError as exc:
            unread = f"the saved copy could not be read ({exc})"
    if namespace and attempt.get("k8s_job"):
        live = job_log(namespace, str(attempt["k8s_job"]))
        if live is not None:
            return Found(header, live, f"the cluster (namespace {namespace})")
    return Found(header, None, f"{unread}, and the pod is gone from the cluster")
