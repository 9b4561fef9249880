"""The preflight's checks: what each says, and the one line a missing prerequisite gives."""

from __future__ import annotations

import pytest

from etcdlab.errors import LabError
from etcdlab.lab import offline, preflight
from etcdlab.lab.config import LabConfig


def test_a_check_is_one_line_with_its_fix():
    check = preflight.Check("SSH client", False, "ssh not found", "install openssh-client")
    assert check.line() == "SSH client: ssh not found. install openssh-client"
    assert preflight.Check("Python", True, "3.11.7").line() == "Python: 3.11.7"


def test_a_folder_below_a_file_is_refused_and_nothing_is_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LabError, match="is not a folder"):
        preflight.writable_folder(blocker / "results" / "run1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert preflight.writable_folder(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe is gone


def test_disk_check_compares_free_space_with_the_need(tmp_path):
    enough = preflight.disk_check("free disk", tmp_path / "not-yet", 1)
    assert enough.ok is True and str(tmp_path) in enough.detail
    short = preflight.disk_check("free disk", tmp_path, 1 << 60)
    assert short.ok is False and "docker system prune" in short.fix
    assert "needs 1073741824.0 GiB" in short.detail


def test_require_names_the_first_missing_prerequisite(monkeypatch):
    monkeypatch.setattr(preflight.shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(LabError) as raised:
        preflight.require(LabConfig())
    assert str(raised.value) == ("Ansible (ansible-playbook): not found beside this Python. "
                                 + preflight.REINSTALL)


def test_the_offline_fallback_says_what_it_lacks(monkeypatch):
    monkeypatch.setattr(offline.shutil, "which", lambda _name: None)
    monkeypatch.setattr(offline.os, "geteuid", lambda: 1000)
    assert offline.fallback_needs() == ["debootstrap (`apt-get install debootstrap`)",
                                        "root (sudo)"]
    monkeypatch.setattr(offline.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(offline.os, "geteuid", lambda: 0)
    assert offline.fallback_needs() == []

