# -*- test-case-name: tests.test_io_scheduler -*-
"""
The IO scheduler on a simulated clock: caps held over 60 simulated
seconds, fairness between connections, no banking of quota by idle
connections, cap changes at the next period, bounded queues under producers
that write as fast as they can.  Every simulation runs against both
accounting backends (compiled and pure); a property test checks that they
take identical decisions.  One test runs over real TCP on loopback.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txtezosp2p import _backend
from txtezosp2p.interfaces import IIOScheduler
from txtezosp2p.io_scheduler import IOScheduler, ScheduledConnection
from txtezosp2p.limits import Limits

MB = 1_000_000
STEP = 0.01  # one simulated reactor turn


class SimSocket:
    """
    A socket in a simulation: while reading it receives one read of
    ``read_size`` bytes per reactor turn (the peer always has data, unless
    ``idle``); the kernel takes everything written at once.
    """

    def __init__(self, protocol: Protocol, read_size: int = 65536) -> None:
        self.protocol = protocol
        self.read_size = read_size
        self.idle = False
        self.paused = False
        self.written = 0
        self.producer: Any = None
        self.streaming = False
        self.disconnecting = False
        self.connected = True
        protocol.makeConnection(self)  # type: ignore[arg-type]

    # the transport interface the scheduler uses
    def write(self, data: bytes) -> None:
        self.written += len(data)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer
        self.streaming = streaming
        if not streaming:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        self.producer = None

    def loseConnection(self) -> None:
        self.disconnecting = True

    abortConnection = loseConnection

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 40000)

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 9732)

    def turn(self) -> None:
        if self.connected and not self.paused and not self.idle:
            self.protocol.dataReceived(b"\x00" * self.read_size)
        if self.connected and self.producer is not None and not self.streaming:
            self.producer.resumeProducing()  # what it had was flushed


class Sink(Protocol):
    """Counts what it receives."""

    received = 0

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)


@implementer(IPushProducer)
class Flood(Protocol):
    """Writes 4 KiB blocks for as long as it is not paused."""

    def __init__(self) -> None:
        self.paused = False
        self.sent = 0
        self.max_pending = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.registerProducer(self, True)  # type: ignore[attr-defined]
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        transport: Any = self.transport
        for _ in range(1000):
            if self.paused:
                return
            transport.write(b"\x01" * 4096)
            self.sent += 4096
            self.max_pending = max(self.max_pending, transport.write_pending_bytes)

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        self.paused = True


class Simulation:
    def __init__(self, backend: Any, **scheduler: Any) -> None:
        self.clock = Clock()
        self.scheduler = IOScheduler(self.clock, backend=backend, **scheduler)
        self.scheduler.startService()
        self.sockets: list[SimSocket] = []

    def connect(self, protocol: Protocol, read_size: int = 65536) -> ScheduledConnection:
        connection = self.scheduler.wrap(protocol)
        self.sockets.append(SimSocket(connection, read_size))
        return connection

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / STEP)):
            self.clock.advance(STEP)
            turn = list(self.sockets)
            random.Random(len(turn)).shuffle(turn)  # no socket always first
            for socket in turn:
                socket.turn()


class SchedulerMixin:
    """Simulations; ``backend`` is the accounting module under test."""

    backend: Any
    assertAlmostEqual: Any
    assertLessEqual: Any
    assertGreater: Any
    assertEqual: Any

    def simulation(self, **scheduler: Any) -> Simulation:
        return Simulation(self.backend, **scheduler)

    def assertWithin(self, value: float, expected: float, tolerance: float) -> None:
        self.assertLessEqual(
            abs(value - expected),
            expected * tolerance,
            f"{value} not within {tolerance:.0%} of {expected}",
        )

    def test_idle_scheduler_runs_no_period(self) -> None:
        """
        Without a cap, a period in which nothing moved stops the periods (no
        timer per idle node); the rates read meanwhile, and after traffic
        resumes, are those the skipped periods would have given.
        """
        sim = self.simulation()
        scheduler = sim.scheduler
        periods: list[float] = []
        scheduler.on_period = lambda: periods.append(sim.clock.seconds())
        sim.run(2.0)
        self.assertEqual((scheduler.idle, sim.clock.getDelayedCalls()), (True, []))
        sink = Sink()
        sim.connect(sink)
        sim.run(3.0)
        self.assertEqual(scheduler.idle, False)
        sim.sockets[0].idle = True
        sim.run(1.0)  # the period with the last bytes
        rate = scheduler.stat().current_inflow
        self.assertGreater(rate, 0)
        sim.run(1.0)  # an empty period: periods stop
        self.assertEqual(scheduler.idle, True)
        count = len(periods)
        sim.run(9.0)
        self.assertEqual(len(periods), count)  # no period ran while idle...
        expected = rate
        for _ in range(10):
            expected = (800 * expected) // 1000
        self.assertEqual(scheduler.stat().current_inflow, expected)  # ...as if they had
        self.assertEqual(len(periods), count + 10)
        sim.sockets[0].idle = False
        sim.run(3.0)
        self.assertEqual(scheduler.idle, False)
        self.assertGreater(scheduler.stat().current_inflow, expected)

    def test_single_connection_capped(self) -> None:
        """One connection capped at 1 MB/s gets 1 MB/s ± 2% over 60 s."""
        sim = self.simulation(max_download_speed=1 * MB)
        sink = Sink()
        sim.connect(sink)
        sim.run(1.005)  # just after the first period
        start = sink.received
        sim.run(60.0)
        self.assertWithin(sink.received - start, 60 * MB, 0.02)

    def test_no_cap_passes_everything(self) -> None:
        sim = self.simulation()
        sink = Sink()
        sim.connect(sink)
        sim.run(10.0)
        self.assertEqual(sink.received, 1000 * 65536)  # every read of every turn
        self.assertEqual(len(sim.clock.getDelayedCalls()), 1)  # only the period ticker

    def test_fair_shares(self) -> None:
        """Ten connections under a global cap each get a tenth ± 5%."""
        sim = self.simulation(max_download_speed=2 * MB)
        sinks = [Sink() for _ in range(10)]
        for sink in sinks:
            sim.connect(sink)
        sim.run(1.005)
        starts = [s.received for s in sinks]
        sim.run(60.0)
        shares = [s.received - start for s, start in zip(sinks, starts, strict=True)]
        self.assertWithin(sum(shares), 120 * MB, 0.02)
        for share in shares:
            self.assertWithin(share, 12 * MB, 0.05)

    def test_small_reader_not_starved(self) -> None:
        """A connection whose reads are small keeps being served next to a big one."""
        sim = self.simulation(max_download_speed=2 * MB)
        big, small = Sink(), Sink()
        sim.connect(big, read_size=65536)
        sim.connect(small, read_size=8192)
        sim.run(1.005)
        start_big, start_small = big.received, small.received
        sim.run(30.0)
        self.assertWithin(big.received - start_big + small.received - start_small, 60 * MB, 0.02)
        # served in every period, for at least its read size in every turn it is ready
        self.assertGreater(small.received - start_small, 30 * 2 * MB // 10)

    def test_idle_connection(self) -> None:
        """An idle connection neither starves the others nor banks quota."""
        sim = self.simulation(max_download_speed=3 * MB)
        sinks = [Sink() for _ in range(3)]
        connections = [sim.connect(s) for s in sinks]
        sim.sockets[0].idle = True
        sim.run(20.005)
        b0, c0 = sinks[1].received, sinks[2].received
        sim.run(20.0)
        # the two active ones share the whole cap while the third is idle
        self.assertWithin(sinks[1].received - b0, 30 * MB, 0.05)
        self.assertWithin(sinks[2].received - c0, 30 * MB, 0.05)
        self.assertEqual(sinks[0].received, 0)
        table = sim.scheduler.read.table
        quota = table.quota(connections[0].slot(sim.scheduler.read))
        fair = table.global_average // 3
        self.assertLessEqual(quota, fair)  # one period's share, not forty
        before = sinks[0].received
        sim.sockets[0].idle = False
        sim.run(1.0)
        self.assertLessEqual(sinks[0].received - before, 2 * MB + 65536)

    def test_cap_change_next_period(self) -> None:
        sim = self.simulation(max_download_speed=1 * MB)
        sink = Sink()
        sim.connect(sink)
        sim.run(10.005)
        sim.scheduler.set_max_speed(download=2 * MB)
        at_change = sink.received
        sim.run(0.99)  # still in the same period
        self.assertLessEqual(sink.received - at_change, 1 * MB)
        sim.run(1.0)
        after = sink.received
        sim.run(10.0)
        self.assertWithin(sink.received - after, 20 * MB, 0.02)
        self.assertEqual(sim.scheduler.max_download_speed, 2 * MB)

    def test_cap_removed(self) -> None:
        sim = self.simulation(max_download_speed=1 * MB)
        sink = Sink()
        connection = sim.connect(sink)
        sim.run(5.005)
        sim.scheduler.set_max_speed(download=None)
        sim.run(1.0)
        before = sink.received
        sim.run(1.0)
        self.assertEqual(sink.received - before, 100 * 65536)
        self.assertEqual(connection.read_pending_bytes, 0)

    def test_upload_cap_and_bounded_write_queue(self) -> None:
        """A producer writing as fast as it can is held to the cap and to write_queue_size."""
        sim = self.simulation(max_upload_speed=1 * MB, write_queue_size=64 * 1024)
        flood = Flood()
        connection = sim.connect(flood)
        sim.sockets[0].idle = True
        sim.run(1.005)
        start = sim.sockets[0].written
        sim.run(30.0)
        self.assertWithin(sim.sockets[0].written - start, 30 * MB, 0.02)
        self.assertLessEqual(flood.max_pending, 64 * 1024 + 4096)
        self.assertLessEqual(connection.write_pending_bytes, 64 * 1024 + 4096)

    def test_read_queue_bounded(self) -> None:
        """Under a cap, a connection holds at most one read while it waits."""
        sim = self.simulation(max_download_speed=1 * MB, read_queue_size=1 << 20)
        connection = sim.connect(Sink())
        worst = 0
        for _ in range(500):
            sim.run(STEP)
            worst = max(worst, connection.read_pending_bytes)
        self.assertLessEqual(worst, 65536)
        self.assertEqual(sim.sockets[0].paused, connection.read_pending_bytes > 0)

    def test_application_pause(self) -> None:
        """The wrapped protocol's pauseProducing pauses the socket; resume restarts it."""
        sim = self.simulation()
        sink = Sink()
        connection = sim.connect(sink)
        connection.pauseProducing()
        sim.run(1.0)
        self.assertEqual(sink.received, 0)
        self.assertEqual(sim.sockets[0].paused, True)
        connection.resumeProducing()
        sim.run(0.1)
        self.assertGreater(sink.received, 0)

    def test_statistics(self) -> None:
        """Totals and moving averages (alpha 0.2, integers), per connection and global."""
        sim = self.simulation(max_download_speed=1 * MB)
        first, second = Sink(), Sink()
        a = sim.connect(first)
        b = sim.connect(second)
        sim.run(30.005)
        stat = sim.scheduler.stat()
        self.assertEqual(stat.total_recv, first.received + second.received)
        self.assertWithin(stat.current_inflow, 1 * MB, 0.02)
        self.assertEqual(a.stat().total_recv, first.received)
        self.assertWithin(a.stat().current_inflow + b.stat().current_inflow, 1 * MB, 0.03)
        self.assertEqual(stat.total_sent, 0)
        for socket in sim.sockets:
            socket.connected = False
        a.connectionLost()
        self.assertEqual(a.stat().total_recv, first.received)  # frozen at close


def _backend_cases() -> dict[str, Any]:
    cases: dict[str, Any] = {"Python": _backend.quota_py}
    compiled = _backend.compiled_quota()
    cases["Cython"] = compiled
    return cases


for _name, _module in _backend_cases().items():
    _attrs: dict[str, Any] = {"backend": _module}
    if _module is None:
        _attrs["skip"] = "extension not built"
    globals()[f"Scheduler{_name}Tests"] = type(
        f"Scheduler{_name}Tests", (SchedulerMixin, SynchronousTestCase), _attrs
    )
del _name, _module, _attrs


class TwinTests(SynchronousTestCase):
    """The compiled accounting and its twin take identical decisions."""

    @settings(max_examples=100)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["add", "remove", "count", "refresh"]),
                st.integers(min_value=0, max_value=1 << 24),
                st.booleans(),
            ),
            max_size=200,
        )
    )
    def test_same_decisions(self, operations: list[tuple[str, int, bool]]) -> None:
        compiled = _backend.compiled_quota()
        if compiled is None:
            raise self.skipTest("extension not built")
        tables = [compiled.QuotaTable(), _backend.quota_py.QuotaTable()]
        slots: list[int] = []
        for name, number, flag in operations:
            results = []
            for table in tables:
                if name == "add":
                    results.append(table.add())
                elif name == "remove" and slots:
                    table.remove(slots[number % len(slots)])
                elif name == "count" and slots:
                    table.count(slots[number % len(slots)], number, flag)
                elif name == "refresh":
                    table.refresh(1 + number % 2000, number if flag else -1)
            if name == "add":
                self.assertEqual(results[0], results[1])
                slots.append(results[0])
            elif name == "remove" and slots:
                slots.remove(slots[number % len(slots)])
            self.assertEqual(tables[0].snapshot(), tables[1].snapshot())
            for attribute in ("global_quota", "global_total", "global_average", "connections"):
                self.assertEqual(getattr(tables[0], attribute), getattr(tables[1], attribute))

    def test_moving_average_formula(self) -> None:
        for module in filter(None, [_backend.quota_py, _backend.compiled_quota()]):
            table = module.QuotaTable()
            slot = table.add()
            table.count(slot, 1_000_000, False)
            table.refresh(1000, -1)
            self.assertEqual(table.average(slot), 200_000)  # 0.2 * 1 MB/s
            table.count(slot, 1_000_000, False)
            table.refresh(500, -1)
            # 200 * 1e6 / 500 + 800 * 200000 / 1000
            self.assertEqual(table.average(slot), 400_000 + 160_000)
            table.refresh(1000, -1)
            self.assertEqual(table.average(slot), 448_000)

    def test_quota_rule(self) -> None:
        """Debt carries over, credit does not; the budget has overdraft."""
        for module in filter(None, [_backend.quota_py, _backend.compiled_quota()]):
            table = module.QuotaTable()
            a, b = table.add(), table.add()
            table.refresh(1000, 100)
            self.assertEqual(table.global_quota, 100)
            table.count(a, 1000, True)
            table.refresh(1000, 100)
            # global average 200, fair share 100: a owes 1000, b starts at 100
            self.assertEqual(table.quota(a), -1000 + 100)
            self.assertEqual(table.quota(b), 100)
            self.assertEqual(table.global_quota, -900 + 100)
            table.refresh(1000, 100)
            self.assertEqual(table.quota(b), table.global_average // 2)  # no banking


class InterfaceAndConfigTests(SynchronousTestCase):
    def test_interface(self) -> None:
        verifyObject(IIOScheduler, IOScheduler(Clock()))

    def test_from_limits(self) -> None:
        limits = Limits(max_download_speed=100, max_upload_speed=50, read_buffer_size=4096)
        scheduler = IOScheduler.from_limits(Clock(), limits)
        self.assertEqual(scheduler.max_download_speed, 100 * 1024)
        self.assertEqual(scheduler.max_upload_speed, 50 * 1024)
        self.assertEqual(scheduler.read.piece, 4096)

    def test_one_timer(self) -> None:
        clock = Clock()
        scheduler = IOScheduler(clock)
        scheduler.startService()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        scheduler.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])


class _Sender(Protocol):
    def __init__(self, total: int) -> None:
        self.remaining = total

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"\x00" * self.remaining)


class LoopbackCapTests(TestCase):
    """A download cap respected end to end over real TCP on 127.0.0.1."""

    timeout = 60

    async def _capped(self) -> None:
        from twisted.internet import reactor

        cap = 4 * MB
        scheduler = IOScheduler(reactor, max_download_speed=cap)
        scheduler.startService()
        self.addCleanup(scheduler.stopService)
        per_period: list[int] = []
        sink = Sink()
        finished: Deferred[None] = Deferred()

        def tick() -> None:
            per_period.append(sink.received)
            if len(per_period) == 5 and not finished.called:
                finished.callback(None)

        scheduler.on_period = tick
        factory = Factory.forProtocol(lambda: _Sender(40 * MB))
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        connection = scheduler.wrap(sink)
        await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),  # type: ignore[attr-defined]
            connection,
        )
        await finished
        connection.abortConnection()
        # each whole period delivers the cap, within 2%
        for before, after in itertools.pairwise(per_period[1:]):
            self.assertLessEqual(abs((after - before) - cap), cap * 0.02)
        await defer.succeed(None)

    def test_download_cap(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._capped())
