"""Q8 ``lease-drift`` analysis: belief errors, overlaps, fencing and keepalives, as findings.

Pure: samples in (see :mod:`.run` for how they are taken),
summary and findings out. One prediction is used everywhere: a client whose clock runs at
``rate`` (1.05 = 5 % fast) says its lease of ``ttl`` seconds has ended after ``ttl /
rate`` real seconds, so it believes the lease ends ``ttl × (1/rate − 1)`` after etcd's
deadline (:func:`predicted_error_s`). etcd revokes an expired lease late by up to its
lessor's check interval (500 ms), which makes the measured believed − revoked smaller.

The ``paused`` holder of each trial runs on the real clock and is stopped past its TTL
(:func:`summarize_paused`); its writes are judged by revision as the others are. Results
made before it existed have no ``paused`` samples: they get no paused summary and no
paused findings. Whether a new leader resets a lease to its full TTL is measured by Q3
(``partition``) and cited (:func:`lease_reset_finding`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from etcdlab.figures.clocks import drift_rate, rate_ppm
from etcdlab.figures.units import (
    fmt_count,
    fmt_median,
    fmt_ms,
    fmt_ppm,
    fmt_seconds,
    fmt_share,
    fmt_ttl,
    fmt_whole_seconds,
)
from etcdlab.questions.findings import Asked, Finding, claim, comparison, name_all, untestable
from etcdlab.questions.q08_lease_drift import server_clock_analysis as server_clock

HOLDERS = ("fast", "slow")
LABELS = {"fast": "clock fast", "slow": "clock slow"}

# etcd's lessor looks for expired leases every 500 ms (lease/lessor.go, runLoop), so a
# lease is revoked between 0 and 0.5 s after its deadline (plus a Raft round trip).
LESSOR_CHECK_S = 0.5
# Lines are stamped when they reach this program, the watch event when it arrives, the
# holder starts its own count just before its grant: a few to tens of ms each way.
STAMP_TOLERANCE_S = 0.1

# The question's drift; the TTL and trials are the full run's (the question sets neither).
QUESTION_DRIFT_MS_PER_MIN = 500.0
FULL_RUN_TTL_S = 60


def fmt_drift(drift_ms_per_min: float | None) -> str:
    """A clock drift: 3000 → "3.00 s/min"."""
    return f"{fmt_ms(drift_ms_per_min)}/min"


ASKED = (
    Asked("drift_ms_per_min", QUESTION_DRIFT_MS_PER_MIN, "client clocks drift by", fmt_drift),
    Asked("ttl_s", FULL_RUN_TTL_S, "lease TTL (the question sets none; the full run's)",
          fmt_ttl),
    Asked("trials", 3, "trials per client (the full run's)", fmt_count),
    *server_clock.ASKED,
)


def predicted_error_s(ttl_s: float, rate: float) -> float:
    """When a client at ``rate`` believes its lease ended, relative to etcd's deadline:
    ``ttl × (1/rate − 1)`` (positive: after it)."""
    return ttl_s * (1.0 / rate - 1.0)


# -- summary ------------------------------------------------------------------------------


def summarize_holder(holder_record: Mapping[str, Any]) -> dict[str, Any]:
    """Belief error, overlap and stale writes of one holder in one trial.

    A write is stale when etcd applied or evaluated it at or after the revision that
    deleted the lock key (the lease's revocation): revisions, not clocks, decide.
    """
    revoked = holder_record["revoked"]
    believed = holder_record["believed_expired_real"]
    contender = holder_record["contender"] or {}
    stale = stale_counts(holder_record["writes"], revoked["revision"] if revoked else None)
    acquired2 = contender.get("acquired_real")
    return {
        "belief_error_s": believed - revoked["real"] if revoked else None,
        "etcd_lease_s": revoked["real"] - holder_record["acquired_real"] if revoked else None,
        "believed_lease_s": believed - holder_record["acquired_real"],
        "overlap_s": max(0.0, believed - acquired2) if acquired2 else None,
        "second_acquired_after_revoke_s": acquired2 - revoked["real"]
        if acquired2 and revoked else None,
        "contender_write_ok": contender.get("write_ok"),
        **stale,
    }


def stale_counts(writes: Sequence[Mapping[str, Any]], revoked_revision: int | None
                 ) -> dict[str, int]:
    """A holder's writes counted by kind and outcome, before or at/after the revision that
    deleted its lock key (``None``: not deleted, so none is stale); unknown outcomes apart."""
    stale = {"fenced_rejected": 0, "fenced_accepted": 0, "unfenced_accepted": 0,
             "unfenced_rejected": 0, "unknown": 0, "fenced_before": 0, "unfenced_before": 0}
    for write in writes:
        if write["outcome"] == "unknown":
            stale["unknown"] += 1
            continue
        after = revoked_revision is not None and write["revision"] >= revoked_revision
        if write["kind"] == "fenced":
            if not write["ok"]:
                stale["fenced_rejected"] += 1  # the compare failed: the lock was gone
            elif after:
                stale["fenced_accepted"] += 1
            else:
                stale["fenced_before"] += 1
        elif after:
            stale["unfenced_accepted" if write["ok"] else "unfenced_rejected"] += 1
        else:
            stale["unfenced_before"] += 1
    return stale


def summarize_paused(record: Mapping[str, Any]) -> dict[str, Any]:
    """One paused holder: the pause, etcd's revocation and the contender's lock on the real
    clock and by revision, and its writes after SIGCONT, each judged stale by revision."""
    revoked = record.get("revoked")
    contender = record.get("contender") or {}
    paused, resumed = record.get("paused_real"), record.get("resumed_real")
    revoked_real = revoked["real"] if revoked else None
    acquired2 = contender.get("acquired_real")
    revision = revoked["revision"] if revoked else None
    stale = stale_counts(record.get("writes", []), revision)
    writes = [{**w, "stale": None if w["revision"] is None or revision is None
               else w["revision"] >= revision} for w in record.get("writes", [])]

    def between(moment: float | None) -> bool | None:
        if moment is None or paused is None or resumed is None:
            return None
        return paused < moment < resumed

    return {
        "ttl_s": record.get("ttl_s"),
        "pause_s": resumed - paused if paused is not None and resumed is not None else None,
        "planned_pause_s": record.get("pause_s"),
        "stopped_seen": record.get("stopped_seen"),
        "token": record.get("token"),
        "revoked_revision": revision,
        "revoked_after_pause_s": revoked_real - paused if revoked and paused else None,
        "revoked_during_pause": between(revoked_real),
        "contender_token": contender.get("token"),
        "contender_after_pause_s": acquired2 - paused if acquired2 and paused else None,
        "contender_during_pause": between(acquired2),
        "contender_write_ok": contender.get("write_ok"),
        "contender_write_revision": contender.get("write_revision"),
        "resumed_after_revoke_s": resumed - revoked_real if resumed and revoked else None,
        "believed_left_at_check_s": record.get("checked_believed_left_s"),
        "believed_left_when_acting_s": record.get("acting_believed_left_s"),
        "writes": writes,
        **stale,
    }


def _present(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Per holder: belief errors, etcd's lease lengths and overlaps over the trials (each
    value and its mean/min/max), the prediction; fencing counts; keepalives."""
    ttl = params["ttl_s"]
    per_trial = [{name: summarize_holder(h) for name, h in trial["holders"].items()}
                 for trial in samples["trials"]]
    summary: dict[str, Any] = {"ttl_s": ttl, "per_trial": per_trial}
    for name in HOLDERS:
        rows = [t[name] for t in per_trial if name in t]
        errors = _present([r["belief_error_s"] for r in rows])
        overlaps = _present([r["overlap_s"] for r in rows])
        rate = samples["rates"][name]
        summary[name] = {
            "trials": len(rows),
            "rate": rate,
            "belief_errors_s": errors,
            "belief_error_s": sum(errors) / len(errors) if errors else None,
            "belief_error_min_s": min(errors) if errors else None,
            "belief_error_max_s": max(errors) if errors else None,
            "trials_believed_after": sum(1 for e in errors if e > 0),
            "trials_stopped_before": sum(1 for e in errors if e < 0),
            "etcd_leases_s": _present([r["etcd_lease_s"] for r in rows]),
            "overlaps_s": overlaps,
            "overlap_s": max(overlaps) if overlaps else None,
            "trials_with_overlap": sum(1 for o in overlaps if o > 0),
            "stale_fenced_rejected": sum(r["fenced_rejected"] for r in rows),
            "stale_unfenced_accepted": sum(r["unfenced_accepted"] for r in rows),
            "predicted_error_s": predicted_error_s(ttl, rate),
        }
    rows = [r for t in per_trial for r in t.values()]
    summary["fenced_stale_writes_rejected"] = sum(r["fenced_rejected"] for r in rows)
    summary["fenced_stale_writes_accepted"] = sum(r["fenced_accepted"] for r in rows)
    summary["unfenced_stale_writes_accepted"] = sum(r["unfenced_accepted"] for r in rows)
    summary["unfenced_stale_writes_rejected"] = sum(r["unfenced_rejected"] for r in rows)
    summary["unknown_writes"] = sum(r["unknown"] for r in rows)
    contenders = [r["contender_write_ok"] for r in rows if r["contender_write_ok"] is not None]
    summary["contender_writes"] = len(contenders)
    summary["contender_writes_succeeded"] = sum(1 for ok in contenders if ok)
    summary["contender_writes_ok"] = bool(contenders) and all(contenders)
    keep = next((t["keepalive"] for t in samples["trials"] if t.get("keepalive")), None)
    if keep:
        ttls = [r["ttl"] for r in keep["remaining"] if r["ttl"] is not None]
        summary["keepalive"] = {
            "kept_alive": bool(ttls) and min(ttls) > 0 and keep["done"],
            "min_remaining_ttl_s": min(ttls) if ttls else None,
            "readings": len(ttls),
            "keepalives": len(keep["keepalives"]),
            "duration_s": params["keepalive_ttls"] * ttl,
        }
    if "paused" in samples:
        summary["paused"] = [summarize_paused(record) for record in samples["paused"]]
    summary["server_clock"] = server_clock.summarize(samples.get("server_clock"))
    return summary


# -- findings -------------------------------------------------------------------------------


def _errors_text(holder: Mapping[str, Any]) -> str:
    return fmt_median(holder["belief_errors_s"], fmt_seconds)


def _within_prediction(holder: Mapping[str, Any]) -> list[bool]:
    """Per trial: believed − revoked inside [prediction − check interval − tolerance,
    prediction + tolerance]."""
    predicted = holder["predicted_error_s"]
    low = predicted - LESSOR_CHECK_S - STAMP_TOLERANCE_S
    high = predicted + STAMP_TOLERANCE_S
    return [low <= e <= high for e in holder["belief_errors_s"]]


def _etcd_lease_within(leases: Sequence[float], ttl: float) -> list[bool]:
    return [ttl - STAMP_TOLERANCE_S <= s <= ttl + LESSOR_CHECK_S + STAMP_TOLERANCE_S
            for s in leases]


def findings(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[Finding]:
    """The claims of Q8, answer first; each sentence matches what the samples show."""
    ttl = summary["ttl_s"]
    fast, slow = summary["fast"], summary["slow"]
    n_slow = len(slow["belief_errors_s"])
    n_fast = len(fast["belief_errors_s"])
    items: list[Finding] = []

    k = slow["trials_believed_after"]
    items.append(claim(
        "slow-client-believes-after-revocation", None if n_slow == 0 else k > 0,
        "The client whose clock ran slow still believed it held the lock after etcd had "
        f"revoked its lease; trials: {fmt_share(k, n_slow)}.",
        "The client whose clock ran slow stopped believing it held the lock before etcd "
        f"revoked its lease; trials where it believed so after it: {fmt_share(k, n_slow)}.",
        "No trial recorded the slow client's lease revocation, so its belief cannot be "
        "compared with etcd's.",
        **{"believed − revoked": _errors_text(slow),
           "predicted": f"{fmt_seconds(slow['predicted_error_s'])} less up to "
                        f"{fmt_seconds(LESSOR_CHECK_S)}"}))

    k = fast["trials_stopped_before"]
    items.append(claim(
        "fast-client-stops-early", None if n_fast == 0 else k == n_fast,
        f"The client whose clock ran fast stopped before etcd revoked its lease: safe, but "
        f"it gives up the lease's last moments; trials: {fmt_share(k, n_fast)}.",
        f"The client whose clock ran fast did not always stop before etcd revoked its lease "
        f"(trials where it did: {fmt_share(k, n_fast)}).",
        "No trial recorded the fast client's lease revocation.",
        **{"believed − revoked": _errors_text(fast),
           "predicted": f"{fmt_seconds(fast['predicted_error_s'])} less up to "
                        f"{fmt_seconds(LESSOR_CHECK_S)}"}))

    overlaps = {name: summary[name]["trials_with_overlap"] for name in HOLDERS}
    measured = {name: len(summary[name]["overlaps_s"]) for name in HOLDERS}
    k, n = sum(overlaps.values()), sum(measured.values())
    longest = max((summary[name]["overlap_s"] or 0.0 for name in HOLDERS), default=0.0)
    items.append(claim(
        "second-holder-during-belief", None if n == 0 else k > 0,
        "A second client took the lock while its previous holder still believed it held "
        f"it; client trials: {fmt_share(k, n)}.",
        "No second client took the lock while its previous holder still believed it held "
        f"it; client trials where one did: {fmt_share(k, n)}.",
        "No contender took a lock in this run, so overlaps cannot be measured.",
        **{LABELS[name]: f"{overlaps[name]} of {measured[name]}" for name in HOLDERS},
        **({"longest overlap": fmt_seconds(longest)} if k else {})))

    within = _within_prediction(fast) + _within_prediction(slow)
    items.append(claim(
        "belief-error-matches-prediction", None if not within else all(within),
        "Believed − revoked matched TTL × (1/rate − 1) less etcd's late expiry check "
        f"(0 – {fmt_seconds(LESSOR_CHECK_S)}, ± {fmt_seconds(STAMP_TOLERANCE_S)} for the "
        f"time stamps; client trials: {fmt_share(sum(within), len(within))}).",
        "Believed − revoked did not match TTL × (1/rate − 1) less etcd's late expiry check "
        f"(0 – {fmt_seconds(LESSOR_CHECK_S)}, ± {fmt_seconds(STAMP_TOLERANCE_S)}) in "
        f"{len(within) - sum(within)} of {len(within)} client trials.",
        "No revocation was recorded, so the prediction cannot be checked.",
        **{f"predicted, {LABELS[name]}": fmt_seconds(summary[name]["predicted_error_s"])
           for name in HOLDERS}))

    leases = {name: summary[name]["etcd_leases_s"] for name in HOLDERS}
    inside = _etcd_lease_within(leases["fast"] + leases["slow"], ttl)
    items.append(claim(
        "etcd-expiry-ignores-client-clocks", None if not inside else all(inside),
        f"etcd revoked the leases one TTL after the clients took their locks, whatever the "
        f"client's clock (within {fmt_seconds(ttl - STAMP_TOLERANCE_S)} – "
        f"{fmt_seconds(ttl + LESSOR_CHECK_S + STAMP_TOLERANCE_S)}; client trials: "
        f"{fmt_share(sum(inside), len(inside))}).",
        f"etcd's lease lengths strayed from one TTL in {len(inside) - sum(inside)} of "
        f"{len(inside)} client trials (outside {fmt_seconds(ttl - STAMP_TOLERANCE_S)} – "
        f"{fmt_seconds(ttl + LESSOR_CHECK_S + STAMP_TOLERANCE_S)}).",
        "No revocation was recorded, so etcd's lease lengths are unknown.",
        **{f"etcd's lease, {LABELS[name]}": fmt_median(leases[name], fmt_seconds)
           for name in HOLDERS}))

    rejected = summary["fenced_stale_writes_rejected"]
    accepted = summary["fenced_stale_writes_accepted"]
    n = rejected + accepted
    items.append(claim(
        "fencing-rejects-stale-writes", None if n == 0 else accepted == 0,
        f"etcd rejected the stale fenced writes (older token): {fmt_share(rejected, n)}.",
        f"etcd accepted stale fenced writes: {fmt_share(accepted, n)}.",
        "No fenced write reached etcd after a revocation in this run, so fencing was not "
        "tested."))

    plain = summary["unfenced_stale_writes_accepted"]
    n = plain + summary["unfenced_stale_writes_rejected"]
    items.append(claim(
        "plain-stale-writes-accepted", None if n == 0 else plain > 0,
        f"Without the token, the same holders' plain puts after the revocation were "
        f"accepted: {fmt_share(plain, n)}.",
        f"No plain put after the revocation was accepted: {fmt_share(plain, n)}.",
        "No plain put reached etcd after a revocation in this run."))

    k, n = summary["contender_writes_succeeded"], summary["contender_writes"]
    items.append(claim(
        "new-holder-writes", None if n == 0 else k == n,
        f"The new lock holder's own fenced write, with its newer token, succeeded "
        f"(client trials: {fmt_share(k, n)}).",
        f"The new lock holder's own fenced write failed in {n - k} of {n} client trials.",
        "No contender wrote with its own token in this run."))

    keep = summary.get("keepalive")
    figures = {}
    if keep:
        figures = {"keepalives": fmt_count(keep["keepalives"]),
                   "lowest remaining TTL etcd reported":
                       f"{fmt_whole_seconds(keep['min_remaining_ttl_s'])} in "
                       f"{fmt_count(keep['readings'])} readings 1 s apart"}
    items.append(claim(
        "keepalives-keep-lease", None if not keep else keep["kept_alive"],
        f"Keepalives every TTL/3 by the slow client's own clock kept its lease alive for "
        f"{fmt_seconds(keep['duration_s']) if keep else ''} of that clock.",
        "Keepalives every TTL/3 by the slow client's own clock did not keep its lease "
        "alive.",
        "This run had no keepalive phase.", **figures))

    k = slow["trials_believed_after"]
    items.append(comparison(
        "course-valid-after-expiry", "course", None if n_slow == 0 else k > 0,
        "As the course report expects, the client whose clock ran slower than etcd's leader, "
        "as if the leader's ran fast, believed its lease valid after etcd expired it.",
        "Unlike what the course report expects, the client whose clock ran slower than etcd's "
        "leader never believed its lease valid after etcd expired it.",
        "No revocation of the slow client's lease was recorded.",
        **{"slow-clock trials that believed it after the revocation": fmt_share(k, n_slow)}))

    items.append(comparison(
        "course-premature-expiry", "course", None,
        "etcd expired the leases early, as the course report expects for a fast clock.",
        "etcd did not expire the leases early, contrary to the course report.",
        "Premature expiry is what a fast etcd leader clock produces (etcd expires a lease "
        "on its leader's monotonic clock), and this lab cannot fake the clock of a Go "
        "process: Go reads the time without libc, so libfaketime does not affect etcd, and "
        "the containers share the host's kernel clock. Only the clients drifted here.",
        **{f"etcd's lease, {LABELS[name]}": fmt_median(leases[name], fmt_seconds)
           for name in HOLDERS}))

    overlap_k = sum(overlaps.values())
    overlap_n = sum(measured.values())
    items.append(comparison(
        "published-lease-no-mutual-exclusion", "published",
        True if overlap_k else None,
        "As the etcd documentation and Jepsen (etcd 3.4.3, 2020) say, a lease alone did not "
        "give mutual exclusion: two clients believed they held one lock at once.",
        "A lease alone gave mutual exclusion here, contrary to the etcd documentation and "
        "Jepsen.",
        "No two clients believed they held one lock at once in this run, which neither shows "
        "nor refutes that a lease does not guarantee mutual exclusion.",
        **{"client trials with two holders at once": fmt_share(overlap_k, overlap_n)}))
    return name_all(server_clock.with_findings(items, summary), COURSE_NAMES)


def _revisions(values: Sequence[int | None]) -> str:
    shown = [str(v) for v in values if v is not None]
    return ", ".join(shown) if shown else "none"


def paused_findings(summary: Mapping[str, Any]) -> list[Finding]:
    """The paused holder's claims (the case Jepsen found: a pause past the lease's TTL, no
    clock drift). Empty for a result without paused samples (made before the paused holder
    existed)."""
    trials = summary.get("paused")
    if trials is None:
        return []
    first = trials[0] if trials else {}
    during = [t["revoked_during_pause"] and t["contender_during_pause"] for t in trials
              if t["revoked_during_pause"] is not None
              and t["contender_during_pause"] is not None]
    k, n = sum(1 for d in during if d), len(during)
    items = [claim(
        "paused-holder-lock-taken-during-pause", None if n == 0 else k == n,
        "While a lock holder was stopped (SIGSTOP) past its lease's TTL, with no clock drift, "
        "etcd revoked the lease and another client took the lock before the holder was "
        f"resumed (trials: {fmt_share(k, n)}).",
        "A lock holder stopped past its lease's TTL did not always lose the lock to another "
        f"client while it was stopped (trials where it did: {fmt_share(k, n)}).",
        "No paused holder was stopped and resumed with its revocation and the contender's "
        "lock recorded in this run.",
        **({"TTL": fmt_ttl(first.get("ttl_s")), "pause": fmt_seconds(first.get("pause_s")),
            "its lock key deleted (revision)": _revisions([first.get("revoked_revision")]),
            "after the SIGSTOP": fmt_seconds(first.get("revoked_after_pause_s")),
            "contender's lock (revision)": _revisions([first.get("contender_token")]),
            "resumed after the revocation": fmt_seconds(first.get("resumed_after_revoke_s"))}
           if trials else {}))]

    accepted = sum(t["unfenced_accepted"] for t in trials)
    n = accepted + sum(t["unfenced_rejected"] for t in trials)
    stale_plain = [w["revision"] for t in trials for w in t["writes"]
                   if w["kind"] == "unfenced" and w["stale"] and w["ok"]]
    unknown = sum(t["unknown"] for t in trials)
    items.append(claim(
        "paused-holder-unfenced-accepted", None if n == 0 else accepted > 0,
        "After SIGCONT the paused holder's plain puts, made after its lock key had been "
        f"deleted, were accepted: {fmt_share(accepted, n)} (by revision).",
        "After SIGCONT none of the paused holder's plain puts made after its lock key's "
        f"deletion was accepted: {fmt_share(accepted, n)} (by revision).",
        "No plain put of the resumed holder reached etcd after its lock key's deletion in "
        "this run.",
        **{"accepted at revisions": _revisions(stale_plain),
           "lock key deleted at": _revisions([t["revoked_revision"] for t in trials]),
           "unknown outcomes": fmt_count(unknown)}))

    fenced = [w for t in trials for w in t["writes"]
              if w["kind"] == "fenced" and w["stale"] and w["outcome"] != "unknown"]
    through = sum(1 for w in fenced if w["ok"])
    rejected = len(fenced) - through
    n = len(fenced)
    items.append(claim(
        "paused-holder-fenced-rejected", None if n == 0 else through == 0,
        "After SIGCONT etcd rejected every fenced write of the paused holder (its transaction "
        "compared the lock key's create revision with its old token): "
        f"{fmt_share(rejected, n)}.",
        f"After SIGCONT etcd accepted fenced writes of the paused holder: {fmt_share(through, n)}.",
        "No fenced write of the resumed holder reached etcd after its lock key's deletion in "
        "this run.",
        **{"its token": _revisions([t["token"] for t in trials]),
           "the new holder's token": _revisions([t["contender_token"] for t in trials])}))

    broken = any(during) and accepted > 0
    items.append(comparison(
        "published-jepsen-paused-holder", "published", True if broken else None,
        "As Jepsen found (etcd 3.4.3, 2020), a pause past the lease broke the lock's mutual "
        "exclusion with no clock drift: the resumed holder wrote under another's lock; only "
        "its fenced writes were refused.",
        "A pause longer than the lease did not break the lock's mutual exclusion, contrary "
        "to Jepsen.",
        "This run did not show a resumed holder's plain write accepted after another client "
        "took its lock, which neither shows nor refutes Jepsen's finding."))
    return items


def lease_reset_finding(partition_leases: Sequence[Mapping[str, Any]] | None) -> Finding:
    """Whether a new leader reset a lease to its full TTL, from Q3's leader trials (the
    lease's remaining TTL read from the old leader before the cut and from the new one);
    etcd does so unless lease checkpointing is on. ``partition_leases`` are those trials'
    leases (:func:`etcdlab.questions.findings.leader_change_leases`; None: no partition
    result in this run)."""
    if partition_leases is None:
        return untestable(
            "lease-reset-on-new-leader",
            "This run has no completed Q3 (`partition`) result to cite: Q3's leader trials "
            "read a lease's remaining TTL before the leader is cut off and from the new "
            "leader.")
    leases = [x for x in partition_leases
              if x.get("before_s") is not None and x.get("after_s") is not None]
    if not leases:
        return untestable("lease-reset-on-new-leader",
                          "Q3's partition run read no lease both before the cut and from the "
                          "new leader.")
    # TTLs are whole seconds: "full" is within 1 s of the granted TTL, and more than before.
    reset = sum(1 for x in leases if x["ttl_s"] is not None and x["after_s"] > x["before_s"]
                and x["after_s"] >= x["ttl_s"] - 1)
    first = leases[0]
    return claim(
        "lease-reset-on-new-leader", reset == len(leases),
        "Across a leader change a lease's remaining TTL went back to its full TTL (cited from "
        "Q3's partition run): without lease checkpointing, a new leader restores the time a "
        "lease had used, a paused holder's too.",
        "Across a leader change a lease's remaining TTL did not go back to its full TTL "
        "(cited from Q3's partition run), as with lease checkpointing on: the new leader "
        "went on from the remaining TTL.",
        **{"reset": fmt_share(reset, len(leases)),
           "TTL": fmt_ttl(first["ttl_s"]),
           "left before the cut": fmt_whole_seconds(first["before_s"]),
           "left at the new leader": fmt_whole_seconds(first["after_s"]),
           "lease age at the cut": fmt_seconds(first.get("age_at_cut_s"))})


def question_prediction() -> dict[str, str]:
    """TTL × (1/rate − 1) for the question's drift and the full run's TTL, per holder."""
    return {name: fmt_seconds(predicted_error_s(
        FULL_RUN_TTL_S, drift_rate(sign * QUESTION_DRIFT_MS_PER_MIN)))
        for name, sign in (("fast", 1.0), ("slow", -1.0))}


def question_ppm() -> str:
    """The question's drift as a rate error: 500 ms/min ≈ 8,333 ppm."""
    return fmt_ppm(rate_ppm(drift_rate(QUESTION_DRIFT_MS_PER_MIN)))


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course-valid-after-expiry": ("lease believed valid after expiry",
                                  "seen with the slow client", "not seen",
                                  "no slow client measured"),
    "course-premature-expiry": ("premature expiry on the server", "", "",
                                "etcd's clock cannot be faked in this lab"),
}
