"""Q8 ``lease-drift``: a client clock drifting 500 ms/min against etcd leases and locks.

etcd expires a lease on its leader's monotonic clock (etcd is Go: libfaketime cannot
touch it); the drifting party is the client. Per trial two holder clients run at once,
each a Python process in a lab node (:mod:`.client`, talking to that node's
member) with a libfaketime rate there: ``fast`` (its clock gains ``drift_ms_per_min``)
and ``slow`` (it loses as much). Each grants a lease
of ``ttl_s``, takes a lock (a key created with that lease, only if absent: the key's
create revision is the fencing token), never renews, and acts — writes to a protected
resource — during the last ``act_window_s`` before its own clock says the lease ends:
alternately a fenced write (a transaction that compares the lock key's create revision
with its token) and a plain, unfenced put. It prints every step; this program stamps
each line with the real time it arrived.

This program (the real clock) watches the lock keys: the lease's revocation is the
deletion of the lock key, at a known revision. A contender (real clock) tries to take
each lock every few milliseconds and, once it has it, writes the resource with its own
token. A holder's write is stale when etcd applied or evaluated it after the lock key's
deletion (by revision, which is exact). The first trial also runs a slow client that
keeps its lease alive with keepalives every TTL/3 by its own clock, while this program
polls the lease's remaining TTL.

Each trial also runs the case Jepsen found, with no clock drift at all: a ``paused`` holder
(real clock) takes its lock with a lease of ``paused_ttl_s``, checks by its clock that the
lease is valid, and is stopped (SIGSTOP, sent by this program) before it acts, for
``paused_ttl_s + pause_beyond_ttl_s``. etcd revokes the lease meanwhile and a contender
takes the lock; on SIGCONT the holder does the writes it had checked for without looking
again, ``paused_writes`` of them, fenced and unfenced alternately. The pause is healed on
any exit: this program's ``finally`` kills the child in its node; after a SIGKILL of this
program, heal ends it through its node-agent journal entry (SIGKILL ends a stopped process
too). The stop and the resumption are sent inside the node, so their times are known to
within one ``docker exec`` (or SSH) round trip.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import yaml

from etcdlab.errors import LabError
from etcdlab.etcd.transport import LAB_CERT as LAB_USER
from etcdlab.etcd.transport import member
from etcdlab.faults import NODE_AGENT_MARK
from etcdlab.figures import clocks
from etcdlab.lab.cluster import Cluster
from etcdlab.lab.provision import secrets_file
from etcdlab.params import Param
from etcdlab.questions.common import JsonLinesChild, PrefixWatch, poll_until
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q08_lease_drift import SPEC
from etcdlab.questions.q08_lease_drift import client as lease_client
from etcdlab.questions.q08_lease_drift import server_clock_run as server_clock
from etcdlab.questions.q08_lease_drift.analysis import (
    ASKED,
    HOLDERS,
    summarize,
    summarize_holder,
    summarize_paused,
)
from etcdlab.questions.runner import Context, Experiment

CLIENT_SOURCE = Path(lease_client.__file__).read_text()

KEY_PREFIX = "/etcdlab/lease-drift/"
# The paused holder waits this long between its check and its first write: the time this
# program has to stop it there (it is stopped within milliseconds of saying it holds the
# lock; after SIGCONT the rest of this wait has passed and it writes at once).
PAUSED_ACT_DELAY_S = 1.0


# -- the experiment (real clock) --------------------------------------------------------------


def client_argv(cluster: Cluster, kind: str, name: str, node: str, ttl: int, lock: str,
                **extra: Any) -> list[str]:
    """The command line of one client process in ``node``, talking to that node's member."""
    argv = ["python3", "-c", CLIENT_SOURCE, NODE_AGENT_MARK, "--client", kind, "--name", name,
            "--endpoint", cluster.endpoint(node), "--ttl", str(ttl), "--lock", lock]
    if cluster.tls:
        argv.append("--tls")
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def client_env(cluster: Cluster) -> dict[str, str]:
    """With etcd_auth on, the lab user's name and password (the clients log in with them)."""
    if not cluster.config.etcd_auth:
        return {}
    secrets = yaml.safe_load(secrets_file(cluster.config).read_text())
    return {"ETCDLAB_USER": LAB_USER, "ETCDLAB_PASSWORD": secrets["etcd_lab_password"]}


class KeyWatch:
    """Every event under a prefix, as (key, type, revision, real time seen)."""

    def __init__(self, cluster: Cluster, node: str, prefix: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.watch = PrefixWatch(cluster, node, prefix, self._record)

    def _record(self, event: Any, real: float) -> None:
        self.events.append({
            "key": event.kv.key.decode(), "real": real,
            "type": "delete" if event.type == event.DELETE else "put",
            "revision": event.kv.mod_revision, "lease": event.kv.lease})

    def deleted(self, key: str) -> dict[str, Any] | None:
        """The first deletion of ``key`` seen."""
        return next((e for e in self.events if e["key"] == key and e["type"] == "delete"), None)

    def close(self) -> None:
        """Cancel the watch."""
        self.watch.close()


def contend(cluster: Cluster, node: str, lock: str, resource: str, ttl: int, timeout: float,
            stop: threading.Event, result: dict[str, Any], hold: bool = False) -> None:
    """Take the lock as soon as it is free (real clock); then write with the new token.
    With ``hold`` it keeps the lock until ``stop`` (or ``timeout``), else it lets go at once."""
    etcd = member(cluster, node)
    lease_id = etcd.grant(int(timeout) + ttl)  # outlives the wait for the lock
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not stop.is_set():
            try:
                taken, token = etcd.put_if_created_at(lock, 0, lock, "contender", lease_id)
            except grpc.RpcError:
                time.sleep(0.01)
                continue
            if taken:
                result.update(acquired_real=time.time(), token=token)
                ok, revision = etcd.put_if_created_at(lock, token, resource, "contender")
                result.update(write_ok=ok, write_revision=revision)
                if hold:
                    stop.wait(max(0.0, deadline - time.monotonic()))
                return
            time.sleep(0.005)
    finally:
        with contextlib.suppress(grpc.RpcError):  # already gone: nothing to clean up
            etcd.revoke(lease_id)
        etcd.close()


def run(ctx: Context) -> None:
    """``trials`` trials of the fast and slow holders; keepalives in the first."""
    params = ctx.params
    if params["ttl_s"] < 2:
        raise LabError("ttl_s must be at least 2 (etcd's minimum TTL is 1.5 × election timeout)")
    ctx.samples.update({"trials": [], "paused": [],
                        "rates": {"fast": clocks.drift_rate(params["drift_ms_per_min"]),
                                  "slow": clocks.drift_rate(-params["drift_ms_per_min"])}})
    with ctx.phase("lease-drift: trials", params["trials"]) as advance:
        for trial in range(1, params["trials"] + 1):
            ctx.samples["trials"].append(one_trial(ctx, trial, keepalive=trial == 1))
            advance()
            ctx.log(f"trial {trial}: " + ", ".join(
                f"{name} believed {_signed(summarize_holder(h)['belief_error_s'])} s after "
                f"etcd revoked" for name, h in ctx.samples["trials"][-1]["holders"].items()))
            paused = summarize_paused(ctx.samples["paused"][-1])
            ctx.log(f"trial {trial}: paused holder resumed "
                    f"{_signed(paused['resumed_after_revoke_s'])} s after etcd revoked; "
                    f"stale writes: {paused['unfenced_accepted']} plain "
                    f"accepted, {paused['fenced_rejected']} fenced rejected, "
                    f"{paused['fenced_accepted']} fenced accepted")
    server_clock.run(ctx)


def one_trial(ctx: Context, trial: int, keepalive: bool) -> dict[str, Any]:
    """Both holders at once (and the keepalive client), each against a contender."""
    params, cluster, faults = ctx.params, ctx.cluster, ctx.faults
    names = cluster.names
    ttl = int(params["ttl_s"])
    env = client_env(cluster)
    prefix = f"{KEY_PREFIX}{time.time_ns()}/"
    watch = KeyWatch(cluster, names[0], prefix)
    rates = ctx.samples["rates"]
    spawned: dict[str, JsonLinesChild] = {}
    contenders: dict[str, dict[str, Any]] = {}
    threads = []
    stop = threading.Event()
    keeper_record: dict[str, Any] | None = None
    try:
        for index, name in enumerate(HOLDERS):
            node = names[(index + 1) % len(names)]
            argv = client_argv(cluster, "holder", name, node, ttl, f"{prefix}lock/{name}",
                               resource=f"{prefix}resource/{name}",
                               act_window=params["act_window_s"],
                               act_interval=params["act_interval_s"])
            spawned[name] = JsonLinesChild(faults, argv, f"lock holder {name}", node=node,
                                           rate=rates[name], env=env)
        if keepalive:
            duration = params["keepalive_ttls"] * ttl
            argv = client_argv(cluster, "keeper", "keeper", names[-1], ttl,
                               f"{prefix}keepalive", duration=duration)
            spawned["keeper"] = JsonLinesChild(faults, argv, "keepalive client",
                                               node=names[-1], rate=rates["slow"], env=env)
        for name in HOLDERS:
            acquired = spawned[name].wait_for("acquired", 60)
            if acquired is None or not acquired["taken"]:
                raise LabError(f"{name} holder could not take its lock: "
                               f"{spawned[name].finish(5)}")
            contenders[name] = {}
            thread = threading.Thread(target=contend, daemon=True, args=(
                cluster, names[0], f"{prefix}lock/{name}", f"{prefix}resource/{name}", ttl,
                ttl * 2 + 30, stop, contenders[name]))
            thread.start()
            threads.append(thread)
        paused_trial(ctx, trial, prefix, names[1 % len(names)], watch)
        if keepalive:
            keeper_record = watch_keepalive(cluster, spawned["keeper"], names[0],
                                            params["keepalive_ttls"] * ttl)
        for name in HOLDERS:
            spawned[name].wait_for("believed_expired", ttl * 2 + 30)
        for thread in threads:
            thread.join(ttl + 30)
    finally:
        stop.set()
        errors = {name: s.finish(30) for name, s in spawned.items()}
        watch.close()
    holders = {}
    for name in HOLDERS:
        lines = spawned[name].events
        lock = f"{prefix}lock/{name}"
        acquired = next(line for line in lines if line["event"] == "acquired")
        believed = next((line for line in lines if line["event"] == "believed_expired"), None)
        if believed is None:
            raise LabError(f"{name} holder did not report its believed expiry: {errors[name]}")
        holders[name] = {
            "rate": rates[name],
            "acquired_real": acquired["real"], "token": acquired["token"],
            "lease": acquired["lease"],
            "believed_expired_real": believed["real"],
            "revoked": watch.deleted(lock),
            "contender": contenders.get(name, {}),
            "writes": [{k: line[k] for k in ("kind", "ok", "revision", "outcome", "real")}
                       for line in lines if line["event"] == "write"],
        }
    return {"trial": trial, "ttl_s": ttl, "holders": holders, "keepalive": keeper_record}


def paused_trial(ctx: Context, trial: int, prefix: str, node: str, watch: KeyWatch) -> None:
    """A holder on the real clock stopped past its lease's TTL, against a contender.

    Its record is in ``ctx.samples["paused"]`` from the start and filled as each step is
    taken: when it held the lock (its token), when it was stopped and resumed, the
    deletion of its lock key (revision), the contender's lock (revision) and every write it
    made after SIGCONT. The pause is healed on any exit: the ``finally`` resumes the child
    (and kills it unless it was resumed on time); the child is also a journalled local
    process, which heal ends.
    """
    params, cluster = ctx.params, ctx.cluster
    ttl = int(params["paused_ttl_s"])
    pause_s = ttl + params["pause_beyond_ttl_s"]
    lock, resource = f"{prefix}lock/paused", f"{prefix}resource/paused"
    record: dict[str, Any] = {"trial": trial, "ttl_s": ttl, "pause_s": pause_s,
                              "act_delay_s": PAUSED_ACT_DELAY_S, "contender": {},
                              "writes": [], "revoked": None}
    ctx.samples["paused"].append(record)
    argv = client_argv(cluster, "paused", "paused", node, ttl, lock, resource=resource,
                       act_delay=PAUSED_ACT_DELAY_S, act_interval=params["act_interval_s"],
                       writes=params["paused_writes"])
    child = JsonLinesChild(ctx.faults, argv, "paused lock holder", node=node,
                           env=client_env(cluster))
    stop = threading.Event()
    contender: threading.Thread | None = None
    resumed = False
    pid = 0
    try:
        started = child.wait_for("started", 60)
        acquired = child.wait_for("acquired", 60)
        if started is None or acquired is None or not acquired["taken"]:
            raise LabError(f"the paused holder could not take its lock: {child.finish(5)}")
        pid = started["pid"]  # in its node
        signal_in_node(cluster, node, pid, "STOP")
        record.update(paused_real=time.time(), acquired_real=acquired["real"],
                      token=acquired["token"], lease=acquired["lease"])
        record["stopped_seen"] = bool(poll_until(
            lambda: process_state(cluster, node, pid) == "T", 2.0))
        contender = threading.Thread(target=contend, daemon=True, args=(
            cluster, cluster.names[0], lock, resource, ttl, pause_s + 30, stop,
            record["contender"]), kwargs={"hold": True})
        contender.start()
        time.sleep(max(0.0, record["paused_real"] + pause_s - time.time()))
        signal_in_node(cluster, node, pid, "CONT")
        record["resumed_real"] = time.time()
        resumed = True
        if child.wait_for("done", 30 + params["paused_writes"] * 5) is None:
            raise LabError(f"the paused holder did not finish its writes: {child.finish(5)}")
    finally:
        if not resumed:  # interrupted or failed while it was stopped: end it (SIGKILL)
            child.process.kill()
        stop.set()
        child.finish(10)
        if contender is not None:
            contender.join(30)
        lines = child.events
        record["writes"] = [{k: line[k] for k in ("kind", "ok", "revision", "outcome", "real")}
                            for line in lines if line["event"] == "write"]
        record.update({f"{line['event']}_real": line["real"] for line in lines
                       if line["event"] in ("checked", "acting", "done")})
        record.update({f"{line['event']}_believed_left_s": line["believed_left"]
                       for line in lines if line["event"] in ("checked", "acting")})
        record["revoked"] = watch.deleted(lock)


def signal_in_node(cluster: Cluster, node: str, pid: int, name: str) -> None:
    """Send SIG``name`` to a process of a node (by its pid there)."""
    cluster.lab.exec(node, ["kill", f"-{name}", str(pid)])


def process_state(cluster: Cluster, node: str, pid: int) -> str:
    """The state letter of a node's process (``T``: stopped), "" when it is gone."""
    code, stat = cluster.lab.exec(node, ["cat", f"/proc/{pid}/stat"], check=False)
    return stat.rpartition(")")[2].split()[0] if code == 0 and ")" in stat else ""


def watch_keepalive(cluster: Cluster, keeper: JsonLinesChild, node: str, duration: float
                    ) -> dict[str, Any]:
    """Poll the kept lease's remaining TTL every second until the keeper is done."""
    granted = keeper.wait_for("granted", 60)
    if granted is None:
        raise LabError(f"the keepalive client did not start: {keeper.finish(5)}")
    etcd = member(cluster, node)
    remaining = []
    try:
        deadline = time.monotonic() + duration + 30
        while time.monotonic() < deadline:
            if any(line["event"] == "done" for line in keeper.events):
                break
            try:
                remaining.append({"real": time.time(), "ttl": etcd.time_to_live(granted["lease"])})
            except grpc.RpcError:
                remaining.append({"real": time.time(), "ttl": None})
            time.sleep(1.0)
    finally:
        with contextlib.suppress(grpc.RpcError):  # it would expire one TTL later anyway
            etcd.revoke(granted["lease"])
        etcd.close()
    return {
        "granted_real": granted["real"],
        "keepalives": [{"real": line["real"], "ttl": line.get("ttl")}
                       for line in keeper.events if line["event"] == "keepalive"],
        "remaining": remaining,
        "done": any(line["event"] == "done" for line in keeper.events),
    }


def _signed(value: float | None) -> str:
    return "?" if value is None else f"{value:+.3f}"


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("ttl_s", FULL_RUN["ttl_s"], "lease TTL", unit="s", minimum=2, maximum=3600),
        Param("drift_ms_per_min", FULL_RUN["drift_ms_per_min"],
              "how fast (and slow) the clients' clocks run", unit="ms/min", minimum=0,
              maximum=30000),
        Param("trials", FULL_RUN["trials"], "trials per client", minimum=1),
        Param("act_window_s", 2.0, "how long each holder acts around its believed expiry",
              unit="s", above=0),
        Param("act_interval_s", 0.05, "time between a holder's fenced writes", unit="s",
              above=0),
        Param("keepalive_ttls", 2.0, "keepalive phase length, in TTLs", above=0),
        Param("paused_ttl_s", 3, "lease TTL of the paused holder (real clock)", unit="s",
              minimum=2, maximum=600),
        Param("pause_beyond_ttl_s", 2.0, "how much longer than its TTL the paused holder is "
              "stopped (SIGSTOP)", unit="s", above=0),
        Param("paused_writes", 6, "writes the paused holder makes after SIGCONT, fenced and "
              "plain alternately", minimum=2, maximum=1000),
        *server_clock.PARAMETERS,
    ),
    # The question's drift, 500 ms/min, with the full run's 60 s TTL: by TTL × (1/rate − 1)
    # the slow holder believes its lease ends 504 ms after etcd's deadline, the fast one
    # 496 ms before, just more than etcd's expiry check blurs (it revokes 0 – 500 ms late);
    # a shorter TTL would show it in some runs only. One trial; the keepalive phase lasts
    # one TTL, as long as the holders' own trial.
    quick={"ttl_s": 60, "trials": 1, "keepalive_ttls": 1.0, **server_clock.QUICK},
    run=run,
    summarize=summarize,
)

