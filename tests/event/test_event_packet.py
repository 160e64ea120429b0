"""Byte-for-byte tests of the socket.io 0.9 codec (reviewd.api.event.packet)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reviewd.api.event import packet
from reviewd.api.event.packet import Handshake, Packet, PacketError, PacketType

ENCODED = [
    (Packet(PacketType.DISCONNECT), "0::"),
    (Packet(PacketType.CONNECT), "1::"),
    (Packet(PacketType.HEARTBEAT), "2::"),
    (Packet(PacketType.MESSAGE, data="hello:world"), "3:::hello:world"),
    (Packet(PacketType.JSON, "1", "", '{"a":1}'), '4:1::{"a":1}'),
    (Packet(PacketType.EVENT, "7+", "", '{"name":"x","args":[]}'), '5:7+::{"name":"x","args":[]}'),
    (Packet(PacketType.ACK, data='7+[{"success":true}]'), '6:::7+[{"success":true}]'),
    (Packet(PacketType.ERROR, endpoint="/chat", data="reason"), "7::/chat:reason"),
    (Packet(PacketType.NOOP), "8::"),
    (Packet(PacketType.CONNECT, endpoint="/events"), "1::/events"),
]


@pytest.mark.parametrize(("value", "text"), ENCODED)
def test_packet_encode_is_byte_exact(value, text):
    assert packet.encode(value) == text


@pytest.mark.parametrize(("value", "text"), ENCODED)
def test_packet_decode_inverts_encode(value, text):
    assert packet.decode(text) == value


def test_packet_decode_keeps_colons_inside_data():
    decoded = packet.decode('5:::{"name":"ftrack.event","args":[{"t":"a:b:c"}]}')
    assert decoded.type is PacketType.EVENT
    assert decoded.data == '{"name":"ftrack.event","args":[{"t":"a:b:c"}]}'


def test_packet_decode_trailing_empty_data_is_empty():
    assert packet.decode("2:::") == Packet(PacketType.HEARTBEAT)


def test_packet_ack_requested_flag():
    assert packet.decode("5:12+::{}").ack_requested
    assert not packet.decode("5:12::{}").ack_requested
    assert not packet.decode("2::").ack_requested


@pytest.mark.parametrize(
    "text",
    ["", "2", "2:", "x::", "9::", "10::", "-1::", "5:abc::{}", "5:+::{}", "5:1++::{}", " 2::"],
)
def test_packet_decode_rejects_malformed_frames(text):
    with pytest.raises(PacketError):
        packet.decode(text)


def test_packet_error_truncates_long_input():
    with pytest.raises(PacketError) as info:
        packet.decode("x" * 10_000)
    assert len(info.value.text) < 300
    assert "more]" in info.value.text


def test_packet_event_builder_is_compact_json():
    built = packet.event("ftrack.event", [{"topic": "a", "data": {"é": 1}}], id="3+")
    assert (
        packet.encode(built)
        == '5:3+::{"name":"ftrack.event","args":[{"topic":"a","data":{"é":1}}]}'
    )


def test_packet_event_round_trip():
    args = [{"id": "1", "topic": "ftrack.update", "data": {"n": [1, 2, None]}}]
    assert packet.parse_event(packet.decode(packet.encode(packet.event("ftrack.event", args)))) == (
        "ftrack.event",
        args,
    )


def test_packet_event_builder_rejects_unserialisable_args():
    with pytest.raises(TypeError):
        packet.event("ftrack.event", [object()])


@pytest.mark.parametrize(
    "data",
    [
        "",
        "{",
        '{"name": "x", "args": [',
        "[]",
        '"text"',
        '{"args": []}',
        '{"name": 3}',
        '{"name": "x", "args": {}}',
    ],
)
def test_packet_parse_event_rejects_bad_payloads(data):
    with pytest.raises(PacketError):
        packet.parse_event(Packet(PacketType.EVENT, data=data))


def test_packet_parse_event_defaults_missing_args():
    assert packet.parse_event(Packet(PacketType.EVENT, data='{"name":"x"}')) == ("x", [])


def test_packet_parse_event_rejects_other_types():
    with pytest.raises(PacketError):
        packet.parse_event(Packet(PacketType.ACK, data='{"name":"x"}'))


def test_packet_ack_encoding_is_byte_exact():
    assert packet.encode(packet.ack("7", [{"success": True}])) == '6:::7+[{"success":true}]'
    assert packet.encode(packet.ack("7+", [{"success": True}])) == '6:::7+[{"success":true}]'
    assert packet.encode(packet.ack("12")) == "6:::12"
    assert packet.encode(packet.ack("12", [])) == "6:::12"


def test_packet_ack_rejects_non_numeric_id():
    with pytest.raises(PacketError):
        packet.ack("abc")


def test_packet_parse_ack():
    assert packet.parse_ack(packet.decode('6:::7+[{"success":false,"message":"no"}]')) == (
        "7",
        [{"success": False, "message": "no"}],
    )
    assert packet.parse_ack(packet.decode("6:::42")) == ("42", [])


@pytest.mark.parametrize("data", ["", "x", "7+", "7+{", '7+{"a":1}', "+[1]", "7 +[1]"])
def test_packet_parse_ack_rejects_bad_data(data):
    with pytest.raises(PacketError):
        packet.parse_ack(Packet(PacketType.ACK, data=data))


def test_packet_handshake_parse_and_format():
    body = "4f9c2a:15:25:websocket,xhr-polling"
    parsed = packet.parse_handshake(body)
    assert parsed == Handshake("4f9c2a", 15.0, 25.0, ("websocket", "xhr-polling"))
    assert packet.format_handshake(parsed) == body
    assert packet.format_handshake(Handshake("s", 2.5, 60, ("websocket",))) == "s:2.5:60:websocket"
    assert packet.parse_handshake("s:2.5:60:websocket\n").heartbeat_timeout == 2.5


def test_packet_handshake_empty_heartbeat_means_none():
    assert packet.parse_handshake("sid::25:websocket").heartbeat_timeout == 0.0


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<html>502 Bad Gateway</html>",
        "sid:15:25",
        ":15:25:websocket",
        "sid:abc:25:websocket",
        "sid:15:-1:websocket",
        "sid:nan:25:websocket",
        "sid:inf:25:websocket",
        "sid:15:25:",
        "a/b:15:25:websocket",
        "sid:15:25:websocket:extra",
    ],
)
def test_packet_handshake_rejects_bad_bodies(body):
    with pytest.raises(PacketError):
        packet.parse_handshake(body)


@given(st.text(max_size=200))
def test_packet_decoders_raise_only_packet_error(text):
    for decoder in (
        packet.decode,
        packet.parse_handshake,
        lambda t: packet.parse_event(Packet(PacketType.EVENT, data=t)),
        lambda t: packet.parse_ack(Packet(PacketType.ACK, data=t)),
    ):
        try:
            decoder(text)
        except PacketError:
            pass


@given(
    st.sampled_from(list(PacketType)),
    st.from_regex(r"([0-9]{1,5}\+?)?", fullmatch=True),
    st.from_regex(r"[a-z/]{0,8}", fullmatch=True),
    st.text(max_size=50),
)
def test_packet_round_trip_property(kind, ident, endpoint, data):
    value = Packet(kind, ident, endpoint, data)
    assert packet.decode(packet.encode(value)) == value


@given(
    st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)), max_size=4)
)
def test_packet_ack_round_trip_property(args):
    ack_id, parsed = packet.parse_ack(packet.decode(packet.encode(packet.ack("9", args))))
    assert ack_id == "9"
    assert parsed == args
    assert json.loads(json.dumps(parsed)) == args
