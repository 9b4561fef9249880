"""Work run at once in threads (ntp-isolation's two series): a failure or an interrupt
stops the others, and nothing returns before every thread has ended."""

import _thread
import threading
import time

import pytest

from etcdlab.errors import LabError
from etcdlab.questions.common import Stopped, run_at_once
from etcdlab.questions.q07_ntp_isolation.run import choose_clients


def _waiting(ended: list[str], name: str):
    def work(stop: threading.Event) -> None:
        try:
            while not stop.wait(0.01):
                pass
            raise Stopped
        finally:
            ended.append(name)
    return work


def test_every_work_runs_at_the_same_time():
    both = threading.Barrier(2, timeout=5)  # breaks unless both threads run together
    run_at_once({"a": lambda stop: both.wait(), "b": lambda stop: both.wait()})


def test_a_failure_stops_the_others_and_is_raised_once_all_ended():
    ended: list[str] = []

    def fails(stop: threading.Event) -> None:
        time.sleep(0.05)
        raise LabError("did not settle")

    with pytest.raises(LabError, match="did not settle"):
        run_at_once({"waits": _waiting(ended, "waits"), "fails": fails})
    assert ended == ["waits"]


def test_an_interrupt_of_the_caller_stops_every_work_before_it_is_raised():
    ended: list[str] = []
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run_at_once({"a": _waiting(ended, "a"), "b": _waiting(ended, "b")})
    assert sorted(ended) == ["a", "b"]


def test_clients_default_to_two_nodes_at_once_and_one_node_runs_both():
    names = ["n1", "n2", "n3"]
    assert choose_clients(names, "", "") == ("n1", {"iburst": "n2", "no_iburst": "n3"})
    assert choose_clients(names, "n3", "") == ("n1", {"iburst": "n3", "no_iburst": "n2"})
    assert choose_clients(names, "n2", "n2")[1] == {"iburst": "n2", "no_iburst": "n2"}
    assert choose_clients(["n1", "n2"], "", "")[1] == {"iburst": "n2", "no_iburst": "n2"}
    with pytest.raises(LabError, match="second_client must be one of n2, n3"):
        choose_clients(names, "", "n1")
    with pytest.raises(LabError, match="at least one client"):
        choose_clients(["n1"], "", "")
