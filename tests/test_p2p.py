# -*- test-case-name: tests.test_p2p -*-
"""
The P2P layer over real TCP on loopback: nodes connecting and exchanging
messages, bans and greylists, Nack alternatives, private mode, broadcast,
fair ``recv_any``, a ten-node network learning itself through Advertise,
and hostile peers that must be greylisted without harming the node.

Waiting is event-driven (pool events, Deferreds): no sleeps.  Attackers
connect from other loopback addresses (127.0.0.x) so that greylisting them
leaves the honest nodes' 127.0.0.1 alone.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Coroutine
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from txtezosp2p.connection import P2PConnection
from txtezosp2p.identity import Identity
from txtezosp2p.interfaces import IP2P, IP2PConnection, IPool
from txtezosp2p.limits import Limits
from txtezosp2p.p2p import P2P, P2PConfig, faked_network
from txtezosp2p.session import Reject, Session, SessionConfig, Versions
from txtezosp2p.testing import unchecked_identity, weak_identity
from txtezosp2p.wire import binary as _binary
from txtezosp2p.wire.encoding import Advertise, Bootstrap, MessageEncoding, encode_ack
from txtezosp2p.wire.errors import (
    ConnectionClosed,
    ConnectionFailed,
    NackMotive,
    P2PError,
    PointBanned,
    PrivateMode,
    Rejected,
    RejectedByNack,
)
from txtezosp2p.wire.ids import Point

VERSIONS = Versions("SANDBOXED_TEZOS")
Text = MessageEncoding(tag=0x1000, title="Text", type=str, encode=str.encode, decode=bytes.decode)


class Network:
    """Nodes of a test, all stopped at the end."""

    def __init__(self, case: TestCase) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.case = case

    async def node(
        self,
        *,
        identity: Identity | None = None,
        limits: Limits | None = None,
        pow_target: float = 0.0,
        clock: Any = None,
        listen: bool | str = True,
        **config: Any,
    ) -> P2P:
        p2p = P2P(
            self.reactor,
            P2PConfig(
                identity=identity or unchecked_identity(),
                versions=VERSIONS,
                listen=((listen,) if isinstance(listen, str) else ("tcp:0:interface=127.0.0.1",))
                if listen
                else (),
                proof_of_work_target=pow_target,
                **config,
            ),
            limits or Limits(maintenance_idle_time=None),
            message_encodings=[Text],
            clock=clock,
        )
        await p2p.activate()
        self.case.addCleanup(p2p.shutdown)
        return p2p


def point_of(p2p: P2P) -> Point:
    assert p2p.listening_port is not None
    return Point("127.0.0.1", p2p.listening_port)


async def eventually(predicate: Callable[[], bool], nodes: list[P2P]) -> None:
    """Wait until ``predicate`` holds, checking it at every pool event of ``nodes``."""
    if predicate():
        return
    done: Deferred[None] = Deferred()

    def check(_: object) -> None:
        if not done.called and predicate():
            done.callback(None)

    stops = [node.watch(check) for node in nodes]
    try:
        await done
    finally:
        for stop in stops:
            stop()


async def failure_of(d: Deferred[Any]) -> BaseException:
    try:
        await d
    except BaseException as exc:
        return exc
    raise AssertionError("expected a failure")


class P2PTestCase(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.net = Network(self)

    def run_async(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> Deferred[None]:
        return Deferred.fromCoroutine(scenario())


class ConnectionTests(P2PTestCase):
    def test_nodes_exchange_messages(self) -> Deferred[None]:
        """Four nodes connect to each other and exchange application messages."""

        async def scenario() -> None:
            nodes = [await self.net.node() for _ in range(4)]
            for i, node in enumerate(nodes):
                for other in nodes[:i]:
                    await node.connect(point_of(other))
            for node in nodes:
                self.assertEqual(len(node.connections()), 3)
                for connection in node.connections():
                    await node.send(connection, f"from {node.peer_id}")
            for node in nodes:
                received = set()
                for connection in node.connections():
                    received.add(await node.recv(connection))
                self.assertEqual(received, {f"from {n.peer_id}" for n in nodes if n is not node})

        return self.run_async(scenario)

    def test_connection_accessors(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            connection = await b.connect(point_of(a))
            verifyObject(IP2PConnection, connection)
            verifyObject(IP2P, a)
            verifyObject(IPool, a.pool)
            await eventually(lambda: a.find_connection_by_peer_id(b.peer_id) is not None, [a])
            self.assertIs(b.find_connection_by_point(point_of(a)), connection)
            self.assertIs(b.find_connection_by_peer_id(a.peer_id), connection)
            self.assertEqual(b.negotiated_version(connection).p2p_version, 1)
            self.assertEqual(b.connection_info(connection).peer_id, a.peer_id)
            self.assertFalse(b.connection_remote_metadata(connection).private_node)
            self.assertEqual(b.fold_connections(lambda c, n: n + 1, 0), 1)
            self.assertEqual(list(b.iter_connections()), [connection])
            await b.send(connection, "x")
            await a.recv(a.connections()[0])
            self.assertGreater(b.connection_stat(connection).total_sent, 0)
            self.assertGreater(b.global_stat().total_sent, 0)
            b.set_peer_metadata(a.peer_id, {"score": 3})
            self.assertEqual(b.get_peer_metadata(a.peer_id), {"score": 3})
            # the dialled point and the peer are running, with their records
            info = b.pool.points[point_of(a)]
            self.assertEqual(info.to_json()["state"]["event_kind"], "running")
            await b.disconnect(connection, reason="test over")
            await eventually(lambda: not a.connections(), [a])
            self.assertEqual(b.pool.points[point_of(a)].state.kind, "disconnected")

        return self.run_async(scenario)

    def test_hooks_and_events(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            seen: list[str] = []
            events: list[str] = []
            a.on_new_connection(lambda peer, conn: seen.append(f"new {peer}"))
            a.on_disconnection(lambda peer: seen.append(f"gone {peer}"))
            a.watch(lambda event: events.append(event.kind))
            connection = await b.connect(point_of(a))
            await eventually(lambda: len(seen) == 1, [a])
            await connection.disconnect("bye")
            await eventually(lambda: len(seen) == 2, [a])
            self.assertEqual(seen, [f"new {b.peer_id}", f"gone {b.peer_id}"])
            for kind in (
                "incoming_connection",
                "new_peer",
                "accepting_request",
                "connection_established",
                "disconnection",
            ):
                self.assertIn(kind, events)

        return self.run_async(scenario)

    def test_who_closed_is_recorded(self) -> Deferred[None]:
        """
        Point and peer logs say ``disconnection`` on the side that closed and
        ``external_disconnection`` on the other (Octez always says the latter).
        """

        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            connection = await b.connect(point_of(a))
            await eventually(lambda: len(a.connections()) == 1, [a])
            await connection.disconnect("bye")
            await eventually(lambda: a.connections() == [], [a])
            self.assertEqual(b.pool.points[point_of(a)].events[-1].kind, "disconnection")
            self.assertEqual(b.pool.peers[a.peer_id].events[-1].kind, "disconnection")
            self.assertEqual(a.pool.peers[b.peer_id].events[-1].kind, "external_disconnection")

        return self.run_async(scenario)

    def test_connect_errors(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            await b.connect(point_of(a))
            from txtezosp2p.wire.errors import Connected

            self.assertIsInstance(await failure_of(b.connect(point_of(a))), Connected)
            # nobody listens there
            closed = Point("127.0.0.1", 1)
            self.assertIsInstance(await failure_of(b.connect(closed)), ConnectionFailed)
            self.assertEqual(b.pool.points[closed].state.kind, "disconnected")
            self.assertIsNotNone(b.pool.points[closed].last_failed_connection)

        return self.run_async(scenario)

    def test_simultaneous_dials(self) -> Deferred[None]:
        """
        Two nodes dial each other at the same moment: exactly one connection
        survives, the one dialled by the greater peer id, and both pools agree.
        """

        async def scenario() -> None:
            from twisted.internet.defer import DeferredList

            for _ in range(3):
                a, b = await self.net.node(), await self.net.node()
                outcomes = await DeferredList(
                    [a.connect(point_of(b)), b.connect(point_of(a))], consumeErrors=True
                )
                winner = a if a.peer_id.raw > b.peer_id.raw else b
                self.assertEqual([ok for ok, _ in outcomes], [winner is a, winner is b])
                pair = [a, b]

                def one_each(pair: list[P2P] = pair) -> bool:
                    return all(len(n.connections()) == 1 for n in pair)

                await eventually(one_each, pair)
                dialled = winner.connections()[0]
                self.assertFalse(dialled.info.incoming)
                for node in (a, b):
                    other = b if node is a else a
                    self.assertEqual(node.pool.points[point_of(other)].state.kind, "running")

        return self.run_async(scenario)


class ACLTests(P2PTestCase):
    def test_banned_peer(self) -> Deferred[None]:
        """A banned peer is dropped, then refused at the handshake; unbanned, it gets in."""

        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            await b.connect(point_of(a))
            await eventually(lambda: len(a.connections()) == 1, [a])
            a.ban_peer(b.peer_id)
            await eventually(lambda: not a.connections() and not b.connections(), [a, b])
            self.assertIsInstance(await failure_of(b.connect(point_of(a))), P2PError)
            self.assertEqual(a.connections(), [])
            a.unban_peer(b.peer_id)
            await eventually(lambda: b.pool.points[point_of(a)].state.kind == "disconnected", [b])
            await b.connect(point_of(a))

        return self.run_async(scenario)

    def test_banned_point(self) -> Deferred[None]:
        """Banning an address drops its connections and refuses it both ways."""

        async def scenario() -> None:
            a, b = await self.net.node(), await self.net.node()
            await b.connect(point_of(a))
            await eventually(lambda: len(a.connections()) == 1, [a])
            a.ban_point(point_of(b))
            await eventually(lambda: not a.connections(), [a])
            self.assertTrue(a.acl.banned_peer(b.peer_id))
            self.assertIsInstance(await failure_of(a.connect(point_of(b))), PointBanned)
            self.assertIsInstance(await failure_of(b.connect(point_of(a))), P2PError)
            a.trust_point(point_of(b))
            self.assertFalse(a.acl.banned_addr(point_of(b).addr))
            self.assertTrue(a.pool.points[point_of(b)].trusted)

        return self.run_async(scenario)

    def test_greylist_expires(self) -> Deferred[None]:
        """A greylisted address is refused, and accepted again once the greylist expired."""

        async def scenario() -> None:
            clock = Clock()
            a = await self.net.node(clock=clock)
            b = await self.net.node()
            a.greylist_addr("127.0.0.1")
            self.assertIsInstance(await failure_of(b.connect(point_of(a))), P2PError)
            self.assertEqual(a.connections(), [])
            delay = a.limits.ip_greylist_cleanup_delay
            clock.advance(delay * 14 / 16)
            self.assertTrue(a.acl.banned_addr(point_of(b).addr))
            clock.advance(delay * 2 / 16)
            self.assertFalse(a.acl.banned_addr(point_of(b).addr))
            await eventually(lambda: b.pool.points[point_of(a)].state.kind == "disconnected", [b])
            await b.connect(point_of(a))

        return self.run_async(scenario)


class NackTests(P2PTestCase):
    def test_too_many_connections(self) -> Deferred[None]:
        """A full node Nacks with alternatives; the dialler learns them."""

        async def scenario() -> None:
            full = Limits(
                min_connections=0,
                expected_connections=1,
                max_connections=1,
                maintenance_idle_time=None,
            )
            a = await self.net.node(limits=full)
            b, c = await self.net.node(), await self.net.node()
            await b.connect(point_of(a))
            await eventually(lambda: len(a.connections()) == 1, [a])
            error = await failure_of(c.connect(point_of(a)))
            self.assertIsInstance(error, RejectedByNack)
            assert isinstance(error, RejectedByNack)
            self.assertEqual(error.motive, NackMotive.TOO_MANY_CONNECTIONS)
            self.assertIn(point_of(b), error.alternative_points or ())
            # never the dialler's own point
            self.assertNotIn(point_of(c), error.alternative_points or ())
            self.assertIn(point_of(b), c.pool.points)  # learned from the Nack
            self.assertEqual(c.pool.points[point_of(a)].state.kind, "disconnected")

        return self.run_async(scenario)

    def test_wrong_chain(self) -> Deferred[None]:
        async def scenario() -> None:
            a = await self.net.node()
            other = P2P(
                self.net.reactor,
                P2PConfig(
                    identity=unchecked_identity(),
                    versions=Versions("TEZOS_MAINNET"),
                    proof_of_work_target=0.0,
                ),
                Limits(maintenance_idle_time=None),
            )
            await other.activate()
            self.addCleanup(other.shutdown)
            error = await failure_of(other.connect(point_of(a)))
            self.assertIsInstance(error, P2PError)
            # a dialled point that speaks another chain is forgotten
            await eventually(lambda: point_of(a) not in other.pool.points, [other])

        return self.run_async(scenario)


class PrivateModeTests(P2PTestCase):
    def test_private_node(self) -> Deferred[None]:
        """A private node accepts only trusted peers, and is never advertised."""

        async def scenario() -> None:
            b = await self.net.node()
            c = await self.net.node()
            a = await self.net.node(private_mode=True, trusted_points=((point_of(b), None),))
            # only trusted points may be dialled
            self.assertIsInstance(await failure_of(a.connect(point_of(c))), PrivateMode)
            await a.connect(point_of(b))
            await eventually(lambda: len(b.connections()) == 1, [b])
            # an untrusted peer is refused without a Nack
            self.assertIsInstance(await failure_of(c.connect(point_of(a))), P2PError)
            self.assertEqual(len(a.connections()), 1)
            # the private flag is announced and respected: b never shares a's point
            connection = b.connections()[0]
            self.assertTrue(connection.private)
            b.pool.register_point(point_of(a))
            self.assertNotIn(point_of(a), b.pool.list_known_points())
            # a ignores Bootstrap: no Advertise comes back
            self.assertTrue(b.answerer.send_bootstrap(connection.link) is False)
            self.assertTrue(a.connections()[0].try_send(Bootstrap()))
            await c.connect(point_of(b))
            self.assertNotIn(point_of(a), b.pool.list_known_points())

        return self.run_async(scenario)


class MessagingTests(P2PTestCase):
    def test_broadcast_except_alt(self) -> Deferred[None]:
        async def scenario() -> None:
            hub = await self.net.node()
            leaves = [await self.net.node() for _ in range(3)]
            for leaf in leaves:
                await leaf.connect(point_of(hub))
            await eventually(lambda: len(hub.connections()) == 3, [hub])
            skipped, other = leaves[1].peer_id, leaves[2].peer_id
            sent = hub.broadcast(
                None,
                "main",
                except_=lambda conn: conn.peer_id == skipped,
                alt=(lambda conn: conn.peer_id == other, "alternative"),
            )
            self.assertEqual(sent, 2)
            self.assertEqual(await leaves[0].recv(leaves[0].connections()[0]), "main")
            self.assertEqual(await leaves[2].recv(leaves[2].connections()[0]), "alternative")
            # nothing for the excepted one: the next message it gets is a later one
            hub.broadcast(None, "later")
            self.assertEqual(await leaves[1].recv(leaves[1].connections()[0]), "later")

        return self.run_async(scenario)

    def test_recv_any_fair(self) -> Deferred[None]:
        """A peer flooding messages does not starve another one in recv_any."""

        async def scenario() -> None:
            hub = await self.net.node()
            flood, quiet = await self.net.node(), await self.net.node()
            c1 = await flood.connect(point_of(hub))
            c2 = await quiet.connect(point_of(hub))
            for i in range(300):
                flood.try_send(c1, f"flood {i}")
            first = await hub.recv_any()  # the flood has started
            self.assertTrue(str(first[1]).startswith("flood"))
            await eventually(
                lambda: hub.find_connection_by_peer_id(quiet.peer_id) is not None, [hub]
            )
            from_quiet = hub.find_connection_by_peer_id(quiet.peer_id)
            assert from_quiet is not None
            arrived: Deferred[None] = Deferred()
            notify = from_quiet.on_app_message
            assert notify is not None

            def counting(connection: Any) -> None:
                notify(connection)
                if len(connection.app_queue) == 5 and not arrived.called:
                    arrived.callback(None)

            from_quiet.on_app_message = counting
            for i in range(5):
                await quiet.send(c2, f"quiet {i}")
            await arrived  # all five queued at the hub, next to the flood
            order = []
            for _ in range(40):
                _, message = await hub.recv_any()
                order.append(str(message))
            quiet_positions = [i for i, m in enumerate(order) if m.startswith("quiet")]
            self.assertEqual(len(quiet_positions), 5)
            # served in turn: the quiet peer's messages alternate with the flood's
            self.assertLessEqual(quiet_positions[0], 1)
            self.assertEqual(
                [b - a for a, b in itertools.pairwise(quiet_positions)],
                [2, 2, 2, 2],
            )

        return self.run_async(scenario)


class NetworkOfTenTests(P2PTestCase):
    timeout = 120

    def test_ten_nodes(self) -> Deferred[None]:
        """
        Ten nodes started from one bootstrap point learn every other node's
        point through Advertise, and a broadcast reaches every connected node.
        """

        async def scenario() -> None:
            nodes = [await self.net.node() for _ in range(10)]
            bootstrap = nodes[0]
            for node in nodes[1:]:
                await node.connect(point_of(bootstrap))
            await eventually(lambda: len(bootstrap.connections()) == 9, [bootstrap])
            for node in nodes[1:]:
                self.assertEqual(node.send_bootstrap(), 1)
            everyone = {point_of(n) for n in nodes}

            def full_knowledge() -> bool:
                return all(everyone - {point_of(n)} <= set(n.pool.points) for n in nodes)

            await eventually(full_knowledge, nodes)
            # and everyone can reach everyone: connect the leaves to each other
            for i, node in enumerate(nodes[1:], 1):
                for other in nodes[1:i]:
                    await node.connect(point_of(other))
            await eventually(lambda: all(len(n.connections()) == 9 for n in nodes), nodes)
            for sender in (nodes[0], nodes[5]):
                self.assertEqual(sender.broadcast(None, f"hello from {sender.peer_id}"), 9)
                for node in nodes:
                    if node is sender:
                        continue
                    connection = node.find_connection_by_peer_id(sender.peer_id)
                    assert connection is not None
                    self.assertEqual(await node.recv(connection), f"hello from {sender.peer_id}")

        return self.run_async(scenario)


class HostilePeerTests(P2PTestCase):
    """Bad actors are greylisted, and the node keeps serving honest peers."""

    async def victim(self) -> P2P:
        return await self.net.node(pow_target=8.0, identity=_mined())

    def attacker_config(self, identity: Identity, **overrides: Any) -> SessionConfig:
        from txtezosp2p.wire.encoding import P2PMessageCodec

        params: dict[str, Any] = {
            "identity": identity,
            "versions": VERSIONS,
            "codec": P2PMessageCodec(),
            "pow_target": 0.0,
            "advertised_port": 1,
        }
        params.update(overrides)
        return SessionConfig(**params)

    async def attack(self, victim: P2P, session: Session, source: str) -> Session:
        endpoint = TCP4ClientEndpoint(
            self.net.reactor, "127.0.0.1", point_of(victim).port, bindAddress=(source, 0)
        )
        await connectProtocol(endpoint, session)
        self.addCleanup(session.close)
        return session

    async def still_serves(self, victim: P2P) -> None:
        honest = await self.net.node(identity=_mined())
        connection = await honest.connect(point_of(victim))
        await honest.send(connection, "still there?")
        await eventually(lambda: len(victim.connections()) >= 1, [victim])

    def test_bad_proof_of_work(self) -> Deferred[None]:
        async def scenario() -> None:
            victim = await self.victim()
            session = Session(
                self.attacker_config(weak_identity(8.0)), self.net.reactor, incoming=False
            )
            await self.attack(victim, session, "127.0.0.2")
            self.assertIsInstance(await failure_of(session.when_established()), P2PError)
            await eventually(lambda: victim.acl.banned_addr("127.0.0.2"), [victim])
            await self.still_serves(victim)

        return self.run_async(scenario)

    def test_garbled_chunks(self) -> Deferred[None]:
        async def scenario() -> None:
            victim = await self.victim()
            session = Session(self.attacker_config(_mined()), self.net.reactor, incoming=False)
            await self.attack(victim, session, "127.0.0.3")
            await session.when_established()
            assert session.transport is not None
            session.transport.write(b"\x00\x20" + os.urandom(32))  # a chunk that does not decipher
            await eventually(lambda: victim.acl.banned_addr("127.0.0.3"), [victim])
            self.assertTrue(victim.acl.banned_peer(session.config.identity.peer_id))
            await self.still_serves(victim)

        return self.run_async(scenario)

    def test_oversized_message(self) -> Deferred[None]:
        async def scenario() -> None:
            victim = await self.victim()
            session = Session(self.attacker_config(_mined()), self.net.reactor, incoming=False)
            await self.attack(victim, session, "127.0.0.4")
            await session.when_established()
            # a record announcing 200 MiB: refused at its 4-byte prefix
            await session.raw_write_sync((200 << 20).to_bytes(4, "big") + b"\x10\x00")
            await eventually(lambda: victim.acl.banned_addr("127.0.0.4"), [victim])
            await self.still_serves(victim)

        return self.run_async(scenario)

    def test_too_many_alternative_points(self) -> Deferred[None]:
        """A peer whose Nack lists more than 100 points is greylisted by the dialler."""

        async def scenario() -> None:
            victim = await self.victim()
            attacker = P2P(
                self.net.reactor,
                P2PConfig(
                    identity=_mined(),
                    versions=VERSIONS,
                    listen=("tcp:0:interface=127.0.0.5",),
                    proof_of_work_target=0.0,
                ),
                Limits(maintenance_idle_time=None),
            )
            points = [Point(f"10.0.{i // 250}.{i % 250 + 1}", 9732) for i in range(101)]
            listed = b"".join(_binary.put_dynamic(p.to_text().encode()) for p in points)
            crafted = b"\x01" + _binary.put_int16(1) + _binary.put_uint30(len(listed)) + listed

            def lying_nack(session: Session, decision: Reject) -> None:
                assert session._cipher is not None
                session._send(session._cipher.seal(crafted))
                session._nack_sent = True

            self.patch(Session, "_send_nack", lying_nack)
            original = attacker.handler.decide
            self.patch(
                attacker.handler,
                "decide",
                lambda s, info: (
                    Reject(
                        NackMotive.TOO_MANY_CONNECTIONS,
                        Rejected(info.peer_id, NackMotive.TOO_MANY_CONNECTIONS),
                    )
                    if s.config.identity == attacker.config.identity
                    else original(s, info)
                ),
            )
            await attacker.activate()
            self.addCleanup(attacker.shutdown)
            assert attacker.listening_port is not None
            target = Point("127.0.0.5", attacker.listening_port)
            self.assertIsInstance(await failure_of(victim.connect(target)), P2PError)
            self.assertTrue(victim.acl.banned_addr("127.0.0.5"))
            self.assertFalse(any(p in victim.pool.points for p in points))

        return self.run_async(scenario)

    def test_flood_of_advertise(self) -> Deferred[None]:
        """An Advertise over 100 points is a decoding error: the peer is greylisted."""

        async def scenario() -> None:
            victim = await self.victim()
            session = Session(self.attacker_config(_mined()), self.net.reactor, incoming=False)
            await self.attack(victim, session, "127.0.0.6")
            await session.when_established()
            points = b"".join(
                _binary.put_dynamic(f"10.1.{i // 250}.{i % 250 + 1}:1".encode()) for i in range(101)
            )
            await session.raw_write_sync(_binary.put_uint30(2 + len(points)) + b"\x00\x03" + points)
            await eventually(lambda: victim.acl.banned_addr("127.0.0.6"), [victim])
            await self.still_serves(victim)
            self.assertFalse(victim.pool.points.keys() & {Point("10.1.0.1", 1)})

        return self.run_async(scenario)


def _mined() -> Identity:
    """A fresh identity reaching difficulty 8 (cheap to mine)."""
    from txtezosp2p.identity import generate_identity

    return generate_identity(8.0, workers=1)


class FakedNetworkTests(SynchronousTestCase):
    def test_faked_network(self) -> None:
        net = faked_network()
        verifyObject(IP2P, net)
        stranger = cast(P2PConnection, object())  # a faked network has no connection
        self.failureResultOf(net.connect(Point("127.0.0.1", 9732)), ConnectionFailed)
        self.failureResultOf(net.send(stranger, "x"), ConnectionClosed)
        self.assertFalse(net.try_send(stranger, "x"))
        self.assertNoResult(net.recv(stranger))
        self.assertNoResult(net.recv_any())
        self.assertEqual(net.broadcast(None, "x"), 0)
        self.assertEqual(net.connections(), [])
        self.assertEqual(net.global_stat().total_sent, 0)
        self.successResultOf(net.maintain())
        self.successResultOf(net.disconnect(stranger))
        self.successResultOf(net.activate())
        self.successResultOf(net.shutdown())

    def test_advertise_import(self) -> None:
        # Advertise is re-exported for embedders' convenience in tests above
        self.assertEqual(Advertise((Point("1.2.3.4", 1),)).points[0].port, 1)
        self.assertEqual(encode_ack.__name__, "encode_ack")


class NoCycleTests(TestCase):
    """
    A finished connection of a node (its session, the IO scheduler's
    wrapper, the answerer's link) is freed by reference counting: the
    garbage collector has nothing to do per connection.
    """

    async def test_freed_without_gc(self) -> None:
        import gc
        import weakref

        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        net = Network(self)
        a, b = await net.node(), await net.node()
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        connection = await a.connect(point_of(b))
        await eventually(lambda: len(b.connections()) == 1, [b])
        remote = b.connections()[0]
        parts = [connection, connection.session, connection.session.transport]
        parts += [remote, remote.session, remote.session.transport]
        refs = [weakref.ref(part) for part in parts]
        del parts, remote
        await connection.disconnect()
        del connection
        await eventually(lambda: not a.connections() and not b.connections(), [a, b])
        for _ in range(3):  # let the closing calls return
            await deferLater(reactor, 0, lambda: None)
        self.assertEqual([ref() for ref in refs], [None] * len(refs))
