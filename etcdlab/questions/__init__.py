"""The registry of experiments: the ``EXPERIMENT`` of every question folder's ``run`` module.

One folder per question (the README's table), ``qNN_NAME/``: ``__init__.py`` (its ``SPEC``:
number, name and title, the one registry of the questions, read by
:func:`etcdlab.questions.spec.specs`), ``run.py`` (the experiment, built on that ``SPEC``),
``analysis.py`` (pure: summary and findings), ``section.py`` and ``section.md.j2`` (its part
of the report). The registry lists them in question order. It imports the run code only
when asked, so that importing a question's analysis or section never loads it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from etcdlab.errors import LabError
from etcdlab.questions.spec import QUESTION_FOLDER as QUESTION_FOLDER  # the folders' pattern
from etcdlab.questions.spec import specs

if TYPE_CHECKING:
    from etcdlab.questions.runner import Experiment


def registry() -> dict[str, Experiment]:
    """Every experiment by name, in question order: one per question folder's ``SPEC``.

    A folder whose ``run`` module defines no ``EXPERIMENT``, or one built on another
    ``SPEC``, raises a ValueError.
    """
    from etcdlab.questions.runner import Experiment

    found: dict[str, Experiment] = {}
    for spec in specs():
        module = importlib.import_module(f"{__name__}.{spec.package}.run")
        experiment = getattr(module, "EXPERIMENT", None)
        if not isinstance(experiment, Experiment):
            raise ValueError(f"{module.__name__} defines no EXPERIMENT = "
                             "Experiment(spec=SPEC, ...)")
        if experiment.spec != spec:
            raise ValueError(f"{module.__name__}: EXPERIMENT is built on {experiment.spec}, "
                             f"not on its folder's SPEC {spec}")
        found[spec.experiment] = experiment
    return found


def get(name: str) -> Experiment:
    """One experiment by name, or a LabError listing the known ones."""
    experiments = registry()
    if name not in experiments:
        raise LabError(f"unknown experiment {name!r}; known: {', '.join(experiments)}")
    return experiments[name]
