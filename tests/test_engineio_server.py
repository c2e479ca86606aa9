"""In-process tests of the Engine.IO server's request path: the query parser, and the
request object that is only built when something needs it (no garbage per poll)."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from flask_ioengine.engineio.server import REQUEST_KEY, Server, parse_query


@pytest.mark.parametrize("query", [
    "", "EIO=4&transport=polling&t=0mhol3yt&sid=Vcoxy_PGrh6HK1enpZk9", "a", "a=", "=x",
    "&&a=1&&", "a=1&a=2&b", "sid=a%2Fb", "sid=a+b", "a=b=c", "%45IO=4", "a=%zz",
])
def test_parse_query_is_parse_qs(query):
    assert parse_query(query) == parse_qs(query, keep_blank_values=True)


@given(st.text(alphabet="ab=&%+2F_-.~ é\x00", max_size=30))
def test_parse_query_is_parse_qs_for_any_text(query):
    assert parse_query(query) == parse_qs(query, keep_blank_values=True)


def environ(method: str = "GET", sid: str | None = None, body: bytes | None = None) -> dict:
    query = "EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
    return EnvironBuilder(path="/socket.io/", method=method, query_string=query,
                          data=body).get_environ()


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server()
    yield server
    for socket in list(server.sockets.values()):
        socket.closed("server shutdown")


def open_session(server: Server) -> tuple[str, list[Any]]:
    env = environ()
    response = server.handle(env)
    assert response.status == 200 and env[REQUEST_KEY] is not None
    sid = json.loads(response.body.decode()[1:])["sid"]
    received: list[Any] = []
    server.sockets[sid].on_message = received.append
    return sid, received


def test_a_poll_builds_no_request_object_and_leaves_no_garbage(server):
    sid, received = open_session(server)
    server.sockets[sid].send("hi")
    gc.collect()
    gc.disable()
    try:
        post = environ("POST", sid, b"4hello")
        assert server.handle(post).body == b"ok"
        get = environ("GET", sid)
        assert server.handle(get).body == b"4hi"
        assert REQUEST_KEY not in post and REQUEST_KEY not in get
        del post, get
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert received == ["hello"]


def test_hooks_and_middlewares_get_the_request_object(server):
    seen: list[Any] = []
    server.on("headers", lambda headers, request: seen.append(("hook", request)))
    server.use(lambda request, next: (seen.append(("middleware", request)), next()))
    sid, received = open_session(server)
    seen.clear()
    post = environ("POST", sid, b"4hello")
    assert server.handle(post).body == b"ok"
    assert seen == [("middleware", post[REQUEST_KEY]), ("hook", post[REQUEST_KEY])]
    assert received == ["hello"]


def test_a_refused_request_gets_a_request_object(server):
    errors: list[dict] = []
    server.on("connection_error", errors.append)
    env = environ("POST", "nosuchsid", b"4hello")
    assert server.handle(env).status == 400
    assert errors[0]["req"] is env[REQUEST_KEY]
    assert errors[0]["message"] == "Session ID unknown"
