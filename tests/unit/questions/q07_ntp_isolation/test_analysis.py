"""Q7 ntp-isolation: the analysis on the quick run, and every finding follows its data."""

import copy
import json

import pytest

from etcdlab.questions.findings import by_id
from etcdlab.questions.q07_ntp_isolation.analysis import (
    findings,
    returned,
    summarize,
    summarize_run,
)
from etcdlab.results import Result, load_results
from tests import DATA
from tests.unit.report_helpers import template_section as render_section

QUICK = DATA / "quick-run"


def quick_result(name: str) -> Result:
    """The checked-in quick run's result of one experiment."""
    return load_results(QUICK)[name]


RESULT = quick_result("ntp-isolation")
SUMMARY = summarize(RESULT.samples, RESULT.params)
BASE = by_id(findings(SUMMARY, RESULT.params))


def test_summarize_on_the_quick_run():
    iburst = SUMMARY["iburst"]
    # The first sample after reconnection, not the change between two samples.
    assert iburst["first_offset_after_ms"] == pytest.approx(0.005003)
    assert iburst["offset_change_over_cut_ms"] == pytest.approx(0.008217)
    assert iburst["system_time_at_reconnect_s"] == pytest.approx(-10.004, abs=1e-3)
    without = SUMMARY["no_iburst"]
    assert iburst["first_samples_interval_s"] < 2.0 < without["first_samples_interval_s"]


def test_quick_run_findings():
    assert BASE["first-offset"].holds is True
    assert BASE["iburst-first-selection"].holds is True
    assert BASE["iburst-return"].holds is False
    assert BASE["course-makestep"].holds is None
    assert list(BASE)[0] == "first-offset"  # the answer comes first


def _set(*pairs):
    """A change of the summary: (run or None, key, value) for each pair."""
    def change(summary):
        for run, key, value in pairs:
            (summary[run] if run else summary)[key] = value
    return change


def _both(key, value):
    return _set(("iburst", key, value), ("no_iburst", key, value))


FLIPS = {
    "first-offset": _both("first_offset_after_ms", 5.0),
    "return-within-poll": _both("resync_s", 20.0),
    "stayed-selected": _both("selected_while_isolated", False),
    "iburst-first-selection": _set(("iburst", "startup_sync_s", 9.39)),
    "iburst-settle": _set(("iburst", "settle_s", 45.6)),
    "iburst-return": _set(("no_iburst", "resync_s", 12.0)),
    "corrected-during-cut": _both("offset_change_over_cut_ms", 1.4),
    "system-clock-uncorrected": _set(("iburst", "system_time_at_reconnect_s", -1e-5)),
    "driftfile-rate": _both("driftfile_ppm", 40.0),
    "course-iburst": _set(("no_iburst", "resync_s", 12.0)),
    "published-iburst": _set(("iburst", "first_samples_interval_s", 4.0)),
    "published-x": _set(("iburst", "system_time_at_reconnect_s", -1e-5)),
}


def test_every_finding_but_makestep_has_a_flip():
    # The holdover part's findings flip on the holdover run (below): the quick run has none.
    # course-driftfile rests on the restart with the driftfile (tests/unit/test_verdicts.py).
    assert set(FLIPS) == set(BASE) - {"course-makestep", "holdover-keeps-frequency",
                                      "course-driftfile"}


@pytest.mark.parametrize("finding_id", sorted(FLIPS))
def test_a_finding_follows_its_data(finding_id):
    summary = copy.deepcopy(SUMMARY)
    FLIPS[finding_id](summary)
    flipped = by_id(findings(summary, RESULT.params))
    assert flipped[finding_id].holds is (not BASE[finding_id].holds)
    assert flipped[finding_id].text != BASE[finding_id].text
    before = render_section(RESULT)
    after = render_section(RESULT, list(flipped.values()))
    assert BASE[finding_id].text in before and BASE[finding_id].text not in after
    assert flipped[finding_id].text in after


def test_first_offset_flips_from_the_samples(tmp_path):
    raw = json.loads((QUICK / "ntp-isolation.json").read_text())
    for run in raw["samples"]["runs"].values():
        for row in run["rows"]:
            if row["t"] >= run["reconnected_at"] and row["sample_offset_s"] is not None:
                row["sample_offset_s"] = -0.002  # 2 ms, above the 1 ms counted as synchronised
    (tmp_path / "ntp-isolation.json").write_text(json.dumps(raw))
    text = render_section(load_results(tmp_path)["ntp-isolation"])
    assert "within the 1.00 ms counted as synchronised" in render_section(RESULT)
    assert "outside the 1.00 ms counted as synchronised" in text


def test_makestep_cannot_be_tested_under_minus_x():
    finding = BASE["course-makestep"]
    assert finding.holds is None and "-x" in finding.why_unknown
    # the log count and the offset are figures beside the sentence, not in it
    assert "Could not step" not in finding.why_unknown
    assert finding.figures['"Could not step system clock" logged at start'].endswith(" times")
    assert finding.figures["makestep's threshold"] == "1.00 s"
    assert "first offset after reconnection (local − server)" in finding.figures


def test_the_section_states_the_runs_poll_and_isolation():
    text = render_section(RESULT)
    assert "minpoll\n2, maxpoll 3" in text or "minpoll 2, maxpoll 3" in text.replace("\n", " ")
    assert "| NTP cut off for | 30.0 s | 300 s |" in text
    assert "3 s (±1 s)" in text  # LastRx is whole seconds
    assert "came back within" not in text and "because chronyd kept correcting" not in text


def _reading(t, valid_rx, last_rx, selected=True, state="*"):
    return {"t": t, "phase": "after", "valid_rx": valid_rx, "sample_offset_s": -1e-5,
            "last_rx_s": last_rx, "selected": selected, "state": state,
            "system_time_s": -10.0, "frequency_ppm": 50.0, "skew_ppm": 0.5, "poll": 2,
            "reach": 255}


def test_a_sample_chronyd_did_not_accept_is_no_return():
    # Seen here: after a 30 s cut the count of valid samples rose, but "LastRx" kept
    # growing (chronyd's filter rejected the sample); the return is the next sample.
    rows = [_reading(995.0, 19, 35), _reading(1003.0, 20, 43), _reading(1011.0, 21, 0)]
    first, selected = returned(rows, 1000.0)
    assert first["valid_rx"] == 21 and selected["t"] == 1011.0
    assert returned(rows[:2], 1000.0) == (None, None)  # the experiment keeps waiting


def test_a_failed_reading_does_not_count_as_deselected():
    raw = json.loads((QUICK / "ntp-isolation.json").read_text())
    run = raw["samples"]["runs"]["iburst"]
    failed = {key: None for key in run["rows"][0]}
    run["rows"].append({**failed, "t": run["cut_at"] + 1.0, "phase": "isolated",
                        "selected": False})
    run["rows"].sort(key=lambda row: row["t"])
    assert summarize_run(run, RESULT.params)["selected_while_isolated"] is True


HOLDOVER = load_results(QUICK.parent / "holdover-run")["ntp-isolation"]
HOLDOVER_SUMMARY = summarize(HOLDOVER.samples, HOLDOVER.params)


def test_the_holdover_part_measures_the_rate_change_and_the_correction():
    assert BASE["holdover-keeps-frequency"].holds is None  # the quick run had no second part
    part = HOLDOVER_SUMMARY["iburst"]["holdover"]
    assert part["extra_ppm"] == pytest.approx(100.0)
    assert part["slope_ppm"] == pytest.approx(100.28, abs=0.01)
    assert part["expected_ms"] == pytest.approx(1.008, abs=0.001)
    assert part["error_at_reconnect_ms"] == pytest.approx(0.941, abs=0.001)
    assert part["corrected_s"] == pytest.approx(21.09, abs=0.01)
    assert HOLDOVER_SUMMARY["no_iburst"]["holdover"]["corrected_s"] == pytest.approx(5.09,
                                                                                      abs=0.01)
    assert HOLDOVER_SUMMARY["iburst"]["settle_with_driftfile_s"] == pytest.approx(32.49,
                                                                                  abs=0.01)
    found = by_id(findings(HOLDOVER_SUMMARY, HOLDOVER.params))
    assert found["holdover-keeps-frequency"].holds is True
    assert found["holdover-corrected"].holds is True
    # 36.5 → 32.5 s with iburst is less than one 8 s poll, 48.6 → 33.5 s without it more:
    # the clients disagree, so the run cannot say
    assert found["driftfile-settles-sooner"].holds is None
    assert "The clients disagree" in found["course-driftfile"].text


def test_the_holdover_curve_leaves_out_readings_from_before_chronyd_settled():
    from etcdlab.questions.q07_ntp_isolation.analysis import holdover

    part = copy.deepcopy(HOLDOVER.samples["runs"]["iburst"]["holdover_run"])
    away = part["rate_changes"][0]["at"]
    settled = part["settled_at"]
    assert away - 5.0 < settled < away  # settled just before the cut, as every run does
    # before its first clock update chronyd reports a System time of 0: the faked clock's
    # whole lead (10 s) would be drawn as its error
    early = {**next(r for r in part["rows"] if r["t"] == settled), "t": settled - 1.0,
             "system_time_s": 0.0}
    part["rows"].append(early)
    part["rows"].sort(key=lambda r: r["t"])
    curve = holdover(part)["curve"]
    assert curve[0]["t"] == pytest.approx(settled - away, abs=1e-3)
    assert max(abs(point["error_ms"]) for point in curve) < 2.0
    # readings after the settle and through the cut are all drawn
    assert len(curve) == sum(1 for r in part["rows"] if r["t"] >= settled)


HOLDOVER_FLIPS = {
    "holdover-keeps-frequency": lambda s: s["iburst"]["holdover"].update(slope_ppm=0.4),
    "holdover-corrected": lambda s: s["no_iburst"]["holdover"].update(corrected_s=None),
    "driftfile-settles-sooner": lambda s: s["iburst"].update(settle_with_driftfile_s=20.0),
}


@pytest.mark.parametrize("finding_id", sorted(HOLDOVER_FLIPS))
def test_each_holdover_finding_follows_its_data(finding_id):
    base = by_id(findings(HOLDOVER_SUMMARY, HOLDOVER.params))[finding_id]
    summary = copy.deepcopy(HOLDOVER_SUMMARY)
    HOLDOVER_FLIPS[finding_id](summary)
    flipped = by_id(findings(summary, HOLDOVER.params))[finding_id]
    assert flipped.holds is (not base.holds) and flipped.text != base.text
    before = render_section(HOLDOVER)
    after = render_section(HOLDOVER, list(by_id(findings(summary, HOLDOVER.params)).values()))
    assert base.text in before and base.text not in after and flipped.text in after


BURST = load_results(QUICK.parent / "burst-run")["ntp-isolation"]
BURST_SUMMARY = summarize(BURST.samples, BURST.params)


def test_the_burst_holdover_sits_beside_the_same_clients_holdover():
    assert "burst-corrects-sooner" not in by_id(findings(HOLDOVER_SUMMARY, HOLDOVER.params))
    plain = BURST_SUMMARY["no_iburst"]["holdover"]
    burst = BURST_SUMMARY["no_iburst"]["burst_holdover"]
    assert "burst_holdover" not in BURST_SUMMARY["iburst"]  # only the client without iburst
    assert burst["burst"] is True and plain["burst"] is False
    assert BURST.samples["runs"]["no_iburst"]["burst_run"]["conf"] == [
        "server 172.24.0.10 minpoll 2 maxpoll 3 burst"]
    assert plain["corrected_s"] == pytest.approx(9.09, abs=0.01)
    assert burst["corrected_s"] == pytest.approx(5.09, abs=0.01)
    assert burst["slope_ppm"] == pytest.approx(100.0, abs=2.0)
    assert plain["poll_at_cut"] == burst["poll_at_cut"] == 2
    found = by_id(findings(BURST_SUMMARY, BURST.params))
    # 4.0 s sooner, within one 4 s poll and one reading of each other: not measurably
    assert found["burst-corrects-sooner"].holds is False
    assert "more than 5.00 s" in found["burst-corrects-sooner"].figures[
        "a difference that counts"]
    assert "with burst (no iburst, same client) after 5.09 s" in found[
        "holdover-corrected"].text
    sooner = copy.deepcopy(BURST_SUMMARY)
    sooner["no_iburst"]["burst_holdover"]["corrected_s"] = 2.0
    flipped = by_id(findings(sooner, BURST.params))["burst-corrects-sooner"]
    assert flipped.holds is True
    never = copy.deepcopy(BURST_SUMMARY)
    never["no_iburst"]["burst_holdover"]["corrected_s"] = None
    assert by_id(findings(never, BURST.params))["burst-corrects-sooner"].holds is None
    text = render_section(BURST)
    assert found["burst-corrects-sooner"].text in text
    assert "chrony's `burst` option" in text and "so at most 2 at this run's polling" in text
