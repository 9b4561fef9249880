"""Measurement helpers several experiments share."""

from __future__ import annotations

import time
from typing import Any

import grpc
from etcd3 import etcdrpc

from etcdlab.cluster import CLIENT_PORT, Cluster
from etcdlab.errors import LabError


def rpc_stubs(cluster: Cluster, names: list[str]) -> dict[str, tuple[grpc.Channel, Any]]:
    """An open gRPC channel and Maintenance stub per member (caller closes the channels)."""
    stubs = {}
    for name in names:
        channel = grpc.insecure_channel(f"{cluster.ips[name]}:{CLIENT_PORT}")
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
        self.channel = grpc.insecure_channel(f"{cluster.ips[name]}:{CLIENT_PORT}")
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

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def __enter__(self) -> RawKV:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
