"""Declared parameters: types, ranges, units, and what --param and --trials accept."""

import math
import re

import pytest

from etcdlab import questions as experiments
from etcdlab.cli import parse_params
from etcdlab.errors import LabError
from etcdlab.params import Param

TIMEOUT = Param("op_timeout_s", 5.0, "timeout", unit="s", above=0)
TRIALS = Param("trials", 20, "trials", minimum=1)


@pytest.mark.parametrize(
    ("param", "raw", "expected"),
    [
        (TRIALS, "7", 7),
        (TRIALS, 7, 7),
        (TIMEOUT, "0.25", 0.25),
        (TIMEOUT, 2, 2.0),
        (Param("iburst", True), "no", False),
        (Param("iburst", True), "YES", True),
        (Param("iburst", True), "0", False),
        (Param("mode", "auto", choices=("auto", "true", "false")), False, "false"),
    ],
)
def test_values_are_read_by_the_declared_type(param, raw, expected):
    value = param.parse(raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("param", "raw", "message"),
    [
        (TRIALS, "abc", "trials must be a whole number ≥ 1, got 'abc'"),
        (TRIALS, "1.5", "trials must be a whole number ≥ 1, got '1.5'"),
        (TRIALS, 3.9, "trials must be a whole number ≥ 1, got 3.9"),
        (TRIALS, True, "trials must be a whole number ≥ 1, got True"),
        (TRIALS, "0", "got '0'"),
        (TIMEOUT, "nan", "op_timeout_s must be a finite number > 0 s, got 'nan'"),
        (TIMEOUT, "inf", "got 'inf'"),
        (TIMEOUT, "-1", "got '-1'"),
        (TIMEOUT, "0", "got '0'"),
        (TIMEOUT, math.nan, "got nan"),
        (Param("iburst", True), "maybe", "iburst must be true or false"),
        (Param("level", "info", choices=("info", "warn")), "loud", "must be one of info, warn"),
    ],
)
def test_bad_values_are_refused_with_what_they_must_be(param, raw, message):
    with pytest.raises(LabError, match=re.escape(message)):
        param.parse(raw)


def test_the_source_of_a_bad_value_is_named():
    with pytest.raises(LabError, match=r"\(from INVOKE_LAB_NODES\)$"):
        Param("nodes", 3, minimum=1, maximum=9).parse("abc", source="INVOKE_LAB_NODES")


def test_every_experiment_declares_its_parameters_with_help_and_a_valid_default():
    for experiment in experiments.registry().values():
        assert experiment.parameters, experiment.name
        for param in experiment.parameters:
            assert param.help, f"{experiment.name}.{param.name} has no help"
            assert param.check(param.default) == param.default
        assert set(experiment.quick) <= set(experiment.defaults)


def test_quick_values_outside_the_declaration_are_a_bug_caught_at_definition():
    election = experiments.get("election")
    with pytest.raises(LabError, match="trials must be"):
        type(election)(**{**election.__dict__, "quick": {"trials": 0}})


def test_an_unknown_parameter_lists_the_valid_ones_with_a_close_match():
    with pytest.raises(LabError, match=r"no parameter 'trails' \(did you mean trials\?\); "
                                       r"valid: trials, poll_interval_ms"):
        experiments.get("election").params(trails="3")


def test_param_values_from_the_command_line_are_checked():
    conflicts = experiments.get("conflicts")
    assert conflicts.params(op_timeout_s="0.5")["op_timeout_s"] == 0.5
    with pytest.raises(LabError, match=r"op_timeout_s must be .* got 'nan' \(from --param\)"):
        conflicts.params(op_timeout_s="nan")
    with pytest.raises(LabError, match="concurrency must be comma-separated numbers"):
        experiments.get("read-latency").params(concurrency="1,,8")


def test_param_pairs_need_an_equals_sign():
    assert parse_params(["seed=2", " trials = 3 "]) == {"seed": "2", "trials": "3"}
    with pytest.raises(LabError, match="--param takes KEY=VALUE, got 'foo'"):
        parse_params(["foo"])
    with pytest.raises(LabError, match="KEY=VALUE"):
        parse_params(["=3"])


def test_trials_flag_applies_only_when_given_and_must_agree_with_param():
    assert parse_params(["trials=3"]) == {"trials": "3"}
    assert parse_params([], trials="4") == {"trials": "4"}
    assert parse_params(["trials=4"], trials="4") == {"trials": "4"}
    with pytest.raises(LabError, match="trials is given twice, as '3' and '4'"):
        parse_params(["trials=3"], trials="4")
    with pytest.raises(LabError, match="seed is given twice"):
        parse_params(["seed=1", "seed=2"])
    election = experiments.get("election")
    assert election.params(True, **parse_params(["trials=7"]))["trials"] == 7
    assert election.params(True, **parse_params([]))["trials"] == 3


def test_trials_on_an_experiment_without_trials_is_refused():
    with pytest.raises(LabError, match="conflicts has no parameter 'trials'"):
        experiments.get("conflicts").params(**parse_params([], trials="3"))


def test_a_parameter_named_like_an_argument_of_params_is_just_unknown():
    with pytest.raises(LabError, match="election has no parameter 'quick'"):
        experiments.get("election").params_with(False, {"quick": "1"})
