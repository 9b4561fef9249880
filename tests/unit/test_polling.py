"""etcdlab.polling: the one poll loop, and the experiments' way of importing it."""

import pytest

from etcdlab import polling


def test_the_experiments_import_the_same_poll_until():
    from etcdlab.questions.common import poll_until

    assert poll_until is polling.poll_until


class FakeClock:
    """time.monotonic and time.sleep of a clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 9))
        self.now += seconds


def test_a_falsy_check_is_asked_a_last_time_at_the_deadline_then_its_answer_returned(
        monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(polling.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(polling.time, "sleep", clock.sleep)
    asked: list[float] = []
    answer = polling.poll_until(lambda: asked.append(clock.now - 100.0) or 0, 0.05, every=0.02)
    assert answer == 0
    # every 0.02 s, then once more at the deadline: the last sleep is cut short
    assert [round(t, 9) for t in asked] == [0.0, 0.02, 0.04, 0.05]
    assert clock.slept == [0.02, 0.02, 0.01]


def test_a_check_that_raises_is_not_retried():
    calls = []

    def check():
        calls.append(1)
        raise OSError("gone")

    with pytest.raises(OSError, match="gone"):
        polling.poll_until(check, 1.0, every=0.001)
    assert calls == [1]
