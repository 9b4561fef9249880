"""``invoke check-history``: read recorded histories, check them, print one verdict per file.

Every file is read and parsed before any is checked, so bad input costs no search time and
is reported as one ``error:`` line on stderr with exit status 2.
"""

from __future__ import annotations

import glob
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from etcdlab.check import linearizability as lin

FORMATS = ("jepsen", "etcdlab")
DEFAULT_TIMEOUT_S = 10.0
EXIT_OK, EXIT_BAD_INPUT, EXIT_UNKNOWN = 0, 2, 3
# A counterexample prints the end of its linearized prefix: what leads up to the violation.
PREFIX_SHOWN = 5
_HISTORY_SUFFIXES = (".log", ".jsonl")


class BadInput(Exception):
    """Input the user must fix; its message becomes the ``error:`` line."""


def main(files: Sequence[str], format_: str | None = None, timeout: str | float | None = None
         ) -> int:
    """Check each history named by ``files`` (paths, folders or glob patterns); exit status.

    ``format_`` is "jepsen" or "etcdlab" (None: ``.jsonl`` files are etcdlab, others jepsen);
    ``timeout`` is the search budget per file in seconds (None: the default; "inf": none).
    Returns 0 when every file got a verdict, 3 when any is unknown, 2 on bad input.
    """
    try:
        budget = parse_timeout(timeout)
        if format_ is not None and format_ not in FORMATS:
            raise BadInput(f"unknown --format {format_!r}: use {' or '.join(FORMATS)}")
        histories = [(path, *load(path, format_)) for path in expand(files)]
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    code = EXIT_OK
    for path, operations, model in histories:
        result = lin.check(operations, model, timeout_s=budget)
        print(f"{path} {result.verdict} {result.elapsed_s:.3f}", flush=True)
        if result.counterexample is not None:
            print("\n".join(counterexample_lines(result.counterexample)), flush=True)
        if result.verdict == "unknown":
            code = EXIT_UNKNOWN
    return code


def parse_timeout(value: str | float | None) -> float:
    """Seconds of search per file from the --timeout flag; `BadInput` unless a number >= 0."""
    if value is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:  # also false for nan
        raise BadInput(f"--timeout must be a number of seconds >= 0 (or inf), not {value!r}")
    return seconds


def expand(files: Sequence[str]) -> list[Path]:
    """History paths: a file as given, a folder's *.log and *.jsonl files, a glob's matches."""
    paths: list[Path] = []
    for name in files:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in _HISTORY_SUFFIXES)
            if not found:
                raise BadInput(f"{name}: no *.log or *.jsonl history files in this folder")
            paths += found
        elif not path.exists() and any(ch in name for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(name) if Path(p).is_file())
            if not found:
                raise BadInput(f"no file matches {name}")
            paths += found
        else:
            paths.append(path)
    return paths


def load(path: Path, format_: str | None) -> tuple[list[lin.Operation], lin.Model]:
    """The operations of one history file and the model to check them against."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BadInput(f"cannot read {path}: {reason}") from None
    fmt = format_ or ("etcdlab" if path.suffix == ".jsonl" else "jepsen")
    try:
        if fmt == "jepsen":
            return lin.parse_jepsen(text), lin.register_model
        operations, _faults = lin.parse_history_jsonl(text)
        return operations, lin.model_for(operations)
    except lin.HistoryError as exc:
        raise BadInput(f"{path} ({fmt} format): {exc}") from None


def counterexample_lines(counterexample: lin.Counterexample) -> list[str]:
    """A counterexample as indented lines: the end of the longest prefix, then the stuck ops."""
    prefix = counterexample.linearized
    lines = []
    if prefix:
        ending = ", ending with:" if len(prefix) > PREFIX_SHOWN else ":"
        lines.append(f"  {len(prefix)} operation(s) linearize{ending}")
        lines += [f"    {text}" for text in prefix[-PREFIX_SHOWN:]]
        lines.append("  then none of these pending operations can take effect:")
    else:
        lines.append("  no operation can take effect first; pending:")
    lines += [f"    {text}" for text in counterexample.stuck]
    return lines
