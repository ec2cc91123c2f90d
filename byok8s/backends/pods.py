"""The Kubernetes backend's settings for a run, checked before anything runs: its
declared options (snakemake_executor_plugin_byok8s.settings, each already checked
on its own by config.check_option) with the volumes' paths checked together, and
the pods' scheduling plan for the run and per rule (the workflow config's
`affinity` and `rules` too), checked with the plugin's own parser, so what passes
here is what the pods get."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from byok8s.backends.base import Given
from byok8s.errors import ConfigError


def settings(given: Given) -> Mapping[str, Any]:
    """The run's pod options by name, and "scheduling": the plan for the run and
    per rule ({} when nothing is asked)."""
    values, sources, wf_config, path = (
        given.values, given.sources, given.wf_config, given.config_file
    )  # fmt: skip
    from snakemake_executor_plugin_byok8s import options
    from snakemake_executor_plugin_byok8s.settings import OPTIONS

    paths = [options.claim(c).path for c in values["pvc"]]
    paths += [options.scratch(s).path for s in values["scratch"]]
    try:
        options.unique_paths(paths)
    except ValueError as exc:
        raise ConfigError(f"--pvc/--scratch: {exc}") from None

    run: dict[str, Any] = {}
    origins = {f"workflow config {path}"} if "affinity" in wf_config else set()
    for option in OPTIONS:
        value = values[option.name]
        if option.scheduling and value is not None and value != () and value is not False:
            run[option.scheduling] = list(value) if isinstance(value, tuple) else value
            origins.add(sources[option.name])
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
    scheduling = {"run": run, "rules": rules} if run or rules else {}
    return MappingProxyType({**values, "scheduling": scheduling})
