"""`invoke report` and `invoke lab` end with the wall time of each experiment."""

import io

import pytest
from rich.console import Console

from etcdlab import cli
from etcdlab.cli import ExperimentTime, time_rows
from etcdlab.errors import LabError


def test_one_row_per_experiment_then_the_total():
    rows = time_rows([ExperimentTime("election", "ok", 61.04),
                      ExperimentTime("partition", "failed", 12.5),
                      ExperimentTime("quota", "ok", 6.46)])
    assert rows == [
        ("election", "ok", "61.0"),
        ("partition", "failed", "12.5"),
        ("quota", "ok", "6.5"),
        ("total", "2 ok, 1 failed", "80.0 (1.3 min)"),
    ]


def test_invoke_lab_puts_the_provision_first_and_in_the_total():
    rows = time_rows([ExperimentTime("election", "ok", 30.0)], provision_s=90.0)
    assert rows[0] == ("provision", "ok", "90.0")
    assert rows[-1] == ("total", "1 ok", "120.0 (2.0 min)")


def test_an_interrupted_experiment_is_counted_as_such():
    rows = time_rows([ExperimentTime("election", "ok", 1.0),
                      ExperimentTime("conflicts", "interrupted", 2.0)])
    assert rows[1] == ("conflicts", "interrupted", "2.0")
    assert rows[-1][1] == "1 ok, 1 interrupted"


def test_no_experiment_run_still_has_a_total():
    assert time_rows([]) == [("total", "none run", "0.0 (0.0 min)")]
    assert time_rows([], provision_s=3.0)[-1] == ("total", "none run", "3.0 (0.1 min)")


@pytest.fixture
def report_run(monkeypatch, tmp_path):
    """cli._report with the lab, the runner and the rendering replaced, and its console."""
    out = Console(width=100, file=io.StringIO(), record=True, highlight=False)
    monkeypatch.setattr(cli, "console", out)
    monkeypatch.setattr(cli, "_running_cluster", lambda config: None)
    monkeypatch.setattr(cli, "_render", lambda folder: out.print(f"report {folder}"))
    outcomes = {"election": True, "partition": False, "quota": KeyboardInterrupt}

    def run_one(cluster, exp, results_dir, params):
        if outcomes[exp.name] is KeyboardInterrupt:
            raise KeyboardInterrupt
        return outcomes[exp.name]

    monkeypatch.setattr(cli, "_run_one", run_one)

    def run(names, provision_s=None):
        cli._report(None, True, names, tmp_path, provision_s)

    return run, out


def test_the_report_run_prints_the_table_before_the_report_line(report_run):
    run, out = report_run
    with pytest.raises(LabError, match="partition"):
        run(["election", "partition"], provision_s=42.0)
    text = out.export_text()
    table = text[text.index("time per experiment"):]
    for line in ("provision", "election", "partition", "total"):
        assert line in table
    assert "42.0" in table and "1 ok, 1 failed" in table
    assert table.index("total") < table.index("report ")


def test_an_interrupted_report_run_still_prints_the_table(report_run):
    run, out = report_run
    with pytest.raises(KeyboardInterrupt):
        run(["election", "quota", "partition"])
    text = out.export_text()
    table = text[text.index("time per experiment"):]
    assert "quota" in table and "interrupted" in table
    assert "partition" not in table  # no experiment starts after the interrupt
    assert "1 ok, 1 interrupted" in table
