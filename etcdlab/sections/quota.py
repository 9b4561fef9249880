"""Q6 ``quota`` in the report: charts and section data from the saved samples."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etcdlab import charts as plots
from etcdlab.experiments.quota import NOSPACE_TEXT
from etcdlab.results import Result
from etcdlab.sections.common import metadata_text
from etcdlab.stats import percentile
from etcdlab.units import MISSING, fmt_bool, fmt_bytes, fmt_count, fmt_ms, fmt_seconds

MIB = 1024**2
COURSE_REPORT_QUOTE = (
    "\"Se esse limite for excedido, o etcd entra em modo 'somente leitura' para escritas, "
    "recusando novas operações e impactando severamente o desempenho de escrita\" (when the "
    "limit is exceeded etcd goes read-only for writes, refusing new operations and severely "
    "hurting write performance)"
)
PROBE_LABELS = {
    "write_leader": "write through the leader",
    "write_follower": "write through a follower",
    "read_linearizable": "linearizable read (follower)",
    "read_serializable": "serializable read (follower)",
    "delete": "delete one key (leader)",
}
# Writes per point of the latency chart: the median of each block smooths single stalls.
LATENCY_BLOCK = 16


def _sizes_series(fill: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per member: (MiB acknowledged, DB size in MiB) at each size poll."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for poll in fill.get("sizes", []):
        for member, size in sorted(poll["db_size"].items()):
            if size is None:
                continue
            xs, ys = series.setdefault(f"DB size, {member}", ([], []))
            xs.append(poll["acknowledged_bytes"] / MIB)
            ys.append(size / MIB)
    return series


def _latency_series(fill: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per block of writes: (MiB acknowledged at its end, its p50 / p90 latency in ms)."""
    value_bytes = fill["value_bytes"]
    ok = [w for w in fill.get("writes", []) if w["outcome"] == "ok"]
    xs: list[float] = []
    lines: dict[str, list[float]] = {"median": [], "90th percentile": []}
    for start in range(0, len(ok), LATENCY_BLOCK):
        block = [1000 * w["elapsed_s"] for w in ok[start:start + LATENCY_BLOCK]]
        xs.append((start + len(block)) * value_bytes / MIB)
        lines["median"].append(percentile(block, 50))
        lines["90th percentile"].append(percentile(block, 90))
    return {f"{name} of each {LATENCY_BLOCK} writes": (xs, ys) for name, ys in lines.items()}


def charts(result: Result, out_dir: Path) -> dict[str, str]:
    """DB size per member and write latency, both against the bytes acknowledged."""
    fill = result.samples.get("fill")
    if not fill or not fill.get("writes"):
        return {}
    quota_mib = result.params["quota_bytes"] / MIB
    sizes = _sizes_series(fill)
    top = max((x for xs, _ in sizes.values() for x in xs), default=0.0)
    sizes[f"quota ({fmt_bytes(result.params['quota_bytes'])})"] = ([0.0, top],
                                                                    [quota_mib, quota_mib])
    files = {"sizes": plots.line_chart(
        out_dir / "quota_db_size.png", sizes, "Backend size of each member while writing",
        "MiB of values acknowledged", "DB size (MiB)")}
    files["latency"] = plots.line_chart(
        out_dir / "quota_write_latency.png", _latency_series(fill),
        "Write latency as the backend fills up", "MiB of values acknowledged",
        "write latency (ms)")
    return files


def _probe_rows(alarm: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for probe, label in PROBE_LABELS.items():
        record = (alarm.get("probes") or {}).get(probe)
        if record is None:
            continue
        details = record["code"] + (f": \"{record['details']}\"" if record["details"] else "")
        rows.append({"operation": label, "outcome": record["outcome"], "details": details,
                     "time": fmt_seconds(record["elapsed_s"])})
    return rows


def _sizes_text(sizes: Mapping[str, int | None] | None) -> str:
    if not sizes:
        return MISSING
    return ", ".join(f"{member} {fmt_bytes(size)}" for member, size in sorted(sizes.items()))


def _recovery_rows(recovery: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = [{"step": f"compact to revision {fmt_count(recovery['compact'].get('revision'))}",
             "outcome": recovery["compact"]["outcome"],
             "time": fmt_seconds(recovery["compact"]["elapsed_s"]),
             "before": _sizes_text(recovery["db_size_before"]),
             "after": _sizes_text(recovery["db_size_after_compact"])}]
    for defrag in recovery["defragment"]:
        rows.append({"step": f"defragment {defrag['member']}", "outcome": defrag["outcome"],
                     "time": fmt_seconds(defrag["elapsed_s"]),
                     "before": fmt_bytes(defrag["db_size_before"]),
                     "after": fmt_bytes(defrag["db_size_after"])})
    for disarm in recovery["disarm"]:
        rows.append({"step": f"disarm {disarm['alarm']} of {disarm['member']}",
                     "outcome": disarm["outcome"], "time": fmt_seconds(disarm["elapsed_s"]),
                     "before": MISSING, "after": MISSING})
    write = recovery["write_after"]
    rows.append({"step": "write again", "outcome": write["outcome"],
                 "time": fmt_seconds(write["elapsed_s"]), "before": MISSING,
                 "after": _sizes_text(recovery["db_size_after"])})
    return rows


def _alarms_text(listed: Mapping[str, list[Mapping[str, Any]]]) -> str:
    """"the NOSPACE alarm for members node2 and node3", from every member's alarm list."""
    by_type: dict[str, set[str]] = {}
    for alarms in listed.values():
        for alarm in alarms:
            by_type.setdefault(alarm["alarm"], set()).add(alarm["member"])
    if not by_type:
        return "no alarm"
    parts = []
    for alarm, members in sorted(by_type.items()):
        names = sorted(members)
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"the {alarm} alarm for member{'s' if len(names) > 1 else ''} {who}")
    return "; ".join(parts)


def _unhealthy_text(health: Mapping[str, bool]) -> str:
    """Which members /health called unhealthy, as words."""
    sick = sorted(member for member, healthy in health.items() if not healthy)
    if not health:
        return "no member (not checked)"
    if len(sick) == len(health):
        return "every member unhealthy"
    return (", ".join(sick) or "no member") + " unhealthy"


def _ok(probes: Mapping[str, Any], *names: str) -> bool:
    return all(probes.get(n, {}).get("outcome") == "ok" for n in names)


def _refused(probes: Mapping[str, Any], *names: str) -> bool:
    return all(probes.get(n, {}).get("outcome") == "failed"
               and NOSPACE_TEXT in probes.get(n, {}).get("details", "") for n in names)


def section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q6 section: answer, tables, published figures, course report, method."""
    params, samples = result.params, result.samples
    fill, alarm = samples.get("fill") or {}, samples.get("alarm") or {}
    recovery = samples.get("recovery") or {}
    probes = alarm.get("probes") or {}
    quota = fmt_bytes(params["quota_bytes"])
    listed = alarm.get("alarms") or {}
    raised = _alarms_text(listed)
    every = bool(listed) and all(any(a["alarm"] == "NOSPACE" for a in alarms)
                                 for alarms in listed.values())
    ok_writes = [w for w in fill.get("writes", []) if w["outcome"] == "ok"]
    half = len(ok_writes) // 2
    first = statistics.median(w["elapsed_s"] for w in ok_writes[:half]) if half else None
    second = statistics.median(w["elapsed_s"] for w in ok_writes[half:]) if half else None

    answer = []
    if fill:
        refused = fill.get("refused") or {}
        answer.append(
            f"With `--quota-backend-bytes` at {quota}, the cluster acknowledged "
            f"{fmt_count(fill['acknowledged'])} writes of {fmt_bytes(fill['value_bytes'])} "
            f"({fmt_bytes(fill['bytes_acknowledged'])} of values, over "
            f"{fmt_count(fill['keys'])} keys) in {fmt_seconds(fill['elapsed_s'])}, then refused "
            f"the next with {refused.get('code', MISSING)} \"{refused.get('details', '')}\" "
            f"and raised {raised}"
            + (", which every member listed." if every else "; not every member listed it.")
        )
    if probes:
        answer.append(
            "While the alarm was raised, writes through the leader and a follower were "
            + ("refused" if _refused(probes, "write_leader", "write_follower")
               else "NOT all refused")
            + ", linearizable and serializable reads "
            + ("worked" if _ok(probes, "read_linearizable", "read_serializable")
               else "did NOT all work")
            + ", and a delete " + ("worked" if _ok(probes, "delete") else "did NOT work")
            + "; etcd's /health endpoint called "
            + _unhealthy_text(alarm.get("health_endpoint") or {})
            + " while it was raised."
        )
    if recovery:
        defrag_total = sum(d["elapsed_s"] for d in recovery["defragment"])
        answer.append(
            f"Compaction took {fmt_seconds(recovery['compact']['elapsed_s'])} and did not "
            f"shrink the files ({_sizes_text(recovery['db_size_before'])} → "
            f"{_sizes_text(recovery['db_size_after_compact'])}); defragmenting the "
            f"{fmt_count(len(recovery['defragment']))} members one after the other took "
            f"{fmt_seconds(defrag_total)} in all and brought them to "
            f"{_sizes_text(recovery['db_size_after'])}; after disarming, a write was "
            + ("accepted again." if recovery["write_after"]["outcome"] == "ok"
               else f"still {recovery['write_after']['outcome']}.")
        )
    slower = None if first is None or second is None else second > 1.5 * first
    course_report = (
        f"The course report says {COURSE_REPORT_QUOTE}. The first half is right: writes are "
        "refused. The rest does not match these measurements: reads and deletes kept "
        "working (it is not a general refusal of operations), and the median write latency "
        f"was {fmt_ms(first * 1000 if first else None)} in the first half of the fill and "
        f"{fmt_ms(second * 1000 if second else None)} in the second, "
        + ("so the quota did not degrade write performance before it was reached: it is a "
           "hard stop, not a slowdown." if slower is False else
           "so writes did slow down as the backend filled." if slower else
           "too few writes to compare.")
        + " The course report also gives no way out; the recovery above is the etcd docs' "
        "procedure, and only its defragmentation returns space to the quota."
    )
    setup = samples.get("setup") or {}
    restore = samples.get("restore") or {}
    return {
        "answer": answer,
        "quota": quota,
        "fill": {
            "writes": fmt_count(fill.get("acknowledged")),
            "unknown": fmt_count(fill.get("unknown")),
            "bytes": fmt_bytes(fill.get("bytes_acknowledged")),
            "elapsed": fmt_seconds(fill.get("elapsed_s")),
            "sizes": _sizes_text(fill.get("db_size_at_alarm")),
            "latency_first": fmt_ms(first * 1000 if first else None),
            "latency_second": fmt_ms(second * 1000 if second else None),
        } if fill else None,
        "alarm_members": "; ".join(
            f"{member}: " + (", ".join(f"{a['alarm']} of {a['member']}" for a in alarms)
                             or "none")
            for member, alarms in sorted(listed.items())) or MISSING,
        "alarm_listed_after": fmt_seconds(alarm.get("listed_after_s")),
        "alarm_every": fmt_bool(every if listed else None),
        "probe_rows": _probe_rows(alarm),
        "recovery_rows": _recovery_rows(recovery) if recovery else [],
        "alarms_left": fmt_count(sum(len(a) for a in recovery.get("alarms_after", {}).values()))
        if recovery else MISSING,
        "sizes_chart": chart_files.get("sizes"),
        "latency_chart": chart_files.get("latency"),
        "course_report": course_report,
        "configured": _sizes_text(None) if not setup.get("configured") else ", ".join(
            f"{m} {fmt_bytes(v)}" for m, v in sorted(setup["configured"].items())),
        "restored": ", ".join(f"{m} {fmt_bytes(v)}"
                              for m, v in sorted((restore.get("configured") or {}).items()))
        or MISSING,
        "reconfigure": fmt_seconds(setup.get("reconfigure_s")),
        "restore_time": fmt_seconds(restore.get("reconfigure_s")),
        "value_bytes": fmt_bytes(params.get("value_bytes")),
        "key_count": fmt_count(params.get("keys")),
        "size_every": fmt_count(params.get("size_every")),
        "start_sizes": _sizes_text(setup.get("db_sizes_start")),
        "block": fmt_count(LATENCY_BLOCK),
        "members": metadata_text(result, "node_count", "nodes"),
        "etcd_version": metadata_text(result, "etcd_version"),
        "provisioned_quota": metadata_text(result, "quota_backend_bytes"),
    }
