"""Q6 ``quota``: what happens when ``--quota-backend-bytes`` is reached, and how to recover?

Set up: the etcd role is re-applied with a small quota (``provision.reconfigure``: rolling,
one member at a time, quorum kept), the configured value is read back from every
member's config file, and the backend is compacted and defragmented so that it starts
small. Run: fixed-size values are written, cycling over a few keys, one write at a time
through the leader, recording every write's latency and, every few writes, each
member's DB size, until a write is refused with "database space exceeded". While the
NOSPACE alarm is raised: each member's alarm list, a refused write through the leader and
through a follower, reads on both, and a delete. Recovery, as the etcd docs say, each
step timed with the DB sizes before and after: compact to the current revision,
defragment each member in turn, disarm every alarm; then a write must be accepted again.
Last, the provisioned settings are re-applied (timed). The quota change goes through
``ctx.faults.change_settings``, so it is journalled: a run that stops anywhere is healed by
the runner (recovering from the alarm first, then restoring the quota), and ``check`` reads
every member's configured quota and alarms back on the healed lab.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from etcdlab.analysis.quota import NOSPACE_TEXT, summarize
from etcdlab.cluster import Cluster
from etcdlab.errors import LabError
from etcdlab.experiments.base import Context, Experiment
from etcdlab.experiments.common import member_names, playbook_logger
from etcdlab.params import Param
from etcdlab.transport import Member, attempt, open_members

KEY_PREFIX = "/etcdlab/quota/"
CONFIG_FILE = "/etc/etcd/etcd.conf.yml"
DEFRAG_TIMEOUT_S = 120.0


def run(ctx: Context) -> None:
    """Small quota → fill until NOSPACE → probe → recover → restore the quota."""
    cluster = ctx.cluster
    ids = member_names(cluster)
    members = open_members(cluster)
    show = playbook_logger(ctx)
    try:
        ctx.samples["setup"] = set_up(ctx, members, show)
        fill(ctx, members, ctx.samples.setdefault("fill", {}))
        ctx.samples["alarm"] = during_alarm(ctx, members, ids)
        ctx.samples["recovery"] = recover(ctx, members, ids)
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
    for member in members.values():
        member.defragment(DEFRAG_TIMEOUT_S)
    return {"quota_bytes": quota, "configured": configured,
            "reconfigure_s": round(reconfigure_s, 3), "playbook_changed": run.changed,
            "db_sizes_before_cleanup": sizes_before, "cleanup_compact": compact,
            "db_sizes_start": db_sizes(members)}


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
                sizes.append({"write": n, "at_s": round(time.perf_counter() - started, 6),
                              "acknowledged_bytes": acknowledged * value_bytes,
                              "db_size": db_sizes(members)})
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
    at_alarm = db_sizes(members)
    sizes.append({"write": len(writes), "at_s": round(elapsed, 6),
                  "acknowledged_bytes": acknowledged * value_bytes, "db_size": at_alarm})
    ctx.log(f"quota: refused after {acknowledged} writes ({acknowledged * value_bytes} B "
            f"acknowledged) in {elapsed:.1f} s: {refused['details']}; DB sizes {at_alarm}")
    record.update(acknowledged=acknowledged, unknown=unknown,
                  bytes_acknowledged=acknowledged * value_bytes, elapsed_s=round(elapsed, 6),
                  refused=refused, db_size_at_alarm=at_alarm)


def during_alarm(ctx: Context, members: Mapping[str, Member],
                 ids: Mapping[int, str]) -> dict[str, Any]:
    """Which members list the alarm; a write, reads and a delete while it is raised."""
    cluster, params = ctx.cluster, ctx.params
    timeout = params["op_timeout_s"]
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.names if n != leader)
    started = time.monotonic()
    alarms: dict[str, list[dict[str, str]]] = {}
    while time.monotonic() - started < params["alarm_wait_s"]:
        alarms = {name: list_alarms(member, ids) for name, member in members.items()}
        if all(any(a["alarm"] == "NOSPACE" for a in listed) for listed in alarms.values()):
            break
        time.sleep(0.1)
    listed_s = time.monotonic() - started
    probes: dict[str, Any] = {}
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
    health = {name: cluster.healthy(name) for name in cluster.names}
    ctx.log("quota: during the alarm: " + ", ".join(
        f"{name} {probe['outcome']}" for name, probe in probes.items()))
    return {"alarms": alarms, "listed_after_s": round(listed_s, 3),
            "probes": probes, "health_endpoint": health}


def recover(ctx: Context, members: Mapping[str, Member], ids: Mapping[int, str]) -> dict[str, Any]:
    """Compact to the current revision, defragment each member, disarm: each step timed."""
    cluster, timeout = ctx.cluster, ctx.params["op_timeout_s"]
    leader = cluster.wait_leader()
    steps: dict[str, Any] = {"db_size_before": db_sizes(members)}
    revision = members[leader].get(KEY_PREFIX, timeout)["revision"]
    steps["compact"], _ = attempt(lambda: compact_to(members[leader], revision))
    steps["compact"]["revision"] = revision
    steps["db_size_after_compact"] = db_sizes(members)
    steps["defragment"] = []
    for name, member in members.items():
        before = _db_size(member)
        record, _ = attempt(lambda m=member: m.defragment(DEFRAG_TIMEOUT_S))
        record.update(member=name, db_size_before=before, db_size_after=_db_size(member))
        steps["defragment"].append(record)
    raised = list_alarms(members[leader], ids)
    steps["disarm"] = []
    for alarm in raised:
        record, _ = attempt(lambda m=alarm["member_id"]: members[leader].disarm(m, timeout))
        record.update(alarm)
        steps["disarm"].append(record)
    steps["alarms_after"] = {name: list_alarms(member, ids) for name, member in members.items()}
    steps["db_size_after"] = db_sizes(members)
    steps["write_after"], _ = attempt(
        lambda: members[leader].put(f"{KEY_PREFIX}after", "z" * 16, timeout))
    ctx.log(f"quota: recovery: compact {steps['compact']['outcome']} in "
            f"{steps['compact']['elapsed_s']:.3f} s; defragment "
            + ", ".join(f"{d['member']} {d['elapsed_s']:.3f} s" for d in steps["defragment"])
            + f"; disarmed {len(steps['disarm'])}; write after: {steps['write_after']['outcome']}")
    return steps


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


def db_sizes(members: Mapping[str, Member]) -> dict[str, int | None]:
    """Each member's backend size in bytes (Status ``dbSize``); None when it does not answer."""
    return {name: _db_size(member) for name, member in members.items()}


def _db_size(member: Member) -> int | None:
    return member.db_size()


def configured_quota(cluster: Cluster) -> dict[str, int | None]:
    """``quota-backend-bytes`` as each member's etcd config file sets it."""
    configured: dict[str, int | None] = {}
    for name in cluster.names:
        _code, text = cluster.lab.exec(name, ["cat", CONFIG_FILE], check=False)
        configured[name] = parse_quota(text)
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


EXPERIMENT = Experiment(
    name="quota",
    question=6,
    title="--quota-backend-bytes: the NOSPACE alarm and the recovery",
    parameters=(
        Param("quota_bytes", 32 * 1024**2, "the quota applied for the experiment", unit="B",
              minimum=1024**2, maximum=8 * 1024**3),
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
