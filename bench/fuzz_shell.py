"""
``python -m bench.fuzz_shell [--count N] [--seed S]``: feed every shell
decoder ``N`` (100 000 by default) hostile inputs and count the outcomes.

Run by hand, not by the unit suite (the suite runs the same properties with
hypothesis on a few hundred examples).  The bar: no decoder raises anything
but ``DecodingError``; the script exits with status 1 otherwise, printing
the first offending input of each decoder.

Inputs, per decoder, from a seeded generator: a tenth are random bytes of
random length; the rest are mutations of valid encodings of that decoder's
type (captured network messages from ``tests/data/shell_vectors.json`` and
values built here): bit flips, byte replacements, truncations, insertions,
duplicated ranges, and length prefixes overwritten with small, large or
boundary values.  A mutation that still decodes is counted as ``decoded``.

The output is one JSON document: per decoder the number of inputs,
``decoded``, ``refused`` (``DecodingError``, by reason) and ``untyped``
(anything else), and the time taken.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from txtezosp2p.wire import binary as B
from txtezosp2p.wire import shell as S
from txtezosp2p.wire.errors import DecodingError
from txtezosp2p.wire.shell_types import (
    DEFAULT_LIMITS,
    BlockHash,
    BlockHeader,
    BlockLocator,
    ChainId,
    ContextHash,
    Mempool,
    MerklePath,
    Operation,
    OperationHash,
    OperationListListHash,
    PathStep,
    Protocol,
    ProtocolComponent,
    ProtocolHash,
)

VECTORS = os.path.join(os.path.dirname(__file__), os.pardir, "tests", "data", "shell_vectors.json")


def _whole(read: Callable[[B.Reader], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        reader = B.Reader(data)
        value = read(reader)
        reader.expect_end()
        return value

    return decode


def _seeds(rng: random.Random) -> dict[str, list[bytes]]:
    """Valid encodings for every decoder."""

    def h(cls: Any) -> Any:
        return cls(rng.randbytes(cls.SIZE))

    def header(data: int = 40) -> BlockHeader:
        return BlockHeader(
            rng.randint(0, 5_000_000),
            rng.randint(0, 20),
            h(BlockHash),
            rng.randint(1_500_000_000, 1_800_000_000),
            4,
            h(OperationListListHash),
            (b"\x02", rng.randbytes(4), b"", rng.randbytes(8)),
            h(ContextHash),
            rng.randbytes(data),
        )

    chain = h(ChainId)
    ops = [Operation(h(BlockHash), rng.randbytes(rng.randint(0, 120))) for _ in range(4)]
    locator = BlockLocator(header(), tuple(h(BlockHash) for _ in range(12)))
    mempool = Mempool(tuple(h(OperationHash) for _ in range(3)), (h(OperationHash),))
    path = MerklePath(
        (PathStep("left", h(OperationListListHash)), PathStep("right", h(OperationListListHash)))
    )
    protocol = Protocol(
        6,
        (
            ProtocolComponent(b"Main", b"val x : int", b"let x = 1"),
            ProtocolComponent(b"Misc", None, b"let y = 2"),
        ),
    )
    key = S.OperationsKey(h(BlockHash), 3)
    messages: list[Any] = [
        S.GetCurrentBranch(chain),
        S.CurrentBranch(chain, locator),
        S.Deactivate(chain),
        S.GetCurrentHead(chain),
        S.CurrentHead(chain, header(), mempool),
        S.GetBlockHeaders(tuple(h(BlockHash) for _ in range(3))),
        S.BlockHeaderMessage(header(96)),
        S.GetOperations(tuple(h(OperationHash) for _ in range(10))),
        S.OperationMessage(ops[0]),
        S.GetProtocols((h(ProtocolHash),)),
        S.ProtocolMessage(protocol),
        S.GetOperationsForBlocks((key, S.OperationsKey(h(BlockHash), -1))),
        S.OperationsForBlocks(key, path, tuple(ops)),
        S.GetCheckpoint(chain),
        S.Checkpoint(chain, header()),
        S.GetProtocolBranch(chain, 2),
        S.ProtocolBranch(chain, 2, locator),
        S.GetPredecessorHeader(h(BlockHash), 128),
        S.PredecessorHeader(h(BlockHash), 128, header()),
    ]
    codec = S.shell_message_codec()
    seeds: dict[str, list[bytes]] = {cls.TITLE: [] for cls in S.SHELL_MESSAGES}
    seeds["p2p_message"] = []
    for message in messages:
        seeds[type(message).TITLE].append(message.encode())
        seeds["p2p_message"].append(codec.encode(message))
    with open(VECTORS) as handle:
        for vector in json.load(handle)["vectors"]:
            data = bytes.fromhex(vector["hex"])
            if vector["kind"] == "p2p_message":
                body = data[4:]
                seeds["p2p_message"].append(body)
                title = type(codec.decode(body)).TITLE  # type: ignore[attr-defined]
                seeds[title].append(body[2:])
            else:
                seeds.setdefault(vector["kind"], []).append(data)
    seeds.setdefault("block_header", []).append(header(200).encode())
    seeds.setdefault("operation", []).extend(op.encode() for op in ops)
    seeds["block_locator"] = [locator.encode()]
    seeds["mempool"] = [mempool.encode(), Mempool().encode()]
    seeds["protocol"] = [protocol.encode()]
    seeds["merkle_path"] = [path.encode(), MerklePath().encode()]
    return seeds


def decoders() -> dict[str, Callable[[bytes], Any]]:
    codec = S.shell_message_codec()
    table: dict[str, Callable[[bytes], Any]] = {cls.TITLE: cls.decode for cls in S.SHELL_MESSAGES}
    table["p2p_message"] = codec.decode
    table["block_header"] = BlockHeader.decode
    table["operation"] = Operation.decode
    table["block_locator"] = _whole(BlockLocator.read)
    table["mempool"] = _whole(Mempool.read)
    table["protocol"] = _whole(Protocol.read)
    table["merkle_path"] = _whole(lambda r: MerklePath.read(r, DEFAULT_LIMITS.path_max_size))
    return table


_PREFIXES = (0, 1, 3, 4, 31, 32, 33, 100, 1000, 0xFFFF, 1 << 20, 8 * 1024 * 1024, (1 << 30) - 1)


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        action = rng.randrange(7)
        position = rng.randint(0, len(data))
        if action == 0 and data:  # flip bits
            data[min(position, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif action == 1 and data:  # replace a byte
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif action == 2:  # truncate
            del data[position:]
        elif action == 3:  # insert bytes
            data[position:position] = rng.randbytes(rng.randint(1, 40))
        elif action == 4 and data:  # duplicate a range
            end = rng.randint(position, min(len(data), position + 64))
            data[position:position] = data[position:end]
        elif action == 5:  # overwrite a 4-byte big-endian prefix
            value = rng.choice(_PREFIXES) + rng.choice((-1, 0, 0, 1))
            data[position : position + 4] = max(0, value).to_bytes(4, "big")
        else:  # a tag byte
            data[position:position] = bytes(
                (rng.choice((0x00, 0x0F, 0xF0, 0xFF, 0x10, 0x14, 0x61)),)
            )
    return bytes(data)


def fuzz(
    name: str, decode: Callable[[bytes], Any], seeds: list[bytes], count: int, rng: random.Random
) -> dict[str, Any]:
    outcome: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    untyped: list[str] = []
    started = time.perf_counter()
    for index in range(count):
        if index % 10 == 0 or not seeds:
            data = rng.randbytes(rng.choice((0, 1, 2, 4, 8, 33, 64, 200, 1000)))
        else:
            data = mutate(rng, rng.choice(seeds))
        try:
            decode(data)
        except DecodingError as exc:
            outcome["refused"] += 1
            reasons[exc.reason] += 1
        except Exception as exc:  # the bar: never
            outcome["untyped"] += 1
            if len(untyped) < 3:
                untyped.append(f"{type(exc).__name__}: {exc} on {data[:200].hex()}")
        else:
            outcome["decoded"] += 1
    return {
        "inputs": count,
        "decoded": outcome["decoded"],
        "refused": outcome["refused"],
        "untyped": outcome["untyped"],
        "reasons": dict(reasons.most_common()),
        "seconds": round(time.perf_counter() - started, 2),
        **({"untyped_examples": untyped} if untyped else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=100_000, help="inputs per decoder")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--only", action="append", help="decoder name (repeatable)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    seeds = _seeds(rng)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    for name, decode in decoders().items():
        if args.only and name not in args.only:
            continue
        results[name] = fuzz(name, decode, seeds.get(name, []), args.count, rng)
        print(f"{name}: {results[name]['untyped']} untyped of {args.count}", file=sys.stderr)
    total = sum(r["inputs"] for r in results.values())
    untyped = sum(r["untyped"] for r in results.values())
    document = {
        "count_per_decoder": args.count,
        "seed": args.seed,
        "decoders": len(results),
        "inputs": total,
        "untyped": untyped,
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    print(json.dumps(document, indent=1))
    return 0 if untyped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
