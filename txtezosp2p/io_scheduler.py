# -*- test-case-name: tests.test_io_scheduler -*-
"""
Bandwidth regulation shared by every connection of a node (Octez
``P2p_io_scheduler``, behaviour.md §8).

:class:`IOScheduler` owns two accounting tables (reads and writes, compiled
in ``cext/_quota.pyx`` with a pure twin) and one timer: every second it
updates the moving averages (alpha = 0.2) and gives each connection its quota,
``min(quota, 0) + measured_global_rate / connections``, and the node its
global budget, ``min(budget, 0) + cap``, when a cap is set.

:class:`ScheduledConnection` wraps one protocol: it is the protocol of the
real transport and the transport of the wrapped protocol (a
:class:`~txtezosp2p.session.Session`), so the session needs no knowledge of
the scheduler.  Each read or write is counted once:

* **no cap** (the default): bytes pass straight through; no queue, no timer
  per chunk.  Fairness only reorders waiting connections, and nobody waits.
* **with a cap**: bytes are handed over in pieces of ``read_buffer_size``
  while the global budget is not negative.  A connection that has to wait is
  queued, in the *high* queue if its own quota is positive (it used less than
  its share during the last period) and in the *low* queue otherwise; the
  high queue is served first.  A connection waiting to read is paused
  (``pauseProducing`` on its transport) and resumed when its pending data is
  handed over; a connection waiting to write stops asking its producer for
  data.  A cap change takes effect at the next period.

Bounds: a connection holds at most one transport read while it waits to
read, and asks its writer for more only when everything it was given has
reached the kernel, so ``read_queue_size`` and ``write_queue_size`` bound
what it holds (a producer registered on it is paused past
``write_queue_size``).

Where we differ from Octez: Octez reads at most ``read_buffer_size`` bytes
(16 KiB) per system call.  We read up to ``socket_read_size`` (128 KiB) per
call, which costs far fewer system calls and reactor turns when many
connections stream at once, and keep ``read_buffer_size`` as the size of the
pieces handed over under a cap, which is what bounds the burst one
connection takes per step.  Without a cap, reads are handed over whole,
which has the same effect as back-to-back reads.

The module is longer than our usual 600 lines because both directions, the
quota table and the regulated connection share one period's arithmetic, as
they share ``p2p_io_scheduler.ml`` in Octez; split, each part would need the
others' private state.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IPullProducer,
    IPushProducer,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _backend, _quota_py
from . import _events as ev
from .interfaces import IIOScheduler
from .limits import Limits
from .wire.stats import Stat

_log = ev.logger("p2p.io-scheduler")

#: Length of a period: quotas and moving averages are updated this often.
PERIOD = 1.0
#: Idle periods replayed at most when traffic resumes: by then (0.8 ** 100 of
#: any rate) every moving average has decayed to zero, as each further one would.
IDLE_CATCH_UP = 100

_UNCHANGED: Any = object()


class _Direction:
    """Reads or writes: the accounting table, the cap, the waiting queues."""

    def __init__(
        self,
        name: str,
        table: _quota_py.QuotaTable,
        cap: int | None,
        piece: int,
        clock: IReactorTime,
    ) -> None:
        self.name = name
        self.clock = clock
        self._pending_pump: Any = None
        self.table = table
        self.cap = cap
        self.next_cap = cap
        self.piece = piece
        self.high: deque[ScheduledConnection] = deque()
        self.low: deque[ScheduledConnection] = deque()
        self.waiting: set[ScheduledConnection] = set()
        self._pumping = False
        if cap is not None:
            table.refresh(int(PERIOD * 1000), cap)  # the first period has its budget

    def may_hand_over(self) -> bool:
        table = self.table
        return not table.capped or table.global_quota >= 0

    def enqueue(self, connection: ScheduledConnection) -> None:
        if connection in self.waiting:
            return
        self.waiting.add(connection)
        slot = connection.slot(self)
        (self.high if self.table.quota(slot) > 0 else self.low).append(connection)

    def forget(self, connection: ScheduledConnection) -> None:
        if connection in self.waiting:
            self.waiting.discard(connection)
            for queue in (self.high, self.low):
                try:
                    queue.remove(connection)
                except ValueError:
                    pass

    def pump_soon(self) -> None:
        """
        Serve the queues at the end of this reactor turn, once every
        connection that became ready during the turn has been queued by
        priority (one call per turn, and only under a cap).
        """
        if self._pending_pump is None:
            self._pending_pump = self.clock.callLater(0, self._deferred_pump)

    def _deferred_pump(self) -> None:
        self._pending_pump = None
        self.pump()

    def pump(self) -> None:
        """Hand over waiting pieces while the budget allows, high queue first."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while (self.high or self.low) and self.may_hand_over():
                queue = self.high if self.high else self.low
                connection = queue.popleft()
                self.waiting.discard(connection)
                if connection.hand_over(self, queue is self.high):
                    self.enqueue(connection)
        finally:
            self._pumping = False

    def new_period(self, elapsed_ms: int) -> None:
        self.cap = self.next_cap
        self.table.refresh(elapsed_ms, -1 if self.cap is None else self.cap)
        # connections that regained quota are served first (behaviour.md §8.2)
        promoted = [c for c in self.low if self.table.quota(c.slot(self)) > 0]
        if promoted:
            self.low = deque(c for c in self.low if c not in promoted)
            self.high.extend(promoted)
        self.pump()

    def stat(self) -> tuple[int, int]:
        return self.table.global_total, self.table.global_average

    def at_rest(self) -> bool:
        """No cap now or next period, and nobody waiting: a period has nothing to do."""
        return self.cap is None and self.next_cap is None and not self.high and not self.low


@implementer(IIOScheduler)
class IOScheduler(Service):
    """
    The bandwidth regulator of a node.  ``max_download_speed`` and
    ``max_upload_speed`` are in bytes per second (``None``: no cap);
    :meth:`from_limits` reads them from :class:`~txtezosp2p.limits.Limits`
    (KiB/s, as Octez's configuration).
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        max_download_speed: int | None = None,
        max_upload_speed: int | None = None,
        read_buffer_size: int = 16384,
        socket_read_size: int = 128 * 1024,
        read_queue_size: int | None = 8 << 20,
        write_queue_size: int | None = 8 << 20,
        backend: _backend.QuotaModule | None = None,
    ) -> None:
        module = backend or _backend.quota
        self.clock = clock
        self.backend = module
        self.socket_read_size = max(socket_read_size, read_buffer_size)
        self.read_queue_size = read_queue_size
        self.write_queue_size = write_queue_size
        self.read = _Direction(
            "read", module.QuotaTable(), max_download_speed, read_buffer_size, clock
        )
        self.write = _Direction(
            "write", module.QuotaTable(), max_upload_speed, read_buffer_size, clock
        )
        self.connections: set[ScheduledConnection] = set()
        #: Called with every new connection's real transport (socket options).
        self.socket_options: Callable[[Any], None] | None = None
        self._last_tick = clock.seconds()
        #: The next period's call; None while idle (see :meth:`_tick`) or stopped.
        self._next_tick: IDelayedCall | None = None
        #: Nothing moved and every rate is zero: periods are not run until
        #: traffic resumes (a node with idle connections costs no timer).
        self.idle = False
        self._totals = (0, 0)
        #: Periods fall on ``_epoch + k * PERIOD``, however late their call runs.
        self._epoch = clock.seconds()
        #: Called after each period (tests and benchmarks sample rates with it).
        self.on_period: Callable[[], None] | None = None
        self._ids = itertools.count(1)

    @classmethod
    def from_limits(
        cls, clock: IReactorTime, limits: Limits, backend: _backend.QuotaModule | None = None
    ) -> IOScheduler:
        def kib(value: int | None) -> int | None:
            return None if value is None else value * 1024

        return cls(
            clock,
            max_download_speed=kib(limits.max_download_speed),
            max_upload_speed=kib(limits.max_upload_speed),
            read_buffer_size=limits.read_buffer_size,
            read_queue_size=limits.read_queue_size,
            write_queue_size=limits.write_queue_size,
            backend=backend,
        )

    # -- service -------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._last_tick = self._epoch = self.clock.seconds()
        self.idle = False
        self._schedule_tick()

    def stopService(self) -> None:
        super().stopService()
        if self._next_tick is not None and self._next_tick.active():
            self._next_tick.cancel()
        self._next_tick = None
        self.idle = False
        for direction in (self.read, self.write):
            if direction._pending_pump is not None and direction._pending_pump.active():
                direction._pending_pump.cancel()
            direction._pending_pump = None

    def _tick(self) -> None:
        self._next_tick = None
        read, write = self.read, self.write
        totals = (read.table.global_total, write.table.global_total)
        if totals == self._totals and read.at_rest() and write.at_rest():
            # Nothing moved during this period and nothing is capped or
            # waiting: the periods to come only decay the moving averages.
            # Instead of a timer per idle node, they are run when someone
            # looks (stat) or traffic resumes (wake), as they would have run.
            self.idle = True
            return
        self._totals = totals
        self._run_period(self.clock.seconds())
        if self.running:
            self._schedule_tick()

    def _run_period(self, now: float) -> None:
        elapsed_ms = max(1, round((now - self._last_tick) * 1000))
        self._last_tick = now
        try:
            self.read.new_period(elapsed_ms)
            self.write.new_period(elapsed_ms)
            if self.on_period is not None:
                self.on_period()
        except Exception:
            _log.failure("IO scheduler period failed", event=ev.UNEXPECTED_ERROR_SCHEDULER)

    def _schedule_tick(self) -> None:
        elapsed = self.clock.seconds() - self._epoch
        self._next_tick = self.clock.callLater(PERIOD - elapsed % PERIOD, self._tick)

    def _catch_up(self) -> None:
        """Run the idle periods that have ended (at most enough to decay every rate to 0)."""
        ended = int((self.clock.seconds() - self._epoch) // PERIOD)
        done = round((self._last_tick - self._epoch) / PERIOD)
        for period in range(max(done + 1, ended - IDLE_CATCH_UP + 1), ended + 1):
            self._run_period(self._epoch + period * PERIOD)

    def wake(self) -> None:
        """Traffic (or a new cap) after an idle spell: periods run again, as if never stopped."""
        if self.idle and self.running:
            self._catch_up()
            self.idle = False
            self._schedule_tick()

    # -- configuration -------------------------------------------------------

    def set_max_speed(
        self, download: int | None = _UNCHANGED, upload: int | None = _UNCHANGED
    ) -> None:
        """Change the caps (bytes per second, ``None`` for none) from the next period."""
        if download is not _UNCHANGED:
            self.read.next_cap = download
        if upload is not _UNCHANGED:
            self.write.next_cap = upload
        self.wake()  # a new cap takes effect at the next period

    @property
    def max_download_speed(self) -> int | None:
        return self.read.cap

    @property
    def max_upload_speed(self) -> int | None:
        return self.write.cap

    # -- connections ---------------------------------------------------------

    def wrap(self, protocol: IProtocol) -> ScheduledConnection:
        """A protocol for the real transport that regulates ``protocol``'s traffic."""
        return ScheduledConnection(self, protocol)

    def stat(self) -> Stat:
        """Totals and current rates of every connection together (``P2p_stat``)."""
        if self.idle:
            self._catch_up()
        recv, inflow = self.read.stat()
        sent, outflow = self.write.stat()
        return Stat(sent, recv, inflow, outflow)

    def _register(self, connection: ScheduledConnection) -> tuple[int, int]:
        self.connections.add(connection)
        return self.read.table.add(), self.write.table.add()

    def _unregister(self, connection: ScheduledConnection) -> None:
        self.connections.discard(connection)
        self.read.forget(connection)
        self.write.forget(connection)


#: What a finished :class:`ScheduledConnection` wraps instead of its protocol.
_FINISHED = Protocol()


@implementer(IPullProducer)
class _Flushed:
    """Registered on the real transport: told when all it holds reached the kernel."""

    def __init__(self, connection: ScheduledConnection) -> None:
        self._connection: ScheduledConnection | None = connection

    def resumeProducing(self) -> None:
        if self._connection is not None:
            self._connection._transport_flushed()

    def stopProducing(self) -> None:
        if self._connection is not None:
            self._connection._transport_stopped()


@implementer(ITransport, IPushProducer)
class ScheduledConnection(Protocol):
    """
    One regulated connection: the protocol of the real transport, and the
    transport of the wrapped protocol.
    """

    def __init__(self, scheduler: IOScheduler, wrapped: IProtocol) -> None:
        self.scheduler = scheduler
        self.wrapped = wrapped
        self._slots: dict[_Direction, int] = {}
        self._read_slot = self._write_slot = -1
        self._read_pending: deque[bytes] = deque()
        self._write_pending: deque[bytes] = deque()
        self.read_pending_bytes = 0
        self.write_pending_bytes = 0
        self._app_paused = False
        self._transport_paused = False
        self._producer: Any = None
        self._streaming = False
        self._producer_paused = False
        self._unflushed = 0
        self._closing = False
        self._closed = False
        self._final: Stat | None = None
        self._flushed = _Flushed(self)

    def slot(self, direction: _Direction) -> int:
        return self._slots[direction]

    # -- the real transport's side -------------------------------------------

    def makeConnection(self, transport: ITransport) -> None:
        self._read_slot, self._write_slot = self.scheduler._register(self)
        self._slots = {self.scheduler.read: self._read_slot, self.scheduler.write: self._write_slot}
        super().makeConnection(transport)

    def connectionMade(self) -> None:
        real = self._real
        if self.scheduler.socket_options is not None:
            self.scheduler.socket_options(real)
        if isinstance(getattr(real, "bufferSize", None), int):
            real.bufferSize = self.scheduler.socket_read_size  # bytes per recv()
        real.registerProducer(self._flushed, False)
        self.wrapped.makeConnection(self)

    def dataReceived(self, data: bytes) -> None:
        if self._closed:
            return
        if self.scheduler.idle:
            self.scheduler.wake()
        direction = self.scheduler.read
        table = direction.table
        if not table.capped and not self._read_pending and not self._app_paused:
            slot = self._read_slot
            table.count(slot, len(data), table.quota(slot) > 0)
            self.wrapped.dataReceived(data)
            return
        piece = direction.piece
        for start in range(0, len(data), piece):
            self._read_pending.append(data[start : start + piece])
        self.read_pending_bytes += len(data)
        self._update_reading()
        if not self._app_paused:
            direction.enqueue(self)
            self._serve(direction)

    def _serve(self, direction: _Direction) -> None:
        if direction.table.capped:
            direction.pump_soon()
        else:
            direction.pump()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self._closed:
            return
        self._closed = True
        self._final = self.stat()
        self.scheduler._unregister(self)
        self.scheduler.read.table.remove(self._read_slot)
        self.scheduler.write.table.remove(self._write_slot)
        self._read_pending.clear()
        self._write_pending.clear()
        self.read_pending_bytes = self.write_pending_bytes = 0
        wrapped = self.wrapped
        # let go of the protocol, and of ourselves in what the real transport
        # holds: a finished connection is then freed by reference counting
        self.wrapped = _FINISHED
        self._flushed._connection = None
        wrapped.connectionLost(reason)

    # -- handing over (called by the directions) -----------------------------

    def hand_over(self, direction: _Direction, from_high: bool) -> bool:
        """Hand one waiting piece over; True if more are waiting."""
        if self._closed:
            return False
        if direction is self.scheduler.read:
            if self._app_paused or not self._read_pending:
                return False
            piece = self._read_pending.popleft()
            self.read_pending_bytes -= len(piece)
            direction.table.count(self._read_slot, len(piece), from_high)
            if not self._read_pending:
                self._update_reading()
            self.wrapped.dataReceived(piece)
            return bool(self._read_pending) and not self._app_paused and not self._closed
        if not self._write_pending:
            return False
        piece = self._write_pending.popleft()
        self.write_pending_bytes -= len(piece)
        direction.table.count(self._write_slot, len(piece), from_high)
        self._unflushed += len(piece)
        self._real.write(piece)
        self._update_producer()
        if not self._write_pending and self._closing:
            self._lose_now()
        return bool(self._write_pending)

    def _update_reading(self) -> None:
        paused = self._app_paused or bool(self._read_pending)
        if paused != self._transport_paused and not self._closed:
            self._transport_paused = paused
            if paused:
                self._real.pauseProducing()
            else:
                self._real.resumeProducing()

    # -- the wrapped protocol's side (ITransport, IConsumer) -----------------

    @property
    def _real(self) -> Any:
        return self.transport

    def write(self, data: bytes) -> None:
        if self._closed or self._closing or not data:
            return
        if self.scheduler.idle:
            self.scheduler.wake()
        direction = self.scheduler.write
        table = direction.table
        if not table.capped and not self._write_pending:
            table.count(self._write_slot, len(data), table.quota(self._write_slot) > 0)
            self._unflushed += len(data)
            self._real.write(data)
            self._update_producer()
            return
        piece = direction.piece
        for start in range(0, len(data), piece):
            self._write_pending.append(data[start : start + piece])
        self.write_pending_bytes += len(data)
        self._update_producer()
        direction.enqueue(self)
        self._serve(direction)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if self._closed or self._closing:
            return
        self._closing = True
        if not self._write_pending:
            self._lose_now()

    def abortConnection(self) -> None:
        if self._closed:
            return
        self._write_pending.clear()
        self.write_pending_bytes = 0
        self._closing = True
        self._real.unregisterProducer()
        abort = getattr(self._real, "abortConnection", None)
        (abort or self._real.loseConnection)()

    def _lose_now(self) -> None:
        self._real.unregisterProducer()
        self._real.loseConnection()

    def getPeer(self) -> IAddress:
        return self._real.getPeer()  # type: ignore[no-any-return]

    def getHost(self) -> IAddress:
        return self._real.getHost()  # type: ignore[no-any-return]

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if self._producer is not None:
            raise RuntimeError("a producer is already registered")
        self._producer = producer
        self._streaming = bool(streaming)
        self._producer_paused = False
        if not streaming and not self._write_pending:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        self._producer = None
        self._producer_paused = False

    # IPushProducer, for the wrapped protocol's own back-pressure on reading
    def pauseProducing(self) -> None:
        self._app_paused = True
        self._update_reading()

    def resumeProducing(self) -> None:
        if not self._app_paused:
            return
        self._app_paused = False
        self._update_reading()
        if self._read_pending:
            direction = self.scheduler.read
            direction.enqueue(self)
            self._serve(direction)

    def stopProducing(self) -> None:
        self.abortConnection()

    # -- write demand --------------------------------------------------------

    def _limit(self) -> int | None:
        return self.scheduler.write_queue_size

    def _update_producer(self) -> None:
        """Pause a streaming producer past write_queue_size, resume it below."""
        producer = self._producer
        if producer is None or not self._streaming:
            return
        limit = self._limit()
        full = limit is not None and self.write_pending_bytes + self._unflushed >= limit
        if full and not self._producer_paused:
            self._producer_paused = True
            producer.pauseProducing()
        elif not full and self._producer_paused:
            self._producer_paused = False
            producer.resumeProducing()

    def _transport_flushed(self) -> None:
        """Everything written so far reached the kernel: ask the producer for more."""
        self._unflushed = 0
        producer = self._producer
        if producer is None or self._write_pending or self._closed:
            return
        if self._streaming:
            self._update_producer()
        else:
            producer.resumeProducing()

    def _transport_stopped(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()

    # -- statistics ----------------------------------------------------------

    def stat(self) -> Stat:
        """This connection's totals and current rates; frozen once it is closed."""
        if self._final is not None:
            return self._final
        if self.scheduler.idle:
            self.scheduler._catch_up()
        read, write = self.scheduler.read.table, self.scheduler.write.table
        return Stat(
            write.total(self._write_slot),
            read.total(self._read_slot),
            read.average(self._read_slot),
            write.average(self._write_slot),
        )

    connection_stat = stat


def regulated(scheduler: IOScheduler | None) -> Callable[[IProtocol], IProtocol]:
    """``scheduler.wrap`` or the identity, for code that may run without a scheduler."""
    if scheduler is None:
        return lambda protocol: protocol
    return scheduler.wrap
