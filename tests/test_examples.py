"""
The examples in ``examples/`` work: two ping-pong nodes exchange messages
over loopback, and the ``.tac`` file builds an application with a node.
"""

from __future__ import annotations

import importlib.util
import io
import os
import socket
import subprocess
import sys
from types import ModuleType
from typing import Any

from twisted.application.service import IServiceCollection, loadApplication
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.node.composition import Node

from .test_node import free_low_port
from .test_p2p import eventually

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PingPongTests(TestCase):
    timeout = 60

    def test_two_nodes_ping_pong(self) -> Deferred[None]:
        from twisted.internet import reactor

        example = load_example("ping_pong")

        async def scenario() -> None:
            clock = Clock()
            apps: list[Any] = []
            layers = []
            peers: tuple[str, ...] = ()
            for _ in range(2):
                app = example.PingPong(out=io.StringIO())
                port = free_low_port()
                node = example.make_node(
                    reactor, app, data_dir=self.mktemp(), port=port, peers=peers, clock=clock
                )
                node.startService()
                self.addCleanup(node.stopService)
                layers.append(await node.when_ready())
                app.p2p = layers[-1]
                apps.append(app)
                peers = (f"127.0.0.1:{port}",)
            await eventually(lambda: all(layer.connections() for layer in layers), layers)
            first, second = apps
            pong = second.next_pong()
            self.assertEqual(second.ping_all(), 1)
            self.assertEqual(await pong, (str(layers[0].peer_id), 1))
            self.assertIn("connected to", first.out.getvalue())

        return Deferred.fromCoroutine(scenario())


class PingPongProcessTests(SynchronousTestCase):
    def test_busy_port(self) -> None:
        """
        On a port in use the script ends with status 1 and the node's reason,
        without a traceback, with a new data directory and with an existing one.
        """
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data_dir = os.path.abspath(self.mktemp())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
        for attempt in ("new data directory", "existing data directory"):
            with self.subTest(attempt=attempt):
                done = subprocess.run(
                    [sys.executable, os.path.join(EXAMPLES, "ping_pong.py"),
                     "--dir", data_dir, "--port", str(port)],
                    capture_output=True, text=True, env=env, timeout=60, check=False,
                )  # fmt: skip
                self.assertEqual(done.returncode, 1, done.stderr)
                self.assertIn(f"cannot listen for peers on 127.0.0.1:{port}", done.stderr)
                self.assertNotIn("Traceback", done.stderr)
                self.assertNotIn("Unhandled error", done.stderr)
                self.assertTrue(os.path.exists(os.path.join(data_dir, "identity.json")))


class TacTests(SynchronousTestCase):
    def test_tac_builds_a_node(self) -> None:
        application = loadApplication(os.path.join(EXAMPLES, "node.tac"), "python")
        services = list(IServiceCollection(application))
        self.assertEqual(len(services), 1)
        self.assertIsInstance(services[0], Node)
