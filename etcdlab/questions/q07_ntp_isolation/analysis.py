"""Analysis of Q7 ``ntp-isolation``: chrony's readings → summary and findings (pure).

Time scales. The client's chronyd runs with ``-x`` under libfaketime: it reads a faked
clock (an offset of seconds, a rate of ppm) and never changes it. It keeps its own
corrected time scale (the faked clock plus the offset and frequency corrections it has
estimated); its NTP samples ("Offset" in ``chronyc ntpdata``) compare that time scale
with the server. How far the uncorrected clock is from it is "System time" in
``chronyc tracking`` (negative when the clock is fast). Offsets here are local − server.

Precision. ``chronyc sources`` gives a sample's age ("LastRx") in whole seconds, so the
time a sample arrived is known to ±1 s; settle and first-selection times come from
readings taken every ``sample_interval_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from etcdlab.figures.clocks import faked_offset_piecewise
from etcdlab.figures.units import (
    MISSING,
    fmt_count,
    fmt_ms,
    fmt_ppm,
    fmt_seconds,
    fmt_whole_seconds,
    fmt_within,
)
from etcdlab.questions.findings import (
    Asked,
    Finding,
    claim,
    comparison,
    name_all,
    named,
    untestable,
)

RUNS = ("iburst", "no_iburst")
LABELS = {"iburst": "with iburst", "no_iburst": "without iburst"}
# The holdover parts: each run's own, and the one repeated with `burst` on the client
# without iburst.
HOLDOVER_LABELS = {**LABELS, "burst": "with burst (no iburst, same client)"}
# Samples counted in this window after the reconnection (a burst sends up to four requests
# at most 2 s apart).
EARLY_WINDOW_S = 10.0
LASTRX_RESOLUTION_S = 1.0  # chronyc reports a sample's age in whole seconds
MAKESTEP_THRESHOLD_S = 1.0  # `makestep 1.0 3` in the role's chrony.conf
# chrony.conf(5), iburst: "the interval between the first four requests sent to the
# server will be 2 seconds or less instead of the interval specified by the minpoll option".
IBURST_INTERVAL_S = 2.0
# Over the cut chronyd's time scale counts as corrected when it moved less than this share
# of what the uncorrected (faked) clock moved against it.
CORRECTED_SHARE = 0.1
# After a rate excursion while cut off, chronyd's time counts as corrected again once its
# error is below this share of the error the excursion would build (rate × length).
HOLDOVER_CORRECTED_SHARE = 0.1

ASKED = (Asked("isolation_s", 300.0, "NTP cut off for", fmt_seconds),)


def sample_points(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The distinct NTP samples seen in the readings, each once, at the time it arrived.

    A new sample is a reading whose valid-sample count rose; its arrival is the reading's
    time minus the source's "LastRx" age. ``clock_error_ms`` is local minus server, in
    chronyd's own time scale.
    """
    points = []
    previous = None
    for row in rows:
        count = row.get("valid_rx")
        if count is None or row.get("sample_offset_s") is None:
            continue
        if previous is None or count > previous:
            age = row.get("last_rx_s") or 0
            points.append({"t": row["t"] - age, "clock_error_ms": -row["sample_offset_s"] * 1e3,
                           "valid_rx": count, "phase": row["phase"]})
        previous = count
    return points


def returned(
    rows: Sequence[Mapping[str, Any]], reconnected: float,
    points: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The first NTP sample that arrived after ``reconnected``, and the first reading with
    the server selected on it (None, None until both were seen).

    A sample counts by its arrival (reading time minus "LastRx"): a reading whose count of
    valid samples rose while "LastRx" kept growing holds a sample chronyd did not accept.
    The experiment waits for this same event, so it never stops before the analysis sees
    a return.
    """
    points = sample_points(rows) if points is None else points
    first_after = next((p for p in points if p["t"] >= reconnected), None)
    if first_after is None:
        return None, None
    # Selection is decided when a sample arrives: the sample that brought it back.
    selected_again = next((r for r in rows if r["t"] >= reconnected and r["selected"]
                           and r["valid_rx"] is not None
                           and r["valid_rx"] >= first_after["valid_rx"]), None)
    return first_after, selected_again


def true_error_s(run: Mapping[str, Any], row: Mapping[str, Any]) -> float | None:
    """How far chronyd's own time scale was from true time (this machine's) at a reading,
    in seconds, local − true: the faked clock's known lead (libfaketime's offset and rate,
    with every rate change of ``rate_changes``) plus chrony's "System time" (its estimate
    of the clock's error, negative when fast). None without the clock's record or a
    reading of System time."""
    clock = run.get("clock")
    if not clock or row.get("system_time_s") is None:
        return None
    changes = [(c["at"], c["rate"]) for c in run.get("rate_changes") or []]
    return faked_offset_piecewise(clock["offset_s"], clock["rate"], run["chronyd_started_at"],
                                  row["t"], changes) + row["system_time_s"]


def holdover_threshold_ms(extra_ppm: float, length_s: float) -> float:
    """The error below which chronyd counts as corrected after a rate excursion of
    ``extra_ppm`` for ``length_s``: :data:`HOLDOVER_CORRECTED_SHARE` of what it builds."""
    return abs(extra_ppm) * 1e-6 * length_s * 1e3 * HOLDOVER_CORRECTED_SHARE


CURVE_BEFORE_S = 5.0
"""How long before the cut the holdover chart starts (when chronyd had settled by then)."""


def holdover(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The rate excursion while cut off (``rate_changes``: away at the cut, back at the
    reconnection): chronyd's true error through it (ms, per reading), its slope while cut
    off (least squares, ppm), the error at the end of the excursion, the excursion times
    its length (the error a clock that kept its old frequency would have), and the time
    from the reconnection until the error was below :func:`holdover_threshold_ms`."""
    changes = run.get("rate_changes") or []
    if len(changes) < 2 or not run.get("clock"):
        return None
    away, back = changes[0]["at"], changes[1]["at"]
    extra_ppm = (changes[0]["rate"] - run["clock"]["rate"]) * 1e6
    curve = [(r["t"], err) for r in run["rows"] if (err := true_error_s(run, r)) is not None]
    during = [(t, e) for t, e in curve if away <= t <= back]
    slope = None
    if len(during) >= 3:
        mean_t = sum(t for t, _ in during) / len(during)
        mean_e = sum(e for _, e in during) / len(during)
        var = sum((t - mean_t) ** 2 for t, _ in during)
        slope = (sum((t - mean_t) * (e - mean_e) for t, e in during) / var * 1e6
                 if var else None)
    at_away = _last(e for t, e in curve if t <= away)
    threshold = holdover_threshold_ms(extra_ppm, back - away)
    corrected = next((t - run["reconnected_at"] for t, e in curve
                      if t > run["reconnected_at"] and abs(e) * 1e3 < threshold), None)
    # The chart starts up to CURVE_BEFORE_S before the cut, but not before chronyd settled:
    # until its first clock update its "System time" is 0, so the faked clock's whole lead
    # would be drawn as its error (seen at 0.5-1 s polls, where it settles within seconds).
    drawn_from = max(away - CURVE_BEFORE_S, run.get("settled_at") or 0.0)
    after = [p["t"] - run["reconnected_at"] for p in sample_points(run["rows"])
             if p["t"] > run["reconnected_at"]]
    polls = [r["poll"] for r in run["rows"] if r["t"] <= away and r.get("poll") is not None]
    return {
        "burst": bool(run.get("burst")),
        "poll_at_cut": polls[-1] if polls else None,
        "first_sample_after_s": after[0] if after else None,
        "samples_early": sum(1 for t in after if t <= EARLY_WINDOW_S),
        "extra_ppm": extra_ppm,
        "length_s": back - away,
        "expected_ms": extra_ppm * 1e-6 * (back - away) * 1e3,
        "slope_ppm": slope,
        "error_at_cut_ms": None if at_away is None else at_away * 1e3,
        "error_at_reconnect_ms": (None if not during else during[-1][1] * 1e3),
        "max_error_ms": max((abs(e) * 1e3 for t, e in curve if t >= away), default=None),
        "corrected_s": corrected,
        "threshold_ms": threshold,
        "curve": [{"t": round(t - away, 3), "error_ms": round(e * 1e3, 6)} for t, e in curve
                  if t >= drawn_from],
    }


def _last(rows: Iterable[Any]) -> Any:
    items = list(rows)
    return items[-1] if items else None


def summarize_run(run: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of one run, from its readings only."""
    rows = run["rows"]
    cut, reconnected = run["cut_at"], run["reconnected_at"]
    points = sample_points(rows)
    before = [p for p in points if p["t"] < cut]
    last_before = before[-1] if before else None
    first_after, selected_again = returned(rows, reconnected, points)
    first_sync = next((r for r in rows if r["selected"]), None)
    at_cut = _last(r for r in rows if r["t"] <= cut)
    at_reconnect = _last(r for r in rows if r["t"] <= reconnected)
    # A reading that failed (no chronyc output: ``state`` None) says nothing of selection.
    isolated = [r for r in rows if cut <= r["t"] <= reconnected and r.get("state") is not None]
    system_change = None
    if at_cut and at_reconnect and at_cut["system_time_s"] is not None \
            and at_reconnect["system_time_s"] is not None:
        # chrony's System time is negative when the clock is fast: the clock's own wander
        # is minus its change.
        system_change = -(at_reconnect["system_time_s"] - at_cut["system_time_s"]) * 1e3
    # iburst acts on the first requests after start: the mean spacing of the first four
    # samples (three intervals), each arrival known to ±1 s.
    first_four = [p for p in points if p["t"] >= run["chronyd_started_at"]][:4]
    log = run.get("log") or []
    return {
        "isolation_s": reconnected - cut,
        "startup_sync_s": first_sync["t"] - run["chronyd_started_at"] if first_sync else None,
        "settle_s": run["settled_at"] - run["chronyd_started_at"],
        "first_samples_interval_s": ((first_four[-1]["t"] - first_four[0]["t"]) / 3
                                     if len(first_four) == 4 else None),
        "offset_before_ms": last_before["clock_error_ms"] if last_before else None,
        "first_offset_after_ms": first_after["clock_error_ms"] if first_after else None,
        "offset_change_over_cut_ms": (first_after["clock_error_ms"]
                                      - last_before["clock_error_ms"]
                                      if first_after and last_before else None),
        "first_sample_after_s": first_after["t"] - reconnected if first_after else None,
        "resync_s": (selected_again["t"] - (selected_again["last_rx_s"] or 0) - reconnected
                     if selected_again else None),
        "system_time_change_ms": system_change,
        "system_time_at_reconnect_s": at_reconnect["system_time_s"] if at_reconnect else None,
        "frequency_ppm_at_cut": at_cut["frequency_ppm"] if at_cut else None,
        "skew_ppm_at_cut": at_cut["skew_ppm"] if at_cut else None,
        "poll_at_cut": at_cut["poll"] if at_cut else None,
        "reach_at_reconnect": at_reconnect["reach"] if at_reconnect else None,
        "selected_while_isolated": bool(isolated) and all(r["selected"] for r in isolated),
        "driftfile_ppm": (run.get("driftfile") or {}).get("frequency_ppm"),
        "samples": len(points),
        "makestep_attempts": sum("System clock wrong by" in line for line in log),
        "step_refused": sum("Could not step system clock" in line for line in log),
        "holdover": holdover(run["holdover_run"]) if run.get("holdover_run") else None,
        "settle_with_driftfile_s": (run["holdover_run"]["settled_at"]
                                    - run["holdover_run"]["chronyd_started_at"]
                                    if (run.get("holdover_run") or {}).get("settled_at")
                                    else None),
        **({"burst_holdover": holdover(run["burst_run"])} if run.get("burst_run") else {}),
    }


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Both runs' figures; the top-level figures are the iburst run's."""
    runs = {mode: summarize_run(samples["runs"][mode], params)
            for mode in RUNS if mode in samples.get("runs", {})}
    first = runs.get("iburst") or next(iter(runs.values()), {})
    return {
        "isolation_s": params["isolation_s"],
        "drift_ppm": params["drift_ppm"],
        "uncorrected_drift_ms": params["drift_ppm"] * 1e-6 * params["isolation_s"] * 1e3,
        "first_offset_after_ms": first.get("first_offset_after_ms"),
        "driftfile_ppm": first.get("driftfile_ppm"),
        **runs,
    }


# --- findings --------------------------------------------------------------------------------

def _runs(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {mode: summary[mode] for mode in RUNS if mode in summary}


def _per_run(runs: Mapping[str, Mapping[str, Any]], key: str, formatter: Any) -> str:
    """"with iburst 5.00 µs; without iburst 23.7 µs"."""
    return "; ".join(f"{LABELS[mode]} {formatter(figures.get(key))}"
                     for mode, figures in runs.items())


def poll_interval_s(figures: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    """chronyd's polling interval at the cut (2^poll), or at minpoll if it was not read."""
    poll = figures.get("poll_at_cut")
    return 2.0 ** (params["minpoll"] if poll is None else poll)


def _ahead(system_time_s: float) -> str:
    """chrony's System time (negative when the clock is fast) as "10.0 s ahead"."""
    return f"{fmt_seconds(abs(system_time_s))} {'ahead' if system_time_s < 0 else 'behind'}"


def _iburst_comparison(
    id: str, runs: Mapping[str, Mapping[str, Any]], key: str, what: str,
    threshold_s: float, formatter: Any,
) -> Finding:
    """Whether the iburst run reached ``what`` sooner, by more than ``threshold_s``."""
    with_burst = runs.get("iburst", {}).get(key)
    without = runs.get("no_iburst", {}).get(key)
    figures = {"with iburst": formatter(with_burst), "without iburst": formatter(without),
               "a difference that counts": f"more than {fmt_seconds(threshold_s)} "
                                           "(one polling interval; one run each)"}
    if with_burst is None or without is None:
        return untestable(id, f"Whether iburst made {what} sooner cannot be told: one of the "
                          "runs has no such time.", **figures)
    return claim(id, without - with_burst > threshold_s,
                 f"iburst made {what} sooner: {formatter(with_burst)} with it, "
                 f"{formatter(without)} without.",
                 f"iburst did not make {what} measurably sooner: {formatter(with_burst)} "
                 f"with it, {formatter(without)} without.", **figures)


def _iburst_return(runs: Mapping[str, Mapping[str, Any]],
                   params: Mapping[str, Any]) -> Finding:
    """Whether iburst made the return after the isolation sooner. iburst spaces the first
    requests IBURST_INTERVAL_S apart or less: when every client already polled that often
    at the cut, it cannot make the return sooner, and the run does not judge it. A
    difference counts beyond the slower client's polling interval plus both readings'
    whole-second resolution."""
    polls = {mode: poll_interval_s(r, params) for mode, r in runs.items()}
    slowest = max(polls.values())
    margin = slowest + 2 * LASTRX_RESOLUTION_S
    finding = _iburst_comparison("iburst-return", runs, "resync_s",
                                 "the return after the isolation", margin, fmt_whole_seconds)
    figures = {**finding.figures, "polling interval at the cut": _per_run(
        runs, "poll_at_cut", lambda v: fmt_seconds(2.0 ** (params["minpoll"] if v is None
                                                             else v)))}
    figures["a difference that counts"] = (
        f"more than {fmt_seconds(margin)} (the slower polling interval at the cut and two "
        "whole-second readings; one run each)")
    if len(polls) == 2 and slowest <= IBURST_INTERVAL_S:
        figures["iburst's spacing of its first requests"] = (
            f"{fmt_seconds(IBURST_INTERVAL_S)} or less")
        return claim(
            "iburst-return", None, finding.when_true, finding.when_false,
            f"Untestable here: both clients already polled every {fmt_seconds(slowest)} or "
            "faster at the cut, no slower than iburst, so iburst could not speed up the "
            "return.", **figures)
    return replace(finding, figures=figures)


def findings(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[Finding]:
    """The claims of Q7, answer first."""
    runs = _runs(summary)
    if not runs:
        return [untestable("first-offset", "The result holds no run to analyse.")]
    mode = "iburst" if "iburst" in runs else next(iter(runs))
    first = runs[mode]
    resolution = params["sample_interval_s"]
    settle_ms = params["settle_offset_ms"]
    isolation = fmt_seconds(first["isolation_s"])
    minpoll_s = 2.0 ** params["minpoll"]
    poll_s = poll_interval_s(first, params)
    drift = fmt_ppm(params["drift_ppm"])
    items: list[Finding] = []

    # The answer: where chronyd's time scale was at the first sample after reconnection.
    offsets = [r.get("first_offset_after_ms") for r in runs.values()]
    figures = {"first offset after reconnection (local − server)":
               _per_run(runs, "first_offset_after_ms", fmt_ms),
               "time scale": "chronyd's own corrected time (`chronyd -x`)"}
    if any(o is None for o in offsets):
        items.append(claim(
            "first-offset", False, "chronyd had a new sample after reconnection in every run.",
            f"After {isolation} cut off, chronyd had no new sample "
            f"from the server within {fmt_seconds(params['after_timeout_s'])} of reconnection "
            "in at least one run.", **figures))
    else:
        within = all(abs(o) < settle_ms for o in offsets)
        items.append(claim(
            "first-offset", within,
            f"After {isolation} cut off, chronyd's first sample after reconnection "
            f"({fmt_whole_seconds(first.get('resync_s'))} later, {LABELS[mode]}) put its "
            f"time scale {fmt_ms(offsets[0])} from the server's, within the "
            f"{fmt_ms(settle_ms)} counted as synchronised.",
            f"After {isolation} cut off, chronyd's first sample after reconnection "
            f"({fmt_whole_seconds(first.get('resync_s'))} later, {LABELS[mode]}) put its "
            f"time scale {fmt_ms(offsets[0])} from the server's, outside the "
            f"{fmt_ms(settle_ms)} counted as synchronised.", **figures))

    resyncs = [r.get("resync_s") for r in runs.values()]
    figures = {"first sample after reconnection": _per_run(runs, "resync_s", fmt_whole_seconds),
               "polling interval at the cut": fmt_seconds(poll_s)}
    if any(r is None for r in resyncs):
        items.append(claim("return-within-poll", False, "Every run had a new sample after "
                           "reconnection.", "In at least one run chronyd had "
                           "no new sample from the server within "
                           f"{fmt_seconds(params['after_timeout_s'])} of reconnection.",
                           **figures))
    else:
        items.append(claim(
            "return-within-poll", all(r <= poll_s + LASTRX_RESOLUTION_S for r in resyncs),
            f"The first sample came no later than one polling interval ({fmt_seconds(poll_s)}) "
            "after reconnection.",
            f"The first sample came later than one polling interval ({fmt_seconds(poll_s)}) "
            "after reconnection.", **figures))

    reach = first.get("reach_at_reconnect")
    items.append(claim(
        "stayed-selected", all(r["selected_while_isolated"] for r in runs.values()),
        f"The server stayed selected throughout the {isolation} cut: chronyd's reach register "
        "had not emptied by the reconnection.",
        f"chronyd stopped treating the server as selected during the {isolation} cut.",
        **{"reach at reconnection (octal, last 8 polls)": MISSING if reach is None
           else f"{reach:o}"}))

    items.append(_iburst_comparison(
        "iburst-first-selection", runs, "startup_sync_s",
        "chronyd select the server after start", minpoll_s,
        lambda s: fmt_within(s, resolution)))
    items.append(_iburst_comparison(
        "iburst-settle", runs, "settle_s", "chronyd settle after start", minpoll_s,
        lambda s: fmt_within(s, resolution)))
    items.append(_iburst_return(runs, params))

    changes = [(r.get("offset_change_over_cut_ms"), r.get("system_time_change_ms"))
               for r in runs.values()]
    figures = {"change of chronyd's offset over the cut (last sample before it to the "
               "first after)": _per_run(runs, "offset_change_over_cut_ms", fmt_ms),
               "the faked clock against chronyd's time scale (System time moved)": _per_run(
                   runs, "system_time_change_ms", fmt_ms),
               "frequency estimate at the cut": _per_run(runs, "frequency_ppm_at_cut", fmt_ppm),
               "injected": drift}
    if any(c is None or s is None for c, s in changes):
        items.append(untestable("corrected-during-cut", "Whether chronyd kept correcting its "
                                "time scale over the cut cannot be told: a run has no sample "
                                "before the cut or no System time.", **figures))
    else:
        change, moved = changes[0]
        items.append(claim(
            "corrected-during-cut",
            all(abs(c) < CORRECTED_SHARE * abs(s) for c, s in changes),
            f"Without the server chronyd went on correcting its time scale: the faked clock "
            f"moved {fmt_ms(moved)} against it over the cut, while its offset from the server "
            f"changed by only {fmt_ms(change)}.",
            f"Without the server chronyd's time scale moved with the faked clock: its offset "
            f"from the server changed by {fmt_ms(change)} over the cut, against "
            f"{fmt_ms(moved)} of the faked clock.", **figures))

    system = first.get("system_time_at_reconnect_s")
    figures = {"System time at reconnection": MISSING if system is None else _ahead(system),
               '"Could not step system clock" in the log': fmt_count(first["step_refused"])}
    if system is None:
        items.append(untestable("system-clock-uncorrected", "chronyc tracking gave no System "
                                "time at reconnection.", **figures))
    else:
        items.append(claim(
            "system-clock-uncorrected", abs(system) > MAKESTEP_THRESHOLD_S,
            f"The system clock itself was never corrected: it was still {_ahead(system)} of "
            "chronyd's time at reconnection.",
            f"The system clock was corrected: at reconnection it was {_ahead(system)} of "
            "chronyd's time.", **figures))

    drifts = [r.get("driftfile_ppm") for r in runs.values()]
    tolerance = params["settle_skew_ppm"]
    figures = {"driftfile": _per_run(runs, "driftfile_ppm", fmt_ppm), "injected": drift,
               "tolerance": fmt_ppm(tolerance)}
    driftfile_holds = (None if any(d is None for d in drifts) else
                       all(abs(d - params["drift_ppm"]) <= tolerance for d in drifts))
    items.append(claim(
        "driftfile-rate", driftfile_holds,
        f"When chronyd stopped, its driftfile held the injected rate ({drift}) to within "
        f"{fmt_ppm(tolerance)}.",
        f"When chronyd stopped, its driftfile was more than {fmt_ppm(tolerance)} from the "
        f"injected rate ({drift}).", "No driftfile was read after a run.", **figures))

    items.extend(_holdover(runs, params))
    items.extend(_comparisons(runs, params, items))
    return name_all(items, COURSE_NAMES)


# chronyd's error grew at the excursion's rate, to within this share of it (or 2 ppm).
HOLDOVER_SLOPE_SHARE = 0.1
HOLDOVER_SLOPE_FLOOR_PPM = 2.0


def _holdover(runs: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]
              ) -> list[Finding]:
    """The second part: chronyd restarted with its driftfile, then a rate excursion while
    cut off: how fast its error grew, how soon it was corrected, how soon it settled."""
    parts = {mode: r["holdover"] for mode, r in runs.items() if r.get("holdover")}
    burst = next((r["burst_holdover"] for r in runs.values() if r.get("burst_holdover")), None)
    if burst:
        parts["burst"] = burst
    if not parts:
        return [untestable("holdover-keeps-frequency",
                           "This run had no second part (a rate change while cut off).")]
    any_part = next(iter(parts.values()))
    extra, length = any_part["extra_ppm"], any_part["length_s"]
    slopes = {mode: h["slope_ppm"] for mode, h in parts.items()}
    tolerance = max(HOLDOVER_SLOPE_SHARE * abs(extra), HOLDOVER_SLOPE_FLOOR_PPM)
    follows = (None if any(v is None for v in slopes.values()) else
               all(abs(v - extra) <= tolerance for v in slopes.values()))
    figures = {
        "its error grew at (least squares, readings every "
        f"{fmt_seconds(params['sample_interval_s'])})":
            "; ".join(f"{HOLDOVER_LABELS[m]} {fmt_ppm(v)}" for m, v in slopes.items()),
        "its error at the reconnection": "; ".join(
            f"{HOLDOVER_LABELS[m]} {fmt_ms(h['error_at_reconnect_ms'])}"
            for m, h in parts.items()),
        "a clock that kept its old frequency": fmt_ms(any_part["expected_ms"]),
        "tolerance": fmt_ppm(tolerance),
    }
    found = [claim(
        "holdover-keeps-frequency", follows,
        "Cut off, with no source to notice the change, chronyd kept its learnt frequency: as "
        f"the clock ran {fmt_ppm(extra)} faster for {fmt_seconds(length)}, its error grew at "
        f"that rate, to about {fmt_ms(any_part['expected_ms'])} by the reconnection.",
        f"While the clock ran {fmt_ppm(extra)} faster, cut off, chronyd's error did not grow "
        f"at that rate (within {fmt_ppm(tolerance)}).", **figures)]
    corrected = {mode: h["corrected_s"] for mode, h in parts.items()}
    figures = {"below": fmt_ms(any_part["threshold_ms"]) + " (a tenth of the excursion's error)",
               **{HOLDOVER_LABELS[m]: (
                   fmt_within(v, params["sample_interval_s"]) if v is not None
                   else f"not within {fmt_seconds(params['after_timeout_s'])}")
                  for m, v in corrected.items()}}
    found.append(claim(
        "holdover-corrected", all(v is not None for v in corrected.values()),
        "Reconnected, chronyd brought that error back below a tenth of it: "
        + "; ".join(f"{HOLDOVER_LABELS[m]} after {fmt_seconds(v)}"
                    for m, v in corrected.items() if v is not None) + ".",
        "Reconnected, chronyd did not bring that error back below a tenth of it within "
        f"{fmt_seconds(params['after_timeout_s'])} in every run.", **figures))
    if "burst" in parts and "no_iburst" in parts:
        found.append(_burst_finding(parts["no_iburst"], parts["burst"], params))
    settles = {mode: (r.get("settle_s"), r.get("settle_with_driftfile_s"))
               for mode, r in runs.items() if r.get("holdover")}
    poll = 2.0 ** params["maxpoll"]
    figures = {LABELS[m]: f"{fmt_seconds(a)} without, {fmt_seconds(b)} with"
               for m, (a, b) in settles.items() if a is not None and b is not None}
    figures["a difference that counts"] = (f"more than {fmt_seconds(poll)} (one polling "
                                           "interval at maxpoll; one run each)")
    known = [(a, b) for a, b in settles.values() if a is not None and b is not None]
    sooner = [a - b > poll for a, b in known]
    # A client that settled within the margin without the driftfile cannot show a gain.
    can_show = [a > poll for a, _b in known]
    if not known:
        holds, why = None, "No restart with the driftfile settled in this run."
    elif all(sooner):
        holds, why = True, ""
    elif not any(sooner) and all(can_show):
        holds, why = False, ""
    elif not any(can_show):
        holds, why = None, (
            "Whether the driftfile speeds up settling cannot be tested in this run: without "
            "it every client settled within the margin of one polling interval at maxpoll "
            f"({fmt_seconds(poll)}), so no gain could count.")
    else:
        holds, why = None, (
            "The clients disagree: " + "; ".join(
                f"{LABELS[m]} {fmt_seconds(a)} → {fmt_seconds(b)}"
                for m, (a, b) in settles.items() if a is not None and b is not None)
            + f", against a margin of {fmt_seconds(poll)} (one polling interval at maxpoll; "
            "one run each), so the run cannot say whether the driftfile speeds up settling.")
    found.append(claim(
        "driftfile-settles-sooner", holds,
        "Restarted with the driftfile the first part left, chronyd settled sooner than it "
        "had without one (to the same offset and skew), on every client.",
        "Restarted with the driftfile the first part left, chronyd did not settle measurably "
        "sooner than without one (to the same offset and skew) on any client.",
        why, **figures))
    return found


def _burst_finding(plain: Mapping[str, Any], burst: Mapping[str, Any],
                   params: Mapping[str, Any]) -> Finding:
    """The same client's holdover without and with ``burst``: which corrected sooner, by
    more than one polling interval at the cut (where in its poll chronyd was at the
    reconnection alone can move the first sample by that much) plus one reading's spacing
    (each correction time is known to one reading); one run each."""
    step = params["sample_interval_s"]
    polls = [h.get("poll_at_cut") for h in (plain, burst)]
    poll = max(2.0 ** (params["minpoll"] if v is None else v) for v in polls)
    a, b = plain["corrected_s"], burst["corrected_s"]
    margin = poll + step  # and each correction time is known to one reading
    sooner = None if a is None or b is None else a - b > margin

    def first(h: Mapping[str, Any]) -> str:
        v = h.get("first_sample_after_s")
        return MISSING if v is None else fmt_within(v, LASTRX_RESOLUTION_S)

    figures = {
        "corrected after (without; with burst)": "; ".join(
            MISSING if v is None else fmt_within(v, step) for v in (a, b)),
        "first sample after the reconnection (without; with burst)":
            f"{first(plain)}; {first(burst)}",
        f"samples in the first {fmt_seconds(EARLY_WINDOW_S)} (without; with burst)":
            f"{fmt_count(plain.get('samples_early'))}; {fmt_count(burst.get('samples_early'))}",
        "a difference that counts": f"more than {fmt_seconds(margin)} (one polling interval "
                                    "at the cut and one reading's spacing; one run each)",
    }
    return claim(
        "burst-corrects-sooner", sooner,
        "On the client without iburst, the holdover repeated with `burst` was corrected "
        "sooner after the reconnection than without it.",
        "On the client without iburst, the holdover repeated with `burst` was not corrected "
        "measurably sooner after the reconnection than without it.",
        "One of the two holdovers was not corrected within the wait, so `burst` cannot be "
        "compared.", **figures)


def _comparisons(runs: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any],
                 measured: Sequence[Finding]) -> list[Finding]:
    """The course report's three claims and chrony's documentation, against the run."""
    found = {f.id: f for f in measured}
    first = runs.get("iburst") or next(iter(runs.values()))
    start = found["iburst-first-selection"]
    back = found["iburst-return"]
    start_note = ("; it did make the first selection after start sooner"
                  if start.holds else "")
    items = [named(comparison(
        "course-iburst", "course", back.holds,
        "As the course report says, iburst made the return after the isolation sooner.",
        "iburst did not make the return after the isolation measurably sooner, which the "
        f"course report credits it with{start_note}.",
        back.why_unknown, **back.figures),
        "iburst speeds the return", "sooner with iburst", "not measurably sooner",
        "both clients polled as often as iburst" if "polled every" in back.why_unknown
        else "a run has no return time")]

    refused = first["step_refused"]
    offset = first.get("first_offset_after_ms")
    why = []
    step_figures: dict[str, str] = {}
    if refused:
        why.append("chronyd runs with `-x` and may not step the clock")
        step_figures['"Could not step system clock" logged at start'] = (
            f"{fmt_count(refused)} times")
    if offset is not None and abs(offset) < MAKESTEP_THRESHOLD_S * 1e3:
        why.append("the offset after reconnection was below makestep's "
                   f"{fmt_seconds(MAKESTEP_THRESHOLD_S)}")
        step_figures["first offset after reconnection (local − server)"] = fmt_ms(offset)
        step_figures["makestep's threshold"] = fmt_seconds(MAKESTEP_THRESHOLD_S)
    items.append(comparison(
        "course-makestep", "course", None,
        "As the course report says, makestep set the clock at once after the isolation.",
        "makestep did not set the clock at once after the isolation, as the course report "
        "says it would.",
        "Not tested here: " + (", and ".join(why) or "makestep had no offset over "
                               f"{fmt_seconds(MAKESTEP_THRESHOLD_S)} to act on") + ".",
        **step_figures))

    # The course credits the driftfile with a faster convergence: the verdict rests on the
    # restart with it (driftfile-settles-sooner), not on the rate it recorded.
    drift = found["driftfile-rate"]
    restart = found.get("driftfile-settles-sooner")
    recorded = ("it recorded the drift rate" if drift.holds else
                "it did not record the drift rate" if drift.holds is False else
                "no driftfile was read")
    holds = None if restart is None else restart.holds
    unknown = (restart.why_unknown if restart is not None and restart.why_unknown else
               "No run restarted with the driftfile, so whether it speeds up convergence is "
               "not measured here")
    items.append(named(comparison(
        "course-driftfile", "course", holds,
        f"As the course report says, restarted with the driftfile chronyd settled sooner than "
        f"without it ({recorded}).",
        f"Restarted with the driftfile, chronyd did not settle measurably sooner than without "
        f"it, which the course report credits it with ({recorded}).",
        f"{unknown.rstrip('.')} ({recorded}).",
        **(dict(restart.figures) if restart is not None else {}), **drift.figures),
        "driftfile speeds convergence", "settled sooner on restart",
        "not measurably sooner on restart", "not measurable with these settle times"
        if restart is not None and "margin" in restart.why_unknown else "no restart measured"))

    spacing = runs.get("iburst", {}).get("first_samples_interval_s")
    margin = LASTRX_RESOLUTION_S / 3
    items.append(comparison(
        "published-iburst", "published",
        None if spacing is None else spacing <= IBURST_INTERVAL_S + margin,
        f"As chrony's documentation says, with iburst the first four requests came "
        f"{fmt_seconds(IBURST_INTERVAL_S)} apart or less.",
        f"With iburst the first four requests came more than {fmt_seconds(IBURST_INTERVAL_S)} "
        "apart, unlike what chrony's documentation says.",
        "The iburst run has fewer than four samples after start.",
        **{"mean spacing of the first four samples": _per_run(
            runs, "first_samples_interval_s", lambda s: fmt_within(s, margin))}))

    uncorrected = found["system-clock-uncorrected"]
    items.append(comparison(
        "published-x", "published", uncorrected.holds,
        "As chronyd's documentation of `-x` says, chronyd left the system clock alone and "
        "tracked its offset and frequency itself.",
        "Unlike chronyd's documentation of `-x`, the system clock was adjusted.",
        uncorrected.why_unknown, **uncorrected.figures,
        **{"frequency estimate at the cut": _per_run(runs, "frequency_ppm_at_cut", fmt_ppm)}))
    return items


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course-makestep": ("makestep sets the clock", "", "", "chronyd may not step it here"),
}
