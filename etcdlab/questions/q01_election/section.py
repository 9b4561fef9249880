"""Q1 ``election`` in the report: the findings, tables and chart of analysis.py beside it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import fmt_count, fmt_ms, fmt_seconds
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q01_election import analysis
from etcdlab.questions.section import metadata_text, values
from etcdlab.report import charts as plots
from etcdlab.results import Result


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Cumulative distributions of the time to a new leader and to the first write, crash
    and graceful, on a log time axis (a graceful handover takes milliseconds, a crash
    election about a second: on a linear axis the graceful series would sit at zero); and
    the crash times' empirical CDF over the election model's, the course's 1.77 s marked."""
    series = {
        f"{name}: {what}": values(result.samples.get(name, []), key)
        for name in analysis.SERIES
        for what, key in (("new leader", "elected_s"), ("first write", "first_write_s"))
    }
    if not any(series.values()):
        return {}
    timeout_s = result.metadata["election_timeout_ms"] / 1000
    window = (timeout_s, 2 * timeout_s,
              f"[T, 2T) = [{fmt_seconds(timeout_s)}, {fmt_seconds(2 * timeout_s)}): "
              "etcd's randomised election timeout")
    names = {"times": plots.cdf_plot_log(
        out_dir / "election.png", series,
        "Time from stopping the leader to a new leader and to the first write",
        "seconds after SIGKILL (crash) / SIGTERM (graceful), log scale", window,
    )}
    crash = values(result.samples.get("crash", []), "elected_s")
    if crash:
        model = analysis.election_model(result.metadata, result.params)
        names["model"] = plots.cdf_with_model(
            out_dir / "election_model.png",
            {f"measured: crash to polled new leader (n = {len(crash)})": crash},
            {f"model: median {fmt_seconds(model.median_s)}, p95 {fmt_seconds(model.p95_s)}":
                 model.curve()},
            "Crash to new leader: measured against the election model",
            "seconds after SIGKILL",
            {f"course report {fmt_seconds(analysis.COURSE_ELECTION_S)}":
                 analysis.COURSE_ELECTION_S},
            window,
        )
    return names


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q1 section: findings (answer first), tables, chart, method."""
    params = result.params
    summary = analysis.summarize(result.samples, params)
    return {
        "findings": analysis.findings(summary, params, result.metadata),
        "run_vs_question": run_vs_question(params, analysis.ASKED),
        "rows": analysis.timing_rows(summary),
        "appendix_rows": analysis.appendix_rows(summary),
        "sweep_rows": analysis.sweep_rows(summary, params, result.metadata),
        "size_rows": analysis.size_rows(summary, params),
        "grid_rows": analysis.grid_rows(summary, params),
        "chart": chart_files.get("times"),
        "model_chart": chart_files.get("model"),
        "model_rounds": fmt_seconds(analysis.election_model(result.metadata, params).rounds_s),
        "course_election": fmt_seconds(analysis.COURSE_ELECTION_S),
        "heartbeat": fmt_ms(result.metadata.get("heartbeat_ms")),
        "election_timeout": fmt_ms(result.metadata.get("election_timeout_ms")),
        "trials": fmt_count(params.get("trials")),
        "poll_interval": fmt_ms(params.get("poll_interval_ms")),
        "write_timeout": fmt_seconds(params.get("write_timeout_s")),
        "n_crash": fmt_count(len(result.samples.get("crash", []))),
        "n_graceful": fmt_count(len(result.samples.get("graceful", []))),
        "members": metadata_text(result, "node_count", "nodes"),
        "etcd_version": metadata_text(result, "etcd_version"),
    }
