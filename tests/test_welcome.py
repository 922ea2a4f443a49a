# -*- test-case-name: tests.test_welcome -*-
"""
The welcome service (behaviour.md section 10): listening endpoints with the
backlog of the limits, socket options on real sockets, and the environment
variables that change them.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.welcome import (
    DEFAULT_KEEPALIVE_MS,
    DEFAULT_USER_TIMEOUT_MS,
    WelcomeService,
    configure_socket,
    socket_settings,
    with_backlog,
)


class Recorder(Protocol):
    """Accepted connections: applies the node's socket options and says so."""

    def connectionMade(self) -> None:
        configure_socket(self.transport)
        waiter = getattr(self.factory, "waiter", None)
        if waiter is not None and not waiter.called:
            waiter.callback(self)


class SettingsTests(SynchronousTestCase):
    def setenv(self, name: str, value: str | None) -> None:
        import os

        old = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

        def restore() -> None:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old

        self.addCleanup(restore)

    def clear(self) -> None:
        for name in (
            "TXTEZOSP2P_TCP_USER_TIMEOUT",
            "OCTEZ_P2P_TCP_USER_TIMEOUT",
            "TXTEZOSP2P_TCP_KEEPALIVE",
            "OCTEZ_P2P_TCP_KEEPALIVE",
        ):
            self.setenv(name, None)

    def test_defaults(self) -> None:
        self.clear()
        self.assertEqual(socket_settings(), (DEFAULT_USER_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS))
        self.assertEqual(socket_settings(), (45_000, (10_000, 5_000)))

    def test_environment(self) -> None:
        self.clear()
        self.setenv("OCTEZ_P2P_TCP_USER_TIMEOUT", "20000")
        self.setenv("TXTEZOSP2P_TCP_KEEPALIVE", "3000,1000")
        self.assertEqual(socket_settings(), (20_000, (3_000, 1_000)))
        self.setenv("TXTEZOSP2P_TCP_USER_TIMEOUT", "0")  # ours wins over Octez's
        self.setenv("OCTEZ_P2P_TCP_KEEPALIVE", "7000")
        self.assertEqual(socket_settings(), (0, (3_000, 1_000)))
        self.setenv("TXTEZOSP2P_TCP_KEEPALIVE", "0")
        self.assertEqual(socket_settings()[1], None)
        self.setenv("TXTEZOSP2P_TCP_KEEPALIVE", None)
        self.assertEqual(socket_settings()[1], (7_000, 5_000))

    def test_invalid_environment_is_ignored(self) -> None:
        self.clear()
        self.setenv("TXTEZOSP2P_TCP_USER_TIMEOUT", "soon")
        self.setenv("TXTEZOSP2P_TCP_KEEPALIVE", "x,y")
        self.assertEqual(socket_settings(), (DEFAULT_USER_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS))

    def test_backlog(self) -> None:
        self.assertEqual(with_backlog("tcp:9732", 20), "tcp:9732:backlog=20")
        self.assertEqual(
            with_backlog("tcp6:1:interface=\\:\\:", 5), "tcp6:1:interface=\\:\\::backlog=5"
        )
        self.assertEqual(with_backlog("tcp:1:backlog=3", 20), "tcp:1:backlog=3")
        self.assertEqual(with_backlog("unix:/tmp/x", 20), "unix:/tmp/x")

    def test_configure_ignores_other_transports(self) -> None:
        configure_socket(object())  # no handle: nothing to do, no error
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:

            class Transport:
                def getHandle(self) -> Any:
                    return udp

            configure_socket(Transport())  # not a stream socket: left alone
            self.assertEqual(udp.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), 0)


class WelcomeTests(TestCase):
    timeout = 30

    def test_listens_and_sets_socket_options(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            factory = Factory.forProtocol(Recorder)
            waiter: Deferred[Recorder] = Deferred()
            factory.waiter = waiter  # type: ignore[attr-defined]
            welcome = WelcomeService(
                reactor,
                ("tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.2"),
                factory,
                backlog=7,
            )
            welcome.startService()
            self.addCleanup(welcome.stopService)
            ports = await welcome.when_listening()
            self.assertEqual(len(ports), 2)
            self.assertEqual(len(welcome.ports), 2)
            host: Any = ports[0].getHost()
            client = await connectProtocol(
                TCP4ClientEndpoint(reactor, "127.0.0.1", host.port), Protocol()
            )
            self.addCleanup(client.transport.loseConnection)  # type: ignore[union-attr]
            accepted = await waiter
            sock = accepted.transport.getHandle()  # type: ignore[union-attr]
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), 1)
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
            if hasattr(socket, "TCP_KEEPIDLE"):
                self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE), 10)
                self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL), 5)
            if hasattr(socket, "TCP_USER_TIMEOUT"):
                self.assertEqual(
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT), 45_000
                )
            accepted.transport.loseConnection()  # type: ignore[union-attr]
            await welcome.stopService()
            self.assertEqual(welcome.ports, [])

        return Deferred.fromCoroutine(scenario())

    def test_port_in_use(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen(1)
                port = taken.getsockname()[1]
                welcome = WelcomeService(
                    reactor, (f"tcp:{port}:interface=127.0.0.1",), Factory.forProtocol(Protocol)
                )
                welcome.startService()
                self.addCleanup(welcome.stopService)
                from twisted.internet.error import CannotListenError

                with self.assertRaises(CannotListenError):
                    await welcome.when_listening()
            self.flushLoggedErrors(CannotListenError)

        return Deferred.fromCoroutine(scenario())

    def test_not_started(self) -> None:
        from twisted.internet import reactor

        welcome = WelcomeService(reactor, ("tcp:0",), Factory.forProtocol(Protocol))
        self.assertRaises(RuntimeError, welcome.when_listening)
