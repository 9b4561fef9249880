"""The verdicts a run's setup would decide are judged fairly or said to be untestable, and
the summary keeps ten rows whatever happened to a question (issue 29).

Each test takes a saved run from tests/data, changes the data so that the outcome is the
opposite, and checks that the finding's sentence (and the summary's few words) change."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from etcdlab import report
from etcdlab.questions.findings import by_id
from etcdlab.questions.q01_election import analysis as q1
from etcdlab.questions.q05_read_latency import analysis as q5
from etcdlab.questions.q06_quota import analysis as q6
from etcdlab.questions.q07_ntp_isolation import analysis as q7
from etcdlab.results import load_results
from tests.unit.report_helpers import template_section

DATA = Path(__file__).resolve().parent.parent / "data"
QUICK = load_results(DATA / "quick-run")
BENCH = load_results(DATA / "bench-quick-lab")
HOLDOVER = load_results(DATA / "holdover-run")["ntp-isolation"]


def assert_rendered(result, before, after, finding_id):
    """The section rendered with each set of findings shows that one's sentence only."""
    old = template_section(result, list(before.values()))
    new = template_section(result, list(after.values()))
    assert before[finding_id].text in old and before[finding_id].text not in new
    assert after[finding_id].text in new


# --- Q7: iburst cannot matter when both clients already poll at least as often ----------

def _q7(summary, params):
    return by_id(q7.findings(summary, params))


def test_iburst_is_not_judged_when_both_clients_poll_as_often_as_iburst():
    result = BENCH["ntp-isolation"]
    summary = q7.summarize(result.samples, result.params)
    judged = _q7(summary, result.params)
    assert judged["course-iburst"].holds is not None  # 4 s polls: slower than iburst's 2 s
    fast = copy.deepcopy(summary)
    for mode in ("iburst", "no_iburst"):
        fast[mode]["poll_at_cut"] = -1  # every 0.5 s
    untested = _q7(fast, result.params)
    assert untested["iburst-return"].holds is None
    assert untested["course-iburst"].holds is None
    assert "polled every 500 ms" in untested["course-iburst"].text
    assert untested["course-iburst"].figures["iburst's spacing of its first requests"] == (
        "2.00 s or less")
    assert untested["course-iburst"].text != judged["course-iburst"].text
    assert "cannot be tested in this run" in untested["course-iburst"].judgement
    assert_rendered(result, judged, untested, "course-iburst")


def test_iburst_return_counts_the_whole_second_readings():
    result = BENCH["ntp-isolation"]
    summary = q7.summarize(result.samples, result.params)
    # 3 s against 7 s at a 4 s poll: within one poll and two whole-second readings
    assert _q7(summary, result.params)["iburst-return"].holds is False
    later = copy.deepcopy(summary)
    later["no_iburst"]["resync_s"] = 20.0
    found = _q7(later, result.params)
    assert found["iburst-return"].holds is True
    assert found["course-iburst"].holds is True


# --- Q7: the driftfile verdict rests on the restart, not on a recorded rate -------------

def test_the_driftfile_verdict_rests_on_the_restart_with_it():
    summary = q7.summarize(HOLDOVER.samples, HOLDOVER.params)
    mixed = _q7(summary, HOLDOVER.params)["course-driftfile"]
    # one client went 48.6 → 33.5 s, the other 36.5 → 32.5 s: they disagree
    assert mixed.holds is None and "The clients disagree" in mixed.text
    both = copy.deepcopy(summary)
    for mode in ("iburst", "no_iburst"):
        both[mode]["settle_s"], both[mode]["settle_with_driftfile_s"] = 45.0, 5.0
    sooner = _q7(both, HOLDOVER.params)["course-driftfile"]
    assert sooner.holds is True and "settled sooner" in sooner.text
    neither = copy.deepcopy(summary)
    for mode in ("iburst", "no_iburst"):
        neither[mode]["settle_s"], neither[mode]["settle_with_driftfile_s"] = 45.0, 44.0
    later = _q7(neither, HOLDOVER.params)["course-driftfile"]
    assert later.holds is False and "did not settle measurably sooner" in later.text
    quick = copy.deepcopy(summary)
    for mode in ("iburst", "no_iburst"):
        quick[mode]["settle_s"], quick[mode]["settle_with_driftfile_s"] = 5.0, 2.0
    untested = _q7(quick, HOLDOVER.params)["course-driftfile"]
    assert untested.holds is None and "cannot be tested in this run" in untested.text
    assert len({mixed.text, sooner.text, later.text, untested.text}) == 4


# --- Q1: a CI of the mean that holds every model's mean tests none ----------------------

def test_the_model_mean_is_not_judged_by_an_interval_that_holds_every_model():
    result = QUICK["election"]
    summary = q1.summarize(result.samples, result.params)
    found = by_id(q1.findings(summary, result.params, result.metadata))
    assert found["published-mean"].holds is True  # 95 % CI 1.17 – 1.57 s at T = 1 s
    wide = copy.deepcopy(summary)
    wide["crash"]["mean_ci_s"] = [0.9, 1.9]
    flipped = by_id(q1.findings(wide, result.params, result.metadata))
    untested = flipped["published-mean"]
    assert untested.holds is None
    assert "cannot be tested in this run" in untested.text
    assert_rendered(result, found, flipped, "published-mean")


def test_the_course_election_is_judged_against_the_measured_range():
    result = QUICK["election"]
    summary = q1.summarize(result.samples, result.params)
    before = by_id(q1.findings(summary, result.params, result.metadata))["course-1.77s"]
    assert before.holds is None and "too few to call it rare" in before.text
    slower = copy.deepcopy(summary)
    slower["crash"]["log_values_s"] = [*slower["crash"]["log_values_s"][:-1], 1.9]
    after = by_id(q1.findings(slower, result.params, result.metadata))["course-1.77s"]
    assert after.holds is True
    assert after.judgement.startswith("election 1.77 s: inside the measured range")
    assert after.judgement.endswith("✓")


# --- Q5: saturated cells do not decide the course's verdict ------------------------------

def test_the_course_latency_verdict_leaves_out_saturated_cells():
    result = BENCH["read-latency"]
    summary = q5.summarize(result.samples, result.params)
    found = by_id(q5.findings(summary, result.params))
    assert found["saturation"].holds is True
    assert found["course_latency"].holds is True
    assert "The saturated cells (32 clients) are not judged" in found["course_latency"].text
    assert found["course_latency"].figures["not judged (saturated)"] == "the cells with 32 clients"
    # With the top level not saturated (throughput kept growing), its cells are judged.
    growing = by_id(q5.findings(_unsaturated(copy.deepcopy(summary)), result.params))
    assert growing["saturation"].holds is False
    assert growing["course_latency"].text != found["course_latency"].text
    assert_rendered(result, found, growing, "course_latency")


def _unsaturated(summary):
    """The summary with the top level's throughput grown as fast as its clients."""
    levels = summary["levels"]
    below, top = levels[-2], levels[-1]
    for target in q5.TARGETS:
        for consistency in q5.CONSISTENCIES:
            low = q5.cell(summary, below, target, consistency)
            high = q5.cell(summary, top, target, consistency)
            if low and high and low["throughput_rps"]:
                high["throughput_rps"] = low["throughput_rps"] * top / below
    return summary


# --- Q6: "read-only" is judged on the writes it forbids -----------------------------------

def test_read_only_is_judged_on_the_delete_not_on_the_reads():
    result = QUICK["quota"]
    summary = q6.summarize(result.samples, result.params)
    everything = by_id(q6.findings(summary, result.params))
    found = everything["course_read_only"]
    assert found.holds is False
    assert found.judgement == "read-only under NOSPACE: deletes still accepted ✗"
    refused = copy.deepcopy(summary)
    refused["probes"]["delete"]["outcome"] = "failed"
    refused["probes"]["delete"]["details"] = q6.NOSPACE_TEXT
    flipped = by_id(q6.findings(refused, result.params))
    agreed = flipped["course_read_only"]
    assert agreed.holds is True
    assert agreed.judgement == "read-only under NOSPACE: reads worked, deletes refused ✓"
    assert_rendered(result, everything, flipped, "course_read_only")


# --- the summary: ten rows whatever happened ---------------------------------------------

def test_the_summary_keeps_ten_rows_and_says_why_a_question_failed(tmp_path):
    folder = tmp_path / "quick-run"
    shutil.copytree(DATA / "quick-run", folder)
    path = folder / "lease-drift.json"
    data = json.loads(path.read_text())
    data.update(status="failed", error="libfaketime.so.1 is missing: install the Debian "
                                       "package faketime\nTraceback …")
    path.write_text(json.dumps(data))
    (folder / "membership.json").unlink()
    quota = json.loads((folder / "quota.json").read_text())
    quota.update(status="interrupted", error="interrupted by the user (SIGINT)")
    (folder / "quota.json").write_text(json.dumps(quota))
    text = report.render_report(folder).read_text()
    head = text[:text.index("## Summary")]
    assert "7 of 10 questions measured; interrupted: Q6; failed: Q8; not measured: Q10" in head
    assert "ran" not in head.replace("--quick", "")
    summary = text[text.index("## Summary"):text.index("### How to read the figures")]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == [str(n) for n in range(1, 11)]
    assert ("| 8 | `lease-drift` | failed: libfaketime.so.1 is missing: install the Debian "
            "package faketime | not judged |") in rows[7]
    assert "| 10 | `membership` | not run: `invoke experiment membership` measures it" in rows[9]
    assert "| 6 | `quota` | interrupted: interrupted by the user (SIGINT) | not judged |" in rows[5]
    for row in rows[:5] + rows[6:7]:
        answer, course = row.split(" | ")[2], row.split(" | ")[3]
        assert len(answer) <= 200, answer
        assert course not in ("agrees", "contradicts") and "agrees, " not in course


# --- Q4: a property that holds by construction carries no sampling bound -----------------

def test_the_clock_condition_is_counted_not_bounded():
    from etcdlab.questions.q04_lamport import analysis as q4

    result = QUICK["lamport"]
    summary = q4.summarize(result.samples, result.params)
    found = by_id(q4.findings(summary, result.params))
    condition = found["clock_condition"]
    assert condition.holds is True
    assert "at 95 %" not in condition.text and "at 95 %" not in str(condition.figures)
    assert "by construction" in condition.text
    broken = copy.deepcopy(summary)
    broken["clock_condition_violations"] = 2
    flipped = by_id(q4.findings(broken, result.params))
    assert flipped["clock_condition"].holds is False
    assert "2 of 3,802" in flipped["clock_condition"].text
    assert_rendered(result, found, flipped, "clock_condition")
