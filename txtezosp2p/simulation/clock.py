# -*- test-case-name: tests.test_simulation -*-
"""
A simulated clock for thousands of nodes: an :class:`IReactorTime` whose
time only moves when the simulator says so.

Twisted's :class:`twisted.internet.task.Clock` keeps its calls in a list
sorted again on every ``callLater``, which is fine for a test and far too
slow for thousands of nodes with a timer each; this one keeps a binary
heap, forgets cancelled calls lazily, and runs calls in time order (calls
due at the same time run in the order they were scheduled).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

_log = Logger(namespace="txtezosp2p.simulation")


def _done() -> None:
    """The function of a call that ran or was cancelled."""


@implementer(IDelayedCall)
class SimulatedCall:
    """A call scheduled on a :class:`SimulatedClock`."""

    __slots__ = ("_clock", "_entry", "args", "called", "cancelled", "func", "kw", "time")

    def __init__(
        self,
        clock: SimulatedClock,
        time: float,
        func: Callable[..., object],
        args: tuple[Any, ...],
        kw: dict[str, Any],
    ) -> None:
        self._clock = clock
        self.time = time
        self.func = func
        self.args = args
        self.kw = kw
        self.called = False
        self.cancelled = False
        self._entry: list[Any] = []

    def getTime(self) -> float:
        return self.time

    def cancel(self) -> None:
        if self.cancelled:
            raise AlreadyCancelled()
        if self.called:
            raise AlreadyCalled()
        self.cancelled = True
        self._entry[-1] = None  # the heap entry is skipped when it comes up
        self._forget()

    def _forget(self) -> None:
        # as Twisted's DelayedCall, a finished call lets its function go: a
        # function that refers to its own call would otherwise be a cycle
        self.func, self.args, self.kw = _done, (), {}

    def delay(self, secondsLater: float) -> None:
        self.reset(self.time - self._clock.seconds() + secondsLater)

    def reset(self, secondsFromNow: float) -> None:
        if self.cancelled:
            raise AlreadyCancelled()
        if self.called:
            raise AlreadyCalled()
        self._entry[-1] = None
        self.time = self._clock.seconds() + max(secondsFromNow, 0.0)
        self._clock._push(self)

    def active(self) -> bool:
        return not (self.called or self.cancelled)

    def __repr__(self) -> str:
        return f"<SimulatedCall {getattr(self.func, '__qualname__', self.func)} at {self.time:.3f}>"


@implementer(IReactorTime)
class SimulatedClock:
    """
    Simulated time.  :meth:`advance` and :meth:`run_until` run the calls that
    fall due, in order; an exception raised by a call is logged and the
    simulation goes on (as a reactor does).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[list[Any]] = []
        self._seq = itertools.count()
        #: Calls run since the clock was made (a measure of the work simulated).
        self.calls_run = 0

    # -- IReactorTime ----------------------------------------------------------

    def seconds(self) -> float:
        return self._now

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> SimulatedCall:
        call = SimulatedCall(self, self._now + max(delay, 0.0), callable, args, kw)
        self._push(call)
        return call

    def getDelayedCalls(self) -> list[IDelayedCall]:
        return [entry[-1] for entry in self._heap if entry[-1] is not None]

    # -- driving -----------------------------------------------------------------

    def _push(self, call: SimulatedCall) -> None:
        entry = [call.time, next(self._seq), call]
        call._entry = entry
        heapq.heappush(self._heap, entry)

    @property
    def pending(self) -> int:
        """How many calls are scheduled (cancelled ones excluded)."""
        return sum(1 for entry in self._heap if entry[-1] is not None)

    def next_time(self) -> float | None:
        """When the next call is due, or None if nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][-1] is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, when: float) -> None:
        """Run every call due up to ``when`` (included), then set the time to ``when``."""
        heap = self._heap
        pop = heapq.heappop
        while heap:
            entry = heap[0]
            call = entry[-1]
            if call is None:
                pop(heap)
                continue
            if entry[0] > when:
                break
            pop(heap)
            entry[-1] = None  # no cycle left between the call and its entry
            self._now = max(self._now, entry[0])
            call.called = True
            self.calls_run += 1
            try:
                call.func(*call.args, **call.kw)
            except Exception:
                _log.failure("simulated call {call!r} failed", call=call)
            call._forget()
        self._now = max(self._now, when)

    def advance(self, amount: float) -> None:
        """Move time forward by ``amount`` seconds, running what falls due."""
        self.run_until(self._now + amount)

    def run_until_idle(self, limit: float) -> None:
        """Run calls until none is left or the time reaches ``limit``."""
        while True:
            upcoming = self.next_time()
            if upcoming is None or upcoming > limit:
                return
            self.run_until(upcoming)


__all__ = ["SimulatedCall", "SimulatedClock"]
