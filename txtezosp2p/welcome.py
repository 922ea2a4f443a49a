# -*- test-case-name: tests.test_welcome -*-
"""
Accepting connections (Octez ``P2p_welcome`` and ``P2p_fd``,
behaviour.md §10).

:class:`WelcomeService` listens on the node's endpoint strings
(``tcp:9732``, ``tcp6:9732:interface=\\:\\:``, ``systemd:...``) and hands
every accepted connection to the connect handler, which refuses at once
those over ``max_incoming_connections`` or from banned addresses.  TCP
endpoints get the ``backlog`` of the limits unless the string sets one.
Accept errors (file descriptors exhausted, aborted connections...) are
handled by Twisted's listening port, which keeps accepting.

:func:`configure_socket` sets the options Octez sets on every P2P socket
(§10.1): TCP keepalive (idle 10 s, interval 5 s) and ``TCP_USER_TIMEOUT``
(45 s), where the platform has them, so that a dead peer is noticed in
under a minute instead of fifteen.  As with Octez, the environment can
change them: ``TXTEZOSP2P_TCP_USER_TIMEOUT`` (or Octez's
``OCTEZ_P2P_TCP_USER_TIMEOUT``) in milliseconds, and
``TXTEZOSP2P_TCP_KEEPALIVE`` (or ``OCTEZ_P2P_TCP_KEEPALIVE``) as ``ms`` or
``ms,interval_ms``; ``0`` disables either.  Failures are logged and ignored.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, FirstError, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTCP,
    IStreamServerEndpoint,
)
from twisted.python.failure import Failure

from . import _events as ev
from .wire.ids import Point

_log = ev.logger("p2p.welcome")
_fd_log = ev.logger("p2p.fd")

DEFAULT_USER_TIMEOUT_MS = 45_000
DEFAULT_KEEPALIVE_MS = (10_000, 5_000)


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value is not None:
            return value.strip()
    return None


def socket_settings() -> tuple[int, tuple[int, int] | None]:
    """(user timeout in ms or 0, keepalive (idle, interval) in ms or None), from the environment."""
    user_timeout = DEFAULT_USER_TIMEOUT_MS
    text = _env("TXTEZOSP2P_TCP_USER_TIMEOUT", "OCTEZ_P2P_TCP_USER_TIMEOUT")
    if text is not None:
        try:
            user_timeout = max(0, int(text))
        except ValueError:
            _fd_log.warn("ignoring invalid TCP user timeout {value!r}", value=text)
    keepalive: tuple[int, int] | None = DEFAULT_KEEPALIVE_MS
    text = _env("TXTEZOSP2P_TCP_KEEPALIVE", "OCTEZ_P2P_TCP_KEEPALIVE")
    if text is not None:
        try:
            parts = [int(p) for p in text.split(",")]
            if parts[0] == 0:
                keepalive = None
            else:
                keepalive = (parts[0], parts[1] if len(parts) > 1 else DEFAULT_KEEPALIVE_MS[1])
        except (ValueError, IndexError):
            _fd_log.warn("ignoring invalid TCP keepalive {value!r}", value=text)
    return user_timeout, keepalive


def configure_socket(transport: Any) -> None:
    """
    Apply Octez's keepalive and user-timeout options to a TCP transport's
    socket, and ``TCP_NODELAY`` (not Octez's): the P2P layer already gathers
    what it sends into batches, and its small control messages (Bootstrap,
    Advertise, swaps) should not wait for the peer's delayed acknowledgement
    of the previous segment (Nagle's algorithm adds up to 40 ms there).
    """
    handle = getattr(transport, "getHandle", None)
    sock = handle() if handle is not None else None
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        _fd_log.info(
            "cannot set TCP_NODELAY: {error}",
            event=ev.SET_SOCKET_OPTION_TCP_NODELAY_FAILED,
            error=str(exc),
        )
    user_timeout, keepalive = socket_settings()
    if keepalive is not None:
        idle, interval = keepalive
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if hasattr(socket, "TCP_KEEPIDLE"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, idle // 1000))
            if hasattr(socket, "TCP_KEEPINTVL"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, interval // 1000))
        except OSError as exc:
            _fd_log.info(
                "cannot set TCP keepalive: {error}",
                event=ev.SET_SOCKET_OPTION_TCP_KEEPALIVE_FAILED,
                error=str(exc),
            )
    if user_timeout and hasattr(socket, "TCP_USER_TIMEOUT"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout)
        except OSError as exc:
            _fd_log.info(
                "cannot set TCP user timeout: {error}",
                event=ev.SET_SOCKET_OPTION_TCP_USER_TIMEOUT_FAILED,
                error=str(exc),
            )


def with_backlog(description: str, backlog: int) -> str:
    """Add ``backlog=N`` to a ``tcp``/``tcp6`` endpoint string that sets none."""
    kind = description.split(":", 1)[0]
    if kind in ("tcp", "tcp6") and "backlog=" not in description:
        return f"{description}:backlog={backlog}"
    return description


class EndpointListener(Service):
    """
    One listening endpoint as a service; ``listening`` fires with the port
    (or the listening error), ``port`` is set while it listens.  Subclasses
    change what is logged (the admin API's listeners do).
    """

    def __init__(
        self, endpoint: IStreamServerEndpoint, factory: IProtocolFactory, description: str
    ) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.description = description
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort] | None = None

    def startService(self) -> None:
        super().startService()
        self.listening = self.endpoint.listen(self.factory)
        self.listening.addCallbacks(self._listened, self._failed)

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        self.log_listening(port)
        return port

    def _failed(self, failure: Failure) -> Failure:
        self.log_failure(failure)
        return failure

    def log_listening(self, port: IListeningPort) -> None:
        address = address_text(port.getHost())
        _log.info("listening on {address}", event=ev.ACTIVATE_NETWORK, address=address)

    def log_failure(self, failure: Failure) -> None:
        if failure.check(CannotListenError):  # an operator's problem, not a bug: no traceback
            _log.error(
                "failed to open listening socket {description}: {reason}",
                event=ev.INCOMING_ERROR,
                description=self.description,
                reason=failure.getErrorMessage(),
            )
            return
        _log.failure(
            "failed to open listening socket {description}",
            failure,
            event=ev.INCOMING_ERROR,
            description=self.description,
        )

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is not None:
            return port.stopListening()  # type: ignore[no-any-return]
        if self.listening is not None and not self.listening.called:
            self.listening.cancel()
        return None


def address_text(address: object) -> str:
    """A listening address as text: ``127.0.0.1:9732``, ``[::]:9732``, or a UNIX path's own text."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if isinstance(host, str) and isinstance(port, int):
        try:
            return Point(host, port).to_text()
        except ValueError:
            pass
    name = getattr(address, "name", None)
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name or address)


def when_all_listening(
    listeners: Sequence[EndpointListener], what: str
) -> Deferred[list[IListeningPort]]:
    """Fires with the ports of started ``listeners`` once all listen; fails with the first error."""
    waiting = [listener.listening for listener in listeners]
    if any(w is None for w in waiting):
        raise RuntimeError(f"the {what} is not started")
    if not waiting:
        return succeed([])

    def first_error(failure: Failure) -> Failure:
        # the listening error itself, not DeferredList's FirstError wrapper
        error = failure.value
        if isinstance(error, FirstError):
            sub: Failure = error.subFailure
            return sub
        return failure

    return (
        DeferredList(
            [w for w in waiting if w is not None], fireOnOneErrback=True, consumeErrors=True
        )
        .addCallback(lambda results: [port for _, port in results])
        .addErrback(first_error)
    )


class WelcomeService(MultiService):
    """Listens on every endpoint string for incoming P2P connections."""

    def __init__(
        self,
        reactor: IReactorTCP,
        listen: tuple[str, ...],
        factory: IProtocolFactory,
        backlog: int = 20,
    ) -> None:
        super().__init__()
        self.listeners: list[EndpointListener] = []
        for description in listen:
            full = with_backlog(description, backlog)
            listener = EndpointListener(serverFromString(reactor, full), factory, description)
            listener.setServiceParent(self)
            self.listeners.append(listener)

    def when_listening(self) -> Deferred[list[IListeningPort]]:
        """Fires with the listening ports once all are open (fails if one cannot open)."""
        return when_all_listening(self.listeners, "welcome service")

    @property
    def ports(self) -> list[IListeningPort]:
        return [listener.port for listener in self.listeners if listener.port is not None]

    def stopService(self) -> Deferred[None]:
        _log.info("stopping to accept connections", event=ev.SHUTDOWN_WELCOME_WORKER)
        return super().stopService()  # type: ignore[no-any-return]
