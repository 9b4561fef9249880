"""`invoke watch`: events from successive snapshots and journal records (pure), and the
view's width."""

from __future__ import annotations

import json

from rich.console import Console

from etcdlab.playground.watch import (
    Detector,
    Event,
    JournalTail,
    MemberState,
    Record,
    Snapshot,
    render,
)

IDS = {"n1": 11, "n2": 12, "n3": 13}


def member(name, leader=None, term=5, up=True, index=100):
    return MemberState(name, up, IDS[name] if up else 0,
                       IDS[leader] if (leader and up) else 0, term if up else None,
                       index if up else None, index if up else None, 20480 if up else None)


def snap(at, *members, probe=None, alarms=()):
    return Snapshot(at, tuple(members), probe, alarms)


def whole(at, leader="n1", term=5, probe=None):
    return snap(at, *(member(n, leader, term) for n in IDS), probe=probe)


def crash_record(at, node="n1"):
    return Record("begin", "e1", at, "etcd", f"{node}: etcd crashed (SIGKILL)", {"node": node})


def texts(events):
    return [e.text for e in events]


def test_a_crash_of_the_leader_reads_as_the_issue_tells_it():
    d = Detector()
    assert texts(d.step(whole(10.0, probe=True))) == ["n1 is the leader, term 5"]
    # the crash is journalled at 10.5; the next poll sees n1 down, the others still
    # naming it as their leader: there is no leader any more
    down = snap(10.6, member("n1", up=False), member("n2", "n1"), member("n3", "n1"),
                probe=False)
    events = d.step(down, [crash_record(10.5)])
    assert texts(events) == ["n1 crashed (SIGKILL)", "no leader", "writes not acknowledged"]
    assert [round(e.since_fault, 2) for e in events] == [0.0, 0.1, 0.1]
    # n2 a candidate at term 6: an ordinary election, no line of its own
    campaign = snap(11.5, member("n1", up=False), member("n2", None, 6), member("n3", None, 5),
                    probe=False)
    assert texts(d.step(campaign)) == []
    elected = snap(11.93, member("n1", up=False), member("n2", "n2", 6), member("n3", "n2", 6),
                   probe=True)
    events = d.step(elected)
    assert texts(events) == ["n2 elected at term 6 — 1.43 s after the crash",
                             "writes acknowledged again after 1.33 s"]
    assert events[0].member == "n2" and events[0].term == 6
    assert round(events[1].since_fault, 2) == 1.43
    assert d.faults_on(IDS) == {"n1": ["crash"], "n2": [], "n3": []}


def test_a_member_cut_off_rejoins_and_its_fault_is_healed():
    d = Detector()
    d.step(whole(0.0))
    cut = Record("begin", "p1", 1.0, "partition", "partition: n3 cut off",
                 {"nodes": ["n1", "n2", "n3"]})
    # n3 still answers (this machine reaches it) but, with pre-vote, it stays at term 5
    # and loses its leader
    away = snap(1.2, member("n1", "n1"), member("n2", "n1"), member("n3", None, 5))
    assert texts(d.step(away, [cut])) == ["n3 cut off"]
    assert d.faults_on(IDS)["n3"] == ["cut"]
    d.step(snap(2.0, member("n1", "n1"), member("n2", "n1"), member("n3", None, 5)))
    healed = Record("done", "p1", 3.0)
    back = snap(3.4, member("n1", "n1"), member("n2", "n1"), member("n3", "n1"))
    assert texts(d.step(back, [healed])) == ["healed: n3 cut off", "n3 rejoined, term 5"]
    assert d.faults_on(IDS)["n3"] == []


def test_a_follower_cut_off_without_pre_vote_campaigns_and_forces_an_election():
    d = Detector()
    d.step(whole(0.0))
    d.step(snap(0.5, member("n1", "n1"), member("n2", "n1"), member("n3", None, 5)),
           [Record("begin", "p1", 0.4, "partition", "partition: n3 cut off", {})])
    events = d.step(snap(1.5, member("n1", "n1"), member("n2", "n1"), member("n3", None, 7)))
    assert texts(events) == ["n3 campaigns at term 7 (no leader it knows)"]
    events = d.step(snap(3.0, member("n1", "n1", 8), member("n2", "n1", 8),
                         member("n3", "n1", 8)), [Record("done", "p1", 2.9)])
    assert "n1 leads again at term 8 — 2.60 s after the cut" in texts(events)


def test_a_short_gap_after_an_election_is_no_rejoin():
    d = Detector()
    d.step(whole(0.0))
    # right after an election n3 has not heard from the new leader for one poll
    d.step(snap(0.1, member("n1", "n2", 6), member("n2", "n2", 6), member("n3", None, 5)))
    events = d.step(snap(0.2, member("n1", "n2", 6), member("n2", "n2", 6),
                         member("n3", "n2", 6)))
    assert texts(events) == []


def test_an_unexplained_member_down_and_alarms_are_events():
    d = Detector()
    d.step(whole(0.0))
    events = d.step(snap(0.1, member("n1", "n1"), member("n2", "n1"), member("n3", up=False),
                         alarms=("NOSPACE",)))
    assert texts(events) == ["n3 not answering", "alarm raised: NOSPACE"]
    assert events[0].since_fault is None  # no fault journalled yet
    events = d.step(snap(0.2, member("n1", "n1"), member("n2", "n1"), member("n3", up=False)))
    assert texts(events) == ["alarm cleared: NOSPACE"]


def test_journal_history_gives_the_open_faults_but_no_events(tmp_path):
    path = tmp_path / "journal.jsonl"
    lines = [{"op": "begin", "id": "a", "kind": "etcd", "description": "n2: etcd paused "
              "(SIGSTOP)", "data": {"node": "n2"}, "monotonic_ns": 10**9},
             {"op": "begin", "id": "b", "kind": "partition", "description": "partition: n3 "
              "cut off", "data": {}, "monotonic_ns": 2 * 10**9},
             {"op": "done", "id": "b", "monotonic_ns": 3 * 10**9}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"op": "be')
    tail = JournalTail(path)
    d = Detector()
    d.history(tail.read())
    assert d.faults_on(IDS) == {"n1": [], "n2": ["pause"], "n3": []}
    # the stamps count from the last fault begun, even one begun before watching
    assert (d.last_fault_at, d.last_fault_word) == (2.0, "cut")
    assert tail.read() == []  # the torn last line is read once it is whole
    with path.open("a") as handle:
        handle.write('gin", "id": "c", "kind": "etcd", "description": "n1: etcd crashed", '
                     '"data": {"node": "n1"}, "monotonic_ns": 5000000000}\n')
    assert [(r.op, r.id, r.at) for r in tail.read()] == [("begin", "c", 5.0)]
    # a compacted journal (file removed) starts again from its first line
    path.unlink()
    assert tail.read() == []
    path.write_text(json.dumps(lines[0]) + "\n")
    assert [r.id for r in tail.read()] == ["a"]


def test_the_view_fits_80_columns():
    console = Console(width=80, record=True, force_terminal=False)
    d = Detector()
    events = d.step(whole(0.0))
    events += [Event(1.0, "elected", "pnode3 elected at term 12345 — 1.43 s after the crash "
                     "and a long tail that must be cut", 1.43)]
    wide = snap(2.0, *(MemberState(f"n{i}", True, 10 + i, 11, 123456, 12345678, 12345678,
                                   9 * 1024**3, True, -123.45) for i in (1, 2, 3)))
    console.print(render(wide, events, {"n1": ["crash", "clock change", "cut"]}, "title"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "pnode3 elected at term 12345" in text
    assert "12345678" in text and "-123.45ms" in text  # numbers are never cut
    # a lab of a few thousand writes leaves room for the faults column
    console = Console(width=80, record=True, force_terminal=False)
    usual = snap(2.0, *(MemberState(f"n{i}", True, 10 + i, 11, 12, 4321, 4321, 36 * 1024,
                                    True, 0.01) for i in (1, 2, 3)))
    console.print(render(usual, [], {"n1": ["crash", "clock change"]}, "title"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "crash, clock ch…" in text.splitlines()[2], text


def test_watching_a_lab_without_leader_says_so_first():
    d = Detector()
    events = d.step(snap(0.0, member("n1", up=False), member("n2", None), member("n3", None)))
    assert texts(events) == ["no leader"]
    assert texts(d.step(snap(0.1, member("n1", up=False), member("n2", None),
                              member("n3", None)))) == []


def test_a_split_by_hand_is_shown_on_the_members_it_names():
    d = Detector()
    d.history([Record("begin", "s", 0.0, "partition", "partition: n1,n2 | n3",
                      {"nodes": ["n1", "n2", "n3"],
                       "manual": {"id": "x", "fault": "partition", "member": "n1,n2"}})])
    assert d.faults_on(IDS) == {"n1": ["split"], "n2": ["split"], "n3": []}
