"""Small, generic PNG charts for the report (matplotlib, Agg backend, no display needed).

Every function writes one PNG to ``path`` and returns its file name, which the report
embeds with a relative link. Charts are deterministic: jitter uses a fixed seed, and
PNG metadata carries no timestamp, so the same samples give the same file.
"""

from __future__ import annotations

import os
import random
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from etcdlab.figures.stats import cdf_points  # noqa: E402

DPI = 110
FIGURE_SIZE = (7.0, 4.2)
# A series of fewer values than this is drawn as its points: a box plot or a CDF curve of
# three values suggests a distribution the run did not measure.
MIN_FOR_SHAPE = 5
JITTER_SEED = 7  # any fixed value: the same samples must give the same picture
_JITTER_WIDTH = 0.12


def _new_figure(title: str) -> tuple[Figure, plt.Axes]:
    """Return a figure with one set of axes, titled, with a light grid."""
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    axes.set_title(title)
    axes.grid(True, axis="y", alpha=0.3)
    return figure, axes


def _save(figure: Figure, path: str | os.PathLike[str]) -> str:
    """Write the figure as PNG, close it, and return the file name."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.tight_layout()
        figure.savefig(target, dpi=DPI, format="png", metadata={"Software": None})
    finally:
        plt.close(figure)
    return target.name


def strip_plot(
    path: str | os.PathLike[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    ylabel: str,
    reference_lines: Mapping[str, float] | None = None,
) -> str:
    """Plot each series as jittered points over a box plot (a series of fewer than
    MIN_FOR_SHAPE values as its points only), side by side.

    ``reference_lines`` draws labelled horizontal dashed lines (e.g. the election
    timeout). Empty series keep their place on the axis with no points.
    """
    figure, axes = _new_figure(title)
    jitter = random.Random(JITTER_SEED)
    names = list(series)
    filled = [(i + 1, list(series[name])) for i, name in enumerate(names) if series[name]]
    boxed = [(position, values) for position, values in filled if len(values) >= MIN_FOR_SHAPE]
    if boxed:
        axes.boxplot(
            [values for _, values in boxed],
            positions=[position for position, _ in boxed],
            widths=0.5,
            showfliers=False,
            medianprops={"color": "black"},
        )
    for position, values in filled:
        offsets = [position + jitter.uniform(-_JITTER_WIDTH, _JITTER_WIDTH) for _ in values]
        axes.scatter(offsets, values, s=18, alpha=0.7, zorder=3, color=f"C{position - 1}")
    for label, value in (reference_lines or {}).items():
        axes.axhline(value, linestyle="--", linewidth=1, color="grey")
        axes.annotate(label, (0.5, value), xytext=(2, 2), textcoords="offset points",
                      fontsize=8, color="grey")
    # Long names are wrapped, and many of them set smaller and slanted, so that no two
    # labels overlap (partition's eight event names did).
    many = len(names) > 3
    width = 26 if many else 28
    labels = ["\n".join(textwrap.wrap(" ".join(name.split()), width)) for name in names]
    axes.set_xticks(range(1, len(names) + 1), labels)
    if many:
        axes.tick_params(axis="x", labelsize=7, labelrotation=90)
        figure.set_figheight(FIGURE_SIZE[1] + 1.5)
    axes.set_xlim(0.4, len(names) + 0.6)
    axes.set_ylabel(ylabel)
    if all(v >= 0 for _, values in filled for v in values):
        axes.set_ylim(bottom=0)
    return _save(figure, path)


def histogram(
    path: str | os.PathLike[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    bins: int = 20,
) -> str:
    """Overlay one histogram per series, sharing the same bins."""
    figure, axes = _new_figure(title)
    values = [v for name in series for v in series[name]]
    if values:
        low, high = min(values), max(values)
        edges = [low + (high - low) * i / bins for i in range(bins + 1)] if high > low else bins
        for name, data in series.items():
            if data:
                axes.hist(list(data), bins=edges, alpha=0.55, label=name)
        axes.legend()
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    return _save(figure, path)


def cdf_plot(
    path: str | os.PathLike[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
) -> str:
    """Plot the empirical cumulative distribution of each series as a step line."""
    figure, axes = _new_figure(title)
    for name, data in series.items():
        if data:
            _cdf_or_points(axes, list(data), name)
    if any(series.values()):
        axes.legend(loc="lower right")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("fraction of samples ≤ x")
    axes.set_ylim(0, 1.02)
    return _save(figure, path)


def cdf_with_model(
    path: str | os.PathLike[str],
    measured: Mapping[str, Sequence[float]],
    models: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    marks: Mapping[str, float] | None = None,
    window: tuple[float, float, str] | None = None,
) -> str:
    """The empirical CDF of each ``measured`` series as a step line (fewer than
    MIN_FOR_SHAPE values as points), each model's CDF, given as (x values, CDF values), as
    a smooth dashed line over it, ``marks`` as labelled vertical dotted lines (e.g. a
    published figure) and ``window`` (low, high, label) shaded (e.g. [T, 2T))."""
    figure, axes = _new_figure(title)
    if window is not None:
        axes.axvspan(window[0], window[1], color="grey", alpha=0.12, label=window[2])
    for index, (name, (xs, ys)) in enumerate(models.items()):
        if len(xs) != len(ys):
            raise ValueError(f"cdf_with_model: model {name!r} has {len(xs)} x and {len(ys)} "
                             "CDF values")
        axes.plot(list(xs), list(ys), linestyle="--", linewidth=1.5, color=f"C{index + 1}",
                  label=name)
    for name, data in measured.items():
        if data and len(data) < MIN_FOR_SHAPE:
            ordered, fractions = cdf_points(data)
            axes.plot(ordered, fractions, "o", color="C0", label=f"{name}, points")
        elif data:
            ordered, fractions = cdf_points(data)
            # Start the step at 0 left of the first value, so the first jump shows.
            axes.step([ordered[0], *ordered], [0.0, *fractions], where="post", linewidth=2,
                      color="C0", label=name)
    for label, value in (marks or {}).items():
        axes.axvline(value, linestyle=":", linewidth=1.2, color="grey")
        axes.annotate(label, (value, 0.04), xytext=(3, 0), textcoords="offset points",
                      fontsize=8, color="grey")
    if models or any(measured.values()):
        axes.legend(loc="upper left", fontsize=8)
    axes.grid(True, axis="x", alpha=0.3)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("fraction of elections ≤ x")
    axes.set_ylim(0, 1.02)
    return _save(figure, path)


def bar_chart(
    path: str | os.PathLike[str],
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    ylabel: str,
    value_labels: Sequence[str] | None = None,
) -> str:
    """Draw one bar per label; ``value_labels`` (already formatted) are printed on top."""
    if len(labels) != len(values):
        raise ValueError(f"bar_chart: {len(labels)} labels for {len(values)} values")
    if value_labels is not None and len(value_labels) != len(values):
        raise ValueError(f"bar_chart: {len(value_labels)} value labels for {len(values)} values")
    figure, axes = _new_figure(title)
    bars = axes.bar(list(labels), list(values), width=0.55)
    if value_labels is not None:
        axes.bar_label(bars, labels=list(value_labels), padding=3)
        axes.margins(y=0.15)
    axes.set_ylabel(ylabel)
    return _save(figure, path)


def bar_panels(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, Sequence[str], Sequence[float], Sequence[str], str]],
    title: str,
) -> str:
    """Bar charts side by side in one figure: each panel is (title, labels, values,
    formatted value labels, y label)."""
    figure, all_axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2),
                                    squeeze=False)
    figure.suptitle(title)
    for axes, (panel_title, labels, values, value_labels, ylabel) in zip(
            all_axes[0], panels, strict=True):
        if not len(labels) == len(values) == len(value_labels):
            raise ValueError(f"bar_panels: panel {panel_title!r} has {len(labels)} labels, "
                             f"{len(values)} values, {len(value_labels)} value labels")
        axes.grid(True, axis="y", alpha=0.3)
        bars = axes.bar(list(labels), list(values), width=0.55,
                        color=[f"C{i}" for i in range(len(labels))])
        axes.bar_label(bars, labels=list(value_labels), padding=3)
        axes.margins(y=0.15)
        axes.set_title(panel_title, fontsize=10)
        axes.set_ylabel(ylabel)
    return _save(figure, path)


def line_chart(
    path: str | os.PathLike[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    styles: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """Plot each series, given as (x values, y values), as a line with markers; ``styles``
    gives a series its matplotlib ``color``/``linestyle`` (e.g. colour by one variable,
    dash by another)."""
    figure, axes = _new_figure(title)
    for name, (xs, ys) in series.items():
        if len(xs) != len(ys):
            raise ValueError(f"line_chart: series {name!r} has {len(xs)} x and {len(ys)} y values")
        axes.plot(list(xs), list(ys), marker="o", markersize=3, label=name,
                  **dict((styles or {}).get(name, {})))
    if series:
        axes.legend()
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return _save(figure, path)


def step_chart(
    path: str | os.PathLike[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    spans: Mapping[str, tuple[float, float]] | None = None,
) -> str:
    """Plot each series, given as (x values, y values), as a step line (a value holds until
    the next x); ``spans`` shades labelled x intervals (e.g. a fault window). Earlier series
    are drawn wider, so that a later one lying on top of them leaves them visible."""
    figure, axes = _new_figure(title)
    for index, (label, (start, end)) in enumerate((spans or {}).items()):
        axes.axvspan(start, end, alpha=0.15, color=f"C{index + 3}", label=label)
    widths = [1.2 + 1.6 * (len(series) - 1 - i) for i in range(len(series))]
    for (name, (xs, ys)), width in zip(series.items(), widths, strict=True):
        if len(xs) != len(ys):
            raise ValueError(f"step_chart: series {name!r} has {len(xs)} x and {len(ys)} y values")
        axes.step(list(xs), list(ys), where="post", label=name, linewidth=width)
    if series or spans:
        axes.legend(loc="best", fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_ylim(bottom=0)
    return _save(figure, path)


def _cdf_or_points(axes: plt.Axes, data: list[float], name: str) -> None:
    """The empirical CDF as a step line, or with fewer than MIN_FOR_SHAPE values their
    points alone (each at its cumulative fraction)."""
    ordered, fractions = cdf_points(data)
    if len(data) < MIN_FOR_SHAPE:
        axes.plot(ordered, fractions, "o", label=f"{name} (n = {len(data)}, points)")
    else:
        axes.step(ordered, fractions, where="post", label=name)


def _readable_log_ticks(axis: Any) -> None:
    """Label a log axis at 1, 2 and 5 of each decade in plain numbers, no minor labels."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def cdf_plot_log(
    path: str | os.PathLike[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    window: tuple[float, float, str] | None = None,
) -> str:
    """Like :func:`cdf_plot`, on a logarithmic x axis: for latencies whose tail is orders of
    magnitude above their median, which a linear axis would squash against zero.
    ``window`` (low, high, label) shades a model's range, e.g. the election's [T, 2T)."""
    figure, axes = _new_figure(title)
    if window is not None:
        axes.axvspan(window[0], window[1], color="grey", alpha=0.12, label=window[2])
    for name, data in series.items():
        positive = [value for value in data if value > 0]
        if positive:
            _cdf_or_points(axes, positive, name)
    if any(series.values()):
        axes.legend(loc="lower right", fontsize=8)
        axes.set_xscale("log")
        _readable_log_ticks(axes.xaxis)
    axes.grid(True, axis="x", which="both", alpha=0.2)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("fraction of samples ≤ x")
    axes.set_ylim(0, 1.02)
    return _save(figure, path)


def time_series(
    path: str | os.PathLike[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    spans: Mapping[str, tuple[float, float]] | None = None,
    reference_lines: Mapping[str, float] | None = None,
) -> str:
    """Plot each series, given as (x values, y values), as a line with markers; y may be
    negative. ``spans`` shades labelled x intervals (e.g. an isolation window);
    ``reference_lines`` draws labelled horizontal dashed lines (e.g. ± a threshold)."""
    figure, axes = _new_figure(title)
    for index, (label, (start, end)) in enumerate((spans or {}).items()):
        axes.axvspan(start, end, alpha=0.12, color=f"C{index + 6}", label=label)
    for name, (xs, ys) in series.items():
        if len(xs) != len(ys):
            raise ValueError(f"time_series: series {name!r} has {len(xs)} x and {len(ys)} y values")
        axes.plot(list(xs), list(ys), marker="o", markersize=3, linewidth=1.2, label=name)
    for label, value in (reference_lines or {}).items():
        axes.axhline(value, linestyle="--", linewidth=1, color="grey")
        axes.annotate(label, (0.01, value), xycoords=("axes fraction", "data"), xytext=(2, 2),
                      textcoords="offset points", fontsize=8, color="grey")
    if series or spans:
        axes.legend(loc="best", fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return _save(figure, path)


def history_timeline(
    path: str | os.PathLike[str],
    lanes: Mapping[str, Sequence[Mapping[str, Any]]],
    title: str,
    spans: Mapping[str, tuple[float, float]] | None = None,
) -> str:
    """One lane per client; each operation a bar from its invocation to its completion
    (``start``, ``end`` in seconds; ``end`` None: unknown outcome, drawn hatched to the
    right edge), coloured by ``kind``; ``highlight`` ones (stuck) outlined in red and
    ``contradicted`` ones (the write a stuck read missed) in blue, each labelled with
    ``label``. ``spans`` shades fault windows."""
    figure, axes = plt.subplots(figsize=(FIGURE_SIZE[0] * 1.3, 0.55 * len(lanes) + 1.8))
    axes.set_title(title)
    right = max([op["end"] if op["end"] is not None else op["start"]
                 for ops in lanes.values() for op in ops] or [1.0])
    colours = {"get": "C0", "put": "C2", "txn": "C1", "delete": "C4"}
    edge = {"stuck": "red", "contradicted": "blue"}

    def mark(op: Mapping[str, Any]) -> str:
        return "stuck" if op.get("highlight") else "contradicted" if op.get(
            "contradicted") else ""

    for index, (start, end) in enumerate((spans or {}).values()):
        axes.axvspan(start, end, alpha=0.12, color=f"C{index + 6}")
    for row, ops in enumerate(lanes.values()):
        for op in ops:
            unknown = op["end"] is None
            end = right if unknown else op["end"]
            # An unanswered operation is a thin hatched line under the lane: it may have
            # taken effect at any point after its call, and must not hide the answered ones.
            axes.barh(row + (0.3 if unknown else 0.0), max(end - op["start"], right * 0.004),
                      left=op["start"], height=0.12 if unknown else 0.5,
                      color=colours.get(op["kind"], "C7"), alpha=0.35 if unknown else 0.9,
                      hatch="//" if unknown else None,
                      edgecolor=edge.get(mark(op), "none"),
                      linewidth=2 if mark(op) else 0)
            if mark(op) and op.get("label"):
                axes.annotate(op["label"], (op["start"], row - 0.3), fontsize=8,
                              color=edge[mark(op)])
    handles = [Patch(color=colour, label=kind) for kind, colour in colours.items()]
    handles += [Patch(facecolor="white", edgecolor="red", linewidth=2, label="stuck")]
    if any(op.get("contradicted") for ops in lanes.values() for op in ops):
        handles += [Patch(facecolor="white", edgecolor="blue", linewidth=2,
                          label="the write it contradicts")]
    handles += [Patch(color=f"C{index + 6}", alpha=0.12, label=label)
                for index, label in enumerate(spans or {})]
    axes.set_yticks(range(len(lanes)), list(lanes))
    axes.invert_yaxis()
    axes.set_xlabel("seconds (hatched: no answer, outcome unknown)")
    axes.legend(handles=handles, loc="upper left", fontsize=7, ncol=4,
                bbox_to_anchor=(0, -0.18))
    return _save(figure, path)


def space_time_diagram(
    path: str | os.PathLike[str],
    processes: Sequence[int],
    events: Sequence[Mapping[str, object]],
    title: str,
    xlabel: str = "real time since the start (s)",
) -> str:
    """A space-time diagram: one horizontal line per process, a dot per event labelled with
    its (clock, process id), an arrow from each send to its receive.

    ``events`` are dicts with ``process``, ``t`` (x position), ``kind`` ("local", "send",
    "receive"), ``clock`` and ``msg`` (message id, for sends and receives).
    """
    figure, axes = plt.subplots(figsize=(9.0, 1.2 + 1.1 * len(processes)))
    axes.set_title(title)
    row = {pid: index for index, pid in enumerate(processes)}
    times = [float(e["t"]) for e in events] or [0.0]
    for pid in processes:
        axes.hlines(row[pid], min(times), max(times), color="lightgrey", linewidth=1, zorder=1)
    markers = {"local": ("o", "C0"), "send": ("^", "C2"), "receive": ("v", "C3")}
    sends = {e["msg"]: e for e in events if e["kind"] == "send"}
    for event in events:
        if event["kind"] == "receive" and event["msg"] in sends:
            source = sends[event["msg"]]
            axes.annotate("", xy=(float(event["t"]), row[event["process"]]),
                          xytext=(float(source["t"]), row[source["process"]]),
                          arrowprops={"arrowstyle": "->", "color": "grey", "linewidth": 0.8},
                          zorder=2)
    for kind, (marker, color) in markers.items():
        chosen = [e for e in events if e["kind"] == kind]
        axes.scatter([float(e["t"]) for e in chosen], [row[e["process"]] for e in chosen],
                     marker=marker, color=color, s=30, zorder=3, label=kind)
    for index, event in enumerate(events):
        axes.annotate(f"({event['clock']},{event['process']})",
                      (float(event["t"]), row[event["process"]]),
                      xytext=(0, 7 if index % 2 else -12), textcoords="offset points",
                      fontsize=7, ha="center")
    axes.set_yticks(range(len(processes)), [f"P{pid}" for pid in processes])
    axes.set_ylim(-0.7, len(processes) - 0.3)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8)
    return _save(figure, path)


def text_overlaps(figure: Figure) -> list[tuple[str, str]]:
    """The pairs of text labels the figure draws (tick labels, axis labels, titles,
    annotations, legend entries) whose boxes overlap by more than a pixel: a chart to fix.
    Only the texts actually drawn count (a tick outside the view keeps its label object)."""
    drawn: dict[int, Text] = {}
    original = Text.draw

    def record(self: Text, renderer: Any) -> Any:
        if self.get_visible() and self.get_text().strip():
            drawn[id(self)] = self
        return original(self, renderer)

    Text.draw = record  # type: ignore[method-assign]
    try:
        figure.canvas.draw()
    finally:
        Text.draw = original  # type: ignore[method-assign]
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in drawn.values()]
    found = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if (min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > 1
                    and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > 1):
                found.append((a, b))
    return found
