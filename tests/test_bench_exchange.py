"""The baseline of the handshake benchmark: a handshake's bytes without the handshake."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from bench.peer import Exchange, handshake_step_sizes
from txtezosp2p.session import Session

from .helpers import IDENTITY_A, session_config

reactor: Any = _reactor


class ExchangeTests(TestCase):
    timeout = 30

    def test_sizes_are_a_handshakes(self) -> None:
        """The connection message a session writes, then a metadata and an Ack chunk."""
        config = session_config(IDENTITY_A, pow_target=0.0)
        session = Session(config, Clock(), incoming=False)
        transport = StringTransport()
        session.makeConnection(transport)
        greeting, metadata, ack = handshake_step_sizes(config)
        self.assertEqual(greeting, len(transport.value()))
        # 2-byte length, 16-byte MAC, then 2 bytes of metadata or 1 of Ack
        self.assertEqual((metadata, ack), (20, 19))

    async def test_three_steps_over_tcp(self) -> None:
        """Both ends read the three steps; the dialler closes after the third."""
        sizes = (100, 20, 19)
        accepted: Deferred[bool] = Deferred()
        dialled: Deferred[bool] = Deferred()
        server = Factory.forProtocol(lambda: Exchange(sizes, False, accepted.callback))
        port = reactor.listenTCP(0, server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = ClientFactory.forProtocol(lambda: Exchange(sizes, True, dialled.callback))
        reactor.connectTCP("127.0.0.1", port.getHost().port, client)
        self.assertEqual([await dialled, await accepted], [True, True])
