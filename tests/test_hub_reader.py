"""WebSockets read from eventlet's hub: connections detached from their request's green
thread, handlers in pooled green threads (``Backend.start``/``run_now``), per-connection
order kept, a blocking handler stalling only its own connection, and the hub primitives
(``EventletBackend.watch``, the runner pool) on their own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import eventlet
import eventlet.hubs
import pytest
import socketio

from flask_ioengine.concurrency import EventletBackend, GreenEvent
from helpers import PYTHON, Proc, free_port

SERVER = r"""
import eventlet
eventlet.monkey_patch()

import gc
import sys

import greenlet
from eventlet.greenthread import GreenThread
from flask import Flask

from flask_ioengine import IOEngine
from flask_ioengine.concurrency import GreenEvent

app = Flask(__name__)
io = IOEngine(app)
released = GreenEvent()


def counts():
    gc.collect()
    objects = gc.get_objects()
    return {
        "greenlets": sum(1 for o in objects
                         if isinstance(o, greenlet.greenlet) and not o.dead),
        # dead ones kept by a reference: each holds its exit event and links
        "greenthreads": sum(1 for o in objects if isinstance(o, GreenThread)),
        # kept exceptions keep the frames of their tracebacks
        "tracebacks": sum(1 for o in objects if type(o).__name__ == "traceback"),
    }


@io.on("connection")
def connection(socket):
    @socket.on("echo")
    def echo(*args):
        return list(args)

    @socket.on("slow")
    def slow():
        released.wait(20.0)  # blocks this connection's handlers only
        return "slow done"

    @socket.on("release")
    def release():
        released.set()
        return "released"

    @socket.on("stats")
    def stats():
        return counts()


io.run(app, host="127.0.0.1", port=int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    script = tmp_path_factory.mktemp("hub") / "app.py"
    script.write_text(SERVER)
    port = free_port()
    proc = Proc([PYTHON, str(script), str(port)], port=port, name="hub")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def connect(url: str) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


def test_open_websockets_hold_no_green_thread(server: str) -> None:
    probe = connect(server)
    clients: list[socketio.Client] = []
    try:
        before = probe.call("stats", timeout=10)
        clients = [connect(server) for _ in range(30)]
        for i, c in enumerate(clients):  # every one is served
            assert c.call("echo", i, timeout=10) == [i]
        after = probe.call("stats", timeout=10)
        # a green thread per connection would add 30; pooled runners add a few at most,
        # and nothing per connection keeps a finished one or a traceback alive
        for what in ("greenlets", "greenthreads", "tracebacks"):
            assert after[what] - before[what] < 10, (what, before, after)
    finally:
        for c in [probe, *clients]:
            c.disconnect()


def test_blocking_handler_stalls_only_its_own_connection_and_keeps_order(server: str) -> None:
    a, b = connect(server), connect(server)
    got: list[Any] = []
    done = threading.Event()
    try:
        a.emit("slow", callback=lambda r: got.append(("a", r)))
        a.emit("echo", 1, callback=lambda *r: (got.append(("a", list(r))), done.set()))
        # b is served while a's handler waits
        assert b.call("echo", "b", timeout=10) == ["b"]
        got.append(("b", "served"))
        assert b.call("release", timeout=10) == "released"
        assert done.wait(10)
        assert got == [("b", "served"), ("a", "slow done"), ("a", [[1]])]
    finally:
        a.disconnect()
        b.disconnect()


# -- the hub primitives, in this process (eventlet without monkey-patching) -------------


def _run_in_hub(fn: Any) -> None:
    """Run ``fn`` from the hub greenlet (a timer callback), as the reader does."""
    eventlet.hubs.get_hub().schedule_call_global(0, fn)


def _wait(event: GreenEvent, what: str) -> None:
    assert event.wait(5.0), what


def test_start_from_the_hub_runs_at_once_and_a_blocking_job_goes_on_later() -> None:
    aio = EventletBackend()
    log: list[str] = []
    finished = GreenEvent()
    gate = GreenEvent()

    def quick(tag: str) -> None:
        log.append(tag)

    def blocking() -> None:
        log.append("blocking starts")
        gate.wait(5.0)
        log.append("blocking ends")
        finished.set()

    def from_hub() -> None:
        aio.start(quick, "first")
        log.append("after first")  # the job ran before start returned
        aio.start(blocking)
        log.append("after blocking")  # back in the hub while the job waits
        aio.run_now(quick, "second")

    _run_in_hub(from_hub)
    eventlet.sleep(0)
    assert log[:5] == ["first", "after first", "blocking starts", "after blocking", "second"]
    gate.set()
    _wait(finished, "the blocked job went on")
    assert log[-1] == "blocking ends"


def test_runners_are_reused_and_survive_a_failing_job(caplog: pytest.LogCaptureFixture) -> None:
    from greenlet import getcurrent

    aio = EventletBackend()
    seen: list[Any] = []
    done = GreenEvent()

    def who() -> None:
        seen.append(getcurrent())

    def boom() -> None:
        raise RuntimeError("handler bug")

    def from_hub() -> None:
        aio.start(who)
        aio.start(boom)
        aio.start(who)
        done.set()

    _run_in_hub(from_hub)
    _wait(done, "jobs ran")
    assert len(seen) == 2 and seen[0] is seen[1]  # one pooled green thread did all
    assert "handler bug" in caplog.text


def test_watch_calls_back_while_readable_and_pauses() -> None:
    aio = EventletBackend()
    left, right = socket.socketpair()
    left.setblocking(False)
    got: list[bytes] = []
    arrived = GreenEvent()

    def readable() -> None:
        got.append(left.recv(100))
        arrived.set()

    watch = aio.watch(left.fileno(), readable)
    try:
        right.send(b"one")
        _wait(arrived, "first read")
        assert got == [b"one"]
        watch.pause()
        arrived.clear()
        right.send(b"two")
        assert not arrived.wait(0.2)  # paused: nothing read (bounded wait)
        watch.resume()
        _wait(arrived, "read after resume")
        assert got == [b"one", b"two"]
    finally:
        watch.cancel()
        left.close()
        right.close()


def test_pace_yields_early_then_less_often_within_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_ioengine import concurrency

    monkeypatch.setattr(concurrency, "PACE_BURST", 1e9)  # a slow core must not end the burst
    aio = EventletBackend()
    yields: list[int] = []
    queued = [0]
    monkeypatch.setattr(aio, "cooperate", lambda: yields.append(queued[0]))
    for _ in range(40000 // 64):  # one burst: 40,000 messages queued 64 at a time
        queued[0] += 64
        aio.pace(64)
    assert yields[0] == concurrency.PACE_MIN  # the first messages leave at once
    gaps = [b - a for a, b in zip(yields, yields[1:], strict=False)]
    assert gaps == sorted(gaps) and max(gaps) == concurrency.PACE_MAX  # then batched
    assert len(yields) < 40000 // concurrency.PACE_MIN / 4


def test_a_parked_runner_survives_a_stray_wake_up() -> None:
    aio = EventletBackend()
    done = GreenEvent()
    seen: list[str] = []

    def from_hub() -> None:
        aio.start(seen.append, "first")
        runner = aio._runners.idle[-1]
        runner.throw(RuntimeError("a timeout an earlier job left armed"))
        runner.switch("not a job")  # ignored too
        assert aio._runners.idle[-1] is runner  # still parked, still pooled
        aio.start(seen.append, "second")
        done.set()

    _run_in_hub(from_hub)
    _wait(done, "jobs ran")
    assert seen == ["first", "second"]


def test_spawn_uses_pooled_runners_with_fresh_context_variables() -> None:
    import contextvars

    from greenlet import getcurrent

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    aio = EventletBackend()
    seen: list[Any] = []
    done = GreenEvent()

    def job(tag: str) -> None:
        seen.append((tag, var.get(), getcurrent()))
        var.set(tag)  # must not leak into the next job
        if tag == "b":
            done.set()

    aio.spawn(job, "a")
    eventlet.sleep(0)
    aio.spawn(job, "b")
    _wait(done, "both ran")
    assert [(t, v) for t, v, _ in seen] == [("a", "unset"), ("b", "unset")]
    assert seen[0][2] is seen[1][2]  # the same pooled green thread
