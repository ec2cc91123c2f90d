"""The Kubernetes API groups/versions byok8s calls (snakemake_executor_plugin_byok8s/
apis.py) are the ones its code uses, through the kubernetes client or as an
`apiVersion`, and none is one that current Kubernetes no longer serves."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import kubernetes
import snakemake_executor_plugin_kubernetes as stock

from snakemake_executor_plugin_byok8s import apis

ROOT = Path(__file__).resolve().parent.parent
CLIENT = re.compile(r"\b([A-Z][A-Za-z]*V\d\w*Api)\b")
API_VERSION = re.compile(r"""api_?[vV]ersion['"]?\s*[:=]\s*['"]([^'"]+)['"]""")


def sources() -> dict[Path, str]:
    """byok8s, its executor plugin (less the list itself) and the stock plugin."""
    files = [*ROOT.glob("byok8s/**/*.py"), *ROOT.glob("snakemake_executor_plugin_byok8s/*.py"),
             Path(inspect.getfile(stock))]  # fmt: skip
    return {f: f.read_text() for f in files if f.name != "apis.py"}


def served_by(client: str) -> set[str]:
    """The group/versions a client class sends requests to, read from its paths."""
    text = inspect.getsource(getattr(kubernetes.client, client))
    return set(re.findall(r"'/apis?/((?:[a-z0-9.]+/)?v\w+)/", text))


def test_the_list_holds_every_api_the_code_calls() -> None:
    used = {name: path.name for path, text in sources().items() for name in CLIENT.findall(text)}
    assert set(used) == set(apis.CLIENTS), f"update apis.py: the code uses {used}"
    for client, version in apis.CLIENTS.items():
        assert served_by(client) == {version}, client
    assert set(apis.CLIENTS.values()) == set(apis.API_VERSIONS)
    literal = {v for text in sources().values() for v in API_VERSION.findall(text)}
    assert literal <= set(apis.API_VERSIONS), literal


def test_each_is_generally_available_and_still_served() -> None:
    for version in apis.API_VERSIONS:
        assert re.fullmatch(r"(?:[a-z0-9.]+/)?v\d+", version), f"{version} is not GA"
        assert version not in apis.REMOVED, f"{version} is gone since {apis.REMOVED[version]}"


def test_the_check_finds_a_client_and_a_version_it_does_not_know() -> None:
    assert CLIENT.findall("api = kubernetes.client.PolicyV1beta1Api(c)") == ["PolicyV1beta1Api"]
    assert API_VERSION.findall('{"apiVersion": "policy/v1beta1"}') == ["policy/v1beta1"]
    assert served_by("PolicyV1Api") == {"policy/v1"}
