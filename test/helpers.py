from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from byok8s.cli import cli


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("byok8s: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    entry_point: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run byok8s in a subprocess (jobs need real stdio): `python -m byok8s`, or the
    installed `byok8s` command with `entry_point`."""
    full_env = {**os.environ, **(env or {})}
    command = [str(Path(sys.executable).parent / "byok8s")] if entry_point else [
        sys.executable, "-m", "byok8s"]  # fmt: skip
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_on_bucket(
    workflow: str, params: str, bucket: str, *extra: str, cwd: Path, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    """A run whose jobs run on this machine with the bucket as default storage."""
    return run_cli(
        workflow, params, "--bucket", bucket, "--executor", "local", *extra, cwd=cwd, env=env
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed run prints on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
