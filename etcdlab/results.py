"""Versioned result records: one immutable :class:`Result` per experiment run, as JSON.

A result file looks like this (keys sorted, indent 2)::

    {"error": null, "experiment": "election", "metadata": {...}, "params": {...},
     "samples": {...}, "schema_version": 1, "status": "ok", "summary": {...}}

``samples`` holds the raw measurements; ``summary`` is derived from them. A failed run
is still written, with ``"status": "failed"``, its error and whatever samples it has; an
interrupted one (Ctrl-C, SIGTERM, SIGHUP, or a kill found by ``invoke heal``) with
``"status": "interrupted"``.

Where a result goes (:func:`result_path`): while an experiment runs, its samples so far are
in ``NAME.partial.json`` (``"status": "running"``), rewritten every few seconds. At the end
an ok result becomes ``NAME.json``; a failed or interrupted one becomes ``NAME.json`` too,
unless ``NAME.json`` already holds an ok result of an earlier run: then it goes to
``NAME.failed.json`` and the good one stays.

A run's recorded client histories follow its result (:func:`history_file`): recorded as
``NAME.partial[.LABEL].history.jsonl`` while it runs, they take the stem of the result file
when it is written (``NAME[.LABEL].history.jsonl`` beside ``NAME.json``,
``NAME.failed[.LABEL].history.jsonl`` beside ``NAME.failed.json``), so a failed re-run never
replaces the histories of the good result it is kept beside. A result names its history
files in ``samples["histories"][...]["file"]``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from etcdlab.lab.state import atomic_write_text

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "interrupted", "running")
UNFINISHED = ("failed", "interrupted")
REQUIRED_METADATA = ("started_utc", "finished_utc")
_MAPPING_FIELDS = ("metadata", "params", "summary", "samples")


def utc_now_iso() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds.

    For example ``2025-06-16T23:35:43.146+00:00``; use it for ``started_utc`` and
    ``finished_utc``.
    """
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _parse_utc(text: Any, where: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a time zone (a trailing Z is accepted)."""
    if not isinstance(text, str):
        raise ValueError(f"{where} must be an ISO 8601 string, got {text!r}")
    try:
        # Python 3.10's fromisoformat does not accept a trailing Z.
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"{where} is not an ISO 8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{where} has no time zone (use utc_now_iso()): {text!r}")
    return moment


def _plain_json(value: Any, where: str) -> Any:
    """Return a deep copy of value made of JSON types only, or raise ValueError naming where.

    Tuples become lists so that a record equals itself after a JSON round trip; keys
    must already be strings because JSON would silently turn 1 into "1".
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}; JSON has no NaN or infinity (store null)")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        copy = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a non-string key {key!r}")
            copy[key] = _plain_json(item, f"{where}.{key}")
        return copy
    raise ValueError(f"{where} is a {type(value).__name__}, which JSON cannot store: {value!r}")


@dataclass(frozen=True)
class Result:
    """One experiment run: what was measured, how, on what, and whether it finished.

    Validated when built: ``status`` is one of :data:`STATUSES`; ``error`` is a message
    iff the run failed or was interrupted; ``metadata`` holds at least ``started_utc``
    and ``finished_utc``; every mapping holds JSON data only. The mappings are copied and
    made read-only, so a record never changes after it is built.
    """

    experiment: str
    status: str
    error: str | None
    metadata: Mapping[str, Any]
    params: Mapping[str, Any]
    summary: Mapping[str, Any]
    samples: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.experiment, str) or not self.experiment.strip():
            raise ValueError(f"experiment must be a non-empty name, got {self.experiment!r}")
        where = f"result {self.experiment!r}"
        if self.status not in STATUSES:
            raise ValueError(f"{where}: status must be one of {STATUSES}, got {self.status!r}")
        if self.status in UNFINISHED and (
            not isinstance(self.error, str) or not self.error.strip()
        ):
            raise ValueError(f"{where}: a {self.status} result needs an error message")
        if self.status == "ok" and self.error is not None:
            raise ValueError(f"{where}: an ok result cannot carry an error ({self.error!r})")
        for name in _MAPPING_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: {name} must be a mapping, got {type(value).__name__}")
            object.__setattr__(self, name, MappingProxyType(_plain_json(value, f"{where}: {name}")))
        for key in REQUIRED_METADATA:
            if key not in self.metadata:
                raise ValueError(f"{where}: metadata needs {key!r} (use utc_now_iso())")
        started = _parse_utc(self.metadata["started_utc"], f"{where}: metadata.started_utc")
        finished = _parse_utc(self.metadata["finished_utc"], f"{where}: metadata.finished_utc")
        if finished < started:
            raise ValueError(f"{where}: finished_utc is earlier than started_utc")

    @property
    def ok(self) -> bool:
        """True when the experiment ran to the end."""
        return self.status == "ok"

    def to_json_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON data, with ``schema_version``."""
        data: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Mapping):
                value = _plain_json(value, field.name)
            data[field.name] = value
        return data

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Result:
        """Build a record from parsed JSON; raise ValueError on any other schema version."""
        if "schema_version" not in data:
            raise ValueError("no schema_version: this is not an etcdlab result")
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version!r} is not supported (this etcdlab reads {SCHEMA_VERSION})"
            )
        names = {field.name for field in fields(cls)}
        missing = sorted(names - data.keys())
        unknown = sorted(data.keys() - names - {"schema_version"})
        if missing:
            raise ValueError(f"missing keys: {', '.join(missing)}")
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(unknown)}")
        return cls(**{name: data[name] for name in names})


def write_result(path: str | os.PathLike[str], result: Result) -> Path:
    """Write result as JSON to path atomically and return the path.

    The JSON goes to a temporary file in the same folder, is flushed to disk, then
    renamed over path: a reader sees the old file or the new one, never half of one.
    Missing parent folders are created.
    """
    text = json.dumps(result.to_json_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    # 0644: results are meant to be shared (mkstemp alone would leave 0600).
    return atomic_write_text(Path(path), text, mode=0o644)


def read_result(path: str | os.PathLike[str]) -> Result:
    """Read one result file; raise ValueError naming the file if it is not a valid result."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{source}: not an etcdlab result (the top level is not an object)")
    try:
        return Result.from_json_dict(data)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def load_results(directory: str | os.PathLike[str]) -> dict[str, Result]:
    """Read every ``NAME.json`` result in directory, keyed by experiment name.

    ``NAME.failed.json`` (a failed re-run kept beside a good result) and
    ``NAME.partial.json`` (a run in progress) are not read: see :func:`result_path`.

    Raises FileNotFoundError if the folder does not exist and ValueError if a file is
    not a valid result or two files hold the same experiment.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder not found: {folder}")
    results: dict[str, Result] = {}
    origins: dict[str, Path] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith((".failed.json", ".partial.json")):
            continue  # a failed re-run beside a good result, or a run still going
        result = read_result(path)
        if result.experiment in results:
            raise ValueError(
                f"{path}: experiment {result.experiment!r} is also in {origins[result.experiment]}"
            )
        results[result.experiment] = result
        origins[result.experiment] = path
    return results


def json_safe(value: Any) -> Any:
    """A copy with NaN and infinities as None and tuples as lists (JSON stores neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    return value


def result_path(results_dir: Path, name: str, status: str) -> Path:
    """Where a finished result of this status goes (the rule in this module's docstring)."""
    good = results_dir / f"{name}.json"
    if status == "ok" or not _holds_ok_result(good):
        return good
    return results_dir / f"{name}.failed.json"


def partial_path(results_dir: Path, name: str) -> Path:
    """The file a running experiment keeps its samples so far in."""
    return results_dir / f"{name}.partial.json"


HISTORY_SUFFIX = ".history.jsonl"


def history_file(results_dir: Path, stem: str, label: str = "") -> Path:
    """``STEM.history.jsonl``, or ``STEM.LABEL.history.jsonl`` for one of several; STEM is
    the result file's name without ``.json`` (``NAME``, ``NAME.failed``, ``NAME.partial``)."""
    return Path(results_dir) / f"{stem}{'.' + label if label else ''}{HISTORY_SUFFIX}"


def move_histories(results_dir: Path, from_stem: str, to_stem: str) -> dict[str, str]:
    """Give the history files of ``from_stem`` the stem ``to_stem`` (replacing files of that
    name); returns {old file name: new file name}."""
    moved = {}
    for path in sorted(Path(results_dir).glob(f"{from_stem}*{HISTORY_SUFFIX}")):
        middle = path.name[len(from_stem):-len(HISTORY_SUFFIX)]
        if middle and not middle.startswith("."):
            continue  # another experiment whose name only starts like this one
        target = path.with_name(f"{to_stem}{middle}{HISTORY_SUFFIX}")
        os.replace(path, target)
        moved[path.name] = target.name
    return moved


def _holds_ok_result(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


def finish_partial(path: Path, error: str) -> Path | None:
    """Turn a run's partial file into an interrupted result (its samples kept); where."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    data.update(status="interrupted", error=error)
    data.setdefault("metadata", {})["finished_utc"] = utc_now_iso()
    result = Result.from_json_dict(data)  # a broken partial file raises before any move
    target = result_path(path.parent, result.experiment, result.status)
    moved = move_histories(path.parent, path.name.removesuffix(".json"),
                           target.name.removesuffix(".json"))
    for verdict in (data.get("samples", {}).get("histories") or {}).values():
        if isinstance(verdict, dict) and verdict.get("file") in moved:
            verdict["file"] = moved[verdict["file"]]
    write_result(target, Result.from_json_dict(data))
    path.unlink(missing_ok=True)
    return target
