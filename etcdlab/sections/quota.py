"""Q6 ``quota`` in the report: charts, tables and findings from the saved samples.

Every conclusion comes from :func:`etcdlab.analysis.quota.findings`; this module only
recomputes the summary from the samples and lays out tables and charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.analysis import run_vs_question
from etcdlab.analysis.quota import (
    ALARM_POLL_S,
    ASKED,
    COURSE_REPORT_QUOTE,
    PROBE_LABELS,
    findings,
    sizes_text,
    summarize,
)
from etcdlab.results import Result
from etcdlab.sections.common import metadata_text
from etcdlab.stats import percentile
from etcdlab.units import MISSING, fmt_bytes, fmt_count, fmt_median_stats, fmt_seconds, fmt_within

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


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """DB size per member and write latency, both against the bytes acknowledged."""
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


def _recovery_rows(recovery: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = [{"step": f"compact to revision {fmt_count(recovery['compact'].get('revision'))}",
             "outcome": recovery["compact"]["outcome"],
             "time": fmt_seconds(recovery["compact"]["elapsed_s"]),
             "before": sizes_text(recovery["db_size_before"]),
             "after": sizes_text(recovery["db_size_after_compact"])}]
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
                 "health_unhealthy")
    recovery_ids = ("compaction_kept_size", "defrag_returned_space", "recovered")
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
        "probe_rows": _probe_rows(alarm),
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
