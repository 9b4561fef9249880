"""The registry's pure view: snapshot-then-watch against recorded event sequences.

The sequences are what a watch on ``/services/web/`` delivers: puts with their
create/mod revisions and versions, deletes with the revision of the delete, and what
a second stream resumed after a reconnection or a compaction delivers.
"""

import json

import pytest

from etcdlab.errors import LabError
from etcdlab.etcd.registry import Event, MembershipView, instance_key, prefix_end, service_prefix

PREFIX = service_prefix("web")


def put(instance_id, revision, create_revision=None, version=1, endpoint="10.0.0.1:80",
        lease=7):
    value = json.dumps({"endpoint": endpoint, "metadata": {"zone": "a"},
                        "registered_at": 1700000000.5}).encode()
    return Event("put", PREFIX + instance_id, revision,
                 create_revision if create_revision is not None else revision, version, value,
                 lease)


def delete(instance_id, revision):
    return Event("delete", PREFIX + instance_id, revision)


def ops(changes):
    return [(c.kind, c.instance_id, c.revision, c.via) for c in changes]


def fresh_view(entries=(), revision=10):
    view = MembershipView(PREFIX)
    view.apply_snapshot(list(entries), revision)
    return view


def test_keys_and_prefix_range():
    assert PREFIX == "/services/web/"
    assert instance_key("web", "i1") == "/services/web/i1"
    assert prefix_end(b"/services/web/") == b"/services/web0"
    assert prefix_end(b"a\xff") == b"b"
    with pytest.raises(LabError):
        service_prefix("a/b")
    with pytest.raises(LabError):
        instance_key("web", "")


def test_first_snapshot_joins_everyone_and_sets_the_resume_revision():
    view = MembershipView(PREFIX)
    changes = view.apply_snapshot([put("a", 5), put("b", 8, create_revision=6, version=2)], 12)
    assert ops(changes) == [("join", "a", 12, "snapshot"), ("join", "b", 12, "snapshot")]
    assert view.snapshot_revision == 12
    assert view.resume_revision == 13
    member = view.members["b"]
    assert (member.endpoint, member.metadata, member.create_revision, member.mod_revision,
            member.version, member.lease) == ("10.0.0.1:80", {"zone": "a"}, 6, 8, 2, 7)
    assert member.registered_at == pytest.approx(1700000000.5)


def test_events_after_the_snapshot_are_applied_in_order():
    view = fresh_view([put("a", 5)], 10)
    changes = view.apply_events([put("b", 11), put("a", 12, create_revision=5, version=2),
                                 delete("b", 13)])
    assert ops(changes) == [("join", "b", 11, "event"), ("update", "a", 12, "event"),
                            ("leave", "b", 13, "event")]
    assert sorted(view.members) == ["a"]
    assert view.revision == 13
    assert view.duplicates == 0
    assert view.anomalies == []


def test_events_the_snapshot_already_contains_are_dropped():
    # A watch started at the snapshot revision (instead of revision + 1) delivers the
    # snapshot's last change again: it must not be applied twice.
    view = fresh_view([put("a", 5), put("b", 10)], 10)
    changes = view.apply_events([put("b", 10), put("c", 11)])
    assert ops(changes) == [("join", "c", 11, "event")]
    assert view.duplicates == 1


def test_reconnection_resumes_from_the_last_revision_without_duplicates():
    # First stream delivers up to revision 14, then the member dies. The second stream
    # (another member) starts at resume_revision = 15; a sloppy client restarting at 13
    # would see 13 and 14 again: both are dropped, nothing is missed.
    view = fresh_view([put("a", 5)], 10)
    first = view.apply_events([put("b", 12), delete("a", 13), put("c", 14)])
    assert view.resume_revision == 15
    second = view.apply_events([delete("a", 13), put("c", 14), put("d", 15), delete("b", 16)])
    assert ops(first + second) == [
        ("join", "b", 12, "event"), ("leave", "a", 13, "event"), ("join", "c", 14, "event"),
        ("join", "d", 15, "event"), ("leave", "b", 16, "event")]
    assert view.duplicates == 2
    assert sorted(view.members) == ["c", "d"]
    assert view.anomalies == []


def test_one_transaction_changing_two_keys_at_one_revision():
    view = fresh_view([], 10)
    view.apply_events([put("a", 11)])
    # Revision 11 again, but a different key: same transaction, not a duplicate.
    changes = view.apply_events([put("b", 11), put("a", 11)])
    assert ops(changes) == [("join", "b", 11, "event")]
    assert view.duplicates == 1


def test_compaction_resync_reports_the_missed_changes():
    # The view was at revision 14 when its watcher went away. Meanwhile b left (15),
    # e joined (16), a was re-registered with a new lease (17 delete, 18 put) and c was
    # updated (19); then everything up to 20 was compacted. The resync snapshot at 21
    # yields exactly those differences, marked as learned by resync.
    view = fresh_view([put("a", 5), put("b", 6), put("c", 7)], 14)
    changes = view.apply_snapshot(
        [put("a", 18), put("c", 19, create_revision=7, version=2), put("e", 16)], 21)
    assert ops(changes) == [
        ("leave", "b", 21, "resync"), ("leave", "a", 21, "resync"),
        ("join", "a", 21, "resync"), ("update", "c", 21, "resync"),
        ("join", "e", 21, "resync")]
    assert view.resyncs == 1
    assert view.resync_changes == 5
    assert view.snapshot_revision == 14  # the first snapshot's revision stays
    assert view.resume_revision == 22
    # Events from before the resync that arrive late are duplicates.
    late = view.apply_events([delete("b", 15), put("f", 22)])
    assert ops(late) == [("join", "f", 22, "event")]
    assert sorted(view.members) == ["a", "c", "e", "f"]
    assert view.duplicates == 1


def test_a_snapshot_older_than_the_view_is_refused():
    view = fresh_view([], 10)
    view.apply_events([put("a", 12)])
    with pytest.raises(ValueError, match="older than the view"):
        view.apply_snapshot([], 11)


def test_events_before_any_snapshot_are_refused():
    with pytest.raises(ValueError, match="snapshot before events"):
        MembershipView(PREFIX).apply_events([put("a", 1)])


def test_missed_events_leave_revision_evidence():
    view = fresh_view([put("a", 5)], 10)
    view.apply_events([
        put("b", 12, create_revision=11, version=2),   # b's creation (11) was missed
        delete("x", 13),                               # x's creation was missed
        put("a", 14, create_revision=5, version=3),    # a's version 2 was missed
        put("b", 16, create_revision=16, version=1),   # b's delete (15) was missed
    ])
    whats = [a["what"] for a in view.anomalies]
    assert [a["revision"] for a in view.anomalies] == [12, 13, 14, 16]
    assert "missed its creation" in whats[0]
    assert "missed its put" in whats[1]
    assert "missed 1 update" in whats[2]
    assert "missed the delete" in whats[3]
    assert sorted(view.members) == ["a", "b"]


def test_keys_outside_the_service_are_ignored_but_advance_the_revision():
    view = fresh_view([Event("put", PREFIX + "a/extra", 3, 3, 1, b"{}")], 10)
    assert view.members == {}
    changes = view.apply_events([Event("put", PREFIX + "deep/er", 11, 11, 1, b"x")])
    assert changes == []
    assert view.revision == 11


def test_a_value_that_is_not_json_is_taken_as_the_endpoint():
    view = fresh_view([Event("put", PREFIX + "raw", 3, 3, 1, b"10.1.1.1:9000")], 10)
    assert view.members["raw"].endpoint == "10.1.1.1:9000"
    assert view.members["raw"].registered_at is None


# -- the experiment's summary and report section (hand-made fixture, not measurements) ----

def membership_samples():
    def change(t, revision, instance, kind):
        return {"t": t, "revision": revision, "instance": instance, "kind": kind, "via": "event"}

    truth = [[6, "a", "put"], [7, "b", "put"], [8, "a", "delete"]]
    w1 = [change(100.0, 6, "a", "join"), change(101.0, 7, "b", "join"),
          change(102.0, 8, "a", "leave")]
    # w2 applied revision 7 twice and never saw revision 8.
    w2 = [change(100.1, 6, "a", "join"), change(101.1, 7, "b", "join"),
          change(101.2, 7, "b", "update")]

    def watcher(wid, changes):
        return {"id": wid, "first_etcd": "10.0.0.1:2379", "snapshot_revision": 5,
                "duplicates_dropped": 0, "resyncs": 0, "anomalies": [], "changes": changes,
                "connections": [{"t": 101.5, "what": "reconnect"}]}

    return {
        "ttl_s": 5,
        "join": [{"join_ms": 10.0}, {"join_ms": 20.0}, {"join_ms": None}],
        "leave": [{"leave_ms": 4.0, "outcome": "ok"}, {"leave_ms": None, "outcome": "unknown"}],
        "crash": [{"detect_s": 4.0, "expiry_lag_s": 0.1, "since_keepalive_s": 1.0},
                  {"detect_s": 7.5, "expiry_lag_s": 0.3, "since_keepalive_s": 0.2}],
        "churn": [{"phase": "churn", "outcome": "ok"}, {"phase": "churn", "outcome": "unknown"},
                  {"phase": "failover", "outcome": "ok"}],
        "operations": [{"t": 99.9, "instance": "a", "delta": 1},
                       {"t": 100.9, "instance": "b", "delta": 1},
                       {"t": 101.9, "instance": "a", "delta": -1}],
        "watchers": [watcher("w1", w1), watcher("w2", w2)],
        "checks": [{"label": "after leader failover", "truth_events": truth,
                    "fence_revision": 9, "truth_members": [["b", 7, 7]],
                    "watcher_members": {"w1": [["b", 7, 7]],
                                        "w2": [["a", 6, 6], ["b", 7, 7]]}}],
        "failover": {"killed": "node2", "crashed_at": 101.0, "elected_at": 102.5,
                     "election_s": 1.5, "restarted_at": 110.0, "from_revision": 6,
                     "to_revision": 9, "instances": ["a", "b"],
                     "keepalive_failures": {"a": 1, "b": 0}, "reregistrations": {"a": 0, "b": 0},
                     "probe": {"ttl_s": 5, "granted_at": 98.5, "remaining_before_s": 2,
                               "remaining_after_s": 5, "queried_before_at": 100.9,
                               "queried_after_at": 102.6, "deleted_seen_at": 109.0}},
        "compaction": {"resyncs": 1, "resync_changes": 3, "stopped_at_revision": 9,
                       "compacted_to": 12, "view_members": [["b", 7, 7]],
                       "truth_members": [["b", 7, 7]]},
    }


PARAMS = {"instances": 2, "watchers": 2, "ttl_s": 5, "trials": 2, "churn_s": 5.0,
          "churn_rate": 4.0, "compaction_ops": 4}


def test_compare_with_truth_counts_missed_duplicated_and_unexpected():
    from etcdlab.questions.q10_membership.analysis import compare_with_truth

    truth = [[6, "a", "put"], [7, "b", "put"], [8, "a", "delete"]]
    changes = [{"revision": 7, "instance": "b", "kind": "join", "via": "event"},
               {"revision": 7, "instance": "b", "kind": "join", "via": "event"},
               {"revision": 9, "instance": "z", "kind": "join", "via": "event"},
               {"revision": 8, "instance": "a", "kind": "leave", "via": "resync"}]
    compared = compare_with_truth(changes, truth, after_revision=6)
    assert (compared["expected"], compared["missed"], compared["duplicated"],
            compared["unexpected"]) == (2, 1, 1, 1)
    assert compared["missed_examples"] == [(8, "a", "delete")]
    # Up to revision 7 only b's put counts: applied twice, nothing missed.
    limited = compare_with_truth(changes, truth, after_revision=5, up_to_revision=7)
    assert (limited["expected"], limited["missed"], limited["duplicated"]) == (2, 1, 1)


def test_membership_summary_comes_from_the_samples():
    from etcdlab.questions.q10_membership.run import summarize

    summary = summarize(membership_samples(), PARAMS)
    assert summary["ttl_s"] == 5
    assert summary["join"]["median_ms"] == pytest.approx(15.0)
    assert summary["join"]["not_seen"] == 1
    assert summary["leave"]["n"] == 1 and summary["leave"]["unknown"] == 1
    assert summary["crash_detect"]["median_s"] == pytest.approx(5.75)
    assert summary["crash_detect"]["within_ttl_plus_2s"] == 1
    assert summary["events_missed"] == 1
    assert summary["events_duplicated"] == 1
    assert summary["same_sequence"] is False
    assert summary["views_equal_truth"] is False
    assert summary["watchers_consistent"] is False
    assert summary["watchers"]["w1"]["missed"] == 0
    failover = summary["leader_failover"]
    assert failover["instances_lost"] == 1 and failover["lost"] == ["a"]
    assert failover["probe_outlived_s"] == pytest.approx(5.5)
    assert failover["probe_expired_after_election_s"] == pytest.approx(6.5)
    assert failover["keepalive_failures"] == 1
    assert failover["watcher_reconnects"] == 2
    assert summary["compaction"] == {"resynced": True, "view_equals_truth": True,
                                     "resync_changes": 3, "stopped_at_revision": 9,
                                     "compacted_to": 12}
    assert summary["churn"]["unknown"] == 1 and summary["churn"]["failover_operations"] == 1


def test_membership_section_renders_from_a_result(tmp_path):
    from etcdlab.results import Result, write_result

    metadata = {"started_utc": "2025-06-16T23:35:00.000+00:00",
                "finished_utc": "2025-06-16T23:40:00.000+00:00", "etcd_version": "3.5.6",
                "node_count": 3, "heartbeat_ms": 100, "election_timeout_ms": 1000}
    result = Result(experiment="membership", status="ok", error=None, metadata=metadata,
                    params={**PARAMS, "churn_s": 5.0}, summary={},
                    samples=membership_samples())
    write_result(tmp_path / "membership.json", result)
    from tests.unit.report_helpers import report_text

    text = report_text(tmp_path)
    q10 = text[text.index("## Q10"):]
    assert "Only partly in this run: joins reaching every watcher; watchers equal to etcd" in q10
    assert "1 of 6 events missed and 1 applied twice" in q10
    assert "Instances lost their registration when the etcd leader was SIGKILLed: 1 of 2" in q10
    assert "(a)" in q10
    # 109.0 - 102.5 = 6.5 s, TTL 5 s + election timeout 1 s (+ expiry check): consistent.
    assert "| probe expired after the election | 6.50 s (±50 ms) |" in q10
    assert "As etcd's promotion rule predicts" in q10
    assert "| w2 | 3 | 3 | 1 | 1 |" in q10
    assert (tmp_path / "membership_timeline.png").exists()
