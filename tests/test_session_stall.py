"""
The progress timeout of running sessions (``Limits.receive_progress_timeout``):
a peer that leaves part of a message unfinished is closed, one that makes
progress or that we hold back ourselves is not.  Simulated clock, plus one
real TCP connection.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.limits import Limits
from txtezosp2p.session import Session, SessionFactory
from txtezosp2p.wire.errors import ReceiveStalled

from .helpers import IDENTITY_A, IDENTITY_B, session_config
from .test_session_wire import RunningPair

reactor: Any = _reactor


def record(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


class ProgressTimeoutTests(SynchronousTestCase):
    def test_partial_chunk_never_completed(self) -> None:
        """The first bytes of a 65 535-byte frame, then nothing: closed after 120 s."""
        pair = RunningPair(self)
        frame = pair.peer.seal(record(b"x" * 65_513))
        self.assertEqual(len(frame), 0xFFFF)
        pair.session.dataReceived(frame[:1000])
        pair.clock.advance(119)
        self.assertFalse(pair.transport.disconnecting)
        pair.clock.advance(2)
        self.failureResultOf(pair.session.read(), ReceiveStalled)
        self.assertTrue(pair.transport.disconnecting)

    def test_trickled_record(self) -> None:
        """A record trickled a chunk at a time never completes: closed at the limit."""
        pair = RunningPair(self, limits=Limits(receive_progress_timeout=30.0))
        stream = record(b"y" * (1 << 20))
        for second in range(60):
            piece = stream[second * 1024 : (second + 1) * 1024]
            pair.session.dataReceived(pair.peer.seal(piece))
            pair.clock.advance(1)
            if pair.transport.disconnecting:
                break
        self.assertEqual(second + 1, 30)  # seconds elapsed
        self.failureResultOf(pair.session.read(), ReceiveStalled)

    def test_progress_keeps_the_connection(self) -> None:
        """Messages keep completing while the next one is always partial: kept."""
        pair = RunningPair(self, limits=Limits(receive_progress_timeout=30.0))
        stream = pair.peer.seal(record(b"z" * 100) * 200, chunk_size=60)
        step = len(stream) // 100
        for index in range(100):
            pair.session.dataReceived(stream[index * step : (index + 1) * step])
            pair.clock.advance(20)
            while pair.session.read_now() is not None:
                pass
        self.assertFalse(pair.transport.disconnecting)

    def test_our_back_pressure_does_not_count(self) -> None:
        """While we do not read, the peer is paused and no time is counted."""
        limits = Limits(receive_progress_timeout=30.0, incoming_message_queue_size=1000)
        pair = RunningPair(self, limits=limits)
        message = record(b"m" * 600)
        wire = pair.peer.seal(message * 3)
        pair.session.dataReceived(wire + pair.peer.seal(message)[:50])
        self.assertEqual(pair.transport.producerState, "paused")
        pair.clock.advance(1000)
        self.assertFalse(pair.transport.disconnecting)
        while pair.session.read_now() is not None:
            pass
        self.assertEqual(pair.transport.producerState, "producing")
        pair.clock.advance(29)
        self.assertFalse(pair.transport.disconnecting)
        pair.clock.advance(2)  # the partial chunk is still there: now the clock runs
        self.assertTrue(pair.transport.disconnecting)

    def test_idle_connection_is_kept(self) -> None:
        """Nothing pending, nothing to time out: a quiet peer is not a stalled one."""
        pair = RunningPair(self)
        pair.session.dataReceived(pair.peer.seal(record(b"hi")))
        pair.clock.advance(10_000)
        self.assertFalse(pair.transport.disconnecting)
        self.assertEqual(pair.clock.getDelayedCalls(), [])

    def test_off(self) -> None:
        """``None``: Octez's behaviour, the partial chunk waits forever."""
        pair = RunningPair(self, limits=Limits(receive_progress_timeout=None))
        pair.session.dataReceived(pair.peer.seal(record(b"x" * 1000))[:100])
        pair.clock.advance(1e9)
        self.assertFalse(pair.transport.disconnecting)
        self.assertRaises(ValueError, Limits, receive_progress_timeout=0)


class ProgressTimeoutTCPTests(TestCase):
    async def test_stalled_peer_is_closed(self) -> None:
        """A real TCP peer sends half a chunk; the accepting end closes it at the limit."""
        clock = Clock()
        limits = Limits(receive_progress_timeout=5.0)
        accepted: Deferred[Session] = Deferred()
        factory = SessionFactory(
            session_config(IDENTITY_A, limits=limits),
            clock,
            on_session=lambda s: None if accepted.called else accepted.callback(s),
        )
        port: Any = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        client = Session(session_config(IDENTITY_B), reactor, incoming=False)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        await connectProtocol(endpoint, client)
        server = await accepted
        await client.when_established()
        await server.when_established()
        assert client._cipher is not None and client.transport is not None
        frame = client._cipher.seal(record(b"s" * 5000))
        client.transport.write(frame[: len(frame) // 2])
        while server.total_recv < len(frame) // 2:
            await _turn()
        clock.advance(6)
        reason = await client.when_closed()
        self.assertTrue(reason)
        self.assertIsInstance(self.failureResultOf(server.read()).value, ReceiveStalled)


def _turn() -> Deferred[None]:
    """One reactor turn."""
    d: Deferred[None] = Deferred()
    reactor.callLater(0, d.callback, None)
    return d
