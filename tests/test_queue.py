# -*- test-case-name: tests.test_queue -*-
"""
Tests for :class:`txtezosp2p._queue.BoundedQueue`, the size-bounded FIFO
after Octez's ``Lwt_pipe.Maybe_bounded`` (behaviour.md §8.1): an element of
size ``n`` is admitted when ``current + n < bound`` or the queue is empty.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p._queue import BoundedQueue, QueueClosed


class Gone(Exception):
    """A close reason."""


class AdmissionTests(SynchronousTestCase):
    """The admission rule ``current + size < bound or empty``."""

    def test_strictly_below(self) -> None:
        queue = BoundedQueue[str](10)
        self.assertTrue(queue.push_now("a", 4))
        self.assertTrue(queue.push_now("b", 5))
        self.assertEqual((len(queue), queue.size), (2, 9))
        self.assertFalse(queue.push_now("c", 1))
        self.assertEqual((len(queue), queue.size), (2, 9))

    def test_equality_refused(self) -> None:
        """Reaching the bound exactly is refused (``<``, not ``<=``)."""
        queue = BoundedQueue[str](10)
        self.assertTrue(queue.push_now("a", 4))
        self.assertFalse(queue.would_admit(6))
        self.assertFalse(queue.push_now("b", 6))
        self.assertTrue(queue.would_admit(5))
        self.assertTrue(queue.push_now("b", 5))

    def test_oversized_in_empty_queue(self) -> None:
        """One element larger than the bound fits in an empty queue, alone."""
        queue = BoundedQueue[str](10)
        self.assertTrue(queue.would_admit(100))
        self.assertTrue(queue.push_now("big", 100))
        self.assertEqual(queue.size, 100)
        self.assertFalse(queue.push_now("small", 0))
        self.assertEqual(queue.pop_now(), "big")
        self.assertEqual(queue.size, 0)

    def test_exactly_bound_in_empty_queue(self) -> None:
        queue = BoundedQueue[str](10)
        self.assertTrue(queue.push_now("a", 10))
        self.assertFalse(queue.push_now("b", 0))

    def test_push_admitted_fires_at_once(self) -> None:
        queue = BoundedQueue[str](10)
        self.assertIsNone(self.successResultOf(queue.push("a", 3)))
        self.assertIsNone(self.successResultOf(queue.push("b", 6)))
        self.assertNoResult(queue.push("c", 1))
        self.assertEqual(queue.pop_now(), "a")

    def test_message_count_queue(self) -> None:
        """
        The app queue counts messages (size 1, bound 10): at most 9 are
        queued (behaviour.md §8.4).
        """
        queue = BoundedQueue[int](10)
        accepted = [queue.push_now(n, 1) for n in range(12)]
        self.assertEqual(accepted, [True] * 9 + [False] * 3)
        self.assertEqual(len(queue), 9)

    def test_unbounded(self) -> None:
        queue = BoundedQueue[int](None)
        for n in range(1000):
            self.assertTrue(queue.push_now(n, 1 << 20))
        self.successResultOf(queue.push(1000, 1 << 40))
        self.assertEqual(queue.size, 1000 * (1 << 20) + (1 << 40))
        self.assertTrue(queue.would_admit(1 << 50))
        self.assertEqual([queue.pop_now() for _ in range(1001)], list(range(1001)))
        self.assertIsNone(queue.pop_now())

    def test_zero_bound(self) -> None:
        """With bound 0 only an empty queue admits (one element at a time)."""
        queue = BoundedQueue[str](0)
        self.assertTrue(queue.push_now("a", 0))
        self.assertFalse(queue.push_now("b", 0))


class WaitingPushTests(SynchronousTestCase):
    """``push`` waits for room; waiting pushers are served in order."""

    def test_push_waits_until_pop(self) -> None:
        queue = BoundedQueue[str](10)
        queue.push_now("a", 8)
        waiting = queue.push("b", 5)
        self.assertNoResult(waiting)
        self.assertEqual(len(queue), 1)
        self.assertEqual(queue.pop_now(), "a")
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual((len(queue), queue.size), (1, 5))
        self.assertEqual(queue.pop_now(), "b")

    def test_partial_room(self) -> None:
        """A pop that frees too little room leaves the pusher waiting."""
        queue = BoundedQueue[str](10)
        queue.push_now("a", 2)
        queue.push_now("b", 6)
        waiting = queue.push("c", 5)
        self.assertNoResult(waiting)
        self.assertEqual(queue.pop_now(), "a")
        self.assertNoResult(waiting)
        self.assertEqual(queue.pop_now(), "b")
        self.successResultOf(waiting)

    def test_fifo_pushers(self) -> None:
        """Pushers enter in arrival order, even when a later one would fit sooner."""
        queue = BoundedQueue[str](10)
        queue.push_now("a", 5)
        first = queue.push("b", 8)
        second = queue.push("c", 1)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(queue.pop_now(), "a")
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual([queue.pop_now(), queue.pop_now()], ["b", "c"])

    def test_several_admitted_by_one_pop(self) -> None:
        queue = BoundedQueue[int](10)
        queue.push_now(0, 9)
        waiters = [queue.push(n, 2) for n in range(1, 6)]
        for waiter in waiters:
            self.assertNoResult(waiter)
        self.assertEqual(queue.pop_now(), 0)
        # 2, 4, 6, 8 < 10: four of them enter, the fifth waits.
        for waiter in waiters[:4]:
            self.successResultOf(waiter)
        self.assertNoResult(waiters[4])
        self.assertEqual(queue.pop_now(), 1)
        self.successResultOf(waiters[4])
        self.assertEqual([queue.pop_now() for _ in range(4)], [2, 3, 4, 5])

    def test_push_now_behind_waiting_pusher(self) -> None:
        """``push_now`` refuses while pushers wait, even if the element would fit."""
        queue = BoundedQueue[str](10)
        queue.push_now("a", 5)
        waiting = queue.push("b", 8)
        self.assertFalse(queue.would_admit(1))
        self.assertFalse(queue.push_now("c", 1))
        self.assertNoResult(waiting)

    def test_push_behind_waiting_pusher(self) -> None:
        queue = BoundedQueue[str](10)
        queue.push_now("a", 5)
        first = queue.push("b", 8)
        second = queue.push("c", 1)
        self.assertNoResult(second)
        self.assertEqual(len(queue), 1)
        queue.pop_now()
        self.successResultOf(first)
        self.successResultOf(second)

    def test_cancel_waiting_push(self) -> None:
        """A cancelled push is never queued."""
        queue = BoundedQueue[str](10)
        queue.push_now("a", 8)
        cancelled = queue.push("b", 5)
        cancelled.cancel()
        self.failureResultOf(cancelled, CancelledError)
        self.assertTrue(queue.push_now("c", 1))
        self.assertEqual(queue.pop_now(), "a")
        self.assertEqual(queue.pop_now(), "c")
        self.assertIsNone(queue.pop_now())
        self.assertEqual(queue.size, 0)

    def test_cancel_middle_pusher(self) -> None:
        queue = BoundedQueue[str](10)
        queue.push_now("a", 8)
        first = queue.push("b", 2)
        middle = queue.push("c", 2)
        last = queue.push("d", 2)
        middle.cancel()
        self.failureResultOf(middle, CancelledError)
        queue.pop_now()
        self.successResultOf(first)
        self.successResultOf(last)
        self.assertEqual([queue.pop_now(), queue.pop_now(), queue.pop_now()], ["b", "d", None])

    def test_cancel_head_pusher_admits_next(self) -> None:
        """
        Cancelling the head pusher lets the next one in when it fits: it was
        only waiting for its turn (FIFO), not for room.
        """
        queue = BoundedQueue[str](10)
        queue.push_now("a", 5)
        head = queue.push("b", 8)
        behind = queue.push("c", 1)
        head.cancel()
        self.failureResultOf(head, CancelledError)
        self.successResultOf(behind)
        self.assertEqual((len(queue), queue.size), (2, 6))

    def test_cancel_fired_push(self) -> None:
        """Cancelling a push that already went in changes nothing."""
        queue = BoundedQueue[str](10)
        done = queue.push("a", 1)
        done.cancel()
        self.successResultOf(done)
        self.assertEqual(queue.pop_now(), "a")


class PopTests(SynchronousTestCase):
    """``pop`` and ``pop_now``."""

    def test_fifo(self) -> None:
        queue = BoundedQueue[int](100)
        for n in range(5):
            queue.push_now(n, 1)
        self.assertEqual(self.successResultOf(queue.pop()), 0)
        self.assertEqual(queue.pop_now(), 1)
        self.assertEqual([self.successResultOf(queue.pop()) for _ in range(3)], [2, 3, 4])
        self.assertEqual(queue.size, 0)

    def test_pop_now_empty(self) -> None:
        queue = BoundedQueue[int](100)
        self.assertIsNone(queue.pop_now())
        self.assertEqual(len(queue), 0)

    def test_pop_waits(self) -> None:
        queue = BoundedQueue[str](100)
        waiting = queue.pop()
        self.assertNoResult(waiting)
        self.assertTrue(queue.push_now("a", 5))
        self.assertEqual(self.successResultOf(waiting), "a")
        self.assertEqual((len(queue), queue.size), (0, 0))

    def test_poppers_in_order(self) -> None:
        queue = BoundedQueue[str](100)
        first, second = queue.pop(), queue.pop()
        self.successResultOf(queue.push("a", 1))
        self.assertEqual(self.successResultOf(first), "a")
        self.assertNoResult(second)
        queue.push_now("b", 1)
        self.assertEqual(self.successResultOf(second), "b")

    def test_waiting_popper_takes_oversized(self) -> None:
        """An element handed straight to a waiting popper is never counted."""
        queue = BoundedQueue[str](10)
        waiting = queue.pop()
        self.assertTrue(queue.push_now("big", 50))
        self.assertEqual(self.successResultOf(waiting), "big")
        self.assertEqual(queue.size, 0)
        self.assertTrue(queue.push_now("a", 9))

    def test_cancel_waiting_pop(self) -> None:
        queue = BoundedQueue[str](100)
        cancelled = queue.pop()
        waiting = queue.pop()
        cancelled.cancel()
        self.failureResultOf(cancelled, CancelledError)
        queue.push_now("a", 1)
        self.assertEqual(self.successResultOf(waiting), "a")
        queue.push_now("b", 1)
        self.assertEqual(queue.pop_now(), "b")

    def test_on_space(self) -> None:
        """``on_space`` is called after each pop, once waiting pushers went in."""
        seen: list[tuple[int, int]] = []
        queue: BoundedQueue[str] = BoundedQueue(
            10, on_space=lambda: seen.append((len(queue), queue.size))
        )
        queue.push_now("a", 8)
        waiting = queue.push("b", 5)
        self.assertEqual(seen, [])
        queue.pop_now()
        self.assertEqual(seen, [(1, 5)])
        self.successResultOf(waiting)
        self.successResultOf(queue.pop())
        self.assertEqual(seen, [(1, 5), (0, 0)])

    def test_on_space_not_on_push(self) -> None:
        calls: list[None] = []
        queue = BoundedQueue[str](10, on_space=lambda: calls.append(None))
        queue.push_now("a", 1)
        self.successResultOf(queue.push("b", 1))
        self.assertEqual(calls, [])
        queue.drain()
        self.assertEqual(calls, [])

    def test_drain(self) -> None:
        queue = BoundedQueue[str](10)
        queue.push_now("a", 3)
        queue.push_now("b", 3)
        self.assertEqual(queue.drain(), ["a", "b"])
        self.assertEqual((len(queue), queue.size), (0, 0))
        self.assertIsNone(queue.pop_now())

    def test_drain_admits_waiting_pushers(self) -> None:
        """
        After ``drain`` the queue is empty, so a waiting pusher goes in;
        otherwise nothing could ever pop and free room for it, and
        ``push_now`` would refuse everything behind it.
        """
        queue = BoundedQueue[str](10)
        queue.push_now("a", 8)
        waiting = queue.push("b", 5)
        self.assertEqual(queue.drain(), ["a"])
        self.successResultOf(waiting)
        self.assertEqual(queue.pop_now(), "b")


class CloseTests(SynchronousTestCase):
    """``close`` fails waiters; queued items stay poppable, then pops fail."""

    def test_fails_waiting_pushers(self) -> None:
        queue = BoundedQueue[str](10)
        queue.push_now("a", 9)
        first, second = queue.push("b", 5), queue.push("c", 5)
        reason = Gone("bye")
        queue.close(reason)
        self.assertIs(self.failureResultOf(first, Gone).value, reason)
        self.assertIs(self.failureResultOf(second, Gone).value, reason)
        self.assertTrue(queue.closed)

    def test_fails_waiting_poppers(self) -> None:
        queue = BoundedQueue[str](10)
        first, second = queue.pop(), queue.pop()
        queue.close(Gone())
        self.failureResultOf(first, Gone)
        self.failureResultOf(second, Gone)

    def test_default_reason(self) -> None:
        queue = BoundedQueue[str](10)
        waiting = queue.pop()
        queue.close()
        self.failureResultOf(waiting, QueueClosed)
        self.assertRaises(QueueClosed, queue.pop_now)

    def test_items_remain_poppable(self) -> None:
        queue = BoundedQueue[str](10)
        queue.push_now("a", 1)
        queue.push_now("b", 1)
        waiting = queue.push("c", 9)
        queue.close(Gone())
        self.failureResultOf(waiting, Gone)
        self.assertEqual(queue.pop_now(), "a")
        self.assertEqual(self.successResultOf(queue.pop()), "b")
        self.assertRaises(Gone, queue.pop_now)
        self.failureResultOf(queue.pop(), Gone)
        self.assertEqual(len(queue), 0)

    def test_push_after_close(self) -> None:
        queue = BoundedQueue[str](10)
        queue.close(Gone())
        self.assertRaises(Gone, queue.push_now, "a", 1)
        self.failureResultOf(queue.push("a", 1), Gone)
        self.assertFalse(queue.would_admit(1))
        self.assertEqual(len(queue), 0)

    def test_close_twice(self) -> None:
        """The first reason sticks."""
        queue = BoundedQueue[str](10)
        queue.close(Gone())
        queue.close(ValueError())
        self.failureResultOf(queue.pop(), Gone)

    def test_close_after_cancel(self) -> None:
        queue = BoundedQueue[str](10)
        queue.push_now("a", 9)
        pushed = queue.push("b", 5)
        popped_queue = BoundedQueue[str](10)
        popped = popped_queue.pop()
        pushed.cancel()
        popped.cancel()
        queue.close(Gone())
        popped_queue.close(Gone())
        self.failureResultOf(pushed, CancelledError)
        self.failureResultOf(popped, CancelledError)

    def test_waiter_callbacks_see_closed_queue(self) -> None:
        queue = BoundedQueue[str](10)
        waiting: Deferred[str] = queue.pop()
        seen: list[bool] = []
        waiting.addErrback(lambda failure: seen.append(queue.closed))
        queue.close(Gone())
        self.assertEqual(seen, [True])
