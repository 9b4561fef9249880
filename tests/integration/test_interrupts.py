"""The interruption matrix: every experiment that injects a fault, stopped while it is in force.

For each experiment that injects a fault or changes a setting, ``invoke experiment NAME
--quick`` is started; once its fault is journalled (the journal entry is written just
before the fault is applied — no fixed sleep), it gets (a) SIGINT, (b) SIGTERM, or (c)
SIGKILL followed by ``invoke heal``. Afterwards the lab must be exactly as the roles left it:
healthy with one leader, the provisioned quota and no alarm, no partition rule, chronyd
without libfaketime and with the role's files, no lab agent in a node (the clock agents,
lease-drift's clients) and no lab process here, nothing open in the journal; and the run's
result must exist, marked interrupted, with the samples it had taken.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import docker
import pytest

from etcdlab.faults import (
    CHAIN,
    CHRONY_CONF,
    CHRONY_SUPERVISOR_CONF,
    FAULT_ENV,
    FAULT_LAB_ENV,
    NODE_AGENT_MARK,
)
from etcdlab.faults.journal import JOURNAL_FILE, Journal

from .conftest import INVOKE, ROOT

# The journal kind that shows each experiment's first fault is in force.
FAULT_KIND = {
    "election": "etcd",
    "partition": "partition",
    "quota": "settings",
    "ntp-isolation": "chronyd",
    "lease-drift": "node-agent",
    "faulty-clock": "node-agent",
    "membership": "local-process",
}
SIGNALS = ("SIGINT", "SIGTERM", "SIGKILL")
ETCD_CONFIG = "/etc/etcd/etcd.conf.yml"


def journal_of(lab) -> Journal:
    return Journal(lab.config.state_path / JOURNAL_FILE)


def journal_lines(lab) -> int:
    path = journal_of(lab).path
    return len(path.read_text().splitlines()) if path.is_file() else 0


def wait_for_fault(lab, kind: str, skip_lines: int, process: subprocess.Popen,
                   timeout: float = 180.0) -> None:
    """Until a journal line after ``skip_lines`` begins a fault of ``kind``."""
    path = journal_of(lab).path
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            for line in path.read_text().splitlines()[skip_lines:]:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("op") == "begin" and record.get("kind") == kind:
                    return
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the run ended ({process.returncode}) before a {kind} fault:\n"
                        f"{out[-2000:]}\n{err[-2000:]}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {kind} fault journalled within {timeout:.0f} s")


def node_files(lab) -> dict[str, dict[str, str]]:
    """The role's chrony files on every node."""
    nodes = lab.cluster.lab
    return {name: {path: nodes.exec(name, ["cat", path], check=False)[1]
                   for path in (CHRONY_CONF, CHRONY_SUPERVISOR_CONF)}
            for name in lab.config.node_names}


@pytest.fixture(scope="module")
def role_state(lab):
    """The chrony files as provisioned, before any interruption."""
    return node_files(lab)


def lab_processes_here(lab) -> list[int]:
    """Local processes that a fault of this test lab started (by their environment)."""
    this_lab = f"{FAULT_LAB_ENV}={lab.config.state_path}".encode()
    found = []
    for folder in Path("/proc").iterdir():
        if not folder.name.isdigit():
            continue
        try:
            environ = (folder / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if this_lab in environ and any(v.startswith(FAULT_ENV.encode() + b"=") for v in environ):
            found.append(int(folder.name))
    return found


def assert_lab_whole(lab, role_state, output: str = "") -> None:
    nodes = lab.status_json()
    assert all(n["healthy"] for n in nodes), nodes
    assert sum(n["is_leader"] for n in nodes) == 1, nodes
    assert journal_of(lab).open_entries() == [], output[-4000:]
    backend = lab.cluster.lab
    wanted_quota = f"quota-backend-bytes: {lab.config.etcd_quota_backend_bytes}"
    for name in lab.config.node_names:
        _code, rules = backend.exec(name, ["iptables", "-w", "-S", CHAIN], check=False)
        assert "DROP" not in rules, (name, rules)
        _code, config = backend.exec(name, ["cat", ETCD_CONFIG])
        assert wanted_quota in config, (name, config)
        pid = backend.process_pid(name, "chronyd")
        assert pid is not None, f"{name}: chronyd is not running"
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"LD_PRELOAD" not in environ and b"FAKETIME" not in environ, name
        code, agents = backend.exec(name, ["pgrep", "-f", "--", NODE_AGENT_MARK], check=False)
        assert code != 0, (name, agents)
    assert node_files(lab) == role_state
    for name in lab.config.node_names:
        with lab.cluster.client(name) as client:
            assert list(client.list_alarms()) == [], name
    assert lab_processes_here(lab) == []


@pytest.fixture
def isolated(lab):
    """One failing case must not fail the next ones: what it left open is healed after it."""
    yield
    if journal_of(lab).open_entries():
        lab.invoke("heal", check=False)


@pytest.mark.parametrize("how", SIGNALS)
@pytest.mark.parametrize("name", list(FAULT_KIND))
def test_interrupted_run_leaves_the_lab_whole_and_keeps_its_samples(lab, role_state, tmp_path,
                                                                     isolated, name, how):
    skip = journal_lines(lab)
    process = subprocess.Popen(
        [*INVOKE, *lab.profile, "experiment", name, "--quick", "--results", str(tmp_path)],
        cwd=ROOT, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for_fault(lab, FAULT_KIND[name], skip, process)
    if FAULT_KIND[name] == "local-process":
        # The check below must be able to see such a process: here one is running.
        deadline = time.monotonic() + 30
        while not lab_processes_here(lab) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lab_processes_here(lab), "the journalled local process was not found"
    os.kill(process.pid, getattr(signal, how))
    out, err = process.communicate(timeout=600)
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
        healed = lab.invoke("heal", check=False)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert "partial samples kept in" in healed.stdout, healed.stdout
    else:
        assert process.returncode == 130, out[-3000:] + err[-3000:]
        assert f"interrupted ({how})" in out + err
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["status"] == "interrupted", result["error"]
    assert isinstance(result["samples"], dict)
    assert not (tmp_path / f"{name}.partial.json").exists()
    assert_lab_whole(lab, role_state, out + err)


def test_a_killed_run_leaves_no_temporary_lab_behind(lab, role_state, tmp_path, isolated):
    """Q1's other sizes run on a temporary lab of their own: written down in the lab's
    journal before it is created, so `invoke heal` removes it after a kill."""
    client = docker.from_env(version="auto")
    network = f"{lab.config.network}-sizes"

    def temporary() -> list[str]:
        # A container removed between Docker's list and its inspect (any on this machine)
        # is skipped, not an error.
        return [c.name for c in client.containers.list(all=True, ignore_removed=True)
                if network in (c.attrs["NetworkSettings"]["Networks"] or {})]

    skip = journal_lines(lab)
    process = subprocess.Popen(
        [*INVOKE, *lab.profile, "experiment", "election", "--quick", "--results", str(tmp_path),
         "--param", "trials=1", "--param", "sweep_trials=0", "--param", "sizes=4",
         "--param", "size_trials=1"],
        cwd=ROOT, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for_fault(lab, "temporary-lab", skip, process, timeout=300)
    deadline = time.monotonic() + 120
    while len(temporary()) < 4 and time.monotonic() < deadline:  # its containers exist
        time.sleep(0.2)
    assert len(temporary()) == 4, temporary()
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    healed = lab.invoke("heal", check=False)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert temporary() == [] and not client.networks.list(names=[network]), temporary()
    assert_lab_whole(lab, role_state, healed.stdout)
