"""Recording client histories: every KV call through the transport, one JSON line each.

A :class:`HistoryRecorder` writes ``NAME.history.jsonl`` beside an experiment's result
(named by the rule in :mod:`etcdlab.results`), in the format :mod:`etcdlab.check.linearizability`
documents and checks. A :class:`~etcdlab.etcd.transport.
Member` given a recorder (``member.record_into(recorder, process)``) records each ``get``,
``put``, ``delete`` and compare-and-swap it sends: the process, the operation and its
arguments, invocation and completion on this machine's monotonic clock (the clock of the
fault journal too, and one clock for every process of the machine), the outcome from
:func:`etcdlab.etcd.transport.classify`, and the answer's value and revision. Errors still reach
the caller: recording changes nothing about the call.

What is not recorded, because the models do not describe it: serializable reads (they may
be stale by design, so they are no evidence against linearizability), transactions that
compare another key (``put_if_created_at``), leases and watches.

After the run, :meth:`HistoryRecorder.close` appends the fault windows of the journal that
overlap the history (``{"type": "fault", ...}`` lines), and :func:`check_file` gives the
verdict the result stores.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import grpc

from etcdlab.check import linearizability
from etcdlab.etcd.transport import classify

T = TypeVar("T")

CHECK_BUDGET_S = 20.0
"""The checker's time budget per history: beyond it the verdict is "unknown"."""


class HistoryRecorder:
    """Appends one line per finished operation; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.operations = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has finished the history."""
        return self._file.closed

    def call(self, process: Any, op: str, key: str, args: Mapping[str, Any],
             send: Callable[[], T], answer: Callable[[T], tuple[Any, Any]]) -> T:
        """Send one request and record it; ``answer`` maps the reply to (value, revision)."""
        invoked = time.monotonic_ns()
        try:
            reply = send()
        except grpc.RpcError as exc:
            outcome = classify(exc)
            self._write({"process": process, "op": op, "key": key, "args": dict(args),
                         "invoked_ns": invoked,
                         "completed_ns": time.monotonic_ns() if outcome == "failed" else None,
                         "outcome": outcome, "value": None, "revision": None,
                         "error": exc.code().name})
            raise
        completed = time.monotonic_ns()
        value, revision = answer(reply)
        self._write({"process": process, "op": op, "key": key, "args": dict(args),
                     "invoked_ns": invoked, "completed_ns": completed, "outcome": "ok",
                     "value": value, "revision": revision})
        return reply

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock:
            if self._file.closed:
                return  # a straggling thread after close(): the history is final
            self._file.write(line)
            self._file.flush()  # in the kernel at once: a killed run keeps its history
            self.operations += 1
            self.first_ns = record["invoked_ns"] if self.first_ns is None else self.first_ns
            self.last_ns = max(self.last_ns or 0, record["completed_ns"] or record["invoked_ns"])

    def close(self, windows: Iterable[Mapping[str, Any]] = ()) -> None:
        """Append the fault windows that overlap the history, and close the file."""
        with self._lock:
            if self._file.closed:
                return
            if self.first_ns is not None:
                for window in windows:
                    begin, end = window.get("begin_ns"), window.get("end_ns")
                    if begin is None or begin > (self.last_ns or 0):
                        continue
                    if end is not None and end < self.first_ns:
                        continue
                    self._file.write(json.dumps({"type": "fault", **window},
                                                sort_keys=True) + "\n")
            self._file.close()


def check_file(path: Path, timeout_s: float = CHECK_BUDGET_S) -> dict[str, Any]:
    """The linearizability verdict on one recorded history, JSON-ready for the result."""
    operations, others = linearizability.parse_history_jsonl(Path(path).read_text())
    faults = [o for o in others if o.get("type") == "fault"]
    base = {"file": Path(path).name, "operations": len(operations), "faults": len(faults),
            "budget_s": timeout_s,
            "processes": len({str(op.client_id) for op in operations}),
            "unknown": sum(1 for op in operations if op.return_ == math.inf)}
    if not operations:
        return {**base, "verdict": None, "elapsed_s": 0.0, "counterexample": None,
                "why": "no operation was recorded"}
    result = linearizability.check(operations, linearizability.model_for(operations),
                                   timeout_s=timeout_s)
    example = result.counterexample
    return {**base, "verdict": result.verdict, "elapsed_s": round(result.elapsed_s, 3),
            "partitions": result.partitions,
            "counterexample": None if example is None else {
                "linearized": list(example.linearized[-10:]), "stuck": list(example.stuck),
                "stuck_calls": [list(call) for call in example.stuck_calls]}}
