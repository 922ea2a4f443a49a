# -*- test-case-name: tests.test_admin -*-
"""
The admin resource tree: ``/version``, ``/metrics`` and Octez's
``/network/*`` RPCs (behaviour.md section 13), with the same paths, verbs,
query flags and JSON shapes::

    AdminResource                    /
      version, metrics               /version, /metrics
      network                        /network (nothing served)
        self, version, versions, stat, full_stat, log
        connections/<peer_id>        GET, DELETE
        points/<point>               GET, PUT, PATCH; log, banned
        peers/<peer_id>              GET, PATCH; log, banned
        greylist                     DELETE; ips, peers

Children named by a peer id or a point are made per request and parse
their segment only when a handler runs, so that a wrong verb is a 405
before a malformed id is a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ..._version import __version__
from ...p2p import P2P, FakedP2P
from ...wire.errors import DisconnectReason, P2PLayerDisabled
from ..metrics import node_registry, render
from .bodies import acl_body, json_body
from .errors import APIError, bad_request, not_found
from .params import arg, check_request, filters, flag, parse_peer_id, parse_point
from .resources import APIResource, ErrorResource, Handler, Raw, mount
from .streams import EventStream

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ...connection import P2PConnection
    from ...pool_state import InfoEvent, PeerInfo, PointInfo

DEFAULT_CONNECT_TIMEOUT = 10.0


# -- JSON of pool objects ----------------------------------------------------------------------


def connection_json(connection: P2PConnection) -> dict[str, Any]:
    return connection.info.to_json()


def point_json(p2p: P2P, info: PointInfo) -> dict[str, Any]:
    """
    Octez's point info, plus ``"acl": "banned"`` or ``"greylisted"`` (our
    extension) when the point's address is in the IP blacklist or greylist.
    """
    out = info.to_json()
    acl = p2p.acl
    address = info.point.addr
    if acl.blacklisted_addr(address):
        out["acl"] = "banned"
    elif acl.greylisted_addr(address):
        out["acl"] = "greylisted"
    return out


def peer_json(p2p: P2P, info: PeerInfo) -> dict[str, Any]:
    """Octez's peer info, plus ``"acl"`` as for points, for the peer id."""
    connection = p2p.find_connection_by_peer_id(info.peer_id)
    meta = p2p.pool.peer_meta
    out = info.to_json(
        score=meta.score,
        metadata_json=meta.to_json,
        stat=connection.stat() if connection is not None else None,
        conn_metadata=(
            connection.info.to_json()["remote_metadata"] if connection is not None else None
        ),
    )
    if p2p.acl.blacklisted_peer(info.peer_id):
        out["acl"] = "banned"
    elif p2p.acl.greylisted_peer(info.peer_id):
        out["acl"] = "greylisted"
    return out


# -- the root ----------------------------------------------------------------------------------


class AdminResource(APIResource):
    """The root of the admin API: every endpoint below it, every answer JSON."""

    def __init__(
        self,
        source: Callable[[], P2P | FakedP2P | None],
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.registry = registry if registry is not None else node_registry(source)
        #: The event streams open now.
        self.streams: set[EventStream] = set()
        self.putChild(b"version", Version(self))
        self.putChild(b"metrics", Metrics(self))
        self.putChild(b"network", Network(self))

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        # Twisted's traversal hands over the first segment, percent-decoded
        # leniently; the root decodes the whole path and the query once, by
        # the API's rules (a 400 otherwise), and lets the traversal go on
        # with the segments it found.
        try:
            segments = check_request(request)
        except APIError as error:
            request.postpath = []
            return ErrorResource(error)
        request.postpath = [segment.encode() for segment in segments[1:]]
        if not segments:
            return self
        child: Resource = super().getChildWithDefault(segments[0].encode(), request)
        return child

    def add_route(self, method: bytes, path: str, handler: Handler) -> None:
        """Serve ``handler`` too (another module's endpoints, such as the observer's)."""
        mount(self, method, path, handler)

    def close_streams(self) -> None:
        for stream in list(self.streams):
            stream.close()

    def p2p(self) -> P2P:
        """The running P2P layer, or a 503."""
        p2p = self.source()
        if p2p is None:
            raise APIError(
                503, "node.p2p_layer_not_ready", "the P2P layer is starting", kind="temporary"
            )
        if isinstance(p2p, FakedP2P):
            # Octez's faked network (P2P disabled): the pool's endpoints fail
            # (behaviour.md section 13); the few exceptions check disabled()
            raise APIError(503, P2PLayerDisabled.octez_id, "P2P layer disabled")
        return p2p

    def disabled(self) -> bool:
        """Whether the node runs the faked network (no P2P layer)."""
        return isinstance(self.source(), FakedP2P)

    def stream(self, request: Request) -> EventStream:
        return EventStream(request, self.streams)


class _Node(APIResource):
    """A resource of the tree below the root."""

    def __init__(self, api: AdminResource) -> None:
        super().__init__()
        self.api = api


class Version(_Node):
    def get(self, request: Request) -> Any:
        p2p = self.api.source()
        major, minor = [*__version__.split("."), "0", "0"][:2]
        out: dict[str, Any] = {
            "version": {"major": int(major), "minor": int(minor), "additional_info": "release"},
            "commit_info": {"commit_hash": "", "commit_date": ""},
            "implementation": f"txtezosp2p {__version__}",
        }
        if isinstance(p2p, P2P):
            out["network_version"] = p2p.config.versions.announced.to_json()
        return out


class Metrics(_Node):
    def get(self, request: Request) -> Any:
        body, content_type = render(self.api.registry)
        return Raw(body, content_type)


# -- /network ----------------------------------------------------------------------------------


class Network(_Node):
    """``/network``: serves nothing itself."""

    def __init__(self, api: AdminResource) -> None:
        super().__init__(api)
        for name, child in (
            (b"self", Self(api)),
            (b"version", NetworkVersion(api)),
            (b"versions", NetworkVersions(api)),
            (b"stat", Stat(api)),
            (b"full_stat", FullStat(api)),
            (b"log", Log(api)),
            (b"connections", Connections(api)),
            (b"points", Points(api)),
            (b"peers", Peers(api)),
            (b"greylist", Greylist(api)),
        ):
            self.putChild(name, child)


class Self(_Node):
    def get(self, request: Request) -> Any:
        return str(self.api.p2p().peer_id)


class NetworkVersion(_Node):
    def get(self, request: Request) -> Any:
        return self.api.p2p().config.versions.announced.to_json()


class NetworkVersions(_Node):
    def get(self, request: Request) -> Any:
        from ...wire.encoding import NetworkVersion as Announced

        versions = self.api.p2p().config.versions
        return [
            Announced(versions.chain_name, ddb, p2p_version).to_json()
            for ddb in sorted(versions.distributed_db_versions, reverse=True)
            for p2p_version in sorted(versions.p2p_versions, reverse=True)
        ]


class Stat(_Node):
    def get(self, request: Request) -> Any:
        return self.api.p2p().global_stat().to_json()


class FullStat(_Node):
    def get(self, request: Request) -> Any:
        p2p = self.api.p2p()
        connections = p2p.connections()
        return {
            "stat": p2p.global_stat().to_json(),
            "incoming_connections": [connection_json(c) for c in connections if c.incoming],
            "outgoing_connections": [connection_json(c) for c in connections if not c.incoming],
            "peers": [[str(i.peer_id), peer_json(p2p, i)] for i in p2p.pool.peers.values()],
            "points": [[p.to_text(), point_json(p2p, i)] for p, i in p2p.pool.points.items()],
        }


class Log(_Node):
    def get(self, request: Request) -> Any:
        source = self.api.source()
        # the faked network's stream stays open and silent, as Octez's does
        p2p = source if isinstance(source, FakedP2P) else self.api.p2p()
        stream = self.api.stream(request)
        stream.subscribe(p2p.watch(lambda event: stream.send(event.to_json())))
        return NOT_DONE_YET


# -- connections -------------------------------------------------------------------------------


class Connections(_Node):
    def get(self, request: Request) -> Any:
        return [connection_json(c) for c in self.api.p2p().connections()]

    def getChild(self, path: bytes, request: Request) -> Resource:
        return Connection(self.api, path.decode("utf-8", "replace"))


class Connection(_Node):
    def __init__(self, api: AdminResource, peer_id: str) -> None:
        super().__init__(api)
        self.peer_id = peer_id

    def get(self, request: Request) -> Any:
        if self.api.disabled():
            raise not_found(f"no running connection with {self.peer_id}")
        p2p = self.api.p2p()
        connection = p2p.find_connection_by_peer_id(parse_peer_id(self.peer_id))
        if connection is None:
            raise not_found(f"no running connection with {self.peer_id}")
        return connection_json(connection)

    def delete(self, request: Request) -> Any:
        if self.api.disabled():
            parse_peer_id(self.peer_id)
            return {}
        p2p = self.api.p2p()
        wait = flag(request, "wait")
        connection = p2p.find_connection_by_peer_id(parse_peer_id(self.peer_id))
        if connection is None:
            return {}
        closing = p2p.disconnect(connection, wait=wait, reason=DisconnectReason.EXPLICIT_RPC)
        return closing.addBoth(lambda _: {})


# -- points ------------------------------------------------------------------------------------


class Points(_Node):
    def get(self, request: Request) -> Any:
        p2p = self.api.p2p()
        wanted = filters(request, ("requested", "accepted", "running", "disconnected"))
        return [
            [point.to_text(), point_json(p2p, info)]
            for point, info in p2p.pool.points.items()
            if not wanted or info.state.kind in wanted
        ]

    def getChild(self, path: bytes, request: Request) -> Resource:
        return PointResource(self.api, path.decode("utf-8", "replace"))


class PointResource(_Node):
    """``/network/points/<point>``."""

    def __init__(self, api: AdminResource, point: str) -> None:
        super().__init__(api)
        self.point = point
        self.putChild(b"log", PointLog(api, point))
        self.putChild(b"banned", PointBanned(api, point))

    def get(self, request: Request) -> Any:
        p2p = self.api.p2p()
        point = parse_point(self.point)
        info = p2p.pool.points.get(point)
        if info is None:
            raise not_found(f"unknown point {point.to_text()}")
        return point_json(p2p, info)

    def put(self, request: Request) -> Any:
        p2p = self.api.p2p()
        target = parse_point(self.point)
        timeout = DEFAULT_CONNECT_TIMEOUT
        values = arg(request, "timeout")
        if values:
            try:
                timeout = float(values[-1])
            except ValueError:
                raise bad_request(
                    f"timeout must be a number of seconds, not {values[-1][:20]!r}"
                ) from None
            if not 0 < timeout <= 3600:
                raise bad_request("timeout must be within (0, 3600] seconds")
        body = json_body(request)
        if body not in (None, {}):
            raise bad_request("the body of PUT /network/points/<point> is {}")
        return p2p.connect(target, timeout).addCallback(lambda _: {})

    def patch(self, request: Request) -> Any:
        if self.api.disabled():
            raise not_found(f"unknown point {self.point} (P2P layer disabled)")
        p2p = self.api.p2p()
        target = parse_point(self.point)
        body = acl_body(request, frozenset({"acl", "peer_id"}))
        expected = body.get("peer_id")
        if expected is not None and not isinstance(expected, str):
            raise bad_request("peer_id must be a string")
        expected_id = parse_peer_id(expected) if expected is not None else None
        acl = body.get("acl")
        # As Octez (behaviour.md section 6.4): a ban or an unban applies to
        # the point's address whether the point is known or not, and the
        # answer is then a 404; trust adds the point.
        if expected_id is not None and (target in p2p.pool.points or acl == "trust"):
            p2p.pool.register_point(target, expected_peer_id=expected_id)
        if acl == "ban":
            p2p.ban_point(target)
        elif acl == "trust":
            p2p.trust_point(target)
        elif acl == "open":
            p2p.open_point(target)
        info = p2p.pool.points.get(target)
        if info is None:
            done = {"ban": "; its address is banned", "open": "; its address is unbanned"}
            raise not_found(f"unknown point {target.to_text()}{done.get(str(acl), '')}")
        return point_json(p2p, info)


class PointLog(_Node):
    def __init__(self, api: AdminResource, point: str) -> None:
        super().__init__(api)
        self.point = point

    def get(self, request: Request) -> Any:
        info = self.api.p2p().pool.points.get(parse_point(self.point))
        return _info_log(self.api, request, info, lambda event: event.point_json())


class PointBanned(_Node):
    def __init__(self, api: AdminResource, point: str) -> None:
        super().__init__(api)
        self.point = point

    def get(self, request: Request) -> Any:
        return self.api.p2p().pool.point_banned_for_rpc(parse_point(self.point))


# -- peers -------------------------------------------------------------------------------------


class Peers(_Node):
    def get(self, request: Request) -> Any:
        p2p = self.api.p2p()
        wanted = filters(request, ("accepted", "running", "disconnected"))
        return [
            [str(peer_id), peer_json(p2p, info)]
            for peer_id, info in p2p.pool.peers.items()
            if not wanted or info.state.kind in wanted
        ]

    def getChild(self, path: bytes, request: Request) -> Resource:
        return Peer(self.api, path.decode("utf-8", "replace"))


class Peer(_Node):
    """``/network/peers/<peer_id>``."""

    def __init__(self, api: AdminResource, peer_id: str) -> None:
        super().__init__(api)
        self.peer_id = peer_id
        self.putChild(b"log", PeerLog(api, peer_id))
        self.putChild(b"banned", PeerBanned(api, peer_id))

    def get(self, request: Request) -> Any:
        p2p = self.api.p2p()
        info = p2p.pool.peers.get(parse_peer_id(self.peer_id))
        if info is None:
            raise not_found(f"unknown peer {self.peer_id}")
        return peer_json(p2p, info)

    def patch(self, request: Request) -> Any:
        if self.api.disabled():
            raise not_found(f"unknown peer {self.peer_id} (P2P layer disabled)")
        p2p = self.api.p2p()
        target = parse_peer_id(self.peer_id)
        body = acl_body(request, frozenset({"acl"}))
        acl = body.get("acl")
        # as for points: ban and unban apply to an unknown peer id (then 404)
        if acl == "ban":
            p2p.ban_peer(target)
        elif acl == "trust":
            p2p.trust_peer(target)
        elif acl == "open":
            p2p.open_peer(target)
        info = p2p.pool.peers.get(target)
        if info is None:
            done = {"ban": "; it is banned", "open": "; it is unbanned"}
            raise not_found(f"unknown peer {self.peer_id}{done.get(str(acl), '')}")
        return peer_json(p2p, info)


class PeerLog(_Node):
    def __init__(self, api: AdminResource, peer_id: str) -> None:
        super().__init__(api)
        self.peer_id = peer_id

    def get(self, request: Request) -> Any:
        info = self.api.p2p().pool.peers.get(parse_peer_id(self.peer_id))
        return _info_log(self.api, request, info, lambda event: event.peer_json())


class PeerBanned(_Node):
    def __init__(self, api: AdminResource, peer_id: str) -> None:
        super().__init__(api)
        self.peer_id = peer_id

    def get(self, request: Request) -> Any:
        return self.api.p2p().pool.peer_banned_for_rpc(parse_peer_id(self.peer_id))


def _info_log(
    api: AdminResource,
    request: Request,
    info: PointInfo | PeerInfo | None,
    to_json: Callable[[InfoEvent], Any],
) -> Any:
    """A point's or peer's events; with ``?monitor``, then each new one (as a list)."""
    monitor = flag(request, "monitor")
    history = [to_json(event) for event in info.events] if info is not None else []
    if not monitor or info is None:
        return history  # an unknown point or peer: [] even with monitor (as Octez)
    stream = api.stream(request)
    stream.send(history)
    watchers = info.watchers

    def watcher(event: InfoEvent) -> None:
        stream.send([to_json(event)])

    def forget() -> None:
        if watcher in watchers:
            watchers.remove(watcher)

    watchers.append(watcher)
    stream.subscribe(forget)
    return NOT_DONE_YET


# -- greylist ----------------------------------------------------------------------------------


class Greylist(_Node):
    def __init__(self, api: AdminResource) -> None:
        super().__init__(api)
        self.putChild(b"ips", GreylistIPs(api))
        self.putChild(b"peers", GreylistPeers(api))

    def delete(self, request: Request) -> Any:
        self.api.p2p().acl.clear_greylists()
        return {}


class GreylistIPs(_Node):
    def get(self, request: Request) -> Any:
        return self.api.p2p().acl.greylist_ips_json()


class GreylistPeers(_Node):
    def get(self, request: Request) -> Any:
        return [str(peer_id) for peer_id in self.api.p2p().acl.greylisted_peers()]


__all__ = ["AdminResource", "connection_json", "peer_json", "point_json"]
