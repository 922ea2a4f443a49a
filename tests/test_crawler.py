# -*- test-case-name: tests.test_crawler -*-
"""
The crawler (``txtezosp2p.crawler``).

* Over iosim with a simulated clock: each way a visit can end (reachable,
  Nack with alternatives, incompatible, refused, handshake failure,
  unreachable, no Advertise in time, private peer), politeness (one
  connection per point, bounded concurrency, one Bootstrap), the point and
  time bounds, cancellation and the output file.
* Over real TCP on loopback: a network of 50 ``P2P`` nodes, some full (they
  Nack with alternatives), mapped exactly from one seed, within the
  crawl's time bound; the same crawl cancelled midway and resumed from its
  file; and ``tezos-p2p crawl`` against a few nodes.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from txtezosp2p.connect_handler import tcp_endpoint_factory
from txtezosp2p.crawler import (
    FAILED,
    INCOMPATIBLE,
    NACKED,
    REACHABLE,
    REFUSED,
    UNREACHABLE,
    CrawlConfig,
    Crawler,
    CrawlFile,
    CrawlMap,
    PointRecord,
)
from txtezosp2p.identity import Identity
from txtezosp2p.interfaces import IAuthenticationGate
from txtezosp2p.limits import Limits
from txtezosp2p.node import cli
from txtezosp2p.p2p import P2P
from txtezosp2p.session import Decision, Refuse, Reject, Session, SessionConfig
from txtezosp2p.testing import unchecked_identity
from txtezosp2p.wire.crypto import pow_level
from txtezosp2p.wire.encoding import (
    Advertise,
    Bootstrap,
    ConnectionMetadata,
    P2PMessageCodec,
    default_metadata_config,
)
from txtezosp2p.wire.errors import NackMotive, P2PError, PrivateMode, Rejected
from txtezosp2p.wire.ids import Point
from txtezosp2p.wire.versions import Versions

from .test_p2p import Network, eventually, point_of

VERSIONS = Versions("SANDBOXED_TEZOS")


def crawl_config(**overrides: Any) -> CrawlConfig:
    params: dict[str, Any] = {
        "identity": unchecked_identity(),
        "versions": VERSIONS,
        "concurrency": 4,
        "connect_timeout": 10.0,
        "advertise_timeout": 5.0,
    }
    params.update(overrides)
    return CrawlConfig(**params)


# -- An in-memory network on iosim -------------------------------------------------


@attrs.define
class FakePeer:
    """What a simulated node does: its identity, gate, metadata and answer to Bootstrap."""

    identity: Identity = attrs.field(factory=unchecked_identity)
    versions: Versions = VERSIONS
    advertise: tuple[Point, ...] | None = ()
    decide: Callable[[Session, Any], Decision] | None = None
    private: bool = False
    silent: bool = False  # accepts TCP but never speaks
    sessions: list[Session] = attrs.field(factory=list)
    bootstraps: int = 0

    def config(self) -> SessionConfig:
        return SessionConfig(
            identity=self.identity,
            versions=self.versions,
            codec=P2PMessageCodec(),
            pow_target=0.0,
            metadata=default_metadata_config(ConnectionMetadata(False, self.private)),
            advertised_port=9732,
            gate=None if self.decide is None else ScriptedGate(self.decide),
        )


@implementer(IAuthenticationGate)
class ScriptedGate:
    def __init__(self, decide: Callable[[Session, Any], Decision]) -> None:
        self._decide = decide

    def decide(self, session: Any, info: Any) -> Decision:
        return self._decide(session, info)


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    def __init__(self, net: FakeNetwork, point: Point) -> None:
        self.net = net
        self.point = point

    def connect(self, factory: Any) -> Deferred[Any]:
        peer = self.net.peers.get(self.point)
        if peer is None:
            self.net.dials.append(self.point)
            return Deferred()  # never connects; cancelled by the crawler's timeout
        return self.net.join(peer, factory.buildProtocol(None), self.point)


class FakeNetwork:
    """Points served by :class:`FakePeer` sessions over iosim, on one clock."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.peers: dict[Point, FakePeer] = {}
        self.pumps: list[iosim.IOPump] = []
        self.dials: list[Point] = []
        self.open = 0
        self.most_open = 0

    def add(self, port: int, **kwargs: Any) -> tuple[Point, FakePeer]:
        point = Point("10.0.0.1", port)
        self.peers[point] = FakePeer(**kwargs)
        return point, self.peers[point]

    def endpoint(self, point: Point) -> IStreamClientEndpoint:
        return FakeEndpoint(self, point)

    def join(self, peer: FakePeer, client: Any, point: Point) -> Deferred[Any]:
        self.dials.append(point)
        if peer.silent:
            from twisted.internet.protocol import Protocol

            server: Any = Protocol()
        else:
            session = Session(peer.config(), self.clock, incoming=True)
            peer.sessions.append(session)
            server = session
            session.when_established().addCallbacks(
                lambda s: Deferred.fromCoroutine(self.serve(peer, s)), lambda _: None
            )
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        client.connectionLost = _counting(client.connectionLost, self)
        pump = iosim.connect(
            server,
            iosim.makeFakeServer(server),
            client,
            iosim.makeFakeClient(client),
            greet=False,
            clock=self.clock,
        )
        self.pumps.append(pump)
        return succeed(client)

    async def serve(self, peer: FakePeer, session: Session) -> None:
        while True:
            try:
                message = await session.read()
            except P2PError:
                return
            if isinstance(message, Bootstrap):
                peer.bootstraps += 1
                if peer.advertise is not None and not peer.silent:
                    session.write_now(Advertise(peer.advertise))

    def run(self, d: Deferred[Any], step: float = 0.1, limit: int = 10_000) -> Any:
        for _ in range(limit):
            for pump in list(self.pumps):
                pump.flush()
            if d.called:
                break
            self.clock.advance(step)
        return d


def _counting(lost: Callable[..., Any], net: FakeNetwork) -> Callable[..., Any]:
    def connection_lost(reason: Any = None) -> Any:
        net.open -= 1
        return lost(reason) if reason is not None else lost()

    return connection_lost


class VisitTests(SynchronousTestCase):
    def crawl(self, net: FakeNetwork, seeds: list[Point], **config: Any) -> CrawlMap:
        def endpoint(point: Point) -> IStreamClientEndpoint:
            # visits in flight when this one dials, itself included
            self.in_flight.append(crawler.progress().in_flight + 1)
            return net.endpoint(point)

        self.in_flight: list[int] = []
        crawler = Crawler(crawl_config(**config), net.clock, endpoint)
        done = net.run(crawler.crawl(seeds))
        result: CrawlMap = self.successResultOf(done)
        return result

    def test_reachable_and_advertised(self) -> None:
        """A reachable peer is asked for addresses once; what it advertises is crawled."""
        net = FakeNetwork()
        b, _ = net.add(2)
        c, _ = net.add(3, advertise=(b,))
        a, peer_a = net.add(1, advertise=(b, c))
        result = self.crawl(net, [a])
        self.assertTrue(result.complete)
        self.assertEqual(set(result.records), {a, b, c})
        record = result.records[a]
        self.assertEqual(record.status, REACHABLE)
        self.assertEqual(record.peer_id, peer_a.identity.peer_id)
        self.assertEqual(record.announced_version, VERSIONS.announced)
        identity = peer_a.identity
        self.assertEqual(
            record.pow_level, pow_level(identity.public_key, identity.proof_of_work_stamp)
        )
        self.assertEqual((record.private, record.disable_mempool), (False, False))
        self.assertEqual(record.advertised, (b, c))
        self.assertEqual(result.advertised_by(b), {a, c})
        self.assertEqual(result.edges, {(a, b), (a, c), (c, b)})
        self.assertEqual(sorted(net.dials), sorted([a, b, c]))  # one connection per point
        self.assertEqual(peer_a.bootstraps, 1)
        self.assertIsNotNone(record.first_seen)
        self.assertEqual(record.first_seen, record.last_seen)
        self.assertEqual(net.open, 0)  # every connection closed

    def test_no_advertise(self) -> None:
        """A peer that does not answer Bootstrap is left after ``advertise_timeout``."""
        net = FakeNetwork()
        a, peer = net.add(1, advertise=None)
        start = net.clock.seconds()
        result = self.crawl(net, [a], advertise_timeout=3.0)
        record = result.records[a]
        self.assertEqual((record.status, record.advertised), (REACHABLE, ()))
        self.assertEqual(peer.bootstraps, 1)
        self.assertGreaterEqual(record.visited - start, 3.0)
        self.assertLess(record.visited - start, 3.5)

    def test_nack_alternatives(self) -> None:
        net = FakeNetwork()
        b, _ = net.add(2)
        motive = NackMotive.TOO_MANY_CONNECTIONS
        a, peer = net.add(
            1,
            decide=lambda session, info: Reject(motive, Rejected(info.peer_id, motive), (b,)),
        )
        result = self.crawl(net, [a])
        record = result.records[a]
        self.assertEqual(record.status, NACKED)
        self.assertEqual(record.nack_motive, int(motive))
        self.assertEqual(record.alternatives, (b,))
        self.assertEqual(record.peer_id, peer.identity.peer_id)
        self.assertEqual(result.records[b].status, REACHABLE)
        self.assertEqual(result.advertised_by(b), {a})

    def test_incompatible(self) -> None:
        net = FakeNetwork()
        a, peer = net.add(1, versions=Versions("TEZOS_MAINNET"))
        record = self.crawl(net, [a]).records[a]
        self.assertEqual(record.status, INCOMPATIBLE)
        self.assertEqual(record.peer_id, peer.identity.peer_id)
        self.assertEqual(record.announced_version, Versions("TEZOS_MAINNET").announced)

    def test_refused_private(self) -> None:
        """A private node closes without an Ack: its id and private flag are still known."""
        net = FakeNetwork()
        a, peer = net.add(1, private=True, decide=lambda s, i: Refuse(PrivateMode()))
        record = self.crawl(net, [a]).records[a]
        self.assertEqual(record.status, REFUSED)
        self.assertEqual((record.peer_id, record.private), (peer.identity.peer_id, True))

    def test_private_not_asked(self) -> None:
        """A private peer that accepts us is not sent a Bootstrap it would ignore."""
        net = FakeNetwork()
        a, peer = net.add(1, private=True, advertise=None)
        start = net.clock.seconds()
        record = self.crawl(net, [a]).records[a]
        self.assertEqual((record.status, record.private), (REACHABLE, True))
        self.assertEqual(peer.bootstraps, 0)
        self.assertLess(record.visited - start, 1.0)

    def test_silent_and_unreachable(self) -> None:
        """A handshake that never starts fails; a point that never answers is unreachable."""
        net = FakeNetwork()
        silent, _ = net.add(1, silent=True)
        nowhere = Point("10.0.0.9", 9)
        result = self.crawl(net, [silent, nowhere], connect_timeout=4.0)
        self.assertEqual(result.records[silent].status, FAILED)
        self.assertEqual(result.records[nowhere].status, UNREACHABLE)
        self.assertIsNone(result.records[nowhere].peer_id)
        for record in result.records.values():
            self.assertLess(record.visited - record.discovered, 4.5)

    def test_concurrency(self) -> None:
        net = FakeNetwork()
        points = [net.add(port, advertise=None)[0] for port in range(1, 13)]
        result = self.crawl(net, points, concurrency=3, advertise_timeout=1.0)
        self.assertEqual(len(result.records), 12)
        self.assertEqual(max(self.in_flight), 3)

    def test_point_bound(self) -> None:
        net = FakeNetwork()
        others = tuple(Point("10.0.0.2", port) for port in range(1, 40))
        a, _ = net.add(1, advertise=others)
        result = self.crawl(net, [a], max_points=10, connect_timeout=1.0)
        self.assertEqual(len(result.records), 10)
        self.assertTrue(result.truncated)
        self.assertFalse(result.complete)

    def test_time_bound(self) -> None:
        net = FakeNetwork()
        points = [Point("10.0.0.3", port) for port in range(1, 10)]
        result = self.crawl(net, points, max_duration=25.0, connect_timeout=10.0, concurrency=2)
        self.assertFalse(result.complete)
        self.assertEqual(len(result.records), 4)  # two rounds of two within 25 s
        self.assertLessEqual(net.clock.seconds(), 25.1)

    def test_cancel(self) -> None:
        net = FakeNetwork()
        points = [Point("10.0.0.3", port) for port in range(1, 10)]
        crawler = Crawler(crawl_config(connect_timeout=10.0), net.clock, net.endpoint)
        done = crawler.crawl(points)
        net.clock.advance(1)
        done.cancel()
        self.failureResultOf(done, CancelledError)
        net.clock.advance(100)
        self.assertEqual(crawler.map.records, {})
        self.assertEqual(crawler.progress().in_flight, 0)


class FileTests(SynchronousTestCase):
    def test_records_round_trip(self) -> None:
        net = FakeNetwork()
        b, _ = net.add(2)
        a, _ = net.add(1, advertise=(b, Point("10.0.0.7", 7)))
        path = self.mktemp()
        crawler = Crawler(
            crawl_config(connect_timeout=1.0), net.clock, net.endpoint, output=CrawlFile(path)
        )
        result = self.successResultOf(net.run(crawler.crawl([a])))
        loaded, skipped = CrawlFile(path).load()
        self.assertEqual(skipped, 0)
        self.assertEqual({r.point: r for r in loaded}, result.records)

    def test_damaged_lines(self) -> None:
        """A cut last line, garbage and an overlong line are skipped; the rest loads."""
        record = PointRecord(point=Point("1.2.3.4", 1), status=UNREACHABLE, discovered=1, visited=2)
        line = json.dumps(record.to_json())
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write(line + "\n" + "not json\n" + '{"type": "point"}\n')
            handle.write("x" * (2 << 20) + "\n" + line + "\n" + line[:20])
        loaded, skipped = CrawlFile(path).load()
        self.assertEqual(loaded, [record, record])
        self.assertEqual(skipped, 4)
        # appending after a cut line starts a new line
        output = CrawlFile(path)
        output.append(record)
        output.close()
        self.assertEqual(CrawlFile(path).load(), ([record, record, record], 4))


# -- Real nodes on loopback ----------------------------------------------------------------


def topology(size: int) -> dict[int, set[int]]:
    """Node i dials i-1 and i//2: a connected graph of degree at most 5."""
    edges: dict[int, set[int]] = {i: set() for i in range(size)}
    for i in range(1, size):
        for j in {i - 1, i // 2}:
            edges[i].add(j)
            edges[j].add(i)
    return edges


FULL = (7, 23, 38)  # nodes at their connection limit: they Nack with alternatives


class LoopbackTests(TestCase):
    timeout = 120

    async def network(self, size: int) -> list[P2P]:
        net = Network(self)
        graph = topology(size)
        nodes = []
        for i in range(size):
            limits = Limits(maintenance_idle_time=None)
            if i in FULL:
                degree = len(graph[i])
                limits = Limits(
                    maintenance_idle_time=None,
                    min_connections=0,
                    expected_connections=degree,
                    max_connections=degree,
                )
            nodes.append(await net.node(limits=limits))
        for i in range(1, size):
            for j in sorted({i - 1, i // 2}):
                await nodes[i].connect(point_of(nodes[j]))
        return nodes

    def expected(self, nodes: list[P2P]) -> dict[Point, tuple[Any, set[Point]]]:
        """Every node's point, with its peer id and the points it knows to share."""
        return {
            point_of(node): (node.peer_id, set(node.pool.list_known_points(size=1000)))
            for node in nodes
        }

    def assertExact(self, result: CrawlMap, nodes: list[P2P]) -> None:
        expected = self.expected(nodes)
        self.assertTrue(result.complete)
        self.assertEqual(set(result.records), set(expected))
        for point, (peer_id, known) in expected.items():
            record = result.records[point]
            self.assertEqual(record.peer_id, peer_id, point)
            self.assertEqual(set(record.learned), known, point)
            node = nodes[[point_of(n) for n in nodes].index(point)]
            identity = node.config.identity
            self.assertEqual(
                record.pow_level, pow_level(identity.public_key, identity.proof_of_work_stamp)
            )
            self.assertEqual(record.announced_version, VERSIONS.announced)
            self.assertEqual(record.private, False)
        statuses = {p: r.status for p, r in result.records.items()}
        full = {point_of(nodes[i]) for i in FULL}
        self.assertEqual({p for p, s in statuses.items() if s == NACKED}, full)
        self.assertEqual({p for p, s in statuses.items() if s == REACHABLE}, set(expected) - full)
        self.assertEqual(len(result.peers()), len(nodes))

    def crawler(self, **kwargs: Any) -> Crawler:
        from twisted.internet import reactor

        config = crawl_config(concurrency=8, max_duration=60.0, connect_timeout=5.0)
        return Crawler(config, reactor, tcp_endpoint_factory(reactor, 5.0), **kwargs)

    def test_fifty_nodes(self) -> Deferred[None]:
        """50 nodes from one seed: every point, every peer id, every advertisement."""

        async def scenario() -> None:
            nodes = await self.network(50)
            result_crawler = self.crawler()
            result = await result_crawler.crawl([point_of(nodes[0])])
            self.assertExact(result, nodes)
            # polite: every connection of the crawler is closed in the end
            crawler_id = result_crawler.config.identity.peer_id
            await eventually(
                lambda: all(
                    crawler_id not in {c.peer_id for c in node.connections()} for node in nodes
                ),
                nodes,
            )

        return Deferred.fromCoroutine(scenario())

    def test_resume(self) -> Deferred[None]:
        """Cancelled after 15 visits and resumed from its file, the crawl loses nothing."""

        async def scenario() -> None:
            nodes = await self.network(50)
            path = self.mktemp()
            seen: list[PointRecord] = []
            first = self.crawler(output=CrawlFile(path))
            crawling = first.crawl([point_of(nodes[0])])

            def stop_after(record: PointRecord) -> None:
                seen.append(record)
                if len(seen) == 15:
                    crawling.cancel()

            first.on_record = stop_after
            try:
                await crawling
            except CancelledError:
                pass
            written, _ = CrawlFile(path).load()
            self.assertEqual(len(written), 15)
            again: list[PointRecord] = []
            second = self.crawler(output=CrawlFile(path), on_record=again.append)
            result = await second.crawl([point_of(nodes[0])])
            self.assertExact(result, nodes)
            # nothing visited twice: the second run did only what was left
            self.assertEqual(len(again), 50 - 15)
            self.assertEqual({r.point for r in again} & {r.point for r in written}, set())
            loaded, skipped = CrawlFile(path).load()
            self.assertEqual((len(loaded), skipped), (50, 0))

        return Deferred.fromCoroutine(scenario())


class CommandLineTests(TestCase):
    timeout = 60

    def test_crawl_command(self) -> Deferred[None]:
        """``tezos-p2p crawl`` maps three nodes, prints the table and writes the file."""

        async def scenario() -> None:
            net = Network(self)
            nodes = [await net.node() for _ in range(3)]
            await nodes[1].connect(point_of(nodes[0]))
            await nodes[2].connect(point_of(nodes[1]))
            path = os.path.join(self.mktemp())
            out = io.StringIO()
            from twisted.internet import reactor

            args = cli.build_parser().parse_args(
                [
                    "crawl",
                    "--peer",
                    point_of(nodes[0]).to_text(),
                    "--network",
                    "sandbox",
                    "--chain-name",
                    "SANDBOXED_TEZOS",
                    "--identity-pow",
                    "0",
                    "--output",
                    path,
                    "--concurrency",
                    "2",
                    "--no-progress",
                ]
            )
            status = await cli.run_crawl(reactor, args, out)
            self.assertEqual(status, 0)
            loaded, _ = CrawlFile(path).load()
            self.assertEqual({r.peer_id for r in loaded}, {n.peer_id for n in nodes})
            text = out.getvalue()
            for node in nodes:
                self.assertIn(point_of(node).to_text(), text)
            self.assertIn("3 points", text)

        return Deferred.fromCoroutine(scenario())

    def test_crawl_interrupted(self) -> Deferred[None]:
        """Cancelled (as Ctrl-C does), the command prints what it has and exits with 130."""

        async def scenario() -> None:
            from twisted.internet import reactor
            from twisted.internet.endpoints import TCP4ServerEndpoint
            from twisted.internet.protocol import Factory, Protocol

            connected: Deferred[None] = Deferred()

            class Mute(Protocol):
                def connectionMade(self) -> None:
                    if not connected.called:
                        connected.callback(None)

            port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
                Factory.forProtocol(Mute)
            )
            self.addCleanup(port.stopListening)
            path = self.mktemp()
            args = cli.build_parser().parse_args(
                [
                    "crawl",
                    "--peer",
                    f"127.0.0.1:{port.getHost().port}",  # type: ignore[attr-defined]
                    "--chain-name",
                    "SANDBOXED_TEZOS",
                    "--identity-pow",
                    "0",
                    "--connect-timeout",
                    "60",
                    "--output",
                    path,
                    "--no-progress",
                ]
            )
            out = io.StringIO()
            crawling = Deferred.fromCoroutine(cli.run_crawl(reactor, args, out))
            await connected
            crawling.cancel()
            self.assertEqual(await crawling, cli.EXIT_INTERRUPTED)
            self.assertIn("0 points (none)", out.getvalue())
            self.assertIn("crawl incomplete", out.getvalue())

        return Deferred.fromCoroutine(scenario())
