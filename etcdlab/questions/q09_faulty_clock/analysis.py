"""Analysis of Q9 ``faulty-clock``: the agents' saved exchanges → summary and findings (pure).

For each agent and round the analysis does what the agent itself would: NTP's offset
estimate with an error bound of half the round trip per peer, Marzullo's intersection, and
a clock is faulty when its interval lies more than ``threshold_ms`` from the interval a
majority agrees on. The cluster flags a clock in a round when more than half the agents do.

Ground truth. Every correct agent reads this machine's one kernel clock (containers share
it), so a correct clock's true offset is 0. A faked clock's true offset comes, when the
agent reported it, from its own reading of the faked and the real clock at one moment at
its start (``clock_at_start``; newer agents). Older results lack it: there the clock is
modelled as started at its first reading less the offset, which ignores the agent's
start-up while a drifting clock already ran fast, so the errors of a drifting clock are
biased there and are not checked against their bound.

:mod:`etcdlab.figures.clocks` (pure, no I/O) provides the estimate, Marzullo's algorithm and
libfaketime's clock model.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from etcdlab.figures import clocks, stats
from etcdlab.figures.units import fmt_count, fmt_ms, fmt_seconds, fmt_share, fmt_within
from etcdlab.questions.findings import Asked, Finding, claim, comparison, name_all, untestable

RUNS = ("offset", "drift", "two_faulty")
LABELS = {"offset": "one clock offset", "drift": "one clock drifting",
          "two_faulty": "two faulty clocks, five agents"}
# A measured start-of-run truth must predict the end-of-run pair to within this much,
# or the clock did not run at the injected rate (or the real clock was not the real one).
MODEL_TOLERANCE_S = 0.002


def _ms_per_min(value: float) -> str:
    return f"{fmt_ms(value)}/min"


ASKED = (
    Asked("drift_ms_per_min", 500.0, "Drift of the drifting clock (the course's 500 ms/min)",
          _ms_per_min),
    Asked("rounds", 60, "Probe rounds (a full run)", fmt_count),
)


# --- each agent's clock -------------------------------------------------------------------

def clock_model(agent: Mapping[str, Any]) -> tuple[float, float, bool]:
    """(offset at ``reference``, ``reference`` real time, measured?) of an agent's clock."""
    pair = agent.get("clock_at_start") or {}
    measured = pair.get("real") is not None and pair.get("faked") is not None
    if not is_faked(agent):
        # An agent without a fault reads this machine's kernel clock: its offset is 0 by
        # construction, and its start pair only adds the ~1 µs between its two readings.
        return 0.0, pair["real"] if measured else agent["clock_started_at"], measured
    if measured:
        return pair["faked"] - pair["real"], pair["real"], True
    return agent["offset_s"], agent["clock_started_at"], False


def is_faked(agent: Mapping[str, Any]) -> bool:
    """Whether the agent's clock was given a fault."""
    return agent["offset_s"] != 0.0 or agent["rate"] != 1.0


def truth_exact(agent: Mapping[str, Any]) -> bool:
    """Whether the agent's true offset is known exactly: measured, or a constant offset
    (with rate 1 the start-up does not matter)."""
    return clock_model(agent)[2] or agent["rate"] == 1.0


def true_offset(agent: Mapping[str, Any], real: float) -> float:
    """How far an agent's clock was ahead of the real clock at real time ``real``."""
    offset, reference, _measured = clock_model(agent)
    return clocks.faked_offset(offset, agent["rate"], reference, real)


def to_real(agent: Mapping[str, Any], faked: float) -> float:
    """The real time at which an agent's clock read ``faked``."""
    offset, reference, _measured = clock_model(agent)
    return clocks.real_time(faked, offset, agent["rate"], reference)


# --- verdicts -----------------------------------------------------------------------------

def observer_verdicts(run: Mapping[str, Any], threshold_s: float) -> list[dict[str, Any]]:
    """Every agent's verdict on every clock, round by round, from its exchanges alone.

    Besides the verdict, each view holds per clock its estimate's error against the ground
    truth (``errors``), the bound on that error (``bounds``: half the probe's round trip,
    plus half the width of the majority's interval, where the observer itself is not in it)
    and whether the ground truth is exact (``exact``), and the peers' raw estimates
    (``estimates``, peer − observer)."""
    agents = run["agents"]
    population = len(agents)
    verdicts = []
    for observer, agent in agents.items():
        by_round: dict[int, list[Mapping[str, Any]]] = {}
        for exchange in agent["exchanges"]:
            by_round.setdefault(exchange["round"], []).append(exchange)
        for round_index, exchanges in sorted(by_round.items()):
            intervals = {observer: (0.0, 0.0)}
            half_rtt = {observer: 0.0}
            probed = {}
            lost = 0
            for exchange in exchanges:
                if exchange.get("lost"):
                    lost += 1
                    continue
                estimate = clocks.ntp_offset(exchange["t1"], exchange["t2"], exchange["t3"],
                                             exchange["t4"])
                intervals[exchange["peer"]] = (estimate.low, estimate.high)
                half_rtt[exchange["peer"]] = estimate.error
                probed[exchange["peer"]] = to_real(agent, (exchange["t1"] + exchange["t4"]) / 2)
            verdict = clocks.classify_clocks(intervals, threshold_s, population)
            real = to_real(agent, min(e["t1"] for e in exchanges))
            # The round's probes are sequential: while they run, a drifting observer's own
            # clock moves |rate - 1| x the round's span against the peers it compares.
            # A lost probe has no t4: the span is that of the answered ones.
            answered = [e for e in exchanges if not e.get("lost")]
            span = (max(e["t4"] for e in answered) - min(e["t1"] for e in answered)
                    if answered else 0.0)
            observer_drift = abs(agent["rate"] - 1.0) * span
            errors, bounds, exact = {}, {}, {}
            if verdict["decided"]:
                half_width = (verdict["high"] - verdict["low"]) / 2.0
                for subject, deviation in verdict["deviation"].items():
                    # A drifting subject's truth at the moment it was probed, not at the
                    # round's start (at 500 ms/min it moves 8 µs per ms).
                    errors[subject] = deviation - true_offset(agents[subject],
                                                              probed.get(subject, real))
                    bounds[subject] = half_rtt[subject] + half_width + observer_drift
                    exact[subject] = truth_exact(agents[subject]) and (
                        agents[subject]["rate"] == 1.0 or truth_exact(agent))
            verdicts.append({"observer": observer, "round": round_index, "real": real,
                             "decided": verdict["decided"], "faulty": verdict["faulty"],
                             "deviation": verdict["deviation"], "errors": errors,
                             "bounds": bounds, "exact": exact, "lost": lost,
                             "estimates": {peer: (low + high) / 2.0 for peer, (low, high)
                                           in intervals.items() if peer != observer},
                             "half_rtt": half_rtt})
    return verdicts


def _crossing(agent: Mapping[str, Any], threshold_s: float) -> float | None:
    """The real time a drifting clock's true offset reached the threshold (None if it had
    no drift or started beyond it)."""
    offset, reference, _measured = clock_model(agent)
    slope = agent["rate"] - 1.0
    if slope == 0 or abs(offset) >= threshold_s:
        return None
    target = threshold_s if slope > 0 else -threshold_s
    return reference + (target - offset) / slope


def summarize_run(run: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Flags, detection times, false flags, estimate errors and ground truth of one run."""
    agents = run["agents"]
    threshold = params["threshold_ms"] / 1000.0
    injected = sorted(n for n, a in agents.items() if is_faked(a))
    correct = [n for n in agents if n not in injected]
    verdicts = observer_verdicts(run, threshold)
    majority = len(agents) // 2 + 1
    rounds: dict[int, list[dict[str, Any]]] = {}
    for verdict in verdicts:
        rounds.setdefault(verdict["round"], []).append(verdict)
    cluster_flags: dict[int, list[str]] = {}
    round_time: dict[int, float] = {}
    for index, views in sorted(rounds.items()):
        votes: dict[str, int] = {}
        for view in views:
            for subject in view["faulty"]:
                votes[subject] = votes.get(subject, 0) + 1
        cluster_flags[index] = sorted(s for s, count in votes.items() if count >= majority)
        round_time[index] = min(v["real"] for v in views if v["observer"] in correct)
    last = max(cluster_flags) if cluster_flags else None
    detection, beyond, beyond_flagged, crossing = {}, {}, {}, {}
    for subject in injected:
        first = next((i for i in sorted(cluster_flags) if subject in cluster_flags[i]), None)
        detection[subject] = None if first is None else round_time[first] - run["started_at"]
        past = [i for i in cluster_flags
                if abs(true_offset(agents[subject], round_time[i])) > threshold]
        beyond[subject] = len(past)
        beyond_flagged[subject] = sum(subject in cluster_flags[i] for i in past)
        crossed = _crossing(agents[subject], threshold)
        if crossed is not None:
            crossing[subject] = crossed - run["started_at"]
    errors = [abs(e) for v in verdicts for e in v["errors"].values()]
    checked = [(abs(v["errors"][s]), v["bounds"][s]) for v in verdicts for s in v["errors"]
               if v["exact"][s]]
    round_trips = [clocks.ntp_offset(e["t1"], e["t2"], e["t3"], e["t4"]).delay
                   for agent in agents.values() for e in agent["exchanges"] if not e.get("lost")]
    # Correct agents probing correct agents: one kernel clock, so the true offset is 0.
    between_correct = [(abs(v["estimates"][p]), v["half_rtt"][p]) for v in verdicts
                       if v["observer"] in correct for p in v["estimates"] if p in correct]
    # The course report's rule as stated: a node calls a peer faulty when the offset it
    # measures to that peer exceeds the threshold (no majority).
    pairwise = [(v["observer"] in correct, abs(v["estimates"][p]) > threshold)
                for v in verdicts for p in v["estimates"] if p in correct]
    final_estimates = {}
    if last is not None:
        for subject in agents:
            seen = [v["deviation"][subject] for v in rounds[last]
                    if v["decided"] and subject in v["deviation"]]
            final_estimates[subject] = {
                "estimated_ms": statistics.median(seen) * 1e3 if seen else None,
                "injected_ms": true_offset(agents[subject], round_time[last]) * 1e3,
            }
    return {
        "agents": sorted(agents),
        "injected_faulty": injected,
        "correct": sorted(correct),
        "flagged": cluster_flags.get(last, []) if last is not None else [],
        "false_positives": sum(1 for flags in cluster_flags.values()
                               for subject in flags if subject in correct),
        "cluster_judgements_of_correct": len(cluster_flags) * len(correct),
        "observer_false_positives": sum(1 for v in verdicts for subject in v["faulty"]
                                        if subject in correct),
        "observer_judgements_of_correct": sum(1 for v in verdicts if v["decided"]
                                              for subject in v["deviation"]
                                              if subject in correct),
        "detection_s": detection,
        "rounds_beyond_threshold": beyond,
        "rounds_beyond_flagged": beyond_flagged,
        "crossing_s": crossing,
        "max_estimate_error_ms": max(errors) * 1e3 if errors else None,
        "median_estimate_error_ms": statistics.median(errors) * 1e3 if errors else None,
        "p99_estimate_error_ms": stats.percentile(errors, 99) * 1e3 if errors else None,
        "bound_checked": len(checked),
        "bound_within": sum(error <= bound for error, bound in checked),
        "bound_unchecked": len(errors) - len(checked),
        "max_checked_error_ms": max(e for e, _ in checked) * 1e3 if checked else None,
        "max_excess_ms": max(e - b for e, b in checked) * 1e3 if checked else None,
        "unchecked_max_error_ms": max((abs(v["errors"][s]) * 1e3 for v in verdicts
                                       for s in v["errors"] if not v["exact"][s]),
                                      default=None),
        "median_round_trip_ms": statistics.median(round_trips) * 1e3 if round_trips else None,
        "max_round_trip_ms": max(round_trips) * 1e3 if round_trips else None,
        "correct_pairs": len(between_correct),
        "correct_pairs_within": sum(e <= b for e, b in between_correct),
        "correct_pair_max_ms": (max(e for e, _ in between_correct) * 1e3
                                if between_correct else None),
        "pairwise_by_correct": sum(1 for by_correct, _ in pairwise if by_correct),
        "pairwise_by_correct_flagged": sum(1 for by_correct, flag in pairwise
                                           if by_correct and flag),
        "pairwise_by_faulty": sum(1 for by_correct, _ in pairwise if not by_correct),
        "pairwise_by_faulty_flagged": sum(1 for by_correct, flag in pairwise
                                          if not by_correct and flag),
        "ground_truth": _ground_truth(agents),
        "rounds": len(cluster_flags),
        "undecided_views": sum(1 for v in verdicts if not v["decided"]),
        "lost_probes": sum(v["lost"] for v in verdicts),
        "final_estimates": final_estimates,
        "exact": cluster_flags.get(last, []) == injected if last is not None else False,
    }


def _ground_truth(agents: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Whether every agent measured its clock against the real one, and what it found."""
    measured = [name for name, a in agents.items() if clock_model(a)[2]]
    ahead_at_start = {}
    model_errors = []
    for name in measured:
        agent = agents[name]
        offset, reference, _ = clock_model(agent)
        if is_faked(agent):
            # How far the faked clock was past its injected offset at the agent's first
            # reading: the start-up the older model ignored.
            ahead_at_start[name] = (offset - agent["offset_s"]) * 1e3
        end = agent.get("clock_at_end") or {}
        if end.get("real") is not None and end.get("faked") is not None:
            predicted = true_offset(agent, end["real"])
            model_errors.append(abs(end["faked"] - end["real"] - predicted))
    return {"agents": len(agents), "measured": len(measured),
            "ahead_at_start_ms": ahead_at_start,
            "max_model_error_ms": max(model_errors) * 1e3 if model_errors else None}


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Each run's figures, and the totals across the runs."""
    runs = {name: summarize_run(samples["runs"][name], params)
            for name in RUNS if name in samples.get("runs", {})}
    errors = [r["max_estimate_error_ms"] for r in runs.values()
              if r["max_estimate_error_ms"] is not None]
    return {
        **runs,
        "flagged": {name: r["flagged"] for name, r in runs.items()},
        "injected_faulty": {name: r["injected_faulty"] for name, r in runs.items()},
        "false_positives": sum(r["false_positives"] for r in runs.values()),
        "detection_s": {f"{name}:{agent}": seconds for name, r in runs.items()
                        for agent, seconds in r["detection_s"].items()},
        "max_estimate_error_ms": max(errors) if errors else None,
        "all_exact": bool(runs) and all(r["exact"] for r in runs.values()),
        "expected_drift_detection_s": params["threshold_ms"] / params["drift_ms_per_min"] * 60,
    }


# --- findings -------------------------------------------------------------------------------

def _total(runs: Mapping[str, Mapping[str, Any]], key: str) -> int:
    return sum(r[key] for r in runs.values())


def _detections(runs: Mapping[str, Mapping[str, Any]], interval_s: float) -> str:
    parts = []
    for name, r in runs.items():
        for agent, seconds in r["detection_s"].items():
            shown = "not flagged" if seconds is None else f"after {fmt_within(seconds, interval_s)}"
            parts.append(f"{LABELS[name]}: {agent} {shown}")
    return "; ".join(parts)


def findings(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[Finding]:
    """The claims of Q9, answer first."""
    runs = {name: summary[name] for name in RUNS if name in summary}
    threshold = fmt_ms(params["threshold_ms"])
    interval = params["interval_s"]
    if not runs:
        return [untestable("faulty-flagged", "The result holds no run.")]
    items: list[Finding] = []

    injected = [(name, agent) for name, r in runs.items() for agent in r["injected_faulty"]]
    flagged = [(name, agent) for name, agent in injected if agent in runs[name]["flagged"]]
    beyond = sum(n for r in runs.values() for n in r["rounds_beyond_threshold"].values())
    beyond_flagged = sum(n for r in runs.values() for n in r["rounds_beyond_flagged"].values())
    figures = {"flagged at the last round": fmt_share(len(flagged), len(injected)),
               "rounds a faulty clock was truly past the threshold, flagged in":
                   fmt_share(beyond_flagged, beyond),
               "time to flag, from the agents' start": _detections(runs, interval)}
    items.append(claim(
        "faulty-flagged", bool(injected) and len(flagged) == len(injected)
        and beyond_flagged == beyond,
        f"The agents' majority vote flagged each injected faulty clock, in every round in "
        f"which it was truly more than {threshold} off.",
        f"The agents' majority vote missed an injected faulty clock in at least one round in "
        f"which it was truly more than {threshold} off.", **figures))

    false_flags = _total(runs, "false_positives")
    judgements = _total(runs, "cluster_judgements_of_correct")
    items.append(claim(
        "correct-not-flagged", false_flags == 0,
        "The majority vote flagged no correct clock.",
        "The majority vote flagged correct clocks.",
        **{"correct clock × round, flagged": fmt_share(false_flags, judgements),
           "single agents' views, flagged": fmt_share(
               _total(runs, "observer_false_positives"),
               _total(runs, "observer_judgements_of_correct"))}))

    lags = {(name, agent): (r["detection_s"].get(agent), crossed)
            for name, r in runs.items() for agent, crossed in r["crossing_s"].items()}
    figures = {f"{LABELS[name]}, {agent}": f"crossed {fmt_seconds(crossed)}, flagged "
               + ("never" if flagged_at is None else fmt_within(flagged_at, interval))
               for (name, agent), (flagged_at, crossed) in lags.items()}
    items.append(claim(
        "drift-flagged-at-crossing",
        None if not lags else all(f is not None and -0.1 <= f - c <= interval + 0.1
                                  for f, c in lags.values()),
        f"A drifting clock was flagged within one round ({fmt_seconds(interval)}) of its "
        f"true offset crossing the {threshold} threshold, not before.",
        f"A drifting clock was flagged before its true offset crossed the {threshold} "
        f"threshold, or more than one round ({fmt_seconds(interval)}) after.",
        "No run had a drifting clock that started inside the threshold.", **figures))

    checked, within = _total(runs, "bound_checked"), _total(runs, "bound_within")
    unchecked = _total(runs, "bound_unchecked")
    worst = max((r["max_checked_error_ms"] for r in runs.values()
                 if r["max_checked_error_ms"] is not None), default=None)
    rtt = max((r["max_round_trip_ms"] for r in runs.values()
               if r["max_round_trip_ms"] is not None), default=None)
    figures = {"estimates within their bound": fmt_share(within, checked),
               "largest error checked": fmt_ms(worst),
               "longest round trip": fmt_ms(rtt)}
    if unchecked:
        biased = max((r["unchecked_max_error_ms"] for r in runs.values()
                      if r["unchecked_max_error_ms"] is not None), default=None)
        figures["left out (drifting clocks, ground truth modelled)"] = (
            f"{fmt_count(unchecked)}, errors up to {fmt_ms(biased)}")
    figures["an estimate's error bound"] = (
        "half the probe's round trip, plus half the majority interval's width when the "
        "observer was not in it, plus a drifting observer's own drift over the round")
    items.append(claim(
        "estimates-within-bound", None if checked == 0 else within == checked,
        "Each estimate of a clock's offset from the majority was within its error bound: half "
        "the probe's round trip, widened for an observer outside the majority or drifting.",
        "Some estimates of a clock's offset from the majority were outside their error bound: "
        "half the probe's round trip, widened for an observer outside the majority or "
        "drifting.",
        "No estimate has an exact ground truth in this run.", **figures))

    truths = [r["ground_truth"] for r in runs.values()]
    measured = sum(t["measured"] for t in truths)
    total = sum(t["agents"] for t in truths)
    ahead = {f"{LABELS[name]}, {agent}": fmt_ms(value) for name, r in runs.items()
             for agent, value in r["ground_truth"]["ahead_at_start_ms"].items()}
    model = max((t["max_model_error_ms"] for t in truths
                 if t["max_model_error_ms"] is not None), default=None)
    figures = {"agents that read the real clock at start": fmt_share(measured, total),
               "rate model vs the end-of-run reading, worst": fmt_ms(model)}
    figures.update({f"faked clock past its injected offset at start ({k})": v
                    for k, v in ahead.items()})
    items.append(claim(
        "ground-truth-measured",
        None if measured < total else model is None or model <= MODEL_TOLERANCE_S * 1e3,
        "Each faked clock's ground truth was measured: the agent read its clock and the real "
        "one at one moment at its start, and the injected rate predicted the same reading at "
        f"its end to within {fmt_ms(MODEL_TOLERANCE_S * 1e3)}.",
        "The agents' readings of their clock and the real one do not fit the injected fault: "
        f"the rate predicted the end-of-run reading with an error above "
        f"{fmt_ms(MODEL_TOLERANCE_S * 1e3)}.",
        "This run's agents did not read the real clock at their start (an older agent), so a "
        "drifting clock's ground truth is modelled as started at its first reading less the "
        "offset; that ignores the start-up, while the clock already ran fast, and biases the "
        "drifting clocks' errors, which are therefore not checked against their bound.",
        **figures))

    pairs = _total(runs, "correct_pairs")
    pairs_within = _total(runs, "correct_pairs_within")
    largest = max((r["correct_pair_max_ms"] for r in runs.values()
                   if r["correct_pair_max_ms"] is not None), default=None)
    items.append(claim(
        "correct-agree-trivially", None if pairs == 0 else pairs_within == pairs,
        "The correct agents agreed with one another to within each probe's half round trip; "
        "they all read this machine's one kernel clock, so this tests the probes, not "
        "independent clocks.",
        "Some correct agents disagreed by more than the probe's half round trip although they "
        "all read this machine's one kernel clock: the probes, not the clocks, were off.",
        "No run had two correct agents probing each other.",
        **{"estimates between correct agents within half the round trip":
           fmt_share(pairs_within, pairs),
           "largest estimated offset between two correct agents": fmt_ms(largest)}))

    items.extend(_comparisons(runs, params, items))
    return name_all(items, COURSE_NAMES)


def _comparisons(runs: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any],
                 measured: Sequence[Finding]) -> list[Finding]:
    """The course report's proposal, and NTP's intersection algorithm, against the run."""
    found = {f.id: f for f in measured}
    detected, clean = found["faulty-flagged"], found["correct-not-flagged"]
    threshold = fmt_ms(params["threshold_ms"])
    items = [comparison(
        "course-exchange-detects", "course", bool(detected.holds and clean.holds),
        f"As the course report proposes, a {threshold} threshold on exchanged timestamps "
        "found the faulty clocks and no correct one, via a majority vote it does not "
        "describe.",
        "Exchanging timestamps and comparing offsets with a threshold, as the course report "
        "proposes, did not separate the faulty clocks from the correct ones here.",
        **detected.figures, **clean.figures,
        **{"decided by": "a majority vote over Marzullo intersections, which the course "
                         "report does not describe"})]

    by_correct = _total(runs, "pairwise_by_correct_flagged")
    by_faulty = _total(runs, "pairwise_by_faulty_flagged")
    judged = _total(runs, "pairwise_by_correct") + _total(runs, "pairwise_by_faulty")
    items.append(comparison(
        "course-pairwise-rule", "course", None if judged == 0 else by_correct + by_faulty == 0,
        "The course report's rule as stated, calling a peer faulty when its measured offset "
        "exceeds the threshold, blamed no correct clock.",
        "The course report's rule as stated, calling a peer faulty when its measured offset "
        "exceeds the threshold, blamed correct clocks too: an offset cannot say which end is "
        "wrong.",
        "No correct clock was probed in this run.",
        **{"correct peers called faulty, by correct nodes": fmt_share(
               by_correct, _total(runs, "pairwise_by_correct")),
           "correct peers called faulty, by faulty nodes": fmt_share(
               by_faulty, _total(runs, "pairwise_by_faulty"))}))

    exact = sum(1 for r in runs.values() if r["exact"])
    items.append(comparison(
        "published-marzullo", "published", exact == len(runs),
        "As RFC 5905's intersection (Marzullo) algorithm intends, the majority's interval "
        "separated the falsetickers from the truechimers: the last round flagged exactly the "
        "injected clocks in each run.",
        "The majority's interval did not separate the falsetickers from the truechimers in "
        "every run: the last round's flags differed from the injected clocks.",
        **{"runs flagged exactly": fmt_share(exact, len(runs))}))
    return items


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course-exchange-detects": ("timestamp exchange, 500 ms threshold",
                                "found the faulty clocks, no correct one",
                                "missed a faulty clock or blamed a correct one",
                                "no faulty clock to find"),
    "course-pairwise-rule": ("pairwise rule", "blamed no correct clock",
                             "also blames correct clocks", "no pair judged"),
}
