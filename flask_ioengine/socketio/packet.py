"""Socket.IO v5 packets (sans-I/O): ``<type>[<n>-][<nsp>,][<id>][<json>]``.

Binary values inside EVENT/ACK data travel as separate Engine.IO messages and are
referenced from the JSON by ``{"_placeholder": true, "num": n}`` objects.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)

MAX_NAMESPACE_LENGTH = 256
MAX_ID_DIGITS = 15
_ID_LIMIT = 10**MAX_ID_DIGITS

_BINARY = (bytes, bytearray, memoryview)
_PAYLOAD = (list, tuple, dict, str)
# Wire digit for a packet sent without attachments: BINARY_* fall back to EVENT/ACK.
_PLAIN_DIGIT = {0: "0", 1: "1", 2: "2", 3: "3", 4: "4", 5: "2", 6: "3"}
_TYPES = {str(t): t for t in range(7)}

_DIGITS_RE = re.compile(r"[0-9]*")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NON_BRACKET_RE = re.compile(r"[^\[\]{}]+")
_CURLY_TO_SQUARE = str.maketrans("{}", "[]")


class PacketError(ValueError):
    """Malformed or hostile Socket.IO input; ``str(err)`` is a short, safe reason."""


class _HasBinary(Exception):
    """Internal signal raised by the JSON fast path when it meets binary data."""


class Packet:
    """One Socket.IO packet; ``data`` is the JSON-like payload (bytes allowed in it)."""

    __slots__ = ("type", "nsp", "data", "id")

    def __init__(self, type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> None:
        self.type = type
        self.nsp = nsp
        self.data = data
        self.id = id

    def __repr__(self) -> str:
        return f"Packet(type={self.type!r}, nsp={self.nsp!r}, data={self.data!r}, id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return (
            self.type == other.type
            and self.nsp == other.nsp
            and self.id == other.id
            and self.data == other.data
        )


# --------------------------------------------------------------------------- encoding


def _no_binary(obj: Any) -> Any:
    if isinstance(obj, _BINARY):
        raise _HasBinary
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_no_binary
)
_ASCII_ENCODER = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_no_binary
)


def _dumps(obj: Any) -> str:
    """Compact JSON; lone surrogates are escaped so the text stays valid UTF-8."""
    text = _ENCODER.encode(obj)
    if not text.isascii() and _SURROGATE_RE.search(text) is not None:
        text = _ASCII_ENCODER.encode(obj)
    return text


def _header(digit: str, nsp: str, id: int | None) -> str:
    if nsp != "/":
        if (
            not isinstance(nsp, str)
            or not nsp.startswith("/")
            or "," in nsp
            or len(nsp) > MAX_NAMESPACE_LENGTH
        ):
            raise ValueError("invalid namespace")
        digit = f"{digit}{nsp},"
    if id is not None:
        if isinstance(id, bool) or not isinstance(id, int) or not 0 <= id < _ID_LIMIT:
            raise ValueError("invalid packet id")
        digit = f"{digit}{id}"
    return digit


def _deconstruct(obj: Any, attachments: list[bytes]) -> Any:
    """Copy ``obj`` with every binary leaf replaced by a placeholder."""
    if isinstance(obj, _BINARY):
        attachments.append(bytes(obj))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(obj, (list, tuple)):
        return [_deconstruct(item, attachments) for item in obj]
    if isinstance(obj, dict):
        return {key: _deconstruct(value, attachments) for key, value in obj.items()}
    return obj


def _encode_binary(packet: Packet) -> list[str | bytes]:
    if packet.type in (EVENT, BINARY_EVENT):
        digit = "5"
    elif packet.type in (ACK, BINARY_ACK):
        digit = "6"
    else:
        raise TypeError("binary data is only allowed in EVENT and ACK packets")
    attachments: list[bytes] = []
    text = _dumps(_deconstruct(packet.data, attachments))
    head = _header(f"{digit}{len(attachments)}-", packet.nsp, packet.id)
    return [head + text, *attachments]


def encode(packet: Packet) -> list[str | bytes]:
    """First element: the text packet; then one bytes element per binary attachment.

    EVENT/ACK data holding bytes is sent as BINARY_EVENT/BINARY_ACK (and BINARY_* data
    without bytes as EVENT/ACK). The caller's data is never modified. Raises TypeError
    or ValueError for data that is not JSON-serialisable (NaN and infinity included).
    """
    data = packet.data
    if data is None:
        payload = ""
    elif isinstance(data, _PAYLOAD):
        try:
            payload = _ENCODER.encode(data)
        except _HasBinary:
            return _encode_binary(packet)
        if not payload.isascii() and _SURROGATE_RE.search(payload) is not None:
            payload = _ASCII_ENCODER.encode(data)
    else:
        raise TypeError("packet data must be a list, tuple, dict or str")
    digit = _PLAIN_DIGIT.get(packet.type)
    if digit is None:
        raise ValueError("invalid packet type")
    if packet.id is None and packet.nsp == "/":
        return [digit + payload]
    return [_header(digit, packet.nsp, packet.id) + payload]


# --------------------------------------------------------------------------- decoding


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError("non-standard JSON constant")


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_reject_constant)


def _digits_end(text: str, start: int) -> int:
    match = _DIGITS_RE.match(text, start)
    return start if match is None else match.end()


#: Event names a client may not send (socket.io-parser refuses them too).
RESERVED_EVENTS = frozenset({
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
})


def _check_payload(type: int, data: Any, id: int | None, present: bool = True) -> None:
    """Enforce the payload shape each packet type allows (``present``: the packet
    carried a JSON payload, even ``null``)."""
    if type == EVENT or type == BINARY_EVENT:
        if not isinstance(data, list) or not data:
            raise PacketError("event payload must be a non-empty array")
        name = data[0]
        if not isinstance(name, (str, int)) or isinstance(name, bool):
            raise PacketError("invalid event name")
        if name in RESERVED_EVENTS:
            raise PacketError("reserved event name")
    elif type == ACK or type == BINARY_ACK:
        if id is None:
            raise PacketError("ack without id")
        if not isinstance(data, list):
            raise PacketError("ack payload must be an array")
    else:
        if id is not None:
            raise PacketError("unexpected packet id")
        if type == CONNECT:
            if present and not isinstance(data, dict):
                raise PacketError("connect payload must be an object")
        elif type == DISCONNECT:
            if present:
                raise PacketError("unexpected disconnect payload")
        elif not isinstance(data, (dict, str)):
            raise PacketError("connect error payload must be an object or string")


def _find_placeholders(data: Any, count: int) -> list[tuple[Any, Any, int]]:
    """Locate the placeholders of a binary packet: exactly one for each of 0..count-1."""
    refs: list[tuple[Any, Any, int]] = []
    seen = [False] * count
    stack = [data]
    while stack:
        node = stack.pop()
        for key, value in enumerate(node) if isinstance(node, list) else node.items():
            if isinstance(value, dict):
                if value.get("_placeholder") is True:
                    num = value.get("num")
                    if len(value) != 2 or type(num) is not int or not 0 <= num < count or seen[num]:
                        raise PacketError("invalid attachment placeholder")
                    seen[num] = True
                    refs.append((node, key, num))
                else:
                    stack.append(value)
            elif isinstance(value, list):
                stack.append(value)
    if len(refs) != count:
        raise PacketError("attachment count mismatch")
    return refs


class Decoder:
    """Incremental decoder for one connection: feed it each Engine.IO message in order."""

    __slots__ = ("max_attachments", "max_depth", "_pending", "_refs", "_attachments")

    def __init__(self, max_attachments: int = 10, max_depth: int = 32) -> None:
        self.max_attachments = max_attachments
        self.max_depth = max_depth
        self._pending: Packet | None = None
        self._refs: list[tuple[Any, Any, int]] = []
        self._attachments: list[bytes] = []

    @property
    def awaiting_attachments(self) -> bool:
        """True while a binary packet still waits for attachments."""
        return self._pending is not None

    def reset(self) -> None:
        """Drop any partially received binary packet."""
        self._pending = None
        self._refs = []
        self._attachments = []

    def feed(self, data: str | bytes) -> Packet | None:
        """Feed one Engine.IO message; return a complete Packet, or None while binary
        attachments are still awaited. Raises PacketError on malformed input (the
        decoder then resets to a clean state)."""
        try:
            if self._pending is None:
                if not isinstance(data, str):
                    raise PacketError("unexpected binary message")
                return self._feed_text(data)
            if isinstance(data, str):
                raise PacketError("expected a binary attachment")
            if not isinstance(data, _BINARY):
                raise PacketError("unsupported message type")
            return self._feed_attachment(data)
        except PacketError:
            self.reset()
            raise

    def _feed_text(self, text: str) -> Packet | None:
        n = len(text)
        if not n:
            raise PacketError("empty packet")
        type = _TYPES.get(text[0])
        if type is None:
            raise PacketError("invalid packet type")
        i = 1
        count = 0
        binary = type >= BINARY_EVENT
        if binary:
            j = _digits_end(text, i)
            if j == i or j >= n or text[j] != "-":
                raise PacketError("missing attachment count")
            if j - i > 6:
                raise PacketError("too many attachments")
            count = int(text[i:j])
            if count > self.max_attachments:
                raise PacketError("too many attachments")
            i = j + 1
        nsp = "/"
        if i < n and text[i] == "/":
            end = text.find(",", i, i + MAX_NAMESPACE_LENGTH + 1)
            if end < 0:
                if n - i > MAX_NAMESPACE_LENGTH:
                    raise PacketError("namespace too long")
                end = n
            nsp = text[i:end]
            i = end + 1
        id = None
        if i < n and "0" <= text[i] <= "9":
            j = _digits_end(text, i)
            if j - i > MAX_ID_DIGITS:
                raise PacketError("packet id too long")
            if j < n and text[j] == "-":
                raise PacketError("unexpected attachment count")
            id = int(text[i:j])
            i = j
        data = self._loads(text[i:]) if i < n else None
        _check_payload(type, data, id, i < n)
        packet = Packet(type, nsp, data, id)
        if not binary:
            return packet
        refs = _find_placeholders(data, count)
        if not refs:
            return packet
        self._pending = packet
        self._refs = refs
        self._attachments = []
        return None

    def _feed_attachment(self, data: bytes | bytearray | memoryview) -> Packet | None:
        try:
            chunk = bytes(data)
        except (TypeError, ValueError):
            raise PacketError("unreadable binary message") from None
        attachments = self._attachments
        attachments.append(chunk)
        if len(attachments) < len(self._refs):
            return None
        packet = self._pending
        assert packet is not None
        for node, key, num in self._refs:
            node[key] = attachments[num]
        self.reset()
        return packet

    def _loads(self, payload: str) -> Any:
        self._check_depth(payload)
        try:
            return _DECODER.decode(payload)
        except Exception:  # ValueError, RecursionError, MemoryError on hostile input
            raise PacketError("invalid JSON payload") from None

    def _check_depth(self, payload: str) -> None:
        """Reject nesting deeper than max_depth without parsing (linear, C-speed scans)."""
        limit = self.max_depth
        if payload.count("[") + payload.count("{") <= limit:
            return
        skeleton = _NON_BRACKET_RE.sub("", _JSON_STRING_RE.sub("", payload))
        skeleton = skeleton.translate(_CURLY_TO_SQUARE)
        # Each pass strips the innermost pairs, so a depth-d skeleton empties in d passes.
        for _ in range(limit):
            reduced = skeleton.replace("[]", "")
            if not reduced:
                return
            if len(reduced) == len(skeleton):
                raise PacketError("invalid JSON payload")
            skeleton = reduced
        raise PacketError("payload nested too deeply")
