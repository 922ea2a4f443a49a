# -*- test-case-name: tests.test_crypto -*-
"""
Pure-Python twin of the Cython module ``cext/_cbox.pyx``: same functions,
same results, built on ``nacl.bindings`` and ``hashlib``.  It is used when
the extension is missing or ``TXTEZOSP2P_NO_EXTENSIONS=1``.
"""

from __future__ import annotations

import hashlib

from nacl.bindings import crypto_box_easy_afternm, crypto_box_open_easy_afternm
from nacl.exceptions import CryptoError

MACBYTES = 16
HEADER = 2
NONCEBYTES = 24
MAX_CHUNK_PLAINTEXT = 65517

OPEN_OK = 0
OPEN_DECIPHER_ERROR = 1
OPEN_INVALID_SIZE = 2

BACKEND = "python"

Buffer = bytes | bytearray | memoryview


def bind(seal_addr: int, open_addr: int, blake2b_addr: int) -> None:
    """Nothing to bind: this twin calls PyNaCl's own bindings."""


def is_bound() -> bool:
    return True


def _check_nonce(nonce: bytearray) -> None:
    if not isinstance(nonce, bytearray) or len(nonce) != NONCEBYTES:
        raise ValueError("a nonce is 24 bytes")


def _check_key(key: Buffer) -> None:
    if len(key) != 32:
        raise ValueError("a channel key is 32 bytes")


def increment_nonce(nonce: bytearray) -> None:
    """Add one to a 24-byte big-endian nonce, in place (wrapping at 2**192)."""
    _check_nonce(nonce)
    value = (int.from_bytes(nonce, "big") + 1) & ((1 << 192) - 1)
    nonce[:] = value.to_bytes(NONCEBYTES, "big")


def seal_chunks(key: Buffer, nonce: bytearray, data: Buffer, chunk_size: int) -> bytes:
    _check_key(key)
    _check_nonce(nonce)
    if not 1 <= chunk_size <= MAX_CHUNK_PLAINTEXT:
        raise ValueError("chunk size out of range")
    key = bytes(key)
    view = memoryview(data)
    out = []
    pos = 0
    while True:
        piece = bytes(view[pos : pos + chunk_size])
        sealed = crypto_box_easy_afternm(piece, bytes(nonce), key)
        out.append(len(sealed).to_bytes(2, "big"))
        out.append(sealed)
        increment_nonce(nonce)
        pos += len(piece)
        if pos >= len(view):
            return b"".join(out)


def seal_batch(
    key: Buffer, nonce: bytearray, items: list[bytes], framed: Buffer, chunk_size: int
) -> bytes:
    """Seal several records (4-byte length + item when framed) into one buffer."""
    _check_key(key)
    _check_nonce(nonce)
    if not 1 <= chunk_size <= MAX_CHUNK_PLAINTEXT:
        raise ValueError("chunk size out of range")
    if len(framed) != len(items):
        raise ValueError("one framing flag per item")
    out = []
    for item, flag in zip(items, bytes(framed), strict=True):
        if not isinstance(item, bytes):
            raise TypeError("items must be bytes")
        if flag:
            if len(item) > 0x3FFFFFFF:
                raise ValueError("record too long for a uint30 length")
            plaintext = len(item).to_bytes(4, "big") + item
        else:
            plaintext = item
        out.append(seal_chunks(key, nonce, plaintext, chunk_size))
    return b"".join(out)


def open_chunks(
    key: Buffer, nonce: bytearray, buf: Buffer, offset: int, max_frames: int
) -> tuple[bytes, int, int, int]:
    _check_key(key)
    _check_nonce(nonce)
    view = memoryview(buf)
    size = len(view)
    if not 0 <= offset <= size:
        raise ValueError("offset out of range")
    key = bytes(key)
    pos = offset
    frames = 0
    plain: list[bytes] = []
    while (max_frames < 0 or frames < max_frames) and size - pos >= HEADER:
        body = (view[pos] << 8) | view[pos + 1]
        if body < MACBYTES:
            return b"".join(plain), pos, frames, OPEN_INVALID_SIZE
        if size - pos - HEADER < body:
            break
        current = bytes(nonce)
        increment_nonce(nonce)
        try:
            plain.append(
                crypto_box_open_easy_afternm(
                    bytes(view[pos + HEADER : pos + HEADER + body]), current, key
                )
            )
        except CryptoError:
            return b"".join(plain), pos, frames, OPEN_DECIPHER_ERROR
        pos += HEADER + body
        frames += 1
    return b"".join(plain), pos, frames, OPEN_OK


def _pow_hash(public_key: Buffer, stamp: Buffer) -> int:
    digest = hashlib.blake2b(bytes(public_key) + bytes(stamp), digest_size=32).digest()
    return int.from_bytes(digest, "little")


def check_pow(public_key: Buffer, stamp: Buffer, target_le: Buffer) -> bool:
    if len(public_key) != 32 or len(stamp) != NONCEBYTES or len(target_le) != 32:
        raise ValueError("bad proof-of-work argument sizes")
    return _pow_hash(public_key, stamp) <= int.from_bytes(target_le, "little")


def mine(public_key: Buffer, stamp: bytearray, target_le: Buffer, attempts: int) -> int:
    if len(public_key) != 32 or len(target_le) != 32:
        raise ValueError("bad proof-of-work argument sizes")
    _check_nonce(stamp)
    target = int.from_bytes(target_le, "little")
    prefix = bytes(public_key)
    counter = int.from_bytes(stamp, "big")
    mask = (1 << 192) - 1
    blake2b = hashlib.blake2b
    tried = 0
    while tried < attempts:
        candidate = counter.to_bytes(NONCEBYTES, "big")
        tried += 1
        digest = blake2b(prefix + candidate, digest_size=32).digest()
        if int.from_bytes(digest, "little") <= target:
            stamp[:] = candidate
            return tried
        counter = (counter + 1) & mask
    stamp[:] = counter.to_bytes(NONCEBYTES, "big")
    return attempts


class RecordBuffer:
    """The twin of the compiled bytes builder (one more copy, at :meth:`take`)."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("negative size")
        self._buffer: bytearray | None = bytearray()
        self._size = size

    @property
    def filled(self) -> int:
        return 0 if self._buffer is None else len(self._buffer)

    @property
    def missing(self) -> int:
        return self._size - self.filled

    def write(self, data: Buffer) -> int:
        if self._buffer is None:
            raise ValueError("the buffer was taken")
        taken = memoryview(data)[: self._size - len(self._buffer)]
        self._buffer += taken
        return len(taken)

    def take(self) -> bytes:
        if self._buffer is None:
            raise ValueError("the buffer was taken")
        if len(self._buffer) != self._size:
            raise ValueError("the buffer is not complete")
        result = bytes(self._buffer)
        self._buffer = None
        return result
