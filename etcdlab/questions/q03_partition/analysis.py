"""Q3 ``partition``: samples → summary → findings (pure: no I/O, no cluster).

Two scenarios, each ``trials`` times: the leader cut off (``leader_isolated``) and a
follower cut off (``follower_isolated``). Times are measured from the moment the cut's
iptables rules were in force, or gone (after healing), by polling every
``poll_interval_ms``; outcomes on the cut-off member are ok, failed (refused: not applied)
or unknown (the deadline passed: it might still be applied).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from etcdlab.figures import stats
from etcdlab.figures.units import (
    fmt_count,
    fmt_median,
    fmt_resolution,
    fmt_seconds,
    fmt_share,
    fmt_whole_seconds,
    fmt_within,
)
from etcdlab.questions.findings import (
    Asked,
    Finding,
    claim,
    comparison,
    history_findings,
    leader_change_leases,
    name_all,
    named,
    register_verdict,
    untestable,
)

SCENARIOS = ("leader_isolated", "follower_isolated")
# The one-way partitions: what is dropped between the leader and its followers.
ONE_WAY = ("leader_deaf", "leader_mute")
ONE_WAY_LABELS = {"leader_deaf": "leader deaf (the followers' packets to it dropped)",
                  "leader_mute": "leader mute (its packets to the followers dropped)"}
# The register workload's faults and read modes (experiments/partition.py runs them).
REGISTER_FAULTS = ("leader-cut", "follower-cut", "leader-crash")
REGISTER_FAULT_LABELS = {"leader-cut": "leader cut off", "follower-cut": "follower cut off",
                         "leader-crash": "leader crashed"}
REGISTER_SERIES = ("linearizable", "serializable")
# What the cut-off member is asked, in this order (the serializable read first: it is
# answered at once and shows the state the member was left with).
# What the cut-off leader is probed with, continuously, until it steps down.
LAST_SECOND_OPS = ("serializable_read", "linearizable_read", "write")
MINORITY_OPS = ("serializable_read", "linearizable_read", "linearizable_read_require_leader",
                "write", "write_require_leader")
OP_LABELS = {
    "serializable_read": "serializable read",
    "linearizable_read": "linearizable read (default client)",
    "linearizable_read_require_leader": "linearizable read, require leader",
    "write": "write (default client)",
    "write_require_leader": "write, require leader",
}
SCENARIO_LABELS = {"leader_isolated": "leader cut off", "follower_isolated": "follower cut off"}
DEFAULT_OPS = ("linearizable_read", "write")
REQUIRE_LEADER_OPS = ("linearizable_read_require_leader", "write_require_leader")
# The series of the timing table and chart: (label, scenarios, sample key).
EVENTS = (
    ("Leader cut off: the majority names one new leader", ("leader_isolated",), "new_leader_s"),
    ("Leader cut off: the old leader stops naming itself leader", ("leader_isolated",),
     "step_down_s"),
    ("Follower cut off: it stops naming a leader", ("follower_isolated",),
     "isolated_lost_leader_s"),
    ("After healing: the cut-off member follows the leader", SCENARIOS, "rejoin_s"),
    ("After healing: every member serves the same value and revision", SCENARIOS,
     "converge_s"),
)

ASKED = (
    Asked("trials", 5, "partitions per scenario (leader cut off, follower cut off)", fmt_count),
    Asked("prevote_trials", 5, "follower isolations per pre-vote setting (on, off)", fmt_count),
    Asked("oneway_trials", 5, "one-way partitions per direction (leader deaf, leader mute)",
          fmt_count),
)


def is_stale(trial: Mapping[str, Any]) -> bool | None:
    """Whether the cut-off member's serializable read returned an older state than the
    majority's linearizable read (None when either read failed)."""
    local, majority = trial["minority"]["serializable_read"], trial["majority_read"]
    if local["outcome"] != "ok" or majority["outcome"] != "ok":
        return None
    return (local["mod_revision"] < majority["mod_revision"]
            and local["value"] != majority["value"])


def write_applied_after_heal(trial: Mapping[str, Any]) -> bool:
    """Whether any member ended up with the value the cut-off member was asked to write."""
    written = trial["minority"]["value_written"]
    return any(state and state["value"] == written for state in trial["after_heal"].values())


def agreed(values: Iterable[Any]) -> Any:
    """The one value all trials agree on, "mixed" if they differ, None if there are none."""
    distinct = set(values)
    if not distinct:
        return None
    return distinct.pop() if len(distinct) == 1 else "mixed"


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Times (medians over trials), the minority's outcomes, staleness, healing, consistency."""
    leader = samples.get("leader_isolated") or []
    follower = samples.get("follower_isolated") or []
    trials = [*leader, *follower]
    summary: dict[str, Any] = {"trials": {"leader_isolated": len(leader),
                                          "follower_isolated": len(follower)}}
    if leader:
        overlaps = [max(0.0, t["step_down_s"] - t["new_leader_s"]) for t in leader
                    if t["step_down_s"] is not None and t["new_leader_s"] is not None]
        summary["leader_isolated"] = {
            "new_leader_s": _median(t["new_leader_s"] for t in leader),
            "new_leader_min_s": min(t["new_leader_s"] for t in leader),
            "new_leader_max_s": _max(t["new_leader_s"] for t in leader),
            "step_down_s": _median(t["step_down_s"] for t in leader),
            "two_leaders_s": statistics.median(overlaps) if overlaps else None,
            "majority_write_ok": all(t["majority_write"]["outcome"] == "ok" for t in leader),
            "lease_refreshed": agreed(
                t["lease"]["remaining_after_new_leader_s"] is not None
                and t["lease"]["remaining_before_cut_s"] is not None
                and t["lease"]["remaining_after_new_leader_s"]
                > t["lease"]["remaining_before_cut_s"] for t in leader),
            "old_leader_follows_new": all(t["leader_after_heal"] == t["new_leader"]
                                          for t in leader),
        }
    if follower:
        summary["follower_isolated"] = {
            "leader_unchanged": all(t["leader_after_heal"] == t["leader"]
                                    and t["majority_leaders_seen"] == [t["leader"]]
                                    for t in follower),
            "term_unchanged": all(t["term_after"] == t["term_before"]
                                  and t["majority_terms_seen"] == [t["term_before"]]
                                  for t in follower),
            "majority_write_ok": all(t["majority_write"]["outcome"] == "ok" for t in follower),
            "isolated_lost_leader_s": _median(t["isolated_lost_leader_s"] for t in follower),
        }
    if trials:
        minority: dict[str, Any] = {
            f"{op}_outcome": agreed(t["minority"][op]["outcome"] for t in trials)
            for op in MINORITY_OPS
        }
        stale = [is_stale(t) for t in trials]
        minority["serializable_read_stale"] = (None if any(s is None for s in stale)
                                               else all(stale))
        minority["write_applied_after_heal"] = any(write_applied_after_heal(t) for t in trials)
        minority["outcome_counts"] = {
            op: {outcome: sum(1 for t in trials if t["minority"][op]["outcome"] == outcome)
                 for outcome in sorted({t["minority"][op]["outcome"] for t in trials})}
            for op in MINORITY_OPS
        }
        summary["minority"] = minority
        summary["heal"] = {
            "converge_s": _median(t["converge_s"] for t in trials),
            "converge_max_s": _max(t["converge_s"] for t in trials),
            "rejoin_s": _median(t["rejoin_s"] for t in trials),
        }
    consistency = samples.get("consistency")
    summary["members_consistent"] = bool(consistency) and consistency["consistent"]
    summary["members_compared"] = bool(consistency)
    summary["consistency_members"] = (consistency or {}).get("members") or []
    summary["detail"] = _detail(leader, follower, leader_change_leases(samples))
    summary["poll_interval_s"] = (params["poll_interval_ms"] / 1000.0
                                  if params.get("poll_interval_ms") is not None else None)
    summary["op_timeout_s"] = params.get("op_timeout_s")
    summary["histories"] = samples.get("histories") or {}
    summary["register"] = register_runs(samples)
    summary["last_second"] = last_second(leader)
    summary["prevote"] = prevote_summary(samples)
    summary["one_way"] = one_way_summary(samples)
    return summary


def one_way_summary(samples: Mapping[str, Any]) -> dict[str, Any]:
    """Per direction of the one-way partitions that ran: who led at the end, when one leader
    settled, when the old one stopped claiming, the rounds with two claimants (and the span
    from the first to the last of them per trial), after healing, and the poll round (the
    instrument's resolution)."""
    out = {}
    for direction in ONE_WAY:
        trials = (samples.get("one_way") or {}).get(direction) or []
        if not trials:
            continue
        settled = [t for t in trials if t["settled_s"] is not None]
        out[direction] = {
            "trials": len(trials),
            "settled": len(settled),
            "follower_led": sum(1 for t in settled if t["settled_leader"] != t["old_leader"]),
            "old_led": sum(1 for t in settled if t["settled_leader"] == t["old_leader"]),
            "settled_s": [t["settled_s"] for t in settled],
            "stepped_down_s": [t["old_stepped_down_s"] for t in trials
                               if t["old_stepped_down_s"] is not None],
            "overlap_trials": sum(1 for t in trials if t["overlap_rounds"]),
            "overlap_rounds": sum(t["overlap_rounds"] for t in trials),
            "overlap_spans_s": [round(t["overlap_last_s"] - t["overlap_first_s"], 6)
                                for t in trials if t["overlap_rounds"]],
            "rounds": sum(t["rounds"] for t in trials),
            "round_s": statistics.median(t["round_s"] for t in trials),
            "term_rise": [t["settled_term"] - t["term_before"] for t in settled],
            "healed": sum(1 for t in trials if t["after_heal"]["settled_s"] is not None),
            "heal_s": [t["after_heal"]["settled_s"] for t in trials
                       if t["after_heal"]["settled_s"] is not None],
        }
    return out


LAST_SECOND_BIN_S = 0.25
"""Width of the time-since-the-cut bins the old leader's last second is split into."""


def last_second(trials: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The probes of the cut-off leader from the cut until it stepped down, over the leader
    trials that have them: per op the outcomes, the serializable reads that returned the
    value the key had before the cut, the window (cut → step-down) per trial, and the same
    outcomes per ``LAST_SECOND_BIN_S`` bin of time since the cut. Probes invoked after
    the step-down are counted apart (``after``)."""
    windows, before_down, after_down = [], [], []
    stale_values = 0
    for t in trials:
        probes = t.get("last_second")
        if not probes or t.get("step_down_s") is None:
            continue
        windows.append(t["step_down_s"])
        for probe in probes:
            inside = probe["at_s"] < t["step_down_s"]
            (before_down if inside else after_down).append(probe)
            if (inside and probe["op"] == "serializable_read" and probe["outcome"] == "ok"
                    and probe.get("value") == t.get("before_value")):
                stale_values += 1

    def outcomes(probes: list[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {op: {"ok": 0, "failed": 0, "unknown": 0}
                                            for op in LAST_SECOND_OPS}
        for probe in probes:
            table[probe["op"]][probe["outcome"]] += 1
        return table

    bins: dict[int, list[Mapping[str, Any]]] = {}
    for probe in before_down:
        bins.setdefault(int(max(probe["at_s"], 0.0) // LAST_SECOND_BIN_S), []).append(probe)
    return {"trials": len(windows), "windows_s": windows,
            "outcomes": outcomes(before_down), "after": outcomes(after_down),
            "serializable_pre_cut_value": stale_values,
            "bins": [{"from_s": i * LAST_SECOND_BIN_S, "to_s": (i + 1) * LAST_SECOND_BIN_S,
                      "outcomes": outcomes(bins[i])} for i in sorted(bins)]}


def register_runs(samples: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """{fault: {series: {"target", "outcomes", "verdict" (the checked history or {})}}} for
    each register series of the run. Results recorded before the workload ran under several
    faults (``samples["register"][series]`` with ``isolated``, histories
    ``register-SERIES``) read as the leader-cut fault."""
    recorded = samples.get("register") or {}
    histories = samples.get("histories") or {}
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    if any(series in recorded for series in REGISTER_SERIES):  # the older layout
        recorded = {"leader-cut": {series: {**run, "target": run.get("isolated")}
                                   for series, run in recorded.items()}}
    known = [fault for fault in REGISTER_FAULTS if fault in recorded]
    for fault in known + sorted(set(recorded) - set(known)):  # the order they run in
        for series, run in recorded[fault].items():
            verdict = register_verdict(histories, fault, series)
            runs.setdefault(fault, {})[series] = {"target": run.get("target"),
                                                  "outcomes": run.get("outcomes") or {},
                                                  "verdict": verdict}
    return runs


def _register(summary: Mapping[str, Any]) -> Finding:
    """The register workload with the leader cut off: linearizable reads keep the history
    linearizable; serializable reads on the cut-off member may not."""
    runs = summary["register"].get("leader-cut") or {}
    verdicts = {series: (runs.get(series) or {}).get("verdict") or {}
                for series in REGISTER_SERIES}
    lin, ser = (verdicts[s].get("verdict") for s in REGISTER_SERIES)
    figures = {f"{series} reads": f"{v.get('operations', 0):,} operations, {v.get('verdict')}"
               for series, v in verdicts.items() if v}
    isolated = ", then ".join(str(run.get("target")) for run in runs.values())
    figures["leader cut off"] = isolated or "not recorded"
    yes = ("With the leader cut off, linearizable reads kept the clients' history "
           "linearizable and serializable reads did not: one on a cut-off member returned a "
           "value older than a completed write.")
    no = (f"With the leader cut off, the history with linearizable reads was {lin} and the one "
          f"with serializable reads {ser}; the expected pair (linearizable, not linearizable) "
          "did not both occur.")
    if lin is None or ser is None or "unknown" in (lin, ser):
        return claim("register-histories", None, yes, no,
                     "The register workload's histories were not both checked to a verdict in "
                     "this run (not recorded, or the checker's budget ran out).", **figures)
    return claim("register-histories", lin == "linearizable" and ser == "not-linearizable",
                 yes, no, **figures)


def _register_every_fault(summary: Mapping[str, Any]) -> Finding:
    """Linearizable reads give a linearizable history under every fault the workload ran
    under; the serializable series' verdicts are shown beside them."""
    runs = summary["register"]
    figures = {}
    verdicts = []
    for fault, by_series in runs.items():
        lin = ((by_series.get("linearizable") or {}).get("verdict") or {}).get("verdict")
        ser = ((by_series.get("serializable") or {}).get("verdict") or {}).get("verdict")
        verdicts.append(lin)
        figures[REGISTER_FAULT_LABELS.get(fault, fault)] = (
            f"linearizable reads {lin or 'not checked'}, serializable reads "
            f"{ser or 'not checked'}")
    faults = ", ".join(REGISTER_FAULT_LABELS.get(f, f) for f in runs) or "none"
    yes = (f"Under every fault the register workload ran under ({faults}), its history with "
           "linearizable reads was linearizable.")
    no = (f"Under the faults the register workload ran under ({faults}), a history with "
          "linearizable reads was not linearizable.")
    unchecked = not verdicts or any(v in (None, "unknown") for v in verdicts)
    if unchecked and "not-linearizable" not in verdicts:  # one violation decides it anyway
        return claim("register-lin-every-fault", None, yes, no,
                     "Not every linearizable-read series of the register workload was "
                     "checked to a verdict in this run.", **figures)
    return claim("register-lin-every-fault",
                 all(v == "linearizable" for v in verdicts), yes, no, **figures)


def _last_second(d: Mapping[str, Any]) -> list[Finding]:
    """The cut-off leader between the cut and its step-down: no linearizable read or write
    succeeds there; its serializable reads return the value it had."""
    if not d["trials"]:
        return [untestable("last-second-refused", "No leader trial probed the cut-off leader's "
                           "linearizable reads and writes until it stepped down."),
                untestable("last-second-serializable", "No leader trial probed the cut-off "
                           "leader's serializable reads until it stepped down.")]
    done = d["outcomes"]
    lin, write, ser = done["linearizable_read"], done["write"], done["serializable_read"]
    window = median_phrase(d["windows_s"])
    figures = {"window (cut → step-down)": window,
               "linearizable reads": _outcome_text(lin), "writes": _outcome_text(write)}
    refused = claim(
        "last-second-refused", lin["ok"] == 0 and write["ok"] == 0 and sum(lin.values()) > 0
        and sum(write.values()) > 0,
        "Between the cut and its step-down the cut-off leader completed no linearizable read "
        "and no write: each one it was sent timed out or was refused.",
        "Between the cut and its step-down the cut-off leader completed a linearizable read or "
        "a write (or was not sent both).", **figures)
    answered = ser["ok"]
    serializable = claim(
        "last-second-serializable", answered > 0 and d["serializable_pre_cut_value"] == answered,
        "Meanwhile its serializable reads were answered at once, with the value the key had "
        "before the cut.",
        "Meanwhile its serializable reads were not all answered with the value the key had "
        "before the cut.",
        **{"serializable reads": _outcome_text(ser),
           "pre-cut value": fmt_share(d["serializable_pre_cut_value"], answered)})
    return [refused, serializable]


def _outcome_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,} {outcome}" for outcome, n in counts.items() if n) or "none sent"


def last_second_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """The old leader's last second, one row per bin of time since the cut."""
    rows = []
    for each in summary["last_second"]["bins"]:
        cells = {op: _outcome_text(each["outcomes"][op]) for op in LAST_SECOND_OPS}
        rows.append({"since_cut": f"{each['from_s']:.2f}–{each['to_s']:.2f} s", **cells})
    return rows


def _count(trials: Iterable[Mapping[str, Any]], test: Any) -> int:
    return sum(1 for t in trials if test(t))


def _follower_undisturbed(t: Mapping[str, Any]) -> bool:
    return (t["leader_after_heal"] == t["leader"] and t["majority_leaders_seen"] == [t["leader"]]
            and t["term_after"] == t["term_before"]
            and t["majority_terms_seen"] == [t["term_before"]])


def _detail(leader: Sequence[Mapping[str, Any]], follower: Sequence[Mapping[str, Any]],
            leases: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-trial counts and value lists the findings and tables rest on."""
    trials = [*leader, *follower]
    stale = [is_stale(t) for t in trials]
    example = next((t for t, s in zip(trials, stale, strict=True) if s), None)
    records = {op: [t["minority"][op] for t in trials] for op in MINORITY_OPS}
    return {
        "times_s": {key: sorted(float(t[key]) for t in trials if t.get(key) is not None)
                    for _, _, key in EVENTS},
        "leader_trials": len(leader), "follower_trials": len(follower), "trials": len(trials),
        "new_leader_found": _count(leader, lambda t: t.get("new_leader_s") is not None),
        "stepped_down": _count(leader, lambda t: t.get("step_down_s") is not None),
        "overlaps_s": sorted(max(0.0, t["step_down_s"] - t["new_leader_s"]) for t in leader
                             if t.get("step_down_s") is not None
                             and t.get("new_leader_s") is not None),
        "majority_writes_ok": _count(trials, lambda t: t["majority_write"]["outcome"] == "ok"),
        "stale": sum(1 for v in stale if v), "stale_known": sum(1 for v in stale if v is not None),
        "stale_example": None if example is None else {
            "local": example["minority"]["serializable_read"].get("value"),
            "local_mod": example["minority"]["serializable_read"].get("mod_revision"),
            "majority": example["majority_read"].get("value"),
            "majority_mod": example["majority_read"].get("mod_revision")},
        "outcomes": {op: [r["outcome"] for r in records[op]] for op in MINORITY_OPS},
        "elapsed_s": {op: sorted(float(r["elapsed_s"]) for r in records[op])
                      for op in MINORITY_OPS},
        "details": {op: sorted({str(r.get("details") or r.get("code")) for r in records[op]})
                    for op in MINORITY_OPS},
        "applied_after_heal": _count(trials, write_applied_after_heal),
        "undisturbed": _count(follower, _follower_undisturbed),
        "rejoined": _count(trials, lambda t: t.get("rejoin_s") is not None
                           and t.get("converge_s") is not None),
        "old_leader_follows": _count(leader, lambda t: t["leader_after_heal"] == t["new_leader"]),
        "leases": leases,
    }


# -- formatting helpers ------------------------------------------------------------------------

def median_phrase(values: Sequence[float]) -> str:
    """The median with its exact 95 % interval, or with the values themselves (n < 6)."""
    data = sorted(values)
    if len(data) == 1:
        return f"{fmt_seconds(data[0])} (n = 1)"
    if stats.median_ci(data) is not None:
        return fmt_median(data)
    shown = ", ".join(fmt_seconds(v) for v in data)
    return f"{fmt_seconds(statistics.median(data))} (n = {len(data)}: {shown})"


def time_phrase(values: Sequence[float], poll_s: float | None) -> str:
    """A polled time: one value as "1.22 s (±5 ms), n = 1", more as their median."""
    if not values:
        return "not seen"
    if poll_s is None:
        return median_phrase(values)
    if len(values) == 1:
        return f"{fmt_within(values[0], poll_s)}, n = 1"
    return f"{median_phrase(values)}, each ±{fmt_resolution(poll_s)} (polled)"


def outcome_counts_text(outcomes: Sequence[str]) -> str:
    """"unknown 2 of 2 (≥ 15.8 % at 95 %)", one share per outcome seen."""
    return "; ".join(f"{outcome} {fmt_share(outcomes.count(outcome), len(outcomes))}"
                     for outcome in sorted(set(outcomes)))


# -- findings ------------------------------------------------------------------------------------

def _majority(d: Mapping[str, Any], poll: float | None) -> Finding:
    if not d["trials"]:
        return untestable("majority-serves", "No partition trial was measured.")
    ok = d["majority_writes_ok"] == d["trials"] and d["new_leader_found"] == d["leader_trials"]
    figures = {"new leader after the cut": time_phrase(d["times_s"]["new_leader_s"], poll),
               "majority writes acknowledged": fmt_share(d["majority_writes_ok"], d["trials"])}
    elected = d["times_s"]["new_leader_s"]
    after = ("" if not elected else f" after {fmt_seconds(elected[0])}" if len(elected) == 1
             else f" after a median of {fmt_seconds(statistics.median(elected))}")
    return named(claim(
        "majority-serves", ok,
        f"The majority side kept a leader and accepted writes: with the leader cut off, the "
        f"others named a new leader{after} and acknowledged every write sent to them during "
        "the partition.",
        "The majority side did not always keep serving: a new leader or an acknowledged "
        "majority write was missing in some trials.",
        **figures,
    ), "majority side",
        f"With the leader cut off, the majority named a new leader{after} and acknowledged "
        f"all {fmt_count(d['majority_writes_ok'])} writes sent to it (n = "
        f"{fmt_count(d['trials'])} trials).",
        "The majority side did not always keep serving: a new leader or a write was missing.")


def _step_down(d: Mapping[str, Any], poll: float | None) -> Finding:
    if not d["leader_trials"]:
        return untestable("old-leader-steps-down", "No trial cut the leader off.")
    figures = {"stopped naming itself leader after": time_phrase(
        d["times_s"]["step_down_s"], poll),
        "stepped down": fmt_share(d["stepped_down"], d["leader_trials"])}
    if d["overlaps_s"]:
        figures["two members named themselves leader for"] = median_phrase(d["overlaps_s"])
    return claim(
        "old-leader-steps-down", d["stepped_down"] == d["leader_trials"],
        "The cut-off leader gave up leadership by itself while still cut off.",
        "The cut-off leader did not always give up leadership while cut off.",
        **figures,
    )


def _stale(d: Mapping[str, Any]) -> Finding:
    if not d["stale_known"]:
        return untestable("minority-serializable-stale",
                          "No trial had both a serializable read on the cut-off member and a "
                          "read on the majority that answered, so staleness is unknown.")
    figures = {"stale": fmt_share(d["stale"], d["stale_known"]),
               "answered after": median_phrase(d["elapsed_s"]["serializable_read"])}
    example = d["stale_example"]
    if example:
        figures["e.g."] = (f"`{example['local']}` at mod revision "
                           f"{fmt_count(example['local_mod'])} on the cut-off member, "
                           f"`{example['majority']}` at {fmt_count(example['majority_mod'])} "
                           "on the majority")
    return claim(
        "minority-serializable-stale", d["stale"] == d["stale_known"],
        "A serializable read on the cut-off member answered with the value from "
        "before the cut, older than what the majority had committed.",
        "A serializable read on the cut-off member did not always return an older value "
        "than the majority's.",
        **figures,
    )


def _default_client(d: Mapping[str, Any], timeout: Any) -> Finding:
    outcomes = [o for op in DEFAULT_OPS for o in d["outcomes"][op]]
    if not outcomes:
        return untestable("minority-default-unknown", "No operation reached the cut-off member.")
    unknown = outcomes.count("unknown")
    return claim(
        "minority-default-unknown", unknown == len(outcomes),
        f"A linearizable read and a write from a default client on the cut-off member were "
        f"held until their {fmt_seconds(timeout)} deadline: outcome unknown.",
        "A linearizable read or a write from a default client on the cut-off member did not "
        "simply time out.",
        **{"outcomes": outcome_counts_text(outcomes),
           "answered after": median_phrase(
               sorted(e for op in DEFAULT_OPS for e in d["elapsed_s"][op]))},
    )


def _require_leader(d: Mapping[str, Any]) -> Finding:
    outcomes = [o for op in REQUIRE_LEADER_OPS for o in d["outcomes"][op]]
    if not outcomes:
        return untestable("minority-require-leader-refused",
                          "No operation reached the cut-off member.")
    failed = outcomes.count("failed")
    elapsed = sorted(e for op in REQUIRE_LEADER_OPS for e in d["elapsed_s"][op])
    details = sorted({x for op in REQUIRE_LEADER_OPS for x in d["details"][op]})
    return claim(
        "minority-require-leader-refused", failed == len(outcomes),
        "With the require-leader flag the same read and write were refused at once "
        "(failed: not applied).",
        "With the require-leader flag the read or the write was not always refused.",
        **{"refused": fmt_share(failed, len(outcomes)),
           "answered after": median_phrase(elapsed),
           "error": "; ".join(f'"{x}"' for x in details)},
    )


def _not_applied(d: Mapping[str, Any]) -> Finding:
    if not d["trials"]:
        return untestable("minority-write-not-applied", "No partition trial was measured.")
    applied = d["applied_after_heal"]
    return claim(
        "minority-write-not-applied", applied == 0,
        "The writes sent to the cut-off member, never acknowledged, were not applied after "
        "healing either.",
        "A write sent to the cut-off member, never acknowledged, was applied after healing: "
        "its unknown outcome turned into a success.",
        **{"applied after healing": fmt_share(applied, d["trials"])},
    )


def _follower(d: Mapping[str, Any]) -> Finding:
    if not d["follower_trials"]:
        return untestable("follower-cut-undisturbed", "No trial cut a follower off.")
    n = d["follower_trials"]
    return claim(
        "follower-cut-undisturbed", d["undisturbed"] == n,
        "Cutting a follower off left the leader and its term unchanged, during the cut and "
        "after healing.",
        "Cutting a follower off disturbed the leader or raised the term.",
        **{"leader and term unchanged": fmt_share(d["undisturbed"], n)},
    )


def _heal(d: Mapping[str, Any], poll: float | None) -> Finding:
    if not d["trials"]:
        return untestable("heal-converges", "No partition trial was measured.")
    ok = d["rejoined"] == d["trials"] and d["old_leader_follows"] == d["leader_trials"]
    return claim(
        "heal-converges", ok,
        "After healing, the cut-off member followed the current leader and every member "
        "served the same value and revision.",
        "After healing, the members did not always converge on one leader and one state.",
        **{"converged after": time_phrase(d["times_s"]["converge_s"], poll),
           "converged": fmt_share(d["rejoined"], d["trials"])},
    )


def _consistent(summary: Mapping[str, Any]) -> Finding:
    if not summary.get("members_compared"):
        return untestable("members-consistent", "The members' KV hashes were not compared.")
    members = summary.get("consistency_members") or []
    figures = {str(m.get("name")): f"revision {m.get('current_revision', m.get('revision'))}, "
                                   f"hash {m.get('hash')}" for m in members}
    return claim(
        "members-consistent", bool(summary["members_consistent"]),
        "At the end every member reported the same revision and KV hash.",
        "At the end the members' revisions or KV hashes differed: the lab's members no "
        "longer hold the same data (rebuild it: `invoke destroy`, then `invoke provision`).",
        **figures)


# etcd's postmortem of the v3.5 data inconsistency (etcd-io/etcd#13766,
# Documentation/postmortems/v3.5-data-inconsistency.md): a member killed (SIGKILL) under load
# can restart with a store that lost an applied entry; 3.5.0-3.5.2 are affected, 3.5.3 fixed it.
CRASH_DIVERGENCE_AFFECTED = ((3, 5, 0), (3, 5, 2))
CRASH_DIVERGENCE_SOURCE = "etcd-io/etcd#13766, fixed in v3.5.3"


def _version(text: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in str(text).lstrip("v").split(".")[:3])
    except ValueError:
        return None


def _crash_divergence(summary: Mapping[str, Any], metadata: Mapping[str, Any] | None
                      ) -> Finding:
    """Whether the members diverged after the register workload's leader crash, against
    what etcd's postmortem says of this run's etcd version."""
    version = _version((metadata or {}).get("etcd_version"))
    crashed = "leader-crash" in summary["register"]
    yes_affected = ("As etcd's postmortem describes for v3.5.0–v3.5.2 "
                    f"({CRASH_DIVERGENCE_SOURCE}), after a member was killed under load the "
                    "members' data diverged.")
    no_fixed = (f"Against etcd's postmortem ({CRASH_DIVERGENCE_SOURCE}), this fixed version's "
                "members diverged after a member was killed under load.")
    if not crashed or not summary.get("members_compared") or version is None:
        return comparison("published-crash-divergence", "published", None, yes_affected,
                          no_fixed, "The register workload did not crash the leader under load "
                          "in this run (or the members were not compared, or the etcd version "
                          "is unknown).")
    diverged = not summary["members_consistent"]
    figures = {"etcd": ".".join(map(str, version)),
               "members": "diverged" if diverged else "consistent"}
    low, high = CRASH_DIVERGENCE_AFFECTED
    if low <= version <= high:
        return comparison(
            "published-crash-divergence", "published", True if diverged else None,
            yes_affected, "-",
            "This affected version's members stayed consistent in this run: the bug needs an "
            "unlucky kill, so one run without it shows nothing.", **figures)
    fixed = ("After the register workload killed the leader under load the members stayed "
             f"consistent, as expected of a version with the fix ({CRASH_DIVERGENCE_SOURCE}).")
    return comparison("published-crash-divergence", "published", not diverged, fixed,
                      no_fixed, **figures)


def _lease(d: Mapping[str, Any]) -> Finding:
    leases = [x for x in d["leases"] if x["before_s"] is not None and x["after_s"] is not None]
    if not leases:
        return untestable("published-lease-refresh",
                          "No lease was read both before the cut and from the new leader.",
                          source="published")
    # TTLs are whole seconds: "full" is within 1 s of the granted TTL.
    refreshed = sum(1 for x in leases if x["after_s"] > x["before_s"]
                    and x["ttl_s"] is not None and x["after_s"] >= x["ttl_s"] - 1)
    first = leases[0]
    return comparison(
        "published-lease-refresh", "published", refreshed == len(leases),
        "A new leader refreshes every lease to its full TTL (etcd lease docs, without "
        "lease checkpointing): the lease granted before the cut was back at its full "
        "TTL after the leader change.",
        "A new leader should refresh every lease to its full TTL (etcd lease docs), but "
        "the lease here was not back at its full TTL after the leader change.",
        **{"refreshed": fmt_share(refreshed, len(leases)),
           "TTL": fmt_whole_seconds(first["ttl_s"]),
           "left before the cut": fmt_whole_seconds(first["before_s"]),
           "left at the new leader": fmt_whole_seconds(first["after_s"])},
    )


def _reads(d: Mapping[str, Any]) -> Finding:
    linear = d["outcomes"]["linearizable_read"] + d["outcomes"]["linearizable_read_require_leader"]
    if not d["stale_known"] or not linear:
        return untestable("published-read-semantics",
                          "The reads on the cut-off member did not answer, so the published "
                          "read semantics cannot be checked.", source="published")
    answered = linear.count("ok")
    agrees = d["stale"] > 0 and answered == 0
    return comparison(
        "published-read-semantics", "published", agrees,
        "Serializable reads are answered from the local member's state and may be stale; "
        "linearizable reads need a quorum round (ReadIndex) with the leader, so a cut-off "
        "member cannot answer them (etcd docs).",
        "The etcd docs say serializable reads may be stale and linearizable reads need a "
        "quorum; here a linearizable read on the cut-off member answered, or no "
        "serializable read was stale.",
        **{"stale serializable reads": fmt_share(d["stale"], d["stale_known"]),
           "linearizable reads answered": fmt_share(answered, len(linear))},
    )


def prevote_summary(samples: Mapping[str, Any]) -> dict[str, Any]:
    """Per pre-vote setting of the control ("on", "off"): trials, the isolated follower's
    campaigns and term rise (from etcd's log), the trials whose leader was disrupted on
    rejoin, and the longest stretch without an acknowledged write after the heal."""
    control = samples.get("prevote") or {}
    summary = {}
    for setting in ("on", "off"):
        trials = control.get(setting) or []
        if not trials:
            continue
        gaps = [t["writes"]["longest_gap_after_heal_s"] for t in trials
                if t["writes"].get("longest_gap_after_heal_s") is not None]
        summary[setting] = {
            "trials": len(trials),
            "campaigns": [t["isolated_campaigns"] for t in trials],
            "pre_campaigns": [t["isolated_pre_campaigns"] for t in trials],
            "term_rise": [t["isolated_term_max"] - t["term_before"] for t in trials],
            "disrupted": sum(1 for t in trials if t["disrupted"]),
            "write_gap_s": gaps,
            "isolation_s": trials[0].get("isolation_s"),
        }
    return summary


def _prevote(summary: Mapping[str, Any]) -> list[Finding]:
    """The control: the follower cut off with pre-vote on, then off."""
    control = summary["prevote"]
    on, off = control.get("on"), control.get("off")

    def figures(d: Mapping[str, Any]) -> dict[str, str]:
        out = {"trials": fmt_count(d["trials"]),
               "isolated follower's pre-campaigns": ", ".join(map(str, d["pre_campaigns"])),
               "its campaigns": ", ".join(map(str, d["campaigns"])),
               "its term rise": ", ".join(f"+{n}" for n in d["term_rise"]),
               "leader disrupted on rejoin": fmt_share(d["disrupted"], d["trials"])}
        if d["write_gap_s"]:
            out["longest gap between acknowledged writes after the heal"] = median_phrase(
                d["write_gap_s"])
        return out

    if on is None:
        quiet = untestable("prevote-on-quiet", "This run had no pre-vote control.")
    else:
        quiet = claim(
            "prevote-on-quiet",
            not any(on["campaigns"]) and all(on["pre_campaigns"]) and on["disrupted"] == 0,
            f"With pre-vote on, the follower cut off for {fmt_seconds(on['isolation_s'])} only "
            "pre-campaigned: its term did not rise, and on rejoin the leader kept its "
            "leadership.",
            "With pre-vote on, the cut-off follower still raised its term or disrupted the "
            "leader on rejoin.", **figures(on))
    if off is None:
        loud = untestable("prevote-off-disrupts", "This run had no control with pre-vote off.")
    else:
        loud = claim(
            "prevote-off-disrupts", all(off["campaigns"]) and off["disrupted"] > 0,
            "With pre-vote off (the control), the cut-off follower campaigned and raised its "
            "term while cut off, and its rejoin disrupted the leader (a new election).",
            "With pre-vote off (the control), the cut-off follower did not both raise its "
            "term and disrupt the leader on rejoin.", **figures(off))
    yes = ("Pre-vote is what keeps a cut-off follower from disrupting the leader: with it on "
           "no rejoin disrupted the leader, with it off the rejoin did (Raft thesis §9.6; "
           "etcd 3.5 turns pre-vote on by default).")
    no = ("The control does not show pre-vote as the cause: the leader's disruption on "
          "rejoin did not depend on it in this run.")
    if on is None or off is None:
        cause = comparison("cause-pre-vote", "published", None, yes, no,
                           "This run has no control with pre-vote off to attribute the "
                           "behaviour to pre-vote.")
    else:
        cause = comparison("cause-pre-vote", "published",
                           on["disrupted"] == 0 and off["disrupted"] > 0, yes, no,
                           on=f"{on['disrupted']} of {on['trials']} disrupted",
                           off=f"{off['disrupted']} of {off['trials']} disrupted")
    return [quiet, loud, cause]


ONE_WAY_YES = {
    "leader_deaf": "With the leader deaf (it sends, hears nothing from the followers), "
                   "a follower ended up the only leader, named by a majority, in every trial: "
                   "the old leader, hearing no acknowledgements, stopped leading.",
    "leader_mute": "With the leader mute (it still hears the followers, they hear nothing "
                   "from it), a follower ended up the only leader, named by a majority, in "
                   "every trial.",
}


def _one_way(summary: Mapping[str, Any]) -> list[Finding]:
    """Per direction: the followers' side elects; across both: no two claimants at once."""
    data = summary["one_way"]
    if not data:
        return [untestable("oneway-no-two-leaders", "This run had no one-way partitions.")]
    found = []
    for direction in ONE_WAY:
        d = data.get(direction)
        fid = f"oneway-{direction.split('_')[1]}-followers-lead"
        if d is None:
            found.append(untestable(fid, f"This run had no one-way partition with the "
                                         f"{ONE_WAY_LABELS[direction]}."))
            continue
        figures = {"trials": fmt_count(d["trials"]),
                   "a follower alone led": fmt_share(d["follower_led"], d["trials"]),
                   "the old leader alone led": fmt_share(d["old_led"], d["trials"]),
                   "no single leader within the wait": fmt_count(d["trials"] - d["settled"])}
        if d["settled_s"]:
            figures["one leader after the cut"] = time_phrase(d["settled_s"], d["round_s"])
            figures["term rise"] = ", ".join(f"+{n}" for n in d["term_rise"])
        found.append(claim(
            fid, d["follower_led"] == d["trials"], ONE_WAY_YES[direction],
            f"With the {ONE_WAY_LABELS[direction]}, the trials did not all end with one of "
            "the followers as the only leader.", **figures))
    ran = [data[direction] for direction in ONE_WAY if direction in data]
    trials = sum(d["trials"] for d in ran)
    rounds = sum(d["rounds"] for d in ran)
    round_s = statistics.median(d["round_s"] for d in ran)
    overlapping = sum(d["overlap_trials"] for d in ran)
    spans = [span for d in ran for span in d["overlap_spans_s"]]
    figures = {"trials": fmt_count(trials), "poll rounds": fmt_count(rounds),
               "one round (median)": fmt_seconds(round_s),
               "trials with two claimants": fmt_share(overlapping, trials),
               **{f"of them, {ONE_WAY_LABELS[direction].split(' (')[0]}":
                  f"{data[direction]['overlap_trials']} of {data[direction]['trials']}"
                  for direction in ONE_WAY if direction in data}}
    if spans:
        figures["first to last such round, per trial"] = ", ".join(
            fmt_seconds(span) for span in spans)
    found.append(claim(
        "oneway-no-two-leaders", overlapping == 0,
        "In no poll round of the one-way partitions did two members claim leadership at "
        f"once (an overlap shorter than a round, about {fmt_seconds(round_s)}, would not "
        "show).",
        f"Two members claimed leadership in the same poll round in {overlapping} of "
        f"{trials} one-way trials.", **figures))
    return found


def _causes() -> list[Finding]:
    return [
        untestable(
            "cause-check-quorum",
            "Whether check-quorum is what made the cut-off leader step down cannot be "
            "attributed: etcd 3.5 always runs check-quorum, so this run has no control "
            "without it.", source="published"),
    ]


def findings(summary: Mapping[str, Any], params: Mapping[str, Any],
             metadata: Mapping[str, Any] | None = None) -> list[Finding]:
    """The claims of Q3, answer first; ``metadata`` gives the etcd version."""
    d = summary["detail"]
    poll = summary.get("poll_interval_s")
    return name_all([
        _majority(d, poll),
        _step_down(d, poll),
        _stale(d),
        _default_client(d, summary.get("op_timeout_s")),
        _require_leader(d),
        _not_applied(d),
        _follower(d),
        _heal(d, poll),
        _consistent(summary),
        _reads(d),
        *_last_second(summary["last_second"]),
        _register(summary),
        _register_every_fault(summary),
        *history_findings(summary),
        _lease(d),
        _crash_divergence(summary, metadata),
        *_prevote(summary),
        *_one_way(summary),
        *_causes(),
        untestable(
            "course-blank",
            "The course report left this question blank (\"3. ?\"), so there is nothing to "
            "compare with.", source="course"),
    ], COURSE_NAMES)


# -- tables ------------------------------------------------------------------------------------

def one_way_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per direction of the one-way partitions that ran."""
    rows = []
    for direction in ONE_WAY:
        d = summary["one_way"].get(direction)
        if d is None:
            continue
        poll = d["round_s"]
        rows.append({
            "direction": ONE_WAY_LABELS[direction],
            "trials": fmt_count(d["trials"]),
            "led": (f"a follower {d['follower_led']}, the old leader {d['old_led']}, "
                    f"none {d['trials'] - d['settled']}"),
            "settled": time_phrase(d["settled_s"], poll),
            "stepped_down": time_phrase(d["stepped_down_s"], poll),
            "overlap": (f"{d['overlap_trials']} of {d['trials']} trials, "
                        f"{fmt_count(d['overlap_rounds'])} round(s)"),
            "healed": (f"{d['healed']} of {d['trials']}: "
                       f"{time_phrase(d['heal_s'], poll)}"),
        })
    return rows


def op_rows(samples: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per minority operation and scenario: outcome shares, error, time."""
    rows = []
    for op in MINORITY_OPS:
        for scenario in SCENARIOS:
            records = [t["minority"][op] for t in samples.get(scenario) or []]
            if not records:
                continue
            details = sorted({f"{r['code']}" + (f": \"{r['details']}\"" if r["details"] else "")
                              for r in records})
            rows.append({
                "operation": OP_LABELS[op], "scenario": SCENARIO_LABELS[scenario],
                "outcome": outcome_counts_text([r["outcome"] for r in records]),
                "details": "; ".join(details).replace("|", "\\|"),
                "time": median_phrase([float(r["elapsed_s"]) for r in records]),
            })
    return rows


def stale_rows(samples: Mapping[str, Any]) -> list[dict[str, str]]:
    """The first trial of each scenario: both sides' answer for the test key (measured
    cells only: a read that did not answer shows its outcome instead)."""
    rows = []
    for scenario in SCENARIOS:
        trials = samples.get(scenario) or []
        if not trials:
            continue
        trial = trials[0]
        local, majority = trial["minority"]["serializable_read"], trial["majority_read"]
        for side, member, read in (
            ("majority, linearizable read", majority.get("member", "?"), majority),
            ("cut off, serializable read", trial["isolated"], local),
        ):
            ok = read["outcome"] == "ok"
            rows.append({
                "scenario": SCENARIO_LABELS[scenario], "side": side, "member": str(member),
                "value": f"`{read.get('value')}`" if ok else f"{read['outcome']} ({read['code']})",
                "mod_revision": fmt_count(read["mod_revision"]) if ok else "",
                "revision": fmt_count(read["revision"]) if ok else "",
            })
    return rows


def timing_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per timed event that was seen at least once."""
    d = summary["detail"]
    poll = summary.get("poll_interval_s")
    rows = []
    for label, _scenarios, key in EVENTS:
        values = d["times_s"][key]
        if values:
            rows.append({"label": label, "n": fmt_count(len(values)),
                         "time": time_phrase(values, poll)})
    return rows


def chart_series(summary: Mapping[str, Any], minimum: int = 3) -> dict[str, list[float]]:
    """The timed events with at least ``minimum`` values (fewer are shown as table rows)."""
    d = summary["detail"]
    return {label: d["times_s"][key] for label, _scenarios, key in EVENTS
            if len(d["times_s"][key]) >= minimum}


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course-blank": ("the course's answer", "", "", "the question was left blank"),
}
