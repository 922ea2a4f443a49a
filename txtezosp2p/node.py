# -*- test-case-name: tests.test_node -*-
"""
The composition root of a node: the one place that builds the identity,
the session configuration, the listeners and the dialers, all on one
injected reactor.

:class:`Node` is a ``MultiService``.  Starting it loads ``identity.json``
from the data directory (or mines a new identity off the reactor thread,
as ``octez-node run`` does on first start), listens on its endpoint
strings, dials the peers it was given, and logs every established session
with its remote peer id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.application.internet import ClientService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from . import _backend
from . import _events as ev
from .encoding import MessageEncoding, P2PMessageCodec, raw_message_encodings
from .errors import P2PError
from .identity import DEFAULT_EXPECTED_POW, Identity, IdentityFile, generate_identity_in_thread
from .ids import Point
from .interfaces import IMessageCodec
from .io_scheduler import IOScheduler
from .limits import Limits
from .session import MAINNET, Session, SessionConfig, SessionFactory, Versions

_log = ev.logger("p2p")

DEFAULT_DATA_DIR = "tezos-p2p-data"
DEFAULT_LISTEN = "tcp:9732"
DEFAULT_PORT = 9732


def parse_peer(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """
    ``HOST[:PORT]`` with ``HOST`` an IPv4 address, a bracketed IPv6 address
    or a name (wire.md §9.2); the port defaults to 9732.
    """
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"unterminated IPv6 address in {text!r}")
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid point {text!r}")
        port_text = rest[1:]
    elif text.count(":") > 1:
        raise ValueError(f"IPv6 addresses must be bracketed: {text!r}")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"missing host in {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) <= 0xFFFF:
        raise ValueError(f"invalid port in {text!r}")
    return host, int(port_text)


def _literal_point(host: str, port: int) -> Point | None:
    try:
        return Point(host, port)
    except ValueError:
        return None


@attrs.frozen(kw_only=True)
class NodeOptions:
    """What a node is told to do (what ``twistd tezos-p2p`` options fill in)."""

    data_dir: str = DEFAULT_DATA_DIR
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    peers: tuple[str, ...] = ()
    expected_pow: float = DEFAULT_EXPECTED_POW
    chain_name: str = MAINNET
    advertised_port: int | None = None
    limits: Limits = attrs.field(factory=Limits)
    identity_workers: int | None = None


class _ListeningService(Service):
    """Listens on one endpoint while running; ``port`` is set once listening."""

    def __init__(self, endpoint: IStreamServerEndpoint, factory: Factory) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort] | None = None

    def startService(self) -> None:
        super().startService()
        self._listening = self.endpoint.listen(self.factory)
        self._listening.addCallback(self._listened)

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        return port

    def when_listening(self) -> Deferred[IListeningPort]:
        if self.port is not None:
            return succeed(self.port)
        assert self._listening is not None
        waiter: Deferred[IListeningPort] = Deferred()

        def relay(outcome: IListeningPort | Failure) -> IListeningPort | Failure:
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
                return None  # type: ignore[return-value]
            waiter.callback(outcome)
            return outcome

        self._listening.addBoth(relay)
        return waiter

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()  # type: ignore[no-any-return]
        if self._listening is not None:
            self._listening.cancel()
        return None


class _DialerFactory(Factory):
    """Builds outgoing sessions for a ``ClientService`` that keeps one peer connected."""

    noisy = False

    def __init__(self, node: Node, point: Point | None) -> None:
        self.node = node
        self.point = point

    def buildProtocol(self, addr: Any) -> Protocol:
        assert self.node.session_config is not None
        session = Session(
            self.node.session_config, self.node.reactor, incoming=False, point=self.point
        )
        self.node._watch(session)
        return self.node.scheduler.wrap(session)


class Node(MultiService):
    """
    A running P2P node.

    ``reactor`` provides time, TCP and threads; ``codec`` the message
    encodings (by default the P2P envelope with Octez's shell messages kept
    raw, so that a Tezos peer's traffic decodes); ``on_session`` is called
    with every established :class:`Session`.
    """

    def __init__(
        self,
        reactor: Any,
        options: NodeOptions,
        *,
        codec: IMessageCodec | None = None,
        app_encodings: Sequence[MessageEncoding[Any]] | None = None,
        identity: Identity | None = None,
        on_session: Callable[[Session], None] | None = None,
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.options = options
        self.codec: IMessageCodec = codec or P2PMessageCodec(
            raw_message_encodings() if app_encodings is None else app_encodings
        )
        self.identity = identity
        self.on_session = on_session
        self.session_config: SessionConfig | None = None
        self.scheduler = IOScheduler.from_limits(reactor, options.limits)
        self.scheduler.setServiceParent(self)
        self.sessions: set[Session] = set()
        self.listeners: list[_ListeningService] = []
        self._ready: Deferred[Identity] | None = None
        self._waiters: list[Deferred[Node]] = []

    # -- lifecycle -----------------------------------------------------------

    def startService(self) -> None:
        super().startService()  # starts the IO scheduler
        _log.info(
            "starting node (data directory {data_dir}, compiled modules {backend})",
            event=ev.ACTIVATE_LAYER,
            data_dir=os.path.abspath(self.options.data_dir),
            backend=", ".join(f"{k}: {v}" for k, v in _backend.describe().items()),
        )
        self._ready = self._load_identity()
        self._ready.addCallback(self._start_network).addErrback(self._start_failed)

    def when_ready(self) -> Deferred[Node]:
        """Fires once the identity is loaded and the listeners are up."""
        waiter: Deferred[Node] = Deferred()
        if self.session_config is not None and all(svc.port for svc in self.listeners):
            waiter.callback(self)
        else:
            self._waiters.append(waiter)
        return waiter

    def _load_identity(self) -> Deferred[Identity]:
        if self.identity is not None:
            return succeed(self.identity)
        store = IdentityFile.in_directory(self.options.data_dir)
        if store.exists():
            identity = store.load()
            _log.info(
                "identity {peer_id} loaded from {path}",
                event=ev.IDENTITY_LOADED,
                peer_id=str(identity.peer_id),
                path=store.path,
            )
            return succeed(identity)
        _log.info(
            "no identity in {path}: generating one with proof of work {difficulty}",
            event=ev.IDENTITY_GENERATED,
            path=store.path,
            difficulty=self.options.expected_pow,
        )

        def generated(identity: Identity) -> Identity:
            store.save(identity)
            _log.info(
                "identity {peer_id} stored in {path}",
                event=ev.IDENTITY_GENERATED,
                peer_id=str(identity.peer_id),
                path=store.path,
            )
            return identity

        mining = generate_identity_in_thread(
            self.reactor, self.options.expected_pow, workers=self.options.identity_workers
        )
        return mining.addCallback(generated)

    def _start_network(self, identity: Identity) -> Deferred[None]:
        self.identity = identity
        options = self.options
        self.session_config = SessionConfig(
            identity=identity,
            versions=Versions(options.chain_name),
            codec=self.codec,
            pow_target=options.expected_pow,
            advertised_port=options.advertised_port,
            limits=options.limits,
        )
        factory = SessionFactory(
            self.session_config, self.reactor, on_session=self._watch, scheduler=self.scheduler
        )
        for description in options.listen:
            listener = _ListeningService(serverFromString(self.reactor, description), factory)
            listener.setServiceParent(self)
            self.listeners.append(listener)
        listening = [listener.when_listening() for listener in self.listeners]
        from twisted.internet.defer import gatherResults

        return gatherResults(listening, consumeErrors=True).addCallback(self._listening, factory)

    def _listening(self, ports: list[IListeningPort], factory: SessionFactory) -> None:
        assert self.session_config is not None
        if self.options.advertised_port is None:
            hosts: list[Any] = [p.getHost() for p in ports]
            tcp = [host.port for host in hosts if isinstance(getattr(host, "port", None), int)]
            if tcp:
                # announce the port we actually listen on (matters for tcp:0)
                self.session_config = attrs.evolve(self.session_config, advertised_port=tcp[0])
                factory.config = self.session_config
        for port in ports:
            _log.info(
                "listening on {address}",
                event=ev.ACTIVATE_NETWORK,
                address=str(port.getHost()),
            )
        for text in self.options.peers:
            self._dial(text)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(self)

    def _dial(self, text: str) -> None:
        host, port = parse_peer(text)
        endpoint = HostnameEndpoint(
            self.reactor, host, port, timeout=self.options.limits.connection_timeout
        )
        dialer = ClientService(
            endpoint,
            _DialerFactory(self, _literal_point(host, port)),
            clock=self.reactor,
        )
        dialer.setServiceParent(self)

    def _start_failed(self, failure: Failure) -> None:
        _log.failure("node could not start", failure, event=ev.ACTIVATE_LAYER)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)
        if IReactorCore.providedBy(self.reactor) and self.reactor.running:
            self.reactor.stop()

    def stopService(self) -> Deferred[None]:
        if self._ready is not None and not self._ready.called:
            self._ready.cancel()
        closing = [session.close("node shutting down") for session in list(self.sessions)]
        stopped = super().stopService()
        from twisted.internet.defer import DeferredList

        return DeferredList([*closing, stopped], consumeErrors=True).addCallback(lambda _: None)

    # -- sessions ------------------------------------------------------------

    def _watch(self, session: Session) -> None:
        session.when_established().addCallbacks(self._established, self._handshake_failed)

    def _established(self, session: Session) -> None:
        assert session.info is not None
        self.sessions.add(session)
        info = session.info
        _log.info(
            "session established with {peer_id} at {point} ({direction})",
            event=ev.NEW_CONNECTION,
            peer_id=str(info.peer_id),
            point=str(info.id_point),
            direction="incoming" if info.incoming else "outgoing",
            version=str(session.negotiated_version),
        )
        session.when_closed().addCallback(self._closed, session)
        if self.on_session is not None:
            self.on_session(session)
        else:
            self._drain(session)

    def _drain(self, session: Session) -> None:
        """Read and log what a peer sends, so that its queue never fills up."""

        def received(message: object) -> None:
            _log.debug(
                "message from {peer_id}: {message}",
                event="message_read",
                peer_id=str(session.peer_id),
                message=repr(message),
            )
            self._drain(session)

        session.read().addCallbacks(received, lambda _: None)

    def _handshake_failed(self, failure: Failure) -> None:
        # the session already logged why (event authentication_error)
        if not failure.check(P2PError):
            _log.failure("unexpected handshake failure", failure, event=ev.AUTHENTICATION_ERROR)

    def _closed(self, reason: str, session: Session) -> None:
        self.sessions.discard(session)
        _log.info(
            "session with {peer_id} closed: {reason}",
            event=ev.DISCONNECTED,
            peer_id=str(session.peer_id),
            reason=reason,
        )
