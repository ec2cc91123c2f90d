"""`byok8s report RUN`: a run's report (byok8s.report) as one HTML file, or its data
as JSON, from the record in the working directory or a bucket. Every run also
writes its own, `report.html` beside its `record.json`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from byok8s.errors import ConfigError, ExitCode, NotFound


def main(run_id: str, options: dict[str, Any], secrets: list[str]) -> int:
    from byok8s import report, storage
    from byok8s.config import environ

    out = _output(options["output"]) if options["output"] and not options["as_json"] else None
    workdir = Path(options["workdir"]).resolve()
    bucket, where = None, str(workdir)
    if options["bucket"]:
        bucket = storage.resolve(options["bucket"], options["s3_endpoint_url"], environ())
        secrets.extend(bucket.secret_values())
        where = str(bucket.url)
    record, logs = _load(run_id, workdir, bucket, where)
    found = report.data(record, logs)
    if options["as_json"]:
        print(json.dumps(found, indent=1, default=str))
        return int(ExitCode.OK)
    path = out or Path(f"report-{record.get('run')}.html").resolve()
    try:
        path.write_text(report.html_page(found))
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path} ({exc.strerror}); give a path "
                          "you may write to with -o") from None  # fmt: skip
    print(f"report: {path}" + (" (partial: the run is still going on)" if found["partial"] else ""))
    return int(ExitCode.OK)


def _output(given: str) -> Path:
    """-o FILE, checked before anything is read: its directory exists and is writable."""
    path = Path(given).resolve()
    if path.is_dir():
        raise ConfigError(f"-o {given}: is a directory; give a file name, e.g. {given}/report.html")
    if not path.parent.is_dir():
        raise ConfigError(f"-o {given}: directory {path.parent} does not exist; create it or "
                          "give another path")  # fmt: skip
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"-o {given}: cannot write there; give a path you may write to")
    return path


def _load(run: str, workdir: Path, bucket: Any, where: str) -> tuple[Mapping[str, Any], dict]:
    """The run's record, read strictly (a damaged one is said, not skipped), and the
    saved logs of its failed attempts."""
    from byok8s import records

    if bucket is not None:
        keys = [k for k in bucket.list(f"{records.RUNS}/") if k.endswith(f"/{records.RECORD}")]
        ids = sorted((k.split("/")[-2] for k in keys), reverse=True)
    else:
        base = workdir / records.RUNS
        ids = sorted((p.name for p in base.iterdir() if (p / records.RECORD).is_file())
                     if base.is_dir() else (), reverse=True)  # fmt: skip
    if not ids:
        raise ConfigError(f"no run records in {where}; a run writes one (see 'byok8s runs')")
    chosen = str(records.find([{"run": i} for i in ids], run, where)["run"])
    name = f"{records.RUNS}/{chosen}/{records.RECORD}"
    shown = f"{bucket.url}/{name}" if bucket is not None else str(workdir / name)
    try:
        text = bucket.get(name) if bucket is not None else (workdir / name).read_bytes()
        record = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"run record {shown} is not JSON ({exc}): cut short or changed "
                          "since the run wrote it; report the bucket's copy (--bucket) or run "
                          "the workflow again") from None  # fmt: skip
    if not isinstance(record, dict):
        raise ConfigError(f"run record {shown} is not a record (a JSON object)")
    version = record.get("format", 1)
    if not isinstance(version, int) or version > records.FORMAT:
        raise ConfigError(f"run record {shown} has format {version!r}, newer than this byok8s "
                          f"reads ({records.FORMAT}); upgrade byok8s to report it")  # fmt: skip
    if bucket is None:
        record = dict(records.with_journal(record, workdir))
    return record, _failed_logs(record, chosen, workdir, bucket)


def _failed_logs(record: Mapping[str, Any], run: str, workdir: Path, bucket: Any) -> dict:
    from byok8s import records, report

    def read(saved: str) -> str | None:
        local = workdir / records.RUNS / run / saved
        if local.is_file():
            return local.read_text(errors="replace")
        if bucket is None:
            return None
        try:
            return str(bucket.get(f"{records.RUNS}/{run}/{saved}").decode(errors="replace"))
        except NotFound:
            return None

    return report.failed_logs(record, read)
