# -*- test-case-name: tests.test_encoding -*-
"""
The subset of Octez's ``data-encoding`` binary format the P2P layer and the
shell messages use (wire.md §0): big-endian integers (``int8`` to
``int64``), ``uint30`` length prefixes, booleans, fixed and dynamic byte
strings.

:class:`Reader` decodes from a bounded window of a buffer and raises
:class:`~txtezosp2p.wire.errors.DecodingError` with the data-encoding failure name
on any problem; the ``put_*`` functions encode and raise
:class:`~txtezosp2p.wire.errors.EncodingError` on values out of range.  Pure
functions, no I/O.
"""

from __future__ import annotations

import struct

from .errors import DecodingError, EncodingError

UINT30_MAX = (1 << 30) - 1

_I8 = struct.Struct(">b")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

# data-encoding failure names (Octez ``Binary_error_types.read_error``)
NOT_ENOUGH_DATA = "Not_enough_data"
EXTRA_BYTES = "Extra_bytes"
INVALID_INT = "Invalid_int"
UNEXPECTED_TAG = "Unexpected_tag"
LIST_TOO_LONG = "List_too_long"
SIZE_LIMIT_EXCEEDED = "Size_limit_exceeded"
INVALID_STRING = "Invalid_string"


class Reader:
    """
    Sequential reader over ``data[start:end]``.

    Every read checks that enough bytes remain before touching them; a
    length prefix is checked against both the remaining window and the
    caller's maximum before anything is sliced.  A memoryview is read in
    place: only the values returned are copied out of it.
    """

    __slots__ = ("_data", "_end", "pos")

    def __init__(
        self, data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None
    ):
        self._data = data
        self.pos = start
        self._end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    def _take(self, n: int) -> int:
        pos = self.pos
        if n > self._end - pos:
            raise DecodingError(NOT_ENOUGH_DATA, f"need {n} bytes, {self._end - pos} left")
        self.pos = pos + n
        return pos

    def uint8(self) -> int:
        pos = self._take(1)
        return self._data[pos]

    def int8(self) -> int:
        pos = self._take(1)
        return int(_I8.unpack_from(self._data, pos)[0])

    def bool(self) -> bool:
        # data-encoding reads any non-zero byte as true (wire.md §0)
        return self.uint8() != 0

    def uint16(self) -> int:
        pos = self._take(2)
        return int(_U16.unpack_from(self._data, pos)[0])

    def int16(self) -> int:
        pos = self._take(2)
        return int(_I16.unpack_from(self._data, pos)[0])

    def uint30(self) -> int:
        pos = self._take(4)
        value = int(_U32.unpack_from(self._data, pos)[0])
        if value > UINT30_MAX:
            raise DecodingError(INVALID_INT, f"{value} exceeds uint30")
        return value

    def int32(self) -> int:
        pos = self._take(4)
        return int(_I32.unpack_from(self._data, pos)[0])

    def int64(self) -> int:
        pos = self._take(8)
        return int(_I64.unpack_from(self._data, pos)[0])

    def fixed(self, n: int) -> bytes:
        pos = self._take(n)
        return bytes(self._data[pos : pos + n])

    def dynamic(self, max_length: int | None = None) -> bytes:
        """A ``uint30``-prefixed byte string of at most ``max_length`` bytes."""
        length = self.uint30()
        if max_length is not None and length > max_length:
            raise DecodingError(SIZE_LIMIT_EXCEEDED, f"{length} bytes > {max_length}")
        return self.fixed(length)

    def sub(self, length: int) -> Reader:
        """A reader over the next ``length`` bytes; this reader skips them."""
        pos = self._take(length)
        return Reader(self._data, pos, pos + length)

    def rest(self) -> bytes:
        return self.fixed(self.remaining)

    def expect_end(self) -> None:
        if self.pos != self._end:
            raise DecodingError(EXTRA_BYTES, f"{self._end - self.pos} trailing bytes")


def put_uint8(value: int) -> bytes:
    if not 0 <= value <= 0xFF:
        raise EncodingError(f"uint8 out of range: {value}")
    return bytes((value,))


def put_int8(value: int) -> bytes:
    if not -0x80 <= value <= 0x7F:
        raise EncodingError(f"int8 out of range: {value}")
    return _I8.pack(value)


def put_bool(value: bool) -> bytes:
    return b"\xff" if value else b"\x00"


def put_uint16(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise EncodingError(f"uint16 out of range: {value}")
    return _U16.pack(value)


def put_int16(value: int) -> bytes:
    if not -0x8000 <= value <= 0x7FFF:
        raise EncodingError(f"int16 out of range: {value}")
    return _I16.pack(value)


def put_uint30(value: int) -> bytes:
    if not 0 <= value <= UINT30_MAX:
        raise EncodingError(f"uint30 out of range: {value}")
    return _U32.pack(value)


def put_int32(value: int) -> bytes:
    if not -(1 << 31) <= value < (1 << 31):
        raise EncodingError(f"int32 out of range: {value}")
    return _I32.pack(value)


def put_int64(value: int) -> bytes:
    if not -(1 << 63) <= value < (1 << 63):
        raise EncodingError(f"int64 out of range: {value}")
    return _I64.pack(value)


def put_fixed(value: bytes, n: int) -> bytes:
    if len(value) != n:
        raise EncodingError(f"expected {n} bytes, got {len(value)}")
    return bytes(value)


def put_dynamic(value: bytes) -> bytes:
    return put_uint30(len(value)) + value
