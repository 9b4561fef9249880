"""Rendering one result's section, as the analysis tests compare it before and after a change."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from etcdlab import report
from etcdlab.questions.findings import Finding
from etcdlab.results import Result


def rendered_section(tmp_path: Path, record: Mapping[str, Any], name: str = "run") -> str:
    """The section of ``record`` in the report of a folder that holds only it."""
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / f"{record['experiment']}.json").write_text(json.dumps(record, sort_keys=True),
                                                         encoding="utf-8")
    text = report.render_report(folder).read_text(encoding="utf-8")
    number = next(q.number for q in report.QUESTIONS if q.experiment == record["experiment"])
    return whole_section(text, (folder / report.METHOD_NAME).read_text(encoding="utf-8"),
                         number)


def whole_section(text: str, method: str, number: int) -> str:
    """Question ``number``'s section as REPORT.html has it: its part of REPORT.md, then its
    appendix from METHOD.md under "### Appendix" again (headings one level down)."""
    appendix = _section(method, number)
    if not appendix:
        return _section(text, number)
    lines = appendix.splitlines(keepends=True)[1:]  # its "## Qn." heading is the report's
    body = "".join("#" + line if line.startswith("### ") else line for line in lines)
    return _section(text, number) + "\n### Appendix\n" + body


def _section(text: str, number: int) -> str:
    start = text.find(f"## Q{number}.")
    if start == -1:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def template_section(result: Result, findings: Sequence[Finding] | None = None) -> str:
    """The section's Markdown from its template alone (no charts); ``findings`` replaces the
    section's own, to render the findings of a modified summary."""
    question = next(q for q in report.QUESTIONS if q.experiment == result.experiment)
    module = importlib.import_module(f"etcdlab.questions.{question.package}.section")
    data = module.section(result, {})
    if findings is not None:
        data = {**data, "findings": list(findings)}
    section = report.Section(
        number=question.number, experiment=question.experiment, title=question.title,
        template=question.template, status="ok", status_text="measured", presented=True,
        notice="", error=None, result_file=f"{question.experiment}.json", data=data)
    template = report._environment(report.TEMPLATE_DIR).get_template(question.template)
    return template.render(section=section, html_page=False)


def report_text(folder: Path) -> str:
    """Render the report of ``folder``; its text as REPORT.html has it: REPORT.md with each
    question's appendix back from METHOD.md."""
    text = report.render_report(Path(folder)).read_text(encoding="utf-8")
    method = (Path(folder) / report.METHOD_NAME).read_text(encoding="utf-8")
    head = text[:text.find("\n## Q1.") + 1] if "\n## Q1." in text else text
    if "\n## Environment" in method:  # the run's environment, moved to METHOD.md whole
        start = method.index("\n## Environment")
        end = method.find("\n## ", start + 1)
        head += method[start + 1:end if end != -1 else len(method)]
    return head + "\n".join(whole_section(text, method, q.number) for q in report.QUESTIONS
                             if f"## Q{q.number}." in text) + "\n"
