# -*- test-case-name: tests.test_admin -*-
"""
The admin HTTP API: Octez's ``/network/*`` RPCs (behaviour.md section 13)
on ``twisted.web``, with the same paths, verbs, query flags and JSON shapes,
plus ``/version``, ``/network/version(s)`` and ``/metrics`` (Prometheus).

:class:`AdminResource` is one leaf resource that routes every request
itself, so that every answer, errors included, is JSON: unknown paths give
404, wrong verbs 405, malformed peer ids, points, query values or bodies
400, a P2P layer still starting 503, and nothing a client sends can cause a
500.  Errors are Octez's error lists, ``[{"kind", "id", "msg"}]``.

Streams (``/network/log``, ``.../log?monitor``) send one JSON value per
line over chunked encoding, as events happen.  A client that does not read
is given ``STREAM_BACKLOG`` events of slack and then cut off, so a stalled
reader never grows the node's memory.

:class:`AdminService` serves the resource on endpoint strings; it refuses
to bind anything but a loopback address or a UNIX socket unless told that
a public address is wanted (:func:`check_admin_endpoint`).
"""

from __future__ import annotations

import io
import ipaddress
import json
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IPushProducer
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from .. import _events as ev
from .._version import __version__
from ..p2p import P2P, FakedP2P
from ..welcome import EndpointListener, when_all_listening
from ..wire.errors import (
    Connected,
    IdentityCheckFailure,
    Myself,
    P2PError,
    P2PLayerDisabled,
    PeerBanned,
    PendingConnection,
    PointBanned,
    PrivateMode,
    RejectedNoCommonProtocol,
    TooManyConnections,
)
from ..wire.ids import PeerId, Point
from .metrics import node_registry, render

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ..connection import P2PConnection
    from ..pool_state import InfoEvent, PeerInfo, PointInfo

_log = ev.logger("p2p.admin")

#: Events a stream may hold for a client that does not read, before it is cut off.
STREAM_BACKLOG = 1000
#: Largest request body accepted (PATCH bodies are a few dozen bytes).
MAX_BODY = 64 * 1024
DEFAULT_CONNECT_TIMEOUT = 10.0
JSON = b"application/json"


class AdminRequest(Request):
    """
    A request whose body is kept up to ``MAX_BODY + 1`` bytes: what comes
    after is dropped as it arrives (the handler then answers 413), so a
    client cannot make the node buffer an unbounded body in memory or on disk.
    """

    def gotLength(self, length: int | None) -> None:
        self._kept = io.BytesIO()
        self.content = self._kept
        self._room = MAX_BODY + 1

    def handleContentChunk(self, data: bytes) -> None:
        if self._room > 0:
            kept = data[: self._room]
            self._kept.write(kept)
            self._room -= len(kept)


class APIError(Exception):
    """An answer other than 200: HTTP status, Octez-style error id, message."""

    def __init__(self, status: int, error_id: str, message: str, kind: str = "permanent") -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.kind = kind

    def to_json(self) -> list[dict[str, Any]]:
        return [{"kind": self.kind, "id": self.error_id, "msg": self.message}]


def _not_found(message: str) -> APIError:
    return APIError(404, "rpc.not_found", message)


def _bad(message: str) -> APIError:
    return APIError(400, "rpc.bad_request", message)


# -- parameters ----------------------------------------------------------------------------


def parse_peer_id(text: str) -> PeerId:
    try:
        return PeerId.from_b58check(text)
    except (P2PError, ValueError) as error:
        raise _bad(f"invalid peer id {text[:80]!r}: {error}") from None


def parse_point(text: str) -> Point:
    try:
        return Point.parse(text)
    except (P2PError, ValueError) as error:
        raise _bad(f"invalid point {text[:80]!r}: {error}") from None


def _arg(request: Request, name: str) -> list[str]:
    # Parsed from the URI: twisted.web drops a bare ``?monitor`` (no ``=``),
    # which is how Octez clients pass flags.
    _, _, query = (request.uri or b"").partition(b"?")
    values = parse_qs(query, keep_blank_values=True).get(name.encode(), [])
    try:
        return [value.decode("utf-8") for value in values]
    except UnicodeDecodeError:
        raise _bad(f"query parameter {name!r} is not UTF-8") from None


def flag(request: Request, name: str) -> bool:
    """An Octez query flag: ``?wait``, ``?wait=true`` or ``?wait=false``."""
    values = _arg(request, name)
    if not values:
        return False
    value = values[-1].lower()
    if value in ("", "true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise _bad(f"query flag {name!r} takes no value or true/false, not {value[:20]!r}")


def _body(request: Request) -> Any:
    content = request.content
    data = content.read(MAX_BODY + 1) if content is not None else b""
    if len(data) > MAX_BODY:
        raise APIError(413, "rpc.body_too_large", f"request bodies are limited to {MAX_BODY} bytes")
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise _bad(f"the body is not JSON: {error}") from None


def _acl_body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    body = _body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise _bad(
            f"unexpected field {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    acl = body.get("acl")
    if acl is not None and acl not in ("ban", "trust", "open"):
        raise _bad(f"acl must be one of ban, trust, open, not {str(acl)[:20]!r}")
    return body


# -- JSON of pool objects ----------------------------------------------------------------------


def connection_json(connection: P2PConnection) -> dict[str, Any]:
    return connection.info.to_json()


def point_json(info: PointInfo) -> dict[str, Any]:
    return info.to_json()


def peer_json(p2p: P2P, info: PeerInfo) -> dict[str, Any]:
    connection = p2p.find_connection_by_peer_id(info.peer_id)
    meta = p2p.pool.peer_meta
    return info.to_json(
        score=meta.score,
        metadata_json=meta.to_json,
        stat=connection.stat() if connection is not None else None,
        conn_metadata=(
            connection.info.to_json()["remote_metadata"] if connection is not None else None
        ),
    )


def _filters(request: Request, allowed: tuple[str, ...]) -> set[str]:
    wanted = set(_arg(request, "filter"))
    unknown = wanted - set(allowed)
    if unknown:
        raise _bad(f"unknown filter {sorted(unknown)[0][:20]!r} (allowed: {', '.join(allowed)})")
    return wanted


# -- streams -----------------------------------------------------------------------------------


@implementer(IPushProducer)
class EventStream:
    """
    Writes JSON values to a streaming response, one per line, holding at
    most ``STREAM_BACKLOG`` while the client does not read.
    """

    def __init__(self, request: Request, resource: AdminResource) -> None:
        self.request = request
        self.resource = resource
        self.paused = False
        self.pending: deque[bytes] = deque()
        self.finished = False
        self._unsubscribe: list[Callable[[], None]] = []
        request.setHeader(b"content-type", JSON)
        # headers now, as Octez does: a client waiting for its first event
        # must already see the 200
        request.write(b"")
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._gone)
        resource.streams.add(self)
        if request.method == b"HEAD":
            self.close()  # the headers were all it asked for

    def subscribe(self, unsubscribe: Callable[[], None]) -> None:
        if self.finished:
            unsubscribe()
            return
        self._unsubscribe.append(unsubscribe)

    def send(self, value: Any) -> None:
        if self.finished:
            return
        line = json.dumps(value).encode() + b"\n"
        if self.paused:
            if len(self.pending) >= STREAM_BACKLOG:
                _log.warn(
                    "admin client too slow: stream closed",
                    event="admin_stream_overflow",
                    path=self.request.path.decode("latin-1"),
                )
                self.close()
                return
            self.pending.append(line)
            return
        self.request.write(line)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self.pending and not self.paused and not self.finished:
            self.request.write(self.pending.popleft())

    def stopProducing(self) -> None:
        self._cleanup()

    def close(self) -> None:
        """End the response (the node stops, or the client is too slow)."""
        if self.finished:
            return
        self._cleanup()
        self.request.unregisterProducer()
        self.request.finish()

    def _gone(self, _: object) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.pending.clear()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self.resource.streams.discard(self)


# -- the resource ------------------------------------------------------------------------------

Handler = Callable[..., Any]


class AdminResource(Resource):
    """Every admin endpoint, routed by method and path segments."""

    isLeaf = True

    def __init__(
        self,
        source: Callable[[], P2P | FakedP2P | None],
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.registry = registry if registry is not None else node_registry(source)
        self.streams: set[EventStream] = set()
        # (method, pattern): a pattern is a tuple of literal segments and
        # "{name}" placeholders
        self.routes: list[tuple[bytes, tuple[str, ...], Handler]] = []
        route = self._route
        route(b"GET", "version", self.get_version)
        route(b"GET", "metrics", self.get_metrics)
        route(b"GET", "network/self", self.get_self)
        route(b"GET", "network/version", self.get_network_version)
        route(b"GET", "network/versions", self.get_network_versions)
        route(b"GET", "network/stat", self.get_stat)
        route(b"GET", "network/full_stat", self.get_full_stat)
        route(b"GET", "network/log", self.get_log)
        route(b"GET", "network/connections", self.get_connections)
        route(b"GET", "network/connections/{peer_id}", self.get_connection)
        route(b"DELETE", "network/connections/{peer_id}", self.delete_connection)
        route(b"GET", "network/points", self.get_points)
        route(b"GET", "network/points/{point}", self.get_point)
        route(b"PUT", "network/points/{point}", self.put_point)
        route(b"PATCH", "network/points/{point}", self.patch_point)
        route(b"GET", "network/points/{point}/log", self.get_point_log)
        route(b"GET", "network/points/{point}/banned", self.get_point_banned)
        route(b"GET", "network/peers", self.get_peers)
        route(b"GET", "network/peers/{peer_id}", self.get_peer)
        route(b"PATCH", "network/peers/{peer_id}", self.patch_peer)
        route(b"GET", "network/peers/{peer_id}/log", self.get_peer_log)
        route(b"GET", "network/peers/{peer_id}/banned", self.get_peer_banned)
        route(b"DELETE", "network/greylist", self.delete_greylist)
        route(b"GET", "network/greylist/ips", self.get_greylist_ips)
        route(b"GET", "network/greylist/peers", self.get_greylist_peers)

    def _route(self, method: bytes, path: str, handler: Handler) -> None:
        self.routes.append((method, tuple(path.split("/")), handler))

    def add_route(self, method: bytes, path: str, handler: Handler) -> None:
        """Serve ``handler`` too (another module's endpoints, such as the observer's)."""
        self._route(method, path, handler)

    # -- dispatch ------------------------------------------------------------------------

    def _match(self, segments: list[str]) -> Iterator[tuple[bytes, Handler, dict[str, str]]]:
        for method, pattern, handler in self.routes:
            if len(pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            for expected, actual in zip(pattern, segments, strict=True):
                if expected.startswith("{"):
                    params[expected[1:-1]] = actual
                elif expected != actual:
                    break
            else:
                yield method, handler, params

    def render(self, request: Request) -> bytes | int:
        try:
            raw = request.path.decode("ascii")
        except UnicodeDecodeError:
            return self._error(request, _bad("the path is not ASCII"))
        segments = [unquote(s) for s in raw.strip("/").split("/")] if raw.strip("/") else []
        matches = list(self._match(segments))
        if not matches:
            return self._error(request, _not_found(f"no service at {raw[:200]}"))
        method = request.method
        if method == b"HEAD":
            method = b"GET"
        for allowed, handler, params in matches:
            if allowed == method:
                return self._call(request, handler, params)
        allowed_methods = sorted({m.decode() for m, _, _ in matches})
        request.setHeader(b"allow", ", ".join(allowed_methods).encode())
        return self._error(
            request,
            APIError(405, "rpc.method_not_allowed", f"use {', '.join(allowed_methods)}"),
        )

    def _call(self, request: Request, handler: Handler, params: dict[str, str]) -> bytes | int:
        try:
            result = handler(request, **params)
        except APIError as error:
            return self._error(request, error)
        except Exception:
            _log.failure("admin request failed", event="admin_error", path=str(request.path))
            return self._error(request, APIError(500, "rpc.internal", "internal error"))
        if result is NOT_DONE_YET:
            done: int = NOT_DONE_YET
            return done
        if isinstance(result, Deferred):
            result.addCallbacks(
                lambda value: self._finish(request, value),
                lambda failure: self._finish_error(request, failure),
            )
            return NOT_DONE_YET
        if isinstance(result, _Raw):
            request.setHeader(b"content-type", result.content_type.encode())
            body: bytes = result.body
            return body
        return self._json(request, result)

    def _json(self, request: Request, value: Any, status: int = 200) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", JSON)
        return json.dumps(value).encode() + b"\n"

    def _error(self, request: Request, error: APIError) -> bytes:
        return self._json(request, error.to_json(), error.status)

    def _finish(self, request: Request, value: Any) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.write(self._json(request, value))
        request.finish()

    def _finish_error(self, request: Request, failure: Failure) -> None:
        error = failure.value
        if not isinstance(error, APIError):
            if not isinstance(error, P2PError):
                _log.failure("admin request failed", failure, event="admin_error")
            error = _api_error(error)
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.write(self._error(request, error))
        request.finish()

    def close_streams(self) -> None:
        for stream in list(self.streams):
            stream.close()

    def _p2p(self) -> P2P:
        p2p = self.source()
        if p2p is None:
            raise APIError(
                503, "node.p2p_layer_not_ready", "the P2P layer is starting", kind="temporary"
            )
        if isinstance(p2p, FakedP2P):
            # Octez's faked network (P2P disabled): the pool's endpoints fail
            # (behaviour.md section 13); the few exceptions check _disabled()
            raise APIError(503, P2PLayerDisabled.octez_id, "P2P layer disabled")
        return p2p

    def _disabled(self) -> bool:
        """Whether the node runs the faked network (no P2P layer)."""
        return isinstance(self.source(), FakedP2P)

    # -- node ----------------------------------------------------------------------------

    def get_version(self, request: Request) -> Any:
        p2p = self.source()
        major, minor = [*__version__.split("."), "0", "0"][:2]
        out: dict[str, Any] = {
            "version": {"major": int(major), "minor": int(minor), "additional_info": "release"},
            "commit_info": {"commit_hash": "", "commit_date": ""},
            "implementation": f"txtezosp2p {__version__}",
        }
        if isinstance(p2p, P2P):
            out["network_version"] = p2p.config.versions.announced.to_json()
        return out

    def get_metrics(self, request: Request) -> Any:
        body, content_type = render(self.registry)
        return _Raw(body, content_type)

    def get_self(self, request: Request) -> Any:
        return str(self._p2p().peer_id)

    def get_network_version(self, request: Request) -> Any:
        return self._p2p().config.versions.announced.to_json()

    def get_network_versions(self, request: Request) -> Any:
        versions = self._p2p().config.versions
        from ..wire.encoding import NetworkVersion

        return [
            NetworkVersion(versions.chain_name, ddb, p2p_version).to_json()
            for ddb in sorted(versions.distributed_db_versions, reverse=True)
            for p2p_version in sorted(versions.p2p_versions, reverse=True)
        ]

    def get_stat(self, request: Request) -> Any:
        return self._p2p().global_stat().to_json()

    def get_full_stat(self, request: Request) -> Any:
        p2p = self._p2p()
        connections = p2p.connections()
        return {
            "stat": p2p.global_stat().to_json(),
            "incoming_connections": [connection_json(c) for c in connections if c.incoming],
            "outgoing_connections": [connection_json(c) for c in connections if not c.incoming],
            "peers": [[str(i.peer_id), peer_json(p2p, i)] for i in p2p.pool.peers.values()],
            "points": [[p.to_text(), point_json(i)] for p, i in p2p.pool.points.items()],
        }

    def get_log(self, request: Request) -> Any:
        source = self.source()
        # the faked network's stream stays open and silent, as Octez's does
        p2p = source if isinstance(source, FakedP2P) else self._p2p()
        stream = EventStream(request, self)
        stream.subscribe(p2p.watch(lambda event: stream.send(event.to_json())))
        return NOT_DONE_YET

    # -- connections ---------------------------------------------------------------------

    def get_connections(self, request: Request) -> Any:
        return [connection_json(c) for c in self._p2p().connections()]

    def get_connection(self, request: Request, peer_id: str) -> Any:
        if self._disabled():
            raise _not_found(f"no running connection with {peer_id}")
        p2p = self._p2p()
        connection = p2p.find_connection_by_peer_id(parse_peer_id(peer_id))
        if connection is None:
            raise _not_found(f"no running connection with {peer_id}")
        return connection_json(connection)

    def delete_connection(self, request: Request, peer_id: str) -> Any:
        if self._disabled():
            parse_peer_id(peer_id)
            return {}
        p2p = self._p2p()
        wait = flag(request, "wait")
        connection = p2p.find_connection_by_peer_id(parse_peer_id(peer_id))
        if connection is None:
            return {}
        closing = p2p.disconnect(connection, wait=wait, reason="explicit RPC")
        return closing.addBoth(lambda _: {})

    # -- points --------------------------------------------------------------------------

    def get_points(self, request: Request) -> Any:
        p2p = self._p2p()
        wanted = _filters(request, ("requested", "accepted", "running", "disconnected"))
        return [
            [point.to_text(), point_json(info)]
            for point, info in p2p.pool.points.items()
            if not wanted or info.state.kind in wanted
        ]

    def _point_info(self, p2p: P2P, text: str) -> PointInfo:
        point = parse_point(text)
        info = p2p.pool.points.get(point)
        if info is None:
            raise _not_found(f"unknown point {point.to_text()}")
        return info

    def get_point(self, request: Request, point: str) -> Any:
        return point_json(self._point_info(self._p2p(), point))

    def put_point(self, request: Request, point: str) -> Any:
        p2p = self._p2p()
        target = parse_point(point)
        timeout = DEFAULT_CONNECT_TIMEOUT
        values = _arg(request, "timeout")
        if values:
            try:
                timeout = float(values[-1])
            except ValueError:
                raise _bad(
                    f"timeout must be a number of seconds, not {values[-1][:20]!r}"
                ) from None
            if not 0 < timeout <= 3600:
                raise _bad("timeout must be within (0, 3600] seconds")
        body = _body(request)
        if body not in (None, {}):
            raise _bad("the body of PUT /network/points/<point> is {}")
        return p2p.connect(target, timeout).addCallback(lambda _: {})

    def patch_point(self, request: Request, point: str) -> Any:
        if self._disabled():
            raise _not_found(f"unknown point {point} (P2P layer disabled)")
        p2p = self._p2p()
        target = parse_point(point)
        body = _acl_body(request, frozenset({"acl", "peer_id"}))
        expected = body.get("peer_id")
        if expected is not None and not isinstance(expected, str):
            raise _bad("peer_id must be a string")
        expected_id = parse_peer_id(expected) if expected is not None else None
        acl = body.get("acl")
        if target not in p2p.pool.points and acl != "trust":
            raise _not_found(f"unknown point {target.to_text()}")
        if expected_id is not None:
            p2p.pool.register_point(target, expected_peer_id=expected_id)
        if acl == "ban":
            p2p.ban_point(target)
        elif acl == "trust":
            p2p.trust_point(target)
        elif acl == "open":
            p2p.open_point(target)
        return point_json(p2p.pool.points[target])

    def get_point_log(self, request: Request, point: str) -> Any:
        info = self._p2p().pool.points.get(parse_point(point))
        return self._info_log(request, info, lambda event: event.point_json())

    def get_point_banned(self, request: Request, point: str) -> Any:
        return self._p2p().pool.point_banned_for_rpc(parse_point(point))

    # -- peers ---------------------------------------------------------------------------

    def get_peers(self, request: Request) -> Any:
        p2p = self._p2p()
        wanted = _filters(request, ("accepted", "running", "disconnected"))
        return [
            [str(peer_id), peer_json(p2p, info)]
            for peer_id, info in p2p.pool.peers.items()
            if not wanted or info.state.kind in wanted
        ]

    def get_peer(self, request: Request, peer_id: str) -> Any:
        p2p = self._p2p()
        info = p2p.pool.peers.get(parse_peer_id(peer_id))
        if info is None:
            raise _not_found(f"unknown peer {peer_id}")
        return peer_json(p2p, info)

    def patch_peer(self, request: Request, peer_id: str) -> Any:
        if self._disabled():
            raise _not_found(f"unknown peer {peer_id} (P2P layer disabled)")
        p2p = self._p2p()
        target = parse_peer_id(peer_id)
        body = _acl_body(request, frozenset({"acl"}))
        acl = body.get("acl")
        if target not in p2p.pool.peers and acl != "trust":
            raise _not_found(f"unknown peer {peer_id}")
        if acl == "ban":
            p2p.ban_peer(target)
        elif acl == "trust":
            p2p.trust_peer(target)
        elif acl == "open":
            p2p.open_peer(target)
        return peer_json(p2p, p2p.pool.peers[target])

    def get_peer_log(self, request: Request, peer_id: str) -> Any:
        info = self._p2p().pool.peers.get(parse_peer_id(peer_id))
        return self._info_log(request, info, lambda event: event.peer_json())

    def get_peer_banned(self, request: Request, peer_id: str) -> Any:
        return self._p2p().pool.peer_banned_for_rpc(parse_peer_id(peer_id))

    def _info_log(
        self,
        request: Request,
        info: PointInfo | PeerInfo | None,
        to_json: Callable[[InfoEvent], Any],
    ) -> Any:
        """A point's or peer's events; with ``?monitor``, then each new one (as a list)."""
        monitor = flag(request, "monitor")
        history = [to_json(event) for event in info.events] if info is not None else []
        if not monitor or info is None:
            return history  # an unknown point or peer: [] even with monitor (as Octez)
        return self._monitor(request, history, info.watchers, to_json)

    def _monitor(
        self,
        request: Request,
        history: list[Any],
        watchers: list[Callable[[InfoEvent], None]],
        to_json: Callable[[InfoEvent], Any],
    ) -> Any:
        stream = EventStream(request, self)
        stream.send(history)

        def watcher(event: InfoEvent) -> None:
            stream.send([to_json(event)])

        def forget() -> None:
            if watcher in watchers:
                watchers.remove(watcher)

        watchers.append(watcher)
        stream.subscribe(forget)
        return NOT_DONE_YET

    # -- greylist ------------------------------------------------------------------------

    def delete_greylist(self, request: Request) -> Any:
        self._p2p().acl.clear_greylists()
        return {}

    def get_greylist_ips(self, request: Request) -> Any:
        return self._p2p().acl.greylist_ips_json()

    def get_greylist_peers(self, request: Request) -> Any:
        return [str(peer_id) for peer_id in self._p2p().acl.greylisted_peers()]


class _Raw:
    """A non-JSON body (the metrics)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type


def _api_error(error: BaseException | None) -> APIError:
    """The answer for an error of the P2P layer (``PUT /network/points/<p>``)."""
    octez_id = getattr(error, "octez_id", None) or "node.p2p.error"
    message = str(error) or type(error).__name__
    # 409: our own state forbids the dial (a ban, a connection already
    # there or under way, private mode, our own address)
    if isinstance(
        error, PointBanned | PeerBanned | Connected | PendingConnection | PrivateMode | Myself
    ):
        return APIError(409, octez_id, message)
    if isinstance(error, TooManyConnections):
        return APIError(503, octez_id, message, kind="temporary")
    # 502: the remote end failed or refused; retrying may help unless it is
    # not who it should be, or does not speak our protocol
    permanent = isinstance(error, IdentityCheckFailure | RejectedNoCommonProtocol)
    return APIError(502, octez_id, message, kind="permanent" if permanent else "temporary")


# -- binding -----------------------------------------------------------------------------------


def _split_endpoint(description: str) -> list[str]:
    """Split an endpoint string on unescaped colons."""
    parts = [""]
    escaped = False
    for char in description:
        if escaped:
            parts[-1] += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("")
        else:
            parts[-1] += char
    return parts


def is_local_endpoint(description: str) -> bool:
    """Whether an endpoint string binds only a loopback address or a UNIX socket."""
    parts = _split_endpoint(description)
    kind = parts[0].lower()
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    interface = next((p.split("=", 1)[1] for p in parts[1:] if p.startswith("interface=")), "")
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def check_admin_endpoint(description: str, allow_public: bool = False) -> None:
    """Refuse an endpoint that is not local, unless ``allow_public``."""
    if not allow_public and not is_local_endpoint(description):
        raise ValueError(
            f"the admin API would be reachable from the network on {description!r}: "
            "bind a loopback address (tcp:8732:interface=127.0.0.1) or a UNIX socket, "
            "or ask for a public address explicitly"
        )


class _AdminListener(EndpointListener):
    def log_listening(self, port: IListeningPort) -> None:
        _log.info("admin API on {address}", event="admin_listening", address=str(port.getHost()))

    def log_failure(self, failure: Failure) -> None:
        # the reason only: whoever waits on when_listening() gets the failure
        _log.error(
            "cannot serve the admin API on {description}: {reason}",
            event="admin_error",
            description=self.description,
            reason=failure.getErrorMessage(),
        )


class AdminService(MultiService):
    """Serves an :class:`AdminResource` on endpoint strings."""

    def __init__(
        self,
        reactor: Any,
        listen: tuple[str, ...],
        source: Callable[[], P2P | FakedP2P | None],
        *,
        allow_public: bool = False,
    ) -> None:
        super().__init__()
        for description in listen:
            check_admin_endpoint(description, allow_public)
        self.resource = AdminResource(source)
        self.site = Site(self.resource, requestFactory=AdminRequest)
        self.site.noisy = False
        self.listeners = [
            _AdminListener(serverFromString(reactor, d), self.site, d) for d in listen
        ]
        for listener in self.listeners:
            listener.setServiceParent(self)

    def when_listening(self) -> Deferred[list[IListeningPort]]:
        """Fires with the listening ports once all are open (fails if one cannot open)."""
        return when_all_listening(self.listeners, "admin service")

    @property
    def ports(self) -> list[IListeningPort]:
        return [listener.port for listener in self.listeners if listener.port is not None]

    def stopService(self) -> Deferred[None]:
        self.resource.close_streams()
        return maybeDeferred(super().stopService)  # type: ignore[arg-type]


__all__ = [
    "APIError",
    "AdminResource",
    "AdminService",
    "EventStream",
    "check_admin_endpoint",
    "is_local_endpoint",
]
