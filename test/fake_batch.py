"""A recorded fake of the Azure Batch service and management REST APIs.

Azure Batch cannot run here. Both Azure SDKs the Batch plugin uses (azure-batch
through msrest, azure-mgmt-batch through azure-core) send their HTTP through
`requests` and urllib3, so the fake sits where urllib3 would open a connection
and send (`HTTPConnectionPool._make_request`), below the SDKs' own retries: it
records every request (method, host, path, api-version, JSON body, time) and
answers as the service does, with the response shapes of the REST reference.
A task it is given runs on this machine (its command line, with its environment
settings), as a Batch node would run it, and is seen completed, or with `states`
active, then running, then completed over three looks. It can also answer as a
busy service does (429/503 with Retry-After, `throttle`) and say a pool exists
(409 PoolExists). Loopback
traffic (the S3 server) passes; any other host is refused: nothing leaves the
machine. The Azure AD credential is replaced by a fixed token.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool

ARM = "management.azure.com"
BATCH_HOST_RE = re.compile(r"^[a-z0-9]+\.[a-z0-9-]+\.batch\.azure\.com$")
TOKEN = "fake-aad-token"  # noqa: S105 - not a secret: the fake credential's token
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATES = ("active", "running", "completed")  # a task's states, look after look


@dataclass
class Call:
    method: str
    host: str
    path: str
    api_version: str | None
    body: Any
    authorization: str | None
    at: float = 0.0  # time.monotonic() when sent
    status: int = 0  # what the fake answered


@dataclass
class FakeBatch:
    venv_bin: Path = field(default_factory=lambda: Path(sys.executable).parent)
    calls: list[Call] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> add body + result
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: tuple[str, ...] = ("completed",)  # a task's state at each look (STATES: all)
    pool_exists: bool = False  # the pool's PUT answers 409 PoolExists
    # (regex on "METHOD path", status): answered, once each and in order, instead of
    # the service's answer, with Retry-After: 1
    throttle: list[tuple[str, int]] = field(default_factory=list)

    def install(self, monkeypatch: Any) -> None:
        import snakemake_executor_plugin_azure_batch as plugin

        fake = self
        real = HTTPConnectionPool._make_request

        def make_request(pool: Any, conn: Any, method: str, url: str, *args: Any,
                         **kwargs: Any) -> Any:  # fmt: skip
            if pool.host in LOOPBACK:
                return real(pool, conn, method, url, *args, **kwargs)
            body = kwargs.get("body", args[0] if args else None)
            headers = kwargs.get("headers", args[1] if len(args) > 1 else None) or {}
            return fake.handle(pool, method, url, body, headers, kwargs)

        monkeypatch.setattr(HTTPConnectionPool, "_make_request", make_request)
        monkeypatch.setattr(plugin, "CustomAzureCredential", FixedCredential)

    def paths(self) -> list[str]:
        return [f"{c.method} {c.host if c.host == ARM else 'batch'} {c.path}" for c in self.calls]

    # --- the services -------------------------------------------------------

    def handle(
        self, pool: Any, method: str, target: str, body: Any, headers: Any, kwargs: dict
    ) -> Any:
        host = str(pool.host)
        if host != ARM and not BATCH_HOST_RE.match(host):
            raise urllib3.exceptions.NewConnectionError(
                pool, f"the fake refuses {host}: not Azure Batch"
            )
        url = urlsplit(target)
        call = Call(
            method,
            host,
            url.path,
            parse_qs(url.query).get("api-version", [None])[0],
            _json(body),
            headers.get("Authorization"),
            time.monotonic(),
        )
        self.calls.append(call)
        status, payload, extra = self._busy(call) or self._answer(call)
        call.status = status
        return _response(method, target, status, payload, extra, kwargs)

    def _busy(self, call: Call) -> tuple[int, Any, dict[str, str]] | None:
        for i, (pattern, status) in enumerate(self.throttle):
            if re.fullmatch(pattern, f"{call.method} {call.path}"):
                del self.throttle[i]
                code = "TooManyRequests" if status == 429 else "ServerBusy"
                error = {"code": code, "message": {"lang": "en-US", "value": "busy"}}
                return status, {"odata.metadata": "", **error}, {"Retry-After": "1"}
        return None

    def _answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        m, p = call.method, call.path
        pool = re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                            r"Microsoft\.Batch/batchAccounts/[^/]+/pools/([^/]+)", p)  # fmt: skip
        if call.host == ARM and pool and m == "PUT":
            if self.pool_exists:
                error = {"code": "PoolExists", "message": "The specified pool already exists."}
                return 409, {"error": error}, {}
            self.pools[pool.group(1)] = call.body
            props = {**call.body.get("properties", {}), "provisioningState": "Succeeded"}
            return 200, {"id": p, "name": pool.group(1), "type": "Microsoft.Batch/batchAccounts/"
                         "pools", "properties": props}, {}  # fmt: skip
        if m == "POST" and p == "/jobs":
            return 201, None, {"DataServiceId": f"https://x/jobs/{call.body['id']}"}
        task_add = re.fullmatch(r"/jobs/([^/]+)/tasks", p)
        if m == "POST" and task_add:
            self.tasks[call.body["id"]] = {"add": call.body, **self._run(call.body)}
            return 201, None, {"DataServiceId": f"https://x{p}/{call.body['id']}"}
        if m == "GET" and re.fullmatch(r"/pools/[^/]+", p):
            return 200, {"id": p.split("/")[-1], "state": "active", "allocationState": "steady"}, {}
        if m == "GET" and re.fullmatch(r"/pools/[^/]+/nodes", p):
            return 200, {"value": []}, {}
        task = re.fullmatch(r"/jobs/([^/]+)/tasks/([^/]+)", p)
        if m == "GET" and task:
            return 200, self._task(task.group(2)), {}
        output = re.fullmatch(r"/jobs/[^/]+/tasks/([^/]+)/files/(stdout|stderr)\.txt", p)
        if m == "GET" and output:
            return 200, self.tasks[output.group(1)][output.group(2)].encode(), {}
        if m == "DELETE" and re.fullmatch(r"/(jobs|pools)/[^/]+", p):
            return 202, None, {}
        missing = {"lang": "en-US", "value": f"the fake has no {m} {p}"}
        return 404, {"odata.metadata": "", "code": "NotFound", "message": missing}, {}

    def _task(self, task_id: str) -> dict[str, Any]:
        task = self.tasks[task_id]
        task["looks"] = task.get("looks", 0) + 1
        state = self.states[min(task["looks"], len(self.states)) - 1]
        task.setdefault("states", []).append(state)
        if state != "completed":
            return {"id": task_id, "state": state}
        result = "success" if task["exit_code"] == 0 else "failure"
        info: dict[str, Any] = {"exitCode": task["exit_code"], "result": result,
                                "retryCount": 0, "requeueCount": 0}  # fmt: skip
        if result == "failure":
            info["failureInfo"] = {"category": "userError", "code": "FailureExitCode",
                                   "message": "The task exited with an exit code "
                                   "representing a failure"}  # fmt: skip
        return {"id": task_id, "state": "completed", "executionInfo": info}

    def _run(self, add: dict[str, Any]) -> dict[str, Any]:
        """Run a task's command line here, as a node would (in its own directory)."""
        env = {**os.environ, "PATH": f"{self.venv_bin}:{os.environ['PATH']}"}
        for setting in add.get("environmentSettings") or ():
            env[setting["name"]] = setting.get("value") or ""
        command = add["commandLine"]
        options = (add.get("containerSettings") or {}).get("containerRunOptions") or ""
        if ":/byok8s/rt:ro" in options:  # the job runtime the node's start task copied
            command = command.replace("/byok8s/rt/bin/python3", f"{self.venv_bin}/python")
        with tempfile.TemporaryDirectory(prefix="fake-batch-node-") as node:
            done = subprocess.run(["/bin/sh", "-c", command], cwd=node, env=env,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        return {"exit_code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


class FixedCredential:
    """An Azure AD credential with a fixed token (Azure AD cannot run here)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import time

        from azure.core.credentials import AccessToken

        return AccessToken(TOKEN, int(time.time()) + 3600)


def _json(body: Any) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return body


def _response(
    method: str, target: str, status: int, payload: Any, headers: dict, kwargs: dict
) -> urllib3.HTTPResponse:
    if isinstance(payload, bytes):
        data, kind = payload, "application/octet-stream"
    elif payload is None:
        data, kind = b"", "application/json"
    else:
        data, kind = json.dumps(payload).encode(), "application/json; odata=minimalmetadata"
    return urllib3.HTTPResponse(
        body=io.BytesIO(data),
        headers={"Content-Type": kind, "Content-Length": str(len(data)),
                 "request-id": "00000000-0000-0000-0000-000000000000", **headers},
        status=status,
        preload_content=kwargs.get("preload_content", True),
        decode_content=kwargs.get("decode_content", True),
        request_method=method,
        request_url=target,
        retries=kwargs.get("retries"),
    )  # fmt: skip
