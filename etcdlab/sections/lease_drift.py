"""Q8 ``lease-drift`` in the report: belief-error chart and section data from the samples."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab import clocks
from etcdlab.experiments.lease_drift import HOLDERS, summarize, summarize_holder
from etcdlab.results import Result
from etcdlab.units import MISSING, fmt_bool, fmt_count, fmt_ms, fmt_ppm, fmt_seconds

LABELS = {"fast": "clock fast", "slow": "clock slow"}


def _holder_rows(result: Result) -> dict[str, list[dict[str, Any]]]:
    """Each holder's per-trial figures, recomputed from the samples."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in HOLDERS}
    for trial in result.samples["trials"]:
        for name, record in trial["holders"].items():
            rows[name].append(summarize_holder(record))
    return rows


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Believed expiry minus etcd's revocation, per holder and trial."""
    rows = _holder_rows(result)
    series = {LABELS[name]: [r["belief_error_s"] for r in rows[name]
                             if r["belief_error_s"] is not None] for name in HOLDERS}
    ttl = result.params["ttl_s"]
    rates = result.samples["rates"]
    return {"errors": plots.strip_plot(
        out_dir / "lease_drift_belief_error.png", series,
        "When the client thought its lease ended, relative to etcd's revocation",
        "believed expiry − revocation (s)",
        reference_lines={
            "etcd revoked": 0.0,
            "TTL × drift (slow)": ttl * (1.0 / rates["slow"] - 1.0),
            "TTL × drift (fast)": ttl * (1.0 / rates["fast"] - 1.0),
        })}


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q8 section: answer, table, fencing, keepalives, comparison, method."""
    params = result.params
    summary = summarize(result.samples, params)
    rows = _holder_rows(result)
    ttl = params["ttl_s"]
    drift = params["drift_ms_per_min"]
    rate_ppm = clocks.rate_ppm(clocks.drift_rate(drift))
    fast, slow = summary["fast"], summary["slow"]
    answer = [
        (f"With a {fmt_seconds(ttl)} lease, the client whose clock ran "
         f"{fmt_ms(drift)}/min slow still believed it held the lock "
         f"{fmt_seconds(slow['belief_error_s'])} after etcd had revoked the lease (mean of "
         f"{fmt_count(slow['trials'])}; TTL × drift predicts "
         f"{fmt_seconds(slow['expected_error_s'])}, less the up to 0.5 s by which etcd's "
         "leader checks expiry late), and a second "
         f"client took the lock while it still believed so in "
         f"{fmt_count(slow['trials_with_overlap'])} of {fmt_count(slow['trials'])} trials "
         f"(longest overlap {fmt_seconds(slow['overlap_s'])}). The fast client gave up "
         f"{fmt_seconds(-fast['belief_error_s'] if fast['belief_error_s'] is not None else None)}"
         " early: safe, but it loses the lease's last moments."),
        (f"Fencing protected the resource: {fmt_count(summary['fenced_stale_writes_rejected'])} "
         f"stale fenced writes were rejected and "
         f"{fmt_count(summary['fenced_stale_writes_accepted'])} accepted, while the same "
         f"holder's plain puts after the revocation were all accepted "
         f"({fmt_count(summary['unfenced_stale_writes_accepted'])})."),
    ]
    keep = summary.get("keepalive")
    if keep:
        answer.append(
            f"Keepalives every TTL/3 by the slow client's own clock kept its lease alive for "
            f"{fmt_seconds(keep['duration_s'])} ({fmt_count(keep['keepalives'])} keepalives; "
            f"etcd's remaining TTL never fell below {fmt_seconds(keep['min_remaining_ttl_s'])})."
            if keep["kept_alive"] else
            "Keepalives every TTL/3 did NOT keep the slow client's lease alive: see the samples.")
    table = []
    for name in HOLDERS:
        for index, row in enumerate(rows[name], start=1):
            table.append({
                "label": LABELS[name], "trial": index,
                "etcd": fmt_seconds(row["etcd_lease_s"]),
                "believed": fmt_seconds(row["believed_lease_s"]),
                "error": fmt_seconds(row["belief_error_s"]),
                "second": fmt_seconds(row["second_acquired_after_revoke_s"]),
                "overlap": fmt_seconds(row["overlap_s"]),
                "fenced_ok": fmt_count(row["fenced_before"]),
                "fenced_rejected": fmt_count(row["fenced_rejected"]),
                "unfenced_stale": fmt_count(row["unfenced_accepted"]),
                "unknown": fmt_count(row["unknown"]),
            })
    return {
        "answer": answer,
        "rows": table,
        "chart": chart_files.get("errors"),
        "ttl": fmt_seconds(ttl),
        "drift": f"{fmt_ms(drift)}/min",
        "ppm": fmt_ppm(rate_ppm),
        "disagreement": fmt_seconds(ttl * drift / 60_000.0),
        "trials": fmt_count(params["trials"]),
        "act_window": fmt_seconds(params["act_window_s"]),
        "act_interval": fmt_seconds(params["act_interval_s"]),
        "keepalive_duration": fmt_seconds(params["keepalive_ttls"] * ttl),
        "kept_alive": fmt_bool(keep["kept_alive"]) if keep else MISSING,
        "contender_ok": fmt_bool(summary["contender_writes_ok"]),
        "slow_error": fmt_seconds(slow["belief_error_s"]),
        "fast_error": fmt_seconds(fast["belief_error_s"]),
        "fenced_rejected": fmt_count(summary["fenced_stale_writes_rejected"]),
        "unfenced_accepted": fmt_count(summary["unfenced_stale_writes_accepted"]),
    }
