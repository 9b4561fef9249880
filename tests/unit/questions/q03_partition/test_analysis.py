"""Q3 ``partition`` analysis: the summary from the quick run, and every finding flips with
the data, in the findings and in the rendered section."""

from __future__ import annotations

import copy
import json

import pytest

from etcdlab.questions.findings import by_id
from etcdlab.questions.q03_partition import analysis
from tests import ROOT
from tests.unit.report_helpers import rendered_section as rendered

QUICK = ROOT / "tests" / "data" / "quick-run" / "partition.json"


def quick() -> dict:
    return json.loads(QUICK.read_text())


def findings_of(data: dict) -> dict:
    return by_id(analysis.findings(analysis.summarize(data["samples"], data["params"]),
                                   data["params"]))


def test_summary_of_the_quick_run():
    data = quick()
    summary = analysis.summarize(data["samples"], data["params"])
    assert summary["leader_isolated"]["new_leader_s"] == pytest.approx(1.21719)
    assert summary["leader_isolated"]["two_leaders_s"] == pytest.approx(0.514041)
    assert summary["minority"]["outcome_counts"]["write"] == {"unknown": 2}
    detail = summary["detail"]
    assert (detail["stale"], detail["stale_known"]) == (2, 2)
    assert detail["outcomes"]["write_require_leader"] == ["failed", "failed"]
    assert detail["leases"][0] == {"ttl_s": 30, "age_at_cut_s": 4.339, "before_s": 26,
                                   "after_s": 30}
    assert detail["times_s"]["converge_s"] == pytest.approx([0.046307, 0.058921])


def test_quick_run_findings_and_the_untestable_causes():
    found = findings_of(quick())
    assert list(found)[0] == "majority-serves"
    # The quick run predates the register workload: its histories are not there to check.
    # Nor the probes of the cut-off leader until it stepped down, nor a leader crash, nor
    # the one-way partitions.
    untestable = {"cause-check-quorum", "cause-pre-vote", "course-blank", "register-histories",
                  "register-lin-every-fault", "last-second-refused", "last-second-serializable",
                  "published-crash-divergence", "prevote-on-quiet", "prevote-off-disrupts",
                  "oneway-no-two-leaders"}
    assert {k for k, f in found.items() if f.holds is None} == untestable
    assert all(f.holds is True for k, f in found.items() if k not in untestable)
    assert "no control with pre-vote off" in found["cause-pre-vote"].text


def test_the_section_names_no_cause_and_uses_exact_bounds(tmp_path):
    text = rendered(tmp_path, quick(), "base")
    assert "(pre-vote)" not in text and "(check-quorum)" not in text
    assert "This run has no control with pre-vote off to attribute" in text
    assert "unknown 4 of 4 (≥ 47.3 % at 95 %)" in text
    assert "30 s (±1 s)" in text and "26.0 s" not in text
    assert "| — |" not in text
    assert not (tmp_path / "base" / "partition.png").exists()  # n = 1: table rows, no plot


def _majority_write_unknown(data):
    data["samples"]["leader_isolated"][0]["majority_write"]["outcome"] = "unknown"


def _no_step_down(data):
    data["samples"]["leader_isolated"][0]["step_down_s"] = None


def _fresh_serializable_read(data):
    for scenario in analysis.SCENARIOS:
        trial = data["samples"][scenario][0]
        trial["minority"]["serializable_read"].update(
            value=trial["majority_read"]["value"],
            mod_revision=trial["majority_read"]["mod_revision"])


def _default_write_ok(data):
    data["samples"]["leader_isolated"][0]["minority"]["write"].update(
        outcome="ok", code="OK", details="", elapsed_s=0.002)


def _require_leader_times_out(data):
    data["samples"]["follower_isolated"][0]["minority"]["write_require_leader"].update(
        outcome="unknown", code="DEADLINE_EXCEEDED", details="Deadline Exceeded")


def _minority_write_applied(data):
    trial = data["samples"]["leader_isolated"][0]
    for state in trial["after_heal"].values():
        state["value"] = trial["minority"]["value_written"]


def _follower_disturbs(data):
    data["samples"]["follower_isolated"][0]["term_after"] += 1


def _old_leader_elsewhere(data):
    data["samples"]["leader_isolated"][0]["leader_after_heal"] = "qnode3"


def _hashes_differ(data):
    data["samples"]["consistency"]["consistent"] = False


def _linearizable_answers(data):
    data["samples"]["leader_isolated"][0]["minority"]["linearizable_read"].update(
        outcome="ok", code="OK", details="")


def _lease_not_refreshed(data):
    data["samples"]["leader_isolated"][0]["lease"]["remaining_after_new_leader_s"] = 20


FLIPS = [
    ("majority-serves", _majority_write_unknown),
    ("old-leader-steps-down", _no_step_down),
    ("minority-serializable-stale", _fresh_serializable_read),
    ("minority-default-unknown", _default_write_ok),
    ("minority-require-leader-refused", _require_leader_times_out),
    ("minority-write-not-applied", _minority_write_applied),
    ("follower-cut-undisturbed", _follower_disturbs),
    ("heal-converges", _old_leader_elsewhere),
    ("members-consistent", _hashes_differ),
    ("published-read-semantics", _linearizable_answers),
    ("published-lease-refresh", _lease_not_refreshed),
]


@pytest.mark.parametrize(("finding", "change"), FLIPS, ids=[f[0] for f in FLIPS])
def test_each_finding_flips_with_the_data_and_the_section_says_so(tmp_path, finding, change):
    base = quick()
    before = findings_of(base)[finding]
    assert before.holds is True
    changed = copy.deepcopy(base)
    change(changed)
    after = findings_of(changed)[finding]
    assert after.holds is False
    old_text, new_text = rendered(tmp_path, base, "base"), rendered(tmp_path, changed, "new")
    assert before.text in old_text and before.text not in new_text
    assert after.text in new_text


def _with_register(data, serializable_verdict):
    for series, verdict in (("linearizable", "linearizable"),
                            ("serializable", serializable_verdict)):
        data["samples"].setdefault("register", {})[series] = {"isolated": "qnode1"}
        data["samples"].setdefault("histories", {})[f"register-{series}"] = {
            "file": f"partition.register-{series}.history.jsonl", "operations": 100,
            "faults": 1, "elapsed_s": 0.01, "budget_s": 20.0, "verdict": verdict,
            "counterexample": None if verdict != "not-linearizable" else {
                "linearized": [], "stuck": ["process c2: get k → nil"]}}
    return data


def test_the_register_histories_finding_follows_the_two_verdicts(tmp_path):
    expected = _with_register(quick(), "not-linearizable")
    found = findings_of(expected)
    assert found["register-histories"].holds is True
    assert found["linearizable-register-serializable"].holds is False
    assert found["linearizable-register-serializable"].figures["the search got stuck at"] == (
        "process c2: get k → nil")
    surprising = _with_register(quick(), "linearizable")
    assert findings_of(surprising)["register-histories"].holds is False
    budget = _with_register(quick(), "unknown")
    assert findings_of(budget)["register-histories"].holds is None
    old_text = rendered(tmp_path, expected, "expected")
    new_text = rendered(tmp_path, surprising, "surprising")
    assert found["register-histories"].text in old_text
    assert found["register-histories"].text not in new_text


def _with_faults(data, lin_verdicts):
    """The register workload under several faults, as the experiment now records it."""
    for fault, lin in lin_verdicts.items():
        for series, verdict in (("linearizable", lin), ("serializable", "not-linearizable")):
            data["samples"].setdefault("register", {}).setdefault(fault, {})[series] = {
                "target": "qnode1", "outcomes": {}}
            label = f"register-{fault}-{series}"
            data["samples"].setdefault("histories", {})[label] = {
                "file": f"partition.{label}.history.jsonl", "operations": 80, "faults": 1,
                "elapsed_s": 0.01, "budget_s": 20.0, "verdict": verdict,
                "counterexample": None if verdict != "not-linearizable" else {
                    "linearized": [], "stuck": ["process c1: get k → nil"]}}
    return data


def test_linearizable_reads_under_every_fault_is_one_finding(tmp_path):
    every = {"leader-cut": "linearizable", "follower-cut": "linearizable",
             "leader-crash": "linearizable"}
    good = findings_of(_with_faults(quick(), every))
    assert good["register-lin-every-fault"].holds is True
    assert good["register-histories"].holds is True  # the leader-cut pair, new layout
    assert "follower cut off" in good["register-lin-every-fault"].figures
    bad = findings_of(_with_faults(quick(), {**every, "leader-crash": "not-linearizable"}))
    assert bad["register-lin-every-fault"].holds is False
    unchecked = findings_of(_with_faults(quick(), {**every, "follower-cut": "unknown"}))
    assert unchecked["register-lin-every-fault"].holds is None
    text = rendered(tmp_path, _with_faults(quick(), every), "every")
    assert good["register-lin-every-fault"].text in text


@pytest.mark.parametrize(("version", "consistent", "agrees"), [
    ("3.5.1", False, True), ("3.5.1", True, None), ("3.5.6", True, True),
    ("3.5.6", False, False)])
def test_a_divergence_after_the_leader_crash_is_set_against_etcds_postmortem(
        version, consistent, agrees):
    data = _with_faults(quick(), {"leader-crash": "linearizable"})
    data["samples"]["consistency"]["consistent"] = consistent
    summary = analysis.summarize(data["samples"], data["params"])
    found = by_id(analysis.findings(summary, data["params"], {"etcd_version": version}))
    assert found["published-crash-divergence"].holds is agrees
    assert found["members-consistent"].holds is consistent


def test_no_leader_crash_means_the_postmortem_cannot_be_compared():
    data = quick()
    summary = analysis.summarize(data["samples"], data["params"])
    found = by_id(analysis.findings(summary, data["params"], {"etcd_version": "3.5.1"}))
    assert found["published-crash-divergence"].holds is None


def _with_last_second(data, lin_ok=0, stale_value=None):
    """Probes of the cut-off leader: serializable reads answered, the rest timing out."""
    for t in data["samples"]["leader_isolated"]:
        down = t["step_down_s"]
        probes = [{"op": "serializable_read", "at_s": i * 0.05, "outcome": "ok",
                   "value": stale_value or t["before_value"]} for i in range(int(down / 0.05))]
        probes += [{"op": op, "at_s": i * 0.1, "outcome": "unknown", "value": None}
                   for op in ("linearizable_read", "write") for i in range(int(down / 0.1))]
        probes += [{"op": "linearizable_read", "at_s": down / 2, "outcome": "ok",
                    "value": t["before_value"]} for _ in range(lin_ok)]
        probes.append({"op": "write", "at_s": down + 0.01, "outcome": "failed", "value": None})
        t["last_second"] = probes
    return data


def test_the_old_leaders_last_second_findings_and_table(tmp_path):
    found = findings_of(_with_last_second(quick()))
    assert found["last-second-refused"].holds is True
    assert found["last-second-serializable"].holds is True
    assert findings_of(_with_last_second(quick(), lin_ok=1))["last-second-refused"].holds is False
    other = findings_of(_with_last_second(quick(), stale_value="x"))
    assert other["last-second-serializable"].holds is False
    summary = analysis.summarize(_with_last_second(quick())["samples"], {})
    assert summary["last_second"]["after"]["write"]["failed"] == 1  # after the step-down
    rows = analysis.last_second_rows(summary)
    assert rows[0]["since_cut"] == "0.00–0.25 s" and "unknown" in rows[0]["write"]
    text = rendered(tmp_path, _with_last_second(quick()), "last")
    assert found["last-second-refused"].text in text and "| 0.00–0.25 s |" in text


def _with_prevote(data, on_disrupted=False, off_disrupted=True, on_campaigns=0):
    def trial(disrupted, campaigns, pre):
        return {"isolated": "qnode2", "leader": "qnode1", "term_before": 5,
                "isolated_campaigns": campaigns, "isolated_pre_campaigns": pre,
                "isolated_term_max": 5 + campaigns, "disrupted": disrupted,
                "isolation_s": 4.0, "writes": {"longest_gap_after_heal_s": 1.0 if disrupted
                                               else 0.1}}
    data["samples"]["prevote"] = {"on": [trial(on_disrupted, on_campaigns, 4)],
                                  "off": [trial(off_disrupted, 3, 0)]}
    return data


def test_the_pre_vote_control_attributes_the_quiet_rejoin_to_pre_vote(tmp_path):
    found = findings_of(_with_prevote(quick()))
    assert found["prevote-on-quiet"].holds is True
    assert found["prevote-off-disrupts"].holds is True
    assert found["cause-pre-vote"].holds is True
    assert findings_of(_with_prevote(quick(), on_campaigns=2))["prevote-on-quiet"].holds is False
    same = findings_of(_with_prevote(quick(), off_disrupted=False))
    assert same["prevote-off-disrupts"].holds is False and same["cause-pre-vote"].holds is False
    assert findings_of(quick())["cause-pre-vote"].holds is None  # no control in that run
    text = rendered(tmp_path, _with_prevote(quick()), "prevote")
    assert found["cause-pre-vote"].text in text and found["prevote-on-quiet"].text in text


def _one_way_trial(direction, old="qnode1", led="qnode2", overlap=0, settled=1.2, healed=0.3):
    return {"trial": 1, "direction": direction, "old_leader": old, "term_before": 4,
            "cut_window_s": 0.08, "rounds": 300, "round_s": 0.004, "changes": [],
            "old_stepped_down_s": 1.1, "other_leader_s": 1.0,
            "overlap_first_s": 1.0 if overlap else None,
            "overlap_last_s": 1.0 + 0.004 * (overlap - 1) if overlap else None,
            "overlap_rounds": overlap, "max_claimants": 2 if overlap else 1,
            "settled_s": settled, "settled_leader": led if settled is not None else None,
            "settled_term": 5 if settled is not None else None, "old_named_at_end": "",
            "after_heal": {"settled_s": healed, "settled_leader": led, "settled_term": 5,
                           "overlap_rounds": 0, "rounds": 40}}


def _with_one_way(data, mute=None, deaf=None):
    data["samples"]["one_way"] = {
        "leader_deaf": deaf or [_one_way_trial("leader_deaf") for _ in range(3)],
        "leader_mute": mute or [_one_way_trial("leader_mute") for _ in range(3)],
    }
    return data


def test_the_one_way_findings_follow_who_led_and_the_overlaps(tmp_path):
    assert findings_of(quick())["oneway-no-two-leaders"].holds is None  # none in that run
    found = findings_of(_with_one_way(quick()))
    assert found["oneway-deaf-followers-lead"].holds is True
    assert found["oneway-mute-followers-lead"].holds is True
    assert found["oneway-no-two-leaders"].holds is True
    assert found["oneway-no-two-leaders"].figures["trials with two claimants"].startswith(
        "0 of 6")
    old_kept = [_one_way_trial("leader_mute", led="qnode1"), _one_way_trial("leader_mute")]
    mixed = findings_of(_with_one_way(quick(), mute=old_kept))
    assert mixed["oneway-mute-followers-lead"].holds is False
    assert mixed["oneway-deaf-followers-lead"].holds is True
    unsettled = findings_of(_with_one_way(quick(), deaf=[_one_way_trial("leader_deaf",
                                                                        settled=None)]))
    assert unsettled["oneway-deaf-followers-lead"].holds is False
    overlapping = [_one_way_trial("leader_deaf", overlap=26), _one_way_trial("leader_deaf")]
    two = findings_of(_with_one_way(quick(), deaf=overlapping))["oneway-no-two-leaders"]
    assert two.holds is False and "1 of 5" in two.text
    assert two.figures["first to last such round, per trial"] == "100 ms"
    summary = analysis.summarize(_with_one_way(quick(), deaf=overlapping)["samples"], {})
    row = analysis.one_way_rows(summary)[0]
    assert row["led"] == "a follower 2, the old leader 0, none 0"
    assert row["overlap"] == "1 of 2 trials, 26 round(s)"
    text = rendered(tmp_path, _with_one_way(quick(), deaf=overlapping), "oneway")
    assert two.text in text and "| leader deaf (the followers' packets to it dropped) | 2 |" in text
