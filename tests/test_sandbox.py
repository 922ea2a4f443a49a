# -*- test-case-name: tests.test_sandbox -*-
"""
``tezos-p2p sandbox``: nodes on loopback bootstrapped through the first,
the table of their connections, and a clean stop on Ctrl-C (a real
process receiving SIGINT).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from txtezosp2p.node import cli
from txtezosp2p.node.sandbox import Sandbox, SandboxOptions, TablePrinter, render_table

from .test_p2p import eventually

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SandboxTests(TestCase):
    timeout = 60

    def test_nodes_connect_and_stop(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            base = os.path.abspath(self.mktemp())
            options = SandboxOptions(nodes=4, base_dir=base, admin_base_port=0)
            sandbox = Sandbox(reactor, options, clock=Clock())
            sandbox.startService()
            self.addCleanup(sandbox.stopService)
            layers = await sandbox.when_ready()
            self.assertEqual(len(layers), 4)
            bootstrap = layers[0]
            await eventually(lambda: all(layer.connections() for layer in layers), layers)
            for layer in layers[1:]:
                self.assertIsNotNone(layer.find_connection_by_peer_id(bootstrap.peer_id))
            # every node answers on its own admin API
            http = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
            urls = sandbox.admin_urls()
            self.assertEqual(len(set(urls)), 4)
            for url, layer in zip(urls, layers, strict=True):
                response = await http.get(f"{url}/network/self")
                self.assertEqual(await response.json(), str(layer.peer_id))
            table = render_table(layers).splitlines()
            self.assertEqual(len(table), 5)
            self.assertIn("conns", table[0])
            self.assertIn(str(bootstrap.listening_port), table[1])
            await sandbox.stopService()
            for index in range(4):
                directory = os.path.join(base, f"node-{index}")
                self.assertTrue(os.path.exists(os.path.join(directory, "identity.json")))
                self.assertTrue(os.path.exists(os.path.join(directory, "peers.json")))
            self.assertEqual([layer.connections() for layer in layers], [[]] * 4)

        return Deferred.fromCoroutine(scenario())


class TablePrinterTests(SynchronousTestCase):
    def test_prints_changes_when_piped(self) -> None:
        clock = Clock()
        sandbox = Sandbox(clock, SandboxOptions(nodes=1, base_dir=self.mktemp()))
        out = io.StringIO()
        printer = TablePrinter(sandbox, out, clock, 1.0)
        printer.start()
        first = out.getvalue()
        self.assertIn("peer id", first)
        clock.advance(5.0)  # nothing changed: nothing more printed
        self.assertEqual(out.getvalue(), first)
        printer.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_options(self) -> None:
        limits = SandboxOptions(nodes=5).limits()
        self.assertLessEqual(limits.min_connections, limits.expected_connections)
        self.assertEqual(limits.maintenance_idle_time, 10.0)
        self.assertEqual(SandboxOptions(nodes=2, connections=4).limits().max_connections, 6)
        self.assertRaises(ValueError, Sandbox, Clock(), SandboxOptions(nodes=0))

    def test_bad_arguments(self) -> None:
        for argv in (
            ["sandbox", "--nodes", "0"],
            ["sandbox", "--nodes", "many"],
            ["sandbox", "--interval", "0"],
            ["sandbox", "--base-port", "65535", "--nodes", "3"],
        ):
            with self.subTest(argv=argv):
                stderr = io.StringIO()
                self.patch(sys, "stderr", stderr)
                with self.assertRaises(SystemExit) as caught:
                    cli.main(argv, io.StringIO())
                self.assertNotEqual(caught.exception.code, 0)
                self.assertNotIn("Traceback", stderr.getvalue())


class _Child(ProcessProtocol):
    def __init__(self, ready: Callable[[str], bool]) -> None:
        self.output = ""
        self.ready = ready
        self.when_ready: Deferred[None] = Deferred()
        self.ended: Deferred[list[Failure]] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data.decode()
        if not self.when_ready.called and self.ready(self.output):
            self.when_ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        if not self.when_ready.called:
            self.when_ready.errback(AssertionError("ended early:\n" + self.output))
        self.ended.callback([reason])


def all_connected(output: str, nodes: int) -> bool:
    """Whether the last complete table shows every node with a connection."""
    tables = [t for t in output.split("\n\n") if t.lstrip().startswith("node")]
    for table in reversed(tables):
        rows = table.strip().splitlines()[1:]
        if len(rows) == nodes:
            return all(int(row.split()[3]) > 0 for row in rows)
    return False


class SandboxCommandTests(TestCase):
    """``tezos-p2p sandbox`` in a real process, stopped with Ctrl-C (SIGINT)."""

    timeout = 120

    def test_ctrl_c(self) -> Deferred[None]:
        from twisted.internet import reactor

        async def scenario() -> None:
            base = os.path.abspath(self.mktemp())
            child = _Child(lambda output: all_connected(output, 3))
            env: dict[str, Any] = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
            argv = [
                sys.executable, "-u", "-m", "txtezosp2p.node.cli", "sandbox",
                "--nodes", "3", "--dir", base, "--interval", "0.2",
            ]  # fmt: skip
            process = reactor.spawnProcess(child, sys.executable, argv, env=env)
            try:
                await child.when_ready
            finally:
                if process.pid is not None:
                    process.signalProcess(signal.SIGINT)
            [reason] = await child.ended
            self.assertEqual(reason.value.exitCode, 0, child.output)  # type: ignore[union-attr]
            self.assertIn("sandbox stopped", child.output)
            self.assertNotIn("Traceback", child.output)
            for index in range(3):
                peers = os.path.join(base, f"node-{index}", "peers.json")
                self.assertTrue(os.path.exists(peers))

        return Deferred.fromCoroutine(scenario())

    def test_busy_port(self) -> None:
        """
        A node's port in use: one line on standard error naming the node and
        the option to change, status 1, no traceback.
        """
        from .test_node import free_ports

        first = free_ports(2)  # below the ephemeral range: node 0's, then the busy one
        port = first + 1
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", port))
        busy.listen()
        base = os.path.abspath(self.mktemp())
        env: dict[str, Any] = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
        done = subprocess.run(
            [sys.executable, "-m", "txtezosp2p.node.cli", "sandbox", "--nodes", "2",
             "--base-port", str(port - 1), "--dir", base],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        [line] = done.stderr.strip().splitlines()
        self.assertEqual(
            line,
            f"tezos-p2p: the sandbox could not start: node 1: cannot listen for peers on "
            f"127.0.0.1:{port}: address already in use (--base-port chooses other ports)",
        )
        self.assertNotIn("Traceback", done.stdout)
        with open(os.path.join(base, "sandbox.log")) as handle:
            self.assertIn("node could not start", handle.read())
