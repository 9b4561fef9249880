"""Processes a killed run left running for its lab, found by their environment and ended.

Every process the lab starts on this machine for one lab carries the lab's folder in its
environment: a fault's local process in ``$ETCDLAB_FAULT_LAB`` (:meth:`Faults.spawn`), a
playbook child and everything under it (``ansible-playbook``, its workers, their ``docker
exec``) in ``$ETCDLAB_RUN_LAB`` (:func:`etcdlab.lab.provision.run_in_child`). A playbook child
runs in a session of its own, so a kill of the run's process group misses it: after
``kill -9`` of a run during a settings change, its ``ansible-playbook`` went on for minutes
and could apply the setting after ``invoke heal`` had restored it. So ``heal`` (and a fault
typed by hand) first ends every such process — other than itself, its ancestors and its
own children — before it restores anything. The lab's lock is held meanwhile, so no live
run of the same lab can own them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

RUN_LAB_ENV = "ETCDLAB_RUN_LAB"
"""The lab's folder, in the environment of every playbook child and what it starts."""
FAULT_LAB_ENV = "ETCDLAB_FAULT_LAB"
"""The lab's folder, in the environment of every local process a fault starts (the same
name as :data:`etcdlab.faults.FAULT_LAB_ENV`)."""
MARKS = (RUN_LAB_ENV, FAULT_LAB_ENV)


def marked(environ: bytes, folder: str) -> bool:
    """Whether a ``/proc/PID/environ`` block names ``folder`` (or a folder in it) in a mark."""
    for variable in environ.split(b"\0"):
        name, _, value = variable.partition(b"=")
        if name.decode(errors="replace") in MARKS:
            text = value.decode(errors="replace")
            if text == folder or text.startswith(folder.rstrip("/") + "/"):
                return True
    return False


def _parent(pid: int, proc: Path) -> int | None:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 else None


def _alive(pid: int, proc: Path) -> bool:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] not in ("Z", "X")


def lab_processes(folder: Path | str, proc: Path = Path("/proc"),
                  me: int | None = None) -> list[int]:
    """Pids of live processes marked with this lab's folder, other than ``me`` (this
    process), its ancestors and its descendants (``me=0``: every one, as another process
    would see them)."""
    me = os.getpid() if me is None else me
    wanted = str(folder)
    found: dict[int, int | None] = {}
    parents: dict[int, int | None] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        parents[pid] = _parent(pid, proc)
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marked(environ, wanted) and _alive(pid, proc):
            found[pid] = parents[pid]
    own = _lineage(me, parents)
    return sorted(pid for pid in found if pid not in own and not _descends(pid, me, parents))


def _lineage(pid: int, parents: dict[int, int | None]) -> set[int]:
    seen = set()
    while pid and pid not in seen:
        seen.add(pid)
        pid = parents.get(pid) or 0
    return seen


def _descends(pid: int, ancestor: int, parents: dict[int, int | None]) -> bool:
    return ancestor in _lineage(pid, parents) - {pid}


def end_lab_processes(folder: Path | str, timeout: float = 10.0,
                      proc: Path = Path("/proc")) -> list[int]:
    """SIGKILL every process :func:`lab_processes` finds, until none is left; their pids.

    Killed all at once (a playbook child and its ``ansible-playbook`` alike), then found
    again, so that a process one of them started in between is ended too.
    """
    ended: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = lab_processes(folder, proc)
        if not pids:
            return ended
        if time.monotonic() > deadline:
            raise OSError(f"processes of the lab still alive: {', '.join(map(str, pids))}")
        _kill(pids)
        ended += [pid for pid in pids if pid not in ended]
        time.sleep(0.05)


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def describe(pids: list[int]) -> str:
    """What :func:`end_lab_processes` did, for a heal table ("" when nothing)."""
    return f"ended pid {', '.join(map(str, pids))}" if pids else ""
