"""The shape every experiment shares, and the runner that owns its phases.

An experiment is parameters in, samples out (after jepsen-io/etcd), in phases: ``setup``
(optional), ``run`` — which injects faults and changes settings only through
``ctx.faults``, so that each is journalled before it is applied — and ``check`` (optional:
final reads and consistency checks on the healed lab). Each phase appends raw samples to
``ctx.samples`` as it goes. The runner heals between ``run`` and ``check`` whatever
happened: a normal end, an exception, Ctrl-C, SIGTERM or SIGHUP; experiments hold no healing
code of their own. ``summarize`` derives every summary number from the samples alone.

Nothing measured is lost: the samples so far are written to ``NAME.partial.json`` every few
seconds, the run itself is journalled (``invoke heal`` turns the partial file of a killed run
into an interrupted result), and the final result is written even when its metadata cannot
be gathered. Where each file goes: :func:`etcdlab.results.result_path`.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from etcdlab.errors import Interrupted, LabError
from etcdlab.etcd.history import HistoryRecorder, check_file
from etcdlab.faults import Faults
from etcdlab.faults.journal import Entry, HealStep
from etcdlab.lab.cluster import Cluster
from etcdlab.params import Param, unknown_name
from etcdlab.questions.spec import QuestionSpec
from etcdlab.results import (
    Result,
    finish_partial,
    history_file,
    json_safe,
    move_histories,
    partial_path,
    result_path,
    utc_now_iso,
    write_result,
)
from etcdlab.signals import heal_guard

RunFn = Callable[["Context"], None]
SummarizeFn = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Experiment:
    """One question's measurement: declared parameters, the ``--quick`` set, run, summarize.

    Its number, name and title are its folder's ``SPEC`` (:mod:`etcdlab.questions.spec`).
    """

    spec: QuestionSpec
    parameters: tuple[Param, ...]
    quick: Mapping[str, Any]
    run: RunFn
    summarize: SummarizeFn
    needs_containers: str = ""
    """Why the experiment only works on the container lab (empty: it works on hosts too)."""
    setup: RunFn | None = None
    """Before ``run``: preparation that injects no fault."""
    check: RunFn | None = None
    """After the heal: final reads and consistency checks on the whole lab again."""

    def __post_init__(self) -> None:
        # A quick set that names an undeclared parameter or leaves its range is a bug in
        # the module, caught when the registry imports it rather than halfway through a run.
        for key, value in self.quick.items():
            self.declared(key).check(value)

    @property
    def name(self) -> str:
        """The experiment's name: ``invoke experiment NAME``, its result ``NAME.json``."""
        return self.spec.experiment

    @property
    def question(self) -> int:
        """The number of the question it answers."""
        return self.spec.number

    @property
    def title(self) -> str:
        """The question's title, as the report heads its section."""
        return self.spec.title

    @property
    def defaults(self) -> dict[str, Any]:
        """Every parameter's default, in declaration order."""
        return {p.name: p.default for p in self.parameters}

    def declared(self, key: str) -> Param:
        """The declaration of one parameter, or a LabError listing the valid names."""
        for param in self.parameters:
            if param.name == key:
                return param
        raise unknown_name(f"{self.name} has no parameter", key, self.defaults)

    def params(self, quick: bool = False, **overrides: Any) -> dict[str, Any]:
        """Defaults, then the quick set, then explicit overrides (``None`` = not given)."""
        return self.params_with(quick, overrides)

    def params_with(self, quick: bool, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`params` with the overrides as a mapping, whatever their names.

        Overrides may be strings (``--param KEY=VALUE``); each is read by its declared
        type and checked against its range before anything runs.
        """
        params = self.defaults
        if quick:
            params.update(self.quick)
        for key, value in overrides.items():
            if value is not None:
                params[key] = self.declared(key).parse(value, source="--param")
        return params


@dataclass
class Context:
    """What a running experiment gets: the cluster, faults, params and a sample sink."""

    cluster: Cluster
    faults: Faults
    params: dict[str, Any]
    samples: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    console: Console = field(default_factory=Console)
    history_dir: Path | None = None
    """Where recorded histories go (the results folder); None: nothing is recorded."""
    name: str = ""
    histories: dict[str, HistoryRecorder] = field(default_factory=dict)

    def history(self, label: str = "") -> HistoryRecorder | None:
        """The recorder of one client history of this run, created on first use; None
        when the run records none. It writes ``NAME.partial[.label].history.jsonl`` until
        the result is written (the naming rule of :mod:`etcdlab.results`). Give it to a
        member with ``member.record_into(recorder, process)``."""
        if self.history_dir is None:
            return None
        if label not in self.histories:
            stem = partial_path(self.history_dir, self.name).name.removesuffix(".json")
            path = history_file(self.history_dir, stem, label)
            path.unlink(missing_ok=True)  # a new run's history, not appended to an old one
            self.histories[label] = HistoryRecorder(path)
        return self.histories[label]

    def log(self, message: str) -> None:
        """A progress line above the bars."""
        self.console.log(message) if self.progress is None else self.progress.console.log(
            message
        )

    @contextmanager
    def phase(self, description: str, total: int) -> Iterator[Callable[[], None]]:
        """A progress bar with an ETA for one phase; yields ``advance()``."""
        if self.progress is None:
            yield lambda: None
            return
        task_id = self.progress.add_task(description, total=total)
        try:
            yield lambda: self.progress.advance(task_id)
        finally:
            self.progress.update(task_id, completed=total, visible=False)
            self.progress.remove_task(task_id)


def metadata(cluster: Cluster, started_utc: str, image: str | None = None) -> dict[str, Any]:
    """Where and on what a result was measured (stored once, at the top of the result)."""
    config = cluster.config
    versions = sorted({n.etcd_version for n in cluster.status() if n.etcd_version})
    return {
        "started_utc": started_utc,
        "finished_utc": utc_now_iso(),
        "etcd_version": ", ".join(versions) or "unknown",
        "node_count": len(cluster.names),
        "transport": cluster.lab.kind,
        "tls": cluster.tls,
        "heartbeat_ms": config.etcd_heartbeat_interval_ms,
        "election_timeout_ms": config.etcd_election_timeout_ms,
        "pre_vote": config.etcd_pre_vote,
        "quota_backend_bytes": config.etcd_quota_backend_bytes,
        "image": image or cluster.lab.describe(),
        "kernel": platform.release(),
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
        "python": platform.python_version(),
        "chrony_minpoll": config.chrony_minpoll,
        "chrony_maxpoll": config.chrony_maxpoll,
    }


FLUSH_INTERVAL_S = 3.0


class SampleFlusher:
    """Rewrites ``NAME.partial.json`` with the samples so far, every few seconds."""

    def __init__(self, path: Path, experiment: str, params: Mapping[str, Any],
                 samples: dict[str, Any], started_utc: str) -> None:
        self.path, self.experiment, self.params = path, experiment, params
        self.samples, self.started_utc = samples, started_utc
        self._stop = threading.Event()
        self._last = ""
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sample-flusher")

    def start(self) -> SampleFlusher:
        """Write once now, then every FLUSH_INTERVAL_S in the background."""
        self.flush()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background writes (the runner writes the final result itself)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()

    def flush(self) -> None:
        """Write the samples if they changed; a sample list growing meanwhile is retried."""
        try:
            text = json.dumps(json_safe(self.samples), sort_keys=True)
        except (RuntimeError, TypeError, ValueError):
            return  # mutated while we read it, or not JSON yet: next time
        if text == self._last:
            return
        result = Result(
            experiment=self.experiment, status="running", error=None,
            metadata={"started_utc": self.started_utc, "finished_utc": utc_now_iso(),
                      "pid": os.getpid()},
            params=json_safe(self.params), summary={}, samples=json.loads(text))
        write_result(self.path, result)
        self._last = text


def run_experiment(
    experiment: Experiment,
    cluster: Cluster,
    results_dir: Path,
    params: dict[str, Any],
    console: Console | None = None,
) -> Result:
    """Run one experiment against a healthy lab and write its result (see the module doc).

    The lab is healed between ``run`` and ``check`` on every exit. A failed run still
    writes its partial samples, with ``status: failed`` and the error, then raises
    LabError; an interrupted one writes ``status: interrupted`` and re-raises the interrupt
    once the lab is healed, so that no further experiment starts.
    """
    console = console or Console()
    if experiment.needs_containers and cluster.lab.kind != "docker":
        raise LabError(
            f"{experiment.name} needs the container lab: {experiment.needs_containers}. "
            "It cannot run on an inventory of hosts."
        )
    cluster.wait_healthy(timeout=60)
    faults = Faults(cluster)
    started_utc = utc_now_iso()
    started = time.monotonic()
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
        transient=True,
    )
    ctx = Context(cluster, faults, params, progress=progress, console=console,
                  history_dir=results_dir, name=experiment.name)
    partial = partial_path(results_dir, experiment.name)
    flusher = SampleFlusher(partial, experiment.name, params, ctx.samples, started_utc).start()
    run_entry = faults.journal.begin("run", f"{experiment.name}: run in progress",
                                     experiment=experiment.name, partial=str(partial))
    error: str | None = None
    interrupt: KeyboardInterrupt | None = None
    heal_steps: list[HealStep] = []
    summary: dict[str, Any] = {}
    try:
        try:
            with progress, cluster.tls_environment():
                for phase in (experiment.setup, experiment.run):
                    if phase is not None:
                        phase(ctx)
        except KeyboardInterrupt as exc:
            interrupt, error = exc, f"interrupted ({_signal_name(exc)})"
        except Exception as exc:  # noqa: BLE001 - any failure is recorded in the result
            error = f"{type(exc).__name__}: {exc}"
            console.print(traceback.format_exc(limit=4), style="dim", markup=False)
        heal_steps = _heal(faults, console, run_entry)
        _finish_histories(ctx, faults, check=interrupt is None)
        broken = [step for step in heal_steps if not step.ok]
        if broken and error is None:
            error = "heal failed: " + "; ".join(f"{s.what}: {s.detail}" for s in broken)
        if error is None and experiment.check is not None:
            error = _checked(experiment.check, ctx, console)
        if error is None:
            try:
                summary = experiment.summarize(ctx.samples, params)
            except Exception as exc:  # noqa: BLE001
                error = f"summary failed: {type(exc).__name__}: {exc}"
    except KeyboardInterrupt as exc:  # a second interrupt, during the heal
        interrupt = exc
        error = error or f"interrupted ({_signal_name(exc)})"
        error += "; the heal was interrupted too: run `invoke heal`"
    finally:
        _finish_histories(ctx, faults, check=False)  # closed, whatever happened
        flusher.stop()
        status = "ok" if error is None else ("interrupted" if interrupt else "failed")
        target = result_path(results_dir, experiment.name, status)
        _name_histories(ctx, partial, target)
        result = _final_result(experiment, status, error, cluster, started_utc, started,
                               params, summary, ctx.samples, heal_steps)
        path = write_result(target, result)
        partial.unlink(missing_ok=True)
        faults.journal.done(run_entry, status)
        faults.journal.compact()  # nothing left open: the journal starts empty next time
    if interrupt is not None:
        console.print(f"[yellow]{experiment.name} interrupted; samples so far in {path}[/]",
                      soft_wrap=True)
        raise interrupt
    if error is not None:
        raise LabError(f"{experiment.name} failed: {error} (partial samples in {path})")
    return result


def _finish_histories(ctx: Context, faults: Faults, check: bool) -> None:
    """Close each recorded history with the fault windows that overlap it and, when
    ``check``, store its linearizability verdict in ``samples["histories"]``.

    Called after the heal and again on the way out: the journal is read only while a
    history is still open."""
    if not ctx.histories:
        return
    still_open = [recorder for recorder in ctx.histories.values() if not recorder.closed]
    if still_open:
        windows = [w for w in faults.journal.windows() if w["kind"] != "run"]  # faults only
        for recorder in still_open:
            recorder.close(windows)
    verdicts = ctx.samples.setdefault("histories", {})
    if not check:
        return
    for label, recorder in ctx.histories.items():
        key = label or "main"
        if key not in verdicts:
            ctx.log(f"checking {recorder.path.name} ({recorder.operations} operations)")
            verdicts[key] = check_file(recorder.path)


def _name_histories(ctx: Context, partial: Path, target: Path) -> None:
    """The run's history files take the stem of its result file (the rule in
    :mod:`etcdlab.results`), and the stored verdicts name them so."""
    if not ctx.histories:
        return
    moved = move_histories(partial.parent, partial.name.removesuffix(".json"),
                           target.name.removesuffix(".json"))
    for verdict in (ctx.samples.get("histories") or {}).values():
        if verdict.get("file") in moved:
            verdict["file"] = moved[verdict["file"]]


def _signal_name(exc: KeyboardInterrupt) -> str:
    return exc.signal_name if isinstance(exc, Interrupted) else "Ctrl-C"


def _heal(faults: Faults, console: Console, run_entry: Entry) -> list[HealStep]:
    """Heal with the guard on: one interrupt is announced, a second one stops the heal.

    This run's own record stays open: the runner closes it once the result is written.
    """
    def say(message: str) -> None:
        console.print(f"[yellow]{message}[/]")

    with heal_guard(say):
        steps = faults.heal(extra={"run": finish_run}, keep=(run_entry.id,))
    show_heal(console, steps)
    return steps


def show_heal(console: Console, steps: list[HealStep]) -> None:
    """One line per heal step that did something or failed; the steps that found nothing
    left to undo in one line (each of them with ``--verbose``)."""
    idle = [step for step in steps if step.idle]
    for step in steps:
        if not step.idle or console.log_path:
            style = "dim" if step.ok else "bold red"
            console.print(f"[{style}]heal: {step.what}: {step.detail or 'ok'}[/]")
    if idle and not console.log_path:
        console.print(f"[dim]heal: {len(idle)} journalled process(es) had already ended[/]")


def finish_run(entry: Entry) -> str:
    """``invoke heal``: the partial samples of a run that was killed become its result."""
    partial = Path(entry.data["partial"])
    if not partial.is_file():
        return "no partial samples were left"
    path = finish_partial(partial, f"interrupted: pid {entry.pid} was killed before it "
                                   "finished (result written by `invoke heal`)")
    return f"partial samples kept in {path}"


def _checked(check: RunFn, ctx: Context, console: Console) -> str | None:
    try:
        with ctx.cluster.tls_environment():
            check(ctx)
    except Exception as exc:  # noqa: BLE001
        console.print(traceback.format_exc(limit=4), style="dim", markup=False)
        return f"check failed: {type(exc).__name__}: {exc}"
    return None


def _final_result(experiment: Experiment, status: str, error: str | None, cluster: Cluster,
                  started_utc: str, started: float, params: Mapping[str, Any],
                  summary: Mapping[str, Any], samples: Mapping[str, Any],
                  heal_steps: list[HealStep]) -> Result:
    """The result record; metadata that cannot be gathered does not cost the samples."""
    try:
        meta = metadata(cluster, started_utc)
    except Exception as exc:  # noqa: BLE001 - e.g. Docker restarting: keep the samples
        meta = {"started_utc": started_utc, "finished_utc": utc_now_iso(),
                "metadata_error": f"{type(exc).__name__}: {exc}"}
    meta["elapsed_s"] = round(time.monotonic() - started, 3)
    # The report says a quick run is quick: every value of the --quick set was in effect.
    meta["quick"] = bool(experiment.quick) and all(
        params.get(key) == value for key, value in experiment.quick.items())
    meta["heal"] = [{"what": s.what, "ok": s.ok, "detail": s.detail} for s in heal_steps]
    return Result(experiment=experiment.name, status=status, error=error,
                  metadata=json_safe(meta),
                  params=json_safe(params), summary=json_safe(summary),
                  samples=json_safe(samples))
