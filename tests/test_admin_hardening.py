# -*- test-case-name: tests.test_admin_hardening -*-
"""
The admin API against hostile input (docs/admin-api.md, "Hardening"): raw
requests through Twisted's own HTTP parser (bodies nested far too deep,
query strings and paths that do not decode), the JSON limits, the one error
boundary that answers 500 only for a bug of ours, and a seeded fuzz
campaign over real TCP against a running node with a live connection.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.server import Site

from bench.fuzz_admin import Targets, exchange, fire, hostile_requests
from txtezosp2p.limits import Limits
from txtezosp2p.node.admin import AdminRequest, AdminResource
from txtezosp2p.node.admin.bodies import MAX_JSON_DEPTH, nesting_depth, parse_json
from txtezosp2p.node.admin.errors import APIError
from txtezosp2p.p2p import P2P, P2PConfig
from txtezosp2p.testing import unchecked_identity
from txtezosp2p.wire.errors import ConnectionFailed
from txtezosp2p.wire.ids import Point

from .test_admin import admin_node, dialling_node
from .test_p2p import VERSIONS, point_of


def answer(resource: AdminResource, raw: bytes) -> tuple[int, Any]:
    """
    ``raw`` (one HTTP request, as bytes) through Twisted's HTTP server into
    ``resource``: the status, and the JSON body when there is one.
    """
    site = Site(resource, reactor=Clock())
    site.requestFactory = AdminRequest
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert channel is not None
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(raw)
    out = transport.value()
    head, _, body = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    head = head.lower()
    if b"transfer-encoding: chunked" in head:
        chunks = bytearray()
        while True:
            size, _, body = body.partition(b"\r\n")
            if not int(size, 16):
                break
            chunks += body[: int(size, 16)]
            body = body[int(size, 16) + 2 :]
        body = bytes(chunks)
    if b"content-type: application/json" in head and body:
        return status, json.loads(body)
    return status, body


def request(method: bytes, target: bytes, body: bytes | None = None) -> bytes:
    headers = b"Host: node\r\n"
    if body is not None:
        headers += b"Content-Length: %d\r\n" % len(body)
    return b"%s %s HTTP/1.1\r\n%s\r\n%s" % (method, target, headers, body or b"")


class HostileRequestTests(SynchronousTestCase):
    """Inputs that used to answer 500 (issue: nested JSON, undecodable query strings)."""

    def setUp(self) -> None:
        clock = Clock()
        self.p2p = P2P(
            clock,
            P2PConfig(identity=unchecked_identity(), versions=VERSIONS),
            Limits(maintenance_idle_time=None),
            clock=clock,
        )
        self.p2p.pool.register_point(Point("127.0.0.1", 9732))
        self.peer = unchecked_identity().peer_id
        self.p2p.pool.register_peer(self.peer)
        self.resource = AdminResource(lambda: self.p2p)

    def send(self, raw: bytes) -> tuple[int, Any]:
        return answer(self.resource, raw)

    def test_nested_bodies(self) -> None:
        """Bodies nested thousands deep are a 400 (they were a RecursionError, 500)."""
        deep = [
            b"[" * 5000 + b"]" * 5000,
            b'{"acl":' * 5000 + b"1" + b"}" * 5000,
            b"[" * 20000,
            b'{"acl": ' + b"[" * 33 + b"]" * 33 + b"}",
        ]
        for method, target in (
            (b"PATCH", b"/network/peers/" + str(self.peer).encode()),
            (b"PATCH", b"/network/points/127.0.0.1:9732"),
            (b"PUT", b"/network/points/127.0.0.1:9732"),
        ):
            for body in deep:
                with self.subTest(method=method, target=target, body=body[:10]):
                    status, error = self.send(request(method, target, body))
                    self.assertEqual(status, 400)
                    self.assertEqual(error[0]["id"], "rpc.bad_request")
                    self.assertIn("nests more than 32", error[0]["msg"])

    def test_query_strings(self) -> None:
        """Query strings that do not decode are a 400 (they were a UnicodeError, 500)."""
        point_log = b"/network/points/127.0.0.1:9732/log"
        connection = b"/network/connections/" + str(self.peer).encode()
        for method, target in (
            (b"GET", b"/network/peers?filter=%ff"),
            (b"GET", b"/network/points?filter=%ff"),
            (b"GET", b"/network/peers?filter=\xff"),
            (b"GET", b"/network/points?filter=\xc3\xbf"),
            (b"HEAD", point_log + b"?monitor=%ff"),
            (b"DELETE", connection + b"?wait=%ff"),
            (b"GET", b"/network/points?filter=%zz"),
            (b"GET", b"/network/points?filter=%f"),
            (b"GET", b"/network/self?%ff"),
        ):
            with self.subTest(method=method, target=target):
                status, error = self.send(request(method, target))
                self.assertEqual(status, 400)
                # Twisted refuses raw non-ASCII bytes in the request line
                # itself (a 400 without body); the rest reaches the API
                if method != b"HEAD" and target.isascii():
                    self.assertEqual(error[0]["id"], "rpc.bad_request")
        # what does decode still works, flags and filters included
        self.assertEqual(self.send(request(b"GET", b"/network/points?filter=running"))[1], [])
        status, _ = self.send(request(b"GET", point_log + b"?monitor=%66alse"))
        self.assertEqual(status, 200)

    def test_paths(self) -> None:
        for target, status in (
            (b"/network/peers/%ff", 400),
            (b"/network/points/%C3%A9:1", 400),
            (b"/network/\xc3\xa9", 400),
            (b"/network/%zz", 400),
            (b"/network/%", 400),
            (b"/network/%ED%A0%80", 400),  # an encoded surrogate is not UTF-8
            (b"network/self", 400),
            (b"http://node/network/self", 400),
            (b"/network/self/", 200),
            (b"/%6eetwork/self", 200),
            (b"//network//self", 404),
            (b"/network/points/%5B%3A%3A1%5D%3A1", 404),  # [::1]:1, unknown
        ):
            with self.subTest(target=target):
                self.assertEqual(self.send(request(b"GET", target))[0], status)

    def test_json_limits(self) -> None:
        deepest: Any = []
        for _ in range(MAX_JSON_DEPTH - 1):
            deepest = [deepest]
        self.assertEqual(parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH), deepest)
        self.assertEqual(nesting_depth('{"a": "[[[[[[", "b": [{}]}', 32), 3)
        self.assertEqual(nesting_depth('["\\"[[[["]', 32), 1)
        self.assertEqual(nesting_depth("[" * 1000, 32), 33)  # counts no further
        self.assertEqual(parse_json(b'{"acl": "[[[["}'), {"acl": "[[[["})
        self.assertEqual(parse_json(b"9" * 100), int("9" * 100))
        for bad in (
            b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
            b"9" * 101,
            b"NaN",
            b"[-Infinity]",
            b'{"acl": "\xff"}',
            '{"acl": "ban"}'.encode("utf-16"),
            b'"' + b'\\"' * 5000,
        ):
            with self.subTest(body=bad[:20]):
                with self.assertRaises(APIError) as raised:
                    parse_json(bad)
                self.assertEqual(raised.exception.status, 400)


class ErrorBoundaryTests(SynchronousTestCase):
    """Only a bug of ours is a 500, and it is logged."""

    def test_bug_in_a_handler(self) -> None:
        def broken() -> P2P:
            raise RuntimeError("a bug")

        resource = AdminResource(broken)
        status, error = answer(resource, request(b"GET", b"/network/self"))
        self.assertEqual((status, error[0]["id"]), (500, "rpc.internal"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_bug_in_a_deferred(self) -> None:
        clock = Clock()
        p2p = P2P(clock, P2PConfig(identity=unchecked_identity(), versions=VERSIONS), clock=clock)
        resource = AdminResource(lambda: p2p)
        outcomes: list[Deferred[Any]] = [fail(RuntimeError("a bug")), fail(ConnectionFailed("x"))]
        p2p.connect = lambda *_, **__: outcomes.pop(0)  # type: ignore[method-assign]
        status, error = answer(resource, request(b"PUT", b"/network/points/127.0.0.1:1"))
        self.assertEqual((status, error[0]["id"]), (500, "rpc.internal"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        # a failure of the P2P layer is an answer, not a bug: nothing logged
        status, error = answer(resource, request(b"PUT", b"/network/points/127.0.0.1:1"))
        self.assertEqual((status, error[0]["kind"]), (502, "temporary"))


class FuzzOverHTTPTests(TestCase):
    """The fuzzer of ``bench/fuzz_admin.py``, a few hundred requests, against a live node."""

    timeout = 120

    def test_no_500(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            clock = Clock()
            _node, p2p, url = await admin_node(self, reactor, clock)
            peer = await dialling_node(self, reactor, clock, p2p)
            for index in range(5):
                p2p.pool.register_point(Point("127.0.0.1", 2000 + index))
            port = int(url.rsplit(":", 1)[1])
            targets = Targets(
                peer_ids=[str(p2p.peer_id), str(peer.peer_id), str(unchecked_identity().peer_id)],
                points=[point_of(peer).to_text(), "127.0.0.1:2000", "127.0.0.1:2003"],
            )
            statuses = await fire(reactor, port, hostile_requests(7, 400, targets), 8)
            self.assertEqual(sum(statuses.values()), 400)
            self.assertNotIn("500", statuses, statuses)
            # the requests reach the handlers and every kind of refusal
            for status in ("200", "400", "404", "405"):
                self.assertGreater(statuses[status], 10, statuses)
            alive = b"GET /network/self HTTP/1.1\r\nHost: node\r\n\r\n"
            self.assertEqual(await exchange(reactor, port, alive), "200")

        return Deferred.fromCoroutine(scenario())


#: Endpoint strings whose text names a loopback address but which bind more.
BYPASSES = (
    "tcp:8732:interface=127.0.0.1:interface=0.0.0.0",
    "tcp:8732:interface=127.0.0.1:interface=",
    "tcp:interface=127.0.0.1:port=8732:interface=10.0.0.1",
    "tcp6:8732:interface=\\:\\:1:interface=\\:\\:",
    "tcp6:8732:interface=\\:\\:1:interface=",
    "tcp:8732:interface=127.1",
    "tcp:8732:interface=127.0.0.1 ",
    "tcp:8732:interface=localhost",
    "tcp6:8732",
)


class BindingTests(TestCase):
    """The loopback rule decides on what Twisted would bind, not on the text."""

    def test_bypasses_refused(self) -> None:
        from twisted.python import usage

        from txtezosp2p.node.admin import check_admin_endpoint, is_local_endpoint
        from txtezosp2p.node.tap import CommandOptions

        for description in BYPASSES:
            with self.subTest(description=description):
                self.assertFalse(is_local_endpoint(description))
                with self.assertRaises(ValueError) as refused:
                    check_admin_endpoint(description)
                self.assertIn("would be reachable from the network", str(refused.exception))
                check_admin_endpoint(description, allow_public=True)
                options = CommandOptions()
                with self.assertRaises(usage.UsageError):
                    options.parseOptions(["-d", self.mktemp(), "--admin", description])

    def test_effective_interface(self) -> None:
        from txtezosp2p.node.admin.endpoints import effective_binds

        for description, binds in (
            ("tcp:8732:interface=0.0.0.0:interface=127.0.0.1", [("tcp", "127.0.0.1")]),
            ("tcp:port=8732:interface=127.0.0.1", [("tcp", "127.0.0.1")]),
            ("tcp6:8732:interface=\\:\\:1", [("tcp", "::1")]),
            ("tcp:8732:interface=\\:\\:ffff\\:127.0.0.1", [("tcp", "::ffff:127.0.0.1")]),
            ("unix:/tmp/admin.sock:lockfile=1", [("unix", "/tmp/admin.sock")]),
            ("tcp:8732", [("tcp", "")]),
        ):
            with self.subTest(description=description):
                self.assertEqual(effective_binds(description), binds)
        for unusable in ("systemd:domain=INET:index=0", "nope:1", "", "tcp:abc"):
            with self.subTest(description=unusable):
                self.assertRaises(ValueError, effective_binds, unusable)

    def test_what_is_checked_is_what_is_bound(self) -> Deferred[None]:
        """Over real TCP: the address the check read is the one the socket has."""
        from twisted.internet import reactor

        from txtezosp2p.node.admin import AdminService
        from txtezosp2p.node.admin.endpoints import effective_binds

        self.assertRaises(
            ValueError,
            AdminService,
            reactor,
            ("tcp:0:interface=127.0.0.1:interface=0.0.0.0",),
            lambda: None,
        )

        async def scenario() -> None:
            description = "tcp:0:interface=0.0.0.0:interface=127.0.0.1"
            service = AdminService(reactor, (description,), lambda: None)
            service.startService()
            self.addCleanup(service.stopService)
            [port] = await service.when_listening()
            host = port.getHost().host  # type: ignore[attr-defined]
            self.assertEqual([("tcp", host)], effective_binds(description))
            self.assertEqual(host, "127.0.0.1")

        return Deferred.fromCoroutine(scenario())


class AccessLogTests(TestCase):
    """No log line per admin call by default: one debug event each."""

    timeout = 60

    def test_requests_are_debug_events(self) -> Deferred[None]:
        from twisted.internet import reactor
        from twisted.logger import LogLevel

        from .helpers import capture_events, debug_events, named

        debug_events(self)  # the library emits debug events only when asked

        async def scenario() -> None:
            _node, _p2p, url = await admin_node(self, reactor, Clock())
            events = capture_events(self)
            port = int(url.rsplit(":", 1)[1])
            call = b"GET /network/self?x=1 HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n"
            self.assertEqual(await exchange(reactor, port, call), "200")
            [logged] = await _eventually_one(events, "admin_request")
            self.assertEqual(logged["log_level"], LogLevel.debug)
            self.assertEqual(
                (logged["method"], logged["path"], logged["status"]),
                ("GET", "/network/self?x=1", 200),
            )
            loud = [
                event
                for event in events
                if event["log_level"] > LogLevel.debug and "/network/self" in repr(event)
            ]
            self.assertEqual(loud, [])
            self.assertEqual(named(events, "admin_request"), [logged])

        return Deferred.fromCoroutine(scenario())


async def _eventually_one(events: list[Any], name: str, turns: int = 1000) -> list[Any]:
    """The events named ``name``, once there is one (the log follows the answer)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    for _ in range(turns):
        found = [event for event in events if event.get("event") == name]
        if found:
            return found
        await deferLater(reactor, 0, lambda: None)
    raise AssertionError(f"no {name} event")
