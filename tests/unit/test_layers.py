"""The layers of docs/design.md, checked: the import-linter contracts in pyproject.toml hold.

The report, results, figures and every question's analysis and section import neither run
code nor anything that talks to a cluster; analysis is pure; question folders do not
import one another. ``lint-imports`` is run as CI runs it, so ``pytest`` alone checks them.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import etcdlab.questions

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_hold():
    linter = Path(sys.executable).with_name("lint-imports")
    command = str(linter) if linter.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports is missing: install the dev extras (pip install -e '.[dev]')")
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout, done.stdout


def test_the_independence_contract_names_every_question_folder():
    """A question folder left out of the independence contract would be silently exempt."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    independence = [c for c in contracts["contracts"] if c["type"] == "independence"]
    assert len(independence) == 1
    folders = sorted(f"etcdlab.questions.{path.name}"
                     for path in Path(etcdlab.questions.__file__).parent.iterdir()
                     if etcdlab.questions.QUESTION_FOLDER.fullmatch(path.name) and path.is_dir())
    assert len(folders) >= 10
    assert sorted(independence[0]["modules"]) == folders
