"""etcd's lease arithmetic: pure numbers, no cluster (a TTL's text is
:func:`etcdlab.figures.units.fmt_ttl`)."""

from __future__ import annotations

import math


def min_lease_ttl_s(election_timeout_ms: float, heartbeat_ms: float) -> int:
    """etcd's minimum lease TTL: 1.5 election timeouts, in whole ticks, rounded up to whole
    seconds (etcdserver: ``minTTL = (3 × ElectionTicks / 2) × heartbeat``, then
    ``math.Ceil``); a shorter TTL is granted as this minimum. 1000/100 ms → 2 s."""
    ticks = int(election_timeout_ms // heartbeat_ms)
    return math.ceil((3 * ticks) // 2 * heartbeat_ms / 1000.0)
