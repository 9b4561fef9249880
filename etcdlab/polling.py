"""Waiting for a condition: the one poll loop of the lab, the faults and the experiments.

Standard library only, so every layer that waits may import it (``lab/``, ``faults/``,
``playground/``, ``questions/``); :mod:`etcdlab.questions.common` re-exports
:func:`poll_until` for the experiments that import it from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.005
"""How often a main-thread wait looks again (see :func:`poll_until`)."""


def poll_until(check: Callable[[], Any], timeout: float, every: float = POLL_S) -> Any:
    """``check()``'s first truthy answer, asked every ``every`` seconds; after ``timeout``
    its last answer (falsy).

    The main thread waits here, in ``time.sleep``, rather than in ``Condition.wait``: an
    interrupt (Ctrl-C, SIGTERM) raised inside ``Condition.wait`` can leave its lock
    released, and the ``with`` block's exit then raises RuntimeError("cannot release
    un-acquired lock") in place of the interrupt (seen in CI: the run was recorded as
    failed instead of interrupted). The events' own times are stamped where they arrive,
    so the poll adds no error to them."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() >= deadline:
            return answer
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
