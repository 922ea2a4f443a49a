# -*- test-case-name: tests.test_admin_client -*-
"""
The admin command line (``tezos-p2p rpc``, ``peers``, ``connections``,
``points``, ``stat``, ``ban``, ``unban``, ``trust``, ``kick``) against a
running node with a live connection, over real HTTP on loopback: tables on
a terminal, JSON when piped, one-line errors; and the console script itself
in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.node.admin_client import (
    AdminClientError,
    _streaming,
    execute,
    table,
    target_path,
)
from txtezosp2p.node.cli import build_parser
from txtezosp2p.testing import unchecked_identity

from .test_admin import admin_node, dialling_node, non_persistent_http
from .test_p2p import eventually, point_of


class Terminal(io.StringIO):
    """Output that claims to be a terminal: the shortcuts print tables."""

    def isatty(self) -> bool:
        return True


class UnitTests(SynchronousTestCase):
    def test_table(self) -> None:
        self.assertEqual(table(("A", "LONG"), [["xyz", "1"], ["x", "22"]]).splitlines(), [
            "A    LONG",
            "xyz  1",
            "x    22",
        ])  # fmt: skip
        self.assertEqual(table(("A",), []), "(none)")

    def test_targets(self) -> None:
        peer = str(unchecked_identity().peer_id)
        self.assertEqual(target_path(peer), "network/peers/" + peer)
        self.assertEqual(target_path("127.0.0.1:9732"), "network/points/127.0.0.1%3A9732")
        self.assertEqual(target_path("[::1]:9732"), "network/points/%5B%3A%3A1%5D%3A9732")
        for bad in ("", "idnotapeer", "1.2.3.4", "host:99999"):
            self.assertRaises(AdminClientError, target_path, bad)

    def test_streaming_paths(self) -> None:
        self.assertTrue(_streaming("/network/log"))
        self.assertTrue(_streaming("network/peers/x/log?monitor"))
        self.assertTrue(_streaming("/network/points/x/log?monitor=true"))
        self.assertFalse(_streaming("/network/points/x/log?monitor=false"))
        self.assertFalse(_streaming("/network/points/x/log"))
        self.assertFalse(_streaming("/network/connections"))

    def test_parser(self) -> None:
        args = build_parser().parse_args(["rpc", "patch", "/network/points/x", "{}"])
        self.assertEqual((args.method, args.path, args.body), ("patch", "/network/points/x", "{}"))
        self.assertEqual(args.endpoint, "http://127.0.0.1:8742")
        args = build_parser().parse_args(["kick", "idx", "--wait", "--endpoint", "http://h:1"])
        self.assertEqual((args.peer, args.wait, args.endpoint), ("idx", True, "http://h:1"))


class LiveNodeTests(TestCase):
    """A node with its admin API on a free loopback port and one live connection."""

    timeout = 60

    def setUp(self) -> Deferred[None]:  # type: ignore[override]  # trial waits for it
        return Deferred.fromCoroutine(self._start())

    async def _start(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.clock = Clock()
        self.node, self.p2p, self.url = await admin_node(self, reactor, self.clock)
        self.http = non_persistent_http(reactor)
        self.other = await dialling_node(self, reactor, self.clock, self.p2p)
        await eventually(lambda: len(self.p2p.connections()) == 1, [self.p2p])

    async def run_command(self, *argv: str, terminal: bool = False) -> tuple[int, str]:
        out: io.StringIO = Terminal() if terminal else io.StringIO()
        args = build_parser().parse_args([*argv, "--endpoint", self.url])
        status = await execute(self.http, args, out)
        return status, out.getvalue()

    def scenario(self, coroutine: Any) -> Deferred[None]:
        return Deferred.fromCoroutine(coroutine)

    def test_connections(self) -> Deferred[None]:
        async def go() -> None:
            status, text = await self.run_command("connections")
            self.assertEqual(status, 0)
            [connection] = json.loads(text)
            self.assertEqual(connection["peer_id"], str(self.other.peer_id))
            self.assertTrue(connection["incoming"])
            status, text = await self.run_command("connections", terminal=True)
            header, row = text.splitlines()
            self.assertEqual(header.split(), ["PEER", "DIR", "POINT", "REMOTE", "PORT", "CHAIN",
                                              "PRIVATE"])  # fmt: skip
            self.assertEqual(row.split()[:3], [str(self.other.peer_id), "in", "127.0.0.1:" +
                                               str(self.other.listening_port)])  # fmt: skip
            status, text = await self.run_command("connections", "--json", terminal=True)
            self.assertEqual(json.loads(text)[0]["peer_id"], str(self.other.peer_id))

        return self.scenario(go())

    def test_peers_points_stat(self) -> Deferred[None]:
        async def go() -> None:
            _, text = await self.run_command("peers")
            [[peer_id, info]] = json.loads(text)
            self.assertEqual((peer_id, info["state"]), (str(self.other.peer_id), "running"))
            _, text = await self.run_command("peers", terminal=True)
            self.assertIn(str(self.other.peer_id), text)
            self.assertIn("running", text)
            _, text = await self.run_command("peers", "--filter", "disconnected")
            self.assertEqual(json.loads(text), [])
            _, text = await self.run_command("points", terminal=True)
            self.assertEqual(text.split()[:5], ["POINT", "STATE", "PEER", "TRUSTED", "LAST"])
            self.assertIn("running", text)
            _, text = await self.run_command("stat")
            self.assertEqual(
                set(json.loads(text)),
                {"total_sent", "total_recv", "current_inflow", "current_outflow"},
            )
            _, text = await self.run_command("stat", terminal=True)
            self.assertIn("total_sent: ", text)

        return self.scenario(go())

    def test_ban_unban_trust(self) -> Deferred[None]:
        """``ban PEER`` closes the connection; ``unban`` and ``trust`` change the ACL."""

        async def go() -> None:
            peer = str(self.other.peer_id)
            status, text = await self.run_command("ban", peer, terminal=True)
            self.assertEqual((status, text), (0, f"banned {peer}\n"))
            await eventually(lambda: self.p2p.connections() == [], [self.p2p])
            self.assertTrue(self.p2p.acl.banned_peer(self.other.peer_id))
            _, text = await self.run_command("unban", peer)
            self.assertFalse(json.loads(text)["trusted"])
            self.assertFalse(self.p2p.acl.banned_peer(self.other.peer_id))
            point = point_of(self.other).to_text()
            _, text = await self.run_command("trust", point)
            self.assertTrue(json.loads(text)["trusted"])
            self.assertTrue(self.p2p.pool.points[point_of(self.other)].trusted)

        return self.scenario(go())

    def test_ban_unknown_point(self) -> Deferred[None]:
        """``tezos-p2p ban 203.0.113.7:9732`` on a node that never heard of the address."""
        from txtezosp2p.wire.ids import Point

        async def go() -> None:
            target = "203.0.113.7:9732"
            status, text = await self.run_command("ban", target, terminal=True)
            self.assertEqual(status, 0)
            self.assertEqual(
                text, f"banned {target}: the node does not know this point; its address is banned\n"
            )
            self.assertTrue(self.p2p.acl.blacklisted_addr(Point.parse(target).addr))
            self.assertEqual(await self.run_command("ban", target), (0, "true\n"))
            # points shows it once the node knows a point at that address
            self.p2p.pool.register_point(Point("203.0.113.7", 1))
            _, text = await self.run_command("points", terminal=True)
            [row] = [line for line in text.splitlines() if line.startswith("203.0.113.7:1 ")]
            self.assertEqual(row.split()[-1], "yes")
            self.assertEqual(text.splitlines()[0].split()[-1], "BANNED")
            status, text = await self.run_command("unban", target, terminal=True)
            self.assertEqual((status, text.split(": ")[0]), (0, f"unbanned {target}"))
            self.assertFalse(self.p2p.acl.banned_addr(Point.parse(target).addr))
            _, text = await self.run_command("points", terminal=True)
            [row] = [line for line in text.splitlines() if line.startswith("203.0.113.7:1 ")]
            self.assertEqual(row.split()[-1], "no")
            # a peer id never seen
            stranger = str(unchecked_identity().peer_id)
            status, text = await self.run_command("ban", stranger, terminal=True)
            self.assertEqual(
                (status, text),
                (0, f"banned {stranger}: the node does not know this peer; its id is banned\n"),
            )
            # trust is not a ban: an unknown point is added, trusted
            _, text = await self.run_command("trust", "203.0.113.8:9732")
            self.assertTrue(json.loads(text)["trusted"])

        return self.scenario(go())

    def test_greylist(self) -> Deferred[None]:
        """``tezos-p2p greylist`` shows the greylists, ``greylist clear`` empties them."""

        async def go() -> None:
            self.p2p.greylist_peer(self.other.peer_id)
            _, text = await self.run_command("greylist", terminal=True)
            self.assertEqual(
                text.splitlines(),
                ["addresses: ::ffff:127.0.0.1", f"peers: {self.other.peer_id}"],
            )
            _, text = await self.run_command("greylist", "show")
            self.assertEqual(json.loads(text)["peers"], [str(self.other.peer_id)])
            status, text = await self.run_command("greylist", "clear", terminal=True)
            self.assertEqual((status, text), (0, "greylists cleared\n"))
            self.assertEqual(self.p2p.acl.greylisted_peers(), [])
            self.assertFalse(self.p2p.acl.banned_addr("127.0.0.1"))
            _, text = await self.run_command("greylist", terminal=True)
            self.assertEqual(text.splitlines(), ["addresses: (none)", "peers: (none)"])
            self.assertEqual(await self.run_command("greylist", "clear"), (0, "{}\n"))

        return self.scenario(go())

    def test_kick(self) -> Deferred[None]:
        async def go() -> None:
            peer = str(self.other.peer_id)
            status, text = await self.run_command("kick", peer, "--wait", terminal=True)
            self.assertEqual((status, text), (0, f"disconnected {peer}\n"))
            self.assertEqual(self.p2p.connections(), [])
            status, text = await self.run_command("kick", peer, terminal=True)
            self.assertEqual((status, text), (0, f"no connection with {peer}\n"))
            self.assertEqual(await self.run_command("kick", peer), (0, "{}\n"))

        return self.scenario(go())

    def test_rpc(self) -> Deferred[None]:
        async def go() -> None:
            _, text = await self.run_command("rpc", "get", "/network/self")
            self.assertEqual(json.loads(text), str(self.p2p.peer_id))
            point = point_of(self.other).to_text()
            body = json.dumps({"acl": "trust"})
            _, text = await self.run_command("rpc", "patch", f"/network/points/{point}", body)
            self.assertTrue(json.loads(text)["trusted"])
            _, text = await self.run_command("rpc", "get", "/metrics")
            self.assertIn("octez_p2p_connections", text)
            for argv, message in (
                (("rpc", "get", "/nothing"), "HTTP 404"),
                (("rpc", "patch", f"/network/points/{point}", "{"), "not JSON"),
                (("rpc", "get", "/network/self", "{}"), "takes no body"),
                (("rpc", "patch", f"/network/points/{point}", '{"acl": 1}'), "HTTP 400"),
            ):
                with self.assertRaises(AdminClientError) as caught:
                    await self.run_command(*argv)
                self.assertIn(message, str(caught.exception))

        return self.scenario(go())

    def test_rpc_streams(self) -> Deferred[None]:
        """``rpc get /network/log`` prints each event as it arrives, until the node ends it."""

        async def go() -> None:
            out = io.StringIO()
            args = build_parser().parse_args(["rpc", "get", "/network/log", "--endpoint", self.url])
            streaming = Deferred.fromCoroutine(execute(self.http, args, out))
            # the stream is open once the node has a subscriber
            await self.turns_until(lambda: len(self.node_admin_streams()) == 1)
            await self.p2p.disconnect(self.p2p.connections()[0])
            await self.turns_until(lambda: "disconnection" in out.getvalue())
            await self.node.stopService()  # ends the stream
            self.assertEqual(await streaming, 0)
            events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
            self.assertIn("disconnection", events)

        return self.scenario(go())

    async def turns_until(self, condition: Callable[[], bool]) -> None:
        """Wait for ``condition``, checked once per reactor turn (counted, not timed)."""
        for _ in range(100_000):
            if condition():
                return
            await deferLater(self.reactor, 0, lambda: None)
        raise AssertionError("condition never met")

    def node_admin_streams(self) -> set[Any]:
        assert self.node.admin is not None
        return self.node.admin.resource.streams

    def test_oversized_answer(self) -> Deferred[None]:
        """An answer over the client's limit is refused while it arrives, not buffered."""
        from txtezosp2p.node import admin_client

        self.patch(admin_client, "MAX_RESPONSE", 200)

        async def go() -> None:
            with self.assertRaises(AdminClientError) as caught:
                await self.run_command("rpc", "get", "/network/full_stat")
            self.assertIn("answer larger than 200 bytes", str(caught.exception))

        return self.scenario(go())

    def test_unreachable(self) -> Deferred[None]:
        async def go() -> None:
            args = build_parser().parse_args(["peers", "--endpoint", "http://127.0.0.1:1"])
            with self.assertRaises(AdminClientError) as caught:
                await execute(self.http, args, io.StringIO())
            self.assertIn("cannot reach the admin API at http://127.0.0.1:1", str(caught.exception))

        return self.scenario(go())

    def test_interrupted_stream(self) -> Deferred[None]:
        """
        Ctrl-C on a real ``tezos-p2p rpc get /network/log`` streaming from the
        node: exit status 130 and one line, no traceback of the dropped stream.
        """
        from twisted.internet.protocol import ProcessProtocol

        from txtezosp2p.wire.ids import Point

        class CLI(ProcessProtocol):
            def __init__(self) -> None:
                self.out = b""
                self.err = b""
                self.first_line: Deferred[None] = Deferred()
                self.ended: Deferred[int | None] = Deferred()

            def outReceived(self, data: bytes) -> None:
                self.out += data
                if b"\n" in self.out and not self.first_line.called:
                    self.first_line.callback(None)

            def errReceived(self, data: bytes) -> None:
                self.err += data

            def processEnded(self, reason: Failure) -> None:
                # None if the signal killed it
                self.ended.callback(getattr(reason.value, "exitCode", None))

        async def go() -> None:
            # the stream is open once the CLI's request subscribed to the pool
            subscribed: Deferred[None] = Deferred()
            watch = self.p2p.watch

            def spied(callback: Callable[[Any], None]) -> Callable[[], None]:
                unsubscribe = watch(callback)
                if not subscribed.called:
                    subscribed.callback(None)
                return unsubscribe

            self.patch(self.p2p, "watch", spied)
            cli = CLI()
            argv = ["-m", "txtezosp2p.node.cli", "rpc", "get", "/network/log"]
            self.reactor.spawnProcess(  # type: ignore[attr-defined]
                cli, sys.executable, [sys.executable, *argv, "--endpoint", self.url], env=os.environ
            )

            def early_end(code: object) -> object:
                if not subscribed.called:
                    subscribed.errback(AssertionError(f"the CLI ended first: {cli.err!r}"))
                return code

            cli.ended.addBoth(early_end)
            await subscribed
            self.p2p.pool.register_point(Point("127.0.0.1", 4321))
            await cli.first_line
            assert cli.transport is not None
            cli.transport.signalProcess("INT")
            self.assertEqual(await cli.ended, 130, cli.err)
            self.assertEqual(cli.err, b"tezos-p2p: interrupted\n")
            self.assertEqual(json.loads(cli.out.splitlines()[0])["event"], "new_point")

        return self.scenario(go())

    def test_console_script(self) -> Deferred[None]:
        """The real ``tezos-p2p`` in a subprocess: JSON on a pipe; errors: one line, status 1."""

        async def go() -> None:
            env = {**os.environ, "TEZOS_P2P_ADMIN": self.url}
            command = ["-m", "txtezosp2p.node.cli"]
            out, err, code = await getProcessOutputAndValue(
                sys.executable, [*command, "connections"], env=env
            )
            self.assertEqual(code, 0, err)
            self.assertEqual(json.loads(out)[0]["peer_id"], str(self.other.peer_id))
            out, err, code = await getProcessOutputAndValue(
                sys.executable, [*command, "rpc", "get", "/network/points/nope"], env=env
            )
            self.assertEqual((code, out), (1, b""))
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertTrue(err.startswith(b"tezos-p2p: /network/points/nope: HTTP 400"), err)

        return self.scenario(go())
