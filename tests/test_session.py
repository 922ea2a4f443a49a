# -*- test-case-name: tests.test_session -*-
"""
Octez's socket scenarios (``src/lib_p2p/test/test_p2p_socket.ml``), each run
twice: over ``iosim`` with a simulated clock, and over real TCP on loopback.

Every scenario is an ``async`` function of a :class:`Harness` that builds
a connected pair of sessions; the iosim harness pumps bytes until the
scenario finishes, the TCP harness lets the reactor run.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.io_scheduler import IOScheduler
from txtezosp2p.session import (
    Decision,
    Refuse,
    Reject,
    Session,
    SessionConfig,
    SessionFactory,
    Versions,
    connect_session,
)
from txtezosp2p.wire.encoding import (
    Bootstrap,
    MessageEncoding,
    NetworkVersion,
    P2PMessageCodec,
)
from txtezosp2p.wire.errors import (
    ConnectionClosed,
    DecodingError,
    Myself,
    NackMotive,
    NotEnoughProofOfWork,
    P2PError,
    Rejected,
    RejectedByNack,
    RejectedNoCommonProtocol,
)
from txtezosp2p.wire.ids import Point

from .helpers import IDENTITY_A, IDENTITY_B, session_config, weak_identity


class ScriptedGate:
    """A gate that answers with whatever ``decide`` computes."""

    def __init__(self, decide: Callable[[Session, Any], Decision]) -> None:
        self._decide = decide

    def decide(self, session: Any, info: Any) -> Decision:
        return self._decide(session, info)


def nack_gate(
    motive: NackMotive = NackMotive.NO_MOTIVE, points: tuple[Point, ...] = ()
) -> ScriptedGate:
    return ScriptedGate(
        lambda session, info: Reject(motive, Rejected(info.peer_id, motive), points)
    )


class Harness:
    """Builds a pair of sessions: ``server`` accepted, ``client`` dialled."""

    server: Session
    client: Session

    def pair(self, server_config: SessionConfig, client_config: SessionConfig) -> Deferred[None]:
        raise NotImplementedError()

    def wait(self, d: Deferred[Any]) -> Deferred[Any]:
        """A Deferred for ``d``'s outcome (the iosim harness pumps meanwhile)."""
        return d


class IOSimHarness(Harness):
    def __init__(
        self, *, max_download_speed: int | None = None, max_upload_speed: int | None = None
    ) -> None:
        self.clock = Clock()
        self.pump: iosim.IOPump | None = None
        self.schedulers: list[IOScheduler] = []
        if max_download_speed is not None or max_upload_speed is not None:
            # one scheduler per end, as two nodes would have
            for _ in range(2):
                scheduler = IOScheduler(
                    self.clock,
                    max_download_speed=max_download_speed,
                    max_upload_speed=max_upload_speed,
                )
                scheduler.startService()
                self.schedulers.append(scheduler)

    def pair(self, server_config: SessionConfig, client_config: SessionConfig) -> Deferred[None]:
        self.server = Session(server_config, self.clock, incoming=True)
        self.client = Session(
            client_config, self.clock, incoming=False, point=Point("127.0.0.1", 9732)
        )
        server: Any = self.server
        client: Any = self.client
        if self.schedulers:
            server = self.schedulers[0].wrap(server)
            client = self.schedulers[1].wrap(client)
        self.pump = iosim.connect(
            server,
            iosim.makeFakeServer(server),
            client,
            iosim.makeFakeClient(client),
            clock=self.clock,
        )
        return defer.succeed(None)

    def run(self, scenario: Coroutine[Any, Any, None]) -> None:
        done = Deferred.fromCoroutine(scenario)
        for _ in range(200):
            if done.called:
                break
            if self.pump is not None:
                self.pump.flush()
            if not done.called:
                self.clock.advance(0.1)
        outcome: list[Any] = []
        done.addBoth(outcome.append)
        assert outcome, "scenario did not finish"
        if hasattr(outcome[0], "raiseException"):
            outcome[0].raiseException()


class TCPHarness(Harness):
    def __init__(self, case: TestCase, regulated: bool = False) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.case = case
        self.scheduler: IOScheduler | None = None
        if regulated:
            self.scheduler = IOScheduler(reactor)
            self.scheduler.startService()
            case.addCleanup(self.scheduler.stopService)

    async def _pair(self, server_config: SessionConfig, client_config: SessionConfig) -> None:
        accepted: Deferred[Session] = Deferred()
        factory = SessionFactory(
            server_config,
            self.reactor,
            on_session=lambda s: accepted.callback(s) if not accepted.called else None,
            scheduler=self.scheduler,
        )
        port: IListeningPort = await TCP4ServerEndpoint(
            self.reactor, 0, interface="127.0.0.1"
        ).listen(factory)
        self.case.addCleanup(port.stopListening)
        number = port.getHost().port  # type: ignore[attr-defined]
        client = Session(
            client_config, self.reactor, incoming=False, point=Point("127.0.0.1", number)
        )
        protocol: Any = client if self.scheduler is None else self.scheduler.wrap(client)
        await connectProtocol(TCP4ClientEndpoint(self.reactor, "127.0.0.1", number), protocol)
        self.client = client
        self.server = await accepted
        for session in (self.client, self.server):
            self.case.addCleanup(session.close)

    def pair(self, server_config: SessionConfig, client_config: SessionConfig) -> Deferred[None]:
        return Deferred.fromCoroutine(self._pair(server_config, client_config))


async def outcome(d: Deferred[Any]) -> Any:
    """The result of ``d``, or its exception (instead of raising it)."""
    try:
        return await d
    except Exception as exc:
        return exc


class Scenarios:
    """The scenarios; ``harness`` is provided by the concrete test case."""

    harness: Harness
    assertEqual: Any
    assertIsInstance: Any
    assertIs: Any
    assertIsNone: Any

    def configs(self, **server: Any) -> tuple[SessionConfig, SessionConfig]:
        client = server.pop("client", {})
        return session_config(IDENTITY_A, **server), session_config(IDENTITY_B, **client)

    async def established(self) -> tuple[Session, Session]:
        h = self.harness
        server, client = await defer.gatherResults(
            [h.server.when_established(), h.client.when_established()]
        )
        return server, client

    async def scenario_handshake(self) -> None:
        h = self.harness
        await h.pair(*self.configs())
        server, client = await self.established()
        assert server.info is not None and client.info is not None
        self.assertEqual(server.info.peer_id, IDENTITY_B.peer_id)
        self.assertEqual(client.info.peer_id, IDENTITY_A.peer_id)
        self.assertIs(server.info.incoming, True)
        self.assertIs(client.info.incoming, False)
        # the incoming side learns the peer's listening port from its message
        self.assertEqual(server.info.id_point.port, 9732)
        self.assertEqual(server.negotiated_version, NetworkVersion("SANDBOXED_TEZOS", 2, 1))
        self.assertEqual(client.negotiated_version, server.negotiated_version)

    async def scenario_nack(self) -> None:
        """The server Nacks: the client is rejected by Nack, with an empty list."""
        h = self.harness
        await h.pair(*self.configs(gate=nack_gate()))
        client_error = await outcome(h.client.when_established())
        server_error = await outcome(h.server.when_established())
        self.assertIsInstance(client_error, RejectedByNack)
        self.assertEqual(client_error.motive, NackMotive.NO_MOTIVE)
        self.assertEqual(client_error.alternative_points, ())
        self.assertIsInstance(server_error, Rejected)

    async def scenario_nacked(self) -> None:
        """The client Nacks the server it dialled, with alternative points."""
        h = self.harness
        points = (Point("1.2.3.4", 9732), Point("2001:db8::1", 9733))
        await h.pair(
            *self.configs(client={"gate": nack_gate(NackMotive.TOO_MANY_CONNECTIONS, points)})
        )
        server_error = await outcome(h.server.when_established())
        self.assertIsInstance(server_error, RejectedByNack)
        self.assertEqual(server_error.motive, NackMotive.TOO_MANY_CONNECTIONS)
        self.assertEqual(server_error.alternative_points, points)
        self.assertIsInstance(await outcome(h.client.when_established()), Rejected)

    async def scenario_nack_v0(self) -> None:
        """A peer announcing p2p version 0 gets a motive-less Nack_v_0."""
        h = self.harness
        old = Versions("SANDBOXED_TEZOS", (0,), (0,))
        await h.pair(
            *self.configs(gate=nack_gate(NackMotive.TOO_MANY_CONNECTIONS), client={"versions": old})
        )
        client_error = await outcome(h.client.when_established())
        self.assertIsInstance(client_error, RejectedByNack)
        self.assertEqual(client_error.motive, NackMotive.NO_MOTIVE)
        self.assertIsNone(client_error.alternative_points)

    async def scenario_version_mismatch(self) -> None:
        """Different chain names: both sides Nack with Unknown_chain_name."""
        h = self.harness
        await h.pair(*self.configs(client={"versions": Versions("TEZOS_MAINNET")}))
        errors = [
            await outcome(h.server.when_established()),
            await outcome(h.client.when_established()),
        ]
        for error in errors:
            # whichever Nack arrives first, each side either nacked or was nacked
            self.assertIsInstance(error, RejectedNoCommonProtocol | RejectedByNack)
        self.assertIsInstance(errors[0], RejectedNoCommonProtocol)
        self.assertEqual(errors[0].motive, NackMotive.UNKNOWN_CHAIN_NAME)

    async def scenario_simple_message(self) -> None:
        h = self.harness
        await h.pair(*self.configs())
        server, client = await self.established()
        await defer.gatherResults(
            [server.write_sync(b"simple message!!"), client.write_sync(b"message two  !!!")]
        )
        self.assertEqual(await server.read(), b"message two  !!!")
        self.assertEqual(await client.read(), b"simple message!!")
        await server.close()
        self.assertIsInstance(await outcome(client.read()), ConnectionClosed)

    async def scenario_chunked_message(self) -> None:
        """binary_chunks_size 21: 3 plaintext bytes per chunk."""
        h = self.harness
        small = {"limits": session_config(IDENTITY_A).limits.replace(binary_chunks_size=21)}
        await h.pair(*self.configs(**small, client=dict(small)))
        server, client = await self.established()
        first, second = bytes(range(256)), bytes(reversed(range(256)))
        await defer.gatherResults([server.write_sync(first), client.write_sync(second)])
        self.assertEqual(await server.read(), second)
        self.assertEqual(await client.read(), first)

    async def scenario_oversized_message(self) -> None:
        """Messages of 128 KiB span several chunks and arrive whole."""
        h = self.harness
        await h.pair(*self.configs())
        server, client = await self.established()
        first, second = bytes(131072), b"\xab" * 131072
        await defer.gatherResults([server.write_sync(first), client.write_sync(second)])
        self.assertEqual(await server.read(), second)
        self.assertEqual(await client.read(), first)

    async def scenario_close_on_read(self) -> None:
        h = self.harness
        await h.pair(*self.configs())
        server, client = await self.established()
        await server.close()
        self.assertIsInstance(await outcome(client.read()), ConnectionClosed)

    async def scenario_close_on_write(self) -> None:
        h = self.harness
        await h.pair(*self.configs())
        server, client = await self.established()
        await server.close()
        await client.when_closed()
        self.assertIsInstance(await outcome(client.write_sync(b"too late")), ConnectionClosed)

    async def scenario_garbled_data(self) -> None:
        """A record that does not decode: Decoding_error for the reader, a close for the writer."""
        h = self.harness
        p2p = {"codec": P2PMessageCodec()}
        await h.pair(*self.configs(**p2p, client=dict(p2p)))
        server, client = await self.established()
        garbled = b"\x00\x00\x00\x04" + b"\xff" * 12
        await server.raw_write_sync(garbled)
        error = await outcome(client.read())
        self.assertIsInstance(error, DecodingError)
        self.assertIsInstance(await outcome(server.read()), ConnectionClosed)

    async def scenario_pow_check_failure(self) -> None:
        """A client whose stamp misses the target is refused before any encrypted byte."""
        h = self.harness
        server_config = session_config(IDENTITY_A)
        client_config = session_config(weak_identity())
        await h.pair(server_config, client_config)
        error = await outcome(h.server.when_established())
        self.assertIsInstance(error, NotEnoughProofOfWork)
        self.assertEqual(error.peer_id, client_config.identity.peer_id)
        self.assertIsInstance(await outcome(h.client.when_established()), ConnectionClosed)

    async def scenario_self_identification(self) -> None:
        """Connecting to ourselves fails with Myself on both ends."""
        h = self.harness
        await h.pair(session_config(IDENTITY_A), session_config(IDENTITY_A))
        for session in (h.server, h.client):
            self.assertIsInstance(await outcome(session.when_established()), Myself)

    async def scenario_p2p_messages(self) -> None:
        """The P2P envelope with an application case, over a running session."""
        h = self.harness
        case = MessageEncoding(
            tag=0x10, title="Text", type=str, encode=str.encode, decode=bytes.decode
        )
        codec = {"codec": P2PMessageCodec([case])}
        await h.pair(*self.configs(**codec, client=dict(codec)))
        server, client = await self.established()
        await client.write(Bootstrap())
        await client.write("hello")
        self.assertEqual(await server.read(), Bootstrap())
        self.assertEqual(await server.read(), "hello")

    async def scenario_close_wait_flushes(self) -> None:
        """close(wait=True) sends what is queued before closing."""
        h = self.harness
        await h.pair(*self.configs())
        server, client = await self.established()
        for index in range(20):
            client.write_now(bytes([index]) * 1000)
        await client.close("done", wait=True)
        received = []
        while True:
            result = await outcome(server.read())
            if isinstance(result, P2PError):
                break
            received.append(result)
        self.assertEqual(received, [bytes([i]) * 1000 for i in range(20)])

    async def scenario_refused_without_nack(self) -> None:
        """A gate refusal closes without a Nack: the dialler's socket is just closed."""
        h = self.harness
        refuse = ScriptedGate(lambda s, info: Refuse(Rejected(info.peer_id, NackMotive.NO_MOTIVE)))
        await h.pair(*self.configs(gate=refuse))
        self.assertIsInstance(await outcome(h.server.when_established()), Rejected)
        error = await outcome(h.client.when_established())
        self.assertIsInstance(error, P2PError)
        self.assertNotIsInstance(error, RejectedByNack)

    assertNotIsInstance: Any


SCENARIOS = [name for name in dir(Scenarios) if name.startswith("scenario_")]


class IOSimSessionTests(Scenarios, SynchronousTestCase):
    """The scenarios over iosim, with a simulated clock."""

    def run_scenario(self, name: str) -> None:
        self.harness = harness = IOSimHarness()
        harness.run(getattr(self, name)())


class IOSimRegulatedSessionTests(Scenarios, SynchronousTestCase):
    """The scenarios over iosim, each end under an IO scheduler capped at 2 MB/s."""

    def run_scenario(self, name: str) -> None:
        self.harness = harness = IOSimHarness(
            max_download_speed=2_000_000, max_upload_speed=2_000_000
        )
        harness.run(getattr(self, name)())
        for scheduler in harness.schedulers:
            scheduler.stopService()


class TCPSessionTests(Scenarios, TestCase):
    """The scenarios over real TCP connections on 127.0.0.1."""

    timeout = 30
    regulated = False

    def run_scenario(self, name: str) -> Deferred[None]:
        self.harness = TCPHarness(self, self.regulated)
        return Deferred.fromCoroutine(getattr(self, name)())


class TCPRegulatedSessionTests(TCPSessionTests):
    """The scenarios over real TCP, both ends under an IO scheduler without cap."""

    regulated = True


def _make_test(name: str) -> Callable[[Any], Any]:
    def test(self: Any) -> Any:
        return self.run_scenario(name)

    test.__name__ = "test_" + name[len("scenario_") :]
    test.__doc__ = getattr(Scenarios, name).__doc__
    return test


for _name in SCENARIOS:
    for _cls in (IOSimSessionTests, IOSimRegulatedSessionTests, TCPSessionTests):
        setattr(_cls, "test_" + _name[len("scenario_") :], _make_test(_name))
del _name, _cls


class NoCycleTests(TestCase):
    """A finished session is freed by reference counting, without the garbage collector."""

    timeout = 30

    async def test_freed_without_gc(self) -> None:
        from twisted.internet import reactor

        the_reactor: Any = reactor
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        server_config, client_config = session_config(IDENTITY_A), session_config(IDENTITY_B)
        accepted: list[Session] = []
        port: IListeningPort = the_reactor.listenTCP(
            0, SessionFactory(server_config, the_reactor, accepted.append), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        # dialled as a node dials: connect_session through a TCP endpoint
        endpoint = TCP4ClientEndpoint(the_reactor, "127.0.0.1", port.getHost().port)  # type: ignore[attr-defined]
        client = await connect_session(client_config, the_reactor, endpoint)
        server = accepted.pop()
        await server.when_established()
        # one message each way, so that the running parts have worked
        await client.write_sync(b"ping")
        self.assertEqual(await server.read(), b"ping")
        await server.write_sync(b"pong")
        self.assertEqual(await client.read(), b"pong")
        server_closed = server.when_closed()
        await client.close()
        await server_closed
        # let the server's connectionLost return (its closed Deferred fired from inside it)
        await task.deferLater(the_reactor, 0, lambda: None)
        parts = [client, server, client._outbox, server._outbox, client._machine, server._machine]
        refs = [weakref.ref(part) for part in parts]
        del parts, client, server, server_closed
        self.assertEqual([ref() for ref in refs], [None] * len(refs))
