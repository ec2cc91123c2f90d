"""The `byok8s` command line: options in, one call out.

`byok8s WORKFLOW_CONFIG PARAMS [options]` runs a workflow (the `run` command is
implied); `byok8s workflows` lists the bundled ones. Every option can also be
set through a BYOK8S_<OPTION> environment variable.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any

import click

from byok8s import __version__, signals
from byok8s.declare import ENV_PREFIX, click_options
from byok8s.errors import Byok8sError, ExitCode, Interrupted
from byok8s.runoptions import doctor_options, run_options

GROUP_ONLY = {"--help", "-h", "--version"}
VERBOSE = "byok8s.verbose"
SECRETS = "byok8s.secrets"


class DefaultRunGroup(click.Group):
    """A group whose default command is `run`, with one error handler for all."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in GROUP_ONLY:
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        previous = signals.install()
        try:
            result = super().invoke(ctx)
            _stopped(ctx)  # Snakemake swallowed the interrupt and finished the run
            return result
        except KeyboardInterrupt as exc:
            _stopped(ctx, signal.SIGTERM if isinstance(exc, signals.Terminated) else signal.SIGINT)
        except Byok8sError as err:
            _stopped(ctx)
            _fail(ctx, err)
        except click.UsageError as exc:  # one line, like every other error
            where = exc.ctx.command_path if exc.ctx else "byok8s"
            message = exc.format_message().replace("\n", " ").rstrip(".")
            click.echo(f"byok8s: error: {message}; see '{where} --help'", err=True)
            sys.exit(int(ExitCode.USAGE))
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # stdout closed early (`byok8s doctor | head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(int(ExitCode.WORKFLOW_FAILED))
        except Exception as exc:  # a bug: still one line, traceback with --verbose
            internal = Byok8sError(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --verbose and report it)"
            )
            internal.exit_code = ExitCode.INTERNAL
            internal.__cause__ = exc
            _fail(ctx, internal)
        finally:
            signals.restore(previous)


def _stopped(ctx: click.Context, default: int | None = None) -> None:
    """Exit 130 / 143 with one line if a stop signal ended the run."""
    signum = signals.received() or default
    if signum is not None:
        code = ExitCode.TERMINATED if signum == signal.SIGTERM else ExitCode.INTERRUPTED
        _fail(ctx, Interrupted(signals.NAMES[signal.Signals(signum)], code))


def _fail(ctx: click.Context, err: Byok8sError) -> None:
    from byok8s.output import Redactor, print_error

    redact = Redactor(ctx.meta.get(SECRETS, ()))
    print_error(err.message, redact, err.details)
    if ctx.meta.get(VERBOSE) or os.environ.get(f"{ENV_PREFIX}_VERBOSE") in ("1", "true"):
        text = "".join(traceback.format_exception(err))
        print(redact(text), file=sys.stderr)
    sys.exit(int(err.exit_code))


@click.group(cls=DefaultRunGroup)
@click.version_option(__version__, prog_name="byok8s")
def cli() -> None:
    """Run a Snakemake workflow as one command, on this machine or on your own
    Kubernetes cluster with object storage (S3, Azure Blob, GCS) and no shared
    filesystem.

    \b
      byok8s workflow-alpha params-blue                      # bundled example, locally
      byok8s workflow-alpha params-blue --bucket s3://my-bucket   # on Kubernetes
    """


@cli.command()
@click.argument("workflow_config")
@click.argument("params")
@run_options
@click.pass_context
def run(ctx: click.Context, **options: Any) -> None:
    """Run WORKFLOW_CONFIG with PARAMS (each a JSON/YAML file or a bundled name)."""
    from byok8s.commands import run

    ctx.meta[VERBOSE] = options["verbose"]
    given = {name: (value, _source(ctx, name)) for name, value in options.items()}
    _done(ctx, run.main(given, _secrets(ctx)))


@cli.command()
@click.pass_context
def workflows(ctx: click.Context) -> None:
    """List the bundled workflows and their example config and params files."""
    from byok8s.commands import workflows

    _done(ctx, workflows.main())


@cli.command()
@click.option(
    "--repository",
    default=None,
    metavar="REPO",
    help="Registry and name to tag with, e.g. myregistry.azurecr.io/byok8s-job.",
)
@click.pass_context
def image(ctx: click.Context, repository: str | None) -> None:
    """Print the job image name that matches this byok8s and snakemake (the default
    for --container-image); tag your own build of the Dockerfile with it."""
    from byok8s.commands import image

    _done(ctx, image.main(repository))


@cli.command("fix-dns")
@click.option(
    "--resolver",
    "resolvers",
    multiple=True,
    metavar="IP",
    callback=lambda ctx, param, value: _ip_addresses(value),
    help="DNS server CoreDNS forwards to (repeatable) [default: 8.8.8.8 8.8.4.4].",
)
@click.option("-n", "--dry-run", is_flag=True, help="Show the change to the Corefile only.")
@click.option("--force", is_flag=True, help="Change the Corefile even when no loop is found.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=180,
    show_default=True,
    help="Seconds to wait for CoreDNS to become Ready.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks.")
@click.pass_context
def fix_dns(ctx: click.Context, resolvers: tuple[str, ...], **options: Any) -> None:
    """Fix CoreDNS crash-looping on a forwarding loop (minikube on cloud VMs): point it
    at real resolvers, restart it and wait until it is Ready."""
    from byok8s.commands import fix_dns

    ctx.meta[VERBOSE] = options.pop("verbose")
    _done(ctx, fix_dns.main(resolvers, **options))


@cli.command()
@click.argument("workflow_config", required=False)
@click.argument("params", required=False)
@click_options(doctor_options())
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def doctor(ctx: click.Context, **options: Any) -> None:
    """Check that a cluster run can work: kubeconfig and cluster, namespace and
    permissions, cluster DNS, bucket, job credentials, job image. With
    WORKFLOW_CONFIG (and the PARAMS its Snakefile reads) or --snakefile, also each
    image the rules name: on a node, or pullable. Exit 0 only when no check fails."""
    from byok8s.commands import doctor

    ctx.meta[VERBOSE] = options["verbose"]
    _done(ctx, doctor.main(options))


def _record_options(command: Any) -> Any:
    """Where `runs` and `logs` read run records: a working directory or a bucket."""
    for option in reversed(
        [
            click.option(
                "--workdir",
                type=click.Path(file_okay=False),
                default=".",
                show_default=True,
                help="Working directory of the runs.",
            ),
            click.option("--bucket", metavar="URL", help="Read the records saved in a bucket."),
            click.option("--s3-endpoint-url", metavar="URL", help="S3-compatible endpoint."),
            click.option("-v", "--verbose", is_flag=True, help="Show tracebacks."),
        ]
    ):
        command = option(command)
    return command


@cli.command()
@_record_options
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.pass_context
def runs(ctx: click.Context, **options: Any) -> None:
    """List past runs (newest first) from their records in the working directory or
    a bucket."""
    from byok8s.commands import runs
    from byok8s.output import setup_logging

    ctx.meta[VERBOSE] = options["verbose"]
    setup_logging(options["verbose"])
    _done(ctx, runs.main(options, _secrets(ctx)))


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.argument("job", required=False)
@_record_options
@click.pass_context
def logs(ctx: click.Context, run_id: str, job: str | None, **options: Any) -> None:
    """Print the pod logs of RUN's job JOB (a job id or a rule name; default: the failed
    jobs, else all), from the saved copy or the cluster. RUN may be an id's start or
    'last'."""
    from byok8s.commands import logs
    from byok8s.output import setup_logging

    ctx.meta[VERBOSE] = options["verbose"]
    setup_logging(options["verbose"])
    _done(ctx, logs.main(run_id, job, options, _secrets(ctx)))


@cli.command()
@click.argument("run_id", metavar="RUN")
@_record_options
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write the HTML report here (default: report-RUN.html in this directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report's data as JSON instead.")
@click.pass_context
def report(ctx: click.Context, run_id: str, **options: Any) -> None:
    """Write RUN's report, one self-contained HTML file: a timeline of every job
    attempt, time, CPU and memory asked for against used per rule, right-sizing
    hints and failures. RUN may be an id's start or 'last'."""
    from byok8s.commands import report
    from byok8s.output import setup_logging

    ctx.meta[VERBOSE] = options["verbose"]
    setup_logging(options["verbose"])
    _done(ctx, report.main(run_id, options, _secrets(ctx)))


def _done(ctx: click.Context, code: int) -> None:
    """Exit with a command's code; 0 returns, so that a stop signal Snakemake swallowed
    still ends the run with its own code (DefaultRunGroup.invoke)."""
    if code:
        ctx.exit(code)


def _secrets(ctx: click.Context) -> list[str]:
    """The list a command puts the secrets it learns in (redacted from its error)."""
    found: list[str] = ctx.meta.setdefault(SECRETS, [])
    return found


def _ip_addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an IP address, e.g. 1.1.1.1") from None
    return values


def _source(ctx: click.Context, name: str) -> str:
    from click.core import ParameterSource

    from byok8s.config import CLI, DEFAULT, ENV

    source = ctx.get_parameter_source(name)
    if source == ParameterSource.COMMANDLINE:
        return CLI
    if source == ParameterSource.ENVIRONMENT:
        return f"{ENV} ({ENV_PREFIX}_{name.upper()})"
    return DEFAULT


def main() -> None:
    cli(prog_name="byok8s")
