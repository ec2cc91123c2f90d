"""The options of `byok8s run`, each declared once (declare.Option), in the order
--help and the README show them: the run's own, then each backend's."""

from __future__ import annotations

from typing import Any

from byok8s.backends import NAMES as EXECUTORS
from byok8s.declare import Option, click_options, config_rows, option_rows

RUN = (
    Option(name="snakefile", short="-s", metavar="PATH", shown="from the workflow config",
           config=False, help="Snakefile to run (overrides the workflow config)."),
    Option(name="bucket", metavar="URL",
           help="Object storage for inputs and outputs: s3://NAME[/PREFIX], "
           "az://CONTAINER[/PREFIX] or gs://NAME[/PREFIX]."),
    Option(name="s3_bucket", metavar="NAME", config=False,
           help="Same as --bucket s3://NAME (byok8s 2019)."),
    Option(name="executor", choices=EXECUTORS, shown="local without a bucket, kubernetes with one",
           help="Where jobs run."),
    Option(name="jobs", short="-j", type=int, default=10, least=1, must="at least 1",
           help="Jobs (pods) running at once on a cluster."),
    Option(name="cores", type=int, least=1, must="at least 1",
           shown="all cores (locally), none (cluster)",
           help="Cores to use locally; on a cluster, a cap on every rule's threads."),
    Option(name="container_image", metavar="IMAGE",
           shown="'byok8s image' (matches the installed snakemake)",
           help="Image for the job pods (see the Dockerfile)."),
    Option(name="envvars", type=list, metavar="NAME",
           help="Environment variable passed to jobs (repeatable, or comma-separated); "
           "values travel in a Kubernetes Secret."),
    Option(name="s3_endpoint_url", metavar="URL", shown="AWS",
           help="S3-compatible endpoint (MinIO, Ceph, ...) instead of AWS."),
    Option(name="workdir", default=".", metavar="DIR", config=False,
           help="Working directory for the run (local outputs land here)."),
    Option(name="dry_run", short="-n", type=bool, config=False,
           help="Show what would run; run nothing."),
    Option(name="forceall", short="-F", type=bool, config=False,
           help="Rerun every job, even if up to date."),
    Option(name="unlock", type=bool, config=False,
           help="Remove the locks a killed run left (on the bucket prefix and in the working "
           "directory) and stop what it left running, then exit."),
    Option(name="keep_going", type=bool, help="Go on with independent jobs after a failure."),
    Option(name="retries", type=int, default=0, least=0, must="0 or more",
           help="Times to retry a failed job (its own command failing)."),
    Option(name="use_conda", type=bool, help="Run jobs in their rules' conda environments."),
    Option(name="keep_sources", type=bool, config=False,
           help="Keep the workflow sources uploaded to the bucket for the jobs (removed at "
           "the end by default)."),
    Option(name="default_resources", type=list, pairs=True, metavar="NAME=VALUE",
           shown="Snakemake's",
           help="Resources of rules that do not set them (repeatable), e.g. mem_mb=4000; on "
           "a cluster they become pod requests (mem_mb also the memory limit)."),
)  # fmt: skip
VERBOSE = Option(
    name="verbose", short="-v", type=bool, config=False,
    help="Show Snakemake's output and tracebacks.",
)  # fmt: skip


def all_options() -> tuple[Option, ...]:
    """Every option of `byok8s run`: the run's, each backend's, then --verbose."""
    from byok8s.backends.azure_batch import OPTIONS as BATCH
    from snakemake_executor_plugin_byok8s.settings import OPTIONS as PODS

    return (*RUN, *PODS, *BATCH, VERBOSE)


def by_name() -> dict[str, Option]:
    return {o.name: o for o in all_options()}


def doctor_options() -> list[Option]:
    """`byok8s doctor`'s options: the run's, said of what it checks."""
    from dataclasses import replace

    declared = by_name()
    helps = {
        "k8s_namespace": "Namespace to check.",
        "bucket": "Bucket or container to probe (write, read, delete).",
        "s3_endpoint_url": "S3-compatible endpoint instead of AWS.",
        "envvars": "Variables the run will pass.",
        "container_image": "Job image.",
        "image_pull_secret": "Pull secrets the pods get (used to pull the images).",
        "snakefile": "Snakefile whose rules' images to check (else the workflow config's).",
    }
    chosen = [replace(declared[name], help=text) for name, text in helps.items()]
    return [*chosen, replace(VERBOSE, help="Show tracebacks.")]


def run_options(command: Any) -> Any:
    return click_options(all_options())(command)


# The README's tables, made from the declarations: `python -m byok8s.runoptions README.md`
# writes them between these marks (test_options_table checks they are current).
MARKS = {
    "config": ("<!-- config keys: made from the declarations -->", "<!-- end of config keys -->"),
    "options": ("<!-- options: made from the declarations -->", "<!-- end of options -->"),
}


def readme_tables() -> dict[str, str]:
    from byok8s.config import WORKFLOW_KEYS

    declared = all_options()
    own = [f"| `{key}` | {kind} | {meaning} |" for key, (_, kind, meaning) in WORKFLOW_KEYS.items()]
    config = ["| key | type | meaning |", "|---|---|---|", *own, *config_rows(declared)]
    options = ["| option | default | meaning |", "|---|---|---|", *option_rows(declared)]
    return {"config": "\n".join(config), "options": "\n".join(options)}


def with_tables(readme: str) -> str:
    """The README text with its tables made anew."""
    for name, table in readme_tables().items():
        begin, end = MARKS[name]
        before, _, rest = readme.partition(begin + "\n")
        _, _, after = rest.partition(end)
        readme = f"{before}{begin}\n{table}\n{end}{after}"
    return readme


if __name__ == "__main__":
    import sys
    from pathlib import Path

    path = Path(sys.argv[1])
    path.write_text(with_tables(path.read_text()))
