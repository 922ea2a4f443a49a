# -*- test-case-name: tests.test_p2p -*-
"""
The P2P layer as one object (Octez ``P2p``, behaviour.md §1, §15): what an
embedding Twisted application creates with its configuration, limits,
message encodings and metadata, and then uses to talk to peers.

:class:`P2P` is a ``Service`` that builds and wires the ACL, the IO
scheduler, the pool, the answerer and the connect handler; every operation
that waits returns a ``Deferred``.  :func:`faked_network` gives an object
with the same interface that opens no socket (Octez ``faked_network``,
in :mod:`txtezosp2p.p2p_faked`, re-exported here).
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorTime, IReactorUDP
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _events as ev
from .acl import ACL
from .admission import admission_policy
from .answerer import Answerer, PrivateAnswerer
from .connect_handler import ConnectHandler, tcp_endpoint_factory
from .connection import P2PConnection
from .interfaces import IP2P, EndpointFactory
from .io_scheduler import IOScheduler
from .limits import Limits
from .maintenance import MaintenanceService
from .p2p_config import P2PConfig, P2PSettings, listen_description
from .p2p_faked import FakedP2P, faked_network
from .peers_file import PeersFile, PeersFileService
from .pool import PeerMetaConfig, Pool
from .pool_state import PoolEvent
from .welcome import WelcomeService, configure_socket
from .wire.addresses import parse_discovery_addr
from .wire.encoding import (
    ConnectionMetadata,
    MessageEncoding,
    MetadataConfig,
    P2PMessageCodec,
    default_metadata_config,
)
from .wire.errors import (
    ConnectionClosed,
    DisconnectReason,
    MaintenanceDisabled,
)
from .wire.ids import PeerId, Point, to_ipv6
from .wire.stats import Stat

if TYPE_CHECKING:
    from .discovery import DiscoveryService

_log = ev.logger("p2p")

T = TypeVar("T")


@implementer(IP2P)
class P2P(Service):
    """
    A P2P layer: create it, register ``on_new_connection`` hooks, then
    :meth:`activate` (or start it as a service).  ``limits`` defaults to
    ``config.limits``.  ``clock`` defaults to the
    reactor; tests inject a ``task.Clock`` for timers while sockets stay real.
    The reactor is used as ``IReactorTCP`` only to listen and to dial by
    default, and as ``IReactorUDP`` only for LAN discovery: a clock alone
    serves a P2P that does neither.
    ``endpoint_factory`` is how points are dialled (by default TCP through
    ``reactor``, see :func:`~txtezosp2p.connect_handler.tcp_endpoint_factory`);
    the network simulator and socket-free tests give in-memory endpoints.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        config: P2PConfig,
        limits: Limits | None = None,
        *,
        message_encodings: Sequence[MessageEncoding[Any]] = (),
        peer_meta: PeerMetaConfig | None = None,
        conn_meta: MetadataConfig[Any] | None = None,
        clock: IReactorTime | None = None,
        rng: random.Random | None = None,
        endpoint_factory: EndpointFactory | None = None,
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.clock: IReactorTime = clock or reactor
        self.config = config
        self.limits = limits = config.limits if limits is None else limits
        self.rng = rng or random.Random()
        self.codec = P2PMessageCodec(message_encodings)
        self.conn_meta = conn_meta or default_metadata_config(
            ConnectionMetadata(config.disable_mempool, config.private_mode)
        )
        self.acl = ACL(self.clock, limits)
        self.scheduler = IOScheduler.from_limits(self.clock, limits)
        self.scheduler.socket_options = configure_socket
        self.pool = Pool(
            self.clock,
            self.acl,
            limits=limits,
            reconnection=config.reconnection,
            peer_meta=peer_meta,
            rng=self.rng,
        )
        answerer_class = PrivateAnswerer if config.private_mode else Answerer
        self.answerer = answerer_class(
            self.pool,
            self.clock,
            connect=self._dial_for_swap,
            swap_linger=limits.swap_linger,
            disable_peer_discovery=config.disable_peer_discovery,
            rng=self.rng,
        )
        session_config = config.session_config(self.codec, self.conn_meta)
        if limits is not config.limits:
            session_config = attrs.evolve(session_config, limits=limits)
        #: Who gets a slot and whom maintenance closes (txtezosp2p.admission).
        self.admission = admission_policy(
            limits, maintenance=limits.maintenance_idle_time is not None
        )
        if endpoint_factory is None:
            endpoint_factory = tcp_endpoint_factory(
                cast(IReactorTCP, reactor), limits.connection_timeout
            )
        self.handler = ConnectHandler(
            endpoint_factory,
            self.pool,
            session_config,
            self.answerer,
            clock=self.clock,
            scheduler=self.scheduler,
            private_mode=config.private_mode,
            disable_peer_discovery=config.disable_peer_discovery,
            maintenance=limits.maintenance_idle_time is not None,
            admission=self.admission,
        )
        for point, expected in config.trusted_points:
            self.pool.register_point(point, trusted=True, expected_peer_id=expected)
        self.peers_file: PeersFileService | None = None
        if config.peers_file is not None:
            self.peers_file = PeersFileService(
                PeersFile(config.peers_file, self.pool), self.clock, config.peers_file_interval
            )
        self.welcome: WelcomeService | None = None
        if config.listen:
            self.welcome = WelcomeService(
                cast(IReactorTCP, reactor),
                tuple(listen_description(entry) for entry in config.listen),
                self.handler.server_factory(),
                limits.backlog,
            )
        self.discovery: DiscoveryService | None = None
        self.maintenance: MaintenanceService | None = None
        if limits.maintenance_idle_time is not None:
            self.maintenance = MaintenanceService(
                self.clock,
                self.pool,
                self.handler.connect,
                self.answerer,
                limits,
                private_mode=config.private_mode,
                wake_discovery=self._wake_discovery,
                rng=self.rng,
                admission=self.admission,
            )
        self.ports: list[IListeningPort] = []
        #: Connections that may have application messages, in turn order (a set).
        self._ready: OrderedDict[P2PConnection, None] = OrderedDict()
        self._any_waiters: deque[Deferred[tuple[P2PConnection, object]]] = deque()
        self._serving_any = False
        self._serve_again = False
        self.handler.on_new_connection(self._watch_connection)
        self._activated = False
        #: Messages and events counted for metrics (Octez's ``p2p`` metrics):
        #: pool events by kind and application messages sent and received.
        self.counters: Counter[str] = Counter()
        self.pool.watch(self._count_event)

    # -- lifecycle -----------------------------------------------------------

    @property
    def peer_id(self) -> PeerId:
        return self.config.identity.peer_id

    def startService(self) -> None:
        """Create-time services: the ACL, the scheduler, the peers file (loaded now)."""
        if self.running:
            return
        super().startService()
        self.acl.startService()
        self.scheduler.startService()
        if self.peers_file is not None:
            self.peers_file.startService()

    def activate(self) -> Deferred[None]:
        """
        Start accepting connections, then (with maintenance) dialling; fires
        once the listening sockets are open.  Safe to call more than once.
        """
        if not self.running:
            self.startService()
        if self._activated:
            return succeed(None)
        self._activated = True
        _log.info("activating the P2P layer", event=ev.ACTIVATE_LAYER, peer_id=str(self.peer_id))
        if self.welcome is None:
            self._start_workers()
            return succeed(None)
        self.welcome.startService()
        return self.welcome.when_listening().addCallback(self._listening)

    def _listening(self, ports: list[IListeningPort]) -> None:
        self.ports = ports
        if self.config.advertised_port is None and ports:
            host: Any = ports[0].getHost()
            if isinstance(getattr(host, "port", None), int):
                self.handler.session_config = attrs.evolve(
                    self.handler.session_config, advertised_port=host.port
                )
        self._start_workers()

    def _start_workers(self) -> None:
        config = self.config
        if (
            self.maintenance is not None
            and config.discovery_addr is not None
            and self.listening_port is not None
        ):
            from .discovery import DiscoveryService

            destination = parse_discovery_addr(config.discovery_addr)
            trusted = config.trust_discovered_peers

            def register(point: Point, trusted_flag: bool | None) -> object:
                return self.pool.register_new_point(point, trusted_flag)

            self.discovery = DiscoveryService(
                cast(IReactorUDP, self.reactor),
                peer_id=self.peer_id,
                listening_port=self.listening_port,
                register=register,
                destination=destination,
                listen_port=config.discovery_listen_port or destination[1],
                listen_interface=config.discovery_listen_interface,
                trust_discovered_peers=trusted,
                clock=self.clock,
            )
            self.discovery.startService()
        if self.maintenance is not None:
            self.maintenance.startService()

    def _dial_for_swap(self, point: Point) -> Deferred[P2PConnection]:
        # the answerer and the connect handler need each other: the handler is
        # built after the answerer, so the answerer dials through this method
        return self.handler.connect(point)

    def _wake_discovery(self) -> None:
        if self.discovery is not None:
            self.discovery.wake()

    @property
    def listening_port(self) -> int | None:
        """The port we announce to peers (once listening, the actual port)."""
        return self.handler.session_config.advertised_port

    @property
    def bound_ports(self) -> list[int]:
        """The ports the layer really listens on (TCP and TCP6 sockets), once listening."""
        ports = []
        for port in self.ports:
            number = getattr(port.getHost(), "port", None)
            if isinstance(number, int):
                ports.append(number)
        return ports

    def shutdown(self) -> Deferred[None]:
        """Stop everything in Octez's order; fires once every connection is closed."""
        return self.stopService()

    def stopService(self) -> Deferred[None]:
        """
        Octez's shutdown order (behaviour.md §1.3): stop accepting, stop
        maintenance and discovery, save the peers file and close every
        connection ("pool destroyed"), cancel incoming handshakes, stop the
        scheduler and the ACL.
        """
        if not self.running:
            return succeed(None)
        super().stopService()
        self._activated = False
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        async def stop(service: Service | None, event: str) -> None:
            if service is not None and service.running:
                _log.info("stopping {service}", event=event, service=type(service).__name__)
                await maybeDeferred(service.stopService)

        await stop(self.welcome, ev.SHUTDOWN_WELCOME_WORKER)
        self.ports = []
        await stop(self.maintenance, ev.SHUTDOWN_MAINTENANCE_WORKER)
        await stop(self.discovery, ev.SHUTDOWN_DISCOVERY)
        await stop(self.peers_file, ev.SHUTDOWN_CONNECTION_POOL)
        closing = [c.disconnect(DisconnectReason.POOL_DESTROYED) for c in self.connections()]
        waiters, self._any_waiters = self._any_waiters, deque()
        for waiter in waiters:
            waiter.errback(Failure(ConnectionClosed("P2P layer shut down")))
        self.handler.cancel_incoming()
        self.handler.cancel_outgoing()
        await DeferredList(closing, consumeErrors=True)
        self.handler.log_summary.flush()
        _log.info("stopping the IO scheduler", event=ev.SHUTDOWN_SCHEDULER)
        await maybeDeferred(self.scheduler.stopService)
        await maybeDeferred(self.acl.stopService)

    def maintain(self) -> Deferred[None]:
        """Run a maintenance step; fires once the connection count is inside the band."""
        if self.maintenance is None:
            return fail(MaintenanceDisabled("maintenance is disabled"))
        return self.maintenance.maintain()

    def roll(self) -> Deferred[int]:
        """Replace a few connections with fresh ones (see MaintenanceService.roll)."""
        if self.maintenance is None:
            return fail(MaintenanceDisabled("maintenance is disabled"))
        return self.maintenance.roll()

    # -- connections ---------------------------------------------------------

    def connect(
        self,
        point: Point,
        timeout: float | None = None,
        *,
        trusted: bool | None = None,
        expected_peer_id: PeerId | None = None,
    ) -> Deferred[P2PConnection]:
        """Dial ``point``; fires with the running connection (behaviour.md §3.2)."""
        return self.handler.connect(
            point, trusted=trusted, expected_peer_id=expected_peer_id, timeout=timeout
        )

    def connections(self) -> list[P2PConnection]:
        """The running connections."""
        return self.pool.connections()

    def iter_connections(self) -> Iterator[P2PConnection]:
        return iter(self.connections())

    def fold_connections(self, function: Callable[[P2PConnection, T], T], initial: T) -> T:
        value = initial
        for connection in self.connections():
            value = function(connection, value)
        return value

    def find_connection_by_peer_id(self, peer_id: PeerId) -> P2PConnection | None:
        connection: P2PConnection | None = self.pool.connection_for_peer(peer_id)
        return connection

    def find_connection_by_point(self, point: Point) -> P2PConnection | None:
        connection: P2PConnection | None = self.pool.connection_for_point(point)
        return connection

    def connection_info(self, connection: P2PConnection) -> Any:
        return connection.info

    def connection_local_metadata(self, connection: P2PConnection) -> Any:
        return connection.local_metadata

    def connection_remote_metadata(self, connection: P2PConnection) -> Any:
        return connection.remote_metadata

    def connection_stat(self, connection: P2PConnection) -> Stat:
        return connection.stat()

    def negotiated_version(self, connection: P2PConnection) -> Any:
        return connection.negotiated_version

    def global_stat(self) -> Stat:
        return self.scheduler.stat()

    def disconnect(
        self,
        connection: P2PConnection,
        wait: bool = False,
        reason: DisconnectReason | str = "disconnected",
    ) -> Deferred[None]:
        """
        Close a connection (idempotent); ``wait`` sends queued messages first.
        ``reason`` is one of Octez's (``DisconnectReason``) or a text of one's own.
        """
        return connection.disconnect(reason, wait=wait)

    def on_new_connection(self, hook: Callable[[PeerId, P2PConnection], None]) -> None:
        self.handler.on_new_connection(hook)

    def on_disconnection(self, hook: Callable[[PeerId], None]) -> None:
        self.handler.on_disconnection(hook)

    def watch(self, watcher: Callable[[PoolEvent], None]) -> Callable[[], None]:
        """The global event stream (``/network/log``)."""
        return self.pool.watch(watcher)

    # -- messages ------------------------------------------------------------

    def send(self, connection: P2PConnection, message: object) -> Deferred[None]:
        """Queue ``message``; fires once queued; fails if the connection is closed."""
        self.counters["user_message_sent"] += 1
        return connection.send(message)

    def try_send(self, connection: P2PConnection, message: object) -> bool:
        """Queue ``message`` if there is room; False if dropped or closed."""
        sent = connection.try_send(message)
        if sent:
            self.counters["user_message_sent"] += 1
        return sent

    def recv(self, connection: P2PConnection) -> Deferred[object]:
        """The next application message of ``connection``."""
        return connection.recv()

    def recv_any(self) -> Deferred[tuple[P2PConnection, object]]:
        """
        The next application message of any connection, as ``(connection,
        message)``.  Connections with messages waiting are served in turn
        (round robin), so a flooding peer cannot starve the others.
        """
        waiter: Deferred[tuple[P2PConnection, object]] = Deferred(self._forget_any)
        self._any_waiters.append(waiter)
        self._serve_any()
        return waiter

    def _forget_any(self, waiter: Deferred[Any]) -> None:
        if waiter in self._any_waiters:
            self._any_waiters.remove(waiter)

    def _count_event(self, event: PoolEvent) -> None:
        self.counters[event.kind] += 1

    def _watch_connection(self, peer_id: PeerId, connection: P2PConnection) -> None:
        connection.on_app_message = self._app_message_ready

    def _app_message_ready(self, connection: P2PConnection) -> None:
        self.counters["user_message_received"] += 1
        self._ready.setdefault(connection, None)  # keeps its place if already waiting
        self._serve_any()

    def _serve_any(self) -> None:
        # Not re-entrant: taking a message frees room in a connection's queue,
        # its worker queues the next message and we are called again; the
        # nested call only asks this loop to go round once more.
        if self._serving_any:
            self._serve_again = True
            return
        self._serving_any = True
        try:
            while True:
                self._serve_again = False
                ready = self._ready
                while self._any_waiters and ready:
                    connection, _ = ready.popitem(last=False)
                    try:
                        message = connection.recv_now()
                    except ConnectionClosed:
                        continue
                    if message is None:
                        continue
                    if len(connection.app_queue):
                        # its next turn comes after the others' (even if taking
                        # this message made its worker queue the next one)
                        ready.pop(connection, None)
                        ready[connection] = None
                    self._any_waiters.popleft().callback((connection, message))
                if not self._serve_again:
                    return
        finally:
            self._serving_any = False

    def broadcast(
        self,
        connections: Sequence[P2PConnection] | None,
        message: object,
        *,
        except_: Callable[[P2PConnection], bool] | None = None,
        alt: tuple[Callable[[P2PConnection], bool], object] | None = None,
    ) -> int:
        """
        Queue ``message`` on every connection (all running ones by default)
        not matching ``except_``; where ``alt = (predicate, other)`` matches,
        queue ``other`` instead.  Each distinct message is encoded once.  Best
        effort: full queues and closed connections are skipped.  Returns how
        many connections got a message.
        """
        targets = self.connections() if connections is None else list(connections)
        encoded: dict[int, bytes] = {}

        def body(value: object) -> bytes:
            key = id(value)
            if key not in encoded:
                encoded[key] = self.codec.encode(value)
            return encoded[key]

        sent = 0
        for connection in targets:
            if except_ is not None and except_(connection):
                continue
            value = alt[1] if alt is not None and alt[0](connection) else message
            if connection.write_encoded_now(body(value)):
                sent += 1
        _log.debug("broadcast to {count} peers", event=ev.BROADCAST, count=sent)
        self.counters["broadcast_message_sent"] += sent
        return sent

    def send_bootstrap(self) -> int:
        """Ask every public peer for points (what maintenance does when short of peers)."""
        return sum(self.answerer.send_bootstrap(c.link) for c in self.connections())

    # -- metadata ------------------------------------------------------------

    def get_peer_metadata(self, peer_id: PeerId) -> Any:
        return self.pool.get_peer_metadata(peer_id)

    def set_peer_metadata(self, peer_id: PeerId, metadata: Any) -> None:
        self.pool.set_peer_metadata(peer_id, metadata)

    # -- ACL (behaviour.md §6.3, §6.4) ---------------------------------------

    def greylist_addr(self, address: Any) -> None:
        self.acl.greylist_addr(to_ipv6(address) if isinstance(address, str) else address)

    def greylist_peer(self, peer_id: PeerId) -> None:
        """Greylist a connected peer and its current address (no effect otherwise)."""
        connection = self.find_connection_by_peer_id(peer_id)
        if connection is None:
            return
        self.acl.greylist_addr(connection.id_point.addr)
        self.acl.greylist_peer(peer_id)

    def ban_point(self, point: Point) -> None:
        """Untrust, ban the address, ban and drop the peers connected from it."""
        info = self.pool.points.get(point)
        if info is not None:
            info.trusted = False
        self.acl.ban_addr(point.addr)
        for connection in self.connections():
            if connection.id_point.addr == point.addr:
                self.acl.ban_peer(connection.peer_id)
                connection.disconnect(DisconnectReason.IP_MANUALLY_BANNED)

    def unban_point(self, point: Point) -> None:
        self.acl.unban_addr(point.addr)
        for connection in self.connections():
            if connection.id_point.addr == point.addr:
                self.acl.unban_peer(connection.peer_id)

    def trust_point(self, point: Point) -> None:
        self.unban_point(point)
        self.pool.register_point(point, trusted=True)

    def open_point(self, point: Point) -> None:
        """Neither banned nor trusted."""
        self.unban_point(point)
        info = self.pool.points.get(point)
        if info is not None:
            info.trusted = False

    def ban_peer(self, peer_id: PeerId) -> None:
        info = self.pool.peers.get(peer_id)
        if info is not None:
            info.trusted = False
        self.acl.ban_peer(peer_id)
        connection = self.find_connection_by_peer_id(peer_id)
        if connection is not None:
            connection.disconnect(DisconnectReason.PEER_ID_MANUALLY_BANNED)

    def unban_peer(self, peer_id: PeerId) -> None:
        self.acl.unban_peer(peer_id)

    def trust_peer(self, peer_id: PeerId) -> None:
        self.unban_peer(peer_id)
        self.pool.register_peer(peer_id).trusted = True

    def open_peer(self, peer_id: PeerId) -> None:
        self.unban_peer(peer_id)
        info = self.pool.peers.get(peer_id)
        if info is not None:
            info.trusted = False


__all__ = ["P2P", "FakedP2P", "P2PConfig", "P2PSettings", "faked_network"]
