"""
``python -m bench.fuzz_decoders [--inputs N] [--seed S] [--only NAME ...] [--jobs J]``:
a fuzz campaign against every decoder that reads bytes from the network.

Each target decodes inputs made from real encodings (``seeds``, plus a few
just over a bound) by stacked
mutations: bit flips, bytes set to edge values, truncations, cut ranges,
repeated slices, length prefixes inflated or deflated, splices with other
seeds, and a share of plain random bytes.  An input either decodes, or
raises a *typed* error (a :class:`~txtezosp2p.wire.errors.P2PError`, what
the decoders promise), or raises anything else: an *untyped* error, a bug (so is a typed error whose
``__cause__`` is an untyped one: a catch-all hid it).
The chunk cipher's compiled module and its pure twin open the same fuzzed
buffers and must agree on every result (plaintext, offset, frames, status,
nonce) or raise the same error.

It prints one line per target, ``decoder, inputs, typed errors, untyped``
(and ``decoded``, the disagreements of twins, the slowest input), then a
JSON document with ``--json``; the first untyped errors are shown with the
input that caused them.  The exit status is 1 if any input gave an untyped
error or the twins disagreed.

Adding a decoder is one line in :data:`TARGETS`: a name, the function that
decodes one ``bytes`` and a function returning real encodings.  The unit
suite runs every target on a few thousand inputs (``tests/test_fuzz_decoders.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import attrs

from txtezosp2p import _backend
from txtezosp2p.discovery import decode_discovery, encode_discovery
from txtezosp2p.wire import binary as B
from txtezosp2p.wire.encoding import (
    Ack,
    Advertise,
    Bootstrap,
    ConnectionMessage,
    ConnectionMetadata,
    Disconnect,
    Nack,
    NackV0,
    NetworkVersion,
    P2PMessageCodec,
    RawMessage,
    SwapAck,
    SwapRequest,
    decode_ack,
    encode_ack,
    put_point,
    raw_message_encodings,
    read_point,
)
from txtezosp2p.wire.errors import NackMotive, P2PError
from txtezosp2p.wire.ids import PeerId, Point
from txtezosp2p.wire.shell import shell_message_codec

# -- Targets -------------------------------------------------------------------------


@attrs.frozen
class Target:
    """A decoder of untrusted bytes and real encodings to mutate."""

    name: str
    decode: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]


def _points() -> list[Point]:
    return [
        Point.parse("1.2.3.4:9732"),
        Point.parse("[2001:db8::1]:19732"),
        Point.parse("255.255.255.255:65535"),
        Point.parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1"),
        Point.parse("0.0.0.0:0"),
    ]


def _peer_ids() -> list[PeerId]:
    return [PeerId(bytes(16)), PeerId(bytes(range(16))), PeerId(b"\xff" * 16)]


def connection_message_seeds() -> list[bytes]:
    versions = [
        NetworkVersion("TEZOS_MAINNET", 2, 1),
        NetworkVersion("TEZOS_GHOSTNET_2022-01-25T15:00:00Z", 0, 0),
        NetworkVersion(b"", 0xFFFF, 0xFFFF),
        NetworkVersion(b"\xff" * 300, 1, 1),
    ]
    return [
        ConnectionMessage(
            port=port,
            public_key=bytes(range(32)),
            proof_of_work_stamp=b"\x01" * 24,
            message_nonce=bytes(range(100, 124)),
            version=version,
        ).encode()
        for port in (None, 9732, 0xFFFF)
        for version in versions
    ]


def metadata_seeds() -> list[bytes]:
    return [ConnectionMetadata(a, b).encode() for a in (False, True) for b in (False, True)]


def _too_many_points(head: bytes, count: int, prefixed: bool) -> bytes:
    """``head``, then ``count`` points (one over a bound), after their byte size if ``prefixed``."""
    listed = b"".join(put_point(p) for p in (_points() * count)[:count])
    return head + (B.put_uint30(len(listed)) if prefixed else b"") + listed


def ack_seeds() -> list[bytes]:
    points = _points()
    return [
        _too_many_points(b"\x01\x00\x01", 101, prefixed=True),
        encode_ack(Ack()),
        encode_ack(NackV0()),
        encode_ack(Nack(NackMotive.TOO_MANY_CONNECTIONS)),
        encode_ack(Nack(NackMotive.ALREADY_CONNECTED, points)),
        encode_ack(Nack(NackMotive(-7), points[:1])),
        encode_ack(Nack(NackMotive.NO_MOTIVE, (points * 20)[:100])),
    ]


def p2p_message_seeds() -> list[bytes]:
    codec = P2PMessageCodec(raw_message_encodings())
    points = _points()
    peers = _peer_ids()
    messages: list[object] = [
        Disconnect(),
        Bootstrap(),
        Advertise(()),
        Advertise(points),
        Advertise((points * 20)[:100]),
        SwapRequest(points[0], peers[1]),
        SwapAck(points[1], peers[2]),
        RawMessage(0x10, b"\x00\x00\x00\x04abcd"),
        RawMessage(0x14, bytes(range(200))),
        RawMessage(0x61, b""),
    ]
    return [codec.encode(message) for message in messages] + [
        _too_many_points(b"\x00\x03", 101, prefixed=False)
    ]


def point_seeds() -> list[bytes]:
    return [put_point(point) for point in _points()]


def point_text_seeds() -> list[bytes]:
    texts = [point.to_text() for point in _points()]
    texts += ["[::ffff:1.2.3.4]:9732", "[1.2.3.4]:1", "[::]:65535", "[fe80::1:2:3:4]:12345"]
    return [text.encode("ascii") for text in texts]


def discovery_seeds() -> list[bytes]:
    return [encode_discovery(peer, port) for peer in _peer_ids() for port in (1, 9732, 32767)]


def shell_message_seeds() -> list[bytes]:
    """Shell message bodies: the captured vectors and built values of ``bench/fuzz_shell.py``."""
    from . import fuzz_shell

    return fuzz_shell._seeds(random.Random(0))["p2p_message"]


def decode_point(data: bytes) -> Point:
    """A point as messages carry it (``uint30`` prefix, ASCII text), nothing after it."""
    reader = B.Reader(data)
    point = read_point(reader)
    reader.expect_end()
    return point


#: The decoders a remote peer reaches (wire.md sections 2, 5, 6, 8, 9, 10).
TARGETS: list[Target] = [
    Target("connection_message", ConnectionMessage.decode, connection_message_seeds),
    Target("metadata", ConnectionMetadata.decode, metadata_seeds),
    Target("ack", decode_ack, ack_seeds),
    Target("p2p_message", P2PMessageCodec(raw_message_encodings()).decode, p2p_message_seeds),
    Target("point", decode_point, point_seeds),
    Target("point_text", lambda data: Point.parse(data.decode("latin-1")), point_text_seeds),
    Target("discovery", decode_discovery, discovery_seeds),
    Target("shell_message", shell_message_codec().decode, shell_message_seeds),
]

# -- Mutations -----------------------------------------------------------------------

EDGE_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
MAX_INPUT = 64 * 1024


def _edge_values(data: bytes, width: int) -> list[int]:
    top = (1 << (8 * width)) - 1
    n = len(data)
    values = [0, 1, n - 1, n, n + 1, 2 * n, top, top >> 1, (top >> 1) + 1, 0x3FFFFFFF, 0x40000000]
    return [v & top for v in values if v >= 0]


def _prefix_offsets(data: bytes) -> list[int]:
    """
    Offsets among the first 256 that look like ``uint30`` length prefixes
    (the value fits what follows).
    """
    return [
        i
        for i in range(min(256, len(data) - 3))
        if 0 < int.from_bytes(data[i : i + 4], "big") <= len(data) - i - 4
    ]


def _flip(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    for _ in range(rng.randint(1, 4)):
        if data:
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    return data


def _set_bytes(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    for _ in range(rng.randint(1, 3)):
        if data:
            data[rng.randrange(len(data))] = (
                rng.choice(EDGE_BYTES) if rng.random() < 0.7 else rng.randrange(256)
            )
    return data


def _truncate(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    return data[: rng.randint(0, max(0, len(data) - 1))]


def _cut(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if not data:
        return data
    start = rng.randrange(len(data))
    end = rng.randint(start, min(len(data), start + 1 + rng.choice((1, 4, 16, 64))))
    return data[:start] + data[end:]


def _repeat(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if not data:
        return data
    start = rng.randrange(len(data))
    end = rng.randint(start + 1, len(data))
    times = min(rng.choice((1, 2, 10, 101, 1000)), MAX_INPUT // (end - start))
    return (data[:end] + data[start:end] * times + data[end:])[:MAX_INPUT]


def _length(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    """A length prefix (a likely one, or any 1, 2 or 4 bytes) set to an edge value."""
    if not data:
        return data
    width = rng.choice((1, 2, 4, 4))
    likely = _prefix_offsets(bytes(data)) if width == 4 and rng.random() < 0.7 else []
    offset = rng.choice(likely) if likely else rng.randrange(len(data))
    value = rng.choice(_edge_values(bytes(data), width))
    if rng.random() < 0.3:  # near the current value: off by a few
        current = int.from_bytes(data[offset : offset + width].ljust(width, b"\0"), "big")
        value = (current + rng.randint(-3, 3)) % (1 << (8 * width))
    data[offset : offset + width] = value.to_bytes(width, "big")
    return data


def _splice(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    other = rng.choice(seeds)
    if rng.random() < 0.5:
        head = rng.randint(0, len(data))
        tail = rng.randint(0, len(other))
        return data[:head] + bytearray(other[tail:])
    at = rng.randint(0, len(data))
    start = rng.randint(0, len(other))
    return data[:at] + bytearray(other[start : rng.randint(start, len(other))]) + data[at:]


def _random(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    return bytearray(rng.randbytes(rng.choice((0, 1, 2, 4, 8, 32, 100, 1000))))


Mutator = Callable[[random.Random, bytearray, Sequence[bytes]], bytearray]
MUTATORS: tuple[tuple[Mutator, int], ...] = (
    (_flip, 20),
    (_set_bytes, 15),
    (_truncate, 10),
    (_cut, 10),
    (_repeat, 8),
    (_length, 20),
    (_splice, 12),
    (_random, 5),
)
_MUTATOR_FUNCS = [m for m, _ in MUTATORS]
_MUTATOR_WEIGHTS = [w for _, w in MUTATORS]


def mutate(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    """One input: a seed (sometimes unchanged) through one to three mutations."""
    data = bytearray(rng.choice(seeds))
    if rng.random() < 0.02:
        return bytes(data)
    for mutator in rng.choices(_MUTATOR_FUNCS, _MUTATOR_WEIGHTS, k=rng.choice((1, 1, 2, 3))):
        data = mutator(rng, data, seeds)
    return bytes(data[:MAX_INPUT])


# -- Campaigns -----------------------------------------------------------------------


@attrs.define
class Result:
    """What one target did with its inputs."""

    decoder: str
    inputs: int = 0
    decoded: int = 0
    typed: int = 0
    untyped: int = 0
    disagreements: int = 0
    slowest_us: float = 0.0
    seconds: float = 0.0
    #: Typed errors by ``DecodingError.reason`` (or class name): which checks the inputs reached.
    reasons: dict[str, int] = attrs.field(factory=dict)
    #: The first few untyped errors or disagreements: (input hex, description).
    examples: list[tuple[str, str]] = attrs.field(factory=list)

    def merge(self, other: Result) -> None:
        self.inputs += other.inputs
        self.decoded += other.decoded
        self.typed += other.typed
        self.untyped += other.untyped
        self.disagreements += other.disagreements
        self.slowest_us = max(self.slowest_us, other.slowest_us)
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.seconds = max(self.seconds, other.seconds)
        self.examples.extend(other.examples[: max(0, 5 - len(self.examples))])

    @property
    def ok(self) -> bool:
        return self.untyped == 0 and self.disagreements == 0

    def line(self) -> str:
        return (
            f"{self.decoder}, {self.inputs}, {self.typed}, {self.untyped}"
            f"  (decoded {self.decoded}, twins disagree {self.disagreements},"
            f" slowest {self.slowest_us:.0f} us, {self.seconds:.1f} s)"
        )


def _describe(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


def fuzz(target: Target, inputs: int, seed: int) -> Result:
    """Run ``inputs`` mutated inputs through ``target.decode``."""
    rng = random.Random(seed)
    seeds = target.seeds()
    result = Result(target.name)
    reasons = result.reasons
    clock = time.perf_counter
    started = clock()
    slowest = 0.0
    for _ in range(inputs):
        data = mutate(rng, seeds)
        before = clock()
        problem: BaseException | None = None
        try:
            target.decode(data)
        except P2PError as error:
            cause = error.__cause__
            if cause is not None and not isinstance(cause, P2PError):
                # a catch-all turned an untyped error into a typed one (the
                # envelope does so for application cases): a bug all the same
                problem = cause
            else:
                result.typed += 1
                reason = getattr(error, "reason", None) or type(error).__name__
                reasons[reason] = reasons.get(reason, 0) + 1
        except Exception as error:
            problem = error
        else:
            result.decoded += 1
        slowest = max(slowest, clock() - before)
        if problem is not None:
            result.untyped += 1
            if len(result.examples) < 5:
                result.examples.append((data[:256].hex(), _describe(problem)))
    result.inputs = inputs
    result.slowest_us = slowest * 1e6
    result.seconds = clock() - started
    return result


# -- The chunk cipher's twins --------------------------------------------------------

CHUNK_KEY = bytes(range(32))
STATUS_NAMES = {1: "decipher_error", 2: "invalid_incoming_ciphertext_size"}
CHUNK_NONCE = bytes(range(24))


def chunk_seeds() -> list[bytes]:
    """Runs of sealed frames: empty, small, several sizes, up to a full chunk."""
    pure = _backend.cbox_py
    rng = random.Random(0)
    seeds = []
    for sizes in ((0,), (1,), (16,), (100, 3, 0), (1000, 1000), (65517,), (5, 65517, 7)):
        nonce = bytearray(CHUNK_NONCE)
        seeds.append(
            b"".join(pure.seal_chunks(CHUNK_KEY, nonce, rng.randbytes(n), 65517) for n in sizes)
        )
    return seeds


def _open(module: Any, data: bytes, offset: int, max_frames: int) -> tuple[Any, ...]:
    nonce = bytearray(CHUNK_NONCE)
    try:
        plain, pos, frames, status = module.open_chunks(CHUNK_KEY, nonce, data, offset, max_frames)
    except Exception as error:
        return ("raised", type(error).__name__)
    return (bytes(plain), pos, frames, status, bytes(nonce))


def fuzz_chunk_twins(inputs: int, seed: int) -> Result:
    """Open fuzzed frame runs with both twins; every result must be the same."""
    compiled = _backend.compiled_cbox()
    pure = _backend.cbox_py
    result = Result("chunks (compiled vs pure)")
    if compiled is None:
        result.examples.append(("", "no compiled module: nothing to compare"))
        return result
    rng = random.Random(seed)
    seeds = chunk_seeds()
    clock = time.perf_counter
    started = clock()
    slowest = 0.0
    for _ in range(inputs):
        data = mutate(rng, seeds)
        offset = 0 if rng.random() < 0.8 else rng.randint(0, len(data))
        max_frames = rng.choice((-1, -1, -1, 0, 1, 2))
        before = clock()
        mine = _open(compiled, data, offset, max_frames)
        theirs = _open(pure, data, offset, max_frames)
        slowest = max(slowest, clock() - before)
        if mine != theirs:
            result.disagreements += 1
            if len(result.examples) < 5:
                result.examples.append(
                    (data[:256].hex(), f"offset {offset}, max {max_frames}: {mine!r} != {theirs!r}")
                )
        elif mine[0] == "raised":
            # the same exception from both, on valid arguments: a bug all the same
            result.untyped += 1
            if len(result.examples) < 5:
                result.examples.append((data[:256].hex(), f"both raised {mine[1]}"))
        elif mine[3] != 0:
            # a decipher error or an invalid size, reported as a status
            result.typed += 1
            reason = STATUS_NAMES.get(mine[3], str(mine[3]))
            result.reasons[reason] = result.reasons.get(reason, 0) + 1
        else:
            result.decoded += 1
    result.inputs = inputs
    result.slowest_us = slowest * 1e6
    result.seconds = clock() - started
    return result


CHUNKS = "chunks"


def names() -> list[str]:
    return [target.name for target in TARGETS] + [CHUNKS]


def run_one(name: str, inputs: int, seed: int) -> Result:
    if name == CHUNKS:
        return fuzz_chunk_twins(inputs, seed)
    [target] = [t for t in TARGETS if t.name == name]
    return fuzz(target, inputs, seed)


def _job(args: tuple[str, int, int]) -> Result:
    return run_one(*args)


def campaign(selected: Sequence[str], inputs: int, seed: int, jobs: int) -> list[Result]:
    """Every selected target, its inputs cut into ``jobs`` slices with their own seeds."""
    slices = max(1, jobs)
    work = [
        (name, inputs // slices + (1 if part < inputs % slices else 0), seed * 1000 + part)
        for name in selected
        for part in range(slices)
    ]
    if jobs <= 1:
        parts = [_job(args) for args in work]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            parts = list(pool.map(_job, work))
    merged: dict[str, Result] = {}
    for (name, _, _), part in zip(work, parts, strict=True):
        if name not in merged:
            merged[name] = Result(part.decoder)
        merged[name].merge(part)
    return list(merged.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_decoders", description=__doc__)
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per decoder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=names(), help="these targets only")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--json", action="store_true", help="also print a JSON document")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = campaign(args.only or names(), args.inputs, args.seed, args.jobs)
    print("decoder, inputs, typed errors, untyped")
    for result in results:
        print(result.line())
        reached = ", ".join(f"{k} {v}" for k, v in sorted(result.reasons.items()))
        print(f"    typed errors: {reached}")
        for data, description in result.examples:
            print(f"    {description}\n    input: {data}")
    elapsed = time.perf_counter() - started
    print(
        f"# {elapsed:.0f} s, seed {args.seed}, {args.jobs} processes, backend {_backend.describe()}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "seed": args.seed,
                    "seconds": round(elapsed, 1),
                    "results": [attrs.asdict(r) for r in results],
                },
                indent=2,
            )
        )
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
