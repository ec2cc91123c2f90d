"""A Snakefile that cannot be read or evaluated is bad input: one line naming the
file, the line and the problem, like any other config error."""

from __future__ import annotations

import traceback
from pathlib import Path
from tokenize import TokenError
from typing import Any

from byok8s.errors import ConfigError


def load_error(exc: BaseException, workflow_api: Any, cfg: Any) -> ConfigError | None:
    """The ConfigError for an exception raised while Snakemake read the Snakefile
    (or a file it includes), or None when it did not come from there."""
    from snakemake.exceptions import WorkflowError

    linemaps = _linemaps(workflow_api)
    where = _origin(exc, linemaps)
    if where is None:
        if isinstance(exc, WorkflowError) and getattr(exc, "snakefile", None):
            where = (str(exc.snakefile), getattr(exc, "lineno", None))
        else:
            return None
    path, line = where
    at = f"Snakefile {_shown(path, cfg)}" + (f" line {line}" if line else "")
    problem, fix = _problem(exc, cfg)
    return ConfigError(f"{at}: {problem}; {fix}")


def _linemaps(workflow_api: Any) -> dict[str, dict[int, int]]:
    # Snakemake compiles a Snakefile to Python; its linemaps map the compiled
    # lines back to the Snakefile's (no public API exposes them).
    workflow = getattr(workflow_api, "_workflow_store", None)
    return dict(getattr(workflow, "linemaps", None) or {})


def _origin(
    exc: BaseException, linemaps: dict[str, dict[int, int]]
) -> tuple[str, int | None] | None:
    if isinstance(exc, SyntaxError) and exc.filename:
        line = exc.lineno
        mapped = linemaps.get(exc.filename, {})
        return exc.filename, mapped.get(line, line) if line else None
    if isinstance(exc, TokenError):  # Snakemake's own parser reads the Snakefile's lines
        position = exc.args[1] if len(exc.args) > 1 else None
        line = position[0] if isinstance(position, tuple) else None
        return (list(linemaps)[-1] if linemaps else ""), line
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename in linemaps:
            line = frame.lineno or 0
            return frame.filename, linemaps[frame.filename].get(line, line)
    return None


def _problem(exc: BaseException, cfg: Any) -> tuple[str, str]:
    """What went wrong, and how to fix it."""
    fix = "fix the Snakefile"
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg}", fix
    if isinstance(exc, TokenError):
        return f"syntax error: {exc.args[0]}", fix
    if isinstance(exc, KeyError) and exc.args:
        key = exc.args[0]
        return f"KeyError {key!r}", (
            f"if it is a config key, add {key!r} to the params file "
            f"{cfg.workflow.params_file}, or fix the Snakefile"
        )
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}", "create it or fix the include:/configfile: path"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}", fix


def _shown(path: str, cfg: Any) -> str:
    """The path as the user knows it: the bundled copy's name, or as found."""
    if not path:
        return str(cfg.workflow.snakefile)
    return str(Path(path))
