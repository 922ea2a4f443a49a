"""
``python -m bench.memory [--mib N]``: the memory a node needs to receive
one large message.

A real node (``twistd tezos-p2p``, its own process, raw shell messages as
any node built from the command line) listens on loopback; this process
dials it and sends one ``Operation`` message of N MiB (100 MiB by default,
the largest record Octez allows).  The node's resident memory is read from
``/proc`` before the message (baseline), and its peak (``VmHWM``) once the
message has been read, decoded and handed to the application.  Prints one
JSON document; the bar is a peak of at most 2.5 times the message size.

Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint

from txtezosp2p.identity import IdentityFile
from txtezosp2p.limits import Limits
from txtezosp2p.session import connect_session
from txtezosp2p.testing import IDENTITY_A, IDENTITY_B, session_config
from txtezosp2p.wire.encoding import (
    MAX_MESSAGE_SIZE,
    P2PMessageCodec,
    RawMessage,
    raw_message_encodings,
)
from txtezosp2p.wire.versions import Versions

CHAIN = "BENCH_MEMORY"
OPERATION = 0x31
BAR = 2.5


def _status(pid: int) -> dict[str, int]:
    """The ``kB`` fields of ``/proc/<pid>/status``, in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                values[name] = int(parts[0]) * 1024
    return values


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_node(data_dir: str, port: int) -> subprocess.Popen[bytes]:
    IdentityFile.in_directory(data_dir).save(IDENTITY_A)
    log = os.path.join(data_dir, "node.log")
    command = [
        sys.executable,
        "-c",
        "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
        "-n",
        "--pidfile=",
        f"--logfile={log}",
        "tezos-p2p",
        "-d",
        data_dir,
        "--listen",
        f"tcp:{port}:interface=127.0.0.1",
        "--chain-name",
        CHAIN,
        "--expected-pow",
        "0",
        "--no-bootstrap-peers",
        "--no-peers-file",
        "--no-admin",
        "--disable-p2p-maintenance",
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)  # the plugin is found from the source tree too
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    node = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=data_dir
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if node.poll() is not None:
            raise SystemExit(f"the node exited with {node.returncode}; see {log}")
        if os.path.exists(log):
            with open(log, "rb") as handle:
                if b"listening on port" in handle.read():
                    return node
        time.sleep(0.1)
    node.kill()
    raise SystemExit(f"the node did not start; see {log}")


async def _send(reactor: Any, port: int, payload_size: int) -> None:
    config = session_config(
        IDENTITY_B,
        versions=Versions(CHAIN),
        codec=P2PMessageCodec(raw_message_encodings()),
        pow_target=0.0,
        limits=Limits(connection_timeout=60.0),
    )
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    session = await connect_session(config, reactor, endpoint)
    await session.write_sync(RawMessage(OPERATION, b"\x5a" * payload_size))
    await session.close("done", wait=True)


def measure(reactor: Any, size: int) -> defer.Deferred[dict[str, Any]]:
    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as data_dir:
            port = _free_port()
            node = _start_node(data_dir, port)
            try:
                await task.deferLater(reactor, 1.0, lambda: None)  # let it settle
                before = _status(node.pid)
                payload = size - 4 - 2  # the record: length, tag, payload
                await _send(reactor, port, payload)
                # the session decodes the message before it sees the end of the
                # stream: once the node logs the disconnection, it is done
                log = os.path.join(data_dir, "node.log")
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with open(log, "rb") as handle:
                        if b"disconnected from" in handle.read():
                            break
                    await task.deferLater(reactor, 0.2, lambda: None)
                else:
                    raise SystemExit(f"the node did not see the end of the message; see {log}")
                await task.deferLater(reactor, 0.5, lambda: None)
                after = _status(node.pid)
            finally:
                node.send_signal(signal.SIGTERM)
                node.wait(timeout=30)
        peak = after["VmHWM"]
        return {
            "message_bytes": size,
            "baseline_rss_MB": round(before["VmRSS"] / 1e6, 1),
            "peak_rss_MB": round(peak / 1e6, 1),
            "peak_increase_MB": round((peak - before["VmRSS"]) / 1e6, 1),
            "peak_vs_message": round(peak / size, 2),
            "increase_vs_message": round((peak - before["VmRSS"]) / size, 2),
            "bar_peak_vs_message": BAR,
            "within_bar": peak <= BAR * size,
        }

    return defer.Deferred.fromCoroutine(run())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument(
        "--mib",
        type=int,
        default=MAX_MESSAGE_SIZE >> 20,
        help="size of the message record in MiB (default: the largest allowed)",
    )
    args = parser.parse_args()
    size = min(args.mib << 20, MAX_MESSAGE_SIZE)

    def start(reactor: Any) -> defer.Deferred[None]:
        return measure(reactor, size).addCallback(
            lambda result: print(json.dumps(result, indent=2))
        )

    task.react(start)


if __name__ == "__main__":
    main()
