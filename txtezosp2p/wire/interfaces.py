# -*- test-case-name: tests.test_interfaces -*-
"""
The contracts of the wire layer: a connection's chunk cipher and the codec
of the records a running session carries.  Re-exported by
:mod:`txtezosp2p.interfaces`, where every other contract lives; they are
here so that the wire layer imports nothing from outside it.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IChunkCipher(Interface):
    """Seals and opens the encrypted chunks of one connection (wire.md §4)."""

    local_nonce = Attribute("The 24-byte nonce the next sealed chunk uses.")
    remote_nonce = Attribute("The 24-byte nonce the next opened chunk must use.")

    def seal(data: bytes, chunk_size: int) -> bytes:
        """Cut ``data`` into chunks and return their wire frames."""

    def open(buffer: bytes, offset: int, max_frames: int) -> tuple[object, ...]:
        """
        Open complete frames of ``buffer[offset:]``; return
        ``(plaintext, new_offset, frames, error_or_None)``.
        """


class IMessageCodec(Interface):
    """
    Encodes the application-level records carried by a running session.

    A record on the stream is a ``uint30`` body length and the body; the
    codec only sees bodies.
    """

    max_size = Attribute("Largest accepted record, its 4-byte length included.")
    header_size = Attribute(
        "Bytes at the start of a body before its payload: 2 for the P2P "
        "envelope's tag, 0 when the whole body is the payload."
    )

    def encode(message: object) -> bytes:
        """The body of ``message``; raises ``EncodingError``."""

    def decode(body: bytes | memoryview) -> object:
        """
        The message in ``body`` (untrusted); raises ``DecodingError`` only.

        A running session passes a read-only ``memoryview`` of its receive
        buffer (no copy was made to call the codec): the message must copy
        the bytes it keeps, e.g. with ``bytes(body[2:])``.
        """

    def decode_split(header: bytes, payload: bytes) -> object:
        """
        The message of the body ``header + payload``, where ``header`` is
        ``header_size`` bytes long: a body that arrived over several reads
        is assembled this way, its payload in its own ``bytes`` object, so
        that a message may keep it without another copy.  Same result and
        errors as :meth:`decode` of the whole body.
        """


__all__ = ["IChunkCipher", "IMessageCodec"]
