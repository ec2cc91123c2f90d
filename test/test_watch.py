"""The pod watch's reading of a watch response (no cluster: the response is made
here, line by line as the API server streams it)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from snakemake_executor_plugin_byok8s.watch import PodWatcher


def pod_event(kind: str, name: str, version: str) -> bytes:
    pod = {"kind": "Pod", "metadata": {"name": name, "resourceVersion": version,
                                       "labels": {"job-name": "job-" + name}}}  # fmt: skip
    return json.dumps({"type": kind, "object": pod}).encode() + b"\n"


class Response:
    """A watch response: its lines, then (with `hold`) a read that blocks until
    shut down, as an open watch request does while nothing happens."""

    def __init__(self, lines: list[bytes], hold: bool = False) -> None:
        self.lines, self.hold = lines, hold
        self.down = threading.Event()
        self.closed = False

    def stream(self, amt: Any = None, decode_content: bool = False) -> Any:
        yield from self.lines
        if self.hold:
            self.down.wait(30)

    def shutdown(self) -> None:
        self.down.set()

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        assert self.closed  # never back in the pool unread


class Api:
    def __init__(self, response: Response) -> None:
        self.response = response
        self.calls: list[dict[str, Any]] = []

    def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.response


def test_events_update_the_pods_and_a_bookmark_only_the_version() -> None:
    lines = [
        pod_event("ADDED", "a", "11"),
        json.dumps(
            {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "15"}}}
        ).encode()
        + b"\n",  # fmt: skip
        pod_event("MODIFIED", "a", "17")[:20],  # a line may come in pieces
        pod_event("MODIFIED", "a", "17")[20:],
    ]
    watcher = PodWatcher(Api(Response(lines)), "ns", "byok8s.io/run=r")
    assert watcher._watch("10") == "17"
    call = watcher.api.calls[0]
    assert call["watch"] is True and call["resource_version"] == "10"
    assert call["label_selector"] == "byok8s.io/run=r" and call["allow_watch_bookmarks"]
    (pod,) = watcher.pods_by_job()["job-a"]
    assert pod.metadata.resource_version == "17" and watcher.changed.is_set()


def test_a_bookmark_alone_carries_the_version_on() -> None:
    bookmark = {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "9"}}}
    watcher = PodWatcher(Api(Response([json.dumps(bookmark).encode() + b"\n"])), "ns", "x=y")
    assert watcher._watch("3") == "9"
    assert watcher.pods_by_job() == {} and not watcher.changed.is_set()


def test_an_error_event_lists_again() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                        "message": "too old resource version"}}  # fmt: skip
    watcher = PodWatcher(Api(Response([json.dumps(gone).encode() + b"\n"])), "ns", "x=y")
    assert watcher._watch("3") is None
    assert watcher.api.response.closed


def test_stop_ends_a_watch_waiting_for_its_next_event_at_once() -> None:
    class Listing:
        items: list[Any] = []
        metadata = type("M", (), {"resource_version": "1"})()

    response = Response([], hold=True)

    class Both(Api):
        def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> Any:
            return super().list_namespaced_pod(namespace, **kwargs) if kwargs.get("watch") \
                else Listing()  # fmt: skip

    watcher = PodWatcher(Both(response), "ns", "x=y")
    watcher.start()
    deadline = time.monotonic() + 5
    while watcher._response is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.healthy and watcher._response is response
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 1.0 and response.down.is_set()
    assert not watcher._thread.is_alive()
