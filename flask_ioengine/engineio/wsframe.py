"""WebSocket framing, server side (RFC 6455, RFC 7692), sans-I/O.

``Parser`` takes the bytes a client sent and yields whole messages and control frames;
any violation raises ``FrameError`` carrying the close code to answer with. The
``*_frame`` functions build the unmasked frames a server sends.

permessage-deflate is negotiated without context takeover in either direction, so a
connection keeps no compression window between messages (memory stays flat).
"""

from __future__ import annotations

import zlib
from typing import Any

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA = (CONTINUATION, TEXT, BINARY)
_CONTROL = (CLOSE, PING, PONG)

PROTOCOL_ERROR, INVALID_DATA, MESSAGE_TOO_BIG = 1002, 1007, 1009
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                   1012, 1013, 1014})
_DEFLATE_TAIL = b"\x00\x00\xff\xff"

Event = tuple  # ("text", str) | ("binary", bytes) | ("ping"/"pong", bytes) | ("close", code, reason)


class FrameError(Exception):
    """The client broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask``."""
    n = len(data)
    if not n:
        return b""
    key = (bytes(mask) * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class Parser:
    """Incremental frame parser for one connection."""

    __slots__ = ("max_message", "deflate", "_buf", "_opcode", "_parts", "_compressed")

    def __init__(self, max_message: int, deflate: bool = False) -> None:
        self.max_message = max_message
        self.deflate = deflate
        self._buf = bytearray()
        self._opcode = 0  # of the fragmented message in progress, 0 when none
        self._parts = bytearray()  # the fragments of the message in progress
        self._compressed = False

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> Event | None:
        """The next complete event, or None until more bytes arrive."""
        while True:
            buf = self._buf
            have = len(buf)
            if have < 2:
                return None
            b0, b1 = buf[0], buf[1]
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            pos = 2
            if length == 126:
                if have < 4:
                    return None
                length = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif length == 127:
                if have < 10:
                    return None
                length = int.from_bytes(buf[2:10], "big")
                if length >> 63:
                    raise FrameError(PROTOCOL_ERROR, "invalid frame length")
                pos = 10
            fin = b0 & 0x80
            self._check_header(b0, b1, opcode, fin, length)
            end = pos + 4 + length
            if have < end:
                return None
            payload = unmask(buf[pos + 4:end], buf[pos:pos + 4])
            del buf[:end]
            if opcode >= 0x8:
                return self._control(opcode, payload)
            event = self._data(opcode, fin, b0 & 0x40, payload)
            if event is not None:
                return event

    def _check_header(self, b0: int, b1: int, opcode: int, fin: int, length: int) -> None:
        if not b1 & 0x80:
            raise FrameError(PROTOCOL_ERROR, "client frames must be masked")
        rsv = b0 & 0x70
        if rsv and not (rsv == 0x40 and self.deflate and opcode in (TEXT, BINARY)):
            raise FrameError(PROTOCOL_ERROR, "reserved bits set")
        if opcode in _CONTROL:
            if not fin:
                raise FrameError(PROTOCOL_ERROR, "fragmented control frame")
            if length > 125:
                raise FrameError(PROTOCOL_ERROR, "control frame too long")
            return
        if opcode not in _DATA:
            raise FrameError(PROTOCOL_ERROR, "reserved opcode")
        if opcode == CONTINUATION and not self._opcode:
            raise FrameError(PROTOCOL_ERROR, "continuation without a message")
        if opcode != CONTINUATION and self._opcode:
            raise FrameError(PROTOCOL_ERROR, "new message inside a fragmented one")
        if len(self._parts) + length > self.max_message:
            raise FrameError(MESSAGE_TOO_BIG, "message too big")

    def _control(self, opcode: int, payload: bytes) -> Event:
        if opcode == PING:
            return ("ping", payload)
        if opcode == PONG:
            return ("pong", payload)
        if not payload:
            return ("close", 1005, "")
        if len(payload) == 1:
            raise FrameError(PROTOCOL_ERROR, "close frame with a one-byte body")
        code = int.from_bytes(payload[:2], "big")
        if code not in _SENDABLE_CLOSE_CODES and not 3000 <= code <= 4999:
            raise FrameError(PROTOCOL_ERROR, "invalid close code")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(INVALID_DATA, "close reason is not UTF-8") from None
        return ("close", code, reason)

    def _data(self, opcode: int, fin: int, rsv1: int, payload: bytes) -> Event | None:
        if opcode != CONTINUATION:
            self._opcode = opcode
            self._compressed = bool(rsv1)
        elif rsv1:
            raise FrameError(PROTOCOL_ERROR, "reserved bits set on a continuation")
        if not fin:
            self._parts += payload  # one buffer: empty or tiny fragments cost nothing extra
            return None
        if self._parts:
            self._parts += payload
            payload = bytes(self._parts)
            self._parts = bytearray()
        opcode, self._opcode = self._opcode, 0
        if self._compressed:
            payload = self._inflate(payload)
        if opcode == BINARY:
            return ("binary", payload)
        try:
            return ("text", payload.decode("utf-8"))
        except UnicodeDecodeError:
            raise FrameError(INVALID_DATA, "text message is not UTF-8") from None

    def _inflate(self, payload: bytes) -> bytes:
        inflater = zlib.decompressobj(-15)
        try:
            out = inflater.decompress(payload + _DEFLATE_TAIL, self.max_message + 1)
        except zlib.error:
            raise FrameError(INVALID_DATA, "bad compressed data") from None
        if len(out) > self.max_message or inflater.unconsumed_tail:
            raise FrameError(MESSAGE_TOO_BIG, "message too big")
        return out


def frame(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    """One final, unmasked frame."""
    n = len(payload)
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return bytes((b0, 126)) + n.to_bytes(2, "big") + payload
    return bytes((b0, 127)) + n.to_bytes(8, "big") + payload


def message_frame(data: str | bytes, deflate_threshold: int | None = None) -> bytes:
    """A text (str) or binary (bytes) message, compressed when at least
    ``deflate_threshold`` bytes long (None: never)."""
    if isinstance(data, str):
        opcode, payload = TEXT, data.encode("utf-8")
    else:
        opcode, payload = BINARY, data
    if deflate_threshold is not None and len(payload) >= deflate_threshold:
        deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        body = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
        return frame(opcode, body[:-4] if body.endswith(_DEFLATE_TAIL) else body, True)
    return frame(opcode, payload)


#: id(message) -> [message, deflate threshold, its frame]: messages of a broadcast,
#: framed for the first connection and reused for the others (see ``share``)
_SHARED: dict[int, list[Any]] = {}
_SHARED_MAX = 256


def share(messages: list[str | bytes]) -> None:
    """Announce messages about to go to many connections: ``shared_frame`` then frames
    each once, not once per connection. The table is bounded; forgetting only costs time."""
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    for m in messages:
        _SHARED[id(m)] = [m, None, None]


def shared_frame(data: str | bytes, deflate_threshold: int | None = None) -> bytes:
    """``message_frame(data, deflate_threshold)``, reused when ``data`` was shared."""
    entry = _SHARED.get(id(data))
    if entry is None or entry[0] is not data:
        return message_frame(data, deflate_threshold)
    framed = entry[2]
    if framed is None or entry[1] != deflate_threshold:
        framed = entry[2] = message_frame(data, deflate_threshold)
        entry[1] = deflate_threshold
    return framed


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    if code in (1005, 1006, 1015):
        return frame(CLOSE, b"")
    return frame(CLOSE, code.to_bytes(2, "big") + reason.encode("utf-8")[:123])


def negotiate_deflate(offer: str | None) -> str | None:
    """The Sec-WebSocket-Extensions answer to a client's offer, or None to decline."""
    if not offer:
        return None
    for ext in offer.split(","):
        params = [p.strip().lower() for p in ext.split(";")]
        if params[0] != "permessage-deflate":
            continue
        names = {p.split("=")[0].strip() for p in params[1:]}
        if names - {"client_max_window_bits", "server_max_window_bits",
                    "client_no_context_takeover", "server_no_context_takeover"}:
            continue
        if any(p.startswith("server_max_window_bits=") and not p.endswith("=15")
               for p in params[1:]):
            continue  # a smaller server window than zlib's default: decline this offer
        return "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    return None
