"""Faults typed by hand: ``invoke fault KIND [TARGET]``, ``invoke faults``, ``invoke heal ID``.

A fault typed by hand goes through :class:`~etcdlab.faults.Faults` exactly as an
experiment's does: each is written to the lab's journal before it is applied. Unlike an
experiment there is no runner to heal on exit, so its entries stay open after ``invoke
fault`` ends — and that is what keeps them listed (``invoke faults``) and undone by
``invoke heal`` (every open entry) or ``invoke heal ID`` (this fault's only).

The journal given to :class:`Faults` adds one tag to every entry it begins:
``manual = {id, fault, target, member}``. A fault of several entries (a split, a clock
change) is one id for people; ``heal ID`` replays just the entries with that tag, through
the same undo handlers ``invoke heal`` uses. An open entry without the tag (a killed run's)
is listed under its own id and can be healed by it too.

Parsing is pure (:func:`parse_fault`, :func:`check_targets`): a bad kind, target or option
is refused before the lab is touched. Before a fault is applied, every process a killed
run left for the lab is ended (:mod:`etcdlab.faults.leftovers`), as ``invoke heal`` does.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from etcdlab.errors import LabError
from etcdlab.faults import Faults, leftovers
from etcdlab.faults.journal import JOURNAL_FILE, Entry, HealStep, Journal, replay
from etcdlab.lab.cluster import Cluster

KINDS: dict[str, str] = {
    "crash": "SIGKILL the member's etcd",
    "stop": "SIGTERM the member's etcd (a leader hands over first)",
    "pause": "SIGSTOP the member's etcd (frozen until healed)",
    "restart": "SIGTERM the member's etcd, then start it again (nothing stays broken)",
    "partition": "cut the member off from the others (--from A,B: from those only; "
                 "--one-way in|out: one direction)",
    "clock": "restart the member's chronyd with a faked clock (--offset S, --rate R)",
    "ntp-cut": "cut the member off from its time server (UDP 123 only)",
    "quota": "re-apply etcd with --quota-backend-bytes BYTES (rolling)",
}
TARGET_WORDS = ("leader", "follower")
ONE_WAY = ("in", "out")
MEMBER_KINDS = tuple(kind for kind in KINDS if kind != "quota")
QUOTA_MIN = 1024 * 1024  # below this etcd is full before it starts
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?\s*$", re.I)
_UNITS = {"b": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2,
          "mb": 1000**2, "g": 1024**3, "gib": 1024**3, "gb": 1000**3}


@dataclass(frozen=True)
class FaultSpec:
    """One fault as typed: what, on whom (a member, ``leader``, ``follower``) and how."""

    kind: str
    target: str | None = None
    peers: tuple[str, ...] = ()
    one_way: str | None = None
    offset_s: float | None = None
    rate: float | None = None
    quota_bytes: int | None = None


def _valid_kinds() -> str:
    return ", ".join(KINDS)


def check_kind(kind: str | None) -> str:
    """``kind`` if it is one of :data:`KINDS`, else one LabError naming them."""
    if not kind or kind not in KINDS:
        got = f"unknown fault kind {kind!r}" if kind else "no fault kind given"
        raise LabError(f"{got}: valid kinds are {_valid_kinds()}")
    return kind


def parse_fault(kind: str | None, target: str | None = None, from_: str | None = None,
                one_way: str | None = None, offset: str | None = None,
                rate: str | None = None, names: list[str] | None = None) -> FaultSpec:
    """The fault typed, checked without the lab: one LabError naming what is valid
    (``names``: the lab's members, when known, to name them)."""
    targets = ", ".join([*(names or []), *TARGET_WORDS]) if names else \
        "a member's name, leader or follower"
    kind = check_kind(kind)
    given = {"--from": from_, "--one-way": one_way, "--offset": offset, "--rate": rate}
    allowed = {"partition": {"--from", "--one-way"}, "clock": {"--offset", "--rate"}}
    for option, value in given.items():
        if value is not None and option not in allowed.get(kind, set()):
            owners = [k for k, opts in allowed.items() if option in opts]
            raise LabError(f"{option} applies to `invoke fault {owners[0]}` only, not to {kind}")
    if kind == "quota":
        return FaultSpec(kind, quota_bytes=parse_bytes(target))
    if kind == "partition" and target is None and from_ is None:
        raise LabError(f"partition needs a TARGET ({targets}) or --from A,B (those "
                       "members split from the others)")
    if kind != "partition" and target is None:
        raise LabError(f"{kind} needs a TARGET: valid targets are {targets}")
    peers: tuple[str, ...] = ()
    if from_ is not None:
        peers = tuple(p.strip() for p in from_.split(",") if p.strip())
        if not peers or len(set(peers)) != len(peers):
            raise LabError(f"--from takes distinct member names separated by commas, "
                           f"got {from_!r}")
    if one_way is not None and one_way not in ONE_WAY:
        raise LabError(f"--one-way must be in (what the target receives is dropped) or "
                       f"out (what it sends), got {one_way!r}")
    if one_way is not None and target is None:
        raise LabError("--one-way needs a TARGET: whose traffic goes one way")
    offset_s = rate_value = None
    if kind == "clock":
        if offset is None and rate is None:
            raise LabError("clock needs --offset SECONDS and/or --rate R (1.0: a true clock)")
        offset_s = _number(offset, "--offset", lambda v: abs(v) <= 3600,
                           "from -3600 to 3600 seconds") if offset is not None else None
        rate_value = _number(rate, "--rate", lambda v: 0.5 <= v <= 2.0,
                             "from 0.5 to 2.0 (1.001: 1000 ppm fast)") if rate is not None \
            else None
    return FaultSpec(kind, target, peers, one_way, offset_s, rate_value)


def _number(text: str, option: str, ok: Callable[[float], bool], expected: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if value != value or not ok(value):  # NaN or out of range
        raise LabError(f"{option} must be a number {expected}, got {text!r}")
    return value


def parse_bytes(text: str | None) -> int:
    """``16777216``, ``16MiB``, ``64 KiB`` → bytes; at least 1 MiB."""
    match = _SIZE.match(text or "")
    if not match:
        raise LabError(f"quota needs BYTES (a whole number, or with KiB, MiB or GiB), "
                       f"got {text!r}")
    size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    if size < QUOTA_MIN:
        raise LabError(f"quota BYTES must be at least 1 MiB ({QUOTA_MIN}), got {text!r}")
    return size


def check_targets(spec: FaultSpec, names: list[str]) -> None:
    """Every name in ``spec`` is a member (or leader/follower where a target may be)."""
    valid = ", ".join([*names, *TARGET_WORDS])
    if spec.target is not None and spec.kind != "quota" and spec.target not in (
            *names, *TARGET_WORDS):
        raise LabError(f"unknown target {spec.target!r}: valid targets are {valid}")
    for peer in spec.peers:
        if peer not in names:
            raise LabError(f"unknown member {peer!r} in --from: members are {', '.join(names)}")
    if spec.target in spec.peers:
        raise LabError(f"{spec.target} cannot be cut off from itself: leave it out of --from")
    if spec.peers and spec.target is None and len(spec.peers) == len(names):
        raise LabError("--from names every member: nothing is left on the other side")
    if spec.kind == "ntp-cut" and spec.target == names[0]:
        raise LabError(f"{names[0]} is the lab's time server: cut one of its clients "
                       f"({', '.join(names[1:])})")


def resolve(target: str, names: list[str], leader: str | None,
            following: Iterable[str] = ()) -> str:
    """A member's name for ``target``: itself, the leader, or the first member that
    follows it (``following``: those that answer and know the leader)."""
    if target not in TARGET_WORDS:
        return target
    if leader is None:
        raise LabError(f"there is no leader right now, so no {target} to choose: "
                       "see `invoke watch`, or name a member")
    if target == "leader":
        return leader
    followers = [name for name in names if name in set(following) and name != leader]
    if not followers:
        raise LabError(f"no member follows the leader {leader} right now: name a member")
    return followers[0]


def following(cluster: Cluster) -> list[str]:
    """The members that answer and know a leader (the leader too)."""
    names = []
    for name in cluster.names:
        try:
            status = cluster.raw_status(name, timeout=1.0)
        except Exception:  # noqa: BLE001 - a member that does not answer follows no one
            continue
        if status.leader:
            names.append(name)
    return names


class TaggedJournal(Journal):
    """The lab's journal, each entry begun through it tagged as one fault typed by hand."""

    def __init__(self, journal: Journal, tag: Mapping[str, Any]) -> None:
        super().__init__(journal.path)
        self.tag = dict(tag)

    def begin(self, kind: str, description: str, **data: Any) -> Entry:
        return super().begin(kind, description, **data, manual=self.tag)


@dataclass(frozen=True)
class Active:
    """One active fault as ``invoke faults`` lists it."""

    id: str
    kind: str
    target: str
    since: float
    what: str
    entries: tuple[Entry, ...]


def active(journal: Journal) -> list[Active]:
    """What is in force: faults typed by hand (one per id) and other open entries."""
    groups: dict[str, list[Entry]] = {}
    found = []
    for entry in journal.open_entries():
        tag = entry.data.get("manual")
        if isinstance(tag, Mapping) and tag.get("id"):
            groups.setdefault(str(tag["id"]), []).append(entry)
        else:
            target = entry.data.get("node") or ",".join(entry.data.get("nodes") or []) or "-"
            found.append(Active(entry.id, entry.kind, str(target), entry.wall,
                                f"{entry.description} (left by pid {entry.pid})", (entry,)))
    for group_id, entries in groups.items():
        tag = entries[0].data["manual"]
        member = tag.get("member") or "-"
        named = tag.get("target")
        target = member if named in (None, member) else f"{member} ({named})"
        found.append(Active(group_id, str(tag.get("fault")), target,
                            min(e.wall for e in entries),
                            "; ".join(e.description for e in entries), tuple(entries)))
    return sorted(found, key=lambda a: a.since)


def journal_of(cluster: Cluster) -> Journal:
    return Journal(cluster.config.state_path / JOURNAL_FILE)


# -- applying -----------------------------------------------------------------------------
Say = Callable[[str], None]
Show = Callable[[str, dict[str, str]], None]


def apply(cluster: Cluster, spec: FaultSpec, say: Say, show: Show) -> str:
    """End what a killed run left, resolve the target, journal and apply; the fault's id."""
    names = cluster.names
    check_targets(spec, names)
    ended = leftovers.end_lab_processes(cluster.config.state_path)
    if ended:
        say(f"ended {len(ended)} process(es) a killed run left: pid "
            f"{', '.join(map(str, ended))}")
    member = None
    if spec.target is not None and spec.kind != "quota":
        leader = cluster.leader() if spec.target in TARGET_WORDS else None
        member = resolve(spec.target, names, leader,
                         following(cluster) if spec.target == "follower" else ())
        if spec.target in TARGET_WORDS:
            say(f"the {spec.target} is {member}")
        if spec.kind == "ntp-cut" and member == names[0]:
            raise LabError(f"the {spec.target} is {member}, the lab's time server: nothing "
                           "changed; cut one of its clients")
    fault_id = uuid.uuid4().hex[:6]
    # a split by --from alone is on the members it names
    on = member or (",".join(spec.peers) if spec.peers else None)
    tag = {"id": fault_id, "fault": spec.kind, "target": spec.target, "member": on}
    faults = Faults(cluster, TaggedJournal(journal_of(cluster), tag))
    what = _APPLY[spec.kind](faults, spec, member, names, show)
    say(f"fault {fault_id}: {what}")
    return fault_id


def _crash(faults: Faults, _spec: FaultSpec, member: str, *_: Any) -> str:
    faults.crash(member)
    return f"{member} crashed (SIGKILL)"


def _stop(faults: Faults, _spec: FaultSpec, member: str, *_: Any) -> str:
    faults.stop(member)
    return f"{member} stopped (SIGTERM)"


def _pause(faults: Faults, _spec: FaultSpec, member: str, *_: Any) -> str:
    faults.pause(member)
    return f"{member} paused (SIGSTOP)"


def _restart(faults: Faults, _spec: FaultSpec, member: str, *_: Any) -> str:
    faults.stop(member)
    faults.wait_exited(member)
    faults.restart(member)
    return f"{member} restarted (SIGTERM, then started again: nothing left to heal)"


def _partition(faults: Faults, spec: FaultSpec, member: str | None, names: list[str],
               _show: Show) -> str:
    if member is None:  # --from A,B alone: those split from the rest
        rest = [n for n in names if n not in spec.peers]
        faults.split([list(spec.peers), rest])
        return f"{','.join(spec.peers)} split from {','.join(rest)}"
    others = list(spec.peers) or [n for n in names if n != member]
    if spec.one_way == "in":
        faults.one_way(others, member)
        return f"{member} receives nothing from {','.join(others)} (one way)"
    if spec.one_way == "out":
        faults.one_way(member, others)
        return f"{member}'s packets to {','.join(others)} dropped (one way)"
    if spec.peers:
        faults.split([[member], others])
        return f"{member} cut off from {','.join(others)}"
    faults.cut_off(member)
    return f"{member} cut off"


def _clock(faults: Faults, spec: FaultSpec, member: str, *_: Any) -> str:
    faults.configure_chronyd(member, offset_s=spec.offset_s, rate=spec.rate)
    parts = ([f"offset {spec.offset_s:+g} s"] if spec.offset_s is not None else []) + (
        [f"rate {spec.rate:g}"] if spec.rate is not None else [])
    return f"{member}: chronyd restarted with a faked clock ({', '.join(parts)})"


def _ntp_cut(faults: Faults, _spec: FaultSpec, member: str, names: list[str], _show: Show
             ) -> str:
    faults.cut_ntp(member, names[0])
    return f"{member}: NTP to {names[0]} cut"


def _quota(faults: Faults, spec: FaultSpec, _member: None, _names: list[str], show: Show
           ) -> str:
    faults.change_settings(show, etcd_quota_backend_bytes=spec.quota_bytes)
    faults.cluster.wait_healthy(timeout=120)
    return f"quota-backend-bytes {spec.quota_bytes} applied to every member"


_APPLY: dict[str, Callable[..., str]] = {
    "crash": _crash, "stop": _stop, "pause": _pause, "restart": _restart,
    "partition": _partition, "clock": _clock, "ntp-cut": _ntp_cut, "quota": _quota,
}


# -- healing one ----------------------------------------------------------------------------
def heal_one(cluster: Cluster, fault_id: str, extra: Mapping[str, Callable[[Entry], str]]
             ) -> list[HealStep]:
    """Undo the entries of one active fault (its id from ``invoke faults``), the others kept.

    What a killed run left running is ended first, as by ``invoke heal``. When nothing
    else stays open, it waits for a healthy cluster with one leader.
    """
    journal = journal_of(cluster)
    found = active(journal)
    chosen = [a for a in found if a.id == fault_id]
    if not chosen:
        listed = ", ".join(a.id for a in found) or "none"
        raise LabError(f"no active fault {fault_id!r}: active ones are {listed} "
                       "(see `invoke faults`)")
    ids = {entry.id for entry in chosen[0].entries}
    ended = leftovers.end_lab_processes(cluster.config.state_path)
    steps = [HealStep("processes a killed run left here", True,
                      leftovers.describe(ended))] if ended else []
    faults = Faults(cluster, journal)
    keep = [entry.id for entry in journal.open_entries() if entry.id not in ids]
    steps += replay(journal, {**faults.undo_handlers(), **extra}, keep)
    if not journal.open_entries():
        try:
            cluster.wait_healthy(timeout=90)
            steps.append(HealStep("cluster healthy with one leader", True, "healthy"))
        except LabError as exc:
            steps.append(HealStep("cluster healthy with one leader", False, str(exc)))
        journal.compact()
    return steps


# -- listing --------------------------------------------------------------------------------
def faults_table(found: Iterable[Active], now: float | None = None) -> Table:
    """``invoke faults``: id, kind, target, since (local time and how long ago), what."""
    now = time.time() if now is None else now
    table = Table(title="active faults", title_justify="left")
    for column in ("id", "kind", "target", "since", "what"):
        table.add_column(column, overflow="fold")
    for fault in found:
        since = time.strftime("%H:%M:%S", time.localtime(fault.since))
        table.add_row(fault.id, fault.kind, fault.target,
                      f"{since} ({_ago(now - fault.since)})", fault.what)
    return table


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
