"""Resolving one run's configuration: files, options, environment, defaults.

Precedence, for every run option: command line > workflow config file >
environment (BYOK8S_*) > default. `RunConfig.sources` records where each value
came from, so errors can name it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from byok8s import bundled, files, storage
from byok8s.declare import Option
from byok8s.errors import ConfigError

# Keys byok8s itself sets in Snakemake's config; a params file may not set them.
RESERVED_PARAMS = ("byok8s",)

CLI = "command line"
ENV = "environment"
DEFAULT = "default"

# Workflow config keys that are not options: their types, and as the README says them.
WORKFLOW_KEYS: dict[str, tuple[type | tuple[type, ...], str, str]] = {
    "workflow": (str, "string", "a bundled workflow by name (`alpha`, `fanout`)"),
    "snakefile": (str, "string", "path to a Snakefile, relative to this config file (not "
                  "with `workflow`); default `./Snakefile`"),
    "targets": (list, "string or list of strings", "rules or files to build, relative to the "
                "working directory; default: the first rule"),
    "workflow_target": (str, "string", "one target (the 2019 byok8s spelling)"),
    "description": (str, "string", "shown by `byok8s workflows`"),
    "affinity": (dict, "mapping", "a Kubernetes Affinity for every job pod"),
    "rules": (dict, "mapping of rule name to pod options", "per-rule scheduling and image "
              "(see [Volumes, resources and placement](#volumes-resources-and-placement)); "
              "each name must be a rule of the workflow"),
}  # fmt: skip


def workflow_key_types() -> dict[str, type | tuple[type, ...]]:
    """Every key a workflow config may have: the run options' and its own."""
    from byok8s.runoptions import all_options

    own = {key: kind for key, (kind, _, _) in WORKFLOW_KEYS.items()}
    return {**own, **{o.name: o.config_type for o in all_options() if o.config}}


ENVVAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESOURCE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=.+$")


@dataclass(frozen=True)
class Workflow:
    """What to run: the Snakefile, its targets and the params for `config`."""

    snakefile: Path
    targets: tuple[str, ...]
    params: Mapping[str, Any]
    config_file: Path
    params_file: Path
    bundled: str | None = None  # name of the bundled workflow, if one is used


@dataclass(frozen=True)
class RunConfig:
    workflow: Workflow
    executor: str
    workdir: Path
    jobs: int
    cores: int | None  # None: remote jobs take their rules' threads, uncapped
    storage: storage.Storage | None
    container_image: str | None
    envvars: tuple[str, ...]
    retries: int = 0
    dry_run: bool = False
    forceall: bool = False
    unlock: bool = False
    keep_going: bool = False
    use_conda: bool = False
    default_resources: tuple[str, ...] = ()
    keep_sources: bool = False
    # Jobs run away from this process's files: on a cluster or, with a bucket, each
    # in a directory of its own here.
    remote: bool = False
    backend: Any = None  # the executor's own settings, made by its check() from its options
    ignored: tuple[str, ...] = ()  # options given that belong to another executor
    verbose: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)


def resolve(given: Mapping[str, tuple[Any, str]], env: Mapping[str, str]) -> RunConfig:
    """Turn the command's values (each with its source) into a RunConfig."""
    from byok8s import backends
    from byok8s.runoptions import all_options

    config_file = files.find(given["workflow_config"][0], "workflow config")
    wf_config = files.load_mapping(config_file, "workflow config")
    check_workflow_config(wf_config, config_file)
    params_file = files.find(given["params"][0], "params file")
    params = files.load_mapping(params_file, "params file")
    check_params(params, params_file)

    declared = all_options()
    values, sources = _merge(given, wf_config, config_file, declared)
    for option in declared:
        check_option(option, values[option.name], sources[option.name])
    snakefile, bundled_name = snakefile_of(values, sources, wf_config, config_file)
    targets = _targets(wf_config, config_file)

    bucket = values["bucket"]
    s3_bucket = values.get("s3_bucket")
    if s3_bucket:
        if bucket:
            raise ConfigError("both --bucket and --s3-bucket were given; pass only one of them")
        bucket, sources["bucket"] = f"s3://{s3_bucket}", sources["s3_bucket"]

    executor = values["executor"] or backends.default(bool(bucket))
    if not values["executor"]:
        sources["executor"] = f"{DEFAULT} ({'a bucket was' if bucket else 'no bucket'} given)"
    if executor not in backends.NAMES:
        raise ConfigError(
            f"unknown executor {executor!r} (from {sources['executor']}); "
            f"use one of {', '.join(backends.NAMES)}"
        )
    backend = backends.get(executor, bucket=bool(bucket))
    if backend.needs_bucket and not bucket:
        raise ConfigError(
            f"--executor {executor} needs object storage for inputs and outputs; "
            "pass --bucket s3://NAME (or az://CONTAINER, gs://NAME) or set BYOK8S_BUCKET"
        )

    envvars = parse_envvars(values["envvars"], sources["envvars"], env)
    if values["cores"] is None and not backend.needs_bucket:
        values["cores"], sources["cores"] = os.cpu_count() or 1, f"{DEFAULT} (all cores)"
    # Remote jobs get their rules' threads, not this machine's core count: Snakemake
    # caps every rule's threads at --cores, so it is only set when given.
    default_resources = check_resources(values["default_resources"], sources)

    def own(owner: str) -> backends.Given:
        mine = {o.name: values[o.name] for o in declared if o.owner == owner}
        return backends.Given(mine, sources, wf_config, config_file)

    settings = backend.check(own(executor))
    for other in backends.NAMES:
        if other != executor:
            backends.get(other, bucket=True).validate(own(other))
    ignored = tuple(
        o.flag for o in declared if o.owner and o.owner != executor and sources[o.name] != DEFAULT
    )

    if backend.needs_bucket and not values["container_image"]:
        from byok8s.image import default_image

        values["container_image"] = default_image()
        sources["container_image"] = f"{DEFAULT} (matches the installed snakemake)"

    return RunConfig(
        workflow=Workflow(
            snakefile=snakefile,
            targets=targets,
            params=MappingProxyType(dict(params)),
            config_file=config_file,
            params_file=params_file,
            bundled=bundled_name,
        ),
        executor=executor,
        workdir=Path(values["workdir"] or ".").resolve(),
        jobs=values["jobs"],
        cores=values["cores"],
        storage=storage.resolve(bucket, values["s3_endpoint_url"], env) if bucket else None,
        container_image=values["container_image"] or None,
        envvars=envvars,
        retries=values["retries"],
        dry_run=bool(values["dry_run"]),
        forceall=bool(values["forceall"]),
        unlock=bool(values["unlock"]),
        keep_going=bool(values["keep_going"]),
        use_conda=bool(values["use_conda"]),
        default_resources=default_resources,
        keep_sources=bool(values["keep_sources"]),
        remote=backend.needs_bucket or bool(bucket),
        backend=settings,
        ignored=ignored,
        verbose=bool(values["verbose"]),
        sources=MappingProxyType(sources),
    )


def check_option(option: Option, value: Any, source: str) -> None:
    """A declared option's range and its own check (each item of a repeatable one)."""
    if option.out_of_range(value):
        raise ConfigError(f"{option.flag} must be {option.must}, got {value} (from {source})")
    if option.parse is None or value in (None, ()):
        return
    for item in value if option.type is list else (value,):
        try:
            option.parse(item)
        except ValueError as exc:
            raise ConfigError(f"{exc} (from {source})") from None


def check_workflow_config(data: Mapping[str, Any], path: Path) -> None:
    known = workflow_key_types()
    for key, value in data.items():
        expected = known.get(key)
        if expected is None:
            raise ConfigError(
                f"workflow config {path}: unknown key {key!r}; "
                f"allowed keys are {', '.join(sorted(known))}"
            )
        if key == "targets" and isinstance(value, str):
            continue
        if not _is(value, expected) or (expected is not dict and not _strings(value)):
            want = _type_phrase(expected)
            raise ConfigError(
                f"workflow config {path}: key {key!r} must be {want}, got {files.type_name(value)}"
            )
    if "workflow" in data and "snakefile" in data:
        raise ConfigError(
            f"workflow config {path}: give either 'workflow' (a bundled workflow) "
            "or 'snakefile', not both"
        )


def check_params(params: Mapping[str, Any], path: Path) -> None:
    for key in RESERVED_PARAMS:
        if key in params:
            raise ConfigError(f"params file {path}: key {key!r} is reserved for byok8s; rename it")


def _is(value: Any, expected: type | tuple[type, ...]) -> bool:
    if expected in (int, (int, float)) and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def _strings(value: Any) -> bool:
    """Lists hold strings; mappings map strings to strings or numbers."""
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value.values()
        )
    return True


def _type_phrase(expected: type | tuple[type, ...]) -> str:
    if expected == (list, dict):
        return "a list of 'KEY=VALUE' strings or a mapping"
    phrases: dict[Any, str] = {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        list: "a list of strings",
        (int, float): "a number",
    }
    return phrases.get(expected, str(expected))


def _merge(
    given: Mapping[str, tuple[Any, str]],
    wf_config: Mapping[str, Any],
    path: Path,
    declared: tuple[Option, ...],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each option's value and where it came from; repeatable ones as a tuple of
    strings (a workflow config's mapping as KEY=VALUE items)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (value, source) in given.items():
        if source != CLI and name in wf_config:
            value, source = wf_config[name], f"workflow config {path}"
        values[name], sources[name] = value, source
    for option in declared:
        values.setdefault(option.name, () if option.type is list else option.default)
        sources.setdefault(option.name, DEFAULT)
        if option.type is list:
            values[option.name] = pairs(values[option.name])
    return values, sources


def pairs(value: Any) -> tuple[str, ...]:
    """A mapping from a workflow config as KEY=VALUE strings."""
    if isinstance(value, dict):
        return tuple(f"{k}={v}" for k, v in value.items())
    return tuple(value or ())


def snakefile_of(
    values: Mapping[str, Any],
    sources: dict[str, str],
    wf_config: Mapping[str, Any],
    config_file: Path,
) -> tuple[Path, str | None]:
    if values.get("snakefile"):
        path = Path(values["snakefile"]).expanduser().resolve()
        origin = sources["snakefile"]
    elif "snakefile" in wf_config:
        path = (config_file.parent / wf_config["snakefile"]).resolve()
        origin = f"workflow config {config_file}"
    elif "workflow" in wf_config:
        name = wf_config["workflow"]
        found = bundled.get(name)
        if found is None:
            names = ", ".join(w.name for w in bundled.all_workflows())
            raise ConfigError(
                f"workflow config {config_file}: unknown bundled workflow {name!r}; "
                f"use one of {names} (see 'byok8s workflows') or set 'snakefile'"
            )
        sources["snakefile"] = f"bundled workflow {name!r}"
        return found.snakefile, name
    else:
        path = Path("Snakefile").resolve()
        origin = "default (./Snakefile)"
    if not path.is_file():
        raise ConfigError(
            f"Snakefile {path} (from {origin}) not found; pass -s/--snakefile PATH "
            "or set 'snakefile' or 'workflow' in the workflow config"
        )
    sources["snakefile"] = origin
    return path, None


def _targets(wf_config: Mapping[str, Any], config_file: Path) -> tuple[str, ...]:
    raw = wf_config.get("targets", wf_config.get("workflow_target", []))
    targets = (raw,) if isinstance(raw, str) else tuple(raw)
    for target in targets:
        pure = PurePosixPath(target)
        if not target.strip() or pure.is_absolute() or ".." in pure.parts:
            raise ConfigError(
                f"workflow config {config_file}: target {target!r} must be a rule name "
                "or a path inside the working directory (no leading '/' or '..')"
            )
    return targets


def check_resources(items: tuple[str, ...], sources: Mapping[str, str]) -> tuple[str, ...]:
    """--default-resources: each NAME=VALUE one Snakemake can evaluate for a job."""
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


def parse_envvars(raw: Any, source: str, env: Mapping[str, str]) -> tuple[str, ...]:
    names: list[str] = []
    for item in raw or ():
        names.extend(n for n in re.split(r"[,\s]+", item) if n)
    for name in names:
        if not ENVVAR_RE.match(name):
            raise ConfigError(
                f"--envvars: {name!r} (from {source}) is not a valid environment variable name"
            )
    missing = [n for n in names if n not in env]
    if missing:
        raise ConfigError(
            f"--envvars names {', '.join(missing)} but "
            f"{'it is' if len(missing) == 1 else 'they are'} not set; "
            "export them before running byok8s or drop them from --envvars"
        )
    return tuple(dict.fromkeys(names))


def environ() -> Mapping[str, str]:
    return os.environ
