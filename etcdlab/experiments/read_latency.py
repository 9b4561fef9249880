"""Q5 ``read-latency``: linearizable vs serializable reads.

Cells: consistency (linearizable: ReadIndex, a quorum round through the leader;
serializable: the member's local state) × target (the leader, a follower) × concurrency
(client threads, each with its own gRPC connection). Each cell reads one small key
``reads`` times in total after a warm-up, through a bare gRPC ``Range`` stub, and records
every latency; throughput is the successful reads over the wall time from the common
start to the last thread's end.

The harness is measured too: the same serializable loop on the leader, one client,
through the bare stub and through the ``etcd3`` client (python3-etcd3), in alternating
blocks, so that the report can say how much of a latency is the Python client.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import etcd3
import grpc
from etcd3 import etcdrpc

from etcdlab.analysis.read_latency import (  # noqa: F401 (the pure part, re-exported)
    CONSISTENCIES,
    PATHS,
    TARGETS,
    cell_summary,
    harness_summary,
    summarize,
)
from etcdlab.cluster import CLIENT_PORT, Cluster
from etcdlab.errors import LabError
from etcdlab.experiments.base import Context, Experiment
from etcdlab.params import Param
from etcdlab.transport import classify, open_channel

KEY = "/etcdlab/read-latency/key"
VALUE = "v" * 16


def parse_concurrency(text: str) -> list[int]:
    """``"1,8,32"`` → [1, 8, 32] (each at least 1)."""
    try:
        levels = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise LabError(f"concurrency must be comma-separated whole numbers, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise LabError(f"concurrency must list numbers of clients ≥ 1, got {text!r}")
    return levels


def run(ctx: Context) -> None:
    """Every cell, then the harness comparison; the leader is recorded before and after."""
    cluster, params = ctx.cluster, ctx.params
    levels = parse_concurrency(params["concurrency"])
    leader = cluster.leader()
    if leader is None:
        raise LabError("no leader to measure against")
    follower = next(n for n in cluster.names if n != leader)
    targets = {"leader": leader, "follower": follower}
    with cluster.client(leader) as client:
        client.put(KEY, VALUE)
    ctx.samples["leader_before"] = leader
    ctx.samples["cells"] = []
    cells = len(levels) * len(TARGETS) * len(CONSISTENCIES)
    with ctx.phase("read-latency: cells", cells) as advance:
        for concurrency in levels:
            for target in TARGETS:
                for consistency in CONSISTENCIES:
                    cell = run_cell(cluster, targets[target], consistency == "serializable",
                                    concurrency, params["reads"], params["warmup"],
                                    params["op_timeout_s"])
                    cell.update(consistency=consistency, target=target, member=targets[target])
                    ctx.samples["cells"].append(cell)
                    ctx.log(_cell_line(cell))
                    advance()
    with ctx.phase("read-latency: harness", params["harness_blocks"]) as advance:
        ctx.samples["harness"] = harness(cluster, leader, params, advance)
    ctx.samples["leader_after"] = cluster.leader()
    h = harness_summary(ctx.samples["harness"])
    ctx.log(f"harness: bare stub median {h['bare_p50_ms'] * 1000:.0f} µs, etcd3 client "
            f"{h['etcd3_p50_ms'] * 1000:.0f} µs (paired ratio {h['ratio']:.2f}); client CPU "
            f"per read {h.get('cpu_bare_us', 0):.0f} / {h.get('cpu_etcd3_us', 0):.0f} µs")


def run_cell(cluster: Cluster, member: str, serializable: bool, concurrency: int, reads: int,
             warmup: int, timeout: float) -> dict[str, Any]:
    """``reads`` reads of one key shared by ``concurrency`` threads; every latency in µs."""
    endpoint = f"{cluster.ips[member]}:{CLIENT_PORT}"
    shares = [reads // concurrency + (1 if i < reads % concurrency else 0)
              for i in range(concurrency)]
    warm_each = max(5, warmup // concurrency)
    start = threading.Barrier(concurrency + 1)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[dict[str, int]] = [{} for _ in range(concurrency)]
    failures: list[BaseException] = []

    def work(index: int) -> None:
        channel = open_channel(endpoint, cluster.tls_dir or "")
        try:
            stub = etcdrpc.KVStub(channel)
            request = etcdrpc.RangeRequest(key=KEY.encode(), serializable=serializable)
            for _ in range(warm_each):
                stub.Range(request, timeout=timeout)
        except BaseException as exc:  # noqa: BLE001 - reported after the barrier
            failures.append(exc)
            start.abort()
            channel.close()
            return
        try:
            start.wait()
            mine, counts = latencies[index], errors[index]
            for _ in range(shares[index]):
                began = time.perf_counter_ns()
                try:
                    stub.Range(request, timeout=timeout)
                except grpc.RpcError as exc:
                    outcome = classify(exc)
                    counts[outcome] = counts.get(outcome, 0) + 1
                    continue
                mine.append((time.perf_counter_ns() - began) / 1000.0)
        except threading.BrokenBarrierError:
            pass
        finally:
            channel.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join()
        raise LabError(f"{member}: warm-up reads failed: {failures[0]}") from None
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged: dict[str, int] = {}
    for counts in errors:
        for outcome, count in counts.items():
            merged[outcome] = merged.get(outcome, 0) + count
    return {
        "concurrency": concurrency,
        "reads": reads,
        "warmup_per_client": warm_each,
        "elapsed_s": round(elapsed, 6),
        "errors": merged,
        "latencies_us": [round(v, 1) for per_thread in latencies for v in per_thread],
    }


def harness(cluster: Cluster, member: str, params: Mapping[str, Any],
            advance: Callable[[], None]) -> dict[str, Any]:
    """Serializable reads on one member, one client: bare stub vs etcd3, alternating blocks."""
    blocks = params["harness_blocks"]
    per_block = max(1, params["harness_reads"] // blocks)
    timeout = params["op_timeout_s"]
    channel = cluster.channel(member)
    stub = etcdrpc.KVStub(channel)
    request = etcdrpc.RangeRequest(key=KEY.encode(), serializable=True)
    client = etcd3.client(host=cluster.ips[member], port=CLIENT_PORT, timeout=timeout,
                          **cluster.etcd3_tls())
    loops: dict[str, Callable[[], Any]] = {
        "bare": lambda: stub.Range(request, timeout=timeout),
        "etcd3": lambda: client.get(KEY, serializable=True),
    }
    latencies: dict[str, list[float]] = {path: [] for path in PATHS}
    # CPU time of this whole process (gRPC's own threads included) per read, per block:
    # the work the client does, which waiting for a busy machine does not inflate.
    cpu: dict[str, list[float]] = {path: [] for path in PATHS}
    try:
        for path in PATHS:
            for _ in range(max(5, params["warmup"])):
                loops[path]()
        for block in range(blocks):
            order = PATHS if block % 2 == 0 else tuple(reversed(PATHS))
            for path in order:
                read = loops[path]
                cpu_began = time.process_time()
                for _ in range(per_block):
                    began = time.perf_counter_ns()
                    read()
                    latencies[path].append(round((time.perf_counter_ns() - began) / 1000.0, 1))
                cpu[path].append(round((time.process_time() - cpu_began) / per_block * 1e6, 1))
            advance()
    finally:
        client.close()
        channel.close()
    return {"member": member, "blocks": blocks, "reads_per_block": per_block, **latencies,
            "cpu_us_per_read": cpu}


def _cell_line(cell: Mapping[str, Any]) -> str:
    values = cell["latencies_us"]
    p50 = statistics.median(values) / 1000.0 if values else float("nan")
    rate = len(values) / cell["elapsed_s"] if cell["elapsed_s"] else float("nan")
    return (f"c={cell['concurrency']} {cell['target']} ({cell['member']}) "
            f"{cell['consistency']}: p50 {p50:.3f} ms, {rate:.0f} reads/s, "
            f"errors {cell['errors'] or 'none'}")


EXPERIMENT = Experiment(
    name="read-latency",
    question=5,
    title="Read latency: linearizable vs serializable, leader vs follower, 1–32 clients",
    parameters=(
        Param("reads", 5000, "reads per cell", minimum=1),
        Param("warmup", 200, "reads before each cell is timed", minimum=0),
        Param("concurrency", "1,8,32", "numbers of concurrent clients",
              pattern=r"[1-9][0-9]{0,3}(,[1-9][0-9]{0,3})*",
              pattern_help="comma-separated numbers of clients ≥ 1, like 1,8,32"),
        Param("op_timeout_s", 5.0, "timeout of one read", unit="s", above=0),
        Param("harness_reads", 4000, "reads of the harness comparison", minimum=1),
        Param("harness_blocks", 40, "blocks the harness reads are split into", minimum=1),
    ),
    quick={"reads": 1000, "warmup": 100, "harness_reads": 1000, "harness_blocks": 20},
    run=run,
    summarize=summarize,
)
