"""Q1's model of the time from a leader crash to the moment the lab sees a new leader, and
the one-sample Kolmogorov–Smirnov test that sets the measured times beside it.

The model (time 0 is the crash)::

    elected = min(X_1, …, X_k) − U + R + P

- ``X_i`` uniform in [T, 2T): survivor i's randomised election timeout (etcd draws it in
  [T, 2T), ``raft/raft.go``), counted from the last moment its timer was reset;
- ``U`` uniform in [0, h): that reset was the leader's last heartbeat, at a uniform point of
  the heartbeat interval h before the crash (the lab kills the leader after a random part
  of a heartbeat interval);
- the earliest survivor wins its pre-vote and vote rounds, which take ``R`` (a constant);
- the lab polls the survivors every p and sees the new leader ``P`` later, uniform in [0, p).

The survivors' timers are reset by the same heartbeat, so they share ``U``. The CDF is
exact: the minimum of k uniforms has a polynomial CDF, and each uniform added to it (``U``,
then ``P``) averages that CDF over a window, which its antiderivative gives in closed form
(:meth:`ElectionModel.cdf`). Left out on purpose: etcd counts time in ticks of h (which
blurs the timeout by up to one tick), a survivor still inside its leader lease rejecting an
early pre-vote, and split votes; the test against the measurements is what tells whether
they matter.

Pure Python like :mod:`etcdlab.figures.stats`: the report re-renders without numpy or scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# The lab's members share one host (containers on one bridge, or VMs on one machine): a peer
# round trip is well under a millisecond, so 1 ms covers the pre-vote and vote exchanges
# and the fsync of the vote. The samples carry no measured peer round trip to use instead.
LAB_ROUNDS_S = 0.001
# The Kolmogorov distribution is evaluated exactly (Marsaglia–Tsang–Wang) up to this many
# values (23 ms for n = 100); above it the asymptotic series with Stephens's correction is
# used, within about 0.002 of the exact p-value near p = 0.05.
KS_EXACT_MAX_N = 100
_BISECTIONS = 80
# Beyond n d² = 7.24 (p < 1e-6) Marsaglia, Tsang & Wang approximate the right tail, as
# their paper suggests, instead of raising ever larger matrices to the n-th power.
_TAIL_S = 7.24


@dataclass(frozen=True)
class ElectionModel:
    """The crash-to-seen-leader time of ``survivors`` members with election timeout
    ``timeout_s`` (T) and heartbeat ``heartbeat_s`` (h), seen by a poll every ``poll_s``,
    plus ``rounds_s`` for the pre-vote and vote rounds. All in seconds."""

    timeout_s: float
    heartbeat_s: float
    survivors: int
    poll_s: float = 0.0
    rounds_s: float = LAB_ROUNDS_S

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"election model: the timeout must be positive, not {self.timeout_s}")
        if self.survivors < 1:
            raise ValueError(f"election model: need at least one survivor, not {self.survivors}")
        for name in ("heartbeat_s", "poll_s", "rounds_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"election model: {name} must be ≥ 0, not {getattr(self, name)}")

    @property
    def low_s(self) -> float:
        """The earliest possible time: T − h + R."""
        return self.timeout_s - self.heartbeat_s + self.rounds_s

    @property
    def high_s(self) -> float:
        """The latest possible time: 2T + p + R."""
        return 2 * self.timeout_s + self.poll_s + self.rounds_s

    def _min_cdf(self, x: float) -> tuple[float, float, float]:
        """P(min X ≤ x) = 1 − ((2T − x) / T) ** k in [T, 2T], with its first and second
        antiderivatives (zero below T). Small, hence exact, at the low end."""
        t, k = self.timeout_s, self.survivors
        if x <= t:
            return 0.0, 0.0, 0.0
        left = _left(x, t)
        return (1.0 - left**k,
                (x - t) - t / (k + 1) * (1.0 - left ** (k + 1)),
                (x - t) ** 2 / 2 - t / (k + 1) * (x - t)
                + t * t / ((k + 1) * (k + 2)) * (1.0 - left ** (k + 2)))

    def _min_survival(self, x: float) -> tuple[float, float, float]:
        """P(min X > x) = ((2T − x) / T) ** k, with its first and second antiderivatives
        (zero above 2T). Small, hence exact, at the high end."""
        t, k = self.timeout_s, self.survivors
        if x >= t:
            left = _left(x, t)
            return (left**k, -t / (k + 1) * left ** (k + 1),
                    t * t / ((k + 1) * (k + 2)) * left ** (k + 2))
        below = t - x
        return (1.0, -(below + t / (k + 1)),
                t * t / ((k + 1) * (k + 2)) + below**2 / 2 + t / (k + 1) * below)

    def _averaged(self, g: Callable[[float], tuple[float, float, float]], x: float) -> float:
        """E[g(x + U − P)], U uniform in [0, h), P in [0, p), from g's antiderivatives:
        averaging over a uniform window is a difference of the next antiderivative."""
        h, p = self.heartbeat_s, self.poll_s
        if h > 0 and p > 0:
            return (g(x + h)[2] - g(x + h - p)[2] - g(x)[2] + g(x - p)[2]) / (h * p)
        if h > 0:
            return (g(x + h)[1] - g(x)[1]) / h
        if p > 0:
            return (g(x)[1] - g(x - p)[1]) / p
        return g(x)[0]

    def cdf(self, x_s: float) -> float:
        """P(elected ≤ x): the min's CDF averaged over the heartbeat offset and the poll.

        The lower half of the support is computed from the CDF, the upper from the
        survival function, where each is small: a difference of large antiderivatives
        would lose the digits that keep the curve rising."""
        if x_s <= self.low_s:
            return 0.0
        if x_s >= self.high_s:
            return 1.0
        x = x_s - self.rounds_s
        if x_s < (self.low_s + self.high_s) / 2:
            value = self._averaged(self._min_cdf, x)
        else:
            value = 1.0 - self._averaged(self._min_survival, x)
        return min(1.0, max(0.0, value))

    def quantile(self, fraction: float) -> float:
        """The time below which ``fraction`` (0 < fraction < 1) of elections end."""
        if not 0 < fraction < 1:
            raise ValueError(f"election model: a quantile needs 0 < fraction < 1, not {fraction}")
        low, high = self.low_s, self.high_s
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2
            if self.cdf(middle) < fraction:
                low = middle
            else:
                high = middle
        return (low + high) / 2

    @property
    def median_s(self) -> float:
        """The model's median."""
        return self.quantile(0.5)

    @property
    def p95_s(self) -> float:
        """The model's 95th percentile."""
        return self.quantile(0.95)

    def curve(self, points: int = 400) -> tuple[list[float], list[float]]:
        """(x, CDF) across the support and a little beyond, for a chart."""
        margin = 0.05 * (self.high_s - self.low_s)
        start, stop = self.low_s - margin, self.high_s + margin
        xs = [start + (stop - start) * i / (points - 1) for i in range(points)]
        return xs, [self.cdf(x) for x in xs]


def _left(x: float, timeout_s: float) -> float:
    """(2T − x) / T clamped to [0, 1]: the share of the timeout window still ahead of x."""
    return min(1.0, max(0.0, (2 * timeout_s - x) / timeout_s))


# -- the Kolmogorov–Smirnov test ---------------------------------------------------------------

@dataclass(frozen=True)
class KSTest:
    """A one-sample Kolmogorov–Smirnov test: the statistic ``d`` (largest distance between
    the empirical and the model CDF, reached at ``at``), its p-value, the sample size and
    how the p-value was computed."""

    d: float
    p: float
    n: int
    at: float
    method: str


def ks_statistic(values: Sequence[float], cdf: Callable[[float], float]) -> tuple[float, float]:
    """(D, where it is reached): the largest distance between the empirical CDF of
    ``values`` and ``cdf``, on either side of each step."""
    data = sorted(float(v) for v in values)
    n = len(data)
    if n == 0:
        raise ValueError("Kolmogorov–Smirnov: no values")
    d, at = 0.0, data[0]
    for i, x in enumerate(data):
        f = cdf(x)
        gap = max((i + 1) / n - f, f - i / n)
        if gap > d:
            d, at = gap, x
    return d, at


def ks_test(values: Sequence[float], cdf: Callable[[float], float]) -> KSTest:
    """Test ``values`` against the continuous distribution ``cdf`` (two-sided)."""
    d, at = ks_statistic(values, cdf)
    n = len(values)
    return KSTest(d, kolmogorov_p(d, n), n, at, ks_method(d, n))


def ks_method(d: float, n: int) -> str:
    """How :func:`kolmogorov_p` computes the p-value of D = d for n values."""
    if n > KS_EXACT_MAX_N:
        return "asymptotic (Kolmogorov series, Stephens's correction)"
    if n * d * d > _TAIL_S and d < 1:
        return "Marsaglia–Tsang–Wang's tail approximation (p < 1e-6)"
    return "exact (Marsaglia–Tsang–Wang)"


def kolmogorov_p(d: float, n: int) -> float:
    """P(D_n ≥ d) for n values from the model: the two-sided KS p-value.

    Up to :data:`KS_EXACT_MAX_N` values it is exact, by Marsaglia, Tsang & Wang, "Evaluating
    Kolmogorov's distribution", J. Stat. Software 8(18), 2003 (the n-th power of an
    m × m matrix, m = 2⌊nd⌋ + 1), except far in the right tail (n d² > 7.24, p < 1e-6),
    where that paper's own approximation is used. Above, the asymptotic Kolmogorov series
    2 Σ (−1)^(j−1) exp(−2 j² λ²) with Stephens's λ = (√n + 0.12 + 0.11/√n) d.
    """
    if n < 1:
        raise ValueError(f"Kolmogorov–Smirnov: need n ≥ 1, not {n}")
    if d <= 1 / (2 * n):
        return 1.0
    if d >= 1:
        return 0.0
    s = n * d * d
    if n > KS_EXACT_MAX_N:
        return _kolmogorov_series((math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d)
    if s > _TAIL_S:
        return min(1.0, 2 * math.exp(-(2.000071 + 0.331 / math.sqrt(n) + 1.409 / n) * s))
    return min(1.0, max(0.0, 1.0 - _mtw_cdf(d, n)))


def ks_critical(n: int, alpha: float = 0.05) -> float:
    """The smallest D that the test rejects at level ``alpha`` with n values."""
    low, high = 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        if kolmogorov_p(middle, n) > alpha:
            low = middle
        else:
            high = middle
    return high


def _kolmogorov_series(lam: float) -> float:
    """Q_KS(λ) = 2 Σ_{j≥1} (−1)^(j−1) exp(−2 j² λ²), the limit of P(√n D_n ≥ λ)."""
    if lam < 0.2:
        return 1.0
    total, sign = 0.0, 1.0
    for j in range(1, 101):
        term = sign * math.exp(-2 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-16:
            break
        sign = -sign
    return min(1.0, max(0.0, 2 * total))


_SCALE = 1e140
_SCALE_EXPONENT = 140


def _mtw_cdf(d: float, n: int) -> float:
    """P(D_n < d), Marsaglia, Tsang & Wang (2003), their algorithm transcribed."""
    k = int(n * d) + 1
    m = 2 * k - 1
    h = k - n * d
    matrix = [[1.0 if i - j + 1 >= 0 else 0.0 for j in range(m)] for i in range(m)]
    for i in range(m):
        matrix[i][0] -= h ** (i + 1)
        matrix[m - 1][i] -= h ** (m - i)
    if 2 * h - 1 > 0:
        matrix[m - 1][0] += (2 * h - 1) ** m
    for i in range(m):
        for j in range(m):
            if i - j + 1 > 0:
                matrix[i][j] /= math.factorial(i - j + 1)
    power, exponent = _matrix_power(matrix, 0, n)
    s = power[k - 1][k - 1]
    for i in range(1, n + 1):
        s = s * i / n
        if s < 1 / _SCALE:
            s *= _SCALE
            exponent -= _SCALE_EXPONENT
    return s * 10.0 ** exponent


def _matrix_power(matrix: list[list[float]], exponent: int, n: int
                  ) -> tuple[list[list[float]], int]:
    """matrix ** n as (mantissa matrix, decimal exponent), rescaled to stay finite."""
    if n == 1:
        return matrix, exponent
    half, half_exponent = _matrix_power(matrix, exponent, n // 2)
    result, result_exponent = _multiply(half, half), 2 * half_exponent
    if n % 2:
        result, result_exponent = _multiply(matrix, result), exponent + result_exponent
    middle = len(result) // 2
    if result[middle][middle] > _SCALE:
        result = [[value / _SCALE for value in row] for row in result]
        result_exponent += _SCALE_EXPONENT
    return result, result_exponent


def _multiply(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    columns = list(zip(*b, strict=True))
    return [[math.fsum(x * y for x, y in zip(row, column, strict=True)) for column in columns]
            for row in a]
