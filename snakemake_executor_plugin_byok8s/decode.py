"""The API server's JSON as the kubernetes client's model objects, built cheaply.

The client's own decoding (`ApiClient.deserialize`) makes every nested object of
a pod (each container, port, env var, condition...) build a `Configuration` of
its own, which sets the levels of its loggers (kubernetes-client/python #1867,
#2284), and it finds each field's type by regular expression. Its watch decodes
every event's JSON twice more. In a run with many jobs that was a third of
byok8s's main-process CPU: the watch of the run's pods alone (bench/sample.py).

Here each type's fields are read once from the models' own `openapi_types` and
`attribute_map`, and every object is built by its class's public constructor with
one shared `Configuration`: the same classes with the same values as the client
makes (test_decode.py compares the two on every model type byok8s reads).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import cache
from typing import Any

Decoder = Callable[[Any], Any]


def model(data: Any, type_name: str) -> Any:
    """`data` (parsed JSON) as the client's `type_name` makes it: a model class
    ("V1Pod"), "list[V1Container]", "dict(str, str)", "datetime", "str"..."""
    return decoder(type_name)(data)


def cheap_decoding(api_client: Any) -> None:
    """`api_client` (a kubernetes.client.ApiClient) decodes its responses here;
    once (two APIs may share one client)."""
    if getattr(api_client, "byok8s_decoding", False):
        return
    api_client.byok8s_decoding = True
    stock = api_client.deserialize

    def deserialize(response: Any, response_type: Any) -> Any:
        if not isinstance(response_type, str) or response_type == "file":
            return stock(response, response_type)
        try:
            data = json.loads(response.data)
        except ValueError:  # as the client: a body that is not JSON is kept as it is
            data = response.data
        return model(data, response_type)

    api_client.deserialize = deserialize


@cache
def decoder(type_name: str) -> Decoder:
    if type_name.startswith("list["):
        return _list(type_name[len("list[") : -1])
    if type_name.startswith("dict("):
        return _dict(type_name[len("dict(") : -1].split(", ", 1)[1])
    if type_name in _PRIMITIVES:
        return _primitive(_PRIMITIVES[type_name])
    if type_name == "object":
        return _same
    if type_name == "datetime":
        return _datetime
    if type_name == "date":
        return _date
    return _model(type_name)


_PRIMITIVES: dict[str, type] = {"str": str, "int": int, "long": int, "float": float, "bool": bool}


def _same(data: Any) -> Any:
    return data


def _list(inner: str) -> Decoder:
    def decode(data: Any) -> Any:
        if data is None:
            return None
        item = decoder(inner)
        return [item(x) for x in data]

    return decode


def _dict(inner: str) -> Decoder:
    def decode(data: Any) -> Any:
        if data is None:
            return None
        item = decoder(inner)
        return {k: item(v) for k, v in data.items()}

    return decode


def _primitive(kind: type) -> Decoder:
    def decode(data: Any) -> Any:
        if data is None or type(data) is kind:
            return data
        try:  # as the client does
            return kind(data)
        except UnicodeEncodeError:
            return str(data)
        except TypeError:
            return data

    return decode


def _timestamp(kind: type[dt.date], type_name: str) -> Decoder:
    def decode(data: Any) -> Any:
        if data is None:
            return None
        try:
            return kind.fromisoformat(data)
        except (TypeError, ValueError):  # not RFC 3339: the client's own parser
            return _stock().deserialize(_Body(json.dumps(data)), type_name)

    return decode


_datetime = _timestamp(dt.datetime, "datetime")
_date = _timestamp(dt.date, "date")


def _model(type_name: str) -> Decoder:
    import kubernetes.client.models as models

    klass = getattr(models, type_name)
    if hasattr(klass, "get_real_child_model"):  # a type with subtypes: the client's way
        return lambda data: _stock().deserialize(_Body(json.dumps(data)), type_name)
    if not klass.openapi_types:
        return _same
    # (JSON key, attribute, type); each type's decoder is found when first needed,
    # so types that hold themselves (V1JSONSchemaProps) are fine.
    fields = [(klass.attribute_map[a], a, t) for a, t in klass.openapi_types.items()]
    config = _config()

    def decode(data: Any) -> Any:
        if data is None:
            return None
        if not isinstance(data, dict):  # as the client: no fields from a non-object
            return klass(local_vars_configuration=config)
        kwargs = {attr: decoder(kind)(data[key]) for key, attr, kind in fields if key in data}
        return klass(local_vars_configuration=config, **kwargs)

    return decode


@cache
def _config() -> Any:
    from kubernetes.client import Configuration

    return Configuration()


@cache
def _stock() -> Any:
    from kubernetes.client import ApiClient

    return ApiClient()


class _Body:
    """What ApiClient.deserialize reads a response's body from."""

    def __init__(self, data: str) -> None:
        self.data = data
