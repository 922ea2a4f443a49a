"""The sans-I/O framers: input buffer, connection message, records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.wire.errors import DecodingError
from txtezosp2p.wire.framing import InputBuffer, RecordFramer, take_connection_message


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
        self.assertTrue(all(r.obj is data for r in records))  # no copy
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
        framer = RecordFramer(1000)
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
