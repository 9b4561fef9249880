"""Q4 ``lamport`` in the report: space-time diagram and section data from the samples."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.experiments.lamport import summarize
from etcdlab.results import Result
from etcdlab.units import fmt_count, fmt_ms, fmt_percent, fmt_seconds

DIAGRAM_EVENTS = 30


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """A space-time diagram of the first events of the message run."""
    events = sorted(result.samples["messages"]["events"], key=lambda e: e["t"])
    # Events milliseconds apart would overlap on a time axis: place them by rank in real
    # time instead, which keeps every message arrow pointing forward.
    first = [{**event, "t": rank} for rank, event in enumerate(events[:DIAGRAM_EVENTS])]
    processes = sorted({e["process"] for e in result.samples["messages"]["events"]})
    return {"diagram": plots.space_time_diagram(
        out_dir / "lamport_space_time.png", processes, first,
        f"First {len(first)} events: (Lamport clock, process id)",
        xlabel="events in the order they happened (real time)")}


def _total_order_example(events: list[Mapping[str, Any]]) -> list[str]:
    """The first events of the run in the (C, id) total order, as text."""
    ordered = sorted(events, key=lambda e: (e["clock"], e["process"]))[:12]
    names = {"local": "local", "send": "send", "receive": "receive"}
    return [f"({e['clock']},{e['process']}) {names[e['kind']]}"
            + (f" {e['msg']}" if e["msg"] else "") for e in ordered]


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q4 section: answer, checks, shared-key table, course report, method."""
    params = result.params
    summary = summarize(result.samples, params)
    shared = summary["shared_key"]
    events = result.samples["messages"]["events"]
    violations = summary["clock_condition_violations"]
    ties = summary["total_order_ties"]
    holds = violations == 0 and summary["message_violations"] == 0 \
        and summary["process_order_violations"] == 0
    answer = [
        (f"Yes: {fmt_count(summary['processes'])} processes exchanged "
         f"{fmt_count(summary['messages'])} messages through etcd ({fmt_count(summary['events'])}"
         f" events) and the clock condition held for all {fmt_count(summary['causal_pairs'])} "
         f"causally related pairs of events (a → b gave C(a) < C(b)); the (C, id) order had "
         f"{fmt_count(ties)} ties, so every process orders all events the same way.")
        if holds and ties == 0 else
        (f"No: of {fmt_count(summary['causal_pairs'])} causally related pairs, "
         f"{fmt_count(violations)} violated the clock condition, and the (C, id) order had "
         f"{fmt_count(ties)} ties; the implementation or the log needs a closer look."),
        (f"{fmt_count(summary['concurrent_equal_clock'])} of the "
         f"{fmt_count(summary['concurrent_pairs'])} concurrent pairs had equal clocks and were "
         "ordered by the process id alone: the total order is consistent with causality but "
         "says nothing about which of two concurrent events came first."),
        _shared_sentence(shared, params),
    ]
    acknowledged = shared["naive_acknowledged"]
    rows = [
        {"label": "read, max, +1, put (no transaction)", "acknowledged": fmt_count(acknowledged),
         "lost": fmt_count(shared["naive_lost_updates"]),
         "lost_percent": fmt_percent(shared["naive_lost_updates"] / acknowledged)
         if acknowledged else "—",
         "regressions": fmt_count(shared["naive_regressions"]),
         "duplicates": fmt_count(shared["naive_duplicate_clocks"]),
         "retries": "—", "unknown": fmt_count(shared["naive_unknown"])},
        {"label": "same, as a compare-and-swap transaction",
         "acknowledged": fmt_count(shared["cas_acknowledged"]),
         "lost": fmt_count(shared["cas_lost_updates"]),
         "lost_percent": fmt_percent(shared["cas_lost_updates"] / shared["cas_acknowledged"])
         if shared["cas_acknowledged"] else "—",
         "regressions": fmt_count(shared["cas_regressions"]),
         "duplicates": fmt_count(shared["cas_duplicate_clocks"]),
         "retries": fmt_count(shared["cas_retries"]), "unknown": fmt_count(shared["cas_unknown"])},
    ]
    checks = [
        {"label": "Events / messages sent / delivered",
         "value": f"{fmt_count(summary['events'])} / {fmt_count(summary['messages'])} / "
                  f"{fmt_count(summary['delivered'])}"},
        {"label": "Causally related pairs (from vector clocks of the log)",
         "value": fmt_count(summary["causal_pairs"])},
        {"label": "Clock-condition violations (a → b but C(a) ≥ C(b))",
         "value": fmt_count(violations)},
        {"label": "… of them send → receive", "value": fmt_count(summary["message_violations"])},
        {"label": "… of them in one process's order",
         "value": fmt_count(summary["process_order_violations"])},
        {"label": "Ties in the (C, id) order", "value": fmt_count(ties)},
        {"label": "Concurrent pairs / with equal clocks",
         "value": f"{fmt_count(summary['concurrent_pairs'])} / "
                  f"{fmt_count(summary['concurrent_equal_clock'])}"},
        {"label": "Highest clock", "value": fmt_count(summary["max_clock"])},
        {"label": "Sends with an unknown outcome / undelivered",
         "value": f"{fmt_count(summary['unknown_sends'])} / {fmt_count(summary['undelivered'])}"},
    ]
    durations = [e["t"] for e in events]
    return {
        "answer": answer,
        "checks": checks,
        "rows": rows,
        "order_example": _total_order_example(events),
        "chart": chart_files.get("diagram"),
        "processes": fmt_count(summary["processes"]),
        "steps": fmt_count(params["steps"]),
        "send_probability": fmt_percent(params["send_probability"], 0),
        "think": fmt_ms(params["max_think_ms"]),
        "shared_updates": fmt_count(params["shared_updates"]),
        "span": fmt_seconds(max(durations) if durations else None),
        "diagram_events": fmt_count(min(DIAGRAM_EVENTS, len(events))),
    }


def _shared_sentence(shared: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """The course report's shared global clock key, without and with a transaction."""
    lost = shared["naive_lost_updates"]
    text = (f"The course report's shared \"global clock\" key, read, maxed and written back "
            f"by {fmt_count(params['processes'])} processes "
            f"{fmt_count(params['shared_updates'])} times each, ")
    if lost:
        text += (f"lost {fmt_count(lost)} of {fmt_count(shared['naive_acknowledged'])} "
                 f"acknowledged updates without a transaction (and wrote "
                 f"{fmt_count(shared['naive_duplicate_clocks'])} duplicate clock values), ")
    else:
        text += "lost no update without a transaction in this run (the race was not hit), "
    text += (f"and {fmt_count(shared['cas_lost_updates'])} with a compare-and-swap "
             f"transaction, at the cost of {fmt_count(shared['cas_retries'])} retries.")
    return text
