"""Unit tests for etcdlab.check.linearizability and `invoke check-history` (etcdlab.check.cli)."""

import itertools
import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from etcdlab.check import cli as history_cli
from etcdlab.check import linearizability as lin
from etcdlab.check.linearizability import UNKNOWN, Operation, check, etcd_kv_model, register_model

ROOT = Path(__file__).resolve().parents[2]
# Jepsen's etcd histories with their known verdicts, vendored (tests/data/jepsen-etcd/README.md).
JEPSEN = ROOT / "tests" / "data" / "jepsen-etcd"


def _jepsen_verdicts():
    rows = [line.split() for line in (JEPSEN / "verdicts.txt").read_text().splitlines()
            if line.strip()]
    return [pytest.param(name, verdict, id=name) for name, verdict in rows]


def write(client, value, call, ret, key=None):
    """A register write that completed."""
    return Operation(client, ("write", key, value), call, None, ret)


def read(client, value, call, ret, key=None):
    """A register read that returned ``value`` (None: nil)."""
    return Operation(client, ("read", key), call, value, ret)


def cas(client, old, new, swapped, call, ret, key=None):
    """A register compare-and-set that swapped or found another value."""
    return Operation(client, ("cas", key, old, new), call, swapped, ret)


def unknown_write(client, value, call, key=None):
    """A register write whose outcome is unknown (Jepsen's :info)."""
    return Operation(client, ("write", key, value), call, UNKNOWN, math.inf)


def put(client, key, value, revision, call, ret):
    """An etcd put that created ``revision``."""
    return Operation(client, ("put", key, value), call, revision, ret)


def get(client, key, value, mod_revision, call, ret):
    """An etcd get that returned ``value`` at ``mod_revision`` (None, None: no key)."""
    return Operation(client, ("get", key), call, (value, mod_revision), ret)


def txn(client, key, expected_mod_revision, value, outcome, call, ret):
    """An etcd txn: if mod_revision(key) = expected, put value; outcome (succeeded, rev)."""
    inp = ("txn", key, "mod_revision", expected_mod_revision, "put", value)
    return Operation(client, inp, call, outcome, ret)


# -- Jepsen's etcd histories -------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), _jepsen_verdicts())
def test_jepsen_history_reproduces_its_known_verdict(name, expected):
    operations = lin.parse_jepsen((JEPSEN / name).read_text())
    result = check(operations, register_model, timeout_s=120)
    assert result.verdict != "unknown", f"{name}: no verdict within the budget"
    assert result.verdict == expected
    assert (result.counterexample is not None) == (expected == "not-linearizable")


def test_verdicts_cover_every_jepsen_history():
    listed = {line.split()[0] for line in (JEPSEN / "verdicts.txt").read_text().splitlines()}
    assert listed == {path.name for path in JEPSEN.glob("*.log")}
    assert len(listed) == 80


def _respaced(text: str, separators: list[str], seed: int) -> str:
    """``text`` with every tab replaced by one of ``separators`` (chosen per tab, seeded)."""
    pick = random.Random(seed).choice
    return re.sub("\t", lambda _: pick(separators), text)


# Porcupine's parser of these logs takes any whitespace between fields; so does this one.
@pytest.mark.parametrize("name", ["etcd_000.log", "etcd_002.log", "etcd_025.log"])
@pytest.mark.parametrize(("separators", "ending"), [
    ([" "], "\n"),
    (["   "], "\n"),
    ([" ", "  ", "\t", " \t ", "\t\t"], "\n"),
    ([" ", "\t "], "  \r\n"),
], ids=["one-space", "runs-of-spaces", "mixed", "mixed-trailing-crlf"])
def test_jepsen_history_with_other_whitespace_gets_the_same_verdict(name, separators, ending):
    expected = dict(line.split() for line in (JEPSEN / "verdicts.txt").read_text().splitlines())
    original = (JEPSEN / name).read_text()
    lines = _respaced(original, separators, seed=len(name)).splitlines()
    respaced = "".join(line + ending for line in lines)
    assert respaced != original
    operations = lin.parse_jepsen(respaced)
    assert operations == lin.parse_jepsen(original)
    assert check(operations, register_model, timeout_s=120).verdict == expected[name]


def test_invoke_check_history_reads_a_space_separated_jepsen_log(tmp_path, capsys):
    log = tmp_path / "etcd_000.log"
    log.write_text((JEPSEN / "etcd_000.log").read_text().replace("\t", "  "))
    assert history_cli.main([str(log)], format_="jepsen", timeout="60") == 0
    assert f"{log} not-linearizable " in capsys.readouterr().out


def test_parse_jepsen_applies_the_readme_semantics():
    text = "\n".join([
        "INFO  jepsen.core - some log line without an operation",
        "INFO  jepsen.util - 0\t:invoke\t:write\t3",
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 0\t:ok\t:write\t3",
        "INFO  jepsen.util - 1\t:fail\t:read\t:timed-out",
        "INFO  jepsen.util - :nemesis\t:info\t:start\tnil",
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 4]",
        "INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]",
        "INFO  jepsen.util - 2\t:info\t:cas\t:timed-out",
        "INFO  jepsen.util - 3\t:fail\t:cas\t[1 2]",
        "INFO  jepsen.util - 4\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 4\t:ok\t:read\tnil",
    ])
    assert lin.parse_jepsen(text) == [
        Operation(0, ("write", None, 3), 1, None, 3),
        Operation(2, ("cas", None, 3, 4), 5, UNKNOWN, math.inf),
        Operation(3, ("cas", None, 1, 2), 6, False, 8),
        Operation(4, ("read", None), 9, None, 10),
    ]


def test_parse_jepsen_leaves_operations_open_at_the_end_unknown():
    text = "INFO  jepsen.util - 0\t:invoke\t:write\t3\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\n"
    assert lin.parse_jepsen(text) == [Operation(0, ("write", None, 3), 1, UNKNOWN, math.inf)]


@pytest.mark.parametrize(("text", "message"), [
    ("INFO  jepsen.util - 0\t:invoke\t:write\tx", "line 1: expected a number"),
    ("INFO  jepsen.util - 0\t:invoke\t:scan\tnil", "line 1: not a Jepsen event"),
    ("INFO  jepsen.util - 0\t:ok\t:read\t1", "line 1: process 0 completes nothing"),
    ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1]", "line 1: expected \\[FROM TO\\]"),
    ("just some text", "no Jepsen client events"),
])
def test_parse_jepsen_rejects_what_it_cannot_read(text, message):
    with pytest.raises(lin.HistoryError, match=message):
        lin.parse_jepsen(text)


# -- small register histories ------------------------------------------------------------


def test_sequential_register_history_is_linearizable():
    history = [read(0, None, 0, 1), write(0, 1, 2, 3), read(1, 1, 4, 5),
               cas(1, 1, 2, True, 6, 7), read(0, 2, 8, 9)]
    result = check(history, register_model)
    assert result.verdict == "linearizable"
    assert (result.operations, result.partitions, result.counterexample) == (5, 1, None)


def test_concurrent_operations_may_take_effect_in_either_order():
    history = [write(0, 1, 0, 10), write(1, 2, 1, 9), read(2, 1, 11, 12)]
    assert check(history, register_model).verdict == "linearizable"


def test_stale_read_after_a_completed_write_is_not_linearizable():
    history = [write(0, 1, 0, 1), write(1, 2, 2, 3), read(2, 1, 4, 5)]
    result = check(history, register_model)
    assert result.verdict == "not-linearizable"
    assert result.counterexample.linearized == ("process 0: write 1", "process 1: write 2")
    assert result.counterexample.stuck == ("process 2: read → 1",)


def test_unknown_write_that_a_later_read_needs_is_linearizable():
    needed = unknown_write(0, 7, 0)
    later = [write(1, 1, 1, 2), read(2, 7, 5, 6)]
    assert check([needed, *later], register_model).verdict == "linearizable"
    # Without the unknown write nothing explains the read: it must have taken effect.
    assert check(later, register_model).verdict == "not-linearizable"


def test_unknown_write_that_is_never_observed_is_linearizable():
    history = [write(0, 1, 0, 1), unknown_write(1, 2, 2), read(2, 1, 3, 4), read(0, 1, 10, 11)]
    assert check(history, register_model).verdict == "linearizable"


def test_unknown_write_cannot_take_effect_before_its_invocation():
    history = [read(0, 5, 0, 1), unknown_write(1, 5, 2)]
    assert check(history, register_model).verdict == "not-linearizable"


def test_failed_cas_has_no_effect():
    history = [write(0, 1, 0, 1), cas(1, 2, 3, False, 2, 3), read(2, 1, 4, 5)]
    assert check(history, register_model).verdict == "linearizable"


def test_failed_cas_observed_that_the_value_differed():
    history = [write(0, 1, 0, 1), cas(1, 1, 3, False, 2, 3)]
    result = check(history, register_model)
    assert result.verdict == "not-linearizable"
    assert result.counterexample.stuck == ("process 1: cas 1 → 3 (failed: the value was not 1)",)


def test_cas_that_swapped_needed_the_expected_value():
    history = [write(0, 1, 0, 1), cas(1, 2, 3, True, 2, 3)]
    assert check(history, register_model).verdict == "not-linearizable"


def test_registers_are_checked_key_by_key():
    history = [write(0, 1, 0, 1, key="a"), write(1, 2, 0, 1, key="b"),
               read(0, 1, 2, 3, key="a"), read(1, 1, 2, 3, key="b")]
    result = check(history, register_model)
    assert (result.verdict, result.partitions) == ("not-linearizable", 2)
    assert result.counterexample.stuck == ("process 1: read b → 1",)


def test_long_history_needs_no_recursion():
    history = []
    for i in range(3000):
        history += [write(i % 5, i, 4 * i, 4 * i + 1), read(i % 7, i, 4 * i + 2, 4 * i + 3)]
    assert check(history, register_model, timeout_s=None).verdict == "linearizable"


def test_zero_budget_gives_unknown_never_a_guess():
    history = [write(0, 1, 0, 1)]
    result = check(history, register_model, timeout_s=0)
    assert (result.verdict, result.counterexample) == ("unknown", None)


def test_zero_budget_on_a_jepsen_history_gives_unknown():
    for name in ("etcd_000.log", "etcd_002.log"):
        operations = lin.parse_jepsen((JEPSEN / name).read_text())
        assert check(operations, register_model, timeout_s=0).verdict == "unknown"


def test_empty_history_is_linearizable_whatever_the_budget():
    result = check([], register_model, timeout_s=0)
    assert (result.verdict, result.operations, result.partitions) == ("linearizable", 0, 0)


@pytest.mark.parametrize("timeout", [-1, math.nan])
def test_check_rejects_a_negative_or_nan_budget(timeout):
    with pytest.raises(ValueError, match="timeout_s"):
        check([], register_model, timeout_s=timeout)


# -- the etcd KV model -------------------------------------------------------------------


def test_kv_puts_and_gets_with_revisions_are_linearizable():
    history = [get(0, "k", None, None, 0, 1), put(0, "k", "a", 2, 2, 3),
               get(1, "k", "a", 2, 4, 5), put(1, "k", "b", 5, 6, 9), get(2, "k", "b", 5, 7, 8),
               get(0, "k", "b", 5, 10, 11)]
    assert check(history, etcd_kv_model).verdict == "linearizable"


def test_kv_get_of_an_older_value_after_a_completed_put_is_not_linearizable():
    history = [put(0, "k", "a", 2, 0, 1), put(1, "k", "b", 3, 2, 3), get(2, "k", "a", 2, 4, 5)]
    result = check(history, etcd_kv_model)
    assert result.verdict == "not-linearizable"
    assert result.counterexample.stuck == ('process 2: get k → "a" (mod_revision 2)',)


def test_kv_get_must_return_the_mod_revision_of_the_last_put():
    history = [put(0, "k", "a", 2, 0, 1), get(1, "k", "a", 3, 2, 3)]
    assert check(history, etcd_kv_model).verdict == "not-linearizable"


def test_kv_revisions_of_a_key_only_grow():
    history = [put(0, "k", "a", 7, 0, 1), put(1, "k", "b", 4, 2, 3)]
    assert check(history, etcd_kv_model).verdict == "not-linearizable"
    same = [put(0, "k", "a", 7, 0, 1), put(1, "k", "b", 7, 2, 3)]
    assert check(same, etcd_kv_model).verdict == "not-linearizable"


def test_kv_txn_compares_the_mod_revision():
    history = [put(0, "k", "a", 5, 0, 1),
               txn(1, "k", 5, "b", (True, 6), 2, 3),
               txn(2, "k", 5, "c", (False, 6), 4, 5),
               get(0, "k", "b", 6, 6, 7)]
    assert check(history, etcd_kv_model).verdict == "linearizable"
    swapped_twice = [*history[:2], txn(2, "k", 5, "c", (True, 7), 4, 5)]
    result = check(swapped_twice, etcd_kv_model)
    assert result.verdict == "not-linearizable"
    assert result.counterexample.stuck == (
        'process 2: txn if mod_revision(k) = 5 then put k "c" → succeeded (revision 7)',)


def test_kv_txn_creating_a_key_compares_mod_revision_zero():
    create = txn(0, "k", 0, "a", (True, 3), 0, 1)
    assert check([create, get(1, "k", "a", 3, 2, 3)], etcd_kv_model).verdict == "linearizable"
    again = txn(1, "k", 0, "b", (True, 4), 2, 3)
    assert check([create, again], etcd_kv_model).verdict == "not-linearizable"


def test_kv_unknown_put_is_pinned_down_by_the_get_that_reads_it():
    history = [put(0, "k", "a", 2, 0, 1), Operation(1, ("put", "k", "b"), 2, UNKNOWN, math.inf),
               get(2, "k", "b", 9, 5, 6)]
    assert check(history, etcd_kv_model).verdict == "linearizable"
    later = get(0, "k", "b", 10, 7, 8)
    assert check([*history, later], etcd_kv_model).verdict == "not-linearizable"


def test_kv_unknown_put_gets_a_revision_above_the_last_known_one():
    history = [put(0, "k", "a", 2, 0, 1), Operation(1, ("put", "k", "b"), 2, UNKNOWN, math.inf),
               get(2, "k", "b", 2, 5, 6)]
    assert check(history, etcd_kv_model).verdict == "not-linearizable"


def test_kv_unknown_put_that_must_have_happened_moved_the_mod_revision():
    # The failed value compare shows "b" replaced "a", so mod_revision 5 is gone by then.
    history = [put(0, "k", "a", 5, 0, 1), Operation(1, ("put", "k", "b"), 2, UNKNOWN, math.inf),
               Operation(2, ("txn", "k", "value", "a", "put", "c"), 3, (False, None), 4),
               txn(3, "k", 5, "d", (True, 9), 5, 6)]
    assert check(history, etcd_kv_model).verdict == "not-linearizable"
    assert check(history[:3], etcd_kv_model).verdict == "linearizable"


def test_kv_unknown_txn_on_an_undetermined_key_accepts_what_is_read_next():
    # After the unknown put nobody knows the key's mod_revision, so whether the unknown txn's
    # compare held is open too: the next get decides, and then the state is pinned down.
    history = [Operation(0, ("put", "k", "a"), 0, UNKNOWN, math.inf),
               Operation(1, ("txn", "k", "mod_revision", 7, "put", "b"), 1, UNKNOWN, math.inf),
               get(2, "k", "b", 8, 5, 6)]
    assert check(history, etcd_kv_model).verdict == "linearizable"
    assert check([*history, get(2, "k", "a", 7, 7, 8)], etcd_kv_model).verdict == \
        "not-linearizable"


def test_kv_counterexample_describes_every_kind_of_operation():
    history = [Operation(0, ("put", "k", "a"), 0, 2, 1),
               Operation(1, ("delete", "k"), 2, (True, 3), 3),
               Operation(2, ("delete", "k"), 4, (False, None), 5),
               Operation(3, ("txn", "k", "value", "a", "delete", None), 6, (False, None), 7),
               Operation(4, ("put", "k", "c"), 8, UNKNOWN, math.inf),
               get(5, "k", "a", 2, 9, 10)]
    result = check(history, etcd_kv_model)
    assert result.verdict == "not-linearizable"
    assert result.counterexample.linearized == (
        'process 0: put k "a" → revision 2', "process 1: delete k → deleted (revision 3)",
        "process 2: delete k → nothing",
        'process 3: txn if value(k) = "a" then delete k → failed',
        'process 4: put k "c" (outcome unknown)')
    assert result.counterexample.stuck == ('process 5: get k → "a" (mod_revision 2)',)


def test_kv_delete_removes_the_key():
    history = [put(0, "k", "a", 2, 0, 1), Operation(1, ("delete", "k"), 2, (True, 3), 3),
               get(2, "k", None, None, 4, 5), put(0, "k", "b", 4, 6, 7)]
    assert check(history, etcd_kv_model).verdict == "linearizable"
    stale = [*history[:2], get(2, "k", "a", 2, 4, 5)]
    assert check(stale, etcd_kv_model).verdict == "not-linearizable"
    missed = [history[0], Operation(1, ("delete", "k"), 2, (False, None), 3)]
    assert check(missed, etcd_kv_model).verdict == "not-linearizable"
    phantom = [Operation(1, ("delete", "k"), 0, (True, 3), 1)]
    assert check(phantom, etcd_kv_model).verdict == "not-linearizable"


def test_kv_keys_are_checked_separately_and_cross_key_revision_order_is_not_checked():
    # The put on "b" started after the put on "a" completed, yet got a lower revision: a real
    # violation of etcd's global counter that a per-key check, by design, does not see.
    history = [put(0, "a", "x", 5, 0, 1), put(1, "b", "y", 3, 2, 3)]
    result = check(history, etcd_kv_model)
    assert (result.verdict, result.partitions) == ("linearizable", 2)


# -- random histories: the search against brute force, the KV model against a real store --


def _brute_force(ops, model):
    """The verdict by trying every order of every partition (tiny histories only)."""
    for part in model.partition(list(ops)):
        if not any(_explains(order, model) for order in itertools.permutations(part)):
            return "not-linearizable"
    return "linearizable"


def _explains(order, model):
    for i, earlier in enumerate(order):
        if any(later.return_ < earlier.call for later in order[i + 1:]):
            return False  # ``later`` had returned before ``earlier`` was invoked
    state = model.init()
    for op in order:
        ok, state = model.step(state, op.input, op.output)
        if not ok:
            return False
    return True


def _intervals(rng, n):
    """n (call, return) pairs around distinct instants, sorted by those instants."""
    instants = sorted(rng.sample(range(10 * n), n))
    return [(t - rng.randint(0, 15), t + rng.randint(0, 15)) for t in instants]


def _random_register(rng, n):
    ops = []
    for i, (call, ret) in enumerate(_intervals(rng, n)):
        kind = rng.choice(["read", "write", "cas"])
        inp = {"read": ("read", None), "write": ("write", None, rng.randint(1, 2)),
               "cas": ("cas", None, rng.choice([None, 1, 2]), rng.randint(1, 2))}[kind]
        out = {"read": rng.choice([None, 1, 2]), "write": None, "cas": rng.random() < 0.5}[kind]
        ops.append(_maybe_unknown(rng, Operation(i, inp, call, out, ret)))
    return ops


def _random_kv(rng, n):
    ops = []
    for i, (call, ret) in enumerate(_intervals(rng, n)):
        key, kind, revision, flag = rng.choice("ab"), rng.choice(["get", "put", "delete", "txn"]), \
            rng.randint(1, 6), rng.random() < 0.5
        if kind == "get":
            value = rng.choice([None, "x", "y"])
            inp, out = ("get", key), (value, None if value is None else revision)
        elif kind == "put":
            inp, out = ("put", key, rng.choice("xy")), revision
        elif kind == "delete":
            inp, out = ("delete", key), (flag, revision if flag else None)
        else:
            compare = rng.choice(["value", "mod_revision"])
            expected = rng.choice("xy") if compare == "value" else rng.randint(0, 5)
            then = rng.choice(["put", "delete"])
            inp = ("txn", key, compare, expected, then, "x" if then == "put" else None)
            out = (flag, revision if flag else None)
        ops.append(_maybe_unknown(rng, Operation(i, inp, call, out, ret)))
    return ops


def _maybe_unknown(rng, op):
    if op.input[0] in ("read", "get") or rng.random() < 0.7:
        return op
    return Operation(op.client_id, op.input, op.call, UNKNOWN, math.inf)


def _real_store(rng, n):
    """A history of a real etcd store (one global revision counter, two keys), in which some
    updates' outcomes are hidden (those took effect or not at random)."""
    store, revision, ops = {}, 1, []
    for i, (call, ret) in enumerate(_intervals(rng, n)):
        key, kind, new_value = rng.choice("ab"), rng.choice(["get", "put", "delete", "txn"]), \
            rng.choice("xyz")
        current = store.get(key)
        if kind == "get":
            ops.append(Operation(i, ("get", key), call, current or (None, None), ret))
            continue
        holds = True
        if kind == "txn":
            compare, mod_revision = rng.choice(["value", "mod_revision"]), \
                current[1] if current else 0
            if compare == "value":
                expected = rng.choice("xyz")
                holds = current is not None and current[0] == expected
            else:
                expected = rng.choice([0, revision, mod_revision])
                holds = mod_revision == expected
            then = rng.choice(["put", "delete"])
            inp = ("txn", key, compare, expected, then, new_value if then == "put" else None)
        else:
            then = kind
            inp = ("put", key, new_value) if kind == "put" else ("delete", key)
        hidden = rng.random() < 0.3
        if holds and (not hidden or rng.random() < 0.5):
            if then == "put":
                revision += 1
                store[key] = (new_value, revision)
            elif current is not None:  # deleting nothing creates no revision
                revision += 1
                del store[key]
        done = current is not None if kind == "delete" else holds
        out = {"put": revision, "delete": (done, revision if done else None),
               "txn": (done, revision if done else None)}[kind]
        ops.append(Operation(i, inp, call, UNKNOWN if hidden else out,
                             math.inf if hidden else ret))
    return ops


@pytest.mark.parametrize(("generate", "model"), [(_random_register, register_model),
                                                 (_random_kv, etcd_kv_model)])
def test_search_agrees_with_brute_force_on_random_histories(generate, model):
    rng = random.Random(2024)
    verdicts = set()
    for _ in range(400):
        ops = generate(rng, rng.randint(1, 6))
        expected = _brute_force(ops, model)
        assert check(ops, model, timeout_s=None).verdict == expected, ops
        verdicts.add(expected)
    assert verdicts == {"linearizable", "not-linearizable"}


def test_kv_model_accepts_every_history_of_a_real_store():
    rng = random.Random(7)
    for _ in range(1000):
        ops = _real_store(rng, rng.randint(1, 12))
        assert check(ops, etcd_kv_model, timeout_s=None).verdict == "linearizable", ops


# -- the lab's JSON lines ----------------------------------------------------------------


def _line(**fields):
    record = {"process": 0, "key": "k", "args": {}, "invoked_ns": 0, "completed_ns": 1,
              "outcome": "ok", "value": None, "revision": None}
    return json.dumps({**record, **fields})


def test_parse_history_jsonl_reads_the_documented_format():
    fault = {"type": "fault", "kind": "partition", "start_ns": 5, "end_ns": 50}
    text = "\n".join([
        _line(op="put", args={"value": "a"}, revision=2),
        json.dumps(fault),
        "",
        _line(process="w1", op="get", invoked_ns=10, completed_ns=20, value="a", revision=2),
        _line(op="put", args={"value": "b"}, invoked_ns=30, completed_ns=None,
              outcome="unknown"),
        _line(op="get", invoked_ns=40, completed_ns=None, outcome="unknown"),
        _line(op="put", args={"value": "c"}, invoked_ns=50, completed_ns=60, outcome="failed"),
        _line(op="txn", args={"compare": "value", "expected": "a", "then": "delete"},
              invoked_ns=70, completed_ns=80, value=False, revision=4),
        _line(type="op", op="delete", invoked_ns=90, completed_ns=95, value=True, revision=5),
    ])
    operations, others = lin.parse_history_jsonl(text)
    assert operations == [
        Operation(0, ("put", "k", "a"), 0, 2, 1),
        Operation("w1", ("get", "k"), 10, ("a", 2), 20),
        Operation(0, ("put", "k", "b"), 30, UNKNOWN, math.inf),
        Operation(0, ("txn", "k", "value", "a", "delete", None), 70, (False, None), 80),
        Operation(0, ("delete", "k"), 90, (True, 5), 95),
    ]
    assert others == [fault]
    assert lin.model_for(operations) is etcd_kv_model


def test_parse_history_jsonl_register_ops_use_the_register_model():
    text = "\n".join([
        _line(op="write", args={"value": 1}),
        _line(op="cas", args={"from": 1, "to": 2}, invoked_ns=2, completed_ns=3, value=True),
        _line(op="read", invoked_ns=4, completed_ns=5, value=2),
    ])
    operations, _ = lin.parse_history_jsonl(text)
    assert lin.model_for(operations) is register_model
    assert check(operations, register_model).verdict == "linearizable"


def test_model_for_rejects_a_history_mixing_both_families():
    operations, _ = lin.parse_history_jsonl(
        _line(op="write", args={"value": 1}) + "\n" + _line(op="get", value=None))
    with pytest.raises(lin.HistoryError, match="mixes"):
        lin.model_for(operations)


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 1: not JSON"),
    ("[1, 2]", "line 1: expected a JSON object"),
    (_line(op="scan"), "line 1: 'op' must be one of"),
    (_line(op="get", outcome="maybe"), "'outcome' must be one of"),
    (_line(op="get", invoked_ns="0"), "'invoked_ns' must be an int"),
    (_line(op="get", completed_ns=None), "'completed_ns' must be an int"),
    (_line(op="put", args={}), "put needs args.value"),
    (_line(op="put", args={"value": None}, revision=1), "cannot write null"),
    (_line(op="put", args={"value": "a"}), "put needs an int 'revision'"),
    (_line(op="cas", args={"from": 1, "to": 2}), "cas needs a boolean 'value'"),
    (_line(op="txn", args={"compare": "version", "expected": 1, "then": "put"}),
     "args.compare"),
    (_line(op="get", key=None), "'key' must be a string"),
    (_line(op="txn", args={"compare": "value", "expected": None, "then": "delete"}),
     "args.expected cannot be null"),
])
def test_parse_history_jsonl_rejects_bad_lines_naming_them(line, message):
    with pytest.raises(lin.HistoryError, match=message):
        lin.parse_history_jsonl(line)


# -- invoke check-history ----------------------------------------------------------------

STALE_READ = "\n".join([
    "INFO  jepsen.util - 0\t:invoke\t:write\t1",
    "INFO  jepsen.util - 0\t:ok\t:write\t1",
    "INFO  jepsen.util - 1\t:invoke\t:read\tnil",
    "INFO  jepsen.util - 1\t:ok\t:read\t2",
])
GOOD = "\n".join([
    "INFO  jepsen.util - 0\t:invoke\t:write\t1",
    "INFO  jepsen.util - 0\t:ok\t:write\t1",
])


def _error_line(capsys):
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    return lines[0]


def test_check_history_prints_a_verdict_per_file_and_exits_0(tmp_path, capsys):
    (tmp_path / "good.log").write_text(GOOD)
    (tmp_path / "bad.log").write_text(STALE_READ)
    (tmp_path / "kv.jsonl").write_text(_line(op="put", args={"value": "a"}, revision=2))
    (tmp_path / "notes.txt").write_text("not a history")
    assert history_cli.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    verdicts = [line.rsplit(" ", 2) for line in lines if not line.startswith(" ")]
    assert [(Path(path).name, verdict) for path, verdict, _ in verdicts] == [
        ("bad.log", "not-linearizable"), ("good.log", "linearizable"),
        ("kv.jsonl", "linearizable")]
    assert all(len(seconds.split(".")[1]) == 3 for _, _, seconds in verdicts)
    assert lines[1:5] == ["  1 operation(s) linearize:", "    process 0: write 1",
                          "  then none of these pending operations can take effect:",
                          "    process 1: read → 2"]
    assert err == ""


def test_check_history_expands_a_glob_and_takes_the_format_flag(tmp_path, capsys):
    (tmp_path / "a.txt").write_text(GOOD)
    (tmp_path / "b.txt").write_text(GOOD)
    assert history_cli.main([str(tmp_path / "*.txt")], format_="jepsen", timeout="inf") == 0
    out, _ = capsys.readouterr()
    assert [line.split()[1] for line in out.splitlines()] == ["linearizable"] * 2


def test_check_history_exits_3_when_a_verdict_is_unknown(tmp_path, capsys):
    (tmp_path / "good.log").write_text(GOOD)
    assert history_cli.main([str(tmp_path / "good.log")], timeout="0") == 3
    out, _ = capsys.readouterr()
    assert out.split()[:2] == [str(tmp_path / "good.log"), "unknown"]


@pytest.mark.parametrize(("files", "format_", "timeout", "message"), [
    (["missing.log"], None, None, "cannot read missing.log"),
    (["good.log"], None, "-1", "--timeout must be a number"),
    (["good.log"], None, "nan", "--timeout must be a number"),
    (["good.log"], None, "soon", "--timeout must be a number"),
    (["good.log"], "csv", None, "unknown --format 'csv'"),
    (["good.log"], "etcdlab", None, "good.log \\(etcdlab format\\): line 1: not JSON"),
    (["good.log", "broken.jsonl"], None, None, "broken.jsonl .*line 2: 'op' must be one of"),
    (["*.nothing"], None, None, "no file matches"),
])
def test_check_history_exits_2_with_one_error_line_on_bad_input(
        tmp_path, monkeypatch, capsys, files, format_, timeout, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.log").write_text(GOOD)
    (tmp_path / "broken.jsonl").write_text(_line(op="put", args={"value": 1}, revision=2)
                                           + "\n" + _line(op="scan"))
    assert history_cli.main(files, format_=format_, timeout=timeout) == 2
    assert re.search(message, _error_line(capsys))


def test_invoke_check_history_on_a_missing_file_exits_2_with_one_error_line(tmp_path):
    invoke = Path(sys.executable).with_name("invoke")
    if not invoke.exists():
        pytest.skip(f"no invoke beside {sys.executable}")
    missing = tmp_path / "missing.log"
    done = subprocess.run([str(invoke), "check-history", str(missing)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: cannot read {missing}: No such file or directory"]
    assert done.stdout == ""
