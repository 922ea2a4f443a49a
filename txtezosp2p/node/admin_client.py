# -*- test-case-name: tests.test_admin_client -*-
"""
The admin command line: ``tezos-p2p rpc get|put|patch|delete PATH [JSON]``
and its shortcuts (``peers``, ``connections``, ``points``, ``stat``,
``ban``, ``unban``, ``trust``, ``kick``, ``greylist [show|clear]``), talking
to a node's admin HTTP API (docs/admin-api.md) with ``treq``.

On a terminal the shortcuts print tables and one-line confirmations; when
the output is piped (or with ``--json``) they print the API's JSON as is,
so that scripts can use ``jq``.  ``rpc`` always prints JSON; on a streaming
path (``/network/log``, ``...?monitor``) it prints each value as it arrives
until the node ends the stream or Ctrl-C.

Every command is an ``async`` function of a ``treq`` ``HTTPClient``: the
tests run them on trial's reactor against a live node; :func:`run` runs
one on the global reactor for the console script.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO
from urllib.parse import quote

from treq import collect
from treq.client import HTTPClient
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ..wire.errors import P2PError
from ..wire.ids import PeerId, Point

#: Where the node serves its admin API unless told otherwise (``--admin``'s default).
DEFAULT_ENDPOINT = "http://127.0.0.1:8742"
#: Environment variable overriding :data:`DEFAULT_ENDPOINT`.
ENDPOINT_VARIABLE = "TEZOS_P2P_ADMIN"
#: Largest response body accepted from the node (a non-streaming one).
MAX_RESPONSE = 64 * 1024 * 1024

HTTP_METHODS = ("get", "put", "patch", "delete")


class AdminClientError(Exception):
    """The node answered with an error, or could not be reached: one line for the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status of the answer, if there was one.
        self.status = status


class Text(str):
    """A response that is not JSON (``/metrics``): printed as is."""


def default_endpoint() -> str:
    return os.environ.get(ENDPOINT_VARIABLE) or DEFAULT_ENDPOINT


class AdminClient:
    """Calls to one node's admin API."""

    def __init__(self, http: HTTPClient, endpoint: str) -> None:
        self.http = http
        self.endpoint = endpoint.rstrip("/")
        if not self.endpoint.startswith(("http://", "https://")):
            raise AdminClientError(f"the endpoint must be an http:// URL, not {endpoint!r}")

    def url(self, path: str) -> str:
        return self.endpoint + "/" + path.lstrip("/")

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the decoded JSON answer, or :class:`AdminClientError`."""
        response = await self._send(method, path, body, unbuffered=True)
        content = await self._read(path, response)
        self._check(path, response.code, content)
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except ValueError:
            # /metrics is text
            return Text(content.decode("utf-8", "replace"))

    async def stream(self, path: str, each: Callable[[Any], None]) -> None:
        """A streaming GET: ``each`` gets every JSON value as it arrives."""
        response = await self._send("get", path, None, unbuffered=True)
        if response.code != 200:
            self._check(path, response.code, await self._read(path, response))
        buffer = bytearray()

        def received(data: bytes) -> None:
            buffer.extend(data)
            if len(buffer) > MAX_RESPONSE:
                raise AdminClientError(f"{path}: value larger than {MAX_RESPONSE} bytes")
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                if line.strip():
                    each(json.loads(line))

        await collect(response, received)
        if bytes(buffer).strip():
            each(json.loads(bytes(buffer)))

    @staticmethod
    async def _read(path: str, response: Any) -> bytes:
        """The whole body, refused (not buffered) past :data:`MAX_RESPONSE`."""
        parts = bytearray()

        def received(data: bytes) -> None:
            if len(parts) + len(data) > MAX_RESPONSE:
                raise AdminClientError(f"{path}: answer larger than {MAX_RESPONSE} bytes")
            parts.extend(data)

        await collect(response, received)
        return bytes(parts)

    async def _send(self, method: str, path: str, body: Any, *, unbuffered: bool) -> Any:
        kwargs: dict[str, Any] = {"unbuffered": unbuffered}
        if body is not None:
            kwargs["data"] = json.dumps(body).encode()
            kwargs["headers"] = {b"content-type": [b"application/json"]}
        try:
            return await self.http.request(method.upper(), self.url(path), **kwargs)
        except Exception as error:  # connection refused, DNS, TLS, ...
            reason = _reason(error)
            raise AdminClientError(
                f"cannot reach the admin API at {self.endpoint}: {reason}"
            ) from None

    @staticmethod
    def _check(path: str, code: int, content: bytes) -> None:
        if 200 <= code < 300:
            return
        message = f"HTTP {code}"
        try:
            errors = json.loads(content)
            first = errors[0] if isinstance(errors, list) and errors else errors
            if isinstance(first, dict):
                message += f": {first.get('msg') or first.get('id') or first}"
        except (ValueError, KeyError, TypeError):
            text = content.decode("utf-8", "replace").strip().splitlines()
            if text:
                message += f": {text[0][:200]}"
        raise AdminClientError(f"{path}: {message}", code)


def _reason(error: BaseException) -> str:
    # twisted.web wraps connection failures in ResponseNeverReceived & co.
    reasons = getattr(error, "reasons", None)
    if reasons:
        first = reasons[0]
        if isinstance(first, Failure):
            return first.getErrorMessage()
    return str(error) or type(error).__name__


# -- targets -------------------------------------------------------------------------------


def target_path(text: str) -> str:
    """``network/peers/<id>`` for a peer id, ``network/points/<point>`` for a point."""
    try:
        return "network/peers/" + str(PeerId.from_b58check(text))
    except (P2PError, ValueError):
        pass
    try:
        point = Point.parse(text)
    except (P2PError, ValueError):
        raise AdminClientError(
            f"{text!r} is neither a peer id (id...) nor a point (host:port, [v6]:port)"
        ) from None
    return "network/points/" + quote(point.to_text(), safe="")


def peer_path(text: str) -> str:
    try:
        return str(PeerId.from_b58check(text))
    except (P2PError, ValueError):
        raise AdminClientError(f"{text!r} is not a peer id") from None


# -- output --------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, or a line saying there is nothing."""
    if not rows:
        return "(none)"
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _point(value: Any) -> str:
    if isinstance(value, dict) and "addr" in value:
        addr = str(value["addr"])
        if addr.startswith("::ffff:"):
            addr = addr[len("::ffff:") :]
        host = f"[{addr}]" if ":" in addr else addr
        port = value.get("port")
        return f"{host}:{port}" if port is not None else host
    return "-"


def _when(pair: Any) -> str:
    if isinstance(pair, list) and len(pair) == 2:
        return str(pair[1])
    return "-"


def format_bytes(count: int) -> str:
    """A byte count for people: ``512 B``, ``12 KiB``, ``3 MiB``, ``2 GiB``."""
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count} {unit}"
        count //= 1024
    return f"{count} GiB"


def _size(text: Any) -> str:
    """A 64-bit byte total of the API (a decimal string) for people."""
    try:
        return format_bytes(int(text))
    except (TypeError, ValueError):
        return "-"


def connections_table(connections: list[Any]) -> str:
    rows = [
        [
            str(c.get("peer_id", "-")),
            "in" if c.get("incoming") else "out",
            _point(c.get("id_point")),
            str(c.get("remote_socket_port", "-")),
            str(c.get("announced_version", {}).get("chain_name", "-")),
            "yes" if c.get("private") else "no",
        ]
        for c in connections
    ]
    return table(("PEER", "DIR", "POINT", "REMOTE PORT", "CHAIN", "PRIVATE"), rows)


def peers_table(peers: list[Any]) -> str:
    rows = []
    for entry in peers:
        peer_id, info = entry
        stat = info.get("stat") or {}
        rows.append(
            [
                str(peer_id),
                str(info.get("state", "-")),
                "yes" if info.get("trusted") else "no",
                _point(info.get("reachable_at")),
                _size(stat.get("total_sent")),
                _size(stat.get("total_recv")),
                _when(info.get("last_seen")),
                _acl(info),
            ]
        )
    return table(
        ("PEER", "STATE", "TRUSTED", "REACHABLE AT", "SENT", "RECEIVED", "LAST SEEN", "BANNED"),
        rows,
    )


def points_table(points: list[Any]) -> str:
    rows = []
    for entry in points:
        point, info = entry
        state = info.get("state") or {}
        rows.append(
            [
                str(point),
                str(state.get("event_kind", "-")),
                str(state.get("p2p_peer_id") or info.get("p2p_peer_id") or "-"),
                "yes" if info.get("trusted") else "no",
                _when(info.get("last_seen")),
                _acl(info),
            ]
        )
    return table(("POINT", "STATE", "PEER", "TRUSTED", "LAST SEEN", "BANNED"), rows)


def greylist_text(greylist: dict[str, Any]) -> str:
    ips = greylist.get("ips") or {}
    lines = [f"addresses: {', '.join(ips.get('ips') or []) or '(none)'}"]
    if ips.get("not_reliable_since"):
        lines.append(f"  (the list overflowed at {ips['not_reliable_since']}: some are missing)")
    lines.append(f"peers: {', '.join(greylist.get('peers') or []) or '(none)'}")
    return "\n".join(lines)


def _acl(info: Any) -> str:
    """The BANNED column: ``yes`` (banned), ``greylisted`` or ``no``."""
    state = info.get("acl")
    return {"banned": "yes", "greylisted": "greylisted"}.get(str(state), "no")


def stat_text(stat: dict[str, Any]) -> str:
    lines = []
    for key in ("total_sent", "total_recv"):
        lines.append(f"{key}: {_size(stat.get(key))} ({stat.get(key)} bytes)")
    for key in ("current_inflow", "current_outflow"):
        lines.append(f"{key}: {stat.get(key)} B/s")
    return "\n".join(lines)


class Output:
    """Tables and confirmations on a terminal, JSON when piped or asked for."""

    def __init__(self, stream: TextIO, force_json: bool) -> None:
        self.stream = stream
        self.json = force_json or not stream.isatty()

    def value(self, value: Any, human: Callable[[Any], str]) -> None:
        if self.json:
            self.raw(value)
        else:
            self.line(human(value))

    def raw(self, value: Any) -> None:
        if isinstance(value, Text):
            self.line(value.rstrip("\n"))
        else:
            self.line(json.dumps(value, indent=2 if self.stream.isatty() else None))

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


# -- commands ------------------------------------------------------------------------------


def _streaming(path: str) -> bool:
    """``/network/log`` and any path with ``?monitor`` (not ``=false``) stream."""
    bare, _, query = path.partition("?")
    if bare.strip("/") == "network/log":
        return True
    for item in query.split("&"):
        name, _, value = item.partition("=")
        if name == "monitor" and value.lower() not in ("false", "no", "0"):
            return True
    return False


async def cmd_rpc(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    method: str = args.method
    path: str = args.path
    body: Any = None
    if args.body is not None:
        if method in ("get", "delete"):
            raise AdminClientError(f"{method} takes no body")
        try:
            body = json.loads(args.body)
        except ValueError as error:
            raise AdminClientError(f"the body is not JSON: {error}") from None
    if method == "get" and _streaming(path):
        await client.stream(path, out.raw)
        return 0
    out.raw(await client.call(method, path, body))
    return 0


async def cmd_connections(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    out.value(await client.call("get", "network/connections"), connections_table)
    return 0


async def cmd_peers(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    path = "network/peers" + (f"?filter={quote(args.filter)}" if args.filter else "")
    out.value(await client.call("get", path), peers_table)
    return 0


async def cmd_points(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    path = "network/points" + (f"?filter={quote(args.filter)}" if args.filter else "")
    out.value(await client.call("get", path), points_table)
    return 0


async def cmd_stat(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    out.value(await client.call("get", "network/stat"), stat_text)
    return 0


ACL_WORDS = {"ban": ("ban", "banned"), "unban": ("open", "unbanned"), "trust": ("trust", "trusted")}


async def cmd_acl(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    acl, done = ACL_WORDS[args.command]
    path = target_path(args.target)
    try:
        info = await client.call("patch", path, {"acl": acl})
    except AdminClientError as error:
        if error.status != 404 or acl == "trust":
            raise
        # A point or a peer the node does not know: as Octez, the node bans
        # (or unbans) its address or peer id all the same and answers 404.
        # Whether it took is what .../banned says.
        try:
            banned = await client.call("get", path + "/banned")
        except AdminClientError:
            raise error from None
        if banned is not (acl == "ban"):
            raise
        what = "point; its address" if path.startswith("network/points/") else "peer; its id"
        out.value(
            banned, lambda _: f"{done} {args.target}: the node does not know this {what} is {done}"
        )
        return 0
    out.value(info, lambda _: f"{done} {args.target}")
    return 0


async def cmd_greylist(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    if args.action == "clear":
        result = await client.call("delete", "network/greylist")
        out.value(result if result is not None else {}, lambda _: "greylists cleared")
        return 0
    ips = await client.call("get", "network/greylist/ips")
    peers = await client.call("get", "network/greylist/peers")
    out.value({"ips": ips, "peers": peers}, greylist_text)
    return 0


async def cmd_kick(client: AdminClient, args: argparse.Namespace, out: Output) -> int:
    peer = peer_path(args.peer)
    try:
        await client.call("get", f"network/connections/{peer}")
    except AdminClientError as error:
        if error.status != 404:
            raise
        # Octez answers a DELETE for an unknown connection with success;
        # a person at a terminal wants to know
        out.value({}, lambda _: f"no connection with {peer}")
        return 0
    path = f"network/connections/{peer}" + ("?wait" if args.wait else "")
    result = await client.call("delete", path)
    out.value(result if result is not None else {}, lambda _: f"disconnected {peer}")
    return 0


Command = Callable[[AdminClient, argparse.Namespace, Output], Coroutine[Any, Any, int]]


async def execute(http: HTTPClient, args: argparse.Namespace, stream: TextIO) -> int:
    """Run the admin command ``args`` with ``http``; its exit status."""
    client = AdminClient(http, args.endpoint)
    command: Command = args.admin_command
    return await command(client, args, Output(stream, args.json))


def run(args: argparse.Namespace, stream: TextIO) -> int:
    """
    Run the admin command on the global reactor (the console script).  When
    the reactor is stopped from outside (Ctrl-C, SIGTERM) the command is
    cancelled, whatever it was waiting for (a stream, a slow answer), and
    :class:`KeyboardInterrupt` is raised once the reactor has stopped: no
    traceback of the connections it had to drop.
    """
    from twisted.internet import reactor
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=False)
    http = HTTPClient(Agent(reactor, pool=pool))
    outcome: list[Any] = []
    interrupted: list[bool] = []

    def start() -> None:
        done: Deferred[int] = Deferred.fromCoroutine(execute(http, args, stream))

        def finished(result: object) -> None:
            if interrupted:
                return None  # the command was cancelled by the shutdown: nothing to report
            outcome.append(result)
            reactor.stop()  # type: ignore[attr-defined]
            return None

        def shutting_down() -> None:
            if not outcome:
                interrupted.append(True)
                done.cancel()

        reactor.addSystemEventTrigger("before", "shutdown", shutting_down)  # type: ignore[attr-defined]
        done.addBoth(finished)

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if not outcome:
        raise KeyboardInterrupt  # the reactor was stopped by a signal
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    status: int = result
    return status


def add_commands(commands: Any, run_admin: Callable[[argparse.Namespace, TextIO], int]) -> None:
    """Add the admin subcommands to the ``tezos-p2p`` parser's subparsers."""

    def common(parser: argparse.ArgumentParser, command: Command) -> None:
        parser.add_argument(
            "--endpoint",
            default=default_endpoint(),
            help=(
                f"the node's admin API (default {DEFAULT_ENDPOINT}, "
                f"or ${ENDPOINT_VARIABLE} when set)"
            ),
        )
        parser.add_argument("--json", action="store_true", help="print JSON even on a terminal")
        parser.set_defaults(run=run_admin, admin_command=command)

    rpc = commands.add_parser(
        "rpc",
        help="call the admin API of a running node",
        description=(
            "Call one admin endpoint (the paths of Octez's /network RPCs, see "
            "docs/admin-api.md) and print the JSON answer.  A streaming GET "
            "(/network/log, ...?monitor) prints each value as it arrives."
        ),
    )
    rpc.add_argument("method", choices=HTTP_METHODS, help="HTTP method")
    rpc.add_argument(
        "path", help="path, e.g. /network/connections or /network/points?filter=running"
    )
    rpc.add_argument("body", nargs="?", default=None, help="JSON body (put and patch)")
    common(rpc, cmd_rpc)

    connections = commands.add_parser("connections", help="list a node's connections")
    common(connections, cmd_connections)
    peers = commands.add_parser("peers", help="list the peers a node knows")
    peers.add_argument(
        "--filter", default=None, help="only peers in this state (running, accepted, disconnected)"
    )
    common(peers, cmd_peers)
    points = commands.add_parser("points", help="list the points a node knows")
    points.add_argument(
        "--filter",
        default=None,
        help="only points in this state (requested, accepted, running, disconnected)",
    )
    common(points, cmd_points)
    stat = commands.add_parser("stat", help="a node's global bandwidth statistics")
    common(stat, cmd_stat)
    for word, what in (
        ("ban", "ban a point or a peer (closing its connection)"),
        ("unban", "lift a ban or trust: back to the default ACL"),
        ("trust", "trust a point or a peer (kept connected, never greylisted)"),
    ):
        acl = commands.add_parser(word, help=what)
        acl.add_argument("target", metavar="POINT|PEER", help="host:port, [v6]:port or id...")
        common(acl, cmd_acl)
    greylist = commands.add_parser(
        "greylist",
        help="show or clear the greylists",
        description=(
            "Show the greylisted addresses and peer ids, or clear both greylists "
            "(DELETE /network/greylist; manual bans are kept)."
        ),
    )
    greylist.add_argument(
        "action", nargs="?", choices=("show", "clear"), default="show", help="default: show"
    )
    common(greylist, cmd_greylist)
    kick = commands.add_parser("kick", help="close the connection with a peer")
    kick.add_argument("peer", metavar="PEER", help="peer id (id...)")
    kick.add_argument("--wait", action="store_true", help="answer once the connection is closed")
    common(kick, cmd_kick)


__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_VARIABLE",
    "AdminClient",
    "AdminClientError",
    "add_commands",
    "connections_table",
    "execute",
    "format_bytes",
    "peers_table",
    "points_table",
    "run",
    "table",
    "target_path",
]
