# -*- test-case-name: tests.test_discovery -*-
"""
Local peer discovery (wire.md section 10, behaviour.md section 9): the
28-byte datagram codec, the sender's schedule and the answerer on a fake UDP
reactor with a simulated clock, and two services talking over loopback UDP
with the real reactor.
"""

from __future__ import annotations

import itertools
import socket
from typing import Any, cast

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.internet import reactor as global_reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorTime, IReactorUDP
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

import tests.helpers  # noqa: F401  (loads the hypothesis profile)
from tests.helpers import capture_events, debug_events, named
from txtezosp2p.discovery import (
    DATAGRAM_SIZE,
    INITIAL_DELAY,
    MAGIC,
    MAX_DELAY,
    DiscoveryService,
    decode_discovery,
    encode_discovery,
)
from txtezosp2p.wire.errors import DecodingError, EncodingError
from txtezosp2p.wire.ids import PeerId, Point

EXAMPLE_PEER = PeerId(bytes.fromhex("47f5c302e9ed3c9a73279fe9f4ad99b6"))
EXAMPLE = bytes.fromhex("444953434f4d4147494347f5c302e9ed3c9a73279fe9f4ad99b62604")
ME = PeerId(b"\x01" * 16)
OTHER = PeerId(b"\x02" * 16)
DESTINATION = ("255.255.255.255", 10732)


# -- codec ----------------------------------------------------------------------------------


class CodecTests(SynchronousTestCase):
    def test_example(self) -> None:
        """The example datagram of wire.md section 10."""
        self.assertEqual(len(EXAMPLE), DATAGRAM_SIZE)
        self.assertEqual(DATAGRAM_SIZE, 28)
        self.assertEqual(MAGIC, b"DISCOMAGIC")
        self.assertEqual(encode_discovery(EXAMPLE_PEER, 9732), EXAMPLE)
        self.assertEqual(decode_discovery(EXAMPLE), (EXAMPLE_PEER, 9732))

    @given(st.binary(min_size=16, max_size=16), st.integers(1, 32767))
    def test_round_trip(self, raw: bytes, port: int) -> None:
        data = encode_discovery(PeerId(raw), port)
        self.assertEqual(len(data), DATAGRAM_SIZE)
        self.assertEqual(decode_discovery(data), (PeerId(raw), port))

    def test_wrong_lengths(self) -> None:
        for data in (EXAMPLE[:-1], EXAMPLE + b"\x00", b"", MAGIC):
            with self.assertRaises(DecodingError):
                decode_discovery(data)

    def test_bad_magic(self) -> None:
        with self.assertRaises(DecodingError):
            decode_discovery(b"DISCOMAGIX" + EXAMPLE[10:])
        with self.assertRaises(DecodingError):
            decode_discovery(b"discomagic" + EXAMPLE[10:])

    def test_port_zero(self) -> None:
        with self.assertRaises(DecodingError):
            decode_discovery(EXAMPLE[:-2] + b"\x00\x00")

    def test_port_is_signed(self) -> None:
        """40000 on the wire is -25536 as an int16: refused, not read as 40000."""
        with self.assertRaises(DecodingError):
            decode_discovery(EXAMPLE[:-2] + (40000).to_bytes(2, "big"))
        with self.assertRaises(DecodingError):
            decode_discovery(EXAMPLE[:-2] + b"\xff\xff")
        self.assertEqual(decode_discovery(EXAMPLE[:-2] + b"\x7f\xff")[1], 32767)

    def test_encode_port_range(self) -> None:
        self.assertEqual(encode_discovery(ME, 32767)[-2:], b"\x7f\xff")
        self.assertEqual(encode_discovery(ME, 1)[-2:], b"\x00\x01")
        for port in (32768, 40000, 65535, 0, -1):
            with self.assertRaises(EncodingError):
                encode_discovery(ME, port)

    @given(st.binary(max_size=64))
    @example(EXAMPLE)
    @example(MAGIC + b"\x00" * 18)
    @example(MAGIC + b"\x00" * 16 + b"\x80\x00")
    def test_arbitrary_bytes(self, data: bytes) -> None:
        """Any input decodes to a valid (peer id, port) or raises DecodingError."""
        try:
            peer_id, port = decode_discovery(data)
        except DecodingError:
            return
        self.assertEqual(len(data), DATAGRAM_SIZE)
        self.assertTrue(1 <= port <= 32767)
        self.assertEqual(encode_discovery(peer_id, port), data)

    @given(st.binary(min_size=18, max_size=18))
    def test_any_body_after_magic(self, body: bytes) -> None:
        data = MAGIC + body
        port = int.from_bytes(body[16:], "big", signed=True)
        if port < 1:
            with self.assertRaises(DecodingError):
                decode_discovery(data)
        else:
            self.assertEqual(decode_discovery(data), (PeerId(body[:16]), port))


# -- A fake UDP reactor -----------------------------------------------------------------------


class FakeHandle:
    """Stands for the socket of a fake port: records socket options."""

    def __init__(self) -> None:
        self.options: dict[tuple[int, int], int] = {}

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options[level, option] = value


class FakeUDPPort:
    """A listening UDP port and the transport of its protocol."""

    def __init__(
        self, reactor: FakeUDPReactor, port: int, protocol: DatagramProtocol, interface: str
    ) -> None:
        self.reactor = reactor
        self.port = port
        self.protocol = protocol
        self.interface = interface
        self.broadcast = False
        self.handle = FakeHandle()
        self.listening = True
        self.writes: list[tuple[float, bytes, tuple[str, int] | None]] = []
        self.fail_writes: Exception | None = None

    def write(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        if self.fail_writes is not None:
            raise self.fail_writes
        self.writes.append((self.reactor.seconds(), data, addr))

    def setBroadcastAllowed(self, enabled: bool) -> None:
        self.broadcast = enabled

    def getBroadcastAllowed(self) -> bool:
        return self.broadcast

    def getHandle(self) -> FakeHandle:
        return self.handle

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", self.interface or "0.0.0.0", self.port)

    def stopListening(self) -> Deferred[None] | None:
        if self.listening:
            self.listening = False
            self.protocol.doStop()
        return None

    def receive(self, data: bytes, source: tuple[str, int]) -> None:
        """A datagram arrives from ``source``."""
        self.protocol.datagramReceived(data, source)


@implementer(IReactorUDP, IReactorTime)
class FakeUDPReactor(Clock):
    """A simulated clock that also hands out fake UDP ports."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[FakeUDPPort] = []
        self.next_ephemeral = 40000
        self.refuse: set[int] = set()

    def listenUDP(  # type: ignore[override]
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> FakeUDPPort:
        if port in self.refuse:
            raise CannotListenError(interface, port, OSError("address in use"))
        if port == 0:
            port = self.next_ephemeral
            self.next_ephemeral += 1
        fake = FakeUDPPort(self, port, protocol, interface)
        self.ports.append(fake)
        protocol.makeConnection(fake)  # type: ignore[arg-type]
        return fake


class Registry:
    """The ``register`` callback: records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Point, bool | None]] = []

    def __call__(self, point: Point, trusted: bool | None) -> None:
        self.calls.append((point, trusted))


def make_service(
    *,
    listening_port: int = 9732,
    listen_port: int = 10732,
    trust: bool = False,
    register: Any = None,
) -> tuple[DiscoveryService, FakeUDPReactor, Registry]:
    reactor = FakeUDPReactor()
    registry = Registry()
    service = DiscoveryService(
        reactor,
        peer_id=ME,
        listening_port=listening_port,
        register=register or registry,
        destination=DESTINATION,
        listen_port=listen_port,
        trust_discovered_peers=trust,
    )
    return service, reactor, registry


def answer_port(reactor: FakeUDPReactor) -> FakeUDPPort:
    return reactor.ports[0]


def sender_port(reactor: FakeUDPReactor) -> FakeUDPPort:
    return reactor.ports[1]


def schedule(count: int) -> list[float]:
    """The times of the first ``count`` sends (wire.md section 10)."""
    times = [INITIAL_DELAY * (2**k - 1) for k in range(min(count, 11))]
    while len(times) < count:
        times.append(times[-1] + MAX_DELAY)
    return times


# -- the sender -------------------------------------------------------------------------------


class SenderTests(SynchronousTestCase):
    def assertTimes(self, actual: list[float], expected: list[float]) -> None:
        self.assertEqual(len(actual), len(expected), (actual, expected))
        for got, want in zip(actual, expected, strict=True):
            self.assertAlmostEqual(got, want, places=6)

    def run_until(self, reactor: FakeUDPReactor, end: float) -> None:
        """Advance the clock from timer to timer (each fires at its exact time) up to ``end``."""
        while True:
            pending = [call.getTime() for call in reactor.getDelayedCalls()]
            if not pending or min(pending) > end:
                break
            reactor.advance(max(0.0, min(pending) - reactor.seconds()))
        reactor.advance(max(0.0, end - reactor.seconds()))

    def test_sockets(self) -> None:
        """The answerer binds the discovery port; the sender its own port; both broadcast."""
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        answer, sender = answer_port(reactor), sender_port(reactor)
        self.assertEqual((answer.port, answer.interface), (10732, "0.0.0.0"))
        self.assertTrue(answer.broadcast)
        self.assertEqual(answer.handle.options, {(socket.SOL_SOCKET, socket.SO_REUSEADDR): 1})
        self.assertNotEqual(sender.port, 10732)
        self.assertTrue(sender.broadcast)
        self.assertEqual(service.answer_port, 10732)

    def test_datagram_and_destination(self) -> None:
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        [(when, data, addr)] = sender_port(reactor).writes
        self.assertEqual(when, 0)
        self.assertEqual(data, encode_discovery(ME, 9732))
        self.assertEqual(addr, DESTINATION)
        self.assertEqual(service.sent, 1)
        self.assertEqual(answer_port(reactor).writes, [])

    def test_schedule(self) -> None:
        """0, 0.1, 0.3, 0.7 ... 102.3 s (delays 0.1 to 51.2 s), then every 51.2 s."""
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        end = schedule(16)[-1] + 1
        self.run_until(reactor, end)
        times = [when for when, _, _ in sender_port(reactor).writes]
        self.assertTimes(times, schedule(16))
        self.assertAlmostEqual(times[10], 102.3, places=6)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for gap, want in zip(gaps[:10], [0.1 * 2**k for k in range(10)], strict=True):
            self.assertAlmostEqual(gap, want, places=6)
        for gap in gaps[9:]:
            self.assertAlmostEqual(gap, 51.2, places=6)
        self.assertEqual(service.sent, 16)

    def test_schedule_exact_delays(self) -> None:
        """Jumping straight to each delay's end (no intermediate steps) gives the same times."""
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        [delayed] = reactor.getDelayedCalls()
        self.assertAlmostEqual(delayed.getTime(), 0.1)
        delays = []
        for _ in range(14):
            [delayed] = reactor.getDelayedCalls()
            delay = delayed.getTime() - reactor.seconds()
            delays.append(delay)
            reactor.advance(delay)
        expected = [0.1 * 2**k for k in range(10)] + [51.2] * 4
        for got, want in zip(delays, expected, strict=True):
            self.assertAlmostEqual(got, want, places=6)

    def test_wake_resets(self) -> None:
        """wake() sends at once and restarts the delays at 0.1 s."""
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        self.run_until(reactor, 500)
        writes = sender_port(reactor).writes
        before = len(writes)
        reactor.advance(10)  # in the middle of a 51.2 s wait
        self.assertEqual(len(writes), before)
        woken = reactor.seconds()
        service.wake()
        self.assertEqual(len(writes), before + 1)
        self.assertEqual(writes[-1][0], woken)
        self.assertEqual(len(reactor.getDelayedCalls()), 1)
        self.run_until(reactor, woken + 300)
        times = [when - woken for when, _, _ in writes[before:]]
        self.assertTimes(times, schedule(len(times)))
        self.assertGreater(len(times), 12)

    def test_wake_twice(self) -> None:
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        reactor.advance(0.05)
        service.wake()
        service.wake()
        self.assertEqual(service.sent, 3)
        self.assertEqual(len(reactor.getDelayedCalls()), 1)
        reactor.advance(0.1)
        self.assertEqual(service.sent, 4)

    def test_wake_when_stopped(self) -> None:
        """wake() before start or after stop sends nothing and schedules nothing."""
        service, reactor, _ = make_service()
        service.wake()
        self.assertEqual(reactor.ports, [])
        self.assertEqual(reactor.getDelayedCalls(), [])
        service.startService()
        self.run_until(reactor, 5)
        service.stopService()
        sent = service.sent
        service.wake()
        self.assertEqual(service.sent, sent)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_stop(self) -> None:
        """stopService closes both sockets and leaves no delayed call."""
        service, reactor, _ = make_service()
        service.startService()
        reactor.advance(0.25)
        stopped = service.stopService()
        if stopped is not None:
            self.successResultOf(stopped)
        self.assertFalse(service.running)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual([p.listening for p in reactor.ports], [False, False])
        self.assertIsNone(service.answer_port)
        sent = service.sent
        reactor.advance(1000)
        self.assertEqual(service.sent, sent)

    def test_restart(self) -> None:
        """A stopped service starts again with a fresh schedule and fresh sockets."""
        service, reactor, _ = make_service()
        service.startService()
        self.run_until(reactor, 300)
        service.stopService()
        start = reactor.seconds()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(len(reactor.ports), 4)
        self.run_until(reactor, start + 2)
        times = [when - start for when, _, _ in reactor.ports[3].writes]
        self.assertTimes(times, schedule(len(times)))

    def test_send_errors(self) -> None:
        """A failing send is logged and the schedule goes on."""
        events = capture_events(self)
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        sender = sender_port(reactor)
        sender.fail_writes = OSError("Network is unreachable")
        reactor.advance(0.1)
        reactor.advance(0.2)
        self.assertEqual(service.sent, 1)
        self.assertEqual(len(named(events, "broadcast_error")), 2)
        sender.fail_writes = None
        reactor.advance(0.4)
        self.assertEqual(service.sent, 2)
        self.assertEqual(len(reactor.getDelayedCalls()), 1)

    def test_port_too_large(self) -> None:
        """A listening port over 32767 cannot be announced: no sender, a log line."""
        events = capture_events(self)
        service, reactor, _ = make_service(listening_port=40000)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(len(reactor.ports), 1)  # the answerer only
        self.assertEqual(reactor.getDelayedCalls(), [])
        [event] = named(events, "unexpected_error")
        self.assertEqual(event["port"], 40000)
        service.wake()
        self.assertEqual(service.sent, 0)
        self.assertEqual(reactor.getDelayedCalls(), [])
        # the answerer still works
        answer_port(reactor).receive(encode_discovery(OTHER, 9733), ("192.168.1.5", 10732))
        self.assertEqual(service.registered, 1)

    def test_bind_failure(self) -> None:
        """A discovery port in use: logged, the error propagates, nothing stays open."""
        events = capture_events(self)
        service, reactor, _ = make_service()
        reactor.refuse.add(10732)
        self.assertRaises(CannotListenError, service.startService)
        self.assertFalse(service.running)
        self.assertEqual(reactor.ports, [])
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(len(named(events, "create_socket_error")), 1)

    def test_sender_bind_failure(self) -> None:
        events = capture_events(self)
        service, reactor, _ = make_service()
        reactor.refuse.add(0)
        self.assertRaises(CannotListenError, service.startService)
        self.assertFalse(service.running)
        self.assertEqual([p.listening for p in reactor.ports], [False])
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(len(named(events, "create_socket_error")), 1)

    def test_destination_change(self) -> None:
        service, reactor, _ = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        service.destination = ("192.168.1.255", 12000)
        reactor.advance(0.1)
        self.assertEqual(sender_port(reactor).writes[-1][2], ("192.168.1.255", 12000))

    def test_argument_checks(self) -> None:
        reactor = FakeUDPReactor()

        def build(**changes: Any) -> DiscoveryService:
            arguments: dict[str, Any] = {
                "peer_id": ME,
                "listening_port": 9732,
                "register": Registry(),
                "destination": DESTINATION,
                "listen_port": 10732,
            }
            arguments.update(changes)
            return DiscoveryService(reactor, **arguments)

        build(destination=("10.0.0.1", 1))
        for destination in (("example.com", 10732), ("::1", 10732), ("1.2.3.4", 0)):
            self.assertRaises(ValueError, build, destination=destination)
        self.assertRaises(ValueError, build, destination=("1.2.3.4", 70000))
        self.assertRaises(ValueError, build, listen_port=-1)
        self.assertRaises(ValueError, build, listening_port=65536)
        service = build()
        with self.assertRaises(ValueError):
            service.destination = ("localhost", 10732)
        self.assertEqual(service.destination, DESTINATION)

    def test_clock_is_separate(self) -> None:
        """An explicit clock drives the timer, not the reactor."""
        reactor = FakeUDPReactor()
        clock = Clock()
        service = DiscoveryService(
            reactor,
            peer_id=ME,
            listening_port=9732,
            register=Registry(),
            destination=DESTINATION,
            listen_port=10732,
            clock=clock,
        )
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(0.1)
        self.assertEqual(service.sent, 2)


# -- the answerer -----------------------------------------------------------------------------


class AnswererTests(SynchronousTestCase):
    def started(self, **kwargs: Any) -> tuple[DiscoveryService, FakeUDPPort, Registry]:
        service, reactor, registry = make_service(**kwargs)
        service.startService()
        self.addCleanup(service.stopService)
        return service, answer_port(reactor), registry

    def test_registers_others(self) -> None:
        """The point is the datagram's source IP with the announced port."""
        debug_events(self)
        events = capture_events(self)
        service, port, registry = self.started()
        port.receive(encode_discovery(OTHER, 9733), ("192.168.1.5", 10732))
        self.assertEqual(registry.calls, [(Point("192.168.1.5", 9733), None)])
        self.assertEqual((service.received, service.registered), (1, 1))
        [event] = named(events, "register_new")
        self.assertEqual(event["point"], "192.168.1.5:9733")
        self.assertEqual(len(named(events, "message_received")), 1)

    def test_ignores_itself(self) -> None:
        service, port, registry = self.started()
        port.receive(encode_discovery(ME, 9732), ("192.168.1.2", 10732))
        self.assertEqual(registry.calls, [])
        self.assertEqual((service.received, service.registered), (1, 0))

    def test_trusted_when_trusting(self) -> None:
        _, port, registry = self.started(trust=True)
        port.receive(encode_discovery(OTHER, 9733), ("10.1.2.3", 55555))
        self.assertEqual(registry.calls, [(Point("10.1.2.3", 9733), True)])

    def test_trust_unchanged_otherwise(self) -> None:
        """
        Without trust_discovered_peers the flag is left alone (None), unlike
        Octez which passes False and so untrusts a trusted point.
        """
        _, port, registry = self.started(trust=False)
        port.receive(encode_discovery(OTHER, 9733), ("10.1.2.3", 55555))
        port.receive(encode_discovery(OTHER, 9733), ("10.1.2.3", 55555))
        self.assertEqual([trusted for _, trusted in registry.calls], [None, None])

    def test_garbage_ignored(self) -> None:
        events = capture_events(self)
        service, port, registry = self.started()
        good = encode_discovery(OTHER, 9733)
        bad = [
            b"",
            b"hello",
            good[:-1],
            good + b"\x00",
            b"DISCOMAGIX" + good[10:],
            good[:-2] + b"\x00\x00",
            good[:-2] + b"\x9c\x40",  # 40000, read as -25536
            b"\xff" * 8192,
        ]
        for data in bad:
            port.receive(data, ("192.168.1.5", 10732))
        self.assertEqual(registry.calls, [])
        self.assertEqual(service.received, len(bad))
        self.assertEqual(len(named(events, "parse_error")), len(bad))
        port.receive(good, ("192.168.1.5", 10732))
        self.assertEqual(len(registry.calls), 1)

    def test_bad_source_address(self) -> None:
        """A source that is no IP address is logged, not raised."""
        events = capture_events(self)
        _, port, registry = self.started()
        port.receive(encode_discovery(OTHER, 9733), ("fe80::1%eth0", 10732))
        port.receive(encode_discovery(OTHER, 9733), cast(Any, None))
        self.assertEqual(registry.calls, [])
        self.assertEqual(len(named(events, "parse_error")), 2)

    def test_ipv6_source(self) -> None:
        """Sources are normalised as the rest of the library does (IPv4-mapped IPv6)."""
        _, port, registry = self.started()
        port.receive(encode_discovery(OTHER, 9733), ("::ffff:10.0.0.7", 10732, 0, 0))  # type: ignore[arg-type]
        port.receive(encode_discovery(OTHER, 9734), ("2001:db8::7", 10732))
        self.assertEqual(
            [point for point, _ in registry.calls],
            [Point("10.0.0.7", 9733), Point("2001:db8::7", 9734)],
        )

    def test_register_error(self) -> None:
        """A failing register callback is logged; the answerer goes on."""
        events = capture_events(self)
        calls: list[Point] = []

        def register(point: Point, trusted: bool | None) -> None:
            calls.append(point)
            raise RuntimeError("pool full")

        service, port, _ = self.started(register=register)
        port.receive(encode_discovery(OTHER, 9733), ("192.168.1.5", 10732))
        port.receive(encode_discovery(OTHER, 9734), ("192.168.1.5", 10732))
        self.assertEqual(len(calls), 2)
        self.assertEqual(service.registered, 0)
        self.assertEqual(len(named(events, "unexpected_error")), 2)
        self.flushLoggedErrors(RuntimeError)

    def test_sender_socket_ignores_input(self) -> None:
        service, reactor, registry = make_service()
        service.startService()
        self.addCleanup(service.stopService)
        sender_port(reactor).receive(encode_discovery(OTHER, 9733), ("192.168.1.5", 10732))
        self.assertEqual(registry.calls, [])
        self.assertEqual(service.received, 0)

    def test_listen_before_start(self) -> None:
        """listen() binds early and returns the port; startService does not rebind."""
        service, reactor, _ = make_service(listen_port=0)
        port = service.listen()
        self.assertEqual(port, 40000)
        self.assertEqual(service.listen(), port)
        self.assertEqual(service.sent, 0)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(len(reactor.ports), 2)
        self.assertEqual(service.answer_port, port)


# -- over loopback ----------------------------------------------------------------------------


class LoopbackTests(TestCase):
    """Two services on 127.0.0.1 with the real reactor, each sending to the other."""

    timeout = 20

    def service(
        self, peer_id: PeerId, listening_port: int, found: Deferred[Point]
    ) -> DiscoveryService:
        def register(point: Point, trusted: bool | None) -> None:
            self.assertIsNone(trusted)
            if not found.called:
                found.callback(point)

        service = DiscoveryService(
            cast(IReactorUDP, global_reactor),
            peer_id=peer_id,
            listening_port=listening_port,
            register=register,
            destination=("127.0.0.1", 9),  # replaced once the other end is bound
            listen_port=0,
            listen_interface="127.0.0.1",
        )
        return service

    def test_two_services(self) -> Deferred[None]:
        found_by_a: Deferred[Point] = Deferred()
        found_by_b: Deferred[Point] = Deferred()
        a = self.service(ME, 9732, found_by_a)
        b = self.service(OTHER, 9733, found_by_b)
        port_a = a.listen()
        self.addCleanup(a.stopService)
        port_b = b.listen()
        self.addCleanup(b.stopService)
        self.assertNotEqual(port_a, port_b)
        handle = cast(Any, a._answer_port).getHandle()
        self.assertTrue(handle.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
        self.assertTrue(handle.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST))
        a.destination = ("127.0.0.1", port_b)
        b.destination = ("127.0.0.1", port_a)
        a.startService()
        b.startService()

        def check(points: list[Point]) -> None:
            self.assertEqual(points, [Point("127.0.0.1", 9733), Point("127.0.0.1", 9732)])
            self.assertGreaterEqual(a.sent, 1)
            self.assertGreaterEqual(b.sent, 1)
            self.assertGreaterEqual(a.received, 1)
            self.assertGreaterEqual(b.received, 1)

        return gatherResults([found_by_a, found_by_b]).addCallback(check)

    def test_own_datagrams_ignored(self) -> Deferred[None]:
        """A service sending to its own answerer registers nothing."""
        heard: Deferred[None] = Deferred()
        registered: list[Point] = []
        service = DiscoveryService(
            cast(IReactorUDP, global_reactor),
            peer_id=ME,
            listening_port=9732,
            register=lambda point, trusted: registered.append(point),
            destination=("127.0.0.1", 9),
            listen_port=0,
            listen_interface="127.0.0.1",
        )
        port = service.listen()
        self.addCleanup(service.stopService)
        service.destination = ("127.0.0.1", port)
        original = service._datagram_received

        def spy(datagram: bytes, addr: Any) -> None:
            original(datagram, addr)
            if not heard.called:
                heard.callback(None)

        service._datagram_received = spy  # type: ignore[method-assign]
        service.startService()

        def check(_: None) -> None:
            self.assertEqual(registered, [])
            self.assertEqual(service.received, 1)

        return heard.addCallback(check)

    def test_nodes_of_one_host_share_the_port(self) -> Deferred[None]:
        """
        Three services bound to one UDP port (as three nodes of one machine
        on the discovery port) all hear a broadcast on the loopback network.
        """
        ids = [ME, OTHER, PeerId(b"\x03" * 16)]
        found: list[Deferred[Point]] = [Deferred() for _ in ids]
        services: list[DiscoveryService] = []
        port = 0
        for index, peer_id in enumerate(ids):

            def register(point: Point, trusted: bool | None, index: int = index) -> None:
                if not found[index].called:
                    found[index].callback(point)

            service = DiscoveryService(
                cast(IReactorUDP, global_reactor),
                peer_id=peer_id,
                listening_port=9732 + index,
                register=register,
                destination=("127.255.255.255", 9),
                listen_port=port,
                listen_interface="0.0.0.0",
            )
            port = service.listen()
            self.addCleanup(service.stopService)
            services.append(service)
        self.assertEqual({s.answer_port for s in services}, {port})
        # only the first one announces itself: both others must hear it
        services[0].destination = ("127.255.255.255", port)
        services[0].startService()

        def check(points: list[Point]) -> None:
            self.assertEqual(points, [Point("127.0.0.1", 9732)] * 2)

        return gatherResults(found[1:]).addCallback(check)
