"""Q2 conflicts: the analysis recomputes the summary, and each finding follows the data.

Each test changes the quick run's samples so that one claim's outcome is the opposite,
checks that the finding flips, and renders the report from the changed result to check
that the section's sentence changes with it.
"""

import copy
import json

import pytest

from etcdlab.questions.findings import by_id
from etcdlab.questions.q02_conflicts import analysis
from etcdlab.questions.q02_conflicts import run as experiment
from etcdlab.results import Result
from tests import DATA, ROOT
from tests.unit.report_helpers import rendered_section

QUICK = DATA / "quick-run" / "conflicts.json"
PACKAGE = ROOT / "etcdlab"
SECTIONS = PACKAGE / "sections" / "conflicts.py"
ANALYSIS = PACKAGE / "analysis" / "conflicts.py"


@pytest.fixture
def record():
    return json.loads(QUICK.read_text(encoding="utf-8"))


def outcome(record):
    """The findings of a (changed) result, by id."""
    summary = analysis.summarize(record["samples"], record["params"])
    return by_id(analysis.findings(summary, record["params"]))


def assert_flips(tmp_path, record, changed, finding_id, before, after):
    """The finding holds ``before`` on the quick run, ``after`` on the changed samples,
    and the rendered section shows the sentence that matches each."""
    original, flipped = outcome(record)[finding_id], outcome(changed)[finding_id]
    assert original.holds is before and flipped.holds is after
    assert original.text != flipped.text
    text_before = rendered_section(tmp_path, record, "before")
    text_after = rendered_section(tmp_path, changed, "after")
    assert original.text in text_before and original.text not in text_after
    assert flipped.text in text_after and flipped.text not in text_before


def test_summary_from_the_quick_run_matches_the_stored_one(record):
    summary = analysis.summarize(record["samples"], record["params"])
    stored = record["summary"]
    for method in ("naive", "cas"):
        for key, value in stored[method].items():
            assert summary[method][key] == pytest.approx(value), (method, key)
    assert summary["revisions_strictly_increasing"] is stored["revisions_strictly_increasing"]
    assert summary["attempted"] == stored["attempted"] == 400
    assert summary["naive"]["last_value"] == 93 == summary["naive"]["final_value"]
    assert summary["naive"]["distinct_values"] == 93
    assert experiment.summarize is analysis.summarize
    assert experiment.EXPERIMENT.summarize is analysis.summarize


def test_findings_of_the_quick_run_answer_first():
    record = json.loads(QUICK.read_text(encoding="utf-8"))
    items = analysis.findings(analysis.summarize(record["samples"], record["params"]),
                              record["params"])
    assert items[0].id == "naive_lost_updates" and items[0].kind == "measured"
    assert "lost 307 of 400 acknowledged increments (76.8 %)" in items[0].text
    kinds = {f.id: f.kind for f in items}
    assert kinds["course_last_committed_prevails"] == kinds["course_ordering_resolves"] \
        == "course"
    assert kinds["published_write_qps"] == "published"
    assert by_id(items)["cas_lost_none"].figures["lost"] == "0 of 400 (≤ 0.7 % at 95 %)"


def test_naive_without_losses_flips_the_answer_and_the_course_verdict(tmp_path, record):
    changed = copy.deepcopy(record)
    changed["samples"]["naive"]["final_value"] = changed["samples"]["naive"]["acknowledged"]
    assert_flips(tmp_path, record, changed, "naive_lost_updates", True, False)
    assert outcome(record)["course_ordering_resolves"].holds is False
    assert outcome(changed)["course_ordering_resolves"].holds is True


def test_cas_that_loses_increments_is_flagged(tmp_path, record):
    changed = copy.deepcopy(record)
    changed["samples"]["cas"]["final_value"] -= 5
    assert_flips(tmp_path, record, changed, "cas_lost_none", True, False)


def test_cas_with_unknown_outcomes_may_end_above_the_acknowledged_count(record):
    changed = copy.deepcopy(record)
    changed["samples"]["cas"]["final_value"] += 2
    assert outcome(changed)["cas_lost_none"].holds is False  # two more than acknowledged
    changed["samples"]["cas"]["unknown"] = 2  # … unless two timed out (and were applied)
    assert outcome(changed)["cas_lost_none"].holds is True


def test_a_final_value_other_than_the_last_write_contradicts_last_write_wins(tmp_path, record):
    changed = copy.deepcopy(record)
    changed["samples"]["naive"]["final_value"] -= 1
    assert_flips(tmp_path, record, changed, "last_write_wins", True, False)
    assert outcome(changed)["course_last_committed_prevails"].verdict == "contradicts"
    assert outcome(record)["course_last_committed_prevails"].verdict == "agrees"


def test_without_per_write_values_last_write_wins_cannot_be_tested(tmp_path, record):
    changed = copy.deepcopy(record)
    del changed["samples"]["naive"]["values"]
    finding = outcome(changed)["last_write_wins"]
    assert finding.holds is None and "no per-write values" in finding.text
    assert finding.text in rendered_section(tmp_path, changed, "no-values")


def test_no_retries_flips_the_price_of_cas(tmp_path, record):
    changed = copy.deepcopy(record)
    changed["samples"]["cas"]["retries"] = 0
    assert_flips(tmp_path, record, changed, "cas_retries", True, False)


def test_out_of_order_revisions_are_reported(tmp_path, record):
    changed = copy.deepcopy(record)
    revisions = changed["samples"]["cas"]["revisions"]
    revisions[10], revisions[11] = revisions[11], revisions[10]
    assert_flips(tmp_path, record, changed, "cas_revision_order", True, False)
    assert outcome(changed)["cas_revision_order"].figures[
        "consecutive pairs out of order"].startswith("1 of 399")


def test_a_faster_cas_flips_the_throughput_finding(tmp_path, record):
    changed = copy.deepcopy(record)
    changed["samples"]["cas"]["elapsed_s"] = changed["samples"]["naive"]["elapsed_s"] / 2
    assert_flips(tmp_path, record, changed, "cas_slower", True, False)


def test_the_published_rate_is_not_judged_whatever_the_rate(record):
    # 583 QPS is one client's plain puts on dedicated machines: a band around it for the
    # naive loop's read-and-write increments could not fail, so neither rate is judged.
    for factor in (1, 100):
        changed = copy.deepcopy(record)
        changed["samples"]["naive"]["elapsed_s"] *= factor
        result = Result.from_json_dict(changed)
        found = {f.id: f for f in analysis.findings(
            analysis.summarize(result.samples, result.params), result.params)}
        assert found["published_write_qps"].holds is None
        assert "cannot be tested in this run" in found["published_write_qps"].text
        assert "this run ÷ published" in found["published_write_qps"].figures


def test_asked_is_the_full_run_of_the_experiment():
    defaults = experiment.EXPERIMENT.params()
    for asked in analysis.ASKED:
        assert defaults[asked.param] == asked.value, asked.param


def test_quick_run_says_where_it_differs_from_the_question(tmp_path, record):
    text = rendered_section(tmp_path, record, "quick")
    assert "| Increments per worker | 50 | 200 |" in text
    full = copy.deepcopy(record)
    full["params"]["increments"] = 200
    assert "This run differs from the question" not in rendered_section(tmp_path, full, "full")
