# -*- test-case-name: tests.test_session_wire -*-
"""
The steps of the handshake as plain functions: bytes and settings in,
values or a typed :class:`~txtezosp2p.wire.errors.P2PError` out (Octez
``P2p_socket.authenticate``, ``Ack``, ``nack``; wire.md §2-§7).

The session (:mod:`txtezosp2p.session`) calls them from the states of its
lifecycle and owns the I/O, the timers and the logs; nothing here touches
a transport or a clock.

* :func:`greeting` — our connection message (§2);
* :func:`authenticate` — check the remote connection message (its proof of
  work, its key) and derive the chunk cipher (§3);
* :func:`connection_info` — decode the remote metadata and describe the
  peer, refusing ourselves (``Myself``, §5);
* :func:`nack` — the Nack a rejection sends (a ``Nack_v_0`` to
  p2p-version-0 peers, §6);
* :func:`acknowledgement` — read the remote Ack, or fail with its Nack (§6).
"""

from __future__ import annotations

from typing import Any

from ._backend import CboxModule
from .gate import ConnectionInfo, Reject
from .identity import Identity
from .wire.crypto import (
    NONCE_SIZE,
    ChunkCipher,
    PowTarget,
    check_proof_of_work,
    generate_nonces,
    precompute,
)
from .wire.encoding import (
    PUBLIC_KEY_SIZE,
    Ack,
    ConnectionMessage,
    MetadataConfig,
    Nack,
    NackV0,
    NetworkVersion,
    decode_ack,
)
from .wire.errors import (
    DecodingError,
    InvalidAuth,
    Myself,
    NackMotive,
    NotEnoughProofOfWork,
    RejectedByNack,
)
from .wire.ids import ConnectionId, PeerId, Point

#: Most alternative points a Nack carries (Octez ``P2p_socket.nack``).
NACK_POINTS = 100
#: Where the nonce sits in a framed connection message: after the frame
#: length, the port, the public key and the proof-of-work stamp (wire.md §2).
GREETING_NONCE_OFFSET = 2 + 2 + PUBLIC_KEY_SIZE + NONCE_SIZE


def greeting(identity: Identity, port: int | None, version: NetworkVersion, nonce: bytes) -> bytes:
    """Our framed connection message (its 2-byte length included)."""
    return ConnectionMessage(
        port=port,
        public_key=identity.public_key,
        proof_of_work_stamp=identity.proof_of_work_stamp,
        message_nonce=nonce,
        version=version,
    ).frame()


def authenticate(
    raw: bytes,
    sent: bytes,
    *,
    incoming: bool,
    secret_key: bytes,
    pow_target: PowTarget,
    backend: CboxModule | None = None,
) -> tuple[ConnectionMessage, ChunkCipher]:
    """
    The remote connection message in ``raw`` (framed) checked, and the chunk
    cipher of the connection.  Raises ``DecodingError``,
    ``NotEnoughProofOfWork`` or ``InvalidAuth`` (a low-order public key).
    """
    message = ConnectionMessage.decode(raw[2:])
    if not check_proof_of_work(
        message.public_key, message.proof_of_work_stamp, pow_target, backend=backend
    ):
        raise NotEnoughProofOfWork(PeerId.of_public_key(message.public_key))
    try:
        key = precompute(secret_key, message.public_key)
    except ValueError:
        peer_id = PeerId.of_public_key(message.public_key)
        raise InvalidAuth(f"unusable public key from {peer_id}") from None
    local, remote = generate_nonces(incoming=incoming, sent_msg=sent, recv_msg=raw)
    return message, ChunkCipher(key, local, remote, backend=backend)


def connection_info(
    message: ConnectionMessage,
    plain: bytes,
    *,
    metadata: MetadataConfig[Any],
    local_metadata: Any,
    incoming: bool,
    point: Point | None,
    peer_address: tuple[Any, int],
    own_peer_id: PeerId,
) -> ConnectionInfo:
    """
    What authentication taught us, from the remote connection message and
    its metadata chunk.  ``point`` is the point we dialled (outgoing) and
    ``peer_address`` the socket's remote address and port.  Raises
    ``DecodingError`` (``Invalid_metadata`` for a codec's own error) or
    ``Myself``.
    """
    try:
        remote_metadata = metadata.decode(plain)
    except DecodingError:
        raise
    except Exception as exc:
        raise DecodingError("Invalid_metadata", str(exc)) from exc
    address, socket_port = peer_address
    if incoming:
        listening_port = message.port
    else:
        listening_port = point.port if point is not None else socket_port
        if point is not None:
            address = point.addr
    id_point = ConnectionId(address, listening_port)
    peer_id = PeerId.of_public_key(message.public_key)
    if peer_id == own_peer_id:
        raise Myself(id_point)
    return ConnectionInfo(
        peer_id=peer_id,
        public_key=message.public_key,
        announced_version=message.version,
        incoming=incoming,
        id_point=id_point,
        remote_socket_port=socket_port,
        private_node=bool(metadata.private_node(remote_metadata)),
        local_metadata=local_metadata,
        remote_metadata=remote_metadata,
    )


def nack(info: ConnectionInfo, decision: Reject) -> Nack | NackV0:
    """The answer of a rejection: a Nack with its motive and points, or a Nack_v_0."""
    if info.announced_version.p2p_version > 0:
        return Nack(decision.motive, decision.alternatives[:NACK_POINTS])
    return NackV0()


def acknowledgement(plain: bytes) -> Ack:
    """The remote Ack in ``plain``; a Nack raises ``RejectedByNack``."""
    answer = decode_ack(plain)
    if isinstance(answer, Ack):
        return answer
    if isinstance(answer, Nack):
        raise RejectedByNack(answer.motive, answer.points)
    raise RejectedByNack(NackMotive.NO_MOTIVE, None)
