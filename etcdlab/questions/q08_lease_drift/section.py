"""Q8 ``lease-drift`` in the report: findings, tables and the belief-error chart.

Every conclusion comes from :func:`.analysis.findings`; this module only
formats the summary's figures for the tables and draws the chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.leases import min_lease_ttl_s
from etcdlab.figures.units import MISSING, fmt_count, fmt_ms, fmt_ppm, fmt_seconds, fmt_ttl
from etcdlab.questions.findings import leader_change_leases, run_vs_question
from etcdlab.questions.q08_lease_drift import server_clock_analysis as server_clock
from etcdlab.questions.q08_lease_drift.analysis import (
    ASKED,
    FULL_RUN_TTL_S,
    HOLDERS,
    LABELS,
    LESSOR_CHECK_S,
    QUESTION_DRIFT_MS_PER_MIN,
    findings,
    fmt_drift,
    lease_reset_finding,
    paused_findings,
    question_ppm,
    question_prediction,
    rate_ppm,
    summarize,
)
from etcdlab.questions.section import metadata_text
from etcdlab.report import charts as plots
from etcdlab.results import Result


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Believed expiry minus etcd's revocation, per holder and trial; none when each
    holder has fewer than two trials (the table shows those rows)."""
    summary = summarize(result.samples, result.params)
    series = {LABELS[name]: summary[name]["belief_errors_s"] for name in HOLDERS}
    if max(len(values) for values in series.values()) < 2:
        return {}
    return {"errors": plots.strip_plot(
        out_dir / "lease_drift_belief_error.png", series,
        "When the client thought its lease ended, relative to etcd's revocation",
        "believed expiry − revocation (s)",
        reference_lines={
            "etcd revoked": 0.0,
            **{f"TTL × (1/rate − 1), {LABELS[name]}": summary[name]["predicted_error_s"]
               for name in HOLDERS},
        })}


def _rows(summary: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The body table (times) and the appendix table (writes), one row per client trial."""
    body, writes = [], []
    for name in HOLDERS:
        trials = [t[name] for t in summary["per_trial"] if name in t]
        for index, row in enumerate(trials, start=1):
            body.append({
                "label": LABELS[name], "trial": index,
                "etcd": fmt_seconds(row["etcd_lease_s"]),
                "believed": fmt_seconds(row["believed_lease_s"]),
                "error": fmt_seconds(row["belief_error_s"]),
                "predicted": fmt_seconds(summary[name]["predicted_error_s"]),
                "overlap": fmt_seconds(row["overlap_s"]),
            })
            writes.append({
                "label": LABELS[name], "trial": index,
                "second": fmt_seconds(row["second_acquired_after_revoke_s"]),
                "fenced_ok": fmt_count(row["fenced_before"]),
                "fenced_rejected": fmt_count(row["fenced_rejected"]),
                "unfenced_stale": fmt_count(row["unfenced_accepted"]),
                "unknown": fmt_count(row["unknown"]),
            })
    return body, writes


def _paused_rows(summary: Mapping[str, Any]
                 ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The paused holder's timeline (one row per trial) and its writes after SIGCONT."""
    timeline, writes = [], []
    for index, trial in enumerate(summary.get("paused", []), start=1):
        timeline.append({
            "trial": str(index), "ttl": fmt_ttl(trial["ttl_s"]),
            "token": _revision(trial["token"]),
            "pause": fmt_seconds(trial["pause_s"]),
            "revoked": f"{fmt_seconds(trial['revoked_after_pause_s'])} (revision "
                       f"{_revision(trial['revoked_revision'])})",
            "taken": f"{fmt_seconds(trial['contender_after_pause_s'])} (revision "
                     f"{_revision(trial['contender_token'])})",
            "resumed": fmt_seconds(trial["resumed_after_revoke_s"]),
        })
        for number, write in enumerate(trial["writes"], start=1):
            writes.append({
                "trial": str(index), "number": str(number),
                "kind": "fenced" if write["kind"] == "fenced" else "plain",
                "outcome": {"ok": "accepted", "failed": "rejected"}.get(write["outcome"],
                                                                       write["outcome"]),
                "revision": _revision(write["revision"]),
                "stale": MISSING if write["stale"] is None else
                "yes" if write["stale"] else "no",
            })
    return timeline, writes


def _revision(value: int | None) -> str:
    return MISSING if value is None else str(value)


CITES = ("partition",)
"""Q3's leader trials read a lease's remaining TTL before the cut and from the new leader:
Q8 cites them for whether a leader change gives a lease its full TTL again."""


def section(result: Result, chart_files: Mapping[str, str],
            cited: Mapping[str, Result] | None = None) -> dict[str, Any]:
    """Prepare the Q8 section: findings (answer first), tables, published figures, method.
    ``cited`` may hold this run's partition result (the lease across a leader change)."""
    params, metadata = result.params, result.metadata
    summary = summarize(result.samples, params)
    body, writes = _rows(summary)
    partition = (cited or {}).get("partition")
    partition_leases = None if partition is None else leader_change_leases(partition.samples)
    paused_timeline, paused_writes = _paused_rows(summary)
    timeout_ms, heartbeat_ms = metadata.get("election_timeout_ms"), metadata.get("heartbeat_ms")
    min_ttl = (fmt_ttl(min_lease_ttl_s(timeout_ms, heartbeat_ms))
               if timeout_ms and heartbeat_ms else MISSING)
    asked = question_prediction()
    return {
        "findings": findings(summary, params),
        "run_vs_question": run_vs_question(params, ASKED),
        "rows": body,
        "write_rows": writes,
        "chart": chart_files.get("errors"),
        "ttl": fmt_ttl(params["ttl_s"]),
        "drift": fmt_drift(params["drift_ms_per_min"]),
        "ppm": fmt_ppm(abs(rate_ppm(summary["fast"]["rate"]))),
        "predicted": {name: fmt_seconds(summary[name]["predicted_error_s"]) for name in HOLDERS},
        "measured": {name: ", ".join(fmt_seconds(v) for v in summary[name]["belief_errors_s"])
                     or MISSING for name in HOLDERS},
        "question_drift": fmt_drift(QUESTION_DRIFT_MS_PER_MIN),
        "question_ppm": question_ppm(),
        "question_ttl": fmt_ttl(FULL_RUN_TTL_S),
        "question_predicted": asked,
        "lessor_check": fmt_seconds(LESSOR_CHECK_S),
        "min_ttl": min_ttl,
        "election_timeout": fmt_ms(timeout_ms),
        "heartbeat": metadata_text(result, "heartbeat_ms"),
        "trials": fmt_count(params["trials"]),
        "act_window": fmt_seconds(params["act_window_s"]),
        "act_interval": fmt_seconds(params["act_interval_s"]),
        "keepalive_duration": fmt_seconds(params["keepalive_ttls"] * params["ttl_s"]),
        "paused": "paused" in summary,
        "paused_findings": paused_findings(summary),
        "leader_change_findings": [lease_reset_finding(partition_leases)],
        "paused_rows": paused_timeline,
        "paused_write_rows": paused_writes,
        "paused_ttl": fmt_ttl(params.get("paused_ttl_s")),
        "pause_beyond": fmt_seconds(params.get("pause_beyond_ttl_s")),
        "paused_writes": fmt_count(params.get("paused_writes")),
        "paused_act_delay": fmt_seconds(next(
            (r.get("act_delay_s") for r in result.samples.get("paused", [])), None)),
        "server_clock": server_clock.table(summary["server_clock"]),
    }
