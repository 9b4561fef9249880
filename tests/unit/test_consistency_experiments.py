"""The pure parts of Q3 ``partition``, Q5 ``read-latency`` and Q6 ``quota``.

Summaries, outcome classification and report sections, on hand-made samples. The
numbers below are FIXTURES with round values, not measurements of etcd.
"""

from __future__ import annotations

import grpc
import pytest

from etcdlab.errors import LabError
from etcdlab.etcd import transport
from etcdlab.etcd.transport import attempt, classify, settled
from etcdlab.questions.q03_partition import run as partition
from etcdlab.questions.q05_read_latency import run as read_latency
from etcdlab.questions.q06_quota import run as quota
from etcdlab.results import Result, write_result
from tests.unit.report_helpers import report_text

METADATA = {
    "started_utc": "2025-06-16T23:35:00.000+00:00",
    "finished_utc": "2025-06-16T23:40:00.000+00:00",
    "etcd_version": "3.5.6",
    "node_count": 3,
    "heartbeat_ms": 100,
    "election_timeout_ms": 1000,
    "quota_backend_bytes": 2 * 1024**3,
    "image": "ubuntu:22.04",
    "kernel": "6.1.0",
    "cpu_count": 2,
    "host": "fixture-host",
}


class FakeRpcError(grpc.RpcError):
    """What a gRPC stub raises: a status code and a details text."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


# -- outcomes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "details", "outcome"), [
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", "unknown"),
    (grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out", "unknown"),
    (grpc.StatusCode.UNAVAILABLE, "etcdserver: leader changed", "unknown"),
    (grpc.StatusCode.UNKNOWN, "context deadline exceeded", "unknown"),
    (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader", "failed"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded", "failed"),
])
def test_a_timeout_is_unknown_and_a_refusal_is_failed(code, details, outcome):
    assert classify(FakeRpcError(code, details)) == outcome


def test_attempt_records_the_outcome_code_and_details():
    record, value = attempt(lambda: 42)
    assert (record["outcome"], record["code"], value) == ("ok", "OK", 42)

    def refused():
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")

    record, value = attempt(refused)
    assert value is None
    assert record["outcome"] == "failed"
    assert record["code"] == "UNAVAILABLE"
    assert record["details"] == "etcdserver: no leader"
    assert record["elapsed_s"] >= 0


def test_a_setup_call_is_tried_again_through_stalls_and_refusals_end_it(monkeypatch):
    monkeypatch.setattr(transport, "SETTLE_PAUSE_S", 0.0)
    errors = [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out"),
              FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")]

    def stalls_twice():
        if errors:
            raise errors.pop(0)
        return 7

    tries: list[dict] = []
    assert settled(stalls_twice, 5.0, "the write", tries) == 7
    assert [t["code"] for t in tries] == ["UNAVAILABLE", "DEADLINE_EXCEEDED"]
    assert all(t["what"] == "the write" for t in tries)

    def refused():
        raise FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")

    tries = []
    with pytest.raises(LabError, match="the write: PERMISSION_DENIED"):
        settled(refused, 5.0, "the write", tries)
    assert len(tries) == 1  # a definite refusal is not tried again

    def always_stalls():
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out")

    with pytest.raises(LabError, match="no success within 0 s"):
        settled(always_stalls, 0.0, "the write")


# -- partition -----------------------------------------------------------------------------

def _op(outcome, code="OK", details="", elapsed=0.001, **answer):
    return {"outcome": outcome, "code": code, "details": details, "elapsed_s": elapsed, **answer}


def _minority(stale_value="before-1", stale_mod=3, trial=1):
    timeout = dict(code="DEADLINE_EXCEEDED", details="Deadline Exceeded", elapsed=2.0)
    no_leader = dict(code="UNAVAILABLE", details="etcdserver: no leader")
    return {
        "value_written": f"minority-{trial}",
        "serializable_read": _op("ok", value=stale_value, mod_revision=stale_mod,
                                 revision=stale_mod),
        "linearizable_read": _op("unknown", **timeout),
        "linearizable_read_require_leader": _op("failed", **no_leader),
        "write": _op("unknown", **timeout),
        "write_require_leader": _op("failed", **no_leader),
    }


def _after_heal(value, mod):
    return {n: {"value": value, "mod_revision": mod, "revision": mod}
            for n in ("node1", "node2", "node3")}


def leader_trial(trial, new_leader_s, step_down_s, converge_s):
    return {
        "trial": trial, "isolated": "node1", "old_leader": "node1", "new_leader": "node2",
        "term_before": 2, "term_after": 3, "leader_after_heal": "node2",
        "cut_window_s": 0.07, "new_leader_s": new_leader_s, "step_down_s": step_down_s,
        "old_leader_view_after": 0,
        "lease": {"ttl_s": 30, "age_at_cut_s": 5.0, "remaining_before_cut_s": 26,
                  "remaining_after_new_leader_s": 30},
        "before_value": f"before-{trial}", "majority_value": f"majority-{trial}",
        "majority_write": _op("ok", revision=4),
        "majority_read": _op("ok", member="node3", value=f"majority-{trial}", mod_revision=4,
                             revision=4),
        "minority": _minority(f"before-{trial}", 3, trial),
        "heal_window_s": 0.2, "rejoin_s": converge_s / 2, "converge_s": converge_s,
        "after_heal": _after_heal(f"majority-{trial}", 4),
    }


def follower_trial(trial, converge_s, term_after=3):
    return {
        "trial": trial, "isolated": "node3", "leader": "node2", "term_before": 3,
        "term_after": term_after, "leader_after_heal": "node2", "cut_window_s": 0.07,
        "majority_leaders_seen": ["node2"], "majority_terms_seen": [3],
        "isolated_lost_leader_s": 1.1, "watched_s": 3.0,
        "before_value": f"before-{trial}", "majority_value": f"majority-{trial}",
        "majority_write": _op("ok", revision=6),
        "majority_read": _op("ok", member="node1", value=f"majority-{trial}", mod_revision=6,
                             revision=6),
        "minority": _minority(f"before-{trial}", 5, trial),
        "heal_window_s": 0.2, "rejoin_s": converge_s / 2, "converge_s": converge_s,
        "after_heal": _after_heal(f"majority-{trial}", 6),
    }


def partition_samples():
    return {
        "leader_isolated": [leader_trial(1, 1.2, 1.3, 0.02), leader_trial(2, 1.6, 1.4, 0.04),
                            leader_trial(3, 1.4, 1.5, 0.03)],
        "follower_isolated": [follower_trial(1, 0.01), follower_trial(2, 0.05)],
        "consistency": {"consistent": True, "members": []},
    }


def test_partition_summary_comes_from_the_samples():
    summary = partition.summarize(partition_samples(), {})
    assert summary["leader_isolated"]["new_leader_s"] == pytest.approx(1.4)
    assert summary["leader_isolated"]["new_leader_max_s"] == pytest.approx(1.6)
    assert summary["leader_isolated"]["step_down_s"] == pytest.approx(1.4)
    assert summary["leader_isolated"]["two_leaders_s"] == pytest.approx(0.1)
    assert summary["leader_isolated"]["lease_refreshed"] is True
    assert summary["minority"]["write_outcome"] == "unknown"
    assert summary["minority"]["write_require_leader_outcome"] == "failed"
    assert summary["minority"]["linearizable_read_outcome"] == "unknown"
    assert summary["minority"]["serializable_read_stale"] is True
    assert summary["minority"]["write_applied_after_heal"] is False
    assert summary["minority"]["outcome_counts"]["write"] == {"unknown": 5}
    assert summary["heal"]["converge_s"] == pytest.approx(0.03)
    assert summary["heal"]["converge_max_s"] == pytest.approx(0.05)
    assert summary["follower_isolated"]["leader_unchanged"] is True
    assert summary["follower_isolated"]["term_unchanged"] is True
    assert summary["members_consistent"] is True


def test_partition_summary_reports_disagreement_and_disruption():
    samples = partition_samples()
    samples["follower_isolated"][1] = follower_trial(2, 0.05, term_after=4)
    samples["leader_isolated"][0]["minority"]["write"] = _op("ok", revision=9)
    samples["leader_isolated"][0]["after_heal"] = _after_heal("minority-1", 9)
    summary = partition.summarize(samples, {})
    assert summary["follower_isolated"]["term_unchanged"] is False
    assert summary["minority"]["write_outcome"] == "mixed"
    assert summary["minority"]["outcome_counts"]["write"] == {"ok": 1, "unknown": 4}
    assert summary["minority"]["write_applied_after_heal"] is True


def test_a_read_is_stale_only_when_it_is_older_than_the_majority_read():
    trial = leader_trial(1, 1.2, 1.3, 0.02)
    assert partition.is_stale(trial) is True
    trial["minority"]["serializable_read"].update(value="majority-1", mod_revision=4)
    assert partition.is_stale(trial) is False
    trial["majority_read"] = _op("unknown", code="DEADLINE_EXCEEDED")
    assert partition.is_stale(trial) is None


def test_agreed_names_one_value_or_mixed():
    assert partition.agreed(["failed", "failed"]) == "failed"
    assert partition.agreed(["failed", "unknown"]) == "mixed"
    assert partition.agreed([]) is None


# -- read-latency --------------------------------------------------------------------------

def _cell(concurrency, target, consistency, latencies_us, elapsed_s, errors=None):
    return {"concurrency": concurrency, "target": target, "consistency": consistency,
            "member": "node1" if target == "leader" else "node2", "reads": len(latencies_us),
            "warmup_per_client": 5, "elapsed_s": elapsed_s, "errors": errors or {},
            "latencies_us": latencies_us}


def read_latency_samples():
    cells = []
    for concurrency in (1, 8):
        for target, base in (("leader", 500.0), ("follower", 800.0)):
            for consistency, factor in (("linearizable", 2.0), ("serializable", 1.0)):
                latencies = [base * factor * k for k in (1.0, 1.0, 1.0, 2.0, 4.0)]
                cells.append(_cell(concurrency, target, consistency, latencies,
                                   elapsed_s=0.01 * factor))
    return {"leader_before": "node1", "leader_after": "node1", "cells": cells,
            "harness": {"member": "node1", "blocks": 2, "reads_per_block": 2,
                        "bare": [400.0, 400.0, 500.0, 600.0],
                        "etcd3": [440.0, 440.0, 550.0, 660.0],
                        "cpu_us_per_read": {"bare": [200.0, 220.0], "etcd3": [210.0, 230.0]}}}


def test_read_latency_summary_has_every_cell_and_the_harness_ratio():
    summary = read_latency.summarize(read_latency_samples(), {})
    leader = summary["c1"]["leader"]
    assert leader["linearizable"]["p50_ms"] == pytest.approx(1.0)
    assert leader["serializable"]["p50_ms"] == pytest.approx(0.5)
    assert leader["serializable"]["max_ms"] == pytest.approx(2.0)
    assert leader["serializable"]["mean_ms"] == pytest.approx(0.9)
    assert leader["serializable"]["throughput_rps"] == pytest.approx(500.0)
    assert leader["linearizable_over_serializable_p50"] == pytest.approx(2.0)
    assert summary["c1"]["follower"]["linearizable"]["p50_ms"] == pytest.approx(1.6)
    assert summary["c8"]["follower"]["serializable"]["p50_ms"] == pytest.approx(0.8)
    assert summary["harness_overhead_ratio"] == pytest.approx(1.1)
    assert summary["leader_changed"] is False


def test_the_harness_ratio_pairs_neighbouring_blocks():
    # The machine gets twice as slow between the blocks: both paths slow down alike.
    harness = {"reads_per_block": 3, "bare": [100.0] * 3 + [200.0] * 3,
               "etcd3": [120.0] * 3 + [240.0] * 3}
    summary = read_latency.harness_summary(harness)
    assert summary["ratio"] == pytest.approx(1.2)
    assert summary["ratio_blocks"] == 2
    assert "cpu_ratio" not in summary
    harness["cpu_us_per_read"] = {"bare": [100.0, 110.0], "etcd3": [105.0, 115.5]}
    assert read_latency.harness_summary(harness)["cpu_ratio"] == pytest.approx(1.05, rel=1e-3)


def test_errors_are_counted_and_not_timed():
    cell = _cell(1, "leader", "linearizable", [1000.0, 3000.0], 0.5, {"unknown": 3})
    summary = read_latency.cell_summary(cell)
    assert (summary["reads"], summary["errors"], summary["unknown"]) == (2, 3, 3)
    assert summary["throughput_rps"] == pytest.approx(4.0)
    empty = read_latency.cell_summary(_cell(1, "leader", "linearizable", [], 0.5,
                                            {"unknown": 1}))
    assert empty["p50_ms"] is None


def test_concurrency_levels_are_parsed_and_checked():
    assert read_latency.parse_concurrency("1, 8,32") == [1, 8, 32]
    with pytest.raises(LabError, match="whole numbers"):
        read_latency.parse_concurrency("1,many")
    with pytest.raises(LabError, match="≥ 1"):
        read_latency.parse_concurrency("0")


# -- quota ---------------------------------------------------------------------------------

NOSPACE = "etcdserver: mvcc: database space exceeded"


def quota_samples():
    writes = [_op("ok", elapsed=0.002, write=n, at_s=n * 0.01) for n in range(8)]
    refused = _op("failed", code="RESOURCE_EXHAUSTED", details=NOSPACE, write=8, at_s=0.08)
    sizes = [{"write": n, "at_s": n * 0.01, "acknowledged_bytes": n * 1024 * 1024,
              "db_size": {"node1": (n + 1) * 1024 * 1024, "node2": (n + 1) * 1024 * 1024}}
             for n in (0, 4, 8)]
    alarms = [{"member": "node1", "member_id": 11, "alarm": "NOSPACE"}]
    big = {"node1": 9 * 1024 * 1024, "node2": 9 * 1024 * 1024}
    small = {"node1": 512 * 1024, "node2": 512 * 1024}
    return {
        "setup": {"quota_bytes": 8 * 1024 * 1024, "configured": {"node1": 8 * 1024 * 1024,
                                                                 "node2": 8 * 1024 * 1024},
                  "reconfigure_s": 14.0, "db_sizes_start": {"node1": 20480, "node2": 20480}},
        "fill": {"leader": "node1", "value_bytes": 1024 * 1024, "keys": 4, "acknowledged": 8,
                 "unknown": 0, "bytes_acknowledged": 8 * 1024 * 1024, "elapsed_s": 0.08,
                 "refused": refused, "db_size_at_alarm": big, "writes": [*writes, refused],
                 "sizes": sizes},
        "alarm": {"alarms": {"node1": alarms, "node2": alarms}, "listed_after_s": 0.01,
                  "health_endpoint": {"node1": False, "node2": False},
                  "probes": {
                      "write_leader": _op("failed", "RESOURCE_EXHAUSTED", NOSPACE),
                      "write_follower": _op("failed", "RESOURCE_EXHAUSTED", NOSPACE),
                      "read_linearizable": _op("ok", found=True),
                      "read_serializable": _op("ok", found=True),
                      "delete": _op("ok", deleted=1)}},
        "recovery": {
            "db_size_before": big, "compact": _op("ok", elapsed=0.01, revision=20),
            "db_size_after_compact": big,
            "defragment": [_op("ok", elapsed=0.5, member=m, db_size_before=big[m],
                               db_size_after=small[m]) for m in ("node1", "node2")],
            "disarm": [_op("ok", elapsed=0.002, **alarms[0])],
            "alarms_after": {"node1": [], "node2": []}, "db_size_after": small,
            "write_after": _op("ok")},
        "restore": {"reconfigure_s": 20.0, "configured": {"node1": 2 * 1024**3,
                                                          "node2": 2 * 1024**3}},
    }


def test_quota_summary_comes_from_the_samples():
    summary = quota.summarize(quota_samples(), {"quota_bytes": 8 * 1024 * 1024})
    assert summary["quota_bytes"] == 8 * 1024 * 1024
    assert summary["bytes_written_at_alarm"] == 8 * 1024 * 1024
    assert summary["alarm"] == "NOSPACE"
    assert summary["alarm_listed_by_every_member"] is True
    assert summary["writes_refused_during_alarm"] is True
    assert summary["reads_during_alarm_ok"] is True
    assert summary["delete_during_alarm_ok"] is True
    assert summary["recovery"]["compact_s"] == pytest.approx(0.01)
    assert summary["recovery"]["defrag_s"] == pytest.approx(1.0)
    assert summary["recovery"]["alarms_left"] == 0
    assert summary["recovery"]["writes_ok_after"] is True
    assert summary["write_latency_first_half_ms"] == pytest.approx(2.0)


def test_quota_summary_notices_a_write_accepted_during_the_alarm():
    samples = quota_samples()
    samples["alarm"]["probes"]["write_follower"] = _op("ok")
    samples["alarm"]["alarms"]["node2"] = []
    summary = quota.summarize(samples, {"quota_bytes": 8 * 1024 * 1024})
    assert summary["writes_refused_during_alarm"] is False
    assert summary["alarm_listed_by_every_member"] is False


def test_the_quota_is_read_from_the_etcd_config_file():
    text = "name: node1\nquota-backend-bytes: 16777216\nsnapshot-count: 100000\n"
    assert quota.parse_quota(text) == 16 * 1024 * 1024
    assert quota.parse_quota("name: node1\n") is None


# -- report sections -----------------------------------------------------------------------

def _result(name, params, samples, summary):
    return Result(experiment=name, status="ok", error=None, metadata=METADATA, params=params,
                  summary=summary, samples=samples)


@pytest.fixture
def rendered(tmp_path):
    params = {
        "partition": {"trials": 3, "settle_s": 3.0, "poll_interval_ms": 5, "op_timeout_s": 2.0},
        "read-latency": {"reads": 20, "warmup": 10, "concurrency": "1,8", "op_timeout_s": 5.0},
        "quota": {"quota_bytes": 8 * 1024 * 1024, "value_bytes": 1024 * 1024, "keys": 4,
                  "size_every": 4},
    }
    samples = {"partition": partition_samples(), "read-latency": read_latency_samples(),
               "quota": quota_samples()}
    modules = {"partition": partition, "read-latency": read_latency, "quota": quota}
    for name, module in modules.items():
        result = _result(name, params[name], samples[name],
                         module.summarize(samples[name], params[name]))
        write_result(tmp_path / f"{name}.json", result)
    return tmp_path, report_text(tmp_path)


def _section(text, number):
    start = text.index(f"## Q{number}.")
    return text[start:text.index(f"## Q{number + 1}.", start)]


def test_partition_section_shows_both_sides_and_the_published_figures(rendered):
    folder, text = rendered
    q3 = _section(text, 3)
    assert "### Answer" in q3
    assert "`before-1`" in q3 and "`majority-1`" in q3
    assert "etcdserver: no leader" in q3
    assert "unknown 3 of 3 (≥ 36.8 % at 95 %)" in q3
    assert "check-quorum" in q3 and "pre-vote" in q3
    assert "left this question blank" in q3
    assert (folder / "partition.png").is_file()


def test_read_latency_section_shows_every_cell_and_the_harness(rendered):
    folder, text = rendered
    q5 = _section(text, 5)
    assert q5.count("| linearizable |") == 4 and q5.count("| serializable |") == 4
    assert "etcd3 ÷ bare is 1.10" in q5
    assert "CPU time of the client process per read: 210 µs (bare stub)" in q5
    assert "1,353 QPS" in q5
    assert "GIL" in q5
    assert (folder / "read_latency_cdf.png").is_file()
    assert (folder / "read_latency_throughput.png").is_file()


def test_quota_section_shows_the_alarm_and_the_recovery(rendered):
    folder, text = rendered
    q6 = _section(text, 6)
    assert "database space exceeded" in q6
    assert "defragment node1" in q6 and "disarm NOSPACE of node1" in q6
    assert "8.00 MiB" in q6
    assert "somente leitura" in q6
    assert (folder / "quota_db_size.png").is_file()
    assert (folder / "quota_write_latency.png").is_file()
