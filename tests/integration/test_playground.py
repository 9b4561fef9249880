"""The playground as a person uses it: `invoke watch` in tmux while `invoke fault` breaks the
lab from another process, `invoke faults` and `invoke heal`; bad input; a kill -9 during a
settings change healed with no process left; `invoke tour --yes` to its end.

All against the real test lab, through the real `invoke`.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from etcdlab.faults import CHAIN, leftovers
from etcdlab.faults.journal import JOURNAL_FILE

from .conftest import INVOKE, ROOT, one_error_line
from .test_interrupts import journal_lines, wait_for_fault

ETCD_CONFIG = "/etc/etcd/etcd.conf.yml"
TMUX = "/usr/bin/tmux"


def journal_text(lab) -> str:
    path = lab.config.state_path / JOURNAL_FILE
    return path.read_text() if path.is_file() else ""


def rules(lab) -> dict[str, str]:
    nodes = lab.cluster.lab
    return {name: nodes.exec(name, ["iptables", "-w", "-S", CHAIN], check=False)[1]
            for name in lab.config.node_names}


def lab_state(lab) -> dict[str, object]:
    """What a fault would change: the journal, partition rules, etcd and chronyd processes,
    etcd's configured quota."""
    nodes = lab.cluster.lab
    return {"journal": journal_text(lab), "rules": rules(lab),
            "etcd": {n: nodes.process_pid(n, "etcd") for n in lab.config.node_names},
            "chronyd": {n: nodes.process_pid(n, "chronyd") for n in lab.config.node_names},
            "quota": {n: nodes.exec(n, ["grep", "quota", ETCD_CONFIG])[1]
                      for n in lab.config.node_names}}


def assert_whole(lab) -> None:
    nodes = lab.status_json()
    assert all(n["healthy"] for n in nodes), nodes
    assert sum(n["is_leader"] for n in nodes) == 1, nodes
    assert all("DROP" not in text for text in rules(lab).values()), rules(lab)
    assert _open_entries(lab) == [], journal_text(lab)


def _open_entries(lab):
    from etcdlab.faults.journal import Journal

    return Journal(lab.config.state_path / JOURNAL_FILE).open_entries()


@pytest.fixture
def healed_after(lab):
    yield
    if _open_entries(lab):
        lab.invoke("heal", check=False)


class Tmux:
    """A tmux server of this test's own (its own socket), 80 columns wide."""

    def __init__(self) -> None:
        self.socket = f"etcdlab-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True,
                              text=True, check=check)

    def start(self, command: list[str], env: dict[str, str]) -> None:
        # the server takes the environment of the first client: every variable the task
        # needs is put on its command line instead
        wanted = {k: v for k, v in env.items() if k.startswith(("INVOKE_LAB_", "ETCDLAB_"))}
        line = shlex.join(["env", *(f"{k}={v}" for k, v in wanted.items()), *command])
        self.run("new-session", "-d", "-s", "watch", "-x", "80", "-y", "40", "-c", str(ROOT),
                 line)

    def screen(self) -> str:
        done = self.run("capture-pane", "-p", "-t", "watch", check=False)
        return done.stdout

    def alive(self) -> bool:
        return self.run("has-session", "-t", "watch", check=False).returncode == 0

    def close(self) -> None:
        self.run("kill-server", check=False)


def wait_screen(tmux: Tmux, test, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.screen()
        if test(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"not on the screen within {timeout:.0f} s:\n{screen}")


@pytest.mark.skipif(not Path(TMUX).exists(), reason="needs tmux")
def test_watch_in_tmux_shows_the_new_leader_after_a_crash_of_the_leader(lab, healed_after):
    lab.invoke("heal")
    names = lab.config.node_names
    tmux = Tmux()
    tmux.start([str(Path(INVOKE[0]).parent / "invoke"), *lab.profile, "watch", "--probe"],
               lab.env)
    try:
        screen = wait_screen(tmux, lambda s: "is the leader, term" in s, 60)
        for name in names:
            assert name in screen
        old = next(n["name"] for n in lab.status_json() if n["is_leader"])
        started = time.monotonic()
        crashed = lab.invoke("fault", "crash", "leader")
        assert f"the leader is {old}" in crashed.stdout, crashed.stdout

        def new_leader_elected(text: str) -> bool:
            return any("elected" in line and any(n in line for n in names if n != old)
                       for line in text.splitlines())

        screen = wait_screen(tmux, new_leader_elected, 10)
        seen_after = time.monotonic() - started
        assert seen_after < 10
        assert f"{old} crashed (SIGKILL)" in screen
        elected = next(line for line in screen.splitlines() if "elected" in line)
        print(f"\n'elected' on screen {seen_after:.2f} s after `invoke fault crash leader` "
              f"started:\n{screen}")
        assert "after the crash" in elected
        assert all(len(line) <= 80 for line in screen.splitlines())

        listed = lab.invoke("faults")
        assert "crash" in listed.stdout and f"{old} (leader)" in listed.stdout, listed.stdout

        healed = lab.invoke("heal")
        assert "healed" in healed.stdout
        assert_whole(lab)
        wait_screen(tmux, lambda s: f"healed: {old} crashed" in s, 10)

        tmux.run("send-keys", "-t", "watch", "q")
        deadline = time.monotonic() + 10
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "q did not end the watch"
    finally:
        tmux.close()
    assert not [p for p in _pids_running("watch") if str(lab.config.network) in p]


def _pids_running(word: str) -> list[str]:
    done = subprocess.run(["pgrep", "-af", word], capture_output=True, text=True, check=False)
    return [line for line in done.stdout.splitlines() if "invoke" in line]


def test_a_partition_by_hand_is_listed_and_heal_leaves_no_rule(lab, healed_after):
    lab.invoke("heal")
    member = lab.config.node_names[1]
    cut = lab.invoke("fault", "partition", member)
    assert f"{member} cut off" in cut.stdout
    assert "DROP" in rules(lab)[member]
    # the fault outlives the process that applied it: listed, and still in force
    listed = lab.invoke("faults")
    assert "partition" in listed.stdout and member in listed.stdout, listed.stdout
    assert "DROP" in rules(lab)[member]
    # an experiment would heal it when it ends: it does not start while it is in force
    refused = lab.invoke("experiment", "conflicts", "--quick", check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "fault(s) typed by hand are in force" in refused.stderr, refused.stderr
    assert "DROP" in rules(lab)[member]
    healed = lab.invoke("heal")
    assert "rules removed" in healed.stdout, healed.stdout
    assert all("DROP" not in text for text in rules(lab).values()), rules(lab)
    assert lab.invoke("faults").stdout.strip().endswith("no active fault")
    assert_whole(lab)


def test_heal_id_undoes_one_fault_and_keeps_the_other(lab, healed_after):
    lab.invoke("heal")
    first, second, third = lab.config.node_names
    crash = lab.invoke("fault", "crash", third).stdout
    cut = lab.invoke("fault", "partition", second, "--from", first, "--one-way", "in").stdout
    crash_id = crash.split("fault ")[1].split(":")[0]
    assert "receives nothing" in cut
    lab.invoke("heal", crash_id)
    assert lab.cluster.lab.process_pid(third, "etcd") is not None
    assert "DROP" in rules(lab)[second]  # the other fault is still in force
    listed = lab.invoke("faults").stdout
    assert crash_id not in listed and "partition" in listed
    lab.invoke("heal")
    assert_whole(lab)


BAD = [
    (["fault"], "no fault kind given: valid kinds are crash, stop, pause, restart"),
    (["fault", "explode", "leader"], "unknown fault kind 'explode': valid kinds are"),
    (["fault", "crash"], "crash needs a TARGET: valid targets are"),
    (["fault", "crash", "nosuchnode"], "unknown target 'nosuchnode': valid targets are"),
    (["fault", "partition", "leader", "--one-way", "sideways"], "--one-way must be in"),
    (["fault", "partition", "leader", "--from", "nosuchnode"], "unknown member 'nosuchnode'"),
    (["fault", "clock", "follower"], "clock needs --offset SECONDS and/or --rate R"),
    (["fault", "clock", "follower", "--rate", "0"], "--rate must be a number from 0.5"),
    (["fault", "quota", "lots"], "quota needs BYTES"),
    (["fault", "crash", "leader", "--offset", "3"], "--offset applies to `invoke fault clock`"),
    (["fault", "ntp-cut", "FIRST"], "is the lab's time server"),
    (["heal", "nosuchid"], "no active fault 'nosuchid'"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _m in BAD])
def test_bad_fault_input_is_one_error_and_changes_nothing(lab, args, message):
    args = [lab.config.node_names[0] if a == "FIRST" else a for a in args]
    before = lab_state(lab)
    done = lab.invoke(*args, check=False)
    one_error_line(done, message)
    assert lab_state(lab) == before


def marked_processes(lab) -> list[tuple[int, str]]:
    found = []
    # me=0: the run is this test's child, yet its processes count as a later heal sees them
    for pid in leftovers.lab_processes(lab.config.state_path, me=0):
        try:
            found.append((pid, Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                          .decode(errors="replace")))
        except OSError:
            continue
    return found


def test_kill_9_during_a_settings_change_then_heal_leaves_no_process_and_the_quota(
        lab, tmp_path, healed_after):
    """The issue's measurement: after kill -9 of `invoke experiment quota` while its
    playbook applies the 16 MiB quota, that playbook went on. Heal must end it first."""
    lab.invoke("heal")
    skip = journal_lines(lab)
    process = subprocess.Popen(
        [*INVOKE, *lab.profile, "experiment", "quota", "--quick", "--results", str(tmp_path)],
        cwd=ROOT, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_fault(lab, "settings", skip, process)
    deadline = time.monotonic() + 60
    while not any("ansible-playbook" in cmd for _pid, cmd in marked_processes(lab)):
        assert time.monotonic() < deadline, "no ansible-playbook of the settings change seen"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    time.sleep(0.5)
    # the playbook outlives the kill of the run (its own session): this is what heal ends
    survivors = marked_processes(lab)
    assert any("ansible-playbook" in cmd for _pid, cmd in survivors), survivors
    healed = lab.invoke("heal")
    assert "processes a killed run left here" in healed.stdout, healed.stdout
    assert marked_processes(lab) == []
    for pid, _cmd in survivors:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    wanted = f"quota-backend-bytes: {lab.config.etcd_quota_backend_bytes}"

    def quotas() -> dict[str, str]:
        return {n: lab.cluster.lab.exec(n, ["grep", "quota", ETCD_CONFIG])[1].strip()
                for n in lab.config.node_names}

    assert set(quotas().values()) == {wanted}, quotas()
    time.sleep(60)  # a playbook left alive would have applied its 16 MiB by now
    assert set(quotas().values()) == {wanted}, quotas()
    assert marked_processes(lab) == []
    assert_whole(lab)


def test_the_tour_runs_to_its_end_and_heals_after_each_step(lab, healed_after):
    lab.invoke("heal")
    done = lab.invoke("tour", "--yes")
    out = done.stdout
    for title in ("Crash the leader", "Cut the leader off", "Cut a follower off",
                  "fill it"):
        assert title in out, out
    assert out.count("healed: the lab is whole again") == 4, out
    assert "elected at term" in out and "database space exceeded" in out, out
    assert "tour done: 4 step(s)" in out
    assert_whole(lab)


def test_the_tour_interrupted_mid_step_heals_on_its_way_out(lab, healed_after):
    lab.invoke("heal")
    skip = journal_lines(lab)
    process = subprocess.Popen(
        [*INVOKE, *lab.profile, "tour", "--yes", "--only", "cut-leader"], cwd=ROOT,
        env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_fault(lab, "partition", skip, process)
    deadline = time.monotonic() + 30  # journalled first, then applied: wait for its rules
    while not any("DROP" in text for text in rules(lab).values()):
        assert time.monotonic() < deadline, "the tour's partition was never applied"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, out + err
    assert "healing what the tour left" in out, out
    assert_whole(lab)


def test_watch_json_streams_the_same_events(lab, healed_after):
    import json

    lab.invoke("heal")
    process = subprocess.Popen(
        [*INVOKE, *lab.profile, "watch", "--json", "--seconds", "12"], cwd=ROOT, env=lab.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(process.stdout.readline())  # the leader, once watching
        assert first["kind"] == "leader", first
        old = first["member"]
        lab.invoke("fault", "stop", old)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[:1] == ["fault"] and f"{old} stopped (SIGTERM)" == events[0]["text"], events
    elected = [e for e in events if e["kind"] == "elected"]
    assert elected and elected[0]["member"] != old, events
    assert 0 < elected[0]["since_fault"] < 10 and "after the stop" in elected[0]["text"]
    assert all(e["wall"] > 0 for e in events)
    lab.invoke("heal")
    assert_whole(lab)
