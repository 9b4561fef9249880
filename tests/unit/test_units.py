"""Unit tests for etcdlab.figures.units, the one place numbers become text."""

import math

import pytest

from etcdlab.figures import units


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.000412, "412 µs"),
        (0.0231, "23.1 ms"),
        (1.234, "1.23 s"),
        (0.5, "500 ms"),
        (60.0, "60.0 s"),
        (3612.4, "3612 s"),
        (0.0000005, "500 ns"),
        (0, "0 s"),
        (-0.0042, "-4.20 ms"),
        (0.0009997, "1.00 ms"),  # rounding carries into the next unit
        (0.99996, "1.00 s"),
    ],
)
def test_fmt_seconds_picks_the_unit(seconds, text):
    assert units.fmt_seconds(seconds) == text


def test_fmt_ms_takes_milliseconds():
    assert units.fmt_ms(1000) == "1.00 s"
    assert units.fmt_ms(150) == "150 ms"
    assert units.fmt_ms(0.35) == "350 µs"


@pytest.mark.parametrize(
    ("size", "text"),
    [(512, "512 B"), (1536, "1.50 KiB"), (16 * 1024**2, "16.0 MiB"), (2 * 1024**3, "2.00 GiB")],
)
def test_fmt_bytes_uses_binary_units(size, text):
    assert units.fmt_bytes(size) == text


def test_fmt_rate_count_percent_bool_factor():
    assert units.fmt_rate(1353.4) == "1,353 ops/s"
    assert units.fmt_rate(12.34) == "12.3 ops/s"
    assert units.fmt_rate(583, "QPS") == "583 QPS"
    assert units.fmt_count(12345) == "12,345"
    assert units.fmt_count(3.0) == "3"
    assert units.fmt_percent(0.123) == "12.3 %"
    assert units.fmt_bool(True) == "yes"
    assert units.fmt_bool(False) == "no"
    assert units.fmt_factor(23.4) == "23×"
    assert units.fmt_factor(1.46) == "1.5×"


def test_fmt_p_value_rounds_down_to_three_digits_and_floors_at_a_thousandth():
    assert units.fmt_p_value(0.2314) == "0.231"
    assert units.fmt_p_value(0.29) == "0.290"
    assert units.fmt_p_value(0.04999) == "0.0499"
    assert units.fmt_p_value(0.05) == "0.0500"
    assert units.fmt_p_value(0.0004) == "< 0.001"
    assert units.fmt_p_value(1.0) == "1.00"
    assert units.fmt_p_value(None) == units.MISSING
    with pytest.raises(ValueError, match="p-value"):
        units.fmt_p_value(1.5)


def test_none_is_shown_as_missing_everywhere():
    for formatter in units.FILTERS.values():
        assert formatter(None) == units.MISSING


def test_invalid_numbers_are_rejected():
    with pytest.raises(ValueError):
        units.fmt_seconds(math.nan)
    with pytest.raises(ValueError, match="whole number"):
        units.fmt_count(2.5)


def test_filters_are_the_formatters():
    assert units.FILTERS["seconds"] is units.fmt_seconds
    assert units.FILTERS["yesno"] is units.fmt_bool


def test_a_resolved_figure_is_never_finer_than_its_instrument():
    from etcdlab.figures.units import fmt_resolution, fmt_resolved

    assert fmt_resolved(1.234, 0.005) == "1.23 s (±5 ms)"
    assert fmt_resolved(0.829, 0.005) == "829 ms (±5 ms)"
    assert fmt_resolved(8.3, 1.0) == "8 s (±1 s)"
    assert fmt_resolved(48.47, 1.0) == "48 s (±1 s)"
    assert fmt_resolved(6.45, 0.05) == "6.45 s (±50 ms)"
    assert fmt_resolved(2.0, 1 / 3) == "2.0 s (±333 ms)"
    # Below the resolution only a bound is known: no "5.00 ms (±100 ms)".
    assert fmt_resolved(0.005, 0.1) == "< 100 ms"
    assert fmt_resolved(0.574, 1.0) == "< 1 s"
    assert fmt_resolved(None, 1.0) == "—"
    assert fmt_resolution(1.0) == "1 s" and fmt_resolution(0.005) == "5 ms"


def test_no_resolved_figure_shows_a_digit_below_its_resolution():
    import re

    from etcdlab.figures.units import fmt_resolved

    scale = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
    for resolution in (0.001, 0.005, 0.05, 0.1, 1 / 3, 1.0, 2.0):
        for value in (0.0123, 0.5, 0.987, 1.2345, 7.77, 123.456):
            text = fmt_resolved(value, resolution)
            if text.startswith("<"):
                assert value < resolution
                continue
            number, unit = re.match(r"([-\d.,]+) (\S+) \(", text).groups()
            decimals = len(number.split(".")[1]) if "." in number else 0
            last_digit = 10.0 ** -decimals * scale[unit]
            shown = float(number.replace(",", "")) * scale[unit]
            step = 10 ** math.floor(math.log10(resolution))  # the resolution's leading digit
            assert (last_digit >= step * 0.999
                    or math.isclose(shown / step, round(shown / step), abs_tol=1e-6)), text
            assert abs(shown - value) <= max(resolution, last_digit / 2) * 1.001, text
