"""Q2 ``conflicts`` in the report: chart, table and findings, recomputed from the samples.

Every conclusion comes from :func:`.analysis.findings`; this module only
lays out figures (the table, the charts, the method's parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import fmt_count, fmt_rate, fmt_seconds
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q02_conflicts.analysis import ASKED, findings, summarize
from etcdlab.report import charts as plots
from etcdlab.results import Result

LABELS = {"naive": "naive get-then-put", "cas": "CAS on mod_revision"}


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """One figure: lost updates and throughput, naive get-then-put vs CAS."""
    summary = summarize(result.samples, result.params)
    labels = [LABELS[method] for method in ("naive", "cas")]
    lost = [max(summary[method]["lost_updates"], 0) for method in ("naive", "cas")]
    rates = [summary[method]["ops_per_s"] or 0.0 for method in ("naive", "cas")]
    return {"chart": plots.bar_panels(
        out_dir / "conflicts.png",
        [("Lost increments of one shared counter", labels, lost,
          [fmt_count(value) for value in lost], "lost increments"),
         ("Acknowledged increments per second", labels, rates,
          [fmt_rate(value) for value in rates], "ops/s (one op = one increment)")],
        "Naive get-then-put against compare-and-swap")}


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q2 section: findings, the table per method, the method's parameters."""
    params = result.params
    summary = summarize(result.samples, params)
    rows = []
    for method in ("naive", "cas"):
        figures = summary[method]
        rows.append({
            "label": LABELS[method],
            "acknowledged": fmt_count(figures["acknowledged"]),
            "final_value": fmt_count(figures["final_value"]),
            "lost": fmt_count(max(figures["lost_updates"], 0)),
            "retries": fmt_count(figures["retries"]),
            "throughput": fmt_rate(figures["ops_per_s"]),
            "elapsed": fmt_seconds(figures["elapsed_s"]),
        })
    return {
        "findings": findings(summary, params),
        "run_vs_question": run_vs_question(params, ASKED),
        "rows": rows,
        "chart": chart_files.get("chart"),
        "workers": fmt_count(params.get("workers")),
        "increments": fmt_count(params.get("increments")),
        "attempts": fmt_count(summary["attempted"]),
    }
