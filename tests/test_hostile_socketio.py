"""Hostile input at the Socket.IO layer, one named case per kind, against ``sio_app.py``.

Each row is ``(name, transport, the Engine.IO messages sent, the expected answer, whether
the session is closed)``. Clients are raw: an Engine.IO session over a raw WebSocket
(``wsraw``) or long-polling, speaking Socket.IO packets by hand, so malformed ones can be
sent. After the bad packets each case sends a probe (``echo`` with an ack) on the same
connection, so an answer that must not come (a dispatch, a connection kept open) is seen
at once rather than waited for.

The designed answers (see socketio/client.py and socketio/packet.py):

* a packet the decoder rejects closes the connection: an Engine.IO CLOSE packet, then
  (WebSocket) a close frame; the socket's ``disconnect`` reason is ``parse error``. Node's
  socket.io does the same for what its parser (socket.io-parser) rejects.
* a CONNECT to a namespace that does not exist gets CONNECT_ERROR
  ``44<nsp>,{"message":"Invalid namespace"}``; the connection stays.
* a packet for a namespace not joined (or before any CONNECT), or a second CONNECT, is
  not dispatched and is logged; the connection stays. (Node's socket.io closes the
  connection there instead; python-socketio ignores it, as this server does.)

Besides the answer, every case checks the session state afterwards, that no traceback or
exception text reached the client, a log line, a fresh client served within a second,
and the server alive. Wrong server behaviour is xfail (strict, only for the named checks).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import wsraw
from wsraw import Checks, KnownBug, ServerLog, WebSocket

from helpers import PYTHON, TESTS, Proc, free_port

q = wsraw.eio_target
FRESH_WITHIN = 1.0
#: Sent after the bad packets: an echo with an ack (needs "/" joined) ...
PROBE = '2999["echo","probe"]'
PROBE_ACK = '3999["probe"]'
#: ... or, where the connection must close, a CONNECT that any open connection answers.
CLOSE_PROBE = "0/probe,"
CLOSE_PROBE_ACK = '4/probe,{"message":"Invalid namespace"}'
PH = '{{"_placeholder":true,"num":{}}}'
PH0 = PH.format(0)

#: Runs sio_app.py with INFO logging to stdout (as the Engine.IO test server does).
SERVER = """
import eventlet
eventlet.monkey_patch()
import logging, runpy, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(levelname)s %(name)s %(message)s")
app, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(app, run_name="__main__")
"""

BUGS = {
    "reserved-event-names": (
        "socketio/packet.py _check_payload accepts the reserved event names (connect, "
        "connect_error, disconnect, disconnecting, newListener, removeListener) that "
        "socket.io-parser rejects as an invalid payload; socketio/socket.py Socket._on_event "
        "then runs the application's own 'disconnect' handlers with client data while the "
        "socket stays connected"),
    "null-payloads": (
        "socketio/packet.py _check_payload treats a JSON null payload as no payload: "
        "CONNECT 'null' (socket.io-parser: must be an object) and DISCONNECT 'null' (must be "
        "absent) are accepted"),
    "connect-error-not-logged": (
        "socketio/client.py Client._connect_error sends CONNECT_ERROR for an unknown "
        "namespace without a log line (SPEC 7: unknown namespaces get the protocol's error "
        "and a log line)"),
    "client-connect-error-not-logged": (
        "socketio/socket.py Socket.on_packet drops a CONNECT_ERROR packet sent by a client "
        "without a log line (a client never sends one; Node closes the connection)"),
}


def param(case: SioCase) -> object:
    marks = []
    if case.bug is not None:
        checks, bug = case.bug
        marks.append(pytest.mark.xfail(raises=KnownBug, strict=True,
                                       reason=f"{'/'.join(checks)}: {BUGS[bug]}"))
    return pytest.param(case, id=case.name, marks=marks)


# -- the table's vocabulary ----------------------------------------------------------------


@dataclass(frozen=True)
class SioAnswer:
    """``close``: the connection closes (parse error). ``replies``: the connection stays,
    and exactly ``packets`` come before the probe's ack (none: nothing was dispatched)."""

    kind: str
    packets: tuple[str, ...] = ()


CLOSE = SioAnswer("close")
IGNORED = SioAnswer("replies")


def replies(*packets: str) -> SioAnswer:
    return SioAnswer("replies", packets)


def connect_error(nsp: str, message: str = "Invalid namespace") -> SioAnswer:
    return replies(f"4{nsp},{json.dumps({'message': message}, separators=(',', ':'))}")


@dataclass(frozen=True)
class SioCase:
    name: str
    transport: str  # websocket or polling
    sent: tuple[str | bytes, ...]  # Socket.IO packets (text) and attachments (bytes)
    answer: SioAnswer
    closed: bool  # True: the session is gone afterwards; False: it still works
    connect: bool = True  # CONNECT to "/" before sending
    log: bool = True
    bug: tuple[tuple[str, ...], str] | None = None


# -- one Engine.IO session speaking Socket.IO by hand -------------------------------------


class Link:
    def __init__(self, port: int, transport: str) -> None:
        self.port = port
        self.transport = transport
        self.conns: list[wsraw.Conn] = []
        self.ws: WebSocket | None = None
        self.sid = ""
        self.sio_sid = ""
        self.ended = False  # WebSocket: the server closed it (close frame or EOF)
        self.close_code: int | None = None
        self.close_frame = False

    def target(self) -> str:
        return q(EIO="4", transport="polling", sid=self.sid)

    def http(self, method: str, target: str, body: bytes | None = None) -> wsraw.HttpResponse:
        return wsraw.http(self.port, method, target, body=body, conns=self.conns)

    def open(self) -> None:
        if self.transport == "websocket":
            ws = WebSocket.connect(self.port, q(EIO="4", transport="websocket"),
                                   conns=self.conns)
            assert ws.status == 101, ws.conn.received
            opened = ws.recv()
            assert isinstance(opened, str) and opened.startswith("0{"), opened
            self.ws = ws
            self.sid = json.loads(opened[1:])["sid"]
        else:
            r = self.http("GET", q(EIO="4", transport="polling"))
            assert r.status == 200 and r.text.startswith("0{"), r.raw
            self.sid = json.loads(r.text[1:])["sid"]

    def send(self, *packets: str | bytes) -> None:
        """Socket.IO packets (str) and attachments (bytes) as Engine.IO messages."""
        if self.ws is not None:
            for p in packets:
                if isinstance(p, bytes):
                    self.ws.send_binary(p)
                else:
                    self.ws.send_text("4" + p)
            return
        body = "\x1e".join("b" + base64.b64encode(p).decode() if isinstance(p, bytes)
                           else "4" + p for p in packets)
        r = self.http("POST", self.target(), body.encode("utf-8"))
        assert (r.status, r.text) == (200, "ok"), r.raw

    def receive(self) -> list[str | bytes]:
        """The next Engine.IO packets from the server; [] once the WebSocket ended."""
        if self.ws is not None:
            if self.ended:
                return []
            frame = self.ws.recv_frame()
            while frame is not None and frame.opcode not in (wsraw.TEXT, wsraw.BINARY,
                                                             wsraw.CLOSE):
                frame = self.ws.recv_frame()
            if frame is None or frame.opcode == wsraw.CLOSE:
                self.ended = True
                self.close_frame = frame is not None
                self.close_code = None if frame is None else frame.close_code
                return []
            return [frame.message()]
        r = self.http("GET", self.target())
        if r.status != 200:
            raise AssertionError(f"poll refused: {r.raw!r}")
        out: list[str | bytes] = []
        for part in r.text.split("\x1e"):
            out.append(base64.b64decode(part[1:]) if part.startswith("b") else part)
        return out

    def connect(self) -> None:
        self.send("0")
        got = self.receive()
        assert len(got) == 1 and isinstance(got[0], str) and got[0].startswith('40{"sid":'), got
        self.sio_sid = json.loads(got[0][2:])["sid"]

    def until_ack(self, ack: str) -> tuple[list[str | bytes], bool]:
        """Everything the server sends before the probe's ``ack``, and whether that ack
        came (a CLOSE packet or the end of the WebSocket ends the wait too)."""
        seen: list[str | bytes] = []
        for _ in range(50):
            got = self.receive()
            if not got and self.ended:
                return seen, False
            for packet in got:
                if packet == "4" + ack:
                    return seen, True
                seen.append(packet)
                if packet == "1":
                    return seen, False
        raise AssertionError(f"no probe ack: {seen!r}")

    def received(self) -> bytes:
        return b"".join(bytes(c.received) for c in self.conns)

    def cleanup(self) -> None:
        try:
            if self.ws is not None:
                self.ws.send_close(1000)
            elif self.sid:
                wsraw.http(self.port, "POST", self.target(), body=b"1", timeout=2.0)
        except OSError:
            pass
        for conn in self.conns:
            conn.close()


# -- running a case ------------------------------------------------------------------------


def send_case(link: Link, case: SioCase) -> tuple[list[str | bytes], bool]:
    link.open()
    if case.connect:
        link.connect()
    if case.answer.kind == "close":
        link.send(*case.sent, CLOSE_PROBE)
        return link.until_ack(CLOSE_PROBE_ACK)
    link.send(*case.sent)
    if not case.connect:
        link.send("0")
    link.send(PROBE)
    return link.until_ack(PROBE_ACK)


def check_answer(link: Link, case: SioCase, seen: list[str | bytes], acked: bool) -> None:
    if case.answer.kind == "close":
        assert not acked, f"connection not closed: the probe was answered after {seen!r}"
        # Over polling the CLOSE packet is the answer; over WebSocket the close frame is
        # (this server sends a CLOSE packet first, Node's does not).
        closing = seen in ([], ["1"]) if link.ws is not None else seen == ["1"]
        assert closing, f"connection not closed: {seen!r}"
        if link.ws is not None:
            if not link.ended:
                assert link.receive() == [], "data after the CLOSE packet"
            assert link.close_frame, "WebSocket dropped without a close frame"
            assert link.close_code in (None, 1000), f"close code {link.close_code}"
        return
    if not case.connect:  # the CONNECT sent after the bad packets was answered first
        assert seen and isinstance(seen[0], str) and seen[0].startswith('40{"sid":'), seen
        link.sio_sid = json.loads(seen[0][2:])["sid"]
        seen = seen[1:]
    assert acked, f"no answer to the probe after {seen!r}"
    assert seen == ["4" + p for p in case.answer.packets]


def assert_gone(link: Link, log: ServerLog, start: int, case: SioCase) -> None:
    """The session is closed: a request for its sid gets 400 code 1 (a NOOP is posted, so
    an open polling session answers at once instead of holding a poll)."""
    assert link.ws is None or link.ended, f"the WebSocket of {link.sid} is still open"
    deadline = time.monotonic() + 2.0
    while True:
        r = wsraw.http(link.port, "POST", link.target(), body=b"6", conns=link.conns)
        body = json.loads(r.body) if r.status == 400 else {}
        if body == {"code": 1, "message": "Session ID unknown"}:
            break
        # A WebSocket session answers 3 (transport mismatch) until its reader notices the
        # end of the connection an instant later.
        assert body.get("code") == 3, f"session {link.sid} still served: {r.raw!r}"
        assert time.monotonic() < deadline, f"session {link.sid} still open"
    if case.connect:
        log.wait_for(start, f"DISCONNECT / {link.sio_sid} parse error")


def assert_works(link: Link) -> None:
    link.send(PROBE)
    assert link.until_ack(PROBE_ACK) == ([], True)


def fresh_client(port: int) -> tuple[float, str, str]:
    """A well-behaved polling client: CONNECT, an echo with ack, then it leaves."""
    began = time.monotonic()
    link = Link(port, "polling")
    link.open()
    link.connect()
    link.send('21["echo","fresh"]')
    got = link.receive()
    assert got == ['431["fresh"]'], got
    elapsed = time.monotonic() - began
    r = wsraw.http(port, "POST", link.target(), body=b"41\x1e1")
    assert r.text == "ok", r.raw
    return elapsed, link.sid, link.sio_sid


def run_case(server: Proc, case: SioCase) -> None:
    log = ServerLog(server.log_path)
    start = log.offset()
    link = Link(server.port, case.transport)
    checks = Checks(case.bug[0] if case.bug else ())
    try:
        outcome = checks.run("answer", send_case, link, case)
        if outcome is not None:
            checks.run("answer", check_answer, link, case, *outcome)
        if case.closed:
            checks.run("closed", assert_gone, link, log, start, case)
        else:
            checks.run("closed", assert_works, link)
        checks.run("leak", wsraw.assert_no_leak, link.received())
    finally:
        link.cleanup()
    elapsed, fresh_sid, fresh_sio_sid = fresh_client(server.port)
    checks.run("fresh", _fresh_in_time, elapsed)
    end = log.wait_for(start, f"DISCONNECT / {fresh_sio_sid} client namespace disconnect")
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


# -- the table ---------------------------------------------------------------------------------

WS, POLL = "websocket", "polling"
RESERVED = (("answer", "closed", "log"), "reserved-event-names")
NULLS = (("answer", "closed", "log"), "null-payloads")
NSP_NOT_LOGGED = (("log",), "connect-error-not-logged")
DEEP = "[" * 10000 + "]" * 10000
DEEP_OBJECT = '{"a":' * 10000 + "1" + "}" * 10000

CASES = [
    # packets the decoder rejects: the connection closes with "parse error"
    SioCase("empty-packet", WS, ("",), CLOSE, True),
    SioCase("unknown-packet-type", WS, ("7",), CLOSE, True),
    SioCase("non-digit-packet-type", WS, ("x[]",), CLOSE, True),
    SioCase("event-object-payload", WS, ('2{"a":1}',), CLOSE, True),
    SioCase("event-string-payload", WS, ('2"x"',), CLOSE, True),
    SioCase("event-empty-array", WS, ("2[]",), CLOSE, True),
    SioCase("event-name-object", WS, ("2[{}]",), CLOSE, True),
    SioCase("event-name-null", WS, ("2[null]",), CLOSE, True),
    SioCase("event-name-bool", WS, ("2[true]",), CLOSE, True),
    SioCase("event-name-array", WS, ('2[["x"]]',), CLOSE, True),
    SioCase("invalid-json-truncated", WS, ('2["a",',), CLOSE, True),
    SioCase("invalid-json-trailing-garbage", WS, ('2["x"]junk',), CLOSE, True),
    SioCase("invalid-json-nan", WS, ('2["x",NaN]',), CLOSE, True),
    SioCase("invalid-json-infinity", WS, ('2["x",1e999]',), CLOSE, True),
    SioCase("huge-integer-literal", WS, ('2["x",1' + "0" * 5000 + "]",), CLOSE, True),
    SioCase("deeply-nested-arrays", WS, ('2["x",' + DEEP + "]",), CLOSE, True),
    SioCase("deeply-nested-objects", WS, ('2["x",' + DEEP_OBJECT + "]",), CLOSE, True),
    SioCase("packet-id-too-long", WS, ('21234567890123456["x"]',), CLOSE, True),
    SioCase("ack-without-id", WS, ('3["x"]',), CLOSE, True),
    SioCase("ack-object-payload", WS, ('31{"a":1}',), CLOSE, True),
    SioCase("ack-without-payload", WS, ("3999",), CLOSE, True),
    SioCase("connect-array-auth", WS, ("0[1]",), CLOSE, True),
    SioCase("connect-string-auth", WS, ('0"token"',), CLOSE, True),
    SioCase("disconnect-with-payload", WS, ('1["x"]',), CLOSE, True),
    SioCase("namespace-without-slash", WS, ("0admin,",), CLOSE, True),
    SioCase("namespace-too-long", WS, ("0/" + "a" * 300 + ",",), CLOSE, True),
    # binary packets and attachments
    SioCase("binary-missing-attachment-count", WS, ('5-["x",' + PH0 + "]",), CLOSE, True),
    SioCase("binary-missing-dash", WS, ('51["x",' + PH0 + "]",), CLOSE, True),
    SioCase("binary-absurd-attachment-count", WS, ('5999999999-["x",' + PH0 + "]",), CLOSE,
            True),
    SioCase("binary-too-many-attachments", WS,
            ("511-" + json.dumps(["x", *[{"_placeholder": True, "num": i} for i in range(11)]]),),
            CLOSE, True),
    SioCase("placeholder-num-out-of-range", WS, ('51-["x",' + PH.format(5) + "]",), CLOSE, True),
    SioCase("placeholder-num-negative", WS, ('51-["x",' + PH.format(-1) + "]",), CLOSE, True),
    SioCase("placeholder-num-string", WS, ('51-["x",{"_placeholder":true,"num":"0"}]',), CLOSE,
            True),
    SioCase("placeholder-num-float", WS, ('51-["x",{"_placeholder":true,"num":0.0}]',), CLOSE,
            True),
    SioCase("placeholder-extra-key", WS, ('51-["x",{"_placeholder":true,"num":0,"x":1}]',),
            CLOSE, True),
    SioCase("placeholder-duplicate", WS, ('52-["x",' + PH0 + "," + PH0 + "]", b"a", b"b"), CLOSE,
            True),
    SioCase("attachment-count-mismatch", WS, ('52-["x",' + PH0 + "]",), CLOSE, True),
    SioCase("text-instead-of-attachment", WS, ('51-["echo",' + PH0 + "]", '2["x"]'), CLOSE,
            True),
    SioCase("attachment-without-binary-packet", WS, (b"\x00\x01\x02",), CLOSE, True),
    SioCase("binary-ack-without-id", WS, ("61-[" + PH0 + "]", b"x"), CLOSE, True),
    # reserved names and null payloads that socket.io-parser refuses
    SioCase("reserved-event-disconnect", WS, ('21["disconnect","forged"]',), CLOSE, True),
    SioCase("reserved-event-disconnecting", WS, ('21["disconnecting","forged"]',), CLOSE, True),
    SioCase("reserved-event-connect", WS, ('21["connect"]',), CLOSE, True),
    SioCase("connect-null-auth", WS, ("0null",), CLOSE, True, connect=False),
    SioCase("disconnect-null-payload", WS, ("1null",), CLOSE, True),
    # namespaces: CONNECT_ERROR, the connection stays
    SioCase("unknown-namespace", WS, ("0/nope,",), connect_error("/nope"), False),
    SioCase("unknown-namespace-without-comma", WS, ("0/nope",), connect_error("/nope"), False),
    SioCase("odd-namespace-characters", WS, ("0/\u00e4\u20ac\x00\u2028,",),
            connect_error("/\u00e4\u20ac\x00\u2028"), False),
    SioCase("namespace-dot-segments", WS, ("0/admin/..,",), connect_error("/admin/.."), False),
    SioCase("dynamic-namespace-mismatch", WS, ("0/dyn-abc,",), connect_error("/dyn-abc"), False),
    # packets outside a joined namespace: not dispatched, logged, the connection stays
    SioCase("event-for-never-joined-namespace", WS, ('2/never,["echo","x"]',), IGNORED, False),
    SioCase("event-for-namespace-not-joined", WS, ('2/admin,1["whoami"]',), IGNORED, False),
    SioCase("disconnect-for-never-joined-namespace", WS, ("1/never,",), IGNORED, False),
    SioCase("event-before-connect", WS, ('21["echo","early"]',), IGNORED, False, connect=False),
    SioCase("second-connect", WS, ("0",), IGNORED, False),
    SioCase("client-sent-connect-error", WS, ('4{"message":"x"}',), IGNORED, False),
    # accepted by the protocol (boundaries, not errors): answered, nothing logged
    SioCase("numeric-event-name", WS, ("21[1,2]",), replies("31[]"), False, log=False),
    SioCase("ack-for-unknown-id", WS, ('3123["late"]',), IGNORED, False, log=False),
    # the same over long-polling: the CLOSE packet comes with the next poll
    SioCase("polling-invalid-json", POLL, ('2["a",',), CLOSE, True),
    SioCase("polling-event-object-payload", POLL, ('2{"a":1}',), CLOSE, True),
    SioCase("polling-event-name-object", POLL, ("2[{}]",), CLOSE, True),
    SioCase("polling-placeholder-out-of-range", POLL, ('51-["x",' + PH.format(5) + "]",), CLOSE,
            True),
    SioCase("polling-attachment-without-binary-packet", POLL, (b"\x00\x01",), CLOSE, True),
    SioCase("polling-deeply-nested", POLL, ('2["x",' + DEEP + "]",), CLOSE, True),
    SioCase("polling-unknown-namespace", POLL, ("0/nope,",), connect_error("/nope"), False),
    SioCase("polling-event-for-never-joined-namespace", POLL, ('2/never,["x"]',), IGNORED,
            False),
    SioCase("polling-reserved-event-disconnect", POLL, ('21["disconnect","forged"]',), CLOSE,
            True),
]


@pytest.fixture(scope="module")
def sio() -> Iterator[Proc]:
    port = free_port()
    proc = Proc([PYTHON, "-c", SERVER, str(TESTS / "servers" / "sio_app.py"), str(port)],
                port=port, env={"PING_INTERVAL": "20", "PING_TIMEOUT": "15"}, name="hostile-sio")
    yield proc
    proc.stop()


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", [param(c) for c in CASES])
def test_hostile_socketio(sio: Proc, case: SioCase) -> None:
    run_case(sio, case)
