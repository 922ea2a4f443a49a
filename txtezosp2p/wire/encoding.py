# -*- test-case-name: tests.test_encoding -*-
"""
Codecs for everything the P2P layer puts on the wire.

Pure functions and value objects, no I/O.  Decoders take untrusted bytes and
raise :class:`~txtezosp2p.wire.errors.DecodingError` (never anything else) on bad
input; every size bound of the Octez encodings is enforced before data is
sliced.  Encoders raise :class:`~txtezosp2p.wire.errors.EncodingError`.

* connection message (wire.md §2), network version (§7)
* connection metadata (§5)
* Ack / Nack / Nack_v_0 (§6)
* the P2P message envelope (§8): Disconnect, Bootstrap, Advertise,
  Swap_request, Swap_ack and the application's own messages, each
  application case being described by a :class:`MessageEncoding`.

Each value also has the JSON form of Octez's encoding (used by the command
line and the admin API): ``to_json``/``*_from_json`` functions below.

Octez sources: ``src/lib_p2p/p2p_socket.ml`` (Connection_message, Ack),
``src/lib_p2p/p2p_message.ml``, ``src/lib_p2p_services/connection_metadata.ml``,
``src/lib_version/network_version.ml``, ``src/lib_base/p2p_point.ml``.

The module is longer than our usual 600 lines because it mirrors these
files value by value, each value's binary and JSON forms side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import attrs
from zope.interface import implementer

from . import binary as B
from .errors import DecodingError, EncodingError, NackMotive, UnexpectedSizeOfDecodedBuffer
from .ids import MAX_POINT_TEXT, PEER_ID_SIZE, PeerId, Point
from .interfaces import IMessageCodec

PUBLIC_KEY_SIZE = 32
NONCE_SIZE = 24

#: Octez's ``Ack`` list bound, and ``Advertise``'s (wire.md §6.1, §8.2).
MAX_NACK_POINTS = 100
MAX_ADVERTISE_POINTS = 100
#: Upper bound of a whole P2P message record, 4-byte prefix included (§8.1).
MAX_MESSAGE_SIZE = 100 * 1024 * 1024
#: Largest connection-message body: it must fit a uint16 frame (§2.2).
MAX_CONNECTION_MESSAGE_BODY = 0xFFFF
#: Fixed part of a connection message body (everything but the chain name).
CONNECTION_MESSAGE_FIXED = 2 + 32 + 24 + 24 + 4 + 2 + 2


def _hex(data: bytes) -> str:
    return data.hex()


def _unhex(value: Any, size: int | None, what: str) -> bytes:
    if not isinstance(value, str):
        raise DecodingError("Invalid_json", f"{what}: expected a hex string")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise DecodingError("Invalid_json", f"{what}: invalid hex") from None
    if size is not None and len(data) != size:
        raise DecodingError("Invalid_json", f"{what}: expected {size} bytes, got {len(data)}")
    return data


def _json_field(obj: Any, name: str, what: str) -> Any:
    if not isinstance(obj, dict):
        raise DecodingError("Invalid_json", f"{what}: expected an object")
    if name not in obj:
        raise DecodingError("Invalid_json", f"{what}: missing field {name!r}")
    return obj[name]


def _json_int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise DecodingError("Invalid_json", f"{what}: expected an integer in [{lo}, {hi}]")
    return value


def _json_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise DecodingError("Invalid_json", f"{what}: expected a boolean")
    return value


# -- Points inside messages -------------------------------------------------


def read_point(reader: B.Reader) -> Point:
    """A ``uint30``-prefixed point string of at most 47 bytes (wire.md §9.1)."""
    raw = reader.dynamic(MAX_POINT_TEXT)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DecodingError(B.INVALID_STRING, "point is not ASCII") from None
    return Point.parse(text)


def put_point(point: Point) -> bytes:
    text = point.to_text().encode("ascii")
    if len(text) > MAX_POINT_TEXT:  # pragma: no cover - every Point fits
        raise EncodingError("point text too long")
    return B.put_dynamic(text)


def point_from_json(value: Any) -> Point:
    if not isinstance(value, str):
        raise DecodingError("Invalid_json", "point: expected a string")
    return Point.parse(value)


def peer_id_from_json(value: Any) -> PeerId:
    if not isinstance(value, str):
        raise DecodingError("Invalid_json", "peer_id: expected a string")
    return PeerId.from_b58check(value)


# -- Network version (§7) ---------------------------------------------------


def _chain_name(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


@attrs.frozen
class NetworkVersion:
    """``(chain_name, distributed_db_version, p2p_version)``; the chain name is raw bytes."""

    chain_name: bytes = attrs.field(converter=_chain_name)
    distributed_db_version: int
    p2p_version: int

    def encode(self) -> bytes:
        return (
            B.put_dynamic(self.chain_name)
            + B.put_uint16(self.distributed_db_version)
            + B.put_uint16(self.p2p_version)
        )

    @classmethod
    def read(cls, reader: B.Reader) -> NetworkVersion:
        name = reader.dynamic(MAX_CONNECTION_MESSAGE_BODY)
        return cls(name, reader.uint16(), reader.uint16())

    def chain_name_text(self) -> str:
        return self.chain_name.decode("utf-8", "replace")

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_name": _string_to_json(self.chain_name),
            "distributed_db_version": self.distributed_db_version,
            "p2p_version": self.p2p_version,
        }

    @classmethod
    def from_json(cls, value: Any) -> NetworkVersion:
        name = _string_from_json(_json_field(value, "chain_name", "version"), "chain_name")
        ddb = _json_int(_json_field(value, "distributed_db_version", "version"), "ddb", 0, 0xFFFF)
        p2p = _json_int(_json_field(value, "p2p_version", "version"), "p2p_version", 0, 0xFFFF)
        return cls(name, ddb, p2p)

    def __str__(self) -> str:
        return (
            f"{self.chain_name_text()} (ddb {self.distributed_db_version}, p2p {self.p2p_version})"
        )


def _string_to_json(data: bytes) -> Any:
    # data-encoding writes non-UTF-8 strings as {"invalid_utf8_string": [bytes]}
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"invalid_utf8_string": list(data)}


def _string_from_json(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # e.g. a lone surrogate, legal in JSON
            raise DecodingError("Invalid_json", f"{what}: not a valid Unicode string") from None
    if isinstance(value, dict) and isinstance(value.get("invalid_utf8_string"), list):
        items = value["invalid_utf8_string"]
        if all(isinstance(i, int) and 0 <= i <= 255 for i in items):
            return bytes(items)
    raise DecodingError("Invalid_json", f"{what}: expected a string")


# -- Connection message (§2) ------------------------------------------------


@attrs.frozen
class ConnectionMessage:
    """The cleartext first message: who we are and what we speak."""

    port: int | None
    public_key: bytes
    proof_of_work_stamp: bytes
    message_nonce: bytes
    version: NetworkVersion

    def encode(self) -> bytes:
        """The body, without the 2-byte frame length."""
        port = 0 if self.port is None else self.port
        return (
            B.put_uint16(port)
            + B.put_fixed(self.public_key, PUBLIC_KEY_SIZE)
            + B.put_fixed(self.proof_of_work_stamp, NONCE_SIZE)
            + B.put_fixed(self.message_nonce, NONCE_SIZE)
            + self.version.encode()
        )

    def frame(self) -> bytes:
        """
        The message as sent: 2-byte big-endian length, then the body.
        These exact bytes feed the nonce derivation (wire.md §3.2).
        """
        body = self.encode()
        if len(body) > MAX_CONNECTION_MESSAGE_BODY:
            raise UnexpectedSizeOfDecodedBuffer(f"connection message of {len(body)} bytes")
        return B.put_uint16(len(body)) + body

    @classmethod
    def decode(cls, body: bytes) -> ConnectionMessage:
        """Decode a body (the bytes after the 2-byte length); trailing bytes are refused."""
        reader = B.Reader(body)
        port = reader.uint16()
        message = cls(
            port=None if port == 0 else port,
            public_key=reader.fixed(PUBLIC_KEY_SIZE),
            proof_of_work_stamp=reader.fixed(NONCE_SIZE),
            message_nonce=reader.fixed(NONCE_SIZE),
            version=NetworkVersion.read(reader),
        )
        reader.expect_end()
        return message

    def to_json(self) -> dict[str, Any]:
        return {
            "port": 0 if self.port is None else self.port,
            "pubkey": _hex(self.public_key),
            "proof_of_work_stamp": _hex(self.proof_of_work_stamp),
            "message_nonce": _hex(self.message_nonce),
            "version": self.version.to_json(),
        }

    @classmethod
    def from_json(cls, value: Any) -> ConnectionMessage:
        what = "connection_message"
        port = _json_int(_json_field(value, "port", what), "port", 0, 0xFFFF)
        return cls(
            port=None if port == 0 else port,
            public_key=_unhex(_json_field(value, "pubkey", what), PUBLIC_KEY_SIZE, "pubkey"),
            proof_of_work_stamp=_unhex(
                _json_field(value, "proof_of_work_stamp", what), NONCE_SIZE, "stamp"
            ),
            message_nonce=_unhex(_json_field(value, "message_nonce", what), NONCE_SIZE, "nonce"),
            version=NetworkVersion.from_json(_json_field(value, "version", what)),
        )


# -- Connection metadata (§5) -----------------------------------------------


@attrs.frozen
class ConnectionMetadata:
    """``{disable_mempool, private_node}``: two booleans, one encrypted chunk."""

    disable_mempool: bool = False
    private_node: bool = False

    def encode(self) -> bytes:
        return B.put_bool(self.disable_mempool) + B.put_bool(self.private_node)

    @classmethod
    def decode(cls, data: bytes) -> ConnectionMetadata:
        reader = B.Reader(data)
        value = cls(reader.bool(), reader.bool())
        reader.expect_end()
        return value

    def to_json(self) -> dict[str, Any]:
        return {"disable_mempool": self.disable_mempool, "private_node": self.private_node}

    @classmethod
    def from_json(cls, value: Any) -> ConnectionMetadata:
        return cls(
            _json_bool(_json_field(value, "disable_mempool", "metadata"), "disable_mempool"),
            _json_bool(_json_field(value, "private_node", "metadata"), "private_node"),
        )


M = TypeVar("M")


@attrs.frozen
class MetadataConfig(Generic[M]):
    """
    How connection metadata is encoded and what we announce
    (Octez ``P2p_params.conn_meta_config``).  The default speaks
    :class:`ConnectionMetadata`, which is what every Tezos node uses.
    """

    encode: Callable[[M], bytes]
    decode: Callable[[bytes], M]
    value: Callable[[], M]
    private_node: Callable[[M], bool]
    to_json: Callable[[M], Any] = repr


def default_metadata_config(
    metadata: ConnectionMetadata | None = None,
) -> MetadataConfig[ConnectionMetadata]:
    local = metadata or ConnectionMetadata()
    return MetadataConfig(
        encode=ConnectionMetadata.encode,
        decode=ConnectionMetadata.decode,
        value=lambda: local,
        private_node=lambda meta: meta.private_node,
        to_json=ConnectionMetadata.to_json,
    )


# -- Ack / Nack (§6) --------------------------------------------------------


def _points(value: Iterable[Point]) -> tuple[Point, ...]:
    return tuple(value)


@attrs.frozen
class Ack:
    """Accept the connection (tag 0x00)."""


@attrs.frozen
class NackV0:
    """Legacy refusal without motive (tag 0xFF), sent to p2p_version-0 peers."""


@attrs.frozen
class Nack:
    """Refusal with a motive and up to 100 alternative points (tag 0x01)."""

    motive: NackMotive = attrs.field(converter=NackMotive)
    points: tuple[Point, ...] = attrs.field(default=(), converter=_points)


AckMessage = Ack | Nack | NackV0

ACK_TAG = 0x00
NACK_TAG = 0x01
NACK_V0_TAG = 0xFF


def _put_point_list(points: Sequence[Point], bound: int, what: str) -> bytes:
    if len(points) > bound:
        raise EncodingError(f"{what}: {len(points)} points, at most {bound}")
    return b"".join(put_point(p) for p in points)


def _read_point_list(reader: B.Reader, bound: int) -> tuple[Point, ...]:
    points: list[Point] = []
    while reader.remaining:
        if len(points) == bound:
            raise DecodingError(B.LIST_TOO_LONG, f"more than {bound} points")
        points.append(read_point(reader))
    return tuple(points)


def encode_ack(message: AckMessage) -> bytes:
    if isinstance(message, Ack):
        return bytes((ACK_TAG,))
    if isinstance(message, NackV0):
        return bytes((NACK_V0_TAG,))
    listed = _put_point_list(message.points, MAX_NACK_POINTS, "nack")
    return (
        bytes((NACK_TAG,)) + B.put_int16(int(message.motive)) + B.put_uint30(len(listed)) + listed
    )


def decode_ack(data: bytes) -> AckMessage:
    reader = B.Reader(data)
    tag = reader.uint8()
    result: AckMessage
    if tag == ACK_TAG:
        result = Ack()
    elif tag == NACK_V0_TAG:
        result = NackV0()
    elif tag == NACK_TAG:
        motive = NackMotive(reader.int16())
        # the list prefix is its byte size, not its element count (wire.md §0)
        listed = reader.sub(reader.uint30())
        result = Nack(motive, _read_point_list(listed, MAX_NACK_POINTS))
    else:
        raise DecodingError(B.UNEXPECTED_TAG, f"ack tag {tag:#04x}")
    reader.expect_end()
    return result


def ack_to_json(message: AckMessage) -> dict[str, Any]:
    if isinstance(message, Ack):
        return {"ack": {}}
    if isinstance(message, NackV0):
        return {"nack_v_0": {}}
    return {"nack_motive": int(message.motive), "nack_list": [p.to_text() for p in message.points]}


def ack_from_json(value: Any) -> AckMessage:
    if not isinstance(value, dict):
        raise DecodingError("Invalid_json", "ack: expected an object")
    if set(value) == {"ack"}:
        return Ack()
    if set(value) == {"nack_v_0"}:
        return NackV0()
    motive = _json_int(_json_field(value, "nack_motive", "nack"), "nack_motive", -0x8000, 0x7FFF)
    points = _json_field(value, "nack_list", "nack")
    if not isinstance(points, list) or len(points) > MAX_NACK_POINTS:
        raise DecodingError("Invalid_json", f"nack_list: a list of at most {MAX_NACK_POINTS}")
    return Nack(NackMotive(motive), tuple(point_from_json(p) for p in points))


# -- P2P messages (§8) ------------------------------------------------------


@attrs.frozen
class Disconnect:
    """Tag 0x01: close the connection.  Octez never sends it."""


@attrs.frozen
class Bootstrap:
    """Tag 0x02: please send me addresses."""


@attrs.frozen
class Advertise:
    """Tag 0x03: a list of at most 100 points."""

    points: tuple[Point, ...] = attrs.field(converter=_points)


@attrs.frozen
class SwapRequest:
    """Tag 0x04: I suggest you connect to ``point`` where ``peer_id`` lives."""

    point: Point
    peer_id: PeerId


@attrs.frozen
class SwapAck:
    """Tag 0x05: answer to a swap request, same layout."""

    point: Point
    peer_id: PeerId


ControlMessage = Disconnect | Bootstrap | Advertise | SwapRequest | SwapAck
CONTROL_TAGS: dict[type, int] = {
    Disconnect: 0x01,
    Bootstrap: 0x02,
    Advertise: 0x03,
    SwapRequest: 0x04,
    SwapAck: 0x05,
}

T = TypeVar("T")


@attrs.frozen
class MessageEncoding(Generic[T]):
    """
    One application message case of the P2P envelope, supplied by the
    embedding application (Octez ``P2p_params.Encoding``).

    ``encode`` turns a value of ``type`` into the payload that follows the
    2-byte tag; ``decode`` does the reverse on untrusted bytes and may raise
    anything: errors become :class:`DecodingError`.  ``max_length`` bounds
    the payload (Octez declares this field but ignores it; we enforce it).
    """

    tag: int
    title: str
    type: type[T]
    encode: Callable[[T], bytes]
    decode: Callable[[bytes], T]
    max_length: int | None = None
    to_json: Callable[[T], Any] | None = None
    from_json: Callable[[Any], T] | None = None


@attrs.frozen
class RawMessage:
    """
    An application message kept as raw payload, for tools that inspect
    traffic without the application's encodings.
    """

    tag: int
    payload: bytes
    title: str = ""


#: Titles of the Octez shell messages (wire.md §8.3), for display of raw messages.
SHELL_MESSAGE_TITLES: dict[int, str] = {
    0x10: "Get_current_branch",
    0x11: "Current_branch",
    0x12: "Deactivate",
    0x13: "Get_current_head",
    0x14: "Current_head",
    0x20: "Get_block_headers",
    0x21: "Block_header",
    0x30: "Get_operations",
    0x31: "Operation",
    0x40: "Get_protocols",
    0x41: "Protocol",
    0x60: "Get_operations_for_blocks",
    0x61: "Operations_for_blocks",
    0x70: "Get_checkpoint",
    0x71: "Checkpoint",
    0x80: "Get_protocol_branch",
    0x81: "Protocol_branch",
    0x90: "Get_predecessor_header",
    0x91: "Predecessor_header",
}


def raw_message_encodings(titles: dict[int, str] | None = None) -> list[MessageEncoding[Any]]:
    """Raw (payload-as-bytes) cases for the given tags; Octez's shell tags by default."""

    def decoder(tag: int, title: str) -> Callable[[bytes], RawMessage]:
        return lambda data: RawMessage(tag, bytes(data), title)

    return [
        MessageEncoding(
            tag=tag,
            title=title,
            type=RawMessage,
            encode=_raw_payload,
            decode=decoder(tag, title),
        )
        for tag, title in sorted((titles or SHELL_MESSAGE_TITLES).items())
    ]


def _raw_payload(message: RawMessage) -> bytes:
    return message.payload


@implementer(IMessageCodec)
class P2PMessageCodec:
    """
    The P2P envelope (Octez ``P2p_message.encoding``): a ``uint30`` body
    length, a ``uint16`` tag, then the payload; the whole record is at most
    100 MiB.

    :meth:`encode` returns the body (tag + payload) and :meth:`decode`
    takes it; the session adds and strips the 4-byte length, which it
    checks against :attr:`max_size` before buffering anything.
    """

    def __init__(self, encodings: Iterable[MessageEncoding[Any]] = ()) -> None:
        self.max_size = MAX_MESSAGE_SIZE
        self._by_tag: dict[int, MessageEncoding[Any]] = {}
        self._by_type: dict[type, MessageEncoding[Any]] = {}
        for case in encodings:
            if not 0 <= case.tag <= 0xFFFF:
                raise ValueError(f"tag {case.tag} does not fit 16 bits")
            if case.tag in self._by_tag or case.tag in CONTROL_TAGS.values():
                raise ValueError(f"duplicate message tag {case.tag:#06x}")
            self._by_tag[case.tag] = case
            self._by_type.setdefault(case.type, case)

    @property
    def encodings(self) -> list[MessageEncoding[Any]]:
        return list(self._by_tag.values())

    def case_for(self, message: object) -> MessageEncoding[Any]:
        if isinstance(message, RawMessage):
            # a raw message goes out under its own tag, or not at all
            case = self._by_tag.get(message.tag)
            if case is None or case.type is not RawMessage:
                raise EncodingError(f"no raw encoding for tag {message.tag:#06x}")
            return case
        case = self._by_type.get(type(message))
        if case is None:
            raise EncodingError(f"no encoding for message {message!r}")
        return case

    def encode(self, message: object) -> bytes:
        if isinstance(message, Disconnect | Bootstrap):
            return B.put_uint16(CONTROL_TAGS[type(message)])
        if isinstance(message, Advertise):
            listed = _put_point_list(message.points, MAX_ADVERTISE_POINTS, "advertise")
            return B.put_uint16(0x03) + listed
        if isinstance(message, SwapRequest | SwapAck):
            return (
                B.put_uint16(CONTROL_TAGS[type(message)])
                + put_point(message.point)
                + message.peer_id.raw
            )
        case = self.case_for(message)
        try:
            payload = case.encode(message)
        except EncodingError:
            raise
        except Exception as exc:
            raise EncodingError(f"{case.title}: {exc}") from exc
        if case.max_length is not None and len(payload) > case.max_length:
            raise EncodingError(f"{case.title}: payload over {case.max_length} bytes")
        return B.put_uint16(case.tag) + payload

    #: The 2-byte tag before the payload.
    header_size = 2

    def decode(self, body: bytes | memoryview) -> object:
        reader = B.Reader(body)
        return self._decode(reader.uint16(), reader)

    def decode_split(self, header: bytes, payload: bytes) -> object:
        """:meth:`decode` of ``header + payload``; an application payload is kept as is."""
        return self._decode(B.Reader(header).uint16(), B.Reader(payload))

    def _decode(self, tag: int, reader: B.Reader) -> object:
        result: object
        if tag in (0x01, 0x02):
            result = Disconnect() if tag == 0x01 else Bootstrap()
        elif tag == 0x03:
            result = Advertise(_read_point_list(reader, MAX_ADVERTISE_POINTS))
        elif tag in (0x04, 0x05):
            point = read_point(reader)
            peer = PeerId(reader.fixed(PEER_ID_SIZE))
            result = SwapRequest(point, peer) if tag == 0x04 else SwapAck(point, peer)
        else:
            case = self._by_tag.get(tag)
            if case is None:
                raise DecodingError(B.UNEXPECTED_TAG, f"message tag {tag:#06x}")
            payload = reader.rest()
            if case.max_length is not None and len(payload) > case.max_length:
                raise DecodingError(B.SIZE_LIMIT_EXCEEDED, f"{case.title} payload too long")
            try:
                return case.decode(payload)
            except DecodingError:
                raise
            except Exception as exc:
                raise DecodingError("Invalid_payload", f"{case.title}: {exc}") from exc
        reader.expect_end()
        return result

    # JSON forms (Octez's union cases carry a "kind" constant)

    def to_json(self, message: object) -> Any:
        if isinstance(message, Disconnect | Bootstrap):
            return {"kind": type(message).__name__}
        if isinstance(message, Advertise):
            return {"id": [p.to_text() for p in message.points], "kind": "Advertise"}
        if isinstance(message, SwapRequest | SwapAck):
            kind = "Swap_request" if isinstance(message, SwapRequest) else "Swap_ack"
            return {"point": message.point.to_text(), "peer_id": str(message.peer_id), "kind": kind}
        if isinstance(message, RawMessage):
            return {"kind": message.title, "tag": message.tag, "payload": message.payload.hex()}
        case = self.case_for(message)
        if case.to_json is None:
            return {"kind": case.title, "tag": case.tag, "payload": case.encode(message).hex()}
        return case.to_json(message)

    def from_json(self, value: Any) -> object:
        kind = value.get("kind") if isinstance(value, dict) else None
        if kind == "Disconnect":
            return Disconnect()
        if kind == "Bootstrap":
            return Bootstrap()
        if kind == "Advertise":
            points = _json_field(value, "id", "advertise")
            if not isinstance(points, list) or len(points) > MAX_ADVERTISE_POINTS:
                raise DecodingError("Invalid_json", "advertise: a list of at most 100 points")
            return Advertise(tuple(point_from_json(p) for p in points))
        if kind in ("Swap_request", "Swap_ack"):
            point = point_from_json(_json_field(value, "point", kind))
            peer = peer_id_from_json(_json_field(value, "peer_id", kind))
            return SwapRequest(point, peer) if kind == "Swap_request" else SwapAck(point, peer)
        for case in self._by_tag.values():
            if case.from_json is not None:
                try:
                    return case.from_json(value)
                except (DecodingError, ValueError, KeyError, TypeError):
                    continue
        if isinstance(value, dict) and "tag" in value and "payload" in value:
            tag = _json_int(value["tag"], "tag", 0, 0xFFFF)
            case_ = self._by_tag.get(tag)
            if case_ is None:
                raise DecodingError("Invalid_json", f"unknown message tag {tag:#06x}")
            payload = _unhex(value["payload"], None, "payload")
            try:
                return case_.decode(payload)
            except Exception as exc:
                raise DecodingError("Invalid_json", f"{case_.title}: {exc}") from exc
        raise DecodingError("Invalid_json", "not a P2P message")


@implementer(IMessageCodec)
class BytesCodec:
    """
    Messages that are plain byte strings (Octez ``Data_encoding.bytes``, used
    by the socket-level tests): the record is a ``uint30`` length and the bytes.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size

    def encode(self, message: object) -> bytes:
        if not isinstance(message, bytes | bytearray | memoryview):
            raise EncodingError("BytesCodec encodes byte strings only")
        return bytes(message)

    #: The whole body is the message.
    header_size = 0

    def decode(self, body: bytes | memoryview) -> object:
        return bytes(body)  # no copy when ``body`` is already bytes

    def decode_split(self, header: bytes, payload: bytes) -> object:
        return payload if not header else header + payload

    def to_json(self, message: object) -> Any:
        return bytes(message).hex() if isinstance(message, bytes | bytearray) else repr(message)


def frame_record(body: bytes, max_size: int) -> bytes:
    """Prefix a message body with its ``uint30`` length, enforcing ``max_size``."""
    if len(body) + 4 > max_size:
        raise EncodingError(f"message of {len(body) + 4} bytes exceeds {max_size}")
    return B.put_uint30(len(body)) + body
