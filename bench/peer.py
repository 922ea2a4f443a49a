"""
The remote end of the network benchmarks, run in its own process:
``python -m bench.peer MODE [--count N] [--size S] [--regulated]``.

It listens on 127.0.0.1, prints its port on standard output, then serves:

* ``handshake``: accepts sessions (the benchmark closes them);
* ``exchange``: the traffic of a handshake without the handshake, on plain
  Twisted connections (:class:`Exchange`), the baseline of ``handshake``;
* ``stream``: on each session, writes ``--count`` messages of ``--size``
  bytes as fast as back-pressure allows (``--count 0``: until the session
  closes), then closes once they are sent; with ``--on-request`` it waits
  for one message from the client first;
* ``raw``: the same bytes over a plain Twisted connection, no session.

``--regulated`` puts the connections under an IO scheduler without cap.
It exits when its standard input closes.
"""

from __future__ import annotations

import argparse
import resource
import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet import stdio
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from txtezosp2p.io_scheduler import IOScheduler
from txtezosp2p.limits import Limits
from txtezosp2p.session import Session, SessionConfig, SessionFactory
from txtezosp2p.testing import IDENTITY_B, session_config
from txtezosp2p.wire.crypto import KEY_SIZE, NONCE_SIZE, ChunkCipher
from txtezosp2p.wire.encoding import Ack, encode_ack

reactor: Any = _reactor


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds this process spent streaming (reported on exit).
streaming_cpu = 0.0


def stream_to(session: Session, count: int, message: bytes) -> None:
    sent = 0
    start = cpu_seconds()

    def more(_: object = None) -> None:
        nonlocal sent
        while count == 0 or sent < count:
            sent += 1
            if not session.write_now(message):
                session.write(message).addCallbacks(more, lambda _: None)
                return
        session.close("done", wait=True).addCallback(finished)

    def finished(_: object) -> None:
        global streaming_cpu
        streaming_cpu += cpu_seconds() - start

    more()


@implementer(IPullProducer)
class RawSender(Protocol):
    """Writes the same number of bytes as the stream mode, without a session."""

    def __init__(self, total: int, block: int) -> None:
        self.remaining = total
        self.block = b"\x00" * block

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.registerProducer(self, False)  # type: ignore[attr-defined]

    def resumeProducing(self) -> None:
        assert self.transport is not None
        for _ in range(4):
            if self.remaining <= 0:
                self.transport.unregisterProducer()  # type: ignore[attr-defined]
                self.transport.loseConnection()
                return
            size = min(self.remaining, len(self.block))
            self.transport.write(self.block[:size])
            self.remaining -= size

    def stopProducing(self) -> None:
        self.remaining = 0


def handshake_step_sizes(config: SessionConfig) -> tuple[int, int, int]:
    """The bytes each end of a handshake writes: connection message, metadata chunk, Ack chunk."""
    cipher = ChunkCipher(bytes(KEY_SIZE), bytes(NONCE_SIZE), bytes(NONCE_SIZE))
    metadata = config.metadata.encode(config.metadata.value())
    return (
        len(config.greeting(bytes(NONCE_SIZE))),
        len(cipher.seal(metadata)),
        len(cipher.seal(encode_ack(Ack()))),
    )


class Exchange(Protocol):
    """
    What a handshake does on the wire, without the handshake: Nagle off,
    each end writes the first step's bytes once connected and the next
    step's once it has read the peer's previous one; the dialler closes
    after the third.  ``finished`` is called when the connection is gone,
    with whether all three steps were read.
    """

    def __init__(
        self,
        sizes: tuple[int, int, int],
        dialler: bool,
        finished: Any = None,
    ) -> None:
        self.sizes = sizes
        self.dialler = dialler
        self.finished = finished
        self.received = 0
        self.step = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.setTcpNoDelay(True)  # type: ignore[attr-defined]
        self.transport.write(b"\x00" * self.sizes[0])

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.received += len(data)
        while self.step < 3 and self.received >= self.sizes[self.step]:
            self.received -= self.sizes[self.step]
            self.step += 1
            if self.step < 3:
                self.transport.write(b"\x00" * self.sizes[self.step])
            elif self.dialler:
                self.transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        if self.finished is not None:
            self.finished(self.step == 3)


class _Stdin(Protocol):
    def connectionLost(self, reason: object = None) -> None:
        sys.stdout.write(f"cpu {streaming_cpu:.6f}\n")
        sys.stdout.flush()
        if reactor.running:
            reactor.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer")
    parser.add_argument("mode", choices=("handshake", "exchange", "stream", "raw"))
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=65536)
    parser.add_argument("--regulated", action="store_true")
    parser.add_argument(
        "--on-request", action="store_true", help="stream once the client sends a message"
    )
    args = parser.parse_args(argv)
    # small outgoing queues: hundreds of sessions stream at once
    limits = Limits(
        authentication_timeout=120.0,
        connection_timeout=120.0,
        outgoing_message_queue_size=256 << 10,
    )
    config = session_config(IDENTITY_B, limits=limits, pow_target=0.0)
    scheduler = None
    if args.regulated:
        scheduler = IOScheduler(reactor)
        scheduler.startService()
    factory: Factory
    if args.mode == "exchange":
        sizes = handshake_step_sizes(config)
        factory = Factory.forProtocol(lambda: Exchange(sizes, dialler=False))
        factory.noisy = False
    elif args.mode == "raw":
        # records of the same size as the stream mode's (4-byte length + payload)
        total = args.count * (args.size + 4)
        factory = Factory.forProtocol(lambda: RawSender(total, 256 * 1024))
    else:
        message = b"\x5a" * args.size

        def on_session(session: Session) -> None:
            established = session.when_established()
            if args.mode == "stream" and args.on_request:
                established.addCallback(lambda s: s.read())
                established.addCallback(lambda _: stream_to(session, args.count, message))
            elif args.mode == "stream":
                established.addCallback(stream_to, args.count, message)
            established.addErrback(lambda _: None)

        factory = SessionFactory(config, reactor, on_session=on_session, scheduler=scheduler)

    def listening(port: Any) -> None:
        sys.stdout.write(f"{port.getHost().port}\n")
        sys.stdout.flush()

    endpoint = TCP4ServerEndpoint(reactor, 0, backlog=1024, interface="127.0.0.1")
    endpoint.listen(factory).addCallback(listening)
    stdio.StandardIO(_Stdin())
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
