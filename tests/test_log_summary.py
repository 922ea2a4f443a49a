# -*- test-case-name: tests.test_log_summary -*-
"""
Tests for :class:`txtezosp2p._events.SummarisingLogger` (a few lines of a
repetitive event, then one summary per window, on a simulated clock) and
for its use by a node: stalled connections reopened again and again over
real TCP write a bounded number of lines.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p._events import SummarisingLogger
from txtezosp2p.identity import IdentityFile
from txtezosp2p.limits import Limits
from txtezosp2p.node.composition import Node, NodeOptions

from .helpers import IDENTITY_A, capture_events, named

SUMMARY = (
    "refused {count:,} incoming connections from {subjects:,} addresses"
    " in the last {period:g} s ({kind})"
)


class SummarisingLoggerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events = capture_events(self)
        self.log = Logger(namespace="txtezosp2p.test_summary")
        self.summary = SummarisingLogger(self.clock, period=10.0, burst=3)

    def mine(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("log_namespace") == self.log.namespace]

    def refuse(self, address: str, kind: str = "too many incoming") -> None:
        self.summary.debug(
            "refusing {addr}",
            log=self.log,
            summary=SUMMARY,
            subject=address,
            kind=kind,
            event="incoming_connection_error",
            addr=address,
        )

    def test_quiet_events_logged_one_by_one(self) -> None:
        """Up to ``burst`` per window: every line, as given; no summary, no timer."""
        for second in range(50):
            self.refuse(f"10.0.0.{second}")
            self.clock.advance(4.0)  # three per 10 s window at most
        lines = self.mine()
        self.assertEqual(len(lines), 50)
        self.assertEqual({e["log_level"] for e in lines}, {LogLevel.debug})
        self.assertEqual(formatEvent(lines[7]), "refusing 10.0.0.7")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_flood(self) -> None:
        """
        35,000 refusals from 500 addresses within a window: ``burst`` lines,
        then one info line when the window ends.
        """
        for n in range(35_000):
            host = n % 500
            self.refuse(f"10.0.{host // 256}.{host % 256}")
            if n % 3500 == 0:
                self.clock.advance(0.9)
        self.assertEqual(len(self.mine()), 3)
        self.clock.advance(10.0)
        [summary] = self.mine()[3:]
        self.assertEqual(
            formatEvent(summary),
            "refused 35,000 incoming connections from 500 addresses in the last 10 s"
            " (too many incoming)",
        )
        self.assertEqual(summary["log_level"], LogLevel.info)
        self.assertEqual(summary["event"], "incoming_connection_error")
        self.assertEqual(summary["count"], 35_000)
        self.assertEqual(summary["not_logged"], 35_000 - 3)
        self.assertTrue(summary["summarised"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lines_grow_with_time_not_with_events(self) -> None:
        """N events spread over T seconds: at most (burst + 1) lines per period."""
        for rate in (10, 1000):
            del self.events[:]
            for _ in range(600):  # 60 s in steps of 0.1 s
                for _ in range(rate // 10):
                    self.refuse("203.0.113.9")
                self.clock.advance(0.1)
            self.clock.advance(10.0)
            lines = self.mine()
            self.assertLessEqual(len(lines), (60 / 10 + 1) * (3 + 1), rate)
            counted = sum(e["count"] for e in lines if e.get("summarised"))
            one_by_one = len([e for e in lines if not e.get("summarised")])
            held = sum(e["not_logged"] for e in lines if e.get("summarised"))
            self.assertEqual(one_by_one + held, rate * 60)
            self.assertLessEqual(counted, rate * 60)

    def test_kinds_are_separate(self) -> None:
        for _ in range(5):
            self.refuse("192.0.2.1", kind="too many incoming")
            self.refuse("192.0.2.1", kind="banned")
        self.assertEqual(len(self.mine()), 6)
        self.clock.advance(10.0)
        summaries = [e for e in self.mine() if e.get("summarised")]
        self.assertEqual(sorted(e["kind"] for e in summaries), ["banned", "too many incoming"])
        self.assertEqual({e["count"] for e in summaries}, {5})

    def test_subjects_bounded(self) -> None:
        summary = SummarisingLogger(self.clock, period=10.0, burst=0, max_subjects=100)
        for n in range(1000):
            summary.info(
                "x {n}", log=self.log, summary="{count} from {subjects}", subject=str(n), n=n
            )
        self.clock.advance(10.0)
        [line] = self.mine()
        self.assertEqual(formatEvent(line), "1000 from 100")

    def test_windows(self) -> None:
        """
        A window starts at the first occurrence of its kind and lasts one
        period; one that held nothing back ends without a line.
        """
        self.refuse("192.0.2.1")
        self.clock.advance(9.5)
        for _ in range(3):
            self.refuse("192.0.2.1")  # in the window started at 0: the third is held
        self.assertEqual(len(self.mine()), 3)
        self.clock.advance(0.5)
        self.assertEqual([e["count"] for e in self.mine() if e.get("summarised")], [4])
        self.clock.advance(0.5)
        for _ in range(5):
            self.refuse("192.0.2.1")  # a new window, from 10.5 to 20.5
        self.assertEqual(len(self.mine()), 4 + 3)
        self.clock.advance(9.9)
        self.assertEqual(len(self.mine()), 4 + 3)
        self.clock.advance(0.1)
        self.assertEqual([e["count"] for e in self.mine() if e.get("summarised")], [4, 5])
        self.clock.advance(30.0)
        self.refuse("192.0.2.1")
        self.clock.advance(30.0)
        self.assertEqual(len(self.mine()), 4 + 4 + 1)

    def test_flush(self) -> None:
        for _ in range(5):
            self.refuse("192.0.2.1")
        self.summary.flush()
        self.assertEqual([e["count"] for e in self.mine() if e.get("summarised")], [5])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.summary.flush()
        self.assertEqual(len(self.mine()), 4)

    def test_without_clock_every_line(self) -> None:
        summary = SummarisingLogger(None, burst=1)
        for n in range(20):
            summary.info("x {n}", log=self.log, summary="unused", subject="s", n=n)
        self.assertEqual(len(self.mine()), 20)
        self.assertEqual({e["log_level"] for e in self.mine()}, {LogLevel.info})

    def test_invalid(self) -> None:
        self.assertRaises(ValueError, SummarisingLogger, self.clock, period=0)
        self.assertRaises(ValueError, SummarisingLogger, self.clock, burst=-1)


class _Stalled(Protocol):
    """A client that connects and says nothing; the flood reopens it when closed."""

    def __init__(self, flood: _Flood) -> None:
        self.flood = flood

    def connectionMade(self) -> None:
        if self.flood.stopping:
            self.transport.abortConnection()  # type: ignore[union-attr]
        else:
            self.flood.live.add(self)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.flood.live.discard(self)
        self.flood.lost()


class _Flood(Factory):
    """``size`` stalled connections to ``port``, each reopened as soon as it closes."""

    noisy = False

    def __init__(self, reactor: Any, port: int, size: int) -> None:
        self.endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        self.size = size
        self.opened = 0
        self.open_now = 0
        self.stopping = False
        self.live: set[_Stalled] = set()
        self.connecting: set[Deferred[Any]] = set()
        self._target = 0
        self._reached: Deferred[None] | None = None
        self._drained: Deferred[None] | None = None

    def buildProtocol(self, addr: Any) -> _Stalled:
        return _Stalled(self)

    def start(self) -> None:
        for _ in range(self.size):
            self.open()

    def open(self) -> None:
        self.opened += 1
        self.open_now += 1
        attempt = self.endpoint.connect(self)
        self.connecting.add(attempt)

        def done(result: object) -> None:
            self.connecting.discard(attempt)
            if isinstance(result, Failure):
                self.lost()

        attempt.addBoth(done)
        if self._reached is not None and self.opened >= self._target:
            reached, self._reached = self._reached, None
            reached.callback(None)

    def lost(self) -> None:
        self.open_now -= 1
        if not self.stopping:
            self.open()
        elif self.open_now == 0 and self._drained is not None:
            self._drained.callback(None)

    def until(self, opened: int) -> Deferred[None]:
        """Fires once ``opened`` connections in all were opened."""
        self._target = opened
        self._reached = Deferred()
        return self._reached

    def stop(self) -> Deferred[None]:
        self.stopping = True
        self._drained = Deferred()
        for attempt in list(self.connecting):
            attempt.cancel()
        for protocol in list(self.live):
            protocol.transport.abortConnection()  # type: ignore[union-attr]
        if self.open_now == 0:
            self._drained.callback(None)
        return self._drained


class FloodOverTCPTests(TestCase):
    """A node on 127.0.0.1, timers (handshake timeouts, log windows) on a simulated clock."""

    timeout = 120

    def test_stalled_connections_reopened(self) -> None:
        """
        100 connections that never speak, reopened as soon as they close, for
        30 simulated seconds (20 stalled handshakes at a time, timed out after
        5 s; the others refused at once): thousands of refusals, a bounded
        number of log lines.
        """
        from twisted.internet import reactor

        clock = Clock()

        async def scenario() -> None:
            options = NodeOptions(
                data_dir=str(self.mktemp()),
                listen=("tcp:0:interface=127.0.0.1",),
                expected_pow=0.0,
                chain_name="SANDBOXED_TEZOS",
                limits=Limits(
                    min_connections=0, expected_connections=1, max_connections=4, backlog=512
                ),
            )
            os.makedirs(options.data_directory)
            IdentityFile.in_directory(options.data_directory).save(IDENTITY_A)
            node = Node(reactor, options, clock=clock)
            node.startService()
            self.addCleanup(node.stopService)
            p2p = await node.when_ready()
            events = capture_events(self)
            assert p2p.listening_port is not None
            flood = _Flood(reactor, p2p.listening_port, 100)
            flood.start()
            for second in range(30):
                # 200 connections opened per simulated second of the flood
                await flood.until(100 + 200 * (second + 1))
                clock.advance(1.0)
            drained = flood.stop()
            for _ in range(1000):  # the last connections close
                if drained.called:
                    break
                clock.advance(1.0)
                await deferLater(reactor, 0, lambda: None)
            self.assertTrue(drained.called, (flood.open_now, len(flood.live)))
            clock.advance(10.0)  # the last windows end
            lines = [e for e in events if e.get("log_namespace", "").startswith("txtezosp2p.")]
            summaries = [e for e in lines if e.get("summarised")]
            refused = sum(e["count"] for e in named(summaries, "incoming_connection_error"))
            self.assertGreater(refused, 3000)
            # 20 handshakes at a time, 5 s each: about 150 sending_authentication
            # (debug), then at most 11 lines per kind and 10 s window
            self.assertLess(len(lines), 300, Counter(e.get("event") for e in lines))
            failed = named(summaries, "authentication_error")
            self.assertTrue(failed)
            self.assertLess(len(lines), flood.opened / 10)

        return Deferred.fromCoroutine(scenario())  # type: ignore[return-value]
