"""Q3 partition, Q5 read-latency and Q6 quota against the real lab (quick parameters).

The three run in ONE process, through the real ``invoke report --quick --only
partition,read-latency,quota``, as ``invoke lab`` runs them: quota re-applies the etcd role
while the earlier experiments' gRPC channels and threads have lived in that process (the
case where a forked playbook runner died with gRPC's "epoll_wait error"). After each, the
lab must be healthy again with exactly one leader.
"""

from __future__ import annotations

import json

import pytest

from etcdlab.faults import CHAIN, Faults

SHARED_RUN = ("partition", "read-latency", "quota")


def run_quick(lab, results, name: str) -> dict:
    """The saved result of NAME from the one shared ``invoke report`` run, as JSON."""
    path = results / f"{name}.json"
    assert path.exists(), f"{name} saved no result"
    result = json.loads(path.read_text())
    assert result["status"] == "ok", result["error"]
    return result


def assert_healthy_with_one_leader(lab) -> None:
    nodes = lab.status_json()
    assert all(n["healthy"] for n in nodes), nodes
    assert sum(n["is_leader"] for n in nodes) == 1, nodes
    assert not any("alarm" in (n["error"] or "").lower() for n in nodes), nodes


@pytest.fixture(scope="module")
def results(lab, tmp_path_factory):
    """The folder of the one ``invoke report`` run of the three (each may fail alone)."""
    folder = tmp_path_factory.mktemp("consistency")
    lab.invoke("report", "--quick", "--only", ",".join(SHARED_RUN), "--results", str(folder),
               check=False)
    return folder


def test_partition_minority_is_stale_refuses_writes_and_heals_to_one_revision(lab, results):
    result = run_quick(lab, results, "partition")
    summary = result["summary"]
    timeout_s = lab.config.etcd_election_timeout_ms / 1000
    assert 0.5 * timeout_s < summary["leader_isolated"]["new_leader_s"] < 3 * timeout_s + 1
    assert summary["leader_isolated"]["majority_write_ok"] is True
    assert summary["minority"]["serializable_read_stale"] is True
    # A default client's write is held until its deadline (unknown); with require-leader
    # the cut-off member refuses it at once: never acknowledged, never applied.
    assert summary["minority"]["write_require_leader_outcome"] == "failed"
    assert summary["minority"]["outcome_counts"]["write"].get("ok", 0) == 0
    assert summary["minority"]["linearizable_read_require_leader_outcome"] == "failed"
    assert summary["minority"]["outcome_counts"]["linearizable_read"].get("ok", 0) == 0
    assert summary["minority"]["write_applied_after_heal"] is False
    assert summary["follower_isolated"]["leader_unchanged"] is True
    history = result["samples"]["histories"]["main"]
    assert history["verdict"] == "linearizable" and history["faults"] >= 2, history
    # The register workload under a cut-off leader: with linearizable reads the history is
    # linearizable; with serializable ones it got a verdict (stale reads make it "not").
    histories = result["samples"]["histories"]
    lin, ser = (histories[f"register-leader-cut-{series}"]
                for series in ("linearizable", "serializable"))
    assert lin["verdict"] == "linearizable" and lin["operations"] > 0, histories
    assert ser["verdict"] in ("linearizable", "not-linearizable"), histories
    assert (results / lin["file"]).is_file() and not list(results.glob("partition.partial*"))
    # The cut-off leader until its step-down: no linearizable read or write completed there.
    last = summary["last_second"]
    assert last["trials"] >= 1, last
    assert last["outcomes"]["linearizable_read"]["ok"] == 0, last
    assert last["outcomes"]["write"]["ok"] == 0, last
    assert last["outcomes"]["serializable_read"]["ok"] > 0, last
    # The pre-vote control, 3 isolations per setting (quick): with it on the cut-off
    # follower never campaigns; off, it does.
    control = summary["prevote"]
    assert control["on"]["campaigns"] == [0, 0, 0] and control["on"]["disrupted"] == 0, control
    assert len(control["off"]["campaigns"]) == 3, control
    assert all(c >= 1 for c in control["off"]["campaigns"]), control
    for scenario in ("leader_isolated", "follower_isolated"):  # 3 partitions per side
        assert len(result["samples"][scenario]) == 3, scenario
    cluster = lab.cluster
    for name in cluster.names:  # the provisioned setting is back on every member
        _code, text = cluster.lab.exec(name, ["cat", "/etc/etcd/etcd.conf.yml"])
        assert "pre-vote: true" in text, (name, text)
    # One-way partitions: the leader deaf, then mute, 3 trials each (quick). Neither side
    # can re-elect the old leader (it hears no votes, or its requests never arrive): a
    # follower ends up alone as leader, and after the heal every member names one leader.
    one_way = result["samples"]["one_way"]
    assert sorted(one_way) == ["leader_deaf", "leader_mute"], one_way.keys()
    for direction, trials in one_way.items():
        assert len(trials) == 3, (direction, trials)
        for trial in trials:
            assert trial["settled_s"] is not None, trial
            assert trial["settled_leader"] != trial["old_leader"], trial
            assert trial["after_heal"]["settled_s"] is not None, trial
            assert trial["old_leader"] in trial["changes"][0]["claims"], trial["changes"][0]
    assert summary["one_way"]["leader_deaf"]["follower_led"] == 3, summary["one_way"]
    assert summary["heal"]["converge_s"] is not None
    assert summary["members_consistent"] is True
    for scenario in ("leader_isolated", "follower_isolated"):
        for trial in result["samples"][scenario]:
            states = {(s["value"], s["mod_revision"], s["revision"])
                      for s in trial["after_heal"].values()}
            assert len(states) == 1, trial["after_heal"]
            assert trial["minority"]["write_require_leader"]["details"] == (
                "etcdserver: no leader")
    assert_healthy_with_one_leader(lab)


def test_read_latency_fills_every_cell_with_positive_percentiles(lab, results):
    result = run_quick(lab, results, "read-latency")
    summary = result["summary"]
    for level in ("c1", "c8", "c32"):
        for target in ("leader", "follower"):
            for consistency in ("linearizable", "serializable"):
                cell = summary[level][target][consistency]
                assert cell["reads"] == result["params"]["reads"], (level, target, consistency)
                assert 0 < cell["p50_ms"] <= cell["p90_ms"] <= cell["p99_ms"] <= cell["max_ms"]
                assert cell["throughput_rps"] > 0
    assert summary["harness_overhead_ratio"] > 0
    # Staleness under load: both quick rates measured with both consistencies; no
    # linearizable read older than a revision the leader had applied before it was sent,
    # and each segment's history of writes and linearizable reads checked linearizable.
    load = summary["staleness"]
    assert load["rates"] == ["100", "500"], load["rates"]
    for rate in load["rates"]:
        cell = load["cells"][rate]
        assert cell["writes"]["acknowledged"] > 0, (rate, cell["writes"])
        for consistency in ("linearizable", "serializable"):
            assert cell[consistency]["reads"] > 0, (rate, consistency)
        assert cell["linearizable"]["certainly_stale"] == 0, (rate, cell["linearizable"])
    segments = result["samples"]["staleness"]["segments"]
    assert len(segments) == 4, [(s["rate"], s["round"]) for s in segments]  # 2 rates × 2 rounds
    for segment in segments:
        history = result["samples"]["histories"][segment["history"]]
        assert history["verdict"] == "linearizable" and history["operations"] > 0, history
        assert (results / history["file"]).is_file()
    assert_healthy_with_one_leader(lab)


def test_quota_reaches_the_alarm_and_recovers(lab, results):
    result = run_quick(lab, results, "quota")
    summary = result["summary"]
    quota = result["params"]["quota_bytes"]
    assert set(summary["configured_quota_bytes"].values()) == {quota}
    assert summary["alarm"] == "NOSPACE"
    assert summary["alarm_listed_by_every_member"] is True
    assert 0 < summary["bytes_written_at_alarm"] <= quota
    assert summary["writes_refused_during_alarm"] is True
    assert summary["reads_during_alarm_ok"] is True
    assert summary["delete_during_alarm_ok"] is True
    recovery = summary["recovery"]
    assert recovery["compact_ok"] and recovery["defrag_ok"]
    assert recovery["alarms_left"] == 0
    assert recovery["writes_ok_after"] is True
    assert all(size < quota for size in recovery["db_size_after"].values())
    assert set(summary["quota_restored"].values()) == {lab.config.etcd_quota_backend_bytes}
    # dbSize and dbSizeInUse of every member at every phase, the in-use part never larger
    names = set(summary["configured_quota_bytes"])
    assert [p["phase"] for p in summary["phases"]][:3] == ["start", "refusal",
                                                           "during the alarm"]
    for phase in summary["phases"]:
        assert set(phase["db_size"]) == set(phase["db_size_in_use"]) == names, phase
        assert all(0 < phase["db_size_in_use"][m] <= phase["db_size"][m] for m in names), phase
    # every extra probe has a measured outcome (which one is the finding's business)
    for probe in ("lease_grant", "lease_keepalive", "lease_revoke", "txn_range", "txn_delete"):
        assert summary["probes"][probe]["outcome"] in ("ok", "failed", "unknown"), probe
    assert recovery["early_disarm"]["disarm_ok"] is True
    assert recovery["early_disarm"]["write"]["outcome"] in ("ok", "failed", "unknown")
    blocking = recovery["defrag_blocking"]
    assert {b["member"] for b in blocking} == names
    assert all(b["reads_before"] > 0 and b["longest_gap_s"] is not None for b in blocking)
    assert_healthy_with_one_leader(lab)


def test_the_report_presents_all_three(lab, results):
    if not all((results / f"{name}.json").is_file()
               for name in ("partition", "read-latency", "quota")):
        pytest.skip("an experiment above did not save its result")
    lab.invoke("report", "--from", str(results))
    text = (results / "REPORT.md").read_text()
    method = (results / "METHOD.md").read_text()
    for number in (3, 5, 6):
        start = text.index(f"## Q{number}.")
        section = text[start:text.index(f"## Q{number + 1}.", start)]
        assert "### Answer" in section and "(METHOD.md#q" in section, section[:400]
        start = method.index(f"## Q{number}.")
        end = method.find("\n## ", start + 1)  # METHOD.md holds the measured ones only
        assert "### Method" in method[start:end if end > 0 else None], method[start:][:400]


def test_partition_primitives_drop_exactly_the_chosen_traffic_and_heal(lab):
    faults = Faults(lab.cluster)
    nodes, ips = lab.cluster.lab, lab.config.node_ips
    a, b, c = lab.config.node_names

    def rules(name: str) -> set[str]:
        _code, out = nodes.exec(name, ["iptables", "-w", "-S", CHAIN], check=False)
        return {line for line in out.splitlines() if "DROP" in line}

    def connects(src: str, dst: str) -> bool:  # a TCP connection to the peer port
        probe = f"import socket; socket.create_connection(('{ips[dst]}', 2380), 1)"
        return nodes.exec(src, ["python3", "-c", probe], check=False)[0] == 0

    def drop(peer: str, flag: str) -> str:
        return f"-A {CHAIN} {flag} {ips[peer]}/32 -j DROP"

    try:
        faults.one_way(a, b)  # what a sends, b drops
        assert rules(b) == {drop(a, "-s")} and rules(a) == rules(c) == set()
        faults.heal()
        faults.isolate(c)
        assert rules(c) == {drop(a, "-s"), drop(a, "-d"), drop(b, "-s"), drop(b, "-d")}
        assert rules(a) == {drop(c, "-s"), drop(c, "-d")} and rules(b) == {drop(c, "-s"),
                                                                             drop(c, "-d")}
        assert not connects(c, a) and not connects(a, c) and not connects(b, c)
        assert connects(a, b) and connects(b, a)
    finally:
        repaired = faults.heal()
    assert any(step.ok and step.detail == "rules removed" and c in step.what
               for step in repaired), repaired
    assert all(rules(name) == set() for name in (a, b, c))
    assert connects(a, c) and connects(c, b)
    assert_healthy_with_one_leader(lab)
