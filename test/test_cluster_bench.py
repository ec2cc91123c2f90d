"""bench/ on the local cluster, one trivial job each way it measures in CI's time:
byok8s and bare Jobs, with the main process's costs and the API requests counted
(the benchmark itself stays out of CI)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def bench(cluster: Cluster, cluster_s3_server: Any) -> Iterator[Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_ways import Bench

        way = Bench(cluster, cluster_s3_server, Path(sys.executable).parent)
        way.prepare(["byok8s", "bare"])
        yield way
        way.close()
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_a_byok8s_run_is_measured_with_its_own_api_requests(bench: Any) -> None:
    run = bench.trivial("byok8s", 1, 1)
    assert run["seconds"] > 0 and run["cpu_s"] > 0.5 and run["rss_mb"] > 50
    # Its own requests, told apart by byok8s's user agent: one Job created and deleted.
    assert run["api_own"].get("POST jobs") == 1 and run["api_own"].get("DELETE jobs") == 1
    assert run["api_own"].get("POST secrets") == 1
    assert "OpenAPI-Generator" not in run["api_agents"]  # every client of byok8s names itself
    # All clients: the Job controller made the pod, the scheduler bound it.
    assert run["api_all"].get("POST pods", 0) >= 1 and run["api_all"].get("POST pods/binding")


def test_a_bare_run_is_counted_by_the_benchmarks_own_agent(bench: Any) -> None:
    run = bench.trivial("bare", 1, 1)
    assert run["api_own"].get("POST jobs") == 1 and "cpu_s" not in run
