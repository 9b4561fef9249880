"""Shared test plumbing: tests marked `last` run after every other test."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move tests marked ``last`` (e.g. destroying the shared lab) to the end."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
