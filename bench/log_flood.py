"""
``python -m bench.log_flood [--connections 500] [--seconds 30] [--max-lines 400]``:
how many log lines a connection flood costs a real ``twistd tezos-p2p`` node.

The node runs in its own process on 127.0.0.1 (sandbox network, no
bootstrap peer, default limits: 20 incoming handshakes at a time, 5 s
authentication timeout), logging to a file.  This process then keeps
``--connections`` TCP connections open to it that never send a byte, each
reopened as soon as the node closes it, for ``--seconds`` seconds: the node
refuses most of them at once (too many incoming) and times out the
handshakes it admitted.  The node is then stopped with SIGTERM, which
writes the summaries of the last windows.

It prints one JSON document: connections opened, the node's log lines and
bytes during the flood and the stop, and the lines by event; the exit
status is 1 if the node wrote more than ``--max-lines`` lines.  Without the
rate limit of docs/operating.md ("Logs") every refused connection wrote a
line: hundreds of thousands in 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from .churn import HOST, READY, TWISTD, free_ports

#: A twistd log line: ``<time> [<namespace>#<level>] <text>``.
LINE = re.compile(rb"^\S+ \[(?P<system>[^\]]*)\] (?P<text>.*)$")


class _Silent(Protocol):
    def __init__(self, flood: Flood) -> None:
        self.flood = flood

    def connectionMade(self) -> None:
        if self.flood.stopping:
            self.transport.abortConnection()  # type: ignore[union-attr]
        else:
            self.flood.live.add(self)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.flood.live.discard(self)
        self.flood.reopen()


class Flood(Factory):
    """``size`` silent connections to ``port``, each reopened when it closes."""

    noisy = False

    def __init__(self, reactor: Any, port: int, size: int) -> None:
        self.endpoint = TCP4ClientEndpoint(reactor, HOST, port)
        self.size = size
        self.opened = 0
        self.failed = 0
        self.stopping = False
        self.live: set[_Silent] = set()
        self.connecting: set[defer.Deferred[Any]] = set()

    def buildProtocol(self, addr: Any) -> _Silent:
        return _Silent(self)

    def start(self) -> None:
        for _ in range(self.size):
            self.open()

    def open(self) -> None:
        self.opened += 1
        attempt = self.endpoint.connect(self)
        self.connecting.add(attempt)

        def done(result: object) -> None:
            self.connecting.discard(attempt)
            if isinstance(result, Failure):
                self.failed += 1
                self.reopen()

        attempt.addBoth(done)

    def reopen(self) -> None:
        if not self.stopping:
            self.open()

    def stop(self) -> None:
        self.stopping = True
        for attempt in list(self.connecting):
            attempt.cancel()
        for protocol in list(self.live):
            protocol.transport.abortConnection()  # type: ignore[union-attr]


def count_lines(data: bytes) -> dict[str, Any]:
    """Lines, bytes and lines by kind of a stretch of twistd log."""
    kinds: Counter[str] = Counter()
    lines = data.splitlines()
    for line in lines:
        match = LINE.match(line)
        text = match.group("text").decode("utf-8", "replace") if match else ""
        # the text without addresses and numbers: one kind per message format
        kinds[re.sub(r"[\d.:\[\]a-f]{6,}|\d[\d,]*", "#", text)[:90]] += 1
    return {"lines": len(lines), "bytes": len(data), "by_kind": dict(kinds.most_common())}


def run(args: argparse.Namespace) -> dict[str, Any]:
    port, admin_port = free_ports(2, random.Random())
    data_dir = tempfile.mkdtemp(prefix="txtezosp2p-log-flood-")
    log_path = os.path.join(data_dir, "twistd.log")
    argv = [
        sys.executable, "-u", "-c", TWISTD, "-n", "--pidfile=", "--logfile=-",
        "tezos-p2p", "--data-dir", data_dir,
        "--listen", f"tcp:{port}:interface={HOST}",
        "--admin", f"tcp:{admin_port}:interface={HOST}",
        "--network", "sandbox", "--no-bootstrap-peers",
        "--expected-pow", "0", "--identity-workers", "1",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        node = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    try:
        deadline = time.monotonic() + 60
        while READY not in _read(log_path):
            if node.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the node did not start:\n{_read(log_path).decode()[-2000:]}")
            time.sleep(0.1)
        start = len(_read(log_path))
        flood_report: dict[str, Any] = {}

        async def flood(reactor: Any) -> None:
            flood = Flood(reactor, port, args.connections)
            flood.start()
            await task.deferLater(reactor, args.seconds, lambda: None)
            flood.stop()
            flood_report.update(opened=flood.opened, failed_to_connect=flood.failed)

        try:
            task.react(lambda reactor: defer.Deferred.fromCoroutine(flood(reactor)))
        except SystemExit as done:  # react ends the process; the report is not written yet
            if done.code not in (0, None):
                raise
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=60)
        data = _read(log_path)[start:]
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    counted = count_lines(data)
    return {
        "connections": args.connections,
        "seconds": args.seconds,
        **flood_report,
        "node_exit_status": node.returncode,
        **counted,
        "max_lines": args.max_lines,
        "passed": counted["lines"] <= args.max_lines,
    }


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_flood", description=__doc__)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-lines", type=int, default=400)
    args = parser.parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
