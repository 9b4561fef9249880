"""``invoke watch``: the real cluster live, and what happens to it as an event log.

Three parts: what is polled (:class:`Snapshot`: each member's own Status answer through the
one transport, :mod:`etcdlab.etcd.transport`; health, chrony and alarms asked less often; the
probe writer's last outcome), what the fault journal says (:class:`JournalTail`: the
records written since the last look), and :class:`Detector`, which turns successive
snapshots and journal records into events — a pure function of them, unit-tested on
its own. The view draws the latest snapshot and the events; ``--json`` prints the events.

Each event is stamped with the time since the last fault the journal began ("+1.43 s"):
"node1: etcd crashed (SIGKILL)", "no leader", "node3 elected at term 12 — 1.43 s after the
crash", "writes acknowledged again after 1.47 s", "node2 rejoined, term 14".
"""

from __future__ import annotations

import json
import os
import select
import sys
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.unknown_fields import UnknownFieldSet
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

RAFT_APPLIED_INDEX_FIELD = 7
"""``raftAppliedIndex`` in etcd's StatusResponse (since v3.4): unknown to python3-etcd3's
older proto, so read from the unknown fields like ``dbSizeInUse``."""
REFRESH_S = 0.1
SLOW_POLL_S = 2.0
PROBE_KEY = "/etcdlab/watch/probe"
REJOIN_AFTER_S = 1.0
"""A member away (not answering, or not following the leader) at least this long
"rejoins" when it follows the leader again; shorter gaps (every follower for a moment
after an election) are not events."""
WIDTH = 80


# -- what is polled -----------------------------------------------------------------------
@dataclass(frozen=True)
class MemberState:
    """One member as one poll saw it (None: not known)."""

    name: str
    up: bool
    member_id: int = 0
    leader_id: int = 0
    term: int | None = None
    index: int | None = None
    applied: int | None = None
    db_size: int | None = None
    healthy: bool | None = None
    offset_ms: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """Every member at one moment (``at``: this machine's monotonic clock, seconds)."""

    at: float
    members: tuple[MemberState, ...]
    probe_ok: bool | None = None
    alarms: tuple[str, ...] = ()

    def leader(self) -> MemberState | None:
        """The answering member that says it leads, in the highest term (an old leader cut
        off keeps saying so in its own, older term for a while)."""
        claims = [m for m in self.members if m.up and m.member_id and m.leader_id == m.member_id]
        return max(claims, key=lambda m: m.term or 0) if claims else None

    def member(self, name: str) -> MemberState | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True)
class Record:
    """One line of the fault journal: a fault begun or done (``at``: monotonic seconds)."""

    op: str
    id: str
    at: float
    kind: str = ""
    description: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_line(cls, record: Mapping[str, Any]) -> Record:
        return cls(op=str(record.get("op")), id=str(record.get("id")),
                   at=int(record.get("monotonic_ns") or 0) / 1e9,
                   kind=str(record.get("kind") or ""),
                   description=str(record.get("description") or ""),
                   data=record.get("data") or {})


@dataclass(frozen=True)
class Event:
    """One line of the log: ``since_fault`` is the time since the last fault began."""

    at: float
    kind: str
    text: str
    since_fault: float | None = None
    member: str | None = None
    term: int | None = None

    def as_json(self, wall: float) -> str:
        return json.dumps({"wall": round(wall, 3), **{k: v for k, v in asdict(self).items()
                                                     if k != "at"}}, sort_keys=True)


# -- from snapshots and journal records to events (pure) ----------------------------------
_FAULT_WORD = {"crashed": "crash", "stopped": "stop", "paused": "pause", "cut off": "cut",
               "dropped": "cut", "|": "split", "NTP": "NTP cut", "chronyd": "clock change",
               "settings": "settings change"}


def fault_text(record: Record) -> str:
    """A journal entry as a log line: "node1: etcd crashed (SIGKILL)" → "node1 crashed
    (SIGKILL)", "partition: node2 cut off" → "node2 cut off"."""
    text = record.description
    if record.kind == "etcd":
        text = text.replace(": etcd ", " ", 1)
    elif record.kind == "partition":
        text = text.removeprefix("partition: ")
    return text


def fault_word(record: Record) -> str:
    """What "after the …" says of a fault: crash, stop, pause, cut, split, …"""
    for needle, word in _FAULT_WORD.items():
        if needle in record.description or needle == record.kind:
            return word
    return record.kind or "fault"


def fault_members(record: Record, names: Iterable[str]) -> list[str]:
    """The members a fault is on (for the view's faults column)."""
    tag = record.data.get("manual")
    if isinstance(tag, Mapping) and tag.get("member"):
        return str(tag["member"]).split(",")
    if record.data.get("node"):
        return [str(record.data["node"])]
    text = fault_text(record)
    named = [n for n in names if text.startswith(f"{n} ") or text.startswith(f"{n},")]
    return named or [str(n) for n in record.data.get("nodes") or []]


class Detector:
    """Successive snapshots and journal records in, events out (no I/O, no clock)."""

    def __init__(self) -> None:
        self.previous: Snapshot | None = None
        self.last_fault_at: float | None = None
        self.last_fault_word = ""
        self.open: dict[str, Record] = {}
        self.leader: tuple[str, int] | None = None
        self.probe_failing_since: float | None = None
        self.away_since: dict[str, float] = {}
        self.announced_term: dict[str, int] = {}

    def history(self, records: Iterable[Record]) -> None:
        """The journal as it was when watching began: its open faults and the last fault
        begun (what the stamps count from), no events."""
        for record in records:
            self._track(record)
            if record.op == "begin" and record.kind != "run":
                self.last_fault_at, self.last_fault_word = record.at, fault_word(record)

    def _track(self, record: Record) -> None:
        if record.op == "begin":
            self.open[record.id] = record
        elif record.op == "done":
            self.open.pop(record.id, None)

    def faults_on(self, names: Iterable[str]) -> dict[str, list[str]]:
        """Each member's open faults, as short words (crash, cut, clock change, …)."""
        names = list(names)
        on: dict[str, list[str]] = {name: [] for name in names}
        for record in self.open.values():
            if record.kind == "run":
                continue
            for name in fault_members(record, names):
                on.setdefault(name, []).append(fault_word(record))
        return on

    def step(self, snapshot: Snapshot, records: Iterable[Record] = ()) -> list[Event]:
        """The events between the previous snapshot and this one."""
        events = [self._journal_event(record) for record in records]
        events = [e for e in events if e is not None]
        events += self._leader_events(snapshot)
        events += self._member_events(snapshot)
        events += self._probe_events(snapshot)
        events += self._alarm_events(snapshot)
        self.previous = snapshot
        return events

    def _stamp(self, at: float) -> float | None:
        return None if self.last_fault_at is None else max(0.0, at - self.last_fault_at)

    def _event(self, at: float, kind: str, text: str, member: str | None = None,
               term: int | None = None) -> Event:
        return Event(at, kind, text, self._stamp(at), member, term)

    def _journal_event(self, record: Record) -> Event | None:
        begun = self.open.get(record.id)
        self._track(record)
        if record.op == "begin":
            if record.kind == "run":
                return self._event(record.at, "run", record.description)
            self.last_fault_at = record.at
            self.last_fault_word = fault_word(record)
            return self._event(record.at, "fault", fault_text(record))
        if record.op == "done" and begun is not None:
            what = "run ended" if begun.kind == "run" else "healed"
            return self._event(record.at, what, f"{what}: {fault_text(begun)}")
        return None

    def _leader_events(self, snapshot: Snapshot) -> list[Event]:
        leader = snapshot.leader()
        now = (leader.name, leader.term or 0) if leader else None
        if now is None and self.previous is None:
            return [self._event(snapshot.at, "no-leader", "no leader")]
        if now == self.leader:
            return []
        before, self.leader = self.leader, now
        if now is None:
            return [self._event(snapshot.at, "no-leader", "no leader")]
        name, term = now
        if self.previous is None:
            return [self._event(snapshot.at, "leader", f"{name} is the leader, term {term}",
                                name, term)]
        text = f"{name} elected at term {term}"
        if before is not None and before[0] == name:
            text = f"{name} leads again at term {term}"
        since = self._stamp(snapshot.at)
        if since is not None:
            text += f" — {since:.2f} s after the {self.last_fault_word}"
        return [self._event(snapshot.at, "elected", text, name, term)]

    def _member_events(self, snapshot: Snapshot) -> list[Event]:
        events = []
        leader = snapshot.leader()
        previous = self.previous
        faulted = {n for n, words in self.faults_on(m.name for m in snapshot.members).items()
                   if words}
        for member in snapshot.members:
            before = previous.member(member.name) if previous else None
            if before is not None and before.up and not member.up and \
                    member.name not in faulted:
                events.append(self._event(snapshot.at, "down", f"{member.name} not answering",
                                          member.name))
            if member.up and (member.term or 0) > (self.announced_term.get(member.name) or 0):
                self.announced_term[member.name] = member.term or 0
                if before is not None and not member.leader_id and leader is not None and \
                        (member.term or 0) > (leader.term or 0):
                    events.append(self._event(
                        snapshot.at, "campaign",
                        f"{member.name} campaigns at term {member.term} (no leader it knows)",
                        member.name, member.term))
            following = (leader is not None and member.up and member.leader_id ==
                         leader.member_id and member.term == leader.term)
            if leader is None:
                continue  # during an election no one follows anyone: not "away"
            if not following:
                self.away_since.setdefault(member.name, snapshot.at)
                continue
            since = self.away_since.pop(member.name, None)
            if since is not None and snapshot.at - since >= REJOIN_AFTER_S and previous:
                events.append(self._event(snapshot.at, "rejoined",
                                          f"{member.name} rejoined, term {member.term}",
                                          member.name, member.term))
        return events

    def _probe_events(self, snapshot: Snapshot) -> list[Event]:
        ok = snapshot.probe_ok
        if ok is None:
            return []
        if not ok and self.probe_failing_since is None:
            self.probe_failing_since = snapshot.at
            return [self._event(snapshot.at, "writes-failing", "writes not acknowledged")]
        if ok and self.probe_failing_since is not None:
            gap = snapshot.at - self.probe_failing_since
            self.probe_failing_since = None
            return [self._event(snapshot.at, "writes-ok",
                                f"writes acknowledged again after {gap:.2f} s")]
        return []

    def _alarm_events(self, snapshot: Snapshot) -> list[Event]:
        before = set(self.previous.alarms) if self.previous else set(snapshot.alarms)
        now = set(snapshot.alarms)
        events = [self._event(snapshot.at, "alarm", f"alarm raised: {a}") for a in
                  sorted(now - before)]
        events += [self._event(snapshot.at, "alarm", f"alarm cleared: {a}") for a in
                   sorted(before - now)]
        return events


# -- drawing (80 columns) -------------------------------------------------------------------
def _size(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 10 * 1024**2:
        return f"{size / 1024:.0f}K"
    return f"{size / 1024**2:.0f}M" if size < 10 * 1024**3 else f"{size / 1024**3:.0f}G"


def _role(member: MemberState, leader: MemberState | None) -> Text:
    if not member.up:
        return Text("down", style="bold red")
    if leader is not None and member.name == leader.name:
        return Text("leader", style="bold green")
    if not member.leader_id:
        return Text("no leader", style="yellow")
    return Text("follower")


def _health(member: MemberState) -> Text:
    if not member.up:
        return Text("-", style="dim")
    if member.healthy is None:
        return Text("…", style="dim")
    return Text("ok", style="green") if member.healthy else Text("unhealthy", style="red")


def _offset(member: MemberState) -> str:
    return "-" if member.offset_ms is None or not member.up else f"{member.offset_ms:+.2f}ms"


def _maybe(value: Any) -> str:
    return "-" if value is None else str(value)


FAULTS_CHARS = 16  # what 80 columns leave the faults column beside a lab's numbers


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def stamp(event: Event) -> str:
    return f"{'-':>8}" if event.since_fault is None else f"+{event.since_fault:6.2f}s"


def render(snapshot: Snapshot | None, events: Iterable[Event], faults_on: Mapping[str, list[str]],
           title: str, lines: int = 12) -> Group:
    """The view: a header, one row per member, the newest ``lines`` events."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, expand=False,
                  header_style="bold underline")
    for column, justify in (("member", "left"), ("role", "left"), ("term", "right"),
                            ("index", "right"), ("applied", "right"), ("health", "left"),
                            ("db", "right"), ("offset", "right"), ("faults", "left")):
        # Only the faults column gives way when the line is too long (its cells are cut
        # with an ellipsis, never wrapped); the numbers keep their width.
        table.add_column(column, justify=justify, no_wrap=column != "faults",
                         overflow="ellipsis")
    if snapshot is not None:
        leader = snapshot.leader()
        for m in snapshot.members:
            table.add_row(m.name, _role(m, leader), _maybe(m.term), _maybe(m.index),
                          _maybe(m.applied), _health(m), _size(m.db_size), _offset(m),
                          Text(_cut(", ".join(faults_on.get(m.name, [])), FAULTS_CHARS)
                               or "-", style="yellow" if faults_on.get(m.name) else "dim"))
    log = [Text(f"{stamp(e)}  {e.text}", no_wrap=True, overflow="ellipsis")
           for e in list(events)[-lines:]]
    header = Text(title, style="bold", no_wrap=True, overflow="ellipsis")
    footer = Text("time since the last fault · q or Ctrl-C quits", style="dim", no_wrap=True)
    return Group(header, table, Text("events", style="bold"), *log, footer)


# -- polling and the loop (thin) --------------------------------------------------------------
class JournalTail:
    """The journal's records written since the last look (the file may be emptied)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def read(self) -> list[Record]:
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        if len(lines) < self.seen:  # compacted: a new file
            self.seen = 0
        new = lines[self.seen:]
        records = []
        for index, line in enumerate(new):
            try:
                record = json.loads(line)
            except ValueError:
                if index == len(new) - 1:  # being written: read it next time
                    new = new[:index]
                    break
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(Record.from_line(record))
        self.seen += len(new)
        return records


class Poller:
    """Status of every member each poll; health, chrony and alarms every few seconds in a
    thread of their own; with ``probe``, a writer that tries one put every poll."""

    def __init__(self, cluster: Any, probe: bool = False) -> None:
        from etcdlab.etcd import transport

        self.cluster = cluster
        self.names = list(cluster.names)
        self.members = {n: transport.member(cluster, n, timeout=0.3) for n in self.names}
        self.pool = ThreadPoolExecutor(max_workers=len(self.names) + 1)
        self.slow: dict[str, tuple[bool | None, float | None]] = {}
        self.alarms: tuple[str, ...] = ()
        self.stop = threading.Event()
        self.probe = probe
        self.probe_ok: bool | None = None
        self._threads = [threading.Thread(target=self._slow_loop, daemon=True)]
        if probe:
            self._threads.append(threading.Thread(target=self._probe_loop, daemon=True))
        self._leader = self.names[0]
        for thread in self._threads:
            thread.start()

    def poll(self) -> Snapshot:
        states = list(self.pool.map(self._member_state, self.names))
        leader = next((s for s in states if s.up and s.member_id and
                       s.leader_id == s.member_id), None)
        if leader is not None:
            self._leader = leader.name
        return Snapshot(time.monotonic(), tuple(states), self.probe_ok, self.alarms)

    def _member_state(self, name: str) -> MemberState:
        healthy, offset = self.slow.get(name, (None, None))
        try:
            status = self.members[name].status()
        except Exception:  # noqa: BLE001 - a member that does not answer is down
            return MemberState(name, False, offset_ms=offset)
        applied = next((f.data for f in UnknownFieldSet(status)
                        if f.field_number == RAFT_APPLIED_INDEX_FIELD and f.wire_type == 0),
                       None)
        return MemberState(name, True, status.header.member_id, status.leader, status.raftTerm,
                           status.raftIndex, applied, status.dbSize, healthy, offset)

    def _slow_loop(self) -> None:
        while not self.stop.is_set():
            for name in self.names:
                if self.stop.is_set():
                    return
                try:
                    healthy = self.cluster.healthy(name, timeout=0.5)
                    chrony = self.cluster.chrony_state(name)
                    self.slow[name] = (healthy, chrony.offset_ms)
                except Exception:  # noqa: BLE001 - shown as unknown, tried again
                    self.slow[name] = (None, None)
            self.alarms = self._read_alarms()
            self.stop.wait(SLOW_POLL_S)

    def _read_alarms(self) -> tuple[str, ...]:
        for name in [self._leader, *self.names]:
            try:
                return tuple(sorted({alarm for _id, alarm in self.members[name].alarms(
                    timeout=0.5)}))
            except Exception:  # noqa: BLE001 - try the next member
                continue
        return self.alarms

    def _probe_loop(self) -> None:
        count = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.members[self._leader].put(PROBE_KEY, str(count), timeout=1.0,
                                               require_leader=True)
                self.probe_ok = True
            except Exception:  # noqa: BLE001 - refused or timed out: not acknowledged
                self.probe_ok = False
            count += 1
            self.stop.wait(max(0.0, REFRESH_S - (time.monotonic() - started)))

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.probe:
            for member in self.members.values():
                with suppress(Exception):
                    member.delete(PROBE_KEY, timeout=1.0)
                    break
        self.pool.shutdown(wait=True)
        for member in self.members.values():
            member.close()


@contextmanager
def keys(stdin: Any) -> Iterator[Any]:
    """Single key presses from a terminal (restored on the way out); None when not one."""
    if not stdin.isatty():
        yield None
        return
    descriptor = stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    tty.setcbreak(descriptor)
    try:
        yield stdin
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def _quit_pressed(stdin: Any) -> bool:
    if stdin is None:
        return False
    ready, _, _ = select.select([stdin], [], [], 0)
    return bool(ready) and os.read(stdin.fileno(), 16).lower().startswith(b"q")


def run(cluster: Any, journal_path: Path, out: Console, as_json: bool = False,
        probe: bool = False, seconds: float = 0.0) -> int:
    """Watch until q, Ctrl-C or ``seconds``; returns how many events were seen."""
    from rich.live import Live

    tail = JournalTail(journal_path)
    detector = Detector()
    detector.history(tail.read())
    poller = Poller(cluster, probe)
    events: deque[Event] = deque(maxlen=200)
    seen = 0
    deadline = time.monotonic() + seconds if seconds > 0 else None
    title = (f"etcdlab watch · {cluster.config.network} · {len(poller.names)} members"
             f"{' · probe on' if probe else ''}")

    def tick() -> Snapshot:
        nonlocal seen
        snapshot = poller.poll()
        new = detector.step(snapshot, tail.read())
        seen += len(new)
        events.extend(new)
        if as_json:
            offset = time.time() - time.monotonic()
            for event in new:
                print(event.as_json(event.at + offset), flush=True)
        return snapshot

    def view(snapshot: Snapshot) -> Group:
        lines = max(5, out.size.height - len(poller.names) - 8)
        return render(snapshot, events, detector.faults_on(poller.names),
                      f"{title} · {time.strftime('%H:%M:%S')}", lines)

    try:
        if as_json:
            while deadline is None or time.monotonic() < deadline:
                started = time.monotonic()
                tick()
                time.sleep(max(0.0, REFRESH_S - (time.monotonic() - started)))
            return seen
        narrow = Console(width=min(WIDTH, out.width), height=out.size.height,
                         force_terminal=out.is_terminal, highlight=False)
        with keys(sys.stdin) as stdin, Live(view(tick()), console=narrow,
                                           refresh_per_second=10, screen=False,
                                           transient=False) as live:
            while deadline is None or time.monotonic() < deadline:
                started = time.monotonic()
                live.update(view(tick()))
                if _quit_pressed(stdin):
                    break
                time.sleep(max(0.0, REFRESH_S - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        poller.close()
    return seen
