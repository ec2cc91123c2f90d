"""The one error hierarchy of byok8s and the exit codes it maps to.

Every error a user can cause or fix is a `Byok8sError`: its message says what
failed, the value that caused it, and how to fix it, on one line. The entry
point prints that line and exits with the error's code (see `ExitCode` and the
README's exit-code table).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the `byok8s` command (documented in the README)."""

    OK = 0
    WORKFLOW_FAILED = 1  # a job failed, or Snakemake rejected the workflow
    USAGE = 2  # a command-line option is malformed (click's own code)
    CONFIG = 3  # a config/params file, workflow name or target is wrong
    STORAGE = 4  # bucket URL, credentials, or object storage unreachable
    CLUSTER = 5  # kubeconfig, cluster unreachable, namespace missing
    LOCKED = 6  # another run holds the lock of the bucket prefix
    INTERNAL = 70  # a bug in byok8s (please report it, with --verbose output)
    INTERRUPTED = 130  # SIGINT (Ctrl-C)
    TERMINATED = 143  # SIGTERM


class Byok8sError(Exception):
    """Base of every error byok8s reports as one line."""

    exit_code: ExitCode = ExitCode.WORKFLOW_FAILED

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        # Extra lines (e.g. a failed job's log tail) shown below the message.
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(Byok8sError):
    exit_code = ExitCode.CONFIG


class StorageError(Byok8sError):
    exit_code = ExitCode.STORAGE


class NotFound(StorageError):
    """The object asked for is not in the storage (each backend says so from its
    client library's error, never from the wording of a message)."""


class ClusterError(Byok8sError):
    exit_code = ExitCode.CLUSTER


class Locked(Byok8sError):
    """Another run holds the bucket prefix or the working directory."""

    exit_code = ExitCode.LOCKED


class WorkflowFailed(Byok8sError):
    exit_code = ExitCode.WORKFLOW_FAILED


class Interrupted(Byok8sError):
    """The run was stopped by a signal; its cluster objects were cleaned up."""

    def __init__(self, signal_name: str, exit_code: ExitCode) -> None:
        super().__init__(f"interrupted by {signal_name}; the run's jobs were cancelled")
        self.exit_code = exit_code
