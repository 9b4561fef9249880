"""The one place numbers become text: durations, sizes, rates, counts, yes/no.

Every formatter accepts None (a value that was not measured) and returns ``MISSING``.
The same functions are jinja filters (:data:`FILTERS`), so a template can write
``{{ value | seconds }}`` but never does arithmetic itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from etcdlab.figures.stats import binomial_interval, binomial_upper, median_stats

MISSING = "—"

_DURATION_UNITS = ((1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s"))
_BINARY_UNITS = ((1, "B"), (1024, "KiB"), (1024**2, "MiB"), (1024**3, "GiB"), (1024**4, "TiB"))


def _three_digits(value: float) -> str:
    """Three significant digits, keeping trailing zeros (1.00, 23.1, 412, 4120)."""
    if value == 0:
        return "0"
    if abs(value) >= 999.5:
        return f"{value:.0f}"
    rounded = float(f"{value:.3g}")  # round first so that 0.9997 gives "1.00", not "1.000"
    decimals = max(0, 2 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:.{decimals}f}"


def _scaled(value: float, units: tuple[tuple[float, str], ...]) -> str:
    """Format a non-zero value in the largest unit that keeps it at or above 1."""
    index = 0
    for i, (factor, _) in enumerate(units):
        if abs(value) >= factor:
            index = i
    text = _three_digits(value / units[index][0])
    # Rounding can carry into the next unit (999.7 µs → "1000 µs"): move up one unit.
    if abs(float(text)) >= 1000 and index + 1 < len(units):
        next_factor, next_suffix = units[index + 1]
        return f"{_three_digits(value / next_factor)} {next_suffix}"
    return f"{text} {units[index][1]}"


def _finite(value: float, what: str) -> float:
    """Return value as a float, rejecting NaN and infinity with a clear message."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what}: cannot format {value!r}")
    return number


def fmt_seconds(seconds: float | None) -> str:
    """Format a duration given in seconds: 0.000412 → "412 µs", 0.0231 → "23.1 ms",
    1.234 → "1.23 s"; 3 significant digits, whole seconds from 1000 s up."""
    if seconds is None:
        return MISSING
    number = _finite(seconds, "fmt_seconds")
    if number == 0:
        return "0 s"
    return _scaled(number, _DURATION_UNITS)


def fmt_ms(milliseconds: float | None) -> str:
    """Format a duration given in milliseconds, choosing the unit like :func:`fmt_seconds`."""
    if milliseconds is None:
        return MISSING
    return fmt_seconds(_finite(milliseconds, "fmt_ms") / 1000.0)


def fmt_bytes(size: float | None) -> str:
    """Format a size in bytes with binary units: 512 → "512 B", 2**31 → "2.00 GiB"."""
    if size is None:
        return MISSING
    number = _finite(size, "fmt_bytes")
    if abs(number) < 1024:
        return f"{number:.0f} B"
    return _scaled(number, _BINARY_UNITS)


def fmt_count(count: float | None) -> str:
    """Format a whole count with thousands separators: 12345 → "12,345"."""
    if count is None:
        return MISSING
    number = _finite(count, "fmt_count")
    if number != int(number):
        raise ValueError(f"fmt_count: {count!r} is not a whole number")
    return f"{int(number):,}"


def fmt_rate(per_second: float | None, unit: str = "ops/s") -> str:
    """Format a rate: 3 significant digits below 1000, whole numbers with separators above
    (1353.4 → "1,353 ops/s", 12.34 → "12.3 ops/s")."""
    if per_second is None:
        return MISSING
    number = _finite(per_second, "fmt_rate")
    text = f"{round(number):,}" if abs(number) >= 999.5 else _three_digits(number)
    return f"{text} {unit}"


def fmt_bool(flag: bool | None) -> str:
    """Format a boolean as "yes" or "no"."""
    if flag is None:
        return MISSING
    return "yes" if flag else "no"


def fmt_percent(fraction: float | None, decimals: int = 1) -> str:
    """Format a fraction (0.123, not 12.3) as a percentage: "12.3 %"."""
    if fraction is None:
        return MISSING
    return f"{_finite(fraction, 'fmt_percent') * 100:.{decimals}f} %"


def fmt_p_value(p: float | None) -> str:
    """Format a test's p-value to 3 significant digits, rounded down so that a p below
    0.05 never reads as 0.05: 0.2314 → "0.231", 0.04999 → "0.0499"; below 0.001 "< 0.001"
    (a smaller p says nothing more to a 5 % test)."""
    if p is None:
        return MISSING
    number = _finite(p, "fmt_p_value")
    if not 0 <= number <= 1:
        raise ValueError(f"fmt_p_value: a p-value lies in [0, 1], not {p!r}")
    if number < 0.001:
        return "< 0.001"
    decimals = 2 - math.floor(math.log10(number))
    # The relative nudge keeps a float just below its decimal (0.29 is 0.28999…) from
    # dropping a digit.
    floored = math.floor(number * 10**decimals * (1 + 1e-12)) / 10**decimals
    return f"{floored:.{decimals}f}"


def fmt_factor(factor: float | None) -> str:
    """Format a ratio between two measurements: 12.3 → "12×", 1.46 → "1.5×", 0.5 → "0.50×"."""
    if factor is None:
        return MISSING
    number = _finite(factor, "fmt_factor")
    if abs(number) >= 10:
        return f"{number:.0f}×"
    return f"{number:.1f}×" if abs(number) >= 1 else f"{number:.2f}×"


def fmt_ppm(ppm: float | None) -> str:
    """Format a clock rate error in parts per million: 49.962 → "50.0 ppm", -8333.3 →
    "-8,333 ppm"; 3 significant digits below 1000."""
    if ppm is None:
        return MISSING
    number = _finite(ppm, "fmt_ppm")
    text = f"{round(number):,}" if abs(number) >= 999.5 else _three_digits(number)
    return f"{text} ppm"


def fmt_whole_seconds(seconds: float | None) -> str:
    """A quantity the instrument gives in whole seconds (chronyc LastRx, a lease TTL):
    8.09 → "8 s (±1 s)", never more precise than the instrument."""
    if seconds is None:
        return MISSING
    return fmt_resolved(_finite(seconds, "fmt_whole_seconds"), 1.0)


def fmt_ttl(seconds: float | None) -> str:
    """A lease TTL as etcd takes it, in whole seconds: 15 → "15 s".

    A TTL asked for is exact (etcd expires the lease TTL seconds after its grant on the
    leader's monotonic clock); a TTL etcd *reports* (remaining time to live) is truncated
    to whole seconds and shown with :func:`fmt_whole_seconds` instead.
    """
    if seconds is None:
        return fmt_seconds(None)
    return f"{round(seconds):,} s"


def fmt_resolution(resolution_s: float) -> str:
    """An instrument's resolution without trailing zeros: 1.0 → "1 s", 0.005 → "5 ms",
    1/3 → "333 ms"."""
    text = fmt_seconds(resolution_s)
    number, unit = text.split(" ")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return f"{number} {unit}"


def fmt_resolved(seconds: float | None, resolution_s: float) -> str:
    """A duration measured by an instrument of resolution ``resolution_s`` (a polling
    interval, a log stamp, a whole-second counter), never shown finer than it: the last
    digit shown is no smaller than the resolution's leading digit, and never more than
    three significant digits. 1.234 at 5 ms → "1.23 s (±5 ms)"; 8.3 at 1 s → "8 s (±1 s)";
    a value below the resolution is only bounded: 0.005 at 100 ms → "< 100 ms"."""
    if seconds is None:
        return MISSING
    number = _finite(seconds, "fmt_resolved")
    resolution = _finite(resolution_s, "fmt_resolved")
    if resolution <= 0:
        return fmt_seconds(number)
    bound = fmt_resolution(resolution)
    if abs(number) < resolution:
        return f"< {bound}" if number >= 0 else f"> -{bound}"
    step = 10.0 ** math.floor(math.log10(resolution) + 1e-9)
    factor, unit = _DURATION_UNITS[0]
    for unit_factor, unit_name in _DURATION_UNITS:
        if abs(number) >= unit_factor:
            factor, unit = unit_factor, unit_name
    rounded = round(number / step) * step
    by_step = max(0, -math.floor(math.log10(step / factor) + 1e-9))
    by_digits = max(0, 2 - math.floor(math.log10(abs(rounded) / factor) + 1e-9)) if rounded else 0
    decimals = min(by_step, by_digits)
    # Round once: to the resolution's step, or to three digits where they are coarser.
    value = (rounded if by_step <= by_digits else number) / factor
    text = f"{value:,.{decimals}f}" if abs(value) >= 1000 else f"{value:.{decimals}f}"
    return f"{text} {unit} (±{bound})"


def fmt_within(seconds: float | None, resolution_s: float) -> str:
    """A time limited by a polling interval: "1.19 s (±5 ms)" (:func:`fmt_resolved`)."""
    return fmt_resolved(seconds, resolution_s)


def _small_percent(fraction: float) -> str:
    """A bound as a percentage that stays readable below 0.1 %: 0.00025 → "0.025 %"."""
    if fraction < 0.001:
        return f"{float(f'{fraction * 100:.2g}'):g} %"
    return fmt_percent(fraction)


def fmt_share(k: int | None, n: int | None) -> str:
    """k of n events with an exact 95 % bound: "0 of 20 (≤ 13.9 % at 95 %)", "20 of 20
    (≥ 86.1 % at 95 %)", "3 of 20 (15.0 %; 95 % CI 3.2 – 37.9 %)"."""
    if k is None or n is None:
        return MISSING
    if n == 0:
        return "0 of 0"
    if k == 0:
        return f"0 of {n:,} (≤ {_small_percent(binomial_upper(0, n))} at 95 %)"
    if k == n:
        return f"{n:,} of {n:,} (≥ {fmt_percent(1 - binomial_upper(0, n))} at 95 %)"
    low, high = binomial_interval(k, n)
    return (f"{k:,} of {n:,} ({fmt_percent(k / n)}; 95 % CI "
            f"{fmt_percent(low)} – {fmt_percent(high)})")


def fmt_median(values: Iterable[float], formatter: Callable[[float], str] = fmt_seconds) -> str:
    """The median with its exact order-statistic 95 % interval, or the values themselves
    when there are too few for one (n < 6): "1.19 s (95 % CI 1.12 s – 1.31 s, n = 20)",
    "1.17 s, 1.40 s (n = 2)" (the report's note on reading the figures says why)."""
    return fmt_median_stats(median_stats(list(values)), formatter)


def fmt_median_stats(m: Mapping[str, Any] | None,
                     formatter: Callable[[float], str] = fmt_seconds) -> str:
    """:func:`fmt_median` from a :func:`etcdlab.figures.stats.median_stats` dict (what a summary
    keeps instead of thousands of values)."""
    if not m or not m.get("n"):
        return MISSING
    if m.get("low") is None:
        shown = ", ".join(formatter(v) for v in m.get("values") or [m["median"]])
        return f"{shown} (n = {m['n']})"
    return (f"{formatter(m['median'])} (95 % CI {formatter(m['low'])} – {formatter(m['high'])}, "
            f"n = {m['n']:,})")


def table_cell(text: Any) -> str:
    """Text made safe inside a Markdown table cell: one line, pipes escaped."""
    if text is None:
        return MISSING
    return " ".join(str(text).split()).replace("|", "\\|")


FILTERS = {
    "cell": table_cell,
    "seconds": fmt_seconds,
    "ms": fmt_ms,
    "bytes": fmt_bytes,
    "count": fmt_count,
    "rate": fmt_rate,
    "yesno": fmt_bool,
    "percent": fmt_percent,
    "factor": fmt_factor,
    "ppm": fmt_ppm,
}
