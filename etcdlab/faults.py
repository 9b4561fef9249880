"""Faults an experiment injects, and ``heal()`` that undoes every one of them.

Members are crashed, stopped and paused with signals sent from this machine to the
container's etcd process (docker top gives its host pid; the time of the signal is then
known to the microsecond). Partitions are iptables rules in a chain of the lab's own,
``ETCDLAB``, inside each container (``NET_ADMIN``); only traffic between nodes is cut,
so that this machine still reaches every side. Experiments use :meth:`Faults.session`,
which heals in a ``finally`` — also on Ctrl-C — and ``invoke heal`` repairs a lab that a
killed run left broken.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from etcdlab.cluster import Cluster
from etcdlab.errors import LabError

CHAIN = "ETCDLAB"
ETCD_PROGRAM = "etcd"


class Faults:
    """Fault injection on one lab; remembers nothing it cannot rediscover in ``heal``."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.lab = cluster.lab

    # -- processes --------------------------------------------------------------------
    def etcd_pid(self, name: str) -> int | None:
        """Host pid of the member's etcd process, or None when it is not running."""
        top = self.lab.container(name).top(ps_args="-eo pid,stat,comm")
        for row in top.get("Processes") or []:
            if os.path.basename(row[2].split()[0]) == "etcd":
                return int(row[0])
        return None

    def signal_etcd(self, name: str, sig: signal.Signals) -> float:
        """Send a signal to the member's etcd; returns the wall-clock time it was sent."""
        pid = self.etcd_pid(name)
        if pid is None:
            raise LabError(f"{name}: etcd is not running")
        sent = time.time()
        try:
            os.kill(pid, sig)
        except PermissionError:
            # Not root on this machine: signal from inside the container instead.
            sent = time.time()
            self.lab.exec(name, ["pkill", f"-{sig.name.removeprefix('SIG')}", "-x", "etcd"])
        return sent

    def crash(self, name: str) -> float:
        """SIGKILL the member's etcd (a crash: no leadership transfer)."""
        return self.signal_etcd(name, signal.SIGKILL)

    def stop(self, name: str) -> float:
        """SIGTERM the member's etcd (graceful: a leader hands over leadership first)."""
        return self.signal_etcd(name, signal.SIGTERM)

    def pause(self, name: str) -> float:
        """SIGSTOP the member's etcd: alive but silent, like a long GC pause."""
        return self.signal_etcd(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT a paused etcd."""
        pid = self.etcd_pid(name)
        if pid is not None:
            self.signal_etcd(name, signal.SIGCONT)

    def wait_exited(self, name: str, timeout: float = 30.0) -> None:
        """Block until the member's etcd process is gone."""
        deadline = time.monotonic() + timeout
        while self.etcd_pid(name) is not None:
            if time.monotonic() > deadline:
                raise LabError(f"{name}: etcd still running {timeout:.0f} s after the signal")
            time.sleep(0.05)

    def start(self, name: str) -> None:
        """Start the member's etcd again through the supervisor (no-op when running)."""
        code, out = self.lab.exec(name, ["supervisorctl", "start", ETCD_PROGRAM], check=False)
        if code != 0 and "already started" not in out:
            raise LabError(f"{name}: cannot start etcd: {out.strip()}")

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start a stopped member and wait until it is healthy again."""
        self.start(name)
        deadline = time.monotonic() + timeout
        while not self.cluster.healthy(name):
            if time.monotonic() > deadline:
                raise LabError(f"{name}: not healthy {timeout:.0f} s after restart")
            time.sleep(0.1)

    # -- network ----------------------------------------------------------------------
    def isolate(self, name: str) -> None:
        """Cut one node off from every other node (this machine still reaches it)."""
        others = [n for n in self.cluster.names if n != name]
        self.split([[name], others])

    def split(self, groups: Iterable[Iterable[str]]) -> None:
        """Partition the nodes into groups that cannot talk to each other."""
        groups = [list(g) for g in groups]
        for group in groups:
            outside = [n for other in groups if other is not group for n in other]
            for name in group:
                self._block(name, outside, inbound=True, outbound=True)

    def one_way(self, sender: str, receiver: str) -> None:
        """Drop what ``sender`` sends to ``receiver``; the other direction still works."""
        self._block(receiver, [sender], inbound=True, outbound=False)

    def _block(self, name: str, peers: list[str], inbound: bool, outbound: bool) -> None:
        self._ensure_chain(name)
        for peer in peers:
            ip = self.cluster.ips[peer]
            if inbound:
                self._iptables(name, "-A", CHAIN, "-s", ip, "-j", "DROP")
            if outbound:
                self._iptables(name, "-A", CHAIN, "-d", ip, "-j", "DROP")

    def _ensure_chain(self, name: str) -> None:
        code, _ = self.lab.exec(name, ["iptables", "-w", "-n", "-L", CHAIN], check=False)
        if code != 0:
            self._iptables(name, "-N", CHAIN)
        for hook in ("INPUT", "OUTPUT"):
            code, _ = self.lab.exec(
                name, ["iptables", "-w", "-C", hook, "-j", CHAIN], check=False
            )
            if code != 0:
                self._iptables(name, "-I", hook, "1", "-j", CHAIN)

    def _iptables(self, name: str, *args: str) -> None:
        self.lab.exec(name, ["iptables", "-w", *args])

    def partitioned(self, name: str) -> bool:
        """Whether the node has any partition rule in force."""
        code, out = self.lab.exec(name, ["iptables", "-w", "-S", CHAIN], check=False)
        return code == 0 and "-j DROP" in out

    # -- healing ----------------------------------------------------------------------
    def heal(self, wait: bool = True, timeout: float = 90.0) -> list[str]:
        """Undo every fault on every node: rules flushed, etcd resumed and started.

        Returns what it repaired (for ``invoke heal``); waits for a healthy cluster.
        """
        repaired: list[str] = []
        for container in self.lab.containers():
            if container.status == "paused":
                container.unpause()
                repaired.append(f"{container.name}: unpaused container")
            elif container.status != "running":
                container.start()
                repaired.append(f"{container.name}: started container")
        for name in self.cluster.names:
            if self.partitioned(name):
                self._iptables(name, "-F", CHAIN)
                repaired.append(f"{name}: partition rules removed")
            pid = self.etcd_pid(name)
            if pid is not None and _stopped(self, name):
                self.signal_etcd(name, signal.SIGCONT)
                repaired.append(f"{name}: etcd resumed (was SIGSTOPped)")
            if pid is None:
                self.start(name)
                repaired.append(f"{name}: etcd started")
        if wait:
            self.cluster.wait_healthy(timeout=timeout)
        return repaired

    @contextmanager
    def session(self) -> Iterator[Faults]:
        """Inject faults inside; every one is undone on the way out, whatever happens."""
        try:
            yield self
        finally:
            self.heal()


def _stopped(faults: Faults, name: str) -> bool:
    """Whether the member's etcd is SIGSTOPped (ps state T)."""
    top = faults.lab.container(name).top(ps_args="-eo pid,stat,comm")
    return any(
        os.path.basename(row[2].split()[0]) == "etcd" and row[1].startswith("T")
        for row in top.get("Processes") or []
    )
