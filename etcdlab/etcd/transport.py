"""The one transport from the lab to an etcd member, and the one error classifier.

Experiments reach etcd through :class:`Member`: bare gRPC stubs (KV, lease, maintenance,
watch) on one member's client port, with a timeout on every call, etcd's
``require_leader`` where asked, and TLS files passed in explicitly. It adds no client-side
failover, retries or blacklisting: the ``etcd3`` client marks an endpoint failed after one
timeout and refuses it for a while ("Trying to use a failed node"), which would hide the
very recovery an experiment measures.

Every failed call is classified once, by :func:`classify` (after Jepsen's ``with-errors``):
``failed`` when the operation was definitely not applied, ``unknown`` when it may have been
(a timeout, a lost connection, a leader change while it was in flight). :func:`attempt`
records one call as ``{outcome, code, details, elapsed_s}``; nothing else guesses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc
from etcd3 import etcdrpc
from google.protobuf.unknown_fields import UnknownFieldSet

from etcdlab.errors import LabError

if TYPE_CHECKING:
    from etcdlab.etcd.history import HistoryRecorder

T = TypeVar("T")

TLS_ENV = "ETCDLAB_TLS_DIR"
"""The lab's PKI folder (client-ca.crt and the client certificates below): set while an
experiment runs on a TLS lab, so that channels opened by the membership library and by
helper processes use TLS too."""

LAB_CERT = "lab"
"""The certificate every call goes through but two: CN = the role's lab user, which etcd
takes as the user name when ``etcd_auth`` is on, so the calls reach only the lab's key
prefixes (``/etcdlab/``, ``/services/``)."""
ROOT_CERT = "client"
"""The controller's root certificate (CN root), only for the calls etcd 3.5 leaves to root
among the lab's: HashKV (the consistency check after a fault) and Defragment (the quota
recovery). Status, Alarm, MemberList, LeaseGrant and Compact work as the lab user."""

CLIENT_CA_FILE = "client-ca.crt"
"""The CA that signs the members' client-port certificates (the role's client CA; the
peer port has a CA of its own, which the lab's client never needs)."""

REQUIRE_LEADER = (("hasleader", "true"),)
"""gRPC metadata that makes a member answer "etcdserver: no leader" at once when it has
none (clientv3.WithRequireLeader), instead of holding the request until it times out."""

# etcd errors after which a write may still be applied: the outcome is unknown. The
# server's copy of the client's deadline can expire first: code UNKNOWN, "context
# deadline exceeded".
_UNKNOWN_DETAILS = ("request timed out", "leader changed", "connection lost",
                    "deadline exceeded")
_UNKNOWN_CODES = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)

DB_SIZE_IN_USE_FIELD = 9
"""The field number of ``dbSizeInUse`` in etcd's StatusResponse (since v3.4). The proto that
python3-etcd3 ships predates it, so the value arrives as an unknown field."""


def classify(exc: grpc.RpcError) -> str:
    """"unknown" when the operation may still have taken effect, else "failed"."""
    if exc.code() in _UNKNOWN_CODES:
        return "unknown"
    details = (exc.details() or "").lower()
    return "unknown" if any(text in details for text in _UNKNOWN_DETAILS) else "failed"


def attempt(call: Callable[[], T]) -> tuple[dict[str, Any], T | None]:
    """Run one etcd call and record its outcome: ok / failed / unknown.

    Returns ({outcome, code, details, elapsed_s}, the call's value or None).
    """
    started = time.perf_counter()
    try:
        value = call()
    except grpc.RpcError as exc:
        return {"outcome": classify(exc), "code": exc.code().name,
                "details": exc.details() or "",
                "elapsed_s": round(time.perf_counter() - started, 6)}, None
    return {"outcome": "ok", "code": "OK", "details": "",
            "elapsed_s": round(time.perf_counter() - started, 6)}, value


SETTLE_PAUSE_S = 0.2
"""Pause between the tries of :func:`settled`."""


def settled(call: Callable[[], T], within_s: float, what: str,
            tries: list[dict[str, Any]] | None = None) -> T:
    """A setup step, not a measurement: run ``call`` again while it fails transiently
    (an unknown outcome, or UNAVAILABLE: a stall or a leader change on a loaded machine)
    until ``within_s`` has passed; a definite refusal, or the last transient error once the
    time is spent, raises :class:`~etcdlab.errors.LabError` naming ``what``. Every failed
    try is appended to ``tries`` (as :func:`attempt` records it), so a result can show
    that its setup needed more than one."""
    deadline = time.monotonic() + within_s
    while True:
        record, value = attempt(call)
        if record["outcome"] == "ok":
            return value  # type: ignore[return-value]
        if tries is not None:
            tries.append({"what": what, **record})
        transient = record["outcome"] == "unknown" or record["code"] == "UNAVAILABLE"
        if not transient or time.monotonic() + SETTLE_PAUSE_S >= deadline:
            raise LabError(f"{what}: {record['code']} {record['details']!r} "
                           f"(no success within {within_s:g} s)")
        time.sleep(SETTLE_PAUSE_S)


def tls_folder(tls_dir: str | None) -> str:
    """The PKI folder ``tls_dir`` stands for: itself, or ``$ETCDLAB_TLS_DIR`` for None;
    "" means plain."""
    return os.environ.get(TLS_ENV, "") if tls_dir is None else tls_dir


def open_channel(address: str, tls_dir: str | None = None, cert: str = LAB_CERT
                 ) -> grpc.Channel:
    """A gRPC channel to ``ip:port``: TLS with the lab's certificate ``cert`` (``LAB_CERT``
    or ``ROOT_CERT``) when ``tls_dir`` names the lab's PKI folder, plain when it is "";
    None means ``$ETCDLAB_TLS_DIR``."""
    tls_dir = tls_folder(tls_dir)
    if not tls_dir:  # "" says plain explicitly
        return grpc.insecure_channel(address)
    folder = Path(tls_dir)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(folder / CLIENT_CA_FILE).read_bytes(),
        private_key=(folder / f"{cert}.key").read_bytes(),
        certificate_chain=(folder / f"{cert}.crt").read_bytes(),
    )
    return grpc.secure_channel(address, credentials)


class ClusterLike(Protocol):
    """What :func:`open_members` needs of a cluster handle."""

    names: list[str]
    tls_dir: str | None

    def endpoint(self, name: str) -> str: ...


class Member:
    """Bare gRPC access to one member; every call has a timeout (``timeout`` by default)."""

    def __init__(self, address: str, tls_dir: str, timeout: float = 2.0, name: str = "") -> None:
        self.name = name or address
        self.address = address
        self.timeout = timeout
        self.tls_dir = tls_folder(tls_dir)
        self.channel = open_channel(address, self.tls_dir)
        self._root_channel: grpc.Channel | None = None
        self.kv = etcdrpc.KVStub(self.channel)
        self.lease = etcdrpc.LeaseStub(self.channel)
        self.maintenance = etcdrpc.MaintenanceStub(self.channel)
        self.watch = etcdrpc.WatchStub(self.channel)
        self.cluster = etcdrpc.ClusterStub(self.channel)
        self.history: HistoryRecorder | None = None
        self.process: Any = self.name
        self.record_serializable = False

    def record_into(self, history: HistoryRecorder | None, process: Any = None,
                    serializable: bool = False) -> Member:
        """Record this member's KV calls into ``history`` as ``process`` (see
        :mod:`etcdlab.etcd.history`); None stops recording. Serializable reads are recorded
        only with ``serializable``: a workload that sets out to show what they allow."""
        self.history = history
        self.process = self.name if process is None else process
        self.record_serializable = serializable
        return self

    def _kv_call(self, op: str, key: str, args: dict[str, Any], send: Callable[[], T],
                 answer: Callable[[T], tuple[Any, Any]], recorded: bool = True) -> T:
        if self.history is None or not recorded:
            return send()
        return self.history.call(self.process, op, key, args, send, answer)

    def _options(self, timeout: float | None, require_leader: bool) -> dict[str, Any]:
        return {"timeout": self.timeout if timeout is None else timeout,
                "metadata": REQUIRE_LEADER if require_leader else None}

    # -- maintenance ------------------------------------------------------------------
    def status(self, timeout: float | None = None) -> Any:
        """The member's own Status answer (raises grpc.RpcError when it does not answer)."""
        return self.maintenance.Status(etcdrpc.StatusRequest(), **self._options(timeout, False))

    def leader_view(self, timeout: float = 0.5) -> tuple[int, int, int] | None:
        """(own member id, the leader it knows or 0, raft term), or None if unreachable."""
        try:
            answer = self.status(timeout)
        except grpc.RpcError:
            return None
        return answer.header.member_id, answer.leader, answer.raftTerm

    def db_size(self, timeout: float = 5.0) -> int | None:
        """The backend's size in bytes (Status ``dbSize``); None when it does not answer."""
        try:
            return self.status(timeout).dbSize
        except grpc.RpcError:
            return None

    def backend_sizes(self, timeout: float = 5.0) -> tuple[int | None, int | None]:
        """(Status ``dbSize``, ``dbSizeInUse``) in bytes from one answer: the backend file's
        size and the part of it holding data; (None, None) when the member does not answer,
        ``dbSizeInUse`` None when it does not report it."""
        try:
            answer = self.status(timeout)
        except grpc.RpcError:
            return None, None
        in_use = next((field.data for field in UnknownFieldSet(answer)
                       if field.field_number == DB_SIZE_IN_USE_FIELD and field.wire_type == 0),
                      None)
        return answer.dbSize, in_use

    def move_leader(self, target_id: int, timeout: float | None = None) -> None:
        """Ask this member, the leader, to hand leadership to member ``target_id``."""
        self.maintenance.MoveLeader(etcdrpc.MoveLeaderRequest(targetID=target_id),
                                    **self._options(timeout, False))

    def member_names(self, timeout: float | None = None) -> dict[int, str]:
        """Member id → name, as this member's MemberList answers (a member not started
        yet has the name "")."""
        answer = self.cluster.MemberList(etcdrpc.MemberListRequest(),
                                         **self._options(timeout, False))
        return {each.ID: each.name for each in answer.members}

    def _as_root(self) -> Any:
        """Maintenance as root (see ``ROOT_CERT``), on a channel of its own opened on first
        use; without TLS the one channel serves."""
        if not self.tls_dir:
            return self.maintenance
        if self._root_channel is None:
            self._root_channel = open_channel(self.address, self.tls_dir, ROOT_CERT)
        return etcdrpc.MaintenanceStub(self._root_channel)

    def hash_kv(self, revision: int = 0, timeout: float = 5.0) -> Any:
        """The member's KV hash at ``revision`` (0: its current one); as root."""
        return self._as_root().HashKV(etcdrpc.HashKVRequest(revision=revision),
                                      timeout=timeout)

    def alarms(self, timeout: float = 5.0) -> list[tuple[int, str]]:
        """The alarms this member lists: (member id, alarm name)."""
        answer = self.maintenance.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET),
                                        timeout=timeout)
        return [(a.memberID, etcdrpc.AlarmType.Name(a.alarm)) for a in answer.alarms]

    def disarm(self, member_id: int, timeout: float | None = None) -> None:
        """Deactivate the NOSPACE alarm of one member."""
        self.maintenance.Alarm(etcdrpc.AlarmRequest(
            action=etcdrpc.AlarmRequest.DEACTIVATE, memberID=member_id, alarm=etcdrpc.NOSPACE),
            **self._options(timeout, False))

    def compact(self, revision: int, timeout: float = 120.0) -> int:
        """Compact the keyspace up to ``revision`` and wait until it is physically done."""
        self.kv.Compact(etcdrpc.CompactionRequest(revision=revision, physical=True),
                        timeout=timeout)
        return revision

    def defragment(self, timeout: float = 120.0) -> None:
        """Defragment this member's backend (it answers nothing else meanwhile); as root."""
        self._as_root().Defragment(etcdrpc.DefragmentRequest(), timeout=timeout)

    # -- KV -----------------------------------------------------------------------------
    def put(self, key: str, value: str, timeout: float | None = None,
            require_leader: bool = False, lease: int = 0) -> int:
        """Write; returns the store revision of the write."""
        request = etcdrpc.PutRequest(key=key.encode(), value=value.encode(), lease=lease)
        reply = self._kv_call("put", key, {"value": value},
                              lambda: self.kv.Put(request, **self._options(timeout,
                                                                           require_leader)),
                              lambda r: (None, r.header.revision))
        return reply.header.revision

    def get(self, key: str, timeout: float | None = None, serializable: bool = False,
            require_leader: bool = False) -> dict[str, Any]:
        """Read one key: {value, mod_revision, revision} (value None if absent)."""
        request = etcdrpc.RangeRequest(key=key.encode(), serializable=serializable)
        answer = self._kv_call(
            "get", key, {}, lambda: self.kv.Range(request, **self._options(timeout,
                                                                             require_leader)),
            lambda r: ((r.kvs[0].value.decode(), r.kvs[0].mod_revision) if r.kvs
                       else (None, None)),
            recorded=not serializable or self.record_serializable)
        kv = answer.kvs[0] if answer.kvs else None
        return {"value": kv.value.decode() if kv else None,
                "mod_revision": kv.mod_revision if kv else 0,
                "revision": answer.header.revision}

    def delete(self, key: str, timeout: float | None = None) -> int:
        """Delete one key; returns how many keys were deleted."""
        request = etcdrpc.DeleteRangeRequest(key=key.encode())
        return self._kv_call("delete", key, {},
                             lambda: self.kv.DeleteRange(request, **self._options(timeout, False)),
                             lambda r: (r.deleted > 0, r.header.revision if r.deleted else None)
                             ).deleted

    def put_if_unchanged(self, key: str, value: str, mod_revision: int,
                         timeout: float | None = None) -> tuple[bool, int]:
        """Compare-and-swap on ``mod_revision``: (succeeded, revision of the answer)."""
        args = {"compare": "mod_revision", "expected": mod_revision, "then": "put",
                "value": value}
        return self._kv_call(
            "txn", key, args,
            lambda: self._txn(etcdrpc.Compare(result=etcdrpc.Compare.EQUAL,
                                              target=etcdrpc.Compare.MOD, key=key.encode(),
                                              mod_revision=mod_revision),
                              key, value, 0, timeout),
            lambda r: (r[0], r[1] if r[0] else None))

    def put_if_value(self, key: str, expected: str, value: str,
                     timeout: float | None = None) -> tuple[bool, int]:
        """Compare-and-swap on the value (a register's cas): (succeeded, revision)."""
        args = {"compare": "value", "expected": expected, "then": "put", "value": value}
        return self._kv_call(
            "txn", key, args,
            lambda: self._txn(etcdrpc.Compare(result=etcdrpc.Compare.EQUAL,
                                              target=etcdrpc.Compare.VALUE, key=key.encode(),
                                              value=expected.encode()),
                              key, value, 0, timeout),
            lambda r: (r[0], r[1] if r[0] else None))

    def put_if_created_at(self, guard: str, create_revision: int, key: str, value: str,
                          lease: int = 0, timeout: float | None = None) -> tuple[bool, int]:
        """Write ``key`` only while ``guard`` is the key created at ``create_revision``
        (0: only while ``guard`` is absent): (succeeded, revision of the answer)."""
        return self._txn(etcdrpc.Compare(result=etcdrpc.Compare.EQUAL,
                                         target=etcdrpc.Compare.CREATE, key=guard.encode(),
                                         create_revision=create_revision),
                         key, value, lease, timeout)

    def txn_without_put(self, key: str, then: str = "range",
                        timeout: float | None = None) -> tuple[bool, int]:
        """A transaction that puts nothing: if ``key`` exists (version > 0), read it
        (``then`` "range") or delete it (``then`` "delete"); (succeeded, revision)."""
        request = {"range": lambda: etcdrpc.RequestOp(
                       request_range=etcdrpc.RangeRequest(key=key.encode())),
                   "delete": lambda: etcdrpc.RequestOp(
                       request_delete_range=etcdrpc.DeleteRangeRequest(key=key.encode()))}[then]
        answer = self.kv.Txn(etcdrpc.TxnRequest(
            compare=[etcdrpc.Compare(result=etcdrpc.Compare.GREATER,
                                     target=etcdrpc.Compare.VERSION, key=key.encode(),
                                     version=0)],
            success=[request()],
        ), **self._options(timeout, False))
        return answer.succeeded, answer.header.revision

    def _txn(self, compare: Any, key: str, value: str, lease: int,
             timeout: float | None) -> tuple[bool, int]:
        answer = self.kv.Txn(etcdrpc.TxnRequest(
            compare=[compare],
            success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                key=key.encode(), value=value.encode(), lease=lease))],
        ), **self._options(timeout, False))
        return answer.succeeded, answer.header.revision

    # -- leases -------------------------------------------------------------------------
    def grant(self, ttl: int, timeout: float | None = None) -> int:
        """A new lease of ``ttl`` seconds; returns its id."""
        return self.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=ttl),
                                     **self._options(timeout, False)).ID

    def keepalive(self, lease_id: int, timeout: float | None = None) -> int:
        """Renew a lease once; returns the TTL etcd granted (0: the lease is gone)."""
        answers = self.lease.LeaseKeepAlive(iter([etcdrpc.LeaseKeepAliveRequest(ID=lease_id)]),
                                            **self._options(timeout, False))
        for answer in answers:
            return answer.TTL
        return 0

    def time_to_live(self, lease_id: int, timeout: float | None = None) -> int:
        """The lease's remaining TTL in whole seconds as etcd's leader sees it (-1: gone)."""
        return self.lease.LeaseTimeToLive(etcdrpc.LeaseTimeToLiveRequest(ID=lease_id),
                                          **self._options(timeout, False)).TTL

    def revoke(self, lease_id: int, timeout: float | None = None) -> None:
        """Revoke a lease (and delete its keys)."""
        self.lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=lease_id),
                               **self._options(timeout, False))

    def close(self) -> None:
        """Close the channels."""
        self.channel.close()
        if self._root_channel is not None:
            self._root_channel.close()

    def __enter__(self) -> Member:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def member(cluster: ClusterLike, name: str, timeout: float = 2.0) -> Member:
    """A :class:`Member` for one node of a cluster (its endpoint and TLS files)."""
    return Member(cluster.endpoint(name), cluster.tls_dir or "", timeout, name)


def open_members(cluster: ClusterLike, names: Iterable[str] | None = None,
                 timeout: float = 2.0) -> dict[str, Member]:
    """A Member per node (caller closes them)."""
    return {name: member(cluster, name, timeout)
            for name in (cluster.names if names is None else names)}


def close_all(members: dict[str, Member]) -> None:
    """Close every member's channel."""
    for each in members.values():
        each.close()
