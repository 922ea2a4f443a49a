# -*- test-case-name: tests.test_interfaces -*-
"""
Every contract between the components of txtezosp2p, in one module.

Implementations declare them with ``@implementer`` and the test suite
checks each one with ``zope.interface.verify.verifyObject``.
"""

from __future__ import annotations

from typing import Any

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

    def encode(message: object) -> bytes:
        """The body of ``message``; raises ``EncodingError``."""

    def decode(body: bytes) -> object:
        """The message in ``body`` (untrusted); raises ``DecodingError`` only."""


class IAuthenticationGate(Interface):
    """
    Decides what to do with a connection once it is authenticated: Ack it,
    Nack it, or drop it without a word (Octez's connect handler checks).
    """

    def decide(session: ISession, info: object) -> object:
        """
        Return an ``Accept``, ``Reject`` or ``Refuse`` decision, or a
        ``Deferred`` firing with one.
        """


class ISession(Interface):
    """
    An encrypted, authenticated connection to a peer (Octez ``P2p_socket``).

    Methods returning ``Deferred`` fail with ``ConnectionClosed`` once the
    connection is closed.
    """

    incoming = Attribute("True when the remote end dialled us.")
    info = Attribute("The ``ConnectionInfo`` once authenticated, else None.")
    negotiated_version = Attribute("The ``NetworkVersion`` both ends use, once accepted.")

    def when_authenticated() -> object:
        """A ``Deferred`` firing with the ``ConnectionInfo`` after the metadata exchange."""

    def when_established() -> object:
        """A ``Deferred`` firing with this session once both Acks are exchanged."""

    def when_closed() -> object:
        """A ``Deferred`` firing with the close reason when the connection ends."""

    def write(message: object) -> object:
        """Queue ``message``; the ``Deferred`` fires once it is queued."""

    def write_now(message: object) -> bool:
        """Queue ``message`` if there is room; False means it was dropped."""

    def write_sync(message: object) -> object:
        """Queue ``message``; the ``Deferred`` fires once it is handed to the kernel."""

    def read() -> object:
        """A ``Deferred`` firing with the next received message."""

    def read_now() -> object:
        """The next received message, or None if none is waiting."""

    def stat() -> object:
        """A ``Stat`` snapshot of this connection's traffic."""

    def close(reason: str = "", wait: bool = False) -> object:
        """
        Close the connection; with ``wait``, queued messages are sent first.
        Returns a ``Deferred`` that fires once the connection is down.
        """


class IIdentityStore(Interface):
    """Loads and saves a node's identity (``identity.json``)."""

    def load() -> object:
        """The stored ``Identity``; raises ``IdentityError``."""

    def save(identity: object) -> None:
        """Store ``identity`` atomically."""

    def exists() -> bool:
        """Whether an identity is stored."""


class IIOScheduler(Interface):
    """Regulates the bandwidth of every connection of a node (Octez ``P2p_io_scheduler``)."""

    max_download_speed = Attribute("Global read cap in bytes per second, or None.")
    max_upload_speed = Attribute("Global write cap in bytes per second, or None.")

    def wrap(protocol: Any) -> Any:
        """A protocol for the real transport that regulates ``protocol``'s traffic."""

    def set_max_speed(download: Any = None, upload: Any = None) -> None:
        """Change the caps (bytes per second, None for none) from the next period."""

    def stat() -> object:
        """Totals and current rates of all connections together."""
