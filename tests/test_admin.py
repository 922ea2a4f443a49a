# -*- test-case-name: tests.test_admin -*-
"""
The admin HTTP API: every endpoint through ``treq.testing.StubTreq`` against
nodes on loopback whose timers run on a simulated clock, checked against
Octez's JSON shapes (behaviour.md section 13.1 and docs/admin-api.md); the
event streams; PATCH ban disconnecting a peer; fuzzed requests that never
give a 500; the loopback-only binding rule; and one test over real HTTP
against a running node with live connections.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

import treq
from hypothesis import given
from hypothesis import strategies as st
from treq.client import HTTPClient
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

from txtezosp2p.limits import Limits
from txtezosp2p.node.admin import (
    MAX_BODY,
    STREAM_BACKLOG,
    AdminRequest,
    AdminResource,
    AdminService,
    check_admin_endpoint,
    is_local_endpoint,
)
from txtezosp2p.node.composition import Node, NodeOptions, NodeStartError
from txtezosp2p.p2p import P2P, P2PConfig, faked_network
from txtezosp2p.testing import unchecked_identity
from txtezosp2p.wire.ids import ConnectionId, Point

from . import helpers  # noqa: F401  (hypothesis profile)
from .test_p2p import VERSIONS, Network, Text, eventually, point_of

BASE = "http://node"

#: ``GET /network/connections`` of an Octez node, as recorded in
#: docs/admin-api.md (one element; Octez's keys and value types).
OCTEZ_CONNECTIONS = json.loads(
    """
[ { "incoming": true,
    "peer_id": "idtqxHUjbjbCfaDn4jczoPGsnhacKX",
    "id_point": { "addr": "::ffff:10.1.2.3", "port": 9732 },
    "remote_socket_port": 51234,
    "announced_version":
      { "chain_name": "TEZOS_MAINNET", "distributed_db_version": 2, "p2p_version": 1 },
    "private": false,
    "local_metadata": { "disable_mempool": false, "private_node": false },
    "remote_metadata": { "disable_mempool": false, "private_node": false } } ]
"""
)

#: ``GET /network/points/<point>`` of a running point (docs/admin-api.md).
OCTEZ_POINT = json.loads(
    """
{ "trusted": false,
  "state": { "event_kind": "running", "p2p_peer_id": "idtqxHUjbjbCfaDn4jczoPGsnhacKX" },
  "p2p_peer_id": "idtqxHUjbjbCfaDn4jczoPGsnhacKX",
  "last_established_connection":
    [ "idtqxHUjbjbCfaDn4jczoPGsnhacKX", "2026-11-21T10:00:00.000-00:00" ],
  "last_seen": [ "idtqxHUjbjbCfaDn4jczoPGsnhacKX", "2026-11-21T10:00:00.000-00:00" ] }
"""
)

#: ``GET /network/peers/<peer_id>`` of a connected peer (docs/admin-api.md).
OCTEZ_PEER = json.loads(
    """
{ "score": 1.0, "trusted": false,
  "conn_metadata": { "disable_mempool": false, "private_node": false },
  "peer_metadata": {},
  "state": "running",
  "reachable_at": { "addr": "::ffff:10.1.2.3", "port": 9732 },
  "stat": { "total_sent": "123", "total_recv": "456", "current_inflow": 0, "current_outflow": 0 },
  "last_established_connection": [ { "addr": "::ffff:10.1.2.3", "port": 9732 },
                                   "2026-11-21T10:00:00.000-00:00" ],
  "last_seen": [ { "addr": "::ffff:10.1.2.3", "port": 9732 }, "2026-11-21T10:00:00.000-00:00" ] }
"""
)


#: Octez's timestamps: RFC 3339 with milliseconds and ``-00:00`` (behaviour.md conventions).
OCTEZ_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-00:00$"


async def pumped(stub: Any, waiting: Deferred[Any], turns: int = 10_000) -> Any:
    """
    Wait for ``waiting``, flushing StubTreq's in-memory connections at every
    reactor turn: a response the resource finishes later (after a real
    socket event) only reaches the client on a flush.  Counts turns, not time.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    outcome: list[object] = []

    def arrived(result: object) -> object:
        outcome.append(result)
        return result

    waiting.addBoth(arrived)
    for _ in range(turns):
        stub.flush()
        if outcome:
            return await waiting
        await deferLater(reactor, 0, lambda: None)
    raise AssertionError("no response")


def shape(value: Any) -> Any:
    """The keys and value types of a JSON value (lists by their first element)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


class AdminTestCase(TestCase):
    """Nodes on loopback (timers on a Clock), node ``a`` served through StubTreq."""

    timeout = 60

    def setUp(self) -> None:
        self.net = Network(self)
        self.clock = Clock()

    def run_async(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> Deferred[None]:
        return Deferred.fromCoroutine(scenario())

    async def node(self, **config: Any) -> P2P:
        return await self.net.node(clock=self.clock, **config)

    def serve(self, p2p: P2P | None) -> tuple[Any, AdminResource]:
        resource = AdminResource(lambda: p2p)
        self.addCleanup(resource.close_streams)
        self.resource = resource  # the last one served
        return StubTreq(resource), resource

    async def get(self, stub: Any, path: str, status: int = 200) -> Any:
        return await self.call(stub, "get", path, status=status)

    async def call(
        self, stub: Any, method: str, path: str, body: Any = None, status: int = 200
    ) -> Any:
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data"] = json.dumps(body).encode()
        response = await pumped(stub, getattr(stub, method)(BASE + path, **kwargs))
        content = await pumped(stub, response.content())
        self.assertEqual(response.code, status, content)
        if response.headers.getRawHeaders(b"content-type") == [b"application/json"]:
            return json.loads(content)
        return content

    async def pair(self) -> tuple[P2P, P2P, Any]:
        a, b = await self.node(), await self.node()
        await b.connect(point_of(a))
        await eventually(lambda: len(a.connections()) == 1, [a])
        stub, _ = self.serve(a)
        return a, b, stub


class NodeEndpointTests(AdminTestCase):
    def test_self_stat_versions(self) -> Deferred[None]:
        async def scenario() -> None:
            a, _b, stub = await self.pair()
            self.assertEqual(await self.get(stub, "/network/self"), str(a.peer_id))
            stat = await self.get(stub, "/network/stat")
            self.assertEqual(
                shape(stat),
                {
                    "total_sent": "str",
                    "total_recv": "str",
                    "current_inflow": "number",
                    "current_outflow": "number",
                },
            )
            self.assertGreater(int(stat["total_sent"]), 0)
            version = await self.get(stub, "/network/version")
            self.assertEqual(
                version,
                {"chain_name": "SANDBOXED_TEZOS", "distributed_db_version": 2, "p2p_version": 1},
            )
            versions = await self.get(stub, "/network/versions")
            self.assertEqual(versions[0], version)
            self.assertEqual(len(versions), 6)
            top = await self.get(stub, "/version")
            self.assertEqual(top["network_version"], version)
            self.assertEqual(set(top["version"]), {"major", "minor", "additional_info"})

        return self.run_async(scenario)

    def test_full_stat(self) -> Deferred[None]:
        async def scenario() -> None:
            _a, b, stub = await self.pair()
            full = await self.get(stub, "/network/full_stat")
            self.assertEqual(
                set(full),
                {"stat", "incoming_connections", "outgoing_connections", "peers", "points"},
            )
            self.assertEqual(len(full["incoming_connections"]), 1)
            self.assertEqual(full["outgoing_connections"], [])
            self.assertEqual(full["incoming_connections"][0]["peer_id"], str(b.peer_id))
            self.assertIn(str(b.peer_id), [peer for peer, _ in full["peers"]])
            self.assertIn(point_of(b).to_text(), [point for point, _ in full["points"]])

        return self.run_async(scenario)

    def test_not_ready(self) -> Deferred[None]:
        async def scenario() -> None:
            stub, _ = self.serve(None)
            error = await self.get(stub, "/network/self", status=503)
            self.assertEqual(error[0]["id"], "node.p2p_layer_not_ready")
            self.assertEqual(error[0]["kind"], "temporary")
            # the version still answers
            self.assertIn("version", await self.get(stub, "/version"))

        return self.run_async(scenario)

    def test_metrics(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            a.broadcast(None, "hello")
            response = await stub.get(BASE + "/metrics")
            self.assertEqual(response.code, 200)
            content_type = response.headers.getRawHeaders(b"content-type")[0]
            self.assertTrue(content_type.startswith(b"text/plain"))
            text = (await response.content()).decode()
            samples = {
                line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line and not line.startswith("#")
            }
            self.assertEqual(samples['octez_p2p_connections{kind="active"}'], 1)
            self.assertEqual(samples['octez_p2p_connections{kind="incoming"}'], 1)
            self.assertEqual(samples['octez_p2p_peers{state="running"}'], 1)
            self.assertEqual(samples['octez_p2p_messages_total{kind="broadcast_message_sent"}'], 1)
            self.assertGreater(samples["octez_p2p_io_scheduler_total_sent_total"], 0)
            self.assertIn('octez_p2p_greylist{kind="ips"}', samples)
            self.assertIn("octez_p2p_maintenance_steps_total", samples)
            # the registry is the node's own: another node's numbers differ
            other_stub, _ = self.serve(b)
            other = (await (await other_stub.get(BASE + "/metrics")).content()).decode()
            self.assertIn('octez_p2p_connections{kind="outgoing"} 1.0', other)

        return self.run_async(scenario)


class ConnectionEndpointTests(AdminTestCase):
    def test_connections_have_octez_shape(self) -> Deferred[None]:
        """The bar: same keys and types as Octez's recorded response."""

        async def scenario() -> None:
            a, b, stub = await self.pair()
            connections = await self.get(stub, "/network/connections")
            self.assertEqual(len(connections), 1)
            self.assertEqual(shape(connections), shape(OCTEZ_CONNECTIONS))
            connection = connections[0]
            self.assertTrue(connection["incoming"])
            self.assertEqual(connection["peer_id"], str(b.peer_id))
            self.assertEqual(
                connection["id_point"], {"addr": "::ffff:127.0.0.1", "port": b.listening_port}
            )
            one = await self.get(stub, f"/network/connections/{b.peer_id}")
            self.assertEqual(one, connection)
            await self.get(stub, f"/network/connections/{a.peer_id}", status=404)

        return self.run_async(scenario)

    def test_delete_connection(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            self.assertEqual(
                await self.call(stub, "delete", f"/network/connections/{b.peer_id}?wait"), {}
            )
            self.assertEqual(a.connections(), [])
            # unknown peer: nothing to do, success
            self.assertEqual(
                await self.call(stub, "delete", f"/network/connections/{b.peer_id}"), {}
            )
            await self.call(
                stub, "delete", f"/network/connections/{b.peer_id}?wait=maybe", status=400
            )

        return self.run_async(scenario)


class PointEndpointTests(AdminTestCase):
    def test_points(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            a.pool.register_point(Point("127.0.0.9", 1))
            points = dict(await self.get(stub, "/network/points"))
            self.assertEqual(set(points), {point_of(b).to_text(), "127.0.0.9:1"})
            running = await self.get(stub, "/network/points?filter=running")
            self.assertEqual([p for p, _ in running], [point_of(b).to_text()])
            both = await self.get(stub, "/network/points?filter=running&filter=disconnected")
            self.assertEqual(len(both), 2)
            await self.get(stub, "/network/points?filter=sleeping", status=400)
            info = await self.get(stub, "/network/points/" + quote(point_of(b).to_text()))
            self.assertEqual(set(info) - set(OCTEZ_POINT), set())
            for key in ("trusted", "state", "p2p_peer_id"):
                self.assertEqual(shape(info[key]), shape(OCTEZ_POINT[key]))
            for key in ("last_established_connection", "last_seen"):
                self.assertEqual(shape(info[key]), shape(OCTEZ_POINT[key]))
                self.assertRegex(info[key][1], OCTEZ_TIME)
                self.assertRegex(OCTEZ_POINT[key][1], OCTEZ_TIME)
            self.assertEqual(
                info["state"], {"event_kind": "running", "p2p_peer_id": str(b.peer_id)}
            )
            await self.get(stub, "/network/points/127.0.0.9:2", status=404)
            await self.get(stub, "/network/points/not-a-point", status=400)
            ipv6 = await self.get(stub, "/network/points/" + quote("[::1]:5"), status=404)
            self.assertEqual(ipv6[0]["id"], "rpc.not_found")

        return self.run_async(scenario)

    def test_put_connects(self) -> Deferred[None]:
        async def scenario() -> None:
            a, _b, stub = await self.pair()
            c = await self.node()
            self.assertEqual(
                await self.call(stub, "put", "/network/points/" + point_of(c).to_text(), {}), {}
            )
            self.assertIsNotNone(a.find_connection_by_peer_id(c.peer_id))
            again = await self.call(
                stub, "put", "/network/points/" + point_of(c).to_text(), status=409
            )
            self.assertEqual(again[0]["id"], "node.p2p_pool.connected")
            closed = await self.call(stub, "put", "/network/points/127.0.0.1:1", status=502)
            self.assertEqual(closed[0]["kind"], "temporary")
            await self.call(stub, "put", "/network/points/127.0.0.1:1?timeout=x", status=400)
            await self.call(stub, "put", "/network/points/127.0.0.1:1?timeout=-1", status=400)
            await self.call(stub, "put", "/network/points/127.0.0.1:1", [1], status=400)

        return self.run_async(scenario)

    def test_patch_point(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            unknown = "/network/points/127.0.0.9:1"
            await self.call(stub, "patch", unknown, {"acl": "ban"}, status=404)
            trusted = await self.call(stub, "patch", unknown, {"acl": "trust"})
            self.assertTrue(trusted["trusted"])
            expected = await self.call(stub, "patch", unknown, {"peer_id": str(b.peer_id)})
            self.assertEqual(expected["expected_peer_id"], str(b.peer_id))
            opened = await self.call(stub, "patch", unknown, {"acl": "open"})
            self.assertFalse(opened["trusted"])
            self.assertFalse(await self.get(stub, unknown + "/banned"))
            # banning the point of a connected peer drops it
            where = "/network/points/" + point_of(b).to_text()
            banned = await self.call(stub, "patch", where, {"acl": "ban"})
            self.assertFalse(banned["trusted"])
            await eventually(lambda: a.connections() == [], [a])
            self.assertTrue(await self.get(stub, where + "/banned"))
            bad: Any
            for bad in ({"acl": "maybe"}, {"acl": 1}, {"colour": "red"}, [], "x", {"peer_id": "x"}):
                with self.subTest(body=bad):
                    await self.call(stub, "patch", unknown, bad, status=400)

        return self.run_async(scenario)

    def test_acl_of_unknown_points(self) -> Deferred[None]:
        """As Octez: ban and unban apply to a point's address even if the point is unknown."""

        async def scenario() -> None:
            a, _b, stub = await self.pair()
            unknown = "/network/points/203.0.113.7:9732"
            banned = await self.call(stub, "patch", unknown, {"acl": "ban"}, status=404)
            self.assertIn("its address is banned", banned[0]["msg"])
            self.assertTrue(await self.get(stub, unknown + "/banned"))
            self.assertTrue(a.acl.blacklisted_addr(Point("203.0.113.7", 1).addr))
            self.assertNotIn(Point("203.0.113.7", 9732), a.pool.points)
            # the ban holds: a dial to any port of the address is refused at once
            refused = await self.call(stub, "put", "/network/points/203.0.113.7:1", status=409)
            self.assertEqual(refused[0]["id"], "node.p2p_pool.point_banned")
            # a known point at the banned address says so in the listings
            a.pool.register_point(Point("203.0.113.7", 1))
            listed = dict(await self.get(stub, "/network/points"))
            self.assertEqual(listed["203.0.113.7:1"]["acl"], "banned")
            info = await self.get(stub, "/network/points/203.0.113.7:1")
            self.assertEqual(info["acl"], "banned")
            opened = await self.call(stub, "patch", unknown, {"acl": "open"}, status=404)
            self.assertIn("its address is unbanned", opened[0]["msg"])
            self.assertFalse(await self.get(stub, unknown + "/banned"))
            self.assertNotIn("acl", await self.get(stub, "/network/points/203.0.113.7:1"))
            # a greylisted address shows as such, not as banned
            a.greylist_addr("203.0.113.7")
            info = await self.get(stub, "/network/points/203.0.113.7:1")
            self.assertEqual(info["acl"], "greylisted")
            # trust creates the point (Octez: register_point ~trusted:true)
            trusted = await self.call(stub, "patch", unknown, {"acl": "trust"})
            self.assertTrue(trusted["trusted"])
            self.assertNotIn("acl", trusted)  # trust lifted the greylisting too

        return self.run_async(scenario)

    def test_point_log(self) -> Deferred[None]:
        async def scenario() -> None:
            _a, b, stub = await self.pair()
            where = "/network/points/" + point_of(b).to_text() + "/log"
            log = await self.get(stub, where)
            self.assertEqual(
                [entry[1]["event_kind"] for entry in log],
                ["accepting_request", "connection_established"],
            )
            self.assertIsInstance(log[0][0], str)
            self.assertEqual(await self.get(stub, "/network/points/127.0.0.9:1/log"), [])

        return self.run_async(scenario)


class PeerEndpointTests(AdminTestCase):
    def test_peers(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            peers = dict(await self.get(stub, "/network/peers"))
            self.assertEqual(list(peers), [str(b.peer_id)])
            info = peers[str(b.peer_id)]
            self.assertEqual(set(info) - set(OCTEZ_PEER), set())
            for key in ("score", "trusted", "conn_metadata", "state", "reachable_at", "stat"):
                self.assertEqual(shape(info[key]), shape(OCTEZ_PEER[key]), key)
            for key in ("last_established_connection", "last_seen"):
                self.assertEqual(shape(info[key]), shape(OCTEZ_PEER[key]), key)
                self.assertRegex(info[key][1], OCTEZ_TIME)
            self.assertEqual(info["state"], "running")
            self.assertEqual(await self.get(stub, "/network/peers?filter=disconnected"), [])
            await self.get(stub, "/network/peers?filter=requested", status=400)
            self.assertEqual(await self.get(stub, f"/network/peers/{b.peer_id}"), info)
            await self.get(stub, f"/network/peers/{a.peer_id}", status=404)
            await self.get(stub, "/network/peers/idnotapeer", status=400)
            log = await self.get(stub, f"/network/peers/{b.peer_id}/log")
            self.assertEqual(
                [entry["kind"] for entry in log], ["incoming_request", "connection_established"]
            )
            self.assertEqual(set(log[0]), {"kind", "timestamp", "addr", "port"})
            self.assertFalse(await self.get(stub, f"/network/peers/{b.peer_id}/banned"))

        return self.run_async(scenario)

    def test_patch_ban_disconnects(self) -> Deferred[None]:
        """PATCH ban on a connected peer drops its connection and refuses it afterwards."""

        async def scenario() -> None:
            a, b, stub = await self.pair()
            disconnected: Deferred[None] = Deferred()

            def gone(_peer: object) -> None:
                if not disconnected.called:
                    disconnected.callback(None)

            b.on_disconnection(gone)
            info = await self.call(stub, "patch", f"/network/peers/{b.peer_id}", {"acl": "ban"})
            self.assertFalse(info["trusted"])
            await disconnected
            self.assertEqual(a.connections(), [])
            self.assertTrue(await self.get(stub, f"/network/peers/{b.peer_id}/banned"))
            trusted = await self.call(
                stub, "patch", f"/network/peers/{b.peer_id}", {"acl": "trust"}
            )
            self.assertTrue(trusted["trusted"])
            self.assertFalse(await self.get(stub, f"/network/peers/{b.peer_id}/banned"))
            await self.call(
                stub, "patch", f"/network/peers/{b.peer_id}", {"peer_id": "x"}, status=400
            )
            other = unchecked_identity().peer_id
            await self.call(stub, "patch", f"/network/peers/{other}", {"acl": "open"}, status=404)
            # an unknown peer id is banned all the same (as Octez), then answered 404
            stranger = f"/network/peers/{unchecked_identity().peer_id}"
            answer = await self.call(stub, "patch", stranger, {"acl": "ban"}, status=404)
            self.assertIn("it is banned", answer[0]["msg"])
            self.assertTrue(await self.get(stub, stranger + "/banned"))
            await self.call(stub, "patch", stranger, {"acl": "open"}, status=404)
            self.assertFalse(await self.get(stub, stranger + "/banned"))
            # a known banned peer says so in the listings
            banned = await self.call(stub, "patch", f"/network/peers/{b.peer_id}", {"acl": "ban"})
            self.assertEqual(banned["acl"], "banned")
            self.assertEqual(
                dict(await self.get(stub, "/network/peers"))[str(b.peer_id)]["acl"], "banned"
            )

        return self.run_async(scenario)


class GreylistEndpointTests(AdminTestCase):
    def test_greylist(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            empty = await self.get(stub, "/network/greylist/ips")
            self.assertEqual(empty, {"ips": [], "not_reliable_since": None})
            a.greylist_peer(b.peer_id)
            ips = await self.get(stub, "/network/greylist/ips")
            self.assertEqual(ips["ips"], ["::ffff:127.0.0.1"])
            self.assertEqual(await self.get(stub, "/network/greylist/peers"), [str(b.peer_id)])
            self.assertTrue(await self.get(stub, f"/network/peers/{b.peer_id}/banned"))
            self.assertEqual(await self.call(stub, "delete", "/network/greylist"), {})
            self.assertEqual(await self.get(stub, "/network/greylist/peers"), [])
            self.assertEqual((await self.get(stub, "/network/greylist/ips"))["ips"], [])

        return self.run_async(scenario)


class StreamTests(AdminTestCase):
    async def stream(self, stub: Any, path: str) -> tuple[list[Any], Deferred[None]]:
        """Start a stream; returns the values received so far (growing) and its end."""
        response = await stub.get(BASE + path, unbuffered=True)
        self.assertEqual(response.code, 200)
        values: list[Any] = []
        buffer = bytearray()

        def collect(data: bytes) -> None:
            buffer.extend(data)
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                values.append(json.loads(line))

        return values, treq.collect(response, collect)

    def test_log_delivers_connection_events(self) -> Deferred[None]:
        """``/network/log`` delivers a connection event as it happens."""

        async def scenario() -> None:
            a = await self.node()
            stub, resource = self.serve(a)
            a.pool.emit  # noqa: B018 - the stream starts with the first event
            # the response starts with the first event: provoke one, then connect
            getting = Deferred.fromCoroutine(self.stream(stub, "/network/log"))
            a.pool.register_point(Point("127.0.0.9", 1))
            stub.flush()
            values, ended = await getting
            self.assertEqual(values, [{"event": "new_point", "point": "127.0.0.9:1"}])
            b = await self.node()
            await b.connect(point_of(a))

            def established() -> bool:
                stub.flush()
                return any(v.get("event") == "connection_established" for v in values)

            await eventually(established, [a])
            event = next(v for v in values if v["event"] == "connection_established")
            self.assertEqual(event["peer_id"], str(b.peer_id))
            self.assertEqual(set(event["id_point"]), {"addr", "port"})
            kinds = [v["event"] for v in values]
            self.assertIn("incoming_connection", kinds)
            self.assertLess(
                kinds.index("incoming_connection"), kinds.index("connection_established")
            )
            resource.close_streams()
            stub.flush()
            await ended

        return self.run_async(scenario)

    async def until(self, stub: Any, condition: Callable[[], bool]) -> None:
        """Flush the stub at every reactor turn until ``condition`` holds."""
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        for _ in range(10_000):
            stub.flush()
            if condition():
                return
            await deferLater(reactor, 0, lambda: None)
        raise AssertionError("condition never met")

    def test_peer_log_monitor(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            values, ended = await self.stream(stub, f"/network/peers/{b.peer_id}/log?monitor")
            self.assertEqual(len(values), 1)  # the history, as one list
            self.assertEqual(len(values[0]), 2)
            await a.disconnect(a.connections()[0])
            await self.until(stub, lambda: len(values) > 1)
            self.assertEqual(
                values[1:],
                [
                    [
                        {
                            "kind": "disconnection",
                            "timestamp": values[1][0]["timestamp"],
                            "addr": "::ffff:127.0.0.1",
                            "port": b.listening_port,
                        }
                    ]
                ],
            )
            self.resource.close_streams()
            stub.flush()
            await ended

        return self.run_async(scenario)

    def test_point_log_monitor(self) -> Deferred[None]:
        async def scenario() -> None:
            a, b, stub = await self.pair()
            where = "/network/points/" + point_of(b).to_text() + "/log?monitor=true"
            values, ended = await self.stream(stub, where)
            await a.disconnect(a.connections()[0])
            await self.until(stub, lambda: len(values) > 1)
            self.assertEqual(
                values[1][0][1], {"event_kind": "disconnection", "p2p_peer_id": str(b.peer_id)}
            )
            self.resource.close_streams()
            stub.flush()
            await ended

        return self.run_async(scenario)

    def test_slow_reader_is_cut_off(self) -> None:
        """A client that never reads gets STREAM_BACKLOG events of slack, then the stream ends."""
        from twisted.web.test.requesthelper import DummyRequest

        class Request(DummyRequest):
            # DummyRequest spins on resumeProducing until unregistered; a
            # real transport just keeps the producer and pauses it.
            def registerProducer(self, producer: object, streaming: bool) -> None:
                self.producer = producer

            def unregisterProducer(self) -> None:
                self.producer = None

        p2p = P2P(
            Clock(),
            P2PConfig(identity=unchecked_identity(), versions=VERSIONS),
            # room for every point: no garbage collection events in between
            Limits(maintenance_idle_time=None, max_known_points=(4000, 3000)),
            clock=Clock(),
        )
        resource = AdminResource(lambda: p2p)
        from twisted.web.resource import getChildForRequest

        request: Any = Request([b"network", b"log"])
        request.path = b"/network/log"
        getChildForRequest(resource, request).render(request)
        [stream] = resource.streams
        stream.pauseProducing()  # the transport's buffer is full
        for index in range(STREAM_BACKLOG):
            p2p.pool.register_point(Point("127.0.0.1", 1000 + index))
        self.assertEqual(len(stream.pending), STREAM_BACKLOG)
        self.assertFalse(request.finished)
        p2p.pool.register_point(Point("127.0.0.2", 1))
        self.assertTrue(request.finished)
        self.assertEqual(resource.streams, set())
        self.assertEqual(len(stream.pending), 0)


class ErrorTests(SynchronousTestCase):
    """Nothing a client sends gives a 500 or a non-JSON error."""

    def setUp(self) -> None:
        clock = Clock()
        self.p2p = P2P(
            clock,
            P2PConfig(identity=unchecked_identity(), versions=VERSIONS),
            Limits(maintenance_idle_time=None),
            clock=clock,
        )
        self.p2p.pool.register_point(Point("127.0.0.1", 9732))
        self.p2p.pool.register_peer(unchecked_identity().peer_id)
        self.stub_resource = AdminResource(lambda: self.p2p)
        self.stub: Any = StubTreq(self.stub_resource)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        response = self.successResultOf(self.stub.request(method, BASE + path, data=body))
        return response.code, self.successResultOf(response.content())

    def test_unknown_paths_and_methods(self) -> None:
        code, body = self.request("GET", "/nothing/here")
        self.assertEqual(code, 404)
        self.assertEqual(json.loads(body)[0]["id"], "rpc.not_found")
        code, body = self.request("POST", "/network/points")
        self.assertEqual(code, 405)
        code, body = self.request("GET", "/network/points/127.0.0.1:9732/nope")
        self.assertEqual(code, 404)
        code, _ = self.request("HEAD", "/network/self")
        self.assertEqual(code, 200)
        # a HEAD on a stream gets the headers, and no subscription stays behind
        code, _ = self.request("HEAD", "/network/log")
        self.assertEqual(code, 200)
        code, _ = self.request("HEAD", "/network/points/127.0.0.1:9732/log?monitor")
        self.assertEqual(code, 200)
        self.assertEqual(self.stub_resource.streams, set())
        self.assertEqual(self.p2p.pool.points[Point("127.0.0.1", 9732)].watchers, [])

    def test_dial_errors(self) -> None:
        """PUT /network/points/<p> errors: 409 our state, 503 when full, 502 the remote."""
        from txtezosp2p.node.admin.errors import dial_error
        from txtezosp2p.wire.errors import (
            ConnectionFailed,
            IdentityCheckFailure,
            Myself,
            PeerBanned,
            PointBanned,
            TooManyConnections,
        )

        peer = unchecked_identity().peer_id
        for error, status, kind in (
            (PointBanned("x"), 409, "permanent"),
            (PeerBanned(peer), 409, "permanent"),
            (Myself(ConnectionId("127.0.0.1", 9732)), 409, "permanent"),
            (TooManyConnections("x"), 503, "temporary"),
            (ConnectionFailed("x"), 502, "temporary"),
            (IdentityCheckFailure("x", peer, peer), 502, "permanent"),
        ):
            answer = dial_error(error)
            self.assertEqual((answer.status, answer.kind), (status, kind), error)
            self.assertTrue(answer.error_id.startswith("node."), answer.error_id)

    def test_body_kept_bounded(self) -> None:
        """The node keeps at most MAX_BODY + 1 bytes of a request body, however long."""
        from twisted.web.test.requesthelper import DummyChannel

        request = AdminRequest(DummyChannel())
        request.gotLength(None)  # chunked: no announced length
        for _ in range(200):
            request.handleContentChunk(b"x" * 4096)
        content = request.content
        assert content is not None
        self.assertEqual(len(content.getvalue()), MAX_BODY + 1)

    def test_oversized_body(self) -> None:
        code, _ = self.request("PATCH", "/network/points/127.0.0.1:9732", b"{" * 70000)
        self.assertEqual(code, 413)

    segments = st.sampled_from(
        [
            "network", "points", "peers", "connections", "greylist", "ips", "banned",
            "self", "stat", "full_stat", "version", "versions", "127.0.0.1:9732", "[::1]:1",
            "idnotapeer", str(unchecked_identity().peer_id), "%ff", "%00", "..", "",
            "1.2.3.4:99999", "[::1", "x" * 300,
        ]
    )  # fmt: skip

    @given(
        method=st.sampled_from(["GET", "PATCH", "DELETE", "POST", "HEAD", "OPTIONS"]),
        path=st.lists(segments, max_size=5),
        query=st.sampled_from(
            ["", "?wait", "?wait=x", "?filter=running", "?filter=%ff", "?monitor=no"]
        ),
        body=st.one_of(
            st.none(),
            st.binary(max_size=64),
            st.sampled_from(
                [b"{}", b'{"acl": "ban"}', b'{"acl": "trust", "peer_id": "x"}', b"[]", b"null"]
            ),
        ),
    )
    def test_fuzz(self, method: str, path: list[str], query: str, body: bytes | None) -> None:
        code, content = self.request(method, "/" + "/".join(path) + query, body)
        self.assertNotEqual(code, 500, content)
        self.assertLess(code, 500, content)
        if method != "HEAD":
            json.loads(content)


class FakedNetworkTests(SynchronousTestCase):
    """Behind the faked network (P2P disabled), answers as Octez's (behaviour.md section 13)."""

    def setUp(self) -> None:
        faked = faked_network()
        self.stub: Any = StubTreq(AdminResource(lambda: faked))
        self.peer = str(unchecked_identity().peer_id)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        response = self.successResultOf(self.stub.request(method, BASE + path, data=data))
        content = self.successResultOf(response.content())
        if response.headers.getRawHeaders(b"content-type") == [b"application/json"]:
            return response.code, json.loads(content)
        return response.code, content

    def test_pool_endpoints_fail(self) -> None:
        for path in (
            "/network/self",
            "/network/stat",
            "/network/connections",
            "/network/points",
            "/network/peers",
            f"/network/peers/{self.peer}",
            "/network/points/127.0.0.1:9732",
            "/network/points/127.0.0.1:9732/banned",
            "/network/greylist/ips",
        ):
            with self.subTest(path=path):
                code, body = self.request("GET", path)
                self.assertEqual(code, 503)
                self.assertEqual(body[0]["id"], "node.p2p.p2p_layer_disabled")
        code, _ = self.request("PUT", "/network/points/127.0.0.1:9732", {})
        self.assertEqual(code, 503)

    def test_exceptions(self) -> None:
        self.assertEqual(self.request("GET", f"/network/connections/{self.peer}")[0], 404)
        self.assertEqual(self.request("DELETE", f"/network/connections/{self.peer}"), (200, {}))
        patch = {"acl": "ban"}
        self.assertEqual(self.request("PATCH", "/network/points/127.0.0.1:9732", patch)[0], 404)
        self.assertEqual(self.request("PATCH", f"/network/peers/{self.peer}", patch)[0], 404)
        code, version = self.request("GET", "/version")
        self.assertEqual(code, 200)
        self.assertNotIn("network_version", version)
        code, metrics = self.request("GET", "/metrics")
        self.assertEqual(code, 200)
        self.assertNotIn(b"octez_p2p_connections", metrics)


class BindingTests(SynchronousTestCase):
    def test_local_endpoints(self) -> None:
        for local in (
            "tcp:8732:interface=127.0.0.1",
            "tcp:0:interface=127.0.0.5",
            "tcp6:8732:interface=\\:\\:1",
            "unix:/tmp/admin.sock",
        ):
            self.assertTrue(is_local_endpoint(local), local)
            check_admin_endpoint(local)
        for public in (
            "tcp:8732",
            "tcp:8732:interface=0.0.0.0",
            "tcp:8732:interface=10.0.0.1",
            "tcp6:8732:interface=\\:\\:",
            "tcp:8732:interface=localhost",
            "systemd:domain=INET:index=0",
        ):
            self.assertFalse(is_local_endpoint(public), public)
            self.assertRaises(ValueError, check_admin_endpoint, public)
            check_admin_endpoint(public, allow_public=True)
        self.assertRaises(ValueError, AdminService, Clock(), ("tcp:8732",), lambda: None)


def non_persistent_http(reactor: Any) -> HTTPClient:
    """One connection per request, closed with its response: a clean reactor after a test."""
    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


async def admin_node(testcase: TestCase, reactor: Any, clock: Clock) -> tuple[Node, P2P, str]:
    """A started node on loopback with its admin API on a free port: (node, P2P layer, URL)."""
    node = Node(
        reactor,
        NodeOptions(
            data_dir=testcase.mktemp(),
            listen=("tcp:0:interface=127.0.0.1",),
            expected_pow=0.0,
            chain_name="SANDBOXED_TEZOS",
            limits=Limits(min_connections=1, expected_connections=2, max_connections=4),
            admin=("tcp:0:interface=127.0.0.1",),
        ),
        message_encodings=[Text],
        clock=clock,
    )
    node.startService()
    testcase.addCleanup(node.stopService)
    p2p = await node.when_ready()
    assert node.admin is not None
    [port] = await node.admin.when_listening()
    return node, p2p, f"http://127.0.0.1:{port.getHost().port}"  # type: ignore[attr-defined]


async def dialling_node(testcase: TestCase, reactor: Any, clock: Clock, target: P2P) -> P2P:
    """Another P2P layer on loopback, connected to ``target``."""
    node = P2P(
        reactor,
        P2PConfig(
            identity=unchecked_identity(),
            versions=VERSIONS,
            listen=("tcp:0:interface=127.0.0.1",),
            proof_of_work_target=0.0,
        ),
        Limits(maintenance_idle_time=None),
        message_encodings=[Text],
        clock=clock,
    )
    await node.activate()
    testcase.addCleanup(node.shutdown)
    await node.connect(point_of(target))
    return node


class RealHTTPTests(TestCase):
    """The API over real HTTP on loopback, against a running node with live connections."""

    timeout = 60

    def test_running_node(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            clock = Clock()
            first, p2p, url = await admin_node(self, reactor, clock)
            http = non_persistent_http(reactor)

            # the event stream, opened before the peer arrives
            response = await http.get(url + "/network/log", unbuffered=True)
            self.assertEqual(response.code, 200)
            established: Deferred[dict[str, Any]] = Deferred()
            buffer = bytearray()

            def collect(data: bytes) -> None:
                buffer.extend(data)
                while b"\n" in buffer:
                    line, _, rest = bytes(buffer).partition(b"\n")
                    buffer[:] = rest
                    event = json.loads(line)
                    if event["event"] == "connection_established" and not established.called:
                        established.callback(event)

            streaming = treq.collect(response, collect)
            second = await dialling_node(self, reactor, clock, p2p)
            event = await established
            self.assertEqual(event["peer_id"], str(second.peer_id))

            connections = await (await http.get(url + "/network/connections")).json()
            self.assertEqual(shape(connections), shape(OCTEZ_CONNECTIONS))
            self.assertEqual(connections[0]["peer_id"], str(second.peer_id))
            banned = await http.patch(
                url + f"/network/peers/{second.peer_id}",
                data=json.dumps({"acl": "ban"}).encode(),
                headers=Headers({b"content-type": [b"application/json"]}),
            )
            self.assertEqual(banned.code, 200)
            await banned.content()
            # a body far over the limit: kept bounded by the node, refused
            huge = await http.patch(
                url + "/network/points/127.0.0.1:1", data=b"{" * (4 * 1024 * 1024)
            )
            self.assertEqual(huge.code, 413)
            await huge.content()
            await eventually(lambda: p2p.connections() == [], [p2p])
            metrics = await (await http.get(url + "/metrics")).text()
            self.assertIn('octez_p2p_connections{kind="active"} 0.0', metrics)
            await first.stopService()  # ends the stream
            await streaming

        return Deferred.fromCoroutine(scenario())

    def test_admin_port_in_use(self) -> Deferred[None]:
        """An admin endpoint that cannot listen stops the node before it joins the network."""
        from twisted.internet import reactor
        from twisted.internet.error import CannotListenError
        from twisted.internet.protocol import ServerFactory

        async def scenario() -> None:
            taken = reactor.listenTCP(0, ServerFactory(), interface="127.0.0.1")
            self.addCleanup(taken.stopListening)
            node = Node(
                reactor,
                NodeOptions(
                    data_dir=self.mktemp(),
                    listen=("tcp:0:interface=127.0.0.1",),
                    expected_pow=0.0,
                    admin=(f"tcp:{taken.getHost().port}:interface=127.0.0.1",),  # type: ignore[attr-defined]
                ),
                clock=Clock(),
            )
            ready = node.when_ready()
            node.startService()
            self.addCleanup(node.stopService)
            with self.assertRaises(NodeStartError) as caught:
                await ready
            self.assertIsNone(node.p2p)
            # the reason the node did not start, in one line (no traceback logged)
            self.assertIn("cannot serve the admin API on 127.0.0.1:", str(caught.exception))
            self.assertEqual(self.flushLoggedErrors(CannotListenError), [])

        return Deferred.fromCoroutine(scenario())
