"""``invoke bench``: what the lab itself costs on this machine, beside a floor.

The floor is the seed's method: ``docker run`` of bare etcd containers, etcd as the
command, no roles, no TLS, no chrony; it is timed from the first ``create`` to the moment
every member names the same leader, for each size, and each step is shown as a multiple
of the floor of as many members. The lab's own steps are timed on a temporary lab of
their own (``etcdlab-bench`` by default, never the user's): a cold provision (containers
created from the node image, configure phase), a re-run with no change, and for the first
size the quick lab (every experiment with ``--quick``); the growth with the number of
members is the cold and re-run time of each size over that of the smallest.

This module holds the floor and the pure arithmetic (rows, ratios, the growth goal); the
steps that need the CLI's provisioning and report are run by :func:`etcdlab.cli.bench`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import grpc
from etcd3 import etcdrpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import open_channel
from etcdlab.lab.config import LabConfig
from etcdlab.lab.docker_cluster import LAB_LABEL, NODE_LABEL, DockerLab

Say = Callable[[str], None]

BENCH_LAB = {"network": "etcdlab-bench", "subnet": "172.27.0.0/16", "prefix": "bench"}
"""The temporary lab the bench provisions and destroys (flags change it)."""

SIZES = (3, 5, 9)
GROWTH_GOAL = 1.5
"""The largest lab's cold provision and re-run within this factor of the smallest's."""

FLOOR_PREFIX = "floor"
FLOOR_TIMEOUT_S = 60.0
FLOOR_POLL_S = 0.02
ETCD_BINARY = "/usr/local/bin/etcd"
"""Where the etcd role installs the binary (``etcd_bin_dir``), in the node image too."""


@dataclass(frozen=True)
class Step:
    """One timed step of the bench."""

    step: str  # "floor", "cold", "rerun" or "quick-lab"
    nodes: int
    seconds: float | None
    outcome: str = "ok"  # ok, failed
    detail: str = ""


@dataclass
class Bench:
    """Everything one bench run measured, with the machine it ran on."""

    cpus: int
    started: str
    etcd_version: str
    image: str
    steps: list[Step] = field(default_factory=list)

    def seconds(self, step: str, nodes: int) -> float | None:
        """The time of ``step`` for ``nodes`` members when it ran and succeeded."""
        for one in self.steps:
            if one.step == step and one.nodes == nodes and one.outcome == "ok":
                return one.seconds
        return None

    def floor(self, nodes: int) -> float | None:
        """The floor's time for ``nodes`` members, when it ran and succeeded."""
        return self.seconds("floor", nodes)

    def as_dict(self) -> dict[str, Any]:
        """The JSON record of the run (``bench.json``)."""
        return {"cpus": self.cpus, "started": self.started, "etcd_version": self.etcd_version,
                "image": self.image, "steps": [asdict(s) for s in self.steps],
                "growth": growth(self), "growth_goal": GROWTH_GOAL}


LABELS = {"image": "node image built (first use)",
          "floor": "docker run of bare etcd (the floor)", "cold": "cold provision",
          "rerun": "re-run (no change)", "quick-lab": "quick lab (experiments)"}


def rows(bench: Bench) -> list[tuple[str, str, str, str]]:
    """(step, members, seconds, × floor) per step, in run order: the ratio is to the floor
    of as many members; a failed step shows its outcome instead of a time, and no ratio is
    made without a floor."""
    table = []
    for one in bench.steps:
        floor = bench.floor(one.nodes)
        if one.outcome != "ok" or one.seconds is None:
            table.append((LABELS.get(one.step, one.step), str(one.nodes), one.outcome, ""))
            continue
        ratio = f"{one.seconds / floor:.1f}×" if floor else ""
        table.append((LABELS.get(one.step, one.step), str(one.nodes), f"{one.seconds:.1f}",
                      ratio))
    return table


def growth(bench: Bench) -> dict[str, Any]:
    """Cold provision and re-run of the largest size over the smallest, against the goal.

    ``{"smallest", "largest", "cold", "rerun", "met"}``: the factors are None when either
    size's step did not succeed, and ``met`` is None when nothing can be said.
    """
    sizes = sorted({s.nodes for s in bench.steps if s.step in ("cold", "rerun")})
    if len(sizes) < 2:
        return {"smallest": sizes[0] if sizes else None, "largest": None, "cold": None,
                "rerun": None, "met": None}
    small, large = sizes[0], sizes[-1]
    factors: dict[str, float | None] = {}
    for step in ("cold", "rerun"):
        base, top = bench.seconds(step, small), bench.seconds(step, large)
        factors[step] = round(top / base, 2) if base and top is not None else None
    known = [f for f in factors.values() if f is not None]
    met = None if len(known) < 2 else all(f <= GROWTH_GOAL for f in known)
    return {"smallest": small, "largest": large, **factors, "met": met}


def growth_line(bench: Bench) -> str:
    """One sentence on the growth, from :func:`growth`."""
    grown = growth(bench)
    if grown["largest"] is None:
        return "growth with the lab: one size only, nothing to compare"
    parts = [f"{name} {grown[step]:.2f}×" if grown[step] is not None else f"{name} not measured"
             for step, name in (("cold", "cold provision"), ("rerun", "re-run"))]
    verdict = {True: "met", False: "not met", None: "cannot be told"}[grown["met"]]
    return (f"{grown['largest']} members against {grown['smallest']}: {', '.join(parts)} "
            f"(goal ≤ {GROWTH_GOAL}×: {verdict})")


def parse_sizes(text: str, maximum: int) -> tuple[int, ...]:
    """``"3,5,9"`` → (3, 5, 9): distinct member counts in 1..``maximum``, ascending."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= maximum:
            raise LabError(f"--sizes takes member counts from 1 to {maximum} separated by "
                           f"commas (like 3,5,9), not {text!r}")
        sizes.append(int(part))
    return tuple(sorted(set(sizes)))


def bench_config(config: LabConfig, nodes: int, network: str | None = None,
                 subnet: str | None = None, prefix: str | None = None) -> LabConfig:
    """The temporary lab's settings: the user's, on the bench's own network and names."""
    return config.with_changes(nodes=nodes, network=network or BENCH_LAB["network"],
                               subnet=subnet or BENCH_LAB["subnet"],
                               prefix=prefix or BENCH_LAB["prefix"], inventory="")


def floor_seconds(config: LabConfig, image: str, say: Say,
                  timeout: float = FLOOR_TIMEOUT_S) -> float:
    """``docker run`` of ``config.nodes`` bare etcd containers on the lab network, timed
    until every member names the same leader; the containers are removed whatever happens
    (they carry the lab's label, so ``invoke destroy`` removes one a kill left)."""
    lab = DockerLab(config)
    lab.ensure_network(say)
    api = lab.client.api
    ips = {f"{FLOOR_PREFIX}{i}-{config.prefix}": ip
           for i, ip in enumerate(config.node_ips.values(), start=1)}
    initial = ",".join(f"{name}=http://{ip}:2380" for name, ip in ips.items())
    started = time.monotonic()
    try:
        for name, ip in ips.items():
            api.create_container(
                image, name=name, hostname=name, detach=True,
                entrypoint=[ETCD_BINARY],
                command=["--name", name, "--data-dir", "/tmp/floor",
                         "--listen-peer-urls", f"http://{ip}:2380",
                         "--initial-advertise-peer-urls", f"http://{ip}:2380",
                         "--listen-client-urls", f"http://{ip}:2379",
                         "--advertise-client-urls", f"http://{ip}:2379",
                         "--initial-cluster", initial, "--initial-cluster-token", "floor",
                         "--initial-cluster-state", "new", "--log-level", "error"],
                labels={LAB_LABEL: config.network, NODE_LABEL: name},
                host_config=api.create_host_config(network_mode=config.network),
                networking_config=api.create_networking_config(
                    {config.network: api.create_endpoint_config(ipv4_address=ip)}))
            api.start(name)
        _wait_one_leader(list(ips.values()), started + timeout)
        return time.monotonic() - started
    except docker.errors.APIError as exc:
        raise LabError(f"the floor's containers could not start: {exc.explanation or exc}"
                       ) from None
    finally:
        for name in ips:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(name, force=True)


def _wait_one_leader(ips: Sequence[str], deadline: float) -> None:
    channels = {ip: open_channel(f"{ip}:2379", "") for ip in ips}
    try:
        stubs = {ip: etcdrpc.MaintenanceStub(channel) for ip, channel in channels.items()}
        while time.monotonic() < deadline:
            leaders = set()
            for stub in stubs.values():
                try:
                    leaders.add(stub.Status(etcdrpc.StatusRequest(), timeout=0.2).leader)
                except grpc.RpcError:
                    leaders.add(0)
            if len(leaders) == 1 and 0 not in leaders:
                return
            time.sleep(FLOOR_POLL_S)
    finally:
        for channel in channels.values():
            channel.close()
    raise LabError(f"the floor's etcd containers had no leader within {FLOOR_TIMEOUT_S:.0f} s")


def new_bench(config: LabConfig, image: str) -> Bench:
    """An empty record for this machine and these settings."""
    return Bench(cpus=os.cpu_count() or 0,
                 started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                 etcd_version=config.etcd_version, image=image)


def save(bench: Bench, path: Path) -> Path:
    """Write ``bench.json`` (atomically: a kill leaves the previous one or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(bench.as_dict(), indent=2, sort_keys=True) + "\n")
    partial.replace(path)
    return path
