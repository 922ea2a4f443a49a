# -*- test-case-name: tests.test_dial_report -*-
"""
Why dials fail, told to the operator: the summary of failed dials
(L{txtezosp2p.node.dial_report}), and a low proof-of-work identity dialling
a node that expects more, over real TCP: the client hears the likely
reason, the server's log says "greylisted", and the next attempt from that
address is refused before the handshake, which the client hears too.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.acl import ACL
from txtezosp2p.limits import Limits
from txtezosp2p.node.composition import Node
from txtezosp2p.node.config import NETWORKS, NodeConfig, P2PSettings
from txtezosp2p.node.dial_report import DialReport, classify
from txtezosp2p.p2p import P2P, P2PConfig
from txtezosp2p.session import connect_session
from txtezosp2p.testing import SANDBOX_VERSIONS, weak_identity
from txtezosp2p.wire.errors import (
    ClosedBeforeHandshake,
    ClosedDuringAuthentication,
    Connected,
    ConnectionFailed,
    HandshakeTimeout,
    NackMotive,
    NotEnoughProofOfWork,
    PendingConnection,
    PointBanned,
    RejectedByNack,
    TooManyConnections,
)
from txtezosp2p.wire.ids import Point

from .helpers import IDENTITY_A, IDENTITY_B, capture_events, debug_events, named, session_config
from .test_node import free_port

P1 = Point("127.0.0.1", 1)
P2 = Point("10.0.0.2", 9732)


class ClassifyTests(SynchronousTestCase):
    def test_reasons(self) -> None:
        acl = ACL(Clock(), Limits())
        acl.ban_addr("10.0.0.9")
        cases: list[tuple[Exception, str | None]] = [
            (ConnectionFailed("Connection was refused by other side: 111"), "refused"),
            (ConnectionFailed("User timeout caused connection failure."), "timeout"),
            (ConnectionFailed("No route to host"), "unreachable"),
            (HandshakeTimeout("connection timed out"), "timeout"),
            (RejectedByNack(NackMotive.TOO_MANY_CONNECTIONS, ()), "too_many_connections"),
            (RejectedByNack(NackMotive.UNKNOWN_CHAIN_NAME, ()), "other_network"),
            (ClosedDuringAuthentication(IDENTITY_A.peer_id, True), "weak_identity"),
            (ClosedDuringAuthentication(IDENTITY_A.peer_id, False), "closed_during_authentication"),
            (ClosedBeforeHandshake(), "closed_before_handshake"),
            (PointBanned(P2), "greylisted"),
            (PointBanned(Point("10.0.0.9", 1)), "banned"),
            (NotEnoughProofOfWork(IDENTITY_A.peer_id), "peer_proof_of_work"),
            (ValueError("surprise"), "other"),
            # not failures to reach a peer
            (Connected(P1), None),
            (PendingConnection(P1), None),
            (TooManyConnections(), None),
            (CancelledError(), None),
        ]
        for error, expected in cases:
            self.assertEqual(classify(Failure(error), acl), expected, repr(error))


class ReportTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.connections = 0
        self.points = 2
        self.report = DialReport(
            self.clock, lambda: self.connections, lambda: self.points, interval=30.0
        )
        self.events = capture_events(self)
        self.report.startService()
        self.addCleanup(self.report.stopService)

    def summaries(self) -> list[Any]:
        return named(self.events, "dial_summary")

    def test_summary_with_hint(self) -> None:
        """Once per window, at warn level while there is no connection."""
        refused = Failure(ConnectionFailed("Connection was refused by other side"))
        for _ in range(3):
            self.report.record(P1, refused)
        self.report.record(P2, Failure(ClosedDuringAuthentication(IDENTITY_A.peer_id, True)))
        self.report.record(P2, Failure(PendingConnection(P2)))  # not counted
        self.clock.advance(29)
        self.assertEqual(self.summaries(), [])
        self.clock.advance(1)
        [summary] = self.summaries()
        self.assertEqual(summary["log_level"], LogLevel.warn)
        self.assertEqual((summary["failed"], summary["tried"]), (4, 2))
        self.assertEqual(summary["by_reason"], {"refused": 3, "weak_identity": 1})
        self.assertEqual(summary["points"]["refused"], ["127.0.0.1:1"])
        self.assertIn("identity generate --force --target 26", summary["hint"])
        self.assertIn("3 connection refused: 127.0.0.1:1", summary["reasons"])
        # a quiet window says nothing; failures with connections are info
        self.clock.advance(30)
        self.assertEqual(len(self.summaries()), 1)
        self.connections = 3
        self.report.record(P2, Failure(RejectedByNack(NackMotive.TOO_MANY_CONNECTIONS, ())))
        self.clock.advance(30)
        last = self.summaries()[-1]
        self.assertEqual(last["log_level"], LogLevel.info)
        self.assertIn("full", last["hint"])

    def test_nothing_to_dial(self) -> None:
        """No connection, no point, no dial: the operator hears it, once per window."""
        self.points = 0
        self.clock.advance(30)
        [summary] = self.summaries()
        self.assertEqual(summary["log_level"], LogLevel.warn)
        self.assertIn("--peer", summary["log_format"])
        self.points = 1
        self.clock.advance(30)
        self.assertEqual(len(self.summaries()), 1)


class WeakIdentityTests(TestCase):
    """A low proof-of-work identity dialling a node that expects 26, over loopback."""

    timeout = 60

    def test_client_hears_the_reason(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            events = capture_events(self)
            debug_events(self)  # the refusal is logged at debug
            server = P2P(
                reactor,
                P2PConfig(
                    identity=IDENTITY_A,
                    versions=SANDBOX_VERSIONS,
                    listen=("127.0.0.1:0",),
                    proof_of_work_target=26.0,
                ),
                clock=Clock(),
            )
            await server.activate()
            self.addCleanup(server.shutdown)
            [port] = server.bound_ports

            def dial(identity: Any) -> Deferred[Any]:
                # from 127.0.0.9, so that greylisting it leaves other tests' 127.0.0.1 alone
                endpoint = TCP4ClientEndpoint(
                    reactor, "127.0.0.1", port, bindAddress=("127.0.0.9", 0)
                )
                config = session_config(identity, pow_target=0.0, versions=SANDBOX_VERSIONS)
                return connect_session(config, Clock(), endpoint, point=Point("127.0.0.1", port))

            weak = weak_identity(26.0)
            error = await self.assertFailure(dial(weak), ClosedDuringAuthentication)
            self.assertTrue(error.weak)
            self.assertEqual(error.peer_id, IDENTITY_A.peer_id)
            self.assertIn("insufficient proof of work", str(error))
            self.assertTrue(server.acl.greylisted_addr("127.0.0.9"))
            # a good identity from the same address is refused before the handshake...
            again = await self.assertFailure(dial(IDENTITY_B), ClosedBeforeHandshake)
            self.assertIn("greylisted", str(again))
            # ...and the server's log says greylisted, not banned
            refusals = named(events, "incoming_connection_error")
            self.assertEqual([e["why"] for e in refusals if e.get("addr") == "127.0.0.9"],
                             ["greylisted"])  # fmt: skip
            # once the greylist is cleared, it is accepted
            server.acl.clear_greylists()
            session = await dial(IDENTITY_B)
            self.assertEqual(session.peer_id, IDENTITY_A.peer_id)
            session.close("done")

        return Deferred.fromCoroutine(scenario())


class NodeReportTests(TestCase):
    """A node whose only bootstrap peer refuses: its log says so, with a hint."""

    timeout = 60

    def test_node_reports_refused_dials(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            events = capture_events(self)
            clock = Clock()
            closed = free_port()
            config = NodeConfig(
                data_dir=self.mktemp(),
                network=NETWORKS["sandbox"],
                bootstrap_peers=(f"127.0.0.1:{closed}",),
                p2p=P2PSettings(
                    listen=("127.0.0.1:0",),
                    proof_of_work_target=0.0,
                    limits=Limits(maintenance_idle_time=10.0),
                ),
            )
            node = Node(reactor, config, identity=IDENTITY_A, clock=clock)
            node.startService()
            self.addCleanup(node.stopService)
            p2p = await node.when_ready()
            report = node.dial_report
            assert report is not None
            if not report.pending:  # maintenance dials the bootstrap peer at once
                refused: Deferred[None] = Deferred()
                p2p.handler.on_dial_outcome(
                    lambda point, failure: None if refused.called else refused.callback(None)
                )
                await refused
            clock.advance(30)
            [summary] = named(events, "dial_summary")
            self.assertEqual(summary["by_reason"], {"refused": 1})
            self.assertEqual(summary["points"]["refused"], [f"127.0.0.1:{closed}"])
            self.assertIn("--peer", summary["hint"])
            self.assertEqual(summary["log_level"], LogLevel.warn)

        return Deferred.fromCoroutine(scenario())
