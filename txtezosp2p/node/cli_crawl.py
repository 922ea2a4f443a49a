# -*- test-case-name: tests.test_crawler -*-
"""
``tezos-p2p crawl``: map a network from seeds with the
:mod:`txtezosp2p.crawler`, on the global reactor; Ctrl-C keeps the map.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ReactorNotRunning
from twisted.python.failure import Failure

from ..identity import (
    DEFAULT_EXPECTED_POW,
    IdentityFile,
)
from ..wire.errors import P2PError
from .cli_args import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommandError,
    difficulty,
    duration,
    positive,
    read_file,
)


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
            entries += points_of_peers_file(read_file(args.peers_file, 64 << 20))
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


def add_crawl_command(commands: Any) -> None:
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
        type=difficulty,
        default=DEFAULT_EXPECTED_POW,
        help="difficulty of the new identity (default 26, what Octez nodes expect)",
    )
    crawl.add_argument(
        "--pow-target",
        type=difficulty,
        default=0.0,
        help="proof of work required of peers (default 0: every peer is visited)",
    )
    crawl.add_argument(
        "--concurrency", type=positive, default=16, help="connections at once (default 16)"
    )
    crawl.add_argument(
        "--connect-timeout",
        type=duration,
        default=10.0,
        help="seconds for the TCP connection and the handshake (default 10)",
    )
    crawl.add_argument(
        "--advertise-timeout",
        type=duration,
        default=5.0,
        help="seconds to wait for an answer to Bootstrap (default 5)",
    )
    crawl.add_argument(
        "--max-points", type=positive, default=100_000, help="points visited at most"
    )
    crawl.add_argument("--max-time", type=duration, default=None, help="seconds the crawl may take")
    crawl.add_argument("--no-progress", action="store_true", help="no progress line on a terminal")
    crawl.set_defaults(run=cmd_crawl)
