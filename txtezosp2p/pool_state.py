# -*- test-case-name: tests.test_pool -*-
"""
What the pool knows about each point and each peer (Octez
``P2p_point_state``, ``P2p_peer_state``; behaviour.md §2.2-§2.5), the
reconnection delay of points (§5), and the events the pool reports
(``P2p_connection.P2p_event``, §2.9).

The states are values (``Disconnected``, ``Requested``, ``Accepted``,
``Running``); the transitions are the ``set_*`` methods of the info records,
which check Octez's guards and raise :class:`IllegalTransition` otherwise.
Times are the injected clock's seconds.
"""

from __future__ import annotations

import datetime
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from .wire.ids import ConnectionId, PeerId, Point

#: Size of the per-point and per-peer event rings.
EVENT_RING = 100


class IllegalTransition(Exception):
    """A state change Octez's state machines forbid."""


#: The latest time we represent (9999-12-31T23:59:59.999Z): reconnection
#: deadlines saturate there, as Octez's saturate at its maximum time.
MAX_TIME = 253402300799.999


def rfc3339(seconds: float) -> str:
    """Octez's JSON timestamps: RFC 3339, milliseconds, offset ``-00:00``."""
    seconds = min(seconds, MAX_TIME)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}-00:00"


# -- Reconnection delays (behaviour.md §5) ----------------------------------


@attrs.frozen(kw_only=True)
class ReconnectionConfig:
    """``greylisting_config``: how long a point is skipped after failures."""

    factor: float = 1.2
    initial_delay: float = 1.0
    disconnection_delay: float = 60.0
    increase_cap: float = 172800.0

    def to_json(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "initial-delay": self.initial_delay,
            "disconnection-delay": self.disconnection_delay,
            "increase-cap": self.increase_cap,
        }


@attrs.frozen
class Reconnection:
    """The current delay and the time until which maintenance skips the point."""

    delay: float
    end_time: float


# -- States -----------------------------------------------------------------


@attrs.frozen
class Disconnected:
    kind = "disconnected"


@attrs.frozen
class Requested:
    """We are dialling the point (points only)."""

    kind = "requested"


@attrs.frozen
class Accepted:
    """Authenticated and accepted, Ack exchange under way."""

    peer_id: PeerId | None = None
    connection_id: ConnectionId | None = None
    kind = "accepted"


@attrs.frozen
class Running:
    """Both Acks exchanged."""

    peer_id: PeerId | None = None
    connection_id: ConnectionId | None = None
    kind = "running"


PointStateValue = Disconnected | Requested | Accepted | Running
PeerStateValue = Disconnected | Accepted | Running

DISCONNECTED = Disconnected()
REQUESTED = Requested()


# -- Events -----------------------------------------------------------------


@attrs.frozen
class InfoEvent:
    """An entry of a point's or peer's event ring."""

    time: float
    kind: str
    peer_id: PeerId | None = None
    connection_id: ConnectionId | None = None

    def point_json(self) -> Any:
        # Octez writes [timestamp, {"event_kind": ..., "p2p_peer_id"?: ...}]
        body: dict[str, Any] = {"event_kind": self.kind}
        if self.peer_id is not None:
            body["p2p_peer_id"] = str(self.peer_id)
        return [rfc3339(self.time), body]

    def peer_json(self) -> Any:
        body: dict[str, Any] = {"kind": self.kind, "timestamp": rfc3339(self.time)}
        if self.connection_id is not None:
            body.update(self.connection_id.to_json())
        return body


@attrs.frozen
class PoolEvent:
    """
    An entry of the global event stream (``/network/log``): ``kind`` is one of
    Octez's event names; the other fields are present when they apply.
    """

    kind: str
    point: Point | None = None
    connection_id: ConnectionId | None = None
    peer_id: PeerId | None = None
    source: PeerId | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        if self.kind == "request_rejected":
            if self.point is not None:
                out["point"] = self.point.to_text()
            if self.connection_id is not None and self.peer_id is not None:
                out["identity"] = [self.connection_id.to_json(), str(self.peer_id)]
            return out
        if self.point is not None:
            out["point"] = self.point.to_text()
        if self.connection_id is not None:
            out["id_point"] = self.connection_id.to_json()
        if self.peer_id is not None:
            out["peer_id"] = str(self.peer_id)
        if self.source is not None:
            out["source"] = str(self.source)
        return out


# -- Point info -------------------------------------------------------------


@attrs.define(eq=False)
class PointInfo:
    """What the pool knows about a point (in memory only)."""

    point: Point
    trusted: bool = False
    expected_peer_id: PeerId | None = None
    state: PointStateValue = DISCONNECTED
    last_failed_connection: float | None = None
    last_rejected_connection: tuple[PeerId, float] | None = None
    last_established_connection: tuple[PeerId, float] | None = None
    last_disconnection: tuple[PeerId, float] | None = None
    known_public: bool = False
    reconnection: Reconnection | None = None
    events: deque[InfoEvent] = attrs.field(factory=lambda: deque(maxlen=EVENT_RING))
    #: Called with every new event (``/network/points/<p>/log?monitor``).
    watchers: list[Callable[[InfoEvent], None]] = attrs.field(factory=list, repr=False)

    # derived -----------------------------------------------------------

    @property
    def last_seen(self) -> tuple[PeerId, float] | None:
        """The most recent of rejected, established and disconnection."""
        seen = [
            x
            for x in (
                self.last_rejected_connection,
                self.last_established_connection,
                self.last_disconnection,
            )
            if x is not None
        ]
        return max(seen, key=lambda pair: pair[1]) if seen else None

    @property
    def last_miss(self) -> float | None:
        """max(last failed connection, time of the most recent of rejected/disconnection)."""
        times = [self.last_failed_connection]
        recent = [x for x in (self.last_rejected_connection, self.last_disconnection) if x]
        if recent:
            times.append(max(pair[1] for pair in recent))
        known = [t for t in times if t is not None]
        return max(known) if known else None

    @property
    def peer_id(self) -> PeerId | None:
        state = self.state
        return state.peer_id if isinstance(state, Accepted | Running) else None

    def log(self, now: float, kind: str, peer_id: PeerId | None = None) -> None:
        event = InfoEvent(now, kind, peer_id)
        self.events.append(event)
        for watcher in list(self.watchers):
            watcher(event)

    # transitions (Octez P2p_point_state.set_*) --------------------------------------

    def set_requested(self, now: float) -> None:
        if not isinstance(self.state, Disconnected | Requested):
            raise IllegalTransition(f"{self.point}: requested from {self.state.kind}")
        self.state = REQUESTED
        self.log(now, "outgoing_request")

    def set_accepted(self, now: float, peer_id: PeerId) -> None:
        if not isinstance(self.state, Disconnected | Requested):
            raise IllegalTransition(f"{self.point}: accepted from {self.state.kind}")
        self.state = Accepted(peer_id)
        self.log(now, "accepting_request", peer_id)

    def hand_over(self, now: float, peer_id: PeerId) -> None:
        """Another attempt of the same peer takes over a point it accepted (simultaneous dials)."""
        if not isinstance(self.state, Accepted):
            raise IllegalTransition(f"{self.point}: handed over from {self.state.kind}")
        self.state = Accepted(peer_id)
        self.log(now, "accepting_request", peer_id)

    def set_running(self, now: float, peer_id: PeerId, known_public: bool | None = None) -> None:
        state = self.state
        if isinstance(state, Running) or (
            isinstance(state, Accepted) and state.peer_id not in (None, peer_id)
        ):
            raise IllegalTransition(f"{self.point}: running from {state.kind}")
        self.state = Running(peer_id)
        self.last_established_connection = (peer_id, now)
        if known_public is not None:
            self.known_public = known_public
        self.log(now, "connection_established", peer_id)

    def set_disconnected(
        self,
        now: float,
        config: ReconnectionConfig,
        *,
        requested: bool = False,
    ) -> None:
        """Leave the current state; the reconnection delay grows or resets (§5)."""
        state = self.state
        if isinstance(state, Disconnected):
            raise IllegalTransition(f"{self.point}: disconnected twice")
        if isinstance(state, Requested):
            self.last_failed_connection = now
            self._failed(now, config)
            self.log(now, "request_rejected")
        elif isinstance(state, Accepted):
            assert state.peer_id is not None
            self.last_rejected_connection = (state.peer_id, now)
            self._failed(now, config)
            self.log(now, "request_rejected", state.peer_id)
        else:
            assert state.peer_id is not None
            self.last_disconnection = (state.peer_id, now)
            self.reconnection = Reconnection(config.initial_delay, now + config.disconnection_delay)
            # Octez never records "disconnection" here (behaviour.md §2.2 quirk);
            # we tell apart the closes we asked for.
            self.log(now, "disconnection" if requested else "external_disconnection", state.peer_id)
        self.state = DISCONNECTED

    def _failed(self, now: float, config: ReconnectionConfig) -> None:
        delay = self.reconnection.delay if self.reconnection else config.initial_delay
        grown = delay * config.factor
        self.reconnection = Reconnection(min(grown, config.increase_cap), min(now + delay, 1e18))

    def may_reconnect(self, now: float) -> bool:
        """Whether maintenance may try this point now (§5)."""
        return self.reconnection is None or now > self.reconnection.end_time

    # JSON (behaviour.md §13.1) ----------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        state = self.state
        state_json: dict[str, Any] = {"event_kind": state.kind}
        if isinstance(state, Accepted | Running) and state.peer_id is not None:
            state_json["p2p_peer_id"] = str(state.peer_id)
        out: dict[str, Any] = {"trusted": self.trusted}
        if self.reconnection is not None:
            out["greylisted_until"] = rfc3339(self.reconnection.end_time)
        out["state"] = state_json
        if self.peer_id is not None:
            out["p2p_peer_id"] = str(self.peer_id)
        if self.last_failed_connection is not None:
            out["last_failed_connection"] = rfc3339(self.last_failed_connection)
        for name in (
            "last_rejected_connection",
            "last_established_connection",
            "last_disconnection",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = [str(value[0]), rfc3339(value[1])]
        if self.last_seen is not None:
            out["last_seen"] = [str(self.last_seen[0]), rfc3339(self.last_seen[1])]
        if self.last_miss is not None:
            out["last_miss"] = rfc3339(self.last_miss)
        if self.expected_peer_id is not None:
            out["expected_peer_id"] = str(self.expected_peer_id)
        return out


# -- Peer info --------------------------------------------------------------


def constant_score(_: Any) -> float:
    """Octez's peer score: always 1.0."""
    return 1.0


@attrs.define(eq=False)
class PeerInfo:
    """What the pool knows about a peer (persisted in ``peers.json``)."""

    peer_id: PeerId
    created: float
    trusted: bool = False
    metadata: Any = None
    state: PeerStateValue = DISCONNECTED
    last_failed_connection: tuple[ConnectionId, float] | None = None
    last_rejected_connection: tuple[ConnectionId, float] | None = None
    last_established_connection: tuple[ConnectionId, float] | None = None
    last_disconnection: tuple[ConnectionId, float] | None = None
    events: deque[InfoEvent] = attrs.field(factory=lambda: deque(maxlen=EVENT_RING))
    #: Called with every new event (``/network/peers/<id>/log?monitor``).
    watchers: list[Callable[[InfoEvent], None]] = attrs.field(factory=list, repr=False)

    @property
    def last_seen(self) -> tuple[ConnectionId, float] | None:
        seen = [
            x
            for x in (
                self.last_established_connection,
                self.last_rejected_connection,
                self.last_disconnection,
            )
            if x is not None
        ]
        return max(seen, key=lambda pair: pair[1]) if seen else None

    @property
    def last_miss(self) -> tuple[ConnectionId, float] | None:
        missed = [
            x
            for x in (
                self.last_failed_connection,
                self.last_rejected_connection,
                self.last_disconnection,
            )
            if x is not None
        ]
        return max(missed, key=lambda pair: pair[1]) if missed else None

    @property
    def connection_id(self) -> ConnectionId | None:
        state = self.state
        return state.connection_id if isinstance(state, Accepted | Running) else None

    def log(self, now: float, kind: str, connection_id: ConnectionId | None) -> None:
        event = InfoEvent(now, kind, None, connection_id)
        self.events.append(event)
        for watcher in list(self.watchers):
            watcher(event)

    def set_accepted(self, now: float, connection_id: ConnectionId) -> None:
        if not isinstance(self.state, Disconnected):
            raise IllegalTransition(f"{self.peer_id}: accepted from {self.state.kind}")
        self.state = Accepted(None, connection_id)
        self.log(now, "incoming_request", connection_id)

    def hand_over(self, now: float, connection_id: ConnectionId) -> None:
        """Another attempt takes over the accepted state (simultaneous dials)."""
        if not isinstance(self.state, Accepted):
            raise IllegalTransition(f"{self.peer_id}: handed over from {self.state.kind}")
        self.state = Accepted(None, connection_id)
        self.log(now, "incoming_request", connection_id)

    def set_running(self, now: float, connection_id: ConnectionId) -> None:
        if isinstance(self.state, Running):
            raise IllegalTransition(f"{self.peer_id}: running twice")
        self.state = Running(None, connection_id)
        self.last_established_connection = (connection_id, now)
        self.log(now, "connection_established", connection_id)

    def set_disconnected(self, now: float, *, requested: bool = False) -> None:
        state = self.state
        if isinstance(state, Disconnected):
            raise IllegalTransition(f"{self.peer_id}: disconnected twice")
        connection_id = state.connection_id
        assert connection_id is not None
        if isinstance(state, Accepted):
            self.last_rejected_connection = (connection_id, now)
            self.log(now, "request_rejected", connection_id)
        else:
            self.last_disconnection = (connection_id, now)
            self.log(now, "disconnection" if requested else "external_disconnection", connection_id)
        self.state = DISCONNECTED

    def to_json(
        self,
        score: Callable[[Any], float] = constant_score,
        metadata_json: Callable[[Any], Any] = lambda meta: meta,
        stat: Any = None,
        conn_metadata: Any = None,
    ) -> dict[str, Any]:
        state = self.state
        out: dict[str, Any] = {"score": score(self.metadata), "trusted": self.trusted}
        if conn_metadata is not None:
            out["conn_metadata"] = conn_metadata
        out["peer_metadata"] = metadata_json(self.metadata)
        out["state"] = state.kind
        if self.connection_id is not None:
            out["reachable_at"] = self.connection_id.to_json()
        out["stat"] = (
            stat.to_json()
            if stat is not None
            else {"total_sent": "0", "total_recv": "0", "current_inflow": 0, "current_outflow": 0}
        )
        for name in (
            "last_failed_connection",
            "last_rejected_connection",
            "last_established_connection",
            "last_disconnection",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = [value[0].to_json(), rfc3339(value[1])]
        if self.last_seen is not None:
            out["last_seen"] = [self.last_seen[0].to_json(), rfc3339(self.last_seen[1])]
        if self.last_miss is not None:
            out["last_miss"] = [self.last_miss[0].to_json(), rfc3339(self.last_miss[1])]
        return out
