"""One declaration per option. From an `Option` come its command-line option
(`--NAME`, with its `BYOK8S_NAME` variable), its workflow-config key and type,
its range check, the executor plugin setting it is handed to, and its rows in the
README's tables. A backend declares its own options (the Kubernetes plugin's
settings module, backends/azure_batch.py); runoptions.py puts them in order.

This module imports nothing of byok8s: the plugin packages use it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

ENV_PREFIX = "BYOK8S"


@dataclasses.dataclass(frozen=True)
class Option:
    name: str  # --NAME (with '-'), BYOK8S_NAME, and the workflow-config key
    help: str
    type: Any = str  # str, int, float, bool (a flag) or list (repeatable)
    default: Any = None
    short: str = ""  # e.g. "-j"
    metavar: str = ""
    choices: tuple[str, ...] = ()
    least: float | None = None  # the smallest value allowed
    most: float | None = None  # the largest value allowed
    must: str = ""  # what a value out of range is told it must be
    shown: str = ""  # the default as --help and the README say it, when not `default`
    config: bool = True  # also a key of the workflow config
    pairs: bool = False  # KEY=VALUE items: the workflow config may give a mapping
    parse: Callable[[Any], Any] | None = None  # raises ValueError for a bad value (or item)
    owner: str = ""  # the executor it belongs to; "" for every run
    plugin: str = ""  # the executor plugin setting it is handed to
    scheduling: str = ""  # its key in the pods' scheduling plan (per run and per rule)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def envvar(self) -> str:
        return f"{ENV_PREFIX}_{self.name.upper()}"

    @property
    def config_type(self) -> type | tuple[type, ...]:
        """What the workflow config may give for it."""
        if self.type is list:
            return (list, dict) if self.pairs else list
        return (int, float) if self.type is float else self.type

    def default_text(self) -> str:
        if self.shown:
            return self.shown
        if self.type is bool:
            return "off"
        if self.default in (None, ()):
            return "none"
        return f"`{self.default}`" if isinstance(self.default, str) else str(self.default)

    def out_of_range(self, value: Any) -> bool:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        low = self.least is not None and value < self.least
        return low or (self.most is not None and value > self.most)


def click_option(option: Option) -> Callable[[Any], Any]:
    import click

    names = [option.short] if option.short else []
    kwargs: dict[str, Any] = {"help": option.help, "envvar": option.envvar}
    if option.type is bool:
        kwargs["is_flag"] = True
    elif option.type is list:
        kwargs["multiple"] = True
    elif option.choices:
        kwargs["type"] = click.Choice(option.choices)
    elif option.type is not str:
        kwargs["type"] = option.type
    if option.metavar:
        kwargs["metavar"] = option.metavar
    if option.default is not None and option.type not in (bool, list):
        kwargs["default"] = option.default
        kwargs["show_default"] = option.shown or True
    elif option.shown:
        kwargs["help"] = f"{option.help} [default: {option.shown.replace('`', '')}]"
    return click.option(*names, option.flag, option.name, **kwargs)


def click_options(options: Iterable[Option]) -> Callable[[Any], Any]:
    """A decorator adding these options to a click command, in this order."""
    made = [click_option(o) for o in options]

    def decorate(command: Any) -> Any:
        for add in reversed(made):
            command = add(command)
        return command

    return decorate


def plugin_fields(options: Iterable[Option], base: Any) -> list[tuple]:
    """Fields for an executor plugin's ExecutorSettings dataclass: the options handed to
    it that its `base` (the stock plugin's settings dataclass) does not declare."""
    fields: list[tuple] = []
    have = {f.name for f in dataclasses.fields(base)}
    for option in options:
        if not option.plugin or option.plugin in have:
            continue
        help_text = {"help": option.help}
        spec: Any
        if option.type is list:
            kind: Any = list[str]
            meta = {**help_text, "type": str, "nargs": "+"}
            spec = dataclasses.field(default_factory=list, metadata=meta)
        elif option.type is bool:
            kind = bool
            spec = dataclasses.field(default=bool(option.default), metadata=help_text)
        else:  # "type": the command line cannot read it off the union with None
            kind = option.type | None
            meta = {**help_text, "type": option.type}
            spec = dataclasses.field(default=option.default, metadata=meta)
        fields.append((option.plugin, kind, spec))
    return fields


_TYPE_WORDS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def config_rows(options: Sequence[Option]) -> list[str]:
    """The workflow config's keys for these options, as README table rows."""
    rows: dict[str, list[str]] = {}
    for option in options:
        if not option.config:
            continue
        if option.type is list:
            kind = (
                'mapping (`{"KEY": "VALUE"}`) or list of `KEY=VALUE`'
                if option.pairs
                else "list of strings"
            )
        else:
            kind = _TYPE_WORDS[option.type]
        rows.setdefault(kind, []).append(f"`{option.name}`")
    return [f"| {', '.join(keys)} | {kind} | same as the option |" for kind, keys in rows.items()]


def option_rows(options: Sequence[Option]) -> list[str]:
    """The options as README table rows: option, default, meaning."""
    rows = []
    for option in options:
        spelled = f"{option.short}, {option.flag}" if option.short else option.flag
        if option.choices:
            spelled += " " + "\\|".join(option.choices)
        elif option.metavar:
            spelled += f" {option.metavar}"
        elif option.type is not bool:
            spelled += " " + {int: "N", float: "X"}.get(option.type, "VALUE")
        meaning = option.help.replace("|", "\\|")
        rows.append(f"| `{spelled}` | {option.default_text()} | {meaning} |")
    return rows
