"""Q9 ``faulty-clock``: can the nodes find a faulty clock from the messages they exchange?

An agent runs in every node (:mod:`.agent`, the node's own ``python3``) and
probes every other agent over UDP once per round, recording NTP's four timestamps. One
agent's clock is given an offset (default +800 ms), or a drift (default 500 ms/min),
with libfaketime; the others keep the real clock, which every container shares with this
machine. Each agent also reads its clock and the kernel's real clock at one moment (a
system call past libfaketime) at its start and end, so a faked clock's true offset is
measured rather than modelled from when it started.

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
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from etcdlab.errors import LabError
from etcdlab.faults import NODE_AGENT_MARK
from etcdlab.figures import clocks
from etcdlab.params import Param
from etcdlab.questions.findings import asked_values
from etcdlab.questions.q09_faulty_clock import SPEC
from etcdlab.questions.q09_faulty_clock import agent as clock_agent
from etcdlab.questions.q09_faulty_clock.analysis import (
    ASKED,
    RUNS,
    observer_verdicts,
    summarize,
    summarize_run,
    to_real,
    true_offset,
)
from etcdlab.questions.runner import Context, Experiment

__all__ = ["EXPERIMENT", "RUNS", "observer_verdicts", "plan_agents", "summarize",
           "summarize_run", "to_real", "true_offset"]

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
        # The ground truth: the agent read its clock and the real one at one moment at its
        # start and end ("clock_at_start"/"clock_at_end"). "clock_started_at" is the older
        # model (first reading less the offset), kept for tools that read it; it ignores
        # the start-up while a drifting clock already ran fast.
        return {**agent, "spawned_at": spawned, "loaded_faked": record["loaded"],
                "clock_started_at": record["loaded"] - agent["offset_s"],
                "clock_at_start": record.get("clock_at_start"),
                "clock_at_end": record.get("clock_at_end"),
                "exchanges": record["exchanges"]}

    started = time.time()
    with ThreadPoolExecutor(max_workers=len(agents)) as pool:
        results = dict(zip(agents, pool.map(one, agents), strict=True))
    return {"started_at": started, "agents": results}


# What the question asks (ASKED, in its analysis) is what a full run does: the defaults.
FULL_RUN = asked_values(ASKED)

EXPERIMENT = Experiment(
    spec=SPEC,
    parameters=(
        Param("offset_ms", 800.0, "offset given to one agent's clock", unit="ms"),
        Param("drift_ms_per_min", FULL_RUN["drift_ms_per_min"],
              "drift given to another agent's clock", unit="ms/min"),
        Param("threshold_ms", 500.0, "a clock further than this from the majority is faulty",
              unit="ms", above=0),
        Param("rounds", FULL_RUN["rounds"], "probe rounds", minimum=1),
        Param("interval_s", 2.0, "time between rounds", unit="s", above=0),
        Param("probe_timeout_s", 0.5, "timeout of one probe", unit="s", above=0),
        Param("port", 7931, "UDP port of the agents", minimum=1024, maximum=65535),
    ),
    # A quick run's seconds are too short for 500 ms/min to cross 500 ms: quick drifts
    # faster. Rounds every 0.5 s, and 8000 ms/min crosses the 500 ms threshold after
    # 3.75 s, well inside the 8 s of 16 rounds (flagged after 4.1 s here, 2026-12-06).
    quick={"rounds": 16, "interval_s": 0.5, "drift_ms_per_min": 8000.0},
    run=run,
    summarize=summarize,
)
