"""Declared values: one type, range or choices, unit and meaning per setting or parameter.

Both the lab's settings (:class:`etcdlab.lab.config.LabConfig`) and every experiment's
parameters are declared with :class:`Param`. A value from a YAML file keeps its YAML type;
a value from an environment variable, a flag or ``--param`` arrives as a string and is
read by the declared type. Anything else — a wrong type, NaN or infinity, a value out of
range — is a :class:`LabError` naming the value, what it must be, and where it came from.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from etcdlab.errors import LabError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One declared value: its default (which fixes its type), limits, unit and meaning.

    ``minimum``/``maximum`` are inclusive; ``above`` is a strict lower bound (a timeout
    ``above=0`` may be 0.01 but not 0). ``choices`` and ``pattern`` constrain strings.
    """

    name: str
    default: Any
    help: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str = ""
    pattern_help: str = ""

    @property
    def kind(self) -> type:
        """The declared type: that of the default (bool, int, float or str)."""
        return type(self.default)

    def parse(self, value: Any, source: str = "") -> Any:
        """The value read by the declared type and checked; strings are parsed.

        ``source`` (``INVOKE_LAB_NODES``, ``--param``) is named in the error.
        """
        try:
            return self.check(self._convert(value))
        except LabError:
            # The message quotes what the user wrote ('nan'), not what it was read as.
            error = self._refuse(value, self.describe())
        if source:
            error = LabError(f"{error} (from {source})")
        raise error

    def check(self, value: Any) -> Any:
        """The value itself if it has the declared type and lies within the limits."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise self._refuse(value, self.describe())
            return value
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._refuse(value, self.describe())
            if self.kind is int and not isinstance(value, int):
                raise self._refuse(value, self.describe())
            if not math.isfinite(value):
                raise self._refuse(value, self.describe())
            if ((self.minimum is not None and value < self.minimum)
                    or (self.maximum is not None and value > self.maximum)
                    or (self.above is not None and value <= self.above)):
                raise self._refuse(value, self.describe())
            return value
        if not isinstance(value, str):
            raise self._refuse(value, "a string")
        if self.choices and value not in self.choices:
            raise self._refuse(value, self.describe())
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise self._refuse(value, self.describe())
        return value

    def describe(self) -> str:
        """What a valid value is, in words: ``a whole number from 1 to 9``."""
        if self.kind is bool:
            return "true or false (or yes/no, on/off, 1/0)"
        if self.kind in (int, float):
            what = "a whole number" if self.kind is int else "a finite number"
            unit = f" {self.unit}" if self.unit else ""
            limits = []
            if self.minimum is not None and self.maximum is not None:
                limits.append(f"from {_num(self.minimum)} to {_num(self.maximum)}{unit}")
            elif self.minimum is not None:
                limits.append(f"≥ {_num(self.minimum)}{unit}")
            elif self.maximum is not None:
                limits.append(f"≤ {_num(self.maximum)}{unit}")
            if self.above is not None:
                limits.append(f"> {_num(self.above)}{unit}")
            return f"{what} {' and '.join(limits)}".strip() if limits else what
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.pattern:
            return self.pattern_help or f"a string matching {self.pattern}"
        return "a string"

    def _convert(self, value: Any) -> Any:
        """Strings (env vars, flags, ``--param``) to the declared type; others as given."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # YAML's 1 for a float setting means 1.0
        if not isinstance(value, str) or self.kind is str:
            # YAML's true/false for a string setting such as etcd_tls means the word.
            if self.kind is str and isinstance(value, bool):
                return "true" if value else "false"
            return value
        text = value.strip()
        if self.kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise self._refuse(value, self.describe())
        try:
            return self.kind(text)
        except ValueError:
            raise self._refuse(value, self.describe()) from None

    def _refuse(self, value: Any, expected: str) -> LabError:
        return LabError(f"{self.name} must be {expected}, got {value!r}")


def unknown_name(prefix: str, name: str, known: Iterable[str]) -> LabError:
    """``{prefix} 'name' (did you mean ...?); valid: ...`` for a name not declared."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return LabError(f"{prefix} {name!r}{hint}; valid: {', '.join(known)}")


def _num(value: float) -> str:
    return f"{value:g}"
