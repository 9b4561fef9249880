"""Q4 ``lamport`` in the report: space-time diagram, tables and findings from the samples.

Every conclusion comes from :func:`.analysis.findings`; this module only
lays out figures (the checks, the shared-key table, the first events in (C, id) order).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import fmt_count, fmt_ms, fmt_percent, fmt_seconds
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q04_lamport.analysis import ASKED, findings, summarize
from etcdlab.report import charts as plots
from etcdlab.results import Result

DIAGRAM_EVENTS = 30
ORDER_EXAMPLE_EVENTS = 12


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
    ordered = sorted(events, key=lambda e: (e["clock"], e["process"]))[:ORDER_EXAMPLE_EVENTS]
    return [f"({e['clock']},{e['process']}) {e['kind']}" + (f" {e['msg']}" if e["msg"] else "")
            for e in ordered]


def _pair(a: int | None, b: int | None) -> str:
    return f"{fmt_count(a)} / {fmt_count(b)}"


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q4 section: findings, the checks, the shared-key table, the method."""
    params = result.params
    summary = summarize(result.samples, params)
    shared = summary["shared_key"]
    events = result.samples["messages"]["events"]
    checks = [
        {"label": "Events / messages sent / delivered",
         "value": f"{fmt_count(summary['events'])} / {fmt_count(summary['messages'])} / "
                  f"{fmt_count(summary['delivered'])}"},
        {"label": "Causally related pairs (from vector clocks of the log)",
         "value": fmt_count(summary["causal_pairs"])},
        {"label": "Clock-condition violations (a → b but C(a) ≥ C(b))",
         "value": fmt_count(summary["clock_condition_violations"])},
        {"label": "… of them send → receive", "value": fmt_count(summary["message_violations"])},
        {"label": "… of them in one process's order",
         "value": fmt_count(summary["process_order_violations"])},
        {"label": "Pairs of events / tied in the (C, id) order",
         "value": _pair(summary["event_pairs"], summary["total_order_ties"])},
        {"label": "Concurrent pairs / with equal clocks",
         "value": _pair(summary["concurrent_pairs"], summary["concurrent_equal_clock"])},
        {"label": "Concurrent pairs at distinct times / (C, id) against the time order",
         "value": _pair(summary["concurrent_timed"], summary["concurrent_against_real_time"])},
        {"label": "Highest clock", "value": fmt_count(summary["max_clock"])},
        {"label": "Sends with an unknown outcome / undelivered",
         "value": _pair(summary["unknown_sends"], summary["undelivered"])},
    ]
    rows = []
    for mode, label in (("naive", "read, max, +1, put (no transaction)"),
                        ("cas", "same, as a compare-and-swap transaction")):
        rows.append({
            "label": label,
            "acknowledged": fmt_count(shared[f"{mode}_acknowledged"]),
            "lost": fmt_count(shared[f"{mode}_lost_updates"]),
            "regressions": fmt_count(shared[f"{mode}_regressions"]),
            "duplicates": fmt_count(shared[f"{mode}_duplicate_clocks"]),
            "retries": fmt_count(shared["cas_retries"] if mode == "cas" else 0),
            "unknown": fmt_count(shared[f"{mode}_unknown"]),
        })
    times = [e["t"] for e in events if e.get("t") is not None]
    return {
        "findings": findings(summary, params),
        "run_vs_question": run_vs_question(params, ASKED),
        "checks": checks,
        "rows": rows,
        "order_example": _total_order_example(events),
        "chart": chart_files.get("diagram"),
        "processes": fmt_count(summary["processes"]),
        "steps": fmt_count(params.get("steps")),
        "send_probability": fmt_percent(params.get("send_probability"), 0),
        "think": fmt_ms(params.get("max_think_ms")),
        "shared_updates": fmt_count(params.get("shared_updates")),
        "span": fmt_seconds(max(times) if times else None),
        "diagram_events": fmt_count(min(DIAGRAM_EVENTS, len(events))),
    }
