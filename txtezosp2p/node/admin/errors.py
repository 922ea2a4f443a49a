"""
The answers of the admin API that are not 200: Octez's error lists
(``[{"kind", "id", "msg"}]``, behaviour.md section 13) with an HTTP status.
"""

from __future__ import annotations

from typing import Any

from ...wire.errors import (
    Connected,
    IdentityCheckFailure,
    Myself,
    PeerBanned,
    PendingConnection,
    PointBanned,
    PrivateMode,
    RejectedNoCommonProtocol,
    TooManyConnections,
)

#: The content type of every answer but ``/metrics``.
JSON = b"application/json"


class APIError(Exception):
    """An answer other than 200: HTTP status, Octez-style error id, message."""

    def __init__(self, status: int, error_id: str, message: str, kind: str = "permanent") -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.kind = kind

    def to_json(self) -> list[dict[str, Any]]:
        return [{"kind": self.kind, "id": self.error_id, "msg": self.message}]


def not_found(message: str) -> APIError:
    return APIError(404, "rpc.not_found", message)


def bad_request(message: str) -> APIError:
    return APIError(400, "rpc.bad_request", message)


def internal_error() -> APIError:
    """A bug of ours (logged where it happened): the only 500 the API gives."""
    return APIError(500, "rpc.internal", "internal error")


def dial_error(error: BaseException | None) -> APIError:
    """The answer for an error of the P2P layer (``PUT /network/points/<p>``)."""
    octez_id = getattr(error, "octez_id", None) or "node.p2p.error"
    message = str(error) or type(error).__name__
    # 409: our own state forbids the dial (a ban, a connection already
    # there or under way, private mode, our own address)
    if isinstance(
        error, PointBanned | PeerBanned | Connected | PendingConnection | PrivateMode | Myself
    ):
        return APIError(409, octez_id, message)
    if isinstance(error, TooManyConnections):
        return APIError(503, octez_id, message, kind="temporary")
    # 502: the remote end failed or refused; retrying may help unless it is
    # not who it should be, or does not speak our protocol
    permanent = isinstance(error, IdentityCheckFailure | RejectedNoCommonProtocol)
    return APIError(502, octez_id, message, kind="permanent" if permanent else "temporary")


__all__ = ["JSON", "APIError", "bad_request", "dial_error", "internal_error", "not_found"]
