"""Snakemake's own test suite, as the statement of what "the same as plain Snakemake"
means: fetched from the sdist of the installed Snakemake version, and the tests
that apply to byok8s selected from its `tests.py`, each with the arguments it
runs with, or with the reason it does not apply.

Selection rule (applied to every `def test*` in tests.py, in this order):
1. a test skipped or marked by Snakemake for something this machine or byok8s
   lacks (network, apptainer, conda, env-modules, S3 of its own, Windows) does not
   apply, with that reason;
2. only a test whose body is one `run(dpath("DIR"), ...)` call is read: other
   shapes (several runs, mocks, parametrized, checks after the run) test Snakemake
   internals, not a workflow's outcome;
3. each keyword argument must be one byok8s passes on (targets, config, cores,
   forceall, retries, default_resources, check_md5, check_results, snakefile) or
   that is about where jobs run (cluster=, nodes=: byok8s is the cluster); any
   other keyword names what the test is about (an expected failure, the CLI
   itself, another executor, a deployment method, the report, storage settings
   byok8s sets itself, a scheduler option byok8s does not expose) and excludes it;
4. the tests in EXCLUDED (excluded.tsv) do not apply for the reason given there.
"""

from __future__ import annotations

import ast
import csv
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = Path(
    os.environ.get("BYOK8S_CONFORMANCE_CACHE") or Path.home() / ".cache" / "byok8s-conformance"
)
EXCLUDED = HERE / "excluded.tsv"
# Tests that need a filesystem shared by this machine and the jobs (so fail with
# storage, with Snakemake itself too): name<TAB>why.
SHARED_FS = HERE / "shared_fs.tsv"

PASSED_ON = {"targets", "config", "cores", "forceall", "retries", "default_resources",
             "check_md5", "check_results", "snakefile"}  # fmt: skip
WHERE_JOBS_RUN = {"cluster", "cluster_status", "nodes"}
KEYWORD_REASONS = {
    "shouldfail": "tests an expected failure of Snakemake itself",
    "shellcmd": "drives the snakemake command line itself",
    "sigint_after": "drives the snakemake command line itself",
    "executor": "tests another executor",
    "executor_settings": "tests another executor",
    "deployment_method": "needs conda, apptainer or env-modules",
    "conda_frontend": "needs conda",
    "conda_list_envs": "needs conda",
    "conda_create_envs": "needs conda",
    "conda_prefix": "needs conda",
    "apptainer_args": "needs apptainer",
    "container_image": "needs apptainer",
    "containerize": "needs conda",
    "report": "tests the HTML report",
    "report_after_run": "tests the HTML report",
    "report_stylesheet": "tests the HTML report",
    "report_metadata": "tests the HTML report",
    "archive": "tests workflow archives",
    "generate_unit_tests": "tests unit test generation",
    "cleanup_metadata": "tests metadata clean-up",
    "edit_notebook": "tests notebook editing",
    "default_storage_provider": "sets its own storage (byok8s sets the default storage)",
    "default_storage_prefix": "sets its own storage (byok8s sets the default storage)",
    "local_storage_prefix": "sets its own storage (byok8s sets the default storage)",
    "remote_job_local_storage_prefix": "sets its own storage (byok8s sets the default storage)",
    "shared_fs_usage": "sets its own storage (byok8s sets the default storage)",
    "storage_provider_settings": "sets its own storage (byok8s sets the default storage)",
}
NOT_EXPOSED = "needs a Snakemake option byok8s does not expose"
# Decorators by how their text starts; skip_on_windows and skipif(ON_MACOS) apply
# to other systems than this one.
DECORATOR_REASONS = {
    "connected": "needs network",
    "apptainer": "needs apptainer",
    "pytest.mark.needs_s3": "needs network (Snakemake's own S3 test bucket)",
    "pytest.mark.needs_envmodules": "needs env-modules",
    "needs_strace": "needs strace of the jobs",
    "only_on_windows": "Windows only",
    "pytest.mark.skip(": "skipped by Snakemake itself",
    "pytest.mark.parametrize": "parametrized: tests Snakemake internals in several settings",
    "patch(": "patches Snakemake internals",
}
OTHER_SYSTEMS = ("skip_on_windows", "pytest.mark.skipif(ON_MACOS")


@dataclass(frozen=True)
class Case:
    name: str  # the test function, e.g. test_checkpoints_dir
    directory: str  # its workflow directory below tests/
    kwargs: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why it does not apply; None: selected

    @property
    def selected(self) -> bool:
        return self.reason is None


def sdist(version: str | None = None) -> Path:
    """The extracted sdist of Snakemake `version` (default: the installed one),
    downloaded once into CACHE."""
    version = version or _installed()
    root = CACHE / f"snakemake-{version}"
    if (root / "tests" / "tests.py").is_file():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"snakemake-{version}.tar.gz"
    if not archive.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
             "-d", str(CACHE), f"snakemake=={version}"],
            check=True,
        )  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return root


def recorded(ways: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest full run's outcomes of `ways` ((case, way) -> outcome), from
    results/, when it ran the installed Snakemake; {} otherwise."""
    import json

    found = sorted((HERE / "results").glob("conformance-*.json"))
    if not found:
        return {}
    data = json.loads(found[-1].read_text())
    if data.get("snakemake") != _installed():
        return {}
    return {(o["case"], o["way"]): o for o in data["outcomes"] if o["way"] in ways}


def _installed() -> str:
    from importlib.metadata import version

    return version("snakemake")


def cases(root: Path) -> list[Case]:
    """Every test of tests.py, selected or with the reason it does not apply."""
    tree = ast.parse((root / "tests" / "tests.py").read_text())
    excluded = _excluded()
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            case = _case(node)
            if case.selected and case.name in excluded:
                case = Case(case.name, case.directory, case.kwargs, excluded[case.name])
            if case.selected and not (root / "tests" / case.directory / "Snakefile").exists() \
                    and "snakefile" not in case.kwargs:  # fmt: skip
                case = Case(case.name, case.directory, case.kwargs, "has no Snakefile")
            found.append(case)
    return found


def _excluded() -> dict[str, str]:
    return read_tsv(EXCLUDED)


def read_tsv(path: Path) -> dict[str, str]:
    """name<TAB>text rows, without comments."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    return {name: text for name, text in rows}


def _case(node: ast.FunctionDef) -> Case:
    for decorator in node.decorator_list:
        text = ast.unparse(decorator)
        if text.startswith(OTHER_SYSTEMS):
            continue
        reason = next((r for start, r in DECORATOR_REASONS.items() if text.startswith(start)),
                      f"marked {text[:40]}")  # fmt: skip
        return Case(node.name, "", reason=reason)
    body = [s for s in node.body if not isinstance(s, ast.Expr) or not isinstance(
        s.value, ast.Constant)]  # fmt: skip
    call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Expr) else None
    if (
        node.args.args
        or not isinstance(call, ast.Call)
        or not isinstance(call.func, ast.Name)
        or call.func.id != "run"
    ):
        return Case(node.name, "", reason="not one run() of a workflow: tests Snakemake internals")
    directory = _directory(call.args[0]) if call.args else None
    if directory is None or len(call.args) > 1:
        return Case(node.name, "", reason="its workflow directory is computed, not named")
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        name = keyword.arg or "**"
        if name in KEYWORD_REASONS:
            return Case(node.name, directory, reason=KEYWORD_REASONS[name])
        if name in WHERE_JOBS_RUN:
            continue
        if name not in PASSED_ON:
            return Case(node.name, directory, reason=f"{NOT_EXPOSED} ({name}=)")
        try:
            kwargs[name] = ast.literal_eval(keyword.value)
        except ValueError:
            value = _split_call(keyword.value)
            if value is None:
                return Case(node.name, directory, reason=f"its {name}= is computed")
            kwargs[name] = value
    return Case(node.name, directory, kwargs)


def _directory(arg: ast.expr) -> str | None:
    """dpath("DIR") or dpath("DIR/sub")."""
    if (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Name)
        and arg.func.id == "dpath"
        and len(arg.args) == 1
        and isinstance(arg.args[0], ast.Constant)
        and isinstance(arg.args[0].value, str)
    ):
        return arg.args[0].value
    return None


def _split_call(value: ast.expr) -> list[str] | None:
    """`"a b c".split()`, the suite's usual spelling of a target list."""
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "split"
        and isinstance(value.func.value, ast.Constant)
        and not value.args
    ):
        return str(value.func.value.value).split()
    return None


if __name__ == "__main__":  # fetch: test/setup.sh prepares the suite once
    root = sdist()
    all_cases = cases(root)
    print(f"{root}: {sum(c.selected for c in all_cases)} of {len(all_cases)} tests apply")
