"""Q10 ``membership``: a dynamic membership (naming) service on etcd leases + watch.

The service is :mod:`etcdlab.etcd.registry`. R instances run as separate Python processes
(``python -m etcdlab.etcd.registry serve``, each talking first to a different member), so that
SIGKILL really stops an instance's keepalives; W watchers run as threads of this
process, each a :class:`~etcdlab.etcd.registry.MembershipWatch` starting on a different
member. Phases:

1. **joins**: the R instances start one after another; join latency = from the
   instance's ``register()`` call (lease grant + put) to the last watcher seeing it.
2. **trials**: per trial one graceful leave (SIGTERM → the instance revokes its lease;
   latency from the revoke call to the last watcher seeing the delete) and one crash
   (SIGKILL; detection = from the kill to the last watcher seeing the key gone: the lease
   must expire, about one TTL after the instance's last keepalive). Each victim is
   replaced by a new instance (another join sample).
3. **churn**: in-process registrations join and leave at a fixed rate; afterwards
   every watcher's view must equal etcd's (the truth, read at a fence revision) and
   every watcher must have applied the same sequence of events.
4. **leader failover**: a probe lease without keepalives is granted, then the etcd
   leader is SIGKILLed while the instances, the watchers and a background churn keep
   running. Measured: whether any instance's key was deleted (a lost registration), by
   how much the new leader extended the probe lease (etcd refreshes every lease to its
   full TTL + election timeout on promotion), and — by revision, against etcd's own event
   history — whether any watcher missed or duplicated an event while it reconnected.
   The old leader is restarted.
5. **a watcher's member lost**: with a background churn, the member one watcher streams
   from (a follower where a watcher streams from one) is crashed (SIGKILL, then
   restarted), and then the member one watcher streams from is cut off from the others
   (iptables; this machine still reaches it, so only etcd's own ``WithRequireLeader``
   cancellation ends the stream there). Measured per case: from the fault to the
   watcher's reconnection (and its reason), the member it moved to, and until its view
   reached etcd's revision of that moment; the next check
   compares every watcher with etcd's history (no event missed or applied twice).
6. **compaction**: a watcher is stopped, the service changes, the history is compacted,
   and the watcher resumes: it must resynchronise from a snapshot and end equal to etcd.

Truth: etcd's event history of the service prefix, read with a fresh watch from the
first watcher's snapshot revision up to a *fence* key written just outside the service
prefix (the watch range covers both, so the fence marks the end of the history).
Operation outcomes are ok, failed, or unknown (timed out); unknown is never a failure.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
from etcd3 import etcdrpc

from etcdlab.errors import LabError
from etcdlab.etcd.registry import (
    SERVICES_PREFIX,
    Change,
    Endpoints,
    Event,
    MembershipWatch,
    Registration,
    RegistryError,
    call_with_retry,
    instance_key,
    prefix_end,
    range_prefix,
    service_prefix,
)
from etcdlab.faults import Faults
from etcdlab.lab.cluster import Cluster
from etcdlab.params import Param
from etcdlab.questions.common import JsonLinesChild, poll_until
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q10_membership import SPEC
from etcdlab.questions.q10_membership.analysis import ASKED, summarize
from etcdlab.questions.runner import Context, Experiment

WAIT_REGISTERED_S = 30.0  # a new Python process imports grpc first: slow on a busy host


# -- watchers ------------------------------------------------------------------------------


class Watchers:
    """W live views of one service and every change each of them applied, with times."""

    def __init__(self, name: str, endpoints: Sequence[str], count: int) -> None:
        self.name = name
        self.endpoints = list(endpoints)
        self.ids = [f"w{i + 1}" for i in range(count)]
        self.records: dict[str, list[dict[str, Any]]] = {wid: [] for wid in self.ids}
        self.watches: dict[str, MembershipWatch] = {}
        self.lock = threading.Lock()

    def start(self) -> None:
        """Start every watcher, each first on a different member."""
        for index, wid in enumerate(self.ids):
            self.watches[wid] = MembershipWatch(
                self.name, self.endpoints, self._recorder(wid), start_index=index).start()

    def _recorder(self, wid: str) -> Callable[[list[Change]], None]:
        def record(changes: list[Change]) -> None:
            now = time.time()
            with self.lock:
                for change in changes:
                    self.records[wid].append({
                        "t": now, "revision": change.revision, "instance": change.instance_id,
                        "kind": change.kind, "via": change.via})

        return record

    def wait_seen(self, instance_id: str, op: str, min_revision: int, timeout: float
                  ) -> dict[str, float | None]:
        """When each watcher first applied ``op`` ("put"/"delete") of the instance at or
        after ``min_revision``; None for a watcher that had not within ``timeout``."""
        seen: dict[str, float | None] = {}

        def all_seen() -> bool:
            with self.lock:
                seen.update({wid: self._first(wid, instance_id, op, min_revision)
                             for wid in self.ids})
            return all(t is not None for t in seen.values())

        poll_until(all_seen, timeout)  # in time.sleep, not Condition.wait: see poll_until
        return seen

    def _first(self, wid: str, instance_id: str, op: str, min_revision: int) -> float | None:
        wanted = {"put": ("join", "update"), "delete": ("leave",)}[op]
        for record in self.records[wid]:
            if (record["instance"] == instance_id and record["kind"] in wanted
                    and record["revision"] >= min_revision):
                return record["t"]
        return None

    def wait_revision(self, revision: int, timeout: float) -> dict[str, int]:
        """Wait until every view reflects ``revision``; returns each view's revision."""
        revisions: dict[str, int] = {}

        def caught_up() -> bool:
            revisions.update({wid: watch.revision for wid, watch in self.watches.items()})
            return all(r >= revision for r in revisions.values())

        poll_until(caught_up, timeout, every=0.05)
        return revisions

    def stop(self) -> None:
        """Stop every watcher."""
        for watch in self.watches.values():
            watch.stop()

    def describe(self) -> list[dict[str, Any]]:
        """Per watcher: its snapshot, every change it applied, its connection log, counters."""
        described = []
        for wid in self.ids:
            watch = self.watches.get(wid)
            if watch is None:
                continue
            view = watch.view
            with self.lock:
                changes = list(self.records[wid])
            described.append({
                "id": wid, "first_etcd": self.endpoints[self.ids.index(wid) % len(
                    self.endpoints)],
                "snapshot_revision": view.snapshot_revision, "revision": view.revision,
                "events_received": watch.events_received, "events_applied": view.events_applied,
                "duplicates_dropped": view.duplicates, "resyncs": view.resyncs,
                "anomalies": list(view.anomalies), "connections": list(watch.connections),
                "changes": changes,
            })
        return described


# -- instances as processes ---------------------------------------------------------------


class InstanceProcess(JsonLinesChild):
    """One instance of the service as its own process; its JSON-line events, as they come."""

    def __init__(self, faults: Faults, name: str, instance_id: str, endpoints: Sequence[str],
                 ttl: int, start_index: int, max_seconds: float) -> None:
        self.instance_id = instance_id
        self.start_index = start_index
        self.first_etcd = endpoints[start_index % len(endpoints)]
        # Closed in kill_if_alive(), which Run.close() calls for every instance.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        command = [sys.executable, "-m", "etcdlab.etcd.registry", "serve", name, instance_id,
                   f"{instance_id}.example:8080", "--etcd", ",".join(endpoints),
                   "--ttl", str(ttl), "--start-index", str(start_index),
                   "--max-seconds", str(max_seconds)]
        super().__init__(faults, command, f"registry instance {instance_id}",
                         stderr=self.stderr)
        self.signalled: dict[str, float] = {}

    def last(self, kind: str, before: float | None = None) -> dict[str, Any] | None:
        """The last event of a kind (sent before ``before``, if given)."""
        with self.lock:
            found = [e for e in self.events
                     if e["event"] == kind and (before is None or e["t"] <= before)]
        return found[-1] if found else None

    def count(self, kind: str, since: float | None = None) -> int:
        """How many events of a kind (since ``since``, if given)."""
        with self.lock:
            return sum(1 for e in self.events
                       if e["event"] == kind and (since is None or e["t"] >= since))

    def signal(self, sig: signal.Signals) -> float:
        """Send a signal; returns the wall-clock time it was sent."""
        sent = time.time()
        self.process.send_signal(sig)
        self.signalled[sig.name] = sent
        return sent

    def wait_exit(self, timeout: float) -> int | None:
        """Exit status, or None if still running after ``timeout``."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def error_text(self) -> str:
        """What the process wrote on stderr (for error messages)."""
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    def kill_if_alive(self) -> None:
        """Cleanup: SIGKILL a process still running, reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.wait_exit(5)
        self.stderr.close()

    def describe(self) -> dict[str, Any]:
        """What the result keeps of this instance: its counters and its exit."""
        with self.lock:
            kinds = Counter(e["event"] for e in self.events)
            registered = next((e for e in self.events if e["event"] == "registered"), None)
        return {"instance": self.instance_id, "first_etcd": self.first_etcd,
                "registered_revision": registered["revision"] if registered else None,
                "events": dict(sorted(kinds.items())), "signalled": dict(self.signalled),
                "exit_code": self.process.poll()}


# -- the run -----------------------------------------------------------------------------


class Run:
    """State shared by the phases of one run."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.params = ctx.params
        self.cluster: Cluster = ctx.cluster
        self.rng = random.Random(self.params["seed"])
        self.name = f"membership-{time.time_ns()}"
        self.endpoints = [self.cluster.endpoint(n) for n in self.cluster.names]
        self.ttl = int(self.params["ttl_s"])
        self.watchers = Watchers(self.name, self.endpoints, self.params["watchers"])
        self.instances: list[InstanceProcess] = []
        self.alive: list[InstanceProcess] = []
        self.registrations: dict[str, Registration] = {}
        self.next_id = 0
        self.kv = Endpoints(self.endpoints)
        self.samples = ctx.samples
        self.samples.update({"service": self.name, "ttl_s": self.ttl, "join": [],
                             "leave": [], "crash": [], "churn": [], "operations": [],
                             "checks": []})

    # -- instances -----------------------------------------------------------------------
    def new_id(self, kind: str) -> str:
        """A fresh instance id."""
        self.next_id += 1
        return f"{kind}{self.next_id:03d}"

    def start_instance(self, kind: str, phase: str, endpoints: Sequence[str] | None = None
                       ) -> tuple[InstanceProcess, dict[str, Any], dict[str, float | None]]:
        """Start one instance process (talking to ``endpoints``, default every member, the
        first one in turn) and wait until it registered and every watcher saw it: (the
        process, its "registered" event, when each watcher saw it)."""
        instance_id = self.new_id(kind)
        process = InstanceProcess(self.ctx.faults, self.name, instance_id,
                                  endpoints or self.endpoints, self.ttl,
                                  0 if endpoints else len(self.instances),
                                  self.params["instance_max_s"])
        self.instances.append(process)
        registered = process.wait_for(("registered", "failed"), WAIT_REGISTERED_S)
        if registered is None or registered["event"] != "registered":
            raise LabError(f"instance {instance_id} did not register: "
                           f"{registered or process.error_text()}")
        self.alive.append(process)
        self.operation(registered["t"], instance_id, +1, phase, "join")
        seen = self.watchers.wait_seen(instance_id, "put", registered["revision"],
                                       self.params["settle_timeout_s"])
        return process, registered, seen

    def join(self, phase: str) -> InstanceProcess:
        """Start one instance process and time its join as every watcher sees it."""
        process, registered, seen = self.start_instance("i", phase)
        instance_id = process.instance_id
        self.samples["join"].append({
            "phase": phase, "instance": instance_id, "first_etcd": process.first_etcd,
            "called": registered["called"], "acked": registered["t"],
            "revision": registered["revision"], "seen": seen,
            "put_ms": _ms(registered["t"] - registered["called"]),
            "join_ms": _latest_ms(seen, registered["called"]),
        })
        return process

    def operation(self, t: float, instance_id: str, delta: int, phase: str, what: str) -> None:
        """One change of the true membership (for the timeline against a watcher)."""
        self.samples["operations"].append(
            {"t": t, "instance": instance_id, "delta": delta, "phase": phase, "what": what})

    def leave(self, trial: int) -> None:
        """SIGTERM the oldest instance: it revokes its lease; time the watchers' delete."""
        process = self.alive.pop(0)
        registered = process.wait_for(("registered",), 0)
        process.signal(signal.SIGTERM)
        done = process.wait_for(("revoked", "revoke_unknown"), 15.0)
        revoking = process.last("revoking")
        outcome = ("ok" if done is not None and done["event"] == "revoked" else "unknown")
        started = revoking["t"] if revoking else process.signalled["SIGTERM"]
        self.operation(started, process.instance_id, -1, "trials", "leave")
        seen = self.watchers.wait_seen(process.instance_id, "delete", registered["revision"],
                                       self.params["settle_timeout_s"])
        process.wait_exit(10)
        self.samples["leave"].append({
            "trial": trial, "instance": process.instance_id, "outcome": outcome,
            "signalled": process.signalled["SIGTERM"], "revoking": started,
            "revoked": done["t"] if done and outcome == "ok" else None,
            "revision": done.get("revision") if done and outcome == "ok" else None,
            "seen": seen, "leave_ms": _latest_ms(seen, started),
        })

    def crash(self, trial: int) -> None:
        """SIGKILL the oldest instance; time until every watcher sees its key expire."""
        process = self.alive.pop(0)
        registered = process.wait_for(("registered",), 0)
        killed = process.signal(signal.SIGKILL)
        process.wait_exit(10)
        keepalive = process.last("keepalive", before=killed)
        last_refresh = keepalive["t"] if keepalive else registered["t"]
        self.operation(killed, process.instance_id, -1, "trials", "crash")
        seen = self.watchers.wait_seen(process.instance_id, "delete", registered["revision"],
                                       2 * self.ttl + self.params["settle_timeout_s"])
        detect = _latest_ms(seen, killed)
        self.samples["crash"].append({
            "trial": trial, "instance": process.instance_id, "killed": killed,
            "last_keepalive": last_refresh, "since_keepalive_s": round(killed - last_refresh, 6),
            "seen": seen, "detect_s": None if detect is None else round(detect / 1000.0, 6),
            "expiry_lag_s": (None if detect is None else
                             round(max(t for t in seen.values() if t is not None)
                                   - (last_refresh + self.ttl), 6)),
        })

    # -- in-process churn ----------------------------------------------------------------
    def churn_op(self, phase: str, leave_probability: float = 0.5) -> dict[str, Any]:
        """One join or leave of an in-process registration; ok or unknown (timed out)."""
        timeout = self.params["op_timeout_s"]
        active = sorted(self.registrations)
        leaving = bool(active) and (len(active) >= self.params["churn_max_active"]
                                    or self.rng.random() < leave_probability)
        if leaving:
            instance_id = self.rng.choice(active)
            registration = self.registrations.pop(instance_id)
            started = time.time()
            revision = registration.close(revoke=True, timeout=timeout)
            outcome = "ok" if revision is not None else "unknown"
            self.operation(started, instance_id, -1, phase, "leave")
            op = "leave"
        else:
            instance_id = self.new_id("c")
            registration = Registration(self.name, instance_id, f"{instance_id}.example:8080",
                                        self.ttl, self.endpoints,
                                        start_index=self.next_id,
                                        request_timeout=min(1.0, timeout))
            started = time.time()
            try:
                registration.start(timeout=timeout)
            except RegistryError:
                # The lease or the put may have been applied: unknown, not failed. Close
                # the object (no keepalives); etcd expires whatever it created.
                registration.close(revoke=False)
                revision, outcome = None, "unknown"
            else:
                self.registrations[instance_id] = registration
                revision, outcome = registration.revision, "ok"
                self.operation(time.time(), instance_id, +1, phase, "join")
            op = "join"
        return {"phase": phase, "op": op, "instance": instance_id, "t": started,
                "elapsed_s": round(time.time() - started, 6), "outcome": outcome,
                "revision": revision}

    def churn(self, phase: str, duration: float, stop: threading.Event | None = None) -> None:
        """Joins and leaves at ``churn_rate`` per second for ``duration`` seconds."""
        period = 1.0 / self.params["churn_rate"]
        next_at = time.monotonic()
        end = time.monotonic() + duration
        while time.monotonic() < end and not (stop is not None and stop.is_set()):
            time.sleep(max(0.0, next_at - time.monotonic()))
            self.samples["churn"].append(self.churn_op(phase))
            next_at += period

    def end_churn(self, phase: str) -> None:
        """Every in-process registration leaves (revoked)."""
        while self.registrations:
            self.samples["churn"].append(self.churn_op(phase, leave_probability=1.0))

    # -- truth -------------------------------------------------------------------------------
    def check(self, label: str) -> dict[str, Any]:
        """Compare every watcher with etcd: history up to a fence, final members."""
        first_snapshot = min(w.view.snapshot_revision for w in self.watchers.watches.values())
        events, fence_revision = truth_history(self.kv, self.name, first_snapshot + 1,
                                               self.params["settle_timeout_s"])
        last_event = events[-1][0] if events else first_snapshot
        revisions = self.watchers.wait_revision(last_event, self.params["settle_timeout_s"])
        entries = members_at(self.kv, self.name, fence_revision)
        truth = sorted([e.key[len(service_prefix(self.name)):], e.create_revision,
                        e.revision] for e in entries)
        views = {}
        for wid, watch in self.watchers.watches.items():
            views[wid] = sorted([m.instance_id, m.create_revision, m.mod_revision]
                                for m in watch.members().values())
        check = {"label": label, "t": time.time(), "fence_revision": fence_revision,
                 "last_event_revision": last_event, "watcher_revisions": revisions,
                 "truth_members": truth, "watcher_members": views, "truth_events": events}
        self.samples["checks"].append(check)
        equal = all(v == truth for v in views.values())
        self.ctx.log(f"{label}: {len(truth)} members at revision {fence_revision}; every "
                     f"watcher equal to etcd: {equal}")
        return check

    def store_revision(self) -> int:
        """etcd's current revision."""
        return range_prefix(self.kv, service_prefix(self.name), 10.0)[1]

    # -- cleanup ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything this run started (processes, registrations, watchers)."""
        for registration in self.registrations.values():
            registration.close(revoke=True, timeout=2.0)
        self.registrations.clear()
        for process in self.alive:
            process.signal(signal.SIGTERM)
        for process in self.instances:
            process.wait_exit(5)
            process.kill_if_alive()
        self.watchers.stop()
        self.kv.close()


def truth_history(endpoints: Endpoints, name: str, from_revision: int, timeout: float
                  ) -> tuple[list[list[Any]], int]:
    """etcd's own history of the service from ``from_revision``: [revision, id, op] rows.

    A fence key just outside the service prefix (``/services/NAME.fence``) is written
    first; a fresh watch from ``from_revision`` over ``/services/NAME`` (which covers both)
    then delivers the history in revision order, and the fence marks its end. Returns
    (rows, fence revision).
    """
    prefix = service_prefix(name)
    fence_key = f"{SERVICES_PREFIX}{name}.fence"
    put = etcdrpc.PutRequest(key=fence_key.encode(), value=str(time.time()).encode())
    fence_revision = int(call_with_retry(
        endpoints, lambda e: e.kv().Put(put, timeout=2.0).header.revision, timeout,
        "fence write"))
    watched = f"{SERVICES_PREFIX}{name}".encode()
    create = etcdrpc.WatchCreateRequest(key=watched, range_end=prefix_end(watched),
                                        start_revision=from_revision)
    rows: list[list[Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        rows.clear()
        call = endpoints.watch().Watch(iter([etcdrpc.WatchRequest(create_request=create)]),
                                       timeout=max(1.0, deadline - time.monotonic()))
        try:
            for response in call:
                if response.compact_revision:
                    raise LabError(f"history from revision {from_revision} was compacted "
                                   f"(to {response.compact_revision})")
                for pb in response.events:
                    event = Event.from_pb(pb)
                    if event.key == fence_key and event.revision == fence_revision:
                        return rows, fence_revision
                    if event.key.startswith(prefix):
                        rows.append([event.revision, event.key[len(prefix):], event.kind])
        except grpc.RpcError as exc:
            if time.monotonic() > deadline:
                raise LabError(f"could not read the history up to the fence: {exc}") from None
            endpoints.rotate()
        finally:
            call.cancel()


def members_at(endpoints: Endpoints, name: str, revision: int) -> list[Event]:
    """The service's keys as they were at ``revision``."""
    prefix = service_prefix(name).encode()
    request = etcdrpc.RangeRequest(key=prefix, range_end=prefix_end(prefix), revision=revision)
    answer = call_with_retry(endpoints, lambda e: e.kv().Range(request, timeout=2.0), 10.0,
                             f"range read at revision {revision}")
    return [Event.from_kv(kv) for kv in answer.kvs]


def run(ctx: Context) -> None:
    """Every phase; cleanup (processes, registrations, watchers) always runs."""
    state = Run(ctx)
    try:
        _run(state)
    finally:
        state.close()
        ctx.samples["watchers"] = state.watchers.describe()
        ctx.samples["instances"] = [p.describe() for p in state.instances]


def _run(state: Run) -> None:
    ctx, params = state.ctx, state.params
    state.watchers.start()
    with ctx.phase("membership: joins", params["instances"]) as advance:
        for _ in range(params["instances"]):
            state.join("joins")
            advance()
    with ctx.phase("membership: leave + crash trials", params["trials"]) as advance:
        for trial in range(1, params["trials"] + 1):
            state.leave(trial)
            state.join("trials")
            state.crash(trial)
            state.join("trials")
            advance()
    crash = [s["detect_s"] for s in state.samples["crash"] if s["detect_s"] is not None]
    ctx.log(f"crash detection: {[round(c, 2) for c in crash]} s (TTL {state.ttl} s)")
    with ctx.phase("membership: churn", 1) as advance:
        state.churn("churn", params["churn_s"])
        state.end_churn("churn")
        advance()
    state.check("after churn")
    with ctx.phase("membership: leader failover", 1) as advance:
        state.samples["failover"] = leader_failover(state)
        advance()
    state.check("after leader failover")
    with ctx.phase("membership: a watcher's member lost", len(LOST_MODES)) as advance:
        state.samples["member_lost"] = member_lost(state, advance)
    state.check("after the watchers' members were lost")
    with ctx.phase("membership: an instance cut off beside a crashed one",
                   params["cut_off_trials"]) as advance:
        state.samples["cut_off"] = []  # filled trial by trial: a failure keeps the others
        for _ in range(params["cut_off_trials"]):
            state.samples["cut_off"].append(instance_cut_off(state))
            advance()
    state.check("after the cut-off instances")
    with ctx.phase("membership: compaction + resync", 1) as advance:
        state.samples["compaction"] = compaction_resync(state)
        advance()
    for process in list(state.alive):
        process.signal(signal.SIGTERM)
        state.operation(time.time(), process.instance_id, -1, "end", "leave")
    for process in state.alive:
        process.wait_exit(10)
    state.alive.clear()


# -- leader failover -------------------------------------------------------------------------


def leader_failover(state: Run) -> dict[str, Any]:
    """Crash the etcd leader under a running service; restart it; what survived."""
    ctx, cluster, params, ttl = state.ctx, state.cluster, state.params, state.ttl
    probe_name = f"{state.name}-probe"
    probe_lease, granted_at = grant_probe(state.kv, probe_name, ttl)
    probe_seen: dict[str, float] = {}
    probe_watch = MembershipWatch(
        probe_name, state.endpoints,
        lambda changes: probe_seen.update(
            {c.kind: time.time() for c in changes if c.kind not in probe_seen}))
    probe_watch.start()
    stop_churn = threading.Event()
    churn = threading.Thread(target=state.churn,
                             args=("failover", 10 * ttl + 60, stop_churn), daemon=True)
    churn.start()
    leader = None
    try:
        time.sleep(max(0.0, granted_at + ttl / 2.0 - time.time()))
        leader = killed = cluster.wait_leader(30.0)
        before_ttl, before_at = lease_remaining(state.kv, probe_lease, 10.0)
        from_revision = state.store_revision()
        alive = [p.instance_id for p in state.alive]
        crashed_at = ctx.faults.crash(leader)
        new_leader = cluster.wait_leader(30.0, exclude=leader)
        elected_at = time.time()
        survivors = Endpoints([cluster.endpoint(n) for n in cluster.names if n != leader])
        try:
            after_ttl, after_at = lease_remaining(survivors, probe_lease, 15.0)
        finally:
            survivors.close()
        ctx.log(f"leader {leader} crashed; {new_leader} elected after "
                f"{elected_at - crashed_at:.2f} s; probe lease {before_ttl} s left before, "
                f"{after_ttl} s after")
        observe_until = crashed_at + ttl + params["failover_margin_s"]
        poll_until(lambda: "leave" in probe_seen and time.time() >= observe_until,
                   2 * ttl + params["settle_timeout_s"], every=0.1)
        stop_churn.set()
        churn.join(params["op_timeout_s"] * 3 + 5)
        ctx.faults.restart(leader)
        restarted_at = time.time()
        state.end_churn("failover")
        to_revision = state.store_revision()
    finally:
        stop_churn.set()
        probe_watch.stop()
    return {
        "killed": killed, "new_leader": new_leader, "crashed_at": crashed_at,
        "elected_at": elected_at,
        "election_s": round(elected_at - crashed_at, 6), "restarted_at": restarted_at,
        "from_revision": from_revision, "to_revision": to_revision, "instances": alive,
        "probe": {"ttl_s": ttl, "granted_at": granted_at, "remaining_before_s": before_ttl,
                  "queried_before_at": before_at, "remaining_after_s": after_ttl,
                  "queried_after_at": after_at, "deleted_seen_at": probe_seen.get("leave")},
        "keepalive_failures": {p.instance_id: p.count("keepalive_failed", since=crashed_at)
                               for p in state.alive},
        "reregistrations": {p.instance_id: p.count("reregistered", since=crashed_at)
                            for p in state.alive},
    }


def grant_probe(endpoints: Endpoints, probe_name: str, ttl: int) -> tuple[int, float]:
    """A lease with one key and no keepalives: (lease id, wall-clock time of the grant)."""
    grant = call_with_retry(
        endpoints, lambda e: e.lease().LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=ttl),
                                                  timeout=2.0), 10.0, "probe lease grant")
    granted_at = time.time()
    key = instance_key(probe_name, "probe").encode()
    put = etcdrpc.PutRequest(key=key, value=b'{"endpoint": "probe"}', lease=grant.ID)
    call_with_retry(endpoints, lambda e: e.kv().Put(put, timeout=2.0), 10.0, "probe key")
    return grant.ID, granted_at


def lease_remaining(endpoints: Endpoints, lease_id: int, timeout: float) -> tuple[int, float]:
    """(remaining TTL in whole seconds as etcd reports it, wall-clock time of the answer)."""
    request = etcdrpc.LeaseTimeToLiveRequest(ID=lease_id)
    answer = call_with_retry(
        endpoints, lambda e: e.lease().LeaseTimeToLive(request, timeout=1.0), timeout,
        "lease time-to-live")
    return answer.TTL, time.time()


# -- a watcher's member lost -------------------------------------------------------------------

LOST_MODES = ("crash", "cut")


def member_lost(state: Run, advance: Callable[[], None]) -> list[dict[str, Any]]:
    """Crash, then cut off, the member a watcher streams from (a follower where one does),
    under churn; heal each."""
    ctx, cluster, params = state.ctx, state.cluster, state.params
    by_endpoint = {cluster.endpoint(n): n for n in cluster.names}
    stop_churn = threading.Event()
    churn = threading.Thread(target=state.churn, args=("member-lost", 600.0, stop_churn),
                             daemon=True)
    churn.start()
    trials: list[dict[str, Any]] = []
    try:
        for mode in LOST_MODES:
            cluster.wait_healthy(timeout=60)
            leader = cluster.wait_leader(30.0)
            streams = [(wid, by_endpoint[w.endpoints.current])
                       for wid, w in state.watchers.watches.items()
                       if w.endpoints.current in by_endpoint]
            # A follower's watcher first (the fault then changes nothing else); when every
            # watcher streams from the leader, the leader's (a new election comes with it).
            streams.sort(key=lambda stream: stream[1] == leader)
            if not streams:
                trials.append({"mode": mode, "skipped": "no watcher was streaming"})
                advance()
                continue
            wid, member = streams[0]
            trials.append({**lose_member(state, mode, wid, member, by_endpoint),
                           "was_leader": member == leader})
            trial = trials[-1]
            ctx.log(f"{mode} of {member} (watcher {wid}): reconnected after "
                    f"{trial['reconnect_s']} s to {trial['moved_to']} ({trial['reason']}); "
                    f"caught up after {trial['caught_up_s']} s")
            advance()
    finally:
        stop_churn.set()
        churn.join(params["op_timeout_s"] * 3 + 5)
    state.end_churn("member-lost")
    return trials


def lose_member(state: Run, mode: str, wid: str, member: str, by_endpoint: Mapping[str, str]
                ) -> dict[str, Any]:
    """One case of :func:`member_lost`: the fault, the watcher's reconnection and catch-up,
    the heal (restart, or the rules removed)."""
    ctx, params = state.ctx, state.params
    watch = state.watchers.watches[wid]
    logged = len(watch.connections)
    revision_before = watch.revision
    at = ctx.faults.crash(member) if mode == "crash" else ctx.faults.cut_off(member)[1]
    caught_up_at = target = None
    try:
        entry = poll_until(lambda: next((c for c in watch.connections[logged:]
                                         if c["what"] in ("reconnect", "stalled")), None),
                           params["lost_wait_s"], every=0.01)
        if entry is not None:
            target = state.store_revision()
            if poll_until(lambda: watch.revision >= target, params["settle_timeout_s"],
                          every=0.01):
                caught_up_at = time.time()
    finally:
        if mode == "crash":
            ctx.faults.restart(member)
        else:
            ctx.faults.reconnect()
    healed_at = time.time()
    return {
        "mode": mode, "member": member, "watcher": wid, "fault_at": at,
        "revision_before": revision_before,
        "reconnect_s": None if entry is None else round(entry["t"] - at, 6),
        "reason": None if entry is None else entry.get("reason", entry["what"]),
        "moved_to": by_endpoint.get(watch.endpoints.current),
        "target_revision": target,
        "caught_up_s": None if caught_up_at is None else round(caught_up_at - at, 6),
        "healed_s": round(healed_at - at, 6),
    }


# -- an instance cut off from the majority, beside a crashed one --------------------------------


def instance_cut_off(state: Run) -> dict[str, Any]:
    """An instance that talks to one follower only, that follower cut off from the other
    members (the instance alive, its keepalives failing), and at the same moment another
    instance SIGKILLed. Both keys must go when their leases expire; the cut-off instance
    knows its own deadline (``lease_presumed_lost``); after the heal it re-registers and
    every watcher sees it again, while the crashed one stays gone."""
    ctx, cluster, params, ttl = state.ctx, state.cluster, state.params, state.ttl
    if len(cluster.names) < 3:
        return {"skipped": "a member cut off from a majority needs 3 members or more"}
    cluster.wait_healthy(timeout=60)
    leader = cluster.wait_leader(30.0)
    member = next(n for n in cluster.names if n != leader)
    isolated, registered, _seen = state.start_instance("p", "cut-off",
                                                       [cluster.endpoint(member)])
    instance_id = isolated.instance_id
    # a keepalive of each before the fault, so both leases run from a known refresh
    isolated.wait_for(("keepalive",), ttl)
    crashed = next(p for p in state.alive if p is not isolated)
    state.alive.remove(crashed)
    crashed_registered = crashed.wait_for(("registered",), 0)
    _before, cut_at = ctx.faults.cut_off(member)
    killed = crashed.signal(signal.SIGKILL)
    crashed.wait_exit(10)
    state.operation(killed, crashed.instance_id, -1, "cut-off", "crash")
    healed_at = None
    try:
        gone = {p.instance_id: state.watchers.wait_seen(
                    p.instance_id, "delete", r["revision"], 2 * ttl + params["settle_timeout_s"])
                for p, r in ((isolated, registered), (crashed, crashed_registered))}
        # the cut holds a while past the deletion: the instance stays alive and unlisted
        time.sleep(max(0.0, cut_at + ttl + params["cut_off_hold_s"] - time.time()))
        healed_at = ctx.faults.reconnect()[1]
    finally:
        if healed_at is None:
            ctx.faults.reconnect()
    back = isolated.wait_for(("reregistered",), ttl + params["settle_timeout_s"])
    seen_back = (state.watchers.wait_seen(instance_id, "put", back["revision"],
                                          params["settle_timeout_s"]) if back else {})
    if back is not None:
        state.operation(back["t"], instance_id, +1, "cut-off", "rejoin")
    first_gone = [t for t in gone[instance_id].values() if t is not None]
    if first_gone:  # the true membership: gone when etcd deleted it (first sighting)
        state.operation(min(first_gone), instance_id, -1, "cut-off", "expired")
    refresh = isolated.last("keepalive", before=cut_at) or registered
    crash_refresh = crashed.last("keepalive", before=killed) or crashed_registered
    with isolated.lock:
        events = [e for e in isolated.events if cut_at <= e["t"] <= (healed_at or cut_at)]
    presumed = next((e for e in events if e["event"] == "lease_presumed_lost"), None)
    lost = isolated.last("lease_lost", before=back["t"]) if back else None
    failed = [e for e in events if e["event"] == "keepalive_failed"]
    trial = {
        "member": member, "leader": leader, "instance": instance_id,
        "crashed": crashed.instance_id, "cut_at": cut_at, "killed_at": killed,
        "healed_at": healed_at, "ttl_s": ttl,
        "last_keepalive": refresh["t"], "valid_until": refresh.get("valid_until"),
        "crash_last_keepalive": crash_refresh["t"],
        "crash_valid_until": crash_refresh.get("valid_until"),
        "keepalives_failed": len(failed),
        "first_failure": failed[0]["t"] if failed else None,
        "failure_errors": sorted({e.get("error", "")[:80] for e in failed})[:4],
        "presumed_lost_at": presumed["t"] if presumed else None,
        "gone_seen": gone[instance_id], "crash_gone_seen": gone[crashed.instance_id],
        "alive_while_unlisted": isolated.process.poll() is None,
        "lease_lost_at": lost["t"] if lost else None,
        "reregistered_at": back["t"] if back else None,
        "reregistered_revision": back["revision"] if back else None,
        "back_seen": seen_back,
    }
    knew = "never" if presumed is None else f"{presumed['t'] - cut_at:.2f} s after the cut"
    again = ("never" if back is None or healed_at is None
             else f"{back['t'] - healed_at:.2f} s after the heal")
    ctx.log(f"{instance_id} on {member} cut off, {crashed.instance_id} killed: keys gone "
            f"{_after(gone[instance_id], cut_at)} / {_after(gone[crashed.instance_id], killed)} "
            f"after the fault; {instance_id} presumed itself gone {knew}, re-registered "
            f"{again}")
    return trial


def _after(seen: Mapping[str, float | None], since: float) -> str:
    times = [t for t in seen.values() if t is not None]
    if not times or len(times) < len(seen):
        return "not by every watcher"
    return f"{max(times) - since:.2f} s"


# -- compaction ---------------------------------------------------------------------------------


def compaction_resync(state: Run) -> dict[str, Any]:
    """A watcher away while the history is compacted must resync and end equal to etcd."""
    watch = MembershipWatch(state.name, state.endpoints, start_index=1).start()
    time.sleep(0.5)
    watch.stop()
    stopped_at = watch.view.revision
    for _ in range(state.params["compaction_ops"]):
        state.samples["churn"].append(state.churn_op("compaction", leave_probability=0.3))
    compact_to = state.store_revision()
    call_with_retry(state.kv, lambda e: e.kv().Compact(
        etcdrpc.CompactionRequest(revision=compact_to), timeout=5.0), 10.0, "compaction")
    resumed = MembershipWatch(state.name, state.endpoints, view=watch.view,
                              start_index=1).start()
    try:
        deadline = time.monotonic() + state.params["settle_timeout_s"]
        entries, revision = range_prefix(state.kv, service_prefix(state.name), 10.0)
        poll_until(lambda: resumed.view.resyncs >= 1 and resumed.revision >= revision,
                   deadline - time.monotonic(), every=0.05)
        truth = sorted([e.key[len(service_prefix(state.name)):], e.create_revision,
                        e.revision] for e in entries)
        view = sorted([m.instance_id, m.create_revision, m.mod_revision]
                      for m in resumed.members().values())
    finally:
        resumed.stop()
    state.end_churn("compaction")
    return {"stopped_at_revision": stopped_at, "compacted_to": compact_to,
            "truth_revision": revision, "resyncs": resumed.view.resyncs,
            "resync_changes": resumed.view.resync_changes, "truth_members": truth,
            "view_members": view, "connections": resumed.connections,
            "duplicates_dropped": resumed.view.duplicates}


# -- summary --------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _latest_ms(seen: Mapping[str, float | None], since: float) -> float | None:
    """From ``since`` to the last watcher's sighting, in ms; None if one never saw it."""
    if not seen or any(t is None for t in seen.values()):
        return None
    return _ms(max(seen.values()) - since)  # type: ignore[type-var]


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("instances", FULL_RUN["instances"], "registered service instances", minimum=1,
              maximum=100),
        Param("watchers", FULL_RUN["watchers"], "clients watching the registry", minimum=1,
              maximum=50),
        Param("ttl_s", FULL_RUN["ttl_s"], "instance lease TTL", unit="s", minimum=2, maximum=3600),
        Param("trials", FULL_RUN["trials"], "trials per join / leave / crash measurement",
              minimum=1),
        Param("churn_s", FULL_RUN["churn_s"], "length of the churn phase", unit="s", above=0),
        Param("churn_rate", 4.0, "joins and leaves per second during churn", unit="1/s",
              above=0),
        Param("churn_max_active", 6, "most instances alive at once during churn", minimum=1),
        Param("op_timeout_s", 3.0, "timeout of one etcd request", unit="s", above=0),
        Param("settle_timeout_s", 10.0, "time allowed for watchers to agree", unit="s",
              above=0),
        Param("failover_margin_s", 3.0, "extra wait after a leader crash", unit="s",
              minimum=0),
        Param("lost_wait_s", 30.0, "time allowed for a watcher to leave a lost member",
              unit="s", above=0),
        Param("cut_off_trials", FULL_RUN["cut_off_trials"],
              "trials of an instance cut off from the majority beside a crashed one", minimum=0,
              maximum=20),
        Param("cut_off_hold_s", 2.0, "how long the cut lasts past the instance's TTL",
              unit="s", minimum=0),
        Param("compaction_ops", 6, "writes before the compaction check", minimum=1),
        Param("instance_max_s", 1800.0, "an instance process stops itself after this long",
              unit="s", above=0),
        Param("seed", 1, "random seed"),
    ),
    quick={"instances": 3, "watchers": 2, "trials": 2, "churn_s": 5.0, "compaction_ops": 4,
           "cut_off_trials": 1},
    run=run,
    summarize=summarize,
)
