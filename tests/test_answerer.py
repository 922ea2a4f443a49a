# -*- test-case-name: tests.test_answerer -*-
"""
The protocol answerer and the connection worker (behaviour.md section 7, with
2.8 and 3.6-3.7): Bootstrap/Advertise discovery, both sides of a swap, the
private answerer, and the per-connection worker (sequential handling,
bounded application queue, per-kind throttling, closing).

Everything runs synchronously on a simulated clock: connections are real
:class:`P2PConnection` objects over a fake session whose reads the tests
fire by hand; ``connect`` is a fake whose Deferreds the tests fire.
"""

from __future__ import annotations

import random
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.acl import ACL
from txtezosp2p.answerer import ADVERTISE_SIZE, Answerer, PrivateAnswerer
from txtezosp2p.connection import COOLDOWNS, P2PConnection
from txtezosp2p.interfaces import IPeerLink
from txtezosp2p.limits import Limits
from txtezosp2p.pool import Pool
from txtezosp2p.pool_state import PointInfo, PoolEvent, Requested, Running
from txtezosp2p.session import ConnectionInfo, Session, Stat
from txtezosp2p.wire.encoding import (
    Advertise,
    Bootstrap,
    ConnectionMetadata,
    Disconnect,
    NetworkVersion,
    SwapAck,
    SwapRequest,
)
from txtezosp2p.wire.errors import (
    ConnectionClosed,
    ConnectionFailed,
    DecodingError,
    DisconnectReason,
    reason_text,
)
from txtezosp2p.wire.ids import ConnectionId, PeerId, Point

VERSION = NetworkVersion("SANDBOXED_TEZOS", 2, 1)
PROPOSED = Point("10.0.0.9", 9732)
OTHER_PROPOSED = Point("10.0.0.10", 9732)
#: ``make_connection``'s default: listening on 9000 + n.
DEFAULT_PORT = -1


def peer(n: int) -> PeerId:
    return PeerId(n.to_bytes(16, "big"))


def public_point(pool: Pool, n: int) -> PointInfo:
    """A known point that a connection once proved public."""
    info = pool.register_point(Point(f"192.168.{n // 250}.{n % 250 + 1}", 9732))
    info.known_public = True
    return info


# -- A fake session ---------------------------------------------------------------------------


class FakeSession:
    """
    Just what :class:`P2PConnection` uses of a session: reads are Deferreds
    the test fires, writes are recorded.
    """

    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        self.negotiated_version = VERSION
        self.reads: list[Deferred[object]] = []
        self.sent: list[object] = []
        self.written: list[object] = []
        #: ``write_now`` answers this (False: the outgoing queue is full).
        self.room = True
        #: ``write_now`` raises ConnectionClosed.
        self.write_closed = False
        self.closes: list[tuple[str, bool]] = []

    # reading

    def read(self) -> Deferred[object]:
        reading: Deferred[object] = Deferred()
        self.reads.append(reading)
        return reading

    def pending_reads(self) -> int:
        return sum(1 for reading in self.reads if not reading.called)

    def _pending(self) -> Deferred[object]:
        pending = [reading for reading in self.reads if not reading.called]
        assert len(pending) == 1, f"{len(pending)} reads pending"
        return pending[0]

    def deliver(self, message: object) -> None:
        """Answer the (single) pending read with ``message``."""
        self._pending().callback(message)

    def fail_read(self, error: Exception) -> None:
        self._pending().errback(error)

    # writing

    def write_now(self, message: object) -> bool:
        if self.write_closed:
            raise ConnectionClosed("closed")
        if not self.room:
            return False
        self.sent.append(message)
        return True

    def write(self, message: object) -> Deferred[None]:
        self.written.append(message)
        return succeed(None)

    def close(self, reason: str = "", wait: bool = False) -> Deferred[None]:
        self.closes.append((reason, wait))
        return succeed(None)

    def stat(self) -> Stat:
        return Stat()


def make_connection(
    clock: Clock,
    answerer: Answerer,
    n: int,
    *,
    private: bool = False,
    port: int | None = DEFAULT_PORT,
    app_queue_size: int | None = 10,
    on_decoding_error: Any = None,
) -> tuple[P2PConnection, FakeSession]:
    """
    Connection ``n``: peer ``n`` at 127.0.0.1, listening on 9000 + n unless
    ``port`` says otherwise (None: unknown listening port).
    """
    listening = 9000 + n if port == DEFAULT_PORT else port
    info = ConnectionInfo(
        peer_id=peer(n),
        public_key=bytes(32),
        announced_version=VERSION,
        incoming=False,
        id_point=ConnectionId("127.0.0.1", listening),
        remote_socket_port=listening or 50000 + n,
        private_node=private,
        local_metadata=ConnectionMetadata(),
        remote_metadata=ConnectionMetadata(private_node=private),
    )
    session = FakeSession(info)
    connection = P2PConnection(
        cast(Session, session),
        clock=clock,
        answerer=answerer,
        app_queue_size=app_queue_size,
        on_decoding_error=on_decoding_error,
    )
    return connection, session


class AnswererCase(SynchronousTestCase):
    """A pool, an answerer with a fake ``connect``, and pool-event capture."""

    answerer_class: type[Answerer] = Answerer

    def setUp(self) -> None:
        self.clock = Clock()
        acl = ACL(self.clock, Limits(ip_greylist_size_in_kilobytes=1))
        self.pool = Pool(self.clock, acl, rng=random.Random(0))
        self.events: list[PoolEvent] = []
        self.pool.watch(self.events.append)
        self.dials: list[tuple[Point, Deferred[Any]]] = []
        self.sessions: dict[PeerId, FakeSession] = {}
        self.answerer = self.make_answerer()

    def make_answerer(self, **options: Any) -> Answerer:
        options.setdefault("rng", random.Random(0))
        return self.answerer_class(self.pool, self.clock, connect=self.fake_connect, **options)

    def fake_connect(self, point: Point) -> Deferred[Any]:
        attempt: Deferred[Any] = Deferred()
        self.dials.append((point, attempt))
        return attempt

    def connection(self, n: int, *, register: bool = True, **options: Any) -> P2PConnection:
        """A connection served by ``self.answerer``, registered in the pool if asked."""
        connection, session = make_connection(self.clock, self.answerer, n, **options)
        self.sessions[connection.peer_id] = session
        if register:
            self.pool.add_connection(connection, connection.point)
        return connection

    def session(self, connection: P2PConnection) -> FakeSession:
        return self.sessions[connection.peer_id]

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def sources(self, kind: str) -> list[PeerId | None]:
        return [event.source for event in self.events if event.kind == kind]


# -- Bootstrap ----------------------------------------------------------------------------------


class BootstrapTests(AnswererCase):
    def test_answers_with_known_public_points(self) -> None:
        """A public peer's Bootstrap is answered by an Advertise of the known public points."""
        public = {public_point(self.pool, n).point for n in range(3)}
        self.pool.register_point(Point("10.1.1.1", 9732))  # not known to be public
        conn = self.connection(1)
        self.answerer.bootstrap(conn.link)
        sent = self.session(conn).sent
        self.assertEqual(len(sent), 1)
        advert = sent[0]
        assert isinstance(advert, Advertise)
        self.assertEqual(set(advert.points), public)
        self.assertEqual(len(advert.points), 3)
        self.assertEqual(self.sources("bootstrap_received"), [conn.peer_id])
        self.assertEqual(self.sources("advertise_sent"), [conn.peer_id])

    def test_advertise_matches_list_known_points(self) -> None:
        """The answer is ``list_known_points(50)`` (same pool randomness, same list)."""
        for n in range(80):
            public_point(self.pool, n)
        conn = self.connection(1)
        expected_rng = random.Random(0)
        self.pool.rng = random.Random(0)
        self.answerer.bootstrap(conn.link)
        self.pool.rng = expected_rng
        expected = self.pool.list_known_points(ADVERTISE_SIZE, ignore_private=True)
        advert = self.session(conn).sent[0]
        assert isinstance(advert, Advertise)
        self.assertEqual(list(advert.points), expected)
        self.assertLessEqual(len(advert.points), 50)
        self.assertGreaterEqual(len(advert.points), 30)
        self.assertEqual(len(set(advert.points)), len(advert.points))

    def test_greylisted_points_not_advertised(self) -> None:
        kept = public_point(self.pool, 1)
        hidden = public_point(self.pool, 2)
        self.pool.acl.greylist_addr(hidden.point.addr)
        conn = self.connection(1)
        self.answerer.bootstrap(conn.link)
        self.assertEqual(self.session(conn).sent, [Advertise((kept.point,))])

    def test_nothing_known(self) -> None:
        """No known public point: nothing is sent."""
        self.pool.register_point(Point("10.1.1.1", 9732))
        conn = self.connection(1)
        self.answerer.bootstrap(conn.link)
        self.assertEqual(self.session(conn).sent, [])
        self.assertIn("bootstrap_received", self.kinds())
        self.assertNotIn("advertise_sent", self.kinds())

    def test_private_peer_ignored(self) -> None:
        public_point(self.pool, 1)
        conn = self.connection(1, private=True)
        self.answerer.bootstrap(conn.link)
        self.assertEqual(self.session(conn).sent, [])
        self.assertNotIn("advertise_sent", self.kinds())

    def test_discovery_disabled(self) -> None:
        public_point(self.pool, 1)
        self.answerer = self.make_answerer(disable_peer_discovery=True)
        conn = self.connection(1)
        self.answerer.bootstrap(conn.link)
        self.assertEqual(self.session(conn).sent, [])
        self.assertNotIn("advertise_sent", self.kinds())

    def test_full_queue(self) -> None:
        """A full outgoing queue drops the Advertise without raising."""
        public_point(self.pool, 1)
        conn = self.connection(1)
        self.session(conn).room = False
        self.answerer.bootstrap(conn.link)
        self.assertEqual(self.session(conn).sent, [])
        self.assertNotIn("advertise_sent", self.kinds())

    def test_closed_connection(self) -> None:
        """A connection closed under our feet: no exception either."""
        public_point(self.pool, 1)
        conn = self.connection(1)
        self.session(conn).write_closed = True
        self.answerer.bootstrap(conn.link)
        self.assertNotIn("advertise_sent", self.kinds())


# -- Advertise ----------------------------------------------------------------------------------


class AdvertiseTests(AnswererCase):
    def test_registers_points_trust_unchanged(self) -> None:
        trusted = self.pool.register_point(Point("10.2.0.1", 9732), trusted=True)
        untrusted = self.pool.register_point(Point("10.2.0.2", 9732))
        new = [Point("10.2.0.3", 9732), Point("2001:db8::1", 9732)]
        conn = self.connection(1)
        self.events.clear()
        self.answerer.advertise(conn.link, (trusted.point, untrusted.point, *new))
        self.assertTrue(self.pool.points[trusted.point].trusted)
        self.assertFalse(self.pool.points[untrusted.point].trusted)
        for point in new:
            self.assertIn(point, self.pool.points)
            self.assertFalse(self.pool.points[point].trusted)
        self.assertEqual([e.point for e in self.events if e.kind == "new_point"], new)
        self.assertEqual(self.sources("advertise_received"), [conn.peer_id])
        self.assertEqual(self.session(conn).sent, [])

    def test_ignores_my_points(self) -> None:
        mine = Point("10.2.0.7", 9732)
        other = Point("10.2.0.8", 9732)
        self.pool.add_myself(mine)
        conn = self.connection(1)
        self.answerer.advertise(conn.link, (mine, other))
        self.assertNotIn(mine, self.pool.points)
        self.assertIn(other, self.pool.points)

    def test_discovery_disabled(self) -> None:
        self.answerer = self.make_answerer(disable_peer_discovery=True)
        conn = self.connection(1)
        self.answerer.advertise(conn.link, (Point("10.2.0.3", 9732),))
        self.assertEqual(self.pool.points, {})
        self.assertNotIn("new_point", self.kinds())


# -- send_bootstrap -----------------------------------------------------------------------------


class SendBootstrapTests(AnswererCase):
    def test_public_connections_only(self) -> None:
        public = self.connection(1)
        private = self.connection(2, private=True)
        self.assertTrue(self.answerer.send_bootstrap(public.link))
        self.assertFalse(self.answerer.send_bootstrap(private.link))
        self.assertEqual(self.session(public).sent, [Bootstrap()])
        self.assertEqual(self.session(private).sent, [])
        self.assertEqual(self.sources("bootstrap_sent"), [public.peer_id])

    def test_discovery_disabled(self) -> None:
        self.answerer = self.make_answerer(disable_peer_discovery=True)
        conn = self.connection(1)
        self.assertFalse(self.answerer.send_bootstrap(conn.link))
        self.assertEqual(self.session(conn).sent, [])
        self.assertNotIn("bootstrap_sent", self.kinds())

    def test_full_queue(self) -> None:
        conn = self.connection(1)
        self.session(conn).room = False
        self.assertFalse(self.answerer.send_bootstrap(conn.link))
        self.assertNotIn("bootstrap_sent", self.kinds())

    def test_closed(self) -> None:
        conn = self.connection(1)
        self.session(conn).write_closed = True
        self.assertFalse(self.answerer.send_bootstrap(conn.link))


# -- Swap_request (recipient side) --------------------------------------------------------------


class SwapRequestTests(AnswererCase):
    def setUp(self) -> None:
        super().setUp()
        self.source = self.connection(1)
        self.other = self.connection(2)

    def request(self, point: Point = PROPOSED) -> None:
        self.answerer.swap_request(self.source.link, point, peer(99))

    def test_disabled(self) -> None:
        """swap_linger None: ignored silently (no swap_request_ignored event)."""
        self.answerer = self.make_answerer(swap_linger=None)
        self.request()
        self.assertEqual(self.session(self.source).sent, [])
        self.assertEqual(self.dials, [])
        self.assertEqual(self.kinds(), ["swap_request_received"])

    def test_accepted(self) -> None:
        """Swap_ack names another connection D; P is dialled; the accepted time is stamped."""
        self.clock.advance(100)
        self.request()
        assert self.other.point is not None
        self.assertEqual(
            self.session(self.source).sent, [SwapAck(self.other.point, self.other.peer_id)]
        )
        self.assertEqual(self.answerer.latest_accepted_swap, 100)
        self.assertEqual([point for point, _ in self.dials], [PROPOSED])
        self.assertEqual(self.sources("swap_request_received"), [self.source.peer_id])
        self.assertEqual(self.sources("swap_ack_sent"), [self.source.peer_id])
        self.assertNotIn("swap_request_ignored", self.kinds())

    def test_success(self) -> None:
        """Once P is connected: latest_successful_swap stamped, D dropped ("peer swapped")."""
        self.request()
        self.clock.advance(5)
        self.dials[0][1].callback(object())
        self.assertEqual(self.answerer.latest_successful_swap, 5)
        self.assertEqual(self.session(self.other).closes, [("peer has been swapped", False)])
        self.assertEqual(self.other.close_reason, "peer has been swapped")
        self.assertIs(self.other.disconnect_reason, DisconnectReason.PEER_SWAPPED)
        self.assertEqual(self.session(self.source).closes, [])
        self.assertEqual(self.sources("swap_success"), [self.source.peer_id])
        self.assertNotIn("swap_failure", self.kinds())

    def test_success_dropped_peer_gone(self) -> None:
        """D disconnected meanwhile: the success needs nothing more."""
        self.request()
        self.pool.remove_connection(self.other)
        self.dials[0][1].callback(object())
        self.assertEqual(self.session(self.other).closes, [])
        self.assertIn("swap_success", self.kinds())

    def test_failure(self) -> None:
        """A failed dial resets latest_accepted_swap to latest_successful_swap."""
        self.request()
        self.dials[0][1].errback(ConnectionFailed("refused"))
        self.assertEqual(self.answerer.latest_accepted_swap, self.answerer.latest_successful_swap)
        self.assertEqual(self.session(self.other).closes, [])
        self.assertEqual(self.sources("swap_failure"), [self.source.peer_id])
        # nothing holds back the next request
        self.request(OTHER_PROPOSED)
        self.assertEqual(len(self.dials), 2)

    def test_failure_after_a_success(self) -> None:
        self.request()
        self.clock.advance(10)
        self.dials[0][1].callback(object())
        self.clock.advance(100)
        self.other = self.connection(3)
        self.request(OTHER_PROPOSED)
        self.assertEqual(self.answerer.latest_accepted_swap, 110)
        self.dials[1][1].errback(ConnectionFailed("refused"))
        self.assertEqual(self.answerer.latest_accepted_swap, 10)

    def test_linger_after_accepted(self) -> None:
        """Within swap_linger (30 s) of an accepted swap, requests are ignored."""
        self.request()
        self.session(self.source).sent.clear()
        self.clock.advance(29.9)
        self.request(OTHER_PROPOSED)
        self.assertEqual(self.session(self.source).sent, [])
        self.assertEqual(len(self.dials), 1)
        self.assertEqual(self.sources("swap_request_ignored"), [self.source.peer_id])
        self.clock.advance(0.1)
        self.request(OTHER_PROPOSED)
        self.assertEqual(len(self.dials), 2)

    def test_linger_after_success(self) -> None:
        """The successful time counts too (the max of both)."""
        self.request()
        self.clock.advance(20)
        self.dials[0][1].callback(object())
        self.other = self.connection(3)
        self.clock.advance(20)  # 40 s after acceptance, 20 s after success
        self.request(OTHER_PROPOSED)
        self.assertEqual(len(self.dials), 1)
        self.assertIn("swap_request_ignored", self.kinds())
        self.clock.advance(10)
        self.request(OTHER_PROPOSED)
        self.assertEqual(len(self.dials), 2)

    def test_custom_linger(self) -> None:
        self.answerer = self.make_answerer(swap_linger=5.0)
        self.request()
        self.clock.advance(5)
        self.request(OTHER_PROPOSED)
        self.assertEqual(len(self.dials), 2)

    def test_point_not_disconnected(self) -> None:
        """P known and Requested or Running: ignored."""
        info = self.pool.register_point(PROPOSED)
        for state in (Requested(), Running(peer(99))):
            info.state = state
            self.request()
            self.assertEqual(self.dials, [])
            self.assertEqual(self.session(self.source).sent, [])
        self.assertEqual(len(self.sources("swap_request_ignored")), 2)

    def test_point_known_disconnected(self) -> None:
        self.pool.register_point(PROPOSED)
        self.request()
        self.assertEqual([point for point, _ in self.dials], [PROPOSED])

    def test_no_candidate(self) -> None:
        """No other public connection with a known port: nothing sent, nothing dialled."""
        self.pool.remove_connection(self.other)
        self.connection(3, private=True)
        self.connection(4, port=None)
        closed = self.connection(5)
        closed.connection_lost("gone")
        self.request()
        self.assertEqual(self.session(self.source).sent, [])
        self.assertEqual(self.dials, [])
        self.assertEqual(self.answerer.latest_accepted_swap, float("-inf"))
        self.assertNotIn("swap_ack_sent", self.kinds())

    def test_random_candidate(self) -> None:
        """D is any other eligible connection, and the one dropped on success."""
        candidates = {self.other.peer_id}
        for n in range(3, 7):
            candidates.add(self.connection(n).peer_id)
        self.connection(7, private=True)
        chosen: set[PeerId] = set()
        for _ in range(30):
            self.answerer.latest_accepted_swap = float("-inf")
            self.answerer.latest_successful_swap = float("-inf")
            sent = self.session(self.source).sent
            sent.clear()
            self.request()
            self.assertEqual(len(sent), 1)
            ack = sent[0]
            assert isinstance(ack, SwapAck)
            self.assertIn(ack.peer_id, candidates)
            dropped = self.pool.connected_peers[ack.peer_id]
            self.assertEqual(ack.point, dropped.point)
            chosen.add(ack.peer_id)
        self.assertGreater(len(chosen), 1)
        self.dials[-1][1].callback(object())
        last = self.session(self.source).sent[-1]
        assert isinstance(last, SwapAck)
        self.assertEqual(
            self.sessions[last.peer_id].closes[-1:], [("peer has been swapped", False)]
        )

    def test_ack_dropped(self) -> None:
        """Swap_ack not queued (full): stop, no dial, no accepted time."""
        self.session(self.source).room = False
        self.request()
        self.assertEqual(self.dials, [])
        self.assertEqual(self.answerer.latest_accepted_swap, float("-inf"))
        self.assertNotIn("swap_ack_sent", self.kinds())

    def test_ack_on_closed_connection(self) -> None:
        self.session(self.source).write_closed = True
        self.request()
        self.assertEqual(self.dials, [])

    def test_no_connect_function(self) -> None:
        """Without a connect function (not yet bound), the Swap_ack still goes out."""
        self.answerer.connect = None
        self.request()
        self.assertEqual(len(self.session(self.source).sent), 1)


# -- Swap_ack (initiator side) ------------------------------------------------------------------


class SwapAckTests(AnswererCase):
    def setUp(self) -> None:
        super().setUp()
        self.recipient = self.connection(1)
        self.proposed = self.connection(2)

    def ack(self, point: Point = PROPOSED) -> None:
        self.answerer.swap_ack(self.recipient.link, point, peer(99))

    def test_without_request(self) -> None:
        self.ack()
        self.assertEqual(self.dials, [])
        self.assertEqual(self.sources("swap_ack_received"), [self.recipient.peer_id])

    def test_request_to_another_connection(self) -> None:
        self.proposed.last_sent_swap_request = (0.0, self.recipient.peer_id)
        self.ack()
        self.assertEqual(self.dials, [])

    def test_swap_disabled(self) -> None:
        self.answerer = self.make_answerer(swap_linger=None)
        self.recipient.last_sent_swap_request = (0.0, self.proposed.peer_id)
        self.ack()
        self.assertEqual(self.dials, [])

    def test_point_running(self) -> None:
        self.recipient.last_sent_swap_request = (0.0, self.proposed.peer_id)
        self.pool.register_point(PROPOSED).state = Running(peer(99))
        self.ack()
        self.assertEqual(self.dials, [])

    def test_point_requested(self) -> None:
        """Only Running stops it: a point being dialled is dialled again."""
        self.recipient.last_sent_swap_request = (0.0, self.proposed.peer_id)
        self.pool.register_point(PROPOSED).state = Requested()
        self.ack()
        self.assertEqual([point for point, _ in self.dials], [PROPOSED])

    def test_success(self) -> None:
        """Q connected: the proposed peer C is dropped, not the recipient."""
        self.recipient.last_sent_swap_request = (0.0, self.proposed.peer_id)
        self.clock.advance(1000)  # the remembered request's age is not checked
        self.ack()
        self.assertEqual([point for point, _ in self.dials], [PROPOSED])
        self.clock.advance(3)
        self.dials[0][1].callback(object())
        self.assertEqual(self.session(self.proposed).closes, [("peer has been swapped", False)])
        self.assertEqual(self.session(self.recipient).closes, [])
        self.assertEqual(self.answerer.latest_successful_swap, 1003)
        self.assertEqual(self.sources("swap_success"), [self.recipient.peer_id])

    def test_failure(self) -> None:
        self.recipient.last_sent_swap_request = (0.0, self.proposed.peer_id)
        self.ack()
        self.dials[0][1].errback(ConnectionFailed("refused"))
        self.assertEqual(self.session(self.proposed).closes, [])
        self.assertEqual(self.sources("swap_failure"), [self.recipient.peer_id])

    def test_remembered_request_kept(self) -> None:
        """The remembered request is never cleared: a second ack swaps again."""
        self.recipient.last_sent_swap_request = (0.0, self.proposed.peer_id)
        self.ack()
        self.ack(OTHER_PROPOSED)
        self.assertEqual([point for point, _ in self.dials], [PROPOSED, OTHER_PROPOSED])

    def test_ack_swap_counts_as_accepted(self) -> None:
        """
        The swap procedure of section 7.4 step 4 (shared by both sides, as in
        Octez's ``swap``) stamps ``latest_accepted_swap``: an incoming
        Swap_request right after is within swap_linger and ignored.
        """
        self.recipient.last_sent_swap_request = (0.0, self.proposed.peer_id)
        self.clock.advance(100)
        self.ack()
        self.assertEqual(self.answerer.latest_accepted_swap, 100)
        self.clock.advance(1)
        self.answerer.swap_request(self.proposed.link, OTHER_PROPOSED, peer(98))
        self.assertIn("swap_request_ignored", self.kinds())
        self.assertEqual(len(self.dials), 1)


# -- send_swap_request (initiator side) ---------------------------------------------------------


class SendSwapRequestTests(AnswererCase):
    def test_needs_two_public_connections(self) -> None:
        self.assertFalse(self.answerer.send_swap_request())
        only = self.connection(1)
        self.assertFalse(self.answerer.send_swap_request())
        self.connection(2, private=True)
        self.assertFalse(self.answerer.send_swap_request())
        self.assertEqual(self.session(only).sent, [])
        self.assertIsNone(only.last_sent_swap_request)
        self.assertNotIn("swap_request_sent", self.kinds())

    def test_sent(self) -> None:
        first = self.connection(1)
        second = self.connection(2)
        self.clock.advance(42)
        self.assertTrue(self.answerer.send_swap_request())
        recipient, proposal = (first, second) if self.session(first).sent else (second, first)
        assert proposal.point is not None
        self.assertEqual(
            self.session(recipient).sent, [SwapRequest(proposal.point, proposal.peer_id)]
        )
        self.assertEqual(self.session(proposal).sent, [])
        self.assertEqual(recipient.last_sent_swap_request, (42, proposal.peer_id))
        self.assertIsNone(proposal.last_sent_swap_request)
        self.assertEqual(self.sources("swap_request_sent"), [recipient.peer_id])

    def test_proposal_needs_known_point(self) -> None:
        """Only the connection with a known port can be proposed."""
        portless = self.connection(1, port=None)
        listening = self.connection(2)
        outcomes: set[bool] = set()
        for seed in range(20):
            self.answerer.rng = random.Random(seed)
            self.session(portless).sent.clear()
            self.session(listening).sent.clear()
            portless.last_sent_swap_request = None
            sent = self.answerer.send_swap_request()
            outcomes.add(sent)
            self.assertEqual(self.session(listening).sent, [])
            if sent:
                assert listening.point is not None
                self.assertEqual(
                    self.session(portless).sent,
                    [SwapRequest(listening.point, listening.peer_id)],
                )
                self.assertEqual(portless.last_sent_swap_request, (0, listening.peer_id))
            else:
                self.assertEqual(self.session(portless).sent, [])
                self.assertIsNone(portless.last_sent_swap_request)
        self.assertEqual(outcomes, {True, False})

    def test_private_never_involved(self) -> None:
        first = self.connection(1)
        second = self.connection(2)
        private = self.connection(3, private=True)
        for seed in range(20):
            self.answerer.rng = random.Random(seed)
            self.assertTrue(self.answerer.send_swap_request())
        self.assertEqual(self.session(private).sent, [])
        for message in self.session(first).sent + self.session(second).sent:
            assert isinstance(message, SwapRequest)
            self.assertNotEqual(message.peer_id, private.peer_id)

    def test_dropped(self) -> None:
        first = self.connection(1)
        second = self.connection(2)
        self.session(first).room = False
        self.session(second).room = False
        self.assertFalse(self.answerer.send_swap_request())
        self.assertIsNone(first.last_sent_swap_request)
        self.assertIsNone(second.last_sent_swap_request)
        self.assertNotIn("swap_request_sent", self.kinds())


# -- Private answerer ---------------------------------------------------------------------------


class PrivateAnswererTests(AnswererCase):
    answerer_class = PrivateAnswerer

    def test_bootstrap_ignored(self) -> None:
        public_point(self.pool, 1)
        conn = self.connection(1)
        self.answerer.bootstrap(conn.link)
        self.assertEqual(self.session(conn).sent, [])
        self.assertNotIn("advertise_sent", self.kinds())

    def test_advertise_ignored(self) -> None:
        conn = self.connection(1)
        self.answerer.advertise(conn.link, (Point("10.3.0.1", 9732),))
        self.assertEqual(self.pool.points, {})

    def test_swap_request_ignored(self) -> None:
        conn = self.connection(1)
        self.connection(2)
        self.answerer.swap_request(conn.link, PROPOSED, peer(99))
        self.assertEqual(self.session(conn).sent, [])
        self.assertEqual(self.dials, [])

    def test_swap_ack_ignored(self) -> None:
        conn = self.connection(1)
        other = self.connection(2)
        conn.last_sent_swap_request = (0.0, other.peer_id)
        self.answerer.swap_ack(conn.link, PROPOSED, peer(99))
        self.assertEqual(self.dials, [])

    def test_nothing_sent(self) -> None:
        conn = self.connection(1)
        self.connection(2)
        self.assertFalse(self.answerer.send_bootstrap(conn.link))
        self.assertFalse(self.answerer.send_swap_request())
        self.assertEqual(self.session(conn).sent, [])

    def test_worker(self) -> None:
        """Through the worker: control messages ignored, app messages queued."""
        public_point(self.pool, 1)
        conn = self.connection(1)
        self.connection(2)
        conn.start()
        session = self.session(conn)
        for message in (
            Bootstrap(),
            Advertise((Point("10.3.0.1", 9732),)),
            SwapRequest(PROPOSED, peer(99)),
            SwapAck(PROPOSED, peer(99)),
            b"app",
        ):
            session.deliver(message)
        self.assertEqual(session.sent, [])
        self.assertNotIn(Point("10.3.0.1", 9732), self.pool.points)
        self.assertEqual(self.dials, [])
        self.assertEqual(conn.recv_now(), b"app")
        self.assertEqual(session.pending_reads(), 1)


# -- The connection worker ----------------------------------------------------------------------


class RecordingAnswerer(Answerer):
    """Records what reaches the answerer (to see when a message is handled)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled: list[tuple[float, object]] = []

    def bootstrap(self, link: IPeerLink) -> None:
        self.handled.append((self.clock.seconds(), Bootstrap()))

    def advertise(self, link: IPeerLink, points: tuple[Point, ...]) -> None:
        self.handled.append((self.clock.seconds(), Advertise(points)))

    def swap_request(self, link: IPeerLink, point: Point, peer_id: PeerId) -> None:
        self.handled.append((self.clock.seconds(), SwapRequest(point, peer_id)))

    def swap_ack(self, link: IPeerLink, point: Point, peer_id: PeerId) -> None:
        self.handled.append((self.clock.seconds(), SwapAck(point, peer_id)))


class FailingAnswerer(Answerer):
    def bootstrap(self, link: IPeerLink) -> None:
        raise RuntimeError("answerer bug")


class WorkerTests(AnswererCase):
    def setUp(self) -> None:
        super().setUp()
        self.recorder = RecordingAnswerer(self.pool, self.clock, connect=self.fake_connect)
        self.answerer = self.recorder
        self.decoding_errors: list[tuple[P2PConnection, DecodingError]] = []

    def worker(self, **options: Any) -> tuple[P2PConnection, FakeSession]:
        options.setdefault("on_decoding_error", self._decoding_error)
        conn = self.connection(1, **options)
        conn.start()
        return conn, self.session(conn)

    def _decoding_error(self, conn: P2PConnection, error: DecodingError) -> None:
        self.decoding_errors.append((conn, error))

    def handled(self) -> list[object]:
        return [message for _, message in self.recorder.handled]

    # reading and dispatching

    def test_start_reads_once(self) -> None:
        conn, session = self.worker()
        self.assertEqual(session.pending_reads(), 1)
        conn.start()
        self.assertEqual(session.pending_reads(), 1)

    def test_not_started(self) -> None:
        conn = self.connection(1)
        self.assertEqual(self.session(conn).pending_reads(), 0)

    def test_dispatch(self) -> None:
        conn, session = self.worker()
        messages: list[object] = [
            Bootstrap(),
            Advertise((PROPOSED,)),
            SwapRequest(PROPOSED, peer(5)),
            SwapAck(PROPOSED, peer(6)),
        ]
        for message in messages:
            session.deliver(message)
        self.assertEqual(self.handled(), messages)
        self.assertEqual(session.pending_reads(), 1)
        self.assertEqual(len(conn.app_queue), 0)

    def test_app_messages_in_order(self) -> None:
        conn, session = self.worker()
        notified: list[P2PConnection] = []
        conn.on_app_message = notified.append
        for n in range(4):
            session.deliver(f"m{n}".encode())
        self.assertEqual(notified, [conn] * 4)
        got: list[object] = []
        for _ in range(4):
            conn.recv().addCallback(got.append)
        self.assertEqual(got, [b"m0", b"m1", b"m2", b"m3"])
        self.assertIsNone(conn.recv_now())
        waiting = conn.recv()
        self.assertNoResult(waiting)
        session.deliver(b"late")
        self.assertEqual(self.successResultOf(waiting), b"late")

    def test_app_messages_not_throttled(self) -> None:
        conn, session = self.worker()
        for n in range(5):
            session.deliver(n)
        self.assertEqual(len(conn.app_queue), 5)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_app_queue_bound_in_messages(self) -> None:
        """
        With app_queue_size=3 (admission ``count + 1 < 3`` or empty), two
        messages are queued; the third waits and the worker stops reading
        until the application reads.
        """
        conn, session = self.worker(app_queue_size=3)
        notified: list[P2PConnection] = []
        conn.on_app_message = notified.append
        session.deliver(b"a" * 100000)  # sizes do not matter: one message counts 1
        session.deliver(b"b")
        self.assertEqual(session.pending_reads(), 1)
        session.deliver(b"c")
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(len(notified), 2)
        self.assertEqual(self.successResultOf(conn.recv()), b"a" * 100000)
        self.assertEqual(len(notified), 3)
        self.assertEqual(session.pending_reads(), 1)
        session.deliver(b"d")
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(conn.recv_now(), b"b")
        self.assertEqual(session.pending_reads(), 1)
        self.assertEqual(conn.recv_now(), b"c")
        self.assertEqual(conn.recv_now(), b"d")
        self.assertIsNone(conn.recv_now())

    def test_sequential_control_after_full_queue(self) -> None:
        """A control message behind a blocked app message waits for it."""
        conn, session = self.worker(app_queue_size=2)
        session.deliver(b"a")
        session.deliver(b"b")  # blocked: 1 + 1 < 2 is false
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(self.handled(), [])
        conn.recv_now()
        session.deliver(Bootstrap())
        self.assertEqual(self.handled(), [Bootstrap()])

    def test_sequential_waits_for_handler(self) -> None:
        """The next read happens only after the handler's Deferred fires."""
        pending: list[Deferred[None]] = []

        def message(link: IPeerLink, message: object) -> Deferred[None]:
            waiting: Deferred[None] = Deferred()
            pending.append(waiting)
            return waiting

        self.recorder.message = message  # type: ignore[method-assign]
        _, session = self.worker()
        session.deliver(b"x")
        self.assertEqual(session.pending_reads(), 0)
        pending[0].callback(None)
        self.assertEqual(session.pending_reads(), 1)

    # throttling

    def test_cooldowns(self) -> None:
        self.assertEqual(
            COOLDOWNS,
            {Advertise: 0.1, Bootstrap: 0.1, SwapRequest: 60.0, SwapAck: 60.0},
        )

    def test_bootstrap_throttled_full_cooldown(self) -> None:
        """A second Bootstrap 0.05 s later waits the whole 0.1 s, not the remaining 0.05 s."""
        _, session = self.worker()
        session.deliver(Bootstrap())
        self.assertEqual(self.recorder.handled, [(0, Bootstrap())])
        self.clock.advance(0.05)
        session.deliver(Bootstrap())
        self.assertEqual(len(self.recorder.handled), 1)
        self.assertEqual(session.pending_reads(), 0)
        self.clock.advance(0.06)  # 0.11: past the first one's cooldown
        self.assertEqual(len(self.recorder.handled), 1)
        self.assertEqual(session.pending_reads(), 0)
        self.clock.advance(0.05)  # 0.16: a full cooldown after the second one's arrival
        self.assertEqual(len(self.recorder.handled), 2)
        self.assertAlmostEqual(self.recorder.handled[1][0], 0.16)
        self.assertEqual(session.pending_reads(), 1)

    def test_throttle_stamps_after_sleep(self) -> None:
        """The cooldown restarts from the wake-up: a burst stays throttled."""
        _, session = self.worker()
        session.deliver(Bootstrap())
        self.clock.advance(0.05)
        session.deliver(Bootstrap())
        self.clock.advance(0.1)  # handled at 0.15
        self.assertEqual(len(self.recorder.handled), 2)
        self.clock.advance(0.05)  # 0.2: only 0.05 after the last handling
        session.deliver(Bootstrap())
        self.assertEqual(len(self.recorder.handled), 2)
        self.clock.advance(0.11)
        self.assertEqual(len(self.recorder.handled), 3)

    def test_not_throttled_after_cooldown(self) -> None:
        _, session = self.worker()
        session.deliver(Bootstrap())
        self.clock.advance(0.2)
        session.deliver(Bootstrap())
        self.assertEqual(len(self.recorder.handled), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_kinds_throttled_separately(self) -> None:
        """The first message of each kind is never throttled."""
        _, session = self.worker()
        messages: list[object] = [
            Bootstrap(),
            Advertise((PROPOSED,)),
            SwapRequest(PROPOSED, peer(5)),
            SwapAck(PROPOSED, peer(6)),
        ]
        for message in messages:
            session.deliver(message)
        self.assertEqual(self.recorder.handled, [(0, message) for message in messages])

    def test_swap_request_throttle_stalls_connection(self) -> None:
        """A second Swap_request 1 s later waits 60 s, and so does what follows it."""
        conn, session = self.worker()
        session.deliver(SwapRequest(PROPOSED, peer(5)))
        self.clock.advance(1)
        session.deliver(SwapRequest(OTHER_PROPOSED, peer(5)))
        self.assertEqual(len(self.recorder.handled), 1)
        self.assertEqual(session.pending_reads(), 0)  # the app message cannot even be read
        self.clock.advance(59.5)
        self.assertEqual(len(self.recorder.handled), 1)
        self.assertEqual(session.pending_reads(), 0)
        self.clock.advance(0.5)  # 61: 60 s after the second one's arrival
        self.assertEqual(self.recorder.handled[1], (61, SwapRequest(OTHER_PROPOSED, peer(5))))
        session.deliver(b"app")
        self.assertEqual(conn.recv_now(), b"app")

    def test_swap_ack_throttled(self) -> None:
        _, session = self.worker()
        session.deliver(SwapAck(PROPOSED, peer(5)))
        self.clock.advance(30)
        session.deliver(SwapAck(PROPOSED, peer(5)))
        self.clock.advance(59)
        self.assertEqual(len(self.recorder.handled), 1)
        self.clock.advance(1)
        self.assertEqual(len(self.recorder.handled), 2)

    def test_advertise_throttled(self) -> None:
        _, session = self.worker()
        session.deliver(Advertise(()))
        session.deliver(Advertise(()))
        self.assertEqual(len(self.recorder.handled), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.recorder.handled), 2)

    def test_connection_lost_cancels_throttle(self) -> None:
        """Losing the connection ends the sleep: the throttled message is not handled."""
        conn, session = self.worker()
        session.deliver(SwapRequest(PROPOSED, peer(5)))
        session.deliver(SwapRequest(PROPOSED, peer(5)))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        conn.connection_lost("closed by peer")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(120)
        self.assertEqual(len(self.recorder.handled), 1)
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_disconnect_cancels_throttle(self) -> None:
        """A local disconnect also ends the sleep and stops the worker."""
        conn, session = self.worker()
        session.deliver(Bootstrap())
        session.deliver(Bootstrap())
        conn.disconnect("maintenance")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(1)
        self.assertEqual(len(self.recorder.handled), 1)
        self.assertEqual(session.closes, [("maintenance", False)])
        self.assertEqual(session.pending_reads(), 0)

    # closing

    def test_disconnect_message(self) -> None:
        """Disconnect closes the session and ends the worker (nothing after it is read)."""
        conn, session = self.worker()
        session.deliver(Disconnect())
        self.assertEqual(len(session.closes), 1)
        self.assertIsNotNone(conn.close_reason)
        self.assertEqual(session.pending_reads(), 0)

    def test_decoding_error(self) -> None:
        conn, session = self.worker()
        error = DecodingError("Unexpected_tag", "tag 42")
        session.fail_read(error)
        self.assertEqual(self.decoding_errors, [(conn, error)])
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(conn.close_reason, str(error))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_connection_closed_quietly(self) -> None:
        conn, session = self.worker()
        session.fail_read(ConnectionClosed("closed by peer"))
        self.assertEqual(conn.close_reason, "closed by peer")
        self.assertEqual(self.decoding_errors, [])
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(session.closes, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_unexpected_read_error_logged(self) -> None:
        _, session = self.worker()
        session.fail_read(ZeroDivisionError())
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_connection_lost_closes_app_queue(self) -> None:
        conn, session = self.worker()
        session.deliver(b"one")
        conn.connection_lost("closed by peer")
        self.assertTrue(conn.closed)
        self.assertEqual(self.successResultOf(conn.recv()), b"one")
        self.failureResultOf(conn.recv(), ConnectionClosed)
        self.assertRaises(ConnectionClosed, conn.recv_now)

    def test_connection_lost_fails_waiting_recv(self) -> None:
        conn, _ = self.worker()
        waiting = conn.recv()
        conn.connection_lost("closed by peer")
        self.failureResultOf(waiting, ConnectionClosed)

    def test_connection_lost_releases_blocked_worker(self) -> None:
        conn, session = self.worker(app_queue_size=2)
        session.deliver(b"a")
        session.deliver(b"b")  # blocked
        conn.connection_lost("closed by peer")
        self.assertEqual(session.pending_reads(), 0)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(conn.recv_now(), b"a")
        self.assertRaises(ConnectionClosed, conn.recv_now)

    def test_answerer_error_disconnects(self) -> None:
        self.answerer = FailingAnswerer(self.pool, self.clock)
        conn, session = self.worker()
        session.deliver(Bootstrap())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(session.closes, [("connection closed by unexpected error", False)])
        self.assertEqual(conn.close_reason, "connection closed by unexpected error")

    def test_answerer_error_stops_worker(self) -> None:
        """After closing on an answerer error, the worker reads no further message."""
        self.answerer = FailingAnswerer(self.pool, self.clock)
        _, session = self.worker()
        session.deliver(Bootstrap())
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(session.pending_reads(), 0)

    def test_disconnect_idempotent_reason(self) -> None:
        conn, session = self.worker()
        conn.disconnect("first")
        conn.disconnect("second")
        self.assertEqual(conn.close_reason, "first")
        conn.disconnect(wait=True)
        self.assertEqual(session.closes[-1], ("disconnected", True))

    # sending

    def test_try_send(self) -> None:
        conn, session = self.worker()
        self.assertTrue(conn.try_send(b"x"))
        session.room = False
        self.assertFalse(conn.try_send(b"y"))
        session.write_closed = True
        self.assertFalse(conn.try_send(b"z"))
        self.assertEqual(session.sent, [b"x"])

    def test_send(self) -> None:
        conn, session = self.worker()
        self.successResultOf(conn.send(b"x"))
        self.assertEqual(session.written, [b"x"])

    def test_accessors(self) -> None:
        conn, _session = self.worker(private=True)
        self.assertTrue(conn.private)
        self.assertFalse(conn.incoming)
        self.assertEqual(conn.peer_id, peer(1))
        self.assertEqual(conn.point, Point("127.0.0.1", 9001))
        self.assertEqual(conn.negotiated_version, VERSION)
        self.assertEqual(conn.stat(), Stat())
        self.assertEqual(conn.remote_metadata, ConnectionMetadata(private_node=True))


# -- The default answerer behind the worker -----------------------------------------------------


class ThroughWorkerTests(AnswererCase):
    def test_bootstrap(self) -> None:
        info = public_point(self.pool, 1)
        conn = self.connection(1)
        conn.start()
        self.session(conn).deliver(Bootstrap())
        self.assertEqual(self.session(conn).sent, [Advertise((info.point,))])

    def test_advertise(self) -> None:
        conn = self.connection(1)
        conn.start()
        self.session(conn).deliver(Advertise((PROPOSED,)))
        self.assertIn(PROPOSED, self.pool.points)
        self.assertIn("advertise_received", self.kinds())

    def test_swap_round(self) -> None:
        """A Swap_request through the worker: ack sent, P dialled, D dropped on success."""
        source = self.connection(1)
        dropped = self.connection(2)
        source.start()
        self.session(source).deliver(SwapRequest(PROPOSED, peer(99)))
        assert dropped.point is not None
        self.assertEqual(self.session(source).sent, [SwapAck(dropped.point, dropped.peer_id)])
        self.assertEqual(self.session(source).pending_reads(), 1)
        self.dials[0][1].callback(object())
        self.assertEqual(self.session(dropped).closes, [("peer has been swapped", False)])

    def test_full_queue_bootstrap_keeps_connection(self) -> None:
        public_point(self.pool, 1)
        conn = self.connection(1)
        conn.start()
        self.session(conn).room = False
        self.session(conn).deliver(Bootstrap())
        self.assertEqual(self.session(conn).closes, [])
        self.assertEqual(self.session(conn).pending_reads(), 1)


class DisconnectReasonTests(SynchronousTestCase):
    """Octez's ``P2p_disconnection_reason``: its constructors and its texts."""

    def test_octez_texts(self) -> None:
        self.assertEqual(DisconnectReason.MAINTENANCE_TOO_MANY.value, "Maintenance_too_many")
        self.assertEqual(
            reason_text(DisconnectReason.MAINTENANCE_TOO_MANY),
            "maintenance detected too many connections",
        )
        self.assertEqual(reason_text(DisconnectReason.POOL_DESTROYED), "pool destroyed")
        self.assertEqual(reason_text("rolled"), "rolled")  # Octez's User of string
        for reason in DisconnectReason:
            self.assertTrue(reason.describe())

    def test_user_reason(self) -> None:
        case = AnswererCase()
        case.setUp()
        connection = case.connection(1)
        connection.disconnect("testing")
        self.assertEqual(
            (connection.disconnect_reason, connection.close_reason), ("testing", "testing")
        )
