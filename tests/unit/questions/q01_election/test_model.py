"""Q1's election model (etcdlab.questions.q01_election.model): its exact CDF against the algebra
and a simulation, and the Kolmogorov–Smirnov p-value against published tables."""

from __future__ import annotations

import math
import random

import pytest

from etcdlab.questions.q01_election.model import (
    KS_EXACT_MAX_N,
    ElectionModel,
    kolmogorov_p,
    ks_critical,
    ks_statistic,
    ks_test,
)

QUICK = ElectionModel(timeout_s=1.0, heartbeat_s=0.1, survivors=2, poll_s=0.005,
                      rounds_s=0.001)


def test_the_cdf_rises_from_zero_to_one_over_the_support():
    xs, ys = QUICK.curve(points=500)
    assert all(b >= a for a, b in zip(ys, ys[1:], strict=False))
    assert QUICK.low_s == pytest.approx(1.0 - 0.1 + 0.001)
    assert QUICK.high_s == pytest.approx(2.0 + 0.005 + 0.001)
    assert QUICK.cdf(QUICK.low_s) == 0.0
    assert QUICK.cdf(QUICK.low_s + 0.002) > 0.0
    assert QUICK.cdf(QUICK.high_s - 0.001) < 1.0
    assert QUICK.cdf(QUICK.high_s) == pytest.approx(1.0, abs=1e-12)
    assert ys[0] == 0.0 and ys[-1] == 1.0


def test_the_median_of_two_survivors_without_poll_is_the_algebras():
    # Y = min(X1, X2) − U, X uniform in [1, 2), U in [0, 0.1). For y in [1, 1.9],
    # F(y) = 1 − (a³ − (a − 0.1)³) / 0.3 with a = 2 − y: F = ½ ⇔ 0.3a² − 0.03a − 0.149 = 0.
    model = ElectionModel(1.0, 0.1, 2, poll_s=0.0, rounds_s=0.0)
    a = (0.03 + math.sqrt(0.03**2 + 4 * 0.3 * 0.149)) / (2 * 0.3)
    assert model.median_s == pytest.approx(2 - a, abs=1e-9)
    assert model.median_s == pytest.approx(1.24348, abs=1e-5)
    # Without the heartbeat offset it is the median of the earlier of two timeouts.
    assert ElectionModel(1.0, 0.0, 2, 0.0, 0.0).median_s == pytest.approx(2 - math.sqrt(0.5))


def test_poll_and_rounds_shift_the_model_as_they_should():
    base = ElectionModel(1.0, 0.1, 2, poll_s=0.0, rounds_s=0.0)
    assert ElectionModel(1.0, 0.1, 2, 0.0, 0.010).median_s == pytest.approx(
        base.median_s + 0.010, abs=1e-9)
    # A poll of p adds a uniform [0, p): the median moves by about p / 2.
    assert QUICK.median_s == pytest.approx(base.median_s + 0.001 + 0.0025, abs=2e-4)
    assert QUICK.p95_s > QUICK.median_s


def test_the_exact_cdf_matches_a_seeded_simulation():
    rng = random.Random(14)
    draws = sorted(min(rng.uniform(1, 2), rng.uniform(1, 2)) - rng.uniform(0, 0.1) + 0.001
                   + rng.uniform(0, 0.005) for _ in range(100_000))
    for x in (0.95, 1.1, 1.3, 1.5, 1.8, 1.95):
        simulated = sum(1 for v in draws if v <= x) / len(draws)
        assert QUICK.cdf(x) == pytest.approx(simulated, abs=0.005), x


def test_more_survivors_elect_sooner():
    medians = [ElectionModel(1.0, 0.1, k, 0.005).median_s for k in (1, 2, 4)]
    assert medians == sorted(medians, reverse=True)
    assert ElectionModel(1.0, 0.0, 1, 0.0, 0.0).median_s == pytest.approx(1.5)


def test_a_model_rejects_impossible_settings():
    with pytest.raises(ValueError, match="survivor"):
        ElectionModel(1.0, 0.1, 0)
    with pytest.raises(ValueError, match="heartbeat"):
        ElectionModel(1.0, -0.1, 2)
    with pytest.raises(ValueError, match="quantile"):
        QUICK.quantile(1.0)


@pytest.mark.parametrize(("n", "d"), [(5, 0.56328), (10, 0.40925), (20, 0.29408),
                                      (30, 0.24170)])
def test_the_ks_p_value_is_five_percent_at_the_tabled_critical_values(n, d):
    # Two-sided 5 % critical values of D_n (Miller, JASA 1956, Table 1).
    assert kolmogorov_p(d, n) == pytest.approx(0.05, abs=2e-4)
    assert ks_critical(n) == pytest.approx(d, abs=1e-4)


def test_the_ks_p_value_near_the_brief_figures():
    assert kolmogorov_p(0.565, 5) == pytest.approx(0.05, abs=0.002)
    assert kolmogorov_p(0.409, 10) == pytest.approx(0.05, abs=0.002)
    assert kolmogorov_p(0.294, 20) == pytest.approx(0.05, abs=0.002)


def test_the_ks_p_value_at_its_exactly_known_ends():
    # n = 1: P(D ≥ d) = 2 − 2d for d in [½, 1].
    assert kolmogorov_p(0.7, 1) == pytest.approx(0.6)
    assert kolmogorov_p(0.05, 10) == 1.0   # d ≤ 1/(2n): every sample is at least that far
    assert kolmogorov_p(1.0, 10) == 0.0
    ps = [kolmogorov_p(d / 100, 20) for d in range(1, 60)]
    assert all(b <= a for a, b in zip(ps, ps[1:], strict=False))
    # Beyond n d² = 7.24 Marsaglia–Tsang–Wang's tail approximation: p below a millionth.
    assert kolmogorov_p(0.61, 20) < 1e-6


def test_the_asymptotic_p_value_takes_over_smoothly_above_the_exact_range():
    n = KS_EXACT_MAX_N
    d = 1.358 / math.sqrt(n)
    assert kolmogorov_p(d, n + 1) == pytest.approx(kolmogorov_p(d, n), abs=0.003)


def test_ks_p_value_matches_a_simulation_of_uniform_samples():
    rng = random.Random(5)
    trials, hits = 20_000, 0
    for _ in range(trials):
        if ks_statistic([rng.random() for _ in range(5)], lambda x: x)[0] >= 0.5:
            hits += 1
    assert hits / trials == pytest.approx(kolmogorov_p(0.5, 5), abs=0.006)


def test_ks_test_finds_the_largest_gap_and_where():
    test = ks_test([0.1, 0.2, 0.3, 0.4], lambda x: x)
    assert test.d == pytest.approx(0.6)   # at 0.4 the sample has all of its mass, F = 0.4
    assert test.at == pytest.approx(0.4)
    assert test.n == 4 and test.method == "exact (Marsaglia–Tsang–Wang)"
    assert "tail approximation" in ks_test([0.9] * 20, lambda x: x).method
    with pytest.raises(ValueError, match="no values"):
        ks_test([], lambda x: x)
