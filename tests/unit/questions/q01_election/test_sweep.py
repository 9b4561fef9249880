"""Q1's timeout sweep: settings from samples, the model per setting, the findings."""

from etcdlab.questions.findings import by_id
from etcdlab.questions.q01_election import analysis
from etcdlab.questions.q01_election.sweep import summarize_sweep, sweep_findings, sweep_rows

MEMBERS = {"node1": "v", "node2": "v", "node3": "v"}


def trial(elected_s: float, term_before: int = 5, rise: int = 1) -> dict:
    return {"elected_s": elected_s, "first_write_s": elected_s + 0.05,
            "log_elected_s": elected_s - 0.004, "killed": "node1", "new_leader": "node2",
            "signal_delay_s": 0.01, "term_before": term_before,
            "term_after": term_before + rise, "trial": 1, "write_attempts": 9,
            "read_back": MEMBERS}


def samples(sweep_settings, crash=None, own=1000):
    return {"crash": crash if crash is not None else
            [trial(1.05 + 0.04 * i) for i in range(8)],
            "sweep": {"own_timeout_ms": own, "own_heartbeat_ms": 100,
                      "settings": sweep_settings}}


def setting(timeout_ms, values, rises=None):
    rises = rises or [1] * len(values)
    return {"timeout_ms": timeout_ms, "heartbeat_ms": timeout_ms // 10,
            "trials": [trial(v, rise=r) for v, r in zip(values, rises, strict=True)]}


def test_a_run_without_a_sweep_has_no_sweep_and_no_sweep_findings():
    assert summarize_sweep({"crash": [trial(1.2)]}) is None
    assert sweep_findings(None, 3, 0.005) == []
    assert sweep_rows(None, 3, 0.005) == []


def test_the_labs_own_setting_joins_the_sweep_and_settings_sort_by_timeout():
    sweep = summarize_sweep(samples([setting(500, [0.52, 0.58, 0.61, 0.66, 0.70, 0.75])]))
    assert [(s["timeout_ms"], s["source"], s["n"]) for s in sweep["settings"]] == [
        (500, "sweep", 6), (1000, "the crash series", 8)]
    assert sweep["elections"] == 14 and sweep["split_votes"] == 0
    assert sweep["settings"][0]["members"] == 3
    assert sweep["settings"][0]["p95_s"] is None  # n < 20: the largest is shown instead
    assert sweep["settings"][0]["max_s"] == 0.75


def test_times_that_grow_with_the_timeout_and_fit_the_model_hold_and_a_split_vote_counts():
    sweep = summarize_sweep(samples([setting(500, [0.52, 0.58, 0.61, 0.66, 0.70, 0.75],
                                             rises=[1, 1, 2, 1, 1, 1])]))
    found = by_id(sweep_findings(sweep, 3, 0.005))
    assert found["sweep-median-scales"].holds is True
    assert found["sweep-model-fit"].holds is True
    assert found["sweep-split-votes"].holds is False
    assert "1 of 14" in found["sweep-split-votes"].when_false
    assert found["raft-paper-figure-16"].holds is None
    assert found["raft-paper-figure-16"].kind == "published"
    assert "500 ms" in found["raft-paper-figure-16"].figures["this run, closest setting"]


def test_times_far_outside_the_window_are_rejected_by_the_model_and_break_the_trend():
    # 500 ms timeouts cannot give 3 s elections: [T, 2T) plus a heartbeat and a poll.
    sweep = summarize_sweep(samples([setting(500, [2.9, 3.0, 3.1, 3.2, 3.3, 3.4])]))
    found = by_id(sweep_findings(sweep, 3, 0.005))
    assert found["sweep-median-scales"].holds is False
    assert found["sweep-model-fit"].holds is False
    assert "500 ms" in found["sweep-model-fit"].when_false
    assert found["sweep-split-votes"].holds is True


def test_one_setting_alone_cannot_show_a_trend():
    sweep = summarize_sweep(samples([], crash=[trial(1.2), trial(1.3)]))
    found = by_id(sweep_findings(sweep, 3, 0.005))
    assert found["sweep-median-scales"].holds is None
    assert found["sweep-median-scales"].why_unknown


def test_the_rows_show_each_setting_beside_its_model():
    sweep = summarize_sweep(samples([setting(500, [0.52, 0.58, 0.61, 0.66, 0.70, 0.75])]))
    rows = sweep_rows(sweep, 3, 0.005)
    assert [r["timeout"] for r in rows] == ["500 ms", "1.00 s"]
    assert [r["source"] for r in rows] == ["sweep", "the crash series"]
    assert rows[0]["heartbeat"] == "50.0 ms" and rows[0]["n"] == "6"
    assert rows[0]["tail"] == "largest 750 ms" and rows[0]["split"].startswith("0 of 6")
    low, high = rows[0]["model"].split(" / ")
    assert low.endswith("ms") and high.endswith("ms")  # a 500 ms setting's model is < 1 s


def test_the_election_findings_carry_the_sweep_only_when_the_run_had_one():
    params = {"poll_interval_ms": 5}
    metadata = {"election_timeout_ms": 1000, "heartbeat_ms": 100, "node_count": 3}
    plain = analysis.findings(analysis.summarize({"crash": [trial(1.2)]}, params), params,
                              metadata)
    assert not any(f.id.startswith("sweep-") for f in plain)
    swept = analysis.findings(analysis.summarize(
        samples([setting(500, [0.55, 0.6, 0.65])]), params), params, metadata)
    assert {"sweep-median-scales", "sweep-model-fit", "sweep-split-votes",
            "raft-paper-figure-16"} <= {f.id for f in swept}


def sizes_samples(five=(1.02, 1.05, 1.09, 1.12, 1.18), crash=None):
    data = samples([], crash=crash)
    data["sizes"] = {"own_members": 3, "timeout_ms": 1000, "heartbeat_ms": 100,
                     "settings": [{"members": 5, "provision_s": 40.0,
                                   "trials": [trial(v) for v in five]}]}
    return data


def test_cluster_sizes_sit_beside_the_labs_own_with_their_survivors_model():
    from etcdlab.questions.q01_election.sweep import size_findings, size_rows, summarize_sizes
    assert summarize_sizes({"crash": [trial(1.2)]}) is None
    assert size_findings(None, 0.005) == []
    sizes = summarize_sizes(sizes_samples())
    assert [(s["members"], s["source"], s["n"]) for s in sizes["settings"]] == [
        (3, "the crash series", 8), (5, "temporary lab", 5)]
    rows = size_rows(sizes, 0.005)
    assert [r["members"] for r in rows] == ["3", "5"]
    # the model of 4 survivors has an earlier median than that of 2
    assert rows[1]["model"] != rows[0]["model"]
    found = by_id(size_findings(sizes, 0.005))
    assert found["sizes-median-falls"].holds is True  # 1.19 s with 3, 1.09 s with 5
    grown = by_id(size_findings(summarize_sizes(sizes_samples(five=(1.5, 1.6, 1.7))),
                                0.005))
    assert grown["sizes-median-falls"].holds is False
    assert "grew with the number of members" in grown["sizes-median-falls"].text
    far = by_id(size_findings(summarize_sizes(sizes_samples(five=[3.0 + i / 10
                                                                   for i in range(8)])),
                              0.005))
    assert far["sizes-model-fit"].holds is False and "5 members" in far["sizes-model-fit"].text
    whole = by_id(analysis.findings(analysis.summarize(sizes_samples(), {}), {}))
    assert "sizes-model-fit" in whole and "sizes-median-falls" in whole


def grid_samples(five_at_500=(0.56, 0.60, 0.66, 0.71), rises=None):
    """The lab's 3 members at 1000 ms (crash) and 500 ms (sweep); 5 members at both."""
    data = sizes_samples()
    data["sweep"]["settings"] = [setting(500, [0.55, 0.59, 0.65, 0.70])]
    data["sizes"]["settings"][0]["sweep"] = [setting(500, list(five_at_500), rises)]
    return data


def test_the_grid_has_a_cell_per_size_and_timeout_and_findings_that_follow_it():
    from etcdlab.questions.q01_election.sweep import grid_findings, grid_rows, summarize_sizes
    assert "grid" not in summarize_sizes(sizes_samples())  # no temporary lab swept
    assert grid_findings(summarize_sizes(sizes_samples()), 0.005) == []
    sizes = summarize_sizes(grid_samples())
    assert [(c["members"], c["timeout_ms"], c["source"], c["n"]) for c in sizes["grid"]] == [
        (3, 500, "sweep", 4), (3, 1000, "the crash series", 8),
        (5, 500, "temporary lab", 4), (5, 1000, "temporary lab", 5)]
    rows = grid_rows(sizes, 0.005)
    assert [(r["members"], r["timeout"]) for r in rows] == [
        ("3", "500 ms"), ("3", "1.00 s"), ("5", "500 ms"), ("5", "1.00 s")]
    found = by_id(grid_findings(sizes, 0.005))
    assert [found[i].holds for i in ("grid-model-fit", "grid-median-scales",
                                     "grid-split-votes")] == [True, True, True]
    assert "Bonferroni" in found["grid-model-fit"].text
    # 5 members slower at 500 ms than at 1000 ms: the trend breaks there, and the model
    # (500 ms: new leader within about 0.5–1.1 s) rejects times of 2 s and more
    slow = by_id(grid_findings(summarize_sizes(grid_samples(
        five_at_500=[2.0 + i / 10 for i in range(6)])), 0.005))
    assert slow["grid-median-scales"].holds is False
    assert slow["grid-median-scales"].text.startswith("At 5 members")
    assert slow["grid-model-fit"].holds is False
    assert "5 members, 500 ms" in slow["grid-model-fit"].text
    split = by_id(grid_findings(summarize_sizes(grid_samples(rises=[1, 2, 1, 1])), 0.005))
    assert split["grid-split-votes"].holds is False
    assert list(split["grid-split-votes"].figures) == ["5 members, 500 ms"]
    assert split["grid-split-votes"].figures["5 members, 500 ms"].startswith("1 of 4")
    whole = by_id(analysis.findings(analysis.summarize(grid_samples(), {}), {}))
    assert {"grid-model-fit", "grid-median-scales", "grid-split-votes"} <= set(whole)
