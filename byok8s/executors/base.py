"""What an executor backend tells the engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from byok8s.config import RunConfig


class Executor:
    plugin: str = "local"  # the Snakemake executor plugin's name
    module: str | None = None  # byok8s's own plugin module, registered before the run

    def preflight(self, cfg: RunConfig) -> None:
        """Raise a Byok8sError if the run cannot start (checked before anything runs)."""
        given = cfg.pod_options_given()
        if given:
            logging.getLogger(__name__).warning(
                "%s only apply to pods (--executor kubernetes); ignored for this %s run",
                ", ".join(given),
                cfg.executor,
            )

    def settings(self, cfg: RunConfig) -> dict[str, Any] | None:
        """Keyword arguments for the plugin's own ExecutorSettings, or None."""
        return None

    def describe(self, cfg: RunConfig) -> str:
        return f"this machine ({cfg.cores} cores)"

    def where(self, cfg: RunConfig) -> dict[str, Any]:
        """What the run's lock records so that `--unlock` can find what it left."""
        return {"executor": cfg.executor}

    def finish(self, cfg: RunConfig, run_id: str) -> None:
        """At the end of every run, whatever its shape: remove what it left running
        or stored on the backend (never raises)."""

    def remove_dead_run(self, cfg: RunConfig, held: dict[str, Any]) -> None:
        """`--unlock`: remove what the run holding the lock `held` left behind,
        saying what first."""
