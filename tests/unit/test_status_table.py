"""`invoke status`: the default table fits the terminal, --wide keeps every column in full."""

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from etcdlab.cli import HEALTH_ERROR_CHARS, STATUS_COLUMNS, print_status
from etcdlab.lab.cluster import NodeStatus

LONG_ERROR = ("etcd unreachable: DEADLINE_EXCEEDED; alarm NOSPACE on member fd422379fda50e48 "
              "[quota 2 MiB]")

FOLLOWER = NodeStatus(
    name="node2", ip="172.21.0.12", container="running", healthy=True, etcd_version="3.5.17",
    member_id="91bc3c398fb3c146", is_leader=False, leader_id="8e9e05c52164694d", raft_term=4,
    raft_index=123456, db_size=20480, error="", chrony_role="client", chrony_synced=True,
    chrony_source="172.21.0.11", chrony_stratum=3, chrony_offset_ms=-0.012,
)
LEADER = replace(FOLLOWER, name="node1", ip="172.21.0.11", member_id="8e9e05c52164694d",
                 is_leader=True, chrony_role="server", chrony_source="local", chrony_stratum=10,
                 chrony_offset_ms=0.0)
UNHEALTHY = replace(FOLLOWER, name="node3", ip="172.21.0.13", member_id="fd422379fda50e48",
                    healthy=False, error=LONG_ERROR)
NOT_SYNCED = replace(FOLLOWER, name="node4", ip="172.21.0.14", member_id="ab12cd34ef560789",
                     chrony_synced=False, chrony_source="", chrony_stratum=None,
                     chrony_offset_ms=153.2)
STOPPED = replace(FOLLOWER, name="node5", ip="172.21.0.15", container="exited", healthy=False,
                  etcd_version="", member_id="", leader_id="", raft_term=None, raft_index=None,
                  db_size=None, error="container exited", chrony_role="", chrony_synced=False,
                  chrony_source="", chrony_stratum=None, chrony_offset_ms=None)
NODES = [LEADER, FOLLOWER, UNHEALTHY, NOT_SYNCED, STOPPED]
ROLES = {"node1": "leader", "node2": "follower", "node3": "follower", "node4": "follower",
         "node5": "-"}
HEALTH = {"node1": "healthy", "node2": "healthy", "node3": "unhealthy", "node4": "healthy",
          "node5": "unhealthy"}


def rendered(nodes, width, wide=False):
    out = Console(width=width, file=io.StringIO(), record=True, highlight=False)
    print_status(nodes, wide=wide, out=out)
    return out.export_text()


def rows(text):
    """Each table row as its list of cells (the │-separated lines)."""
    return [[cell.strip() for cell in line.strip("│").split("│")]
            for line in text.splitlines() if line.startswith("│")]


def headers(text):
    line = next(line for line in text.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.strip("┃").split("┃")]


@pytest.mark.parametrize("width", [100, 80])
def test_the_default_table_fits_the_terminal(width):
    text = rendered(NODES, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in "".join(headers(text))
    table = rows(text)
    assert len(table) == len(NODES)  # one line per node: no cell wrapped
    columns = headers(text)
    for cells in table:
        name = cells[columns.index("node")]
        assert cells[columns.index("role")] == ROLES[name]
        assert cells[columns.index("health")].split()[0] == HEALTH[name]


def test_at_100_columns_a_healthy_lab_loses_only_the_least_telling_columns():
    healthy = [LEADER, FOLLOWER, replace(FOLLOWER, name="node3", ip="172.21.0.13")]
    text = rendered(healthy, 100)
    shown = " ".join(headers(text))
    for column in ("node", "ip", "etcd", "role", "term", "db size", "health", "chrony"):
        assert column in shown
    cells = rows(text)[0]
    assert cells[:4] == ["node1", "172.21.0.11", "3.5.17", "leader"]
    assert "20 KiB" in cells and "healthy" in cells and "serves (local)" in cells
    assert "172.21.0.11 -0.012 ms" in text  # chrony's source and offset, merged


def test_the_narrow_table_says_what_it_left_out():
    text = rendered(NODES, 100)
    note = " ".join(text.split("┘")[-1].split())
    assert "member id" in note and "stratum" in note
    assert "shortened errors" in note
    assert "invoke status --wide" in note


def test_a_long_error_is_shortened_in_the_narrow_table():
    cells = next(cells for cells in rows(rendered(NODES, 100)) if cells[0] == "node3")
    health = next(cell for cell in cells if cell.startswith("unhealthy"))
    assert health == "unhealthy etcd unreachable…"
    assert len(health) <= len("unhealthy ") + HEALTH_ERROR_CHARS
    assert "DEADLINE_EXCEEDED" not in rendered(NODES, 100)


def test_a_short_error_is_kept_whole():
    assert "unhealthy container exited" in rendered(NODES, 100)


def test_a_table_that_fits_has_no_note():
    healthy = [LEADER, FOLLOWER]
    text = rendered(healthy, 200)
    assert headers(text) == list(STATUS_COLUMNS)
    assert text.rstrip().endswith("┘")


@pytest.mark.parametrize("width", [100, 80])
def test_wide_shows_every_column_and_the_full_error(width):
    text = rendered(NODES, width, wide=True)
    assert headers(text) == list(STATUS_COLUMNS)
    assert len(STATUS_COLUMNS) == 12
    flat = re.sub(r"\s+", " ", text)
    assert LONG_ERROR in flat  # markup-like brackets are printed, not swallowed
    assert "fd422379fda50e48" in text and "123456" in text and "not synced" in text
    assert len(rows(text)) == len(NODES)  # lines as long as they need, nothing wrapped
    assert "invoke status --wide" not in text


def test_a_chrony_client_not_synced_keeps_its_offset_in_the_merged_column():
    text = rendered([LEADER, NOT_SYNCED, STOPPED], 100)
    assert "chrony" in headers(text)
    assert "not synced +153.200 ms" in text


@pytest.mark.parametrize(
    ("error", "short"),
    [
        ("container exited", "container exited"),
        ("etcd unreachable: UNAVAILABLE", "etcd unreachable…"),
        ("NOSPACE_ALARM_ON_EVERY_MEMBER_OF_THE_CLUSTER", "NOSPACE_ALARM_ON_EV…"),
    ],
)
def test_errors_are_cut_after_a_word(error, short):
    node = replace(UNHEALTHY, error=error)
    text = rendered([LEADER, node, STOPPED], 60)
    assert f"unhealthy {short}" in text
    assert len(short) <= HEALTH_ERROR_CHARS
