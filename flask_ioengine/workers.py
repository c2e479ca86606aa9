"""Green threads that are reused: :class:`Runners` (work handed over by the hub, at once)
and :class:`WorkerPool` (a pool for ``eventlet.wsgi.server`` built on it).

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
import logging
import sys
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.hubs
from greenlet import GreenletExit, getcurrent, greenlet

__all__ = ["Runners", "WorkerPool"]

log = logging.getLogger("flask_ioengine")


class Runners:
    """Parked green threads (children of the hub) that run work handed to them.

    ``run`` must be called from the hub greenlet (an I/O callback or a timer): it switches
    straight into an idle runner (no spawn, no timer), the work runs at once, and control
    comes back to the hub when it finishes or blocks. A runner that blocked goes on by
    itself when eventlet resumes it, then parks again (at most ``max_idle`` wait; more
    end). Each job runs in a fresh ``contextvars.Context``, as in a new green thread;
    a parked runner ignores anything but a job (a late wake-up, a stale timeout).
    """

    def __init__(self, max_idle: int = 16) -> None:
        self.max_idle = max_idle
        self.idle: list[greenlet] = []

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if self.idle:
            self.idle.pop().switch(fn, args)
        else:
            greenlet(self._loop, eventlet.hubs.get_hub().greenlet).switch(fn, args)

    def _loop(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        me = getcurrent()
        idle = self.idle
        while True:
            try:
                contextvars.Context().run(fn, *args)
            except Exception:
                log.exception("green thread failed")
            fn = args = None  # type: ignore[assignment]
            if len(idle) >= self.max_idle:
                return  # the hub (the parent) takes over
            idle.append(me)
            job: Any = None
            while not (type(job) is tuple and len(job) == 2):
                try:
                    job = me.parent.switch()
                except GreenletExit:
                    idle.remove(me)
                    raise
                except BaseException:  # e.g. a timeout an earlier job left armed
                    job = None
            fn, args = job


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
    """At most ``size`` calls at once, in :class:`Runners` kept for the next call (up to
    ``max_idle`` of them wait; more end, so a burst does not pin its memory)."""

    def __init__(self, size: int = 1000, max_idle: int = 128) -> None:
        self.size = size
        self._slots = eventlet.Semaphore(size)
        self._runners = Runners(max_idle)
        self._running = 0
        self._all_done: Any = None  # an eventlet Event while waitall() waits

    @property
    def _idle(self) -> list[greenlet]:
        return self._runners.idle

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
        self._running += 1
        eventlet.hubs.get_hub().schedule_call_global(0, self._runners.run, self._call, (task,))
        return task

    def waitall(self) -> None:
        """Wait until no call is in progress."""
        while self._running:
            if self._all_done is None:
                self._all_done = eventlet.Event()
            self._all_done.wait()

    def _call(self, task: _Task) -> None:
        try:
            task.fn(*task.args)
        except GreenletExit:
            raise
        except BaseException:
            eventlet.hubs.get_hub().squelch_generic_exception(sys.exc_info())
        finally:
            self._done(task)

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
