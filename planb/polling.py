"""Waiting for something to become true, up to a deadline: the one retry loop planb uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Polled(Generic[T]):
    """How a wait ended: the last value seen, whether it was the awaited one, how many
    times it was looked at and how long the wait took."""

    value: T
    ok: bool
    attempts: int
    seconds: float


def poll_until(probe: Callable[[float], T], done: Callable[[T], bool], *, timeout: float,
               interval: float, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> Polled[T]:
    """Call ``probe(seconds_left)`` until ``done(value)`` or ``timeout`` seconds have passed.

    The probe runs at least once, then every ``interval`` seconds while the next try
    would still start before the deadline (no useless last sleep). An exception from
    the probe ends the wait and propagates.
    """
    started = clock()
    deadline = started + timeout
    attempts = 0
    while True:
        attempts += 1
        value = probe(max(0.0, deadline - clock()))
        if done(value):
            return Polled(value, True, attempts, clock() - started)
        if clock() + interval >= deadline:
            return Polled(value, False, attempts, clock() - started)
        sleep(interval)
