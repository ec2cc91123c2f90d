"""Every private Snakemake name byok8s relies on (snakemake_executor_plugin_byok8s/
compat.py) exists in the installed versions: a new Snakemake that lacks one fails
here, naming it, instead of in the middle of a user's run."""

from __future__ import annotations

import importlib
from importlib.metadata import version

import pytest

from snakemake_executor_plugin_byok8s import compat


@pytest.mark.parametrize("name", compat.NAMES)
def test_each_private_name_is_there(name: str) -> None:
    module, _, path = name.partition(":")
    importlib.import_module("snakemake.api")  # Snakemake's modules import in its order
    found = importlib.import_module(module)
    for part in path.split("."):
        assert hasattr(found, part), (
            f"{name} is gone in the installed version (checked against {compat.CHECKED}); "
            "see compat.py for what it fixes"
        )
        found = getattr(found, part)


def test_the_checked_versions_are_the_installed_ones() -> None:
    """A version other than the checked one is allowed only after this list is
    updated, with compat.py's fixes read again against it."""
    assert {name: version(name) for name in compat.CHECKED} == compat.CHECKED


def test_the_fixes_install_once() -> None:
    from snakemake.jobs import Job

    compat.apply()
    first = Job.postprocess
    compat.apply()
    assert Job.postprocess is first and getattr(first, compat.MARK)
