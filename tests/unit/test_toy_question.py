"""Adding a question is one folder: a toy question written to a temporary folder is listed
by the registry (and `invoke experiments`), run against a fake lab, analysed and rendered.

The folder is put on ``etcdlab.questions.__path__``, as if it were
``etcdlab/questions/q11_toy/``; nothing else is patched: its ``SPEC`` in its ``__init__.py``
puts it in the report's list of questions (:func:`etcdlab.questions.spec.specs`).
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

import etcdlab.questions
from etcdlab import cli, report
from etcdlab.questions.runner import run_experiment
from tests.unit.test_journal import FakeNodes, fake_cluster

FILES = {
    "__init__.py": '''
        """Q11 ``toy``: how many values does a toy run take?"""

        from etcdlab.questions.spec import QuestionSpec

        SPEC = QuestionSpec(11, "toy", "Toy: how many values does it take?")
        ''',
    "run.py": '''
        """Q11 ``toy``: takes ``count`` values (no cluster needed)."""

        from etcdlab.params import Param
        from etcdlab.questions.q11_toy import SPEC
        from etcdlab.questions.q11_toy.analysis import summarize
        from etcdlab.questions.runner import Experiment


        def run(ctx):
            ctx.samples["values"] = list(range(ctx.params["count"]))


        EXPERIMENT = Experiment(
            spec=SPEC, parameters=(Param("count", 5, "values to take", minimum=1),),
            quick={"count": 2}, run=run, summarize=summarize)
        ''',
    "analysis.py": '''
        """Q11 ``toy``: pure summary and findings."""

        from etcdlab.questions.findings import claim


        def summarize(samples, params):
            return {"taken": len(samples["values"])}


        def findings(summary, params):
            taken = summary["taken"]
            return [claim("all_taken", taken == params["count"],
                          f"The toy took all {taken} values.",
                          f"The toy took {taken} values, not {params['count']}.",
                          taken=str(taken))]
        ''',
    "section.py": '''
        """Q11 ``toy`` in the report."""

        from etcdlab.questions.q11_toy.analysis import findings, summarize


        def charts(result, out_dir):
            return {}


        def section(result, chart_files):
            summary = summarize(result.samples, result.params)
            return {"findings": findings(summary, result.params), "taken": summary["taken"]}
        ''',
    "section.md.j2": '''
        {% extends "_section.md.j2" %}
        {% block question %}How many values does the toy take?{% endblock %}
        {% block measurements %}
        Toy values taken: {{ d.taken }}.
        {% endblock %}
        {% block published %}
        - Nothing is published about the toy.
        {% endblock %}
        ''',
}


@pytest.fixture
def toy_question(tmp_path, monkeypatch):
    """A question folder q11_toy/ outside the source tree, found as etcdlab.questions.q11_toy."""
    root = tmp_path / "questions"
    folder = root / "q11_toy"
    folder.mkdir(parents=True)
    for name, text in FILES.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.setattr(etcdlab.questions, "__path__", [*etcdlab.questions.__path__, str(root)])
    yield folder
    for name in [m for m in sys.modules if m.startswith("etcdlab.questions.q11_toy")]:
        del sys.modules[name]


def test_a_toy_question_is_listed_run_analysed_and_rendered(toy_question, tmp_path, capsys):
    experiments = etcdlab.questions.registry()
    assert list(experiments)[-1] == "toy"
    assert len(experiments) == 11

    cli.print_experiments()
    listed = capsys.readouterr().out
    assert "toy" in listed and "Toy: how many values does it take?" in listed

    experiment = etcdlab.questions.get("toy")
    results = tmp_path / "results"
    result = run_experiment(experiment, fake_cluster(tmp_path, FakeNodes(["n1"])), results,
                            experiment.params(quick=True))
    assert result.status == "ok" and result.summary == {"taken": 2}
    assert json.loads((results / "toy.json").read_text())["samples"] == {"values": [0, 1]}

    assert report.QUESTIONS[-1] == report.Question(11, "toy",
                                                   "Toy: how many values does it take?")
    text = report.render_report(results).read_text()
    assert "## Q11. Toy: how many values does it take?" in text
    assert "The toy took all 2 values." in text
    method = (results / report.METHOD_NAME).read_text()
    assert "## Q11. Toy: how many values does it take?" in method
    assert "Toy values taken: 2." in method
    assert "Not measured in this run: run `invoke experiment election`." in text
