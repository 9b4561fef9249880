"""The one registry of the questions: each folder's ``SPEC`` (number, name, title).

Every question folder ``etcdlab/questions/qNN_NAME/`` says what it is once, in its
``__init__.py``: ``SPEC = QuestionSpec(NN, "NAME", "title")``. :func:`specs` finds them all
and lists them in question order; the report's list of questions, the experiments'
numbers, names and titles (``run.py`` builds its ``Experiment`` from the same ``SPEC``) and
the tests' lists are read from it.

Pure: :func:`specs` imports each folder's ``__init__.py`` and nothing else of it, so that
listing the questions (the report does) never loads a question's run code.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

QUESTIONS_PACKAGE = "etcdlab.questions"
QUESTION_FOLDER = re.compile(r"q(\d\d)_\w+")
"""A question folder's name, ``qNN_NAME``; group 1 is its number."""


@dataclass(frozen=True)
class QuestionSpec:
    """One question: its number, its experiment's name and its title (the heading of its
    section in the report, and what ``invoke experiments`` lists)."""

    number: int
    experiment: str
    title: str

    @property
    def package(self) -> str:
        """The question's folder under ``etcdlab/questions/``: ``qNN_NAME``."""
        return f"q{self.number:02d}_{self.experiment.replace('-', '_')}"

    @property
    def template(self) -> str:
        """The partial's name for the report's loader: ``qNN_NAME/section.md.j2``, in that
        folder."""
        return f"{self.package}/section.md.j2"


def specs() -> tuple[QuestionSpec, ...]:
    """The ``SPEC`` of every question folder of ``etcdlab.questions``, by number.

    Read afresh on each call (a folder added to the package's ``__path__`` since is found).
    A folder without a ``SPEC``, a ``SPEC`` whose number or name is not its folder's, and
    two questions with one number or one name raise a ValueError that names them.
    """
    found: list[QuestionSpec] = []
    for name in _folders():
        module = importlib.import_module(f"{QUESTIONS_PACKAGE}.{name}")
        found.append(_checked_spec(name, getattr(module, "SPEC", None)))
    for what, key in (("number", lambda s: s.number), ("name", lambda s: s.experiment)):
        seen: dict[object, QuestionSpec] = {}
        for spec in found:
            other = seen.setdefault(key(spec), spec)
            if other is not spec:
                raise ValueError(f"two questions have the {what} {key(spec)!r}: "
                                 f"{other.package} and {spec.package}")
    return tuple(sorted(found, key=lambda spec: spec.number))


def _folders() -> list[str]:
    """The names of the question folders on the package's ``__path__``, the first of each
    name (as Python imports it). A folder of Python files without ``__init__.py`` is a
    ValueError rather than skipped; one with none (say, only the ``__pycache__`` left by a
    question of another branch) is skipped."""
    package = importlib.import_module(QUESTIONS_PACKAGE)
    names: list[str] = []
    for entry in package.__path__:
        root = Path(entry)
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            if not (QUESTION_FOLDER.fullmatch(path.name) and path.is_dir()
                    and path.name not in names):
                continue
            if not (path / "__init__.py").is_file():
                if any(path.glob("*.py")):
                    raise ValueError(f"{QUESTIONS_PACKAGE}.{path.name}: {path} has no "
                                     f"__init__.py (with its SPEC = QuestionSpec(...))")
                continue
            names.append(path.name)
    return names


def _checked_spec(folder: str, spec: object) -> QuestionSpec:
    """The ``SPEC`` found in the folder ``folder``, or a ValueError saying what is wrong."""
    where = f"{QUESTIONS_PACKAGE}.{folder} ({folder}/__init__.py)"
    if not isinstance(spec, QuestionSpec):
        raise ValueError(f"{where} defines no SPEC = QuestionSpec(number, name, title)")
    number = int(QUESTION_FOLDER.fullmatch(folder)[1])
    if spec.number != number:
        raise ValueError(f"{where}: SPEC.number is {spec.number}, but the folder is "
                         f"question {number}")
    if spec.package != folder:
        raise ValueError(f"{where}: SPEC names the experiment {spec.experiment!r}, whose "
                         f"folder is {spec.package}, not {folder}")
    return spec
