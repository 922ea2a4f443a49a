# -*- test-case-name: tests.test_cli -*-
"""
``tezos-p2p session decode``: decrypt and print both directions of a
recorded connection, given one side's identity; the records are cut by
the same :class:`~txtezosp2p.wire.framing.RecordFramer` a session uses.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO
from typing import Protocol as TypingProtocol

from ..identity import (
    IdentityFile,
)
from ..wire.crypto import generate_nonces, precompute
from ..wire.encoding import (
    Advertise,
    Bootstrap,
    ConnectionMessage,
    ConnectionMetadata,
    Disconnect,
    P2PMessageCodec,
    SwapAck,
    SwapRequest,
    ack_to_json,
    decode_ack,
)
from ..wire.errors import P2PError
from ..wire.framing import InputBuffer, RecordFramer, decode_record, take_connection_message
from .cli_args import EXIT_OK, CommandError, read_file
from .cli_codec import p2p_codec


def _split_connection_message(data: bytes, what: str) -> tuple[bytes, bytes]:
    received = InputBuffer()
    received.append(data)
    message = take_connection_message(received)
    if message is None:
        truncated = "no" if len(data) < 2 else "truncated"
        raise CommandError(f"{what}: {truncated} connection message")
    return message, bytes(received.data[received.pos :])


class _Direction:
    """Decrypts one direction of a recorded session, chunk by chunk."""

    def __init__(self, name: str, key: bytes, nonce: bytes, data: bytes) -> None:
        from ..wire.crypto import ChunkCipher

        self.name = name
        self.key = key
        self.nonce = nonce
        self.cipher = ChunkCipher(key, nonce, nonce)
        self.data = data
        self.offset = 0
        self.chunk = 0
        self.error: str | None = None

    def next_chunk(self) -> bytes | None:
        if self.error is not None:
            return None
        plain, offset, frames, error = self.cipher.open(self.data, self.offset, 1)
        if error is not None:
            self.error = f"chunk {self.chunk}: {error}"
            return None
        if not frames:
            if offset < len(self.data):
                self.error = f"chunk {self.chunk}: truncated chunk at the end of the data"
            return None
        self.offset = offset
        self.chunk += 1
        return plain

    def first_chunk_opens(self) -> bool:
        probe = _Direction(self.name, self.key, self.nonce, self.data)
        return probe.next_chunk() is not None


def cmd_session_decode(args: argparse.Namespace, out: TextIO) -> int:
    identity = IdentityFile(args.identity).load()
    sent_msg, sent_rest = _split_connection_message(read_file(args.sent), "sent")
    recv_msg, recv_rest = _split_connection_message(read_file(args.received), "received")
    ours = ConnectionMessage.decode(sent_msg[2:])
    theirs = ConnectionMessage.decode(recv_msg[2:])
    if ours.public_key != identity.public_key:
        raise CommandError("the sent connection message is not from the given identity")
    key = precompute(identity.secret_key, theirs.public_key)

    def directions(incoming: bool) -> tuple[_Direction, _Direction]:
        local, remote = generate_nonces(incoming=incoming, sent_msg=sent_msg, recv_msg=recv_msg)
        return _Direction("sent", key, local, sent_rest), _Direction(
            "received", key, remote, recv_rest
        )

    if args.role == "auto":
        # the side that dialled is not in the bytes: try both nonce assignments
        incoming = not directions(False)[1 if recv_rest else 0].first_chunk_opens()
    else:
        incoming = args.role == "incoming"
    sent, received = directions(incoming)

    def emit(
        direction: str,
        kind: str,
        chunk: int,
        chunks: int,
        message: Any,
        *,
        title: str | None = None,
    ) -> None:
        line = {
            "direction": direction,
            "kind": kind,
            "chunk": chunk,
            "chunks": chunks,
            "message": message,
        }
        if title is not None:
            line["title"] = title
        out.write(json.dumps(line) + "\n")

    emit("sent", "connection_message", 0, 0, ours.to_json())
    emit("received", "connection_message", 0, 0, theirs.to_json())
    accepted = {}
    for step, decode in (("metadata", _metadata_json), ("ack", _ack_json)):
        for direction in (sent, received):
            plain = direction.next_chunk()
            if plain is None:
                continue
            value = decode(plain)
            emit(direction.name, step, direction.chunk - 1, 1, value)
            if step == "ack":
                accepted[direction.name] = "ack" in value
    codec = p2p_codec()
    for direction in (sent, received):
        if not accepted.get(direction.name):
            continue
        _emit_messages(direction, codec, emit)
    errors = [f"{d.name}: {d.error}" for d in (sent, received) if d.error]
    if errors:
        raise CommandError("; ".join(errors))
    return EXIT_OK


def _metadata_json(plain: bytes) -> Any:
    try:
        return ConnectionMetadata.decode(plain).to_json()
    except P2PError as exc:
        return {"undecodable": plain.hex(), "error": str(exc)}


def _ack_json(plain: bytes) -> Any:
    try:
        return ack_to_json(decode_ack(plain))
    except P2PError as exc:
        return {"undecodable": plain.hex(), "error": str(exc)}


class _Emit(TypingProtocol):
    def __call__(
        self, direction: str, kind: str, chunk: int, chunks: int, message: Any, *, title: str | None
    ) -> None: ...


def _message_title(codec: P2PMessageCodec, message: object) -> str:
    """Octez's title of a decoded message (its JSON form does not always name it)."""
    control = {
        Disconnect: "Disconnect",
        Bootstrap: "Bootstrap",
        Advertise: "Advertise",
        SwapRequest: "Swap_request",
        SwapAck: "Swap_ack",
    }
    title = control.get(type(message))
    return title if title is not None else codec.case_for(message).title


def _emit_messages(
    direction: _Direction,
    codec: P2PMessageCodec,
    emit: _Emit,
) -> None:
    framer = RecordFramer(codec.max_size, codec.header_size)
    first_chunk = direction.chunk
    while True:
        if not framer.buffered:
            first_chunk = direction.chunk  # the next record starts in the next chunk
        plain = direction.next_chunk()
        if plain is None:
            break
        for body in framer.feed(plain):
            title: str | None = None
            try:
                decoded = decode_record(codec, body)
                message: Any = codec.to_json(decoded)
                title = _message_title(codec, decoded)
            except P2PError as exc:
                message = {"undecodable": bytes(body).hex(), "error": str(exc)}
            chunks = direction.chunk - first_chunk
            emit(direction.name, "p2p_message", first_chunk, chunks, message, title=title)
            first_chunk = direction.chunk - 1  # the records after it start in this chunk
        if framer.error is not None:
            error = framer.error
            direction.error = f"chunk {direction.chunk - 1}: {error.detail or error.reason}"
            return
    if framer.buffered and direction.error is None:
        direction.error = f"{framer.buffered} bytes of an incomplete message at the end"


def add_session_commands(commands: Any) -> None:
    """The ``session`` command group."""
    session = commands.add_parser("session", help="inspect recorded sessions")
    session_commands = session.add_subparsers(dest="session_command", required=True)
    dissect = session_commands.add_parser(
        "decode",
        help="decrypt a recorded connection given one side's identity",
        description=(
            "Print every connection message, metadata, Ack/Nack and P2P message of "
            "both directions as JSON lines.  --sent and --received hold the raw bytes "
            "the identity's side sent and received, each starting with that "
            "direction's framed connection message."
        ),
    )
    dissect.add_argument("--identity", required=True, help="identity.json of the recording side")
    dissect.add_argument("--sent", required=True, help="bytes that side sent")
    dissect.add_argument("--received", required=True, help="bytes that side received")
    dissect.add_argument(
        "--role",
        choices=("auto", "outgoing", "incoming"),
        default="auto",
        help="whether the recording side dialled (outgoing) or accepted (default: detect)",
    )
    dissect.set_defaults(run=cmd_session_decode)
