"""Helpers the per-experiment report sections share."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from etcdlab.figures.units import MISSING, fmt_ms
from etcdlab.report import charts as plots
from etcdlab.report.environment import format_value
from etcdlab.results import Result


def values(rows: Iterable[Mapping[str, Any]], key: str) -> list[float]:
    """The non-null values of key across sample rows, as floats."""
    return [float(row[key]) for row in rows if row.get(key) is not None]


def range_text(low: float | None, high: float | None, formatter: Callable[[float], str]) -> str:
    """Format an interval as "low – high", or MISSING if it is unknown."""
    if low is None or high is None:
        return MISSING
    return f"{formatter(low)} – {formatter(high)}"


def metadata_text(result: Result, *keys: str) -> str:
    """The first of keys present in the result's metadata, formatted; MISSING if none is."""
    for key in keys:
        if result.metadata.get(key) is not None:
            return format_value(key, result.metadata[key])
    return MISSING


def election_timeout_lines(result: Result) -> dict[str, float]:
    """Chart reference lines at T and 2T, the window etcd's randomised election timeout
    fires in (T = the run's election timeout)."""
    timeout_s = result.metadata["election_timeout_ms"] / 1000
    return {
        f"election timeout ({fmt_ms(timeout_s * 1000)})": timeout_s,
        f"2 × election timeout ({fmt_ms(timeout_s * 2000)})": 2 * timeout_s,
    }


def _written(record: Mapping[str, Any]) -> Any:
    """The value a put (or a transaction's put) wrote: its argument, not its result."""
    return (record.get("args") or {}).get("value")


def _contradicted_writes(stuck_ops: Iterable[Mapping[str, Any]],
                         ops: Iterable[Mapping[str, Any]]) -> set[tuple[str, int]]:
    """The other side of each stuck read: the last write of its key acknowledged before the
    read was invoked, when it wrote another value than the read returned (the read should
    have seen it). (process, invoked_ns) of each."""
    ops = list(ops)
    found = set()
    for read in stuck_ops:
        if read["op"] != "get":
            continue
        earlier = [w for w in ops if w.get("key") == read.get("key")
                   and w["op"] in ("put", "txn") and w["outcome"] == "ok"
                   and w["completed_ns"] is not None and w["completed_ns"] < read["invoked_ns"]]
        if earlier:
            write = max(earlier, key=lambda w: w["completed_ns"])
            if _written(write) != read.get("value"):
                found.add((str(write["process"]), write["invoked_ns"]))
    return found


def history_timelines(result: Result, out_dir: Path, seconds_before: float = 0.2,
                      seconds_after: float = 0.05) -> dict[str, str]:
    """For each recorded history the checker found not linearizable, a timeline of the
    operations around its counterexample (the stuck ones outlined in red, the write a stuck
    read contradicts in blue), fault windows shaded.

    Reads ``NAME[.label].history.jsonl`` beside the result; a missing file draws nothing."""
    files = {}
    for label, verdict in sorted((result.samples.get("histories") or {}).items()):
        example = verdict.get("counterexample") or {}
        stuck = {(str(p), c) for p, c in example.get("stuck_calls") or []}
        source = Path(out_dir) / str(verdict.get("file", ""))
        if verdict.get("verdict") != "not-linearizable" or not stuck or not source.is_file():
            continue
        records = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
        ops = [r for r in records if r.get("type", "op") == "op" and r["outcome"] != "failed"]
        stuck_ops = [r for r in ops if (str(r["process"]), r["invoked_ns"]) in stuck]
        if not stuck_ops:
            continue
        keys = {r.get("key") for r in stuck_ops}  # the checker decides per key
        ops = [r for r in ops if r.get("key") in keys]
        contradicted = _contradicted_writes(stuck_ops, ops)
        marked = [r for r in ops if (str(r["process"]), r["invoked_ns"]) in contradicted]
        begin = min(r["invoked_ns"] for r in [*stuck_ops, *marked]) - seconds_before * 1e9
        end = max(r["completed_ns"] or r["invoked_ns"] for r in stuck_ops) + seconds_after * 1e9
        lanes: dict[str, list[dict[str, Any]]] = {}
        for r in sorted(ops, key=lambda r: str(r["process"])):
            if r["invoked_ns"] > end or (r["completed_ns"] or end) < begin:
                continue
            is_stuck = (str(r["process"]), r["invoked_ns"]) in stuck
            is_contradicted = (str(r["process"]), r["invoked_ns"]) in contradicted
            value = "nil" if r["value"] is None else r["value"]
            lanes.setdefault(str(r["process"]), []).append({
                "start": max(r["invoked_ns"] - begin, 0) / 1e9,
                "end": None if r["completed_ns"] is None else (r["completed_ns"] - begin) / 1e9,
                "kind": r["op"], "highlight": is_stuck, "contradicted": is_contradicted,
                "label": f"{r['op']} → {value}" if is_stuck else
                f"{r['op']} {_written(r)}, acknowledged before it" if is_contradicted else ""})
        spans = {}
        for window in records:
            if window.get("type") == "fault" and window.get("begin_ns") is not None:
                stop = window.get("end_ns") or end
                if stop >= begin and window["begin_ns"] <= end:
                    spans[str(window.get("description") or window.get("kind"))] = (
                        max(window["begin_ns"] - begin, 0) / 1e9, (min(stop, end) - begin) / 1e9)
        name = f"{result.experiment}_{label}_timeline.png".replace("-", "_")
        files[label] = plots.history_timeline(
            Path(out_dir) / name, lanes,
            f"History {label}: key …{'/'.join(str(sorted(map(str, keys))[0]).split('/')[-2:])}"
            " around its counterexample", spans)
    return files
