"""The registry of experiments: every question folder of this package whose ``run`` module
defines ``EXPERIMENT``.

One folder per question (the README's table), ``qNN_NAME/``: ``run.py`` (the experiment),
``analysis.py`` (pure: summary and findings), ``section.py`` and ``section.md.j2`` (its part
of the report). The registry lists them in question order. It imports the run code only
when asked, so that importing a question's analysis or section never loads it.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import TYPE_CHECKING

from etcdlab.errors import LabError

if TYPE_CHECKING:
    from etcdlab.questions.runner import Experiment

QUESTION_FOLDER = re.compile(r"q\d\d_\w+")


def registry() -> dict[str, Experiment]:
    """Every registered experiment by name, in question order."""
    from etcdlab.questions.runner import Experiment

    found = []
    for module_info in pkgutil.iter_modules(__path__):
        if not (module_info.ispkg and QUESTION_FOLDER.fullmatch(module_info.name)):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}.run")
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
