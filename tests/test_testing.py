"""The in-process test client (``io.test_client``) a user writes tests with."""

from __future__ import annotations

import pytest
from flask import Flask, session
from flask_session import Session

from flask_ioengine import ConnectionRefusedError, IOEngine
from flask_ioengine.testing import TestClientError


@pytest.fixture
def app(tmp_path):
    from cachelib import FileSystemCache

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", SESSION_TYPE="cachelib",
                      SESSION_CACHELIB=FileSystemCache(str(tmp_path), threshold=0))
    Session(app)
    io = IOEngine(app)
    io.engine.use(app.session_interface)

    @io.use
    def auth(socket, next):
        if socket.handshake["auth"].get("token") == "bad":
            next(ConnectionRefusedError("not authorized"))
        else:
            next()

    @io.on("connection")
    def connection(socket):
        socket.join(socket.request.session.sid)
        socket.emit("welcome", socket.handshake["query"].get("who"))

        @socket.on("echo")
        def echo(*args):
            return args

        @socket.on("my event")
        def my_event():
            s = socket.request.session
            s.reload()
            s["count"] = s.get("count", 0) + 1
            s.save()
            return s["count"]

        @socket.on("user")
        def user():
            return session.get("user")

    admin = io.of("/admin")

    @admin.on("connection")
    def admin_connection(socket):
        socket.emit("hello admin", b"\x00\x01")

    @app.post("/login/<name>")
    def login(name):
        session["user"] = name
        session["count"] = session.get("count", 0)
        return "ok"

    @app.post("/incr")
    def incr():
        session["count"] = session.get("count", 0) + 1
        io.to(session.sid).emit("current count", session["count"])
        return str(session["count"])

    app.io = io
    return app


def test_connect_emit_ack_and_received(app):
    client = app.io.test_client(app, query_string="who=ann")
    assert client.is_connected()
    assert client.get_received() == [{"name": "welcome", "args": ["ann"], "namespace": "/"}]
    assert client.emit("echo", 1, "two", {"x": [3]}, callback=True) == (1, "two", {"x": [3]})
    assert client.emit("echo", "one", callback=True) == "one"
    assert client.emit("echo") is None
    client.disconnect()
    assert not client.is_connected()


def test_shares_the_session_with_a_flask_test_client(app):
    http = app.test_client()
    assert http.post("/login/bob").text == "ok"
    client = app.io.test_client(app, flask_test_client=http)
    assert client.emit("user", callback=True) == "bob"
    assert client.emit("my event", callback=True) == 1
    assert http.post("/incr").text == "2"  # the view sees the handler's save
    assert client.get_received()[-1] == {"name": "current count", "args": [2], "namespace": "/"}
    other = app.io.test_client(app)  # another session: not in that room
    http.post("/incr")
    assert [r["name"] for r in other.get_received()] == ["welcome"]


def test_namespaces_binary_and_refusals(app):
    client = app.io.test_client(app)
    client.connect("/admin")
    assert client.get_received("/admin") == [
        {"name": "hello admin", "args": [b"\x00\x01"], "namespace": "/admin"}]
    with pytest.raises(TestClientError, match="Invalid namespace"):
        client.connect("/nope")
    with pytest.raises(TestClientError, match="not authorized"):
        app.io.test_client(app, auth={"token": "bad"})


def test_handler_contexts_are_flasks_whether_observed_or_not():
    """After the first call a handler's contexts are only bound to Flask's context
    variables when nothing observes them; teardown functions and context signals, once
    registered, run after every call again."""
    from flask import appcontext_pushed, current_app, g, request

    app = Flask(__name__)
    io = IOEngine(app)
    seen: list[tuple] = []

    @io.on("connection")
    def connection(socket):
        @socket.on("look")
        def look(tag):
            assert not hasattr(g, "mark")  # a fresh g for every call
            g.mark = tag
            seen.append((tag, request.path, request.args.get("EIO"), current_app.name))
            return tag

    client = io.test_client(app)
    for tag in ("a", "b", "c"):
        assert client.emit("look", tag, callback=True) == tag
    assert seen == [(t, "/socket.io/", "4", app.name) for t in ("a", "b", "c")]

    torn: list[str] = []
    pushed: list[str] = []
    app.teardown_request(lambda exc: torn.append("request"))
    app.teardown_appcontext(lambda exc: torn.append("app"))

    def on_pushed(sender, **extra):
        pushed.append(sender.name)

    with appcontext_pushed.connected_to(on_pushed, app):
        assert client.emit("look", "d", callback=True) == "d"
    assert torn == ["request", "app"] and pushed == [app.name]
    assert client.emit("look", "e", callback=True) == "e"
    assert torn == ["request", "app", "request", "app"]  # still observed: still run
    with pytest.raises(RuntimeError):
        request.path  # noqa: B018  (nothing left bound after the calls)
