"""What a remote job finds in its pod: the workflow's files (in git or not), its
storage files where plain Snakemake has them, and a process that ends when
Snakemake does (issue 15)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from snakemake_executor_plugin_byok8s import compat, jobcommand, jobrun, sources


class Probe:
    """A storage object as the S3 plugin names local copies: <bucket>/<key>."""

    def __init__(self, query: str) -> None:
        self.query = query

    def local_suffix(self) -> str:
        return self.query.split("://", 1)[1]


def workflow(prefix: str | None, remote_prefix: str = ".snakemake/storage") -> SimpleNamespace:
    provider = SimpleNamespace(object=Probe, local_prefix=Path("/home/ada/.snakemake/storage/s3"))
    return SimpleNamespace(
        storage_registry=SimpleNamespace(default_storage_provider=provider if prefix else None),
        storage_settings=SimpleNamespace(
            default_storage_prefix=prefix, remote_job_local_storage_prefix=Path(remote_prefix)
        ),
    )


def test_the_storage_home_is_where_the_job_keeps_local_copies_of_the_default_storage() -> None:
    assert jobcommand.storage_home(workflow("s3://lab/runs/exp 1/")) == (
        ".snakemake/storage/s3/lab/runs/exp 1"
    )
    assert jobcommand.storage_home(workflow("s3://lab", "/scratch/st")) == "/scratch/st/s3/lab"
    assert jobcommand.storage_home(workflow(None)) is None


def test_the_job_command_goes_through_jobrun_with_its_storage_home() -> None:
    deploy = "python -m snakemake --deploy-sources s3://lab/src.tar.xz abc"
    command = f"{deploy} && python -m snakemake --target-jobs 'a:' --cores 1"
    made = jobcommand.through_jobrun(command, ".snakemake/storage/s3/lab/runs/exp 1")
    assert made == (
        f"{deploy} && python -m snakemake_executor_plugin_byok8s.jobrun "
        "--storage-home='.snakemake/storage/s3/lab/runs/exp 1' --target-jobs 'a:' --cores 1"
    )
    assert jobcommand.through_jobrun("python -m snakemake --cores 1") == (
        "python -m snakemake_executor_plugin_byok8s.jobrun --cores 1"
    )
    made = jobcommand.through_jobrun("python -m snakemake --cores 1", "h", storage=["s3", "gcs"])
    assert made == (
        "python -m snakemake_executor_plugin_byok8s.jobrun --storage-home=h "
        "--storage-plugins=s3,gcs --cores 1"
    )


def test_a_job_that_writes_plain_paths_writes_its_storage_copies(tmp_path, monkeypatch) -> None:
    """`mkdir clustering/a` instead of `{output}` (Snakemake's checkpoint example)
    lands where Snakemake uploads the output from."""
    monkeypatch.chdir(tmp_path)
    home = Path(".snakemake/storage/s3/lab/runs")
    jobrun.link_home(home)
    Path("clustering/a").mkdir(parents=True)
    Path("clustering/a/1.txt").write_text("1\n")
    assert (home / "clustering/a/1.txt").read_text() == "1\n"
    jobrun.link_home(home)  # again: nothing changes
    assert home.resolve() == tmp_path.resolve()


def test_the_pod_process_ends_when_snakemake_does_whatever_threads_are_left() -> None:
    """A Snakefile may start a thread that waits for ever (test_queue_input's feeds
    `from_queue()` and then joins it); the pod must still end."""
    code = (
        "import threading\n"
        "threading.Thread(target=threading.Event().wait).start()\n"
        "from snakemake_executor_plugin_byok8s import jobrun\n"
        "jobrun.main(['--version'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()[0].isdigit()


def test_a_job_runs_a_workflow_without_importing_the_executor_plugins(tmp_path: Path) -> None:
    """A job's process imports no executor plugin (nor the kubernetes and Azure SDKs
    theirs import): Snakemake runs the job with its local executor. Nor any report
    plugin, nor smart_open (with its transports' SDKs) for its local Snakefile."""
    (tmp_path / "Snakefile").write_text(
        'rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n'
    )
    code = (
        "import os, sys\n"
        "from snakemake_executor_plugin_byok8s import jobrun\n"
        "real_exit = os._exit\n"
        "def check(code):\n"
        "    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry\n"
        "    names = ('kubernetes', 'azure.batch', 'snakemake_executor_plugin_kubernetes',"
        " 'snakemake_executor_plugin_byok8s.executor')\n"
        "    loaded = [m for m in names if m in sys.modules]\n"
        "    print('loaded', loaded, sorted(ExecutorPluginRegistry().plugins), flush=True)\n"
        "    storage = [m for m in sys.modules if m.startswith('snakemake_storage_plugin_')]\n"
        "    print('storage', storage, flush=True)\n"
        "    others = ('smart_open', 'snakemake.report.html_reporter', 'jinja2')\n"
        "    print('others', [m for m in others if m in sys.modules], flush=True)\n"
        "    real_exit(code)\n"
        "os._exit = check\n"
        "jobrun.main(['--storage-plugins=', '--cores', '1', 'a.txt'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.txt").read_text() == "a\n"
    assert "loaded [] ['dryrun', 'local', 'touch']" in done.stdout
    assert "storage []" in done.stdout  # nor any storage plugin its workflow does not use
    assert "others []" in done.stdout


class Workflow:
    """Snakemake's own archive: here just the Snakefile."""

    main_snakefile = "Snakefile"

    def write_source_archive(self, path: Path) -> None:
        with tarfile.open(path, "w:xz") as archive:
            archive.add("Snakefile")


def packed(path: Path) -> set[str]:
    with tarfile.open(path) as archive:
        return {m.name for m in archive.getmembers() if m.isfile()}


def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "w").mkdir()
    monkeypatch.chdir(tmp_path / "w")
    return tmp_path / "out.tar.xz"


def test_outside_git_the_jobs_get_the_workflows_small_files(tmp_path, monkeypatch) -> None:
    archive = workdir(tmp_path, monkeypatch)
    Path("Snakefile").write_text("import helpers\n")
    Path("helpers.py").write_text("X = 1\n")
    Path("inner").mkdir()
    Path("inner/Snakefile_inner").write_text("rule: output: 'x'\n")
    Path(".env").write_text("AWS_SECRET_ACCESS_KEY=not-for-pods\n")
    Path(".snakemake/log").mkdir(parents=True)
    Path(".snakemake/log/x.log").write_text("log\n")
    Path("__pycache__").mkdir()
    Path("__pycache__/helpers.pyc").write_bytes(b"\0")
    Path("reads.fq").write_bytes(b"A" * (sources.MAX_FILE + 1))  # data, not a source
    assert sources.archive(Workflow(), archive) == []
    assert packed(archive) == {"Snakefile", "helpers.py", "inner/Snakefile_inner"}


def test_past_the_total_size_files_are_left_out_and_named(tmp_path, monkeypatch) -> None:
    archive = workdir(tmp_path, monkeypatch)
    monkeypatch.setattr(sources, "MAX_TOTAL", 10)
    Path("Snakefile").write_text("rule a: pass\n")
    Path("small.py").write_text("1\n")
    Path("larger.py").write_text("x = 1234567890\n")
    assert sources.archive(Workflow(), archive) == ["larger.py"]
    assert packed(archive) == {"Snakefile", "small.py"}


def test_in_git_snakemakes_own_choice_stands(tmp_path, monkeypatch) -> None:
    archive = workdir(tmp_path, monkeypatch)
    subprocess.run(["git", "init", "-q"], check=True)
    Path("Snakefile").write_text("rule a: pass\n")
    Path("untracked.py").write_text("1\n")
    sources.archive(Workflow(), archive)
    assert packed(archive) == {"Snakefile"}


def test_in_a_job_a_storage_files_size_is_its_local_copys(tmp_path) -> None:
    """A group's later job sizes its input (`mem_mb=2*input.size`) before the group
    stores it: the local copy answers."""
    from snakemake.io import _IOFile

    compat.apply_in_job()
    copy = tmp_path / "test.in"
    copy.write_bytes(b"x" * 1234)
    made = SimpleNamespace(is_storage=True,
                           storage_object=SimpleNamespace(local_path=lambda: copy))  # fmt: skip
    assert asyncio.run(_IOFile.size(made)) == 1234


@pytest.mark.parametrize("checkpoint, unneeded", [(True, []), (False, ["a1.txt"])])
def test_a_checkpoints_temp_outputs_are_never_unneeded(checkpoint, unneeded) -> None:
    """Its consumers are known only after it ran (test_issue823_1)."""
    compat.apply()  # imports Snakemake in its own order first
    from snakemake.dag import DAG
    from snakemake.io import temp

    job = SimpleNamespace(output=[temp("a1.txt")], is_checkpoint=checkpoint,
                          is_group=lambda: False)  # fmt: skip
    dag = SimpleNamespace(is_needed_tempfile=lambda *a, **k: False)
    assert [str(f) for f in DAG.get_unneeded_temp_files(dag, job)] == unneeded


def test_a_group_jobs_failure_says_why_once_per_member() -> None:
    """Snakemake's group error drops the executor's message; byok8s's does not."""
    from snakemake_executor_plugin_byok8s import Executor

    said: list[tuple[int, str]] = []

    def member(jobid: int) -> SimpleNamespace:
        job = SimpleNamespace(jobid=jobid, name="a", wildcards_dict={}, is_group=lambda: False)
        job.log_error = lambda msg, **kw: said.append((jobid, msg))
        return job

    group = SimpleNamespace(jobs=[member(2), member(1)], name="g", is_group=lambda: True)
    executor = SimpleNamespace(_submitted={})
    Executor.print_job_error(executor, SimpleNamespace(job=group, external_jobid="j"), "too big")
    assert said == [(1, "too big"), (2, "failed with rule a [job 1], in the same pod (group g)")]


def test_default_resources_reach_jobs_in_the_units_they_were_given() -> None:
    """`mem_mib=953.67` is 1000 MB; Snakemake hands jobs `mem_mb=953.67` (954)."""
    compat.apply()
    from snakemake.resources import Resources

    given = Resources.parse(["mem_mib=953.67", "disk_mb=1000"], allow_expressions=True)
    assert sorted(given.args) == ["disk_mb=1000", "mem_mib=953.67"]
    again = Resources.parse(given.args, allow_expressions=True)
    assert sorted(again.args) == sorted(given.args)


def test_in_a_job_removing_a_storage_file_removes_its_local_copy(tmp_path) -> None:
    """A temp() output its group no longer needs is gone for the group's later jobs
    too (test_group_temp)."""
    from snakemake.io import _IOFile

    compat.apply_in_job()
    copy = tmp_path / "a.txt"
    copy.write_text("a\n")

    async def nowhere() -> bool:
        return False  # not stored yet: the group stores its outputs at its end

    made = SimpleNamespace(is_directory=False, is_storage=True, exists_in_storage=nowhere,
                           storage_object=SimpleNamespace(local_path=lambda: copy))  # fmt: skip
    asyncio.run(_IOFile.remove(made))
    assert not copy.exists()


def test_expand_takes_a_rules_output_that_the_default_storage_mapped(monkeypatch) -> None:
    """`expand(rules.a.output[0], name=...)` (snakemake/snakemake#3027)."""
    compat.apply()
    import snakemake.workflow
    from snakemake import io
    from snakemake.ioutils.collect import collect

    settings = SimpleNamespace(default_storage_prefix="s3://lab/runs/")
    mapped = SimpleNamespace(path_modifier=SimpleNamespace(
        apply_default_storage=lambda path: f"s3:{path}"))  # fmt: skip
    monkeypatch.setitem(vars(snakemake.workflow), "workflow",
                        SimpleNamespace(storage_settings=settings, modifier=mapped))  # fmt: skip
    pattern = io.AnnotatedString(".snakemake/storage/s3/lab/runs/a/{name}.out")
    pattern.flags["storage_object"] = SimpleNamespace(query="s3://lab/runs/a/{name}.out")
    made = io.expand(pattern, name=["x", "y"])
    assert made == ["s3:a/x.out", "s3:a/y.out"]
    # A module's replace_prefix is in the rule's output already: not applied again.
    assert all(io.is_flagged(f, "path_modified") for f in made)
    assert snakemake.workflow.expand([pattern], name=["x"]) == ["s3:a/x.out"]
    assert collect(pattern, name=["z"]) == ["s3:a/z.out"]
    assert io.expand([pattern, "b/{name}"], name=["x"]) == ["a/x.out", "b/x"]  # as Snakemake
    pattern.flags["temp"] = True  # a flag expand() refuses, as Snakemake does
    with pytest.raises(Exception, match="given to expand"):
        io.expand(pattern, name=["x"])


def test_a_job_names_its_storage_files_by_their_plain_paths(tmp_path) -> None:
    """In a job, `{input}` and `{output}` of the default storage are the names plain
    Snakemake gives (`echo {input} > {output}` writes `a.txt`); other storage keeps
    Snakemake's layout. In a process of its own: the fix binds the job's home."""
    script = """
from pathlib import Path
from types import SimpleNamespace
from snakemake_executor_plugin_byok8s import compat
compat.apply_in_job(".snakemake/storage/s3/lab/runs")
from snakemake_interface_storage_plugins.storage_object import StorageObjectBase

def copy(suffix, overwrite=None):
    provider = SimpleNamespace(local_prefix=Path(".snakemake/storage/s3"))
    made = SimpleNamespace(provider=provider, local_suffix=lambda: suffix,
                           _overwrite_local_path=overwrite)
    return str(StorageObjectBase.local_path(made))

print(copy("lab/runs/a/b.txt"), copy("lab/other/c.txt"), copy("lab/runs"),
      copy("lab/runs/d", Path("/x/d")))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.split() == [
        "a/b.txt", ".snakemake/storage/s3/lab/other/c.txt", ".snakemake/storage/s3/lab/runs",
        "/x/d",
    ]  # fmt: skip


WORKFLOW = """
rule all:
    input: "b.txt", "listing.txt"
rule a:
    output: "a.txt"
    shell: "echo {output} > {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "echo {input} > {output}; pwd > where.txt"
checkpoint c:
    output: directory("parts")
    shell: "mkdir -p parts && echo 1 > parts/1.txt && echo 2 > parts/2.txt"
def parts(wildcards):
    found = checkpoints.c.get().output[0]
    return expand(f"{found}/{{i}}.txt", i=glob_wildcards(f"{found}/{{i}}.txt").i)
rule listing:
    input: parts
    output: "listing.txt"
    shell: "echo {input} > {output}"
"""


@pytest.mark.s3
def test_with_a_bucket_on_this_machine_each_job_runs_as_in_a_pod(tmp_path, s3) -> None:
    """`--executor local --bucket`: every job in a directory of its own, with its
    files under their plain names, through the bucket; the working directory
    gets none of them, and the jobs' directories go at the end."""
    from helpers import run_on_bucket

    (tmp_path / "Snakefile").write_text(WORKFLOW)
    (tmp_path / "wf.json").write_text('{"snakefile": "Snakefile"}')
    (tmp_path / "p.json").write_text("{}")
    client, bucket = s3["client"], s3["bucket"]
    before = set(Path(tempfile.gettempdir()).glob("byok8s-jobs-*"))
    result = run_on_bucket("wf.json", "p.json", f"s3://{bucket}/run", "--cores", "2",
                           "--s3-endpoint-url", s3["endpoint"], cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr

    def read(key: str) -> str:
        return client.get_object(Bucket=bucket, Key=f"run/{key}")["Body"].read().decode()

    assert read("b.txt") == "a.txt\n"
    assert read("listing.txt") == "parts/1.txt parts/2.txt\n"  # the checkpoint, mapped back
    assert not {"a.txt", "b.txt", "where.txt", "parts"} & {p.name for p in tmp_path.iterdir()}
    assert set(Path(tempfile.gettempdir()).glob("byok8s-jobs-*")) == before


def test_files_the_main_process_names_by_its_copies_are_plain_in_the_job() -> None:
    """`--unneeded-temp-files .snakemake/storage/s3/lab/runs/a.txt`: the group's
    job removes its temp a.txt when no member needs it any more (test_group_temp)."""
    home = ".snakemake/storage/s3/lab/runs"
    args = ["--unneeded-temp-files", f"{home}/a.txt", f"{home}/d/b.txt", "other/c.txt",
            "--cores", "1"]  # fmt: skip
    assert jobrun.plain_names(args, home) == [
        "--unneeded-temp-files", "a.txt", "d/b.txt", "other/c.txt", "--cores", "1"]  # fmt: skip


def test_a_job_imports_the_storage_plugins_its_run_uses_and_others_when_asked() -> None:
    """Those the main process used and those its command line names at the start;
    one named later when first asked for; all when a provider is inferred."""
    code = (
        "import sys\n"
        "from snakemake_executor_plugin_byok8s import compat\n"
        "compat.storage_plugins_only(['s3'], ['--storage-azure-account-name', 'x'], ())\n"
        "from snakemake_interface_storage_plugins.registry import StoragePluginRegistry\n"
        "registry = StoragePluginRegistry()\n"
        "def loaded():\n"
        "    return sorted(m.rsplit('_', 1)[1] for m in sys.modules\n"
        "                  if m.startswith('snakemake_storage_plugin_') and '.' not in m)\n"
        "print('start', sorted(registry.get_registered_plugins()), loaded())\n"
        "print('asked', registry.is_installed('gcs'), registry.get_plugin('gcs').name,\n"
        "      registry.is_installed('nope'), loaded())\n"
        "print('all', sorted(p.name for p in registry.plugins.values()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "start ['azure', 's3'] ['azure', 's3']" in done.stdout
    assert "asked True gcs False ['azure', 'gcs', 's3']" in done.stdout
    assert "all ['azure', 'byok8s-azure', 'gcs', 's3']" in done.stdout, done.stdout


def test_the_storage_plugins_a_command_line_names() -> None:
    named = compat._storage_named(
        [
            "--default-storage-provider",
            "s3",
            "--storage-byok8s-azure-account-name=x",
            "--storage-home",
            "--default-storage-prefix",
            "s3://b",
        ]  # fmt: skip
    )
    assert {"s3", "byok8s", "byok8s-azure"} <= named and "b" not in named
