# -*- test-case-name: tests.test_simulation -*-
"""
What a simulation run reports: how long nodes took to reach
``min_connections`` (in maintenance periods), starved nodes, the degree
histogram, connected components, a sampled diameter, handshakes and
messages per node, wall time and peak memory; plus each scenario's own
figures.  As JSON (``--json``) or as a table for a terminal.
"""

from __future__ import annotations

import math
import resource
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from .nodes import SimNode
from .simulator import Simulation

#: A node still below ``min_connections`` this many periods after it joined
#: (or lost peers) is starved, if the network had room for it.
STARVED_AFTER = 3.0


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median, 99th percentile (nearest rank), maximum and count of ``values``."""
    if not values:
        return {"count": 0, "median": None, "p99": None, "max": None}
    ordered = sorted(values)
    rank = max(0, math.ceil(0.99 * len(ordered)) - 1)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "count": len(ordered),
        "median": round(median, 3),
        "p99": round(ordered[rank], 3),
        "max": round(ordered[-1], 3),
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)


def free_capacity(sim: Simulation, excluding: SimNode) -> bool:
    """
    Whether the network had room for one more node's ``min_connections``:
    enough other online honest nodes below ``max_connections``.
    """
    room = 0
    maximum = sim.limits.max_connections
    for node in sim.online():
        if node is not excluding and node.degree < maximum:
            room += 1
            if room >= sim.limits.min_connections:
                return True
    return False


@attrs.define
class Report:
    """The figures of one run."""

    scenario: str
    parameters: dict[str, Any]
    figures: dict[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "parameters": self.parameters, **self.figures}

    def table(self) -> str:
        """A human-readable rendering, one figure per line."""
        lines = [f"scenario {self.scenario}"]
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in self.parameters.items()))
        for key, value in self.figures.items():
            if isinstance(value, dict):
                inner = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
                lines.append(f"  {key:<28} {inner}")
            else:
                lines.append(f"  {key:<28} {_fmt(value)}")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, list) and len(value) > 12:
        return "[" + ", ".join(map(str, value[:12])) + f", … {len(value)} in all]"
    return str(value)


def overlay_figures(sim: Simulation, *, since: float = 0.0) -> dict[str, Any]:
    """The figures every scenario reports, measured now."""
    period = sim.period
    now = sim.now
    honest = sim.honest()
    joining = [
        ((e.end if e.end is not None else now) - e.start) / period
        for n in honest
        for e in n.episodes
        if e.joining and e.start >= since and e.end is not None
    ]
    recovering = [
        (e.end - e.start) / period
        for n in honest
        for e in n.episodes
        if not e.joining and e.start >= since and e.end is not None
    ]
    never = sum(
        1 for n in honest if n.online and n.open_episode is not None and n.open_episode.joining
    )
    starved = sorted(
        n.index
        for n in sim.online()
        if (episode := n.open_episode) is not None
        and (now - episode.start) / period >= STARVED_AFTER
        and free_capacity(sim, n)
    )
    online = sim.online()
    degrees = Counter(n.degree for n in online)
    graph = sim.edges(online)
    components = Simulation.components(graph)
    totals = [n.totals() for n in honest]
    maximum = sim.limits.max_connections
    return {
        "time_to_min_connections_periods": {**summary(joining), "not_yet": never},
        "recovery_to_min_connections_periods": summary(recovering),
        "starved_nodes": len(starved),
        "starved": starved,
        "below_min_now": sum(1 for n in online if n.degree < sim.limits.min_connections),
        "degree_histogram": dict(sorted(degrees.items())),
        "max_degree_ever": max((n.max_degree for n in honest), default=0),
        "nodes_ever_above_max_connections": sum(1 for n in honest if n.max_degree > maximum),
        "components": len(components),
        "largest_component": components[0] if components else 0,
        "diameter_sampled": sim.diameter(graph),
        "handshakes_per_node": summary([float(h) for h, _ in totals]),
        "messages_per_node": summary([float(m) for _, m in totals]),
    }


def run_figures(sim: Simulation, wall: float) -> dict[str, Any]:
    return {
        "simulated_seconds": round(sim.now, 1),
        "simulated_periods": round(sim.now / sim.period, 2),
        "wall_seconds": round(wall, 2),
        "peak_rss_mib": peak_rss_mib(),
        "simulated_events": sim.clock.calls_run,
    }


__all__ = ["STARVED_AFTER", "Report", "free_capacity", "overlay_figures", "summary"]
