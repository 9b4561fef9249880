"""Summaries of measured samples: percentiles, confidence intervals, CDF points.

Pure Python on purpose: the lab's samples are small (tens to a few thousand values),
and the report must re-render from saved JSON with nothing but the standard library,
matplotlib and jinja2 installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise
from typing import Any

CONFIDENCE = 0.95

# Two-sided 95 % quantiles of Student's t distribution, t(0.975, df).
_T_975_SMALL_DF = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582,
    2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450,
    2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539,
    2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip
# Beyond 30 degrees of freedom t is close to linear in 1/df; these anchor the interpolation.
_T_975_LARGE_DF = ((30, 2.042272), (40, 2.021075), (50, 2.008559), (60, 2.000298),
                   (80, 1.990063), (100, 1.983972), (120, 1.979930))  # fmt: skip
_Z_975 = 1.959964


def _checked(values: Iterable[float], what: str) -> list[float]:
    """Return the values as a list of floats; reject empty input and NaN or infinity."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError(f"{what}: no values")
    if not all(math.isfinite(v) for v in data):
        raise ValueError(f"{what}: values must be finite numbers (got NaN or infinity)")
    return data


def _percentile_sorted(data: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of already sorted data (numpy's default method)."""
    position = (len(data) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(data) - 1)
    fraction = position - lower
    return data[lower] + (data[upper] - data[lower]) * fraction


def percentile(values: Iterable[float], q: float) -> float:
    """Return the q-th percentile (0 ≤ q ≤ 100) with linear interpolation between ranks.

    This is the same definition as numpy's default (``method="linear"``): the
    0th percentile is the minimum, the 100th the maximum.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be between 0 and 100, got {q}")
    return _percentile_sorted(sorted(_checked(values, "percentile")), q)


def median_or_none(values: Iterable[float | None]) -> float | None:
    """The median (the 50th :func:`percentile`) of the values that are not None; None when
    none are: a summary field for samples some trials did not record."""
    present = [v for v in values if v is not None]
    return percentile(present, 50) if present else None


def t_quantile_975(df: int) -> float:
    """Return t(0.975, df), the multiplier of a two-sided 95 % Student-t interval."""
    if df < 1:
        raise ValueError(f"t quantile: degrees of freedom must be at least 1, got {df}")
    if df <= len(_T_975_SMALL_DF):
        return _T_975_SMALL_DF[df - 1]
    anchors = [*_T_975_LARGE_DF, (math.inf, _Z_975)]
    for (df_low, t_low), (df_high, t_high) in pairwise(anchors):
        if df <= df_high:
            # Interpolate linearly in 1/df, which is how t approaches the normal quantile.
            x_low, x_high, x = 1 / df_low, 1 / df_high, 1 / df
            return t_high + (t_low - t_high) * (x - x_high) / (x_low - x_high)
    raise AssertionError("unreachable: the last anchor is infinite")


def _binomial_half_tail_rank(n: int, alpha: float) -> int:
    """Largest k with P(X < k) ≤ alpha/2 for X ~ Binomial(n, 1/2); 0 if none exists.

    The order statistics x(k) and x(n+1-k) then bound the median with coverage
    of at least 1 − alpha, whatever the distribution of the samples.
    """
    log_half_n = n * math.log(0.5)
    cumulative = 0.0
    k = 0
    while k <= n:
        log_term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n
        if cumulative + math.exp(log_term) > alpha / 2:
            break
        cumulative += math.exp(log_term)
        k += 1
    return k


def median_ci(values: Iterable[float]) -> tuple[float, float] | None:
    """Distribution-free 95 % confidence interval of the median, from order statistics.

    Returns None when there are too few samples for any pair of order statistics to
    reach 95 % coverage (fewer than 6 samples).
    """
    data = sorted(_checked(values, "median_ci"))
    k = _binomial_half_tail_rank(len(data), 1 - CONFIDENCE)
    if k == 0:
        return None
    return data[k - 1], data[len(data) - k]


def mean_ci(values: Iterable[float]) -> tuple[float, float] | None:
    """Student-t 95 % confidence interval of the mean; None with fewer than 2 samples."""
    data = _checked(values, "mean_ci")
    n = len(data)
    if n < 2:
        return None
    mean = math.fsum(data) / n
    half_width = t_quantile_975(n - 1) * _sample_stdev(data, mean) / math.sqrt(n)
    return mean - half_width, mean + half_width


def _sample_stdev(data: Sequence[float], mean: float) -> float:
    """Sample standard deviation (n − 1 in the denominator); 0 for a single value."""
    if len(data) < 2:
        return 0.0
    return math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (len(data) - 1))


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """Summarise samples in one JSON-ready dict.

    Keys: ``n``, ``mean``, ``median``, ``p90``, ``p95``, ``p99``, ``min``, ``max``,
    ``stdev`` (sample standard deviation, 0 for n < 2), and 95 % confidence intervals
    ``median_ci_low``/``median_ci_high`` (order statistics; None for n < 6) and
    ``mean_ci_low``/``mean_ci_high`` (Student t; None for n < 2).
    """
    data = sorted(_checked(values, "summarize"))
    n = len(data)
    mean = math.fsum(data) / n
    median_bounds = median_ci(data)
    mean_bounds = mean_ci(data)
    return {
        "n": n,
        "mean": mean,
        "median": _percentile_sorted(data, 50),
        "p90": _percentile_sorted(data, 90),
        "p95": _percentile_sorted(data, 95),
        "p99": _percentile_sorted(data, 99),
        "min": data[0],
        "max": data[-1],
        "stdev": _sample_stdev(data, mean),
        "median_ci_low": median_bounds[0] if median_bounds else None,
        "median_ci_high": median_bounds[1] if median_bounds else None,
        "mean_ci_low": mean_bounds[0] if mean_bounds else None,
        "mean_ci_high": mean_bounds[1] if mean_bounds else None,
    }


def cdf_points(values: Iterable[float]) -> tuple[list[float], list[float]]:
    """Return the empirical CDF as (sorted values, cumulative fractions i/n).

    The shape matches one series of :func:`etcdlab.report.charts.line_chart`.
    """
    data = sorted(_checked(values, "cdf_points"))
    n = len(data)
    return data, [(i + 1) / n for i in range(n)]


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    return min(1.0, math.fsum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                 + i * log_p + (n - i) * log_q) for i in range(k + 1)))


def _solve_decreasing(f: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the decreasing function f(p) crosses target (bisection)."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if f(middle) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _checked_count(k: int, n: int) -> None:
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"binomial bound: need 0 ≤ k ≤ n and n ≥ 1, got k={k}, n={n}")


def binomial_upper(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """Exact one-sided upper bound of a proportion seen k times in n trials (Clopper–Pearson).

    "0 of 20" gives 0.139: with 95 % confidence the true rate is at most 13.9 %.
    """
    _checked_count(k, n)
    if k == n:
        return 1.0
    return _solve_decreasing(lambda p: _binomial_cdf(k, n, p), 1 - confidence)


def binomial_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact two-sided interval of a proportion seen k times in n trials (Clopper–Pearson)."""
    _checked_count(k, n)
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else _solve_decreasing(lambda p: _binomial_cdf(k - 1, n, p), 1 - tail)
    high = 1.0 if k == n else _solve_decreasing(lambda p: _binomial_cdf(k, n, p), tail)
    return low, high


def median_stats(values: Iterable[float]) -> dict[str, Any]:
    """The median with its exact 95 % interval, JSON-ready: ``n``, ``median``, ``low``,
    ``high`` (None below n = 6, and then the ``values`` themselves are kept)."""
    data = sorted(_checked(values, "median_stats")) if values else []
    if not data:
        return {"n": 0, "median": None, "low": None, "high": None}
    bounds = median_ci(data)
    result: dict[str, Any] = {"n": len(data), "median": _percentile_sorted(data, 50),
                              "low": bounds[0] if bounds else None,
                              "high": bounds[1] if bounds else None}
    if bounds is None:
        result["values"] = data
    return result
