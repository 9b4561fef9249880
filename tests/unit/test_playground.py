"""Faults typed by hand: parsing (refused before the lab is touched), targets, the tagged
journal entries that `invoke faults` lists and `invoke heal ID` replays, and the leftover
processes `invoke heal` ends first."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from etcdlab import playground
from etcdlab.errors import LabError
from etcdlab.faults import leftovers
from etcdlab.faults.journal import Journal, replay

NAMES = ["node1", "node2", "node3"]

# (arguments of parse_fault, then check_targets; a fragment of the one error message)
BAD = [
    ((None,), "no fault kind given: valid kinds are crash, stop, pause, restart, partition"),
    (("explode", "node1"), "unknown fault kind 'explode': valid kinds are crash"),
    (("crash",), "crash needs a TARGET: valid targets are a member's name, leader or follower"),
    (("crash", "node9"), "unknown target 'node9': valid targets are node1, node2, node3, "
                         "leader, follower"),
    (("partition",), "partition needs a TARGET"),
    (("partition", "node1", None, "sideways"), "--one-way must be in"),
    (("crash", "leader", None, "in"), "--one-way applies to `invoke fault partition` only"),
    (("partition", "node1", "node1,node2"), "node1 cannot be cut off from itself"),
    (("partition", None, "node7"), "unknown member 'node7' in --from"),
    (("partition", None, "node1,node2,node3"), "--from names every member"),
    (("partition", None, "node1,node1"), "--from takes distinct member names"),
    (("clock", "node2"), "clock needs --offset SECONDS and/or --rate R"),
    (("clock", "node2", None, None, None, "0"), "--rate must be a number from 0.5 to 2.0"),
    (("clock", "node2", None, None, "abc"), "--offset must be a number from -3600 to 3600"),
    (("crash", "leader", None, None, "3"), "--offset applies to `invoke fault clock` only"),
    (("quota", "abc"), "quota needs BYTES"),
    (("quota", "1000"), "quota BYTES must be at least 1 MiB"),
    (("ntp-cut", "node1"), "node1 is the lab's time server"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[str(a) for a, _m in BAD])
def test_bad_input_is_one_error_naming_what_is_valid(args, message):
    with pytest.raises(LabError) as caught:
        playground.check_targets(playground.parse_fault(*args), NAMES)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_good_input_parses():
    assert playground.parse_fault("quota", "16MiB").quota_bytes == 16 * 2**20
    assert playground.parse_fault("quota", "2097152").quota_bytes == 2 * 2**20
    spec = playground.parse_fault("partition", "node3", "node1", "in")
    assert (spec.target, spec.peers, spec.one_way) == ("node3", ("node1",), "in")
    clock = playground.parse_fault("clock", "follower", None, None, "-0.5", "1.0005")
    assert (clock.offset_s, clock.rate) == (-0.5, 1.0005)
    playground.check_targets(playground.parse_fault("partition", None, "node1,node2"), NAMES)


def test_targets_resolve_when_applied():
    assert playground.resolve("node2", NAMES, None) == "node2"
    assert playground.resolve("leader", NAMES, "node2") == "node2"
    # the first member that follows the leader, not a crashed one
    assert playground.resolve("follower", NAMES, "node2", ["node2", "node3"]) == "node3"
    with pytest.raises(LabError, match="no leader right now"):
        playground.resolve("leader", NAMES, None)
    with pytest.raises(LabError, match="no member follows the leader"):
        playground.resolve("follower", NAMES, "node1", ["node1"])


def test_a_fault_by_hand_is_listed_under_one_id_and_healed_alone(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    left = journal.begin("etcd", "node1: etcd crashed (SIGKILL)", node="node1")  # a run's
    tagged = playground.TaggedJournal(journal, {"id": "abc123", "fault": "clock",
                                                "target": "follower", "member": "node3"})
    first = tagged.begin("chronyd", "node3: chronyd reconfigured", node="node3")
    second = tagged.begin("ntp-cut", "node3: NTP to node1 cut", node="node3", server="node1")
    found = {a.id: a for a in playground.active(journal)}
    assert set(found) == {left.id, "abc123"}
    assert found["abc123"].target == "node3 (follower)"
    assert found["abc123"].kind == "clock"
    assert [e.id for e in found["abc123"].entries] == [first.id, second.id]
    assert found[left.id].kind == "etcd" and found[left.id].target == "node1"
    undone = []
    keep = [e.id for e in journal.open_entries() if e.id not in {first.id, second.id}]
    replay(journal, {k: (lambda e: undone.append(e.id) or "ok")
                     for k in ("chronyd", "ntp-cut", "etcd")}, keep)
    assert sorted(undone) == sorted([first.id, second.id])
    assert [a.id for a in playground.active(journal)] == [left.id]


def test_the_table_lists_id_kind_target_since(tmp_path):
    from rich.console import Console

    journal = Journal(tmp_path / "journal.jsonl")
    playground.TaggedJournal(journal, {"id": "f00d01", "fault": "crash", "target": "leader",
                                       "member": "node2"}).begin("etcd", "node2: crashed",
                                                                 node="node2")
    console = Console(width=120, record=True)
    console.print(playground.faults_table(playground.active(journal)))
    text = console.export_text()
    assert "f00d01" in text and "crash" in text and "node2 (leader)" in text
    assert "s ago" in text


def test_marked_reads_the_lab_folder_from_either_mark():
    block = b"PATH=/bin\0ETCDLAB_RUN_LAB=/x/.lab/play-net\0"
    assert leftovers.marked(block, "/x/.lab/play-net")
    assert leftovers.marked(b"ETCDLAB_RUN_LAB=/x/.lab/play-net/image-builder\0",
                            "/x/.lab/play-net")
    assert leftovers.marked(b"ETCDLAB_FAULT_LAB=/x/.lab/play-net\0", "/x/.lab/play-net")
    assert not leftovers.marked(block, "/x/.lab/play")  # another lab's folder
    assert not leftovers.marked(b"OTHER=/x/.lab/play-net\0", "/x/.lab/play-net")


def test_leftover_processes_of_the_lab_are_ended_and_others_kept(tmp_path):
    """A marked process in a session of its own (as a playbook child runs) is found and
    ended; one of another lab is left alone."""
    folder = str(tmp_path / ".lab" / "mine")
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    mine = subprocess.Popen(sleeper, env={**os.environ, leftovers.RUN_LAB_ENV: folder},
                            start_new_session=True)
    other = subprocess.Popen(sleeper, env={**os.environ,
                                           leftovers.RUN_LAB_ENV: folder + "-other"},
                             start_new_session=True)
    try:
        time.sleep(0.2)
        # our own children are spared (a live run's heal must not end its processes) ...
        assert leftovers.lab_processes(folder) == []
        assert leftovers.lab_processes(folder, me=0) == [mine.pid]  # as others see them
        # ... but another process (a later `invoke heal`) finds and ends them.
        code = subprocess.run(
            [sys.executable, "-c", "import sys; from etcdlab.faults import leftovers; "
             f"print(leftovers.end_lab_processes({folder!r}))"],
            capture_output=True, text=True, check=True)
        assert code.stdout.strip() == f"[{mine.pid}]"
        assert mine.wait(timeout=5) == -9
        assert other.poll() is None
    finally:
        for process in (mine, other):
            process.kill()
            process.wait()


def test_a_missing_target_names_the_members_when_they_are_known():
    with pytest.raises(LabError, match="crash needs a TARGET: valid targets are node1, node2, "
                                       "node3, leader, follower"):
        playground.parse_fault("crash", None, names=NAMES)
