"""Unit tests for etcdlab.report: render REPORT.md from saved results.

The results below are FIXTURES FOR RENDERING, hand-made small samples with round
numbers. They are not measurements of etcd and must never be quoted as such.
"""

import re

import pytest

from etcdlab import report
from etcdlab.results import Result, write_result
from tests.unit.report_helpers import report_text

METADATA = {
    "started_utc": "2025-06-16T23:35:00.000+00:00",
    "finished_utc": "2025-06-16T23:40:00.000+00:00",
    "etcd_version": "3.5.6",
    "node_count": 3,
    "heartbeat_ms": 100,
    "election_timeout_ms": 1000,
    "image": "ubuntu:22.04",
    "kernel": "6.1.0",
    "cpu_count": 8,
    "host": "fixture-host",
}

# Fixture: six crash trials between 1.10 s and 1.60 s, six graceful ones around 50 ms.
CRASH_ELECTED = [1.10, 1.20, 1.30, 1.40, 1.50, 1.60]
GRACEFUL_ELECTED = [0.04, 0.05, 0.05, 0.06, 0.05, 0.04]


def _trial(trial, elected, log_elected, term_before, term_after):
    return {
        "trial": trial, "killed": "node2", "new_leader": "node1", "elected_s": elected,
        "first_write_s": elected + 0.06, "log_elected_s": log_elected,
        "term_before": term_before, "term_after": term_after,
    }


def election_fixture() -> Result:
    crash = [_trial(i + 1, t, t - 0.02, 5 + i, 6 + i) for i, t in enumerate(CRASH_ELECTED)]
    graceful = [_trial(i + 1, t, None, 20 + i, 21 + i) for i, t in enumerate(GRACEFUL_ELECTED)]
    members = [{"name": f"node{i}", "revision": 42, "hash": 123456} for i in (1, 2, 3)]
    return Result(
        experiment="election", status="ok", error=None, metadata=METADATA,
        params={"trials": 6, "poll_interval_ms": 10},
        summary={"members_consistent": True},
        samples={
            "crash": crash,
            "graceful": graceful,
            "consistency": [{"series": "crash", "consistent": True, "members": members},
                            {"series": "graceful", "consistent": True, "members": members}],
        },
    )


def conflicts_fixture() -> Result:
    return Result(
        experiment="conflicts", status="ok", error=None, metadata=METADATA,
        params={"workers": 4, "increments": 50},
        summary={"revisions_strictly_increasing": True},
        samples={
            "naive": {"acknowledged": 200, "final_value": 150, "elapsed_s": 2.0},
            "cas": {"acknowledged": 200, "final_value": 200, "retries": 100, "elapsed_s": 4.0,
                    "revisions": list(range(10, 210))},
        },
    )


def failed_quota_fixture() -> Result:
    return Result(
        experiment="quota", status="failed", error="etcdserver: request timed out",
        metadata={**METADATA, "etcd_version": "3.5.17"}, params={}, summary={}, samples={},
    )


@pytest.fixture
def rendered(tmp_path):
    for result in (election_fixture(), conflicts_fixture(), failed_quota_fixture()):
        write_result(tmp_path / f"{result.experiment}.json", result)
    return tmp_path / report.REPORT_NAME, report_text(tmp_path)


def test_report_is_written_beside_the_results(rendered, tmp_path):
    path, _ = rendered
    assert path == tmp_path / "REPORT.md"
    page = (tmp_path / report.HTML_NAME).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<h2 id=\"summary\">" in page
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".REPORT.*"))


def test_every_question_heading_appears_once_in_order(rendered):
    _, text = rendered
    positions = []
    for question in report.QUESTIONS:
        heading = f"## Q{question.number}. {question.title}"
        assert text.count(heading) == 1, heading
        positions.append(text.index(heading))
    assert positions == sorted(positions)


def test_sections_not_run_say_so_with_the_command(rendered):
    _, text = rendered
    for name in ("partition", "lamport", "read-latency", "ntp-isolation", "lease-drift",
                 "faulty-clock", "membership"):
        assert f"Not measured in this run: run `invoke experiment {name}`." in text
    assert "invoke experiment election" not in text
    assert "invoke experiment conflicts" not in text


def test_failed_experiment_shows_its_error(rendered):
    _, text = rendered
    quota = text[text.index("## Q6."):text.index("## Q7.")]
    assert "The experiment failed" in quota
    assert "etcdserver: request timed out" in quota
    assert "2 GiB" in quota  # the published figure is still there


def test_election_numbers_are_formatted(rendered):
    _, text = rendered
    election = text[text.index("## Q1."):text.index("## Q2.")]
    # Crash median of the fixture is 1.35 s; graceful median 50 ms, i.e. 27x less.
    assert "after a median of 1.35 s" in election
    assert "| median | 1.35 s (95 % CI 1.10 s – 1.60 s, n = 6) |" in election
    assert "faster than a crash: its median election was 27× shorter" in election
    assert "| Crash (SIGKILL) | 6 | 1.35 s (95 % CI 1.10 s – 1.60 s, n = 6) |" in election
    assert "inside the [1.00 s, 2.00 s) window" in election
    assert "every member reported the same revision and KV hash" in election
    assert "| term rose by one | 6 of 6 (≥ 60.7 % at 95 %) |" in election
    assert "20.0 ms (95 % CI" in election  # elected_s - log_elected_s in the fixture
    assert "Ongaro & Ousterhout" in election and "287 ms" in election
    assert "23:35:44.921" in election  # the course report's observation
    # 1.77 s is above all six crash trials, and 0 of 6 cannot call it rare (≤ 39.3 %).
    assert "but 6 are too few to call it rare" in election
    assert "0 of 6 (≤ 39.3 % at 95 %)" in election
    assert not re.search(r"\d\.\d{4,}", election), "an unformatted float leaked"


def test_conflicts_numbers_are_formatted(rendered):
    _, text = rendered
    conflicts = text[text.index("## Q2."):text.index("## Q3.")]
    assert "lost 50 of 200 acknowledged increments (25.0 %)" in conflicts
    cas_row = "| CAS on mod_revision | 200 | 200 | 0 | 100 | 50.0 ops/s | 4.00 s |"
    assert cas_row in conflicts
    assert "100 retries (0.50 per increment)" in conflicts
    assert "583 QPS" in conflicts  # published figure beside ours
    assert "a última operação commitada prevaleça" in conflicts
    assert "strictly increasing order (200 revisions)" in conflicts


def test_chart_files_exist_and_are_linked(rendered, tmp_path):
    _, text = rendered
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == ["conflicts.png", "election.png", "election_model.png"]
    for name in links:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_environment_table_shows_disagreeing_versions(rendered):
    _, text = rendered
    environment = text[text.index("## Environment"):text.index("## Q1.")]
    assert "| etcd version | 3.5.6 (conflicts, election); 3.5.17 (quota) |" in environment
    assert "| Cluster members | 3 |" in environment
    assert "| Election timeout | 1.00 s |" in environment
    assert "| First experiment started | 2025-06-16 23:35:00 UTC |" in environment


def test_empty_folder_renders_every_section_as_not_measured(tmp_path):
    text = report.render_report(tmp_path).read_text(encoding="utf-8")
    assert text.count("Not measured in this run") == len(report.QUESTIONS)
    method = (tmp_path / report.METHOD_NAME).read_text(encoding="utf-8")
    assert "No results were found" in method


def test_result_of_unexpected_shape_does_not_break_the_report(tmp_path):
    broken = Result(
        experiment="conflicts", status="ok", error=None, metadata=METADATA,
        params={"workers": 1, "increments": 1}, summary={}, samples={"naive": {}},
    )
    write_result(tmp_path / "conflicts.json", broken)
    text = report.render_report(tmp_path).read_text(encoding="utf-8")
    assert "does not have the shape this report expects" in text
    assert "KeyError" in text


def test_the_appendices_move_to_method_md_and_the_report_links_them(tmp_path):
    for result in (election_fixture(), conflicts_fixture()):
        write_result(tmp_path / f"{result.experiment}.json", result)
    text = report.render_report(tmp_path).read_text(encoding="utf-8")
    method = (tmp_path / report.METHOD_NAME).read_text(encoding="utf-8")
    html = (tmp_path / report.HTML_NAME).read_text(encoding="utf-8")
    assert "### Appendix" not in text
    assert "Method and full statistics: [METHOD.md](METHOD.md#q1-how-long-does-etcd-take-to-" \
           "elect-a-new-leader)" in text
    assert "## Q1. How long does etcd take to elect a new leader?" in method
    assert "### Method\n" in method and "## Environment" in method
    assert "[METHOD.md](METHOD.md#environment)" in text
    assert 'id="appendix"' in html  # REPORT.html keeps them, folded in their sections
