"""Q8's server-clock analysis: the arithmetic, a real run's samples, and the findings."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from etcdlab.figures.clocks import drift_rate
from etcdlab.questions.findings import by_id, claim
from etcdlab.questions.q08_lease_drift import server_clock_analysis as server_clock
from tests import DATA

SAMPLES = DATA / "server-clock" / "quick-samples.json"


@pytest.fixture
def record():
    return copy.deepcopy(json.loads(SAMPLES.read_text())["server_clock"])


def test_the_courses_500_ms_per_minute_expires_a_60_s_lease_496_ms_early():
    assert server_clock.predicted_early_s(60, drift_rate(500)) == pytest.approx(0.4959, abs=1e-4)
    assert server_clock.predicted_early_s(10, 1.5) == pytest.approx(10 / 3)
    assert server_clock.predicted_early_s(10, 1.0) == 0


def test_a_new_leader_gives_a_full_ttl_and_an_election_timeout_from_the_move():
    assert server_clock.predicted_moved_s(3.5, 10, 1.0) == 14.5


@pytest.mark.parametrize(("measured", "expected"), [
    (3.33, True), (4.1, True), (4.3, False), (2.4, False), (None, None)])
def test_agreement_is_within_25_percent_or_100_ms(measured, expected):
    assert server_clock.agrees(measured, 10 / 3) is expected
    assert server_clock.agrees(0.05, 0.0) is True  # the 100 ms floor


def test_log_stamps_are_read_from_etcds_json_lines():
    line = '{"level":"info","ts":"2026-12-07T18:45:36.492Z","msg":"finished defragmenting"}'
    expected = datetime(2026, 12, 7, 18, 45, 36, 492000, tzinfo=UTC).timestamp()
    assert server_clock.parse_log_stamp(line) == pytest.approx(expected, abs=1e-6)
    assert server_clock.parse_log_stamp("not json") is None


def test_the_remaining_ttl_falls_at_the_clocks_rate():
    # A leader clock at 2 × real time: a 60 s lease's whole-second TTL, polled every 0.1 s.
    polls = [{"before": t / 10, "after": t / 10 + 0.001, "ttl": int(60 - 2 * (t / 10))}
             for t in range(0, 200)]
    fall = server_clock.ttl_rate(polls)
    assert fall["rate"] == pytest.approx(2.0, abs=fall["resolution"])
    assert fall["edges"] > 30
    assert server_clock.ttl_rate(polls[:3])["rate"] is None


def test_a_real_runs_fault_reached_etcd_and_expired_leases_early_as_predicted(record):
    part = server_clock.summarize(record)
    assert part["reached_etcd"] is True
    assert part["log_rate"] == pytest.approx(1.5, abs=0.01)
    assert part["ttl_rate"] == pytest.approx(1.5, abs=0.05)
    assert part["early_n"] == 4
    assert part["early_expiry_min_s"] <= part["early_expiry_s"] <= part["early_expiry_max_s"]
    assert part["early_agrees"] is True
    assert part["predicted_early_expiry_s"] == pytest.approx(10 / 3)
    assert part["moved"]["refreshed"] is True
    assert part["moved"]["lived_past_faked_deadline"] is True
    assert part["fencing"]["believed_left_s"] > 3
    found = by_id(server_clock.findings(part))
    assert all(found[i].holds is True for i in found), {i: f.text for i, f in found.items()}
    assert server_clock.course_finding(part).holds is True


def test_a_fault_that_did_not_reach_etcd_answers_the_course_with_cannot_tell(record):
    # etcd's log stamps as if its clock had stayed true: each probe's real time.
    stamps = [(p["before"] + p["after"]) / 2 for p in record["probes"]]
    record["log"] = [json.dumps({"ts": datetime.fromtimestamp(s, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")}) for s in stamps]
    part = server_clock.summarize(record)
    assert part["log_rate"] == pytest.approx(1.0, abs=0.01)
    assert part["reached_etcd"] is False
    assert by_id(server_clock.findings(part))["server-clock-reached-etcd"].holds is False
    assert server_clock.course_finding(part).holds is None


def test_a_skipped_part_is_untestable_with_its_reason(record):
    record.update(skipped="server_drift_ms_per_min is 0", phases={}, probes=[], log=[],
                  ttl_polls=[], fencing={})
    part = server_clock.summarize(record)
    for finding in [*server_clock.findings(part), server_clock.course_finding(part)]:
        assert finding.holds is None
        assert "server_drift_ms_per_min is 0" in finding.text
    assert server_clock.table(part)["measured"] is False


def test_early_expiry_off_the_prediction_contradicts(record):
    for lease in record["phases"]["faked"]["leases"]:
        lease["revoked_real"] += 2.0  # as if etcd had revoked 2 s later
    part = server_clock.summarize(record)
    assert part["early_agrees"] is False
    assert server_clock.course_finding(part).holds is False


def test_q8_findings_get_the_part_and_keep_old_results_as_they_were(record):
    course = claim("course-premature-expiry", None, "a", "b", "cannot fake Go")
    other = claim("something-else", True, "a", "b")
    assert server_clock.with_findings([other, course], {"server_clock": None}) == [other, course]
    items = server_clock.with_findings([other, course],
                                       {"server_clock": server_clock.summarize(record)})
    ids = [f.id for f in items]
    assert ids[:2] == ["something-else", "course-premature-expiry"]
    assert items[1].holds is True and items[1].kind == "course"
    assert "server-clock-premature-expiry" in ids and "server-clock-reached-etcd" in ids


def test_a_run_killed_during_the_fault_says_what_it_could_not_measure(record):
    # As a SIGKILL during the fast phase leaves it: no log read yet, no later phase.
    del record["log"]
    record["phases"].pop("moved")
    record["phases"].pop("faked")
    record["fencing"] = {}
    part = server_clock.summarize(record)
    found = by_id(server_clock.findings(part))
    assert found["server-clock-reached-etcd"].holds is None
    assert found["server-clock-premature-expiry"].holds is None
    assert "not tried in this run" in found["server-clock-fencing"].text
    assert server_clock.course_finding(part).holds is None


def test_the_full_run_at_the_courses_500_ms_per_minute_agrees_with_the_course():
    record = json.loads((SAMPLES.parent / "full-samples.json").read_text())["server_clock"]
    part = server_clock.summarize(record)
    assert part["drift_ms_per_min"] == 500.0 and part["ttl_s"] == 60 and part["early_n"] == 5
    assert part["log_rate"] == pytest.approx(drift_rate(500), abs=part["log"]["resolution"])
    assert part["reached_etcd"] is True and part["early_agrees"] is True
    assert part["predicted_early_expiry_s"] == pytest.approx(0.496, abs=0.001)
    assert part["fencing"]["believed_valid"] is True and part["fencing"]["fenced_ok"] is False
    assert server_clock.course_finding(part).holds is True
