"""Every chart the report draws from the saved runs in tests/data is readable: no two text
labels overlap, and a series of fewer than 5 values is drawn as points (issue 29)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from etcdlab.report import QUESTIONS, charts
from etcdlab.results import load_results

DATA = Path(__file__).resolve().parent.parent / "data"
# The saved runs: folders of results (a part's bare samples, as in server-clock/, are not).
RUNS = sorted(p for p in DATA.iterdir()
              if p.is_dir() and any(p.glob("*.json"))
              and p.name not in ("read-latency-staleness", "server-clock"))


@pytest.fixture
def drawn(monkeypatch):
    """Each chart saved, with the overlapping label pairs found just before saving."""
    found: dict[str, list[tuple[str, str]]] = {}
    save = charts._save

    def checked(figure, path):
        found[Path(path).name] = charts.text_overlaps(figure)
        return save(figure, path)

    monkeypatch.setattr(charts, "_save", checked)
    return found


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_no_two_labels_of_any_chart_overlap(tmp_path, drawn, run):
    results = load_results(run)
    for question in QUESTIONS:
        result = results.get(question.experiment)
        if result is None or not result.ok:
            continue
        module = importlib.import_module(f"etcdlab.questions.{question.package}.section")
        for history in run.glob(f"{question.experiment}*.history.jsonl"):
            (tmp_path / history.name).write_bytes(history.read_bytes())
        module.charts(result, tmp_path)
    assert drawn, f"{run.name}: no chart was drawn"
    overlapping = {name: pairs for name, pairs in drawn.items() if pairs}
    assert not overlapping, overlapping


def test_many_long_event_names_stay_apart(tmp_path, drawn):
    # A full partition run has eight timed events with long names (the quick runs in
    # tests/data have too few values to draw them): the strip plot keeps them readable.
    names = [f"{side}: {event}" for side in ("leader isolated", "follower isolated")
             for event in ("new leader after the cut", "old leader stepped down",
                           "minority reads refused", "healed: one leader again")]
    series = {name.replace(": ", ":\n", 1): [1.0 + i * 0.1, 1.2, 1.3, 1.5, 1.6]
              for i, name in enumerate(names)}
    charts.strip_plot(tmp_path / "partition.png", series, "Partition: times", "seconds",
                      {"election timeout (1.00 s)": 1.0, "2 × election timeout (2.00 s)": 2.0})
    assert drawn["partition.png"] == []


def test_fewer_than_five_values_are_drawn_as_points(tmp_path):
    import matplotlib.pyplot as plt

    shown = {}
    original = charts._save

    def keep(figure, path):
        axes = figure.axes[0]
        shown["boxes"] = len([line for line in axes.lines if line.get_marker() in ("", "None")
                              and len(line.get_xdata()) == 2])
        shown["steps"] = [line.get_drawstyle() for line in axes.lines]
        plt.close(figure)
        return Path(path).name

    charts._save = keep
    try:
        charts.strip_plot(tmp_path / "a.png", {"three": [1.0, 2.0, 3.0]}, "t", "s")
        assert shown["boxes"] == 0  # no box plot of three values
        charts.cdf_plot(tmp_path / "b.png", {"three": [1.0, 2.0, 3.0]}, "t", "s")
        assert "steps-post" not in shown["steps"]
        charts.cdf_plot(tmp_path / "c.png", {"six": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, "t", "s")
        assert "steps-post" in shown["steps"]
    finally:
        charts._save = original
