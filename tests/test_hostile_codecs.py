"""Hostile input at the sans-I/O codecs: arbitrary polling payloads through both packet
decoders (property-based), and a WebSocket fragment storm through the frame parser."""

from __future__ import annotations

import base64
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st
from wsraw import CONT, TEXT, encode_frame

from flask_ioengine.engineio import packet as eio
from flask_ioengine.engineio import wsframe
from flask_ioengine.socketio import packet as sio

# -- Engine.IO payloads carrying Socket.IO packets -----------------------------------------

# Pieces of the Socket.IO grammar, so random text often gets deep into the decoder.
_PIECES = st.sampled_from([
    "0", "1", "2", "3", "4", "5", "6", "9", "-", "/", ",", "/admin,", "[", "]", "{", "}", '"',
    ":", ",", '"_placeholder"', '"num"', "true", "false", "null", "-1", "0.5", "1e999", "NaN",
    "99999999999999999", '"x"', "\\", "\\ud800", " ", "\u00e4", "\x00", "\x1e",
])
_SIO_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=24).map("".join)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                           allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
_DATA = st.recursive(
    _JSON | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@st.composite
def _valid_packets(draw: st.DrawFn) -> list[str]:
    """A well-formed Socket.IO packet (with its attachments) as Engine.IO payload parts."""
    kind = draw(st.sampled_from([sio.EVENT, sio.ACK, sio.CONNECT, sio.DISCONNECT]))
    nsp = draw(st.sampled_from(["/", "/admin", "/a"]))
    if kind == sio.EVENT:
        data: object = [draw(st.text(max_size=8)), *draw(st.lists(_DATA, max_size=3))]
        pid = draw(st.none() | st.integers(0, 10**6))
    elif kind == sio.ACK:
        data, pid = draw(st.lists(_DATA, max_size=3)), draw(st.integers(0, 10**6))
    elif kind == sio.CONNECT:
        data, pid = draw(st.none() | st.dictionaries(st.text(max_size=8), _JSON, max_size=3)), None
    else:
        data, pid = None, None
    parts = sio.encode(sio.Packet(kind, nsp, data, pid))
    return ["4" + p if isinstance(p, str) else "b" + base64.b64encode(p).decode() for p in parts]


_PART = st.one_of(
    _SIO_TEXT.map(lambda s: "4" + s),  # a MESSAGE holding Socket.IO-looking text
    st.binary(max_size=12).map(lambda b: "b" + base64.b64encode(b).decode()),  # attachment
    st.sampled_from(["", "1", "2", "3", "6", "5", "b", "b=", "bA", "4", "40", "451-"]),
    st.text(max_size=8),
)
_JOINED = st.lists(st.one_of(_PART, _valid_packets().map("\x1e".join)), max_size=8).map(
    "\x1e".join)
PAYLOADS = st.one_of(
    _JOINED,
    _JOINED.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
)


@settings(max_examples=400, deadline=None)
@given(PAYLOADS)
def test_payload_through_both_decoders_raises_only_packet_errors(body: str | bytes) -> None:
    """Whatever a polling POST holds: decode_payload, then every MESSAGE through one
    Socket.IO Decoder (as the server does); nothing but PacketError may escape."""
    try:
        packets = eio.decode_payload(body)
    except eio.PacketError:
        return
    decoder = sio.Decoder()
    for kind, data in packets:
        if kind != eio.MESSAGE:
            continue
        try:
            decoder.feed(data)
        except sio.PacketError:
            pass


# -- a WebSocket fragment storm ------------------------------------------------------------


def test_empty_fragment_storm_keeps_memory_bounded() -> None:
    parser = wsframe.Parser(max_message=1000)
    parser.feed(encode_frame(TEXT, b"4", fin=False))
    assert parser.next() is None
    storm = encode_frame(CONT, b"", fin=False, mask_key=b"\0\0\0\0") * 10_000
    tracemalloc.start()
    try:
        for _ in range(10):
            parser.feed(storm)
            assert parser.next() is None
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 100,000 empty fragments must not cost more than a fixed amount (not 8 bytes each).
    assert grown < 256 * 1024, f"{grown} bytes held after 100,000 empty fragments"
    parser.feed(encode_frame(CONT, b"ok"))
    assert parser.next() == ("text", "4ok")
