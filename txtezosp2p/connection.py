# -*- test-case-name: tests.test_p2p -*-
"""
An established connection of the P2P layer (Octez ``P2p_conn``,
behaviour.md §3.6, §7.2, §7.3).

A :class:`P2PConnection` wraps a running :class:`~txtezosp2p.session.Session`
speaking the P2P envelope.  Its worker reads one message at a time and
handles it before reading the next: control messages go to the answerer,
application messages into a queue bounded in *messages*
(``incoming_app_message_queue_size``).  When that queue is full the worker
waits, which leaves messages in the session, whose own bounded queue then
pauses the peer: back-pressure all the way to TCP.

Each control message kind has a cooldown (Advertise and Bootstrap 0.1 s,
Swap_request and Swap_ack 60 s): a message arriving sooner than that after
the previous one of its kind is handled only after waiting the whole
cooldown, as Octez does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _events as ev
from ._queue import BoundedQueue
from .interfaces import IAnswerer, IP2PConnection, IPeerLink
from .wire.encoding import Advertise, Bootstrap, Disconnect, SwapAck, SwapRequest
from .wire.errors import (
    ConnectionClosed,
    DecipherError,
    DecodingError,
    DisconnectReason,
    InvalidIncomingCiphertextSize,
    P2PError,
    reason_text,
)
from .wire.ids import ConnectionId, PeerId, Point

if TYPE_CHECKING:
    from .session import ConnectionInfo, Session
    from .wire.stats import Stat

_log = ev.logger("p2p.conn")

#: Errors on a running connection after which the peer and its address are
#: greylisted.  Octez greylists decoding errors only; a chunk that does not
#: decipher or declares an impossible size comes from a hostile or broken
#: peer just as surely, so we greylist those too.
HOSTILE_ERRORS = (DecodingError, DecipherError, InvalidIncomingCiphertextSize)

#: Minimum time between two handled messages of a kind (behaviour.md §7.3).
COOLDOWNS: dict[type, float] = {
    Advertise: 0.1,
    Bootstrap: 0.1,
    SwapRequest: 60.0,
    SwapAck: 60.0,
}


@implementer(IPeerLink)
class PeerLink:
    """
    What the answerer is given of a connection (Octez's
    ``P2p_answerer.conn_info``): the peer, ``send`` for control messages,
    ``push_message`` for application messages, ``disconnect``.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: P2PConnection) -> None:
        self._connection = connection

    @property
    def peer_id(self) -> PeerId:
        return self._connection.peer_id

    @property
    def point(self) -> Point | None:
        return self._connection.point

    @property
    def private(self) -> bool:
        return self._connection.private

    @property
    def closed(self) -> bool:
        return self._connection.closed

    @property
    def last_sent_swap_request(self) -> tuple[float, PeerId] | None:
        return self._connection.last_sent_swap_request

    @last_sent_swap_request.setter
    def last_sent_swap_request(self, value: tuple[float, PeerId] | None) -> None:
        self._connection.last_sent_swap_request = value

    def send(self, message: object) -> bool:
        return self._connection.try_send(message)

    def push_message(self, message: object) -> Deferred[None]:
        return self._connection.push_app_message(message)

    def disconnect(self, reason: DisconnectReason | str) -> Deferred[None]:
        return self._connection.disconnect(reason)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PeerLink) and other._connection is self._connection

    def __hash__(self) -> int:
        return id(self._connection)

    def __repr__(self) -> str:
        return f"<PeerLink {self._connection.peer_id}>"


@implementer(IP2PConnection)
class P2PConnection:
    """One running connection: its session, its worker, its application queue."""

    def __init__(
        self,
        session: Session,
        *,
        clock: IReactorTime,
        answerer: IAnswerer,
        app_queue_size: int | None = 10,
        on_decoding_error: Callable[[P2PConnection, P2PError], None] | None = None,
    ) -> None:
        assert session.info is not None
        self.session = session
        self.clock = clock
        self.answerer = answerer
        #: The narrow view of this connection the answerer works with.
        self.info: ConnectionInfo = session.info
        self.peer_id: PeerId = self.info.peer_id
        self.id_point: ConnectionId = self.info.id_point
        #: The point we dialled, or the one an incoming peer announced (may be None).
        self.point: Point | None = self.id_point.point()
        self.private = self.info.private_node
        #: When the connection started running (for the admission policy's grace period).
        self.established_at = clock.seconds()
        self.app_queue = BoundedQueue[object](app_queue_size)
        self.last_sent_swap_request: tuple[float, PeerId] | None = None
        #: The pool's records of this connection's point (if known) and peer.
        self.point_info: Any = None
        self.peer_info: Any = None
        #: Called with this connection each time an application message is queued.
        self.on_app_message: Callable[[P2PConnection], None] | None = None
        self._last_handled: dict[type, float] = {}
        self._on_decoding_error = on_decoding_error
        self._sleep: Deferred[None] | None = None
        self._running = False
        self.closed = False
        self.close_reason: str | None = None
        #: Why we closed it, when we did (Octez's reason, or the caller's text).
        self.disconnect_reason: DisconnectReason | str | None = None
        #: Whether we asked for the close (:meth:`disconnect`), as opposed to
        #: the remote end or the network closing it (point and peer logs say
        #: ``disconnection`` or ``external_disconnection``, behaviour.md 2.2).
        self.requested = False

    @property
    def link(self) -> PeerLink:
        """
        The narrow view of this connection the answerer works with (made
        on demand: a link held by the connection would be a cycle).
        """
        return PeerLink(self)

    def __repr__(self) -> str:
        return f"<P2PConnection {self.peer_id} at {self.id_point}>"

    # -- accessors -----------------------------------------------------------

    @property
    def incoming(self) -> bool:
        return self.info.incoming

    @property
    def local_metadata(self) -> Any:
        return self.info.local_metadata

    @property
    def remote_metadata(self) -> Any:
        return self.info.remote_metadata

    @property
    def negotiated_version(self) -> Any:
        return self.session.negotiated_version

    def stat(self) -> Stat:
        return self.session.stat()

    # -- the worker ----------------------------------------------------------

    def start(self) -> None:
        """Start reading (once the pool knows the connection)."""
        if not self._running:
            self._running = True
            self._read_next()

    def _read_next(self) -> None:
        # the worker stops as soon as the connection is being closed (a
        # Disconnect, an answerer error, a local disconnect), not only once
        # the transport is gone: nothing read after that is handled
        if self.closed or self.close_reason is not None:
            return
        self.session.read().addCallbacks(self._received, self._read_failed)

    def _received(self, message: object) -> None:
        handled = self._dispatch(message)
        handled.addErrback(self._handler_failed)
        handled.addCallback(lambda _: self._read_next())

    def _dispatch(self, message: object) -> Deferred[Any]:
        if isinstance(message, Disconnect):
            _log.debug("disconnect from {peer_id}", event=ev.DISCONNECT, peer_id=str(self.peer_id))
            self.disconnect(DisconnectReason.CONNECTION_CLOSED_BY_PEER)
            return succeed(None)
        cooldown = COOLDOWNS.get(type(message))
        if cooldown is None:
            return maybeDeferred(self._handle, message)
        now = self.clock.seconds()
        last = self._last_handled.get(type(message))
        if last is None or now - last >= cooldown:
            self._last_handled[type(message)] = now
            return maybeDeferred(self._handle, message)
        # too soon after the previous one: wait the whole cooldown first
        self._sleep = deferLater(self.clock, cooldown, lambda: None)

        def handle(_: object) -> Any:
            self._sleep = None
            if self.closed:
                return None
            self._last_handled[type(message)] = self.clock.seconds()
            return self._handle(message)

        return self._sleep.addCallback(handle)

    def _handle(self, message: object) -> Any:
        answerer, link = self.answerer, self.link
        if isinstance(message, Bootstrap):
            return answerer.bootstrap(link)
        if isinstance(message, Advertise):
            return answerer.advertise(link, message.points)
        if isinstance(message, SwapRequest):
            return answerer.swap_request(link, message.point, message.peer_id)
        if isinstance(message, SwapAck):
            return answerer.swap_ack(link, message.point, message.peer_id)
        return answerer.message(link, message)

    def _handler_failed(self, failure: Failure) -> None:
        if failure.check(CancelledError) or self.closed:
            return
        _log.failure(
            "answerer failed on a message from {peer_id}",
            failure,
            event=ev.UNEXPECTED_ERROR_ANSWERER,
            peer_id=str(self.peer_id),
        )
        self.disconnect(DisconnectReason.CONNECTION_CLOSED_BY_UNEXPECTED_ERROR)

    def _read_failed(self, failure: Failure) -> None:
        error = failure.value
        if isinstance(error, HOSTILE_ERRORS) and self._on_decoding_error is not None:
            self._on_decoding_error(self, error)
        elif not isinstance(error, P2PError):
            _log.failure("reading from {peer_id}", failure, peer_id=str(self.peer_id))
        self._closed_locally(str(error))

    # -- application messages ------------------------------------------------

    def push_app_message(self, message: object) -> Deferred[None]:
        """Queue a received application message (waits while the queue is full)."""
        queued = self.app_queue.push(message, 1)
        if self.on_app_message is not None:
            notify = self.on_app_message
            queued.addCallback(lambda _: notify(self))
        return queued

    def recv(self) -> Deferred[object]:
        """The next application message; fails once the connection is closed and drained."""
        return self.app_queue.pop()

    def recv_now(self) -> object | None:
        return self.app_queue.pop_now()

    def send(self, message: object) -> Deferred[None]:
        """Queue ``message``; fires once queued (waits while the queue is full)."""
        return self.session.write(message)

    def try_send(self, message: object) -> bool:
        """Queue ``message`` if there is room; False if dropped or the connection is closed."""
        try:
            return self.session.write_now(message)
        except ConnectionClosed:
            return False

    def write_encoded_now(self, body: bytes) -> bool:
        """Queue an already encoded message body (for broadcasts)."""
        try:
            return self.session.write_body_now(body)
        except ConnectionClosed:
            return False

    # -- closing -------------------------------------------------------------

    def disconnect(self, reason: DisconnectReason | str = "", wait: bool = False) -> Deferred[None]:
        """
        Close the connection (idempotent); with ``wait``, queued messages go
        out first.  ``reason`` is one of Octez's (:class:`DisconnectReason`)
        or a text of the caller's own.
        """
        text = reason_text(reason) or "disconnected"
        if not self.closed and self.close_reason is None:
            self.requested = True
            self.disconnect_reason = reason or text
        self._closed_locally(text)
        return self.session.close(text, wait=wait)

    def _closed_locally(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        if self._sleep is not None and not self._sleep.called:
            self._sleep.cancel()

    def connection_lost(self, reason: str) -> None:
        """The session ended: stop the worker, close the application queue."""
        self.closed = True
        self._closed_locally(reason)
        self.app_queue.close(ConnectionClosed(self.close_reason or reason))
