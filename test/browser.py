"""A page opened in real headless Chromium (Debian's `chromium`), as a person would
look at it, driven over the DevTools protocol on loopback: offline, with every
request the page makes, its console errors and exceptions, a screenshot, and the
value of a check run in the page."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "chromium"
WAIT = 60.0  # seconds for Chromium to start and a page to load, on a busy 2-core machine


@dataclass
class Seen:
    checked: Any  # what the check expression returned
    screenshot: Path
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def look_at(page: Path, check: str, screenshot: Path) -> Seen:
    """Open `page` (a file) offline, wait for its load, evaluate `check` (a JavaScript
    expression) and take a screenshot."""
    import websocket

    if shutil.which(CHROMIUM) is None:
        raise RuntimeError("chromium is missing: run test/setup.sh (Debian package chromium)")
    profile = Path(tempfile.mkdtemp(prefix="byok8s-chromium-"))
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1300,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        _until(lambda: port_file.is_file() and len(port_file.read_text().split()) == 2,
               "Chromium's DevTools port")  # fmt: skip
        port, path = port_file.read_text().split()
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=WAIT,
                                         suppress_origin=True)  # fmt: skip
        try:
            return _look(ws, page, check, screenshot)
        finally:
            ws.close()
    finally:
        browser.kill()
        browser.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def _look(ws: Any, page: Path, check: str, screenshot: Path) -> Seen:
    ids = itertools.count(1)
    events: list[dict] = []

    def call(method: str, params: dict | None = None, session: str | None = None) -> dict:
        n = next(ids)
        message: dict[str, Any] = {"id": n, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        ws.send(json.dumps(message))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            got = json.loads(ws.recv())
            if got.get("id") == n:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return dict(got.get("result") or {})
            events.append(got)
        raise TimeoutError(method)

    target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        call(f"{domain}.enable", session=session)
    call("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
         "downloadThroughput": -1, "uploadThroughput": -1}, session=session)  # fmt: skip
    call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    deadline = time.monotonic() + WAIT
    while not any(e.get("method") == "Page.loadEventFired" for e in events):
        assert time.monotonic() < deadline, f"{page} did not load within {WAIT} s"
        events.append(json.loads(ws.recv()))
    value = call("Runtime.evaluate", {"expression": check, "returnByValue": True},
                 session=session)  # fmt: skip
    if "exceptionDetails" in value:
        raise AssertionError(f"the check failed in the page: {value['exceptionDetails']}")
    shot = call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                session=session)  # fmt: skip
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    seen = Seen(value["result"].get("value"), screenshot)
    for event in events:
        method, params = event.get("method"), event.get("params") or {}
        if method == "Network.requestWillBeSent":
            seen.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            seen.errors.append(str(params.get("exceptionDetails")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            seen.errors.append(str(params.get("args")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            seen.errors.append(str(params["entry"].get("text")))
    return seen


def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"{what}: not there within {WAIT} s"
        time.sleep(0.1)


# What a report page shows, counted in the page itself.
REPORT_CHECK = """JSON.stringify({
  bars: document.querySelectorAll('#timeline g.bar').length,
  failedBars: document.querySelectorAll('#timeline g.bar[data-state="failed"]').length,
  retried: document.querySelectorAll('#timeline g.bar[data-infra="true"]').length,
  rules: Array.from(document.querySelectorAll('#rules tr.rule')).map(r => r.dataset.rule),
  hints: Array.from(document.querySelectorAll('.hint')).map(h => h.textContent),
  failures: Array.from(document.querySelectorAll('.failure')).map(f => f.textContent),
  partial: !!document.getElementById('partial'),
  titles: Array.from(document.querySelectorAll('#timeline g.bar > title')).map(t => t.textContent),
  width: document.getElementById('timeline') ? document.getElementById('timeline').getBoundingClientRect().width : 0,
})"""  # noqa: E501


def assert_report_looks_right(page: Path, screenshot: Path) -> dict:
    """The page opened in Chromium with no console error and no request beyond
    itself; returns what the page shows (REPORT_CHECK)."""
    seen = look_at(page, REPORT_CHECK, screenshot)
    assert not seen.errors, seen.errors
    assert seen.requests == [page.resolve().as_uri()], seen.requests
    assert screenshot.stat().st_size > 10_000  # a real picture, not an empty page
    return dict(json.loads(seen.checked))
