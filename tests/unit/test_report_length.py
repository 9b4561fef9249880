"""The report a student reads stays short and plain: a quick run's REPORT.md is at most
9,000 words, each finding a sentence (median at most 220 characters, none above 400), and
each summary answer at most 200 characters. Rendered from the checked-in quick runs."""

import re
import shutil
import statistics
from pathlib import Path

import pytest

from etcdlab.report import render_report

DATA = Path(__file__).resolve().parents[1] / "data"
QUICK_RUNS = [DATA / "quick-run", DATA / "bench-quick-lab", DATA / "quick-run-1207"]

MAX_WORDS = 9_000
MEDIAN_SENTENCE = 220
MAX_SENTENCE = 400
MAX_SUMMARY_ANSWER = 200


@pytest.fixture(scope="module", params=QUICK_RUNS, ids=lambda path: path.name)
def report_text(request, tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("length") / request.param.name
    run.mkdir()
    for result in request.param.glob("*.json"):
        shutil.copy(result, run / result.name)
    return render_report(run).read_text(encoding="utf-8")


def _findings(text: str) -> list[str]:
    """The numbered items of the question sections: each finding's sentence."""
    sections = text[text.index("\n## Q1."):]
    return [line for line in sections.splitlines() if re.match(r"\d+\. ", line)]


def test_a_quick_report_is_at_most_9000_words(report_text):
    assert len(report_text.split()) <= MAX_WORDS


def test_each_finding_is_a_short_sentence(report_text):
    lengths = [len(line) for line in _findings(report_text)]
    assert len(lengths) > 50
    assert statistics.median(lengths) <= MEDIAN_SENTENCE
    assert max(lengths) <= MAX_SENTENCE, max(_findings(report_text), key=len)


def test_each_summary_answer_is_at_most_200_characters(report_text):
    summary = report_text[report_text.index("## Summary"):report_text.index("### How to read")]
    rows = [line.split(" | ") for line in summary.splitlines()
            if re.match(r"\| \d+ \| ", line)]
    assert len(rows) == 10
    for row in rows:
        assert len(row[2]) <= MAX_SUMMARY_ANSWER, row[2]
