"""The registry of experiments: one module per question, listed here in order."""

from __future__ import annotations

from etcdlab.errors import LabError
from etcdlab.experiments.base import Experiment


def registry() -> dict[str, Experiment]:
    """Every registered experiment by name, in question order."""
    from etcdlab.experiments import conflicts, election

    found = [election.EXPERIMENT, conflicts.EXPERIMENT]
    return {e.name: e for e in sorted(found, key=lambda e: e.question)}


def get(name: str) -> Experiment:
    """One experiment by name, or a LabError listing the known ones."""
    experiments = registry()
    if name not in experiments:
        raise LabError(f"unknown experiment {name!r}; known: {', '.join(experiments)}")
    return experiments[name]
