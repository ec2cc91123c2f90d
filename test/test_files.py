"""Reading config and params files is bounded: a small hostile file (YAML aliases
that expand to a hundred million values, anchors inside themselves, nesting past
the parser's depth, a huge file) is refused at once with one line."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from byok8s import files
from byok8s.errors import ConfigError


def alias_bomb(levels: int = 8) -> str:
    """The 'billion laughs': each level repeats the one before ten times."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for prev, name in zip(names, names[1 : levels + 1], strict=False):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    return "\n".join(lines) + "\n"


def test_a_1kb_alias_bomb_is_refused_in_well_under_a_second_with_little_memory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(alias_bomb())
    assert path.stat().st_size < 1024  # and it stands for 10**9 values
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        files.load_mapping(path, "params file")
    took = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert str(err.value) == (
        f"params file {path} expands to more than {files.MAX_NODES} values (YAML aliases "
        "repeat what they refer to); write the values out or use fewer aliases"
    )
    assert took < 0.5, took
    assert peak < 5 * 1024 * 1024, peak


def test_aliases_that_stay_small_are_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("base: &base {threads: 2, mem: 4}\nalign: *base\nsort: *base\n")
    assert files.load_mapping(path, "params file") == {
        "base": {"threads": 2, "mem": 4}, "align": {"threads": 2, "mem": 4},
        "sort": {"threads": 2, "mem": 4}}  # fmt: skip


def test_an_anchor_used_inside_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("x: &x [1, *x]\n")
    with pytest.raises(ConfigError, match="expands to more than"):
        files.load_mapping(path, "params file")


@pytest.mark.parametrize("suffix, text", [
    (".json", "[" * 100_000 + "]" * 100_000),
    (".yaml", "a: " + "[" * 5_000 + "]" * 5_000),
])  # fmt: skip
def test_nesting_past_the_parser_is_one_error(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"params{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        files.load_mapping(path, "params file")
    assert str(err.value) == f"params file {path} is nested too deeply to read; flatten it"


def test_a_file_over_the_size_bound_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_BYTES", 100)
    path = tmp_path / "params.json"
    path.write_text('{"samples": "' + "x" * 200 + '"}')
    with pytest.raises(ConfigError, match=r"is 215 bytes, more than byok8s reads \(100\)"):
        files.load_mapping(path, "params file")
