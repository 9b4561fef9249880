"""Q7 ``ntp-isolation`` in the report: offset charts and section data from the samples."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.experiments.ntp_isolation import RUNS, sample_points, summarize_run
from etcdlab.results import Result
from etcdlab.units import MISSING, fmt_bool, fmt_count, fmt_ms, fmt_ppm, fmt_seconds

LABELS = {"iburst": "with iburst", "no_iburst": "without iburst"}


def _runs(result: Result) -> dict[str, dict[str, Any]]:
    """Each run's figures, recomputed from its readings."""
    return {mode: summarize_run(result.samples["runs"][mode], result.params)
            for mode in RUNS if mode in result.samples.get("runs", {})}


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
        samples[LABELS[mode]] = ([p["t"] - cut for p in points],
                                 [p["clock_error_ms"] for p in points])
        rows = [r for r in run["rows"] if r["phase"] != "settle"
                and r["system_time_s"] is not None]
        at_cut = min(rows, key=lambda r: abs(r["t"] - cut)) if rows else None
        if at_cut:
            wander[LABELS[mode]] = (
                [r["t"] - cut for r in rows],
                [-(r["system_time_s"] - at_cut["system_time_s"]) * 1e3 for r in rows])
    files = {}
    if samples:
        files["offset"] = plots.time_series(
            out_dir / "ntp_isolation_offset.png", samples,
            "Client clock error at each NTP sample (chrony's corrected clock)",
            "seconds since NTP was cut", "local − server (ms)",
            spans={"NTP cut": (0.0, isolation)})
    if wander:
        files["wander"] = plots.time_series(
            out_dir / "ntp_isolation_system_time.png", wander,
            "Drift of the uncorrected (faked) clock, as chrony's System time tracks it",
            "seconds since NTP was cut", "change since the cut (ms)",
            spans={"NTP cut": (0.0, isolation)})
    return files


def _iburst_sentence(runs: Mapping[str, Mapping[str, Any]], minpoll: int) -> tuple[str, bool]:
    """Whether iburst shortened the resynchronisation after the isolation."""
    with_burst, without = runs["iburst"]["resync_s"], runs["no_iburst"]["resync_s"]
    poll = 2.0 ** minpoll
    if with_burst is None or without is None:
        return "One of the runs did not resynchronise within the time allowed.", False
    helps = without - with_burst > poll / 2
    start = (f"At start, iburst did what chrony's documentation says: the server was first "
             f"selected {fmt_seconds(runs['iburst']['startup_sync_s'])} after chronyd started "
             f"with it, {fmt_seconds(runs['no_iburst']['startup_sync_s'])} without it.")
    if helps:
        return (f"After the isolation the server was selected again with a good sample "
                f"{fmt_seconds(with_burst)} after reconnection with iburst and "
                f"{fmt_seconds(without)} without: iburst helped here. {start}"), True
    return (f"After the isolation the server was selected again with a good sample "
            f"{fmt_seconds(with_burst)} after reconnection with iburst and "
            f"{fmt_seconds(without)} without: iburst made no difference, because chronyd "
            "bursts at start and on `chronyc online`, not when packets simply flow again; "
            f"the wait is the rest of the current polling interval. {start}"), False


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q7 section: answer, table, makestep and driftfile, comparison, method."""
    params, summary = result.params, result.summary
    runs = _runs(result)
    samples = result.samples
    first = runs.get("iburst") or next(iter(runs.values()))
    drift, isolation = params["drift_ppm"], params["isolation_s"]
    uncorrected_ms = drift * 1e-6 * isolation * 1e3
    change = first["offset_at_reconnect_ms"]
    answer = [
        f"Cut off from its server for {fmt_seconds(first['isolation_s'])}, the client whose "
        f"clock ran {fmt_ppm(drift)} fast came back within "
        f"{fmt_ms(abs(change) if change is not None else None)} "
        f"of the server: the first sample after reconnection differed from the last one "
        f"before by {fmt_ms(first['offset_at_reconnect_ms'])}, because chronyd kept correcting "
        f"its time with the frequency it had estimated ({fmt_ppm(first['frequency_ppm_at_cut'])})"
        f". Left uncorrected the clock would have wandered {fmt_ms(uncorrected_ms)} "
        f"(drift × T); chrony's own System time moved {fmt_ms(first['system_time_change_ms'])} "
        "over the isolation.",
    ]
    if "iburst" in runs and "no_iburst" in runs:
        sentence, _helps = _iburst_sentence(runs, params["minpoll"])
        answer.append(sentence)
    answer.append(f"The driftfile held {fmt_ppm(first['driftfile_ppm'])} after the run, for "
                  f"an injected {fmt_ppm(drift)}: a restarted chronyd starts from that "
                  "frequency instead of zero.")
    rows = []
    for mode, figures in runs.items():
        rows.append({
            "label": LABELS[mode],
            "startup": fmt_seconds(figures["startup_sync_s"]),
            "settle": fmt_seconds(figures["settle_s"]),
            "frequency": fmt_ppm(figures["frequency_ppm_at_cut"]),
            "poll": fmt_seconds(2.0 ** figures["poll_at_cut"])
            if figures["poll_at_cut"] is not None else MISSING,
            "isolation": fmt_seconds(figures["isolation_s"]),
            "before": fmt_ms(figures["offset_before_ms"]),
            "after": fmt_ms(figures["offset_after_ms"]),
            "change": fmt_ms(figures["offset_at_reconnect_ms"]),
            "system": fmt_ms(figures["system_time_change_ms"]),
            "reach": f"{figures['reach_at_reconnect']:o}"
            if figures["reach_at_reconnect"] is not None else MISSING,
            "selected": fmt_bool(figures["selected_while_isolated"]),
            "resync": fmt_seconds(figures["resync_s"]),
            "driftfile": fmt_ppm(figures["driftfile_ppm"]),
        })
    any_run = next(iter(samples["runs"].values()))
    makestep_lines = [line for line in any_run.get("log", [])
                      if "wrong by" in line or "step" in line][:4]
    return {
        "answer": answer,
        "rows": rows,
        "chart_offset": chart_files.get("offset"),
        "chart_wander": chart_files.get("wander"),
        "client": samples["client"],
        "server": samples["server"],
        "drift": fmt_ppm(drift),
        "faketime_offset": fmt_seconds(samples["faketime_offset_s"]),
        "isolation": fmt_seconds(isolation),
        "uncorrected": fmt_ms(uncorrected_ms),
        "minpoll": params["minpoll"], "maxpoll": params["maxpoll"],
        "poll_range": f"{fmt_seconds(2.0 ** params['minpoll'])} – "
                      f"{fmt_seconds(2.0 ** params['maxpoll'])}",
        "conf": any_run.get("conf", []),
        "makestep_attempts": fmt_count(first["makestep_attempts"]),
        "step_refused": fmt_count(first["step_refused"]),
        "makestep_lines": makestep_lines,
        "driftfile": fmt_ppm(summary.get("driftfile_ppm")),
        "settle_offset": fmt_ms(params["settle_offset_ms"]),
        "settle_skew": fmt_ppm(params["settle_skew_ppm"]),
        "sample_interval": fmt_seconds(params["sample_interval_s"]),
    }
