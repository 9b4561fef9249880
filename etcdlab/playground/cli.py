"""What the playground's tasks print: ``invoke fault``, ``faults``, ``heal ID``, ``watch``,
``tour``. Each checks its input before the lab is touched (one ``error:`` line otherwise)."""

from __future__ import annotations

from etcdlab import playground
from etcdlab.cli import (
    _print_heal,
    _running_cluster,
    console,
    lab_lock,
    say,
    show_task,
    user_errors,
)
from etcdlab.errors import LabError
from etcdlab.lab.config import LabConfig
from etcdlab.questions.runner import finish_run


@user_errors
def fault(config: LabConfig, kind: str | None, target: str | None = None,
          from_: str | None = None, one_way: str | None = None, offset: str | None = None,
          rate: str | None = None) -> None:
    """``invoke fault KIND [TARGET]``: journal, then apply one fault; it stays until healed."""
    # the kind first: a bad one is refused without looking for the lab
    playground.check_kind(kind or None)
    cluster = _running_cluster(config)
    spec = playground.parse_fault(kind or None, target or None, from_, one_way, offset, rate,
                                  cluster.names)
    playground.check_targets(spec, cluster.names)
    with lab_lock(config):
        fault_id = playground.apply(cluster, spec, say, show_task)
    console.print(f"[bold yellow]active[/] until `invoke heal {fault_id}` (this one) or "
                  "`invoke heal` (all); `invoke faults` lists them")


@user_errors
def list_faults(config: LabConfig) -> None:
    """``invoke faults``: what is in force (faults typed by hand and what a killed run left)."""
    cluster = _running_cluster(config)
    found = playground.active(playground.journal_of(cluster))
    if not found:
        console.print("no active fault")
        return
    console.print(playground.faults_table(found), soft_wrap=True)


@user_errors
def heal_one(config: LabConfig, fault_id: str) -> None:
    """``invoke heal ID``: undo one active fault, leave the others."""
    cluster = _running_cluster(config)
    with lab_lock(config):
        steps = playground.heal_one(cluster, fault_id, {"run": finish_run})
    _print_heal(steps)
    left = [step for step in steps if not step.ok]
    if left:
        raise LabError(f"{len(left)} step(s) of fault {fault_id} could not be healed "
                       "(table above): run `invoke heal` to mend everything")
    console.print(f"[bold green]healed[/] fault {fault_id}")


@user_errors
def watch(config: LabConfig, as_json: bool = False, probe: bool = False,
          seconds: str | float | None = None) -> None:
    """``invoke watch``: the live view (or, with ``as_json``, its events as JSON lines)."""
    from etcdlab.cli import WATCH_SECONDS
    from etcdlab.faults.journal import JOURNAL_FILE
    from etcdlab.playground import watch as live

    seconds = WATCH_SECONDS.parse(0.0 if seconds is None else seconds, source="--seconds")
    cluster = _running_cluster(config)
    with cluster.tls_environment():
        live.run(cluster, cluster.config.state_path / JOURNAL_FILE, console, as_json, probe,
                 seconds)


@user_errors
def tour(config: LabConfig, yes: bool = False, only: str | None = None) -> None:
    """``invoke tour``: the guided walk (``yes``: no prompts); healed after each step and on
    any exit."""
    from etcdlab.playground import tour as guided

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    known = [step.key for step in guided.STEPS]
    unknown = [n for n in names or [] if n not in known]
    if unknown or names == []:
        raise LabError(f"unknown step {', '.join(unknown) or repr(only)}: steps are "
                       f"{', '.join(known)}")
    cluster = _running_cluster(config)
    with lab_lock(config), cluster.tls_environment():
        done = guided.run(cluster, console, {"run": finish_run}, lambda _task, _hosts: None,
                          None if yes else console.input, names)
    console.print(f"[bold green]tour done[/]: {len(done)} step(s), the lab healed after each")
