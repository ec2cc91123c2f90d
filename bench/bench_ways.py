"""The ways of running the same work, for bench.py: byok8s, plain
`snakemake --executor kubernetes`, bare Kubernetes Jobs (no staging), and "tool":
byok8s with the trivial rule in a tool image (no Python; the job runtime comes from
a container of the job image beside the job's), as a rule with its own `container:`
runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import localcluster  # test/, on sys.path through bench.py

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

    # --- set-up ----------------------------------------------------------------

    def prepare(self, need_wheelhouse: bool) -> None:
        import kubernetes

        self.core = kubernetes.client.CoreV1Api(self.cluster.api())
        self.batch = kubernetes.client.BatchV1Api(self.cluster.api())
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        self.client().create_bucket(Bucket=BUCKET)
        if need_wheelhouse:
            self._serve_wheelhouse()

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=KEY, aws_secret_access_key=SECRET,
        )  # fmt: skip

    def _serve_wheelhouse(self) -> None:
        """Plain snakemake pods pip-install every storage plugin: serve them here."""
        from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

        registry = StoragePluginRegistry()
        packages = sorted(
            {registry.get_plugin_package_name(p) for p in registry.get_registered_plugins()}
        )
        house = Path(localcluster.CACHE) / "wheelhouse"
        stamp = house / ("packages-" + "-".join(packages).replace("/", "_")[:200])
        if not stamp.exists():
            pins = subprocess.run(
                [str(self.bin / "python"), "-m", "pip", "list", "--format=freeze",
                 "--exclude-editable"], capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            house.mkdir(parents=True, exist_ok=True)
            constraints = house / "constraints.txt"
            constraints.write_text(pins)
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
        time.sleep(1)

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

    def trivial(self, way: str, n: int, jobs: int) -> float:
        if way == "bare":
            return self._bare(n, jobs)
        work = self._workdir({"count": n})
        prefix = f"s3://{BUCKET}/{work.name}"
        if way == "tool":
            return self._byok8s(work, "wf-tool.json", prefix, jobs)
        if way == "byok8s":
            seconds = self._byok8s(work, "wf.json", prefix, jobs)
            if n == 1:
                self.trivial_byok8s.append(seconds)
            return seconds
        return self._plain(work, prefix, jobs, n)

    def _byok8s(self, work: Path, wf: str, prefix: str, jobs: int) -> float:
        command = [
            str(self.bin / "byok8s"), wf, "params.json", "--bucket", prefix,
            "--s3-endpoint-url", self.endpoint, "-k", self.namespace,
            "--container-image", self.cluster.image, "--jobs", str(jobs),
        ]  # fmt: skip
        return _timed(command, work, self.env)

    def _plain(self, work: Path, prefix: str, jobs: int, n: int) -> float:
        command = [
            str(self.bin / "snakemake"), "all", "--snakefile", "Snakefile",
            "--executor", "kubernetes",
            "--kubernetes-namespace", self.namespace, "--container-image", self.cluster.image,
            "--default-storage-provider", "s3", "--default-storage-prefix", prefix,
            "--storage-s3-endpoint-url", self.endpoint, "--jobs", str(jobs),
            "--envvars", "PIP_NO_INDEX", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST",
            "--config", f"count={n}",
        ]  # fmt: skip
        return _timed(command, work, self.env)

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
        boto, ours = [], []
        for _ in range(reps):
            key = f"raw-{uuid.uuid4().hex[:8]}/big.bin"
            started = time.monotonic()
            s3.upload_file(str(big), BUCKET, key)
            s3.download_file(BUCKET, key, str(self.root / "big.back"))
            boto.append(2 * mb / (time.monotonic() - started))
            work = self._workdir({})
            s3.copy_object(Bucket=BUCKET, Key=f"{work.name}/big.bin",
                           CopySource={"Bucket": BUCKET, "Key": key})  # fmt: skip
            seconds = self._byok8s(work, "wf-copy.json", f"s3://{BUCKET}/{work.name}", 1)
            baseline = min(self.trivial_byok8s) if self.trivial_byok8s else 0.0
            ours.append(2 * mb / max(seconds - baseline, 0.1))
        big.unlink()
        boto_mb_s, ours_mb_s = sorted(boto)[len(boto) // 2], sorted(ours)[len(ours) // 2]
        return {
            "mb": mb, "reps": reps, "boto3_mb_s": boto_mb_s, "byok8s_mb_s": ours_mb_s,
            "ratio": ours_mb_s / boto_mb_s, "runs": {"boto3": boto, "byok8s": ours},
        }  # fmt: skip


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


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds
