# -*- test-case-name: tests.test_shell_messages -*-
"""
The typed distributed-DB messages (``txtezosp2p.wire.shell``): byte vectors
captured on Tezos networks and Octez's regression samples, every case's
round trips (binary and JSON) and bounds, hostile bytes, a recorded
Carthagenet session, and typed messages over a real TCP session.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.interfaces import IListeningPort
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.node import cli
from txtezosp2p.session import Session, SessionFactory
from txtezosp2p.wire import binary as B
from txtezosp2p.wire import shell as S
from txtezosp2p.wire.encoding import Bootstrap, MessageEncoding, P2PMessageCodec
from txtezosp2p.wire.errors import DecodingError, EncodingError
from txtezosp2p.wire.ids import Point
from txtezosp2p.wire.shell_types import (
    BlockHash,
    BlockHeader,
    BlockLocator,
    ChainId,
    ContextHash,
    Hash,
    Mempool,
    MerklePath,
    Operation,
    OperationHash,
    OperationListListHash,
    PathStep,
    Protocol,
    ProtocolComponent,
    ProtocolHash,
    ShellLimits,
    timestamp_from_json,
    timestamp_to_json,
)

from .helpers import IDENTITY_A, IDENTITY_B, session_config

DATA = os.path.join(os.path.dirname(__file__), "data")
MIB = 1024 * 1024


def vectors() -> dict[str, dict[str, Any]]:
    with open(os.path.join(DATA, "shell_vectors.json")) as handle:
        return {v["name"]: v for v in json.load(handle)["vectors"]}


VECTORS = vectors()
CODEC = S.shell_message_codec()


def record(name: str) -> tuple[bytes, Any]:
    """A vector's record bytes (without the 4-byte size) and its typed message."""
    data = bytes.fromhex(VECTORS[name]["hex"])
    reader = B.Reader(data)
    body = reader.fixed(reader.uint30())
    reader.expect_end()
    return body, CODEC.decode(body)


# -- Strategies ---------------------------------------------------------------------


def hashes(cls: type[Hash]) -> st.SearchStrategy[Any]:
    return st.binary(min_size=cls.SIZE, max_size=cls.SIZE).map(cls)


int32 = st.integers(-(1 << 31), (1 << 31) - 1)
chain_ids = hashes(ChainId)
block_hashes = hashes(BlockHash)
operation_hashes = hashes(OperationHash)
headers = st.builds(
    BlockHeader,
    level=int32,
    proto=st.integers(0, 255),
    predecessor=block_hashes,
    timestamp=st.integers(-(1 << 63), (1 << 63) - 1),
    validation_pass=st.integers(0, 255),
    operations_hash=hashes(OperationListListHash),
    fitness=st.lists(st.binary(max_size=12), max_size=4).map(tuple),
    context=hashes(ContextHash),
    protocol_data=st.binary(max_size=48),
)
locators = st.builds(BlockLocator, headers, st.lists(block_hashes, max_size=6).map(tuple))
mempools = st.builds(
    Mempool,
    st.lists(operation_hashes, max_size=4).map(tuple),
    st.lists(operation_hashes, max_size=4).map(tuple),
)
operations = st.builds(Operation, block_hashes, st.binary(max_size=40))
paths = st.lists(
    st.builds(PathStep, st.sampled_from(["left", "right"]), hashes(OperationListListHash)),
    max_size=3,
).map(lambda steps: MerklePath(tuple(steps)))
strings = st.binary(max_size=12) | st.text(max_size=8).map(str.encode)
protocols = st.builds(
    Protocol,
    st.integers(0, 17),
    st.lists(st.builds(ProtocolComponent, strings, st.none() | strings, strings), max_size=3).map(
        tuple
    ),
)
keys = st.builds(S.OperationsKey, block_hashes, st.integers(-128, 127))


def requests(cls: type[Any], hash_cls: type[Hash]) -> st.SearchStrategy[Any]:
    return st.lists(hashes(hash_cls), max_size=10).map(lambda items: cls(tuple(items)))


messages = st.one_of(
    st.builds(S.GetCurrentBranch, chain_ids),
    st.builds(S.CurrentBranch, chain_ids, locators),
    st.builds(S.Deactivate, chain_ids),
    st.builds(S.GetCurrentHead, chain_ids),
    st.builds(S.CurrentHead, chain_ids, headers, mempools),
    requests(S.GetBlockHeaders, BlockHash),
    st.builds(S.BlockHeaderMessage, headers),
    requests(S.GetOperations, OperationHash),
    st.builds(S.OperationMessage, operations),
    requests(S.GetProtocols, ProtocolHash),
    st.builds(S.ProtocolMessage, protocols),
    st.lists(keys, max_size=10).map(lambda k: S.GetOperationsForBlocks(tuple(k))),
    st.builds(S.OperationsForBlocks, keys, paths, st.lists(operations, max_size=3).map(tuple)),
    st.builds(S.GetCheckpoint, chain_ids),
    st.builds(S.Checkpoint, chain_ids, headers),
    st.builds(S.GetProtocolBranch, chain_ids, st.integers(0, 255)),
    st.builds(S.ProtocolBranch, chain_ids, st.integers(0, 255), locators),
    st.builds(S.GetPredecessorHeader, block_hashes, int32),
    st.builds(S.PredecessorHeader, block_hashes, int32, headers),
)


def a_header(
    protocol_data: bytes = b"\x01\x02", fitness: tuple[bytes, ...] = (b"\x02",)
) -> BlockHeader:
    return BlockHeader(
        level=7,
        proto=1,
        predecessor=BlockHash(b"\x11" * 32),
        timestamp=1_700_000_000,
        validation_pass=4,
        operations_hash=OperationListListHash(b"\x22" * 32),
        fitness=fitness,
        context=ContextHash(b"\x33" * 32),
        protocol_data=protocol_data,
    )


CHAIN = ChainId(b"\x7a\x06\xa7\x70")


class VectorTests(SynchronousTestCase):
    """Messages captured on test networks decode to what their publishers checked."""

    def assertReencodes(self, name: str) -> Any:
        body, message = record(name)
        self.assertEqual(CODEC.encode(message), body)
        self.assertEqual(CODEC.decode(CODEC.encode(message)), message)
        self.assertEqual(CODEC.from_json(json.loads(json.dumps(CODEC.to_json(message)))), message)
        return message

    def test_current_head_known_valid(self) -> None:
        message = self.assertReencodes("current_head_known_valid")
        self.assertIsInstance(message, S.CurrentHead)
        self.assertEqual(message.chain_id.raw.hex(), "8eceda2f")
        self.assertEqual((message.header.level, message.header.proto), (245_395, 1))
        self.assertEqual(
            [h.raw.hex() for h in message.mempool.known_valid],
            ["c533d1d8a515b35fac67eb9926a6c983397208511ce69808d57177415654bf09"],
        )
        self.assertEqual(message.mempool.pending, ())

    def test_current_head_pending(self) -> None:
        message = self.assertReencodes("current_head_pending")
        self.assertEqual(message.header.level, 248_533)
        self.assertEqual(message.mempool.known_valid, ())
        self.assertEqual(
            [h.raw.hex()[:8] for h in message.mempool.pending], ["3cebec53", "70669010"]
        )

    def test_current_branch(self) -> None:
        message = self.assertReencodes("current_branch")
        self.assertIsInstance(message, S.CurrentBranch)
        self.assertEqual(str(message.chain_id), "NetXgtSLGNJvNye")
        self.assertGreater(len(message.locator.history), 100)
        self.assertEqual(message.locator.head_header.hash(), message.locator.head_hash)

    def test_get_block_headers(self) -> None:
        message = self.assertReencodes("get_block_headers")
        self.assertEqual(
            [str(h) for h in message.hashes],
            ["BKyQ9EofHrgaZKENioHyP4FZNsTmiSEcVmcghgzCC9cGhE7oCET"],
        )

    def test_get_operations_for_blocks(self) -> None:
        message = self.assertReencodes("get_operations_for_blocks")
        self.assertEqual(len(message.keys), 4)
        self.assertEqual(
            str(message.keys[0].block), "BMWmj9CTojf7AnA8ZQFWGkh1cXB6FkST8Ey5coaeHX6cVNAZqA6"
        )
        self.assertEqual(message.keys[0].validation_pass, 1)

    def test_operations_for_blocks_right(self) -> None:
        message = self.assertReencodes("operations_for_blocks_right")
        self.assertEqual(
            str(message.key.block), "BM4Hyf4ay3u2PcUBmumTEPcWW8Z7t45HXGZAjLNnenSC2f8bLte"
        )
        self.assertEqual(
            [(s.side, str(s.sibling)) for s in message.path.steps],
            [
                ("right", "LLobFmsoFEGPP3q9ZxpE84rH1vPC1uKqEV8L1x8zUjGwanEYuHBVB"),
                ("right", "LLoaGLRPRx3Zf8kB4ACtgku8F4feeBiskeb41J1ciwfcXB3KzHKXc"),
            ],
        )

    def test_operations_for_blocks_left(self) -> None:
        message = self.assertReencodes("operations_for_blocks_left")
        self.assertEqual(
            str(message.key.block), "BL61qJKRdXg6i628H62DyDqBNotK7f6CZrHGv4k7jEe8a86B7n8"
        )
        self.assertEqual(len(message.operations), 5)
        self.assertEqual(
            [(s.side, str(s.sibling)) for s in message.path.steps],
            [
                ("left", "LLoZQD2o1hNgoUhg6ha9dCVyRUY25GX1KN2TttXW2PZsyS8itbfpK"),
                ("left", "LLoaGLRPRx3Zf8kB4ACtgku8F4feeBiskeb41J1ciwfcXB3KzHKXc"),
            ],
        )

    def test_block_header(self) -> None:
        data = bytes.fromhex(VECTORS["block_header"]["hex"])
        header = BlockHeader.decode(data)
        self.assertEqual(header.encode(), data)
        self.assertEqual(
            (header.level, header.proto, header.validation_pass, len(header.fitness)),
            (28014, 1, 4, 2),
        )
        self.assertEqual(header.timestamp, 1544713848)
        self.assertEqual(str(header.hash()), "BKoBK7Qa8J4Wvz85MDRWmpAntd5UhPhCh3p6Ga6woJywF8cZkeJ")
        self.assertEqual(
            str(header.predecessor), "BKjYUUtYXtXjEuL49jB8ZbFwVdg4hU6U7oKKSC5vp6stYsfFDVN"
        )
        self.assertEqual(
            str(header.operations_hash), "LLoZi3xywrX9swZQgC82m7vj5hmuz6LGAatNq2Muh34oNn71JruZs"
        )
        self.assertEqual(
            str(header.context), "CoUoqw1cVKUUNWyAviph5cdsjDpgeNhH2DGkMtgy7N6kfwnbewvS"
        )

    def test_operation(self) -> None:
        data = bytes.fromhex(VECTORS["operation"]["hex"])
        operation = Operation.decode(data)
        self.assertEqual(operation.encode(), data)
        self.assertEqual(
            str(operation.branch), "BKqTKfGwK3zHnVXX33X5PPHy1FDTnbkajj3eFtCXGFyfimQhT1H"
        )

    def test_octez_regression_samples(self) -> None:
        """Octez's encoding regression: the sample JSON and the binary it encodes to."""
        for name, cls in (
            ("octez_block_header_raw", BlockHeader),
            ("octez_operation_raw", Operation),
        ):
            vector = VECTORS[name]
            value = cls.from_json(vector["json"])
            self.assertEqual(value.encode().hex(), vector["hex"], name)
            self.assertEqual(cls.decode(bytes.fromhex(vector["hex"])).to_json(), vector["json"])

    def test_chain_ids(self) -> None:
        """A chain id is the start of the hash of its genesis block's hash."""
        for genesis, chain in (
            ("BLockGenesisGenesisGenesisGenesisGenesisf79b5d1CoW2", "NetXdQprcVkpaWU"),
            ("BLockGenesisGenesisGenesisGenesisGenesisd6f5afWyME7", "NetXjD3HPJJjmcd"),
        ):
            self.assertEqual(str(ChainId.of_block_hash(BlockHash.from_b58check(genesis))), chain)


class RecordedSessionTests(SynchronousTestCase):
    """``session decode`` on a real Carthagenet session shows typed shell messages."""

    def decode(self) -> list[dict[str, Any]]:
        directory = os.path.join(DATA, "carthagenet_session")
        out = io.StringIO()
        status = cli.main(
            [
                "session",
                "decode",
                "--identity",
                os.path.join(directory, "identity.json"),
                "--sent",
                os.path.join(directory, "sent"),
                "--received",
                os.path.join(directory, "received"),
            ],
            out=out,
        )
        self.assertEqual(status, 0)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    def test_get_current_branch(self) -> None:
        lines = self.decode()
        received = [
            line
            for line in lines
            if line["direction"] == "received" and line["kind"] == "p2p_message"
        ]
        self.assertEqual(
            [(line["title"], line["message"]) for line in received],
            [("Get_current_branch", {"get_current_branch": "NetXjD3HPJJjmcd"})] * 2,
        )
        version = lines[1]["message"]["version"]
        self.assertEqual(version["chain_name"], "TEZOS_ALPHANET_CARTHAGE_2019-11-28T13:02:13Z")

    def test_current_branch_from_genesis(self) -> None:
        """The recording side answered with a locator whose head is the genesis block."""
        lines = self.decode()
        answer = [line for line in lines if line.get("title") == "Current_branch"]
        self.assertEqual(len(answer), 1)
        message = S.CurrentBranch.from_json(answer[0]["message"])
        self.assertEqual(message.locator.head_header.level, 0)
        # genesis is its own predecessor, and the chain id derives from its hash
        genesis = message.locator.head_header.predecessor
        self.assertEqual(str(genesis), "BLockGenesisGenesisGenesisGenesisGenesisd6f5afWyME7")
        self.assertEqual(ChainId.of_block_hash(genesis), message.chain_id)


class RoundTripTests(SynchronousTestCase):
    @given(messages)
    def test_binary(self, message: Any) -> None:
        body = CODEC.encode(message)
        self.assertEqual(B.Reader(body).uint16(), type(message).TAG)
        self.assertEqual(CODEC.decode(body), message)
        self.assertEqual(type(message).decode(body[2:]), message)

    @given(messages)
    def test_json(self, message: Any) -> None:
        value = json.loads(json.dumps(CODEC.to_json(message)))
        self.assertEqual(CODEC.from_json(value), message)
        self.assertEqual(type(message).from_json(value), message)

    @given(st.integers(-(1 << 63), (1 << 63) - 1))
    def test_timestamps(self, seconds: int) -> None:
        self.assertEqual(timestamp_from_json(timestamp_to_json(seconds)), seconds)

    def test_timestamp_forms(self) -> None:
        self.assertEqual(timestamp_to_json(0), "1970-01-01T00:00:00Z")
        self.assertEqual(timestamp_to_json(-62167219200), "0000-01-01T00:00:00Z")
        self.assertEqual(timestamp_to_json(-62167219201), "-62167219201")
        self.assertEqual(timestamp_to_json(253402300800), "253402300800")
        self.assertEqual(timestamp_from_json("2020-04-20T18:20:00+02:00"), 1587399600)
        self.assertRaises(DecodingError, timestamp_from_json, "yesterday")
        self.assertRaises(DecodingError, timestamp_from_json, "2020-13-01T00:00:00Z")

    def test_every_case(self) -> None:
        """Octez's tags and titles, in Octez's order, with their distributed-DB versions."""
        self.assertEqual(
            [(cls.TAG, cls.TITLE, cls.DDB_VERSION) for cls in S.SHELL_MESSAGES],
            [
                (0x10, "Get_current_branch", 0),
                (0x11, "Current_branch", 0),
                (0x12, "Deactivate", 0),
                (0x13, "Get_current_head", 0),
                (0x14, "Current_head", 0),
                (0x20, "Get_block_headers", 0),
                (0x21, "Block_header", 0),
                (0x30, "Get_operations", 0),
                (0x31, "Operation", 0),
                (0x40, "Get_protocols", 0),
                (0x41, "Protocol", 0),
                (0x60, "Get_operations_for_blocks", 0),
                (0x61, "Operations_for_blocks", 0),
                (0x70, "Get_checkpoint", 1),
                (0x71, "Checkpoint", 1),
                (0x80, "Get_protocol_branch", 1),
                (0x81, "Protocol_branch", 1),
                (0x90, "Get_predecessor_header", 1),
                (0x91, "Predecessor_header", 1),
            ],
        )
        old = P2PMessageCodec(S.shell_message_encodings(max_ddb_version=0))
        self.assertRaises(EncodingError, old.encode, S.GetCheckpoint(CHAIN))
        self.assertEqual(old.decode(old.encode(S.Deactivate(CHAIN))), S.Deactivate(CHAIN))

    def test_known_bytes(self) -> None:
        """Small messages byte for byte (the forms TezEdge's tests and Octez's encodings give)."""
        chain = ChainId(bytes.fromhex("8eceda2f"))
        for message, expected in (
            (S.GetCurrentBranch(chain), "00108eceda2f"),
            (S.Deactivate(chain), "00128eceda2f"),
            (S.GetCurrentHead(chain), "00138eceda2f"),
            (S.GetProtocolBranch(chain, 3), "00808eceda2f03"),
            (S.GetBlockHeaders(()), "002000000000"),
        ):
            self.assertEqual(CODEC.encode(message).hex(), expected)
        self.assertEqual(Mempool().encode().hex(), "000000000000000400000000")
        self.assertEqual(MerklePath().encode().hex(), "00")

    def test_envelope_and_control_messages(self) -> None:
        """The shell codec is still the P2P envelope: control messages pass through."""
        self.assertEqual(CODEC.decode(CODEC.encode(Bootstrap())), Bootstrap())
        self.assertEqual(CODEC.max_size, S.max_record_size())
        # the largest case is Current_head: chain id, sized header, full mempool
        self.assertEqual(CODEC.max_size, 6 + 4 + 4 + 8 * MIB + 8 + 4000 * 32)
        self.assertRaises(DecodingError, CODEC.decode, b"\x00\x50")


def encoded_header_of_size(size: int) -> BlockHeader:
    base = len(a_header(b"").encode())
    return a_header(b"\x00" * (size - base))


class BoundTests(SynchronousTestCase):
    """Octez's bounds: the largest accepted value passes, one more fails with a typed error."""

    def assertRefused(self, cls: type[Any], payload: bytes, reason: str) -> None:
        with self.assertRaises(DecodingError) as caught:
            cls.decode(payload)
        self.assertEqual(caught.exception.reason, reason)
        with self.assertRaises(DecodingError):
            CODEC.decode(B.put_uint16(cls.TAG) + payload)

    def test_block_header_size(self) -> None:
        largest = encoded_header_of_size(8 * MIB)
        payload = largest.encode()
        self.assertEqual(len(payload), 8 * MIB)
        self.assertEqual(S.BlockHeaderMessage.decode(payload).header, largest)
        self.assertRefused(S.BlockHeaderMessage, payload + b"\x00", B.SIZE_LIMIT_EXCEEDED)
        self.assertRaises(EncodingError, encoded_header_of_size(8 * MIB + 1).encode)
        # inside a Current_head, where the header has a size prefix
        inside = CHAIN.raw + B.put_dynamic(payload + b"\x00") + Mempool().encode()
        self.assertRefused(S.CurrentHead, inside, B.SIZE_LIMIT_EXCEEDED)

    def test_locator_history(self) -> None:
        history = tuple(BlockHash(i.to_bytes(32, "big")) for i in range(1000))
        message = S.CurrentBranch(CHAIN, BlockLocator(a_header(), history))
        payload = message.encode()
        self.assertEqual(S.CurrentBranch.decode(payload), message)
        self.assertRefused(S.CurrentBranch, payload + b"\x00" * 32, B.LIST_TOO_LONG)
        self.assertRefused(S.CurrentBranch, payload + b"\x00" * 5, B.LIST_TOO_LONG)
        self.assertRefused(S.CurrentBranch, payload[:-5], B.NOT_ENOUGH_DATA)
        longer = BlockLocator(a_header(), (*history, history[0]))
        self.assertRaises(EncodingError, S.CurrentBranch(CHAIN, longer).encode)

    def test_mempool(self) -> None:
        """The bound is Octez's ``8 + 32 * 4000`` bytes: 3999 hashes fit, 4000 do not."""
        hashes = tuple(OperationHash(i.to_bytes(32, "big")) for i in range(4000))
        fits = S.CurrentHead(CHAIN, a_header(), Mempool(hashes[:2000], hashes[2000:3999]))
        payload = fits.encode()
        self.assertEqual(S.CurrentHead.decode(payload), fits)
        over = S.CurrentHead(CHAIN, a_header(), Mempool(hashes[:2000], hashes[2000:]))
        self.assertRaises(EncodingError, over.encode)
        head = CHAIN.raw + B.put_dynamic(a_header().encode())
        mempool = B.put_dynamic(b"".join(h.raw for h in hashes[:2000]))
        mempool += B.put_dynamic(B.put_dynamic(b"".join(h.raw for h in hashes[2000:])))
        self.assertRefused(S.CurrentHead, head + mempool, B.SIZE_LIMIT_EXCEEDED)
        # the redundant inner size must match
        bad = head + B.put_dynamic(b"") + B.put_uint30(5) + B.put_dynamic(b"") + b"\x00"
        self.assertRefused(S.CurrentHead, bad, B.EXTRA_BYTES)

    def test_requests(self) -> None:
        cls: Any
        hash_cls: Any
        for cls, hash_cls in (
            (S.GetBlockHeaders, BlockHash),
            (S.GetOperations, OperationHash),
            (S.GetProtocols, ProtocolHash),
        ):
            ten = tuple(hash_cls(bytes([i]) * 32) for i in range(10))
            self.assertEqual(cls.decode(cls(ten).encode()), cls(ten))
            eleven = B.put_dynamic(b"".join(h.raw for h in (*ten, ten[0])))
            self.assertRefused(cls, eleven, B.LIST_TOO_LONG)
            self.assertRaises(EncodingError, cls((*ten, ten[0])).encode)
            self.assertRefused(cls, B.put_dynamic(b"\x00" * 33), B.NOT_ENOUGH_DATA)
            # a hash of another kind is refused rather than sent under the wrong tag
            self.assertRaises(EncodingError, cls((ChainId(b"\x00" * 4),)).encode)
        keys = tuple(S.OperationsKey(BlockHash(bytes([i]) * 32), i) for i in range(11))
        self.assertEqual(
            S.GetOperationsForBlocks.decode(S.GetOperationsForBlocks(keys[:10]).encode()).keys,
            keys[:10],
        )
        payload = B.put_dynamic(b"".join(k.encode() for k in keys))
        self.assertRefused(S.GetOperationsForBlocks, payload, B.LIST_TOO_LONG)
        self.assertRaises(EncodingError, S.GetOperationsForBlocks(keys).encode)

    def test_operation_size(self) -> None:
        largest = Operation(BlockHash(b"\x01" * 32), b"\x00" * (128 * 1024 - 32))
        payload = S.OperationMessage(largest).encode()
        self.assertEqual(S.OperationMessage.decode(payload).operation, largest)
        self.assertRefused(S.OperationMessage, payload + b"\x00", B.SIZE_LIMIT_EXCEEDED)
        self.assertRefused(S.OperationMessage, b"\x00" * 31, B.NOT_ENOUGH_DATA)
        too_big = Operation(BlockHash(b"\x01" * 32), b"\x00" * (128 * 1024 - 31))
        self.assertRaises(EncodingError, S.OperationMessage(too_big).encode)

    def test_operation_list(self) -> None:
        key = S.OperationsKey(BlockHash(b"\x05" * 32), 0)
        eight = tuple(
            Operation(BlockHash(b"\x01" * 32), b"\x00" * (128 * 1024 - 36)) for _ in range(8)
        )
        message = S.OperationsForBlocks(key, MerklePath(), eight)
        payload = message.encode()
        self.assertEqual(len(payload), 33 + 1 + 1024 * 1024)
        self.assertEqual(S.OperationsForBlocks.decode(payload), message)
        extra = payload + B.put_dynamic(b"\x01" * 32)
        self.assertRefused(S.OperationsForBlocks, extra, B.SIZE_LIMIT_EXCEEDED)
        one_big = key.encode() + b"\x00" + B.put_dynamic(b"\x00" * (128 * 1024 + 1))
        self.assertRefused(S.OperationsForBlocks, one_big, B.SIZE_LIMIT_EXCEEDED)
        nine = S.OperationsForBlocks(key, MerklePath(), (*eight, eight[0]))
        self.assertRaises(EncodingError, nine.encode)

    def test_merkle_path_depth(self) -> None:
        """8 validation passes: a path of three levels (100 bytes) at most."""
        key = S.OperationsKey(BlockHash(b"\x05" * 32), 1)
        sibling = OperationListListHash(b"\x09" * 32)
        for depth in range(4):
            for side in ("left", "right"):
                path = MerklePath(tuple(PathStep(side, sibling) for _ in range(depth)))  # type: ignore[arg-type]
                message = S.OperationsForBlocks(key, path, ())
                self.assertEqual(S.OperationsForBlocks.decode(message.encode()), message)
        deep = MerklePath(tuple(PathStep("left", sibling) for _ in range(4)))
        self.assertRaises(EncodingError, S.OperationsForBlocks(key, deep, ()).encode)
        payload = key.encode() + deep.encode()
        self.assertRefused(S.OperationsForBlocks, payload, B.SIZE_LIMIT_EXCEEDED)
        # a long run of Left tags is refused at the fourth, without recursion
        self.assertRefused(
            S.OperationsForBlocks, key.encode() + b"\xf0" * 100_000, B.SIZE_LIMIT_EXCEEDED
        )
        self.assertRefused(S.OperationsForBlocks, key.encode() + b"\x42", B.UNEXPECTED_TAG)

    def test_merkle_path_order(self) -> None:
        """Left levels carry their right hash after the inner path, innermost first."""
        a, b, c = (OperationListListHash(bytes([i]) * 32) for i in (0xA, 0xB, 0xC))
        path = MerklePath((PathStep("left", a), PathStep("right", b), PathStep("left", c)))
        self.assertEqual(path.encode(), b"\xf0\x0f" + b.raw + b"\xf0\x00" + c.raw + a.raw)
        self.assertEqual(
            path.to_json(),
            {"path": {"left": str(b), "path": {"path": {}, "right": str(c)}}, "right": str(a)},
        )

    def test_protocol(self) -> None:
        source = b"x" * (2 * MIB - 2 - 4 - 4 - 1 - 4)
        largest = Protocol(17, (ProtocolComponent(b"", None, source),))
        payload = S.ProtocolMessage(largest).encode()
        self.assertEqual(len(payload), 2 * MIB)
        self.assertEqual(S.ProtocolMessage.decode(payload).protocol, largest)
        bigger = Protocol(17, (ProtocolComponent(b"", None, source + b"x"),))
        self.assertRaises(EncodingError, S.ProtocolMessage(bigger).encode)
        over = B.put_uint16(17) + B.put_dynamic(
            ProtocolComponent(b"", None, source + b"x").encode()
        )
        self.assertEqual(len(over), 2 * MIB + 1)
        self.assertRefused(S.ProtocolMessage, over, B.SIZE_LIMIT_EXCEEDED)
        unknown = B.put_uint16(18) + B.put_dynamic(b"")
        self.assertRefused(S.ProtocolMessage, unknown, "Exception_raised_in_user_function")

    def test_custom_limits(self) -> None:
        """Octez can change its bounds; so can an embedder."""
        small = ShellLimits(block_header_max_size=200, mempool_max_operations=2)
        header = encoded_header_of_size(201)
        payload = S.BlockHeaderMessage(header).encode()
        self.assertEqual(S.BlockHeaderMessage.decode(payload).header, header)
        self.assertRaises(DecodingError, S.BlockHeaderMessage.decode, payload, small)
        codec = S.shell_message_codec(small)
        self.assertEqual(codec.max_size, S.max_record_size(small))
        self.assertRaises(DecodingError, codec.decode, B.put_uint16(0x21) + payload)


def _all_decoders() -> list[Any]:
    return [cls.decode for cls in S.SHELL_MESSAGES] + [
        CODEC.decode,
        BlockHeader.decode,
        Operation.decode,
    ]


class HostileBytesTests(SynchronousTestCase):
    """Arbitrary and mutated bytes never raise anything but ``DecodingError``."""

    def assertTyped(self, decode: Any, data: bytes) -> None:
        try:
            decode(data)
        except DecodingError:
            pass

    @given(st.binary(max_size=300))
    def test_arbitrary(self, data: bytes) -> None:
        for decode in _all_decoders():
            self.assertTyped(decode, data)

    @given(messages, st.data())
    def test_mutated(self, message: Any, data: st.DataObject) -> None:
        body = bytearray(CODEC.encode(message))
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(body)))
            action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
            if action == "flip" and position < len(body):
                body[position] ^= data.draw(st.integers(1, 255))
            elif action == "cut":
                del body[position:]
            else:
                body[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        self.assertTyped(CODEC.decode, bytes(body))

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=6),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=8), children, max_size=3)
            ),
            max_leaves=8,
        )
    )
    def test_json(self, value: Any) -> None:
        try:
            CODEC.from_json(value)
        except DecodingError:
            pass


class CommandLineTests(SynchronousTestCase):
    """``tezos-p2p codec`` shows shell messages and types typed."""

    def run_cli(self, *argv: str) -> str:
        out = io.StringIO()
        self.assertEqual(cli.main(list(argv), out=out), 0)
        return out.getvalue().strip()

    def test_p2p_message(self) -> None:
        decoded = self.run_cli("codec", "decode", "p2p_message", "0000000600108eceda2f")
        self.assertEqual(json.loads(decoded), {"get_current_branch": "NetXgtSLGNJvNye"})
        encoded = self.run_cli("codec", "encode", "p2p_message", decoded)
        self.assertEqual(encoded, "0000000600108eceda2f")
        body = VECTORS["current_head_pending"]["hex"]
        value = json.loads(self.run_cli("codec", "decode", "p2p_message", body))
        self.assertEqual(value["current_block_header"]["level"], 248_533)
        self.assertEqual(self.run_cli("codec", "encode", "p2p_message", json.dumps(value)), body)

    def test_types(self) -> None:
        vector = VECTORS["octez_block_header_raw"]
        decoded = json.loads(self.run_cli("codec", "decode", "block_header", vector["hex"]))
        self.assertEqual(decoded, vector["json"])
        encoded = self.run_cli("codec", "encode", "block_header", json.dumps(vector["json"]))
        self.assertEqual(encoded, vector["hex"])
        self.assertEqual(
            self.run_cli("codec", "decode", "chain_id", "7a06a770"), '"NetXdQprcVkpaWU"'
        )
        self.assertEqual(
            self.run_cli("codec", "decode", "mempool", Mempool().encode().hex()),
            '{"known_valid": [], "pending": []}',
        )
        names = [line.split()[0] for line in self.run_cli("codec", "list").splitlines()]
        for name in ("block_header", "operation", "block_locator", "mempool", "protocol"):
            self.assertIn(name, names)


class EncodingsTests(SynchronousTestCase):
    def test_message_encodings(self) -> None:
        cases = S.shell_message_encodings()
        self.assertTrue(all(isinstance(case, MessageEncoding) for case in cases))
        self.assertEqual([case.tag for case in cases], [cls.TAG for cls in S.SHELL_MESSAGES])
        for case in cases:
            self.assertEqual(case.max_length, case.type.max_size())


class TCPTests(TestCase):
    """Typed shell messages over a real session on loopback TCP."""

    timeout = 30

    async def exchange(self) -> list[object]:
        from twisted.internet import reactor

        accepted: Deferred[Session] = Deferred()
        factory = SessionFactory(
            session_config(IDENTITY_A, codec=S.shell_message_codec()),
            reactor,
            on_session=lambda s: accepted.callback(s) if not accepted.called else None,
        )
        port: IListeningPort = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            factory
        )
        self.addCleanup(port.stopListening)
        number = port.getHost().port  # type: ignore[attr-defined]
        client = Session(
            session_config(IDENTITY_B, codec=S.shell_message_codec()),
            reactor,
            incoming=False,
            point=Point("127.0.0.1", number),
        )
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", number), client)
        server = await accepted
        for session in (client, server):
            self.addCleanup(session.close)
        await client.when_established()
        await server.when_established()
        header = encoded_header_of_size(300_000)
        sent = [
            S.GetCurrentBranch(CHAIN),
            S.CurrentHead(CHAIN, header, Mempool((OperationHash(b"\x07" * 32),), ())),
            S.BlockHeaderMessage(header),
        ]
        for message in sent:
            await client.write(message)
        received = [await server.read() for _ in sent]
        self.assertEqual(received, sent)
        return received

    def test_exchange(self) -> Deferred[list[object]]:
        return Deferred.fromCoroutine(self.exchange())
