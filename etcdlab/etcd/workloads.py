"""Client workloads whose histories are recorded and checked (see :mod:`etcdlab.etcd.history`).

:func:`register_workload`: N clients, each a thread with its own channel to every member,
read, write and compare-and-swap a few keys through members picked at random, for a fixed
time, while a fault runs. Every call is recorded (process = client) with a short timeout,
so a member cut off from the leader answers "unknown" instead of holding the client. With
``serializable`` the reads are serializable (answered from the member's own state) and
recorded too: that is the series whose history may not be linearizable.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import grpc

from etcdlab.etcd.history import HistoryRecorder
from etcdlab.etcd.transport import ClusterLike, classify, close_all, open_members

OPS = (("read", 0.5), ("write", 0.3), ("cas", 0.2))


def register_workload(cluster: ClusterLike, history: HistoryRecorder, key_prefix: str,
                      clients: int = 5, keys: int = 3, duration_s: float = 4.0,
                      op_timeout_s: float = 0.5, serializable: bool = False,
                      seed: int = 1) -> dict[str, Any]:
    """Run the workload for ``duration_s``; per operation kind, how many ended ok, failed
    (certainly not applied) or unknown."""
    names = list(cluster.names)
    counts: dict[str, dict[str, int]] = {op: {"ok": 0, "failed": 0, "unknown": 0}
                                         for op, _ in OPS}
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        members = open_members(cluster, names, timeout=op_timeout_s)
        for member in members.values():
            member.record_into(history, f"c{index}", serializable=serializable)
        seen: dict[str, str] = {}
        written = 0
        try:
            while time.monotonic() < deadline:
                member = members[rng.choice(names)]
                key = f"{key_prefix}{rng.randrange(keys)}"
                op = rng.choices([o for o, _ in OPS], [w for _, w in OPS])[0]
                outcome = "ok"
                try:
                    if op == "read" or (op == "cas" and key not in seen):
                        op = "read"
                        value = member.get(key, serializable=serializable)["value"]
                        if value is not None:
                            seen[key] = value
                    elif op == "write":
                        written += 1
                        member.put(key, f"c{index}-{written}")
                    else:
                        written += 1
                        member.put_if_value(key, seen[key], f"c{index}-{written}")
                except grpc.RpcError as exc:
                    outcome = classify(exc)  # the one classifier the history used too
                with lock:
                    counts[op][outcome] += 1
        finally:
            close_all(members)

    threads = [threading.Thread(target=client, args=(i,), name=f"register-c{i}", daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + 30)
    return {"clients": clients, "keys": keys, "duration_s": duration_s,
            "serializable_reads": serializable, "outcomes": counts}
