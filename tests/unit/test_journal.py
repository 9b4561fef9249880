"""The fault journal, its replay, and the runner's phases, against fake node backends."""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from etcdlab.errors import LabError
from etcdlab.faults import CHAIN, Faults
from etcdlab.faults.journal import Journal, replay
from etcdlab.questions.runner import Experiment, run_experiment
from etcdlab.questions.spec import QuestionSpec
from etcdlab.results import finish_partial, partial_path, result_path


def test_an_entry_is_open_from_begin_until_done(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    first = journal.begin("partition", "node3 cut off", nodes=["node3"])
    second = journal.begin("etcd", "node1 crashed", node="node1")
    assert [e.id for e in journal.open_entries()] == [first.id, second.id]
    assert journal.open_entries("etcd", node="node1") == [second]
    assert journal.open_entries("etcd", node="node2") == []
    journal.done(first)
    assert journal.open_entries() == [second]
    assert journal.close("etcd", node="node1") == 1
    assert journal.open_entries() == []
    journal.compact()
    assert not journal.path.exists()


def test_a_line_torn_by_a_kill_is_ignored(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    entry = journal.begin("settings", "quota 16 MiB", changes={"q": 1})
    with journal.path.open("a") as handle:
        handle.write('{"op": "done", "id": "')  # killed mid-write
    assert journal.open_entries() == [entry]
    windows = journal.windows()
    assert windows[0]["kind"] == "settings" and windows[0]["end_ns"] is None


def test_replay_undoes_in_heal_order_and_goes_on_past_a_failing_step(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.begin("settings", "quota", changes={})
    journal.begin("etcd", "node1 crashed", node="node1")
    journal.begin("partition", "node2 cut off", nodes=["node2"])
    journal.begin("etcd", "node2 crashed", node="node2")
    order = []

    def undo_etcd(entry):
        order.append(entry.description)
        if entry.data["node"] == "node2":
            raise LabError("ssh: connection refused")
        return "started"

    def record(entry):
        order.append(entry.description)
        return "done"

    steps = replay(journal, {"etcd": undo_etcd, "partition": record, "settings": record})
    # The network first, then processes (newest first), settings last.
    assert order == ["node2 cut off", "node2 crashed", "node1 crashed", "quota"]
    assert [(s.what, s.ok) for s in steps] == [
        ("node2 cut off", True), ("node2 crashed", False), ("node1 crashed", True),
        ("quota", True)]
    assert "connection refused" in steps[1].detail
    assert [e.description for e in journal.open_entries()] == ["node2 crashed"]


def test_replay_stops_at_an_interrupt_and_leaves_the_rest_open(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.begin("partition", "cut", nodes=["a"])
    journal.begin("settings", "quota", changes={})

    def interrupted(_entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replay(journal, {"partition": lambda e: "flushed", "settings": interrupted})
    assert [e.kind for e in journal.open_entries()] == ["settings"]


def test_replay_leaves_kept_entries_and_names_kinds_it_cannot_undo(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    mine = journal.begin("run", "this run", partial="x")
    journal.begin("mystery", "something new")
    steps = replay(journal, {"run": lambda e: "finished"}, keep=(mine.id,))
    assert [(s.what, s.ok) for s in steps] == [("something new", False)]
    assert {e.kind for e in journal.open_entries()} == {"run", "mystery"}


# -- Faults.heal against a fake node backend -----------------------------------------------


class FakeNodes:
    """Three nodes; each remembers its rules and etcd state; one can be unreachable."""

    kind = "docker"

    def __init__(self, names, unreachable=(), order=None):
        self.names = names
        self.unreachable = set(unreachable)
        self.rules = {n: [] for n in names}
        self.etcd_running = dict.fromkeys(names, True)
        self.commands = []
        self.order = order if order is not None else []

    def _reach(self, name):
        if name in self.unreachable:
            raise LabError(f"{name}: ssh failed: exit 255")

    def exec(self, name, command, check=True):
        self._reach(name)
        self.commands.append((name, command))
        if command[:3] == ["iptables", "-w", "-F"]:
            self.rules[name] = []
        if command[:3] == ["iptables", "-w", "-S"]:
            return 0, "\n".join(self.rules[name])
        if command[:1] == ["pkill"]:
            return 1, ""
        if command[:2] == ["sh", "-c"]:
            return 1, ""  # no backed-up clock files
        return 0, ""

    def settle(self):
        return []

    def repair(self):
        self.order.append("heal")
        return []

    def process_pid(self, name, _command):
        self._reach(name)
        return 100 if self.etcd_running[name] else None

    def process_stopped(self, name, _command):
        self._reach(name)
        return False

    def signal(self, name, _command, _sig):
        self._reach(name)
        return 0.0

    def service(self, name, action, program):
        self._reach(name)
        if program == "etcd" and action == "start":
            self.etcd_running[name] = True
        return 0, ""

    def service_running(self, name, _program):
        self._reach(name)
        return True

    def ensure_supervisor(self, name):
        self._reach(name)
        return ""


def fake_cluster(tmp_path, nodes):
    @contextmanager
    def tls_environment():
        yield

    def status():
        raise LabError("Docker is restarting")  # metadata cannot be gathered

    config = SimpleNamespace(state_path=tmp_path / "state")
    return SimpleNamespace(
        config=config, lab=nodes, names=nodes.names,
        ips={n: f"10.0.0.{i}" for i, n in enumerate(nodes.names, 10)},
        wait_healthy=lambda timeout=60: None, healthy=lambda name: True,
        tls_environment=tls_environment, status=status)


def test_heal_goes_on_past_an_unreachable_node_and_reports_it(tmp_path):
    nodes = FakeNodes(["n1", "n2", "n3"], unreachable={"n2"})
    faults = Faults(fake_cluster(tmp_path, nodes))
    faults.journal.begin("partition", "n3 cut off", nodes=["n1", "n2", "n3"])
    faults.journal.begin("etcd", "n1 crashed", node="n1")
    nodes.rules["n1"] = [f"-A {CHAIN} -s 10.0.0.12/32 -j DROP"]
    nodes.rules["n3"] = [f"-A {CHAIN} -s 10.0.0.10/32 -j DROP"]
    nodes.etcd_running["n1"] = False
    steps = faults.heal()
    failed = [s for s in steps if not s.ok]
    assert failed and all("n2" in s.what or "n2" in s.detail for s in failed), failed
    assert nodes.rules["n1"] == [] and nodes.rules["n3"] == []  # the others were healed
    assert nodes.etcd_running["n1"] is True
    # The partition entry stays open (n2 still has to be flushed); the crash is undone.
    assert [e.kind for e in faults.journal.open_entries()] == ["partition"]
    nodes.unreachable.clear()
    assert all(s.ok for s in faults.heal())
    assert faults.journal.open_entries() == []


def test_a_crash_is_journalled_before_the_signal_and_closed_by_the_restart(tmp_path):
    nodes = FakeNodes(["n1", "n2", "n3"])
    faults = Faults(fake_cluster(tmp_path, nodes))
    seen = []
    nodes.signal = lambda name, command, sig: seen.append(
        [e.description for e in faults.journal.open_entries()]) or 0.0
    faults.crash("n1")
    assert seen == [["n1: etcd crashed (SIGKILL)"]]
    faults.start("n1")
    assert faults.journal.open_entries() == []


def test_a_settings_change_is_journalled_before_it_is_applied_and_supersedes_an_earlier_one(
        tmp_path, monkeypatch):
    from etcdlab.lab import provision

    faults = Faults(fake_cluster(tmp_path, FakeNodes(["n1", "n2", "n3"])))
    open_when_applied = []
    monkeypatch.setattr(provision, "reconfigure", lambda config, show, **changes:
                        open_when_applied.append(
                            [e.data["changes"] for e in faults.journal.open_entries()]))
    faults.change_settings(None, etcd_election_timeout_ms=250)
    faults.change_settings(None, etcd_election_timeout_ms=500)
    # Each change is open before the role is re-applied; the first is closed once the
    # second is written down (one undo, the provisioned settings, covers both).
    assert open_when_applied == [[{"etcd_election_timeout_ms": 250}],
                                 [{"etcd_election_timeout_ms": 500}]]
    assert [e.data["changes"] for e in faults.journal.open_entries("settings")] == [
        {"etcd_election_timeout_ms": 500}]


# -- the runner's phases ---------------------------------------------------------------------


def phased(order, fail_in=None, interrupt=False):
    def phase(name):
        def run(ctx):
            order.append(name)
            ctx.samples.setdefault("taken", []).append(name)
            if name == fail_in:
                if interrupt:
                    raise KeyboardInterrupt
                raise RuntimeError(f"boom in {name}")
        return run

    return Experiment(spec=QuestionSpec(0, "fake", "fake"), parameters=(), quick={},
                      setup=phase("setup"), run=phase("run"), check=phase("check"),
                      summarize=lambda samples, params: {"n": len(samples["taken"])})


def test_runner_heals_between_run_and_check(tmp_path):
    order = []
    cluster = fake_cluster(tmp_path, FakeNodes(["n1"], order=order))
    result = run_experiment(phased(order), cluster, tmp_path / "results", {})
    assert order == ["setup", "run", "heal", "check"]
    assert result.status == "ok" and result.summary == {"n": 3}
    assert "Docker is restarting" in result.metadata["metadata_error"]
    saved = json.loads((tmp_path / "results" / "fake.json").read_text())
    assert saved["status"] == "ok" and saved["samples"]["taken"] == ["setup", "run", "check"]
    assert not partial_path(tmp_path / "results", "fake").exists()


def test_runner_heals_after_run_raises_and_keeps_the_samples(tmp_path):
    order = []
    cluster = fake_cluster(tmp_path, FakeNodes(["n1"], order=order))
    with pytest.raises(LabError, match="boom in run"):
        run_experiment(phased(order, fail_in="run"), cluster, tmp_path / "results", {})
    assert order == ["setup", "run", "heal"]  # no check on a lab the run left broken
    saved = json.loads((tmp_path / "results" / "fake.json").read_text())
    assert saved["status"] == "failed" and "boom in run" in saved["error"]
    assert saved["samples"]["taken"] == ["setup", "run"]


def test_an_interrupt_is_healed_recorded_and_raised_again(tmp_path):
    order = []
    cluster = fake_cluster(tmp_path, FakeNodes(["n1"], order=order))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(phased(order, fail_in="run", interrupt=True), cluster,
                       tmp_path / "results", {})
    assert order == ["setup", "run", "heal"]
    saved = json.loads((tmp_path / "results" / "fake.json").read_text())
    assert saved["status"] == "interrupted" and saved["error"] == "interrupted (Ctrl-C)"
    assert Journal(tmp_path / "state" / "journal.jsonl").open_entries() == []


def test_a_failed_rerun_never_overwrites_a_good_result(tmp_path):
    results = tmp_path / "results"
    cluster = fake_cluster(tmp_path, FakeNodes(["n1"]))
    run_experiment(phased([]), cluster, results, {"nan": float("nan")})
    good = json.loads((results / "fake.json").read_text())
    assert good["params"] == {"nan": None}  # NaN stored as null
    with pytest.raises(LabError):
        run_experiment(phased([], fail_in="check"), cluster, results, {})
    assert json.loads((results / "fake.json").read_text()) == good
    failed = json.loads((results / "fake.failed.json").read_text())
    assert failed["status"] == "failed" and "boom in check" in failed["error"]
    assert result_path(results, "fake", "interrupted") == results / "fake.failed.json"


def recording(value, fail=False):
    """A fake experiment whose run records one write of ``value`` in history "x"."""
    def run(ctx):
        ctx.history("x").call("p1", "write", "k", {"value": value},
                              send=lambda: None, answer=lambda reply: (value, 1))
        if fail:
            raise RuntimeError("boom in run")
    return Experiment(spec=QuestionSpec(0, "fake", "fake"), parameters=(), quick={},
                      run=run, summarize=lambda samples, params: {})


def test_a_failed_rerun_keeps_the_good_results_history_and_names_its_own(tmp_path):
    results = tmp_path / "results"
    cluster = fake_cluster(tmp_path, FakeNodes(["n1"]))
    good = run_experiment(recording("good"), cluster, results, {})
    assert good.samples["histories"]["x"]["file"] == "fake.x.history.jsonl"
    assert good.samples["histories"]["x"]["verdict"] == "linearizable"
    with pytest.raises(LabError):
        run_experiment(recording("bad", fail=True), cluster, results, {})
    assert '"good"' in (results / "fake.x.history.jsonl").read_text()
    failed = json.loads((results / "fake.failed.json").read_text())
    assert failed["samples"]["histories"]["x"]["file"] == "fake.failed.x.history.jsonl"
    assert '"bad"' in (results / "fake.failed.x.history.jsonl").read_text()
    assert not list(results.glob("*.partial*"))


def test_a_killed_runs_history_follows_its_result_when_healed(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    partial = partial_path(results, "fake")
    (results / "fake.partial.x.history.jsonl").write_text("{}\n")
    (results / "fakeother.partial.history.jsonl").write_text("{}\n")  # not this one's
    partial.write_text(json.dumps({
        "schema_version": 1, "experiment": "fake", "status": "running", "error": None,
        "metadata": {"started_utc": "2026-12-01T10:00:00+00:00",
                     "finished_utc": "2026-12-01T10:00:03+00:00"},
        "params": {}, "summary": {},
        "samples": {"histories": {"x": {"file": "fake.partial.x.history.jsonl"}}}}))
    target = finish_partial(partial, "interrupted: killed")
    saved = json.loads(Path(target).read_text())
    assert (results / "fake.x.history.jsonl").exists()
    assert saved["samples"]["histories"]["x"]["file"] == "fake.x.history.jsonl"
    assert (results / "fakeother.partial.history.jsonl").exists()


def test_heal_turns_a_killed_runs_partial_file_into_an_interrupted_result(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    partial = partial_path(results, "fake")
    partial.write_text(json.dumps({
        "schema_version": 1, "experiment": "fake", "status": "running", "error": None,
        "metadata": {"started_utc": "2026-12-01T10:00:00+00:00",
                     "finished_utc": "2026-12-01T10:00:03+00:00"},
        "params": {}, "summary": {}, "samples": {"taken": [1, 2, 3]}}))
    target = finish_partial(partial, "interrupted: killed")
    saved = json.loads(Path(target).read_text())
    assert target == results / "fake.json" and not partial.exists()
    assert saved["status"] == "interrupted" and saved["samples"] == {"taken": [1, 2, 3]}


def test_sigterm_and_sighup_raise_like_ctrl_c():
    from etcdlab.errors import Interrupted
    from etcdlab.signals import install_interrupt_handlers

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        install_interrupt_handlers()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with pytest.raises(Interrupted) as caught:
                signal.raise_signal(sig)
            assert caught.value.signal_name == sig.name
            assert isinstance(caught.value, KeyboardInterrupt)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_one_interrupt_during_a_heal_is_announced_and_a_second_stops_it():
    from etcdlab.errors import Interrupted
    from etcdlab.signals import heal_guard

    said = []
    with pytest.raises(Interrupted), heal_guard(said.append):
        signal.raise_signal(signal.SIGINT)
        assert len(said) == 1 and "healing goes on" in said[0]
        signal.raise_signal(signal.SIGTERM)
    assert len(said) == 1


def test_a_second_task_on_a_lab_is_refused_with_the_holder_and_nothing_is_written(tmp_path):
    from etcdlab.lab.state import LabLock

    folder = tmp_path / ".lab" / "lab-x"
    with LabLock(folder, "invoke report"), pytest.raises(
            LabError, match=r"in use by pid \d+ \(`invoke report`"), LabLock(folder, "invoke heal"):
        pass
    with LabLock(folder, "invoke heal"):  # released on exit: the next one gets it
        pass
    assert not (tmp_path / ".lab").exists()  # a lock leaves the lab's folder alone


def test_the_report_reads_the_good_result_not_the_failed_rerun_beside_it(tmp_path):
    from etcdlab.results import load_results

    results = tmp_path / "results"
    cluster = fake_cluster(tmp_path, FakeNodes(["n1"]))
    run_experiment(phased([]), cluster, results, {})
    with pytest.raises(LabError):
        run_experiment(phased([], fail_in="run"), cluster, results, {})
    assert (results / "fake.failed.json").exists()
    loaded = load_results(results)
    assert list(loaded) == ["fake"] and loaded["fake"].status == "ok"


class FakeExecApi:
    """Docker's exec API: each exec id reports Running for its first ``polls`` inspections."""

    def __init__(self, polls):
        self.polls = dict(polls)
        self.inspected = []

    def exec_inspect(self, exec_id):
        self.inspected.append(exec_id)
        self.polls[exec_id] -= 1
        return {"Running": self.polls[exec_id] >= 0}


def test_settle_waits_for_the_commands_an_interrupt_left_running_in_nodes():
    from types import SimpleNamespace

    from etcdlab.lab.config import LabConfig
    from etcdlab.lab.docker_cluster import DockerLab

    api = FakeExecApi({"a": 3, "b": 0})
    lab = DockerLab(LabConfig(), client=SimpleNamespace(api=api))
    lab._in_flight = [("n1", "a", ["supervisorctl", "stop", "chronyd"]), ("n2", "b", ["true"])]
    assert lab.settle(timeout=10) == []
    assert api.inspected.count("a") == 4  # waited until it ended
    assert lab._in_flight == []
    api.polls["c"] = 10**6
    lab._in_flight = [("n1", "c", ["sleep", "1000"])]
    assert lab.settle(timeout=0.2) == ["n1: `sleep 1000` still running"]
    assert lab._in_flight == []
