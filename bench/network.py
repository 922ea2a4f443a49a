"""
Network benchmarks on loopback: full handshakes per second between two of
our endpoints, and the throughput of an encrypted session carrying 64 KiB
messages against a bare Twisted stream of the same bytes.

The remote end runs in its own process (``bench/peer.py``), so that each
side has a core, as two nodes would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from txtezosp2p.limits import Limits
from txtezosp2p.session import Session
from txtezosp2p.testing import IDENTITY_A, session_config


class Peer:
    """The benchmark's remote end in a subprocess."""

    def __init__(self, mode: str, count: int = 0, size: int = 0) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.peer", mode, str(count), str(size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=root,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _config() -> Any:
    limits = Limits(authentication_timeout=60.0, connection_timeout=60.0)
    return session_config(IDENTITY_A, limits=limits, pow_target=0.0)


async def handshakes(reactor: Any, total: int, concurrency: int) -> dict[str, Any]:
    """Complete ``total`` handshakes, ``concurrency`` at a time; handshakes per second."""
    peer = Peer("handshake")
    config = _config()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", peer.port)
    done = failed = 0
    started = 0

    async def one() -> None:
        nonlocal done, failed, started
        while started < total:
            started += 1
            session = Session(config, reactor, incoming=False)
            try:
                await connectProtocol(endpoint, session)
                await session.when_established()
                done += 1
            except Exception:
                failed += 1
            await session.close()

    try:
        start = time.perf_counter()
        await defer.gatherResults(
            [Deferred.fromCoroutine(one()) for _ in range(concurrency)], consumeErrors=True
        )
        elapsed = time.perf_counter() - start
    finally:
        peer.stop()
    return {
        "handshakes": done,
        "failed": failed,
        "concurrency": concurrency,
        "per_second": round(done / elapsed, 1),
    }


class _Counter(Protocol):
    def __init__(self, total: int, finished: Deferred[float]) -> None:
        self.total = total
        self.received = 0
        self.start = 0.0
        self.finished = finished

    def dataReceived(self, data: bytes) -> None:
        if not self.received:
            self.start = time.perf_counter()
        self.received += len(data)
        if self.received >= self.total and not self.finished.called:
            self.finished.callback(time.perf_counter() - self.start)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.finished.called:
            self.finished.errback(reason)


async def stream(reactor: Any, count: int, size: int) -> dict[str, Any]:
    """Receive ``count`` messages of ``size`` bytes; MB/s of payload, encrypted and bare."""
    peer = Peer("stream", count, size)
    try:
        session = Session(_config(), reactor, incoming=False)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", peer.port), session)
        await session.when_established()
        received = 0
        start = 0.0
        while received < count:
            message = await session.read()
            if not received:
                start = time.perf_counter()
            received += 1
            assert isinstance(message, bytes) and len(message) == size
        elapsed = time.perf_counter() - start
        # the first message starts the clock: count the others
        encrypted = (count - 1) * size / elapsed
    finally:
        peer.stop()
    raw_peer = Peer("raw", count, size)
    try:
        finished: Deferred[float] = Deferred()
        total = count * (size + 4)
        await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", raw_peer.port), _Counter(total, finished)
        )
        raw_elapsed = await finished
        bare = total / raw_elapsed
    finally:
        raw_peer.stop()
    return {
        "message_size": size,
        "messages": count,
        "encrypted_MBps": round(encrypted / 1e6, 1),
        "bare_twisted_MBps": round(bare / 1e6, 1),
        "encrypted_vs_bare": round(encrypted / bare, 3),
    }
