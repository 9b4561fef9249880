"""Q6 ``quota`` in the report: charts, tables and findings from the saved samples.

Every conclusion comes from :func:`.analysis.findings`; this module only
recomputes the summary from the samples and lays out tables and charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.stats import percentile
from etcdlab.figures.units import (
    MISSING,
    fmt_bytes,
    fmt_count,
    fmt_median_stats,
    fmt_percent,
    fmt_seconds,
    fmt_within,
)
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q06_quota.analysis import (
    ACCEPTS,
    ALARM_POLL_S,
    ASKED,
    BLOCKED_FACTOR,
    BLOCKED_SHARE,
    COURSE_REPORT_QUOTE,
    PROBE_LABELS,
    findings,
    sizes_text,
    summarize,
)
from etcdlab.questions.section import metadata_text
from etcdlab.report import charts as plots
from etcdlab.results import Result

MIB = 1024**2
# Writes per point of the latency chart: the median of each block smooths single stalls.
LATENCY_BLOCK = 16


def _sizes_series(fill: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per member: (MiB acknowledged, DB size in MiB) at each size poll."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for poll in fill.get("sizes", []):
        for member, size in sorted(poll["db_size"].items()):
            if size is None:
                continue
            xs, ys = series.setdefault(f"DB size, {member}", ([], []))
            xs.append(poll["acknowledged_bytes"] / MIB)
            ys.append(size / MIB)
    return series


def _latency_series(fill: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per block of writes: (MiB acknowledged at its end, its p50 / p90 latency in ms)."""
    value_bytes = fill["value_bytes"]
    ok = [w for w in fill.get("writes", []) if w["outcome"] == "ok"]
    xs: list[float] = []
    lines: dict[str, list[float]] = {"median": [], "90th percentile": []}
    for start in range(0, len(ok), LATENCY_BLOCK):
        block = [1000 * w["elapsed_s"] for w in ok[start:start + LATENCY_BLOCK]]
        xs.append((start + len(block)) * value_bytes / MIB)
        lines["median"].append(percentile(block, 50))
        lines["90th percentile"].append(percentile(block, 90))
    return {f"{name} of each {LATENCY_BLOCK} writes": (xs, ys) for name, ys in lines.items()}


def _phase_series(phases: list[Mapping[str, Any]], quota: int
                  ) -> tuple[dict[str, tuple[list[float], list[float]]], dict[str, dict[str, str]]]:
    """Per member: dbSize and dbSizeInUse in MiB at each phase (x: the phase's number in the
    table), with one colour per member, dbSize solid and dbSizeInUse dashed."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    styles: dict[str, dict[str, str]] = {}
    for step, phase in enumerate(phases):
        for index, member in enumerate(sorted(phase.get("db_size") or {})):
            for field, label, dash in (("db_size", "dbSize", "-"),
                                       ("db_size_in_use", "dbSizeInUse", "--")):
                size = (phase.get(field) or {}).get(member)
                if size is None:
                    continue
                name = f"{label}, {member}"
                xs, ys = series.setdefault(name, ([], []))
                xs.append(float(step))
                ys.append(size / MIB)
                styles[name] = {"color": f"C{index}", "linestyle": dash}
    if series:
        quota_mib = quota / MIB
        series[f"quota ({fmt_bytes(quota)})"] = ([0.0, float(len(phases) - 1)],
                                                 [quota_mib, quota_mib])
        styles[f"quota ({fmt_bytes(quota)})"] = {"color": "grey", "linestyle": ":"}
    return series, styles


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """DB size per member and write latency, both against the bytes acknowledged; dbSize and
    dbSizeInUse over the phases where the run recorded them."""
    fill = result.samples.get("fill")
    if not fill or not fill.get("writes"):
        return {}
    quota_mib = result.params["quota_bytes"] / MIB
    sizes = _sizes_series(fill)
    top = max((x for xs, _ in sizes.values() for x in xs), default=0.0)
    sizes[f"quota ({fmt_bytes(result.params['quota_bytes'])})"] = ([0.0, top],
                                                                    [quota_mib, quota_mib])
    files = {"sizes": plots.line_chart(
        out_dir / "quota_db_size.png", sizes, "Backend size of each member while writing",
        "MiB of values acknowledged", "DB size (MiB)")}
    files["latency"] = plots.line_chart(
        out_dir / "quota_write_latency.png", _latency_series(fill),
        "Write latency as the backend fills up", "MiB of values acknowledged",
        "write latency (ms)")
    phases = result.samples.get("phases")
    if phases:
        series, styles = _phase_series(phases, result.params["quota_bytes"])
        files["phases"] = plots.line_chart(
            out_dir / "quota_phases.png", series,
            "dbSize (solid) and dbSizeInUse (dashed) over the phases",
            "phase (its number in the table)", "MiB", styles)
    return files


def _probe_rows(alarm: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for probe, label in PROBE_LABELS.items():
        record = (alarm.get("probes") or {}).get(probe)
        if record is None:
            continue
        details = record["code"] + (f": \"{record['details']}\"" if record["details"] else "")
        rows.append({"operation": label, "outcome": record["outcome"], "details": details,
                     "time": fmt_seconds(record["elapsed_s"])})
    return rows


def _compaction_row(recovery: Mapping[str, Any]) -> list[dict[str, str]]:
    """The recovery's compaction as one more row of the alarm's table (it was sent while
    the alarm was raised), where the run recorded the alarms at that moment."""
    if "alarms_at_compact" not in recovery:
        return []
    compact = recovery["compact"]
    details = compact["code"] + (f": \"{compact['details']}\"" if compact["details"] else "")
    return [{"operation": "compaction to the current revision (the recovery's first step)",
             "outcome": compact["outcome"], "details": details,
             "time": fmt_seconds(compact["elapsed_s"])}]


def _early_rows(early: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The extra step between compaction and defragmentation: disarm, one write."""
    if not early:
        return []
    rows = [{"step": f"disarm {d['alarm']} of {d['member']} (before defragmenting)",
             "outcome": d["outcome"], "time": fmt_seconds(d["elapsed_s"]),
             "before": MISSING, "after": MISSING} for d in early.get("disarm") or []]
    write = early["write"]
    details = f" ({write['details']})" if write.get("details") else ""
    listed = _alarm_lists(early.get("alarms_after_write") or {})
    rows.append({"step": f"one write, not yet defragmented; alarms after it: {listed}",
                 "outcome": write["outcome"] + details, "time": fmt_seconds(write["elapsed_s"]),
                 "before": sizes_text((early.get("sizes_before_write") or {}).get("db_size")),
                 "after": MISSING})
    return rows


def _recovery_rows(recovery: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = [{"step": f"compact to revision {fmt_count(recovery['compact'].get('revision'))}",
             "outcome": recovery["compact"]["outcome"],
             "time": fmt_seconds(recovery["compact"]["elapsed_s"]),
             "before": sizes_text(recovery["db_size_before"]),
             "after": sizes_text(recovery["db_size_after_compact"])}]
    rows += _early_rows(recovery.get("early_disarm"))
    for defrag in recovery["defragment"]:
        rows.append({"step": f"defragment {defrag['member']}", "outcome": defrag["outcome"],
                     "time": fmt_seconds(defrag["elapsed_s"]),
                     "before": fmt_bytes(defrag["db_size_before"]),
                     "after": fmt_bytes(defrag["db_size_after"])})
    for disarm in recovery["disarm"]:
        rows.append({"step": f"disarm {disarm['alarm']} of {disarm['member']}",
                     "outcome": disarm["outcome"], "time": fmt_seconds(disarm["elapsed_s"]),
                     "before": MISSING, "after": MISSING})
    write = recovery["write_after"]
    rows.append({"step": "write again", "outcome": write["outcome"],
                 "time": fmt_seconds(write["elapsed_s"]), "before": MISSING,
                 "after": sizes_text(recovery["db_size_after"])})
    return rows


def _phase_rows(phases: list[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """One row per phase: its number (the chart's x), name, every member's two sizes."""
    return [{"step": fmt_count(step), "phase": phase["phase"],
             "db_size": sizes_text(phase.get("db_size")),
             "in_use": sizes_text(phase.get("db_size_in_use"))}
            for step, phase in enumerate(phases or [])]


def _blocking_rows(blocking: list[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """One row per member: its defragmentation and the reads around it."""
    return [{"member": b["member"], "defrag": fmt_seconds(b.get("defrag_s")),
             "gap": fmt_seconds(b.get("longest_gap_s")),
             "next": fmt_seconds(b.get("answered_after_s")),
             "during": fmt_count(b.get("reads_during")),
             "longest": fmt_seconds(b.get("longest_read_during_s")),
             "before": fmt_seconds(b.get("median_read_before_s")),
             "reads": fmt_count(b.get("reads"))} for b in blocking or []]


def _alarm_lists(listed: Mapping[str, list[Mapping[str, Any]]]) -> str:
    """"node1: NOSPACE of node1; node2: none" — each member's alarm list."""
    return "; ".join(
        f"{member}: " + (", ".join(f"{a['alarm']} of {a['member']}" for a in alarms) or "none")
        for member, alarms in sorted(listed.items())) or MISSING


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q6 section: findings (answer first), tables, published figures, method."""
    params, samples = result.params, result.samples
    summary = summarize(samples, params)
    items = findings(summary, params)
    measured = [f for f in items if f.kind == "measured"]
    alarm_ids = ("alarm_listed", "writes_refused", "reads_worked", "delete_worked",
                 *ACCEPTS, "nospace-accepts-compact", "health_unhealthy")
    recovery_ids = ("compaction_kept_size", "compaction-frees-in-use",
                    "disarm-before-defrag-realarms", "defrag_returned_space",
                    "defrag-blocks-member", "recovered")
    fill, alarm = samples.get("fill") or {}, samples.get("alarm") or {}
    recovery = samples.get("recovery") or {}
    setup, restore = samples.get("setup") or {}, samples.get("restore") or {}
    halves = summary.get("write_latency_halves") or [None, None]
    return {
        "findings": items,
        "run_vs_question": run_vs_question(params, ASKED),
        "answer": measured[:1],
        "during_alarm": [f for f in measured if f.id in alarm_ids],
        "recovery_findings": [f for f in measured if f.id in recovery_ids],
        "others": [f for f in measured[1:] if f.id not in alarm_ids + recovery_ids],
        "quota": fmt_bytes(params["quota_bytes"]),
        "fill": {
            "writes": fmt_count(fill.get("acknowledged")),
            "unknown": fmt_count(fill.get("unknown")),
            "bytes": fmt_bytes(fill.get("bytes_acknowledged")),
            "elapsed": fmt_seconds(fill.get("elapsed_s")),
            "sizes": sizes_text(fill.get("db_size_at_alarm")),
            "latency_first": fmt_median_stats(halves[0]),
            "latency_second": fmt_median_stats(halves[1]),
        } if fill else None,
        "alarm_members": _alarm_lists(alarm.get("alarms") or {}),
        "alarm_listed_after": fmt_within(alarm.get("listed_after_s"), ALARM_POLL_S),
        "probe_rows": _probe_rows(alarm) + _compaction_row(recovery),
        "phase_rows": _phase_rows(samples.get("phases")),
        "phases_chart": chart_files.get("phases"),
        "blocking_rows": _blocking_rows(summary.get("recovery", {}).get("defrag_blocking")),
        "realarm_wait": fmt_seconds((recovery.get("early_disarm") or {}).get("poll_limit_s")),
        "reader_lead": fmt_seconds(next(iter(recovery.get("defragment") or []), {}).get(
            "reader_lead_s")),
        "reader_tail": fmt_seconds(next(iter(recovery.get("defragment") or []), {}).get(
            "reader_tail_s")),
        "blocked_share": fmt_percent(BLOCKED_SHARE, 0),
        "blocked_factor": fmt_count(BLOCKED_FACTOR),
        "recovery_rows": _recovery_rows(recovery) if recovery else [],
        "sizes_chart": chart_files.get("sizes"),
        "latency_chart": chart_files.get("latency"),
        "course_quote": COURSE_REPORT_QUOTE,
        "configured": sizes_text(setup.get("configured")),
        "restored": sizes_text(restore.get("configured")),
        "reconfigure": fmt_seconds(setup.get("reconfigure_s")),
        "restore_time": fmt_seconds(restore.get("reconfigure_s")),
        "value_bytes": fmt_bytes(params.get("value_bytes")),
        "key_count": fmt_count(params.get("keys")),
        "size_every": fmt_count(params.get("size_every")),
        "alarm_wait": fmt_seconds(params.get("alarm_wait_s")),
        "start_sizes": sizes_text(setup.get("db_sizes_start")),
        "block": fmt_count(LATENCY_BLOCK),
        "members": metadata_text(result, "node_count", "nodes"),
        "etcd_version": metadata_text(result, "etcd_version"),
        "provisioned_quota": metadata_text(result, "quota_backend_bytes"),
    }
