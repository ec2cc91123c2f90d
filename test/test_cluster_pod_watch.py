"""The executor's pod watch against the real local cluster: it sees a pod of its
run appear and finish without anyone polling, and ignores pods of other runs."""

from __future__ import annotations

import time

import pytest
from kubernetes import client as k8s
from localcluster import Cluster

from snakemake_executor_plugin_byok8s.podspec import RUN_LABEL
from snakemake_executor_plugin_byok8s.watch import PodWatcher

pytestmark = pytest.mark.cluster


def job(name: str, run: str, image: str) -> k8s.V1Job:
    labels = {RUN_LABEL: run}
    container = k8s.V1Container(name="snakemake", image=image, command=["/bin/true"])
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(containers=[container], restart_policy="Never"),
            ),
        ),
    )


def test_the_watch_sees_its_runs_pods_finish(cluster: Cluster, namespace: str) -> None:
    api = cluster.api()
    batch = k8s.BatchV1Api(api)
    watcher = PodWatcher(k8s.CoreV1Api(api), namespace, f"{RUN_LABEL}=mine")
    watcher.start()
    try:
        deadline = time.monotonic() + 10
        while not watcher.healthy and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watcher.healthy and watcher.pods_by_job() == {}
        batch.create_namespaced_job(namespace, job("other-run", "theirs", cluster.image))
        batch.create_namespaced_job(namespace, job("my-job", "mine", cluster.image))
        deadline = time.monotonic() + 60
        finished = False
        while not finished and time.monotonic() < deadline:
            watcher.changed.wait(1)
            watcher.changed.clear()
            pods = watcher.pods_by_job()
            assert set(pods) <= {"my-job"}
            for pod in pods.get("my-job", []):
                statuses = pod.status.container_statuses or []
                finished = any(s.state.terminated for s in statuses)
        assert finished, watcher.pods_by_job()
        # The run's end does not wait for the watch's next event (up to 30 s):
        # its open request is shut down.
        started = time.monotonic()
        watcher.stop()
        assert time.monotonic() - started < 1.0
        assert not watcher._thread.is_alive()
    finally:
        watcher.stop()
