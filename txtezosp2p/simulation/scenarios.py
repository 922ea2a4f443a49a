# -*- test-case-name: tests.test_simulation -*-
"""
The scenarios of ``tezos-p2p simulate``, each a function of a
:class:`~.simulator.SimulationConfig` and its own parameters returning a
:class:`~.report.Report`:

* :func:`formation`: every node is given the first node as ``--peer``; all
  join at once, or one after the other at ``join_rate`` nodes per second;
* :func:`churn`: after formation, a ``fraction`` of the nodes leaves at the
  start of every period and rejoins a little later, remembering the points
  it knew (as ``peers.json`` does);
* :func:`partition`: after formation the network is split into two halves,
  then healed; how long until it is one component again;
* :func:`sybil`: after formation, attacker nodes (``fraction`` of the
  honest ones, from a few /16 networks) join; they accept everyone, dial
  every honest node and advertise only each other; how many honest
  connections honest nodes keep;
* :func:`broadcast`: after formation, one node floods a message that every
  node relays once; reach and hops.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..p2p import P2P
from .nodes import Gossip, SimNode
from .report import Report, overlay_figures, run_figures, summary
from .simulator import Simulation, SimulationConfig

Progress = Callable[[str], None]


def _parameters(config: SimulationConfig, **more: Any) -> dict[str, Any]:
    limits = config.limits
    return {
        "nodes": config.nodes,
        "seed": config.seed,
        "admission": limits.admission,
        "connections": [
            limits.min_connections,
            limits.expected_connections,
            limits.max_connections,
        ],
        "period": limits.maintenance_idle_time,
        "bootstrap": config.bootstrap,
        **more,
    }


def _starter(sim: Simulation, node: SimNode) -> Callable[[], object]:
    return lambda: sim.start(node)


def _form(sim: Simulation, join_rate: float | None) -> float:
    """Start every node (the bootstrap nodes first); returns when the last one joins."""
    rng = sim.rng
    when = 0.0
    for node in sim.honest():
        if join_rate is None:
            start = 0.0 if node.index < sim.config.bootstrap else rng.uniform(0.0, 1.0)
        else:
            start = when
            when += 1.0 / join_rate
        sim.at(start, _starter(sim, node))
        when = max(when, start)
    return when


def _activity(sim: Simulation) -> Counter[str]:
    """
    How much the overlay moves: connections made, successful swaps, and
    maintenance steps out of the band (too few or too many), so far.
    """
    total: Counter[str] = Counter()
    for node in sim.nodes:
        total["new_connections"] += node.connections_made
        if node.p2p is not None:
            total["swaps"] += node.p2p.counters["swap_success"]
            total["maintenance_steps"] += node.p2p.counters["maintenance_started"]
    return total


def _ticker(sim: Simulation, progress: Progress | None, label: str) -> Callable[[float], None]:
    def tick(now: float) -> None:
        if progress is not None:
            online = sim.online()
            below = sum(1 for n in online if n.degree < sim.limits.min_connections)
            progress(
                f"{label}: t={now / sim.period:6.2f} periods, {len(online)} online, "
                f"{below} below min, {sim.clock.calls_run} events"
            )

    return tick


def formation(
    config: SimulationConfig,
    *,
    periods: float = 10.0,
    join_rate: float | None = None,
    progress: Progress | None = None,
) -> Report:
    """Formation from one bootstrap point, all at once or at ``join_rate`` nodes/s."""
    started = time.perf_counter()
    sim = Simulation(config)
    last = _form(sim, join_rate)
    end = last + periods * sim.period
    tick = _ticker(sim, progress, "formation")
    # the last periods (two at most) measure how much the formed network still moves
    window = min(2.0, periods / 2) * sim.period
    sim.run_until(end - window, step=sim.period, every=tick)
    before = _activity(sim)
    sim.run_until(end, step=sim.period, every=tick)
    after = _activity(sim)
    report = Report("formation", _parameters(config, periods=periods, join_rate=join_rate))
    report.figures.update(overlay_figures(sim))
    scale = max(len(sim.online()), 1) * (window / sim.period)
    report.figures["per_node_per_period_at_the_end"] = {
        kind: round((after[kind] - before[kind]) / scale, 3) for kind in after
    }
    report.figures.update(run_figures(sim, time.perf_counter() - started))
    return report


def churn(
    config: SimulationConfig,
    *,
    fraction: float = 0.3,
    periods: int = 10,
    warmup: float = 5.0,
    downtime: float = 0.25,
    settle: float = 3.0,
    progress: Progress | None = None,
) -> Report:
    """
    Formation for ``warmup`` periods, then ``periods`` periods of churn: at
    the start of each, ``fraction`` of the nodes (never a bootstrap node)
    leaves, to rejoin ``downtime`` periods later; then ``settle`` calm periods.
    """
    started = time.perf_counter()
    sim = Simulation(config)
    _form(sim, None)
    tick = _ticker(sim, progress, "churn")
    sim.run_until(warmup * sim.period, step=sim.period, every=tick)
    churn_start = sim.now
    left = 0
    for _ in range(periods):
        candidates = [n for n in sim.online() if n.index >= config.bootstrap]
        leaving = sim.rng.sample(candidates, round(fraction * len(candidates)))
        for node in leaving:
            sim.stop(node)
            sim.at(sim.now + downtime * sim.period, _starter(sim, node))
        left += len(leaving)
        sim.run_until(sim.now + sim.period, step=sim.period, every=tick)
    sim.run_until(sim.now + settle * sim.period, step=sim.period, every=tick)
    report = Report(
        "churn",
        _parameters(config, fraction=fraction, periods=periods, warmup=warmup, downtime=downtime),
    )
    report.figures.update(overlay_figures(sim, since=churn_start))
    report.figures["departures"] = left
    report.figures.update(run_figures(sim, time.perf_counter() - started))
    return report


def partition(
    config: SimulationConfig,
    *,
    warmup: float = 5.0,
    split: float = 3.0,
    after: float = 5.0,
    progress: Progress | None = None,
) -> Report:
    """Formation, a split into two halves for ``split`` periods, then the heal."""
    started = time.perf_counter()
    sim = Simulation(config)
    _form(sim, None)
    tick = _ticker(sim, progress, "partition")
    sim.run_until(warmup * sim.period, step=sim.period, every=tick)
    half = {node.address: node.index % 2 for node in sim.nodes}
    cut = sim.network.partition(lambda address: half.get(address, 0))
    sim.run_until(sim.now + split * sim.period, step=sim.period, every=tick)
    during = Simulation.components(sim.edges())
    sim.network.heal()
    healed_at = sim.now
    rejoined: float | None = None
    samples: list[tuple[float, int]] = []

    def watch(now: float) -> None:
        nonlocal rejoined
        count = len(Simulation.components(sim.edges()))
        samples.append((round((now - healed_at) / sim.period, 2), count))
        if count == 1 and rejoined is None:
            rejoined = (now - healed_at) / sim.period
        tick(now)

    sim.run_until(healed_at + after * sim.period, step=sim.period / 10, every=watch)
    report = Report("partition", _parameters(config, warmup=warmup, split=split, after=after))
    report.figures["links_cut"] = cut
    report.figures["components_during_split"] = len(during)
    report.figures["periods_to_one_component_after_heal"] = (
        None if rejoined is None else round(rejoined, 2)
    )
    report.figures["components_after_heal"] = samples[:: max(1, len(samples) // 10)]
    report.figures.update(overlay_figures(sim, since=healed_at))
    report.figures.update(run_figures(sim, time.perf_counter() - started))
    return report


def _sybil_configure(sybil_points: list[Any]) -> Callable[[P2P], None]:
    def configure(p2p: P2P) -> None:
        # the attack: advertise (and offer as Nack alternatives) only each other
        def only_sybils(size: int = 50, ignore_private: bool = True) -> list[Any]:
            return [point for point in sybil_points if point != p2p.handler.session_config]

        p2p.pool.list_known_points = only_sybils  # type: ignore[method-assign]

    return configure


def sybil(
    config: SimulationConfig,
    *,
    fraction: float = 0.1,
    warmup: float = 5.0,
    periods: float = 10.0,
    subnets: int = 4,
    progress: Progress | None = None,
) -> Report:
    """
    Honest formation, then ``fraction`` * N attackers from ``subnets`` /16
    networks that know every honest point, accept every connection, dial
    every honest node and advertise only each other.
    """
    started = time.perf_counter()
    sim = Simulation(config)
    _form(sim, None)
    tick = _ticker(sim, progress, "sybil")
    sim.run_until(warmup * sim.period, step=sim.period, every=tick)
    count = max(1, round(fraction * config.nodes))
    networks = [(203, n) for n in range(subnets)]
    attackers = sim.add_nodes(count, kind="sybil", subnets=networks)
    sybil_points = [node.point for node in attackers]
    honest_points = [node.point for node in sim.honest()]
    greedy = config.limits.replace(
        min_connections=10_000,
        expected_connections=10_000,
        max_connections=10_000,
        max_incoming_connections=10_000,
        max_known_points=None,
        max_known_peer_ids=None,
    )
    configure = _sybil_configure(sybil_points)
    for node in attackers:
        node.remembered = honest_points + sybil_points
        sim.start(node, limits=greedy, bootstrap=[], configure=configure)
    sim.run_until(sim.now + periods * sim.period, step=sim.period, every=tick)
    shares = []
    for node in sim.online():
        total = node.degree
        honest = sum(
            1
            for peer in node.peers
            if (other := sim.node_of(peer)) is not None and other.kind == "honest"
        )
        shares.append(honest / total if total else 0.0)
    honest_graph = sim.edges(sim.online())
    report = Report(
        "sybil",
        _parameters(config, fraction=fraction, attackers=count, warmup=warmup, periods=periods),
    )
    report.figures["honest_nodes_with_honest_majority"] = round(
        sum(1 for share in shares if share > 0.5) / max(len(shares), 1), 4
    )
    report.figures["honest_share_of_connections"] = summary(shares)
    report.figures["honest_nodes_without_honest_peer"] = sum(1 for s in shares if s == 0.0)
    report.figures["honest_components"] = len(Simulation.components(honest_graph))
    report.figures.update(overlay_figures(sim))
    report.figures.update(run_figures(sim, time.perf_counter() - started))
    return report


def broadcast(
    config: SimulationConfig,
    *,
    warmup: float = 5.0,
    messages: int = 1,
    wait: float = 1.0,
    progress: Progress | None = None,
) -> Report:
    """
    Formation, then ``messages`` floods from random nodes, one period apart:
    each node relays a message to all its other peers the first time it sees
    it.  Reach (fraction of online nodes), hops, and time to 50/90/100 %.
    """
    started = time.perf_counter()
    sim = Simulation(config)
    _form(sim, None)
    tick = _ticker(sim, progress, "broadcast")
    sim.run_until(warmup * sim.period, step=sim.period, every=tick)
    first_seen: dict[int, dict[int, float]] = {}

    def relay(node: SimNode, p2p: P2P) -> None:
        def handle(received: tuple[Any, object]) -> None:
            connection, message = received
            if isinstance(message, Gossip) and message.ident not in node.seen:
                node.seen[message.ident] = message.hops + 1
                first_seen.setdefault(message.ident, {})[node.index] = sim.now
                p2p.broadcast(
                    None, Gossip(message.ident, message.hops + 1), except_=lambda c: c is connection
                )
            listen()

        def listen() -> None:
            if node.p2p is p2p:
                p2p.recv_any().addCallbacks(handle, lambda _: None)

        listen()

    for node in sim.online():
        assert node.p2p is not None
        relay(node, node.p2p)
    results = []
    for ident in range(messages):
        source = sim.rng.choice(sim.online())
        assert source.p2p is not None
        source.seen[ident] = 0
        sent_at = sim.now
        first_seen[ident] = {source.index: sent_at}
        source.p2p.broadcast(None, Gossip(ident, 0))
        sim.run_until(sim.now + wait * sim.period, step=sim.period, every=tick)
        online = sim.online()
        times = sorted(t - sent_at for t in first_seen[ident].values())
        hops = Counter(n.seen[ident] for n in online if ident in n.seen)

        def time_to(share: float, times: list[float] = times, total: int = len(online)) -> Any:
            needed = max(1, round(share * total))
            return round(times[needed - 1], 3) if len(times) >= needed else None

        results.append(
            {
                "source": source.index,
                "reach": round(len(first_seen[ident]) / max(len(online), 1), 4),
                "hops": dict(sorted(hops.items())),
                "seconds_to_50%": time_to(0.5),
                "seconds_to_90%": time_to(0.9),
                "seconds_to_100%": time_to(1.0),
            }
        )
    report = Report("broadcast", _parameters(config, warmup=warmup, messages=messages))
    report.figures["broadcasts"] = results
    report.figures.update(overlay_figures(sim))
    report.figures.update(run_figures(sim, time.perf_counter() - started))
    return report


SCENARIOS: dict[str, Callable[..., Report]] = {
    "formation": formation,
    "churn": churn,
    "partition": partition,
    "sybil": sybil,
    "broadcast": broadcast,
}

__all__ = ["SCENARIOS", "broadcast", "churn", "formation", "partition", "sybil"]
