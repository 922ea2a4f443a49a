# -*- test-case-name: tests.test_node -*-
"""
The composition root of a node: the one place that turns a
:class:`~txtezosp2p.node.config.NodeConfig` (an Octez configuration file
evolved by command-line options, see :mod:`txtezosp2p.node.tap`) into a
running P2P layer on one injected reactor.

:class:`Node` is a ``MultiService``.  Starting it:

1. loads ``identity.json`` from the data directory, or mines a new identity
   off the reactor thread (as ``octez-node run`` does on first start);
2. resolves the bootstrap peers once (host names through the system
   resolver, in a thread; a name that does not resolve is logged and
   skipped);
3. builds the :class:`~txtezosp2p.p2p.P2P` layer (ACL, IO scheduler, pool,
   answerer, connect handler, peers file, welcome, discovery and
   maintenance services) and activates it: listen, then discover and
   maintain; a :class:`~txtezosp2p.node.dial_report.DialReport` sums up
   failed dials every 30 seconds.

Stopping it stops the P2P layer in Octez's order (behaviour.md section 1.3):
stop accepting, stop maintenance and discovery, save the peers file, close
every connection with a reason, stop the scheduler.

Without an ``on_connection`` hook, a node reads and logs (at debug level)
every application message, so that a peer's traffic never fills a queue.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import attrs
from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    fail,
    gatherResults,
    succeed,
)
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IAddress,
    IHostResolution,
    IReactorPluggableNameResolver,
    IReactorThreads,
    IReactorTime,
    IResolutionReceiver,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from .. import _backend
from .. import _events as ev
from ..connection import P2PConnection
from ..identity import (
    DEFAULT_EXPECTED_POW,
    Identity,
    IdentityFile,
    MiningProgress,
    expected_attempts,
    generate_identity_in_thread,
)
from ..limits import Limits
from ..observer import Observer, ObserverConfig
from ..p2p import P2P
from ..p2p_config import P2PConfig, P2PSettings, listen_endpoint
from ..pool import PeerMetaConfig
from ..pool_state import ReconnectionConfig
from ..wire.addresses import DEFAULT_LISTEN_ADDR, DEFAULT_P2P_PORT, parse_peer_text
from ..wire.encoding import MessageEncoding, MetadataConfig, raw_message_encodings
from ..wire.errors import ConnectionClosed, IdentityError, IdentityFileError
from ..wire.ids import PeerId, Point
from ..wire.shell import shell_message_encodings
from ..wire.versions import MAINNET, Versions
from .admin import AdminService
from .config import NETWORKS, PEERS_FILE, AdminSettings, NodeConfig
from .dial_report import DialReport
from .lock import DataDirLock, DataDirLocked
from .metrics import register_observer
from .observer_api import mount_observer

_log = ev.logger("p2p.node")

DEFAULT_LISTEN = DEFAULT_LISTEN_ADDR
DEFAULT_PORT = DEFAULT_P2P_PORT


def parse_peer(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """
    ``HOST[:PORT]`` with ``HOST`` an IPv4 address, a bracketed IPv6 address
    or a name (wire.md section 9.2); the port defaults to 9732.  A
    ``#peer_id`` suffix is accepted (see :func:`parse_bootstrap_peer`).
    """
    host, port, _ = parse_peer_text(text.strip(), default_port)
    return host, port


def parse_bootstrap_peer(text: str) -> tuple[str, int, PeerId | None]:
    """``HOST[:PORT][#PEER_ID]``, as in ``bootstrap-peers`` and ``--peer``."""
    return parse_peer_text(text.strip(), DEFAULT_PORT)


def NodeOptions(
    *,
    data_dir: str | None = None,
    listen: tuple[str, ...] = ("tcp:9732",),
    bootstrap_peers: tuple[str, ...] = (),
    expected_pow: float = DEFAULT_EXPECTED_POW,
    chain_name: str = MAINNET,
    advertised_port: int | None = None,
    private_mode: bool = False,
    limits: Limits | None = None,
    reconnection: ReconnectionConfig | None = None,
    disable_mempool: bool = False,
    disable_peer_discovery: bool = False,
    discovery: tuple[str, int] | None = None,
    discovery_interface: str = "0.0.0.0",
    trust_discovered_peers: bool = False,
    peers_file: str | None = "",
    peers_file_interval: float | None = 300.0,
    identity_workers: int | None = None,
    admin: tuple[str, ...] = (),
    admin_public: bool = False,
    observe: ObserverConfig | None = None,
) -> NodeConfig:
    """
    Deprecated: build a :class:`~txtezosp2p.node.config.NodeConfig` (the
    former options class's keywords, with its defaults).
    """
    warnings.warn(
        "NodeOptions is deprecated: build a txtezosp2p.node.config.NodeConfig",
        DeprecationWarning,
        stacklevel=2,
    )
    network = attrs.evolve(NETWORKS["mainnet"], name=None, chain_name=chain_name)
    for known in NETWORKS.values():
        if known.chain_name == chain_name:
            network = known
    return NodeConfig(
        data_dir=data_dir,
        network=network,
        bootstrap_peers=bootstrap_peers,
        identity_workers=identity_workers,
        admin=AdminSettings(endpoints=admin, allow_public=admin_public),
        observe=observe,
        p2p=P2PSettings(
            listen=listen,
            advertised_port=advertised_port,
            private_mode=private_mode,
            proof_of_work_target=expected_pow,
            limits=limits or Limits(),
            reconnection=reconnection or ReconnectionConfig(),
            disable_mempool=disable_mempool,
            disable_peer_discovery=disable_peer_discovery,
            trust_discovered_peers=trust_discovered_peers,
            peers_file=PEERS_FILE if peers_file == "" else peers_file,
            peers_file_interval=peers_file_interval,
            discovery_addr=None if discovery is None else f"{discovery[0]}:{discovery[1]}",
            discovery_listen_interface=discovery_interface,
        ),
    )


#: A bootstrap point and the peer id expected there, if any.
Seed = tuple[Point, PeerId | None]


def resolve_points(
    reactor: IReactorPluggableNameResolver, entries: Sequence[str]
) -> Deferred[list[Seed]]:
    """
    The points of ``host[:port][#peer_id]`` entries: IP addresses as they
    are, host names through the reactor's name resolver (every address
    found, IPv4 and IPv6).  Names that do not resolve are logged and
    skipped, as Octez does.
    """
    literal: list[Seed] = []
    names: list[tuple[str, int, PeerId | None]] = []
    for entry in entries:
        host, port, peer_id = parse_bootstrap_peer(entry)
        try:
            literal.append((Point(host, port), peer_id))
        except ValueError:
            names.append((host, port, peer_id))
    if not names:
        return succeed(literal)
    lookups = [_resolve_host(reactor, host, port, peer_id) for host, port, peer_id in names]

    def gather(
        results: list[list[Seed]],
    ) -> list[Seed]:
        found = list(literal)
        for points in results:
            found.extend(point for point in points if point not in found)
        return found

    return gatherResults(lookups).addCallback(gather)


@implementer(IResolutionReceiver)
class _Addresses:
    """Collects the addresses one name resolves to (``IResolutionReceiver``)."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.done: Deferred[list[str]] = Deferred()

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        if isinstance(address, (IPv4Address, IPv6Address)):
            host = address.host.split("%", 1)[0]  # no IPv6 scope id in a point
            if host not in self.addresses:
                self.addresses.append(host)

    def resolutionComplete(self) -> None:
        self.done.callback(self.addresses)


def _resolve_host(
    reactor: IReactorPluggableNameResolver, host: str, port: int, peer_id: PeerId | None
) -> Deferred[list[Seed]]:
    receiver = _Addresses()
    reactor.nameResolver.resolveHostName(receiver, host, port)

    def points(addresses: list[str]) -> list[Seed]:
        if not addresses:
            _log.warn(
                "cannot resolve bootstrap peer {host}: {error}",
                event=ev.CANNOT_RESOLVE_BOOTSTRAP_PEER,
                host=host,
                error="no address found",
            )
        return [(Point(address, port), peer_id) for address in addresses]

    return receiver.done.addCallback(points)


class NodeStartError(Exception):
    """
    Why a node cannot start, in one line for its operator: ``reason``, then
    ``hint`` (which ``twistd tezos-p2p`` option helps) in parentheses.
    """

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(f"{reason} ({hint})" if hint else reason)
        self.reason = reason
        self.hint = hint


def _listen_reason(error: CannotListenError) -> str:
    """``ADDR:PORT: reason`` of a listening failure."""
    reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
    return f"{error.interface or '*'}:{error.port}: {reason.lower()}"


def _os_reason(data_dir: str, error: OSError) -> str:
    where = error.filename if error.filename is not None else data_dir
    return f"cannot use {where}: {(error.strerror or str(error)).lower()}"


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
        reactor: IReactorTime,
        config: NodeConfig,
        *,
        message_encodings: Sequence[MessageEncoding[Any]] | None = None,
        identity: Identity | None = None,
        on_connection: ConnectionHook | None = None,
        peer_meta: PeerMetaConfig | None = None,
        conn_meta: MetadataConfig[Any] | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.clock: IReactorTime = clock or reactor
        self.config = config
        self.message_encodings = (
            raw_message_encodings() if message_encodings is None else message_encodings
        )
        self.identity = identity
        self.on_connection = on_connection
        self.peer_meta = peer_meta
        self.conn_meta = conn_meta
        #: The P2P layer, once the identity is loaded.
        self.p2p: P2P | None = None
        #: The admin HTTP API, when ``config.admin`` lists endpoints.
        self.admin: AdminService | None = None
        if config.admin.endpoints:
            self.admin = AdminService(
                reactor,
                config.admin.endpoints,
                lambda: self.p2p,
                allow_public=config.admin.allow_public,
            )
            self.admin.setServiceParent(self)  # started first, stopped last
        #: The observer, in observer mode: typed shell messages, every connection watched.
        self.observer: Observer | None = None
        if config.observe is not None:
            self.observer = Observer(config.observe, self.clock)
            if message_encodings is None:
                self.message_encodings = shell_message_encodings()
            self.on_connection = self.on_connection or self.observer.watch
            if self.admin is not None:
                mount_observer(self.admin.resource, self.observer)
                register_observer(self.admin.resource.registry, self.observer)
        #: The summary of failed dials, once the P2P layer exists.
        self.dial_report: DialReport | None = None
        #: The data directory's lock, held while the node runs.
        self.lock = DataDirLock(config.data_directory)
        #: Why the node could not start, once it is known.
        self.failure: Failure | None = None
        self._starting: Deferred[P2P] | None = None
        self._waiters: list[Deferred[P2P]] = []

    # -- lifecycle -----------------------------------------------------------

    def startService(self) -> None:
        _log.info(
            "starting node (data directory {data_dir}, compiled modules {backend})",
            event=ev.ACTIVATE_LAYER,
            data_dir=os.path.abspath(self.config.data_directory),
            backend=", ".join(f"{k}: {v}" for k, v in _backend.describe().items()),
        )
        try:
            self.lock.acquire()
        except DataDirLocked as error:
            self._fail_early(NodeStartError(error.reason, error.hint))
            return
        except OSError as error:
            self._fail_early(NodeStartError(_os_reason(self.config.data_directory, error)))
            return
        super().startService()
        self._starting = Deferred.fromCoroutine(self._start())
        self._starting.addCallbacks(self._started, self._start_failed)

    def _fail_early(self, error: NodeStartError) -> None:
        """A start refused before any service runs (the data directory is locked)."""
        self._starting = fail(error)
        self._starting.addErrback(self._start_failed)

    async def _start(self) -> P2P:
        if self.admin is not None:
            # an admin endpoint that cannot listen stops the node before it
            # joins the network, as Octez's RPC server does
            try:
                await self.admin.when_listening()
            except CannotListenError as error:
                raise NodeStartError(
                    f"cannot serve the admin API on {_listen_reason(error)}",
                    "--admin chooses another endpoint, --no-admin serves none",
                ) from None
        try:
            identity = await self._load_identity()
        except (IdentityError, IdentityFileError) as error:
            raise NodeStartError(str(error)) from None
        except OSError as error:
            raise NodeStartError(_os_reason(self.config.data_directory, error)) from None
        self.identity = identity
        trusted = await resolve_points(
            cast(IReactorPluggableNameResolver, self.reactor), self.config.effective_bootstrap_peers
        )
        try:
            p2p = self.p2p = self._build(identity, trusted)
        except ValueError as error:  # a listening address that does not resolve
            raise NodeStartError(str(error)) from None
        except OSError as error:
            raise NodeStartError(_os_reason(self.config.data_directory, error)) from None
        p2p.setServiceParent(self)
        report = self.dial_report = DialReport(
            self.clock, lambda: len(p2p.connections()), lambda: len(p2p.pool.points), acl=p2p.acl
        )
        p2p.handler.on_dial_outcome(report.record)
        try:
            await p2p.activate()
        except CannotListenError as error:
            raise NodeStartError(
                f"cannot listen for peers on {_listen_reason(error)}",
                "--listen chooses another address",
            ) from None
        report.setServiceParent(self)  # stopped first
        return p2p

    def _build(self, identity: Identity, trusted: list[Seed]) -> P2P:
        config = self.config
        os.makedirs(config.data_directory, exist_ok=True)
        settings = config.p2p
        if settings.peers_file is not None:
            settings = attrs.evolve(settings, peers_file=config.peers_file)
        p2p = P2P(
            self.reactor,
            P2PConfig.of(
                settings,
                identity=identity,
                versions=Versions(config.network.chain_name),
                trusted_points=tuple(trusted),
            ),
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
        store = IdentityFile(self.config.identity_file)
        store.remove_stale_temp_files()
        if store.exists():
            identity = store.load()
            target = self.config.p2p.proof_of_work_target
            if not identity.check(target):
                # Octez's Node_identity_file.Insufficient_proof_of_work
                raise IdentityError(
                    f"{store.path}: the identity's proof of work does not reach the expected "
                    f"difficulty {target:g} (mine a new one with tezos-p2p identity generate "
                    f"--force --target {target:g}, or lower --expected-pow)"
                )
            _log.info(
                "identity {peer_id} loaded from {path}",
                event=ev.IDENTITY_LOADED,
                peer_id=str(identity.peer_id),
                path=store.path,
            )
            return succeed(identity)
        difficulty = self.config.p2p.proof_of_work_target
        _log.info(
            "no identity in {path}: generating one with proof of work {difficulty} "
            "(about {expected:,.1f} M stamps to try on average)",
            event=ev.IDENTITY_GENERATED,
            path=store.path,
            difficulty=difficulty,
            expected=expected_attempts(difficulty) / 1e6,
        )
        last_report = [self.clock.seconds()]

        def progress(state: MiningProgress) -> None:
            # every 10 s, as a long first start would otherwise look stuck
            now = self.clock.seconds()
            if now - last_report[0] < 10.0:
                return
            last_report[0] = now
            _log.info(
                "mining the identity: {progress}",
                event=ev.IDENTITY_MINING,
                progress=state.describe(),
                fraction=state.fraction,
                remaining=state.remaining,
            )

        def generated(identity: Identity) -> Identity:
            os.makedirs(self.config.data_directory, exist_ok=True)
            store.save(identity)
            _log.info(
                "identity {peer_id} stored in {path}",
                event=ev.IDENTITY_GENERATED,
                peer_id=str(identity.peer_id),
                path=store.path,
            )
            return identity

        mining = generate_identity_in_thread(
            cast(IReactorThreads, self.reactor),
            difficulty,
            workers=self.config.identity_workers,
            progress=progress,
        )
        return mining.addCallback(generated)

    def _started(self, p2p: P2P) -> None:
        bound = p2p.bound_ports
        advertised = p2p.listening_port
        where = f"listening on port {', '.join(map(str, bound))}" if bound else "not listening"
        if advertised is not None and advertised not in bound:
            where += f", advertising port {advertised}"
        _log.info(
            "node {peer_id} running, {where}",
            event=ev.ACTIVATE_NETWORK,
            peer_id=str(p2p.peer_id),
            where=where,
            ports=bound,
            advertised_port=advertised,
        )
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(p2p)

    def _start_failed(self, failure: Failure) -> None:
        self.failure = failure
        waiters, self._waiters = self._waiters, []
        if not failure.check(CancelledError):
            if failure.check(NodeStartError):
                _log.critical(
                    "node could not start: {reason}",
                    event=ev.ACTIVATE_LAYER,
                    reason=failure.getErrorMessage(),
                )
            else:  # a bug: the traceback helps
                _log.failure("node could not start", failure, event=ev.ACTIVATE_LAYER)
        for waiter in waiters:
            waiter.errback(failure)

    def when_ready(self) -> Deferred[P2P]:
        """Fires with the P2P layer once it listens (fails if the node cannot start)."""
        if self.failure is not None:
            return fail(self.failure)
        if self._starting is not None and self._starting.called and self.p2p is not None:
            return succeed(self.p2p)
        waiter: Deferred[P2P] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def stopService(self) -> Deferred[None]:
        if self._starting is not None and not self._starting.called:
            self._starting.cancel()
        if not self.running:
            self.lock.release()
            return succeed(None)
        stopped: Deferred[None] = super().stopService()

        def release(result: object) -> object:
            self.lock.release()
            return result

        stopped.addBoth(release)
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
                    event=ev.MESSAGE_READ,
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
    "DEFAULT_LISTEN",
    "Node",
    "NodeConfig",
    "NodeOptions",
    "NodeStartError",
    "listen_endpoint",
    "parse_bootstrap_peer",
    "parse_peer",
    "resolve_points",
    "stop_all",
]
