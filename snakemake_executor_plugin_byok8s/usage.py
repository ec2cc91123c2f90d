"""What a job really used, measured where it ran and said in one marked line at the
end of its log, which the executor reads back into the run record:

- the job's commands (the processes Snakemake started and waited for): their peak
  resident memory and CPU seconds, from the children's rusage;
- the job's container as a whole (Snakemake with them): its peak memory and CPU
  seconds, from its cgroup (v2, or v1's memory and cpuacct controllers), and its
  memory limit;
- the job's wall time, and the bytes staged in and out through the bucket with the
  seconds it took;
- when (Unix time) its process started, jobrun began, Snakemake was called and the
  job ended: where a job's start goes (bench/profile.py).
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

MARK = "byok8s-usage: "
NOT_CONTAINED = "BYOK8S_JOB_NOT_CONTAINED"  # set for a job run as a process on this machine
CGROUP = Path("/sys/fs/cgroup")
NO_LIMIT = 1 << 60  # cgroup v1 says "no limit" with a number near 2**63


class Tally:
    """Staging, counted as it happens (compat.measure_staging), and the job's start."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.at = {"process": process_start(), "jobrun": round(time.time(), 3)}
        self.bytes = {"in": 0, "out": 0}
        self.seconds = {"in": 0.0, "out": 0.0}

    def mark(self, name: str) -> None:
        self.at[name] = round(time.time(), 3)

    def staged(self, way: str, size: int, seconds: float) -> None:
        self.bytes[way] += size
        self.seconds[way] += seconds

    def measured(self, cgroup: Path | None = CGROUP) -> dict[str, Any]:
        """What the job used; `cgroup` None: the process is not in a container of its
        own (a job of `--executor local --bucket`), whose cgroup is not the job's."""
        ran = resource.getrusage(resource.RUSAGE_CHILDREN)
        unknown = {"peak_bytes": None, "cpu_s": None, "memory_limit_bytes": None}
        return {
            "wall_s": round(time.monotonic() - self.started, 3),
            "job_peak_rss_bytes": ran.ru_maxrss * 1024,
            "job_cpu_s": round(ran.ru_utime + ran.ru_stime, 3),
            **(of_cgroup(cgroup) if cgroup is not None else unknown),
            "staged_in_bytes": self.bytes["in"],
            "staged_in_s": round(self.seconds["in"], 3),
            "staged_out_bytes": self.bytes["out"],
            "staged_out_s": round(self.seconds["out"], 3),
            "at": {**self.at, "end": round(time.time(), 3)},
        }


def process_start() -> float | None:
    """When this process started, in Unix time (its age from /proc, in 10 ms steps),
    or None."""
    import os

    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return round(time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK")), 3)


def of_cgroup(root: Path = CGROUP) -> dict[str, Any]:
    """The container's peak memory, CPU seconds and memory limit (None: not known)."""
    if (root / "cgroup.controllers").exists():  # v2: the container's own, at the root
        cpu = _field(root / "cpu.stat", "usage_usec")
        limit = _number(root / "memory.max")
        return {
            "peak_bytes": _number(root / "memory.peak"),
            "cpu_s": round(cpu / 1e6, 3) if cpu is not None else None,
            "memory_limit_bytes": limit,
        }
    usage = _number(root / "cpuacct" / "cpuacct.usage")
    if usage is None:
        usage = _number(root / "cpu,cpuacct" / "cpuacct.usage")
    limit = _number(root / "memory" / "memory.limit_in_bytes")
    return {
        "peak_bytes": _number(root / "memory" / "memory.max_usage_in_bytes"),
        "cpu_s": round(usage / 1e9, 3) if usage is not None else None,
        "memory_limit_bytes": limit if limit is not None and limit < NO_LIMIT else None,
    }


def line(measured: dict[str, Any]) -> str:
    return MARK + json.dumps(measured, sort_keys=True)


def parse(log: str) -> dict[str, Any] | None:
    """The measured usage a job's log ends with (its last such line), or None."""
    for text in reversed(log.splitlines()):
        if text.startswith(MARK):
            try:
                found = json.loads(text[len(MARK) :])
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def without(log: str) -> str:
    """A job's log as the user reads it: without the usage line."""
    return "".join(s for s in log.splitlines(keepends=True) if not s.startswith(MARK))


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # not there (an older kernel has no memory.peak), or "max"


def _field(path: Path, name: str) -> int | None:
    try:
        for text in path.read_text().splitlines():
            key, _, value = text.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return None
