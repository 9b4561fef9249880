"""Q10 ``membership`` in the report: timeline chart and section data from the saved samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.experiments.membership import summarize as summarize_membership
from etcdlab.results import Result
from etcdlab.sections.common import metadata_text, range_text, values
from etcdlab.stats import summarize
from etcdlab.units import MISSING, fmt_bool, fmt_count, fmt_ms, fmt_seconds

ETCD_LESSOR_CHECK_S = 0.5  # lease/lessor.go runLoop: expired leases are looked for every 500 ms


def timeline(result: Result) -> dict[str, Any] | None:
    """Membership over time as the first watcher saw it, and the truth, in seconds from t0.

    The truth is the set of live instances: +1 when an instance's registration was
    acknowledged, −1 when it started to leave (revoke) or was killed. Operations whose
    outcome is unknown are not in it.
    """
    watchers = result.samples.get("watchers") or []
    operations = sorted(result.samples.get("operations") or [], key=lambda o: o["t"])
    if not watchers or not operations:
        return None
    watcher = watchers[0]
    changes = watcher["changes"]
    t0 = min([operations[0]["t"], *(c["t"] for c in changes[:1])])
    truth_x, truth_y, count = [0.0], [0], 0
    for op in operations:
        count += op["delta"]
        truth_x.append(op["t"] - t0)
        truth_y.append(count)
    members: set[str] = set()
    seen_x, seen_y = [0.0], [0]
    for change in changes:
        if change["kind"] == "leave":
            members.discard(change["instance"])
        else:
            members.add(change["instance"])
        seen_x.append(change["t"] - t0)
        seen_y.append(len(members))
    end = max(truth_x[-1], seen_x[-1])
    truth_x.append(end)
    truth_y.append(truth_y[-1])
    seen_x.append(end)
    seen_y.append(seen_y[-1])
    spans = {}
    failover = result.samples.get("failover")
    if failover:
        spans["etcd leader crashed → restarted"] = (failover["crashed_at"] - t0,
                                                    failover["restarted_at"] - t0)
    return {"watcher": watcher["id"], "truth": (truth_x, truth_y), "seen": (seen_x, seen_y),
            "spans": spans}


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Membership over time: one watcher's view against the live instances."""
    line = timeline(result)
    if line is None:
        return {}
    name = plots.step_chart(
        out_dir / "membership_timeline.png",
        {"live instances (truth)": line["truth"],
         f"watcher {line['watcher']}'s view": line["seen"]},
        "Service membership: truth vs one watcher's view", "seconds since the first join",
        "instances", spans=line["spans"],
    )
    return {"timeline": name}


def _row(label: str, data: Sequence[float], formatter) -> dict[str, str]:
    if not data:
        return {"label": label, "n": "0", "median": MISSING, "p95": MISSING, "range": MISSING}
    s = summarize(data)
    return {"label": label, "n": fmt_count(s["n"]), "median": formatter(s["median"]),
            "p95": formatter(s["p95"]), "range": range_text(s["min"], s["max"], formatter)}


def _latency_rows(samples: Mapping[str, Any]) -> list[dict[str, str]]:
    crash = samples.get("crash", [])
    leaves = [s for s in samples.get("leave", []) if s["outcome"] == "ok"]
    return [
        _row("Join: register() → every watcher sees it", values(samples.get("join", []),
                                                                "join_ms"), fmt_ms),
        _row("Graceful leave: lease revoke → every watcher sees it", values(leaves, "leave_ms"),
             fmt_ms),
        _row("Crash (SIGKILL) → every watcher sees it gone", values(crash, "detect_s"),
             fmt_seconds),
        _row("… of which: kill came after the last keepalive by", values(
            crash, "since_keepalive_s"), fmt_seconds),
        _row("… and the delete came after the lease deadline by", values(
            crash, "expiry_lag_s"), fmt_seconds),
    ]


def _watcher_rows(summary: Mapping[str, Any], samples: Mapping[str, Any]) -> list[dict]:
    first = {w["id"]: w["first_etcd"] for w in samples.get("watchers", [])}
    rows = []
    for wid, w in summary.get("watchers", {}).items():
        rows.append({"id": wid, "first_etcd": first.get(wid, MISSING),
                     "expected": fmt_count(w["expected"]), "applied": fmt_count(w["applied"]),
                     "missed": fmt_count(w["missed"]), "duplicated": fmt_count(w["duplicated"]),
                     "dropped": fmt_count(w["duplicates_dropped"]),
                     "reconnects": fmt_count(w["reconnects"]),
                     "resyncs": fmt_count(w["resyncs"]), "anomalies": fmt_count(w["anomalies"])})
    return rows


def _crash_detail(summary: Mapping[str, Any], samples: Mapping[str, Any], ttl: float) -> str:
    """Why crash detection takes what it takes: last keepalive, TTL, expiry check."""
    crash = summary["crash_detect"]
    if not crash["n"]:
        return "No crash trial produced a measurement."
    beyond = sum(1 for v in values(samples.get("crash", []), "detect_s") if v > ttl)
    where = "all within" if beyond == 0 else f"{fmt_count(beyond)} of them beyond"
    since = values(samples.get("crash", []), "since_keepalive_s")
    since_text = range_text(min(since), max(since), fmt_seconds) if since else MISSING
    text = (f"Crash detection ranged {fmt_seconds(crash['min_s'])} – "
            f"{fmt_seconds(crash['max_s'])} ({where} the {fmt_seconds(ttl)} TTL). A lease "
            f"ends one TTL after its last keepalive, sent every TTL/3 "
            f"({fmt_seconds(ttl / 3)}); the kills came {since_text} after"
            f" the instance's last keepalive, so detection falls between about ⅔ TTL "
            f"and one TTL after the crash, plus etcd's expiry check: the delete came a median "
            f"{fmt_seconds(crash['expiry_lag_median_s'])} after the lease deadline (the leader "
            f"looks for expired leases every {fmt_seconds(ETCD_LESSOR_CHECK_S)}).")
    if crash["not_seen"]:
        text += f" In {fmt_count(crash['not_seen'])} trial(s) a watcher never saw it go."
    return text


def _refresh_phrase(failover: Mapping[str, Any], ttl: float, election_timeout_s: float | None
                    ) -> str:
    """Whether the probe's expiry after the election matches TTL + election timeout."""
    after = failover.get("probe_expired_after_election_s")
    if after is None:
        return "the probe lease's expiry was not observed"
    if election_timeout_s is None:
        return f"the probe lease expired {fmt_seconds(after)} after the election"
    expected = ttl + election_timeout_s
    # Our election time is polled (slightly late); expiry is checked every 500 ms.
    matches = expected - 0.3 <= after <= expected + ETCD_LESSOR_CHECK_S + 0.3
    verdict = ("as etcd's promotion of a new leader predicts" if matches else
               "which does NOT match etcd's promotion rule")
    return (f"a probe lease without keepalives expired {fmt_seconds(after)} after the "
            f"election, {fmt_seconds(failover['probe_outlived_s'])} past its own deadline: "
            f"the new leader restarted it at TTL + election timeout "
            f"({fmt_seconds(expected)}), {verdict}")


def _compaction_detail(compaction: Mapping[str, Any]) -> str:
    if compaction.get("resynced") is None:
        return "The compaction phase did not complete."
    resynced = ("resynchronised from a fresh snapshot" if compaction["resynced"]
                else "did NOT resynchronise")
    matched = "matched" if compaction["view_equals_truth"] else "did NOT match"
    return (f"Compaction: a watcher stopped at revision "
            f"{compaction['stopped_at_revision']} and resumed after the history was compacted "
            f"to {compaction['compacted_to']} {resynced} "
            f"({fmt_count(compaction['resync_changes'])} change(s) learned that way) and "
            f"{matched} etcd.")


def _course_report(works: bool, join: Mapping[str, Any], leave: Mapping[str, Any],
                   crash: Mapping[str, Any], failover: Mapping[str, Any], ttl: float) -> str:
    """What the course report said about Q10, and what this run adds or contradicts."""
    said = ("The course report describes the design in two sentences and measures nothing: "
            "each instance registers a key with a lease (TTL) that it keeps alive, so that the "
            "key disappears by itself when the instance fails, and clients watch the prefix "
            "to be notified \"in real time\" (*em tempo real*) of creations, updates and "
            "deletions. ")
    verdict = ("This run confirms the design" if works else
               "This run does not confirm the design without reservation (see the answer)")
    late = ""
    if failover.get("probe_expired_after_election_s") is not None:
        late = (f", and when the leader changes a dead instance's lease restarts at full TTL: "
                f"here it expired {fmt_seconds(failover['probe_expired_after_election_s'])} "
                "after the election")
    return (said + f"{verdict}, with qualifications it does not make. Only joins and "
            f"graceful leaves are seen in real time (medians {fmt_ms(join['median_ms'])} and "
            f"{fmt_ms(leave['median_ms'])}); a crash is seen only when the lease expires "
            f"(median {fmt_seconds(crash['median_s'])} with a {fmt_seconds(ttl)} TTL){late}. "
            "And a watch alone does not keep a correct list: the client must start from a "
            "snapshot, watch from its revision + 1, resume from the last revision it applied "
            "after a lost connection and resynchronise after a compaction, or it misses "
            "events or applies them twice.")


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q10 section: answer, tables, chart, published figures, method."""
    samples, params = result.samples, result.params
    summary = summarize_membership(samples, params)
    ttl = float(summary["ttl_s"])
    join, leave = summary["join"], summary["leave"]
    failover = summary["leader_failover"]
    compaction = summary["compaction"]
    works = (summary["watchers_consistent"] and failover.get("instances_lost") == 0
             and compaction.get("view_equals_truth") is True)
    verdict = "Yes." if works else "Only partly in this run."
    crash = summary["crash_detect"]
    timeout_ms = result.metadata.get("election_timeout_ms")
    election_timeout_s = timeout_ms / 1000.0 if timeout_ms else None
    equal = "ended equal to etcd" if summary["views_equal_truth"] else "did NOT end equal to etcd"
    same = ("applied the same sequence" if summary["same_sequence"]
            else "did NOT apply the same sequence")
    lost = failover.get("instances_lost")
    answer = [
        (f"{verdict} Watchers saw a join a median {fmt_ms(join['median_ms'])} after "
         f"register() and a graceful leave {fmt_ms(leave['median_ms'])} after the revoke, but "
         f"a crash (SIGKILL) only when its lease expired: a median "
         f"{fmt_seconds(crash['median_s'])} later with a {fmt_seconds(ttl)} TTL."),
        (f"Across {fmt_count(summary['truth_events'])} events, churn and a SIGKILL of the "
         f"etcd leader included, every watcher {equal} and they {same}, missing "
         f"{fmt_count(summary['events_missed'])} and duplicating "
         f"{fmt_count(summary['events_duplicated'])} events by revision; "
         + (f"{fmt_count(lost)} of {fmt_count(failover['instances'])} instances lost their "
            f"registration during the failover" + (f" ({', '.join(failover['lost'])})"
                                                   if lost else "")
            if lost is not None else "the failover phase did not complete") + "."),
        (f"Leases outlive a leader change: "
         f"{_refresh_phrase(failover, ttl, election_timeout_s)}, so an instance that dies "
         f"around a leader change stays listed that much longer."),
    ]
    details = [_crash_detail(summary, samples, ttl), _compaction_detail(compaction)]
    churn = summary["churn"]
    failover_sample = samples.get("failover") or {}
    failover_rows = []
    if failover.get("instances_lost") is not None:
        failover_rows = [
            ("Time to a new leader (majority of survivors agree)",
             fmt_seconds(failover["election_s"])),
            ("Instances that lost their registration",
             f"{fmt_count(failover['instances_lost'])} of {fmt_count(failover['instances'])}"),
            ("Failed keepalives / re-registrations",
             f"{fmt_count(failover['keepalive_failures'])} / "
             f"{fmt_count(failover['reregistrations'])}"),
            ("Probe lease (no keepalives) granted before the crash",
             fmt_seconds(failover_sample["crashed_at"] - failover_sample["probe"]["granted_at"])),
            ("Probe lease remaining before / after the crash (etcd's whole seconds)",
             f"{fmt_seconds(failover['probe_remaining_before_s'])} / "
             f"{fmt_seconds(failover['probe_remaining_after_s'])}"),
            ("Probe lease outlived its deadline by", fmt_seconds(failover["probe_outlived_s"])),
            ("Probe lease expired after the election", fmt_seconds(
                failover["probe_expired_after_election_s"])),
            ("Events in the window / missed / duplicated",
             f"{fmt_count(failover['events_in_window'])} / "
             f"{fmt_count(failover['events_missed'])} / "
             f"{fmt_count(failover['events_duplicated'])}"),
            ("Watcher reconnections", fmt_count(failover["watcher_reconnects"])),
        ]
    return {
        "answer": answer,
        "details": details,
        "latency_rows": _latency_rows(samples),
        "watcher_rows": _watcher_rows(summary, samples),
        "failover_rows": [{"label": k, "value": v} for k, v in failover_rows],
        "chart": chart_files.get("timeline"),
        "watchers_consistent": fmt_bool(summary["watchers_consistent"]),
        "views_equal": fmt_bool(summary["views_equal_truth"]),
        "same_sequence": fmt_bool(summary["same_sequence"]),
        "truth_events": fmt_count(summary["truth_events"]),
        "duplicates_dropped": fmt_count(summary["duplicates_dropped"]),
        "churn_ops": fmt_count(churn["operations"]),
        "churn_unknown": fmt_count(churn["unknown"]),
        "churn_rate": f"{params['churn_rate']:g}",
        "churn_s": fmt_seconds(params["churn_s"]),
        "failover_ops": fmt_count(churn["failover_operations"]),
        "crash_median": fmt_seconds(summary["crash_detect"]["median_s"]),
        "crash_range": range_text(summary["crash_detect"]["min_s"],
                                  summary["crash_detect"]["max_s"], fmt_seconds),
        "course_report": _course_report(works, join, leave, crash, failover, ttl),
        "expired_after_election": fmt_seconds(failover.get("probe_expired_after_election_s")),
        "election_timeout": fmt_ms(result.metadata.get("election_timeout_ms")),
        "ttl": fmt_seconds(ttl),
        "keepalive_every": fmt_seconds(ttl / 3),
        "min_ttl": fmt_ms(1.5 * result.metadata["election_timeout_ms"])
        if result.metadata.get("election_timeout_ms") else MISSING,
        "instances": fmt_count(params["instances"]),
        "watchers": fmt_count(params["watchers"]),
        "trials": fmt_count(params["trials"]),
        "killed_leader": failover_sample.get("killed") or MISSING,
        "compaction_ops": fmt_count(params["compaction_ops"]),
        "members": metadata_text(result, "node_count"),
        "etcd_version": metadata_text(result, "etcd_version"),
    }
