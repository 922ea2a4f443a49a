# -*- test-case-name: tests.test_shell_messages -*-
"""
The shell's data types as the distributed-DB messages carry them: chain ids,
hashes with their Base58Check prefixes, block headers (shell part typed,
protocol data kept as bytes), operations (shell header typed, protocol part
as bytes), block locators, mempools, Merkle paths of operation lists and
protocols.

Every type has ``encode``, a ``read`` from a bounded
:class:`~txtezosp2p.wire.binary.Reader` window, and Octez's JSON form
(``to_json``/``from_json``).  Decoders raise
:class:`~txtezosp2p.wire.errors.DecodingError` only, with the data-encoding failure
name; each Octez bound is checked against the window before anything is
read.  Encoders refuse (:class:`~txtezosp2p.wire.errors.EncodingError`) what an
Octez peer would refuse to decode.

Octez sources (``tezos/tezos-mirror``): ``src/lib_base/block_header.ml``,
``operation.ml``, ``block_locator.ml``, ``mempool.ml``, ``fitness.ml``,
``protocol.ml``, ``time.ml`` (``Time.Protocol``); ``src/lib_crypto/base58.ml``
(prefixes), ``chain_id.ml``, ``blake2B.ml`` (hashes, Merkle paths),
``helpers.ml`` (hash sets); ``data-encoding/src/binary_reader.ml`` for what
``check_size``, ``dynamic_size`` and variable lists do while reading.

The module is longer than our usual 600 lines because it mirrors these
types one by one, each with its reader, writer, bounds and JSON form.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar, Literal, TypeVar

import attrs

from . import binary as B
from .errors import DecodingError, EncodingError
from .ids import b58check_decode, b58check_encode

HASH_SIZE = 32
CHAIN_ID_SIZE = 4

# -- Octez's default bounds (``Distributed_db_message.Bounded_encoding``) ----

#: A block header, protocol data included (``block_header_max_size``).
BLOCK_HEADER_MAX_SIZE = 8 * 1024 * 1024
#: Hashes in a locator's history (``block_locator_max_length``).
BLOCK_LOCATOR_MAX_LENGTH = 1000
#: One operation (``operation_max_size``).
OPERATION_MAX_SIZE = 128 * 1024
#: The operations of one ``Operations_for_blocks`` (``operation_list_max_size``).
OPERATION_LIST_MAX_SIZE = 1024 * 1024
#: Validation passes a Merkle path may address (``operation_max_pass``).
OPERATION_MAX_PASS = 8
#: A protocol's sources (``protocol_max_size``).
PROTOCOL_MAX_SIZE = 2 * 1024 * 1024
#: Operations in a mempool (``mempool_max_operations``), checked as Octez
#: does: as the byte bound ``8 + 32 * n`` on the whole mempool.
MEMPOOL_MAX_OPERATIONS = 4000
#: Largest environment version the source release knows (``Protocol.env_version``).
MAX_ENVIRONMENT_VERSION = 17


def _log2(value: int) -> int:
    # Octez's ``Blake2B.log2``: the depth of a Merkle tree of ``value`` leaves
    return 0 if value <= 1 else 1 + _log2((value + 1) // 2)


@attrs.frozen
class ShellLimits:
    """
    The bounds of the shell encodings, Octez's defaults unless changed (Octez
    has a setter for each; they are arbitrary high bounds, ``FIXME`` #3370
    in ``distributed_db_message.ml``).
    """

    block_header_max_size: int = BLOCK_HEADER_MAX_SIZE
    block_locator_max_length: int = BLOCK_LOCATOR_MAX_LENGTH
    operation_max_size: int = OPERATION_MAX_SIZE
    operation_list_max_size: int = OPERATION_LIST_MAX_SIZE
    operation_max_pass: int = OPERATION_MAX_PASS
    protocol_max_size: int = PROTOCOL_MAX_SIZE
    mempool_max_operations: int = MEMPOOL_MAX_OPERATIONS

    @property
    def mempool_max_size(self) -> int:
        """``Mempool.bounded_encoding``: ``8 + max_operations * 32`` bytes."""
        return 8 + self.mempool_max_operations * HASH_SIZE

    @property
    def path_max_size(self) -> int:
        """``bounded_path_encoding``: ``log2(max_pass) * 33 + 1`` bytes."""
        return _log2(self.operation_max_pass) * (HASH_SIZE + 1) + 1


DEFAULT_LIMITS = ShellLimits()


# -- JSON helpers -------------------------------------------------------------


def _json_error(what: str, expected: str) -> DecodingError:
    return DecodingError("Invalid_json", f"{what}: expected {expected}")


def json_object(
    value: Any, keys: set[str], what: str, optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``value`` as an object with exactly ``keys`` (plus any of ``optional``)."""
    if not isinstance(value, dict) or not keys <= set(value) <= keys | optional:
        raise _json_error(what, f"an object with fields {sorted(keys)}")
    return value


def json_int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _json_error(what, f"an integer in [{lo}, {hi}]")
    return value


def json_list(value: Any, what: str, max_length: int | None = None) -> list[Any]:
    if not isinstance(value, list) or (max_length is not None and len(value) > max_length):
        bound = "" if max_length is None else f" of at most {max_length} items"
        raise _json_error(what, f"a list{bound}")
    return value


def json_hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise _json_error(what, "a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _json_error(what, "a hex string") from None


def json_string(value: bytes) -> Any:
    """data-encoding's JSON for a ``string``: text, or its bytes when not UTF-8."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"invalid_utf8_string": list(value)}


def string_from_json(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"invalid_utf8_string"}:
        items = json_list(value["invalid_utf8_string"], what)
        return bytes(json_int(item, what, 0, 255) for item in items)
    raise _json_error(what, "a string")


# -- Hashes and chain ids -------------------------------------------------------

H = TypeVar("H", bound="Hash")


@attrs.frozen(order=True, repr=False)
class Hash:
    """
    A fixed-size hash written in Base58Check with a type prefix.  Hashes of
    different types never compare equal, even with the same bytes.
    """

    PREFIX: ClassVar[bytes] = b""
    SIZE: ClassVar[int] = HASH_SIZE

    raw: bytes = attrs.field()

    @raw.validator
    def _check(self, _attribute: Any, value: bytes) -> None:
        if not isinstance(value, bytes) or len(value) != self.SIZE:
            raise ValueError(f"a {type(self).__name__} is {self.SIZE} bytes")

    @classmethod
    def read(cls: type[H], reader: B.Reader) -> H:
        return cls(reader.fixed(cls.SIZE))

    def encode(self) -> bytes:
        return self.raw

    @classmethod
    def from_b58check(cls: type[H], text: str) -> H:
        """Parse the Base58Check text; :class:`DecodingError` on anything else."""
        data = b58check_decode(text, max_length=128)
        if len(data) != len(cls.PREFIX) + cls.SIZE or not data.startswith(cls.PREFIX):
            raise DecodingError("Invalid_b58check", f"not a {cls.__name__}: {text[:60]!r}")
        return cls(data[len(cls.PREFIX) :])

    def to_b58check(self) -> str:
        return b58check_encode(self.PREFIX + self.raw)

    @classmethod
    def from_json(cls: type[H], value: Any) -> H:
        if not isinstance(value, str):
            raise _json_error(cls.__name__, "a Base58Check string")
        return cls.from_b58check(value)

    def to_json(self) -> str:
        return self.to_b58check()

    def __str__(self) -> str:
        return self.to_b58check()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_b58check()!r})"


@attrs.frozen(order=True, repr=False)
class BlockHash(Hash):
    """``Block_hash``: Blake2b-256 of an encoded block header, ``B…``."""

    PREFIX = b"\x01\x34"

    @classmethod
    def of_bytes(cls, data: bytes) -> BlockHash:
        return cls(hashlib.blake2b(data, digest_size=HASH_SIZE).digest())


@attrs.frozen(order=True, repr=False)
class OperationHash(Hash):
    """``Operation_hash``: Blake2b-256 of an encoded operation, ``o…``."""

    PREFIX = b"\x05\x74"

    @classmethod
    def of_bytes(cls, data: bytes) -> OperationHash:
        return cls(hashlib.blake2b(data, digest_size=HASH_SIZE).digest())


@attrs.frozen(order=True, repr=False)
class ProtocolHash(Hash):
    """``Protocol_hash``, ``P…``."""

    PREFIX = b"\x02\xaa"


@attrs.frozen(order=True, repr=False)
class OperationListListHash(Hash):
    """``Operation_list_list_hash``: root of a block's operations, ``LLo…``."""

    PREFIX = b"\x1d\x9f\x6d"


@attrs.frozen(order=True, repr=False)
class ContextHash(Hash):
    """``Context_hash``, ``Co…``."""

    PREFIX = b"\x4f\xc7"


@attrs.frozen(order=True, repr=False)
class ChainId(Hash):
    """
    ``Chain_id``: the first 4 bytes of the Blake2b-256 hash of the chain's
    genesis block hash, ``Net…`` (``NetXdQprcVkpaWU`` is mainnet).
    """

    PREFIX = b"\x57\x52\x00"
    SIZE = CHAIN_ID_SIZE

    @classmethod
    def of_block_hash(cls, block: BlockHash) -> ChainId:
        return cls(hashlib.blake2b(block.raw, digest_size=HASH_SIZE).digest()[:CHAIN_ID_SIZE])


def read_hash_list(reader: B.Reader, cls: type[H], max_length: int) -> tuple[H, ...]:
    """Hashes filling ``reader``'s window, at most ``max_length`` of them."""
    if reader.remaining > max_length * cls.SIZE:
        raise DecodingError(B.LIST_TOO_LONG, f"more than {max_length} {cls.__name__}")
    items = []
    while reader.remaining:
        items.append(cls.read(reader))
    return tuple(items)


def read_dynamic_hash_list(reader: B.Reader, cls: type[H], max_length: int) -> tuple[H, ...]:
    """A ``list ~max_length`` of hashes: a ``uint30`` byte size, then the hashes."""
    return read_hash_list(reader.sub(reader.uint30()), cls, max_length)


def put_hash_list(hashes: tuple[Hash, ...], max_length: int | None, what: str) -> bytes:
    if max_length is not None and len(hashes) > max_length:
        raise EncodingError(f"{what}: {len(hashes)} hashes, at most {max_length}")
    return b"".join(h.raw for h in hashes)


def put_dynamic_hash_list(hashes: tuple[Hash, ...], max_length: int | None, what: str) -> bytes:
    return B.put_dynamic(put_hash_list(hashes, max_length, what))


# -- Timestamps (``Time.Protocol``) ---------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z"
)
# Ptime's range: 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z
_MIN_RFC3339 = -62167219200
_MAX_RFC3339 = 253402300799


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def timestamp_to_json(seconds: int) -> str:
    """RFC 3339 in UTC within Ptime's range, the decimal seconds otherwise (as Octez)."""
    if not _MIN_RFC3339 <= seconds <= _MAX_RFC3339:
        return str(seconds)
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def timestamp_from_json(value: Any) -> int:
    if not isinstance(value, str):
        raise _json_error("timestamp", "a string")
    match = _RFC3339.match(value)
    if match is None:
        try:
            seconds = int(value, 10)
        except ValueError:
            raise _json_error("timestamp", "RFC 3339 or decimal seconds") from None
    else:
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
            raise _json_error("timestamp", "a valid RFC 3339 date")
        seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        zone = match.group(7)
        if zone not in ("Z", "z"):
            sign = 1 if zone[0] == "+" else -1
            seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    if not -(1 << 63) <= seconds < (1 << 63):
        raise _json_error("timestamp", "an int64")
    return seconds


# -- Block headers ----------------------------------------------------------------


def _fitness(value: Any) -> tuple[bytes, ...]:
    return tuple(bytes(item) for item in value)


@attrs.frozen
class BlockHeader:
    """
    ``Block_header.t``: the shell header (``block_header.shell``) and the
    protocol data, an opaque byte string that runs to the end of the header.
    ``fitness`` is Octez's list of byte strings.
    """

    level: int
    proto: int
    predecessor: BlockHash
    timestamp: int
    validation_pass: int
    operations_hash: OperationListListHash
    fitness: tuple[bytes, ...] = attrs.field(converter=_fitness)
    context: ContextHash
    protocol_data: bytes = b""

    def encode_shell(self) -> bytes:
        fitness = b"".join(B.put_dynamic(item) for item in self.fitness)
        return b"".join(
            (
                B.put_int32(self.level),
                B.put_uint8(self.proto),
                self.predecessor.raw,
                B.put_int64(self.timestamp),
                B.put_uint8(self.validation_pass),
                self.operations_hash.raw,
                B.put_dynamic(fitness),
                self.context.raw,
            )
        )

    def encode(self, max_size: int = BLOCK_HEADER_MAX_SIZE) -> bytes:
        data = self.encode_shell() + self.protocol_data
        if len(data) > max_size:
            raise EncodingError(f"block header of {len(data)} bytes, at most {max_size}")
        return data

    @classmethod
    def read(cls, reader: B.Reader, max_size: int = BLOCK_HEADER_MAX_SIZE) -> BlockHeader:
        """The header filling ``reader``'s window (its protocol data runs to the end)."""
        if reader.remaining > max_size:
            raise DecodingError(B.SIZE_LIMIT_EXCEEDED, f"block header over {max_size} bytes")
        level = reader.int32()
        proto = reader.uint8()
        predecessor = BlockHash.read(reader)
        timestamp = reader.int64()
        validation_pass = reader.uint8()
        operations_hash = OperationListListHash.read(reader)
        fitness_reader = reader.sub(reader.uint30())
        fitness = []
        while fitness_reader.remaining:
            fitness.append(fitness_reader.dynamic())
        context = ContextHash.read(reader)
        return cls(
            level,
            proto,
            predecessor,
            timestamp,
            validation_pass,
            operations_hash,
            tuple(fitness),
            context,
            reader.rest(),
        )

    @classmethod
    def decode(cls, data: bytes, max_size: int = BLOCK_HEADER_MAX_SIZE) -> BlockHeader:
        return cls.read(B.Reader(data), max_size)

    def hash(self) -> BlockHash:
        return BlockHash.of_bytes(self.encode_shell() + self.protocol_data)

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "proto": self.proto,
            "predecessor": self.predecessor.to_json(),
            "timestamp": timestamp_to_json(self.timestamp),
            "validation_pass": self.validation_pass,
            "operations_hash": self.operations_hash.to_json(),
            "fitness": [item.hex() for item in self.fitness],
            "context": self.context.to_json(),
            "protocol_data": self.protocol_data.hex(),
        }

    @classmethod
    def from_json(cls, value: Any) -> BlockHeader:
        obj = json_object(value, set(_HEADER_FIELDS), "block header")
        fitness = json_list(obj["fitness"], "fitness")
        return cls(
            json_int(obj["level"], "level", -(1 << 31), (1 << 31) - 1),
            json_int(obj["proto"], "proto", 0, 255),
            BlockHash.from_json(obj["predecessor"]),
            timestamp_from_json(obj["timestamp"]),
            json_int(obj["validation_pass"], "validation_pass", 0, 255),
            OperationListListHash.from_json(obj["operations_hash"]),
            tuple(json_hex(item, "fitness") for item in fitness),
            ContextHash.from_json(obj["context"]),
            json_hex(obj["protocol_data"], "protocol_data"),
        )


_HEADER_FIELDS = (
    "level",
    "proto",
    "predecessor",
    "timestamp",
    "validation_pass",
    "operations_hash",
    "fitness",
    "context",
    "protocol_data",
)


def read_dynamic_header(reader: B.Reader, max_size: int) -> BlockHeader:
    """``dynamic_size (check_size max_size Block_header.encoding)``."""
    return BlockHeader.read(reader.sub(reader.uint30()), max_size)


def put_dynamic_header(header: BlockHeader, max_size: int) -> bytes:
    return B.put_dynamic(header.encode(max_size))


# -- Operations ----------------------------------------------------------------------


@attrs.frozen
class Operation:
    """``Operation.t``: the shell header (the ``branch`` it applies on) and the protocol bytes."""

    branch: BlockHash
    data: bytes

    def encode(self, max_size: int = OPERATION_MAX_SIZE) -> bytes:
        encoded = self.branch.raw + self.data
        if len(encoded) > max_size:
            raise EncodingError(f"operation of {len(encoded)} bytes, at most {max_size}")
        return encoded

    @classmethod
    def read(cls, reader: B.Reader, max_size: int = OPERATION_MAX_SIZE) -> Operation:
        """The operation filling ``reader``'s window."""
        if reader.remaining > max_size:
            raise DecodingError(B.SIZE_LIMIT_EXCEEDED, f"operation over {max_size} bytes")
        return cls(BlockHash.read(reader), reader.rest())

    @classmethod
    def decode(cls, data: bytes, max_size: int = OPERATION_MAX_SIZE) -> Operation:
        return cls.read(B.Reader(data), max_size)

    def hash(self) -> OperationHash:
        return OperationHash.of_bytes(self.branch.raw + self.data)

    def to_json(self) -> dict[str, Any]:
        return {"branch": self.branch.to_json(), "data": self.data.hex()}

    @classmethod
    def from_json(cls, value: Any) -> Operation:
        obj = json_object(value, {"branch", "data"}, "operation")
        return cls(BlockHash.from_json(obj["branch"]), json_hex(obj["data"], "data"))


# -- Block locators ---------------------------------------------------------------------


@attrs.frozen
class BlockLocator:
    """
    ``Block_locator.t``: the sender's head header and a sparse history of
    its predecessors' hashes (at most 1000).  Binary: the header with a
    ``uint30`` size, then the hashes up to the end of the message.
    """

    head_header: BlockHeader
    history: tuple[BlockHash, ...]

    @property
    def head_hash(self) -> BlockHash:
        return self.head_header.hash()

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return put_dynamic_header(self.head_header, limits.block_header_max_size) + put_hash_list(
            self.history, limits.block_locator_max_length, "locator history"
        )

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> BlockLocator:
        header = read_dynamic_header(reader, limits.block_header_max_size)
        return cls(header, read_hash_list(reader, BlockHash, limits.block_locator_max_length))

    def to_json(self) -> dict[str, Any]:
        return {
            "current_head": self.head_header.to_json(),
            "history": [h.to_json() for h in self.history],
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> BlockLocator:
        obj = json_object(value, {"current_head", "history"}, "block locator")
        history = json_list(obj["history"], "history", limits.block_locator_max_length)
        return cls(
            BlockHeader.from_json(obj["current_head"]),
            tuple(BlockHash.from_json(h) for h in history),
        )


# -- Mempools ------------------------------------------------------------------------------


@attrs.frozen
class Mempool:
    """
    ``Mempool.t``: operation hashes known valid and pending.  Octez keeps
    them as sets (sorted, without duplicates); the order received is kept
    here so that a message re-encodes to the same bytes.

    Binary: ``known_valid`` as a list (``uint30`` byte size), ``pending``
    as the same list wrapped once more in a ``uint30`` size (a redundant
    prefix Octez keeps for compatibility).  The whole is bounded to
    ``8 + 32 * 4000`` bytes, so with the 12 bytes of prefixes at most 3999
    hashes fit in all.
    """

    known_valid: tuple[OperationHash, ...] = ()
    pending: tuple[OperationHash, ...] = ()

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        data = put_dynamic_hash_list(self.known_valid, None, "known_valid") + B.put_dynamic(
            put_dynamic_hash_list(self.pending, None, "pending")
        )
        if len(data) > limits.mempool_max_size:
            raise EncodingError(f"mempool of {len(data)} bytes, at most {limits.mempool_max_size}")
        return data

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> Mempool:
        """The mempool filling ``reader``'s window."""
        if reader.remaining > limits.mempool_max_size:
            raise DecodingError(
                B.SIZE_LIMIT_EXCEEDED, f"mempool over {limits.mempool_max_size} bytes"
            )
        many = limits.mempool_max_operations
        known_valid = read_dynamic_hash_list(reader, OperationHash, many)
        pending_reader = reader.sub(reader.uint30())
        pending = read_dynamic_hash_list(pending_reader, OperationHash, many)
        pending_reader.expect_end()
        return cls(known_valid, pending)

    def to_json(self) -> dict[str, Any]:
        return {
            "known_valid": [h.to_json() for h in self.known_valid],
            "pending": [h.to_json() for h in self.pending],
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> Mempool:
        obj = json_object(value, {"known_valid", "pending"}, "mempool")
        many = limits.mempool_max_operations
        return cls(
            tuple(OperationHash.from_json(h) for h in json_list(obj["known_valid"], "known", many)),
            tuple(OperationHash.from_json(h) for h in json_list(obj["pending"], "pending", many)),
        )


# -- Merkle paths of operation lists -------------------------------------------------------------

_PATH_LEFT = 0xF0
_PATH_RIGHT = 0x0F
_PATH_OP = 0x00


@attrs.frozen
class PathStep:
    """
    One level of a Merkle path, outermost first.  ``left``: the element is
    in the left subtree and ``sibling`` is the right one's hash (Octez
    ``Left (path, right)``); ``right``: the reverse (``Right (left, path)``).
    """

    side: Literal["left", "right"]
    sibling: OperationListListHash


@attrs.frozen
class MerklePath:
    """
    ``Operation_list_list_hash.path``: where one validation pass's
    operation list sits in the block's ``operations_hash`` tree.

    Binary (a recursive union): ``Left`` is ``0xf0``, the inner path, then the
    right hash; ``Right`` is ``0x0f``, the left hash, then the inner path;
    the end (``Op``) is ``0x00``.  Octez bounds it to
    ``log2(max_pass) * 33 + 1`` bytes (100 for 8 passes: three levels), so it
    is read here without recursion.
    """

    steps: tuple[PathStep, ...] = ()

    def encode(self, max_size: int | None = None) -> bytes:
        head = bytearray()
        tail: list[bytes] = []
        for step in self.steps:
            if step.side == "left":
                head.append(_PATH_LEFT)
                tail.append(step.sibling.raw)
            else:
                head.append(_PATH_RIGHT)
                head += step.sibling.raw
        head.append(_PATH_OP)
        data = bytes(head) + b"".join(reversed(tail))
        if max_size is not None and len(data) > max_size:
            raise EncodingError(f"Merkle path of {len(data)} bytes, at most {max_size}")
        return data

    @classmethod
    def read(cls, reader: B.Reader, max_size: int) -> MerklePath:
        sides: list[str] = []
        siblings: list[OperationListListHash | None] = []
        size = 1
        while True:
            tag = reader.uint8()
            if tag == _PATH_OP:
                break
            if tag not in (_PATH_LEFT, _PATH_RIGHT):
                raise DecodingError(B.UNEXPECTED_TAG, f"Merkle path tag {tag:#04x}")
            size += 1 + HASH_SIZE
            if size > max_size:
                raise DecodingError(B.SIZE_LIMIT_EXCEEDED, f"Merkle path over {max_size} bytes")
            if tag == _PATH_RIGHT:
                sides.append("right")
                siblings.append(OperationListListHash.read(reader))
            else:
                sides.append("left")
                siblings.append(None)
        # the right hashes of Left levels follow the innermost path, innermost first
        for index in reversed(range(len(sides))):
            if siblings[index] is None:
                siblings[index] = OperationListListHash.read(reader)
        steps = []
        for side, sibling in zip(sides, siblings, strict=True):
            assert sibling is not None
            steps.append(PathStep("left" if side == "left" else "right", sibling))
        return cls(tuple(steps))

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for step in reversed(self.steps):
            if step.side == "left":
                value = {"path": value, "right": step.sibling.to_json()}
            else:
                value = {"left": step.sibling.to_json(), "path": value}
        return value

    @classmethod
    def from_json(cls, value: Any, max_depth: int = 64) -> MerklePath:
        steps: list[PathStep] = []
        while value != {}:
            if len(steps) >= max_depth:
                raise _json_error("Merkle path", f"at most {max_depth} levels")
            if isinstance(value, dict) and set(value) == {"path", "right"}:
                steps.append(PathStep("left", OperationListListHash.from_json(value["right"])))
            elif isinstance(value, dict) and set(value) == {"left", "path"}:
                steps.append(PathStep("right", OperationListListHash.from_json(value["left"])))
            else:
                raise _json_error("Merkle path", "{}, {path, right} or {left, path}")
            value = value["path"]
        return cls(tuple(steps))


def read_operation_list(reader: B.Reader, limits: ShellLimits) -> tuple[Operation, ...]:
    """
    ``check_size max_list_size (Variable.list (dynamic_size operation))``:
    operations, each with a ``uint30`` size, filling the window.
    """
    if reader.remaining > limits.operation_list_max_size:
        raise DecodingError(
            B.SIZE_LIMIT_EXCEEDED, f"operation list over {limits.operation_list_max_size} bytes"
        )
    operations = []
    while reader.remaining:
        operations.append(Operation.read(reader.sub(reader.uint30()), limits.operation_max_size))
    return tuple(operations)


def put_operation_list(operations: tuple[Operation, ...], limits: ShellLimits) -> bytes:
    data = b"".join(B.put_dynamic(op.encode(limits.operation_max_size)) for op in operations)
    if len(data) > limits.operation_list_max_size:
        raise EncodingError(
            f"operation list of {len(data)} bytes, at most {limits.operation_list_max_size}"
        )
    return data


# -- Protocols ------------------------------------------------------------------------------------


@attrs.frozen
class ProtocolComponent:
    """A module of a protocol: name, optional interface, implementation (raw strings)."""

    name: bytes
    interface: bytes | None
    implementation: bytes

    def encode(self) -> bytes:
        interface = b"\x00" if self.interface is None else b"\xff" + B.put_dynamic(self.interface)
        return B.put_dynamic(self.name) + interface + B.put_dynamic(self.implementation)

    @classmethod
    def read(cls, reader: B.Reader) -> ProtocolComponent:
        name = reader.dynamic()
        interface = reader.dynamic() if reader.bool() else None
        return cls(name, interface, reader.dynamic())

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"name": json_string(self.name)}
        if self.interface is not None:
            value["interface"] = json_string(self.interface)
        value["implementation"] = json_string(self.implementation)
        return value

    @classmethod
    def from_json(cls, value: Any) -> ProtocolComponent:
        obj = json_object(
            value, {"name", "implementation"}, "component", optional=frozenset({"interface"})
        )
        interface = obj.get("interface")
        return cls(
            string_from_json(obj["name"], "name"),
            None if interface is None else string_from_json(interface, "interface"),
            string_from_json(obj["implementation"], "implementation"),
        )


@attrs.frozen
class Protocol:
    """``Protocol.t``: the environment version the protocol needs and its source modules."""

    expected_env_version: int
    components: tuple[ProtocolComponent, ...]

    def encode(self, max_size: int = PROTOCOL_MAX_SIZE) -> bytes:
        if not 0 <= self.expected_env_version <= MAX_ENVIRONMENT_VERSION:
            raise EncodingError(f"unknown environment version {self.expected_env_version}")
        components = b"".join(c.encode() for c in self.components)
        data = B.put_uint16(self.expected_env_version) + B.put_dynamic(components)
        if len(data) > max_size:
            raise EncodingError(f"protocol of {len(data)} bytes, at most {max_size}")
        return data

    @classmethod
    def read(cls, reader: B.Reader, max_size: int = PROTOCOL_MAX_SIZE) -> Protocol:
        """The protocol filling ``reader``'s window."""
        if reader.remaining > max_size:
            raise DecodingError(B.SIZE_LIMIT_EXCEEDED, f"protocol over {max_size} bytes")
        version = reader.uint16()
        if version > MAX_ENVIRONMENT_VERSION:
            # Octez's conversion fails: data-encoding reports the user function's exception
            raise DecodingError(
                "Exception_raised_in_user_function", f"unexpected environment version: {version}"
            )
        components_reader = reader.sub(reader.uint30())
        components = []
        while components_reader.remaining:
            components.append(ProtocolComponent.read(components_reader))
        reader.expect_end()
        return cls(version, tuple(components))

    def hash(self) -> ProtocolHash:
        return ProtocolHash(hashlib.blake2b(self.encode(), digest_size=HASH_SIZE).digest())

    def to_json(self) -> dict[str, Any]:
        return {
            "expected_env_version": self.expected_env_version,
            "components": [c.to_json() for c in self.components],
        }

    @classmethod
    def from_json(cls, value: Any) -> Protocol:
        obj = json_object(value, {"expected_env_version", "components"}, "protocol")
        return cls(
            json_int(
                obj["expected_env_version"], "expected_env_version", 0, MAX_ENVIRONMENT_VERSION
            ),
            tuple(ProtocolComponent.from_json(c) for c in json_list(obj["components"], "comps")),
        )
