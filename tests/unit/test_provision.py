"""Inventory generation, role variables, archive checks and runner-event progress."""

import pytest

from etcdlab.errors import LabError
from etcdlab.lab import offline
from etcdlab.lab.config import LabConfig
from etcdlab.lab.provision import (
    TaskProgress,
    build_inventory,
    expected_sha256,
    release_url,
    resolve_archive,
    role_checksum_table,
    role_variables,
    verify_archive,
)


def test_inventory_puts_every_node_in_etcd_and_the_first_serves_time():
    inventory = build_inventory(LabConfig(nodes=3))["all"]
    etcd_hosts = inventory["children"]["etcd"]["hosts"]
    assert list(etcd_hosts) == ["node1", "node2", "node3"]
    assert etcd_hosts["node2"] == {"ansible_host": "node2", "etcd_member_ip": "172.21.0.11"}
    assert list(inventory["children"]["chrony_server"]["hosts"]) == ["node1"]
    assert list(inventory["children"]["chrony_client"]["hosts"]) == ["node2", "node3"]


def test_connection_follows_the_accelerator_setting():
    fast = build_inventory(LabConfig())["all"]["vars"]["ansible_connection"]
    plain = build_inventory(LabConfig(ansible_accelerator="none"))["all"]["vars"]
    assert fast == "docker"
    assert plain["ansible_connection"] == "community.docker.docker"


def test_role_variables_map_settings_one_to_one():
    variables = role_variables(LabConfig(etcd_election_timeout_ms=1500, subnet="10.9.0.0/24"))
    assert variables["etcd_election_timeout_ms"] == 1500
    assert variables["chrony_servers"] == ["10.9.0.10"]
    assert variables["chrony_allow"] == ["10.9.0.0/24"]
    assert variables["chrony_no_system_clock"] is True
    assert "etcd_archive_src" not in variables


def test_local_archive_is_passed_with_its_checksum(tmp_path):
    archive = tmp_path / "etcd-v3.5.1-linux-amd64.tar.gz"
    archive.write_bytes(b"etcd")
    config = LabConfig(etcd_archive=str(archive), etcd_archive_sha256="a" * 64)
    variables = role_variables(config)
    assert variables["etcd_archive_src"] == str(archive)
    assert variables["etcd_archive_sha256"] == "a" * 64


def test_a_release_mirror_is_passed_as_the_roles_base_url_with_the_checksum():
    config = LabConfig(etcd_version="3.5.1", etcd_download_url="http://10.0.0.5:8000/",
                       etcd_archive_sha256="a" * 64)
    variables = role_variables(config)
    assert variables["etcd_download_base_url"] == "http://10.0.0.5:8000"
    assert variables["etcd_archive_sha256"] == "a" * 64
    assert "etcd_archive_src" not in variables
    assert "etcd_download_base_url" not in role_variables(LabConfig())


def test_the_release_url_keeps_githubs_layout_on_a_mirror():
    path = "/etcd-io/etcd/releases/download/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz"
    assert release_url(LabConfig(etcd_version="3.5.1")) == "https://github.com" + path
    mirror = LabConfig(etcd_version="3.5.1", etcd_download_url="http://mirror:8000/")
    assert release_url(mirror) == "http://mirror:8000" + path


def test_an_unreachable_mirror_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setattr("etcdlab.lab.provision.release_unreachable",
                        lambda url: f"HTTP 404 for {url}")
    config = LabConfig(etcd_version="3.5.1", etcd_download_url="http://mirror:8000")
    with pytest.raises(LabError, match="cannot download etcd v3.5.1 from the release mirror "
                                       "http://mirror:8000: HTTP 404 for http://mirror:8000/etcd-io/"):
        resolve_archive(config, say=lambda _m: None)


def test_role_checksum_table_has_the_official_3_5_6_sums():
    table = role_checksum_table()
    assert table["3.5.6"]["linux-amd64"].startswith("4db32e3bc06dd099")
    assert table["3.5.6"]["linux-arm64"].startswith("888e25c9c94702ac")


def test_expected_checksum_prefers_setting_then_sidecar(tmp_path):
    archive = tmp_path / "etcd.tar.gz"
    archive.write_bytes(b"etcd")
    (tmp_path / "etcd.tar.gz.sha256").write_text("b" * 64 + "  etcd.tar.gz\n")
    assert expected_sha256(LabConfig(etcd_archive=str(archive)), archive) == "b" * 64
    chosen = LabConfig(etcd_archive=str(archive), etcd_archive_sha256="c" * 64)
    assert expected_sha256(chosen, archive) == "c" * 64


def test_checksum_mismatch_is_refused_with_both_sums(tmp_path):
    archive = tmp_path / "etcd.tar.gz"
    archive.write_bytes(b"not etcd")
    config = LabConfig(etcd_archive=str(archive), etcd_archive_sha256="0" * 64)
    with pytest.raises(LabError, match="checksum mismatch.*expected sha256 0{64}, got "):
        verify_archive(config)
    good = config.with_changes(etcd_archive_sha256=offline.sha256_of(archive))
    verify_archive(good)


def test_task_progress_reports_each_task_and_the_recap():
    shown = []
    progress = TaskProgress(lambda task, results: shown.append((task, results)))
    events = [
        {"event": "playbook_on_task_start", "event_data": {"task": "Install etcd."}},
        {"event": "runner_on_ok", "event_data": {"host": "node2", "res": {"changed": True}}},
        {"event": "runner_on_ok", "event_data": {"host": "node1", "res": {"changed": False}}},
        {"event": "playbook_on_task_start", "event_data": {"task": "Start etcd."}},
        {"event": "runner_on_failed",
         "event_data": {"host": "node1", "task": "Start etcd.", "res": {"msg": "boom\nnow"}}},
        {"event": "playbook_on_stats",
         "event_data": {"ok": {"node1": 1, "node2": 1}, "changed": {"node2": 1},
                        "failures": {"node1": 1}}},
    ]
    for event in events:
        progress(event)
    assert shown == [
        ("Install etcd.", {"node1": "ok", "node2": "changed"}),
        ("Start etcd.", {"node1": "failed"}),
    ]
    run = progress.run
    assert run.failures == ["node1: Start etcd.: boom now"]
    assert run.changed == 1
    assert run.recap_lines()[0].startswith("node1 : ok=1  changed=0  unreachable=0  failed=1")
    assert [task for task, _seconds in run.task_times] == ["Install etcd.", "Start etcd."]
    assert all(seconds >= 0 for _task, seconds in run.task_times)


def test_a_rescues_failure_replaces_the_failure_it_rescued():
    progress = TaskProgress(lambda _task, _results: None)
    failed = [("node1", "Download.", "The checksum for /tmp/x did not match"),
              ("node2", "Download.", "The checksum for /tmp/y did not match"),
              ("node1", "Stop with the reason.", "sha256 mismatch"),
              ("node2", "Stop with the reason.", "sha256 mismatch")]
    for host, task, message in failed:
        progress({"event": "runner_on_failed",
                  "event_data": {"host": host, "task": task, "res": {"msg": message}}})
    assert progress.run.failures == ["node1: Stop with the reason.: sha256 mismatch",
                                     "node2: Stop with the reason.: sha256 mismatch"]


def test_the_slowest_tasks_come_first():
    from etcdlab.lab.provision import PlaybookRun

    run = PlaybookRun("site.yml", task_times=[("a", 0.5), ("b", 3.0), ("c", 1.0)])
    assert run.slowest(2) == [("b", 3.0), ("c", 1.0)]


def test_a_reshape_is_told_apart_from_the_offline_image_fallback():
    from etcdlab.lab.provision import _differs

    running = LabConfig(image="etcdlab/debian12:offline")
    assert not _differs("image", running, LabConfig())
    assert _differs("image", running, LabConfig(image="debian:12"))
    assert _differs("image", LabConfig(image="debian:12"), LabConfig())
    assert _differs("subnet", LabConfig(), LabConfig(subnet="10.9.0.0/24"))
    assert not _differs("first_host", LabConfig(), LabConfig())


def test_a_failed_shell_task_says_what_it_printed_on_stderr():
    progress = TaskProgress(lambda _task, _results: None)
    progress({"event": "runner_on_failed",
              "event_data": {"host": "node3", "task": "Start chronyd.",
                             "res": {"msg": "non-zero return code", "rc": 1,
                                     "stderr": "chronyd: ERROR (spawn error)\n"}}})
    progress({"event": "runner_on_failed",
              "event_data": {"host": "node2", "task": "Start etcd.",
                             "res": {"msg": "", "stderr": "etcd: ERROR (no such file)"}}})
    assert progress.run.failures == [
        "node3: Start chronyd.: non-zero return code: chronyd: ERROR (spawn error)",
        "node2: Start etcd.: etcd: ERROR (no such file)"]
