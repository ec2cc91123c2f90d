"""`byok8s runs`: past runs, newest first, from their records in the working
directory or a bucket (also where `byok8s logs` finds them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from byok8s.errors import ExitCode


def records_of(options: dict[str, Any], secrets: list[str]) -> tuple[list, Any, str]:
    """The run records, newest first, with the bucket they came from (or None) and
    where that is, said for messages."""
    from byok8s import records, storage
    from byok8s.config import environ

    if options["bucket"]:
        bucket = storage.resolve(options["bucket"], options["s3_endpoint_url"], environ())
        secrets.extend(bucket.secret_values())
        return records.in_bucket(bucket), bucket, str(bucket.url)
    workdir = Path(options["workdir"]).resolve()
    return records.local(workdir), None, str(workdir)


def main(options: dict[str, Any], secrets: list[str]) -> int:
    from byok8s.output import print_runs

    found, _, _ = records_of(options, secrets)
    print_runs(found, options["as_json"])
    return int(ExitCode.OK)
