# -*- test-case-name: tests.test_simulation -*-
"""
The network simulator (:mod:`txtezosp2p.simulation`): its clock, its
in-memory links, real P2P stacks dialling through the endpoint-factory seam
with no socket, the scenarios on small networks (one whose answer is known:
the issue's twelve nodes), determinism per seed, and ``tezos-p2p simulate``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txtezosp2p.simulation import (
    MemoryNetwork,
    MemoryTransport,
    SimulatedClock,
    Simulation,
    SimulationConfig,
    broadcast,
    churn,
    formation,
    partition,
    simulation_limits,
    sybil,
)
from txtezosp2p.wire.ids import Point, to_ipv6

from .test_cli import run

A = to_ipv6("10.0.0.1")
B = to_ipv6("10.0.0.2")


class ClockTests(SynchronousTestCase):
    def test_order_and_time(self) -> None:
        clock = SimulatedClock()
        verifyObject(IReactorTime, clock)
        seen: list[tuple[str, float]] = []
        clock.callLater(2, lambda: seen.append(("b", clock.seconds())))
        clock.callLater(1, lambda: seen.append(("a", clock.seconds())))
        clock.callLater(2, lambda: seen.append(("c", clock.seconds())))
        clock.advance(1.5)
        self.assertEqual(seen, [("a", 1.0)])
        self.assertEqual(clock.seconds(), 1.5)
        clock.advance(10)
        self.assertEqual(seen, [("a", 1.0), ("b", 2.0), ("c", 2.0)])
        self.assertEqual(clock.seconds(), 11.5)
        self.assertIsNone(clock.next_time())

    def test_cancel_reset_delay(self) -> None:
        clock = SimulatedClock()
        seen: list[float] = []
        call = clock.callLater(5, lambda: seen.append(clock.seconds()))
        verifyObject(IDelayedCall, call)
        call.reset(1)
        call.delay(2)
        self.assertEqual(call.getTime(), 3.0)
        other = clock.callLater(4, seen.append, -1.0)
        other.cancel()
        self.assertFalse(other.active())
        self.assertEqual(clock.pending, 1)
        clock.advance(10)
        self.assertEqual(seen, [3.0])
        self.assertFalse(call.active())

    def test_failing_call_is_logged(self) -> None:
        clock = SimulatedClock()
        seen: list[int] = []
        clock.callLater(1, lambda: 1 / 0)
        clock.callLater(2, seen.append, 2)
        clock.advance(3)
        self.assertEqual(seen, [2])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class _Recorder(Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.lost: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        self.lost = reason


class MemoryNetworkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = SimulatedClock()
        self.net = MemoryNetwork(self.clock, latency=0.125)
        self.servers: list[_Recorder] = []

        def server() -> _Recorder:
            protocol = _Recorder()
            self.servers.append(protocol)
            return protocol

        self.net.listen(Point(B, 9732), Factory.forProtocol(server))

    def dial(self, point: Point | None = None) -> Any:
        endpoint = self.net.endpoint_factory(A)(point or Point(B, 9732))
        verifyObject(IStreamClientEndpoint, endpoint)
        return endpoint.connect(Factory.forProtocol(_Recorder))

    def test_bytes_arrive_in_order_after_the_latency(self) -> None:
        connecting = self.dial()
        self.clock.advance(0.125)
        self.assertNoResult(connecting)  # a round trip
        self.clock.advance(0.125)
        client = self.successResultOf(connecting)
        transport = client.transport
        for interface in (ITransport, IConsumer, IPushProducer):
            verifyObject(interface, transport)
        self.assertEqual(transport.getPeer().host, "10.0.0.2")
        transport.write(b"one ")
        transport.writeSequence([b"two ", b"three"])
        self.clock.advance(0.0625)
        self.assertEqual(self.servers[0].data, b"")
        self.clock.advance(0.0625)
        self.assertEqual(self.servers[0].data, b"one two three")
        server_transport = cast(MemoryTransport, self.servers[0].transport)
        self.assertEqual(cast(IPv4Address, server_transport.getPeer()).host, "10.0.0.1")

    def test_refused_and_partitioned(self) -> None:
        refused = self.dial(Point(B, 1))
        self.clock.advance(1)
        self.failureResultOf(refused, ConnectionRefusedError)
        self.net.partition(lambda address: 0 if address == A else 1)
        lost = self.dial()
        self.clock.advance(100)
        self.assertNoResult(lost)  # never answered
        lost.cancel()
        self.failureResultOf(lost, CancelledError)
        self.net.heal()
        self.assertEqual(self.net.dropped, 1)

    def test_close_delivers_then_ends(self) -> None:
        connecting = self.dial()
        self.clock.advance(1)
        client = self.successResultOf(connecting)
        client.transport.write(b"last words")
        client.transport.loseConnection()
        self.clock.advance(1)
        server = self.servers[0]
        self.assertEqual(server.data, b"last words")
        assert server.lost is not None and client.lost is not None
        server.lost.trap(ConnectionDone)
        self.assertEqual(self.net.links, {})

    def test_paused_reader_holds_bytes(self) -> None:
        connecting = self.dial()
        self.clock.advance(1)
        client = self.successResultOf(connecting)
        server = self.servers[0]
        transport = cast(MemoryTransport, server.transport)
        transport.pauseProducing()
        client.transport.write(b"held")
        client.transport.loseConnection()
        self.clock.advance(1)
        self.assertEqual(server.data, b"")
        self.assertIsNone(server.lost)  # the end of stream waits behind the bytes
        transport.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(server.data, b"held")
        self.assertIsNotNone(server.lost)

    def test_partition_cuts_links(self) -> None:
        connecting = self.dial()
        self.clock.advance(1)
        client = self.successResultOf(connecting)
        self.assertEqual(self.net.partition(lambda address: int(address == A)), 1)
        assert client.lost is not None
        client.lost.trap(ConnectionLost)
        self.assertIsNotNone(self.servers[0].lost)


def small(nodes: int = 12, connections: int = 6, **more: Any) -> SimulationConfig:
    return SimulationConfig(nodes=nodes, limits=simulation_limits(connections, period=25.0, **more))


class StackTests(SynchronousTestCase):
    def test_real_stacks_without_sockets(self) -> None:
        """Two P2P stacks connect, exchange a message and part, through the seam alone."""
        sim = Simulation(small(nodes=2))
        a, b = sim.nodes
        sim.start(a, bootstrap=[])
        sim.start(b, bootstrap=[a.point])
        sim.run_until(5.0)
        self.assertEqual((a.degree, b.degree), (1, 1))
        assert a.p2p is not None and b.p2p is not None
        connection = b.p2p.connections()[0]
        self.assertEqual(connection.peer_id, a.identity.peer_id)
        self.assertGreater(b.p2p.connection_stat(connection).total_sent, 0)
        sim.stop(a)
        sim.run_until(6.0)
        self.assertEqual(b.degree, 0)


class ScenarioTests(SynchronousTestCase):
    def test_twelve_nodes_octez_starves_two(self) -> None:
        """
        The issue's network (12 nodes joining one after the other, 5 s
        apart, ``--connections 6``): Octez's rule ends with nine nodes at
        ``max_threshold`` (8) and the last two starved; ours starves none.
        """
        octez = formation(small(admission="octez"), periods=6, join_rate=0.2)
        self.assertEqual(octez.figures["starved_nodes"], 2)
        self.assertEqual(octez.figures["degree_histogram"].get(8), 9)
        elastic = formation(small(), periods=6, join_rate=0.2)
        self.assertEqual(elastic.figures["starved_nodes"], 0)
        self.assertEqual(elastic.figures["below_min_now"], 0)
        self.assertLessEqual(elastic.figures["max_degree_ever"], 9)
        self.assertLessEqual(elastic.figures["time_to_min_connections_periods"]["max"], 3)

    def test_deterministic_per_seed(self) -> None:
        def figures(seed: int) -> dict[str, Any]:
            config = SimulationConfig(nodes=20, seed=seed, limits=simulation_limits(6, period=25.0))
            report = churn(config, periods=2, warmup=2, settle=1).to_json()
            for volatile in ("wall_seconds", "peak_rss_mib"):
                report.pop(volatile)
            return report

        self.assertEqual(figures(3), figures(3))
        self.assertNotEqual(figures(3), figures(4))

    def test_churn_partition_sybil_broadcast(self) -> None:
        config = small(nodes=24)
        report = churn(config, periods=2, warmup=2, settle=2)
        self.assertEqual(report.figures["starved_nodes"], 0)
        self.assertLessEqual(report.figures["max_degree_ever"], 9)
        self.assertGreater(report.figures["departures"], 0)
        split = partition(config, warmup=2, split=1, after=3)
        self.assertEqual(split.figures["components_during_split"], 2)
        self.assertIsNotNone(split.figures["periods_to_one_component_after_heal"])
        attacked = sybil(config, fraction=0.25, warmup=2, periods=2)
        self.assertEqual(attacked.parameters["attackers"], 6)
        octez = sybil(small(nodes=24, admission="octez"), fraction=0.25, warmup=2, periods=2)
        key = "honest_nodes_with_honest_majority"
        self.assertGreater(attacked.figures[key], octez.figures[key])
        flood = broadcast(config, warmup=2)
        self.assertEqual(flood.figures["broadcasts"][0]["reach"], 1.0)
        self.assertEqual(flood.figures["components"], 1)

    def test_healed_partition_joins_by_exploration(self) -> None:
        """
        Forty nodes, every one inside its band when the halves meet again:
        Octez's maintenance never dials, so the halves stay apart; the
        elastic policy's exploration joins them within the first step.
        """
        figures = {
            admission: partition(
                SimulationConfig(nodes=40, limits=simulation_limits(10, admission=admission)),
                warmup=5,
                split=3,
                after=2,
            ).figures
            for admission in ("elastic", "octez")
        }
        self.assertEqual(figures["elastic"]["components"], 1)
        self.assertLessEqual(figures["elastic"]["periods_to_one_component_after_heal"], 1.0)
        self.assertEqual(figures["octez"]["components"], 2)
        self.assertIsNone(figures["octez"]["periods_to_one_component_after_heal"])


class CommandTests(SynchronousTestCase):
    def test_simulate_json(self) -> None:
        """``tezos-p2p simulate``: same JSON in two processes with different hash seeds."""
        args = (
            "simulate", "formation", "--nodes", "12", "--connections", "6", "--period", "25",
            "--join-rate", "0.2", "--periods", "6", "--admission", "octez", "--json",
        )  # fmt: skip
        outputs = []
        for hash_seed in ("1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": hash_seed}
            result = subprocess.run(
                [sys.executable, "-m", "txtezosp2p.node.cli", *args],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            report = json.loads(result.stdout)
            report.pop("wall_seconds")
            report.pop("peak_rss_mib")
            outputs.append(report)
        self.assertEqual(outputs[0], outputs[1])
        self.assertEqual(outputs[0]["starved_nodes"], 2)

    def test_simulate_table(self) -> None:
        result = run(
            "simulate", "broadcast", "--nodes", "10", "--connections", "4", "--warmup", "1"
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("scenario broadcast", result.stdout)
        self.assertIn("starved_nodes", result.stdout)


class OverlayBenchTests(SynchronousTestCase):
    def test_markdown_tables(self) -> None:
        """``python -m bench.overlay --markdown`` renders every section of its JSON."""
        from bench.overlay import markdown

        config = small(nodes=12)
        reports = {
            "churn": churn(config, periods=1, warmup=1, settle=1),
            "partition": partition(config, warmup=1, split=1, after=1),
            "sybil": sybil(config, fraction=0.25, warmup=1, periods=1),
            "broadcast": broadcast(config, warmup=1),
        }
        results: dict[str, Any] = {
            name: {"elastic": report.to_json(), "octez": report.to_json()}
            for name, report in reports.items()
        }
        results["scale"] = {"churn": reports["churn"].to_json()}
        results["small"] = [
            {
                "nodes": 12,
                "connections": 6,
                "admission": "octez",
                "seeds": 1,
                "starved_total": 2,
                "runs_with_starved": 1,
                "starved_max": 2,
                "handshakes_per_node_median": 30,
                "max_degree_ever": 9,
            }
        ]
        text = markdown(json.loads(json.dumps(results)))
        for heading in ("small", "churn", "partition", "sybil", "broadcast", "scale"):
            self.assertIn(f"#### {heading}", text)
        self.assertIn("| starved nodes | 0 | 0 |", text)
        self.assertIn("| 12 | 6 | octez | 1 of 1 | 2 | 2 | 30 | 9 |", text)
