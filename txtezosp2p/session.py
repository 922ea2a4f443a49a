# -*- test-case-name: tests.test_session -*-
"""
Encrypted, authenticated sessions: Octez's ``P2p_socket`` as a Twisted
protocol.

A :class:`Session` runs the three symmetric, write-before-read steps of the
handshake (wire.md §2-§7), asks an :class:`~txtezosp2p.interfaces.IAuthenticationGate`
whether to Ack, Nack or drop the peer, then carries length-prefixed
messages cut into encrypted chunks (wire.md §4, §8):

1. connection messages in clear; the remote proof of work is checked and the
   channel key and nonces derived;
2. encrypted connection metadata; a peer that turns out to be ourselves is
   refused (``Myself``);
3. Ack, Nack (motive and alternative points) or Nack_v_0 to p2p-version-0
   peers; once both Acks are exchanged the session is running.

The protocol is glue between parts tested on their own: the lifecycle is an
Automat typed state machine whose states hold the step that reads the bytes
they wait for (the ``Running`` state's is the :class:`~txtezosp2p.inbox.Receiver`), the
framing is :mod:`txtezosp2p.wire.framing`, the sending side an
:class:`~txtezosp2p.outbox.Outbox`, the decisions and connection records
live in :mod:`txtezosp2p.gate`.  Every length read from the network is
checked before anything is buffered for it, and a peer that sends faster
than the application reads is paused (``transport.pauseProducing``).

The module is longer than our usual 600 lines because the glue of each
handshake step carries the step's structured log events, aligned with
Octez's; the steps themselves are :mod:`txtezosp2p.handshake`, the states
:mod:`txtezosp2p.lifecycle`, the configuration
:mod:`txtezosp2p.session_config` (re-exported here).  The factories and
:func:`connect_session` stay beside the protocol they build.

Octez sources: ``src/lib_p2p/p2p_socket.ml``, ``p2p_connect_handler.ml``
(version selection), ``src/lib_base/p2p_connection.ml`` (``Info``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _events as ev
from . import handshake
from ._observer import Observer
from ._queue import BoundedQueue
from .gate import Accept, ConnectionInfo, Decision, Refuse, Reject, VersionGate
from .inbox import Receiver
from .interfaces import IIOScheduler, ISession
from .lifecycle import IDLE, Lifecycle, SessionCore, Step, build_lifecycle
from .outbox import WRITE_BATCH, Outbox
from .session_config import SessionConfig
from .wire.crypto import (
    ChunkCipher,
)
from .wire.encoding import (
    Ack,
    ConnectionMessage,
    Nack,
    NetworkVersion,
    encode_ack,
)
from .wire.errors import (
    ClosedBeforeHandshake,
    ClosedDuringAuthentication,
    ConnectionClosed,
    DecodingError,
    EncodingError,
    HandshakeTimeout,
    InvalidAuth,
    P2PError,
    Rejected,
    RejectedByNack,
    RejectedSocketConnection,
    RejectedWithoutNack,
)
from .wire.framing import InputBuffer, take_connection_message
from .wire.ids import ConnectionId, PeerId, Point, to_ipv6
from .wire.stats import Stat
from .wire.versions import GHOSTNET, MAINNET, SANDBOX, SHADOWNET, Versions

S = TypeVar("S", bound=Step)

_log = ev.logger("p2p.socket")
_handler_log = ev.logger("p2p.connect_handler")
_FAILED = (
    "{count:,} handshakes failed with {subjects:,} addresses in the last {period:g} s ({kind})"
)
_REFUSED = "refused {count:,} connections of {subjects:,} peers in the last {period:g} s ({kind})"
_NACKED = "sent {count:,} Nacks to {subjects:,} points in the last {period:g} s ({kind})"

#: The body of an Ack (wire.md §6).
_ACK = encode_ack(Ack())

#: Bytes we accept to hold while no step of the handshake wants them: one
#: connection message or chunk and the next one.  Beyond that the peer is paused.
HANDSHAKE_BUFFER_LIMIT = 2 * (2 + 0xFFFF)


# -- The session ------------------------------------------------------------


class _Transport(TypingProtocol):
    """The transport methods a session uses (TCP transports and iosim's have them)."""

    def write(self, data: bytes) -> None: ...
    def registerProducer(self, producer: object, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def loseConnection(self) -> None: ...
    def getPeer(self) -> object: ...


@implementer(ISession)
class Session(Protocol):
    """
    One P2P connection, incoming (we accepted it) or outgoing (we dialled).

    The handshake starts as soon as the transport connects.  Observe it with
    :meth:`when_authenticated`, :meth:`when_established` and
    :meth:`when_closed`; once established use the Octez-style I/O methods
    (:meth:`write`, :meth:`write_now`, :meth:`write_sync`, :meth:`read`,
    :meth:`read_now`, :meth:`stat`, :meth:`close`).

    ``point`` is the point we dialled (outgoing) and ``deadline`` the
    clock time by which the handshake must be done; by default the
    ``authentication_timeout`` (incoming) or ``connection_timeout``
    (outgoing) of the limits, counted from the connection.
    """

    _lifecycle_factory: Callable[[SessionCore], Lifecycle] | None = None

    def __init__(
        self,
        config: SessionConfig,
        clock: IReactorTime,
        *,
        incoming: bool,
        point: Point | None = None,
        deadline: float | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.incoming = incoming
        self.point = point
        self.info: ConnectionInfo | None = None
        self.negotiated_version: NetworkVersion | None = None
        self.remote_connection_message: ConnectionMessage | None = None
        self.close_reason: str | None = None
        # statistics (rates come from the IO scheduler)
        self._sent = 0  # by the session itself: the handshake (the outbox counts the rest)
        self.total_recv = 0
        self._deadline = deadline
        self._timer: IDelayedCall | None = None
        self._cipher: ChunkCipher | None = None
        self._nack_sent = False
        self._input = InputBuffer()
        #: The step of the lifecycle's current state: it reads what is received.
        self._step: Step = IDLE
        self._paused = False
        self._incoming: BoundedQueue[object] = BoundedQueue(
            config.limits.incoming_message_queue_size
        )
        self._outbox = Outbox(config.limits, config.codec)
        self._authenticated: Observer[ConnectionInfo] = Observer()
        self._established: Observer[None] = Observer()
        self._closed: Observer[str] = Observer()
        if Session._lifecycle_factory is None:
            Session._lifecycle_factory = build_lifecycle()
        # The machine reaches its session through a weak proxy and none of
        # the session's parts keeps a reference back to it, so a finished
        # session is freed by reference counting: no reference cycle is
        # left for the garbage collector, whose passes over the dead
        # sessions of a node accepting thousands of handshakes cost more
        # than the handshakes' own Python.
        self._machine = Session._lifecycle_factory(weakref.proxy(self))

    # -- observers -----------------------------------------------------------

    def when_authenticated(self) -> Deferred[ConnectionInfo]:
        return self._authenticated.when()

    def when_established(self) -> Deferred[Session]:
        # the observer remembers that the session is established, not the
        # session itself (which would hold itself through it)
        return self._established.when().addCallback(lambda _: self)

    def when_closed(self) -> Deferred[str]:
        return self._closed.when()

    @property
    def established(self) -> bool:
        return self._established.succeeded

    @property
    def peer_id(self) -> PeerId | None:
        return None if self.info is None else self.info.peer_id

    @property
    def local_metadata(self) -> Any:
        return None if self.info is None else self.info.local_metadata

    @property
    def remote_metadata(self) -> Any:
        return None if self.info is None else self.info.remote_metadata

    # -- Twisted protocol ----------------------------------------------------

    def connectionMade(self) -> None:
        # Each handshake step is one small write answered by the peer: with
        # Nagle's algorithm on, a write may wait for the peer's delayed
        # acknowledgement of the previous one (up to 40 ms).  Sessions on a
        # scheduled transport get the option from the scheduler instead.
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        if self._deadline is None:
            limits = self.config.limits
            timeout = limits.authentication_timeout if self.incoming else limits.connection_timeout
            self._deadline = self.clock.seconds() + timeout
        delay = max(0.0, self._deadline - self.clock.seconds())
        self._timer = self.clock.callLater(delay, self._timed_out)
        self._machine.start()

    def dataReceived(self, data: bytes) -> None:
        self.total_recv += len(data)
        if self._incoming.closed:
            # closed on our side (or failed): nobody will read what still
            # arrives while the output drains; drop it unbuffered
            return
        self._input.append(data)
        self._read()

    def connectionLost(self, reason: Failure = Failure(ConnectionClosed())) -> None:  # noqa: B008
        self._machine.lost(reason)

    # -- handshake -----------------------------------------------------------

    def _timed_out(self) -> None:
        self._timer = None
        self._machine.failed(HandshakeTimeout("handshake not finished in time"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _send_connection_message(self) -> bytes:
        config = self.config
        sent = config.greeting(config.connection_nonce())
        if ev.debug_enabled():
            _log.debug(
                "sending authentication to {peer}",
                event=ev.SENDING_AUTHENTICATION,
                peer=self._peer_text(),
            )
        self._send(sent)
        return sent

    def _reading(self, step: S) -> S:
        """The lifecycle entered a state that reads with ``step``."""
        self._step = step
        return step

    def _read(self) -> None:
        """
        Hand the received bytes to the current state's step.  A step that
        finds what it waits for moves the machine on, and the next state's
        step reads what is left (a peer's connection message and metadata
        often arrive in one read).
        """
        step = None
        while self._step is not step and not self._incoming.closed:
            step = self._step
            step.receive()

    def _bound_handshake_input(self, *, reading: bool) -> None:
        if len(self._input) > HANDSHAKE_BUFFER_LIMIT:
            self._pause_reading()
        elif reading:
            self._resume_reading()

    def _read_connection_message(self, sent: bytes) -> None:
        raw = take_connection_message(self._input)
        if raw is None:
            self._bound_handshake_input(reading=True)
            return
        config = self.config
        try:
            message, cipher = handshake.authenticate(
                raw,
                sent,
                incoming=self.incoming,
                secret_key=config.identity.secret_key,
                pow_target=config.pow_target,
                backend=config.backend,
            )
        except P2PError as error:
            self._machine.failed(error)
            return
        self._machine.connection_message(message, cipher)

    def _start_encryption(self, message: ConnectionMessage, cipher: ChunkCipher) -> Any:
        """Send our metadata; returns it (it goes into the connection's info)."""
        self.remote_connection_message = message
        self._cipher = cipher
        metadata = self.config.metadata
        local_metadata = metadata.value()
        try:
            encoded = metadata.encode(local_metadata)
        except Exception as exc:
            self._machine.failed(EncodingError(f"metadata: {exc}"))
            return local_metadata
        self._send(cipher.seal(encoded))
        return local_metadata

    def _open_one(self, *, acking: bool = False) -> bytes | None:
        """Open the next chunk if it is complete; None if it is not there yet."""
        assert self._cipher is not None
        received = self._input
        plain, pos, frames, error = self._cipher.open(received.data, received.pos, 1)
        received.consumed(pos)
        if error is not None:
            if acking and not isinstance(error, DecodingError):
                # a chunk that does not decipher during the Ack step (wire.md §11)
                error = InvalidAuth(str(error))
            self._machine.failed(error)
            return None
        if not frames:
            self._bound_handshake_input(reading=True)
            return None
        return plain

    def _read_metadata(self, local_metadata: Any) -> None:
        plain = self._open_one()
        if plain is None:
            return
        assert self.remote_connection_message is not None
        try:
            info = handshake.connection_info(
                self.remote_connection_message,
                plain,
                metadata=self.config.metadata,
                local_metadata=local_metadata,
                incoming=self.incoming,
                point=self.point,
                peer_address=self._peer_address(),
                own_peer_id=self.config.identity.peer_id,
            )
        except P2PError as error:
            self._machine.failed(error)
            return
        self._machine.authenticated(info)

    def _ask_gate(self, info: ConnectionInfo) -> None:
        self.info = info
        if ev.debug_enabled():
            _handler_log.debug(
                "authenticated {peer_id} at {point}",
                event=ev.AUTHENTICATE_STATUS,
                type="auth",
                peer_id=str(info.peer_id),
                point=str(info.id_point),
                incoming=info.incoming,
            )
        self._authenticated.fire(info)
        try:
            decision = self.config.effective_gate().decide(self, info)
        except Exception:
            self._gate_failed(Failure())
            return
        if isinstance(decision, Deferred):
            decision.addCallbacks(self._gate_answered_later, self._gate_failed)
        else:  # most gates answer at once: no Deferred to pay for
            self._gate_answered(decision)

    def _gate_answered_later(self, decision: object) -> None:
        self._gate_answered(decision)
        self._read()  # what arrived while the gate decided

    def _gate_answered(self, decision: object) -> None:
        if isinstance(decision, Accept):
            self._machine.accepted(decision)
        elif isinstance(decision, Reject):
            self._machine.rejected(decision)
        elif isinstance(decision, Refuse):
            self._machine.refused(decision)
        else:
            self._gate_failed(Failure(TypeError(f"not a decision: {decision!r}")))

    def _gate_failed(self, failure: Failure) -> None:
        error = failure.value
        if not isinstance(error, P2PError):
            _handler_log.failure(
                "authentication gate failed", failure, event=ev.AUTHENTICATION_ERROR
            )
            error = RejectedWithoutNack(f"gate error: {error}")
        self._machine.failed(error)

    def _send_ack(self, decision: Accept) -> None:
        assert self._cipher is not None and self.info is not None
        self.negotiated_version = decision.version
        if ev.debug_enabled():
            _handler_log.debug(
                "accepting {peer_id}",
                event=ev.AUTHENTICATE_STATUS,
                type="accept",
                peer_id=str(self.info.peer_id),
            )
        self._send(self._cipher.seal(_ACK))

    def _log_refusal(self, decision: Refuse) -> None:
        self.config.summary().debug(
            "refusing {peer_id}: {error}",
            log=_handler_log,
            summary=_REFUSED,
            subject=str(self.peer_id),
            kind=decision.error.octez_id,
            event=ev.AUTHENTICATE_STATUS,
            type="reject",
            peer_id=str(self.peer_id),
            error=str(decision.error),
        )

    def _send_nack(self, decision: Reject) -> None:
        assert self._cipher is not None and self.info is not None
        nack = handshake.nack(self.info, decision)
        if isinstance(nack, Nack):
            self.config.summary().debug(
                "nack {point} with {count} alternative points",
                log=_log,
                summary=_NACKED,
                subject=str(self.info.id_point),
                kind=decision.motive.describe(),
                event=ev.NACK_POINT_WITH_LIST,
                point=str(self.info.id_point),
                count=len(nack.points),
                motive=decision.motive.describe(),
            )
        else:
            self.config.summary().debug(
                "nack {point} (no point list due to p2p version)",
                log=_log,
                summary=_NACKED,
                subject=str(self.info.id_point),
                kind=decision.motive.describe(),
                event=ev.NACK_POINT_NO_POINT,
                point=str(self.info.id_point),
                motive=decision.motive.describe(),
            )
        self._send(self._cipher.seal(encode_ack(nack)))
        self._nack_sent = True  # close gracefully so that the Nack reaches the peer

    def _read_ack(self) -> None:
        plain = self._open_one(acking=True)
        if plain is None:
            return
        try:
            handshake.acknowledgement(plain)
        except RejectedByNack as nacked:
            assert self.info is not None
            points = nacked.alternative_points
            _handler_log.info(
                "{peer_id} rejected us: {motive}",
                event=ev.CONNECTION_REJECTED_BY_PEERS,
                peer_id=str(self.info.peer_id),
                motive=nacked.motive.describe(),
                alternatives=None if points is None else [p.to_text() for p in points],
            )
            self._machine.failed(nacked)
            return
        except DecodingError as error:
            self._machine.failed(error)
            return
        self._machine.acknowledged()

    def _receiver(self) -> Receiver:
        """The data of the Running state."""
        assert self._cipher is not None
        return Receiver(
            cipher=self._cipher,
            codec=self.config.codec,
            queue=self._incoming,
            received=self._input,
            clock=self.clock,
            progress_timeout=self.config.limits.receive_progress_timeout,
            pause=self._pause_reading,
            resume=self._resume_reading,
            failed=self._machine.failed,
        )

    def _start_running(self) -> None:
        self._cancel_timer()
        assert self.info is not None and self._cipher is not None
        if ev.debug_enabled():  # Octez's authenticate_status events are debug
            _handler_log.debug(
                "connection established with {peer_id} at {point}",
                event=ev.AUTHENTICATE_STATUS,
                type="connected",
                peer_id=str(self.info.peer_id),
                point=str(self.info.id_point),
                incoming=self.incoming,
            )
        self._outbox.start(self._cipher, self.transport)
        self._established.fire(None)
        self._resume_reading()

    def _abort_handshake(self, error: P2PError) -> None:
        self._cancel_timer()
        _forget_traceback(error)
        self.config.summary().debug(
            "authentication with {peer} failed: {error}",
            log=_handler_log,
            summary=_FAILED,
            subject=str(self._peer_address()[0]),
            kind=error.octez_id,
            event=ev.AUTHENTICATION_ERROR,
            peer=self._peer_text(),
            error=str(error),
            error_id=error.octez_id,
            incoming=self.incoming,
        )
        self.close_reason = str(error)
        self._end_queues(error, ConnectionClosed(str(error)))
        failure = Failure(error)
        self._authenticated.fail(failure)
        self._established.fail(failure)
        if self._nack_sent:
            self._finish_close()
        else:
            self._abort_transport()

    def _handshake_lost(self, reason: Failure) -> None:
        self._cancel_timer()
        error: P2PError
        message = self.remote_connection_message
        if self.negotiated_version is not None:
            # we sent our Ack and the peer hung up (wire.md §11)
            error = RejectedSocketConnection("connection closed while waiting for the Ack")
        elif self.incoming or not reason.check(ConnectionDone, ConnectionLost):
            error = ConnectionClosed(reason.getErrorMessage())
        elif message is None:
            error = ClosedBeforeHandshake()  # refused before a word (behaviour.md §3.3)
        elif self.info is None:
            # it read our connection message and hung up: Octez's proof-of-work refusal
            weak = not self.config.identity.check(26.0)
            error = ClosedDuringAuthentication(PeerId.of_public_key(message.public_key), weak)
        else:
            error = ConnectionClosed(reason.getErrorMessage())
        self.close_reason = str(error)
        self._end_queues(error, error)
        failure = Failure(error)
        self._authenticated.fail(failure)
        self._established.fail(failure)
        self._transport_gone(reason)

    # -- flow control --------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self._tx.pauseProducing()

    def _resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._tx.resumeProducing()

    def _send(self, data: bytes) -> None:
        self._sent += len(data)
        self.transport.write(data)  # type: ignore[union-attr]

    # -- writing API ---------------------------------------------------------

    def write(self, message: object) -> Deferred[None]:
        """Queue ``message`` (waiting while the queue is full); fires once queued."""
        return self._outbox.write(message)

    def write_now(self, message: object) -> bool:
        """Queue ``message`` if there is room now; ``False`` means it was dropped."""
        return self._outbox.write_now(self._outbox.encode(message))

    def write_body_now(self, body: bytes) -> bool:
        """
        Queue an already encoded body if there is room (Octez
        ``write_encoded_now``): a broadcast encodes a message once and
        queues it on every connection.
        """
        self._outbox.check_open()
        return self._outbox.write_now(self._outbox.check_size(body))

    def write_sync(self, message: object) -> Deferred[None]:
        """Queue ``message``; fires once it has been handed to the kernel."""
        try:
            body = self._outbox.encode(message)
        except P2PError:
            return fail()
        return self._outbox.write_sync(body, True)

    def raw_write_sync(self, data: bytes) -> Deferred[None]:
        """
        Send raw plaintext ``data`` cut into chunks, without the record
        length (Octez ``raw_write_sync``, used to test peers with garbage).
        """
        if self._outbox.closed:
            return fail(ConnectionClosed(self.close_reason or "connection closed"))
        return self._outbox.write_sync(bytes(data), False)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register an application producer that writes messages: a streaming
        one is paused while the outgoing queue is full and resumed when it
        has room; a pull one is asked for more each time there is room.
        """
        self._outbox.register_producer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._outbox.unregister_producer()

    # -- reading API ---------------------------------------------------------

    def read(self) -> Deferred[object]:
        """The next received message; fails once the connection is closed and drained."""
        return self._incoming.pop()

    def read_now(self) -> object | None:
        """The next received message, or ``None``; raises once closed and drained."""
        return self._incoming.pop_now()

    def stat(self) -> Stat:
        """
        This connection's traffic.  Under an IO scheduler, its totals and its
        moving-average rates; otherwise the byte totals, with zero rates.
        """
        regulated = getattr(self.transport, "connection_stat", None)
        if regulated is not None:
            return regulated()  # type: ignore[no-any-return]
        return Stat(self.total_sent, self.total_recv, 0, 0)

    @property
    def total_sent(self) -> int:
        """Bytes written to the transport (handshake and messages)."""
        return self._sent + self._outbox.sent

    # -- closing -------------------------------------------------------------

    def close(self, reason: str = "", wait: bool = False) -> Deferred[None]:
        """
        Close the connection.  With ``wait``, messages already queued are
        sent first; otherwise they are dropped.  Fires once the transport
        is gone.
        """
        done = self._closed.when()
        # stop delivering at once, even when called while a message is delivered
        self._incoming.close(ConnectionClosed(reason or "closed locally"))
        self._machine.close(reason, wait)
        return done.addCallback(lambda _: None)

    def _begin_close(self, reason: str, wait: bool) -> None:
        self.close_reason = reason or "closed locally"
        if ev.debug_enabled():
            # debug: a node's connect handler logs every disconnection at info
            _handler_log.debug(
                "closing connection with {peer_id}: {reason}",
                event=ev.DISCONNECTED,
                peer_id=str(self.peer_id),
                reason=self.close_reason,
            )
        closed = ConnectionClosed(self.close_reason)
        self._incoming.close(closed)
        if self._outbox.close(closed, wait):
            self._finish_close()

    def _fail_running(self, error: P2PError) -> None:
        self.close_reason = str(error)
        level = _handler_log.info if isinstance(error, ConnectionClosed) else _handler_log.warn
        level(
            "connection with {peer_id} failed: {error}",
            event=ev.DISCONNECTED,
            peer_id=str(self.peer_id),
            error=str(error),
            error_id=error.octez_id,
        )
        self._end_queues(error, ConnectionClosed(str(error)))
        self._abort_transport()

    def _running_lost(self, reason: Failure) -> None:
        if self.close_reason is None:
            self.close_reason = "connection closed by peer"
        if ev.debug_enabled():
            _log.debug(
                "connection with {peer_id} closed",
                event=ev.CONNECTION_CLOSED,
                peer_id=str(self.peer_id),
            )
        closed = ConnectionClosed(self.close_reason)
        self._end_queues(closed, closed)
        self._transport_gone(reason)

    def _end_queues(self, read_error: P2PError, write_error: P2PError) -> None:
        _forget_traceback(read_error)
        _forget_traceback(write_error)
        self._input.clear()  # nothing more will be read
        self._incoming.close(read_error)
        self._outbox.drop(write_error)

    def _finish_close(self) -> None:
        transport = self._tx
        if transport is None:
            return
        self._outbox.stop()
        transport.loseConnection()

    def _abort_transport(self) -> None:
        transport = self._tx
        if transport is None:
            return
        self._outbox.stop()
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()

    def _transport_gone(self, reason: Failure) -> None:
        self._cancel_timer()
        self._outbox.fail_in_flight(ConnectionClosed(self.close_reason or "connection closed"))
        self._closed.fire(self.close_reason or reason.getErrorMessage())

    # -- helpers -------------------------------------------------------------

    @property
    def _tx(self) -> _Transport:
        return cast(_Transport, self.transport)

    def _peer_address(self) -> tuple[Any, int]:
        peer = self.transport.getPeer() if self.transport is not None else None
        host = getattr(peer, "host", None)
        port = getattr(peer, "port", 0)
        port = port if isinstance(port, int) else 0
        try:
            return to_ipv6(host if isinstance(host, str) else "::"), port
        except ValueError:
            return to_ipv6("::"), port

    def _peer_text(self) -> str:
        if self.point is not None:
            return str(self.point)
        address, port = self._peer_address()
        return str(ConnectionId(address, port))


# -- Factories --------------------------------------------------------------


class SessionFactory(Factory):
    """
    Builds an incoming :class:`Session` for every accepted connection and
    hands it to ``on_session`` (which typically waits for
    :meth:`Session.when_established`).
    """

    protocol = Session  # type: ignore[assignment]
    noisy = False

    def __init__(
        self,
        config: SessionConfig,
        clock: IReactorTime,
        on_session: Callable[[Session], None] | None = None,
        scheduler: IIOScheduler | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.on_session = on_session
        self.scheduler = scheduler

    def buildProtocol(self, addr: Any) -> Protocol:
        session = Session(self.config, self.clock, incoming=True)
        session.factory = self
        if self.on_session is not None:
            self.on_session(session)
        if self.scheduler is not None:
            return self.scheduler.wrap(session)  # type: ignore[no-any-return]
        return session


class Dial(Factory):
    """
    The factory of one outgoing connection: hands ``endpoint.connect`` the
    protocol built beforehand (Twisted's ``connectProtocol`` does the same
    with a class made per call, a cost a node dialling often need not pay).
    It keeps no reference to the protocol once handed over: Twisted's TCP
    connector and client hold each other (a cycle only the garbage
    collector frees), and the session must not hang from it.
    """

    noisy = False

    def __init__(self, protocol: Protocol) -> None:
        self._protocol: Protocol | None = protocol

    def buildProtocol(self, addr: Any) -> Protocol | None:
        protocol, self._protocol = self._protocol, None
        return protocol


def _forget_traceback(error: BaseException) -> None:
    """
    Drop the traceback of an error the session keeps (in its queues and
    failed Deferreds): its frames hold the session, a reference cycle that
    only the garbage collector would free.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


def connect_session(
    config: SessionConfig,
    clock: IReactorTime,
    endpoint: IStreamClientEndpoint,
    *,
    point: Point | None = None,
    timeout: float | None = None,
    scheduler: Any = None,
    session: Session | None = None,
) -> Deferred[Session]:
    """
    Dial ``endpoint`` and run the handshake as the initiator; with a
    ``scheduler`` (an :class:`~txtezosp2p.io_scheduler.IOScheduler`) the
    connection's traffic is regulated.  ``session`` is an outgoing
    :class:`Session` built by the caller (by default one is made).

    The whole attempt, TCP connect included, must finish within ``timeout``
    (the ``connection_timeout`` of the limits by default).  Fires with the
    established session or fails with a typed error; cancelling the
    Deferred aborts the attempt.
    """
    from .wire.errors import ConnectionFailed

    if timeout is None:
        timeout = config.limits.connection_timeout
    deadline = clock.seconds() + timeout
    if session is None:
        session = Session(config, clock, incoming=False, point=point, deadline=deadline)
    else:
        session._deadline = deadline
    result: Deferred[Session] = Deferred(lambda _: _abort_attempt())
    connecting = endpoint.connect(Dial(session if scheduler is None else scheduler.wrap(session)))
    timer = clock.callLater(
        timeout, lambda: _abort_attempt(HandshakeTimeout("connection timed out"))
    )

    def _abort_attempt(error: P2PError | None = None) -> None:
        if timer.active():
            timer.cancel()
        if not connecting.called:
            connecting.cancel()
        elif session.transport is not None:
            session._machine.failed(error or ConnectionClosed("connection attempt cancelled"))
        if error is not None and not result.called:
            result.errback(Failure(error))

    def _connected(_: object) -> Deferred[Session]:
        return session.when_established()

    def _tcp_failed(failure: Failure) -> Failure:
        if isinstance(failure.value, P2PError):
            return failure
        from twisted.internet.defer import CancelledError

        if failure.check(CancelledError):
            return failure
        return Failure(ConnectionFailed(failure.getErrorMessage()))

    def _finished(outcome: Session | Failure) -> None:
        if timer.active():
            timer.cancel()
        if result.called:
            return
        if isinstance(outcome, Failure):
            result.errback(outcome)
        else:
            result.callback(outcome)

    dialled: Deferred[Session] = connecting.addCallbacks(_connected, _tcp_failed)
    dialled.addBoth(_finished)
    return result


__all__ = [
    "GHOSTNET",
    "HANDSHAKE_BUFFER_LIMIT",
    "MAINNET",
    "SANDBOX",
    "SHADOWNET",
    "WRITE_BATCH",
    "Accept",
    "ConnectionInfo",
    "Decision",
    "Dial",
    "Refuse",
    "Reject",
    "Rejected",
    "Session",
    "SessionConfig",
    "SessionFactory",
    "Stat",
    "VersionGate",
    "Versions",
    "connect_session",
]
