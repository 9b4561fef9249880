"""How the lab reaches its nodes: ``docker exec`` for the container lab, SSH for hosts.

Both backends answer the same questions — which nodes, at which addresses, in what state,
run this command, signal that process, start that service — so that the cluster view,
the faults and the experiments work on either. The container backend signals processes
from this machine (docker top gives their host pids: the time a signal was sent is known
to the microsecond); over SSH a signal is sent with ``pkill`` on the host and its time is
known to within the SSH round trip.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etcdlab.errors import LabError
from etcdlab.lab.config import LabConfig

SUPERVISOR_LOGS = {"etcd": "/var/log/etcd/etcd.log", "chronyd": "/var/log/chrony/chronyd.log"}
"""Where the roles' supervisord programs write their output."""


class DockerNodes:
    """The container lab's nodes, reached through the Docker engine."""

    kind = "docker"

    def __init__(self, config: LabConfig, lab: Any = None) -> None:
        from etcdlab.lab.docker_cluster import DockerLab

        self.config = config
        self.docker = lab or DockerLab(config)
        self.names = config.node_names
        self.ips = config.node_ips

    def exec(self, name: str, command: list[str], check: bool = True) -> tuple[int, str]:
        """Run a command in a node; returns (exit code, combined output)."""
        return self.docker.exec(name, command, check=check)

    def states(self) -> dict[str, str]:
        """Docker's state of every node ("running", "exited", "paused"; absent = missing)."""
        return {n.name: n.status for n in self.docker.nodes()}

    def process_pid(self, name: str, command: str) -> int | None:
        """Host pid of a process in the node, by its command name."""
        for pid, _stat, comm in self._processes(name):
            if comm == command:
                return pid
        return None

    def process_stopped(self, name: str, command: str) -> bool:
        """Whether that process is stopped (SIGSTOP: ps state T)."""
        return any(comm == command and stat.startswith("T")
                   for _pid, stat, comm in self._processes(name))

    def _processes(self, name: str) -> list[tuple[int, str, str]]:
        top = self.docker.container(name).top(ps_args="-eo pid,stat,comm")
        return [(int(row[0]), row[1], os.path.basename(row[2].split()[0]))
                for row in top.get("Processes") or []]

    def signal(self, name: str, command: str, sig: signal.Signals) -> float:
        """Signal a process; returns the wall-clock time the signal was sent."""
        pid = self.process_pid(name, command)
        if pid is None:
            raise LabError(f"{name}: {command} is not running")
        sent = time.time()
        try:
            os.kill(pid, sig)
        except PermissionError:  # not root here: signal from inside the container
            sent = time.time()
            self.exec(name, ["pkill", f"-{sig.name.removeprefix('SIG')}", "-x", command])
        return sent

    def service(self, name: str, action: str, program: str) -> tuple[int, str]:
        """``supervisorctl ACTION PROGRAM`` in the node."""
        return self.exec(name, ["supervisorctl", action, program], check=False)

    def exec_env(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
        """Run a command with extra environment; returns (exit code, stdout, stderr)."""
        code, output = self.docker.exec_raw(name, argv, demux=True, environment=env)
        stdout, stderr = output if isinstance(output, tuple) else (output, b"")
        return (code, (stdout or b"").decode(errors="replace"),
                (stderr or b"").decode(errors="replace"))

    def stream(self, name: str, argv: list[str], env: dict[str, str]) -> NodeProcess:
        """Start a command in a node and read what it prints as it prints it."""
        api = self.docker.client.api
        exec_id = api.exec_create(self.docker.container(name).id, argv, stdout=True,
                                  stderr=True, environment=env)["Id"]
        chunks = api.exec_start(exec_id, stream=True)

        def poll() -> int | None:
            info = api.exec_inspect(exec_id)
            return None if info["Running"] else info["ExitCode"]

        return NodeProcess(_text_lines(chunks), poll, argv)

    def service_running(self, name: str, program: str) -> bool:
        """Whether supervisord reports the program RUNNING."""
        _code, out = self.service(name, "status", program)
        return "RUNNING" in out

    def service_log(self, name: str, program: str, lines: int = 300) -> str:
        """The last lines a service wrote (its supervisord log file)."""
        _code, text = self.exec(name, ["tail", "-n", str(lines), SUPERVISOR_LOGS[program]],
                                check=False)
        return text

    def ensure_supervisor(self, name: str) -> str:
        """Start supervisord in the node when it is not running (a restarted container)."""
        return _ensure_supervisord(self, name)

    def settle(self) -> list[str]:
        """Wait for commands an interrupt left running in nodes (see DockerLab.settle)."""
        return self.docker.settle()

    def repair(self) -> list[str]:
        """Unpause paused and start stopped containers; what was done."""
        repaired = []
        for container in self.docker.containers():
            if container.status == "paused":
                container.unpause()
                repaired.append(f"{container.name}: unpaused container")
            elif container.status != "running":
                container.start()
                repaired.append(f"{container.name}: started container")
        return repaired

    def describe(self) -> str:
        """The image the nodes run (for result metadata)."""
        container = self.docker.container(self.names[0])
        return (container.image.tags or [container.image.short_id])[0]


@dataclass(frozen=True)
class SshHost:
    """One inventory host and how to reach it."""

    name: str
    address: str
    member_ip: str
    user: str
    port: int
    key_file: str
    common_args: str
    become: bool


class SshNodes:
    """Existing hosts from an Ansible inventory, reached over SSH."""

    kind = "ssh"

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.hosts = {h.name: h for h in inventory_hosts(Path(config.inventory))}
        self.names = list(self.hosts)
        self.ips = {h.name: h.member_ip for h in self.hosts.values()}
        self._service_managers: dict[str, str] = {}

    def ssh_command(self, name: str, command: list[str]) -> list[str]:
        """The ``ssh`` command line that runs ``command`` on a host (with sudo if needed)."""
        host = self.hosts[name]
        remote = shlex.join(command)
        if host.become and host.user != "root":
            remote = "sudo -n " + remote
        line = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                "-p", str(host.port)]
        if host.key_file:
            line += ["-i", os.path.expanduser(host.key_file)]
        # Before the inventory's own arguments: ssh keeps the first value of an option.
        line += host_key_options(self.config)
        line += shlex.split(host.common_args)
        # "--": nothing from the inventory after this point can be read as an ssh option.
        return [*line, "--", f"{host.user}@{host.address}", remote]

    def trust_hosts(self) -> None:
        """Reach every host once: a new host key is recorded, a changed one refused.

        Keys go to the lab's own known_hosts (``accept-new``), so that Ansible, which
        checks host keys strictly, finds them there.
        """
        self.config.known_hosts_path.parent.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            self.exec(name, ["true"], check=False)

    def exec(self, name: str, command: list[str], check: bool = True) -> tuple[int, str]:
        """Run a command on a host over SSH; returns (exit code, combined output)."""
        done = subprocess.run(self.ssh_command(name, command), capture_output=True, text=True,
                              timeout=60)
        output = done.stdout + done.stderr
        if done.returncode == 255 and "IDENTIFICATION HAS CHANGED" in output:
            host = self.hosts[name]
            known = self.config.known_hosts_path
            raise LabError(
                f"{name}: the SSH host key of {host.address} is not the one recorded in "
                f"{known}: refused. If the host was rebuilt, forget the old key with "
                f"`ssh-keygen -R {host.address} -f {known}` and try again"
            )
        if done.returncode == 255:
            raise LabError(f"{name}: ssh failed: {output.strip().splitlines()[-1:]}")
        if check and done.returncode != 0:
            raise LabError(f"{name}: `{shlex.join(command)}` failed ({done.returncode}): "
                           f"{output.strip()}")
        return done.returncode, output

    def states(self) -> dict[str, str]:
        """"running" for every host that answers over SSH, else "unreachable"."""
        states = {}
        for name in self.names:
            try:
                code, _ = self.exec(name, ["true"], check=False)
            except (LabError, subprocess.TimeoutExpired):
                code = 255
            states[name] = "running" if code == 0 else "unreachable"
        return states

    def process_pid(self, name: str, command: str) -> int | None:
        """Pid of a process on the host, by its command name."""
        code, out = self.exec(name, ["pidof", "-s", command], check=False)
        return int(out.split()[0]) if code == 0 and out.strip() else None

    def process_stopped(self, name: str, command: str) -> bool:
        """Whether that process is stopped (SIGSTOP)."""
        pid = self.process_pid(name, command)
        if pid is None:
            return False
        _code, out = self.exec(name, ["ps", "-o", "stat=", "-p", str(pid)], check=False)
        return out.strip().startswith("T")

    def signal(self, name: str, command: str, sig: signal.Signals) -> float:
        """Signal a process with pkill; returns the time the ssh command was started."""
        sent = time.time()
        code, out = self.exec(
            name, ["pkill", f"-{sig.name.removeprefix('SIG')}", "-x", command], check=False
        )
        if code != 0:
            raise LabError(f"{name}: {command} is not running")
        return sent

    def service(self, name: str, action: str, program: str) -> tuple[int, str]:
        """Start/stop a service with the host's manager (systemd or supervisord)."""
        if self._manager(name) == "systemd":
            unit = {"chronyd": "chrony"}.get(program, program)
            # etcd's unit is Type=notify: a plain start blocks until the member has quorum.
            no_block = ["--no-block"] if action == "start" else []
            return self.exec(name, ["systemctl", action, *no_block, unit], check=False)
        return self.exec(name, ["supervisorctl", action, program], check=False)

    def ensure_supervisor(self, name: str) -> str:
        """Start supervisord on a host that uses it and where it is not running."""
        if self._manager(name) == "systemd":
            return ""
        return _ensure_supervisord(self, name)

    def exec_env(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
        """Run a command with extra environment over SSH; (exit code, stdout, stderr)."""
        command = ["env", *[f"{k}={v}" for k, v in env.items()], *argv] if env else argv
        done = subprocess.run(self.ssh_command(name, command), capture_output=True, text=True,
                              timeout=3600)
        return done.returncode, done.stdout, done.stderr

    def stream(self, name: str, argv: list[str], env: dict[str, str]) -> NodeProcess:
        """Start a command on a host and read what it prints as it prints it."""
        command = ["env", *[f"{k}={v}" for k, v in env.items()], *argv] if env else argv
        process = subprocess.Popen(self.ssh_command(name, command), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        return NodeProcess(process.stdout, process.poll, argv)

    def service_running(self, name: str, program: str) -> bool:
        """Whether the host's service manager reports the service running."""
        if self._manager(name) == "systemd":
            unit = {"chronyd": "chrony"}.get(program, program)
            code, _ = self.exec(name, ["systemctl", "is-active", "--quiet", unit], check=False)
            return code == 0
        _code, out = self.service(name, "status", program)
        return "RUNNING" in out

    def service_log(self, name: str, program: str, lines: int = 300) -> str:
        """The last lines a service wrote (journald under systemd, else its log file)."""
        if self._manager(name) == "systemd":
            unit = {"chronyd": "chrony"}.get(program, program)
            command = ["journalctl", "-u", unit, "-o", "cat", "-n", str(lines), "--no-pager"]
        else:
            command = ["tail", "-n", str(lines), SUPERVISOR_LOGS[program]]
        _code, text = self.exec(name, command, check=False)
        return text

    def _manager(self, name: str) -> str:
        if name not in self._service_managers:
            code, _ = self.exec(name, ["test", "-d", "/run/systemd/system"], check=False)
            self._service_managers[name] = "systemd" if code == 0 else "supervisor"
        return self._service_managers[name]

    def settle(self) -> list[str]:
        """An interrupt ends ssh and with it the remote command: nothing to wait for."""
        return []

    def repair(self) -> list[str]:
        """Hosts are not ours to restart: nothing to repair at this level."""
        return []

    def describe(self) -> str:
        """Where the lab runs (for result metadata)."""
        return f"ssh hosts ({Path(self.config.inventory).name})"


class NodeProcess:
    """A command running in a node, seen from here as a ``Popen`` is: its output lines
    (``stdout``), ``poll()``, ``wait()`` and ``kill()``. A node process is ended inside its
    node, so ``kill`` is the starter's to give (see ``Faults.spawn_in_node``)."""

    def __init__(self, lines: Any, poll: Any, argv: list[str]) -> None:
        self.stdout = lines
        self.poll = poll
        self.argv = argv
        self.kill: Any = None

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code, once it has ended; ``TimeoutExpired`` after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.argv, timeout or 0.0)
            time.sleep(0.05)
        return code


def _text_lines(chunks: Any) -> Any:
    """Whole text lines from a stream of byte chunks cut anywhere."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode(errors="replace") + "\n"
    if pending:
        yield pending.decode(errors="replace")


def _ensure_supervisord(nodes: DockerNodes | SshNodes, name: str) -> str:
    config = supervisor_config()
    code, _ = nodes.exec(name, ["supervisorctl", "-c", config, "pid"], check=False)
    if code == 0:
        return ""
    nodes.exec(name, ["supervisord", "-c", config])
    return "supervisord started"


def supervisor_config() -> str:
    """The supervisord config file the common role installs (its defaults are the source)."""
    import yaml

    from etcdlab.lab.config import PROJECT_ROOT

    defaults = yaml.safe_load((PROJECT_ROOT / "roles/common/defaults/main.yml").read_text())
    return str(defaults["common_supervisor_config"])


def host_key_options(config: LabConfig) -> list[str]:
    """ssh options that pin host keys in the lab's known_hosts (accepted on first contact)."""
    return ["-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={config.known_hosts_path}"]


PKI_NAMES = frozenset({"ca", "client", "client-ca", "peer-ca"})
"""Names of the lab's shared PKI files in ``.lab/<lab>/pki/`` (the two CAs, the controller's
client, and the single CA of an older etcdlab). A member's own files carry a suffix
(``<host>.server``, ``.peer``, ``.client``), but a member named like a shared file would
still read as one of them: such names are refused."""
_HOST_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_DNS_NAME_RE = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+")
_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


def inventory_hosts(path: Path) -> list[SshHost]:
    """The etcd members of an Ansible inventory, as ``ansible-inventory`` resolves them.

    Members may sit in child groups of ``etcd``. Every value that reaches a command line,
    a file name or etcd's configuration is checked here: host names, addresses
    (``ipaddress``), users and ports.
    """
    binary = Path(sys.executable).parent / "ansible-inventory"
    command = [str(binary if binary.exists() else "ansible-inventory"), "-i", str(path), "--list"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"cannot read inventory {path}: {done.stderr.strip().splitlines()[-1:]}")
    data = json.loads(done.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    members = group_hosts(data, "etcd")
    if not members:
        raise LabError(f"inventory {path} has no hosts in the group `etcd` or its children")
    return [inventory_host(name, hostvars.get(name, {}), path) for name in members]


def group_hosts(inventory: dict[str, Any], group: str) -> list[str]:
    """Hosts of a group and of its child groups, in inventory order, each once."""
    found: list[str] = []
    pending, seen = [group], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        entry = inventory.get(current) or {}
        found += [h for h in entry.get("hosts", []) if h not in found]
        pending += entry.get("children", [])
    return found


def inventory_host(name: str, hostvars: dict[str, Any], path: Path) -> SshHost:
    """One member from its inventory variables, or a LabError naming what is wrong."""
    where = f"inventory {path}, host {name!r}"
    if not _HOST_NAME_RE.fullmatch(name):
        raise LabError(f"{where}: a member name must be letters, digits, '-' and '_' "
                       "(it names the member's certificate files and etcd member)")
    if name.lower() in PKI_NAMES:
        raise LabError(f"{where}: the name collides with the lab's own PKI files "
                       f"({', '.join(sorted(PKI_NAMES))}.crt/.key); rename the host")
    address = str(hostvars.get("ansible_host", name))
    if not (_is_ip(address) or _DNS_NAME_RE.fullmatch(address)):
        raise LabError(f"{where}: ansible_host {address!r} is neither an IP address nor a "
                       "host name")
    member_ip = str(hostvars.get("etcd_member_ip", address))
    if not _is_ip(member_ip):
        raise LabError(f"{where}: etcd_member_ip {member_ip!r} is not an IP address "
                       "(set it when ansible_host is a name)")
    user = str(hostvars.get("ansible_user", "root"))
    if not _USER_RE.fullmatch(user):
        raise LabError(f"{where}: ansible_user {user!r} is not a user name")
    try:
        port = int(str(hostvars.get("ansible_port", 22)))
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise LabError(f"{where}: ansible_port {hostvars.get('ansible_port')!r} is not a port")
    return SshHost(
        name=name,
        address=address,
        member_ip=str(ipaddress.ip_address(member_ip)),
        user=user,
        port=port,
        key_file=str(hostvars.get("ansible_ssh_private_key_file", "")),
        common_args=str(hostvars.get("ansible_ssh_common_args", "")),
        become=bool(hostvars.get("ansible_become", False)),
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def nodes_for(config: LabConfig) -> DockerNodes | SshNodes:
    """The backend that reaches this lab's nodes."""
    return SshNodes(config) if config.inventory else DockerNodes(config)
