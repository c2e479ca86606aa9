"""``flask_ioengine.workers.WorkerPool``: green threads reused from call to call, with a
``GreenPool``'s bound, links and ``waitall``; and ``eventlet.wsgi.server`` served by it."""

from __future__ import annotations

import contextvars
from typing import Any

import eventlet
import eventlet.wsgi
import pytest
from greenlet import getcurrent

from flask_ioengine.workers import WorkerPool

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_calls_run_with_their_links_and_reuse_the_green_thread():
    pool = WorkerPool(10)
    seen: list[Any] = []

    def call(n: int) -> None:
        seen.append(("call", n, getcurrent()))

    for n in range(3):
        pool.spawn(call, n).link(lambda task, tag: seen.append(("link", tag)), n)
        pool.waitall()
    assert [s[:2] for s in seen] == [("call", 0), ("link", 0), ("call", 1), ("link", 1),
                                     ("call", 2), ("link", 2)]
    workers = {s[2] for s in seen if s[0] == "call"}
    assert len(workers) == 1 and pool.running() == 0 and pool.free() == 10


def test_concurrency_is_bounded_by_size():
    pool = WorkerPool(2)
    active: list[int] = []
    peak = [0]

    def call() -> None:
        active.append(1)
        peak[0] = max(peak[0], len(active))
        eventlet.sleep(0.01)
        active.pop()

    for _ in range(6):
        pool.spawn(call)  # the third waits for a free slot
    pool.waitall()
    assert peak[0] == 2 and pool.free() == 2


def test_a_failing_call_is_reported_and_its_worker_serves_the_next(capsys):
    pool = WorkerPool(5)
    workers: list[Any] = []
    links: list[str] = []

    def fail() -> None:
        workers.append(getcurrent())
        raise RuntimeError("boom")

    pool.spawn(fail).link(lambda task: links.append("after failure"))
    pool.waitall()
    pool.spawn(lambda: workers.append(getcurrent()))
    pool.waitall()
    assert links == ["after failure"]
    assert workers[0] is workers[1]
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_each_call_gets_fresh_context_variables():
    pool = WorkerPool(5)
    seen: list[str] = []

    def call() -> None:
        seen.append(VAR.get())
        VAR.set("set by a call")

    for _ in range(2):
        pool.spawn(call)
        pool.waitall()
    assert seen == ["unset", "unset"]


def test_idle_workers_are_bounded():
    pool = WorkerPool(100, max_idle=2)
    workers: set[Any] = set()

    def call() -> None:
        workers.add(getcurrent())
        eventlet.sleep(0.01)

    for _ in range(5):
        pool.spawn(call)
    pool.waitall()
    assert len(workers) == 5
    assert len(pool._idle) == 2
    assert sum(1 for w in workers if not w.dead) == 2


def test_a_stray_wake_up_of_a_parked_worker_is_ignored():
    pool = WorkerPool(5)
    workers: list[Any] = []
    pool.spawn(lambda: workers.append(getcurrent()))
    pool.waitall()
    parked = workers[0]
    hub = eventlet.hubs.get_hub()
    hub.schedule_call_global(0, parked.switch, True)  # e.g. an event's late wake-up
    hub.schedule_call_global(0, parked.throw, eventlet.Timeout(None))  # a stale timeout
    eventlet.sleep(0.01)
    assert not parked.dead
    pool.spawn(lambda: workers.append(getcurrent()))
    pool.waitall()
    assert workers == [parked, parked]


@pytest.mark.timeout(20)
def test_eventlet_wsgi_server_serves_connections_with_it():
    def app(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    listener = eventlet.listen(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    pool = WorkerPool(10)
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, custom_pool=pool,
                            log_output=False)

    def get() -> bytes:
        sock = eventlet.connect(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        sock.close()
        return data

    try:
        for _ in range(3):
            response = get()
            assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"\r\n\r\nok")
        assert len(pool._idle) == 1 and pool.running() == 0
    finally:
        server.kill()
        listener.close()
