"""Engine.IO v4 packets and long-polling payloads (sans-I/O).

A packet is a type digit followed by its data; binary messages travel as raw bytes over
WebSocket and as ``b<base64>`` inside a polling payload, whose packets are joined by
the record separator ``\\x1e``.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)
NAMES = ("open", "close", "ping", "pong", "message", "upgrade", "noop")
SEPARATOR = "\x1e"

# Pre-encoded packets the server sends often.
PING_PACKET = "2"
PONG_PROBE = "3probe"
NOOP_PACKET = "6"
CLOSE_PACKET = "1"

Data = str | bytes


class PacketError(ValueError):
    """Malformed Engine.IO input; ``str(err)`` is a short reason, safe to log."""


def encode(type: int, data: Data | None = None) -> Data:
    """Encode one packet for WebSocket: text as ``<type><data>``, binary as raw bytes."""
    if isinstance(data, bytes):
        if type != MESSAGE:
            raise PacketError("only messages may be binary")
        return data
    return str(type) if data is None else f"{type}{data}"


def decode(frame: Data) -> tuple[int, Data]:
    """Decode one WebSocket frame into ``(type, data)``; bytes are a binary message."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return MESSAGE, bytes(frame)
    if not frame:
        raise PacketError("empty packet")
    t = ord(frame[0]) - 48
    if not 0 <= t <= 6:
        raise PacketError("unknown packet type")
    return t, frame[1:]


def encode_payload(packets: list[Data]) -> str:
    """Join already-encoded packets into a polling payload (binary as ``b<base64>``)."""
    return SEPARATOR.join(
        "b" + b64encode(p).decode("ascii") if isinstance(p, bytes) else p for p in packets
    )


def decode_payload(body: bytes | str, max_packets: int = 1000) -> list[tuple[int, Data]]:
    """Decode a polling POST body into ``(type, data)`` packets."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise PacketError("payload is not valid UTF-8") from None
    else:
        text = body
    if not text:
        raise PacketError("empty payload")
    parts = text.split(SEPARATOR, max_packets)
    if len(parts) > max_packets:
        raise PacketError("too many packets in payload")
    out: list[tuple[int, Data]] = []
    for part in parts:
        if part[:1] == "b":
            try:
                out.append((MESSAGE, b64decode(part[1:], validate=True)))
            except (binascii.Error, ValueError):
                raise PacketError("bad base64 in payload") from None
        else:
            out.append(decode(part))
    return out
