# -*- test-case-name: tests.test_maintenance -*-
"""
The maintenance worker (Octez ``P2p_maintenance``, behaviour.md §4): keeps
the number of connections between ``min_threshold`` and ``max_threshold``
of the connection bounds (§3.1).

Each step runs at activation, then at the first of: the idle period
(``maintenance_idle_time``), an explicit :meth:`MaintenanceService.maintain`,
the pool's ``too_few_connections`` or ``too_many_connections`` trigger.

* **Too few** (below ``min_threshold``): contact between
  ``min_target - n`` and ``max_target - n`` candidate points, all at once;
  candidates are disconnected points that neither failed during this step
  nor are inside their reconnection delay (§5), never-missed ones first,
  then those whose last miss is oldest.  If that is not enough: ask every
  public peer for points (Bootstrap), wake LAN discovery, and wait for a new
  point or peer, or 5 s (in private mode: just wait 5 s).
* **Too many** (above ``max_threshold``): close ``n - max_target`` random
  connections, never one that is both private and trusted.
* **Inside the band**: propose a swap to a random peer (not in private mode).

Where we differ from Octez:

* :meth:`maintain` fires as soon as a step finds the count inside the band;
  Octez's only fires after a step that had work to do (behaviour.md §4.5).
* A step waiting for news also stops waiting when a connection is
  established (an incoming one may be all it needed) or when
  :meth:`maintain` is called.
* :meth:`roll` is implemented (Octez leaves it a no-op): it closes about a
  tenth of the connections (at least one), never trusted or private ones,
  and contacts as many fresh candidates, other than the points just left;
  the worker does it between two steps, so a roll never races a step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    FailureGroup,
    race,
)
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from . import _events as ev
from ._observer import Observer
from .admission import admission_policy
from .interfaces import IAdmissionPolicy
from .limits import ConnectionBounds
from .pool import Trigger
from .pool_state import Disconnected, PointInfo, PoolEvent
from .wire.errors import DisconnectReason, MaintenanceDisabled
from .wire.ids import Point

if TYPE_CHECKING:
    from .answerer import Answerer
    from .limits import Limits
    from .pool import Pool

_log = ev.logger("p2p.maintenance")

#: How long a step short of candidates waits for news (Octez ``time_between_looking_for_peers``).
LOOKING_FOR_PEERS = 5.0


@attrs.frozen
class _Failed:
    """A failure (other than a cancellation) that won a :func:`first_of` race."""

    failure: Failure


def _settled(result: object) -> object:
    # a cancelled loser stays a failure; any other failure wins as a value
    if isinstance(result, Failure) and not result.check(CancelledError):
        return _Failed(result)
    return result


def first_of(named: dict[str, Deferred[Any]]) -> Deferred[str]:
    """
    Fire with the name of the first of ``named`` to fire, cancelling the
    others (:func:`~twisted.internet.defer.race`); the first failure that is
    not a cancellation fails it.  Cancelling it cancels them all.
    """
    names = list(named)

    def winner(won: tuple[int, object]) -> str | Failure:
        index, value = won
        return value.failure if isinstance(value, _Failed) else names[index]

    def cancelled(failure: Failure) -> Failure:
        # only cancelled Deferreds stay failures: all of them were cancelled
        return Failure(CancelledError()) if failure.check(FailureGroup) else failure

    racing = race([waiting.addBoth(_settled) for waiting in named.values()])
    return racing.addCallbacks(winner, cancelled)


class MaintenanceService(Service):
    """
    The maintenance worker.  ``connect`` dials a point (the connect
    handler's ``connect``); ``wake_discovery`` restarts LAN discovery.
    """

    def __init__(
        self,
        clock: IReactorTime,
        pool: Pool,
        connect: Callable[[Point], Deferred[Any]],
        answerer: Answerer,
        limits: Limits,
        *,
        private_mode: bool = False,
        wake_discovery: Callable[[], None] | None = None,
        rng: random.Random | None = None,
        admission: IAdmissionPolicy | None = None,
    ) -> None:
        if limits.maintenance_idle_time is None:
            raise MaintenanceDisabled("maintenance-idle-time is null")
        self.clock = clock
        self.pool = pool
        self.connect = connect
        self.answerer = answerer
        self.limits = limits
        self.idle_time: float = limits.maintenance_idle_time
        self.bounds = ConnectionBounds.of(limits)
        self.private_mode = private_mode
        self.wake_discovery = wake_discovery
        self.rng = rng or random.Random()
        #: Which connections the too-many step closes (txtezosp2p.admission).
        self.admission: IAdmissionPolicy = admission or admission_policy(limits)
        self.steps = 0
        self._external = Trigger("maintain")
        #: A request came while the worker was busy: the next wait is skipped.
        self._requested = False
        self._maintained = Observer[None](once=False)
        self._rolls = Observer[int](once=False)
        self._waiting: Deferred[Any] | None = None
        self._loop: Deferred[None] | None = None
        self._stopping = False
        #: What the worker waits for: ``trigger`` (the next step), ``news``
        #: (points or peers, or 5 s), ``backoff`` (5 s), ``connections`` or
        #: ``disconnections`` (its own dials and closes); ``None`` while working.
        self.waiting_for: str | None = None
        self._observers: list[Callable[[str], None]] = []

    def observe(self, observer: Callable[[str], None]) -> Callable[[], None]:
        """Call ``observer(waiting_for)`` whenever the worker starts waiting; returns a remover."""
        self._observers.append(observer)

        def remove() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return remove

    # -- service -----------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self._loop = Deferred.fromCoroutine(self._run())
        self._loop.addErrback(self._crashed)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self._stopping = True
        if self._waiting is not None and not self._waiting.called:
            self._waiting.cancel()
        self._maintained.fire(None)  # the worker closed (behaviour.md §4.5)
        self._rolls.fire(0)
        loop, self._loop = self._loop, None
        return loop

    def _crashed(self, failure: Failure) -> None:
        if not failure.check(CancelledError):
            # Octez: if a step fails the worker shuts down (behaviour.md §4.6)
            _log.failure("maintenance stopped", failure, event=ev.UNEXPECTED_ERROR)

    # -- public requests ---------------------------------------------------------------

    def maintain(self) -> Deferred[None]:
        """Run a step now; fires once a step finds the count inside the band."""
        waiter = self._maintained.when()
        self._requested = True
        self._external.fire()
        return waiter

    def roll(self) -> Deferred[int]:
        """
        Replace about a tenth of the connections with fresh ones; fires with
        how many.  The worker does it between two steps, so that a roll and a
        step never dial at the same time.
        """
        if not self.running:
            return Deferred.fromCoroutine(self._roll())
        waiter = self._rolls.when()
        self._requested = True
        self._external.fire()
        return waiter

    async def _serve_rolls(self) -> None:
        # requests arriving during this roll wait for the next one
        rolls, self._rolls = self._rolls, Observer[int](once=False)
        rolls.fire(await self._roll())

    # -- the loop (behaviour.md §4.1) --------------------------------------------------

    async def _wait(self, waiting: Deferred[Any], what: str) -> Any:
        self._waiting = waiting
        self.waiting_for = what
        for observer in list(self._observers):
            observer(what)
        try:
            return await waiting
        finally:
            self._waiting = None
            self.waiting_for = None

    async def _run(self) -> None:
        motive = "activation"
        while not self._stopping:
            self._requested = False
            if self._rolls.waiting:
                await self._serve_rolls()
            await self._step(motive)
            if self._stopping:
                return
            if self._requested:
                motive = "external_event"
                continue
            motive = await self._wait(
                first_of(
                    {
                        "timer": deferLater(self.clock, self.idle_time, lambda: None),
                        "external_event": self._external.wait(),
                        "too_few_connections": self.pool.too_few_connections.wait(),
                        "too_many_connections": self.pool.too_many_connections.wait(),
                    }
                ),
                "trigger",
            )

    async def _step(self, motive: str) -> None:
        """One maintenance step (behaviour.md §4.2)."""
        self.steps += 1
        while not self._stopping:
            n = self.pool.active_connections
            if self.bounds.min_threshold <= n <= self.bounds.max_threshold:
                if not self.private_mode:
                    self.answerer.send_swap_request()
                self._wake_maintained()
                extra = 0 if self.private_mode else self.admission.exploration(n)
                if extra > 0:
                    await self._explore(extra)
                return
            _log.info(
                "maintenance started ({motive})",
                event=ev.MAINTENANCE_STARTED,
                motive=motive,
                connections=n,
            )
            self.pool.emit(PoolEvent("maintenance_started"))
            started = self.clock.seconds()
            await self._do_maintain()
            duration = self.clock.seconds() - started
            _log.info(
                "maintenance ended after {duration:.3f} s",
                event=ev.MAINTENANCE_ENDED,
                duration=duration,
            )
            self.pool.emit(PoolEvent("maintenance_ended"))
            motive = "last_maintenance"

    async def _do_maintain(self) -> None:
        while not self._stopping:
            n = self.pool.active_connections
            if n < self.bounds.min_threshold:
                await self._too_few(n)
            elif n > self.bounds.max_threshold:
                await self._too_many(n)
            else:
                return

    def _wake_maintained(self) -> None:
        self._maintained.fire(None)

    # -- too few (behaviour.md §4.3) ---------------------------------------------------

    async def _too_few(self, n: int) -> None:
        bounds = self.bounds
        _log.info(
            "too few connections ({connections})",
            event=ev.TOO_FEW_CONNECTIONS_MAINTENANCE,
            connections=n,
            min_target=bounds.min_target,
            expected_connections=self.limits.expected_connections,
            min_connections=self.limits.min_connections,
        )
        contacted = await self._try_to_contact(bounds.min_target - n, bounds.max_target - n)
        if contacted or self._stopping:
            return
        if self.private_mode:
            await self._wait(deferLater(self.clock, LOOKING_FOR_PEERS, lambda: None), "backoff")
            return
        for connection in self.pool.connections():
            if not connection.private:
                self.answerer.send_bootstrap(connection.link)
        if self.wake_discovery is not None:
            self.wake_discovery()
        await self._wait(
            first_of(
                {
                    "new_peer": self.pool.new_peer.wait(),
                    "new_point": self.pool.new_point.wait(),
                    # not in Octez: a new connection or a request also ends the wait
                    "new_connection": self.pool.new_connection.wait(),
                    "external_event": self._external.wait(),
                    "timeout": deferLater(self.clock, LOOKING_FOR_PEERS, lambda: None),
                }
            ),
            "news",
        )

    async def _try_to_contact(
        self, minimum: int, maximum: int, seen: set[Point] | None = None
    ) -> bool:
        start = self.clock.seconds()
        seen = set() if seen is None else seen
        while not self._stopping:
            if minimum <= 0:
                return True
            candidates = self._connectable(start, maximum, seen)
            if not candidates:
                return False
            outcomes = await self._wait(
                DeferredList([self.connect(info.point) for info in candidates], consumeErrors=True),
                "connections",
            )
            established = sum(1 for ok, _ in outcomes if ok)
            minimum -= established
            maximum -= established
        return False

    def _connectable(self, start: float, count: int, seen: set[Point]) -> list[PointInfo]:
        """Candidate points (behaviour.md §4.3 ``connectable``)."""
        now = self.clock.seconds()
        acl = self.pool.acl
        candidates: list[PointInfo] = []
        for point, info in list(self.pool.points.items()):
            if point in seen or acl.banned_addr(point.addr):
                continue
            if self.private_mode and not info.trusted:
                continue
            seen.add(point)
            missed = info.last_miss
            if (
                not isinstance(info.state, Disconnected)
                or (missed is not None and missed > start)
                or not info.may_reconnect(now)
            ):
                continue
            candidates.append(info)
        # never-missed points first, then the oldest misses
        candidates.sort(key=lambda i: (i.last_miss is not None, i.last_miss or 0.0))
        return candidates[: max(count, 0)]

    async def _explore(self, count: int) -> None:
        """Dial ``count`` points not connected, never-missed ones first, at random."""
        candidates = self._connectable(self.clock.seconds(), len(self.pool.points), set())
        fresh = [info for info in candidates if info.last_miss is None] or candidates
        chosen = self.rng.sample(fresh, min(count, len(fresh)))
        if chosen:
            await self._wait(
                DeferredList([self.connect(info.point) for info in chosen], consumeErrors=True),
                "connections",
            )

    # -- too many (behaviour.md §4.4) --------------------------------------------------

    async def _too_many(self, n: int) -> None:
        excess = n - self.bounds.max_target
        _log.debug(
            "too many connections ({connections}): closing {connections_to_kill}",
            event=ev.TOO_MANY_CONNECTIONS_MAINTENANCE,
            connections=n,
            connections_to_kill=excess,
            max_target=self.bounds.max_target,
        )
        victims = self.admission.victims(
            self.pool.connections(), excess, self.clock.seconds(), self.rng
        )
        if not victims:
            # nothing may be closed: wait for the next trigger instead of spinning
            await self._wait(deferLater(self.clock, LOOKING_FOR_PEERS, lambda: None), "backoff")
            return
        await self._wait(
            DeferredList(
                [c.disconnect(DisconnectReason.MAINTENANCE_TOO_MANY) for c in victims],
                consumeErrors=True,
            ),
            "disconnections",
        )

    # -- roll --------------------------------------------------------------------------

    async def _roll(self) -> int:
        connections = [
            c
            for c in self.pool.connections()
            if not c.private
            and not (c.point_info is not None and c.point_info.trusted)
            and not (c.peer_info is not None and c.peer_info.trusted)
        ]
        if not connections:
            return 0
        count = max(1, len(connections) // 10)
        leaving = self.rng.sample(connections, count)
        left = {c.point for c in leaving if c.point is not None}
        await self._wait(
            DeferredList([c.disconnect("rolled") for c in leaving], consumeErrors=True),
            "disconnections",
        )
        await self._try_to_contact(count, count, seen=set(left))
        return count


__all__ = ["LOOKING_FOR_PEERS", "MaintenanceService", "first_of"]
