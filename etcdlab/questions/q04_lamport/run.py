"""Q4 ``lamport``: Lamport clocks with process ids, carried through etcd.

P processes (threads of this program, one per node, each with its own etcd client bound
to its own member and its own id 1..P) share nothing but etcd. Each does ``steps``
events, at random a local event or a send; a send is a put to the receiver's inbox key
carrying the sender's clock and id, and the receiver learns of it through a watch on its
inbox prefix. The clock rules are Lamport's (:class:`etcdlab.figures.clocks.LamportClock`): +1 on
a local or send event, max(C, received) + 1 on a receive; events are totally ordered by
(C, id). Every event is logged with its clock; the checks (clock condition over every
causally related pair, found with vector clocks computed from the log; ties of the
total order) are done on the log afterwards.

Then the course report's variant: one shared "global clock" key that every process
reads, maxes with its own clock, increments and writes back, (a) with a plain put and
(b) with a compare-and-swap transaction on the key's mod_revision, retried on conflict.
A write whose predecessor (in revision order) it did not read overwrote that update:
a lost update. The summary, the checks and the findings are computed by
:mod:`.analysis`.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

import grpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import Member, member
from etcdlab.figures import clocks
from etcdlab.lab.cluster import Cluster
from etcdlab.params import Param
from etcdlab.questions.common import PrefixWatch, run_together
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q04_lamport import SPEC
from etcdlab.questions.q04_lamport.analysis import ASKED, summarize
from etcdlab.questions.q04_lamport.analysis import lost_updates as lost_updates  # re-exported
from etcdlab.questions.runner import Context, Experiment

KEY_PREFIX = "/etcdlab/lamport/"


def run(ctx: Context) -> None:
    """Message passing through inboxes, then the shared key without and with a CAS."""
    params, cluster = ctx.params, ctx.cluster
    base = f"{KEY_PREFIX}{time.time_ns()}"
    with ctx.phase("lamport: messages through etcd", 1) as advance:
        ctx.samples["messages"] = exchange(cluster, params, f"{base}/inbox")
        advance()
    ctx.samples["shared_key"] = {}
    for mode in ("naive", "cas"):
        with ctx.phase(f"lamport: shared clock key ({mode})", 1) as advance:
            ctx.samples["shared_key"][mode] = shared_clock(
                cluster, params, f"{base}/global/{mode}", cas=mode == "cas")
            advance()
    summary = summarize(ctx.samples, params)
    ctx.log(f"{summary['events']} events, {summary['messages']} messages, "
            f"{summary['clock_condition_violations']} clock-condition violations, "
            f"{summary['total_order_ties']} ties; shared key lost updates: naive "
            f"{summary['shared_key']['naive_lost_updates']}, cas "
            f"{summary['shared_key']['cas_lost_updates']}")


class Process(threading.Thread):
    """One Lamport process: its own clock, id, etcd member and inbox; logs every event."""

    def __init__(self, pid: int, cluster: Cluster, node: str, inbox: str, peers: list[int],
                 params: Mapping[str, Any], started: float) -> None:
        super().__init__(daemon=True, name=f"lamport-{pid}")
        self.pid = pid
        self.node = node
        self.cluster = cluster
        self.inbox = inbox
        self.peers = peers
        self.params = params
        self.started = started
        self.clock = clocks.LamportClock(pid)
        self.rng = random.Random(params["seed"] * 1000 + pid)
        self.events: list[dict[str, Any]] = []
        self.arrived: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.go = threading.Event()
        self.sent_all = threading.Event()
        self.expected: int | None = None
        self.received = 0
        self.unknown_sends = 0
        self.watch_error: str | None = None
        self.error: str | None = None

    def run(self) -> None:
        """The process's life; an error is kept for the experiment to report."""
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - reported by the experiment
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()
            self.sent_all.set()

    def _run(self) -> None:
        client = member(self.cluster, self.node, self.params["op_timeout_s"])
        watch = PrefixWatch(self.cluster, self.node, f"{self.inbox}/{self.pid}/",
                            self._on_event)
        try:
            self.ready.set()
            self.go.wait()
            for _step in range(self.params["steps"]):
                self._deliver()
                if self.rng.random() < self.params["send_probability"]:
                    self._send(client, self.rng.choice(self.peers))
                else:
                    self._record("local", self.clock.tick())
                time.sleep(self.rng.uniform(0, self.params["max_think_ms"] / 1000.0))
            self.sent_all.set()
            deadline = time.monotonic() + self.params["drain_timeout_s"]
            while time.monotonic() < deadline:
                if self.expected is not None and self.received >= self.expected:
                    break
                self._deliver(wait=0.05)
        finally:
            watch.close()
            client.close()
            self.watch_error = watch.error

    def _on_event(self, event: Any, _received: float) -> None:
        if event.type == event.PUT:
            self.arrived.put(json.loads(event.kv.value))

    def _deliver(self, wait: float = 0.0) -> None:
        """Receive every message that has arrived (a receive event each)."""
        while True:
            try:
                message = self.arrived.get(timeout=wait) if wait else self.arrived.get_nowait()
            except queue.Empty:
                return
            wait = 0.0
            clock = self.clock.receive(message["clock"])
            self.received += 1
            self._record("receive", clock, message["msg"], message["from"])

    def _send(self, client: Member, peer: int) -> None:
        clock = self.clock.tick()
        msg = f"{self.pid}.{self.clock.value}"
        body = json.dumps({"msg": msg, "from": self.pid, "clock": clock})
        outcome = "ok"
        try:
            client.put(f"{self.inbox}/{peer}/{msg}", body)
        except grpc.RpcError:
            outcome = "unknown"  # the put may have been applied: the receiver may see it
            self.unknown_sends += 1
        self._record("send", clock, msg, peer, outcome)

    def _record(self, kind: str, clock: int, msg: str | None = None, peer: int | None = None,
                outcome: str = "ok") -> None:
        self.events.append({"process": self.pid, "seq": len(self.events), "kind": kind,
                            "clock": clock, "msg": msg, "peer": peer, "outcome": outcome,
                            "t": round(time.monotonic() - self.started, 6)})


def exchange(cluster: Cluster, params: Mapping[str, Any], inbox: str) -> dict[str, Any]:
    """Run the P processes from one start signal; return their merged event logs."""
    count = params["processes"]
    names = cluster.names
    pids = list(range(1, count + 1))
    started = time.monotonic()
    processes = [Process(pid, cluster, names[(pid - 1) % len(names)], inbox,
                         [p for p in pids if p != pid], params, started) for pid in pids]
    for process in processes:
        process.start()
    for process in processes:
        process.ready.wait(30)
    for process in processes:
        process.go.set()
    for process in processes:
        process.sent_all.wait(params["steps"] * params["max_think_ms"] / 1000.0 + 120)
    for process in processes:  # the observer tells each how many acknowledged sends await it
        process.expected = sum(1 for p in processes for e in p.events
                               if e["kind"] == "send" and e["peer"] == process.pid
                               and e["outcome"] == "ok")
    for process in processes:
        process.join(params["drain_timeout_s"] + 30)
    errors = [f"process {p.pid}: {p.error}" for p in processes if p.error]
    if errors:
        raise LabError("; ".join(errors))
    return {
        "processes": {str(p.pid): {"node": p.node, "events": len(p.events),
                                   "unknown_sends": p.unknown_sends,
                                   "watch_error": p.watch_error} for p in processes},
        "events": [e for p in processes for e in p.events],
    }


def shared_clock(cluster: Cluster, params: Mapping[str, Any], key: str, cas: bool
                 ) -> dict[str, Any]:
    """The course report's global clock key: read, max, +1, write back, by P processes."""
    count, updates = params["processes"], params["shared_updates"]
    names = cluster.names
    clients = [member(cluster, names[i % len(names)], params["op_timeout_s"])
               for i in range(count)]
    clients[0].put(key, json.dumps({"clock": 0, "pid": 0}))

    def work(index: int) -> dict[str, Any]:
        pid, client = index + 1, clients[index]
        clock = 0
        outcome: dict[str, Any] = {"writes": [], "unknown": 0, "retries": 0}
        for _ in range(updates):
            while True:
                try:
                    answer = client.get(key)
                    value, mod_revision = answer["value"], answer["mod_revision"]
                    read = json.loads(value)["clock"]
                    clock = max(clock, read) + 1
                    body = json.dumps({"clock": clock, "pid": pid})
                    if cas:
                        succeeded, revision = client.put_if_unchanged(key, body, mod_revision)
                    else:
                        succeeded, revision = True, client.put(key, body)
                except grpc.RpcError:
                    outcome["unknown"] += 1
                    break
                if succeeded:
                    outcome["writes"].append({"pid": pid, "read_mod_revision": mod_revision,
                                              "read_clock": read, "clock": clock,
                                              "revision": revision})
                    break
                outcome["retries"] += 1
        return outcome

    outcomes, elapsed = run_together(count, work)
    final = clients[0].get(key)["value"]
    for client in clients:
        client.close()
    return {
        "writes": sorted((w for o in outcomes for w in o["writes"]), key=lambda w: w["revision"]),
        "unknown": sum(o["unknown"] for o in outcomes),
        "retries": sum(o["retries"] for o in outcomes),
        "final": json.loads(final),
        "elapsed_s": round(elapsed, 6),
    }


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("processes", FULL_RUN["processes"], "processes exchanging messages", minimum=2,
              maximum=64),
        Param("steps", FULL_RUN["steps"], "events per process", minimum=1),
        Param("send_probability", 0.5, "chance that an event sends a message",
              minimum=0, maximum=1),
        Param("max_think_ms", 20.0, "longest pause between events", unit="ms", minimum=0),
        Param("drain_timeout_s", 30.0, "time allowed to deliver the last messages", unit="s",
              above=0),
        Param("shared_updates", FULL_RUN["shared_updates"],
              "updates of the shared 'global clock' key", minimum=1),
        Param("op_timeout_s", 5.0, "timeout of one etcd request", unit="s", above=0),
        Param("seed", 1, "random seed"),
    ),
    quick={"steps": 20, "shared_updates": 50},
    run=run,
    summarize=summarize,
)
