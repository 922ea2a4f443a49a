"""
Ping-pong over the Tezos P2P layer: a Twisted application embedding a node.

Each node answers every ``Ping`` with a ``Pong`` and, every few seconds,
broadcasts a ``Ping`` to all its peers.  Start two (or more) in two
terminals, the second bootstrapped from the first::

    python examples/ping_pong.py --dir pp1 --port 19740
    python examples/ping_pong.py --dir pp2 --port 19741 --peer 127.0.0.1:19740

Ctrl-C stops a node cleanly (peers file saved, connections closed).
"""

from __future__ import annotations

import argparse
import struct
import sys
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, react
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.failure import Failure

from txtezosp2p.connection import P2PConnection
from txtezosp2p.limits import Limits
from txtezosp2p.node import NETWORKS, Node, NodeConfig, P2PSettings
from txtezosp2p.p2p import P2P
from txtezosp2p.wire.encoding import MessageEncoding


@attrs.frozen
class Ping:
    number: int


@attrs.frozen
class Pong:
    number: int


def _number(data: bytes) -> int:
    if len(data) != 8:
        raise ValueError("expected 8 bytes")
    value: int = struct.unpack(">q", data)[0]
    return value


#: Application messages: tags from 0x1000 up are free for applications.
ENCODINGS: list[MessageEncoding[Any]] = [
    MessageEncoding(
        tag=0x1000,
        title="Ping",
        type=Ping,
        encode=lambda m: struct.pack(">q", m.number),
        decode=lambda b: Ping(_number(b)),
    ),
    MessageEncoding(
        tag=0x1001,
        title="Pong",
        type=Pong,
        encode=lambda m: struct.pack(">q", m.number),
        decode=lambda b: Pong(_number(b)),
    ),
]


class PingPong:
    """The application: answers pings, counts pongs, pings everyone now and then."""

    def __init__(self, out: Any = sys.stdout) -> None:
        self.out = out
        self.sent = 0
        self.pongs: list[tuple[str, int]] = []
        self.p2p: P2P | None = None
        self._pong_waiters: list[Deferred[tuple[str, int]]] = []

    def next_pong(self) -> Deferred[tuple[str, int]]:
        """Fires with ``(peer id, number)`` of the next pong received."""
        waiter: Deferred[tuple[str, int]] = Deferred()
        self._pong_waiters.append(waiter)
        return waiter

    def on_connection(self, p2p: P2P, connection: P2PConnection) -> None:
        self.p2p = p2p
        self.out.write(f"connected to {connection.peer_id}\n")
        self._serve(p2p, connection)

    def _serve(self, p2p: P2P, connection: P2PConnection) -> None:
        def received(message: object) -> None:
            if isinstance(message, Ping):
                p2p.try_send(connection, Pong(message.number))
            elif isinstance(message, Pong):
                pong = (str(connection.peer_id), message.number)
                self.pongs.append(pong)
                self.out.write(f"pong {message.number} from {connection.peer_id}\n")
                waiters, self._pong_waiters = self._pong_waiters, []
                for waiter in waiters:
                    waiter.callback(pong)
            self._serve(p2p, connection)

        connection.recv().addCallbacks(received, lambda _: None)

    def ping_all(self) -> int:
        if self.p2p is None:
            return 0
        self.sent += 1
        return self.p2p.broadcast(None, Ping(self.sent))


def make_node(
    reactor: Any,
    app: PingPong,
    *,
    data_dir: str,
    port: int,
    peers: tuple[str, ...] = (),
    interface: str = "127.0.0.1",
    clock: Any = None,
) -> Node:
    """A node of the sandbox network carrying the ping-pong messages."""
    config = NodeConfig(
        data_dir=data_dir,
        network=NETWORKS["sandbox"],
        bootstrap_peers=peers,
        identity_workers=1,
        p2p=P2PSettings(
            listen=(f"tcp:{port}:interface={interface}",),
            proof_of_work_target=0.0,
            limits=Limits(
                min_connections=1,
                expected_connections=4,
                max_connections=8,
                maintenance_idle_time=10.0,
            ),
            peers_file="peers.json",
        ),
    )
    return Node(
        reactor,
        config,
        message_encodings=ENCODINGS,
        on_connection=app.on_connection,
        clock=clock,
    )


def main(reactor: Any, argv: list[str]) -> Deferred[None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--dir", required=True, help="data directory of this node")
    parser.add_argument("--port", type=int, required=True, help="listening port (127.0.0.1)")
    parser.add_argument("--peer", action="append", default=[], help="bootstrap peer HOST:PORT")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between pings")
    args = parser.parse_args(argv)

    # the node's warnings and errors (a start failure among them) on standard error
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
            )
        ],
        redirectStandardIO=False,
    )
    app = PingPong()
    node = make_node(reactor, app, data_dir=args.dir, port=args.port, peers=tuple(args.peer))
    pinger = LoopingCall(app.ping_all)
    pinger.clock = reactor
    done: Deferred[None] = Deferred()

    def ready(p2p: P2P) -> None:
        app.p2p = p2p
        print(f"node {p2p.peer_id} listening on port {p2p.listening_port}")
        pinger.start(args.every, now=False)

    def failed(failure: Failure) -> None:
        # the node logged why; end with status 1, without a traceback
        done.errback(Failure(SystemExit(1)))

    node.when_ready().addCallbacks(ready, failed)
    node.startService()

    def stop() -> Deferred[None]:
        if pinger.running:
            pinger.stop()
        return node.stopService().addCallback(lambda _: None)

    reactor.addSystemEventTrigger("before", "shutdown", stop)
    return done  # fires only if the node cannot start: Ctrl-C stops the reactor and the node


if __name__ == "__main__":
    react(main, (sys.argv[1:],))
