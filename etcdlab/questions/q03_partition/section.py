"""Q3 ``partition`` in the report: the findings, tables and chart of analysis.py beside it."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import MISSING, fmt_count, fmt_ms, fmt_seconds
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q03_partition import analysis
from etcdlab.questions.section import election_timeout_lines, history_timelines, metadata_text
from etcdlab.report import charts as plots
from etcdlab.results import Result


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Strip plot of the timed events that have at least three values (fewer: table rows),
    and a timeline around the counterexample of each history that is not linearizable."""
    files = {f"timeline:{label}": name
             for label, name in history_timelines(result, out_dir).items()}
    series = analysis.chart_series(analysis.summarize(result.samples, result.params))
    if series:
        files["times"] = plots.strip_plot(
            out_dir / "partition.png",
            {label.replace(": ", ":\n", 1): values for label, values in series.items()},
            "Partition: times after the cut and after healing (events with n ≥ 3)",
            "seconds",
            reference_lines=election_timeout_lines(result),
        )
    return files


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q3 section: findings (answer first), tables, chart, method."""
    params = result.params
    summary = analysis.summarize(result.samples, params)
    trials = [*result.samples.get("leader_isolated", []),
              *result.samples.get("follower_isolated", [])]
    cut_windows = [t["cut_window_s"] for t in trials if t.get("cut_window_s") is not None]
    return {
        "findings": analysis.findings(summary, params, result.metadata),
        "run_vs_question": run_vs_question(params, analysis.ASKED),
        "timing_rows": analysis.timing_rows(summary),
        "op_rows": analysis.op_rows(result.samples),
        "stale_rows": analysis.stale_rows(result.samples),
        "last_second_rows": analysis.last_second_rows(summary),
        "one_way_rows": analysis.one_way_rows(summary),
        "oneway_hold": fmt_seconds(params.get("oneway_hold_s")),
        "oneway_watch": fmt_seconds(params.get("oneway_watch_s")),
        "last_second_timeout": fmt_seconds(params.get("last_second_timeout_s")),
        "chart": chart_files.get("times"),
        "timelines": [{"label": key.split(":", 1)[1], "file": name}
                      for key, name in sorted(chart_files.items())
                      if key.startswith("timeline:")],
        "trials": fmt_count(params.get("trials")),
        "n_leader": fmt_count(summary["detail"]["leader_trials"]),
        "n_follower": fmt_count(summary["detail"]["follower_trials"]),
        "op_timeout": fmt_seconds(params.get("op_timeout_s")),
        "poll_interval": fmt_ms(params.get("poll_interval_ms")),
        "settle": fmt_seconds(params.get("settle_s")),
        "follower_watch": fmt_seconds(params.get("follower_watch_s")),
        "cut_window": fmt_seconds(statistics.median(cut_windows)) if cut_windows else MISSING,
        "election_timeout": fmt_ms(result.metadata.get("election_timeout_ms")),
        "members": metadata_text(result, "node_count", "nodes"),
        "etcd_version": metadata_text(result, "etcd_version"),
    }
