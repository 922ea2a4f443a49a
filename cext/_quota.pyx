# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""
Accounting core of the IO scheduler (behaviour.md section 8.2-8.3): byte
counters, per-connection quotas and moving averages for up to N connections
in flat C arrays.

The pure-Python twin is ``txtezosp2p/_quota_py.py``; both use the same
integer arithmetic and take the same decisions.  ``cdivision`` is safe here:
every division has a positive divisor and a non-negative dividend.
"""

from cpython.mem cimport PyMem_Free, PyMem_Realloc

BACKEND = "cython"


cdef class QuotaTable:
    """
    One direction (reads or writes) of the scheduler.

    Slots are connection handles.  ``count`` records bytes handed over;
    ``refresh`` runs once per period: moving averages (alpha = 0.2, integer
    arithmetic as Octez's ``Moving_average``), then each connection's quota
    becomes ``min(quota, 0) + global_average // connections`` (debt carries
    over, credit does not) and, when a cap is set, the global quota becomes
    ``min(global_quota, 0) + cap``.
    """

    cdef long long *_quota
    cdef long long *_period
    cdef long long *_total
    cdef long long *_average
    cdef unsigned char *_used
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _active
    cdef list _free
    cdef public long long global_quota
    cdef public long long global_total
    cdef public long long global_average
    cdef long long _global_period
    cdef bint _capped

    def __cinit__(self):
        self._capacity = 0
        self._active = 0
        self._free = []
        self.global_quota = 0
        self.global_total = 0
        self.global_average = 0
        self._global_period = 0
        self._capped = False

    def __dealloc__(self):
        PyMem_Free(self._quota)
        PyMem_Free(self._period)
        PyMem_Free(self._total)
        PyMem_Free(self._average)
        PyMem_Free(self._used)

    cdef int _grow(self) except -1:
        cdef Py_ssize_t new = self._capacity * 2 if self._capacity else 16
        cdef Py_ssize_t i
        cdef void *p
        p = PyMem_Realloc(self._quota, new * sizeof(long long))
        if p == NULL:
            raise MemoryError()
        self._quota = <long long *> p
        p = PyMem_Realloc(self._period, new * sizeof(long long))
        if p == NULL:
            raise MemoryError()
        self._period = <long long *> p
        p = PyMem_Realloc(self._total, new * sizeof(long long))
        if p == NULL:
            raise MemoryError()
        self._total = <long long *> p
        p = PyMem_Realloc(self._average, new * sizeof(long long))
        if p == NULL:
            raise MemoryError()
        self._average = <long long *> p
        p = PyMem_Realloc(self._used, new * sizeof(unsigned char))
        if p == NULL:
            raise MemoryError()
        self._used = <unsigned char *> p
        for i in range(new - 1, self._capacity - 1, -1):
            self._used[i] = 0
            self._free.append(i)
        self._capacity = new
        return 0

    @property
    def connections(self):
        return self._active

    @property
    def capped(self):
        return self._capped

    def add(self):
        """A new connection: returns its slot (quota, counters and average at 0)."""
        if not self._free:
            self._grow()
        cdef Py_ssize_t slot = self._free.pop()
        self._used[slot] = 1
        self._quota[slot] = 0
        self._period[slot] = 0
        self._total[slot] = 0
        self._average[slot] = 0
        self._active += 1
        return slot

    def remove(self, Py_ssize_t slot):
        """Forget a connection; its slot may be reused."""
        self._check(slot)
        self._used[slot] = 0
        self._active -= 1
        self._free.append(slot)

    cdef inline int _check(self, Py_ssize_t slot) except -1:
        if slot < 0 or slot >= self._capacity or not self._used[slot]:
            raise KeyError(slot)
        return 0

    cpdef void count(self, Py_ssize_t slot, long long n, bint high) except *:
        """Record ``n`` bytes handed over; charge the connection's quota if ``high``."""
        self._check(slot)
        self._period[slot] += n
        self._total[slot] += n
        self._global_period += n
        self.global_total += n
        if self._capped:
            self.global_quota -= n
        if high:
            self._quota[slot] -= n

    cpdef long long quota(self, Py_ssize_t slot) except? -1:
        self._check(slot)
        return self._quota[slot]

    def total(self, Py_ssize_t slot):
        self._check(slot)
        return self._total[slot]

    def average(self, Py_ssize_t slot):
        self._check(slot)
        return self._average[slot]

    def refresh(self, long long elapsed_ms, long long cap):
        """
        End a period of ``elapsed_ms`` milliseconds; ``cap`` is the global
        limit in bytes per period, or negative for none.
        """
        cdef Py_ssize_t i
        cdef long long fair = 0, q
        if elapsed_ms <= 0:
            elapsed_ms = 1
        for i in range(self._capacity):
            if self._used[i]:
                self._average[i] = (200 * self._period[i]) / elapsed_ms + (800 * self._average[i]) / 1000
                self._period[i] = 0
        self.global_average = (200 * self._global_period) / elapsed_ms + (800 * self.global_average) / 1000
        self._global_period = 0
        if self._active > 0:
            fair = self.global_average / self._active
        for i in range(self._capacity):
            if self._used[i]:
                q = self._quota[i]
                self._quota[i] = (q if q < 0 else 0) + fair
        if cap >= 0:
            q = self.global_quota if self._capped else 0
            self.global_quota = (q if q < 0 else 0) + cap
            self._capped = True
        else:
            self.global_quota = 0
            self._capped = False

    def snapshot(self):
        """Every slot's (quota, total, average), for tests comparing implementations."""
        cdef Py_ssize_t i
        return {
            i: (self._quota[i], self._total[i], self._average[i])
            for i in range(self._capacity) if self._used[i]
        }
