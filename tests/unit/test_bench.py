"""The bench's arithmetic: rows beside the floor of as many members, the growth goal."""

import pytest

from etcdlab.errors import LabError
from etcdlab.lab.bench import GROWTH_GOAL, Bench, Step, growth, growth_line, parse_sizes, rows


def bench(*steps: Step) -> Bench:
    return Bench(cpus=2, started="2026-12-02 10:00:00 UTC", etcd_version="3.5.1",
                 image="etcdlab/node:abc", steps=list(steps))


def test_each_step_is_shown_beside_the_floor_of_as_many_members():
    run = bench(Step("floor", 3, 3.0), Step("cold", 3, 15.0), Step("rerun", 3, 6.0),
                Step("floor", 9, 4.0), Step("cold", 9, 20.0))
    assert rows(run) == [
        ("docker run of bare etcd (the floor)", "3", "3.0", "1.0×"),
        ("cold provision", "3", "15.0", "5.0×"),
        ("re-run (no change)", "3", "6.0", "2.0×"),
        ("docker run of bare etcd (the floor)", "9", "4.0", "1.0×"),
        ("cold provision", "9", "20.0", "5.0×"),
    ]


def test_a_failed_step_shows_its_outcome_and_no_ratio_is_made_without_a_floor():
    run = bench(Step("floor", 3, None, "failed", "no leader"), Step("cold", 3, 15.0),
                Step("rerun", 3, None, "failed", "unhealthy"))
    assert rows(run) == [("docker run of bare etcd (the floor)", "3", "failed", ""),
                         ("cold provision", "3", "15.0", ""),
                         ("re-run (no change)", "3", "failed", "")]


def test_growth_compares_the_largest_size_with_the_smallest_against_the_goal():
    run = bench(Step("cold", 3, 10.0), Step("rerun", 3, 5.0), Step("cold", 5, 30.0),
                Step("cold", 9, 14.0), Step("rerun", 9, 7.0))
    grown = growth(run)
    assert grown == {"smallest": 3, "largest": 9, "cold": 1.4, "rerun": 1.4, "met": True}
    assert "9 members against 3: cold provision 1.40×, re-run 1.40×" in growth_line(run)
    assert f"(goal ≤ {GROWTH_GOAL}×: met)" in growth_line(run)
    slow = bench(Step("cold", 3, 10.0), Step("rerun", 3, 5.0), Step("cold", 9, 16.0),
                 Step("rerun", 9, 7.0))
    assert growth(slow)["met"] is False and "not met" in growth_line(slow)


def test_growth_cannot_be_told_from_one_size_or_a_failed_step():
    assert growth(bench(Step("cold", 3, 10.0)))["met"] is None
    assert "one size only" in growth_line(bench(Step("cold", 3, 10.0)))
    failed = bench(Step("cold", 3, 10.0), Step("rerun", 3, 5.0),
                   Step("cold", 9, None, "failed"), Step("rerun", 9, 6.0))
    grown = growth(failed)
    assert (grown["cold"], grown["rerun"], grown["met"]) == (None, 1.2, None)
    assert "cold provision not measured" in growth_line(failed)


def test_sizes_are_distinct_member_counts_in_range_ascending():
    assert parse_sizes("9, 3,5,3", 9) == (3, 5, 9)
    for bad in ("", "3,,5", "0", "10", "three", "-1", "3.5"):
        with pytest.raises(LabError, match="--sizes takes member counts from 1 to 9"):
            parse_sizes(bad, 9)


def test_the_json_record_carries_the_machine_the_steps_and_the_growth():
    record = bench(Step("floor", 3, 3.0), Step("cold", 3, 15.0)).as_dict()
    assert record["cpus"] == 2 and record["growth_goal"] == GROWTH_GOAL
    assert record["steps"][1] == {"step": "cold", "nodes": 3, "seconds": 15.0, "outcome": "ok",
                                  "detail": ""}
    assert record["growth"]["met"] is None
