"""Q4 ``lamport`` analysis: the checks of the message log and of the shared clock key.

Pure: samples in, summary and findings out. ``samples["messages"]["events"]`` is the log
of every event (``process``, ``seq``, ``kind`` local/send/receive, ``clock``, ``msg``,
``outcome`` of a send, ``t`` seconds on the one monotonic clock the processes' threads
share); ``samples["shared_key"][mode]`` ("naive", "cas") holds the acknowledged writes of
the course report's shared "global clock" key (``revision``, ``read_mod_revision``,
``clock``), ``unknown``, ``retries`` and the ``final`` value.

The causal checks use the vector clocks of :mod:`etcdlab.figures.clocks` (pure), computed from
the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from etcdlab.figures.clocks import happened_before, total_order_ties, vector_clocks
from etcdlab.figures.units import fmt_count, fmt_share
from etcdlab.questions.findings import (
    Asked,
    Finding,
    claim,
    comparison,
    name_all,
    named,
    untestable,
)

MODES = ("naive", "cas")

# The full run's parameters (etcdlab.questions.q04_lamport.run's defaults); --quick lowers the
# steps and the shared-key updates.
ASKED = (
    Asked("processes", 3, "Processes", fmt_count),
    Asked("steps", 60, "Events per process", fmt_count),
    Asked("shared_updates", 200, "Updates of the shared key per process", fmt_count),
)


# -- the causal checks -------------------------------------------------------------------------

def _pair_checks(events: Sequence[Mapping[str, Any]]) -> dict[str, int | None]:
    """Every pair of events: causal (and violating C(a) < C(b)) or concurrent; of the
    concurrent ones, those with equal clocks and those whose (C, id) order is the opposite
    of the real-time order (None when the log has no times)."""
    vectors = vector_clocks(events)
    timed = all(e.get("t") is not None for e in events)
    stamped = [(vectors[(e["process"], e["seq"])], (e["clock"], e["process"]),
                e.get("t")) for e in events]
    causal = violations = concurrent = equal = against = ordered_in_time = 0
    for i, (vector_a, stamp_a, t_a) in enumerate(stamped):
        for vector_b, stamp_b, t_b in stamped[i + 1:]:
            if happened_before(vector_a, vector_b):
                causal += 1
                violations += stamp_a[0] >= stamp_b[0]
            elif happened_before(vector_b, vector_a):
                causal += 1
                violations += stamp_b[0] >= stamp_a[0]
            else:
                concurrent += 1
                equal += stamp_a[0] == stamp_b[0]
                if timed and t_a != t_b:
                    ordered_in_time += 1
                    against += (stamp_a < stamp_b) != (t_a < t_b)
    return {"causal_pairs": causal, "violations": violations, "concurrent_pairs": concurrent,
            "concurrent_equal_clock": equal,
            "concurrent_timed": ordered_in_time if timed else None,
            "concurrent_against_real_time": against if timed else None}


def lost_updates(writes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Acknowledged writes of the shared key that the next write overwrote unread.

    In revision order, write k + 1 should have read write k (its read mod_revision is
    k's revision); when it read an older one, write k's update was lost. A write whose
    clock is not above its predecessor's is a regression of the "global clock".
    """
    ordered = sorted(writes, key=lambda w: w["revision"])
    lost = regressions = 0
    for previous, current in pairwise(ordered):
        lost += current["read_mod_revision"] < previous["revision"]
        regressions += current["clock"] <= previous["clock"]
    clocks_written = [w["clock"] for w in ordered]
    return {"lost": lost, "regressions": regressions,
            "duplicate_clocks": len(clocks_written) - len(set(clocks_written))}


# -- summary -----------------------------------------------------------------------------------

def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The checks of the message log and the shared key's lost updates."""
    events = samples["messages"]["events"]
    sends = {e["msg"]: e for e in events if e["kind"] == "send"}
    receives = [e for e in events if e["kind"] == "receive"]
    message_violations = sum(1 for r in receives
                             if r["msg"] in sends and sends[r["msg"]]["clock"] >= r["clock"])
    by_process: dict[int, list[Mapping[str, Any]]] = {}
    for event in events:
        by_process.setdefault(event["process"], []).append(event)
    order_violations = sum(
        1 for log in by_process.values()
        for a, b in pairwise(sorted(log, key=lambda e: e["seq"]))
        if b["clock"] <= a["clock"]
    )
    check = _pair_checks(events)
    shared: dict[str, Any] = {}
    for mode in MODES:
        record = samples["shared_key"][mode]
        lost = lost_updates(record["writes"])
        shared[f"{mode}_lost_updates"] = lost["lost"]
        shared[f"{mode}_regressions"] = lost["regressions"]
        shared[f"{mode}_duplicate_clocks"] = lost["duplicate_clocks"]
        shared[f"{mode}_acknowledged"] = len(record["writes"])
        shared[f"{mode}_unknown"] = record["unknown"]
        shared[f"{mode}_final_clock"] = record["final"]["clock"]
    shared["cas_retries"] = samples["shared_key"]["cas"]["retries"]
    received = {r["msg"] for r in receives}
    return {
        "processes": len(by_process),
        "events": len(events),
        "event_pairs": len(events) * (len(events) - 1) // 2,
        "messages": len(sends),
        "delivered": sum(1 for r in receives if r["msg"] in sends),
        "undelivered": len(set(sends) - received),
        "unknown_sends": sum(1 for s in sends.values() if s.get("outcome") == "unknown"),
        "causal_pairs": check["causal_pairs"],
        "clock_condition_violations": check["violations"],
        "message_violations": message_violations,
        "process_order_violations": order_violations,
        "concurrent_pairs": check["concurrent_pairs"],
        "concurrent_equal_clock": check["concurrent_equal_clock"],
        "concurrent_timed": check["concurrent_timed"],
        "concurrent_against_real_time": check["concurrent_against_real_time"],
        "total_order_ties": total_order_ties(events),
        "max_clock": max((e["clock"] for e in events), default=0),
        "shared_key": shared,
    }


# -- findings ----------------------------------------------------------------------------------

def _clock_condition(summary: Mapping[str, Any]) -> Finding:
    causal, violations = summary["causal_pairs"], summary["clock_condition_violations"]
    if not causal:
        return untestable("clock_condition",
                           "The log has no causally related pair of events, so the clock "
                           "condition was not tested.")
    # IR1 and IR2 make C(a) < C(b) for every a → b by construction: the check covers every
    # causally related pair of the log (no sample, so no sampling bound) and so tests this
    # lab's implementation of the rules, not chance.
    return named(claim(
        "clock_condition", violations == 0,
        f"Yes for causal order: C(a) < C(b) held for all {fmt_count(causal)} causally related "
        "pairs a → b of processes talking only through etcd, as IR1 and IR2 guarantee by "
        "construction; checking every pair tests the implementation.",
        f"No: a → b but C(a) ≥ C(b) in {fmt_count(violations)} of {fmt_count(causal)} "
        "causally related pairs, which IR1 and IR2 rule out by construction: the "
        "implementation or the log is at fault.",
        **{"violations": f"{fmt_count(violations)} of {fmt_count(causal)} pairs (every pair "
                         "checked)",
           "of them send → receive": fmt_count(summary["message_violations"]),
           "of them within one process": fmt_count(summary["process_order_violations"]),
           "log": f"{fmt_count(summary['events'])} events, {fmt_count(summary['processes'])} "
                  "processes talking only through etcd"}),
        "clock condition",
        f"Causal order kept: C(a) < C(b) for all {fmt_count(causal)} causally related pairs "
        f"of {fmt_count(summary['events'])} events ({fmt_count(summary['processes'])} "
        "processes via etcd), as IR1 and IR2 guarantee.",
        f"Causal order broken in {fmt_count(violations)} of {fmt_count(causal)} pairs, which "
        "IR1 and IR2 rule out: an implementation fault.")


def _delivered(summary: Mapping[str, Any]) -> Finding:
    messages, undelivered = summary["messages"], summary["undelivered"]
    if not messages:
        return untestable("messages_delivered",
                           "No process sent a message, so etcd carried nothing to check.")
    arrived = messages - undelivered
    return claim(
        "messages_delivered", undelivered == 0,
        f"etcd was the processes' only channel and carried their messages: "
        f"{fmt_share(arrived, messages)} sent messages reached their receiver through a "
        "watch on its inbox.",
        f"{fmt_share(undelivered, messages)} sent messages never reached their receiver "
        "within the drain timeout, so those receive events are missing from the log.",
        **{"sends with an unknown outcome": fmt_count(summary["unknown_sends"])})


def _total_order(summary: Mapping[str, Any]) -> Finding:
    pairs, ties = summary["event_pairs"], summary["total_order_ties"]
    if not pairs:
        return untestable("total_order", "The log has fewer than two events.")
    # (C, id) cannot tie by construction (ids differ, a process's C strictly increases):
    # every pair is checked, so no sampling bound.
    return claim(
        "total_order", ties == 0,
        f"The (C, id) stamps were unique, as they are by construction: none of the "
        f"{fmt_count(pairs)} pairs of events tied, so sorting by (C, id) gives one total "
        "order, the same wherever these events are sorted.",
        f"{fmt_count(ties)} of {fmt_count(pairs)} pairs of events shared a (C, id) stamp, "
        "which distinct ids rule out: (C, id) is not a total order of this log.")


def _concurrent_by_id(summary: Mapping[str, Any]) -> Finding:
    concurrent, equal = summary["concurrent_pairs"], summary["concurrent_equal_clock"]
    if not concurrent:
        return untestable("concurrent_ordered_by_id",
                           "The log has no concurrent pair of events, so the tie-break by "
                           "process id was not exercised.")
    return claim(
        "concurrent_ordered_by_id", equal > 0,
        f"The process id alone decided the order of {fmt_share(equal, concurrent)} "
        "concurrent pairs, whose clocks were equal.",
        f"No concurrent pair had equal clocks ({fmt_share(equal, concurrent)}), so the "
        "tie-break by process id decided nothing in this run.")


def _concurrent_real_time(summary: Mapping[str, Any]) -> Finding:
    timed, against = summary.get("concurrent_timed"), summary.get("concurrent_against_real_time")
    if timed is None:
        return untestable("concurrent_vs_real_time",
                           "This log has no event times, so the (C, id) order of concurrent "
                           "events cannot be set against real time.")
    if not timed:
        return untestable("concurrent_vs_real_time",
                           "No concurrent pair of events has two distinct times, so none "
                           "can be set against real time.")
    return claim(
        "concurrent_vs_real_time", against > 0,
        f"For concurrent events (C, id) is not the real-time order: it put {fmt_count(against)} "
        f"of {fmt_count(timed)} concurrent pairs the other way round from the order in which "
        "they were logged.",
        f"(C, id) put none of {fmt_count(timed)} concurrent pairs the other way round from "
        "real time: in this run it matched the order in which they were logged, though "
        "Lamport's rules do not promise that.",
        **{"the other way round from real time": fmt_share(against, timed),
           "timed by": "the one monotonic clock the processes' threads share"})


def _shared_naive(shared: Mapping[str, Any]) -> Finding:
    acknowledged, lost = shared["naive_acknowledged"], shared["naive_lost_updates"]
    if acknowledged < 2:
        return untestable("shared_key_naive_loses",
                           "Fewer than two plain writes of the shared key were acknowledged, "
                           "so none could overwrite another.")
    return claim(
        "shared_key_naive_loses", lost > 0,
        f"Without a transaction the shared \"global clock\" key lost updates: "
        f"{fmt_count(lost)} of {fmt_count(acknowledged)} acknowledged updates were "
        f"overwritten by a writer that had not read them, and "
        f"{fmt_count(shared['naive_duplicate_clocks'])} clock values were written twice.",
        f"Without a transaction the shared key lost no update in this run "
        f"({fmt_share(lost, acknowledged)}): each write read the one before it, so the race "
        "was present but not hit.",
        **{"lost": fmt_share(lost, acknowledged),
           "clock went back or stood still": fmt_share(shared["naive_regressions"],
                                                       acknowledged - 1),
           "timed out (outcome unknown)": fmt_count(shared["naive_unknown"])})


def _shared_cas(shared: Mapping[str, Any]) -> Finding:
    acknowledged = shared["cas_acknowledged"]
    if acknowledged < 2:
        return untestable("shared_key_cas_keeps",
                           "Fewer than two compare-and-swap writes of the shared key were "
                           "acknowledged, so none could overwrite another.")
    lost, duplicates = shared["cas_lost_updates"], shared["cas_duplicate_clocks"]
    regressions = shared["cas_regressions"]
    return claim(
        "shared_key_cas_keeps", lost == 0 and duplicates == 0 and regressions == 0,
        f"With a compare-and-swap on the key's mod_revision the shared key lost none of "
        f"{fmt_count(acknowledged)} acknowledged updates and its clock rose with each write, "
        f"at the cost of {fmt_count(shared['cas_retries'])} retries.",
        f"Even with a compare-and-swap the shared key lost {fmt_count(lost)} updates, "
        f"repeated {fmt_count(duplicates)} clock values or went back {fmt_count(regressions)} "
        "times, which a correct CAS cannot do: the experiment needs a closer look.",
        **{"lost": fmt_share(lost, acknowledged),
           "clock went back or stood still": fmt_share(regressions, acknowledged - 1),
           "timed out (outcome unknown)": fmt_count(shared["cas_unknown"])})


def _course_rules(condition: Finding, summary: Mapping[str, Any]) -> Finding:
    causal, violations = summary["causal_pairs"], summary["clock_condition_violations"]
    return comparison(
        "course_per_process_rules", "course", condition.holds,
        "The course report's per-process rules (increment C_i; on a read, max(C_i, "
        "received) + 1), which are Lamport's IR1 and IR2, kept causal order in this run.",
        "The course report's per-process rules, as this lab implements them, broke causal "
        f"order in {fmt_count(violations)} of {fmt_count(causal)} causally related pairs.",
        condition.why_unknown)


def _course_shared_key(naive: Finding, cas: Finding, shared: Mapping[str, Any]) -> Finding:
    repeated = (" and repeated values"
                if shared["naive_duplicate_clocks"] else "")
    remedy = (" A CAS on its mod_revision, not in the course report, kept every update."
              if cas.holds else "")
    return comparison(
        "course_shared_key", "course",
        None if naive.holds is None else not naive.holds,
        "Read and written back without a transaction, as the course report describes, the "
        "shared key lost no update in this run: the race was present but not hit.",
        "Its weak point: without a transaction the \"global\" clock lost updates" + repeated
        + "." + remedy,
        naive.why_unknown,
        **{"without a transaction, lost": fmt_share(shared["naive_lost_updates"],
                                                    shared["naive_acknowledged"])
           if shared["naive_acknowledged"] else fmt_count(0),
           "with compare-and-swap, lost": fmt_share(shared["cas_lost_updates"],
                                                    shared["cas_acknowledged"])
           if shared["cas_acknowledged"] else fmt_count(0),
           "clock values written twice without a transaction":
               fmt_count(shared["naive_duplicate_clocks"])})


def _published(condition: Finding, order: Finding) -> Finding:
    if condition.holds is None or order.holds is None:
        return untestable("published_lamport_1978",
                           condition.why_unknown or order.why_unknown, "published")
    return comparison(
        "published_lamport_1978", "published", condition.holds and order.holds,
        "This run agrees with Lamport (1978): clocks following IR1 and IR2 satisfied the "
        "clock condition, and (C, process id) ordered the events totally.",
        "This run disagrees with Lamport (1978)'s proved result, so the implementation or "
        "the log is at fault: the clock condition failed or (C, process id) had ties.")


def findings(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[Finding]:
    """The claims of Q4, the answer (the clock condition) first."""
    shared = summary["shared_key"]
    condition, order = _clock_condition(summary), _total_order(summary)
    naive, cas = _shared_naive(shared), _shared_cas(shared)
    return name_all([
        condition,
        _delivered(summary),
        order,
        _concurrent_by_id(summary),
        _concurrent_real_time(summary),
        naive,
        cas,
        _course_rules(condition, summary),
        _course_shared_key(naive, cas, shared),
        _published(condition, order),
    ], COURSE_NAMES)


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course_per_process_rules": ("per-process rules (IR1, IR2)", "kept causal order",
                                 "broke causal order", "no causally related pair"),
    "course_shared_key": ("one shared clock key", "lost no update (race not hit)",
                          "lost updates without a transaction", "not measured"),
}
