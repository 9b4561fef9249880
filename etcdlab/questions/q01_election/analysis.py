"""Q1 ``election``: samples → summary → findings (pure: no I/O, no cluster).

A trial records, from the moment the leader was signalled (SIGKILL for "crash", SIGTERM
for "graceful"): ``elected_s`` (a majority of the survivors names one new leader, polled
every ``poll_interval_ms``), ``log_elected_s`` (etcd's own "elected leader" line,
millisecond stamps) and ``first_write_s`` (a client's first acknowledged write).

The cluster's settings the findings need (election timeout, heartbeat, member count) are
result metadata, not parameters: :func:`findings` takes them as ``metadata`` and falls
back to etcd's defaults when a key is missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from etcdlab.figures import stats
from etcdlab.figures.units import (
    fmt_count,
    fmt_factor,
    fmt_median,
    fmt_p_value,
    fmt_percent,
    fmt_seconds,
    fmt_share,
)
from etcdlab.questions.findings import (
    Asked,
    Finding,
    claim,
    comparison,
    history_findings,
    named,
    untestable,
)
from etcdlab.questions.q01_election import sweep as election_sweep
from etcdlab.questions.q01_election.model import ElectionModel, ks_critical, ks_test
from etcdlab.questions.q01_election.sweep import (
    grid_findings,
    size_findings,
    summarize_sizes,
    summarize_sweep,
    sweep_findings,
)

SERIES = ("crash", "graceful")
ETCD_DEFAULT_HEARTBEAT_MS = 100
ETCD_DEFAULT_ELECTION_TIMEOUT_MS = 1000
ETCD_DEFAULT_NODE_COUNT = 3
# etcd's zap log stamps have millisecond resolution (truncated): the moment a line stands
# for lies in [stamp, stamp + 1 ms).
LOG_RESOLUTION_S = 0.001

# The course report's only figure for Q1 (its log excerpt under "Tempo medio para eleição
# do lider"): "lost TCP streaming connection with remote peer" at 23:35:43.146, then
# "elected leader ... at term 12" at 23:35:44.921.
COURSE_LOST_CONNECTION = "23:35:43.146"
COURSE_ELECTED = "23:35:44.921"
COURSE_ELECTION_S = 1.775
# The "error" field of the course's lost-connection line.
COURSE_LOST_CONNECTION_ERROR = "unexpected EOF"
# A single observation is implausible under a distribution only if values at least as
# large occur less often than this (one-sided, at 95 % confidence).
PLAUSIBLE_TAIL = 0.05
# The level of the Kolmogorov–Smirnov test of the crash times against the election model.
MODEL_TEST_LEVEL = 0.05

ASKED = (
    Asked("trials", 20, "elections per series (crash, graceful)", fmt_count),
)


# -- summary ---------------------------------------------------------------------------------

def _present(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None]


def classify_first_write(trial: Mapping[str, Any]) -> str | None:
    """When a trial's first acknowledged write came, relative to the new leader.

    "before": acknowledged before the new leader existed, so the old leader committed it;
    "after": acknowledged once the new leader existed; "unresolved": too close to tell
    with the instruments; None: the trial lacks the times. The new leader's moment is
    etcd's log stamp where there is one (1 ms resolution); otherwise only the polled
    ``elected_s`` (an upper bound of that moment) is known, which can show "after" only.
    """
    write = trial.get("first_write_s")
    if write is None:
        return None
    log = trial.get("log_elected_s")
    if log is not None:
        if write < log:
            return "before"
        return "after" if write >= log + LOG_RESOLUTION_S else "unresolved"
    elected = trial.get("elected_s")
    if elected is None:
        return None
    return "after" if write >= elected else "unresolved"


def _write_split(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """First-write times of one series split by :func:`classify_first_write`."""
    split: dict[str, Any] = {"before_s": [], "after_s": [], "unresolved_s": [],
                             "unclassified": 0,
                             "basis": "log" if trials and all(
                                 t.get("log_elected_s") is not None for t in trials)
                             else "poll"}
    for trial in trials:
        kind = classify_first_write(trial)
        if kind is None:
            split["unclassified"] += 1
        else:
            split[f"{kind}_s"].append(float(trial["first_write_s"]))
    for key in ("before_s", "after_s", "unresolved_s"):
        split[key].sort()
    return split


def _series_summary(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    s = stats.summarize([t["elected_s"] for t in trials])
    mean_bounds = stats.mean_ci([t["elected_s"] for t in trials])
    jumps = [t["term_after"] - t["term_before"] for t in trials
             if t.get("term_after") is not None and t.get("term_before") is not None]
    return {
        "trials": len(trials), "mean_s": s["mean"], "median_s": s["median"],
        "p95_s": s["p95"], "min_s": s["min"], "max_s": s["max"], "stdev_s": s["stdev"],
        "median_ci_s": ([s["median_ci_low"], s["median_ci_high"]]
                        if s["median_ci_low"] is not None else None),
        "mean_ci_s": list(mean_bounds) if mean_bounds else None,
        "log_median_s": stats.median_or_none(t.get("log_elected_s") for t in trials),
        "first_write_median_s": stats.median_or_none(t.get("first_write_s") for t in trials),
        "elected_values_s": sorted(float(t["elected_s"]) for t in trials),
        "log_values_s": sorted(_present(t.get("log_elected_s") for t in trials)),
        "first_write_values_s": sorted(_present(t.get("first_write_s") for t in trials)),
        "detection_lags_s": sorted(
            float(t["elected_s"]) - float(t["log_elected_s"]) for t in trials
            if t.get("log_elected_s") is not None),
        "term_jumps": jumps,
        "first_write_split": _write_split(trials),
    }


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Per-series statistics of the election, log and first-write times; consistency."""
    summary: dict[str, Any] = {}
    for series in SERIES:
        trials = samples.get(series) or []
        if trials:
            summary[series] = _series_summary(trials)
    crash = samples.get("crash") or []
    writes = stats.summarize([t["first_write_s"] for t in crash]) if crash else None
    summary["first_write"] = (
        {"median_s": writes["median"], "p95_s": writes["p95"]} if writes else {}
    )
    lags = [(t["elected_s"] - t["log_elected_s"]) * 1000.0 for t in crash
            if t.get("log_elected_s") is not None]
    summary["detection_lag_median_ms"] = stats.median_or_none(lags)
    checks = samples.get("consistency") or []
    summary["consistency"] = [
        {"series": c["series"], "consistent": bool(c["consistent"]),
         "members": [f"{m.get('name')} rev {m.get('revision')} hash {m.get('hash')}"
                     for m in c.get("members", [])]}
        for c in checks]
    summary["members_consistent"] = bool(checks) and all(c["consistent"] for c in checks)
    summary["new_leader_differs"] = all(
        t["new_leader"] != t["killed"] for s in SERIES for t in samples.get(s) or []
    )
    summary["poll_interval_s"] = (params["poll_interval_ms"] / 1000.0
                                  if params.get("poll_interval_ms") is not None else None)
    summary["histories"] = samples.get("histories") or {}
    summary["sweep"] = summarize_sweep(samples)
    summary["sizes"] = summarize_sizes(samples)
    return summary


def median_phrase(values: Sequence[float]) -> str:
    """"1.19 s (95 % CI 1.06 s – 1.42 s, n = 20)", or with too few values for an interval
    the median and the values themselves: "1.50 s (n = 5: 952 ms, …)"."""
    data = sorted(values)
    if stats.median_ci(data) is not None:
        return fmt_median(data)
    shown = ", ".join(fmt_seconds(v) for v in data)
    return f"{fmt_seconds(stats.percentile(data, 50))} (n = {len(data)}: {shown})"


# -- the timeout model -------------------------------------------------------------------------

def model_mean(timeout_s: float, survivors: int) -> float:
    """Mean of the earliest of ``survivors`` timeouts uniform in [T, 2T): T (1 + 1/(k+1))."""
    return timeout_s * (1 + 1 / (survivors + 1))


def lost_connection_at_kill(error: str) -> bool | None:
    """Whether a "lost TCP streaming connection" line's error says the peer's socket was
    closed (EOF: the kernel closes a killed process's sockets at once) rather than found
    dead after a timeout; None when the error says neither."""
    text = error.lower()
    if "eof" in text or "connection reset" in text:
        return True
    if "timeout" in text or "deadline" in text:
        return False
    return None


# -- findings ------------------------------------------------------------------------------

def _settings(metadata: Mapping[str, Any] | None) -> tuple[float, float, int]:
    metadata = metadata or {}
    timeout_ms = metadata.get("election_timeout_ms") or ETCD_DEFAULT_ELECTION_TIMEOUT_MS
    heartbeat_ms = metadata.get("heartbeat_ms") or ETCD_DEFAULT_HEARTBEAT_MS
    nodes = metadata.get("node_count") or ETCD_DEFAULT_NODE_COUNT
    return timeout_ms / 1000.0, heartbeat_ms / 1000.0, int(nodes)


def _poll_text(summary: Mapping[str, Any]) -> str:
    interval = summary.get("poll_interval_s")
    return f"every {fmt_seconds(interval)}" if interval is not None else "interval not recorded"


def _window(timeout_s: float) -> str:
    return f"[{fmt_seconds(timeout_s)}, {fmt_seconds(2 * timeout_s)})"


def election_model(metadata: Mapping[str, Any] | None, params: Mapping[str, Any],
                   poll: bool = True) -> ElectionModel:
    """The election model (:mod:`.model`) of this run's cluster:
    its timeout, heartbeat and survivors from ``metadata``, seen by the lab's poll of
    ``params["poll_interval_ms"]``, or with ``poll`` False at etcd's own log line."""
    timeout_s, heartbeat_s, nodes = _settings(metadata)
    return ElectionModel(timeout_s, heartbeat_s, max(1, nodes - 1),
                         poll_s=_poll_s(params) if poll else 0.0)


def _model_text(model: ElectionModel) -> str:
    seen = (f"seen by a poll every {fmt_seconds(model.poll_s)}" if model.poll_s
            else "seen at etcd's log line")
    return (f"earliest of {model.survivors} timeouts uniform in {_window(model.timeout_s)} "
            f"from the last heartbeat, uniform in the {fmt_seconds(model.heartbeat_s)} before "
            f"the crash; + {fmt_seconds(model.rounds_s)} of vote rounds; {seen}")


def _model_quantiles(model: ElectionModel) -> str:
    return f"{fmt_seconds(model.median_s)} / {fmt_seconds(model.p95_s)}"


def _crash_window(crash: Mapping[str, Any] | None, summary: Mapping[str, Any],
                  timeout_s: float) -> Finding:
    window = _window(timeout_s)
    if crash is None:
        return untestable("crash-window",
                          "No crash trial was measured, so this run cannot say how long an "
                          "election after a crash takes.")
    median = crash["median_s"]
    values = crash["elected_values_s"]
    side = "below" if median < timeout_s else "above"
    head = (f"After a crash (SIGKILL) of the leader, a majority of the survivors named a new "
            f"leader after a median of {fmt_seconds(median)}")
    inside = sum(1 for v in values if timeout_s <= v < 2 * timeout_s)
    brief = (f"After a leader crash a new leader was named in {fmt_seconds(median)} (median, "
             f"n = {len(values)}; {fmt_seconds(crash['min_s'])} – "
             f"{fmt_seconds(crash['max_s'])}): ")
    return named(claim(
        "crash-window", timeout_s <= median < 2 * timeout_s,
        f"{head}: inside the {window} window of etcd's randomised election timeout T.",
        f"{head}: {side} the {window} window of etcd's randomised election timeout T.",
        **{"polled": _poll_text(summary),
           "median": median_phrase(values),
           "range": f"{fmt_seconds(crash['min_s'])} – {fmt_seconds(crash['max_s'])}",
           "trials inside the window": fmt_share(inside, len(values))},
    ), "crash election", f"{brief}inside etcd's {window} timeout window.",
        f"{brief}{side} etcd's {window} timeout window.")


def _write_resolution(params: Mapping[str, Any]) -> str:
    timeout = params.get("write_timeout_s")
    if timeout is None:
        return "probe write timeout not recorded"
    return (f"a write dropped during the election ends only at its {fmt_seconds(timeout)} "
            "deadline before the next try")


def _crash_writes(crash: Mapping[str, Any] | None, params: Mapping[str, Any]) -> Finding:
    if crash is None or not crash["first_write_values_s"]:
        return untestable("crash-writes-after-leader", "No crash trial recorded a first write.")
    split = crash["first_write_split"]
    n = sum(len(split[k]) for k in ("before_s", "after_s", "unresolved_s"))
    before = len(split["before_s"])
    figures = {"first write": median_phrase(crash["first_write_values_s"]),
               "before the new leader": fmt_share(before, n) if n else "not classifiable",
               "resolution": _write_resolution(params)}
    if n == 0:
        return untestable("crash-writes-after-leader",
                          "The crash trials lack the times to compare each first write with the "
                          "new leader's election.", **figures)
    return claim(
        "crash-writes-after-leader", before == 0,
        "After a crash, writes resumed only once the new leader existed: no first write was "
        "acknowledged before etcd logged the new leader.",
        "After a crash, some first writes were acknowledged before etcd logged the new "
        "leader, which a killed leader cannot have committed: check the timing.",
        **figures,
    )


def _graceful_faster(crash: Mapping[str, Any] | None,
                     graceful: Mapping[str, Any] | None) -> Finding:
    if crash is None or graceful is None:
        return untestable("graceful-faster",
                          "One of the two series has no trials, so they cannot be compared.")
    c, g = crash["median_s"], graceful["median_s"]
    faster = sum(1 for v in graceful["elected_values_s"] if v < crash["min_s"])
    figures = {"graceful": median_phrase(graceful["elected_values_s"]),
               "crash": median_phrase(crash["elected_values_s"]),
               "graceful elections faster than the fastest crash":
                   fmt_share(faster, graceful["trials"])}
    if crash["median_ci_s"] and graceful["median_ci_s"]:
        apart = (graceful["median_ci_s"][1] < crash["median_ci_s"][0]
                 or crash["median_ci_s"][1] < graceful["median_ci_s"][0])
        basis = "the 95 % intervals of the medians do not overlap"
    else:
        # Too few for intervals: the series are told apart only if they do not interleave
        # at all (for 5 against 5 that happens by chance with probability 1/252).
        apart = (max(graceful["elected_values_s"]) < crash["min_s"]
                 or max(crash["elected_values_s"]) < graceful["min_s"])
        chance = 1 / math.comb(crash["trials"] + graceful["trials"], graceful["trials"])
        basis = (f"the two series do not interleave (chance of that with no real "
                 f"difference: {fmt_percent(chance, 2)})")
    if not apart:
        return untestable("graceful-faster",
                          "This run cannot tell a graceful stop from a crash: their times overlap.",
                          **figures)
    figures["told apart by"] = basis
    factor = fmt_factor(c / g) if g > 0 else "far"
    return claim(
        "graceful-faster", g < c,
        f"A graceful stop (SIGTERM) was faster than a crash: its median election was "
        f"{factor} shorter.",
        "A graceful stop (SIGTERM) was slower than a crash.",
        **figures,
    )


def _graceful_writes(graceful: Mapping[str, Any] | None, params: Mapping[str, Any]
                     ) -> Finding:
    if graceful is None:
        return untestable("graceful-writes-split", "No graceful trial was measured.")
    split = graceful["first_write_split"]
    before, after, unresolved = split["before_s"], split["after_s"], split["unresolved_s"]
    n = len(before) + len(after) + len(unresolved)
    basis = ("etcd's \"elected leader\" log stamp (1 ms resolution)" if split["basis"] == "log"
             else "the polled election time")
    if n == 0 or (split["basis"] == "poll" and not before and not after):
        return untestable("graceful-writes-split",
                          "The graceful samples lack the new leader's log time, so the first "
                          "writes cannot be split into those the old leader committed before "
                          "handing over and those after the handover.")
    figures = {"before the new leader": fmt_share(len(before), n),
               "median before": median_phrase(before) if before else "none",
               "after the new leader": fmt_share(len(after), n),
               "median after": median_phrase(after) if after else "none",
               "compared with": basis, "resolution": _write_resolution(params)}
    if unresolved:
        figures["within the log's 1 ms"] = fmt_share(len(unresolved), n)
    after_text = (f"the {len(after)} after it took a median of "
                  f"{fmt_seconds(stats.median_or_none(after))}" if after else "none came after it")
    return claim(
        "graceful-writes-split", bool(before),
        f"After a graceful stop, {len(before)} of {n} first writes were acknowledged before "
        f"the new leader existed (the old leader committed them before handing over; median "
        f"{fmt_seconds(stats.median_or_none(before)) if before else '-'}); {after_text}.",
        f"After a graceful stop, none of {n} first writes was acknowledged before the new "
        f"leader existed; {after_text}.",
        **figures,
    )


def _terms(crash: Mapping[str, Any] | None) -> Finding:
    jumps = crash["term_jumps"] if crash else []
    if not jumps:
        return untestable("one-round",
                          "The Raft terms were not recorded, so the election rounds are unknown.")
    single = sum(1 for j in jumps if j == 1)
    return claim(
        "one-round", single == len(jumps),
        "Every crash election took one round: the Raft term rose by exactly one.",
        f"Some crash elections took more than one round (largest term jump "
        f"{fmt_count(max(jumps))}), e.g. a split vote.",
        **{"term rose by one": fmt_share(single, len(jumps))},
    )


def _consistency(summary: Mapping[str, Any]) -> Finding:
    checks = summary.get("consistency") or []
    if not checks:
        return untestable("members-consistent",
                          "The members' data was not compared after the series.")
    diverged = [c for c in checks if not c["consistent"]]
    details = "; ".join(f"after {c['series']}: {', '.join(c['members'])}" for c in diverged)
    return claim(
        "members-consistent", not diverged,
        "After each series every member reported the same revision and KV hash.",
        f"Members diverged ({details}).",
        **{"series compared": ", ".join(str(c["series"]) for c in checks)},
    )


def _needed_for_tail(n: int) -> int:
    """The fewest trials, none as slow, that put a 1-in-20 tail outside the 95 % bound."""
    needed = max(n, 1)
    while stats.binomial_upper(0, needed) >= PLAUSIBLE_TAIL:
        needed += 1
    return needed


def _course_percentile(crash: Mapping[str, Any] | None) -> Finding:
    course = fmt_seconds(COURSE_ELECTION_S)
    if crash is None:
        return named(untestable("course-1.77s", "This run has no crash trials to place the "
                                f"course's {course} in.", source="course"),
                     f"election {course}", unknown="no crash trials")
    uses_log = len(crash["log_values_s"]) == crash["trials"]
    values = crash["log_values_s"] if uses_log else crash["elected_values_s"]
    n = len(values)
    at_least = sum(1 for v in values if v >= COURSE_ELECTION_S)
    bound = stats.binomial_upper(at_least, n)
    figures = {
        "percentile in this run": f"{fmt_percent((n - at_least) / n, 0)} of n = {n} crash "
                                  "elections were faster",
        "as slow or slower": fmt_share(at_least, n),
        "measured to": "etcd's log line" if uses_log else "the polled leader",
    }
    low, high = min(values), max(values)
    figures["measured range"] = f"{fmt_seconds(low)} – {fmt_seconds(high)} (n = {n})"
    inside = low <= COURSE_ELECTION_S <= high
    # Only elections as slow as the course's, or enough trials to call them rare, decide:
    # with few trials none that slow is no evidence against it.
    if inside or bound < PLAUSIBLE_TAIL:
        agrees: bool | None = inside
    else:
        agrees = None
        figures["needed to call it rare"] = (f"{_needed_for_tail(n)} or more elections, none "
                                             "as slow (rarer than 1 in 20 at 95 %)")
    finding = comparison(
        "course-1.77s", "course", agrees,
        f"The course report's {course} (one election, from the lost connection to \"elected "
        f"leader\") lies inside the range of this run's crash elections: a plausible single "
        "observation.",
        f"The course report's {course} is not typical of this configuration: in this run "
        "elections that slow are rarer than 1 in 20 (at 95 %).",
        f"The course report's {course} lies outside this run's {n} crash elections, but {n} "
        f"are too few to call it rare: {_needed_for_tail(n)} or more, none that slow, would be "
        "needed.",
        **figures,
    )
    return named(finding, f"election {course}",
                 f"inside the measured range {fmt_seconds(low)} – {fmt_seconds(high)}",
                 "rarer than 1 in 20 here",
                 f"outside the {n} measured, too few to call it rare")


def _model_fit(crash: Mapping[str, Any] | None, model: ElectionModel) -> Finding:
    if crash is None:
        return untestable("model-fit", "No crash trial was measured, so the election model "
                                       "has nothing to be tested against.")
    values = crash["elected_values_s"]
    test = ks_test(values, model.cdf)
    critical = ks_critical(test.n, MODEL_TEST_LEVEL)
    shown = fmt_p_value(test.p)
    p = shown if shown.startswith("<") else f"= {shown}"
    return claim(
        "model-fit", test.p >= MODEL_TEST_LEVEL,
        f"The crash-to-leader times fit the election model as far as {test.n} elections can "
        "tell: the earliest survivor's randomised timeout after the last heartbeat, the vote "
        "rounds and the poll account for them.",
        "The crash-to-leader times do not fit the election model: something beyond the "
        "earliest survivor's randomised timeout after the last heartbeat, the vote rounds and "
        "the poll shapes them.",
        **{"Kolmogorov–Smirnov": f"D = {test.d:.3f} at {fmt_seconds(test.at)}, p {p}, "
                                 f"n = {test.n}, p-value {test.method}",
           f"rejected at {fmt_percent(MODEL_TEST_LEVEL, 0)} from":
               f"D ≥ {critical:.3f} (n = {test.n})",
           "model median / p95": _model_quantiles(model),
           "measured median": median_phrase(values),
           "model": _model_text(model)},
    )


def _course_under_model(crash: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None,
                        params: Mapping[str, Any]) -> Finding:
    course = fmt_seconds(COURSE_ELECTION_S)
    if crash is None:
        return untestable("course-1.77s-model", f"This run has no crash trials to set the "
                          f"course's {course} among, nor to check the election model with.",
                          source="published")
    # The course measured to etcd's log line: so does the comparison wherever it can.
    uses_log = len(crash["log_values_s"]) == crash["trials"]
    values = crash["log_values_s"] if uses_log else crash["elected_values_s"]
    model = election_model(metadata, params, poll=not uses_log)
    tail = 1.0 - model.cdf(COURSE_ELECTION_S)
    n = len(values)
    faster = sum(1 for v in values if v < COURSE_ELECTION_S)
    figures = {
        "percentile under the model": f"{fmt_percent(1.0 - tail)} ({fmt_percent(tail)} of "
                                      "modelled elections as slow or slower)",
        "measured elections faster": fmt_share(faster, n),
        "model median / p95": _model_quantiles(model),
        "model": _model_text(model),
        "measured to": "etcd's log line" if uses_log else "the polled leader",
    }
    return comparison(
        "course-1.77s-model", "published", tail >= PLAUSIBLE_TAIL,
        f"Under this cluster's election model the course report's {course} is a plausible "
        f"single election: {fmt_percent(tail)} of elections take that long or longer, at "
        "least 1 in 20.",
        f"Under this cluster's election model the course report's {course} is rarer than 1 "
        f"in 20: only {fmt_percent(tail)} of elections take that long, so it was an unlucky "
        "draw or the course's cluster differed.",
        **figures,
    )


def _course_start_point() -> Finding:
    at_kill = lost_connection_at_kill(COURSE_LOST_CONNECTION_ERROR)
    return named(comparison(
        "course-start-point", "course", at_kill,
        f"The course report's start point is sound: \"{COURSE_LOST_CONNECTION_ERROR}\" means "
        "the killed process's kernel closed the socket, so the line marks the kill, as this "
        "run's does.",
        "The course report's start point is late: its \"lost TCP streaming connection\" line "
        "reports a timeout, found only some time after the leader died.",
        "The course report's \"lost TCP streaming connection\" line does not say how the "
        "connection was lost, so its start point cannot be placed.",
        **{"course log": f"lost {COURSE_LOST_CONNECTION}, elected {COURSE_ELECTED}",
           "error": COURSE_LOST_CONNECTION_ERROR}),
        "start point: the lost-connection line", "marks the kill", "late: a timeout",
        "the line gives no cause")


def _published_transfer(graceful: Mapping[str, Any] | None, timeout_s: float) -> Finding:
    if graceful is None:
        return untestable("published-transfer",
                          "No graceful trial was measured.", source="published")
    below = sum(1 for v in graceful["elected_values_s"] if v < timeout_s)
    return comparison(
        "published-transfer", "published", below == graceful["trials"],
        "etcd 3.5 transfers leadership on SIGTERM instead of leaving the followers to time "
        "out: every graceful election here ended before one election timeout T.",
        "etcd 3.5 should transfer leadership on SIGTERM, but some graceful elections here "
        "waited for an election timeout T.",
        **{"graceful elections shorter than T": fmt_share(below, graceful["trials"]),
           "T": fmt_seconds(timeout_s)},
    )


def _published_mean(crash: Mapping[str, Any] | None, timeout_s: float,
                    survivors: int) -> Finding:
    expected = model_mean(timeout_s, survivors)
    if crash is None or not crash["mean_ci_s"]:
        return untestable("published-mean",
                          "Too few crash trials for an interval of the mean.", source="published")
    low, high = crash["mean_ci_s"]
    if low <= timeout_s and high >= 1.5 * timeout_s:
        # The mean of the earliest of k timeouts uniform in [T, 2T) is T + T/(k + 1): from
        # 1.5T (one survivor) down towards T. An interval holding all of [T, 1.5T] agrees
        # with every size's model, so it tests none.
        return untestable(
            "published-mean",
            f"The timeout model's mean cannot be tested in this run: the 95 % interval of "
            f"the crash mean holds every model mean from {fmt_seconds(timeout_s)} to "
            f"{fmt_seconds(1.5 * timeout_s)}, whatever the number of survivors.",
            source="published",
            **{"model": fmt_seconds(expected),
               "this run": f"{fmt_seconds(crash['mean_s'])} (95 % CI {fmt_seconds(low)} – "
                           f"{fmt_seconds(high)}, n = {crash['trials']})"})
    return comparison(
        "published-mean", "published", low <= expected <= high,
        f"The timeout model's mean for {survivors} survivors (the earliest of their "
        f"timeouts in {_window(timeout_s)}) lies inside the 95 % interval of this run's "
        "crash mean.",
        f"The timeout model's mean for {survivors} survivors (the earliest of their "
        f"timeouts in {_window(timeout_s)}) lies outside the 95 % interval of this run's "
        "crash mean.",
        **{"model": fmt_seconds(expected),
           "this run": f"{fmt_seconds(crash['mean_s'])} (95 % CI {fmt_seconds(low)} – "
                       f"{fmt_seconds(high)}, n = {crash['trials']})"},
    )


def findings(summary: Mapping[str, Any], params: Mapping[str, Any],
             metadata: Mapping[str, Any] | None = None) -> list[Finding]:
    """The claims of Q1, answer first; ``metadata`` gives the cluster's timeouts and size."""
    timeout_s, _heartbeat_s, nodes = _settings(metadata)
    survivors = max(1, nodes - 1)
    crash, graceful = summary.get("crash"), summary.get("graceful")
    return [
        _crash_window(crash, summary, timeout_s),
        _model_fit(crash, election_model(metadata, params)),
        _graceful_faster(crash, graceful),
        _graceful_writes(graceful, params),
        _crash_writes(crash, params),
        _terms(crash),
        _consistency(summary),
        *history_findings(summary),
        _course_percentile(crash),
        _course_under_model(crash, metadata, params),
        _course_start_point(),
        *sweep_findings(summary.get("sweep"), nodes, _poll_s(params)),
        *size_findings(summary.get("sizes"), _poll_s(params)),
        *grid_findings(summary.get("sizes"), _poll_s(params)),
        _published_transfer(graceful, timeout_s),
        _published_mean(crash, timeout_s, survivors),
    ]


def _poll_s(params: Mapping[str, Any]) -> float:
    poll_ms = params.get("poll_interval_ms")
    return poll_ms / 1000.0 if poll_ms else 0.0


def size_rows(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, str]]:
    """The sizes' table (:func:`.sweep.size_rows`)."""
    return election_sweep.size_rows(summary.get("sizes"), _poll_s(params))


def grid_rows(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, str]]:
    """The timeouts × sizes table (:func:`.sweep.grid_rows`)."""
    return election_sweep.grid_rows(summary.get("sizes"), _poll_s(params))


def sweep_rows(summary: Mapping[str, Any], params: Mapping[str, Any],
               metadata: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """The sweep's table (:func:`.sweep.sweep_rows`)."""
    _timeout_s, _heartbeat_s, nodes = _settings(metadata)
    return election_sweep.sweep_rows(summary.get("sweep"), nodes, _poll_s(params))


def timing_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """Body table: one row per series (at most 7 columns)."""
    rows = []
    for series, label in (("crash", "Crash (SIGKILL)"), ("graceful", "Graceful stop (SIGTERM)")):
        s = summary.get(series)
        if not s:
            continue
        rows.append({
            "label": label, "n": fmt_count(s["trials"]),
            "median": median_phrase(s["elected_values_s"]),
            "range": f"{fmt_seconds(s['min_s'])} – {fmt_seconds(s['max_s'])}",
            "log": fmt_seconds(s["log_median_s"]),
            "first_write": fmt_seconds(s["first_write_median_s"]),
        })
    return rows


def appendix_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """Appendix table: the full statistics of the polled election time per series."""
    rows = []
    for series in SERIES:
        s = summary.get(series)
        if not s:
            continue
        lags = s["detection_lags_s"]
        rows.append({
            "series": series, "n": fmt_count(s["trials"]), "mean": fmt_seconds(s["mean_s"]),
            "p95": fmt_seconds(s["p95_s"]), "stdev": fmt_seconds(s["stdev_s"]),
            "lag": median_phrase(lags) if lags else "not logged",
        })
    return rows
