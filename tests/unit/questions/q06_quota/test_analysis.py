"""Q6 ``quota``: the analysis on the quick run, and each finding against samples with the
opposite outcome (its ``holds`` flips and the rendered section says something else)."""

from __future__ import annotations

import json

import pytest

from etcdlab.questions.findings import by_id
from etcdlab.questions.q06_quota import analysis
from etcdlab.questions.q06_quota import run as experiment
from tests import ROOT
from tests.unit.report_helpers import rendered_section as render

QUICK = ROOT / "tests" / "data" / "quick-run"
ACCEPTED = {"code": "OK", "details": "", "elapsed_s": 0.003, "outcome": "ok"}


def quick() -> dict:
    return json.loads((QUICK / "quota.json").read_text())


def found(data: dict) -> dict:
    summary = analysis.summarize(data["samples"], data["params"])
    return by_id(analysis.findings(summary, data["params"]))


def test_summarize_works_on_the_quick_run():
    data = quick()
    summary = analysis.summarize(data["samples"], data["params"])
    assert summary["writes_at_alarm"] == 452
    assert summary["alarm_raised_for"] == ["qnode1", "qnode3"]
    assert summary["recovery"]["alarms_left"] == 0
    assert [h["n"] for h in summary["write_latency_halves"]] == [226, 226]
    assert experiment.summarize is analysis.summarize
    assert experiment.EXPERIMENT.summarize is analysis.summarize
    assert experiment.NOSPACE_TEXT == analysis.NOSPACE_TEXT


def test_the_quick_run_findings():
    f = found(quick())
    holding = ("refused_at_quota", "alarm_listed", "writes_refused", "reads_worked",
               "delete_worked", "health_unhealthy", "compaction_kept_size",
               "defrag_returned_space", "recovered", "published_nospace",
               "published_recovery", "course_writes_refused")
    assert all(f[i].holds is True for i in holding), [i for i in holding if not f[i].holds]
    assert f["fill_slowdown"].holds is False
    assert f["course_read_only"].holds is False
    assert f["course_write_performance"].holds is False
    first = next(x for x in f.values() if x.kind == "measured")
    assert first.id == "refused_at_quota"


def test_asked_matches_the_full_run_default():
    defaults = {p.name: p.default for p in experiment.EXPERIMENT.parameters}
    assert all(defaults[a.param] == a.value for a in analysis.ASKED)


def test_a_write_accepted_during_the_alarm(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    data["samples"]["alarm"]["probes"]["write_follower"] = dict(ACCEPTED)
    f = found(data)
    assert f["writes_refused"].holds is False
    assert f["course_writes_refused"].holds is False
    assert f["published_nospace"].holds is False
    after = render(tmp_path / "b", data)
    assert "not every write was refused for lack of space" in after
    assert "not every write was refused" not in before
    assert "a write was not refused for lack of space" in f["published_nospace"].text


def test_reads_refused_during_the_alarm(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    data["samples"]["alarm"]["probes"]["read_serializable"] = {
        "code": "UNAVAILABLE", "details": "no leader", "elapsed_s": 0.01, "outcome": "failed",
        "found": False}
    f = found(data)
    assert f["reads_worked"].holds is False
    after = render(tmp_path / "b", data)
    assert f["reads_worked"].text in after and f["reads_worked"].text not in before


def test_a_refused_delete_matches_read_only(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    data["samples"]["alarm"]["probes"]["delete"] = {
        "code": "RESOURCE_EXHAUSTED", "details": "etcdserver: mvcc: database space exceeded",
        "elapsed_s": 0.003, "outcome": "failed", "deleted": 0}
    f = found(data)
    assert f["delete_worked"].holds is False
    assert f["course_read_only"].holds is True
    after = render(tmp_path / "b", data)
    assert f["course_read_only"].text in after and f["course_read_only"].text not in before


def test_a_timed_out_probe_is_unknown_not_a_failure():
    data = quick()
    data["samples"]["alarm"]["probes"]["delete"] = {"code": "DEADLINE_EXCEEDED", "details": "",
                                                     "elapsed_s": 5.0, "outcome": "unknown"}
    f = found(data)
    assert f["delete_worked"].holds is None and "unknown" in f["delete_worked"].text
    assert f["course_read_only"].holds is None


def test_a_member_without_the_alarm(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    data["samples"]["alarm"]["alarms"]["qnode2"] = []
    f = found(data)
    assert f["alarm_listed"].holds is False and "not qnode2" in f["alarm_listed"].text
    after = render(tmp_path / "b", data)
    assert f["alarm_listed"].text in after and f["alarm_listed"].text not in before


def test_a_healthy_member_during_the_alarm(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    data["samples"]["alarm"]["health_endpoint"]["qnode3"] = True
    f = found(data)
    assert f["health_unhealthy"].holds is False
    after = render(tmp_path / "b", data)
    assert "called only 2 of 3 members unhealthy" in after
    assert "called only" not in before


def test_compaction_that_shrinks_the_files(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    recovery = data["samples"]["recovery"]
    recovery["db_size_after_compact"]["qnode2"] = 1024 * 1024
    f = found(data)
    assert f["compaction_kept_size"].holds is False
    after = render(tmp_path / "b", data)
    assert "shrank the backend file of qnode2" in after
    assert "shrank the backend file" not in before


def test_an_unrecorded_size_makes_compaction_untestable():
    data = quick()
    data["samples"]["recovery"]["db_size_after_compact"]["qnode1"] = None
    f = found(data)
    assert f["compaction_kept_size"].holds is None
    assert "not recorded" in f["compaction_kept_size"].text
    data["samples"]["recovery"]["defragment"][0]["db_size_after"] = None
    assert found(data)["defrag_returned_space"].holds is None


def test_a_defragmentation_that_returns_nothing(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    defrag = data["samples"]["recovery"]["defragment"][1]
    defrag["db_size_after"] = defrag["db_size_before"]
    f = found(data)
    assert f["defrag_returned_space"].holds is False
    after = render(tmp_path / "b", data)
    assert "did not shrink the DB of qnode2" in after
    assert "did not shrink the DB" not in before


def test_a_write_still_refused_after_the_recovery(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    data["samples"]["recovery"]["write_after"] = {
        "code": "RESOURCE_EXHAUSTED", "details": "etcdserver: mvcc: database space exceeded",
        "elapsed_s": 0.003, "outcome": "failed"}
    f = found(data)
    assert f["recovered"].holds is False and f["published_recovery"].holds is False
    after = render(tmp_path / "b", data)
    assert f["recovered"].text in after and f["recovered"].text not in before


def test_writes_that_slow_down_as_the_backend_fills(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    ok = [w for w in data["samples"]["fill"]["writes"] if w["outcome"] == "ok"]
    for w in ok[len(ok) // 2:]:
        w["elapsed_s"] *= 3
    f = found(data)
    assert f["fill_slowdown"].holds is True
    assert f["course_write_performance"].holds is True
    after = render(tmp_path / "b", data)
    assert f["course_write_performance"].text in after
    assert f["course_write_performance"].text not in before


def test_no_refusal_in_the_fill(tmp_path):
    data = quick()
    data["samples"]["fill"]["refused"] = {"code": "UNAVAILABLE", "details": "no leader",
                                          "elapsed_s": 0.01, "outcome": "failed"}
    f = found(data)
    assert f["refused_at_quota"].holds is False
    assert "no write was refused for lack of space" in render(tmp_path, data)


@pytest.mark.parametrize("part", ["alarm", "recovery", "fill"])
def test_missing_records_are_untestable(part):
    data = quick()
    del data["samples"][part]
    f = found(data)
    ids = {"alarm": ("alarm_listed", "writes_refused", "reads_worked", "delete_worked"),
           "recovery": ("compaction_kept_size", "defrag_returned_space", "recovered",
                        "published_recovery"),
           "fill": ("refused_at_quota", "fill_slowdown", "course_write_performance")}[part]
    assert all(f[i].holds is None for i in ids)


# -- the probes beyond writes, reads and the delete; the early disarm; the watched defrag ---

NOSPACE = {"code": "RESOURCE_EXHAUSTED", "details": analysis.PUBLISHED_NOSPACE,
           "elapsed_s": 0.002, "outcome": "failed"}
TIMED_OUT = {"code": "DEADLINE_EXCEEDED", "details": "", "elapsed_s": 5.0, "outcome": "unknown"}
MEMBERS = ("qnode1", "qnode2", "qnode3")


def reads_around(start: float, end: float, blocked: bool, step: float = 0.0005) -> list[dict]:
    """Back-to-back reads of ``step`` from 0 to ``end`` + 0.1 s; with ``blocked`` the read
    sent just after ``start`` is answered only at ``end`` + 0.1 ms."""
    reads, sent = [], 0.0
    while sent < end + 0.1:
        took = step
        if blocked and start <= sent < end:
            took = end + 0.0001 - sent
        reads.append({"sent_s": round(sent, 6), "elapsed_s": round(took, 6), "outcome": "ok",
                      "code": "OK"})
        sent += took
    return reads


def sizes(total: int, in_use: int) -> dict:
    return {"db_size": dict.fromkeys(MEMBERS, total),
            "db_size_in_use": dict.fromkeys(MEMBERS, in_use)}


def with_new_samples(blocked: bool = True) -> dict:
    """The quick run plus what the experiment records since the lease, txn, early-disarm and
    reader steps: the outcomes of the lab's own runs (lease grant refused, the rest
    accepted, the alarm back after the early write)."""
    data = quick()
    samples = data["samples"]
    probes = samples["alarm"]["probes"]
    probes["lease_grant"] = dict(NOSPACE)
    probes["lease_keepalive"] = {**ACCEPTED, "ttl": 300}
    probes["lease_revoke"] = {**ACCEPTED, "key_gone": True}
    probes["txn_range"] = {**ACCEPTED, "succeeded": True}
    probes["txn_delete"] = {**ACCEPTED, "succeeded": True}
    recovery = samples["recovery"]
    recovery["alarms_at_compact"] = [{"alarm": "NOSPACE", "member": "qnode2", "member_id": 2}]
    alarm_of_1 = [{"alarm": "NOSPACE", "member": "qnode1", "member_id": 1}]
    recovery["early_disarm"] = {
        "poll_limit_s": 2.0,
        "disarm": [{**ACCEPTED, "alarm": "NOSPACE", "member": "qnode2", "member_id": 2}],
        "alarms_after_disarm": [],
        "sizes_before_write": {"phase": "disarmed, not defragmented", "at_s": 18.1,
                               **sizes(17_281_024, 16_576_512)},
        "write": dict(NOSPACE),
        "alarms_after_write": {m: list(alarm_of_1) for m in MEMBERS},
        "listed_after_s": 0.009}
    for defrag in recovery["defragment"]:
        start, end = 0.20025, 0.20025 + defrag["elapsed_s"]
        defrag.update(started_s=start, ended_s=round(end, 6), reader_lead_s=0.2,
                      reader_tail_s=0.1, reads=reads_around(start, end, blocked))
    samples["alarm"].update(leader="qnode1", follower="qnode2")
    samples["phases"] = [
        {"phase": "start", "at_s": 0.0, **sizes(20_480, 12_288)},
        {"phase": "refusal", "at_s": 1.6, **sizes(16_588_800, 16_048_128)},
        {"phase": "during the alarm", "at_s": 1.65, **sizes(16_588_800, 16_048_128)},
        {"phase": "before compaction", "at_s": 1.7, **sizes(16_588_800, 16_048_128)},
        {"phase": "compacted", "at_s": 1.8, **sizes(17_281_024, 16_576_512)},
        {"phase": "disarmed, not defragmented", "at_s": 1.9, **sizes(17_281_024, 16_576_512)},
        {"phase": "defragmented qnode1", "at_s": 2.2, **sizes(507_904, 499_712)},
        {"phase": "written again", "at_s": 2.9, **sizes(507_904, 499_712)}]
    return data


NEW_IDS = (*analysis.ACCEPTS, "nospace-accepts-compact", "compaction-frees-in-use",
           "disarm-before-defrag-realarms", "defrag-blocks-member", "published-defrag-blocks")


def test_an_older_run_has_none_of_the_new_findings(tmp_path):
    f = found(quick())
    assert not set(NEW_IDS) & set(f)
    text = render(tmp_path, quick())
    assert "dbSizeInUse" not in text and "Defragmented member" not in text


def test_the_new_findings_as_measured_on_the_lab(tmp_path):
    f = found(with_new_samples())
    assert f["nospace-accepts-lease-grant"].holds is False
    assert "refused (RESOURCE_EXHAUSTED" in f["nospace-accepts-lease-grant"].text
    for id_ in ("nospace-accepts-lease-keepalive", "nospace-accepts-lease-revoke",
                "nospace-accepts-txn-range", "nospace-accepts-txn-delete",
                "nospace-accepts-compact", "disarm-before-defrag-realarms",
                "defrag-blocks-member"):
        assert f[id_].holds is True, (id_, f[id_].text)
    assert f["published-defrag-blocks"].holds is True
    assert f["published-defrag-blocks"].kind == "published"
    assert f["compaction-frees-in-use"].holds is False
    assert "still reported up to 103 % of the space in use" in f["compaction-frees-in-use"].text
    realarm = f["disarm-before-defrag-realarms"]
    assert "3 of 3 members listed NOSPACE again" in realarm.text
    # how the look that found it was polled is a figure, not the sentence's
    assert "asked every" not in realarm.text and len(realarm.text) <= 220
    assert realarm.figures["polled"] == "every member's alarms, every 100 ms"
    assert realarm.figures["write → NOSPACE listed again"].endswith("(the look that found it)")
    assert f["nospace-accepts-lease-revoke"].figures[
        analysis.PROBE_LABELS["lease_revoke"]] == "accepted, its key deleted"
    # the old findings are untouched by the new samples
    old = found(quick())
    assert all(f[i].holds == old[i].holds for i in old)
    text = render(tmp_path, with_new_samples())
    for id_ in NEW_IDS:
        assert f[id_].text in text, id_
    assert "| 4 | compacted | qnode1 16.5 MiB" in text
    assert "| Defragmented member |" in text and "quota_phases.png" in text
    assert "one write, not yet defragmented; alarms after it: qnode1: NOSPACE of qnode1" in text
    assert "compaction to the current revision (the recovery's first step) | ok" in text


def test_the_blocking_figures_come_from_the_reads():
    data = with_new_samples()
    summary = analysis.summarize(data["samples"], data["params"])
    first = summary["recovery"]["defrag_blocking"][0]
    defrag = data["samples"]["recovery"]["defragment"][0]
    assert first["member"] == "qnode1"
    # the read sent at 0.2 s was answered at 0.2005 s, within the defragmentation; the next,
    # blocked, 0.1 ms after the defragmentation's end: the longest time without an answer
    assert first["longest_gap_s"] == pytest.approx(defrag["ended_s"] + 0.0001 - 0.2005,
                                                   abs=1e-6)
    assert first["answered_after_s"] == pytest.approx(0.0001, abs=1e-6)
    assert first["reads_during"] == 2 and first["not_ok_during"] == 0
    assert first["median_read_before_s"] == pytest.approx(0.0005)


def test_a_member_that_keeps_answering_during_its_defragmentation(tmp_path):
    before = render(tmp_path / "a", with_new_samples())
    data = with_new_samples(blocked=False)
    f = found(data)
    assert f["defrag-blocks-member"].holds is False
    assert f["published-defrag-blocks"].holds is False
    assert "qnode1, qnode2 and qnode3 kept answering" in f["defrag-blocks-member"].text
    after = render(tmp_path / "b", data)
    assert f["defrag-blocks-member"].text in after
    assert f["defrag-blocks-member"].text not in before


def test_a_defragmentation_too_short_to_tell():
    data = with_new_samples()
    defrag = data["samples"]["recovery"]["defragment"][1]
    defrag["elapsed_s"] = 0.001  # two median reads
    f = found(data)
    assert f["defrag-blocks-member"].holds is None
    assert "qnode2 took less than 10 median reads" in f["defrag-blocks-member"].text
    assert f["published-defrag-blocks"].holds is None


def test_a_lease_grant_accepted_during_the_alarm(tmp_path):
    before = render(tmp_path / "a", with_new_samples())
    data = with_new_samples()
    data["samples"]["alarm"]["probes"]["lease_grant"] = dict(ACCEPTED)
    f = found(data)
    assert f["nospace-accepts-lease-grant"].holds is True
    after = render(tmp_path / "b", data)
    assert f["nospace-accepts-lease-grant"].text in after
    assert f["nospace-accepts-lease-grant"].text not in before


def test_unknown_or_expired_lease_probes_are_untestable():
    data = with_new_samples()
    probes = data["samples"]["alarm"]["probes"]
    probes["lease_keepalive"]["ttl"] = 0
    probes["txn_range"] = dict(TIMED_OUT)
    f = found(data)
    assert f["nospace-accepts-lease-keepalive"].holds is None
    assert "already expired" in f["nospace-accepts-lease-keepalive"].text
    assert f["nospace-accepts-txn-range"].holds is None
    assert "its outcome is unknown" in f["nospace-accepts-txn-range"].text


def test_a_refused_transaction_without_a_put():
    data = with_new_samples()
    data["samples"]["alarm"]["probes"]["txn_delete"] = {**NOSPACE, "succeeded": None}
    f = found(data)
    assert f["nospace-accepts-txn-delete"].holds is False
    # beside it, the size of the member that took it against the quota (the lab's run 3
    # refused both transactions with every dbSize above the quota, runs 1-2 accepted them)
    assert f["nospace-accepts-txn-delete"].figures[
        "dbSize of qnode1, which took it, just before"] == "15.8 MiB (quota 16.0 MiB)"


def test_a_write_after_the_early_disarm_that_is_accepted(tmp_path):
    before = render(tmp_path / "a", with_new_samples())
    data = with_new_samples()
    early = data["samples"]["recovery"]["early_disarm"]
    early["write"] = dict(ACCEPTED)
    early["alarms_after_write"] = {m: [] for m in MEMBERS}
    f = found(data)
    assert f["disarm-before-defrag-realarms"].holds is False
    assert "no alarm was listed after it" in f["disarm-before-defrag-realarms"].text
    after = render(tmp_path / "b", data)
    assert f["disarm-before-defrag-realarms"].text in after
    assert f["disarm-before-defrag-realarms"].text not in before


def test_a_refused_write_without_the_alarm_back_does_not_count_as_realarmed():
    data = with_new_samples()
    data["samples"]["recovery"]["early_disarm"]["alarms_after_write"] = {m: [] for m in MEMBERS}
    f = found(data)
    assert f["disarm-before-defrag-realarms"].holds is False


@pytest.mark.parametrize("change", ["disarm failed", "alarm left", "write timed out"])
def test_an_early_disarm_that_tests_nothing(change):
    data = with_new_samples()
    early = data["samples"]["recovery"]["early_disarm"]
    if change == "disarm failed":
        early["disarm"][0].update(outcome="failed", code="UNAVAILABLE")
    elif change == "alarm left":
        early["alarms_after_disarm"] = [{"alarm": "NOSPACE", "member": "qnode2", "member_id": 2}]
    else:
        early["write"] = dict(TIMED_OUT)
    assert found(data)["disarm-before-defrag-realarms"].holds is None


def test_a_compaction_that_frees_space_in_use():
    data = with_new_samples()
    compacted = next(p for p in data["samples"]["phases"] if p["phase"] == "compacted")
    compacted["db_size_in_use"] = dict.fromkeys(MEMBERS, 600_000)
    f = found(data)
    assert f["compaction-frees-in-use"].holds is True
    compacted["db_size_in_use"]["qnode2"] = None
    assert found(data)["compaction-frees-in-use"].holds is None


def test_a_compaction_sent_without_an_alarm_shows_nothing():
    data = with_new_samples()
    data["samples"]["recovery"]["alarms_at_compact"] = []
    assert found(data)["nospace-accepts-compact"].holds is None
