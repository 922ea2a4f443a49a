"""The observer primitive (_observer.Observer): one-time outcomes and recurring conditions."""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p._observer import Observer


class OnceTests(SynchronousTestCase):
    def test_waiters_before_and_after(self) -> None:
        observer: Observer[int] = Observer()
        early = observer.when()
        self.assertNoResult(early)
        self.assertFalse(observer.fired)
        observer.fire(1)
        observer.fire(2)  # ignored: the outcome is final
        self.assertEqual(self.successResultOf(early), 1)
        self.assertEqual(self.successResultOf(observer.when()), 1)
        self.assertTrue(observer.fired)
        self.assertTrue(observer.succeeded)

    def test_failure_is_remembered_and_not_a_success(self) -> None:
        observer: Observer[int] = Observer()
        early = observer.when()
        observer.fail(ValueError("no"))
        observer.fire(3)  # too late
        self.failureResultOf(early, ValueError)
        self.failureResultOf(observer.when(), ValueError)
        self.assertTrue(observer.fired)
        self.assertFalse(observer.succeeded)

    def test_each_waiter_gets_its_own_result(self) -> None:
        observer: Observer[list[int]] = Observer()
        first, second = observer.when(), observer.when()
        first.addCallback(lambda value: value.append(9))
        second.addCallback(len)
        observer.fire([])
        self.assertEqual(self.successResultOf(second), 1)  # the same object, in order

    def test_cancelled_waiter_is_forgotten(self) -> None:
        observer: Observer[int] = Observer()
        waiter = observer.when()
        waiter.cancel()
        self.failureResultOf(waiter, CancelledError)
        self.assertEqual(observer.waiting, 0)
        observer.fire(1)  # does not fire the cancelled Deferred twice


class RecurringTests(SynchronousTestCase):
    def test_fire_wakes_current_waiters_only(self) -> None:
        observer: Observer[str] = Observer(once=False)
        observer.fire("nobody")  # nothing remembered
        first = observer.when()
        self.assertNoResult(first)
        observer.fire("a")
        self.assertEqual(self.successResultOf(first), "a")
        second = observer.when()
        self.assertNoResult(second)
        self.assertFalse(observer.fired)
        observer.fail(RuntimeError("b"))
        self.failureResultOf(second, RuntimeError)
        self.assertNoResult(observer.when())
