"""The Ansible content is yamllint- and ansible-lint-clean (``.yamllint``, ``.ansible-lint``).

Both tools come with the ``dev`` extra; the tests skip, saying so, where they are missing.
They live with the integration tests because ansible-lint loads every playbook and role
through Ansible (about 15 s), not because they need Docker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINTED = ["roles", "playbooks"]


def _tool(name: str) -> str:
    """The tool beside this Python (the venv), else on PATH; skip when missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _run(command: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # ansible-lint runs ansible-playbook --syntax-check: it must find the venv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["NO_COLOR"] = "1"
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_yamllint_finds_nothing_in_roles_playbooks_and_inventory():
    done = _run([_tool("yamllint"), "--strict", *LINTED, "inventory"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout


def test_ansible_lint_passes_the_production_profile():
    done = _run([_tool("ansible-lint"), "--nocolor", *LINTED])
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output, output
    assert "0 failure(s), 0 warning(s)" in output, output
