# -*- test-case-name: tests.test_limits -*-
"""
The limits of the P2P layer (Octez ``P2p_limits``, behaviour.md §11.1), with
Octez's defaults and the checks Octez runs when a layer is created (§11.3).

Durations are seconds (floats), sizes are bytes unless noted; ``None``
means "not set" (no cap, unbounded, disabled) exactly where Octez allows it.
"""

from __future__ import annotations

from typing import Any

import attrs

from .wire.crypto import check_binary_chunks_size

MiB = 1 << 20
#: The admission policies (``Limits.admission``).
ADMISSION_POLICIES = ("elastic", "octez")


@attrs.frozen(kw_only=True)
class Limits:
    """Every tunable limit of the P2P layer."""

    #: Whole outgoing connect: TCP connect plus handshake.
    connection_timeout: float = 10.0
    #: Whole incoming handshake, from accept to both Acks.
    authentication_timeout: float = 5.0
    #: Decoded but unused by Octez's P2P layer (behaviour.md §6.1).
    greylist_timeout: float = 86400.0
    #: Maintenance period; ``None`` disables maintenance.
    maintenance_idle_time: float | None = 120.0
    min_connections: int = 10
    expected_connections: int = 50
    max_connections: int = 100
    #: ``listen(2)`` backlog.
    backlog: int = 20
    #: Concurrent incoming handshakes.
    max_incoming_connections: int = 20
    #: KiB/s; ``None``: no cap.
    max_download_speed: int | None = None
    #: KiB/s; ``None``: no cap.
    max_upload_speed: int | None = None
    read_buffer_size: int = 16384
    read_queue_size: int | None = 8 * MiB
    write_queue_size: int | None = 8 * MiB
    incoming_message_queue_size: int | None = 8 * MiB
    outgoing_message_queue_size: int | None = 8 * MiB
    #: Counted in messages, not bytes.
    incoming_app_message_queue_size: int | None = 10
    #: ``(max, target)`` high and low water marks; ``None``: unbounded.
    max_known_points: tuple[int, int] | None = (400, 300)
    max_known_peer_ids: tuple[int, int] | None = (400, 300)
    peer_greylist_size: int = 1023
    ip_greylist_size_in_kilobytes: int = 2048
    ip_greylist_cleanup_delay: float = 86400.0
    #: Minimum time between two accepted swaps; ``None`` ignores swap requests.
    swap_linger: float | None = 30.0
    #: On-wire chunk size (header and MAC included); ``None``: 65 535-byte frames.
    binary_chunks_size: int | None = None
    #: Who gets a slot when the node is full, and whom maintenance closes when
    #: it has too many (docs/behaviour.md "Admission"): ``"elastic"`` (ours,
    #: newcomers always find room up to ``max_connections``) or ``"octez"``
    #: (Octez's exact rule: refuse newcomers at ``max_threshold``).  Not an
    #: Octez limit and not in Octez's configuration file.
    admission: str = "elastic"
    #: Not an Octez limit.  How long a running connection may hold part of a
    #: message (an incomplete chunk or record) without completing one, time
    #: paused by our own back-pressure excepted; then it is closed with
    #: ``ReceiveStalled``.  At the default a 100 MiB message needs about
    #: 0.9 MB/s.  ``None`` waits forever, as Octez does.  Not in Octez's
    #: configuration file.
    receive_progress_timeout: float | None = 120.0

    def __attrs_post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Octez's checks at creation (behaviour.md §11.3); raises ``ValueError``."""
        if self.admission not in ADMISSION_POLICIES:
            raise ValueError(
                f"admission must be one of {', '.join(ADMISSION_POLICIES)}, not {self.admission!r}"
            )
        if self.authentication_timeout <= 0:
            raise ValueError("authentication-timeout must be positive")
        if self.connection_timeout <= 0:
            raise ValueError("connection-timeout must be positive")
        for name in (
            "min_connections",
            "expected_connections",
            "max_connections",
            "max_incoming_connections",
            "read_buffer_size",
            "backlog",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must not be negative")
        if self.read_buffer_size == 0:
            raise ValueError("read-buffer-size must be positive")
        if not self.min_connections <= self.expected_connections <= self.max_connections:
            raise ValueError(
                "connection limits must satisfy min-connections <= "
                "expected-connections <= max-connections"
            )
        if self.swap_linger is not None and self.swap_linger <= 0:
            raise ValueError("swap-linger must be positive")
        if self.maintenance_idle_time is not None and self.maintenance_idle_time <= 0:
            raise ValueError("maintenance-idle-time must be positive")
        for name in ("max_download_speed", "max_upload_speed"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive")
        for name in ("max_known_points", "max_known_peer_ids"):
            pair = getattr(self, name)
            if pair is not None and not 0 <= pair[1] <= pair[0]:
                raise ValueError(f"{name}: target must be within [0, max]")
        if self.receive_progress_timeout is not None and self.receive_progress_timeout <= 0:
            raise ValueError("receive-progress-timeout must be positive")
        if self.binary_chunks_size is not None:
            check_binary_chunks_size(self.binary_chunks_size)

    @property
    def chunk_plaintext_size(self) -> int:
        """Plaintext bytes per outgoing chunk."""
        if self.binary_chunks_size is None:
            return 65517
        return check_binary_chunks_size(self.binary_chunks_size)

    def replace(self, **changes: Any) -> Limits:
        return attrs.evolve(self, **changes)


@attrs.frozen
class ConnectionBounds:
    """The thresholds derived from min ≤ expected ≤ max (behaviour.md §3.1)."""

    min_threshold: int
    min_target: int
    max_target: int
    max_threshold: int

    @classmethod
    def of(cls, limits: Limits) -> ConnectionBounds:
        low, expected, high = (
            limits.min_connections,
            limits.expected_connections,
            limits.max_connections,
        )
        step_min = (expected - low) // 3
        step_max = (high - expected) // 3
        return cls(
            min_threshold=low + step_min,
            min_target=low + 2 * step_min,
            max_target=high - 2 * step_max,
            max_threshold=high - step_max,
        )
