"""Integration tests of the Socket.IO v5 server with the python-socketio client, and of
``serve_client`` (the npm socket.io-client bundle served under ``/socket.io/``).

The server is ``tests/servers/sio_app.py``; it prints ``DISCONNECT <nsp> <sid> <reason>``
for each disconnection. Every wait is an ``Event`` with a bounded timeout.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import socketio
import websocket

from helpers import PYTHON, ROOT, TESTS, Proc, free_port

MODES = ["websocket", "polling"]
WAIT = 10.0
CLIENT_JS = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


@pytest.fixture(scope="module")
def server() -> Iterator[Proc]:
    port = free_port()
    proc = Proc([PYTHON, str(TESTS / "servers" / "sio_app.py"), str(port)], port=port,
                name="sio-python", env={"PING_INTERVAL": "2", "PING_TIMEOUT": "2"})
    yield proc
    proc.stop()


@pytest.fixture
def url(server: Proc) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def make_client() -> Iterator[Callable[[], socketio.Client]]:
    """New ``socketio.Client`` objects, all disconnected after the test."""
    clients: list[socketio.Client] = []

    def make() -> socketio.Client:
        client = socketio.Client(reconnection=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.disconnect()


def connect(client: socketio.Client, url: str, mode: str, **kwargs: Any) -> None:
    kwargs.setdefault("auth", {"token": "ok", "user": "py"})
    client.connect(url, transports=[mode], wait_timeout=WAIT, **kwargs)


def server_logged(server: Proc, nsp: str, sid: str, reason: str) -> None:
    out = server.wait_output(f"DISCONNECT {nsp} {sid} ", timeout=WAIT)
    lines = [line for line in out.splitlines() if line.startswith(f"DISCONNECT {nsp} {sid} ")]
    assert lines == [f"DISCONNECT {nsp} {sid} {reason}"], lines


@pytest.mark.parametrize("mode", MODES)
def test_connect_two_namespaces_and_call(make_client, url, mode):
    sio = make_client()
    connect(sio, f"{url}/?q=py", mode, namespaces=["/", "/admin"],
            auth={"token": "ok", "user": "pÿ"})
    assert sio.transport() == mode
    assert sorted(sio.connection_namespaces) == ["/", "/admin"]
    sid = sio.get_sid("/")
    assert sid and sid != sio.get_sid("/admin")
    ctx = sio.call("context", timeout=WAIT)
    assert ctx == {"path": "/socket.io/", "query": "py", "app": "sio_app", "g": 1, "id": sid}
    assert sio.call("handshake", timeout=WAIT)["auth"] == {"token": "ok", "user": "pÿ"}
    args = ("héllo €😀", {"nested": [1, {"deep": None}]}, [True, 2.5])
    assert sio.call("echo", args, timeout=WAIT) == args  # several ack args: a tuple
    assert sio.call("echo", "one", timeout=WAIT) == "one"
    assert sio.call("no args", "ignored", timeout=WAIT) == "fine"
    assert sio.call("whoami", namespace="/admin", timeout=WAIT) == {
        "nsp": "/admin", "auth": {"token": "ok", "user": "pÿ"}}


@pytest.mark.parametrize("mode", MODES)
def test_dynamic_namespace(make_client, url, mode):
    sio = make_client()
    welcome: list[str] = []
    got = threading.Event()

    @sio.on("welcome", namespace="/dyn-42")
    def on_welcome(name):
        welcome.append(name)
        got.set()

    connect(sio, url, mode, namespaces=["/dyn-42"])
    assert got.wait(WAIT)
    assert welcome == ["/dyn-42"]


@pytest.mark.parametrize("mode", MODES)
def test_binary_round_trip(make_client, url, mode):
    sio = make_client()
    events: list[tuple] = []
    got = threading.Event()

    @sio.on("binary event")
    def on_binary(*args):
        events.append(args)
        got.set()

    connect(sio, url, mode)
    data = {"buf": b"\x00\x01\xfe\xff", "list": [b"xyz", {"deep": b""}], "text": "t"}
    reply = sio.call("binary", data, timeout=WAIT)
    assert reply == {"got": data, "len": 4, "extra": [b"\x00\xff", {"nested": b"ok"}]}
    assert isinstance(reply["extra"][0], bytes)
    assert sio.call("echo", (b"\x80" * 3, [b"a", {"b": b"c"}]), timeout=WAIT) == (
        b"\x80" * 3, [b"a", {"b": b"c"}])
    assert sio.call("send binary", b"\x07", timeout=WAIT) == "sent"
    assert got.wait(WAIT)
    assert events == [({"bytes": b"\x01\x02\xfe", "list": [b"x", {"deep": b""}]}, b"\x07")]


@pytest.mark.parametrize("mode", MODES)
def test_server_asks_python_client(make_client, url, mode):
    sio = make_client()

    @sio.on("question")
    def question(x):
        return x * 2

    connect(sio, url, mode)
    assert sio.call("ask client", 21, timeout=WAIT) == 42
    assert sio.call("ask client", b"ab", timeout=WAIT) == b"abab"
    # python-socketio acks every event, handled or not: "no answer" gets an empty ack
    assert sio.call("ask client timeout", timeout=WAIT) == "answered?"


@pytest.mark.parametrize("mode", MODES)
def test_rooms_and_emit_from_view(make_client, url, mode):
    a, b = make_client(), make_client()
    inbox: dict[str, list[Any]] = {"a": [], "b": []}
    events = {"a": threading.Event(), "b": threading.Event()}
    for name, sio in (("a", a), ("b", b)):
        def on_view(data, name=name):
            inbox[name].append(data)
            events[name].set()

        sio.on("from view", on_view)
        connect(sio, url, mode)
    room = f"py-room-{mode}"
    assert a.call("join", room, timeout=WAIT) == sorted([a.get_sid(), room])
    assert sorted(b.call("fetch", room, timeout=WAIT)) == [a.get_sid()]
    response = requests.post(f"{url}/emit/{room}", json={"from": "view"}, timeout=WAIT)
    assert response.status_code == 204
    assert events["a"].wait(WAIT)
    assert inbox["a"] == [{"from": "view"}]
    # the view's emit was queued before this answer: b, not a member, got nothing
    assert b.call("echo", "barrier", timeout=WAIT) == "barrier"
    assert inbox["b"] == []


@pytest.mark.parametrize("mode", MODES)
def test_refused_connection(make_client, url, mode):
    sio = make_client()
    errors: list[Any] = []

    @sio.event
    def connect_error(data):
        errors.append(data)

    with pytest.raises(socketio.exceptions.ConnectionError) as info:
        connect(sio, url, mode, auth={"token": "bad"})
    assert str(info.value) == "One or more namespaces failed to connect: /"
    assert errors == [{"message": "not authorized", "data": {"reason": "bad token"}}]
    assert not sio.connected


@pytest.mark.parametrize("mode", MODES)
def test_unknown_namespace(make_client, url, mode):
    sio = make_client()
    errors: list[Any] = []

    @sio.on("connect_error", namespace="/nope")
    def connect_error(data):
        errors.append(data)

    with pytest.raises(socketio.exceptions.ConnectionError) as info:
        connect(sio, url, mode, namespaces=["/nope"])
    assert "/nope" in str(info.value)
    assert errors == [{"message": "Invalid namespace"}]


@pytest.mark.parametrize("mode", MODES)
def test_server_initiated_disconnect(make_client, url, server, mode):
    sio = make_client()
    reasons: list[str] = []
    gone = threading.Event()

    @sio.event
    def disconnect(reason):
        reasons.append(reason)
        gone.set()

    connect(sio, url, mode)
    sid = sio.get_sid()
    sio.emit("disconnect me")
    assert gone.wait(WAIT)
    assert reasons == [sio.reason.SERVER_DISCONNECT] == ["server disconnect"]
    assert not sio.connected
    server_logged(server, "/", sid, "server namespace disconnect")


@pytest.mark.parametrize("mode", MODES)
def test_client_disconnect(make_client, url, server, mode):
    sio = make_client()
    connect(sio, url, mode)
    sid = sio.get_sid()
    assert sio.call("echo", "before", timeout=WAIT) == "before"
    sio.disconnect()
    # python-engineio's client may close before its writer sent DISCONNECT and CLOSE (a
    # race in that client, seen in both modes): then the server ends the session on the
    # lost transport or at the next heartbeat (2 s + 2 s here).
    out = server.wait_output(f"DISCONNECT / {sid} ", timeout=WAIT)
    assert any(f"DISCONNECT / {sid} {reason}" in out for reason in (
        "client namespace disconnect", "transport close", "ping timeout")), out


# -- serve_client ---------------------------------------------------------------------


def test_serve_client_bundle(url):
    response = requests.get(f"{url}/socket.io/socket.io.min.js", timeout=WAIT)
    assert response.status_code == 200
    assert "javascript" in response.headers["Content-Type"]
    assert response.content == CLIENT_JS.read_bytes()
    assert int(response.headers["Content-Length"]) == CLIENT_JS.stat().st_size
    etag = response.headers["ETag"]
    assert etag

    again = requests.get(f"{url}/socket.io/socket.io.min.js", timeout=WAIT,
                         headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag

    stale = requests.get(f"{url}/socket.io/socket.io.min.js", timeout=WAIT,
                         headers={"If-None-Match": '"not-the-etag"'})
    assert stale.status_code == 200
    assert stale.content == CLIENT_JS.read_bytes()


def test_serve_client_source_map_and_unknown_file(url):
    dist = CLIENT_JS.parent
    response = requests.get(f"{url}/socket.io/socket.io.min.js.map", timeout=WAIT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content == (dist / "socket.io.min.js.map").read_bytes()
    # a name outside the bundle list is Engine.IO's business: a protocol error
    response = requests.get(f"{url}/socket.io/package.json", timeout=WAIT)
    assert response.status_code == 400
    assert response.json() == {"code": 5, "message": "Unsupported protocol version"}


# -- connect_timeout, with raw Engine.IO clients -----------------------------------------

# A minimal app with a short connect_timeout; it prints each Engine.IO session's end.
CONNECT_TIMEOUT_APP = """
import eventlet
eventlet.monkey_patch()
import sys
from flask import Flask
from flask_ioengine import ConnectionRefusedError, IOEngine
app = Flask("connect_timeout_app")
io = IOEngine(app, connect_timeout=0.5)
@io.use
def refuse(socket, next):
    next(ConnectionRefusedError("no") if socket.handshake["auth"].get("token") == "bad" else None)
io.engine.on("close", lambda conn, reason: print(f"ENGINE CLOSE {conn.sid} {reason}", flush=True))
io.run(app, port=int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def timeout_server() -> Iterator[Proc]:
    port = free_port()
    proc = Proc([PYTHON, "-c", CONNECT_TIMEOUT_APP, str(port)], port=port, name="sio-ct")
    yield proc
    proc.stop()


class RawSession:
    """An Engine.IO session driven by hand: ``send`` Socket.IO packets, ``receive`` them."""

    def __init__(self, port: int, mode: str) -> None:
        self.mode = mode
        self.base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport={mode}"
        if mode == "websocket":
            self.ws = websocket.create_connection(self.base.replace("http", "ws", 1),
                                                  timeout=WAIT)
            opening = self.ws.recv()
        else:
            self.http = requests.Session()
            opening = self.http.get(self.base, timeout=WAIT).text
        assert opening.startswith("0{"), opening
        self.sid = json.loads(opening[1:])["sid"]

    def send(self, packet: str) -> None:
        if self.mode == "websocket":
            self.ws.send("4" + packet)
        else:
            reply = self.http.post(f"{self.base}&sid={self.sid}", data="4" + packet, timeout=WAIT)
            assert reply.text == "ok"

    def receive(self) -> str:
        if self.mode == "websocket":
            return self.ws.recv()
        return self.http.get(f"{self.base}&sid={self.sid}", timeout=WAIT).text

    def close(self) -> None:
        if self.mode == "websocket":
            self.ws.close()
        else:
            self.http.close()


@pytest.mark.parametrize("mode", MODES)
def test_refused_connects_do_not_cancel_connect_timeout(timeout_server, mode):
    refused_ns = RawSession(timeout_server.port, mode)
    refused_ns.send("0/nope,")
    assert refused_ns.receive() == '44/nope,{"message":"Invalid namespace"}'
    refused_mw = RawSession(timeout_server.port, mode)
    refused_mw.send('0{"token":"bad"}')
    assert refused_mw.receive() == '44{"message":"no"}'
    # control: a session that sends no CONNECT at all, opened last, is closed by the timer
    silent = RawSession(timeout_server.port, mode)
    try:
        timeout_server.wait_output(f"ENGINE CLOSE {silent.sid} forced close", timeout=WAIT)
        # the timers of the two earlier sessions were due first, as in Node's socket.io
        # (whose connect timer is only cleared when a namespace is joined)
        out = timeout_server.output()
        assert f"ENGINE CLOSE {refused_ns.sid} forced close" in out
        assert f"ENGINE CLOSE {refused_mw.sid} forced close" in out
    finally:
        for session in (refused_ns, refused_mw, silent):
            session.close()
