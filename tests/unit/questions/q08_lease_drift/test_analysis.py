"""Q8 lease-drift: the analysis on the real quick run, and every finding following the data.

Each test builds samples with the opposite outcome from a copy of the quick run, checks
that the finding's ``holds`` flips and that the rendered section says something else.
"""

import copy
import json

import pytest

from etcdlab import report
from etcdlab.figures.clocks import drift_rate
from etcdlab.figures.leases import min_lease_ttl_s
from etcdlab.questions.findings import by_id, leader_change_leases
from etcdlab.questions.q08_lease_drift import run as lease_drift_experiment
from etcdlab.questions.q08_lease_drift.analysis import (
    findings,
    lease_reset_finding,
    paused_findings,
    predicted_error_s,
    summarize,
)
from tests import ROOT
from tests.unit.report_helpers import rendered_section as section_text

QUICK = ROOT / "tests" / "data" / "quick-run" / "lease-drift.json"


@pytest.fixture(scope="module")
def quick():
    return json.loads(QUICK.read_text())


def judged(record):
    return by_id(findings(summarize(record["samples"], record["params"]), record["params"]))


def holder(record, name):
    return record["samples"]["trials"][0]["holders"][name]


def test_summary_of_the_quick_run(quick):
    summary = summarize(quick["samples"], quick["params"])
    assert summary["slow"]["belief_errors_s"] == [pytest.approx(0.4347, abs=1e-3)]
    assert summary["fast"]["belief_errors_s"] == [pytest.approx(-1.0792, abs=1e-3)]
    assert summary["fenced_stale_writes_rejected"] == 3
    assert summary["fenced_stale_writes_accepted"] == 0
    assert summary["unfenced_stale_writes_accepted"] == 4
    assert summary["keepalive"]["kept_alive"] is True
    assert summary["keepalive"]["min_remaining_ttl_s"] == 9
    # One formula for the prediction: TTL × (1/rate − 1).
    assert summary["slow"]["predicted_error_s"] == pytest.approx(15 * (1 / 0.95 - 1))
    assert summary["fast"]["predicted_error_s"] == pytest.approx(15 * (1 / 1.05 - 1))
    found = judged(quick)
    assert all(found[i].holds is True for i in (
        "slow-client-believes-after-revocation", "fast-client-stops-early",
        "second-holder-during-belief", "belief-error-matches-prediction",
        "etcd-expiry-ignores-client-clocks", "fencing-rejects-stale-writes",
        "plain-stale-writes-accepted", "new-holder-writes", "keepalives-keep-lease"))
    assert found["course-premature-expiry"].holds is None
    assert "libfaketime" in found["course-premature-expiry"].text
    # the trial counts are figures beside the sentences, not in them
    assert found["course-valid-after-expiry"].figures[
        "slow-clock trials that believed it after the revocation"].startswith("1 of 1 ")
    overlap = found["published-lease-no-mutual-exclusion"]
    assert overlap.figures["client trials with two holders at once"].startswith("1 of 2 ")
    assert "trials" not in overlap.text and "trials" not in found["course-valid-after-expiry"].text


def test_one_prediction_and_etcds_whole_second_minimum_ttl():
    assert predicted_error_s(60, drift_rate(-500)) == pytest.approx(60 / 119)
    assert predicted_error_s(60, drift_rate(500)) == pytest.approx(-60 / 121)
    assert min_lease_ttl_s(1000, 100) == 2  # 1.5 s, rounded up to whole seconds
    assert min_lease_ttl_s(3000, 300) == 5  # 4.5 s → 5 s


def test_the_first_measured_finding_answers_the_question(quick):
    items = findings(summarize(quick["samples"], quick["params"]), quick["params"])
    assert items[0].id == "slow-client-believes-after-revocation"
    assert items[0].kind == "measured"


def _slow_stops_early(r):
    slow = holder(r, "slow")
    slow["believed_expired_real"] = slow["revoked"]["real"] - 0.5


def _fast_holds_on(r):
    fast = holder(r, "fast")
    fast["believed_expired_real"] = fast["revoked"]["real"] + 0.3


def _no_overlap(r):
    for name in ("fast", "slow"):
        h = holder(r, name)
        h["contender"]["acquired_real"] = h["believed_expired_real"] + 0.01


def _off_prediction(r):
    holder(r, "slow")["believed_expired_real"] += 2.0


def _etcd_late(r):
    holder(r, "fast")["revoked"]["real"] += 2.0


def _fenced_accepted(r):
    slow = holder(r, "slow")
    for write in slow["writes"]:
        if write["kind"] == "fenced" and not write["ok"]:
            write["ok"], write["outcome"] = True, "ok"


def _plain_rejected(r):
    slow = holder(r, "slow")
    revoked = slow["revoked"]["revision"]
    for write in slow["writes"]:
        if write["kind"] == "unfenced" and write["revision"] >= revoked:
            write["ok"], write["outcome"] = False, "failed"


def _contender_fails(r):
    holder(r, "slow")["contender"]["write_ok"] = False


def _keepalive_lapses(r):
    r["samples"]["trials"][0]["keepalive"]["remaining"][3]["ttl"] = 0


FLIPS = [
    ("slow-client-believes-after-revocation", _slow_stops_early, False),
    ("course-valid-after-expiry", _slow_stops_early, False),
    ("fast-client-stops-early", _fast_holds_on, False),
    ("second-holder-during-belief", _no_overlap, False),
    ("published-lease-no-mutual-exclusion", _no_overlap, None),
    ("belief-error-matches-prediction", _off_prediction, False),
    ("etcd-expiry-ignores-client-clocks", _etcd_late, False),
    ("fencing-rejects-stale-writes", _fenced_accepted, False),
    ("plain-stale-writes-accepted", _plain_rejected, False),
    ("new-holder-writes", _contender_fails, False),
    ("keepalives-keep-lease", _keepalive_lapses, False),
]


@pytest.mark.parametrize(("finding", "change", "flipped"), FLIPS,
                         ids=[f"{f[0]}-{f[1].__name__}" for f in FLIPS])
def test_each_finding_follows_the_samples(tmp_path, quick, finding, change, flipped):
    before = judged(quick)[finding]
    assert before.holds is True
    record = copy.deepcopy(quick)
    change(record)
    after = judged(record)[finding]
    assert after.holds is flipped
    assert after.text != before.text
    original, changed = section_text(tmp_path, quick, "a"), section_text(tmp_path, record, "b")
    assert before.text in original and before.text not in changed
    assert after.text in changed


def test_no_fenced_write_after_revocation_is_not_a_success(quick):
    record = copy.deepcopy(quick)
    for name in ("fast", "slow"):
        holder(record, name)["writes"] = []
    found = judged(record)
    assert found["fencing-rejects-stale-writes"].holds is None
    assert found["plain-stale-writes-accepted"].holds is None


def test_no_keepalive_phase_is_untestable(quick):
    record = copy.deepcopy(quick)
    record["samples"]["trials"][0]["keepalive"] = None
    assert judged(record)["keepalives-keep-lease"].holds is None


def test_quick_run_says_how_it_differs_from_the_question(tmp_path, quick):
    text = section_text(tmp_path, quick)
    assert "| client clocks drift by | 3.00 s/min | 500 ms/min |" in text
    assert "| 15 s | 60 s |" in text
    assert "750 ms" not in text  # the second, inconsistent prediction is gone
    assert "1.50 s" not in text  # etcd's minimum TTL is whole seconds: 2 s
    assert "2 s with election timeout 1.00 s" in text
    body = text[:text.index("### Appendix")]
    for line in body.splitlines():
        if line.startswith("|"):
            assert line.count("|") - 1 <= 7, line


# -- the paused holder (the case Jepsen found) and the lease across a leader change ----------

PARTITION = ROOT / "tests" / "data" / "quick-run" / "partition.json"


def _paused_record():
    """A paused holder's record as the experiment writes it (figures of a real quick run:
    TTL 3 s, stopped 5 s, its lock key deleted at revision 6, the contender's lock at 7)."""
    t0 = 1796227201.6
    writes = []
    for number, revision in enumerate((8, 9, 9, 10, 10, 11), start=1):
        fenced = number % 2 == 1
        writes.append({"kind": "fenced" if fenced else "unfenced", "ok": not fenced,
                       "outcome": "failed" if fenced else "ok", "revision": revision,
                       "real": t0 + 5.01 + 0.05 * number})
    return {
        "trial": 1, "ttl_s": 3, "pause_s": 5.0, "act_delay_s": 1.0,
        "acquired_real": t0, "token": 5, "lease": 1, "paused_real": t0 + 0.003,
        "stopped_seen": True, "resumed_real": t0 + 5.003,
        "checked_real": t0 + 0.001, "checked_believed_left_s": 2.98,
        "acting_real": t0 + 5.007, "acting_believed_left_s": -2.03,
        "done_real": t0 + 5.35,
        "revoked": {"key": "/lock/paused", "real": t0 + 2.990, "revision": 6,
                    "type": "delete", "lease": 0},
        "contender": {"acquired_real": t0 + 2.992, "token": 7, "write_ok": True,
                      "write_revision": 8},
        "writes": writes,
    }


@pytest.fixture()
def paused(quick):
    record = copy.deepcopy(quick)
    record["samples"]["paused"] = [_paused_record()]
    return record


@pytest.fixture(scope="module")
def partition_leases():
    return leader_change_leases(json.loads(PARTITION.read_text())["samples"])


def paused_judged(record):
    return by_id(paused_findings(summarize(record["samples"], record["params"])))


def test_the_paused_holders_writes_are_judged_by_revision(paused):
    trial = summarize(paused["samples"], paused["params"])["paused"][0]
    assert trial["pause_s"] == pytest.approx(5.0)
    assert trial["revoked_during_pause"] is True and trial["contender_during_pause"] is True
    assert trial["revoked_after_pause_s"] == pytest.approx(2.987)
    assert trial["resumed_after_revoke_s"] == pytest.approx(2.013)
    assert (trial["revoked_revision"], trial["token"], trial["contender_token"]) == (6, 5, 7)
    assert trial["unfenced_accepted"] == 3 and trial["fenced_rejected"] == 3
    assert trial["fenced_accepted"] == 0 and trial["unfenced_before"] == 0
    assert [w["stale"] for w in trial["writes"]] == [True] * 6
    found = paused_judged(paused)
    assert found["paused-holder-lock-taken-during-pause"].holds is True
    assert found["paused-holder-unfenced-accepted"].holds is True
    assert "9, 10, 11" in found["paused-holder-unfenced-accepted"].figures[
        "accepted at revisions"]
    assert found["paused-holder-fenced-rejected"].holds is True
    assert found["published-jepsen-paused-holder"].holds is True


def test_a_write_before_the_revocation_is_not_stale(paused):
    record = paused["samples"]["paused"][0]
    record["writes"][1]["revision"] = 5  # applied before the lock key was deleted (6)
    trial = summarize(paused["samples"], paused["params"])["paused"][0]
    assert trial["unfenced_accepted"] == 2 and trial["unfenced_before"] == 1
    assert [w["stale"] for w in trial["writes"]][:2] == [True, False]


def _resumed_in_time(r):
    r["samples"]["paused"][0]["resumed_real"] = r["samples"]["paused"][0]["paused_real"] + 2.0


def _fenced_write_through(r):
    write = r["samples"]["paused"][0]["writes"][0]
    write["ok"], write["outcome"] = True, "ok"


def _plain_refused(r):
    for write in r["samples"]["paused"][0]["writes"]:
        if write["kind"] == "unfenced":
            write["ok"], write["outcome"] = False, "failed"


def _never_revoked(r):
    r["samples"]["paused"][0]["revoked"] = None
    r["samples"]["paused"][0]["contender"] = {}


PAUSED_FLIPS = [
    ("paused-holder-lock-taken-during-pause", _resumed_in_time, False),
    ("paused-holder-fenced-rejected", _fenced_write_through, False),
    ("paused-holder-unfenced-accepted", _plain_refused, False),
    ("published-jepsen-paused-holder", _plain_refused, None),
    ("paused-holder-lock-taken-during-pause", _never_revoked, None),
    ("paused-holder-unfenced-accepted", _never_revoked, None),
    ("paused-holder-fenced-rejected", _never_revoked, None),
]


@pytest.mark.parametrize(("finding", "change", "flipped"), PAUSED_FLIPS,
                         ids=[f"{f[0]}-{f[1].__name__}" for f in PAUSED_FLIPS])
def test_each_paused_finding_follows_the_samples(tmp_path, paused, finding, change, flipped):
    before = paused_judged(paused)[finding]
    assert before.holds is True
    record = copy.deepcopy(paused)
    change(record)
    after = paused_judged(record)[finding]
    assert after.holds is flipped
    assert after.text != before.text
    original, changed = section_text(tmp_path, paused, "a"), section_text(tmp_path, record, "b")
    assert before.text in original and before.text not in changed
    assert after.text in changed


def test_a_result_without_the_paused_holder_renders_as_before(tmp_path, quick):
    assert paused_findings(summarize(quick["samples"], quick["params"])) == []
    text = section_text(tmp_path, quick)
    assert "paused" not in text and "leader change" not in text


def test_the_paused_section_shows_its_timeline_and_every_write(tmp_path, paused):
    text = section_text(tmp_path, paused)
    assert "### A holder paused past its TTL" in text
    assert "| 1 | 3 s | 5 | 5.00 s | 2.99 s (revision 6) | 2.99 s (revision 7) | 2.01 s |" in text
    assert text.count("| 1 | ") >= 7  # the timeline row and its six writes
    assert "| 1 | 2 | plain | accepted | 9 | yes |" in text
    for line in text[:text.index("### Appendix")].splitlines():
        if line.startswith("|"):
            assert line.count("|") - 1 <= 7, line


def test_the_lease_reset_is_cited_from_the_partition_run(partition_leases):
    found = lease_reset_finding(partition_leases)
    assert found.id == "lease-reset-on-new-leader"
    # The checked-in quick partition run: 26 s left before the cut, 30 s at the new leader.
    assert found.holds is True
    assert "without lease checkpointing" in found.text
    assert found.figures["left before the cut"] == "26 s (±1 s)"
    assert found.figures["left at the new leader"] == "30 s (±1 s)"


def test_a_lease_that_kept_its_remaining_ttl_is_not_a_reset(partition_leases):
    kept = copy.deepcopy(partition_leases)
    for lease in kept:
        lease["after_s"] = lease["before_s"] - 1
    found = lease_reset_finding(kept)
    assert found.holds is False
    assert "did not go back to its full TTL" in found.text


def test_the_lease_reset_cannot_be_told_without_a_partition_run(partition_leases):
    assert lease_reset_finding(None).holds is None
    assert "no completed Q3" in lease_reset_finding(None).text
    unread = copy.deepcopy(partition_leases)
    for lease in unread:
        lease["after_s"] = None
    assert lease_reset_finding(unread).holds is None


def test_the_section_cites_this_runs_partition_result(tmp_path, paused):
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "lease-drift.json").write_text(json.dumps(paused), encoding="utf-8")
    (folder / "partition.json").write_text(PARTITION.read_text(), encoding="utf-8")
    text = report.render_report(folder).read_text(encoding="utf-8")
    q8 = text[text.index("## Q8."):text.index("## Q9.")]
    assert "#### A lease across a leader change" in q8
    assert "cited from Q3's partition run" in q8 and "without lease checkpointing" in q8
    alone = section_text(tmp_path, paused)
    assert "no completed Q3 (`partition`) result to cite" in alone


def test_the_quick_set_uses_the_questions_drift():
    quick = lease_drift_experiment.EXPERIMENT.params(quick=True)
    assert quick["drift_ms_per_min"] == 500.0
    # Long enough that the drift over one TTL exceeds etcd's late expiry check.
    assert predicted_error_s(quick["ttl_s"], drift_rate(-quick["drift_ms_per_min"])) > 0.5
    assert quick["paused_ttl_s"] + quick["pause_beyond_ttl_s"] <= 15
