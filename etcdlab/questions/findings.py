"""Analysis: pure code that turns one experiment's samples into a summary and findings.

``etcdlab.questions.qNN_NAME.analysis`` is the analysis of one experiment.
It does no I/O and knows no cluster: it imports :mod:`etcdlab.figures.stats`,
:mod:`etcdlab.figures.units` and this package only (the layer contracts in
``pyproject.toml`` check it). It defines

- ``summarize(samples, params) -> dict``: every number the report shows, from the samples
  alone (the runner stores it in the result for other tools; see below);
- ``findings(summary, params) -> list[Finding]``: the claims of the section, each with the
  sentence it reads when it holds, the sentence when it does not, and the figures behind it;
- ``ASKED``: what the question itself asks (:class:`Asked`), so a run whose parameters
  differ (a quick run) says so beside its answer.

A :class:`Finding` is the only place a conclusion may be written: the report renders the
sentence that matches ``holds`` and never states one of its own. A comparison with the
course report or a published figure is a finding too (``kind`` "course" or "published"),
whose verdict is agrees / contradicts / cannot be tested in this run.

Why ``summary`` is still stored although the report recomputes it from the samples (as
pyperf does with its raw values): the JSON stays useful to tools that do not import this
package, and an analysis fixed later re-renders an old run correctly, because the report
never trusts the stored copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

KINDS = ("measured", "course", "published")
VERDICTS = {True: "agrees", False: "contradicts", None: "cannot be tested in this run"}
# The mark a named verdict ends with in the summary: agrees, contradicts, cannot be tested.
MARKS = {True: "✓", False: "✗", None: "–"}


@dataclass(frozen=True)
class Finding:
    """One claim of a section and whether it held in this run.

    ``holds`` is True, False, or None when this run cannot tell (``why_unknown`` says why).
    ``figures`` maps a label to the formatted figure the claim rests on (with its n and
    bound where it has one). For ``kind`` "course"/"published", ``holds`` means the source
    agrees with this run's measurement.
    """

    id: str
    holds: bool | None
    when_true: str
    when_false: str
    why_unknown: str = ""
    figures: Mapping[str, str] = field(default_factory=dict)
    kind: str = "measured"
    # The claim in a few words ("election 1.77 s") and the verdict in a few words for each
    # outcome (held, did not, cannot be told): what the summary shows (see :func:`named`).
    claim: str = ""
    briefs: tuple[str, str, str] = ("", "", "")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"finding {self.id}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.when_true == self.when_false:
            raise ValueError(f"finding {self.id}: its two sentences must differ, or it claims "
                             "the same whatever the data")
        if self.holds is None and not self.why_unknown:
            raise ValueError(f"finding {self.id}: an untestable claim must say why")

    @property
    def text(self) -> str:
        """The sentence that matches this run."""
        if self.holds is None:
            return self.why_unknown
        return self.when_true if self.holds else self.when_false

    @property
    def label(self) -> str:
        """What the evidence table calls this finding: its claim, else its id in words."""
        return self.claim or self.id.replace("_", " ").replace("-", " ")

    @property
    def brief(self) -> str:
        """The few words that match this run (the sentence itself when none were given)."""
        chosen = self.briefs[{True: 0, False: 1, None: 2}[self.holds]]
        return chosen or self.text

    @property
    def judgement(self) -> str:
        """The claim named and judged in a few words, for the summary: "election 1.77 s:
        inside the measured range ✓"; an untestable one says so and why."""
        name = self.claim or self.id
        if self.holds is None:
            return f"{name}: cannot be tested in this run ({self.brief}) {MARKS[None]}"
        return f"{name}: {self.brief} {MARKS[self.holds]}"

    @property
    def verdict(self) -> str:
        """"holds" / "does not hold" / "not measurable", or for a comparison "agrees"…"""
        if self.kind != "measured":
            return VERDICTS[self.holds]
        return {True: "holds", False: "does not hold", None: "not measurable here"}[self.holds]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the rendered sentence included), e.g. for other tools."""
        return {"id": self.id, "kind": self.kind, "holds": self.holds, "text": self.text,
                "verdict": self.verdict, "figures": dict(self.figures)}


def claim(id: str, holds: bool | None, yes: str, no: str, unknown: str = "",
          **figures: str) -> Finding:
    """A measured finding: ``yes`` when it held, ``no`` when not, ``unknown`` when untestable."""
    return Finding(id, holds, yes, no, unknown, figures)


def comparison(id: str, source: str, agrees: bool | None, yes: str, no: str,
               unknown: str = "", **figures: str) -> Finding:
    """A comparison with the course report (``source`` "course") or a published figure."""
    return Finding(id, agrees, yes, no, unknown, figures,
                   kind="course" if source == "course" else "published")


def named(finding: Finding, claim: str, yes: str = "", no: str = "",
          unknown: str = "") -> Finding:
    """The finding with its claim named in a few words and its verdict in a few words per
    outcome, for the summary's first screen (the full sentences stay in the section)."""
    return replace(finding, claim=claim, briefs=(yes, no, unknown))


def name_all(items: Sequence[Finding],
             names: Mapping[str, tuple[str, str, str, str]]) -> list[Finding]:
    """:func:`named` over a section's findings: ``names`` maps an id to (claim, yes, no,
    unknown); findings already named and ids not listed are kept as they are."""
    return [named(f, *names[f.id]) if f.id in names and not f.claim else f for f in items]


def untestable(id: str, why: str, /, source: str = "measured", **figures: str) -> Finding:
    """A claim this run cannot test, only its reason (its two sentences are never shown)
    and the figures it would rest on, if any were measured."""
    if source == "measured":
        return claim(id, None, f"{id}: holds", f"{id}: does not hold", why, **figures)
    return comparison(id, source, None, f"{id}: agrees", f"{id}: contradicts", why, **figures)


@dataclass(frozen=True)
class Asked:
    """One condition the question sets, to compare with the run's parameter."""

    param: str
    value: Any
    label: str
    formatter: Callable[[Any], str] = str


def asked_values(asked: Sequence[Asked]) -> dict[str, Any]:
    """What the question asks, by parameter: the full run's values, which run.py declares
    as its parameters' defaults (so that they are written once, here in the analysis)."""
    return {item.param: item.value for item in asked}


def run_vs_question(params: Mapping[str, Any], asked: Sequence[Asked]) -> list[dict[str, str]]:
    """Rows "what, this run, the question" wherever the run's parameters differ from it."""
    rows = []
    for item in asked:
        if item.param in params and params[item.param] != item.value:
            rows.append({"what": item.label, "run": item.formatter(params[item.param]),
                         "question": item.formatter(item.value)})
    return rows


def by_id(findings: Sequence[Finding]) -> dict[str, Finding]:
    """Findings keyed by id (ids are unique within one section)."""
    table = {f.id: f for f in findings}
    if len(table) != len(findings):
        raise ValueError("finding ids must be unique within a section")
    return table


def history_findings(samples: Mapping[str, Any]) -> list[Finding]:
    """One finding per recorded client history: the checker's verdict (etcdlab.etcd.history).

    "unknown" (the budget ran out) is holds=None with why, never a guess."""
    found = []
    for label, verdict in sorted((samples.get("histories") or {}).items()):
        name = verdict.get("file", label)
        figures = {"operations": f"{verdict.get('operations', 0):,}"}
        for key, label_text in (("processes", "processes"), ("unknown", "unknown outcomes")):
            if verdict.get(key) is not None:  # histories checked before these were counted
                figures[label_text] = f"{verdict[key]:,}"
        figures["fault windows"] = f"{verdict.get('faults', 0):,}"
        figures["checked by"] = "Wing & Gong search, etcd KV model"
        if verdict.get("elapsed_s") is not None:
            figures["checked in"] = f"{verdict['elapsed_s']:.2f} s"
        why = verdict.get("why") or (
            f"the checker's budget of {verdict.get('budget_s')} s ran out before a verdict"
            if verdict.get("verdict") == "unknown" else "")
        example = verdict.get("counterexample") or {}
        stuck = "; ".join(example.get("stuck", [])[:3])
        if stuck:
            figures["the search got stuck at"] = stuck
        found.append(Finding(
            f"linearizable-{label}",
            {"linearizable": True, "not-linearizable": False}.get(verdict.get("verdict")),
            f"The recorded client history `{name}` is linearizable: one order of its "
            "operations explains every answer.",
            f"The recorded client history `{name}` is NOT linearizable: no order of its "
            "operations explains every answer.",
            why or "no verdict", figures))
    return found


def register_verdict(histories: Mapping[str, Any], fault: str, series: str
                     ) -> Mapping[str, Any]:
    """The checked history of one register series (``register-FAULT-SERIES``; for the
    leader-cut fault also the older ``register-SERIES``), or {}."""
    return (histories.get(f"register-{fault}-{series}")
            or (histories.get(f"register-{series}") if fault == "leader-cut" else None) or {})


def leader_change_leases(samples: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The lease each of Q3's leader-cut trials (``samples["leader_isolated"]``) held across
    the leader change: its TTL, its age at the cut, and its remaining TTL read from the old
    leader before the cut (``before_s``) and from the new leader (``after_s``)."""
    leases = [t["lease"] for t in samples.get("leader_isolated") or [] if t.get("lease")]
    return [{"ttl_s": lease.get("ttl_s"), "age_at_cut_s": lease.get("age_at_cut_s"),
             "before_s": lease.get("remaining_before_cut_s"),
             "after_s": lease.get("remaining_after_new_leader_s")} for lease in leases]
