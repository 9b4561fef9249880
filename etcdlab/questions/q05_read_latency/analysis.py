"""Q5 ``read-latency``: samples → summary → findings (pure: no cluster, no I/O).

A cell is one consistency (linearizable: ReadIndex, a quorum round through the leader;
serializable: the member's local state) × target (the leader, a follower) × number of
concurrent clients. The findings compare the two consistencies cell by cell through the
exact 95 % intervals of their medians, the client harness with the bare gRPC stub, the
run with the etcd performance docs' figures and with the course report's claims.

Staleness under load (``samples["staleness"]``, absent from older results): segments of
steady writes on the leader with reads on a follower. The cluster's revision at a read is
bounded by the writes alone, on one monotonic clock: at least the highest revision whose
write was acknowledged before the read was sent (it was applied on the leader by then),
at most one less than the lowest revision whose write was sent after the read's answer
came (that revision did not exist yet). A read that saw revision v is therefore behind by
``[L(sent) − v, U(answered) − v]`` revisions, and *certainly stale* when the lower bound is
positive: a write it should have seen had completed before it began, which a linearizable
read must never show. In time, the state it returned had been superseded (revision v + 1
applied on the leader) for at least ``sent − (first acknowledgement of a revision > v)`` and
at most ``answered − (first send of a write that may have made v + 1)``, each clipped at 0.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from typing import Any

from etcdlab.figures import stats
from etcdlab.figures.units import (
    MISSING,
    fmt_count,
    fmt_factor,
    fmt_median_stats,
    fmt_ms,
    fmt_percent,
    fmt_rate,
    fmt_seconds,
    fmt_share,
)
from etcdlab.questions.findings import (
    Asked,
    Finding,
    claim,
    comparison,
    name_all,
    named,
    register_verdict,
    untestable,
)

CONSISTENCIES = ("linearizable", "serializable")
TARGETS = ("leader", "follower")
PATHS = ("bare", "etcd3")

# The harness (the etcd3 client against the bare stub) should add at most 10 %.
HARNESS_TARGET = 1.10
# The client's CPU time per read counts as "a large part" of a latency above this share.
CPU_SHARE_LARGE = 0.25
# Throughput counts as saturated when it grew by less than this share of the client ratio.
SATURATION_SHARE = 0.5

# Write rates of the staleness measurement: writes per second, or "max" (unpaced writers).
RATES_PATTERN = r"(max|[1-9][0-9]{0,5})(,(max|[1-9][0-9]{0,5}))*"
# A paced write rate counts as sustained when the writers acknowledged this share of it.
RATE_SUSTAINED_SHARE = 0.9

# etcd performance docs (etcd 3.2 on GCE, 3 × 8 vCPU): (QPS, average latency in ms).
PUBLISHED_C1 = {"linearizable": (1353, 0.7), "serializable": (2909, 0.3)}
PUBLISHED_C1000 = {"linearizable": (141578, 5.5), "serializable": (185758, 2.2)}
PUBLISHED_SOURCE = "etcd performance docs, etcd 3.2 on GCE, 3 × 8 vCPU"
# The docs give the averages to one decimal: 0.7 ms is anything in [0.65, 0.75).
PUBLISHED_ROUNDING_MS = 0.05

COURSE_REPORT_QUOTE = (
    "linearizable: \"Possui maior latência, pois exige comunicação com o líder e validação de "
    "quorum\" (higher latency: it needs the leader and a quorum check); serializable: "
    "\"Apresenta menor latência, pois a leitura é feita do estado local do nó […] Pode, no "
    "entanto, retornar dados desatualizados\" (lower latency, read from the node's local "
    "state, but it may return stale data)"
)

# What the question asks ("Read latency: linearizable vs serializable", 1–32
# clients), with the full run's parameters: a quick run reads less per cell.
ASKED = (
    Asked("concurrency", "1,8,32", "Concurrent clients per cell"),
    Asked("reads", 5000, "Reads per cell (full run)", fmt_count),
    Asked("warmup", 200, "Warm-up reads per cell (full run)", fmt_count),
    Asked("harness_reads", 4000, "Reads of the harness comparison (full run)", fmt_count),
    Asked("harness_blocks", 40, "Blocks of the harness comparison (full run)", fmt_count),
    Asked("staleness_rates", "100,500,max", "Write rates of the staleness measurement"),
    Asked("staleness_s", 24.0, "Time under load per write rate (full run)", fmt_seconds),
    Asked("staleness_rounds", 4, "Rounds the write rates take turns in (full run)",
          fmt_count),
)


def parse_rates(text: str) -> list[int | None]:
    """``"100,500,max"`` → [100, 500, None] (None: as fast as the writers go)."""
    if not re.fullmatch(RATES_PATTERN, str(text).replace(" ", "")):
        raise ValueError(f"write rates must be like 100,500,max, got {text!r}")
    return [None if part == "max" else int(part) for part in str(text).replace(" ", "").split(",")]


# -- summary ---------------------------------------------------------------------------------

def cell_summary(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Percentiles (ms), mean, throughput (reads/s) and error counts of one cell, and the
    median with its exact 95 % interval (``median``)."""
    values_ms = [v / 1000.0 for v in cell["latencies_us"]]
    ok = len(values_ms)
    summary: dict[str, Any] = {
        "member": cell.get("member"),
        "reads": ok,
        "errors": sum(cell["errors"].values()),
        "unknown": cell["errors"].get("unknown", 0),
        "throughput_rps": ok / cell["elapsed_s"] if cell["elapsed_s"] > 0 else None,
        "median": stats.median_stats(values_ms),
    }
    if not values_ms:
        return {**summary, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None,
                "mean_ms": None, "mean_ci_low_ms": None, "mean_ci_high_ms": None}
    s = stats.summarize(values_ms)
    return {**summary, "p50_ms": s["median"], "p90_ms": s["p90"], "p99_ms": s["p99"],
            "max_ms": s["max"], "mean_ms": s["mean"], "mean_ci_low_ms": s["mean_ci_low"],
            "mean_ci_high_ms": s["mean_ci_high"]}


def harness_summary(harness_samples: Mapping[str, Any]) -> dict[str, Any]:
    """The etcd3 client against the bare stub: medians, and their ratio paired by block.

    ``ratio`` is the median over blocks of (etcd3 median ÷ bare median) of the two
    neighbouring blocks, so that a machine that gets busier or quieter during the run
    moves both sides of each pair alike (``ratio_median`` adds its exact interval).
    ``cpu_*`` is the client process's CPU time per read, when it was recorded.
    """
    bare, client = harness_samples["bare"], harness_samples["etcd3"]
    per_block = harness_samples.get("reads_per_block") or len(bare)
    ratios = []
    for start in range(0, min(len(bare), len(client)), per_block):
        bare_block = stats.percentile(bare[start:start + per_block], 50)
        client_block = stats.percentile(client[start:start + per_block], 50)
        if bare_block > 0:
            ratios.append(client_block / bare_block)
    summary: dict[str, Any] = {
        "member": harness_samples.get("member"),
        "reads": len(bare) + len(client),
        "blocks": harness_samples.get("blocks"),
        "bare_p50_ms": stats.percentile(bare, 50) / 1000.0,
        "etcd3_p50_ms": stats.percentile(client, 50) / 1000.0,
        "ratio": stats.median_or_none(ratios),
        "ratio_blocks": len(ratios),
        "ratio_median": stats.median_stats(ratios),
    }
    summary["etcd3_extra_ms"] = summary["etcd3_p50_ms"] - summary["bare_p50_ms"]
    cpu = harness_samples.get("cpu_us_per_read") or {}
    if cpu.get("bare") and cpu.get("etcd3"):
        summary["cpu_bare_us"] = stats.percentile(cpu["bare"], 50)
        summary["cpu_etcd3_us"] = stats.percentile(cpu["etcd3"], 50)
        summary["cpu_ratio"] = (summary["cpu_etcd3_us"] / summary["cpu_bare_us"]
                                if summary["cpu_bare_us"] > 0 else None)
    return summary


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Per cell ``c<N>.<target>.<consistency>``; linearizable/serializable ratios; harness;
    ``levels`` (the numbers of clients measured) and the leader before and after."""
    summary: dict[str, Any] = {}
    levels: set[int] = set()
    for cell in samples.get("cells") or []:
        levels.add(cell["concurrency"])
        level = summary.setdefault(f"c{cell['concurrency']}", {})
        level.setdefault(cell["target"], {})[cell["consistency"]] = cell_summary(cell)
    for n in levels:
        for target in summary[f"c{n}"].values():
            lin, ser = target.get("linearizable"), target.get("serializable")
            if lin and ser and lin["p50_ms"] and ser["p50_ms"]:
                target["linearizable_over_serializable_p50"] = lin["p50_ms"] / ser["p50_ms"]
    summary["levels"] = sorted(levels)
    harness_samples = samples.get("harness") or {}
    if harness_samples.get("bare") and harness_samples.get("etcd3"):
        summary["harness"] = harness_summary(harness_samples)
        summary["harness_overhead_ratio"] = summary["harness"]["ratio"]
    summary["leader_before"] = samples.get("leader_before")
    summary["leader_after"] = samples.get("leader_after")
    summary["leader_changed"] = samples.get("leader_before") != samples.get("leader_after")
    if (samples.get("staleness") or {}).get("segments"):
        summary["staleness"] = staleness_summary(samples["staleness"],
                                                 samples.get("histories") or {})
    return summary


# -- staleness under load ---------------------------------------------------------------------

def _suffix(values: Sequence[float], pick: Any) -> list[float]:
    """``pick`` (min or max) of ``values[k:]`` for every k."""
    out = list(values)
    for k in range(len(out) - 2, -1, -1):
        out[k] = pick(out[k], out[k + 1])
    return out


def _prefix(values: Sequence[float], pick: Any) -> list[float]:
    """``pick`` (min or max) of ``values[:k + 1]`` for every k."""
    out = list(values)
    for k in range(1, len(out)):
        out[k] = pick(out[k], out[k - 1])
    return out


class _LeaderClock:
    """What one segment's writes and leader reads tell about the leader's applied revision
    at any time (µs from the segment's start): the evidence behind :func:`read_bounds`."""

    def __init__(self, segment: Mapping[str, Any]) -> None:
        self.base = segment.get("base_revision") or 0
        self.final = segment.get("final_revision")
        writes = [(w[0], w[1], w[2]) for w in segment["writes"] if w[2] is not None]
        probes = [(p[0], p[1], p[2]) for p in segment.get("probes") or []]
        # Applied by then: (time, revision) of each acknowledgement and each leader answer.
        known = sorted([(c, r) for _, c, r in writes] + [(c, r) for _, c, r in probes])
        self.known_at = [t for t, _ in known]
        self.known_max = _prefix([r for _, r in known], max)
        # Not yet there: a write's revision did not exist when it was sent, nor did any
        # revision above a leader answer when that read was sent.
        absent = sorted([(i, r) for i, _, r in writes] + [(i, r + 1) for i, _, r in probes])
        self.absent_at = [t for t, _ in absent]
        self.absent_min = _suffix([r for _, r in absent], min)
        # When a revision above v was first known applied, and last known not yet applied.
        applied = sorted([(r, c) for _, c, r in writes] + [(r, c) for _, c, r in probes])
        self.applied_rev = [r for r, _ in applied]
        self.applied_first = _suffix([t for _, t in applied], min)
        # (The segment starts, time 0, before the base revision is read.)
        before = sorted([(r, i) for i, _, r in writes] + [(r + 1, i) for i, _, r in probes]
                        + [(self.base + 1, 0)])
        self.before_rev = [r for r, _ in before]
        self.before_last = _prefix([t for _, t in before], max)

    def at_least(self, t: float) -> int:
        """The highest revision known applied strictly before ``t``."""
        k = bisect.bisect_left(self.known_at, t)
        return max(self.base, self.known_max[k - 1]) if k else self.base

    def at_most(self, t: float) -> int | None:
        """The highest revision the leader can have had at ``t`` (None: unbounded)."""
        k = bisect.bisect_right(self.absent_at, t)
        bound = self.absent_min[k] - 1 if k < len(self.absent_min) else None
        if self.final is not None:
            bound = self.final if bound is None else min(bound, self.final)
        return bound

    def newer_since(self, seen: int) -> float | None:
        """The earliest time a revision above ``seen`` was known applied (None: never)."""
        k = bisect.bisect_right(self.applied_rev, seen)
        return self.applied_first[k] if k < len(self.applied_rev) else None

    def newer_not_before(self, seen: int) -> float | None:
        """The last time revision ``seen`` + 1 is known not to have been applied yet: a
        write of a revision up to it being sent, or a leader read below it being sent (None:
        no such evidence). Writes of unknown outcome change nothing here: the evidence is
        about what existed, whoever made it."""
        k = bisect.bisect_right(self.before_rev, seen + 1)
        return self.before_last[k - 1] if k else None


def read_bounds(segment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every successful read of one segment with its bounds (see the module docstring):
    ``consistency``, ``latency_ms``, ``revisions`` (low, high) and ``ms`` (low, high) behind
    the leader's applied state; ``ahead`` when it saw a revision the leader had not applied
    yet when last read (a follower may apply a committed entry before the leader does)."""
    clock = _LeaderClock(segment)
    rows = []
    for block in segment["blocks"]:
        for sent, answered, seen, _mod in block["reads"]:
            at_least, at_most = clock.at_least(sent), clock.at_most(answered)
            rev_low = max(0, at_least - seen)
            rev_high = None if at_most is None else max(rev_low, at_most - seen)
            since = clock.newer_since(seen)
            ms_low = 0.0 if since is None else max(0.0, (sent - since) / 1000.0)
            if rev_high == 0:
                ms_high = 0.0  # nothing newer can have existed before the answer
            else:
                not_before = clock.newer_not_before(seen)
                ms_high = None if not_before is None else max(
                    ms_low, (answered - not_before) / 1000.0)
            rows.append({"consistency": block["consistency"],
                         "latency_ms": (answered - sent) / 1000.0,
                         "revisions": (rev_low, rev_high), "ms": (ms_low, ms_high),
                         "ahead": at_most is not None and seen > at_most})
    return rows


def _spread(values: Sequence[float]) -> dict[str, Any]:
    """The median with its exact interval, p95 and max of one bound's values."""
    if not values:
        return {"median": stats.median_stats([]), "p95": None, "max": None}
    return {"median": stats.median_stats(values), "p95": stats.percentile(values, 95),
            "max": max(values)}


def _reads_summary(rows: Sequence[Mapping[str, Any]], errors: int) -> dict[str, Any]:
    """One rate × consistency: counts, stale reads (certainly, possibly) and both bounds'
    spreads in revisions and ms, and the read latency."""
    high_revs = [r["revisions"][1] for r in rows if r["revisions"][1] is not None]
    latencies = [r["latency_ms"] for r in rows]
    result: dict[str, Any] = {
        "reads": len(rows), "errors": errors,
        "certainly_stale": sum(1 for r in rows if r["revisions"][0] > 0),
        "possibly_stale": sum(1 for r in rows if (r["revisions"][1] or 0) > 0),
        "unbounded": sum(1 for r in rows if r["revisions"][1] is None or r["ms"][1] is None),
        "ahead": sum(1 for r in rows if r["ahead"]),
        "revisions_low": _spread([r["revisions"][0] for r in rows]),
        "revisions_high": _spread(high_revs),
        "ms_low": _spread([r["ms"][0] for r in rows]),
        "ms_high": _spread([r["ms"][1] for r in rows if r["ms"][1] is not None]),
        "width_ms": _spread([r["ms"][1] - r["ms"][0] for r in rows if r["ms"][1] is not None]),
    }
    if latencies:
        s = stats.summarize(latencies)
        result.update(latency_p50_ms=s["median"], latency_mean_ms=s["mean"],
                      latency_mean_ci_ms=(s["mean_ci_low"], s["mean_ci_high"]))
    return result


def _writes_summary(segments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The writes of one rate: acknowledged, errors, the achieved rate over the segments'
    write windows (first send to last acknowledgement), the median write latency, and the
    revisions the run's own acknowledged writes do not account for."""
    acked, window_s, latencies, errors, unaccounted = 0, 0.0, [], {}, 0
    for segment in segments:
        ok = [w for w in segment["writes"] if w[2] is not None]
        acked += len(ok)
        if ok:
            window_s += (max(w[1] for w in ok) - min(w[0] for w in segment["writes"])) / 1e6
        latencies += [(w[1] - w[0]) / 1000.0 for w in ok]
        for outcome, count in (segment.get("write_errors") or {}).items():
            errors[outcome] = errors.get(outcome, 0) + count
        if segment.get("final_revision") is not None and segment.get("base_revision"):
            unaccounted += segment["final_revision"] - segment["base_revision"] - len(ok)
    return {"acknowledged": acked, "window_s": window_s,
            "rate": acked / window_s if window_s > 0 else None,
            "latency_p50_ms": stats.median_or_none(latencies),
            "errors": errors, "unaccounted_revisions": unaccounted}


def staleness_summary(sink: Mapping[str, Any],
                      histories: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per write rate (in the order asked): the writes, and per consistency the reads'
    staleness (:func:`_reads_summary`); the checked histories of the segments
    (``histories``: the result's verdicts by label), in segment order."""
    rates: list[str] = []
    for segment in sink["segments"]:
        if str(segment["rate"]) not in rates:
            rates.append(str(segment["rate"]))
    cells: dict[str, Any] = {}
    for rate in rates:
        segments = [s for s in sink["segments"] if str(s["rate"]) == rate]
        rows = [row for s in segments for row in read_bounds(s)]
        cell_: dict[str, Any] = {"target": None if rate == "max" else int(rate),
                                 "segments": len(segments), "writes": _writes_summary(segments)}
        for consistency in CONSISTENCIES:
            errors = sum(sum(b["errors"].values()) for s in segments for b in s["blocks"]
                         if b["consistency"] == consistency)
            cell_[consistency] = _reads_summary(
                [r for r in rows if r["consistency"] == consistency], errors)
        cells[rate] = cell_
    return {"rates": rates, "cells": cells, "heartbeat_ms": sink.get("heartbeat_ms"),
            "leader": sink.get("leader"), "follower": sink.get("follower"),
            "leader_after": sink.get("leader_after"),
            "histories": [(histories or {})[s["history"]] for s in sink["segments"]
                          if s.get("history") in (histories or {})],
            "readers": max((s.get("readers") or 1 for s in sink["segments"]), default=1),
            "writers": max((s.get("writers") or 1 for s in sink["segments"]), default=1)}


def cell(summary: Mapping[str, Any], concurrency: int, target: str,
         consistency: str) -> Mapping[str, Any] | None:
    """One cell's summary, or None when the run has no such cell."""
    return ((summary.get(f"c{concurrency}") or {}).get(target) or {}).get(consistency)


# -- findings --------------------------------------------------------------------------------

def _clients(n: int) -> str:
    return f"{n} client" if n == 1 else f"{n} clients"


def _where(n: int, target: str, member: str | None) -> str:
    return f"{_clients(n)}, {target}" + (f" ({member})" if member else "")


def compare_cell(lin: Mapping[str, Any] | None, ser: Mapping[str, Any] | None) -> str | None:
    """"slower", "faster" or "overlap" (the linearizable median's 95 % interval against the
    serializable one's), or None when one interval is missing (too few reads)."""
    if not lin or not ser:
        return None
    a, b = lin["median"], ser["median"]
    if a.get("low") is None or b.get("low") is None:
        return None
    if a["low"] > b["high"]:
        return "slower"
    if a["high"] < b["low"]:
        return "faster"
    return "overlap"


def _ratio(lin: Mapping[str, Any] | None, ser: Mapping[str, Any] | None) -> float | None:
    if not lin or not ser or not lin["p50_ms"] or not ser["p50_ms"]:
        return None
    return lin["p50_ms"] / ser["p50_ms"]


def _cell_findings(summary: Mapping[str, Any]) -> list[Finding]:
    """Per number of clients and target: was the linearizable read measurably slower?"""
    found = []
    for n in summary["levels"]:
        for target in TARGETS:
            lin, ser = cell(summary, n, target, "linearizable"), cell(summary, n, target,
                                                                       "serializable")
            where = _where(n, target, (lin or ser or {}).get("member"))
            outcome = compare_cell(lin, ser)
            ratio = _ratio(lin, ser)
            figures = {}
            if lin and ser:
                figures = {"linearizable median": fmt_median_stats(lin["median"], fmt_ms),
                           "serializable median": fmt_median_stats(ser["median"], fmt_ms)}
            missing = ("this run has no such pair of cells" if not (lin and ser) else
                       "too few reads for an interval of the median")
            not_slower = ("the linearizable median was below the serializable one, their 95 % "
                          "intervals apart" if outcome == "faster" else
                          "the two medians' 95 % intervals overlap")
            found.append(claim(
                f"slower.c{n}.{target}", None if outcome is None else outcome == "slower",
                f"{where}: a linearizable read was slower, {fmt_factor(ratio)} the serializable "
                "median (95 % intervals apart).",
                f"{where}: a linearizable read was not measurably slower ({fmt_factor(ratio)}; "
                f"{not_slower}).",
                f"{where}: cannot compare, {missing}.",
                **figures))
    return found


def _cell_name(finding: Finding) -> str:
    """"32 clients on the follower" from the id ``slower.c32.follower``."""
    _, level, target = finding.id.split(".")
    return f"{_clients(int(level[1:]))} on the {target}"


def _outcomes(summary: Mapping[str, Any]) -> list[str | None]:
    """:func:`compare_cell` of every (clients, target) pair, in the order of the findings."""
    return [compare_cell(cell(summary, n, t, "linearizable"), cell(summary, n, t, "serializable"))
            for n in summary["levels"] for t in TARGETS]


def _direction(summary: Mapping[str, Any], cells: Sequence[Finding]) -> Finding:
    """The answer: in how many cells the linearizable read was slower, and by how much with
    the fewest clients."""
    levels = summary["levels"]
    if not levels:
        return untestable("direction", "The run recorded no read cells.")
    lowest = levels[0]
    ratios = {t: _ratio(cell(summary, lowest, t, "linearizable"),
                        cell(summary, lowest, t, "serializable")) for t in TARGETS}
    at_lowest = (f"with {_clients(lowest)} its median was {fmt_factor(ratios['leader'])} the "
                 f"serializable one on the leader and {fmt_factor(ratios['follower'])} on a "
                 "follower")
    slower = [f for f in cells if f.holds]
    other = [f for f in cells if f.holds is False]
    unknown = [f for f in cells if f.holds is None]
    total = len(cells)
    names = "; ".join(_cell_name(f) for f in other + unknown)
    holds = False if other else None if unknown else True
    brief = (f"; with {_clients(lowest)} {fmt_factor(ratios['leader'])} the serializable "
             f"median on the leader, {fmt_factor(ratios['follower'])} on a follower")
    return named(claim(
        "direction", holds,
        f"A linearizable read was measurably slower than a serializable one in {total} of "
        f"{total} cells (95 % intervals of the medians apart); {at_lowest}.",
        f"A linearizable read was measurably slower than a serializable one in {len(slower)} "
        f"of {total} cells, not in {len(other)} ({names}); {at_lowest}.",
        f"A linearizable read was measurably slower in {len(slower)} of {total} cells; "
        f"{len(unknown)} had too few reads to compare ({names}); {at_lowest}.",
        cells=f"{fmt_count(len(levels))} numbers of clients × leader, follower"),
        "direction", f"Linearizable reads were measurably slower in all {total} cells{brief}.",
        f"Linearizable reads were measurably slower in {len(slower)} of {total} cells{brief}.",
        f"Linearizable reads were measurably slower in {len(slower)} of {total} cells, "
        f"{len(unknown)} too few to compare{brief}.")


def _follower_hop(summary: Mapping[str, Any]) -> Finding:
    """Did the follower's extra round to the leader (for the read index) show?"""
    levels = summary["levels"]
    unknown = "The run has no one-client cells on both the leader and a follower."
    extras = {}
    for target in TARGETS:
        lin = cell(summary, levels[0], target, "linearizable") if levels else None
        ser = cell(summary, levels[0], target, "serializable") if levels else None
        if not lin or not ser or lin["median"].get("low") is None \
                or ser["median"].get("low") is None:
            return untestable("follower_hop", unknown if not (lin and ser) else
                              "Too few reads for intervals of the medians.")
        a, b = lin["median"], ser["median"]
        # A conservative interval of the difference of two medians from their intervals.
        extras[target] = (a["median"] - b["median"], a["low"] - b["high"], a["high"] - b["low"])
    lead, foll = extras["leader"], extras["follower"]
    n = levels[0]
    figures = {f"extra on the {t}": f"{fmt_ms(v[0])} ({fmt_ms(v[1])} – {fmt_ms(v[2])})"
               for t, v in extras.items()}
    return claim(
        "follower_hop", foll[1] > lead[2],
        f"With {_clients(n)} a linearizable read cost more extra time over a serializable one "
        f"on the follower than on the leader ({fmt_ms(foll[0])} against {fmt_ms(lead[0])}): "
        "the follower's round to the leader for the read index showed.",
        f"With {_clients(n)} the extra time of a linearizable read over a serializable one was "
        f"not measurably larger on the follower ({fmt_ms(foll[0])}) than on the leader "
        f"({fmt_ms(lead[0])}): the follower's round to the leader for the read index did not "
        "show on this network.",
        **figures, **{"intervals": "from the two medians' 95 % intervals, conservative"})


def _saturation(summary: Mapping[str, Any]) -> Finding:
    """Between the two highest numbers of clients, did throughput still grow?"""
    levels = summary["levels"]
    yes = "Throughput stopped growing with more clients."
    no = "Throughput still grew with more clients."
    if len(levels) < 2:
        return claim("saturation", None, yes, no, "The run measured one number of clients only.")
    below, top = levels[-2], levels[-1]
    gains = []
    for target in TARGETS:
        for consistency in CONSISTENCIES:
            low, high = cell(summary, below, target, consistency), cell(summary, top, target,
                                                                         consistency)
            if low and high and low["throughput_rps"] and high["throughput_rps"]:
                gains.append(high["throughput_rps"] / low["throughput_rps"])
    if not gains:
        return claim("saturation", None, yes, no, "No cell recorded a throughput.")
    best, more = max(gains), top / below
    return claim(
        "saturation", best < SATURATION_SHARE * more,
        f"From {below} to {top} clients ({fmt_factor(more)} more) no cell's throughput grew by "
        f"more than {fmt_factor(best)}, less than half as much: it had stopped following the "
        "clients on this machine, whose CPUs the clients share with the members.",
        f"From {below} to {top} clients ({fmt_factor(more)} more) throughput grew by up to "
        f"{fmt_factor(best)}: at {below} clients the machine was not yet saturated.",
        **{f"best {consistency}, {top} clients": fmt_rate(max(
            (cell(summary, top, t, consistency) or {}).get("throughput_rps") or 0.0
            for t in TARGETS), "reads/s") for consistency in CONSISTENCIES},
        **{"largest throughput growth": f"{fmt_factor(best)} for {fmt_factor(more)} the "
                                        "clients"})


def _harness(summary: Mapping[str, Any]) -> Finding:
    h = summary.get("harness")
    yes = f"The etcd3 client added at most {fmt_percent(HARNESS_TARGET - 1, 0)}."
    no = f"The etcd3 client was not shown to add at most {fmt_percent(HARNESS_TARGET - 1, 0)}."
    if not h or h["ratio"] is None:
        return claim("harness", None, yes, no, "The run has no harness comparison.")
    m = h["ratio_median"]
    upper = m["high"] if m.get("high") is not None else max(m.get("values") or [h["ratio"]])
    figures = {"etcd3 ÷ bare, paired blocks": fmt_median_stats(m, lambda v: f"{v:.2f}"),
               "bare stub median": fmt_ms(h["bare_p50_ms"]),
               "etcd3 client median": fmt_ms(h["etcd3_p50_ms"])}
    return claim(
        "harness", upper <= HARNESS_TARGET,
        f"The cells' bare gRPC stub stands for the etcd3 client: the same serializable loop "
        f"through etcd3 took {h['ratio']:.2f} times as long, within the {HARNESS_TARGET:.2f} "
        "target at the top of its 95 % interval.",
        f"The same serializable loop through the etcd3 client took {h['ratio']:.2f} times as "
        f"long as through the cells' bare stub; the top of its 95 % interval is above the "
        f"{HARNESS_TARGET:.2f} target, so the etcd3 client would read slower than the cells.",
        **figures)


def _client_cpu(summary: Mapping[str, Any]) -> Finding:
    h = summary.get("harness") or {}
    levels = summary["levels"]
    ser = cell(summary, levels[0], "leader", "serializable") if levels else None
    yes = "The client's own CPU time is a large part of a read's latency."
    no = "The client's own CPU time is a small part of a read's latency."
    if h.get("cpu_bare_us") is None or not ser or not ser["p50_ms"]:
        return claim("client_cpu", None, yes, no,
                     "The run recorded no client CPU time or no one-client serializable cell "
                     "on the leader.")
    cpu_ms = h["cpu_bare_us"] / 1000.0
    share = cpu_ms / ser["p50_ms"]
    where = (f"the Python client spent {fmt_ms(cpu_ms)} of CPU per read through the "
             f"bare stub, {fmt_percent(share)} of the serializable median on the leader with "
             f"{_clients(levels[0])}")
    return claim(
        "client_cpu", share > CPU_SHARE_LARGE,
        f"The client is a large part of the smallest latencies: {where}, more than a quarter.",
        f"The client is a small part of the smallest latencies: {where}, at most a quarter.",
        **{"CPU per read, bare stub": fmt_ms(cpu_ms),
           "CPU per read, etcd3 client": fmt_ms(h["cpu_etcd3_us"] / 1000.0),
           f"serializable median, leader, {_clients(levels[0])}": fmt_ms(ser["p50_ms"])})


def _errors(summary: Mapping[str, Any]) -> Finding:
    cells = [cell(summary, n, t, c) for n in summary["levels"] for t in TARGETS
             for c in CONSISTENCIES]
    cells = [c for c in cells if c]
    failed = sum(c["errors"] for c in cells)
    total = failed + sum(c["reads"] for c in cells)
    if not total:
        return untestable("errors", "The run recorded no reads.")
    return claim(
        "errors", failed == 0,
        f"No read failed or timed out: {fmt_share(0, total)}.",
        f"{fmt_share(failed, total)} reads failed or timed out; they count as errors, not "
        "as latencies.",
        unknown=fmt_count(sum(c["unknown"] for c in cells)))


def _leader(summary: Mapping[str, Any]) -> Finding:
    before, after = summary.get("leader_before"), summary.get("leader_after")
    if before is None or after is None:
        return untestable("leader_stable",
                          "The run did not record the leader before and after.")
    return claim(
        "leader_stable", before == after,
        f"The leader was {before} before the first cell and after the last.",
        f"The leader changed during the run ({before} before the cells, {after} after): cells "
        "measured before and after the change name different members as \"leader\".")


def _staleness(cited: Mapping[str, Any] | None, under_load: bool = False) -> list[Finding]:
    """How stale reads can be, cited from Q3's register workload (``cited``: the partition
    run's checked histories; None when this run has none): its serializable reads on a
    cut-off member, and its linearizable reads. This experiment reads one key nothing writes
    while it reads, so none of its own reads could be stale."""
    verdicts = {series: register_verdict(cited or {}, "leader-cut", series)
                for series in ("serializable", "linearizable")}
    why_absent = ("This run has no completed Q3 (`partition`) result to cite, and this "
                  "experiment's reads "
                  "are of one key nothing writes while they run, so none could be stale.")
    if under_load:
        why_absent = ("This run has no completed Q3 (`partition`) result to cite for a cut-off "
                      "member; staleness under a write load, without a fault, is measured "
                      "below (`load-staleness-…`).")
    found = []
    for series, (yes, no) in {
        "serializable": (
            "A serializable read returned a value older than a write that had completed: in "
            "Q3's register workload with the leader cut off, the history with serializable "
            "reads is not linearizable.",
            "No serializable read was seen stale: in Q3's register workload with the leader "
            "cut off, the history with serializable reads is linearizable."),
        "linearizable": (
            "No linearizable read was stale: in Q3's register workload with the leader cut "
            "off, the history with linearizable reads is linearizable.",
            "A linearizable read was stale: in Q3's register workload with the leader cut "
            "off, the history with linearizable reads is not linearizable."),
    }.items():
        verdict = verdicts[series]
        figures = {}
        if verdict:
            figures = {"history": f"`{verdict.get('file')}`",
                       "operations": f"{verdict.get('operations', 0):,}"}
        stuck = ((verdict.get("counterexample") or {}).get("stuck") or [])[:1]
        if stuck:
            figures["counterexample"] = stuck[0]
        holds = {"not-linearizable": True, "linearizable": False}.get(verdict.get("verdict"))
        if series == "linearizable" and holds is not None:
            holds = not holds
        why = why_absent if cited is None else (
            f"Q3's register workload has no checked {series} history in this run (not "
            "recorded, or the checker's budget ran out).")
        found.append(claim(f"staleness-{series}", holds, yes, no,
                           why if holds is None else "", **figures))
    return found


def fmt_revisions(count: float | None) -> str:
    """A number of revisions behind: 0 → "0", 1.5 (a median) → "1.5"."""
    return MISSING if count is None else f"{count:g}"


def fmt_bounds(low: float | None, high: float | None, formatter: Any = fmt_revisions) -> str:
    """A quantity known to lie between two bounds: "1 – 3", or one value when they meet."""
    if low is None and high is None:
        return MISSING
    if high is None:
        return f"≥ {formatter(low)}"
    if low == high:
        return formatter(low)
    return f"{formatter(low)} – {formatter(high)}"


def _rate_name(rate: str) -> str:
    return "the writers' top rate" if rate == "max" else f"{rate} writes/s"


def _load(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The staleness summary when this run measured it with reads (else None)."""
    load = summary.get("staleness")
    if not load or not any(load["cells"][r][c]["reads"] for r in load["rates"]
                           for c in CONSISTENCIES):
        return None
    return load


def _pooled(load: Mapping[str, Any], consistency: str, key: str) -> float | None:
    """The largest of one bound over every rate (``key``: ms_high, revisions_low, …)."""
    values = [load["cells"][r][consistency][key]["max"] for r in load["rates"]]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _load_serializable(load: Mapping[str, Any]) -> Finding:
    """Was any serializable read on the follower certainly stale under the write load?"""
    cells = [load["cells"][r]["serializable"] for r in load["rates"]]
    stale, total = sum(c["certainly_stale"] for c in cells), sum(c["reads"] for c in cells)
    share = fmt_share(stale, total)
    worst = (f"at least {fmt_revisions(_pooled(load, 'serializable', 'revisions_low'))} "
             f"revisions and {fmt_ms(_pooled(load, 'serializable', 'ms_low'))} behind, at "
             f"most {fmt_revisions(_pooled(load, 'serializable', 'revisions_high'))} and "
             f"{fmt_ms(_pooled(load, 'serializable', 'ms_high'))}")
    figures = {"certainly stale, every rate": share,
               "stalest read behind the leader": worst}
    for rate in load["rates"]:
        c = load["cells"][rate]["serializable"]
        if c["reads"]:
            figures[f"{_rate_name(rate)}, certainly stale"] = fmt_share(c["certainly_stale"],
                                                                        c["reads"])
            figures[f"{_rate_name(rate)}, median time behind, at most"] = fmt_median_stats(
                c["ms_high"]["median"], fmt_ms)
            figures[f"{_rate_name(rate)}, p95 time behind"] = fmt_bounds(
                c["ms_low"]["p95"], c["ms_high"]["p95"], fmt_ms)
    if not total:
        return untestable("load-staleness-serializable",
                          "The staleness measurement recorded no serializable read.")
    return claim(
        "load-staleness-serializable", stale > 0,
        f"Under a steady write load a serializable read on the follower ({load['follower']}) "
        f"can be stale: {fmt_count(stale)} of {fmt_count(total)} returned a revision older "
        "than one the leader had already applied before the read was sent.",
        f"No serializable read on the follower ({load['follower']}) was certainly stale under "
        f"the write load: {fmt_count(stale)} of {fmt_count(total)} returned a revision older "
        "than one the leader had already applied before the read was sent.",
        **figures)


def _load_bounded(load: Mapping[str, Any]) -> Finding:
    """Did every serializable read stay within one heartbeat interval of the leader?"""
    heartbeat = load.get("heartbeat_ms")
    yes = "Every serializable read was within one heartbeat interval of the leader."
    no = "A serializable read was more than one heartbeat interval behind the leader."
    reads = sum(load["cells"][r]["serializable"]["reads"] for r in load["rates"])
    if not heartbeat or not reads:
        return claim("load-staleness-serializable-bounded", None, yes, no,
                     "The run recorded no heartbeat interval or no serializable read.")
    low, high = _pooled(load, "serializable", "ms_low"), _pooled(load, "serializable",
                                                                 "ms_high")
    figures = {"heartbeat interval": fmt_ms(heartbeat),
               "stalest serializable read": f"{fmt_bounds(low, high, fmt_ms)} behind",
               "reads": fmt_count(reads)}
    holds = (True if high is not None and high < heartbeat else
             False if low is not None and low >= heartbeat else None)
    return claim(
        "load-staleness-serializable-bounded", holds,
        f"At every rate, every serializable read on the follower was less than one heartbeat "
        f"interval ({fmt_ms(heartbeat)}) behind the leader's state: the stalest at most "
        f"{fmt_ms(high)}.",
        f"A serializable read on the follower was at least {fmt_ms(low)} behind the leader's "
        f"state, more than one heartbeat interval ({fmt_ms(heartbeat)}).",
        f"Whether every serializable read stayed within one heartbeat interval "
        f"({fmt_ms(heartbeat)}) cannot be told: the stalest was between {fmt_ms(low)} and "
        f"{fmt_ms(high)} behind.",
        **figures)


def _history_phrase(histories: Sequence[Mapping[str, Any]]
                    ) -> tuple[str, bool | None, dict[str, str]]:
    """How the checked histories of the writes and linearizable reads read (one per
    segment), their verdict (False if any is not linearizable, True if all are) and the
    figures behind it (the histories' operations, where the checker got stuck)."""
    if not histories:
        return "the histories of the writes and linearizable reads were not checked", None, {}
    operations = sum(h.get("operations", 0) for h in histories)
    verdicts = [h.get("verdict") for h in histories]
    figures = {"histories checked": f"{len(histories)} histories, {operations:,} operations"}
    counted = f"{len(histories)} histories"
    bad = [h for h in histories if h.get("verdict") == "not-linearizable"]
    if bad:
        stuck = "; ".join(((bad[0].get("counterexample") or {}).get("stuck") or [])[:2])
        figures["stuck at"] = f"`{bad[0].get('file')}`: {stuck}"
        return f"the checker finds {len(bad)} of the {counted} NOT linearizable", False, figures
    if all(v == "linearizable" for v in verdicts):
        return f"the checker finds all {counted} linearizable", True, figures
    done = verdicts.count("linearizable")
    return (f"the checker finds {done} of the {counted} linearizable and gave no verdict on "
            "the others (budget spent)"), None, figures


def _load_linearizable(load: Mapping[str, Any]) -> Finding:
    """No linearizable read was stale: none saw less than an already acknowledged write, and
    the history checker agrees."""
    cells = [load["cells"][r]["linearizable"] for r in load["rates"]]
    stale, total = sum(c["certainly_stale"] for c in cells), sum(c["reads"] for c in cells)
    phrase, verdict, checked = _history_phrase(load.get("histories") or [])
    if not total:
        return untestable("load-staleness-linearizable-never",
                          "The staleness measurement recorded no linearizable read.")
    figures = {"certainly stale": fmt_share(stale, total),
               "possibly stale (within the bounds' resolution)": fmt_share(
                   sum(c["possibly_stale"] for c in cells), total)}
    for rate in load["rates"]:
        c = load["cells"][rate]["linearizable"]
        figures[f"{_rate_name(rate)}"] = fmt_share(c["certainly_stale"], c["reads"])
    figures.update(checked)
    return claim(
        "load-staleness-linearizable-never", stale == 0 and verdict is not False,
        f"No linearizable read on the follower was stale under load: {fmt_count(stale)} of "
        f"{fmt_count(total)} returned a revision older than one the leader had applied "
        f"before the read was sent; {phrase}.",
        f"A linearizable read on the follower was stale under load: {fmt_count(stale)} of "
        f"{fmt_count(total)} returned a revision older than one the leader had applied "
        f"before the read was sent; {phrase}.",
        **figures)


def _load_grows(load: Mapping[str, Any]) -> Finding:
    """Did the share of certainly stale serializable reads grow from the slowest write rate
    reached to the fastest (exact 95 % intervals apart)?"""
    yes = "More serializable reads were stale at the highest write rate."
    no = "Serializable reads were not measurably more often stale at the highest rate."
    # By the rate the writers reached: an unpaced rate may fall below a paced one.
    order = sorted(load["rates"], key=lambda r: load["cells"][r]["writes"]["rate"] or 0.0)
    cells = [load["cells"][r]["serializable"] for r in order]
    if len(order) < 2 or not cells[0]["reads"] or not cells[-1]["reads"]:
        return claim("load-staleness-grows-with-rate", None, yes, no,
                     "The run measured serializable reads at fewer than two write rates.")
    slow, fast = cells[0], cells[-1]
    slow_ci = stats.binomial_interval(slow["certainly_stale"], slow["reads"])
    fast_ci = stats.binomial_interval(fast["certainly_stale"], fast["reads"])
    names = tuple(f"{_rate_name(r)} ({fmt_rate(load['cells'][r]['writes']['rate'], 'writes/s')}"
                  " reached)" for r in (order[0], order[-1]))
    rates = tuple(_rate_name(r) for r in (order[0], order[-1]))
    figures = {names[0]: fmt_share(slow["certainly_stale"], slow["reads"]),
               names[1]: fmt_share(fast["certainly_stale"], fast["reads"]),
               f"revisions behind at {names[1]}, upper bound": fmt_median_stats(
                   fast["revisions_high"]["median"], fmt_revisions)}
    return claim(
        "load-staleness-grows-with-rate", fast_ci[0] > slow_ci[1],
        f"The more writes per second, the more often a serializable read was stale: at "
        f"{rates[1]} a larger share of reads was certainly stale than at {rates[0]} (exact "
        "95 % intervals apart).",
        f"A serializable read was not measurably more often stale at {rates[1]} than at "
        f"{rates[0]} (the exact 95 % intervals of the two shares overlap, or the faster rate's "
        "is lower).",
        **figures)


def _load_rate(load: Mapping[str, Any]) -> Finding:
    """Did the writers sustain every paced rate (at least RATE_SUSTAINED_SHARE of it)?"""
    paced = [r for r in load["rates"] if r != "max"]
    yes = "The writers sustained every paced rate."
    no = "The writers fell short of a paced rate."
    figures = {_rate_name(r): fmt_rate(load["cells"][r]["writes"]["rate"], "writes/s")
               + " acknowledged" for r in load["rates"]}
    if not paced:
        return claim("load-write-rate", None, yes, no, "No write rate was paced in this run.",
                     **figures)
    short = [r for r in paced if (load["cells"][r]["writes"]["rate"] or 0)
             < RATE_SUSTAINED_SHARE * int(r)]
    return claim(
        "load-write-rate", not short,
        f"The writers on the leader sustained every paced rate (at least "
        f"{fmt_percent(RATE_SUSTAINED_SHARE, 0)} of it acknowledged).",
        f"The writers on the leader fell short of {', '.join(_rate_name(r) for r in short)} "
        f"(less than {fmt_percent(RATE_SUSTAINED_SHARE, 0)} acknowledged): this machine did "
        "not sustain it, and the row shows the rate actually reached.",
        **figures)


def _load_published(load: Mapping[str, Any]) -> Finding:
    """The ratio of mean read latencies (linearizable ÷ serializable) on the follower under
    the lowest write rate, against the docs' one-client ratio (no write load, leader)."""
    lin_ms, ser_ms = PUBLISHED_C1["linearizable"][1], PUBLISHED_C1["serializable"][1]
    r = PUBLISHED_ROUNDING_MS
    published = (lin_ms - r) / (ser_ms + r), (lin_ms + r) / (ser_ms - r)
    yes = "Under load our ratio of mean latencies agrees with the docs' one."
    no = "Under load our ratio of mean latencies differs from the docs' one."
    rate = load["rates"][0]
    lin, ser = load["cells"][rate]["linearizable"], load["cells"][rate]["serializable"]
    figures = {"published": f"{fmt_factor(lin_ms / ser_ms)} ({published[0]:.1f}×–"
                            f"{published[1]:.1f}× given the rounding; 1 client on the leader, "
                            "no write load)"}
    if None in (*lin.get("latency_mean_ci_ms", (None,)), *ser.get("latency_mean_ci_ms",
                                                                   (None,))):
        return comparison("load-published-ratio", "published", None, yes, no,
                          "Too few reads under load for intervals of the mean latencies.",
                          **figures)
    ours = lin["latency_mean_ms"] / ser["latency_mean_ms"]
    low = lin["latency_mean_ci_ms"][0] / ser["latency_mean_ci_ms"][1]
    high = lin["latency_mean_ci_ms"][1] / ser["latency_mean_ci_ms"][0]
    figures["this run"] = (f"{fmt_ms(lin['latency_mean_ms'])} ÷ {fmt_ms(ser['latency_mean_ms'])}"
                           f" = {fmt_factor(ours)} ({low:.1f}×–{high:.1f}×), "
                           f"{load['readers']} reader(s) on the follower under "
                           f"{_rate_name(rate)}")
    agrees = low <= published[1] and published[0] <= high
    return comparison(
        "load-published-ratio", "published", agrees,
        f"Under {_rate_name(rate)} a linearizable read on the follower took "
        f"{fmt_factor(ours)} as long as a serializable one on average, within the docs' "
        "one-client ratio (measured without write load, on the leader).",
        f"Under {_rate_name(rate)} a linearizable read on the follower took "
        f"{fmt_factor(ours)} as long as a serializable one on average; the docs' one-client "
        f"ratio, measured without write load on the leader, lies "
        f"{'below' if published[1] < low else 'above'} our interval: it does not carry over "
        "to reads under writes.",
        **figures)


def load_findings(summary: Mapping[str, Any]) -> list[Finding]:
    """The staleness findings (ids ``load-…``), or none when the run did not measure it."""
    load = _load(summary)
    if load is None:
        return []
    return [_load_serializable(load), _load_bounded(load), _load_linearizable(load),
            _load_grows(load), _load_rate(load), _load_published(load)]


def published_ms(milliseconds: float) -> str:
    """A published latency as the docs print it ("0.7 ms"), no more precise than they are."""
    return f"{milliseconds:g} ms"


def _published(summary: Mapping[str, Any]) -> list[Finding]:
    levels = summary["levels"]
    lin = cell(summary, 1, "leader", "linearizable") if 1 in levels else None
    ser = cell(summary, 1, "leader", "serializable") if 1 in levels else None
    lin_ms, ser_ms = PUBLISHED_C1["linearizable"][1], PUBLISHED_C1["serializable"][1]
    r = PUBLISHED_ROUNDING_MS
    published = (lin_ms - r) / (ser_ms + r), (lin_ms + r) / (ser_ms - r)
    yes = "Our ratio of mean latencies agrees with the docs' one."
    no = "Our ratio of mean latencies differs from the docs' one."
    figures = {"published": f"{published_ms(lin_ms)} ÷ {published_ms(ser_ms)} = "
                            f"{fmt_factor(lin_ms / ser_ms)}, i.e. {published[0]:.1f}×–"
                            f"{published[1]:.1f}× given the rounding ({PUBLISHED_SOURCE})"}
    if not lin or not ser or lin["mean_ci_low_ms"] is None or ser["mean_ci_low_ms"] is None:
        ratio_finding = comparison("published_ratio", "published", None, yes, no,
                                   "The run has no one-client cells on the leader to compare "
                                   "with the docs' one-client figures.", **figures)
    else:
        ours = lin["mean_ms"] / ser["mean_ms"]
        low = lin["mean_ci_low_ms"] / ser["mean_ci_high_ms"]
        high = lin["mean_ci_high_ms"] / ser["mean_ci_low_ms"]
        figures["this run"] = (f"{fmt_ms(lin['mean_ms'])} ÷ {fmt_ms(ser['mean_ms'])} = "
                               f"{fmt_factor(ours)} ({low:.1f}×–{high:.1f}× from the means' 95 % "
                               "intervals), 1 client, leader")
        agrees = low <= published[1] and published[0] <= high
        ratio_finding = comparison(
            "published_ratio", "published", agrees,
            f"With 1 client on the leader a linearizable read took {fmt_factor(ours)} as long "
            "as a serializable one on average, as in the etcd docs.",
            f"With 1 client on the leader a linearizable read took {fmt_factor(ours)} as long "
            "as a serializable one on average; the etcd docs' ratio lies outside our interval.",
            **figures)
    absolute = comparison(
        "published_absolute", "published", None,
        "Our throughput and latencies match the docs' absolute figures.",
        "Our throughput and latencies differ from the docs' absolute figures.",
        "The docs' absolute figures cannot be compared with this run's: Go's benchmark tool "
        "on dedicated machines, against Python threads on one machine that also runs the "
        "members.",
        **{"the docs": "Go's benchmark tool, three dedicated 8-vCPU machines; 1,000 clients "
                       "over 100 connections for the larger workload",
           "this run": "Python threads on one machine that also runs the members, up to "
                       f"{fmt_count(max(levels, default=0))} clients"})
    return [ratio_finding, absolute]


def _course(summary: Mapping[str, Any], cells: Sequence[Finding]) -> list[Finding]:
    outcomes = _outcomes(summary)
    levels = summary["levels"]
    # Cells at a number of clients where the machine was saturated (throughput had stopped
    # following the clients: the finding "saturation") measure the queue for the shared
    # CPUs, not the read path, so the course's claim is judged on the others only.
    saturated = _saturation(summary).holds is True and len(levels) > 1
    judged = [(n, o) for (n, _t), o in zip(
        [(n, t) for n in levels for t in TARGETS], outcomes, strict=True)
        if not (saturated and n == levels[-1])]
    slower = sum(1 for _n, o in judged if o == "slower")
    faster = sum(1 for _n, o in judged if o == "faster")
    total = len(judged)
    left_out = (f" The saturated cells ({_clients(levels[-1])}) are not judged." if saturated
                else "")
    if not total:
        agrees: bool | None = None
        unknown = ("Every cell was at a saturated number of clients, so the course's claim "
                   "cannot be judged on the read path.")
    else:
        agrees = None if not slower and not faster else not faster
        unknown = "No unsaturated cell had enough reads to compare the two consistencies."
    latency = named(comparison(
        "course_latency", "course", agrees,
        f"Linearizable reads were slower, as the course report says: in {slower} of {total} "
        f"unsaturated cells, measurably faster in none.{left_out}",
        f"Linearizable reads were not always slower, against the course report: measurably "
        f"faster in {faster} of {total} unsaturated cells.{left_out}",
        unknown + left_out,
        **{"linearizable slower": f"{slower} of {total} unsaturated cells",
           "linearizable measurably faster": f"{faster} of {total} unsaturated cells",
           "not judged (saturated)": (f"the cells with {_clients(levels[-1])}" if saturated
                                      else "none")}),
        "linearizable reads slower", f"slower in {slower} of {total} unsaturated cells",
        f"faster in {faster} of {total} unsaturated cells",
        "all cells saturated" if not total else "too few reads")
    reason = comparison(
        "course_reason", "course", None,
        "The course report's reason, the leader and a quorum check, is what this run shows.",
        "The course report's reason, the leader and a quorum check, is not what this run shows.",
        "The course report's reason is not tested by latencies alone; the etcd docs give the "
        "mechanism (ReadIndex, under Published figures).")
    load = _load(summary)
    stale_reads = 0
    if load is not None:
        stale_reads = sum(load["cells"][r]["serializable"]["certainly_stale"]
                          for r in load["rates"])
    stale = comparison(
        "course_stale", "course", True if stale_reads else None,
        f"Serializable reads returned stale data, as the course report says they may: "
        f"{fmt_count(stale_reads)} under load here (`load-staleness-serializable`).",
        "No serializable read returned stale data.",
        "The course report's \"may return stale data\" cannot be tested here: this run did "
        "not measure staleness." if load is None else
        "The course report's \"may return stale data\" is not contradicted by this run, nor "
        "shown: no serializable read under load was certainly stale.")
    return [latency, reason, stale]


def findings(summary: Mapping[str, Any], params: Mapping[str, Any],
             cited_histories: Mapping[str, Any] | None = None) -> list[Finding]:
    """The section's findings in the order shown: the answer (the direction), per cell,
    the follower's hop, throughput, the harness, errors, the leader, staleness (cited from
    the partition run's ``cited_histories`` when the report has one), staleness under load
    (when measured), then the published figures and the course report."""
    cells = _cell_findings(summary)
    return name_all([
            _direction(summary, cells), *cells, _follower_hop(summary), _saturation(summary),
            _harness(summary), _client_cpu(summary), _errors(summary), _leader(summary),
            *_staleness(cited_histories, _load(summary) is not None), *load_findings(summary),
            *_published(summary),
            *_course(summary, cells)], COURSE_NAMES)


# The course report's claims, named and judged in a few words for the summary.
COURSE_NAMES = {
    "course_reason": ("why: the leader and a quorum check", "", "",
                      "latencies alone cannot show it"),
    "course_stale": ("serializable reads may be stale", "stale reads seen under load",
                     "no stale read", "no certainly stale read measured"),
}
