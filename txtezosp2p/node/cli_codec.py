# -*- test-case-name: tests.test_cli -*-
"""
``tezos-p2p codec list|decode|encode`` (modelled on ``octez-codec``): the
wire encodings, binary as lowercase hex, values as Octez's JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from ..wire.binary import Reader
from ..wire.encoding import (
    ConnectionMessage,
    ConnectionMetadata,
    NetworkVersion,
    P2PMessageCodec,
    ack_from_json,
    ack_to_json,
    decode_ack,
    encode_ack,
    frame_record,
    point_from_json,
    put_point,
    read_point,
)
from ..wire.ids import PeerId
from ..wire.shell import shell_message_codec
from ..wire.shell_types import BlockHeader, BlockLocator, ChainId, Mempool, Operation, Protocol
from .cli_args import EXIT_OK, CommandError


def p2p_codec() -> P2PMessageCodec:
    """The P2P envelope carrying the shell messages, as a running node decodes it."""
    return shell_message_codec()


def _decode_p2p_message(data: bytes) -> Any:
    reader = Reader(data)
    length = reader.uint30()
    body = reader.fixed(length)
    reader.expect_end()
    codec = p2p_codec()
    if length + 4 > codec.max_size:
        raise CommandError(f"message of {length + 4} bytes exceeds {codec.max_size}")
    return codec.to_json(codec.decode(body))


def _encode_p2p_message(value: Any) -> bytes:
    codec = p2p_codec()
    return frame_record(codec.encode(codec.from_json(value)), codec.max_size)


def _decode_point(data: bytes) -> Any:
    reader = Reader(data)
    point = read_point(reader)
    reader.expect_end()
    return point.to_text()


def _decode_peer_id(data: bytes) -> Any:
    if len(data) != 16:
        raise CommandError("a peer id is 16 bytes")
    return str(PeerId(data))


def _peer_id_from_json(value: Any) -> bytes:
    if not isinstance(value, str):
        raise CommandError("a peer id is a string")
    return PeerId.from_b58check(value).raw


def _whole(read: Callable[[Reader], Any]) -> Callable[[bytes], Any]:
    """Decode all of ``data`` with ``read``, then its JSON form."""

    def decode(data: bytes) -> Any:
        reader = Reader(data)
        value = read(reader)
        reader.expect_end()
        return value.to_json()

    return decode


def _shell_type(cls: Any) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    """Decoder and encoder of a shell type: all of the data, its JSON form."""
    return _whole(cls.read), lambda value: cls.from_json(value).encode()


def _decode_network_version(data: bytes) -> Any:
    reader = Reader(data)
    version = NetworkVersion.read(reader)
    reader.expect_end()
    return version.to_json()


#: name -> (description, decode(bytes) -> json, encode(json) -> bytes)
CODECS: dict[str, tuple[str, Callable[[bytes], Any], Callable[[Any], bytes]]] = {
    "connection_message": (
        "First, cleartext message (body without its 2-byte frame length)",
        lambda data: ConnectionMessage.decode(data).to_json(),
        lambda value: ConnectionMessage.from_json(value).encode(),
    ),
    "metadata": (
        "Connection metadata: disable_mempool and private_node",
        lambda data: ConnectionMetadata.decode(data).to_json(),
        lambda value: ConnectionMetadata.from_json(value).encode(),
    ),
    "ack": (
        "Ack, Nack (motive and alternative points) or Nack_v_0",
        lambda data: ack_to_json(decode_ack(data)),
        lambda value: encode_ack(ack_from_json(value)),
    ),
    "p2p_message": (
        "P2P message record with its 4-byte size (control and shell messages)",
        _decode_p2p_message,
        _encode_p2p_message,
    ),
    "point": (
        "A point as carried in messages: 4-byte length and 'addr:port' text",
        _decode_point,
        lambda value: put_point(point_from_json(value)),
    ),
    "peer_id": (
        "A peer id: 16 raw bytes, Base58Check 'id...' in JSON",
        _decode_peer_id,
        _peer_id_from_json,
    ),
    "network_version": (
        "Chain name, distributed_db_version, p2p_version",
        _decode_network_version,
        lambda value: NetworkVersion.from_json(value).encode(),
    ),
    "chain_id": (
        "A chain id: 4 raw bytes, Base58Check 'Net...' in JSON",
        *_shell_type(ChainId),
    ),
    "block_header": (
        "A block header: shell header, then the protocol data up to the end",
        *_shell_type(BlockHeader),
    ),
    "operation": (
        "An operation: branch (block hash), then the protocol data up to the end",
        *_shell_type(Operation),
    ),
    "block_locator": (
        "A block locator: head header with its 4-byte size, then block hashes",
        *_shell_type(BlockLocator),
    ),
    "mempool": (
        "A mempool: known-valid and pending operation hashes",
        *_shell_type(Mempool),
    ),
    "protocol": (
        "A protocol: environment version and source components",
        *_shell_type(Protocol),
    ),
}


def _codec(name: str) -> tuple[str, Callable[[bytes], Any], Callable[[Any], bytes]]:
    try:
        return CODECS[name]
    except KeyError:
        raise CommandError(f"unknown encoding {name!r} (try 'tezos-p2p codec list')") from None


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise CommandError("invalid hexadecimal input") from None


def cmd_codec_list(args: argparse.Namespace, out: TextIO) -> int:
    width = max(len(name) for name in CODECS)
    for name, (description, _, _) in CODECS.items():
        out.write(f"{name.ljust(width)}  {description}\n")
    return EXIT_OK


def cmd_codec_decode(args: argparse.Namespace, out: TextIO) -> int:
    _, decode, _ = _codec(args.name)
    value = decode(_parse_hex(_input_text(args.data)))
    out.write(json.dumps(value, indent=2 if args.pretty else None) + "\n")
    return EXIT_OK


def cmd_codec_encode(args: argparse.Namespace, out: TextIO) -> int:
    _, _, encode = _codec(args.name)
    try:
        value = json.loads(_input_text(args.json))
    except ValueError as exc:
        raise CommandError(f"invalid JSON: {exc}") from None
    out.write(encode(value).hex() + "\n")
    return EXIT_OK


def _input_text(value: str) -> str:
    """An argument, or standard input when it is '-'."""
    if value == "-":
        return sys.stdin.read()
    return value


def add_codec_commands(commands: Any) -> None:
    """The ``codec`` command group."""
    codec = commands.add_parser("codec", help="encode and decode wire structures")
    codec_commands = codec.add_subparsers(dest="codec_command", required=True)
    codec_commands.add_parser("list", help="list the encodings").set_defaults(run=cmd_codec_list)
    decode = codec_commands.add_parser("decode", help="decode hex into JSON")
    decode.add_argument("name", help="encoding name (see 'codec list')")
    decode.add_argument("data", help="binary data as hex ('-' reads standard input)")
    decode.add_argument("--pretty", action="store_true", help="indent the JSON")
    decode.set_defaults(run=cmd_codec_decode)
    encode = codec_commands.add_parser("encode", help="encode JSON into hex")
    encode.add_argument("name", help="encoding name (see 'codec list')")
    encode.add_argument("json", help="the value as JSON ('-' reads standard input)")
    encode.set_defaults(run=cmd_codec_encode)
