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
