"""Pure clock logic (Lamport rules, offset estimate, Marzullo) and the time experiments'
summaries, on hand-made timestamps and samples."""

import pytest

from etcdlab import faults
from etcdlab.figures import clocks
from etcdlab.questions.q04_lamport import run as lamport
from etcdlab.questions.q07_ntp_isolation import run as ntp_isolation
from etcdlab.questions.q08_lease_drift import run as lease_drift
from etcdlab.questions.q09_faulty_clock import run as faulty_clock
from tests.unit.report_helpers import report_text

# -- Lamport clocks ----------------------------------------------------------------------------


def test_lamport_rules_tick_and_receive():
    clock = clocks.LamportClock(process_id=2)
    assert clock.tick() == 1  # local event
    assert clock.tick() == 2  # send
    assert clock.receive(7) == 8  # max(2, 7) + 1
    assert clock.receive(3) == 9  # max(8, 3) + 1: never goes back
    assert clock.stamp() == (9, 2)


def _event(process, seq, kind, clock, msg=None):
    return {"process": process, "seq": seq, "kind": kind, "clock": clock, "msg": msg}


def test_clock_condition_holds_for_a_correct_log_and_counts_concurrency():
    # P1: send m1 (1), local (2).  P2: local (1), receive m1 (2).
    events = [_event(1, 0, "send", 1, "m1"), _event(1, 1, "local", 2),
              _event(2, 0, "local", 1), _event(2, 1, "receive", 2, "m1")]
    check = clocks.clock_condition_check(events)
    # causal: s→local(P1), s→recv, local(P2)→recv; concurrent: the other three pairs.
    assert check == {"causal_pairs": 3, "violations": 0, "concurrent_pairs": 3,
                     "concurrent_equal_clock": 2}
    assert clocks.total_order_ties(events) == 0


def test_clock_condition_violation_and_ties_are_found():
    # A receive that did not take max(C, received) + 1: its clock is not above the send's.
    events = [_event(1, 0, "send", 5, "m1"), _event(2, 0, "receive", 1, "m1"),
              _event(3, 0, "local", 1), _event(3, 1, "local", 1)]
    check = clocks.clock_condition_check(events)
    assert check["violations"] == 2  # send→receive, and P3's two events in process order
    assert clocks.total_order_ties(events) == 1


def test_vector_clocks_follow_messages_across_processes():
    events = [_event(1, 0, "send", 1, "a"), _event(2, 0, "receive", 2, "a"),
              _event(2, 1, "send", 3, "b"), _event(3, 0, "receive", 4, "b")]
    vectors = clocks.vector_clocks(events)
    assert vectors[(3, 0)] == {1: 1, 2: 2, 3: 1}
    assert clocks.happened_before(vectors[(1, 0)], vectors[(3, 0)])
    assert not clocks.happened_before(vectors[(3, 0)], vectors[(1, 0)])


def test_a_receive_before_its_send_is_a_cycle():
    events = [_event(1, 0, "receive", 1, "b"), _event(1, 1, "send", 2, "a"),
              _event(2, 0, "receive", 1, "a"), _event(2, 1, "send", 2, "b")]
    with pytest.raises(ValueError, match="causal cycle"):
        clocks.vector_clocks(events)


# -- offset estimate and Marzullo ----------------------------------------------------------------


def test_ntp_offset_with_symmetric_delay_is_exact():
    # The peer is 0.8 s ahead; 10 ms each way; the peer takes 1 ms to answer.
    estimate = clocks.ntp_offset(t1=100.000, t2=100.810, t3=100.811, t4=100.021)
    assert estimate.offset == pytest.approx(0.8)
    assert estimate.delay == pytest.approx(0.020)
    assert estimate.error == pytest.approx(0.010)


def test_ntp_offset_bound_contains_the_truth_with_asymmetric_delay():
    # True offset −0.3 s; 2 ms out, 18 ms back: the estimate is off, within half the RTT.
    t1 = 50.0
    t2 = t1 + 0.002 - 0.3
    t3 = t2 + 0.001
    t4 = t3 + 0.3 + 0.018
    estimate = clocks.ntp_offset(t1, t2, t3, t4)
    assert estimate.offset != pytest.approx(-0.3)
    assert estimate.low <= -0.3 <= estimate.high
    assert estimate.delay == pytest.approx(0.020)


def test_marzullo_finds_the_interval_most_sources_share():
    result = clocks.marzullo([(8, 12), (11, 13), (10, 12)])
    assert (result.count, result.low, result.high) == (3, 11, 12)
    result = clocks.marzullo([(8, 9), (10, 12), (11, 13), (14, 15)])
    assert (result.count, result.low, result.high) == (2, 11, 12)
    assert result.midpoint == 11.5


def test_marzullo_closed_intervals_that_touch_overlap():
    assert clocks.marzullo([(0, 1), (1, 2)]).count == 2
    assert clocks.marzullo([]).count == 0
    with pytest.raises(ValueError):
        clocks.marzullo([(2, 1)])


def test_classify_flags_the_clock_far_from_the_majority():
    # From a correct observer: peer b is 0.8 s ahead, c is right; ±1 ms each.
    verdict = clocks.classify_clocks({"a": (0, 0), "b": (0.799, 0.801), "c": (-0.001, 0.001)},
                                     threshold=0.5)
    assert verdict["decided"] and verdict["faulty"] == ["b"]
    assert verdict["deviation"]["b"] == pytest.approx(0.8)
    # From the faulty clock itself: the other two agree without it, so it flags itself.
    verdict = clocks.classify_clocks({"b": (0, 0), "a": (-0.801, -0.799), "c": (-0.801, -0.799)},
                                     threshold=0.5)
    assert verdict["faulty"] == ["b"]
    # Below the threshold nobody is flagged.
    verdict = clocks.classify_clocks({"a": (0, 0), "b": (0.3, 0.31), "c": (0, 0.001)}, 0.5)
    assert verdict["faulty"] == []


def test_classify_decides_nothing_without_a_majority():
    # Three clocks that all disagree: no interval is shared by two of them.
    verdict = clocks.classify_clocks({"a": (0, 0), "b": (1, 1.01), "c": (-1, -0.99)}, 0.5)
    assert not verdict["decided"] and verdict["faulty"] == []
    # Two answering clocks out of five can never be a majority.
    verdict = clocks.classify_clocks({"a": (0, 0), "b": (0, 0.001)}, 0.5, population=5)
    assert not verdict["decided"]


def test_faketime_model_and_its_inverse():
    rate = clocks.drift_rate(500.0)  # 500 ms per minute fast
    assert clocks.rate_ppm(rate) == pytest.approx(8333.33, rel=1e-4)
    assert clocks.faked_offset(0.0, rate, started=100.0, real=160.0) == pytest.approx(0.5)
    assert clocks.faked_offset(0.8, 1.0, started=100.0, real=500.0) == pytest.approx(0.8)
    faked = 160.0 + clocks.faked_offset(0.2, rate, 100.0, 160.0)
    assert clocks.real_time(faked, 0.2, rate, 100.0) == pytest.approx(160.0)


def test_faketime_environment_and_chrony_server_lines():
    env = faults.faketime_env(10.0, 1.00005)
    assert env["FAKETIME"] == "+10.000000 x1.000050000"
    assert env["LD_PRELOAD"].endswith("libfaketime.so.1")
    from_file = faults.faketime_env(spec_file="/run/spec")
    assert from_file["FAKETIME_TIMESTAMP_FILE"] == "/run/spec" and "FAKETIME" not in from_file
    assert from_file["FAKETIME_NO_CACHE"] == "1"
    conf = "# x\nserver 10.0.0.1 iburst minpoll 4 maxpoll 6\nmakestep 1.0 3\n"
    changed = faults.chrony_server_lines(conf, iburst=False, minpoll=2, maxpoll=3)
    assert "server 10.0.0.1 minpoll 2 maxpoll 3\n" in changed
    assert "makestep 1.0 3" in changed
    back = faults.chrony_server_lines(changed, iburst=True, minpoll=None, maxpoll=None)
    assert "server 10.0.0.1 minpoll 2 maxpoll 3 iburst" in back


# -- the experiments' summaries ---------------------------------------------------------------


def test_shared_key_lost_updates_are_writes_the_next_writer_did_not_read():
    writes = [  # revision order: 11 read 10; 12 read 10 too (lost 11); 13 read 12
        {"revision": 11, "read_mod_revision": 10, "clock": 1},
        {"revision": 12, "read_mod_revision": 10, "clock": 1},
        {"revision": 13, "read_mod_revision": 12, "clock": 2},
    ]
    assert lamport.lost_updates(writes) == {"lost": 1, "regressions": 1, "duplicate_clocks": 1}


def test_lamport_summary_counts_events_messages_and_checks():
    events = [_event(1, 0, "send", 1, "1.1"), _event(1, 1, "local", 2),
              _event(2, 0, "receive", 2, "1.1"), _event(2, 1, "send", 3, "2.3")]
    for e in events:
        e["outcome"] = "ok"
    shared = {"writes": [{"revision": 5, "read_mod_revision": 4, "clock": 1}], "unknown": 0,
              "retries": 0, "final": {"clock": 1}}
    samples = {"messages": {"events": events},
               "shared_key": {"naive": shared, "cas": {**shared, "retries": 3}}}
    summary = lamport.summarize(samples, {})
    assert summary["events"] == 4 and summary["messages"] == 2
    assert summary["delivered"] == 1 and summary["undelivered"] == 1
    assert summary["clock_condition_violations"] == 0 and summary["total_order_ties"] == 0
    assert summary["shared_key"]["cas_retries"] == 3
    assert summary["shared_key"]["naive_lost_updates"] == 0


def _row(t, phase, valid_rx, offset, selected=True, last_rx=0, system=-10.0, tx=None):
    return {"t": t, "phase": phase, "valid_rx": valid_rx, "sample_offset_s": offset,
            "selected": selected, "last_rx_s": last_rx, "system_time_s": system,
            "frequency_ppm": 50.0, "skew_ppm": 0.1, "poll": 2, "reach": 255,
            "total_tx": tx if tx is not None else valid_rx}


def test_ntp_isolation_summary_from_readings():
    rows = [
        _row(1001, "settle", 5, -0.000010),
        _row(1010, "before", 6, -0.000020, system=-10.000),
        _row(1020, "isolated", 6, -0.000020, system=-10.0005, tx=8),
        _row(1040, "isolated", 6, -0.000020, selected=False, system=-10.0015, tx=11),
        _row(1045, "after", 7, -0.000520, last_rx=2),
        _row(1050, "after", 8, -0.000100),
    ]
    run = {"rows": rows, "cut_at": 1011.0, "reconnected_at": 1041.0, "chronyd_started_at": 990.0,
           "settled_at": 1001.0, "driftfile": {"frequency_ppm": 49.9, "skew_ppm": 0.2},
           "log": ["System clock wrong by -10.0 seconds", "Could not step system clock"]}
    figures = ntp_isolation.summarize_run(run, {})
    assert figures["offset_change_over_cut_ms"] == pytest.approx(0.5)
    assert figures["first_offset_after_ms"] == pytest.approx(0.52)
    assert figures["resync_s"] == pytest.approx(2.0)  # seen at 1045, 2 s old
    assert figures["system_time_change_ms"] == pytest.approx(1.5)
    assert figures["selected_while_isolated"] is False
    assert figures["driftfile_ppm"] == 49.9
    assert figures["makestep_attempts"] == 1 and figures["step_refused"] == 1
    summary = ntp_isolation.summarize(
        {"runs": {"iburst": run, "no_iburst": run}},
        {"isolation_s": 30.0, "drift_ppm": 50.0})
    assert summary["no_iburst"]["resync_s"] == pytest.approx(2.0)
    assert summary["uncorrected_drift_ms"] == pytest.approx(1.5)


def test_parse_chrony_observation():
    text = ("AC19000A,172.25.0.10,11,1795708426.1,-10.003750801,0.000005474,9.0,49.968,0.014,"
            "0.905,0.000067112,0.000028978,16.3,Normal\n==\n"
            "Offset          : +0.000007510 seconds\nTotal TX        : 12\n"
            "Total valid RX  : 11\nNTP tests       : 111 111 1111\n==\n"
            "^,*,172.25.0.10,10,4,377,4,0.000012404,0.000017878,0.000057888\n")
    row = ntp_isolation.parse_observation(text)
    assert row["system_time_s"] == pytest.approx(-10.003750801)
    assert row["frequency_ppm"] == pytest.approx(49.968)
    assert row["sample_offset_s"] == pytest.approx(7.51e-6)
    assert row["valid_rx"] == 11 and row["selected"] and row["reach"] == 255
    assert row["last_rx_s"] == 4 and row["poll"] == 4


def test_lease_drift_stale_writes_are_judged_by_revision():
    holder = {
        "acquired_real": 100.0, "believed_expired_real": 160.5, "token": 7,
        "revoked": {"real": 160.2, "revision": 50},
        "contender": {"acquired_real": 160.25, "write_ok": True},
        "writes": [
            {"kind": "fenced", "ok": True, "revision": 45, "outcome": "ok"},
            {"kind": "unfenced", "ok": True, "revision": 46, "outcome": "ok"},
            {"kind": "fenced", "ok": False, "revision": 52, "outcome": "failed"},
            {"kind": "unfenced", "ok": True, "revision": 53, "outcome": "ok"},
            {"kind": "fenced", "ok": False, "revision": None, "outcome": "unknown"},
        ],
    }
    figures = lease_drift.summarize_holder(holder)
    assert figures["belief_error_s"] == pytest.approx(0.3)
    assert figures["overlap_s"] == pytest.approx(0.25)
    assert figures["fenced_rejected"] == 1 and figures["unfenced_accepted"] == 1
    assert figures["fenced_before"] == 1 and figures["unfenced_before"] == 1
    assert figures["unknown"] == 1


def _exchange(round_index, peer, offset, t1, delay=0.002):
    """An exchange with a peer whose clock is ``offset`` ahead; own clock reads t1."""
    t2 = t1 + delay / 2 + offset
    return {"round": round_index, "peer": peer, "t1": t1, "t2": t2, "t3": t2 + 0.0001,
            "t4": t1 + delay + 0.0001}


def test_faulty_clock_summary_flags_the_offset_clock_and_measures_errors():
    names = ["n1", "n2", "n3"]
    offsets = {"n1": 0.0, "n2": 0.8, "n3": 0.0}
    agents = {}
    for name in names:
        exchanges = []
        for r in range(3):
            t_real = 1000.0 + r
            own = t_real + offsets[name]
            for peer in names:
                if peer != name:
                    exchanges.append(_exchange(r, peer, offsets[peer] - offsets[name], own))
        agents[name] = {"node": name, "offset_s": offsets[name], "rate": 1.0,
                        "spawned_at": 998.9, "clock_started_at": 999.0, "exchanges": exchanges}
    run = {"started_at": 999.0, "agents": agents}
    figures = faulty_clock.summarize_run(run, {"threshold_ms": 500.0})
    assert figures["injected_faulty"] == ["n2"] and figures["flagged"] == ["n2"]
    assert figures["false_positives"] == 0 and figures["exact"]
    assert figures["detection_s"]["n2"] == pytest.approx(1.0)
    assert figures["max_estimate_error_ms"] < 1.0
    assert figures["final_estimates"]["n2"]["estimated_ms"] == pytest.approx(800.0, abs=1.0)


# -- the report sections render from hand-made results ----------------------------------------
# FIXTURES FOR RENDERING: hand-made small samples, not measurements.


def _result(name, params, samples, summarize):
    from etcdlab.results import Result

    metadata = {"started_utc": "2025-06-16T23:35:00.000+00:00",
                "finished_utc": "2025-06-16T23:40:00.000+00:00", "node_count": 3}
    return Result(experiment=name, status="ok", error=None, metadata=metadata, params=params,
                  summary=summarize(samples, params), samples=samples)


def _lamport_fixture():
    events = [_event(1, 0, "send", 1, "1.1"), _event(1, 1, "local", 2),
              _event(2, 0, "local", 1), _event(2, 1, "receive", 2, "1.1")]
    for index, event in enumerate(events):
        event.update(outcome="ok", t=index * 0.01, peer=None)
    shared = {"writes": [{"revision": 5, "read_mod_revision": 4, "clock": 1},
                         {"revision": 6, "read_mod_revision": 4, "clock": 1}],
              "unknown": 0, "retries": 0, "final": {"clock": 1}}
    cas = {"writes": [{"revision": 8, "read_mod_revision": 7, "clock": 1},
                      {"revision": 9, "read_mod_revision": 8, "clock": 2}],
           "unknown": 0, "retries": 2, "final": {"clock": 2}}
    params = {"processes": 2, "steps": 2, "send_probability": 0.5, "max_think_ms": 20.0,
              "shared_updates": 1}
    return _result("lamport", params, {"messages": {"events": events},
                                       "shared_key": {"naive": shared, "cas": cas}},
                   lamport.summarize)


def _ntp_fixture():
    rows = [_row(1001, "settle", 5, -0.000010), _row(1010, "before", 6, -0.000020),
            _row(1020, "isolated", 6, -0.000020, system=-10.0005),
            _row(1045, "after", 7, -0.000520, last_rx=2)]
    run = {"rows": rows, "cut_at": 1011.0, "reconnected_at": 1041.0, "iburst": True,
           "chronyd_started_at": 990.0, "settled_at": 1001.0,
           "driftfile": {"frequency_ppm": 49.9, "skew_ppm": 0.2},
           "conf": ["server 10.0.0.1 iburst minpoll 2 maxpoll 3", "makestep 1.0 3"],
           "log": ["System clock wrong by -10.0 seconds", "Could not step system clock"]}
    params = ntp_isolation.EXPERIMENT.params(quick=True)
    samples = {"client": "node2", "server": "node1", "rate": 1.00005,
               "faketime_offset_s": 10.0, "runs": {"iburst": run, "no_iburst": run}}
    return _result("ntp-isolation", params, samples, ntp_isolation.summarize)


def _lease_fixture():
    holder = {
        "rate": 0.99, "acquired_real": 100.0, "believed_expired_real": 110.5, "token": 7,
        "lease": 1, "revoked": {"real": 110.2, "revision": 50},
        "contender": {"acquired_real": 110.25, "write_ok": True},
        "writes": [{"kind": "fenced", "ok": False, "revision": 52, "outcome": "failed",
                    "real": 110.3},
                   {"kind": "unfenced", "ok": True, "revision": 53, "outcome": "ok",
                    "real": 110.35}],
    }
    fast = {**holder, "rate": 1.01, "believed_expired_real": 109.5, "writes": []}
    keep = {"granted_real": 100.0, "keepalives": [{"real": 103.3, "ttl": 10}],
            "remaining": [{"real": 101.0, "ttl": 9}], "done": True}
    params = lease_drift.EXPERIMENT.params(quick=True)
    samples = {"rates": {"fast": 1.05, "slow": 0.95},
               "trials": [{"trial": 1, "ttl_s": 10, "holders": {"fast": fast, "slow": holder},
                           "keepalive": keep}]}
    return _result("lease-drift", params, samples, lease_drift.summarize)


def _faulty_fixture():
    def agents_for(offsets):
        agents = {}
        for name in offsets:
            exchanges = [_exchange(r, peer, offsets[peer] - offsets[name],
                                   1000.0 + r + offsets[name])
                         for r in range(3) for peer in offsets if peer != name]
            agents[name] = {"node": name.split("-")[0], "offset_s": offsets[name], "rate": 1.0,
                            "spawned_at": 998.9, "clock_started_at": 999.0,
                            "exchanges": exchanges}
        return {"started_at": 999.0, "agents": agents}

    runs = {"offset": agents_for({"n1": 0.0, "n2": 0.8, "n3": 0.0}),
            "drift": agents_for({"n1": 0.0, "n2": 0.0, "n3": 0.9}),
            "two_faulty": agents_for({"n1": 0.0, "n1-b": 0.0, "n2": 0.8, "n2-b": 0.0,
                                      "n3": 0.9})}
    params = faulty_clock.EXPERIMENT.params(quick=True)
    return _result("faulty-clock", params, {"runs": runs}, faulty_clock.summarize)


def test_time_sections_render_from_hand_made_results(tmp_path):
    from etcdlab.results import write_result

    for result in (_lamport_fixture(), _ntp_fixture(), _lease_fixture(), _faulty_fixture()):
        write_result(tmp_path / f"{result.experiment}.json", result)
    text = report_text(tmp_path)
    for question in ("Q4", "Q7", "Q8", "Q9"):
        section = text.split(f"## {question}.")[1].split("\n## ")[0]
        assert "### Answer" in section, section[:400]
        assert "### Method" in section
        assert "does not have the shape" not in section
    assert "lamport_space_time.png" in text and (tmp_path / "lamport_space_time.png").exists()
    assert "ntp_isolation_offset.png" in text
    # One trial per lease-drift client: its table rows, no strip plot of single points.
    assert "lease_drift_belief_error.png" not in text
    assert "faulty_clock_two_faulty.png" in text
    assert "Could not step system clock" in text


def test_a_rate_change_keeps_the_faked_clock_continuous():
    from etcdlab.figures.clocks import continued_offset, faked_offset, faked_offset_piecewise
    offset, rate, started = 10.0, 1 + 50e-6, 1000.0
    new_rate, at = 1 + 100e-6, 1060.0
    moved = continued_offset(offset, rate, new_rate, started, at)
    # both specs read the same at the change, and the new one runs at the new rate after it
    assert faked_offset(moved, new_rate, started, at) == pytest.approx(
        faked_offset(offset, rate, started, at), abs=1e-12)
    assert faked_offset(moved, new_rate, started, at + 20) - faked_offset(
        moved, new_rate, started, at) == pytest.approx(20 * 100e-6)
    changes = [(at, new_rate), (at + 20, rate)]
    assert faked_offset_piecewise(offset, rate, started, 1030.0, changes) == pytest.approx(
        faked_offset(offset, rate, started, 1030.0))
    assert faked_offset_piecewise(offset, rate, started, at + 20, changes) == pytest.approx(
        faked_offset(moved, new_rate, started, at + 20))
    # back at the old rate after the excursion: 20 s × 50 ppm more than without it
    assert faked_offset_piecewise(offset, rate, started, at + 50, changes) - faked_offset(
        offset, rate, started, at + 50) == pytest.approx(20 * 50e-6)
