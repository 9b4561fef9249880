"""Q6 ``quota``: samples → summary → findings (pure: no cluster, no I/O).

The experiment fills the backend until a write is refused, probes what still works while
the NOSPACE alarm is raised (the samples record each probe's outcome: ok, failed with its
gRPC code and details, or unknown), then recovers as the etcd docs say and records every
member's DB size before and after compaction and defragmentation. Every finding below is
read from those records; a record that is missing makes its finding untestable, with why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from etcdlab.figures import stats
from etcdlab.figures.units import (
    fmt_bytes,
    fmt_count,
    fmt_factor,
    fmt_median_stats,
    fmt_percent,
    fmt_seconds,
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

NOSPACE_TEXT = "database space exceeded"
# The full text etcd's docs give for a refused write.
PUBLISHED_NOSPACE = "etcdserver: mvcc: database space exceeded"
# during_alarm polls every member's alarm list this often (plus the time of one round).
ALARM_POLL_S = 0.1
# "Severely hurting write performance" is read as: the median write at least this much
# slower in the second half of the fill than in the first, their 95 % intervals apart.
SEVERE_SLOWDOWN = 1.5
WRITE_PROBES = ("write_leader", "write_follower")
READ_PROBES = ("read_linearizable", "read_serializable")
PROBE_LABELS = {
    "write_leader": "write through the leader",
    "write_follower": "write through a follower",
    "read_linearizable": "linearizable read (follower)",
    "read_serializable": "serializable read (follower)",
    "delete": "delete one key (leader)",
    "lease_grant": "lease grant (leader)",
    "lease_keepalive": "keepalive of a lease granted before the fill (leader)",
    "lease_revoke": "revoke of that lease, which holds one key (leader)",
    "txn_range": "txn without a put: compare, then range (leader)",
    "txn_delete": "txn without a put: compare, then delete (leader)",
}
# The operations the alarm may or may not accept, beyond the writes, reads and the delete
# above: finding id → (the probe it reads, what the sentence calls it).
ACCEPTS = {
    "nospace-accepts-lease-grant": ("lease_grant", "a lease grant"),
    "nospace-accepts-lease-keepalive": ("lease_keepalive", "a lease keepalive"),
    "nospace-accepts-lease-revoke": ("lease_revoke", "a lease revoke"),
    "nospace-accepts-txn-range": ("txn_range", "a transaction with only a compare and a range"),
    "nospace-accepts-txn-delete": ("txn_delete",
                                   "a transaction with only a compare and a delete"),
}
# The compaction "frees the space in use" when every member's dbSizeInUse right after it is
# at most this share of what it was before.
IN_USE_FREED = 0.5
# A member counts as blocked by its defragmentation when no read to it was answered for at
# least this share of the defragmentation's time (as the client timed the Defragment call) …
BLOCKED_SHARE = 0.5
# … and that gap is this many times the median read before it; a defragmentation shorter than
# this many median reads is too short to tell a blocked member from an answering one.
BLOCKED_FACTOR = 10

# The parts of the docs' account of the alarm, as the findings that test them.
DOCS_PARTS = {"alarm_listed": "not every member listed the alarm",
              "writes_refused": "a write was not refused for lack of space",
              "reads_worked": "a read did not work", "delete_worked": "the delete did not work"}

COURSE_REPORT_QUOTE = (
    "\"Se esse limite for excedido, o etcd entra em modo 'somente leitura' para escritas, "
    "recusando novas operações e impactando severamente o desempenho de escrita\" (when the "
    "limit is exceeded etcd goes read-only for writes, refusing new operations and severely "
    "hurting write performance)"
)

# The question sets no quota; the full run applies 32 MiB, a quick run 16 MiB.
ASKED = (
    Asked("quota_bytes", 32 * 1024**2, "Quota applied for the experiment (full run)", fmt_bytes),
)


# -- summary ---------------------------------------------------------------------------------

def _probe(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {key: record.get(key) for key in ("outcome", "code", "details", "elapsed_s",
                                             "found", "deleted", "ttl", "key_gone",
                                             "succeeded") if key in record}


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The quota, what was written until the alarm, what worked during it, the recovery."""
    fill_ = samples.get("fill") or {}
    alarm = samples.get("alarm") or {}
    recovery = samples.get("recovery") or {}
    probes = alarm.get("probes") or {}
    listed = alarm.get("alarms") or {}
    refused = fill_.get("refused") or {}
    summary: dict[str, Any] = {
        "quota_bytes": params["quota_bytes"],
        "configured_quota_bytes": (samples.get("setup") or {}).get("configured"),
        "value_bytes": fill_.get("value_bytes"),
        "keys": fill_.get("keys"),
        "bytes_written_at_alarm": fill_.get("bytes_acknowledged"),
        "writes_at_alarm": fill_.get("acknowledged"),
        "unknown_writes": fill_.get("unknown"),
        "fill_s": fill_.get("elapsed_s"),
        "db_size_at_alarm": fill_.get("db_size_at_alarm"),
        "refused": _probe(refused) if refused else None,
        "refused_details": refused.get("details"),
        "alarm": ", ".join(sorted({a["alarm"] for alarms in listed.values() for a in alarms}))
        or None,
        "alarm_raised_for": sorted({a["member"] for alarms in listed.values() for a in alarms
                                    if a["alarm"] == "NOSPACE"}),
        "alarm_listed_by": {member: any(a["alarm"] == "NOSPACE" for a in alarms)
                            for member, alarms in sorted(listed.items())},
        "alarm_listed_after_s": alarm.get("listed_after_s"),
        "alarm_listed_by_every_member": bool(listed) and all(
            any(a["alarm"] == "NOSPACE" for a in alarms) for alarms in listed.values()),
        "probes": {name: _probe(probes.get(name)) for name in PROBE_LABELS if name in probes},
        "alarm_probe_member": alarm.get("leader"),
        "health_endpoint": alarm.get("health_endpoint"),
        "writes_refused_during_alarm": bool(probes) and all(
            probes[p]["outcome"] == "failed" and NOSPACE_TEXT in probes[p]["details"]
            for p in WRITE_PROBES),
        "reads_during_alarm_ok": bool(probes) and all(
            probes[p]["outcome"] == "ok" and probes[p].get("found") for p in READ_PROBES),
        "delete_during_alarm_ok": bool(probes) and probes["delete"]["outcome"] == "ok"
        and probes["delete"].get("deleted") == 1,
    }
    writes = [w for w in fill_.get("writes") or [] if w["outcome"] == "ok"]
    if writes:
        half = len(writes) // 2
        first, second = writes[:half] or writes, writes[half:]
        summary["write_latency_first_half_ms"] = 1000 * stats.percentile(
            [w["elapsed_s"] for w in first], 50)
        summary["write_latency_second_half_ms"] = 1000 * stats.percentile(
            [w["elapsed_s"] for w in second], 50)
        summary["write_latency_halves"] = [stats.median_stats([w["elapsed_s"] for w in part])
                                           for part in (first, second)]
    if recovery:
        defrags = recovery["defragment"]
        summary["recovery"] = {
            "compact_s": recovery["compact"]["elapsed_s"],
            "compact_ok": recovery["compact"]["outcome"] == "ok",
            "compact_revision": recovery["compact"].get("revision"),
            "defrag_s": sum(d["elapsed_s"] for d in defrags),
            "defrag_max_member_s": max((d["elapsed_s"] for d in defrags), default=None),
            "defrag_ok": all(d["outcome"] == "ok" for d in defrags),
            "defragment": [{key: d.get(key) for key in ("member", "outcome", "code", "details",
                                                         "elapsed_s", "db_size_before",
                                                         "db_size_after")} for d in defrags],
            "disarm": [{key: d.get(key) for key in ("member", "alarm", "outcome", "code",
                                                     "elapsed_s")} for d in recovery["disarm"]],
            "disarm_s": sum(d["elapsed_s"] for d in recovery["disarm"]),
            "disarm_ok": all(d["outcome"] == "ok" for d in recovery["disarm"]),
            "alarms_disarmed": len(recovery["disarm"]),
            "alarms_left": sum(len(a) for a in recovery["alarms_after"].values()),
            "db_size_before": recovery["db_size_before"],
            "db_size_after_compact": recovery["db_size_after_compact"],
            "db_size_after": recovery["db_size_after"],
            "write_after": _probe(recovery["write_after"]),
            "writes_ok_after": recovery["write_after"]["outcome"] == "ok",
        }
        if "alarms_at_compact" in recovery:
            summary["recovery"]["alarms_at_compact"] = sorted(
                a["member"] for a in recovery["alarms_at_compact"] if a["alarm"] == "NOSPACE")
        if recovery.get("early_disarm"):
            summary["recovery"]["early_disarm"] = _early_disarm(recovery["early_disarm"])
        if defrags and all("reads" in d for d in defrags):
            summary["recovery"]["defrag_blocking"] = [_blocking(d) for d in defrags]
    if samples.get("phases"):
        summary["phases"] = [{key: phase.get(key) for key in ("phase", "db_size",
                                                              "db_size_in_use")}
                             for phase in samples["phases"]]
    restored = samples.get("restore") or {}
    summary["quota_restored"] = restored.get("configured")
    return summary


def _early_disarm(early: Mapping[str, Any]) -> dict[str, Any]:
    """The step between compaction and defragmentation: disarm, one write, the alarms."""
    after = early.get("alarms_after_write") or {}
    sizes = early.get("sizes_before_write") or {}
    return {
        "disarmed": len(early.get("disarm") or []),
        "disarm_ok": all(d["outcome"] == "ok" for d in early.get("disarm") or []),
        "alarms_left_after_disarm": len(early.get("alarms_after_disarm") or []),
        "write": _probe(early.get("write")),
        "listed_by": {member: any(a["alarm"] == "NOSPACE" for a in alarms)
                      for member, alarms in sorted(after.items())},
        "raised_for": sorted({a["member"] for alarms in after.values() for a in alarms
                              if a["alarm"] == "NOSPACE"}),
        "listed_after_s": early.get("listed_after_s"),
        "db_size": sizes.get("db_size"), "db_size_in_use": sizes.get("db_size_in_use"),
    }


def _blocking(defrag: Mapping[str, Any]) -> dict[str, Any]:
    """How one member answered the reader's serializable reads around its defragmentation.

    A read overlaps the defragmentation when it was in flight at any time between the
    Defragment call's start and its answer. The longest gap is the longest time without a
    read answer, from the call's start until the first answer after the call's end."""
    reads = defrag.get("reads") or []
    start, end = defrag.get("started_s"), defrag.get("ended_s")
    if start is None or end is None:
        return {"member": defrag["member"], "reads": len(reads)}
    answered = sorted(r["sent_s"] + r["elapsed_s"] for r in reads if r["outcome"] == "ok")
    points = [start] + [t for t in answered if start < t <= end]
    points += [t for t in answered if t > end][:1]
    during = [r for r in reads if r["sent_s"] < end and r["sent_s"] + r["elapsed_s"] > start]
    before = [r["elapsed_s"] for r in reads
              if r["outcome"] == "ok" and r["sent_s"] + r["elapsed_s"] < start]
    return {
        "member": defrag["member"], "outcome": defrag.get("outcome"),
        "defrag_s": defrag.get("elapsed_s"), "reads": len(reads),
        "reads_during": len(during),
        "not_ok_during": sum(r["outcome"] != "ok" for r in during),
        "longest_gap_s": max((b - a for a, b in pairwise(points)), default=None),
        "longest_read_during_s": max((r["elapsed_s"] for r in during), default=None),
        "answered_after_s": points[-1] - end if len(points) > 1 and points[-1] > end else None,
        "reads_before": len(before),
        "median_read_before_s": stats.median_or_none(before),
        "longest_read_before_s": max(before, default=None),
    }


# -- findings --------------------------------------------------------------------------------

def sizes_text(sizes: Mapping[str, int | None] | None) -> str:
    """"node1 16.3 MiB, node2 16.5 MiB" (— for a member that did not answer)."""
    if not sizes:
        return "not recorded"
    return ", ".join(f"{member} {fmt_bytes(size)}" for member, size in sorted(sizes.items()))


def _names(members: Sequence[str]) -> str:
    members = sorted(members)
    if len(members) <= 1:
        return "".join(members)
    return ", ".join(members[:-1]) + " and " + members[-1]


def _outcome_text(record: Mapping[str, Any]) -> str:
    """"refused (RESOURCE_EXHAUSTED: …)", "accepted", "timed out (outcome unknown)"."""
    if record["outcome"] == "ok":
        return "accepted"
    if record["outcome"] == "unknown":
        return "timed out (outcome unknown)"
    details = f": {record['details']}" if record.get("details") else ""
    return f"refused ({record.get('code')}{details})"


def _probe_state(summary: Mapping[str, Any], names: Sequence[str],
                 worked) -> tuple[bool | None, str, dict[str, str]]:
    """(whether ``worked(record)`` held for every probe named, why unknown, figures)."""
    probes = summary.get("probes") or {}
    missing = [n for n in names if probes.get(n) is None]
    figures = {PROBE_LABELS[n]: _outcome_text(probes[n]) for n in names if n not in missing}
    if missing:
        return None, "the run recorded no " + " and no ".join(PROBE_LABELS[n] for n in missing) \
            + " during the alarm", figures
    if any(probes[n]["outcome"] == "unknown" for n in names):
        return None, "a probe timed out, so its outcome is unknown", figures
    return all(worked(probes[n]) for n in names), "", figures


def _refused_at_quota(summary: Mapping[str, Any]) -> Finding:
    quota = fmt_bytes(summary["quota_bytes"])
    refused = summary.get("refused")
    if summary.get("writes_at_alarm") is None:
        return untestable("refused_at_quota", "The run recorded no fill.")
    filled = (f"{fmt_count(summary['writes_at_alarm'])} writes of "
              f"{fmt_bytes(summary['value_bytes'])} ({fmt_bytes(summary['bytes_written_at_alarm'])}"
              f" of values over {fmt_count(summary['keys'])} keys) were acknowledged in "
              f"{fmt_seconds(summary['fill_s'])}")
    is_nospace = bool(refused) and refused["outcome"] == "failed" \
        and NOSPACE_TEXT in (refused.get("details") or "")
    short = (f"At the {quota} quota, after {fmt_count(summary['writes_at_alarm'])} writes "
             f"({fmt_bytes(summary['bytes_written_at_alarm'])}), the next write was refused")
    return named(claim(
        "refused_at_quota", is_nospace,
        f"With the quota at {quota}, {filled}; the next write was refused with "
        f"{refused.get('code') if refused else ''} \"{(refused or {}).get('details')}\".",
        f"With the quota at {quota}, {filled}; no write was refused for lack of space.",
        **{"DB size at the refusal": sizes_text(summary.get("db_size_at_alarm")),
           "unknown writes": fmt_count(summary.get("unknown_writes"))}), "refusal at the quota",
        f"{short} with {refused.get('code') if refused else ''} (NOSPACE).",
        f"At the {quota} quota no write was refused for lack of space.")


def _alarm_listed(summary: Mapping[str, Any]) -> Finding:
    listed = summary.get("alarm_listed_by") or {}
    yes, no = "Every member listed the NOSPACE alarm.", "Some member did not list the alarm."
    if not listed:
        return claim("alarm_listed", None, yes, no, "The run recorded no member's alarm list.")
    count = sum(listed.values())
    after = fmt_within(summary.get("alarm_listed_after_s"), ALARM_POLL_S)
    missing = [m for m, seen in listed.items() if not seen]
    return claim(
        "alarm_listed", not missing,
        f"The NOSPACE alarm is cluster-wide: {count} of {len(listed)} members listed it, "
        f"{after} after the polling began.",
        f"Only {count} of {len(listed)} members listed the NOSPACE alarm (not {_names(missing)}) "
        f"when the polling stopped, {after} after it began.",
        **{"raised for": _names(summary.get("alarm_raised_for") or []) or "no member"})


def _writes_refused(summary: Mapping[str, Any]) -> Finding:
    holds, why, figures = _probe_state(
        summary, WRITE_PROBES,
        lambda r: r["outcome"] == "failed" and NOSPACE_TEXT in (r.get("details") or ""))
    return claim("writes_refused", holds,
                 "While the alarm was raised, writes through the leader and through a follower "
                 "were refused for lack of space.",
                 "While the alarm was raised, not every write was refused for lack of space.",
                 f"Whether writes were refused during the alarm is unknown: {why}.", **figures)


def _reads_worked(summary: Mapping[str, Any]) -> Finding:
    holds, why, figures = _probe_state(summary, READ_PROBES,
                                       lambda r: r["outcome"] == "ok" and bool(r.get("found")))
    return claim("reads_worked", holds,
                 "Linearizable and serializable reads kept working during the alarm: both "
                 "returned the key's value.",
                 "Reads did not keep working during the alarm: a read failed or found no value.",
                 f"Whether reads worked during the alarm is unknown: {why}.", **figures)


def _delete_worked(summary: Mapping[str, Any]) -> Finding:
    holds, why, figures = _probe_state(summary, ("delete",),
                                       lambda r: r["outcome"] == "ok" and bool(r.get("deleted")))
    return claim("delete_worked", holds,
                 "A delete kept working during the alarm: it removed the key.",
                 "A delete did not work during the alarm.",
                 f"Whether a delete worked during the alarm is unknown: {why}.", **figures)


def _health(summary: Mapping[str, Any]) -> Finding:
    health = summary.get("health_endpoint") or {}
    if not health:
        return untestable("health_unhealthy", "The run did not query /health.")
    sick = [m for m, ok in health.items() if not ok]
    return claim(
        "health_unhealthy", len(sick) == len(health),
        f"etcd's /health endpoint called {len(sick)} of {len(health)} members unhealthy while "
        "the alarm was raised.",
        f"etcd's /health endpoint called only {len(sick)} of {len(health)} members unhealthy "
        "while the alarm was raised.")


def _sizes_recorded(sizes: Mapping[str, int | None] | None) -> bool:
    return bool(sizes) and all(v is not None for v in sizes.values())


def _compaction(summary: Mapping[str, Any]) -> Finding:
    recovery = summary.get("recovery") or {}
    before, after = recovery.get("db_size_before"), recovery.get("db_size_after_compact")
    yes = "Compaction alone did not shrink the backend files."
    no = "Compaction alone shrank the backend files."
    if not recovery:
        return claim("compaction_kept_size", None, yes, no, "The run recorded no recovery.")
    if not recovery["compact_ok"]:
        return claim("compaction_kept_size", None, yes, no,
                     "The compaction failed, so its effect on the size is not measured.")
    if not (_sizes_recorded(before) and _sizes_recorded(after)) or set(before) != set(after):
        return claim("compaction_kept_size", None, yes, no,
                     "A member's DB size was not recorded before or after the compaction.")
    shrank = sorted(m for m in before if after[m] < before[m])
    figures = {"before": sizes_text(before), "after": sizes_text(after),
               "compaction": fmt_seconds(recovery["compact_s"])}
    return claim(
        "compaction_kept_size", not shrank,
        f"Compacting to revision {fmt_count(recovery.get('compact_revision'))} did not shrink "
        f"the backend files: {len(before) - len(shrank)} of {len(before)} members' DB size "
        "stayed or grew.",
        f"Compacting to revision {fmt_count(recovery.get('compact_revision'))} shrank the "
        f"backend file of {_names(shrank)}.",
        **figures)


def _defragmentation(summary: Mapping[str, Any]) -> Finding:
    recovery = summary.get("recovery") or {}
    yes = "Defragmentation returned the space."
    no = "Defragmentation did not return the space."
    if not recovery:
        return claim("defrag_returned_space", None, yes, no, "The run recorded no recovery.")
    defrags = recovery["defragment"]
    if not defrags or any(d["db_size_before"] is None or d["db_size_after"] is None
                          for d in defrags):
        return claim("defrag_returned_space", None, yes, no,
                     "A member's DB size was not recorded before or after its defragmentation.")
    quota = summary["quota_bytes"]
    shrank = [d for d in defrags
              if d["outcome"] == "ok" and d["db_size_after"] < d["db_size_before"]]
    not_shrunk = sorted(d["member"] for d in defrags if d not in shrank)
    largest = max(d["db_size_after"] for d in defrags)
    figures = {d["member"]: f"{fmt_bytes(d['db_size_before'])} → {fmt_bytes(d['db_size_after'])}"
               f" in {fmt_seconds(d['elapsed_s'])}" for d in defrags}
    return claim(
        "defrag_returned_space", not not_shrunk,
        f"Defragmentation returned the space: {len(shrank)} of {len(defrags)} members' DB size "
        f"shrank, to at most {fmt_bytes(largest)} ({fmt_percent(largest / quota)} of the quota).",
        f"Defragmentation did not shrink the DB of {_names(not_shrunk)}.",
        **figures)


def _recovered(summary: Mapping[str, Any]) -> Finding:
    recovery = summary.get("recovery") or {}
    if not recovery:
        return untestable("recovered", "The run recorded no recovery.")
    left = recovery["alarms_left"]
    write = recovery["write_after"]
    return claim(
        "recovered", write["outcome"] == "ok" and left == 0,
        f"After {fmt_count(recovery['alarms_disarmed'])} alarms were disarmed, no alarm was "
        "left and a write was accepted again.",
        f"After the recovery {fmt_count(left)} alarm(s) were left and a write was "
        f"{_outcome_text(write)}.",
        **{"DB size after": sizes_text(recovery["db_size_after"])})


def _effect_text(name: str, record: Mapping[str, Any]) -> str:
    """What an accepted probe did: "granted TTL 300 s", "its key deleted", "compare held"."""
    if record["outcome"] != "ok":
        return ""
    if name == "lease_keepalive":
        return f", TTL {record.get('ttl')} s granted" if record.get("ttl") else \
            ", but the lease was gone (TTL 0)"
    if name == "lease_revoke":
        return {True: ", its key deleted", False: ", its key still there"}.get(
            record.get("key_gone"), "")
    if name in ("txn_range", "txn_delete"):
        return {True: ", the compare held", False: ", the compare failed"}.get(
            record.get("succeeded"), "")
    return ""


def _accepts(summary: Mapping[str, Any]) -> list[Finding]:
    """One finding per operation probed beyond writes, reads and the delete (only for the
    probes this run recorded: older runs had none of them)."""
    probes = summary.get("probes") or {}
    leader = summary.get("alarm_probe_member")
    during = next((p for p in summary.get("phases") or [] if p["phase"] == "during the alarm"),
                  {})
    size = (during.get("db_size") or {}).get(leader) if leader else None
    found = []
    for id_, (name, what) in ACCEPTS.items():
        record = probes.get(name)
        if record is None:
            continue
        sentence = f"While the NOSPACE alarm was raised, {what} was"
        figures = {PROBE_LABELS[name]: _outcome_text(record) + _effect_text(name, record)}
        if size is not None:
            figures[f"dbSize of {leader}, which took it, just before"] = \
                f"{fmt_bytes(size)} (quota {fmt_bytes(summary['quota_bytes'])})"
        holds: bool | None = record["outcome"] == "ok"
        why = ""
        if record["outcome"] == "unknown":
            holds, why = None, f"{what.capitalize()} timed out during the alarm: its outcome " \
                "is unknown."
        elif name == "lease_keepalive" and holds and not record.get("ttl"):
            holds, why = None, "The keepalive was answered, but the lease granted before the " \
                "fill had already expired (TTL 0), so whether a live lease is renewed is not " \
                "shown."
        refused = _outcome_text(record) if record["outcome"] == "failed" else "refused"
        found.append(claim(id_, holds, f"{sentence} accepted.", f"{sentence} {refused}.", why,
                           **figures))
    recovery = summary.get("recovery") or {}
    if "alarms_at_compact" in recovery:
        raised = recovery["alarms_at_compact"]
        compact = "the compaction to the current revision (the recovery's first step)"
        figures = {"alarms listed when it was sent": _names(raised) or "none",
                   "compaction": fmt_seconds(recovery["compact_s"])}
        found.append(claim(
            "nospace-accepts-compact", recovery["compact_ok"] if raised else None,
            f"While the NOSPACE alarm was raised, {compact} was accepted.",
            f"While the NOSPACE alarm was raised, {compact} failed.",
            "No alarm was listed when the compaction was sent, so it does not show what the "
            "alarm accepts.", **figures))
    return found


def _in_use_after_compaction(summary: Mapping[str, Any]) -> list[Finding]:
    """Whether Status ``dbSizeInUse`` fell with the compaction (when it was recorded)."""
    phases = {p["phase"]: p for p in summary.get("phases") or []}
    before, after = phases.get("before compaction"), phases.get("compacted")
    if not before or not after:
        return []
    yes = "The compaction freed most of every member's dbSizeInUse."
    no = "The compaction did not free most of every member's dbSizeInUse."
    old, new = before.get("db_size_in_use") or {}, after.get("db_size_in_use") or {}
    if not _sizes_recorded(old) or not _sizes_recorded(new) or set(old) != set(new):
        return [claim("compaction-frees-in-use", None, yes, no,
                      "A member's dbSizeInUse was not reported before or after the "
                      "compaction (etcd reports it from v3.4 on).")]
    kept = max(new[m] / old[m] for m in old if old[m]) if any(old.values()) else None
    figures = {"dbSizeInUse before": sizes_text(old), "after": sizes_text(new),
               "dbSize after": sizes_text(after.get("db_size"))}
    last = (summary.get("phases") or [{}])[-1]
    if _sizes_recorded(last.get("db_size_in_use")):
        figures["dbSizeInUse at the end (defragmented)"] = sizes_text(last["db_size_in_use"])
    if kept is None:
        return [claim("compaction-frees-in-use", None, yes, no,
                      "No member reported any space in use before the compaction.", **figures)]
    return [claim(
        "compaction-frees-in-use", kept <= IN_USE_FREED,
        "Right after the compaction, etcd's Status reported at most "
        f"{fmt_percent(kept, 0)} of the space in use (dbSizeInUse) as before it on every "
        "member.",
        "Right after the compaction, etcd's Status still reported up to "
        f"{fmt_percent(kept, 0)} of the space in use (dbSizeInUse) as before it; it fell only "
        "with the defragmentation.",
        **figures)]


def _realarm(summary: Mapping[str, Any]) -> list[Finding]:
    """Disarmed after the compaction, before the defragmentation: does a write re-arm it?"""
    early = (summary.get("recovery") or {}).get("early_disarm")
    if not early:
        return []
    id_ = "disarm-before-defrag-realarms"
    yes = ("Disarmed after the compaction but before the defragmentation, the alarm came back "
           "with the next write.")
    no = "Disarmed before the defragmentation, the next write did not bring the alarm back."
    write = early["write"] or {}
    quota = summary["quota_bytes"]
    figures = {"the write": _outcome_text(write) if write else "not sent",
               "alarms after it": (f"NOSPACE of {_names(early['raised_for'])}, listed by "
                                   f"{sum(early['listed_by'].values())} of "
                                   f"{len(early['listed_by'])} members") if early["raised_for"]
               else "none",
               "dbSize then": sizes_text(early["db_size"]),
               "dbSizeInUse then": sizes_text(early["db_size_in_use"]),
               "quota": fmt_bytes(quota)}
    if not early["disarm_ok"] or early["alarms_left_after_disarm"]:
        return [claim(id_, None, yes, no, "The early disarm did not clear every alarm, so the "
                      "write did not meet a disarmed cluster.", **figures)]
    if not write or write["outcome"] == "unknown":
        return [claim(id_, None, yes, no, "The write after the early disarm timed out (or was "
                      "not sent): whether it raised the alarm again is unknown.", **figures)]
    refused = write["outcome"] == "failed" and NOSPACE_TEXT in (write.get("details") or "")
    raised = bool(early["raised_for"])
    if refused and raised:
        figures["write → NOSPACE listed again"] = (
            f"{fmt_seconds(early['listed_after_s'])} (the look that found it)")
        figures["polled"] = f"every member's alarms, every {fmt_seconds(ALARM_POLL_S)}"
        return [claim(id_, True, yes + " The write was refused for lack of space; "
                      f"{sum(early['listed_by'].values())} of {len(early['listed_by'])} members "
                      f"listed NOSPACE again {fmt_seconds(early['listed_after_s'])} after it.",
                      no, **figures)]
    return [claim(id_, False, yes, no + f" The write was {_outcome_text(write)}, and "
                  + ("NOSPACE was listed again." if raised else "no alarm was listed after it."),
                  **figures)]


def _blocked(summary: Mapping[str, Any]) -> list[Finding]:
    """Whether each member stopped answering serializable reads during its defragmentation."""
    blocking = (summary.get("recovery") or {}).get("defrag_blocking")
    if not blocking:
        return []
    id_ = "defrag-blocks-member"
    yes = "Each member stopped answering reads while it defragmented."
    no = "Not every member stopped answering reads while it defragmented."
    figures = {
        b["member"]: (f"defragmentation {fmt_seconds(b.get('defrag_s'))}; longest time without "
                      f"a read answered {fmt_seconds(b.get('longest_gap_s'))} (the next answer "
                      f"{fmt_seconds(b.get('answered_after_s'))} after the defragmentation's); "
                      f"reads overlapping it: {fmt_count(b.get('reads_during'))} "
                      f"({fmt_count(b.get('not_ok_during'))} not answered), the longest "
                      f"{fmt_seconds(b.get('longest_read_during_s'))}; reads before it: median "
                      f"{fmt_seconds(b.get('median_read_before_s'))}, longest "
                      f"{fmt_seconds(b.get('longest_read_before_s'))} "
                      f"(n = {fmt_count(b.get('reads_before'))})")
        for b in blocking}
    unusable = [b["member"] for b in blocking
                if b.get("outcome") != "ok" or b.get("longest_gap_s") is None
                or not b.get("median_read_before_s")]
    if unusable:
        return [claim(id_, None, yes, no, f"The defragmentation of {_names(unusable)} failed, "
                      "or its reader recorded no answer before or around it.", **figures)]
    short = [b["member"] for b in blocking
             if b["defrag_s"] < BLOCKED_FACTOR * b["median_read_before_s"]]
    if short:
        return [claim(id_, None, yes, no, f"The defragmentation of {_names(short)} took less "
                      f"than {BLOCKED_FACTOR} median reads: too short to tell whether reads "
                      "waited for it.", **figures)]
    answering = sorted(b["member"] for b in blocking
                       if b["longest_gap_s"] < BLOCKED_SHARE * b["defrag_s"]
                       or b["longest_gap_s"] < BLOCKED_FACTOR * b["median_read_before_s"])
    share = min(b["longest_gap_s"] / b["defrag_s"] for b in blocking)
    return [claim(
        id_, not answering,
        f"Each member stopped answering serializable reads while it defragmented: on every "
        f"member no read was answered for at least {fmt_percent(share, 0)} of its "
        f"defragmentation's time, at least {BLOCKED_FACTOR}× its median read before it.",
        f"{_names(answering)} kept answering serializable reads during its defragmentation: "
        f"no gap without an answer reached {fmt_percent(BLOCKED_SHARE, 0)} of the "
        f"defragmentation's time and {BLOCKED_FACTOR}× the median read.",
        **figures)]


def _slowdown(summary: Mapping[str, Any]) -> Finding:
    halves = summary.get("write_latency_halves")
    yes = "Writes slowed down as the backend filled."
    no = "Writes did not slow down as the backend filled."
    if not halves or halves[0].get("low") is None or halves[1].get("low") is None:
        return claim("fill_slowdown", None, yes, no,
                     "Too few acknowledged writes for intervals of the two halves' medians.",
                     **({"writes": fmt_median_stats(halves[0])} if halves else {}))
    first, second = halves
    ratio = second["median"] / first["median"] if first["median"] else None
    figures = {"first half": fmt_median_stats(first), "second half": fmt_median_stats(second)}
    apart = "the second half's lower, the 95 % intervals apart" \
        if second["high"] < first["low"] else "their 95 % intervals overlap"
    return claim(
        "fill_slowdown", second["low"] > first["high"],
        f"Writes slowed down as the backend filled: the median write took {fmt_factor(ratio)} "
        "as long in the second half of the fill as in the first (95 % intervals apart).",
        f"Writes did not measurably slow down as the backend filled: the median write took "
        f"{fmt_factor(ratio)} as long in the second half of the fill as in the first ({apart}).",
        **figures)


def _probe_counts(summary: Mapping[str, Any]) -> str:
    """"2 of 2 writes refused; 2 of 2 reads and 1 of 1 delete accepted" (one probe each)."""
    probes = summary.get("probes") or {}

    def count(names: Sequence[str], outcome: str) -> str:
        seen = [probes[n] for n in names if probes.get(n)]
        return f"{sum(p['outcome'] == outcome for p in seen)} of {len(seen)}"
    return (f"{count(WRITE_PROBES, 'failed')} writes refused; {count(READ_PROBES, 'ok')} reads "
            f"and {count(('delete',), 'ok')} delete accepted")


def _published(summary: Mapping[str, Any], parts: Mapping[str, Finding]) -> list[Finding]:
    needed = [parts[k] for k in ("alarm_listed", "writes_refused", "reads_worked",
                                 "delete_worked")]
    exact = all((summary["probes"].get(p) or {}).get("details") == PUBLISHED_NOSPACE
                for p in WRITE_PROBES) if summary.get("probes") else False
    differs = [DOCS_PARTS[f.id] for f in needed if f.holds is False] + (
        [] if exact or not summary.get("probes") else ["the refused writes' text"])
    holds = None if any(f.holds is None for f in needed) and not differs else not differs
    nospace = comparison(
        "published_nospace", "published", holds,
        "As the etcd docs say, the alarm was cluster-wide, only reads and deletes were accepted "
        f"and writes failed with \"{PUBLISHED_NOSPACE}\".",
        "This run differs from the etcd docs' account of the alarm in: "
        + "; ".join(differs) + ".",
        "Part of the docs' account (cluster-wide alarm, only reads and deletes, the refusal's "
        "text) was not measured: a probe is missing or timed out.",
        **{"probes": _probe_counts(summary)})
    recovery = summary.get("recovery")
    if not recovery:
        procedure = untestable("published_recovery", "The run recorded no recovery.",
                               source="published")
    else:
        steps_ok = recovery["compact_ok"] and recovery["defrag_ok"] and recovery["disarm_ok"]
        procedure = comparison(
            "published_recovery", "published",
            steps_ok and parts["recovered"].holds is True,
            "The etcd docs' recovery (compact to the current revision, defragment every member, "
            "disarm) worked: each step succeeded and writes were accepted again.",
            "The etcd docs' recovery (compact, defragment every member, disarm) did not bring "
            "writes back in this run, or one of its steps failed.",
            **{"compact": fmt_seconds(recovery["compact_s"]),
               "defragment, all members": fmt_seconds(recovery["defrag_s"]),
               "disarm": fmt_seconds(recovery["disarm_s"])})
    blocks = parts.get("defrag-blocks-member")
    if blocks is None:
        return [nospace, procedure]
    blocking = comparison(
        "published-defrag-blocks", "published", blocks.holds,
        "As the etcd docs say, defragmenting a member blocked it: it answered no read while "
        "it ran.",
        "The etcd docs say defragmentation blocks the member; in this run a member kept "
        "answering reads while it defragmented.",
        "Whether defragmentation blocks the member was not measured here: "
        + (blocks.why_unknown[:1].lower() + blocks.why_unknown[1:]))
    return [nospace, procedure, blocking]


def _course(summary: Mapping[str, Any], parts: Mapping[str, Finding]) -> list[Finding]:
    writes = parts["writes_refused"]
    refused = comparison(
        "course_writes_refused", "course", writes.holds,
        "The course report is right that writes are refused once the limit is exceeded.",
        "The course report says writes are refused; in this run a write during the alarm was "
        "not refused for lack of space.",
        "Whether writes were refused during the alarm was not measured (a probe is missing or "
        "timed out).")
    reads, delete = parts["reads_worked"], parts["delete_worked"]
    if reads.holds is None or delete.holds is None:
        read_only_holds = None
    else:
        read_only_holds = reads.holds and not delete.holds
    # "Read-only" is judged on what it forbids (every write, a delete included) and what it
    # allows (reads): reads that worked agree with it, a delete accepted does not.
    why_not = ("a delete, a write that frees space, was accepted (reads worked, as "
               "read-only allows)" if reads.holds and delete.holds else
               "reads failed as well, so it was not read-only but unavailable to reads"
               if not reads.holds else "")
    read_only = named(comparison(
        "course_read_only", "course", read_only_holds,
        "The course report's \"read-only\" matches this run: reads worked and the delete was "
        "refused like the other writes.",
        "The course report's \"read-only\" mode does not match this run: " + why_not + ".",
        "Whether reads and deletes worked during the alarm was not measured."),
        "read-only under NOSPACE", "reads worked, deletes refused",
        "deletes still accepted" if reads.holds and delete.holds else "reads failed too",
        "not measured")
    slow = parts["fill_slowdown"]
    halves = summary.get("write_latency_halves")
    severe = None
    if slow.holds is not None:
        ratio = halves[1]["median"] / halves[0]["median"] if halves[0]["median"] else 0.0
        severe = bool(slow.holds) and ratio >= SEVERE_SLOWDOWN
    performance = comparison(
        "course_write_performance", "course", severe,
        "The course report's \"severely hurting write performance\" matches this run: writes "
        f"took at least {SEVERE_SLOWDOWN:.1f}× as long in the second half of the fill.",
        "The course report's \"severely hurting write performance\" does not match this run: "
        f"writes did not become {SEVERE_SLOWDOWN:.1f}× slower as the backend filled.",
        "Too few writes to compare the two halves of the fill.",
        **dict(slow.figures))
    return [refused, read_only, performance]


def findings(summary: Mapping[str, Any], params: Mapping[str, Any]) -> list[Finding]:
    """The section's findings in the order shown: the refusal at the quota (the answer),
    the alarm, what worked during it, the recovery, the fill's write latency, then the
    published account and the course report."""
    measured = [_refused_at_quota(summary), _alarm_listed(summary), _writes_refused(summary),
                _reads_worked(summary), _delete_worked(summary), *_accepts(summary),
                _health(summary), _compaction(summary), *_in_use_after_compaction(summary),
                *_realarm(summary), _defragmentation(summary), *_blocked(summary),
                _recovered(summary), _slowdown(summary)]
    parts = {f.id: f for f in measured}
    return name_all([*measured, *_published(summary, parts), *_course(summary, parts)],
                    COURSE_NAMES)


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course_writes_refused": ("writes refused at the quota", "refused (NOSPACE)",
                              "a write was accepted", "not measured"),
    "course_write_performance": ("writes severely slower as it fills",
                                 "slower in the second half", "not markedly slower",
                                 "too few writes"),
}
