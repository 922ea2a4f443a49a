# -*- test-case-name: tests.test_framing -*-
"""
Sans-I/O framing of a session's byte streams: no sockets, no reactor, no
cryptography, only bytes in and frames out.

* :class:`InputBuffer` holds received bytes that no step has consumed yet
  (connection message, encrypted chunks), without copying them when
  nothing is pending.
* :func:`take_connection_message` cuts the ``uint16``-prefixed connection
  message off the front of an :class:`InputBuffer` (wire.md §2).
* :class:`RecordFramer` turns the decrypted plaintext stream of a running
  session into its ``uint30``-prefixed records (wire.md §8): ``feed(bytes)
  -> records``.  The session and ``tezos-p2p session decode`` share it.

Every length read from the stream is checked before anything is buffered
for it: a record longer than the codec's ``max_size`` (or than ``uint30``)
is refused as soon as its 4-byte prefix is known, and a record being
assembled grows only with the bytes that actually arrived.
"""

from __future__ import annotations

import struct

from .binary import INVALID_INT, SIZE_LIMIT_EXCEEDED, UINT30_MAX
from .errors import DecodingError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

Buffer = bytes | bytearray | memoryview

#: Size of a record's length prefix.
RECORD_HEADER = 4


class InputBuffer:
    """
    Received bytes not consumed yet: ``data[pos:]``.

    Appending to an empty buffer keeps the appended object as is (no copy),
    so a step that consumes whole reads never copies them; bytes left over
    are moved once into a ``bytearray`` that later reads extend.
    """

    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data: bytes | bytearray = b""
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos

    def append(self, data: bytes) -> None:
        if self.pos >= len(self.data):
            self.data = data  # nothing pending: work on the bytes as received
            self.pos = 0
            return
        pending = self.data
        if self.pos or not isinstance(pending, bytearray):
            pending = bytearray(memoryview(pending)[self.pos :])
            self.pos = 0
        pending += data
        self.data = pending

    def consumed(self, pos: int) -> None:
        """Everything before offset ``pos`` of :attr:`data` has been used."""
        if pos >= len(self.data):
            self.data = b""
            self.pos = 0
        else:
            self.pos = pos

    def clear(self) -> None:
        self.data = b""
        self.pos = 0


def take_connection_message(buffer: InputBuffer) -> bytes | None:
    """
    The framed connection message (its 2-byte length included) at the front
    of ``buffer``, consumed from it; ``None`` while it is incomplete.  The
    length is a ``uint16``, so at most 65 537 bytes are ever waited for.
    """
    data, pos = buffer.data, buffer.pos
    if len(data) - pos < 2:
        return None
    (length,) = _U16.unpack_from(data, pos)
    end = pos + 2 + length
    if len(data) < end:
        return None
    raw = bytes(data[pos:end])
    buffer.consumed(end)
    return raw


class RecordFramer:
    """
    Records of a plaintext stream: a ``uint30`` big-endian length, then that
    many bytes of body (wire.md §8.1).

    :meth:`feed` takes the next piece of the stream and returns the bodies
    of the records it completes, as read-only memoryviews:

    * a record wholly inside the fed piece is a view of it (no copy);
    * a record spread over several pieces is assembled, as its bytes
      arrive, in a buffer that never exceeds its declared length (one copy).

    A length over ``max_size - 4`` (``max_size`` bounds the whole record, as
    :attr:`~txtezosp2p.interfaces.IMessageCodec.max_size` does) or over
    ``uint30`` stops the framer: :meth:`feed` returns the records complete
    before it and sets :attr:`error`; later calls raise it.
    """

    __slots__ = ("_body", "_head", "_length", "error", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        #: The first bytes of a length prefix split between two pieces.
        self._head = b""
        #: The body being assembled, and the length it will have.
        self._body: bytearray | None = None
        self._length = 0
        self.error: DecodingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for the record in progress (its prefix included)."""
        if self._body is not None:
            return RECORD_HEADER + len(self._body)
        return len(self._head)

    @property
    def missing(self) -> int:
        """Bytes still to come for the record in progress (0 if none or length unknown)."""
        return 0 if self._body is None else self._length - len(self._body)

    def _check(self, length: int) -> int:
        if length > UINT30_MAX:
            raise DecodingError(INVALID_INT, f"record length {length}")
        if length + RECORD_HEADER > self.max_size:
            raise DecodingError(
                SIZE_LIMIT_EXCEEDED,
                f"record of {length + RECORD_HEADER} bytes > {self.max_size}",
            )
        return length

    def feed(self, data: Buffer) -> list[memoryview]:
        """The bodies of the records that ``data`` completes, in order."""
        if self.error is not None:
            raise self.error
        records: list[memoryview] = []
        view = memoryview(data).toreadonly()
        size = len(view)
        pos = 0
        try:
            if self._body is not None:
                pos = self._extend(view, records)
            elif self._head:
                pos = RECORD_HEADER - len(self._head)
                head = self._head + bytes(view[:pos])
                if len(head) < RECORD_HEADER:
                    self._head = head
                    return records
                self._head = b""
                pos = self._start(self._check(_U32.unpack(head)[0]), view, pos, records)
            while size - pos >= RECORD_HEADER:
                (length,) = _U32.unpack_from(view, pos)
                pos = self._start(self._check(length), view, pos + RECORD_HEADER, records)
            if pos < size:
                self._head = bytes(view[pos:])
        except DecodingError as error:
            self.error = error
            self._body = None
            self._head = b""
        return records

    def _start(self, length: int, view: memoryview, pos: int, records: list[memoryview]) -> int:
        """A record of ``length`` bytes starts at ``pos``: the offset after what it took."""
        end = pos + length
        if end <= len(view):
            records.append(view[pos:end])
            return end
        self._length = length
        self._body = bytearray(view[pos:])
        return len(view)

    def _extend(self, view: memoryview, records: list[memoryview]) -> int:
        body = self._body
        assert body is not None
        take = min(self._length - len(body), len(view))
        body += view[:take]
        if len(body) == self._length:
            records.append(memoryview(body).toreadonly())
            self._body = None
        return take
