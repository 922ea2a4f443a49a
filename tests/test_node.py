# -*- test-case-name: tests.test_node -*-
"""
The node as operators run it: the twistd plugin and its options (an Octez
configuration file read as is, command-line overrides), the composition
root over real TCP on loopback (bootstrap, peers file, LAN discovery), and
a real ``twistd -n tezos-p2p`` process that accepts a session and exits
cleanly on SIGTERM with its peers file saved.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, cast

import attrs
from twisted.application.service import IServiceMaker
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessTerminated
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

import twisted.plugins
from txtezosp2p.connection import P2PConnection
from txtezosp2p.identity import IdentityFile
from txtezosp2p.limits import Limits
from txtezosp2p.node.composition import (
    Node,
    NodeStartError,
    listen_endpoint,
    parse_bootstrap_peer,
    parse_peer,
    resolve_points,
)
from txtezosp2p.node.config import NETWORKS, AdminSettings, NodeConfig, P2PSettings
from txtezosp2p.node.tap import CommandOptions, Options, makeService
from txtezosp2p.p2p import P2P
from txtezosp2p.session import connect_session
from txtezosp2p.testing import SANDBOX_VERSIONS
from txtezosp2p.wire.encoding import MessageEncoding
from txtezosp2p.wire.ids import Point

from .helpers import IDENTITY_A, IDENTITY_B, capture_events, debug_events, named, session_config
from .test_config import OCTEZ_FILE, PEER_ID

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_PLUGINS = os.path.join(ROOT, "twisted", "plugins")
Text = MessageEncoding(tag=0x1000, title="Text", type=str, encode=str.encode, decode=bytes.decode)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now (for a child process to take)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_low_port() -> int:
    """
    A free TCP port below 32768 (outside Linux's ephemeral range): discovery
    datagrams carry the port as a signed 16-bit number (wire.md section 10).
    """
    import random

    start = random.randrange(20000, 32000)
    for port in range(start, start + 700):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768")


def free_ports(count: int) -> int:
    """
    The first of ``count`` consecutive ports free now on 127.0.0.1, below
    Linux's ephemeral range (so that no outgoing connection takes one
    meanwhile), bound as a listening socket binds (``SO_REUSEADDR``).
    """
    import random

    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 32000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no block of free ports")


class PluginTests(SynchronousTestCase):
    def test_found(self) -> None:
        """getPlugins finds tezos-p2p, from the source tree or the installed package."""
        self.patch(twisted.plugins, "__path__", [*twisted.plugins.__path__, REPO_PLUGINS])
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("tezos-p2p", makers)
        maker = makers["tezos-p2p"]
        self.assertIsInstance(maker.options(), Options)


class OptionsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data_dir = str(self.mktemp())
        os.makedirs(self.data_dir)

    def parse(self, *argv: str, data_dir: bool = True) -> NodeConfig:
        options = CommandOptions()
        options.parseOptions([*(["-d", self.data_dir] if data_dir else []), *argv])
        return options.node_config()

    def write_config(self, text: str, name: str = "config.json") -> str:
        path = os.path.join(self.data_dir, name)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def test_defaults(self) -> None:
        """Without a configuration file: Octez's defaults, every address (dual stack)."""
        node = self.parse()
        self.assertEqual(node.data_directory, self.data_dir)
        self.assertEqual(node.p2p.listen, ("[::]:9732",))
        self.assertEqual(
            node.effective_bootstrap_peers, NETWORKS["mainnet"].default_bootstrap_peers
        )
        self.assertEqual(node.p2p.proof_of_work_target, 26.0)
        self.assertEqual(node.network.chain_name, "TEZOS_MAINNET")
        self.assertEqual(node.p2p.limits, Limits())
        self.assertEqual(node.peers_file, os.path.join(self.data_dir, "peers.json"))
        self.assertIsNone(node.p2p.discovery_addr)
        self.assertFalse(node.p2p.private_mode)
        # not octez-node's RPC port
        self.assertEqual(node.admin.endpoints, ("tcp:8742:interface=127.0.0.1",))
        self.assertFalse(node.admin.allow_public)
        # one data directory per user, as Octez's ~/.tezos-node
        self.assertEqual(
            self.parse(data_dir=False).data_directory,
            os.path.join(os.path.expanduser("~"), ".tezos-p2p"),
        )

    def test_admin_endpoints(self) -> None:
        self.assertEqual(self.parse("--no-admin").admin, AdminSettings())
        local = "tcp6:0:interface=\\:\\:1"
        node = self.parse("--admin", local, "--admin", "unix:/tmp/admin.sock")
        self.assertEqual(node.admin.endpoints, (local, "unix:/tmp/admin.sock"))
        # a public address must be asked for
        for public in ("tcp:8732", "tcp:8732:interface=0.0.0.0", "tcp6:1:interface=\\:\\:"):
            with self.subTest(endpoint=public):
                self.assertRaises(usage.UsageError, self.parse, "--admin", public)
                allowed = self.parse("--admin", public, "--admin-allow-public")
                self.assertEqual(allowed.admin.endpoints, (public,))
                self.assertTrue(allowed.admin.allow_public)

    def test_octez_configuration_file(self) -> None:
        """An Octez node's file is read as is: every p2p setting lands in the node."""
        path = self.write_config(OCTEZ_FILE, "octez.json")
        options = CommandOptions()
        options.parseOptions(["--config-file", path])
        node = options.node_config()
        self.assertEqual(node.data_dir, "/var/lib/tezos/node")
        self.assertEqual(node.p2p.listen, ("[::]:9732",))
        self.assertEqual(listen_endpoint("::", 9732), "tcp6:9732:interface=\\:\\:")
        self.assertEqual(
            node.effective_bootstrap_peers,
            (
                "boot.tzinit.org",
                f"198.51.100.7:9733#{PEER_ID}",
                "[2001:db8::7]:9734",
                "[2001:db8::8]",
            ),
        )
        p2p = node.p2p
        self.assertEqual(p2p.proof_of_work_target, 26.5)
        self.assertEqual(p2p.advertised_port, 19732)
        self.assertEqual(
            (
                p2p.limits.min_connections,
                p2p.limits.expected_connections,
                p2p.limits.max_connections,
            ),
            (8, 16, 32),
        )
        self.assertEqual(p2p.limits.connection_timeout, 12)
        self.assertEqual(p2p.limits.max_download_speed, 2048)
        self.assertIsNone(p2p.limits.maintenance_idle_time)
        self.assertEqual(p2p.limits.max_known_points, (800, 600))
        self.assertEqual(p2p.reconnection.factor, 2)
        self.assertTrue(p2p.disable_mempool)
        self.assertEqual(node.network.chain_name, "TEZOS_MAINNET")
        self.assertTrue(any("maintenance is disabled" in w for w in options.warnings))

    def test_configuration_in_data_dir(self) -> None:
        self.write_config(
            json.dumps(
                {
                    "network": "sandbox",
                    "p2p": {"listen-addr": "127.0.0.1:19999", "private-mode": True},
                }
            )
        )
        node = self.parse()
        self.assertEqual(node.p2p.listen, ("127.0.0.1:19999",))
        self.assertTrue(node.p2p.private_mode)
        self.assertEqual(node.network.chain_name, NETWORKS["sandbox"].chain_name)
        self.assertEqual(node.effective_bootstrap_peers, ())

    def test_command_line_overrides(self) -> None:
        self.write_config(json.dumps({"p2p": {"listen-addr": "127.0.0.1:19999"}}))
        node = self.parse(
            "--listen", "tcp:1:interface=127.0.0.1",
            "--listen", "tcp6:2:interface=\\:\\:",
            "--no-bootstrap-peers",
            "--peer", "1.2.3.4",
            "--peer", f"[::1]:9733#{PEER_ID}",
            "--peer", "example.org:1",
            "--expected-pow", "24.5",
            "--connections", "10",
            "--private-mode",
            "--discovery",
            "--max-download-speed", "100",
            "--max-upload-speed", "50",
            "--maintenance-idle-time", "5",
            "--disable-p2p-swap",
            "--advertised-port", "9999",
            "--chain-name", "SANDBOXED_TEZOS",
            "--no-peers-file",
            "--admin", "tcp:0:interface=127.0.0.1",
        )  # fmt: skip
        self.assertEqual(node.p2p.listen, ("tcp:1:interface=127.0.0.1", "tcp6:2:interface=\\:\\:"))
        self.assertEqual(
            node.effective_bootstrap_peers, ("1.2.3.4", f"[::1]:9733#{PEER_ID}", "example.org:1")
        )
        self.assertEqual(node.p2p.proof_of_work_target, 24.5)
        limits = node.p2p.limits
        self.assertEqual(
            (limits.min_connections, limits.expected_connections, limits.max_connections),
            (5, 10, 15),
        )
        self.assertEqual(limits.max_known_points, (80, 60))
        self.assertEqual(limits.max_known_peer_ids, (80, 60))
        self.assertTrue(node.p2p.private_mode)
        self.assertEqual(node.p2p.discovery_addr, "")
        self.assertEqual((limits.max_download_speed, limits.max_upload_speed), (100, 50))
        self.assertEqual(limits.maintenance_idle_time, 5.0)
        self.assertIsNone(limits.swap_linger)
        self.assertEqual(node.p2p.advertised_port, 9999)
        self.assertEqual(node.network.chain_name, "SANDBOXED_TEZOS")
        self.assertIsNone(node.peers_file)

    def test_more_overrides(self) -> None:
        node = self.parse(
            "--discovery-addr", "127.255.255.255:10999",
            "--disable-p2p-maintenance",
            "--peer-table-size", "200",
            "--network", "sandbox",
            "--trust-discovered-peers",
            "--disable-peer-discovery",
            "--disable-mempool",
            "--admission", "octez",
        )  # fmt: skip
        self.assertEqual(node.p2p.discovery_addr, "127.255.255.255:10999")
        self.assertEqual(node.p2p.limits.admission, "octez")
        self.assertEqual(self.parse().p2p.limits.admission, "elastic")
        self.assertIsNone(node.p2p.limits.maintenance_idle_time)
        self.assertEqual(node.p2p.limits.max_known_points, (200, 150))
        self.assertEqual(node.network.chain_name, NETWORKS["sandbox"].chain_name)
        self.assertTrue(node.p2p.trust_discovered_peers)
        self.assertTrue(node.p2p.disable_peer_discovery)
        self.assertTrue(node.p2p.disable_mempool)

    def test_invalid(self) -> None:
        for argv in (
            ["--listen", "bogus:1"],
            ["--peer", "::1"],
            ["--peer", "host:99999"],
            ["--peer", "1.2.3.4#notapeerid"],
            ["--expected-pow", "300"],
            ["--expected-pow", "many"],
            ["--advertised-port", "0"],
            ["--max-download-speed", "0"],
            ["--max-upload-speed", "fast"],
            ["--connections", "101"],
            ["--connections", "-1"],
            ["--network", "nowhere"],
            ["--discovery-addr", "example.org"],
            ["--maintenance-idle-time", "0"],
            ["--admission", "lenient"],
            ["--config-file", "/nonexistent/config.json"],
            # validated after the command line, as Octez does: a table below max-connections
            ["--peer-table-size", "100"],
            ["--listen", "9732"],
        ):
            with self.subTest(argv=argv):
                self.assertRaises(usage.UsageError, self.parse, *argv)

    def test_octez_habits(self) -> None:
        """What an Octez operator types: --listen ADDR:PORT, --net-addr, --connections 500."""
        self.assertEqual(self.parse("--listen", "127.0.0.1:9732").p2p.listen, ("127.0.0.1:9732",))
        self.assertEqual(self.parse("--net-addr", "[::]:19732").p2p.listen, ("[::]:19732",))
        self.assertRaises(usage.UsageError, self.parse, "--net-addr", "tcp:1:interface=::1")
        # the message names a flag that exists, and the flag lifts the bound
        error = self.assertRaises(usage.UsageError, self.parse, "--connections", "500")
        self.assertIn("--disable-config-validation", str(error))
        config = self.parse("--connections", "500", "--disable-config-validation")
        self.assertEqual(config.p2p.limits.expected_connections, 500)
        self.assertTrue(config.disable_config_validation)
        # a missing file is named once
        error = self.assertRaises(usage.UsageError, self.parse, "--config-file", "nope.json")
        self.assertEqual(str(error).count("nope.json"), 1, str(error))

    def test_invalid_configuration_file(self) -> None:
        for text in (
            "{not json",
            json.dumps({"p2p": {"expected-proof-of-work": 300}}),
            json.dumps({"p2p": {"limits": {"min-connections": 20, "max-connections": 10}}}),
            json.dumps({"p2p": {"bootstrap-peers": ["host:99999"]}}),
            json.dumps({"p2p": {"unknown-key": 1}}),
        ):
            with self.subTest(text=text):
                path = self.write_config(text, "bad.json")
                with self.assertRaises(usage.UsageError) as caught:
                    self.parse("--config-file", path)
                self.assertIn("bad.json", str(caught.exception) + path)

    def test_help_documents_options(self) -> None:
        text = str(Options())
        for option in (
            "--data-dir", "--config-file", "--listen", "--peer", "--no-bootstrap-peers",
            "--private-mode", "--connections", "--expected-pow", "--discovery",
            "--discovery-addr", "--max-download-speed", "--max-upload-speed",
            "--advertised-port", "--network", "--peer-table-size",
            "--disable-p2p-maintenance", "--disable-p2p-swap", "--maintenance-idle-time",
            "--admin", "--no-admin", "--admin-allow-public",
        ):  # fmt: skip
            self.assertIn(option, text)

    def test_parse_peer(self) -> None:
        self.assertEqual(parse_peer("1.2.3.4"), ("1.2.3.4", 9732))
        self.assertEqual(parse_peer("[2001:db8::1]:1"), ("2001:db8::1", 1))
        self.assertEqual(parse_peer("node.example.org:9999"), ("node.example.org", 9999))
        self.assertEqual(parse_bootstrap_peer(f"1.2.3.4#{PEER_ID}")[2].to_b58check(), PEER_ID)  # type: ignore[union-attr]
        for bad in (":1x", "[::1", "[::1]x", "a:b", "::1"):
            self.assertRaises(ValueError, parse_peer, bad)

    def test_listen_endpoint(self) -> None:
        self.assertEqual(listen_endpoint("0.0.0.0", 1), "tcp:1:interface=0.0.0.0")
        self.assertEqual(listen_endpoint("::", 2), "tcp6:2:interface=\\:\\:")
        self.assertEqual(
            listen_endpoint("::ffff:1.2.3.4", 3), "tcp6:3:interface=\\:\\:ffff\\:102\\:304"
        )

    def test_make_service(self) -> None:
        from twisted.internet.testing import MemoryReactorClock

        options = Options()
        options.parseOptions(["-d", self.data_dir, "--listen", "tcp:0"])
        service = makeService(options, reactor=MemoryReactorClock())
        self.assertIsInstance(service, Node)


class TwistdCommandLineTests(SynchronousTestCase):
    """A real ``twistd`` process reporting command-line problems."""

    def twistd(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        return subprocess.run(
            [sys.executable, "-c", TWISTD, *argv],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=60,
        )

    def test_usage_error_is_one_line(self) -> None:
        """A usage error is its reason on one line, without twistd's usage text."""
        for argv in (
            ["--listen", "127.0.0.1:x"],
            ["--bogus"],
            ["--config-file", "nope.json"],
            ["--connections", "500"],
        ):
            with self.subTest(argv=argv):
                done = self.twistd("-n", "--pidfile=", "tezos-p2p", "-d", "node", *argv)
                self.assertEqual(done.returncode, 1, done.stderr)
                self.assertEqual(done.stdout, "")
                [line] = done.stderr.strip().splitlines()
                self.assertTrue(line.startswith("twistd tezos-p2p: "), line)

    def start_failure(self, *argv: str, data_dir: str | None = None) -> str:
        """``twistd -n tezos-p2p`` that cannot start: exit status 1, one line on stderr."""
        data_dir = data_dir or os.path.abspath(self.mktemp())
        done = self.twistd(
            "-n", "--pidfile=", "tezos-p2p", "-d", data_dir, "--expected-pow", "0",
            "--network", "sandbox", "--no-bootstrap-peers", *argv,
        )  # fmt: skip
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        [line] = done.stderr.strip().splitlines()
        self.assertTrue(line.startswith("twistd tezos-p2p: "), line)
        self.assertNotIn("Traceback", done.stdout)
        return line

    def busy_port(self) -> int:
        """A port something else listens on for the rest of the test."""
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port: int = busy.getsockname()[1]
        return port

    def test_admin_port_in_use(self) -> None:
        port = self.busy_port()
        line = self.start_failure(
            "--admin", f"tcp:{port}:interface=127.0.0.1",
            "--listen", f"tcp:{free_port()}:interface=127.0.0.1",
        )  # fmt: skip
        self.assertIn(f"cannot serve the admin API on 127.0.0.1:{port}: address already", line)

    def test_p2p_port_in_use(self) -> None:
        port = self.busy_port()
        line = self.start_failure("--no-admin", "--listen", f"127.0.0.1:{port}")
        self.assertIn(f"cannot listen for peers on 127.0.0.1:{port}: address already", line)

    def test_data_dir_locked(self) -> None:
        from .test_lock import held_elsewhere

        data_dir = os.path.abspath(self.mktemp())
        with held_elsewhere(data_dir) as pid:
            line = self.start_failure("--no-admin", "--listen", "tcp:0", data_dir=data_dir)
        self.assertIn(f"data directory {data_dir} is locked by process {pid}", line)

    def test_bad_identity(self) -> None:
        """Empty, corrupt, mismatched or weak identity.json: one line naming the file."""
        mismatched = {**IDENTITY_A.to_json(), "peer_id": str(IDENTITY_B.peer_id)}
        for text, expected, argv in (
            ("", "identity.json is empty", ()),
            ("{not json", "identity.json is not valid JSON", ()),
            ('{"peer_id": 1}', "identity.json: missing or invalid field", ()),
            (json.dumps(mismatched), "is not the hash of the public key", ()),
            (json.dumps(IDENTITY_A.to_json()), "does not reach the expected difficulty 60",
             ("--expected-pow", "60")),
        ):  # fmt: skip
            with self.subTest(expected=expected):
                data_dir = os.path.abspath(self.mktemp())
                os.makedirs(data_dir)
                with open(os.path.join(data_dir, "identity.json"), "w") as handle:
                    handle.write(text)
                line = self.start_failure(
                    "--no-admin", "--listen", "tcp:0", *argv, data_dir=data_dir
                )
                self.assertIn(expected, line)

    def test_version(self) -> None:
        """``twistd tezos-p2p --version`` is ours."""
        from txtezosp2p import __version__

        done = self.twistd("tezos-p2p", "--version")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.startswith(f"txtezosp2p {__version__} "), done.stdout)


class StartFailureTests(SynchronousTestCase):
    """What twistd's service does when its node cannot start (the process tests run it for real)."""

    def test_stops_the_reactor_and_sets_the_status(self) -> None:
        from twisted.internet.testing import MemoryReactorClock

        from txtezosp2p.node.lock import DataDirLock
        from txtezosp2p.node.tap import ExitStatus, stop_on_start_failure

        data_dir = os.path.abspath(self.mktemp())
        holder = DataDirLock(data_dir)
        holder.acquire()
        self.addCleanup(holder.release)
        reactor = MemoryReactorClock()
        node = Node(reactor, NodeConfig(data_dir=data_dir))
        registered: list[object] = []
        status = ExitStatus(registered.append)
        stderr = io.StringIO()
        stop_on_start_failure(node, reactor, stderr, status)
        node.startService()
        [line] = stderr.getvalue().splitlines()
        self.assertTrue(line.startswith("twistd tezos-p2p: data directory "), line)
        self.assertEqual(status.status, 1)
        self.assertEqual(len(registered), 1)
        # the reactor is not running yet (twistd starts services first): stopped once it runs
        self.assertEqual(reactor.whenRunningHooks, [(reactor.stop, (), {})])


class ResolveTests(TestCase):
    def test_literals_and_names(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            points = await resolve_points(
                cast(IReactorPluggableNameResolver, reactor),
                [f"127.0.0.2:1#{PEER_ID}", "[::1]:2", "localhost:3", "no-such-host.invalid:4"],
            )
            self.assertEqual(points[0][0], Point("127.0.0.2", 1))
            self.assertEqual(str(points[0][1]), PEER_ID)
            self.assertEqual(points[1], (Point("::1", 2), None))
            self.assertIn((Point("127.0.0.1", 3), None), points)
            self.assertFalse([p for p, _ in points if p.port == 4])

        return Deferred.fromCoroutine(scenario())

    def test_names_go_through_the_reactor_resolver(self) -> Deferred[None]:
        from twisted.internet import reactor

        resolver = _AskedNames(cast(IReactorPluggableNameResolver, reactor).nameResolver)

        async def scenario() -> None:
            points = await resolve_points(resolver, ["localhost:3", "127.0.0.1:4"])
            self.assertEqual(resolver.asked, ["localhost"])  # the literal is not looked up
            self.assertIn((Point("127.0.0.1", 3), None), points)
            self.assertIn((Point("127.0.0.1", 4), None), points)

        return Deferred.fromCoroutine(scenario())


@implementer(IReactorPluggableNameResolver, IHostnameResolver)
class _AskedNames:
    """A reactor whose name resolver records the names it is asked, then asks ``resolver``."""

    def __init__(self, resolver: IHostnameResolver) -> None:
        self.resolver = resolver
        self.asked: list[str] = []

    @property
    def nameResolver(self) -> IHostnameResolver:
        return self

    def installNameResolver(self, resolver: IHostnameResolver) -> IHostnameResolver:
        raise NotImplementedError()

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        self.asked.append(hostName)
        return self.resolver.resolveHostName(
            resolutionReceiver, hostName, portNumber, addressTypes, transportSemantics
        )


class NodeOverTCPTests(TestCase):
    """Nodes of the composition root on 127.0.0.1, with timers on a simulated clock."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.clock = Clock()

    def options(self, **p2p: Any) -> NodeConfig:
        """A node on 127.0.0.1 with low proof of work; ``p2p`` changes its P2P settings."""
        settings: dict[str, Any] = {
            "listen": ("tcp:0:interface=127.0.0.1",),
            "proof_of_work_target": 4.0,
            "limits": Limits(min_connections=1, expected_connections=1, max_connections=4),
            "peers_file": "peers.json",
        }
        settings.update(p2p)
        return NodeConfig(
            data_dir=str(self.mktemp()),
            network=NETWORKS["sandbox"],
            identity_workers=1,
            p2p=P2PSettings(**settings),
        )

    async def start(self, node: Node) -> P2P:
        node.startService()
        self.addCleanup(node.stopService)
        return await node.when_ready()

    def test_bootstrap_and_peers_file(self) -> Deferred[None]:
        """
        The second node (which mines its identity on first start) dials the
        first through its bootstrap peer; messages flow; stopping saves the
        peers file, and a restart loads it.
        """

        async def scenario() -> None:
            events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
            got: Deferred[tuple[P2PConnection, object]] = Deferred()

            def read(p2p: P2P, connection: P2PConnection) -> None:
                connection.recv().addCallback(lambda m: got.callback((connection, m)))

            first_options = self.options()
            IdentityFile.in_directory(first_options.data_directory).save(IDENTITY_A)
            first = Node(
                self.reactor,
                first_options,
                message_encodings=[Text],
                on_connection=read,
                clock=self.clock,
            )
            first_p2p = await self.start(first)
            second_options = attrs.evolve(
                self.options(), bootstrap_peers=(f"127.0.0.1:{first_p2p.listening_port}",)
            )
            second = Node(self.reactor, second_options, message_encodings=[Text], clock=self.clock)
            second_p2p = await self.start(second)
            second_identity = IdentityFile.in_directory(second_options.data_directory).load()
            self.assertTrue(second_identity.check(4.0))
            await second_p2p.maintain()
            connection = second_p2p.find_connection_by_peer_id(IDENTITY_A.peer_id)
            assert connection is not None
            self.assertTrue(connection.point_info is not None and connection.point_info.trusted)
            await second_p2p.send(connection, "hello")
            incoming, message = await got
            self.assertEqual(message, "hello")
            self.assertEqual(incoming.peer_id, second_identity.peer_id)
            established = [e for e in events if e.get("event") == "new_connection"]
            self.assertTrue(established)

            await second.stopService()
            with open(os.path.join(second_options.data_directory, "peers.json")) as handle:
                saved = json.load(handle)
            self.assertIn(str(IDENTITY_A.peer_id), [entry["peer_id"] for entry in saved])
            # a restart of the second node knows the first peer from the file
            again = Node(self.reactor, second_options, message_encodings=[Text], clock=self.clock)
            again_p2p = await self.start(again)
            self.assertIn(IDENTITY_A.peer_id, again_p2p.pool.peers)

        return Deferred.fromCoroutine(scenario())

    def test_stale_temp_files_removed_at_start(self) -> Deferred[None]:
        """
        Temporary files of ``identity.json`` and ``peers.json`` left by a
        killed process are removed when the node starts (here named with this
        process's pid: an earlier process with the same pid left them).
        """

        async def scenario() -> None:
            options = self.options()
            IdentityFile.in_directory(options.data_directory).save(IDENTITY_A)
            leftovers = [
                f"{name}.{os.getpid()}.abcd_123.tmp" for name in ("identity.json", "peers.json")
            ]
            for name in (*leftovers, "unrelated.tmp"):
                with open(os.path.join(options.data_directory, name), "wb") as handle:
                    handle.write(b"{partial")
            node = Node(self.reactor, options, clock=self.clock)
            await self.start(node)
            self.assertEqual(
                sorted(os.listdir(options.data_directory)),
                ["identity.json", "lock", "unrelated.tmp"],
            )

        return Deferred.fromCoroutine(scenario())

    def test_data_dir_locked_in_process(self) -> Deferred[None]:
        """
        A second node on a data directory in use fails to start, saying why,
        and starts no service; once the first stops, the directory is free.
        """

        async def scenario() -> None:
            events = capture_events(self)
            config = self.options()
            IdentityFile.in_directory(config.data_directory).save(IDENTITY_A)
            first = Node(self.reactor, config, clock=self.clock)
            await self.start(first)
            second = Node(self.reactor, config, clock=self.clock)
            second.startService()
            error = await self.assertFailure(second.when_ready(), NodeStartError)
            self.assertIn("is locked by process", str(error))
            self.assertIsNone(second.p2p)
            self.assertFalse(second.running)
            # a late caller hears the same
            late = await self.assertFailure(second.when_ready(), NodeStartError)
            self.assertIs(late, error)
            [critical] = [e for e in named(events, "activate_layer") if "reason" in e]
            self.assertIn("is locked by process", critical["reason"])
            await second.stopService()
            await first.stopService()
            third = Node(self.reactor, config, clock=self.clock)
            await self.start(third)

        return Deferred.fromCoroutine(scenario())

    def test_start_message_has_the_real_port(self) -> Deferred[None]:
        """The start message gives the port listened on, and the advertised one apart."""

        async def scenario() -> None:
            events = capture_events(self)
            config = self.options(advertised_port=31790)
            IdentityFile.in_directory(config.data_directory).save(IDENTITY_A)
            p2p = await self.start(Node(self.reactor, config, clock=self.clock))
            [port] = p2p.bound_ports
            self.assertNotEqual(port, 31790)
            [running] = named(events, "activate_network")[-1:]
            self.assertEqual(running["ports"], [port])
            self.assertEqual(running["advertised_port"], 31790)
            self.assertIn(f"listening on port {port}, advertising port 31790", running["where"])

        return Deferred.fromCoroutine(scenario())

    def test_default_node_drains_messages(self) -> Deferred[None]:
        """Without a hook, a node reads what its peers send (so no queue fills up)."""
        debug_events(self)

        async def scenario() -> None:
            events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
            quiet = self.options()
            IdentityFile.in_directory(quiet.data_directory).save(IDENTITY_A)
            node = Node(self.reactor, quiet, message_encodings=[Text], clock=self.clock)
            node_p2p = await self.start(node)
            talker_options = attrs.evolve(
                self.options(), bootstrap_peers=(f"127.0.0.1:{node_p2p.listening_port}",)
            )
            IdentityFile.in_directory(talker_options.data_directory).save(IDENTITY_B)
            talker = Node(self.reactor, talker_options, message_encodings=[Text], clock=self.clock)
            talker_p2p = await self.start(talker)
            await talker_p2p.maintain()
            connection = talker_p2p.connections()[0]
            for index in range(300):
                await talker_p2p.send(connection, f"message {index}")
            done: Deferred[None] = Deferred()

            read: list[dict[str, Any]] = []

            def seen(event: dict[str, Any]) -> None:
                if event.get("event") == "message_read":
                    read.append(event)
                if len(read) == 300 and not done.called:
                    done.callback(None)

            for event in list(events):
                seen(event)
            observer = cast(ILogObserver, seen)
            globalLogPublisher.addObserver(observer)
            self.addCleanup(globalLogPublisher.removeObserver, observer)
            await done
            [incoming] = node_p2p.connections()
            self.assertEqual(len(incoming.app_queue), 0)
            # the last message read is logged by type and size, never by content
            self.assertEqual((read[-1]["kind"], read[-1]["size"]), ("str", len("message 299")))
            self.assertNotIn("text", read[-1])

        return Deferred.fromCoroutine(scenario())

    def test_discovery_finds_a_peer(self) -> Deferred[None]:
        """
        Two nodes with LAN discovery on the loopback network and no
        bootstrap peer find each other and connect.
        """

        async def scenario() -> None:
            port = free_port(socket.SOCK_DGRAM)
            common = {
                "discovery_addr": f"127.255.255.255:{port}",
                "discovery_listen_interface": "0.0.0.0",
            }
            nodes = []
            for identity in (IDENTITY_A, IDENTITY_B):
                listen = (f"tcp:{free_low_port()}:interface=127.0.0.1",)
                options = self.options(listen=listen, **common)
                IdentityFile.in_directory(options.data_directory).save(identity)
                node = Node(self.reactor, options, clock=self.clock)
                nodes.append(await self.start(node))
            first, second = nodes
            # both maintenance workers wait for news; discovery brings it
            await defer.gatherResults([first.maintain(), second.maintain()])
            self.assertIsNotNone(first.find_connection_by_peer_id(IDENTITY_B.peer_id))
            discovery = first.discovery
            assert discovery is not None
            self.assertGreaterEqual(discovery.sent, 1)

        return Deferred.fromCoroutine(scenario())


class _Child(ProcessProtocol):
    """A child process: its output, a Deferred on a line, one on its end."""

    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[list[Failure]] = Deferred()
        self._waiting: list[tuple[bytes, Deferred[None]]] = []

    def outReceived(self, data: bytes) -> None:
        self.output += data
        for marker, waiter in list(self._waiting):
            if marker in self.output:
                self._waiting.remove((marker, waiter))
                waiter.callback(None)

    errReceived = outReceived

    def wait_for(self, marker: bytes) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if marker in self.output:
            waiter.callback(None)
        else:
            self._waiting.append((marker, waiter))
        return waiter

    def processEnded(self, reason: Failure) -> None:
        for _, waiter in self._waiting:
            waiter.errback(AssertionError("the process ended:\n" + self.output.decode()))
        self._waiting = []
        self.ended.callback([reason])  # in a list: a Failure result would be an error


#: ``twistd`` as the installed script runs it, with this interpreter.
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


class TwistdTests(TestCase):
    """A real ``twistd -n tezos-p2p`` process."""

    timeout = 120

    def test_run_accept_and_stop(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            data_dir = os.path.abspath(self.mktemp())
            IdentityFile.in_directory(data_dir).save(IDENTITY_A)
            port = free_port()
            child = _Child()
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
            argv = [
                sys.executable, "-u", "-c", TWISTD, "-n", "--pidfile=",
                "--logfile=-", "tezos-p2p", "-d", data_dir,
                "--listen", f"tcp:{port}:interface=127.0.0.1",
                "--no-bootstrap-peers", "--expected-pow", "8", "--no-admin",
                "--chain-name", "SANDBOXED_TEZOS",
                # a peer that refuses: dials go on in the background
                "--peer", f"127.0.0.1:{free_port()}",
            ]  # fmt: skip
            process = reactor.spawnProcess(child, sys.executable, argv, env=env, path=data_dir)
            try:
                await child.wait_for(b"running, listening on port")
            except BaseException:
                process.signalProcess("KILL")
                await child.ended
                raise
            from twisted.internet.endpoints import TCP4ClientEndpoint

            session = await connect_session(
                session_config(IDENTITY_B, pow_target=8.0, versions=SANDBOX_VERSIONS),
                reactor,
                TCP4ClientEndpoint(reactor, "127.0.0.1", port),
                point=Point("127.0.0.1", port),
            )
            self.assertEqual(session.peer_id, IDENTITY_A.peer_id)
            await child.wait_for(b"new connection to " + str(IDENTITY_B.peer_id).encode())
            process.signalProcess(signal.SIGTERM)
            [reason] = await child.ended
            # twistd shuts down cleanly, then ends itself with the signal it
            # received (so that its parent sees why it stopped)
            self.assertTrue(reason.check(ProcessTerminated), child.output.decode())
            self.assertEqual(cast(ProcessTerminated, reason.value).signal, signal.SIGTERM)
            output = child.output.decode()
            for step in ("Received SIGTERM", "pool destroyed", "stopping the IO scheduler"):
                self.assertIn(step, output)
            self.assertIn("Server Shut Down", output)
            # a quiet log: addresses as text, no debug lines, none of Twisted's chatter
            self.assertIn(f"listening on 127.0.0.1:{port}", output)
            self.assertNotIn("#debug]", output)
            for chatter in ("Starting factory", "starting on", "IPv4Address("):
                self.assertNotIn(chatter, output)
            self.assertNotRegex(output, r"Port \d+ Closed")
            with open(os.path.join(data_dir, "peers.json")) as handle:
                saved = json.load(handle)
            self.assertIn(str(IDENTITY_B.peer_id), [entry["peer_id"] for entry in saved])
            await session.when_closed()

        return Deferred.fromCoroutine(scenario())
