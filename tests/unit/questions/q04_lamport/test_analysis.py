"""Q4 lamport: the analysis recomputes the checks, and each finding follows the data.

Each test changes the quick run's event log or shared-key writes so that one claim's
outcome is the opposite, checks that the finding flips, and renders the report from the
changed result to check that the section's sentence changes with it.
"""

import copy
import json

import pytest

from etcdlab.figures import clocks
from etcdlab.questions.findings import by_id
from etcdlab.questions.q04_lamport import analysis
from etcdlab.questions.q04_lamport import run as experiment
from tests import DATA, ROOT
from tests.unit.report_helpers import rendered_section

QUICK = DATA / "quick-run" / "lamport.json"
PACKAGE = ROOT / "etcdlab"
SECTIONS = PACKAGE / "sections" / "lamport.py"
ANALYSIS = PACKAGE / "analysis" / "lamport.py"


@pytest.fixture
def record():
    return json.loads(QUICK.read_text(encoding="utf-8"))


def outcome(record):
    summary = analysis.summarize(record["samples"], record["params"])
    return by_id(analysis.findings(summary, record["params"]))


def assert_flips(tmp_path, before_record, after_record, finding_id, before, after):
    original = outcome(before_record)[finding_id]
    flipped = outcome(after_record)[finding_id]
    assert original.holds is before and flipped.holds is after
    assert original.text != flipped.text
    text_before = rendered_section(tmp_path, before_record, "before")
    text_after = rendered_section(tmp_path, after_record, "after")
    assert original.text in text_before and original.text not in text_after
    assert flipped.text in text_after and flipped.text not in text_before


def events_of(record):
    return record["samples"]["messages"]["events"]


def next_seq(events, process):
    return max(e["seq"] for e in events if e["process"] == process) + 1


def test_summary_from_the_quick_run_matches_the_stored_one_and_etcdlab_clocks(record):
    summary = analysis.summarize(record["samples"], record["params"])
    for key, value in record["summary"].items():
        assert summary[key] == value, key
    events = events_of(record)
    check = clocks.clock_condition_check(events)  # the real-time pair check agrees with it
    assert summary["causal_pairs"] == check["causal_pairs"] == 3802
    assert summary["concurrent_pairs"] == check["concurrent_pairs"]
    assert summary["concurrent_equal_clock"] == check["concurrent_equal_clock"]
    assert summary["total_order_ties"] == clocks.total_order_ties(events) == 0
    assert summary["event_pairs"] == 93 * 92 // 2
    assert 0 < summary["concurrent_against_real_time"] < summary["concurrent_timed"]
    assert experiment.summarize is analysis.summarize
    assert experiment.lost_updates is analysis.lost_updates


def test_findings_of_the_quick_run_answer_first(record):
    items = analysis.findings(analysis.summarize(record["samples"], record["params"]),
                              record["params"])
    assert items[0].id == "clock_condition" and items[0].kind == "measured"
    assert "held for all 3,802 causally related pairs" in items[0].text
    kinds = [f.kind for f in items]
    assert kinds.count("course") == 2 and kinds.count("published") == 1


def test_a_receive_stamped_below_its_send_breaks_the_clock_condition(tmp_path, record):
    changed = copy.deepcopy(record)
    events = events_of(changed)
    sends = {e["msg"]: e for e in events if e["kind"] == "send"}
    receive = next(e for e in events if e["kind"] == "receive")
    receive["clock"] = sends[receive["msg"]]["clock"]
    assert_flips(tmp_path, record, changed, "clock_condition", True, False)
    assert outcome(changed)["course_per_process_rules"].verdict == "contradicts"
    assert outcome(changed)["published_lamport_1978"].verdict == "contradicts"
    assert outcome(record)["course_per_process_rules"].verdict == "agrees"


def test_an_undelivered_message_is_reported(tmp_path, record):
    changed = copy.deepcopy(record)
    events = events_of(changed)
    events.append({"process": 1, "seq": next_seq(events, 1), "kind": "send", "clock": 99,
                   "msg": "1.99", "peer": 2, "outcome": "ok", "t": 1.0})
    assert_flips(tmp_path, record, changed, "messages_delivered", True, False)


def test_two_events_with_one_stamp_break_the_total_order(tmp_path, record):
    changed = copy.deepcopy(record)
    events = events_of(changed)
    last = max((e for e in events if e["process"] == 1), key=lambda e: e["seq"])
    events.append({**last, "seq": last["seq"] + 1, "kind": "local", "msg": None,
                   "peer": None, "t": last["t"] + 0.001})
    assert_flips(tmp_path, record, changed, "total_order", True, False)
    assert outcome(changed)["published_lamport_1978"].holds is False


def _two_concurrent_events(record, second_clock):
    changed = copy.deepcopy(record)
    changed["samples"]["messages"]["events"] = [
        {"process": 1, "seq": 0, "kind": "local", "clock": 1, "msg": None, "peer": None,
         "outcome": "ok", "t": 0.001},
        {"process": 2, "seq": 0, "kind": "local", "clock": second_clock, "msg": None,
         "peer": None, "outcome": "ok", "t": 0.002},
    ]
    return changed


def test_equal_clocks_of_concurrent_events_are_ordered_by_the_id(tmp_path, record):
    equal, unequal = _two_concurrent_events(record, 1), _two_concurrent_events(record, 2)
    assert_flips(tmp_path, equal, unequal, "concurrent_ordered_by_id", True, False)
    # Without any causal pair the clock condition is not tested, and says so.
    finding = outcome(equal)["clock_condition"]
    assert finding.holds is None and "no causally related pair" in finding.text


def test_real_time_order_matching_lamport_order_flips_the_real_time_finding(tmp_path, record):
    changed = copy.deepcopy(record)
    ordered = sorted(events_of(changed), key=lambda e: (e["clock"], e["process"]))
    for rank, event in enumerate(ordered):
        event["t"] = rank / 1000
    assert_flips(tmp_path, record, changed, "concurrent_vs_real_time", True, False)


def test_a_log_without_times_cannot_set_lamport_order_against_real_time(record):
    changed = copy.deepcopy(record)
    for event in events_of(changed):
        del event["t"]
    summary = analysis.summarize(changed["samples"], changed["params"])
    finding = by_id(analysis.findings(summary, changed["params"]))["concurrent_vs_real_time"]
    assert finding.holds is None and "no event times" in finding.text


def test_a_shared_key_whose_writers_each_read_the_last_write_loses_nothing(tmp_path, record):
    changed = copy.deepcopy(record)
    writes = changed["samples"]["shared_key"]["naive"]["writes"]
    for previous, current in zip(writes, writes[1:], strict=False):
        current["read_mod_revision"] = previous["revision"]
    assert_flips(tmp_path, record, changed, "shared_key_naive_loses", True, False)
    assert outcome(record)["course_shared_key"].verdict == "contradicts"
    assert outcome(changed)["course_shared_key"].verdict == "agrees"


def test_a_cas_that_loses_updates_is_flagged(tmp_path, record):
    changed = copy.deepcopy(record)
    shared = changed["samples"]["shared_key"]
    shared["cas"]["writes"] = copy.deepcopy(shared["naive"]["writes"])
    assert_flips(tmp_path, record, changed, "shared_key_cas_keeps", True, False)
    assert "kept every update" in outcome(record)["course_shared_key"].text
    assert "kept every update" not in outcome(changed)["course_shared_key"].text


def test_asked_is_the_full_run_of_the_experiment():
    defaults = experiment.EXPERIMENT.params()
    for asked in analysis.ASKED:
        assert defaults[asked.param] == asked.value, asked.param


def test_quick_run_says_where_it_differs_from_the_question(tmp_path, record):
    text = rendered_section(tmp_path, record, "quick")
    assert "| Events per process | 20 | 60 |" in text
    assert "| Updates of the shared key per process | 50 | 200 |" in text
    assert "#### Method" in text.split("### Appendix")[1]
