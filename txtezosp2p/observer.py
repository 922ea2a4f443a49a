# -*- test-case-name: tests.test_observer -*-
"""
Observer mode: a node that answers nothing at the shell level and records
what its peers gossip.

For a peer to gossip to us, the chain must be *active* for us on its side:
an Octez node activates a chain for a peer when that peer sends
``Get_current_branch`` for it (``src/lib_shell/p2p_reader.ml``,
``activate``), and from then on sends it its ``Current_head`` messages.  So
on every connection the observer sends ``Get_current_branch`` and
``Get_current_head`` for the chain (requests only: it never answers one).
The chain id is configured, or learned from the first message of a peer
that names one (Octez nodes send ``Get_current_branch`` for their chain
right after the handshake).

What is recorded (:meth:`Observer.record`):

* **heads per peer**: the last head each peer announced (``Current_head``,
  or the head of a ``Current_branch``), with when and how many;
* **first sightings**: for each block hash (from heads, branches and
  ``Block_header`` messages) and each operation hash (the mempools of
  ``Current_head``, ``Operation`` messages), when it was first seen and
  which peer announced it first, then the delay of each other peer's first
  announcement of it: the *propagation* of that block or operation across
  our peers;
* a **propagation delay histogram** (those delays, by kind), exposed as a
  Prometheus histogram by :mod:`txtezosp2p.node.metrics`.

Memory is bounded by :class:`ObserverConfig`: at most ``max_peers`` heads,
``max_blocks`` and ``max_operations`` sightings (the oldest are dropped
first), each keeping at most ``max_announcements`` peers; sightings older
than ``window`` seconds are dropped too.  Roughly
``(max_blocks + max_operations) * max_announcements * 100`` bytes at worst:
about 10 MB with the defaults.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from . import _events as ev
from .wire.errors import ConnectionClosed, DecodingError, P2PError
from .wire.ids import PeerId
from .wire.shell import (
    BlockHeaderMessage,
    CurrentBranch,
    CurrentHead,
    Deactivate,
    GetCurrentBranch,
    GetCurrentHead,
    OperationMessage,
)
from .wire.shell_types import BlockHash, BlockHeader, ChainId, OperationHash, timestamp_to_json

if TYPE_CHECKING:
    from .connection import P2PConnection
    from .p2p import P2P

_log = ev.logger("p2p.observer")

#: Upper bounds (seconds) of the propagation delay histogram's buckets.
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)

Kind = Literal["block", "operation"]


@attrs.frozen(kw_only=True)
class ObserverConfig:
    """``chain_id``: the chain to follow (``None``: learned from the first peer that names one)."""

    chain_id: ChainId | None = None
    window: float = 3600.0
    max_blocks: int = 1000
    max_operations: int = 5000
    max_peers: int = 1000
    max_announcements: int = 16

    def __attrs_post_init__(self) -> None:
        for name in ("max_blocks", "max_operations", "max_peers", "max_announcements"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.window > 0:
            raise ValueError("the window must be positive")


@attrs.define
class HeadSeen:
    """The last head a peer announced."""

    peer_id: PeerId
    hash: BlockHash
    header: BlockHeader
    received: float
    heads: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_id": str(self.peer_id),
            "hash": str(self.hash),
            "level": self.header.level,
            "proto": self.header.proto,
            "predecessor": str(self.header.predecessor),
            "timestamp": timestamp_to_json(self.header.timestamp),
            "fitness": [item.hex() for item in self.header.fitness],
            "received": round(self.received, 3),
            "heads_received": self.heads,
        }


@attrs.define
class Sighting:
    """A block or operation hash: who announced it first, then who else and how much later."""

    kind: Kind
    hash: BlockHash | OperationHash
    first_seen: float
    first_peer: PeerId
    level: int | None = None
    #: peer id -> delay after the first sighting (the first peer included, at 0)
    peers: dict[PeerId, float] = attrs.field(factory=dict)
    announcements: int = 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hash": str(self.hash),
            "kind": self.kind,
            "first_seen": round(self.first_seen, 3),
            "first_peer": str(self.first_peer),
            "announcements": self.announcements,
            "peers": [
                {"peer_id": str(peer), "delay": round(delay, 3)}
                for peer, delay in sorted(self.peers.items(), key=lambda item: item[1])
            ],
        }
        if self.level is not None:
            out["level"] = self.level
        return out


class DelayHistogram:
    """Cumulative counts of propagation delays, Prometheus style."""

    def __init__(self, buckets: tuple[float, ...] = DELAY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, delay: float) -> None:
        for index, bound in enumerate(self.buckets):
            if delay <= bound:
                self.counts[index] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += delay

    def cumulative(self) -> list[tuple[str, int]]:
        running = 0
        out = []
        for bound, count in zip([*map(str, self.buckets), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    @property
    def count(self) -> int:
        return sum(self.counts)


class Observer:
    """
    Records the shell gossip of a node's peers.  :meth:`watch` is the
    node's connection hook; :meth:`record` is the recording itself (the
    hook calls it for every message read), on the injected clock.
    """

    def __init__(self, config: ObserverConfig, clock: IReactorTime) -> None:
        self.config = config
        self.clock = clock
        self.chain_id: ChainId | None = config.chain_id
        self.heads: OrderedDict[PeerId, HeadSeen] = OrderedDict()
        self.blocks: OrderedDict[BlockHash, Sighting] = OrderedDict()
        self.operations: OrderedDict[OperationHash, Sighting] = OrderedDict()
        self.delays = {"block": DelayHistogram(), "operation": DelayHistogram()}
        self.counters = {
            "messages": 0,
            "current_head": 0,
            "current_branch": 0,
            "block_header": 0,
            "operation": 0,
            "other_chain": 0,
            "requests_sent": 0,
        }
        self._watched: dict[PeerId, tuple[P2P, P2PConnection]] = {}
        self._asked: set[PeerId] = set()

    # -- connections -----------------------------------------------------------------

    def watch(self, p2p: P2P, connection: P2PConnection) -> None:
        """The node's ``on_connection`` hook: ask for the chain's gossip, read and record."""
        peer_id = connection.peer_id
        self._watched[peer_id] = (p2p, connection)
        self._ask(peer_id)
        self._read(peer_id, connection)

    def _ask(self, peer_id: PeerId) -> None:
        if self.chain_id is None or peer_id in self._asked:
            return
        entry = self._watched.get(peer_id)
        if entry is None:
            return
        p2p, connection = entry
        self._asked.add(peer_id)
        for request in (GetCurrentBranch(self.chain_id), GetCurrentHead(self.chain_id)):
            if p2p.try_send(connection, request):
                self.counters["requests_sent"] += 1

    def _read(self, peer_id: PeerId, connection: Any) -> None:
        def received(message: object) -> None:
            try:
                self.record(peer_id, message)
            except Exception:  # a bug must not stop the reading of this peer
                _log.failure("observer could not record a message", event=ev.OBSERVER_ERROR)
            self._read(peer_id, connection)

        def closed(failure: Failure) -> None:
            failure.trap(ConnectionClosed, P2PError)
            self._watched.pop(peer_id, None)
            self._asked.discard(peer_id)

        connection.recv().addCallbacks(received, closed)

    # -- recording ---------------------------------------------------------------------

    def record(self, peer_id: PeerId, message: object) -> None:
        """Record one message a peer sent (anything not gossip is ignored)."""
        now = self.clock.seconds()
        self.counters["messages"] += 1
        chain = getattr(message, "chain_id", None)
        if isinstance(chain, ChainId):
            if self.chain_id is None and not isinstance(message, Deactivate):
                self._adopt(chain)
            if chain != self.chain_id:
                self.counters["other_chain"] += 1
                return
        if isinstance(message, CurrentHead):
            self.counters["current_head"] += 1
            self._head(peer_id, message.header, now)
            for operation in (*message.mempool.known_valid, *message.mempool.pending):
                self._sight("operation", operation, peer_id, now)
        elif isinstance(message, CurrentBranch):
            self.counters["current_branch"] += 1
            self._head(peer_id, message.locator.head_header, now)
        elif isinstance(message, BlockHeaderMessage):
            self.counters["block_header"] += 1
            header = message.header
            self._sight("block", header.hash(), peer_id, now, header.level)
        elif isinstance(message, OperationMessage):
            self.counters["operation"] += 1
            self._sight("operation", message.operation.hash(), peer_id, now)
        self._expire(now)

    def _adopt(self, chain: ChainId) -> None:
        self.chain_id = chain
        _log.info("observing chain {chain_id}", event=ev.OBSERVER_CHAIN, chain_id=str(chain))
        for peer_id in list(self._watched):
            self._ask(peer_id)

    def _head(self, peer_id: PeerId, header: BlockHeader, now: float) -> None:
        block = header.hash()
        seen = self.heads.get(peer_id)
        if seen is None:
            self.heads[peer_id] = HeadSeen(peer_id, block, header, now)
            while len(self.heads) > self.config.max_peers:
                self.heads.popitem(last=False)
        else:
            seen.hash, seen.header, seen.received = block, header, now
            seen.heads += 1
            self.heads.move_to_end(peer_id)
        self._sight("block", block, peer_id, now, header.level)

    def _sight(
        self,
        kind: Kind,
        key: BlockHash | OperationHash,
        peer_id: PeerId,
        now: float,
        level: int | None = None,
    ) -> None:
        table: OrderedDict[Any, Sighting] = self.blocks if kind == "block" else self.operations
        sighting = table.get(key)
        if sighting is None:
            table[key] = Sighting(kind, key, now, peer_id, level, {peer_id: 0.0})
            bound = self.config.max_blocks if kind == "block" else self.config.max_operations
            while len(table) > bound:
                table.popitem(last=False)
            return
        sighting.announcements += 1
        if peer_id in sighting.peers or len(sighting.peers) >= self.config.max_announcements:
            return
        delay = now - sighting.first_seen
        sighting.peers[peer_id] = delay
        self.delays[kind].observe(delay)

    def _expire(self, now: float) -> None:
        horizon = now - self.config.window
        for table in (self.blocks, self.operations):
            while table:
                oldest = next(iter(table.values()))
                if oldest.first_seen >= horizon:
                    break
                table.popitem(last=False)

    # -- queries -------------------------------------------------------------------------

    def heads_json(self) -> dict[str, Any]:
        self._expire(self.clock.seconds())
        heads = sorted(
            self.heads.values(), key=lambda h: (-h.header.level, h.received, str(h.peer_id))
        )
        return {
            "chain_id": None if self.chain_id is None else str(self.chain_id),
            "peers": [head.to_json() for head in heads],
        }

    def propagation(self, text: str) -> Sighting | None:
        """The sighting of a block (``B…``) or operation (``o…``) hash; ``ValueError`` else."""
        self._expire(self.clock.seconds())
        try:
            return self.blocks.get(BlockHash.from_b58check(text))
        except DecodingError:
            pass
        try:
            return self.operations.get(OperationHash.from_b58check(text))
        except DecodingError:
            pass
        raise ValueError(f"not a block or operation hash: {text[:80]!r}")

    def recent_blocks(self, limit: int) -> list[Sighting]:
        self._expire(self.clock.seconds())
        return list(reversed(self.blocks.values()))[:limit]

    def sizes(self) -> dict[str, int]:
        return {
            "heads": len(self.heads),
            "blocks": len(self.blocks),
            "operations": len(self.operations),
        }


__all__ = [
    "DELAY_BUCKETS",
    "DelayHistogram",
    "HeadSeen",
    "Observer",
    "ObserverConfig",
    "Sighting",
]
