"""The experiment registry and the pure parts of Q1 / Q2 (log parsing, summaries)."""

import importlib
import json
from datetime import datetime, timezone

import pytest

from etcdlab import questions as experiments
from etcdlab.errors import LabError
from etcdlab.questions.q01_election import run as election
from etcdlab.questions.q02_conflicts import run as conflicts
from etcdlab.questions.spec import specs


def test_registry_lists_one_experiment_per_question_built_on_its_spec():
    registered = experiments.registry()
    assert [e.spec for e in registered.values()] == list(specs())
    assert list(registered) == [spec.experiment for spec in specs()]


@pytest.mark.parametrize("name", list(experiments.registry()))
def test_what_the_question_asks_is_the_default_of_a_declared_parameter(name):
    # ASKED (the analysis) names the full run's values; a full run is the defaults, so each
    # asked value must be the default of a parameter the experiment declares, type included.
    experiment = experiments.get(name)
    analysis = importlib.import_module(f"etcdlab.questions.{experiment.spec.package}.analysis")
    assert analysis.ASKED, f"{name}: its analysis asks nothing"
    for item in analysis.ASKED:
        param = experiment.declared(item.param)
        assert (param.default, type(param.default)) == (item.value, type(item.value)), (
            f"{name}: the question asks {item.param}={item.value!r}, "
            f"the parameter's default is {param.default!r}")


def test_unknown_experiment_names_the_known_ones():
    with pytest.raises(LabError, match="known: election, conflicts"):
        experiments.get("elections")


def test_quick_params_and_overrides():
    exp = experiments.get("election")
    assert exp.params()["trials"] == 20
    assert exp.params(quick=True)["trials"] == 3
    assert exp.params(quick=True, trials="7")["trials"] == 7
    with pytest.raises(LabError, match="has no parameter 'trails'"):
        exp.params(trails=3)


def test_elected_leader_line_is_parsed_with_its_term():
    line = ('{"level":"info","ts":"2025-06-16T23:35:44.921Z","logger":"raft",'
            '"caller":"etcdserver/zap_raft.go:77","msg":"raft.node: 74ac2a1902010f1d elected '
            'leader 74ac2a1902010f1d at term 12"}')
    assert election.parse_elected_line(line, 12) == pytest.approx(1750116944.921)
    assert election.parse_elected_line(line, 13) is None
    assert election.parse_elected_line("not json leader", 12) is None


def test_election_summary_comes_from_the_samples():
    def trial(n, elected, write, log):
        return {"trial": n, "killed": "node1", "new_leader": "node2", "elected_s": elected,
                "first_write_s": write, "log_elected_s": log}

    samples = {
        "crash": [trial(1, 1.2, 1.3, 1.19), trial(2, 1.4, 1.5, 1.38), trial(3, 1.0, 1.1, None)],
        "graceful": [trial(1, 0.02, 0.01, 0.015)],
        "consistency": [{"series": "crash", "consistent": True, "members": []},
                        {"series": "graceful", "consistent": True, "members": []}],
    }
    summary = election.summarize(samples, {})
    assert summary["crash"]["median_s"] == pytest.approx(1.2)
    assert summary["crash"]["trials"] == 3
    assert summary["graceful"]["median_s"] == pytest.approx(0.02)
    assert summary["first_write"]["median_s"] == pytest.approx(1.3)
    assert summary["detection_lag_median_ms"] == pytest.approx(15.0)
    assert summary["members_consistent"] is True
    samples["consistency"][1]["consistent"] = False
    assert election.summarize(samples, {})["members_consistent"] is False


def test_conflicts_summary_counts_lost_updates_and_checks_revision_order():
    samples = {
        "naive": {"acknowledged": 10, "final_value": 4, "unknown": 0, "retries": 0,
                  "elapsed_s": 0.5, "values": [], "revisions": []},
        "cas": {"acknowledged": 3, "final_value": 3, "unknown": 0, "retries": 5,
                "elapsed_s": 0.25, "values": [1, 2, 3], "revisions": [10, 12, 15]},
    }
    summary = conflicts.summarize(samples, {"workers": 2, "increments": 5})
    assert summary["naive"]["lost_updates"] == 6
    assert summary["cas"]["lost_updates"] == 0
    assert summary["cas"]["retries"] == 5
    assert summary["cas"]["ops_per_s"] == pytest.approx(12.0)
    assert summary["revisions_strictly_increasing"] is True
    samples["cas"]["revisions"] = [10, 15, 12]
    assert conflicts.summarize(samples, {"workers": 2, "increments": 5})[
        "revisions_strictly_increasing"] is False


def test_raft_state_changes_are_read_from_etcds_log_within_the_window():
    from etcdlab.questions.common import raft_state_changes

    def line(ts, msg):
        return json.dumps({"level": "info", "ts": ts, "logger": "raft", "msg": msg})

    log = "\n".join([
        line("2026-12-02T04:55:09.428Z", "df51 became candidate at term 13"),  # before
        line("2026-12-02T04:55:17.600Z", "3077 became candidate at term 14"),
        line("2026-12-02T04:55:18.000Z", "3077 became pre-candidate at term 14"),
        "not json: became candidate at term 99",
        line("2026-12-02T04:55:20.931Z", "df51 became follower at term 16"),
        line("2026-12-02T04:55:21.000Z", "3077 is starting a new election at term 16"),
    ])
    since = datetime(2026, 12, 2, 4, 55, 17, tzinfo=timezone.utc).timestamp()
    changes = raft_state_changes(log, since)
    assert [(c["state"], c["term"]) for c in changes] == [
        ("candidate", 14), ("pre-candidate", 14), ("follower", 16)]
    until = datetime(2026, 12, 2, 4, 55, 19, tzinfo=timezone.utc).timestamp()
    assert len(raft_state_changes(log, since, until)) == 2


def test_poll_until_returns_the_first_answer_or_the_last_after_the_timeout():
    from etcdlab.questions.common import poll_until

    answers = iter([None, 0, "ready", "later"])
    assert poll_until(lambda: next(answers), 5.0, every=0.001) == "ready"
    assert poll_until(lambda: None, 0.02, every=0.001) is None
    assert poll_until(lambda: [], 0) == []  # asked once with no time at all


def test_a_json_lines_child_is_waited_for_by_event_and_ends_without_one(tmp_path):
    import subprocess
    import sys

    from etcdlab.questions.common import JsonLinesChild

    class Spawner:  # faults.spawn without the journal: a plain local child
        def spawn(self, argv, what, **popen):
            return subprocess.Popen(argv, **popen)

    code = ("import json, time; print(json.dumps({'event': 'one'}), flush=True); "
            "time.sleep(0.2); print('not json', flush=True); "
            "print(json.dumps({'event': 'two', 'n': 2}), flush=True)")
    child = JsonLinesChild(Spawner(), [sys.executable, "-c", code], "test child")
    assert child.wait_for("two", 10)["n"] == 2
    assert child.wait_for(("one",), 0)["event"] == "one"
    assert child.wait_for("never", 10) is None  # the child ended: no waiting out the 10 s
    child.finish(5)
    assert child.other == ["not json"]
