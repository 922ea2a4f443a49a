# -*- test-case-name: tests.test_connect_handler -*-
"""
Setting up and tearing down connections (Octez ``P2p_connect_handler``,
behaviour.md §3).

* :meth:`ConnectHandler.connect` dials a point after Octez's checks, in
  Octez's order: banned or greylisted address, too many connections,
  private mode, pending or running connection (§3.2).
* :meth:`ConnectHandler.server_factory` accepts incoming connections,
  closing at once those over ``max_incoming_connections`` and those from
  banned or greylisted addresses (§3.3).
* As the sessions' :class:`~txtezosp2p.interfaces.IAuthenticationGate`,
  :meth:`ConnectHandler.decide` runs the checks after authentication
  (§3.4): banned peer, expected peer id, version, free slots, private mode,
  already connected; and answers Ack, Nack (with up to 50 alternative
  points) or nothing.
* Established connections become :class:`~txtezosp2p.connection.P2PConnection`
  objects registered in the pool (§3.6); their end updates the pool, calls
  the disconnection hooks and fires ``too_few_connections``.

Failures update the point's state (its reconnection delay grows) and
greylist the remote address where Octez does (§6.3).

The module is longer than our usual 600 lines because it follows
``p2p_connect_handler.ml`` step by step (dial, authenticate, decide,
register), and the steps share the in-flight counters and the point and
peer states they hand over to each other; the decision itself is one
function, :meth:`ConnectHandler._decide`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _events as ev
from .admission import admission_policy
from .connection import P2PConnection
from .interfaces import (
    EndpointFactory,
    IAdmissionPolicy,
    IAnswerer,
    IAuthenticationGate,
    IConnectHandler,
    IIOScheduler,
    IPool,
    ISession,
)
from .limits import ConnectionBounds, Limits
from .pool_state import (
    Accepted,
    Disconnected,
    PeerInfo,
    PointInfo,
    PoolEvent,
    Requested,
    Running,
)
from .session import (
    Accept,
    ConnectionInfo,
    Decision,
    Refuse,
    Reject,
    Session,
    SessionConfig,
    connect_session,
)
from .wire.errors import (
    Connected,
    DisconnectReason,
    IdentityCheckFailure,
    Myself,
    NackMotive,
    P2PError,
    PeerBanned,
    PendingConnection,
    PointBanned,
    PrivateMode,
    Rejected,
    RejectedByNack,
    RejectedNoCommonProtocol,
    TooManyConnections,
    greylists_ip,
)
from .wire.ids import ConnectionId, PeerId, Point, format_host, to_ipv6

_log = ev.logger("p2p.connect_handler")

# Summaries of the per-connection lines (ev.SummarisingLogger)
_REFUSED_TOO_MANY = (
    "refused {count:,} incoming connections from {subjects:,} addresses"
    " in the last {period:g} s (too many incoming)"
)
_REFUSED_BANNED = (
    "refused {count:,} incoming connections from {subjects:,} banned addresses"
    " in the last {period:g} s"
)
_REFUSED_GREYLISTED = (
    "refused {count:,} incoming connections from {subjects:,} greylisted addresses"
    " in the last {period:g} s"
)
_REFUSED_PRIVATE = (
    "private mode: refused {count:,} connections of {subjects:,} peers in the last {period:g} s"
)
_REJECTED = "rejected {count:,} connections of {subjects:,} peers in the last {period:g} s ({kind})"

#: Alternative points sent in a Nack (behaviour.md §3.5).
NACK_ALTERNATIVES = 50
VERSION_MOTIVES = (
    NackMotive.UNKNOWN_CHAIN_NAME,
    NackMotive.DEPRECATED_P2P_VERSION,
    NackMotive.DEPRECATED_DISTRIBUTED_DB_VERSION,
)


def tcp_endpoint_factory(reactor: IReactorTCP, timeout: float) -> EndpointFactory:
    """
    The default dialling seam: a TCP client endpoint for an IP point, its
    connect bounded by ``timeout``.  Points are addresses, never names, so
    no resolver is involved (a resolution in progress cannot be cancelled,
    which would leave a dial running after shutdown).
    """

    def endpoint(point: Point) -> IStreamClientEndpoint:
        mapped = point.addr.ipv4_mapped
        if mapped is not None:
            return TCP4ClientEndpoint(reactor, str(mapped), point.port, timeout=timeout)
        return TCP6ClientEndpoint(reactor, format_host(point.addr), point.port, timeout=timeout)

    return endpoint


@attrs.define
class _Attempt:
    """What the handler remembers about one handshake under way."""

    session: Session
    incoming: bool
    address: Any
    point_info: PointInfo | None = None
    peer_info: PeerInfo | None = None
    accepted: bool = False
    #: The dial under way (outgoing attempts), cancelled at shutdown.
    dialing: Deferred[Session] | None = None
    #: Whether this attempt put the point / the peer in its current state
    #: (only then does its failure move them back to disconnected).
    owns_point: bool = False
    owns_peer: bool = False


NewConnectionHook = Callable[[PeerId, P2PConnection], None]
DisconnectionHook = Callable[[PeerId], None]


@implementer(IAuthenticationGate, IConnectHandler)
class ConnectHandler:
    """
    Dials and accepts connections, decides who gets in, and keeps the pool
    up to date.  ``endpoint_factory`` gives the client endpoint of a point
    (the dialling seam); ``clock`` is used for every timeout and timestamp.
    """

    def __init__(
        self,
        endpoint_factory: EndpointFactory,
        pool: IPool,
        session_config: SessionConfig,
        answerer: IAnswerer,
        *,
        clock: IReactorTime,
        scheduler: IIOScheduler | None = None,
        private_mode: bool = False,
        disable_peer_discovery: bool = False,
        maintenance: bool = True,
        admission: IAdmissionPolicy | None = None,
    ) -> None:
        self.endpoint_factory = endpoint_factory
        self.clock: IReactorTime = clock
        self.pool = pool
        self.acl = pool.acl
        self.answerer = answerer
        self.scheduler = scheduler
        self.private_mode = private_mode
        self.disable_peer_discovery = disable_peer_discovery
        self.limits: Limits = session_config.limits
        self.bounds = ConnectionBounds.of(self.limits)
        #: Who gets a slot (Octez's threshold or the elastic rule, see txtezosp2p.admission).
        self.admission: IAdmissionPolicy = admission or admission_policy(
            self.limits, maintenance=maintenance
        )
        #: Handshakes past the gate (Ack decided) and not yet running.
        self.accepted_in_flight = 0
        #: Refusals and failed handshakes, logged a few at a time (docs/operating.md, "Logs").
        self.log_summary = ev.SummarisingLogger(clock)
        self.session_config = attrs.evolve(session_config, gate=self, log_summary=self.log_summary)
        self.versions = session_config.versions
        self._attempts: dict[ISession, _Attempt] = {}
        self._incoming: set[Session] = set()
        #: Failed handshakes and dials by reason (Octez error id), for metrics.
        self.failures: Counter[str] = Counter()
        self._new_connection_hooks: list[NewConnectionHook] = []
        self._disconnection_hooks: list[DisconnectionHook] = []
        self._dial_hooks: list[Callable[[Point, Failure | None], object]] = []

    # -- hooks ---------------------------------------------------------------

    def on_new_connection(self, hook: NewConnectionHook) -> None:
        """Call ``hook(peer_id, connection)`` for every connection that starts running."""
        self._new_connection_hooks.insert(0, hook)  # most recently registered first

    def on_disconnection(self, hook: DisconnectionHook) -> None:
        """Call ``hook(peer_id)`` when a running connection ends."""
        self._disconnection_hooks.insert(0, hook)

    def on_dial_outcome(self, hook: Callable[[Point, Failure | None], object]) -> None:
        """Call ``hook(point, None)`` when a dial ends running, else ``hook(point, failure)``."""
        self._dial_hooks.append(hook)

    def _dialled(self, result: object, point: Point) -> object:
        for hook in self._dial_hooks:
            hook(point, result if isinstance(result, Failure) else None)
        return result

    @property
    def incoming_in_flight(self) -> int:
        return len(self._incoming)

    @property
    def handshakes_in_flight(self) -> int:
        """Sessions, incoming or outgoing, not yet running nor failed."""
        return len(self._attempts)

    def now(self) -> float:
        return self.clock.seconds()

    # -- outgoing (behaviour.md §3.2) ----------------------------------------

    def connect(
        self,
        point: Point,
        *,
        trusted: bool | None = None,
        expected_peer_id: PeerId | None = None,
        timeout: float | None = None,
    ) -> Deferred[P2PConnection]:
        """Dial ``point``; fires with the running connection or fails with a typed error."""
        with self.pool.triggers_held():
            attempt = self._connect(point, trusted, expected_peer_id, timeout)
        if self._dial_hooks:
            attempt.addBoth(self._dialled, point)
        return attempt

    def _connect(
        self,
        point: Point,
        trusted: bool | None,
        expected_peer_id: PeerId | None,
        timeout: float | None,
    ) -> Deferred[P2PConnection]:
        if self.acl.banned_addr(point.addr):
            return fail(PointBanned(point))
        if self.pool.active_connections > self.limits.max_connections:
            return fail(TooManyConnections())
        info = self.pool.register_point(point, trusted, expected_peer_id)
        if self.private_mode and not info.trusted:
            return fail(PrivateMode())
        if isinstance(info.state, Requested | Accepted):
            return fail(PendingConnection(point))
        if isinstance(info.state, Running):
            return fail(Connected(point))
        info.set_requested(self.now())
        self.pool.emit(PoolEvent("outgoing_connection", point=point))
        _log.debug("connecting to {point}", event=ev.CONNECT_STATUS, point=str(point))
        session = Session(self.session_config, self.clock, incoming=False, point=point)
        tracked = self._attempts[session] = _Attempt(
            session, False, point.addr, point_info=info, owns_point=True
        )
        attempt = connect_session(
            self.session_config,
            self.clock,
            self.endpoint_factory(point),
            point=point,
            timeout=timeout,
            scheduler=self.scheduler,
            session=session,
        )
        tracked.dialing = attempt
        return attempt.addCallbacks(self._established, self._failed, errbackArgs=(session,))

    # -- incoming (behaviour.md §3.3) ----------------------------------------

    def server_factory(self) -> Factory:
        """The factory a listening endpoint uses for incoming connections."""
        return _IncomingFactory(self)

    def _accept(self, address: IAddress) -> Protocol | None:
        host = getattr(address, "host", None)
        if not isinstance(host, str):
            host = "::"
        ip = to_ipv6(host)
        port = getattr(address, "port", 0)
        self.pool.emit(PoolEvent("incoming_connection", point=Point(ip, port) if port else None))
        if len(self._incoming) >= self.limits.max_incoming_connections:
            self.log_summary.debug(
                "too many incoming connections: refusing {addr}",
                log=_log,
                summary=_REFUSED_TOO_MANY,
                subject=host,
                event=ev.INCOMING_CONNECTION_ERROR,
                addr=host,
            )
            return None
        if self.acl.banned_addr(ip):
            greylisted = not self.acl.blacklisted_addr(ip)
            self.log_summary.debug(
                "refusing {why} address {addr}",
                log=_log,
                summary=_REFUSED_GREYLISTED if greylisted else _REFUSED_BANNED,
                subject=host,
                event=ev.INCOMING_CONNECTION_ERROR,
                addr=host,
                why="greylisted" if greylisted else "banned",
            )
            return None
        session = Session(self.session_config, self.clock, incoming=True)
        self._attempts[session] = _Attempt(session, True, ip)
        self._incoming.add(session)
        established = session.when_established()
        established.addCallbacks(self._established, self._failed, errbackArgs=(session,))
        established.addErrback(lambda _: None)  # the failure is handled and logged
        return session if self.scheduler is None else self.scheduler.wrap(session)

    # -- the gate (behaviour.md §3.4) ----------------------------------------

    def decide(self, session: ISession, info: object) -> Decision:
        with self.pool.triggers_held():
            return self._decide(session, info)

    def _decide(self, session: ISession, info: object) -> Decision:
        assert isinstance(info, ConnectionInfo)
        attempt = self._attempts.get(session)
        if attempt is None:  # not ours: be safe
            return Refuse(PeerBanned(info.peer_id))
        peer_id = info.peer_id
        if self.acl.banned_peer(peer_id):
            return Refuse(PeerBanned(peer_id))
        point_info = attempt.point_info
        if info.incoming:
            point = info.id_point.point()
            point_info = self.pool.register_new_point(point) if point is not None else None
            attempt.point_info = point_info
        if (
            point_info is not None
            and point_info.expected_peer_id is not None
            and point_info.expected_peer_id != peer_id
        ):
            return Refuse(
                IdentityCheckFailure(point_info.point, point_info.expected_peer_id, peer_id)
            )
        peer_info = self.pool.register_peer(peer_id)
        attempt.peer_info = peer_info
        motive: NackMotive | None = None
        chosen = self.versions.select(info.announced_version)
        if isinstance(chosen, NackMotive):
            motive = chosen
        elif not self.admission.has_room(
            self.pool.active_connections,
            self.accepted_in_flight,
            info.id_point.addr,
            self.pool.connections(),
        ):
            motive = NackMotive.TOO_MANY_CONNECTIONS
        elif (
            self.private_mode
            and not (point_info is not None and point_info.trusted)
            and not peer_info.trusted
        ):
            if point_info is not None:
                point_info.known_public = not info.private_node
            self.log_summary.info(
                "private mode: refusing {peer_id}",
                log=_log,
                summary=_REFUSED_PRIVATE,
                subject=str(peer_id),
                event=ev.PEER_REJECTED,
                peer_id=str(peer_id),
            )
            return Refuse(PrivateMode())
        elif self._busy(attempt, point_info, peer_info, peer_id):
            motive = NackMotive.ALREADY_CONNECTED
        if point_info is not None:
            point_info.known_public = not info.private_node
        if motive is not None:
            alternatives = []
            if not self.disable_peer_discovery:
                # never the rejected peer's own point (Octez may send it back)
                own = point_info.point if point_info is not None else None
                known = self.pool.list_known_points(NACK_ALTERNATIVES + 1, ignore_private=True)
                alternatives = [p for p in known if p != own][:NACK_ALTERNATIVES]
            self.pool.emit(
                PoolEvent(
                    "rejecting_request",
                    point=point_info.point if point_info else None,
                    connection_id=info.id_point,
                    peer_id=peer_id,
                )
            )
            self.log_summary.debug(
                "rejecting {peer_id}: {motive}",
                log=_log,
                summary=_REJECTED,
                subject=str(peer_id),
                kind=motive.describe(),
                event=ev.AUTHENTICATE_STATUS,
                type="reject",
                peer_id=str(peer_id),
                motive=motive.describe(),
            )
            error: Any
            if motive in VERSION_MOTIVES:
                error = RejectedNoCommonProtocol(info.announced_version, motive)
            else:
                error = Rejected(peer_id, motive)
            return Reject(motive, error, alternatives)
        assert not isinstance(chosen, NackMotive)
        now = self.now()
        if point_info is not None:
            if isinstance(point_info.state, Accepted):  # taken from a losing rival
                point_info.hand_over(now, peer_id)
            else:
                point_info.set_accepted(now, peer_id)
            attempt.owns_point = True
        if isinstance(peer_info.state, Accepted):  # taken from a losing rival
            peer_info.hand_over(now, info.id_point)
        else:
            peer_info.set_accepted(now, info.id_point)
        attempt.owns_peer = True
        attempt.accepted = True
        self.accepted_in_flight += 1
        self.pool.emit(
            PoolEvent(
                "accepting_request",
                point=point_info.point if point_info else None,
                connection_id=info.id_point,
                peer_id=peer_id,
            )
        )
        return Accept(chosen)

    def _busy(
        self,
        attempt: _Attempt,
        point_info: PointInfo | None,
        peer_info: PeerInfo,
        peer_id: PeerId,
    ) -> bool:
        """
        Whether the point or the peer is already connected or connecting
        (motive Already_connected).

        Both ends may dial each other at once: each then sees the other's
        incoming connection while its own dial is under way.  Octez nacks the
        incoming one on both ends, so both fail and, with equal reconnection
        delays, may fail the same way again.  We keep the connection dialled
        by the greater peer id, a rule both ends compute alike: the losing
        attempt gives its claim on the point and the peer to the winner, and
        the other end nacks it.  (An Octez peer nacks every such incoming
        connection; then only the dial of the greater id can succeed, which
        is no worse than Octez between two Octez nodes.)
        """
        own_request = (
            point_info is not None
            and isinstance(point_info.state, Requested)
            and not attempt.incoming
            and attempt.owns_point
        )
        point_busy = (
            point_info is not None
            and not isinstance(point_info.state, Disconnected)
            and not own_request
        )
        if not point_busy and isinstance(peer_info.state, Disconnected):
            return False
        if (point_info is not None and isinstance(point_info.state, Running)) or isinstance(
            peer_info.state, Running
        ):
            return True
        rivals = [
            other
            for other in self._attempts.values()
            if other is not attempt
            and (
                (point_info is not None and other.point_info is point_info)
                or other.peer_info is peer_info
            )
        ]
        if len(rivals) != 1:
            return True
        rival = rivals[0]
        if rival.incoming == attempt.incoming or rival.peer_info not in (None, peer_info):
            return True
        mine = self.session_config.identity.peer_id.raw
        dialled_by_greater = peer_id.raw > mine if attempt.incoming else mine > peer_id.raw
        if not dialled_by_greater:
            return True
        _log.info(
            "both ends dialled: keeping the connection dialled by the greater peer id",
            event=ev.SIMULTANEOUS_CONNECTION,
            peer_id=str(peer_id),
            incoming=attempt.incoming,
        )
        rival.owns_point = False
        rival.owns_peer = False
        return False

    # -- outcomes ------------------------------------------------------------

    def _established(self, session: Session) -> P2PConnection:
        attempt = self._attempts.pop(session)
        self._incoming.discard(session)
        if attempt.accepted:
            self.accepted_in_flight -= 1
        info = session.info
        assert info is not None and attempt.peer_info is not None
        connection = P2PConnection(
            session,
            clock=self.clock,
            answerer=self.answerer,
            app_queue_size=self.limits.incoming_app_message_queue_size,
            on_decoding_error=self._decoding_error,
        )
        now = self.now()
        peer_id = info.peer_id
        if attempt.point_info is not None:
            attempt.point_info.set_running(now, peer_id, known_public=not info.private_node)
        attempt.peer_info.set_running(now, info.id_point)
        connection.point_info = attempt.point_info
        connection.peer_info = attempt.peer_info
        self.pool.add_connection(
            connection, attempt.point_info.point if attempt.point_info is not None else None
        )
        self.pool.emit(
            PoolEvent("connection_established", connection_id=info.id_point, peer_id=peer_id)
        )
        _log.info(
            "new connection to {peer_id} at {point}",
            event=ev.NEW_CONNECTION,
            peer_id=str(peer_id),
            point=str(info.id_point),
            direction="incoming" if info.incoming else "outgoing",
        )
        self.pool.new_connection.fire()
        session.when_closed().addCallback(self._teardown, connection)
        for hook in list(self._new_connection_hooks):
            try:
                hook(peer_id, connection)
            except Exception:
                _log.failure("new-connection hook failed", event=ev.UNEXPECTED_ERROR)
        if self.pool.active_connections >= self.limits.max_connections:
            _log.info("too many connections", event=ev.TRIGGER_MAINTENANCE_TOO_MANY_CONNECTIONS)
            self.pool.emit(PoolEvent("too_many_connections"))
            self.pool.too_many_connections.fire()
        connection.start()
        return connection

    def _failed(self, failure: Failure, session: Session) -> Failure:
        attempt = self._attempts.pop(session, None)
        self._incoming.discard(session)
        if attempt is None:
            return failure
        if attempt.accepted:
            self.accepted_in_flight -= 1
        error = failure.value
        if error is not None and not isinstance(error, CancelledError):
            self.failures[getattr(error, "octez_id", None) or type(error).__name__] += 1
        now = self.now()
        if error is not None and greylists_ip(error):
            # Octez greylists only before the Ack step; a malformed Ack or Nack
            # (e.g. more than 100 alternative points) is just as hostile, and
            # Octez's own comment says it should be greylisted (behaviour.md §3.4).
            self.acl.greylist_addr(attempt.address)
        point_info = attempt.point_info
        if (
            point_info is not None
            and attempt.owns_point
            and isinstance(point_info.state, Requested | Accepted)
        ):
            point_info.set_disconnected(now, self.pool.reconnection)
        if isinstance(error, Myself) and error.connection_id.port is not None:
            self.pool.add_myself(Point(error.connection_id.addr, error.connection_id.port))
        if (
            attempt.peer_info is not None
            and attempt.owns_peer
            and isinstance(attempt.peer_info.state, Accepted)
        ):
            attempt.peer_info.set_disconnected(now)
        if attempt.accepted and attempt.incoming:
            info = session.info
            self.pool.emit(
                PoolEvent(
                    "request_rejected",
                    point=point_info.point if point_info else None,
                    connection_id=info.id_point if info else None,
                    peer_id=info.peer_id if info else None,
                )
            )
        elif not attempt.accepted:
            self.pool.emit(
                PoolEvent(
                    "authentication_failed",
                    point=point_info.point if point_info else _point_of(session),
                )
            )
        if isinstance(error, RejectedByNack) and error.alternative_points:
            _log.info(
                "rejected by {peer}: {count} alternative points",
                event=ev.CONNECTION_REJECTED_BY_PEERS,
                peer=str(session.peer_id),
                count=len(error.alternative_points),
            )
            if not self.disable_peer_discovery:
                for point in error.alternative_points:
                    self.pool.register_new_point(point)
        if isinstance(error, RejectedNoCommonProtocol) and not attempt.incoming and point_info:
            self.pool.forget_point(point_info.point)
        return failure

    def _teardown(self, reason: str, connection: P2PConnection) -> None:
        now = self.now()
        requested = connection.requested
        point_info: PointInfo | None = connection.point_info
        peer_info: PeerInfo = connection.peer_info
        if point_info is not None and isinstance(point_info.state, Running):
            point_info.set_disconnected(now, self.pool.reconnection, requested=requested)
        if isinstance(peer_info.state, Running):
            peer_info.set_disconnected(now, requested=requested)
        self.pool.remove_connection(connection)
        self.pool.emit(PoolEvent("disconnection", peer_id=connection.peer_id))
        _log.info(
            "disconnected from {peer_id}: {reason}",
            event=ev.DISCONNECTED,
            peer_id=str(connection.peer_id),
            reason=connection.close_reason or reason,
        )
        connection.connection_lost(reason)
        for hook in list(self._disconnection_hooks):
            try:
                hook(connection.peer_id)
            except Exception:
                _log.failure("disconnection hook failed", event=ev.UNEXPECTED_ERROR)
        if self.pool.active_connections < self.limits.min_connections:
            self.pool.emit(PoolEvent("too_few_connections"))
            self.pool.too_few_connections.fire()

    def _decoding_error(self, connection: P2PConnection, error: P2PError) -> None:
        """A malformed message or chunk on a running connection: greylist peer and address."""
        _log.info(
            "greylisting {peer_id}: {error}",
            event=ev.GREYLIST_PEER,
            peer_id=str(connection.peer_id),
            error=str(error),
        )
        self.acl.greylist_addr(connection.id_point.addr)
        self.acl.greylist_peer(connection.peer_id)

    # -- administration ------------------------------------------------------

    def cancel_incoming(self) -> None:
        """Abort every incoming handshake under way (at shutdown)."""
        for session in list(self._incoming):
            session.close(DisconnectReason.POOL_DESTROYED.describe())

    def cancel_outgoing(self) -> None:
        """Abort every dial under way, TCP connect or handshake (at shutdown)."""
        for attempt in list(self._attempts.values()):
            if attempt.dialing is not None and not attempt.dialing.called:
                attempt.dialing.cancel()


def _point_of(session: Session) -> Point | None:
    if session.point is not None:
        return session.point
    info = session.info
    return info.id_point.point() if info is not None else None


class _IncomingFactory(Factory):
    noisy = False

    def __init__(self, handler: ConnectHandler) -> None:
        self.handler = handler

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        if addr is None:
            return None
        return self.handler._accept(addr)


__all__ = ["ConnectHandler", "ConnectionBounds", "ConnectionId", "tcp_endpoint_factory"]
