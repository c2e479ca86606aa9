"""One clock for every session's heartbeat: a timer wheel.

Each session has at most one heartbeat deadline at a time: its next PING, or the end of
the wait for its PONG. Deadlines are rounded up to a ``tick`` and kept in one bucket per
tick; a single timer of the concurrency backend runs the buckets that are due. Arming is
a list append and cancelling clears one slot (no timer object per session, no heap entry,
no cancelled timers left in the hub's heap); the pings of a tick leave together, so their
PONGs come back together and the hub wakes up once for many of them.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..concurrency import Backend, Timer

#: the coarsest tick: a heartbeat fires at most this late (seconds)
MAX_TICK = 0.1


class Deadline:
    """An armed deadline: ``cancel()`` forgets it (the bucket keeps an empty slot)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], Any]) -> None:
        self.callback: Callable[[], Any] | None = callback

    def cancel(self) -> None:
        self.callback = None


class Wheel:
    """Deadlines in buckets of ``tick`` seconds, run by one backend timer."""

    def __init__(self, aio: Backend, tick: float = MAX_TICK) -> None:
        self.aio = aio
        self.tick = tick
        self._buckets: dict[int, list[Deadline]] = {}
        self._ticks: list[int] = []  # heap of the buckets' ticks
        self._timer: Timer | None = None
        self._armed_for: int | None = None
        self._lock = threading.Lock()  # OS threads (flask run) arm from several threads

    def __len__(self) -> int:
        return sum(1 for b in self._buckets.values() for d in b if d.callback is not None)

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Deadline:
        """Run ``callback()`` (in the backend's timer context: it must not block) once
        ``delay`` seconds have passed, give or take a tick."""
        deadline = Deadline(callback)
        tick = math.ceil((time.monotonic() + delay) / self.tick)
        with self._lock:
            bucket = self._buckets.get(tick)
            if bucket is None:
                bucket = self._buckets[tick] = []
                heapq.heappush(self._ticks, tick)
            bucket.append(deadline)
            if self._armed_for is None or tick < self._armed_for:
                self._arm(tick)
        return deadline

    def _arm(self, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = tick
        self._timer = self.aio.call_later(max(0.0, tick * self.tick - time.monotonic()),
                                          self._run)

    def _run(self) -> None:
        now = time.monotonic()
        due: list[Deadline] = []
        with self._lock:
            self._timer = self._armed_for = None
            ticks = self._ticks
            while ticks and ticks[0] * self.tick <= now + 1e-9:
                due.extend(self._buckets.pop(heapq.heappop(ticks)))
            if ticks:
                self._arm(ticks[0])
        for deadline in due:
            callback = deadline.callback
            if callback is not None:
                deadline.callback = None
                try:
                    callback()
                except Exception:  # one session's failure must not stop the clock
                    import logging

                    logging.getLogger("flask_ioengine.engineio").exception(
                        "heartbeat callback failed")
