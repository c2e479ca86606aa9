"""A pool for ``eventlet.wsgi.server`` that reuses its green threads: :class:`WorkerPool`.

eventlet's ``GreenPool`` starts a green thread per connection and lets it die at the end.
With HTTP long-polling, where clients open a connection per request, that is a good part
of each request's cost: the greenlet, its ``GreenThread`` with an exit event and links,
and (Python 3.11+) a 16 KB frame stack mapped at its first call and unmapped at its end.
A :class:`WorkerPool` parks a finished worker and hands it the next connection.

It offers what ``eventlet.wsgi.server`` uses of a pool (``spawn(...).link(...)``,
``waitall()``) and ``running()``/``free()``, bounded like a ``GreenPool``. Workers are
reused as a thread pool's threads are: green-thread locals (``threading.local`` under
monkey-patching) outlive a connection; context variables do not, each call runs in a
fresh ``contextvars.Context`` as a new green thread would.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.hubs
from greenlet import GreenletExit, getcurrent, greenlet

__all__ = ["WorkerPool"]


class _Task:
    """One call given to the pool; like a ``GreenThread``, ``link`` callbacks run after it
    (given the task and their own arguments), whether it returned or raised."""

    __slots__ = ("fn", "args", "links")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.links: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def link(self, fn: Callable[..., Any], *args: Any) -> None:
        self.links.append((fn, args))


class WorkerPool:
    """At most ``size`` calls at once, in green threads kept for the next call (up to
    ``max_idle`` of them wait; more end, so a burst does not pin its memory)."""

    def __init__(self, size: int = 1000, max_idle: int = 128) -> None:
        self.size = size
        self.max_idle = max_idle
        self._slots = eventlet.Semaphore(size)
        self._idle: list[greenlet] = []
        self._running = 0
        self._all_done: Any = None  # an eventlet Event while waitall() waits

    def running(self) -> int:
        """Calls in progress."""
        return self._running

    def free(self) -> int:
        """Calls that may start without waiting."""
        return int(self._slots.counter)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> _Task:
        """Run ``fn(*args)`` in a worker once the caller yields; waits for a free slot."""
        self._slots.acquire()
        task = _Task(fn, args)
        hub = eventlet.hubs.get_hub()
        worker = self._idle.pop() if self._idle else greenlet(self._work, hub.greenlet)
        self._running += 1
        hub.schedule_call_global(0, worker.switch, task)
        return task

    def waitall(self) -> None:
        """Wait until no call is in progress."""
        while self._running:
            if self._all_done is None:
                self._all_done = eventlet.Event()
            self._all_done.wait()

    def _work(self, task: _Task) -> None:
        hub = eventlet.hubs.get_hub()
        me = getcurrent()
        while True:
            try:
                contextvars.Context().run(task.fn, *task.args)
            except GreenletExit:
                self._done(task)
                raise
            except BaseException:
                hub.squelch_generic_exception(sys.exc_info())
            self._done(task)
            task = None  # type: ignore[assignment]
            if len(self._idle) >= self.max_idle:
                return
            self._idle.append(me)
            while task is None:  # parked: anything but the next task waking us is ignored
                try:
                    woken = hub.switch()
                except GreenletExit:
                    self._idle.remove(me)
                    raise
                except BaseException:  # e.g. a timeout an earlier call left armed
                    continue
                if type(woken) is _Task:
                    task = woken

    def _done(self, task: _Task) -> None:
        for fn, args in task.links:
            try:
                fn(task, *args)
            except Exception:
                eventlet.hubs.get_hub().squelch_generic_exception(sys.exc_info())
        self._running -= 1
        self._slots.release()
        if not self._running and self._all_done is not None:
            done, self._all_done = self._all_done, None
            done.send(None)
