"""
``python -m bench.fuzz_admin [--requests N] [--seed S] [--concurrency C]``:
hostile HTTP requests against the admin API of a live node, over real TCP,
and the histogram of the answers' statuses.

The node runs in a subprocess (``--serve``), with a second P2P layer
connected to it, so that handlers see a running connection, known points
and peers.  Requests are raw bytes, one TCP connection each: real routes
with real and malformed peer ids and points, mutated paths (bad
percent-escapes, invalid UTF-8, raw non-ASCII bytes, dot segments, very long
segments), odd query strings, odd and malformed methods and versions, huge
and malformed headers, bodies nested far too deep, not UTF-8, with giant
numbers, too large, chunked or with broken framing.  The client reads the
status line, then resets the connection (streams never end by themselves,
and no socket is left in TIME_WAIT).

The bar is no 500 at all (docs/admin-api.md, "Hardening").  The generator
and the client are also used by ``tests/test_admin.py`` on a few hundred
requests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

import attrs
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectError
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

# -- the requests ------------------------------------------------------------------------------


@attrs.frozen
class Targets:
    """What the node knows, for requests that reach its handlers."""

    #: Peer ids (text): the node's, its connected peer's, others.
    peer_ids: Sequence[str]
    #: Points (text) to name in paths; only loopback ones, never dialled by GET/PATCH.
    points: Sequence[str]
    #: Points a PUT may dial: they must refuse at once (nothing listens there).
    dial_points: Sequence[str] = ("127.0.0.1:1", "[::1]:1")


#: Every route and the verbs it serves.
ROUTES = (
    ("version", b"GET"),
    ("metrics", b"GET"),
    ("network", b""),
    ("network/self", b"GET"),
    ("network/version", b"GET"),
    ("network/versions", b"GET"),
    ("network/stat", b"GET"),
    ("network/full_stat", b"GET"),
    ("network/log", b"GET"),
    ("network/connections", b"GET"),
    ("network/connections/{peer}", b"GET DELETE"),
    ("network/points", b"GET"),
    ("network/points/{point}", b"GET PUT PATCH"),
    ("network/points/{point}/log", b"GET"),
    ("network/points/{point}/banned", b"GET"),
    ("network/peers", b"GET"),
    ("network/peers/{peer}", b"GET PATCH"),
    ("network/peers/{peer}/log", b"GET"),
    ("network/peers/{peer}/banned", b"GET"),
    ("network/greylist", b"DELETE"),
    ("network/greylist/ips", b"GET"),
    ("network/greylist/peers", b"GET"),
)

METHODS = (
    (b"GET", 30),
    (b"HEAD", 5),
    (b"PUT", 8),
    (b"PATCH", 22),
    (b"DELETE", 10),
    (b"POST", 5),
    (b"OPTIONS", 2),
    (b"TRACE", 1),
    (b"get", 1),
    (b"FOO", 1),
    (b"M-SEARCH", 1),
    (b"G\xc3\x89T", 1),
    (b"\xff\xfe", 1),
    (b"X" * 300, 1),
)

#: Path segments no route names, most of them malformed.
HOSTILE_SEGMENTS = (
    b"%ff",
    b"%zz",
    b"%",
    b"%f",
    b"%%",
    b"\xff",
    b"\xc3\xa9",
    b"%C3%A9",
    b"%C0%AF",
    b"%ED%A0%80",
    b"%F4%90%80%80",
    b"%00",
    b"%0a",
    b"..",
    b".",
    b"",
    b"%2F",
    b"%2e%2e",
    b"x" * 4000,
    b"idtqxHUjbjbCfaDn4jczoPGsnhacKX",
    b"idnotapeer",
    b"id" + b"1" * 28,
    b"127.0.0.1",
    b"127.0.0.1:99999",
    b"127.0.0.1:-1",
    b"127.0.0.1:1%00",
    b"[::1",
    b"[::1]:",
    b"::1:1",
    b"[::1%25lo]:1",
    b"%5B%3A%3A1%5D",
    b"\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97.0.0.1:1",
    b"*",
)

QUERIES = (
    *[b""] * 20,
    b"?wait",
    b"?wait=true",
    b"?wait=x",
    b"?monitor",
    b"?monitor=no",
    b"?monitor=%ff",
    b"?filter=running",
    b"?filter=running&filter=disconnected",
    b"?filter=sleeping",
    b"?filter=%ff",
    b"?filter=\xff",
    b"?filter=\xc3\xbf",
    b"?filter=%",
    b"?filter=%zz",
    b"?%ff=1",
    b"?timeout=1",
    b"?timeout=0.000001",
    b"?timeout=1e309",
    b"?timeout=nan",
    b"?timeout=-0",
    b"?timeout=99999",
    b"?=",
    b"?&&&",
    b"?a=%&b=%%",
    b"?+=+",
    b"?" + b"a=1&" * 500,
    b"??",
    b"?#frag",
)

VERSIONS = (
    (b"HTTP/1.1", 90),
    (b"HTTP/1.0", 4),
    (b"HTTP/2.0", 1),
    (b"HTTP/1.1x", 1),
    (b"HTTP/0.9", 1),
    (b"", 1),
    (b"http/1.1", 1),
)


def _weighted(rng: random.Random, choices: Sequence[tuple[bytes, int]]) -> bytes:
    return rng.choices([value for value, _ in choices], [weight for _, weight in choices])[0]


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice((5, 31, 32, 33, 100, 1000, 30000))
    opener, closer = rng.choice(((b"[", b"]"), (b'{"a":', b"}"), (b'{"acl":[', b"]}")))
    closed = rng.random() < 0.7
    return opener * depth + (b"1" + closer * depth if closed else b"")


def _body(rng: random.Random, targets: Targets) -> bytes | None:
    kind = rng.randrange(12)
    if kind <= 2:
        return None
    if kind <= 5:
        body: dict[str, Any] = {}
        if rng.random() < 0.8:
            body["acl"] = rng.choice(["ban", "trust", "open", "maybe", 1, None, [], {}, "BAN"])
        if rng.random() < 0.3:
            body["peer_id"] = rng.choice([*targets.peer_ids, "x", 1, None, "\ud800"])
        if rng.random() < 0.1:
            body["colour"] = "red"
        return json.dumps(body).encode()
    if kind == 6:
        return _nested(rng)
    if kind == 7:
        return rng.choice(
            (
                b"{}",
                b"[]",
                b"null",
                b'"x"',
                b"1",
                b"true",
                b" ",
                b"NaN",
                b"-Infinity",
                b"1e99999",
                b"-0",
                b"1" * 5000,
                b"-" + b"9" * 200,
                b'"\\ud800"',
                b'{"peer_id": "\\u0000"}',
                b'{"acl": "ban", "acl": "open"}',
            )
        )
    if kind == 8:
        return rng.choice(
            (
                b'{"acl": "\xff"}',
                b"\xc0\x80",
                b"\xef\xbb\xbf{}",
                '{"acl": "ban"}'.encode("utf-16"),
                b'{"acl": "ban"',
                b'"\\',
                b'"' + b'\\"' * 3000,
                b"[]" * 30000,
            )
        )
    if kind == 9:
        return rng.choice((b" " * 70000 + b"{}", b"{" * 70000, b"[" * 65537))
    return bytes(rng.randrange(256) for _ in range(rng.randrange(200)))


def _mutate(rng: random.Random, path: bytes) -> bytes:
    choice = rng.randrange(7)
    segments = path.split(b"/")
    if choice == 0:
        segments.insert(rng.randrange(len(segments) + 1), rng.choice(HOSTILE_SEGMENTS))
    elif choice == 1 and path:
        index = rng.randrange(len(path))
        return path[:index] + b"%%%02X" % path[index] + path[index + 1 :]
    elif choice == 2 and path:
        index = rng.randrange(len(path))
        return path[:index] + bytes([rng.randrange(128, 256)]) + path[index + 1 :]
    elif choice == 3:
        return path.replace(b"/", b"//", 1)
    elif choice == 4 and path:
        return path[: rng.randrange(len(path))]
    elif choice == 5:
        return path + rng.choice((b"/", b"/.", b"/..", b"%", b"/%ff"))
    else:
        return rng.choice((b"http://node", b"", b"x", b"//")) + path
    return b"/".join(segments)


def _path(rng: random.Random, targets: Targets) -> tuple[bytes, bytes]:
    """A method and a path."""
    method = _weighted(rng, METHODS)
    if rng.random() < 0.75:
        route, verbs = rng.choice(ROUTES)
        if verbs and rng.random() < 0.6:
            method = rng.choice(verbs.split())
        # a PUT may dial: its valid points are ones that refuse at once
        points = targets.dial_points if method == b"PUT" else targets.points
        point = rng.choice(points).encode()
        if rng.random() < 0.3:
            point = b"".join(b"%%%02X" % byte for byte in point)
        peer = rng.choice(targets.peer_ids).encode()
        if rng.random() < 0.15:
            peer = rng.choice([s for s in HOSTILE_SEGMENTS if not re.fullmatch(rb"[0-9.:]+", s)])
        if method == b"PUT" and rng.random() < 0.2:
            point = rng.choice((b"%ff", b"[::1", b"127.0.0.1", b"\xff", b"x" * 200))
        path = b"/" + route.encode().replace(b"{point}", point).replace(b"{peer}", peer)
    else:
        count = rng.randrange(1, 6)
        path = b"/" + b"/".join(rng.choice(HOSTILE_SEGMENTS) for _ in range(count))
    if rng.random() < 0.3:
        path = _mutate(rng, path)
    if method == b"PUT" and _dials_elsewhere(path, targets):
        # never dial anything but a port that refuses at once
        path = b"/network/points/%ff"
    return method, path


def _dials_elsewhere(path: bytes, targets: Targets) -> bool:
    """Whether a PUT of ``path`` would dial a point other than the safe ones."""
    from txtezosp2p.wire.ids import Point

    segments = path.strip(b"/").split(b"/")
    if len(segments) != 3 or segments[:2] != [b"network", b"points"]:
        return False
    try:
        point = Point.parse(unquote_to_bytes(segments[2]).decode("utf-8"))
    except Exception:  # not a point: nothing is dialled
        return False
    return point not in {Point.parse(text) for text in targets.dial_points}


def _headers(rng: random.Random) -> list[bytes]:
    headers = [b"Host: node"]
    roll = rng.random()
    if roll < 0.04:
        headers.append(b"X-Big: " + b"a" * rng.choice((1000, 8000, 17000, 70000)))
    elif roll < 0.07:
        headers.extend(b"X-H%d: v" % index for index in range(rng.choice((50, 200, 600))))
    elif roll < 0.09:
        headers.append(rng.choice((b"X-\xff: \xff", b"X-A: \xc3\xa9", b"\xff\xfe: 1")))
    elif roll < 0.10:
        headers.append(b"NoColonHere")
    elif roll < 0.11:
        headers.extend((b"X-Fold: a", b" folded"))
    elif roll < 0.12:
        headers.append(b"Expect: 100-continue")
    elif roll < 0.14:
        headers.append(b"Content-Type: " + rng.choice((b"text/plain", b"\xff", b"a" * 500)))
    return headers


def _framing(rng: random.Random, body: bytes) -> tuple[list[bytes], bytes]:
    """Headers and bytes that carry ``body``; the request is always complete."""
    roll = rng.random()
    if roll < 0.80:
        return [b"Content-Length: %d" % len(body)], body
    if roll < 0.95:
        chunks = []
        position = 0
        while position < len(body):
            size = min(rng.randrange(1, 9000), len(body) - position)
            chunks.append(b"%x\r\n%s\r\n" % (size, body[position : position + size]))
            position += size
        return [b"Transfer-Encoding: chunked"], b"".join(chunks) + b"0\r\n\r\n"
    broken = rng.choice(
        (
            [b"Content-Length: abc"],
            [b"Content-Length: -1"],
            [b"Content-Length: 1, 2"],
            [b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 1)],
            [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"],
            [b"Transfer-Encoding: gzip, chunked"],
            [b"Transfer-Encoding: chunked"],
        )
    )
    if broken == [b"Transfer-Encoding: chunked"]:
        return broken, b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    return broken, body


def hostile_request(rng: random.Random, targets: Targets) -> bytes:
    """One request, as raw bytes; always complete (the server never waits for more)."""
    method, path = _path(rng, targets)
    query = rng.choice(QUERIES)
    version = _weighted(rng, VERSIONS)
    headers = _headers(rng)
    body = _body(rng, targets)
    payload = b""
    if body is not None:
        framing, payload = _framing(rng, body)
        headers.extend(framing)
    line = b" ".join(part for part in (method, path + query, version) if part)
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + payload


def hostile_requests(seed: int, count: int, targets: Targets) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        yield hostile_request(rng, targets)


# -- the client --------------------------------------------------------------------------------

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


def _status(buffer: bytes) -> str | None:
    """The final status in ``buffer`` (``None``: not there yet), skipping 1xx answers."""
    while True:
        line, found, _ = buffer.partition(b"\r\n")
        if not found:
            return None
        match = _STATUS.match(line)
        if match is None:
            return "garbled"
        if not match.group(1).startswith(b"1"):
            return match.group(1).decode()
        _, found, buffer = buffer.partition(b"\r\n\r\n")
        if not found:
            return None


class _Exchange(Protocol):
    """Sends one request, reads the status line, resets the connection."""

    def __init__(self, request: bytes, done: Deferred[str]) -> None:
        self.request = request
        self.done = done
        self.buffer = b""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        status = _status(self.buffer)
        if status is None and len(self.buffer) > 65536:
            status = "garbled"
        if status is not None:
            self._answer(status)
            assert self.transport is not None
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = Failure(ConnectError())) -> None:  # noqa: B008
        self._answer(_status(self.buffer + b"\r\n") if self.buffer else "no answer")

    def _answer(self, status: str | None) -> None:
        if not self.done.called:
            self.done.callback(status or "no answer")


async def exchange(reactor: Any, port: int, request: bytes, timeout: float | None = None) -> str:
    """One request on a new connection to ``127.0.0.1:port``: the status it got."""
    done: Deferred[str] = Deferred()
    if timeout is not None:
        done.addTimeout(timeout, reactor, onTimeoutCancel=lambda *_: "timeout")
    try:
        await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port), _Exchange(request, done)
        )
    except ConnectError:
        return "cannot connect"
    return await done


async def fire(
    reactor: Any,
    port: int,
    requests: Iterator[bytes],
    concurrency: int,
    *,
    timeout: float | None = None,
    each: Callable[[bytes, str], None] | None = None,
) -> Counter[str]:
    """Send every request, ``concurrency`` at a time: how many got each status."""
    statuses: Counter[str] = Counter()

    async def worker() -> None:
        for request in requests:
            status = await exchange(reactor, port, request, timeout)
            statuses[status] += 1
            if each is not None:
                each(request, status)

    await gatherResults([Deferred.fromCoroutine(worker()) for _ in range(concurrency)])
    return statuses


# -- the node ----------------------------------------------------------------------------------


def serve(data_dir: str) -> None:
    """A node with its admin API and a connected peer; prints what the fuzzer needs."""
    from twisted.internet import reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    # warnings and errors on standard error, where the campaign counts tracebacks
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
            )
        ],
        redirectStandardIO=False,
    )

    from txtezosp2p.limits import Limits
    from txtezosp2p.node.composition import Node, NodeOptions
    from txtezosp2p.p2p import P2P, P2PConfig
    from txtezosp2p.session import Versions
    from txtezosp2p.testing import unchecked_identity
    from txtezosp2p.wire.ids import Point

    node = Node(
        reactor,
        NodeOptions(
            data_dir=data_dir,
            listen=("tcp:0:interface=127.0.0.1",),
            expected_pow=0.0,
            chain_name="SANDBOXED_TEZOS",
            limits=Limits(min_connections=0, expected_connections=2, max_connections=8),
            admin=("tcp:0:interface=127.0.0.1",),
        ),
    )

    async def start() -> None:
        node.startService()
        p2p = await node.when_ready()
        assert node.admin is not None
        [port] = await node.admin.when_listening()
        other = P2P(
            reactor,
            P2PConfig(
                identity=unchecked_identity(),
                versions=Versions("SANDBOXED_TEZOS"),
                proof_of_work_target=0.0,
            ),
            Limits(maintenance_idle_time=None),
        )
        await other.activate()
        assert p2p.listening_port is not None
        await other.connect(Point("127.0.0.1", p2p.listening_port))
        for index in range(20):
            p2p.pool.register_point(Point("127.0.0.1", 2000 + index))
        print(
            json.dumps(
                {
                    "port": port.getHost().port,  # type: ignore[attr-defined]
                    "peer_ids": [str(p2p.peer_id), str(other.peer_id)],
                    "points": [p.to_text() for p in list(p2p.pool.points)[:20]],
                }
            ),
            flush=True,
        )

    def failed(failure: Failure) -> None:
        print(json.dumps({"error": failure.getErrorMessage()}), flush=True)
        reactor.stop()  # type: ignore[attr-defined]

    Deferred.fromCoroutine(start()).addErrback(failed)
    reactor.run()  # type: ignore[attr-defined]


def _peak_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_admin", description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    with tempfile.TemporaryDirectory() as data_dir:
        log_path = os.path.join(data_dir, "node.log")
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "bench.fuzz_admin", "--serve", data_dir],
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                text=True,
            )
        try:
            assert server.stdout is not None
            ready = json.loads(server.stdout.readline() or '{"error": "no answer"}')
            if "error" in ready:
                raise SystemExit(f"the node did not start: {ready['error']}")
            targets = Targets(peer_ids=ready["peer_ids"], points=ready["points"])
            status = _campaign(args, ready["port"], targets, server.pid, log_path)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        return status


def _campaign(
    args: argparse.Namespace, port: int, targets: Targets, pid: int, log_path: str
) -> int:
    from twisted.internet import reactor

    outcome: dict[str, Any] = {}
    examples: dict[str, bytes] = {}
    started = time.perf_counter()
    progress = {"sent": 0}

    def each(request: bytes, status: str) -> None:
        progress["sent"] += 1
        if status not in examples:
            examples[status] = request[:300]
        if progress["sent"] % 100_000 == 0:
            rate = progress["sent"] / (time.perf_counter() - started)
            print(f"{progress['sent']} requests, {rate:.0f}/s", file=sys.stderr, flush=True)

    async def run() -> None:
        statuses = await fire(
            reactor,
            port,
            hostile_requests(args.seed, args.requests, targets),
            args.concurrency,
            timeout=30.0,
            each=each,
        )
        alive = await exchange(reactor, port, b"GET /network/self HTTP/1.1\r\nHost: n\r\n\r\n", 30)
        outcome.update(statuses=statuses, alive=alive)

    def stop(result: object) -> None:
        if isinstance(result, Failure):
            outcome["error"] = result.getTraceback()
        reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(run()).addBoth(stop))  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if "error" in outcome:
        print(outcome["error"], file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    statuses = outcome["statuses"]
    report = {
        "requests": sum(statuses.values()),
        "seed": args.seed,
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 1),
        "per_second": round(sum(statuses.values()) / elapsed),
        "statuses": dict(sorted(statuses.items())),
        "answers_500": statuses["500"],
        "node_alive_after": outcome["alive"] == "200",
        "node_peak_rss_MiB": round((_peak_rss_kib(pid) or 0) / 1024, 1),
        "node_tracebacks": _count(log_path, "Traceback"),
        "node_admin_errors": _count(log_path, "admin request failed"),
        "load_average": os.getloadavg(),
        "example_per_status": {s: r.decode("latin-1") for s, r in sorted(examples.items())},
    }
    print(json.dumps(report, indent=2))
    healthy = report["node_alive_after"] and not report["node_tracebacks"]
    return 0 if report["answers_500"] == 0 and healthy else 1


def _count(path: str, text: str) -> int:
    with open(path, errors="replace") as log:
        return sum(text in line for line in log)


if __name__ == "__main__":
    raise SystemExit(main())
