"""The fault journal: every undo is written down before its fault is applied.

``.lab/<lab>/journal.jsonl`` holds one JSON line per event: ``begin`` (a fault or setting
change is about to be applied: what it is and what undoing it needs) and ``done`` (it was
undone). Each line is flushed and fsync'd before the caller goes on, so the journal
survives a SIGKILL of the process that applied the fault; a torn last line is ignored.
An entry that was begun and never done is *open*: :func:`replay` (``invoke heal``, and the
runner between an experiment's ``run`` and ``check``) undoes every open entry through the
handler for its kind, carries on past a handler that fails, and marks each success done.

Pure apart from the file: the handlers come from :mod:`etcdlab.faults`, which knows the lab.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_FILE = "journal.jsonl"

HEAL_ORDER = ("partition", "ntp-cut", "etcd", "etcd-clock", "local-process", "node-agent",
              "chronyd", "settings", "run")
"""The order replay undoes kinds in: the network first (nothing else can be reached across
a partition), then processes, clocks, settings (they need a healthy cluster), and last the
record of an interrupted run, whose result is finalised once the lab is whole again."""


@dataclass(frozen=True)
class Entry:
    """One journalled fault: its kind, a sentence for people, and what its undo needs."""

    id: str
    kind: str
    description: str
    data: Mapping[str, Any] = field(default_factory=dict)
    pid: int = 0
    wall: float = 0.0
    """When it was begun (time.time())."""
    monotonic_ns: int = 0
    """When it was begun, on this machine's monotonic clock (the histories' time base)."""


@dataclass(frozen=True)
class HealStep:
    """What one heal step did: ``ok`` False means it is still broken; ``idle`` True that it
    found nothing left to undo (a process that had already ended)."""

    what: str
    ok: bool
    detail: str = ""
    idle: bool = False


class Idle(str):
    """What an undo handler returns when it found nothing left to undo."""


class Journal:
    """Append-only journal of one lab (a JSON-lines file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def begin(self, kind: str, description: str, **data: Any) -> Entry:
        """Write down a fault before it is applied; returns its entry."""
        entry = Entry(id=uuid.uuid4().hex[:12], kind=kind, description=description,
                      data=data, pid=os.getpid(), wall=time.time(),
                      monotonic_ns=time.monotonic_ns())
        self._append({"op": "begin", "id": entry.id, "kind": kind, "description": description,
                      "data": data, "pid": entry.pid, "wall": entry.wall,
                      "monotonic_ns": entry.monotonic_ns})
        return entry

    def done(self, entry: Entry | str, outcome: str = "undone") -> None:
        """Mark an entry undone."""
        entry_id = entry if isinstance(entry, str) else entry.id
        self._append({"op": "done", "id": entry_id, "outcome": outcome, "wall": time.time(),
                      "monotonic_ns": time.monotonic_ns()})

    def open_entries(self, kind: str | None = None, **match: Any) -> list[Entry]:
        """Entries begun and not done, oldest first; optionally of one kind and data."""
        return [e for e in self._read_open() if (kind is None or e.kind == kind)
                and all(e.data.get(k) == v for k, v in match.items())]

    def close(self, kind: str, outcome: str = "undone", **match: Any) -> int:
        """Mark every open entry of ``kind`` (and matching data) done; how many."""
        entries = self.open_entries(kind, **match)
        for entry in entries:
            self.done(entry, outcome)
        return len(entries)

    def windows(self) -> list[dict[str, Any]]:
        """Every fault with its begin and end (monotonic ns; end None while open)."""
        begun: dict[str, dict[str, Any]] = {}
        for record in self._records():
            if record.get("op") == "begin":
                begun[record["id"]] = {"id": record["id"], "kind": record.get("kind"),
                                       "description": record.get("description"),
                                       "begin_ns": record.get("monotonic_ns"), "end_ns": None}
            elif record.get("op") == "done" and record.get("id") in begun:
                begun[record["id"]]["end_ns"] = record.get("monotonic_ns")
        return list(begun.values())

    def compact(self) -> None:
        """Empty the journal when nothing in it is open (it only grows otherwise)."""
        if self.path.is_file() and not self._read_open():
            self.path.unlink(missing_ok=True)

    def _append(self, record: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, line.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill mid-write
            if isinstance(record, dict) and "id" in record:
                records.append(record)
        return records

    def _read_open(self) -> list[Entry]:
        entries: dict[str, Entry] = {}
        for record in self._records():
            if record.get("op") == "begin":
                entries[record["id"]] = Entry(
                    id=record["id"], kind=str(record.get("kind")),
                    description=str(record.get("description", "")),
                    data=record.get("data") or {}, pid=int(record.get("pid") or 0),
                    wall=float(record.get("wall") or 0.0),
                    monotonic_ns=int(record.get("monotonic_ns") or 0))
            elif record.get("op") == "done":
                entries.pop(record["id"], None)
        return list(entries.values())


Undo = Callable[[Entry], str]


def replay(journal: Journal, handlers: Mapping[str, Undo],
           keep: Iterable[str] = ()) -> list[HealStep]:
    """Undo every open entry, in :data:`HEAL_ORDER` (newest first within a kind).

    Entries whose ids are in ``keep`` are left open and alone.
    A handler returns what it did; one that raises leaves its entry open and replay goes on
    with the next. KeyboardInterrupt is not caught: what was not undone stays open for the
    next ``invoke heal``.
    """
    order = {kind: index for index, kind in enumerate(HEAL_ORDER)}
    kept = set(keep)
    entries = [entry for entry in journal.open_entries() if entry.id not in kept]
    position = {entry.id: index for index, entry in enumerate(entries)}
    entries.sort(key=lambda e: (order.get(e.kind, len(order)), -position[e.id]))
    steps = []
    for entry in entries:
        handler = handlers.get(entry.kind)
        if handler is None:
            steps.append(HealStep(entry.description, False, f"no undo for kind {entry.kind!r}"))
            continue
        try:
            detail = handler(entry)
        except Exception as exc:  # noqa: BLE001 - one failing undo must not stop the others
            steps.append(HealStep(entry.description, False, f"{type(exc).__name__}: {exc}"))
            continue
        journal.done(entry, "healed")
        steps.append(HealStep(entry.description, True, detail, idle=isinstance(detail, Idle)))
    return steps
