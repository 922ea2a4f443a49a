# -*- test-case-name: tests.test_connect_handler -*-
"""
The connect handler and the ACL sets, after Octez's
``test_p2p_connect_handler``, ``test_p2p_peerset`` and
``test_p2p_ipv6set``: hooks, in-flight incoming connections, connect then
destroy, the order of the checks before dialling, identity checks, and the
peer FIFO and address sets.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.acl import ACL, FifoSet
from txtezosp2p.connect_handler import ConnectionBounds
from txtezosp2p.limits import Limits
from txtezosp2p.p2p import P2P
from txtezosp2p.wire.errors import (
    IdentityCheckFailure,
    Myself,
    P2PError,
    PendingConnection,
    PointBanned,
    PrivateMode,
    TooManyConnections,
)
from txtezosp2p.wire.ids import PeerId, Point

from .test_p2p import Network, eventually, failure_of, point_of


class BoundsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """behaviour.md 3.1: 10/50/100 give 23, 36, 68, 84."""
        bounds = ConnectionBounds.of(Limits())
        self.assertEqual(
            (bounds.min_threshold, bounds.min_target, bounds.max_target, bounds.max_threshold),
            (23, 36, 68, 84),
        )

    def test_small(self) -> None:
        bounds = ConnectionBounds.of(
            Limits(min_connections=1, expected_connections=2, max_connections=3)
        )
        self.assertEqual((bounds.min_threshold, bounds.max_threshold), (1, 3))


class HandlerTestCase(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.net = Network(self)

    def run_async(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> Deferred[None]:
        return Deferred.fromCoroutine(scenario())


class _Silent(Protocol):
    """A TCP client that never says a word; ``lost`` fires when it is closed."""

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: object = None) -> None:
        if not self.lost.called:
            self.lost.callback(None)


class ConnectHandlerTests(HandlerTestCase):
    def test_hooks(self) -> Deferred[None]:
        """on_new_connection and on_disconnection are called once each, never after destroy."""

        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            counts = {"new": 0, "gone": 0}
            b.on_new_connection(lambda peer, conn: counts.__setitem__("new", counts["new"] + 1))
            b.on_disconnection(lambda peer: counts.__setitem__("gone", counts["gone"] + 1))
            self.assertEqual(counts, {"new": 0, "gone": 0})
            connection = await b.connect(point_of(a))
            self.assertEqual(counts, {"new": 1, "gone": 0})
            await b.disconnect(connection, wait=True)
            self.assertEqual(counts, {"new": 1, "gone": 1})
            await b.shutdown()
            self.assertEqual(counts, {"new": 1, "gone": 1})

        return self.run_async(scenario)

    def test_connect_then_destroy(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            await b.connect(point_of(a))
            await b.shutdown()
            self.assertEqual(b.connections(), [])
            self.assertEqual(b.pool.points[point_of(a)].state.kind, "disconnected")
            await eventually(lambda: not a.connections(), [a])

        return self.run_async(scenario)

    def test_incoming_counted_until_authenticated(self) -> Deferred[None]:
        """
        An accepted connection counts as in flight until its handshake ends;
        past max_incoming_connections new ones are closed at once.
        """

        async def scenario() -> None:
            clock = Clock()
            a = await self.net.node(
                clock=clock, limits=Limits(max_incoming_connections=2, maintenance_idle_time=None)
            )
            endpoint = TCP4ClientEndpoint(self.net.reactor, "127.0.0.1", point_of(a).port)
            self.assertEqual(a.handler.incoming_in_flight, 0)
            silent = [_Silent(), _Silent()]
            for protocol in silent:
                await connectProtocol(endpoint, protocol)
                assert protocol.transport is not None
                self.addCleanup(protocol.transport.loseConnection)
            await eventually(lambda: a.handler.incoming_in_flight == 2, [a])
            third = _Silent()
            await connectProtocol(endpoint, third)
            await third.lost  # closed at once, no byte sent
            self.assertEqual(a.handler.incoming_in_flight, 2)
            clock.advance(a.limits.authentication_timeout + 1)  # the silent ones time out
            self.assertEqual(a.handler.incoming_in_flight, 0)
            self.assertFalse(a.acl.banned_addr("127.0.0.1"))  # timeouts do not greylist

        return self.run_async(scenario)

    def test_order_of_checks(self) -> Deferred[None]:
        """behaviour.md 3.2: banned (even trusted), too many, private mode, pending."""

        async def scenario() -> None:
            a = await self.net.node()
            target = Point("127.0.0.1", 9)
            a.pool.register_point(target, trusted=True)
            a.acl.greylist_addr("127.0.0.1")
            self.assertIsInstance(await failure_of(a.connect(target)), PointBanned)
            a.acl.clear_greylists()
            crowded = await self.net.node(
                limits=Limits(
                    min_connections=0,
                    expected_connections=0,
                    max_connections=0,
                    maintenance_idle_time=None,
                )
            )
            b = await self.net.node()
            await crowded.connect(point_of(b)).addErrback(lambda _: None)
            ghost = PeerId(b"x" * 16)
            crowded.pool.connected_peers[ghost] = object()  # pretend one runs: 1 > 0
            self.assertIsInstance(
                await failure_of(crowded.connect(point_of(b))), TooManyConnections
            )
            del crowded.pool.connected_peers[ghost]
            private = await self.net.node(private_mode=True)
            self.assertIsInstance(await failure_of(private.connect(point_of(b))), PrivateMode)
            pending = b.pool.register_point(point_of(a))
            pending.set_requested(0.0)
            self.assertIsInstance(await failure_of(b.connect(point_of(a))), PendingConnection)

        return self.run_async(scenario)

    def test_expected_peer_id(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            error = await failure_of(b.connect(point_of(a), expected_peer_id=b.peer_id))
            self.assertIsInstance(error, IdentityCheckFailure)
            self.assertFalse(b.acl.banned_addr("127.0.0.1"))  # no greylisting for this
            await eventually(lambda: b.pool.points[point_of(a)].state.kind == "disconnected", [b])
            await b.connect(point_of(a), expected_peer_id=a.peer_id)

        return self.run_async(scenario)

    def test_myself(self) -> Deferred[None]:
        """Dialling our own point fails with Myself; the point is remembered as ours."""

        async def scenario() -> None:
            a = await self.net.node()
            self.assertIsInstance(await failure_of(a.connect(point_of(a))), Myself)
            await eventually(lambda: point_of(a) in a.pool.my_points, [a])
            self.assertNotIn(point_of(a), a.pool.points)
            self.assertIsNone(a.pool.register_new_point(point_of(a)))

        return self.run_async(scenario)

    def test_shutdown_cancels_incoming(self) -> Deferred[None]:
        async def scenario() -> None:
            a = await self.net.node()
            silent = _Silent()
            await connectProtocol(
                TCP4ClientEndpoint(self.net.reactor, "127.0.0.1", point_of(a).port), silent
            )
            await eventually(lambda: a.handler.incoming_in_flight == 1, [a])
            await a.shutdown()
            await silent.lost
            self.assertEqual(a.handler.incoming_in_flight, 0)

        return self.run_async(scenario)


class PeerSetTests(SynchronousTestCase):
    """Octez's test_p2p_peerset: the peer greylist is a FIFO cache."""

    def peer(self, name: str) -> PeerId:
        return PeerId.of_public_key(name.encode().ljust(32, b"\x00"))

    def test_empty_add_remove(self) -> None:
        cache = FifoSet[PeerId](10)
        for name in ("foo", "bar", "baz"):
            self.assertNotIn(self.peer(name), cache)
            cache.add(self.peer(name))
        for name in ("foo", "bar", "baz"):
            self.assertIn(self.peer(name), cache)
        cache.discard(self.peer("bar"))
        self.assertNotIn(self.peer("bar"), cache)

    def test_overflow(self) -> None:
        cache = FifoSet[PeerId](3)
        for name in ("foo", "bar", "baz", "foo", "zor"):
            cache.add(self.peer(name))
        self.assertIn(self.peer("zor"), cache)
        self.assertIn(self.peer("foo"), cache)
        self.assertNotIn(self.peer("bar"), cache)
        self.assertIn(self.peer("baz"), cache)
        for name in ("baz", "baz", "baz", "qux"):
            cache.add(self.peer(name))
        self.assertNotIn(self.peer("foo"), cache)
        for name in ("zor", "baz", "qux"):
            self.assertIn(self.peer(name), cache)

    def test_acl_peer_greylist_capacity(self) -> None:
        acl = ACL(Clock(), Limits(peer_greylist_size=3, ip_greylist_size_in_kilobytes=1))
        for name in ("a", "b", "c", "d"):
            acl.greylist_peer(self.peer(name))
        self.assertFalse(acl.banned_peer(self.peer("a")))
        self.assertTrue(acl.banned_peer(self.peer("d")))


class AddressSetTests(SynchronousTestCase):
    """Octez's test_p2p_ipv6set, for our address lists: IPv6 and IPv4-mapped entries."""

    def acl(self) -> ACL:
        return ACL(Clock(), Limits(ip_greylist_size_in_kilobytes=64))

    def test_empty(self) -> None:
        acl = self.acl()
        for address in ("::", "ffff::", "a::2", "1.2.3.4"):
            self.assertFalse(acl.banned_addr(address))

    def test_exact_members(self) -> None:
        acl = self.acl()
        acl.ban_addr("ffff::3")
        acl.greylist_addr("1234:5678::1")
        self.assertTrue(acl.banned_addr("ffff::3"))
        self.assertTrue(acl.banned_addr("1234:5678::1"))
        for address in ("ffff::4", "fffe::3", "1234:5678::100", "::"):
            self.assertFalse(acl.banned_addr(address))

    def test_ipv4_mapped(self) -> None:
        acl = self.acl()
        acl.greylist_addr("10.0.0.1")
        self.assertTrue(acl.banned_addr("::ffff:10.0.0.1"))
        self.assertFalse(acl.banned_addr("10.0.0.2"))
        acl.ban_addr("::ffff:192.168.0.1")
        self.assertTrue(acl.banned_addr("192.168.0.1"))

    def test_listing(self) -> None:
        acl = self.acl()
        for address in ("e000::", "a000::", "ffff::", "1.2.3.4"):
            acl.greylist_addr(address)
        listed = acl.greylist_ips_json()["ips"]
        self.assertEqual(listed, ["e000::", "a000::", "ffff::", "::ffff:1.2.3.4"])


_ = (P2P, P2PError)
