# -*- test-case-name: tests.test_p2p -*-
"""
A P2P layer that opens no socket and talks to nobody (Octez
``P2p.faked_network``, behaviour.md §15): the same interface as
:class:`~txtezosp2p.p2p.P2P`, for an application that runs with its P2P
layer disabled.  Importable from :mod:`txtezosp2p.p2p` as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from .identity import Identity
from .interfaces import IP2P
from .wire.errors import (
    ConnectionClosed,
    ConnectionFailed,
    DisconnectReason,
)
from .wire.ids import PeerId, Point
from .wire.stats import Stat

if TYPE_CHECKING:
    from .connection import P2PConnection
    from .pool_state import PoolEvent

T = TypeVar("T")


@implementer(IP2P)
class FakedP2P:
    """
    A P2P layer that opens no socket (Octez ``faked_network``,
    behaviour.md §15): connect fails, sends fail, try_send drops, receives
    never return, stats are zero.
    """

    def __init__(self, identity: Identity | None = None) -> None:
        from .testing import unchecked_identity

        self.identity = identity or unchecked_identity()

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    def activate(self) -> Deferred[None]:
        return succeed(None)

    def shutdown(self) -> Deferred[None]:
        return succeed(None)

    def maintain(self) -> Deferred[None]:
        return succeed(None)

    def connect(self, point: Point, timeout: float | None = None, **_: Any) -> Deferred[Any]:
        return fail(ConnectionFailed("the P2P layer is disabled"))

    def connections(self) -> list[P2PConnection]:
        return []

    def iter_connections(self) -> Iterator[P2PConnection]:
        return iter(())

    def fold_connections(self, function: Callable[[P2PConnection, T], T], initial: T) -> T:
        return initial

    def find_connection_by_peer_id(self, peer_id: PeerId) -> None:
        return None

    def find_connection_by_point(self, point: Point) -> None:
        return None

    def global_stat(self) -> Stat:
        return Stat()

    def connection_stat(self, connection: P2PConnection) -> Stat:
        return Stat()

    def disconnect(
        self, connection: P2PConnection, wait: bool = False, reason: DisconnectReason | str = ""
    ) -> Deferred[None]:
        return succeed(None)

    def send(self, connection: P2PConnection, message: object) -> Deferred[None]:
        return fail(ConnectionClosed("the P2P layer is disabled"))

    def try_send(self, connection: P2PConnection, message: object) -> bool:
        return False

    def recv(self, connection: P2PConnection) -> Deferred[object]:
        return Deferred()

    def recv_any(self) -> Deferred[tuple[P2PConnection, object]]:
        return Deferred()

    def broadcast(
        self, connections: Sequence[P2PConnection] | None, message: object, **_: Any
    ) -> int:
        return 0

    def on_new_connection(self, hook: Callable[[PeerId, P2PConnection], None]) -> None:
        pass

    def on_disconnection(self, hook: Callable[[PeerId], None]) -> None:
        pass

    def get_peer_metadata(self, peer_id: PeerId) -> Any:
        return None

    def set_peer_metadata(self, peer_id: PeerId, metadata: Any) -> None:
        pass

    def greylist_addr(self, address: Any) -> None:
        pass

    def greylist_peer(self, peer_id: PeerId) -> None:
        pass

    def watch(self, watcher: Callable[[PoolEvent], None]) -> Callable[[], None]:
        return lambda: None


def faked_network(identity: Identity | None = None) -> FakedP2P:
    """A P2P layer that opens no socket and talks to nobody."""
    return FakedP2P(identity)


#: ``P2PConfig`` and ``P2PSettings`` live in :mod:`txtezosp2p.p2p_config`; importable from here too.


__all__ = ["FakedP2P", "faked_network"]
