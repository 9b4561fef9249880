"""The registry of experiments: every module of this package that defines ``EXPERIMENT``.

One module per question (the README's table); the registry lists them in question order.
"""

from __future__ import annotations

import importlib
import pkgutil

from etcdlab.errors import LabError
from etcdlab.experiments.base import Experiment

_NOT_EXPERIMENTS = {"base", "common"}


def registry() -> dict[str, Experiment]:
    """Every registered experiment by name, in question order."""
    found = []
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name in _NOT_EXPERIMENTS:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        experiment = getattr(module, "EXPERIMENT", None)
        if isinstance(experiment, Experiment):
            found.append(experiment)
    return {e.name: e for e in sorted(found, key=lambda e: e.question)}


def get(name: str) -> Experiment:
    """One experiment by name, or a LabError listing the known ones."""
    experiments = registry()
    if name not in experiments:
        raise LabError(f"unknown experiment {name!r}; known: {', '.join(experiments)}")
    return experiments[name]
