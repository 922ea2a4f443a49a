# -*- test-case-name: tests.test_session_wire -*-
"""
The receiving side of a running session (Octez ``P2p_socket.Reader``,
behaviour.md §8.1): the data of the session's ``Running`` state.

A :class:`Receiver` opens the complete chunks waiting in the session's
input buffer in one call into the compiled cipher, cuts the plaintext into
records with a :class:`~txtezosp2p.wire.framing.RecordFramer`, decodes each
record from a memoryview of the decrypted bytes and queues the message:

* the incoming queue is bounded in bytes (``incoming_message_queue_size``);
  a decoded message that does not fit is held and the peer paused until
  the application reads, and nothing more is decrypted meanwhile;
* a record is never copied before its codec decodes it, unless it spans
  several reads (then it is assembled once); the codec copies what the
  message keeps;
* part of a message held for longer than ``receive_progress_timeout``
  without a message completing closes the connection (:class:`ReceiveStalled`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ._queue import BoundedQueue
from .interfaces import IMessageCodec
from .wire.crypto import ChunkCipher
from .wire.errors import DecodingError, P2PError, ReceiveStalled
from .wire.framing import InputBuffer, Record, RecordFramer, decode_record


def _nothing(*_: object) -> None:
    pass


class Receiver:
    """Decrypts, frames and decodes the messages of a running session."""

    def __init__(
        self,
        *,
        cipher: ChunkCipher,
        codec: IMessageCodec,
        queue: BoundedQueue[object],
        received: InputBuffer,
        clock: IReactorTime,
        progress_timeout: float | None,
        pause: Callable[[], None],
        resume: Callable[[], None],
        failed: Callable[[P2PError], None],
    ) -> None:
        self._cipher = cipher
        self._codec = codec
        self._queue = queue
        self._input = received
        self._clock = clock
        self._timeout = progress_timeout
        self._pause = pause
        self._resume = resume
        self._failed = failed
        self.framer = RecordFramer(codec.max_size, codec.header_size)
        #: Records framed but not decoded yet: they wait for room in the queue.
        self._records: deque[Record] = deque()
        #: A decoded message waiting for room, and its size.
        self._held: tuple[object, int] | None = None
        self._waiting_for_room = False
        self._stopped = False
        #: When the current partial message started (or the last one completed).
        self._progress_at = 0.0
        self._stall_timer: IDelayedCall | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for incomplete chunks and records."""
        return len(self._input) + self.framer.buffered

    def receive(self) -> None:
        """Handle what the input buffer holds (called after every read)."""
        if self._stopped or self._waiting_for_room:
            return
        partial_before = self.buffered > 0
        received = self._input
        plain, pos, _, error = self._cipher.open(received.data, received.pos, -1)
        received.consumed(pos)
        delivered = False
        if plain:
            pending = len(self._records)
            # (no local name for the records: a large one is freed as soon as decoded)
            self._records.extend(self.framer.feed(plain))
            del plain
            if len(self._records) > pending:
                delivered = True
                self._deliver()
            if self.framer.error is not None:
                error = self.framer.error
        if error is not None and not self._stopped:
            self._fail(error)
            return
        if self._waiting_for_room:
            self._pause()
        elif self._timeout is not None and not self._stopped:
            self._watch_progress(delivered or not partial_before)

    def _deliver(self) -> None:
        """Decode and queue framed records while there is room."""
        records = self._records
        queue = self._queue
        codec = self._codec
        # a reader may close the session from a push's callback: stop there
        while records and not queue.closed:
            body = records.popleft()
            size = len(body) + 4
            try:
                message = decode_record(codec, body)
            except DecodingError as exc:
                self._fail(exc)
                return
            except Exception as exc:
                self._fail(DecodingError("Invalid_payload", str(exc)))
                return
            del body  # the received bytes of a large record go before the message is handled
            if not queue.push_now(message, size):
                self._held = (message, size)
                self._wait_for_room()
                return

    def _fail(self, error: P2PError) -> None:
        failed = self._failed
        self.stop()
        failed(error)

    def _wait_for_room(self) -> None:
        if not self._waiting_for_room:
            self._waiting_for_room = True
            self._cancel_stall_timer()
            self._queue.on_space = self._space

    def _space(self) -> None:
        """The application read a message: admit the held one, decode the rest, read on."""
        held = self._held
        if held is not None:
            if not self._queue.would_admit(held[1]):
                return
            self._held = None
            self._queue.push_now(*held)
        self._deliver()
        if self._held is not None or self._stopped:
            return
        self._waiting_for_room = False
        self._queue.on_space = None
        self._progress_at = self._clock.seconds()  # time paused by us does not count
        self._resume()
        self.receive()  # what arrived meanwhile

    def stop(self) -> None:
        """
        Nothing more will be received: release the buffers and the
        session's callbacks (a stopped receiver calls nothing, and keeps
        no reference cycle through its session alive).
        """
        self._stopped = True
        self._pause = self._resume = _nothing
        self._failed = _nothing
        self._held = None
        self._records.clear()
        self._input.clear()
        self._cancel_stall_timer()
        if self._waiting_for_room:
            self._waiting_for_room = False
            self._queue.on_space = None

    # -- the progress timeout ------------------------------------------------

    def _watch_progress(self, progressed: bool) -> None:
        # The timer is armed once and checks lazily when it fires: a stream
        # of messages costs a clock reading per read, not a timer each.
        if self.buffered == 0:
            return
        if progressed:
            self._progress_at = self._clock.seconds()
        if self._stall_timer is None:
            assert self._timeout is not None
            self._stall_timer = self._clock.callLater(self._timeout, self._check_progress)

    def _check_progress(self) -> None:
        self._stall_timer = None
        if self._stopped or self._waiting_for_room or self.buffered == 0:
            return
        assert self._timeout is not None
        left = self._progress_at + self._timeout - self._clock.seconds()
        if left > 0:
            self._stall_timer = self._clock.callLater(left, self._check_progress)
            return
        self._fail(
            ReceiveStalled(
                f"{self.buffered} bytes of an incomplete message for {self._timeout:g} s"
            )
        )

    def _cancel_stall_timer(self) -> None:
        timer, self._stall_timer = self._stall_timer, None
        if timer is not None and timer.active():
            timer.cancel()
