"""Unit tests for etcdlab.report.html: the Markdown report as one self-contained HTML page."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from etcdlab.questions.spec import specs
from etcdlab.report import HTML_NAME, METHOD_NAME, render_report
from etcdlab.report.html import markdown_to_html, slug

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
QUICK = DATA / "quick-run"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24  # only the bytes are compared, never decoded

DOCUMENT = """\
# A report

Intro with `code` and <script>alert(1)</script>.

## Summary

| # | Answer |
|---|---|
| 1 | yes |

## Q1. How long does `etcd` take?

### Answer

![A chart](chart.png)

### Answer

![Gone](missing.png) ![Outside](../outside.png)

## Q2. Another question
"""


class Page(HTMLParser):
    """The parts of a page the tests look at: tags in order with their attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.nav_links: list[str] = []
        self._in_nav = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append((tag, values))
        if tag == "nav":
            self._in_nav = True
        elif tag == "a" and self._in_nav:
            self.nav_links.append(values["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False

    def ids(self, *tags: str) -> list[str]:
        return [attrs["id"] for tag, attrs in self.tags if tag in tags and "id" in attrs]

    def position(self, tag: str, **attrs: str) -> int:
        return next(i for i, (name, values) in enumerate(self.tags)
                    if name == tag and all(values.get(k) == v for k, v in attrs.items()))

    def resource_references(self) -> list[str]:
        """Every URL the page would load by itself (not links a reader follows)."""
        return [attrs[key] for tag, attrs in self.tags for key in ("src", "href", "data")
                if key in attrs and not (tag == "a" and key == "href")]


@pytest.fixture
def page(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "chart.png").write_bytes(PNG)
    (tmp_path / "outside.png").write_bytes(PNG)
    return markdown_to_html(DOCUMENT, tmp_path / "run")


def charts_in_markdown() -> int:
    """How many images the quick run's expected REPORT.md shows."""
    return len(re.findall(r"!\[[^\]]*\]\([^)]+\.png\)",
                          (QUICK / "REPORT.md.expected").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def quick_page(tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("html") / "quick-run"
    shutil.copytree(QUICK, run)
    render_report(run)
    return (run / HTML_NAME).read_text(encoding="utf-8")


def test_slugs_follow_github_and_repeats_are_numbered():
    taken: set[str] = set()
    assert slug("Q6. What --quota-backend-bytes is?", taken) == "q6-what---quota-backend-bytes-is"
    assert slug("Answer", taken) == "answer"
    assert slug("Answer", taken) == "answer-1"
    assert slug("Lamport clocks (Q4)", taken) == "lamport-clocks-q4"


def test_an_image_beside_the_report_is_embedded(page):
    images = [attrs for tag, attrs in Page(page).tags if tag == "img"]
    assert images[0]["alt"] == "A chart"
    prefix = "data:image/png;base64,"
    assert images[0]["src"].startswith(prefix)
    assert base64.b64decode(images[0]["src"].removeprefix(prefix)) == PNG


def test_a_missing_or_outside_image_keeps_its_reference(page):
    sources = [attrs["src"] for tag, attrs in Page(page).tags if tag == "img"]
    assert sources[1:] == ["missing.png", "../outside.png"]


def test_headings_have_unique_ids_and_the_contents_link_to_each_h2_and_h3(page):
    parsed = Page(page)
    assert parsed.ids("h1", "h2", "h3") == [
        "a-report", "summary", "q1-how-long-does-etcd-take", "answer", "answer-1",
        "q2-another-question"]
    assert parsed.nav_links == [f"#{anchor}" for anchor in parsed.ids("h2", "h3")]


def test_the_contents_follow_the_summary_section(page):
    parsed = Page(page)
    summary = parsed.position("h2", id="summary")
    assert summary < parsed.position("table") < parsed.position("nav")
    assert parsed.position("nav") < parsed.position("h2", id="q1-how-long-does-etcd-take")


def test_without_the_named_section_the_contents_come_before_the_first_h2(tmp_path):
    parsed = Page(markdown_to_html("# T\n\ntext\n\n## One\n\n## Two\n", tmp_path))
    assert parsed.position("p") < parsed.position("nav") < parsed.position("h2", id="one")
    assert parsed.nav_links == ["#one", "#two"]
    assert "<nav" not in markdown_to_html("# Only a title\n", tmp_path)


def test_tables_scroll_in_their_own_box_and_raw_html_is_escaped(page):
    assert re.search(r'<div class="table-scroll[^"]*">\n<table>', page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    assert "<title>A report</title>" in page
    assert 'name="viewport" content="width=device-width' in page


def test_the_quick_run_page_embeds_every_chart(quick_page):
    images = [attrs["src"] for tag, attrs in Page(quick_page).tags if tag == "img"]
    assert len(images) == charts_in_markdown() > 0
    assert all(src.startswith("data:image/png;base64,iVBORw0KGgo") for src in images)
    assert 'src="' not in quick_page.replace('src="data:image/png;base64,', "")


def test_the_quick_run_page_loads_nothing_from_elsewhere(quick_page):
    parsed = Page(quick_page)
    assert not [ref for ref in parsed.resource_references() if not ref.startswith("data:")]
    assert not [tag for tag, _ in parsed.tags if tag in ("link", "script", "iframe", "object")]
    assert "@import" not in quick_page and "url(" not in quick_page


def test_the_quick_run_page_opens_with_its_summary_then_the_contents(quick_page):
    parsed = Page(quick_page)
    assert parsed.ids("h2")[0] == "summary"
    first_question = parsed.position("h2", id="q1-how-long-does-etcd-take-to-elect-a-new-leader")
    assert parsed.position("blockquote") < parsed.position("h2", id="summary")
    assert parsed.position("h2", id="summary") < parsed.position("table") < first_question
    assert parsed.position("table") < parsed.position("nav") < first_question
    ids = set(parsed.ids("h1", "h2", "h3", "h4"))
    assert len(ids) == len(parsed.ids("h1", "h2", "h3", "h4"))
    assert {link.removeprefix("#") for link in parsed.nav_links} == set(parsed.ids("h2", "h3"))
    assert len(parsed.ids("h2")) == 12  # summary, environment and Q1 to Q10


def test_invoke_report_from_renders_both_files_and_prints_their_paths(tmp_path):
    run = tmp_path / "sample-run"
    run.mkdir()
    for result in (DATA / "sample-run").glob("*.json"):
        shutil.copy(result, run / result.name)
    done = subprocess.run([sys.executable, "-m", "invoke", "report", "--from", str(run)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["report", str(run / "REPORT.md"),
                                   "html", str(run / HTML_NAME),
                                   "method", str(run / METHOD_NAME)]
    charts = len(re.findall(r"!\[[^\]]*\]\([^)]+\.png\)",
                            (run / "REPORT.md").read_text(encoding="utf-8")))
    assert (run / HTML_NAME).read_text(encoding="utf-8").count('src="data:image/png') == charts > 0


def test_the_quick_run_page_folds_its_sections_and_evidence(quick_page):
    # The page opens on the summary: each question's section and each evidence table fold.
    assert quick_page.count('<details class="section"><summary><h2 id="q') == len(specs())
    assert quick_page.count('<details class="evidence">') > 10
    assert "<em>Evidence:</em>" not in quick_page
    # each finding's figures fold under its own item, in a table without the finding column
    assert re.search(r'<li>[^<]*\n<details class="evidence"><summary>evidence</summary>\n'
                     r'<div class="table-scroll">\n<table>\n<thead>\n<tr>\n<th>Figure</th>',
                     quick_page)
    summary = quick_page.index('id="summary"')
    assert quick_page.index('class="table-scroll summary-table"') > summary
    assert quick_page.index('class="table-scroll summary-table"') < quick_page.index(
        '<details class="section">')
