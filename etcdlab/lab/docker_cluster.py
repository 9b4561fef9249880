"""The lab's Docker side: engine connection, network, node containers, base image.

Everything the lab creates carries the label ``io.etcdlab.lab=<network name>``, so that
``destroy`` removes exactly the lab's containers and network and nothing else: its nodes
(also labelled ``io.etcdlab.node=<name>``) and a node image builder that a killed run left
(``io.etcdlab.builder=<network name>``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from etcdlab.errors import LabError
from etcdlab.lab.config import LabConfig

LAB_LABEL = "io.etcdlab.lab"
NODE_LABEL = "io.etcdlab.node"
BUILDER_LABEL = "io.etcdlab.builder"
# Nodes created and started at once by one provision (Docker serialises what it must).
MAX_PARALLEL_CREATES = 9

Say = Callable[[str], None]


def connect() -> docker.DockerClient:
    """A client for the local Docker engine, or a LabError saying how to get one."""
    try:
        client = docker.from_env(version="auto", timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise LabError(
            "cannot reach a Docker engine "
            f"({_first_line(exc)}). Install Docker (Debian/Ubuntu: `apt-get install docker.io`) "
            "and start it (`systemctl start docker`, or `dockerd &` where there is no "
            "systemd); your user must be allowed to use /var/run/docker.sock."
        ) from None
    return client


@dataclass(frozen=True)
class NodeInfo:
    """A lab container as Docker sees it."""

    name: str
    ip: str
    status: str


@dataclass
class Created:
    """What one ``DockerLab.create`` call made, so that a failure can undo exactly that."""

    containers: list[str] = field(default_factory=list)
    network: bool = False


class DockerLab:
    """Create, inspect and remove one lab's network and containers."""

    def __init__(self, config: LabConfig, client: docker.DockerClient | None = None) -> None:
        self.config = config
        self.client = client or connect()
        self._in_flight: list[tuple[str, str, list[str]]] = []

    # -- inspection ---------------------------------------------------------------------
    def containers(self) -> list[Container]:
        """This lab's node containers (running or not), in node order."""
        found = self.client.containers.list(
            all=True, filters={"label": [self._label, NODE_LABEL]}
        )
        return sorted(found, key=lambda c: _node_number(c.labels.get(NODE_LABEL, c.name)))

    def node_images(self) -> dict[str, str]:
        """The image each node container was created from, by node name."""
        return {c.name: c.attrs["Config"]["Image"] for c in self.containers()}

    def nodes(self) -> list[NodeInfo]:
        """Name, address and Docker state of every lab container."""
        result = []
        for container in self.containers():
            nets = container.attrs["NetworkSettings"]["Networks"]
            ip = nets.get(self.config.network, {}).get("IPAddress", "")
            result.append(NodeInfo(container.name, ip, container.status))
        return result

    def container(self, name: str) -> Container:
        """One lab container by node name."""
        try:
            container = self.client.containers.get(name)
        except docker.errors.NotFound:
            raise LabError(f"no container {name}: run `invoke provision` first") from None
        if container.labels.get(LAB_LABEL) != self.config.network:
            raise LabError(f"container {name} is not part of this lab")
        return container

    def exec(self, name: str, command: list[str], check: bool = True) -> tuple[int, str]:
        """Run a command in a node; returns (exit code, combined output)."""
        code, output = self.exec_raw(name, command, demux=False)
        text = (output or b"").decode(errors="replace")
        if check and code != 0:
            raise LabError(f"{name}: `{' '.join(command)}` failed ({code}): {text.strip()}")
        return code, text

    def exec_raw(self, name: str, command: list[str], demux: bool,
                 environment: dict[str, str] | None = None) -> tuple[int, Any]:
        """``docker exec`` that remembers a command it stopped waiting for.

        An interrupt (Ctrl-C, SIGTERM) ends the wait, not the command: Docker keeps it
        running in the node. Such a command is remembered until :meth:`settle` has seen
        it end, so that a heal never races with what the interrupted run had started.
        """
        api = self.client.api
        exec_id = api.exec_create(self.container(name).id, command, stdout=True, stderr=True,
                                  environment=environment)["Id"]
        try:
            output = api.exec_start(exec_id, demux=demux)
        except BaseException:
            self._in_flight.append((name, exec_id, command))
            raise
        return api.exec_inspect(exec_id)["ExitCode"], output

    def settle(self, timeout: float = 30.0) -> list[str]:
        """Wait for the commands an interrupt left running in nodes; what was still running.

        Returns one line per command that had not ended within ``timeout``."""
        deadline = time.monotonic() + timeout
        late = []
        while self._in_flight:
            name, exec_id, command = self._in_flight[0]
            try:
                running = self.client.api.exec_inspect(exec_id).get("Running", False)
            except docker.errors.DockerException:
                running = False  # its container is gone: nothing left to wait for
            if running and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if running:
                late.append(f"{name}: `{' '.join(command)}` still running")
            self._in_flight.pop(0)
        return late

    # -- checks before creating anything -------------------------------------------------
    def preflight(self) -> None:
        """Refuse names and subnets that belong to something else, before creating."""
        cfg = self.config
        wanted = ipaddress.ip_network(cfg.subnet)
        for net in self.client.networks.list():
            labels = net.attrs.get("Labels") or {}
            ours = labels.get(LAB_LABEL) == cfg.network
            if net.name == cfg.network and not ours:
                raise LabError(
                    f"a Docker network named {cfg.network} exists and is not this lab's; "
                    "remove it or choose another name with --network / lab.network"
                )
            if ours:
                continue
            for pool in (net.attrs.get("IPAM") or {}).get("Config") or []:
                subnet = pool.get("Subnet")
                if subnet and _overlaps(wanted, subnet):
                    raise LabError(
                        f"subnet {cfg.subnet} overlaps Docker network {net.name} ({subnet}); "
                        "choose another with --subnet / lab.subnet"
                    )
        existing = [c.name for c in self.containers()]
        if existing and existing != cfg.node_names:
            raise LabError(
                f"the lab already has {len(existing)} node(s) ({', '.join(existing)}), not "
                f"{cfg.nodes}: etcd membership does not change by re-provisioning; run "
                "`invoke destroy` first"
            )
        for name in cfg.node_names:
            try:
                container = self.client.containers.get(name)
            except docker.errors.NotFound:
                continue
            if container.labels.get(LAB_LABEL) != cfg.network:
                raise LabError(
                    f"a container named {name} exists and is not this lab's; remove it or "
                    "choose another name prefix with --prefix / lab.prefix"
                )

    # -- creation -----------------------------------------------------------------------
    def create(self, image: str, say: Say) -> Created:
        """Create the network and any missing node; start stopped ones.

        On failure, whatever this call created is removed again before the error is raised.
        """
        self.preflight()
        created = Created()
        try:
            created.network = self.ensure_network(say)
            # The nodes at once: Docker creates and starts each in a few hundred ms, most
            # of it waiting, so a 9-node lab need not take three times a 3-node one.
            nodes = list(self.config.node_ips.items())
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CREATES, len(nodes) or 1)
                                    ) as pool:
                futures = {pool.submit(self._ensure_node, name, ip, image, say): name
                           for name, ip in nodes}
                failure: BaseException | None = None
                for future in futures:  # every one finishes, so the undo knows them all
                    try:
                        if future.result():
                            created.containers.append(futures[future])
                    except BaseException as exc:  # noqa: BLE001 - re-raised below
                        failure = failure or exc
            if failure is not None:
                raise failure
        except BaseException:
            self.undo(created, say)
            raise
        return created

    # -- the node image builder -----------------------------------------------------------
    @property
    def builder_name(self) -> str:
        """The lab's one node image builder container."""
        return f"etcdlab-builder-{self.config.network}"

    def start_builder(self, image: str) -> str:
        """Start a builder container from ``image`` (a leftover one is removed first).

        It sits on Docker's default bridge (its packages come from the network) and is
        labelled as the lab's, so that ``destroy`` finds it should a killed run leave it.
        """
        self.remove_builders()
        try:
            self.client.containers.run(
                image, ["sleep", "infinity"], name=self.builder_name,
                hostname="node-image-builder", init=True, detach=True,
                labels={LAB_LABEL: self.config.network, BUILDER_LABEL: self.config.network},
            )
        except docker.errors.APIError as exc:
            self.remove_builders()
            raise LabError(f"cannot start the builder container {self.builder_name}: "
                           f"{_explain(exc)}") from None
        return self.builder_name

    def commit_builder(self, image: str, labels: dict[str, str]) -> str:
        """Commit the builder as ``image`` with ``labels``; returns the image id.

        The builder's own labels would be inherited by every container of the image:
        they are blanked, so that a container counts as a lab's only by its own labels.
        """
        repository, tag = split_image(image)
        values = {LAB_LABEL: "", BUILDER_LABEL: "", **labels}
        change = "LABEL " + " ".join(f'{key}="{value}"' for key, value in values.items())
        try:
            done = self.client.api.commit(self.builder_name, repository=repository, tag=tag,
                                          changes=[change])
        except docker.errors.APIError as exc:
            raise LabError(f"cannot commit {self.builder_name} as {image}: "
                           f"{_explain(exc)}") from None
        return str(done.get("Id", ""))

    def remove_builders(self, say: Say | None = None) -> list[str]:
        """Remove the lab's builder containers (running or not); their names."""
        found = self.client.containers.list(
            all=True, filters={"label": f"{BUILDER_LABEL}={self.config.network}"})
        for container in found:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
            if say is not None:
                say(f"removed {container.name}")
        return [c.name for c in found]

    def undo(self, created: Created, say: Say) -> None:
        """Remove what one ``create`` call made (nothing that existed before it)."""
        self._remove(created.containers, remove_network=created.network, say=say)

    def network(self) -> Network | None:
        """The lab's network: exactly its name and its label (Docker's ``names`` filter
        matches substrings, so ``dist-sys-net2`` would otherwise pass for ``dist-sys-net``)."""
        for net in self.client.networks.list(filters={"label": self._label}):
            if net.name == self.config.network:
                return net
        return None

    @property
    def _label(self) -> str:
        return f"{LAB_LABEL}={self.config.network}"

    def ensure_network(self, say: Say) -> bool:
        """Create the lab's network unless it exists; whether it was created now."""
        cfg = self.config
        if self.network() is not None:
            return False
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=cfg.subnet, gateway=cfg.gateway)]
        )
        try:
            self.client.networks.create(
                cfg.network, driver="bridge", ipam=ipam, labels={LAB_LABEL: cfg.network}
            )
        except docker.errors.APIError as exc:
            raise LabError(f"cannot create network {cfg.network}: {_explain(exc)}") from None
        say(f"created network {cfg.network} ({cfg.subnet})")
        return True

    def _ensure_node(self, name: str, ip: str, image: str, say: Say) -> bool:
        api = self.client.api
        try:
            existing = self.client.containers.get(name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            if existing.status != "running":
                existing.start()
                say(f"started {name}")
            return False
        host_config = api.create_host_config(
            init=True,
            cap_add=["NET_ADMIN"],
            network_mode=self.config.network,
            restart_policy={"Name": "no"},
        )
        networking = api.create_networking_config(
            {self.config.network: api.create_endpoint_config(ipv4_address=ip)}
        )
        try:
            api.create_container(
                image,
                command=["sleep", "infinity"],
                name=name,
                hostname=name,
                labels={LAB_LABEL: self.config.network, NODE_LABEL: name},
                host_config=host_config,
                networking_config=networking,
                detach=True,
            )
            api.start(name)
        except docker.errors.APIError as exc:
            self._remove([name], remove_network=False, say=lambda _m: None)
            raise LabError(f"cannot start container {name}: {_explain(exc)}") from None
        say(f"created {name} ({ip}) from {image}")
        return True

    # -- removal ------------------------------------------------------------------------
    def destroy(self, say: Say) -> int:
        """Remove every container and the network labelled as this lab's. Idempotent.

        A container of someone else's attached to the lab network is named in a LabError
        before anything is removed (Docker would refuse to remove the network).
        """
        net = self.network()
        if net is not None:
            foreign = self._foreign_attached(net)
            if foreign:
                raise LabError(
                    f"container(s) {', '.join(foreign)} are attached to the lab network "
                    f"{net.name} and are not this lab's: nothing removed. Disconnect them "
                    f"(`docker network disconnect {net.name} {foreign[0]}`) and run "
                    "`invoke destroy` again"
                )
        names = [c.name for c in self.containers()]
        leftovers = self.remove_builders(say)
        self._remove(names, remove_network=True, say=say)
        return len(names) + len(leftovers)

    def _foreign_attached(self, net: Network) -> list[str]:
        net.reload()
        ours = {c.id for c in self.containers()}
        return sorted(endpoint.get("Name", cid[:12])
                      for cid, endpoint in (net.attrs.get("Containers") or {}).items()
                      if cid not in ours)

    def _remove(self, names: list[str], remove_network: bool, say: Say) -> None:
        # Only what carries this lab's label is removed, never a container by name alone.
        for name in names:
            try:
                container = self.client.containers.get(name)
            except docker.errors.NotFound:
                continue
            if container.labels.get(LAB_LABEL) != self.config.network:
                continue
            container.remove(force=True)
            say(f"removed {name}")
        net = self.network() if remove_network else None
        if net is not None:
            try:
                net.remove()
            except docker.errors.APIError as exc:
                raise LabError(f"cannot remove network {net.name}: {_explain(exc)}") from None
            say(f"removed network {net.name}")


def image_available(client: docker.DockerClient, image: str) -> bool:
    """Whether the image is present locally."""
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def pull(client: docker.DockerClient, image: str) -> str | None:
    """Pull an image; None on success, else the reason in one line."""
    repository, tag = split_image(image)
    try:
        client.images.pull(repository, tag=tag)
    except docker.errors.APIError as exc:
        return _first_line(Exception(_explain(exc)))
    except docker.errors.DockerException as exc:
        return _first_line(exc)
    return None


def split_image(image: str) -> tuple[str, str]:
    """``repo/name:tag`` → (``repo/name``, ``tag``); the tag defaults to ``latest``."""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = image.rpartition(":")
        return repository, tag
    return image, "latest"


def _overlaps(wanted: ipaddress.IPv4Network | ipaddress.IPv6Network, subnet: str) -> bool:
    try:
        other = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return False
    return other.version == wanted.version and wanted.overlaps(other)


def _node_number(name: str) -> int:
    match = re.search(r"(\d+)$", name)
    return int(match.group(1)) if match else 0


def _explain(exc: docker.errors.APIError) -> str:
    return str(getattr(exc, "explanation", None) or exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
