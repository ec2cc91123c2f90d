"""Cluster DNS: find CoreDNS's forwarding loop and fix it (`byok8s fix-dns`).

On cloud VMs (and minikube on them) the node's /etc/resolv.conf often names a
local stub resolver; CoreDNS forwards to it, reaches itself, and its `loop`
plugin stops it: the pods crash-loop with "plugin/loop: ... detected" and no job
can resolve the storage endpoint. The fix is to forward to real resolvers
(fixcoredns.yml at the repository root is the same fix as a file).
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from byok8s.errors import ClusterError
from byok8s.kube import TIMEOUT

NAMESPACE = "kube-system"
CONFIGMAP = "coredns"
SELECTOR = "k8s-app=kube-dns"
DEFAULT_RESOLVERS = ("8.8.8.8", "8.8.4.4")
LOOP_RE = re.compile(r"plugin/loop: .*detected", re.IGNORECASE)
# `forward . UPSTREAM... [{` (or the removed `proxy` plugin) for the root zone.
UPSTREAM_RE = re.compile(r"^(?P<indent>\s*)(?P<plugin>forward|proxy)\s+\.\s+(?P<to>[^{]*?)\s*"
                         r"(?P<block>\{)?\s*$")  # fmt: skip

ABSENT, HEALTHY, LOOP, FAILING, STARTING = "absent", "healthy", "loop", "failing", "starting"


@dataclass(frozen=True)
class Diagnosis:
    state: str  # one of ABSENT, HEALTHY, LOOP, FAILING, STARTING
    pods: tuple[str, ...]
    detail: str  # one line: the loop message, the failure, or what is starting

    def describe(self) -> str:
        n = len(self.pods)
        return {
            ABSENT: "no CoreDNS in kube-system (no pods labelled k8s-app=kube-dns)",
            HEALTHY: f"CoreDNS is healthy ({n} pod{'s' * (n != 1)} Ready)",
            LOOP: f"CoreDNS is crash-looping on a forwarding loop: {self.detail}",
            FAILING: f"CoreDNS is failing, but not with the forwarding loop: {self.detail}",
            STARTING: f"CoreDNS is not Ready yet: {self.detail}",
        }[self.state]


def diagnose(core: Any) -> Diagnosis:
    """What state CoreDNS is in, from its pods and their last logs."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR, _request_timeout=TIMEOUT)
    names = tuple(sorted(p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp))
    if not names:
        return Diagnosis(ABSENT, (), "")
    failing, starting = "", ""
    for pod in sorted(pods.items, key=lambda p: p.metadata.name):
        if pod.metadata.deletion_timestamp:
            continue
        for status in pod.status.container_statuses or []:
            crashed = _crash(status)
            if crashed:
                previous = bool(status.restart_count) and not status.state.terminated
                log = _log(core, pod.metadata.name, status.name, previous)
                loop = next((ln.strip() for ln in log.splitlines() if LOOP_RE.search(ln)), "")
                if loop:
                    return Diagnosis(LOOP, names, f"pod {pod.metadata.name}: {loop}")
                last = next((ln.strip() for ln in reversed(log.splitlines()) if ln.strip()), "")
                failing = failing or f"pod {pod.metadata.name}: {crashed}" + (
                    f"; last log line: {last}" if last else "")  # fmt: skip
            elif not status.ready:
                starting = starting or f"pod {pod.metadata.name} {_waiting(status)}"
        if not pod.status.container_statuses:
            starting = starting or f"pod {pod.metadata.name} is {pod.status.phase}"
    if failing:
        return Diagnosis(FAILING, names, failing)
    if starting:
        return Diagnosis(STARTING, names, starting)
    return Diagnosis(HEALTHY, names, "")


def settle(core: Any, seconds: float, sleep: Callable[[float], None] = time.sleep) -> Diagnosis:
    """Diagnose, waiting up to `seconds` for pods that are still starting."""
    deadline = time.monotonic() + seconds
    found = diagnose(core)
    while found.state == STARTING and time.monotonic() < deadline:
        sleep(2)
        found = diagnose(core)
    return found


def read_corefile(core: Any) -> str:
    from kubernetes.client.exceptions import ApiException

    try:
        cm = core.read_namespaced_config_map(CONFIGMAP, NAMESPACE, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise ClusterError(
                f"CoreDNS runs but ConfigMap {NAMESPACE}/{CONFIGMAP} does not exist; "
                "apply fixcoredns.yml from the byok8s repository with 'kubectl apply -f'"
            ) from exc
        raise
    corefile = (cm.data or {}).get("Corefile")
    if not corefile:
        raise ClusterError(f"ConfigMap {NAMESPACE}/{CONFIGMAP} has no Corefile; "
                           "apply fixcoredns.yml with 'kubectl apply -f'")  # fmt: skip
    return str(corefile)


def fixed_corefile(corefile: str, resolvers: Sequence[str] = DEFAULT_RESOLVERS) -> str:
    """The Corefile with the root zone forwarded to `resolvers`; the rest is kept
    (minikube's `hosts` block, plugins, options of `forward`)."""
    lines = corefile.splitlines(keepends=True)
    out: list[str] = []
    skip_block = False
    for line in lines:
        if skip_block:  # the options of `proxy`, which `forward` does not take
            skip_block = "}" not in line
            continue
        match = UPSTREAM_RE.match(line.rstrip("\n"))
        if not match:
            out.append(line)
            continue
        keep_block = match["block"] and match["plugin"] == "forward"
        skip_block = bool(match["block"]) and not keep_block
        new = f"{match['indent']}forward . {' '.join(resolvers)}" + (" {" if keep_block else "")
        out.append(new + "\n")
    return "".join(out)


def diff(old: str, new: str) -> str:
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        f"{NAMESPACE}/{CONFIGMAP} Corefile (now)", f"{NAMESPACE}/{CONFIGMAP} Corefile (fixed)",
    ))  # fmt: skip


def apply(core: Any, corefile: str, old_pods: Sequence[str], timeout: float,
          sleep: Callable[[float], None] = time.sleep) -> Diagnosis:  # fmt: skip
    """Write the Corefile, restart the CoreDNS pods and wait until new ones are Ready."""
    core.patch_namespaced_config_map(CONFIGMAP, NAMESPACE, {"data": {"Corefile": corefile}},
                                     _request_timeout=TIMEOUT)  # fmt: skip
    for name in old_pods:
        _delete_pod(core, name)
    deadline = time.monotonic() + timeout
    stable_since = None
    while True:
        found = diagnose(core)
        fresh = not set(found.pods) & set(old_pods)
        if found.state == HEALTHY and fresh:
            # CoreDNS's loop check runs in its first seconds: Ready must last.
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 3:
                return found
        else:
            stable_since = None
        if found.state in (LOOP, FAILING) and fresh:
            raise ClusterError(f"after the fix, {found.describe()}")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"CoreDNS did not become Ready within {timeout:.0f} s after the fix "
                f"({found.describe()}); see 'kubectl -n {NAMESPACE} get pods -l {SELECTOR}'"
            )
        sleep(1)


def _crash(status: Any) -> str:
    """Why a container is crashing ("" if it is not)."""
    state, last = status.state, status.last_state
    if state.waiting and state.waiting.reason == "CrashLoopBackOff":
        return "CrashLoopBackOff"
    if state.terminated and state.terminated.exit_code:
        return f"exited with code {state.terminated.exit_code}"
    crashed_before = last and last.terminated and last.terminated.exit_code
    if status.restart_count and not status.ready and crashed_before:
        return f"restarted {status.restart_count}x, exit code {last.terminated.exit_code}"
    return ""


def _waiting(status: Any) -> str:
    waiting = status.state.waiting
    return f"is {waiting.reason}" if waiting and waiting.reason else "is not Ready"


def _log(core: Any, pod: str, container: str, previous: bool) -> str:
    from kubernetes.client.exceptions import ApiException

    try:
        return str(core.read_namespaced_pod_log(
            pod, NAMESPACE, container=container, previous=previous, tail_lines=50,
            _request_timeout=TIMEOUT))  # fmt: skip
    except ApiException:
        return ""


def _delete_pod(core: Any, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        core.delete_namespaced_pod(name, NAMESPACE, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:
            raise


def fix(resolvers: Sequence[str], dry_run: bool, force: bool, timeout: float) -> None:
    """`byok8s fix-dns`: diagnose, show the change, apply it, wait for Ready.
    The diff and the outcome go to stdout, progress to stderr."""
    import click

    from byok8s.kube import core_api
    from byok8s.output import stderr_console

    core, _config = core_api()
    console = stderr_console()
    with console.status("checking CoreDNS in kube-system"):
        found = settle(core, 30)
    click.echo(found.describe())
    if found.state == ABSENT or (found.state in (HEALTHY, STARTING) and not force):
        click.echo("nothing changed")
        return
    if found.state == FAILING and not force:
        raise ClusterError(f"{found.describe()}; fix-dns only fixes the forwarding loop "
                           "(pass --force to forward to other resolvers anyway)")  # fmt: skip
    old = read_corefile(core)
    new = fixed_corefile(old, resolvers)
    if new == old:
        raise ClusterError(
            f"the Corefile already forwards to {' '.join(resolvers)}, yet {found.describe()}; "
            f"see 'kubectl -n {NAMESPACE} logs -l {SELECTOR} --previous'"
        )
    click.echo(diff(old, new), nl=False)
    if dry_run:
        click.echo("dry run: nothing changed")
        return
    started = time.monotonic()
    with console.status("restarting CoreDNS and waiting until it is Ready"):
        done = apply(core, new, found.pods, timeout)
    click.echo(f"fixed: {done.describe()} after {time.monotonic() - started:.1f} s")
