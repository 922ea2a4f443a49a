"""
The pool (behaviour.md section 2): the point and peer state machines and their
side effects, reconnection delays (section 5), the JSON shapes of point and
peer info and of pool events (sections 2.9, 13.1), registration rules,
garbage collection of the point and peer tables, the choice of points to
share, the ACL helpers (section 6.2), triggers and watchers, and a property
test of the table bounds.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

import tests.helpers  # noqa: F401  (loads the hypothesis profile)
from txtezosp2p.acl import ACL
from txtezosp2p.limits import Limits
from txtezosp2p.pool import MY_POINTS, PeerMetaConfig, Pool, Trigger
from txtezosp2p.pool_state import (
    EVENT_RING,
    Accepted,
    Disconnected,
    IllegalTransition,
    PeerInfo,
    PointInfo,
    PoolEvent,
    ReconnectionConfig,
    Requested,
    Running,
    rfc3339,
)
from txtezosp2p.wire.ids import ConnectionId, PeerId, Point

CAP = 172800.0


def peer(i: int) -> PeerId:
    return PeerId(bytes([i]) * 16)


def v4(i: int) -> Point:
    return Point(f"10.0.0.{i}", 9732)


def v6(i: int) -> Point:
    return Point(f"2001:db8::{i:x}", 9732)


def cid(i: int) -> ConnectionId:
    return ConnectionId(f"10.0.1.{i}", 9732)


def make_pool(clock: Clock | None = None, seed: int = 0, **kwargs: Any) -> Pool:
    clock = clock if clock is not None else Clock()
    acl = ACL(clock, Limits(ip_greylist_size_in_kilobytes=1))
    return Pool(clock, acl, rng=random.Random(seed), **kwargs)


def point_kinds(info: PointInfo) -> list[tuple[str, PeerId | None]]:
    return [(event.kind, event.peer_id) for event in info.events]


def peer_kinds(info: PeerInfo) -> list[tuple[str, ConnectionId | None]]:
    return [(event.kind, event.connection_id) for event in info.events]


def fail(info: PointInfo, now: float, config: ReconnectionConfig | None = None) -> None:
    """One failed outgoing attempt at ``now``."""
    info.set_requested(now)
    info.set_disconnected(now, config or ReconnectionConfig())


# -- Point state machine (2.2, 2.4) ----------------------------------------------------------------


class PointStateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.config = ReconnectionConfig()
        self.info = PointInfo(v4(1))

    def test_initial(self) -> None:
        info = self.info
        self.assertIsInstance(info.state, Disconnected)
        self.assertFalse(info.trusted)
        self.assertFalse(info.known_public)
        self.assertIsNone(info.last_failed_connection)
        self.assertIsNone(info.last_rejected_connection)
        self.assertIsNone(info.last_established_connection)
        self.assertIsNone(info.last_disconnection)
        self.assertIsNone(info.last_seen)
        self.assertIsNone(info.last_miss)
        self.assertIsNone(info.reconnection)
        self.assertIsNone(info.peer_id)
        self.assertEqual(list(info.events), [])

    def test_requested_from_disconnected_and_requested(self) -> None:
        info = self.info
        info.set_requested(1.0)
        self.assertIsInstance(info.state, Requested)
        info.set_requested(2.0)
        self.assertIsInstance(info.state, Requested)
        self.assertEqual(point_kinds(info), [("outgoing_request", None)] * 2)
        self.assertEqual([e.time for e in info.events], [1.0, 2.0])

    def test_accepted_from_disconnected(self) -> None:
        info = self.info
        info.set_accepted(3.0, peer(1))
        self.assertEqual(info.state, Accepted(peer(1)))
        self.assertEqual(info.peer_id, peer(1))
        self.assertEqual(point_kinds(info), [("accepting_request", peer(1))])

    def test_accepted_from_requested(self) -> None:
        info = self.info
        info.set_requested(1.0)
        info.set_accepted(2.0, peer(2))
        self.assertEqual(info.state, Accepted(peer(2)))
        self.assertEqual(
            point_kinds(info), [("outgoing_request", None), ("accepting_request", peer(2))]
        )

    def test_running_from_accepted_same_peer(self) -> None:
        info = self.info
        info.set_requested(1.0)
        info.set_accepted(2.0, peer(1))
        info.set_running(3.0, peer(1))
        self.assertEqual(info.state, Running(peer(1)))
        self.assertEqual(info.peer_id, peer(1))
        self.assertEqual(info.last_established_connection, (peer(1), 3.0))
        self.assertEqual(info.events[-1].kind, "connection_established")
        self.assertEqual(info.events[-1].peer_id, peer(1))
        self.assertEqual(info.events[-1].time, 3.0)

    def test_running_from_disconnected_and_requested(self) -> None:
        info = self.info
        info.set_running(1.0, peer(1))
        self.assertEqual(info.state, Running(peer(1)))
        other = PointInfo(v4(2))
        other.set_requested(1.0)
        other.set_running(2.0, peer(2))
        self.assertEqual(other.state, Running(peer(2)))
        self.assertEqual(other.last_established_connection, (peer(2), 2.0))

    def test_failed_request(self) -> None:
        info = self.info
        info.set_requested(1.0)
        info.set_disconnected(4.0, self.config)
        self.assertIsInstance(info.state, Disconnected)
        self.assertEqual(info.last_failed_connection, 4.0)
        self.assertIsNone(info.last_rejected_connection)
        self.assertIsNone(info.last_seen)
        self.assertEqual(info.last_miss, 4.0)
        self.assertEqual(info.events[-1].kind, "request_rejected")
        self.assertIsNone(info.events[-1].peer_id)
        self.assertIsNotNone(info.reconnection)

    def test_failed_accepted(self) -> None:
        info = self.info
        info.set_requested(1.0)
        info.set_accepted(2.0, peer(7))
        info.set_disconnected(5.0, self.config)
        self.assertIsInstance(info.state, Disconnected)
        self.assertIsNone(info.peer_id)
        self.assertEqual(info.last_rejected_connection, (peer(7), 5.0))
        self.assertIsNone(info.last_failed_connection)
        self.assertEqual(info.last_seen, (peer(7), 5.0))
        self.assertEqual(info.last_miss, 5.0)
        self.assertEqual(info.events[-1].kind, "request_rejected")
        self.assertEqual(info.events[-1].peer_id, peer(7))
        self.assertIsNotNone(info.reconnection)

    def test_closing_running(self) -> None:
        info = self.info
        info.set_running(2.0, peer(3))
        info.set_disconnected(9.0, self.config)
        self.assertIsInstance(info.state, Disconnected)
        self.assertEqual(info.last_disconnection, (peer(3), 9.0))
        self.assertEqual(info.last_seen, (peer(3), 9.0))
        self.assertEqual(info.last_miss, 9.0)
        # [QUIRK] Octez always records external_disconnection
        self.assertEqual(info.events[-1].kind, "external_disconnection")
        self.assertEqual(info.events[-1].peer_id, peer(3))

    def test_closing_running_requested(self) -> None:
        info = self.info
        info.set_running(2.0, peer(3))
        info.set_disconnected(9.0, self.config, requested=True)
        self.assertEqual(info.events[-1].kind, "disconnection")
        self.assertEqual(info.events[-1].peer_id, peer(3))

    def test_full_event_log(self) -> None:
        info = self.info
        info.set_requested(1.0)
        info.set_disconnected(2.0, self.config)
        info.set_requested(3.0)
        info.set_accepted(4.0, peer(1))
        info.set_disconnected(5.0, self.config)
        info.set_accepted(6.0, peer(2))
        info.set_running(7.0, peer(2))
        info.set_disconnected(8.0, self.config)
        self.assertEqual(
            point_kinds(info),
            [
                ("outgoing_request", None),
                ("request_rejected", None),
                ("outgoing_request", None),
                ("accepting_request", peer(1)),
                ("request_rejected", peer(1)),
                ("accepting_request", peer(2)),
                ("connection_established", peer(2)),
                ("external_disconnection", peer(2)),
            ],
        )
        self.assertEqual([e.time for e in info.events], [float(t) for t in range(1, 9)])

    def test_event_ring_capped(self) -> None:
        info = self.info
        for i in range(60):
            fail(info, float(i), self.config)
        self.assertEqual(EVENT_RING, 100)
        self.assertEqual(len(info.events), 100)
        # the oldest 20 events (10 attempts) were dropped
        self.assertEqual(info.events[0].time, 10.0)
        self.assertEqual(info.events[0].kind, "outgoing_request")
        self.assertEqual(info.events[-1].time, 59.0)
        self.assertEqual(info.events[-1].kind, "request_rejected")

    def test_illegal_requested(self) -> None:
        info = self.info
        info.set_accepted(1.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_requested, 2.0)
        info.set_running(2.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_requested, 3.0)
        self.assertEqual(info.state, Running(peer(1)))

    def test_illegal_accepted(self) -> None:
        info = self.info
        info.set_accepted(1.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_accepted, 2.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_accepted, 2.0, peer(2))
        info.set_running(2.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_accepted, 3.0, peer(1))
        self.assertEqual(info.state, Running(peer(1)))

    def test_illegal_running(self) -> None:
        info = self.info
        info.set_running(1.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_running, 2.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_running, 2.0, peer(2))
        self.assertEqual(info.last_established_connection, (peer(1), 1.0))

    def test_illegal_running_other_peer(self) -> None:
        info = self.info
        info.set_accepted(1.0, peer(1))
        self.assertRaises(IllegalTransition, info.set_running, 2.0, peer(2))
        self.assertEqual(info.state, Accepted(peer(1)))
        self.assertIsNone(info.last_established_connection)

    def test_illegal_disconnected_twice(self) -> None:
        info = self.info
        self.assertRaises(IllegalTransition, info.set_disconnected, 1.0, self.config)
        fail(info, 1.0, self.config)
        self.assertRaises(IllegalTransition, info.set_disconnected, 2.0, self.config)
        self.assertEqual(len(info.events), 2)

    def test_known_public(self) -> None:
        info = self.info
        info.set_running(1.0, peer(1), known_public=True)
        self.assertTrue(info.known_public)
        info.set_disconnected(2.0, self.config)
        self.assertTrue(info.known_public)
        info.set_running(3.0, peer(1))
        self.assertTrue(info.known_public, "known_public=None leaves the flag")
        info.set_disconnected(4.0, self.config)
        info.set_running(5.0, peer(2), known_public=False)
        self.assertFalse(info.known_public)

    def test_last_seen_last_miss(self) -> None:
        info = self.info
        fail(info, 1.0, self.config)
        info.set_running(2.0, peer(1))
        self.assertEqual(info.last_seen, (peer(1), 2.0))
        self.assertEqual(info.last_miss, 1.0)
        info.set_disconnected(3.0, self.config)
        self.assertEqual(info.last_seen, (peer(1), 3.0))
        self.assertEqual(info.last_miss, 3.0)
        info.set_accepted(5.0, peer(2))
        info.set_disconnected(5.0, self.config)
        self.assertEqual(info.last_seen, (peer(2), 5.0))
        self.assertEqual(info.last_miss, 5.0)
        fail(info, 7.0, self.config)
        self.assertEqual(info.last_seen, (peer(2), 5.0), "failures are not sightings")
        self.assertEqual(info.last_miss, 7.0)
        info.set_running(8.0, peer(3))
        self.assertEqual(info.last_seen, (peer(3), 8.0))
        self.assertEqual(info.last_miss, 7.0, "establishing is not a miss")

    def test_last_miss_rejected_vs_disconnection(self) -> None:
        info = PointInfo(v4(2))
        info.last_failed_connection = 1.0
        info.last_rejected_connection = (peer(1), 6.0)
        info.last_disconnection = (peer(2), 4.0)
        info.last_established_connection = (peer(3), 5.0)
        self.assertEqual(info.last_miss, 6.0)
        self.assertEqual(info.last_seen, (peer(1), 6.0))
        info.last_disconnection = (peer(2), 7.0)
        self.assertEqual(info.last_miss, 7.0)
        self.assertEqual(info.last_seen, (peer(2), 7.0))
        info.last_failed_connection = 9.0
        self.assertEqual(info.last_miss, 9.0)
        self.assertEqual(info.last_seen, (peer(2), 7.0))


# -- Peer state machine (2.3, 2.5) -----------------------------------------------------------------


class PeerStateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.info = PeerInfo(peer(1), created=0.0)

    def test_initial(self) -> None:
        info = self.info
        self.assertIsInstance(info.state, Disconnected)
        self.assertIsNone(info.connection_id)
        self.assertIsNone(info.last_seen)
        self.assertIsNone(info.last_miss)
        self.assertEqual(list(info.events), [])

    def test_accepted_running_closed(self) -> None:
        info = self.info
        info.set_accepted(1.0, cid(1))
        self.assertEqual(info.state, Accepted(None, cid(1)))
        self.assertEqual(info.connection_id, cid(1))
        info.set_running(2.0, cid(1))
        self.assertEqual(info.state, Running(None, cid(1)))
        self.assertEqual(info.last_established_connection, (cid(1), 2.0))
        self.assertEqual(info.last_seen, (cid(1), 2.0))
        self.assertIsNone(info.last_miss)
        info.set_disconnected(3.0)
        self.assertIsInstance(info.state, Disconnected)
        self.assertIsNone(info.connection_id)
        self.assertEqual(info.last_disconnection, (cid(1), 3.0))
        self.assertEqual(info.last_seen, (cid(1), 3.0))
        self.assertEqual(info.last_miss, (cid(1), 3.0))
        self.assertEqual(
            peer_kinds(info),
            [
                ("incoming_request", cid(1)),
                ("connection_established", cid(1)),
                ("external_disconnection", cid(1)),
            ],
        )
        self.assertEqual([e.time for e in info.events], [1.0, 2.0, 3.0])
        self.assertTrue(all(e.peer_id is None for e in info.events))

    def test_running_from_disconnected(self) -> None:
        info = self.info
        info.set_running(1.0, cid(2))
        self.assertEqual(info.state, Running(None, cid(2)))
        self.assertEqual(peer_kinds(info), [("connection_established", cid(2))])

    def test_rejected(self) -> None:
        info = self.info
        info.set_accepted(1.0, cid(1))
        info.set_disconnected(2.0)
        self.assertIsInstance(info.state, Disconnected)
        self.assertEqual(info.last_rejected_connection, (cid(1), 2.0))
        self.assertIsNone(info.last_disconnection)
        self.assertIsNone(info.last_established_connection)
        self.assertEqual(info.last_seen, (cid(1), 2.0))
        self.assertEqual(info.last_miss, (cid(1), 2.0))
        self.assertEqual(info.events[-1].kind, "request_rejected")
        self.assertEqual(info.events[-1].connection_id, cid(1))

    def test_requested_disconnection(self) -> None:
        info = self.info
        info.set_running(1.0, cid(1))
        info.set_disconnected(2.0, requested=True)
        self.assertEqual(info.events[-1].kind, "disconnection")
        self.assertEqual(info.events[-1].connection_id, cid(1))

    def test_last_failed_never_updated(self) -> None:
        info = self.info
        info.set_accepted(1.0, cid(1))
        info.set_disconnected(2.0)
        info.set_running(3.0, cid(2))
        info.set_disconnected(4.0)
        self.assertIsNone(info.last_failed_connection)
        self.assertEqual(info.last_seen, (cid(2), 4.0))
        self.assertEqual(info.last_miss, (cid(2), 4.0))

    def test_last_miss_includes_loaded_failure(self) -> None:
        info = self.info
        info.last_failed_connection = (cid(3), 10.0)
        info.last_rejected_connection = (cid(1), 5.0)
        info.last_established_connection = (cid(2), 12.0)
        self.assertEqual(info.last_miss, (cid(3), 10.0))
        self.assertEqual(info.last_seen, (cid(2), 12.0))

    def test_illegal(self) -> None:
        info = self.info
        self.assertRaises(IllegalTransition, info.set_disconnected, 1.0)
        info.set_accepted(1.0, cid(1))
        self.assertRaises(IllegalTransition, info.set_accepted, 2.0, cid(2))
        info.set_running(2.0, cid(1))
        self.assertRaises(IllegalTransition, info.set_accepted, 3.0, cid(2))
        self.assertRaises(IllegalTransition, info.set_running, 3.0, cid(1))
        self.assertEqual(info.state, Running(None, cid(1)))
        info.set_disconnected(4.0)
        self.assertRaises(IllegalTransition, info.set_disconnected, 5.0)

    def test_event_ring_capped(self) -> None:
        info = self.info
        for i in range(70):
            info.set_running(float(i), cid(1))
            info.set_disconnected(float(i))
        self.assertEqual(len(info.events), 100)
        self.assertEqual(info.events[0].time, 20.0)
        self.assertEqual(info.events[-1].time, 69.0)

    def test_peer_event_json(self) -> None:
        info = self.info
        info.set_accepted(1.5, cid(1))
        self.assertEqual(
            info.events[0].peer_json(),
            {
                "kind": "incoming_request",
                "timestamp": "1970-01-01T00:00:01.500-00:00",
                "addr": "::ffff:10.0.1.1",
                "port": 9732,
            },
        )
        anonymous = PeerInfo(peer(2), created=0.0)
        anonymous.set_running(2.0, ConnectionId("2001:db8::5"))
        self.assertEqual(
            anonymous.events[0].peer_json(),
            {
                "kind": "connection_established",
                "timestamp": "1970-01-01T00:00:02.000-00:00",
                "addr": "2001:db8::5",
            },
        )


# -- Reconnection delays (5) -----------------------------------------------------------------------


class ReconnectionTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        config = ReconnectionConfig()
        self.assertEqual(config.factor, 1.2)
        self.assertEqual(config.initial_delay, 1.0)
        self.assertEqual(config.disconnection_delay, 60.0)
        self.assertEqual(config.increase_cap, CAP)
        self.assertEqual(
            config.to_json(),
            {
                "factor": 1.2,
                "initial-delay": 1.0,
                "disconnection-delay": 60.0,
                "increase-cap": CAP,
            },
        )

    def test_fresh_point_may_reconnect(self) -> None:
        info = PointInfo(v4(1))
        self.assertTrue(info.may_reconnect(0.0))
        self.assertIsNone(info.reconnection)

    def test_first_failure_blocks_one_second(self) -> None:
        info = PointInfo(v4(1))
        fail(info, 100.0)
        reconnection = info.reconnection
        assert reconnection is not None
        self.assertEqual(reconnection.end_time, 101.0)
        self.assertAlmostEqual(reconnection.delay, 1.2)
        self.assertFalse(info.may_reconnect(100.0))
        self.assertFalse(info.may_reconnect(100.5))
        self.assertFalse(info.may_reconnect(101.0), "skipped while now <= end_time")
        self.assertTrue(info.may_reconnect(101.001))

    def test_growth(self) -> None:
        info = PointInfo(v4(1))
        now = 1000.0
        for k in range(1, 16):
            now += 500.0
            fail(info, now)
            reconnection = info.reconnection
            assert reconnection is not None
            self.assertAlmostEqual(reconnection.end_time - now, 1.2 ** (k - 1), places=6)
            self.assertAlmostEqual(reconnection.delay, 1.2**k, places=6)
            self.assertFalse(info.may_reconnect(reconnection.end_time))
            self.assertTrue(info.may_reconnect(reconnection.end_time + 0.01))

    def test_failed_accepted_grows_too(self) -> None:
        info = PointInfo(v4(1))
        fail(info, 0.0)
        info.set_accepted(10.0, peer(1))
        info.set_disconnected(10.0, ReconnectionConfig())
        reconnection = info.reconnection
        assert reconnection is not None
        self.assertAlmostEqual(reconnection.end_time - 10.0, 1.2)
        self.assertAlmostEqual(reconnection.delay, 1.44)

    def test_cap(self) -> None:
        info = PointInfo(v4(1))
        for _ in range(70):
            fail(info, 0.0)
            reconnection = info.reconnection
            assert reconnection is not None
            self.assertLessEqual(reconnection.delay, CAP)
            self.assertLessEqual(reconnection.end_time, CAP)
        reconnection = info.reconnection
        assert reconnection is not None
        self.assertEqual(reconnection.delay, CAP)
        self.assertEqual(reconnection.end_time, CAP)
        # the 66th failure is still under the cap, the 68th is at it
        info = PointInfo(v4(2))
        for _ in range(66):
            fail(info, 0.0)
        assert info.reconnection is not None
        self.assertAlmostEqual(info.reconnection.end_time, 1.2**65, places=3)
        self.assertLess(info.reconnection.end_time, CAP)

    def test_running_close_resets(self) -> None:
        info = PointInfo(v4(1))
        for _ in range(10):
            fail(info, 0.0)
        info.set_running(50.0, peer(1))
        info.set_disconnected(200.0, ReconnectionConfig())
        reconnection = info.reconnection
        assert reconnection is not None
        self.assertEqual(reconnection.delay, 1.0)
        self.assertEqual(reconnection.end_time, 260.0)
        self.assertFalse(info.may_reconnect(260.0))
        self.assertTrue(info.may_reconnect(260.5))
        # the next failure blocks for the initial delay again
        fail(info, 300.0)
        reconnection = info.reconnection
        assert reconnection is not None
        self.assertEqual(reconnection.end_time, 301.0)
        self.assertAlmostEqual(reconnection.delay, 1.2)

    def test_custom_config(self) -> None:
        config = ReconnectionConfig(
            factor=2.0, initial_delay=5.0, disconnection_delay=10.0, increase_cap=30.0
        )
        pool = make_pool(reconnection=config)
        self.assertIs(pool.reconnection, config)
        info = pool.register_point(v4(1))
        blocked = []
        delays = []
        for _ in range(5):
            fail(info, 0.0, pool.reconnection)
            assert info.reconnection is not None
            blocked.append(info.reconnection.end_time)
            delays.append(info.reconnection.delay)
        self.assertEqual(blocked, [5.0, 10.0, 20.0, 30.0, 30.0])
        self.assertEqual(delays, [10.0, 20.0, 30.0, 30.0, 30.0])
        info.set_running(1.0, peer(1))
        info.set_disconnected(2.0, pool.reconnection)
        assert info.reconnection is not None
        self.assertEqual(info.reconnection.end_time, 12.0)
        self.assertEqual(info.reconnection.delay, 5.0)

    def test_constant_factor(self) -> None:
        config = ReconnectionConfig(factor=1.0, initial_delay=3.0)
        info = PointInfo(v4(1))
        for i in range(5):
            fail(info, float(i), config)
            assert info.reconnection is not None
            self.assertEqual(info.reconnection.end_time, i + 3.0)
            self.assertEqual(info.reconnection.delay, 3.0)

    def test_saturated_end_time_serialises(self) -> None:
        """
        end_time saturates at the maximum representable time (5); the point's
        JSON must still be producible (greylisted_until = that end_time).
        """
        config = ReconnectionConfig(initial_delay=1e13, increase_cap=1e30)
        info = PointInfo(v4(1))
        fail(info, 10.0, config)
        assert info.reconnection is not None
        self.assertFalse(info.may_reconnect(1e12))
        body = info.to_json()
        self.assertEqual(body["greylisted_until"], rfc3339(info.reconnection.end_time))
        self.assertTrue(body["greylisted_until"].startswith("9999-12-31T23:59:59"))


# -- JSON shapes (13.1, 2.9) -----------------------------------------------------------------------


def ts(seconds: float) -> str:
    return rfc3339(seconds)


class JSONTests(SynchronousTestCase):
    def test_rfc3339(self) -> None:
        self.assertEqual(rfc3339(0), "1970-01-01T00:00:00.000-00:00")
        self.assertEqual(rfc3339(1.5), "1970-01-01T00:00:01.500-00:00")
        self.assertEqual(rfc3339(61.25), "1970-01-01T00:01:01.250-00:00")
        self.assertEqual(rfc3339(1700000000.123), "2023-11-14T22:13:20.123-00:00")
        # milliseconds are truncated, as Ptime's frac_s:3 does
        self.assertEqual(rfc3339(1.9996), "1970-01-01T00:00:01.999-00:00")

    def test_fresh_point(self) -> None:
        self.assertEqual(
            PointInfo(v4(1)).to_json(),
            {"trusted": False, "state": {"event_kind": "disconnected"}},
        )
        self.assertEqual(
            PointInfo(v6(1), trusted=True).to_json(),
            {"trusted": True, "state": {"event_kind": "disconnected"}},
        )

    def test_requested_point(self) -> None:
        info = PointInfo(v4(1))
        info.set_requested(1.0)
        self.assertEqual(info.to_json(), {"trusted": False, "state": {"event_kind": "requested"}})

    def test_accepted_point(self) -> None:
        info = PointInfo(v4(1))
        info.set_accepted(1.0, peer(1))
        self.assertEqual(
            info.to_json(),
            {
                "trusted": False,
                "state": {"event_kind": "accepted", "p2p_peer_id": str(peer(1))},
                "p2p_peer_id": str(peer(1)),
            },
        )

    def test_point_with_history(self) -> None:
        config = ReconnectionConfig()
        info = PointInfo(v4(1), expected_peer_id=peer(3))
        fail(info, 2.0, config)
        info.set_accepted(10.0, peer(1))
        info.set_running(11.0, peer(1))
        info.set_disconnected(20.0, config)
        info.set_accepted(30.0, peer(2))
        info.set_disconnected(31.0, config)
        assert info.reconnection is not None
        self.assertEqual(info.reconnection.end_time, 32.0)
        expected: dict[str, Any] = {
            "trusted": False,
            "greylisted_until": "1970-01-01T00:00:32.000-00:00",
            "state": {"event_kind": "disconnected"},
            "last_failed_connection": "1970-01-01T00:00:02.000-00:00",
            "last_rejected_connection": [str(peer(2)), "1970-01-01T00:00:31.000-00:00"],
            "last_established_connection": [str(peer(1)), "1970-01-01T00:00:11.000-00:00"],
            "last_disconnection": [str(peer(1)), "1970-01-01T00:00:20.000-00:00"],
            "last_seen": [str(peer(2)), "1970-01-01T00:00:31.000-00:00"],
            "last_miss": "1970-01-01T00:00:31.000-00:00",
            "expected_peer_id": str(peer(3)),
        }
        self.assertEqual(info.to_json(), expected)
        info.trusted = True
        info.set_running(40.5, peer(1))
        expected.update(
            trusted=True,
            state={"event_kind": "running", "p2p_peer_id": str(peer(1))},
            p2p_peer_id=str(peer(1)),
            last_established_connection=[str(peer(1)), "1970-01-01T00:00:40.500-00:00"],
            last_seen=[str(peer(1)), "1970-01-01T00:00:40.500-00:00"],
        )
        self.assertEqual(info.to_json(), expected)

    def test_greylisted_until(self) -> None:
        info = PointInfo(v4(1))
        for i in range(4):
            fail(info, 1000.25 + i)
        assert info.reconnection is not None
        self.assertEqual(info.to_json()["greylisted_until"], ts(info.reconnection.end_time))

    def test_point_event_json(self) -> None:
        info = PointInfo(v4(1))
        info.set_requested(1.0)
        info.set_accepted(2.25, peer(1))
        self.assertEqual(
            [e.point_json() for e in info.events],
            [
                ["1970-01-01T00:00:01.000-00:00", {"event_kind": "outgoing_request"}],
                [
                    "1970-01-01T00:00:02.250-00:00",
                    {"event_kind": "accepting_request", "p2p_peer_id": str(peer(1))},
                ],
            ],
        )

    def test_fresh_peer(self) -> None:
        pool = make_pool()
        info = pool.register_peer(peer(1))
        self.assertEqual(
            info.to_json(),
            {
                "score": 1.0,
                "trusted": False,
                "peer_metadata": {},
                "state": "disconnected",
                "stat": {
                    "total_sent": "0",
                    "total_recv": "0",
                    "current_inflow": 0,
                    "current_outflow": 0,
                },
            },
        )

    def test_peer_accepted_running(self) -> None:
        info = PeerInfo(peer(1), created=0.0, metadata={"n": 1})
        info.set_accepted(1.0, cid(1))
        body = info.to_json()
        self.assertEqual(body["state"], "accepted")
        self.assertEqual(body["reachable_at"], {"addr": "::ffff:10.0.1.1", "port": 9732})
        self.assertEqual(body["peer_metadata"], {"n": 1})
        self.assertNotIn("conn_metadata", body)
        self.assertNotIn("last_seen", body)
        info.set_running(2.0, cid(1))
        conn_metadata = {"disable_mempool": False, "private_node": False}
        body = info.to_json(conn_metadata=conn_metadata)
        self.assertEqual(body["state"], "running")
        self.assertEqual(body["conn_metadata"], conn_metadata)
        self.assertEqual(body["reachable_at"], {"addr": "::ffff:10.0.1.1", "port": 9732})
        self.assertEqual(body["last_established_connection"], [cid(1).to_json(), ts(2.0)])
        self.assertEqual(body["last_seen"], [cid(1).to_json(), ts(2.0)])
        self.assertNotIn("last_miss", body)
        info.set_disconnected(3.0)
        body = info.to_json()
        self.assertEqual(body["state"], "disconnected")
        self.assertNotIn("reachable_at", body)
        self.assertEqual(body["last_disconnection"], [cid(1).to_json(), ts(3.0)])
        self.assertEqual(body["last_miss"], [cid(1).to_json(), ts(3.0)])
        self.assertNotIn("last_failed_connection", body)
        self.assertNotIn("last_rejected_connection", body)

    def test_peer_score_and_metadata_json(self) -> None:
        info = PeerInfo(peer(1), created=0.0, metadata={"score": 2.5}, trusted=True)
        body = info.to_json(score=lambda m: float(m["score"]), metadata_json=lambda m: ["x", m])
        self.assertEqual(body["score"], 2.5)
        self.assertEqual(body["trusted"], True)
        self.assertEqual(body["peer_metadata"], ["x", {"score": 2.5}])

    def test_pool_events(self) -> None:
        self.assertEqual(
            PoolEvent("new_point", point=v4(1)).to_json(),
            {"event": "new_point", "point": "10.0.0.1:9732"},
        )
        self.assertEqual(
            PoolEvent("new_point", point=v6(0x1F)).to_json(),
            {"event": "new_point", "point": "[2001:db8::1f]:9732"},
        )
        self.assertEqual(
            PoolEvent("new_peer", peer_id=peer(1)).to_json(),
            {"event": "new_peer", "peer_id": str(peer(1))},
        )
        self.assertEqual(PoolEvent("gc_points").to_json(), {"event": "gc_points"})
        self.assertEqual(PoolEvent("gc_peer_ids").to_json(), {"event": "gc_peer_ids"})
        self.assertEqual(
            PoolEvent(
                "accepting_request",
                point=v4(1),
                connection_id=ConnectionId("10.0.0.1", 9732),
                peer_id=peer(2),
            ).to_json(),
            {
                "event": "accepting_request",
                "point": "10.0.0.1:9732",
                "id_point": {"addr": "::ffff:10.0.0.1", "port": 9732},
                "peer_id": str(peer(2)),
            },
        )
        self.assertEqual(
            PoolEvent(
                "rejecting_request",
                point=v6(2),
                connection_id=ConnectionId("2001:db8::2"),
                peer_id=peer(3),
            ).to_json(),
            {
                "event": "rejecting_request",
                "point": "[2001:db8::2]:9732",
                "id_point": {"addr": "2001:db8::2"},
                "peer_id": str(peer(3)),
            },
        )
        self.assertEqual(
            PoolEvent(
                "request_rejected",
                point=v4(4),
                connection_id=ConnectionId("10.0.0.4", 9732),
                peer_id=peer(4),
            ).to_json(),
            {
                "event": "request_rejected",
                "point": "10.0.0.4:9732",
                "identity": [{"addr": "::ffff:10.0.0.4", "port": 9732}, str(peer(4))],
            },
        )
        self.assertEqual(
            PoolEvent("request_rejected", point=v4(4)).to_json(),
            {"event": "request_rejected", "point": "10.0.0.4:9732"},
        )
        self.assertEqual(
            PoolEvent(
                "connection_established",
                connection_id=ConnectionId("10.0.0.5", 1),
                peer_id=peer(5),
            ).to_json(),
            {
                "event": "connection_established",
                "id_point": {"addr": "::ffff:10.0.0.5", "port": 1},
                "peer_id": str(peer(5)),
            },
        )
        for kind in (
            "swap_request_received",
            "swap_ack_received",
            "swap_request_sent",
            "swap_ack_sent",
            "swap_request_ignored",
            "swap_success",
            "swap_failure",
            "bootstrap_sent",
            "advertise_received",
        ):
            self.assertEqual(
                PoolEvent(kind, source=peer(9)).to_json(),
                {"event": kind, "source": str(peer(9))},
            )


# -- Registration (2.6) ----------------------------------------------------------------------------


class RegistrationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.pool = make_pool(self.clock)
        self.events: list[PoolEvent] = []
        self.pool.watch(self.events.append)

    def test_register_point_once(self) -> None:
        pool = self.pool
        waiting = pool.new_point.wait()
        self.assertNoResult(waiting)
        info = pool.register_point(v4(1))
        self.assertIsNone(self.successResultOf(waiting))
        self.assertIs(pool.points[v4(1)], info)
        self.assertIsInstance(info.state, Disconnected)
        self.assertFalse(info.trusted)
        self.assertIsNone(info.expected_peer_id)
        self.assertEqual(self.events, [PoolEvent("new_point", point=v4(1))])
        again = pool.new_point.wait()
        self.assertIs(pool.register_point(v4(1)), info)
        self.assertNoResult(again)
        self.assertEqual(len(self.events), 1)
        pool.register_point(v6(1))
        self.assertIsNone(self.successResultOf(again))
        self.assertEqual(self.events[-1], PoolEvent("new_point", point=v6(1)))
        self.assertEqual(set(pool.points), {v4(1), v6(1)})

    def test_trusted_flag(self) -> None:
        pool = self.pool
        info = pool.register_point(v4(1), trusted=True)
        self.assertTrue(info.trusted)
        pool.register_point(v4(1))
        self.assertTrue(info.trusted, "None leaves the flag")
        pool.register_point(v4(1), trusted=False)
        self.assertFalse(info.trusted, "False clears the flag")
        pool.register_point(v4(1))
        self.assertFalse(info.trusted)
        pool.register_point(v4(1), trusted=True)
        self.assertTrue(info.trusted)
        self.assertFalse(pool.register_point(v4(2), trusted=False).trusted)
        self.assertFalse(pool.register_point(v4(3)).trusted)

    def test_expected_peer_id(self) -> None:
        pool = self.pool
        info = pool.register_point(v4(1), expected_peer_id=peer(1))
        self.assertEqual(info.expected_peer_id, peer(1))
        pool.register_point(v4(1))
        self.assertEqual(info.expected_peer_id, peer(1))
        pool.register_point(v4(1), expected_peer_id=peer(2))
        self.assertEqual(info.expected_peer_id, peer(2))
        known = pool.register_point(v4(2))
        pool.register_point(v4(2), expected_peer_id=peer(3))
        self.assertEqual(known.expected_peer_id, peer(3))

    def test_register_new_point_ignores_myself(self) -> None:
        pool = self.pool
        pool.add_myself(v4(1))
        self.assertIsNone(pool.register_new_point(v4(1)))
        self.assertNotIn(v4(1), pool.points)
        self.assertEqual(self.events, [])
        info = pool.register_new_point(v4(2), trusted=True)
        assert info is not None
        self.assertTrue(info.trusted)
        self.assertIn(v4(2), pool.points)
        # an explicit register_point is not filtered
        pool.register_point(v4(1))
        self.assertIn(v4(1), pool.points)

    def test_add_myself_drops_known_point(self) -> None:
        pool = self.pool
        pool.register_point(v4(1))
        pool.add_myself(v4(1))
        self.assertNotIn(v4(1), pool.points)
        self.assertIn(v4(1), pool.my_points)

    def test_my_points_lru(self) -> None:
        pool = self.pool
        self.assertEqual(MY_POINTS, 7)
        for i in range(1, 8):
            pool.add_myself(v4(i))
        self.assertEqual(len(pool.my_points), 7)
        pool.add_myself(v4(1))  # refreshed: now the most recent
        pool.add_myself(v4(8))  # evicts v4(2), the least recent
        self.assertEqual(len(pool.my_points), 7)
        self.assertIn(v4(1), pool.my_points)
        self.assertNotIn(v4(2), pool.my_points)
        self.assertIsNotNone(pool.register_new_point(v4(2)))
        for i in (1, 3, 4, 5, 6, 7, 8):
            self.assertIsNone(pool.register_new_point(v4(i)))

    def test_forget_point(self) -> None:
        pool = self.pool
        pool.register_point(v4(1))
        running = pool.register_point(v4(2))
        running.set_running(0.0, peer(1))
        pool.forget_point(v4(1))
        pool.forget_point(v4(2))
        pool.forget_point(v4(3))
        self.assertEqual(set(pool.points), {v4(2)})

    def test_register_peer_once(self) -> None:
        pool = self.pool
        self.clock.advance(42.5)
        waiting = pool.new_peer.wait()
        info = pool.register_peer(peer(1))
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(info.created, 42.5)
        self.assertEqual(info.metadata, {})
        self.assertFalse(info.trusted)
        self.assertIsInstance(info.state, Disconnected)
        self.assertIs(pool.peers[peer(1)], info)
        self.assertEqual(self.events, [PoolEvent("new_peer", peer_id=peer(1))])
        again = pool.new_peer.wait()
        self.clock.advance(1)
        self.assertIs(pool.register_peer(peer(1)), info)
        self.assertEqual(info.created, 42.5)
        self.assertNoResult(again)
        self.assertEqual(len(self.events), 1)
        again.cancel()
        self.failureResultOf(again, CancelledError)

    def test_initial_metadata(self) -> None:
        pool = make_pool(peer_meta=PeerMetaConfig(initial=lambda: {"requests": 0}))
        first = pool.register_peer(peer(1))
        second = pool.register_peer(peer(2))
        self.assertEqual(first.metadata, {"requests": 0})
        first.metadata["requests"] = 5
        self.assertEqual(second.metadata, {"requests": 0}, "each peer has its own value")
        self.assertEqual(pool.get_peer_metadata(peer(1)), {"requests": 5})

    def test_get_peer_metadata_unknown(self) -> None:
        pool = make_pool(peer_meta=PeerMetaConfig(initial=lambda: {"requests": 0}))
        self.assertEqual(pool.get_peer_metadata(peer(9)), {"requests": 0})
        self.assertNotIn(peer(9), pool.peers)
        self.assertEqual(pool.score(peer(9)), 1.0)

    def test_set_peer_metadata_registers(self) -> None:
        pool = self.pool
        self.clock.advance(7)
        pool.set_peer_metadata(peer(3), {"x": 1})
        self.assertIn(peer(3), pool.peers)
        self.assertEqual(pool.peers[peer(3)].created, 7.0)
        self.assertEqual(pool.get_peer_metadata(peer(3)), {"x": 1})
        self.assertEqual(self.events, [PoolEvent("new_peer", peer_id=peer(3))])
        pool.set_peer_metadata(peer(3), {"x": 2})
        self.assertEqual(pool.get_peer_metadata(peer(3)), {"x": 2})
        self.assertEqual(len(self.events), 1)


# -- Garbage collection (2.7) ----------------------------------------------------------------------


class PointGCTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.pool = make_pool(self.clock, limits=Limits(max_known_points=(10, 6)))
        self.events: list[PoolEvent] = []
        self.pool.watch(self.events.append)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def test_below_max_no_gc(self) -> None:
        for i in range(1, 11):
            self.pool.register_point(v4(i))
        self.assertEqual(len(self.pool.points), 10)
        self.assertNotIn("gc_points", self.kinds())

    def test_oldest_miss_first(self) -> None:
        pool = self.pool
        for i in range(1, 11):
            pool.register_point(v4(i))
        # points 1..6 missed at times 10*i (1 oldest); 7..10 never missed
        for i in range(1, 7):
            fail(pool.points[v4(i)], 10.0 * i)
        self.clock.advance(100)
        del self.events[:]
        pool.register_point(v4(11))
        self.assertEqual(set(pool.points), {v4(6), v4(7), v4(8), v4(9), v4(10), v4(11)})
        self.assertEqual(len(pool.points), 6, "documented: target after the insertion")
        self.assertEqual(self.kinds(), ["gc_points", "new_point"])

    def test_never_missed_kept_preferentially(self) -> None:
        pool = self.pool
        for i in range(1, 11):
            pool.register_point(v6(i))
        # only points 9 and 10 ever missed (at 50, 60); now is 1000
        fail(pool.points[v6(9)], 50.0)
        fail(pool.points[v6(10)], 60.0)
        self.clock.advance(1000)
        pool.register_point(v6(11))
        self.assertEqual(len(pool.points), 6)
        self.assertNotIn(v6(9), pool.points)
        self.assertNotIn(v6(10), pool.points)
        self.assertIn(v6(11), pool.points)

    def test_protected_points_kept(self) -> None:
        pool = self.pool
        pool.register_point(v4(1), trusted=True)
        pool.register_point(v4(2), trusted=True)
        fail(pool.points[v4(1)], 1.0)
        fail(pool.points[v4(2)], 1.0)
        running = pool.register_point(v4(3))
        fail(running, 1.0)
        running.set_running(2.0, peer(3))
        requested = pool.register_point(v4(4))
        fail(requested, 1.0)
        requested.set_requested(2.0)
        accepted = pool.register_point(v4(5))
        fail(accepted, 1.0)
        accepted.set_accepted(2.0, peer(5))
        for i in range(6, 11):
            pool.register_point(v4(i))
            fail(pool.points[v4(i)], 10.0 + i)
        self.clock.advance(100)
        pool.register_point(v4(11))
        # 5 victims needed, only 6..10 are eligible: all go
        self.assertEqual(set(pool.points), {v4(i) for i in range(1, 6)} | {v4(11)})
        self.assertIn("gc_points", self.kinds())

    def test_not_enough_victims(self) -> None:
        pool = self.pool
        for i in range(1, 9):
            pool.register_point(v4(i), trusted=True)
        pool.register_point(v4(9))
        pool.register_point(v4(10))
        pool.register_point(v4(11))
        self.assertEqual(set(pool.points), {v4(i) for i in range(1, 9)} | {v4(11)})
        self.assertEqual(self.kinds().count("gc_points"), 1)

    def test_no_victims(self) -> None:
        pool = self.pool
        for i in range(1, 11):
            pool.register_point(v4(i), trusted=True)
        pool.register_point(v4(11))
        self.assertEqual(len(pool.points), 11)
        self.assertNotIn("gc_points", self.kinds())

    def test_gc_again_at_max(self) -> None:
        pool = self.pool
        for i in range(1, 11):
            pool.register_point(v4(i))
        pool.register_point(v4(11))
        self.assertEqual(len(pool.points), 6)
        for i in range(12, 16):
            pool.register_point(v4(i))
        self.assertEqual(len(pool.points), 10)
        pool.register_point(v4(16))
        self.assertEqual(len(pool.points), 6)
        self.assertIn(v4(16), pool.points)
        self.assertEqual(self.kinds().count("gc_points"), 2)

    def test_unbounded(self) -> None:
        pool = make_pool(limits=Limits(max_known_points=None))
        for i in range(500):
            pool.register_point(Point(f"10.1.{i // 256}.{i % 256}", 9732))
        self.assertEqual(len(pool.points), 500)


class PeerGCTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.meta = PeerMetaConfig(initial=lambda: {"score": 1.0}, score=lambda m: m["score"])
        self.pool = make_pool(
            self.clock, limits=Limits(max_known_peer_ids=(10, 6)), peer_meta=self.meta
        )
        self.events: list[PoolEvent] = []
        self.pool.watch(self.events.append)
        for i in range(1, 11):
            self.clock.advance(1)
            self.pool.register_peer(peer(i))
        self.assertEqual([self.pool.peers[peer(i)].created for i in (1, 10)], [1.0, 10.0])

    def test_lowest_score_then_newest(self) -> None:
        pool = self.pool
        for i in (1, 2, 3):
            pool.set_peer_metadata(peer(i), {"score": 5.0})
        pool.set_peer_metadata(peer(7), {"score": -1.0})
        del self.events[:]
        self.clock.advance(1)
        pool.register_peer(peer(11))
        self.assertEqual(set(pool.peers), {peer(i) for i in (1, 2, 3, 4, 5, 11)})
        self.assertEqual(
            [e.kind for e in self.events], ["gc_peer_ids", "new_peer"], "one collection"
        )

    def test_protected_peers_kept(self) -> None:
        pool = self.pool
        for i in (1, 2, 3):
            pool.set_peer_metadata(peer(i), {"score": 5.0})
        pool.set_peer_metadata(peer(7), {"score": -1.0})
        pool.peers[peer(10)].trusted = True
        pool.peers[peer(9)].set_running(1.0, cid(9))
        pool.peers[peer(8)].set_accepted(1.0, cid(8))
        pool.register_peer(peer(11))
        # eligible by (score, newest first): 7, 6, 5, 4, then the score-5 peers 3, 2, 1
        self.assertEqual(set(pool.peers), {peer(i) for i in (1, 2, 8, 9, 10, 11)})

    def test_constant_score_evicts_newest(self) -> None:
        pool = make_pool(self.clock, limits=Limits(max_known_peer_ids=(10, 6)))
        for i in range(1, 11):
            self.clock.advance(1)
            pool.register_peer(peer(i))
        pool.register_peer(peer(11))
        self.assertEqual(set(pool.peers), {peer(i) for i in (1, 2, 3, 4, 5, 11)})

    def test_unbounded(self) -> None:
        pool = make_pool(limits=Limits(max_known_peer_ids=None))
        for i in range(256):
            pool.register_peer(peer(i))
        self.assertEqual(len(pool.peers), 256)


# -- list_known_points (2.8) -----------------------------------------------------------------------


def running_point(pool: Pool, point: Point, seen: float, public: bool = True) -> PointInfo:
    """A point with a running connection established at ``seen``."""
    info = pool.register_point(point)
    info.set_running(seen, peer(1), known_public=public)
    return info


def disconnected_point(pool: Pool, point: Point, seen: float, public: bool = True) -> PointInfo:
    """A disconnected point whose last connection closed at ``seen``."""
    info = pool.register_point(point)
    info.set_running(seen - 0.5, peer(2), known_public=public)
    info.set_disconnected(seen, pool.reconnection)
    return info


class ListKnownPointsTests(SynchronousTestCase):
    def test_exclusions(self) -> None:
        pool = make_pool()
        running_point(pool, v4(1), 1.0)
        running_point(pool, v4(2), 2.0)
        running_point(pool, Point("10.0.0.3", 1), 3.0)
        disconnected_point(pool, v6(4), 4.0)
        running_point(pool, v4(5), 5.0, public=False)
        pool.register_point(v4(6))
        pool.acl.ban_addr(v4(2).addr)
        pool.acl.greylist_addr("10.0.0.3")
        self.assertEqual(pool.list_known_points(), [v4(1), v6(4)])
        everything = pool.list_known_points(ignore_private=False)
        self.assertEqual(set(everything), {v4(1), v6(4), v4(5), v4(6)})
        self.assertEqual(everything[:2], [v4(1), v4(5)])

    def test_order(self) -> None:
        pool = make_pool()
        running_point(pool, v4(1), 5.0)
        running_point(pool, v4(2), 2.0)
        running_point(pool, v6(3), 8.0)
        disconnected_point(pool, v4(4), 3.0)
        disconnected_point(pool, v6(5), 9.0)
        disconnected_point(pool, v4(6), 6.0)
        accepted = disconnected_point(pool, v4(7), 1.0)
        accepted.set_accepted(10.0, peer(3))
        expected = [v4(7), v4(2), v4(1), v6(3), v6(5), v4(6), v4(4)]
        self.assertEqual(pool.list_known_points(), expected)
        self.assertEqual(pool.list_known_points(size=7), expected)

    def make_candidates(self, pool: Pool, running: int, disconnected: int) -> list[Point]:
        """Candidates with distinct last_seen; returns them in the expected order."""
        order: list[Point] = []
        times = list(range(1, running + disconnected + 1))
        random.Random(1).shuffle(times)
        run_points = []
        for i in range(running):
            point = Point(f"10.2.0.{i}", 9732)
            running_point(pool, point, float(times[i]))
            run_points.append((times[i], point))
        disc_points = []
        for i in range(disconnected):
            point = Point(f"2001:db8:1::{i:x}", 9732)
            disconnected_point(pool, point, float(times[running + i]))
            disc_points.append((times[running + i], point))
        order.extend(p for _, p in sorted(run_points))
        order.extend(p for _, p in sorted(disc_points, reverse=True))
        # non-candidates
        for i in range(10):
            pool.register_point(Point(f"10.3.0.{i}", 9732))
        banned = running_point(pool, Point("10.4.0.1", 9732), 0.0)
        pool.acl.ban_addr(banned.point.addr)
        return order

    def check_selection(self, result: list[Point], order: list[Point], size: int) -> None:
        other = (2 * size) // 5
        best = size - other
        self.assertEqual(result[:best], order[:best])
        self.assertEqual(len(result), len(set(result)), "no duplicates")
        self.assertGreater(len(result), best)
        self.assertLessEqual(len(result), size)
        self.assertTrue(set(result[best:]) <= set(order[best:]))

    def test_large_table(self) -> None:
        for seed in range(5):
            pool = make_pool(seed=seed)
            order = self.make_candidates(pool, running=12, disconnected=18)
            self.check_selection(pool.list_known_points(size=10), order, 10)

    def test_default_size(self) -> None:
        pool = make_pool(seed=3)
        order = self.make_candidates(pool, running=30, disconnected=50)
        result = pool.list_known_points()
        self.check_selection(result, order, 50)
        self.assertEqual(result[:30], order[:30])

    def test_small_table_whole(self) -> None:
        pool = make_pool()
        order = self.make_candidates(pool, running=4, disconnected=6)
        self.assertEqual(pool.list_known_points(size=10), order)
        self.assertEqual(pool.list_known_points(size=11), order)

    def test_empty(self) -> None:
        pool = make_pool()
        self.assertEqual(pool.list_known_points(), [])
        pool.register_point(v4(1))
        self.assertEqual(pool.list_known_points(), [])


# -- ACL helpers (6.2) -----------------------------------------------------------------------------


class ACLHelperTests(SynchronousTestCase):
    def test_banned_point_ignores_port(self) -> None:
        pool = make_pool()
        self.assertFalse(pool.banned_point(v4(1)))
        pool.acl.ban_addr("10.0.0.1")
        self.assertTrue(pool.banned_point(v4(1)))
        self.assertTrue(pool.banned_point(Point("10.0.0.1", 1)))
        self.assertFalse(pool.banned_point(v4(2)))
        pool.acl.greylist_addr(v6(1).addr)
        self.assertTrue(pool.banned_point(Point(v6(1).addr, 443)))

    def test_banned_point_ignores_trust(self) -> None:
        pool = make_pool()
        pool.register_point(v4(1), trusted=True)
        pool.acl.ban_addr("10.0.0.1")
        self.assertTrue(pool.banned_point(v4(1)))

    def test_point_banned_for_rpc(self) -> None:
        pool = make_pool()
        pool.register_point(v4(1), trusted=True)
        pool.register_point(v4(2))
        pool.acl.ban_addr("10.0.0.1")
        pool.acl.greylist_addr("10.0.0.2")
        pool.acl.ban_addr("10.0.0.3")
        self.assertFalse(pool.point_banned_for_rpc(v4(1)), "trusted")
        self.assertTrue(pool.point_banned_for_rpc(v4(2)))
        self.assertTrue(pool.point_banned_for_rpc(v4(3)), "unknown point")
        self.assertFalse(pool.point_banned_for_rpc(v4(4)))
        pool.register_point(v4(1), trusted=False)
        self.assertTrue(pool.point_banned_for_rpc(v4(1)))

    def test_peer_banned_for_rpc(self) -> None:
        pool = make_pool()
        pool.register_peer(peer(1)).trusted = True
        pool.register_peer(peer(2))
        pool.acl.ban_peer(peer(1))
        pool.acl.greylist_peer(peer(2))
        pool.acl.ban_peer(peer(3))
        self.assertFalse(pool.peer_banned_for_rpc(peer(1)), "trusted")
        self.assertTrue(pool.peer_banned_for_rpc(peer(2)))
        self.assertTrue(pool.peer_banned_for_rpc(peer(3)), "unknown peer")
        self.assertFalse(pool.peer_banned_for_rpc(peer(4)))


# -- Triggers and watchers (2.9) -------------------------------------------------------------------


class TriggerTests(SynchronousTestCase):
    def test_wakes_all_waiters_once(self) -> None:
        trigger = Trigger("t")
        first, second = trigger.wait(), trigger.wait()
        self.assertNoResult(first)
        self.assertNoResult(second)
        trigger.fire()
        self.assertIsNone(self.successResultOf(first))
        self.assertIsNone(self.successResultOf(second))
        later = trigger.wait()
        self.assertNoResult(later)
        trigger.fire()  # must not fire first/second again
        self.assertIsNone(self.successResultOf(later))

    def test_fire_without_waiters(self) -> None:
        trigger = Trigger("t")
        trigger.fire()
        waiter = trigger.wait()
        self.assertNoResult(
            waiter,
        )

    def test_cancelled_waiter_forgotten(self) -> None:
        trigger = Trigger("t")
        cancelled, kept = trigger.wait(), trigger.wait()
        cancelled.cancel()
        self.failureResultOf(cancelled, CancelledError)
        trigger.fire()  # would raise AlreadyCalledError if remembered
        self.assertIsNone(self.successResultOf(kept))

    def test_pool_triggers(self) -> None:
        pool = make_pool()
        for name in (
            "too_few_connections",
            "too_many_connections",
            "new_peer",
            "new_point",
            "new_connection",
        ):
            self.assertIsInstance(getattr(pool, name), Trigger)

    def test_watchers(self) -> None:
        pool = make_pool()
        seen: list[PoolEvent] = []
        other: list[PoolEvent] = []

        def broken(event: PoolEvent) -> None:
            raise RuntimeError("watcher bug")

        pool.watch(broken)
        stop = pool.watch(seen.append)
        pool.watch(other.append)
        pool.register_point(v4(1))
        self.assertEqual(seen, [PoolEvent("new_point", point=v4(1))])
        self.assertEqual(other, seen)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        stop()
        stop()
        pool.emit(PoolEvent("too_few_connections"))
        self.assertEqual(len(seen), 1)
        self.assertEqual(other[-1], PoolEvent("too_few_connections"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


# -- Property: bounds hold and protected entries survive (2.7) -------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["point", "tpoint", "untrust", "run", "stop", "peer", "tpeer", "rpeer"]),
        st.integers(0, 19),
    ),
    max_size=80,
)


class BoundsPropertyTests(SynchronousTestCase):
    @settings(max_examples=100)
    @given(OPS)
    def test_bounds(self, ops: list[tuple[str, int]]) -> None:
        clock = Clock()
        pool = make_pool(clock, limits=Limits(max_known_points=(5, 3), max_known_peer_ids=(5, 3)))
        for op, i in ops:
            clock.advance(1)
            now = clock.seconds()
            kept_points = {
                p
                for p, info in pool.points.items()
                if info.trusted or not isinstance(info.state, Disconnected)
            }
            kept_peers = {
                p
                for p, info in pool.peers.items()
                if info.trusted or not isinstance(info.state, Disconnected)
            }
            # only three points / peers may ever be protected
            protected = i % 3
            if op == "point":
                info = pool.register_point(v4(i))
                if i % 2 and isinstance(info.state, Disconnected):
                    fail(info, now)
            elif op == "tpoint":
                pool.register_point(v4(protected), trusted=True)
            elif op == "untrust":
                pool.register_point(v4(protected), trusted=False)
            elif op == "run":
                info = pool.register_point(v4(protected))
                if isinstance(info.state, Disconnected):
                    info.set_running(now, peer(protected))
            elif op == "stop":
                found = pool.points.get(v4(protected))
                if found is not None and isinstance(found.state, Running):
                    found.set_disconnected(now, pool.reconnection)
            elif op == "peer":
                pool.register_peer(peer(i))
            elif op == "tpeer":
                pool.register_peer(peer(protected)).trusted = True
            else:
                who = pool.register_peer(peer(protected))
                if isinstance(who.state, Disconnected):
                    who.set_running(now, cid(protected))
                else:
                    who.set_disconnected(now)
            self.assertLessEqual(len(pool.points), 5)
            self.assertLessEqual(len(pool.peers), 5)
            self.assertLessEqual(kept_points, set(pool.points))
            self.assertLessEqual(kept_peers, set(pool.peers))
