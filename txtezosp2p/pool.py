# -*- test-case-name: tests.test_pool -*-
"""
The pool of points, peers and connections (Octez ``P2p_pool``,
behaviour.md §2).

It is a passive data structure: the connect handler, the answerer and the
maintenance worker change it, and it tells observers what happened
(:meth:`Pool.watch`, the global event stream of ``/network/log``) and wakes
those waiting on its :class:`Trigger` objects (``too_few_connections``,
``too_many_connections``, ``new_peer``, ``new_point``, ``new_connection``).

Where we differ from Octez:

* **Garbage collection leaves the table at its target.**  Octez collects
  before inserting, so a table ends at ``target + 1`` (acknowledged upstream
  as an off-by-one, GitLab #3175); we collect one more victim so that the
  table holds ``target`` entries after the insertion.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Generic, TypeVar

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from . import _events as ev
from ._observer import Observer
from .acl import ACL
from .interfaces import IPool
from .limits import Limits
from .pool_state import (
    Disconnected,
    PeerInfo,
    PointInfo,
    PoolEvent,
    ReconnectionConfig,
    constant_score,
)
from .wire.ids import PeerId, Point

_log = ev.logger("p2p.pool")

#: Capacity of the set of points found to be ourselves.
MY_POINTS = 7

T = TypeVar("T")


class Trigger:
    """
    A broadcast condition (Octez ``P2p_trigger``): :meth:`wait` returns a
    Deferred that fires at the next :meth:`fire`; every waiter wakes.  A
    recurring :class:`~txtezosp2p._observer.Observer` that can be held.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._observer = Observer[None](once=False)
        self._held = 0
        self._pending = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Postpone :meth:`fire` to the end of the block (fired once if it was asked)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._pending:
                self._pending = False
                self.fire()

    def wait(self) -> Deferred[None]:
        return self._observer.when()

    def fire(self) -> None:
        if self._held:
            self._pending = True
            return
        self._observer.fire(None)


class _LRUSet(Generic[T]):
    """A small set that forgets its oldest member past ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[T, None] = OrderedDict()

    def add(self, item: T) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@attrs.frozen
class PeerMetaConfig:
    """
    The upper layer's metadata about peers (Octez ``peer_meta_config``): its
    initial value, its JSON form for ``peers.json`` and the admin API, and
    the score it gives a peer (used by the peer table's garbage collection).
    """

    initial: Callable[[], Any] = dict
    to_json: Callable[[Any], Any] = lambda meta: meta
    from_json: Callable[[Any], Any] = lambda value: value
    score: Callable[[Any], float] = constant_score


@implementer(IPool)
class Pool:
    """Known points, known peers, running connections, and the ACL."""

    def __init__(
        self,
        clock: IReactorTime,
        acl: ACL,
        *,
        limits: Limits | None = None,
        reconnection: ReconnectionConfig | None = None,
        peer_meta: PeerMetaConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.acl = acl
        self.limits = limits or Limits()
        self.reconnection = reconnection or ReconnectionConfig()
        self.peer_meta = peer_meta or PeerMetaConfig()
        self.rng = rng or random.Random()
        self.points: dict[Point, PointInfo] = {}
        self.peers: dict[PeerId, PeerInfo] = {}
        #: Running connections by peer id, and by point when the point is known.
        self.connected_peers: dict[PeerId, Any] = {}
        self.connected_points: dict[Point, Any] = {}
        self.my_points = _LRUSet[Point](MY_POINTS)
        self.too_few_connections = Trigger("too_few_connections")
        self.too_many_connections = Trigger("too_many_connections")
        self.new_peer = Trigger("new_peer")
        self.new_point = Trigger("new_point")
        self.new_connection = Trigger("new_connection")
        self._watchers: list[Callable[[PoolEvent], None]] = []

    def now(self) -> float:
        return self.clock.seconds()

    @contextmanager
    def triggers_held(self) -> Iterator[None]:
        """
        Wake the pool's waiters only after the block: a change made of
        several steps (register a point, then mark it requested or accepted)
        is whole before maintenance looks at it.
        """
        with ExitStack() as stack:
            for trigger in (
                self.too_few_connections,
                self.too_many_connections,
                self.new_peer,
                self.new_point,
                self.new_connection,
            ):
                stack.enter_context(trigger.held())
            yield

    # -- events --------------------------------------------------------------

    def watch(self, watcher: Callable[[PoolEvent], None]) -> Callable[[], None]:
        """Call ``watcher`` with every pool event; returns a function to stop."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher) if watcher in self._watchers else None

    def emit(self, event: PoolEvent) -> None:
        for watcher in list(self._watchers):
            try:
                watcher(event)
            except Exception:
                _log.failure("pool event watcher failed", event=ev.UNEXPECTED_ERROR)

    # -- counting ------------------------------------------------------------

    @property
    def active_connections(self) -> int:
        """Running connections (Octez counts connected peer ids)."""
        return len(self.connected_peers)

    # -- points --------------------------------------------------------------

    def register_point(
        self,
        point: Point,
        trusted: bool | None = None,
        expected_peer_id: PeerId | None = None,
    ) -> PointInfo:
        """
        Find or create a point (behaviour.md §2.6).  ``trusted=True`` sets the
        flag, ``False`` clears it, ``None`` leaves it.
        """
        info = self.points.get(point)
        if info is None:
            self._gc_points()
            info = PointInfo(point, trusted=bool(trusted), expected_peer_id=expected_peer_id)
            self.points[point] = info
            self.new_point.fire()
            self.emit(PoolEvent("new_point", point=point))
            return info
        if trusted is not None:
            info.trusted = trusted
        if expected_peer_id is not None:
            info.expected_peer_id = expected_peer_id
        return info

    def register_new_point(self, point: Point, trusted: bool | None = None) -> PointInfo | None:
        """Like :meth:`register_point`, for points we were told about; ignores ourselves."""
        if point in self.my_points:
            return None
        return self.register_point(point, trusted)

    def add_myself(self, point: Point) -> None:
        """Remember ``point`` as one of ours; it leaves the known points."""
        self.my_points.add(point)
        info = self.points.get(point)
        if info is not None and isinstance(info.state, Disconnected):
            del self.points[point]

    def forget_point(self, point: Point) -> None:
        info = self.points.get(point)
        if info is not None and isinstance(info.state, Disconnected):
            del self.points[point]

    def _gc_points(self) -> None:
        bounds = self.limits.max_known_points
        if bounds is None or len(self.points) < bounds[0]:
            return
        maximum, target = bounds
        excess = len(self.points) - target + 1  # leave room for the new point
        if excess <= 0:
            return
        now = self.now()
        candidates = [
            info
            for info in self.points.values()
            if isinstance(info.state, Disconnected) and not info.trusted
        ]
        # the oldest misses go first; never-missed points count as "now" (kept)
        candidates.sort(key=lambda info: info.last_miss if info.last_miss is not None else now)
        victims = candidates[:excess]
        for info in victims:
            del self.points[info.point]
        if victims:
            _log.info(
                "collected {count} points", event=ev.GC_POINTS, count=len(victims), maximum=maximum
            )
            self.emit(PoolEvent("gc_points"))

    # -- peers ---------------------------------------------------------------

    def register_peer(self, peer_id: PeerId) -> PeerInfo:
        info = self.peers.get(peer_id)
        if info is not None:
            return info
        self.new_peer.fire()
        self._gc_peers()
        info = PeerInfo(peer_id, created=self.now(), metadata=self.peer_meta.initial())
        self.peers[peer_id] = info
        self.emit(PoolEvent("new_peer", peer_id=peer_id))
        return info

    def _gc_peers(self) -> None:
        bounds = self.limits.max_known_peer_ids
        if bounds is None or len(self.peers) < bounds[0]:
            return
        _, target = bounds
        excess = len(self.peers) - target + 1
        if excess <= 0:
            return
        score = self.peer_meta.score
        candidates = [
            info
            for info in self.peers.values()
            if isinstance(info.state, Disconnected) and not info.trusted
        ]
        # lowest score first; among equals, the newest go first (anti-flood)
        candidates.sort(key=lambda info: (score(info.metadata), -info.created))
        victims = candidates[:excess]
        for info in victims:
            del self.peers[info.peer_id]
        if victims:
            _log.info("collected {count} peer ids", event=ev.GC_PEER_IDS, count=len(victims))
            self.emit(PoolEvent("gc_peer_ids"))

    def get_peer_metadata(self, peer_id: PeerId) -> Any:
        info = self.peers.get(peer_id)
        return self.peer_meta.initial() if info is None else info.metadata

    def set_peer_metadata(self, peer_id: PeerId, metadata: Any) -> None:
        self.register_peer(peer_id).metadata = metadata

    def score(self, peer_id: PeerId) -> float:
        return self.peer_meta.score(self.get_peer_metadata(peer_id))

    # -- ACL helpers (behaviour.md §6.2, §6.4) -------------------------------

    def banned_point(self, point: Point) -> bool:
        return self.acl.banned_addr(point.addr)

    def point_banned_for_rpc(self, point: Point) -> bool:
        info = self.points.get(point)
        return not (info is not None and info.trusted) and self.acl.banned_addr(point.addr)

    def peer_banned_for_rpc(self, peer_id: PeerId) -> bool:
        info = self.peers.get(peer_id)
        return not (info is not None and info.trusted) and self.acl.banned_peer(peer_id)

    # -- sharing points (behaviour.md §2.8) ----------------------------------

    def list_known_points(self, size: int = 50, ignore_private: bool = True) -> list[Point]:
        """
        Points worth telling others about: not banned, known to be public;
        long-standing connections first, then recently seen disconnected
        points; the last two fifths picked at random.
        """
        candidates = [
            info
            for info in self.points.values()
            if not self.acl.banned_addr(info.point.addr)
            and (info.known_public or not ignore_private)
        ]
        rng = self.rng

        def key(info: PointInfo) -> tuple[int, float, float]:
            # Points never seen sort last in their group (a point only becomes
            # known_public once seen, so this only matters with ignore_private=False).
            seen = info.last_seen
            tie = rng.random()
            if isinstance(info.state, Disconnected):
                # most recent first; never seen last
                return (1, -seen[1] if seen else float("inf"), tie)
            return (0, seen[1] if seen else float("inf"), tie)

        candidates.sort(key=key)
        points = [info.point for info in candidates]
        if len(points) <= size:
            return points
        other = (size * 2) // 5
        best = size - other
        chosen = points[:best]
        rest = points[best:]
        picked = {rng.choice(rest) for _ in range(other)}
        chosen.extend(p for p in rest if p in picked)
        return chosen

    # -- connections ---------------------------------------------------------

    def connection_for_peer(self, peer_id: PeerId) -> Any:
        return self.connected_peers.get(peer_id)

    def connection_for_point(self, point: Point) -> Any:
        return self.connected_points.get(point)

    def add_connection(self, connection: Any, point: Point | None) -> None:
        """Register a running connection, by peer id and, if known, by point."""
        self.connected_peers[connection.peer_id] = connection
        if point is not None:
            self.connected_points[point] = connection

    def remove_connection(self, connection: Any) -> None:
        """Forget a connection that ended (not its successor, if one took its place)."""
        point_info, peer_id = connection.point_info, connection.peer_id
        if point_info is not None and self.connected_points.get(point_info.point) is connection:
            del self.connected_points[point_info.point]
        if self.connected_peers.get(peer_id) is connection:
            del self.connected_peers[peer_id]

    def connections(self) -> list[Any]:
        return list(self.connected_peers.values())
