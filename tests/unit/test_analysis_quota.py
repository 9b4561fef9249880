"""Q6 ``quota``: the analysis on the quick run, and each finding against samples with the
opposite outcome (its ``holds`` flips and the rendered section says something else)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etcdlab.analysis import by_id
from etcdlab.analysis import quota as analysis
from etcdlab.experiments import quota as experiment
from tests.unit.report_helpers import rendered_section as render

ROOT = Path(__file__).resolve().parents[2]
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
