"""Q8's lock clients: standard library only, run inside a lab node.

The ``lease-drift`` experiment runs this file's source with the node's own ``python3``
(``python3 -c``), through the node's libfaketime where the client's clock drifts: the
host needs neither libfaketime nor anything else for it. The node has no etcd client
library, so the clients speak etcd's JSON gateway (``POST /v3/...`` on the client port,
the same RPCs as gRPC). Every step is printed as one JSON line; the experiment stamps
each line with the real time it arrived.

Clients: ``holder`` (takes a lock with a lease, never renews, acts until its own clock
says the lease has ended), ``paused`` (takes a lock, checks its lease by its own clock,
then acts without looking again: the experiment stops it in between) and ``keeper``
(keeps a lease alive every TTL/3 by its own clock).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import sys
import time
import urllib.request
from typing import Any

# The etcd role's etcd_pki_dir on every member: its client CA and client certificate.
NODE_PKI_DIR = "/etc/etcd/pki"


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed: the experiment stamps it with the real time."""
    print(json.dumps({"event": event, "local": time.time(), **fields}), flush=True)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Gateway:
    """The few etcd RPCs the clients need, through the member's JSON gateway."""

    def __init__(self, endpoint: str, tls: bool, user: str = "", password: str = "",
                 timeout: float = 5.0) -> None:
        self.base = f"{'https' if tls else 'http'}://{endpoint}/v3/"
        self.timeout = timeout
        self.context = None
        if tls:  # the member's own client certificate, checked against the lab's client CA
            self.context = ssl.create_default_context(cafile=f"{NODE_PKI_DIR}/client-ca.crt")
            self.context.check_hostname = False  # the CA is the lab's own; names vary
            self.context.load_cert_chain(f"{NODE_PKI_DIR}/client.crt",
                                         f"{NODE_PKI_DIR}/client.key")
        self.headers = {"Content-Type": "application/json"}
        if user:
            token = self.call("auth/authenticate", {"name": user, "password": password})
            self.headers["Authorization"] = token["token"]

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one request; the JSON answer (an HTTP error raises)."""
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                         headers=self.headers)
        with urllib.request.urlopen(request, timeout=self.timeout,
                                    context=self.context) as reply:
            answer = json.loads(reply.read())
        if "error" in answer:  # a streaming RPC's error comes in the body
            raise OSError(str(answer["error"]))
        return answer.get("result", answer)

    def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; its id."""
        return int(self.call("lease/grant", {"TTL": ttl})["ID"])

    def put(self, key: str, value: str, lease: int = 0) -> int:
        """Write; the store revision of the write."""
        answer = self.call("kv/put", {"key": _b64(key), "value": _b64(value),
                                      "lease": str(lease)})
        return int(answer["header"]["revision"])

    def put_if_created_at(self, guard: str, create_revision: int, key: str, value: str,
                          lease: int = 0) -> tuple[bool, int]:
        """Write ``key`` only while ``guard`` is the key created at ``create_revision``
        (0: only while ``guard`` is absent): (succeeded, revision of the answer)."""
        answer = self.call("kv/txn", {
            "compare": [{"key": _b64(guard), "target": "CREATE", "result": "EQUAL",
                         "create_revision": str(create_revision)}],
            "success": [{"request_put": {"key": _b64(key), "value": _b64(value),
                                         "lease": str(lease)}}]})
        return bool(answer.get("succeeded", False)), int(answer["header"]["revision"])

    def keepalive(self, lease_id: int) -> int:
        """Renew a lease once; the TTL etcd granted (0: the lease is gone)."""
        return int(self.call("lease/keepalive", {"ID": str(lease_id)}).get("TTL", 0))


def connect(args: argparse.Namespace) -> Gateway:
    return Gateway(args.endpoint, args.tls, os.environ.get("ETCDLAB_USER", ""),
                   os.environ.get("ETCDLAB_PASSWORD", ""))


def take_lock(args: argparse.Namespace) -> tuple[Gateway, bool, int, float]:
    """Grant a lease of ``args.ttl``, take the lock with it (only if absent) and say so:
    (the connection, whether taken, the fencing token, when the own clock says it ends)."""
    etcd = connect(args)
    believed_start = time.time()  # before the grant: the careful choice
    lease_id = etcd.grant(args.ttl)
    believed_end = believed_start + args.ttl
    taken, token = etcd.put_if_created_at(args.lock, 0, args.lock, args.name, lease_id)
    emit("acquired", lease=lease_id, taken=taken, token=token, believed_end=believed_end)
    return etcd, taken, token, believed_end


def holder(args: argparse.Namespace) -> None:
    """Take the lock, never renew, act until the own clock says the lease has ended."""
    etcd, taken, token, believed_end = take_lock(args)
    if not taken:
        return
    time.sleep(max(0.0, believed_end - args.act_window - time.time()))
    count = 0
    while time.time() < believed_end:
        count += 1
        write(etcd, args, token, count)
        time.sleep(max(0.0, min(args.act_interval, believed_end - time.time())))
    emit("believed_expired")


def write(etcd: Gateway, args: argparse.Namespace, token: int, count: int) -> None:
    """The ``count``-th write to the protected resource: odd ones fenced (a transaction
    comparing the lock key's create revision with ``token``), even ones a plain put."""
    kind = "fenced" if count % 2 else "unfenced"
    value = f"{args.name}-{count}"
    try:
        if kind == "fenced":
            ok, revision = etcd.put_if_created_at(args.lock, token, args.resource, value)
        else:
            ok, revision = True, etcd.put(args.resource + "-unfenced", value)
        outcome = "ok" if ok else "failed"
    except OSError:  # timed out or refused on the way: it may or may not have been applied
        ok, revision, outcome = False, None, "unknown"
    emit("write", kind=kind, ok=ok, revision=revision, outcome=outcome)


def paused_holder(args: argparse.Namespace) -> None:
    """Take the lock, check by the own clock that the lease is valid, then do ``writes``
    writes without looking again (check, then act). The experiment stops this process
    between the check and the first write (``act_delay`` leaves it the time)."""
    etcd, taken, token, believed_end = take_lock(args)
    if not taken:
        return
    emit("checked", valid=time.time() < believed_end, believed_left=believed_end - time.time())
    time.sleep(args.act_delay)
    emit("acting", believed_left=believed_end - time.time())  # it does not look at it
    for count in range(1, args.writes + 1):
        write(etcd, args, token, count)
        time.sleep(args.act_interval)
    emit("done")


def keeper(args: argparse.Namespace) -> None:
    """Hold a lease with keepalives every TTL/3 by the own clock, for ``duration``."""
    etcd = connect(args)
    lease_id = etcd.grant(args.ttl)
    etcd.put(args.lock, args.name, lease=lease_id)
    emit("granted", lease=lease_id)
    end = time.time() + args.duration
    while time.time() < end:
        time.sleep(min(args.ttl / 3.0, max(0.0, end - time.time())))
        try:
            emit("keepalive", ttl=etcd.keepalive(lease_id))
        except OSError as exc:
            emit("keepalive", ttl=None, error=type(exc).__name__)
    emit("done")  # the experiment revokes the lease once it has stopped watching it


CLIENTS = {"holder": holder, "keeper": keeper, "paused": paused_holder}


def main(argv: list[str]) -> None:
    """Entry point: ``--client KIND`` and its options (the node-agent mark is ignored)."""
    parser = argparse.ArgumentParser(prog="lease_client")
    parser.add_argument("--client", choices=tuple(CLIENTS), required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--endpoint", required=True, help="ip:port of the member")
    parser.add_argument("--tls", action="store_true", help="https with the node's certificate")
    parser.add_argument("--ttl", type=int, required=True)
    parser.add_argument("--lock", required=True)
    parser.add_argument("--resource", default="")
    parser.add_argument("--act-window", type=float, default=2.0)
    parser.add_argument("--act-interval", type=float, default=0.05)
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument("--act-delay", type=float, default=1.0)
    parser.add_argument("--writes", type=int, default=6)
    args, _mark = parser.parse_known_args(argv)
    emit("started", pid=os.getpid())
    CLIENTS[args.client](args)


if __name__ == "__main__":
    main(sys.argv[1:])
