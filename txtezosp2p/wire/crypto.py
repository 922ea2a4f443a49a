# -*- test-case-name: tests.test_crypto -*-
"""
Session cryptography, named after Octez's ``Crypto_box`` module.

* :func:`make_pow_target`, :func:`check_proof_of_work` (wire.md §1.4);
* :func:`precompute` (channel key, §3.1) and :func:`generate_nonces` (§3.2);
* :func:`increment_nonce` (§3.3);
* :class:`ChunkCipher`, the per-connection object that seals outgoing and
  opens incoming chunks (§4), backed by the compiled module in ``cext/`` or
  its pure twin.

Octez sources: ``src/lib_crypto/crypto_box.ml``, ``src/lib_hacl/hacl.ml``,
``src/lib_p2p/p2p_socket.ml`` (module ``Crypto``).
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import TYPE_CHECKING

import attrs
from nacl.bindings import crypto_box_beforenm, crypto_scalarmult_base
from nacl.exceptions import CryptoError
from zope.interface import implementer

from .. import _backend
from .errors import (
    DecipherError,
    InvalidChunksSize,
    InvalidIncomingCiphertextSize,
    P2PError,
)
from .interfaces import IChunkCipher

if TYPE_CHECKING:
    from .._backend import CboxModule

NONCE_SIZE = 24
KEY_SIZE = 32
TAG_LENGTH = 16
HEADER_LENGTH = 2
#: Header plus authenticator added to every chunk.
EXTRA_BYTES = HEADER_LENGTH + TAG_LENGTH
#: Largest on-wire chunk the sender produces (``Crypto.bufsize``).
MAX_FRAME = 0xFFFF
#: Largest plaintext Octez puts in one chunk (wire.md §4).
MAX_CHUNK_PLAINTEXT = MAX_FRAME - EXTRA_BYTES

INIT_TO_RESP = b"Init -> Resp"
RESP_TO_INIT = b"Resp -> Init"


# -- Proof of work (§1.4) ---------------------------------------------------


@attrs.frozen
class PowTarget:
    """
    A proof-of-work target: the largest acceptable value of
    ``Blake2b-256(pk || stamp)`` read as a little-endian integer.
    ``difficulty`` is the float it was made from.
    """

    difficulty: float
    value: int
    le_bytes: bytes

    @classmethod
    def of_difficulty(cls, difficulty: float) -> PowTarget:
        value = make_pow_target(difficulty)
        # Tiny fractional difficulties give a target of 2**256 or more (Octez
        # compares unbounded integers); every hash is below 2**256, so
        # clamping keeps the outcome of every comparison.
        clamped = min(value, (1 << 256) - 1)
        return cls(float(difficulty), value, clamped.to_bytes(32, "little"))


def make_pow_target(difficulty: float) -> int:
    """
    Octez ``Crypto_box.make_pow_target``: ``2**(256 - f) - 1`` for a whole
    ``f``; with a fractional part the top 54 bits become
    ``floor(2**(54 - frac))`` and every lower bit is set.
    """
    if not isinstance(difficulty, int | float) or not 0.0 <= difficulty <= 256.0:
        raise ValueError(f"proof-of-work difficulty must be within [0, 256]: {difficulty!r}")
    frac, whole = math.modf(float(difficulty))
    shift = int(whole)
    mantissa = (1 << 54) - 1 if frac == 0.0 else int(2.0 ** (54.0 - frac))
    if shift < 202:
        return (mantissa << (202 - shift)) | ((1 << (202 - shift)) - 1)
    return mantissa >> (shift - 202)


def _target(target: float | PowTarget) -> PowTarget:
    return target if isinstance(target, PowTarget) else PowTarget.of_difficulty(target)


def check_proof_of_work(
    public_key: bytes, stamp: bytes, target: float | PowTarget, *, backend: CboxModule | None = None
) -> bool:
    """
    Whether ``stamp`` proves enough work for ``public_key``.  ``target`` is a
    difficulty (a float in [0, 256], e.g. 26.0) or a prepared :class:`PowTarget`.
    """
    return (backend or _backend.cbox).check_pow(public_key, stamp, _target(target).le_bytes)


def pow_level(public_key: bytes, stamp: bytes) -> int:
    """The whole difficulty a stamp reaches (the number of clear top bits)."""
    digest = hashlib.blake2b(public_key + stamp, digest_size=32).digest()
    return 256 - int.from_bytes(digest, "little").bit_length()


# -- Keys and nonces (§3) ---------------------------------------------------


def public_key_of_secret(secret_key: bytes) -> bytes:
    """X25519 scalar multiplication by the base point (``Box.neuterize``)."""
    return bytes(crypto_scalarmult_base(secret_key))


def precompute(secret_key: bytes, public_key: bytes) -> bytes:
    """
    The channel key ``crypto_box_beforenm(remote_pk, local_sk)``.  A
    low-order public key is refused with :class:`ValueError`.
    """
    try:
        return bytes(crypto_box_beforenm(public_key, secret_key))
    except CryptoError as exc:
        raise ValueError(f"unusable public key: {exc}") from exc


def generate_nonces(*, incoming: bool, sent_msg: bytes, recv_msg: bytes) -> tuple[bytes, bytes]:
    """
    ``(local, remote)`` nonces from the framed connection messages (with
    their 2-byte length).  The initiator's message always comes first in
    the hash; the dialler sends with the ``Resp -> Init`` nonce (wire.md §3.2).
    """
    init_msg, resp_msg = (recv_msg, sent_msg) if incoming else (sent_msg, recv_msg)
    base = hashlib.blake2b(digest_size=32)
    base.update(init_msg)
    base.update(resp_msg)
    i2r = base.copy()
    i2r.update(INIT_TO_RESP)
    r2i = base
    r2i.update(RESP_TO_INIT)
    init_to_resp = i2r.digest()[:NONCE_SIZE]
    resp_to_init = r2i.digest()[:NONCE_SIZE]
    if incoming:
        return init_to_resp, resp_to_init
    return resp_to_init, init_to_resp


def increment_nonce(nonce: bytes) -> bytes:
    """The next nonce: add one to the 24-byte big-endian counter, modulo 2**192."""
    value = (int.from_bytes(nonce, "big") + 1) & ((1 << 192) - 1)
    return value.to_bytes(NONCE_SIZE, "big")


def random_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def check_binary_chunks_size(size: int) -> int:
    """
    Validate an on-wire chunk size (header and MAC included) and return the
    plaintext per chunk it allows: ``size - 18`` within ``[1, 65517]``.
    """
    value = size - EXTRA_BYTES
    if not 0 < value <= MAX_CHUNK_PLAINTEXT:
        raise InvalidChunksSize(size, EXTRA_BYTES + 1, MAX_FRAME)
    return value


# -- The chunk cipher (§4) --------------------------------------------------


@implementer(IChunkCipher)
class ChunkCipher:
    """
    Seals and opens the encrypted chunks of one connection.

    It holds the channel key and the two nonce counters; each sealed or
    opened chunk advances the matching counter by one.  ``backend`` selects
    the compiled module or its pure twin (both give the same bytes).
    """

    __slots__ = ("_backend", "_key", "_local", "_remote")

    def __init__(
        self, key: bytes, local_nonce: bytes, remote_nonce: bytes, backend: CboxModule | None = None
    ) -> None:
        if (
            len(key) != KEY_SIZE
            or len(local_nonce) != NONCE_SIZE
            or len(remote_nonce) != NONCE_SIZE
        ):
            raise ValueError("bad key or nonce size")
        self._backend = backend or _backend.cbox
        self._key = bytes(key)
        self._local = bytearray(local_nonce)
        self._remote = bytearray(remote_nonce)

    @property
    def local_nonce(self) -> bytes:
        """The nonce the next sealed chunk will use."""
        return bytes(self._local)

    @property
    def remote_nonce(self) -> bytes:
        """The nonce the next opened chunk must have been sealed with."""
        return bytes(self._remote)

    def seal(
        self, data: bytes | bytearray | memoryview, chunk_size: int = MAX_CHUNK_PLAINTEXT
    ) -> bytes:
        """
        Cut ``data`` into chunks of ``chunk_size`` plaintext bytes and return
        their wire frames; empty ``data`` gives one empty chunk.
        """
        return self._backend.seal_chunks(self._key, self._local, data, chunk_size)

    def seal_batch(
        self, items: list[bytes], framed: bytes, chunk_size: int = MAX_CHUNK_PLAINTEXT
    ) -> bytes:
        """
        Seal several items into one buffer of frames, each starting a new
        chunk; item ``i`` is preceded by its 4-byte length when ``framed[i]``
        is non-zero (a message record).  One copy of each byte, no
        intermediate buffers.
        """
        return self._backend.seal_batch(self._key, self._local, items, framed, chunk_size)

    def open(
        self, buffer: bytes | bytearray | memoryview, offset: int = 0, max_frames: int = -1
    ) -> tuple[bytes, int, int, P2PError | None]:
        """
        Open the complete frames in ``buffer[offset:]`` (at most
        ``max_frames``; all if negative).  Returns ``(plaintext, new_offset,
        frames, error)``: the plaintext of the frames that opened, the offset
        after them and their count; an incomplete frame is left for later.
        ``error`` is ``None``, or a :class:`DecipherError` or
        :class:`InvalidIncomingCiphertextSize` for the frame that follows the
        opened ones; the stream is unusable after an error.
        """
        plain, new_offset, frames, status = self._backend.open_chunks(
            self._key, self._remote, buffer, offset, max_frames
        )
        error: P2PError | None = None
        if status == self._backend.OPEN_DECIPHER_ERROR:
            error = DecipherError()
        elif status:
            error = InvalidIncomingCiphertextSize()
        return plain, new_offset, frames, error
