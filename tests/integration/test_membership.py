"""Q10 membership against the real lab (quick parameters), and `invoke members`."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def membership(lab, tmp_path_factory):
    """`invoke experiment membership --quick` once for this module: the parsed result."""
    results = tmp_path_factory.mktemp("membership")
    lab.invoke("experiment", "membership", "--quick", "--results", str(results))
    return json.loads((results / "membership.json").read_text())


def test_crashed_instances_are_detected_within_ttl_plus_2_s(membership):
    assert membership["status"] == "ok", membership["error"]
    ttl = membership["params"]["ttl_s"]
    crashes = membership["samples"]["crash"]
    assert len(crashes) == membership["params"]["trials"]
    for trial in crashes:
        assert trial["detect_s"] is not None, trial  # every watcher saw the key go
        # The lease ends one TTL after the last keepalive, which came before the kill.
        assert 0 < trial["detect_s"] <= ttl + 2, trial
    summary = membership["summary"]
    assert summary["crash_detect"]["within_ttl_plus_2s"] == len(crashes)
    assert summary["join"]["not_seen"] == 0
    assert summary["join"]["n"] == (membership["params"]["instances"]
                                    + 2 * membership["params"]["trials"])


def test_watchers_agree_with_etcd_and_with_each_other(membership):
    summary = membership["summary"]
    assert summary["truth_events"] > 0
    assert summary["views_equal_truth"] is True
    assert summary["same_sequence"] is True
    assert summary["events_missed"] == 0
    assert summary["events_duplicated"] == 0
    assert summary["watchers_consistent"] is True
    assert summary["compaction"]["resynced"] is True
    assert summary["compaction"]["view_equals_truth"] is True


def test_leader_crash_loses_no_instance_and_no_event(membership):
    failover = membership["summary"]["leader_failover"]
    sample = membership["samples"]["failover"]
    assert sample["new_leader"] != sample["killed"]
    assert failover["instances_lost"] == 0
    assert failover["events_in_window"] > 0
    assert failover["events_missed"] == 0
    assert failover["events_duplicated"] == 0
    # The probe lease had no keepalives: only the new leader's refresh kept it past its
    # deadline (etcd refreshes leases to TTL + election timeout on promotion).
    assert failover["probe_outlived_s"] > 0


def test_a_watcher_leaves_its_crashed_or_cut_off_member_and_catches_up(membership):
    cases = membership["samples"]["member_lost"]
    assert [c["mode"] for c in cases] == ["crash", "cut"], cases
    for case in cases:
        assert case["reconnect_s"] is not None, case
        assert case["moved_to"] not in (None, case["member"]), case
        assert case["caught_up_s"] is not None, case
    # Cut off (but reachable from here), the member ends a require-leader watch itself
    # once it has had no leader for a while: etcd's "no leader" cancellation.
    assert "no leader" in cases[1]["reason"], cases[1]
    summary = membership["summary"]
    assert summary["events_missed"] == 0 and summary["events_duplicated"] == 0, summary


def test_an_instance_cut_off_from_the_majority_expires_like_a_crashed_one_and_returns(
        membership):
    trials = membership["samples"]["cut_off"]
    assert len(trials) == membership["params"]["cut_off_trials"] >= 1
    ttl = membership["params"]["ttl_s"]
    for trial in membership["summary"]["cut_off"]["trials"]:
        # alive, yet listed gone at its lease's deadline, like the one SIGKILLed beside it
        assert trial["alive_while_unlisted"] is True, trial
        assert 0 < trial["gone_s"] <= ttl + 1, trial
        assert 0 < trial["crash_gone_s"] <= ttl + 1, trial
        assert trial["keepalives_failed"] > 0, trial
        # its own deadline came before anyone was told, and it noticed it
        assert trial["margin_s"] >= 0, trial
        assert trial["noticed_s"] is not None and trial["noticed_s"] >= 0, trial
        # back after the heal, seen by every watcher
        assert trial["rejoin_s"] is not None and trial["back_s"] is not None, trial
    assert membership["summary"]["events_missed"] == 0


def test_members_task_shows_the_service(lab, membership):
    done = lab.invoke("members", membership["samples"]["service"])
    assert f"/services/{membership['samples']['service']}/" in done.stdout
    assert "no instance of" in done.stdout  # every instance left at the end of the run
