"""Coverage-guided fuzzing of the Socket.IO decoder: one ``socketio.packet.Decoder`` fed a
sequence of Engine.IO messages (text and binary) derived from the input. Any exception
other than ``PacketError`` is a crash, and so is a decoded packet that does not survive
encode -> decode unchanged.

Input layout: messages separated by ``\\n--\\n``; each starts with ``t`` (the rest is a text
message, UTF-8) or anything else (the rest is a binary message).
Run: ``python fuzz/fuzz_socketio.py -runs=N`` (``make fuzz``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["flask_ioengine"]):
    from flask_ioengine.socketio import packet as sio

import common  # noqa: E402

SEP = b"\n--\n"
PH0 = b'{"_placeholder":true,"num":0}'
SEEDS = [
    b"t0",
    b't0{"token":"abc"}',
    b"t0/admin,",
    b't2["message",1,2.5,null,true,{"a":[1]}]',
    b't2/admin,12["x"]',
    b"t31[]",
    b't4{"message":"no"}',
    b"t1/admin,",
    b't51-["bin",' + PH0 + b"]" + SEP + b"b\x00\x01\x02",
    b't62-/admin,7[' + PH0 + b',{"_placeholder":true,"num":1}]' + SEP + b"ba" + SEP + b"bb",
    b"t2[" + b"[" * 40 + b"]" * 40 + b"]",
    b't2["\\ud800"]',
]
_PLAIN = {sio.BINARY_EVENT: sio.EVENT, sio.BINARY_ACK: sio.ACK}


def _has_binary(obj: Any) -> bool:
    if isinstance(obj, bytes):
        return True
    if isinstance(obj, list):
        return any(_has_binary(x) for x in obj)
    if isinstance(obj, dict):
        return any(_has_binary(x) for x in obj.values())
    return False


def round_trip(p: sio.Packet) -> None:
    """What the server decoded, encoded again, decodes to the same packet (BINARY_*
    without bytes in it is sent as the plain type)."""
    decoder = sio.Decoder(max_attachments=1_000_000, max_depth=1_000_000)
    again = None
    for part in sio.encode(p):
        again = decoder.feed(part)
    expected = sio.Packet(p.type if _has_binary(p.data) else _PLAIN.get(p.type, p.type),
                          p.nsp, p.data, p.id)
    if again != expected:
        raise AssertionError(f"round trip changed {expected!r} into {again!r}")


def test_one_input(data: bytes) -> None:
    decoder = sio.Decoder()
    for chunk in data.split(SEP)[:16]:
        message: str | bytes
        if chunk[:1] == b"t":
            message = chunk[1:].decode("utf-8", "replace")
        else:
            message = chunk[1:]
        try:
            p = decoder.feed(message)
        except sio.PacketError:
            continue
        if p is not None:
            round_trip(p)


if __name__ == "__main__":
    common.run(test_one_input, SEEDS)
