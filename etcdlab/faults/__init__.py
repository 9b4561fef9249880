"""Faults an experiment injects, and ``heal()`` that undoes every one of them.

Members are crashed and stopped with signals to their etcd process, through the
lab's node backend (:mod:`etcdlab.lab.nodes`): for containers they are sent from this machine
(docker top gives the host pid; the time of the signal is known to the microsecond), on
hosts with ``pkill`` over SSH. Partitions are iptables rules in a chain of the lab's own,
``ETCDLAB``, inside each container (``NET_ADMIN``); only traffic between nodes is cut,
so that this machine still reaches every side.

Every fault and setting change is written to the lab's journal (:mod:`etcdlab.faults.journal`)
before it is applied, with what undoing it needs; the fault's own undo (a restart, a
reconnect) marks it done. :meth:`Faults.heal` replays whatever is still open — the
experiment runner calls it between ``run`` and ``check`` on every exit, ``invoke heal``
after a killed run — then sweeps every node for anything left, step by step, carrying on
past a step that fails.

Clock faults give one process a faked clock with the node's libfaketime (an offset and/or
a rate): a Python agent in a node, or a node's chronyd, whose supervisord
program and chrony.conf are backed up inside the node before they change and restored
by ``heal()``. NTP alone can be cut between a client and its server (UDP 123), leaving
etcd's traffic alone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from etcdlab.errors import LabError
from etcdlab.etcd.transport import member
from etcdlab.faults import etcd_clock, leftovers
from etcdlab.faults.journal import JOURNAL_FILE, Entry, HealStep, Idle, Journal, replay
from etcdlab.figures.clocks import continued_offset
from etcdlab.lab.cluster import Cluster
from etcdlab.lab.nodes import NodeProcess
from etcdlab.lab.provision import remove_container_lab
from etcdlab.polling import poll_until

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
# In the node (the common role installs Debian's faketime): never needed on this machine.
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
# A faked chronyd reads its clock's spec from this file (FAKETIME_TIMESTAMP_FILE, re-read on
# every call): its rate can change while it runs (:meth:`Faults.change_chronyd_rate`).
CHRONY_FAKETIME_FILE = "/run/etcdlab-chronyd.faketime"
# Files a clock fault changed in a node are kept here as they were; heal() puts them back.
BACKUP_DIR = "/var/lib/etcdlab-faults"
# Every agent process started in a node carries this in its argv (heal() ends them by it).
NODE_AGENT_MARK = "--etcdlab-node-agent"
# Every local process a fault starts carries its journal entry's id in this variable, so
# that `invoke heal` finds it after the process that started it was killed.
FAULT_ENV = "ETCDLAB_FAULT"
# ... and the lab's folder in this one, so that a lab's processes can be told from another's.
FAULT_LAB_ENV = leftovers.FAULT_LAB_ENV
ETCD_BINARY = "/usr/local/bin/etcd"
"""Where the etcd role installs the binary (``etcd_bin_dir``): the one process
:meth:`Faults.skew_etcd_clock` accepts to fake."""


class Faults:
    """Fault injection on one lab: each fault journalled before it is applied."""

    def __init__(self, cluster: Cluster, journal: Journal | None = None) -> None:
        self.cluster = cluster
        self.lab = cluster.lab
        self.journal = journal or Journal(cluster.config.state_path / JOURNAL_FILE)
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
        return self._etcd_fault(name, signal.SIGKILL, "crashed (SIGKILL)")

    def stop(self, name: str) -> float:
        """SIGTERM the member's etcd (graceful: a leader hands over leadership first)."""
        return self._etcd_fault(name, signal.SIGTERM, "stopped (SIGTERM)")

    def pause(self, name: str) -> float:
        """SIGSTOP the member's etcd (frozen: it holds its connections, answers nothing);
        heal() resumes it."""
        return self._etcd_fault(name, signal.SIGSTOP, "paused (SIGSTOP)")

    def _etcd_fault(self, name: str, sig: signal.Signals, what: str) -> float:
        self.journal.begin("etcd", f"{name}: etcd {what}", node=name)
        return self.signal_etcd(name, sig)

    def wait_exited(self, name: str, timeout: float = 30.0) -> None:
        """Block until the member's etcd process is gone."""
        if not poll_until(lambda: self.etcd_pid(name) is None, timeout, every=0.05):
            raise LabError(f"{name}: etcd still running {timeout:.0f} s after the signal")

    def start(self, name: str) -> None:
        """Start the member's etcd again (supervisord or systemd; no-op when running)."""
        self._service(name, "start", ETCD_PROGRAM)
        self.journal.close("etcd", node=name)

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start a stopped member and wait until it is healthy again."""
        self.start(name)
        self._wait_restarted(name, timeout)

    def _wait_restarted(self, name: str, timeout: float) -> None:
        """Block until the member just (re)started is healthy."""
        if not poll_until(lambda: self.cluster.healthy(name), timeout, every=0.1):
            raise LabError(f"{name}: not healthy {timeout:.0f} s after restart")

    # -- network ----------------------------------------------------------------------
    def isolate(self, name: str) -> None:
        """Cut one node off from every other node (this machine still reaches it)."""
        others = [n for n in self.cluster.names if n != name]
        self.split([[name], others])

    def split(self, groups: Iterable[Iterable[str]]) -> None:
        """Partition the nodes into groups that cannot talk to each other."""
        groups = [list(g) for g in groups]
        self._journal_partition(" | ".join(",".join(g) for g in groups),
                                [n for g in groups for n in g])
        for group in groups:
            outside = [n for other in groups if other is not group for n in other]
            for name in group:
                self._block(name, outside, inbound=True, outbound=True)

    def one_way(self, senders: str | Iterable[str], receivers: str | Iterable[str]
                ) -> tuple[float, float]:
        """Drop the IP packets ``senders`` send to ``receivers``; the other direction's
        packets still pass. Timed like :meth:`cut_off`: (before, after) wall-clock times.

        With one receiver the rules go into it (its INPUT: ``-s`` each sender), otherwise,
        with one sender, into the sender (its OUTPUT: ``-d`` each receiver): one command in
        one node either way, so the cut takes effect between the two times. (TCP needs the
        other direction's acknowledgements: a stream crossing the cut delivers what its
        window already holds, then stalls; the lab measures what Raft makes of that.)
        """
        senders = [senders] if isinstance(senders, str) else list(senders)
        receivers = [receivers] if isinstance(receivers, str) else list(receivers)
        if set(senders) & set(receivers) or not senders or not receivers:
            raise LabError(f"one_way: senders {senders} and receivers {receivers} must be "
                           "two non-empty, disjoint groups")
        what = f"{','.join(senders)} -> {','.join(receivers)} dropped"
        if len(receivers) == 1 or len(senders) > 1:
            placed = [(receiver, senders, True) for receiver in receivers]
        else:
            placed = [(senders[0], receivers, False)]
        self._journal_partition(what, [node for node, _peers, _inbound in placed])
        for node, _peers, _inbound in placed:
            self._ensure_chain(node)
        before = time.time()
        for node, peers, inbound in placed:
            self._drop(node, peers, inbound=inbound, outbound=not inbound)
        return before, time.time()

    def _journal_partition(self, what: str, nodes: list[str]) -> None:
        self.journal.begin("partition", f"partition: {what}", nodes=sorted(set(nodes)))

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
        self._journal_partition(f"{name} cut off", self.cluster.names)
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
        after = time.time()
        self.journal.close("partition")
        return before, after

    def partitioned(self, name: str) -> bool:
        """Whether the node has any partition rule in force."""
        code, out = self.lab.exec(name, ["iptables", "-w", "-S", CHAIN], check=False)
        return code == 0 and "-j DROP" in out

    # -- clocks (libfaketime) and chrony ------------------------------------------------
    # libfaketime fakes the clock of processes that read time through libc: Python agents
    # and chronyd. etcd (Go) reads the clock without libc and is never affected, and every
    # container shares this machine's kernel clock, so a clock fault is always one process.

    def spawn_in_node(self, node: str, argv: list[str], what: str, offset_s: float = 0.0,
                      rate: float = 1.0, env: dict[str, str] | None = None) -> NodeProcess:
        """Start a command in a node, read as it prints; its clock ``offset_s`` ahead and
        running ``rate`` times as fast through the node's libfaketime (0 and 1: the real
        clock). Journalled first as a node agent: its argv must carry
        :data:`NODE_AGENT_MARK`, by which heal() ends it, even after a kill of this process.
        """
        if NODE_AGENT_MARK not in argv:
            raise LabError(f"node agents must carry {NODE_AGENT_MARK} in their argv")
        faked = (offset_s, rate) != (0.0, 1.0)
        clock = f" with a faked clock ({faketime_spec(offset_s, rate)})" if faked else ""
        entry = self.journal.begin("node-agent", f"{node}: {what}{clock}", node=node)
        tag = f"{NODE_AGENT_MARK}-id={entry.id}"  # this one alone, beside others in the node
        process = self.lab.stream(node, [*argv, tag], {
            **(env or {}), **(faketime_env(offset_s, rate) if faked else {})})
        process.kill = lambda: self.lab.exec(node, ["pkill", "-KILL", "-f", "--", tag],
                                             check=False)
        return process

    def spawn(self, argv: list[str], what: str = "local process", **popen: Any
              ) -> subprocess.Popen:
        """Start a local process that heal() ends if it is still alive (journalled first).

        It carries its entry's id in ``$ETCDLAB_FAULT``: after a kill of this process,
        ``invoke heal`` finds it by that.
        """
        entry = self.journal.begin("local-process", f"{what}: {Path(argv[0]).name} "
                                   f"{' '.join(argv[1:4])}".strip())
        env = {**os.environ, **popen.pop("env", {}), FAULT_ENV: entry.id,
               FAULT_LAB_ENV: str(self.cluster.config.state_path)}
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
        entry = self.journal.begin("node-agent", f"{name}: clock agent", node=name)
        try:
            code, stdout, stderr = self.lab.exec_env(name, argv, env)
        except Exception:
            self._end_node_agents(entry)
            raise
        self.journal.done(entry, "exited")
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
        burst: bool | None = None,
    ) -> float:
        """Restart a node's chronyd with a faked clock and/or other client options.

        ``offset_s``/``rate``: libfaketime for chronyd (its supervisord program gets the
        environment); ``iburst``/``burst``/``minpoll``/``maxpoll``: the ``server`` lines of
        chrony.conf; ``fresh_driftfile``: start without the frequency a driftfile holds.
        Every file is backed up first and restored by heal(). Returns the wall-clock
        time chronyd was started.
        """
        self._journal_chronyd(name, "chronyd reconfigured")
        self._service(name, "stop", CHRONY_PROGRAM)  # chronyd writes its driftfile now
        if offset_s is not None or rate is not None:
            self._backup(name, CHRONY_SUPERVISOR_CONF)
            self._backup(name, CHRONY_FAKETIME_FILE)
            self._write_atomically(name, CHRONY_FAKETIME_FILE, faketime_spec(
                offset_s or 0.0, 1.0 if rate is None else rate))
            env = faketime_env(spec_file=CHRONY_FAKETIME_FILE)
            line = "environment=" + ",".join(f'{k}="{v}"' for k, v in sorted(env.items()))
            self.lab.exec(name, ["sed", "-i", "-e", "/^environment=/d", "-e",
                                 f"/^command=/a {line}", CHRONY_SUPERVISOR_CONF])
        if any(v is not None for v in (iburst, burst, minpoll, maxpoll)):
            self._backup(name, CHRONY_CONF)
            _code, text = self.lab.exec(name, ["cat", CHRONY_CONF])
            self._write(name, CHRONY_CONF, chrony_server_lines(text, iburst, minpoll, maxpoll,
                                                               burst))
        if fresh_driftfile:
            self._backup(name, CHRONY_DRIFTFILE)
            self.lab.exec(name, ["rm", "-f", CHRONY_DRIFTFILE])
        self.lab.exec(name, ["supervisorctl", "reread"], check=False)
        self.lab.exec(name, ["supervisorctl", "update", CHRONY_PROGRAM], check=False)
        started = time.time()
        self._service(name, "start", CHRONY_PROGRAM)
        return started

    def change_chronyd_rate(self, name: str, offset_s: float, rate: float, new_rate: float,
                            started: float) -> tuple[float, float]:
        """Make a faked chronyd's clock (``offset_s``, ``rate``, its process started at
        ``started``) run at ``new_rate`` from now on, without a step: libfaketime scales the
        whole time since the process started by the rate, so the offset is moved to keep
        the clock continuous (:func:`etcdlab.figures.clocks.continued_offset`). The spec file is
        replaced atomically; heal() removes it with the rest of the clock fault. Returns
        (the time of the change, the new offset)."""
        at = time.time()
        new_offset = continued_offset(offset_s, rate, new_rate, started, at)
        self._write_atomically(name, CHRONY_FAKETIME_FILE, faketime_spec(new_offset, new_rate))
        return at, new_offset

    # -- etcd's own clock (ptrace: etcdlab.faults.etcd_clock) -----------------------------------
    def skew_etcd_clock(self, name: str, rate: float) -> dict[str, Any]:
        """Make the member's etcd read clocks that run ``rate`` times as fast from now on
        (no step): :mod:`etcdlab.faults.etcd_clock` run in its node. Journalled first; undone by
        restarting the member (:meth:`heal_etcd_clock`, or heal()). Returns the injector's
        answer (its ``t0_wall``: the moment the rate starts, on the true clock).

        Raises LabError (one line) when it is refused or fails; the injector leaves the
        process as it was then, and anything else (no answer) is undone at once."""
        entry = self.journal.begin("etcd-clock", f"{name}: etcd's clock runs x{rate:g}",
                                   node=name, rate=rate)
        answer = self._etcd_clock(name, "--rate", repr(float(rate)))
        if answer is None or "error" in answer:
            if answer is None:  # no word from the injector: restart to be sure
                with contextlib.suppress(LabError):
                    self._undo_etcd_clock(entry)
            self.journal.done(entry, "not applied")
            said = answer["error"] if answer else "the injector gave no answer"
            raise LabError(f"{name}: etcd clock fault not applied: {said}")
        return answer

    def etcd_clock_faked(self, name: str) -> bool:
        """Whether the member's etcd reads a faked clock (its vDSO jumps to a replacement)."""
        answer = self._etcd_clock(name, "--check")
        if answer is None or "error" in answer:
            raise LabError(f"{name}: cannot check etcd's clock: "
                           f"{(answer or {}).get('error', 'no answer')}")
        return bool(answer["faked"])

    def heal_etcd_clock(self, name: str) -> str:
        """Undo :meth:`skew_etcd_clock` now: restart the member; what was done."""
        detail = self._restart_true(name)
        self.journal.close("etcd-clock", node=name)
        return detail

    def _etcd_clock(self, name: str, *args: str) -> dict[str, Any] | None:
        """The injector's JSON answer (with "error" when it refused or failed and left the
        process as it was), None when it gave none."""
        _code, out = self.lab.exec(name, ["python3", "-c", ETCD_CLOCK_SOURCE, "--binary",
                                          ETCD_BINARY, *args], check=False)
        lines = out.strip().splitlines()
        try:
            answer = json.loads(lines[-1]) if lines else None
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def _undo_etcd_clock(self, entry: Entry) -> str:
        return self._restart_true(entry.data["node"])

    def _restart_true(self, name: str, timeout: float = 60.0) -> str:
        """Restart the member's etcd (a new process: a fresh vDSO, the true clock) and
        wait until it is healthy; a member not running is started."""
        self._ensure_etcd(name)
        self._service(name, "stop", ETCD_PROGRAM)
        self._service(name, "start", ETCD_PROGRAM)
        self._wait_restarted(name, timeout)
        return f"{name}: etcd restarted with the true clock"

    def temporary_lab(self, config: Any) -> Entry:
        """Write down a temporary container lab (``config``: its own network and prefix)
        before it is created; its undo removes its containers, network and state, so that
        ``invoke heal`` clears what a killed run left. The caller ends it with
        :meth:`end_temporary_lab`."""
        return self.journal.begin(
            "temporary-lab", f"temporary lab {config.network} ({config.nodes} members)",
            network=config.network, subnet=config.subnet, prefix=config.prefix,
            nodes=config.nodes)

    def end_temporary_lab(self, entry: Entry) -> str:
        """Remove the temporary lab of ``entry`` (:meth:`temporary_lab`) and mark it done:
        the same undo whether its run ends or ``invoke heal`` replays it."""
        detail = self._undo_temporary_lab(entry)
        self.journal.done(entry)
        return detail

    def _undo_temporary_lab(self, entry: Entry) -> str:
        data = entry.data
        remove_container_lab(self.cluster.config.with_changes(
            network=data["network"], subnet=data["subnet"], prefix=data["prefix"],
            nodes=data["nodes"]))
        return f"{data['network']} removed"

    def stop_chronyd(self, name: str) -> None:
        """Stop a node's chronyd (it writes its driftfile as it exits); heal() restarts it."""
        self._journal_chronyd(name, "chronyd stopped")
        self._service(name, "stop", CHRONY_PROGRAM)

    def _journal_chronyd(self, name: str, what: str) -> None:
        """One open entry per node: heal() restores every file and restarts chronyd."""
        if not self.journal.open_entries("chronyd", node=name):
            self.journal.begin("chronyd", f"{name}: {what} (files backed up in the node)",
                               node=name)

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
        self.journal.begin("ntp-cut", f"{client}: NTP to {server} cut", node=client,
                           server=server)
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
        flowing = time.time()
        self.journal.close("ntp-cut", node=client, server=server)
        return flowing

    def _service(self, name: str, action: str, program: str) -> None:
        """Start or stop a service; already in that state is fine."""
        code, out = self.lab.service(name, action, program)
        if code != 0 and not any(word in out for word in ("already started", "not running")):
            raise LabError(f"{name}: cannot {action} {program}: {out.strip()}")

    def _write(self, name: str, path: str, text: str) -> None:
        self.lab.exec(name, ["sh", "-c", 'printf %s "$1" > "$2"', "write", text, path])

    def _write_atomically(self, name: str, path: str, text: str) -> None:
        """Write a file that a running process reads (never seen half written)."""
        self.lab.exec(name, ["sh", "-c", 'printf %s "$1" > "$2.tmp" && mv "$2.tmp" "$2"',
                             "write", text, path])

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

    def _end_node_agents(self, entry: Entry) -> str:
        node = entry.data["node"]
        return "ended in its node" if self._end_agents(node) else Idle("had already ended")

    def _end_agents(self, node: str) -> bool:
        """End every lab agent in a node (SIGKILL: a stopped one too); whether one ran."""
        code, _ = self.lab.exec(node, ["pkill", "-KILL", "-f", "--", NODE_AGENT_MARK],
                                check=False)
        return code == 0

    def _end_local_processes(self, entry: Entry) -> str:
        """End the local processes that carry this entry's id (also a killed run's)."""
        ended = []
        for pid in _pids_with_fault(entry.id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                ended.append(pid)
        for process in self._local_processes:
            if process.pid in ended:
                process.wait()  # our own child: reap it
        return f"ended pid {', '.join(map(str, ended))}" if ended else Idle("had already ended")

    def _undo_etcd(self, entry: Entry) -> str:
        return self._ensure_etcd(entry.data["node"])

    def _ensure_etcd(self, node: str) -> str:
        """Resume a stopped etcd and start a missing one; what was done ("" for nothing)."""
        done = []
        if self.lab.process_stopped(node, ETCD_PROGRAM):
            self.signal_etcd(node, signal.SIGCONT)
            done.append("resumed")
        if self.etcd_pid(node) is None:
            self._service(node, "start", ETCD_PROGRAM)
            done.append("started")
        return f"{node}: etcd {' and '.join(done)}" if done else ""

    def _undo_partition(self, entry: Entry) -> str:
        return self._flush_rules(entry.data.get("nodes") or self.cluster.names)

    def _flush_rules(self, nodes: Iterable[str]) -> str:
        failed = []
        for node in nodes:
            code, out = self.lab.exec(node, ["iptables", "-w", "-F", CHAIN], check=False)
            if code != 0 and "No chain" not in out:
                failed.append(f"{node}: {out.strip()[-200:]}")
        if failed:
            raise LabError("; ".join(failed))
        return "rules removed"

    def _undo_ntp_cut(self, entry: Entry) -> str:
        self.restore_ntp(entry.data["node"], entry.data["server"])
        return f"{entry.data['node']}: NTP flows again"

    def _undo_chronyd(self, entry: Entry) -> str:
        node = entry.data["node"]
        done = self._restore_chronyd(node)
        return f"{node}: chronyd running" + (f", {', '.join(done)}" if done else "")

    def _restore_chronyd(self, node: str) -> list[str]:
        """The role's chrony files back and chronyd running; what that took."""
        done = []
        restored = self._restore_files(node)
        if restored:
            done.append(f"restored {', '.join(restored)}")
        if not self.lab.service_running(node, CHRONY_PROGRAM):
            self._service(node, "start", CHRONY_PROGRAM)
            done.append("chronyd started")
        # "already started" may be a chronyd supervisord is still starting or backing off:
        # the undo is done only once it is seen running.
        deadline = time.monotonic() + 15
        while not self.lab.service_running(node, CHRONY_PROGRAM):
            if time.monotonic() > deadline:
                log = self.lab.service_log(node, CHRONY_PROGRAM, lines=5).strip()
                raise LabError(f"{node}: chronyd does not stay running: {log}")
            time.sleep(0.5)
            self._service(node, "start", CHRONY_PROGRAM)
        return done

    # -- settings ---------------------------------------------------------------------
    def change_settings(self, show: Show, **changes: Any) -> Any:
        """Re-apply the etcd role with some settings changed (rolling, quorum kept).

        Journalled first: heal() re-applies the provisioned settings (after recovering
        from a NOSPACE alarm, which a small quota may have left). Returns the playbook run.
        """
        from etcdlab.lab import provision

        what = ", ".join(f"{key}={value}" for key, value in sorted(changes.items()))
        entry = self.journal.begin("settings", f"etcd settings changed: {what}",
                                   changes=changes)
        # One undo re-applies the provisioned settings whatever came before: an earlier
        # change still open (a sweep's previous setting) needs no undo of its own.
        for earlier in self.journal.open_entries("settings"):
            if earlier.id != entry.id:
                self.journal.done(earlier, "superseded")
        return provision.reconfigure(self.cluster.config, show, **changes)

    def restore_settings(self, show: Show) -> Any:
        """Re-apply the settings the lab was provisioned with; returns the playbook run."""
        from etcdlab.lab import provision

        run = provision.reconfigure(self.cluster.config, show)
        self.cluster.wait_healthy(timeout=120)
        self.journal.close("settings")
        return run

    def _undo_settings(self, entry: Entry) -> str:
        recovered = self.recover_space()
        self.restore_settings(_quiet)
        return ("provisioned settings re-applied"
                + (f" after recovering from {recovered}" if recovered else ""))

    def recover_space(self) -> str:
        """Compact, defragment every member and disarm, if a NOSPACE alarm is raised.

        Returns what it found ("" when no alarm was raised).
        """
        reachable = [n for n in self.cluster.names if self.etcd_pid(n) is not None]
        if not reachable:
            return ""
        with member(self.cluster, reachable[0], timeout=30) as first:
            alarms = first.alarms(timeout=30)
            if not alarms:
                return ""
            revision = self.cluster.raw_status(reachable[0]).header.revision
            with contextlib.suppress(Exception):  # already compacted to it: fine
                first.compact(revision, timeout=30)
        for name in reachable:
            with member(self.cluster, name, timeout=60) as each:
                each.defragment(timeout=60)  # as root: root's alone in etcd 3.5
        with member(self.cluster, reachable[0], timeout=30) as first:
            for member_id, _alarm in alarms:
                first.disarm(member_id, timeout=30)
        return f"{len(alarms)} NOSPACE alarm(s): compacted to {revision}, defragmented, disarmed"

    # -- healing ----------------------------------------------------------------------
    def undo_handlers(self) -> dict[str, Callable[[Entry], str]]:
        """How each journalled kind of fault is undone (the run record is the runner's)."""
        return {"partition": self._undo_partition, "ntp-cut": self._undo_ntp_cut,
                "etcd": self._undo_etcd, "local-process": self._end_local_processes,
                "node-agent": self._end_node_agents, "chronyd": self._undo_chronyd,
                "settings": self._undo_settings, "etcd-clock": self._undo_etcd_clock,
                "temporary-lab": self._undo_temporary_lab}

    def heal(self, wait: bool = True, timeout: float = 90.0,
             extra: Mapping[str, Callable[[Entry], str]] | None = None,
             keep: Iterable[str] = ()) -> list[HealStep]:
        """Undo every open journal entry, then sweep every node for what is left.

        Each step is tried on its own: one that fails (a node unreachable, a command
        timing out) is reported and the others still run. With ``wait``, the last step
        waits for a healthy cluster with one leader. ``extra`` adds handlers (the runner's
        for interrupted runs); entries whose ids are in ``keep`` stay open. Returns every
        step.
        """
        # First: no process a killed run left may apply anything after this heal.
        ended = _step("processes a killed run left here", lambda: leftovers.describe(
            leftovers.end_lab_processes(self.cluster.config.state_path)))
        steps = [ended] if ended.detail or not ended.ok else []
        settled = _step("commands the run left in nodes", lambda: "; ".join(self.lab.settle()))
        steps += [settled] if settled.detail else []
        steps += replay(self.journal, {**self.undo_handlers(), **(extra or {})}, keep)
        steps += self._sweep()
        if wait:
            steps.append(_step("cluster healthy with one leader",
                               lambda: self.cluster.wait_healthy(timeout=timeout) or "healthy"))
        if all(step.ok for step in steps) and not keep:
            self.journal.compact()
        return steps

    def _sweep(self) -> list[HealStep]:
        """What no journal entry names but a lab must not keep: rules, stopped members,
        agents, backed-up clock files, a supervisord that is not running."""
        steps = [_step("lab containers running", lambda: "; ".join(self.lab.repair()))]
        for name in self.cluster.names:
            steps.append(_step(f"{name}: process supervisor",
                               lambda n=name: self.lab.ensure_supervisor(n)))
            steps.append(_step(f"{name}: no partition rule", lambda n=name: self._sweep_rules(n)))
            steps.append(_step(f"{name}: etcd running",
                               lambda n=name: self._ensure_etcd(n)))
            steps.append(_step(f"{name}: clocks", lambda n=name: self._sweep_clocks(n)))
        for process in self._local_processes:
            if process.poll() is None:
                steps.append(_step(f"local process {process.pid}",
                                   lambda p=process: _kill(p)))
        self._local_processes.clear()
        return [step for step in steps if not step.ok or step.detail]

    def _sweep_rules(self, name: str) -> str:
        if not self.partitioned(name):
            return ""
        self._iptables(name, "-F", CHAIN)
        return "partition rules removed"

    def _sweep_clocks(self, name: str) -> str:
        done = ["clock agents ended"] if self._end_agents(name) else []
        answer = self._etcd_clock(name, "--check")  # an etcd faked with no entry left
        if answer is not None and answer.get("faked") is True:
            done.append(self._restart_true(name))
        return "; ".join(done + self._restore_chronyd(name))

    def forget_clock_backups(self) -> None:
        """After a provision: the role wrote chrony's files anew, so older backups and the
        journal entries that would restore them are void."""
        for name in self.cluster.names:
            self.lab.exec(name, ["rm", "-rf", BACKUP_DIR], check=False)
        self.journal.close("chronyd", outcome="superseded by provision")


Show = Callable[[str, dict[str, str]], None]


def _quiet(_task: str, _outcomes: dict[str, str]) -> None:
    """A playbook progress callback that shows nothing (heal prints its own table)."""


def _step(what: str, action: Callable[[], str]) -> HealStep:
    try:
        return HealStep(what, True, action() or "")
    except Exception as exc:  # noqa: BLE001 - a failing step is reported, the others go on
        return HealStep(what, False, f"{type(exc).__name__}: {exc}")


def _kill(process: subprocess.Popen) -> str:
    process.kill()
    process.wait()
    return f"ended pid {process.pid}"


def _pids_with_fault(entry_id: str) -> list[int]:
    """Local pids whose environment carries ``ETCDLAB_FAULT=<entry_id>``."""
    wanted = f"{FAULT_ENV}={entry_id}".encode()
    pids = []
    for folder in Path("/proc").iterdir():
        if not folder.name.isdigit() or int(folder.name) == os.getpid():
            continue
        try:
            environ = (folder / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0"):
            pids.append(int(folder.name))
    return pids


ETCD_CLOCK_SOURCE = Path(etcd_clock.__file__).read_text()
"""The injector's source: run in a node with its own python3 (nothing to install)."""


def faketime_spec(offset_s: float, rate: float) -> str:
    """libfaketime's FAKETIME value: start ``offset_s`` ahead, run ``rate`` times as fast."""
    return f"{offset_s:+.6f} x{rate:.9f}"


def faketime_env(offset_s: float = 0.0, rate: float = 1.0, spec_file: str | None = None
                 ) -> dict[str, str]:
    """The environment that gives one process a faked clock through libfaketime: the spec
    in the environment, or read from ``spec_file`` on every call (so that it can change
    while the process runs; the caller writes it)."""
    spec = ({"FAKETIME_TIMESTAMP_FILE": spec_file} if spec_file else
            {"FAKETIME": faketime_spec(offset_s, rate)})
    return {"LD_PRELOAD": FAKETIME_LIB, **spec, "FAKETIME_NO_CACHE": "1"}


def chrony_server_lines(
    text: str, iburst: bool | None, minpoll: int | None, maxpoll: int | None,
    burst: bool | None = None,
) -> str:
    """chrony.conf with its ``server`` lines' iburst/burst/minpoll/maxpoll options replaced
    (None: left as they are)."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["server"] and len(words) > 1:
            options = _server_options(words[2:])
            if iburst is not None:
                options["iburst"] = None if iburst else False
            if burst is not None:
                options["burst"] = None if burst else False
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
