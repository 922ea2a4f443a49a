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
from typing import TYPE_CHECKING

from .. import _backend
from .binary import INVALID_INT, SIZE_LIMIT_EXCEEDED, UINT30_MAX
from .errors import DecodingError

if TYPE_CHECKING:
    from .._backend import RecordBufferLike
    from .interfaces import IMessageCodec


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


class SplitRecord:
    """
    A record body that arrived over several pieces: its first
    ``header_size`` bytes and its payload, each its own ``bytes`` object
    (for :meth:`~txtezosp2p.interfaces.IMessageCodec.decode_split`).
    """

    __slots__ = ("header", "payload")

    def __init__(self, header: bytes, payload: bytes) -> None:
        self.header = header
        self.payload = payload

    def __len__(self) -> int:
        return len(self.header) + len(self.payload)

    def __bytes__(self) -> bytes:
        return self.header + self.payload


Record = memoryview | SplitRecord


def decode_record(codec: IMessageCodec, record: Record) -> object:
    """The message of a record that :meth:`RecordFramer.feed` returned."""
    if isinstance(record, SplitRecord):
        return codec.decode_split(record.header, record.payload)
    return codec.decode(record)


class RecordFramer:
    """
    Records of a plaintext stream: a ``uint30`` big-endian length, then that
    many bytes of body (wire.md §8.1).

    :meth:`feed` takes the next piece of the stream and returns the bodies
    of the records it completes, in order:

    * a record wholly inside the fed piece is a read-only memoryview of it
      (no copy);
    * a record spread over several pieces is assembled as its bytes arrive
      into a :class:`SplitRecord`: its first ``header_size`` bytes, then its
      payload written straight into the ``bytes`` object the message may
      keep (one copy in all, and memory that grows only with what arrived).

    A length over ``max_size - 4`` (``max_size`` bounds the whole record, as
    :attr:`~txtezosp2p.interfaces.IMessageCodec.max_size` does) or over
    ``uint30`` stops the framer: :meth:`feed` returns the records complete
    before it and sets :attr:`error`; later calls raise it.
    """

    __slots__ = ("_head", "_header", "_length", "_payload", "error", "header_size", "max_size")

    def __init__(self, max_size: int, header_size: int = 0) -> None:
        self.max_size = max_size
        self.header_size = header_size
        #: The first bytes of a length prefix split between two pieces.
        self._head = b""
        #: The record being assembled: its length, header so far, payload.
        self._length = -1
        self._header = bytearray()
        self._payload: RecordBufferLike | None = None
        self.error: DecodingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for the record in progress (its prefix included)."""
        if self._length < 0:
            return len(self._head)
        filled = 0 if self._payload is None else self._payload.filled
        return RECORD_HEADER + len(self._header) + filled

    @property
    def missing(self) -> int:
        """Bytes still to come for the record in progress (0 if none or length unknown)."""
        if self._length < 0:
            return 0
        return self._length + RECORD_HEADER - self.buffered

    def _check(self, length: int) -> int:
        if length > UINT30_MAX:
            raise DecodingError(INVALID_INT, f"record length {length}")
        if length + RECORD_HEADER > self.max_size:
            raise DecodingError(
                SIZE_LIMIT_EXCEEDED,
                f"record of {length + RECORD_HEADER} bytes > {self.max_size}",
            )
        return length

    def feed(self, data: Buffer) -> list[Record]:
        """The bodies of the records that ``data`` completes, in order."""
        if self.error is not None:
            raise self.error
        records: list[Record] = []
        view = memoryview(data).toreadonly()
        size = len(view)
        pos = 0
        try:
            if self._length >= 0:
                pos = self._extend(view, 0, records)
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
            self._length = -1
            self._header = bytearray()
            self._payload = None
            self._head = b""
        return records

    def _start(self, length: int, view: memoryview, pos: int, records: list[Record]) -> int:
        """A record of ``length`` bytes starts at ``pos``: the offset after what it took."""
        end = pos + length
        if end <= len(view):
            records.append(view[pos:end])
            return end
        self._length = length
        return self._extend(view, pos, records)

    def _extend(self, view: memoryview, pos: int, records: list[Record]) -> int:
        """Add what ``view[pos:]`` holds of the record in progress; the offset after it."""
        header = self._header
        wanted = min(self.header_size, self._length)
        if len(header) < wanted:
            take = min(wanted - len(header), len(view) - pos)
            header += view[pos : pos + take]
            pos += take
            if len(header) < wanted:
                return pos
        payload = self._payload
        if payload is None:
            # the compiled bytes builder (or its twin)
            payload = self._payload = _backend.cbox.RecordBuffer(self._length - wanted)
        pos += payload.write(view[pos:])
        if not payload.missing:
            records.append(SplitRecord(bytes(header), payload.take()))
            self._length = -1
            self._header = bytearray()
            self._payload = None
        return pos
