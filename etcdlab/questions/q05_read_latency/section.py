"""Q5 ``read-latency`` in the report: charts, tables and findings from the saved samples.

Every conclusion comes from :func:`.analysis.findings`; this module
only recomputes the summary from the samples and lays out tables and charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import MISSING, fmt_count, fmt_ms, fmt_rate, fmt_seconds, fmt_share
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q05_read_latency.analysis import (
    ASKED,
    CONSISTENCIES,
    COURSE_REPORT_QUOTE,
    HARNESS_TARGET,
    PUBLISHED_C1,
    PUBLISHED_C1000,
    PUBLISHED_SOURCE,
    TARGETS,
    cell,
    findings,
    fmt_bounds,
    published_ms,
    read_bounds,
    summarize,
)
from etcdlab.questions.section import metadata_text
from etcdlab.report import charts as plots
from etcdlab.results import Result


def _cells(result: Result) -> dict[tuple[int, str, str], dict[str, Any]]:
    """(concurrency, target, consistency) → the cell's samples."""
    return {(c["concurrency"], c["target"], c["consistency"]): c
            for c in result.samples.get("cells", [])}


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Latency CDFs with the fewest clients (one line per cell) and throughput against the
    number of clients (one line per consistency and target)."""
    cells = _cells(result)
    if not cells:
        return {}
    summary = summarize(result.samples, result.params)
    levels = summary["levels"]
    lowest = levels[0]
    files = {
        "cdf": plots.cdf_plot_log(
            out_dir / "read_latency_cdf.png",
            {f"{c}, {t}": [v / 1000.0 for v in cells[(lowest, t, c)]["latencies_us"]]
             for t in TARGETS for c in CONSISTENCIES if (lowest, t, c) in cells},
            f"Read latency with {lowest} client(s): distribution",
            "latency (ms, logarithmic)",
        ),
    }
    series = {}
    for consistency in CONSISTENCIES:
        for target in TARGETS:
            points = [(n, s["throughput_rps"]) for n in levels
                      if (s := cell(summary, n, target, consistency)) and s["throughput_rps"]]
            if points:
                series[f"{consistency}, {target}"] = ([p[0] for p in points],
                                                      [p[1] for p in points])
    styles = {f"{c}, {t}": {"color": f"C{ci}", "linestyle": "-" if t == "leader" else "--"}
              for ci, c in enumerate(CONSISTENCIES) for t in TARGETS}
    files["throughput"] = plots.line_chart(
        out_dir / "read_latency_throughput.png", series,
        "Reads per second against clients (dashed: on a follower)", "concurrent clients",
        "reads/s", styles=styles)
    staleness = _staleness_series(result)
    if staleness:
        files["staleness"] = plots.cdf_plot(
            out_dir / "read_latency_staleness.png", staleness,
            "Serializable reads on a follower: time behind the leader",
            "ms behind the leader's applied state (at least / at most)")
    return files


def _staleness_series(result: Result) -> dict[str, list[float]]:
    """Per write rate, the serializable reads' lower and upper bounds in ms behind."""
    segments = (result.samples.get("staleness") or {}).get("segments") or []
    series: dict[str, list[float]] = {}
    for segment in segments:
        rate = "unpaced" if segment["rate"] == "max" else f"{segment['rate']} writes/s"
        for row in read_bounds(segment):
            if row["consistency"] == "serializable" and row["ms"][1] is not None:
                series.setdefault(f"{rate}, at least", []).append(row["ms"][0])
                series.setdefault(f"{rate}, at most", []).append(row["ms"][1])
    return series


def _load_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per write rate × consistency of the staleness measurement."""
    load = summary.get("staleness")
    if not load:
        return []
    rows = []
    for rate in load["rates"]:
        c = load["cells"][rate]
        writes = c["writes"]
        target = "as fast as the writers go" if rate == "max" else f"{rate} writes/s"
        for consistency in CONSISTENCIES:
            r = c[consistency]
            rows.append({
                "rate": target,
                "achieved": fmt_rate(writes["rate"], "writes/s"),
                "consistency": consistency,
                "reads": fmt_count(r["reads"]),
                "stale": fmt_share(r["certainly_stale"], r["reads"]),
                "rev_median": fmt_bounds(r["revisions_low"]["median"]["median"],
                                         r["revisions_high"]["median"]["median"]),
                "rev_p95": fmt_bounds(r["revisions_low"]["p95"], r["revisions_high"]["p95"]),
                "rev_max": fmt_bounds(r["revisions_low"]["max"], r["revisions_high"]["max"]),
                "ms_median": fmt_bounds(r["ms_low"]["median"]["median"],
                                        r["ms_high"]["median"]["median"], fmt_ms),
                "ms_p95": fmt_bounds(r["ms_low"]["p95"], r["ms_high"]["p95"], fmt_ms),
                "ms_max": fmt_bounds(r["ms_low"]["max"], r["ms_high"]["max"], fmt_ms),
                "latency": fmt_ms(r.get("latency_mean_ms")),
            })
    return rows


def _load_method(result: Result, summary: Mapping[str, Any]) -> dict[str, str] | None:
    load = summary.get("staleness")
    if not load:
        return None
    params = result.params
    writes = [c["writes"] for c in load["cells"].values()]
    ahead = sum(c[k]["ahead"] for c in load["cells"].values() for k in CONSISTENCIES)
    return {
        "leader": load["leader"] or MISSING, "follower": load["follower"] or MISSING,
        "rates": ", ".join("unpaced" if r == "max" else r for r in load["rates"]),
        "seconds": fmt_seconds(params.get("staleness_s")),
        "rounds": fmt_count(params.get("staleness_rounds")),
        "block": fmt_seconds(params.get("staleness_block_s")),
        "writers": fmt_count(load["writers"]), "readers": fmt_count(load["readers"]),
        "probe": fmt_ms(params.get("staleness_probe_ms")),
        "write_latency": ", ".join(fmt_ms(w["latency_p50_ms"]) for w in writes),
        "write_errors": fmt_count(sum(sum(w["errors"].values()) for w in writes)),
        "unaccounted": fmt_count(sum(w["unaccounted_revisions"] for w in writes)),
        "ahead": fmt_count(ahead),
        "histories": fmt_count(len(load.get("histories") or [])),
    }


def _detail_row(n: int, target: str, consistency: str, s: Mapping[str, Any]) -> dict[str, str]:
    return {
        "concurrency": fmt_count(n), "target": f"{target} ({s['member']})",
        "consistency": consistency, "reads": fmt_count(s["reads"]),
        "p50": fmt_ms(s["p50_ms"]), "p90": fmt_ms(s["p90_ms"]), "p99": fmt_ms(s["p99_ms"]),
        "max": fmt_ms(s["max_ms"]), "mean": fmt_ms(s["mean_ms"]),
        "throughput": fmt_rate(s["throughput_rps"], "reads/s"),
        "errors": fmt_count(s["errors"]),
    }


def _throughput_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for n in summary["levels"]:
        row = {"clients": fmt_count(n)}
        for target in TARGETS:
            for consistency in CONSISTENCIES:
                s = cell(summary, n, target, consistency)
                row[f"{target}_{consistency}"] = (fmt_rate(s["throughput_rps"], "reads/s")
                                                  if s else MISSING)
        rows.append(row)
    return rows


def _published_rows() -> list[dict[str, str]]:
    rows = []
    for label, table in (("1 connection, 1 client", PUBLISHED_C1),
                         ("100 connections, 1000 clients", PUBLISHED_C1000)):
        for consistency in CONSISTENCIES:
            qps, latency = table[consistency]
            rows.append({"workload": f"{consistency} read, {label}",
                         "throughput": fmt_rate(qps, "QPS"), "latency": published_ms(latency)})
    return rows


def _harness(summary: Mapping[str, Any]) -> dict[str, str] | None:
    h = summary.get("harness")
    if not h:
        return None
    return {
        "member": h["member"] or MISSING,
        "reads": fmt_count(h["reads"]),
        "blocks": fmt_count(h["blocks"]),
        "bare": fmt_ms(h["bare_p50_ms"]),
        "etcd3": fmt_ms(h["etcd3_p50_ms"]),
        "ratio": f"{h['ratio']:.2f}" if h["ratio"] is not None else MISSING,
        "cpu_bare": fmt_ms(h["cpu_bare_us"] / 1000.0) if h.get("cpu_bare_us") is not None
        else "",
        "cpu_etcd3": fmt_ms(h["cpu_etcd3_us"] / 1000.0) if h.get("cpu_etcd3_us") is not None
        else "",
    }


CITES = ("partition",)
"""Q3's register workload checks serializable and linearizable reads under a cut-off leader:
Q5 cites its verdicts for how stale a serializable read can be."""


def section(result: Result, chart_files: Mapping[str, str],
            cited: Mapping[str, Result] | None = None) -> dict[str, Any]:
    """Prepare the Q5 section: findings (answer first), tables, published figures, method.
    ``cited`` may hold this run's partition result, whose checked histories Q5 cites."""
    partition = (cited or {}).get("partition")
    summary = summarize(result.samples, result.params)
    items = findings(summary, result.params,
                     None if partition is None else partition.samples.get("histories") or {})
    measured = [f for f in items if f.kind == "measured"]
    cells = [f for f in measured if f.id.startswith("slower.")]
    load = [f for f in items if f.id.startswith("load-")]
    levels = summary["levels"]
    return {
        "findings": items,
        "run_vs_question": run_vs_question(result.params, ASKED),
        "answer": measured[:1],
        "cells": cells,
        "others": [f for f in measured[1:] if f not in cells and f not in load],
        "load": load,
        "load_rows": _load_rows(summary),
        "load_method": _load_method(result, summary),
        "staleness_chart": chart_files.get("staleness"),
        "throughput_rows": _throughput_rows(summary),
        "detail_rows": [_detail_row(n, t, c, s) for n in levels for t in TARGETS
                        for c in CONSISTENCIES if (s := cell(summary, n, t, c))],
        "harness": _harness(summary),
        "harness_target": f"{HARNESS_TARGET:.2f}",
        "published_rows": _published_rows(),
        "published_source": PUBLISHED_SOURCE,
        "course_quote": COURSE_REPORT_QUOTE,
        "cdf_chart": chart_files.get("cdf"),
        "throughput_chart": chart_files.get("throughput"),
        "reads": fmt_count(result.params.get("reads")),
        "warmup": fmt_count(result.params.get("warmup")),
        "levels": ", ".join(str(n) for n in levels) or MISSING,
        "lowest": fmt_count(levels[0]) if levels else MISSING,
        "timeout": fmt_seconds(result.params.get("op_timeout_s")),
        "members": metadata_text(result, "node_count", "nodes"),
        "etcd_version": metadata_text(result, "etcd_version"),
        "cpus": metadata_text(result, "cpu_count"),
    }
