"""One run at a time per bucket prefix: a lock object next to the outputs.

Two runs writing the same outputs would overwrite each other's files and each
believe its own are complete. The lock is created atomically (a conditional
write: S3 If-None-Match, Azure overwrite=False, GCS if_generation_match=0),
holds who took it, and is removed when the run ends, also on Ctrl-C or SIGTERM.
A run killed outright leaves it behind: `--unlock` removes it."""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from byok8s.errors import Locked
from byok8s.storage import Storage

LOCK = ".byok8s/lock.json"
log = logging.getLogger(__name__)


def acquire(
    storage: Storage, workflow: str, run_id: str, where: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Take the prefix's lock or raise Locked naming the run that holds it. `where`
    says where the run's jobs go, for `--unlock` to find what a killed run left."""
    mine = {
        "run": run_id,
        **(where or {}),
        "workflow": workflow,
        "user": _user(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if storage.create(LOCK, json.dumps(mine).encode()):
        return mine
    held = holder(storage)
    who = describe(held) if held else "a run that is just ending"
    raise Locked(
        f"{storage.url} is in use by another byok8s run ({who}); wait for it, use another "
        f"prefix, or if that run is gone, remove its lock with --unlock"
    )


RELEASE_WAITS = (1.0, 2.0, 4.0, 8.0)  # seconds before each new try to remove the lock


def release(
    storage: Storage, mine: dict[str, Any], waits: tuple[float, ...] = RELEASE_WAITS
) -> None:
    """Remove the lock if it is still this run's, trying again for a while when the
    storage does not answer (a run that failed because the storage was away for a
    moment ends while it still is); never raises: the run's own outcome is what the
    user needs to see."""
    from byok8s.errors import StorageError

    for wait in (*waits, None):
        try:
            held = holder(storage)
            if held is not None and held.get("run") == mine["run"]:
                storage.delete(LOCK)
            return
        except StorageError as exc:
            if wait is None:
                log.warning(
                    "could not remove the run's lock (%s); the next run needs --unlock", exc
                )
                return
            log.debug("could not remove the run's lock (%s); trying again in %.0f s", exc, wait)
            time.sleep(wait)


def holder(storage: Storage) -> dict[str, Any] | None:
    from byok8s.errors import NotFound

    try:
        data = storage.get(LOCK)
    except NotFound:
        return None
    try:
        found = json.loads(data)
    except ValueError:
        return {"run": "?", "note": "unreadable lock object"}
    return found if isinstance(found, dict) else {"run": "?"}


def unlock(storage: Storage) -> dict[str, Any] | None:
    """Remove the lock whoever holds it; returns what it said (None if none)."""
    held = holder(storage)
    if held is not None:
        storage.delete(LOCK)
    return held


def describe(held: dict[str, Any]) -> str:
    return (f"run {held.get('run', '?')} of {held.get('workflow', '?')}, started "
            f"{held.get('started', '?')} by {held.get('user', '?')}@{held.get('host', '?')}, "
            f"pid {held.get('pid', '?')}")  # fmt: skip


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid())
