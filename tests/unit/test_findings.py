"""The findings framework: a claim states its outcome from data, with exact bounds."""

import math

import pytest

from etcdlab.figures.stats import binomial_interval, binomial_upper
from etcdlab.figures.units import fmt_median, fmt_ms, fmt_share, fmt_whole_seconds, fmt_within
from etcdlab.questions.findings import (
    Asked,
    asked_values,
    by_id,
    claim,
    comparison,
    run_vs_question,
    untestable,
)


def test_a_finding_reads_the_sentence_of_its_outcome():
    held = claim("fenced", True, "fenced writes were rejected", "fenced writes were accepted")
    failed = claim("fenced", False, "fenced writes were rejected", "fenced writes were accepted")
    unknown = claim("fenced", None, "a", "b", unknown="no stale write was attempted")
    assert (held.text, held.verdict) == ("fenced writes were rejected", "holds")
    assert (failed.text, failed.verdict) == ("fenced writes were accepted", "does not hold")
    assert (unknown.text, unknown.verdict) == ("no stale write was attempted",
                                               "not measurable here")


def test_a_comparison_says_agrees_contradicts_or_cannot_be_tested():
    verdicts = [comparison("c", "course", value, "yes", "no", "cannot fake Go's clock").verdict
                for value in (True, False, None)]
    assert verdicts == ["agrees", "contradicts", "cannot be tested in this run"]
    assert comparison("p", "raft paper", True, "y", "n").kind == "published"
    assert comparison("p", "course", True, "y", "n").as_dict()["kind"] == "course"



def test_an_untestable_claim_reads_its_reason_and_keeps_its_figures():
    measured = untestable("crash-window", "No crash trial was measured.")
    assert (measured.holds, measured.kind, measured.text, measured.verdict) == (
        None, "measured", "No crash trial was measured.", "not measurable here")
    assert measured.figures == {}
    # id and why are positional-only, so a figure may be labelled "why".
    published = untestable("published-mean", "Too few elections.", source="published",
                           **{"this run": "3 elections", "why": "the paper"})
    assert (published.kind, published.verdict) == ("published", "cannot be tested in this run")
    assert published.figures == {"this run": "3 elections", "why": "the paper"}
    assert published.as_dict()["figures"] == {"this run": "3 elections", "why": "the paper"}
    assert untestable("c", "Not in this lab.", source="course").kind == "course"


@pytest.mark.parametrize("bad", [
    dict(yes="same", no="same"),          # claims the same whatever the data
    dict(yes="a", no="b", holds=None),    # untestable without saying why
])
def test_a_finding_that_cannot_follow_the_data_is_refused(bad):
    with pytest.raises(ValueError):
        claim("x", bad.get("holds", True), bad["yes"], bad["no"])


def test_finding_ids_are_unique_within_a_section():
    a = claim("a", True, "y", "n")
    assert by_id([a]) == {"a": a}
    with pytest.raises(ValueError):
        by_id([a, a])


def test_run_vs_question_lists_only_what_differs():
    asked = (Asked("isolation_s", 300, "isolation", lambda s: f"{s} s"),
             Asked("trials", 20, "trials"))
    assert run_vs_question({"isolation_s": 30, "trials": 20}, asked) == [
        {"what": "isolation", "run": "30 s", "question": "300 s"}]
    assert run_vs_question({"isolation_s": 300, "trials": 20}, asked) == []


def test_asked_values_are_the_full_runs_values_by_parameter():
    asked = (Asked("isolation_s", 300.0, "isolation"), Asked("trials", 20, "trials"))
    assert asked_values(asked) == {"isolation_s": 300.0, "trials": 20}


def test_clopper_pearson_bounds_match_the_closed_forms():
    # k = 0: the one-sided bound is 1 - alpha^(1/n); the two-sided one uses alpha/2.
    assert math.isclose(binomial_upper(0, 20), 1 - 0.05 ** (1 / 20), rel_tol=1e-9)
    low, high = binomial_interval(0, 20)
    assert low == 0 and math.isclose(high, 1 - 0.025 ** (1 / 20), rel_tol=1e-9)
    low, high = binomial_interval(3, 20)  # published table value: 0.0321 – 0.3789
    assert round(low, 4) == 0.0321 and round(high, 4) == 0.3789
    assert binomial_interval(20, 20)[1] == 1.0
    with pytest.raises(ValueError):
        binomial_upper(3, 2)


def test_counts_come_with_their_exact_bound():
    assert fmt_share(0, 20) == "0 of 20 (≤ 13.9 % at 95 %)"
    assert fmt_share(20, 20) == "20 of 20 (≥ 86.1 % at 95 %)"
    assert fmt_share(3, 20) == "3 of 20 (15.0 %; 95 % CI 3.2 % – 37.9 %)"


def test_small_n_shows_the_values_and_larger_n_the_exact_median_interval():
    assert fmt_median([1.17]) == "1.17 s (n = 1)"
    assert fmt_median([2.0, 1.0]) == "1.00 s, 2.00 s (n = 2)"
    assert fmt_median(range(1, 11)) == "5.50 s (95 % CI 2.00 s – 9.00 s, n = 10)"
    assert fmt_median([], fmt_ms) == "—"


def test_no_figure_is_more_precise_than_its_instrument():
    assert fmt_whole_seconds(8.09) == "8 s (±1 s)"
    assert fmt_within(1.19, 0.005) == "1.19 s (±5 ms)"


def test_history_verdicts_become_findings_and_unknown_is_no_guess():
    from etcdlab.questions.findings import history_findings

    def found(verdict, **more):
        samples = {"histories": {"main": {"file": "c.history.jsonl", "operations": 10,
                                          "faults": 1, "elapsed_s": 0.5, "budget_s": 20,
                                          "verdict": verdict, **more}}}
        return history_findings(samples)[0]
    assert found("linearizable").holds is True
    bad = found("not-linearizable", counterexample={"linearized": [], "stuck": ["p1: get"]})
    assert bad.holds is False and "p1: get" in bad.figures["the search got stuck at"]
    unknown = found("unknown")
    assert unknown.holds is None and "budget of 20 s ran out" in unknown.text
    assert history_findings({}) == []


def test_the_leases_of_the_leader_cut_trials_are_read_from_the_samples():
    from etcdlab.questions.findings import leader_change_leases

    lease = {"ttl_s": 30, "age_at_cut_s": 4.2, "remaining_before_cut_s": 26,
             "remaining_after_new_leader_s": 30}
    samples = {"leader_isolated": [{"lease": lease}, {"lease": None}, {}],
               "follower_isolated": [{"lease": lease}]}
    assert leader_change_leases(samples) == [
        {"ttl_s": 30, "age_at_cut_s": 4.2, "before_s": 26, "after_s": 30}]
    assert leader_change_leases({}) == []
