"""A raw HTTP and WebSocket client for hostile-input tests: it writes whatever bytes it is
told to (unmasked frames, reserved opcodes, lying lengths, bad close codes...) and reads
the server's answer frame by frame, keeping every byte received for later inspection.

Only 127.0.0.1; every read is bounded by the socket timeout.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT = 5.0

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def encode_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
                 mask: bool = True, length: int | None = None, length_bytes: int | None = None,
                 mask_key: bytes | None = None) -> bytes:
    """One WebSocket frame as a client would send it, with every field under control.

    ``length`` overrides the announced payload length (the payload is sent as given);
    ``length_bytes`` (0, 2 or 8) forces the length encoding, minimal or not.
    """
    announced = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    if length_bytes is None:
        length_bytes = 0 if announced <= 125 else 2 if announced <= 0xFFFF else 8
    mask_bit = 0x80 if mask else 0
    if length_bytes == 0:
        head = bytes([b0, mask_bit | announced])
    elif length_bytes == 2:
        head = bytes([b0, mask_bit | 126]) + struct.pack("!H", announced)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack("!Q", announced)
    if not mask:
        return head + payload
    key = os.urandom(4) if mask_key is None else mask_key
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code: int | None = None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame (None when it carries none)."""
        if len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])

    def message(self) -> str | bytes:
        return self.payload.decode("utf-8") if self.opcode == TEXT else self.payload


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Conn:
    """One TCP connection to the server; ``received`` is every byte it ever got."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.port = port
        self.buffer = bytearray()
        self.received = bytearray()
        self.eof = False

    def send(self, data: bytes) -> bool:
        """Write bytes; False when the server has already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        self.received += chunk
        return True

    def need(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ConnectionError("connection closed")
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed before {marker!r}")
        head, _, rest = bytes(self.buffer).partition(marker)
        self.buffer = bytearray(rest)
        return head

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buffer)
        self.buffer.clear()
        return out

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)


def read_response_head(conn: Conn) -> tuple[int, list[tuple[str, str]]]:
    head = conn.read_until(b"\r\n\r\n").decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return int(status_line.split()[1]), headers


def http_send(port: int, method: str, target: str, *, headers: list[str] | tuple[str, ...] = (),
              body: bytes | None = None, timeout: float = TIMEOUT,
              conns: list[Conn] | None = None) -> Conn:
    """Write one request on a connection of its own (``Connection: close``); read the
    answer later with ``http_read``."""
    conn = Conn(port, timeout)
    if conns is not None:
        conns.append(conn)
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
             *headers]
    framed = any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in headers)
    if body is not None and not framed:
        lines.append(f"Content-Length: {len(body)}")
    conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
    return conn


def http_read(conn: Conn) -> HttpResponse:
    """The whole answer to the request written on ``conn``; closes it."""
    try:
        status, head = read_response_head(conn)
        rest = conn.read_to_eof()
    finally:
        conn.close()
    resp = HttpResponse(status, head, b"", bytes(conn.received))
    length = resp.header("Content-Length")
    if length is not None:
        resp.body = rest[: int(length)]
    elif "chunked" in (resp.header("Transfer-Encoding") or "").lower():
        resp.body = _dechunk(rest)
    else:
        resp.body = rest
    return resp


def http(port: int, method: str, target: str, *, headers: list[str] | tuple[str, ...] = (),
         body: bytes | None = None, timeout: float = TIMEOUT,
         conns: list[Conn] | None = None) -> HttpResponse:
    """One request on its own connection; the whole answer."""
    return http_read(http_send(port, method, target, headers=headers, body=body,
                               timeout=timeout, conns=conns))


def chunked(*parts: bytes) -> bytes:
    """A body in chunked transfer coding."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"


def ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def upgrade_headers(key: str | None = None, version: str = "13") -> list[str]:
    return ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Version: {version}",
            f"Sec-WebSocket-Key: {key or ws_key()}"]


@dataclass
class Closed:
    """How a WebSocket ended: the close frame (if any) and what came before it."""

    messages: list[str | bytes] = field(default_factory=list)
    close: Frame | None = None

    @property
    def code(self) -> int | None:
        return None if self.close is None else self.close.close_code


class WebSocket:
    """A client WebSocket after a 101; frames are written raw."""

    def __init__(self, conn: Conn, status: int, headers: list[tuple[str, str]]) -> None:
        self.conn = conn
        self.status = status
        self.headers = headers

    @classmethod
    def connect(cls, port: int, target: str, headers: list[str] | None = None,
                timeout: float = TIMEOUT, conns: list[Conn] | None = None) -> WebSocket:
        conn = Conn(port, timeout)
        if conns is not None:
            conns.append(conn)
        lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 *(upgrade_headers() if headers is None else headers)]
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status, head = read_response_head(conn)
        return cls(conn, status, head)

    @property
    def received(self) -> bytearray:
        return self.conn.received

    def send_raw(self, data: bytes) -> bool:
        return self.conn.send(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: object) -> bool:
        return self.conn.send(encode_frame(opcode, payload, **kwargs))  # type: ignore[arg-type]

    def send_text(self, text: str) -> bool:
        return self.send_frame(TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> bool:
        return self.send_frame(BINARY, data)

    def send_close(self, code: int | None = 1000, reason: bytes = b"") -> bool:
        return self.send_frame(CLOSE, close_payload(code, reason))

    def recv_frame(self) -> Frame | None:
        """The next frame from the server; None at EOF."""
        try:
            b0, b1 = self.conn.need(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self.conn.need(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self.conn.need(8))
            key = self.conn.need(4) if b1 & 0x80 else None
            payload = self.conn.need(length)
        except ConnectionError:
            return None
        if key is not None:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F, key is not None, payload)

    def recv(self) -> str | bytes | None:
        """The next data message (answering pings); None when the connection ends."""
        while True:
            frame = self.recv_frame()
            if frame is None or frame.opcode == CLOSE:
                return None
            if frame.opcode == PING:
                self.send_frame(PONG, frame.payload)
                continue
            if frame.opcode in (TEXT, BINARY):
                return frame.message()

    def read_until_close(self) -> Closed:
        """Every data message until the server's close frame or EOF."""
        out = Closed()
        while True:
            frame = self.recv_frame()
            if frame is None:
                return out
            if frame.opcode == CLOSE:
                out.close = frame
                return out
            if frame.opcode in (TEXT, BINARY):
                out.messages.append(frame.message())

    def close(self) -> None:
        self.conn.close()


# -- Engine.IO vocabulary ---------------------------------------------------------------------

#: The protocol's error messages by code (``{"code": n, "message": ...}`` bodies).
ENGINE_ERRORS = {0: "Transport unknown", 1: "Session ID unknown", 2: "Bad handshake method",
                 3: "Bad request", 4: "Forbidden", 5: "Unsupported protocol version"}


def eio_target(**params: str) -> str:
    """``/socket.io/?`` with the parameters in order, values as given (not escaped)."""
    return "/socket.io/?" + "&".join(f"{k}={v}" for k, v in params.items())


# -- the hostile-case harness: what every case checks besides the protocol's answer ------

#: What must never reach a client: a traceback, exception text or a source path.
LEAK = re.compile(rb'Traceback|Error\(|Exception|\.py"|File "|site-packages|/[\w.-]+\.py\b')
#: A line logged by the library (the test servers log ``LEVEL logger message``).
LIBRARY_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) flask_ioengine")


def assert_no_leak(data: bytes) -> None:
    found = LEAK.search(data)
    if found is not None:
        start = max(0, found.start() - 80)
        raise AssertionError(f"traceback/exception text reached the client: "
                             f"{data[start:found.end() + 80]!r}")


class ServerLog:
    """A server's captured output, read by byte offset so each case sees only its own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size

    def since(self, offset: int) -> str:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def wait_for(self, offset: int, needle: str, timeout: float = 5.0) -> int:
        """Where ``needle`` first appears after ``offset`` (relative to it); bounded."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.since(offset)
            pos = text.find(needle)
            if pos >= 0:
                return pos
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the server output within {timeout}s:"
                                     f"\n{text[-2000:]}")
            time.sleep(0.02)


class KnownBug(AssertionError):
    """A check failed the way a reported server bug makes it fail (see the xfail reason)."""


class Checks:
    """Run named checks; failures of the checks named as known bugs are collected and
    raised last as ``KnownBug`` (the only failure a case's strict xfail accepts), every
    other failure is raised at once."""

    def __init__(self, known: tuple[str, ...] = ()) -> None:
        self.known = known
        self.failures: list[str] = []

    def run(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (AssertionError, TimeoutError, ConnectionError) as err:
            if name not in self.known:
                raise
            self.failures.append(f"[{name}] {type(err).__name__}: {err}")
            return None

    def finish(self) -> None:
        if self.failures:
            raise KnownBug("\n".join(self.failures))
