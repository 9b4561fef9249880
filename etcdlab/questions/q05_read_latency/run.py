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

Staleness under load: for each write rate (``staleness_rates``), writer threads put to one
key through the leader on a steady schedule while readers on a follower read it, in
alternating blocks of serializable and linearizable reads. Every write and every read is
kept with its invocation and completion on this machine's monotonic clock and the
revision it created or saw, so that the analysis can bound the cluster's revision at each
read (:mod:`.analysis`). The rates take turns in rounds (in alternating
order), so that a machine getting busier or quieter during the run does not favour one.
Each segment writes its own key, and its writes and linearizable reads are recorded as one
client history (``read-latency.staleness-RATE-rROUND.history.jsonl``), small enough for the
runner's linearizability check to give a verdict within its budget.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import etcd3
import grpc
from etcd3 import etcdrpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import Member, classify, member, open_channel, settled
from etcdlab.lab.cluster import CLIENT_PORT, Cluster
from etcdlab.params import Param
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q05_read_latency import SPEC
from etcdlab.questions.q05_read_latency.analysis import (  # noqa: F401 (the pure part, re-exported)
    ASKED,
    CONSISTENCIES,
    PATHS,
    RATES_PATTERN,
    TARGETS,
    cell_summary,
    harness_summary,
    parse_rates,
    summarize,
)
from etcdlab.questions.runner import Context, Experiment

KEY = "/etcdlab/read-latency/key"
VALUE = "v" * 16
STALE_PREFIX = "/etcdlab/read-latency/stale/"
SETTLE_S = 30.0  # how long a segment's revision reads may be retried through a stall


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
    leader, follower = leader_and_follower(cluster, "no leader to measure against")
    targets = {"leader": leader, "follower": follower}
    with member(cluster, leader, timeout=5.0) as one:
        one.put(KEY, VALUE)
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
    if params["staleness_s"] > 0:
        staleness(ctx)


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


def leader_and_follower(cluster: Cluster, error: str) -> tuple[str, str]:
    """The leader and the first other member (LabError ``error`` when there is no leader)."""
    leader = cluster.leader()
    if leader is None:
        raise LabError(error)
    return leader, next(n for n in cluster.names if n != leader)


def staleness(ctx: Context) -> None:
    """Writers on the leader at each rate, readers on a follower; every segment's writes and
    reads go into ``samples["staleness"]["segments"]`` as they are taken."""
    cluster, params = ctx.cluster, ctx.params
    rates = parse_rates(params["staleness_rates"])
    leader, follower = leader_and_follower(cluster, "no leader to write to")
    run_id = uuid.uuid4().hex[:12]
    sink: dict[str, Any] = {
        "leader": leader, "follower": follower,
        "heartbeat_ms": cluster.config.etcd_heartbeat_interval_ms,
        "rates": params["staleness_rates"], "segments": []}
    ctx.samples["staleness"] = sink
    rounds = params["staleness_rounds"]
    segment_s = params["staleness_s"] / rounds
    with ctx.phase("read-latency: staleness under load", rounds * len(rates)) as advance:
        for round_no in range(rounds):
            for rate in rates if round_no % 2 == 0 else list(reversed(rates)):
                segment = {"rate": "max" if rate is None else rate, "round": round_no,
                           "writers": params["staleness_writers"],
                           "readers": params["staleness_readers"]}
                label = f"staleness-{segment['rate']}-r{round_no}"
                # A fresh key per segment: each history starts from an absent key.
                segment.update(key=f"{STALE_PREFIX}{run_id}/{label}", history=label)
                sink["segments"].append(segment)
                run_segment(cluster, leader, follower, segment["key"], rate, segment_s,
                            params, segment, ctx.history(label))
                ctx.log(_segment_line(segment))
                advance()
    sink["leader_after"] = cluster.leader()


def run_segment(cluster: Cluster, leader: str, follower: str, key: str, rate: int | None,
                seconds: float, params: Mapping[str, Any], segment: dict[str, Any],
                recorder: Any) -> None:
    """One rate for ``seconds``: writers paced on one schedule (``rate`` None: as fast as
    they go), readers alternating serializable and linearizable blocks, started after the
    writers and stopped before them, so that every read lies inside the write load.

    Times are µs on this machine's monotonic clock from ``t0_ns``, an invocation rounded
    down and a completion rounded up, so that an interval never shrinks."""
    timeout = params["op_timeout_s"]
    block_s = params["staleness_block_s"]
    segment["leader"] = leader
    probe = member(cluster, leader, timeout)
    writes: list[list[int | None]] = []
    blocks: list[dict[str, Any]] = []
    write_errors: dict[str, int] = {}
    segment.update(writes=writes, write_errors=write_errors, blocks=blocks)
    t0 = time.monotonic_ns()
    segment["t0_ns"] = t0
    # The revision before any write of this segment (nothing else writes the lab meanwhile).
    segment["base_revision"] = settled(lambda: probe.get(key)["revision"], SETTLE_S,
                                       "read the revision before the load")
    stop_writes, stop_reads = threading.Event(), threading.Event()
    schedule = {"next": 0, "start": time.monotonic_ns()}
    lock = threading.Lock()
    interval_ns = None if rate is None else 1e9 / rate

    def next_slot() -> None:
        if interval_ns is None:
            return
        with lock:
            slot = schedule["start"] + schedule["next"] * interval_ns
            schedule["next"] += 1
        delay = (slot - time.monotonic_ns()) / 1e9
        if delay > 0:
            stop_writes.wait(delay)

    def write(index: int) -> None:
        etcd = Member(cluster.endpoint(leader), cluster.tls_dir or "", timeout, leader)
        etcd.record_into(recorder, f"writer-{index}")
        count = 0
        try:
            while True:
                next_slot()
                if stop_writes.is_set():
                    return
                count += 1
                began = time.monotonic_ns()
                try:
                    revision = etcd.put(key, f"{segment['rate']}/{segment['round']}/{index}/"
                                             f"{count}")
                except grpc.RpcError as exc:
                    outcome = classify(exc)
                    write_errors[outcome] = write_errors.get(outcome, 0) + 1
                    if outcome == "unknown":  # it may have made a revision: keep its start
                        writes.append([(began - t0) // 1000, None, None])
                    continue
                writes.append([(began - t0) // 1000, -((t0 - time.monotonic_ns()) // 1000),
                               revision])
        finally:
            etcd.close()

    def read(index: int) -> None:
        etcd = Member(cluster.endpoint(follower), cluster.tls_dir or "", timeout, follower)
        etcd.record_into(recorder, f"reader-{index}")  # linearizable reads only
        serializable = (index + segment["round"]) % 2 == 0
        try:
            while not stop_reads.is_set():
                block = {"reader": index,
                         "consistency": "serializable" if serializable else "linearizable",
                         "reads": [], "errors": {}}
                blocks.append(block)
                rows, errors = block["reads"], block["errors"]
                ends = time.monotonic_ns() + block_s * 1e9
                while not stop_reads.is_set() and time.monotonic_ns() < ends:
                    began = time.monotonic_ns()
                    try:
                        answer = etcd.get(key, serializable=serializable)
                    except grpc.RpcError as exc:
                        outcome = classify(exc)
                        errors[outcome] = errors.get(outcome, 0) + 1
                        continue
                    rows.append([(began - t0) // 1000, -((t0 - time.monotonic_ns()) // 1000),
                                 answer["revision"], answer["mod_revision"]])
                serializable = not serializable
        finally:
            etcd.close()

    probes: list[list[int]] = []
    segment["probes"] = probes
    probe_s = params["staleness_probe_ms"] / 1000.0

    def watch_leader() -> None:
        # The leader's own (applied) revision, read from it every ``probe_s``: with the
        # writes, it bounds the revision the leader had at each follower read.
        etcd = Member(cluster.endpoint(leader), cluster.tls_dir or "", timeout, leader)
        try:
            while not stop_writes.is_set():
                began = time.monotonic_ns()
                try:
                    answer = etcd.get(key, serializable=True)
                except grpc.RpcError:
                    continue
                probes.append([(began - t0) // 1000, -((t0 - time.monotonic_ns()) // 1000),
                               answer["revision"]])
                stop_writes.wait(probe_s)
        finally:
            etcd.close()

    writers = [threading.Thread(target=write, args=(i,), daemon=True)
               for i in range(params["staleness_writers"])]
    if probe_s > 0:
        writers.append(threading.Thread(target=watch_leader, daemon=True))
    readers = [threading.Thread(target=read, args=(i,), daemon=True)
               for i in range(params["staleness_readers"])]
    try:
        for thread in writers:
            thread.start()
        time.sleep(min(0.1, seconds / 10))  # the load runs before the first read
        for thread in readers:
            thread.start()
        stop_reads.wait(seconds)
    finally:
        stop_reads.set()
        for thread in readers:
            thread.join()
        stop_writes.set()
        for thread in writers:
            thread.join()
    segment["elapsed_s"] = round((time.monotonic_ns() - t0) / 1e9, 6)
    # Once every writer has stopped, the revision no read can have exceeded.
    segment["final_revision"] = settled(lambda: probe.get(key)["revision"], SETTLE_S,
                                        "read the revision after the load")
    probe.close()
    segment["leader_after"] = cluster.leader()


def _segment_line(segment: Mapping[str, Any]) -> str:
    ok = [w for w in segment["writes"] if w[2] is not None]
    reads = {c: sum(len(b["reads"]) for b in segment["blocks"] if b["consistency"] == c)
             for c in CONSISTENCIES}
    rate = "unpaced" if segment["rate"] == "max" else f"{segment['rate']} writes/s"
    return (f"staleness {rate}, round {segment['round']}: "
            f"{len(ok) / segment['elapsed_s']:.0f} writes/s acknowledged, "
            f"{reads['serializable']} serializable and {reads['linearizable']} linearizable "
            f"reads, write errors {segment['write_errors'] or 'none'}")


def _cell_line(cell: Mapping[str, Any]) -> str:
    values = cell["latencies_us"]
    p50 = statistics.median(values) / 1000.0 if values else float("nan")
    rate = len(values) / cell["elapsed_s"] if cell["elapsed_s"] else float("nan")
    return (f"c={cell['concurrency']} {cell['target']} ({cell['member']}) "
            f"{cell['consistency']}: p50 {p50:.3f} ms, {rate:.0f} reads/s, "
            f"errors {cell['errors'] or 'none'}")


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("reads", FULL_RUN["reads"], "reads per cell", minimum=1),
        Param("warmup", FULL_RUN["warmup"], "reads before each cell is timed", minimum=0),
        Param("concurrency", FULL_RUN["concurrency"], "numbers of concurrent clients",
              pattern=r"[1-9][0-9]{0,3}(,[1-9][0-9]{0,3})*",
              pattern_help="comma-separated numbers of clients ≥ 1, like 1,8,32"),
        Param("op_timeout_s", 5.0, "timeout of one read", unit="s", above=0),
        Param("harness_reads", FULL_RUN["harness_reads"], "reads of the harness comparison",
              minimum=1),
        Param("harness_blocks", FULL_RUN["harness_blocks"],
              "blocks the harness reads are split into", minimum=1),
        Param("staleness_rates", FULL_RUN["staleness_rates"],
              "write rates of the staleness measurement (max: as fast as the writers go)",
              unit="writes/s", pattern=RATES_PATTERN,
              pattern_help="comma-separated writes per second or max, like 100,500,max"),
        Param("staleness_s", FULL_RUN["staleness_s"],
              "time under load per rate (0: no staleness measurement)", unit="s", minimum=0,
              maximum=3600),
        Param("staleness_rounds", FULL_RUN["staleness_rounds"], "rounds the rates take turns in",
              minimum=1, maximum=100),
        Param("staleness_block_s", 0.25,
              "length of one block of serializable or linearizable reads", unit="s",
              above=0, maximum=60),
        Param("staleness_writers", 8, "writer threads on the leader", minimum=1, maximum=64),
        Param("staleness_readers", 1, "reader threads on a follower", minimum=1, maximum=64),
        Param("staleness_probe_ms", 2.0,
              "pause between serializable reads of the leader's own revision (0: none)",
              unit="ms", minimum=0, maximum=1000),
    ),
    quick={"reads": 1000, "warmup": 100, "harness_reads": 1000, "harness_blocks": 20,
           "staleness_rates": "100,500", "staleness_s": 3.0, "staleness_rounds": 2},
    run=run,
    summarize=summarize,
)
