"""Q1 ``election`` in the report: chart and section data from the saved samples."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.results import Result
from etcdlab.sections.common import (
    election_timeout_lines,
    intervals_overlap,
    metadata_text,
    range_text,
    values,
)
from etcdlab.stats import summarize
from etcdlab.units import (
    MISSING,
    fmt_bool,
    fmt_count,
    fmt_factor,
    fmt_ms,
    fmt_seconds,
)

ETCD_DEFAULT_HEARTBEAT_MS = 100
ETCD_DEFAULT_ELECTION_TIMEOUT_MS = 1000
# The course report's only figure for Q1: "lost TCP streaming connection" at 23:35:43.146,
# "elected leader" at 23:35:44.921 in its log excerpt (one observation, from the lost
# connection, not from the crash).
COURSE_REPORT_ELECTION_S = 1.775  # 23:35:44.921 - 23:35:43.146


def _election_series(result: Result) -> dict[str, dict[str, list[float]]]:
    """Elected / first-write / log times per series ("crash", "graceful") from the samples."""
    series = {}
    for name in ("crash", "graceful"):
        rows = result.samples.get(name, [])
        series[name] = {
            "elected": values(rows, "elected_s"),
            "first_write": values(rows, "first_write_s"),
            "log": values(rows, "log_elected_s"),
        }
    return series


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Strip plot of the time to a new leader and to the first write, crash vs graceful."""
    series = _election_series(result)
    if not any(values for times in series.values() for values in times.values()):
        return {}
    name = plots.strip_plot(
        out_dir / "election.png",
        {
            "crash\nnew leader": series["crash"]["elected"],
            "crash\nfirst write": series["crash"]["first_write"],
            "graceful\nnew leader": series["graceful"]["elected"],
            "graceful\nfirst write": series["graceful"]["first_write"],
        },
        "Time from stopping the leader to a new leader and to the first write",
        "seconds after SIGKILL / SIGTERM",
        reference_lines=election_timeout_lines(result),
    )
    return {"times": name}


def _election_row(label: str, times: Mapping[str, list[float]]) -> dict[str, str] | None:
    """One table row for a series, or None when the series has no samples."""
    if not times["elected"]:
        return None
    elected = summarize(times["elected"])
    first_write = summarize(times["first_write"]) if times["first_write"] else None
    log = summarize(times["log"]) if times["log"] else None
    return {
        "label": label,
        "n": fmt_count(elected["n"]),
        "median": fmt_seconds(elected["median"]),
        "median_ci": range_text(elected["median_ci_low"], elected["median_ci_high"], fmt_seconds),
        "mean": fmt_seconds(elected["mean"]),
        "p95": fmt_seconds(elected["p95"]),
        "range": range_text(elected["min"], elected["max"], fmt_seconds),
        "stdev": fmt_seconds(elected["stdev"]),
        "first_write": fmt_seconds(first_write["median"]) if first_write else MISSING,
        "log": fmt_seconds(log["median"]) if log else MISSING,
    }


def _window_phrase(median_s: float, timeout_ms: float) -> str:
    """Place a median relative to the [T, 2T) window of etcd's randomised election timeout."""
    window = f"{fmt_ms(timeout_ms)}–{fmt_ms(2 * timeout_ms)}"
    if median_s * 1000 < timeout_ms:
        return (f"below the {window} window of etcd's randomised election timeout, "
                "which no follower should beat after a crash; check the measurement")
    if median_s * 1000 < 2 * timeout_ms:
        return (f"inside the {window} window in which etcd's randomised election timeout "
                "fires, so the timeout itself accounts for most of it")
    return (f"above the {window} window of etcd's randomised election timeout, so more "
            "than one election round (a split vote) or slow detection added time")


def _graceful_sentence(crash: Mapping[str, Any], graceful: Mapping[str, Any]) -> str:
    """Compare the graceful series with the crash series, with the uncertainty."""
    overlap = intervals_overlap(crash, graceful)
    if overlap is None:
        certainty = "too few trials for confidence intervals of the medians"
    elif overlap:
        certainty = "their 95 % confidence intervals overlap, so this run cannot tell them apart"
    else:
        certainty = "their 95 % confidence intervals do not overlap"
    if graceful["median"] < crash["median"]:
        factor = fmt_factor(crash["median"] / graceful["median"]) if graceful["median"] else "far"
        return (f"A graceful stop (SIGTERM) was faster: median {fmt_seconds(graceful['median'])}, "
                f"{factor} less than after a crash ({certainty}), as expected when the leader "
                "hands over leadership before it exits instead of leaving the followers to "
                "wait for their election timeout.")
    return (f"A graceful stop (SIGTERM) was not faster: median "
            f"{fmt_seconds(graceful['median'])} against {fmt_seconds(crash['median'])} after "
            f"a crash ({certainty}). That contradicts etcd 3.5's leadership transfer on "
            "SIGTERM; check which signal the graceful series sent and the etcd log.")


def _consistency(result: Result) -> tuple[bool | None, str]:
    """Whether every member held the same revision and KV hash after each series."""
    checks = result.samples.get("consistency", [])
    if not checks:
        return None, "The members' data was not compared after the series."
    diverged = [check for check in checks if not check["consistent"]]
    series = ", ".join(str(check["series"]) for check in checks)
    if not diverged:
        return True, (f"After each series ({series}) every member reported the same revision "
                      "and KV hash: the crashes did not make any member diverge.")
    details = "; ".join(
        f"after {check['series']}: "
        + ", ".join(f"{m['name']} rev {m['revision']} hash {m['hash']}" for m in check["members"])
        for check in diverged
    )
    return False, f"Members DIVERGED ({details})."


def _term_phrase(rows: Sequence[Mapping[str, Any]]) -> str:
    """How often the Raft term rose by exactly one across crash trials."""
    jumps = [row["term_after"] - row["term_before"] for row in rows
             if row.get("term_after") is not None and row.get("term_before") is not None]
    if not jumps:
        return "The Raft terms were not recorded."
    single = sum(1 for jump in jumps if jump == 1)
    text = f"The Raft term rose by exactly one in {fmt_count(single)} of {fmt_count(len(jumps))}"
    if single == len(jumps):
        return text + " crash trials: every new leader won its first election round."
    return (text + f" crash trials (largest jump {fmt_count(max(jumps))}); a larger jump means "
            "more than one election round, e.g. a split vote.")


def _detection_phrase(rows: Sequence[Mapping[str, Any]]) -> str:
    """Median lag between etcd logging the election and the client-side poll seeing it."""
    lags = [row["elected_s"] - row["log_elected_s"] for row in rows
            if row.get("elected_s") is not None and row.get("log_elected_s") is not None]
    if not lags:
        return "etcd's log gave no election timestamps to compare with the polling."
    lag = statistics.median(lags)
    when = "after" if lag >= 0 else "before"
    return (f"The polling client saw the new leader a median of {fmt_seconds(abs(lag))} {when} "
            f"etcd logged \"elected leader\" (n = {fmt_count(len(lags))}).")


def _course_report_election(crash: Mapping[str, Any] | None) -> str:
    """Confront the course report's single log-based figure with the crash series."""
    observed = fmt_seconds(COURSE_REPORT_ELECTION_S)
    text = (f"The course report, under \"Tempo medio para eleição do lider\" (mean election "
            f"time), shows one log excerpt: the connection to the old leader was lost at "
            f"23:35:43.146 and a new leader was elected at 23:35:44.921, {observed} later. "
            "It is one observation, measured from the lost connection rather than the crash, "
            "so it is not a mean. ")
    if crash is None:
        return text + "This run has no crash samples to compare it with."
    if crash["min"] <= COURSE_REPORT_ELECTION_S <= crash["max"]:
        return text + (f"It lies within the range we measured after crashes "
                       f"({fmt_seconds(crash['min'])} – {fmt_seconds(crash['max'])}), so the "
                       f"numbers confirm its order of magnitude; our median is "
                       f"{fmt_seconds(crash['median'])} over {fmt_count(crash['n'])} trials.")
    side = "above" if crash["max"] < COURSE_REPORT_ELECTION_S else "below"
    return text + (f"It lies {side} every crash trial we measured "
                   f"({fmt_seconds(crash['min'])} – {fmt_seconds(crash['max'])}; median "
                   f"{fmt_seconds(crash['median'])}), so our numbers do not confirm it as "
                   "typical for this configuration.")


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q1 section: answer, table, comparison with published figures, method."""
    params = result.params
    timeout_ms = result.metadata["election_timeout_ms"]
    heartbeat_ms = result.metadata["heartbeat_ms"]
    series = _election_series(result)
    crash = summarize(series["crash"]["elected"]) if series["crash"]["elected"] else None
    graceful = summarize(series["graceful"]["elected"]) if series["graceful"]["elected"] else None
    crash_first_write = (summarize(series["crash"]["first_write"])
                         if series["crash"]["first_write"] else None)

    answer = []
    if crash is None:
        answer.append("No crash trial produced a measurement.")
    else:
        first_write = ""
        if crash_first_write:
            first_write = (f"; clients could write again after "
                           f"{fmt_seconds(crash_first_write['median'])}")
        answer.append(
            f"After a SIGKILL of the leader the survivors agreed on a new leader after a median "
            f"of {fmt_seconds(crash['median'])} (n = {fmt_count(crash['n'])}, 95 % CI "
            f"{range_text(crash['median_ci_low'], crash['median_ci_high'], fmt_seconds)}, "
            f"range {fmt_seconds(crash['min'])} – {fmt_seconds(crash['max'])}){first_write}. "
            f"That is {_window_phrase(crash['median'], timeout_ms)}."
        )
    if crash is not None and graceful is not None:
        answer.append(_graceful_sentence(crash, graceful))
    consistent, consistency_text = _consistency(result)
    answer.append(consistency_text)

    rows = [row for row in (_election_row("Crash (SIGKILL)", series["crash"]),
                            _election_row("Graceful stop (SIGTERM)", series["graceful"]))
            if row is not None]
    is_default = (timeout_ms, heartbeat_ms) == (ETCD_DEFAULT_ELECTION_TIMEOUT_MS,
                                                ETCD_DEFAULT_HEARTBEAT_MS)
    defaults_note = "" if is_default else (
        f"This run used heartbeat {fmt_ms(heartbeat_ms)} and election timeout "
        f"{fmt_ms(timeout_ms)}, not etcd's defaults "
        f"({fmt_ms(ETCD_DEFAULT_HEARTBEAT_MS)} / {fmt_ms(ETCD_DEFAULT_ELECTION_TIMEOUT_MS)}): "
        f"the expected window becomes {fmt_ms(timeout_ms)} – {fmt_ms(2 * timeout_ms)}."
    )
    return {
        "answer": answer,
        "rows": rows,
        "details": [_term_phrase(result.samples.get("crash", [])),
                    _detection_phrase(result.samples.get("crash", []))],
        "chart": chart_files.get("times"),
        "crash_median": fmt_seconds(crash["median"]) if crash else MISSING,
        "graceful_median": fmt_seconds(graceful["median"]) if graceful else MISSING,
        "heartbeat": fmt_ms(heartbeat_ms),
        "election_timeout": fmt_ms(timeout_ms),
        "defaults_note": defaults_note,
        "members_consistent": fmt_bool(consistent),
        "course_report": _course_report_election(crash),
        "trials": fmt_count(params["trials"]),
        "poll_interval": fmt_ms(params["poll_interval_ms"]),
        "n_crash": fmt_count(crash["n"]) if crash else "0",
        "n_graceful": fmt_count(graceful["n"]) if graceful else "0",
        "members": metadata_text(result, "node_count", "nodes"),
        "etcd_version": metadata_text(result, "etcd_version"),
    }
