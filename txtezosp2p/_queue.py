# -*- test-case-name: tests.test_queue -*-
"""
A size-bounded FIFO with Deferred-based waiting, after Octez's
``Lwt_pipe.Maybe_bounded`` (behaviour.md §8.1).

An element of size ``n`` is admitted when ``current + n < bound`` **or the
queue is empty**, so one oversized element always fits.  ``push`` waits for
room, ``push_now`` refuses; ``pop`` waits for an element, ``pop_now`` does
not.  Closing the queue fails every waiter with the given exception; the
elements already queued can still be popped, after which pops fail too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

T = TypeVar("T")


class QueueClosed(Exception):
    """Default reason given to waiters when a queue closes."""


class BoundedQueue(Generic[T]):
    """FIFO of ``(item, size)`` bounded by total size (``bound=None``: unbounded)."""

    def __init__(self, bound: int | None, on_space: Callable[[], None] | None = None) -> None:
        self.bound = bound
        self.size = 0
        self._items: deque[tuple[T, int]] = deque()
        self._pushers: deque[tuple[T, int, Deferred[None]]] = deque()
        self._poppers: deque[Deferred[T]] = deque()
        self._closed: BaseException | None = None
        #: Called each time an element leaves the queue (room may have appeared).
        self.on_space = on_space

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def _admits(self, size: int) -> bool:
        return self.bound is None or not self._items or self.size + size < self.bound

    def would_admit(self, size: int) -> bool:
        return self._closed is None and not self._pushers and self._admits(size)

    def _append(self, item: T, size: int) -> None:
        if self._poppers:
            self._poppers.popleft().callback(item)
            return
        self._items.append((item, size))
        self.size += size

    def push_now(self, item: T, size: int) -> bool:
        """Queue ``item`` if it fits now; raise the close reason if closed."""
        if self._closed is not None:
            raise self._closed
        if self._pushers or not self._admits(size):
            return False
        self._append(item, size)
        return True

    def push(self, item: T, size: int) -> Deferred[None]:
        """Queue ``item``, waiting for room; the Deferred fires once it is queued."""
        if self._closed is not None:
            return fail(Failure(self._closed))
        if not self._pushers and self._admits(size):
            self._append(item, size)
            return succeed(None)
        waiter: Deferred[None] = Deferred(self._cancel_push)
        self._pushers.append((item, size, waiter))
        return waiter

    def _cancel_push(self, waiter: Deferred[None]) -> None:
        self._pushers = deque(p for p in self._pushers if p[2] is not waiter)
        self._admit_pushers()

    def pop_now(self) -> T | None:
        """The oldest item, or None if empty; raises the close reason once drained."""
        if not self._items:
            if self._closed is not None:
                raise self._closed
            return None
        return self._popleft()

    def _popleft(self) -> T:
        item, size = self._items.popleft()
        self.size -= size
        self._admit_waiting()
        return item

    def pop(self) -> Deferred[T]:
        """A Deferred firing with the oldest item, waiting if needed."""
        if self._items:
            return succeed(self._popleft())
        if self._closed is not None:
            return fail(Failure(self._closed))
        waiter: Deferred[T] = Deferred(self._cancel_pop)
        self._poppers.append(waiter)
        return waiter

    def _cancel_pop(self, waiter: Deferred[T]) -> None:
        self._poppers.remove(waiter)

    def _admit_pushers(self) -> None:
        while self._pushers and self._admits(self._pushers[0][1]):
            item, size, waiter = self._pushers.popleft()
            self._append(item, size)
            waiter.callback(None)

    def _admit_waiting(self) -> None:
        self._admit_pushers()
        if self.on_space is not None:
            self.on_space()

    def drain(self) -> list[T]:
        """Remove and return every queued item."""
        items = [item for item, _ in self._items]
        self._items.clear()
        self.size = 0
        if self._closed is None:
            self._admit_pushers()
        return items

    def close(self, reason: BaseException | None = None) -> None:
        """
        Close the queue: waiting pushers and poppers fail with ``reason``;
        queued items stay poppable.
        """
        if self._closed is not None:
            return
        self._closed = reason if reason is not None else QueueClosed()
        if not (self._pushers or self._poppers):
            return
        pushers, self._pushers = self._pushers, deque()
        poppers, self._poppers = self._poppers, deque()
        for _, _, waiter in pushers:
            waiter.errback(Failure(self._closed))
        for popper in poppers:
            popper.errback(Failure(self._closed))
