# -*- test-case-name: tests.test_encoding -*-
"""
Tests for L{txtezosp2p.wire.encoding} and L{txtezosp2p.wire.binary}: every codec
vector of wire.md byte for byte (connection messages of Appendix A, the Nack
of §6.1, the P2P records of §8.2), the data-encoding rules of §0, the JSON
forms, and properties over arbitrary values and arbitrary bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import IDENTITY_A, IDENTITY_B
from txtezosp2p.wire import binary as B
from txtezosp2p.wire.encoding import (
    MAX_MESSAGE_SIZE,
    SHELL_MESSAGE_TITLES,
    Ack,
    AckMessage,
    Advertise,
    Bootstrap,
    BytesCodec,
    ConnectionMessage,
    ConnectionMetadata,
    Disconnect,
    MessageEncoding,
    Nack,
    NackV0,
    NetworkVersion,
    P2PMessageCodec,
    RawMessage,
    SwapAck,
    SwapRequest,
    ack_from_json,
    ack_to_json,
    decode_ack,
    default_metadata_config,
    encode_ack,
    frame_record,
    put_point,
    raw_message_encodings,
    read_point,
)
from txtezosp2p.wire.errors import (
    DecodingError,
    EncodingError,
    NackMotive,
    UnexpectedSizeOfDecodedBuffer,
)
from txtezosp2p.wire.ids import PeerId, Point


def h(text: str) -> bytes:
    """Bytes from hex written with spaces, as in wire.md."""
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


# -- wire.md vectors -------------------------------------------------------------------------------

#: Appendix A.2: A's and B's framed connection messages (105 bytes each).
A_FRAME = h(
    "0067 2604 5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a"
    "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95"
    "111111111111111111111111111111111111111111111111"
    "0000000d 54455a4f535f4d41494e4e4554 0002 0001"
)
B_FRAME = h(
    "0067 2605 6e699289a794e629a13335c6fb7cfe6ee143c29609b020a49b5a575593824459"
    "657ef08d3a806354c1a310b64b86a13a79f76302d249995f"
    "222222222222222222222222222222222222222222222222"
    "0000000d 54455a4f535f4d41494e4e4554 0002 0001"
)

#: Appendix A.1: TezEdge's sandbox connection messages (``crypto/src/nonce.rs``).
TEZEDGE_SENT = h(
    "00874d1b98317bd6efad8352a7144c9eb0b218c9130e0a875973908ddc894b764ffc0d7f176cf800b978af9e"
    "919bdc35122585168475096d0ebcaca1f2a1172412b91b363ff484d1c64c03417e0e755e696c386a0000002d"
    "53414e44424f5845445f54455a4f535f414c5048414e45545f323031382d31312d33305431353a33303a3536"
    "5a00000000"
)
TEZEDGE_RECV = h(
    "00874d1ab3845960b32b039fef38ca5c9f8f867df1d522f27a83e07d9dfbe3b296a6c076412d98b369ab015d"
    "57247e5380d708b9edfcca0ca2c865346ef9c3d7ed00182cf4f613a6303c9b2a28cda8ff93687bd20000002d"
    "53414e44424f5845445f54455a4f535f414c5048414e45545f323031382d31312d33305431353a33303a3536"
    "5a00000000"
)
SANDBOX_CHAIN = b"SANDBOXED_TEZOS_ALPHANET_2018-11-30T15:30:56Z"

#: §6.1 and §8.2: the two example points and their encodings.
P1 = Point("1.2.3.4", 9732)
P2 = Point("2001:db8::1", 9732)
P1_BYTES = h("0000000c 312e322e332e343a39373332")
P2_BYTES = h("00000012 5b323030313a6462383a3a315d3a39373332")
NACK_EXAMPLE = h(
    "01 0001 00000026 0000000c 312e322e332e343a39373332 "
    "00000012 5b323030313a6462383a3a315d3a39373332"
)
DISCONNECT_RECORD = h("00000002 0001")
BOOTSTRAP_RECORD = h("00000002 0002")
ADVERTISE_RECORD = h(
    "00000028 0003 0000000c 312e322e332e343a39373332 00000012 5b323030313a6462383a3a315d3a39373332"
)
SWAP_REQUEST_RECORD = h(
    "00000022 0004 0000000c 312e322e332e343a39373332 bfec777657369f33dd211f57eb32598f"
)
PEER_B = PeerId(h("bfec777657369f33dd211f57eb32598f"))

#: A scoped IPv6 point (refused by the strict parser, wire.md §9.1).
SCOPED_TEXT = "[fe80::1%1]:9732"
SCOPED_BYTES = B.put_dynamic(SCOPED_TEXT.encode("ascii"))
#: A version object whose chain name is an unpaired surrogate, as json.loads gives it.
SURROGATE_VERSION = json.loads(
    '{"chain_name": "\\ud800", "distributed_db_version": 2, "p2p_version": 1}'
)

MAINNET = NetworkVersion("TEZOS_MAINNET", 2, 1)


def mainnet_message(
    port: int | None, public_key: bytes, stamp: bytes, nonce: bytes
) -> ConnectionMessage:
    return ConnectionMessage(
        port=port,
        public_key=public_key,
        proof_of_work_stamp=stamp,
        message_nonce=nonce,
        version=MAINNET,
    )


MESSAGE_A = mainnet_message(
    9732, IDENTITY_A.public_key, IDENTITY_A.proof_of_work_stamp, b"\x11" * 24
)
MESSAGE_B = mainnet_message(
    9733, IDENTITY_B.public_key, IDENTITY_B.proof_of_work_stamp, b"\x22" * 24
)


# -- An application message type -------------------------------------------------------------------


@attrs.frozen
class Note:
    """A small application message: UTF-8 text, at most 64 bytes."""

    text: str


def _note_encode(note: Note) -> bytes:
    return note.text.encode("utf-8")


def _note_decode(data: bytes) -> Note:
    return Note(data.decode("utf-8"))


def _note_to_json(note: Note) -> Any:
    return {"kind": "Note", "text": note.text}


def _note_from_json(value: Any) -> Note:
    if not isinstance(value, dict) or value.get("kind") != "Note":
        raise ValueError("not a Note")
    text = value.get("text")
    if not isinstance(text, str):
        raise TypeError("Note text must be a string")
    return Note(text)


NOTE_TAG = 0x10
NOTE_ENCODING: MessageEncoding[Note] = MessageEncoding(
    tag=NOTE_TAG,
    title="Note",
    type=Note,
    encode=_note_encode,
    decode=_note_decode,
    max_length=64,
    to_json=_note_to_json,
    from_json=_note_from_json,
)


@attrs.frozen
class Opaque:
    """An application message without a JSON form."""

    data: bytes


OPAQUE_ENCODING: MessageEncoding[Opaque] = MessageEncoding(
    tag=0x1234,
    title="Opaque",
    type=Opaque,
    encode=lambda m: m.data,
    decode=Opaque,
)


def note_codec() -> P2PMessageCodec:
    return P2PMessageCodec([NOTE_ENCODING, OPAQUE_ENCODING])


def record_of(codec: P2PMessageCodec, message: object) -> bytes:
    """The full record (4-byte length + tag + payload) of a message."""
    return frame_record(codec.encode(message), codec.max_size)


# -- Strategies ------------------------------------------------------------------------------------

ports = st.integers(min_value=0, max_value=0xFFFF)
uint16s = st.integers(min_value=0, max_value=0xFFFF)
points = st.builds(Point, st.ip_addresses(), ports)
peer_ids = st.binary(min_size=16, max_size=16).map(PeerId)
chain_names = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=30).map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"TEZOS_MAINNET", SANDBOX_CHAIN, b"TEZOS", b""]),
)
network_versions = st.builds(NetworkVersion, chain_names, uint16s, uint16s)
connection_messages = st.builds(
    ConnectionMessage,
    port=st.one_of(st.none(), st.integers(min_value=1, max_value=0xFFFF)),
    public_key=st.binary(min_size=32, max_size=32),
    proof_of_work_stamp=st.binary(min_size=24, max_size=24),
    message_nonce=st.binary(min_size=24, max_size=24),
    version=network_versions,
)
metadatas = st.builds(ConnectionMetadata, st.booleans(), st.booleans())
motives = st.one_of(
    st.sampled_from(list(NackMotive)),
    st.integers(min_value=-0x8000, max_value=0x7FFF).map(NackMotive),
)
point_lists = st.lists(points, max_size=100).map(tuple)
nacks = st.builds(Nack, motives, point_lists)
ack_messages = st.one_of(st.just(Ack()), st.just(NackV0()), nacks)
control_messages = st.one_of(
    st.just(Disconnect()),
    st.just(Bootstrap()),
    st.builds(Advertise, point_lists),
    st.builds(SwapRequest, points, peer_ids),
    st.builds(SwapAck, points, peer_ids),
)
notes = st.builds(Note, st.text(max_size=16))
app_messages = st.one_of(notes, st.builds(Opaque, st.binary(max_size=100)))

#: Point strings as a peer might send them: canonical, lenient, broken, scoped.
point_texts = st.one_of(
    points.map(lambda p: p.to_text().encode("ascii")),
    st.sampled_from(
        [
            b"[::ffff:1.2.3.4]:9732",
            b"[2001:DB8:0:0:0:0:0:1]:9732",
            b"1.2.3.4:09732",
            b"1.2.3.4",
            b"localhost:9732",
            b"[::1]:65536",
            SCOPED_BYTES[4:],
            b"\xff\xfe:1",
            b"",
        ]
    ),
    st.binary(max_size=50),
)


@st.composite
def point_region(draw: st.DrawFn) -> bytes:
    """A run of uint30-prefixed point strings, sometimes with a wrong prefix."""
    parts = []
    for text in draw(st.lists(point_texts, max_size=4)):
        length = draw(st.one_of(st.just(len(text)), st.integers(0, 60)))
        parts.append(B.put_uint30(length) + text)
    return b"".join(parts)


@st.composite
def ack_garbage(draw: st.DrawFn) -> bytes:
    """Bytes that look like an Ack/Nack often enough to reach every branch."""
    tag = draw(st.sampled_from([0x00, 0x01, 0x01, 0x01, 0xFF, 0x02, 0x80]))
    if tag != 0x01:
        return bytes((tag,)) + draw(st.binary(max_size=3))
    region = draw(point_region())
    prefix = draw(st.one_of(st.just(len(region)), st.integers(0, 200), st.just(0xFFFFFFFF)))
    tail = draw(st.one_of(st.just(b""), st.binary(max_size=3)))
    return (
        b"\x01"
        + draw(st.binary(min_size=2, max_size=2))
        + prefix.to_bytes(4, "big")
        + region
        + tail
    )


@st.composite
def p2p_garbage(draw: st.DrawFn) -> bytes:
    """Bytes that look like a P2P message body often enough to reach every branch."""
    tag = draw(st.sampled_from([0, 1, 2, 3, 3, 4, 5, 6, NOTE_TAG, 0x1234, 0xFFFF]))
    if tag in (3, 4, 5):
        body = draw(point_region())
        if tag != 3:
            body += draw(st.binary(min_size=14, max_size=18))
    elif tag == NOTE_TAG:
        body = draw(
            st.one_of(st.text(max_size=20).map(lambda t: t.encode("utf-8")), st.binary(max_size=70))
        )
    else:
        body = draw(st.one_of(st.just(b""), st.binary(max_size=8)))
    return tag.to_bytes(2, "big") + body


@st.composite
def connection_garbage(draw: st.DrawFn) -> bytes:
    """Bytes shaped like a connection message body, with wrong lengths at times."""
    name = draw(chain_names)
    prefix = draw(st.one_of(st.just(len(name)), st.integers(0, 100), st.just(0x40000000)))
    body = (
        draw(st.binary(min_size=82, max_size=82))
        + prefix.to_bytes(4, "big")
        + name
        + draw(st.binary(min_size=4, max_size=4))
    )
    cut = draw(st.one_of(st.just(len(body)), st.integers(0, len(body))))
    return body[:cut] + draw(st.one_of(st.just(b""), st.binary(max_size=3)))


JSON_KEYS = [
    "port",
    "pubkey",
    "proof_of_work_stamp",
    "message_nonce",
    "version",
    "chain_name",
    "distributed_db_version",
    "p2p_version",
    "invalid_utf8_string",
    "disable_mempool",
    "private_node",
    "ack",
    "nack_v_0",
    "nack_motive",
    "nack_list",
    "kind",
    "id",
    "point",
    "peer_id",
    "tag",
    "payload",
    "text",
]
JSON_STRINGS = [
    "1.2.3.4:9732",
    "[2001:db8::1]:9732",
    "idrRoknJh9zwEePNswF3MPGFzmKaVp",
    "TEZOS_MAINNET",
    "00" * 32,
    "11" * 24,
    "Disconnect",
    "Bootstrap",
    "Advertise",
    "Swap_request",
    "Swap_ack",
    "Note",
    "Opaque",
    "0010",
    "zz",
    "\ud800",
    SCOPED_TEXT,
]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([0, 1, 2, 255, 256, 0xFFFF, 0x10000, -1, 0x8000, 0x1234, NOTE_TAG]),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(JSON_STRINGS),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(JSON_KEYS), st.text(max_size=5)), children, max_size=6
        ),
    ),
    max_leaves=16,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Either a valid JSON value for a field or anything at all."""
    return st.one_of(valid, json_values)


json_versions = st.one_of(
    network_versions.map(NetworkVersion.to_json),
    st.fixed_dictionaries(
        {
            "chain_name": maybe(st.text(max_size=10)),
            "distributed_db_version": maybe(uint16s),
            "p2p_version": maybe(uint16s),
        }
    ),
)
json_connection_messages = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "port": maybe(ports),
            "pubkey": maybe(st.binary(min_size=32, max_size=32).map(bytes.hex)),
            "proof_of_work_stamp": maybe(st.binary(min_size=24, max_size=24).map(bytes.hex)),
            "message_nonce": maybe(st.binary(min_size=20, max_size=26).map(bytes.hex)),
            "version": maybe(json_versions),
        }
    ),
)
json_metadatas = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"disable_mempool": maybe(st.booleans()), "private_node": maybe(st.booleans())}
    ),
)
json_acks = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "nack_motive": maybe(st.integers(-0x8000, 0x7FFF)),
            "nack_list": maybe(st.lists(maybe(points.map(Point.to_text)), max_size=4)),
        }
    ),
)
json_p2p = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(
                ["Disconnect", "Bootstrap", "Advertise", "Swap_request", "Swap_ack", "Note", "X"]
            ),
            "id": maybe(st.lists(maybe(points.map(Point.to_text)), max_size=3)),
            "point": maybe(points.map(Point.to_text)),
            "peer_id": maybe(peer_ids.map(str)),
            "text": json_values,
        }
    ),
    st.fixed_dictionaries(
        {
            "tag": maybe(st.sampled_from([NOTE_TAG, 0x1234, 0x99])),
            "payload": maybe(st.binary(max_size=70).map(bytes.hex)),
        }
    ),
)


def decoding_error_only(decode: Callable[[Any], object], value: Any) -> object | None:
    """
    Run ``decode(value)``: return the result, or None on DecodingError;
    any other exception escapes and fails the test.
    """
    try:
        return decode(value)
    except DecodingError:
        return None


def has_points(value: object) -> bool:
    return bool(getattr(value, "points", ())) or hasattr(value, "point")


# -- _binary ---------------------------------------------------------------------------------------


class BinaryWriterTests(SynchronousTestCase):
    """The C{put_*} encoders of data-encoding's basic types (wire.md §0)."""

    def test_uint8(self) -> None:
        self.assertEqual(B.put_uint8(0), b"\x00")
        self.assertEqual(B.put_uint8(255), b"\xff")
        self.assertRaises(EncodingError, B.put_uint8, 256)
        self.assertRaises(EncodingError, B.put_uint8, -1)

    def test_bool(self) -> None:
        """True is C{ff}, false C{00}."""
        self.assertEqual(B.put_bool(True), b"\xff")
        self.assertEqual(B.put_bool(False), b"\x00")

    def test_uint16BigEndian(self) -> None:
        self.assertEqual(B.put_uint16(0x2604), b"\x26\x04")
        self.assertEqual(B.put_uint16(0xFFFF), b"\xff\xff")
        self.assertRaises(EncodingError, B.put_uint16, 0x10000)
        self.assertRaises(EncodingError, B.put_uint16, -1)

    def test_int16TwosComplement(self) -> None:
        self.assertEqual(B.put_int16(-1), b"\xff\xff")
        self.assertEqual(B.put_int16(-0x8000), b"\x80\x00")
        self.assertEqual(B.put_int16(0x7FFF), b"\x7f\xff")
        self.assertRaises(EncodingError, B.put_int16, 0x8000)
        self.assertRaises(EncodingError, B.put_int16, -0x8001)

    def test_uint30(self) -> None:
        self.assertEqual(B.put_uint30(0x26), b"\x00\x00\x00\x26")
        self.assertEqual(B.put_uint30(B.UINT30_MAX), b"\x3f\xff\xff\xff")
        self.assertEqual(B.UINT30_MAX, 1073741823)
        self.assertRaises(EncodingError, B.put_uint30, 1 << 30)
        self.assertRaises(EncodingError, B.put_uint30, -1)

    def test_fixed(self) -> None:
        self.assertEqual(B.put_fixed(b"abc", 3), b"abc")
        self.assertRaises(EncodingError, B.put_fixed, b"abc", 4)
        self.assertRaises(EncodingError, B.put_fixed, b"abc", 2)

    def test_dynamic(self) -> None:
        """A uint30 byte length, then the bytes."""
        self.assertEqual(B.put_dynamic(b"TEZOS_MAINNET"), h("0000000d 54455a4f535f4d41494e4e4554"))
        self.assertEqual(B.put_dynamic(b""), b"\x00\x00\x00\x00")


class BinaryReaderTests(SynchronousTestCase):
    """L{B.Reader}: bounded reads raising DecodingError."""

    def test_integers(self) -> None:
        reader = B.Reader(h("ff 2604 fffe 3fffffff"))
        self.assertEqual(reader.uint8(), 255)
        self.assertEqual(reader.uint16(), 0x2604)
        self.assertEqual(reader.int16(), -2)
        self.assertEqual(reader.uint30(), B.UINT30_MAX)
        self.assertEqual(reader.remaining, 0)
        reader.expect_end()

    def test_boolAnyNonZeroIsTrue(self) -> None:
        """data-encoding reads any non-zero byte as true."""
        for byte in [0x01, 0x02, 0x7F, 0x80, 0xFF]:
            self.assertIs(B.Reader(bytes((byte,))).bool(), True)
        self.assertIs(B.Reader(b"\x00").bool(), False)

    def test_uint30OverLimit(self) -> None:
        """A uint30 above 2^30-1 is C{Invalid_int}."""
        for raw in ["40000000", "ffffffff", "80000000"]:
            exc = self.assertRaises(DecodingError, B.Reader(h(raw)).uint30)
            self.assertEqual(exc.reason, "Invalid_int")

    def test_notEnoughData(self) -> None:
        for read in [
            B.Reader(b"").uint8,
            B.Reader(b"").bool,
            B.Reader(b"\x00").uint16,
            B.Reader(b"\x00").int16,
            B.Reader(b"\x00\x00\x00").uint30,
            lambda: B.Reader(b"ab").fixed(3),
            B.Reader(h("00000003 6162")).dynamic,
            lambda: B.Reader(b"ab").sub(3),
        ]:
            exc = self.assertRaises(DecodingError, read)
            self.assertEqual(exc.reason, "Not_enough_data")

    def test_fixedAndRest(self) -> None:
        reader = B.Reader(b"abcdef")
        self.assertEqual(reader.fixed(2), b"ab")
        self.assertEqual(reader.fixed(0), b"")
        self.assertEqual(reader.rest(), b"cdef")
        self.assertEqual(reader.rest(), b"")

    def test_dynamic(self) -> None:
        reader = B.Reader(h("00000002 6162 63"))
        self.assertEqual(reader.dynamic(), b"ab")
        self.assertEqual(reader.remaining, 1)

    def test_dynamicMaxLength(self) -> None:
        """A length over the caller's bound is C{Size_limit_exceeded}, checked first."""
        exc = self.assertRaises(DecodingError, B.Reader(h("00000003 616263")).dynamic, 2)
        self.assertEqual(exc.reason, "Size_limit_exceeded")
        self.assertEqual(B.Reader(h("00000003 616263")).dynamic(3), b"abc")
        # the bound is checked before the data is looked for
        exc = self.assertRaises(DecodingError, B.Reader(h("3fffffff")).dynamic, 10)
        self.assertEqual(exc.reason, "Size_limit_exceeded")

    def test_expectEnd(self) -> None:
        reader = B.Reader(b"ab")
        reader.uint8()
        exc = self.assertRaises(DecodingError, reader.expect_end)
        self.assertEqual(exc.reason, "Extra_bytes")

    def test_window(self) -> None:
        """A reader only sees C{data[start:end]}."""
        reader = B.Reader(b"\x00\x01\x02\x03", 1, 3)
        self.assertEqual(reader.remaining, 2)
        self.assertEqual(reader.uint16(), 0x0102)
        self.assertRaises(DecodingError, reader.uint8)
        reader.expect_end()

    def test_sub(self) -> None:
        """C{sub} bounds a nested reader and skips its bytes in the parent."""
        reader = B.Reader(b"abcde")
        inner = reader.sub(3)
        self.assertEqual(reader.pos, 3)
        self.assertEqual(inner.remaining, 3)
        self.assertEqual(inner.fixed(2), b"ab")
        exc = self.assertRaises(DecodingError, inner.uint16)
        self.assertEqual(exc.reason, "Not_enough_data")
        self.assertEqual(reader.rest(), b"de")

    def test_memoryviewAndBytearray(self) -> None:
        self.assertEqual(B.Reader(memoryview(b"\x12\x34")).uint16(), 0x1234)
        self.assertEqual(B.Reader(bytearray(b"\x12\x34")).fixed(2), b"\x12\x34")

    @given(
        st.integers(0, 255),
        uint16s,
        st.integers(-0x8000, 0x7FFF),
        st.integers(0, B.UINT30_MAX),
        st.binary(max_size=40),
    )
    def test_roundTrip(self, u8: int, u16: int, i16: int, u30: int, data: bytes) -> None:
        """What the writers produce, the reader reads back, consuming all of it."""
        encoded = (
            B.put_uint8(u8)
            + B.put_uint16(u16)
            + B.put_int16(i16)
            + B.put_uint30(u30)
            + B.put_dynamic(data)
            + B.put_fixed(data, len(data))
            + B.put_bool(True)
            + B.put_bool(False)
        )
        reader = B.Reader(encoded)
        self.assertEqual(
            (reader.uint8(), reader.uint16(), reader.int16(), reader.uint30()), (u8, u16, i16, u30)
        )
        self.assertEqual(reader.dynamic(), data)
        self.assertEqual(reader.fixed(len(data)), data)
        self.assertEqual((reader.bool(), reader.bool()), (True, False))
        reader.expect_end()

    @given(st.data(), st.binary(max_size=40))
    def test_garbage(self, data: st.DataObject, raw: bytes) -> None:
        """
        Any sequence of reads on arbitrary bytes returns or raises
        DecodingError; whatever is read re-encodes to the bytes consumed
        (booleans normalised to C{00}/C{ff}).
        """
        reader = B.Reader(raw)
        operations = data.draw(
            st.lists(
                st.sampled_from(
                    [
                        "uint8",
                        "bool",
                        "uint16",
                        "int16",
                        "uint30",
                        "fixed",
                        "dynamic",
                        "sub",
                        "rest",
                        "end",
                    ]
                ),
                max_size=8,
            )
        )
        for operation in operations:
            start = reader.pos
            try:
                if operation == "uint8":
                    encoded = B.put_uint8(reader.uint8())
                elif operation == "bool":
                    encoded = B.put_bool(reader.bool())
                    self.assertEqual(encoded, b"\x00" if raw[start] == 0 else b"\xff")
                    continue
                elif operation == "uint16":
                    encoded = B.put_uint16(reader.uint16())
                elif operation == "int16":
                    encoded = B.put_int16(reader.int16())
                elif operation == "uint30":
                    encoded = B.put_uint30(reader.uint30())
                elif operation == "fixed":
                    n = data.draw(st.integers(0, 8))
                    encoded = B.put_fixed(reader.fixed(n), n)
                elif operation == "dynamic":
                    bound = data.draw(st.one_of(st.none(), st.integers(0, 40)))
                    encoded = B.put_dynamic(reader.dynamic(bound))
                elif operation == "sub":
                    reader = reader.sub(data.draw(st.integers(0, 8)))
                    continue
                elif operation == "rest":
                    encoded = reader.rest()
                else:
                    reader.expect_end()
                    continue
            except DecodingError:
                continue
            self.assertEqual(encoded, raw[start : reader.pos])


# -- Connection message (§2) -----------------------------------------------------------------------


class ConnectionMessageTests(SynchronousTestCase):
    """The cleartext connection message (wire.md §2, Appendix A)."""

    def test_vectorA(self) -> None:
        """A's message of Appendix A.2, byte for byte."""
        self.assertEqual(len(A_FRAME), 105)
        self.assertEqual(MESSAGE_A.frame(), A_FRAME)
        self.assertEqual(MESSAGE_A.encode(), A_FRAME[2:])

    def test_vectorB(self) -> None:
        """B's message of Appendix A.2, byte for byte."""
        self.assertEqual(len(B_FRAME), 105)
        self.assertEqual(MESSAGE_B.frame(), B_FRAME)

    def test_decodeVectorA(self) -> None:
        message = ConnectionMessage.decode(A_FRAME[2:])
        self.assertEqual(message, MESSAGE_A)
        self.assertEqual(message.port, 9732)
        self.assertEqual(message.public_key, IDENTITY_A.public_key)
        self.assertEqual(message.proof_of_work_stamp, IDENTITY_A.proof_of_work_stamp)
        self.assertEqual(message.message_nonce, b"\x11" * 24)
        self.assertEqual(message.version.chain_name, b"TEZOS_MAINNET")
        self.assertEqual(message.version.distributed_db_version, 2)
        self.assertEqual(message.version.p2p_version, 1)

    def test_decodeVectorB(self) -> None:
        message = ConnectionMessage.decode(B_FRAME[2:])
        self.assertEqual(message, MESSAGE_B)
        self.assertEqual(message.port, 9733)
        self.assertEqual(message.message_nonce, b"\x22" * 24)

    def assertTezEdge(self, frame: bytes, port: int) -> None:
        self.assertEqual(len(frame), 2 + 0x87)
        message = ConnectionMessage.decode(frame[2:])
        self.assertEqual(message.port, port)
        self.assertEqual(message.public_key, frame[4:36])
        self.assertEqual(message.proof_of_work_stamp, frame[36:60])
        self.assertEqual(message.message_nonce, frame[60:84])
        self.assertEqual(message.version, NetworkVersion(SANDBOX_CHAIN, 0, 0))
        self.assertEqual(message.frame(), frame)

    def test_tezEdgeSent(self) -> None:
        """TezEdge's "sent" message: port 19739, sandbox chain, ddb 0, p2p 0."""
        self.assertTezEdge(TEZEDGE_SENT, 19739)
        self.assertEqual(
            ConnectionMessage.decode(TEZEDGE_SENT[2:]).public_key.hex(),
            "98317bd6efad8352a7144c9eb0b218c9130e0a875973908ddc894b764ffc0d7f",
        )

    def test_tezEdgeRecv(self) -> None:
        """TezEdge's "recv" message: port 19738."""
        self.assertTezEdge(TEZEDGE_RECV, 19738)

    def test_portZeroIsNone(self) -> None:
        """Port 0 on the wire means "no listening port", both ways."""
        message = attrs.evolve(MESSAGE_A, port=None)
        body = message.encode()
        self.assertEqual(body[:2], b"\x00\x00")
        self.assertIsNone(ConnectionMessage.decode(body).port)
        self.assertEqual(message.to_json()["port"], 0)

    def test_extraBytes(self) -> None:
        exc = self.assertRaises(DecodingError, ConnectionMessage.decode, A_FRAME[2:] + b"\x00")
        self.assertEqual(exc.reason, "Extra_bytes")

    def test_decodeIncludingFrameLengthFails(self) -> None:
        """The decoder takes the body only; the framed bytes do not decode."""
        self.assertRaises(DecodingError, ConnectionMessage.decode, A_FRAME)

    def test_truncated(self) -> None:
        """Every strict prefix of a body is C{Not_enough_data}."""
        body = A_FRAME[2:]
        for length in range(len(body)):
            exc = self.assertRaises(DecodingError, ConnectionMessage.decode, body[:length])
            self.assertEqual(exc.reason, "Not_enough_data")

    def test_chainNameLengthInvalidInt(self) -> None:
        body = bytearray(A_FRAME[2:])
        body[82:86] = b"\xff\xff\xff\xff"
        exc = self.assertRaises(DecodingError, ConnectionMessage.decode, bytes(body))
        self.assertEqual(exc.reason, "Invalid_int")

    def test_chainNameLengthOverrun(self) -> None:
        body = bytearray(A_FRAME[2:])
        body[82:86] = b"\x00\x00\x00\x0e"
        exc = self.assertRaises(DecodingError, ConnectionMessage.decode, bytes(body))
        self.assertEqual(exc.reason, "Not_enough_data")

    def test_largestFrame(self) -> None:
        """A body of 65535 bytes (chain name of 65445) still fits the uint16 frame."""
        message = attrs.evolve(MESSAGE_A, version=NetworkVersion(b"x" * 65445, 2, 1))
        frame = message.frame()
        self.assertEqual(len(frame), 65537)
        self.assertEqual(frame[:2], b"\xff\xff")
        self.assertEqual(ConnectionMessage.decode(frame[2:]), message)

    def test_frameTooLarge(self) -> None:
        """A body of 65536 bytes or more is C{Unexpected_size_of_decoded_buffer}."""
        for size in [65446, 70000]:
            message = attrs.evolve(MESSAGE_A, version=NetworkVersion(b"x" * size, 2, 1))
            exc = self.assertRaises(UnexpectedSizeOfDecodedBuffer, message.frame)
            self.assertIsInstance(exc, EncodingError)
            self.assertEqual(exc.octez_id, "socket.unexpected_size_of_decoded_value")

    def test_encodeBadFields(self) -> None:
        """Wrongly sized keys, stamps, nonces and out-of-range numbers are EncodingError."""
        for bad in [
            attrs.evolve(MESSAGE_A, public_key=b"\x00" * 31),
            attrs.evolve(MESSAGE_A, proof_of_work_stamp=b"\x00" * 25),
            attrs.evolve(MESSAGE_A, message_nonce=b""),
            attrs.evolve(MESSAGE_A, port=65536),
            attrs.evolve(MESSAGE_A, version=NetworkVersion("TEZOS", 0x10000, 1)),
            attrs.evolve(MESSAGE_A, version=NetworkVersion("TEZOS", 1, -1)),
        ]:
            self.assertRaises(EncodingError, bad.encode)

    def test_json(self) -> None:
        """Octez's JSON form: hex keys, nested version object."""
        expected = {
            "port": 9732,
            "pubkey": "5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a",
            "proof_of_work_stamp": "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95",
            "message_nonce": "11" * 24,
            "version": {
                "chain_name": "TEZOS_MAINNET",
                "distributed_db_version": 2,
                "p2p_version": 1,
            },
        }
        self.assertEqual(MESSAGE_A.to_json(), expected)
        self.assertEqual(ConnectionMessage.from_json(expected), MESSAGE_A)
        self.assertEqual(ConnectionMessage.from_json(json.loads(json.dumps(expected))), MESSAGE_A)

    def test_jsonPortZero(self) -> None:
        value = attrs.evolve(MESSAGE_A, port=None).to_json()
        self.assertEqual(value["port"], 0)
        self.assertIsNone(ConnectionMessage.from_json(value).port)

    def test_badJson(self) -> None:
        good = MESSAGE_A.to_json()
        bad_values: list[Any] = [
            None,
            [],
            "message",
            {k: v for k, v in good.items() if k != "pubkey"},
            {**good, "port": 65536},
            {**good, "port": -1},
            {**good, "port": "9732"},
            {**good, "port": True},
            {**good, "pubkey": "00" * 31},
            {**good, "pubkey": "zz" * 32},
            {**good, "pubkey": 5},
            {**good, "message_nonce": "11" * 25},
            {**good, "proof_of_work_stamp": None},
            {**good, "version": "TEZOS_MAINNET"},
            {**good, "version": {"chain_name": "X", "distributed_db_version": 2}},
            {**good, "version": {**good["version"], "p2p_version": 0x10000}},
            {**good, "version": {**good["version"], "chain_name": 5}},
        ]
        for value in bad_values:
            exc = self.assertRaises(DecodingError, ConnectionMessage.from_json, value)
            self.assertEqual(exc.reason, "Invalid_json")

    @given(connection_messages)
    def test_roundTrip(self, message: ConnectionMessage) -> None:
        """Any message frames with its body length and decodes back."""
        frame = message.frame()
        self.assertEqual(int.from_bytes(frame[:2], "big"), len(frame) - 2)
        self.assertEqual(len(frame), 92 + len(message.version.chain_name))
        self.assertEqual(ConnectionMessage.decode(frame[2:]), message)

    @given(connection_messages)
    def test_jsonRoundTrip(self, message: ConnectionMessage) -> None:
        value = json.loads(json.dumps(message.to_json()))
        self.assertEqual(ConnectionMessage.from_json(value), message)

    @given(st.one_of(st.binary(max_size=200), connection_garbage()))
    def test_garbage(self, data: bytes) -> None:
        """Arbitrary bytes decode canonically or raise DecodingError."""
        message = decoding_error_only(ConnectionMessage.decode, data)
        if message is not None:
            assert isinstance(message, ConnectionMessage)
            self.assertEqual(message.encode(), data)

    @given(json_connection_messages)
    @example({**MESSAGE_A.to_json(), "version": SURROGATE_VERSION})
    def test_garbageJson(self, value: Any) -> None:
        """Arbitrary JSON values parse or raise DecodingError."""
        message = decoding_error_only(ConnectionMessage.from_json, value)
        if message is not None:
            assert isinstance(message, ConnectionMessage)
            self.assertEqual(ConnectionMessage.from_json(message.to_json()), message)


class NetworkVersionTests(SynchronousTestCase):
    """The announced version triple (wire.md §7)."""

    def test_encode(self) -> None:
        self.assertEqual(MAINNET.encode(), h("0000000d 54455a4f535f4d41494e4e4554 0002 0001"))

    def test_read(self) -> None:
        reader = B.Reader(h("0000000d 54455a4f535f4d41494e4e4554 0002 0001 ff"))
        self.assertEqual(NetworkVersion.read(reader), MAINNET)
        self.assertEqual(reader.remaining, 1)

    def test_chainNameBytes(self) -> None:
        """Text chain names are stored as their UTF-8 bytes."""
        self.assertEqual(NetworkVersion("TEZOS", 0, 0).chain_name, b"TEZOS")
        self.assertEqual(NetworkVersion("TEZOS", 0, 0), NetworkVersion(b"TEZOS", 0, 0))
        self.assertEqual(NetworkVersion(b"TEZOS", 0, 0).chain_name_text(), "TEZOS")

    def test_str(self) -> None:
        self.assertEqual(str(MAINNET), "TEZOS_MAINNET (ddb 2, p2p 1)")

    def test_json(self) -> None:
        value = {"chain_name": "TEZOS_MAINNET", "distributed_db_version": 2, "p2p_version": 1}
        self.assertEqual(MAINNET.to_json(), value)
        self.assertEqual(NetworkVersion.from_json(value), MAINNET)

    def test_jsonInvalidUtf8(self) -> None:
        """Non-UTF-8 names use data-encoding's C{invalid_utf8_string} form."""
        version = NetworkVersion(b"\xff\x00A", 0, 1)
        value = version.to_json()
        self.assertEqual(value["chain_name"], {"invalid_utf8_string": [255, 0, 65]})
        self.assertEqual(NetworkVersion.from_json(value), version)
        self.assertRaises(
            DecodingError,
            NetworkVersion.from_json,
            {**value, "chain_name": {"invalid_utf8_string": [256]}},
        )

    def test_jsonLoneSurrogate(self) -> None:
        """
        A JSON string holding an unpaired surrogate (legal JSON, and what
        C{json.loads} gives for C{"\\ud800"}) is a DecodingError, not a
        UnicodeEncodeError.
        """
        value = json.loads(
            '{"chain_name": "\\ud800", "distributed_db_version": 2, "p2p_version": 1}'
        )
        exc = self.assertRaises(DecodingError, NetworkVersion.from_json, value)
        self.assertEqual(exc.reason, "Invalid_json")

    @given(network_versions)
    def test_roundTrip(self, version: NetworkVersion) -> None:
        reader = B.Reader(version.encode())
        self.assertEqual(NetworkVersion.read(reader), version)
        reader.expect_end()
        self.assertEqual(
            NetworkVersion.from_json(json.loads(json.dumps(version.to_json()))), version
        )

    @given(st.one_of(st.binary(max_size=40), network_versions.map(NetworkVersion.encode)))
    def test_garbage(self, data: bytes) -> None:
        """Reading from arbitrary bytes succeeds canonically or raises DecodingError."""
        reader = B.Reader(data)
        version = decoding_error_only(NetworkVersion.read, reader)
        if version is not None:
            assert isinstance(version, NetworkVersion)
            self.assertEqual(version.encode(), data[: reader.pos])

    @given(st.one_of(json_values, json_versions))
    @example(SURROGATE_VERSION)
    def test_garbageJson(self, value: Any) -> None:
        decoding_error_only(NetworkVersion.from_json, value)


# -- Metadata (§5) ---------------------------------------------------------------------------------


class MetadataTests(SynchronousTestCase):
    """Connection metadata: two booleans (wire.md §5)."""

    def test_encode(self) -> None:
        self.assertEqual(ConnectionMetadata().encode(), b"\x00\x00")
        self.assertEqual(ConnectionMetadata(True, True).encode(), b"\xff\xff")
        self.assertEqual(ConnectionMetadata(True, False).encode(), b"\xff\x00")
        self.assertEqual(ConnectionMetadata(False, True).encode(), b"\x00\xff")

    def test_decode(self) -> None:
        self.assertEqual(ConnectionMetadata.decode(b"\x00\x00"), ConnectionMetadata(False, False))
        self.assertEqual(ConnectionMetadata.decode(b"\xff\xff"), ConnectionMetadata(True, True))
        self.assertEqual(
            ConnectionMetadata.decode(b"\x00\xff"),
            ConnectionMetadata(disable_mempool=False, private_node=True),
        )

    def test_anyNonZeroIsTrue(self) -> None:
        self.assertEqual(ConnectionMetadata.decode(b"\x01\x80"), ConnectionMetadata(True, True))
        self.assertEqual(ConnectionMetadata.decode(b"\x00\x02"), ConnectionMetadata(False, True))

    def test_wrongSize(self) -> None:
        """Exactly 2 bytes: fewer is C{Not_enough_data}, more C{Extra_bytes}."""
        for data in [b"", b"\x00"]:
            exc = self.assertRaises(DecodingError, ConnectionMetadata.decode, data)
            self.assertEqual(exc.reason, "Not_enough_data")
        exc = self.assertRaises(DecodingError, ConnectionMetadata.decode, b"\x00\x00\x00")
        self.assertEqual(exc.reason, "Extra_bytes")

    def test_json(self) -> None:
        value = {"disable_mempool": False, "private_node": True}
        self.assertEqual(ConnectionMetadata(False, True).to_json(), value)
        self.assertEqual(ConnectionMetadata.from_json(value), ConnectionMetadata(False, True))

    def test_badJson(self) -> None:
        bad_values: list[Any] = [
            None,
            [],
            {"disable_mempool": False},
            {"disable_mempool": 0, "private_node": False},
            {"disable_mempool": False, "private_node": "true"},
        ]
        for value in bad_values:
            self.assertRaises(DecodingError, ConnectionMetadata.from_json, value)

    def test_defaultConfig(self) -> None:
        """The default metadata config speaks ConnectionMetadata."""
        config = default_metadata_config(ConnectionMetadata(True, False))
        self.assertEqual(config.encode(config.value()), b"\xff\x00")
        self.assertEqual(config.decode(b"\x00\xff"), ConnectionMetadata(False, True))
        self.assertTrue(config.private_node(ConnectionMetadata(False, True)))
        self.assertEqual(default_metadata_config().value(), ConnectionMetadata())

    @given(metadatas)
    def test_roundTrip(self, metadata: ConnectionMetadata) -> None:
        self.assertEqual(ConnectionMetadata.decode(metadata.encode()), metadata)
        self.assertEqual(ConnectionMetadata.from_json(metadata.to_json()), metadata)

    @given(st.binary(max_size=4))
    def test_garbage(self, data: bytes) -> None:
        """Any 2 bytes decode (re-encoding normalises to 00/ff); others fail."""
        metadata = decoding_error_only(ConnectionMetadata.decode, data)
        self.assertEqual(metadata is not None, len(data) == 2)
        if metadata is not None:
            assert isinstance(metadata, ConnectionMetadata)
            normalised = bytes(0xFF if byte else 0 for byte in data)
            self.assertEqual(metadata.encode(), normalised)

    @given(json_metadatas)
    def test_garbageJson(self, value: Any) -> None:
        decoding_error_only(ConnectionMetadata.from_json, value)


# -- Ack / Nack (§6) -------------------------------------------------------------------------------


class AckTests(SynchronousTestCase):
    """Ack, Nack and Nack_v_0 (wire.md §6)."""

    def test_ack(self) -> None:
        self.assertEqual(encode_ack(Ack()), b"\x00")
        self.assertEqual(decode_ack(b"\x00"), Ack())

    def test_nackV0(self) -> None:
        self.assertEqual(encode_ack(NackV0()), b"\xff")
        self.assertEqual(decode_ack(b"\xff"), NackV0())

    def test_nackExample(self) -> None:
        """The §6.1 example, byte for byte, both ways."""
        nack = Nack(NackMotive.TOO_MANY_CONNECTIONS, (P1, P2))
        self.assertEqual(encode_ack(nack), NACK_EXAMPLE)
        self.assertEqual(NACK_EXAMPLE, b"\x01\x00\x01\x00\x00\x00\x26" + P1_BYTES + P2_BYTES)
        decoded = decode_ack(NACK_EXAMPLE)
        self.assertEqual(decoded, nack)
        assert isinstance(decoded, Nack)
        self.assertIs(decoded.motive, NackMotive.TOO_MANY_CONNECTIONS)
        self.assertEqual(decoded.points, (P1, P2))

    def test_nackEmptyList(self) -> None:
        self.assertEqual(encode_ack(Nack(NackMotive.NO_MOTIVE)), h("01 0000 00000000"))
        self.assertEqual(decode_ack(h("01 0005 00000000")), Nack(NackMotive.ALREADY_CONNECTED, ()))

    def test_motiveCodes(self) -> None:
        """Codes 0..5 as in §6.2 (3 and 4 in number order, not declaration order)."""
        expected = {
            0: NackMotive.NO_MOTIVE,
            1: NackMotive.TOO_MANY_CONNECTIONS,
            2: NackMotive.UNKNOWN_CHAIN_NAME,
            3: NackMotive.DEPRECATED_P2P_VERSION,
            4: NackMotive.DEPRECATED_DISTRIBUTED_DB_VERSION,
            5: NackMotive.ALREADY_CONNECTED,
        }
        for code, motive in expected.items():
            body = b"\x01" + code.to_bytes(2, "big") + b"\x00\x00\x00\x00"
            self.assertEqual(encode_ack(Nack(motive)), body)
            decoded = decode_ack(body)
            assert isinstance(decoded, Nack)
            self.assertIs(decoded.motive, motive)
            self.assertTrue(decoded.motive.known)

    def test_unknownMotiveKept(self) -> None:
        """Unknown codes decode and re-encode unchanged, negative ones too."""
        for code in [42, 6, 0x7FFF, -1, -0x8000]:
            body = b"\x01" + code.to_bytes(2, "big", signed=True) + b"\x00\x00\x00\x00"
            decoded = decode_ack(body)
            assert isinstance(decoded, Nack)
            self.assertEqual(int(decoded.motive), code)
            self.assertFalse(decoded.motive.known)
            self.assertEqual(encode_ack(decoded), body)
        self.assertEqual(encode_ack(Nack(NackMotive(42))), h("01 002a 00000000"))
        self.assertEqual(encode_ack(Nack(42)), h("01 002a 00000000"))
        self.assertEqual(NackMotive(42).name, "UNKNOWN_MOTIVE_42")

    def test_motiveOutOfInt16(self) -> None:
        self.assertRaises(ValueError, NackMotive, 0x8000)
        self.assertRaises(ValueError, Nack, -0x8001)

    def test_hundredPoints(self) -> None:
        """100 points is the limit, and allowed."""
        nack = Nack(NackMotive.TOO_MANY_CONNECTIONS, [P1] * 100)
        encoded = encode_ack(nack)
        self.assertEqual(len(encoded), 7 + 100 * len(P1_BYTES))
        self.assertEqual(decode_ack(encoded), nack)

    def test_tooManyPointsDecoding(self) -> None:
        """101 points is C{List_too_long}."""
        listed = P1_BYTES * 101
        body = h("01 0001") + B.put_uint30(len(listed)) + listed
        exc = self.assertRaises(DecodingError, decode_ack, body)
        self.assertEqual(exc.reason, "List_too_long")

    def test_tooManyPointsEncoding(self) -> None:
        self.assertRaises(EncodingError, encode_ack, Nack(NackMotive.NO_MOTIVE, [P1] * 101))

    def test_listPrefixOverruns(self) -> None:
        """A list byte size larger than what follows is C{Not_enough_data}."""
        body = bytearray(NACK_EXAMPLE)
        body[3:7] = B.put_uint30(0x27)
        exc = self.assertRaises(DecodingError, decode_ack, bytes(body))
        self.assertEqual(exc.reason, "Not_enough_data")

    def test_listPrefixCutsAPoint(self) -> None:
        """A list byte size ending inside a point is C{Not_enough_data}."""
        body = bytearray(NACK_EXAMPLE)
        body[3:7] = B.put_uint30(len(P1_BYTES) + 2)
        exc = self.assertRaises(DecodingError, decode_ack, bytes(body))
        self.assertEqual(exc.reason, "Not_enough_data")

    def test_listPrefixShort(self) -> None:
        """A list byte size ending between points leaves C{Extra_bytes}."""
        body = bytearray(NACK_EXAMPLE)
        body[3:7] = B.put_uint30(len(P1_BYTES))
        exc = self.assertRaises(DecodingError, decode_ack, bytes(body))
        self.assertEqual(exc.reason, "Extra_bytes")

    def test_listPrefixInvalidInt(self) -> None:
        exc = self.assertRaises(DecodingError, decode_ack, h("01 0001 ffffffff"))
        self.assertEqual(exc.reason, "Invalid_int")

    def test_pointTooLong(self) -> None:
        """A point string over 47 bytes is refused by size, before parsing."""
        point = B.put_dynamic(b"1" * 48)
        body = h("01 0001") + B.put_uint30(len(point)) + point
        exc = self.assertRaises(DecodingError, decode_ack, body)
        self.assertEqual(exc.reason, "Size_limit_exceeded")

    def test_pointNotAscii(self) -> None:
        point = B.put_dynamic(b"1.2.3.4:97\xe932")
        body = h("01 0001") + B.put_uint30(len(point)) + point
        self.assertRaises(DecodingError, decode_ack, body)

    def test_pointInvalid(self) -> None:
        for text in [b"localhost:9732", b"1.2.3.4", b"::1:9732", b"[::1]:65536"]:
            point = B.put_dynamic(text)
            body = h("01 0001") + B.put_uint30(len(point)) + point
            exc = self.assertRaises(DecodingError, decode_ack, body)
            self.assertEqual(exc.reason, "Invalid_point")

    def test_scopedPoint(self) -> None:
        """A scoped IPv6 point sent by a peer is a DecodingError like any bad point."""
        body = h("01 0001") + B.put_uint30(len(SCOPED_BYTES)) + SCOPED_BYTES
        self.assertRaises(DecodingError, decode_ack, body)

    def test_unexpectedTag(self) -> None:
        for tag in [0x02, 0x03, 0x10, 0x80, 0xFE]:
            exc = self.assertRaises(DecodingError, decode_ack, bytes((tag,)))
            self.assertEqual(exc.reason, "Unexpected_tag")

    def test_emptyAndTrailing(self) -> None:
        exc = self.assertRaises(DecodingError, decode_ack, b"")
        self.assertEqual(exc.reason, "Not_enough_data")
        for data in [b"\x00\x00", b"\xff\x00", NACK_EXAMPLE + b"\x00"]:
            exc = self.assertRaises(DecodingError, decode_ack, data)
            self.assertEqual(exc.reason, "Extra_bytes")
        for length in range(1, len(NACK_EXAMPLE)):
            exc = self.assertRaises(DecodingError, decode_ack, NACK_EXAMPLE[:length])
            self.assertEqual(exc.reason, "Not_enough_data")

    def test_json(self) -> None:
        self.assertEqual(ack_to_json(Ack()), {"ack": {}})
        self.assertEqual(ack_to_json(NackV0()), {"nack_v_0": {}})
        nack_json = {"nack_motive": 1, "nack_list": ["1.2.3.4:9732", "[2001:db8::1]:9732"]}
        self.assertEqual(ack_to_json(Nack(NackMotive.TOO_MANY_CONNECTIONS, (P1, P2))), nack_json)
        self.assertEqual(ack_from_json({"ack": {}}), Ack())
        self.assertEqual(ack_from_json({"nack_v_0": {}}), NackV0())
        self.assertEqual(ack_from_json(nack_json), Nack(NackMotive.TOO_MANY_CONNECTIONS, (P1, P2)))
        self.assertEqual(ack_from_json({"nack_motive": -7, "nack_list": []}), Nack(-7))

    def test_badJson(self) -> None:
        bad_values: list[Any] = [
            None,
            "ack",
            [],
            {},
            {"nack_motive": 1},
            {"nack_list": []},
            {"nack_motive": 0x8000, "nack_list": []},
            {"nack_motive": True, "nack_list": []},
            {"nack_motive": 1, "nack_list": "1.2.3.4:9732"},
            {"nack_motive": 1, "nack_list": [1]},
            {"nack_motive": 1, "nack_list": ["localhost:9732"]},
            {"nack_motive": 1, "nack_list": ["1.2.3.4:9732"] * 101},
        ]
        for value in bad_values:
            self.assertRaises(DecodingError, ack_from_json, value)

    def test_scopedPointJson(self) -> None:
        """A scoped IPv6 point in JSON is a DecodingError."""
        value = {"nack_motive": 1, "nack_list": [SCOPED_TEXT]}
        self.assertRaises(DecodingError, ack_from_json, value)

    @given(ack_messages)
    def test_roundTrip(self, message: AckMessage) -> None:
        self.assertEqual(decode_ack(encode_ack(message)), message)
        self.assertEqual(ack_from_json(json.loads(json.dumps(ack_to_json(message)))), message)

    @given(st.one_of(st.binary(max_size=60), ack_garbage()))
    @example(h("01 0001") + B.put_uint30(len(SCOPED_BYTES)) + SCOPED_BYTES)
    def test_garbage(self, data: bytes) -> None:
        """
        Arbitrary bytes decode or raise DecodingError.  What decodes
        re-encodes to the same bytes unless a point was written in a
        lenient (non-canonical) text form, in which case the re-encoding
        decodes to the same value.
        """
        message = decoding_error_only(decode_ack, data)
        if message is not None:
            assert isinstance(message, Ack | Nack | NackV0)
            encoded = encode_ack(message)
            if encoded != data:
                self.assertTrue(has_points(message), data.hex())
                self.assertEqual(decode_ack(encoded), message)

    @given(json_acks)
    @example({"nack_motive": 1, "nack_list": [SCOPED_TEXT]})
    def test_garbageJson(self, value: Any) -> None:
        decoding_error_only(ack_from_json, value)


# -- P2P messages (§8) -----------------------------------------------------------------------------


class ControlMessageTests(SynchronousTestCase):
    """The P2P control messages of wire.md §8.2."""

    def setUp(self) -> None:
        self.codec = P2PMessageCodec()

    def assertRecord(self, message: object, record: bytes) -> None:
        """C{message} encodes to exactly C{record}, and decodes back from it."""
        self.assertEqual(record_of(self.codec, message), record)
        self.assertEqual(self.codec.encode(message), record[4:])
        self.assertEqual(self.codec.decode(record[4:]), message)

    def test_disconnect(self) -> None:
        self.assertRecord(Disconnect(), DISCONNECT_RECORD)

    def test_bootstrap(self) -> None:
        self.assertRecord(Bootstrap(), BOOTSTRAP_RECORD)

    def test_advertise(self) -> None:
        self.assertRecord(Advertise((P1, P2)), ADVERTISE_RECORD)

    def test_advertiseEmpty(self) -> None:
        self.assertRecord(Advertise(()), h("00000002 0003"))

    def test_swapRequest(self) -> None:
        """The §8.2 example; the peer id is B's, from Appendix A.2."""
        self.assertEqual(PEER_B, IDENTITY_B.peer_id)
        self.assertRecord(SwapRequest(P1, PEER_B), SWAP_REQUEST_RECORD)

    def test_swapAck(self) -> None:
        record = SWAP_REQUEST_RECORD[:4] + b"\x00\x05" + SWAP_REQUEST_RECORD[6:]
        self.assertRecord(SwapAck(P1, PEER_B), record)

    def test_advertiseHundred(self) -> None:
        message = Advertise([P2] * 100)
        self.assertEqual(self.codec.decode(self.codec.encode(message)), message)

    def test_advertiseTooManyEncoding(self) -> None:
        self.assertRaises(EncodingError, self.codec.encode, Advertise([P1] * 101))

    def test_advertiseTooManyDecoding(self) -> None:
        exc = self.assertRaises(DecodingError, self.codec.decode, b"\x00\x03" + P1_BYTES * 101)
        self.assertEqual(exc.reason, "List_too_long")

    def test_advertiseBrokenPoint(self) -> None:
        """A point running past the end of the body is C{Not_enough_data}."""
        exc = self.assertRaises(DecodingError, self.codec.decode, b"\x00\x03" + P1_BYTES[:-1])
        self.assertEqual(exc.reason, "Not_enough_data")
        exc = self.assertRaises(DecodingError, self.codec.decode, b"\x00\x03\x00\x00")
        self.assertEqual(exc.reason, "Not_enough_data")

    def test_advertiseScopedPoint(self) -> None:
        """A scoped IPv6 point from a peer is a DecodingError."""
        body = b"\x00\x03" + SCOPED_BYTES
        self.assertRaises(DecodingError, self.codec.decode, body)

    def test_trailingBytes(self) -> None:
        for body in [
            h("0001 00"),
            h("0002 ff"),
            SWAP_REQUEST_RECORD[4:] + b"\x00",
        ]:
            exc = self.assertRaises(DecodingError, self.codec.decode, body)
            self.assertEqual(exc.reason, "Extra_bytes")

    def test_truncated(self) -> None:
        body = SWAP_REQUEST_RECORD[4:]
        for length in range(len(body)):
            exc = self.assertRaises(DecodingError, self.codec.decode, body[:length])
            self.assertEqual(exc.reason, "Not_enough_data")

    def test_unexpectedTag(self) -> None:
        """Without application encodings, every non-control tag is unknown."""
        for tag in [0x0000, 0x0006, 0x0010, 0x0100, 0xFFFF]:
            exc = self.assertRaises(DecodingError, self.codec.decode, tag.to_bytes(2, "big"))
            self.assertEqual(exc.reason, "Unexpected_tag")

    def test_encodeUnknown(self) -> None:
        self.assertRaises(EncodingError, self.codec.encode, Note("hi"))
        self.assertRaises(EncodingError, self.codec.encode, object())
        self.assertRaises(EncodingError, self.codec.encode, b"raw")

    def test_maxSize(self) -> None:
        """The whole record is limited to 100 MiB."""
        self.assertEqual(self.codec.max_size, 100 * 1024 * 1024)
        self.assertEqual(MAX_MESSAGE_SIZE, 104857600)

    def test_json(self) -> None:
        cases: list[tuple[object, Any]] = [
            (Disconnect(), {"kind": "Disconnect"}),
            (Bootstrap(), {"kind": "Bootstrap"}),
            (
                Advertise((P1, P2)),
                {"id": ["1.2.3.4:9732", "[2001:db8::1]:9732"], "kind": "Advertise"},
            ),
            (
                SwapRequest(P1, PEER_B),
                {
                    "point": "1.2.3.4:9732",
                    "peer_id": "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf",
                    "kind": "Swap_request",
                },
            ),
            (
                SwapAck(P2, PEER_B),
                {
                    "point": "[2001:db8::1]:9732",
                    "peer_id": "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf",
                    "kind": "Swap_ack",
                },
            ),
        ]
        for message, value in cases:
            self.assertEqual(self.codec.to_json(message), value)
            self.assertEqual(self.codec.from_json(value), message)

    def test_badJson(self) -> None:
        bad_values: list[Any] = [
            None,
            "Bootstrap",
            {},
            {"kind": "Nope"},
            {"kind": "Advertise"},
            {"kind": "Advertise", "id": "1.2.3.4:9732"},
            {"kind": "Advertise", "id": ["1.2.3.4:9732"] * 101},
            {"kind": "Swap_request", "point": "1.2.3.4:9732"},
            {"kind": "Swap_ack", "point": 5, "peer_id": "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf"},
            {"tag": 0x10, "payload": "00"},
        ]
        for value in bad_values:
            exc = self.assertRaises(DecodingError, self.codec.from_json, value)
            self.assertEqual(exc.reason, "Invalid_json")
        for value in [
            {"kind": "Advertise", "id": ["nowhere"]},
            {"kind": "Swap_ack", "point": "[::1]", "peer_id": "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf"},
        ]:
            exc = self.assertRaises(DecodingError, self.codec.from_json, value)
            self.assertEqual(exc.reason, "Invalid_point")
        exc = self.assertRaises(
            DecodingError,
            self.codec.from_json,
            {"kind": "Swap_request", "point": "1.2.3.4:9732", "peer_id": "idx"},
        )
        self.assertEqual(exc.reason, "Invalid_b58check")

    def test_scopedPointJson(self) -> None:
        """A scoped IPv6 point in JSON is a DecodingError."""
        for value in [
            {"kind": "Advertise", "id": [SCOPED_TEXT]},
            {"kind": "Swap_request", "point": SCOPED_TEXT, "peer_id": str(PEER_B)},
        ]:
            self.assertRaises(DecodingError, self.codec.from_json, value)

    @given(control_messages)
    def test_roundTrip(self, message: object) -> None:
        record = record_of(self.codec, message)
        self.assertEqual(int.from_bytes(record[:4], "big"), len(record) - 4)
        self.assertEqual(self.codec.decode(record[4:]), message)
        self.assertEqual(
            self.codec.from_json(json.loads(json.dumps(self.codec.to_json(message)))), message
        )

    @given(st.one_of(st.binary(max_size=60), p2p_garbage()))
    @example(h("0003") + SCOPED_BYTES)
    def test_garbage(self, data: bytes) -> None:
        """
        Arbitrary bodies decode or raise DecodingError; what decodes
        re-encodes to the same bytes (modulo lenient point text).
        """
        message = decoding_error_only(self.codec.decode, data)
        if message is not None:
            encoded = self.codec.encode(message)
            if encoded != data:
                self.assertTrue(has_points(message), data.hex())
                self.assertEqual(self.codec.decode(encoded), message)

    @given(json_p2p)
    @example({"kind": "Advertise", "id": [SCOPED_TEXT]})
    def test_garbageJson(self, value: Any) -> None:
        decoding_error_only(self.codec.from_json, value)


class ApplicationMessageTests(SynchronousTestCase):
    """Application messages embedded in the P2P envelope (wire.md §8.1, §8.3)."""

    def setUp(self) -> None:
        self.codec = note_codec()

    def test_tagging(self) -> None:
        """The payload follows the uint16 tag; the record has the uint30 length."""
        self.assertEqual(self.codec.encode(Note("hi")), b"\x00\x10hi")
        self.assertEqual(record_of(self.codec, Note("hi")), h("00000004 0010 6869"))
        self.assertEqual(self.codec.decode(b"\x00\x10hi"), Note("hi"))
        self.assertEqual(self.codec.encode(Opaque(b"\x01")), h("1234 01"))
        self.assertEqual(self.codec.decode(h("1234")), Opaque(b""))

    def test_controlMessagesStillWork(self) -> None:
        self.assertEqual(self.codec.decode(BOOTSTRAP_RECORD[4:]), Bootstrap())
        self.assertEqual(record_of(self.codec, SwapRequest(P1, PEER_B)), SWAP_REQUEST_RECORD)

    def test_encodings(self) -> None:
        self.assertEqual(
            sorted(case.tag for case in self.codec.encodings), [NOTE_TAG, OPAQUE_ENCODING.tag]
        )
        self.assertIs(self.codec.case_for(Note("x")), NOTE_ENCODING)

    def test_unexpectedTag(self) -> None:
        for tag in [0x0011, 0x0000, 0x1235]:
            exc = self.assertRaises(DecodingError, self.codec.decode, tag.to_bytes(2, "big") + b"x")
            self.assertEqual(exc.reason, "Unexpected_tag")

    def test_decoderErrorWrapped(self) -> None:
        """Whatever the application decoder raises becomes a DecodingError."""
        exc = self.assertRaises(DecodingError, self.codec.decode, b"\x00\x10\xff")
        self.assertEqual(exc.reason, "Invalid_payload")

        def explode(data: bytes) -> Note:
            raise RuntimeError("boom")

        def refuse(data: bytes) -> Note:
            raise DecodingError("Custom_reason")

        codec = P2PMessageCodec(
            [
                attrs.evolve(NOTE_ENCODING, decode=explode),
                MessageEncoding(
                    tag=0x20, title="Refuse", type=Opaque, encode=lambda m: m.data, decode=refuse
                ),
            ]
        )
        exc = self.assertRaises(DecodingError, codec.decode, b"\x00\x10a")
        self.assertEqual(exc.reason, "Invalid_payload")
        exc = self.assertRaises(DecodingError, codec.decode, b"\x00\x20a")
        self.assertEqual(exc.reason, "Custom_reason")

    def test_encoderErrorWrapped(self) -> None:
        """Whatever the application encoder raises becomes an EncodingError."""
        self.assertRaises(EncodingError, self.codec.encode, Note("\ud800"))

        def refuse(message: Note) -> bytes:
            raise EncodingError("no")

        codec = P2PMessageCodec([attrs.evolve(NOTE_ENCODING, encode=refuse)])
        exc = self.assertRaises(EncodingError, codec.encode, Note("x"))
        self.assertEqual(str(exc), "no")

    def test_maxLengthEncoding(self) -> None:
        self.assertEqual(self.codec.encode(Note("x" * 64)), b"\x00\x10" + b"x" * 64)
        self.assertRaises(EncodingError, self.codec.encode, Note("x" * 65))
        self.assertRaises(EncodingError, self.codec.encode, Note("\u00e9" * 33))

    def test_maxLengthDecoding(self) -> None:
        self.assertEqual(self.codec.decode(b"\x00\x10" + b"x" * 64), Note("x" * 64))
        exc = self.assertRaises(DecodingError, self.codec.decode, b"\x00\x10" + b"x" * 65)
        self.assertEqual(exc.reason, "Size_limit_exceeded")

    def test_duplicateTagRefused(self) -> None:
        self.assertRaises(ValueError, P2PMessageCodec, [NOTE_ENCODING, NOTE_ENCODING])
        self.assertRaises(
            ValueError,
            P2PMessageCodec,
            [NOTE_ENCODING, attrs.evolve(OPAQUE_ENCODING, tag=NOTE_TAG)],
        )

    def test_controlTagRefused(self) -> None:
        for tag in range(1, 6):
            self.assertRaises(ValueError, P2PMessageCodec, [attrs.evolve(NOTE_ENCODING, tag=tag)])

    def test_tagRange(self) -> None:
        for tag in [-1, 0x10000]:
            self.assertRaises(ValueError, P2PMessageCodec, [attrs.evolve(NOTE_ENCODING, tag=tag)])
        codec = P2PMessageCodec([attrs.evolve(NOTE_ENCODING, tag=0xFFFF)])
        self.assertEqual(codec.encode(Note("a")), h("ffff 61"))

    def test_json(self) -> None:
        self.assertEqual(self.codec.to_json(Note("hi")), {"kind": "Note", "text": "hi"})
        self.assertEqual(self.codec.from_json({"kind": "Note", "text": "hi"}), Note("hi"))

    def test_jsonWithoutConverter(self) -> None:
        """A case without a JSON form is shown as its tag and hex payload."""
        value = self.codec.to_json(Opaque(b"\x01\x02"))
        self.assertEqual(value, {"kind": "Opaque", "tag": 0x1234, "payload": "0102"})
        self.assertEqual(self.codec.from_json(value), Opaque(b"\x01\x02"))

    def test_badJson(self) -> None:
        bad_values: list[Any] = [
            {"kind": "Note", "text": 5},
            {"tag": 0x99, "payload": "00"},
            {"tag": NOTE_TAG, "payload": "zz"},
            {"tag": NOTE_TAG, "payload": "ff"},
            {"tag": "16", "payload": "00"},
        ]
        for value in bad_values:
            self.assertRaises(DecodingError, self.codec.from_json, value)

    @given(app_messages)
    def test_roundTrip(self, message: object) -> None:
        record = record_of(self.codec, message)
        self.assertEqual(self.codec.decode(record[4:]), message)
        self.assertEqual(
            self.codec.from_json(json.loads(json.dumps(self.codec.to_json(message)))), message
        )

    @given(st.one_of(st.binary(max_size=80), p2p_garbage()))
    @example(h("0004") + SCOPED_BYTES + bytes(16))
    def test_garbage(self, data: bytes) -> None:
        message = decoding_error_only(self.codec.decode, data)
        if message is not None:
            encoded = self.codec.encode(message)
            if encoded != data:
                self.assertTrue(has_points(message), data.hex())
                self.assertEqual(self.codec.decode(encoded), message)

    @given(json_p2p)
    @example({"kind": "Advertise", "id": [SCOPED_TEXT]})
    def test_garbageJson(self, value: Any) -> None:
        decoding_error_only(self.codec.from_json, value)


class RawMessageTests(SynchronousTestCase):
    """Raw (undecoded payload) cases for the Octez shell tags (wire.md §8.3)."""

    def setUp(self) -> None:
        self.codec = P2PMessageCodec(raw_message_encodings())

    def test_shellTags(self) -> None:
        tags = [case.tag for case in raw_message_encodings()]
        self.assertEqual(tags, sorted(SHELL_MESSAGE_TITLES))
        self.assertEqual(tags[0], 0x10)
        self.assertEqual(tags[-1], 0x91)
        self.assertEqual(len(tags), 19)
        self.assertTrue(all(case.type is RawMessage for case in raw_message_encodings()))

    def test_decode(self) -> None:
        for tag, title in SHELL_MESSAGE_TITLES.items():
            message = self.codec.decode(tag.to_bytes(2, "big") + b"\x01\x02")
            self.assertEqual(message, RawMessage(tag, b"\x01\x02", title))

    def test_encode(self) -> None:
        message = RawMessage(0x14, b"head", "Current_head")
        self.assertEqual(self.codec.encode(message), b"\x00\x14head")
        self.assertEqual(self.codec.decode(self.codec.encode(message)), message)

    def test_unknownTagDecoding(self) -> None:
        for tag in [0x15, 0x50, 0x92, 0x100]:
            exc = self.assertRaises(DecodingError, self.codec.decode, tag.to_bytes(2, "big"))
            self.assertEqual(exc.reason, "Unexpected_tag")

    def test_unknownTagEncoding(self) -> None:
        """
        A raw message whose tag has no case cannot be encoded: it must not
        go out under another tag.
        """
        self.assertRaises(EncodingError, self.codec.encode, RawMessage(0x55, b"x"))

    def test_customTitles(self) -> None:
        codec = P2PMessageCodec(raw_message_encodings({0x20: "Foo"}))
        self.assertEqual(codec.decode(b"\x00\x20"), RawMessage(0x20, b"", "Foo"))
        self.assertRaises(DecodingError, codec.decode, b"\x00\x10")

    def test_json(self) -> None:
        message = RawMessage(0x10, b"\xab", "Get_current_branch")
        value = self.codec.to_json(message)
        self.assertEqual(value, {"kind": "Get_current_branch", "tag": 0x10, "payload": "ab"})
        self.assertEqual(self.codec.from_json(value), message)

    @given(st.sampled_from(sorted(SHELL_MESSAGE_TITLES)), st.binary(max_size=50))
    def test_roundTrip(self, tag: int, payload: bytes) -> None:
        message = RawMessage(tag, payload, SHELL_MESSAGE_TITLES[tag])
        body = self.codec.encode(message)
        self.assertEqual(body, tag.to_bytes(2, "big") + payload)
        self.assertEqual(self.codec.decode(body), message)


# -- Records and byte codecs -----------------------------------------------------------------------


class FrameRecordTests(SynchronousTestCase):
    """C{frame_record}: the uint30 length of a P2P message (wire.md §8.1)."""

    def test_frame(self) -> None:
        self.assertEqual(
            frame_record(b"\x00\x02", MAX_MESSAGE_SIZE), DISCONNECT_RECORD[:4] + b"\x00\x02"
        )
        self.assertEqual(frame_record(b"", 4), b"\x00\x00\x00\x00")

    def test_overMaxSize(self) -> None:
        """The bound counts the 4-byte prefix."""
        self.assertEqual(frame_record(b"x" * 9, 13), b"\x00\x00\x00\x09" + b"x" * 9)
        self.assertRaises(EncodingError, frame_record, b"x" * 10, 13)
        self.assertRaises(EncodingError, frame_record, b"", 3)


class BytesCodecTests(SynchronousTestCase):
    """L{BytesCodec}: messages that are plain byte strings."""

    def test_encode(self) -> None:
        codec = BytesCodec()
        self.assertEqual(codec.encode(b"abc"), b"abc")
        self.assertEqual(codec.encode(bytearray(b"abc")), b"abc")
        self.assertEqual(codec.encode(memoryview(b"abc")), b"abc")
        self.assertIsInstance(codec.encode(bytearray(b"abc")), bytes)

    def test_encodeNonBytes(self) -> None:
        codec = BytesCodec()
        self.assertRaises(EncodingError, codec.encode, "abc")
        self.assertRaises(EncodingError, codec.encode, 5)

    def test_decode(self) -> None:
        self.assertEqual(BytesCodec().decode(b"\x00\x01"), b"\x00\x01")

    def test_maxSize(self) -> None:
        self.assertEqual(BytesCodec().max_size, MAX_MESSAGE_SIZE)
        codec = BytesCodec(max_size=10)
        self.assertEqual(codec.max_size, 10)
        self.assertEqual(
            frame_record(codec.encode(b"x" * 6), codec.max_size), h("00000006") + b"x" * 6
        )
        self.assertRaises(EncodingError, frame_record, codec.encode(b"x" * 7), codec.max_size)

    def test_json(self) -> None:
        self.assertEqual(BytesCodec().to_json(b"\x01\xab"), "01ab")

    @given(st.binary(max_size=100))
    def test_roundTrip(self, data: bytes) -> None:
        codec = BytesCodec()
        record = frame_record(codec.encode(data), codec.max_size)
        self.assertEqual(record[:4], B.put_uint30(len(data)))
        self.assertEqual(codec.decode(record[4:]), data)


class PointCodecTests(SynchronousTestCase):
    """C{put_point}/C{read_point}: points inside messages (wire.md §9.1)."""

    def test_examples(self) -> None:
        self.assertEqual(put_point(P1), P1_BYTES)
        self.assertEqual(put_point(P2), P2_BYTES)
        self.assertEqual(read_point(B.Reader(P1_BYTES)), P1)
        self.assertEqual(read_point(B.Reader(P2_BYTES)), P2)

    def test_longest(self) -> None:
        """The longest point is 51 bytes with its prefix."""
        point = Point("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535)
        self.assertEqual(len(put_point(point)), 51)
        self.assertEqual(read_point(B.Reader(put_point(point))), point)

    def test_lenientForms(self) -> None:
        """Any accepted text form reads to the canonical point."""
        self.assertEqual(read_point(B.Reader(B.put_dynamic(b"[::ffff:1.2.3.4]:9732"))), P1)
        self.assertEqual(read_point(B.Reader(B.put_dynamic(b"[2001:DB8:0::1]:9732"))), P2)

    @given(points)
    def test_roundTrip(self, point: Point) -> None:
        encoded = put_point(point)
        self.assertLessEqual(len(encoded), 51)
        reader = B.Reader(encoded)
        self.assertEqual(read_point(reader), point)
        reader.expect_end()
