"""What a byok8s job runs in its pod: Snakemake's own command line, with the fixes
of `compat` applied first (`python -m snakemake_executor_plugin_byok8s.jobrun
ARGS` is `python -m snakemake ARGS` otherwise).

`--storage-home=DIR` first (see `jobcommand.storage_home`): DIR, where Snakemake
keeps the job's local copies of the default storage's files, becomes a link to
the job's directory, and those copies are named by their plain paths
(compat._plain_local_paths): the job's files are where plain Snakemake has
them, under the names plain Snakemake gives them.
In a rule's own image (the job runtime, runtime.py), a `script:` runs with the
image's `python`. The process ends when Snakemake returns, whatever threads the
Snakefile left.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from snakemake_executor_plugin_byok8s import compat, runtime, usage
from snakemake_executor_plugin_byok8s.jobcommand import HOME_OPTION, STORAGE_OPTION


def link_home(home: Path) -> None:
    """`home` as a link to the current directory (nothing if it is one already or
    exists as a real directory: then Snakemake's own layout is kept)."""
    if home.is_symlink() or home.exists():
        return
    home.parent.mkdir(parents=True, exist_ok=True)
    home.symlink_to(Path.cwd(), target_is_directory=True)


OWN_STORAGE_PLUGINS = ("snakemake_storage_plugin_byok8s_azure",)


def register_own_storage() -> None:
    """byok8s's own storage plugins, registered by module: Snakemake's discovery
    misses them in an editable install (it scans plain sys.path entries only)."""
    import importlib

    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    registry = StoragePluginRegistry()
    for name in OWN_STORAGE_PLUGINS:
        registry.register_plugin(name, importlib.import_module(name))


def plain_names(args: list[str], home: str) -> list[str]:
    """The main process names bucket files by its own copies' paths where it hands
    them on (`--unneeded-temp-files .snakemake/storage/s3/<bucket>/<prefix>/a.txt`):
    in the job they are the plain paths (its copies' names, with `home` below the
    same local storage prefix, Snakemake's default in both)."""
    below = home.rstrip("/") + "/"
    return [a[len(below) :] if a.startswith(below) else a for a in args]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    home = None
    if args and args[0].startswith(HOME_OPTION):
        home = args.pop(0)[len(HOME_OPTION) :]
        link_home(Path(home))
        args = plain_names(args, home)
    # Without the option (a command from an older byok8s): every plugin at the start.
    storage = None
    if args and args[0].startswith(STORAGE_OPTION):
        storage = [n for n in args.pop(0)[len(STORAGE_OPTION) :].split(",") if n]
    tally = usage.Tally()
    compat.local_executors_only()
    compat.no_report_plugins()
    compat.storage_plugins_only(storage, args, OWN_STORAGE_PLUGINS)
    compat.apply_in_job(home, own_image=sys.prefix == runtime.MOUNT)
    compat.measure_staging(tally)
    from snakemake.cli import main as snakemake

    sys.argv = ["snakemake", *args]
    tally.mark("snakemake")
    try:
        snakemake()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    # The job is over when Snakemake says so: a thread the Snakefile started and
    # left running (one feeding `from_queue()`, say) must not keep the pod alive.
    logging.shutdown()
    sys.stdout.flush()
    contained = not os.environ.get(usage.NOT_CONTAINED)
    print(usage.line(tally.measured(usage.CGROUP if contained else None)), file=sys.stderr)
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
