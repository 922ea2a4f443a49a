# -*- test-case-name: tests.test_session -*-
"""
What authentication yields and what decides on it: the
:class:`ConnectionInfo` of an authenticated peer (Octez
``P2p_connection.Info``), the decisions an
:class:`~txtezosp2p.interfaces.IAuthenticationGate` returns (Ack, Nack or a
silent drop) and :class:`VersionGate`, the gate of a bare session.

The topology's gate is the connect handler (behaviour.md §3.4); a session
only applies the decision (:mod:`txtezosp2p.session`).  Everything here is
also importable from :mod:`txtezosp2p.session`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from zope.interface import implementer

from .interfaces import IAuthenticationGate, ISession
from .wire.encoding import ConnectionMetadata, NetworkVersion, _points
from .wire.errors import NackMotive, P2PError, RejectedNoCommonProtocol
from .wire.ids import ConnectionId, PeerId, Point
from .wire.versions import Versions

# -- Connection info -----------------------------------------


@attrs.frozen
class ConnectionInfo:
    """
    What authentication taught us about a connection (Octez
    ``P2p_connection.Info``).  ``announced_version`` is what the remote
    announced, not what was negotiated.
    """

    peer_id: PeerId
    public_key: bytes = attrs.field(repr=lambda key: key.hex())
    announced_version: NetworkVersion
    incoming: bool
    id_point: ConnectionId
    remote_socket_port: int
    private_node: bool
    local_metadata: Any
    remote_metadata: Any

    def to_json(self, metadata_to_json: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        """Octez's ``P2p_connection.Info`` JSON (behaviour.md §13.1)."""
        meta = metadata_to_json or _metadata_json
        return {
            "incoming": self.incoming,
            "peer_id": str(self.peer_id),
            "id_point": self.id_point.to_json(),
            "remote_socket_port": self.remote_socket_port,
            "announced_version": self.announced_version.to_json(),
            "private": self.private_node,
            "local_metadata": meta(self.local_metadata),
            "remote_metadata": meta(self.remote_metadata),
        }


def _metadata_json(value: Any) -> Any:
    return value.to_json() if isinstance(value, ConnectionMetadata) else repr(value)


# -- Decisions --------------------------------------------------------------


@attrs.frozen
class Accept:
    """Send an Ack; ``version`` is the negotiated network version."""

    version: NetworkVersion


@attrs.frozen
class Reject:
    """
    Send a Nack with ``motive`` and ``alternatives`` (a Nack_v_0 if the peer
    announced p2p version 0), close, and fail locally with ``error``.
    """

    motive: NackMotive
    error: P2PError
    alternatives: tuple[Point, ...] = attrs.field(default=(), converter=_points)


@attrs.frozen
class Refuse:
    """Close without a Nack and fail locally with ``error``."""

    error: P2PError


Decision = Accept | Reject | Refuse


@implementer(IAuthenticationGate)
class VersionGate:
    """
    The gate of a bare session: accept any peer with which a network version
    can be negotiated, Nack the others (``Unknown_chain_name``,
    ``Deprecated_*_version``).
    """

    def __init__(self, versions: Versions) -> None:
        self.versions = versions

    def decide(self, session: ISession, info: object) -> Decision:
        assert isinstance(info, ConnectionInfo)
        chosen = self.versions.select(info.announced_version)
        if isinstance(chosen, NetworkVersion):
            return Accept(chosen)
        return Reject(chosen, RejectedNoCommonProtocol(info.announced_version, chosen))
