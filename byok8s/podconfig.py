"""The pod options of a run, checked before anything runs: volumes, scratch,
placement and scheduling (for the run and per rule), default resources. The
plugin's own parsers (snakemake_executor_plugin_byok8s.options) do the checking,
so what passes here is what the pods get."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from byok8s.errors import ConfigError

# Run options for pod scheduling, by their key in options.SCHEDULING_KEYS.
RUN_SCHEDULING = {
    "priority_class": "priority_class",
    "image_pull_policy": "image_pull_policy",
    "image_pull_secret": "image_pull_secret",
    "pod_label": "label",
    "pod_annotation": "annotation",
    "active_deadline": "active_deadline",
}
# Run options that only mean something for pods.
POD_OPTIONS = ("pvc", "scratch", "node_selector", "toleration")
RESOURCE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=.+$")


def pairs(value: Any) -> tuple[str, ...]:
    """A mapping from a workflow config as the options' KEY=VALUE strings."""
    if isinstance(value, dict):
        return tuple(f"{k}={v}" for k, v in value.items())
    return tuple(value or ())


def pod_options(values: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """--pvc, --scratch, --node-selector, --toleration, checked with the plugin's own
    parsers (a local run ignores them, with a warning: see executors)."""
    from snakemake_executor_plugin_byok8s import options

    parsers = {
        "pvc": options.claim,
        "scratch": options.scratch,
        "node_selector": options.node_selector,
        "toleration": options.toleration,
    }
    result: dict[str, tuple[str, ...]] = {}
    paths: list[str] = []
    for name, parse in parsers.items():
        items = pairs(values.get(name))
        for item in items:
            try:
                parsed = parse(item)
            except ValueError as exc:
                raise ConfigError(f"{exc} (from {sources[name]})") from None
            if isinstance(parsed, (options.Claim, options.Scratch)):
                paths.append(parsed.path)
        result[name] = items
    try:
        options.unique_paths(paths)
    except ValueError as exc:
        raise ConfigError(f"--pvc/--scratch: {exc}") from None
    return result


def scheduling(
    values: dict[str, Any], sources: dict[str, str], wf_config: Mapping[str, Any], path: Path
) -> dict[str, Any]:
    """The run's pod scheduling options beyond --node-selector and --toleration, and
    the workflow config's per-rule ones, checked with the plugin's own parser."""
    from snakemake_executor_plugin_byok8s import options

    run: dict[str, Any] = {}
    origins = {f"workflow config {path}"} if "affinity" in wf_config else set()
    for name, key in RUN_SCHEDULING.items():
        value = values.get(name)
        if value not in (None, (), [], {}):
            run[key] = list(pairs(value)) if isinstance(value, (tuple, list, dict)) else value
            origins.add(sources[name])
    if "affinity" in wf_config:
        run["affinity"] = wf_config["affinity"]
    rules = dict(wf_config.get("rules", {}))
    try:
        options.scheduling(run, "pod options")
    except ValueError as exc:
        raise ConfigError(f"{exc} (from {', '.join(sorted(origins))})") from None
    for rule, plan in rules.items():
        try:
            if not isinstance(plan, dict):
                raise ValueError(f"{rule!r} must be a mapping of pod options")
            options.scheduling(plan, rule)
        except ValueError as exc:
            raise ConfigError(f"workflow config {path}: rules: {exc}") from None
    return {"run": run, "rules": rules} if run or rules else {}


def default_resources(values: dict[str, Any], sources: dict[str, str]) -> tuple[str, ...]:
    items = pairs(values.get("default_resources"))
    for item in items:
        if not RESOURCE_RE.match(item) or not _resource_value(item.partition("=")[2]):
            raise ConfigError(
                f"--default-resources {item!r} (from {sources['default_resources']}) is not "
                "NAME=VALUE with a number, a size or an expression of input, threads and "
                "attempt, e.g. mem_mb=4000, mem=4G or disk_mb='2*input.size_mb'; quote text: "
                "NAME=\"'text'\""
            )
    return items


def _resource_value(text: str) -> bool:
    """What Snakemake can evaluate for a job: a number, a size (4G), a quoted text,
    or an expression over the names it provides (a bare word fails only later,
    in the middle of the run)."""
    import ast
    import builtins

    if re.match(r"^[0-9.]+\s*[A-Za-z]*$", text.strip()):
        return True
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    known = {"input", "threads", "attempt", "wildcards", "rulename", "system_tmpdir"}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return all(n in known or hasattr(builtins, n) for n in names)
