"""
``python -m bench [--quick] [--only NAME ...] [--update-docs FILE]``: run the
benchmarks and print one JSON document.  Every figure comes with the
baseline it is compared with, measured in the same run, as the median over
several rounds with the lowest and highest round (see docs/performance.md).
``--update-docs docs/performance.md`` also rewrites the results tables of
that page from this run, with the state of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

from twisted.internet import defer, task

from txtezosp2p import __version__, _backend

from . import crypto, network, report
from .stats import Spread, ratios, spread

SECTIONS = ("chunks", "pow", "handshakes", "stream", "receive", "scheduler")


async def run(reactor: Any, args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    rounds, min_time = (2, 0.2) if quick else (5, 0.5)
    results: dict[str, Any] = {
        "txtezosp2p": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "backend": _backend.describe(),
        "rounds": rounds,
        "state_before": report.machine_state(),
    }
    only = set(args.only or SECTIONS)
    if "chunks" in only:
        results["chunks"] = crypto.chunk_benchmarks(rounds, min_time)
    if "pow" in only:
        results["pow"] = crypto.pow_benchmarks(rounds, min_time)
    if "handshakes" in only:
        per_round = 500 if quick else 2000
        results["handshakes"] = await handshakes_section(reactor, rounds, per_round)
    if "stream" in only:
        count = 2000 if quick else 16000
        results["stream"] = await stream_section(reactor, rounds, count)
        if "chunks" in results:
            opening = results["chunks"]["open_64KiB"]["bare_cffi"]["median"]
            results["stream"]["encrypted_vs_libsodium_open"] = round(
                results["stream"]["encrypted_MBps"]["median"] / opening, 3
            )
    if "receive" in only:
        sizes = (256, 65536, 1 << 20, 16 << 20)
        results["receive"] = network.receive_path(sizes, 32 << 20, rounds)
    if "scheduler" in only:
        results["scheduler"] = await scheduler_section(reactor, quick)
    results["state_after"] = report.machine_state()
    return results


async def handshakes_section(reactor: Any, rounds: int, per_round: int) -> dict[str, Any]:
    """
    ``rounds`` runs of ``per_round`` handshakes, 64 at a time, each followed
    by its baseline: as many plain Twisted connections carrying the same
    bytes in the same three steps.  The CPU time a session adds to each end
    is the difference, round by round.
    """
    runs: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for _ in range(rounds):
        runs.append(await network.handshakes(reactor, per_round, 64))
        bare.append(await network.bare_exchanges(reactor, per_round, 64))

    def cpu(end: str, results: list[dict[str, Any]]) -> Spread | None:
        samples = [r[end] for r in results if r[end] is not None]
        return spread(samples) if samples else None

    def added(end: str) -> Spread | None:
        pairs = [(r[end], b[end]) for r, b in zip(runs, bare, strict=True)]
        samples = [r - b for r, b in pairs if r is not None and b is not None]
        return spread(samples) if samples else None

    return {
        "handshakes_per_round": per_round,
        "concurrency": 64,
        "failed": sum(r["failed"] for r in runs),
        "per_second": spread([r["per_second"] for r in runs]),
        "dialling_cpu_us": cpu("dialling_cpu_us", runs),
        "accepting_cpu_us": cpu("accepting_cpu_us", runs),
        "bare_exchange": {
            "failed": sum(b["failed"] for b in bare),
            "per_second": spread([b["per_second"] for b in bare]),
            "dialling_cpu_us": cpu("dialling_cpu_us", bare),
            "accepting_cpu_us": cpu("accepting_cpu_us", bare),
        },
        "session_dialling_cpu_us": added("dialling_cpu_us"),
        "session_accepting_cpu_us": added("accepting_cpu_us"),
    }


async def stream_section(reactor: Any, rounds: int, count: int) -> dict[str, Any]:
    """The encrypted stream and the bare Twisted stream, one after the other in each round."""
    size = 65536
    encrypted: list[float] = []
    bare: list[float] = []
    for _ in range(rounds):
        encrypted.append(await network.encrypted_stream(reactor, count, size))
        bare.append(await network.bare_stream(reactor, count, size))
    return {
        "message_size": size,
        "messages": count,
        "encrypted_MBps": spread(encrypted, 1e6),
        "bare_twisted_MBps": spread(bare, 1e6),
        "encrypted_vs_bare": ratios(encrypted, bare),
    }


async def scheduler_section(reactor: Any, quick: bool) -> dict[str, Any]:
    section: dict[str, Any] = {}
    count = 2000 if quick else 8000
    section["overhead_no_cap"] = await network.scheduler_overhead(
        reactor, count, 3 if quick else 11
    )
    section["overhead_in_memory"] = network.pipeline_overhead(
        200 if quick else 2000, 3 if quick else 7
    )
    periods = 3 if quick else 8
    section["caps"] = [
        await network.capped_rate(reactor, cap, periods)
        for cap in (1_000_000, 10_000_000, 100_000_000)
    ]
    total = (500 if quick else 2000) * 1_000_000
    rates: list[dict[str, Any]] = []
    for n in (1, 10, 100, 1000):
        runs = [await network.aggregate(reactor, n, total) for _ in range(1 if quick else 3)]
        rates.append(
            {"connections": n, "aggregate_MBps": spread([r["aggregate_MBps"] for r in runs])}
        )
    single = rates[0]["aggregate_MBps"]["median"]
    for entry in rates:
        entry["vs_1_connection"] = round(entry["aggregate_MBps"]["median"] / single, 3)
    section["aggregate"] = rates
    return section


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--update-docs",
        metavar="FILE",
        help="rewrite the generated results tables of FILE (docs/performance.md) from this run",
    )
    args = parser.parse_args()

    def done(results: dict[str, Any]) -> None:
        print(json.dumps(results, indent=2))
        if args.update_docs:
            report.update_file(args.update_docs, results)
            print(f"updated {args.update_docs}", file=sys.stderr)

    def start(reactor: Any) -> defer.Deferred[None]:
        d = defer.Deferred.fromCoroutine(run(reactor, args))
        return d.addCallback(done)

    task.react(start)


if __name__ == "__main__":
    main()
    sys.exit(0)
