"""Hosts from an inventory, and the SSH command lines that reach them."""

import os
import textwrap

import pytest

from etcdlab.errors import LabError
from etcdlab.lab.config import LabConfig
from etcdlab.lab.nodes import SshNodes, inventory_hosts
from etcdlab.lab.provision import role_variables

INVENTORY = textwrap.dedent("""
    all:
      vars:
        ansible_user: ubuntu
        ansible_become: true
        ansible_ssh_common_args: "-o StrictHostKeyChecking=no"
      children:
        etcd:
          hosts:
            vm1: {ansible_host: 192.0.2.11}
            vm2: {ansible_host: vm2.example, etcd_member_ip: 192.0.2.12, ansible_port: 2222}
        chrony_server:
          hosts: {vm1: {}}
        chrony_client:
          hosts: {vm2: {}}
""")


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "vms.yml"
    path.write_text(INVENTORY)
    return path


def test_inventory_hosts_resolve_addresses_users_and_member_ips(inventory):
    vm1, vm2 = inventory_hosts(inventory)
    assert (vm1.name, vm1.address, vm1.member_ip, vm1.port) == ("vm1", "192.0.2.11",
                                                                "192.0.2.11", 22)
    assert (vm2.address, vm2.member_ip, vm2.port) == ("vm2.example", "192.0.2.12", 2222)
    assert vm1.user == "ubuntu" and vm1.become is True


def test_inventory_without_etcd_group_is_refused(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("all:\n  hosts:\n    lonely: {}\n")
    with pytest.raises(LabError, match="no hosts in the group `etcd`"):
        inventory_hosts(path)


def test_ssh_command_uses_sudo_for_a_non_root_become_user(inventory):
    nodes = SshNodes(LabConfig(inventory=str(inventory)))
    command = nodes.ssh_command("vm2", ["pkill", "-KILL", "-x", "etcd"])
    assert command[:2] == ["ssh", "-o"]
    assert command[command.index("-p"):command.index("-p") + 2] == ["-p", "2222"]
    assert "StrictHostKeyChecking=no" in command
    assert command[-2:] == ["ubuntu@vm2.example", "sudo -n pkill -KILL -x etcd"]
    assert nodes.ips == {"vm1": "192.0.2.11", "vm2": "192.0.2.12"}


def test_tls_is_on_by_default_for_hosts_and_off_for_containers(inventory):
    assert LabConfig().tls_enabled is False
    assert LabConfig(inventory=str(inventory)).tls_enabled is True
    assert LabConfig(inventory=str(inventory), etcd_tls="false").tls_enabled is False
    assert LabConfig.from_mapping({"etcd_tls": True}).tls_enabled is True


def test_auth_needs_tls_and_inventory_must_exist():
    with pytest.raises(LabError, match="etcd_auth needs TLS"):
        LabConfig(etcd_auth=True)
    with pytest.raises(LabError, match="inventory /nope.yml does not exist"):
        LabConfig(inventory="/nope.yml")


def test_hosts_get_no_container_only_chrony_settings(inventory):
    variables = role_variables(LabConfig(inventory=str(inventory)), ["192.0.2.11", "192.0.2.12"])
    assert "chrony_no_system_clock" not in variables
    assert "chrony_servers" not in variables
    assert variables["chrony_allow"] == ["192.0.2.11/32", "192.0.2.12/32"]
    assert variables["etcd_tls"] is True


def write(tmp_path, text: str):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_members_in_child_groups_of_etcd_are_found(tmp_path):
    path = write(tmp_path, """
        all:
          children:
            etcd:
              children:
                etcd_east: {hosts: {vm1: {ansible_host: 192.0.2.11}}}
                etcd_west: {hosts: {vm2: {ansible_host: 192.0.2.12}}}
    """)
    assert [h.name for h in inventory_hosts(path)] == ["vm1", "vm2"]


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("ca: {ansible_host: 192.0.2.11}", "collides with the lab's own PKI files"),
        ("client: {ansible_host: 192.0.2.11}", "collides with the lab's own PKI files"),
        ("peer-ca: {ansible_host: 192.0.2.11}", "collides with the lab's own PKI files"),
        ('vm1: {ansible_host: 192.0.2.11, etcd_member_ip: "1.2.3.4; reboot"}',
         "etcd_member_ip '1.2.3.4; reboot' is not an IP address"),
        ('vm1: {ansible_host: "-oProxyCommand=id"}', "is neither an IP address nor a host name"),
        ("vm1: {ansible_host: vm1.example}", "etcd_member_ip 'vm1.example' is not an IP"),
        ('vm1: {ansible_host: 192.0.2.11, ansible_user: "-oX"}', "is not a user name"),
        ("vm1: {ansible_host: 192.0.2.11, ansible_port: 70000}", "is not a port"),
    ],
)
def test_inventory_values_that_would_reach_a_shell_or_a_file_name_are_refused(
        tmp_path, host, message):
    path = write(tmp_path, f"""
        all:
          children:
            etcd:
              hosts:
                {host}
    """)
    with pytest.raises(LabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        inventory_hosts(path)


def test_the_destination_follows_a_double_dash(inventory):
    command = SshNodes(LabConfig(inventory=str(inventory))).ssh_command("vm1", ["true"])
    assert command[-3:] == ["--", "ubuntu@192.0.2.11", "sudo -n true"]


def test_ssh_pins_host_keys_in_the_labs_known_hosts(inventory):
    config = LabConfig(inventory=str(inventory))
    command = SshNodes(config).ssh_command("vm1", ["true"])
    pinned = ["-o", "StrictHostKeyChecking=accept-new",
              "-o", f"UserKnownHostsFile={config.known_hosts_path}"]
    start = command.index(pinned[1]) - 1
    assert command[start:start + 4] == pinned
    # Before the inventory's own "-o StrictHostKeyChecking=no": ssh keeps the first value.
    assert start < command.index("StrictHostKeyChecking=no")
    assert config.known_hosts_path.parent == config.state_path


def test_a_changed_host_key_is_refused_with_how_to_forget_it(inventory, tmp_path, monkeypatch):
    """What ssh prints for a changed key becomes one clear LabError (ssh itself stubbed)."""
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho '@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@'"
                    " >&2\necho 'Host key verification failed.' >&2\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    nodes = SshNodes(LabConfig(inventory=str(inventory)))
    with pytest.raises(LabError, match=r"vm1: the SSH host key of 192\.0\.2\.11 is not the one "
                                       r"recorded in .*known_hosts: refused.*ssh-keygen -R"):
        nodes.exec("vm1", ["true"])


def test_a_node_process_reads_whole_lines_from_chunks_cut_anywhere():
    from etcdlab.lab.nodes import NodeProcess, _text_lines

    chunks = [b'{"event": "sta', b'rted"}\n{"ev', b'ent": "x"}\n\nhalf', b" a line"]
    assert list(_text_lines(iter(chunks))) == [
        '{"event": "started"}\n', '{"event": "x"}\n', "\n", "half a line"]
    codes = iter([None, None, 0])
    process = NodeProcess(iter(()), lambda: next(codes), ["python3"])
    assert process.wait(5) == 0
    never = NodeProcess(iter(()), lambda: None, ["python3"])
    with pytest.raises(Exception, match="timed out"):
        never.wait(0.1)
