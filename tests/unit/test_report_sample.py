"""Render the report from the checked-in sample results and compare with the expected file."""

import os
import shutil
from pathlib import Path

import pytest

from etcdlab.questions.spec import specs
from etcdlab.report import render_report
from etcdlab.results import load_results

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE = DATA / "sample-run"
EXPECTED = SAMPLE / "REPORT.md.expected"
QUICK = DATA / "quick-run"
QUICK_1207 = DATA / "quick-run-1207"
BENCH_QUICK = DATA / "bench-quick-lab"
QUESTIONS = tuple(spec.experiment for spec in specs())  # the ten experiments' names


def render(tmp_path: Path, source: Path = SAMPLE) -> tuple[Path, str]:
    run = tmp_path / source.name
    run.mkdir()
    for result in source.glob("*.json"):
        shutil.copy(result, run / result.name)
    report = render_report(run)
    return run, report.read_text()


def test_sample_results_are_valid_measured_records():
    results = load_results(SAMPLE)
    assert set(results) == {"election", "conflicts"}
    election = results["election"]
    assert election.ok and len(election.samples["crash"]) == 20
    assert election.metadata["node_count"] == 3
    for trial in election.samples["crash"] + election.samples["graceful"]:
        assert trial["term_after"] > trial["term_before"], trial
        assert 0 <= trial["log_elected_s"] <= trial["elected_s"], trial


def test_report_from_sample_matches_the_expected_rendering(tmp_path):
    run, text = render(tmp_path)
    if os.environ.get("ETCDLAB_UPDATE_EXPECTED") == "1":
        EXPECTED.write_text(text)
    assert text == EXPECTED.read_text()
    for chart in ("election.png", "conflicts.png"):
        assert (run / chart).stat().st_size > 1000


def test_sample_report_states_the_measured_numbers(tmp_path):
    run, text = render(tmp_path)
    assert "after a median of 1.19 s" in text
    assert "| 1 | median: 1.19 s | 20 | 95 % CI 1.05 s – 1.44 s |" in text
    assert "1.19 s (95 % CI 1.05 s – 1.44 s, n = 20)" in (run / "METHOD.md").read_text()
    assert "lost 1,212 of 1,600 acknowledged increments" in text
    assert "Not measured in this run: run `invoke experiment partition`" in text


@pytest.mark.parametrize("source", [QUICK, BENCH_QUICK, QUICK_1207],
                         ids=["quick-run", "bench-quick-lab", "quick-run-1207"])
def test_quick_run_holds_all_ten_results_measured_with_quick_parameters(source):
    results = load_results(source)
    assert set(results) == set(QUESTIONS)
    assert all(r.ok and r.metadata["quick"] is True for r in results.values())


def test_the_newest_quick_run_renders_the_newest_parts_of_its_sections(tmp_path):
    run, text = render(tmp_path, BENCH_QUICK)
    for heading in ("### Staleness under load", "### A holder paused past its TTL"):
        assert heading in text, heading
    method = (run / "METHOD.md").read_text()
    for heading in ("### The timeout sweep",
                    "| # | Phase | dbSize (the backend file) | dbSizeInUse"):
        assert heading in method, heading


@pytest.mark.parametrize("source", [SAMPLE, QUICK, BENCH_QUICK, QUICK_1207],
                         ids=["sample-run", "quick-run", "bench-quick-lab", "quick-run-1207"])
def test_report_renders_every_section_it_has_results_for(tmp_path, source):
    run, text = render(tmp_path, source)
    method = (run / "METHOD.md").read_text()
    expected = source / "REPORT.md.expected"
    expected_method = source / "METHOD.md.expected"
    if os.environ.get("ETCDLAB_UPDATE_EXPECTED") == "1":
        expected.write_text(text)
        expected_method.write_text(method)
    assert text == expected.read_text()
    assert method == expected_method.read_text()
    assert "does not have the shape this report expects" not in text


def test_a_quick_run_says_it_is_quick_and_a_full_run_does_not(tmp_path):
    (tmp_path / "q").mkdir()
    (tmp_path / "f").mkdir()
    _run, quick = render(tmp_path / "q", QUICK)
    _run, full = render(tmp_path / "f", SAMPLE)
    banner = quick.split("**Quick run.**")[1][:400]
    assert all(name in banner for name in QUESTIONS)
    assert "**Quick run.**" not in full
