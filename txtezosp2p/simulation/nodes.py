# -*- test-case-name: tests.test_simulation -*-
"""
The nodes of a simulation: complete P2P stacks (:class:`~txtezosp2p.p2p.P2P`,
with real sessions and crypto, pool, ACL, connect handler, answerer,
maintenance and swaps) on one :class:`~.clock.SimulatedClock`, joined by a
:class:`~.memory.MemoryNetwork`, and what the simulator records about each.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from ..identity import Identity
from ..limits import Limits
from ..p2p import P2P, P2PConfig
from ..wire.crypto import public_key_of_secret
from ..wire.encoding import MessageEncoding
from ..wire.ids import PeerId, Point
from ..wire.versions import Versions
from .clock import SimulatedClock
from .memory import MemoryNetwork

#: Port every simulated node listens on.
PORT = 9732
#: The chain name simulated nodes announce.
VERSIONS = Versions("TEZOS_SIMULATION")


def seeded_identity(rng: random.Random) -> Identity:
    """
    A real key pair drawn from ``rng`` (so a seed fixes every peer id, hence
    every tie broken by peer ids); the stamp is not mined: simulated nodes
    require no proof of work.
    """
    secret = rng.randbytes(32)
    public = public_key_of_secret(secret)
    return Identity(PeerId.of_public_key(public), public, secret, rng.randbytes(24))


@attrs.frozen
class Gossip:
    """The application message of broadcast scenarios: an id and the hops so far."""

    ident: int
    hops: int


def _encode_gossip(message: Gossip) -> bytes:
    return message.ident.to_bytes(4, "big") + message.hops.to_bytes(2, "big")


def _decode_gossip(body: bytes) -> Gossip:
    if len(body) != 6:
        raise ValueError("a gossip message is 6 bytes")
    return Gossip(int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big"))


GOSSIP = MessageEncoding(
    tag=0x1F00,
    title="Simulation_gossip",
    type=Gossip,
    encode=_encode_gossip,
    decode=_decode_gossip,
    max_length=6,
)


@attrs.define(eq=False)
class Episode:
    """A span of time a node spent below ``min_connections`` while online."""

    start: float
    end: float | None = None
    #: The node had just (re)joined the network (as opposed to losing peers).
    joining: bool = False


class SimNode:
    """One simulated node: its address, identity and the stack it runs while online."""

    def __init__(
        self,
        index: int,
        address: ipaddress.IPv6Address,
        identity: Identity,
        *,
        kind: str = "honest",
    ) -> None:
        self.index = index
        self.address = address
        self.point = Point(address, PORT)
        self.identity = identity
        self.kind = kind
        self.p2p: P2P | None = None
        #: Connections by remote peer id, kept by the connection hooks.
        self.peers: dict[PeerId, Any] = {}
        self.max_degree = 0
        self.joins: list[float] = []
        self.episodes: list[Episode] = []
        #: Counters of the stacks this node ran (a rejoin starts a new stack).
        self.handshakes = 0
        self.messages = 0
        self.connections_made = 0
        #: Points the node knew when it left (what peers.json would hold).
        self.remembered: list[Point] = []
        #: Broadcast scenario: id -> hops when first received.
        self.seen: dict[int, int] = {}

    @property
    def online(self) -> bool:
        return self.p2p is not None

    @property
    def degree(self) -> int:
        return len(self.peers)

    def __repr__(self) -> str:
        return f"<SimNode {self.index} {self.kind} {self.address.ipv4_mapped} deg={self.degree}>"

    # -- lifecycle ---------------------------------------------------------------

    def start(
        self,
        clock: SimulatedClock,
        network: MemoryNetwork,
        limits: Limits,
        *,
        bootstrap: list[Point],
        rng: random.Random,
        configure: Callable[[P2P], None] | None = None,
    ) -> P2P:
        """Join the network: a fresh stack dialling ``bootstrap`` (trusted, like ``--peer``)."""
        assert self.p2p is None, "already online"
        p2p = P2P(
            clock,
            P2PConfig(
                identity=self.identity,
                versions=VERSIONS,
                advertised_port=PORT,
                trusted_points=tuple((p, None) for p in bootstrap if p != self.point),
                proof_of_work_target=0.0,
            ),
            limits,
            message_encodings=[GOSSIP],
            clock=clock,
            rng=random.Random(rng.getrandbits(64)),
            endpoint_factory=network.endpoint_factory(self.address),
        )
        for point in self.remembered:
            p2p.pool.register_new_point(point)
        p2p.on_new_connection(self._connected)
        p2p.on_disconnection(self._disconnected)
        if configure is not None:
            configure(p2p)
        self.p2p = p2p
        self.peers = {}
        now = clock.seconds()
        self.joins.append(now)
        self.episodes.append(Episode(now, joining=True))
        network.listen(self.point, p2p.handler.server_factory())
        p2p.activate()
        return p2p

    def stop(self, network: MemoryNetwork) -> Deferred[None]:
        """Leave the network cleanly (the stack closes its connections)."""
        p2p = self.p2p
        assert p2p is not None, "not online"
        network.stop_listening(self.point)
        self.remembered = list(p2p.pool.points)
        self._count(p2p)
        self.p2p = None
        self.peers = {}
        episode = self.open_episode
        if episode is not None:
            episode.end = p2p.clock.seconds()
        return p2p.shutdown()

    def _count(self, p2p: P2P) -> None:
        counters = p2p.counters
        self.handshakes += counters["outgoing_connection"] + counters["incoming_connection"]
        self.messages += counters["user_message_received"] + sum(
            count for kind, count in counters.items() if kind.endswith("_received")
        )

    def totals(self) -> tuple[int, int]:
        """Handshakes started and messages received, over every stack this node ran."""
        handshakes, messages = self.handshakes, self.messages
        if self.p2p is not None:
            before = (self.handshakes, self.messages)
            self._count(self.p2p)
            handshakes, messages = self.handshakes, self.messages
            self.handshakes, self.messages = before
        return handshakes, messages

    # -- connection hooks ------------------------------------------------------------

    @property
    def open_episode(self) -> Episode | None:
        if self.episodes and self.episodes[-1].end is None:
            return self.episodes[-1]
        return None

    def _connected(self, peer_id: PeerId, connection: Any) -> None:
        if self.p2p is None:
            return
        self.peers[peer_id] = connection
        self.connections_made += 1
        self.max_degree = max(self.max_degree, len(self.peers))
        episode = self.open_episode
        if episode is not None and len(self.peers) >= self.p2p.limits.min_connections:
            episode.end = self.p2p.clock.seconds()

    def _disconnected(self, peer_id: PeerId) -> None:
        if self.p2p is None:
            return
        self.peers.pop(peer_id, None)
        if len(self.peers) < self.p2p.limits.min_connections and self.open_episode is None:
            self.episodes.append(Episode(self.p2p.clock.seconds()))


__all__ = ["GOSSIP", "PORT", "VERSIONS", "Episode", "Gossip", "SimNode", "seeded_identity"]
