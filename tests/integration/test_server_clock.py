"""Q8's server-clock part on the test lab, with its quick parameters: the leader's etcd
clock 1.5 × real time reaches etcd (its own log stamps), leases are revoked early by
TTL × (1 − 1/rate), a new leader with a true clock refreshes them, and nothing is left
faked afterwards. Run through the part itself (the lease-drift clients it sits beside
need libfaketime on this machine)."""

from __future__ import annotations

from etcdlab.faults import Faults
from etcdlab.questions.findings import by_id
from etcdlab.questions.q08_lease_drift import run as lease_drift
from etcdlab.questions.q08_lease_drift import server_clock_analysis as server_clock
from etcdlab.questions.q08_lease_drift.server_clock_run import run
from etcdlab.questions.runner import Context


def test_the_fast_leader_clock_expires_leases_early_as_predicted(lab):
    cluster = lab.cluster
    faults = Faults(cluster)
    params = lease_drift.EXPERIMENT.params(quick=True)
    ctx = Context(cluster=cluster, faults=faults, params=params)
    try:
        run(ctx)
    finally:
        steps = faults.heal()
    assert all(step.ok for step in steps), steps
    record = ctx.samples["server_clock"]
    assert record["error"] is None and record["skipped"] is None, record
    part = server_clock.summarize(record)
    assert part["reached_etcd"] is True, part["log"]
    assert part["early_agrees"] is True, (part["early_expiry_s"],
                                          part["predicted_early_expiry_s"])
    found = by_id(server_clock.findings(part))
    assert found["server-clock-new-leader-refreshes"].holds is True
    assert found["server-clock-fencing"].holds is True
    assert server_clock.course_finding(part).holds is True
    assert not any(faults.etcd_clock_faked(name) for name in cluster.names)
    assert faults.journal.open_entries() == []
