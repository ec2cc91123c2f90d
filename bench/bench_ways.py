"""The ways of running the same work, for bench.py:

- byok8s;
- plain: `snakemake --executor kubernetes` from a venv of its own holding only
  snakemake, the Kubernetes executor and the S3 storage plugin (what an S3 user
  installs), at the versions byok8s's venv has; its pods pip-install that one
  storage plugin (with its dependencies) from a wheelhouse served on the bridge;
- plain-all: the same from byok8s's own venv, whose pods pip-install every storage
  plugin registered there (S3, Azure, GCS, byok8s's Azure);
- bare: Kubernetes Jobs running the command, no staging (the floor);
- tool: byok8s with the trivial rule in a tool image (no Python; the job runtime
  comes from a container of the job image beside the job's), as a rule with its
  own `container:` runs.

Each run gives its seconds, the main process's CPU seconds and peak memory, and
the API requests (measure.py)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import localcluster  # test/, on sys.path through bench.py
import measure

ROOT = Path(__file__).resolve().parent.parent

SNAKEFILE = """
N = int(config.get("count", 1))

rule all:
    input: expand("out/{i}.txt", i=range(N))

rule one:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} > {output}"

rule copy:
    input: "big.bin"
    output: "big.out"
    shell: "cp {input} {output}"
"""
KEY, SECRET = "AKIAbyok8sbench", "byok8s-bench-secret"
TOOL_IMAGE = "byok8s-tool/bwa:0.7.17"  # test/cluster/tool-images.txt: Debian's bwa, busybox
BUCKET = "bench"


class Bench:
    def __init__(self, cluster: Any, s3: Any, bin_dir: Path) -> None:
        self.cluster, self.s3, self.bin = cluster, s3, bin_dir
        self.endpoint = f"http://{s3.host}:{s3.port}"
        self.root = Path(tempfile.mkdtemp(prefix="byok8s-bench-"))
        self.namespace = f"bench-{uuid.uuid4().hex[:6]}"
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": KEY,
            "SNAKEMAKE_STORAGE_S3_SECRET_KEY": SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        self.index: subprocess.Popen | None = None
        self.trivial_byok8s: list[float] = []
        self.api = measure.Api(cluster)
        self.plain_bin: Path | None = None

    # --- set-up ----------------------------------------------------------------

    def prepare(self, ways: list[str]) -> None:
        import kubernetes

        api = self.cluster.api()
        api.user_agent = measure.AGENT  # the bare Jobs' requests are told apart by it
        self.core = kubernetes.client.CoreV1Api(api)
        self.batch = kubernetes.client.BatchV1Api(api)
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        self.client().create_bucket(Bucket=BUCKET)
        compile_own()
        packages: set[str] = set()
        if "plain" in ways:
            self.plain_bin = plain_venv(self.bin)
            packages |= storage_packages(self.plain_bin)
        if "plain-all" in ways:
            packages |= storage_packages(self.bin)
        if packages:
            self._serve_wheelhouse(sorted(packages))

    def idle_requests(self, seconds: float = 20.0) -> float:
        """All clients' API requests a second while nothing of ours runs."""
        mark = self.api.mark()
        time.sleep(seconds)
        return round(sum(self.api.since(mark)["all"].values()) / (seconds + 1.5), 2)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=KEY, aws_secret_access_key=SECRET,
        )  # fmt: skip

    def _serve_wheelhouse(self, packages: list[str]) -> None:
        """Plain snakemake pods pip-install the storage plugins of its venv: served here."""
        house = Path(localcluster.CACHE) / "wheelhouse"
        stamp = house / ("packages-" + "-".join(packages).replace("/", "_")[:200])
        if not stamp.exists():
            house.mkdir(parents=True, exist_ok=True)
            constraints = house / "constraints.txt"
            constraints.write_text(pins(self.bin))
            subprocess.run(
                [str(self.bin / "python"), "-m", "pip", "wheel", "-q", "-w", str(house),
                 "-c", str(constraints), *packages], check=True,
            )  # fmt: skip
            stamp.write_text("\n".join(packages))
        port = 8765
        self.index = subprocess.Popen(
            [str(self.bin / "python"), "-m", "http.server", str(port), "--bind",
             self.cluster.gateway, "--directory", str(house)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.env["PIP_NO_INDEX"] = "1"
        self.env["PIP_FIND_LINKS"] = f"http://{self.cluster.gateway}:{port}/"
        self.env["PIP_TRUSTED_HOST"] = self.cluster.gateway
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # serving once it answers
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.env["PIP_FIND_LINKS"], timeout=2).close()
                return
            time.sleep(0.1)
        raise RuntimeError("the wheelhouse's web server did not answer")

    def close(self) -> None:
        if self.index is not None:
            self.index.terminate()
        with contextlib.suppress(Exception):  # the cluster stops next anyway
            self.core.delete_namespace(self.namespace)
        shutil.rmtree(self.root, ignore_errors=True)

    def _workdir(self, params: dict[str, Any]) -> Path:
        work = self.root / uuid.uuid4().hex[:8]
        work.mkdir()
        (work / "Snakefile").write_text(SNAKEFILE)
        (work / "wf.json").write_text(json.dumps({"snakefile": "Snakefile", "targets": ["all"]}))
        (work / "wf-copy.json").write_text(
            json.dumps({"snakefile": "Snakefile", "targets": ["big.out"]})
        )
        (work / "wf-tool.json").write_text(json.dumps({
            "snakefile": "Snakefile", "targets": ["all"],
            "rules": {"one": {"image": TOOL_IMAGE}}}))  # fmt: skip
        (work / "params.json").write_text(json.dumps(params))
        return work

    # --- the ways --------------------------------------------------------------

    def trivial(self, way: str, n: int, jobs: int) -> dict[str, Any]:
        """One run of `n` trivial jobs, at most `jobs` at once: its seconds, the main
        process's CPU and memory, and the API requests (all clients', and the run's
        own client's)."""
        mark = self.api.mark()
        if way == "bare":
            measured: dict[str, Any] = {"seconds": round(self._bare(n, jobs), 3)}
            own = measure.AGENT
        else:
            work = self._workdir({"count": n})
            prefix = f"s3://{BUCKET}/{work.name}"
            if way in ("byok8s", "tool"):
                wf = "wf-tool.json" if way == "tool" else "wf.json"
                measured = self._byok8s(work, wf, prefix, jobs) | pod_costs(work)
                own = "byok8s"
            else:
                bin_dir = self.plain_bin if way == "plain" else self.bin
                assert bin_dir is not None
                measured = self._plain(bin_dir, work, prefix, jobs, n)
                own = "OpenAPI-Generator"  # the kubernetes library's default
            if way == "byok8s" and n == 1:
                self.trivial_byok8s.append(measured["seconds"])
        api = self.api.since(mark)
        return {**measured, "api_all": api["all"], "api_own": api["by_agent"].get(own, {}),
                "api_agents": {a: sum(c.values()) for a, c in api["by_agent"].items()}}  # fmt: skip

    def _byok8s(self, work: Path, wf: str, prefix: str, jobs: int) -> dict[str, Any]:
        command = [
            str(self.bin / "byok8s"), wf, "params.json", "--bucket", prefix,
            "--s3-endpoint-url", self.endpoint, "-k", self.namespace,
            "--container-image", self.cluster.image, "--jobs", str(jobs),
        ]  # fmt: skip
        return measure.run(command, work, self.env)

    def _plain(self, bin_dir: Path, work: Path, prefix: str, jobs: int, n: int) -> dict[str, Any]:
        command = [
            str(bin_dir / "snakemake"), "all", "--snakefile", "Snakefile",
            "--executor", "kubernetes",
            "--kubernetes-namespace", self.namespace, "--container-image", self.cluster.image,
            "--default-storage-provider", "s3", "--default-storage-prefix", prefix,
            "--storage-s3-endpoint-url", self.endpoint, "--jobs", str(jobs),
            "--envvars", "PIP_NO_INDEX", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST",
            "--config", f"count={n}",
        ]  # fmt: skip
        return measure.run(command, work, self.env)

    def _bare(self, n: int, jobs: int) -> float:
        """N Jobs of the same image and command, at most `jobs` at once: the floor."""
        from kubernetes import client as k8s

        run = uuid.uuid4().hex[:8]
        started = time.monotonic()
        pending = list(range(n))
        running: set[str] = set()
        done = 0
        while done < n:
            while pending and len(running) < jobs:
                i = pending.pop(0)
                name = f"bare-{run}-{i}"
                body = _bare_job(name, run, i, self.cluster.image)
                self.batch.create_namespaced_job(self.namespace, body)
                running.add(name)
            listing = self.batch.list_namespaced_job(self.namespace, label_selector=f"bare={run}")
            for job in listing.items:
                name = job.metadata.name
                if name in running and (job.status.succeeded or job.status.failed):
                    if job.status.failed:
                        raise RuntimeError(f"bare job {name} failed")
                    running.discard(name)
                    done += 1
                    self.batch.delete_namespaced_job(
                        name, self.namespace, body=k8s.V1DeleteOptions(
                            propagation_policy="Background"),
                    )  # fmt: skip
            time.sleep(0.1)
        return time.monotonic() - started

    def staging(self, mb: int, reps: int) -> dict[str, Any]:
        """byok8s staging a file in and out against boto3's own managed transfer."""
        s3 = self.client()
        big = self.root / "big.bin"
        with open(big, "wb") as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
        boto, ours, alone = [], [], []
        for _ in range(reps):
            key = f"raw-{uuid.uuid4().hex[:8]}/big.bin"
            started = time.monotonic()
            s3.upload_file(str(big), BUCKET, key)
            s3.download_file(BUCKET, key, str(self.root / "big.back"))
            boto.append(2 * mb / (time.monotonic() - started))
            work = self._workdir({})
            s3.copy_object(Bucket=BUCKET, Key=f"{work.name}/big.bin",
                           CopySource={"Bucket": BUCKET, "Key": key})  # fmt: skip
            seconds = self._byok8s(work, "wf-copy.json", f"s3://{BUCKET}/{work.name}", 1)["seconds"]
            baseline = min(self.trivial_byok8s) if self.trivial_byok8s else 0.0
            ours.append(2 * mb / max(seconds - baseline, 0.1))
            alone.append(staged_mb_s(work))
        big.unlink()
        boto_mb_s, ours_mb_s = sorted(boto)[len(boto) // 2], sorted(ours)[len(ours) // 2]
        return {
            "mb": mb, "reps": reps, "boto3_mb_s": boto_mb_s, "byok8s_mb_s": ours_mb_s,
            "ratio": ours_mb_s / boto_mb_s,
            "runs": {"boto3": boto, "byok8s": ours, "byok8s_staging_alone": alone},
        }  # fmt: skip


def _used(work: Path) -> list[dict[str, Any]]:
    """What each job of a run measured of itself (its usage line, in the run record)."""
    (journal,) = work.glob(".byok8s/runs/*/jobs.jsonl")
    return [e["usage"] for e in map(json.loads, journal.read_text().splitlines())
            if e.get("event") == "ended" and e.get("usage")]  # fmt: skip


def pod_costs(work: Path) -> dict[str, float]:
    """The median job's own wall and CPU seconds in its pod, from its Python's start
    to its end (its usage line): what each pod adds beyond a bare one's command."""
    used = _used(work)
    if not used:
        return {}
    return {"pod_wall_s": round(statistics.median(u["wall_s"] for u in used), 3),
            "pod_cpu_s": round(statistics.median(u["cpu_s"] for u in used), 3)}  # fmt: skip


def staged_mb_s(work: Path) -> float:
    """MB/s of the staging alone in a run's one job: the bytes it staged in and out
    over the seconds it took, as the job measured them (its usage line, kept in the
    run record), without the job's start, its command or the main process's part."""
    (used,) = _used(work)
    staged = used["staged_in_bytes"] + used["staged_out_bytes"]
    return staged / 2**20 / max(used["staged_in_s"] + used["staged_out_s"], 1e-3)


def _bare_job(name: str, run: str, i: int, image: str) -> Any:
    from kubernetes import client as k8s

    # The same CPU request as a one-thread Snakemake job (0.95 CPU), so the floor
    # packs as many pods on the node as the other two ways can.
    container = k8s.V1Container(
        name="job", image=image, command=["/bin/sh", "-c", f"echo {i} > /tmp/out"],
        image_pull_policy="IfNotPresent",
        resources=k8s.V1ResourceRequirements(requests={"cpu": "950m"}),
    )  # fmt: skip
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=name, labels={"bare": run}),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels={"bare": run}),
                spec=k8s.V1PodSpec(containers=[container], restart_policy="Never"),
            ),
        ),
    )


OWN_PACKAGES = ("byok8s", "snakemake_executor_plugin_byok8s",
                "snakemake_storage_plugin_byok8s_azure")  # fmt: skip


def job_image_tag(root: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """The job image's tag for the checkout at `root`: job-image.sh's key of its
    sources and of the versions installed in the venv that `env`'s PYTHON names."""
    script = str(root / "test/cluster/job-image.sh")
    key = subprocess.run(["bash", script, "--key"], capture_output=True, text=True,
                         check=True, env=env).stdout.strip()  # fmt: skip
    return f"byok8s-job:{key}"


def require_current_image(cluster: Any) -> None:
    """Refuse a cluster whose job image was built from other sources than this
    checkout's (one started before the code changed): its pods would run old code."""
    tag = job_image_tag()
    if cluster.image != tag:
        raise SystemExit(
            f"bench: the cluster's job image {cluster.image} is not this checkout's "
            f"({tag}): its pods would run other code; load it with "
            f"bash test/cluster/up.sh {cluster.state}"
        )


def compile_own(root: Path = ROOT) -> None:
    """byok8s's bytecode (of the checkout at `root`), as a wheel's install compiles
    it: this checkout's editable install would otherwise compile every module of
    byok8s in every run where PYTHONDONTWRITEBYTECODE is set (as on CI machines)."""
    import compileall

    for package in OWN_PACKAGES:
        compileall.compile_dir(str(root / package), quiet=1)


def pins(bin_dir: Path) -> str:
    """The versions installed in a venv, as pip constraints."""
    return subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=freeze", "--exclude-editable"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


PLAIN_PACKAGES = (
    "snakemake",
    "snakemake-executor-plugin-kubernetes",
    "snakemake-storage-plugin-s3",
)


def plain_venv(bin_dir: Path) -> Path:
    """A venv with only what an S3 user of plain Snakemake installs (snakemake, the
    Kubernetes executor, the S3 storage plugin), at the versions of byok8s's venv
    (and its dependencies at those versions too); made once, from PyPI. Its bin/."""
    constraints = pins(bin_dir)
    wanted = [line for line in constraints.splitlines()
              if line.split("==")[0].lower() in PLAIN_PACKAGES]  # fmt: skip
    key = hashlib.sha256(constraints.encode()).hexdigest()[:12]
    venv = Path(localcluster.CACHE) / f"plain-venv-{key}"
    done = venv / "installed"
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(bin_dir / "python"), "-m", "venv", str(venv)], check=True)
        (venv / "constraints.txt").write_text(constraints)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "-c", str(venv / "constraints.txt"), *wanted], check=True)  # fmt: skip
        done.write_text("\n".join(wanted) + "\n")
    return venv / "bin"


def storage_packages(bin_dir: Path) -> set[str]:
    """The storage plugins registered in a venv: what its plain pods pip-install."""
    code = (
        "from snakemake_interface_storage_plugins.registry import StoragePluginRegistry as R\n"
        "r = R()\nprint(' '.join(r.get_plugin_package_name(p) for p in r.get_registered_plugins()))"
    )
    # Not from this checkout, whose own storage plugin is a package here.
    out = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True,
                         check=True, cwd="/").stdout  # fmt: skip
    return set(out.split())
