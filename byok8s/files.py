"""Finding and reading the workflow config and params files (JSON or YAML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from byok8s import bundled
from byok8s.errors import ConfigError

SUFFIXES = bundled.SUFFIXES
# Bounds on what a config or params file may expand to. A YAML alias refers to a
# node again without copying it, so a 1 KB file can stand for a hundred million
# values; each alias is counted as often as it is used, before anything is built.
MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 1_000_000


def find(name: str, kind: str) -> Path:
    """Resolve a file argument: a path, NAME(.json|.yaml|.yml) here, or a bundled file."""
    given = Path(name)
    if given.is_file():
        return given.resolve()
    if given.suffix not in SUFFIXES and given.parent == Path("."):
        for suffix in SUFFIXES:
            candidate = Path(name + suffix)
            if candidate.is_file():
                return candidate.resolve()
        packaged = bundled.find_file(name)
        if packaged is not None:
            return packaged
    if given.exists():
        raise ConfigError(f"{kind} {name!r} is not a file; pass a JSON or YAML file")
    raise ConfigError(
        f"{kind} {name!r} not found (looked for {name}, {name}.json/.yaml/.yml here "
        f"and among the bundled workflows); check the name or run 'byok8s workflows'"
    )


def load_mapping(path: Path, kind: str) -> dict[str, Any]:
    """Read a JSON or YAML file that must hold one mapping with string keys."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(
                f"{kind} {path} is {size} bytes, more than byok8s reads ({MAX_BYTES}); "
                "keep large tables in input files the workflow reads, not in the config"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {kind} {path}: {exc}; check the file") from exc
    if path.suffix == ".json":
        data = _parse_json(text, path, kind)
    else:
        data = _parse_yaml(text, path, kind)
    if data is None and path.suffix != ".json":
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{kind} {path} must hold a mapping (a JSON object), "
            f"not {type_name(data)}; wrap the values in {{ }}"
        )
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{kind} {path}: key {key!r} must be a string")
    return data


def _parse_json(text: str, path: Path, kind: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{kind} {path} is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}; fix the file"
        ) from exc
    except RecursionError as exc:
        raise _too_deep(path, kind) from exc


def _parse_yaml(text: str, path: Path, kind: str) -> Any:
    import yaml

    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            expanded = _expanded_size(node)
            if expanded > MAX_NODES:
                raise ConfigError(
                    f"{kind} {path} expands to more than {MAX_NODES} values (YAML aliases "
                    "repeat what they refer to); write the values out or use fewer aliases"
                )
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError as exc:
        raise _too_deep(path, kind) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(
            f"{kind} {path} is not valid YAML: {problem}{where}; fix the file"
        ) from exc


def _expanded_size(root: Any) -> int:
    """How many nodes the document has once every alias is replaced by what it
    refers to; stops counting past MAX_NODES. Each distinct node is visited once."""
    import yaml

    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:  # an anchor used inside itself: infinite once expanded
            return MAX_NODES + 1
        busy.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_NODES:
                break
        busy.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)
        return sizes[key]

    return size(root)


def _too_deep(path: Path, kind: str) -> ConfigError:
    return ConfigError(f"{kind} {path} is nested too deeply to read; flatten it")


def type_name(value: Any) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
