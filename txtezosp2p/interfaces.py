# -*- test-case-name: tests.test_interfaces -*-
"""
Every contract between the components of txtezosp2p, in one module.

Implementations declare them with ``@implementer`` and the test suite
checks each one with ``zope.interface.verify.verifyObject``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from zope.interface import Attribute, Interface

from .wire.interfaces import IChunkCipher, IMessageCodec

if TYPE_CHECKING:
    from twisted.internet.interfaces import IStreamClientEndpoint

    from .wire.ids import Point

#: The dialling seam: how the topology reaches a point.  Given a point, it
#: returns the client endpoint to dial (TCP by default, see
#: :func:`txtezosp2p.connect_handler.tcp_endpoint_factory`; in-memory
#: transports in the network simulator and in tests).  The composition root
#: chooses it; nothing below it builds endpoints.
EndpointFactory: TypeAlias = Callable[["Point"], "IStreamClientEndpoint"]


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


class IPool(Interface):
    """
    Known points and peers, running connections (Octez ``P2p_pool``): a
    passive store that the connect handler, the answerer and maintenance
    change, and that tells watchers and triggers what changed.
    """

    acl = Attribute("The node's ``IACL``.")
    reconnection = Attribute("The ``ReconnectionConfig`` of point delays.")
    points = Attribute("Known points: ``Point`` to ``PointInfo``.")
    peers = Attribute("Known peers: ``PeerId`` to ``PeerInfo``.")
    active_connections = Attribute("Number of running connections.")
    too_few_connections = Attribute("Trigger: fewer than ``min_connections``.")
    too_many_connections = Attribute("Trigger: ``max_connections`` reached.")
    new_peer = Attribute("Trigger: a peer id was registered.")
    new_point = Attribute("Trigger: a point was registered.")
    new_connection = Attribute("Trigger: a connection started running.")

    def register_point(point: Any, trusted: Any = None, expected_peer_id: Any = None) -> Any:
        """Find or create a point."""

    def register_new_point(point: Any, trusted: Any = None) -> Any:
        """Like ``register_point`` for points we were told about; None for our own."""

    def forget_point(point: Any) -> None:
        """Drop a disconnected point."""

    def add_myself(point: Any) -> None:
        """Remember ``point`` as one of ours."""

    def register_peer(peer_id: Any) -> Any:
        """Find or create a peer."""

    def get_peer_metadata(peer_id: Any) -> Any:
        """The upper layer's metadata about a peer."""

    def set_peer_metadata(peer_id: Any, metadata: Any) -> None:
        """Set the upper layer's metadata about a peer."""

    def list_known_points(size: int = 50, ignore_private: bool = True) -> Any:
        """Points worth telling others about."""

    def add_connection(connection: Any, point: Any) -> None:
        """Register a running connection, by peer id and by ``point`` (if known)."""

    def remove_connection(connection: Any) -> None:
        """Forget a connection that ended."""

    def connections() -> Any:
        """The running connections."""

    def connection_for_peer(peer_id: Any) -> Any:
        """The running connection to a peer, or None."""

    def connection_for_point(point: Any) -> Any:
        """The running connection to a point, or None."""

    def emit(event: Any) -> None:
        """Tell every watcher about ``event``."""

    def watch(watcher: Any) -> Any:
        """Call ``watcher`` with every pool event; returns a function to stop."""

    def triggers_held() -> Any:
        """A context manager postponing the triggers to its end."""


class IPeerLink(Interface):
    """
    What the answerer sees of a running connection (Octez's
    ``P2p_answerer.conn_info``): who the peer is, a way to send it a control
    message, a way to hand over an application message, and a close.
    """

    peer_id = Attribute("The remote peer id.")
    point = Attribute("The remote listening point, or None.")
    private = Attribute("Whether the remote is a private node.")
    closed = Attribute("Whether the connection is closed.")
    last_sent_swap_request = Attribute(
        "``(time, proposed peer id)`` of our last Swap_request on this link, or None."
    )

    def send(message: Any) -> bool:
        """Queue a control message if there is room; False if dropped or closed."""

    def push_message(message: Any) -> Any:
        """Hand an application message to the upper layer (a Deferred, waits while full)."""

    def disconnect(reason: Any) -> Any:
        """Close the connection; ``reason``: a ``DisconnectReason`` or a text."""


class IAnswerer(Interface):
    """Reactions to the P2P control messages (Octez ``P2p_protocol``)."""

    def bootstrap(link: IPeerLink) -> Any:
        """A Bootstrap from ``link``."""

    def advertise(link: IPeerLink, points: Any) -> Any:
        """An Advertise of ``points`` from ``link``."""

    def swap_request(link: IPeerLink, point: Any, peer_id: Any) -> Any:
        """A Swap_request from ``link``."""

    def swap_ack(link: IPeerLink, point: Any, peer_id: Any) -> Any:
        """A Swap_ack from ``link``."""

    def message(link: IPeerLink, message: Any) -> Any:
        """An application message from ``link``."""

    def send_bootstrap(link: IPeerLink) -> bool:
        """Ask ``link`` for points."""

    def send_swap_request() -> bool:
        """Propose a swap to a random peer."""


class IAdmissionPolicy(Interface):
    """
    Who gets a slot once authenticated, and which connections the
    maintenance worker closes when it has too many
    (:mod:`txtezosp2p.admission`).
    """

    name = Attribute("The policy's name, as ``Limits.admission`` spells it.")

    def has_room(running: int, accepted: int, address: Any, connections: Any) -> bool:
        """
        Whether a newcomer from ``address`` may be accepted, given the running
        connections (``running`` of them) and the handshakes already accepted
        but not yet running.
        """

    def victims(connections: Any, count: int, now: float, rng: Any) -> Any:
        """Up to ``count`` of ``connections`` to close, in order."""

    def exploration(running: int) -> int:
        """
        How many new points a maintenance step that finds ``running``
        connections inside its band dials beyond Octez's step (0 in Octez).
        """


class IConnectHandler(Interface):
    """Dials, accepts and sets up connections (Octez ``P2p_connect_handler``)."""

    def connect(
        point: Any, *, trusted: Any = None, expected_peer_id: Any = None, timeout: Any = None
    ) -> Any:
        """Dial ``point``; a Deferred firing with the running connection."""

    def server_factory() -> Any:
        """The factory a listening endpoint uses for incoming connections."""

    def on_new_connection(hook: Any) -> None:
        """Call ``hook(peer_id, connection)`` for each new running connection."""

    def on_disconnection(hook: Any) -> None:
        """Call ``hook(peer_id)`` when a running connection ends."""


class IP2PConnection(Interface):
    """A running connection of the P2P layer (Octez ``P2p_conn``)."""

    peer_id = Attribute("The remote peer id.")
    id_point = Attribute("The remote ``ConnectionId``.")
    info = Attribute("The ``ConnectionInfo`` of the handshake.")
    link = Attribute("The ``IPeerLink`` the answerer is given.")

    def send(message: Any) -> Any:
        """Queue ``message``; a Deferred firing once queued."""

    def try_send(message: Any) -> bool:
        """Queue ``message`` if there is room; False if dropped."""

    def recv() -> Any:
        """A Deferred firing with the next application message."""

    def disconnect(reason: Any = "", wait: bool = False) -> Any:
        """Close the connection; ``reason``: a ``DisconnectReason`` or a text."""

    def stat() -> Any:
        """Traffic statistics."""


class IACL(Interface):
    """Bans, greylists and their expiry (Octez ``P2p_acl``)."""

    def banned_addr(address: Any) -> bool:
        """Blacklisted or greylisted."""

    def banned_peer(peer_id: Any) -> bool:
        """Blacklisted or greylisted."""

    def greylist_addr(address: Any) -> None:
        """Greylist an address for about a day."""

    def greylist_peer(peer_id: Any) -> None:
        """Greylist a peer id."""


class IP2P(Interface):
    """The public API of a P2P layer (Octez ``P2p``, behaviour.md section 15)."""

    peer_id = Attribute("Our peer id.")

    def activate() -> Any:
        """Start accepting and dialling."""

    def shutdown() -> Any:
        """Stop everything; a Deferred."""

    def connect(point: Any, timeout: Any = None) -> Any:
        """Dial a point; a Deferred firing with the connection."""

    def connections() -> Any:
        """The running connections."""

    def iter_connections() -> Any:
        """An iterator over the running connections."""

    def fold_connections(function: Any, initial: Any) -> Any:
        """Fold ``function`` over the running connections."""

    def find_connection_by_peer_id(peer_id: Any) -> Any:
        """The running connection to a peer, or None."""

    def find_connection_by_point(point: Any) -> Any:
        """The running connection to a point, or None."""

    def global_stat() -> Any:
        """Traffic of every connection together."""

    def connection_stat(connection: Any) -> Any:
        """Traffic of one connection."""

    def disconnect(connection: Any, wait: bool = False, reason: Any = "") -> Any:
        """Close a connection; a Deferred (``reason``: a ``DisconnectReason`` or a text)."""

    def send(connection: Any, message: Any) -> Any:
        """Queue a message; a Deferred firing once queued."""

    def try_send(connection: Any, message: Any) -> bool:
        """Queue a message if there is room."""

    def recv(connection: Any) -> Any:
        """A Deferred firing with the next message of a connection."""

    def recv_any() -> Any:
        """A Deferred firing with ``(connection, message)``."""

    def broadcast(connections: Any, message: Any) -> Any:
        """Queue a message on many connections, best effort."""

    def on_new_connection(hook: Any) -> None:
        """Call ``hook(peer_id, connection)`` for each new connection."""

    def on_disconnection(hook: Any) -> None:
        """Call ``hook(peer_id)`` when a connection ends."""

    def get_peer_metadata(peer_id: Any) -> Any:
        """The upper layer's metadata about a peer."""

    def set_peer_metadata(peer_id: Any, metadata: Any) -> None:
        """Set the upper layer's metadata about a peer."""

    def greylist_addr(address: Any) -> None:
        """Greylist an address."""

    def greylist_peer(peer_id: Any) -> None:
        """Greylist a connected peer and its address."""

    def watch(watcher: Any) -> Any:
        """Subscribe to the global event stream."""


# IChunkCipher and IMessageCodec are the wire layer's, re-exported
__all__ = [
    "IACL",
    "IP2P",
    "EndpointFactory",
    "IAdmissionPolicy",
    "IAnswerer",
    "IAuthenticationGate",
    "IChunkCipher",
    "IConnectHandler",
    "IIOScheduler",
    "IIdentityStore",
    "IMessageCodec",
    "IP2PConnection",
    "IPeerLink",
    "IPool",
    "ISession",
]
