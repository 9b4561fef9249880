"""Render ``REPORT.md`` (and its PNG charts) from the saved results of one run.

The report is a view of the JSON results only: it never talks to a cluster, so
``invoke report --from DIR`` re-renders a run anywhere. Python prepares every figure
as text (through :mod:`etcdlab.units`); the templates only place it.

Adding an experiment to the report takes three steps:

1. its question is already in :data:`QUESTIONS` (DESIGN.md's table), with the partial
   ``templates/sections/qNN_NAME.md.j2``;
2. a chart function ``(result, out_dir) -> {chart key: PNG file name}`` in
   :data:`CHARTS`;
3. a section function ``(result, charts) -> dict`` in :data:`SECTIONS`, whose dict the
   partial reads as ``section.data``.

Until step 3 is done the section shows the question, the published figures and a
notice; charts and sections run only for results whose status is "ok".
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from etcdlab import charts
from etcdlab.results import Result, load_results
from etcdlab.stats import summarize
from etcdlab.units import (
    FILTERS,
    MISSING,
    fmt_bool,
    fmt_bytes,
    fmt_count,
    fmt_factor,
    fmt_ms,
    fmt_percent,
    fmt_rate,
    fmt_seconds,
)

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
REPORT_TEMPLATE = "report.md.j2"
REPORT_NAME = "REPORT.md"

ChartFunction = Callable[[Result, Path], dict[str, str]]
SectionFunction = Callable[[Result, Mapping[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Question:
    """One row of DESIGN.md's question table and the partial that answers it."""

    number: int
    experiment: str
    title: str

    @property
    def template(self) -> str:
        """The partial's path inside the template folder."""
        slug = self.experiment.replace("-", "_")
        return f"sections/q{self.number:02d}_{slug}.md.j2"


QUESTIONS = (
    Question(1, "election", "How long does etcd take to elect a new leader?"),
    Question(2, "conflicts", "How does etcd resolve concurrent updates of one key?"),
    Question(3, "partition", "What happens on each side of a network partition?"),
    Question(4, "lamport", "Lamport clocks with process ids, carried through etcd"),
    Question(5, "read-latency", "Read latency: linearizable vs serializable"),
    Question(6, "quota", "What --quota-backend-bytes does when it is reached, and how to recover"),
    Question(7, "ntp-isolation", "chrony resynchronisation after 5 minutes of isolation"),
    Question(8, "lease-drift", "A client clock drifting 500 ms/min against etcd leases and locks"),
    Question(9, "faulty-clock", "Detecting faulty clocks from node-to-node messages"),
    Question(10, "membership", "A dynamic membership (naming) service on etcd leases + watch"),
)


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

# Known metadata keys, in the order the environment table lists them; others follow sorted.
_METADATA_LABELS = {
    "etcd_version": "etcd version",
    "node_count": "Cluster members",
    "heartbeat_ms": "Heartbeat interval",
    "election_timeout_ms": "Election timeout",
    "quota_backend_bytes": "Backend quota",
    "image": "Base image",
    "kernel": "Kernel",
    "cpu_count": "CPUs",
    "host": "Host",
    "python": "Python",
    "etcdlab_version": "etcdlab version",
}
_TIME_KEYS = ("started_utc", "finished_utc")


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


def _format_metadata_value(key: str, value: Any) -> str:
    """Format a metadata value, choosing the unit from the key's suffix."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return fmt_bool(value)
    if isinstance(value, (int, float)):
        for suffix, formatter in (("_ms", fmt_ms), ("_s", fmt_seconds), ("_bytes", fmt_bytes)):
            if key.endswith(suffix):
                return formatter(value)
        return str(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _format_utc(text: str) -> str:
    """Show an ISO timestamp as 2025-06-16 23:35:43 UTC."""
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment_rows(results: Mapping[str, Result]) -> list[dict[str, str]]:
    """One row per metadata key; values that differ between results are shown per experiment."""
    if not results:
        return []
    flat = {name: _flatten(result.metadata) for name, result in results.items()}
    keys = {key for metadata in flat.values() for key in metadata} - set(_TIME_KEYS)
    ordered = [key for key in _METADATA_LABELS if key in keys]
    ordered += sorted(keys - set(_METADATA_LABELS))
    rows = []
    for key in ordered:
        by_value: dict[str, list[str]] = {}
        for name, metadata in flat.items():
            if key in metadata:
                text = _format_metadata_value(key, metadata[key])
                by_value.setdefault(text, []).append(name)
        if len(by_value) == 1 and len(next(iter(by_value.values()))) == len(results):
            value = next(iter(by_value))
        else:
            value = "; ".join(f"{text} ({', '.join(names)})" for text, names in by_value.items())
        label = _METADATA_LABELS.get(key, key.replace("_", " ").capitalize())
        rows.append({"label": _cell(label), "value": _cell(value)})
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


def _metadata_text(result: Result, *keys: str) -> str:
    """The first of keys present in the result's metadata, formatted; MISSING if none is."""
    for key in keys:
        if result.metadata.get(key) is not None:
            return _format_metadata_value(key, result.metadata[key])
    return MISSING


# --- shared helpers for section functions ----------------------------------------------------


def _values(rows: Iterable[Mapping[str, Any]], key: str) -> list[float]:
    """The non-null values of key across sample rows, as floats."""
    return [float(row[key]) for row in rows if row.get(key) is not None]


def _range_text(low: float | None, high: float | None, formatter: Callable[[float], str]) -> str:
    """Format an interval as "low – high", or MISSING if it is unknown."""
    if low is None or high is None:
        return MISSING
    return f"{formatter(low)} – {formatter(high)}"


def _intervals_overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool | None:
    """Whether two summaries' median confidence intervals overlap; None if one is missing."""
    bounds = (a["median_ci_low"], a["median_ci_high"], b["median_ci_low"], b["median_ci_high"])
    if any(bound is None for bound in bounds):
        return None
    return bounds[0] <= bounds[3] and bounds[2] <= bounds[1]


# --- Q1 election ------------------------------------------------------------------------------

ETCD_DEFAULT_HEARTBEAT_MS = 100
ETCD_DEFAULT_ELECTION_TIMEOUT_MS = 1000
# The course report's only figure for Q1: "lost TCP streaming connection" at 23:35:43.146,
# "elected leader" at 23:35:44.921 in its log excerpt (one observation, from the lost
# connection, not from the crash).
COURSE_REPORT_ELECTION_S = 1.775  # 23:35:44.921 - 23:35:43.146


def _election_series(result: Result) -> dict[str, dict[str, list[float]]]:
    """Elected / first-write / log times per series ("crash", "graceful") from the samples."""
    series = {}
    for name in ("crash", "graceful"):
        rows = result.samples.get(name, [])
        series[name] = {
            "elected": _values(rows, "elected_s"),
            "first_write": _values(rows, "first_write_s"),
            "log": _values(rows, "log_elected_s"),
        }
    return series


def election_charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Strip plot of the time to a new leader and to the first write, crash vs graceful."""
    series = _election_series(result)
    if not any(values for times in series.values() for values in times.values()):
        return {}
    timeout_s = result.metadata["election_timeout_ms"] / 1000
    name = charts.strip_plot(
        out_dir / "election.png",
        {
            "crash\nnew leader": series["crash"]["elected"],
            "crash\nfirst write": series["crash"]["first_write"],
            "graceful\nnew leader": series["graceful"]["elected"],
            "graceful\nfirst write": series["graceful"]["first_write"],
        },
        "Time from stopping the leader to a new leader and to the first write",
        "seconds after SIGKILL / SIGTERM",
        reference_lines={
            f"election timeout ({fmt_ms(timeout_s * 1000)})": timeout_s,
            f"2 × election timeout ({fmt_ms(timeout_s * 2000)})": 2 * timeout_s,
        },
    )
    return {"times": name}


def _election_row(label: str, times: Mapping[str, list[float]]) -> dict[str, str] | None:
    """One table row for a series, or None when the series has no samples."""
    if not times["elected"]:
        return None
    elected = summarize(times["elected"])
    first_write = summarize(times["first_write"]) if times["first_write"] else None
    log = summarize(times["log"]) if times["log"] else None
    return {
        "label": label,
        "n": fmt_count(elected["n"]),
        "median": fmt_seconds(elected["median"]),
        "median_ci": _range_text(elected["median_ci_low"], elected["median_ci_high"], fmt_seconds),
        "mean": fmt_seconds(elected["mean"]),
        "p95": fmt_seconds(elected["p95"]),
        "range": _range_text(elected["min"], elected["max"], fmt_seconds),
        "stdev": fmt_seconds(elected["stdev"]),
        "first_write": fmt_seconds(first_write["median"]) if first_write else MISSING,
        "log": fmt_seconds(log["median"]) if log else MISSING,
    }


def _window_phrase(median_s: float, timeout_ms: float) -> str:
    """Place a median relative to the [T, 2T) window of etcd's randomised election timeout."""
    window = f"{fmt_ms(timeout_ms)}–{fmt_ms(2 * timeout_ms)}"
    if median_s * 1000 < timeout_ms:
        return (f"below the {window} window of etcd's randomised election timeout, "
                "which no follower should beat after a crash; check the measurement")
    if median_s * 1000 < 2 * timeout_ms:
        return (f"inside the {window} window in which etcd's randomised election timeout "
                "fires, so the timeout itself accounts for most of it")
    return (f"above the {window} window of etcd's randomised election timeout, so more "
            "than one election round (a split vote) or slow detection added time")


def _graceful_sentence(crash: Mapping[str, Any], graceful: Mapping[str, Any]) -> str:
    """Compare the graceful series with the crash series, with the uncertainty."""
    overlap = _intervals_overlap(crash, graceful)
    if overlap is None:
        certainty = "too few trials for confidence intervals of the medians"
    elif overlap:
        certainty = "their 95 % confidence intervals overlap, so this run cannot tell them apart"
    else:
        certainty = "their 95 % confidence intervals do not overlap"
    if graceful["median"] < crash["median"]:
        factor = fmt_factor(crash["median"] / graceful["median"]) if graceful["median"] else "far"
        return (f"A graceful stop (SIGTERM) was faster: median {fmt_seconds(graceful['median'])}, "
                f"{factor} less than after a crash ({certainty}), as expected when the leader "
                "hands over leadership before it exits instead of leaving the followers to "
                "wait for their election timeout.")
    return (f"A graceful stop (SIGTERM) was not faster: median "
            f"{fmt_seconds(graceful['median'])} against {fmt_seconds(crash['median'])} after "
            f"a crash ({certainty}). That contradicts etcd 3.5's leadership transfer on "
            "SIGTERM; check which signal the graceful series sent and the etcd log.")


def _consistency(result: Result) -> tuple[bool | None, str]:
    """Whether every member held the same revision and KV hash after each series."""
    checks = result.samples.get("consistency", [])
    if not checks:
        return None, "The members' data was not compared after the series."
    diverged = [check for check in checks if not check["consistent"]]
    series = ", ".join(str(check["series"]) for check in checks)
    if not diverged:
        return True, (f"After each series ({series}) every member reported the same revision "
                      "and KV hash: the crashes did not make any member diverge.")
    details = "; ".join(
        f"after {check['series']}: "
        + ", ".join(f"{m['name']} rev {m['revision']} hash {m['hash']}" for m in check["members"])
        for check in diverged
    )
    return False, f"Members DIVERGED ({details})."


def _term_phrase(rows: Sequence[Mapping[str, Any]]) -> str:
    """How often the Raft term rose by exactly one across crash trials."""
    jumps = [row["term_after"] - row["term_before"] for row in rows
             if row.get("term_after") is not None and row.get("term_before") is not None]
    if not jumps:
        return "The Raft terms were not recorded."
    single = sum(1 for jump in jumps if jump == 1)
    text = f"The Raft term rose by exactly one in {fmt_count(single)} of {fmt_count(len(jumps))}"
    if single == len(jumps):
        return text + " crash trials: every new leader won its first election round."
    return (text + f" crash trials (largest jump {fmt_count(max(jumps))}); a larger jump means "
            "more than one election round, e.g. a split vote.")


def _detection_phrase(rows: Sequence[Mapping[str, Any]]) -> str:
    """Median lag between etcd logging the election and the client-side poll seeing it."""
    lags = [row["elected_s"] - row["log_elected_s"] for row in rows
            if row.get("elected_s") is not None and row.get("log_elected_s") is not None]
    if not lags:
        return "etcd's log gave no election timestamps to compare with the polling."
    lag = statistics.median(lags)
    when = "after" if lag >= 0 else "before"
    return (f"The polling client saw the new leader a median of {fmt_seconds(abs(lag))} {when} "
            f"etcd logged \"elected leader\" (n = {fmt_count(len(lags))}).")


def _course_report_election(crash: Mapping[str, Any] | None) -> str:
    """Confront the course report's single log-based figure with the crash series."""
    observed = fmt_seconds(COURSE_REPORT_ELECTION_S)
    text = (f"The course report, under \"Tempo medio para eleição do lider\" (mean election "
            f"time), shows one log excerpt: the connection to the old leader was lost at "
            f"23:35:43.146 and a new leader was elected at 23:35:44.921, {observed} later. "
            "It is one observation, measured from the lost connection rather than the crash, "
            "so it is not a mean. ")
    if crash is None:
        return text + "This run has no crash samples to compare it with."
    if crash["min"] <= COURSE_REPORT_ELECTION_S <= crash["max"]:
        return text + (f"It lies within the range we measured after crashes "
                       f"({fmt_seconds(crash['min'])} – {fmt_seconds(crash['max'])}), so the "
                       f"numbers confirm its order of magnitude; our median is "
                       f"{fmt_seconds(crash['median'])} over {fmt_count(crash['n'])} trials.")
    side = "above" if crash["max"] < COURSE_REPORT_ELECTION_S else "below"
    return text + (f"It lies {side} every crash trial we measured "
                   f"({fmt_seconds(crash['min'])} – {fmt_seconds(crash['max'])}; median "
                   f"{fmt_seconds(crash['median'])}), so our numbers do not confirm it as "
                   "typical for this configuration.")


def election_section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q1 section: answer, table, comparison with published figures, method."""
    params = result.params
    timeout_ms = result.metadata["election_timeout_ms"]
    heartbeat_ms = result.metadata["heartbeat_ms"]
    series = _election_series(result)
    crash = summarize(series["crash"]["elected"]) if series["crash"]["elected"] else None
    graceful = summarize(series["graceful"]["elected"]) if series["graceful"]["elected"] else None
    crash_first_write = (summarize(series["crash"]["first_write"])
                         if series["crash"]["first_write"] else None)

    answer = []
    if crash is None:
        answer.append("No crash trial produced a measurement.")
    else:
        first_write = ""
        if crash_first_write:
            first_write = (f"; clients could write again after "
                           f"{fmt_seconds(crash_first_write['median'])}")
        answer.append(
            f"After a SIGKILL of the leader the survivors agreed on a new leader after a median "
            f"of {fmt_seconds(crash['median'])} (n = {fmt_count(crash['n'])}, 95 % CI "
            f"{_range_text(crash['median_ci_low'], crash['median_ci_high'], fmt_seconds)}, "
            f"range {fmt_seconds(crash['min'])} – {fmt_seconds(crash['max'])}){first_write}. "
            f"That is {_window_phrase(crash['median'], timeout_ms)}."
        )
    if crash is not None and graceful is not None:
        answer.append(_graceful_sentence(crash, graceful))
    consistent, consistency_text = _consistency(result)
    answer.append(consistency_text)

    rows = [row for row in (_election_row("Crash (SIGKILL)", series["crash"]),
                            _election_row("Graceful stop (SIGTERM)", series["graceful"]))
            if row is not None]
    is_default = (timeout_ms, heartbeat_ms) == (ETCD_DEFAULT_ELECTION_TIMEOUT_MS,
                                                ETCD_DEFAULT_HEARTBEAT_MS)
    defaults_note = "" if is_default else (
        f"This run used heartbeat {fmt_ms(heartbeat_ms)} and election timeout "
        f"{fmt_ms(timeout_ms)}, not etcd's defaults "
        f"({fmt_ms(ETCD_DEFAULT_HEARTBEAT_MS)} / {fmt_ms(ETCD_DEFAULT_ELECTION_TIMEOUT_MS)}): "
        f"the expected window becomes {fmt_ms(timeout_ms)} – {fmt_ms(2 * timeout_ms)}."
    )
    return {
        "answer": answer,
        "rows": rows,
        "details": [_term_phrase(result.samples.get("crash", [])),
                    _detection_phrase(result.samples.get("crash", []))],
        "chart": chart_files.get("times"),
        "crash_median": fmt_seconds(crash["median"]) if crash else MISSING,
        "graceful_median": fmt_seconds(graceful["median"]) if graceful else MISSING,
        "heartbeat": fmt_ms(heartbeat_ms),
        "election_timeout": fmt_ms(timeout_ms),
        "defaults_note": defaults_note,
        "members_consistent": fmt_bool(consistent),
        "course_report": _course_report_election(crash),
        "trials": fmt_count(params["trials"]),
        "poll_interval": fmt_ms(params["poll_interval_ms"]),
        "n_crash": fmt_count(crash["n"]) if crash else "0",
        "n_graceful": fmt_count(graceful["n"]) if graceful else "0",
        "members": _metadata_text(result, "node_count", "nodes"),
        "etcd_version": _metadata_text(result, "etcd_version"),
    }


# --- Q2 conflicts -----------------------------------------------------------------------------


def _conflicts_figures(result: Result) -> dict[str, dict[str, Any]]:
    """Lost updates and throughput per method, derived from the raw samples."""
    figures = {}
    for method in ("naive", "cas"):
        sample = result.samples[method]
        acknowledged = sample["acknowledged"]
        elapsed = sample["elapsed_s"]
        figures[method] = {
            "acknowledged": acknowledged,
            "final_value": sample["final_value"],
            "lost": acknowledged - sample["final_value"],
            "lost_fraction": (acknowledged - sample["final_value"]) / acknowledged
            if acknowledged else None,
            "retries": sample.get("retries"),
            "elapsed_s": elapsed,
            "ops_per_s": acknowledged / elapsed if elapsed > 0 else None,
            "revisions": sample.get("revisions", []),
        }
    return figures


def conflicts_charts(result: Result, out_dir: Path) -> dict[str, str]:
    """Bar charts of lost updates and of throughput, naive get-then-put vs CAS."""
    figures = _conflicts_figures(result)
    labels = ["naive get-then-put", "CAS on mod_revision"]
    lost = [figures["naive"]["lost"], figures["cas"]["lost"]]
    rates = [figures["naive"]["ops_per_s"] or 0.0, figures["cas"]["ops_per_s"] or 0.0]
    return {
        "lost": charts.bar_chart(
            out_dir / "conflicts_lost_updates.png", labels, lost,
            "Lost increments of one shared counter", "lost increments",
            value_labels=[fmt_count(value) for value in lost],
        ),
        "throughput": charts.bar_chart(
            out_dir / "conflicts_throughput.png", labels, rates,
            "Acknowledged increments per second", "ops/s (one op = one increment)",
            value_labels=[fmt_rate(value) for value in rates],
        ),
    }


def conflicts_section(result: Result, chart_files: Mapping[str, str]) -> dict[str, Any]:
    """Prepare the Q2 section: answer, table, comparison with published figures, method."""
    workers, increments = result.params["workers"], result.params["increments"]
    figures = _conflicts_figures(result)
    naive, cas = figures["naive"], figures["cas"]
    increasing = result.summary.get("revisions_strictly_increasing")

    if naive["lost"] > 0:
        naive_sentence = (
            f"Naive get-then-put lost {fmt_count(naive['lost'])} of "
            f"{fmt_count(naive['acknowledged'])} acknowledged increments "
            f"({fmt_percent(naive['lost_fraction'])}): etcd applied every put, one after the "
            "other, and each put overwrote the value a concurrent worker had just written — "
            "the last write wins, and increments vanish without any error."
        )
    else:
        naive_sentence = (
            f"Naive get-then-put lost no increments in this run "
            f"({fmt_count(naive['acknowledged'])} acknowledged): no two read-modify-writes "
            "happened to overlap, so the race was present but not exposed (more workers make "
            "it likelier to show)."
        )
    if cas["lost"] == 0:
        cas_sentence = (
            f"A transaction that compares the key's mod_revision and retries on failure lost "
            f"none, at the cost of {fmt_count(cas['retries'])} retries "
            f"({_per_increment(cas['retries'], cas['acknowledged'])} per increment) and a "
            f"throughput of {fmt_rate(cas['ops_per_s'])} against "
            f"{fmt_rate(naive['ops_per_s'])} for the naive loop."
        )
    else:
        cas_sentence = (
            f"The compare-and-swap loop lost {fmt_count(cas['lost'])} increments, which a "
            "correct CAS cannot do: the experiment or the cluster needs a closer look."
        )
    if increasing is None:
        revision_sentence = "The experiment did not record whether revisions increase."
    elif increasing:
        revision_sentence = (f"Every acknowledged CAS write got its own revision, in strictly "
                             f"increasing order ({fmt_count(len(cas['revisions']))} revisions).")
    else:
        revision_sentence = ("The revisions of the acknowledged CAS writes were NOT strictly "
                             "increasing, which contradicts etcd's single ordered log.")

    if naive["lost"] > 0:
        course_report = (
            "The course report says that etcd orders every write through the Raft leader so "
            "that \"a última operação commitada prevaleça\" (the last committed operation "
            "prevails). The numbers confirm the ordering and show what it costs: with "
            f"last-writer-wins, a read-modify-write lost {fmt_count(naive['lost'])} of "
            f"{fmt_count(naive['acknowledged'])} increments. Raft orders writes; it does not "
            "merge them. Avoiding lost updates takes a transaction that compares mod_revision "
            "(or version), which the course report does not mention."
        )
    else:
        course_report = (
            "The course report says that etcd orders every write through the Raft leader so "
            "that \"a última operação commitada prevaleça\" (the last committed operation "
            "prevails). This run neither confirms nor refutes what that costs a "
            "read-modify-write: the naive loop lost nothing here. The report does not mention "
            "transactions on mod_revision, the tool that rules lost updates out."
        )

    rows = []
    for label, method in (("naive get-then-put", naive), ("CAS on mod_revision", cas)):
        rows.append({
            "label": label,
            "acknowledged": fmt_count(method["acknowledged"]),
            "final_value": fmt_count(method["final_value"]),
            "lost": fmt_count(method["lost"]),
            "lost_percent": fmt_percent(method["lost_fraction"]),
            "retries": fmt_count(method["retries"]),
            "throughput": fmt_rate(method["ops_per_s"]),
            "elapsed": fmt_seconds(method["elapsed_s"]),
        })
    return {
        "answer": [naive_sentence, cas_sentence, revision_sentence],
        "rows": rows,
        "lost_chart": chart_files.get("lost"),
        "throughput_chart": chart_files.get("throughput"),
        "naive_rate": fmt_rate(naive["ops_per_s"]),
        "cas_rate": fmt_rate(cas["ops_per_s"]),
        "revisions_increasing": fmt_bool(increasing),
        "course_report": course_report,
        "workers": fmt_count(workers),
        "increments": fmt_count(increments),
        "attempts": fmt_count(workers * increments),
    }


def _per_increment(retries: int | None, acknowledged: int) -> str:
    """Retries per acknowledged increment, as text."""
    if retries is None or not acknowledged:
        return MISSING
    return f"{retries / acknowledged:.2f}"


# --- registries and rendering -----------------------------------------------------------------

CHARTS: dict[str, ChartFunction] = {
    "election": election_charts,
    "conflicts": conflicts_charts,
}
SECTIONS: dict[str, SectionFunction] = {
    "election": election_section,
    "conflicts": conflicts_section,
}


def _build_section(question: Question, result: Result | None, out_dir: Path) -> Section:
    """Draw the charts and prepare the data of one question, or say why there are none."""
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
        return Section(
            **base, status="failed", status_text="failed", presented=False, error=result.error,
            notice=(f"The experiment failed; its partial samples are kept in "
                    f"`{question.experiment}.json`. The error was:"),
        )
    if question.experiment not in SECTIONS:
        return Section(
            **base, status="ok", status_text="measured", presented=False, error=None,
            notice=(f"Measured (`{question.experiment}.json`), but this report does not "
                    "present this experiment yet."),
        )
    try:
        chart_function = CHARTS.get(question.experiment)
        chart_files = chart_function(result, out_dir) if chart_function else {}
        data = SECTIONS[question.experiment](result, chart_files)
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


def _environment(template_dir: Path) -> Environment:
    """The jinja environment: strict about undefined names, units filters installed."""
    environment = Environment(
        loader=FileSystemLoader(str(template_dir)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    environment.filters.update(FILTERS)
    return environment


def render_report(results_dir: Path, template_dir: Path | None = None) -> Path:
    """Render ``results_dir/REPORT.md`` and its charts from the JSON results in results_dir.

    Only saved results are read. Charts are written beside the report; the report file
    is replaced atomically. Returns the report's path.
    """
    folder = Path(results_dir)
    results = load_results(folder)
    sections = [_build_section(q, results.get(q.experiment), folder) for q in QUESTIONS]
    known = {question.experiment for question in QUESTIONS}
    text = _environment(Path(template_dir or TEMPLATE_DIR)).get_template(REPORT_TEMPLATE).render(
        run_name=folder.name,
        results_count=fmt_count(len(results)),
        environment=_environment_rows(results),
        sections=sections,
        other_results=sorted(f"{name}.json" for name in results if name not in known),
    )
    target = folder / REPORT_NAME
    descriptor, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{REPORT_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target
