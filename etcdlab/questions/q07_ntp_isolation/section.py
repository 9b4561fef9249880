"""Q7 ``ntp-isolation`` in the report: offset charts, findings and tables from the samples."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import (
    MISSING,
    fmt_bool,
    fmt_ms,
    fmt_ppm,
    fmt_seconds,
    fmt_whole_seconds,
    fmt_within,
)
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q07_ntp_isolation.analysis import (
    ASKED,
    HOLDOVER_LABELS,
    LABELS,
    RUNS,
    findings,
    poll_interval_s,
    sample_points,
    summarize,
)
from etcdlab.report import charts as plots
from etcdlab.results import Result


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """The clock's error at each NTP sample, and chrony's System time, around the cut."""
    samples: dict[str, tuple[list[float], list[float]]] = {}
    wander: dict[str, tuple[list[float], list[float]]] = {}
    isolation = 0.0
    for mode in RUNS:
        run = result.samples.get("runs", {}).get(mode)
        if run is None:
            continue
        cut = run["cut_at"]
        isolation = run["reconnected_at"] - cut
        points = [p for p in sample_points(run["rows"]) if p["phase"] != "settle"]
        # No NTP sample arrives while NTP is cut: a gap (NaN) keeps the line from being
        # drawn across the window as if chronyd had measured something there.
        before = [p for p in points if p["t"] < run["reconnected_at"]]
        after = [p for p in points if p["t"] >= run["reconnected_at"]]
        gap = [((before[-1]["t"] + after[0]["t"]) / 2 - cut, math.nan)] if before and after \
            else []
        pairs = [(p["t"] - cut, p["clock_error_ms"]) for p in before] + gap + \
            [(p["t"] - cut, p["clock_error_ms"]) for p in after]
        samples[LABELS[mode]] = ([x for x, _ in pairs], [y for _, y in pairs])
        rows = [r for r in run["rows"] if r["phase"] != "settle"
                and r["system_time_s"] is not None]
        at_cut = min(rows, key=lambda r: abs(r["t"] - cut)) if rows else None
        if at_cut:
            wander[LABELS[mode]] = (
                [r["t"] - cut for r in rows],
                [-(r["system_time_s"] - at_cut["system_time_s"]) * 1e3 for r in rows])
    holdover: dict[str, tuple[list[float], list[float]]] = {}
    length = 0.0
    summary = summarize(result.samples, result.params)
    for mode in RUNS:
        for key, label in (("holdover", LABELS[mode]),
                           ("burst_holdover", HOLDOVER_LABELS["burst"])):
            part = (summary.get(mode) or {}).get(key)
            if part:
                if key == "holdover":  # the span drawn is the runs' own cut
                    length = part["length_s"]
                holdover[label] = ([c["t"] for c in part["curve"]],
                                   [c["error_ms"] for c in part["curve"]])
    cut = "seconds since NTP was cut"
    plotted = (
        ("offset", "ntp_isolation_offset.png", samples,
         "Offset from the server at each NTP sample (chronyd's own time scale)", cut,
         "local − server (ms)", {"NTP cut": (0.0, isolation)}),
        ("wander", "ntp_isolation_system_time.png", wander,
         "The faked (uncorrected) clock against chronyd's time scale (System time)", cut,
         "change since the cut (ms)", {"NTP cut": (0.0, isolation)}),
        ("holdover", "ntp_isolation_holdover.png", holdover,
         "chronyd's true error through a rate change while cut off (second part)",
         f"{cut} (and the clock sped up)", "local − true (ms)",
         {"NTP cut, clock faster": (0.0, length)}),
    )
    return {key: plots.time_series(out_dir / file, series, title, xlabel, ylabel, spans=spans)
            for key, file, series, title, xlabel, ylabel, spans in plotted if series}


def _octal(value: int | None) -> str:
    return MISSING if value is None else f"{value:o}"


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q7 section: findings, tables, chrony.conf and log lines, method values."""
    params, samples = result.params, result.samples
    summary = summarize(samples, params)
    runs = {mode: summary[mode] for mode in RUNS if mode in summary}
    resolution = params["sample_interval_s"]
    rows, details = [], []
    for mode, figures in runs.items():
        rows.append({
            "label": LABELS[mode],
            "startup": fmt_within(figures["startup_sync_s"], resolution),
            "settle": fmt_within(figures["settle_s"], resolution),
            "resync": fmt_whole_seconds(figures["resync_s"]),
            "first_offset": fmt_ms(figures["first_offset_after_ms"]),
            "change": fmt_ms(figures["offset_change_over_cut_ms"]),
            "driftfile": fmt_ppm(figures["driftfile_ppm"]),
        })
        system = figures["system_time_at_reconnect_s"]
        details.append({
            "label": LABELS[mode],
            "isolation": fmt_seconds(figures["isolation_s"]),
            "frequency": fmt_ppm(figures["frequency_ppm_at_cut"]),
            "poll": fmt_seconds(poll_interval_s(figures, params)),
            "before": fmt_ms(figures["offset_before_ms"]),
            "system_moved": fmt_ms(figures["system_time_change_ms"]),
            "system": MISSING if system is None else fmt_seconds(-system),
            "reach": _octal(figures["reach_at_reconnect"]),
            "selected": fmt_bool(figures["selected_while_isolated"]),
        })
    any_run = next(iter(samples["runs"].values()))
    makestep_lines = [line for line in any_run.get("log", [])
                      if "wrong by" in line or "step" in line][:4]
    role_poll = (result.metadata.get("chrony_minpoll"), result.metadata.get("chrony_maxpoll"))
    return {
        "findings": findings(summary, params),
        "run_vs_question": run_vs_question(params, ASKED),
        "rows": rows,
        "details": details,
        "chart_offset": chart_files.get("offset"),
        "chart_wander": chart_files.get("wander"),
        "chart_holdover": chart_files.get("holdover"),
        # runs that record their clock read its spec from a file (older ones from FAKETIME)
        "spec_file": any("clock" in run for run in samples["runs"].values()),
        "holdover_drift": fmt_ppm(params.get("holdover_drift_ppm")),
        "holdover_isolation": fmt_seconds(params.get("holdover_isolation_s")),
        "holdover": any(figures.get("holdover") for figures in runs.values()),
        "burst": any(figures.get("burst_holdover") for figures in runs.values()),
        # chrony.conf(5): a burst of k requests needs the interval ≥ k × minpoll, up to 4
        "burst_requests": str(min(4, 2 ** max(0, params["maxpoll"] - params["minpoll"]))),
        "client": samples["client"],
        # Older results ran both series one after the other on samples["client"].
        "at_once": bool(samples.get("at_once")),
        "clients": " and ".join(f"{run.get('client', samples['client'])} ({LABELS[mode]})"
                                for mode, run in samples["runs"].items() if mode in LABELS),
        "server": samples["server"],
        "drift": fmt_ppm(params["drift_ppm"]),
        "faketime_offset": fmt_seconds(samples["faketime_offset_s"]),
        "isolation": fmt_seconds(params["isolation_s"]),
        "uncorrected": fmt_ms(summary["uncorrected_drift_ms"]),
        "minpoll": params["minpoll"], "maxpoll": params["maxpoll"],
        "poll_range": f"{fmt_seconds(2.0 ** params['minpoll'])} – "
                      f"{fmt_seconds(2.0 ** params['maxpoll'])}",
        "role_poll": (f"{role_poll[0]}/{role_poll[1]}"
                      if None not in role_poll
                      and role_poll != (params["minpoll"], params["maxpoll"]) else ""),
        "conf": any_run.get("conf", []),
        "makestep_lines": makestep_lines,
        "settle_offset": fmt_ms(params["settle_offset_ms"]),
        "settle_skew": fmt_ppm(params["settle_skew_ppm"]),
        "sample_interval": fmt_seconds(params["sample_interval_s"]),
        "after_timeout": fmt_seconds(params["after_timeout_s"]),
    }
