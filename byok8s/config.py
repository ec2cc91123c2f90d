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

from byok8s import bundled, files, podconfig, storage
from byok8s.errors import ConfigError
from byok8s.executors import azure_batch as batch_options

EXECUTORS = ("local", "kubernetes", "azure-batch")
REMOTE_EXECUTORS = ("kubernetes", "azure-batch")
# Keys byok8s itself sets in Snakemake's config; a params file may not set them.
RESERVED_PARAMS = ("byok8s",)

CLI = "command line"
ENV = "environment"
DEFAULT = "default"

# Run options that a workflow config file may also set, with their types.
RUN_OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "bucket": str,
    "k8s_namespace": str,
    "executor": str,
    "jobs": int,
    "cores": int,
    "container_image": str,
    "envvars": list,
    "s3_endpoint_url": str,
    "retries": int,
    "service_account": str,
    "run_as_user": int,
    "keep_going": bool,
    "use_conda": bool,
    "pvc": list,
    "scratch": list,
    "node_selector": (list, dict),  # ["KEY=VALUE", ...] or {KEY: VALUE}
    "toleration": list,
    "pending_timeout": int,
    "cpu_scalar": (int, float),
    "infra_retries": int,
    "follow": bool,
    "priority_class": str,
    "image_pull_policy": str,
    "image_pull_secret": list,
    "pod_label": (list, dict),
    "pod_annotation": (list, dict),
    "active_deadline": int,
    "default_resources": (list, dict),  # ["NAME=VALUE", ...] or {NAME: VALUE}
    **batch_options.OPTION_TYPES,
}
WORKFLOW_KEY_TYPES: dict[str, type | tuple[type, ...]] = {
    "affinity": dict,  # a Kubernetes Affinity, for every job pod
    "rules": dict,  # RULE: {node_selector, toleration, affinity, ...} (options.SCHEDULING_KEYS)
    "description": str,
    "workflow": str,
    "snakefile": str,
    "targets": list,
    "workflow_target": str,  # the original byok8s spelling of one target
    **RUN_OPTION_TYPES,
}
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENVVAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Workflow:
    """What to run: the Snakefile, its targets and the params for `config`."""

    snakefile: Path
    targets: tuple[str, ...]
    params: Mapping[str, Any]
    config_file: Path
    params_file: Path
    bundled: str | None = None  # name of the bundled workflow, if one is used
    # The params as a config file below the workdir, for remote jobs (set by app).
    configfile: Path | None = None


@dataclass(frozen=True)
class RunConfig:
    workflow: Workflow
    executor: str
    workdir: Path
    namespace: str
    jobs: int
    cores: int | None  # None: remote jobs take their rules' threads, uncapped
    storage: storage.Storage | None
    container_image: str | None
    envvars: tuple[str, ...]
    retries: int = 0
    service_account: str | None = None
    run_as_user: int = 1000
    dry_run: bool = False
    forceall: bool = False
    unlock: bool = False
    keep_going: bool = False
    use_conda: bool = False
    pvc: tuple[str, ...] = ()
    scratch: tuple[str, ...] = ()
    node_selector: tuple[str, ...] = ()
    toleration: tuple[str, ...] = ()
    pending_timeout: int = 900
    cpu_scalar: float = 0.95
    infra_retries: int = 3
    follow: bool = False
    # {"run": {...}, "rules": {RULE: {...}}}: what pods run where (options.SCHEDULING_KEYS)
    scheduling: Mapping[str, Any] = field(default_factory=dict)
    default_resources: tuple[str, ...] = ()
    keep_sources: bool = False
    azure_batch: batch_options.BatchSettings | None = None
    record_dir: Path | None = None  # set by app for each run
    run_id: str | None = None  # set by app for each run: names the record, lock and pods
    verbose: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def remote(self) -> bool:
        """Jobs run away from this process's files: on a cluster or, with a bucket,
        each in a directory of its own here."""
        return self.executor in REMOTE_EXECUTORS or self.storage is not None

    def pod_options(self) -> dict[str, Any]:
        """The pod options, as the plugin's settings (and the run record) take them."""
        listed = {name: list(getattr(self, name)) for name in podconfig.POD_OPTIONS}
        import json

        return {
            **listed,
            "pending_timeout": self.pending_timeout,
            "cpu_scalar": self.cpu_scalar,
            "infra_retries": self.infra_retries,
            "scheduling": json.dumps(dict(self.scheduling), sort_keys=True)
            if self.scheduling
            else None,
        }

    def pod_options_given(self) -> list[str]:
        """The pod-only options this run sets, as their command-line names."""
        return [f"--{n.replace('_', '-')}" for n in podconfig.POD_OPTIONS if getattr(self, n)]


def resolve(given: Mapping[str, tuple[Any, str]], env: Mapping[str, str]) -> RunConfig:
    """Turn the command's values (each with its source) into a RunConfig."""
    config_file = files.find(given["workflow_config"][0], "workflow config")
    wf_config = files.load_mapping(config_file, "workflow config")
    check_workflow_config(wf_config, config_file)
    params_file = files.find(given["params"][0], "params file")
    params = files.load_mapping(params_file, "params file")
    check_params(params, params_file)

    values, sources = _merge(given, wf_config, config_file)
    snakefile, bundled_name = _snakefile(values, sources, wf_config, config_file)
    targets = _targets(wf_config, config_file)

    bucket = values["bucket"]
    s3_bucket = values.get("s3_bucket")
    if s3_bucket:
        if bucket:
            raise ConfigError("both --bucket and --s3-bucket were given; pass only one of them")
        bucket, sources["bucket"] = f"s3://{s3_bucket}", sources["s3_bucket"]

    executor = values["executor"] or ("kubernetes" if bucket else "local")
    if not values["executor"]:
        sources["executor"] = f"{DEFAULT} ({'a bucket was' if bucket else 'no bucket'} given)"
    if executor not in EXECUTORS:
        raise ConfigError(
            f"unknown executor {executor!r} (from {sources['executor']}); "
            f"use one of {', '.join(EXECUTORS)}"
        )
    if executor in REMOTE_EXECUTORS and not bucket:
        raise ConfigError(
            f"--executor {executor} needs object storage for inputs and outputs; "
            "pass --bucket s3://NAME (or az://CONTAINER, gs://NAME) or set BYOK8S_BUCKET"
        )

    namespace = values["k8s_namespace"]
    if len(namespace) > 63 or not NAMESPACE_RE.match(namespace):
        raise ConfigError(
            f"namespace {namespace!r} (from {sources['k8s_namespace']}) is not a valid "
            "Kubernetes name; use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    envvars = parse_envvars(values["envvars"], sources["envvars"], env)
    if values["cores"] is None and executor not in REMOTE_EXECUTORS:
        values["cores"], sources["cores"] = os.cpu_count() or 1, f"{DEFAULT} (all cores)"
    # Remote jobs get their rules' threads, not this machine's core count: Snakemake
    # caps every rule's threads at --cores, so it is only set when given.
    for name in ("jobs", "cores"):
        if values[name] is not None and values[name] < 1:
            raise ConfigError(
                f"{name} must be at least 1, got {values[name]} (from {sources[name]})"
            )
    for name in ("retries", "infra_retries"):
        if values.get(name, 0) < 0:
            raise ConfigError(
                f"--{name.replace('_', '-')} must be 0 or more, got {values[name]} "
                f"(from {sources[name]})"
            )
    if values.get("run_as_user", 0) < 0:
        raise ConfigError(
            f"--run-as-user must be a user id (0 or more), got {values['run_as_user']}"
        )
    from snakemake_executor_plugin_byok8s.options import SUBDOMAIN_RE

    account = values.get("service_account")
    if account is not None and (len(account) > 253 or not SUBDOMAIN_RE.match(account)):
        raise ConfigError(
            f"service account {account!r} (from {sources['service_account']}) is not a valid "
            "Kubernetes name; use lowercase letters, digits, '-' and '.'"
        )

    pod_options = podconfig.pod_options(values, sources)
    scalar = values.get("cpu_scalar", 0.95)
    if isinstance(scalar, bool) or not 0 < scalar <= 1:
        raise ConfigError(
            f"cpu_scalar must be a number above 0 and at most 1, got {scalar!r} "
            f"(from {sources.get('cpu_scalar', DEFAULT)})"
        )
    if values.get("pending_timeout", 0) < 0:
        raise ConfigError(
            f"--pending-timeout must be seconds (0 or more; 0 waits forever), "
            f"got {values['pending_timeout']} (from {sources['pending_timeout']})"
        )
    default_resources = podconfig.default_resources(values, sources)
    scheduling = podconfig.scheduling(values, sources, wf_config, config_file)

    batch = batch_options.resolve(values, sources) if executor == "azure-batch" else None

    if executor in REMOTE_EXECUTORS and not values["container_image"]:
        from byok8s.image import default_image

        values["container_image"] = default_image()
        sources["container_image"] = f"{DEFAULT} (matches the installed snakemake)"

    backend = None
    if bucket:
        backend = storage.resolve(bucket, values["s3_endpoint_url"], env)

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
        namespace=namespace,
        jobs=values["jobs"],
        cores=values["cores"],
        storage=backend,
        container_image=values["container_image"] or None,
        envvars=envvars,
        retries=values["retries"],
        service_account=account,
        run_as_user=values.get("run_as_user", 1000),
        dry_run=bool(values.get("dry_run")),
        forceall=bool(values.get("forceall")),
        unlock=bool(values.get("unlock")),
        keep_going=bool(values["keep_going"]),
        use_conda=bool(values["use_conda"]),
        **pod_options,
        pending_timeout=values.get("pending_timeout", 900),
        cpu_scalar=float(values.get("cpu_scalar", 0.95)),
        infra_retries=values.get("infra_retries", 3),
        follow=bool(values.get("follow")),
        scheduling=MappingProxyType(scheduling),
        default_resources=default_resources,
        keep_sources=bool(values.get("keep_sources")),
        azure_batch=batch,
        verbose=bool(values.get("verbose")),
        sources=MappingProxyType(sources),
    )


def check_workflow_config(data: Mapping[str, Any], path: Path) -> None:
    for key, value in data.items():
        expected = WORKFLOW_KEY_TYPES.get(key)
        if expected is None:
            raise ConfigError(
                f"workflow config {path}: unknown key {key!r}; "
                f"allowed keys are {', '.join(sorted(WORKFLOW_KEY_TYPES))}"
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
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
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
    given: Mapping[str, tuple[Any, str]], wf_config: Mapping[str, Any], path: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (value, source) in given.items():
        if source != CLI and name in wf_config:
            value, source = wf_config[name], f"workflow config {path}"
        values[name], sources[name] = value, source
    return values, sources


def _snakefile(
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
