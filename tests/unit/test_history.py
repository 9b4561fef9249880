"""Recording histories: the recorder's lines are what the checker reads, errors classified."""

import json
from pathlib import Path

import grpc
import pytest

from etcdlab.etcd.history import HistoryRecorder, check_file
from etcdlab.results import history_file


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details=""):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def fail(code, details=""):
    def send():
        raise FakeRpcError(code, details)
    return send


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_call_is_one_line_with_times_outcome_value_and_revision(tmp_path):
    recorder = HistoryRecorder(history_file(tmp_path, "conflicts"))
    assert recorder.path.name == "conflicts.history.jsonl"
    reply = recorder.call(1, "put", "k", {"value": "a"}, lambda: "reply", lambda r: (None, 5))
    assert reply == "reply"
    with pytest.raises(FakeRpcError):
        recorder.call(2, "get", "k", {}, fail(grpc.StatusCode.UNAVAILABLE, "no leader"),
                      lambda r: (None, None))
    with pytest.raises(FakeRpcError):
        recorder.call(2, "put", "k", {"value": "b"},
                      fail(grpc.StatusCode.DEADLINE_EXCEEDED), lambda r: (None, None))
    recorder.close()
    put, refused, timed_out = lines(recorder.path)
    assert (put["outcome"], put["revision"], put["process"]) == ("ok", 5, 1)
    assert put["invoked_ns"] <= put["completed_ns"]
    assert refused["outcome"] == "failed" and refused["completed_ns"] is not None
    assert timed_out["outcome"] == "unknown" and timed_out["completed_ns"] is None


def test_fault_windows_that_overlap_the_history_are_appended(tmp_path):
    recorder = HistoryRecorder(tmp_path / "h.history.jsonl")
    recorder.call(1, "put", "k", {"value": "a"}, lambda: None, lambda r: (None, 2))
    first = recorder.first_ns
    recorder.close([
        {"id": "a", "kind": "partition", "begin_ns": first - 10, "end_ns": None},
        {"id": "b", "kind": "etcd", "begin_ns": 0, "end_ns": 1},            # long before
        {"id": "c", "kind": "etcd", "begin_ns": first + 10**15, "end_ns": None},  # after
    ])
    faults = [line for line in lines(recorder.path) if line.get("type") == "fault"]
    assert [f["id"] for f in faults] == ["a"]
    assert recorder.closed
    recorder.call(1, "put", "k", {"value": "z"}, lambda: None, lambda r: (None, 3))
    assert len(lines(recorder.path)) == 2  # nothing is written after close


def test_check_file_gives_the_verdict_of_what_was_recorded(tmp_path):
    good = HistoryRecorder(tmp_path / "good.history.jsonl")
    good.call(1, "put", "k", {"value": "a"}, lambda: None, lambda r: (None, 2))
    good.call(2, "get", "k", {}, lambda: None, lambda r: ("a", 2))
    good.close()
    verdict = check_file(good.path)
    assert (verdict["verdict"], verdict["operations"]) == ("linearizable", 2)
    assert (verdict["processes"], verdict["unknown"]) == (2, 0)
    bad = HistoryRecorder(tmp_path / "bad.history.jsonl")
    bad.call(1, "put", "k", {"value": "a"}, lambda: None, lambda r: (None, 2))
    bad.call(2, "get", "k", {}, lambda: None, lambda r: ("stale", 1))  # a value never written
    bad.close()
    verdict = check_file(bad.path)
    assert verdict["verdict"] == "not-linearizable"
    assert verdict["counterexample"]["stuck"]
    empty = HistoryRecorder(tmp_path / "empty.history.jsonl")
    empty.close()
    assert check_file(empty.path)["verdict"] is None


def test_a_history_that_is_not_linearizable_gets_a_timeline_around_its_counterexample(tmp_path):
    from etcdlab.questions.section import history_timelines
    from etcdlab.results import Result

    bad = HistoryRecorder(tmp_path / "partition.register-serializable.history.jsonl")
    bad.call("c1", "put", "k", {"value": "a"}, lambda: None, lambda r: (None, 2))
    bad.call("c2", "get", "k", {}, lambda: None, lambda r: (None, None))  # a stale nil
    bad.close([{"id": "f", "kind": "partition", "description": "n1 cut off",
                "begin_ns": bad.first_ns - 10, "end_ns": None}])
    good = HistoryRecorder(tmp_path / "partition.history.jsonl")
    good.call("c1", "put", "k", {"value": "a"}, lambda: None, lambda r: (None, 2))
    good.close()
    verdicts = {"register-serializable": check_file(bad.path), "main": check_file(good.path)}
    assert verdicts["register-serializable"]["counterexample"]["stuck_calls"]
    result = Result(experiment="partition", status="ok", error=None,
                    metadata={"started_utc": "2026-12-02T00:00:00Z",
                              "finished_utc": "2026-12-02T00:01:00Z"},
                    params={}, summary={}, samples={"histories": verdicts})
    from etcdlab.report import charts

    drawn = {}
    original = charts.history_timeline

    def keep(path, lanes, title, spans=None):
        drawn[Path(path).name] = lanes
        return original(path, lanes, title, spans)

    charts.history_timeline = keep
    try:
        files = history_timelines(result, tmp_path)
    finally:
        charts.history_timeline = original
    assert list(files) == ["register-serializable"]  # none for the linearizable one
    assert (tmp_path / files["register-serializable"]).read_bytes().startswith(b"\x89PNG")
    # Both operations of the contradiction are marked: the stale read and the put before it.
    ops = [op for lane in drawn[files["register-serializable"]].values() for op in lane]
    assert [op["label"] for op in ops if op["highlight"]] == ["get → nil"]
    assert [op["label"] for op in ops if op["contradicted"]] == [
        "put a, acknowledged before it"]


def test_check_file_counts_processes_and_unknown_outcomes(tmp_path):
    recorder = HistoryRecorder(tmp_path / "unknown.history.jsonl")
    recorder.call("w", "put", "k", {"value": "a"}, lambda: None, lambda r: (None, 2))

    def timed_out():
        raise FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED)

    with pytest.raises(grpc.RpcError):
        recorder.call("w", "put", "k", {"value": "b"}, timed_out, lambda r: (None, None))
    recorder.call("r", "get", "k", {}, lambda: None, lambda r: ("b", 3))  # b took effect
    recorder.close()
    verdict = check_file(recorder.path)
    assert (verdict["verdict"], verdict["processes"], verdict["unknown"]) == (
        "linearizable", 2, 1)
