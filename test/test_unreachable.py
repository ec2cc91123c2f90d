"""Storage that does not answer at the start of a run: one clear line and an exit
code within a bounded time, never a hang (the cluster's case is in test_cli.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import error_line, run_cli

from byok8s.errors import ExitCode

LIMIT = 30  # seconds a run may take to give up on storage that does not answer


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


S3_ENV = {"AWS_ACCESS_KEY_ID": "AKIAbyok8s", "AWS_SECRET_ACCESS_KEY": "secret-value-123456"}


def az_env(port: int) -> dict[str, str]:
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    return {"AZ_BLOB_ACCOUNT_URL": f"http://127.0.0.1:{port}/devstoreaccount1",
            "AZ_BLOB_CREDENTIAL": key}  # fmt: skip


@pytest.mark.parametrize("answer", ["silent", "closed"])
@pytest.mark.parametrize("kind", ["s3", "az"])
def test_storage_that_does_not_answer_fails_in_bounded_time(
    kind: str, answer: str, silent_port: int, workdir: Path
) -> None:
    port = silent_port if answer == "silent" else closed_port()
    if kind == "s3":
        args = ["--bucket", "s3://my-bucket/x", "--s3-endpoint-url", f"http://127.0.0.1:{port}"]
        env = S3_ENV
    else:
        args, env = ["--bucket", "az://my-container/x"], az_env(port)
    started = time.monotonic()
    done = run_cli("workflow-alpha", "params-blue", *args, "--executor", "local", cwd=workdir,
                   env=env, timeout=LIMIT + 30)  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == ExitCode.STORAGE, done.stderr
    line = error_line(done)
    assert "cannot" in line and f"127.0.0.1:{port}" in line, line
    assert took < LIMIT, f"took {took:.1f} s"
    print(f"{kind} {answer}: {took:.1f} s: {line}")
