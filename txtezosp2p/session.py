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

The protocol only glues parts that are tested on their own: the codecs of
:mod:`txtezosp2p.wire.encoding`, the :class:`~txtezosp2p.wire.crypto.ChunkCipher` and a
lifecycle state machine built with Automat.  Every length read from the
network is checked before anything is buffered for it, and a peer that
sends faster than the application reads is paused (back-pressure through
``transport.pauseProducing``).

Octez sources: ``src/lib_p2p/p2p_socket.ml``, ``p2p_connect_handler.ml``
(version selection), ``src/lib_base/p2p_connection.ml`` (``Info``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast
from typing import Protocol as TypingProtocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IPullProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _events as ev
from ._observer import Observer
from ._queue import BoundedQueue
from .identity import Identity
from .interfaces import IAuthenticationGate, IMessageCodec, ISession
from .limits import Limits
from .wire.binary import INVALID_INT, SIZE_LIMIT_EXCEEDED, UINT30_MAX
from .wire.crypto import (
    ChunkCipher,
    PowTarget,
    check_proof_of_work,
    generate_nonces,
    precompute,
    random_nonce,
)
from .wire.encoding import (
    Ack,
    ConnectionMessage,
    ConnectionMetadata,
    MetadataConfig,
    Nack,
    NackV0,
    NetworkVersion,
    _points,
    decode_ack,
    default_metadata_config,
    encode_ack,
)
from .wire.errors import (
    ConnectionClosed,
    DecodingError,
    EncodingError,
    HandshakeTimeout,
    InvalidAuth,
    InvalidMessageSize,
    Myself,
    NackMotive,
    NotEnoughProofOfWork,
    P2PError,
    Rejected,
    RejectedByNack,
    RejectedNoCommonProtocol,
    RejectedSocketConnection,
    RejectedWithoutNack,
)
from .wire.ids import ConnectionId, PeerId, Point, to_ipv6
from .wire.stats import Stat
from .wire.versions import GHOSTNET, MAINNET, SANDBOX, SHADOWNET, Versions

_log = ev.logger("p2p.socket")
_handler_log = ev.logger("p2p.connect_handler")
_EVERY_LINE = ev.SummarisingLogger(None)
_FAILED = (
    "{count:,} handshakes failed with {subjects:,} addresses in the last {period:g} s ({kind})"
)
_REFUSED = "refused {count:,} connections of {subjects:,} peers in the last {period:g} s ({kind})"
_NACKED = "sent {count:,} Nacks to {subjects:,} points in the last {period:g} s ({kind})"

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

#: Bytes we accept to hold while no step of the handshake wants them: one
#: connection message or chunk and the next one.  Beyond that the peer is paused.
HANDSHAKE_BUFFER_LIMIT = 2 * (2 + 0xFFFF)
#: Largest amount of plaintext sealed and handed to the transport at once.
WRITE_BATCH = 64 * 1024


# -- Connection info -----------------------------------------


@attrs.frozen
class ConnectionInfo:
    """
    What authentication taught us about a connection (Octez
    ``P2p_connection.Info``).  ``announced_version`` is what the remote
    announced, not what was negotiated.
    """

    peer_id: PeerId
    public_key: bytes = attrs.field(repr=lambda key: key.hex())
    announced_version: NetworkVersion
    incoming: bool
    id_point: ConnectionId
    remote_socket_port: int
    private_node: bool
    local_metadata: Any
    remote_metadata: Any

    def to_json(self, metadata_to_json: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        """Octez's ``P2p_connection.Info`` JSON (behaviour.md §13.1)."""
        meta = metadata_to_json or _metadata_json
        return {
            "incoming": self.incoming,
            "peer_id": str(self.peer_id),
            "id_point": self.id_point.to_json(),
            "remote_socket_port": self.remote_socket_port,
            "announced_version": self.announced_version.to_json(),
            "private": self.private_node,
            "local_metadata": meta(self.local_metadata),
            "remote_metadata": meta(self.remote_metadata),
        }


def _metadata_json(value: Any) -> Any:
    return value.to_json() if isinstance(value, ConnectionMetadata) else repr(value)


# -- Decisions --------------------------------------------------------------


@attrs.frozen
class Accept:
    """Send an Ack; ``version`` is the negotiated network version."""

    version: NetworkVersion


@attrs.frozen
class Reject:
    """
    Send a Nack with ``motive`` and ``alternatives`` (a Nack_v_0 if the peer
    announced p2p version 0), close, and fail locally with ``error``.
    """

    motive: NackMotive
    error: P2PError
    alternatives: tuple[Point, ...] = attrs.field(default=(), converter=_points)


@attrs.frozen
class Refuse:
    """Close without a Nack and fail locally with ``error``."""

    error: P2PError


Decision = Accept | Reject | Refuse


@implementer(IAuthenticationGate)
class VersionGate:
    """
    The gate of a bare session: accept any peer with which a network version
    can be negotiated, Nack the others (``Unknown_chain_name``,
    ``Deprecated_*_version``).
    """

    def __init__(self, versions: Versions) -> None:
        self.versions = versions

    def decide(self, session: ISession, info: object) -> Decision:
        assert isinstance(info, ConnectionInfo)
        chosen = self.versions.select(info.announced_version)
        if isinstance(chosen, NetworkVersion):
            return Accept(chosen)
        return Reject(chosen, RejectedNoCommonProtocol(info.announced_version, chosen))


# -- Configuration ----------------------------------------------------------


def _pow_target(value: float | PowTarget) -> PowTarget:
    return value if isinstance(value, PowTarget) else PowTarget.of_difficulty(value)


@attrs.frozen(kw_only=True)
class SessionConfig:
    """
    Everything a session needs besides its transport and clock.

    ``advertised_port`` is the listening port we announce (``None``: we do
    not listen).  ``gate`` decides after authentication; by default a
    :class:`VersionGate` over ``versions``.
    """

    identity: Identity
    versions: Versions
    codec: IMessageCodec
    pow_target: PowTarget = attrs.field(
        factory=lambda: PowTarget.of_difficulty(26.0), converter=_pow_target
    )
    metadata: MetadataConfig[Any] = attrs.field(factory=default_metadata_config)
    advertised_port: int | None = None
    limits: Limits = attrs.field(factory=Limits)
    gate: IAuthenticationGate | None = None
    backend: Any = None
    #: Rate limit of the per-connection lines of refused and failed
    #: handshakes, shared by a node's sessions; ``None``: every line.
    log_summary: ev.SummarisingLogger | None = None

    def effective_gate(self) -> IAuthenticationGate:
        return self.gate if self.gate is not None else VersionGate(self.versions)

    def summary(self) -> ev.SummarisingLogger:
        return self.log_summary if self.log_summary is not None else _EVERY_LINE


# -- The lifecycle state machine --------------------------------------------


class _Lifecycle(TypingProtocol):
    """Inputs of the session lifecycle (Automat typed machine)."""

    def start(self) -> None:
        "The transport is connected: send our connection message."

    def connection_message(self, message: ConnectionMessage, raw: bytes, key: bytes) -> None:
        "The remote connection message arrived and passed the proof-of-work check."

    def authenticated(self, info: ConnectionInfo) -> None:
        "The remote metadata arrived: ask the gate."

    def accepted(self, decision: Accept) -> None:
        "The gate accepts: send our Ack."

    def rejected(self, decision: Reject) -> None:
        "The gate rejects: send a Nack and close."

    def refused(self, decision: Refuse) -> None:
        "The gate refuses: close without a word."

    def acknowledged(self) -> None:
        "The remote Ack arrived."

    def failed(self, error: P2PError) -> None:
        "A protocol error, a timeout, a remote Nack."

    def lost(self, reason: Failure) -> None:
        "The transport is gone."

    def close(self, reason: str, wait: bool) -> None:
        "Close requested locally."


def _build_lifecycle() -> Callable[[Session], _Lifecycle]:
    builder = TypeMachineBuilder(_Lifecycle, Session)
    idle = builder.state("Idle")
    greeting = builder.state("Greeting")
    authenticating = builder.state("Authenticating")
    deciding = builder.state("Deciding")
    acking = builder.state("Acking")
    running = builder.state("Running")
    closing = builder.state("Closing")
    closed = builder.state("Closed")

    @idle.upon(_Lifecycle.start).to(greeting)
    def _start(machine: _Lifecycle, session: Session) -> None:
        session._send_connection_message()

    @greeting.upon(_Lifecycle.connection_message).to(authenticating)
    def _greeted(
        machine: _Lifecycle, session: Session, message: ConnectionMessage, raw: bytes, key: bytes
    ) -> None:
        session._start_encryption(message, raw, key)

    @authenticating.upon(_Lifecycle.authenticated).to(deciding)
    def _authenticated(machine: _Lifecycle, session: Session, info: ConnectionInfo) -> None:
        session._ask_gate(info)

    @deciding.upon(_Lifecycle.accepted).to(acking)
    def _accepted(machine: _Lifecycle, session: Session, decision: Accept) -> None:
        session._send_ack(decision)

    @deciding.upon(_Lifecycle.rejected).to(closed)
    def _rejected(machine: _Lifecycle, session: Session, decision: Reject) -> None:
        session._send_nack(decision)
        session._abort_handshake(decision.error)

    @deciding.upon(_Lifecycle.refused).to(closed)
    def _refused(machine: _Lifecycle, session: Session, decision: Refuse) -> None:
        session._log_refusal(decision)
        session._abort_handshake(decision.error)

    @acking.upon(_Lifecycle.acknowledged).to(running)
    def _acknowledged(machine: _Lifecycle, session: Session) -> None:
        session._start_running()

    handshake = (idle, greeting, authenticating, deciding, acking)
    for state in handshake:

        @state.upon(_Lifecycle.failed).to(closed)
        def _handshake_failed(machine: _Lifecycle, session: Session, error: P2PError) -> None:
            session._abort_handshake(error)

        @state.upon(_Lifecycle.lost).to(closed)
        def _handshake_lost(machine: _Lifecycle, session: Session, reason: Failure) -> None:
            session._handshake_lost(reason)

        @state.upon(_Lifecycle.close).to(closed)
        def _handshake_closed(
            machine: _Lifecycle, session: Session, reason: str, wait: bool
        ) -> None:
            session._abort_handshake(ConnectionClosed(reason or "closed locally"))

    @running.upon(_Lifecycle.failed).to(closed)
    def _running_failed(machine: _Lifecycle, session: Session, error: P2PError) -> None:
        session._fail_running(error)

    @running.upon(_Lifecycle.lost).to(closed)
    def _running_lost(machine: _Lifecycle, session: Session, reason: Failure) -> None:
        session._running_lost(reason)

    @running.upon(_Lifecycle.close).to(closing)
    def _running_close(machine: _Lifecycle, session: Session, reason: str, wait: bool) -> None:
        session._begin_close(reason, wait)

    @closing.upon(_Lifecycle.failed).to(closed)
    def _closing_failed(machine: _Lifecycle, session: Session, error: P2PError) -> None:
        session._fail_running(error)

    @closing.upon(_Lifecycle.lost).to(closed)
    def _closing_lost(machine: _Lifecycle, session: Session, reason: Failure) -> None:
        session._running_lost(reason)

    closing.upon(_Lifecycle.close).loop().returns(None)

    # Late events after the end are ignored: a gate answering after a
    # timeout, a second close, the transport reporting its loss.
    closed.upon(_Lifecycle.accepted).loop().returns(None)
    closed.upon(_Lifecycle.rejected).loop().returns(None)
    closed.upon(_Lifecycle.refused).loop().returns(None)
    closed.upon(_Lifecycle.failed).loop().returns(None)
    closed.upon(_Lifecycle.close).loop().returns(None)

    @closed.upon(_Lifecycle.lost).loop()
    def _closed_lost(machine: _Lifecycle, session: Session, reason: Failure) -> None:
        session._transport_gone(reason)

    return builder.build()


# -- The session ------------------------------------------------------------


@implementer(IPullProducer)
class _WriteDemand:
    """
    Pull producer registered on the transport once the session runs: the
    transport calls :meth:`resumeProducing` each time it has handed all it
    holds to the kernel, which is when ``write_sync`` callers are told and
    the next batch of queued messages is sealed.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def resumeProducing(self) -> None:
        self._session._transport_drained()

    def stopProducing(self) -> None:
        self._session._demand = False


#: A queued write: the body, whether it is a record (sent after its 4-byte
#: length) or raw plaintext, and the Deferred of a ``write_sync``.
_Outgoing = tuple[bytes, bool, Deferred[None] | None]


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

    _lifecycle_factory: Callable[[Session], _Lifecycle] | None = None

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
        self._deadline = deadline
        self._timer: IDelayedCall | None = None
        limits = config.limits
        self._chunk_size = limits.chunk_plaintext_size
        self._codec = config.codec
        self._max_record = config.codec.max_size
        self._cipher: ChunkCipher | None = None
        self._sent_message = b""
        # receive side
        self._inbuf: bytes | bytearray = b""
        self._inpos = 0
        self._plain: bytes | bytearray = b""
        self._plainpos = 0
        self._reader: Callable[[], None] = self._read_nothing
        self._reading = False
        self._read_again = False
        self._held: tuple[object, int] | None = None
        self._paused = False
        self._incoming = BoundedQueue[object](
            limits.incoming_message_queue_size, on_space=self._incoming_space
        )
        # send side
        self._outgoing = BoundedQueue[_Outgoing](limits.outgoing_message_queue_size)
        self._demand = False
        self._flushing = False
        self._in_flight: list[Deferred[None]] = []
        self._producer: _WriteDemand | None = None
        self._close_when_flushed = False
        self._batch = min(WRITE_BATCH, limits.write_queue_size or WRITE_BATCH)
        self._app_producer: Any = None
        self._app_streaming = False
        self._app_paused = False
        self._resuming_producer = False
        self._nack_sent = False
        self._local_metadata: Any = None
        # statistics (rates come from the IO scheduler)
        self.total_sent = 0
        self.total_recv = 0
        self._authenticated: Observer[ConnectionInfo] = Observer()
        self._established: Observer[Session] = Observer()
        self._closed: Observer[str] = Observer()
        if Session._lifecycle_factory is None:
            Session._lifecycle_factory = _build_lifecycle()
        self._machine = Session._lifecycle_factory(self)

    # -- observers -----------------------------------------------------------

    def when_authenticated(self) -> Deferred[ConnectionInfo]:
        return self._authenticated.when()

    def when_established(self) -> Deferred[Session]:
        return self._established.when()

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
        if self._inpos >= len(self._inbuf):
            self._inbuf = data  # nothing pending: work on the received bytes as they are
            self._inpos = 0
        else:
            pending = self._inbuf
            if self._inpos or not isinstance(pending, bytearray):
                pending = bytearray(memoryview(pending)[self._inpos :])
                self._inpos = 0
            pending += data
            self._inbuf = pending
        self._pump()

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

    def _send_connection_message(self) -> None:
        identity = self.config.identity
        message = ConnectionMessage(
            port=self.config.advertised_port,
            public_key=identity.public_key,
            proof_of_work_stamp=identity.proof_of_work_stamp,
            message_nonce=random_nonce(),
            version=self.config.versions.announced,
        )
        self._sent_message = message.frame()
        _log.debug(
            "sending authentication to {peer}",
            event=ev.SENDING_AUTHENTICATION,
            peer=self._peer_text(),
        )
        self._reader = self._read_connection_message
        self._send(self._sent_message)

    def _read_connection_message(self) -> None:
        buf, pos = self._inbuf, self._inpos
        if len(buf) - pos < 2:
            return
        (length,) = _U16.unpack_from(buf, pos)
        if len(buf) - pos < 2 + length:
            return
        raw = bytes(buf[pos : pos + 2 + length])
        self._inpos = pos + 2 + length
        try:
            message = ConnectionMessage.decode(raw[2:])
        except DecodingError as exc:
            self._machine.failed(exc)
            return
        peer_id = PeerId.of_public_key(message.public_key)
        if not check_proof_of_work(
            message.public_key,
            message.proof_of_work_stamp,
            self.config.pow_target,
            backend=self.config.backend,
        ):
            self._machine.failed(NotEnoughProofOfWork(peer_id))
            return
        try:
            key = precompute(self.config.identity.secret_key, message.public_key)
        except ValueError:
            self._machine.failed(InvalidAuth(f"unusable public key from {peer_id}"))
            return
        self._machine.connection_message(message, raw, key)

    def _start_encryption(self, message: ConnectionMessage, raw: bytes, key: bytes) -> None:
        self.remote_connection_message = message
        local, remote = generate_nonces(
            incoming=self.incoming, sent_msg=self._sent_message, recv_msg=raw
        )
        self._cipher = ChunkCipher(key, local, remote, backend=self.config.backend)
        metadata = self.config.metadata
        self._local_metadata = metadata.value()
        try:
            encoded = metadata.encode(self._local_metadata)
        except Exception as exc:
            self._machine.failed(EncodingError(f"metadata: {exc}"))
            return
        self._reader = self._read_metadata
        self._send(self._cipher.seal(encoded))

    def _open_one(self) -> bytes | None:
        """Open the next chunk if it is complete; None if it is not there yet."""
        assert self._cipher is not None
        plain, pos, frames, error = self._cipher.open(self._inbuf, self._inpos, 1)
        self._inpos = pos
        if error is not None:
            if self._reader == self._read_ack and not isinstance(error, DecodingError):
                # a chunk that does not decipher during the Ack step (wire.md §11)
                error = InvalidAuth(str(error))
            self._machine.failed(error)
            return None
        return plain if frames else None

    def _read_metadata(self) -> None:
        plain = self._open_one()
        if plain is None:
            return
        metadata = self.config.metadata
        try:
            remote_metadata = metadata.decode(plain)
        except DecodingError as exc:
            self._machine.failed(exc)
            return
        except Exception as exc:
            self._machine.failed(DecodingError("Invalid_metadata", str(exc)))
            return
        message = self.remote_connection_message
        assert message is not None
        address, socket_port = self._peer_address()
        listening_port = (
            message.port
            if self.incoming
            else (self.point.port if self.point is not None else socket_port)
        )
        if self.point is not None and not self.incoming:
            address = self.point.addr
        id_point = ConnectionId(address, listening_port)
        peer_id = PeerId.of_public_key(message.public_key)
        if peer_id == self.config.identity.peer_id:
            self._machine.failed(Myself(id_point))
            return
        info = ConnectionInfo(
            peer_id=peer_id,
            public_key=message.public_key,
            announced_version=message.version,
            incoming=self.incoming,
            id_point=id_point,
            remote_socket_port=socket_port,
            private_node=bool(metadata.private_node(remote_metadata)),
            local_metadata=self._local_metadata,
            remote_metadata=remote_metadata,
        )
        self._reader = self._read_nothing
        self._machine.authenticated(info)

    def _ask_gate(self, info: ConnectionInfo) -> None:
        self.info = info
        _handler_log.debug(
            "authenticated {peer_id} at {point}",
            event=ev.AUTHENTICATE_STATUS,
            type="auth",
            peer_id=str(info.peer_id),
            point=str(info.id_point),
            incoming=info.incoming,
        )
        self._authenticated.fire(info)
        decision = maybeDeferred(self.config.effective_gate().decide, self, info)
        decision.addCallbacks(self._gate_answered, self._gate_failed)

    def _gate_answered(self, decision: Decision) -> None:
        if isinstance(decision, Accept):
            self._machine.accepted(decision)
            self._pump()
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
        _handler_log.debug(
            "accepting {peer_id}",
            event=ev.AUTHENTICATE_STATUS,
            type="accept",
            peer_id=str(self.info.peer_id),
        )
        self._reader = self._read_ack
        self._send(self._cipher.seal(encode_ack(Ack())))

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
        nack: Nack | NackV0
        if self.info.announced_version.p2p_version > 0:
            nack = Nack(decision.motive, decision.alternatives[:100])
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
            nack = NackV0()
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
        plain = self._open_one()
        if plain is None:
            return
        try:
            answer = decode_ack(plain)
        except DecodingError as exc:
            self._machine.failed(exc)
            return
        if isinstance(answer, Ack):
            self._reader = self._read_messages
            self._machine.acknowledged()
            return
        motive, points = (
            (answer.motive, answer.points)
            if isinstance(answer, Nack)
            else (NackMotive.NO_MOTIVE, None)
        )
        assert self.info is not None
        _handler_log.info(
            "{peer_id} rejected us: {motive}",
            event=ev.CONNECTION_REJECTED_BY_PEERS,
            peer_id=str(self.info.peer_id),
            motive=motive.describe(),
            alternatives=None if points is None else [p.to_text() for p in points],
        )
        self._machine.failed(RejectedByNack(motive, points))

    def _start_running(self) -> None:
        self._cancel_timer()
        assert self.info is not None
        _handler_log.info(
            "connection established with {peer_id} at {point}",
            event=ev.AUTHENTICATE_STATUS,
            type="connected",
            peer_id=str(self.info.peer_id),
            point=str(self.info.id_point),
            incoming=self.incoming,
        )
        self._producer = _WriteDemand(self)
        self._tx.registerProducer(self._producer, False)
        self._established.fire(self)

    def _abort_handshake(self, error: P2PError) -> None:
        self._cancel_timer()
        self._reader = self._read_nothing
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
        self._reader = self._read_nothing
        error: P2PError
        if self.negotiated_version is not None:
            # we sent our Ack and the peer hung up (wire.md §11)
            error = RejectedSocketConnection("connection closed while waiting for the Ack")
        else:
            error = ConnectionClosed(reason.getErrorMessage())
        self.close_reason = str(error)
        self._end_queues(error, error)
        failure = Failure(error)
        self._authenticated.fail(failure)
        self._established.fail(failure)
        self._transport_gone(reason)

    # -- running: receive ----------------------------------------------------

    def _pump(self) -> None:
        """Feed buffered bytes to whichever step wants them (not re-entrant)."""
        if self._reading:
            self._read_again = True
            return
        self._reading = True
        try:
            while True:
                self._read_again = False
                reader = self._reader
                reader()
                if not self._read_again and reader == self._reader:
                    break
            self._compact_input()
        finally:
            self._reading = False

    def _compact_input(self) -> None:
        if self._inpos and self._inpos >= len(self._inbuf):
            self._inbuf = b""
            self._inpos = 0
        if self._reader == self._read_messages:
            # running: reading is paused only while a decoded message waits for room
            if self._paused and self._held is None:
                self._resume_reading()
        elif len(self._inbuf) - self._inpos > HANDSHAKE_BUFFER_LIMIT:
            self._pause_reading()
        elif self._paused and self._reader != self._read_nothing:
            self._resume_reading()

    def _read_nothing(self) -> None:
        """No step wants data now; it waits in the buffer (bounded, see _compact_input)."""

    def _read_messages(self) -> None:
        cipher = self._cipher
        assert cipher is not None
        if self._held is not None:
            return
        plain, pos, _, error = cipher.open(self._inbuf, self._inpos, -1)
        self._inpos = pos
        if plain:
            if self._plainpos >= len(self._plain):
                self._plain = plain  # decode straight from the decrypted bytes
            else:
                rest = self._plain
                if self._plainpos or not isinstance(rest, bytearray):
                    rest = bytearray(memoryview(rest)[self._plainpos :])
                rest += plain
                self._plain = rest
            self._plainpos = 0
        if not self._decode_records():
            return
        if error is not None:
            self._machine.failed(error)

    def _decode_records(self) -> bool:
        """Decode the complete records of the plaintext stream; False once the session failed."""
        buf = self._plain
        pos = self._plainpos
        limit = self._max_record
        queue = self._incoming
        try:
            # a reader may close the session from a push's callback: stop there
            while self._held is None and not queue.closed:
                available = len(buf) - pos
                if available < 4:
                    break
                (length,) = _U32.unpack_from(buf, pos)
                # bound before buffering: a record longer than allowed is refused now
                if length > UINT30_MAX:
                    raise DecodingError(INVALID_INT, f"record length {length}")
                if length + 4 > limit:
                    raise DecodingError(
                        SIZE_LIMIT_EXCEEDED, f"record of {length + 4} bytes > {limit}"
                    )
                if available < 4 + length:
                    break
                body = bytes(memoryview(buf)[pos + 4 : pos + 4 + length])
                pos += 4 + length
                try:
                    message = self._codec.decode(body)
                except DecodingError:
                    raise
                except Exception as exc:
                    raise DecodingError("Invalid_payload", str(exc)) from exc
                if not queue.push_now(message, length + 4):
                    self._held = (message, length + 4)
                    self._pause_reading()
        except DecodingError as exc:
            self._plainpos = pos
            self._machine.failed(exc)
            return False
        finally:
            if pos == len(buf):
                self._plain = b""
                pos = 0
            self._plainpos = pos
        return True

    def _incoming_space(self) -> None:
        """The application read a message: admit a held one, then read on."""
        held = self._held
        if held is not None:
            if not self._incoming.would_admit(held[1]):
                return
            self._held = None
            self._incoming.push_now(*held)
        if self._reader == self._read_messages and self._paused:
            self._resume_reading()
            self._pump()

    def _pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self._tx.pauseProducing()

    def _resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._tx.resumeProducing()

    # -- running: send -------------------------------------------------------

    def _send(self, data: bytes) -> None:
        self.total_sent += len(data)
        self._tx.write(data)

    def _body(self, message: object) -> bytes:
        """The encoded body of ``message``; its record adds a 4-byte length."""
        self._check_open()
        return self._check_size(bytes(self._codec.encode(message)))

    def _check_open(self) -> None:
        if self._outgoing.closed:
            raise ConnectionClosed(self.close_reason or "connection closed")

    def _check_size(self, body: bytes) -> bytes:
        if len(body) + 4 > self._max_record:
            raise InvalidMessageSize(f"message of {len(body) + 4} bytes exceeds {self._max_record}")
        return body

    def write(self, message: object) -> Deferred[None]:
        """Queue ``message`` (waiting while the queue is full); fires once queued."""
        try:
            body = self._body(message)
        except P2PError:
            return fail()
        queued = self._outgoing.push((body, True, None), len(body) + 4)
        self._flush()
        self._update_app_producer(refused=not queued.called)
        return queued

    def write_now(self, message: object) -> bool:
        """Queue ``message`` if there is room now; ``False`` means it was dropped."""
        return self._push_now(self._body(message))

    def encode(self, message: object) -> bytes:
        """The encoded body of ``message``, for :meth:`write_body_now` (Octez ``encode``)."""
        return self._body(message)

    def write_body_now(self, body: bytes) -> bool:
        """
        Queue an already encoded body if there is room (Octez
        ``write_encoded_now``): a broadcast encodes a message once and
        queues it on every connection.
        """
        self._check_open()
        return self._push_now(self._check_size(body))

    def _push_now(self, body: bytes) -> bool:
        if self._outgoing.push_now((body, True, None), len(body) + 4):
            self._flush()
            self._update_app_producer()
            return True
        self._update_app_producer(refused=True)
        return False

    def write_sync(self, message: object) -> Deferred[None]:
        """Queue ``message``; fires once it has been handed to the kernel."""
        try:
            body = self._body(message)
        except P2PError:
            return fail()
        return self._push_sync(body, True)

    def raw_write_sync(self, data: bytes) -> Deferred[None]:
        """
        Send raw plaintext ``data`` cut into chunks, without the record
        length (Octez ``raw_write_sync``, used to test peers with garbage).
        """
        if self._outgoing.closed:
            return fail(ConnectionClosed(self.close_reason or "connection closed"))
        return self._push_sync(bytes(data), False)

    def _push_sync(self, data: bytes, framed: bool) -> Deferred[None]:
        sent: Deferred[None] = Deferred()
        queued = self._outgoing.push((data, framed, sent), len(data) + 4 * framed)
        queued.addCallback(lambda _: sent)
        self._flush()
        return queued

    def _transport_drained(self) -> None:
        done, self._in_flight = self._in_flight, []
        self._demand = True
        for waiter in done:
            waiter.callback(None)
        self._flush()

    def _flush(self) -> None:
        """Seal queued messages and hand them to the transport while it wants more."""
        if not self._demand or self._flushing or self._cipher is None:
            return
        self._flushing = True
        try:
            bodies: list[bytes] = []
            flags = bytearray()
            total = 0
            while total < self._batch:
                try:
                    item = self._outgoing.pop_now()
                except P2PError:  # closed and drained
                    item = None
                if item is None:
                    break
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
                self.total_sent += len(frames)
                self._tx.write(frames)
            elif self._close_when_flushed:
                self._finish_close()
        finally:
            self._flushing = False
        self._update_app_producer()

    # -- application producers -----------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register an application producer that writes messages: a streaming
        one is paused while the outgoing queue is full and resumed when it
        has room; a pull one is asked for more each time there is room.
        """
        if self._app_producer is not None:
            raise RuntimeError("a producer is already registered")
        self._app_producer = producer
        self._app_streaming = bool(streaming)
        self._app_paused = False
        self._update_app_producer()

    def unregisterProducer(self) -> None:
        self._app_producer = None

    def _update_app_producer(self, refused: bool = False) -> None:
        """
        Pause the application producer when a write was refused or the
        outgoing queue reached its bound; resume it once the queue has
        drained to half its bound (hysteresis, so that it is not woken for
        every message).
        """
        producer = self._app_producer
        if producer is None:
            return
        queue = self._outgoing
        bound = queue.bound
        if refused or queue.closed or (bound is not None and queue.size >= bound):
            # pausing is always allowed, even while the producer is being resumed
            if self._app_streaming and not self._app_paused:
                self._app_paused = True
                producer.pauseProducing()
            return
        if bound is not None and queue.size > bound // 2:
            return
        if self._resuming_producer or (self._app_streaming and not self._app_paused):
            return
        self._app_paused = False
        self._resuming_producer = True
        try:
            producer.resumeProducing()
        finally:
            self._resuming_producer = False

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

    # -- closing -------------------------------------------------------------

    def close(self, reason: str = "", wait: bool = False) -> Deferred[None]:
        """
        Close the connection.  With ``wait``, messages already queued are
        sent first; otherwise they are dropped.  Fires once the transport
        is gone.
        """
        done = self._closed.when()
        self._machine.close(reason, wait)
        return done.addCallback(lambda _: None)

    def _begin_close(self, reason: str, wait: bool) -> None:
        self.close_reason = reason or "closed locally"
        _handler_log.info(
            "closing connection with {peer_id}: {reason}",
            event=ev.DISCONNECTED,
            peer_id=str(self.peer_id),
            reason=self.close_reason,
        )
        closed = ConnectionClosed(self.close_reason)
        self._incoming.close(closed)
        if wait:
            self._outgoing.close(closed)
            self._close_when_flushed = True
            if not self._outgoing and not self._in_flight:
                self._finish_close()
            else:
                self._flush()
        else:
            self._drop_outgoing(closed)
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
        self._reader = self._read_nothing
        self._end_queues(error, ConnectionClosed(str(error)))
        self._abort_transport()

    def _running_lost(self, reason: Failure) -> None:
        if self.close_reason is None:
            self.close_reason = "connection closed by peer"
        _log.debug(
            "connection with {peer_id} closed",
            event=ev.CONNECTION_CLOSED,
            peer_id=str(self.peer_id),
        )
        closed = ConnectionClosed(self.close_reason)
        self._end_queues(closed, closed)
        self._transport_gone(reason)

    def _end_queues(self, read_error: P2PError, write_error: P2PError) -> None:
        self._reader = self._read_nothing
        self._held = None
        # nothing more will be read: release the receive buffers
        self._inbuf = b""
        self._inpos = 0
        self._plain = b""
        self._plainpos = 0
        self._incoming.close(read_error)
        self._drop_outgoing(write_error)

    def _drop_outgoing(self, error: P2PError) -> None:
        self._outgoing.close(error)
        for _, _, sent in self._outgoing.drain():
            if sent is not None:
                sent.errback(Failure(error))
        in_flight, self._in_flight = self._in_flight, []
        for waiter in in_flight:
            waiter.errback(Failure(error))

    def _finish_close(self) -> None:
        transport = self._tx
        if transport is None:
            return
        if self._producer is not None:
            self._producer = None
            self._demand = False
            transport.unregisterProducer()
        transport.loseConnection()

    def _abort_transport(self) -> None:
        transport = self._tx
        if transport is None:
            return
        if self._producer is not None:
            self._producer = None
            self._demand = False
            transport.unregisterProducer()
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()

    def _transport_gone(self, reason: Failure) -> None:
        self._cancel_timer()
        in_flight, self._in_flight = self._in_flight, []
        for waiter in in_flight:
            waiter.errback(Failure(ConnectionClosed(self.close_reason or "connection closed")))
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
        scheduler: Any = None,
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


def connect_session(
    config: SessionConfig,
    clock: IReactorTime,
    endpoint: Any,
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
    from twisted.internet.endpoints import connectProtocol

    from .wire.errors import ConnectionFailed

    if timeout is None:
        timeout = config.limits.connection_timeout
    deadline = clock.seconds() + timeout
    if session is None:
        session = Session(config, clock, incoming=False, point=point, deadline=deadline)
    else:
        session._deadline = deadline
    result: Deferred[Session] = Deferred(lambda _: _abort_attempt())
    connecting = connectProtocol(
        endpoint, session if scheduler is None else scheduler.wrap(session)
    )
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

    connecting.addCallbacks(_connected, _tcp_failed)
    connecting.addBoth(_finished)
    return result


__all__ = [
    "GHOSTNET",
    "MAINNET",
    "SANDBOX",
    "SHADOWNET",
    "Accept",
    "ConnectionInfo",
    "Decision",
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
