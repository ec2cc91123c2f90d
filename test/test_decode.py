"""decode.py against the kubernetes client's own decoding: for every model type
byok8s reads, JSON with every field of every object in it filled (and with fields
left out, and nulls) gives equal objects of the same classes."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import kubernetes.client.models as models
import pytest
from kubernetes.client import ApiClient

from snakemake_executor_plugin_byok8s import apis, decode

# What byok8s reads from the API server (executor, watch, nodes, leftovers,
# doctor, fix-dns, logs), and the lists they come in.
READ = [
    "V1Pod", "V1PodList", "V1Job", "V1JobList", "V1Node", "V1NodeList", "V1Secret",
    "V1SecretList", "V1Namespace", "V1ConfigMap", "V1Status", "V1SelfSubjectAccessReview",
    "CoreV1EventList", "V1LimitRangeList",
]  # fmt: skip
SAMPLES = {
    "str": "text", "int": 7, "long": 8, "float": 1.5, "bool": True,
    "datetime": "2026-12-06T21:20:30Z", "date": "2026-12-06",
    "object": {"free": ["form", 1]},
}  # fmt: skip


def filled(type_name: str, every: int = 1, path: tuple[str, ...] = ()) -> Any:
    """JSON for `type_name` with every `every`th field of each object filled (the
    rest left out), through every nested type (one that holds itself, once)."""
    if type_name.startswith("list["):
        return [filled(type_name[5:-1], every, path), filled(type_name[5:-1], every, path)]
    if type_name.startswith("dict("):
        return {"k": filled(type_name[5:-1].split(", ", 1)[1], every, path)}
    if type_name in SAMPLES:
        return SAMPLES[type_name]
    if type_name in path:
        return None
    klass = getattr(models, type_name)
    out = {}
    for i, (attr, kind) in enumerate(klass.openapi_types.items()):
        if i % every == 0:
            out[klass.attribute_map[attr]] = filled(kind, every, (*path, type_name))
    return out


def stock(data: Any, type_name: str) -> Any:
    return ApiClient().deserialize(SimpleNamespace(data=json.dumps(data)), type_name)


def outcome(decoding: Any, data: Any, type_name: str) -> tuple[str, Any]:
    """The object, or the error (a required field left out: the client refuses it)."""
    try:
        return "object", decoding(data, type_name)
    except ValueError as exc:
        return "error", str(exc)


def types_in(type_name: str, seen: set[str]) -> set[str]:
    while type_name.startswith(("list[", "dict(")):
        type_name = type_name[5:-1].split(", ", 1)[-1]
    if type_name in SAMPLES or type_name in seen:
        return seen
    seen.add(type_name)
    for kind in getattr(models, type_name).openapi_types.values():
        types_in(kind, seen)
    return seen


@pytest.mark.parametrize("type_name", READ)
@pytest.mark.parametrize("every", [1, 2, 3])
def test_every_field_of_every_nested_type_decodes_as_the_client_decodes_it(
    type_name: str, every: int
) -> None:
    data = filled(type_name, every=every)
    (ours_kind, ours), (theirs_kind, theirs) = (
        outcome(decode.model, data, type_name),
        outcome(stock, data, type_name),
    )
    assert ours_kind == theirs_kind and type(ours) is type(theirs) and ours == theirs
    if every == 1:  # everything filled: objects, none refused
        assert ours_kind == "object"
    if ours_kind == "object":
        assert ours.to_dict() == theirs.to_dict()  # datetimes included


def test_the_types_compared_are_many() -> None:
    """The comparison above reaches the pod's whole tree (containers, probes,
    volumes of every kind...), not only its top."""
    assert len(types_in("V1Pod", set())) > 100


def test_nulls_timestamps_and_odd_values_decode_as_the_client_decodes_them() -> None:
    pod = {
        "metadata": {"name": "p", "labels": None, "creationTimestamp": "2026-12-06T21:20:30.5Z",
                     "deletionTimestamp": None, "deletionGracePeriodSeconds": "30"},
        "status": {"phase": 5, "containerStatuses": None, "startTime": "2026-12-06 21:20:30"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "950m"}},
                                 "ports": [{"containerPort": 80, "name": None}]}]},
    }  # fmt: skip
    ours, theirs = decode.model(pod, "V1Pod"), stock(pod, "V1Pod")
    assert ours == theirs and ours.metadata.deletion_grace_period_seconds == 30
    assert ours.metadata.creation_timestamp == theirs.metadata.creation_timestamp
    assert ours.status.start_time == theirs.status.start_time and ours.status.phase == "5"
    assert decode.model(None, "V1Pod") is None


def test_a_client_prepared_by_byok8s_decodes_its_responses_here() -> None:
    import kubernetes.client as k8s

    core = k8s.CoreV1Api(k8s.ApiClient())
    batch = k8s.BatchV1Api(core.api_client)  # one client under two APIs: prepared once
    apis.prepare_clients(core, batch)
    client = core.api_client
    assert client.user_agent.startswith("byok8s/") and client.byok8s_decoding
    installed = client.deserialize
    decode.cheap_decoding(client)  # again, as for another API on the same client
    assert client.deserialize is installed
    data = filled("V1JobList")
    response = SimpleNamespace(data=json.dumps(data))
    assert client.deserialize(response, "V1JobList") == stock(data, "V1JobList")
    # The decoding is ours: a field the client would build its own way is not asked of it.
    calls: list[str] = []
    original = decode.model
    try:
        decode.model = lambda d, t: calls.append(t) or original(d, t)  # type: ignore[assignment]
        client.deserialize(response, "V1JobList")
    finally:
        decode.model = original  # type: ignore[assignment]
    assert calls == ["V1JobList"]
    not_json = SimpleNamespace(data="plain text")
    assert client.deserialize(not_json, "str") == "plain text"
