"""Q8's server-clock part: what a fast etcd leader clock does to leases, as findings.

Pure: ``samples["server_clock"]`` in (see :mod:`.server_clock_run` for how it is
measured), ``summary["server_clock"]`` and findings out; :mod:`.analysis` calls
:func:`summarize` and :func:`with_findings`.

One prediction: a leader whose clock runs at ``rate`` says a lease of ``ttl`` seconds has
expired after ``ttl / rate`` real seconds, so etcd revokes it ``ttl × (1 − 1/rate)``
early (:func:`predicted_early_s`). etcd's own lateness (its 500 ms expiry check, a Raft
round) is taken out by measuring the same leases on the same leader before the fault: the
early expiry is, lease by lease (same place in the check's period), the control lease's
life minus the faked one's. (The fast leader also checks ``rate`` times as often, so its
mean lateness is 0.25 s / rate instead of 0.25 s: the measurement may exceed the
prediction by up to 0.25 s × (1 − 1/rate), 83 ms at rate 1.5, 2 ms at 500 ms/min, inside
the tolerance.) A new leader refreshes every lease to its full TTL plus an
election timeout (``lessor.Promote``) unless lease checkpointing is on: after leadership
moves to a member with a true clock mid-lease, the prediction is the move's time plus TTL
plus election timeout (:func:`predicted_moved_s`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from etcdlab.figures import stats
from etcdlab.figures.units import fmt_count, fmt_seconds
from etcdlab.questions.findings import Asked, Finding, claim, comparison, named

# Agreement with a prediction: within 25 % of it or 100 ms, whichever is larger (the
# issue's bound; 100 ms is about etcd's check interval blurred by the stamps).
RELATIVE_TOLERANCE = 0.25
ABSOLUTE_TOLERANCE_S = 0.1
# etcd's log stamps have 1 ms; a probe call's own duration is added per probe.
LOG_STAMP_S = 0.001
# The lease phases' time stamps (grant, the watch's deletion) are good to a few ms;
# etcd's lateness is 0 – 500 ms, which the pairing with the control leases takes out.
PHASES = ("control", "faked", "moved")


def _drift(value: float) -> str:
    return f"{value:,.0f} ms/min fast"


ASKED = (
    Asked("server_drift_ms_per_min", 500.0, "the etcd leader's own clock drifts by", _drift),
    Asked("server_ttl_s", 60, "lease TTL of the leader-clock part (the full run's)",
          lambda ttl: f"{ttl:,} s"),
)
"""The question's drift for the leader's clock (the course's 500 ms/min), the full run's TTL."""


def predicted_early_s(ttl_s: float, rate: float) -> float:
    """How much earlier than one TTL a leader whose clock runs at ``rate`` revokes a
    lease: ``ttl × (1 − 1/rate)``."""
    return ttl_s * (1.0 - 1.0 / rate)


def predicted_moved_s(moved_after_s: float, ttl_s: float, election_timeout_s: float) -> float:
    """A lease's life when a new leader refreshes it at ``moved_after_s`` (real seconds
    after its grant): to its full TTL plus an election timeout."""
    return moved_after_s + ttl_s + election_timeout_s


def agrees(measured: float | None, predicted: float) -> bool | None:
    """Within 25 % of the prediction or 100 ms (None: nothing measured)."""
    if measured is None:
        return None
    return abs(measured - predicted) <= max(RELATIVE_TOLERANCE * abs(predicted),
                                           ABSOLUTE_TOLERANCE_S)


def parse_log_stamp(line: str) -> float | None:
    """The time stamp of one etcd (zap, JSON) log line, as a Unix time."""
    try:
        stamp = json.loads(line)["ts"]
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x; None with fewer than two distinct x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def log_rate(probes: Sequence[Mapping[str, float]], lines: Sequence[str],
             injected_at: float | None) -> dict[str, Any]:
    """The rate of the faked member's clock from its log stamps: each probe's stamp
    against the real middle of its call, for the probes after the injection; with the
    resolution the calls' durations allow over the span."""
    stamps = [parse_log_stamp(line) for line in lines]
    pairs = [((p["before"] + p["after"]) / 2, stamp, (p["after"] - p["before"]) / 2)
             for p, stamp in zip(probes, stamps, strict=False) if stamp is not None]
    before = [(real, stamp) for real, stamp, _ in pairs
              if injected_at is not None and real < injected_at]
    after = [(real, stamp, half) for real, stamp, half in pairs
             if injected_at is None or real >= injected_at]
    out: dict[str, Any] = {"n": len(after), "rate": None, "resolution": None,
                           "lead_before_s": [stamp - real for real, stamp in before],
                           "lead_after_s": [stamp - real for real, stamp, _ in after]}
    if len(after) >= 2:
        span = after[-1][0] - after[0][0]
        out["rate"] = slope([(real, stamp) for real, stamp, _ in after])
        worst = max(half for *_, half in after) + LOG_STAMP_S
        out["resolution"] = 2 * worst / span if span > 0 else None
    return out


def ttl_rate(polls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How fast a lease's remaining TTL (whole seconds) fell against real time: from its
    first to its last change, each placed between the two polls around it."""
    readings = [p for p in polls if p.get("ttl") is not None and p["ttl"] >= 0]
    edges = []
    for earlier, later in zip(readings, readings[1:], strict=False):
        if later["ttl"] != earlier["ttl"]:
            edges.append(((earlier["after"] + later["before"]) / 2, earlier["ttl"], later["ttl"],
                          later["after"] - earlier["before"]))
    out: dict[str, Any] = {"readings": len(readings), "edges": len(edges), "rate": None,
                           "resolution": None}
    if len(edges) >= 2 and edges[-1][0] > edges[0][0]:
        span = edges[-1][0] - edges[0][0]
        out["rate"] = (edges[0][2] - edges[-1][2]) / span
        out["resolution"] = max(e[3] for e in (edges[0], edges[-1])) / span * out["rate"]
    return out


def _lives(phase: Mapping[str, Any] | None) -> list[float | None]:
    """Each lease's life in real seconds: from the middle of its grant to its deletion."""
    if not phase:
        return []
    return [None if x.get("revoked_real") is None else
            x["revoked_real"] - (x["granted_before"] + x["granted_after"]) / 2
            for x in phase["leases"]]


def _stats(values: Sequence[float]) -> dict[str, Any] | None:
    return stats.summarize(values) if values else None


def summarize(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``summary["server_clock"]`` (None for a result made before the part existed)."""
    if record is None:
        return None
    rate, ttl = record["rate"], record["ttl_s"]
    out: dict[str, Any] = {
        "rate": rate, "drift_ms_per_min": record["drift_ms_per_min"], "ttl_s": ttl,
        "n": record["leases"], "faked_member": record.get("faked"),
        "true_member": record.get("true"),
        "not_measured": record.get("skipped") or record.get("error"),
        "predicted_early_expiry_s": predicted_early_s(ttl, rate),
        "predicted_faked_life_s": ttl / rate,
    }
    injection = record.get("injection") or {}
    out["log"] = log_rate(record.get("probes", []), record.get("log", []),
                          injection.get("t0_wall"))
    out["ttl"] = ttl_rate(record.get("ttl_polls", []))
    log, ttl_fall = out["log"], out["ttl"]
    out["log_rate"], out["ttl_rate"] = log["rate"], ttl_fall["rate"]
    out["reached_etcd"] = (None if log["rate"] is None else
                           abs(log["rate"] - rate) <= RELATIVE_TOLERANCE * abs(rate - 1)
                           + (log["resolution"] or 0.0))
    out["ttl_at_rate"] = (None if ttl_fall["rate"] is None else
                          abs(ttl_fall["rate"] - rate) <= RELATIVE_TOLERANCE * abs(rate - 1)
                          + (ttl_fall["resolution"] or 0.0))
    phases = record.get("phases", {})
    lives = {phase: _lives(phases.get(phase)) for phase in PHASES}
    out["lives_s"] = lives
    for phase in PHASES:
        out[f"{phase}_life_s"] = _stats([v for v in lives[phase] if v is not None])
    early = [c - f for c, f in zip(lives["control"], lives["faked"], strict=False)
             if c is not None and f is not None]
    out["early_expiries_s"] = early
    out["early_n"] = len(early)
    out["early_expiry_s"] = sum(early) / len(early) if early else None
    out["early_expiry_min_s"] = min(early) if early else None
    out["early_expiry_max_s"] = max(early) if early else None
    bounds = stats.mean_ci(early) if len(early) >= 2 else None
    out["early_expiry_ci_s"] = list(bounds) if bounds else None
    out["early_agrees"] = agrees(out["early_expiry_s"], out["predicted_early_expiry_s"])
    out["moved"] = _moved(phases.get("moved"), lives["moved"], ttl,
                          record.get("election_timeout_ms", 1000) / 1000, rate)
    faked = (phases.get("faked") or {}).get("leases") or [{}]
    out["fencing"] = _fencing(record.get("fencing") or {}, faked[0].get("token"))
    return out


def _moved(phase: Mapping[str, Any] | None, lives: Sequence[float | None], ttl: float,
           election_timeout_s: float, rate: float) -> dict[str, Any] | None:
    if not phase or "moved_before" not in phase:
        return None
    moved = (phase["moved_before"] + phase["moved_after"]) / 2
    rows = []
    for lease, life in zip(phase["leases"], lives, strict=False):
        granted = (lease["granted_before"] + lease["granted_after"]) / 2
        after = moved - granted
        rows.append({"moved_after_s": after, "life_s": life,
                     "refreshed_s": predicted_moved_s(after, ttl, election_timeout_s)})
    measured = [r for r in rows if r["life_s"] is not None]
    deviations = [r["life_s"] - r["refreshed_s"] for r in measured]
    return {
        "moved_to": phase.get("moved_to"),
        "new_leader_is_target": phase.get("new_leader_is_target"),
        "rows": rows, "n": len(measured), "election_timeout_s": election_timeout_s,
        "predicted_kept_s": ttl / rate,
        "deviation_s": sum(deviations) / len(deviations) if deviations else None,
        "refreshed": (None if not measured else all(
            agrees(r["life_s"] - r["moved_after_s"], ttl + election_timeout_s)
            for r in measured)),
        "lived_past_faked_deadline": (None if not measured else
                                      all(r["life_s"] > ttl / rate for r in measured)),
    }


def _fencing(record: Mapping[str, Any], token: int | None) -> dict[str, Any] | None:
    if not record:
        return None
    out = dict(record, holder_token=token)
    out["believed_left_s"] = record["believed_end_real"] - record["revoked_real"]
    return out


# -- findings -------------------------------------------------------------------------------
def _rate_text(value: float | None) -> str:
    """A clock rate: "1.00833 × real time (+500 ms/min)"."""
    if value is None:
        return "–"
    return f"{value:.5f} × real time ({(value - 1) * 60_000:+,.0f} ms/min)"


def _resolution_text(value: float | None) -> str:
    return "–" if value is None else f"± {value * 60_000:,.1f} ms/min"


def with_findings(items: list[Finding], summary: Mapping[str, Any]) -> list[Finding]:
    """Q8's findings with the server-clock part's: its claims added, and the course's
    premature-expiry comparison answered by them (left as it was for a result without the
    part)."""
    part = summary.get("server_clock")
    if part is None:
        return items
    course = course_finding(part)
    return [course if item.id == course.id else item for item in items] + findings(part)


def findings(part: Mapping[str, Any]) -> list[Finding]:
    """The measured claims of the server-clock part."""
    why = _why_not(part)
    rate, ttl = part["rate"], part["ttl_s"]
    setup = (f"the leader's clock {part['drift_ms_per_min']:,.0f} ms/min fast ({rate:g} × "
             f"real time), leases of {ttl} s")
    log, ttl_fall = part["log"], part["ttl"]
    items = [claim(
        "server-clock-reached-etcd", None if why else part["reached_etcd"],
        f"The clock fault reached etcd itself: the faked member's own log time stamps ran "
        f"at {_rate_text(log['rate'])} (injected: {_rate_text(rate)}).",
        f"The clock fault did not reach etcd as injected: the faked member's log time "
        f"stamps ran at {_rate_text(log['rate'])}, not {_rate_text(rate)}.",
        why or "Too few log time stamps were read to measure etcd's clock.",
        **{"log stamps": fmt_count(log["n"]),
           "resolution": _resolution_text(log["resolution"])})]
    items.append(claim(
        "server-clock-ttl-falls-fast", None if why else part["ttl_at_rate"],
        f"A lease's remaining TTL asked of the faked leader (LeaseTimeToLive) fell at "
        f"{_rate_text(ttl_fall['rate'])}, faster than real time, as its clock ran.",
        f"A lease's remaining TTL asked of the faked leader fell at "
        f"{_rate_text(ttl_fall['rate'])}, not at its clock's {_rate_text(rate)}.",
        why or "Too few changes of the remaining TTL were read to measure its fall.",
        **{"readings": fmt_count(ttl_fall["readings"]),
           "changes of the whole-second TTL": fmt_count(ttl_fall["edges"]),
           "resolution": _resolution_text(ttl_fall["resolution"])}))
    items.append(claim(
        "server-clock-premature-expiry", None if why else part["early_agrees"],
        f"With {setup}, etcd revoked the leases {fmt_seconds(part['early_expiry_s'])} early "
        f"in real time, as TTL × (1 − 1/rate) = "
        f"{fmt_seconds(part['predicted_early_expiry_s'])} predicts.",
        f"With {setup}, etcd revoked the leases {fmt_seconds(part['early_expiry_s'])} early "
        f"in real time, not the {fmt_seconds(part['predicted_early_expiry_s'])} TTL × "
        f"(1 − 1/rate) predicts (beyond 25 % or 100 ms).",
        why or "No lease was revoked in both the control and the faked phase.",
        **_early_figures(part)))
    moved = part.get("moved")
    items.append(claim(
        "server-clock-new-leader-refreshes", None if why or not moved else moved["refreshed"],
        "When leadership moved mid-lease to a member with a true clock, the new leader "
        "gave each lease a full TTL plus an election timeout from the move: the leases "
        "outlived both the fast clock's deadline and their own TTL.",
        "When leadership moved mid-lease to a member with a true clock, the leases did not "
        "live the move's time plus a full TTL and an election timeout.",
        why or "Leadership was not moved in this run.",
        **({"moved after": fmt_seconds(moved["rows"][0]["moved_after_s"]),
            "lives": ", ".join(fmt_seconds(r["life_s"]) for r in moved["rows"]),
            "predicted (refreshed)": fmt_seconds(moved["rows"][0]["refreshed_s"]),
            "the fast leader's deadline": fmt_seconds(moved["predicted_kept_s"])}
           if moved and not why else {})))
    fence = part.get("fencing")
    tested = bool(fence and fence.get("believed_valid") and "fenced_ok" in fence)
    items.append(claim(
        "server-clock-fencing", None if why or not tested else
        (fence["contender_taken"] and not fence["fenced_ok"] and fence["plain_ok"]),
        "While the holder (a true clock) still believed in its lease, for "
        f"{fmt_seconds((fence or {}).get('believed_left_s'))} more, a contender took the "
        "lock; the holder's fenced write was rejected and its plain put accepted.",
        "After the early revocation the lock did not behave as fencing predicts: "
        f"contender took it {(fence or {}).get('contender_taken')}, fenced write accepted "
        f"{(fence or {}).get('fenced_ok')}, plain put accepted {(fence or {}).get('plain_ok')}.",
        why or ("The holder no longer believed in its lease when etcd revoked it, so the "
                "lock's fencing was not tried." if fence else
                "The lock's fencing was not tried in this run: no revocation of the holder's "
                "lease was seen while it ran."),
        **({"contender's token": str(fence.get("contender_token")),
            "holder's token": str(fence.get("holder_token"))} if tested else {})))
    return items


def _why_not(part: Mapping[str, Any]) -> str:
    if part.get("not_measured"):
        return f"The leader's own clock was not faked in this run: {part['not_measured']}."
    return ""


def _early_figures(part: Mapping[str, Any]) -> dict[str, str]:
    figures = {"leases": fmt_count(part["early_n"]),
               "min – max": f"{fmt_seconds(part['early_expiry_min_s'])} – "
                            f"{fmt_seconds(part['early_expiry_max_s'])}"}
    if part.get("early_expiry_ci_s"):
        low, high = part["early_expiry_ci_s"]
        figures["95 % CI of the mean"] = f"{fmt_seconds(low)} – {fmt_seconds(high)}"
    return figures


def course_finding(part: Mapping[str, Any]) -> Finding:
    """The course's claim (a leader clock 500 ms/min fast expires leases prematurely),
    answered by the measurement."""
    why = _why_not(part)
    measured = part["early_expiry_s"]
    holds = None if why or measured is None or not part["reached_etcd"] else \
        bool(part["early_agrees"] and measured > 0)
    n = part["early_n"]
    return named(comparison(
        "course-premature-expiry", "course", holds,
        f"As the course report expects, a fast leader clock made etcd expire leases "
        f"prematurely: {fmt_seconds(measured)} early for a {part['ttl_s']} s lease at "
        f"{part['drift_ms_per_min']:,.0f} ms/min (predicted "
        f"{fmt_seconds(part['predicted_early_expiry_s'])}; n = {n} leases).",
        f"Contrary to the course report, the fast leader clock did not make etcd expire "
        f"leases early by TTL × (1 − 1/rate): measured {fmt_seconds(measured)}, predicted "
        f"{fmt_seconds(part['predicted_early_expiry_s'])}.",
        why or "The fault did not demonstrably reach etcd, or no lease was measured.",
        **_early_figures(part)),
        "premature expiry on the server", f"leases revoked {fmt_seconds(measured)} early, "
        f"as predicted", "not early by the predicted amount")


def table(part: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part's figures formatted for the report (None: no such part)."""
    if part is None:
        return None
    rows = []
    for phase, label in (("control", "true clock"), ("faked", "leader clock fast"),
                         ("moved", "leadership moved mid-lease")):
        life = part.get(f"{phase}_life_s")
        rows.append({"phase": label,
                     "n": fmt_count(life["n"]) if life else "0",
                     "mean": fmt_seconds(life["mean"]) if life else "–",
                     "range": (f"{fmt_seconds(life['min'])} – {fmt_seconds(life['max'])}"
                               if life else "–")})
    return {"measured": not part.get("not_measured"), "why": _why_not(part),
            "rate": f"{part['rate']:g}", "drift": f"{part['drift_ms_per_min']:,.0f} ms/min",
            "ttl": f"{part['ttl_s']} s", "n": part["n"], "faked": part.get("faked_member"),
            "true": part.get("true_member"), "rows": rows,
            "log_rate": _rate_text(part["log_rate"]), "ttl_rate": _rate_text(part["ttl_rate"]),
            "early": fmt_seconds(part["early_expiry_s"]),
            "predicted": fmt_seconds(part["predicted_early_expiry_s"]),
            "predicted_life": fmt_seconds(part["predicted_faked_life_s"])}
