"""The same roles on stand-in VMs: systemd as PID 1, reached over SSH, etcd over TLS."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import etcd3
import grpc
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from etcd3 import etcdrpc

from etcdlab.etcd.transport import close_all, open_members
from etcdlab.lab.cluster import Cluster
from etcdlab.lab.config import LabConfig
from etcdlab.lab.nodes import SshNodes

from . import vm_hosts
from .conftest import lab_env, run_invoke


@pytest.fixture(scope="module")
def vms(docker_engine):
    """Three systemd "VMs" with sshd; removed (containers, network, keys) afterwards."""
    hosts = vm_hosts.start(3)
    try:
        yield hosts
    finally:
        vm_hosts.remove(hosts.workdir)


@pytest.fixture(scope="module")
def on_vms(vms):
    """Run `invoke TASK ... --inventory <the VMs>`; the first call provisions them."""
    env, profile = lab_env()

    def invoke(task: str, *args: str, check: bool = True, env_extra: dict | None = None):
        done = run_invoke(*profile, task, *args, "--inventory", str(vms.inventory),
                          env={**env, **(env_extra or {})})
        if check and done.returncode != 0:
            raise AssertionError(f"invoke {task} failed:\n{done.stdout}\n{done.stderr}")
        return done

    invoke.first = invoke("provision")
    return invoke


def config_for(vms) -> LabConfig:
    return LabConfig(inventory=str(vms.inventory))


def test_provision_over_ssh_creates_nothing_and_reports_each_host(on_vms, vms):
    out = on_vms.first.stdout
    for name in vms.names:
        assert f"{name} : ok=" in out
    assert "existing hosts" in out
    assert "created" not in out


def test_members_run_as_systemd_units_with_tls_one_leader_and_chrony(on_vms, vms):
    nodes = SshNodes(config_for(vms))
    for name in vms.names:
        code, out = nodes.exec(name, ["systemctl", "is-active", "etcd", "chrony"], check=False)
        assert out.split() == ["active", "active"], (name, out)
    deadline = time.monotonic() + 60
    while True:
        status = json.loads(on_vms("status", "--json", check=False).stdout)
        if all(n["chrony_synced"] for n in status) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert all(n["healthy"] for n in status), status
    assert sum(n["is_leader"] for n in status) == 1
    assert all(n["chrony_synced"] for n in status), status
    assert [n["chrony_role"] for n in status] == ["server", "client", "client"]


def test_clients_without_the_lab_certificate_are_refused(on_vms, vms):
    cluster = Cluster(config_for(vms))
    assert cluster.tls
    with cluster.client(vms.names[0]) as client:  # with the lab's client certificate
        client.put("/etcdlab/tls-check", "ok")
    ca = (cluster.config.pki_path / "client-ca.crt").read_bytes()
    address = cluster.endpoint(vms.names[0])
    for channel in (grpc.insecure_channel(address),
                    grpc.secure_channel(address, grpc.ssl_channel_credentials(ca))):
        with pytest.raises(grpc.RpcError):
            etcdrpc.MaintenanceStub(channel).Status(etcdrpc.StatusRequest(), timeout=3)
        channel.close()


PEER_GET = """
import json, ssl, sys, urllib.request
url, ca, cert = sys.argv[1:]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert + ".crt", cert + ".key")
try:
    with urllib.request.urlopen(url + "/members", context=context, timeout=5) as answer:
        print(json.dumps([m["name"] for m in json.loads(answer.read())]))
except OSError as error:
    print(json.dumps(repr(error)))
"""
"""GET /members on a peer port presenting a certificate: the names, or the error's repr."""


def _peer_members(where, url: str, ca: str, cert: str) -> list[str] | str:
    if where is None:  # the controller
        done = subprocess.run([sys.executable, "-c", PEER_GET, url, ca, cert],
                              capture_output=True, text=True, check=True)
        return json.loads(done.stdout)
    nodes, name = where
    _, out = nodes.exec(name, ["python3", "-c", PEER_GET, url, ca, cert])
    return json.loads(out)


def test_the_peer_port_accepts_only_certificates_of_the_peer_ca(on_vms, vms):
    config = config_for(vms)
    cluster, nodes = Cluster(config), SshNodes(config)
    url = f"https://{cluster.ips[vms.names[0]]}:2380"
    pki, on_member = "/etc/etcd/pki", (nodes, vms.names[1])
    # etcd also checks that a peer certificate's IP SANs name the address it connects
    # from, so the peer certificate is tried from its own member; the client certificates
    # carry no SANs, so there only the CA decides.
    members = _peer_members(on_member, url, f"{pki}/peer-ca.crt", f"{pki}/peer")
    assert sorted(members) == sorted(vms.names)
    refused = [
        _peer_members(on_member, url, f"{pki}/peer-ca.crt", f"{pki}/client"),  # member's
        _peer_members(None, url, str(config.pki_path / "peer-ca.crt"),
                      str(config.pki_path / "client")),  # root's, from the controller
    ]
    assert all(isinstance(answer, str) for answer in refused), refused


def test_each_certificate_has_one_purpose_and_its_ports_ca(on_vms, vms):
    pki = Cluster(config_for(vms)).config.pki_path

    def load(stem: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((pki / f"{stem}.crt").read_bytes())

    server, client = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
    client_ca, peer_ca = load("client-ca").subject, load("peer-ca").subject
    assert client_ca != peer_ca
    expected = {"client": ([client], client_ca)}
    for name in vms.names:
        expected |= {f"{name}.server": ([server], client_ca),
                     f"{name}.peer": ([server, client], peer_ca),
                     f"{name}.client": ([client], client_ca)}
    for stem, (usages, issuer) in expected.items():
        cert = load(stem)
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert (list(usage), cert.issuer) == (usages, issuer), stem


def test_second_provision_over_ssh_changes_nothing(on_vms, vms):
    again = on_vms("provision")
    for name in vms.names:
        line = next(x for x in again.stdout.splitlines() if x.strip().startswith(f"{name} :"))
        assert "changed=0" in line, line


def test_experiments_run_over_ssh_and_tls_or_say_why_not(on_vms, vms, tmp_path):
    done = on_vms("experiment", "conflicts", "--quick", "--results", str(tmp_path))
    result = json.loads((tmp_path / "conflicts.json").read_text())
    assert result["status"] == "ok", done.stdout
    assert result["summary"]["cas"]["lost_updates"] == 0
    assert result["metadata"]["transport"] == "ssh" and result["metadata"]["tls"] is True
    refused = on_vms("experiment", "ntp-isolation", "--quick", "--results", str(tmp_path),
                     check=False)
    assert refused.returncode == 1
    assert "ntp-isolation needs the container lab" in " ".join(refused.stderr.split())


def test_auth_limits_the_lab_user_and_keeps_secrets_out_of_artifacts(on_vms, vms):
    enabled = on_vms("provision", env_extra={"INVOKE_LAB_ETCD_AUTH": "true"})
    assert "provisioned" in enabled.stdout
    config = LabConfig(inventory=str(vms.inventory), etcd_auth=True)
    secrets_file = config.state_path / "secrets.yml"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    for key in config.pki_path.glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    secrets = yaml.safe_load(secrets_file.read_text())
    for path in (config.state_path / "artifacts").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert secrets["etcd_lab_password"] not in text, path
            assert secrets["etcd_root_password"] not in text, path
    cluster = Cluster(config)
    pki, member = config.pki_path, vms.names[0]
    tls = {"ca_cert": str(pki / "client-ca.crt"), "cert_cert": str(pki / f"{member}.client.crt"),
           "cert_key": str(pki / f"{member}.client.key")}
    host = cluster.ips[member]
    anonymous = etcd3.client(host=host, port=2379, timeout=5, **tls)  # a cert, no etcd user
    with pytest.raises(Exception, match="(?i)permission denied|user name"):
        anonymous.put("/etcdlab/anonymous", "x")
    anonymous.close()
    lab_user = etcd3.client(host=host, port=2379, timeout=5, user="lab",
                            password=secrets["etcd_lab_password"], **tls)
    for key in ("/etcdlab/allowed", "/services/allowed"):  # the experiments', the registry's
        lab_user.put(key, "yes")
        assert lab_user.get(key)[0] == b"yes"
    with pytest.raises(Exception, match="(?i)permission denied"):
        lab_user.put("/outside", "no")
    lab_user.close()
    status = json.loads(on_vms("status", "--json", env_extra={"INVOKE_LAB_ETCD_AUTH": "true"},
                               check=False).stdout)
    assert all(n["healthy"] for n in status)  # Status as the lab user (certificate CN lab)
    members = open_members(cluster)
    try:
        each = members[member]
        each.put("/etcdlab/as-lab", "yes")  # the lab's tools act as `lab`...
        with pytest.raises(grpc.RpcError, match="(?i)permission denied"):
            each.put("/outside", "no")
        assert each.hash_kv().hash  # ...and as root for HashKV alone (and Defragment)
    finally:
        close_all(members)


def test_experiments_run_as_the_lab_user_with_auth_on(on_vms, vms, tmp_path):
    done = on_vms("experiment", "conflicts", "--quick", "--results", str(tmp_path),
                  env_extra={"INVOKE_LAB_ETCD_AUTH": "true"})
    result = json.loads((tmp_path / "conflicts.json").read_text())
    assert result["status"] == "ok", done.stdout
    assert result["summary"]["cas"]["lost_updates"] == 0


def test_a_changed_host_key_is_refused_with_one_error_and_nothing_applied(on_vms, vms):
    name = vms.names[0]
    known = config_for(vms).known_hosts_path
    recorded = known.read_text()
    vm_hosts.client().containers.get(name).exec_run(
        ["sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh"])
    vm_hosts.wait_for_ssh(vms.ips[name])
    refused = on_vms("provision", check=False)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert (f"{name}: the SSH host key of {vms.ips[name]} is not the one recorded"
            in " ".join(refused.stderr.split()))
    assert "PLAY RECAP" not in refused.stdout  # refused before any task ran
    assert known.read_text() == recorded  # the recorded key is kept, not replaced
    # As the message says: forget the old key, and the rebuilt host is accepted again.
    subprocess.run(["ssh-keygen", "-R", vms.ips[name], "-f", str(known)], check=True,
                   capture_output=True)
    status = json.loads(on_vms("status", "--json", check=False).stdout)
    assert all(n["healthy"] for n in status), status


@pytest.mark.last
def test_destroy_keeps_hosts_unless_purge(on_vms, vms):
    kept = on_vms("destroy")
    assert "nothing removed" in " ".join(kept.stdout.split())
    nodes = SshNodes(config_for(vms))
    assert nodes.exec(vms.names[0], ["systemctl", "is-active", "etcd"], check=False)[0] == 0
    purged = on_vms("destroy", "--purge")
    assert "purged etcd and chrony from 3 host(s)" in purged.stdout
    for name in vms.names:
        code, _ = nodes.exec(name, ["test", "-e", "/usr/local/bin/etcd"], check=False)
        assert code != 0, name
        assert nodes.exec(name, ["systemctl", "is-active", "etcd"], check=False)[0] != 0
