# -*- test-case-name: tests.test_node -*-
"""
The first node: the twistd plugin and its options, and two nodes talking
over real TCP on loopback, one of them mining its identity on first start.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import IServiceMaker
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

import twisted.plugins
from txtezosp2p.encoding import Bootstrap
from txtezosp2p.identity import IdentityFile
from txtezosp2p.node import Node, NodeOptions, parse_peer
from txtezosp2p.session import Session
from txtezosp2p.tap import Options, makeService

from .helpers import IDENTITY_A

REPO_PLUGINS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "twisted", "plugins")


class PluginTests(SynchronousTestCase):
    def test_found(self) -> None:
        """getPlugins finds tezos-p2p, from the source tree or the installed package."""
        self.patch(twisted.plugins, "__path__", [*twisted.plugins.__path__, REPO_PLUGINS])
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("tezos-p2p", makers)
        maker = makers["tezos-p2p"]
        self.assertIsInstance(maker.options(), Options)


class OptionsTests(SynchronousTestCase):
    def parse(self, *argv: str) -> Options:
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_defaults(self) -> None:
        node = self.parse().node_options()
        self.assertEqual(node.data_dir, "tezos-p2p-data")
        self.assertEqual(node.listen, ("tcp:9732",))
        self.assertEqual(node.peers, ())
        self.assertEqual(node.expected_pow, 26.0)
        self.assertEqual(node.chain_name, "TEZOS_MAINNET")

    def test_repeatable(self) -> None:
        node = self.parse(
            "--listen", "tcp:1:interface=127.0.0.1",
            "--listen", "tcp6:2:interface=\\:\\:",
            "--peer", "1.2.3.4",
            "--peer", "[::1]:9733",
            "--peer", "example.org:1",
            "--expected-pow", "24.5",
            "-d", "somewhere",
        ).node_options()  # fmt: skip
        self.assertEqual(len(node.listen), 2)
        self.assertEqual(node.peers, ("1.2.3.4", "[::1]:9733", "example.org:1"))
        self.assertEqual(node.expected_pow, 24.5)
        self.assertEqual(node.data_dir, "somewhere")

    def test_speed_caps(self) -> None:
        node = self.parse("--max-download-speed", "100", "--max-upload-speed", "50").node_options()
        self.assertEqual(node.limits.max_download_speed, 100)
        self.assertEqual(node.limits.max_upload_speed, 50)
        service = Node(Clock(), node)
        self.assertEqual(service.scheduler.max_download_speed, 100 * 1024)
        self.assertEqual(service.scheduler.max_upload_speed, 50 * 1024)

    def test_invalid(self) -> None:
        for argv in (
            ["--listen", "bogus:1"],
            ["--peer", "::1"],
            ["--peer", "host:99999"],
            ["--expected-pow", "300"],
            ["--expected-pow", "many"],
            ["--advertised-port", "0"],
            ["--max-download-speed", "0"],
            ["--max-upload-speed", "fast"],
        ):
            with self.subTest(argv=argv):
                self.assertRaises(usage.UsageError, self.parse, *argv)

    def test_help_documents_options(self) -> None:
        text = str(Options())
        for option in ("--data-dir", "--listen", "--peer", "--expected-pow"):
            self.assertIn(option, text)

    def test_parse_peer(self) -> None:
        self.assertEqual(parse_peer("1.2.3.4"), ("1.2.3.4", 9732))
        self.assertEqual(parse_peer("[2001:db8::1]:1"), ("2001:db8::1", 1))
        self.assertEqual(parse_peer("node.example.org:9999"), ("node.example.org", 9999))
        for bad in ("", ":1", "[::1", "[::1]x", "a:b", "::1"):
            self.assertRaises(ValueError, parse_peer, bad)

    def test_make_service(self) -> None:
        from twisted.internet.testing import MemoryReactorClock

        service = makeService(self.parse("--listen", "tcp:0"), reactor=MemoryReactorClock())
        self.assertIsInstance(service, Node)


class NodeOverTCPTests(TestCase):
    """Two nodes on 127.0.0.1: the second dials the first."""

    timeout = 60

    async def start(self, node: Node) -> Node:
        node.startService()
        self.addCleanup(node.stopService)
        return await node.when_ready()

    async def _two_nodes(self) -> None:
        from twisted.internet import reactor

        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        first_dir, second_dir = self.mktemp(), self.mktemp()
        IdentityFile.in_directory(first_dir).save(IDENTITY_A)
        accepted: Deferred[Session] = Deferred()
        dialled: Deferred[Session] = Deferred()

        def once(d: Deferred[Session]) -> Any:
            return lambda session: None if d.called else d.callback(session)

        first = Node(
            reactor,
            NodeOptions(
                data_dir=first_dir, listen=("tcp:0:interface=127.0.0.1",), expected_pow=4.0
            ),
            on_session=once(accepted),
        )
        await self.start(first)
        port = first.listeners[0].port
        assert port is not None
        number = port.getHost().port  # type: ignore[attr-defined]
        second = Node(
            reactor,
            NodeOptions(
                data_dir=second_dir,
                listen=("tcp:0:interface=127.0.0.1",),
                peers=(f"127.0.0.1:{number}",),
                expected_pow=4.0,
            ),
            on_session=once(dialled),
        )
        await self.start(second)
        # the second node mined and saved an identity on its first start
        second_identity = IdentityFile.in_directory(second_dir).load()
        self.assertTrue(second_identity.check(4.0))
        incoming, outgoing = await defer.gatherResults([accepted, dialled])
        self.assertEqual(incoming.peer_id, second_identity.peer_id)
        self.assertEqual(outgoing.peer_id, IDENTITY_A.peer_id)
        # sessions carry messages both ways
        await outgoing.write(Bootstrap())
        self.assertEqual(await incoming.read(), Bootstrap())
        established = [e for e in events if e.get("event") == "new_connection"]
        self.assertEqual(
            {e["peer_id"] for e in established},
            {str(IDENTITY_A.peer_id), str(second_identity.peer_id)},
        )
        self.assertEqual({e["direction"] for e in established}, {"incoming", "outgoing"})

    def test_two_nodes(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._two_nodes())
