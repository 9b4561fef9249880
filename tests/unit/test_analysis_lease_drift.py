"""Q8 lease-drift: the analysis on the real quick run, and every finding following the data.

Each test builds samples with the opposite outcome from a copy of the quick run, checks
that the finding's ``holds`` flips and that the rendered section says something else.
"""

import copy
import json
from pathlib import Path

import pytest

from etcdlab.analysis import by_id
from etcdlab.analysis.lease_drift import (
    findings,
    min_lease_ttl_s,
    predicted_error_s,
    summarize,
)
from etcdlab.clocks import drift_rate
from tests.unit.report_helpers import rendered_section as section_text

ROOT = Path(__file__).resolve().parents[2]
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
