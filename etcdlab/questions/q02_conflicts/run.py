"""Q2 ``conflicts``: how does etcd resolve concurrent updates of one key?

W workers, spread over the members, each increment one counter M times:

(a) ``naive``: get, then put value + 1. Raft orders the puts, so the last one wins and
    increments based on the same read overwrite each other: lost updates.
(b) ``cas``: a transaction that puts value + 1 only if the key's ``mod_revision`` is still
    the one read, retried on conflict: no update is lost; the retries are the price.
(c) every acknowledged CAS write carries the revision etcd gave it: sorted by the value
    written, the revisions must be distinct and strictly increasing.

Operations that time out are *unknown*, never counted as failed. The summary and the
findings are computed by :mod:`.analysis`.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from etcdlab.etcd.transport import Member, member
from etcdlab.params import Param
from etcdlab.questions.common import run_together
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q02_conflicts import SPEC
from etcdlab.questions.q02_conflicts.analysis import ASKED, summarize
from etcdlab.questions.runner import Context, Experiment

KEY_PREFIX = "/etcdlab/conflicts/"


def run(ctx: Context) -> None:
    """Both strategies on a fresh key each, same workers and increments."""
    params = ctx.params
    stamp = f"{time.time_ns()}"
    with ctx.phase("conflicts: naive get+put", 1) as advance:
        ctx.samples["naive"] = race(ctx, f"{KEY_PREFIX}{stamp}/naive", naive_increment,
                                    "naive")
        advance()
    with ctx.phase("conflicts: compare-and-swap", 1) as advance:
        ctx.samples["cas"] = race(ctx, f"{KEY_PREFIX}{stamp}/cas", cas_increment, "cas")
        advance()
    ctx.log(
        f"naive: {ctx.samples['naive']['acknowledged']} acknowledged, final "
        f"{ctx.samples['naive']['final_value']}; cas: final {ctx.samples['cas']['final_value']}"
        f" after {ctx.samples['cas']['retries']} retries ({params['workers']} workers)"
    )


def race(ctx: Context, key: str, increment, label: str) -> dict[str, Any]:
    """Run the workers concurrently from one start signal; collect their outcomes.

    Every call is recorded in ``conflicts.LABEL.history.jsonl`` (process = worker), which
    the runner checks for linearizability: lost updates are the application's
    read-modify-write, not etcd breaking linearizability, and the verdict shows it."""
    cluster, params = ctx.cluster, ctx.params
    workers, increments = params["workers"], params["increments"]
    history = ctx.history(label)
    clients = [member(cluster, cluster.names[i % len(cluster.names)],
                      params["op_timeout_s"]).record_into(history, i)
               for i in range(workers)]
    clients[0].put(key, "0")
    outcomes, elapsed = run_together(
        workers, lambda index: increment(clients[index], key, increments))
    value = clients[0].get(key)["value"]
    for client in clients:
        client.close()
    writes = sorted((w for o in outcomes for w in o["writes"]), key=lambda w: w[0])
    return {
        "acknowledged": sum(o["acknowledged"] for o in outcomes),
        "unknown": sum(o["unknown"] for o in outcomes),
        "retries": sum(o["retries"] for o in outcomes),
        "final_value": int(value),
        "elapsed_s": round(elapsed, 6),
        "values": [w[0] for w in writes],
        "revisions": [w[1] for w in writes],
    }


def naive_increment(client: Member, key: str, times: int) -> dict[str, Any]:
    """Read, add one, write back: no check that nobody wrote in between."""
    outcome = {"acknowledged": 0, "unknown": 0, "retries": 0, "writes": []}
    for _ in range(times):
        try:
            value = client.get(key)["value"]
            new = int(value) + 1
            revision = client.put(key, str(new))
        except grpc.RpcError:
            outcome["unknown"] += 1  # the put may or may not have been applied
            continue
        outcome["acknowledged"] += 1
        outcome["writes"].append((new, revision))
    return outcome


def cas_increment(client: Member, key: str, times: int) -> dict[str, Any]:
    """Read value and mod_revision; write value + 1 only if mod_revision is unchanged."""
    outcome = {"acknowledged": 0, "unknown": 0, "retries": 0, "writes": []}
    for _ in range(times):
        while True:
            try:
                answer = client.get(key)
                value, mod_revision = answer["value"], answer["mod_revision"]
                new = int(value) + 1
                succeeded, revision = client.put_if_unchanged(key, str(new), mod_revision)
            except grpc.RpcError:
                outcome["unknown"] += 1
                break
            if succeeded:
                outcome["acknowledged"] += 1
                outcome["writes"].append((new, revision))
                break
            outcome["retries"] += 1
    return outcome


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("workers", FULL_RUN["workers"], "concurrent workers incrementing the key", minimum=1,
              maximum=256),
        Param("increments", FULL_RUN["increments"], "increments per worker", minimum=1),
        Param("op_timeout_s", 5.0, "timeout of one etcd request", unit="s", above=0),
    ),
    quick={"increments": 50},
    run=run,
    summarize=summarize,
)
