# -*- test-case-name: tests.test_p2p_config -*-
"""
The configuration of a P2P layer (Octez ``P2p.config`` and ``P2p_limits``),
one frozen value passed down as it is.

* :class:`P2PSettings` is everything known before the node runs: where to
  listen, what to ask of peers, the limits, the peers file, LAN discovery.
  It is the ``p2p`` section of a node's configuration
  (:class:`txtezosp2p.node.config.NodeConfig`), read from Octez's
  ``config.json`` and evolved by command-line options.
* :class:`P2PConfig` is a :class:`P2PSettings` plus what exists only once the
  node runs: its identity, its network versions and the resolved trusted
  points.  :meth:`P2PConfig.of` completes settings into a configuration;
  embedders build one directly.

The sessions' own configuration (:class:`~txtezosp2p.session.SessionConfig`)
is derived from a :class:`P2PConfig` and the layer's codecs by
:meth:`P2PConfig.session_config`.

Listening entries are Twisted endpoint strings (``tcp:9732``,
``tcp6:9732:interface=\\:\\:``, ``systemd:domain=INET:index=0``...) or Octez's
``ADDR[:PORT]`` (``127.0.0.1:9732``, ``[::]:9732``, ``:9732``), which
:func:`listen_description` turns into endpoint strings.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import attrs

from .identity import Identity
from .interfaces import IMessageCodec
from .limits import Limits
from .pool_state import ReconnectionConfig
from .session import SessionConfig
from .wire.addresses import AddressError, parse_listen_addr
from .wire.crypto import PowTarget
from .wire.encoding import MetadataConfig
from .wire.ids import PeerId, Point
from .wire.versions import Versions

__all__ = [
    "P2PConfig",
    "P2PSettings",
    "is_endpoint_string",
    "listen_description",
    "listen_endpoint",
]


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class P2PSettings:
    """What a P2P layer is told to do, before it has an identity."""

    #: Endpoint strings or Octez ``ADDR[:PORT]`` to listen on; none: no incoming connections.
    listen: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: Port announced to peers; by default the first listening TCP port.
    advertised_port: int | None = None
    #: Only trusted points; peers never advertise us (behaviour.md §3.7).
    private_mode: bool = False
    #: Proof-of-work difficulty required from peers (and to mine a node's identity).
    proof_of_work_target: float = 26.0
    limits: Limits = attrs.field(factory=Limits)
    #: Reconnection delays (``greylisting_config``, behaviour.md §5).
    reconnection: ReconnectionConfig = attrs.field(factory=ReconnectionConfig)
    disable_mempool: bool = False
    disable_peer_discovery: bool = False
    trust_discovered_peers: bool = False
    #: ``peers.json``; ``None``: nothing is loaded or saved.  A node reads a
    #: relative path from its data directory.
    peers_file: str | None = None
    #: Seconds between two saves of the peers file (``None``: only at shutdown).
    peers_file_interval: float | None = 300.0
    #: LAN discovery, Octez's ``discovery-addr`` text (``ADDR[:PORT]``, IPv4;
    #: ``""`` is 255.255.255.255:10732); ``None``: off.
    discovery_addr: str | None = None
    #: The UDP port discovery listens on (default: the destination's port)...
    discovery_listen_port: int | None = None
    #: ...and the interface.
    discovery_listen_interface: str = "0.0.0.0"


@attrs.frozen(kw_only=True)
class P2PConfig(P2PSettings):
    """
    The configuration of a running P2P layer (Octez ``P2p.config``): the
    settings, the identity, the network versions and the trusted points
    with the peer id expected at each (``None``: any).
    """

    identity: Identity
    versions: Versions
    trusted_points: tuple[tuple[Point, PeerId | None], ...] = attrs.field(
        default=(), converter=_tuple
    )

    @classmethod
    def of(
        cls,
        settings: P2PSettings,
        *,
        identity: Identity,
        versions: Versions,
        trusted_points: tuple[tuple[Point, PeerId | None], ...] = (),
    ) -> P2PConfig:
        """``settings`` completed with what exists once the node runs."""
        values = {field.name: getattr(settings, field.name) for field in attrs.fields(P2PSettings)}
        return cls(identity=identity, versions=versions, trusted_points=trusted_points, **values)

    def session_config(self, codec: IMessageCodec, metadata: MetadataConfig[Any]) -> SessionConfig:
        """The sessions' configuration: this one with the layer's message codec and metadata."""
        return SessionConfig(
            identity=self.identity,
            versions=self.versions,
            codec=codec,
            pow_target=PowTarget.of_difficulty(self.proof_of_work_target),
            metadata=metadata,
            advertised_port=self.advertised_port,
            limits=self.limits,
        )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def listen_endpoint(host: str, port: int) -> str:
    """
    The endpoint string for Octez's listening address ``host:port``: ``tcp``
    for IPv4, ``tcp6`` for IPv6 (``::`` also accepts IPv4 where the system
    allows dual-stack sockets, as Linux does by default).  A host name is
    resolved now, to its first address, as Octez does (``ValueError`` when
    it does not resolve).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise ValueError(f"cannot resolve {host!r}: {error.strerror or error}") from None
        if not infos:  # pragma: no cover - getaddrinfo raises instead
            raise ValueError(f"cannot resolve {host!r}") from None
        address = ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0])
    if isinstance(address, ipaddress.IPv4Address):
        return f"tcp:{port}:interface={address}"
    return f"tcp6:{port}:interface={_escape(address.compressed)}"


def _endpoint_error(entry: str) -> Exception | None:
    """Why ``entry`` is not an endpoint string (``None``: it is one); parsing only."""
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(None, entry)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        return error
    return None


def is_endpoint_string(entry: str) -> bool:
    """Whether a listening entry is a Twisted endpoint string, not Octez's ``ADDR:PORT``."""
    return _endpoint_error(entry) is None


def listen_description(entry: str) -> str:
    """
    The endpoint string of one listening entry: an endpoint string as it is,
    Octez's ``ADDR[:PORT]`` through :func:`listen_endpoint`.  Raises
    ``ValueError`` with a hint when the entry is neither.
    """
    endpoint_error = _endpoint_error(entry)
    if endpoint_error is None:
        return entry
    if entry.isdigit():
        raise ValueError(
            f"invalid listening address {entry!r}: a port alone is ambiguous "
            f"(write :{entry} for every address, or tcp:{entry})"
        )
    address_error = "it holds '='"
    if "=" not in entry:
        try:
            host, port = parse_listen_addr(entry)
        except AddressError as error:
            address_error = error.reason
        else:
            return listen_endpoint(host, port)
    raise ValueError(
        f"invalid listening address {entry!r}: neither an endpoint string ({endpoint_error}) "
        f"nor ADDR:PORT ({address_error}); for example tcp:9732:interface=127.0.0.1, "
        f"127.0.0.1:9732 or [::]:9732"
    )
