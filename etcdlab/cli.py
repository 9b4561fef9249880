"""What the invoke tasks print: progress lines, recaps and the status table."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from etcdlab import questions as experiments
from etcdlab.errors import LabError
from etcdlab.faults import Faults
from etcdlab.faults.journal import JOURNAL_FILE, HealStep, Journal
from etcdlab.lab import bench as benchmark
from etcdlab.lab import offline, preflight
from etcdlab.lab import provision as provisioning
from etcdlab.lab.cluster import Cluster, NodeStatus
from etcdlab.lab.config import ENV_PREFIX, MAX_NODES, LabConfig, QuorumWarning
from etcdlab.lab.docker_cluster import DockerLab, connect
from etcdlab.lab.node_image import REPOSITORY as NODE_IMAGE_REPOSITORY
from etcdlab.lab.state import LabLock
from etcdlab.params import Param
from etcdlab.questions.runner import finish_run, run_experiment
from etcdlab.report import HTML_NAME, METHOD_NAME, render_report
from etcdlab.signals import install_interrupt_handlers

# Piped output (CI logs, tests) gets wide lines instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
# log_path: the source file and line of each progress line, only with --verbose.
console = Console(highlight=False, width=_WIDTH, log_path=False)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)
F = TypeVar("F", bound=Callable[..., Any])
_OUTCOME_STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red",
                  "unreachable": "bold red", "skipped": "dim", "interrupted": "yellow"}


def user_errors(func: F) -> F:
    """Turn a LabError into one red line on stderr and exit status 1.

    SIGTERM and SIGHUP are handled like Ctrl-C (exit 130 after the runner healed).
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        install_interrupt_handlers()
        try:
            return func(*args, **kwargs)
        except LabError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            sys.exit(1)
        except KeyboardInterrupt as exc:
            err_console.print(f"[bold red]interrupted[/] ({exc or 'SIGINT'})")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def lab_lock(config: LabConfig) -> LabLock:
    """The lab's lock, held by every task that changes the lab (one run at a time)."""
    return LabLock(provisioning.state_dir(config))


def take_lab_env(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove the ``INVOKE_LAB_*`` variables from ``environ`` and return them.

    invoke would cast them by the YAML type of the default (``"false"`` becomes true,
    ``"abc"`` for a number is a traceback inside invoke) and silently drop misspelt ones;
    etcdlab reads them against its own schema instead (:meth:`LabConfig.from_mapping`).
    """
    names = [name for name in environ if name.startswith(ENV_PREFIX)]
    return {name: environ.pop(name) for name in names}


@user_errors
def load_config(settings: Mapping[str, Any], env: Mapping[str, str] | None = None,
                above_env: Mapping[str, Any] | None = None, **overrides: Any) -> LabConfig:
    """LabConfig from invoke's ``lab`` section, INVOKE_LAB_* and flags; warnings printed once.

    ``above_env`` is the ``lab`` section of a ``-f`` file, which outranks the environment.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuorumWarning)
        config = LabConfig.from_mapping(settings, overrides, env, above_env)
    for warning in caught:
        err_console.print(f"[yellow]warning:[/] {warning.message}")
    return config


def say(message: str) -> None:
    """One progress line."""
    console.print(f"[cyan]•[/] {message}")


def show_task(task: str, results: dict[str, str]) -> None:
    """One line per finished Ansible task: the task, then each host's outcome."""
    hosts = "  ".join(
        f"{host} [{_OUTCOME_STYLE.get(outcome, '')}]{outcome}[/]"
        for host, outcome in results.items()
    )
    console.print(f"  {task}  {hosts}", soft_wrap=True)


@user_errors
def provision(config: LabConfig, keep_on_failure: bool = False) -> None:
    """``invoke provision``: create/repair the lab and print recap, status and time."""
    preflight.require(config, provisioning=True)
    with lab_lock(config):
        _provision(config, keep_on_failure)


@user_errors
def lab(config: LabConfig, quick: bool, results_dir: Path | None) -> None:
    """``invoke lab``: provision, then run every experiment and render the report."""
    results_dir = writable_results_dir(results_dir or default_results_dir())
    preflight.require(config, results_dir, provisioning=True)
    with lab_lock(config):
        started = time.monotonic()
        config = _provision(config, keep_on_failure=False)
        _report(config, quick, None, results_dir, provision_s=time.monotonic() - started)


TARGETS_S = {"configure": {"cold": 30.0, "rerun": 8.0}, "all": {"cold": 90.0, "rerun": 25.0}}
"""Provisioning time targets (s): nodes of the node image (configure phase), or not."""


def _provision(config: LabConfig, keep_on_failure: bool) -> LabConfig:
    _heal_left_faults(config)
    done = provisioning.provision(config, say, show_task, keep_on_failure)
    console.print("\n[bold]PLAY RECAP[/]")
    for line in done.run.recap_lines():
        console.print(f"  {line}")
    slowest = done.run.slowest()
    if slowest:
        console.print("  slowest tasks: " + ", ".join(f"{task} {seconds:.1f} s"
                                                     for task, seconds in slowest))
    cluster = Cluster(done.config)
    cluster.wait_healthy(timeout=60)
    if not done.config.hosts_mode:
        Faults(cluster).forget_clock_backups()
    print_status(cluster.status())
    cold = len(done.created) == done.config.nodes and not done.config.hosts_mode
    timings = provisioning.record_timing(done.config, "cold" if cold else "rerun", done.elapsed_s)
    what = "no changes" if done.run.changed == 0 else f"{done.run.changed} change(s)"
    phase = "configure phase" if done.phase == "configure" else "install and configure phases"
    console.print(
        f"[bold green]provisioned[/] {len(cluster.names)} node(s) in {done.elapsed_s:.1f} s "
        f"({'cold: containers created' if cold else 're-run'}; ansible {done.run.elapsed_s:.1f} s,"
        f" {phase}, {what}; image {done.image}, etcd {done.config.etcd_version})"
    )
    console.print("  " + "  ·  ".join(
        f"{label} {_timing(timings.get(kind))} (target ≤ {target:.0f} s)"
        for kind, label, target in (("cold", "last cold provision", TARGETS_S[done.phase]["cold"]),
                                    ("rerun", "last re-run", TARGETS_S[done.phase]["rerun"]))
    ))
    return done.config


def _heal_left_faults(config: LabConfig) -> None:
    """A killed run's faults are undone before the roles are applied again."""
    from etcdlab.faults.journal import JOURNAL_FILE, Journal

    journal = Journal(provisioning.state_dir(config) / JOURNAL_FILE)
    if not journal.open_entries():
        return
    if not config.hosts_mode and not DockerLab(config).containers():
        say("the journal lists faults of a lab whose containers are gone: discarded")
        journal.path.unlink(missing_ok=True)
        return
    say("the journal lists faults a killed run left: healing them first")
    _print_heal(_heal(_running_cluster(config)))


def _timing(seconds: float | None) -> str:
    return "not yet measured" if seconds is None else f"{seconds:.1f} s"


@user_errors
def status(config: LabConfig, as_json: bool = False, wide: bool = False) -> None:
    """``invoke status``: one row (or JSON object) per node.

    The table fits the terminal unless ``wide`` (:func:`print_status`); ``as_json`` wins
    over ``wide``.
    """
    cluster = _running_cluster(config)
    nodes = cluster.status()
    if as_json:
        print(json.dumps([n.as_dict() for n in nodes], indent=2))
    else:
        print_status(nodes, wide=wide)
        if not cluster.config.hosts_mode:
            console.print(f"  image: {_images_line(DockerLab(cluster.config).node_images())}")
    if not all(n.healthy for n in nodes):
        sys.exit(2)


def _images_line(images: dict[str, str]) -> str:
    """The image the nodes run, or each node's when they differ; which is a node image."""
    def named(image: str) -> str:
        return f"{image} (node image)" if image.startswith(NODE_IMAGE_REPOSITORY + ":") else image

    distinct = sorted(set(images.values()))
    if len(distinct) <= 1:
        return named(distinct[0]) if distinct else "-"
    return ", ".join(f"{name} {named(image)}" for name, image in images.items())


STATUS_COLUMNS = ("node", "ip", "etcd", "member id", "role", "term", "index", "db size",
                  "health", "chrony source", "offset", "stratum")
# Narrower column sets for the default table, tried in order until one fits the terminal:
# the least telling columns go first (member id, stratum), then term and index, chrony's
# source and offset share a column, then index, the wide ip (the node's name says which it
# is), etcd, db size, term and chrony go;
# node, role and health always stay.
_NARROWER_COLUMNS = (
    ("node", "ip", "etcd", "role", "term/index", "db size", "health", "chrony source", "offset"),
    ("node", "ip", "etcd", "role", "term/index", "db size", "health", "chrony"),
    ("node", "ip", "etcd", "role", "term", "db size", "health", "chrony"),
    ("node", "etcd", "role", "term", "db size", "health", "chrony"),
    ("node", "role", "term", "health", "chrony"),
    ("node", "role", "health", "chrony"),
    ("node", "role", "health"),
)
# Which of STATUS_COLUMNS a merged or shortened column stands for.
_COLUMN_COVERS = {"term/index": ("term", "index"), "chrony": ("chrony source", "offset"),
                  "short health": ("health",)}
HEALTH_ERROR_CHARS = 20  # an error longer than this is cut in the default table
_MEASURE_WIDTH = 10_000  # wide enough for any table's natural width


def print_status(nodes: list[NodeStatus], wide: bool = False, out: Console | None = None) -> None:
    """The status table, printed on ``out`` (default: the tasks' console).

    By default it has the most columns that fit the console's width without wrapping;
    under it, one dim line names what was left out. ``wide``: every column and the full
    error text, in lines as long as they need (the terminal wraps them, nothing is cut).
    """
    out = out or console
    columns = STATUS_COLUMNS if wide else _fitting_columns(nodes, out)
    table = _status_table(nodes, columns)
    if wide:
        table.width = _natural_width(out, table)
    out.print(table, crop=False)
    shown = {name for column in columns for name in _COLUMN_COVERS.get(column, (column,))}
    left_out = [column for column in STATUS_COLUMNS if column not in shown]
    shortened = "short health" in columns and any(
        _short_error(n.error) != n.error for n in nodes if not n.healthy)
    if left_out or shortened:
        what = ([f"left out {', '.join(left_out)}"] if left_out else []) + (
            ["shortened errors"] if shortened else [])
        out.print(f"[dim]to fit {out.width} columns: {'; '.join(what)} "
                  "(`invoke status --wide` shows all)[/]")


def _fitting_columns(nodes: list[NodeStatus], out: Console) -> tuple[str, ...]:
    """The fullest column set whose table fits ``out``, full error texts before short ones."""
    for columns in (STATUS_COLUMNS, *_NARROWER_COLUMNS):
        for variant in (columns, tuple("short health" if c == "health" else c for c in columns)):
            if _natural_width(out, _status_table(nodes, variant)) <= out.width:
                return variant
    return variant  # nothing fits: the narrowest, which rich squeezes into the console


def _natural_width(out: Console, table: Table) -> int:
    return Measurement.get(out, out.options.update_width(_MEASURE_WIDTH), table).maximum


def _status_table(nodes: list[NodeStatus], columns: tuple[str, ...]) -> Table:
    table = Table(title="etcdlab status", title_justify="left")
    for column in columns:
        table.add_column("health" if column == "short health" else column)
    for node in nodes:
        table.add_row(*(_STATUS_CELLS[column](node) for column in columns))
    return table


def _role(node: NodeStatus) -> str:
    return "[bold]leader[/]" if node.is_leader else ("follower" if node.member_id else "-")


def _db_size(node: NodeStatus) -> str:
    return f"{node.db_size / 1024:.0f} KiB" if node.db_size is not None else "-"


def _term_index(node: NodeStatus) -> str:
    return "-" if node.raft_term is None else f"{node.raft_term}/{_maybe(node.raft_index)}"


def _health(node: NodeStatus, short: bool = False) -> str:
    if node.healthy:
        return "[green]healthy[/]"
    error = _short_error(node.error) if short else node.error
    return f"[red]unhealthy[/] {escape(error)}".strip()


def _short_error(error: str) -> str:
    """``error`` cut after a word to at most HEALTH_ERROR_CHARS characters, … marking a cut."""
    if len(error) <= HEALTH_ERROR_CHARS:
        return error
    kept = ""
    for word in error.split():
        if len(kept) + len(word) + 1 > HEALTH_ERROR_CHARS - 1:
            break
        kept = f"{kept} {word}".lstrip()
    kept = kept or error[:HEALTH_ERROR_CHARS - 1]  # one long word: cut inside it
    return kept.rstrip(" :;,") + "…"


def _offset(node: NodeStatus) -> str:
    return f"{node.chrony_offset_ms:+.3f} ms" if node.chrony_offset_ms is not None else "-"


def _chrony_source(node: NodeStatus) -> str:
    if node.chrony_role == "server":
        return "serves (local)"
    if node.chrony_synced:
        return node.chrony_source
    return "[red]not synced[/]" if node.chrony_role else "-"


def _chrony(node: NodeStatus) -> str:
    """Source and offset in one column (a server's offset is always 0)."""
    if node.chrony_role != "client" or node.chrony_offset_ms is None:
        return _chrony_source(node)
    return f"{_chrony_source(node)} {_offset(node)}"


_STATUS_CELLS: dict[str, Callable[[NodeStatus], str]] = {
    "node": lambda n: n.name,
    "ip": lambda n: n.ip,
    "etcd": lambda n: n.etcd_version or "-",
    "member id": lambda n: n.member_id or "-",
    "role": _role,
    "term": lambda n: _maybe(n.raft_term),
    "index": lambda n: _maybe(n.raft_index),
    "term/index": _term_index,
    "db size": _db_size,
    "health": _health,
    "short health": lambda n: _health(n, short=True),
    "chrony source": _chrony_source,
    "offset": _offset,
    "stratum": lambda n: _maybe(n.chrony_stratum),
    "chrony": _chrony,
}


def _maybe(value: Any) -> str:
    return "-" if value is None else str(value)


@user_errors
def destroy(config: LabConfig, purge: bool = False) -> None:
    """``invoke destroy``: remove the lab's containers and network (idempotent).

    On an inventory of hosts nothing is removed unless ``purge``: then etcd and chrony
    are stopped and removed with their data (``playbooks/purge.yml``).
    """
    if config.hosts_mode:
        if not purge:
            console.print(
                f"{config.inventory} lists existing hosts: nothing removed. "
                "`invoke destroy --purge` stops etcd and chrony and removes them and their data."
            )
            return
        with lab_lock(config):
            run = provisioning.run_playbook(config, "purge.yml", show_task)
        shutil.rmtree(provisioning.state_dir(config), ignore_errors=True)
        console.print(f"[bold green]purged[/] etcd and chrony from {len(run.recap)} host(s)")
        return
    with lab_lock(config):
        removed = provisioning.remove_container_lab(config, say)
    console.print(
        f"[bold green]destroyed[/] {removed} container(s) of {config.network}"
        if removed else f"nothing to destroy on {config.network}"
    )


@user_errors
def prepare_offline(config: LabConfig) -> None:
    """``invoke offline``: build the local base image and the etcd archive."""
    started = time.monotonic()
    client = connect()
    image = offline.ensure_base_image(config, client, say)
    archive = offline.ensure_etcd_archive(config, say)
    console.print(
        f"[bold green]offline assets ready[/] in {time.monotonic() - started:.1f} s: image "
        f"{image}, etcd archive {archive}\n  use them with "
        "`invoke -f profiles/offline.yaml provision`"
    )


@user_errors
def prepare_node_image(config: LabConfig, rebuild: bool = False) -> None:
    """``invoke image``: build the node image for the current install inputs (if missing)."""
    if config.hosts_mode:
        raise LabError("the node image is for container labs: hosts of an inventory run "
                       "the install phase themselves")
    started = time.monotonic()
    with lab_lock(config):
        lab = DockerLab(config)
        config, base_image = provisioning.resolve_assets(config, lab, say)
        tag, digest, built = provisioning.ensure_node_image(config, lab, base_image, say,
                                                            show_task, rebuild=rebuild)
    console.print(
        f"[bold green]node image {'built' if built else 'ready'}[/]: {tag} "
        f"({time.monotonic() - started:.1f} s; install inputs sha256 {digest[:16]}…, "
        f"from {base_image}, etcd {config.etcd_version})"
    )
    if not config.node_image:
        console.print("  lab.node_image is false: provision does not use it")


def default_results_dir() -> Path:
    """``results/<UTC timestamp>`` under the project folder."""
    return provisioning.ROOT / "results" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def writable_results_dir(folder: Path) -> Path:
    """``folder`` if results can be written there, checked before any work starts."""
    try:
        return preflight.writable_folder(folder)
    except LabError as exc:
        raise LabError(f"results folder {exc}") from None


def parse_params(pairs: list[str], trials: str | None = None) -> dict[str, str]:
    """``["trials=3", "seed=2"]`` → ``{"trials": "3", "seed": "2"}``, ``--trials`` merged in.

    ``--trials N`` is short for ``--param trials=N``; giving both with different values,
    or one key twice with different values, is refused rather than silently resolved.
    """
    params: dict[str, str] = {}
    given = [f"trials={trials}"] if trials is not None else []
    for pair in [*pairs, *given]:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise LabError(f"--param takes KEY=VALUE, got {pair!r}")
        if key in params and params[key] != value:
            raise LabError(
                f"{key} is given twice, as {params[key]!r} and {value!r} "
                "(--trials N is the same as --param trials=N): give it once"
            )
        params[key] = value
    return params


def doctor(config: LabConfig, results_dir: Path | None = None) -> None:
    """``invoke doctor``: every prerequisite as a table (check, ok/missing, how to fix);
    changes nothing. Exit 1 when something a run needs is missing."""
    console.print("[dim]checking (the image and etcd checks ask the network, up to ~20 s)…[/]")
    found = preflight.checks(config, results_dir or provisioning.ROOT / "results")
    table = Table(title="etcdlab doctor", title_justify="left")
    for column in ("check", "status", "found", "how to fix"):
        table.add_column(column, overflow="fold")
    marks = {True: "[green]ok[/]", False: "[bold red]missing[/]", None: "[dim]n/a[/]"}
    for check in found:
        table.add_row(check.name, marks[check.ok], check.detail, check.fix)
    console.print(table)
    missing = [check for check in found if check.ok is False]
    if missing:
        err_console.print(f"[bold red]error:[/] {len(missing)} prerequisite(s) missing: "
                          + ", ".join(check.name for check in missing))
        sys.exit(1)
    console.print("[green]ready[/]: `invoke lab --quick` has what it needs")


def print_experiments() -> None:
    """``invoke experiments``: one line each."""
    table = Table(title="experiments (one per question)", title_justify="left")
    for column in ("Q", "name", "question", "--quick changes"):
        table.add_column(column)
    for exp in experiments.registry().values():
        quick = ", ".join(f"{k}={v}" for k, v in exp.quick.items())
        table.add_row(str(exp.question), exp.name, exp.title, quick)
    console.print(table)


def _running_cluster(config: LabConfig) -> Cluster:
    """The lab on ``config.network`` as it was provisioned (its prefix, size, settings)."""
    if config.hosts_mode:
        return Cluster(config)
    running = provisioning.provisioned_config(config)  # same network, so same state folder
    lab = DockerLab(running)
    if not lab.containers():
        raise LabError(f"no lab on network {config.network}: run `invoke provision` first")
    shape = ("prefix", "nodes", "subnet", "first_host")
    if any(getattr(running, key) != getattr(config, key) for key in shape):
        names = running.node_names
        err_console.print(f"[dim]using the lab on network {running.network} as provisioned: "
                          f"{running.nodes} node(s) {names[0]}..{names[-1]}, "
                          f"subnet {running.subnet}[/]")
    return Cluster(running, lab)


def _run_one(cluster: Cluster, exp: experiments.Experiment, results_dir: Path,
             params: dict[str, Any]) -> bool:
    console.rule(f"Q{exp.question} {exp.name}")
    console.print(f"[bold]{exp.title}[/]")
    console.print(str(params) if console.log_path else describe_params(exp, params),
                  style="dim", markup=False)
    try:
        result = run_experiment(exp, cluster, results_dir, params, console)
    except LabError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return False
    console.print(f"[green]ok[/] {exp.name} in {result.metadata['elapsed_s']:.1f} s → "
                  f"{results_dir / (exp.name + '.json')}", soft_wrap=True)
    return True


def refuse_faults_by_hand(config: LabConfig) -> None:
    """An experiment heals every open journal entry when it ends: it does not start while
    a fault typed by hand (``invoke fault``) is in force."""
    journal = Journal(config.state_path / JOURNAL_FILE)
    ids = sorted({str(entry.data["manual"].get("id")) for entry in journal.open_entries()
                  if isinstance(entry.data.get("manual"), Mapping)})
    if ids:
        raise LabError(f"{len(ids)} fault(s) typed by hand are in force ({', '.join(ids)}; "
                       "`invoke faults` lists them): an experiment would heal them when it "
                       "ends, so heal them first with `invoke heal`")


def set_verbose(verbose: bool) -> None:
    """``--verbose``: progress lines with their source location, parameters as a dict,
    and every heal step on its own line."""
    console.log_path = verbose


def describe_params(exp: experiments.Experiment, params: dict[str, Any]) -> str:
    """The parameters of a run in words: each one's meaning, value and unit."""
    parts = []
    for param in exp.parameters:
        value = params.get(param.name, param.default)
        unit = f" {param.unit}" if param.unit else ""
        parts.append(f"{param.help or param.name}: {value}{unit}")
    return "; ".join(parts)


@user_errors
def experiment(config: LabConfig, name: str, quick: bool, results_dir: Path | None,
               param_pairs: list[str], trials: str | None = None) -> None:
    """``invoke experiment NAME``: run one experiment and save its JSON result.

    Every parameter is parsed and checked, and the results folder made writable, before
    the lab is touched.
    """
    exp = experiments.get(name)
    params = exp.params_with(quick, parse_params(param_pairs, trials))
    results_dir = writable_results_dir(results_dir or default_results_dir())
    preflight.require(config, results_dir)
    refuse_faults_by_hand(config)
    with lab_lock(config):
        ok = _run_one(_running_cluster(config), exp, results_dir, params)
    if not ok:
        sys.exit(1)


@user_errors
def report(config: LabConfig, quick: bool, only: list[str] | None, results_dir: Path | None,
           from_dir: Path | None) -> None:
    """``invoke report``: run the selected experiments, then render REPORT.md and REPORT.html."""
    if from_dir is not None:
        if not from_dir.is_dir():
            raise LabError(f"{from_dir} is not a folder of results")
        try:
            next(from_dir.glob("*.json"))
        except StopIteration:
            raise LabError(f"{from_dir} holds no results (*.json)") from None
        except OSError as exc:
            raise LabError(f"cannot read {from_dir}: {exc.strerror}") from None
        _render(from_dir)
        return
    results_dir = writable_results_dir(results_dir or default_results_dir())
    preflight.require(config, results_dir)
    refuse_faults_by_hand(config)
    with lab_lock(config):
        _report(config, quick, only, results_dir)


def _report(config: LabConfig, quick: bool, only: list[str] | None,
            results_dir: Path | None, provision_s: float | None = None) -> None:
    selected = [experiments.get(n) for n in only] if only else list(
        experiments.registry().values())
    results_dir = writable_results_dir(results_dir or default_results_dir())
    cluster = _running_cluster(config)
    failed = []
    times: list[ExperimentTime] = []
    try:
        for exp in selected:
            started = time.monotonic()
            try:
                ok = _run_one(cluster, exp, results_dir, exp.params(quick))
            except KeyboardInterrupt:
                times.append(ExperimentTime(exp.name, "interrupted", time.monotonic() - started))
                raise
            times.append(ExperimentTime(exp.name, "ok" if ok else "failed",
                                        time.monotonic() - started))
            if not ok:
                failed.append(exp.name)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: no further experiment starts; rendering what "
                      "was measured[/]")
        _print_times(time_rows(times, provision_s))
        _render(results_dir)
        raise
    _print_times(time_rows(times, provision_s))
    _render(results_dir)
    if failed:
        raise LabError(f"experiment(s) failed: {', '.join(failed)} (their sections say why)")


@dataclass(frozen=True)
class ExperimentTime:
    """How one experiment of a report run ended and its wall time."""

    name: str
    outcome: str  # ok, failed or interrupted
    seconds: float


def time_rows(times: list[ExperimentTime],
              provision_s: float | None = None) -> list[tuple[str, str, str]]:
    """The rows (step, outcome, seconds) of the time table printed after a report run.

    One row per experiment in run order, after a ``provision`` row when ``provision_s`` is
    given (``invoke lab``), then a ``total`` row: every step's seconds, with the
    experiments' outcomes counted (``8 ok, 1 failed``).
    """
    rows = [] if provision_s is None else [("provision", "ok", _seconds(provision_s))]
    rows += [(t.name, t.outcome, _seconds(t.seconds)) for t in times]
    counts = {outcome: sum(1 for t in times if t.outcome == outcome)
              for outcome in ("ok", "failed", "interrupted")}
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
    total = sum(t.seconds for t in times) + (provision_s or 0.0)
    rows.append(("total", outcomes or "none run", f"{_seconds(total)} ({total / 60:.1f} min)"))
    return rows


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}"


def _print_times(rows: list[tuple[str, str, str]]) -> None:
    table = Table(title="time per experiment", title_justify="left")
    table.add_column("experiment")
    table.add_column("outcome")
    table.add_column("seconds", justify="right")
    *steps, total = rows
    for step, outcome, seconds in steps:
        table.add_row(step, Text(outcome, style=_OUTCOME_STYLE.get(outcome, "")), seconds)
    table.add_section()
    table.add_row(*total, style="bold")
    console.print(table)


def _render(results_dir: Path) -> None:
    try:
        path = render_report(results_dir)
    except (OSError, ValueError) as exc:
        # OSError: an unreadable result or a folder the report cannot be written to.
        raise LabError(f"cannot render the report: {exc}") from None
    # soft_wrap: a path is printed whole on its line (never folded at the width), to copy.
    console.print(f"[bold green]report[/] {path}", soft_wrap=True)
    console.print(f"[bold green]html[/]   {path.with_name(HTML_NAME)}", soft_wrap=True)
    console.print(f"[bold green]method[/] {path.with_name(METHOD_NAME)}", soft_wrap=True)


@user_errors
def bench(config: LabConfig, sizes: str, quick_lab: bool, results_dir: Path | None,
          network: str | None = None, subnet: str | None = None,
          prefix: str | None = None) -> None:
    """``invoke bench``: the floor, then cold provision and re-run per size (and the quick
    lab on the first), each on a temporary lab that is destroyed afterwards."""
    if config.hosts_mode:
        raise LabError("the bench creates container labs of its own: run it without "
                       "--inventory")
    if not config.node_image:
        raise LabError("the bench times labs built from the node image: set lab.node_image "
                       "to true (INVOKE_LAB_NODE_IMAGE=1)")
    counts = benchmark.parse_sizes(sizes, MAX_NODES)
    first = benchmark.bench_config(config, counts[0], network, subnet, prefix)
    if first.network == config.network:
        raise LabError(f"the bench destroys the lab it measures, so it needs one of its own, "
                       f"not {config.network}: give another --network (and --subnet)")
    results_dir = writable_results_dir(results_dir or default_results_dir())
    with lab_lock(first):
        lab = DockerLab(first)
        lab.preflight()
        if lab.containers() or lab.network() is not None:
            say(f"removing the bench lab on {first.network} that an earlier bench left")
            _destroy_bench_lab(first)
        resolved, base_image = provisioning.resolve_assets(first, lab, say)
        started = time.monotonic()
        image, _digest, built = provisioning.ensure_node_image(resolved, lab, base_image, say,
                                                               show_task)
        record = benchmark.new_bench(resolved, image)
        if built:
            record.steps.append(benchmark.Step("image", counts[0],
                                               time.monotonic() - started))
        path = results_dir / "bench.json"
        try:
            for count in counts:
                lab_config = benchmark.bench_config(config, count, network, subnet, prefix)
                record.steps.append(_bench_floor(lab_config, image))
                for kind in ("cold", "rerun"):
                    record.steps.append(_bench_provision(lab_config, kind))
                    benchmark.save(record, path)
                if quick_lab and count == counts[0]:
                    record.steps.append(_bench_quick_lab(lab_config, results_dir))
                _destroy_bench_lab(lab_config)
        finally:
            _destroy_bench_lab(first)
            benchmark.save(record, path)
    table = Table(title=f"bench on {record.cpus} CPU(s), {record.started}, etcd "
                  f"{record.etcd_version}", title_justify="left")
    for column in ("step", "members", "seconds", "× floor"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for row in benchmark.rows(record):
        table.add_row(*row)
    console.print(table)
    console.print(benchmark.growth_line(record))
    console.print(f"[bold green]bench[/] {path}", soft_wrap=True)


def _bench_floor(config: LabConfig, image: str) -> benchmark.Step:
    """The seed's docker run of bare etcd containers, timed to one leader."""
    say(f"the floor: docker run of {config.nodes} bare etcd container(s) from {image}")
    try:
        seconds = benchmark.floor_seconds(config, image, say)
    except LabError as exc:
        return benchmark.Step("floor", config.nodes, None, "failed", str(exc))
    say(f"  {seconds:.1f} s to one leader")
    return benchmark.Step("floor", config.nodes, seconds)


def _bench_provision(config: LabConfig, kind: str) -> benchmark.Step:
    """One timed provision of the bench lab, to every member healthy."""
    say(f"{'cold provision' if kind == 'cold' else 're-run'} of {config.nodes} member(s)")
    started = time.monotonic()
    try:
        done = provisioning.provision(config, lambda _m: None, lambda _t, _r: None)
        Cluster(done.config).wait_healthy(timeout=60)
    except LabError as exc:
        return benchmark.Step(kind, config.nodes, None, "failed", str(exc))
    seconds = time.monotonic() - started
    changes = "no changes" if done.run.changed == 0 else f"{done.run.changed} change(s)"
    say(f"  {seconds:.1f} s (ansible {done.run.elapsed_s:.1f} s, {changes})")
    return benchmark.Step(kind, config.nodes, seconds,
                          detail=f"ansible {done.run.elapsed_s:.1f} s, {changes}")


def _bench_quick_lab(config: LabConfig, results_dir: Path) -> benchmark.Step:
    """Every experiment with --quick on the bench lab (its report under quick-lab/)."""
    say(f"the quick lab on {config.nodes} member(s)")
    started = time.monotonic()
    try:
        _report(config, True, None, results_dir / "quick-lab")
    except LabError as exc:
        return benchmark.Step("quick-lab", config.nodes, None, "failed", str(exc))
    return benchmark.Step("quick-lab", config.nodes, time.monotonic() - started)


def _destroy_bench_lab(config: LabConfig) -> None:
    """Remove the bench lab's containers, network and state (idempotent)."""
    provisioning.remove_container_lab(config)


@user_errors
def heal(config: LabConfig) -> None:
    """``invoke heal``: undo every fault the journal lists and what else a killed run left.

    Ends with a table of what was healed and what could not be; exit 1 if anything is left.
    """
    with lab_lock(config):
        steps = _heal(_running_cluster(config))
    _print_heal(steps)
    left = [step for step in steps if not step.ok]
    if left:
        raise LabError(f"{len(left)} step(s) could not be healed (table above): "
                       "fix what they name, then run `invoke heal` again")
    console.print("[bold green]healed[/]: the lab is whole" if len(steps) > 1
                  else "[bold green]healthy[/]: nothing to repair")


def _heal(cluster: Cluster) -> list[HealStep]:
    return Faults(cluster).heal(extra={"run": finish_run})


def _print_heal(steps: list[HealStep]) -> None:
    table = Table(title="heal", title_justify="left")
    for column in ("step", "outcome", "detail"):
        table.add_column(column)
    for step in steps:
        table.add_row(step.what, "[green]healed[/]" if step.ok else "[bold red]left[/]",
                      step.detail)
    console.print(table)


# -- membership registry (Q10): `invoke members` ------------------------------------------


WATCH_SECONDS = Param("seconds", 0.0, "stop watching after this long (0: at Ctrl-C)", unit="s",
                      minimum=0)


@user_errors
def members(config: LabConfig, name: str, watch: bool = False,
            seconds: str | float | None = None) -> None:
    """``invoke members NAME``: the service's instances; with ``watch``, then live changes."""
    seconds = WATCH_SECONDS.parse(0.0 if seconds is None else seconds, source="--seconds")
    cluster = _running_cluster(config)
    with cluster.tls_environment():
        _members(cluster, name, watch, seconds)


def _members(cluster: Cluster, name: str, watch: bool, seconds: float) -> None:
    from etcdlab.etcd import registry

    endpoints = [cluster.endpoint(n) for n in cluster.names]
    view = registry.snapshot_view(name, endpoints)
    revision = view.revision
    print_members(name, [view.members[i] for i in sorted(view.members)], revision)
    if not watch:
        return
    until = "Ctrl-C" if seconds <= 0 else f"{seconds:g} s or Ctrl-C"
    console.print(f"[dim]watching /services/{name}/ from revision {revision + 1} "
                  f"(until {until})[/]")
    styles = {"join": "green", "update": "yellow", "leave": "red"}

    def show(changes: list[registry.Change]) -> None:
        for change in changes:
            endpoint = change.instance.endpoint if change.instance else ""
            console.print(f"  {time.strftime('%H:%M:%S')}  rev {change.revision}  "
                          f"[{styles.get(change.kind, '')}]{change.kind:<6}[/] "
                          f"{change.instance_id}  {endpoint}  [dim]{change.via}[/]")

    # The watch continues the printed snapshot: nothing between the two is lost or repeated.
    live = registry.watch(name, endpoints, show, view=view)
    deadline = time.monotonic() + seconds if seconds > 0 else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        live.stop()
    reconnects = sum(1 for c in live.connections if c["what"] != "snapshot")
    console.print(f"{len(live.members())} member(s) at revision {live.revision}; "
                  f"{reconnects} reconnection(s) or resync(s)")


def print_members(name: str, instances: list[Any], revision: int) -> None:
    """The members table of one service."""
    table = Table(title=f"/services/{name}/ at revision {revision}", title_justify="left")
    for column in ("instance", "endpoint", "registered (UTC)", "lease", "created rev",
                   "modified rev", "metadata"):
        table.add_column(column)
    for instance in instances:
        registered = ("-" if instance.registered_at is None else time.strftime(
            "%Y-%m-%d %H:%M:%S", time.gmtime(instance.registered_at)))
        table.add_row(instance.instance_id, instance.endpoint, registered,
                      f"{instance.lease:x}" if instance.lease else "-",
                      str(instance.create_revision), str(instance.mod_revision),
                      json.dumps(dict(instance.metadata)) if instance.metadata else "-")
    console.print(table)
    if not instances:
        console.print(f"[dim]no instance of {name} is registered[/]")
