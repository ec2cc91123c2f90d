"""What an executor backend tells the engine."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from byok8s.errors import ConfigError

if TYPE_CHECKING:
    from byok8s.config import RunConfig
    from byok8s.staging import Run


@dataclass(frozen=True)
class Given:
    """A backend's options for one run: their values by name, where each came from,
    and the workflow config (whose own keys, such as `affinity`, a backend may read)."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    wf_config: Mapping[str, Any]
    config_file: Path


class Backend:
    plugin: str = "local"  # the Snakemake executor plugin's name
    module: str | None = None  # byok8s's own plugin module, registered before the run
    needs_bucket = False  # its jobs run away from this machine's files
    jobs_in_process = False  # its jobs' commands run in byok8s's own process
    applies_to = ""  # what its own options apply to, for a run that ignores them

    def check(self, given: Given) -> Any:
        """Its own settings for a run, from its declared options (each already checked on
        its own); raise ConfigError for what does not go together."""
        return None

    def validate(self, given: Given) -> None:
        """Check its options of a run on another executor, which ignores them: what
        would fail on this one is said now all the same."""

    def preflight(self, cfg: RunConfig) -> None:
        """Raise a Byok8sError if the run cannot start (checked before anything runs)."""
        if cfg.ignored:
            logging.getLogger(__name__).warning(
                "%s only apply to %s; ignored for this %s run",
                ", ".join(cfg.ignored),
                self.ignored_phrase(cfg),
                cfg.executor,
            )

    @staticmethod
    def ignored_phrase(cfg: RunConfig) -> str:
        from byok8s import backends
        from byok8s.runoptions import by_name

        declared = by_name()
        owners = dict.fromkeys(declared[f[2:].replace("-", "_")].owner for f in cfg.ignored)
        return " and ".join(backends.get(o, bucket=True).applies_to for o in owners)

    def check_workflow(self, cfg: RunConfig, images: Mapping[str, str | None]) -> None:
        """Raise ConfigError for what the loaded workflow asks that this backend cannot
        do; `images`: each rule's `container:` (None: none, or a function)."""

    def settings(self, cfg: RunConfig, run: Run | None = None) -> dict[str, Any] | None:
        """Keyword arguments for the plugin's own ExecutorSettings, or None."""
        return None

    def record(self, cfg: RunConfig) -> dict[str, Any]:
        """Its settings of the run, for the run record."""
        return {}

    def cluster(self, cfg: RunConfig) -> str | None:
        """Which cluster (or account) its jobs run on, for the run record; None: here."""
        return None

    def describe(self, cfg: RunConfig) -> str:
        return f"this machine ({cfg.cores} cores)"

    def where(self, cfg: RunConfig) -> dict[str, Any]:
        """What the run's lock records so that `--unlock` can find what it left."""
        return {"executor": cfg.executor}

    def finish(self, cfg: RunConfig, run_id: str, wait: bool = True) -> None:
        """At the end of every run, whatever its shape: remove what it left running
        or stored on the backend (never raises), and `wait` until it has gone."""

    def remove_dead_run(self, cfg: RunConfig, held: dict[str, Any]) -> None:
        """`--unlock`: remove what the run holding the lock `held` left behind,
        saying what first."""


def check_rules(cfg: RunConfig, names: Iterable[str], images: Mapping[str, str | None]) -> None:
    """For a backend that runs rules in their images: the workflow config's `rules`
    (`names`) are rules of the workflow, and each rule's `container:` is an image it
    can run."""
    from snakemake_executor_plugin_byok8s import options

    where = f"workflow config {cfg.workflow.config_file}: rules"
    for name in names:
        if name not in images:
            known = ", ".join(sorted(images)) or "none"
            raise ConfigError(f"{where}: {name!r} is not a rule of this workflow (its "
                              f"rules: {known}); fix the name or remove it")  # fmt: skip
    for name, image in sorted(images.items()):
        if image is not None:
            try:
                options.image(image, f"rule {name}'s container")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
