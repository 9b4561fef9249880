"""The provisioned lab: etcd members, leader, replication, chrony, idempotency, destroy."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid

import docker
import pytest

from etcdlab.lab.docker_cluster import BUILDER_LABEL, LAB_LABEL
from etcdlab.lab.node_image import HASH_LABEL, REPOSITORY


def test_provision_prints_progress_recap_status_and_elapsed_time(lab):
    out = lab.first_provision.stdout
    assert "Install" in out  # task-by-task progress lines name the tasks
    assert "PLAY RECAP" in out
    for name in lab.config.node_names:
        assert f"{name} : ok=" in out
    assert "etcdlab status" in out
    assert "provisioned 3 node(s) in" in out


def test_the_nodes_run_the_node_image_and_got_only_the_configure_phase(lab):
    out = lab.first_provision.stdout
    # A first provision on this machine builds the image first (the builder's lines).
    _, applying, playbook = out.partition("applying playbooks/site.yml")
    assert applying and "configure phase" in playbook
    assert "Install the chrony package." not in playbook  # the install phase is in the image
    client = docker.from_env(version="auto")
    images = {client.containers.get(name).attrs["Config"]["Image"]
              for name in lab.config.node_names}
    assert len(images) == 1 and next(iter(images)).startswith(f"{REPOSITORY}:"), images
    (tag,) = images
    assert client.images.get(tag).labels[HASH_LABEL].startswith(tag.rpartition(":")[2])
    assert f"image {tag}" in out
    builders = client.containers.list(
        all=True, filters={"label": f"{BUILDER_LABEL}={lab.config.network}"})
    assert builders == []
    assert f"image: {tag} (node image)" in lab.invoke("status").stdout
    again = lab.invoke("image")
    assert f"node image ready: {tag}" in again.stdout  # reused: same inputs, same hash


def test_every_member_is_healthy_with_exactly_one_leader(lab):
    nodes = lab.status_json()
    assert [n["name"] for n in nodes] == lab.config.node_names
    assert all(n["healthy"] for n in nodes), nodes
    assert sum(n["is_leader"] for n in nodes) == 1
    assert len({n["member_id"] for n in nodes}) == 3
    assert len({n["raft_term"] for n in nodes}) == 1
    assert all(n["etcd_version"].startswith("3.5.") for n in nodes)
    assert all(n["db_size"] > 0 for n in nodes)
    for node, ip in zip(nodes, lab.config.node_ips.values(), strict=True):
        assert node["ip"] == ip


def test_a_put_through_one_member_is_read_linearizably_through_every_other(lab):
    cluster = lab.cluster
    key, value = f"/test/replication/{uuid.uuid4().hex}", uuid.uuid4().hex
    writer, *readers = cluster.names
    with cluster.client(writer) as client:
        client.put(key, value)
    for name in readers:
        with cluster.client(name) as client:
            read, meta = client.get(key)  # python3-etcd3 reads are linearizable by default
            assert read is not None, name
            assert read.decode() == value
            assert meta.key.decode() == key


def test_chrony_clients_select_the_lab_time_server(lab):
    server_ip = lab.config.node_ips[lab.config.node_names[0]]
    deadline = time.monotonic() + 90
    while True:
        nodes = lab.status_json()
        clients = [n for n in nodes if n["chrony_role"] == "client"]
        if clients and all(n["chrony_synced"] for n in clients):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"chrony clients not synced after 90 s: {clients}")
        time.sleep(3)
    assert [n["chrony_role"] for n in nodes] == ["server", "client", "client"]
    assert all(n["chrony_source"] == server_ip for n in clients)
    assert all(abs(n["chrony_offset_ms"]) < 50 for n in clients)


def test_second_provision_changes_nothing(lab):
    again = lab.invoke("provision")
    for name in lab.config.node_names:
        assert f"{name} : ok=" in again.stdout
        line = next(x for x in again.stdout.splitlines() if x.strip().startswith(f"{name} :"))
        assert "changed=0" in line, line
    assert "no changes" in again.stdout
    assert "configure phase, no changes" in again.stdout
    # The facts the first run gathered were kept for the lab: none gathered again.
    gather = next(x for x in again.stdout.splitlines()
                  if x.strip().startswith("Gather the facts the roles use once"))
    assert gather.count("skipped") == len(lab.config.node_names), gather
    cached = [p.name for p in (lab.config.state_path / "facts").iterdir()]
    assert all(any(c.endswith(name) for c in cached) for name in lab.config.node_names), cached


def test_the_whole_playbook_on_node_image_containers_changes_nothing(lab):
    # What real hosts run: the install phase too. It finds everything in place, so the
    # image holds exactly what the install phase makes.
    again = lab.invoke("provision", INVOKE_LAB_NODE_IMAGE="false")
    assert "Install the chrony package." in again.stdout
    for name in lab.config.node_names:
        line = next(x for x in again.stdout.splitlines() if x.strip().startswith(f"{name} :"))
        assert "changed=0" in line, line
    assert "install and configure phases, no changes" in again.stdout


def test_plain_community_docker_connection_also_changes_nothing(lab):
    again = lab.invoke("provision", INVOKE_LAB_ANSIBLE_ACCELERATOR="none")
    for name in lab.config.node_names:
        line = next(x for x in again.stdout.splitlines() if x.strip().startswith(f"{name} :"))
        assert "changed=0" in line, line
    assert "no changes" in again.stdout


def test_status_table_shows_every_column(lab):
    out = lab.invoke("status").stdout
    for column in ("node", "ip", "etcd", "member id", "role", "term", "index", "db size",
                   "health", "chrony source", "offset", "stratum"):
        assert column in out
    assert "leader" in out and "follower" in out


def test_tasks_find_the_lab_on_a_network_as_it_was_provisioned(lab):
    # Only the network given: the default prefix (node) and subnet do not match the test
    # lab's, so status must use the prefix, size and subnet the lab was provisioned with.
    done = lab.invoke("status", "--json", INVOKE_LAB_PREFIX="node",
                      INVOKE_LAB_SUBNET="172.21.0.0/16")
    nodes = json.loads(done.stdout)
    assert "as provisioned" in done.stderr
    assert [n["name"] for n in nodes] == lab.config.node_names
    assert [n["ip"] for n in nodes] == list(lab.config.node_ips.values())
    assert all(n["healthy"] for n in nodes)


def test_bench_times_the_floor_and_the_provisions_on_a_lab_of_its_own_and_leaves_none(
        lab, tmp_path):
    octet = ipaddress.ip_network(lab.config.subnet).network_address.packed[1]
    network, subnet = f"{lab.config.network}-bench", f"10.{100 + octet % 100}.0.0/16"
    done = lab.invoke("bench", "--sizes", "1", "--no-lab", "--network", network,
                      "--subnet", subnet, "--prefix", f"{lab.config.prefix}b",
                      "--results", str(tmp_path))
    record = json.loads((tmp_path / "bench.json").read_text())
    steps = {s["step"]: s for s in record["steps"]}
    assert {"floor", "cold", "rerun"} <= set(steps), record
    assert all(steps[k]["outcome"] == "ok" and steps[k]["seconds"] > 0
               for k in ("floor", "cold", "rerun")), record
    assert "no changes" in steps["rerun"]["detail"]
    assert record["cpus"] >= 1 and record["image"].startswith(f"{REPOSITORY}:")
    assert "docker run of bare etcd (the floor)" in done.stdout
    assert "one size only" in done.stdout
    client = docker.from_env(version="auto")
    label = f"{LAB_LABEL}={network}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    nodes = lab.status_json()  # the lab the bench ran beside is untouched
    assert len(nodes) == lab.config.nodes and all(n["healthy"] for n in nodes), nodes


@pytest.mark.last
def test_destroy_removes_exactly_the_lab_and_is_safe_twice(lab):
    client = docker.from_env(version="auto")
    bystander = client.containers.run(
        lab.config.offline_image, ["sleep", "60"], detach=True, remove=True,
        labels={"purpose": "etcdlab-test-bystander"},
    )
    try:
        first = lab.invoke("destroy")
        assert "destroyed 3 container(s)" in first.stdout
        label = f"{LAB_LABEL}={lab.config.network}"
        assert client.containers.list(all=True, filters={"label": label}) == []
        assert client.networks.list(filters={"label": label}) == []
        bystander.reload()
        assert bystander.status == "running"
        second = lab.invoke("destroy")
        assert "nothing to destroy" in second.stdout
    finally:
        bystander.remove(force=True)
