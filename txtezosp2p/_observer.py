# -*- test-case-name: tests.test_observer -*-
"""
The one observer primitive of the package: hand out Deferreds for an event
and fire them all when it happens (after magic-wormhole's ``observer.py``).

An :class:`Observer` made with ``once=True`` (the default) stands for an
outcome that happens once, such as a session being established: the first
:meth:`~Observer.fire` or :meth:`~Observer.fail` is remembered, later ones
are ignored, and a Deferred asked for afterwards fires at once with it.

With ``once=False`` it stands for a condition that recurs, such as the
pool's ``too_few_connections``: each :meth:`~Observer.fire` wakes the
Deferreds handed out since the previous one and remembers nothing (Octez's
``P2p_trigger`` / ``Lwt_condition.broadcast``).

Every waiter gets its own Deferred, so one observer's callbacks cannot
change what the next one receives; a waiter may cancel its Deferred, which
forgets it.  Deferreds fire synchronously, in the order they were asked for.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

T = TypeVar("T")

_PENDING = object()


class Observer(Generic[T]):
    """Deferreds for an event: remembered once (``once=True``) or recurring."""

    __slots__ = ("_once", "_outcome", "_waiters")

    def __init__(self, *, once: bool = True) -> None:
        self._once = once
        self._outcome: object = _PENDING
        self._waiters: list[Deferred[T]] = []

    @property
    def fired(self) -> bool:
        """Whether a one-time outcome is known (always False when recurring)."""
        return self._outcome is not _PENDING

    @property
    def succeeded(self) -> bool:
        """Whether a one-time outcome is known and is a value, not a failure."""
        return self._outcome is not _PENDING and not isinstance(self._outcome, Failure)

    @property
    def waiting(self) -> int:
        """How many Deferreds wait for the next outcome."""
        return len(self._waiters)

    def when(self) -> Deferred[T]:
        """A new Deferred of the outcome (at once if it is already known)."""
        outcome = self._outcome
        if outcome is not _PENDING:
            if isinstance(outcome, Failure):
                return fail(outcome)
            return succeed(outcome)  # type: ignore[arg-type]
        waiter: Deferred[T] = Deferred(self._forget)
        self._waiters.append(waiter)
        return waiter

    def _forget(self, waiter: Deferred[T]) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def fire(self, result: T) -> None:
        """Fire every waiting Deferred with ``result``."""
        self._deliver(result)

    def fail(self, reason: Failure | BaseException) -> None:
        """Fail every waiting Deferred with ``reason``."""
        self._deliver(reason if isinstance(reason, Failure) else Failure(reason))

    def _deliver(self, outcome: object) -> None:
        if self._outcome is not _PENDING:
            return  # a one-time outcome is final
        if self._once:
            self._outcome = outcome
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)  # type: ignore[arg-type]
