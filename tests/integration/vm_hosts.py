"""Stand-in "VMs" for tests: containers that run systemd as PID 1 and sshd, reached over SSH.

The roles treat them exactly like real hosts: ``ansible_service_mgr`` is ``systemd``,
Ansible connects with SSH as root with a key, and python3 is missing until the common
role's ``raw`` bootstrap installs it. Typical use::

    vms = vm_hosts.start(3)                  # image built once, containers, SSH ready
    try:
        subprocess.run(["ansible-playbook", "-i", str(vms.inventory), "playbooks/site.yml"])
    finally:
        vm_hosts.remove()                    # containers, network, keys; the image stays

Why these container settings: on this machine systemd runs in a container only with
``CAP_SYS_ADMIN``, the host's cgroup namespace and ``/sys/fs/cgroup`` mounted read-write,
and tmpfs on ``/run`` and ``/run/lock`` (``--privileged`` fails here). ``NET_ADMIN`` lets
tests cut the network with iptables, as in the container lab. Containers share the host's
clock and lack ``CAP_SYS_TIME``, so the inventory sets ``chrony_no_system_clock: true``:
chronyd then runs with ``-x`` (measures and serves time, never sets the clock). Without
it the distribution's ``chrony.service`` would be skipped by systemd
(``ConditionCapability=CAP_SYS_TIME``), and chronyd started by hand exits on its first
``adjtimex``.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

IMAGE = "etcdlab/debian12-systemd:test"
"""The local image of the stand-in VMs (built from BASE_IMAGE, kept for reuse)."""
BASE_IMAGE = "etcdlab/debian12:offline"
"""The lab's offline Debian 12 image (``invoke offline``): no registry needed."""
LABEL = "io.etcdlab.vmtest"
"""Label on everything the harness creates (value ``1``): how remove() finds it."""
NETWORK = "etcdlab-vmtest"
SUBNET = "172.29.0.0/16"
FIRST_HOST = 10
"""vm1 gets host number 10 of SUBNET (172.29.0.10), vm2 .11, ..."""

DOCKERFILE = f"""\
FROM {BASE_IMAGE}
ENV container=docker
# systemd as PID 1 and sshd; python3 is left to the common role's raw bootstrap.
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      systemd systemd-sysv openssh-server >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && systemctl enable ssh \\
 && systemctl mask getty@tty1.service serial-getty@console.service \\
      systemd-udevd.service systemd-remount-fs.service sys-kernel-debug.mount \\
 && mkdir -m 0700 -p /root/.ssh
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""


@dataclass
class VmHosts:
    """What start() made: the hosts, the SSH key and the inventory that reaches them."""

    names: list[str]
    ips: dict[str, str]
    workdir: Path
    private_key: Path
    inventory: Path
    pki_dir: Path
    timings: dict[str, float] = field(default_factory=dict)


def client() -> docker.DockerClient:
    """A Docker client for the local engine."""
    return docker.from_env(version="auto")


def ensure_image(engine: docker.DockerClient | None = None, rebuild: bool = False) -> str:
    """Build IMAGE from BASE_IMAGE unless it exists (needs Debian's package mirror).

    Returns the image tag. The base image must exist locally (``invoke offline``).
    """
    engine = engine or client()
    if not rebuild:
        try:
            engine.images.get(IMAGE)
            return IMAGE
        except docker.errors.ImageNotFound:
            pass
    engine.images.get(BASE_IMAGE)  # raises ImageNotFound with the name when missing
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = DOCKERFILE.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    engine.images.build(
        fileobj=context, custom_context=True, tag=IMAGE, labels={LABEL: "1"}, rm=True,
        pull=False,
    )
    return IMAGE


def host_ips(count: int, subnet: str = SUBNET, first_host: int = FIRST_HOST) -> list[str]:
    """The fixed addresses of vm1..vmN: host numbers first_host, first_host + 1, ..."""
    network = ipaddress.ip_network(subnet)
    return [str(network.network_address + first_host + i) for i in range(count)]


def generate_key(directory: Path) -> Path:
    """Write an ed25519 key pair (``id_ed25519``, 0600, and ``.pub``); returns the private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = directory / "id_ed25519"
    private.touch(mode=0o600)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    (directory / "id_ed25519.pub").write_bytes(public + b" etcdlab-vmtest\n")
    return private


def start(
    count: int = 3,
    prefix: str = "vm",
    extra_vars: dict[str, Any] | None = None,
    ssh_timeout: float = 90.0,
) -> VmHosts:
    """Start ``count`` systemd containers with sshd and write an inventory for them.

    Builds the image when missing, removes what an earlier run left (containers and
    network labelled LABEL), creates the network NETWORK (SUBNET) and the
    containers ``<prefix>1..N`` with fixed addresses, installs a fresh ed25519 key
    for root, waits until every sshd answers, and writes ``inventory.yml`` (see
    write_inventory) into a new temporary folder. ``extra_vars`` are added to the
    inventory's ``all.vars`` (e.g. ``etcd_archive_src`` on a machine without GitHub).
    Call remove() afterwards, also when this raises.
    """
    timings: dict[str, float] = {}
    started = time.monotonic()
    engine = client()
    ensure_image(engine)
    timings["image_s"] = time.monotonic() - started

    step = time.monotonic()
    remove()
    names = [f"{prefix}{i + 1}" for i in range(count)]
    ips = dict(zip(names, host_ips(count), strict=True))
    _ensure_network(engine)
    for name in names:
        _start_container(engine, name, ips[name])
    timings["containers_s"] = time.monotonic() - step

    step = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="etcdlab-vmtest-"))
    private_key = generate_key(workdir)
    public_key = (workdir / "id_ed25519.pub").read_text().strip()
    for name in names:
        _install_key(engine, name, public_key)
    for name in names:
        wait_for_ssh(ips[name], timeout=ssh_timeout)
    timings["ssh_s"] = time.monotonic() - step

    pki_dir = workdir / "pki"
    inventory = write_inventory(
        workdir / "inventory.yml", ips, private_key,
        {"etcd_tls_controller_dir": str(pki_dir), **(extra_vars or {})},
    )
    timings["total_s"] = time.monotonic() - started
    return VmHosts(names, ips, workdir, private_key, inventory, pki_dir, timings)


def build_inventory(
    ips: dict[str, str], private_key: Path, extra_vars: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The inventory of the stand-in VMs, shaped like ``inventory/vms.example.yml``.

    Every host is an etcd member; the first serves time, the others are its clients.
    """
    names = list(ips)
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(private_key),
                "ansible_ssh_common_args": (
                    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                ),
                "etcd_tls": True,
                "chrony_allow": [SUBNET],
                # Containers share the host's clock: see the module docstring.
                "chrony_no_system_clock": True,
                **(extra_vars or {}),
            },
            "children": {
                "etcd": {
                    "hosts": {n: {"ansible_host": ips[n], "etcd_member_ip": ips[n]} for n in names}
                },
                "chrony_server": {"hosts": {names[0]: {}}},
                "chrony_client": {"hosts": {n: {} for n in names[1:]}},
            },
        }
    }


def write_inventory(
    path: Path, ips: dict[str, str], private_key: Path, extra_vars: dict[str, Any] | None = None
) -> Path:
    """Write build_inventory() as YAML to ``path``; returns ``path``."""
    path.write_text(yaml.safe_dump(build_inventory(ips, private_key, extra_vars), sort_keys=False))
    return path


def wait_for_ssh(ip: str, port: int = 22, timeout: float = 90.0) -> None:
    """Wait until an SSH server on ``ip:port`` sends its banner; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, port), timeout=2) as conn:
                conn.settimeout(5)
                if conn.recv(64).startswith(b"SSH-"):
                    return
                last_error = "no SSH banner"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"sshd on {ip}:{port} did not answer within {timeout:.0f} s: {last_error}")


def remove(workdir: Path | None = None) -> list[str]:
    """Remove every container and network labelled LABEL, and ``workdir``; keeps the image.

    Safe to call twice. Returns the names of what was removed.
    """
    import shutil

    engine = client()
    removed = []
    for container in engine.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        container.remove(force=True)
        removed.append(container.name)
    for network in engine.networks.list(filters={"label": f"{LABEL}=1"}):
        network.remove()
        removed.append(network.name)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
    return removed


def _ensure_network(engine: docker.DockerClient) -> None:
    if engine.networks.list(names=[NETWORK]):
        return
    gateway = str(ipaddress.ip_network(SUBNET).network_address + 1)
    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=gateway)]
    )
    engine.networks.create(NETWORK, driver="bridge", ipam=ipam, labels={LABEL: "1"})


def _start_container(engine: docker.DockerClient, name: str, ip: str) -> None:
    api = engine.api
    host_config = api.create_host_config(
        cap_add=["SYS_ADMIN", "NET_ADMIN"],
        cgroupns="host",
        binds={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
        tmpfs={"/run": "", "/run/lock": ""},
        network_mode=NETWORK,
        restart_policy={"Name": "no"},
    )
    networking = api.create_networking_config(
        {NETWORK: api.create_endpoint_config(ipv4_address=ip)}
    )
    api.create_container(
        IMAGE, name=name, hostname=name, labels={LABEL: "1"}, host_config=host_config,
        networking_config=networking, detach=True,
    )
    api.start(name)


def _install_key(engine: docker.DockerClient, name: str, public_key: str) -> None:
    container = engine.containers.get(name)
    script = 'umask 077; mkdir -p /root/.ssh; printf "%s\\n" "$0" > /root/.ssh/authorized_keys'
    code, output = container.exec_run(["sh", "-c", script, public_key])
    if code != 0:
        raise RuntimeError(f"{name}: cannot install the SSH key: {output.decode(errors='replace')}")
