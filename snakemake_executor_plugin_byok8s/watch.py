"""One watch on the run's pods, so job completion is seen when it happens.

The stock executor reads every job's status every 10 s (two API calls a job).
Here a background thread keeps the latest state of every pod of the run (one
long-lived watch request) and sets `changed` whenever a pod changes, so the
status loop wakes at once and reads this cache instead of asking the API server.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

JOB_NAME_LABEL = "job-name"  # set on pods by the Kubernetes Job controller


def by_job(pods: Any) -> dict[str, list[Any]]:
    """Pods grouped by the name of the Job that made them."""
    grouped: dict[str, list[Any]] = {}
    for pod in pods:
        job = (pod.metadata.labels or {}).get(JOB_NAME_LABEL)
        if job:
            grouped.setdefault(job, []).append(pod)
    return grouped


class PodWatcher:
    def __init__(self, api: Any, namespace: str, selector: str) -> None:
        self.api, self.namespace, self.selector = api, namespace, selector
        self.changed = threading.Event()
        self.healthy = False  # the cache is complete (the first list arrived)
        self._pods: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._response: Any = None  # the watch request being read
        self._thread = threading.Thread(target=self._run, name="byok8s-pod-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the watch at once: its open request is shut down (otherwise the
        thread waits in its read for the next event, up to the request's timeout)."""
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()
        self._thread.join(3)

    def pods_by_job(self) -> dict[str, list[Any]]:
        with self._lock:
            return by_job(self._pods.values())

    def _run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
            except ApiException as exc:
                if exc.status == 410:  # our version is too old: list again
                    version = None
                    continue
                self._degrade()
            except Exception:  # connection trouble: the status loop polls meanwhile
                if self._stop.is_set():
                    return  # stop() shut the request down
                self._degrade()

    def _watch(self, version: str) -> str | None:
        """One watch request from `version`, read to its end (or stop()); the
        version to go on from, None to list again."""
        from kubernetes.watch import watch

        from snakemake_executor_plugin_byok8s import decode

        response = self.api.list_namespaced_pod(
            self.namespace,
            label_selector=self.selector,
            resource_version=version,
            timeout_seconds=30,
            allow_watch_bookmarks=True,
            watch=True,
            _preload_content=False,
        )
        self._response = response
        try:
            if self._stop.is_set():  # stop() came before the response: it shut nothing
                return version
            for line in watch.iter_resp_lines(response):
                if self._stop.is_set():
                    return version
                event = json.loads(line)  # once (the client's Watch decodes it thrice)
                if event["type"] == "ERROR":
                    return None  # 410 Gone, or any other: list again
                version = event["object"]["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":  # a bookmark only moves the version on
                    self._update(event["type"], decode.model(event["object"], "V1Pod"))
        finally:  # closed, not reused: a watch left unread would garble the next request
            self._response = None
            response.close()
            response.release_conn()
        return version

    def _list(self) -> str:
        listing = self.api.list_namespaced_pod(
            self.namespace, label_selector=self.selector, _request_timeout=30
        )
        with self._lock:
            self._pods = {p.metadata.name: p for p in listing.items}
        self.healthy = True
        self.changed.set()
        return str(listing.metadata.resource_version)

    def _update(self, kind: str, pod: Any) -> None:
        if kind == "DELETED" and pod.metadata.deletion_timestamp is None:
            from datetime import UTC, datetime

            pod.metadata.deletion_timestamp = datetime.now(UTC)
        with self._lock:
            self._pods[pod.metadata.name] = pod  # a deleted pod keeps its last state
        self.changed.set()

    def _degrade(self) -> None:
        self.healthy = False
        self.changed.set()
        self._stop.wait(1.0)
