"""A naming / membership registry on etcd: leases for liveness, snapshot-then-watch for views.

An instance of service NAME registers itself as ``/services/NAME/INSTANCE_ID`` (JSON:
endpoint, metadata, registered_at) under a lease of TTL seconds, keeps the lease alive
every TTL/3 in the background, registers again if the lease was lost, and revokes it on
a clean shutdown, so that the key disappears at once. A crashed instance stops its
keepalives and etcd deletes its key when the lease expires, about one TTL later.

A watcher builds a :class:`MembershipView`: a snapshot (a range read and its revision),
then a watch from revision + 1, so no change is missed or applied twice. When etcd has
compacted the revision the watch needs, the view resynchronises from a fresh snapshot;
when the connection is lost it resumes on another member from the last revision it
applied.

The view is pure (no I/O): :meth:`MembershipView.apply_snapshot` and
:meth:`MembershipView.apply_events` take recorded data, drop events already applied
(by revision) and record revision-based evidence of missed ones, so the logic is
unit-tested against recorded event sequences.

Transport: bare gRPC through python3-etcd3's generated stubs (``etcd3.etcdrpc``), not its
client. The client refuses an endpoint for minutes after one timeout ("Trying to use a
failed node"), which across a leader crash would strand a single-endpoint client, and
its watcher thread never tells callbacks that the stream broke (its error path calls
``six``, which python3-etcd3 0.13 does not import). :class:`Endpoints` instead moves to
the next member after a failure and never blacklists one.

``python -m etcdlab.etcd.registry serve NAME ID ENDPOINT --etcd IP:PORT,...`` runs one
instance as its own process (the membership experiment SIGKILLs such processes) and
prints what happens to its registration as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from etcd3 import etcdrpc
from etcd3.etcdrpc import kv_pb2

from etcdlab.errors import LabError
from etcdlab.etcd.transport import REQUIRE_LEADER, open_channel

SERVICES_PREFIX = "/services/"
# etcd cancels a watch stream carrying this metadata when its member has no leader, so
# a watcher on a member cut off from the cluster moves elsewhere instead of going stale.
RETRY_PAUSE_S = 0.2

EventHandler = Callable[..., None]
ChangeHandler = Callable[[list["Change"]], None]


class RegistryError(LabError):
    """etcd could not be reached (or did not answer) in time for a registry operation."""


# -- keys ------------------------------------------------------------------------------


def service_prefix(name: str) -> str:
    """``/services/NAME/``: every instance key of the service starts with it."""
    if not name or "/" in name:
        raise LabError(f"a service name must be non-empty and contain no '/': {name!r}")
    return f"{SERVICES_PREFIX}{name}/"


def instance_key(name: str, instance_id: str) -> str:
    """The key an instance registers under."""
    if not instance_id or "/" in instance_id:
        raise LabError(f"an instance id must be non-empty and contain no '/': {instance_id!r}")
    return service_prefix(name) + instance_id


def prefix_end(prefix: bytes) -> bytes:
    """The range end that makes a range read or watch cover every key starting with prefix."""
    end = bytearray(prefix)
    for index in range(len(end) - 1, -1, -1):
        if end[index] < 0xFF:
            end[index] += 1
            return bytes(end[: index + 1])
    return b"\0"  # all bytes 0xff: etcd reads "\0" as "to the end of the key space"


# -- the pure view -----------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One key change as a watch (or, for ``put``, a snapshot) delivers it.

    ``revision`` is the revision of the change (the key's mod_revision; for a delete,
    the revision of the delete).
    """

    kind: str  # "put" | "delete"
    key: str
    revision: int
    create_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0

    @classmethod
    def from_pb(cls, event: Any) -> Event:
        """From an ``mvccpb.Event``."""
        kv = event.kv
        kind = "delete" if event.type == kv_pb2.Event.DELETE else "put"
        return cls(kind, kv.key.decode(), kv.mod_revision, kv.create_revision, kv.version,
                   bytes(kv.value), kv.lease)

    @classmethod
    def from_kv(cls, kv: Any) -> Event:
        """A snapshot entry (an ``mvccpb.KeyValue`` from a range read) as the put it is."""
        return cls("put", kv.key.decode(), kv.mod_revision, kv.create_revision, kv.version,
                   bytes(kv.value), kv.lease)


@dataclass(frozen=True)
class Instance:
    """One registered instance as the view holds it."""

    instance_id: str
    endpoint: str
    metadata: Mapping[str, Any]
    registered_at: float | None
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_event(cls, instance_id: str, event: Event) -> Instance:
        """Decode the registered JSON value; a value that is not JSON is its endpoint."""
        try:
            data = json.loads(event.value.decode() or "{}")
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict):
            data = {"endpoint": event.value.decode(errors="replace")}
        registered_at = data.get("registered_at")
        return cls(
            instance_id=instance_id,
            endpoint=str(data.get("endpoint", "")),
            metadata=dict(data.get("metadata") or {}),
            registered_at=float(registered_at) if registered_at is not None else None,
            create_revision=event.create_revision,
            mod_revision=event.revision,
            version=event.version,
            lease=event.lease,
        )


@dataclass(frozen=True)
class Change:
    """What a snapshot or an event changed in the view.

    ``via`` is "snapshot" (the first one), "event" (a watch event) or "resync" (a later
    snapshot found it: the events that carried it were compacted away, i.e. missed).
    """

    kind: str  # "join" | "update" | "leave"
    instance_id: str
    revision: int
    via: str
    instance: Instance | None = None

    @property
    def op(self) -> str:
        """The etcd operation behind the change: "put" (join, update) or "delete" (leave)."""
        return "delete" if self.kind == "leave" else "put"


@dataclass
class MembershipView:
    """The members of one service, kept from a snapshot plus the watch events after it.

    Pure: no I/O. ``revision`` is the last revision the view reflects; a watch must
    resume at ``revision + 1``. An event at or below it was already applied (or was in
    the snapshot) and is dropped as a duplicate. Events that contradict what the view
    knows — an update of a key it never saw created, a re-creation of a key it never saw
    deleted, a skipped version, a delete of an unknown key — are evidence of a missed
    event and are recorded in ``anomalies`` (the event is applied anyway).
    """

    prefix: str
    members: dict[str, Instance] = field(default_factory=dict)
    revision: int = 0
    snapshot_revision: int | None = None
    duplicates: int = 0
    events_applied: int = 0
    resyncs: int = 0
    resync_changes: int = 0
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    # Keys already applied at ``revision`` (one transaction can change several keys at
    # one revision); None means all of them (the snapshot was taken at that revision).
    _keys_at_revision: set[str] | None = None

    @property
    def resume_revision(self) -> int:
        """The revision a watch must start from."""
        return self.revision + 1

    def instance_id(self, key: str) -> str | None:
        """The instance id of a key of this service, or None for any other key."""
        if not key.startswith(self.prefix):
            return None
        rest = key[len(self.prefix):]
        return rest if rest and "/" not in rest else None

    def apply_snapshot(self, entries: Iterable[Event], revision: int) -> list[Change]:
        """Replace the view by a range read taken at ``revision``; return the difference.

        The first snapshot's changes come ``via="snapshot"``; a later one is a resync
        (after compaction) and its changes are the events the view missed.
        """
        if revision < self.revision:
            raise ValueError(f"snapshot at revision {revision} is older than the view "
                             f"(revision {self.revision})")
        first = self.snapshot_revision is None
        fresh: dict[str, Instance] = {}
        for entry in entries:
            instance_id = self.instance_id(entry.key)
            if instance_id is not None and entry.kind == "put":
                fresh[instance_id] = Instance.from_event(instance_id, entry)
        via = "snapshot" if first else "resync"
        changes = []
        for instance_id, old in self.members.items():
            if instance_id not in fresh:
                changes.append(Change("leave", instance_id, revision, via, old))
        for instance_id, new in fresh.items():
            old = self.members.get(instance_id)
            if old is None:
                changes.append(Change("join", instance_id, revision, via, new))
            elif (old.create_revision, old.mod_revision) != (new.create_revision,
                                                               new.mod_revision):
                kind = "update" if old.create_revision == new.create_revision else "join"
                if kind == "join":  # deleted and created again while we were away
                    changes.append(Change("leave", instance_id, revision, via, old))
                changes.append(Change(kind, instance_id, revision, via, new))
        self.members = fresh
        self.revision = revision
        self._keys_at_revision = None
        if first:
            self.snapshot_revision = revision
        else:
            self.resyncs += 1
            self.resync_changes += len(changes)
        return changes

    def is_duplicate(self, event: Event) -> bool:
        """Whether the view already reflects this event (by revision, then key)."""
        if event.revision < self.revision:
            return True
        if event.revision == self.revision:
            return self._keys_at_revision is None or event.key in self._keys_at_revision
        return False

    def apply_events(self, events: Iterable[Event]) -> list[Change]:
        """Apply watch events in order; duplicates are dropped and counted."""
        if self.snapshot_revision is None:
            raise ValueError("apply a snapshot before events")
        changes: list[Change] = []
        for event in events:
            if self.is_duplicate(event):
                self.duplicates += 1
                continue
            if event.revision > self.revision:
                self.revision = event.revision
                self._keys_at_revision = set()
            assert self._keys_at_revision is not None
            self._keys_at_revision.add(event.key)
            self.events_applied += 1
            instance_id = self.instance_id(event.key)
            if instance_id is None:
                continue
            change = self._apply_one(instance_id, event)
            if change is not None:
                changes.append(change)
        return changes

    def _apply_one(self, instance_id: str, event: Event) -> Change | None:
        current = self.members.get(instance_id)
        if event.kind == "delete":
            if current is None:
                self._anomaly("delete of a key the view does not hold (missed its put)",
                              event)
                return None
            del self.members[instance_id]
            return Change("leave", instance_id, event.revision, "event", current)
        new = Instance.from_event(instance_id, event)
        if current is None:
            if event.create_revision != event.revision:
                self._anomaly("update of a key the view never saw created (missed its "
                              "creation)", event)
            self.members[instance_id] = new
            return Change("join", instance_id, event.revision, "event", new)
        if event.create_revision != current.create_revision:
            self._anomaly("key created again without a delete in between (missed the "
                          "delete)", event)
        elif event.version != current.version + 1:
            self._anomaly(f"version {current.version} → {event.version} (missed "
                          f"{event.version - current.version - 1} update(s))", event)
        self.members[instance_id] = new
        return Change("update", instance_id, event.revision, "event", new)

    def _anomaly(self, what: str, event: Event) -> None:
        self.anomalies.append({"revision": event.revision, "key": event.key,
                               "kind": event.kind, "what": what})


# -- transport ---------------------------------------------------------------------------


class Endpoints:
    """gRPC channels to the etcd members; after a failure, the next member is used.

    Nothing is ever blacklisted: a member that failed is tried again when its turn
    comes round.
    """

    def __init__(self, addresses: Sequence[str], start: int = 0) -> None:
        if not addresses:
            raise LabError("no etcd endpoints given")
        self.addresses = list(addresses)
        self.index = start % len(self.addresses)
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    @property
    def current(self) -> str:
        """The ``ip:port`` in use."""
        return self.addresses[self.index]

    def channel(self) -> grpc.Channel:
        """The channel to the member in use (opened on first use)."""
        with self._lock:
            address = self.current
            if address not in self._channels:
                self._channels[address] = open_channel(address)
            return self._channels[address]

    def kv(self) -> etcdrpc.KVStub:
        """KV stub on the member in use."""
        return etcdrpc.KVStub(self.channel())

    def lease(self) -> etcdrpc.LeaseStub:
        """Lease stub on the member in use."""
        return etcdrpc.LeaseStub(self.channel())

    def watch(self) -> etcdrpc.WatchStub:
        """Watch stub on the member in use."""
        return etcdrpc.WatchStub(self.channel())

    def rotate(self) -> str:
        """Move on to the next member; returns its address."""
        with self._lock:
            self.index = (self.index + 1) % len(self.addresses)
            return self.current

    def close(self) -> None:
        """Close every channel."""
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()


def call_with_retry(endpoints: Endpoints, action: Callable[[Endpoints], Any], timeout: float,
                    what: str) -> Any:
    """Run ``action(endpoints)``; on a gRPC error try the next member until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action(endpoints)
        except grpc.RpcError as exc:
            if time.monotonic() + RETRY_PAUSE_S > deadline:
                raise RegistryError(f"{what}: no answer within {timeout:.0f} s "
                                    f"({_rpc_error(exc)})") from None
            endpoints.rotate()
            time.sleep(RETRY_PAUSE_S)


def _rpc_error(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"{code.name if code else 'error'}: {details}"


def range_prefix(endpoints: Endpoints, prefix: str, timeout: float = 5.0,
                 request_timeout: float = 2.0) -> tuple[list[Event], int]:
    """Linearizable range read of every key under prefix: (entries, store revision)."""
    request = etcdrpc.RangeRequest(key=prefix.encode(), range_end=prefix_end(prefix.encode()))
    answer = call_with_retry(
        endpoints, lambda e: e.kv().Range(request, timeout=request_timeout), timeout,
        f"range read of {prefix}")
    return [Event.from_kv(kv) for kv in answer.kvs], answer.header.revision


def snapshot_view(name: str, etcd_endpoints: Sequence[str], timeout: float = 5.0
                  ) -> MembershipView:
    """A view of the service from one range read; ``watch(..., view=it)`` continues it."""
    endpoints = Endpoints(etcd_endpoints)
    try:
        entries, revision = range_prefix(endpoints, service_prefix(name), timeout)
    finally:
        endpoints.close()
    view = MembershipView(service_prefix(name))
    view.apply_snapshot(entries, revision)
    return view


def resolve(name: str, etcd_endpoints: Sequence[str], timeout: float = 5.0
            ) -> tuple[list[Instance], int]:
    """The current instances of a service (sorted by id) and the revision they were read at."""
    view = snapshot_view(name, etcd_endpoints, timeout)
    return [view.members[i] for i in sorted(view.members)], view.revision


# -- registration ------------------------------------------------------------------------


class Registration:
    """One instance's registration: lease, key, keepalives every TTL/3, re-registration.

    ``on_event(kind, **fields)`` is told what happens ("registered", "keepalive",
    "keepalive_failed", "lease_presumed_lost", "lease_lost", "reregistered", "revoking",
    "revoked"), each with a wall-clock time ``t``.

    The instance keeps its own deadline (``valid_until``): the time it sent the request
    that granted or last renewed its lease, plus the TTL etcd answered. etcd's leader
    counts the TTL from when it received that request, so until ``valid_until`` the key
    is certainly still there; once keepalives fail past it, the instance can no longer
    tell, presumes itself unregistered ("lease_presumed_lost", once per loss) and
    :attr:`presumed_registered` turns False, so a server can stop claiming its name
    before etcd's watchers are told it is gone.
    """

    def __init__(self, name: str, instance_id: str, endpoint: str, ttl: int,
                 etcd_endpoints: Sequence[str], metadata: Mapping[str, Any] | None = None,
                 *, start_index: int = 0, request_timeout: float = 1.0,
                 on_event: EventHandler | None = None) -> None:
        self.name = name
        self.instance_id = instance_id
        self.key = instance_key(name, instance_id)
        self.endpoint = endpoint
        self.ttl = int(ttl)
        self.metadata = dict(metadata or {})
        self.endpoints = Endpoints(etcd_endpoints, start_index)
        self.request_timeout = request_timeout
        self.on_event = on_event or (lambda kind, **fields: None)
        self.lease_id: int | None = None
        self.revision: int | None = None
        self.keepalives = 0
        self.keepalive_failures = 0
        self.reregistrations = 0
        self.valid_until: float | None = None  # wall clock: see the class docstring
        self._presumed_lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> Registration:
        """Register (retrying other members until ``timeout``), then keep the lease alive."""
        self._register(timeout, "registered")
        self._thread = threading.Thread(target=self._keepalive_loop, daemon=True,
                                        name=f"keepalive-{self.instance_id}")
        self._thread.start()
        return self

    def _register(self, timeout: float, kind: str) -> None:
        called = time.time()
        deadline = time.monotonic() + timeout
        lease_id, valid_until = None, called
        while True:
            try:
                if lease_id is None:
                    sent = time.time()
                    grant = self.endpoints.lease().LeaseGrant(
                        etcdrpc.LeaseGrantRequest(TTL=self.ttl), timeout=self.request_timeout)
                    lease_id, valid_until = grant.ID, sent + grant.TTL
                value = json.dumps({"endpoint": self.endpoint, "metadata": self.metadata,
                                    "registered_at": called})
                put = self.endpoints.kv().Put(
                    etcdrpc.PutRequest(key=self.key.encode(), value=value.encode(),
                                       lease=lease_id), timeout=self.request_timeout)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:  # the lease expired meanwhile
                    lease_id = None
                if time.monotonic() + RETRY_PAUSE_S > deadline:
                    raise RegistryError(f"cannot register {self.key}: {_rpc_error(exc)}"
                                        ) from None
                self.endpoints.rotate()
                time.sleep(RETRY_PAUSE_S)
                continue
            self.lease_id, self.revision = lease_id, put.header.revision
            self.valid_until, self._presumed_lost = valid_until, False
            self.on_event(kind, t=time.time(), called=called, lease=lease_id,
                          revision=put.header.revision, etcd=self.endpoints.current,
                          valid_until=valid_until)
            return

    @property
    def presumed_registered(self) -> bool:
        """Whether the key is certainly still there: before the instance's own deadline."""
        return self.valid_until is not None and time.time() < self.valid_until

    def _keepalive_once(self) -> tuple[int, float]:
        """One keepalive on its own short stream: (the TTL etcd granted, 0 when the lease
        is gone; the wall-clock time the request was sent)."""
        request = etcdrpc.LeaseKeepAliveRequest(ID=self.lease_id)
        sent = time.time()
        responses = self.endpoints.lease().LeaseKeepAlive(iter([request]),
                                                          timeout=self.request_timeout)
        try:
            return next(responses).TTL, sent
        except StopIteration:
            raise RegistryError("keepalive stream ended without an answer") from None
        finally:
            responses.cancel()

    def _keepalive_loop(self) -> None:
        interval = self.ttl / 3.0
        next_due = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_due - time.monotonic())):
            try:
                granted, sent = self._keepalive_once()
            except (grpc.RpcError, RegistryError) as exc:
                self.keepalive_failures += 1
                reason = _rpc_error(exc) if isinstance(exc, grpc.RpcError) else str(exc)
                now = time.time()
                self.on_event("keepalive_failed", t=now, etcd=self.endpoints.current,
                              error=reason)
                if (not self._presumed_lost and self.valid_until is not None
                        and now >= self.valid_until):
                    self._presumed_lost = True
                    self.on_event("lease_presumed_lost", t=now, lease=self.lease_id,
                                  valid_until=self.valid_until)
                self.endpoints.rotate()
                next_due = time.monotonic() + RETRY_PAUSE_S
                continue
            if granted > 0:
                self.keepalives += 1
                self.valid_until, self._presumed_lost = sent + granted, False
                self.on_event("keepalive", t=time.time(), ttl=granted,
                              etcd=self.endpoints.current, valid_until=self.valid_until)
                next_due = time.monotonic() + interval
                continue
            self.on_event("lease_lost", t=time.time(), lease=self.lease_id)
            try:
                self._register(interval, "reregistered")
            except RegistryError:
                next_due = time.monotonic() + RETRY_PAUSE_S
                continue
            self.reregistrations += 1
            next_due = time.monotonic() + interval

    def close(self, revoke: bool = True, timeout: float = 5.0) -> int | None:
        """Stop the keepalives; with ``revoke``, revoke the lease so the key goes at once.

        Returns the revision of the revoke, or None when it was not confirmed in time
        (its outcome is then unknown: the lease may still expire on its own).
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        revision = None
        try:
            if revoke and self.lease_id is not None:
                self.on_event("revoking", t=time.time(), lease=self.lease_id)
                try:
                    revision = call_with_retry(
                        self.endpoints, self._revoke, timeout, f"revoke lease of {self.key}")
                except RegistryError as exc:
                    self.on_event("revoke_unknown", t=time.time(), error=str(exc))
                else:
                    self.on_event("revoked", t=time.time(), revision=revision)
        finally:
            self.endpoints.close()
        return revision

    def _revoke(self, endpoints: Endpoints) -> int:
        try:
            answer = endpoints.lease().LeaseRevoke(
                etcdrpc.LeaseRevokeRequest(ID=self.lease_id), timeout=self.request_timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # already expired: key gone
                return 0
            raise
        return answer.header.revision


def register(name: str, instance_id: str, endpoint: str, ttl: int,
             etcd_endpoints: Sequence[str], metadata: Mapping[str, Any] | None = None,
             **options: Any) -> Registration:
    """Register an instance and keep it registered until ``close()`` (see Registration)."""
    return Registration(name, instance_id, endpoint, ttl, etcd_endpoints, metadata,
                        **options).start()


# -- watching ----------------------------------------------------------------------------


class _StreamEnded(Exception):
    """The watch stream ended or was cancelled by the member: reconnect and resume."""


class _Compacted(Exception):
    """The revision to resume from was compacted: resynchronise from a snapshot."""


class MembershipWatch:
    """A live :class:`MembershipView` of one service: snapshot, then watch, in a thread.

    ``on_change`` receives each batch of changes (from the watch thread). ``connections``
    records every (re)connection, resync and its reason. Progress notifications serve only
    as a liveness probe: etcd before 3.5.8 could send one with a revision ahead of events
    an unsynced watcher had not received yet (etcd issue #15220), so the view never
    advances its revision from them.
    """

    def __init__(self, name: str, etcd_endpoints: Sequence[str],
                 on_change: ChangeHandler | None = None, *, view: MembershipView | None = None,
                 start_index: int = 0, request_timeout: float = 2.0,
                 progress_interval: float = 1.0, stall_timeout: float = 10.0) -> None:
        self.name = name
        self.view = view or MembershipView(service_prefix(name))
        self.endpoints = Endpoints(etcd_endpoints, start_index)
        self.on_change = on_change or (lambda changes: None)
        self.request_timeout = request_timeout
        self.progress_interval = progress_interval
        self.stall_timeout = stall_timeout
        self.connections: list[dict[str, Any]] = []
        self.events_received = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._call: Any = None
        self._thread: threading.Thread | None = None
        self._need_snapshot = self.view.snapshot_revision is None

    # -- public ------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> MembershipWatch:
        """Take the first snapshot now (or resume a given view), then watch in a thread."""
        if self._need_snapshot:
            self._snapshot(timeout)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"watch-{self.name}")
        self._thread.start()
        return self

    def members(self) -> dict[str, Instance]:
        """A copy of the current members."""
        with self._lock:
            return dict(self.view.members)

    @property
    def revision(self) -> int:
        """The last revision the view reflects."""
        with self._lock:
            return self.view.revision

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching (the view stays as it is and can be resumed later)."""
        self._stop.set()
        call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
        self.endpoints.close()

    # -- internals ---------------------------------------------------------------------
    def _log(self, what: str, **fields: Any) -> None:
        self.connections.append({"t": time.time(), "what": what,
                                 "etcd": self.endpoints.current, **fields})

    def _snapshot(self, timeout: float) -> None:
        entries, revision = range_prefix(self.endpoints, self.view.prefix, timeout,
                                         self.request_timeout)
        with self._lock:
            changes = self.view.apply_snapshot(entries, revision)
        self._need_snapshot = False
        self._log("snapshot", revision=revision, changes=len(changes))
        if changes:
            self.on_change(changes)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._need_snapshot:
                    self._snapshot(self.stall_timeout)
                self._stream()
            except _Compacted as exc:
                self._need_snapshot = True
                self._log("compacted", compact_revision=int(str(exc)),
                          resume_revision=self.view.resume_revision)
            except (grpc.RpcError, _StreamEnded, RegistryError) as exc:
                if self._stop.is_set():
                    return
                reason = _rpc_error(exc) if isinstance(exc, grpc.RpcError) else str(exc)
                failed = self.endpoints.current
                self.endpoints.rotate()
                self._log("reconnect", failed=failed, reason=reason,
                          resume_revision=self.view.resume_revision)
                self._stop.wait(RETRY_PAUSE_S)

    def _stream(self) -> None:
        """One watch stream from the view's resume revision; returns only when stopped."""
        requests: queue.Queue = queue.Queue()
        done = threading.Event()
        create = etcdrpc.WatchCreateRequest(
            key=self.view.prefix.encode(), range_end=prefix_end(self.view.prefix.encode()),
            start_revision=self.view.resume_revision)
        requests.put(etcdrpc.WatchRequest(create_request=create))
        last_heard = [time.monotonic()]
        call = self.endpoints.watch().Watch(_drain(requests, done), metadata=REQUIRE_LEADER)
        self._call = call
        if self._stop.is_set():  # stop() ran before the call existed: it could not cancel it
            call.cancel()
        prober = threading.Thread(target=self._probe, args=(requests, done, last_heard, call),
                                  daemon=True, name=f"watch-probe-{self.name}")
        prober.start()
        try:
            for response in call:
                last_heard[0] = time.monotonic()
                if response.compact_revision:
                    raise _Compacted(response.compact_revision)
                if response.canceled:
                    raise _StreamEnded(f"watch canceled by etcd: {response.cancel_reason}")
                if response.created or not response.events:
                    continue
                events = [Event.from_pb(e) for e in response.events]
                with self._lock:
                    self.events_received += len(events)
                    changes = self.view.apply_events(events)
                if changes:
                    self.on_change(changes)
            raise _StreamEnded("watch stream closed by etcd")
        finally:
            done.set()
            call.cancel()
            self._call = None

    def _probe(self, requests: queue.Queue, done: threading.Event, last_heard: list[float],
               call: Any) -> None:
        """Ask for progress every interval; cancel the stream when etcd stays silent."""
        progress = etcdrpc.WatchRequest(progress_request=etcdrpc.WatchProgressRequest())
        while not done.wait(self.progress_interval):
            if time.monotonic() - last_heard[0] > self.stall_timeout:
                self._log("stalled", silent_s=round(time.monotonic() - last_heard[0], 3))
                call.cancel()
                return
            requests.put(progress)


def _drain(requests: queue.Queue, done: threading.Event) -> Iterator[Any]:
    """The request stream of a watch: whatever is queued, until the stream is done."""
    while not done.is_set():
        try:
            yield requests.get(timeout=0.5)
        except queue.Empty:
            continue


def watch(name: str, etcd_endpoints: Sequence[str], on_change: ChangeHandler | None = None,
          **options: Any) -> MembershipWatch:
    """Start a live membership view of a service (see MembershipWatch); ``stop()`` it."""
    return MembershipWatch(name, etcd_endpoints, on_change, **options).start()


# -- one instance as a process -------------------------------------------------------------


def serve(argv: Sequence[str] | None = None) -> int:
    """``python -m etcdlab.etcd.registry serve``: register, stay registered, revoke on SIGTERM.

    Prints one JSON object per line for each registration event. Ends by itself after
    ``--max-seconds`` so that an orphaned instance never runs for ever.
    """
    parser = argparse.ArgumentParser(prog="python -m etcdlab.etcd.registry serve")
    parser.add_argument("name")
    parser.add_argument("instance_id")
    parser.add_argument("endpoint")
    parser.add_argument("--etcd", required=True, help="comma-separated ip:port list")
    parser.add_argument("--ttl", type=int, default=5)
    parser.add_argument("--start-index", type=int, default=0,
                        help="which of --etcd to talk to first")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    printing = threading.Lock()

    def emit(kind: str, **fields: Any) -> None:
        with printing:
            print(json.dumps({"event": kind, **fields}), flush=True)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    registration = Registration(args.name, args.instance_id, args.endpoint, args.ttl,
                                args.etcd.split(","), start_index=args.start_index,
                                on_event=emit)
    emit("starting", t=time.time())
    try:
        registration.start(timeout=min(30.0, args.max_seconds))
    except RegistryError as exc:
        emit("failed", t=time.time(), error=str(exc))
        return 1
    deadline = time.monotonic() + args.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(0.2)
    registration.close(revoke=True)
    emit("exiting", t=time.time(), keepalives=registration.keepalives,
         keepalive_failures=registration.keepalive_failures,
         reregistrations=registration.reregistrations)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        sys.exit("usage: python -m etcdlab.etcd.registry serve NAME ID ENDPOINT --etcd IP:PORT,...")
    sys.exit(serve(sys.argv[2:]))
