"""The project's tests. ``ROOT`` is the checkout, ``DATA`` the checked-in test data, so a
test finds them wherever it sits under ``tests/``."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
