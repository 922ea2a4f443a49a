"""The sans-I/O framers: input buffer, connection message, records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.wire.encoding import P2PMessageCodec, RawMessage, raw_message_encodings
from txtezosp2p.wire.errors import DecodingError
from txtezosp2p.wire.framing import (
    InputBuffer,
    RecordFramer,
    SplitRecord,
    decode_record,
    take_connection_message,
)

from .helpers import backends


def record(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, pos = [], 0
    for size in sizes:
        pieces.append(data[pos : pos + size])
        pos += size
    pieces.append(data[pos:])
    return pieces


class InputBufferTests(SynchronousTestCase):
    def test_no_copy_when_empty(self) -> None:
        buffer = InputBuffer()
        data = b"abcdef"
        buffer.append(data)
        self.assertIs(buffer.data, data)
        buffer.consumed(2)
        buffer.append(b"gh")
        self.assertEqual(bytes(buffer.data[buffer.pos :]), b"cdefgh")
        self.assertEqual(len(buffer), 6)
        buffer.consumed(len(buffer.data))
        self.assertEqual(len(buffer), 0)

    def test_connection_message(self) -> None:
        buffer = InputBuffer()
        buffer.append(b"\x00")
        self.assertIsNone(take_connection_message(buffer))
        buffer.append(b"\x03ab")
        self.assertIsNone(take_connection_message(buffer))
        buffer.append(b"cREST")
        self.assertEqual(take_connection_message(buffer), b"\x00\x03abc")
        self.assertEqual(bytes(buffer.data[buffer.pos :]), b"REST")


class RecordFramerTests(SynchronousTestCase):
    def test_records_inside_a_piece_are_views(self) -> None:
        data = record(b"one") + record(b"") + record(b"three")
        framer = RecordFramer(1000)
        records = framer.feed(data)
        self.assertEqual([bytes(r) for r in records], [b"one", b"", b"three"])
        self.assertTrue(all(isinstance(r, memoryview) and r.obj is data for r in records))
        self.assertEqual(framer.buffered, 0)

    def test_spanning_record_is_assembled_as_it_arrives(self) -> None:
        framer = RecordFramer(1 << 20)
        body = bytes(range(256)) * 1000
        data = record(body)
        self.assertEqual(framer.feed(data[:2]), [])
        self.assertEqual(framer.buffered, 2)
        self.assertEqual(framer.feed(data[2:1000]), [])
        self.assertEqual(framer.buffered, 1000)  # only what arrived is held
        self.assertEqual(framer.missing, len(body) - 996)
        [whole] = framer.feed(data[1000:] + record(b"next")[:5])
        self.assertEqual(bytes(whole), body)
        self.assertEqual(framer.buffered, 5)

    def test_spanning_payload_is_kept_without_copy(self) -> None:
        """The header apart, the payload is built once in the object the message keeps."""
        codec = P2PMessageCodec(raw_message_encodings())
        framer = RecordFramer(codec.max_size, codec.header_size)
        stream = record(b"\x00\x31" + b"op" * 50_000)
        pieces = [stream[:1], stream[1:5], stream[5:6], stream[6:70_000], stream[70_000:]]
        found = [r for piece in pieces for r in framer.feed(piece)]
        [split] = found
        assert isinstance(split, SplitRecord)
        self.assertEqual((split.header, len(split)), (b"\x00\x31", 100_002))
        message = decode_record(codec, split)
        assert isinstance(message, RawMessage)
        self.assertIs(message.payload, split.payload)
        self.assertEqual(message, codec.decode(stream[4:]))
        # a body shorter than the header still decodes (and fails) as a whole would
        framer.feed(record(b"\x00")[:4])
        [short] = framer.feed(b"\x00")
        self.assertRaises(DecodingError, decode_record, codec, short)

    def test_bytes_builders(self) -> None:
        for name, backend in backends():
            builder = backend.RecordBuffer(5)
            self.assertEqual(builder.write(b"abc"), 3, name)
            self.assertRaises(ValueError, builder.take)
            self.assertEqual(builder.write(memoryview(b"xdefgh")[1:]), 2)
            self.assertEqual((builder.filled, builder.missing), (5, 0))
            self.assertEqual(builder.take(), b"abcde")
            self.assertRaises(ValueError, builder.take)
            self.assertRaises(ValueError, builder.write, b"z")
            self.assertEqual(backend.RecordBuffer(0).take(), b"")
            self.assertRaises(ValueError, backend.RecordBuffer, -1)

    def test_bounded_before_buffering(self) -> None:
        """A length over the bound is refused from its prefix; nothing is held for it."""
        framer = RecordFramer(1000)
        records = framer.feed(record(b"ok") + (997).to_bytes(4, "big") + b"x")
        self.assertEqual([bytes(r) for r in records], [b"ok"])
        assert framer.error is not None
        self.assertEqual(framer.error.reason, "Size_limit_exceeded")
        self.assertEqual(framer.buffered, 0)
        self.assertRaises(DecodingError, framer.feed, b"more")

    def test_uint30(self) -> None:
        framer = RecordFramer(1 << 31)
        framer.feed(b"\xff\xff")
        self.assertEqual(framer.feed(b"\xff\xff"), [])
        assert framer.error is not None
        self.assertEqual(framer.error.reason, "Invalid_int")

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.binary(max_size=300), max_size=8),
        st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    )
    def test_any_split_gives_the_same_records(self, bodies: list[bytes], sizes: list[int]) -> None:
        stream = b"".join(record(body) for body in bodies)
        for header_size in (0, 2):
            framer = RecordFramer(1000, header_size)
            found = [bytes(r) for piece in cut(stream, sizes) for r in framer.feed(piece)]
            self.assertEqual(found, bodies)
            self.assertEqual(framer.buffered, 0)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=64), max_size=8))
    def test_hostile_bytes(self, data: bytes, sizes: list[int]) -> None:
        """Any bytes give records, a typed error, or a bounded wait."""
        framer = RecordFramer(256)
        for piece in cut(data, sizes):
            if framer.error is not None:
                break
            for body in framer.feed(piece):
                self.assertLessEqual(len(body) + 4, 256)
            self.assertLessEqual(framer.buffered, 256)
