"""The buffered WebSocket frame reader, over a real socket pair."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from reviewd.api.event.connection import Connection, ConnectionLost, FrameReader


def frame(payload: bytes, opcode: int = 1, final: bool = True, mask: bytes | None = None) -> bytes:
    first = (0x80 if final else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = bytes([first, mask_bit | length])
    elif length < 1 << 16:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", length)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_frame_reader_reads_many_frames_from_one_chunk(pair):
    ours, theirs = pair
    theirs.sendall(b"".join(frame(f"5:::{n}".encode()) for n in range(100)))
    reader = FrameReader(ours)
    assert [reader.next_message() for _ in range(100)] == [f"5:::{n}".encode() for n in range(100)]


def test_frame_reader_handles_frames_split_at_every_byte(pair):
    ours, theirs = pair
    data = frame(b"x" * 300) + frame("é2::".encode()) + frame(b"y" * 70000)

    def trickle():
        for i in range(0, len(data), 997):
            theirs.sendall(data[i : i + 997])

    sender = threading.Thread(target=trickle)
    sender.start()
    reader = FrameReader(ours)
    assert reader.next_message() == b"x" * 300  # 16-bit length
    assert reader.next_message() == "é2::".encode()
    assert reader.next_message() == b"y" * 70000  # 64-bit length
    sender.join()


def test_frame_reader_reassembles_fragments_and_unmasks(pair):
    ours, theirs = pair
    theirs.sendall(
        frame(b"5:::{", final=False)
        + frame(b"", opcode=9)  # a ping between fragments is allowed
        + frame(b'"a":1', opcode=0, final=False)
        + frame(b"}", opcode=0)
        + frame(b"masked", mask=b"\x01\x02\x03\x04")
    )
    pings = []
    reader = FrameReader(ours, on_ping=pings.append)
    assert reader.next_message() == b'5:::{"a":1}'
    assert reader.next_message() == b"masked"
    assert pings == [b""]


def test_frame_reader_answers_ping_and_skips_pong(pair):
    ours, theirs = pair
    theirs.sendall(frame(b"hi", opcode=9) + frame(b"", opcode=10) + frame(b"2::"))
    pings = []
    reader = FrameReader(ours, on_ping=pings.append)
    assert reader.next_message() == b"2::"
    assert pings == [b"hi"]


def test_frame_reader_close_frame_ends_the_connection(pair):
    ours, theirs = pair
    theirs.sendall(frame(struct.pack("!H", 1001) + b"bye", opcode=8))
    with pytest.raises(ConnectionLost, match="1001"):
        FrameReader(ours).next_message()


def test_frame_reader_eof_ends_the_connection(pair):
    ours, theirs = pair
    theirs.sendall(frame(b"1::")[:-1])  # a truncated frame, then the peer goes away
    theirs.shutdown(socket.SHUT_WR)
    reader = FrameReader(ours)
    with pytest.raises(ConnectionLost, match="closed"):
        reader.next_message()


@pytest.mark.parametrize(
    "data",
    [
        frame(b"x", opcode=0),  # continuation without a start
        frame(b"x", opcode=5),  # reserved opcode
        bytes([0x81, 127]) + struct.pack("!Q", 1 << 40),  # absurd length
    ],
)
def test_frame_reader_protocol_violations_end_the_connection(pair, data):
    ours, theirs = pair
    theirs.sendall(data)
    with pytest.raises(ConnectionLost):
        FrameReader(ours).next_message()


def test_frame_reader_silence_times_out(pair):
    ours, _theirs = pair
    ours.settimeout(0.1)
    with pytest.raises(TimeoutError):
        FrameReader(ours).next_message()


def test_connection_closed_with_a_reason_reports_that_reason():
    """A connection closed on another thread (the writer, after a failed send) makes
    recv() name that cause, not the descriptor it found closed; the first reason wins."""
    connection = Connection("http://127.0.0.1:9", "user", "key")
    connection.close("sending failed: BrokenPipeError: [Errno 32] Broken pipe")
    connection.close("a later reason")
    with pytest.raises(ConnectionLost, match="^sending failed: BrokenPipeError"):
        connection.recv()


def test_connection_closed_without_a_reason_still_says_not_connected():
    connection = Connection("http://127.0.0.1:9", "user", "key")
    connection.close()
    with pytest.raises(ConnectionLost, match="^not connected$"):
        connection.recv()
