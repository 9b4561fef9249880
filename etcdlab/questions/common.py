"""Measurement helpers several experiments share."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import grpc
from etcd3 import etcdrpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import close_all, member, open_members
from etcdlab.lab.cluster import Cluster
from etcdlab.polling import poll_until  # also re-exported: the experiments import it from here

T = TypeVar("T")


def member_hashes(cluster: Cluster, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every member's KV hash at one revision (``etcdctl endpoint hashkv``).

    Asks for the hash at the leader's current revision, retrying while a member has not
    applied it yet, so equal hashes mean equal data up to that revision.
    """
    with member(cluster, cluster.names[0], timeout=5.0) as first:
        first.put("/etcdlab/hashkv/marker", str(time.time()))
    leader = cluster.leader()
    if leader is None:
        raise LabError("no leader to take the reference revision from")
    conns = open_members(cluster)
    try:
        revision = conns[leader].hash_kv().header.revision
        members = []
        for name, each in conns.items():
            deadline = time.monotonic() + timeout
            while True:
                try:
                    answer = each.hash_kv(revision)
                    break
                except grpc.RpcError as exc:
                    if time.monotonic() > deadline:
                        raise LabError(f"{name}: no hashkv at revision {revision}: "
                                       f"{exc.details()}") from None
                    time.sleep(0.2)
            members.append({"name": name, "revision": revision, "hash": answer.hash,
                            "current_revision": answer.header.revision,
                            "compact_revision": answer.compact_revision})
        return members
    finally:
        close_all(conns)


class PrefixWatch:
    """A bare gRPC watch on every key under a prefix, on one member.

    Calls ``on_event(event, real_time)`` for each event (an etcd ``mvccpb.Event``; the
    time is when this program received it), from the watch's own thread. Unlike the
    ``etcd3`` client's watcher it needs no client object and stops cleanly on
    :meth:`close`.
    """

    def __init__(self, cluster: Cluster, name: str, prefix: str,
                 on_event: Callable[[Any, float], None], timeout: float = 10.0) -> None:
        self.channel = cluster.channel(name)
        self.stub = etcdrpc.WatchStub(self.channel)
        self.prefix = prefix.encode()
        self.on_event = on_event
        self.stopping = threading.Event()
        self.created = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch {prefix}")
        self.thread.start()
        if not self.created.wait(timeout):
            self.close()
            raise LabError(f"{name}: the watch on {prefix} was not created in {timeout} s")

    def _requests(self) -> Iterator[Any]:
        end = self.prefix[:-1] + bytes([self.prefix[-1] + 1])
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
            key=self.prefix, range_end=end))
        self.stopping.wait()

    def _run(self) -> None:
        try:
            for answer in self.stub.Watch(self._requests()):
                received = time.time()
                if answer.created:
                    self.created.set()
                for event in answer.events:
                    self.on_event(event, received)
        except grpc.RpcError as exc:
            if not self.stopping.is_set():
                self.error = f"{exc.code().name}: {exc.details()}"

    def close(self) -> None:
        """Cancel the watch and close its channel."""
        self.stopping.set()
        self.channel.close()
        self.thread.join(5)


def run_together(count: int, work: Callable[[int], T]) -> tuple[list[T], float]:
    """Run ``work(0) .. work(count - 1)`` in threads released at the same moment.

    Returns their results in index order and the wall-clock seconds from the release
    until the last one finished (thread start-up is not counted).
    """
    release = threading.Barrier(count + 1)
    results: list[Any] = [None] * count

    def one(index: int) -> None:
        release.wait()
        results[index] = work(index)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    release.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - began


class Stopped(Exception):
    """Raised inside a :func:`run_at_once` work when it was told to stop."""


def run_at_once(works: Mapping[str, Callable[[threading.Event], None]]) -> None:
    """Run every work in a thread of its own, all at once, until all have ended.

    Each work gets a ``stop`` event and must check it between its steps (raising
    :class:`Stopped`, or returning). The first work that fails sets it for the others; so
    does an interrupt (Ctrl-C, SIGTERM) of the calling thread, which alone receives
    signals. Either way this returns or raises only once every thread has ended: no
    thread is still applying a fault when the runner heals the lab. The first failure
    (or the interrupt) is raised again here.
    """
    stop = threading.Event()
    failures: list[BaseException] = []
    lock = threading.Lock()

    ended = {name: threading.Event() for name in works}

    def one(name: str, work: Callable[[threading.Event], None]) -> None:
        try:
            work(stop)
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            with lock:
                failures.append(exc)
            stop.set()
        finally:
            ended[name].set()

    for name, work in works.items():
        threading.Thread(target=one, args=(name, work), daemon=True, name=name).start()
    # Events, not Thread.join: an interrupt inside join() can leave it believing the
    # thread has ended when it has not.
    try:
        for done in ended.values():
            while not done.wait(0.2):
                pass
    except BaseException:
        stop.set()
        for done in ended.values():
            done.wait()
        raise
    if failures:
        raise failures[0]


def current_leader(cluster: Cluster) -> tuple[str, int, int]:
    """(name, member id, term) of the leader a majority agrees on, and that knows it."""
    deadline = time.monotonic() + 30
    while True:
        name = cluster.wait_leader(timeout=max(0.1, deadline - time.monotonic()))
        status = cluster.raw_status(name)
        if status.leader == status.header.member_id:
            return name, status.leader, status.raftTerm
        time.sleep(0.1)


def member_names(cluster: Cluster) -> dict[int, str]:
    """Member id → node name."""
    with member(cluster, cluster.names[0], timeout=5.0) as first:
        return first.member_names()


class JsonLinesChild:
    """A child process started through ``faults`` (so journalled, and ended by heal) and
    the JSON lines it prints, each stamped with the real time it arrived (``real``): a
    local process, or with ``node`` a process in that node (its clock ``rate`` times as
    fast there, through the node's libfaketime; its argv carries ``NODE_AGENT_MARK``).

    Lines that are not JSON are kept apart (``other``: errors, tracebacks).
    """

    def __init__(self, faults: Any, argv: list[str], what: str, node: str | None = None,
                 rate: float = 1.0, stderr: Any = subprocess.STDOUT,
                 env: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self.lock = threading.Lock()
        env = {"PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = (
            faults.spawn(argv, what, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
            if node is None else faults.spawn_in_node(node, argv, what, rate=rate, env=env))
        self.reader = threading.Thread(target=self._read, daemon=True, name=what)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            real = time.time()
            try:
                record = json.loads(line)
            except ValueError:
                self.other.append(line.rstrip())
                continue
            with self.lock:
                self.events.append({**record, "real": real})

    def wait_for(self, kinds: str | Sequence[str], timeout: float) -> dict[str, Any] | None:
        """The first event whose ``event`` is one of ``kinds``, waiting up to ``timeout``
        (None then, or when the process ended without one)."""
        wanted = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        ended = False

        def found() -> dict[str, Any] | None:
            nonlocal ended
            # Whether it had ended is read before its events: once the process has exited
            # and the reader is done, no event can follow, so a None here is final.
            ended = self.process.poll() is not None and not self.reader.is_alive()
            with self.lock:
                event = next((e for e in self.events if e["event"] in wanted), None)
            return event

        event = poll_until(lambda: found() or ended, timeout)
        return event if isinstance(event, dict) else None

    def finish(self, timeout: float) -> str:
        """Wait for the process to exit (kill it after ``timeout``); the end of ``other``."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(5)
        return "\n".join(self.other)[-2000:]


def playbook_logger(ctx: Any) -> Callable[[str, dict[str, str]], None]:
    """A ``show`` callback for reconfigure: logs the tasks that changed or failed something."""
    def show(task: str, outcomes: dict[str, str]) -> None:
        notable = {host: o for host, o in outcomes.items() if o not in ("ok", "skipped")}
        if notable:
            ctx.log(f"  {task} " + "  ".join(f"{h} {o}" for h, o in sorted(notable.items())))
    return show


def zap_message(line: str, needle: str = "") -> tuple[float, str] | None:
    """(timestamp, message) of one line of etcd's zap JSON log, or None for a line that is
    not one or whose message lacks ``needle`` (checked on the raw line first: cheap)."""
    if needle not in line or not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    message = entry.get("msg", "")
    if needle not in message or "ts" not in entry:
        return None
    return datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp(), message


_RAFT_CHANGE = re.compile(r"became (pre-candidate|candidate|leader|follower) at term (\d+)")


def raft_state_changes(log_text: str, since: float, until: float | None = None
                       ) -> list[dict[str, Any]]:
    """etcd's raft state changes ("became candidate at term 14", …) from its zap JSON log,
    stamped in [since - 1 ms, until] (wall clock; the stamps have millisecond resolution):
    [{"at": seconds since the epoch, "state": …, "term": …}] in log order."""
    changes = []
    for line in log_text.splitlines():
        stamped = zap_message(line, "became")
        found = _RAFT_CHANGE.search(stamped[1]) if stamped else None
        if not found:
            continue
        at = stamped[0]
        if at >= since - 0.001 and (until is None or at <= until):
            changes.append({"at": at, "state": found.group(1), "term": int(found.group(2))})
    return changes
