"""Run one of Snakemake's own test workflows through byok8s one way, and compare
its outputs with the test's `expected-results/` exactly as the suite's own helper
(`tests/common.py run()`) does: every expected file exists, and its content,
stripped of surrounding white space, has the same MD5 (unless check_md5=False).

Ways:
- plain:   plain `snakemake` on this machine (the baseline of `local`)
- plain-bucket: plain `snakemake` on this machine with the same S3 bucket as its
           default storage (the baseline of the bucket ways: a workflow that names
           its files in a shell command instead of {input}/{output} cannot work
           with storage, with Snakemake alone either)
- local:   byok8s on this machine, local files
- bucket:  byok8s, jobs on this machine, every file through an S3 bucket
- cluster: byok8s on the local Kubernetes cluster with S3
- azure:   byok8s on the local Kubernetes cluster with Azure Blob (Azurite)
For the bucket ways the test's files are put in the bucket first and the outputs
compared from the bucket (downloaded after the run), never from this machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from suite import Case

WAYS = ("plain", "plain-bucket", "local", "bucket", "cluster", "azure")
# Every byok8s way is held to plain Snakemake on this machine, without storage; a
# failure of a storage way is "as with plain Snakemake" when plain Snakemake fails
# the test with the same bucket too.
BASELINE = {"local": "plain", "bucket": "plain", "cluster": "plain", "azure": "plain"}
SAME_STORAGE = {"local": "plain", "bucket": "plain-bucket", "cluster": "plain-bucket",
                "azure": "plain-bucket"}  # fmt: skip
TIMEOUT = 600  # seconds one run may take


def small_node_scalar(cores: int) -> str:
    """The local cluster's one node has 2 CPUs, and the suite runs with 3 cores (or
    what a test gives): pods request at most 1.8 CPUs for a job of `cores` threads
    (0.3 a thread at most), so that it fits; the job's threads are unchanged."""
    return f"{min(0.3, int(180 / max(cores, 1)) / 100):.2f}"


NO_NODE = re.compile(r"asks for (.+?), but the largest node its placement allows")
OWN = ("byok8s-conformance-wf.json", "byok8s-conformance-params.json")


@dataclass
class Outcome:
    case: str
    way: str
    status: str  # passed | failed | n/a
    reason: str = ""
    seconds: float = 0.0
    output: str = field(default="", repr=False)  # the run's stderr, for a failure


# Tests whose expected results hold for some ways only: (those ways, why not others).
ON_CLUSTER = ("cluster", "azure")
ONLY_WAYS = {
    "test_groupid_expand_local": (
        ("plain", "plain-bucket", "local"),
        "expects the group ids of a local run (test_groupid_expand_cluster is the remote one; "
        "with a bucket byok8s runs each job as a remote one)",
    ),
    "test_groupid_expand_cluster": (
        (*ON_CLUSTER, "bucket"),
        "expects the group ids of remote jobs (the suite runs it with --cluster)",
    ),
}


class Bucket(Protocol):
    """Where a bucket way keeps the test's files: put them, run, fetch them."""

    url: str
    options: list[str]
    env: dict[str, str]

    def put(self, key: str, data: bytes) -> None: ...
    def fetch(self) -> dict[str, bytes]: ...


def run(case: Case, tests: Path, way: str, work: Path, bucket: Bucket | None = None,
        cluster_options: list[str] | None = None) -> Outcome:  # fmt: skip
    """Run `case` one way in a fresh copy below `work`; never raises for the test's
    own failure."""
    source = tests / case.directory
    only = ONLY_WAYS.get(case.name)
    if only and way not in only[0]:
        return Outcome(case.name, way, "n/a", only[1])
    workdir = work / f"{case.name}-{way}"
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(source, workdir, symlinks=True, ignore=shutil.ignore_patterns(
        "expected-results", "__pycache__"))  # fmt: skip
    missing = _needs(workdir)
    if missing:
        return Outcome(case.name, way, "n/a", missing)
    started = time.monotonic()
    env = {**os.environ, **(bucket.env if bucket else {})}
    env.pop("PYTHONPATH", None)
    # As in an activated environment: a workflow may call `snakemake` or `python`.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if way.startswith("plain"):
        command = _plain(case, workdir)
        if bucket is not None:
            command += ["--default-storage-provider", "s3", "--default-storage-prefix",
                        bucket.url, "--storage-s3-endpoint-url", bucket.options[1]]  # fmt: skip
            env.update(
                {
                    "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": env["AWS_ACCESS_KEY_ID"],
                    "SNAKEMAKE_STORAGE_S3_SECRET_KEY": env["AWS_SECRET_ACCESS_KEY"],
                }
            )
            _put_files(workdir, bucket)
    else:
        command = _byok8s(case, workdir, way, bucket, cluster_options or [])
        if bucket is not None:
            _put_files(workdir, bucket)
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        return Outcome(case.name, way, "failed", f"timed out after {TIMEOUT} s",
                       time.monotonic() - started, str(exc.stderr or ""))  # fmt: skip
    seconds = time.monotonic() - started
    if done.returncode != 0:
        too_big = NO_NODE.search(done.stderr)
        if too_big:  # this machine's one node has 2 CPUs; the test wants more
            return Outcome(case.name, way, "n/a", f"needs {too_big.group(1)} (the local "
                           "cluster's node has fewer)", seconds, done.stderr)  # fmt: skip
        return Outcome(case.name, way, "failed", _last_error(done.stderr), seconds, done.stderr)
    files = _results(workdir, bucket)
    problem = compare(source / "expected-results", files, case.kwargs)
    if problem:
        return Outcome(case.name, way, "failed", problem, seconds, done.stderr)
    return Outcome(case.name, way, "passed", "", seconds)


def _plain(case: Case, workdir: Path) -> list[str]:
    kw = case.kwargs
    command = [sys.executable, "-m", "snakemake", "-s", kw.get("snakefile", "Snakefile"),
               "--cores", str(kw.get("cores", 3)), "--nocolor"]  # fmt: skip
    if kw.get("config"):
        (workdir / OWN[1]).write_text(json.dumps(kw["config"]))
        command += ["--configfile", OWN[1]]
    return command + _shared(kw) + list(_targets(kw))


def _shared(kw: Mapping[str, Any]) -> list[str]:
    """The options byok8s and snakemake spell alike (--default-resources is
    repeated once a value: snakemake takes that spelling too)."""
    options = ["--forceall"] if kw.get("forceall") else []
    if kw.get("retries"):
        options += ["--retries", str(kw["retries"])]
    for resource in kw.get("default_resources") or ():
        options += ["--default-resources", resource]
    return options


def _byok8s(case: Case, workdir: Path, way: str, bucket: Bucket | None,
            cluster_options: list[str]) -> list[str]:  # fmt: skip
    kw = case.kwargs
    config: dict[str, Any] = {"snakefile": kw.get("snakefile", "Snakefile")}
    if _targets(kw):
        config["targets"] = list(_targets(kw))
    (workdir / OWN[0]).write_text(json.dumps(config))
    (workdir / OWN[1]).write_text(json.dumps(kw.get("config") or {}))
    command = [str(Path(sys.executable).parent / "byok8s"), *OWN, "--cores",
               str(kw.get("cores", 3))]  # fmt: skip
    # --cores as the suite gives it (3 unless the test says), on the cluster too:
    # it caps every rule's threads, which tests of {threads} count on.
    command += cluster_options
    if way in ("cluster", "azure"):
        command += ["--cpu-scalar", small_node_scalar(int(kw.get("cores", 3)))]
    command += _shared(kw)
    if bucket is not None:
        command += ["--bucket", bucket.url, *bucket.options]
        if way == "bucket":
            command += ["--executor", "local"]
    return command


def _targets(kw: Mapping[str, Any]) -> list[str]:
    targets = kw.get("targets") or []
    return [targets] if isinstance(targets, str) else list(targets)


NETWORK = re.compile(r"storage\.(?:http|ftp|sftp|zenodo|xrootd|webdav|s3|gcs|azure)\(")
IMPORT = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_][\w]*)", re.MULTILINE)


def _needs(workdir: Path) -> str:
    """What the test's workflow needs that this machine lacks ("" if nothing): a
    program, or a Python package its Snakefiles or scripts import."""
    import importlib.util

    text = "\n".join(p.read_text(errors="replace") for p in workdir.rglob("*")
                     if p.is_file() and p.suffix in ("", ".smk", ".py") and p.stat().st_size
                     < 200_000)  # fmt: skip
    for tool in ("Rscript", "julia", "conda ", "singularity", "apptainer", "docker"):
        if tool in text and shutil.which(tool.strip()) is None:
            return f"needs {tool.strip()}, not on this machine"
    if NETWORK.search(text):
        return "needs network (a storage.http/ftp/... input)"
    if "pepfile" in text and importlib.util.find_spec("peppy") is None:
        return "needs the Python package peppy (pepfile:), not installed here"
    local = {p.stem for p in workdir.rglob("*.py")} | {p.name for p in workdir.rglob("*")
                                                        if p.is_dir()}  # fmt: skip
    for module in sorted(set(IMPORT.findall(text)) - local):
        if importlib.util.find_spec(module) is None:
            return f"needs the Python package {module}, not installed here"
    return ""


def _put_files(workdir: Path, bucket: Bucket) -> None:
    for path in sorted(workdir.rglob("*")):
        if path.is_file() and path.name not in OWN:
            bucket.put(path.relative_to(workdir).as_posix(), path.read_bytes())


def _results(workdir: Path, bucket: Bucket | None) -> dict[str, bytes] | Path:
    return workdir if bucket is None else bucket.fetch()


def compare(expected: Path, produced: dict[str, bytes] | Path, kwargs: Mapping[str, Any]) -> str:
    """What differs from the expected results ("" if nothing), as the suite checks."""
    if kwargs.get("check_results") is False or not expected.is_dir():
        return ""
    for path in sorted(expected.rglob("*")):
        name = path.relative_to(expected).as_posix()
        hidden = any(part.startswith(".") for part in name.split("/"))  # as glob("**/**")
        if not path.is_file() or hidden or name.endswith("_WIN"):
            continue
        data = _produced(produced, name)
        if data is None:
            return f"expected file {name} not produced"
        if kwargs.get("check_md5", True) and _md5(data) != _md5(path.read_bytes()):
            return f"wrong content in {name}"
    return ""


def _produced(produced: dict[str, bytes] | Path, name: str) -> bytes | None:
    if isinstance(produced, Path):
        path = produced / name
        return path.read_bytes() if path.is_file() else None
    return produced.get(name)


def _md5(data: bytes) -> str:
    return hashlib.md5(data.strip(), usedforsecurity=False).hexdigest()


def _last_error(stderr: str) -> str:
    """The run's error line, with the first failed job's message (its cause)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    error = next((x for x in reversed(lines) if x.startswith("byok8s: error:")), None)
    if error is None:
        return (lines[-1] if lines else "no output")[:300]
    cause = next((x for x in lines if x.startswith(("message:", "| ", "log ", "hint:"))
                  and "pod log ends" not in x), "")  # fmt: skip
    text = error[len("byok8s: error:") :].split("; see the error above")[0].strip()
    return (text + (f" ({cause})" if cause else ""))[:400]
