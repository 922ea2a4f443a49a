# -*- test-case-name: tests.test_session_wire -*-
"""
The sending side of a session: the bounded outgoing queue, batching into
sealed chunks, back-pressure from the transport and towards application
producers (Octez ``P2p_socket.Writer``, behaviour.md §8.1).

An :class:`Outbox` accepts message bodies as soon as the session exists and
starts sending once the session runs (:meth:`Outbox.start`):

* the queue is bounded in bytes (``outgoing_message_queue_size``, Octez's
  admission rule): :meth:`~Outbox.write` waits for room, ``write_now``
  drops;
* a pull producer registered on the transport asks for the next batch only
  once everything handed over so far has reached the kernel; that moment is
  when ``write_sync`` Deferreds fire;
* a batch is up to ``WRITE_BATCH`` bytes of queued records sealed into one
  buffer by one call into the compiled cipher;
* an application producer registered on the session is paused while the
  queue is full and resumed once it has drained to half its bound
  (hysteresis, so that it is not woken for every message).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IPullProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from ._queue import BoundedQueue
from .interfaces import IMessageCodec
from .limits import Limits
from .wire.crypto import ChunkCipher
from .wire.errors import ConnectionClosed, InvalidMessageSize, P2PError

#: Largest amount of plaintext sealed and handed to the transport at once.
WRITE_BATCH = 64 * 1024

#: A queued write: the body, whether it is a record (sent after its 4-byte
#: length) or raw plaintext, and the Deferred of a ``write_sync``.
_Outgoing = tuple[bytes, bool, "Deferred[None] | None"]


@implementer(IPullProducer)
class _WriteDemand:
    """
    The pull producer registered on the transport once the session runs:
    the transport calls :meth:`resumeProducing` each time it has handed all
    it holds to the kernel.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def resumeProducing(self) -> None:
        self._outbox._drained()

    def stopProducing(self) -> None:
        self._outbox._demand = False


class Outbox:
    """The outgoing queue of one session and what moves it to the transport."""

    def __init__(self, limits: Limits, codec: IMessageCodec) -> None:
        self._codec = codec
        self._max_record = codec.max_size
        #: Bytes handed to the transport.
        self.sent = 0
        self._chunk_size = limits.chunk_plaintext_size
        self._batch = min(WRITE_BATCH, limits.write_queue_size or WRITE_BATCH)
        self._queue: BoundedQueue[_Outgoing] = BoundedQueue(limits.outgoing_message_queue_size)
        self._cipher: ChunkCipher | None = None
        self._transport: Any = None
        self._demand = False
        self._flushing = False
        self._in_flight: list[Deferred[None]] = []
        self._close_when_flushed = False
        self._closed_reason = "connection closed"
        # the application producer, if any
        self._producer: Any = None
        self._streaming = False
        self._paused = False
        self._resuming = False

    @property
    def size(self) -> int:
        """Bytes queued and not yet sealed (the bound's unit)."""
        return self._queue.size

    @property
    def closed(self) -> bool:
        return self._queue.closed

    # -- accepting messages --------------------------------------------------

    def check_open(self) -> None:
        if self._queue.closed:
            raise ConnectionClosed(self._closed_reason)

    def check_size(self, body: bytes) -> bytes:
        if len(body) + 4 > self._max_record:
            raise InvalidMessageSize(f"message of {len(body) + 4} bytes exceeds {self._max_record}")
        return body

    def encode(self, message: object) -> bytes:
        """The encoded body of ``message``; its record adds a 4-byte length."""
        self.check_open()
        return self.check_size(bytes(self._codec.encode(message)))

    def write(self, message: object) -> Deferred[None]:
        try:
            body = self.encode(message)
        except P2PError:
            return fail()
        queued = self._queue.push((body, True, None), len(body) + 4)
        self.flush()
        self._update_producer(refused=not queued.called)
        return queued

    def write_now(self, body: bytes) -> bool:
        if self._queue.push_now((body, True, None), len(body) + 4):
            self.flush()
            self._update_producer()
            return True
        self._update_producer(refused=True)
        return False

    def write_sync(self, data: bytes, framed: bool) -> Deferred[None]:
        sent: Deferred[None] = Deferred()
        queued = self._queue.push((data, framed, sent), len(data) + 4 * framed)
        queued.addCallback(lambda _: sent)
        self.flush()
        return queued

    # -- sending -------------------------------------------------------------

    def start(self, cipher: ChunkCipher, transport: Any) -> None:
        """The session runs: register on ``transport`` and send what is queued when asked."""
        self._cipher = cipher
        self._transport = transport
        transport.registerProducer(_WriteDemand(self), False)

    def stop(self) -> None:
        """Stop sending (the transport is about to close)."""
        if self._transport is not None:
            transport, self._transport = self._transport, None
            self._demand = False
            transport.unregisterProducer()

    def _finish(self) -> None:
        """Everything is sent after a waiting close: close the transport."""
        transport = self._transport
        if transport is not None:
            self.stop()
            transport.loseConnection()

    def _drained(self) -> None:
        done, self._in_flight = self._in_flight, []
        self._demand = True
        for waiter in done:
            waiter.callback(None)
        self.flush()

    def flush(self) -> None:
        """Seal queued messages and hand them to the transport while it wants more."""
        if not self._demand or self._flushing or self._cipher is None:
            return
        self._flushing = True
        try:
            bodies: list[bytes] = []
            flags = bytearray()
            total = 0
            queue = self._queue
            while total < self._batch and queue:
                item = queue.pop_now()
                assert item is not None
                body, framed, sent = item
                bodies.append(body)
                flags.append(framed)
                total += len(body)
                if sent is not None:
                    self._in_flight.append(sent)
            if bodies:
                # every queued record of the batch, sealed into one buffer in one call
                frames = self._cipher.seal_batch(bodies, bytes(flags), self._chunk_size)
                self._demand = False
                self.sent += len(frames)
                self._transport.write(frames)
            elif self._close_when_flushed:
                self._finish()
        finally:
            self._flushing = False
        self._update_producer()

    # -- closing -------------------------------------------------------------

    def close(self, error: P2PError, wait: bool) -> bool:
        """
        Accept no more messages.  With ``wait`` what is queued is still sent
        and the transport closed once it is; otherwise it is dropped.
        Returns whether nothing is left to send (the caller closes the
        transport then).
        """
        self._closed_reason = str(error)
        if not wait:
            self.drop(error)
            return True
        self._queue.close(error)
        self._close_when_flushed = True
        if not self._queue and not self._in_flight:
            return True
        self.flush()
        return False

    def drop(self, error: P2PError) -> None:
        """Close and fail every queued or in-flight write with ``error``."""
        self._closed_reason = str(error)
        self._queue.close(error)
        if self._queue:
            for _, _, sent in self._queue.drain():
                if sent is not None:
                    sent.errback(Failure(error))
        self.fail_in_flight(error)

    def fail_in_flight(self, error: P2PError) -> None:
        if not self._in_flight:
            return
        in_flight, self._in_flight = self._in_flight, []
        for waiter in in_flight:
            waiter.errback(Failure(error))

    # -- application producers -----------------------------------------------

    def register_producer(self, producer: Any, streaming: bool) -> None:
        if self._producer is not None:
            raise RuntimeError("a producer is already registered")
        self._producer = producer
        self._streaming = bool(streaming)
        self._paused = False
        self._update_producer()

    def unregister_producer(self) -> None:
        self._producer = None

    def _update_producer(self, refused: bool = False) -> None:
        """
        Pause the application producer when a write was refused or the
        queue reached its bound; resume it once the queue has drained to
        half its bound.
        """
        producer = self._producer
        if producer is None:
            return
        queue = self._queue
        bound = queue.bound
        if refused or queue.closed or (bound is not None and queue.size >= bound):
            # pausing is always allowed, even while the producer is being resumed
            if self._streaming and not self._paused:
                self._paused = True
                producer.pauseProducing()
            return
        if bound is not None and queue.size > bound // 2:
            return
        if self._resuming or (self._streaming and not self._paused):
            return
        self._paused = False
        self._resuming = True
        try:
            producer.resumeProducing()
        finally:
            self._resuming = False
