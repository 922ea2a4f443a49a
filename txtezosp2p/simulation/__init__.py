"""
A deterministic network simulator: thousands of complete P2P stacks (the
real :class:`~txtezosp2p.p2p.P2P` objects, sessions with real crypto, pool,
ACL, connect handler, answerer, maintenance and swaps) in one process,
joined by in-memory transports on a simulated clock, so that an hour of
network time runs in seconds.  ``tezos-p2p simulate`` runs its scenarios;
docs/simulation.md explains them and how to read a report.
"""

from .clock import SimulatedCall, SimulatedClock
from .memory import MemoryClientEndpoint, MemoryNetwork, MemoryTransport
from .nodes import SimNode
from .report import Report
from .scenarios import SCENARIOS, broadcast, churn, formation, partition, sybil
from .simulator import Simulation, SimulationConfig, simulation_limits

__all__ = [
    "SCENARIOS",
    "MemoryClientEndpoint",
    "MemoryNetwork",
    "MemoryTransport",
    "Report",
    "SimNode",
    "SimulatedCall",
    "SimulatedClock",
    "Simulation",
    "SimulationConfig",
    "broadcast",
    "churn",
    "formation",
    "partition",
    "simulation_limits",
    "sybil",
]
