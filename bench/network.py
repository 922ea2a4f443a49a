"""
Network benchmarks on loopback: full handshakes per second between two of
our endpoints, and the throughput of an encrypted session carrying 64 KiB
messages against a bare Twisted stream of the same bytes.

The remote end runs in its own process (``bench/peer.py``), so that each
side has a core, as two nodes would.
"""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import time
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

from txtezosp2p.io_scheduler import IOScheduler
from txtezosp2p.limits import Limits
from txtezosp2p.session import Session
from txtezosp2p.testing import IDENTITY_A, session_config

from .peer import Exchange, handshake_step_sizes
from .stats import spread


class Peer:
    """The benchmark's remote end in a subprocess."""

    def __init__(
        self,
        mode: str,
        count: int = 0,
        size: int = 65536,
        regulated: bool = False,
        on_request: bool = False,
    ) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.peer",
                mode,
                f"--count={count}",
                f"--size={size}",
                *(["--regulated"] if regulated else []),
                *(["--on-request"] if on_request else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=root,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def stop(self) -> float:
        """Stop the peer; returns the CPU seconds it spent streaming."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        cpu = 0.0
        for line in self.process.stdout:
            if line.startswith(b"cpu "):
                cpu = float(line.split()[1])
        self.process.wait(timeout=30)
        return cpu


def _config() -> Any:
    limits = Limits(authentication_timeout=120.0, connection_timeout=120.0)
    return session_config(IDENTITY_A, limits=limits, pow_target=0.0)


def _process_cpu(pid: int) -> float | None:
    """CPU seconds a child process has used so far (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Dialler(ClientFactory):
    """Builds the next outgoing session of a handshake round (straight ``connectTCP``)."""

    noisy = False

    def __init__(self, config: Any, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.sessions: list[Session] = []

    def buildProtocol(self, addr: Any) -> Session:
        return self.sessions.pop()

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        pass  # the session of the attempt never starts: its handshake times out


async def _handshake_round(
    reactor: Any, port: int, config: Any, total: int, concurrency: int
) -> tuple[int, int, float]:
    """``total`` handshakes, ``concurrency`` at a time: (done, failed, seconds)."""
    finished: Deferred[None] = Deferred()
    started = done = failed = 0
    dialler = _Dialler(config, reactor)

    def start() -> None:
        nonlocal started
        if started == total:
            if done + failed == total and not finished.called:
                finished.callback(None)
            return
        started += 1
        session = Session(config, reactor, incoming=False)
        dialler.sessions.append(session)
        reactor.connectTCP("127.0.0.1", port, dialler)
        session.when_established().addCallbacks(established, refused)

    def established(session: Session) -> None:
        nonlocal done
        done += 1
        session.close().addCallback(lambda _: start())

    def refused(_: object) -> None:
        nonlocal failed
        failed += 1
        start()

    begin = time.perf_counter()
    for _ in range(concurrency):
        start()
    await finished
    return done, failed, time.perf_counter() - begin


async def handshakes(reactor: Any, total: int, concurrency: int) -> dict[str, Any]:
    """
    Complete ``total`` handshakes, ``concurrency`` at a time, against an
    accepting end in its own process: handshakes per second, and the CPU
    time each end spends per handshake (the accepting end's from ``/proc``,
    its start-up left out; ``None`` where ``/proc`` is missing).
    """
    peer = Peer("handshake")
    try:
        own_start, peer_start = _cpu(), _process_cpu(peer.process.pid)
        done, failed, elapsed = await _handshake_round(
            reactor, peer.port, _config(), total, concurrency
        )
        own_cpu = _cpu() - own_start
        peer_end = _process_cpu(peer.process.pid)
    finally:
        peer.stop()
    return {
        "handshakes": done,
        "failed": failed,
        "concurrency": concurrency,
        "per_second": round(done / elapsed, 1),
        "dialling_cpu_us": round(own_cpu / total * 1e6, 1),
        "accepting_cpu_us": None
        if peer_start is None or peer_end is None
        else round((peer_end - peer_start) / total * 1e6, 1),
    }


async def bare_exchanges(reactor: Any, total: int, concurrency: int) -> dict[str, Any]:
    """
    The baseline of :func:`handshakes`: ``total`` plain Twisted connections,
    ``concurrency`` at a time, each carrying a handshake's bytes in its
    three steps (:class:`bench.peer.Exchange`) and nothing else; per second,
    and the CPU time each end spends per connection.
    """
    peer = Peer("exchange")
    sizes = handshake_step_sizes(_config())
    finished: Deferred[None] = Deferred()
    started = done = failed = 0

    def start() -> None:
        nonlocal started
        if started == total:
            if done + failed == total and not finished.called:
                finished.callback(None)
            return
        started += 1
        reactor.connectTCP("127.0.0.1", peer.port, factory)

    def ended(complete: bool) -> None:
        nonlocal done, failed
        if complete:
            done += 1
        else:
            failed += 1
        start()

    factory = ClientFactory.forProtocol(lambda: Exchange(sizes, dialler=True, finished=ended))
    factory.noisy = False
    try:
        own_start, peer_start = _cpu(), _process_cpu(peer.process.pid)
        begin = time.perf_counter()
        for _ in range(concurrency):
            start()
        await finished
        elapsed = time.perf_counter() - begin
        own_cpu = _cpu() - own_start
        peer_end = _process_cpu(peer.process.pid)
    finally:
        peer.stop()
    return {
        "exchanges": done,
        "failed": failed,
        "per_second": round(done / elapsed, 1),
        "dialling_cpu_us": round(own_cpu / total * 1e6, 1),
        "accepting_cpu_us": None
        if peer_start is None or peer_end is None
        else round((peer_end - peer_start) / total * 1e6, 1),
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def encrypted_stream(
    reactor: Any,
    count: int,
    size: int,
    scheduler: IOScheduler | None = None,
    read_size: int | None = None,
) -> float:
    """
    Payload bytes per second of ``count`` messages of ``size`` bytes on one
    session; ``read_size`` sets the bytes per ``recv`` of an unregulated one.
    """
    rate, _ = await _encrypted_stream(reactor, count, size, scheduler, read_size)
    return rate


async def _encrypted_stream(
    reactor: Any,
    count: int,
    size: int,
    scheduler: IOScheduler | None = None,
    read_size: int | None = None,
) -> tuple[float, float]:
    """(payload bytes per second, CPU seconds of both ends per GB of payload)."""
    peer = Peer("stream", count, size, regulated=scheduler is not None)
    try:
        session = Session(_config(), reactor, incoming=False)
        protocol: Any = session if scheduler is None else scheduler.wrap(session)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", peer.port), protocol)
        if scheduler is None and read_size is not None:
            session.transport.bufferSize = read_size  # type: ignore[union-attr]
        await session.when_established()
        received = 0
        start = 0.0
        cpu_start = _cpu()
        while received < count:
            message = session.read_now()  # no Deferred when a message is waiting
            if message is None:
                message = await session.read()
            if not received:
                start = time.perf_counter()
            received += 1
            assert isinstance(message, bytes) and len(message) == size
        # the first message starts the clock: count the others
        rate = (count - 1) * size / (time.perf_counter() - start)
        receiver_cpu = _cpu() - cpu_start
    finally:
        sender_cpu = peer.stop()
    return rate, (receiver_cpu + sender_cpu) / (count * size / 1e9)


async def bare_stream(reactor: Any, count: int, size: int) -> float:
    """Bytes per second of the same records over a plain Twisted connection."""
    raw_peer = Peer("raw", count, size)
    try:
        finished: Deferred[float] = Deferred()
        total = count * (size + 4)
        await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", raw_peer.port), _Counter(total, finished)
        )
        return total / await finished
    finally:
        raw_peer.stop()


async def stream(reactor: Any, count: int, size: int) -> dict[str, Any]:
    """An encrypted session against a bare Twisted stream of the same bytes (MB/s)."""
    encrypted = await encrypted_stream(reactor, count, size)
    bare = await bare_stream(reactor, count, size)
    return {
        "message_size": size,
        "messages": count,
        "encrypted_MBps": round(encrypted / 1e6, 1),
        "bare_twisted_MBps": round(bare / 1e6, 1),
        "encrypted_vs_bare": round(encrypted / bare, 3),
    }


async def scheduler_overhead(reactor: Any, count: int, rounds: int) -> dict[str, Any]:
    """
    The encrypted stream with both ends under an uncapped scheduler, against
    none, both reading with the scheduler's ``recv`` size.  Rounds alternate;
    the figures are medians with min and max over rounds: throughput, the
    overhead of each pair of neighbouring rounds, and the CPU time both
    processes spend per GB.
    """
    read_size = IOScheduler(reactor).socket_read_size
    without: list[tuple[float, float]] = []
    with_: list[tuple[float, float]] = []
    for _ in range(rounds):
        without.append(await _encrypted_stream(reactor, count, 65536, read_size=read_size))
        scheduler = IOScheduler(reactor)
        scheduler.startService()
        try:
            with_.append(await _encrypted_stream(reactor, count, 65536, scheduler))
        finally:
            scheduler.stopService()
    overheads = [1 - w[0] / b[0] for b, w in zip(without, with_, strict=True)]
    cpu_overheads = [w[1] / b[1] - 1 for b, w in zip(without, with_, strict=True)]
    return {
        "rounds": rounds,
        "without_scheduler_MBps": spread([r for r, _ in without], 1e6, 1),
        "with_scheduler_no_cap_MBps": spread([r for r, _ in with_], 1e6, 1),
        "overhead": spread(overheads, digits=4),
        "cpu_s_per_GB_without": spread([c for _, c in without], digits=3),
        "cpu_s_per_GB_with": spread([c for _, c in with_], digits=3),
        "cpu_overhead": spread(cpu_overheads, digits=4),
    }


async def capped_rate(reactor: Any, cap: int, periods: int) -> dict[str, Any]:
    """
    A session under a download cap of ``cap`` bytes per second: the payload
    delivered in each whole period after the first, against the cap.
    """
    peer = Peer("stream", 0, 65536)
    scheduler = IOScheduler(reactor, max_download_speed=cap)
    scheduler.startService()
    marks: list[int] = []
    done: Deferred[None] = Deferred()
    received = 0

    def tick() -> None:
        marks.append(received)
        if len(marks) == periods + 2 and not done.called:
            done.callback(None)

    scheduler.on_period = tick
    try:
        session = Session(_config(), reactor, incoming=False)
        await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", peer.port), scheduler.wrap(session)
        )
        await session.when_established()

        def reading(message: object) -> None:
            nonlocal received
            if isinstance(message, bytes):
                received += len(message) + 4  # the record, as the cap counts it
                session.read().addCallbacks(reading, lambda _: None)

        session.read().addCallbacks(reading, lambda _: None)
        await done
        session.close("done")
    finally:
        scheduler.stopService()
        peer.stop()
    per_period = [b - a for a, b in itertools.pairwise(marks[1:])]
    achieved = sum(per_period) / len(per_period)
    return {
        "cap_MBps": cap / 1e6,
        "achieved_MBps": round(achieved / 1e6, 3),
        "achieved_vs_cap": round(achieved / cap, 4),
        "worst_period_vs_cap": round(max(per_period, key=lambda v: abs(v - cap)) / cap, 4),
    }


async def aggregate(reactor: Any, connections: int, total_bytes: int) -> dict[str, Any]:
    """
    ``connections`` regulated sessions streaming 64 KiB messages at once.
    The rate is measured in steady state, between the moments 10% and 90%
    of all the payload has arrived, so that starting a thousand streams and
    waiting for the last one weigh alike for every number of connections.
    """
    size = 65536
    per_connection = max(4, total_bytes // size // connections)
    peer = Peer("stream", per_connection, size, regulated=True, on_request=True)
    scheduler = IOScheduler(reactor)
    scheduler.startService()
    config = _config()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", peer.port)
    total = connections * per_connection
    marks = {total // 10: 0.0, total - total // 10: 0.0}
    received = 0
    try:
        sessions = []
        for _ in range(connections):
            session = Session(config, reactor, incoming=False)
            sessions.append(session)
            await connectProtocol(endpoint, scheduler.wrap(session))
        await defer.gatherResults([s.when_established() for s in sessions])

        def arrived() -> None:
            nonlocal received
            received += 1
            if received in marks:
                marks[received] = time.perf_counter()

        async def drain(session: Session) -> None:
            left = per_connection
            while left:
                if session.read_now() is None:
                    await session.read()
                arrived()
                left -= 1

        for session in sessions:
            session.write_now(b"go")  # every peer session starts streaming now
        await defer.gatherResults([Deferred.fromCoroutine(drain(s)) for s in sessions])
        for session in sessions:
            session.close("done")
    finally:
        scheduler.stopService()
        peer.stop()
    (low, t_low), (high, t_high) = sorted(marks.items())
    rate = (high - low) * size / (t_high - t_low)
    return {"connections": connections, "aggregate_MBps": round(rate / 1e6, 1)}


def pipeline_overhead(messages: int, rounds: int) -> dict[str, Any]:
    """
    The same stream between two sessions joined in memory (``iosim``): no
    kernel, no second process, so the CPU cost of the scheduler's
    accounting shows without the noise of a shared machine.  Median, min
    and max over alternating rounds of CPU seconds per GB, with and without
    a scheduler (no cap) on both ends, and of the overhead of each pair.
    """
    from twisted.internet.task import Clock
    from twisted.test import iosim

    from txtezosp2p.testing import IDENTITY_B

    message = b"\\x5a" * 65536

    def one(regulated: bool) -> float:
        clock = Clock()
        limits = Limits(authentication_timeout=120.0, connection_timeout=120.0)
        server = Session(
            session_config(IDENTITY_B, limits=limits, pow_target=0.0), clock, incoming=True
        )
        client = Session(_config(), clock, incoming=False)
        ends: list[Any] = [server, client]
        if regulated:
            schedulers = [IOScheduler(clock), IOScheduler(clock)]
            ends = [schedulers[0].wrap(server), schedulers[1].wrap(client)]
        pump = iosim.connect(
            ends[0],
            iosim.makeFakeServer(ends[0]),
            ends[1],
            iosim.makeFakeClient(ends[1]),
            clock=clock,
        )
        pump.flush()
        received = 0
        start = time.process_time()
        for _ in range(messages):
            server.write_now(message)
            pump.pump()
            while client.read_now() is not None:
                received += 1
        pump.flush()
        while client.read_now() is not None:
            received += 1
        elapsed = time.process_time() - start
        assert received == messages
        return elapsed / (messages * len(message) / 1e9)

    without: list[float] = []
    with_: list[float] = []
    for _ in range(rounds):
        without.append(one(False))
        with_.append(one(True))
    return {
        "rounds": rounds,
        "cpu_s_per_GB_without": spread(without, digits=4),
        "cpu_s_per_GB_with": spread(with_, digits=4),
        "overhead": spread([w / b - 1 for b, w in zip(without, with_, strict=True)], digits=4),
    }


def receive_path(sizes: tuple[int, ...], total: int, rounds: int) -> list[dict[str, Any]]:
    """
    The receiving side of a running session alone, in memory: ``total``
    bytes of messages of each size, sealed beforehand, fed to a session in
    reads of 128 KiB (what a socket hands over) and read back with
    ``read_now``.  No kernel, no second process: the CPU cost of opening,
    framing and decoding, in MB of messages per CPU second (median, min and
    max of ``rounds``), for the P2P envelope (raw messages) and plain byte
    strings.
    """
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from txtezosp2p.testing import IDENTITY_B
    from txtezosp2p.wire.crypto import ChunkCipher, generate_nonces, precompute
    from txtezosp2p.wire.encoding import (
        Ack,
        BytesCodec,
        ConnectionMessage,
        P2PMessageCodec,
        encode_ack,
        raw_message_encodings,
    )

    read = 128 * 1024
    results = []
    for codec_name, codec in (
        ("p2p", P2PMessageCodec(raw_message_encodings())),
        ("bytes", BytesCodec()),
    ):
        for size in sizes:
            count = max(1, total // size)
            clock = Clock()
            config = session_config(
                IDENTITY_A,
                codec=codec,
                pow_target=0.0,
                limits=Limits(incoming_message_queue_size=None),
            )
            rates = []
            for _ in range(rounds):
                session = Session(config, clock, incoming=False)
                transport = StringTransport()
                session.makeConnection(transport)
                ours = transport.value()
                transport.clear()
                theirs = ConnectionMessage(
                    9733, IDENTITY_B.public_key, IDENTITY_B.proof_of_work_stamp,
                    b"\x22" * 24, config.versions.announced,
                ).frame()  # fmt: skip
                key = precompute(IDENTITY_B.secret_key, IDENTITY_A.public_key)
                local, remote = generate_nonces(incoming=True, sent_msg=theirs, recv_msg=ours)
                peer = ChunkCipher(key, local, remote)
                session.dataReceived(theirs + peer.seal(b"\x00\x00"))
                session.dataReceived(peer.seal(encode_ack(Ack())))
                assert session.established
                body = b"\x00\x31" + b"\x5a" * (size - 2) if codec_name == "p2p" else b"\x5a" * size
                wire = peer.seal_batch([body] * count, b"\x01" * count)
                pieces = [wire[i : i + read] for i in range(0, len(wire), read)]
                received = 0
                start = time.process_time()
                for piece in pieces:
                    session.dataReceived(piece)
                    while session.read_now() is not None:
                        received += 1
                elapsed = time.process_time() - start
                assert received == count, (received, count)
                rates.append(count * size / elapsed)
            results.append(
                {
                    "codec": codec_name,
                    "message_size": size,
                    "MB_per_cpu_s": spread(rates, 1e6, 1),
                }
            )
    return results
