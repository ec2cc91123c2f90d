"""Every private Snakemake name byok8s relies on (snakemake_executor_plugin_byok8s/
compat.py) exists in the installed versions: a new Snakemake that lacks one fails
here, naming it, instead of in the middle of a user's run."""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import version

import pytest

from snakemake_executor_plugin_byok8s import compat


def _has(owner: object, part: str) -> bool:
    """On the object, or (a class) a descriptor of it or set as `self.part =` in it."""
    if hasattr(owner, part) or part in getattr(owner, "__dict__", {}):
        return True
    return inspect.isclass(owner) and f"self.{part} =" in inspect.getsource(owner)


@pytest.mark.parametrize("name", compat.NAMES)
def test_each_private_name_is_there(name: str) -> None:
    module, _, path = name.partition(":")
    importlib.import_module("snakemake.api")  # Snakemake's modules import in its order
    found = importlib.import_module(module)
    gone = (f"{name} is gone in the installed version (checked against {compat.CHECKED}); "
            "see compat.py for what uses it")  # fmt: skip
    if path.startswith("'"):  # a literal the module's source holds
        assert path.strip("'") in inspect.getsource(found), gone
        return
    *owners, last = path.split(".")
    for part in owners:
        assert hasattr(found, part), gone
        found = getattr(found, part)
    assert _has(found, last), gone


def test_the_checks_find_what_is_gone() -> None:
    """The check above fails for a name that is not there, in each of its forms."""
    from snakemake.workflow import Workflow

    assert _has(Workflow, "_source_archive") and _has(Workflow, "spawned_job_args_factory")
    assert not _has(Workflow, "_no_such_archive") and not _has(Workflow, "no_such_factory")


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


def test_the_sources_deploy_as_snakemake_deploys_them() -> None:
    from types import SimpleNamespace

    factory = SimpleNamespace(
        get_default_storage_provider_args=lambda: "--default-storage-provider s3",
        get_storage_provider_args=lambda: ["--storage-s3-endpoint-url", "http://e"],
    )
    archive = SimpleNamespace(query="s3://b/p/.snakemake/sources.tar.xz", checksum="abc")
    workflow = SimpleNamespace(spawned_job_args_factory=factory, source_archive=archive)
    assert compat.deploy_sources_args(workflow) == (
        "--deploy-sources s3://b/p/.snakemake/sources.tar.xz abc "
        "--default-storage-provider s3 --storage-s3-endpoint-url http://e"
    )
