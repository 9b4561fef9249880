"""Unit tests for etcdlab.figures.stats: percentiles, summaries, confidence intervals, CDF."""

import math

import pytest

from etcdlab.figures import stats


def test_percentile_interpolates_linearly_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 100) == 4.0
    assert stats.percentile(values, 50) == pytest.approx(2.5)
    assert stats.percentile(values, 25) == pytest.approx(1.75)  # numpy's default gives 1.75


def test_percentile_of_one_value_is_that_value():
    assert stats.percentile([7.5], 95) == 7.5


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_q_outside_0_to_100(q):
    with pytest.raises(ValueError, match="between 0 and 100"):
        stats.percentile([1.0, 2.0], q)


def test_median_or_none_skips_none_and_is_the_50th_percentile():
    assert stats.median_or_none([3.0, None, 1.0, 2.0, 4.0]) == pytest.approx(2.5)
    assert stats.median_or_none(v for v in (5, None, 1, 3)) == 3.0  # any iterable, ints too
    assert stats.median_or_none([0.25]) == 0.25
    values = [0.1, 0.7, 0.3, 0.9]
    assert stats.median_or_none(values) == stats.percentile(values, 50)  # bit for bit


@pytest.mark.parametrize("values", [[], [None, None], iter(())])
def test_median_or_none_is_none_without_values(values):
    assert stats.median_or_none(values) is None


def test_median_or_none_rejects_nan_as_percentile_does():
    with pytest.raises(ValueError, match="finite"):
        stats.median_or_none([1.0, math.nan])


@pytest.mark.parametrize("function", [stats.summarize, stats.cdf_points, stats.median_ci])
def test_empty_input_is_rejected(function):
    with pytest.raises(ValueError, match="no values"):
        function([])


def test_nan_is_rejected():
    with pytest.raises(ValueError, match="finite"):
        stats.summarize([1.0, math.nan])


def test_summarize_one_to_ten():
    summary = stats.summarize(range(10, 0, -1))
    assert summary["n"] == 10
    assert summary["mean"] == pytest.approx(5.5)
    assert summary["median"] == pytest.approx(5.5)
    assert summary["min"] == 1.0
    assert summary["max"] == 10.0
    assert summary["p90"] == pytest.approx(9.1)
    assert summary["p95"] == pytest.approx(9.55)
    assert summary["p99"] == pytest.approx(9.91)
    assert summary["stdev"] == pytest.approx(math.sqrt(55 / 6))  # sample stdev, n - 1
    # Binomial(10, 1/2): P(X <= 1) = 11/1024 <= 2.5 %, P(X <= 2) = 56/1024 > 2.5 %
    # so the interval is (x(2), x(9)).
    assert (summary["median_ci_low"], summary["median_ci_high"]) == (2.0, 9.0)
    half_width = 2.262157 * math.sqrt(55 / 6) / math.sqrt(10)
    assert summary["mean_ci_low"] == pytest.approx(5.5 - half_width, rel=1e-6)
    assert summary["mean_ci_high"] == pytest.approx(5.5 + half_width, rel=1e-6)


def test_summary_of_one_value_has_zero_stdev_and_no_intervals():
    summary = stats.summarize([3.0])
    assert summary["stdev"] == 0.0
    assert summary["mean_ci_low"] is None and summary["mean_ci_high"] is None
    assert summary["median_ci_low"] is None and summary["median_ci_high"] is None


def test_median_ci_needs_six_samples_for_95_percent():
    # With 5 samples even (min, max) covers the median only 1 - 2/32 = 93.75 % of the time.
    assert stats.median_ci([1, 2, 3, 4, 5]) is None
    assert stats.median_ci([1, 2, 3, 4, 5, 6]) == (1.0, 6.0)


@pytest.mark.parametrize(("n", "ranks"), [(20, (6, 15)), (100, (40, 61))])
def test_median_ci_uses_the_textbook_order_statistics(n, ranks):
    values = [float(i) for i in range(1, n + 1)]
    assert stats.median_ci(values) == (float(ranks[0]), float(ranks[1]))


def test_t_quantile_matches_tables_and_tends_to_normal():
    assert stats.t_quantile_975(1) == pytest.approx(12.706, abs=1e-3)
    assert stats.t_quantile_975(30) == pytest.approx(2.042, abs=1e-3)
    assert stats.t_quantile_975(35) == pytest.approx(2.030, abs=1e-3)
    assert stats.t_quantile_975(200) == pytest.approx(1.972, abs=1e-3)
    assert stats.t_quantile_975(10**9) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError):
        stats.t_quantile_975(0)


def test_cdf_points_are_sorted_values_with_fractions_up_to_one():
    xs, ps = stats.cdf_points([3.0, 1.0, 2.0, 2.0])
    assert xs == [1.0, 2.0, 2.0, 3.0]
    assert ps == [0.25, 0.5, 0.75, 1.0]
