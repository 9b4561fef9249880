"""Q6 ``quota``: what happens when ``--quota-backend-bytes`` is reached, and how to recover?

Set up: the etcd role is re-applied with a small quota (``provision.reconfigure``: rolling,
one member at a time, quorum kept), the configured value is read back from every
member's config file, and the backend is compacted and defragmented so that it starts
small. Run: fixed-size values are written, cycling over a few keys, one write at a time
through the leader, recording every write's latency and, every few writes, each
member's DB size (Status ``dbSize``, the backend file, and ``dbSizeInUse``, the part of it
holding data), until a write is refused with "database space exceeded". While the NOSPACE
alarm is raised: each member's alarm list, a refused write through the leader and through
a follower, reads on both, a delete, a lease grant, a keepalive and a revoke (of a lease
granted with a key before the fill), and two transactions without a put (a compare and a
range, a compare and a delete); each outcome as :func:`~etcdlab.etcd.transport.attempt`
records it. Recovery, as the etcd docs say, each step timed with the DB sizes before and
after: compact to the current revision (the alarm still raised), defragment each member in
turn, disarm every alarm; then a write must be accepted again. One extra step sits between
the compaction and the defragmentation: every alarm is disarmed, one write is sent and the
alarm lists are read after it (does the write raise the alarm again while the files are
still as large as before?). Each member's defragmentation is watched by a reader thread
sending serializable reads to that member, back to back, from a little before it until a
little after, every read timed. Each phase's DB sizes go to ``samples["phases"]``. Last, the
provisioned settings are re-applied (timed). The quota change goes through
``ctx.faults.change_settings``, so it is journalled: a run that stops anywhere is healed by
the runner (recovering from the alarm first, then restoring the quota), and ``check`` reads
every member's configured quota and alarms back on the healed lab.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from etcdlab.errors import LabError
from etcdlab.etcd import transport
from etcdlab.etcd.transport import Member, attempt, open_members
from etcdlab.lab.cluster import Cluster
from etcdlab.params import Param
from etcdlab.questions.common import member_names, playbook_logger
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q06_quota import SPEC
from etcdlab.questions.q06_quota.analysis import ASKED, NOSPACE_TEXT, summarize
from etcdlab.questions.runner import Context, Experiment

KEY_PREFIX = "/etcdlab/quota/"
LEASED_KEY = f"{KEY_PREFIX}leased"
CONFIG_FILE = "/etc/etcd/etcd.conf.yml"
DEFRAG_TIMEOUT_S = 120.0
# The lease granted before the fill (with one key) for the keepalive and revoke probes: long
# enough to outlive a slow fill; revoked during the alarm, or after the recovery.
PROBE_LEASE_TTL_S = 300
# A lease granted during the alarm (when etcd accepts it) is revoked at once.
GRANT_PROBE_TTL_S = 60
# After the write that follows the early disarm: how long every member's alarm list is polled.
REALARM_WAIT_S = 2.0
# The reader watching a defragmentation starts this long before it and stops this long after.
READER_LEAD_S = 0.2
READER_TAIL_S = 0.1


def run(ctx: Context) -> None:
    """Small quota → fill until NOSPACE → probe → recover → restore the quota."""
    cluster = ctx.cluster
    ids = member_names(cluster)
    members = open_members(cluster)
    show = playbook_logger(ctx)
    phases = ctx.samples.setdefault("phases", [])
    started = time.perf_counter()

    def snapshot(phase: str) -> dict[str, Any]:
        """Every member's dbSize and dbSizeInUse now, appended to ``samples["phases"]``."""
        total, in_use = backend_sizes(members)
        phases.append({"phase": phase, "at_s": round(time.perf_counter() - started, 6),
                       "db_size": total, "db_size_in_use": in_use})
        return phases[-1]

    try:
        ctx.samples["setup"] = set_up(ctx, members, show)
        snapshot("start")
        fill(ctx, members, ctx.samples.setdefault("fill", {}))
        snapshot("refusal")
        during_alarm(ctx, members, ids, ctx.samples.setdefault("alarm", {}), snapshot)
        recover(ctx, members, ids, ctx.samples.setdefault("recovery", {}), snapshot)
        revoke_probe_lease(ctx, members)
    finally:
        for member in members.values():
            member.close()
    ctx.samples["restore"] = restore(ctx, show)


def check(ctx: Context) -> None:
    """On the healed lab: every member runs with the provisioned quota and no alarm."""
    cluster = ctx.cluster
    members = open_members(cluster)
    try:
        alarms = {name: bool(active_alarms(member)) for name, member in members.items()}
    finally:
        for member in members.values():
            member.close()
    configured = configured_quota(cluster)
    restore_ = ctx.samples.setdefault("restore", {})
    restore_.update(configured=configured, alarm_raised_after=alarms)
    wanted = cluster.config.etcd_quota_backend_bytes
    if any(value != wanted for value in configured.values()) or any(alarms.values()):
        raise LabError(f"after the heal: configured quotas {configured} (want {wanted}), "
                       f"alarms {alarms}")


def set_up(ctx: Context, members: Mapping[str, Member],
           show: Callable[[str, dict[str, str]], None]) -> dict[str, Any]:
    """Apply the small quota (rolling restart), read it back, start from a small backend."""
    cluster, quota = ctx.cluster, ctx.params["quota_bytes"]
    ctx.log(f"quota: re-applying the etcd role with quota-backend-bytes = {quota}")
    started = time.monotonic()
    run = ctx.faults.change_settings(show, etcd_quota_backend_bytes=quota)
    reconfigure_s = time.monotonic() - started
    cluster.wait_healthy(timeout=120)
    configured = configured_quota(cluster)
    if any(value != quota for value in configured.values()):
        raise LabError(f"the quota was not applied: the members' config files say {configured}")
    leader = cluster.wait_leader()
    sizes_before = db_sizes(members)
    revision = members[leader].get(KEY_PREFIX, 5.0)["revision"]
    compact, _ = attempt(lambda: compact_to(members[leader], revision))
    for each in members.values():
        each.defragment(DEFRAG_TIMEOUT_S)
    lease = members[leader].grant(PROBE_LEASE_TTL_S, 5.0)
    members[leader].put(LEASED_KEY, "leased", 5.0, lease=lease)
    return {"quota_bytes": quota, "configured": configured,
            "reconfigure_s": round(reconfigure_s, 3), "playbook_changed": run.changed,
            "db_sizes_before_cleanup": sizes_before, "cleanup_compact": compact,
            "db_sizes_start": db_sizes(members), "lease": {"id": lease, "key": LEASED_KEY,
                                                          "ttl_s": PROBE_LEASE_TTL_S}}


def fill(ctx: Context, members: Mapping[str, Member], record: dict[str, Any]) -> None:
    """Write fixed-size values through the leader until one is refused for lack of space.

    Every write and size sample goes into ``record`` (``ctx.samples["fill"]``) as it is
    taken, so an interrupted fill keeps them."""
    cluster, params = ctx.cluster, ctx.params
    leader = cluster.wait_leader()
    value_bytes, keys, every = params["value_bytes"], params["keys"], params["size_every"]
    value = "x" * value_bytes
    timeout = params["op_timeout_s"]
    limit = 4 * params["quota_bytes"] // value_bytes + 1000
    writes: list[dict[str, Any]] = []
    sizes: list[dict[str, Any]] = []
    record.update(leader=leader, value_bytes=value_bytes, keys=keys, writes=writes, sizes=sizes)
    acknowledged = unknown = 0
    refused: dict[str, Any] | None = None
    started = time.perf_counter()
    with ctx.phase("quota: filling the backend", params["quota_bytes"] // value_bytes) as advance:
        for n in range(limit):
            if n % every == 0:
                total, in_use = backend_sizes(members)
                sizes.append({"write": n, "at_s": round(time.perf_counter() - started, 6),
                              "acknowledged_bytes": acknowledged * value_bytes,
                              "db_size": total, "db_size_in_use": in_use})
            key = f"{KEY_PREFIX}{n % keys}"
            write, _revision = attempt(lambda k=key: members[leader].put(k, value, timeout))
            write.update(write=n, at_s=round(time.perf_counter() - started, 6))
            writes.append(write)
            if write["outcome"] == "ok":
                acknowledged += 1
                advance()
            elif write["outcome"] == "unknown":
                unknown += 1
            elif NOSPACE_TEXT in write["details"]:
                refused = write
                break
            else:
                raise LabError(f"write {n} failed before the quota was reached: "
                               f"{write['code']} {write['details']}")
    elapsed = time.perf_counter() - started
    if refused is None:
        raise LabError(f"no NOSPACE after {limit} writes of {value_bytes} B: "
                       "is the quota in force?")
    at_alarm, in_use = backend_sizes(members)
    sizes.append({"write": len(writes), "at_s": round(elapsed, 6),
                  "acknowledged_bytes": acknowledged * value_bytes, "db_size": at_alarm,
                  "db_size_in_use": in_use})
    ctx.log(f"quota: refused after {acknowledged} writes ({acknowledged * value_bytes} B "
            f"acknowledged) in {elapsed:.1f} s: {refused['details']}; DB sizes {at_alarm}")
    record.update(acknowledged=acknowledged, unknown=unknown,
                  bytes_acknowledged=acknowledged * value_bytes, elapsed_s=round(elapsed, 6),
                  refused=refused, db_size_at_alarm=at_alarm)


def during_alarm(ctx: Context, members: Mapping[str, Member], ids: Mapping[int, str],
                 record: dict[str, Any], snapshot: Callable[[str], dict[str, Any]]) -> None:
    """Which members list the alarm; writes, reads, a delete, lease calls and transactions
    without a put while it is raised, each into ``record`` (``samples["alarm"]``) as taken."""
    cluster, params = ctx.cluster, ctx.params
    timeout = params["op_timeout_s"]
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.names if n != leader)
    record.update(leader=leader, follower=follower)
    started = time.monotonic()
    alarms: dict[str, list[dict[str, str]]] = {}
    while time.monotonic() - started < params["alarm_wait_s"]:
        alarms = {name: list_alarms(each, ids) for name, each in members.items()}
        if all(any(a["alarm"] == "NOSPACE" for a in listed) for listed in alarms.values()):
            break
        time.sleep(0.1)
    record.update(alarms=alarms, listed_after_s=round(time.monotonic() - started, 3))
    probes: dict[str, Any] = record.setdefault("probes", {})
    value = "y" * 16
    probes["write_leader"], _ = attempt(
        lambda: members[leader].put(f"{KEY_PREFIX}during", value, timeout))
    probes["write_follower"], _ = attempt(
        lambda: members[follower].put(f"{KEY_PREFIX}during", value, timeout))
    probes["read_linearizable"], answer = attempt(
        lambda: members[follower].get(f"{KEY_PREFIX}0", timeout))
    probes["read_linearizable"]["found"] = bool(answer and answer["value"])
    probes["read_serializable"], answer = attempt(
        lambda: members[follower].get(f"{KEY_PREFIX}1", timeout, serializable=True))
    probes["read_serializable"]["found"] = bool(answer and answer["value"])
    probes["delete"], deleted = attempt(lambda: members[leader].delete(f"{KEY_PREFIX}0",
                                                                       timeout))
    probes["delete"]["deleted"] = deleted
    snapshot("during the alarm")
    probe_leases(members[leader], (ctx.samples.get("setup") or {}).get("lease") or {},
                 timeout, probes)
    for then, key in (("range", f"{KEY_PREFIX}1"), ("delete", f"{KEY_PREFIX}2")):
        probes[f"txn_{then}"], answer = attempt(
            lambda t=then, k=key: members[leader].txn_without_put(k, t, timeout))
        probes[f"txn_{then}"]["succeeded"] = answer[0] if answer else None
    record["health_endpoint"] = {name: cluster.healthy(name) for name in cluster.names}
    ctx.log("quota: during the alarm: " + ", ".join(
        f"{name} {probe['outcome']}" for name, probe in probes.items()))


def probe_leases(leader: Member, lease: Mapping[str, Any], timeout: float,
                 probes: dict[str, Any]) -> None:
    """A lease grant, then a keepalive and a revoke of the lease granted before the fill
    (whose key the revoke should delete)."""
    probes["lease_grant"], granted = attempt(lambda: leader.grant(GRANT_PROBE_TTL_S, timeout))
    if granted:  # accepted during the alarm: not left behind
        attempt(lambda: leader.revoke(granted, timeout))
    if not lease:
        return
    probes["lease_keepalive"], ttl = attempt(lambda: leader.keepalive(lease["id"], timeout))
    probes["lease_keepalive"]["ttl"] = ttl
    probes["lease_revoke"], _ = attempt(lambda: leader.revoke(lease["id"], timeout))
    _, answer = attempt(lambda: leader.get(lease["key"], timeout))
    probes["lease_revoke"]["key_gone"] = answer["value"] is None if answer else None


def recover(ctx: Context, members: Mapping[str, Member], ids: Mapping[int, str],
            steps: dict[str, Any], snapshot: Callable[[str], dict[str, Any]]) -> None:
    """Compact to the current revision, disarm early and write once (does the alarm come
    back?), defragment each member under a reader's watch, disarm: each step timed, each
    into ``steps`` (``samples["recovery"]``) as taken."""
    cluster, timeout = ctx.cluster, ctx.params["op_timeout_s"]
    leader = cluster.wait_leader()
    steps["db_size_before"] = snapshot("before compaction")["db_size"]
    steps["alarms_at_compact"] = list_alarms(members[leader], ids)
    revision = members[leader].get(KEY_PREFIX, timeout)["revision"]
    steps["compact"], _ = attempt(lambda: compact_to(members[leader], revision))
    steps["compact"]["revision"] = revision
    steps["db_size_after_compact"] = snapshot("compacted")["db_size"]
    steps["early_disarm"] = early = {"poll_limit_s": REALARM_WAIT_S}
    disarm_all(members[leader], ids, timeout, early.setdefault("disarm", []))
    early["alarms_after_disarm"] = list_alarms(members[leader], ids)
    early["sizes_before_write"] = snapshot("disarmed, not defragmented")
    early["write"], _ = attempt(
        lambda: members[leader].put(f"{KEY_PREFIX}early", "e" * 16, timeout))
    polled = time.monotonic()
    while True:
        early["alarms_after_write"] = {name: list_alarms(each, ids)
                                       for name, each in members.items()}
        early["listed_after_s"] = round(time.monotonic() - polled, 3)
        if all(early["alarms_after_write"].values()) \
                or time.monotonic() - polled > REALARM_WAIT_S:
            break
        time.sleep(0.1)
    steps["defragment"] = []
    for name, each in members.items():
        before = _db_size(each)
        defrag: dict[str, Any] = {"member": name, "db_size_before": before}
        steps["defragment"].append(defrag)
        watched_defragment(ctx, name, each, defrag)
        defrag["db_size_after"] = snapshot(f"defragmented {name}")["db_size"][name]
    steps["disarm"] = []
    disarm_all(members[leader], ids, timeout, steps["disarm"])
    steps["alarms_after"] = {name: list_alarms(each, ids) for name, each in members.items()}
    steps["db_size_after"] = snapshot("disarmed")["db_size"]
    steps["write_after"], _ = attempt(
        lambda: members[leader].put(f"{KEY_PREFIX}after", "z" * 16, timeout))
    snapshot("written again")
    ctx.log(f"quota: recovery: compact {steps['compact']['outcome']} in "
            f"{steps['compact']['elapsed_s']:.3f} s; early disarm, write "
            f"{early['write']['outcome']} ({early['write']['details']}), alarms after it "
            f"{sum(map(len, early['alarms_after_write'].values()))}; defragment "
            + ", ".join(f"{d['member']} {d['elapsed_s']:.3f} s ({len(d['reads'])} reads)"
                        for d in steps["defragment"])
            + f"; disarmed {len(steps['disarm'])}; write after: {steps['write_after']['outcome']}")


def disarm_all(leader: Member, ids: Mapping[int, str], timeout: float,
               records: list[dict[str, Any]]) -> None:
    """Disarm every alarm the leader lists, one record each appended to ``records``."""
    for alarm in list_alarms(leader, ids):
        record, _ = attempt(lambda m=alarm["member_id"]: leader.disarm(m, timeout))
        record.update(alarm)
        records.append(record)


def watched_defragment(ctx: Context, name: str, target: Member, record: dict[str, Any]) -> None:
    """Defragment one member while a thread sends it serializable reads, back to back.

    ``record`` gets the defragmentation's outcome (as :func:`attempt` records it), its
    start and end, and every read (``reads``: sent_s, elapsed_s, outcome, code), all in
    seconds from the reader's start on this machine's monotonic clock."""
    timeout = ctx.params["op_timeout_s"]
    record.update(reader_lead_s=READER_LEAD_S, reader_tail_s=READER_TAIL_S)
    reads: list[dict[str, Any]] = record.setdefault("reads", [])
    reader = transport.member(ctx.cluster, name, timeout)
    stop = threading.Event()
    origin = time.perf_counter()

    def read_until_stopped() -> None:
        attempt(lambda: reader.get(f"{KEY_PREFIX}1", timeout, serializable=True))  # connects
        while not stop.is_set():
            sent = time.perf_counter() - origin
            read, _ = attempt(lambda: reader.get(f"{KEY_PREFIX}1", timeout, serializable=True))
            reads.append({"sent_s": round(sent, 6), "elapsed_s": read["elapsed_s"],
                          "outcome": read["outcome"], "code": read["code"]})

    thread = threading.Thread(target=read_until_stopped, name=f"reader-{name}", daemon=True)
    thread.start()
    try:
        time.sleep(READER_LEAD_S)
        started = time.perf_counter() - origin
        outcome, _ = attempt(lambda: target.defragment(DEFRAG_TIMEOUT_S))
        record.update(outcome, started_s=round(started, 6),
                      ended_s=round(time.perf_counter() - origin, 6))
        time.sleep(READER_TAIL_S)
    finally:
        stop.set()
        thread.join(timeout + 1)
        reader.close()


def revoke_probe_lease(ctx: Context, members: Mapping[str, Member]) -> None:
    """Revoke the lease granted before the fill if the alarm's revoke did not (not a fault:
    it would expire by itself, this only leaves nothing behind)."""
    lease = (ctx.samples.get("setup") or {}).get("lease")
    revoked = ((ctx.samples.get("alarm") or {}).get("probes") or {}).get("lease_revoke") or {}
    if lease and revoked.get("outcome") != "ok":
        attempt(lambda: members[ctx.cluster.wait_leader()].revoke(lease["id"], 5.0))


def restore(ctx: Context, show: Callable[[str, dict[str, str]], None]) -> dict[str, Any]:
    """Re-apply the etcd role with the provisioned settings (the provisioned quota), timed."""
    ctx.log("quota: restoring the provisioned settings")
    started = time.monotonic()
    ctx.faults.restore_settings(show)
    return {"reconfigure_s": round(time.monotonic() - started, 3)}


# -- etcd and node helpers -------------------------------------------------------------------

def compact_to(member: Member, revision: int) -> int:
    """Compact the keyspace up to ``revision`` and wait until it is physically done."""
    return member.compact(revision, timeout=DEFRAG_TIMEOUT_S)


def list_alarms(member: Member, ids: Mapping[int, str]) -> list[dict[str, str]]:
    """The alarms one member lists: [{member: name (or hex id), member_id, alarm}]."""
    return [{"member": ids.get(member_id, f"{member_id:x}"), "member_id": member_id,
             "alarm": alarm} for member_id, alarm in member.alarms()]


def active_alarms(member: Member) -> bool:
    """Whether the cluster (as this member sees it) has any alarm raised."""
    try:
        return bool(member.alarms())
    except grpc.RpcError:
        return False


def backend_sizes(members: Mapping[str, Member]
                  ) -> tuple[dict[str, int | None], dict[str, int | None]]:
    """Each member's (Status ``dbSize``, ``dbSizeInUse``) as two maps; None when it does not
    answer."""
    sizes = {name: each.backend_sizes() for name, each in members.items()}
    return ({name: total for name, (total, _) in sizes.items()},
            {name: in_use for name, (_, in_use) in sizes.items()})


def db_sizes(members: Mapping[str, Member]) -> dict[str, int | None]:
    """Each member's backend size in bytes (Status ``dbSize``); None when it does not answer."""
    return {name: _db_size(member) for name, member in members.items()}


def _db_size(member: Member) -> int | None:
    return member.db_size()


def configured_quota(cluster: Cluster, tries: int = 3) -> dict[str, int | None]:
    """``quota-backend-bytes`` as each member's etcd config file sets it (read again, up to
    ``tries`` times, when a read finds no value: one ``docker exec`` on a loaded machine
    once came back without the file's text)."""
    configured: dict[str, int | None] = {}
    for name in cluster.names:
        for attempt_no in range(tries):
            _code, text = cluster.lab.exec(name, ["cat", CONFIG_FILE], check=False)
            configured[name] = parse_quota(text)
            if configured[name] is not None:
                break
            if attempt_no + 1 < tries:
                time.sleep(1.0)
    return configured


def parse_quota(config_text: str) -> int | None:
    """The ``quota-backend-bytes`` value of an etcd YAML config file, or None."""
    for line in config_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "quota-backend-bytes":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("quota_bytes", FULL_RUN["quota_bytes"], "the quota applied for the experiment",
              unit="B", minimum=1024**2, maximum=8 * 1024**3),
        # etcd refuses requests over 1.5 MiB (--max-request-bytes).
        Param("value_bytes", 32 * 1024, "size of each value written", unit="B", minimum=1,
              maximum=1024**2),
        Param("keys", 16, "distinct keys overwritten in turn", minimum=1),
        Param("size_every", 16, "writes between DB size samples", minimum=1),
        Param("op_timeout_s", 5.0, "timeout of one etcd request", unit="s", above=0),
        Param("alarm_wait_s", 10.0, "time allowed for the NOSPACE alarm", unit="s", above=0),
    ),
    quick={"quota_bytes": 16 * 1024**2},
    run=run,
    check=check,
    summarize=summarize,
)
