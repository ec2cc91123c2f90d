"""The local single-node Kubernetes of test/cluster/, for tests and benchmarks.

`start()` runs up.sh on a fresh state directory (after stopping whatever a crashed
earlier session left there) and `Cluster.stop()` runs down.sh, which stops every
process by pid. TEST_CLUSTER_STATE=DIR uses a cluster already started with
`test/cluster/up.sh DIR` and leaves it running (quick iteration by hand).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent / "cluster"
STATE = Path(os.environ.get("TEST_CLUSTER_STATE") or "/tmp/byok8s-test-cluster")
# Read now: tests run with a scratch HOME and no BYOK8S_* variables.
CACHE = os.environ.get("BYOK8S_CLUSTER_CACHE") or str(Path.home() / ".cache" / "byok8s-cluster")
COMMANDS = (
    "etcd",
    "containerd",
    "runc",
    "ctr",
    "debootstrap",
    "go",
    "gcc",
    "make",
    "ip",
    "curl",
    "openssl",
    "dpkg-source",
    "apt-get",
)
PACKAGES = SCRIPTS / "packages.txt"


class ClusterMissing(RuntimeError):
    pass


def script(name: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run one of test/cluster/*.sh with the real cache directory."""
    env = {**os.environ, "BYOK8S_CLUSTER_CACHE": CACHE}
    return subprocess.run(["bash", str(SCRIPTS / name), *args], env=env, **kwargs)


@dataclass
class Cluster:
    state: Path
    kubeconfig: Path
    gateway: str  # the bridge's address: pods reach services on this machine here
    image: str  # the job image, loaded into containerd
    owned: bool = True  # started by us, so stopped by us
    setup_seconds: float = 0.0

    def api(self) -> Any:
        """An ApiClient for this cluster (not the kubernetes library's global one)."""
        import kubernetes

        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=config
        )
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        warnings.simplefilter("ignore", InsecureRequestWarning)
        return kubernetes.client.ApiClient(config)

    def kubeconfig_as(self, user: str, path: Path) -> Path:
        """A copy of the kubeconfig that authenticates as another user of
        pki/tokens.csv (up.sh makes "limited", with no RBAC rights of its own)."""
        tokens = (self.state / "pki" / "tokens.csv").read_text().splitlines()
        token = next(line.split(",")[0] for line in tokens if line.split(",")[1] == user)
        text = self.kubeconfig.read_text()
        admin = next(line.split(",")[0] for line in tokens if line.split(",")[1] == "admin")
        path.write_text(text.replace(admin, token))
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        if self.owned:
            script("down.sh", str(self.state))

    def grow(self, count: int) -> list[str]:
        """`count` nodes, all Ready: up.sh --nodes starts those not running (a
        stopped one again); their names, the first node's first."""
        proc = script("up.sh", str(self.state), "--nodes", str(count),
                      capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"up.sh --nodes {count} failed:\n{proc.stderr[-4000:]}")
        return [node_name(k) for k in range(1, count + 1)]

    def stop_node(self, k: int) -> None:
        """Node k gone at once, as a machine that dies (node.sh stop)."""
        script("node.sh", "stop", str(k), str(self.state), check=True)

    def shrink(self) -> None:
        """Back to the first node: the others stopped and their Nodes deleted."""
        import kubernetes

        core = kubernetes.client.CoreV1Api(self.api())
        for node in core.list_node().items:
            name = node.metadata.name
            if name == node_name(1):
                continue
            script("node.sh", "stop", name.rsplit("-", 1)[1], str(self.state), check=True)
            core.delete_node(name)


def node_name(k: int) -> str:
    """Node k's name, as test/cluster/nodes.sh gives it."""
    return "byok8s-node" if k == 1 else f"byok8s-node-{k}"


def missing_prerequisites() -> list[str]:
    missing = [c for c in COMMANDS if shutil.which(c) is None]
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("/usr/lib/cni/bridge")
    if os.geteuid() != 0:
        missing.append("root (containerd, runc and the bridge need it)")
    return missing


def start() -> Cluster:
    if os.environ.get("TEST_CLUSTER_STATE"):
        return _read(STATE, owned=False, seconds=0.0)
    missing = missing_prerequisites()
    if missing:
        raise ClusterMissing(
            f"local cluster prerequisites missing: {', '.join(missing)}; "
            f"run test/setup.sh (installs the Debian packages in {PACKAGES})"
        )
    script("down.sh", str(STATE))
    shutil.rmtree(STATE, ignore_errors=True)
    for port in (2379, 6443):
        if _listening(port):
            raise RuntimeError(
                f"port {port} is in use: another cluster is running; stop it with "
                "test/cluster/down.sh STATE_DIR"
            )
    started = time.monotonic()
    proc = script("up.sh", str(STATE), capture_output=True, text=True)
    if proc.returncode != 0:
        script("down.sh", str(STATE))
        raise RuntimeError(f"up.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return _read(STATE, owned=True, seconds=time.monotonic() - started)


def _read(state: Path, owned: bool, seconds: float) -> Cluster:
    return Cluster(
        state=state,
        kubeconfig=state / "kubeconfig",
        gateway=(state / "gateway").read_text().strip(),
        image=(state / "job-image").read_text().strip(),
        owned=owned,
        setup_seconds=seconds,
    )


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Recorder:
    """Records every pod and Secret seen in a namespace while a run goes on
    (a run deletes its Jobs and Secret at the end, so they are watched live)."""

    api: Any
    namespace: str
    pods: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Recorder:
        import kubernetes

        core = kubernetes.client.CoreV1Api(self.api)
        for lister, into in (
            (core.list_namespaced_pod, self.pods),
            (core.list_namespaced_secret, self.secrets),
        ):
            thread = threading.Thread(target=self._watch, args=(lister, into), daemon=True)
            thread.start()
            self._threads.append(thread)
        time.sleep(0.5)  # the watches are open before the run starts
        return self

    def __exit__(self, *exc: Any) -> None:
        time.sleep(1.0)  # the last events of the run arrive
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _watch(self, lister: Any, into: dict[str, Any]) -> None:
        import kubernetes

        version = None
        while not self._stop.is_set():
            watch = kubernetes.watch.Watch()
            try:
                for event in watch.stream(
                    lister, self.namespace, timeout_seconds=1, resource_version=version
                ):
                    obj = event["object"]
                    version = obj.metadata.resource_version
                    into[obj.metadata.name] = obj
                    if self._stop.is_set():
                        break
            except kubernetes.client.exceptions.ApiException:
                version = None  # too old: start over with a fresh list
