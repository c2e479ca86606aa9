"""Hostile input at the Engine.IO and WebSocket layers, one named case per kind.

Every case is a row ``(name, transport, what is sent, the expected answer, whether the
session is closed)`` run against one ``engine_echo.py`` server for the module. Besides the
protocol's answer, each case checks that the bad session is closed (or still works) as
the protocol says, that no traceback or exception text reached the client, that the
server logged it (and no traceback), that a fresh well-behaved client is served within a
second, and that the server is still alive.

Rows whose server behaviour is wrong are marked xfail (strict, and only for the named
checks: any other failure still fails the case); the reasons name the bug.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import wsraw
from wsraw import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Checks,
    Closed,
    HttpResponse,
    KnownBug,
    ServerLog,
    WebSocket,
    close_payload,
    encode_frame,
)

from helpers import PYTHON, TESTS, Proc, free_port

MAX = 5000  # max_http_buffer_size of the server under test
OPTIONS = {"max_http_buffer_size": MAX, "ping_interval": 20, "ping_timeout": 15,
           "upgrade_timeout": 5}
MESSAGES = wsraw.ENGINE_ERRORS
FRESH_WITHIN = 1.0

BUGS = {
    "refusals-not-logged": (
        "engineio/server.py Server._refuse (and the 413 path of _read_body) log nothing: "
        "an HTTP refusal leaves no line in the server log (SPEC 7: each bad input gets a "
        "log line)"),
    "duplicate-query-params": (
        "engineio/server.py Server._verified takes the last of repeated EIO/transport/sid "
        "values (query.get(...)[-1]) instead of refusing the ambiguous request as Node's "
        "engine.io does (an array value fails its checks)"),
    "eio-ws-parse-error-no-close-frame": (
        "engineio/server.py Server._run_websocket: an Engine.IO parse error over "
        "WebSocket calls socket.closed('parse error'), whose abort is ws.shutdown: the TCP "
        "connection is dropped without a WebSocket close frame (RFC 6455 7.1.1; Node's "
        "engine.io sends one)"),
}


def param(case: Case) -> object:
    marks = []
    if case.bug is not None:
        checks, bug = case.bug
        marks.append(pytest.mark.xfail(raises=KnownBug, strict=True,
                                       reason=f"{'/'.join(checks)}: {BUGS[bug]}"))
    return pytest.param(case, id=case.name, marks=marks)


# -- the table's vocabulary ----------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """An HTTP request; ``{sid}`` in the query is the session ``session`` made first
    (``polling``, ``websocket``, or ``closed``: a polling session already ended)."""

    query: str
    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: bytes | None = None
    session: str | None = None
    upgrade: bool = False  # add well-formed WebSocket upgrade headers


@dataclass(frozen=True)
class Answer:
    status: int | None = None
    code: int | tuple[int, ...] | None = None  # Engine.IO error JSON {"code", "message"}
    message: str | None = None  # default: the protocol's message for ``code``
    body: str | None = None  # exact body of a non-error answer
    ws_close: tuple[int | None, ...] = ()  # acceptable codes of the server's close frame
    ws_messages: tuple[str, ...] = ()  # messages allowed before that close frame


def refused(code: int | tuple[int, ...], status: int = 400, message: str | None = None) -> Answer:
    return Answer(status=status, code=code, message=message)


def ws_close(*codes: int | None) -> Answer:
    return Answer(ws_close=codes)


OK = Answer(status=200, body="ok")
#: Any clean WebSocket close: the Engine.IO layer does not mandate a code.
ANY_CLOSE = ws_close(None, 1000, 1002, 1003, 1008)


@dataclass
class Seen:
    http: HttpResponse | None = None
    ws: Closed | None = None


@dataclass(frozen=True)
class Case:
    name: str
    transport: str  # what carries the bad input: http, polling, websocket, upgrade
    sent: Req | tuple[bytes | str, ...] | Callable[[Ctx], Seen]
    answer: Answer
    closed: bool | None  # True: session gone afterwards; False: still works; None: none
    log: bool = True
    bug: tuple[tuple[str, ...], str] | None = None


# -- one case's client side ----------------------------------------------------------------


q = wsraw.eio_target


class Ctx:
    """The connections and the session of one case."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: list[wsraw.Conn] = []
        self.sid: str | None = None
        self.ws: WebSocket | None = None  # the session's live WebSocket, if it has one

    def http(self, method: str, target: str, headers: tuple[str, ...] | list[str] = (),
             body: bytes | None = None) -> HttpResponse:
        return wsraw.http(self.port, method, target, headers=headers, body=body,
                          conns=self.conns)

    def handshake(self) -> str:
        r = self.http("GET", q(EIO="4", transport="polling"))
        assert r.status == 200 and r.text.startswith("0{"), r.raw
        self.sid = json.loads(r.text[1:])["sid"]
        return self.sid

    def poll_target(self, sid: str | None = None) -> str:
        return q(EIO="4", transport="polling", sid=sid or self.sid or "")

    def post(self, body: bytes, sid: str | None = None) -> HttpResponse:
        return self.http("POST", self.poll_target(sid), body=body)

    def get(self, sid: str | None = None) -> HttpResponse:
        return self.http("GET", self.poll_target(sid))

    def ws_session(self) -> WebSocket:
        """A session opened directly over WebSocket."""
        ws = WebSocket.connect(self.port, q(EIO="4", transport="websocket"), conns=self.conns)
        assert ws.status == 101, ws.conn.received
        opened = ws.recv()
        assert isinstance(opened, str) and opened.startswith("0{"), opened
        self.sid = json.loads(opened[1:])["sid"]
        self.ws = ws
        return ws

    def upgrade_ws(self) -> WebSocket:
        """A WebSocket for the polling session (the 101 only, no probe yet)."""
        ws = WebSocket.connect(self.port, q(EIO="4", transport="websocket", sid=self.sid or ""),
                               conns=self.conns)
        assert ws.status == 101, ws.conn.received
        return ws

    def upgraded(self) -> WebSocket:
        """Upgrade the polling session completely (probe, 3probe, upgrade)."""
        ws = self.upgrade_ws()
        ws.send_text("2probe")
        assert ws.recv() == "3probe"
        ws.send_text("5")
        ws.send_text("4upgraded")  # frames are handled in order: the echo proves "5" was
        assert ws.recv() == "4upgraded"
        self.ws = ws
        return ws

    def received(self) -> bytes:
        return b"".join(bytes(c.received) for c in self.conns)

    # -- after the bad input ---------------------------------------------------------------

    def assert_gone(self) -> None:
        """The session is closed: a request for its sid gets 400 code 1 (a NOOP is posted,
        so an open polling session answers at once instead of holding a poll)."""
        deadline = time.monotonic() + 2.0
        while True:
            r = self.post(b"6")
            if r.status == 400 and json.loads(r.body) == {"code": 1, "message": MESSAGES[1]}:
                return
            # A WebSocket session that is still there answers 3 (transport mismatch); it
            # may be an instant away from being released.
            assert r.status == 400 and json.loads(r.body).get("code") == 3, (
                f"session {self.sid} still served: {r.status} {r.body!r}")
            assert time.monotonic() < deadline, f"session {self.sid} still open"

    def assert_works(self) -> None:
        if self.ws is not None:
            assert self.ws.send_text("4alive")
            assert self.ws.recv() == "4alive"
            return
        r = self.post(b"4alive")
        assert (r.status, r.text) == (200, "ok"), r.raw
        r = self.get()
        assert (r.status, r.text) == (200, "4alive"), r.raw

    def cleanup(self) -> None:
        try:
            if self.ws is not None:
                self.ws.send_close(1000)
                self.ws.close()
            elif self.sid is not None:
                wsraw.http(self.port, "POST", self.poll_target(), body=b"1", timeout=2.0)
        except OSError:
            pass
        for conn in self.conns:
            conn.close()


# -- running a case ------------------------------------------------------------------------


def send_request(ctx: Ctx, req: Req) -> Seen:
    if req.session == "polling":
        ctx.handshake()
    elif req.session == "websocket":
        ctx.ws_session()
    elif req.session == "closed":
        ctx.handshake()
        assert ctx.post(b"1").text == "ok"
    headers = req.headers + (tuple(wsraw.upgrade_headers()) if req.upgrade else ())
    target = "/socket.io/?" + req.query.replace("{sid}", ctx.sid or "")
    return Seen(http=ctx.http(req.method, target, headers, req.body))


def send_frames(ctx: Ctx, frames: tuple[bytes | str, ...]) -> Seen:
    ws = ctx.ws_session()
    for frame in frames:
        if isinstance(frame, str):
            ws.send_text(frame)
        else:
            ws.send_raw(frame)
    return Seen(ws=ws.read_until_close())


def check_answer(seen: Seen, answer: Answer) -> None:
    r = seen.http
    if answer.status is not None:
        assert r is not None
        assert r.status == answer.status, r.raw
    if answer.code is not None:
        assert r is not None
        assert r.header("Content-Type") == "application/json", r.raw
        got = json.loads(r.body)
        codes = answer.code if isinstance(answer.code, tuple) else (answer.code,)
        assert got.get("code") in codes, r.raw
        assert got == {"code": got["code"], "message": answer.message or MESSAGES[got["code"]]}
    if answer.body is not None:
        assert r is not None
        assert r.text == answer.body, r.raw
    if answer.ws_close:
        assert seen.ws is not None
        assert seen.ws.close is not None, (
            f"connection dropped without a close frame (after {seen.ws.messages!r})")
        assert seen.ws.code in answer.ws_close, f"close code {seen.ws.code}"
        assert all(m in answer.ws_messages for m in seen.ws.messages), seen.ws.messages


def fresh_client(port: int) -> tuple[float, str]:
    """A well-behaved polling client: handshake, message echo; then it closes."""
    began = time.monotonic()
    r = wsraw.http(port, "GET", q(EIO="4", transport="polling"))
    assert r.status == 200 and r.text.startswith("0{"), r.raw
    sid = json.loads(r.text[1:])["sid"]
    target = q(EIO="4", transport="polling", sid=sid)
    assert wsraw.http(port, "POST", target, body=b"4fresh").text == "ok"
    r = wsraw.http(port, "GET", target)
    assert (r.status, r.text) == (200, "4fresh"), r.raw
    elapsed = time.monotonic() - began
    assert wsraw.http(port, "POST", target, body=b"1").text == "ok"
    return elapsed, sid


def run_case(server: Proc, case: Case) -> None:
    log = ServerLog(server.log_path)
    start = log.offset()
    ctx = Ctx(server.port)
    checks = Checks(case.bug[0] if case.bug else ())
    try:
        if isinstance(case.sent, Req):
            seen = checks.run("answer", send_request, ctx, case.sent)
        elif isinstance(case.sent, tuple):
            seen = checks.run("answer", send_frames, ctx, case.sent)
        else:
            seen = checks.run("answer", case.sent, ctx)
        if seen is not None:
            checks.run("answer", check_answer, seen, case.answer)
        if case.closed is True:
            checks.run("closed", ctx.assert_gone)
        elif case.closed is False:
            checks.run("closed", ctx.assert_works)
        checks.run("leak", wsraw.assert_no_leak, ctx.received())
    finally:
        ctx.cleanup()
    elapsed, fresh_sid = fresh_client(server.port)
    checks.run("fresh", _fresh_in_time, elapsed)
    end = log.wait_for(start, f"CLOSE {fresh_sid} ")  # the fresh client's goodbye
    window = log.since(start)[:end]
    if case.log:
        checks.run("log", _logged, window, fresh_sid)
    assert "Traceback" not in log.since(start), log.since(start)
    assert server.proc.poll() is None, "the server died"
    checks.finish()


def _fresh_in_time(elapsed: float) -> None:
    assert elapsed < FRESH_WITHIN, f"fresh client served in {elapsed:.2f}s"


def _logged(window: str, fresh_sid: str) -> None:
    lines = [line for line in window.splitlines()
             if wsraw.LIBRARY_LINE.match(line) and fresh_sid not in line]
    assert lines, f"no library log line for the case; output was:\n{window}"


# -- scenarios that need more than one request ----------------------------------------------


def concurrent_polls(ctx: Ctx) -> Seen:
    """Two GETs at once: one is refused (400 code 3), the held one gets the CLOSE."""
    sid = ctx.handshake()
    first = wsraw.http_send(ctx.port, "GET", ctx.poll_target(sid), conns=ctx.conns)
    second = ctx.get(sid)
    other = wsraw.http_read(first)
    refused_one, held = sorted([second, other], key=lambda r: r.status, reverse=True)
    assert (held.status, held.text) == (200, "1"), held.raw
    return Seen(http=refused_one)


def upgrade_without_probe(ctx: Ctx) -> Seen:
    ctx.handshake()
    ws = ctx.upgrade_ws()
    ws.send_text("5")
    return Seen(ws=ws.read_until_close())


def probe_twice(ctx: Ctx) -> Seen:
    ctx.handshake()
    ws = ctx.upgrade_ws()
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    ws.send_text("2probe")
    return Seen(ws=ws.read_until_close())


def message_during_probe(ctx: Ctx) -> Seen:
    ctx.handshake()
    ws = ctx.upgrade_ws()
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    ws.send_text("4not upgraded yet")
    return Seen(ws=ws.read_until_close())


def bad_frame_during_probe(ctx: Ctx) -> Seen:
    ctx.handshake()
    ws = ctx.upgrade_ws()
    ws.send_raw(encode_frame(TEXT, b"2probe", mask=False))
    return Seen(ws=ws.read_until_close())


def poll_after_upgrade(ctx: Ctx) -> Seen:
    ctx.handshake()
    ctx.upgraded()
    return Seen(http=ctx.get())


def post_after_upgrade(ctx: Ctx) -> Seen:
    ctx.handshake()
    ctx.upgraded()
    return Seen(http=ctx.post(b"4through polling"))


def second_ws_after_upgrade(ctx: Ctx) -> Seen:
    ctx.handshake()
    ctx.upgraded()
    target = q(EIO="4", transport="websocket", sid=ctx.sid or "")
    return Seen(http=ctx.http("GET", target, wsraw.upgrade_headers()))


def second_ws_during_probe(ctx: Ctx) -> Seen:
    ctx.handshake()
    ws = ctx.upgrade_ws()
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    target = q(EIO="4", transport="websocket", sid=ctx.sid or "")
    second = ctx.http("GET", target, wsraw.upgrade_headers())
    ws.send_text("5")
    ws.send_text("4upgraded")
    assert ws.recv() == "4upgraded"
    ctx.ws = ws
    return Seen(http=second)


# -- the table ---------------------------------------------------------------------------------

POLL = "EIO=4&transport=polling"
SESSION = POLL + "&sid={sid}"
NOT_LOGGED = (("log",), "refusals-not-logged")
EIO_WS_BUG = (("answer",), "eio-ws-parse-error-no-close-frame")
DUPLICATE = (("answer", "log"), "duplicate-query-params")


def post(body: bytes, headers: tuple[str, ...] = ()) -> Req:
    return Req(SESSION, "POST", headers, body, session="polling")


HTTP_CASES = [
    # query parameters
    Case("eio-missing", "http", Req("transport=polling"), refused(5), None),
    Case("eio-3", "http", Req("EIO=3&transport=polling"), refused(5), None),
    Case("eio-garbage", "http", Req("EIO=4abc&transport=polling"), refused(5), None),
    Case("eio-empty", "http", Req("EIO=&transport=polling"), refused(5), None),
    Case("eio-duplicate", "http", Req("EIO=3&EIO=4&transport=polling"), refused(5), None),
    Case("transport-missing", "http", Req("EIO=4"), refused(0), None),
    Case("transport-unknown", "http", Req("EIO=4&transport=flashsocket"), refused(0), None),
    Case("transport-empty", "http", Req("EIO=4&transport="), refused(0), None),
    Case("transport-duplicate", "http", Req("EIO=4&transport=websocket&transport=polling"),
         refused(0), None),
    Case("handshake-post", "http", Req(POLL, "POST", body=b"4x"), refused(2), None),
    Case("handshake-put", "http", Req(POLL, "PUT", body=b"4x"), refused(2), None),
    Case("websocket-handshake-without-upgrade-headers", "http",
         Req("EIO=4&transport=websocket"), refused(3), None),
    Case("websocket-handshake-bad-version", "http",
         Req("EIO=4&transport=websocket", headers=tuple(wsraw.upgrade_headers(version="8"))),
         refused(3), None),
    Case("websocket-handshake-bad-key", "http",
         Req("EIO=4&transport=websocket", headers=tuple(wsraw.upgrade_headers(key="c2hvcnQ="))),
         refused(3), None),
    # session ids
    Case("sid-forged-get", "http", Req(POLL + "&sid=AAAAAAAAAAAAAAAAAAAA"), refused(1), None),
    Case("sid-forged-post", "http", Req(POLL + "&sid=AAAAAAAAAAAAAAAAAAAA", "POST",
                                        body=b"4x"), refused(1), None),
    Case("sid-empty", "http", Req(POLL + "&sid="), refused(1), None),
    Case("sid-huge", "http", Req(POLL + "&sid=" + "A" * 4000), refused(1), None),
    Case("sid-control-chars", "http", Req(POLL + "&sid=%00%0d%0a%ff"), refused(1), None),
    Case("sid-of-closed-session", "http", Req(SESSION, session="closed"), refused(1), True),
    Case("sid-duplicate", "http", Req(POLL + "&sid=AAAAAAAAAAAAAAAAAAAA&sid={sid}", "POST",
                                      body=b"6", session="polling"),
         refused(1), False),
    Case("sid-of-websocket-session-polled", "http", Req(SESSION, session="websocket"),
         refused(3), False),
    Case("unsupported-method-on-session", "http", Req(SESSION, "PUT", body=b"4x",
                                                      session="polling"),
         refused((2, 3)), False),
]

PAYLOAD_CASES = [
    # a POST body the session cannot decode: 400 code 3 and the session closes
    Case("payload-empty", "polling", post(b""), refused(3), True),
    Case("payload-unknown-type", "polling", post(b"9hello"), refused(3), True),
    Case("payload-non-digit-type", "polling", post(b"xhello"), refused(3), True),
    Case("payload-only-separator", "polling", post(b"\x1e"), refused(3), True),
    Case("payload-separator-storm", "polling", post(b"\x1e" * 2000), refused(3), True),
    Case("payload-trailing-separator", "polling", post(b"4ok\x1e"), refused(3), True),
    Case("payload-good-then-bad", "polling", post(b"4ok\x1e4fine\x1e9"), refused(3), True),
    Case("payload-bad-base64", "polling", post(b"b!!!!"), refused(3), True),
    Case("payload-bad-base64-padding", "polling", post(b"bQQ"), refused(3), True),
    Case("payload-invalid-utf8", "polling", post(b"4\xff\xfe"), refused(3), True),
    Case("payload-utf8-surrogate", "polling", post(b"4\xed\xa0\x80"), refused(3), True),
    Case("payload-overlong-utf8", "polling", post(b"4\xc0\xaf"), refused(3), True),
    # packets a client must not send: accepted as a payload, then the session closes
    Case("payload-open-packet", "polling", post(b"0"), OK, True),
    Case("payload-client-ping", "polling", post(b"2"), OK, True),
    Case("payload-probe-over-polling", "polling", post(b"2probe"), OK, True),
    Case("payload-upgrade-over-polling", "polling", post(b"5"), OK, True),
    # bodies over max_http_buffer_size: 413 and the session closes
    Case("body-over-max-http-buffer-size", "polling", post(b"4" + b"x" * MAX),
         refused(3, 413, "Payload too large"), True),
    Case("body-over-max-chunked", "polling",
         post(wsraw.chunked(b"4" + b"x" * 3000, b"x" * 3000), ("Transfer-Encoding: chunked",)),
         refused(3, 413, "Payload too large"), True),
    Case("body-announced-over-max", "polling", post(b"4x", (f"Content-Length: {MAX * 20}",)),
         refused(3, 413, "Payload too large"), True),
    # two long-polls at once
    Case("concurrent-polls", "polling", concurrent_polls, refused(3), True),
]

UPGRADE_CASES = [
    Case("upgrade-without-probe", "upgrade", upgrade_without_probe, ws_close(None, 1000), False),
    Case("upgrade-probe-twice", "upgrade", probe_twice, ws_close(None, 1000), False),
    Case("upgrade-message-during-probe", "upgrade", message_during_probe,
         ws_close(None, 1000), False),
    Case("upgrade-unmasked-probe", "upgrade", bad_frame_during_probe, ws_close(1002), False),
    Case("polling-get-after-upgrade", "upgrade", poll_after_upgrade, refused(3), False),
    Case("polling-post-after-upgrade", "upgrade", post_after_upgrade, refused(3), False),
    Case("second-websocket-on-upgraded-sid", "upgrade", second_ws_after_upgrade, refused(3),
         False),
    Case("second-websocket-during-probe", "upgrade", second_ws_during_probe, refused(3), False),
    Case("upgrade-unknown-sid", "upgrade",
         Req("EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", upgrade=True), refused(1),
         None),
    Case("upgrade-websocket-session", "upgrade",
         Req("EIO=4&transport=websocket&sid={sid}", session="websocket", upgrade=True),
         refused(3), False),
]

EIO_WS_CASES = [
    # Engine.IO packets over a WebSocket session that the protocol cannot accept
    Case("ws-empty-text-frame", "websocket", ("",), ANY_CLOSE, True),
    Case("ws-unknown-packet-type", "websocket", ("9hello",), ANY_CLOSE, True),
    Case("ws-non-digit-packet-type", "websocket", ("xhello",), ANY_CLOSE, True),
    Case("ws-client-ping", "websocket", ("2",), ANY_CLOSE, True),
    Case("ws-probe-on-direct-session", "websocket", ("2probe",), ANY_CLOSE, True),
    Case("ws-upgrade-packet-on-direct-session", "websocket", ("5",), ANY_CLOSE, True),
    Case("ws-open-packet", "websocket", ("0",), ANY_CLOSE, True),
]


def frame(opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    return encode_frame(opcode, payload, **kwargs)  # type: ignore[arg-type]


def close_frame(code: int | None, reason: bytes = b"") -> bytes:
    return frame(CLOSE, close_payload(code, reason))


FRAME_CASES = [
    # RFC 6455 violations: 1002 protocol error
    Case("frame-unmasked", "websocket", (frame(TEXT, b"4hi", mask=False),), ws_close(1002),
         True),
    Case("frame-reserved-opcode-3", "websocket", (frame(0x3, b"4hi"),), ws_close(1002), True),
    Case("frame-reserved-control-opcode-b", "websocket", (frame(0xB, b"x"),), ws_close(1002),
         True),
    Case("frame-rsv1-without-extension", "websocket", (frame(TEXT, b"4hi", rsv=4),),
         ws_close(1002), True),
    Case("frame-rsv3", "websocket", (frame(BINARY, b"\x01", rsv=1),), ws_close(1002), True),
    Case("frame-fragmented-ping", "websocket", (frame(PING, b"x", fin=False),),
         ws_close(1002), True),
    Case("frame-fragmented-close", "websocket", (frame(CLOSE, close_payload(1000), fin=False),),
         ws_close(1002), True),
    Case("frame-oversized-ping", "websocket", (frame(PING, b"p" * 126),), ws_close(1002), True),
    Case("frame-oversized-pong", "websocket", (frame(PONG, b"p" * 200),), ws_close(1002), True),
    Case("frame-continuation-without-start", "websocket", (frame(CONT, b"4hi"),),
         ws_close(1002), True),
    Case("frame-new-message-inside-fragmented", "websocket",
         (frame(TEXT, b"4a", fin=False), frame(TEXT, b"4b")), ws_close(1002), True),
    Case("frame-length-msb-set", "websocket",
         (frame(TEXT, b"4hi", length=2**63 + 3, length_bytes=8),), ws_close(1002), True),
    # invalid UTF-8 text: 1007
    Case("frame-invalid-utf8-text", "websocket", (frame(TEXT, b"4\xff\xfe"),), ws_close(1007),
         True),
    Case("frame-invalid-utf8-across-fragments", "websocket",
         (frame(TEXT, b"4\xe2\x82", fin=False), frame(CONT, b"\x28")), ws_close(1007), True),
    Case("frame-truncated-utf8", "websocket", (frame(TEXT, b"4\xe2\x82"),), ws_close(1007),
         True),
    Case("frame-utf8-surrogate", "websocket", (frame(TEXT, b"4\xed\xa0\x80"),), ws_close(1007),
         True),
    # too big: 1009
    Case("frame-absurd-length", "websocket",
         (frame(TEXT, b"4hi", length=2**40, length_bytes=8),), ws_close(1009), True),
    Case("frame-message-over-max", "websocket", (frame(TEXT, b"4" + b"x" * MAX),),
         ws_close(1009), True),
    Case("frame-fragments-over-max", "websocket",
         (frame(TEXT, b"4" + b"x" * 3000, fin=False), frame(CONT, b"x" * 3000)),
         ws_close(1009), True),
    # bad close frames: 1002 (1007 for a reason that is not UTF-8)
    Case("close-code-999", "websocket", (close_frame(999),), ws_close(1002), True),
    Case("close-code-1004-reserved", "websocket", (close_frame(1004),), ws_close(1002), True),
    Case("close-code-1005-not-sendable", "websocket", (close_frame(1005),), ws_close(1002),
         True),
    Case("close-code-1006-not-sendable", "websocket", (close_frame(1006),), ws_close(1002),
         True),
    Case("close-code-1015-not-sendable", "websocket", (close_frame(1015),), ws_close(1002),
         True),
    Case("close-code-2999-unassigned", "websocket", (close_frame(2999),), ws_close(1002), True),
    Case("close-code-5000", "websocket", (close_frame(5000),), ws_close(1002), True),
    Case("close-one-byte-body", "websocket", (frame(CLOSE, b"\x03"),), ws_close(1002), True),
    Case("close-oversized", "websocket", (frame(CLOSE, close_payload(1000, b"r" * 124)),),
         ws_close(1002), True),
    Case("close-reason-invalid-utf8", "websocket", (close_frame(1000, b"\xff\xfe"),),
         ws_close(1007), True),
]

CASES = HTTP_CASES + PAYLOAD_CASES + UPGRADE_CASES + EIO_WS_CASES + FRAME_CASES


@pytest.fixture(scope="module")
def engine() -> Iterator[Proc]:
    port = free_port()
    proc = Proc([PYTHON, str(TESTS / "servers" / "engine_echo.py"), str(port),
                 json.dumps(OPTIONS)], port=port, name="hostile-engine")
    yield proc
    proc.stop()


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", [param(c) for c in CASES])
def test_hostile_engineio(engine: Proc, case: Case) -> None:
    run_case(engine, case)
