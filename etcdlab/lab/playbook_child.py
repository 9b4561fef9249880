"""Runs one playbook through ansible-runner in a fresh process; its events go to stdout.

ansible-runner starts ``ansible-playbook`` with pexpect, which forks the calling Python
process and runs Python code in the child before it execs. A process that holds gRPC
channels (every experiment does) must not be forked that way: gRPC's poller threads do not
survive it, and about one run in thirty died in the child with ``epoll_wait error: Bad file
descriptor`` before ansible-playbook started (reproduced with three busy etcd clients and a
watch in the parent). So the lab never calls ansible-runner in its own process: it starts
this module with :mod:`subprocess` (fork and exec in C, no Python in between), which imports
neither gRPC nor anything of the lab's that does.

Protocol: one JSON object on stdin with ansible-runner's keyword arguments; on stdout one
JSON line per runner event (trimmed to what the progress display reads), then a last line
``{"final": {"status": ..., "rc": ..., "tail": ...}}``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

_EVENTS = {
    "playbook_on_task_start", "playbook_on_handler_task_start", "runner_on_ok",
    "runner_on_failed", "runner_on_unreachable", "runner_on_skipped", "playbook_on_stats",
}
_DATA_KEYS = ("task", "name", "host", "ignore_errors", "duration", "changed", "ok", "dark",
              "failures", "skipped", "rescued", "ignored", "processed")
_RES_KEYS = ("changed", "msg", "stderr", "stdout")
_TEXT_LIMIT = 2000


def trim_event(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The part of a runner event the parent's progress display reads, or None to drop it."""
    kind = event.get("event", "")
    if kind not in _EVENTS:
        return None
    data = event.get("event_data") or {}
    trimmed: dict[str, Any] = {k: data[k] for k in _DATA_KEYS if k in data}
    res = data.get("res")
    if isinstance(res, Mapping):
        trimmed["res"] = {
            k: (str(res[k])[-_TEXT_LIMIT:] if k != "changed" else bool(res[k]))
            for k in _RES_KEYS if k in res
        }
    return {"event": kind, "event_data": trimmed}


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the lab's process dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        sys.exit(1)


def main() -> int:
    """Read the request, run the playbook, stream its events; exit 0 when it ran at all."""
    _die_with_parent()
    request = json.loads(sys.stdin.read())
    import ansible_runner

    def emit(event: Mapping[str, Any]) -> bool:
        trimmed = trim_event(event)
        if trimmed is not None:
            print(json.dumps(trimmed, default=str), flush=True)
        return True

    result = ansible_runner.run(**request, event_handler=emit, quiet=True)
    try:
        lines = [line for line in result.stdout.read().splitlines() if line.strip()]
    except (OSError, AttributeError, ValueError):
        lines = []
    final = {"status": result.status, "rc": result.rc, "tail": lines[-1] if lines else ""}
    print(json.dumps({"final": final}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
