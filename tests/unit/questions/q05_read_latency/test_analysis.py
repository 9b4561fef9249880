"""Q5 ``read-latency``: the analysis on the quick run, and each finding against data with the
opposite outcome (its ``holds`` flips and the rendered section says something else)."""

from __future__ import annotations

import copy
import json

import pytest

from etcdlab.questions.findings import by_id
from etcdlab.questions.q05_read_latency import analysis
from etcdlab.questions.q05_read_latency import run as experiment
from tests import ROOT
from tests.unit.report_helpers import rendered_section as render

QUICK = ROOT / "tests" / "data" / "quick-run"


def quick() -> dict:
    return json.loads((QUICK / "read-latency.json").read_text())


def found(data: dict) -> dict:
    summary = analysis.summarize(data["samples"], data["params"])
    return by_id(analysis.findings(summary, data["params"]))


def cells(data: dict, concurrency: int, target: str) -> dict:
    return {c["consistency"]: c for c in data["samples"]["cells"]
            if c["concurrency"] == concurrency and c["target"] == target}


def test_summarize_works_on_the_quick_run():
    data = quick()
    summary = analysis.summarize(data["samples"], data["params"])
    assert summary["levels"] == [1, 8, 32]
    leader = summary["c1"]["leader"]
    assert leader["linearizable"]["reads"] == 1000
    assert leader["linearizable"]["median"]["low"] < leader["linearizable"]["p50_ms"] \
        < leader["linearizable"]["median"]["high"]
    assert summary["harness"]["ratio_median"]["n"] == 20
    # The experiment module still exposes the moved names.
    assert experiment.summarize is analysis.summarize
    assert experiment.EXPERIMENT.summarize is analysis.summarize
    assert experiment.cell_summary is analysis.cell_summary


def test_the_quick_run_findings():
    f = found(quick())
    assert f["direction"].holds is False          # 32 clients on the follower: not slower
    assert f["slower.c1.leader"].holds is True
    assert f["slower.c32.follower"].holds is False
    assert f["staleness-serializable"].holds is None  # the quick run's alone: no Q3 beside it
    assert "no completed Q3" in f["staleness-serializable"].text
    assert f["published_ratio"].holds is True
    assert f["published_absolute"].holds is None
    assert f["course_latency"].holds is True
    assert "0 of 12,000 (≤ 0.025 % at 95 %)" in f["errors"].text
    first = next(x for x in analysis.findings(
        analysis.summarize(quick()["samples"], {}), {}) if x.kind == "measured")
    assert first.id == "direction"


def test_asked_matches_the_full_run_defaults():
    defaults = {p.name: p.default for p in experiment.EXPERIMENT.parameters}
    for asked in analysis.ASKED:
        assert defaults[asked.param] == asked.value, asked.param


def _swap_consistency(data: dict, concurrency: int, target: str) -> None:
    pair = cells(data, concurrency, target)
    lin, ser = pair["linearizable"], pair["serializable"]
    lin["latencies_us"], ser["latencies_us"] = ser["latencies_us"], lin["latencies_us"]


def test_direction_and_the_cell_flip_when_the_follower_cell_is_clearly_slower(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    pair = cells(data, 32, "follower")
    pair["linearizable"]["latencies_us"] = [2 * v for v in pair["serializable"]["latencies_us"]]
    f = found(data)
    assert f["direction"].holds is True and f["slower.c32.follower"].holds is True
    after = render(tmp_path / "b", data)
    assert f["direction"].text in after and f["direction"].text not in before
    assert "6 of 6 cells" in after


def test_a_faster_linearizable_cell_contradicts_the_course_report(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    assert found(data)["course_latency"].holds is True
    _swap_consistency(data, 1, "leader")
    f = found(data)
    assert f["slower.c1.leader"].holds is False
    assert "below the serializable one" in f["slower.c1.leader"].text
    assert f["course_latency"].holds is False
    after = render(tmp_path / "b", data)
    assert "— **contradicts**" in after and f["course_latency"].text in after
    assert f["course_latency"].text not in before


def test_too_few_reads_make_a_cell_untestable():
    data = quick()
    for c in cells(data, 8, "leader").values():
        c["latencies_us"] = c["latencies_us"][:5]
    f = found(data)
    assert f["slower.c8.leader"].holds is None
    assert "too few reads" in f["slower.c8.leader"].text


def test_the_follower_hop_shows_when_the_follower_pays_more(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    assert found(data)["follower_hop"].holds is False
    lin = cells(data, 1, "follower")["linearizable"]
    lin["latencies_us"] = [v + 2000.0 for v in lin["latencies_us"]]
    f = found(data)
    assert f["follower_hop"].holds is True
    after = render(tmp_path / "b", data)
    assert f["follower_hop"].text in after and f["follower_hop"].text not in before


def test_throughput_that_grows_with_the_clients_is_not_saturated(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    assert found(data)["saturation"].holds is True
    for c in data["samples"]["cells"]:
        if c["concurrency"] == 32:
            c["elapsed_s"] = c["elapsed_s"] / 10
    f = found(data)
    assert f["saturation"].holds is False
    after = render(tmp_path / "b", data)
    assert "not yet saturated" in after and "not yet saturated" not in before


def test_a_slow_etcd3_client_misses_the_harness_target(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    assert found(data)["harness"].holds is True
    harness = data["samples"]["harness"]
    harness["etcd3"] = [1.5 * v for v in harness["bare"]]
    f = found(data)
    assert f["harness"].holds is False
    after = render(tmp_path / "b", data)
    assert f["harness"].text in after and f["harness"].text not in before


def test_a_cheap_client_is_a_small_part_of_the_latency(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    assert found(data)["client_cpu"].holds is True
    cpu = data["samples"]["harness"]["cpu_us_per_read"]
    cpu["bare"] = [10.0 for _ in cpu["bare"]]
    f = found(data)
    assert f["client_cpu"].holds is False
    after = render(tmp_path / "b", data)
    assert "a small part of the smallest latencies" in after
    assert "a small part of the smallest latencies" not in before


def test_errors_and_a_leader_change_are_reported(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    data["samples"]["cells"][0]["errors"] = {"unknown": 3}
    data["samples"]["leader_after"] = "qnode2"
    f = found(data)
    assert f["errors"].holds is False and "3 of 12,003" in f["errors"].text
    assert f["leader_stable"].holds is False
    after = render(tmp_path / "b", data)
    assert "The leader changed during the run (qnode1 before the cells, qnode2 after)" in after
    assert "The leader changed" not in before
    assert f["errors"].text in after


def test_a_ratio_far_from_the_docs_disagrees(tmp_path):
    data = quick()
    before = render(tmp_path / "a", data)
    lin = cells(data, 1, "leader")["linearizable"]
    lin["latencies_us"] = [4 * v for v in lin["latencies_us"]]
    f = found(data)
    assert f["published_ratio"].holds is False
    after = render(tmp_path / "b", data)
    assert f["published_ratio"].text in after and f["published_ratio"].text not in before


@pytest.mark.parametrize("missing", ["cells", "harness"])
def test_missing_parts_are_untestable_not_invented(missing):
    data = copy.deepcopy(quick())
    del data["samples"][missing]
    f = found(data)
    if missing == "cells":
        assert f["direction"].holds is None and f["published_ratio"].holds is None
    else:
        assert f["harness"].holds is None and f["client_cpu"].holds is None


def register_verdicts(serializable: str, linearizable: str) -> dict:
    """Q3's checked register histories as the partition result stores them."""
    def one(series, verdict):
        return {"file": f"partition.register-{series}.history.jsonl", "verdict": verdict,
                "operations": 250, "counterexample": {"stuck": ["c2 get /k0 → nil"]}
                if verdict == "not-linearizable" else None}
    return {"register-serializable": one("serializable", serializable),
            "register-linearizable": one("linearizable", linearizable)}


@pytest.mark.parametrize(("ser", "lin", "ser_holds", "lin_holds"), [
    ("not-linearizable", "linearizable", True, True),
    ("linearizable", "not-linearizable", False, False),
    ("unknown", "linearizable", None, True),
])
def test_staleness_is_cited_from_q3s_checked_histories(ser, lin, ser_holds, lin_holds):
    data = quick()
    summary = analysis.summarize(data["samples"], data["params"])
    f = by_id(analysis.findings(summary, data["params"], register_verdicts(ser, lin)))
    assert f["staleness-serializable"].holds is ser_holds
    assert f["staleness-linearizable"].holds is lin_holds
    if ser_holds:
        assert f["staleness-serializable"].figures["counterexample"] == "c2 get /k0 → nil"


def test_the_report_cites_this_runs_partition_verdicts_in_q5(tmp_path):
    from etcdlab import report

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "read-latency.json").write_text(json.dumps(quick()))
    partition = json.loads((QUICK / "partition.json").read_text())
    partition["samples"]["histories"] = register_verdicts("not-linearizable", "linearizable")
    (folder / "partition.json").write_text(json.dumps(partition))
    text = report.render_report(folder).read_text()
    q5 = text[text.index("## Q5."):text.index("## Q6.")]
    assert "A serializable read returned a value older than a write that had completed" in q5
    assert "No linearizable read was stale" in q5
    partition["status"], partition["error"] = "failed", "boom"  # a failed Q3 is not cited
    (folder / "partition.json").write_text(json.dumps(partition))
    text = report.render_report(folder).read_text()
    assert "no completed Q3" in text[text.index("## Q5."):text.index("## Q6.")]
