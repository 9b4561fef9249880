"""Bad input ends in one clear error, a non-zero exit, and nothing changed.

Each case runs the real ``invoke`` and compares Docker (this test lab's containers and
networks) and ``.lab/`` before and after. Most need no lab: they use a lab name that is
never provisioned, derived from ``ETCDLAB_TEST_LAB`` so that two checkouts never clash.
The few that need a running lab use the shared ``lab`` fixture.
"""

from __future__ import annotations

import ipaddress
import os

import docker
import pytest

from etcdlab.lab.config import LabConfig
from etcdlab.lab.docker_cluster import LAB_LABEL, DockerLab

from .conftest import ROOT, TEST_LAB, lab_env, one_error_line, run_invoke

# 10.<second octet of the test subnet>.0.0/16: as unique as the test lab's own subnet.
_OCTET = ipaddress.ip_network(TEST_LAB["subnet"]).network_address.packed[1]
BAD_NETWORK = f"{TEST_LAB['network']}-bad"
BAD_PREFIX = f"{TEST_LAB['prefix']}bad"
BAD_SUBNET = f"10.{_OCTET}.0.0/16"
BAD_LAB = {"INVOKE_LAB_NETWORK": BAD_NETWORK, "INVOKE_LAB_SUBNET": BAD_SUBNET,
           "INVOKE_LAB_PREFIX": BAD_PREFIX}


def docker_and_state(client: docker.DockerClient) -> dict[str, object]:
    """This checkout's test containers and networks (by name) and every file under .lab/."""
    mine = (TEST_LAB["network"], TEST_LAB["prefix"])
    containers = sorted(
        (c.name, c.id, c.status) for c in client.containers.list(all=True, ignore_removed=True)
        if any(part in c.name for part in mine)
    )
    networks = sorted(
        (n.name, n.id, tuple(sorted(n.attrs.get("Containers") or {})))
        for n in (client.networks.get(net.id) for net in client.networks.list())
        if TEST_LAB["network"] in n.name
    )
    state = ROOT / ".lab"
    files = sorted(
        (str(path.relative_to(state)), path.stat().st_size, path.stat().st_mtime_ns)
        for path in state.rglob("*") if path.is_file()
    ) if state.is_dir() else []
    return {"containers": containers, "networks": networks, ".lab": files}


@pytest.fixture
def client(docker_engine):
    return docker.from_env(version="auto")


@pytest.fixture
def unchanged(client):
    """Asserts, after the test, that Docker and .lab/ are exactly as before it."""
    before = docker_and_state(client)
    yield
    assert docker_and_state(client) == before


def bad_lab_env(**env: str) -> dict[str, str]:
    """The environment of a task run against the never-provisioned bad lab."""
    base, _profile = lab_env()
    return {**base, **BAD_LAB, **env}


# (id, invoke arguments, INVOKE_LAB_* and other variables, profile file text, message)
NO_LAB_CASES = [
    ("nodes-0", ["provision", "--nodes", "0"], {}, None,
     "nodes must be a whole number from 1 to 9, got '0' (from --nodes)"),
    ("nodes-10", ["provision", "--nodes", "10"], {}, None, "from 1 to 9, got '10'"),
    ("nodes-env-abc", ["provision"], {"INVOKE_LAB_NODES": "abc"}, None,
     "nodes must be a whole number from 1 to 9, got 'abc' (from INVOKE_LAB_NODES)"),
    ("misspelt-env", ["provision"], {"INVOKE_LAB_NODE": "3"}, None,
     "unknown environment variable 'INVOKE_LAB_NODE' (did you mean INVOKE_LAB_NODES?)"),
    # "false" is read as false: the error is the missing lab, not "etcd_auth needs TLS".
    ("auth-env-false", ["status"], {"INVOKE_LAB_ETCD_AUTH": "false"}, None,
     f"no lab on network {BAD_NETWORK}"),
    ("auth-env-yes", ["provision"], {"INVOKE_LAB_ETCD_AUTH": "yes"}, None,
     "etcd_auth needs TLS"),
    ("fallback-env-maybe", ["provision"], {"INVOKE_LAB_OFFLINE_FALLBACK": "maybe"}, None,
     "offline_fallback must be true or false"),
    ("nodes-3.9-file", ["provision"], {}, "lab:\n  nodes: 3.9\n",
     "nodes must be a whole number from 1 to 9, got 3.9 (from lab.nodes)"),
    ("snapshot-count-negative", ["provision"], {}, "lab:\n  etcd_snapshot_count: -1\n",
     "etcd_snapshot_count must be a whole number from 1"),
    ("makestep-nan", ["provision"], {}, "lab:\n  chrony_makestep_threshold: .nan\n",
     "chrony_makestep_threshold must be a finite number"),
    ("unknown-setting-file", ["provision"], {}, "lab:\n  colour: blue\n",
     "unknown lab setting 'colour'"),
    ("public-subnet", ["provision", "--subnet", "8.8.8.0/24"], {}, None, "private range"),
    ("param-without-equals", ["experiment", "election", "--param", "foo"], {}, None,
     "--param takes KEY=VALUE, got 'foo'"),
    ("trials-twice", ["experiment", "election", "--param", "trials=3", "--trials", "4"], {},
     None, "trials is given twice, as '3' and '4'"),
    ("trials-abc", ["experiment", "election", "--trials", "abc"], {}, None,
     "trials must be a whole number ≥ 1, got 'abc'"),
    ("seed-fraction", ["experiment", "election", "--param", "seed=1.5"], {}, None,
     "seed must be a whole number, got '1.5'"),
    ("timeout-nan", ["experiment", "conflicts", "--param", "op_timeout_s=nan"], {}, None,
     "op_timeout_s must be a finite number > 0 s, got 'nan'"),
    ("timeout-zero", ["experiment", "conflicts", "--param", "op_timeout_s=0"], {}, None,
     "op_timeout_s must be a finite number > 0 s, got '0'"),
    ("unknown-param", ["experiment", "election", "--param", "trails=3"], {}, None,
     "election has no parameter 'trails' (did you mean trials?)"),
    ("param-named-quick", ["experiment", "election", "--param", "quick=1"], {}, None,
     "election has no parameter 'quick'"),
    ("trials-without-trials", ["experiment", "conflicts", "--trials", "3"], {}, None,
     "conflicts has no parameter 'trials'"),
    ("unknown-experiment", ["experiment", "elections"], {}, None,
     "unknown experiment 'elections'"),
    ("results-unwritable", ["experiment", "election", "--results", "/proc/etcdlab-results"],
     {}, None, "results folder /proc/etcdlab-results is not writable"),
    ("report-from-missing", ["report", "--from", "/nonexistent/results"], {}, None,
     "/nonexistent/results is not a folder of results"),
    ("bench-sizes-0", ["bench", "--sizes", "3,0"], {}, None,
     "--sizes takes member counts from 1 to 9 separated by commas (like 3,5,9), not '3,0'"),
    ("bench-on-the-labs-network", ["bench", "--network", BAD_NETWORK], {}, None,
     f"the bench destroys the lab it measures, so it needs one of its own, not {BAD_NETWORK}"),
    ("members-seconds-abc", ["members", "web", "--watch", "--seconds", "abc"], {}, None,
     "seconds must be a finite number ≥ 0 s, got 'abc' (from --seconds)"),
]


@pytest.mark.parametrize(("args", "env", "profile", "message"),
                         [case[1:] for case in NO_LAB_CASES],
                         ids=[case[0] for case in NO_LAB_CASES])
def test_bad_input_without_a_lab(unchanged, tmp_path, args, env, profile, message):
    flags: list[str] = []
    if profile is not None:
        (tmp_path / "profile.yaml").write_text(profile)
        flags = ["-f", str(tmp_path / "profile.yaml")]
    one_error_line(run_invoke(*flags, *args, env=bad_lab_env(**env)), message)


def test_report_from_a_folder_without_results(unchanged, tmp_path):
    done = run_invoke("report", "--from", str(tmp_path), env=bad_lab_env())
    one_error_line(done, f"{tmp_path} holds no results (*.json)")
    assert list(tmp_path.iterdir()) == []


def test_subnet_used_by_another_network(unchanged, client):
    other = client.networks.create(
        f"{BAD_NETWORK}-bystander",
        ipam=docker.types.IPAMConfig(pool_configs=[
            docker.types.IPAMPool(subnet=BAD_SUBNET.replace(".0.0/16", ".5.0/24"))]),
    )
    try:
        one_error_line(run_invoke("provision", env=bad_lab_env()),
                       f"overlaps Docker network {BAD_NETWORK}-bystander")
    finally:
        other.remove()


def test_container_name_used_by_something_else(unchanged, client):
    image = client.images.list()[0].id
    other = client.containers.create(image, ["true"], name=f"{BAD_PREFIX}2")
    try:
        one_error_line(run_invoke("provision", env=bad_lab_env()),
                       f"a container named {BAD_PREFIX}2 exists and is not this lab's")
    finally:
        other.remove(force=True)


def test_a_network_whose_name_only_contains_the_labs_is_not_the_lab_network(client):
    """Docker's ``names`` filter matches substrings; the lab must not mistake this one."""
    other = client.networks.create(f"{BAD_NETWORK}2")
    try:
        config = LabConfig(network=BAD_NETWORK, subnet=BAD_SUBNET, prefix=BAD_PREFIX)
        assert DockerLab(config, client).network() is None
    finally:
        other.remove()


def test_destroy_names_a_foreign_container_on_the_lab_network(client):
    """A container that is not the lab's, attached to its network: named, nothing removed."""
    network = client.networks.create(
        BAD_NETWORK, labels={LAB_LABEL: BAD_NETWORK},
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=BAD_SUBNET)]),
    )
    # Running: Docker lists (and refuses to remove a network for) running endpoints only.
    foreign = client.containers.run("etcdlab/debian12:offline", ["sleep", "infinity"],
                                    name=f"{BAD_PREFIX}-visitor", network=BAD_NETWORK,
                                    detach=True)
    try:
        before = docker_and_state(client)
        one_error_line(run_invoke("destroy", env=bad_lab_env()),
                       f"container(s) {BAD_PREFIX}-visitor are attached to the lab network "
                       f"{BAD_NETWORK} and are not this lab's: nothing removed")
        assert docker_and_state(client) == before
    finally:
        foreign.remove(force=True)
        network.remove()


def test_docker_not_reachable(unchanged):
    done = run_invoke("provision", env=bad_lab_env(DOCKER_HOST="unix:///nonexistent/docker.sock"))
    one_error_line(done, "cannot reach a Docker engine")
    assert "apt-get install docker.io" in " ".join(done.stderr.split())


def test_doctor_on_this_machine_finds_everything_and_changes_nothing(unchanged):
    done = run_invoke("doctor", env=bad_lab_env())
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("Python 3.11 or newer", "Ansible (ansible-playbook)", "Docker engine",
                  "free disk for the images", "lab network, subnet and shape", "base image",
                  "etcd v"):
        assert check in done.stdout, done.stdout
    assert "missing" not in done.stdout and "ready" in done.stdout


def test_doctor_without_docker_shows_the_fix(unchanged):
    done = run_invoke("doctor", env=bad_lab_env(DOCKER_HOST="unix:///nonexistent/docker.sock"))
    one_error_line(done, "prerequisite(s) missing: Docker engine")
    assert "missing" in done.stdout and "apt-get install docker.io" in done.stdout


def test_unknown_image(unchanged):
    one_error_line(
        run_invoke("provision", "--image", "etcdlab/no-such-image:0", env=bad_lab_env()),
        "image etcdlab/no-such-image:0 is not available locally and cannot be pulled",
    )


def test_missing_archive_file(unchanged):
    one_error_line(
        run_invoke("provision", env=bad_lab_env(INVOKE_LAB_ETCD_ARCHIVE="/nonexistent/e.tgz")),
        "etcd_archive /nonexistent/e.tgz does not exist",
    )


def test_archive_checksum_mismatch(unchanged, tmp_path):
    archive = tmp_path / "etcd-v3.5.6-linux-amd64.tar.gz"
    archive.write_bytes(os.urandom(1024))
    done = run_invoke("provision", env=bad_lab_env(INVOKE_LAB_ETCD_ARCHIVE=str(archive),
                                                   INVOKE_LAB_ETCD_ARCHIVE_SHA256="0" * 64))
    one_error_line(done, f"checksum mismatch for {archive}: expected sha256 {'0' * 64}")


# -- on the running test lab ----------------------------------------------------------------

LAB_CASES = [
    ("reshape-subnet", ["provision", "--subnet", BAD_SUBNET], {},
     f"subnet {TEST_LAB['subnet']} → {BAD_SUBNET}"),
    ("reshape-nodes", ["provision", "--nodes", "5"], {}, "nodes 3 → 5"),
    ("reshape-first-host", ["provision"], {"INVOKE_LAB_FIRST_HOST": "20"}, "first_host 10 → 20"),
    ("reshape-image", ["provision", "--image", "debian:12"], {}, "→ debian:12"),
    ("param-nan-on-a-lab", ["experiment", "election", "--param", "timeout_s=nan"], {},
     "timeout_s must be a finite number > 0 s, got 'nan'"),
]


@pytest.mark.parametrize(("args", "env", "message"), [case[1:] for case in LAB_CASES],
                         ids=[case[0] for case in LAB_CASES])
def test_bad_input_on_a_running_lab(lab, client, args, env, message):
    before = docker_and_state(client)
    done = lab.invoke(*args, check=False, **env)
    one_error_line(done, message)
    if args[0] == "provision":
        assert "run `invoke destroy` first" in " ".join(done.stderr.split())
    assert docker_and_state(client) == before

