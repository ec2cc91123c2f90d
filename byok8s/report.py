"""A run's report: what its record says, as data (`byok8s report --json`) and as one
self-contained HTML page (no network: its CSS and SVG are inline, it has no
script): a summary, a timeline of every job attempt split into its phases, a
table per rule of time, CPU and memory asked for against used, right-sizing
hints, and the failures with the end of their logs."""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from byok8s.records import FORMAT

MB = 1_000_000
PHASES = ("waiting for a node", "pulling and starting", "staging in", "running", "staging out")
COLOURS = ("#c9c9c9", "#f2c14e", "#5b8def", "#3aa76d", "#8e6bd8")
FAILED_COLOUR = "#d64545"
OVERSIZED = 4  # a rule asks for more than this many times its peak memory
NEAR_LIMIT = 0.9  # a rule's peak at or above this part of its memory limit
LOG_LINES = 15


def data(record: Mapping[str, Any], logs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The report's content; `logs`: the saved log text of attempts, by their `log`."""
    logs = logs or {}
    jobs = [j for j in record.get("jobs") or [] if isinstance(j, Mapping)]
    attempts = [_attempt(j, {**a, "try": n})
                for j in jobs for n, a in enumerate(j.get("attempts") or [], 1)]  # fmt: skip
    here = (record.get("options") or {}).get("executor") in (None, "local")
    local = [_local(j) for j in jobs if here and not j.get("attempts") and j.get("ready")]
    bars = [b for b in attempts + local if b["start"] is not None]
    rules = _rules(jobs)
    return {
        "format": FORMAT,
        "summary": _summary(record, jobs),
        "partial": record.get("state") == "running",
        "timeline": sorted(bars, key=lambda b: (b["start"], b["label"])),
        "rules": rules,
        "hints": [h for r in rules for h in _hints(r)],
        "failures": _failures(jobs, logs),
    }


def _summary(record: Mapping[str, Any], jobs: list[Mapping[str, Any]]) -> dict[str, Any]:
    options = record.get("options") or {}
    states: dict[str, int] = {}
    for job in jobs:
        states[str(job.get("state"))] = states.get(str(job.get("state")), 0) + 1
    images = sorted({str(record.get("image"))} | {
        str(a["image"]) for j in jobs for a in j.get("attempts") or [] if a.get("image")
    } - {"None"})  # fmt: skip
    versions = record.get("versions") or {}
    return {
        "run": record.get("run"),
        "state": record.get("state"),
        "started": record.get("started"),
        "ended": record.get("ended"),
        "seconds": record.get("seconds"),
        "jobs": len(jobs),
        "job_states": states,
        "executor": options.get("executor"),
        "cluster": options.get("cluster"),
        "namespace": options.get("namespace"),
        "bucket": options.get("bucket"),
        "images": images,
        "byok8s": versions.get("byok8s"),
        "snakemake": versions.get("snakemake"),
        "error": record.get("error"),
    }


def _time(text: Any) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _attempt(job: Mapping[str, Any], attempt: Mapping[str, Any]) -> dict[str, Any]:
    """One pod's bar: its phases from the journal's times and the measured staging."""
    used = attempt.get("usage") or {}
    submitted, scheduled = _time(attempt.get("submitted")), _time(attempt.get("scheduled"))
    started, finished = _time(attempt.get("started")), _time(attempt.get("finished"))
    ended = _time(attempt.get("ended"))
    marks = [submitted, scheduled or started, started]
    if started is not None:
        end = finished or ended or started
        staged_in = min(started + float(used.get("staged_in_s") or 0), end)
        staged_out = max(end - float(used.get("staged_out_s") or 0), staged_in)
        marks += [staged_in, staged_out, end]
    else:
        marks += [None, None, None]
        marks[1] = ended if submitted is not None else None
    phases = [
        {"phase": name, "start": a, "end": b}
        for name, a, b in zip(PHASES, marks, marks[1:], strict=False)
        if a is not None and b is not None and b > a
    ]
    reason = str(attempt.get("reason") or "")
    return {
        "label": _label(job, attempt),
        "rule": job.get("rule"),
        "jobid": job.get("jobid"),
        "attempt": attempt.get("attempt", 1),
        "state": attempt.get("state"),
        "reason": reason or None,
        "infra": bool(attempt["infra"]) if "infra" in attempt else _infra_said(reason),
        "pod": attempt.get("pod"),
        "node": attempt.get("node"),
        "start": submitted if submitted is not None else started,
        "end": max([m for m in marks if m is not None], default=None),
        "phases": phases,
        "usage": used or None,
        "requests": attempt.get("requests"),
    }


def _infra_said(reason: str) -> bool:
    """A record before `infra` was kept: the pod's fate as byok8s words it (status.py)."""
    return "deleted (or evicted" in reason or "was evicted" in reason


def _local(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job run on this machine: one phase, from ready to ended."""
    start, end = _time(job.get("ready")), _time(job.get("ended"))
    end = end if end is not None and start is not None and end >= start else start
    return {
        "label": _label(job, {}), "rule": job.get("rule"), "jobid": job.get("jobid"),
        "attempt": 1, "state": job.get("state"), "reason": None, "infra": False, "pod": None,
        "node": "this machine", "start": start, "end": end,
        "phases": [{"phase": "running", "start": start, "end": end}] if start else [],
        "usage": job.get("usage"), "requests": None,
    }  # fmt: skip


def _label(job: Mapping[str, Any], attempt: Mapping[str, Any]) -> str:
    wildcards = ", ".join(f"{k}={v}" for k, v in (job.get("wildcards") or {}).items())
    text = f"{job.get('rule')}" + (f" ({wildcards})" if wildcards else "")
    return (
        text
        + f" [job {job.get('jobid')}]"
        + (f" attempt {attempt['attempt']}" if attempt.get("attempt", 1) != 1 else "")
        + (f" (pod {attempt['try']})" if attempt.get("try", 1) > 1 else "")
    )


def _rules(jobs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per rule: jobs, wall time, CPU hours and memory asked for against used."""
    found: dict[str, dict[str, Any]] = {}
    for job in jobs:
        tried = job.get("attempts") or []
        if not tried and job.get("usage"):  # a job run in this process: measured here
            tried = [{"usage": job["usage"], "started": job.get("ready"),
                      "finished": job.get("ended")}]  # fmt: skip
        if not tried:
            continue
        row = found.setdefault(str(job.get("rule")), {"rule": job.get("rule"), "jobs": 0,
                                                       "walls": [], "cpu_h_requested": 0.0,
                                                       "cpu_h_used": 0.0, "memory_requested":
                                                       None, "memory_peak": None,
                                                       "memory_limit": None, "oom": 0,
                                                       "measured": 0})  # fmt: skip
        row["jobs"] += 1
        for attempt in tried:
            used = attempt.get("usage") or {}
            asked = attempt.get("requests") or {}
            wall = used.get("wall_s")
            if wall is None:
                start, end = _time(attempt.get("started")), _time(attempt.get("finished"))
                wall = end - start if start is not None and end is not None else None
            if wall is not None:
                row["walls"].append(float(wall))
                row["cpu_h_requested"] += float(asked.get("cpu") or 0) * wall / 3600
            row["cpu_h_used"] += float(used.get("cpu_s") or used.get("job_cpu_s") or 0) / 3600
            row["measured"] += bool(used.get("cpu_s") or used.get("job_cpu_s"))
            row["oom"] += bool(used.get("oom"))
            row["memory_requested"] = _max(row["memory_requested"], asked.get("memory_bytes"))
            row["memory_limit"] = _max(row["memory_limit"], used.get("memory_limit_bytes"))
            # The container's peak (mem_mb limits it), else its commands' (no container).
            peak = used.get("peak_bytes")
            row["memory_peak"] = _max(row["memory_peak"], peak if peak is not None else
                                      used.get("job_peak_rss_bytes"))  # fmt: skip
    rows = []
    for row in found.values():
        walls = row.pop("walls")
        row["wall_total_s"] = round(sum(walls), 1)
        row["wall_median_s"] = round(statistics.median(walls), 1) if walls else None
        row["cpu_h_requested"] = round(row["cpu_h_requested"], 4)
        row["cpu_h_used"] = round(row["cpu_h_used"], 4)
        rows.append(row)
    return sorted(rows, key=lambda r: str(r["rule"]))


def _max(a: Any, b: Any) -> Any:
    return b if a is None else (a if b is None else max(a, b))


def _hints(row: Mapping[str, Any]) -> list[str]:
    """Right-sizing: a rule that asks for far more memory than it used, or runs at its
    limit (or past it)."""
    rule, jobs, peak = row["rule"], row["jobs"], row["memory_peak"]
    asked, limit = row["memory_requested"], row["memory_limit"]
    over = f"over {jobs} job{'s' * (jobs != 1)}"
    if row["oom"]:
        return [f"{rule}: {row['oom']} attempt(s) killed for memory at their limit of "
                f"{_mb(limit)}; ask for more (mem_mb)"]  # fmt: skip
    if peak and limit and peak >= NEAR_LIMIT * limit:
        return [f"{rule}: peak {_mb(peak)} {over} is near its limit of {_mb(limit)}; "
                f"mem_mb={_round_up(peak * 1.5)} leaves room"]  # fmt: skip
    if peak and asked and asked >= OVERSIZED * peak and asked - peak >= 100 * MB:
        return [f"{rule}: asks {_mb(asked)}, peak {_mb(peak)} {over}; "
                f"mem_mb={_round_up(peak * 1.5)} would fit"]  # fmt: skip
    return []


def _round_up(value: float) -> int:
    """Megabytes, up to a round figure (100 MB steps)."""
    return max(100, int(math.ceil(value / MB / 100) * 100))


def _mb(value: Any) -> str:
    if value is None:
        return "-"  # not asked for, or not measured
    if value >= 1000 * MB:
        return f"{value / 1000 / MB:.1f} GB"
    return f"{value / MB:.0f} MB"


def _failures(jobs: list[Mapping[str, Any]], logs: Mapping[str, str]) -> list[dict[str, Any]]:
    found = []
    for job in jobs:
        for attempt in job.get("attempts") or []:
            if attempt.get("state") != "failed":
                continue
            text = logs.get(str(attempt.get("log"))) or ""
            lines = [line for line in text.splitlines() if line.strip()][-LOG_LINES:]
            found.append({"label": _label(job, attempt), "pod": attempt.get("pod"),
                          "reason": attempt.get("reason"), "log": lines})  # fmt: skip
        if job.get("state") == "failed" and not job.get("attempts"):
            tails = [line for tail in (job.get("log_files") or {}).values() for line in tail]
            found.append({"label": _label(job, {}), "pod": None, "reason": "failed",
                          "log": tails[-LOG_LINES:]})  # fmt: skip
    return found


def failed_logs(record: Mapping[str, Any], read: Callable[[str], str | None]) -> dict[str, str]:
    """The saved logs of a record's failed attempts, by their `log`, as `read` finds
    them (None: not there)."""
    found: dict[str, str] = {}
    for job in record.get("jobs") or []:
        for attempt in job.get("attempts") or []:
            saved = attempt.get("log")
            if attempt.get("state") == "failed" and saved:
                text = read(str(saved))
                if text is not None:
                    found[str(saved)] = text
    return found


# -- HTML ---------------------------------------------------------------------------

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;
text-align:left}th{background:#f4f4f4}td.n{text-align:right}
.partial{background:#fff3cd;border:1px solid #e0c060;padding:8px;margin:8px 0}
.hint{background:#eef6ff;border-left:4px solid #5b8def;padding:6px 10px;margin:6px 0}
.failure{border-left:4px solid #d64545;padding:6px 10px;margin:10px 0}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
svg text{font-size:11px;font-family:system-ui,sans-serif}
"""


def html_page(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    e = html.escape
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>byok8s run {e(str(s['run']))}</title><style>{STYLE}</style></head><body>",
        f"<h1>byok8s run {e(str(s['run']))}: {e(str(s['state']))}</h1>",
    ]
    if report["partial"]:
        parts.append("<div class=\"partial\" id=\"partial\">This run is still going on (or "
                     "was killed): the report is partial.</div>")  # fmt: skip
    states = ", ".join(f"{n} {e(k)}" for k, n in sorted(s["job_states"].items()))
    rows = [
        ("state", s["state"]), ("wall time", f"{s['seconds']} s" if s["seconds"] else "-"),
        ("started", s["started"]), ("ended", s["ended"]),
        ("jobs", f"{s['jobs']} ({states})" if states else "0"),
        ("executor", s["executor"]), ("cluster", s["cluster"]), ("namespace", s["namespace"]),
        ("bucket", s["bucket"]),
        ("images", ", ".join(s["images"])), ("byok8s", s["byok8s"]),
        ("snakemake", s["snakemake"]), ("error", s["error"]),
    ]  # fmt: skip
    parts.append('<h2>Summary</h2><table id="summary">')
    parts += [f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows if v]
    parts.append("</table>")
    parts.append(_timeline_svg(report["timeline"]))
    parts.append(_rules_table(report["rules"]))
    if report["hints"]:
        parts.append("<h2>Right-sizing</h2>")
        parts += [f'<div class="hint">{e(h)}</div>' for h in report["hints"]]
    if report["failures"]:
        parts.append("<h2>Failures</h2>")
        for f in report["failures"]:
            log = "\n".join(f["log"]) or "(no log saved)"
            parts.append(f"<div class=\"failure\"><b>{e(f['label'])}</b>"
                         f"{' pod ' + e(str(f['pod'])) if f['pod'] else ''}: "
                         f"{e(str(f['reason']))}<pre>{e(log)}</pre></div>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _timeline_svg(bars: list[Mapping[str, Any]]) -> str:
    e = html.escape
    legend = "".join(f"<span><i style=\"background:{c}\"></i>{p}</span>"
                     for p, c in zip(PHASES, COLOURS, strict=True))  # fmt: skip
    head = f'<h2>Timeline</h2><div class="legend">{legend}</div>'
    if not bars:
        return head + "<p>No job ran.</p>"
    t0 = min(b["start"] for b in bars)
    span = max(max(b["end"] or b["start"] for b in bars) - t0, 1.0)
    left, width, row = 260, 860, 18
    scale = width / span
    height = row * len(bars) + 30
    out = [f"<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{left + width + 20}"
           f"\" height=\"{height}\" role=\"img\">"]  # fmt: skip
    for i, bar in enumerate(bars):
        y = 4 + i * row
        out.append(f'<text x="0" y="{y + 12}">{e(bar["label"][:42])}</text>')
        detail = _bar_detail(bar, t0)
        out.append(f"<g class=\"bar\" data-state=\"{e(str(bar['state']))}\" data-infra=\""
                   f"{str(bar['infra']).lower()}\"><title>{e(detail)}</title>")  # fmt: skip
        for phase in bar["phases"]:
            x = left + (phase["start"] - t0) * scale
            w = max((phase["end"] - phase["start"]) * scale, 1.0)
            colour = COLOURS[PHASES.index(phase["phase"])]
            out.append(f"<rect x=\"{x:.1f}\" y=\"{y}\" width=\"{w:.1f}\" height=\"{row - 4}\" "
                       f"fill=\"{colour}\"/>")  # fmt: skip
        end = left + ((bar["end"] or bar["start"]) - t0) * scale
        if bar["state"] == "failed":
            mark = "R" if bar["infra"] else "X"
            out.append(f"<text class=\"mark\" x=\"{end + 3:.1f}\" y=\"{y + 12}\" fill=\""
                       f"{FAILED_COLOUR}\" font-weight=\"bold\">{mark}</text>")  # fmt: skip
        out.append("</g>")
    out.append(f"<text x=\"{left}\" y=\"{height - 4}\">0 s</text><text x=\"{left + width - 40}\" "
               f"y=\"{height - 4}\">{span:.0f} s</text></svg>")  # fmt: skip
    note = (
        "<p>X: failed; R: taken by the cluster (evicted, deleted, node lost) and run "
        "again. Hover over a bar for its details.</p>"
    )
    return head + "".join(out) + note


def _bar_detail(bar: Mapping[str, Any], t0: float) -> str:
    lines = [f"{bar['label']}: {bar['state']}"]
    if bar["reason"]:
        lines.append(f"why: {bar['reason']}")
    if bar["pod"]:
        lines.append(f"pod {bar['pod']} on {bar['node'] or '?'}")
    for phase in bar["phases"]:
        lines.append(f"{phase['phase']}: {phase['end'] - phase['start']:.1f} s "
                     f"(from {phase['start'] - t0:.1f} s)")  # fmt: skip
    used = bar.get("usage") or {}
    if used.get("peak_bytes") or used.get("job_peak_rss_bytes"):
        lines.append(f"memory peak {_mb(used.get('peak_bytes'))} (its commands "
                     f"{_mb(used.get('job_peak_rss_bytes'))})")  # fmt: skip
    if used.get("cpu_s") is not None:
        lines.append(f"CPU {used['cpu_s']:.1f} s")
    return "\n".join(lines)


def _rules_table(rows: list[Mapping[str, Any]]) -> str:
    e = html.escape
    head = ("<h2>Per rule</h2><table id=\"rules\"><tr><th>rule</th><th>jobs</th><th>wall total"
            " s</th><th>wall median s</th><th>CPU·h asked</th><th>CPU·h used</th><th>memory "
            "asked</th><th>memory peak</th></tr>")  # fmt: skip
    if not rows:
        return head + "</table><p>No job ran in a pod.</p>"
    body = [
        f'<tr class="rule" data-rule="{e(str(r["rule"]))}"><td>{e(str(r["rule"]))}</td>'
        f'<td class="n">{r["jobs"]}</td><td class="n">{r["wall_total_s"]}</td>'
        f'<td class="n">{r["wall_median_s"]}</td><td class="n">{r["cpu_h_requested"]:.4f}'
        f'</td><td class="n">{r["cpu_h_used"]:.4f}</td><td class="n">'
        f'{_mb(r["memory_requested"])}</td><td class="n">{_mb(r["memory_peak"])}</td></tr>'
        for r in rows
    ]
    return head + "".join(body) + "</table>"
