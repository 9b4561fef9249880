"""Bad input ends in one clear error, a non-zero exit, and nothing created."""

from __future__ import annotations

import os

import docker
import pytest

from etcdlab.docker_cluster import LAB_LABEL

from .conftest import lab_env, run_invoke

BAD_LAB = {"INVOKE_LAB_NETWORK": "etcdlab-bad", "INVOKE_LAB_SUBNET": "172.27.0.0/16",
           "INVOKE_LAB_PREFIX": "badnode"}


@pytest.fixture
def client(docker_engine):
    client = docker.from_env(version="auto")
    yield client
    assert_nothing_created(client)


def assert_nothing_created(client) -> None:
    label = f"{LAB_LABEL}=etcdlab-bad"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []


def provision(*flags: str, **env: str):
    """``invoke provision`` for a throw-away lab name; INVOKE_LAB_* settings in ``env``.

    No profile file here: invoke ranks a ``-f`` file above environment variables, and
    these tests set the archive through them. The defaults fall back to offline assets.
    """
    base, _profile = lab_env()
    return run_invoke("provision", *flags, env={**base, **BAD_LAB, **env})


def one_error_line(done, fragment: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert fragment in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("nodes", ["0", "10"])
def test_node_count_outside_range(client, nodes):
    one_error_line(provision("--nodes", nodes), "nodes must be between 1 and 9")


def test_subnet_used_by_another_network(client):
    other = client.networks.create(
        "etcdlab-bystander-net",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="172.27.5.0/24")]),
    )
    try:
        one_error_line(provision(), "overlaps Docker network etcdlab-bystander-net")
    finally:
        other.remove()


def test_container_name_used_by_something_else(client):
    image = client.images.list()[0].id
    other = client.containers.create(image, ["true"], name="badnode2")
    try:
        one_error_line(provision(), "a container named badnode2 exists and is not this lab's")
    finally:
        other.remove(force=True)


def test_docker_not_reachable():
    done = provision(DOCKER_HOST="unix:///nonexistent/docker.sock")
    one_error_line(done, "cannot reach a Docker engine")
    assert "apt-get install docker.io" in " ".join(done.stderr.split())


def test_unknown_image(client):
    one_error_line(
        provision("--image", "etcdlab/no-such-image:0"),
        "image etcdlab/no-such-image:0 is not available locally and cannot be pulled",
    )


def test_missing_archive_file(client):
    one_error_line(
        provision(INVOKE_LAB_ETCD_ARCHIVE="/nonexistent/etcd.tar.gz"),
        "etcd_archive /nonexistent/etcd.tar.gz does not exist",
    )


def test_archive_checksum_mismatch(client, tmp_path):
    archive = tmp_path / "etcd-v3.5.6-linux-amd64.tar.gz"
    archive.write_bytes(os.urandom(1024))
    done = provision(INVOKE_LAB_ETCD_ARCHIVE=str(archive),
                     INVOKE_LAB_ETCD_ARCHIVE_SHA256="0" * 64)
    one_error_line(done, f"checksum mismatch for {archive}: expected sha256 {'0' * 64}")
