"""
The remote end of the network benchmarks, run in its own process:
``python -m bench.peer MODE COUNT SIZE``.

It listens on 127.0.0.1, prints its port on standard output, then serves:

* ``handshake``: accepts sessions (the benchmark closes them);
* ``stream``: on each session, writes COUNT messages of SIZE bytes as fast
  as back-pressure allows, then closes after they are sent;
* ``raw``: the same bytes over a plain Twisted connection, no session.

It exits when its standard input closes.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet import stdio
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from txtezosp2p.limits import Limits
from txtezosp2p.session import Session, SessionFactory
from txtezosp2p.testing import IDENTITY_B, session_config

reactor: Any = _reactor


def stream_to(session: Session, count: int, message: bytes) -> None:
    sent = 0

    def more(_: object = None) -> None:
        nonlocal sent
        while sent < count:
            sent += 1
            if not session.write_now(message):
                session.write(message).addCallback(more)
                return
        session.close("done", wait=True)

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


class _Stdin(Protocol):
    def connectionLost(self, reason: object = None) -> None:
        if reactor.running:
            reactor.stop()


def main(argv: list[str]) -> None:
    mode, count, size = argv[0], int(argv[1]), int(argv[2])
    limits = Limits(authentication_timeout=60.0, connection_timeout=60.0)
    config = session_config(IDENTITY_B, limits=limits, pow_target=0.0)
    if mode == "raw":
        # records of the same size as the stream mode's (4-byte length + payload)
        total = count * (size + 4)
        factory: Factory = Factory.forProtocol(lambda: RawSender(total, 256 * 1024))
    else:
        message = b"\x5a" * size

        def on_session(session: Session) -> None:
            if mode == "stream":
                session.when_established().addCallback(stream_to, count, message)
            session.when_established().addErrback(lambda _: None)

        factory = SessionFactory(config, reactor, on_session=on_session)

    def listening(port: Any) -> None:
        sys.stdout.write(f"{port.getHost().port}\n")
        sys.stdout.flush()

    TCP4ServerEndpoint(reactor, 0, backlog=1024, interface="127.0.0.1").listen(factory).addCallback(
        listening
    )
    stdio.StandardIO(_Stdin())
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
