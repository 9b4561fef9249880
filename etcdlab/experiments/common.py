"""Measurement helpers several experiments share."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from etcd3 import etcdrpc

from etcdlab.cluster import Cluster
from etcdlab.errors import LabError

T = TypeVar("T")


# gRPC metadata that makes a member answer "etcdserver: no leader" at once when it has
# none (clientv3.WithRequireLeader), instead of holding the request until it times out.
REQUIRE_LEADER = (("hasleader", "true"),)

# etcd errors after which a write may still be applied: the outcome is unknown. The
# server's copy of the client's deadline can expire first: code UNKNOWN, "context
# deadline exceeded".
_UNKNOWN_DETAILS = ("request timed out", "leader changed", "connection lost",
                    "deadline exceeded")


def error_outcome(exc: grpc.RpcError) -> str:
    """"unknown" for a timeout (the operation may still take effect), else "failed"."""
    if exc.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return "unknown"
    details = (exc.details() or "").lower()
    return "unknown" if any(text in details for text in _UNKNOWN_DETAILS) else "failed"


def attempt(call: Callable[[], T]) -> tuple[dict[str, Any], T | None]:
    """Run one etcd call and record its outcome: ok / failed / unknown (timed out).

    Returns ({outcome, code, details, elapsed_s}, the call's value or None).
    """
    started = time.perf_counter()
    try:
        value = call()
    except grpc.RpcError as exc:
        return {"outcome": error_outcome(exc), "code": exc.code().name,
                "details": exc.details() or "",
                "elapsed_s": round(time.perf_counter() - started, 6)}, None
    return {"outcome": "ok", "code": "OK", "details": "",
            "elapsed_s": round(time.perf_counter() - started, 6)}, value


def rpc_stubs(cluster: Cluster, names: list[str]) -> dict[str, tuple[grpc.Channel, Any]]:
    """An open gRPC channel and Maintenance stub per member (caller closes the channels)."""
    stubs = {}
    for name in names:
        channel = cluster.channel(name)
        stubs[name] = (channel, etcdrpc.MaintenanceStub(channel))
    return stubs


def member_hashes(cluster: Cluster, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every member's KV hash at one revision (``etcdctl endpoint hashkv``).

    Asks for the hash at the leader's current revision, retrying while a member has not
    applied it yet, so equal hashes mean equal data up to that revision.
    """
    with cluster.client(cluster.names[0]) as client:
        client.put("/etcdlab/hashkv/marker", str(time.time()))
    leader = cluster.leader()
    if leader is None:
        raise LabError("no leader to take the reference revision from")
    stubs = rpc_stubs(cluster, cluster.names)
    try:
        _, leader_stub = stubs[leader]
        revision = leader_stub.HashKV(etcdrpc.HashKVRequest(revision=0), timeout=5).header.revision
        members = []
        for name, (_channel, stub) in stubs.items():
            deadline = time.monotonic() + timeout
            while True:
                try:
                    answer = stub.HashKV(etcdrpc.HashKVRequest(revision=revision), timeout=5)
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
        for channel, _stub in stubs.values():
            channel.close()


class RawKV:
    """Bare gRPC KV calls to one member, through python3-etcd3's generated stubs.

    The ``etcd3`` client marks an endpoint failed after one timeout and refuses it for a
    while ("Trying to use a failed node"), which would hide the very recovery an
    experiment measures; these calls just try, every time.
    """

    def __init__(self, cluster: Cluster, name: str, timeout: float = 1.0) -> None:
        self.name = name
        self.timeout = timeout
        self.channel = cluster.channel(name)
        self.kv = etcdrpc.KVStub(self.channel)

    def put(self, key: str, value: str) -> int:
        """Write; returns the revision etcd gave the write."""
        request = etcdrpc.PutRequest(key=key.encode(), value=value.encode())
        return self.kv.Put(request, timeout=self.timeout).header.revision

    def get(self, key: str, serializable: bool = False) -> tuple[str | None, int, int]:
        """(value or None, mod_revision, store revision)."""
        request = etcdrpc.RangeRequest(key=key.encode(), serializable=serializable)
        answer = self.kv.Range(request, timeout=self.timeout)
        if not answer.kvs:
            return None, 0, answer.header.revision
        kv = answer.kvs[0]
        return kv.value.decode(), kv.mod_revision, answer.header.revision

    def put_if_unchanged(self, key: str, value: str, mod_revision: int) -> tuple[bool, int]:
        """Compare-and-swap on ``mod_revision``: (succeeded, revision of the answer)."""
        request = etcdrpc.TxnRequest(
            compare=[etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.MOD,
                                     key=key.encode(), mod_revision=mod_revision)],
            success=[etcdrpc.RequestOp(
                request_put=etcdrpc.PutRequest(key=key.encode(), value=value.encode()))],
        )
        answer = self.kv.Txn(request, timeout=self.timeout)
        return answer.succeeded, answer.header.revision

    def delete(self, key: str) -> int:
        """Delete one key; returns how many keys were deleted."""
        request = etcdrpc.DeleteRangeRequest(key=key.encode())
        return self.kv.DeleteRange(request, timeout=self.timeout).deleted

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def __enter__(self) -> RawKV:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def current_leader(cluster: Cluster) -> tuple[str, int, int]:
    """(name, member id, term) of the leader a majority agrees on."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        name = cluster.leader()
        if name is not None:
            status = cluster.raw_status(name)
            if status.leader == status.header.member_id:
                return name, status.leader, status.raftTerm
        time.sleep(0.1)
    raise LabError("no leader within 30 s")


def member_names(cluster: Cluster) -> dict[int, str]:
    """Member id → node name."""
    with cluster.client(cluster.names[0]) as client:
        return {m.id: m.name for m in client.members}
