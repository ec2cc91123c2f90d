"""The images a workflow's rules run in, without running it (for `byok8s doctor`):
the workflow config's `rules.RULE.image` over each rule's `container:`."""

from __future__ import annotations

from pathlib import Path

from byok8s.errors import ConfigError


def of(workflow_config: str | None, params: str | None,
       snakefile: str | None) -> dict[str, list[str]]:  # fmt: skip
    """image -> the rules that run in it (rules without an image of their own are
    left out: they run in the job image)."""
    from byok8s import config, engine, files
    from snakemake_executor_plugin_byok8s import options

    wf_config: dict = {}
    config_file = Path("workflow config")
    if workflow_config:
        config_file = files.find(workflow_config, "workflow config")
        wf_config = files.load_mapping(config_file, "workflow config")
    path, _ = config.snakefile_of({"snakefile": snakefile}, {"snakefile": "--snakefile"},
                                  wf_config, config_file)  # fmt: skip
    params_file = files.find(params, "params file") if params else None
    declared = engine.rule_images(path, params_file)
    rules = wf_config.get("rules") or {}
    given = {rule: plan.get("image") for rule, plan in rules.items() if isinstance(plan, dict)}
    images: dict[str, list[str]] = {}
    for rule in sorted(declared):
        image = given.get(rule) or declared[rule]
        if image is None:
            continue
        try:
            images.setdefault(options.image(image, f"rule {rule}"), []).append(rule)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return images
