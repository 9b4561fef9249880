"""The etcd clock fault on the test lab: one member's etcd reads a clock running 2 × real
time (its own log time stamps say so), the others keep the true clock, anything but the
member's etcd is refused, and after the process that injected it is killed (SIGKILL),
``invoke heal`` restarts the member with a true clock."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from etcdlab.errors import LabError
from etcdlab.etcd.transport import member
from etcdlab.faults import ETCD_BINARY, ETCD_CLOCK_SOURCE, Faults
from etcdlab.questions.q08_lease_drift.server_clock_analysis import log_rate
from etcdlab.questions.q08_lease_drift.server_clock_run import LOG_MARK
from tests.integration.conftest import ROOT

RATE = 2.0

# Run as a child that injects, then is killed before anything heals (a kill -9 of a run).
_KILLED_INJECTOR = """
import json, os, signal, sys
from etcdlab.lab.cluster import Cluster
from etcdlab.faults import Faults
from tests.integration.conftest import lab_config, lab_env
answer = Faults(Cluster(lab_config(lab_env()[1]))).skew_etcd_clock(sys.argv[1], 2.0)
print(json.dumps(answer), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _log_stamped_probes(cluster, name: str, count: int, gap_s: float) -> tuple[list, list]:
    """Defragment the member ``count`` times: the real time of each call, and the log line
    each wrote with etcd's own time stamp."""
    probes = []
    with member(cluster, name, timeout=30) as etcd:
        for index in range(count):
            if index:
                time.sleep(gap_s)
            before = time.time()
            etcd.defragment(timeout=30)
            probes.append({"before": before, "after": time.time()})
    text = cluster.lab.service_log(name, "etcd", lines=2000)
    return probes, [line for line in text.splitlines() if LOG_MARK in line][-count:]


def _injector(cluster, name: str, *args: str) -> dict:
    _code, out = cluster.lab.exec(name, ["python3", "-c", ETCD_CLOCK_SOURCE, *args],
                                  check=False)
    return json.loads(out.strip().splitlines()[-1])


def test_a_members_etcd_runs_at_the_rate_and_heal_after_a_kill_restores_it(lab):
    cluster = lab.cluster
    faults = Faults(cluster)
    name = cluster.names[-1]
    injected = subprocess.run([sys.executable, "-c", _KILLED_INJECTOR, name], cwd=ROOT,
                              env=lab.env, capture_output=True, text=True, timeout=120)
    assert injected.returncode == -9, injected.stderr
    answer = json.loads(injected.stdout.strip().splitlines()[-1])
    assert answer["rate"] == RATE and answer["threads"] > 1
    assert answer["step_bound_ns"] < 50_000_000  # the clock's jump at injection is this small
    try:
        assert faults.etcd_clock_faked(name)
        assert not any(faults.etcd_clock_faked(n) for n in cluster.names if n != name)
        assert [e.kind for e in faults.journal.open_entries()] == ["etcd-clock"]

        probes, lines = _log_stamped_probes(cluster, name, 3, 2.0)
        measured = log_rate(probes, lines, answer["t0_wall"])
        assert measured["n"] == 3
        assert measured["rate"] == pytest.approx(RATE, abs=0.05), measured

        # A second injection is refused, with one line, and leaves the member as it was.
        with pytest.raises(LabError, match="already faked") as refused:
            faults.skew_etcd_clock(name, RATE)
        assert "\n" not in str(refused.value)
        assert faults.etcd_clock_faked(name) and cluster.healthy(name)
        # Only the member's etcd binary is accepted.
        assert "refused" in _injector(cluster, name, "--binary", ETCD_BINARY, "--pid", "1",
                                      "--rate", "2")["error"]
        assert "error" in _injector(cluster, name, "--binary", "/usr/sbin/chronyd",
                                    "--rate", "2")
    finally:
        healed = lab.invoke("heal")
    assert "etcd restarted with the true clock" in " ".join(healed.stdout.split()), \
        healed.stdout
    assert not faults.etcd_clock_faked(name)
    assert faults.journal.open_entries() == []
    cluster.wait_healthy(timeout=60)
    probes, lines = _log_stamped_probes(cluster, name, 2, 2.0)
    assert log_rate(probes, lines, None)["rate"] == pytest.approx(1.0, abs=0.05)


def test_a_rate_out_of_range_is_one_error_and_nothing_open(lab):
    faults = Faults(lab.cluster)
    with pytest.raises(LabError, match="outside") as refused:
        faults.skew_etcd_clock(lab.cluster.names[0], 0.0)
    assert "\n" not in str(refused.value)
    assert not faults.etcd_clock_faked(lab.cluster.names[0])
    assert faults.journal.open_entries() == []
