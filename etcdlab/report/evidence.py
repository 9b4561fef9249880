"""One evidence row per finding: the figure it rests on, its n, its bound and the instrument.

A finding (:class:`etcdlab.questions.findings.Finding`) carries its figures as labelled
text ("range": "1.06 s – 1.36 s", "trials inside the window": "3 of 3 (≥ 36.8 % at 95 %)",
"polled": "every 5.00 ms"). The report's section shows each finding's key figure in one
row of a table with the columns a reader checks a claim by (finding, figure, n, bound,
instrument); METHOD.md and REPORT.html's folds keep every figure. The row is read from the
figures' text, as the units module wrote it, so no analysis has to say it twice:

- *instrument*: the first figure whose label names how it was measured (a poll, a
  resolution, a log stamp, what it was measured to or compared with);
- *figure*: the first other figure, without the parenthesised n or bound it carries;
- *n*: that of the shown figure ("n = N", else the whole of "K of N"), else of the first
  other figure that has one;
- *bound*: the first 95 % interval or bound, or a test's p-value, of any figure.

A figure the text does not carry is "–". A finding whose row would show only its figure
(no n, bound or instrument) gets no row in the section: its sentence says the figure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NONE = "–"
# A label that names how its figure was measured, at its start ("polled", "resolution",
# "measured to", "compared with" …).
_INSTRUMENT = re.compile(
    r"^(poll(ed|ing)?|resolution|instrument|measured (to|at|by)|compared with|stamps?|"
    r"sampled|seen by|timed by)\b", re.I)
# An instrument named by a noun reads "resolution: 1 ms"; by a verb, "polled every 5 ms".
_NOUN = re.compile(r"^(resolution|instrument|stamps?|polling)\b", re.I)
_N = re.compile(r"\bn = (\d[\d,]*\d|\d)")
_OF = re.compile(r"\b(\d[\d,]*) of (\d[\d,]*\d|\d)\b")
_BOUND = re.compile(r"95 % CI [^);,]+(?:,\d[^);,]*)*|[≤≥<>] ?[\d.,]+ ?% at 95 %|\bp = [\d.]+")
_PARENTHESIS = re.compile(r"\s*\(([^()]*)\)")
# ", each ±5 ms (polled)" or " (±1 s)": a resolution, which the instrument column shows.
_PLUS_MINUS_CLAUSE = re.compile(r",? (?:each )?±\s?[\d.,]+ ?[a-zµ]+(?: \([^()]*\))?|\s*\(±[^()]*\)")
_PLUS_MINUS = re.compile(r"±\s?([\d.,]+ ?[a-zµ]+)(?: \(([^()]*)\))?")
_VALUES = re.compile(r"\bn = [\d,]+:")
_SHOWN_ELSEWHERE = re.compile(r"\bn = |at 95 %|95 % CI")


@dataclass(frozen=True)
class EvidenceRow:
    """What the section's evidence table shows of one finding."""

    figure: str
    n: str
    bound: str
    instrument: str

    @property
    def informative(self) -> bool:
        """Whether it says more than its figure: an n, a bound or an instrument."""
        return any(value != NONE for value in (self.n, self.bound, self.instrument))


def _n(values: list[str]) -> str:
    """The n of the first value that has one: its "n = N", else its "K of N"."""
    for value in values:
        if found := _N.search(value):
            return found.group(1)
        if found := _OF.search(value):
            return found.group(2)
    return NONE


def _bound(values: list[str]) -> str:
    """The first 95 % interval or bound, or p-value, of the values."""
    for value in values:
        if found := _BOUND.search(value):
            return found.group(0).strip()
    return NONE


def _without_n_and_bound(value: str) -> str:
    """The figure without the parts of its parentheses that the n and bound columns show:
    "292 of 400 (73.0 %; 95 % CI …)" → "292 of 400 (73.0 %)", "1.06 s (n = 3: …)" →
    "1.06 s"."""
    def keep(found: re.Match[str]) -> str:
        if _VALUES.search(found.group(1)):  # "n = 3: 895 ms, 1.06 s, 1.28 s": all of it
            return ""
        kept = [part for part in re.split(r"[;,] ", found.group(1))
                if not _SHOWN_ELSEWHERE.search(part)]
        return f" ({'; '.join(kept)})" if kept else ""
    shortened = _PARENTHESIS.sub(keep, value).strip()
    return shortened or value


def _resolution(values: list[str]) -> str:
    """A resolution a figure states ("each ±5 ms (polled)"), as the instrument column
    shows it ("±5 ms, polled")."""
    for value in values:
        if found := _PLUS_MINUS.search(value):
            how = found.group(2)
            return f"±{found.group(1)}" + (f", {how}" if how else "")
    return NONE


def evidence_row(figures: Mapping[str, str]) -> EvidenceRow | None:
    """The row of one finding's figures; None when it has none."""
    if not figures:
        return None
    items = [(str(label), " ".join(str(value).split())) for label, value in figures.items()]
    instrument = next((f"{label}{': ' if _NOUN.search(label) else ' '}{value}"
                       for label, value in items if _INSTRUMENT.search(label)), NONE)
    shown = [(label, value) for label, value in items if not _INSTRUMENT.search(label)]
    if shown:
        label, value = shown[0]
        figure = f"{label}: {_without_n_and_bound(_PLUS_MINUS_CLAUSE.sub('', value))}"
        if instrument == NONE:
            instrument = _resolution([value])
    else:
        figure = NONE
    measuring = [value for label, value in items if _INSTRUMENT.search(label)]
    values = [value for _, value in shown] + measuring
    # A figure labelled as an interval ("95 % CI of the share lost": "73.6 % – 77.8 %").
    intervals = [f"95 % CI {value}" for label, value in items if label.startswith("95 % CI")]
    return EvidenceRow(figure, _n(values), _bound(values + intervals), instrument)


def evidence_rows(numbered: Sequence[tuple[int, Any]]) -> list[tuple[int, EvidenceRow]]:
    """(number, row) of the numbered findings whose row says more than its figure; the
    others' figures are in their sentences, and every figure is in METHOD.md."""
    rows = []
    for number, finding in numbered:
        row = evidence_row(finding.figures)
        if row is not None and row.informative:
            rows.append((number, row))
    return rows
