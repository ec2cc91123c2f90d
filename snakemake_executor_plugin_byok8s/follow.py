"""`--follow`: every job's pod log, line by line as it is written, prefixed with
the rule and job. One thread per pod reads the log with `follow=true` (one
long-lived request, ended by the container's end); lines go through Snakemake's
logger marked `byok8s_follow`, which byok8s shows above its progress display."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from snakemake_executor_plugin_byok8s import usage
from snakemake_executor_plugin_byok8s.podspec import CONTAINER
from snakemake_executor_plugin_byok8s.status import container_status

FOLLOW_MARK = "byok8s_follow"  # the log record attribute byok8s.engine looks for


class Follower:
    def __init__(self, api: Any, namespace: str, emit: Callable[[str], None]) -> None:
        self.api, self.namespace, self.emit = api, namespace, emit
        self._followed: set[str] = set()
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def pod_started(self, pod: Any, label: str) -> None:
        """Start following `pod` (once) when its container runs or has run."""
        name = pod.metadata.name
        state = getattr(container_status(pod), "state", None)
        started = state is not None and bool(state.running or state.terminated)
        with self._lock:
            if not started or name in self._followed:
                return
            self._followed.add(name)
        threading.Thread(
            target=self._follow, args=(name, label), name=f"byok8s-follow-{name}", daemon=True
        ).start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            with contextlib.suppress(Exception):  # a stream that already ended
                stream.close()

    def _follow(self, pod: str, label: str) -> None:
        stream = None
        try:
            stream = self.api.read_namespaced_pod_log(
                pod, self.namespace, container=CONTAINER, follow=True, _preload_content=False
            )
            with self._lock:
                self._streams.append(stream)
            pending = b""
            for chunk in stream.stream(1024):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._line(label, line)
            if pending.strip():
                self._line(label, pending)
        except Exception as exc:  # noqa: BLE001 - following is a courtesy: never fail a run
            if not self._stopped.is_set():  # not the stream that stop() closed
                self.emit(f"{label} | (the log could not be followed: {exc})")
        finally:
            with self._lock:
                if stream in self._streams:
                    self._streams.remove(stream)

    def _line(self, label: str, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        if not text.startswith(usage.MARK):  # for the record, not the reader
            self.emit(f"{label} | {text}")
