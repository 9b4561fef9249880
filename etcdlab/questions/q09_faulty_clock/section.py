"""Q9 ``faulty-clock`` in the report: estimate charts, findings and tables from the samples."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import MISSING, fmt_bool, fmt_count, fmt_ms, fmt_seconds, fmt_within
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q09_faulty_clock.analysis import (
    ASKED,
    LABELS,
    RUNS,
    findings,
    observer_verdicts,
    summarize,
)
from etcdlab.report import charts as plots
from etcdlab.results import Result


def _estimates_over_time(result: Result, run_name: str) -> dict[str, tuple[list, list]]:
    """Per clock: the median over the agents of its offset from the majority, per round."""
    run = result.samples["runs"][run_name]
    verdicts = observer_verdicts(run, result.params["threshold_ms"] / 1000.0)
    started = run["started_at"]
    rounds: dict[int, list[dict[str, Any]]] = {}
    for verdict in verdicts:
        if verdict["decided"]:
            rounds.setdefault(verdict["round"], []).append(verdict)
    series: dict[str, tuple[list, list]] = {}
    for subject in sorted(run["agents"]):
        xs, ys = [], []
        for index in sorted(rounds):
            seen = [v["deviation"][subject] for v in rounds[index] if subject in v["deviation"]]
            if seen:
                xs.append(min(v["real"] for v in rounds[index]) - started)
                ys.append(statistics.median(seen) * 1e3)
        series[subject] = (xs, ys)
    return series


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Estimated offset of every clock from the majority, one chart per run."""
    threshold = result.params["threshold_ms"]
    files = {}
    for run_name in RUNS:
        if run_name not in result.samples.get("runs", {}):
            continue
        files[run_name] = plots.time_series(
            out_dir / f"faulty_clock_{run_name}.png", _estimates_over_time(result, run_name),
            f"Offset from the majority (agents' estimate): {LABELS[run_name]}",
            "seconds since the agents started", "offset from the majority (ms)",
            reference_lines={f"+{threshold:g} ms threshold": threshold,
                             f"−{threshold:g} ms threshold": -threshold})
    return files


def _fault_text(agent: Mapping[str, Any]) -> str:
    """How an agent's clock was faked, in words."""
    parts = []
    if agent["offset_s"]:
        parts.append(f"offset {fmt_ms(agent['offset_s'] * 1e3)}")
    if agent["rate"] != 1.0:
        parts.append(f"drift {fmt_ms((agent['rate'] - 1.0) * 60_000.0)}/min")
    return ", ".join(parts) or "correct"


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q9 section: findings, per-run tables, estimates, method values."""
    params = result.params
    summary = summarize(result.samples, params)
    runs = {name: summary[name] for name in RUNS if name in summary}
    interval = params["interval_s"]
    rows, details, estimates = [], [], []
    for name, figures in runs.items():
        rows.append({
            "label": LABELS[name],
            "agents": fmt_count(len(figures["agents"])),
            "injected": ", ".join(figures["injected_faulty"]) or "none",
            "flagged": ", ".join(figures["flagged"]) or "none",
            "detection": ", ".join(
                f"{a}: {MISSING if s is None else fmt_within(s, interval)}"
                for a, s in figures["detection_s"].items()) or MISSING,
            "false_positives": fmt_count(figures["false_positives"]),
            "max_error": fmt_ms(figures["max_estimate_error_ms"]),
        })
        details.append({
            "label": LABELS[name],
            "errors": " / ".join(fmt_ms(figures[k]) for k in (
                "median_estimate_error_ms", "p99_estimate_error_ms", "max_estimate_error_ms")),
            "rtt": f"{fmt_ms(figures['median_round_trip_ms'])} / "
                   f"{fmt_ms(figures['max_round_trip_ms'])}",
            "observer_fp": fmt_count(figures["observer_false_positives"]),
            "lost": fmt_count(figures["lost_probes"]),
            "undecided": fmt_count(figures["undecided_views"]),
            "exact": fmt_bool(figures["exact"]),
        })
        agents = result.samples["runs"][name]["agents"]
        for subject, values in figures["final_estimates"].items():
            agent = agents[subject]
            estimates.append({
                "run": LABELS[name], "clock": subject, "node": agent["node"],
                "fault": _fault_text(agent),
                "injected": fmt_ms(values["injected_ms"]),
                "estimated": fmt_ms(values["estimated_ms"]),
            })
    two = result.samples.get("runs", {}).get("two_faulty")
    extra = sorted(n for n, a in two["agents"].items() if n != a["node"]) if two else []
    return {
        "findings": findings(summary, params),
        "run_vs_question": run_vs_question(params, ASKED),
        "rows": rows,
        "details": details,
        "truth_measured": bool(runs) and all(
            r["ground_truth"]["measured"] == r["ground_truth"]["agents"] for r in runs.values()),
        "estimates": estimates,
        "charts": [{"file": chart_files[name], "label": LABELS[name]}
                   for name in RUNS if name in chart_files],
        "threshold": fmt_ms(params["threshold_ms"]),
        "offset": fmt_ms(params["offset_ms"]),
        "drift": f"{fmt_ms(params['drift_ms_per_min'])}/min",
        "crossing": fmt_seconds(params["threshold_ms"] / params["drift_ms_per_min"] * 60.0),
        "rounds": fmt_count(params["rounds"]),
        "interval": fmt_seconds(interval),
        "probe_timeout": fmt_seconds(params["probe_timeout_s"]),
        "extra_agents": ", ".join(extra),
        "five_on": "five nodes" if two and not extra else "three nodes with extra agents",
    }
