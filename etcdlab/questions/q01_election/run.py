"""Q1 ``election``: how long does etcd take to elect a new leader, crash vs graceful stop?

Per trial: find the leader, wait a random part of a heartbeat interval, then SIGKILL it
(crash) or SIGTERM it (graceful: an etcd 3.5 leader hands leadership over before it
exits). Measured from the moment the signal was sent:

(a) ``elected_s``: a majority of the survivors report the same new leader (each survivor
    polled every ``poll_interval_ms``);
(b) ``first_write_s``: a client's first successful write through a survivor;
(c) ``log_elected_s``: etcd's own log line ("became leader" / "elected leader" for the new
    term), whose timestamp has millisecond resolution.

A trial starts once every member names the same leader in the same term and holds the
same raft log index (the previous trial's member has caught up), then ``settle_s`` more
(quick too: without it, the first graceful stop after the crash series once took a full
election, 2.04 s, in CI; etcd hands leadership only to a follower it deems ready). The
stopped member is started again and the cluster waited healthy; then every member reads
the trial's key back (linearizable reads). The probe writes through the failover and
those reads are recorded in ``election.history.jsonl`` (one key per trial,
each write a value of its own, a timed-out write an unknown outcome) and checked for
linearizability by the runner: an acknowledged write lost in the failover, or a timed-out
one that took effect on one member and not another, would make it not linearizable. After
each series every member's revision and KV hash are compared.

Then the timeout sweep (crash trials under other election timeouts, applied through the
settings journal) and the sizes: for each member count of ``sizes`` other than the lab's,
a temporary container lab of its own (network ``<lab network>-sizes`` on ``sizes_subnet``,
nodes ``<prefix>s1..N``, from the same image and roles) is provisioned, gets
``size_trials`` crash trials under the lab's own timeouts — and, with ``sizes_sweep``,
as many under each other timeout of the sweep (the etcd role re-applied on it, rolling),
so that the full run covers the grid of timeouts × sizes — and is destroyed. It is
written down in the lab's journal before it is created, so ``invoke heal`` removes it
after a killed run (its own setting changes go with it). (Not on an inventory of hosts:
the sizes need container labs.)
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import Member, close_all, member, open_members
from etcdlab.faults import Faults
from etcdlab.lab import provision as provisioning
from etcdlab.lab.cluster import Cluster
from etcdlab.lab.config import MAX_NODES
from etcdlab.params import Param
from etcdlab.questions.common import (
    current_leader,
    member_hashes,
    member_names,
    playbook_logger,
    zap_message,
)
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q01_election import SPEC
from etcdlab.questions.q01_election.analysis import ASKED, SERIES, summarize
from etcdlab.questions.runner import Context, Experiment


def run(ctx: Context) -> None:
    """Both series of trials, then a consistency check after each."""
    params = ctx.params
    rng = random.Random(params["seed"])
    for timeout in parse_numbers(params["sweep_timeouts_ms"]):  # refused before any fault
        ctx.cluster.config.with_changes(etcd_election_timeout_ms=timeout,
                                        etcd_heartbeat_interval_ms=sweep_heartbeat(timeout))
    for count in parse_numbers(params["sizes"]):  # likewise
        size_config(ctx.cluster.config, count, params["sizes_subnet"])
    ctx.samples.update({"crash": [], "graceful": [], "consistency": []})
    ids = member_names(ctx.cluster)
    for series in SERIES:
        with ctx.phase(f"election: {series}", params["trials"]) as advance:
            for trial in range(1, params["trials"] + 1):
                sample = one_trial(ctx, series, trial, rng, ids)
                ctx.samples[series].append(sample)
                advance()
        members = member_hashes(ctx.cluster)
        consistent = len({(m["revision"], m["hash"]) for m in members}) == 1
        ctx.samples["consistency"].append(
            {"series": series, "consistent": consistent, "members": members}
        )
        ctx.log(f"{series}: members consistent = {consistent}")
    timeout_sweep(ctx, rng, ids)
    size_series(ctx, rng)


def size_series(ctx: Context, rng: random.Random) -> None:
    """Crash trials on a temporary lab of each member count of ``sizes`` (see the module)."""
    params, config = ctx.params, ctx.cluster.config
    counts = [n for n in parse_numbers(params["sizes"]) if n != len(ctx.cluster.names)]
    ctx.samples["sizes"] = {"own_members": len(ctx.cluster.names), "settings": [],
                            "timeout_ms": config.etcd_election_timeout_ms,
                            "heartbeat_ms": config.etcd_heartbeat_interval_ms}
    if not counts or not params["size_trials"]:
        return
    if config.hosts_mode:
        ctx.samples["sizes"]["skipped"] = "the sizes need container labs (an inventory ran)"
        ctx.log("sizes: skipped on an inventory of hosts (they need container labs)")
        return
    grid = other_timeouts(params, config) if params["sizes_sweep"] else []
    show = playbook_logger(ctx)
    with ctx.phase("election: other cluster sizes",
                   len(counts) * params["size_trials"] * (1 + len(grid))) as advance:
        for count in counts:
            temp = size_config(config, count, params["sizes_subnet"])
            entry = ctx.faults.temporary_lab(temp)
            setting: dict[str, Any] = {"members": count, "trials": []}
            ctx.samples["sizes"]["settings"].append(setting)
            try:
                ctx.log(f"sizes: provisioning a temporary lab of {count} members on "
                        f"{temp.network} ({temp.prefix}1..{count})")
                started = time.monotonic()
                done = provisioning.provision(temp, ctx.log, show)
                setting["provision_s"] = round(time.monotonic() - started, 3)
                cluster = Cluster(done.config)
                cluster.wait_healthy(timeout=120)
                sub = dataclasses.replace(ctx, cluster=cluster, faults=Faults(cluster),
                                          history_dir=None, histories={})
                ids = member_names(cluster)
                for trial in range(1, params["size_trials"] + 1):
                    sample = one_trial(sub, f"size-{count}", trial, rng, ids, crash=True)
                    setting["trials"].append(sample)
                    ctx.log(f"{count} members, trial {trial}: new leader after "
                            f"{sample['elected_s']:.3f} s, term {sample['term_before']} → "
                            f"{sample['term_after']}")
                    advance()
                setting["sweep"] = []
                for timeout in grid:
                    swept(sub, show, timeout, params["size_trials"], f"size-{count}",
                          f"{count} members at", rng, ids, advance, setting["sweep"])
            finally:
                ctx.faults.end_temporary_lab(entry)


def timeout_sweep(ctx: Context, rng: random.Random, ids: Mapping[int, str]) -> None:
    """Crash trials under each election timeout of ``sweep_timeouts_ms`` other than the
    lab's own (which the crash series measured), heartbeat a tenth of it as the tuning
    guide advises. Each setting goes through the settings journal (the etcd role re-applied,
    rolling); the provisioned settings are re-applied at the end, or by the runner's heal."""
    params = ctx.params
    own = ctx.cluster.config.etcd_election_timeout_ms
    timeouts = other_timeouts(params, ctx.cluster.config)
    ctx.samples["sweep"] = {"own_timeout_ms": own,
                            "own_heartbeat_ms": ctx.cluster.config.etcd_heartbeat_interval_ms,
                            "settings": []}
    if not timeouts or not params["sweep_trials"]:
        return
    show = playbook_logger(ctx)
    with ctx.phase("election: timeout sweep", len(timeouts) * params["sweep_trials"]
                   ) as advance:
        for timeout in timeouts:
            swept(ctx, show, timeout, params["sweep_trials"], "sweep", "sweep", rng, ids,
                  advance, ctx.samples["sweep"]["settings"])
        ctx.log("sweep: re-applying the provisioned settings")
        ctx.faults.restore_settings(show)


def other_timeouts(params: Mapping[str, Any], config: Any) -> list[int]:
    """The sweep's timeouts other than the lab's own (which the crash series measures)."""
    own = config.etcd_election_timeout_ms
    return [t for t in parse_numbers(params["sweep_timeouts_ms"]) if t != own]


def swept(ctx: Context, show: Any, timeout: int, trials: int, series: str, label: str,
          rng: random.Random, ids: Mapping[int, str], advance: Any,
          into: list[dict[str, Any]]) -> None:
    """One setting of a sweep on ``ctx``'s lab: election timeout ``timeout``, heartbeat a
    tenth of it, applied through the settings journal (the etcd role re-applied, rolling),
    then ``trials`` crash trials; the setting and its trials go into ``into`` as they come
    (a run stopped midway keeps what it took)."""
    heartbeat = sweep_heartbeat(timeout)
    ctx.log(f"{label} {timeout} ms: election timeout {timeout} ms, heartbeat {heartbeat} ms "
            "(re-applying the etcd role, rolling)")
    ctx.faults.change_settings(show, etcd_election_timeout_ms=timeout,
                               etcd_heartbeat_interval_ms=heartbeat)
    setting: dict[str, Any] = {"timeout_ms": timeout, "heartbeat_ms": heartbeat, "trials": []}
    into.append(setting)
    for trial in range(1, trials + 1):
        sample = one_trial(ctx, f"{series}-{timeout}ms", trial, rng, ids,
                           heartbeat_s=heartbeat / 1000.0, crash=True)
        setting["trials"].append(sample)
        ctx.log(f"{label} {timeout} ms trial {trial}: new leader after "
                f"{sample['elected_s']:.3f} s, term {sample['term_before']} → "
                f"{sample['term_after']}")
        advance()


def size_config(config: Any, count: int, subnet: str) -> Any:
    """The temporary lab of ``count`` members (its own network, subnet and prefix);
    refuses a count out of range or the lab's own subnet."""
    if not 1 <= count <= MAX_NODES:
        raise LabError(f"sizes: {count} members is out of range (1..{MAX_NODES})")
    if subnet == config.subnet:
        raise LabError(f"sizes_subnet {subnet} is the lab's own subnet: give the temporary "
                       "labs another one")
    return config.with_changes(nodes=count, network=f"{config.network}-sizes", subnet=subnet,
                               prefix=f"{config.prefix}s")


def sweep_heartbeat(timeout_ms: int) -> int:
    """The heartbeat the sweep pairs with an election timeout: a tenth of it, as etcd's
    tuning guide advises, and never below the lab's smallest heartbeat setting (10 ms)."""
    return max(10, timeout_ms // 10)


def parse_numbers(text: str) -> list[int]:
    """``"250,500"`` → [250, 500]: the sweep's timeouts, the sizes' member counts (each
    parameter's pattern has checked the form; empty text → [])."""
    return [int(part) for part in text.split(",") if part.strip()]


def one_trial(
    ctx: Context, series: str, trial: int, rng: random.Random, ids: Mapping[int, str],
    heartbeat_s: float | None = None, crash: bool | None = None,
) -> dict[str, Any]:
    """Stop the leader once and time the recovery three ways; the signal (SIGKILL with
    ``crash``, which defaults to whether ``series`` is "crash"; SIGTERM otherwise) comes at
    a random point of one heartbeat (``heartbeat_s``, default the lab's)."""
    if crash is None:
        crash = series == "crash"
    cluster, faults, params = ctx.cluster, ctx.faults, ctx.params
    cluster.wait_healthy(timeout=60)
    settled_s = wait_settled(cluster, params["timeout_s"])
    time.sleep(params["settle_s"])
    leader, leader_id, term_before = current_leader(cluster)
    survivors = [n for n in cluster.names if n != leader]
    stubs = open_members(cluster, survivors)
    key = f"/etcdlab/election/{series}/{trial}"
    history = ctx.history()
    writer = FirstWrite(cluster, survivors, params["write_timeout_s"], key, history,
                        process=f"{series}-{trial}-writer")
    if heartbeat_s is None:
        heartbeat_s = cluster.config.etcd_heartbeat_interval_ms / 1000.0
    delay = rng.uniform(0, heartbeat_s)
    time.sleep(delay)
    writer.start()
    signalled = faults.crash(leader) if crash else faults.stop(leader)
    writer.go.set()
    try:
        new_leader_id, elected_at = wait_new_leader(
            stubs, leader_id, params["poll_interval_ms"] / 1000.0, params["timeout_s"]
        )
        writer.join(params["timeout_s"])
        term_after = new_term(stubs, new_leader_id, term_before, params["timeout_s"])
    finally:
        writer.stop.set()
        close_all(stubs)
    faults.wait_exited(leader)
    log_at = elected_in_log(ctx, survivors, term_after, not_before=signalled)
    faults.restart(leader)
    if writer.succeeded_at is None:
        raise LabError(f"trial {trial}: no write succeeded within {params['timeout_s']} s")
    cluster.wait_healthy(timeout=60)
    read_back = read_back_everywhere(cluster, key, history, f"{series}-{trial}",
                                     params["timeout_s"])
    return {
        "trial": trial,
        "killed": leader,
        "new_leader": ids.get(new_leader_id, f"{new_leader_id:x}"),
        "signal_delay_s": round(delay, 6),
        "settled_s": round(settled_s, 6),
        "elected_s": round(elected_at - signalled, 6),
        "first_write_s": round(writer.succeeded_at - signalled, 6),
        "write_attempts": writer.attempts,
        "log_elected_s": None if log_at is None else round(log_at - signalled, 6),
        "term_before": term_before,
        "term_after": term_after,
        "acknowledged": writer.acknowledged,
        "read_back": read_back,
    }


def wait_settled(cluster: Cluster, timeout: float, poll: float = 0.01) -> float:
    """Until every member names the same leader in the same term and holds the same raft
    log index (the restarted member has caught up); returns how long that took."""
    started = time.monotonic()
    while True:
        try:
            statuses = [cluster.raw_status(name) for name in cluster.names]
        except grpc.RpcError:
            statuses = []
        if statuses and statuses[0].leader and len(
                {(s.leader, s.raftTerm, s.raftIndex) for s in statuses}) == 1:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise LabError(f"the members did not agree on a leader and a log index within "
                           f"{timeout:.0f} s")
        time.sleep(poll)


def read_back_everywhere(cluster: Cluster, key: str, history: Any, process: str,
                         timeout: float) -> dict[str, str | None]:
    """Each member's linearizable read of ``key`` (recorded, one process per member): the
    value it returns, or None when the read failed."""
    values: dict[str, str | None] = {}
    for name in cluster.names:
        with member(cluster, name, timeout=timeout) as one:
            one.record_into(history, f"{process}-read-{name}")
            try:
                values[name] = one.get(key)["value"]
            except grpc.RpcError:
                values[name] = None
    return values


def wait_new_leader(
    stubs: Mapping[str, Member], old_id: int, interval: float, timeout: float
) -> tuple[int, float]:
    """Poll the survivors until a majority of them names one leader other than ``old_id``.

    Returns (leader id, wall-clock time seen).
    """
    need = len(stubs) // 2 + 1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polled = time.monotonic()
        votes: dict[int, int] = {}
        for status in statuses(stubs, max(interval, 0.05)):
            if status.leader and status.leader != old_id:
                votes[status.leader] = votes.get(status.leader, 0) + 1
        for leader_id, count in votes.items():
            if count >= need:
                return leader_id, time.time()
        time.sleep(max(0.0, interval - (time.monotonic() - polled)))
    raise LabError(f"no new leader within {timeout} s")


def new_term(
    stubs: Mapping[str, Member], leader_id: int, term_before: int,
    timeout: float,
) -> int:
    """The term the new leader serves in, as the survivors report it.

    etcd's Status reports the term of the last *applied* entry, so at the moment a
    survivor first names the new leader it may still report the old term; the new
    leader's first (empty) entry carries the new one. Poll until a survivor that follows
    ``leader_id`` reports a term above ``term_before``; give the highest seen otherwise.
    """
    seen = term_before
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in statuses(stubs, 0.5):
            if status.leader == leader_id:
                seen = max(seen, status.raftTerm)
        if seen > term_before:
            return seen
        time.sleep(0.01)
    return seen


def statuses(stubs: Mapping[str, Member], timeout: float) -> Iterator[Any]:
    """The Status of each member in ``stubs`` that answers within ``timeout``, in turn."""
    for each in stubs.values():
        try:
            yield each.status(timeout)
        except grpc.RpcError:
            continue


class FirstWrite(threading.Thread):
    """Tries writes through the survivors from the moment of the fault until one succeeds.

    Each attempt writes a value of its own (``attempt N``) to ``key``, recorded into
    ``history`` as one process (the attempts are sequential)."""

    def __init__(self, cluster: Cluster, survivors: list[str], timeout: float, key: str,
                 history: Any = None, process: str = "writer") -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.timeout = timeout
        self.survivors = survivors
        self.key = key
        self.history = history
        self.process = process
        self.go = threading.Event()
        self.stop = threading.Event()
        self.succeeded_at: float | None = None
        self.attempts = 0
        self.acknowledged: str | None = None

    def run(self) -> None:
        # A put proposed while there is no leader is dropped and only ends at its
        # deadline, so the deadline bounds how finely the first success is timed.
        clients = [member(self.cluster, n, timeout=self.timeout) for n in self.survivors]
        for client in clients:
            client.record_into(self.history, self.process)
        try:
            self.go.wait()
            while not self.stop.is_set():
                client = clients[self.attempts % len(clients)]
                self.attempts += 1
                value = f"attempt {self.attempts}"
                try:
                    client.put(self.key, value)
                except grpc.RpcError:  # unavailable, no leader yet, or timed out: again
                    time.sleep(0.002)
                    continue
                self.succeeded_at = time.time()
                self.acknowledged = value
                return
        finally:
            for client in clients:
                client.close()


def elected_in_log(ctx: Context, survivors: list[str], term: int, not_before: float
                   ) -> float | None:
    """Earliest wall-clock time a survivor's etcd log records a leader at ``term``.

    Lines stamped before ``not_before`` (the signal; less 1 ms for the log's millisecond
    stamps) belong to an earlier election and are ignored.
    """
    found: list[float] = []
    for name in survivors:
        for line in ctx.cluster.lab.service_log(name, "etcd").splitlines():
            when = parse_elected_line(line, term)
            if when is not None and when >= not_before - 0.001:
                found.append(when)
    return min(found) if found else None


def parse_elected_line(line: str, term: int) -> float | None:
    """The timestamp of a zap JSON log line saying a leader was elected at ``term``."""
    stamped = zap_message(line, "leader")
    if stamped is None:
        return None
    when, message = stamped
    if not (("elected leader" in message or "became leader" in message)
            and message.rstrip().endswith(f"at term {term}")):
        return None
    return when


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("trials", FULL_RUN["trials"], "elections per series (crash, graceful)", minimum=1),
        Param("poll_interval_ms", 5, "how often the survivors are asked for a leader",
              unit="ms", minimum=1, maximum=1000),
        Param("write_timeout_s", 0.1, "timeout of each probe write", unit="s", above=0),
        Param("timeout_s", 15.0, "give up on one election after this long", unit="s", above=0),
        Param("settle_s", 1.0, "pause between trials, once every member names the same "
              "leader and holds the same log index", unit="s", minimum=0),
        Param("seed", 1, "random seed for the kill moments"),
        Param("sweep_timeouts_ms", "250,500,2000", "election timeouts of the sweep's crash "
              "trials, besides the lab's own (heartbeat a tenth of each; re-applied rolling, "
              "then restored)", pattern=r"[0-9]{2,5}(,[0-9]{2,5})*",
              pattern_help="a comma-separated list of timeouts in ms, like 250,500"),
        Param("sweep_trials", 10, "crash trials per sweep setting; 0 skips the sweep",
              minimum=0, maximum=100),
        Param("sizes", "5,7", "member counts of the crash trials on temporary labs, besides "
              "the lab's own (empty: none)", pattern=r"([0-9]{1,2}(,[0-9]{1,2})*)?",
              pattern_help="a comma-separated list of member counts, like 5,7"),
        Param("size_trials", 10, "crash trials per temporary lab size", minimum=0,
              maximum=100),
        Param("sizes_sweep", True, "the temporary labs also get size_trials crash trials "
              "under each other timeout of sweep_timeouts_ms (the grid)"),
        Param("sizes_subnet", "172.26.0.0/16", "subnet of the temporary labs' network",
              pattern=r"[0-9.]+/[0-9]{1,2}", pattern_help="an IPv4 subnet like 172.26.0.0/16"),
    ),
    quick={"trials": 3, "sweep_timeouts_ms": "500", "sweep_trials": 3, "sizes": ""},
    run=run,
    summarize=summarize,
)
