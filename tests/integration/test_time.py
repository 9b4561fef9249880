"""Q4 lamport, Q7 ntp-isolation, Q8 lease-drift and Q9 faulty-clock against the real lab.

Each runs through the real ``invoke experiment NAME --quick`` (about 5 minutes in all,
most of it ntp-isolation). Afterwards the lab must be healthy, and a second provision
must change nothing: heal() put chrony's files back as the role wrote them.
"""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("time")


def run_quick(lab, results, name: str) -> dict:
    """``invoke experiment NAME --quick`` into ``results``; the saved result as JSON."""
    lab.invoke("experiment", name, "--quick", "--results", str(results))
    result = json.loads((results / f"{name}.json").read_text())
    assert result["status"] == "ok", result["error"]
    return result


def test_lamport_clock_condition_holds_without_ties_and_cas_loses_nothing(lab, results):
    summary = run_quick(lab, results, "lamport")["summary"]
    assert summary["messages"] > 0 and summary["causal_pairs"] > 0
    assert summary["delivered"] + summary["unknown_sends"] >= summary["messages"]
    assert summary["clock_condition_violations"] == 0
    assert summary["total_order_ties"] == 0
    assert summary["shared_key"]["cas_lost_updates"] == 0
    assert summary["shared_key"]["cas_acknowledged"] > 0


def test_lease_drift_fencing_rejects_every_stale_write(lab, results):
    # The quick run: one 60 s trial at 500 ms/min, with a 3 s paused holder inside it.
    summary = run_quick(lab, results, "lease-drift")["summary"]
    assert summary["fenced_stale_writes_accepted"] == 0
    assert summary["contender_writes_ok"] is True
    # The slow clock believes in its lease longer than the fast one, by about 2 × drift × TTL.
    assert summary["fast"]["belief_error_s"] < summary["slow"]["belief_error_s"]
    assert summary["fast"]["stale_fenced_rejected"] == 0  # a fast clock gives up early
    assert summary["keepalive"]["kept_alive"] is True
    # The paused holder (no drift, stopped past its TTL): the lock passed to the contender
    # while it was stopped; after SIGCONT etcd took its plain puts and refused its fenced
    # writes, judged by revision.
    for paused in summary["paused"]:
        assert paused["stopped_seen"] is True
        assert paused["revoked_during_pause"] is True, paused
        assert paused["contender_during_pause"] is True, paused
        assert paused["contender_token"] > paused["revoked_revision"] > paused["token"]
        assert paused["fenced_accepted"] == 0
        assert paused["unfenced_accepted"] + paused["unknown"] >= 1
        assert paused["fenced_rejected"] + paused["unknown"] >= 1


def test_faulty_clock_flags_exactly_the_injected_nodes(lab, results):
    summary = run_quick(lab, results, "faulty-clock")["summary"]
    for run in ("offset", "drift", "two_faulty"):
        assert summary[run]["flagged"] == summary[run]["injected_faulty"], summary[run]
        assert summary[run]["false_positives"] == 0
    assert len(summary["two_faulty"]["injected_faulty"]) == 2
    assert len(summary["two_faulty"]["agents"]) == 5


def test_ntp_isolation_records_both_runs(lab, results):
    result = run_quick(lab, results, "ntp-isolation")
    summary = result["summary"]
    for run in ("iburst", "no_iburst"):
        figures = summary[run]
        assert figures["resync_s"] is not None, figures
        # The first offset chronyd measured after reconnection, in its own time scale
        # (chronyd -x): back within a millisecond of the server after a short cut.
        assert figures["first_offset_after_ms"] is not None, figures
        assert abs(figures["first_offset_after_ms"]) < 1.0, figures
        # chrony's estimate of the injected 50 ppm ends up in the driftfile.
        assert abs(figures["driftfile_ppm"] - result["params"]["drift_ppm"]) < 5, figures
        assert figures["step_refused"] >= 1  # makestep under -x: logged, refused
        # The second part: restarted with that driftfile it settles; then, cut off while
        # the clock runs faster, chronyd's true error grows at about the added rate (it
        # keeps the frequency it learnt) and is corrected after the reconnection.
        assert figures["settle_with_driftfile_s"] is not None, figures
        holdover = figures["holdover"]
        extra = result["params"]["holdover_drift_ppm"]
        assert abs(holdover["slope_ppm"] - extra) < 0.2 * extra, holdover
        assert holdover["corrected_s"] is not None, holdover
    assert any("iburst" in line for line in result["samples"]["runs"]["iburst"]["conf"])
    assert not any("iburst" in line for line in result["samples"]["runs"]["no_iburst"]["conf"])
    # The client without iburst repeats the second part with `burst` on its server line:
    # the same excursion, its error again corrected after the reconnection.
    burst_run = result["samples"]["runs"]["no_iburst"]["burst_run"]
    assert all(line.split()[-1] == "burst" for line in burst_run["conf"]), burst_run["conf"]
    burst = summary["no_iburst"]["burst_holdover"]
    extra = result["params"]["holdover_drift_ppm"]
    assert abs(burst["slope_ppm"] - extra) < 0.2 * extra, burst
    assert burst["corrected_s"] is not None, burst


def test_clock_faults_are_healed_back_to_the_roles_state(lab, results):
    nodes = lab.status_json()
    assert all(n["healthy"] for n in nodes), nodes
    again = lab.invoke("provision")
    for name in lab.config.node_names:
        line = next(x for x in again.stdout.splitlines() if x.strip().startswith(f"{name} :"))
        assert "changed=0" in line, line
