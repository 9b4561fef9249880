"""Q3 ``partition`` in the report: chart and section data from the saved samples."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.experiments.partition import (
    MINORITY_OPS,
    SCENARIOS,
    is_stale,
    write_applied_after_heal,
)
from etcdlab.results import Result
from etcdlab.sections.common import election_timeout_lines, metadata_text, range_text
from etcdlab.units import MISSING, fmt_bool, fmt_count, fmt_ms, fmt_seconds

OP_LABELS = {
    "serializable_read": "serializable read",
    "linearizable_read": "linearizable read (default client)",
    "linearizable_read_require_leader": "linearizable read, require leader",
    "write": "write (default client)",
    "write_require_leader": "write, require leader",
}
SCENARIO_LABELS = {"leader_isolated": "leader cut off", "follower_isolated": "follower cut off"}


def _present(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None]


def _timings(result: Result) -> dict[str, list[float]]:
    """Every timed event across trials, in seconds."""
    leader = result.samples.get("leader_isolated", [])
    follower = result.samples.get("follower_isolated", [])
    return {
        "new leader elected\n(leader cut off)": _present(t["new_leader_s"] for t in leader),
        "old leader\nsteps down": _present(t["step_down_s"] for t in leader),
        "cut-off follower\nloses its leader": _present(
            t["isolated_lost_leader_s"] for t in follower),
        "rejoined after\nhealing": _present(t["rejoin_s"] for t in [*leader, *follower]),
        "all members agree\nafter healing": _present(
            t["converge_s"] for t in [*leader, *follower]),
    }


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Strip plot of the times to a new leader, to step-down, and to converge after healing."""
    timings = _timings(result)
    if not any(timings.values()):
        return {}
    name = plots.strip_plot(
        out_dir / "partition.png", timings,
        "Partition: times after the cut (first three) and after healing (last two)",
        "seconds",
        reference_lines=election_timeout_lines(result),
    )
    return {"times": name}


def _outcome_text(records: Sequence[Mapping[str, Any]]) -> str:
    """"unknown (3 of 3)" or "ok 2, failed 1 (of 3)"."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    if len(counts) == 1:
        outcome, count = next(iter(counts.items()))
        return f"{outcome} ({fmt_count(count)} of {fmt_count(len(records))})"
    parts = ", ".join(f"{o} {fmt_count(n)}" for o, n in sorted(counts.items()))
    return f"{parts} (of {fmt_count(len(records))})"


def _details_text(records: Sequence[Mapping[str, Any]]) -> str:
    texts = sorted({f"{r['code']}" + (f": \"{r['details']}\"" if r["details"] else "")
                    for r in records})
    return "; ".join(texts)


def _op_rows(result: Result) -> list[dict[str, str]]:
    """One row per minority operation and scenario."""
    rows = []
    for op in MINORITY_OPS:
        for scenario in SCENARIOS:
            trials = result.samples.get(scenario, [])
            records = [t["minority"][op] for t in trials]
            if not records:
                continue
            rows.append({
                "operation": OP_LABELS[op],
                "scenario": SCENARIO_LABELS[scenario],
                "outcome": _outcome_text(records),
                "details": _details_text(records).replace("|", "\\|"),
                "time": fmt_seconds(statistics.median(r["elapsed_s"] for r in records)),
            })
    return rows


def _stale_rows(result: Result) -> list[dict[str, str]]:
    """The first trial of each scenario: both sides' answer for the test key."""
    rows = []
    for scenario in SCENARIOS:
        trials = result.samples.get(scenario, [])
        if not trials:
            continue
        trial = trials[0]
        local, majority = trial["minority"]["serializable_read"], trial["majority_read"]
        for side, member, read in (
            ("majority, linearizable read", majority.get("member", MISSING), majority),
            ("cut off, serializable read", trial["isolated"], local),
        ):
            ok = read["outcome"] == "ok"
            rows.append({
                "scenario": SCENARIO_LABELS[scenario], "side": side, "member": member,
                "value": f"`{read['value']}`" if ok and read.get("value") else MISSING,
                "mod_revision": fmt_count(read["mod_revision"]) if ok else MISSING,
                "revision": fmt_count(read["revision"]) if ok else MISSING,
            })
    return rows


def _refreshed(lease: Mapping[str, Any]) -> bool | None:
    """Whether the lease had more time left after the leader change than before the cut."""
    before, after = lease.get("remaining_before_cut_s"), lease.get("remaining_after_new_leader_s")
    if before is None or after is None:
        return None
    return after > before


def _timing_row(label: str, values: list[float]) -> dict[str, str] | None:
    if not values:
        return None
    return {"label": label, "n": fmt_count(len(values)),
            "median": fmt_seconds(statistics.median(values)),
            "range": range_text(min(values), max(values), fmt_seconds)}


def _answer(result: Result, timings: Mapping[str, list[float]]) -> list[str]:
    """Three sentences: the majority side, the minority side, the healing."""
    leader = result.samples.get("leader_isolated", [])
    follower = result.samples.get("follower_isolated", [])
    trials = [*leader, *follower]
    sentences = []
    elected = timings["new leader elected\n(leader cut off)"]
    stepped = timings["old leader\nsteps down"]
    if elected:
        overlap = [max(0.0, t["step_down_s"] - t["new_leader_s"]) for t in leader
                   if t["step_down_s"] is not None and t["new_leader_s"] is not None]
        sentences.append(
            f"When the leader was cut off, the two-member majority elected a new leader "
            f"after a median of "
            f"{fmt_seconds(statistics.median(elected))} (n = {fmt_count(len(elected))}) and "
            "kept accepting writes, while the old leader stepped down by itself after "
            + (f"{fmt_seconds(statistics.median(stepped))} (check-quorum)" if stepped
               else "an unknown time")
            + (f"; for a median of {fmt_seconds(statistics.median(overlap))} both reported "
               "themselves leader, an overlap Raft makes harmless: without a majority the old "
               "leader cannot commit anything."
               if overlap and statistics.median(overlap) > 0 else ".")
        )
    if trials:
        stale = [is_stale(t) for t in trials]
        first = trials[0]
        local, majority = first["minority"]["serializable_read"], first["majority_read"]
        outcomes = {op: {t["minority"][op]["outcome"] for t in trials} for op in MINORITY_OPS}
        default = " / ".join(sorted(outcomes["linearizable_read"] | outcomes["write"]))
        strict = " / ".join(sorted(outcomes["linearizable_read_require_leader"]
                                   | outcomes["write_require_leader"]))
        stale_text = (
            f"a serializable read returned stale data in {fmt_count(sum(bool(s) for s in stale))}"
            f" of {fmt_count(len(stale))} trials (e.g. `{local.get('value')}` at mod revision "
            f"{fmt_count(local.get('mod_revision'))} while the majority served "
            f"`{majority.get('value')}` at {fmt_count(majority.get('mod_revision'))})"
            if local["outcome"] == "ok" and majority["outcome"] == "ok"
            else "a serializable read did not answer"
        )
        applied = any(write_applied_after_heal(t) for t in trials)
        sentences.append(
            f"On the cut-off member {stale_text}; a linearizable read and a write from a "
            f"default client ended {default} (held until the "
            f"{fmt_seconds(result.params.get('op_timeout_s'))} deadline), and with the "
            f"require-leader flag both ended {strict} at once (\"etcdserver: no leader\"). "
            + ("The unacknowledged write was never applied, even after healing."
               if not applied else "The write the client never saw acknowledged WAS applied "
               "after healing, so its unknown outcome turned into a success.")
        )
        converge = timings["all members agree\nafter healing"]
        unchanged = all(t["leader_after_heal"] == t["leader"]
                        and t["term_after"] == t["term_before"] for t in follower)
        follower_text = (
            f"; cutting off a follower left the leader and its term unchanged in "
            f"{fmt_count(len(follower))} of {fmt_count(len(follower))} trials (pre-vote)"
            if follower and unchanged else
            "; cutting off a follower DID disturb the leader or its term" if follower else ""
        )
        sentences.append(
            f"After healing, every member served the same value and revision within a median "
            f"of {fmt_seconds(statistics.median(converge)) if converge else MISSING}"
            f"{follower_text}."
        )
    return sentences


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q3 section: answer, tables, published figures, method."""
    params = result.params
    timings = _timings(result)
    leader = result.samples.get("leader_isolated", [])
    follower = result.samples.get("follower_isolated", [])
    timing_rows = [row for row in (
        _timing_row("Leader cut off: majority names one new leader", timings[
            "new leader elected\n(leader cut off)"]),
        _timing_row("Leader cut off: the old leader steps down", timings[
            "old leader\nsteps down"]),
        _timing_row("Follower cut off: it stops naming a leader", timings[
            "cut-off follower\nloses its leader"]),
        _timing_row("After healing: the cut-off member follows the leader", timings[
            "rejoined after\nhealing"]),
        _timing_row("After healing: every member serves the same value and revision",
                    timings["all members agree\nafter healing"]),
    ) if row is not None]
    leases = [t["lease"] for t in leader if t.get("lease")]
    lease_text = MISSING
    if leases:
        lease = leases[0]
        lease_text = (
            f"TTL {fmt_seconds(lease['ttl_s'])}; {fmt_seconds(lease['remaining_before_cut_s'])}"
            f" left just before the cut ({fmt_seconds(lease['age_at_cut_s'])} after the "
            f"grant), {fmt_seconds(lease['remaining_after_new_leader_s'])} as the new leader "
            f"answered: refreshed {fmt_bool(_refreshed(lease))}"
        )
    consistency = result.samples.get("consistency") or {}
    terms = [f"{t['term_before']} → {t['term_after']}" for t in leader]
    cut_windows = [t["cut_window_s"] for t in [*leader, *follower]]
    return {
        "answer": _answer(result, timings),
        "timing_rows": timing_rows,
        "op_rows": _op_rows(result),
        "stale_rows": _stale_rows(result),
        "chart": chart_files.get("times"),
        "step_down": (fmt_seconds(statistics.median(timings["old leader\nsteps down"]))
                      if timings["old leader\nsteps down"] else MISSING),
        "lease": lease_text,
        "leader_terms": ", ".join(terms) or MISSING,
        "follower_leader_unchanged": fmt_bool(
            all(t["leader_after_heal"] == t["leader"] for t in follower) if follower else None),
        "follower_term_unchanged": fmt_bool(
            all(t["term_after"] == t["term_before"] for t in follower) if follower else None),
        "majority_writes_ok": fmt_bool(
            all(t["majority_write"]["outcome"] == "ok" for t in [*leader, *follower])
            if leader or follower else None),
        "write_applied": fmt_bool(any(write_applied_after_heal(t)
                                      for t in [*leader, *follower])),
        "members_consistent": fmt_bool(consistency.get("consistent")),
        "trials": fmt_count(params.get("trials")),
        "n_leader": fmt_count(len(leader)),
        "n_follower": fmt_count(len(follower)),
        "op_timeout": fmt_seconds(params.get("op_timeout_s")),
        "poll_interval": fmt_ms(params.get("poll_interval_ms")),
        "settle": fmt_seconds(params.get("settle_s")),
        "cut_window": fmt_seconds(statistics.median(cut_windows)) if cut_windows else MISSING,
        "election_timeout": fmt_ms(result.metadata.get("election_timeout_ms")),
        "members": metadata_text(result, "node_count", "nodes"),
        "etcd_version": metadata_text(result, "etcd_version"),
    }
