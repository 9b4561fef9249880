"""Q2 ``conflicts`` analysis: lost updates of naive get+put vs compare-and-swap.

Pure: samples in, summary and findings out. The samples of each method ("naive", "cas")
are the experiment's counts (``acknowledged``, ``unknown``, ``retries``, ``final_value``,
``elapsed_s``) and, per acknowledged write sorted by the value written, ``values`` and the
``revisions`` etcd gave them. Results recorded before a field existed still summarise:
the missing figure is None and the finding that needs it says it cannot be tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from etcdlab.figures.stats import binomial_interval
from etcdlab.figures.units import fmt_count, fmt_factor, fmt_percent, fmt_rate, fmt_share
from etcdlab.questions.findings import Asked, Finding, claim, comparison, name_all, untestable

METHODS = ("naive", "cas")

# The full run's parameters (etcdlab.questions.q02_conflicts.run' defaults); --quick lowers
# the increments. The question fixes no numbers itself: these are what it is answered with.
ASKED = (
    Asked("workers", 8, "Concurrent workers", fmt_count),
    Asked("increments", 200, "Increments per worker", fmt_count),
)

# etcd's performance docs (etcd 3.2 on GCE, 3 × 8 vCPU): write to the leader, one
# connection, one client.
PUBLISHED_WRITE_QPS = 583.0


def _writes(run: Mapping[str, Any]) -> dict[str, Any]:
    """Checks over the per-write revisions of one method; None where they were not recorded."""
    revisions: Sequence[int] | None = run.get("revisions")
    values: Sequence[int] | None = run.get("values")
    if not revisions:
        return {"writes_recorded": None, "distinct_revisions": None, "distinct_values": None,
                "out_of_order": None, "last_value": None, "last_revision": None}
    if values is not None and len(values) != len(revisions):
        values = None  # not aligned with the revisions: unusable
    out_of_order = sum(1 for a, b in pairwise(revisions) if b <= a)
    last = max(range(len(revisions)), key=lambda i: revisions[i])
    return {
        "writes_recorded": len(revisions),
        "distinct_revisions": len(set(revisions)),
        "distinct_values": len(set(values)) if values is not None else None,
        # In value order, a revision that is not above the one before: only meaningful
        # when the values are distinct (CAS), see ``revisions_strictly_increasing``.
        "out_of_order": out_of_order,
        "last_value": values[last] if values is not None else None,
        "last_revision": revisions[last],
    }


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Lost updates, retries, throughput and the revision-order check, per method.

    ``lost_updates`` = acknowledged − final value. A write whose outcome is unknown (timed
    out) may still have been applied and raised the final value, so with unknown outcomes
    this is a lower bound of the acknowledged increments lost.
    """
    summary: dict[str, Any] = {}
    for name in METHODS:
        run = samples[name]
        acknowledged, final = run["acknowledged"], run["final_value"]
        elapsed = run.get("elapsed_s")
        retries = run.get("retries")
        summary[name] = {
            "acknowledged": acknowledged,
            "final_value": final,
            "lost_updates": acknowledged - final,
            "unknown": run.get("unknown"),
            "retries": retries,
            "retries_per_write": retries / acknowledged
            if retries is not None and acknowledged else None,
            "elapsed_s": elapsed,
            "ops_per_s": acknowledged / elapsed if elapsed else None,
            **_writes(run),
        }
    cas = summary["cas"]
    values = samples["cas"].get("values")
    if cas["writes_recorded"] is None:
        summary["revisions_strictly_increasing"] = None
    else:
        distinct_values = values is None or len(set(values)) == len(values)
        summary["revisions_strictly_increasing"] = cas["out_of_order"] == 0 and distinct_values
    workers, increments = params.get("workers"), params.get("increments")
    summary["attempted"] = workers * increments if workers and increments else None
    return summary


def _loss_interval(lost: int, acknowledged: int) -> str:
    """The exact 95 % interval of the share lost (helper: units has it only with "k of n")."""
    low, high = binomial_interval(lost, acknowledged)
    return f"{fmt_percent(low)} – {fmt_percent(high)}"


def _naive_lost(naive: Mapping[str, Any]) -> Finding:
    acknowledged, lost = naive["acknowledged"], naive["lost_updates"]
    if not acknowledged:
        return untestable(
            "naive_lost_updates",
            "The naive loop had no acknowledged increment, so there is nothing to "
            "count lost.")
    figures = {"timed out (outcome unknown)": fmt_count(naive["unknown"])}
    if lost > 0:
        figures = {"lost": f"{fmt_count(lost)} of {fmt_count(acknowledged)}",
                   "95 % CI of the share lost": _loss_interval(lost, acknowledged), **figures}
    return claim(
        "naive_lost_updates", lost > 0,
        f"Naive get-then-put lost {fmt_count(lost)} of {fmt_count(acknowledged)} acknowledged "
        f"increments ({fmt_percent(lost / acknowledged)}): the counter ended at "
        f"{fmt_count(naive['final_value'])} although etcd acknowledged each of those puts.",
        "Naive get-then-put lost no increment in this run: the counter ended at "
        f"{fmt_count(naive['final_value'])} for {fmt_count(acknowledged)} acknowledged "
        "increments, so no two read-modify-writes overlapped; the race was present but not "
        "exposed.",
        **figures)


def _cas_lost_none(cas: Mapping[str, Any]) -> Finding:
    acknowledged, final, unknown = cas["acknowledged"], cas["final_value"], cas["unknown"]
    if not acknowledged:
        return untestable(
            "cas_lost_none",
            "The compare-and-swap loop had no acknowledged increment, so there is "
            "nothing to count lost.")
    # A timed-out CAS may have been applied: the final value may exceed the acknowledged
    # count by at most the unknown outcomes, never fall below it.
    held = acknowledged <= final <= acknowledged + (unknown or 0)
    lost = max(acknowledged - final, 0)
    return claim(
        "cas_lost_none", held,
        f"Compare-and-swap on mod_revision lost none of the {fmt_count(acknowledged)} "
        f"acknowledged increments: the counter ended at {fmt_count(final)}.",
        f"The compare-and-swap loop ended at {fmt_count(final)} for {fmt_count(acknowledged)} "
        "acknowledged increments, which a correct CAS cannot do: the experiment or the "
        "cluster needs a closer look.",
        lost=fmt_share(lost, acknowledged),
        **{"timed out (outcome unknown)": fmt_count(unknown)})


def _last_write_wins(naive: Mapping[str, Any]) -> Finding:
    recorded, last_value = naive["writes_recorded"], naive["last_value"]
    if recorded is None or last_value is None:
        return untestable(
            "last_write_wins",
            "This result has no per-write values and revisions of the naive loop, so "
            "which write won cannot be checked.")
    applied = naive["distinct_revisions"] == recorded and recorded == naive["acknowledged"]
    held = applied and last_value == naive["final_value"]
    return claim(
        "last_write_wins", held,
        "The last write won: each acknowledged naive put got a revision of its own, and the "
        f"final value, {fmt_count(naive['final_value'])}, is the one written at the highest "
        "revision: etcd applied each put over the one before.",
        "The naive loop's final value is not simply the last applied put's: "
        f"{fmt_count(naive['final_value'])} against {fmt_count(last_value)} written at the "
        "highest revision, or some acknowledged puts share a revision.",
        **{"puts with a revision of their own": fmt_share(naive["distinct_revisions"],
                                                          naive["acknowledged"]),
           "distinct values written": f"{fmt_count(naive['distinct_values'])} by "
                                      f"{fmt_count(recorded)} puts",
           "highest revision": fmt_count(naive["last_revision"]),
           "value written at it": fmt_count(last_value),
           "final value": fmt_count(naive["final_value"])})


def _cas_retries(cas: Mapping[str, Any]) -> Finding:
    retries, acknowledged = cas["retries"], cas["acknowledged"]
    if retries is None or not acknowledged:
        return untestable("cas_retries",
                           "This result does not record the compare-and-swap retries.")
    per = f"{retries / acknowledged:.2f}"
    return claim(
        "cas_retries", retries > 0,
        f"Compare-and-swap paid with {fmt_count(retries)} retries ({per} per increment): "
        "each was a transaction etcd refused because another worker had written the key "
        "since it was read.",
        "Compare-and-swap needed no retry in this run: no two transactions conflicted, so "
        "the run does not show what conflicts cost.",
        acknowledged=fmt_count(acknowledged))


def _revision_order(cas: Mapping[str, Any], increasing: bool | None) -> Finding:
    recorded = cas["writes_recorded"]
    if increasing is None or recorded is None:
        return untestable(
            "cas_revision_order",
            "This result has no revisions of the compare-and-swap writes, so their "
            "order cannot be checked.")
    pairs = max(recorded - 1, 0)
    return claim(
        "cas_revision_order", increasing,
        "The acknowledged CAS writes got distinct revisions, in strictly increasing order "
        f"({fmt_count(recorded)} revisions): sorted by the value written, each increment "
        "came after the one it read.",
        "The revisions of the acknowledged CAS writes were not strictly increasing in the "
        "order of the values written, or two writes wrote the same value: that contradicts "
        "etcd's single ordered log.",
        **{"consecutive pairs out of order": fmt_share(cas["out_of_order"], pairs)
           if pairs else fmt_count(0)})


def _throughput(naive: Mapping[str, Any], cas: Mapping[str, Any]) -> Finding:
    naive_rate, cas_rate = naive["ops_per_s"], cas["ops_per_s"]
    if not naive_rate or not cas_rate:
        return untestable(
            "cas_slower",
            "This result lacks an elapsed time of one method, so the throughputs "
            "cannot be compared.")
    return claim(
        "cas_slower", cas_rate < naive_rate,
        "Compare-and-swap completed fewer acknowledged increments per second than the naive "
        f"loop: {fmt_rate(cas_rate)} against {fmt_rate(naive_rate)}.",
        "Compare-and-swap completed at least as many acknowledged increments per second as "
        f"the naive loop in this run: {fmt_rate(cas_rate)} against {fmt_rate(naive_rate)}.",
        **{"CAS ÷ naive": fmt_factor(cas_rate / naive_rate),
           "n": "one timed run of each method, so no interval"})


def _course_last_write(last: Finding) -> Finding:
    return comparison(
        "course_last_committed_prevails", "course", last.holds,
        "The course report's \"a última operação commitada prevaleça\" (the last committed "
        "operation prevails) agrees with the run: the final value was the last applied "
        "put's.",
        "The course report's \"a última operação commitada prevaleça\" is contradicted: the "
        "final value was not the last applied put's.",
        "Whether the last committed operation prevails cannot be checked: this result has "
        "no per-write revisions.")


def _course_ordering(naive: Mapping[str, Any], cas: Mapping[str, Any],
                     naive_lost: Finding, cas_lost: Finding) -> Finding:
    figures = {"naive lost": fmt_share(max(naive["lost_updates"], 0), naive["acknowledged"])
               if naive["acknowledged"] else fmt_count(0),
               "CAS lost": fmt_share(max(cas["lost_updates"], 0), cas["acknowledged"])
               if cas["acknowledged"] else fmt_count(0)}
    remedy = (" A CAS on mod_revision, not in the course report, kept them." if cas_lost.holds
              else "")
    return comparison(
        "course_ordering_resolves", "course",
        None if naive_lost.holds is None else not naive_lost.holds,
        "Raft's ordering alone, the course report's answer, is not contradicted: the naive "
        "read-modify-write lost no increment here (the race was not exposed).",
        "Raft's ordering alone lost concurrent increments: it orders writes without merging "
        "them." + remedy,
        naive_lost.why_unknown,
        **figures)


def _published(naive: Mapping[str, Any], params: Mapping[str, Any]) -> Finding:
    rate = naive["ops_per_s"]
    if not rate:
        return untestable(
            "published_write_qps",
            "This result lacks the naive loop's elapsed time, so its rate "
            "cannot be set beside the published one.", "published")
    ratio = rate / PUBLISHED_WRITE_QPS
    workers = (f"{fmt_count(params['workers'])} workers" if params.get("workers")
               else "concurrent workers")
    # Not like for like: the published figure is one client's plain puts on three
    # dedicated 8-vCPU machines, the naive loop a read and a write per increment by several
    # workers on the lab's shared machine; a band wide enough to absorb that difference
    # (a factor of 10 either way) could not fail, so the run does not judge it.
    return comparison(
        "published_write_qps", "published", None,
        f"The naive loop's {fmt_rate(rate)} matches the published {PUBLISHED_WRITE_QPS:.0f} "
        "QPS.",
        f"The naive loop's {fmt_rate(rate)} differs from the published "
        f"{PUBLISHED_WRITE_QPS:.0f} QPS.",
        f"The published {PUBLISHED_WRITE_QPS:.0f} QPS cannot be tested in this run: it is "
        f"one client's plain puts on dedicated machines, not {workers}' read-and-write "
        "increments on one shared machine.",
        **{"this run ÷ published": fmt_factor(ratio),
           "published": f"{PUBLISHED_WRITE_QPS:.0f} QPS: one client's plain puts, three "
                        "dedicated 8-vCPU machines",
           "this run": f"{fmt_rate(rate)}: {workers}, each increment a read and a write, the "
                       "lab's shared machine"})


def findings(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[Finding]:
    """The claims of Q2, the answer first: naive loses increments, CAS none, at a price."""
    naive, cas = summary["naive"], summary["cas"]
    naive_lost, cas_lost = _naive_lost(naive), _cas_lost_none(cas)
    last = _last_write_wins(naive)
    return name_all([
        naive_lost,
        cas_lost,
        last,
        _cas_retries(cas),
        _revision_order(cas, summary["revisions_strictly_increasing"]),
        _throughput(naive, cas),
        _course_last_write(last),
        _course_ordering(naive, cas, naive_lost, cas_lost),
        _published(naive, params),
    ], COURSE_NAMES)


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course_last_committed_prevails": ("last committed write prevails",
                                       "the final value was the last applied put's",
                                       "the final value was not the last put's",
                                       "no per-write revisions recorded"),
    "course_ordering_resolves": ("Raft's ordering resolves concurrent updates",
                                 "no increment lost here", "lost increments: needs a CAS",
                                 "losses not recorded"),
}
