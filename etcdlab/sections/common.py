"""Helpers the per-experiment report sections share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from etcdlab.environment import format_value
from etcdlab.results import Result
from etcdlab.units import MISSING, fmt_ms


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
