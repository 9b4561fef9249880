"""Render ``REPORT.md``, its PNG charts and ``REPORT.html`` from the saved results of a run.

The report is a view of the JSON results only: it never talks to a cluster, so
``invoke report --from DIR`` re-renders a run anywhere. Python prepares every figure
as text (through :mod:`etcdlab.figures.units`); the templates only place it.

Adding an experiment to the report takes two steps:

1. its question folder ``etcdlab/questions/qNN_NAME/`` defines its ``SPEC`` (number, name,
   title: the one registry, :mod:`etcdlab.questions.spec`; :func:`questions` lists them)
   and holds the partial ``section.md.j2``;
2. a module ``etcdlab/questions/qNN_NAME/section.py`` with ``charts(result, out_dir) ->
   {chart key: PNG file name}`` and ``section(result, charts) -> dict``, whose dict the
   partial reads as ``section.data`` (see :func:`presenter`).

Until step 2 is done the section shows the question, the published figures and a
notice; charts and sections run only for results whose status is "ok".
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, FunctionLoader, StrictUndefined

from etcdlab.figures.units import FILTERS, fmt_count
from etcdlab.questions.spec import QuestionSpec, specs
from etcdlab.report.environment import FIELDS, TIME_KEYS, format_value, label
from etcdlab.report.evidence import evidence_rows
from etcdlab.report.html import markdown_to_html, slug
from etcdlab.results import Result, load_results

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
"""The report's own templates; each question's partial is in its folder (:func:`_environment`)."""
QUESTIONS_PACKAGE = "etcdlab.questions"
REPORT_TEMPLATE = "report.md.j2"
REPORT_NAME = "REPORT.md"
HTML_NAME = "REPORT.html"
# Each question's appendix (method and full statistics) leaves REPORT.md for this file
# beside it, so that the report a student reads stays short; REPORT.html keeps it, folded.
METHOD_NAME = "METHOD.md"
APPENDIX_HEADING = "### Appendix"
# Sections of the whole report that METHOD.md takes entire (the run's settings).
MOVED_SECTIONS = {"## Environment": "The run's environment (etcd version, members, timeouts, "
                                    "host) is in"}

ChartFunction = Callable[[Result, Path], dict[str, str]]
SectionFunction = Callable[[Result, Mapping[str, str]], dict[str, Any]]


Question = QuestionSpec
"""One row of the question table: a question folder's ``SPEC`` (the old name, kept)."""


def questions() -> tuple[Question, ...]:
    """Every question, in order: the folders' ``SPEC`` (:func:`etcdlab.questions.spec.specs`),
    read afresh, so that a question folder added since is listed."""
    return specs()


class _Questions(Sequence[Question]):
    """:data:`QUESTIONS`: :func:`questions` as a sequence, read afresh on each use."""

    def __getitem__(self, index: Any) -> Any:  # an int or a slice, as a tuple's
        return questions()[index]

    def __len__(self) -> int:
        return len(questions())

    def __iter__(self) -> Iterator[Question]:
        return iter(questions())

    def __repr__(self) -> str:
        return f"QUESTIONS{questions()!r}"


QUESTIONS: Sequence[Question] = _Questions()
"""The questions of the report, in order (what :func:`questions` returns, at each use)."""


@dataclass(frozen=True)
class Section:
    """What one partial sees as ``section``.

    ``status`` is "ok", "failed" or "not run"; ``presented`` is True when a section
    function turned the result into ``data``; otherwise ``notice`` says why not.
    """

    number: int
    experiment: str
    title: str
    template: str
    status: str
    status_text: str
    presented: bool
    notice: str
    error: str | None
    result_file: str
    charts: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)


# --- environment ---------------------------------------------------------------------------

def _cell(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys (versions.etcd)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _format_utc(text: str) -> str:
    """Show an ISO timestamp as 2025-06-16 23:35:43 UTC."""
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment_rows(results: Mapping[str, Result]) -> list[dict[str, str]]:
    """One row per metadata key; values that differ between results are shown per experiment."""
    if not results:
        return []
    flat = {name: _flatten(result.metadata) for name, result in results.items()}
    keys = {key for metadata in flat.values() for key in metadata} - set(TIME_KEYS)
    ordered = [key for key in FIELDS if key in keys]
    ordered += sorted(keys - set(FIELDS))
    rows = []
    for key in ordered:
        by_value: dict[str, list[str]] = {}
        for name, metadata in flat.items():
            if key in metadata:
                text = format_value(key, metadata[key])
                by_value.setdefault(text, []).append(name)
        if len(by_value) == 1 and len(next(iter(by_value.values()))) == len(results):
            value = next(iter(by_value))
        else:
            value = "; ".join(f"{text} ({', '.join(names)})" for text, names in by_value.items())
        rows.append({"label": _cell(label(key)), "value": _cell(value)})
    started = min(results.values(), key=lambda r: _parse_time(r.metadata["started_utc"]))
    finished = max(results.values(), key=lambda r: _parse_time(r.metadata["finished_utc"]))
    rows.append({"label": "First experiment started",
                 "value": _format_utc(started.metadata["started_utc"])})
    rows.append({"label": "Last experiment finished",
                 "value": _format_utc(finished.metadata["finished_utc"])})
    return rows


def _parse_time(text: str) -> datetime:
    """Parse a validated ISO timestamp (results.py has checked it)."""
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)




# --- registries and rendering -----------------------------------------------------------------

def _question(experiment: str) -> Question | None:
    """The question of one experiment (None if no folder's ``SPEC`` names it)."""
    return next((q for q in questions() if q.experiment == experiment), None)


def presenter(experiment: str) -> ModuleType | None:
    """The module ``etcdlab.questions.qNN_NAME.section`` that presents it, if there is one.

    It defines ``charts(result, out_dir) -> {key: png}`` and ``section(result, charts)
    -> dict`` (read by the partial as ``section.data``). A section that cites another
    experiment's measurements names it in ``CITES``; its ``section`` then takes
    ``cited={experiment: Result}`` with those of this run that ended ok.
    """
    question = _question(experiment)
    if question is None:
        return None
    name = f"{QUESTIONS_PACKAGE}.{question.package}.section"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name not in (name, name.rpartition(".")[0]):
            raise
        return None


def _build_section(question: Question, result: Result | None, out_dir: Path,
                   results: Mapping[str, Result] | None = None) -> Section:
    """Draw the charts and prepare the data of one question, or say why there are none;
    ``results`` (the run's others) supplies what the section cites."""
    base = {
        "number": question.number,
        "experiment": question.experiment,
        "title": question.title,
        "template": question.template,
        "result_file": f"{question.experiment}.json",
    }
    if result is None:
        return Section(
            **base, status="not run", status_text="not measured", presented=False, error=None,
            notice=(f"Not measured in this run: run `invoke experiment {question.experiment}`."),
        )
    if not result.ok:
        what = "was interrupted" if result.status == "interrupted" else "failed"
        return Section(
            **base, status="failed", status_text=what.removeprefix("was "), presented=False,
            error=result.error,
            notice=(f"The experiment {what}; its partial samples are kept in "
                    f"`{question.experiment}.json`. The error was:"),
        )
    module = presenter(question.experiment)
    if module is None:
        return Section(
            **base, status="ok", status_text="measured", presented=False, error=None,
            notice=(f"Measured (`{question.experiment}.json`), but this report does not "
                    "present this experiment yet."),
        )
    try:
        chart_files = module.charts(result, out_dir)
        cites = getattr(module, "CITES", ())
        if cites:
            cited = {name: other for name in cites
                     if (other := (results or {}).get(name)) is not None and other.ok}
            data = module.section(result, chart_files, cited=cited)
        else:
            data = module.section(result, chart_files)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        # A result whose samples do not have the expected shape must not cost the rest of
        # the report; the section names the problem instead.
        return Section(
            **base, status="ok", status_text="measured, not presentable", presented=False,
            error=f"{type(error).__name__}: {error}",
            notice=(f"`{question.experiment}.json` does not have the shape this report "
                    "expects, so it cannot be presented:"),
        )
    return Section(**base, status="ok", status_text="measured", presented=True, notice="",
                   error=None, charts=chart_files, data=data)


# The longest reason a failed row of the summary quotes from the error.
SUMMARY_REASON_CHARS = 150


def _reason(error: str | None) -> str:
    """The first line of an error, shortened for the summary (the section has all of it)."""
    line = next((text.strip() for text in (error or "").splitlines() if text.strip()),
                "no error recorded")
    if len(line) > SUMMARY_REASON_CHARS:
        line = line[:SUMMARY_REASON_CHARS - 1].rstrip() + "…"
    return line


def _summary_rows(sections: list[Section]) -> list[dict[str, str]]:
    """The first screen: one row per question, always all of them. A measured one shows its
    answer (the first measured finding, in a few words) and each course claim named and
    judged; a failed, interrupted or missing one says so and why."""
    rows = []
    for section in sections:
        items = list(section.data.get("findings", ())) if section.presented else []
        answer = next((f for f in items if f.kind == "measured"), None)
        course = [f for f in items if f.kind == "course"]
        if section.presented and answer is not None:
            outcome = "measured"
            text = answer.brief
            judged = "; ".join(f.judgement for f in course) or "no course claim compared"
        elif section.status == "not run":
            outcome = "not run"
            text = f"not run: `invoke experiment {section.experiment}` measures it"
            judged = "not judged"
        elif section.status == "failed":
            outcome = section.status_text
            text = f"{section.status_text}: {_reason(section.error)}"
            judged = "not judged"
        else:
            outcome = section.status_text
            text = (f"measured, not presentable: {_reason(section.error)}" if section.error
                    else section.notice)
            judged = "not judged"
        rows.append({"number": str(section.number), "experiment": section.experiment,
                     "outcome": outcome, "answer": _cell(text), "course": _cell(judged)})
    return rows


def _run_line(sections: list[Section]) -> str:
    """What the header says of the run: how many questions were measured, and which were
    not, by outcome (never that all of them ran)."""
    measured = [s for s in sections if s.status == "ok"]
    text = f"{fmt_count(len(measured))} of {fmt_count(len(sections))} questions measured"
    others: dict[str, list[str]] = {}
    for section in sections:
        if section.status != "ok":
            others.setdefault(section.status_text, []).append(f"Q{section.number}")
    for outcome, numbers in others.items():
        text += f"; {outcome}: {', '.join(numbers)}"
    return text


def _question_template(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """A partial ``qNN_NAME/section.md.j2`` read from that question's folder (wherever the
    package ``etcdlab.questions.qNN_NAME`` is found); None for any other name."""
    package, _, file_name = name.partition("/")
    if not package or "/" in file_name or not file_name.endswith(".j2"):
        return None
    try:
        spec = importlib.util.find_spec(f"{QUESTIONS_PACKAGE}.{package}")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = next((found for folder in spec.submodule_search_locations
                 if (found := Path(folder) / file_name).is_file()), None)
    if path is None:
        return None
    mtime = path.stat().st_mtime
    return (path.read_text(encoding="utf-8"), str(path),
            lambda: path.is_file() and path.stat().st_mtime == mtime)


def _environment(template_dir: Path) -> Environment:
    """The jinja environment: strict about undefined names, units filters installed. It
    finds the report's templates in ``template_dir`` and each question's partial in the
    question's folder."""
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(template_dir)),
                             FunctionLoader(_question_template)]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    environment.filters.update(FILTERS)
    environment.filters["evidence_rows"] = evidence_rows
    return environment


def render_report(results_dir: Path, template_dir: Path | None = None) -> Path:
    """Render ``results_dir/REPORT.md`` and its charts from the JSON results in results_dir.

    Only saved results are read. Charts are written beside the report, and so is
    ``REPORT.html``: the same Markdown as one self-contained page (charts embedded). Both
    files are replaced atomically. Returns the Markdown report's path.
    """
    folder = Path(results_dir)
    results = load_results(folder)
    sections = [_build_section(q, results.get(q.experiment), folder, results)
                for q in QUESTIONS]
    known = {question.experiment for question in QUESTIONS}
    template = _environment(Path(template_dir or TEMPLATE_DIR)).get_template(REPORT_TEMPLATE)
    values = dict(
        run_name=folder.name,
        quick=sorted(name for name, result in results.items()
                     if result.ok and result.metadata.get("quick")),
        summary=_summary_rows(sections),
        run_line=_run_line(sections),
        results_count=fmt_count(len(results)),
        environment=_environment_rows(results),
        sections=sections,
        other_results=sorted(f"{name}.json" for name in results if name not in known),
    )
    # The Markdown shows one evidence row per finding (every figure goes to METHOD.md); the
    # HTML page folds every figure of a finding under its item instead.
    text = template.render(**values, html_page=False)
    target = folder / REPORT_NAME
    short, method = split_method(text, folder.name)
    _write_atomically(target, short)
    _write_atomically(folder / METHOD_NAME, method)
    _write_atomically(folder / HTML_NAME,
                      markdown_to_html(template.render(**values, html_page=True), folder))
    return target


def split_method(text: str, run_name: str) -> tuple[str, str]:
    """The report without its questions' appendices and its environment, each replaced by
    a link, and ``METHOD.md``: the environment, then the appendices under their questions'
    headings (one level up)."""
    short: list[str] = []
    method = [f"# etcdlab report: method and full statistics\n\nRun `{run_name}`: how each "
              f"question was measured, with the full statistics; the answers are in "
              f"[{REPORT_NAME}]({REPORT_NAME}).\n"]
    heading = ""
    taken: set[str] = set()
    in_appendix = fenced = False
    for line in text.splitlines(keepends=True):
        if line.startswith("~~~") or line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            in_appendix = False
            heading = line
            if line.rstrip() in MOVED_SECTIONS:
                # Moved whole: a link stays where it was.
                in_appendix = True
                anchor = slug(line[3:].strip(), taken)
                short.append(f"{MOVED_SECTIONS[line.rstrip()]} [{METHOD_NAME}]"
                             f"({METHOD_NAME}#{anchor}).\n\n")
                method.append(f"\n{line}")
                continue
        elif (not fenced and line.rstrip() == APPENDIX_HEADING
              and heading.startswith("## Q")):
            in_appendix = True
            anchor = slug(heading[3:].strip(), taken)
            short.append(f"Method and full statistics: [{METHOD_NAME}]"
                         f"({METHOD_NAME}#{anchor}).\n\n")
            method.append(f"\n{heading}")
            continue
        if in_appendix:
            method.append(line[1:] if not fenced and line.startswith("#### ") else line)
        else:
            short.append(line)
    return "".join(short).rstrip("\n") + "\n", "".join(method)


def _write_atomically(target: Path, text: str) -> None:
    """Replace ``target`` by ``text`` in one step: a reader sees the old file or the new one."""
    descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
