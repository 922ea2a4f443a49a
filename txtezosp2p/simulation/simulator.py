# -*- test-case-name: tests.test_simulation -*-
"""
:class:`Simulation`: N simulated nodes on one clock and one in-memory
network, and the measurements the reports are made of (degrees, connected
components, sampled diameter, time spent below ``min_connections``).
"""

from __future__ import annotations

import gc
import ipaddress
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import attrs
from twisted.internet.defer import Deferred

from ..limits import Limits
from ..p2p import P2P
from ..wire.ids import Point
from .clock import SimulatedClock
from .memory import MemoryNetwork
from .nodes import SimNode, seeded_identity


def simulation_limits(
    connections: int = 10, *, period: float = 120.0, admission: str = "elastic", **more: object
) -> Limits:
    """
    The limits of a simulated node for ``--connections N`` (Octez's rule:
    min N/2, expected N, max 3N/2, tables 8N), a maintenance ``period``, and
    an IP greylist of 16 KiB instead of 2 MiB (the default size would cost
    4 MiB per node).
    """
    table = (max(8 * connections, 2), max(8 * connections * 3 // 4, 1))
    params: dict[str, object] = {
        "min_connections": 1 if connections == 1 else connections // 2,
        "expected_connections": connections,
        "max_connections": 3 * connections // 2,
        "max_known_points": table,
        "max_known_peer_ids": table,
        "maintenance_idle_time": period,
        "ip_greylist_size_in_kilobytes": 16,
        "admission": admission,
    }
    params.update(more)
    return Limits(**params)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class SimulationConfig:
    """What a simulation is made of; every random choice derives from ``seed``."""

    nodes: int = 100
    limits: Limits = attrs.field(factory=simulation_limits)
    seed: int = 0
    #: One-way latency of each host's access link (seconds): a link's latency
    #: is the sum of its two ends' halves, drawn uniformly in this range.
    latency: tuple[float, float] = (0.005, 0.075)
    #: Nodes every joining node is given as ``--peer`` (the first ones).
    bootstrap: int = 1


class Simulation:
    """Simulated nodes, their clock and their network."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.limits = config.limits
        assert self.limits.maintenance_idle_time is not None, "a simulation needs maintenance"
        self.period: float = self.limits.maintenance_idle_time
        self.rng = random.Random(config.seed)
        self.clock = SimulatedClock()
        self._half_latency: dict[ipaddress.IPv6Address, float] = {}
        self.network = MemoryNetwork(self.clock, latency=self._latency)
        self.nodes: list[SimNode] = []
        self._by_peer: dict[object, SimNode] = {}
        self._used: set[ipaddress.IPv6Address] = set()
        self.add_nodes(config.nodes)

    # -- building ------------------------------------------------------------------

    def _latency(self, a: ipaddress.IPv6Address, b: ipaddress.IPv6Address) -> float:
        return self._half_latency.get(a, 0.02) + self._half_latency.get(b, 0.02)

    def _fresh_address(self, subnet: tuple[int, int] | None) -> ipaddress.IPv6Address:
        rng = self.rng
        while True:
            if subnet is None:
                first = rng.choice([n for n in range(1, 224) if n not in (10, 127, 172, 192)])
                second = rng.randrange(256)
            else:
                first, second = subnet
            address = ipaddress.IPv6Address(
                "::ffff:" + f"{first}.{second}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            )
            if address not in self._used:
                self._used.add(address)
                return address

    def add_nodes(
        self, count: int, *, kind: str = "honest", subnets: list[tuple[int, int]] | None = None
    ) -> list[SimNode]:
        """
        Create ``count`` nodes (offline).  Honest nodes get addresses spread
        over the whole IPv4 space; ``subnets`` confines them to a few /16
        networks (an attacker's addresses).
        """
        made = []
        low, high = self.config.latency
        for _ in range(count):
            subnet = self.rng.choice(subnets) if subnets else None
            address = self._fresh_address(subnet)
            node = SimNode(len(self.nodes), address, seeded_identity(self.rng), kind=kind)
            self._half_latency[address] = self.rng.uniform(low, high) / 2
            self.nodes.append(node)
            self._by_peer[node.identity.peer_id] = node
            made.append(node)
        return made

    @property
    def bootstrap_points(self) -> list[Point]:
        return [node.point for node in self.nodes[: self.config.bootstrap]]

    def honest(self) -> list[SimNode]:
        return [node for node in self.nodes if node.kind == "honest"]

    def online(self, kind: str | None = "honest") -> list[SimNode]:
        return [n for n in self.nodes if n.online and (kind is None or n.kind == kind)]

    def node_of(self, peer_id: object) -> SimNode | None:
        return self._by_peer.get(peer_id)

    # -- driving ---------------------------------------------------------------------

    def start(
        self,
        node: SimNode,
        *,
        limits: Limits | None = None,
        bootstrap: list[Point] | None = None,
        configure: Callable[[P2P], None] | None = None,
    ) -> P2P:
        return node.start(
            self.clock,
            self.network,
            limits or self.limits,
            bootstrap=self.bootstrap_points if bootstrap is None else bootstrap,
            rng=self.rng,
            configure=configure,
        )

    def stop(self, node: SimNode) -> Deferred[None]:
        return node.stop(self.network)

    def at(self, when: float, action: Callable[[], object]) -> None:
        """Run ``action`` at simulated time ``when``."""
        self.clock.callLater(max(when - self.clock.seconds(), 0.0), action)

    @contextmanager
    def _collecting_less(self) -> Iterator[None]:
        # A simulation makes and drops millions of objects while keeping a
        # large live heap: with the default thresholds the collector spends
        # a fifth of the time rescanning it.  Fewer young collections halve that.
        previous = gc.get_threshold()
        gc.set_threshold(max(previous[0], 10_000), previous[1], previous[2])
        try:
            yield
        finally:
            gc.set_threshold(*previous)

    def run_until(
        self,
        when: float,
        *,
        step: float | None = None,
        every: Callable[[float], None] | None = None,
    ) -> None:
        """Advance the clock to ``when``, calling ``every(now)`` each ``step`` seconds."""
        with self._collecting_less():
            if step is None or every is None:
                self.clock.run_until(when)
                return
            while self.clock.seconds() < when:
                self.clock.run_until(min(self.clock.seconds() + step, when))
                every(self.clock.seconds())

    @property
    def now(self) -> float:
        return self.clock.seconds()

    # -- measuring -------------------------------------------------------------------

    def edges(self, nodes: Iterable[SimNode] | None = None) -> dict[int, set[int]]:
        """The overlay as adjacency sets of node indices (online nodes only)."""
        chosen = list(self.online(None) if nodes is None else nodes)
        allowed = {node.index for node in chosen}
        graph: dict[int, set[int]] = {node.index: set() for node in chosen}
        for node in chosen:
            for peer_id in node.peers:
                other = self._by_peer.get(peer_id)
                if other is not None and other.index in allowed:
                    graph[node.index].add(other.index)
                    graph[other.index].add(node.index)
        return graph

    @staticmethod
    def components(graph: dict[int, set[int]]) -> list[int]:
        """Sizes of the connected components, largest first."""
        seen: set[int] = set()
        sizes = []
        for start in graph:
            if start in seen:
                continue
            seen.add(start)
            queue = deque([start])
            size = 0
            while queue:
                current = queue.popleft()
                size += 1
                for other in graph[current]:
                    if other not in seen:
                        seen.add(other)
                        queue.append(other)
            sizes.append(size)
        return sorted(sizes, reverse=True)

    def diameter(self, graph: dict[int, set[int]], samples: int = 16) -> int:
        """The largest eccentricity found from ``samples`` random starts (a lower bound)."""
        if not graph:
            return 0
        rng = random.Random(self.config.seed ^ 0x5EED)
        starts = rng.sample(sorted(graph), min(samples, len(graph)))
        best = 0
        for start in starts:
            depth = {start: 0}
            queue = deque([start])
            while queue:
                current = queue.popleft()
                for other in graph[current]:
                    if other not in depth:
                        depth[other] = depth[current] + 1
                        queue.append(other)
            best = max(best, *depth.values())
        return best


__all__ = ["Simulation", "SimulationConfig", "simulation_limits"]
