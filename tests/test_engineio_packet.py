"""Unit tests of the Engine.IO packet and payload codec (sans-I/O)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_ioengine.engineio import packet
from flask_ioengine.engineio.packet import PacketError


@pytest.mark.parametrize(
    ("type", "data", "wire"),
    [
        (packet.OPEN, '{"sid":"x"}', '0{"sid":"x"}'),
        (packet.CLOSE, None, "1"),
        (packet.PING, None, "2"),
        (packet.PING, "probe", "2probe"),
        (packet.PONG, "probe", "3probe"),
        (packet.MESSAGE, "héllo €", "4héllo €"),
        (packet.MESSAGE, "", "4"),
        (packet.UPGRADE, None, "5"),
        (packet.NOOP, None, "6"),
    ],
)
def test_encode_decode_text(type, data, wire):
    assert packet.encode(type, data) == wire
    assert packet.decode(wire) == (type, data or "")


def test_binary_message_is_raw_bytes_on_websocket():
    assert packet.encode(packet.MESSAGE, b"\x00\x01") == b"\x00\x01"
    assert packet.decode(b"\x00\x01") == (packet.MESSAGE, b"\x00\x01")
    assert packet.decode(bytearray(b"ab")) == (packet.MESSAGE, b"ab")


def test_only_messages_may_be_binary():
    with pytest.raises(PacketError):
        packet.encode(packet.PING, b"x")


def test_payload_joins_with_record_separator_and_base64():
    body = packet.encode_payload(["4hello", b"\x01\x02\x03", "2"])
    assert body == "4hello\x1ebAQID\x1e2"
    assert packet.decode_payload(body.encode()) == [
        (packet.MESSAGE, "hello"), (packet.MESSAGE, b"\x01\x02\x03"), (packet.PING, ""),
    ]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"9hello", id="unknown-type"),
        pytest.param(b"xhello", id="non-digit-type"),
        pytest.param(b"\x1e", id="separator-only"),
        pytest.param(b"4a\x1e\x1e4b", id="empty-packet-between-separators"),
        pytest.param(b"b!!!notbase64", id="bad-base64"),
        pytest.param(b"bAQI", id="truncated-base64"),
        pytest.param(b"4\xff\xfe", id="invalid-utf8"),
        pytest.param(b"\x1e" * 5000, id="separator-storm"),
    ],
)
def test_malformed_payloads_raise_packet_error(body):
    with pytest.raises(PacketError):
        packet.decode_payload(body)


def test_too_many_packets():
    with pytest.raises(PacketError):
        packet.decode_payload("\x1e".join(["6"] * 20), max_packets=10)


def test_empty_frame_is_an_error():
    with pytest.raises(PacketError):
        packet.decode("")


@given(st.binary(max_size=200))
def test_decode_payload_only_raises_packet_error(body):
    try:
        packet.decode_payload(body)
    except PacketError:
        pass


@given(st.lists(st.one_of(st.text(max_size=30), st.binary(max_size=30)), min_size=1, max_size=8))
def test_payload_round_trip(messages):
    # Text containing the separator cannot be framed in a payload (clients never send it).
    messages = [m.replace("\x1e", "") if isinstance(m, str) else m for m in messages]
    frames = [m if isinstance(m, bytes) else "4" + m for m in messages]
    decoded = packet.decode_payload(packet.encode_payload(frames).encode())
    assert decoded == [(packet.MESSAGE, m) for m in messages]
