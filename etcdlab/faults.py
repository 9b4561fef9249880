"""Faults an experiment injects, and ``heal()`` that undoes every one of them.

Members are crashed, stopped and paused with signals to their etcd process, through the
lab's node backend (:mod:`etcdlab.nodes`): for containers they are sent from this machine
(docker top gives the host pid; the time of the signal is known to the microsecond), on
hosts with ``pkill`` over SSH. Partitions are iptables rules in a chain of the lab's own,
``ETCDLAB``, inside each container (``NET_ADMIN``); only traffic between nodes is cut,
so that this machine still reaches every side. Experiments use :meth:`Faults.session`,
which heals in a ``finally`` — also on Ctrl-C — and ``invoke heal`` repairs a lab that a
killed run left broken.

Clock faults give one process a faked clock with libfaketime (an offset and/or a rate):
a Python agent on this machine or in a node, or a node's chronyd, whose supervisord
program and chrony.conf are backed up inside the node before they change and restored
by ``heal()``. NTP alone can be cut between a client and its server (UDP 123), leaving
etcd's traffic alone.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from etcdlab.cluster import Cluster
from etcdlab.errors import LabError

CHAIN = "ETCDLAB"
# Appends one DROP rule per (flag, address) pair given as arguments after the chain; all
# rules in one exec, so a cut takes effect at once.
_DROP_SCRIPT = (
    'chain=$1; shift; while [ "$#" -ge 2 ]; do '
    'iptables -w -A "$chain" "$1" "$2" -j DROP || exit 1; shift 2; done'
)
ETCD_PROGRAM = "etcd"
CHRONY_PROGRAM = "chronyd"
CHRONY_CONF = "/etc/chrony/chrony.conf"
CHRONY_SUPERVISOR_CONF = "/etc/supervisor/conf.d/chronyd.conf"
CHRONY_DRIFTFILE = "/var/lib/chrony/chrony.drift"
NTP_PORT = 123
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
# Files a clock fault changed in a node are kept here as they were; heal() puts them back.
BACKUP_DIR = "/var/lib/etcdlab-faults"
# Every agent process started in a node carries this in its argv (heal() ends them by it).
NODE_AGENT_MARK = "--etcdlab-node-agent"


class Faults:
    """Fault injection on one lab; remembers nothing it cannot rediscover in ``heal``."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.lab = cluster.lab
        self._local_processes: list[subprocess.Popen] = []

    # -- processes --------------------------------------------------------------------
    def etcd_pid(self, name: str) -> int | None:
        """Pid of the member's etcd process (this machine's pid for containers), or None."""
        return self.lab.process_pid(name, ETCD_PROGRAM)

    def signal_etcd(self, name: str, sig: signal.Signals) -> float:
        """Send a signal to the member's etcd; returns the wall-clock time it was sent."""
        return self.lab.signal(name, ETCD_PROGRAM, sig)

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
        """Start the member's etcd again (supervisord or systemd; no-op when running)."""
        self._service(name, "start", ETCD_PROGRAM)

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
        self._drop(name, peers, inbound, outbound)

    def _drop(self, name: str, peers: list[str], inbound: bool = True,
              outbound: bool = True) -> None:
        """Add the rules dropping ``name``'s traffic from/to ``peers``, in one command."""
        flags = [flag for flag, wanted in (("-s", inbound), ("-d", outbound)) if wanted]
        pairs = [arg for peer in peers for flag in flags
                 for arg in (flag, str(ipaddress.ip_address(self.cluster.ips[peer])))]
        # The addresses are arguments of the script, never part of it: an inventory value
        # cannot become shell code in this root shell.
        self.lab.exec(name, ["sh", "-c", _DROP_SCRIPT, "drop", CHAIN, *pairs])

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

    def cut_off(self, name: str) -> tuple[float, float]:
        """Isolate one node like :meth:`isolate`, timed: (before, after) wall-clock times.

        Every rule of the isolated node goes in with one command inside it, so the cut
        takes effect between the two times returned (one ``docker exec``, ~0.1 s); the
        mirror rules on the other nodes follow, one command per node, all at once, so
        whatever the caller times next starts soon after the cut.
        """
        others = [n for n in self.cluster.names if n != name]
        for node in self.cluster.names:
            self._ensure_chain(node)
        before = time.time()
        self._drop(name, others)
        after = time.time()
        with ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
            list(pool.map(lambda peer: self._drop(peer, [name]), others))
        return before, after

    def reconnect(self) -> tuple[float, float]:
        """Remove every partition rule, on all nodes at once; nothing else is healed.

        Returns (before, after) wall-clock times: the network is whole again between them.
        """
        before = time.time()
        with ThreadPoolExecutor(max_workers=len(self.cluster.names)) as pool:
            list(pool.map(
                lambda node: self.lab.exec(node, ["iptables", "-w", "-F", CHAIN], check=False),
                self.cluster.names,
            ))
        return before, time.time()

    def partitioned(self, name: str) -> bool:
        """Whether the node has any partition rule in force."""
        code, out = self.lab.exec(name, ["iptables", "-w", "-S", CHAIN], check=False)
        return code == 0 and "-j DROP" in out

    # -- clocks (libfaketime) and chrony ------------------------------------------------
    # libfaketime fakes the clock of processes that read time through libc: Python agents
    # and chronyd. etcd (Go) reads the clock without libc and is never affected, and every
    # container shares this machine's kernel clock, so a clock fault is always one process.

    def spawn_faked(
        self, argv: list[str], offset_s: float = 0.0, rate: float = 1.0, **popen: Any
    ) -> subprocess.Popen:
        """Start a process on this machine whose clock is ``offset_s`` ahead and runs
        ``rate`` times as fast (``FAKETIME="+offset xrate"``); heal() ends it if still alive.
        """
        if not os.path.exists(FAKETIME_LIB):
            raise LabError(f"{FAKETIME_LIB} is missing: install the Debian package `faketime`")
        env = {**os.environ, **popen.pop("env", {}), **faketime_env(offset_s, rate)}
        process = subprocess.Popen(argv, env=env, **popen)
        self._local_processes.append(process)
        return process

    def exec_faked(
        self, name: str, argv: list[str], offset_s: float = 0.0, rate: float = 1.0
    ) -> tuple[int, str]:
        """Run a command in a node with a faked clock (0 and 1: the real clock); blocks.

        Its argv must contain :data:`NODE_AGENT_MARK`, by which heal() finds and ends it
        if the run is interrupted. Returns (exit code, stdout).
        """
        if NODE_AGENT_MARK not in argv:
            raise LabError(f"node agents must carry {NODE_AGENT_MARK} in their argv")
        env = faketime_env(offset_s, rate) if (offset_s, rate) != (0.0, 1.0) else {}
        code, stdout, stderr = self.lab.exec_env(name, argv, env)
        if code != 0:
            raise LabError(f"{name}: agent failed ({code}): {(stderr or stdout)[-500:]}")
        return code, stdout

    def configure_chronyd(
        self,
        name: str,
        offset_s: float | None = None,
        rate: float | None = None,
        iburst: bool | None = None,
        minpoll: int | None = None,
        maxpoll: int | None = None,
        fresh_driftfile: bool = False,
    ) -> float:
        """Restart a node's chronyd with a faked clock and/or other client options.

        ``offset_s``/``rate``: libfaketime for chronyd (its supervisord program gets the
        environment); ``iburst``/``minpoll``/``maxpoll``: the ``server`` lines of
        chrony.conf; ``fresh_driftfile``: start without the frequency a driftfile holds.
        Every file is backed up first and restored by heal(). Returns the wall-clock
        time chronyd was started.
        """
        self._service(name, "stop", CHRONY_PROGRAM)  # chronyd writes its driftfile now
        if offset_s is not None or rate is not None:
            self._backup(name, CHRONY_SUPERVISOR_CONF)
            env = faketime_env(offset_s or 0.0, 1.0 if rate is None else rate)
            line = "environment=" + ",".join(f'{k}="{v}"' for k, v in sorted(env.items()))
            self.lab.exec(name, ["sed", "-i", "-e", "/^environment=/d", "-e",
                                 f"/^command=/a {line}", CHRONY_SUPERVISOR_CONF])
        if iburst is not None or minpoll is not None or maxpoll is not None:
            self._backup(name, CHRONY_CONF)
            _code, text = self.lab.exec(name, ["cat", CHRONY_CONF])
            self._write(name, CHRONY_CONF, chrony_server_lines(text, iburst, minpoll, maxpoll))
        if fresh_driftfile:
            self._backup(name, CHRONY_DRIFTFILE)
            self.lab.exec(name, ["rm", "-f", CHRONY_DRIFTFILE])
        self.lab.exec(name, ["supervisorctl", "reread"], check=False)
        self.lab.exec(name, ["supervisorctl", "update", CHRONY_PROGRAM], check=False)
        started = time.time()
        self._service(name, "start", CHRONY_PROGRAM)
        return started

    def stop_chronyd(self, name: str) -> None:
        """Stop a node's chronyd (it writes its driftfile as it exits); heal() restarts it."""
        self._service(name, "stop", CHRONY_PROGRAM)

    def read_driftfile(self, name: str) -> tuple[float, float] | None:
        """(frequency ppm, skew ppm) from the node's chrony driftfile, None when absent."""
        code, text = self.lab.exec(name, ["cat", CHRONY_DRIFTFILE], check=False)
        fields = text.split()
        if code != 0 or len(fields) < 2:
            return None
        return float(fields[0]), float(fields[1])

    def cut_ntp(self, client: str, server: str) -> float:
        """Drop NTP (UDP 123) between a client and its time server; etcd traffic still
        flows. Returns the wall-clock time the rules were in force."""
        self._ensure_chain(client)
        ip = self.cluster.ips[server]
        for rule in _ntp_rules(ip):
            self._iptables(client, "-A", CHAIN, *rule)
        return time.time()

    def restore_ntp(self, client: str, server: str) -> float:
        """Undo :meth:`cut_ntp` only; returns the wall-clock time NTP flowed again."""
        ip = self.cluster.ips[server]
        for rule in _ntp_rules(ip):
            self.lab.exec(client, ["iptables", "-w", "-D", CHAIN, *rule], check=False)
        return time.time()

    def _service(self, name: str, action: str, program: str) -> None:
        """Start or stop a service; already in that state is fine."""
        code, out = self.lab.service(name, action, program)
        if code != 0 and not any(word in out for word in ("already started", "not running")):
            raise LabError(f"{name}: cannot {action} {program}: {out.strip()}")

    def _write(self, name: str, path: str, text: str) -> None:
        self.lab.exec(name, ["sh", "-c", 'printf %s "$1" > "$2"', "write", text, path])

    def _backup(self, name: str, path: str) -> None:
        """Keep the file as it was before the first change (or that it was absent)."""
        script = (
            'o="$1/orig$2"; a="$1/absent$2"; [ -e "$o" ] || [ -e "$a" ] && exit 0; '
            'if [ -e "$2" ]; then mkdir -p "$(dirname "$o")" && cp -p "$2" "$o"; '
            'else mkdir -p "$(dirname "$a")" && touch "$a"; fi'
        )
        self.lab.exec(name, ["sh", "-c", script, "backup", BACKUP_DIR, path])

    def _restore_files(self, name: str) -> list[str]:
        """Put back every backed-up file (chronyd stopped meanwhile); returns their paths."""
        code, listing = self.lab.exec(
            name, ["sh", "-c", f'cd {BACKUP_DIR} 2>/dev/null && find . -type f'], check=False)
        paths = [line.strip()[1:] for line in listing.splitlines() if line.strip()]
        if code != 0 or not paths:
            return []
        self._service(name, "stop", CHRONY_PROGRAM)
        restored = []
        for entry in paths:
            kind, _, path = entry.lstrip("/").partition("/")
            path = "/" + path
            if kind == "orig":
                self.lab.exec(name, ["cp", "-p", f"{BACKUP_DIR}/orig{path}", path])
            else:
                self.lab.exec(name, ["rm", "-f", path])
            restored.append(path)
        self.lab.exec(name, ["rm", "-rf", BACKUP_DIR])
        self.lab.exec(name, ["supervisorctl", "reread"], check=False)
        self.lab.exec(name, ["supervisorctl", "update", CHRONY_PROGRAM], check=False)
        return restored

    def _heal_clocks(self) -> list[str]:
        """Clock faults: local faked processes, node agents, chronyd's files and state."""
        repaired = []
        for process in self._local_processes:
            if process.poll() is None:
                process.kill()
                process.wait()
                repaired.append(f"local process {process.pid} with a faked clock ended")
        self._local_processes.clear()
        for name in self.cluster.names:
            code, _ = self.lab.exec(name, ["pkill", "-f", "--", NODE_AGENT_MARK], check=False)
            if code == 0:
                repaired.append(f"{name}: clock agents ended")
            restored = self._restore_files(name)
            if restored:
                repaired.append(f"{name}: restored {', '.join(restored)}")
            if not self.lab.service_running(name, CHRONY_PROGRAM):
                self._service(name, "start", CHRONY_PROGRAM)
                repaired.append(f"{name}: chronyd started")
        return repaired

    # -- healing ----------------------------------------------------------------------
    def heal(self, wait: bool = True, timeout: float = 90.0) -> list[str]:
        """Undo every fault on every node: rules flushed, etcd resumed and started.

        Returns what it repaired (for ``invoke heal``); waits for a healthy cluster.
        """
        repaired = self.lab.repair()
        for name in self.cluster.names:
            if self.partitioned(name):
                self._iptables(name, "-F", CHAIN)
                repaired.append(f"{name}: partition rules removed")
            pid = self.etcd_pid(name)
            if pid is not None and self.lab.process_stopped(name, ETCD_PROGRAM):
                self.signal_etcd(name, signal.SIGCONT)
                repaired.append(f"{name}: etcd resumed (was SIGSTOPped)")
            if pid is None:
                self.start(name)
                repaired.append(f"{name}: etcd started")
        repaired += self._heal_clocks()
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


def faketime_spec(offset_s: float, rate: float) -> str:
    """libfaketime's FAKETIME value: start ``offset_s`` ahead, run ``rate`` times as fast."""
    return f"{offset_s:+.6f} x{rate:.9f}"


def faketime_env(offset_s: float = 0.0, rate: float = 1.0) -> dict[str, str]:
    """The environment that gives one process a faked clock through libfaketime."""
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": faketime_spec(offset_s, rate),
            "FAKETIME_NO_CACHE": "1"}


def chrony_server_lines(
    text: str, iburst: bool | None, minpoll: int | None, maxpoll: int | None
) -> str:
    """chrony.conf with its ``server`` lines' iburst/minpoll/maxpoll options replaced."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["server"] and len(words) > 1:
            options = _server_options(words[2:])
            if iburst is not None:
                options["iburst"] = None if iburst else False
            if minpoll is not None:
                options["minpoll"] = str(minpoll)
            if maxpoll is not None:
                options["maxpoll"] = str(maxpoll)
            parts = ["server", words[1]]
            for key, value in options.items():
                if value is False:
                    continue
                parts += [key] if value is None else [key, value]
            line = " ".join(parts)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _server_options(words: list[str]) -> dict[str, str | None | bool]:
    """chrony ``server`` options as an ordered dict: flags map to None, others to values."""
    flags = {"iburst", "burst", "prefer", "noselect", "trust", "require", "offline", "auto_offline",
             "xleave", "nts", "copy"}
    options: dict[str, str | None | bool] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word in flags or index + 1 == len(words):
            options[word] = None
            index += 1
        else:
            options[word] = words[index + 1]
            index += 2
    return options


def _ntp_rules(server_ip: str) -> list[list[str]]:
    """iptables rules (without the chain) that drop NTP to and from one server."""
    return [["-p", "udp", "-d", server_ip, "--dport", str(NTP_PORT), "-j", "DROP"],
            ["-p", "udp", "-s", server_ip, "--sport", str(NTP_PORT), "-j", "DROP"]]
