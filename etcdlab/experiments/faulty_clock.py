"""Q9 ``faulty-clock``: can the nodes find a faulty clock from the messages they exchange?

An agent runs in every node (:mod:`etcdlab.clock_agent`, the node's own ``python3``) and
probes every other agent over UDP once per round, recording NTP's four timestamps. One
agent's clock is given an offset (default +800 ms), or a drift (default 500 ms/min),
with libfaketime; the others keep the real clock, which every container shares with this
machine — so the true offset of every clock at every moment is known exactly.

From each agent's exchanges of a round the analysis (pure, on the saved timestamps, as
the agent itself would decide) estimates each peer's offset with an error bound of half
the round trip, intersects the intervals with Marzullo's algorithm, and calls a clock
faulty when its interval lies more than ``threshold_ms`` from the interval a majority
agrees on. The cluster flags a clock in a round when more than half of the agents do.

A majority of correct clocks needs 2f + 1 agents for f faulty ones: the three-node runs
inject one faulty clock each (``offset``, then ``drift``); the ``two_faulty`` run injects
both at once among five agents — one per node, plus extra agents on the first nodes when
the lab has fewer than five.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from etcdlab import clock_agent, clocks, stats
from etcdlab.errors import LabError
from etcdlab.experiments.base import Context, Experiment
from etcdlab.faults import NODE_AGENT_MARK
from etcdlab.params import Param

RUNS = ("offset", "drift", "two_faulty")
AGENT_SOURCE = Path(clock_agent.__file__).read_text()


def run(ctx: Context) -> None:
    """The three runs, one after the other."""
    cluster, params = ctx.cluster, ctx.params
    if len(cluster.names) < 3:
        raise LabError("faulty-clock needs at least 3 nodes (2f + 1 for one faulty clock)")
    ctx.samples["runs"] = {}
    for run_name in RUNS:
        with ctx.phase(f"faulty-clock: {run_name}", 1) as advance:
            agents = plan_agents(cluster.names, run_name, params)
            ctx.samples["runs"][run_name] = run_agents(ctx, agents)
            advance()
        summary = summarize_run(ctx.samples["runs"][run_name], params)
        ctx.log(f"{run_name}: injected {summary['injected_faulty']}, flagged "
                f"{summary['flagged']}, detection {summary['detection_s']}, "
                f"false positives {summary['false_positives']}")


def plan_agents(names: list[str], run_name: str, params: Mapping[str, Any]) -> dict[str, dict]:
    """Which agents run where, and which clock each gets, for one run."""
    count = 5 if run_name == "two_faulty" else min(len(names), 3)
    agents: dict[str, dict[str, Any]] = {}
    for index in range(count):
        node = names[index % len(names)]
        name = node if index < len(names) else f"{node}-b"
        agents[name] = {"node": node, "port": params["port"] + index // len(names),
                        "offset_s": 0.0, "rate": 1.0}
    offset_faulty, drift_faulty = names[1], names[2]
    if run_name in ("offset", "two_faulty"):
        agents[offset_faulty]["offset_s"] = params["offset_ms"] / 1000.0
    if run_name in ("drift", "two_faulty"):
        agents[drift_faulty]["rate"] = clocks.drift_rate(params["drift_ms_per_min"])
    return agents


def run_agents(ctx: Context, agents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Start every agent at once (in its node, its clock faked or not) and collect them."""
    cluster, params = ctx.cluster, ctx.params
    address = {name: f"{cluster.ips[a['node']]}:{a['port']}" for name, a in agents.items()}

    def one(name: str) -> dict[str, Any]:
        agent = agents[name]
        peers = {other: address[other] for other in agents if other != name}
        argv = ["python3", "-c", AGENT_SOURCE, NODE_AGENT_MARK, "--name", name,
                "--bind", address[name], "--peers", json.dumps(peers),
                "--rounds", str(params["rounds"]), "--interval", str(params["interval_s"]),
                "--timeout", str(params["probe_timeout_s"])]
        spawned = time.time()
        _code, out = ctx.faults.exec_faked(agent["node"], argv, agent["offset_s"], agent["rate"])
        record = json.loads(out)
        # libfaketime starts the faked clock with the process: its first reading, less the
        # offset, is when that was in real time (to within Python's start-up, ~ms).
        return {**agent, "spawned_at": spawned, "loaded_faked": record["loaded"],
                "clock_started_at": record["loaded"] - agent["offset_s"],
                "exchanges": record["exchanges"]}

    started = time.time()
    with ThreadPoolExecutor(max_workers=len(agents)) as pool:
        results = dict(zip(agents, pool.map(one, agents), strict=True))
    return {"started_at": started, "agents": results}


def true_offset(agent: Mapping[str, Any], real: float) -> float:
    """How far an agent's clock was ahead of the real clock at real time ``real``."""
    return clocks.faked_offset(agent["offset_s"], agent["rate"], agent["clock_started_at"], real)


def to_real(agent: Mapping[str, Any], faked: float) -> float:
    """The real time at which an agent's clock read ``faked``."""
    return clocks.real_time(faked, agent["offset_s"], agent["rate"], agent["clock_started_at"])


def observer_verdicts(run: Mapping[str, Any], threshold_s: float) -> list[dict[str, Any]]:
    """Every agent's verdict on every clock, round by round, from its exchanges alone."""
    agents = run["agents"]
    population = len(agents)
    verdicts = []
    for observer, agent in agents.items():
        by_round: dict[int, list[Mapping[str, Any]]] = {}
        for exchange in agent["exchanges"]:
            by_round.setdefault(exchange["round"], []).append(exchange)
        for round_index, exchanges in sorted(by_round.items()):
            estimates = {observer: (0.0, 0.0)}
            lost = 0
            for exchange in exchanges:
                if exchange.get("lost"):
                    lost += 1
                    continue
                estimate = clocks.ntp_offset(exchange["t1"], exchange["t2"], exchange["t3"],
                                             exchange["t4"])
                estimates[exchange["peer"]] = (estimate.low, estimate.high)
            verdict = clocks.classify_clocks(estimates, threshold_s, population)
            real = to_real(agent, min(e["t1"] for e in exchanges))
            errors = {}
            if verdict["decided"]:
                for subject, deviation in verdict["deviation"].items():
                    errors[subject] = deviation - true_offset(agents[subject], real)
            verdicts.append({"observer": observer, "round": round_index, "real": real,
                             "decided": verdict["decided"], "faulty": verdict["faulty"],
                             "deviation": verdict["deviation"], "errors": errors, "lost": lost})
    return verdicts


def summarize_run(run: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Flagged clocks, detection times, false positives and estimate errors of one run."""
    agents = run["agents"]
    threshold = params["threshold_ms"] / 1000.0
    injected = sorted(n for n, a in agents.items() if a["offset_s"] != 0.0 or a["rate"] != 1.0)
    correct = [n for n in agents if n not in injected]
    verdicts = observer_verdicts(run, threshold)
    majority = len(agents) // 2 + 1
    rounds: dict[int, list[dict[str, Any]]] = {}
    for verdict in verdicts:
        rounds.setdefault(verdict["round"], []).append(verdict)
    cluster_flags: dict[int, list[str]] = {}
    round_time: dict[int, float] = {}
    for index, views in sorted(rounds.items()):
        votes: dict[str, int] = {}
        for view in views:
            for subject in view["faulty"]:
                votes[subject] = votes.get(subject, 0) + 1
        cluster_flags[index] = sorted(s for s, count in votes.items() if count >= majority)
        round_time[index] = min(v["real"] for v in views if v["observer"] in correct)
    last = max(cluster_flags) if cluster_flags else None
    detection = {}
    for subject in injected:
        first = next((i for i in sorted(cluster_flags) if subject in cluster_flags[i]), None)
        detection[subject] = None if first is None else round_time[first] - run["started_at"]
    errors = [abs(e) for v in verdicts for e in v["errors"].values()]
    round_trips = [clocks.ntp_offset(e["t1"], e["t2"], e["t3"], e["t4"]).delay
                   for agent in agents.values() for e in agent["exchanges"] if not e.get("lost")]
    final_estimates = {}
    if last is not None:
        for subject in agents:
            seen = [v["deviation"][subject] for v in rounds[last]
                    if v["decided"] and subject in v["deviation"]]
            final_estimates[subject] = {
                "estimated_ms": statistics.median(seen) * 1e3 if seen else None,
                "injected_ms": true_offset(agents[subject], round_time[last]) * 1e3,
            }
    return {
        "agents": sorted(agents),
        "injected_faulty": injected,
        "flagged": cluster_flags.get(last, []) if last is not None else [],
        "false_positives": sum(1 for flags in cluster_flags.values()
                               for subject in flags if subject in correct),
        "observer_false_positives": sum(1 for v in verdicts for subject in v["faulty"]
                                        if subject in correct),
        "detection_s": detection,
        "max_estimate_error_ms": max(errors) * 1e3 if errors else None,
        "median_estimate_error_ms": statistics.median(errors) * 1e3 if errors else None,
        "p99_estimate_error_ms": stats.percentile(errors, 99) * 1e3 if errors else None,
        "median_round_trip_ms": statistics.median(round_trips) * 1e3 if round_trips else None,
        "max_round_trip_ms": max(round_trips) * 1e3 if round_trips else None,
        "rounds": len(cluster_flags),
        "undecided_views": sum(1 for v in verdicts if not v["decided"]),
        "lost_probes": sum(v["lost"] for v in verdicts),
        "final_estimates": final_estimates,
        "exact": cluster_flags.get(last, []) == injected if last is not None else False,
    }


def summarize(samples: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Each run's figures, and the issue's top-level keys across the runs."""
    runs = {name: summarize_run(samples["runs"][name], params)
            for name in RUNS if name in samples.get("runs", {})}
    errors = [r["max_estimate_error_ms"] for r in runs.values()
              if r["max_estimate_error_ms"] is not None]
    return {
        **runs,
        "flagged": {name: r["flagged"] for name, r in runs.items()},
        "injected_faulty": {name: r["injected_faulty"] for name, r in runs.items()},
        "false_positives": sum(r["false_positives"] for r in runs.values()),
        "detection_s": {f"{name}:{agent}": seconds for name, r in runs.items()
                        for agent, seconds in r["detection_s"].items()},
        "max_estimate_error_ms": max(errors) if errors else None,
        "all_exact": bool(runs) and all(r["exact"] for r in runs.values()),
        "expected_drift_detection_s": params["threshold_ms"] / params["drift_ms_per_min"] * 60,
    }


EXPERIMENT = Experiment(
    name="faulty-clock",
    question=9,
    title="Detecting faulty clocks from node-to-node probes (Marzullo majority)",
    parameters=(
        Param("offset_ms", 800.0, "offset given to one agent's clock", unit="ms"),
        Param("drift_ms_per_min", 500.0, "drift given to another agent's clock",
              unit="ms/min"),
        Param("threshold_ms", 500.0, "a clock further than this from the majority is faulty",
              unit="ms", above=0),
        Param("rounds", 60, "probe rounds", minimum=1),
        Param("interval_s", 2.0, "time between rounds", unit="s", above=0),
        Param("probe_timeout_s", 0.5, "timeout of one probe", unit="s", above=0),
        Param("port", 7931, "UDP port of the agents", minimum=1024, maximum=65535),
    ),
    # 15 rounds of 1 s are too short for 500 ms/min to cross 500 ms: quick drifts faster.
    quick={"rounds": 15, "interval_s": 1.0, "drift_ms_per_min": 4000.0},
    run=run,
    summarize=summarize,
)
