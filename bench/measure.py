"""What one run costs besides its time: the main process's CPU seconds and peak
memory (its rusage, with whatever it started and waited for), and the Kubernetes
API requests, counted two ways:

- all clients: the delta of the API server's `apiserver_request_total` (its
  /metrics), by verb and resource. This is the load the run puts on the API
  server, with what the controllers, the scheduler and the kubelet do for its
  Jobs and pods, and their own background (node leases and status);
- the run's own client: the API server's audit log (test/cluster/up.sh writes
  one), by user agent: byok8s says "byok8s/VERSION", plain snakemake's Kubernetes
  executor the kubernetes library's default "OpenAPI-Generator/...", and the
  bare Jobs' driver (this benchmark) AGENT.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import IO, Any

AGENT = "byok8s-bench"
METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')
# The audit log's verbs as /metrics names them.
VERBS = {"create": "POST", "update": "PUT"}


def run(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run `command`; its wall seconds, CPU seconds (user + system, with the
    processes it waited for) and peak resident memory. Raises when it fails."""
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read()  # the pipe is drained while it runs
    _, status, used = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": round(seconds, 3), "cpu_s": round(used.ru_utime + used.ru_stime, 3),
            "rss_mb": round(used.ru_maxrss / 1024, 1)}  # fmt: skip


def request_key(verb: str, resource: str, subresource: str = "") -> str:
    return f"{verb} {resource}" + (f"/{subresource}" if subresource else "")


class Api:
    """The API server's request counters and audit log, read before and after a run."""

    def __init__(self, cluster: Any) -> None:
        config = cluster.api().configuration
        self.url = config.host + "/metrics"
        self.token = config.api_key.get("authorization") or config.api_key.get("BearerToken")
        self.audit = cluster.state / "audit.log"
        self._context = ssl.create_default_context()
        self._context.check_hostname = False
        self._context.verify_mode = ssl.CERT_NONE

    def counters(self) -> Counter[str]:
        """apiserver_request_total by verb and resource (requests to resources only:
        /metrics, /healthz and the like are left out)."""
        token = self.token if self.token.startswith("Bearer ") else f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url, headers={"Authorization": token, "User-Agent": AGENT}
        )
        with urllib.request.urlopen(request, context=self._context, timeout=30) as response:
            text = response.read().decode()
        found: Counter[str] = Counter()
        for line in text.splitlines():
            match = METRIC.match(line)
            if not match:
                continue
            labels = dict(LABEL.findall(match["labels"]))
            if labels.get("resource"):
                key = request_key(labels["verb"], labels["resource"], labels.get("subresource", ""))
                found[key] += int(float(match["value"]))
        return found

    def mark(self) -> tuple[Counter[str], tuple[int, int]]:
        return self.counters(), self._position()

    def _position(self) -> tuple[int, int]:
        """Where the audit log ends now: its inode (which a rotation keeps, renaming
        the file) and its size."""
        if not self.audit.exists():
            return 0, 0
        found = self.audit.stat()
        return found.st_ino, found.st_size

    def since(self, mark: tuple[Counter[str], tuple[int, int]]) -> dict[str, Any]:
        """The requests since `mark`: all clients' by verb and resource, and each user
        agent's (its name before the first "/") from the audit log."""
        # The run's last requests reach the counters and the log once the API server
        # has finished them (a watch closed at the run's end: once it notices).
        time.sleep(1.5)
        counters, position = mark
        now = self.counters()
        everyone = {k: now[k] - counters.get(k, 0) for k in now if now[k] > counters.get(k, 0)}
        return {"all": everyone, "by_agent": self._audited(position)}

    def _audited(self, position: tuple[int, int]) -> dict[str, dict[str, int]]:
        agents: dict[str, Counter[str]] = {}
        for path, offset in self._since(position):
            with open(path, "rb") as log:
                log.seek(offset)
                self._tally(log, agents)
        return {agent: dict(c) for agent, c in agents.items()}

    def _since(self, position: tuple[int, int]) -> list[tuple[Path, int]]:
        """The log files and offsets that hold what was written since `position`:
        after a rotation, the renamed file from the offset and the new one whole."""
        inode, offset = position
        if not self.audit.exists():
            return []
        if inode in (0, self.audit.stat().st_ino):
            return [(self.audit, offset)]
        for backup in self.audit.parent.glob("audit-*.log"):
            if backup.stat().st_ino == inode:
                return [(backup, offset), (self.audit, 0)]
        raise RuntimeError(f"{self.audit} was rotated more than once during the run; "
                           "raise --audit-log-maxsize in test/cluster/up.sh")  # fmt: skip

    @staticmethod
    def _tally(log: IO[bytes], agents: dict[str, Counter[str]]) -> None:
        for raw in log:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if event.get("stage") != "ResponseComplete":
                continue
            ref = event.get("objectRef")
            if not ref or not ref.get("resource"):
                continue
            agent = str(event.get("userAgent", "")).split("/", 1)[0] or "(none)"
            verb = VERBS.get(event["verb"], event["verb"].upper())
            key = request_key(verb, ref["resource"],
                              ref.get("subresource", ""))  # fmt: skip
            agents.setdefault(agent, Counter())[key] += 1
