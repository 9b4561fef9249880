"""Q10 ``membership`` analysis: join/leave/crash latencies, watchers against etcd's own
history, the leader failover and the compaction resync, as findings.

Pure: samples in (see :mod:`.run` for how they are taken),
summary and findings out. Truth is etcd's event history of the service prefix, read up to
a fence revision; watchers are compared with it by revision, never by time.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from etcdlab.figures import stats
from etcdlab.figures.units import (
    fmt_count,
    fmt_median,
    fmt_ms,
    fmt_seconds,
    fmt_share,
    fmt_ttl,
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

# etcd's lessor looks for expired leases every 500 ms (lease/lessor.go, runLoop).
LESSOR_CHECK_S = 0.5
# Kill, keepalive and sighting times come from processes on one machine, stamped when a
# line or an event arrives: tens of ms each way.
TIME_TOLERANCE_S = 0.1
# The election's end is polled (etcdlab.lab.cluster.Cluster.wait_leader polls every 50 ms and
# asks every member, up to 0.5 s): the probe's expiry after it is late by that much.
LEADER_POLL_S = 0.05
ELECTION_TOLERANCE_S = 0.3
# What this report takes "in real time" to mean for a watch notification.
REAL_TIME_S = 1.0

# The parts of the answer, as the answer names them when one fails or cannot be tested.
PARTS = {
    "joins-reach-every-watcher": "joins reaching every watcher",
    "leaves-reach-every-watcher": "graceful leaves reaching every watcher",
    "crash-seen-at-lease-expiry": "crashes seen at lease expiry",
    "watchers-match-etcd": "watchers equal to etcd",
    "failover-keeps-registrations": "registrations kept through a leader crash",
    "compaction-resync": "the resync after a compaction",
}

ASKED = (
    Asked("instances", 5, "service instances (the full run's)", fmt_count),
    Asked("watchers", 3, "watchers (the full run's)", fmt_count),
    Asked("trials", 10, "leave and crash trials (the full run's)", fmt_count),
    Asked("churn_s", 20.0, "churn phase (the full run's)", fmt_seconds),
    Asked("ttl_s", 5, "instance lease TTL (the full run's)", fmt_ttl),
    Asked("cut_off_trials", 3, "instances cut off beside a crashed one (the full run's)",
          fmt_count),
)


def compare_with_truth(changes: Sequence[Mapping[str, Any]], truth: Sequence[Sequence[Any]],
                       after_revision: int, up_to_revision: int | None = None
                       ) -> dict[str, Any]:
    """Missed / duplicated / unexpected events of one watcher against etcd's history.

    Only events after ``after_revision`` (the watcher's snapshot) and up to
    ``up_to_revision`` count; the watcher's changes are those applied from watch events.
    """
    def within(revision: int) -> bool:
        return revision > after_revision and (up_to_revision is None
                                              or revision <= up_to_revision)

    expected = Counter((r, i, op) for r, i, op in truth if within(r))
    got = Counter((c["revision"], c["instance"], "delete" if c["kind"] == "leave" else "put")
                  for c in changes if c["via"] == "event" and within(c["revision"]))
    missed = expected - got
    extra = got - expected  # applied more often than etcd has it, or not at all in etcd
    return {"expected": sum(expected.values()), "applied": sum(got.values()),
            "missed": sum(missed.values()),
            "duplicated": sum(n for key, n in extra.items() if key in expected),
            "unexpected": sum(n for key, n in extra.items() if key not in expected),
            "missed_examples": sorted(missed)[:5]}


def event_sequence(changes: Sequence[Mapping[str, Any]], after_revision: int,
                   up_to_revision: int) -> list[tuple[int, str, str]]:
    """The watcher's applied events in a revision window, in the order it applied them."""
    return [(c["revision"], c["instance"], c["kind"]) for c in changes
            if c["via"] == "event" and after_revision < c["revision"] <= up_to_revision]


def _series(values: Sequence[float], scale: float = 1.0) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "min": None, "max": None}
    s = stats.summarize([v * scale for v in values])
    return {"n": s["n"], "median": s["median"], "p95": s["p95"], "min": s["min"],
            "max": s["max"]}


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Latencies, detection, watcher consistency and the failover outcome, from samples."""
    ttl = samples.get("ttl_s", params.get("ttl_s"))
    joins = samples.get("join", [])
    leaves = [s for s in samples.get("leave", []) if s["outcome"] == "ok"]
    crashes = samples.get("crash", [])
    join = [s["join_ms"] for s in joins if s["join_ms"] is not None]
    leave = [s["leave_ms"] for s in leaves if s["leave_ms"] is not None]
    crash = [s["detect_s"] for s in crashes if s["detect_s"] is not None]
    lags = [s["expiry_lag_s"] for s in crashes if s.get("expiry_lag_s") is not None]
    j, lv, c = _series(join), _series(leave), _series(crash)
    summary: dict[str, Any] = {
        "ttl_s": ttl,
        "join": {"n": j["n"], "median_ms": j["median"], "p95_ms": j["p95"], "max_ms": j["max"],
                 "not_seen": sum(1 for s in joins if s["join_ms"] is None),
                 "attempts": len(joins), "values_ms": join,
                 # the registration write (lease grant + put, until acknowledged), and from
                 # its acknowledgement to the last watcher: the watch delivery
                 "write_values_ms": [s["put_ms"] for s in joins
                                     if s["join_ms"] is not None and s.get("put_ms") is not None],
                 "delivery_values_ms": [round(s["join_ms"] - s["put_ms"], 3) for s in joins
                                        if s["join_ms"] is not None
                                        and s.get("put_ms") is not None]},
        "leave": {"n": lv["n"], "median_ms": lv["median"], "p95_ms": lv["p95"],
                  "max_ms": lv["max"],
                  "unknown": sum(1 for s in samples.get("leave", []) if s["outcome"] != "ok"),
                  "attempts": len(leaves), "values_ms": leave},
        "crash_detect": {
            "n": c["n"], "median_s": c["median"], "p95_s": c["p95"], "min_s": c["min"],
            "max_s": c["max"],
            "not_seen": sum(1 for s in crashes if s["detect_s"] is None),
            "attempts": len(crashes), "values_s": crash,
            "within_ttl_plus_2s": sum(1 for v in crash if ttl is not None and v <= ttl + 2),
            "expiry_lag_median_s": stats.median_or_none(lags), "expiry_lags_s": lags,
            "since_keepalive_s": [s["since_keepalive_s"] for s in crashes
                                  if s.get("since_keepalive_s") is not None],
        },
    }
    summary.update(_consistency(samples))
    summary["churn"] = _churn(samples.get("churn", []), params)
    summary["leader_failover"] = _failover(samples)
    summary["compaction"] = _compaction(samples.get("compaction"))
    summary["resume"] = resume_evidence(samples)
    summary["member_lost"] = _member_lost(samples.get("member_lost") or [])
    if "cut_off" in samples:  # older results have no such phase and render as before
        summary["cut_off"] = cut_off(samples["cut_off"])
    return summary


def _last_seen(seen: Mapping[str, float | None]) -> float | None:
    """When the last watcher saw it; None if one never did (or there is no watcher)."""
    times = [t for t in (seen or {}).values() if t is not None]
    return max(times) if times and len(times) == len(seen) else None


def _first_seen(seen: Mapping[str, float | None]) -> float | None:
    times = [t for t in (seen or {}).values() if t is not None]
    return min(times) if times else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 6)


def cut_off(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per trial of the cut-off phase: the cut-off instance and the one crashed beside it.

    ``gone_s`` / ``crash_gone_s``: from the cut / the kill to the last watcher seeing the
    key deleted; ``lag_s`` / ``crash_lag_s``: that sighting after the lease's deadline (the
    last keepalive's answer + TTL, as for the crash trials); ``margin_s``: from the
    instance's own deadline (its last refresh's send time + TTL) to the first watcher
    seeing its key deleted (≥ 0: it could know before anyone was told); ``noticed_s``: its
    ``lease_presumed_lost`` event after that deadline; ``rejoin_s`` / ``back_s``: from the
    heal to its re-registration / to the last watcher seeing it again."""
    out: dict[str, Any] = {"trials": [], "skipped": []}
    for t in trials:
        if t.get("skipped"):
            out["skipped"].append(t["skipped"])
            continue
        ttl = t["ttl_s"]
        gone, crash_gone = _last_seen(t["gone_seen"]), _last_seen(t["crash_gone_seen"])
        out["trials"].append({
            "member": t["member"], "instance": t["instance"], "crashed": t["crashed"],
            "gone_s": _minus(gone, t["cut_at"]),
            "crash_gone_s": _minus(crash_gone, t["killed_at"]),
            "lag_s": _minus(gone, t["last_keepalive"] + ttl),
            "crash_lag_s": _minus(crash_gone, t["crash_last_keepalive"] + ttl),
            "cut_after_keepalive_s": _minus(t["cut_at"], t["last_keepalive"]),
            "margin_s": _minus(_first_seen(t["gone_seen"]), t.get("valid_until")),
            "noticed_s": _minus(t.get("presumed_lost_at"), t.get("valid_until")),
            "keepalives_failed": t["keepalives_failed"],
            "failure_errors": list(t.get("failure_errors") or []),
            "alive_while_unlisted": bool(t["alive_while_unlisted"]),
            "lease_lost_s": _minus(t.get("lease_lost_at"), t.get("healed_at")),
            "rejoin_s": _minus(t.get("reregistered_at"), t.get("healed_at")),
            "back_s": _minus(_last_seen(t.get("back_seen") or {}), t.get("healed_at")),
        })
    return out


LOST_LABELS = {"crash": "crashed (SIGKILL)", "cut": "cut off from the other members"}


def _member_lost(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per case of the "watcher's member lost" phase that ran (crash, cut): the watcher,
    its member, the time to its reconnection and its reason, where it went, when it had
    caught up with etcd's revision of that moment; skipped cases with their reason."""
    out: dict[str, Any] = {"cases": [], "skipped": []}
    for t in trials:
        if t.get("skipped"):
            out["skipped"].append({"mode": t["mode"], "why": t["skipped"]})
            continue
        out["cases"].append({key: t.get(key) for key in (
            "mode", "member", "watcher", "reconnect_s", "reason", "moved_to", "caught_up_s",
            "was_leader")})
        behind = (None if t.get("target_revision") is None
                  else t["target_revision"] - t["revision_before"])
        out["cases"][-1]["behind"] = behind
    return out


def _commit_times(samples: Mapping[str, Any]) -> dict[int, float]:
    """The earliest time by which etcd had certainly committed each revision: a write's
    acknowledgement (joins, revokes, churn) or any watcher applying it."""
    known: dict[int, float] = {}

    def note(revision: int | None, t: float | None) -> None:
        if revision is not None and t is not None:
            known[revision] = min(t, known.get(revision, t))

    for join in samples.get("join", []):
        note(join.get("revision"), join.get("acked"))
    for leave in samples.get("leave", []):
        note(leave.get("revision"), leave.get("revoked"))
    for op in samples.get("churn", []):
        if op.get("outcome") == "ok" and op.get("t") is not None:
            note(op.get("revision"), op["t"] + op.get("elapsed_s", 0.0))
    for watcher in samples.get("watchers") or []:
        for change in watcher["changes"]:
            if change["via"] == "event":
                note(change["revision"], change["t"])
    return known


def resume_evidence(samples: Mapping[str, Any]) -> dict[str, Any]:
    """Whether a broken watch stream was resumed across a gap that held events.

    A reconnection logs the revision the watcher resumes from (its last applied + 1). The
    resume is *exercised* when etcd had committed an event at or after that revision
    before the stream broke was noticed, and the watcher then applied it from the resumed
    stream: an event it would miss if it resumed from the wrong revision. Events whose
    commit time is unknown (lease expiries) do not count, so this can only under-count.
    """
    committed = _commit_times(samples)
    reconnects, exercised, gap_events = 0, [], 0
    for watcher in samples.get("watchers") or []:
        applied = {c["revision"] for c in watcher["changes"] if c["via"] == "event"}
        for connection in watcher["connections"]:
            if connection["what"] != "reconnect":
                continue
            reconnects += 1
            if "resume_revision" not in connection:
                continue
            gap = [r for r, t in committed.items()
                   if r >= connection["resume_revision"] and t < connection["t"]
                   and r in applied]
            if gap:
                exercised.append(watcher["id"])
                gap_events += len(gap)
    return {"reconnects": reconnects, "exercised_by": sorted(set(exercised)),
            "resumes_exercised": len(exercised), "gap_events": gap_events}


def _consistency(samples: Mapping[str, Any]) -> dict[str, Any]:
    """Watchers against etcd's history (last check) and against each other."""
    watchers = samples.get("watchers") or []
    checks = samples.get("checks") or []
    if not watchers or not checks:
        return {"watchers_consistent": False, "events_missed": None, "events_duplicated": None,
                "watchers": {}}
    final = checks[-1]
    truth, up_to = final["truth_events"], final["fence_revision"]
    per_watcher = {}
    for w in watchers:
        compared = compare_with_truth(w["changes"], truth, w["snapshot_revision"], up_to)
        compared.update(duplicates_dropped=w["duplicates_dropped"], resyncs=w["resyncs"],
                        reconnects=sum(1 for c in w["connections"]
                                       if c["what"] in ("reconnect", "stalled")),
                        anomalies=len(w["anomalies"]))
        per_watcher[w["id"]] = compared
    common = max(w["snapshot_revision"] for w in watchers)
    sequences = {w["id"]: event_sequence(w["changes"], common, up_to) for w in watchers}
    same_sequence = len({tuple(s) for s in sequences.values()}) == 1
    views_equal = all(all(v == check["truth_members"] for v in check["watcher_members"].values())
                      for check in checks)
    missed = sum(w["missed"] for w in per_watcher.values())
    duplicated = sum(w["duplicated"] for w in per_watcher.values())
    unexpected = sum(w["unexpected"] for w in per_watcher.values())
    return {
        "watchers_consistent": views_equal and same_sequence and missed == 0
        and duplicated == 0 and unexpected == 0,
        "views_equal_truth": views_equal, "same_sequence": same_sequence,
        "events_missed": missed, "events_duplicated": duplicated,
        "events_unexpected": unexpected, "truth_events": len(truth),
        "events_expected_total": sum(w["expected"] for w in per_watcher.values()),
        "duplicates_dropped": sum(w["duplicates_dropped"] for w in per_watcher.values()),
        "watchers": per_watcher,
    }


def _churn(ops: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    churn = [o for o in ops if o["phase"] == "churn"]
    outcomes = Counter(o["outcome"] for o in churn)
    return {"operations": len(churn), "ok": outcomes.get("ok", 0),
            "unknown": outcomes.get("unknown", 0), "failed": outcomes.get("failed", 0),
            "rate_per_s": params.get("churn_rate"),
            "failover_operations": sum(1 for o in ops if o["phase"] == "failover"),
            "failover_unknown": sum(1 for o in ops
                                    if o["phase"] == "failover" and o["outcome"] != "ok")}


def _failover(samples: Mapping[str, Any]) -> dict[str, Any]:
    failover = samples.get("failover")
    checks = samples.get("checks") or []
    if not failover or not checks:
        return {"instances_lost": None}
    truth = checks[-1]["truth_events"]
    low, high = failover["from_revision"], failover["to_revision"]
    lost = sorted({i for r, i, op in truth
                   if op == "delete" and i in failover["instances"] and low < r <= high})
    probe = failover["probe"]
    ttl = probe["ttl_s"]
    # Without a refresh the probe lease would have expired at grant + TTL.
    outlived = (None if probe["deleted_seen_at"] is None
                else round(probe["deleted_seen_at"] - (probe["granted_at"] + ttl), 3))
    window = {"missed": 0, "duplicated": 0, "unexpected": 0, "reconnects": 0}
    for w in samples.get("watchers") or []:
        compared = compare_with_truth(w["changes"], truth, max(low, w["snapshot_revision"]), high)
        for key in ("missed", "duplicated", "unexpected"):
            window[key] += compared[key]
        window["reconnects"] += sum(
            1 for c in w["connections"] if c["what"] in ("reconnect", "stalled")
            and failover["crashed_at"] <= c["t"] <= failover["restarted_at"])
    return {
        "instances": len(failover["instances"]), "instances_lost": len(lost),
        "lost": lost, "reregistrations": sum(failover["reregistrations"].values()),
        "keepalive_failures": sum(failover["keepalive_failures"].values()),
        "election_s": failover["election_s"],
        "probe_remaining_before_s": probe["remaining_before_s"],
        "probe_remaining_after_s": probe["remaining_after_s"],
        "probe_outlived_s": outlived,
        # A new leader restarts every lease at TTL + election timeout (lessor.Promote).
        "probe_expired_after_election_s": (
            None if probe["deleted_seen_at"] is None
            else round(probe["deleted_seen_at"] - failover["elected_at"], 3)),
        "events_in_window": sum(1 for r, _i, _op in truth if low < r <= high),
        "events_missed": window["missed"], "events_duplicated": window["duplicated"],
        "events_unexpected": window["unexpected"], "watcher_reconnects": window["reconnects"],
    }


def _compaction(sample: Mapping[str, Any] | None) -> dict[str, Any]:
    if not sample:
        return {"resynced": None, "view_equals_truth": None}
    return {"resynced": sample["resyncs"] >= 1,
            "view_equals_truth": sample["view_members"] == sample["truth_members"],
            "resync_changes": sample["resync_changes"],
            "stopped_at_revision": sample["stopped_at_revision"],
            "compacted_to": sample["compacted_to"]}




# -- findings -------------------------------------------------------------------------------


def _member_lost_finding(summary: Mapping[str, Any]) -> Finding:
    """The watcher whose member crashed or was cut off moved on, caught up, lost nothing."""
    lost = summary["member_lost"]
    cases = lost["cases"]
    if not cases:
        why = "; ".join(f"{s['mode']}: {s['why']}" for s in lost["skipped"])
        return untestable("watcher-leaves-a-lost-member",
                          "No watcher's member was crashed or cut off in this run"
                          + (f" ({why})." if why else "."))
    moved = [c for c in cases if c["reconnect_s"] is not None and c["moved_to"]
             and c["moved_to"] != c["member"] and c["caught_up_s"] is not None]
    clean = summary.get("events_missed") == 0 and summary.get("events_duplicated") == 0
    figures = {}
    for c in cases:
        label = f"member {LOST_LABELS[c['mode']]}"
        figures[label] = (
            f"{c['watcher']} on {c['member']}"
            + (" (the leader)" if c.get("was_leader") else "") + ": "
            + ("no reconnection within the wait" if c["reconnect_s"] is None else
               f"reconnected after {fmt_seconds(c['reconnect_s'])} ({c['reason']}) to "
               f"{c['moved_to']}, then {c['behind']} revision(s) behind etcd; caught up "
               "after "
               + ("not within the wait" if c["caught_up_s"] is None
                  else fmt_seconds(c["caught_up_s"]))))
    figures["events missed, applied twice (every watcher, whole run)"] = (
        f"{summary.get('events_missed')}, {summary.get('events_duplicated')}")
    modes = " and ".join(LOST_LABELS[c["mode"]] for c in cases)
    return claim(
        "watcher-leaves-a-lost-member", len(moved) == len(cases) and clean,
        f"A watcher whose member was {modes} reconnected to another member, caught up with "
        "etcd, and no watcher missed an event or applied one twice.",
        f"A watcher whose member was {modes} did not both move to another member and "
        "catch up, or some watcher missed or repeated an event.", **figures)


def _on_time(lag: float | None) -> bool:
    return lag is not None and -TIME_TOLERANCE_S <= lag <= LESSOR_CHECK_S + TIME_TOLERANCE_S


def cut_off_findings(cut: Mapping[str, Any], ttl: float) -> list[Finding]:
    """The instance cut off from the majority beside a crashed one: listed gone at its
    lease's expiry like the crashed one though alive; its own deadline before the
    deletion; back after the heal."""
    trials = cut["trials"]
    why = ("No instance was cut off in this run"
           + (f" ({'; '.join(cut['skipped'])})." if cut["skipped"] else "."))
    if not trials:
        return [untestable(i, why) for i in (
            "cut-off-instance-expires", "cut-off-instance-knew-first",
            "cut-off-instance-returns")]
    n = len(trials)
    expired = [t for t in trials if _on_time(t["lag_s"]) and _on_time(t["crash_lag_s"])
               and t["alive_while_unlisted"]]
    errors = sorted({e for t in trials for e in t["failure_errors"]})
    window = (f"within etcd's {fmt_seconds(LESSOR_CHECK_S)} expiry check (± "
              f"{fmt_seconds(TIME_TOLERANCE_S)}) of its lease's deadline")

    def values(key: str) -> list[float]:
        return [t[key] for t in trials if t[key] is not None]

    expires = claim(
        "cut-off-instance-expires", len(expired) == n,
        "A running instance whose only member was cut off from the majority left every "
        "watcher's view like one SIGKILLed at that moment, at its lease's expiry: the registry "
        "cannot tell it from a dead one.",
        "The cut-off instance and the crashed one were not both listed gone at their leases' "
        f"deadlines with the cut-off one alive (trials that were: {fmt_share(len(expired), n)}).",
        **{"cut → last watcher saw the cut-off instance gone": _s_median(values("gone_s")),
           "kill → last watcher saw the crashed one gone": _s_median(values("crash_gone_s")),
           "deletions after their leases' deadlines (cut off; crashed)":
               f"{_s_median(values('lag_s'))}; {_s_median(values('crash_lag_s'))}",
           "cut after the instance's last keepalive": _s_median(
               values("cut_after_keepalive_s")),
           "keepalives that failed while cut off": fmt_count(
               sum(t["keepalives_failed"] for t in trials)),
           **({"their errors": "; ".join(errors)} if errors else {}),
           "trials like a crash, the process alive": fmt_share(len(expired), n),
           "counted like a crash": f"each key deleted {window}"})

    margins = values("margin_s")
    first = [m >= 0 for m in margins]
    knew = claim(
        "cut-off-instance-knew-first", None if not margins else (
            len(margins) == n and all(first)),
        "The cut-off instance's own deadline passed before any watcher saw its key deleted: "
        "had it stopped answering as its name then, no watcher would have listed it gone "
        "while it still answered.",
        "The cut-off instance's own deadline did not always pass before a watcher saw its "
        f"key deleted (trials where it did: {fmt_share(sum(first), n)}).",
        "The cut-off instance's deadline or its deletion was not recorded.",
        **{"its deadline → first watcher saw the deletion": _s_median(margins),
           "it noticed (lease_presumed_lost) after its deadline": _s_median(
               values("noticed_s")),
           "trials where its deadline passed first": fmt_share(sum(first), n),
           "its own deadline": "the send time of its last successful refresh + the TTL etcd "
                               "granted"})

    rejoined = [t for t in trials if t["rejoin_s"] is not None and t["back_s"] is not None]
    returns = claim(
        "cut-off-instance-returns", len(rejoined) == n,
        "After the heal, the cut-off instance registered again and every watcher listed it "
        f"again (trials: {fmt_share(len(rejoined), n)}).",
        "After the heal, the cut-off instance was not always registered again and seen by "
        f"every watcher (trials where it was: {fmt_share(len(rejoined), n)}).",
        **{"heal → its keepalive answered TTL 0 (lease gone)": _s_median(
               values("lease_lost_s")),
           "heal → re-registered": _s_median(values("rejoin_s")),
           "heal → last watcher saw it again": _s_median(values("back_s")),
           "TTL": fmt_ttl(ttl)})
    return [expires, knew, returns]


def _combine(parts: Sequence[Finding]) -> bool | None:
    """False if any part failed, None if none failed but one could not be tested."""
    if any(p.holds is False for p in parts):
        return False
    if any(p.holds is None for p in parts):
        return None
    return True


def _ms_median(values: Sequence[float]) -> str:
    return fmt_median(values, fmt_ms)


def _s_median(values: Sequence[float]) -> str:
    return fmt_median(values, fmt_seconds)


def findings(summary: Mapping[str, Any], params: Mapping[str, Any],
             election_timeout_ms: float | None = None) -> list[Finding]:
    """The claims of Q10, answer first. ``election_timeout_ms`` (the run's metadata) is
    what a new leader adds to every lease it takes over."""
    ttl = float(summary["ttl_s"])
    join, leave, crash = summary["join"], summary["leave"], summary["crash_detect"]
    failover, compaction = summary["leader_failover"], summary["compaction"]
    watchers = fmt_count(len(summary.get("watchers") or {}) or params.get("watchers"))
    parts: list[Finding] = []

    seen, n = join["n"], join["attempts"]
    parts.append(claim(
        "joins-reach-every-watcher", None if n == 0 else seen == n,
        f"Each join reached each of the {watchers} watchers; joins: {fmt_share(seen, n)}.",
        f"Some joins did not reach all {watchers} watchers (joins that did: "
        f"{fmt_share(seen, n)}).",
        "No instance joined in this run.",
        **{"register() → last watcher": _ms_median(join["values_ms"]),
           **({"of it, the registration write (lease grant + put)":
               _ms_median(join["write_values_ms"]),
               "and the watch delivery (acknowledged → last watcher)":
               _ms_median(join["delivery_values_ms"])} if join["write_values_ms"] else {})}))

    seen, n = leave["n"], leave["attempts"]
    parts.append(claim(
        "leaves-reach-every-watcher", None if n == 0 else seen == n,
        f"Each graceful leave reached each of the {watchers} watchers; leaves: "
        f"{fmt_share(seen, n)}.",
        f"Some graceful leaves did not reach all {watchers} watchers (leaves that did: "
        f"{fmt_share(seen, n)}).",
        "No graceful leave with a known outcome took place in this run.",
        **{"lease revoke → last watcher": _ms_median(leave["values_ms"]),
           **({"leaves with unknown outcome": fmt_count(leave["unknown"])}
              if leave["unknown"] else {})}))

    lags, n = crash["expiry_lags_s"], crash["attempts"]
    on_time = [_on_time(lag) for lag in lags]
    parts.append(claim(
        "crash-seen-at-lease-expiry", None if n == 0 else (crash["n"] == n and all(on_time)),
        "A crashed (SIGKILLed) instance left every watcher's view only when its lease "
        f"expired: its key was deleted within etcd's {fmt_seconds(LESSOR_CHECK_S)} expiry check "
        "of the lease's deadline, one TTL after its last keepalive.",
        "Crash detection did not follow the lease's expiry: "
        f"{fmt_count(sum(on_time))} of {fmt_count(n)} crashes were seen within etcd's "
        f"{fmt_seconds(LESSOR_CHECK_S)} expiry check of the lease's deadline, "
        f"{fmt_count(crash['not_seen'])} not by every watcher.",
        "No instance was crashed in this run.",
        **{"kill → last watcher": _s_median(crash["values_s"]),
           "kill after the last keepalive": _s_median(crash["since_keepalive_s"]),
           "delete after the lease's deadline": _s_median(lags),
           "crashes seen at the lease's expiry": fmt_share(sum(on_time), n),
           "time stamps' tolerance": f"± {fmt_seconds(TIME_TOLERANCE_S)}"}))

    if summary.get("events_missed") is None:
        consistent: bool | None = None
        expected = missed = duplicated = 0
    else:
        consistent = summary["watchers_consistent"]
        expected = summary["events_expected_total"]
        missed, duplicated = summary["events_missed"], summary["events_duplicated"]
    problems = []
    if consistent is False:
        if not summary["views_equal_truth"]:
            problems.append("a final view differed from etcd's")
        if not summary["same_sequence"]:
            problems.append("the watchers applied different sequences")
        if summary["events_unexpected"]:
            problems.append(f"{fmt_count(summary['events_unexpected'])} events etcd does "
                            "not have were applied")
    parts.append(claim(
        "watchers-match-etcd", consistent,
        "Through churn and a SIGKILL of the etcd leader the watchers' views ended equal to "
        "etcd's and they applied the same sequence of events, none missed or applied twice.",
        "The watchers did not keep a correct list"
        + (f" ({'; '.join(problems)})" if problems else "")
        + f": {fmt_count(missed)} of {fmt_count(expected)} events missed and "
          f"{fmt_count(duplicated)} applied twice.",
        "The run has no comparison of the watchers with etcd's history.",
        **({"events missed": fmt_share(missed, expected),
            "events applied twice": fmt_share(duplicated, expected),
            "events in etcd's history": fmt_count(summary["truth_events"])}
           if consistent is not None else {})))

    lost = failover.get("instances_lost")
    parts.append(claim(
        "failover-keeps-registrations", None if lost is None else lost == 0,
        "A SIGKILL of the etcd leader cost no live instance its registration (instances "
        f"that lost it: {fmt_share(lost, failover.get('instances'))}).",
        f"Instances lost their registration when the etcd leader was SIGKILLed: "
        f"{fmt_share(lost, failover.get('instances'))}"
        + (f" ({', '.join(failover['lost'])})" if lost else "") + ".",
        "The leader-failover phase did not complete in this run.",
        **({"new leader after": fmt_within(failover["election_s"], LEADER_POLL_S),
            "failed keepalives / re-registrations":
                f"{fmt_count(failover['keepalive_failures'])} / "
                f"{fmt_count(failover['reregistrations'])}"} if lost is not None else {})))

    resynced = compaction.get("resynced")
    parts.append(claim(
        "compaction-resync",
        None if resynced is None else bool(resynced and compaction["view_equals_truth"]),
        "A watcher away while the history was compacted resynchronised from a fresh "
        "snapshot and ended equal to etcd"
        f" ({fmt_count(compaction.get('resync_changes'))} changes learned that way).",
        "A watcher away while the history was compacted "
        + ("resynchronised but did not end equal to etcd." if resynced
           else "did not resynchronise from a snapshot."),
        "The compaction phase did not complete in this run."))

    holds = _combine(parts)
    failed = [PARTS[p.id] for p in parts if p.holds is False]
    medians = (f"; joins seen in a median of {fmt_ms(statistics.median(join['values_ms']))}, "
               f"crashes {fmt_seconds(statistics.median(crash['values_s']))} after the kill"
               if join["values_ms"] and crash["values_s"] else "")
    untested = [PARTS[p.id] for p in parts if p.holds is None]
    timing = (f"joins seen in {_ms_median(join['values_ms'])}; crashes "
              f"{_s_median(crash['values_s'])} after the kill, TTL {fmt_ttl(ttl)}")
    answer = claim(
        "membership-service-works", holds,
        f"Yes: each of the {watchers} watchers learned of each join and graceful leave, of a "
        f"crash only at its lease's expiry, and kept a list equal to etcd's{medians}.",
        f"Only partly in this run: {'; '.join(failed)} did not hold{medians}.",
        f"Not fully answered in this run: {'; '.join(untested)} could not be tested"
        f"{medians}.",
        **{"register() → last watcher": fmt_median(join["values_ms"], fmt_ms),
           "kill → last watcher": fmt_median(crash["values_s"], fmt_seconds),
           "TTL": fmt_ttl(ttl)})
    short = (f"joins seen in {fmt_ms(statistics.median(join['values_ms']))}, crashes in "
             f"{fmt_seconds(statistics.median(crash['values_s']))} (TTL {fmt_ttl(ttl)})"
             if join["values_ms"] and crash["values_s"] else timing)
    answer = named(answer, "membership service",
                   f"Yes: {watchers} watchers tracked every join, leave and crash and matched "
                   f"etcd's list; {short}.",
                   f"Only partly: {'; '.join(failed)} did not hold.",
                   f"Not fully answered: {'; '.join(untested)} untested.")

    resume = summary["resume"]
    if resume["resumes_exercised"]:
        watched = [summary["watchers"][w] for w in resume["exercised_by"]
                   if w in summary.get("watchers", {})]
        resumed_ok: bool | None = all(w["missed"] == 0 and w["duplicated"] == 0
                                      for w in watched)
        why = ""
    else:
        resumed_ok = None
        why = ("No watcher's stream broke in this run, so resuming from the last applied "
               "revision was not exercised." if not resume["reconnects"] else
               f"Watcher streams broke {fmt_count(resume['reconnects'])} time(s), but no "
               "event at or after the revision a watcher resumed from is known to have been "
               "committed before its break was noticed, so the resume from the last applied "
               "revision was not exercised in this run.")
    resume_finding = claim(
        "watch-resume", resumed_ok,
        f"After a broken stream, watchers resumed from the last revision they applied and "
        f"received the {fmt_count(resume['gap_events'])} events committed while they were "
        "away, with none missed or applied twice.",
        "After a broken stream, a watcher that resumed missed or applied twice events "
        "committed while it was away.",
        why, **{"reconnections": fmt_count(resume["reconnects"])})

    items: list[Finding] = [answer, *parts, resume_finding,
                            _member_lost_finding(summary)]
    if "cut_off" in summary:
        items.extend(cut_off_findings(summary["cut_off"], ttl))

    values, n = crash["values_s"], crash["attempts"]
    low, high = 2 * ttl / 3 - TIME_TOLERANCE_S, ttl + LESSOR_CHECK_S + TIME_TOLERANCE_S
    inside = [low <= v <= high for v in values]
    items.append(comparison(
        "published-crash-window", "published", None if n == 0 else (
            len(values) == n and all(inside)),
        "As etcd's lease rules predict (a lease ends one TTL after its last refresh, "
        f"refreshed every TTL/3, expiry checked every {fmt_seconds(LESSOR_CHECK_S)}), every "
        f"crash was seen ⅔ TTL – TTL + {fmt_seconds(LESSOR_CHECK_S)} after the kill.",
        f"Crashes were seen outside ⅔ TTL – TTL + {fmt_seconds(LESSOR_CHECK_S)} after the "
        "kill, which etcd's lease rules do not predict.",
        "No instance was crashed in this run.",
        **{"window": f"{fmt_seconds(2 * ttl / 3)} – {fmt_seconds(ttl + LESSOR_CHECK_S)}",
           "kill → last watcher": _s_median(values),
           "crashes inside": fmt_share(sum(inside), n)}))

    after = failover.get("probe_expired_after_election_s")
    if after is None or election_timeout_ms is None:
        promoted: bool | None = None
        why = ("The probe lease's expiry was not observed in this run." if after is None else
               "The run's election timeout is not recorded, so the refresh cannot be checked.")
    else:
        expected_s = ttl + election_timeout_ms / 1000.0
        promoted = (expected_s - ELECTION_TOLERANCE_S <= after
                    <= expected_s + LESSOR_CHECK_S + ELECTION_TOLERANCE_S)
        why = ""
    expected_text = (fmt_seconds(ttl + election_timeout_ms / 1000.0)
                     if election_timeout_ms is not None else "TTL + election timeout")
    figures = {}
    if after is not None:
        figures = {"probe expired after the election": fmt_within(after, LEADER_POLL_S),
                   "predicted": f"{expected_text}, + up to {fmt_seconds(LESSOR_CHECK_S)} "
                                "(etcd's expiry check)",
                   "past its own deadline": fmt_seconds(failover["probe_outlived_s"]),
                   "remaining before / after the crash":
                       f"{fmt_whole_seconds(failover['probe_remaining_before_s'])} / "
                       f"{fmt_whole_seconds(failover['probe_remaining_after_s'])}"}
    items.append(comparison(
        "published-leader-refreshes-leases", "published", promoted,
        "As etcd's promotion rule predicts, the new leader restarted a lease without "
        f"keepalives at TTL + election timeout, {expected_text}: an instance dying around a "
        "leader change stays listed up to that long.",
        f"The probe lease did not expire TTL + election timeout, {expected_text}, after the "
        "election, as etcd's promotion rule predicts.",
        why, **figures))

    crashed_ok = parts[2]
    items.append(comparison(
        "course-key-removed-on-failure", "course",
        None if crashed_ok.holds is None else crash["n"] == crash["attempts"],
        "As the course report says, a failed instance's key disappeared by itself when its "
        f"lease expired; crashes: {fmt_share(crash['n'], crash['attempts'])}.",
        "Contrary to the course report, not every failed instance's key disappeared by "
        f"itself; crashes seen gone: {fmt_share(crash['n'], crash['attempts'])}.",
        "No instance was crashed in this run."))

    quick = join["values_ms"] + leave["values_ms"]
    fast = sum(1 for v in quick if v < 1000 * REAL_TIME_S)
    total = join["attempts"] + leave["attempts"]
    items.append(comparison(
        "course-real-time-notification", "course", None if total == 0 else fast == total,
        "As the course report says, every watcher heard of each creation and deletion in "
        f"real time, taken as within {fmt_seconds(REAL_TIME_S)}; a crash, though, is a "
        "deletion only at lease expiry.",
        "Not every creation or deletion reached every watcher within "
        f"{fmt_seconds(REAL_TIME_S)}, this report's reading of the course report's 'in real "
        "time'.",
        "No join or graceful leave took place in this run.",
        **{f"joins and graceful leaves within {fmt_seconds(REAL_TIME_S)}":
           fmt_share(fast, total)}))
    return name_all(items, COURSE_NAMES)


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course-key-removed-on-failure": ("key removed on failure", "removed at lease expiry",
                                      "a key stayed", "no crash measured"),
    "course-real-time-notification": ("watch notifies in real time",
                                      "every watcher within 1 s", "some later than 1 s",
                                      "no event measured"),
}
