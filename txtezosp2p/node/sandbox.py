# -*- test-case-name: tests.test_sandbox -*-
"""
``tezos-p2p sandbox``: a small network of nodes on loopback, in one
process, to watch the P2P layer work.

:class:`Sandbox` starts N :class:`~txtezosp2p.node.composition.Node` services on
127.0.0.1, each with its own data directory (identity, peers file) under
one base directory; the first node is every other node's bootstrap peer,
and maintenance, Advertise and swaps do the rest.  :func:`render_table`
shows, per node, its connections (incoming and outgoing), the points and
peers it knows, and its traffic.  :func:`run` is the command: it redraws
the table every second on a terminal (prints it at every change
otherwise) and, on Ctrl-C or SIGTERM, stops every node cleanly (peers
files saved, connections closed with a reason).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, TextIO

import attrs
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, FirstError
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure

from .. import _events as ev
from ..limits import Limits
from ..p2p import P2P
from ..wire.ids import Point
from .admin_client import format_bytes
from .composition import Node, NodeStartError
from .config import NETWORKS, NODE_P2P, AdminSettings, NodeConfig, connections_limits

_log = ev.logger("p2p.sandbox")


@attrs.frozen(kw_only=True)
class SandboxOptions:
    """What ``tezos-p2p sandbox`` is asked for."""

    nodes: int = 5
    #: Where the nodes' data directories go (a new temporary one if ``None``).
    base_dir: str | None = None
    #: First listening port (the others follow); 0: ports chosen by the system.
    base_port: int = 0
    #: ``--connections`` of every node (default: derived from ``nodes``).
    connections: int | None = None
    expected_pow: float = 0.0
    maintenance_idle_time: float = 10.0
    #: Seconds between two refreshes of the table.
    interval: float = 1.0
    #: Admin API of node i on 127.0.0.1, port ``admin_base_port + i`` (0: ports
    #: chosen by the system; ``None``: no admin API).
    admin_base_port: int | None = None

    def limits(self) -> Limits:
        wanted = self.connections
        if wanted is None:
            wanted = max(1, min(self.nodes - 1, 8))
        base = Limits(maintenance_idle_time=self.maintenance_idle_time)
        return connections_limits(wanted, base)


def _first_error(failure: Failure) -> Failure:
    """The node's own failure, not ``DeferredList``'s ``FirstError`` around it."""
    error = failure.value
    if isinstance(error, FirstError):
        sub: Failure = error.subFailure
        return sub
    return failure


class Sandbox(MultiService):
    """N nodes on loopback, bootstrapped through the first one."""

    def __init__(
        self, reactor: IReactorTime, options: SandboxOptions, *, clock: IReactorTime | None = None
    ) -> None:
        super().__init__()
        if options.nodes < 1:
            raise ValueError("a sandbox has at least one node")
        self.reactor = reactor
        self.clock: IReactorTime = clock or reactor
        self.options = options
        self.base_dir = options.base_dir or tempfile.mkdtemp(prefix="tezos-p2p-sandbox-")
        self.nodes: list[Node] = []
        self._ready: Deferred[list[P2P]] | None = None

    def _node_config(self, index: int, bootstrap: Sequence[str]) -> NodeConfig:
        options = self.options
        port = options.base_port + index if options.base_port else 0
        admin: tuple[str, ...] = ()
        if options.admin_base_port is not None:
            base = options.admin_base_port
            admin = (f"tcp:{base + index if base else 0}:interface=127.0.0.1",)
        return NodeConfig(
            data_dir=os.path.join(self.base_dir, f"node-{index}"),
            network=NETWORKS["sandbox"],
            bootstrap_peers=tuple(bootstrap),
            admin=AdminSettings(endpoints=admin),
            identity_workers=1,
            p2p=attrs.evolve(
                NODE_P2P,
                listen=(f"tcp:{port}:interface=127.0.0.1",),
                proof_of_work_target=options.expected_pow,
                limits=options.limits(),
            ),
        )

    def startService(self) -> None:
        super().startService()
        self._ready = Deferred.fromCoroutine(self._start())

    async def _start(self) -> list[P2P]:
        first = Node(self.reactor, self._node_config(0, ()), clock=self.clock)
        self._add(first)
        bootstrap_p2p = await self._ready_or_fail(0, first)
        bootstrap = [Point("127.0.0.1", bootstrap_p2p.listening_port or 0).to_text()]
        others = []
        for index in range(1, self.options.nodes):
            node = Node(self.reactor, self._node_config(index, bootstrap), clock=self.clock)
            self._add(node)
            others.append(self._ready_or_fail(index, node))
        started = await DeferredList(others, fireOnOneErrback=True, consumeErrors=True).addErrback(
            _first_error
        )
        return [bootstrap_p2p, *(p2p for _, p2p in started)]

    def _ready_or_fail(self, index: int, node: Node) -> Deferred[P2P]:
        """``node.when_ready()``, its failure naming the node and the sandbox's options."""

        def failed(failure: Failure) -> Failure:
            error = failure.value
            if isinstance(error, NodeStartError):
                hint = "--base-port" if "listen for peers" in error.reason else None
                hint = "--admin-base-port" if "admin API" in error.reason else hint
                if hint is not None:
                    hint = f"{hint} chooses other ports"
                return Failure(NodeStartError(f"node {index}: {error.reason}", hint))
            return failure

        return node.when_ready().addErrback(failed)

    def _add(self, node: Node) -> None:
        self.nodes.append(node)
        node.setServiceParent(self)

    def when_ready(self) -> Deferred[list[P2P]]:
        """Fires with every node's P2P layer once all listen."""
        if self._ready is None:
            raise RuntimeError("the sandbox is not started")
        waiter: Deferred[list[P2P]] = Deferred()

        def relay(result: Any) -> Any:
            if isinstance(result, list):
                waiter.callback(result)
            else:
                waiter.errback(result)
            return result

        self._ready.addBoth(relay)
        return waiter

    def layers(self) -> list[P2P]:
        return [node.p2p for node in self.nodes if node.p2p is not None]

    def admin_urls(self) -> list[str | None]:
        """Each node's admin API (``http://127.0.0.1:PORT``), None where there is none."""
        urls: list[str | None] = []
        for node in self.nodes:
            ports = node.admin.ports if node.admin is not None else []
            urls.append(f"http://127.0.0.1:{ports[0].getHost().port}" if ports else None)  # type: ignore[attr-defined]
        return urls


def render_table(layers: Sequence[P2P]) -> str:
    """One line per node: port, peer id, connections in/out, known points and peers, traffic."""
    header = ("node", "port", "peer id", "conns", "in", "out", "points", "peers", "sent", "recv")
    rows = [header]
    for index, p2p in enumerate(layers):
        connections = p2p.connections()
        incoming = sum(1 for c in connections if c.info.incoming)
        stat = p2p.global_stat()
        rows.append(
            (
                str(index),
                str(p2p.listening_port or "-"),
                str(p2p.peer_id)[:12] + "...",
                str(len(connections)),
                str(incoming),
                str(len(connections) - incoming),
                str(len(p2p.pool.points)),
                str(len(p2p.pool.peers)),
                format_bytes(stat.total_sent),
                format_bytes(stat.total_recv),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(lines)


class TablePrinter:
    """The table every ``interval`` seconds: redrawn on a terminal, printed on change otherwise."""

    def __init__(self, sandbox: Sandbox, out: TextIO, clock: IReactorTime, interval: float) -> None:
        self.sandbox = sandbox
        self.out = out
        self.terminal = out.isatty()
        self.last = ""
        self.loop = LoopingCall(self.show)
        self.loop.clock = clock
        self.interval = interval

    def start(self) -> None:
        self.loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()

    def show(self) -> None:
        table = render_table(self.sandbox.layers())
        if self.terminal:
            self.out.write("\x1b[H\x1b[2J")  # home, clear screen
            self.out.write(f"tezos-p2p sandbox in {self.sandbox.base_dir} (Ctrl-C stops)\n\n")
            self.out.write(table + "\n")
        elif table != self.last:
            self.out.write(table + "\n\n")
        self.out.flush()
        self.last = table


def run(options: SandboxOptions, out: TextIO | None = None) -> int:
    """The ``tezos-p2p sandbox`` command, on the global reactor."""
    from twisted.internet import reactor

    stream = out or sys.stdout
    sandbox = Sandbox(reactor, options)
    # every node's log in one file: the terminal shows the table and our own messages
    os.makedirs(sandbox.base_dir, exist_ok=True)
    log_file = open(os.path.join(sandbox.base_dir, "sandbox.log"), "a")  # noqa: SIM115
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log_file)], redirectStandardIO=False)
    printer = TablePrinter(sandbox, stream, reactor, options.interval)
    outcome = {"status": 0}

    def ready(_: object) -> None:
        stream.write(
            f"{options.nodes} nodes on 127.0.0.1, data and sandbox.log in {sandbox.base_dir}; "
            f"Ctrl-C stops\n"
        )
        for index, url in enumerate(sandbox.admin_urls()):
            if url is not None:
                stream.write(f"node {index}: tezos-p2p peers --endpoint {url}\n")
        stream.flush()
        printer.start()

    def failed(failure: Failure) -> None:
        sys.stderr.write(f"tezos-p2p: the sandbox could not start: {failure.getErrorMessage()}\n")
        sys.stderr.flush()
        outcome["status"] = 1
        reactor.stop()

    def stop() -> Deferred[None]:
        printer.stop()
        stopping: Deferred[None] = sandbox.stopService()

        def done(_: object) -> None:
            stream.write(f"\nsandbox stopped; data kept in {sandbox.base_dir}\n")
            stream.flush()

        return stopping.addCallback(done)

    reactor.callWhenRunning(sandbox.startService)
    reactor.callWhenRunning(lambda: sandbox.when_ready().addCallbacks(ready, failed))
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()  # SIGINT and SIGTERM stop the reactor, which runs stop() first
    return outcome["status"]


__all__ = ["Sandbox", "SandboxOptions", "TablePrinter", "render_table", "run"]
