"""Each option is declared once (byok8s.declare.Option) and everything else is made
from that: the command line, BYOK8S_* variables, the workflow config's keys, the
executor plugins' settings and the README's tables."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import click

from byok8s import cli, config, runoptions

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_tables_are_made_from_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text()
    for begin, end in runoptions.MARKS.values():
        assert readme.count(begin) == 1 and readme.count(end) == 1, begin
    assert runoptions.with_tables(readme) == readme, (
        "the README's option tables differ from the declarations: run "
        "`python -m byok8s.runoptions README.md`"
    )
    for option in runoptions.all_options():
        assert f"{option.flag}" in readme, option.name


def test_every_declared_option_is_a_command_line_option_with_its_variable() -> None:
    params = {p.name: p for p in cli.run.params if isinstance(p, click.Option)}
    declared = runoptions.all_options()
    assert set(params) == {o.name for o in declared}
    for option in declared:
        param = params[option.name]
        assert option.flag in param.opts and param.envvar == option.envvar
        assert param.multiple == (option.type is list) and param.is_flag == (option.type is bool)
        if option.type not in (bool, list) and option.default is not None:
            assert param.default == option.default, option.name


def test_workflow_config_keys_are_the_declared_options_and_its_own_keys() -> None:
    keys = config.workflow_key_types()
    for option in runoptions.all_options():
        assert (option.name in keys) == (option.config or option.name in config.WORKFLOW_KEYS)
    assert set(config.WORKFLOW_KEYS) <= set(keys)


def test_the_plugins_settings_are_made_from_the_same_declarations() -> None:
    import snakemake_executor_plugin_kubernetes as stock

    from snakemake_executor_plugin_byok8s import ExecutorSettings
    from snakemake_executor_plugin_byok8s.settings import OPTIONS

    fields = {f.name: f for f in dataclasses.fields(ExecutorSettings)}
    stocks = {f.name for f in dataclasses.fields(stock.ExecutorSettings)}
    handed = [o for o in OPTIONS if o.plugin]
    assert {"pvc", "pending_timeout", "infra_retries", "run_as_user", "follow"} <= {
        o.plugin for o in handed
    }
    for option in handed:
        assert option.plugin in fields, option.name
        if option.plugin in stocks:
            continue  # the stock plugin declares it, with its own default
        field = fields[option.plugin]
        assert field.metadata["help"] == option.help
        made = field.default_factory() if option.type is list else field.default  # type: ignore[misc]
        wanted = {list: [], bool: bool(option.default)}.get(option.type, option.default)
        assert made == wanted, option.name


def test_each_default_is_written_once() -> None:
    """The defaults byok8s used to spell in several modules (900 s pending timeout, 3
    infrastructure retries, user 1000) are in their declaration only: no other name
    for them is given a number."""
    names = ("pending_timeout", "infra_retries", "run_as_user", "default_user")
    found = []
    for package in ("byok8s", "snakemake_executor_plugin_byok8s"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                pairs = []
                if isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    pairs = [(ast.unparse(t), node.value) for t in targets]
                elif isinstance(node, ast.keyword) and node.arg:
                    pairs = [(node.arg, node.value)]
                for target, value in pairs:
                    named = any(n in target.lower() for n in names)
                    if named and isinstance(value, ast.Constant) and type(value.value) is int:
                        found.append(f"{path.name}:{node.lineno}: {target} = {value.value}")
    assert found == [], found
