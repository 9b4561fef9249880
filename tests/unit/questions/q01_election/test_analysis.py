"""Q1 ``election`` analysis: the summary from the quick run, and every finding flips with
the data, in the findings and in the rendered section."""

from __future__ import annotations

import copy
import json

import pytest

from etcdlab.questions.findings import by_id
from etcdlab.questions.q01_election import analysis
from tests import ROOT
from tests.unit.report_helpers import rendered_section as rendered

QUICK = ROOT / "tests" / "data" / "quick-run" / "election.json"


def quick() -> dict:
    return json.loads(QUICK.read_text())


def findings_of(data: dict) -> dict:
    summary = analysis.summarize(data["samples"], data["params"])
    return by_id(analysis.findings(summary, data["params"], data["metadata"]))


def test_summary_of_the_quick_run():
    data = quick()
    summary = analysis.summarize(data["samples"], data["params"])
    assert summary["crash"]["trials"] == 5
    assert summary["crash"]["median_s"] == pytest.approx(1.500752)
    assert summary["graceful"]["median_s"] == pytest.approx(0.015768)
    split = summary["graceful"]["first_write_split"]
    # Trials 3 and 5 wrote before etcd logged the new leader (8.9 ms < 81.8 ms, 7.2 < 9.7).
    assert split["before_s"] == pytest.approx([0.007217, 0.008946])
    assert split["after_s"] == pytest.approx([0.01606, 0.112553, 0.120862])
    assert split["basis"] == "log"
    assert summary["crash"]["first_write_split"]["before_s"] == []
    assert summary["members_consistent"] is True
    assert summary["detection_lag_median_ms"] == pytest.approx(5.051, abs=1e-3)


def test_all_quick_run_findings_hold_and_the_first_is_the_crash_answer():
    found = findings_of(quick())
    assert list(found)[0] == "crash-window"
    # The one contradiction: under the election model only 3.2 % of elections take the
    # course's 1.77 s or longer (checked in test_the_course_figure_under_the_model_…).
    # The course's 1.77 s lies above the 5 quick elections, too few to call it rare.
    held = {k: f.holds for k, f in found.items()
            if k not in ("course-1.77s-model", "course-1.77s")}
    assert all(h is True for h in held.values()), held
    assert found["course-1.77s-model"].holds is False
    assert found["course-1.77s"].holds is None
    assert "too few to call it rare" in found["course-1.77s"].text


def test_a_first_write_is_classified_against_the_log_stamp_then_the_poll():
    assert analysis.classify_first_write(
        {"first_write_s": 0.005, "log_elected_s": 0.006, "elected_s": 0.01}) == "before"
    assert analysis.classify_first_write(
        {"first_write_s": 0.0065, "log_elected_s": 0.006, "elected_s": 0.01}) == "unresolved"
    assert analysis.classify_first_write(
        {"first_write_s": 0.0075, "log_elected_s": 0.006, "elected_s": 0.01}) == "after"
    # Without a log stamp the polled time only bounds the election from above.
    assert analysis.classify_first_write(
        {"first_write_s": 0.005, "log_elected_s": None, "elected_s": 0.01}) == "unresolved"
    assert analysis.classify_first_write(
        {"first_write_s": 0.02, "log_elected_s": None, "elected_s": 0.01}) == "after"


def test_the_timeout_model():
    assert analysis.model_mean(1.0, 2) == pytest.approx(4 / 3)


def test_the_election_model_takes_the_cluster_from_the_metadata_and_the_poll_from_params():
    data = quick()
    model = analysis.election_model(data["metadata"], data["params"])
    assert (model.timeout_s, model.heartbeat_s, model.survivors) == (1.0, 0.1, 2)
    assert model.poll_s == pytest.approx(0.005)
    assert analysis.election_model(data["metadata"], data["params"], poll=False).poll_s == 0
    # etcd's defaults when the metadata lacks the settings.
    assert analysis.election_model({}, {}).timeout_s == 1.0


def test_the_model_fit_of_the_quick_run():
    fit = findings_of(quick())["model-fit"]
    assert fit.holds is True
    assert fit.figures["Kolmogorov–Smirnov"] == (
        "D = 0.451 at 1.36 s, p = 0.192, n = 5, p-value exact (Marsaglia–Tsang–Wang)")
    assert fit.figures["model median / p95"] == "1.25 s / 1.73 s"
    assert fit.figures["rejected at 5 % from"] == "D ≥ 0.563 (n = 5)"
    assert fit.figures["measured median"].startswith("1.50 s (n = 5: ")


def test_crash_times_drawn_from_the_model_fit_it():
    data = quick()
    model = analysis.election_model(data["metadata"], data["params"])
    base = data["samples"]["crash"][0]
    data["samples"]["crash"] = [
        dict(base, trial=i + 1, elected_s=model.quantile((i + 0.5) / 20),
             log_elected_s=model.quantile((i + 0.5) / 20) - 0.004)
        for i in range(20)]
    fit = findings_of(data)["model-fit"]
    assert fit.holds is True
    assert "n = 20" in fit.figures["Kolmogorov–Smirnov"]
    assert fit.figures["rejected at 5 % from"] == "D ≥ 0.294 (n = 20)"


def test_the_course_figure_under_the_model_flips_with_the_election_timeout(tmp_path):
    base = quick()
    before = findings_of(base)["course-1.77s-model"]
    assert before.holds is False
    assert before.figures["percentile under the model"] == (
        "96.8 % (3.2 % of modelled elections as slow or slower)")
    assert before.figures["measured elections faster"].startswith("5 of 5")
    assert before.figures["measured to"] == "etcd's log line"
    changed = copy.deepcopy(base)
    changed["metadata"]["election_timeout_ms"] = 1200
    after = findings_of(changed)["course-1.77s-model"]
    assert after.holds is True
    old_text, new_text = rendered(tmp_path, base, "base"), rendered(tmp_path, changed, "new")
    assert before.text in old_text and before.text not in new_text
    assert after.text in new_text


def test_without_crash_trials_the_model_findings_cannot_be_tested(tmp_path):
    data = quick()
    data["samples"]["crash"] = []
    found = findings_of(data)
    assert found["model-fit"].holds is None
    assert found["course-1.77s-model"].holds is None
    assert "nothing to be tested against" in rendered(tmp_path, data, "nocrash")


def _slow_crashes(data):
    for t in data["samples"]["crash"]:
        t["elected_s"] += 1.2
        t["log_elected_s"] += 1.2
        t["first_write_s"] += 1.2


def _graceful_like_crash(data):
    for g, c in zip(data["samples"]["graceful"], data["samples"]["crash"], strict=True):
        g.update(elected_s=c["elected_s"] + 0.01, log_elected_s=c["log_elected_s"] + 0.01,
                 first_write_s=c["first_write_s"] + 0.01)


def _graceful_writes_late(data):
    for t in data["samples"]["graceful"]:
        t["first_write_s"] = t["log_elected_s"] + 0.05


def _crash_write_early(data):
    trial = data["samples"]["crash"][0]
    trial["first_write_s"] = trial["log_elected_s"] - 0.01


def _two_rounds(data):
    data["samples"]["crash"][0]["term_after"] += 1


def _diverged(data):
    data["samples"]["consistency"][1]["consistent"] = False


def _many_fast_crashes(data):
    # 60 elections, none as slow as 1.775 s: elections that slow are then < 5 % at 95 %.
    base = data["samples"]["crash"][0]
    data["samples"]["crash"] = [dict(base, trial=i + 1) for i in range(60)]


def _crashes_at_three_timeouts(data):
    # 3 T, beyond anything the model allows (its support ends at 2 T + poll + rounds).
    for i, t in enumerate(data["samples"]["crash"]):
        t.update(elected_s=3.0 + 0.01 * i, log_elected_s=2.995 + 0.01 * i,
                 first_write_s=3.01 + 0.01 * i)


def _graceful_waits(data):
    trial = data["samples"]["graceful"][0]
    trial.update(elected_s=1.5, log_elected_s=1.49, first_write_s=1.6)


def _crash_mean_far(data):
    for t, v in zip(data["samples"]["crash"], (1.90, 1.92, 1.94, 1.96, 1.98), strict=True):
        t.update(elected_s=v, log_elected_s=v - 0.005, first_write_s=v + 0.01)


FLIPS = [
    ("crash-window", _slow_crashes, False),
    ("model-fit", _crashes_at_three_timeouts, False),
    ("graceful-faster", _graceful_like_crash, None),
    ("graceful-writes-split", _graceful_writes_late, False),
    ("crash-writes-after-leader", _crash_write_early, False),
    ("one-round", _two_rounds, False),
    ("members-consistent", _diverged, False),
    ("published-transfer", _graceful_waits, False),
    ("published-mean", _crash_mean_far, False),
]


@pytest.mark.parametrize(("finding", "change", "expected"), FLIPS, ids=[f[0] for f in FLIPS])
def test_each_finding_flips_with_the_data_and_the_section_says_so(tmp_path, finding, change,
                                                                  expected):
    base = quick()
    before = findings_of(base)[finding]
    assert before.holds is True
    changed = copy.deepcopy(base)
    change(changed)
    after = findings_of(changed)[finding]
    assert after.holds is expected
    assert after.text != before.text
    old_text, new_text = rendered(tmp_path, base, "base"), rendered(tmp_path, changed, "new")
    assert before.text in old_text and before.text not in new_text
    assert after.text in new_text


def test_graceful_writes_without_election_times_cannot_be_split(tmp_path):
    data = quick()
    for t in data["samples"]["graceful"]:
        t["log_elected_s"] = None
        t["first_write_s"] = t["elected_s"] - 0.001
    finding = findings_of(data)["graceful-writes-split"]
    assert finding.holds is None
    assert "cannot be split" in rendered(tmp_path, data, "nolog")


def test_the_course_start_point_follows_its_log_line(tmp_path, monkeypatch):
    assert analysis.lost_connection_at_kill("unexpected EOF") is True
    assert analysis.lost_connection_at_kill("read tcp: i/o timeout") is False
    assert analysis.lost_connection_at_kill("something else") is None
    base = rendered(tmp_path, quick(), "base")
    monkeypatch.setattr(analysis, "COURSE_LOST_CONNECTION_ERROR", "i/o timeout")
    finding = findings_of(quick())["course-start-point"]
    assert finding.holds is False
    text = rendered(tmp_path, quick(), "timeout")
    assert finding.text in text and finding.text not in base


@pytest.mark.parametrize(("verdict", "holds"), [("linearizable", True),
                                                ("not-linearizable", False), ("unknown", None)])
def test_the_failover_writes_history_verdict_is_a_finding_and_shown(tmp_path, verdict, holds):
    data = quick()
    data["samples"]["histories"] = {"main": {
        "file": "election.history.jsonl", "verdict": verdict, "operations": 64,
        "processes": 20, "unknown": 9, "faults": 10, "budget_s": 20.0, "elapsed_s": 0.05,
        "counterexample": {"stuck": ["get /etcdlab/election/crash/1 → attempt 1"]}
        if verdict == "not-linearizable" else None}}
    finding = findings_of(data)["linearizable-main"]
    assert finding.holds is holds
    assert finding.figures["unknown outcomes"] == "9"
    assert finding.text in rendered(tmp_path, data, verdict)
