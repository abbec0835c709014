"""planb.polling.poll_until, on a clock the test drives (no real waiting)."""

from __future__ import annotations

import pytest

from planb.polling import poll_until


class FakeTime:
    """A clock that moves only when slept on, and remembers each sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_stops_at_the_first_done_value_and_counts_the_attempts() -> None:
    time = FakeTime()
    states = iter(["unreachable", "starting", "running", "never read"])
    polled = poll_until(lambda _left: next(states), lambda s: s == "running", timeout=10,
                        interval=0.5, clock=time.clock, sleep=time.sleep)
    assert (polled.value, polled.ok, polled.attempts) == ("running", True, 3)
    assert time.sleeps == [0.5, 0.5] and polled.seconds == 1.0


def test_gives_up_at_the_deadline_without_a_useless_last_sleep() -> None:
    time = FakeTime()
    lefts: list[float] = []

    def probe(left: float) -> str:
        lefts.append(left)
        return "unreachable"

    polled = poll_until(probe, lambda s: s == "running", timeout=2, interval=0.5,
                        clock=time.clock, sleep=time.sleep)
    assert not polled.ok and polled.value == "unreachable"
    assert polled.attempts == 4 and sum(time.sleeps) == 1.5  # tries at 0, .5, 1, 1.5 s
    assert lefts == [2.0, 1.5, 1.0, 0.5]  # the probe is told how long it may take


def test_probes_once_even_with_no_time_left() -> None:
    time = FakeTime()
    polled = poll_until(lambda _left: True, bool, timeout=0, interval=1, clock=time.clock,
                        sleep=time.sleep)
    assert polled.ok and polled.attempts == 1 and time.sleeps == []


def test_an_error_in_the_probe_ends_the_wait() -> None:
    def probe(_left: float) -> bool:
        raise RuntimeError("host stopped while booting")

    with pytest.raises(RuntimeError, match="stopped while booting"):
        poll_until(probe, bool, timeout=5, interval=1, sleep=lambda _s: None)
