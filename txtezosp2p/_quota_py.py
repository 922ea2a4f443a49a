# -*- test-case-name: tests.test_io_scheduler -*-
"""
Pure-Python twin of ``cext/_quota.pyx``: the same accounting, the same
integer arithmetic, the same decisions.
"""

from __future__ import annotations

BACKEND = "python"


class QuotaTable:
    """See ``cext/_quota.pyx``."""

    def __init__(self) -> None:
        self._quota: list[int] = []
        self._period: list[int] = []
        self._total: list[int] = []
        self._average: list[int] = []
        self._used: list[bool] = []
        self._free: list[int] = []
        self._active = 0
        self.global_quota = 0
        self.global_total = 0
        self.global_average = 0
        self._global_period = 0
        self._capped = False

    @property
    def connections(self) -> int:
        return self._active

    @property
    def capped(self) -> bool:
        return self._capped

    def _grow(self) -> None:
        old = len(self._used)
        new = old * 2 if old else 16
        for array in (self._quota, self._period, self._total, self._average):
            array.extend([0] * (new - old))
        self._used.extend([False] * (new - old))
        self._free.extend(range(new - 1, old - 1, -1))

    def add(self) -> int:
        if not self._free:
            self._grow()
        slot = self._free.pop()
        self._used[slot] = True
        self._quota[slot] = self._period[slot] = self._total[slot] = self._average[slot] = 0
        self._active += 1
        return slot

    def _check(self, slot: int) -> None:
        if not 0 <= slot < len(self._used) or not self._used[slot]:
            raise KeyError(slot)

    def remove(self, slot: int) -> None:
        self._check(slot)
        self._used[slot] = False
        self._active -= 1
        self._free.append(slot)

    def count(self, slot: int, n: int, high: bool) -> None:
        self._check(slot)
        self._period[slot] += n
        self._total[slot] += n
        self._global_period += n
        self.global_total += n
        if self._capped:
            self.global_quota -= n
        if high:
            self._quota[slot] -= n

    def quota(self, slot: int) -> int:
        self._check(slot)
        return self._quota[slot]

    def total(self, slot: int) -> int:
        self._check(slot)
        return self._total[slot]

    def average(self, slot: int) -> int:
        self._check(slot)
        return self._average[slot]

    def refresh(self, elapsed_ms: int, cap: int) -> None:
        elapsed_ms = max(1, elapsed_ms)
        for i, used in enumerate(self._used):
            if used:
                self._average[i] = (200 * self._period[i]) // elapsed_ms + (
                    800 * self._average[i]
                ) // 1000
                self._period[i] = 0
        self.global_average = (200 * self._global_period) // elapsed_ms + (
            800 * self.global_average
        ) // 1000
        self._global_period = 0
        fair = self.global_average // self._active if self._active else 0
        for i, used in enumerate(self._used):
            if used:
                self._quota[i] = min(self._quota[i], 0) + fair
        if cap >= 0:
            previous = self.global_quota if self._capped else 0
            self.global_quota = min(previous, 0) + cap
            self._capped = True
        else:
            self.global_quota = 0
            self._capped = False

    def snapshot(self) -> dict[int, tuple[int, int, int]]:
        return {
            i: (self._quota[i], self._total[i], self._average[i])
            for i, used in enumerate(self._used)
            if used
        }
