"""Coverage-guided fuzzing of the Engine.IO codec: ``engineio.packet.decode_payload`` and
``decode``. Any exception other than ``PacketError`` is a crash, and so is a decoded
payload that does not survive encode_payload -> decode_payload unchanged.

Input layout: the first byte picks what the rest is fed as (0: a POST body as bytes,
1: a body as text, 2: a WebSocket text frame, 3: a WebSocket binary frame).
Run: ``python fuzz/fuzz_engineio.py -runs=N`` (``make fuzz``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["flask_ioengine"]):
    from flask_ioengine.engineio import packet

import common  # noqa: E402

SEEDS = [
    b"\x00" + b"0",
    b"\x00" + b"4hello",
    b"\x00" + b"4hello\x1e4world\x1e2\x1e3\x1e6",
    b"\x00" + b"bAQIDBA==\x1e4text",
    b"\x00" + b"\x1e\x1e",
    b"\x00" + b"4\xe2\x82\xac",
    b"\x01" + "4caf\u00e9\x1ebAA==".encode(),
    b"\x02" + b"2probe",
    b"\x02" + b"5",
    b"\x03" + b"\x00\xff",
]


def payload_round_trip(packets: list[tuple[int, packet.Data]]) -> None:
    encoded = packet.encode_payload([packet.encode(t, d) for t, d in packets])
    again = packet.decode_payload(encoded)
    if again != packets:
        raise AssertionError(f"round trip changed {packets!r} into {again!r}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    try:
        if mode == 0:
            payload_round_trip(packet.decode_payload(rest))
        elif mode == 1:
            payload_round_trip(packet.decode_payload(rest.decode("utf-8", "replace")))
        elif mode == 2:
            kind, text = packet.decode(rest.decode("utf-8", "replace"))
            if not 0 <= kind <= 6 or not isinstance(text, str):
                raise AssertionError(f"decode gave {(kind, text)!r}")
        else:
            if packet.decode(rest) != (packet.MESSAGE, rest):
                raise AssertionError("a binary frame must decode to a binary MESSAGE")
    except packet.PacketError:
        pass


if __name__ == "__main__":
    common.run(test_one_input, SEEDS)
