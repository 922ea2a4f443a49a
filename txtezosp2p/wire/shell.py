# -*- test-case-name: tests.test_shell_messages -*-
"""
The distributed-DB messages of the Octez shell, typed (Octez
``src/lib_shell/distributed_db_message.ml``).

They travel inside the P2P envelope as application messages (wire.md §8.3):
a ``uint16`` tag, then the case's payload.  Each class below is one case,
with Octez's tag, title, binary payload and JSON form; the bounds are those
of Octez's ``Bounded_encoding`` (:class:`~.shell_types.ShellLimits`), checked
before anything is read.

Distributed-DB versions (``src/lib_version/distributed_db_version.mli``),
announced in the connection message: version 0 has the messages of tags
0x10 to 0x61; version 1 adds ``Get_checkpoint``/``Checkpoint``,
``Get_protocol_branch``/``Protocol_branch`` and
``Get_predecessor_header``/``Predecessor_header`` (``ddb_version`` on each
class); version 2 adds no message but changes what ``Current_head`` means:
the head may be a block that was validated and not yet applied, so a peer
announcing a head that later fails to apply must not be kicked for it.

Use :func:`shell_message_codec` for a P2P codec that speaks them (or
:func:`shell_message_encodings` to add them to another codec).  Nothing here
imports Twisted.

The module is longer than our usual 600 lines because it mirrors
``distributed_db_message.ml`` message by message, in its order, each
message with its tag, bounds, binary and JSON forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeAlias, TypeVar

import attrs

from . import binary as B
from .encoding import MessageEncoding, P2PMessageCodec
from .errors import DecodingError, EncodingError
from .shell_types import (
    DEFAULT_LIMITS,
    HASH_SIZE,
    BlockHash,
    BlockHeader,
    BlockLocator,
    ChainId,
    Mempool,
    MerklePath,
    Operation,
    OperationHash,
    Protocol,
    ProtocolHash,
    ShellLimits,
    json_int,
    json_list,
    json_object,
    put_dynamic_hash_list,
    put_dynamic_header,
    put_operation_list,
    read_dynamic_hash_list,
    read_dynamic_header,
    read_operation_list,
)

#: Hashes in a ``Get_block_headers``, ``Get_operations``, ``Get_protocols``
#: or ``Get_operations_for_blocks`` request (``list ~max_length:10``).
MAX_REQUEST_LENGTH = 10

M = TypeVar("M", bound="_Message")


class _Message:
    """What every shell message class provides."""

    TAG: ClassVar[int]
    TITLE: ClassVar[str]
    #: The distributed-DB version that introduced the message.
    DDB_VERSION: ClassVar[int] = 0

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        raise NotImplementedError

    @classmethod
    def read(cls: type[M], reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> M:
        raise NotImplementedError

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        """The largest payload Octez's encoding accepts for this case."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls: type[M], value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> M:
        raise NotImplementedError

    @classmethod
    def decode(cls: type[M], payload: bytes, limits: ShellLimits = DEFAULT_LIMITS) -> M:
        """
        The message from its whole payload (the bytes after the tag).  Each
        part is checked against its bound before it is read; the P2P codec
        also refuses a payload over :meth:`max_size` before calling this.
        """
        reader = B.Reader(payload)
        message = cls.read(reader, limits)
        reader.expect_end()
        return message


def _header_bound(limits: ShellLimits) -> int:
    return 4 + limits.block_header_max_size


def _locator_bound(limits: ShellLimits) -> int:
    return _header_bound(limits) + limits.block_locator_max_length * HASH_SIZE


# -- Messages about a chain -----------------------------------------------------


class _ChainMessage(_Message):
    """A message whose payload is a chain id alone, under one JSON field."""

    FIELD: ClassVar[str]
    chain_id: ChainId

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.chain_id.raw

    @classmethod
    def read(cls: type[M], reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> M:
        return cls(ChainId.read(reader))  # type: ignore[call-arg]

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return ChainId.SIZE

    def to_json(self) -> dict[str, Any]:
        return {self.FIELD: self.chain_id.to_json()}

    @classmethod
    def from_json(cls: type[M], value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> M:
        field: str = cls.FIELD  # type: ignore[attr-defined]
        obj = json_object(value, {field}, cls.TITLE)
        return cls(ChainId.from_json(obj[field]))  # type: ignore[call-arg]


@attrs.frozen
class GetCurrentBranch(_ChainMessage):
    """
    0x10: asks for the peer's branch on a chain.  An Octez node sends it for
    its chain right after a connection is established; receiving it makes
    the chain active for the sender, which then gets the node's gossip.
    """

    TAG = 0x10
    TITLE = "Get_current_branch"
    FIELD = "get_current_branch"
    chain_id: ChainId


@attrs.frozen
class CurrentBranch(_Message):
    """0x11: the sender's head header and a sparse history (locator)."""

    TAG = 0x11
    TITLE = "Current_branch"
    chain_id: ChainId
    locator: BlockLocator

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.chain_id.raw + self.locator.encode(limits)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> CurrentBranch:
        return cls(ChainId.read(reader), BlockLocator.read(reader, limits))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return ChainId.SIZE + _locator_bound(limits)

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id.to_json(), "current_branch": self.locator.to_json()}

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> CurrentBranch:
        obj = json_object(value, {"chain_id", "current_branch"}, cls.TITLE)
        return cls(
            ChainId.from_json(obj["chain_id"]),
            BlockLocator.from_json(obj["current_branch"], limits),
        )


@attrs.frozen
class Deactivate(_ChainMessage):
    """0x12: the sender stops following the chain (or is leaving)."""

    TAG = 0x12
    TITLE = "Deactivate"
    FIELD = "deactivate"
    chain_id: ChainId


@attrs.frozen
class GetCurrentHead(_ChainMessage):
    """0x13: asks for the peer's head and mempool on a chain."""

    TAG = 0x13
    TITLE = "Get_current_head"
    FIELD = "get_current_head"
    chain_id: ChainId


@attrs.frozen
class CurrentHead(_Message):
    """
    0x14: the sender's head (its header with a ``uint30`` size) and mempool;
    gossiped to the peers for which the chain is active.  From
    distributed-DB version 2 the head may be validated but not yet applied.
    """

    TAG = 0x14
    TITLE = "Current_head"
    chain_id: ChainId
    header: BlockHeader
    mempool: Mempool = attrs.field(factory=Mempool)

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return (
            self.chain_id.raw
            + put_dynamic_header(self.header, limits.block_header_max_size)
            + self.mempool.encode(limits)
        )

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> CurrentHead:
        chain_id = ChainId.read(reader)
        header = read_dynamic_header(reader, limits.block_header_max_size)
        return cls(chain_id, header, Mempool.read(reader, limits))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return ChainId.SIZE + _header_bound(limits) + limits.mempool_max_size

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.to_json(),
            "current_block_header": self.header.to_json(),
            "current_mempool": self.mempool.to_json(),
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> CurrentHead:
        keys = {"chain_id", "current_block_header", "current_mempool"}
        obj = json_object(value, keys, cls.TITLE)
        return cls(
            ChainId.from_json(obj["chain_id"]),
            BlockHeader.from_json(obj["current_block_header"]),
            Mempool.from_json(obj["current_mempool"], limits),
        )


# -- Requests by hash and their answers --------------------------------------------


class _HashRequest(_Message):
    """A list of at most 10 hashes with a ``uint30`` byte size, under one JSON field."""

    FIELD: ClassVar[str]
    HASH: ClassVar[type[BlockHash | OperationHash | ProtocolHash]]
    hashes: tuple[Any, ...]

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        if any(type(h) is not self.HASH for h in self.hashes):
            raise EncodingError(f"{self.TITLE}: expected {self.HASH.__name__} values")
        return put_dynamic_hash_list(self.hashes, MAX_REQUEST_LENGTH, self.TITLE)

    @classmethod
    def read(cls: type[M], reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> M:
        kind = cls.HASH  # type: ignore[attr-defined]
        return cls(read_dynamic_hash_list(reader, kind, MAX_REQUEST_LENGTH))  # type: ignore[call-arg]

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return 4 + MAX_REQUEST_LENGTH * HASH_SIZE

    def to_json(self) -> dict[str, Any]:
        return {self.FIELD: [h.to_json() for h in self.hashes]}

    @classmethod
    def from_json(cls: type[M], value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> M:
        field: str = cls.FIELD  # type: ignore[attr-defined]
        kind = cls.HASH  # type: ignore[attr-defined]
        obj = json_object(value, {field}, cls.TITLE)
        items = json_list(obj[field], field, MAX_REQUEST_LENGTH)
        return cls(tuple(kind.from_json(h) for h in items))  # type: ignore[call-arg]


@attrs.frozen
class GetBlockHeaders(_HashRequest):
    """0x20: asks for the headers of up to 10 blocks."""

    TAG = 0x20
    TITLE = "Get_block_headers"
    FIELD = "get_block_headers"
    HASH = BlockHash
    hashes: tuple[BlockHash, ...]


@attrs.frozen
class BlockHeaderMessage(_Message):
    """0x21: one block header (answer to ``Get_block_headers``), up to the end of the message."""

    TAG = 0x21
    TITLE = "Block_header"
    header: BlockHeader

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.header.encode(limits.block_header_max_size)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> BlockHeaderMessage:
        return cls(BlockHeader.read(reader, limits.block_header_max_size))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return limits.block_header_max_size

    def to_json(self) -> dict[str, Any]:
        return {"block_header": self.header.to_json()}

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> BlockHeaderMessage:
        obj = json_object(value, {"block_header"}, cls.TITLE)
        return cls(BlockHeader.from_json(obj["block_header"]))


@attrs.frozen
class GetOperations(_HashRequest):
    """0x30: asks for up to 10 operations."""

    TAG = 0x30
    TITLE = "Get_operations"
    FIELD = "get_operations"
    HASH = OperationHash
    hashes: tuple[OperationHash, ...]


@attrs.frozen
class OperationMessage(_Message):
    """0x31: one operation (at most 128 KiB), answer to ``Get_operations``."""

    TAG = 0x31
    TITLE = "Operation"
    operation: Operation

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.operation.encode(limits.operation_max_size)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> OperationMessage:
        return cls(Operation.read(reader, limits.operation_max_size))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return limits.operation_max_size

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation.to_json()}

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> OperationMessage:
        obj = json_object(value, {"operation"}, cls.TITLE)
        return cls(Operation.from_json(obj["operation"]))


@attrs.frozen
class GetProtocols(_HashRequest):
    """0x40: asks for up to 10 protocols."""

    TAG = 0x40
    TITLE = "Get_protocols"
    FIELD = "get_protocols"
    HASH = ProtocolHash
    hashes: tuple[ProtocolHash, ...]


@attrs.frozen
class ProtocolMessage(_Message):
    """0x41: one protocol's sources (at most 2 MiB)."""

    TAG = 0x41
    TITLE = "Protocol"
    protocol: Protocol

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.protocol.encode(limits.protocol_max_size)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> ProtocolMessage:
        return cls(Protocol.read(reader, limits.protocol_max_size))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return limits.protocol_max_size

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol.to_json()}

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> ProtocolMessage:
        obj = json_object(value, {"protocol"}, cls.TITLE)
        return cls(Protocol.from_json(obj["protocol"]))


# -- Operations of blocks ----------------------------------------------------------------


@attrs.frozen
class OperationsKey:
    """A block and one of its validation passes (``int8`` on the wire)."""

    block: BlockHash
    validation_pass: int

    def encode(self) -> bytes:
        return self.block.raw + B.put_int8(self.validation_pass)

    @classmethod
    def read(cls, reader: B.Reader) -> OperationsKey:
        return cls(BlockHash.read(reader), reader.int8())

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.block.to_json(), "validation_pass": self.validation_pass}

    @classmethod
    def from_json(cls, value: Any) -> OperationsKey:
        obj = json_object(value, {"hash", "validation_pass"}, "operations key")
        return cls(
            BlockHash.from_json(obj["hash"]),
            json_int(obj["validation_pass"], "validation_pass", -128, 127),
        )


_KEY_SIZE = HASH_SIZE + 1


@attrs.frozen
class GetOperationsForBlocks(_Message):
    """0x60: asks for the operations of up to 10 (block, validation pass) pairs."""

    TAG = 0x60
    TITLE = "Get_operations_for_blocks"
    keys: tuple[OperationsKey, ...]

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        if len(self.keys) > MAX_REQUEST_LENGTH:
            raise EncodingError(f"{self.TITLE}: {len(self.keys)} keys, at most 10")
        return B.put_dynamic(b"".join(key.encode() for key in self.keys))

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> GetOperationsForBlocks:
        keys_reader = reader.sub(reader.uint30())
        if keys_reader.remaining > MAX_REQUEST_LENGTH * _KEY_SIZE:
            raise DecodingError(B.LIST_TOO_LONG, f"{cls.TITLE}: more than 10 keys")
        keys = []
        while keys_reader.remaining:
            keys.append(OperationsKey.read(keys_reader))
        return cls(tuple(keys))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return 4 + MAX_REQUEST_LENGTH * _KEY_SIZE

    def to_json(self) -> dict[str, Any]:
        return {"get_operations_for_blocks": [key.to_json() for key in self.keys]}

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> GetOperationsForBlocks:
        obj = json_object(value, {"get_operations_for_blocks"}, cls.TITLE)
        items = json_list(obj["get_operations_for_blocks"], "keys", MAX_REQUEST_LENGTH)
        return cls(tuple(OperationsKey.from_json(item) for item in items))


@attrs.frozen
class OperationsForBlocks(_Message):
    """
    0x61: the operations of one validation pass of a block, with the Merkle
    path proving them against the header's ``operations_hash``.  Binary: the
    key, the path (at most 100 bytes), then the operations, each with a
    ``uint30`` size, up to the end (at most 1 MiB in all).
    """

    TAG = 0x61
    TITLE = "Operations_for_blocks"
    key: OperationsKey
    path: MerklePath
    operations: tuple[Operation, ...]

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return (
            self.key.encode()
            + self.path.encode(limits.path_max_size)
            + put_operation_list(self.operations, limits)
        )

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> OperationsForBlocks:
        key = OperationsKey.read(reader)
        path = MerklePath.read(reader, limits.path_max_size)
        return cls(key, path, read_operation_list(reader, limits))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return _KEY_SIZE + limits.path_max_size + limits.operation_list_max_size

    def to_json(self) -> dict[str, Any]:
        return {
            "operations_for_block": self.key.to_json(),
            "operation_hashes_path": self.path.to_json(),
            "operations": [op.to_json() for op in self.operations],
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> OperationsForBlocks:
        keys = {"operations_for_block", "operation_hashes_path", "operations"}
        obj = json_object(value, keys, cls.TITLE)
        return cls(
            OperationsKey.from_json(obj["operations_for_block"]),
            MerklePath.from_json(obj["operation_hashes_path"]),
            tuple(Operation.from_json(op) for op in json_list(obj["operations"], "operations")),
        )


# -- Distributed-DB version 1 ------------------------------------------------------------


@attrs.frozen
class GetCheckpoint(_ChainMessage):
    """0x70 (ddb ≥ 1): asks for the peer's checkpoint.  Octez no longer uses it."""

    TAG = 0x70
    TITLE = "Get_checkpoint"
    FIELD = "get_checkpoint"
    DDB_VERSION = 1
    chain_id: ChainId


@attrs.frozen
class Checkpoint(_Message):
    """0x71 (ddb ≥ 1): the checkpoint's header."""

    TAG = 0x71
    TITLE = "Checkpoint"
    DDB_VERSION = 1
    chain_id: ChainId
    header: BlockHeader

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.chain_id.raw + self.header.encode(limits.block_header_max_size)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> Checkpoint:
        chain_id = ChainId.read(reader)
        return cls(chain_id, BlockHeader.read(reader, limits.block_header_max_size))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return ChainId.SIZE + limits.block_header_max_size

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": {"chain_id": self.chain_id.to_json(), "header": self.header.to_json()}
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> Checkpoint:
        obj = json_object(value, {"checkpoint"}, cls.TITLE)
        inner = json_object(obj["checkpoint"], {"chain_id", "header"}, cls.TITLE)
        return cls(ChainId.from_json(inner["chain_id"]), BlockHeader.from_json(inner["header"]))


@attrs.frozen
class GetProtocolBranch(_Message):
    """0x80 (ddb ≥ 1): asks for the branch of a protocol level (``uint8``)."""

    TAG = 0x80
    TITLE = "Get_protocol_branch"
    DDB_VERSION = 1
    chain_id: ChainId
    proto_level: int

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.chain_id.raw + B.put_uint8(self.proto_level)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> GetProtocolBranch:
        return cls(ChainId.read(reader), reader.uint8())

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return ChainId.SIZE + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "get_protocol_branch": {
                "chain": self.chain_id.to_json(),
                "proto_level": self.proto_level,
            }
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> GetProtocolBranch:
        obj = json_object(value, {"get_protocol_branch"}, cls.TITLE)
        inner = json_object(obj["get_protocol_branch"], {"chain", "proto_level"}, cls.TITLE)
        return cls(
            ChainId.from_json(inner["chain"]), json_int(inner["proto_level"], "proto_level", 0, 255)
        )


@attrs.frozen
class ProtocolBranch(_Message):
    """0x81 (ddb ≥ 1): a locator of the blocks of one protocol level."""

    TAG = 0x81
    TITLE = "Protocol_branch"
    DDB_VERSION = 1
    chain_id: ChainId
    proto_level: int
    locator: BlockLocator

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.chain_id.raw + B.put_uint8(self.proto_level) + self.locator.encode(limits)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> ProtocolBranch:
        chain_id = ChainId.read(reader)
        level = reader.uint8()
        return cls(chain_id, level, BlockLocator.read(reader, limits))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return ChainId.SIZE + 1 + _locator_bound(limits)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol_branch": {
                "chain": self.chain_id.to_json(),
                "proto_level": self.proto_level,
                "locator": self.locator.to_json(),
            }
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> ProtocolBranch:
        obj = json_object(value, {"protocol_branch"}, cls.TITLE)
        inner = json_object(obj["protocol_branch"], {"chain", "proto_level", "locator"}, cls.TITLE)
        return cls(
            ChainId.from_json(inner["chain"]),
            json_int(inner["proto_level"], "proto_level", 0, 255),
            BlockLocator.from_json(inner["locator"], limits),
        )


@attrs.frozen
class GetPredecessorHeader(_Message):
    """0x90 (ddb ≥ 1): asks for the header ``offset`` (``int32``) blocks below ``block``."""

    TAG = 0x90
    TITLE = "Get_predecessor_header"
    DDB_VERSION = 1
    block: BlockHash
    offset: int

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return self.block.raw + B.put_int32(self.offset)

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> GetPredecessorHeader:
        return cls(BlockHash.read(reader), reader.int32())

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return HASH_SIZE + 4

    def to_json(self) -> dict[str, Any]:
        return {"get_predecessor_header": {"block": self.block.to_json(), "offset": self.offset}}

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> GetPredecessorHeader:
        obj = json_object(value, {"get_predecessor_header"}, cls.TITLE)
        inner = json_object(obj["get_predecessor_header"], {"block", "offset"}, cls.TITLE)
        return cls(
            BlockHash.from_json(inner["block"]),
            json_int(inner["offset"], "offset", -(1 << 31), (1 << 31) - 1),
        )


@attrs.frozen
class PredecessorHeader(_Message):
    """0x91 (ddb ≥ 1): the answer, the header up to the end of the message."""

    TAG = 0x91
    TITLE = "Predecessor_header"
    DDB_VERSION = 1
    block: BlockHash
    offset: int
    header: BlockHeader

    def encode(self, limits: ShellLimits = DEFAULT_LIMITS) -> bytes:
        return (
            self.block.raw
            + B.put_int32(self.offset)
            + self.header.encode(limits.block_header_max_size)
        )

    @classmethod
    def read(cls, reader: B.Reader, limits: ShellLimits = DEFAULT_LIMITS) -> PredecessorHeader:
        block = BlockHash.read(reader)
        offset = reader.int32()
        return cls(block, offset, BlockHeader.read(reader, limits.block_header_max_size))

    @classmethod
    def max_size(cls, limits: ShellLimits = DEFAULT_LIMITS) -> int:
        return HASH_SIZE + 4 + limits.block_header_max_size

    def to_json(self) -> dict[str, Any]:
        return {
            "predecessor_header": {
                "block": self.block.to_json(),
                "offset": self.offset,
                "header": self.header.to_json(),
            }
        }

    @classmethod
    def from_json(cls, value: Any, limits: ShellLimits = DEFAULT_LIMITS) -> PredecessorHeader:
        obj = json_object(value, {"predecessor_header"}, cls.TITLE)
        inner = json_object(obj["predecessor_header"], {"block", "offset", "header"}, cls.TITLE)
        return cls(
            BlockHash.from_json(inner["block"]),
            json_int(inner["offset"], "offset", -(1 << 31), (1 << 31) - 1),
            BlockHeader.from_json(inner["header"]),
        )


ShellMessage: TypeAlias = (
    GetCurrentBranch
    | CurrentBranch
    | Deactivate
    | GetCurrentHead
    | CurrentHead
    | GetBlockHeaders
    | BlockHeaderMessage
    | GetOperations
    | OperationMessage
    | GetProtocols
    | ProtocolMessage
    | GetOperationsForBlocks
    | OperationsForBlocks
    | GetCheckpoint
    | Checkpoint
    | GetProtocolBranch
    | ProtocolBranch
    | GetPredecessorHeader
    | PredecessorHeader
)

#: Every case, in Octez's order (``Distributed_db_message.encoding``).
SHELL_MESSAGES: tuple[type[_Message], ...] = (
    GetCurrentBranch,
    CurrentBranch,
    Deactivate,
    GetCurrentHead,
    CurrentHead,
    GetBlockHeaders,
    BlockHeaderMessage,
    GetOperations,
    OperationMessage,
    GetProtocols,
    ProtocolMessage,
    GetOperationsForBlocks,
    OperationsForBlocks,
    GetCheckpoint,
    Checkpoint,
    GetProtocolBranch,
    ProtocolBranch,
    GetPredecessorHeader,
    PredecessorHeader,
)
SHELL_MESSAGES_BY_TAG: dict[int, type[_Message]] = {cls.TAG: cls for cls in SHELL_MESSAGES}


def max_record_size(limits: ShellLimits = DEFAULT_LIMITS) -> int:
    """The largest P2P record (4-byte size, 2-byte tag, payload) a shell case allows."""
    return 6 + max(cls.max_size(limits) for cls in SHELL_MESSAGES)


def decode_shell_message(tag: int, payload: bytes, limits: ShellLimits = DEFAULT_LIMITS) -> Any:
    """The typed message for ``tag``; :class:`DecodingError` on unknown tags and bad payloads."""
    cls = SHELL_MESSAGES_BY_TAG.get(tag)
    if cls is None:
        raise DecodingError(B.UNEXPECTED_TAG, f"shell message tag {tag:#06x}")
    return cls.decode(payload, limits)


def _decoder(cls: type[_Message], limits: ShellLimits) -> Callable[[bytes], Any]:
    return lambda payload: cls.decode(payload, limits)


def _encoder(limits: ShellLimits) -> Callable[[Any], bytes]:
    return lambda message: message.encode(limits)


def _from_json(cls: type[_Message], limits: ShellLimits) -> Callable[[Any], Any]:
    return lambda value: cls.from_json(value, limits)


def _to_json(message: Any) -> Any:
    return message.to_json()


def shell_message_encodings(
    limits: ShellLimits = DEFAULT_LIMITS, max_ddb_version: int = 2
) -> list[MessageEncoding[Any]]:
    """
    The cases of the P2P envelope for the shell messages a peer of the given
    distributed-DB version knows, each declaring its largest payload as
    ``max_length`` (checked before the payload is decoded).
    """
    return [
        MessageEncoding(
            tag=cls.TAG,
            title=cls.TITLE,
            type=cls,
            encode=_encoder(limits),
            decode=_decoder(cls, limits),
            max_length=cls.max_size(limits),
            to_json=_to_json,
            from_json=_from_json(cls, limits),
        )
        for cls in SHELL_MESSAGES
        if max_ddb_version >= cls.DDB_VERSION
    ]


def shell_message_codec(
    limits: ShellLimits = DEFAULT_LIMITS, max_ddb_version: int = 2
) -> P2PMessageCodec:
    """
    A P2P codec that speaks the control messages and the typed shell
    messages.  Its record bound is the largest record a shell case allows
    (about 8 MiB with Octez's limits) instead of the envelope's 100 MiB, so a
    session refuses an impossible record from its 4-byte size, before
    buffering it.
    """
    codec = P2PMessageCodec(shell_message_encodings(limits, max_ddb_version))
    codec.max_size = max_record_size(limits)
    return codec
