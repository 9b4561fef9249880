"""Q1 and Q2 against the real lab (quick parameters), and the report they render."""

from __future__ import annotations

import json
import re

import docker
import pytest


@pytest.fixture(scope="module")
def first_run(lab, tmp_path_factory):
    """`invoke report --quick --only election,conflicts` once for this module."""
    results = tmp_path_factory.mktemp("results")
    done = lab.invoke("report", "--quick", "--only", "election,conflicts", "--results",
                      str(results))
    return results, done


def load(results, name):
    return json.loads((results / f"{name}.json").read_text())


def test_every_election_trial_sees_a_new_leader_in_a_plausible_time(first_run, lab):
    results, _ = first_run
    election = load(results, "election")
    assert election["status"] == "ok", election["error"]
    timeout_s = lab.config.etcd_election_timeout_ms / 1000
    crash, graceful = election["samples"]["crash"], election["samples"]["graceful"]
    assert len(crash) == len(graceful) == 3
    for trial in crash + graceful:
        assert trial["new_leader"] != trial["killed"]
        assert trial["term_after"] > trial["term_before"]
        # etcd logged this election (not an earlier one) after the signal, before we saw it.
        assert trial["log_elected_s"] is not None, trial
        assert -0.001 <= trial["log_elected_s"] <= trial["elected_s"] + 0.001, trial
    for trial in crash:
        # A follower's randomised timeout fires in [T, 2T) after the last heartbeat.
        assert 0.5 * timeout_s < trial["elected_s"] < 3 * timeout_s + 1.0, trial
        assert trial["first_write_s"] > 0.5 * timeout_s
    for trial in graceful:
        assert trial["elected_s"] < timeout_s, trial  # a hand-over, not an election
    summary = election["summary"]
    assert summary["crash"]["trials"] == 3
    assert summary["members_consistent"] is True
    assert summary["graceful"]["median_s"] < summary["crash"]["median_s"]
    assert election["metadata"]["node_count"] == 3
    # The probe writes through every failover and each member's read-back, checked.
    history = election["samples"]["histories"]["main"]
    assert history["verdict"] == "linearizable", history
    # one key per trial: 3 crash, 3 graceful and the sweep's 3
    assert history["partitions"] == 9 and history["operations"] >= 9 * 4, history
    assert (results / history["file"]).is_file()
    for trial in crash + graceful:
        assert set(trial["read_back"].values()) != {None}, trial  # some member answered


def test_the_timeout_sweep_crashes_the_leader_under_its_own_timeout_and_restores_the_labs(
        first_run, lab):
    results, _ = first_run
    election = load(results, "election")
    sweep = election["samples"]["sweep"]
    assert sweep["own_timeout_ms"] == lab.config.etcd_election_timeout_ms
    [setting] = sweep["settings"]  # quick: 500 ms only
    assert (setting["timeout_ms"], setting["heartbeat_ms"]) == (500, 50)
    assert len(setting["trials"]) == 3
    for trial in setting["trials"]:
        # a crash (SIGKILL) election under T = 0.5 s: not a hand-over, not the lab's 1 s
        assert 0.25 < trial["elected_s"] < 3 * 0.5 + 1.0, trial
        assert trial["term_after"] > trial["term_before"], trial
    rows = election["summary"]["sweep"]["settings"]
    assert [r["timeout_ms"] for r in rows] == [500, lab.config.etcd_election_timeout_ms]
    client = docker.from_env(version="auto")
    for name in lab.config.node_names:  # the provisioned setting is back on every member
        config = client.containers.get(name).exec_run(
            ["cat", "/etc/etcd/etcd.conf.yml"]).output.decode()
        assert f"election-timeout: {lab.config.etcd_election_timeout_ms}" in config, name
        assert f"heartbeat-interval: {lab.config.etcd_heartbeat_interval_ms}" in config, name


def test_conflicts_cas_loses_nothing_and_revisions_increase(first_run):
    results, _ = first_run
    conflicts = load(results, "conflicts")
    assert conflicts["status"] == "ok", conflicts["error"]
    summary = conflicts["summary"]
    # A CAS that timed out (unknown) may still have been applied: then the final value is
    # above the acknowledged count. No acknowledged increment may be missing from it.
    cas = conflicts["samples"]["cas"]
    assert summary["cas"]["acknowledged"] + summary["cas"]["unknown"] == 8 * 50
    assert summary["cas"]["unknown"] <= 4
    assert cas["acknowledged"] <= cas["final_value"] <= cas["acknowledged"] + cas["unknown"]
    assert summary["cas"]["lost_updates"] <= 0
    assert summary["revisions_strictly_increasing"] is True
    assert summary["naive"]["acknowledged"] + summary["naive"]["unknown"] == 8 * 50
    # Both races are recorded call by call and checked: lost updates are the application's
    # read-modify-write, and etcd's history stays linearizable.
    histories = conflicts["samples"]["histories"]
    for race in ("naive", "cas"):
        assert histories[race]["verdict"] == "linearizable", histories[race]
        assert (results / f"conflicts.{race}.history.jsonl").is_file()
    assert histories["naive"]["operations"] >= 2 * summary["naive"]["acknowledged"]


def test_report_and_charts_exist_with_numbers_in_each_run_section(first_run):
    results, done = first_run
    report = (results / "REPORT.md").read_text()
    assert "report" in done.stdout
    for chart in ("election.png", "conflicts.png"):
        assert (results / chart).stat().st_size > 1000
        assert f"]({chart})" in report
    sections = re.split(r"^## ", report, flags=re.M)
    q1 = next(s for s in sections if s.startswith("Q1."))
    q2 = next(s for s in sections if s.startswith("Q2."))
    assert re.search(r"median (of )?\d", q1) and re.search(r"\d+(\.\d+)? (ms|s)\b", q1)
    assert re.search(r"lost \d+ of \d+", q2)
    assert "Not measured in this run" not in q1 + q2


def test_report_from_saved_results_renders_again_without_the_cluster(first_run, lab):
    results, _ = first_run
    before = (results / "REPORT.md").read_text()
    (results / "REPORT.md").unlink()
    again = lab.invoke("report", "--from", str(results), INVOKE_LAB_NETWORK="no-such-lab")
    assert "report" in again.stdout
    assert (results / "REPORT.md").read_text() == before


def test_lab_is_healthy_after_the_experiments(first_run, lab):
    nodes = lab.status_json()
    assert all(n["healthy"] for n in nodes)
    assert sum(n["is_leader"] for n in nodes) == 1
