# -*- test-case-name: tests.test_maintenance -*-
"""
The maintenance worker (behaviour.md section 4) on real loopback sockets
with a simulated clock: too few, too many, inside the band, private mode,
triggers, the idle period, ``roll``; and a twelve-node network that keeps
every node within its bounds, also after a third of the nodes restart.

Timers (the idle period, the 5 s wait for news, reconnection delays) run on
one shared ``task.Clock``.  The only time the tests move is when every node
is quiet: no handshake under way and every maintenance worker waiting for
the clock or a trigger.  Quietness is observed through pool events and the
worker's own notifications, never by sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.connect_handler import ConnectionBounds
from txtezosp2p.limits import Limits
from txtezosp2p.maintenance import LOOKING_FOR_PEERS, MaintenanceService, first_of
from txtezosp2p.p2p import P2P, P2PConfig
from txtezosp2p.pool_state import ReconnectionConfig
from txtezosp2p.testing import unchecked_identity
from txtezosp2p.wire.errors import MaintenanceDisabled
from txtezosp2p.wire.ids import Point

from .test_p2p import VERSIONS, Network, eventually, point_of

#: Fast reconnection for tests: a closed connection may be retried after 2 s.
RECONNECTION = ReconnectionConfig(initial_delay=1.0, disconnection_delay=2.0)


def band_limits(
    low: int, expected: int, high: int, idle: float | None = 30.0, admission: str = "octez"
) -> Limits:
    """
    Limits for these tests, which check Octez's maintenance (behaviour.md
    section 4): Octez's admission rule unless told otherwise (the elastic
    rule has its own tests in tests/test_admission.py).
    """
    return Limits(
        min_connections=low,
        expected_connections=expected,
        max_connections=high,
        maintenance_idle_time=idle,
        swap_linger=None,
        admission=admission,
    )


QUIET_STATES = frozenset({"trigger", "news", "backoff"})


def is_quiet(node: P2P) -> bool:
    maintenance = node.maintenance
    working = maintenance is not None and maintenance.running
    return node.handler.handshakes_in_flight == 0 and (
        not working or (maintenance is not None and maintenance.waiting_for in QUIET_STATES)
    )


async def quiet(nodes: list[P2P]) -> None:
    """Wait until no node has a handshake under way and every worker waits for time or news."""
    if all(is_quiet(n) for n in nodes):
        return
    done: Deferred[None] = Deferred()

    def check(_: object) -> None:
        if not done.called and all(is_quiet(n) for n in nodes):
            done.callback(None)

    stops = [node.watch(check) for node in nodes]
    stops += [n.maintenance.observe(check) for n in nodes if n.maintenance is not None]
    try:
        await done
    finally:
        for stop in stops:
            stop()


async def calm(nodes: list[P2P], idle_turns: int = 3, max_turns: int = 20_000) -> None:
    """
    Wait until the nodes are quiet and stay so for ``idle_turns`` reactor
    turns with no pool event: messages under way on loopback (a Bootstrap,
    its Advertise) are delivered within a turn, so by then nothing moves
    until the clock does.  Counts turns, never time.
    """
    from twisted.internet import reactor

    seen = [0]

    def count(_: object) -> None:
        seen[0] += 1

    stops = [node.watch(count) for node in nodes]
    stops += [n.maintenance.observe(count) for n in nodes if n.maintenance is not None]
    try:
        idle = 0
        for _ in range(max_turns):
            await quiet(nodes)
            before = seen[0]
            await deferLater(reactor, 0, lambda: None)  # one reactor turn, no delay
            idle = idle + 1 if seen[0] == before and all(is_quiet(n) for n in nodes) else 0
            if idle >= idle_turns:
                return
        raise AssertionError(f"still busy after {max_turns} reactor turns")
    finally:
        for stop in stops:
            stop()


async def settle(
    clock: Clock, nodes: list[P2P], predicate: Callable[[], bool], rounds: int = 200
) -> int:
    """
    Let the network work, moving the clock by the 5 s news wait whenever it
    is calm, until ``predicate`` holds when calm; returns the rounds used.
    """
    for used in range(rounds):
        await calm(nodes)
        if predicate():
            return used
        clock.advance(LOOKING_FOR_PEERS)
    raise AssertionError(f"not settled after {rounds} rounds")


class MaintenanceTestCase(TestCase):
    timeout = 120

    def setUp(self) -> None:
        self.net = Network(self)
        self.clock = Clock()

    def run_async(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> Deferred[None]:
        return Deferred.fromCoroutine(scenario())

    async def node(self, limits: Limits | None = None, **config: Any) -> P2P:
        config.setdefault("reconnection", RECONNECTION)
        return await self.net.node(
            limits=limits or Limits(maintenance_idle_time=None), clock=self.clock, **config
        )

    async def others(self, count: int) -> list[P2P]:
        return [await self.node() for _ in range(count)]


class TooFewTests(MaintenanceTestCase):
    def test_contacts_up_to_max_target(self) -> Deferred[None]:
        """Short of peers, the worker dials up to ``max_target - n`` candidates at once."""

        async def scenario() -> None:
            others = await self.others(8)
            limits = band_limits(2, 5, 8)
            bounds = ConnectionBounds.of(limits)
            self.assertEqual((bounds.min_target, bounds.max_target), (4, 6))
            node = await self.node(
                limits, trusted_points=tuple((point_of(o), None) for o in others)
            )
            assert node.maintenance is not None
            await node.maintain()
            self.assertEqual(len(node.connections()), bounds.max_target)
            self.assertGreaterEqual(node.maintenance.steps, 1)

        return self.run_async(scenario)

    def test_asks_peers_for_points(self) -> Deferred[None]:
        """
        Out of candidates, it sends Bootstrap to its peers and wakes discovery;
        the Advertise answer brings new points, which it then dials.
        """

        async def scenario() -> None:
            hub = await self.node()
            leaves = await self.others(3)
            for leaf in leaves:
                await leaf.connect(point_of(hub))
            node = await self.node(band_limits(3, 3, 6), trusted_points=((point_of(hub), None),))
            assert node.maintenance is not None
            woken: list[None] = []
            node.maintenance.wake_discovery = lambda: woken.append(None)
            await node.maintain()
            self.assertGreaterEqual(len(node.connections()), 3)
            self.assertTrue(woken)
            self.assertLessEqual({point_of(leaf) for leaf in leaves}, set(node.pool.points))

        return self.run_async(scenario)

    def test_waits_for_news_then_retries(self) -> Deferred[None]:
        """With nobody to ask, it waits 5 s of the clock and tries again."""

        async def scenario() -> None:
            node = await self.node(band_limits(1, 1, 2))
            maintenance = node.maintenance
            assert maintenance is not None
            await quiet([node])
            self.assertEqual(maintenance.waiting_for, "news")
            other = await self.node()
            node.pool.register_point(point_of(other))  # known, but no new_point trigger
            self.clock.advance(LOOKING_FOR_PEERS)
            await node.maintain()
            self.assertEqual(len(node.connections()), 1)

        return self.run_async(scenario)

    def test_skips_points_in_their_reconnection_delay(self) -> Deferred[None]:
        """A point that just failed is not dialled again before its delay (section 5)."""

        async def scenario() -> None:
            other = await self.node()
            target = point_of(other)
            await other.shutdown()  # nothing listens there any more
            node = await self.node(band_limits(1, 1, 2), trusted_points=((target, None),))
            await quiet([node])
            info = node.pool.points[target]
            self.assertIsNotNone(info.last_failed_connection)
            assert info.reconnection is not None
            failures = len([e for e in info.events if e.kind == "request_rejected"])
            # before the delay is over, more rounds do not dial it again
            self.clock.advance(min(LOOKING_FOR_PEERS, info.reconnection.delay) / 2)
            await quiet([node])
            self.assertEqual(
                len([e for e in info.events if e.kind == "request_rejected"]), failures
            )

        return self.run_async(scenario)

    def test_private_mode_dials_only_trusted_points(self) -> Deferred[None]:
        async def scenario() -> None:
            trusted, untrusted = await self.others(2)
            node = await self.node(
                band_limits(2, 2, 4),
                private_mode=True,
                trusted_points=((point_of(trusted), None),),
            )
            node.pool.register_point(point_of(untrusted))
            await quiet([node])
            self.assertEqual([c.point for c in node.connections()], [point_of(trusted)])
            assert node.maintenance is not None
            self.assertEqual(node.maintenance.waiting_for, "backoff")

        return self.run_async(scenario)


class CandidateOrderTests(SynchronousTestCase):
    def test_never_missed_first_then_oldest_miss(self) -> None:
        from twisted.internet import reactor

        clock = Clock()
        node = P2P(
            reactor,
            P2PConfig(identity=unchecked_identity(), versions=VERSIONS, reconnection=RECONNECTION),
            band_limits(1, 5, 10),
            clock=clock,
        )
        maintenance = node.maintenance
        assert maintenance is not None
        points = [Point("127.0.0.1", 1000 + i) for i in range(4)]
        infos = [node.pool.register_point(p) for p in points]
        for info, when in ((infos[0], 50.0), (infos[1], 10.0), (infos[3], 30.0)):
            clock.advance(when - clock.seconds()) if when > clock.seconds() else None
            info.set_requested(when)
            info.set_disconnected(when, RECONNECTION)
        clock.advance(100.0)
        chosen = maintenance._connectable(clock.seconds(), 10, set())
        self.assertEqual([i.point for i in chosen], [points[2], points[1], points[3], points[0]])
        # the maximum count, points missed since the step started, and the seen set
        self.assertEqual(len(maintenance._connectable(clock.seconds(), 2, set())), 2)
        self.assertEqual(maintenance._connectable(0.0, 10, set()), [infos[2]])
        self.assertEqual(maintenance._connectable(clock.seconds(), 10, set(points)), [])

    def test_banned_points_are_never_candidates(self) -> None:
        from twisted.internet import reactor

        node = P2P(
            reactor,
            P2PConfig(identity=unchecked_identity(), versions=VERSIONS),
            band_limits(1, 5, 10),
            clock=Clock(),
        )
        assert node.maintenance is not None
        node.pool.register_point(Point("127.0.0.9", 1))
        node.acl.ban_addr(Point("127.0.0.9", 1).addr)
        self.assertEqual(node.maintenance._connectable(0.0, 10, set()), [])


class TooManyTests(MaintenanceTestCase):
    def test_closes_down_to_max_target_keeping_private_trusted(self) -> Deferred[None]:
        """
        Over ``max_threshold``, random connections are closed down to
        ``max_target``; a private peer we trust is never one of them.
        """

        async def scenario() -> None:
            limits = band_limits(1, 1, 7)
            bounds = ConnectionBounds.of(limits)
            self.assertEqual((bounds.max_target, bounds.max_threshold), (3, 5))
            node = await self.node(limits)
            keeper = await self.node(private_mode=True, trusted_points=((point_of(node), None),))
            node.trust_peer(keeper.peer_id)
            await keeper.connect(point_of(node))
            for other in await self.others(6):
                try:
                    await other.connect(point_of(node))
                except Exception:
                    pass  # closed by maintenance or refused: both are fine
            await node.maintain()
            await quiet([node])
            count = len(node.connections())
            self.assertGreaterEqual(count, bounds.min_threshold)
            self.assertLessEqual(count, bounds.max_threshold)
            self.assertIsNotNone(node.find_connection_by_peer_id(keeper.peer_id))

        return self.run_async(scenario)


class BandTests(MaintenanceTestCase):
    def test_swap_request_inside_the_band(self) -> Deferred[None]:
        async def scenario() -> None:
            others = await self.others(2)
            node = await self.node(
                band_limits(1, 2, 4), trusted_points=tuple((point_of(o), None) for o in others)
            )
            events: list[str] = []
            node.watch(lambda e: events.append(e.kind))
            await node.maintain()
            self.assertEqual(len(node.connections()), 2)
            # the idle period runs a step that finds the count in the band
            self.clock.advance(30.0)
            await quiet([node])
            self.assertIn("swap_request_sent", events)

        return self.run_async(scenario)

    def test_no_swap_in_private_mode(self) -> Deferred[None]:
        async def scenario() -> None:
            others = await self.others(2)
            node = await self.node(
                band_limits(1, 2, 4),
                private_mode=True,
                trusted_points=tuple((point_of(o), None) for o in others),
            )
            events: list[str] = []
            node.watch(lambda e: events.append(e.kind))
            await node.maintain()
            self.clock.advance(30.0)
            await quiet([node])
            self.assertNotIn("swap_request_sent", events)

        return self.run_async(scenario)


class ExplorationTests(MaintenanceTestCase):
    """Inside the band, the elastic policy dials one new point per step up to the expected count."""

    async def _dropped_two(self, admission: str) -> tuple[P2P, list[P2P]]:
        others = await self.others(5)
        node = await self.node(
            band_limits(1, 5, 10, admission=admission),
            trusted_points=tuple((point_of(o), None) for o in others),
        )
        await node.maintain()
        self.assertEqual(len(node.connections()), 5)
        for connection in node.connections()[:2]:
            await connection.disconnect()
        await quiet([node])
        self.assertEqual(len(node.connections()), 3)  # inside the band (2..9)
        return node, others

    def test_elastic_explores_up_to_expected(self) -> Deferred[None]:
        async def scenario() -> None:
            node, _ = await self._dropped_two("elastic")
            counts = []
            for _ in range(3):
                self.clock.advance(30.0)  # one idle step each
                await calm([node])
                counts.append(len(node.connections()))
            self.assertEqual(counts, [4, 5, 5])

        return self.run_async(scenario)

    def test_octez_rests_inside_the_band(self) -> Deferred[None]:
        async def scenario() -> None:
            node, _ = await self._dropped_two("octez")
            for _ in range(3):
                self.clock.advance(30.0)
                await calm([node])
            self.assertEqual(len(node.connections()), 3)

        return self.run_async(scenario)


class TriggerTests(MaintenanceTestCase):
    def test_idle_period_runs_a_step(self) -> Deferred[None]:
        async def scenario() -> None:
            node = await self.node(band_limits(0, 0, 4, idle=30.0))
            maintenance = node.maintenance
            assert maintenance is not None
            await quiet([node])
            steps = maintenance.steps
            self.clock.advance(29.0)
            self.assertEqual(maintenance.steps, steps)
            self.clock.advance(1.0)
            self.assertEqual(maintenance.steps, steps + 1)

        return self.run_async(scenario)

    def test_lost_connection_triggers_a_step(self) -> Deferred[None]:
        """A peer leaving makes the count too low: a step runs at once, no timer needed."""

        async def scenario() -> None:
            first, second, spare = await self.others(3)
            node = await self.node(
                band_limits(2, 2, 4),
                trusted_points=((point_of(first), None), (point_of(second), None)),
            )
            await node.maintain()
            node.pool.register_point(point_of(spare))
            connection = node.find_connection_by_peer_id(first.peer_id)
            assert connection is not None
            await first.shutdown()
            await eventually(
                lambda: (
                    node.find_connection_by_peer_id(first.peer_id) is None
                    and node.find_connection_by_peer_id(spare.peer_id) is not None
                ),
                [node],
            )
            self.assertEqual(len(node.connections()), 2)

        return self.run_async(scenario)

    def test_maintain_without_maintenance(self) -> Deferred[None]:
        async def scenario() -> None:
            node = await self.node(Limits(maintenance_idle_time=None))
            self.assertIsNone(node.maintenance)
            with self.assertRaises(MaintenanceDisabled):
                await node.maintain()
            with self.assertRaises(MaintenanceDisabled):
                await node.roll()

        return self.run_async(scenario)

    def test_stop_releases_maintain_waiters(self) -> Deferred[None]:
        async def scenario() -> None:
            node = await self.node(band_limits(2, 2, 4))
            waiter = node.maintain()
            self.assertFalse(waiter.called)
            await node.shutdown()
            self.assertIsNone(self.successResultOf(waiter))
            assert node.maintenance is not None
            self.assertFalse(node.maintenance.running)
            self.assertEqual(self.clock.getDelayedCalls(), [])

        return self.run_async(scenario)


class RollTests(MaintenanceTestCase):
    def test_roll_replaces_a_connection(self) -> Deferred[None]:
        async def scenario() -> None:
            others = await self.others(5)
            node = await self.node(
                band_limits(3, 3, 3), trusted_points=((point_of(others[0]), None),)
            )
            for other in others[1:]:
                node.pool.register_point(point_of(other))
            await node.maintain()
            before = {c.point for c in node.connections()}
            self.assertEqual(len(before), 3)
            self.assertEqual(await node.roll(), 1)
            after = {c.point for c in node.connections()}
            self.assertEqual(len(after), 3)
            self.assertEqual(len(before - after), 1)
            # never the trusted point
            self.assertIn(point_of(others[0]), after)

        return self.run_async(scenario)

    def test_roll_with_nothing_to_roll(self) -> Deferred[None]:
        async def scenario() -> None:
            node = await self.node(band_limits(0, 0, 2))
            self.assertEqual(await node.roll(), 0)

        return self.run_async(scenario)


class FirstOfTests(SynchronousTestCase):
    def test_first_wins_others_cancelled(self) -> None:
        a: Deferred[None] = Deferred()
        b: Deferred[None] = Deferred()
        result = first_of({"a": a, "b": b})
        b.callback(None)
        self.assertEqual(self.successResultOf(result), "b")
        self.assertTrue(a.called)  # cancelled (the failure is consumed)

    def test_failure_propagates(self) -> None:
        a: Deferred[None] = Deferred()
        result = first_of({"a": a, "b": Deferred()})
        a.errback(ValueError("boom"))
        self.failureResultOf(result, ValueError)

    def test_cancel_cancels_all(self) -> None:
        a: Deferred[None] = Deferred()
        b: Deferred[None] = Deferred()
        result = first_of({"a": a, "b": b})
        result.cancel()
        self.assertTrue(a.called and b.called)
        self.failureResultOf(result)

    def test_already_fired(self) -> None:
        self.assertEqual(self.successResultOf(first_of({"x": succeed(None)})), "x")

    def test_maintenance_disabled_by_limits(self) -> None:
        from txtezosp2p.answerer import Answerer

        node = P2P(
            Clock(),
            P2PConfig(identity=unchecked_identity(), versions=VERSIONS),
            Limits(maintenance_idle_time=None),
            clock=Clock(),
        )
        answerer = Answerer(node.pool, Clock())
        with self.assertRaises(MaintenanceDisabled):
            MaintenanceService(
                Clock(),
                node.pool,
                node.connect,
                answerer,
                Limits(maintenance_idle_time=None),
            )


class TwelveNodesTests(MaintenanceTestCase):
    """The issue's network: twelve nodes bootstrapped from one point."""

    timeout = 300

    def test_twelve_nodes_stay_in_bounds(self) -> Deferred[None]:
        async def scenario() -> None:
            limits = band_limits(3, 5, 8)
            bounds = ConnectionBounds.of(limits)
            bootstrap = await self.node(limits)
            seed = ((point_of(bootstrap), None),)
            nodes = [bootstrap] + [await self.node(limits, trusted_points=seed) for _ in range(11)]

            def in_bounds() -> bool:
                return all(
                    limits.min_connections <= len(n.connections()) <= limits.max_connections
                    for n in nodes
                )

            await settle(self.clock, nodes, in_bounds)
            self.assertTrue(all(len(n.connections()) <= bounds.max_threshold for n in nodes))

            # stop a third of the nodes (not the bootstrap one) and restart them
            rng = random.Random(5)
            leaving = rng.sample(nodes[1:], 4)
            ports = {id(n): n.listening_port for n in leaving}
            for node in leaving:
                await node.shutdown()
                nodes.remove(node)
            await settle(self.clock, nodes, in_bounds)
            for old in leaving:
                nodes.append(
                    await self.node(
                        limits,
                        identity=old.config.identity,
                        trusted_points=seed,
                        listen=f"tcp:{ports[id(old)]}:interface=127.0.0.1",
                    )
                )
            await settle(self.clock, nodes, in_bounds)
            for node in nodes:
                self.assertGreaterEqual(len(node.connections()), limits.min_connections)
                self.assertLessEqual(len(node.connections()), limits.max_connections)

        return self.run_async(scenario)
