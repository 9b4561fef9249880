"""Talking to a running lab: endpoints, leader, health, chrony state (and an etcd3 client
for the integration tests)."""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import etcd3
import etcd3.etcdrpc as etcdrpc
import grpc

from etcdlab.errors import LabError
from etcdlab.etcd.transport import (
    CLIENT_CA_FILE,
    LAB_CERT,
    ROOT_CERT,
    TLS_ENV,
    member,
    open_channel,
)
from etcdlab.lab.config import LabConfig
from etcdlab.lab.docker_cluster import DockerLab
from etcdlab.lab.nodes import DockerNodes, nodes_for
from etcdlab.polling import poll_until

CLIENT_PORT = 2379
@dataclass(frozen=True)
class ChronyState:
    """What ``chronyc`` says on one node."""

    role: str  # "server" (local stratum) or "client"
    synced: bool
    source: str  # the selected source, or "" when none
    stratum: int | None
    offset_ms: float | None  # last offset: positive means the local clock was ahead


@dataclass(frozen=True)
class NodeStatus:
    """One node as ``invoke status`` shows it."""

    name: str
    ip: str
    container: str
    healthy: bool
    etcd_version: str
    member_id: str
    is_leader: bool
    leader_id: str
    raft_term: int | None
    raft_index: int | None
    db_size: int | None
    error: str
    chrony_role: str
    chrony_synced: bool
    chrony_source: str
    chrony_stratum: int | None
    chrony_offset_ms: float | None

    def as_dict(self) -> dict:
        """A JSON-ready dict (``invoke status --json``)."""
        return asdict(self)


class Cluster:
    """A provisioned lab: its nodes, their etcd clients and their state.

    ``lab`` is the backend that reaches the nodes (:mod:`etcdlab.lab.nodes`): containers
    through Docker, or existing hosts over SSH. With TLS on, every client presents the
    lab's client certificate and checks the members' against the lab's CA.
    """

    def __init__(self, config: LabConfig, lab: Any = None) -> None:
        self.config = config
        if lab is None:
            lab = nodes_for(config)
        elif isinstance(lab, DockerLab):
            lab = DockerNodes(config, lab)
        self.lab = lab
        self.ips: dict[str, str] = dict(lab.ips)
        self.tls = config.tls_enabled

    @property
    def names(self) -> list[str]:
        """Node names in order."""
        return list(self.lab.names)

    def endpoint(self, name: str) -> str:
        """``ip:port`` of a member's client URL."""
        return f"{self.ips[name]}:{CLIENT_PORT}"

    def url(self, name: str) -> str:
        """The member's client URL, http or https."""
        return f"{'https' if self.tls else 'http'}://{self.endpoint(name)}"

    def tls_files(self, cert: str = LAB_CERT) -> tuple[str, str, str]:
        """(client CA certificate, certificate, key) of a TLS lab: the lab user's, or
        root's with ``ROOT_CERT``."""
        pki = self.config.pki_path
        files = (pki / CLIENT_CA_FILE, pki / f"{cert}.crt", pki / f"{cert}.key")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise LabError(f"TLS is on but {', '.join(missing)} is missing: run `invoke provision`")
        return tuple(str(f) for f in files)  # type: ignore[return-value]

    @property
    def tls_dir(self) -> str | None:
        """The PKI folder of a TLS lab (checked to hold both client certificates), else
        None."""
        if not self.tls:
            return None
        self.tls_files()
        self.tls_files(ROOT_CERT)
        return str(self.config.pki_path)

    def channel(self, name: str) -> grpc.Channel:
        """A gRPC channel to one member (the caller closes it)."""
        return open_channel(self.endpoint(name), self.tls_dir or "")

    def etcd3_tls(self, cert: str = LAB_CERT) -> dict[str, str]:
        """Keyword arguments that make an ``etcd3.client`` use the lab's TLS files."""
        if not self.tls:
            return {}
        ca, cert, key = self.tls_files(cert)
        return {"ca_cert": ca, "cert_cert": cert, "cert_key": key}

    @contextmanager
    def tls_environment(self) -> Iterator[None]:
        """Within: ``$ETCDLAB_TLS_DIR`` names this lab's PKI (TLS labs only), for code that
        opens its own channels and for the processes it starts."""
        if not self.tls:
            yield
            return
        previous = os.environ.get(TLS_ENV)
        os.environ[TLS_ENV] = str(self.tls_dir)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(TLS_ENV, None)
            else:
                os.environ[TLS_ENV] = previous

    @contextmanager
    def client(self, name: str, timeout: float = 5.0) -> Iterator[etcd3.Etcd3Client]:
        """A python3-etcd3 client bound to one member, as the lab user (closed afterwards).

        Not for experiments: they reach etcd through :mod:`etcdlab.etcd.transport`. This
        one is a second, independent client for the integration tests' checks of a lab.
        """
        client = etcd3.client(host=self.ips[name], port=CLIENT_PORT, timeout=timeout,
                              **self.etcd3_tls())
        try:
            yield client
        finally:
            client.close()

    def raw_status(self, name: str, timeout: float = 2.0) -> etcdrpc.StatusResponse:
        """The member's own Maintenance.Status answer, through the transport (raises
        grpc.RpcError when down)."""
        with member(self, name, timeout) as etcd:
            return etcd.status(timeout)

    def healthy(self, name: str, timeout: float = 2.0) -> bool:
        """etcd's own ``/health`` verdict for a member (needs a leader and quorum)."""
        context = None
        if self.tls:
            ca, cert, key = self.tls_files()
            context = ssl.create_default_context(cafile=ca)
            context.load_cert_chain(cert, key)
        try:
            with urllib.request.urlopen(f"{self.url(name)}/health", timeout=timeout,
                                        context=context) as response:
                return json.loads(response.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def leader(self, timeout: float = 2.0) -> str | None:
        """The name of the member a majority reports as leader, or None."""
        votes: dict[int, int] = {}
        member_names: dict[int, str] = {}
        for name in self.names:
            try:
                status = self.raw_status(name, timeout)
            except grpc.RpcError:
                continue
            member_names[status.header.member_id] = name
            if status.leader:
                votes[status.leader] = votes.get(status.leader, 0) + 1
        for leader_id, count in votes.items():
            if count > len(self.names) // 2:
                return member_names.get(leader_id)
        return None

    def wait_leader(self, timeout: float = 30.0, exclude: str | None = None,
                    poll: float = 0.05) -> str:
        """The leader a majority names (other than ``exclude``), polled until ``timeout``."""

        def other_leader() -> str | None:
            leader = self.leader(timeout=0.5)
            return leader if leader != exclude else None

        found = poll_until(other_leader, timeout, every=poll)
        if found:
            return found
        other = f" other than {exclude}" if exclude else ""
        raise LabError(f"no leader{other} within {timeout:.0f} s")

    def wait_healthy(self, timeout: float = 60.0, poll: float = 0.1) -> None:
        """Block until every member is healthy and there is one leader (asked every
        ``poll`` seconds: a trial that waits here starts as soon as the lab is whole)."""
        if poll_until(lambda: all(self.healthy(n) for n in self.names) and self.leader(),
                      timeout, every=poll):
            return
        raise LabError(f"cluster not healthy after {timeout:.0f} s: see `invoke status`")

    def status(self) -> list[NodeStatus]:
        """The state of every node, queried in parallel (node states asked once)."""
        states = self.lab.states()
        with ThreadPoolExecutor(max_workers=max(1, len(self.names))) as pool:
            return list(pool.map(lambda n: self.node_status(n, states), self.names))

    def node_status(self, name: str, states: dict[str, str] | None = None) -> NodeStatus:
        """etcd and chrony state of one node; unreachable parts are reported, not raised.

        ``states``: every node's container/host state when the caller already has them.
        """
        container_state = (states if states is not None else self.lab.states()).get(
            name, "missing")
        error = ""
        fields: dict = {
            "etcd_version": "", "member_id": "", "is_leader": False, "leader_id": "",
            "raft_term": None, "raft_index": None, "db_size": None,
        }
        if container_state == "running":
            try:
                status = self.raw_status(name)
                fields.update(
                    etcd_version=status.version,
                    member_id=f"{status.header.member_id:x}",
                    is_leader=status.leader == status.header.member_id,
                    leader_id=f"{status.leader:x}" if status.leader else "",
                    raft_term=status.raftTerm,
                    raft_index=status.raftIndex,
                    db_size=status.dbSize,
                )
                # Older protos (python3-etcd3's) have no `errors` field.
                error = "; ".join(getattr(status, "errors", []) or [])
            except grpc.RpcError as exc:
                error = f"etcd unreachable: {exc.code().name}"
            chrony = self.chrony_state(name)
        else:
            error = f"container {container_state}"
            chrony = ChronyState("", False, "", None, None)
        return NodeStatus(
            name=name,
            ip=self.ips[name],
            container=container_state,
            healthy=container_state == "running" and self.healthy(name),
            error=error,
            chrony_role=chrony.role,
            chrony_synced=chrony.synced,
            chrony_source=chrony.source,
            chrony_stratum=chrony.stratum,
            chrony_offset_ms=chrony.offset_ms,
            **fields,
        )

    def chrony_state(self, name: str) -> ChronyState:
        """Parse ``chronyc -c tracking`` and ``chronyc -c sources`` on a node."""
        try:
            code, tracking = self.lab.exec(name, ["chronyc", "-n", "-c", "tracking"], check=False)
            _, sources = self.lab.exec(name, ["chronyc", "-n", "-c", "sources"], check=False)
        except LabError:
            code = -1
        if code != 0:
            return ChronyState("", False, "", None, None)
        return parse_chrony(tracking, sources)


def parse_chrony(tracking_csv: str, sources_csv: str) -> ChronyState:
    """Turn chronyc's CSV output into a ChronyState (pure, unit-tested)."""
    row = tracking_csv.strip().splitlines()[0].split(",") if tracking_csv.strip() else []
    if len(row) < 14:
        return ChronyState("", False, "", None, None)
    ref_id, stratum, last_offset = row[0], int(row[2]), float(row[5])
    selected = ""
    for line in sources_csv.strip().splitlines():
        cols = line.split(",")
        if len(cols) > 2 and cols[1] == "*":
            selected = cols[2]
    if ref_id.upper() == "7F7F0101":  # chrony's LOCAL reference: serving its own clock
        return ChronyState("server", True, "local", stratum, 0.0)
    synced = bool(selected) and row[13].strip() == "Normal"
    return ChronyState("client", synced, selected, stratum if synced else None,
                       round(last_offset * 1000.0, 3))
