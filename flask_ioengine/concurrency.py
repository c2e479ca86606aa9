"""Green threads, events, locks and timers over eventlet, or OS threads for ``flask run``.

The engine picks a backend when it sees its first request (eventlet's WSGI server puts
``eventlet.input`` in the environ) or when ``IOEngine.run`` starts eventlet itself.
Timers are cheap heap entries: eventlet's hub timers, or one scheduler thread.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

#: ``EventletBackend.pace``: messages queued before the first yield of a burst, the most
#: between two yields, and the gap (seconds) between yields that ends a burst
PACE_MIN = 256
PACE_MAX = 8192
PACE_BURST = 0.05


class Timer(Protocol):
    def cancel(self) -> None: ...


class EventLike(Protocol):
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class Backend:
    """The primitives the engine needs, bound to one concurrency model."""

    name = "threading"

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def event(self) -> EventLike:
        return threading.Event()

    def lock(self) -> Any:
        return threading.Lock()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` after ``delay`` seconds; callbacks must not block."""
        return _scheduler().call_later(delay, fn, *args)

    def defer(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` as soon as the current green thread yields (it must not block);
        one hub timer runs every function deferred meanwhile. Threads: at once."""
        fn()

    def cooperate(self) -> None:
        """Let other green threads run, unless that is impossible here (the hub)."""

    def pace(self, work: int) -> None:
        """A producer queued ``work`` more messages: under eventlet, yield now and then
        so they go out (threads: writer threads send them meanwhile)."""

    def start(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a thread of its own (may block). Under eventlet, called
        from the hub, it starts at once in a pooled green thread; else it is spawned."""
        self.spawn(fn, *args)

    def run_now(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` now, in the caller's thread; from eventlet's hub (which must
        never block) in a pooled green thread that goes on by itself if ``fn`` blocks."""
        fn(*args)


class EventletBackend(Backend):
    name = "eventlet"

    def __init__(self) -> None:
        import eventlet
        import eventlet.hubs
        import eventlet.semaphore

        self._eventlet = eventlet
        self._deferred: list[Callable[[], Any]] = []
        #: > 0 while the hub runs a batch of I/O callbacks that flushes what is deferred
        #: at its end (``begin_batch``/``end_batch``), so no timer is needed.
        self._batching = 0
        self._semaphore = eventlet.semaphore.Semaphore
        self._get_hub = eventlet.hubs.get_hub
        from .workers import Runners

        self._runners = Runners()
        self._paced = 0
        self._pace_limit = PACE_MIN
        self._paced_at = 0.0

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        # a pooled runner once the caller yields: no new greenlet (nor, on Python 3.11+,
        # a new 16 KB frame stack) per call
        self._get_hub().schedule_call_global(0, self._runners.run, fn, args)

    def sleep(self, seconds: float) -> None:
        self._eventlet.sleep(seconds)

    def event(self) -> EventLike:
        return GreenEvent()

    def lock(self) -> Any:
        return self._semaphore(1)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        # A hub timer runs in the hub greenlet: it is only a heap entry until it fires.
        return self._get_hub().schedule_call_global(delay, fn, *args)

    def pace(self, work: int) -> None:
        """Yield after ``PACE_MIN`` messages, so the first ones leave at once; within a
        burst (yields less than ``PACE_BURST`` seconds apart) the gap doubles up to
        ``PACE_MAX``, so each connection gets many messages per write, not one."""
        self._paced += work
        if self._paced < self._pace_limit:
            return
        now = time.monotonic()
        if now - self._paced_at > PACE_BURST:
            self._pace_limit = PACE_MIN
        else:
            self._pace_limit = min(self._pace_limit * 2, PACE_MAX)
        self._paced = 0
        self._paced_at = now
        self.cooperate()

    def start(self, fn: Callable[..., Any], *args: Any) -> None:
        from greenlet import getcurrent

        if getcurrent() is self._get_hub().greenlet:
            self._runners.run(fn, args)
        else:
            self.spawn(fn, *args)

    def run_now(self, fn: Callable[..., Any], *args: Any) -> None:
        from greenlet import getcurrent

        if getcurrent() is self._get_hub().greenlet:
            self._runners.run(fn, args)
        else:
            fn(*args)

    def defer(self, fn: Callable[[], Any]) -> None:
        deferred = self._deferred
        deferred.append(fn)
        if len(deferred) == 1 and not self._batching:
            self._get_hub().schedule_call_global(0, self._run_deferred)

    def watch(self, fileno: int, callback: Callable[[], Any]) -> Watch:
        """Call ``callback()`` from the hub whenever ``fileno`` is readable, until the
        returned watch is cancelled; what it defers is flushed when it returns."""
        return Watch(self, fileno, callback)

    def begin_batch(self) -> None:
        """The hub starts a batch of I/O callbacks: what they defer waits for ``end_batch``."""
        self._batching += 1

    def end_batch(self) -> None:
        """End a batch: run what was deferred during it (in the hub)."""
        self._batching -= 1
        if not self._batching and self._deferred:
            self._run_deferred()

    def _run_deferred(self) -> None:
        if not self._deferred:
            return
        deferred, self._deferred = self._deferred, []
        for fn in deferred:
            try:
                fn()
            except Exception:
                import logging

                logging.getLogger("flask_ioengine").exception("deferred call failed")

    def cooperate(self) -> None:
        from greenlet import getcurrent

        hub = self._get_hub()
        if getcurrent() is not hub.greenlet:
            self._eventlet.sleep(0)


class Watch:
    """A persistent read listener on eventlet's hub (registered once, not per read)."""

    __slots__ = ("_aio", "_fileno", "_callback", "_listener")

    def __init__(self, aio: EventletBackend, fileno: int, callback: Callable[[], Any]) -> None:
        self._aio = aio
        self._fileno = fileno
        self._callback = callback
        self._listener: Any = None
        self.resume()

    @property
    def active(self) -> bool:
        return self._listener is not None

    def _readable(self, fileno: int) -> None:
        aio = self._aio
        aio.begin_batch()
        try:
            self._callback()
        except Exception:  # eventlet would drop every listener of the descriptor
            import logging

            logging.getLogger("flask_ioengine").exception("read callback failed")
        finally:
            aio.end_batch()

    def _obsolete(self, *args: Any) -> None:
        """eventlet found the descriptor closed or reused under us: stop listening."""
        self._listener = None

    def pause(self) -> None:
        """Stop listening (the kernel buffers, then TCP pushes back on the peer)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            self._aio._get_hub().remove(listener)

    def resume(self) -> None:
        if self._listener is None:
            hub = self._aio._get_hub()
            listener = hub.add(hub.READ, self._fileno, self._readable, self._obsolete,
                               self._obsolete)
            # eventlet notes the greenlet that listens (to skip it once dead): here the
            # hub itself, not the request's green thread, which it would keep alive
            listener.greenlet = hub.greenlet
            self._listener = listener

    cancel = pause


class _Entry:
    __slots__ = ("when", "seq", "fn", "args", "cancelled")

    def __init__(self, when: float, seq: int, fn: Callable[..., Any], args: tuple[Any, ...]):
        self.when, self.seq, self.fn, self.args, self.cancelled = when, seq, fn, args, False

    def __lt__(self, other: _Entry) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class _Scheduler:
    """One daemon thread running timers from a heap (the threading backend)."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        threading.Thread(target=self._run, name="ioengine-timers", daemon=True).start()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        entry = _Entry(time.monotonic() + delay, next(self._seq), fn, args)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._cond.notify()
        return entry

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0].when > time.monotonic():
                    timeout = self._heap[0].when - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                entry = heapq.heappop(self._heap)
            if not entry.cancelled:
                try:
                    entry.fn(*entry.args)
                except Exception:  # a timer must never kill the scheduler
                    import logging

                    logging.getLogger("flask_ioengine").exception("timer callback failed")


_the_scheduler: _Scheduler | None = None
_scheduler_lock = threading.Lock()


def _scheduler() -> _Scheduler:
    global _the_scheduler
    if _the_scheduler is None:
        with _scheduler_lock:
            if _the_scheduler is None:
                _the_scheduler = _Scheduler()
    return _the_scheduler


_backends: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The backend called ``name`` ("eventlet" or "threading"), created once."""
    backend = _backends.get(name)
    if backend is None:
        backend = EventletBackend() if name == "eventlet" else Backend()
        _backends[name] = backend
    return backend


def eventlet_patched() -> bool:
    """True when eventlet has monkey-patched this process."""
    try:
        from eventlet import patcher
    except ImportError:  # pragma: no cover
        return False
    return bool(patcher.is_monkey_patched("thread"))


def backend_for_environ(environ: dict[str, Any]) -> Backend:
    """Choose the backend that matches the WSGI server that produced ``environ``."""
    if "eventlet.input" in environ or eventlet_patched():
        return get_backend("eventlet")
    return get_backend("threading")


class GreenEvent:
    """A resettable event for eventlet whose ``set`` is safe from hub timer callbacks.

    Each waiter is woken exactly once: by ``set`` or by its own timeout, whichever
    removes it from the waiter set first.
    """

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: set[Any] = set()

    def is_set(self) -> bool:
        return self._flag

    def clear(self) -> None:
        self._flag = False

    def set(self) -> None:
        self._flag = True
        if self._waiters:
            from eventlet.hubs import get_hub

            hub = get_hub()
            for waiter in tuple(self._waiters):
                hub.schedule_call_global(0, self._wake, waiter, True)

    def _wake(self, waiter: Any, value: bool) -> None:
        if waiter in self._waiters:
            self._waiters.discard(waiter)
            waiter.switch(value)

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        from eventlet.hubs import get_hub
        from greenlet import getcurrent

        hub = get_hub()
        current = getcurrent()
        self._waiters.add(current)
        timer = None
        if timeout is not None:
            timer = hub.schedule_call_global(timeout, self._wake, current, False)
        try:
            return bool(hub.switch())
        finally:
            self._waiters.discard(current)
            if timer is not None:
                timer.cancel()
