"""Raw HTTP / WebSocket tests of the Engine.IO server: errors, handshake, long-polling,
options (cookie, CORS, limits), hooks and middlewares, and upgrade misuse.

Clients here are ``requests``, ``websocket-client`` and raw sockets (to see the exact
response head, e.g. separate ``Set-Cookie`` lines or the ``101`` of a WebSocket).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import websocket

from helpers import PYTHON, TESTS, Proc, free_port

TIMEOUT = 10.0
MAIN_OPTIONS = {"ping_interval": 20, "ping_timeout": 15, "upgrade_timeout": 1.0}
HOOK_OPTIONS = {"cookie": True, "ping_interval": 20, "ping_timeout": 15}
ORIGIN = "http://localhost:4200"
CORS_OPTIONS = {"cors": {"origin": [ORIGIN], "credentials": True}}
EVIL = "http://evil.example"


def start(options: dict, hooks: bool = False) -> Proc:
    port = free_port()
    args = [PYTHON, str(TESTS / "servers" / "engine_echo.py"), str(port), json.dumps(options)]
    return Proc(args + (["hooks"] if hooks else []), port=port, name="engine-http")


@pytest.fixture(scope="module")
def main() -> Iterator[Proc]:
    proc = start(MAIN_OPTIONS)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def hooked() -> Iterator[Proc]:
    proc = start(HOOK_OPTIONS, hooks=True)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def cors() -> Iterator[Proc]:
    proc = start(CORS_OPTIONS)
    yield proc
    proc.stop()


# -- clients --------------------------------------------------------------------------


def url(server: Proc) -> str:
    return f"http://127.0.0.1:{server.port}/socket.io/"


def q(sid: str | None = None, transport: str = "polling", **extra: str) -> dict[str, str]:
    params = {"EIO": "4", "transport": transport, **extra}
    if sid is not None:
        params["sid"] = sid
    return params


def handshake(server: Proc, **kwargs) -> tuple[str, dict, requests.Response]:
    r = requests.get(url(server), params=q(), timeout=TIMEOUT, **kwargs)
    assert r.status_code == 200, r.text
    assert r.text.startswith("0{")
    opened = json.loads(r.text[1:])
    return opened["sid"], opened, r


def post(server: Proc, sid: str, body: str | bytes, **kwargs) -> requests.Response:
    return requests.post(url(server), params=q(sid), data=body, timeout=TIMEOUT, **kwargs)


def get(server: Proc, sid: str, **kwargs) -> requests.Response:
    return requests.get(url(server), params=q(sid), timeout=TIMEOUT, **kwargs)


def set_cookies(r: requests.Response) -> list[str]:
    """Every Set-Cookie header of a response, unmerged."""
    return r.raw.headers.getlist("Set-Cookie")


def assert_error(r: requests.Response | Raw, status: int, code: int, message: str) -> None:
    if isinstance(r, Raw):
        assert (r.status, r.header("Content-Type")) == (status, "application/json"), r.head
        assert json.loads(r.body) == {"code": code, "message": message}
    else:
        assert (r.status_code, r.headers["Content-Type"]) == (status, "application/json"), r.text
        assert r.json() == {"code": code, "message": message}


@dataclass
class Raw:
    """A response read off a raw socket; after a 101 the socket stays open."""

    status: int
    head: str
    headers: list[tuple[str, str]]
    body: bytes
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def _need(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def read_frame(self) -> tuple[int, bytes]:
        """One (unmasked, server-to-client) WebSocket frame: (opcode, payload)."""
        b0, b1 = self._need(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._need(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._need(8))
        return b0 & 0x0F, self._need(length)

    def close(self) -> None:
        self.sock.close()


def ws_headers() -> list[str]:
    key = base64.b64encode(os.urandom(16)).decode()
    return [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Key: {key}",
    ]


def raw_request(
    server: Proc, target: str, headers: list[str] = (), method: str = "GET", body: bytes = b""
) -> Raw:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before the response head: {bytes(data)!r}")
        data += chunk
    head_bytes, _, rest = bytes(data).partition(b"\r\n\r\n")
    head = head_bytes.decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    status = int(status_line.split()[1])
    headers_out = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
    raw = Raw(status, head, headers_out, b"", sock, bytearray(rest))  # type: ignore[arg-type]
    if status != 101:
        length = int(raw.header("Content-Length") or 0)
        raw.body = raw._need(length)
        sock.close()
    return raw


def ws_target(sid: str | None = None, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in q(sid, "websocket", **extra).items())
    return f"/socket.io/?{query}"


def poll_target(sid: str | None = None, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in q(sid, **extra).items())
    return f"/socket.io/?{query}"


def raw_ws_open(
    server: Proc, headers: list[str] = (), upgrade_headers: list[str] | None = None, **extra: str
) -> tuple[Raw, dict]:
    """A direct WebSocket handshake; returns the 101 and the decoded open packet."""
    upgrade_headers = ws_headers() if upgrade_headers is None else upgrade_headers
    raw = raw_request(server, ws_target(**extra), [*upgrade_headers, *headers])
    assert raw.status == 101, raw.head + raw.body.decode()
    opcode, payload = raw.read_frame()
    assert opcode == 1
    assert payload.startswith(b"0{")
    return raw, json.loads(payload[1:])


def upgrade(server: Proc, sid: str, **kwargs) -> websocket.WebSocket:
    """Upgrade a polling session with the probe dance; returns the upgraded WebSocket."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}{ws_target(sid)}", timeout=TIMEOUT, **kwargs
    )
    ws.send("2probe")
    assert ws.recv() == "3probe"
    ws.send("5")
    # The server handles frames in order: this echo proves "5" was processed.
    ws.send("4upgraded")
    assert ws.recv() == "4upgraded"
    return ws


def close_reason(server: Proc, sid: str) -> str:
    out = server.wait_output(f"CLOSE {sid} ")
    line = next(line for line in out.splitlines() if line.startswith(f"CLOSE {sid} "))
    return line[len(f"CLOSE {sid} ") :]


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "code", "message"),
    [
        ("GET", {"EIO": "3", "transport": "polling"}, 5, "Unsupported protocol version"),
        ("GET", {"transport": "polling"}, 5, "Unsupported protocol version"),
        ("GET", {"EIO": "4", "transport": "flashsocket"}, 0, "Transport unknown"),
        ("GET", {"EIO": "4"}, 0, "Transport unknown"),
        (
            "GET",
            {"EIO": "4", "transport": "polling", "sid": "no-such-sid"},
            1,
            "Session ID unknown",
        ),
        (
            "POST",
            {"EIO": "4", "transport": "polling", "sid": "no-such-sid"},
            1,
            "Session ID unknown",
        ),
        ("POST", {"EIO": "4", "transport": "polling"}, 2, "Bad handshake method"),
        ("PUT", {"EIO": "4", "transport": "polling"}, 2, "Bad handshake method"),
        ("GET", {"EIO": "4", "transport": "websocket"}, 3, "Bad request"),
    ],
)
def test_error_responses(main, method, params, code, message):
    r = requests.request(
        method, url(main), params=params, data=b"4x" if method != "GET" else None, timeout=TIMEOUT
    )
    assert_error(r, 400, code, message)


def test_websocket_without_upgrade_headers_on_a_session(main):
    sid, _, _ = handshake(main)
    r = requests.get(url(main), params=q(sid, "websocket"), timeout=TIMEOUT)
    assert_error(r, 400, 3, "Bad request")
    # The refused upgrade left the session alone.
    assert post(main, sid, "4still here").text == "ok"
    assert get(main, sid).text == "4still here"


def test_allow_request_refusal(hooked):
    r = requests.get(url(hooked), params=q(deny="1"), timeout=TIMEOUT)
    assert_error(r, 403, 4, "denied by test")
    raw = raw_request(hooked, ws_target(deny="1"), ws_headers())
    assert_error(raw, 403, 4, "denied by test")
    assert "set-cookie" not in raw.head.lower()


def test_middleware_refusal(hooked):
    r = requests.get(url(hooked), params=q(), headers={"X-Refuse": "1"}, timeout=TIMEOUT)
    assert_error(r, 400, 3, "Bad request")
    sid, _, _ = handshake(hooked)
    r = requests.post(
        url(hooked), params=q(sid), data="4x", headers={"X-Refuse": "1"}, timeout=TIMEOUT
    )
    assert_error(r, 400, 3, "Bad request")
    raw = raw_request(hooked, ws_target(), [*ws_headers(), "X-Refuse: 1"])
    assert_error(raw, 400, 3, "Bad request")
    # The refused POST delivered nothing; the session still works.
    assert post(hooked, sid, "4after").text == "ok"
    assert get(hooked, sid).text == "4after"


# -- handshake ------------------------------------------------------------------------


def test_handshake_body(main):
    sid, opened, r = handshake(main)
    assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert opened == {
        "sid": sid,
        "upgrades": ["websocket"],
        "pingInterval": 20000,
        "pingTimeout": 15000,
        "maxPayload": 1000000,
    }
    assert isinstance(sid, str) and len(sid) >= 16
    assert r.text == "0" + json.dumps(opened, separators=(",", ":"))  # one packet, nothing else
    assert handshake(main)[0] != sid


@pytest.mark.parametrize("connection", ["Upgrade", "keep-alive, Upgrade"])
def test_direct_websocket_handshake(main, connection):
    headers = [h for h in ws_headers() if not h.startswith("Connection:")]
    raw, opened = raw_ws_open(main, upgrade_headers=[*headers, f"Connection: {connection}"])
    try:
        assert opened["upgrades"] == []
        assert (opened["pingInterval"], opened["pingTimeout"]) == (20000, 15000)
        assert raw.header("Upgrade").lower() == "websocket"
        sid = opened["sid"]
        # A WebSocket session cannot be polled nor upgraded again.
        assert_error(get(main, sid), 400, 3, "Bad request")
        assert_error(raw_request(main, ws_target(sid), ws_headers()), 400, 3, "Bad request")
    finally:
        raw.close()
    assert close_reason(main, sid) == "transport close"


@pytest.mark.parametrize(
    ("options", "ws_code"),
    [({"allow_upgrades": False}, 3), ({"transports": ["polling"]}, 0)],
    ids=["allow_upgrades=false", "transports=polling"],
)
def test_handshake_without_upgrades(engine_server, options, ws_code):
    server = engine_server(**options)
    sid, opened, _ = handshake(server)
    assert opened["upgrades"] == []
    raw = raw_request(server, ws_target(sid), ws_headers())
    assert_error(raw, 400, ws_code, "Bad request" if ws_code == 3 else "Transport unknown")
    assert post(server, sid, "4polling only").text == "ok"
    assert get(server, sid).text == "4polling only"


# -- long-polling ---------------------------------------------------------------------


def test_post_ok_and_get_returns_queued_packets(main):
    sid, _, _ = handshake(main)
    r = post(main, sid, "4one\x1eb" + base64.b64encode(b"\x00\x01\xfe\xff").decode() + "\x1e4twö")
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (200, "ok", "text/html")
    r = get(main, sid)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert r.text == "4one\x1ebAAH+/w==\x1e4twö"


def test_server_close_over_polling(main):
    sid, _, _ = handshake(main)
    # Packets after the one that makes the server close are not processed.
    assert post(main, sid, "4before\x1e4close\x1e4after").text == "ok"
    assert close_reason(main, sid) == "forced close"
    # What was queued before the close comes first, the CLOSE packet on the next poll
    # (a client acting on CLOSE at once would otherwise drop those packets).
    assert get(main, sid).text == "4before"
    assert get(main, sid).text == "1"
    assert_error(get(main, sid), 400, 1, "Session ID unknown")


def test_client_close_packet_ends_the_pending_poll(main):
    sid, _, _ = handshake(main)
    polled: list[requests.Response] = []
    thread = threading.Thread(target=lambda: polled.append(get(main, sid)))
    thread.start()
    try:
        assert post(main, sid, "1").text == "ok"
    finally:
        thread.join(TIMEOUT)
    # The poll ends at once (the next ping is 20 s away): with a CLOSE packet when the
    # server held it when the CLOSE arrived, as an unknown sid if it came in after.
    assert not thread.is_alive()
    r = polled[0]
    if r.status_code == 200:
        assert r.text == "1"
    else:
        assert_error(r, 400, 1, "Session ID unknown")
    assert close_reason(main, sid) == "transport close"
    assert_error(post(main, sid, "4x"), 400, 1, "Session ID unknown")


@pytest.mark.parametrize(
    "body",
    ["b!!not base64", "9nine", "", "4ok\x1e"],
    ids=["bad-base64", "bad-type", "empty", "empty-packet"],
)
def test_malformed_payload_closes_the_session(main, body):
    sid, _, _ = handshake(main)
    r = post(main, sid, body.encode())
    assert_error(r, 400, 3, "Bad request")
    assert close_reason(main, sid) == "parse error"
    assert_error(get(main, sid), 400, 1, "Session ID unknown")


def test_second_concurrent_get_closes_the_session(main):
    sid, _, _ = handshake(main)
    responses: list[requests.Response] = []

    def first_poll() -> None:
        responses.append(get(main, sid))

    thread = threading.Thread(target=first_poll)
    thread.start()
    try:
        # Whichever GET the server sees second is refused; the other one (held open,
        # nothing is queued and the ping is 20 s away) is answered with a CLOSE packet.
        second = get(main, sid)
    finally:
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    both = sorted([responses[0], second], key=lambda r: r.status_code)
    assert (both[0].status_code, both[0].text) == (200, "1")
    assert_error(both[1], 400, 3, "Bad request")
    assert close_reason(main, sid) == "transport error"
    assert_error(get(main, sid), 400, 1, "Session ID unknown")
    assert_error(post(main, sid, "4late"), 400, 1, "Session ID unknown")


def test_body_over_max_http_buffer_size(engine_server):
    server = engine_server(max_http_buffer_size=1000, ping_interval=20, ping_timeout=15)
    sid, opened, _ = handshake(server)
    assert opened["maxPayload"] == 1000
    exactly = "4" + "x" * 999
    assert post(server, sid, exactly).text == "ok"
    assert get(server, sid).text == exactly
    r = post(server, sid, "4" + "x" * 1000)
    assert_error(r, 413, 3, "Payload too large")
    assert close_reason(server, sid) == "transport error"
    assert_error(get(server, sid), 400, 1, "Session ID unknown")
    # The same limit over WebSocket: a too-big message closes the connection (1009).
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}{ws_target()}", timeout=TIMEOUT)
    try:
        ws_sid = json.loads(ws.recv()[1:])["sid"]
        ws.send("4" + "y" * 1000)
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert struct.unpack("!H", frame.data[:2])[0] == 1009
    finally:
        ws.close()
    assert close_reason(server, ws_sid) == "transport close"


def chunks(*parts: bytes) -> Iterator[bytes]:
    yield from parts  # a generator body makes requests send Transfer-Encoding: chunked


def test_chunked_post_is_delivered(main):
    sid, _, _ = handshake(main)
    r = post(main, sid, chunks(b"4chun", b"ked"))
    assert (r.status_code, r.text) == (200, "ok")
    assert get(main, sid).text == "4chunked"


def test_chunked_post_over_the_limit_gets_413(engine_server):
    server = engine_server(max_http_buffer_size=1000)
    sid, _, _ = handshake(server)
    r = post(server, sid, chunks(b"4", b"x" * 600, b"x" * 600))
    assert r.status_code == 413
    assert close_reason(server, sid) == "transport error"


# -- cookie option --------------------------------------------------------------------


def test_cookie_true(engine_server):
    server = engine_server(cookie=True)
    sid, _, r = handshake(server)
    assert set_cookies(r) == [f"io={sid}; Path=/; HttpOnly; SameSite=Lax"]
    # Only the handshake sets it.
    r = post(server, sid, "4x")
    assert (r.text, set_cookies(r)) == ("ok", [])
    r = get(server, sid)
    assert (r.text, set_cookies(r)) == ("4x", [])
    upgraded = raw_request(server, ws_target(sid), ws_headers())
    try:
        assert upgraded.status == 101
        assert upgraded.all("Set-Cookie") == []
    finally:
        upgraded.close()
    # A direct WebSocket handshake is a handshake: its 101 carries the cookie.
    raw, opened = raw_ws_open(server)
    try:
        assert raw.all("Set-Cookie") == [f"io={opened['sid']}; Path=/; HttpOnly; SameSite=Lax"]
    finally:
        raw.close()


def test_cookie_options(engine_server):
    server = engine_server(
        cookie={
            "name": "lb",
            "path": "/custom",
            "domain": "example.com",
            "max_age": 3600,
            "secure": True,
            "samesite": "none",
            "partitioned": True,
        }
    )
    expected = {
        "Max-Age=3600",
        "Domain=example.com",
        "Path=/custom",
        "HttpOnly",
        "Secure",
        "Partitioned",
        "SameSite=None",
    }
    sid, _, r = handshake(server)
    [cookie] = set_cookies(r)
    first, *attributes = cookie.split("; ")
    assert first == f"lb={sid}"
    assert set(attributes) == expected and len(attributes) == len(expected)
    raw, opened = raw_ws_open(server)
    try:
        [cookie] = raw.all("Set-Cookie")
        first, *attributes = cookie.split("; ")
        assert first == f"lb={opened['sid']}"
        assert set(attributes) == expected
    finally:
        raw.close()


# -- hooks ----------------------------------------------------------------------------

UID = "uid=1234; SameSite=Strict"
RANDOM = "randomId=abc; Max-Age=86400"


def test_initial_headers_only_on_the_handshake(hooked):
    sid, _, r = handshake(hooked)
    assert set_cookies(r) == [f"io={sid}; Path=/; HttpOnly; SameSite=Lax", UID, RANDOM]
    r = post(hooked, sid, "4x")
    assert (r.text, set_cookies(r)) == ("ok", [RANDOM])
    r = get(hooked, sid)
    assert (r.text, set_cookies(r)) == ("4x", [RANDOM])


def test_headers_hook_sees_the_request(hooked):
    jar = {"Cookie": "randomId=abc"}
    sid, _, r = handshake(hooked, headers=jar)
    assert set_cookies(r) == [f"io={sid}; Path=/; HttpOnly; SameSite=Lax", UID]
    assert set_cookies(post(hooked, sid, "4x", headers=jar)) == []
    assert set_cookies(get(hooked, sid, headers=jar)) == []
    upgraded = raw_request(hooked, ws_target(sid), [*ws_headers(), "Cookie: randomId=abc"])
    try:
        assert upgraded.status == 101
        assert upgraded.all("Set-Cookie") == []
    finally:
        upgraded.close()


def test_several_set_cookie_headers_are_separate_lines(hooked):
    raw = raw_request(hooked, poll_target(), ["Connection: close"])
    assert raw.status == 200
    lines = [line for line in raw.head.split("\r\n") if line.lower().startswith("set-cookie:")]
    sid = json.loads(raw.body[1:])["sid"]
    assert lines == [
        f"Set-Cookie: io={sid}; Path=/; HttpOnly; SameSite=Lax",
        f"Set-Cookie: {UID}",
        f"Set-Cookie: {RANDOM}",
    ]


def test_hooks_on_websocket_101_responses(hooked):
    # Direct WebSocket handshake: cookie, initial_headers and headers.
    raw, opened = raw_ws_open(hooked)
    try:
        assert raw.all("Set-Cookie") == [
            f"io={opened['sid']}; Path=/; HttpOnly; SameSite=Lax",
            UID,
            RANDOM,
        ]
    finally:
        raw.close()
    # Upgrade of a polling session: not a handshake, so only the headers hook.
    sid, _, _ = handshake(hooked)
    upgraded = raw_request(hooked, ws_target(sid), ws_headers())
    try:
        assert upgraded.status == 101
        assert upgraded.all("Set-Cookie") == [RANDOM]
    finally:
        upgraded.close()


@pytest.mark.parametrize("inject", ["1", "2"], ids=["crlf-in-value", "crlf-in-name"])
def test_header_injection_is_refused(hooked, inject):
    for target, headers in [
        (poll_target(inject=inject), ["Connection: close"]),
        (ws_target(inject=inject), ws_headers()),
    ]:
        raw = raw_request(hooked, target, headers)
        try:
            lowered = raw.head.lower()
            assert "x-evil" not in lowered and "x-injected" not in lowered, raw.head
            assert raw.status in (400, 500), raw.head
            assert raw.status != 101
        finally:
            raw.close()
    # The server is still serving.
    sid, _, _ = handshake(hooked)
    assert post(hooked, sid, "4fine").text == "ok"
    assert get(hooked, sid).text == "4fine"


def test_failing_headers_hook_on_a_poll_loses_no_packets(hooked):
    sid, _, _ = handshake(hooked)
    assert post(hooked, sid, "4keep me").text == "ok"
    r = requests.get(url(hooked), params=q(sid, inject="1"), timeout=TIMEOUT)
    assert r.status_code == 500 and "Traceback" not in r.text
    # Queue a second echo so the next GET cannot hang: it must carry both.
    assert post(hooked, sid, "4second").text == "ok"
    assert get(hooked, sid).text == "4keep me\x1e4second"


# -- CORS -----------------------------------------------------------------------------


def test_cors_preflight(cors):
    r = requests.options(
        url(cors),
        params=q(),
        timeout=TIMEOUT,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST"} <= methods
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert "Origin" in r.headers["Vary"]
    assert r.content == b""


def test_cors_allowed_origin_on_polling_and_websocket(cors):
    sid, _, r = handshake(cors, headers={"Origin": ORIGIN})
    for response in (
        r,
        post(cors, sid, "4x", headers={"Origin": ORIGIN}),
        get(cors, sid, headers={"Origin": ORIGIN}),
    ):
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
    raw, _ = raw_ws_open(cors, [f"Origin: {ORIGIN}"])
    raw.close()
    upgraded = raw_request(cors, ws_target(sid), [*ws_headers(), f"Origin: {ORIGIN}"])
    upgraded.close()
    assert upgraded.status == 101


def test_cors_refuses_other_origins(cors):
    headers = {"Origin": EVIL}
    r = requests.get(url(cors), params=q(), headers=headers, timeout=TIMEOUT)
    assert_error(r, 403, 4, "Origin not allowed")
    assert "Access-Control-Allow-Origin" not in r.headers
    r = requests.options(
        url(cors),
        params=q(),
        timeout=TIMEOUT,
        headers={**headers, "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers
    sid, _, _ = handshake(cors, headers={"Origin": ORIGIN})
    assert_error(post(cors, sid, "4x", headers=headers), 403, 4, "Origin not allowed")
    assert_error(get(cors, sid, headers=headers), 403, 4, "Origin not allowed")
    assert_error(
        raw_request(cors, ws_target(), [*ws_headers(), f"Origin: {EVIL}"]),
        403,
        4,
        "Origin not allowed",
    )
    assert_error(
        raw_request(cors, ws_target(sid), [*ws_headers(), f"Origin: {EVIL}"]),
        403,
        4,
        "Origin not allowed",
    )
    # The refused POST delivered nothing; the session is intact.
    assert post(cors, sid, "4mine", headers={"Origin": ORIGIN}).text == "ok"
    assert get(cors, sid, headers={"Origin": ORIGIN}).text == "4mine"


def test_default_policy_allows_same_origin_and_no_origin(main):
    same = f"http://127.0.0.1:{main.port}"
    sid, _, r = handshake(main, headers={"Origin": same})
    assert "Access-Control-Allow-Origin" not in r.headers
    assert post(main, sid, "4x", headers={"Origin": same}).text == "ok"
    assert get(main, sid, headers={"Origin": same}).text == "4x"
    sid, _, r = handshake(main)  # no Origin: not a browser
    assert "Access-Control-Allow-Origin" not in r.headers
    raw, _ = raw_ws_open(main, [f"Origin: {same}"])
    raw.close()


@pytest.mark.parametrize("origin", [EVIL, "http://127.0.0.1:1", "http://localhost"])
def test_default_policy_refuses_foreign_origins(main, origin):
    r = requests.get(url(main), params=q(), headers={"Origin": origin}, timeout=TIMEOUT)
    assert_error(r, 403, 4, "Origin not allowed")
    assert "Access-Control-Allow-Origin" not in r.headers
    assert_error(
        raw_request(main, ws_target(), [*ws_headers(), f"Origin: {origin}"]),
        403,
        4,
        "Origin not allowed",
    )
    sid, _, _ = handshake(main)
    assert_error(post(main, sid, "4x", headers={"Origin": origin}), 403, 4, "Origin not allowed")
    assert_error(
        raw_request(main, ws_target(sid), [*ws_headers(), f"Origin: {origin}"]),
        403,
        4,
        "Origin not allowed",
    )
    assert post(main, sid, "4ok").text == "ok"
    assert get(main, sid).text == "4ok"


# -- upgrade --------------------------------------------------------------------------


def test_upgrade_answers_the_pending_poll_with_noop(main):
    sid, _, _ = handshake(main)
    polled: list[requests.Response] = []
    thread = threading.Thread(target=lambda: polled.append(get(main, sid)))
    thread.start()
    ws = websocket.create_connection(f"ws://127.0.0.1:{main.port}{ws_target(sid)}", timeout=TIMEOUT)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert (polled[0].status_code, polled[0].text) == (200, "6")
        ws.send("5")
        ws.send("4over ws")
        assert ws.recv() == "4over ws"
        ws.send_binary(b"\x00\xff")
        assert ws.recv() == b"\x00\xff"
    finally:
        ws.close()
    assert close_reason(main, sid) == "transport close"


def test_upgrade_misuse(main):
    sid, _, _ = handshake(main)
    ws = upgrade(main, sid)
    try:
        again = raw_request(main, ws_target(sid), ws_headers())
        assert_error(again, 400, 3, "Bad request")
        assert_error(get(main, sid), 400, 3, "Bad request")
        assert_error(post(main, sid, "4x"), 400, 3, "Bad request")
        # None of it hurt the upgraded session.
        ws.send("4still upgraded")
        assert ws.recv() == "4still upgraded"
    finally:
        ws.close()
    assert close_reason(main, sid) == "transport close"


def test_second_upgrade_during_an_upgrade_is_refused(main):
    sid, _, _ = handshake(main)
    ws = websocket.create_connection(f"ws://127.0.0.1:{main.port}{ws_target(sid)}", timeout=TIMEOUT)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        assert_error(raw_request(main, ws_target(sid), ws_headers()), 400, 3, "Bad request")
        ws.send("5")
        ws.send("4done")
        assert ws.recv() == "4done"
    finally:
        ws.close()


@pytest.mark.parametrize("stage", ["no-probe", "no-upgrade-packet"])
def test_upgrade_timeout(main, stage):
    sid, _, _ = handshake(main)
    ws = websocket.create_connection(f"ws://127.0.0.1:{main.port}{ws_target(sid)}", timeout=TIMEOUT)
    try:
        if stage == "no-upgrade-packet":
            ws.send("2probe")
            assert ws.recv() == "3probe"
        began = time.monotonic()
        # No "2probe" (or no "5" after it): after upgrade_timeout (1 s) the server gives
        # up on this WebSocket.
        try:
            opcode, _ = ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketConnectionClosedException:
            opcode = websocket.ABNF.OPCODE_CLOSE
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert time.monotonic() - began >= 1.0 - 0.1
    finally:
        ws.close()
    # The polling session carries on.
    assert post(main, sid, "4still polling").text == "ok"
    assert get(main, sid).text == "4still polling"
    assert f"CLOSE {sid} " not in main.output()
