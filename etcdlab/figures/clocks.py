"""Pure clock logic for the time questions: Lamport clocks, NTP's four-timestamp offset
estimate, Marzullo's intersection algorithm and libfaketime's clock model.

Nothing here talks to a cluster; every function is unit-tested on hand-made timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# -- Lamport clocks -----------------------------------------------------------------------


class LamportClock:
    """Lamport's logical clock of one process (Lamport 1978, rules IR1 and IR2).

    Every local or send event ticks the clock by one; a receive sets it to
    ``max(own, received) + 1``. Events are totally ordered by ``(clock, process id)``.
    """

    def __init__(self, process_id: int, value: int = 0) -> None:
        self.process_id = process_id
        self.value = value

    def tick(self) -> int:
        """A local or send event: C = C + 1; returns the event's timestamp."""
        self.value += 1
        return self.value

    def receive(self, received: int) -> int:
        """A receive event carrying ``received``: C = max(C, received) + 1."""
        self.value = max(self.value, received) + 1
        return self.value

    def stamp(self) -> tuple[int, int]:
        """The current (clock, process id) pair, the key of the total order."""
        return self.value, self.process_id


def total_order_ties(events: Iterable[Mapping[str, Any]]) -> int:
    """Pairs of events with the same (clock, process) stamp: zero if the order is total."""
    seen: dict[tuple[int, int], int] = {}
    for event in events:
        key = (event["clock"], event["process"])
        seen[key] = seen.get(key, 0) + 1
    return sum(count * (count - 1) // 2 for count in seen.values())


def vector_clocks(events: Sequence[Mapping[str, Any]]) -> dict[tuple[int, int], dict[int, int]]:
    """Vector clocks of logged events, for checking the Lamport clocks against causality.

    ``events`` are dicts with ``process``, ``seq`` (position in its process, from 0),
    ``kind`` ("local", "send" or "receive") and ``msg`` (message id for send/receive).
    A receive whose send is not in the log is treated as a local event. Returns
    ``{(process, seq): {process: count}}``.
    """
    by_process: dict[int, list[Mapping[str, Any]]] = {}
    for event in events:
        by_process.setdefault(event["process"], []).append(event)
    for log in by_process.values():
        log.sort(key=lambda e: e["seq"])
    sends = {e["msg"]: (e["process"], e["seq"]) for e in events if e["kind"] == "send"}
    clocks: dict[tuple[int, int], dict[int, int]] = {}
    position = {p: 0 for p in by_process}
    remaining = sum(len(log) for log in by_process.values())
    while remaining:
        progressed = False
        for process, log in by_process.items():
            while position[process] < len(log):
                event = log[position[process]]
                vector = dict(clocks[(process, event["seq"] - 1)]) if position[process] else {}
                if event["kind"] == "receive" and event["msg"] in sends:
                    source = sends[event["msg"]]
                    if source not in clocks:
                        break  # its send is not computed yet: another process first
                    for other, count in clocks[source].items():
                        vector[other] = max(vector.get(other, 0), count)
                vector[process] = vector.get(process, 0) + 1
                clocks[(process, event["seq"])] = vector
                position[process] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            raise ValueError("the event log has a causal cycle (a receive before its send)")
    return clocks


def happened_before(a: Mapping[int, int], b: Mapping[int, int]) -> bool:
    """Whether the event with vector ``a`` happened before the one with vector ``b``."""
    return a != b and all(count <= b.get(process, 0) for process, count in a.items())


def clock_condition_check(events: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Check Lamport's clock condition, a → b ⇒ C(a) < C(b), over every causal pair.

    Returns the number of causally related pairs, of those that violate the condition,
    of concurrent pairs, and of concurrent pairs with equal clocks (their order is
    decided only by the process id).
    """
    vectors = vector_clocks(events)
    stamped = [(vectors[(e["process"], e["seq"])], e["clock"]) for e in events]
    causal = violations = concurrent = equal_concurrent = 0
    for i, (vector_a, clock_a) in enumerate(stamped):
        for vector_b, clock_b in stamped[i + 1:]:
            if happened_before(vector_a, vector_b):
                causal += 1
                violations += clock_a >= clock_b
            elif happened_before(vector_b, vector_a):
                causal += 1
                violations += clock_b >= clock_a
            else:
                concurrent += 1
                equal_concurrent += clock_a == clock_b
    return {"causal_pairs": causal, "violations": violations,
            "concurrent_pairs": concurrent, "concurrent_equal_clock": equal_concurrent}


# -- NTP offset estimate -------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetEstimate:
    """One four-timestamp exchange: the peer's offset, the round trip and the error bound.

    ``offset`` is peer clock minus own clock; the true offset lies within
    ``offset ± error`` (half the round trip), whatever the split of the delay.
    """

    offset: float
    delay: float

    @property
    def error(self) -> float:
        """Half the round-trip delay: the bound on the estimate's error."""
        return self.delay / 2.0

    @property
    def low(self) -> float:
        """Lower end of the interval that contains the true offset."""
        return self.offset - self.error

    @property
    def high(self) -> float:
        """Upper end of the interval that contains the true offset."""
        return self.offset + self.error


def ntp_offset(t1: float, t2: float, t3: float, t4: float) -> OffsetEstimate:
    """NTP's estimate from one exchange (RFC 5905 §8).

    t1: request sent (own clock), t2: request received (peer's clock), t3: reply sent
    (peer's clock), t4: reply received (own clock). offset = ((t2 − t1) + (t3 − t4)) / 2,
    delay = (t4 − t1) − (t3 − t2).
    """
    offset = ((t2 - t1) + (t3 - t4)) / 2.0
    delay = (t4 - t1) - (t3 - t2)
    return OffsetEstimate(offset, max(delay, 0.0))


# -- Marzullo's intersection algorithm -------------------------------------------------------


@dataclass(frozen=True)
class Intersection:
    """The interval that the most sources agree on, and how many agree."""

    count: int
    low: float
    high: float

    @property
    def midpoint(self) -> float:
        """The centre of the agreed interval: the best estimate of the true value."""
        return (self.low + self.high) / 2.0


def marzullo(intervals: Iterable[tuple[float, float]]) -> Intersection:
    """Marzullo's algorithm: the smallest interval contained in the most source intervals.

    Each source is a closed interval ``(low, high)``; touching intervals overlap. Returns
    the count of sources that agree and the first (lowest) interval of maximal overlap.
    """
    edges: list[tuple[float, int]] = []
    for low, high in intervals:
        if high < low:
            raise ValueError(f"interval ({low}, {high}) has its high end below its low end")
        edges.append((low, -1))  # starts sort before ends at the same point: closed intervals
        edges.append((high, +1))
    if not edges:
        return Intersection(0, 0.0, 0.0)
    edges.sort()
    best, count = 0, 0
    best_low = best_high = edges[0][0]
    for i, (point, kind) in enumerate(edges):
        count -= kind
        if count > best:
            best = count
            best_low = point
            best_high = edges[i + 1][0]
    return Intersection(best, best_low, best_high)


def classify_clocks(
    estimates: Mapping[str, tuple[float, float]], threshold: float,
    population: int | None = None,
) -> dict[str, Any]:
    """One observer's verdict on every clock it sees, by a Marzullo majority vote.

    ``estimates`` maps each clock (the observer's own included, as ``(0, 0)``) to its
    offset interval relative to the observer. The majority interval is the intersection
    that more than half of the clocks agree on (of ``population``, the number of clocks
    there are, which defaults to the number of estimates: a peer that did not answer
    still counts); a clock is faulty when its interval lies
    more than ``threshold`` away from it. With no majority, nothing is decided
    (``decided`` False, no clock flagged). ``deviation`` is each clock's offset from the
    majority's midpoint.
    """
    intersection = marzullo(estimates.values())
    decided = intersection.count > (population or len(estimates)) // 2
    centre = intersection.midpoint
    deviation = {name: (low + high) / 2.0 - centre for name, (low, high) in estimates.items()}
    faulty = []
    if decided:
        for name, (low, high) in estimates.items():
            gap = max(low - intersection.high, intersection.low - high, 0.0)
            if gap > threshold:
                faulty.append(name)
    return {"decided": decided, "agree": intersection.count, "low": intersection.low,
            "high": intersection.high, "faulty": sorted(faulty), "deviation": deviation}


# -- libfaketime's clock model ---------------------------------------------------------------


def drift_rate(drift_ms_per_min: float) -> float:
    """The clock rate of a clock that gains ``drift_ms_per_min`` per real minute."""
    return 1.0 + drift_ms_per_min / 60_000.0


def rate_ppm(rate: float) -> float:
    """A clock rate as parts per million fast (positive) or slow (negative)."""
    return (rate - 1.0) * 1e6


def faked_offset(offset: float, rate: float, started: float, real: float) -> float:
    """How far a libfaketime clock (``FAKETIME="+offset xrate"``) is ahead at real time.

    libfaketime starts the faked clock at ``real + offset`` when the process starts and
    runs it ``rate`` times as fast: faked − real = offset + (rate − 1)(real − started).
    """
    return offset + (rate - 1.0) * (real - started)


def continued_offset(offset: float, rate: float, new_rate: float, started: float,
                     at: float) -> float:
    """The offset that keeps a libfaketime clock continuous when its rate changes at real
    time ``at``: libfaketime applies the rate to the whole time since ``started``, so
    offset' = offset + (rate − new_rate)(at − started) makes both specs read the same at
    ``at``."""
    return offset + (rate - new_rate) * (at - started)


def faked_offset_piecewise(offset: float, rate: float, started: float, real: float,
                           changes: Sequence[tuple[float, float]] = ()) -> float:
    """:func:`faked_offset` for a clock whose rate changed, continuously (as
    :func:`continued_offset` keeps it), at each ``(real time, new rate)`` of ``changes``
    (in time order); without changes the same as :func:`faked_offset`."""
    ahead, since, current = faked_offset(offset, rate, started, started), started, rate
    for at, new_rate in changes:
        if real < at:
            break
        ahead += (current - 1.0) * (at - since)
        since, current = at, new_rate
    return ahead + (current - 1.0) * (real - since)


def real_time(faked: float, offset: float, rate: float, started: float) -> float:
    """The real time at which a libfaketime clock reads ``faked`` (inverse of the model)."""
    return (faked - offset + (rate - 1.0) * started) / rate
