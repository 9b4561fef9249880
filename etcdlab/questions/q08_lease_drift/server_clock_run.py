"""Q8's server-clock part: the etcd leader's own clock runs fast (a helper of lease-drift).

The course expects a leader clock drifting 500 ms/min to expire leases *prematurely*. etcd
expires a lease on its leader's monotonic clock; :meth:`etcdlab.faults.Faults.
skew_etcd_clock` makes that clock run at a rate (ptrace, :mod:`etcdlab.faults.etcd_clock`). With
``server_leases`` leases of ``server_ttl_s`` in each phase (granted ``0.5 s / n`` apart,
so that they sample etcd's 500 ms expiry check), this program, on the true clock, records
when etcd revokes each one (the deletion of a key attached to it, seen by a watch on a
member with a true clock):

1. *control*: the leader's clock true (the lease lengths with etcd's own lateness);
2. *faked*: the same leader, its clock running at ``rate`` from the injection on. The first
   lease is also a lock: when etcd has revoked it and its holder (this program, on the
   true clock) still believes in it, a contender takes the lock and the holder writes once
   fenced (compared with its token) and once plain. Its remaining TTL is asked of the faked
   leader every 0.1 s (LeaseTimeToLive, in whole seconds of that leader's clock);
3. *moved*: the faked leader hands leadership (MoveLeader) to a member with a true clock
   halfway through its leases' faked lifetime.

Proof that the fault reached etcd, not assumed: a Defragment of the faked member makes it
log "finished defragmenting" with its own clock's time stamp; done before the injection,
right after it and after each phase, these time stamps against the real time of each call
give the rate etcd's clock ran at. The fault is undone by restarting the member (its
journal entry is written before the injection); the ``finally`` does it on any exit.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import grpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import Member, member
from etcdlab.figures import clocks
from etcdlab.params import Param
from etcdlab.questions.common import PrefixWatch, poll_until
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q08_lease_drift.server_clock_analysis import ASKED
from etcdlab.questions.runner import Context

KEY_PREFIX = "/etcdlab/lease-drift/server-clock/"
LOG_MARK = "finished defragmenting"
POLL_S = 0.1
# Leadership moves this far into the faked leases' lifetime (T / rate real seconds).
MOVE_AT = 0.5

# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

PARAMETERS = (
    Param("server_drift_ms_per_min", FULL_RUN["server_drift_ms_per_min"], "how fast the etcd "
          "leader's own clock runs in the server-clock part (0: the part is not run)",
          unit="ms/min", minimum=0, maximum=60000),
    Param("server_ttl_s", FULL_RUN["server_ttl_s"], "lease TTL in the server-clock part", unit="s",
          minimum=2, maximum=3600),
    Param("server_leases", 5, "leases per phase of the server-clock part", minimum=1,
          maximum=50),
)
QUICK = {"server_drift_ms_per_min": 30000.0, "server_ttl_s": 10, "server_leases": 4}
"""Quick: the leader's clock 1.5 × as fast and a 10 s TTL, so that etcd's lease ends
3.3 s early, well above the 0 – 0.5 s of its expiry check, in about a minute in all."""


def run(ctx: Context) -> None:
    """The three phases on the current leader; ``ctx.samples["server_clock"]``."""
    params = ctx.params
    drift = params["server_drift_ms_per_min"]
    record: dict[str, Any] = {
        "rate": clocks.drift_rate(drift), "drift_ms_per_min": drift,
        "ttl_s": int(params["server_ttl_s"]), "leases": int(params["server_leases"]),
        "election_timeout_ms": ctx.cluster.config.etcd_election_timeout_ms,
        "phases": {}, "probes": [], "ttl_polls": [], "fencing": {}, "skipped": None,
        "error": None}
    ctx.samples["server_clock"] = record
    if drift == 0:
        record["skipped"] = "server_drift_ms_per_min is 0"
        return
    cluster, faults = ctx.cluster, ctx.faults
    leader = cluster.leader()
    if leader is None:
        raise LabError("server clock: the cluster has no leader")
    others = [name for name in cluster.names if name != leader]
    if not others:
        record["skipped"] = "a one-member cluster has no member with a true clock"
        return
    record.update(faked=leader, true=others[0])
    members = {name: member(cluster, name, timeout=10.0) for name in cluster.names}
    deleted: dict[str, float] = {}
    revisions: dict[str, int] = {}

    def on_event(event: Any, real: float) -> None:
        if event.type == 1:  # DELETE
            key = event.kv.key.decode()
            deleted.setdefault(key, real)
            revisions.setdefault(key, event.kv.mod_revision)

    watch: PrefixWatch | None = None
    injected = False
    try:
        ids = {name: m.status().header.member_id for name, m in members.items()}
        watch = PrefixWatch(cluster, others[0], KEY_PREFIX, on_event)
        with ctx.phase("lease-drift: the leader's own clock", 3) as advance:
            _probe(members[leader], record)
            record["phases"]["control"] = _lease_phase(members[leader], "control", record,
                                                       deleted, revisions)
            advance()
            _still_leader(cluster, leader, "the control phase")
            record["injection"] = faults.skew_etcd_clock(leader, record["rate"])
            injected = True
            _probe(members[leader], record)
            record["phases"]["faked"] = _lease_phase(
                members[leader], "faked", record, deleted, revisions,
                ttl_member=members[leader], fence=members[others[0]])
            _still_leader(cluster, leader, "the fast phase")
            _probe(members[leader], record)
            advance()
            record["phases"]["moved"] = _lease_phase(
                members[leader], "moved", record, deleted, revisions,
                move=(ids[others[0]], others[0]), new_leader_member=members[others[0]])
            _probe(members[leader], record)
            advance()
        record["log"] = _log_stamps(ctx, leader, len(record["probes"]))
    except (LabError, grpc.RpcError) as exc:
        record["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        ctx.log(f"server clock: {record['error']}")
    finally:
        if watch is not None:
            watch.close()
        if injected:
            faults.heal_etcd_clock(leader)
        for each in members.values():
            each.close()
    ctx.log(_one_line(record))


def _still_leader(cluster: Any, leader: str, phase: str) -> None:
    """The phase measured the leader it meant to (a leader change voids it)."""
    now = cluster.leader()
    if now != leader:
        raise LabError(f"server clock: leadership moved from {leader} to {now} during {phase}")


def _probe(etcd: Member, record: dict[str, Any]) -> None:
    """One Defragment of the faked member: its log line's time stamp, against real time."""
    before = time.time()
    etcd.defragment(timeout=30)
    record["probes"].append({"before": before, "after": time.time()})


def _log_stamps(ctx: Context, name: str, count: int) -> list[str]:
    """The last ``count`` "finished defragmenting" lines of the member's etcd log."""
    text = ctx.cluster.lab.service_log(name, "etcd", lines=2000)
    lines = [line for line in text.splitlines() if LOG_MARK in line]
    return lines[-count:] if count else []


def _lease_phase(etcd: Member, phase: str, record: dict[str, Any], deleted: dict[str, float],
                 revisions: dict[str, int], ttl_member: Member | None = None,
                 fence: Member | None = None, move: tuple[int, str] | None = None,
                 new_leader_member: Member | None = None) -> dict[str, Any]:
    """Grant the phase's leases (each with a key), then wait for every deletion."""
    ttl, count, rate = record["ttl_s"], record["leases"], record["rate"]
    prefix = f"{KEY_PREFIX}{phase}/"
    leases = []
    for index in range(count):
        key = f"{prefix}{index}"
        before = time.time()
        lease_id = etcd.grant(ttl)
        after = time.time()
        taken, token = etcd.put_if_created_at(key, 0, key, "holder", lease_id)
        if not taken:
            raise LabError(f"server clock: {key} was already held")
        leases.append({"key": key, "lease": lease_id, "granted_before": before,
                       "granted_after": after, "token": token})
        time.sleep(0.5 / count)
    first = leases[0]
    out: dict[str, Any] = {"leases": leases}
    faked_life = ttl / rate if phase != "control" else ttl
    move_real = first["granted_after"] + MOVE_AT * faked_life
    deadline = first["granted_after"] + ttl * (2 if move else 1) + 30
    fenced_done = fence is None

    def fence_due() -> bool:
        return not fenced_done and first["key"] in deleted

    while time.time() < deadline:
        if move and "moved_before" not in out and time.time() >= move_real:
            out["moved_before"] = time.time()
            etcd.move_leader(move[0], timeout=10)
            out["moved_after"] = time.time()
            view = new_leader_member.leader_view(2.0) if new_leader_member else None
            out["new_leader_is_target"] = bool(view and view[0] == view[1] == move[0])
            out["moved_to"] = move[1]
        if ttl_member is not None and first["key"] not in deleted:
            before = time.time()
            with contextlib.suppress(grpc.RpcError):
                remaining = ttl_member.time_to_live(first["lease"], timeout=2)
                record["ttl_polls"].append({"before": before, "after": time.time(),
                                            "ttl": remaining})
        if fence is not None and fence_due():
            fenced_done = True
            record["fencing"] = _fence(fence, first, ttl, deleted[first["key"]])
        if fenced_done and all(x["key"] in deleted for x in leases):
            break
        # Sleep one poll, but act on the holder's revocation within milliseconds.
        poll_until(fence_due, POLL_S, every=0.002)
    for lease in leases:
        lease["revoked_real"] = deleted.get(lease["key"])
        lease["revoked_revision"] = revisions.get(lease["key"])
    return out


def _fence(etcd: Member, holder: dict[str, Any], ttl: int, revoked: float) -> dict[str, Any]:
    """After etcd revoked the holder's lease: if the holder (true clock) still believes in
    it, a contender takes the lock, then the holder writes fenced and plain once each."""
    believed_end = holder["granted_before"] + ttl
    out: dict[str, Any] = {"revoked_real": revoked, "believed_end_real": believed_end,
                           "attempted_real": time.time()}
    if out["attempted_real"] >= believed_end:
        out["believed_valid"] = False
        return out
    out["believed_valid"] = True
    lock, resource = holder["key"], f"{KEY_PREFIX}resource"
    contender_lease = etcd.grant(ttl)
    try:
        taken, token = etcd.put_if_created_at(lock, 0, lock, "contender", contender_lease)
        out.update(contender_taken=taken, contender_token=token)
        ok, revision = etcd.put_if_created_at(lock, holder["token"], resource, "holder-fenced")
        out.update(fenced_ok=ok, fenced_revision=revision)
        out["plain_revision"] = etcd.put(f"{resource}-plain", "holder-plain")
        out["plain_ok"] = True
        out["written_real"] = time.time()
    finally:
        with contextlib.suppress(grpc.RpcError):
            etcd.revoke(contender_lease)
    return out


def _one_line(record: dict[str, Any]) -> str:
    if record.get("skipped") or record.get("error"):
        return f"server clock: not measured ({record.get('skipped') or record.get('error')})"
    lives = {}
    for phase in ("control", "faked", "moved"):
        values = [x["revoked_real"] - x["granted_after"]
                  for x in record["phases"].get(phase, {}).get("leases", [])
                  if x.get("revoked_real")]
        lives[phase] = f"{sum(values) / len(values):.2f} s" if values else "?"
    return (f"server clock x{record['rate']:g} on {record.get('faked')}: leases of "
            f"{record['ttl_s']} s lived {lives['control']} (true clock), {lives['faked']} "
            f"(fast clock), {lives['moved']} (leadership moved mid-lease)")
