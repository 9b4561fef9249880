"""Q10 ``membership`` in the report: findings, tables and the timeline chart.

Every conclusion comes from :func:`.analysis.findings`; this module only
formats the summary's figures for the tables and draws the chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from etcdlab.figures.leases import min_lease_ttl_s
from etcdlab.figures.units import (
    MISSING,
    fmt_count,
    fmt_median,
    fmt_ms,
    fmt_seconds,
    fmt_ttl,
    fmt_whole_seconds,
    fmt_within,
)
from etcdlab.questions.findings import run_vs_question
from etcdlab.questions.q10_membership.analysis import (
    ASKED,
    LEADER_POLL_S,
    LESSOR_CHECK_S,
    findings,
    summarize,
)
from etcdlab.questions.section import metadata_text, range_text, values
from etcdlab.report import charts as plots
from etcdlab.results import Result


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
    return {"label": label, "n": fmt_count(len(data)), "median": fmt_median(data, formatter),
            "range": range_text(min(data), max(data), formatter) if data else MISSING}


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


def _cut_off_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """The cut-off phase's times, when the run has one."""
    trials = (summary.get("cut_off") or {}).get("trials") or []
    if not trials:
        return []
    return [
        _row("Cut off from the majority, alive → every watcher sees it gone",
             values(trials, "gone_s"), fmt_seconds),
        _row("… crashed beside it: SIGKILL → every watcher sees it gone",
             values(trials, "crash_gone_s"), fmt_seconds),
        _row("… the cut-off one's own deadline → the first watcher sees it gone",
             values(trials, "margin_s"), fmt_seconds),
        _row("… heal → every watcher sees the cut-off one again", values(trials, "back_s"),
             fmt_seconds),
    ]


def _watcher_rows(summary: Mapping[str, Any], samples: Mapping[str, Any]
                  ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The body table (against etcd's history) and the appendix table (the rest)."""
    first = {w["id"]: w["first_etcd"] for w in samples.get("watchers", [])}
    body, extra = [], []
    for wid, w in summary.get("watchers", {}).items():
        body.append({"id": wid, "expected": fmt_count(w["expected"]),
                     "applied": fmt_count(w["applied"]), "missed": fmt_count(w["missed"]),
                     "duplicated": fmt_count(w["duplicated"]),
                     "reconnects": fmt_count(w["reconnects"]),
                     "resyncs": fmt_count(w["resyncs"])})
        extra.append({"id": wid, "first_etcd": first.get(wid, MISSING),
                      "dropped": fmt_count(w["duplicates_dropped"]),
                      "unexpected": fmt_count(w["unexpected"]),
                      "anomalies": fmt_count(w["anomalies"])})
    return body, extra


def _failover_rows(failover: Mapping[str, Any], sample: Mapping[str, Any]
                   ) -> list[dict[str, str]]:
    if failover.get("instances_lost") is None:
        return []
    rows = [
        ("Time to a new leader (majority of survivors agree; polled)",
         fmt_within(failover["election_s"], LEADER_POLL_S)),
        ("Instances that lost their registration",
         f"{fmt_count(failover['instances_lost'])} of {fmt_count(failover['instances'])}"),
        ("Failed keepalives / re-registrations",
         f"{fmt_count(failover['keepalive_failures'])} / "
         f"{fmt_count(failover['reregistrations'])}"),
        ("Probe lease (no keepalives) granted before the crash",
         fmt_seconds(sample["crashed_at"] - sample["probe"]["granted_at"])),
        ("Probe lease remaining before / after the crash, as etcd reports it",
         f"{fmt_whole_seconds(failover['probe_remaining_before_s'])} / "
         f"{fmt_whole_seconds(failover['probe_remaining_after_s'])}"),
        ("Probe lease outlived its deadline by", fmt_seconds(failover["probe_outlived_s"])),
        ("Probe lease expired after the election",
         fmt_within(failover["probe_expired_after_election_s"], LEADER_POLL_S)),
        ("Events in the window / missed / duplicated",
         f"{fmt_count(failover['events_in_window'])} / "
         f"{fmt_count(failover['events_missed'])} / "
         f"{fmt_count(failover['events_duplicated'])}"),
        ("Watcher reconnections", fmt_count(failover["watcher_reconnects"])),
    ]
    return [{"label": k, "value": v} for k, v in rows]


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q10 section: findings (answer first), tables, chart, published figures,
    method."""
    samples, params, metadata = result.samples, result.params, result.metadata
    summary = summarize(samples, params)
    ttl = float(summary["ttl_s"])
    timeout_ms, heartbeat_ms = metadata.get("election_timeout_ms"), metadata.get("heartbeat_ms")
    failover = summary["leader_failover"]
    failover_sample = samples.get("failover") or {}
    churn = summary["churn"]
    watcher_rows, watcher_extra = _watcher_rows(summary, samples)
    crash = summary["crash_detect"]
    return {
        "findings": findings(summary, params, timeout_ms),
        "run_vs_question": run_vs_question(params, ASKED),
        "latency_rows": _latency_rows(samples) + _cut_off_rows(summary),
        "watcher_rows": watcher_rows,
        "watcher_extra": watcher_extra,
        "failover_rows": _failover_rows(failover, failover_sample),
        "chart": chart_files.get("timeline"),
        "truth_events": fmt_count(summary.get("truth_events")),
        "churn_ops": fmt_count(churn["operations"]),
        "churn_unknown": fmt_count(churn["unknown"]),
        "churn_rate": f"{params['churn_rate']:g}",
        "churn_s": fmt_seconds(params["churn_s"]),
        "failover_ops": fmt_count(churn["failover_operations"]),
        "crash_median": fmt_median(crash["values_s"], fmt_seconds),
        "expired_after_election": fmt_within(failover.get("probe_expired_after_election_s"),
                                             LEADER_POLL_S),
        "election_timeout": fmt_ms(timeout_ms),
        "heartbeat": metadata_text(result, "heartbeat_ms"),
        "lessor_check": fmt_seconds(LESSOR_CHECK_S),
        "ttl": fmt_ttl(ttl),
        "keepalive_every": fmt_seconds(ttl / 3),
        "min_ttl": (fmt_ttl(min_lease_ttl_s(timeout_ms, heartbeat_ms))
                    if timeout_ms and heartbeat_ms else MISSING),
        "instances": fmt_count(params["instances"]),
        "watchers": fmt_count(params["watchers"]),
        "trials": fmt_count(params["trials"]),
        "killed_leader": failover_sample.get("killed") or MISSING,
        "compaction_ops": fmt_count(params["compaction_ops"]),
        "member_lost": bool(result.samples.get("member_lost")),
        "cut_off": fmt_count(len(result.samples["cut_off"])) if result.samples.get(
            "cut_off") else "",
        "cut_off_hold": fmt_seconds(params.get("cut_off_hold_s", 0.0)),
        "members": metadata_text(result, "node_count"),
        "etcd_version": metadata_text(result, "etcd_version"),
    }
