"""Ctrl-C and SIGTERM: what byok8s does when told to stop.

The first signal stops this machine's job processes (Snakemake starts them in our
process group, so a `kill` of byok8s alone would leave them running) and raises
KeyboardInterrupt, on which Snakemake cancels the cluster's jobs. Snakemake then
reports the run as failed; `received()` lets the entry point say what really
happened and exit 130 or 143."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """KeyboardInterrupt for SIGTERM, so Snakemake cancels the same way."""


def install() -> dict[int, Any]:
    """Handle SIGINT and SIGTERM; returns the previous handlers for restore()."""
    _received.clear()
    return {sig: signal.signal(sig, _handle) for sig in NAMES}


def restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def received() -> int | None:
    """The first stop signal of this run, if any."""
    return _received[0] if _received else None


def _handle(signum: int, frame: Any) -> None:
    first = not _received
    _received.append(signum)
    if first:
        stop_children()
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_children() -> None:
    """SIGTERM to every process below this one (Linux; elsewhere a terminal's
    Ctrl-C already reaches the whole process group)."""
    for pid in _descendants(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(k) for k in children.read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *_descendants(kid)]
    return found
