"""``invoke tour``: a guided walk through four faults, beside ``invoke watch``.

Each step says what to look for in the watch view, asks for a prediction (Enter), applies
its fault exactly as ``invoke fault`` does (journalled first, :mod:`etcdlab.playground`),
measures what happened on the real lab, shows it next to the prediction, and heals the
fault (``invoke heal ID``'s undo) before the next step. Whatever ends the tour — the last
step, Ctrl-C, an error — the lab is healed on the way out (every open entry, as
``invoke heal``). ``--yes`` answers every prompt (for tests and demonstrations).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from etcdlab import playground
from etcdlab.errors import LabError
from etcdlab.etcd import transport
from etcdlab.faults import Faults
from etcdlab.faults.journal import Entry, HealStep
from etcdlab.lab.cluster import Cluster
from etcdlab.polling import poll_until
from etcdlab.signals import heal_guard

TOUR_PREFIX = "/etcdlab/tour/"
QUOTA_BYTES = 8 * 1024**2
VALUE_BYTES = 512 * 1024
QUOTA_KEYS = 4
WAIT_S = 30.0
POLL_S = 0.02


@dataclass
class Context:
    """What a step needs: the lab, where to print, how to apply and heal one fault."""

    cluster: Cluster
    out: Console
    heal_extra: Mapping[str, Callable[[Entry], str]]
    show: Callable[[str, dict[str, str]], None]
    active: list[str]

    def apply(self, kind: str, target: str) -> tuple[str, float]:
        """Apply one fault as `invoke fault` does; (its id, monotonic time it was applied)."""
        spec = playground.parse_fault(kind, target)
        started = time.monotonic()
        fault_id = playground.apply(self.cluster, spec, self.say, self.show)
        self.active.append(fault_id)
        return fault_id, started

    def heal(self, fault_id: str) -> list[HealStep]:
        steps = playground.heal_one(self.cluster, fault_id, self.heal_extra)
        self.active.remove(fault_id)
        broken = [s for s in steps if not s.ok]
        if broken:
            raise LabError("heal failed: " + "; ".join(f"{s.what}: {s.detail}" for s in broken))
        return steps

    def say(self, message: str) -> None:
        self.out.print(f"  [cyan]•[/] {message}")


@dataclass(frozen=True)
class Step:
    """One stop of the tour."""

    key: str
    title: str
    look_for: str
    question: str
    run: Callable[[Context], list[str]]


def _status(cluster: Cluster, name: str) -> Any | None:
    try:
        return cluster.raw_status(name, timeout=0.3)
    except Exception:  # noqa: BLE001 - not answering
        return None


def _wait(what: str, test: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    value = poll_until(test, timeout, every=POLL_S)
    if value:
        return value
    raise LabError(f"{what}: not seen within {timeout:.0f} s")


def _leader_term(cluster: Cluster, exclude: str | None = None) -> tuple[str, int] | None:
    """The leader a majority names (not ``exclude``) and its term."""
    leader = cluster.leader(timeout=0.3)
    if leader is None or leader == exclude:
        return None
    status = _status(cluster, leader)
    return (leader, status.raftTerm) if status is not None else None


def crash_leader(ctx: Context) -> list[str]:
    cluster = ctx.cluster
    old, term = _wait("a leader", lambda: _leader_term(cluster))
    fault_id, started = ctx.apply("crash", "leader")
    new, new_term = _wait("a new leader", lambda: _leader_term(cluster, exclude=old))
    elected = time.monotonic() - started
    ctx.heal(fault_id)
    back = time.monotonic() - started
    return [f"{old} (leader at term {term}) crashed; {new} elected at term {new_term}, "
            f"{elected:.2f} s after the crash",
            f"{old} restarted by the heal and following again {back:.1f} s after the crash"]


def cut_leader(ctx: Context) -> list[str]:
    cluster = ctx.cluster
    old, term = _wait("a leader", lambda: _leader_term(cluster))
    fault_id, started = ctx.apply("partition", "leader")
    new, new_term = _wait("a new leader", lambda: _leader_term(cluster, exclude=old))
    elected = time.monotonic() - started

    def stepped_down() -> bool:
        status = _status(cluster, old)
        return status is not None and status.leader != status.header.member_id

    _wait(f"{old} stepping down", stepped_down)
    down = time.monotonic() - started
    ctx.heal(fault_id)

    def following() -> Any:
        status = _status(cluster, old)
        leader = _leader_term(cluster)
        return (status is not None and leader is not None and status.raftTerm == leader[1]
                and status.leader != status.header.member_id) and leader

    leader, final_term = _wait(f"{old} following again", following)
    return [f"{old} (leader at term {term}) cut off; the majority elected {new} at term "
            f"{new_term}, {elected:.2f} s after the cut",
            f"{old} stopped calling itself leader {down:.2f} s after the cut (it lost its "
            "quorum)",
            f"healed: {old} follows {leader} at term {final_term}"]


def cut_follower(ctx: Context) -> list[str]:
    cluster = ctx.cluster
    pre_vote = cluster.config.etcd_pre_vote
    leader, term = _wait("a leader", lambda: _leader_term(cluster))
    fault_id, started = ctx.apply("partition", "follower")
    follower = next(e.data["manual"]["member"] for e in playground.journal_of(cluster)
                    .open_entries() if e.data.get("manual", {}).get("id") == fault_id)
    hold = 2 * cluster.config.etcd_election_timeout_ms / 1000.0 + 1.0
    terms = []
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        status = _status(cluster, follower)
        if status is not None:
            terms.append(status.raftTerm)
        time.sleep(0.1)
    ctx.heal(fault_id)
    now_leader, now_term = _wait("a leader", lambda: _leader_term(cluster))
    election = now_term != term
    return [f"pre-vote is {'on' if pre_vote else 'off'} in this lab",
            f"{follower} cut off for {hold:.1f} s: its term went from {term} to "
            f"{max(terms) if terms else '?'}",
            f"healed: {now_leader} leads at term {now_term} — "
            + ("an election happened when it came back" if election else
               f"no election: {leader} kept its term")]


def fill_quota(ctx: Context) -> list[str]:
    cluster = ctx.cluster
    ctx.say(f"re-applying etcd with a {QUOTA_BYTES // 1024**2} MiB quota, one member at a "
            "time (watch their terms and the leader move)")
    fault_id, _started = ctx.apply("quota", str(QUOTA_BYTES))
    leader, _term = _wait("a leader", lambda: _leader_term(cluster))
    value = "x" * VALUE_BYTES
    accepted = 0
    refusal = ""
    size = None
    with transport.member(cluster, leader, timeout=5.0) as member:
        for index in range(4 * QUOTA_BYTES // VALUE_BYTES):
            try:
                member.put(f"{TOUR_PREFIX}{index % QUOTA_KEYS}", value)
                accepted += 1
            except Exception as exc:  # noqa: BLE001 - the refusal is the measurement
                refusal = _why(exc)
                break
        size = member.db_size()
        alarms = _alarm_names(member)
        read_ok = _read_ok(member)
    ctx.heal(fault_id)
    with transport.member(cluster, leader, timeout=5.0) as member:
        for index in range(QUOTA_KEYS):
            member.delete(f"{TOUR_PREFIX}{index}")
        after = _alarm_names(member)
    if not refusal:
        raise LabError(f"{accepted} writes of {VALUE_BYTES} B were all accepted under a "
                       f"{QUOTA_BYTES} B quota")
    return [f"quota {QUOTA_BYTES // 1024**2} MiB: {accepted} writes of "
            f"{VALUE_BYTES // 1024} KiB accepted, then refused: {refusal}",
            f"DB size then {size / 1024**2:.1f} MiB; alarms: {', '.join(alarms) or 'none'}; "
            f"a read during the alarm {'succeeded' if read_ok else 'failed'}",
            f"healed (compacted, defragmented, disarmed, quota restored): alarms now "
            f"{', '.join(after) or 'none'}"]


def _why(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    return (details() if callable(details) else "") or str(exc)


def _alarm_names(member: transport.Member) -> list[str]:
    try:
        return sorted({name for _id, name in member.alarms()})
    except Exception:  # noqa: BLE001 - shown as unknown
        return ["unknown"]


def _read_ok(member: transport.Member) -> bool:
    try:
        member.get(f"{TOUR_PREFIX}0")
    except Exception:  # noqa: BLE001 - a refused read is what it says
        return False
    return True


STEPS = (
    Step("crash-leader", "Crash the leader (SIGKILL)",
         "its row turns down, then 'no leader', then another member 'elected' at the next "
         "term; with --probe, writes stop and resume",
         "How long until a new leader is elected — more or less than the election timeout?",
         crash_leader),
    Step("cut-leader", "Cut the leader off from the others (it still runs)",
         "the others elect a new leader at a higher term while the old one still says "
         "leader in its old term, until it notices it lost its quorum",
         "Will there be two leaders for a moment? In which terms?",
         cut_leader),
    Step("cut-follower", "Cut a follower off, pre-vote on",
         "the cut-off follower loses its leader; does its term rise? When it rejoins, does "
         "the leader change?",
         "Will the follower's return force a new election?",
         cut_follower),
    Step("fill-quota", "Set a small quota (8 MiB) and fill it",
         "the db column grows, then 'alarm raised: NOSPACE'; writes are refused, reads go on",
         "How many 512 KiB writes fit, and can you still read once it is full?",
         fill_quota),
)


def run(cluster: Cluster, out: Console, heal_extra: Mapping[str, Callable[[Entry], str]],
        show: Callable[[str, dict[str, str]], None], ask: Callable[[str], str] | None,
        only: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """Walk the steps (``ask``: None answers every prompt); the lab is healed on any exit.

    Returns each step's key and measurements.
    """
    steps = [s for s in STEPS if only is None or s.key in only]
    ctx = Context(cluster, out, heal_extra, show, [])
    done: list[tuple[str, list[str]]] = []
    out.print("[bold]etcdlab tour[/]: run `invoke watch` in another terminal to see each "
              "step live")
    try:
        for number, step in enumerate(steps, 1):
            out.rule(f"{number}/{len(steps)} {step.title}")
            out.print(f"[bold]look for[/]: {step.look_for}")
            out.print(f"[bold]predict[/]: {step.question}")
            guess = ask("your prediction (Enter to run the step): ") if ask else ""
            measured = step.run(ctx)
            out.print("[bold]measured[/]:")
            for line in measured:
                out.print(f"  {line}")
            if guess.strip():
                out.print(f"[dim]you predicted: {guess.strip()}[/]")
            out.print("[green]healed[/]: the lab is whole again")
            done.append((step.key, measured))
            if ask and number < len(steps):
                ask("Enter for the next step… ")
    finally:
        if ctx.active or playground.journal_of(cluster).open_entries():
            out.print("[yellow]healing what the tour left[/]")
            with heal_guard(lambda message: out.print(f"[yellow]{message}[/]")):
                Faults(cluster).heal(extra=dict(heal_extra))
    return done
