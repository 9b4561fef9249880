"""The shape every experiment shares, and the runner that turns one into a Result.

An experiment is parameters in, samples out (after jepsen-io/etcd): its ``run`` sets up,
injects faults through ``ctx.faults`` (never its own), measures, and appends raw samples
to ``ctx.samples`` as it goes, so that a failed run still saves what it measured. Its
``summarize`` derives every summary number from the samples alone. The runner heals all
faults in a ``finally`` (also on Ctrl-C) and writes the result atomically.
"""

from __future__ import annotations

import os
import platform
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

from etcdlab.cluster import Cluster
from etcdlab.errors import LabError
from etcdlab.faults import Faults
from etcdlab.params import Param, unknown_name
from etcdlab.results import Result, utc_now_iso, write_result

RunFn = Callable[["Context"], None]
SummarizeFn = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Experiment:
    """One question's measurement: declared parameters, the ``--quick`` set, run, summarize."""

    name: str
    question: int
    title: str
    parameters: tuple[Param, ...]
    quick: Mapping[str, Any]
    run: RunFn
    summarize: SummarizeFn
    needs_containers: str = ""
    """Why the experiment only works on the container lab (empty: it works on hosts too)."""

    def __post_init__(self) -> None:
        # A quick set that names an undeclared parameter or leaves its range is a bug in
        # the module, caught when the registry imports it rather than halfway through a run.
        for key, value in self.quick.items():
            self.declared(key).check(value)

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
        "quota_backend_bytes": config.etcd_quota_backend_bytes,
        "image": image or cluster.lab.describe(),
        "kernel": platform.release(),
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
        "python": platform.python_version(),
        "chrony_minpoll": config.chrony_minpoll,
        "chrony_maxpoll": config.chrony_maxpoll,
    }


def run_experiment(
    experiment: Experiment,
    cluster: Cluster,
    results_dir: Path,
    params: dict[str, Any],
    console: Console | None = None,
) -> Result:
    """Run one experiment against a healthy lab and write ``results_dir/NAME.json``.

    Faults are healed whatever happens. A failed run still writes its partial samples,
    with ``status: failed`` and the error, then raises LabError.
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
    ctx = Context(cluster, faults, params, progress=progress, console=console)
    error: str | None = None
    try:
        with progress, cluster.tls_environment(), faults.session():
            experiment.run(ctx)
    except KeyboardInterrupt:
        error = "interrupted (Ctrl-C)"
    except Exception as exc:  # noqa: BLE001 - any failure is recorded in the result
        error = f"{type(exc).__name__}: {exc}"
        console.print(traceback.format_exc(limit=4), style="dim", markup=False)
    summary: dict[str, Any] = {}
    if error is None:
        try:
            summary = experiment.summarize(ctx.samples, params)
        except Exception as exc:  # noqa: BLE001
            error = f"summary failed: {type(exc).__name__}: {exc}"
    meta = metadata(cluster, started_utc)
    meta["elapsed_s"] = round(time.monotonic() - started, 3)
    result = Result(
        experiment=experiment.name,
        status="ok" if error is None else "failed",
        error=error,
        metadata=meta,
        params=params,
        summary=summary,
        samples=ctx.samples,
    )
    path = write_result(results_dir / f"{experiment.name}.json", result)
    if error is not None:
        raise LabError(f"{experiment.name} failed: {error} (partial samples in {path})")
    return result
