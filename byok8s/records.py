"""Run records: what ran, with what, where and how it went, as JSON.

Every run (not a dry run) gets an id and a directory `.byok8s/runs/ID/` below the
working directory, holding `record.json`, the executor's journal of Jobs and
pods (`jobs.jsonl`) and every job's pod log (`logs/`). With a bucket the same
files are saved below its prefix, next to the outputs. `byok8s runs` lists the
records and `byok8s logs` prints the logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from byok8s.errors import ConfigError, NotFound, StorageError
from byok8s.staging import Run, staged_snakefile

if TYPE_CHECKING:
    from byok8s.config import RunConfig
    from byok8s.engine import RunResult
    from byok8s.storage import Storage

log = logging.getLogger(__name__)

RUNS = ".byok8s/runs"
RECORD = "record.json"
REPORT = "report.html"  # byok8s.report's page of the run, beside its record
JOURNAL = "jobs.jsonl"  # written by the executor plugin (snakemake_executor_plugin_byok8s.journal)
FORMAT = 2  # 2: job attempts have usage, scheduled and requests (byok8s report reads 1 and 2)
PACKAGES = (
    "byok8s",
    "snakemake",
    "snakemake-executor-plugin-kubernetes",
    "snakemake-storage-plugin-s3",
    "snakemake-storage-plugin-azure",
    "snakemake-storage-plugin-gcs",
    "kubernetes",
    "boto3",
    "azure-storage-blob",
)
HASH_LIMIT = 1 << 30  # local outputs larger than this get a size but no sha256


def new_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Record:
    """One run's record while it goes on: begun, then ended (or discarded)."""

    cfg: RunConfig
    run_id: str
    directory: Path
    started_at: float
    fixed: dict[str, Any]  # what the run was given: written at its start and its end

    @classmethod
    def begin(cls, cfg: RunConfig, run: Run) -> Record:
        run_id = str(run.id)
        directory = cfg.workdir / RUNS / run_id
        directory.mkdir(parents=True)
        record = cls(cfg, run_id, directory, time.monotonic(), _given(cfg, run))
        record._save(record._data("running", None, None), upload=False)
        return record

    def end(self, result: RunResult | None, state: str, error: str | None) -> dict[str, Any]:
        data = self._data(state, result, error)
        self._write_report(data)
        self._save(data, upload=True)
        return data

    def _write_report(self, data: dict[str, Any]) -> None:
        """`report.html` beside the record (saved with it in the bucket); never a
        reason for the run to fail."""
        from byok8s import report

        def read(saved: str) -> str | None:
            path = self.directory / saved
            return path.read_text(errors="replace") if path.is_file() else None

        try:
            logs = report.failed_logs(data, read)
            found = report.data(json.loads(json.dumps(data, default=str)), logs)
            (self.directory / REPORT).write_text(report.html_page(found))
        except Exception as exc:  # noqa: BLE001 - the run's outcome stands without it
            log.warning("could not write the run's report: %s", exc)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _data(self, state: str, result: RunResult | None, error: str | None) -> dict[str, Any]:
        ended = state != "running"
        return {
            **self.fixed,
            "state": state,
            "ended": now() if ended else None,
            "seconds": round(time.monotonic() - self.started_at, 2) if ended else None,
            "jobs": jobs(result, self.directory / JOURNAL),
            "reused": [
                {
                    "jobid": j.jobid,
                    "rule": j.rule,
                    "wildcards": dict(j.wildcards),
                    "outputs": list(j.outputs),
                }
                for j in (result.reused if result is not None else ())
            ],  # fmt: skip
            "rules": list(result.rules) if result is not None else [],
            "outputs": outputs(self.cfg, result) if result is not None and ended else [],
            "error": error,
            "snakemake_log": result.logfile if result is not None else None,
        }

    def _save(self, data: dict[str, Any], upload: bool) -> None:
        text = json.dumps(data, indent=1, default=str)
        (self.directory / RECORD).write_text(text + "\n")
        storage = self.cfg.storage
        if storage is None or not upload:
            return
        try:
            for path in sorted(self.directory.rglob("*")):
                if path.is_file():
                    relative = path.relative_to(self.directory).as_posix()
                    storage.put(f"{RUNS}/{self.run_id}/{relative}", path.read_bytes())
        except StorageError as exc:
            log.warning("could not save the run record in the bucket: %s", exc)


def _given(cfg: RunConfig, run: Run) -> dict[str, Any]:
    wf = cfg.workflow
    return {
        "format": FORMAT,
        "run": run.id,
        "started": now(),
        "workflow": {
            "config_file": str(wf.config_file),
            "config": _config(wf.config_file),
            "bundled": wf.bundled,
            "snakefile": str(staged_snakefile(cfg, run)),
            "targets": list(wf.targets),
            "params_file": str(wf.params_file),
        },
        "params": dict(wf.params),
        "options": options(cfg),
        "versions": versions(),
        "image": cfg.container_image,
    }


def _config(path: Path) -> dict[str, Any] | None:
    """The workflow config file's own content, as the run read it."""
    from byok8s import files

    try:
        return dict(files.load_mapping(path, "workflow config"))
    except Exception:  # noqa: BLE001 - changed or gone since: the record says nothing
        return None


def options(cfg: RunConfig) -> dict[str, Any]:
    """The run's options as given, without secrets (variable names, not values), and
    its executor's own settings as that executor hands them to its plugin."""
    from byok8s import backends

    backend = backends.get(cfg.executor, bucket=cfg.storage is not None)
    return {
        "executor": cfg.executor,
        "cluster": backend.cluster(cfg),
        "bucket": str(cfg.storage.url) if cfg.storage else None,
        "jobs": cfg.jobs,
        "cores": cfg.cores,
        "retries": cfg.retries,
        "keep_going": cfg.keep_going,
        "forceall": cfg.forceall,
        "envvars": list(cfg.envvars),
        "default_resources": list(cfg.default_resources),
        "workdir": str(cfg.workdir),
        **backend.record(cfg),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def jobs(result: RunResult | None, journal: Path) -> list[dict[str, Any]]:
    """The engine's jobs (rule, wildcards, state, times), each with its attempts
    as the executor saw them (Job, pod, node, container times, log)."""
    attempts: dict[int, list[dict[str, Any]]] = {}
    rules: dict[int, str] = {}
    if journal.is_file():
        merged: dict[tuple[int, int, str], dict[str, Any]] = {}
        for line in journal.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            key = (entry.get("jobid", -1), entry.get("attempt", 1), entry.get("k8s_job", ""))
            rules[key[0]] = entry.get("rule")
            merged.setdefault(key, {}).update(
                {k: v for k, v in entry.items() if k not in ("event", "jobid", "rule")}
            )
        for (jobid, _, _), entry in merged.items():  # in the order they were submitted
            for member in entry.get("members") or [jobid]:  # a group's pod: each member's
                attempts.setdefault(member, []).append(entry)
    listed: list[dict[str, Any]] = []
    for job in result.jobs.values() if result is not None else ():
        listed.append(
            {
                "jobid": job.jobid,
                "rule": job.rule,
                "wildcards": dict(job.wildcards),
                "state": job.state,
                "ready": job.ready,
                "ended": job.ended,
                "outputs": list(job.outputs),
                **({"log_files": dict(job.logs)} if job.logs else {}),
                **({"hints": list(job.hints)} if job.hints else {}),
                **({"usage": dict(job.usage)} if job.usage else {}),
                "attempts": attempts.pop(job.jobid, []),
            }
        )
    for jobid, entries in sorted(attempts.items()):  # journal only: an interrupted run
        state = entries[-1].get("state") or "running"
        listed.append({"jobid": jobid, "rule": rules.get(jobid), "state": state,
                       "attempts": entries})  # fmt: skip
    return listed


def outputs(cfg: RunConfig, result: RunResult) -> list[dict[str, Any]]:
    """Every output of the jobs that finished, with size and checksum."""
    found: list[dict[str, Any]] = []
    for job in result.jobs.values():
        if job.state != "done":
            continue
        for location in job.outputs:
            found.append({"path": location, "jobid": job.jobid, **_stat(cfg, location)})
    return found


def _stat(cfg: RunConfig, location: str) -> dict[str, Any]:
    storage = cfg.storage
    base = f"{storage.url}/" if storage is not None else None
    try:
        if storage is not None and base is not None and location.startswith(base):
            return storage.stat(location[len(base) :])
        path = Path(location)
        if path.is_file():
            return {"size": path.stat().st_size, **_sha256(path)}
    except (StorageError, OSError) as exc:
        log.debug("could not read size and checksum of %s: %s", location, exc)
    return {"size": None}


def _sha256(path: Path) -> dict[str, str]:
    if path.stat().st_size > HASH_LIMIT:
        return {}
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest()}


# --- reading ------------------------------------------------------------------


def with_journal(record: Mapping[str, Any], workdir: Path) -> Mapping[str, Any]:
    """A record still running lists no jobs yet: take them from the executor's
    journal below the working directory, as far as it goes."""
    if record.get("state") != "running" or record.get("jobs"):
        return record
    journal = workdir / RUNS / str(record.get("run")) / JOURNAL
    return {**record, "jobs": jobs(None, journal)}


def local(workdir: Path) -> list[dict[str, Any]]:
    """The records below a working directory, newest first."""
    found = []
    for path in (workdir / RUNS).glob(f"*/{RECORD}"):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("skipped the unreadable run record %s: %s", path, exc)
    return sorted(found, key=lambda r: r.get("run", ""), reverse=True)


def in_bucket(storage: Storage) -> list[dict[str, Any]]:
    found = []
    for key in storage.list(f"{RUNS}/"):
        if key.endswith(f"/{RECORD}"):
            try:
                found.append(json.loads(storage.get(key)))
            except NotFound:  # removed since the listing
                continue
            except ValueError as exc:
                log.warning("skipped the unreadable run record %s: %s", key, exc)
    return sorted(found, key=lambda r: r.get("run", ""), reverse=True)


def newest_in_bucket(storage: Storage) -> dict[str, Any] | None:
    """The newest run record saved in the bucket prefix (a finished run's), if any."""
    keys = [k for k in storage.list(f"{RUNS}/") if k.endswith(f"/{RECORD}")]
    for key in sorted(keys, reverse=True):  # run ids sort by their start
        try:
            return dict(json.loads(storage.get(key)))
        except (NotFound, ValueError):
            continue
    return None


def check_prefix(storage: Storage, rules: list[str]) -> None:
    """Refuse to run a workflow in a bucket prefix whose newest run was another
    workflow (no rule in common): its outputs would be taken for this one's."""
    newest = newest_in_bucket(storage)
    if newest is None or not newest.get("rules") or set(newest["rules"]) & set(rules):
        return
    wf = newest.get("workflow") or {}
    name = wf.get("bundled") or Path(str(wf.get("config_file", "?"))).name
    raise ConfigError(
        f"bucket prefix {storage.url} holds the outputs of another workflow: run "
        f"{newest.get('run')} of {name!r} (rules {', '.join(newest['rules'][:5])}), which "
        "has no rule in common with this one; give each workflow a prefix of its own, "
        f"e.g. --bucket {storage.url.url(name.removesuffix('.json').removesuffix('.yaml'))}"
    )


def find(records: Iterable[Mapping[str, Any]], run: str, where: str) -> Mapping[str, Any]:
    """The record whose id is `run`, starts with it, or the newest for 'last'."""
    records = list(records)
    if run == "last" and records:
        return records[0]
    matches = [r for r in records if str(r.get("run", "")).startswith(run)]
    exact = [r for r in matches if r.get("run") == run]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise ConfigError(
            f"no run {run!r} in {where}; see 'byok8s runs' for the run ids (or use 'last')"
        )
    ids = ", ".join(str(r.get("run")) for r in matches[:5])
    raise ConfigError(f"run {run!r} is ambiguous in {where} ({ids}); give more of the id")
