# -*- test-case-name: tests.test_admission -*-
"""
The admission policies (:mod:`txtezosp2p.admission`): Octez's threshold
and the elastic rule, their victims, and the issue's twelve nodes joining
one after the other over real loopback sockets, all of which reach
``min_connections`` under the elastic rule (that Octez's rule starves the
last two is shown, deterministically, by the simulator in
tests/test_simulation.py: over sockets, which nodes end full depends on
the order handshakes happen to finish).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from txtezosp2p.admission import (
    ElasticAdmission,
    OctezAdmission,
    admission_policy,
    network_group,
)
from txtezosp2p.interfaces import IAdmissionPolicy
from txtezosp2p.limits import ConnectionBounds, Limits
from txtezosp2p.maintenance import LOOKING_FOR_PEERS
from txtezosp2p.p2p import P2P
from txtezosp2p.wire.ids import ConnectionId, to_ipv6

from .test_maintenance import RECONNECTION, calm
from .test_p2p import Network, point_of


@attrs.define
class _Info:
    trusted: bool = False


@attrs.define(eq=False)
class _Conn:
    """The fields of a running connection the policies read."""

    address: str
    established_at: float = 0.0
    incoming: bool = True
    private: bool = False
    point_info: _Info | None = attrs.field(factory=_Info)
    peer_info: _Info | None = attrs.field(factory=_Info)

    @property
    def id_point(self) -> ConnectionId:
        return ConnectionId(to_ipv6(self.address), 9732)


class PolicyTests(SynchronousTestCase):
    def test_policies_from_limits(self) -> None:
        limits = Limits(min_connections=3, expected_connections=6, max_connections=9)
        elastic = admission_policy(limits)
        octez = admission_policy(limits.replace(admission="octez"))
        for policy in (elastic, octez):
            verifyObject(IAdmissionPolicy, policy)
        self.assertIsInstance(elastic, ElasticAdmission)
        assert isinstance(octez, OctezAdmission)
        self.assertEqual(octez.threshold, ConnectionBounds.of(limits).max_threshold)
        without_maintenance = limits.replace(admission="octez", maintenance_idle_time=None)
        self.assertEqual(admission_policy(without_maintenance, maintenance=False).threshold, 9)  # type: ignore[attr-defined]
        with self.assertRaises(ValueError):
            Limits(admission="lenient")

    def test_network_groups(self) -> None:
        self.assertEqual(network_group(to_ipv6("8.8.4.4")), network_group(to_ipv6("8.8.8.8")))
        self.assertNotEqual(network_group(to_ipv6("8.8.4.4")), network_group(to_ipv6("8.9.4.4")))
        self.assertEqual(
            network_group(to_ipv6("2001:4860::1")), network_group(to_ipv6("2001:4860:1::1"))
        )
        for local in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "::1", "fe80::1"):
            self.assertIsNone(network_group(to_ipv6(local)), local)

    def test_octez_room(self) -> None:
        policy = OctezAdmission(8)
        self.assertTrue(policy.has_room(7, 5, to_ipv6("8.8.8.8"), []))  # in-flight not counted
        self.assertFalse(policy.has_room(8, 0, to_ipv6("8.8.8.8"), []))

    def test_elastic_room(self) -> None:
        policy = ElasticAdmission(max_threshold=8, max_connections=10, grace=30)
        peers = [_Conn(f"{n}.1.1.1") for n in range(1, 9)]
        newcomer = to_ipv6("100.1.1.1")
        self.assertTrue(policy.has_room(7, 0, newcomer, peers[:7]))
        # above max_threshold: only a new network group gets in
        self.assertTrue(policy.has_room(8, 0, newcomer, peers))
        self.assertFalse(policy.has_room(8, 0, to_ipv6("1.1.200.200"), peers))
        self.assertTrue(policy.has_room(8, 0, to_ipv6("127.0.0.1"), peers))
        # handshakes already accepted count: never beyond max_connections
        self.assertFalse(policy.has_room(8, 2, newcomer, peers))
        self.assertFalse(policy.has_room(10, 0, newcomer, peers))

    def test_exploration(self) -> None:
        """The elastic policy dials one more point inside the band below the expected count."""
        elastic = admission_policy(Limits(min_connections=5, expected_connections=10))
        self.assertEqual([elastic.exploration(n) for n in (5, 9, 10, 12)], [1, 1, 0, 0])
        octez = admission_policy(
            Limits(min_connections=5, expected_connections=10, admission="octez")
        )
        self.assertEqual([octez.exploration(n) for n in (5, 9, 10, 12)], [0, 0, 0, 0])

    def test_octez_victims(self) -> None:
        keeper = _Conn("1.1.1.1", private=True, point_info=_Info(trusted=True))
        others = [_Conn(f"{n}.1.1.1") for n in range(2, 6)]
        victims = OctezAdmission(8).victims([keeper, *others], 10, 0.0, random.Random(1))
        self.assertEqual(len(victims), 4)
        self.assertNotIn(keeper, victims)

    def test_elastic_victims(self) -> None:
        """Crowded groups first, then past the grace, then incoming; never trusted or the core."""
        policy = ElasticAdmission(max_threshold=8, max_connections=10, grace=30, core=1)
        oldest = _Conn("1.1.1.1", established_at=0)
        trusted = _Conn("2.1.1.1", established_at=1, peer_info=_Info(trusted=True))
        sybils = [_Conn(f"203.0.0.{n}", established_at=99) for n in range(3)]
        outgoing = _Conn("3.1.1.1", established_at=5, incoming=False)
        old = _Conn("4.1.1.1", established_at=5)
        young = _Conn("5.1.1.1", established_at=95)
        everyone = [oldest, trusted, *sybils, outgoing, old, young]
        victims = policy.victims(everyone, 10, 100.0, random.Random(2))
        # two of the three from one /16 go first; the last one is then a group of
        # its own, ranked like the others: past the grace (incoming, then
        # outgoing) before those within it
        self.assertEqual(len(set(victims[:2]) & set(sybils)), 2)
        self.assertEqual(victims[2:4], [old, outgoing])
        self.assertEqual(set(victims[4:]), {young, *(set(sybils) - set(victims[:2]))})
        self.assertEqual(policy.victims(everyone, 2, 100.0, random.Random(2))[:2], victims[:2])


class TwelveNodesTests(TestCase):
    """
    The issue's network on real sockets: twelve nodes with ``--connections 6``
    (min 3, max 9), each given only node 0 as a peer, joining 5 s apart, a
    maintenance period of 25 s, on a simulated clock.
    """

    timeout = 300

    def setUp(self) -> None:
        self.net = Network(self)
        self.clock = Clock()

    async def network(self, admission: str) -> tuple[list[P2P], Limits]:
        limits = Limits(
            min_connections=3,
            expected_connections=6,
            max_connections=9,
            maintenance_idle_time=25.0,
            admission=admission,
        )

        async def node(**config: Any) -> P2P:
            return await self.net.node(
                limits=limits, clock=self.clock, reconnection=RECONNECTION, **config
            )

        first = await node()
        nodes = [first]
        seed = ((point_of(first), None),)
        for _ in range(11):
            await calm(nodes)
            self.clock.advance(5.0)
            nodes.append(await node(trusted_points=seed))
        return nodes, limits

    async def run_periods(self, nodes: list[P2P], periods: float) -> None:
        for _ in range(round(periods * 25.0 / LOOKING_FOR_PEERS)):
            await calm(nodes)
            self.clock.advance(LOOKING_FOR_PEERS)
        await calm(nodes)

    def run_async(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> Deferred[None]:
        return Deferred.fromCoroutine(scenario())

    def test_elastic_admits_every_late_node(self) -> Deferred[None]:
        async def scenario() -> None:
            nodes, limits = await self.network("elastic")
            await self.run_periods(nodes, 3)
            counts = [len(n.connections()) for n in nodes]
            self.assertTrue(all(c >= limits.min_connections for c in counts), counts)
            self.assertTrue(all(c <= limits.max_connections for c in counts), counts)

        return self.run_async(scenario)
