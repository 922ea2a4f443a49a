# -*- test-case-name: tests.test_observer -*-
"""
Observer mode (``txtezosp2p.observer``, ``txtezosp2p.node.observer_api``, the metrics).

* The recording on a simulated clock: heads per peer, first sightings and
  propagation delays, the histogram, the chain learned from a peer or
  fixed, other chains ignored, every window bound.
* A node in observer mode on loopback with three gossiping peers and its
  admin API over real HTTP: it asks each peer for its chain's branch and
  head (and answers nothing), records who announced a block first and the
  delays of the others, and serves ``/observer/*`` and the histogram in
  ``/metrics``.
* ``twistd tezos-p2p --observe`` options.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.limits import Limits
from txtezosp2p.node import Node, NodeConfig, NodeOptions
from txtezosp2p.node.metrics import node_registry, register_observer, render
from txtezosp2p.node.tap import CommandOptions
from txtezosp2p.observer import DelayHistogram, Observer, ObserverConfig
from txtezosp2p.p2p import P2P, P2PConfig
from txtezosp2p.testing import unchecked_identity
from txtezosp2p.wire.shell import (
    BlockHeaderMessage,
    CurrentBranch,
    CurrentHead,
    GetCurrentBranch,
    GetCurrentHead,
    OperationMessage,
    shell_message_encodings,
)
from txtezosp2p.wire.shell_types import (
    BlockHash,
    BlockHeader,
    BlockLocator,
    ChainId,
    ContextHash,
    Mempool,
    Operation,
    OperationHash,
    OperationListListHash,
)

from .test_admin import non_persistent_http
from .test_p2p import VERSIONS, point_of

CHAIN = ChainId.from_b58check("NetXdQprcVkpaWU")
OTHER = ChainId(b"\x00\x00\x00\x01")


def header(level: int, data: bytes = b"") -> BlockHeader:
    return BlockHeader(
        level=level,
        proto=2,
        predecessor=BlockHash(level.to_bytes(32, "big")),
        timestamp=1_700_000_000 + level,
        validation_pass=4,
        operations_hash=OperationListListHash(b"\x01" * 32),
        fitness=(b"\x02", level.to_bytes(4, "big")),
        context=ContextHash(b"\x03" * 32),
        protocol_data=data,
    )


def op_hash(n: int) -> OperationHash:
    return OperationHash(n.to_bytes(32, "big"))


class PeerIds:
    def __init__(self) -> None:
        self.a, self.b, self.c = (unchecked_identity().peer_id for _ in range(3))


class RecordingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.peers = PeerIds()

    def observer(self, **config: Any) -> Observer:
        return Observer(ObserverConfig(**config), self.clock)

    def test_heads_and_propagation(self) -> None:
        observer = self.observer(chain_id=CHAIN)
        p = self.peers
        head = header(100)
        observer.record(p.a, CurrentHead(CHAIN, head, Mempool((op_hash(1),), (op_hash(2),))))
        self.clock.advance(0.3)
        observer.record(p.b, CurrentHead(CHAIN, head))
        self.clock.advance(1.2)
        observer.record(p.c, CurrentBranch(CHAIN, BlockLocator(head, ())))
        observer.record(p.a, CurrentHead(CHAIN, head))  # a repeat: counted, no new delay
        observer.record(p.b, CurrentHead(CHAIN, header(101), Mempool((), (op_hash(1),))))
        sighting = observer.propagation(str(head.hash()))
        assert sighting is not None
        value = sighting.to_json()
        self.assertEqual(value["first_peer"], str(p.a))
        self.assertEqual((value["kind"], value["level"], value["announcements"]), ("block", 100, 4))
        self.assertEqual(
            [(e["peer_id"], e["delay"]) for e in value["peers"]],
            [(str(p.a), 0.0), (str(p.b), 0.3), (str(p.c), 1.5)],
        )
        operation = observer.propagation(str(op_hash(1)))
        assert operation is not None
        self.assertEqual(operation.first_peer, p.a)
        self.assertEqual(operation.peers, {p.a: 0.0, p.b: 1.5})
        heads = observer.heads_json()
        self.assertEqual(heads["chain_id"], "NetXdQprcVkpaWU")
        rows = [(h["peer_id"], h["level"], h["heads_received"]) for h in heads["peers"]]
        self.assertEqual(rows[0], (str(p.b), 101, 2))  # highest first
        self.assertEqual(set(rows[1:]), {(str(p.a), 100, 2), (str(p.c), 100, 1)})
        self.assertEqual(heads["peers"][0]["hash"], str(header(101).hash()))
        self.assertEqual(heads["peers"][0]["timestamp"], "2023-11-14T22:15:01Z")
        block = observer.delays["block"]
        self.assertEqual(block.count, 2)  # b after 0.3 s, c after 1.5 s
        self.assertAlmostEqual(block.total, 1.8)
        self.assertEqual(dict(block.cumulative())["0.5"], 1)
        self.assertEqual(dict(block.cumulative())["2.0"], 2)
        self.assertEqual(observer.delays["operation"].count, 1)

    def test_block_headers_and_operations(self) -> None:
        observer = self.observer(chain_id=CHAIN)
        p = self.peers
        operation = Operation(BlockHash(b"\x05" * 32), b"payload")
        observer.record(p.a, BlockHeaderMessage(header(7)))
        observer.record(p.b, OperationMessage(operation))
        self.clock.advance(2)
        observer.record(p.a, OperationMessage(operation))
        found = observer.propagation(str(operation.hash()))
        assert found is not None
        self.assertEqual((found.first_peer, found.peers[p.a]), (p.b, 2.0))
        self.assertEqual([s.level for s in observer.recent_blocks(10)], [7])
        self.assertIsNone(observer.propagation(str(BlockHash(b"\x09" * 32))))
        self.assertRaises(ValueError, observer.propagation, "not a hash")
        self.assertRaises(ValueError, observer.propagation, str(CHAIN))

    def test_chain_learned_and_other_chains(self) -> None:
        """The chain of the first message naming one is followed; other chains are not."""
        observer = self.observer()
        p = self.peers
        observer.record(p.a, CurrentHead(OTHER, header(1)))  # names a chain: adopted
        self.assertEqual(observer.chain_id, OTHER)
        observer.record(p.b, CurrentHead(CHAIN, header(2)))
        self.assertEqual(observer.counters["other_chain"], 1)
        self.assertEqual(list(observer.heads), [p.a])

    def test_bounds(self) -> None:
        observer = self.observer(
            chain_id=CHAIN, max_blocks=3, max_operations=2, max_peers=2, max_announcements=2
        )
        p = self.peers
        for level in range(5):
            observer.record(p.a, BlockHeaderMessage(header(level)))
        self.assertEqual([s.level for s in observer.recent_blocks(10)], [4, 3, 2])
        observer.record(p.a, CurrentHead(CHAIN, header(9), Mempool(tuple(map(op_hash, range(5))))))
        self.assertEqual(len(observer.operations), 2)
        for peer in (p.a, p.b, p.c):
            observer.record(peer, CurrentHead(CHAIN, header(9)))
        self.assertEqual(list(observer.heads), [p.b, p.c])  # the least recent peer dropped
        sighting = observer.propagation(str(header(9).hash()))
        assert sighting is not None
        self.assertEqual(len(sighting.peers), 2)
        self.assertEqual(sighting.announcements, 4)

    def test_window(self) -> None:
        observer = self.observer(chain_id=CHAIN, window=60.0)
        observer.record(self.peers.a, BlockHeaderMessage(header(1)))
        self.clock.advance(30)
        observer.record(self.peers.a, BlockHeaderMessage(header(2)))
        self.clock.advance(31)
        self.assertEqual([s.level for s in observer.recent_blocks(10)], [2])
        self.assertIsNone(observer.propagation(str(header(1).hash())))

    def test_config_checks(self) -> None:
        self.assertRaises(ValueError, ObserverConfig, max_blocks=0)
        self.assertRaises(ValueError, ObserverConfig, window=0)

    def test_histogram(self) -> None:
        histogram = DelayHistogram((1.0, 2.0))
        for delay in (0.5, 1.0, 1.5, 7.0):
            histogram.observe(delay)
        self.assertEqual(histogram.cumulative(), [("1.0", 2), ("2.0", 3), ("+Inf", 4)])
        self.assertEqual(histogram.total, 10.0)

    def test_metrics(self) -> None:
        observer = self.observer(chain_id=CHAIN)
        observer.record(self.peers.a, BlockHeaderMessage(header(1)))
        self.clock.advance(0.2)
        observer.record(self.peers.b, BlockHeaderMessage(header(1)))
        registry = node_registry(lambda: None)
        register_observer(registry, observer)
        text = render(registry)[0].decode()
        self.assertIn(
            'octez_p2p_observer_propagation_delay_seconds_bucket{kind="block",le="0.25"} 1.0', text
        )
        self.assertIn('octez_p2p_observer_propagation_delay_seconds_count{kind="block"} 1.0', text)
        self.assertIn('octez_p2p_observer_messages_total{kind="block_header"} 2.0', text)
        self.assertIn('octez_p2p_observer_tracked{kind="blocks"} 1.0', text)


class OptionsTests(SynchronousTestCase):
    def parse(self, *argv: str) -> NodeConfig:
        options = CommandOptions()
        options.parseOptions(["-d", self.mktemp(), "--no-admin", *argv])
        return options.node_config()

    def test_observe(self) -> None:
        self.assertIsNone(self.parse().observe)
        observe = self.parse("--observe", "--observe-chain-id", "NetXdQprcVkpaWU").observe
        assert observe is not None
        self.assertEqual(observe.chain_id, CHAIN)
        observe = self.parse(
            "--observe", "--observe-window", "60", "--observe-max-blocks", "9"
        ).observe
        assert observe is not None
        self.assertEqual((observe.chain_id, observe.window, observe.max_blocks), (None, 60.0, 9))
        self.assertRaises(usage.UsageError, self.parse, "--observe", "--observe-chain-id", "x")
        self.assertRaises(usage.UsageError, self.parse, "--observe", "--observe-max-blocks", "0")


class ObserverNodeTests(TestCase):
    """A node in observer mode with three peers gossiping over loopback."""

    timeout = 60

    async def observer_node(self, clock: Clock) -> tuple[Node, P2P, str]:
        from twisted.internet import reactor

        node = Node(
            reactor,
            NodeOptions(
                data_dir=self.mktemp(),
                listen=("tcp:0:interface=127.0.0.1",),
                expected_pow=0.0,
                chain_name="SANDBOXED_TEZOS",
                limits=Limits(maintenance_idle_time=None),
                admin=("tcp:0:interface=127.0.0.1",),
                peers_file=None,
                observe=ObserverConfig(),
            ),
            clock=clock,
        )
        node.startService()
        self.addCleanup(node.stopService)
        p2p = await node.when_ready()
        assert node.admin is not None
        [port] = await node.admin.when_listening()
        return node, p2p, f"http://127.0.0.1:{port.getHost().port}"  # type: ignore[attr-defined]

    async def peer(self, clock: Clock, target: P2P) -> tuple[P2P, Any]:
        from twisted.internet import reactor

        node = P2P(
            reactor,
            P2PConfig(
                identity=unchecked_identity(),
                versions=VERSIONS,
                listen=("tcp:0:interface=127.0.0.1",),
                proof_of_work_target=0.0,
            ),
            Limits(maintenance_idle_time=None),
            message_encodings=shell_message_encodings(),
            clock=clock,
        )
        await node.activate()
        self.addCleanup(node.shutdown)
        connection = await node.connect(point_of(target))
        return node, connection

    def test_gossip(self) -> Deferred[None]:
        async def scenario() -> None:
            from twisted.internet import reactor

            clock = Clock()
            node, p2p, url = await self.observer_node(clock)
            observer = node.observer
            assert observer is not None
            recorded: list[Deferred[None]] = []
            original = observer.record

            def record(peer_id: Any, message: object) -> None:
                original(peer_id, message)
                waiters = list(recorded)
                recorded.clear()
                for waiter in waiters:
                    waiter.callback(None)

            observer.record = record  # type: ignore[method-assign]

            async def next_record() -> None:
                waiter: Deferred[None] = Deferred()
                recorded.append(waiter)
                await waiter

            peers = [await self.peer(clock, p2p) for _ in range(3)]
            (a, to_a), (b, to_b), (c, to_c) = peers
            # a does what Octez does after a handshake: it asks for the branch
            waiting = next_record()
            await a.send(to_a, GetCurrentBranch(CHAIN))
            await waiting
            self.assertEqual(observer.chain_id, CHAIN)
            # the observer asked every peer for the chain's branch and head
            for node_, connection in peers:
                first = await node_.recv(connection)
                second = await node_.recv(connection)
                self.assertEqual([first, second], [GetCurrentBranch(CHAIN), GetCurrentHead(CHAIN)])
            head = header(500, b"\x11" * 40)
            for sender, connection, delay in ((a, to_a, 0.0), (b, to_b, 0.4), (c, to_c, 2.5)):
                clock.advance(delay)
                waiting = next_record()
                await sender.send(connection, CurrentHead(CHAIN, head, Mempool((op_hash(3),))))
                await waiting
            # requests only: two per peer, no answer to a's request
            self.assertEqual(p2p.counters["user_message_sent"], 6)

            http = non_persistent_http(reactor)
            heads = await (await http.get(url + "/observer/heads")).json()
            self.assertEqual(heads["chain_id"], str(CHAIN))
            self.assertEqual(
                {(h["peer_id"], h["level"]) for h in heads["peers"]},
                {(str(n.peer_id), 500) for n in (a, b, c)},
            )
            response = await http.get(url + "/observer/propagation?hash=" + str(head.hash()))
            self.assertEqual(response.code, 200)
            value = await response.json()
            self.assertEqual(value["first_peer"], str(a.peer_id))
            self.assertEqual(
                [(e["peer_id"], e["delay"]) for e in value["peers"]],
                [(str(a.peer_id), 0.0), (str(b.peer_id), 0.4), (str(c.peer_id), 2.9)],
            )
            operation = await (
                await http.get(url + "/observer/propagation?hash=" + str(op_hash(3)))
            ).json()
            self.assertEqual(
                (operation["kind"], operation["first_peer"]), ("operation", str(a.peer_id))
            )
            unknown = await http.get(url + "/observer/propagation?hash=" + str(header(1).hash()))
            self.assertEqual(unknown.code, 404)
            await unknown.content()
            for bad in ("", "?hash=", "?hash=xyz"):
                response = await http.get(url + "/observer/propagation" + bad)
                self.assertEqual(response.code, 400)
                await response.content()
            blocks = await (await http.get(url + "/observer/blocks?limit=5")).json()
            self.assertEqual([b["level"] for b in blocks], [500])
            summary = await (await http.get(url + "/observer")).json()
            self.assertEqual(summary["sizes"], {"heads": 3, "blocks": 1, "operations": 1})
            self.assertEqual(summary["counters"]["requests_sent"], 6)
            metrics = await (await http.get(url + "/metrics")).text()
            self.assertIn(
                'octez_p2p_observer_propagation_delay_seconds_bucket{kind="block",le="0.5"} 1.0',
                metrics,
            )
            self.assertIn(
                'octez_p2p_observer_propagation_delay_seconds_count{kind="block"} 2.0', metrics
            )
            self.assertEqual(json.loads(json.dumps(heads)), heads)

        return Deferred.fromCoroutine(scenario())
