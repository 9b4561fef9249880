"""SIGTERM and SIGHUP behave like Ctrl-C; while the lab heals, one interrupt does not stop it.

Python's default action for SIGTERM and SIGHUP (a CI timeout, a closed SSH session) ends
the process at once, skipping every ``finally``: partitions, killed members and faked
clocks would stay. :func:`interrupts_as_exceptions` turns both into
:class:`~etcdlab.errors.Interrupted`, which the runner treats as Ctrl-C. During a heal,
:func:`heal_guard` lets the first interrupt only say that healing is under way; a second
one stops the heal and leaves the journal for ``invoke heal``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from etcdlab.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_interrupt_handlers() -> None:
    """Ctrl-C, SIGTERM and SIGHUP raise Interrupted in the main thread."""
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, _raise)


@contextmanager
def heal_guard(say: Callable[[str], None]) -> Iterator[None]:
    """Inside: the first interrupt is announced and ignored, the second raises."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = 0

    def handler(signum: int, _frame: object) -> None:
        nonlocal count
        count += 1
        name = signal.Signals(signum).name
        if count == 1:
            say(f"{name} received while healing the lab: healing goes on (interrupt again "
                "to stop it; `invoke heal` then finishes what is left)")
            return
        raise Interrupted(name)

    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
