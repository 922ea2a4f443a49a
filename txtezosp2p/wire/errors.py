# -*- test-case-name: tests.test_errors -*-
"""
Typed errors of the P2P layer.

Every error carries the identifier Octez registers for it (``octez_id``) so
that logs and the admin API can name failures the way Octez operators know
them (``node.p2p_socket.decipher_error``...).  The class names are the Octez
constructor names in Python spelling: ``Not_enough_proof_of_work`` becomes
:class:`NotEnoughProofOfWork`.

Sources: Octez ``src/lib_p2p_services/p2p_errors.ml``,
``src/lib_base/data_encoding_wrapper.ml`` and ``src/lib_base/p2p_rejection.ml``
(wire.md §6.2, §11).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .encoding import NetworkVersion
    from .ids import ConnectionId, PeerId, Point


class NackMotive(enum.IntEnum):
    """
    Why a peer refused a connection (``P2p_rejection.t``), a signed 16-bit
    code on the wire (wire.md §6.2).

    Codes Octez does not know are kept: ``NackMotive(42)`` is a pseudo member
    named ``UNKNOWN_MOTIVE_42`` whose value is 42, so it re-encodes unchanged.
    """

    NO_MOTIVE = 0
    TOO_MANY_CONNECTIONS = 1
    UNKNOWN_CHAIN_NAME = 2
    DEPRECATED_P2P_VERSION = 3
    DEPRECATED_DISTRIBUTED_DB_VERSION = 4
    ALREADY_CONNECTED = 5

    @classmethod
    def _missing_(cls, value: object) -> NackMotive | None:
        if isinstance(value, int) and -0x8000 <= value <= 0x7FFF:
            pseudo = int.__new__(cls, value)
            pseudo._name_ = f"UNKNOWN_MOTIVE_{value}"
            pseudo._value_ = value
            return pseudo
        return None

    @property
    def known(self) -> bool:
        """Whether Octez gives this code a name."""
        return 0 <= self.value <= 5

    def describe(self) -> str:
        """The human-readable text Octez prints for this motive."""
        return _MOTIVE_TEXT.get(self.value, f"Rejected for unknown reason, code ({self.value})")


_MOTIVE_TEXT = {
    0: "No motive",
    1: "Too many connections",
    2: "Unknown chain name",
    3: "Running a deprecated p2p layer version",
    4: "Running a deprecated distributed db version",
    5: "Already connected/connecting",
}


class DisconnectReason(enum.Enum):
    """
    Why a running connection ended: Octez's ``P2p_disconnection_reason.t``
    (``src/lib_p2p/p2p_disconnection_reason.ml``), whose constructors are
    the values here; :meth:`describe` gives Octez's text.  A reason of our
    own (a user's, a roll) is a plain string: Octez's ``User of string``.
    """

    CONNECTION_LOST = "Connection_lost"
    CONNECTION_CLOSED_BY_PEER = "Connection_closed_by_peer"
    CONNECTION_CLOSED_BY_UNEXPECTED_ERROR = "Connection_closed_by_unexpected_error"
    TCP_CONNECTION_REFUSED = "TCP_connection_refused"
    TCP_CONNECTION_UNREACHABLE = "TCP_connection_unreachable"
    TCP_CONNECTION_CANCELED = "TCP_connection_canceled"
    AUTHENTICATION_REJECTED_NO_COMMON_PROTOCOL = "Authentication_rejected_no_common_protocol"
    AUTHENTICATION_REJECTED = "Authentication_rejected"
    AUTHENTICATION_REJECTED_BY_PEER = "Authentication_rejected_by_peer"
    INCOMING_CONNECTION_TOO_MANY = "Incoming_connection_too_many"
    INCOMING_CONNECTION_BANNED = "Incoming_connection_banned"
    UNEXPECTED_PEER_ID = "Unexpected_peer_id"
    IP_MANUALLY_BANNED = "IP_manually_banned"
    PEER_ID_MANUALLY_BANNED = "Peer_id_manually_banned"
    POOL_DESTROYED = "Pool_destroyed"
    PEER_SWAPPED = "Peer_swapped"
    EXPLICIT_RPC = "Explicit_RPC"
    MAINTENANCE_TOO_MANY = "Maintenance_too_many"
    UNKNOWN_REASON = "Unknown_reason"

    def describe(self) -> str:
        """The text Octez prints for this reason."""
        return _REASON_TEXT[self]


_REASON_TEXT = {
    DisconnectReason.CONNECTION_LOST: "connection lost",
    DisconnectReason.CONNECTION_CLOSED_BY_PEER: "connection closed by peer",
    DisconnectReason.CONNECTION_CLOSED_BY_UNEXPECTED_ERROR: "connection closed by unexpected error",
    DisconnectReason.TCP_CONNECTION_REFUSED: "TCP connection refused",
    DisconnectReason.TCP_CONNECTION_UNREACHABLE: "TCP connection, peer unreachable",
    DisconnectReason.TCP_CONNECTION_CANCELED: "TCP connection cancelled",
    DisconnectReason.AUTHENTICATION_REJECTED_NO_COMMON_PROTOCOL: (
        "authentication rejected by us: no common protocol"
    ),
    DisconnectReason.AUTHENTICATION_REJECTED: "authentication rejected by us",
    DisconnectReason.AUTHENTICATION_REJECTED_BY_PEER: "authentication rejected by peer",
    DisconnectReason.INCOMING_CONNECTION_TOO_MANY: (
        "incoming connection not accepted: too many incoming connections"
    ),
    DisconnectReason.INCOMING_CONNECTION_BANNED: (
        "incoming connection not accepted: point is banned"
    ),
    DisconnectReason.UNEXPECTED_PEER_ID: "unexpected peer id",
    DisconnectReason.IP_MANUALLY_BANNED: "IP manually banned",
    DisconnectReason.PEER_ID_MANUALLY_BANNED: "peer_id manually banned",
    DisconnectReason.POOL_DESTROYED: "pool destroyed",
    DisconnectReason.PEER_SWAPPED: "peer has been swapped",
    DisconnectReason.EXPLICIT_RPC: "disconnected using a RPC",
    DisconnectReason.MAINTENANCE_TOO_MANY: "maintenance detected too many connections",
    DisconnectReason.UNKNOWN_REASON: "connection canceled without reason",
}


def reason_text(reason: DisconnectReason | str) -> str:
    """How a disconnection reason reads in logs and answers (a string is the user's own)."""
    return reason.describe() if isinstance(reason, DisconnectReason) else reason


class P2PError(Exception):
    """
    Base class of every error this library raises on purpose.

    ``octez_id`` is the identifier of the matching Octez error.
    """

    octez_id: ClassVar[str] = "node.p2p.error"

    def __str__(self) -> str:
        text = super().__str__()
        return text or self.octez_id


# -- Encoding and decoding --------------------------------------------------


class DecodingError(P2PError):
    """
    Bytes that do not decode: malformed data, trailing bytes, a size over a
    limit, an unknown tag.  ``reason`` names the data-encoding failure
    (``Not_enough_data``, ``Extra_bytes``, ``Unexpected_tag``...).
    """

    octez_id = "decoding_error"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        if self.detail:
            return f"decoding error: {self.reason}: {self.detail}"
        return f"decoding error: {self.reason}"


class EncodingError(P2PError):
    """A value that cannot be encoded (out of range, too long...)."""

    octez_id = "encoding_error"


class UnexpectedSizeOfDecodedBuffer(EncodingError):
    """A connection message whose body would not fit a 16-bit frame."""

    octez_id = "socket.unexpected_size_of_decoded_value"


# -- Session layer (P2p_socket) ---------------------------------------------


class ConnectionClosed(P2PError):
    """The connection is closed (end of file, reset, or closed locally)."""

    octez_id = "node.p2p_io_scheduler.connection_closed"


class ClosedBeforeHandshake(ConnectionClosed):
    """
    The peer we dialled closed the connection without sending its connection
    message: what Octez does with an address it bans or greylists, or when
    it has too many incoming connections (behaviour.md §3.3).  Nothing on the
    wire says which.
    """

    def __str__(self) -> str:
        return (
            "the peer closed the connection before the handshake: it refuses our address "
            "(banned or greylisted there, for instance after an attempt with too little proof "
            "of work) or has too many incoming connections"
        )


class ClosedDuringAuthentication(ConnectionClosed):
    """
    The peer we dialled closed the connection after reading our connection
    message and before sending its metadata: what Octez does when our proof
    of work misses its ``expected-proof-of-work`` (behaviour.md §3.4 c), the
    one failure of that step a correct implementation can cause.  Nothing on
    the wire says so; ``weak`` tells whether our identity misses Octez's
    default difficulty (26), which makes it the likely reason.
    """

    def __init__(self, peer_id: PeerId, weak: bool) -> None:
        super().__init__(peer_id, weak)
        self.peer_id = peer_id
        self.weak = weak

    def __str__(self) -> str:
        if self.weak:
            return (
                f"peer {self.peer_id} closed the connection after reading our connection "
                f"message: our identity's proof of work is below 26, what Octez nodes expect by "
                f"default, so it most likely refused it (insufficient proof of work; mine a "
                f"stronger identity with: tezos-p2p identity generate --force --target 26)"
            )
        return (
            f"peer {self.peer_id} closed the connection after reading our connection message "
            f"(it may expect more proof of work than our identity has)"
        )


class ConnectionFailed(P2PError):
    """An outgoing TCP connection could not be established."""

    octez_id = "node.p2p_pool.connection_failed"


class HandshakeTimeout(P2PError):
    """
    The handshake did not finish in time (``authentication-timeout`` for an
    incoming connection, ``connection-timeout`` for an outgoing one).
    """

    octez_id = "canceled"


class ReceiveStalled(P2PError):
    """
    A running connection held part of a message (a chunk or a record) for
    longer than ``receive_progress_timeout`` without completing one.  Octez
    has no such limit; like its timeouts, this one reports ``canceled``.
    """

    octez_id = "canceled"


class InvalidMessageSize(P2PError):
    """A chunk or message larger than the protocol allows."""

    octez_id = "node.p2p_socket.invalid_message_size"


class InvalidIncomingCiphertextSize(P2PError):
    """An encrypted chunk shorter than its 16-byte authenticator."""

    octez_id = "node.p2p_socket.invalid_incoming_ciphertext_size"


class InvalidChunksSize(P2PError):
    """A ``binary_chunks_size`` outside [19, 65535] (wire.md §4)."""

    octez_id = "node.p2p_socket.invalid_chunks_size"

    def __init__(self, value: int, minimum: int, maximum: int) -> None:
        super().__init__(value, minimum, maximum)
        self.value = value
        self.minimum = minimum
        self.maximum = maximum

    def __str__(self) -> str:
        return (
            f"invalid binary chunks size {self.value} "
            f"(expected between {self.minimum} and {self.maximum})"
        )


class DecipherError(P2PError):
    """An encrypted chunk whose authenticator does not verify."""

    octez_id = "node.p2p_socket.decipher_error"


class InvalidAuth(P2PError):
    """The peer's Ack could not be deciphered (wire.md §11)."""

    octez_id = "node.p2p_socket.invalid_auth"


class NotEnoughProofOfWork(P2PError):
    """The remote identity's proof-of-work stamp misses our target."""

    octez_id = "node.p2p_socket.not_enough_proof_of_work"

    def __init__(self, peer_id: PeerId) -> None:
        super().__init__(peer_id)
        self.peer_id = peer_id

    def __str__(self) -> str:
        return f"remote peer {self.peer_id} cannot be authenticated: not enough proof of work"


class Myself(P2PError):
    """The remote end is this very node."""

    octez_id = "node.p2p_socket.myself"

    def __init__(self, connection_id: ConnectionId) -> None:
        super().__init__(connection_id)
        self.connection_id = connection_id

    def __str__(self) -> str:
        return f"remote peer {self.connection_id} is us"


class RejectedSocketConnection(P2PError):
    """The peer closed the connection while we waited for its Ack."""

    octez_id = "node.p2p_socket.rejected_socket_connection"


class RejectedByNack(P2PError):
    """
    The peer answered our Ack with a Nack.  ``alternative_points`` is
    ``None`` for a ``Nack_v_0`` and the (possibly empty) list of points the
    peer suggested otherwise.
    """

    octez_id = "node.p2p_socket.rejected_by_nack"

    def __init__(self, motive: NackMotive, alternative_points: tuple[Point, ...] | None) -> None:
        super().__init__(motive, alternative_points)
        self.motive = motive
        self.alternative_points = alternative_points

    def __str__(self) -> str:
        count = 0 if self.alternative_points is None else len(self.alternative_points)
        return f"rejected by nack: {self.motive.describe()} ({count} alternative points)"


class Rejected(P2PError):
    """We refused the peer with a Nack (too many connections, already connected)."""

    octez_id = "node.p2p_pool.rejected"

    def __init__(self, peer_id: PeerId, motive: NackMotive) -> None:
        super().__init__(peer_id, motive)
        self.peer_id = peer_id
        self.motive = motive

    def __str__(self) -> str:
        return f"connection to peer {self.peer_id} rejected: {self.motive.describe()}"


class RejectedNoCommonProtocol(P2PError):
    """We refused the peer because no network version is common to us both."""

    octez_id = "node.p2p_pool.rejected_no_common_protocol"

    def __init__(self, announced: NetworkVersion, motive: NackMotive) -> None:
        super().__init__(announced, motive)
        self.announced = announced
        self.motive = motive

    def __str__(self) -> str:
        return f"no common protocol with peer announcing {self.announced}: {self.motive.describe()}"


class RejectedWithoutNack(P2PError):
    """
    We closed the connection after authentication without sending a Nack
    (banned peer, private mode, identity mismatch).  ``cause`` says why.
    """

    octez_id = "node.p2p_socket.rejected_without_nack"

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause

    def __str__(self) -> str:
        return f"connection refused without nack: {self.cause}"


# -- Topology (pool, connect handler, P2P layer) ----------------------------


class PointBanned(P2PError):
    """We refuse to dial an address that is banned or greylisted."""

    octez_id = "node.p2p_pool.point_banned"

    def __init__(self, point: object) -> None:
        super().__init__(point)
        self.point = point

    def __str__(self) -> str:
        return f"the point {self.point} is banned"


class PeerBanned(P2PError):
    """The authenticated peer is banned or greylisted (closed without a Nack)."""

    octez_id = "node.p2p_pool.peer_banned"

    def __init__(self, peer_id: PeerId) -> None:
        super().__init__(peer_id)
        self.peer_id = peer_id

    def __str__(self) -> str:
        return f"the peer {self.peer_id} is banned"


class TooManyConnections(P2PError):
    """Too many connections to dial another one."""

    octez_id = "node.p2p_pool.too_many_connections"


class PrivateMode(P2PError):
    """In private mode, only trusted points and peers may connect."""

    octez_id = "node.p2p_pool.private_mode"


class PendingConnection(P2PError):
    """A connection to this point is already being set up."""

    octez_id = "node.p2p_pool.pending_connection"

    def __init__(self, point: object) -> None:
        super().__init__(point)
        self.point = point

    def __str__(self) -> str:
        return f"a connection to {self.point} is already pending"


class Connected(P2PError):
    """We are already connected to this point."""

    octez_id = "node.p2p_pool.connected"

    def __init__(self, point: object) -> None:
        super().__init__(point)
        self.point = point

    def __str__(self) -> str:
        return f"already connected to {self.point}"


class IdentityCheckFailure(P2PError):
    """The dialled point's expected peer id is not the one found there."""

    octez_id = "node.p2p_connect_handler.identity_check_failure"

    def __init__(self, point: object, expected: PeerId, found: PeerId) -> None:
        super().__init__(point, expected, found)
        self.point = point
        self.expected = expected
        self.found = found

    def __str__(self) -> str:
        return f"expected {self.expected} at {self.point}, found {self.found}"


class MaintenanceDisabled(P2PError):
    """``maintain`` was called on a layer without maintenance."""

    octez_id = "node.p2p.maintenance_disabled"


class P2PLayerDisabled(P2PError):
    """The faked network does nothing."""

    octez_id = "node.p2p.p2p_layer_disabled"


# -- Identity ---------------------------------------------------------------


class IdentityError(P2PError):
    """Base class of identity file errors."""

    octez_id = "main.identity.error"


class IdentityFileError(IdentityError):
    """An identity file that cannot be read or parsed."""

    octez_id = "main.identity.invalid_file"


class IdentityMismatch(IdentityError):
    """The ``peer_id`` of an identity file is not the hash of its public key."""

    octez_id = "main.identity.identity_mismatch"


class IdentityKeysMismatch(IdentityError):
    """The secret key of an identity file does not give its public key."""

    octez_id = "main.identity.identity_keys_mismatch"


class InsufficientProofOfWork(IdentityError):
    """The stamp of an identity misses the requested difficulty."""

    octez_id = "main.identity.insufficient_proof_of_work"

    def __init__(self, expected: float) -> None:
        super().__init__(expected)
        self.expected = expected

    def __str__(self) -> str:
        return f"the proof of work of this identity does not reach difficulty {self.expected}"


class ExistentIdentityFile(IdentityError):
    """Refusal to overwrite an identity file."""

    octez_id = "main.identity.existent_file"


class IdentityGenerationCancelled(IdentityError):
    """Identity mining was cancelled before a stamp was found."""

    octez_id = "main.identity.generation_cancelled"


# -- Greylisting rule -------------------------------------------------------

#: Errors after which Octez greylists the remote IP when they happen during
#: authentication (wire.md §11, behaviour.md §3.4).
GREYLISTING_ERRORS: tuple[type[P2PError], ...] = (
    NotEnoughProofOfWork,
    InvalidAuth,
    DecipherError,
    InvalidMessageSize,
    InvalidChunksSize,
    EncodingError,
    DecodingError,
)


def greylists_ip(error: BaseException) -> bool:
    """Whether an authentication failure with ``error`` greylists the remote IP."""
    return isinstance(error, GREYLISTING_ERRORS)
