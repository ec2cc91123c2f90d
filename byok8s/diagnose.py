"""Why a job failed, beyond its exit status: the end of each of its `log:` files
(where bioinformatics commands write their errors: `cmd 2> {log}`), read from the
bucket or this machine, and files next to its inputs that it was not given.

Without a shared filesystem a job gets only the files its rule declares. A tool
that expects an index beside its input (`genome.fa.bwt`, `reads.bam.bai`) finds
it on a laptop and fails in a pod; the hint names the file and the fix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from byok8s.errors import Byok8sError

if TYPE_CHECKING:
    from byok8s.config import RunConfig

log = logging.getLogger(__name__)

TAIL_LINES = 20
TAIL_BYTES = 64 * 1024  # read at most this much of the end of a log file
LINE_WIDTH = 400
MAX_INPUTS = 10  # inputs whose neighbours are looked for, per failed job
# Files tools expect beside their inputs (samtools, bwa, bowtie2, minimap2, GATK,
# tabix, bgzip, STAR, hisat2).
INDEX_SUFFIXES = (
    ".fai", ".gzi", ".bai", ".csi", ".crai", ".tbi", ".idx", ".dict", ".mmi",
    ".amb", ".ann", ".bwt", ".pac", ".sa", ".0123", ".bwt.2bit.64",
    ".1.bt2", ".2.bt2", ".3.bt2", ".4.bt2", ".rev.1.bt2", ".rev.2.bt2",
    ".1.ht2", ".2.ht2", ".3.ht2", ".4.ht2", ".5.ht2", ".6.ht2", ".7.ht2", ".8.ht2",
)  # fmt: skip
ANNOTATION = re.compile(r"^(.*?) \([^()]*\)$")  # Snakemake's "PATH (send to storage)"


@dataclass
class Findings:
    logs: dict[str, list[str]] = field(default_factory=dict)  # log file -> its last lines
    hints: list[str] = field(default_factory=list)

    def lines(self, pad: str = "    ") -> list[str]:
        shown: list[str] = []
        for name, tail in self.logs.items():
            if tail:
                shown.append(f"{pad}log {name} ends:")
                shown += [f"{pad}    | {line}" for line in tail]
            else:
                shown.append(f"{pad}log {name} is empty")
        shown += [f"{pad}hint: {hint}" for hint in self.hints]
        return shown


def examine(
    cfg: RunConfig,
    rule: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    logs: Sequence[str],
    text: str,
) -> Findings:
    """Log tails and side-file hints for one failed job; inputs, outputs and logs
    as Snakemake prints them. Never raises: this only adds to a failure."""
    found = Findings()
    try:
        for entry in logs:
            name = plain(entry)
            tail = _log_tail(cfg, name)
            if tail is not None:
                found.logs[name] = tail
        seen = text + "\n" + "\n".join(line for tail in found.logs.values() for line in tail)
        found.hints = side_files(cfg, rule, [plain(i) for i in inputs],
                                 [plain(o) for o in outputs], seen)  # fmt: skip
    except Exception:  # noqa: BLE001 - reporting only
        log.debug("could not examine the failed job of rule %s", rule, exc_info=True)
    return found


def plain(entry: str) -> str:
    """A path or URL as Snakemake prints it, without its annotation."""
    match = ANNOTATION.match(entry.strip())
    return match.group(1) if match else entry.strip()


def tail_lines(data: bytes, lines: int = TAIL_LINES) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    kept = [line.rstrip() for line in text.splitlines()]
    while kept and not kept[-1]:
        kept.pop()
    return [line if len(line) <= LINE_WIDTH else line[:LINE_WIDTH] + "..." for line in
            kept[-lines:]]  # fmt: skip


def _log_tail(cfg: RunConfig, name: str) -> list[str] | None:
    """The end of a log file: from the bucket for a storage URL, else from this
    machine; None when it was not written."""
    relative = _in_bucket(cfg, name)
    if relative is not None and cfg.storage is not None:
        try:
            return tail_lines(cfg.storage.tail(relative, TAIL_BYTES))
        except Byok8sError as exc:  # a job run here fails before sending it
            log.debug("no log %s in the bucket: %s", name, exc)
    path = _local(cfg, name) if relative is None else _local_copy(cfg, relative)
    if path is None or not path.is_file():
        return None
    with open(path, "rb") as f:
        size = path.stat().st_size
        f.seek(max(size - TAIL_BYTES, 0))
        return tail_lines(f.read())


def side_files(
    cfg: RunConfig, rule: str, inputs: Sequence[str], outputs: Sequence[str], text: str
) -> list[str]:
    """Files beside the job's inputs, in the bucket or on this machine, that it was
    not given and that look needed: a known index suffix, or named in `text`."""
    if cfg.storage is None:  # jobs read this machine's files: nothing is left out
        return []
    declared = set(inputs) | set(outputs)
    hints: list[str] = []
    for given in inputs[:MAX_INPUTS]:
        relative = _in_bucket(cfg, given)
        if relative is not None:
            beside, where = _neighbours_in_bucket(cfg, relative), "in the bucket"
            shown = relative
        else:
            beside, where = _neighbours_here(cfg, given), "on this machine"
            shown = given
        missing = sorted(
            n for n in beside
            if _url(cfg, n, relative is not None) not in declared
            and (_index_like(n, shown) or _named(PurePosixPath(n).name, text))
        )  # fmt: skip
        if missing:
            hints.append(_hint(rule, shown, missing, where))
    return hints


def _hint(rule: str, given: str, missing: list[str], where: str) -> str:
    one = len(missing) == 1
    names = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    suffixes = [n[len(given) :] for n in missing if n.startswith(given)]
    others = [f'"{n}"' for n in missing if not n.startswith(given)]
    if len(suffixes) > 1:
        quoted = ", ".join(f'"{s}"' for s in suffixes)
        example = ", ".join([f'multiext("{given}", {quoted})', *others])
    else:
        example = ", ".join(f'"{n}"' for n in missing)
    return (
        f"{names} {'exists' if one else 'exist'} {where} next to input {given} but "
        f"{'is not an input' if one else 'are not inputs'} of rule {rule}, and a job gets "
        f"only its declared inputs; declare {'it' if one else 'them'} as input "
        f"(e.g. {example}) so that {'it is' if one else 'they are'} staged"
    )


def _named(name: str, text: str) -> bool:
    """`name` stands in `text` as a whole file name (not inside test.inter)."""
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text) is not None


def _index_like(name: str, given: str) -> bool:
    stem = str(PurePosixPath(given).with_suffix("")) if PurePosixPath(given).suffix else given
    for base in (given, stem):
        if name.startswith(base) and name[len(base) :] in INDEX_SUFFIXES:
            return True
    return False


def _candidates_prefixes(relative: str) -> list[str]:
    """`data/genome.fa` -> `data/genome.fa.` and `data/genome.` (genome.dict)."""
    path = PurePosixPath(relative)
    prefixes = [relative + "."]
    if path.suffix:
        prefixes.append(str(path.with_suffix("")) + ".")
    return prefixes


def _neighbours_in_bucket(cfg: RunConfig, relative: str) -> set[str]:
    assert cfg.storage is not None
    found: set[str] = set()
    for prefix in _candidates_prefixes(relative):
        try:
            found |= {k for k in cfg.storage.list(prefix) if "/" not in k[len(prefix) :]}
        except Byok8sError as exc:
            log.debug("could not list %s: %s", prefix, exc)
    found.discard(relative)
    return found


def _neighbours_here(cfg: RunConfig, given: str) -> set[str]:
    path = _local(cfg, given)
    if not path.parent.is_dir():
        return set()
    found: set[str] = set()
    for prefix in _candidates_prefixes(path.name):
        found |= {str(PurePosixPath(given).parent / p.name) for p in
                  path.parent.glob(_glob_escape(prefix) + "*") if p.is_file()}  # fmt: skip
    found.discard(given)
    return found


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _in_bucket(cfg: RunConfig, name: str) -> str | None:
    if cfg.storage is None:
        return None
    base = f"{cfg.storage.url}/"
    return name[len(base) :] if name.startswith(base) else None


def _url(cfg: RunConfig, relative: str, bucket: bool) -> str:
    return cfg.storage.url.url(relative) if bucket and cfg.storage is not None else relative


def _local_copy(cfg: RunConfig, relative: str) -> Path | None:
    """Snakemake's local copy of a storage object (a job run on this machine writes
    its log there; a failed one is not sent): .snakemake/storage/PROVIDER/.../BUCKET/KEY."""
    assert cfg.storage is not None
    root = cfg.workdir / ".snakemake" / "storage"
    tail = f"{cfg.storage.url.name}/{cfg.storage.url.key(relative)}"
    for pattern in (f"*/{tail}", f"*/*/{tail}"):
        for path in root.glob(pattern):
            return path
    return None


def _local(cfg: RunConfig, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else cfg.workdir / path
