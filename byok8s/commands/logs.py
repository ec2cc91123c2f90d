"""`byok8s logs RUN [JOB]`: a run's job logs, from the saved copies or the cluster
(see byok8s.logs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from byok8s.commands.runs import records_of
from byok8s.errors import ExitCode


def main(run_id: str, job: str | None, options: dict[str, Any], secrets: list[str]) -> int:
    from byok8s import logs, records

    found, bucket, where = records_of(options, secrets)
    workdir = Path(options["workdir"]).resolve()
    record = records.with_journal(records.find(found, run_id, where), workdir)
    missing = 0
    for item in logs.fetch(record, logs.select(record, job), workdir, bucket):
        print(f"==> {item.header} ({item.origin}) <==")
        if item.text is None:
            missing += not item.ran_here
        else:
            print(item.text.rstrip("\n"))
    sys.stdout.flush()
    if missing:
        print(f"byok8s: {missing} log{'s' * (missing > 1)} not found (see above)", file=sys.stderr)
        return int(ExitCode.WORKFLOW_FAILED)
    return int(ExitCode.OK)
