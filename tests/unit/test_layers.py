"""The layers of docs/design.md, checked: the import-linter contracts in pyproject.toml hold.

The report (html_report, sections, charts, analysis, results, units, stats) imports
neither the experiments nor anything that talks to a cluster; analysis is pure;
experiments do not import one another. ``lint-imports`` is run as CI runs it, so
``pytest`` alone checks them.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_hold():
    linter = Path(sys.executable).with_name("lint-imports")
    command = str(linter) if linter.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports is missing: install the dev extras (pip install -e '.[dev]')")
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout, done.stdout
