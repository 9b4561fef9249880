"""Q3 ``partition``: what happens on each side of a network partition?

Two scenarios, each repeated ``trials`` times, each cutting one node off from the other
members with iptables (``faults.cut_off``: node↔node traffic only, so this machine still
reaches both sides and can ask the minority what it does):

(a) ``leader_isolated``: the leader is cut off. Measured from the moment the rules were in
    force: the time until both majority members name one new leader (``new_leader_s``)
    and until the old leader gives up leadership (``step_down_s``; check-quorum). A lease
    granted before the cut shows whether the new leader refreshed it.
(b) ``follower_isolated``: a follower is cut off; the leader should keep its term and its
    majority, and the follower should lose its leader without disrupting anyone (pre-vote).

In both, after the majority wrote a new value of a test key, the cut-off member is asked
to: read serializably (expected: the old value, a stale read), read linearizably and
write, once the way a default client does (held until the deadline: *unknown*) and once
with the ``hasleader`` metadata of ``clientv3.WithRequireLeader`` (expected: refused at
once, "etcdserver: no leader": *failed*). Every outcome is ok, failed or unknown
(timed out), with the gRPC code and details. Then the partition is removed and the
time is measured until the cut-off member follows the leader (``rejoin_s``) and every
member serves the same value, mod revision and store revision of the key
(``converge_s``).

(c) ``one_way``: the traffic between the leader and its followers dropped in one direction
    only, ``oneway_trials`` times each way (``faults.one_way``): ``leader_deaf`` (the
    followers' packets to the leader dropped: it still sends) and ``leader_mute`` (the
    leader's packets to the followers dropped: it still hears). Every member's status is
    polled from the cut for ``oneway_watch_s``, then until one member alone has claimed
    leadership, named by a majority, for ``oneway_hold_s``: which side elected, whether
    two members claimed leadership in one poll round (and for how long), and how long
    until one leader. Then the rules go and the time until every member follows one
    leader is measured.

(d) ``register``: under each fault of ``register_faults`` (the leader cut off, a follower
    cut off, the leader crashed), ``register_clients`` clients read, write and
    compare-and-swap three keys through members picked at random for ``register_s``
    (:mod:`etcdlab.etcd.workloads`), once with linearizable reads and once with serializable
    ones; each series' history (``partition.register-FAULT-SERIES.history.jsonl``) is
    recorded and checked for linearizability by the runner.

At the end every member's KV hash is compared.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Mapping
from typing import Any

import grpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import Member, attempt, member, open_members, settled
from etcdlab.etcd.workloads import register_workload
from etcdlab.params import Param
from etcdlab.questions.common import (
    current_leader,
    member_hashes,
    member_names,
    playbook_logger,
    raft_state_changes,
)
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q03_partition import SPEC
from etcdlab.questions.q03_partition.analysis import (  # the pure helpers stay importable from here
    ASKED,
    LAST_SECOND_OPS,
    MINORITY_OPS,
    ONE_WAY,
    REGISTER_FAULTS,
    REGISTER_SERIES,
    SCENARIOS,
    agreed,  # noqa: F401
    is_stale,  # noqa: F401
    summarize,
    write_applied_after_heal,  # noqa: F401
)
from etcdlab.questions.runner import Context, Experiment

KEY_PREFIX = "/etcdlab/partition/"
SETUP_WITHIN_S = 30.0
"""How long a trial's setup write may keep failing transiently (a stall, a leader change
on a loaded machine) before the trial gives up."""


def run(ctx: Context) -> None:
    """Both scenarios, ``trials`` times each, then a KV hash comparison of every member."""
    params = ctx.params
    ids = member_names(ctx.cluster)
    stamp = f"{time.time_ns()}"
    for scenario in SCENARIOS:
        ctx.samples[scenario] = []
        trial_fn = leader_trial if scenario == "leader_isolated" else follower_trial
        with ctx.phase(f"partition: {scenario.replace('_', ' ')}", params["trials"]) as advance:
            for trial in range(1, params["trials"] + 1):
                key = f"{KEY_PREFIX}{stamp}/{scenario}/{trial}"
                sample = trial_fn(ctx, trial, ids, key)
                ctx.samples[scenario].append(sample)
                ctx.log(_trial_line(scenario, sample))
                advance()
    if params["oneway_trials"]:
        one_way_series(ctx, ids)
    register_series(ctx, stamp)
    if params["prevote_trials"]:
        prevote_control(ctx, ids, stamp)
    ctx.cluster.wait_healthy(timeout=60)
    members = member_hashes(ctx.cluster)
    consistent = len({(m["revision"], m["hash"]) for m in members}) == 1
    ctx.samples["consistency"] = {"consistent": consistent, "members": members}
    ctx.log(f"after both scenarios: members consistent = {consistent}")
    if not consistent:
        ctx.console.print("[yellow]warning:[/] the members' revisions or KV hashes differ: "
                          "their data diverged, which no heal undoes; rebuild the lab with "
                          "`invoke destroy`, then `invoke provision`")


def one_way_series(ctx: Context, ids: Mapping[int, str]) -> None:
    """``oneway_trials`` one-way partitions in each direction of :data:`ONE_WAY`."""
    params = ctx.params
    ctx.samples["one_way"] = {direction: [] for direction in ONE_WAY}
    with ctx.phase("partition: one-way", len(ONE_WAY) * params["oneway_trials"]) as advance:
        for direction in ONE_WAY:
            for trial in range(1, params["oneway_trials"] + 1):
                sample = one_way_trial(ctx, trial, ids, direction)
                ctx.samples["one_way"][direction].append(sample)
                ctx.log(f"{direction.replace('_', ' ')} trial {trial}: "
                        + (f"{sample['settled_leader']} alone led (term "
                           f"{sample['settled_term']}) {sample['settled_s']} s after the cut"
                           if sample["settled_s"] is not None else
                           "no single leader within the wait")
                        + f"; two claimants in {sample['overlap_rounds']} poll round(s)")
                advance()


def one_way_trial(ctx: Context, trial: int, ids: Mapping[int, str], direction: str
                  ) -> dict[str, Any]:
    """Drop the leader's traffic one way (``leader_deaf``: what the followers send it;
    ``leader_mute``: what it sends them), watch who claims leadership, heal, wait until
    every member follows one leader."""
    cluster, faults, params = ctx.cluster, ctx.faults, ctx.params
    cluster.wait_healthy(timeout=60)  # the last heal already waited for one leader for all
    old, _old_id, term_before = current_leader(cluster)
    followers = [n for n in cluster.names if n != old]
    members = open_members(cluster)
    interval = params["poll_interval_ms"] / 1000.0
    try:
        if direction == "leader_deaf":
            cut_before, cut_after = faults.one_way(followers, old)
        else:
            cut_before, cut_after = faults.one_way(old, followers)
        seen = watch_claims(members, ids, old, cut_after, interval, params["oneway_hold_s"],
                            params["election_wait_s"] + params["oneway_watch_s"],
                            watch=params["oneway_watch_s"])
        heal_before, heal_after = faults.reconnect()
        rejoined = watch_claims(members, ids, None, heal_after, interval, 0.0,
                                params["heal_wait_s"], everyone=True)
    finally:
        for one in members.values():
            one.close()
    return {
        "trial": trial,
        "direction": direction,
        "old_leader": old,
        "term_before": term_before,
        "cut_window_s": round(cut_after - cut_before, 6),
        **seen,
        "heal_window_s": round(heal_after - heal_before, 6),
        "after_heal": {key: rejoined[key] for key in ("settled_s", "settled_leader",
                                                        "settled_term", "overlap_rounds",
                                                        "rounds")},
    }


def watch_claims(members: Mapping[str, Member], ids: Mapping[int, str], old: str | None,
                 origin: float, interval: float, hold: float, timeout: float,
                 everyone: bool = False, watch: float = 0.0) -> dict[str, Any]:
    """Poll every member's status in rounds for at least ``watch`` seconds, then until one
    member alone has claimed leadership (its Status names itself) and a majority
    (``everyone``: every member) has named it, for ``hold`` seconds, or ``timeout`` passed:
    the single leader "settled" at the start of that last stretch. Times are seconds since
    ``origin`` (the middle of each round); a round lasts one status call per member, so
    each time is good to about one round (``round_s``).

    Returns the rounds (and their median length), each change of who claims leadership
    (with the term) and whom each member names, when ``old`` stopped claiming and another
    member first claimed, the first and last round with two or more claimants, and the
    single leader that settled (None if none did)."""
    names = list(members)
    quorum = len(names) if everyone else len(names) // 2 + 1
    changes: list[dict[str, Any]] = []
    widths: list[float] = []
    first: dict[str, float | None] = {"old_stepped_down_s": None, "other_leader_s": None,
                                      "overlap_first_s": None, "overlap_last_s": None}
    overlap_rounds = max_claimants = 0
    leader = leader_term = since = None
    deadline = time.monotonic() + timeout
    while True:
        began = time.time()
        views = {name: members[name].leader_view(timeout=max(interval, 0.05)) for name in names}
        ended = time.time()
        widths.append(ended - began)
        at = round((began + ended) / 2 - origin, 6)
        claims = {name: view[2] for name, view in views.items()
                  if view is not None and view[1] and view[1] == view[0]}
        named = {name: None if view is None else (ids.get(view[1], f"{view[1]:x}")
                                                  if view[1] else "") for name, view in
                 views.items()}
        state = {"claims": claims, "named": named}
        if not changes or {k: changes[-1][k] for k in state} != state:
            changes.append({"at_s": at, **state})
        max_claimants = max(max_claimants, len(claims))
        if len(claims) >= 2:
            overlap_rounds += 1
            if first["overlap_first_s"] is None:
                first["overlap_first_s"] = at
            first["overlap_last_s"] = at
        if old is not None:
            if first["old_stepped_down_s"] is None and old not in claims:
                first["old_stepped_down_s"] = at
            if first["other_leader_s"] is None and set(claims) - {old}:
                first["other_leader_s"] = at
        alone = next(iter(claims)) if len(claims) == 1 else None
        if alone is not None and sum(1 for n in named.values() if n == alone) < quorum:
            alone = None
        if alone != leader or (alone is not None and claims[alone] != leader_term):
            leader, leader_term = alone, claims.get(alone) if alone else None
            since = at if alone else None
        if since is not None and at - since >= hold and at >= watch:
            break
        if time.monotonic() >= deadline:  # what settled last (if anything) is kept
            break
        time.sleep(max(0.0, interval - (time.time() - began)))
    return {
        "rounds": len(widths),
        "round_s": round(sorted(widths)[len(widths) // 2], 6),
        "changes": changes,
        **first,
        "overlap_rounds": overlap_rounds,
        "max_claimants": max_claimants,
        "settled_s": since,
        "settled_leader": leader if since is not None else None,
        "settled_term": leader_term if since is not None else None,
        "old_named_at_end": changes[-1]["named"].get(old) if old else None,
    }


def register_series(ctx: Context, stamp: str) -> None:
    """The register workload under each fault of ``register_faults``, once with
    linearizable reads and once with serializable ones; each series' history is checked by
    the runner (``partition.register-FAULT-SERIES.history.jsonl``)."""
    params, cluster = ctx.params, ctx.cluster
    faults = params["register_faults"].split(",")
    ctx.samples["register"] = {}
    with ctx.phase("partition: register workload", len(faults) * len(REGISTER_SERIES)
                   ) as advance:
        for fault in faults:
            for series in REGISTER_SERIES:
                cluster.wait_healthy(timeout=60)
                leader, _id, _term = current_leader(cluster)
                target = leader if fault != "follower-cut" else next(
                    n for n in cluster.names if n != leader)
                if fault == "leader-crash":
                    ctx.faults.crash(target)
                else:
                    ctx.faults.cut_off(target)
                counts = register_workload(
                    cluster, ctx.history(f"register-{fault}-{series}"),
                    f"{KEY_PREFIX}{stamp}/register/{fault}/{series}/",
                    clients=params["register_clients"], duration_s=params["register_s"],
                    op_timeout_s=params["register_timeout_s"],
                    serializable=series == "serializable", seed=params["register_seed"])
                if fault == "leader-crash":
                    ctx.faults.wait_exited(target)
                    ctx.faults.restart(target)
                else:
                    ctx.faults.reconnect()
                ctx.samples["register"].setdefault(fault, {})[series] = {
                    **counts, "target": target}
                ctx.log(f"register ({series} reads, {fault} {target}): "
                        f"{sum(sum(c.values()) for c in counts['outcomes'].values())} "
                        "operations")
                advance()


def prevote_control(ctx: Context, ids: Mapping[int, str], stamp: str) -> None:
    """The follower cut off for ``prevote_isolation_s`` (several election timeouts) and
    healed, ``prevote_trials`` times with pre-vote on (etcd 3.5's default), then as many
    with pre-vote off: the setting goes through the settings journal (``--pre-vote=false``
    by the role, rolling; the provisioned setting re-applied afterwards, or by
    ``invoke heal`` after a kill)."""
    params = ctx.params
    ctx.samples["prevote"] = {"on": [], "off": []}
    show = playbook_logger(ctx)
    with ctx.phase("partition: pre-vote control", 2 * params["prevote_trials"]) as advance:
        for setting in ("on", "off"):
            if setting == "off":
                ctx.log("pre-vote off: re-applying the etcd role (rolling)")
                ctx.faults.change_settings(show, etcd_pre_vote=False)
            for trial in range(1, params["prevote_trials"] + 1):
                sample = prevote_trial(ctx, ids, f"{KEY_PREFIX}{stamp}/prevote/{setting}")
                ctx.samples["prevote"][setting].append({"trial": trial, **sample})
                ctx.log(f"pre-vote {setting}: isolated {sample['isolated']} campaigned "
                        f"{sample['isolated_campaigns']} time(s) up to term "
                        f"{sample['isolated_term_max']} (leader's {sample['term_before']}); "
                        f"leader disrupted: {sample['disrupted']}")
                advance()
            if setting == "off":
                ctx.log("pre-vote: re-applying the provisioned settings")
                ctx.faults.restore_settings(show)


def prevote_trial(ctx: Context, ids: Mapping[int, str], key: str) -> dict[str, Any]:
    """Cut a follower off long enough for several elections of its own, heal, and watch
    whether the leader is disrupted; a writer on the leader times the unavailability."""
    cluster, faults, params = ctx.cluster, ctx.faults, ctx.params
    cluster.wait_healthy(timeout=60)
    leader, leader_id, term_before = current_leader(cluster)
    isolated = next(n for n in cluster.names if n != leader)
    members = open_members(cluster)
    writer = SteadyWriter(cluster, leader, key, params["op_timeout_s"] / 4)
    interval = params["poll_interval_ms"] / 1000.0
    try:
        writer.start()
        time.sleep(0.5)
        _cut_before, cut_after = faults.cut_off(isolated)
        time.sleep(params["prevote_isolation_s"])
        _heal_before, healed_at = faults.reconnect()
        leaders, terms = set(), set()
        # At least prevote_watch_s (a disruption starts with the leader's next heartbeat
        # to the rejoined member), then until every member names one leader and a write
        # was acknowledged after the last round in which they did not: a disruption's
        # write gap is then closed, however long its election took.
        watched_from = time.monotonic()
        unsettled_at = healed_at
        longest = params["prevote_watch_s"] + params["heal_wait_s"]
        while time.monotonic() - watched_from < longest:
            named = set()
            for name in cluster.names:
                view = members[name].leader_view(timeout=0.5)
                named.add(view[1] if view is not None else None)
                if view is not None and view[1]:
                    leaders.add(view[1])
                    if name != isolated:
                        terms.add(view[2])
            if len(named) != 1 or not next(iter(named)):
                unsettled_at = time.time()
            elif (time.monotonic() - watched_from >= params["prevote_watch_s"]
                  and writer.last_ack > unsettled_at):
                break
            time.sleep(max(interval, 0.05))
        watched_s = time.time() - healed_at
        after = members[leader].leader_view(timeout=2.0)
    finally:
        writer.stop()
        for one in members.values():
            one.close()
    # etcd's Status reports the term of the last applied entry, not a candidate's own
    # term: the raft state changes in the members' logs show the campaigns.
    logs = {name: raft_state_changes(cluster.lab.service_log(name, "etcd", lines=3000),
                                     cut_after) for name in (isolated, leader)}
    isolated_changes = [c for c in logs[isolated] if c["at"] <= healed_at]
    campaigns = [c["term"] for c in isolated_changes if c["state"] == "candidate"]
    return {
        "isolated": isolated,
        "leader": leader,
        "term_before": term_before,
        "isolated_campaigns": len(campaigns),
        "isolated_pre_campaigns": sum(1 for c in isolated_changes
                                      if c["state"] == "pre-candidate"),
        "isolated_term_max": max(campaigns, default=term_before),
        "leader_stepped_down_after_heal_s": next(
            (round(c["at"] - healed_at, 3) for c in logs[leader]
             if c["state"] == "follower" and c["at"] >= healed_at - 0.001), None),
        "leaders_seen_after_heal": sorted(ids.get(i, f"{i:x}") for i in leaders),
        "majority_terms_after_heal": sorted(terms),
        "term_after": after[2] if after else None,
        "leader_after": ids.get(after[1]) if after and after[1] else None,
        "disrupted": bool(after is None or after[1] != leader_id
                          or (after[2] or 0) > term_before or len(leaders) > 1),
        "isolation_s": params["prevote_isolation_s"],
        "watched_after_heal_s": round(watched_s, 3),
        "writes": writer.outcomes(cut_after, healed_at),
    }


class SteadyWriter:
    """Writes to one member back to back (``timeout`` each) and keeps every outcome's
    time, so that the longest stretch without an acknowledged write can be told."""

    def __init__(self, cluster: Any, name: str, key: str, timeout: float) -> None:
        self.member = member(cluster, name, timeout=timeout)
        self.key = key
        self.done: list[tuple[float, str]] = []
        self.last_ack = 0.0  # when the latest acknowledged write returned (0: none yet)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="steady-writer")

    def start(self) -> None:
        """Begin writing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop writing and close the channel."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.member.close()

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            count += 1
            record, _answer = attempt(functools.partial(self.member.put, self.key, str(count)))
            now = time.time()
            self.done.append((now, record["outcome"]))
            if record["outcome"] == "ok":
                self.last_ack = now
            else:
                self._stop.wait(0.005)

    def outcomes(self, cut_at: float, healed_at: float) -> dict[str, Any]:
        """Acknowledged writes and the longest gap between them after the heal (from the
        last acknowledged write before it), relative to the heal."""
        acked = [when for when, outcome in self.done if outcome == "ok"]
        before = [w for w in acked if w <= healed_at]
        after = [w for w in acked if w > healed_at]
        points = ([before[-1]] if before else []) + after
        gaps = [(b - a, a) for a, b in zip(points, points[1:], strict=False)]
        gap, gap_start = max(gaps) if gaps else (None, None)
        return {"acknowledged": len(acked), "attempts": len(self.done),
                "during_cut": sum(1 for w in acked if cut_at <= w <= healed_at),
                "longest_gap_after_heal_s": None if gap is None else round(gap, 6),
                "gap_started_s": None if gap_start is None else round(gap_start - healed_at, 6),
                "after_heal": len(after)}


def recorded(ctx: Context, members: dict[str, Member]) -> dict[str, Member]:
    """Every KV call of a trial goes into ``partition.history.jsonl`` (process = the member
    asked), checked for linearizability across the partition by the runner."""
    for name, one in members.items():
        one.record_into(ctx.history(), name)
    return members


def leader_trial(ctx: Context, trial: int, ids: Mapping[int, str], key: str) -> dict[str, Any]:
    """Cut the leader off; time the new election and step-down; probe both sides; heal."""
    cluster, faults, params = ctx.cluster, ctx.faults, ctx.params
    cluster.wait_healthy(timeout=60)
    old, old_id, term_before = current_leader(cluster)
    majority = [n for n in cluster.names if n != old]
    members = recorded(ctx, open_members(cluster))
    timeout = params["majority_timeout_s"]
    try:
        setup: list[dict[str, Any]] = []
        lease_id = settled(lambda: members[old].grant(params["lease_ttl_s"], timeout),
                           SETUP_WITHIN_S, f"trial {trial}: the lease on {old}", setup)
        granted_at = time.time()
        before_value = f"before-{trial}"
        settled(lambda: members[old].put(key, before_value, timeout), SETUP_WITHIN_S,
                f"trial {trial}: the write before the cut on {old}", setup)
        time.sleep(params["settle_s"])  # lets the lease age before the cut
        if setup:  # the setup met a stall or an election: cut whoever leads now
            old, old_id, term_before = current_leader(cluster)
            majority = [n for n in cluster.names if n != old]
        lease_before = _lease_ttl(members[old], lease_id, timeout)
        last_second = LastSecondProbe(cluster, old, f"{key}/last-second", before_value,
                                      params["last_second_timeout_s"], ctx.history())
        cut_before, cut_after = faults.cut_off(old)
        last_second.start(cut_after)
        try:
            seen = watch_leader_change(
                members, majority, old, old_id, params["poll_interval_ms"] / 1000.0,
                params["election_wait_s"],
            )
        finally:
            last_second.stop(linger_s=params["last_second_timeout_s"])
        if seen["new_leader_id"] is None:
            raise LabError(f"trial {trial}: the majority elected no leader within "
                           f"{params['election_wait_s']} s of cutting {old} off")
        new = ids.get(seen["new_leader_id"], f"{seen['new_leader_id']:x}")
        lease_after = _lease_ttl(members[new], lease_id, timeout)
        majority_value = f"majority-{trial}"
        majority_write, majority_revision = attempt(
            lambda: members[new].put(key, majority_value, timeout))
        majority_write["revision"] = majority_revision
        probes = minority_ops(members[old], key, f"minority-{trial}", params["op_timeout_s"])
        other = next(n for n in majority if n != new)
        majority_read = _read_record(members[other], key, timeout)
        heal_before, heal_after = faults.reconnect()
        rejoin = wait_rejoined(members, old, seen["new_leader_id"], key,
                               params["poll_interval_ms"] / 1000.0, params["heal_wait_s"])
        after = members[new].leader_view(timeout=2.0)
        with contextlib.suppress(grpc.RpcError):  # it expires anyway; this only tidies up
            members[new].revoke(lease_id, timeout)
    finally:
        for member in members.values():
            member.close()
    return {
        "trial": trial,
        "setup_retries": setup,
        "isolated": old,
        "old_leader": old,
        "new_leader": new,
        "term_before": term_before,
        "term_after": after[2] if after else None,
        "leader_after_heal": ids.get(after[1]) if after else None,
        "cut_window_s": round(cut_after - cut_before, 6),
        "new_leader_s": _since(seen["new_leader_at"], cut_after),
        "step_down_s": _since(seen["stepped_down_at"], cut_after),
        "old_leader_view_after": ids.get(seen["old_view"], seen["old_view"]),
        "lease": {"ttl_s": params["lease_ttl_s"],
                  "age_at_cut_s": round(cut_after - granted_at, 3),
                  "remaining_before_cut_s": lease_before,
                  "remaining_after_new_leader_s": lease_after},
        "before_value": before_value,
        "majority_value": majority_value,
        "majority_write": majority_write,
        "majority_read": majority_read,
        "minority": probes,
        "last_second": last_second.probes,
        "heal_window_s": round(heal_after - heal_before, 6),
        "rejoin_s": _since(rejoin["followed_at"], heal_after),
        "converge_s": _since(rejoin["converged_at"], heal_after),
        "after_heal": rejoin["members"],
    }


class LastSecondProbe:
    """Probes the cut-off leader continuously from the cut until it has stepped down: one
    thread each for serializable reads (every ``SERIALIZABLE_EVERY_S``), linearizable
    reads and writes (back to back, ``timeout`` each), on a key of their own that holds
    ``value`` before the cut. Each probe: op, ``at_s`` (invocation, from the cut),
    ``elapsed_s``, outcome, code and the value read."""

    SERIALIZABLE_EVERY_S = 0.01
    MAX_PROBES = 3000

    def __init__(self, cluster: Any, name: str, key: str, value: str, timeout: float,
                 history: Any) -> None:
        self.members = {op: member(cluster, name, timeout=timeout) for op in LAST_SECOND_OPS}
        for op, one in self.members.items():
            one.record_into(history, f"{name}-last-second-{op}")
        self.members["write"].put(key, value)  # through the leader, before the cut
        self.key, self.timeout = key, timeout
        self.probes: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._cut_at = 0.0

    def start(self, cut_at: float) -> None:
        """Start probing; times are taken from ``cut_at`` (wall clock)."""
        self._cut_at = cut_at
        self._threads = [threading.Thread(target=self._probe, args=(op,), daemon=True,
                                          name=f"last-second-{op}") for op in LAST_SECOND_OPS]
        for thread in self._threads:
            thread.start()

    def stop(self, linger_s: float = 0.0) -> None:
        """Go on for ``linger_s`` more (the probes just after the step-down), then stop."""
        time.sleep(linger_s)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        for one in self.members.values():
            one.close()

    def _probe(self, op: str) -> None:
        one = self.members[op]
        calls = {"serializable_read": lambda n: one.get(self.key, serializable=True),
                 "linearizable_read": lambda n: one.get(self.key),
                 "write": lambda n: one.put(self.key, f"last-second-{n}")}
        count = 0
        while not self._stop.is_set() and len(self.probes) < self.MAX_PROBES:
            count += 1
            invoked = time.time()
            record, answer = attempt(functools.partial(calls[op], count))
            record.update(op=op, at_s=round(invoked - self._cut_at, 6))
            if isinstance(answer, dict):
                record["value"] = answer.get("value")
            with self._lock:
                self.probes.append(record)
            if op == "serializable_read":
                self._stop.wait(self.SERIALIZABLE_EVERY_S)
            elif record["outcome"] != "unknown":
                self._stop.wait(0.002)  # a quick refusal: do not spin


def follower_trial(ctx: Context, trial: int, ids: Mapping[int, str], key: str) -> dict[str, Any]:
    """Cut a follower off; check the leader keeps serving and is not disrupted; heal."""
    cluster, faults, params = ctx.cluster, ctx.faults, ctx.params
    cluster.wait_healthy(timeout=60)
    leader, leader_id, term_before = current_leader(cluster)
    followers = [n for n in cluster.names if n != leader]
    isolated = followers[(trial - 1) % len(followers)]
    majority = [n for n in cluster.names if n != isolated]
    members = recorded(ctx, open_members(cluster))
    timeout = params["majority_timeout_s"]
    try:
        setup: list[dict[str, Any]] = []
        before_value = f"before-{trial}"
        settled(lambda: members[leader].put(key, before_value, timeout), SETUP_WITHIN_S,
                f"trial {trial}: the write before the cut on {leader}", setup)
        time.sleep(params["settle_s"])
        if setup:  # the setup met a stall or an election: the roles may have moved
            leader, leader_id, term_before = current_leader(cluster)
            followers = [n for n in cluster.names if n != leader]
            isolated = followers[(trial - 1) % len(followers)]
            majority = [n for n in cluster.names if n != isolated]
        cut_before, cut_after = faults.cut_off(isolated)
        majority_value = f"majority-{trial}"
        majority_write, majority_revision = attempt(
            lambda: members[leader].put(key, majority_value, timeout))
        majority_write["revision"] = majority_revision
        seen = watch_follower_cut(members, majority, isolated,
                                  params["poll_interval_ms"] / 1000.0,
                                  params["follower_watch_s"], params["election_wait_s"])
        probes = minority_ops(members[isolated], key, f"minority-{trial}",
                              params["op_timeout_s"])
        other = next(n for n in majority if n != leader)
        majority_read = _read_record(members[other], key, timeout)
        heal_before, heal_after = faults.reconnect()
        rejoin = wait_rejoined(members, isolated, leader_id, key,
                               params["poll_interval_ms"] / 1000.0, params["heal_wait_s"])
        after = members[leader].leader_view(timeout=2.0)
    finally:
        for member in members.values():
            member.close()
    return {
        "trial": trial,
        "setup_retries": setup,
        "isolated": isolated,
        "leader": leader,
        "term_before": term_before,
        "term_after": after[2] if after else None,
        "leader_after_heal": ids.get(after[1]) if after else None,
        "cut_window_s": round(cut_after - cut_before, 6),
        "majority_leaders_seen": sorted(ids.get(i, f"{i:x}") for i in seen["majority_leaders"]),
        "majority_terms_seen": sorted(seen["majority_terms"]),
        "isolated_lost_leader_s": _since(seen["lost_leader_at"], cut_after),
        "watched_s": round(seen["watched_until"] - cut_after, 3),
        "before_value": before_value,
        "majority_value": majority_value,
        "majority_write": majority_write,
        "majority_read": majority_read,
        "minority": probes,
        "heal_window_s": round(heal_after - heal_before, 6),
        "rejoin_s": _since(rejoin["followed_at"], heal_after),
        "converge_s": _since(rejoin["converged_at"], heal_after),
        "after_heal": rejoin["members"],
    }


def watch_leader_change(
    members: Mapping[str, Member], majority: list[str], old: str, old_id: int,
    interval: float, timeout: float,
) -> dict[str, Any]:
    """Poll both sides until the majority agrees on a new leader and the old one stepped down.

    Returns wall-clock times (None when not seen within ``timeout``), the new leader's id
    and the leader the old leader names after stepping down (0: none).
    """
    seen: dict[str, Any] = {"new_leader_id": None, "new_leader_at": None,
                            "stepped_down_at": None, "old_view": None}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polled = time.monotonic()
        if seen["new_leader_at"] is None:
            views = [members[n].leader_view(timeout=max(interval, 0.05)) for n in majority]
            leaders = {None if v is None else v[1] for v in views}
            if len(leaders) == 1 and not leaders & {None, 0, old_id}:
                seen["new_leader_id"], seen["new_leader_at"] = leaders.pop(), time.time()
        if seen["stepped_down_at"] is None:
            view = members[old].leader_view(timeout=max(interval, 0.05))
            if view is not None and view[1] != view[0]:
                seen["stepped_down_at"], seen["old_view"] = time.time(), view[1]
        if seen["new_leader_at"] is not None and seen["stepped_down_at"] is not None:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - polled)))
    return seen


def watch_follower_cut(
    members: Mapping[str, Member], majority: list[str], isolated: str, interval: float,
    watch: float, timeout: float,
) -> dict[str, Any]:
    """Watch the majority for ``watch`` seconds and the cut-off follower until it has no leader.

    Records every leader and term the majority reports meanwhile (one of each means the
    leader was not disrupted) and when the follower stopped naming a leader.
    """
    seen: dict[str, Any] = {"majority_leaders": set(), "majority_terms": set(),
                            "lost_leader_at": None}
    started = time.monotonic()
    while True:
        polled = time.monotonic()
        for name in majority:
            view = members[name].leader_view(timeout=max(interval, 0.05))
            if view is not None:
                seen["majority_leaders"].add(view[1])
                seen["majority_terms"].add(view[2])
        if seen["lost_leader_at"] is None:
            view = members[isolated].leader_view(timeout=max(interval, 0.05))
            if view is not None and view[1] == 0:
                seen["lost_leader_at"] = time.time()
        elapsed = time.monotonic() - started
        if (elapsed >= watch and seen["lost_leader_at"] is not None) or elapsed >= timeout:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - polled)))
    seen["watched_until"] = time.time()
    return seen


def minority_ops(member: Member, key: str, value: str, timeout: float) -> dict[str, Any]:
    """Ask the cut-off member to read and write; every outcome with its code and details."""
    calls = {
        "serializable_read": lambda: member.get(key, timeout, serializable=True),
        "linearizable_read": lambda: member.get(key, timeout),
        "linearizable_read_require_leader": lambda: member.get(key, timeout,
                                                               require_leader=True),
        "write": lambda: member.put(key, value, timeout),
        "write_require_leader": lambda: member.put(key, value, timeout, require_leader=True),
    }
    probes: dict[str, Any] = {"value_written": value}
    for op in MINORITY_OPS:
        record, answer = attempt(calls[op])
        if isinstance(answer, dict):
            record.update(answer)
        elif answer is not None:
            record["revision"] = answer
        probes[op] = record
    return probes


def wait_rejoined(
    members: Mapping[str, Member], isolated: str, leader_id: int, key: str, interval: float,
    timeout: float,
) -> dict[str, Any]:
    """After healing: when the cut-off member follows ``leader_id`` and all members agree.

    Agreement = every member serves the same value and mod revision of ``key`` and the
    same store revision (serializable reads: each member's own state).
    """
    followed_at = converged_at = None
    states: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polled = time.monotonic()
        if followed_at is None:
            view = members[isolated].leader_view(timeout=max(interval, 0.05))
            if view is not None and view[1] == leader_id:
                followed_at = time.time()
        if converged_at is None:
            states = {}
            for name, member in members.items():
                try:
                    states[name] = member.get(key, max(interval, 0.2), serializable=True)
                except grpc.RpcError:
                    states[name] = None
            answers = {None if s is None else (s["value"], s["mod_revision"], s["revision"])
                       for s in states.values()}
            if len(answers) == 1 and None not in answers:
                converged_at = time.time()
        if followed_at is not None and converged_at is not None:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - polled)))
    if followed_at is None or converged_at is None:
        raise LabError(f"{isolated}: not rejoined {timeout} s after the partition healed "
                       f"(follows leader: {followed_at is not None}, members agree: "
                       f"{converged_at is not None}; last states {states})")
    return {"followed_at": followed_at, "converged_at": converged_at, "members": states}


def _lease_ttl(member: Member, lease_id: int, timeout: float) -> int | None:
    """The lease's remaining TTL in whole seconds, as the member answers it."""
    try:
        return member.time_to_live(lease_id, timeout)
    except grpc.RpcError:
        return None


def _read_record(member: Member, key: str, timeout: float) -> dict[str, Any]:
    """A linearizable read through a majority member, as an outcome record."""
    record, answer = attempt(lambda: member.get(key, timeout))
    record["member"] = member.name
    if answer:
        record.update(answer)
    return record


def _since(moment: float | None, origin: float) -> float | None:
    return None if moment is None else round(moment - origin, 6)


def _trial_line(scenario: str, sample: Mapping[str, Any]) -> str:
    minority = sample["minority"]
    outcomes = ", ".join(f"{op} {minority[op]['outcome']}" for op in MINORITY_OPS)
    head = (f"new leader after {sample['new_leader_s']} s"
            if scenario == "leader_isolated" else f"leader kept: {sample['leader_after_heal']}")
    return (f"{scenario} {sample['trial']}: {sample['isolated']} cut off; {head}; minority: "
            f"{outcomes}; converged {sample['converge_s']} s after healing")


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("trials", FULL_RUN["trials"],
              "partitions per side (leader cut off, follower cut off)", minimum=1),
        Param("settle_s", 3.0, "pause before each cut", unit="s", minimum=0),
        Param("poll_interval_ms", 5, "how often the majority is asked for a leader",
              unit="ms", minimum=1, maximum=1000),
        Param("op_timeout_s", 2.0, "timeout of one etcd request", unit="s", above=0),
        Param("majority_timeout_s", 5.0, "time allowed for a majority write", unit="s",
              above=0),
        Param("election_wait_s", 15.0, "time allowed for a new leader", unit="s", above=0),
        Param("follower_watch_s", 3.0, "how long the isolated follower is observed",
              unit="s", above=0),
        Param("heal_wait_s", 30.0, "time allowed to heal", unit="s", above=0),
        Param("lease_ttl_s", 30, "TTL of the lease refreshed across the cut", unit="s",
              minimum=2, maximum=3600),
        Param("last_second_timeout_s", 0.1, "timeout of each probe of the cut-off leader "
              "until it steps down", unit="s", above=0, maximum=5),
        Param("prevote_trials", FULL_RUN["prevote_trials"],
              "follower isolations per pre-vote setting (on, then off) in the control; 0 skips it",
              minimum=0, maximum=50),
        Param("prevote_isolation_s", 5.0, "how long the follower is cut off in the control "
              "(several election timeouts)", unit="s", above=0),
        Param("prevote_watch_s", 5.0, "how long the cluster is watched at least after the "
              "control's heal (then until every member names one leader and a write was "
              "acknowledged since)", unit="s", above=0),
        Param("oneway_trials", FULL_RUN["oneway_trials"],
              "one-way partitions per direction (the leader deaf, then mute); 0 skips them",
              minimum=0, maximum=100),
        Param("oneway_watch_s", 6.0, "how long a one-way partition is watched at least "
              "(several election timeouts)", unit="s", minimum=0),
        Param("oneway_hold_s", 2.0, "how long one leader must then have held, alone and "
              "named by a majority, before the one-way partition is healed", unit="s",
              minimum=0),
        Param("register_s", 10.0, "how long the register workload runs under each fault, "
              "per series", unit="s", above=0),
        Param("register_faults", ",".join(REGISTER_FAULTS), "the faults the register "
              "workload runs under, in order",
              pattern=rf"({'|'.join(REGISTER_FAULTS)})(,({'|'.join(REGISTER_FAULTS)}))*",
              pattern_help="a comma-separated list of " + ", ".join(REGISTER_FAULTS)),
        Param("register_clients", 5, "clients of the register workload", minimum=1,
              maximum=64),
        Param("register_timeout_s", 0.5, "timeout of one register operation", unit="s",
              above=0),
        Param("register_seed", 1, "seed of the register workload's choices"),
    ),
    # Quick: a 1 s deadline for the cut-off member's requests (they time out either way:
    # the minority has no leader), a 2 s pause before each cut (the lease still ages by
    # more than the whole seconds its TTL is reported in) and 2 s of watching the
    # cut-off follower (it loses its leader within one election timeout, 1-2 s).
    quick={"trials": 3, "op_timeout_s": 1.0, "settle_s": 2.0, "follower_watch_s": 2.0,
           "register_s": 5.0, "register_faults": "leader-cut",
           "prevote_trials": 3, "prevote_isolation_s": 4.0, "prevote_watch_s": 1.0,
           "oneway_trials": 3, "oneway_watch_s": 3.0, "oneway_hold_s": 1.0},
    run=run,
    summarize=summarize,
)
