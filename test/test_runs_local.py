"""Real local runs of every bundled workflow, and of user workflows, checked by content."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from helpers import run_cli, write_json

from byok8s.errors import ExitCode


def expected_summary(workdir: Path, samples: list[str], k: int) -> str:
    """Recompute the fanout summary independently from the simulated reads."""
    rows = ["sample\treads\tbases\tgc\ttop_kmer\ttop_kmer_count"]
    for sample in samples:
        seqs = (workdir / f"data/{sample}.fastq").read_text().splitlines()[1::4]
        bases = sum(len(s) for s in seqs)
        gc = sum(s.count("G") + s.count("C") for s in seqs)
        kmers = Counter(s[i : i + k] for s in seqs for i in range(len(s) - k + 1))
        top, n = sorted(kmers.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        rows.append(f"{sample}\t{len(seqs)}\t{bases}\t{gc / bases:.4f}\t{top}\t{n}")
    return "\n".join(rows) + "\n"


def test_alpha_blue(workdir: Path) -> None:
    result = run_cli("workflow-alpha", "params-blue", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "alpha.txt").read_text() == "alpha blue\n"
    assert "jobs: 1 run, 0 failed, 0 skipped (of 1)" in result.stdout
    assert str(workdir / "alpha.txt") in result.stdout
    assert "done     rule target1" in result.stderr
    # Second run: nothing to do, and it says so.
    again = run_cli("workflow-alpha", "params-blue", cwd=workdir)
    assert again.returncode == 0 and "up to date" in again.stdout
    # --forceall reruns; other params change the content.
    forced = run_cli("workflow-alpha", "params-red", "--forceall", cwd=workdir)
    assert forced.returncode == 0 and "jobs: 1 run" in forced.stdout
    assert (workdir / "alpha.txt").read_text() == "alpha red\n"


def test_gamma_and_explicit_run_command(workdir: Path) -> None:
    result = run_cli("run", "workflow-gamma", "params-red", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "gamma.txt").read_text() == "gamma red\n"


def test_fanout(workdir: Path) -> None:
    result = run_cli("workflow-fanout", "params-fanout", "--cores", "2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "jobs: 14 run, 0 failed, 0 skipped (of 14)" in result.stdout
    samples = ["s1", "s2", "s3", "s4"]
    for s in samples:
        assert len((workdir / f"data/{s}.fastq").read_text().splitlines()) == 4 * 200
    summary = (workdir / "summary.tsv").read_text()
    assert summary == expected_summary(workdir, samples, k=3)
    assert len(summary.splitlines()) == 5


def test_varcall_with_the_tools_installed_here_calls_the_planted_snps(workdir: Path) -> None:
    """The container: directives are not used on this machine (as with plain
    Snakemake without --software-deployment-method apptainer): the tools are the
    machine's (test/setup.sh installs bwa, samtools and bcftools)."""
    import shutil

    import pytest
    from conftest import IN_CI

    missing = [t for t in ("bwa", "samtools", "bcftools") if shutil.which(t) is None]
    if missing and not IN_CI:
        pytest.skip(f"{', '.join(missing)} not installed (test/setup.sh installs them)")
    result = run_cli("workflow-varcall", "params-varcall", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "jobs: 11 run, 0 failed, 0 skipped (of 11)" in result.stdout
    vcf = (workdir / "calls/variants.vcf").read_text().splitlines()
    calls = [line.split("\t")[:5] for line in vcf if not line.startswith("#")]
    truth = [line.split("\t") for line in (workdir / "truth/snps.tsv").read_text().splitlines()]
    assert len(truth) == 13 and [[c, p, r, a] for c, p, _, r, a in calls] == truth[1:]


def test_dry_run_runs_nothing(workdir: Path) -> None:
    result = run_cli("workflow-fanout", "params-fanout", "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "jobs: would run 14" in result.stdout
    assert not (workdir / "summary.tsv").exists() and not (workdir / "data").exists()


def test_user_snakefile_yaml_and_env_options(workdir: Path) -> None:
    (workdir / "flow").mkdir()
    (workdir / "flow" / "Snakefile").write_text(
        "rule all:\n    input: expand('out/{n}.txt', n=config['numbers'])\n"
        "rule one:\n    output: 'out/{n}.txt'\n    shell: 'expr {wildcards.n} \\* 2 > {output}'\n"
    )
    (workdir / "wf.yaml").write_text("snakefile: flow/Snakefile\ntargets: [all]\n")
    (workdir / "p.yaml").write_text("numbers: [1, 2, 3]\n")
    result = run_cli("wf", "p", cwd=workdir, env={"BYOK8S_CORES": "1"})
    assert result.returncode == 0, result.stderr
    assert [(workdir / f"out/{n}.txt").read_text() for n in (1, 2, 3)] == ["2\n", "4\n", "6\n"]
    assert "(1 cores)" in result.stderr


def test_failing_job_is_named_with_its_log(workdir: Path) -> None:
    (workdir / "Snakefile").write_text(
        "rule all:\n    input: 'b.txt', 'c.txt'\n"
        "rule a:\n    output: 'a.txt'\n    shell: 'echo hi > {output}'\n"
        "rule b:\n    input: 'a.txt'\n    output: 'b.txt'\n"
        "    shell: 'echo reason-for-failure >&2; exit 3'\n"
        "rule c:\n    output: 'c.txt'\n    shell: 'sleep 1; echo c > {output}'\n"
    )
    write_json(workdir / "wf.json", {"targets": ["all"]})
    write_json(workdir / "p.json", {})
    result = run_cli("wf", "p", "--keep-going", "--cores", "1", cwd=workdir)
    assert result.returncode == ExitCode.WORKFLOW_FAILED
    error_lines = [line for line in result.stderr.splitlines() if "byok8s: error" in line]
    assert len(error_lines) == 1 and "1 job failed: rule b [job" in error_lines[0]
    assert "reason-for-failure" in result.stderr  # the job's own output is shown
    assert "Traceback" not in result.stderr
    assert "jobs: 2 run, 1 failed, 1 skipped (of 4)" in result.stdout
    assert (workdir / "c.txt").exists()  # --keep-going ran the independent job
    assert not (workdir / "b.txt").exists()


def test_retries_rerun_a_flaky_job(workdir: Path) -> None:
    (workdir / "Snakefile").write_text(
        "rule flaky:\n    output: 'f.txt'\n"
        "    shell: 'if [ -e tried ]; then echo ok > {output}; else touch tried; exit 1; fi'\n"
    )
    write_json(workdir / "wf.json", {"targets": ["flaky"]})
    write_json(workdir / "p.json", {})
    assert run_cli("wf", "p", cwd=workdir).returncode == ExitCode.WORKFLOW_FAILED
    (workdir / "tried").unlink()
    result = run_cli("wf", "p", "--retries", "1", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "f.txt").read_text() == "ok\n"
