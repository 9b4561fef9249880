"""The section's evidence row of a finding: figure, n, bound and instrument read from its
figures' text (etcdlab.report.evidence)."""

from etcdlab.report.evidence import NONE, EvidenceRow, evidence_row, evidence_rows


def test_no_figures_no_row():
    assert evidence_row({}) is None


def test_instrument_figure_and_share():
    row = evidence_row({"polled": "every 5.00 ms", "range": "1.06 s – 1.36 s",
                        "trials inside the window": "3 of 3 (≥ 36.8 % at 95 %)"})
    assert row == EvidenceRow("range: 1.06 s – 1.36 s", "3", "≥ 36.8 % at 95 %",
                              "polled every 5.00 ms")


def test_n_and_interval_leave_the_figure():
    row = evidence_row({"register() → last watcher":
                        "12.2 ms (95 % CI 7.55 ms – 15.4 ms, n = 7)"})
    assert row.figure == "register() → last watcher: 12.2 ms"
    assert row.n == "7"
    assert row.bound == "95 % CI 7.55 ms – 15.4 ms"
    assert row.instrument == NONE


def test_thousands_and_p_value():
    row = evidence_row({"Kolmogorov–Smirnov": "D = 0.347, p = 0.739, n = 1,204"})
    assert row.n == "1,204"
    assert row.bound == "p = 0.739"
    # A parenthesis that is not only n or a bound stays in the figure.
    row = evidence_row({"model": "1.33 s (earliest of 2 timeouts)"})
    assert row.figure == "model: 1.33 s (earliest of 2 timeouts)"
    assert (row.n, row.bound) == (NONE, NONE)


def test_share_gives_its_whole_as_n():
    row = evidence_row({"lost": "292 of 400 (73.0 %; 95 % CI 68.4 % – 77.3 %)"})
    assert row.n == "400"
    assert row.bound == "95 % CI 68.4 % – 77.3 %"
    assert row.figure == "lost: 292 of 400 (73.0 %)"


def test_only_instruments():
    row = evidence_row({"resolution": "1 ms log stamps"})
    assert row == EvidenceRow(NONE, NONE, NONE, "resolution: 1 ms log stamps")


def test_n_of_the_shown_figure_first():
    row = evidence_row({"100 writes/s": "24 of 2,057 (1.2 %; 95 % CI 0.7 % – 1.7 %)",
                        "500 writes/s": "3 ms (n = 1,580)"})
    assert row.n == "2,057"
    assert row.bound == "95 % CI 0.7 % – 1.7 %"


def test_instrument_named_at_the_label_start_only():
    row = evidence_row({"certainly stale": "0 of 1,623 (≤ 0.2 % at 95 %)",
                        "possibly stale (within the bounds' resolution)": "578 of 1,623"})
    assert row.instrument == NONE
    row = evidence_row({"polling interval at the cut": "64 s", "offset": "13 µs"})
    assert row.instrument == "polling interval at the cut: 64 s"


def test_rows_only_for_findings_that_say_more_than_their_figure():
    from etcdlab.questions.findings import claim
    findings = [claim("a", True, "a held", "a did not", figure="12 ms"),
                claim("b", True, "b held", "b did not"),
                claim("c", True, "c held", "c did not", trials="3 of 4")]
    rows = evidence_rows(list(enumerate(findings, start=1)))
    assert [number for number, _ in rows] == [3]
    assert rows[0][1] == EvidenceRow("trials: 3 of 4", "4", NONE, NONE)


def test_resolution_goes_to_the_instrument_column():
    row = evidence_row({"new leader after the cut":
                        "1.06 s (n = 3: 895 ms, 1.06 s, 1.28 s), each ±5 ms (polled)"})
    assert row == EvidenceRow("new leader after the cut: 1.06 s", "3", NONE, "±5 ms, polled")
    row = evidence_row({"new leader after": "1.09 s (±50 ms)"})
    assert row == EvidenceRow("new leader after: 1.09 s", NONE, NONE, "±50 ms")


def test_a_figure_labelled_as_an_interval_is_the_bound():
    row = evidence_row({"lost": "1,212 of 1,600",
                        "95 % CI of the share lost": "73.6 % – 77.8 %"})
    assert row == EvidenceRow("lost: 1,212 of 1,600", "1,600", "95 % CI 73.6 % – 77.8 %", NONE)
