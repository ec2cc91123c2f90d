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


LOCAL_URIS = ["Snakefile", "/abs/Snakefile", "rel/dir/Snakefile", "~/wf/Snakefile",
              "file:///abs/x.smk", "./a b/Snakefile", "/x/file:///y", "C:x"]  # fmt: skip


@pytest.mark.parametrize("uri", LOCAL_URIS)
def test_a_local_source_path_is_parsed_as_smart_open_parses_it(uri: str) -> None:
    import smart_open
    from snakemake import common, sourcecache

    compat.apply()
    try:
        expected: object = smart_open.parse_uri(uri)
    except NotImplementedError:  # a scheme smart_open has no transport for
        expected = None
    for parse in (common.parse_uri, sourcecache.parse_uri):
        if expected is None:  # not local: to Snakemake's own (its fallback)
            with pytest.raises(NotImplementedError):
                parse(uri)
            continue
        got = parse(uri)
        assert got == expected and got._fields == expected._fields  # type: ignore[attr-defined]


@pytest.mark.parametrize("uri", ["https://example.org/wf/Snakefile", "s3://bucket/Snakefile",
                                 "docker://image:tag"])  # fmt: skip
def test_any_other_uri_is_parsed_by_smart_open_as_before(uri: str) -> None:
    import smart_open
    from snakemake import common

    compat.apply()
    got = common.parse_uri(uri)
    try:
        expected = smart_open.parse_uri(uri)
    except NotImplementedError:  # Snakemake's own fallback
        expected = None
    assert got == expected if expected else (got.scheme, got.uri_path) == ("docker", "image:tag")


@pytest.mark.parametrize("as_path", [False, True])
@pytest.mark.parametrize(("mode", "encoding"), [("rb", None), ("r", "utf-8"), ("r", None)])
def test_a_local_source_file_is_read_as_smart_open_reads_it(tmp_path, as_path, mode, encoding):
    import smart_open
    from snakemake.sourcecache import LocalSourceFile, SourceCache

    compat.apply()
    path = tmp_path / "Snakefile"
    path.write_bytes('rule a:\r\n    shell: "echo ü"\n'.encode())
    target = path if as_path else str(path)
    with SourceCache._open(None, LocalSourceFile(target), mode, encoding) as ours:
        got = ours.read()
    with smart_open.open(target, mode, encoding=None if "b" in mode else encoding,
                         compression="disable") as theirs:  # fmt: skip
        assert got == theirs.read()


def test_a_missing_local_source_file_fails_as_snakemake_says_it(tmp_path) -> None:
    from snakemake.exceptions import WorkflowError
    from snakemake.sourcecache import LocalSourceFile, SourceCache

    compat.apply()
    with pytest.raises(WorkflowError, match="Failed to open source file .*nothing-here"):
        SourceCache._open(None, LocalSourceFile(str(tmp_path / "nothing-here")), "rb")
