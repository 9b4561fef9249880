"""Q5 ``read-latency``, staleness under load: the bounds of each read from hand-made
segments whose answers are worked out by hand, the ``load-…`` findings against data with
each outcome, and the section with and without the measurement."""

from __future__ import annotations

import copy
import json

import pytest

from etcdlab.questions.findings import by_id
from etcdlab.questions.q05_read_latency import analysis
from etcdlab.questions.q05_read_latency import run as experiment
from tests import ROOT
from tests.unit.report_helpers import rendered_section as render

QUICK = ROOT / "tests" / "data" / "quick-run"
LOADED = ROOT / "tests" / "data" / "read-latency-staleness" / "quick.json"


def quick_with_staleness() -> dict:
    """The checked-in quick run with the staleness samples of a real quick run added."""
    data = json.loads((QUICK / "read-latency.json").read_text())
    loaded = json.loads(LOADED.read_text())
    data["samples"]["staleness"] = loaded["staleness"]
    data["samples"]["histories"] = loaded["histories"]
    data["params"].update(loaded["params"])
    return data


def found(data: dict) -> dict:
    summary = analysis.summarize(data["samples"], data["params"])
    return by_id(analysis.findings(summary, data["params"]))


# Writes of revisions 101, 102, 103 (sent, acknowledged in µs from the segment's start).
WRITES = [[0, 10, 101], [20, 30, 102], [40, 50, 103]]


def segment(reads: list, probes: list | None = None, consistency: str = "serializable",
            writes: list | None = None) -> dict:
    return {"rate": 100, "round": 0, "base_revision": 100, "final_revision": 103,
            "writes": copy.deepcopy(WRITES if writes is None else writes),
            "probes": probes or [], "write_errors": {}, "writers": 1, "readers": 1,
            "blocks": [{"reader": 0, "consistency": consistency, "errors": {},
                        "reads": [[*r, r[2]] for r in reads]}]}


def bounds(reads: list, probes: list | None = None) -> list[tuple]:
    return [(r["revisions"], r["ms"], r["ahead"])
            for r in analysis.read_bounds(segment(reads, probes))]


def test_a_read_after_a_newer_acknowledgement_is_certainly_stale():
    # Sent at 35 µs, after 102 was acknowledged (30 µs), it saw 101: at least 1 behind;
    # at most 102 at its answer (103 was sent at 40 µs). In time: 102 applied by 30 µs
    # (so at least 5 µs behind), not before 20 µs when its write was sent (at most 16 µs).
    assert bounds([[35, 36, 101]]) == [((1, 1), (0.005, 0.016), False)]


def test_a_read_between_writes_that_saw_the_last_one_is_fresh():
    assert bounds([[12, 14, 101]]) == [((0, 0), (0.0, 0.0), False)]


def test_a_read_that_overlaps_a_write_in_flight_is_only_possibly_stale():
    # 102 was sent at 20 µs and acknowledged at 30 µs; the read ran from 15 to 25 µs.
    assert bounds([[15, 25, 101]]) == [((0, 1), (0.0, 0.005), False)]


def test_a_leader_read_narrows_the_bound_and_shows_a_follower_ahead():
    # The leader still answered 101 to a read sent at 26 µs: 102 was not applied there yet.
    probe = [[26, 27, 101]]
    assert bounds([[15, 25, 101]], probe) == [((0, 0), (0.0, 0.0), False)]
    # A follower that had applied 102 by 25 µs was ahead of the leader's last answer.
    assert bounds([[15, 25, 102]], probe)[0][2] is True
    # A leader answer of 102 at 28 µs makes a read sent at 29 µs that saw 101 stale.
    assert bounds([[29, 31, 101]], [[27, 28, 102]])[0][0] == (1, 1)


def test_a_write_of_unknown_outcome_leaves_the_bounds_valid():
    writes = [[0, 10, 101], [20, None, None], [40, 50, 103]]
    rows = analysis.read_bounds(segment([[45, 46, 101]], writes=writes))
    # Nothing acknowledged above 101 before 45 µs (102's write never answered): not
    # certainly stale; nothing was sent after the answer and the final revision is 103, so
    # at most 2 behind.
    assert rows[0]["revisions"] == (0, 2)


def test_parse_rates():
    assert analysis.parse_rates("100, 500,max") == [100, 500, None]
    with pytest.raises(ValueError):
        analysis.parse_rates("fast")
    assert experiment.EXPERIMENT.params(quick=True)["staleness_rates"] == "100,500"
    with pytest.raises(Exception, match="100,500,max"):
        experiment.EXPERIMENT.params(staleness_rates="100,,max")


def test_the_old_quick_run_has_no_load_findings_and_keeps_its_texts():
    data = json.loads((QUICK / "read-latency.json").read_text())
    f = found(data)
    assert not [i for i in f if i.startswith("load-")]
    assert "did not measure staleness" in f["course_stale"].text
    assert "nothing writes while they run" in f["staleness-serializable"].text


def test_the_real_quick_run_under_load():
    f = found(quick_with_staleness())
    serializable = f["load-staleness-serializable"]
    assert serializable.holds is True          # stale serializable reads under load
    assert "180 of 3,925" in serializable.text
    assert f["load-staleness-serializable-bounded"].holds is True
    never = f["load-staleness-linearizable-never"]
    assert never.holds is True and "0 of 1,455" in never.text
    assert "the checker finds all 4 histories linearizable" in never.text
    assert never.figures["histories checked"] == "4 histories, 3,384 operations"
    assert f["load-staleness-grows-with-rate"].holds is True
    assert f["load-write-rate"].holds is True
    assert f["course_stale"].holds is True
    assert "measured below" in f["staleness-serializable"].text
    summary = analysis.summarize(quick_with_staleness()["samples"], {})["staleness"]
    assert summary["rates"] == ["100", "500"]
    assert summary["cells"]["500"]["writes"]["unaccounted_revisions"] == 0


def synthetic(stale_ser: int, ser: int, stale_lin: int = 0, lin: int = 20,
              rate: int = 100) -> dict:
    """One segment whose serializable reads are ``stale_ser`` of ``ser`` one revision
    behind (sent after 102 was acknowledged), the others fresh."""
    seg = segment([], consistency="serializable")
    seg["rate"] = rate
    stale = [[35, 36, 101, 101]]
    fresh = [[12, 14, 101, 101]]
    seg["blocks"] = [
        {"reader": 0, "consistency": "serializable", "errors": {},
         "reads": stale * stale_ser + fresh * (ser - stale_ser)},
        {"reader": 0, "consistency": "linearizable", "errors": {},
         "reads": stale * stale_lin + [[35, 36, 102, 102]] * (lin - stale_lin)}]
    return seg


def loaded(*segments: dict, history: str | None = "linearizable") -> dict:
    data = json.loads((QUICK / "read-latency.json").read_text())
    data["samples"]["staleness"] = {"key": "/k", "leader": "qnode1", "follower": "qnode2",
                                    "heartbeat_ms": 100, "segments": list(segments)}
    for seg in segments:
        seg["history"] = f"staleness-{seg['rate']}-r{seg['round']}"
    if history:
        data["samples"]["histories"] = {seg["history"]: {
            "file": f"read-latency.{seg['history']}.history.jsonl", "operations": 50,
            "verdict": history, "counterexample": {"stuck": ["reader-0 get /k → 1"]}
            if history == "not-linearizable" else None} for seg in segments}
    return data


def test_no_certainly_stale_serializable_read_is_said_so(tmp_path):
    before = render(tmp_path / "a", loaded(synthetic(5, 40)))
    data = loaded(synthetic(0, 40))
    f = found(data)
    assert f["load-staleness-serializable"].holds is False
    assert "0 of 40" in f["load-staleness-serializable"].text
    assert f["course_stale"].holds is None
    after = render(tmp_path / "b", data)
    assert "No serializable read on the follower (qnode2) was certainly stale" in after
    assert "No serializable read on the follower" not in before
    assert "### Staleness under load" in before and "### Staleness under load" in after


@pytest.mark.parametrize(("stale_lin", "history", "holds"), [
    (0, "linearizable", True),
    (1, "linearizable", False),
    (0, "not-linearizable", False),
    (0, None, True),
])
def test_a_stale_linearizable_read_or_a_failed_check_breaks_the_never_claim(
        stale_lin, history, holds):
    f = found(loaded(synthetic(5, 40, stale_lin=stale_lin), history=history))
    finding = f["load-staleness-linearizable-never"]
    assert finding.holds is holds
    if history == "not-linearizable":
        assert "NOT linearizable" in finding.text
        assert "the checker finds 1 of the 1 histories NOT linearizable" in finding.text
        assert finding.figures["stuck at"] == (
            "`read-latency.staleness-100-r0.history.jsonl`: reader-0 get /k → 1")
    if history is None:
        assert "were not checked" in finding.text


def test_the_heartbeat_bound_holds_fails_or_cannot_be_told():
    fresh = synthetic(5, 40)  # at most 16 µs behind
    assert found(loaded(fresh))["load-staleness-serializable-bounded"].holds is True
    late = copy.deepcopy(fresh)  # the read sent 150 ms after 102 was acknowledged
    late["blocks"][0]["reads"].append([150_030, 150_031, 101, 101])
    late["final_revision"] = 103
    assert found(loaded(late))["load-staleness-serializable-bounded"].holds is False
    # Sent 50 ms after the acknowledgement, answered 150 ms after 102 was sent: between.
    straddle = copy.deepcopy(fresh)
    straddle["blocks"][0]["reads"].append([50_030, 150_020, 101, 101])
    f = found(loaded(straddle))["load-staleness-serializable-bounded"]
    assert f.holds is None and "cannot be told" in f.text


def test_staleness_that_grows_with_the_rate_and_a_rate_not_sustained(tmp_path):
    slow, fast = synthetic(2, 200, rate=100), synthetic(60, 200, rate=500)
    fast["round"] = 1
    f = found(loaded(slow, fast))
    assert f["load-staleness-grows-with-rate"].holds is True
    # 3 writes in a 50 µs window are 60,000 writes/s: both rates sustained.
    assert f["load-write-rate"].holds is True
    same = found(loaded(slow, synthetic(3, 200, rate=500)))
    assert same["load-staleness-grows-with-rate"].holds is False
    assert found(loaded(slow))["load-staleness-grows-with-rate"].holds is None
    short = synthetic(2, 200, rate=100)
    short["writes"] = [[0, 10, 101], [500_000, 500_010, 102], [1_000_000, 1_000_010, 103]]
    f = found(loaded(short))["load-write-rate"]
    assert f.holds is False and "fell short of 100 writes/s" in f.text


def test_the_section_shows_the_table_and_the_chart_only_when_measured(tmp_path):
    data = quick_with_staleness()
    text = render(tmp_path / "a", data)
    assert "### Staleness under load" in text
    assert "| 500 writes/s |" in text and "| serializable |" in text
    assert "read_latency_staleness.png" in text
    assert (tmp_path / "a" / "run" / "read_latency_staleness.png").stat().st_size > 1000
    assert "4 checked, the\n`read-latency.staleness-*.history.jsonl` files" in text
    plain = render(tmp_path / "b", json.loads((QUICK / "read-latency.json").read_text()))
    assert "Staleness under load" not in plain and "read_latency_staleness" not in plain
