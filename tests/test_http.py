"""``flask_ioengine.http.FastHttpProtocol``: the same WSGI environ and responses as
eventlet's own protocol for valid requests, refusals for malformed ones.

One server process runs a tiny WSGI app that answers with its environ as JSON, twice:
under ``eventlet.wsgi.HttpProtocol`` and under ``FastHttpProtocol``, on two free ports.
The tests talk to both over raw sockets and compare.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from flask_ioengine.http import MAX_HEADERS, Headers
from helpers import PYTHON, Proc, free_port, wait_port

SERVER = r"""
import json
import sys

import eventlet
import eventlet.wsgi

from flask_ioengine.http import FastHttpProtocol


def pieces():
    yield b"a"
    yield b""
    yield "str"
    yield b"c" * 5000
    yield b"end"


def failing():
    yield b"x" * 5000
    raise RuntimeError("late failure")


def responses(kind, environ, start_response):
    if kind == "gen":
        start_response("200 OK", [("content-TYPE", "text/plain"), ("x-custom-header", "v")])
        return pieces()
    if kind == "length":
        start_response("201 Created", [("Content-Length", "5"), ("X-A", "1")])
        return [b"he", b"llo"]
    if kind == "date":
        start_response("200 OK", [("date", "Thu, 01 Jan 1970 00:00:00 GMT")])
        return [b"dated"]
    if kind == "204":
        start_response("204 No Content", [])
        return []
    if kind == "empty":
        start_response("200 OK", [])
        return []
    if kind == "error":
        raise RuntimeError("early failure")
    if kind == "error-late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return failing()
    if kind == "write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"hello")
        return [b" world"]
    if kind == "exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("oops")
        except ValueError:
            start_response("503 Busy", [("Retry-After", "1")], sys.exc_info())
        return [b"busy"]
    if kind == "noread":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"not read"]
    if kind == "latin1":
        start_response("200 OK", [("X-Latin", "caf\xe9")])
        return [b"ok"]
    if kind == "utf8":
        start_response("200 OK", [("X-Bad", "\u20ac")])
        return [b"never"]
    raise AssertionError(kind)


def app(environ, start_response):
    if environ["PATH_INFO"].startswith("/r/"):
        return responses(environ["PATH_INFO"][3:], environ, start_response)
    body = environ["wsgi.input"].read()
    stream = environ["eventlet.input"]
    out = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple))}
    out["_body"] = body.decode("latin-1")
    out["_input"] = [stream.content_length, stream.chunked_input, stream.wfile is not None]
    out["_idle"] = callable(environ["eventlet.set_idle"])
    out["_posthooks"] = environ["eventlet.posthooks"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out, sort_keys=True).encode()]


stock, fast = int(sys.argv[1]), int(sys.argv[2])
extra = {"test.extra": "x", "SCRIPT_NAME": "/overridden", "QUERY_STRING": "default"}
eventlet.spawn(eventlet.wsgi.server, eventlet.listen(("127.0.0.1", stock)), app,
               log_output=False, environ=extra)
eventlet.wsgi.server(eventlet.listen(("127.0.0.1", fast)), app, log_output=False,
                     environ=extra, protocol=FastHttpProtocol)
"""

TIMEOUT = 10.0
APP_DATE = "Thu, 01 Jan 1970 00:00:00 GMT"


class Response:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]],
                 body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def comparable(self) -> tuple[Any, ...]:
        """Everything but the server's date, the length of JSON bodies, the ports (which
        differ per server) and tracebacks (but their last line)."""
        json_body = self.header("content-type") == "application/json"
        headers = [(k, v) for k, v in self.headers
                   if not (k == "Date" and v != APP_DATE)
                   and not (k == "Content-Length" and (json_body or self.status == 500))]
        body: Any = self.body
        if self.status == 500:
            body = self.body.strip().splitlines()[-1:]
        elif json_body:
            body = json.loads(self.body)
            assert body.pop("SERVER_PORT").isdigit()
            assert body.pop("REMOTE_PORT").isdigit()
        return self.status, self.reason, headers, body


def read_response(f: Any) -> Response | None:
    """One response from a socket file, or None at EOF."""
    line = f.readline(65536)
    if not line:
        return None
    version, status, reason = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    assert version in ("HTTP/1.0", "HTTP/1.1"), line
    headers = []
    while True:
        line = f.readline(65536)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name, value.strip()))
    response = Response(int(status), reason, headers, b"")
    if response.status < 200:
        return response
    length = response.header("content-length")
    if length is not None:
        response.body = f.read(int(length))
    elif (response.header("transfer-encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            line = f.readline(1024)
            if not line:  # the server gave up mid-body
                chunks.append(b"<truncated>")
                break
            size = int(line.split(b";")[0], 16)
            chunks.append(f.read(size))
            f.readline(1024)
            if size == 0:
                break
        response.body = b"".join(chunks)
    else:
        response.body = f.read()
    return response


def exchange(port: int, *parts: bytes, wait_continue: bool = False) -> list[Response]:
    """Send ``parts`` (after the first, when ``wait_continue``, once a 100 Continue came);
    return every response until the server closes the connection or goes quiet."""
    responses: list[Response] = []
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        f = sock.makefile("rb")
        for i, part in enumerate(parts):
            if i and wait_continue:
                interim = read_response(f)
                assert interim is not None and interim.status == 100, interim
                responses.append(interim)
            try:
                sock.sendall(part)
            except OSError:  # refused and closed already: the answer is still readable
                break
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # reset by the server already
            pass
        while True:
            try:
                response = read_response(f)
            except ConnectionResetError:
                break
            if response is None:
                break
            responses.append(response)
    return responses


@pytest.fixture(scope="module")
def ports() -> Iterator[tuple[int, int]]:
    stock, fast = free_port(), free_port()
    proc = Proc([PYTHON, "-W", "ignore", "-c", SERVER, str(stock), str(fast)], port=stock,
                name="http-protocol")
    try:
        wait_port(fast, timeout=TIMEOUT, proc=proc.proc)
        yield stock, fast
        assert "Traceback" not in proc.output(), proc.output()
    finally:
        proc.stop()


def _alive(port: int) -> None:
    (response,) = exchange(port, b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.status == 200
    assert json.loads(response.body)["PATH_INFO"] == "/alive"


# -- valid requests: the same as eventlet's own protocol ------------------------------------

VALID: dict[str, tuple[list[bytes], bool]] = {
    "get-query-percent-path": ([
        b"GET /a%20b/%C3%A9%2Fc%zz?x=1&y=%20&z HTTP/1.1\r\nHost: example.com:80\r\n"
        b"User-Agent: test\r\nAccept: */*\r\nConnection: close\r\n\r\n"], False),
    "get-double-slash-empty-query": ([
        b"GET //evil.example//x/? HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"], False),
    "get-absolute-form-latin1": ([
        b"GET http://h/p\xe9%E9 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"], False),
    "post-body": ([
        b"POST /engine.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: h\r\n"
        b"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 11\r\n"
        b"Connection: close\r\n\r\nhello world"], False),
    "post-chunked": ([
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"],
        False),
    "keep-alive-pipelined": ([
        b"GET /one?a=1 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"], False),
    "http10": ([b"GET /old HTTP/1.0\r\nHost: h\r\n\r\n"], False),
    "http10-keep-alive": ([
        b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"GET /again HTTP/1.0\r\n\r\n"], False),
    "duplicates-and-odd-headers": ([
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Dup: a\r\nx-dup: b\r\nX-DUP:   c  \r\n"
        b"Accept: text/html\r\naccept: */*\r\nX_Under: dropped\r\nX-Empty:\r\n"
        b"X-Tab:\tv\t\r\nX-Latin: caf\xe9\r\nCookie: a=1\r\nCookie: b=2\r\n"
        b"content-type: application/x-www-form-urlencoded\r\ncontent-length: 0\r\n"
        b"X-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n"], False),
    "identical-content-lengths": ([
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\nok"], False),
    "bare-lf": ([b"GET /lf HTTP/1.1\nHost: h\nConnection: close\n\n"], False),
    "expect-100-continue": ([
        b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
        b"Connection: close\r\n\r\n", b"data"], True),
    "expect-100-continue-chunked": ([
        b"PUT /e HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n", b"4\r\ndata\r\n0\r\n\r\nGET /after HTTP/1.1\r\nConnection: close\r\n\r\n"],
        True),
    "connection-close-then-more": ([
        b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n"], False),
    # eventlet sends a body after HEAD anyway: read to the close
    "head": ([b"HEAD /h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"], False),
    "options-star": ([b"OPTIONS * HTTP/1.1\r\nConnection: close\r\n\r\n"], False),
}


RESPONSES: dict[str, tuple[list[bytes], bool]] = {
    kind: ([f"GET /r/{kind} HTTP/1.1\r\nHost: h\r\n\r\n"
            f"GET /r/{kind} HTTP/1.0\r\n\r\n".encode()], False)
    for kind in ("gen", "length", "date", "204", "empty", "error", "error-late", "write",
                 "exc-info", "latin1", "utf8")
}
RESPONSES.update({
    "noread-keep-alive": ([
        b"POST /r/noread HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde"
        b"POST /r/noread HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"], False),
    "noread-expect-100": ([
        b"POST /r/noread HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\n"], False),
    "http10-keep-alive-stream": ([
        b"GET /r/gen HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"], False),
    "head-stream": ([b"HEAD /r/gen HTTP/1.1\r\nConnection: close\r\n\r\n"], False),
    "head-list": ([b"HEAD /r/length HTTP/1.1\r\nConnection: close\r\n\r\n"], False),
})


@pytest.mark.parametrize("name", list(RESPONSES))
def test_response_matches_eventlet(ports, name):
    parts, wait_continue = RESPONSES[name]
    stock, fast = ports
    expected = exchange(stock, *parts, wait_continue=wait_continue)
    got = exchange(fast, *parts, wait_continue=wait_continue)
    assert expected or name == "utf8"  # a header eventlet cannot encode: nothing sent
    assert [r.comparable() for r in got] == [r.comparable() for r in expected]
    assert [r.header("Date") is not None for r in got] == [
        r.header("Date") is not None for r in expected]


@pytest.mark.parametrize("name", list(VALID))
def test_valid_request_matches_eventlet(ports, name):
    parts, wait_continue = VALID[name]
    stock, fast = ports
    expected = exchange(stock, *parts, wait_continue=wait_continue)
    got = exchange(fast, *parts, wait_continue=wait_continue)
    assert expected and [r.status for r in expected][-1] == 200
    assert [r.comparable() for r in got] == [r.comparable() for r in expected]
    for response in got:
        if response.status == 200 and response.header("content-length") is not None:
            assert int(response.header("content-length") or 0) == len(response.body)


def test_environ_values(ports):
    """Spot checks of the environ itself (the comparison above proves the rest)."""
    _, fast = ports
    (r,) = exchange(fast, *VALID["duplicates-and-odd-headers"][0])
    env = json.loads(r.body)
    assert env["HTTP_X_DUP"] == "a,b,c"
    assert env["HTTP_ACCEPT"] == "text/html,*/*"
    assert env["HTTP_COOKIE"] == "a=1,b=2"
    assert env["HTTP_X_EMPTY"] == "" and env["HTTP_X_TAB"] == "v"
    assert env["HTTP_X_LATIN"] == "caf\xe9"
    assert "HTTP_X_UNDER" not in env and ["X_Under", "dropped"] in env["headers_raw"]
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "0"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["SERVER_NAME"] == "127.0.0.1"
    (r,) = exchange(fast, *VALID["get-query-percent-path"][0])
    env = json.loads(r.body)
    assert env["RAW_PATH_INFO"] == "/a%20b/%C3%A9%2Fc%zz"
    assert env["PATH_INFO"] == "/a b/\xc3\xa9/c%zz"
    assert env["QUERY_STRING"] == "x=1&y=%20&z"
    assert env["CONTENT_TYPE"] == "text/plain" and "CONTENT_LENGTH" not in env
    assert env["test.extra"] == "x" and env["SCRIPT_NAME"] == ""  # the server's, then ours
    assert env["wsgi.url_scheme"] == "http" and "HTTPS" not in env
    assert env["_input"] == [0, False, False]
    (r,) = exchange(fast, *VALID["post-chunked"][0])
    env = json.loads(r.body)
    assert env["_body"] == "hello world" and env["_input"] == [None, True, False]


def test_blank_lines_before_a_request_are_skipped(ports):
    _, fast = ports
    (r,) = exchange(fast, b"\r\n\r\nGET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and json.loads(r.body)["PATH_INFO"] == "/x"


# -- malformed requests: refused, and the server goes on -------------------------------------

MALFORMED: dict[str, tuple[bytes, int]] = {
    "one-word": (b"GARBAGE\r\n\r\n", 400),
    "http09": (b"GET /\r\n\r\n", 400),
    "double-space": (b"GET  / HTTP/1.1\r\n\r\n", 400),
    "bad-version": (b"GET / HTTP/1.x\r\n\r\n", 400),
    "version-0.9": (b"GET / HTTP/0.9\r\n\r\n", 400),
    "version-2": (b"GET / HTTP/2.0\r\n\r\n", 505),
    "control-in-target": (b"GET /a\x01b HTTP/1.1\r\n\r\n", 400),
    "header-without-colon": (b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    "empty-name": (b"GET / HTTP/1.1\r\n: v\r\n\r\n", 400),
    "bad-name": (b"GET / HTTP/1.1\r\nX(y): v\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n", 400),
    "obs-fold-tab": (b"GET / HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n", 400),
    "nul-in-value": (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
    "cr-in-value": (b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400),
    "too-many-headers": (b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n",
                         431),
    "header-line-too-long": (b"GET / HTTP/1.1\r\nX-A: " + b"a" * 8200 + b"\r\n\r\n", 400),
    "headers-too-large": (b"GET / HTTP/1.1\r\n" + (b"X-A: " + b"a" * 7000 + b"\r\n") * 10
                          + b"\r\n", 400),
    "request-line-too-long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    "content-length-letters": (b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    "content-length-negative": (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    "content-length-plus": (b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", 400),
    "content-length-list": (b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx", 400),
    "content-length-conflict": (
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400),
    "content-length-and-chunked": (
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n", 400),
    "transfer-encoding-gzip": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    "transfer-encoding-twice": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n", 501),
    "incomplete-headers": (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1", 400),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_is_refused(ports, name):
    data, status = MALFORMED[name]
    _, fast = ports
    responses = exchange(fast, data)
    assert [r.status for r in responses] == [status], [r.__dict__ for r in responses]
    assert responses[0].header("connection") == "close"
    _alive(fast)


def test_refusal_after_a_valid_request_on_the_same_connection(ports):
    _, fast = ports
    responses = exchange(fast, b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nBad\r\n\r\n"
                         b"GET /never HTTP/1.1\r\n\r\n")
    assert [r.status for r in responses] == [200, 400]
    _alive(fast)


def test_limits_match_eventlet(ports):
    """The refusals eventlet's protocol also makes come with the same status. (A bad
    request line gets an HTML page without a status line from it, obs-fold and a line
    without a colon get a 200.)"""
    stock, _ = ports
    for name in ("too-many-headers", "header-line-too-long", "headers-too-large",
                 "request-line-too-long", "content-length-letters", "content-length-negative",
                 "content-length-and-chunked"):
        data, status = MALFORMED[name]
        assert [r.status for r in exchange(stock, data)] == [status], name
        _alive(stock)


def test_many_requests_after_refusals(ports):
    _, fast = ports
    for _ in range(3):
        for data, _status in MALFORMED.values():
            exchange(fast, data)
    pipelined = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n" * 50
    responses = exchange(fast, pipelined + b"GET /p HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert [r.status for r in responses] == [200] * 51


# -- the headers object ------------------------------------------------------------------------


def test_headers_object():
    h = Headers([("Host", "h"), ("X-Dup", "a"), ("x-dup", "b"),
                 ("Content-Type", "Text/HTML; charset=utf-8")])
    assert h.get("host") == "h" and h.get("HOST") == "h" and h.get("nope") is None
    assert h.get("nope", "") == ""
    assert h["X-DUP"] == "a" and h["nope"] is None
    assert h.get_all("x-dup") == ["a", "b"] and h.get_all("nope") is None
    assert h.get_all("nope", []) == []
    assert "x-dup" in h and "nope" not in h and 1 not in h
    assert h.keys() == ["Host", "X-Dup", "x-dup", "Content-Type"]
    assert h.values() == ["h", "a", "b", "Text/HTML; charset=utf-8"]
    assert h.items() == list(zip(h.keys(), h.values(), strict=True))
    assert list(h) == h.keys() and len(h) == 4
    assert h.get_content_type() == "text/html"
    assert Headers().get_content_type() == "text/plain"
    assert Headers([("Content-Type", "nonsense")]).get_content_type() == "text/plain"
    assert h._headers == h.items()
    assert "X-Dup" in repr(h)


# -- in process: no reference cycle through the environ ---------------------------------------


def test_finished_connection_needs_no_garbage_collector():
    """The environ does not refer back to the protocol (eventlet's ``set_idle`` closure
    does): a finished connection, its buffers and its socket go at once."""
    import gc
    import weakref

    import eventlet
    import eventlet.wsgi
    from eventlet.green import socket as green_socket

    from flask_ioengine.http import FastHttpProtocol

    alive: list[weakref.ref[Any]] = []

    class Tracked(FastHttpProtocol):
        def setup(self) -> None:
            alive.append(weakref.ref(self))
            super().setup()

    def app(environ, start_response):
        assert environ["wsgi.input"].read() == b"abc"
        environ["eventlet.set_idle"]()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    listener = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.wsgi.Server(listener, listener.getsockname(), app, log_output=False)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(5):
            client = green_socket.socket()
            client.settimeout(TIMEOUT)
            client.connect(listener.getsockname())
            conn, addr = listener.accept()
            client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
            state = [addr, conn, eventlet.wsgi.STATE_IDLE]
            Tracked(state, server)
            assert state[2] == eventlet.wsgi.STATE_IDLE
            assert client.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
            client.close()
        assert len(alive) == 5 and all(ref() is None for ref in alive)
    finally:
        if was_enabled:
            gc.enable()
        listener.close()


def test_freeze_startup_objects_moves_what_exists_to_the_permanent_generation():
    import gc

    from flask_ioengine.http import freeze_startup_objects

    survivor: list[Any] = ["startup"]  # lists stay tracked by the collector
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        assert not any(o is survivor for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is survivor for o in gc.get_objects())
