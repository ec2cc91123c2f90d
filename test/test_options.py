"""The pod options' command-line spelling: what parses, and what each mistake says."""

from __future__ import annotations

import re

import pytest

from snakemake_executor_plugin_byok8s import options
from snakemake_executor_plugin_byok8s.options import Claim, Scratch, Toleration


@pytest.mark.parametrize(
    "text, expected",
    [
        ("refdata:/ref", Claim("refdata", "/ref")),
        ("refdata:/ref:ro", Claim("refdata", "/ref", True)),
        ("ws.shared:/data/work/:rw", Claim("ws.shared", "/data/work")),
    ],
)
def test_claims(text: str, expected: Claim) -> None:
    assert options.claim(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/scratch", Scratch("/scratch")),
        ("/scratch:20Gi", Scratch("/scratch", "20Gi")),
        ("/dev/shm:memory", Scratch("/dev/shm", None, True)),
        ("/ram:memory:512Mi", Scratch("/ram", "512Mi", True)),
        ("/ram:1.5G:memory", Scratch("/ram", "1.5G", True)),
    ],
)
def test_scratch(text: str, expected: Scratch) -> None:
    assert options.scratch(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sku=gpu:NoSchedule", Toleration("sku", "gpu", "NoSchedule")),
        ("dedicated", Toleration("dedicated")),
        ("dedicated:NoExecute", Toleration("dedicated", None, "NoExecute")),
        ("example.com/team=", Toleration("example.com/team", "")),
        (
            "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
            Toleration("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),
        ),
    ],
)
def test_tolerations(text: str, expected: Toleration) -> None:
    assert options.toleration(text) == expected


def test_node_selectors() -> None:
    assert options.node_selector("kubernetes.io/arch=amd64") == ("kubernetes.io/arch", "amd64")
    assert options.node_selector("agentpool=") == ("agentpool", "")


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (options.claim, "refdata", "is not of the form CLAIM:/mount/path"),
        (options.claim, "Ref_Data:/ref", "not a valid claim name"),
        (options.claim, "refdata:ref", "must be absolute"),
        (options.claim, "refdata:/ref:rx", "must be ro or rw"),
        (options.claim, "refdata:/workdir/ref", "used by byok8s itself"),
        (options.claim, "refdata:/", "used by byok8s itself"),
        (options.claim, "refdata:/a/../workdir", "without '..'"),
        (options.scratch, "/tmp:lots", "is not a size or 'memory'"),
        (options.scratch, "/tmp:memory:memory", "is not a size or 'memory'"),
        (options.scratch, "tmp", "must be absolute"),
        (options.scratch, "/byok8s/x", "used by byok8s itself"),
        (options.node_selector, "agentpool", "is not a node label KEY=VALUE"),
        (options.node_selector, "=x", "is not a node label KEY=VALUE"),
        (options.node_selector, "a=b c", "is not a node label KEY=VALUE"),
        (options.toleration, "sku=gpu:NoRun", "EFFECT one of NoSchedule"),
        (options.toleration, "bad key", "is not KEY[=VALUE][:EFFECT]"),
        (options.toleration, "/x", "is not KEY[=VALUE][:EFFECT]"),
    ],
)
def test_each_mistake_says_what_is_wrong_and_the_right_form(parse, text, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse(text)
    assert repr(text) in str(caught.value) and "\n" not in str(caught.value)


def test_a_mount_path_used_twice_is_an_error() -> None:
    options.unique_paths(["/a", "/b"])
    with pytest.raises(ValueError, match="'/a' is used twice"):
        options.unique_paths(["/a", "/b", "/a"])
