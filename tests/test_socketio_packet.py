"""Unit and property tests for the Socket.IO v5 packet codec (flask_ioengine.socketio.packet)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_ioengine.socketio.packet import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    Decoder,
    Packet,
    PacketError,
    encode,
)

Feed = str | bytes
PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'
VALID_TEXT = '2["ok",1]'
VALID_PACKET = Packet(EVENT, "/", ["ok", 1])


def decode_all(*feeds: Feed, decoder: Decoder | None = None) -> Packet:
    """Feed every message; all but the last must leave the packet incomplete."""
    dec = decoder or Decoder()
    for item in feeds[:-1]:
        assert dec.feed(item) is None
        assert dec.awaiting_attachments
    packet = dec.feed(feeds[-1])
    assert packet is not None
    assert not dec.awaiting_attachments
    return packet


def normalise(data: Any) -> Any:
    """What the decoder gives back for ``data``: tuples as lists, binary as bytes."""
    if isinstance(data, (list, tuple)):
        return [normalise(item) for item in data]
    if isinstance(data, dict):
        return {key: normalise(value) for key, value in data.items()}
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return data


def has_binary(data: Any) -> bool:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return True
    if isinstance(data, (list, tuple)):
        return any(has_binary(item) for item in data)
    if isinstance(data, dict):
        return any(has_binary(value) for value in data.values())
    return False


# ------------------------------------------------------------------ known wire strings

WIRE = [
    pytest.param(["0"], Packet(CONNECT), id="connect-main"),
    pytest.param(
        ['0/admin,{"token":"123"}'],
        Packet(CONNECT, "/admin", {"token": "123"}),
        id="connect-admin-auth",
    ),
    pytest.param(['0{"sid":"abc"}'], Packet(CONNECT, "/", {"sid": "abc"}), id="connect-sid"),
    pytest.param(["1"], Packet(DISCONNECT), id="disconnect-main"),
    pytest.param(["1/admin,"], Packet(DISCONNECT, "/admin"), id="disconnect-admin"),
    pytest.param(['2["hello",1]'], Packet(EVENT, "/", ["hello", 1]), id="event"),
    pytest.param(
        ['2/admin,456["project:delete",123]'],
        Packet(EVENT, "/admin", ["project:delete", 123], 456),
        id="event-nsp-id",
    ),
    pytest.param(['2[7,"x"]'], Packet(EVENT, "/", [7, "x"]), id="event-int-name"),
    pytest.param(["3/admin,456[]"], Packet(ACK, "/admin", [], 456), id="ack-empty"),
    pytest.param(['30["a",{"b":null}]'], Packet(ACK, "/", ["a", {"b": None}], 0), id="ack-id0"),
    pytest.param(
        ['4{"message":"Not authorized"}'],
        Packet(CONNECT_ERROR, "/", {"message": "Not authorized"}),
        id="connect-error-object",
    ),
    pytest.param(
        ['4/admin,"Not authorized"'],
        Packet(CONNECT_ERROR, "/admin", "Not authorized"),
        id="connect-error-string",
    ),
    pytest.param(
        [f'51-["hello",{PH0}]', b"\x01\x02\x03"],
        Packet(BINARY_EVENT, "/", ["hello", b"\x01\x02\x03"]),
        id="binary-event",
    ),
    pytest.param(
        [f"61-/admin,456[{PH0}]", b"\x03\x02\x01"],
        Packet(BINARY_ACK, "/admin", [b"\x03\x02\x01"], 456),
        id="binary-ack",
    ),
    pytest.param(
        [f'52-/chat,9["up",{{"a":[{PH0},{{"b":{PH1}}}]}}]', b"zero", b"one"],
        Packet(BINARY_EVENT, "/chat", ["up", {"a": [b"zero", {"b": b"one"}]}], 9),
        id="binary-nested",
    ),
]


@pytest.mark.parametrize(("feeds", "expected"), WIRE)
def test_decode_known_wire(feeds: list[Feed], expected: Packet) -> None:
    assert decode_all(*feeds) == expected


@pytest.mark.parametrize(("feeds", "expected"), WIRE)
def test_encode_known_wire(feeds: list[Feed], expected: Packet) -> None:
    assert encode(expected) == feeds


def test_decode_binary_count_zero_completes_at_once() -> None:
    dec = Decoder()
    assert dec.feed('50-["a"]') == Packet(BINARY_EVENT, "/", ["a"])
    assert not dec.awaiting_attachments


def test_decode_placeholders_out_of_order() -> None:
    text = f'52-["x",{PH1},{PH0}]'
    assert decode_all(text, b"A", b"B") == Packet(BINARY_EVENT, "/", ["x", b"B", b"A"])


def test_decode_attachment_buffer_types() -> None:
    packet = decode_all(f'52-["x",{PH0},{PH1}]', bytearray(b"A"), memoryview(b"B"))  # type: ignore[arg-type]
    assert packet.data == ["x", b"A", b"B"]
    assert all(type(item) is bytes for item in packet.data[1:])


def test_placeholder_in_text_packet_is_plain_data() -> None:
    packet = decode_all(f'2["x",{PH0}]')
    assert packet == Packet(EVENT, "/", ["x", {"_placeholder": True, "num": 0}])


def test_non_placeholder_dicts_in_binary_packet_kept() -> None:
    text = f'51-["x",{{"_placeholder":false,"num":3}},{PH0}]'
    packet = decode_all(text, b"z")
    assert packet.data == ["x", {"_placeholder": False, "num": 3}, b"z"]


def test_namespace_limits() -> None:
    nsp = "/" + "n" * 255
    assert decode_all(f'2{nsp},["a"]') == Packet(EVENT, nsp, ["a"])
    assert decode_all(f"1{nsp}") == Packet(DISCONNECT, nsp)


def test_id_limits() -> None:
    assert decode_all('2999999999999999["a"]').id == 999_999_999_999_999


def test_decoder_limits_are_configurable() -> None:
    dec = Decoder(max_attachments=2, max_depth=3)
    assert dec.feed('2["a",[["b"]]]') == Packet(EVENT, "/", ["a", [["b"]]])
    with pytest.raises(PacketError):
        dec.feed('2["a",[[["b"]]]]')
    with pytest.raises(PacketError):
        dec.feed(f'53-["a",{PH0},{PH1},{{"_placeholder":true,"num":2}}]')
    assert decode_all(f'52-["a",{PH0},{PH1}]', b"0", b"1", decoder=dec).data == ["a", b"0", b"1"]


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    name = "[" * 100 + "{" * 100
    assert decode_all("2" + json.dumps(["e", name])).data == ["e", name]


def test_many_shallow_brackets_accepted() -> None:
    data = ["e", [[i] for i in range(500)], [{"k": [1]} for _ in range(100)]]
    assert decode_all("2" + json.dumps(data)).data == data


def test_lone_surrogate_round_trip() -> None:
    packet = decode_all('2["ev","\\ud800x"]')
    assert packet.data == ["ev", "\ud800x"]
    [text] = encode(packet)
    assert isinstance(text, str)
    text.encode("utf-8")  # must stay valid UTF-8 for the transport
    assert decode_all(text) == packet


def test_unicode_round_trip_not_escaped() -> None:
    packet = Packet(EVENT, "/ünï", ["héllo", {"émoji": "😀", "cjk": "漢字"}], 3)
    [text] = encode(packet)
    assert isinstance(text, str)
    assert "😀" in text and "\\u" not in text
    assert decode_all(text) == packet


# ------------------------------------------------------------------ round trips

ROUND_TRIP = [
    Packet(CONNECT),
    Packet(CONNECT, "/admin"),
    Packet(CONNECT, "/", {"token": "t", "n": [1, 2.5, None, True]}),
    Packet(DISCONNECT, "/a/b"),
    Packet(EVENT, "/", ["ev"]),
    Packet(EVENT, "/", ["ev", 1, -2, 3.25, True, False, None, "", {}, []], 0),
    Packet(EVENT, "/ns", ["ev", {"nested": {"deep": [1, [2, [3]]]}}], 42),
    Packet(EVENT, "/", [0, "numeric event name"]),
    Packet(ACK, "/", [], 1),
    Packet(ACK, "/x", ["r", {"ok": True}], 999_999_999_999_999),
    Packet(CONNECT_ERROR, "/", {"message": "nope", "data": {"code": 4}}),
    Packet(CONNECT_ERROR, "/private", "legacy string"),
    Packet(EVENT, "/", ["bin", b""], 5),
    Packet(EVENT, "/", ["bin", b"\x00\xff", {"k": [b"a", {"z": b"b"}]}, [b"c"]]),
    Packet(ACK, "/bin", [b"only"], 7),
    Packet(ACK, "/", [{"a": bytearray(b"ba")}, (memoryview(b"mv"), "t")], 8),
    Packet(EVENT, "/", ("tuple", ("nested", 1), {"t": (1, 2)})),
]


@pytest.mark.parametrize("packet", ROUND_TRIP, ids=repr)
def test_round_trip(packet: Packet) -> None:
    before = copy.deepcopy(normalise(packet.data))
    encoded = encode(packet)
    assert all(type(part) is bytes for part in encoded[1:])
    decoded = decode_all(*encoded)
    expected_type = packet.type
    if has_binary(packet.data):
        expected_type = BINARY_EVENT if packet.type == EVENT else BINARY_ACK
    assert decoded == Packet(expected_type, packet.nsp, normalise(packet.data), packet.id)
    assert normalise(packet.data) == before


def test_encode_does_not_mutate_input() -> None:
    blob = b"payload"
    inner = {"file": blob, "list": [blob, bytearray(b"x")]}
    data = ["upload", inner, (blob,)]
    snapshot = copy.deepcopy(data)
    packet = Packet(EVENT, "/", data, 3)
    first = encode(packet)
    second = encode(packet)
    assert first == second
    assert data == snapshot
    assert data[1] is inner and inner["file"] is blob
    assert first[0] == (
        '54-3["upload",{"file":{"_placeholder":true,"num":0},"list":'
        '[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]},'
        '[{"_placeholder":true,"num":3}]]'
    )
    assert first[1:] == [b"payload", b"payload", b"x", b"payload"]


def test_encode_binary_type_without_binary_is_plain() -> None:
    assert encode(Packet(BINARY_EVENT, "/", ["a"])) == ['2["a"]']
    assert encode(Packet(BINARY_ACK, "/", ["a"], 1)) == ['31["a"]']


def test_encode_compact_json() -> None:
    assert encode(Packet(EVENT, "/", ["echo", "hello"], 12)) == ['212["echo","hello"]']
    assert encode(Packet(EVENT, "/", ["a", {"b": [1, 2]}])) == ['2["a",{"b":[1,2]}]']


@pytest.mark.parametrize(
    ("packet", "error"),
    [
        pytest.param(Packet(EVENT, "/", ["a", float("nan")]), ValueError, id="nan"),
        pytest.param(Packet(EVENT, "/", ["a", float("inf")]), ValueError, id="infinity"),
        pytest.param(Packet(EVENT, "/", ["a", object()]), TypeError, id="not-serialisable"),
        pytest.param(Packet(EVENT, "/", ["a", {1, 2}]), TypeError, id="set"),
        pytest.param(Packet(EVENT, "/", 5), TypeError, id="scalar-payload"),
        pytest.param(Packet(CONNECT, "/", {"b": b"x"}), TypeError, id="binary-in-connect"),
        pytest.param(Packet(EVENT, "admin", ["a"]), ValueError, id="nsp-without-slash"),
        pytest.param(Packet(EVENT, "/a,b", ["a"]), ValueError, id="nsp-with-comma"),
        pytest.param(Packet(EVENT, "/" + "x" * 256, ["a"]), ValueError, id="nsp-too-long"),
        pytest.param(Packet(ACK, "/", [], -1), ValueError, id="negative-id"),
        pytest.param(Packet(ACK, "/", [], 10**15), ValueError, id="id-too-big"),
        pytest.param(Packet(9, "/", ["a"]), ValueError, id="unknown-type"),
        pytest.param(Packet(-1, "/", ["a"]), ValueError, id="negative-type"),
    ],
)
def test_encode_rejects(packet: Packet, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode(packet)


def test_packet_repr_and_eq() -> None:
    packet = Packet(ACK, "/a", [1], 2)
    assert repr(packet) == "Packet(type=3, nsp='/a', data=[1], id=2)"
    assert packet == Packet(ACK, "/a", [1], 2)
    assert packet != Packet(ACK, "/a", [1], 3)
    assert packet != "Packet"


# ------------------------------------------------------------------ malformed input

DEEP = 100_000
MALFORMED = [
    pytest.param([""], id="empty-string"),
    pytest.param(["7"], id="unknown-type-digit"),
    pytest.param(['9["a"]'], id="unknown-type-nine"),
    pytest.param(['x["a"]'], id="non-digit-type"),
    pytest.param(['\u0662["a"]'], id="non-ascii-digit-type"),
    pytest.param([b"\x00\x01"], id="bytes-first"),
    pytest.param([b"\xff\xfe\xfd"], id="invalid-utf8-bytes"),
    pytest.param([b'2["a"]'], id="text-as-bytes"),
    pytest.param([f'51-["a",{PH0}]', '2["b"]'], id="str-while-awaiting"),
    pytest.param(['2["a"'], id="invalid-json-truncated"),
    pytest.param(['2["a"]x'], id="invalid-json-trailing"),
    pytest.param(["2['a']"], id="invalid-json-quotes"),
    pytest.param(['2["a\x00"]'], id="control-char-in-string"),
    pytest.param(['2["a",NaN]'], id="nan-constant"),
    pytest.param(['2["a",-Infinity]'], id="infinity-constant"),
    pytest.param(['2["a",1e999]'], id="float-overflow"),
    pytest.param(['2["a",' + "1" * 5000 + "]"], id="huge-int-literal"),
    pytest.param(['2{"a":1}'], id="event-object-payload"),
    pytest.param(['2"hello"'], id="event-string-payload"),
    pytest.param(["2"], id="event-no-payload"),
    pytest.param(["2[]"], id="event-empty-array"),
    pytest.param(["2[{}]"], id="event-name-object"),
    pytest.param(["2[true]"], id="event-name-bool"),
    pytest.param(["2[null]"], id="event-name-null"),
    pytest.param(["2[1.5]"], id="event-name-float"),
    pytest.param(['2["a",' + "[" * DEEP + "]" * DEEP + "]"], id="deep-nesting-100000"),
    pytest.param(['2["a",' + "[" * 32 + "]" * 32 + "]"], id="nesting-just-over-limit"),
    pytest.param(['2["a",' + '{"k":' * 40 + "1" + "}" * 40 + "]"], id="deep-objects"),
    pytest.param(["2" + "[" * DEEP], id="unbalanced-deep-open"),
    pytest.param(["2" + "]" * 100], id="unbalanced-close"),
    pytest.param([f'5999999999-["a",{PH0}]'], id="absurd-attachment-count"),
    pytest.param([f'511-["a",{PH0}]'], id="attachment-count-over-max"),
    pytest.param([f'51["a",{PH0}]'], id="attachment-count-missing-dash"),
    pytest.param([f'5["a",{PH0}]'], id="attachment-count-missing"),
    pytest.param([f'5-["a",{PH0}]'], id="attachment-count-empty"),
    pytest.param(['21-["a"]'], id="attachment-count-on-event"),
    pytest.param(['51-["a",{"_placeholder":true,"num":1}]'], id="placeholder-num-out-of-range"),
    pytest.param(['51-["a",{"_placeholder":true,"num":-1}]'], id="placeholder-num-negative"),
    pytest.param(['51-["a",{"_placeholder":true,"num":true}]'], id="placeholder-num-bool"),
    pytest.param(['51-["a",{"_placeholder":true,"num":"0"}]'], id="placeholder-num-string"),
    pytest.param(['51-["a",{"_placeholder":true,"num":0.0}]'], id="placeholder-num-float"),
    pytest.param(['51-["a",{"_placeholder":true}]'], id="placeholder-num-missing"),
    pytest.param(['51-["a",{"_placeholder":true,"num":0,"x":1}]'], id="placeholder-extra-key"),
    pytest.param([f'52-["a",{PH0},{PH0}]'], id="placeholder-duplicate"),
    pytest.param([f'52-["a",{PH0}]'], id="placeholders-fewer-than-count"),
    pytest.param([f'51-["a",{PH0},{PH1}]'], id="placeholders-more-than-count"),
    pytest.param([f'50-["a",{PH0}]'], id="placeholder-with-count-zero"),
    pytest.param(['51-["a"]'], id="placeholders-none"),
    pytest.param([f"51-[{PH0}]"], id="placeholder-as-event-name"),
    pytest.param([f"61-[{PH0}]"], id="binary-ack-without-id"),
    pytest.param([f'51-["a",{PH0}]', b"x", b"y"], id="attachment-after-complete"),
    pytest.param(["3[]"], id="ack-without-id"),
    pytest.param(['31{"a":1}'], id="ack-object-payload"),
    pytest.param(["31"], id="ack-no-payload"),
    pytest.param(["2" + "1" * 20 + '["a"]'], id="id-20-digits"),
    pytest.param(["2" + "1" * 16 + '["a"]'], id="id-16-digits"),
    pytest.param(["2/" + "n" * 256 + ',["a"]'], id="nsp-too-long"),
    pytest.param(["1/" + "n" * 10_000], id="nsp-too-long-no-comma"),
    pytest.param(["0[]"], id="connect-array"),
    pytest.param(['0"token"'], id="connect-string"),
    pytest.param(["01{}"], id="connect-with-id"),
    pytest.param(["1{}"], id="disconnect-with-data"),
    pytest.param(["11"], id="disconnect-with-id"),
    pytest.param(["4-1"], id="connect-error-number"),
    pytest.param(["4null"], id="connect-error-null"),
    pytest.param(["4"], id="connect-error-empty"),
    pytest.param(['41{"message":"x"}'], id="connect-error-with-id"),
]


@pytest.mark.parametrize("feeds", MALFORMED)
def test_malformed_rejected_then_reset(feeds: list[Feed]) -> None:
    dec = Decoder()
    for item in feeds[:-1]:
        dec.feed(item)
    with pytest.raises(PacketError) as info:
        dec.feed(feeds[-1])
    assert type(info.value) is PacketError
    assert len(str(info.value)) < 80
    assert not dec.awaiting_attachments
    assert dec.feed(VALID_TEXT) == VALID_PACKET
    assert decode_all(f'51-["b",{PH0}]', b"ok", decoder=dec).data == ["b", b"ok"]


@pytest.mark.parametrize("bad", [None, 12, ["2[]"]], ids=["none", "int", "list"])
def test_feed_non_message_types(bad: Any) -> None:
    dec = Decoder()
    with pytest.raises(PacketError):
        dec.feed(bad)
    dec.feed(f'51-["a",{PH0}]')
    with pytest.raises(PacketError):
        dec.feed(bad)
    assert not dec.awaiting_attachments


def test_error_message_does_not_echo_input() -> None:
    secret = "s3cr3t-token-value"
    with pytest.raises(PacketError) as info:
        Decoder().feed(f'0["{secret}"]')
    assert secret not in str(info.value)


# ------------------------------------------------------------------ properties

FAST = settings(max_examples=300, deadline=None)

binary_leaf = st.one_of(st.binary(max_size=16), st.binary(max_size=8).map(bytearray))
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_key = st.text(max_size=8).filter(lambda key: key != "_placeholder")
json_like = st.recursive(
    st.one_of(json_scalar, binary_leaf),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(json_key, children, max_size=4),
    ),
    max_leaves=20,
)
namespaces = st.one_of(
    st.just("/"),
    st.text(max_size=20).filter(lambda s: "," not in s).map(lambda s: "/" + s),
)
ids = st.integers(min_value=0, max_value=10**15 - 1)
event_name = st.one_of(st.text(max_size=10), st.integers(min_value=0, max_value=10**6))


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    nsp = draw(namespaces)
    kind = draw(st.sampled_from(["connect", "disconnect", "event", "ack", "error"]))
    if kind == "connect":
        data = draw(
            st.none() | st.dictionaries(json_key, json_like.filter(lambda d: not has_binary(d)))
        )
        return Packet(CONNECT, nsp, data)
    if kind == "disconnect":
        return Packet(DISCONNECT, nsp)
    if kind == "error":
        reason = draw(
            st.text(max_size=20) | st.fixed_dictionaries({"message": st.text(max_size=20)})
        )
        return Packet(CONNECT_ERROR, nsp, reason)
    args = draw(st.lists(json_like, max_size=4))
    if kind == "event":
        return Packet(EVENT, nsp, [draw(event_name), *args], draw(st.none() | ids))
    return Packet(ACK, nsp, args, draw(ids))


@FAST
@given(packets())
def test_property_round_trip(packet: Packet) -> None:
    encoded = encode(packet)
    decoded = decode_all(*encoded, decoder=Decoder(max_attachments=1000))
    expected_type = packet.type
    if has_binary(packet.data):
        expected_type = BINARY_EVENT if packet.type == EVENT else BINARY_ACK
    assert decoded == Packet(expected_type, packet.nsp, normalise(packet.data), packet.id)
    assert len(encoded) == 1 + sum(1 for _ in iter_binary(packet.data))


def iter_binary(data: Any) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield data
    elif isinstance(data, (list, tuple)):
        for item in data:
            yield from iter_binary(item)
    elif isinstance(data, dict):
        for value in data.values():
            yield from iter_binary(value)


def feed_quietly(dec: Decoder, item: Feed) -> None:
    try:
        dec.feed(item)
    except PacketError:
        assert not dec.awaiting_attachments


@FAST
@given(st.text())
def test_property_arbitrary_text_only_packet_error(text: str) -> None:
    feed_quietly(Decoder(), text)


@FAST
@given(st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=8)), max_size=8))
def test_property_arbitrary_feeds_only_packet_error(feeds: list[Feed]) -> None:
    dec = Decoder(max_attachments=3)
    for item in feeds:
        feed_quietly(dec, item)


placeholder_like = st.fixed_dictionaries(
    {
        "_placeholder": st.sampled_from([True, True, False, 1]),
        "num": st.one_of(
            st.integers(min_value=-2, max_value=4), st.booleans(), st.text(max_size=2), st.floats()
        ),
    }
)
structured_json = st.recursive(
    st.one_of(json_scalar, placeholder_like),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_key, children, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def near_valid_text(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from("0123456789x"))
    if draw(st.booleans()):
        head += draw(st.sampled_from(["", "0", "1", "2", "3", "12", "99999999999"])) + "-"
    if draw(st.booleans()):
        head += draw(st.sampled_from(["/", "/a", "/admin", "/x,y"])) + draw(
            st.sampled_from([",", ""])
        )
    if draw(st.booleans()):
        head += str(draw(st.integers(min_value=0, max_value=10**20)))
    body = json.dumps(draw(structured_json), separators=(",", ":"))
    return head + draw(st.sampled_from([body, body[:-1], "", body + "]"]))


@FAST
@given(near_valid_text(), st.lists(st.binary(max_size=4), max_size=4))
def test_property_near_valid_input_only_packet_error(text: str, blobs: list[bytes]) -> None:
    dec = Decoder(max_attachments=3, max_depth=4)
    feed_quietly(dec, text)
    for blob in blobs:
        feed_quietly(dec, blob)
    if dec.awaiting_attachments:
        with pytest.raises(PacketError):
            dec.feed(VALID_TEXT)
    assert dec.feed(VALID_TEXT) == VALID_PACKET
