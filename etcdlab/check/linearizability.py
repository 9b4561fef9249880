"""A linearizability checker for client histories: Wing & Gong's search with Lowe's cache.

A history is a list of `Operation`s, each with the client that ran it, its input, its output
and the times it was invoked and returned. It is linearizable when every operation can be
given one instant between its invocation and its return such that the operations, run one by
one in that order, produce the outputs seen by a sequential `Model`. The search (as in
Porcupine, github.com/anishathalye/porcupine) walks the call and return events in time order,
tries the earliest pending call whose model step succeeds, remembers every (set of linearized
operations, model state) it has reached so that no configuration is explored twice, and
backtracks when a return is reached before its operation could be placed. `check` runs it
under a time budget and never guesses: out of time, the verdict is "unknown".

An operation whose outcome is unknown (Jepsen's ``:info``, the lab's ``"unknown"``) may take
effect at any time after its invocation, or never: it gets the return time `math.inf` (after
every other event, where it has no visible effect) and the output `UNKNOWN`, which every
model step accepts. A read that failed or timed out is dropped: it changed nothing.

Two histories formats are parsed: Jepsen's etcd logs (`parse_jepsen`) and the lab's own JSON
lines (`parse_history_jsonl`). The lab's format is the contract its recorder follows; one
JSON object per line, one line per finished operation (blank lines are ignored):

``process``
    the client that ran it (int or str).
``op``
    ``"read"``, ``"write"``, ``"cas"`` (a register per key), or ``"get"``, ``"put"``,
    ``"delete"``, ``"txn"`` (etcd KV with revisions). A history uses one family only.
``key``
    the key (str); may be omitted for the register ops on a single register.
``args``
    an object: ``write``/``put`` ``{"value": V}`` (V not null); ``cas`` ``{"from": A, "to": B}``;
    ``txn`` ``{"compare": "mod_revision"|"value", "expected": X, "then": "put"|"delete",
    "value": V}`` (a single-key compare-and-set: compare the key, then put or delete it; a
    ``mod_revision`` of 0 means the key does not exist); ``read``/``get``/``delete`` ``{}``.
``invoked_ns``, ``completed_ns``
    when the client sent the request and got the answer (int ns, any clock shared by the
    clients); ``completed_ns`` is null when no answer came. Equal times count as overlapping.
``outcome``
    ``"ok"`` (answered), ``"failed"`` (certainly had no effect: the operation is dropped) or
    ``"unknown"`` (no answer, or an error after which it may have taken effect).
``value``
    the answer: ``read``/``get`` the value (null: the key does not exist); ``cas`` true if it
    swapped, false if the value did not match ``from``; ``delete`` true if a key was deleted;
    ``txn`` true if the compare succeeded; ignored for ``write`` and ``put``.
``revision``
    ``get`` the key's mod_revision (null when the key does not exist); ``put`` the revision
    it created; ``delete`` (when it deleted) and ``txn`` (when it succeeded) the revision of
    the response header; ignored by the register ops.

A line with a ``type`` other than ``"op"`` (e.g. ``{"type": "fault", ...}``, a fault window)
is no operation: `parse_history_jsonl` returns those lines separately.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["linearizable", "not-linearizable", "unknown"]


class _Marker:
    """A named constant that is equal only to itself."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


UNKNOWN: Any = _Marker("UNKNOWN")
"""The output of an operation whose outcome is unknown; every model step accepts it."""
# The value of a key no operation has pinned down yet (see `etcd_kv_model`).
_ANY: Any = _Marker("ANY")


class HistoryError(ValueError):
    """A history text that cannot be parsed; the message names the line."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation: what was asked (input), what came back (output), and when.

    ``call`` and ``return_`` are ints (ns, or an event index); ``return_`` is `math.inf` for
    an operation whose outcome is unknown, whose ``output`` is then `UNKNOWN`.
    """

    client_id: int | str
    input: tuple
    call: int
    output: Any
    return_: float


def _one_partition(operations: list[Operation]) -> list[list[Operation]]:
    return [operations] if operations else []


def _per_key(operations: list[Operation]) -> list[list[Operation]]:
    groups: dict[Any, list[Operation]] = defaultdict(list)
    for op in operations:
        groups[op.input[1]].append(op)
    return list(groups.values())


@dataclass(frozen=True)
class Model:
    """A sequential specification: the search asks it whether each step explains an output.

    ``init()`` gives the initial state and ``step(state, input, output)`` returns
    ``(ok, new_state)``; states must be hashable (they are cached). ``partition`` splits a
    history into sub-histories that can be checked independently (P-compositionality), and
    ``describe_operation(input, output)`` says what an operation did, in words.
    """

    init: Callable[[], Hashable]
    step: Callable[[Any, tuple, Any], tuple[bool, Any]]
    describe_operation: Callable[[tuple, Any], str]
    partition: Callable[[list[Operation]], list[list[Operation]]] = _one_partition


def _show(value: Any) -> str:
    return "nil" if value is None else json.dumps(value, default=str)


def _key_prefix(key: Any) -> str:
    return "" if key is None else f"{key} "


# -- the register model ------------------------------------------------------------------


def _register_step(state: Any, inp: tuple, out: Any) -> tuple[bool, Any]:
    kind = inp[0]
    if kind == "read":
        return out is UNKNOWN or out == state, state
    if kind == "write":
        return True, inp[2]
    # cas: an unknown outcome takes effect whenever it can (placing it last is "never").
    if state == inp[2]:
        return out is not False, inp[3]
    return out is not True, state


def _describe_register(inp: tuple, out: Any) -> str:
    kind, key = inp[0], _key_prefix(inp[1])
    if kind == "read":
        call, result = f"read {key}".rstrip(), f"→ {_show(out)}"
    elif kind == "write":
        call, result = f"write {key}{_show(inp[2])}", ""
    else:
        call = f"cas {key}{_show(inp[2])} → {_show(inp[3])}"
        result = "(swapped)" if out else f"(failed: the value was not {_show(inp[2])})"
    if out is UNKNOWN:
        result = "(outcome unknown)"
    return f"{call} {result}" if result else call


register_model = Model(
    init=lambda: None,
    step=_register_step,
    describe_operation=_describe_register,
    partition=_per_key,
)
"""Read / write / compare-and-set registers, one per key, initially nil (Jepsen's etcd test).

Inputs ``("read", key)``, ``("write", key, value)``, ``("cas", key, from, to)``; outputs the
value read, None for a write, True/False for a cas (swapped / value did not match). A failed
cas is kept: it changed nothing but it observed that the value was not ``from``. Registers
are independent objects, so each key is checked on its own.
"""


# -- the etcd KV model -------------------------------------------------------------------


def _kv_compare(state: tuple, compare: str, expected: Any) -> bool | None:
    """Whether a txn's compare holds in ``state``; None when the state does not tell."""
    value, mod_revision, floor = state
    if value is _ANY:
        return None
    if compare == "value":
        return value == expected  # never None: a missing key's value matches nothing
    if mod_revision is None:
        return None if expected > floor else False
    return mod_revision == expected


def _kv_apply(state: tuple, then: str, new_value: Any, revision: Any) -> tuple[bool, tuple]:
    """Put or delete the key at ``revision`` (None: unknown, it is only above the floor)."""
    value, _, floor = state
    if then == "delete" and value is None:
        return True, state  # deleting nothing creates no revision
    if revision is None:
        return True, (None, 0, floor) if then == "delete" else (new_value, None, floor)
    if revision <= floor:
        return False, state
    return True, (None, 0, revision) if then == "delete" else (new_value, revision, revision)


def _kv_step(state: tuple, inp: tuple, out: Any) -> tuple[bool, Any]:
    kind = inp[0]
    value, mod_revision, floor = state
    if kind == "get":
        if out is UNKNOWN:
            return True, state
        got, got_revision = out
        if got is None:
            return value is None or value is _ANY, (None, 0, floor)
        if value is not _ANY and got != value:
            return False, state
        if mod_revision is not None:
            return got_revision == mod_revision, state
        # Only a lower bound of the revision was known (an unknown update wrote it): this get
        # pins it down.
        return got_revision > floor, (got, got_revision, got_revision)
    if kind == "put":
        return _kv_apply(state, "put", inp[2], None if out is UNKNOWN else out)
    if kind == "delete":
        if out is UNKNOWN:
            return True, (None, 0, floor)  # if it took effect, the key is gone now
        deleted, revision = out
        if not deleted:
            return value is None or value is _ANY, (None, 0, floor)
        if value is None:
            return False, state  # nothing was there to delete
        return _kv_apply(state, "delete", None, revision)
    # txn
    _, _, compare, expected, then, new_value = inp
    holds = _kv_compare(state, compare, expected)
    if out is UNKNOWN:
        if holds is None:
            return True, (_ANY, None, floor)
        return _kv_apply(state, then, new_value, None) if holds else (True, state)
    succeeded, revision = out
    if holds is not None and holds != succeeded:
        return False, state
    if not succeeded:
        return True, state
    return _kv_apply(state, then, new_value, revision)


def _describe_kv(inp: tuple, out: Any) -> str:
    kind, key = inp[0], inp[1]
    if kind == "txn":
        _, _, compare, expected, then, new_value = inp
        action = f"put {key} {_show(new_value)}" if then == "put" else f"delete {key}"
        call = f"txn if {compare}({key}) = {_show(expected)} then {action}"
    else:
        call = f"{kind} {key} {_show(inp[2])}" if kind == "put" else f"{kind} {key}"
    if out is UNKNOWN:
        return f"{call} (outcome unknown)"
    if kind == "get":
        value, revision = out
        result = "nil" if value is None else f"{_show(value)} (mod_revision {revision})"
    elif kind == "put":
        result = f"revision {out}"
    else:
        done, revision = out
        if done:
            result = f"{'deleted' if kind == 'delete' else 'succeeded'} (revision {revision})"
        else:
            result = "nothing" if kind == "delete" else "failed"
    return f"{call} → {result}"


etcd_kv_model = Model(
    init=lambda: (None, 0, 0),
    step=_kv_step,
    describe_operation=_describe_kv,
    partition=_per_key,
)
"""etcd's KV store with revisions, checked key by key.

Inputs ``("get", key)``, ``("put", key, value)``, ``("delete", key)`` and
``("txn", key, compare, expected, then, value)`` (compare the key's ``"mod_revision"`` or
``"value"`` with ``expected``, then ``"put"`` ``value`` or ``"delete"`` the key); outputs
``(value, mod_revision)`` for a get (``(None, None)`` when absent), the new revision for a
put, ``(deleted, revision)`` for a delete, ``(succeeded, revision)`` for a txn.

Why per key: etcd's revision counter is global, so exact revisions couple every key and a
per-key check could not predict them. What each key's history must show instead is what
one key sees of that counter: every get returns the last written value and exactly its
mod_revision, every put or delete (or succeeding txn) gets a revision above all earlier ones
of that key, and txn compares agree with the current value or mod_revision. This is implied
by linearizability of the whole store, so a violation found here is real; what it does not
check is the order of revisions across keys (e.g. that a put on one key returned a higher
revision than a put on another key that completed before it started).

The state of a key is ``(value, mod_revision, floor)``: value None when the key does not
exist (mod_revision 0), ``floor`` the highest revision the key is known to have reached.
After a put of unknown outcome the mod_revision is unknown (None, only above the floor)
until a get reads it; after a txn of unknown outcome whose compare the state cannot decide,
the value is unknown too, and the next operation that observes the key pins it down.
"""


# -- the search --------------------------------------------------------------------------


@dataclass(frozen=True)
class Counterexample:
    """Why a history is not linearizable, in the model's words.

    ``linearized`` is the longest order of operations the search could build (for the
    partition that failed), and ``stuck`` the operations pending at that point: placing
    any of them next contradicts its output, or leads only to states already ruled out.
    """

    linearized: tuple[str, ...]
    stuck: tuple[str, ...]
    stuck_calls: tuple[tuple[Any, int], ...] = ()
    """The stuck operations as (client, call time): where to find them in the history."""


@dataclass(frozen=True)
class CheckResult:
    """The verdict on a history, how long it took, and its size."""

    verdict: Verdict
    elapsed_s: float
    operations: int
    partitions: int
    counterexample: Counterexample | None = None


# Reading the clock costs more than a move of the search (a lift or a backtrack, each after
# at most one scan of the pending calls), so it is read once per this many moves.
_MOVES_PER_CLOCK_READ = 256


def _describe(model: Model, op: Operation) -> str:
    return f"process {op.client_id}: {model.describe_operation(op.input, op.output)}"


def _search(model: Model, ops: Sequence[Operation], deadline: float
            ) -> tuple[Verdict, Counterexample | None]:
    """Search one partition for a linearization; iterative, so deep histories are fine.

    Entries 0..n-1 are the calls of ops 0..n-1, n..2n-1 their returns, 2n the list's head;
    ``nxt``/``prv`` link the entries not yet linearized in time order (a call before a
    return at the same time: they overlap).
    """
    n = len(ops)
    if not n:
        return "linearizable", None
    order = sorted(range(2 * n), key=lambda e: (ops[e].call, 0) if e < n
                   else (ops[e - n].return_, 1))
    head, nil = 2 * n, -1
    nxt = [nil] * (2 * n + 1)
    prv = [nil] * (2 * n + 1)
    previous = head
    for e in order:
        nxt[previous], prv[e] = e, previous
        previous = e
    inputs = [op.input for op in ops]
    outputs = [op.output for op in ops]
    bits = [1 << i for i in range(n)]
    step = model.step
    state = model.init()
    linearized = 0
    seen: set[tuple[int, Any]] = set()
    seen_add = seen.add
    calls: list[tuple[int, Any, int]] = []  # (call entry, state before it, linearized before)
    push, pop = calls.append, calls.pop
    best_depth, best_prefix, best_stuck = -1, [], []
    moves = 1  # read the clock before the first move, so a budget of 0 is always out of time
    entry = nxt[head]
    while True:
        moves -= 1
        if not moves:
            if time.monotonic() >= deadline:
                return "unknown", None
            moves = _MOVES_PER_CLOCK_READ
        # Scan the pending calls for one that can be linearized next, up to the first return.
        while entry < n:
            ok, new_state = step(state, inputs[entry], outputs[entry])
            if ok:
                new_linearized = linearized | bits[entry]
                configuration = (new_linearized, new_state)
                if configuration not in seen:
                    break
            entry = nxt[entry]
        else:
            # A return whose call is still pending: what is linearized cannot be extended.
            if len(calls) > best_depth:
                best_depth = len(calls)
                best_prefix = [c[0] for c in calls]
                best_stuck = _pending_calls(nxt, head, entry, n)
            if not calls:
                break
            entry, state, linearized = pop()
            # Put the call and its return back, in the reverse order of lifting.
            r = entry + n
            p, q = prv[r], nxt[r]
            nxt[p] = r
            if q != nil:
                prv[q] = r
            p, q = prv[entry], nxt[entry]
            nxt[p], prv[q] = entry, entry
            entry = nxt[entry]
            continue
        seen_add(configuration)
        push((entry, state, linearized))
        state, linearized = new_state, new_linearized
        # Lift the call and its return out of the list.
        p, q = prv[entry], nxt[entry]
        nxt[p], prv[q] = q, p
        r = entry + n
        p, q = prv[r], nxt[r]
        nxt[p] = q
        if q != nil:
            prv[q] = p
        entry = nxt[head]
        if entry == nil:
            return "linearizable", None
    return "not-linearizable", Counterexample(
        linearized=tuple(_describe(model, ops[i]) for i in best_prefix),
        stuck=tuple(_describe(model, ops[i]) for i in best_stuck),
        stuck_calls=tuple((ops[i].client_id, ops[i].call) for i in best_stuck),
    )


def _pending_calls(nxt: list[int], head: int, stop: int, n: int) -> list[int]:
    """The call entries linked between the head and ``stop``: the ops that could go next."""
    pending = []
    e = nxt[head]
    while e != stop:
        if e < n:
            pending.append(e)
        e = nxt[e]
    return pending


def check(history: Sequence[Operation], model: Model, timeout_s: float | None = 10.0
          ) -> CheckResult:
    """Check ``history`` against ``model`` within ``timeout_s`` seconds (None: no limit).

    Each partition of the model is searched in turn under one shared deadline; the first
    one that is not linearizable decides. A budget that runs out gives "unknown", unless a
    partition already proved a violation.
    """
    if timeout_s is not None and not timeout_s >= 0:
        raise ValueError(f"timeout_s must be None or a number >= 0, not {timeout_s!r}")
    start = time.monotonic()
    deadline = math.inf if timeout_s is None else start + timeout_s
    partitions = model.partition(list(history))
    verdict: Verdict = "linearizable"
    counterexample = None
    # Small partitions first: a violation in one is found even if a big one takes the budget.
    for part in sorted(partitions, key=len):
        part_verdict, counterexample = _search(model, part, deadline)
        if part_verdict == "not-linearizable":
            verdict = part_verdict
            break
        if part_verdict == "unknown":
            verdict = "unknown"
    return CheckResult(verdict=verdict, elapsed_s=time.monotonic() - start,
                       operations=len(history), partitions=len(partitions),
                       counterexample=counterexample)


# -- parsers -----------------------------------------------------------------------------

# Only numbered processes are clients; other jepsen.util lines (the nemesis) are skipped.
# Fields are separated by any run of whitespace (tabs in Jepsen's files, spaces after a copy
# through a terminal or an editor), as Porcupine's parser of these logs accepts.
_JEPSEN_CLIENT = re.compile(r"^\s*INFO\s+jepsen\.util\s+-\s+(\d+)\s+(.*?)\s*$")
_JEPSEN_EVENT = re.compile(r"^:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*)$")
_JEPSEN_PAIR = re.compile(r"^\[\s*(-?\d+)\s+(-?\d+)\s*\]$")


def _jepsen_value(text: str, line_no: int) -> int | None:
    if text == "nil":
        return None
    try:
        return int(text)
    except ValueError:
        raise HistoryError(f"line {line_no}: expected a number or nil, got {text!r}") from None


def parse_jepsen(text: str) -> list[Operation]:
    """Operations of a Jepsen etcd register log (format in tests/data/jepsen-etcd/README.md).

    Times are event indices. ``:info`` writes and cas (and any operation still open at the
    end) have unknown outcomes; reads that failed or timed out, and failed writes, are
    dropped; a failed cas is kept as a cas that did not swap. Lines that are not
    ``jepsen.util`` events are Jepsen's own log and are skipped.
    """
    open_calls: dict[int, tuple[int, tuple]] = {}
    operations: list[Operation] = []
    events = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        client = _JEPSEN_CLIENT.match(line)
        if client is None:
            continue
        event = _JEPSEN_EVENT.match(client.group(2))
        if event is None:
            raise HistoryError(f"line {line_no}: not a Jepsen event: {line.strip()!r}")
        process = int(client.group(1))
        kind, op, arg = event.groups()
        events += 1
        if kind == "invoke":
            if process in open_calls:
                raise HistoryError(f"line {line_no}: process {process} invoked twice")
            if op == "read":
                inp: tuple = ("read", None)
            elif op == "write":
                inp = ("write", None, _jepsen_value(arg, line_no))
            else:
                pair = _JEPSEN_PAIR.match(arg)
                if pair is None:
                    raise HistoryError(f"line {line_no}: expected [FROM TO], got {arg!r}")
                inp = ("cas", None, int(pair.group(1)), int(pair.group(2)))
            open_calls[process] = (events, inp)
            continue
        if process not in open_calls:
            raise HistoryError(f"line {line_no}: process {process} completes nothing")
        call, inp = open_calls.pop(process)
        if inp[0] != op:
            raise HistoryError(f"line {line_no}: {op} completes a {inp[0]} of process {process}")
        if kind == "info":
            if op != "read":
                operations.append(Operation(process, inp, call, UNKNOWN, math.inf))
        elif kind == "ok":
            output = (_jepsen_value(arg, line_no) if op == "read"
                      else None if op == "write" else True)
            operations.append(Operation(process, inp, call, output, events))
        elif op == "cas":
            operations.append(Operation(process, inp, call, False, events))
    if not events:
        raise HistoryError("no Jepsen client events (lines 'INFO  jepsen.util - PROCESS :invoke "
                           ":OP VALUE', fields separated by tabs or spaces)")
    for process, (call, inp) in open_calls.items():
        if inp[0] != "read":
            operations.append(Operation(process, inp, call, UNKNOWN, math.inf))
    return operations


_REGISTER_OPS = frozenset({"read", "write", "cas"})
_KV_OPS = frozenset({"get", "put", "delete", "txn"})
_OUTCOMES = frozenset({"ok", "failed", "unknown"})


def _freeze(value: Any) -> Hashable:
    """JSON values as hashable ones (model states are cached)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _lab_operation(record: dict[str, Any]) -> Operation | None:
    """One operation from a JSON line; None when it is dropped. Raises ValueError."""
    process, op, outcome = record.get("process"), record.get("op"), record.get("outcome")
    if not (_is_int(process) or isinstance(process, str)):
        raise ValueError("'process' must be an int or a string")
    if op not in _REGISTER_OPS | _KV_OPS:
        raise ValueError(f"'op' must be one of {sorted(_REGISTER_OPS | _KV_OPS)}, not {op!r}")
    if outcome not in _OUTCOMES:
        raise ValueError(f"'outcome' must be one of {sorted(_OUTCOMES)}, not {outcome!r}")
    invoked, completed = record.get("invoked_ns"), record.get("completed_ns")
    if not _is_int(invoked):
        raise ValueError("'invoked_ns' must be an int")
    if outcome != "unknown" and not (_is_int(completed) and completed >= invoked):
        raise ValueError("'completed_ns' must be an int >= invoked_ns when the outcome is known")
    key = record.get("key")
    if op in _KV_OPS and not isinstance(key, str):
        raise ValueError(f"'key' must be a string for {op}")
    args = record.get("args", {})
    if not isinstance(args, dict):
        raise ValueError("'args' must be an object")
    if outcome == "failed" or (outcome == "unknown" and op in ("read", "get")):
        return None  # it had no effect, and nothing was observed
    inp = _lab_input(op, key, args)
    unknown = outcome == "unknown"
    output = UNKNOWN if unknown else _lab_output(op, record.get("value"), record.get("revision"))
    return Operation(process, inp, invoked, output, math.inf if unknown else completed)


def _arg(args: dict[str, Any], name: str, op: str) -> Hashable:
    if name not in args:
        raise ValueError(f"{op} needs args.{name}")
    return _freeze(args[name])


def _lab_input(op: str, key: Any, args: dict[str, Any]) -> tuple:
    key = _freeze(key)
    if op in ("read", "get", "delete"):
        return (op, key)
    if op in ("write", "put"):
        value = _arg(args, "value", op)
        if value is None:
            raise ValueError(f"{op} cannot write null: null stands for a missing key")
        return (op, key, value)
    if op == "cas":
        return (op, key, _arg(args, "from", op), _arg(args, "to", op))
    compare, then = args.get("compare"), args.get("then")
    if compare not in ("mod_revision", "value"):
        raise ValueError("txn args.compare must be 'mod_revision' or 'value'")
    if then not in ("put", "delete"):
        raise ValueError("txn args.then must be 'put' or 'delete'")
    expected = _arg(args, "expected", op)
    if expected is None:
        raise ValueError("txn args.expected cannot be null: etcd compares no missing value")
    if compare == "mod_revision" and not _is_int(expected):
        raise ValueError("txn args.expected must be an int when comparing mod_revision")
    new_value = _arg(args, "value", op) if then == "put" else None
    if then == "put" and new_value is None:
        raise ValueError("txn cannot put null: null stands for a missing key")
    return (op, key, compare, expected, then, new_value)


def _lab_output(op: str, value: Any, revision: Any) -> Any:
    if op == "read":
        return _freeze(value)
    if op == "write":
        return None
    if op in ("cas", "delete", "txn") and not isinstance(value, bool):
        raise ValueError(f"{op} needs a boolean 'value'")
    if op == "cas":
        return value
    needs_revision = value is not None if op == "get" else op == "put" or value
    if needs_revision and not _is_int(revision):
        raise ValueError(f"{op} needs an int 'revision' here")
    if op == "get":
        return (_freeze(value), revision if value is not None else None)
    if op == "put":
        return revision
    return (value, revision if value else None)


def parse_history_jsonl(text: str) -> tuple[list[Operation], list[dict[str, Any]]]:
    """Operations of a lab history (JSON lines, format in this module's docstring).

    Returns the operations (failed ones and unanswered reads dropped) and, separately, the
    lines of another ``type`` such as fault windows. Raises `HistoryError` naming the line.
    """
    operations: list[Operation] = []
    others: list[dict[str, Any]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"line {line_no}: not JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise HistoryError(f"line {line_no}: expected a JSON object")
        if record.get("type", "op") != "op":
            others.append(record)
            continue
        try:
            operation = _lab_operation(record)
        except ValueError as exc:
            raise HistoryError(f"line {line_no}: {exc}") from None
        if operation is not None:
            operations.append(operation)
    return operations, others


def model_for(operations: Sequence[Operation]) -> Model:
    """The model a lab history needs: registers for read/write/cas, etcd KV for the rest."""
    kinds = {op.input[0] for op in operations}
    if kinds & _REGISTER_OPS and kinds & _KV_OPS:
        raise HistoryError("a history mixes register ops (read/write/cas) with etcd KV ops "
                           "(get/put/delete/txn)")
    return etcd_kv_model if kinds & _KV_OPS else register_model
