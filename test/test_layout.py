"""The package's layout keeps its direction: the core knows no Kubernetes and no
executor by name, plugin packages do not import the application (only the small
shared byok8s.declare), there are no import cycles, and the CLI only declares
and dispatches (each command is a module of byok8s.commands)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "byok8s"
PLUGINS = ("snakemake_executor_plugin_byok8s", "snakemake_storage_plugin_byok8s_azure")
# The core: what a run goes through whatever its executor.
CORE = ("app", "engine", "records", "output", "config", "staging", "lock", "files", "errors",
        "declare", "runoptions", "bundled", "signals", "cli")  # fmt: skip
EXECUTOR_NAMES = {"local", "kubernetes", "azure-batch"}


def _imports(path: Path, top_level_only: bool = False) -> list[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_the_core_imports_no_kubernetes_and_compares_no_executor_name() -> None:
    for name in CORE:
        path = PACKAGE / f"{name}.py"
        imported = _imports(path)
        assert not [m for m in imported if m.split(".")[0] == "kubernetes"], path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    named = isinstance(side, ast.Constant) and side.value in EXECUTOR_NAMES
                    assert not named, f"{path.name}:{node.lineno} compares an executor name"


def test_importing_the_core_loads_no_kubernetes_client() -> None:
    code = (
        "import sys\n"
        + "".join(f"import byok8s.{name}\n" for name in CORE)
        + "print(sorted(m for m in ('kubernetes', 'snakemake_executor_plugin_kubernetes')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugin_packages_import_only_the_shared_declarations_of_the_application() -> None:
    for package in PLUGINS:
        for path in (ROOT / package).glob("*.py"):
            of_app = {m for m in _imports(path) if m.split(".")[0] == "byok8s"}
            assert of_app <= {"byok8s.declare", "byok8s.declare.Option",
                              "byok8s.declare.plugin_fields"}, (path, of_app)  # fmt: skip
    shared = _imports(PACKAGE / "declare.py")
    assert not [m for m in shared if m.startswith(("byok8s", "snakemake"))]


def test_no_module_level_import_cycles() -> None:
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }
    graph = {
        name: {m for m in _imports(path, top_level_only=True) if m in modules and m != name}
        for name, path in modules.items()
    }

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*trail, start]
                if nxt not in trail:
                    stack.append((nxt, [*trail, nxt]))
        return None

    cycles = [c for c in map(cycle_from, graph) if c]
    assert cycles == [], cycles[0]


def test_each_command_is_a_module_and_the_cli_dispatches() -> None:
    from byok8s import cli

    for name in cli.cli.commands:
        assert (PACKAGE / "commands" / f"{name.replace('-', '_')}.py").is_file(), name
    called = [
        node.func.value.id
        for node in ast.walk(ast.parse((PACKAGE / "cli.py").read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "main" and isinstance(node.func.value, ast.Name)
    ]  # fmt: skip
    assert sorted(called) == sorted(n.replace("-", "_") for n in cli.cli.commands)
