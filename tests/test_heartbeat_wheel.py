"""The heartbeat timer wheel (``engineio.heartbeat.Wheel``): deadlines run once, in
order, never early; cancelled ones never; one failing callback does not stop the clock;
one backend timer serves them all."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from flask_ioengine.concurrency import Backend, get_backend
from flask_ioengine.engineio.heartbeat import Wheel

TICK = 0.01


class CountingBackend(Backend):
    """The threading backend, counting the timers asked of it."""

    def __init__(self) -> None:
        self.timers = 0
        self._real = get_backend("threading")

    def call_later(self, delay: float, fn: Any, *args: Any) -> Any:
        self.timers += 1
        return self._real.call_later(delay, fn, *args)


def test_deadlines_run_once_in_order_and_never_early() -> None:
    aio = CountingBackend()
    wheel = Wheel(aio, TICK)
    ran: list[tuple[str, float]] = []
    done = threading.Event()
    start = time.monotonic()
    for name, delay in [("c", 0.15), ("a", 0.05), ("b", 0.10), ("d", 0.20)]:
        wheel.call_later(delay, lambda n=name, d=delay: ran.append((n, d)))
    wheel.call_later(0.25, done.set)
    assert done.wait(5)
    assert [n for n, _ in ran] == ["a", "b", "c", "d"]
    elapsed = time.monotonic() - start
    assert elapsed >= 0.25
    # five deadlines, not five timers: the wheel arms one at a time (re-armed when an
    # earlier deadline arrives, and once per due tick)
    assert aio.timers <= 10, aio.timers
    assert len(wheel) == 0


def test_cancelled_deadlines_never_run() -> None:
    wheel = Wheel(get_backend("threading"), TICK)
    ran: list[str] = []
    done = threading.Event()
    wheel.call_later(0.02, lambda: ran.append("cancelled")).cancel()
    wheel.call_later(0.03, lambda: ran.append("kept"))
    wheel.call_later(0.06, done.set)
    assert done.wait(5)
    assert ran == ["kept"]


def test_a_failing_callback_does_not_stop_the_clock(caplog: pytest.LogCaptureFixture) -> None:
    wheel = Wheel(get_backend("threading"), TICK)
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("heartbeat exploded")

    with caplog.at_level(logging.ERROR, logger="flask_ioengine.engineio"):
        wheel.call_later(0.02, boom)
        wheel.call_later(0.02, done.set)  # same tick, after the failure
        assert done.wait(5)
    assert "heartbeat exploded" in caplog.text


def test_many_sessions_share_buckets() -> None:
    wheel = Wheel(get_backend("threading"), TICK)
    hits: list[int] = []
    done = threading.Event()
    t0 = time.monotonic()
    for i in range(1000):
        wheel.call_later(0.05, lambda i=i: hits.append(i))
    spread = time.monotonic() - t0
    # 1000 deadlines in as many buckets as ticks went by while arming them (a handful)
    assert len(wheel._buckets) <= spread / TICK + 2
    wheel.call_later(0.08, done.set)
    assert done.wait(5)
    assert sorted(hits) == list(range(1000))
