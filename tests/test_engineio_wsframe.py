"""Unit tests of the sans-I/O WebSocket frame codec (RFC 6455 / 7692)."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_ioengine.engineio import wsframe
from flask_ioengine.engineio.wsframe import FrameError, Parser


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0,
                 masked: bool = True, length: int | None = None) -> bytes:
    """A frame as a client sends it (masked)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | opcode
    if n < 126:
        head = bytes((b0, (0x80 if masked else 0) | n))
    elif n < 65536:
        head = bytes((b0, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + wsframe.unmask(payload, mask)


def parse(data: bytes, max_message: int = 1_000_000, deflate: bool = False) -> list:
    p = Parser(max_message, deflate)
    p.feed(data)
    out = []
    while (event := p.next()) is not None:
        out.append(event)
    return out


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_and_binary_of_every_length_class(size):
    text = ("é" * size)[:size]
    assert parse(client_frame(wsframe.TEXT, text.encode())) == [("text", text)]
    data = os.urandom(size)
    assert parse(client_frame(wsframe.BINARY, data)) == [("binary", data)]


def test_byte_by_byte_feeding():
    data = client_frame(wsframe.TEXT, b"hello") + client_frame(wsframe.PING, b"x")
    p = Parser(1000)
    events = []
    for b in data:
        p.feed(bytes([b]))
        while (e := p.next()) is not None:
            events.append(e)
    assert events == [("text", "hello"), ("ping", b"x")]


def test_fragmented_message_with_control_frame_between():
    data = (client_frame(wsframe.TEXT, b"hel", fin=False)
            + client_frame(wsframe.PING, b"p")
            + client_frame(wsframe.CONTINUATION, b"lo"))
    assert parse(data) == [("ping", b"p"), ("text", "hello")]


def test_close_frames():
    assert parse(client_frame(wsframe.CLOSE, b"")) == [("close", 1005, "")]
    assert parse(client_frame(wsframe.CLOSE, (1000).to_bytes(2, "big") + b"bye")) == [
        ("close", 1000, "bye")]
    assert parse(client_frame(wsframe.CLOSE, (4001).to_bytes(2, "big"))) == [("close", 4001, "")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(client_frame(wsframe.TEXT, b"x", masked=False), 1002, id="unmasked"),
        pytest.param(client_frame(0x3, b"x"), 1002, id="reserved-opcode-3"),
        pytest.param(client_frame(0xB, b"x"), 1002, id="reserved-control-opcode"),
        pytest.param(client_frame(wsframe.TEXT, b"x", rsv=0x40), 1002, id="rsv1-without-deflate"),
        pytest.param(client_frame(wsframe.TEXT, b"x", rsv=0x20), 1002, id="rsv2"),
        pytest.param(client_frame(wsframe.PING, b"x", fin=False), 1002, id="fragmented-ping"),
        pytest.param(client_frame(wsframe.PING, b"x" * 126), 1002, id="oversized-ping"),
        pytest.param(client_frame(wsframe.CONTINUATION, b"x"), 1002, id="lone-continuation"),
        pytest.param(client_frame(wsframe.TEXT, b"a", fin=False) + client_frame(wsframe.TEXT, b"b"),
                     1002, id="message-inside-message"),
        pytest.param(client_frame(wsframe.TEXT, b"\xff\xfe"), 1007, id="invalid-utf8"),
        pytest.param(client_frame(wsframe.TEXT, b"\xed\xa0\x80"), 1007, id="utf8-surrogate"),
        pytest.param(client_frame(wsframe.CLOSE, b"\x03"), 1002, id="one-byte-close"),
        pytest.param(client_frame(wsframe.CLOSE, (999).to_bytes(2, "big")), 1002, id="close-999"),
        pytest.param(client_frame(wsframe.CLOSE, (1005).to_bytes(2, "big")), 1002, id="close-1005"),
        pytest.param(client_frame(wsframe.CLOSE, (5000).to_bytes(2, "big")), 1002, id="close-5000"),
        pytest.param(client_frame(wsframe.CLOSE, b"\x03\xe8\xff"), 1007, id="close-reason-utf8"),
        pytest.param(client_frame(wsframe.BINARY, b"", length=2**62), 1009, id="absurd-length"),
        pytest.param(bytes((0x82, 0xFF)) + b"\xff" * 8, 1002, id="length-high-bit"),
        pytest.param(client_frame(wsframe.BINARY, b"x" * 2000), 1009, id="over-max-message"),
    ],
)
def test_violations_raise_frame_error_with_the_close_code(data, code):
    with pytest.raises(FrameError) as err:
        parse(data, max_message=1000)
    assert err.value.code == code


def test_fragments_over_the_limit_are_refused_before_buffering():
    p = Parser(100)
    p.feed(client_frame(wsframe.BINARY, b"x" * 60, fin=False))
    assert p.next() is None
    p.feed(client_frame(wsframe.CONTINUATION, b"", length=60)[:6])  # header only
    with pytest.raises(FrameError) as err:
        p.next()
    assert err.value.code == 1009


def test_server_frames():
    assert wsframe.frame(wsframe.TEXT, b"hi") == b"\x81\x02hi"
    assert wsframe.message_frame(b"\x00" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert wsframe.message_frame("x" * 70000)[:2] == b"\x81\x7f"
    assert wsframe.close_frame(1000, "bye") == b"\x88\x05\x03\xe8bye"


def test_deflate_round_trip_and_threshold():
    text = "compress me " * 500
    framed = wsframe.message_frame(text, deflate_threshold=1024)
    assert framed[0] == 0xC1 and len(framed) < len(text) // 4  # FIN + RSV1 + TEXT
    assert wsframe.message_frame("short", deflate_threshold=1024) == b"\x81\x05short"
    payload = framed[2:] if framed[1] < 126 else framed[4:]
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    body = deflater.compress(text.encode()) + deflater.flush(zlib.Z_SYNC_FLUSH)
    assert parse(client_frame(wsframe.TEXT, body[:-4], rsv=0x40), deflate=True) == [("text", text)]
    assert zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff") == text.encode()


def test_deflate_bomb_is_refused():
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflater.compress(b"\x00" * 5_000_000) + deflater.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(FrameError) as err:
        parse(client_frame(wsframe.BINARY, body[:-4], rsv=0x40), max_message=100_000, deflate=True)
    assert err.value.code == 1009


@pytest.mark.parametrize(("offer", "accepted"), [
    (None, False),
    ("permessage-deflate", True),
    ("permessage-deflate; client_max_window_bits", True),
    ("x-webkit-deflate-frame", False),
    ("permessage-deflate; server_max_window_bits=10", False),
    ("permessage-deflate; unknown=1, permessage-deflate", True),
])
def test_negotiation(offer, accepted):
    assert (wsframe.negotiate_deflate(offer) is not None) == accepted


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8), st.booleans())
def test_parser_only_raises_frame_error(chunks, deflate):
    p = Parser(1000, deflate)
    try:
        for chunk in chunks:
            p.feed(chunk)
            while p.next() is not None:
                pass
    except FrameError:
        pass


def test_shared_messages_are_framed_once_and_identically() -> None:
    text, blob = "4" + "x" * 300, b"\x01\x02" * 100
    wsframe.share([text, blob])
    first = wsframe.shared_frame(text)
    assert first == wsframe.message_frame(text)
    assert wsframe.shared_frame(text) is first  # reused, not framed again
    assert wsframe.shared_frame(blob) == wsframe.message_frame(blob)
    # another deflate threshold frames anew (and stays correct)
    assert wsframe.shared_frame(text, 0) == wsframe.message_frame(text, 0)
    # a message never shared, even equal to a shared one, is framed as usual
    other = "".join(["4", "x" * 300])
    assert other is not text and wsframe.shared_frame(other) == first


def test_the_shared_table_stays_bounded() -> None:
    for i in range(3 * wsframe._SHARED_MAX):
        wsframe.share([f"4message {i}"])
    assert len(wsframe._SHARED) <= wsframe._SHARED_MAX
