# -*- test-case-name: tests.test_session -*-
"""
:class:`SessionConfig`: everything a :class:`~txtezosp2p.session.Session`
needs besides its transport and clock, with our connection message built
once (wire.md §2) and the nonce of each session drawn from an injectable
random source.  Importable from :mod:`txtezosp2p.session` as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs

from . import _events as ev
from . import handshake
from ._backend import CboxModule
from .gate import VersionGate
from .identity import Identity
from .interfaces import IAuthenticationGate, IMessageCodec
from .limits import Limits
from .wire.crypto import (
    NONCE_SIZE,
    PowTarget,
)
from .wire.encoding import (
    MetadataConfig,
    default_metadata_config,
)
from .wire.versions import Versions

_EVERY_LINE = ev.SummarisingLogger(None)


def _pow_target(value: float | PowTarget) -> PowTarget:
    return value if isinstance(value, PowTarget) else PowTarget.of_difficulty(value)


def _check_nonce(_: object, attribute: attrs.Attribute[Any], value: bytes | None) -> None:
    if value is not None and len(value) != NONCE_SIZE:
        raise ValueError(f"{attribute.name} must be {NONCE_SIZE} bytes")


@attrs.frozen(kw_only=True)
class SessionConfig:
    """
    Everything a session needs besides its transport and clock.

    ``advertised_port`` is the listening port we announce (``None``: we do
    not listen).  ``gate`` decides after authentication; by default a
    :class:`VersionGate` over ``versions``.

    Deterministic sessions: the only randomness of a session is the nonce
    of its connection message, drawn from ``random_bytes`` (``os.urandom``
    by default) unless ``message_nonce`` fixes it.  With a fixed identity,
    nonce and metadata a session sends the same bytes every time, which is
    how a recorded handshake is replayed in a test (docs/embedding.md).
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
    backend: CboxModule | None = None
    #: Rate limit of the per-connection lines of refused and failed
    #: handshakes, shared by a node's sessions; ``None``: every line.
    log_summary: ev.SummarisingLogger | None = None
    #: The nonce of our connection message; ``None`` draws a fresh one.
    message_nonce: bytes | None = attrs.field(default=None, validator=_check_nonce)
    #: The random source: ``random_bytes(n)`` returns ``n`` random bytes.
    random_bytes: Callable[[int], bytes] = os.urandom
    _version_gate: VersionGate = attrs.field(init=False, repr=False, eq=False)

    # our connection message without its nonce: the same for every session
    _greeting_parts: tuple[bytes, bytes] = attrs.field(init=False, repr=False, eq=False)

    @_version_gate.default
    def _make_version_gate(self) -> VersionGate:
        return VersionGate(self.versions)

    @_greeting_parts.default
    def _split_greeting(self) -> tuple[bytes, bytes]:
        marker = b"\xa5" * NONCE_SIZE
        frame = handshake.greeting(
            self.identity, self.advertised_port, self.versions.announced, marker
        )
        start = handshake.GREETING_NONCE_OFFSET
        assert frame[start : start + NONCE_SIZE] == marker
        return frame[:start], frame[start + NONCE_SIZE :]

    def effective_gate(self) -> IAuthenticationGate:
        return self.gate if self.gate is not None else self._version_gate

    def summary(self) -> ev.SummarisingLogger:
        return self.log_summary if self.log_summary is not None else _EVERY_LINE

    def greeting(self, nonce: bytes) -> bytes:
        """Our framed connection message with ``nonce`` (:func:`handshake.greeting`)."""
        before, after = self._greeting_parts
        return before + nonce + after

    def connection_nonce(self) -> bytes:
        """The nonce of the next connection message."""
        if self.message_nonce is not None:
            return self.message_nonce
        nonce = self.random_bytes(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"random_bytes({NONCE_SIZE}) returned {len(nonce)} bytes")
        return nonce


__all__ = ["SessionConfig"]
