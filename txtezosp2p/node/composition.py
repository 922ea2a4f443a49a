# -*- test-case-name: tests.test_node -*-
"""
The composition root of a node: the one place that turns options (an Octez
configuration file plus command-line overrides, see :mod:`txtezosp2p.node.tap`)
into a running P2P layer on one injected reactor.

:class:`Node` is a ``MultiService``.  Starting it:

1. loads ``identity.json`` from the data directory, or mines a new identity
   off the reactor thread (as ``octez-node run`` does on first start);
2. resolves the bootstrap peers once (host names through the system
   resolver, in a thread; a name that does not resolve is logged and
   skipped);
3. builds the :class:`~txtezosp2p.p2p.P2P` layer (ACL, IO scheduler, pool,
   answerer, connect handler, peers file, welcome, discovery and
   maintenance services) and activates it: listen, then discover and
   maintain.

Stopping it stops the P2P layer in Octez's order (behaviour.md section 1.3):
stop accepting, stop maintenance and discovery, save the peers file, close
every connection with a reason, stop the scheduler.

Without an ``on_connection`` hook, a node reads and logs (at debug level)
every application message, so that a peer's traffic never fills a queue.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorCore
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from .. import _backend
from .. import _events as ev
from ..connection import P2PConnection
from ..identity import DEFAULT_EXPECTED_POW, Identity, IdentityFile, generate_identity_in_thread
from ..limits import Limits
from ..observer import Observer, ObserverConfig
from ..p2p import P2P, P2PConfig
from ..pool import PeerMetaConfig
from ..pool_state import ReconnectionConfig
from ..wire.encoding import MessageEncoding, MetadataConfig, raw_message_encodings
from ..wire.errors import ConnectionClosed
from ..wire.ids import PeerId, Point
from ..wire.shell import shell_message_encodings
from ..wire.versions import MAINNET, Versions
from .admin import AdminService
from .config import DEFAULT_P2P_PORT, ConfigError, NodeConfig, parse_peer_text
from .metrics import register_observer
from .observer_api import mount_observer

_log = ev.logger("p2p.node")

DEFAULT_DATA_DIR = "tezos-p2p-data"
DEFAULT_LISTEN = "tcp:9732"
DEFAULT_PORT = DEFAULT_P2P_PORT
#: Octez's file names in the data directory.
IDENTITY_FILE = "identity.json"
PEERS_FILE = "peers.json"
CONFIG_FILE = "config.json"


def parse_peer(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """
    ``HOST[:PORT]`` with ``HOST`` an IPv4 address, a bracketed IPv6 address
    or a name (wire.md section 9.2); the port defaults to 9732.  A
    ``#peer_id`` suffix is accepted (see :func:`parse_bootstrap_peer`).
    """
    try:
        host, port, _ = parse_peer_text(text.strip(), default_port)
    except ConfigError as error:
        raise ValueError(str(error)) from None
    return host, port


def parse_bootstrap_peer(text: str) -> tuple[str, int, PeerId | None]:
    """``HOST[:PORT][#PEER_ID]``, as in ``bootstrap-peers`` and ``--peer``."""
    try:
        return parse_peer_text(text.strip(), DEFAULT_PORT)
    except ConfigError as error:
        raise ValueError(str(error)) from None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def listen_endpoint(host: str, port: int) -> str:
    """
    The endpoint string for Octez's ``listen-addr`` ``host:port``: ``tcp``
    for IPv4, ``tcp6`` for IPv6 (``::`` also accepts IPv4 where the system
    allows dual-stack sockets).  A host name is resolved now, to its first
    address.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:  # pragma: no cover - getaddrinfo raises instead
            raise ValueError(f"cannot resolve {host!r}") from None
        address = ipaddress.ip_address(infos[0][4][0])
    if isinstance(address, ipaddress.IPv4Address):
        return f"tcp:{port}:interface={address}"
    return f"tcp6:{port}:interface={_escape(address.compressed)}"


@attrs.frozen(kw_only=True)
class NodeOptions:
    """Everything a node is told to do (what ``twistd tezos-p2p`` fills in)."""

    data_dir: str = DEFAULT_DATA_DIR
    #: Endpoint strings to listen on; none: no incoming connections.
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    #: ``host[:port][#peer_id]`` entries: trusted points dialled first.
    bootstrap_peers: tuple[str, ...] = ()
    expected_pow: float = DEFAULT_EXPECTED_POW
    chain_name: str = MAINNET
    advertised_port: int | None = None
    private_mode: bool = False
    limits: Limits = attrs.field(factory=Limits)
    reconnection: ReconnectionConfig = attrs.field(factory=ReconnectionConfig)
    disable_mempool: bool = False
    disable_peer_discovery: bool = False
    #: LAN discovery: where announcements go (``None``: off); the answerer
    #: listens on ``discovery_interface`` and the destination's port.
    discovery: tuple[str, int] | None = None
    discovery_interface: str = "0.0.0.0"
    trust_discovered_peers: bool = False
    #: ``peers.json``: ``""`` means ``<data_dir>/peers.json``; ``None``: not kept.
    peers_file: str | None = ""
    peers_file_interval: float | None = 300.0
    identity_workers: int | None = None
    #: Endpoint strings of the admin HTTP API (none: no API).
    admin: tuple[str, ...] = ()
    #: Whether the admin API may bind a non-loopback address.
    admin_public: bool = False
    #: Observer mode (``--observe``): record the peers' shell gossip.
    observe: ObserverConfig | None = None

    @property
    def peers_file_path(self) -> str | None:
        if self.peers_file == "":
            return os.path.join(self.data_dir, PEERS_FILE)
        return self.peers_file

    @property
    def identity_file_path(self) -> str:
        return os.path.join(self.data_dir, IDENTITY_FILE)

    @classmethod
    def from_config(cls, config: NodeConfig, **overrides: Any) -> NodeOptions:
        """
        Options from an Octez configuration file (its ``network`` and ``p2p``
        sections), then ``overrides`` (attribute names of this class).
        """
        p2p = config.p2p
        listen: tuple[str, ...] = ()
        if p2p.listen_addr is not None:
            from .config import parse_listen_addr

            listen = (listen_endpoint(*parse_listen_addr(p2p.listen_addr)),)
        discovery = None
        if p2p.discovery_addr is not None:
            from .config import parse_discovery_addr

            discovery = parse_discovery_addr(p2p.discovery_addr)
        values: dict[str, Any] = {
            "listen": listen,
            "bootstrap_peers": config.bootstrap_peers,
            "expected_pow": p2p.expected_pow,
            "chain_name": config.network.chain_name,
            "advertised_port": p2p.advertised_net_port,
            "private_mode": p2p.private_mode,
            "limits": p2p.limits,
            "reconnection": p2p.reconnection,
            "disable_mempool": p2p.disable_mempool,
            "disable_peer_discovery": p2p.disable_peer_discovery,
            "discovery": discovery,
        }
        if config.data_dir is not None:
            values["data_dir"] = config.data_dir
        values.update(overrides)
        return cls(**values)


def resolve_points(
    reactor: Any, entries: Sequence[str]
) -> Deferred[list[tuple[Point, PeerId | None]]]:
    """
    The points of ``host[:port][#peer_id]`` entries: IP addresses as they
    are, host names through ``getaddrinfo`` in the reactor's thread pool
    (every address found).  Names that do not resolve are logged and
    skipped, as Octez does.
    """
    literal: list[tuple[Point, PeerId | None]] = []
    names: list[tuple[str, int, PeerId | None]] = []
    for entry in entries:
        host, port, peer_id = parse_bootstrap_peer(entry)
        try:
            literal.append((Point(host, port), peer_id))
        except ValueError:
            names.append((host, port, peer_id))
    if not names:
        return succeed(literal)

    def lookup() -> list[tuple[Point, PeerId | None]]:
        found: list[tuple[Point, PeerId | None]] = []
        for host, port, peer_id in names:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as error:
                _log.warn(
                    "cannot resolve bootstrap peer {host}: {error}",
                    event="cannot_resolve_bootstrap_peer",
                    host=host,
                    error=str(error),
                )
                continue
            for info in infos:
                address = str(info[4][0]).split("%", 1)[0]
                point = (Point(address, port), peer_id)
                if point not in found:
                    found.append(point)
        return found

    resolving = deferToThreadPool(reactor, reactor.getThreadPool(), lookup)
    return resolving.addCallback(lambda found: literal + [p for p in found if p not in literal])


ConnectionHook = Callable[[P2P, P2PConnection], None]


class Node(MultiService):
    """
    A running P2P node.

    ``reactor`` provides time, TCP, UDP and threads; ``clock`` (by default
    the reactor) drives every timer.  ``message_encodings`` are the
    application messages (by default Octez's shell messages, kept raw, so
    that a Tezos peer's traffic decodes); ``on_connection(p2p, connection)``
    is called for every connection that starts running (by default its
    messages are read and logged).
    """

    def __init__(
        self,
        reactor: Any,
        options: NodeOptions,
        *,
        message_encodings: Sequence[MessageEncoding[Any]] | None = None,
        identity: Identity | None = None,
        on_connection: ConnectionHook | None = None,
        peer_meta: PeerMetaConfig | None = None,
        conn_meta: MetadataConfig[Any] | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.clock = clock or reactor
        self.options = options
        self.message_encodings = (
            raw_message_encodings() if message_encodings is None else message_encodings
        )
        self.identity = identity
        self.on_connection = on_connection
        self.peer_meta = peer_meta
        self.conn_meta = conn_meta
        #: The P2P layer, once the identity is loaded.
        self.p2p: P2P | None = None
        #: The admin HTTP API, when ``options.admin`` lists endpoints.
        self.admin: AdminService | None = None
        if options.admin:
            self.admin = AdminService(
                reactor, options.admin, lambda: self.p2p, allow_public=options.admin_public
            )
            self.admin.setServiceParent(self)  # started first, stopped last
        #: The observer, in observer mode: typed shell messages, every connection watched.
        self.observer: Observer | None = None
        if options.observe is not None:
            self.observer = Observer(options.observe, self.clock)
            if message_encodings is None:
                self.message_encodings = shell_message_encodings()
            self.on_connection = self.on_connection or self.observer.watch
            if self.admin is not None:
                mount_observer(self.admin.resource, self.observer)
                register_observer(self.admin.resource.registry, self.observer)
        self._starting: Deferred[P2P] | None = None
        self._waiters: list[Deferred[P2P]] = []

    # -- lifecycle -----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        _log.info(
            "starting node (data directory {data_dir}, compiled modules {backend})",
            event=ev.ACTIVATE_LAYER,
            data_dir=os.path.abspath(self.options.data_dir),
            backend=", ".join(f"{k}: {v}" for k, v in _backend.describe().items()),
        )
        self._starting = Deferred.fromCoroutine(self._start())
        self._starting.addCallbacks(self._started, self._start_failed)

    async def _start(self) -> P2P:
        if self.admin is not None:
            # an admin endpoint that cannot listen stops the node before it
            # joins the network, as Octez's RPC server does
            await self.admin.when_listening()
        identity = await self._load_identity()
        self.identity = identity
        trusted = await resolve_points(self.reactor, self.options.bootstrap_peers)
        p2p = self.p2p = self._build(identity, trusted)
        p2p.setServiceParent(self)
        await p2p.activate()
        return p2p

    def _build(self, identity: Identity, trusted: list[tuple[Point, PeerId | None]]) -> P2P:
        options = self.options
        os.makedirs(options.data_dir, exist_ok=True)
        config = P2PConfig(
            identity=identity,
            versions=Versions(options.chain_name),
            listen=options.listen,
            advertised_port=options.advertised_port,
            trusted_points=tuple(trusted),
            private_mode=options.private_mode,
            proof_of_work_target=options.expected_pow,
            reconnection=options.reconnection,
            disable_mempool=options.disable_mempool,
            disable_peer_discovery=options.disable_peer_discovery,
            trust_discovered_peers=options.trust_discovered_peers,
            peers_file=options.peers_file_path,
            peers_file_interval=options.peers_file_interval,
            discovery_destination=options.discovery,
            discovery_listen_interface=options.discovery_interface,
        )
        p2p = P2P(
            self.reactor,
            config,
            options.limits,
            message_encodings=self.message_encodings,
            peer_meta=self.peer_meta,
            conn_meta=self.conn_meta,
            clock=self.clock,
        )
        p2p.on_new_connection(lambda _peer_id, connection: self._new_connection(p2p, connection))
        return p2p

    def _load_identity(self) -> Deferred[Identity]:
        if self.identity is not None:
            return succeed(self.identity)
        store = IdentityFile(self.options.identity_file_path)
        store.remove_stale_temp_files()
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
            os.makedirs(self.options.data_dir, exist_ok=True)
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

    def _started(self, p2p: P2P) -> None:
        _log.info(
            "node {peer_id} running, listening on port {port}",
            event=ev.ACTIVATE_NETWORK,
            peer_id=str(p2p.peer_id),
            port=p2p.listening_port,
        )
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(p2p)

    def _start_failed(self, failure: Failure) -> None:
        waiters, self._waiters = self._waiters, []
        from twisted.internet.defer import CancelledError

        if failure.check(CancelledError):
            for waiter in waiters:
                waiter.errback(failure)
            return
        _log.failure("node could not start", failure, event=ev.ACTIVATE_LAYER)
        for waiter in waiters:
            waiter.errback(failure)
        if IReactorCore.providedBy(self.reactor) and self.reactor.running:
            self.reactor.stop()

    def when_ready(self) -> Deferred[P2P]:
        """Fires with the P2P layer once it listens (fails if the node cannot start)."""
        waiter: Deferred[P2P] = Deferred()
        if self._starting is not None and self._starting.called and self.p2p is not None:
            waiter.callback(self.p2p)
        else:
            self._waiters.append(waiter)
        return waiter

    def stopService(self) -> Deferred[None]:
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        stopped: Deferred[None] = super().stopService()
        return stopped

    # -- connections ---------------------------------------------------------

    def _new_connection(self, p2p: P2P, connection: P2PConnection) -> None:
        if self.on_connection is not None:
            self.on_connection(p2p, connection)
        else:
            self._drain(connection)

    def _drain(self, connection: P2PConnection) -> None:
        """Read and log what a peer sends, so that its queue never fills up."""

        def received(message: object) -> None:
            if ev.debug_enabled():
                # the type and size only: nothing proportional to the message
                _log.debug(
                    "message from {peer_id}: {kind} ({size} bytes)",
                    event="message_read",
                    peer_id=str(connection.peer_id),
                    kind=type(message).__name__,
                    size=_payload_size(message),
                )
            self._drain(connection)

        def closed(failure: Failure) -> None:
            failure.trap(ConnectionClosed)

        connection.recv().addCallbacks(received, closed)


def _payload_size(message: object) -> int | None:
    """The length of a message's payload when it is a string (raw messages, text)."""
    payload = getattr(message, "payload", message)
    return len(payload) if isinstance(payload, bytes | bytearray | memoryview | str) else None


def stop_all(nodes: Sequence[Node]) -> Deferred[Any]:
    """Stop several nodes at once; fires when all are stopped."""
    return DeferredList([node.stopService() for node in nodes], consumeErrors=True)


__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_LISTEN",
    "Node",
    "NodeOptions",
    "listen_endpoint",
    "parse_bootstrap_peer",
    "parse_peer",
    "resolve_points",
]
