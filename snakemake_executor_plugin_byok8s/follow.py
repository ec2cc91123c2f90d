"""`--follow`: every job's pod log, line by line as it is written, prefixed with
the rule and job. One thread per pod reads the log with `follow=true` (one
long-lived request, ended by the container's end); lines go through Snakemake's
logger marked `byok8s_follow`, which byok8s shows above its progress display."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from snakemake_executor_plugin_byok8s.podspec import CONTAINER

FOLLOW_MARK = "byok8s_follow"  # the log record attribute byok8s.engine looks for


class Follower:
    def __init__(self, api: Any, namespace: str, emit: Callable[[str], None]) -> None:
        self.api, self.namespace, self.emit = api, namespace, emit
        self._followed: set[str] = set()
        self._streams: list[Any] = []
        self._lock = threading.Lock()

    def pod_started(self, pod: Any, label: str) -> None:
        """Start following `pod` (once) when its container runs or has run."""
        name = pod.metadata.name
        statuses = (pod.status.container_statuses if pod.status else None) or ()
        started = any(s.state and (s.state.running or s.state.terminated) for s in statuses)
        with self._lock:
            if not started or name in self._followed:
                return
            self._followed.add(name)
        threading.Thread(
            target=self._follow, args=(name, label), name=f"byok8s-follow-{name}", daemon=True
        ).start()

    def stop(self) -> None:
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            with contextlib.suppress(Exception):  # a stream that already ended
                stream.close()

    def _follow(self, pod: str, label: str) -> None:
        try:
            stream = self.api.read_namespaced_pod_log(
                pod, self.namespace, container=CONTAINER, follow=True, _preload_content=False
            )
            with self._lock:
                self._streams.append(stream)
            pending = b""
            for chunk in stream.stream(1024):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.emit(f"{label} | {line.decode(errors='replace').rstrip()}")
            if pending.strip():
                self.emit(f"{label} | {pending.decode(errors='replace').rstrip()}")
        except Exception as exc:  # noqa: BLE001 - following is a courtesy: never fail a run
            self.emit(f"{label} | (the log could not be followed: {exc})")
