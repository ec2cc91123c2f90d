"""`byok8s [run] WORKFLOW_CONFIG PARAMS [options]`: resolve the options, run once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byok8s.errors import ExitCode


def main(given: Mapping[str, tuple[Any, str]], secrets: list[str]) -> int:
    """`given`: each option's value with where it came from (config.CLI, ...)."""
    from byok8s import app, config

    cfg = config.resolve(given, config.environ())
    if cfg.storage is not None:
        secrets.extend(cfg.storage.secret_values())
    app.run(cfg)
    return int(ExitCode.OK)
