"""Bad input that only Snakemake can find: a Snakefile that does not parse or that
fails while it is evaluated. One line naming the file, the line and the problem,
the config exit code, and nothing written (no record, no .snakemake, no summary)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_one_line_error, invoke, tree, write_json

from byok8s.errors import ExitCode

RULE = 'rule all:\n    output: "a.txt"\n    shell: "echo hi > {output}"\n'
CASES = [
    ("unclosed", RULE + "x = (\n", "line 5: syntax error: EOF in multi-line statement"),
    ("syntax", RULE + "\ny = 1 +\n", "line 5: SyntaxError: invalid syntax"),
    ("indent", 'rule all:\n  output: "a.txt"\n   shell: "x"\n', "line 2: SyntaxError"),
    ("keyword", 'rule all:\n    outptu: "a.txt"\n',
     "line 2: SyntaxError: Unexpected keyword outptu"),
    ("config-key", 'x = config["samples"]\n' + RULE,
     "line 1: KeyError 'samples'; if it is a config key, add 'samples' to the params file"),
    ("include", 'include: "rules/missing.smk"\n' + RULE,
     "line 1: file not found: {workdir}/rules/missing.smk; create it or fix the include:"),
    ("raises", RULE + "\nz = 1 / 0\n", "line 5: ZeroDivisionError: division by zero"),
    ("included-syntax", 'include: "rules/bad.smk"\n' + RULE,
     "rules/bad.smk line 4: SyntaxError: invalid syntax"),
]  # fmt: skip


@pytest.mark.parametrize("name, snakefile, expected", CASES, ids=[c[0] for c in CASES])
def test_a_snakefile_that_does_not_load_is_one_line_and_leaves_nothing(
    name: str, snakefile: str, expected: str, workdir: Path
) -> None:
    (workdir / "Snakefile").write_text(snakefile)
    (workdir / "rules").mkdir()
    (workdir / "rules" / "bad.smk").write_text("rule b:\n    output: 'b'\n\ny = 1 +\n")
    write_json(workdir / "wf.json", {"snakefile": "Snakefile"})
    write_json(workdir / "p.json", {"n": 1})
    before = tree(workdir)
    result = invoke("wf.json", "p.json")
    assert_one_line_error(result, ExitCode.CONFIG, expected.format(workdir=workdir))
    assert "Snakefile" in result.stderr
    assert result.stdout == ""  # no summary: it never was a run
    assert tree(workdir) == before, "nothing is written for a Snakefile that does not load"
