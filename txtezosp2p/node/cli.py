# -*- test-case-name: tests.test_cli -*-
"""
The ``tezos-p2p`` command line, modelled on ``octez-node identity`` and
``octez-codec``:

* ``tezos-p2p identity generate|show|check`` — ``identity.json`` files;
* ``tezos-p2p codec list|decode|encode`` — the wire encodings, binary as
  lowercase hex, values as Octez's JSON;
* ``tezos-p2p session decode`` — decrypt and print both directions of a
  recorded connection, given one side's identity;
* ``tezos-p2p sandbox`` — a small network of nodes on loopback, with a
  live table of their connections;
* ``tezos-p2p rpc``, ``peers``, ``connections``, ``points``, ``stat``,
  ``ban``, ``unban``, ``trust``, ``kick`` — a running node's admin HTTP API
  (:mod:`txtezosp2p.node.admin_client`).

Errors print one line on standard error and exit with status 1; a
traceback is a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO
from typing import Protocol as TypingProtocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ReactorNotRunning
from twisted.python.failure import Failure

from .. import __version__
from ..identity import (
    DEFAULT_EXPECTED_POW,
    IdentityFile,
    MiningProgress,
    expected_attempts,
    generate_identity,
)
from ..wire.binary import Reader
from ..wire.crypto import PowTarget, generate_nonces, precompute
from ..wire.encoding import (
    Advertise,
    Bootstrap,
    ConnectionMessage,
    ConnectionMetadata,
    Disconnect,
    NetworkVersion,
    P2PMessageCodec,
    SwapAck,
    SwapRequest,
    ack_from_json,
    ack_to_json,
    decode_ack,
    encode_ack,
    frame_record,
    point_from_json,
    put_point,
    read_point,
)
from ..wire.errors import P2PError
from ..wire.framing import InputBuffer, RecordFramer, decode_record, take_connection_message
from ..wire.ids import PeerId
from ..wire.shell import shell_message_codec
from ..wire.shell_types import BlockHeader, BlockLocator, ChainId, Mempool, Operation, Protocol
from .admin_client import AdminClientError, add_commands
from .admin_client import run as run_admin
from .config import default_data_dir
from .simulate import add_simulate_command

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A user error: printed as one line, exit status 1."""


# -- codecs -----------------------------------------------------------------


def _p2p_codec() -> P2PMessageCodec:
    return shell_message_codec()


def _decode_p2p_message(data: bytes) -> Any:
    reader = Reader(data)
    length = reader.uint30()
    body = reader.fixed(length)
    reader.expect_end()
    codec = _p2p_codec()
    if length + 4 > codec.max_size:
        raise CommandError(f"message of {length + 4} bytes exceeds {codec.max_size}")
    return codec.to_json(codec.decode(body))


def _encode_p2p_message(value: Any) -> bytes:
    codec = _p2p_codec()
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
        _whole(ChainId.read),
        lambda value: ChainId.from_json(value).encode(),
    ),
    "block_header": (
        "A block header: shell header, then the protocol data up to the end",
        _whole(BlockHeader.read),
        lambda value: BlockHeader.from_json(value).encode(),
    ),
    "operation": (
        "An operation: branch (block hash), then the protocol data up to the end",
        _whole(Operation.read),
        lambda value: Operation.from_json(value).encode(),
    ),
    "block_locator": (
        "A block locator: head header with its 4-byte size, then block hashes",
        _whole(BlockLocator.read),
        lambda value: BlockLocator.from_json(value).encode(),
    ),
    "mempool": (
        "A mempool: known-valid and pending operation hashes",
        _whole(Mempool.read),
        lambda value: Mempool.from_json(value).encode(),
    ),
    "protocol": (
        "A protocol: environment version and source components",
        _whole(Protocol.read),
        lambda value: Protocol.from_json(value).encode(),
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


# -- identity ---------------------------------------------------------------


def _identity_store(args: argparse.Namespace) -> IdentityFile:
    if args.file is not None:
        return IdentityFile(args.file)
    return IdentityFile.in_directory(args.data_dir)


def _progress_printer(
    stream: TextIO, difficulty: float, clock: Callable[[], float] = time.monotonic
) -> Callable[[int, float], None]:
    """
    Mining progress on ``stream``: redrawn in place on a terminal, a line
    every 10 seconds otherwise (a log, a pipe).
    """
    terminal = stream.isatty()
    last = [clock()]

    def show(attempts: int, elapsed: float) -> None:
        line = f"mining: {MiningProgress(difficulty, attempts, elapsed).describe()}"
        if terminal:
            stream.write(f"\r{line}\x1b[K")
        elif clock() - last[0] >= 10.0:
            last[0] = clock()
            stream.write(line + "\n")
        else:
            return
        stream.flush()

    return show


def cmd_identity_generate(args: argparse.Namespace, out: TextIO) -> int:
    store = _identity_store(args)
    if store.exists() and not args.force:
        raise CommandError(f"{store.path} already exists (use --force to replace it)")
    cancel = threading.Event()
    sys.stderr.write(
        f"mining an identity of difficulty {args.target:g}: about "
        f"{expected_attempts(args.target) / 1e6:,.1f} M stamps to try on average\n"
    )
    progress = _progress_printer(sys.stderr, args.target)
    terminal = sys.stderr.isatty()
    try:
        identity = generate_identity(
            args.target, workers=args.workers, progress=progress, cancel=cancel
        )
    except KeyboardInterrupt:
        cancel.set()
        if terminal:
            sys.stderr.write("\n")
        sys.stderr.write("tezos-p2p: identity generation cancelled\n")
        return EXIT_INTERRUPTED
    if terminal:
        sys.stderr.write("\n")
    store.save(identity, overwrite=args.force)
    out.write(f"Stored the new identity ({identity.peer_id}) into '{store.path}'.\n")
    return EXIT_OK


def cmd_identity_show(args: argparse.Namespace, out: TextIO) -> int:
    identity = _identity_store(args).load()
    out.write(json.dumps(identity.public_json(), indent=2) + "\n")
    return EXIT_OK


def cmd_identity_check(args: argparse.Namespace, out: TextIO) -> int:
    store = _identity_store(args)
    identity = store.load()  # checks the keys and the peer id
    if not identity.check(PowTarget.of_difficulty(args.target)):
        raise CommandError(
            f"the proof of work of {identity.peer_id} does not reach difficulty {args.target}"
        )
    out.write(
        f"Peer_id {identity.peer_id} proves a proof of work of difficulty "
        f"{args.target} and its keys match.\n"
    )
    return EXIT_OK


# -- session decoding -------------------------------------------------------


def _read_file(path: str, limit: int = 1 << 30) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise CommandError(f"{path} is larger than {limit} bytes")
    return data


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
    sent_msg, sent_rest = _split_connection_message(_read_file(args.sent), "sent")
    recv_msg, recv_rest = _split_connection_message(_read_file(args.received), "received")
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
    codec = _p2p_codec()
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


# -- main -------------------------------------------------------------------


def _identity_location(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="data directory holding identity.json (default: ~/.tezos-p2p)",
    )
    where.add_argument("--file", help="path of the identity file")


def _difficulty(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 256.0:
        raise argparse.ArgumentTypeError("the difficulty must be within [0, 256]")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def cmd_sandbox(args: argparse.Namespace, out: TextIO) -> int:
    from .sandbox import SandboxOptions, run

    if args.maintenance_idle_time <= 0 or args.interval <= 0:
        raise CommandError("durations must be positive")
    for name in ("base_port", "admin_base_port"):
        port = getattr(args, name)
        if port and not 0 < port <= 0xFFFF - args.nodes:
            raise CommandError(f"--{name.replace('_', '-')} leaves no room for every node")
    return run(
        SandboxOptions(
            nodes=args.nodes,
            base_dir=args.dir,
            base_port=args.base_port,
            connections=args.connections,
            expected_pow=args.expected_pow,
            maintenance_idle_time=args.maintenance_idle_time,
            interval=args.interval,
            admin_base_port=args.admin_base_port,
        ),
        out,
    )


# -- crawl ------------------------------------------------------------------------


def cmd_crawl(args: argparse.Namespace, out: TextIO) -> int:
    """``tezos-p2p crawl``, on the global reactor; Ctrl-C stops it and keeps the file."""
    from twisted.internet import reactor

    outcome = {"status": EXIT_OK}
    running: list[Deferred[int]] = []

    def start() -> None:
        crawling = Deferred.fromCoroutine(run_crawl(reactor, args, out))
        running.append(crawling)

        def finished(result: int | Failure) -> None:
            if isinstance(result, Failure):
                if not result.check(CancelledError):
                    message = result.getErrorMessage() or repr(result.value)
                    sys.stderr.write(f"tezos-p2p: {message}\n")
                outcome["status"] = (
                    EXIT_ERROR if not result.check(CancelledError) else EXIT_INTERRUPTED
                )
            else:
                outcome["status"] = result
            try:
                reactor.stop()
            except ReactorNotRunning:
                pass  # already stopping (Ctrl-C)

        crawling.addBoth(finished)

    def interrupted() -> None:
        for crawling in running:
            if not crawling.called:
                crawling.cancel()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    reactor.run()
    return outcome["status"]


async def run_crawl(reactor: Any, args: argparse.Namespace, out: TextIO) -> int:
    """The crawl itself: seeds, identity, the crawler, progress and the summary."""
    from twisted.internet.task import LoopingCall

    from ..connect_handler import tcp_endpoint_factory
    from ..crawler import (
        CrawlConfig,
        Crawler,
        CrawlFile,
        points_of_peers_file,
        render_progress,
        render_summary,
    )
    from ..identity import generate_identity_in_thread
    from ..wire.versions import Versions
    from .composition import resolve_points
    from .config import NETWORKS

    network = NETWORKS.get(args.network)
    if network is None:
        raise CommandError(f"unknown network {args.network!r} (one of {', '.join(NETWORKS)})")
    chain_name = args.chain_name or network.chain_name
    entries = list(args.peer or ())
    if args.peers_file:
        try:
            entries += points_of_peers_file(_read_file(args.peers_file, 64 << 20))
        except (ValueError, UnicodeDecodeError, P2PError) as error:
            raise CommandError(f"cannot read {args.peers_file}: {error}") from None
    if not entries:
        entries = list(network.default_bootstrap_peers)
    if not entries and not os.path.exists(args.output):
        raise CommandError("no seed: give --peer, --peers-file or a network with bootstrap peers")
    seeds = [point for point, _ in await resolve_points(reactor, entries)]
    if args.identity:
        identity = IdentityFile(args.identity).load()
    else:
        if args.identity_pow > 0:
            sys.stderr.write(f"mining an identity of difficulty {args.identity_pow:g}...\n")
        identity = await generate_identity_in_thread(reactor, args.identity_pow)
    config = CrawlConfig(
        identity=identity,
        versions=Versions(chain_name),
        concurrency=args.concurrency,
        connect_timeout=args.connect_timeout,
        advertise_timeout=args.advertise_timeout,
        pow_target=args.pow_target,
        max_points=args.max_points,
        max_duration=args.max_time,
    )
    crawler = Crawler(
        config,
        reactor,
        tcp_endpoint_factory(reactor, args.connect_timeout),
        output=CrawlFile(args.output),
    )
    show = not args.no_progress and sys.stderr.isatty()
    ticker = LoopingCall(
        lambda: sys.stderr.write("\r" + render_progress(crawler.progress()) + "\x1b[K")
    )
    ticker.clock = reactor
    if show:
        ticker.start(1.0)
    status = EXIT_OK
    try:
        result = await crawler.crawl(seeds)
    except CancelledError:
        result, status = crawler.map, EXIT_INTERRUPTED
    finally:
        if ticker.running:
            ticker.stop()
            sys.stderr.write("\n")
        if crawler.skipped_lines:
            sys.stderr.write(f"{args.output}: {crawler.skipped_lines} unreadable lines skipped\n")
    out.write(render_summary(result) + "\n")
    out.write(f"map written to {args.output}\n")
    out.flush()
    return status


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _crawl_parser(commands: Any) -> None:
    crawl = commands.add_parser(
        "crawl",
        help="map a network: handshake with every reachable point",
        description=(
            "Starting from bootstrap points, handshake with every reachable point "
            "(asking each once for addresses), follow what they advertise and the "
            "alternatives of their Nacks, and write one JSON line per point to "
            "--output.  An existing output file is resumed: its points are not "
            "visited again.  Ctrl-C stops the crawl and keeps the file."
        ),
    )
    crawl.add_argument("--peer", action="append", help="seed HOST[:PORT][#PEER_ID] (repeatable)")
    crawl.add_argument(
        "--peers-file",
        help="seeds from a file: Octez's peers.json, a crawl file, or one point per line",
    )
    crawl.add_argument(
        "--network",
        default="mainnet",
        help="network whose chain name is announced and whose bootstrap peers seed the crawl "
        "when no seed is given (default mainnet)",
    )
    crawl.add_argument("--chain-name", help="announce this chain name instead of the network's")
    crawl.add_argument(
        "--output",
        default="crawl.jsonl",
        help="the map, one JSON line per point (default crawl.jsonl)",
    )
    crawl.add_argument("--identity", help="identity.json to use (default: a new one)")
    crawl.add_argument(
        "--identity-pow",
        type=_difficulty,
        default=DEFAULT_EXPECTED_POW,
        help="difficulty of the new identity (default 26, what Octez nodes expect)",
    )
    crawl.add_argument(
        "--pow-target",
        type=_difficulty,
        default=0.0,
        help="proof of work required of peers (default 0: every peer is visited)",
    )
    crawl.add_argument(
        "--concurrency", type=_positive, default=16, help="connections at once (default 16)"
    )
    crawl.add_argument(
        "--connect-timeout",
        type=_duration,
        default=10.0,
        help="seconds for the TCP connection and the handshake (default 10)",
    )
    crawl.add_argument(
        "--advertise-timeout",
        type=_duration,
        default=5.0,
        help="seconds to wait for an answer to Bootstrap (default 5)",
    )
    crawl.add_argument(
        "--max-points", type=_positive, default=100_000, help="points visited at most"
    )
    crawl.add_argument(
        "--max-time", type=_duration, default=None, help="seconds the crawl may take"
    )
    crawl.add_argument("--no-progress", action="store_true", help="no progress line on a terminal")
    crawl.set_defaults(run=cmd_crawl)


def cmd_admin(args: argparse.Namespace, out: TextIO) -> int:
    return run_admin(args, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tezos-p2p", description="Tools for the Tezos peer-to-peer layer."
    )
    parser.add_argument("--version", action="version", version=f"txtezosp2p {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    identity = commands.add_parser("identity", help="generate, show or check an identity")
    identity_commands = identity.add_subparsers(dest="identity_command", required=True)
    generate = identity_commands.add_parser("generate", help="mine a new identity")
    _identity_location(generate)
    generate.add_argument(
        "--target",
        type=_difficulty,
        default=DEFAULT_EXPECTED_POW,
        help="proof-of-work difficulty (default 26)",
    )
    generate.add_argument(
        "--workers", type=int, default=None, help="mining threads (default: one per core)"
    )
    generate.add_argument("--force", action="store_true", help="replace an existing file")
    generate.set_defaults(run=cmd_identity_generate)
    show = identity_commands.add_parser("show", help="print the public part of an identity")
    _identity_location(show)
    show.set_defaults(run=cmd_identity_show)
    check = identity_commands.add_parser(
        "check", help="exit 0 if the keys match and the stamp reaches the target"
    )
    _identity_location(check)
    check.add_argument(
        "--target",
        type=_difficulty,
        default=DEFAULT_EXPECTED_POW,
        help="proof-of-work difficulty (default 26)",
    )
    check.set_defaults(run=cmd_identity_check)

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

    _crawl_parser(commands)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a small network of nodes on loopback and watch it",
        description=(
            "Start N nodes on 127.0.0.1, each with its own data directory, all "
            "bootstrapped through the first; print a live table of each node's "
            "connections and known points.  Ctrl-C stops every node cleanly."
        ),
    )
    sandbox.add_argument("--nodes", type=_positive, default=5, help="how many nodes (default 5)")
    sandbox.add_argument(
        "--dir", default=None, help="base directory of the data directories (default: a new one)"
    )
    sandbox.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="listening port of the first node, the others follow (default: any free ports)",
    )
    sandbox.add_argument(
        "--connections",
        type=_positive,
        default=None,
        help="expected connections of each node (default: from the number of nodes)",
    )
    sandbox.add_argument(
        "--expected-pow", type=_difficulty, default=0.0, help="proof of work (default 0)"
    )
    sandbox.add_argument(
        "--maintenance-idle-time",
        type=float,
        default=10.0,
        help="seconds between maintenance steps (default 10)",
    )
    sandbox.add_argument(
        "--interval", type=float, default=1.0, help="seconds between table refreshes (default 1)"
    )
    sandbox.add_argument(
        "--admin-base-port",
        type=int,
        default=None,
        help=(
            "serve each node's admin API on 127.0.0.1, node i on PORT+i "
            "(0: ports chosen by the system; default: no admin API)"
        ),
    )
    sandbox.set_defaults(run=cmd_sandbox)

    add_commands(commands, cmd_admin)
    add_simulate_command(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``tezos-p2p`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        result: int = args.run(args, stream)
        return result
    except (CommandError, AdminClientError, P2PError, ValueError, OSError) as exc:
        _fail(str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        sys.stderr.write("tezos-p2p: interrupted\n")
        return EXIT_INTERRUPTED


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"tezos-p2p: {message.splitlines()[0] if message else 'error'}\n")
    raise SystemExit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["main"]
