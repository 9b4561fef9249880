"""Q9 ``faulty-clock`` in the report: estimate charts and section data from the samples."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.experiments.faulty_clock import RUNS, observer_verdicts, summarize_run
from etcdlab.results import Result
from etcdlab.units import MISSING, fmt_bool, fmt_count, fmt_ms, fmt_seconds

LABELS = {"offset": "one clock offset", "drift": "one clock drifting",
          "two_faulty": "two faulty clocks, five agents"}


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


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q9 section: answer, per-run table, estimates, comparison, method."""
    params = result.params
    runs = {name: summarize_run(result.samples["runs"][name], params)
            for name in RUNS if name in result.samples.get("runs", {})}
    expected_drift_s = params["threshold_ms"] / params["drift_ms_per_min"] * 60.0
    exact = all(r["exact"] for r in runs.values())
    false_positives = sum(r["false_positives"] for r in runs.values())
    worst = max((r["max_estimate_error_ms"] for r in runs.values()
                 if r["max_estimate_error_ms"] is not None), default=None)
    p99 = max((r["p99_estimate_error_ms"] for r in runs.values()
               if r.get("p99_estimate_error_ms") is not None), default=None)
    median_rtt = max((r["median_round_trip_ms"] for r in runs.values()
                      if r.get("median_round_trip_ms") is not None), default=None)
    max_rtt = max((r["max_round_trip_ms"] for r in runs.values()
                   if r.get("max_round_trip_ms") is not None), default=None)
    detection_text = "; ".join(
        f"{LABELS[name]}: " + ", ".join(
            f"{agent} after {fmt_seconds(seconds)}" for agent, seconds in r["detection_s"].items())
        for name, r in runs.items())
    answer = [
        (f"Yes: in every run the agents flagged exactly the clocks that had been made faulty "
         f"and no other ({fmt_count(false_positives)} false positives over "
         f"{fmt_count(sum(r['rounds'] for r in runs.values()))} rounds), by a majority vote "
         f"over Marzullo intersections of their peers' offset intervals.") if exact else
        (f"Not exactly: the flagged clocks differed from the injected ones in at least one "
         f"run ({fmt_count(false_positives)} false positives); see the table."),
        (f"Time to flag, from the agents' start — {detection_text}. The first round is "
         f"probed about 1 s after the start; a drifting clock can only be flagged once its "
         f"drift has carried it past the {fmt_ms(params['threshold_ms'])} threshold, "
         f"{fmt_seconds(expected_drift_s)} after the start at "
         f"{fmt_ms(params['drift_ms_per_min'])}/min."),
        (f"The agents' estimates of each clock's offset from the majority were within "
         f"{fmt_ms(worst)} of the injected offsets (worst case over every agent and round; "
         f"99 % were within {fmt_ms(p99)}); each estimate carries an error bound of half its "
         f"probe's round trip, which was {fmt_ms(median_rtt)} in the median and up to "
         f"{fmt_ms(max_rtt)} on this shared two-core machine."),
    ]
    rows = []
    for name, figures in runs.items():
        rows.append({
            "label": LABELS[name],
            "agents": fmt_count(len(figures["agents"])),
            "injected": ", ".join(figures["injected_faulty"]) or "none",
            "flagged": ", ".join(figures["flagged"]) or "none",
            "detection": ", ".join(f"{a}: {fmt_seconds(s)}"
                                   for a, s in figures["detection_s"].items()) or MISSING,
            "false_positives": fmt_count(figures["false_positives"]),
            "observer_fp": fmt_count(figures["observer_false_positives"]),
            "max_error": fmt_ms(figures["max_estimate_error_ms"]),
            "median_error": fmt_ms(figures["median_estimate_error_ms"]),
            "p99_error": fmt_ms(figures["p99_estimate_error_ms"]),
            "max_rtt": fmt_ms(figures["max_round_trip_ms"]),
            "lost": fmt_count(figures["lost_probes"]),
            "undecided": fmt_count(figures["undecided_views"]),
            "exact": fmt_bool(figures["exact"]),
        })
    estimates = []
    for name, figures in runs.items():
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
        "answer": answer,
        "rows": rows,
        "estimates": estimates,
        "charts": [{"file": chart_files[name], "label": LABELS[name]}
                   for name in RUNS if name in chart_files],
        "threshold": fmt_ms(params["threshold_ms"]),
        "offset": fmt_ms(params["offset_ms"]),
        "drift": f"{fmt_ms(params['drift_ms_per_min'])}/min",
        "rounds": fmt_count(params["rounds"]),
        "interval": fmt_seconds(params["interval_s"]),
        "probe_timeout": fmt_seconds(params["probe_timeout_s"]),
        "extra_agents": ", ".join(extra),
        "five_on": "five nodes" if two and not extra else "three nodes with extra agents",
    }


def _fault_text(agent: Mapping[str, Any]) -> str:
    """How an agent's clock was faked, in words."""
    parts = []
    if agent["offset_s"]:
        parts.append(f"offset {fmt_ms(agent['offset_s'] * 1e3)}")
    if agent["rate"] != 1.0:
        parts.append(f"drift {fmt_ms((agent['rate'] - 1.0) * 60_000.0)}/min")
    return ", ".join(parts) or "correct"
