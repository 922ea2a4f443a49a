# -*- test-case-name: tests.test_observer -*-
"""
The observer's admin endpoints, served by the admin API when the node
observes (``--observe``):

* ``GET /observer``: the chain observed, the sizes of the windows, counters;
* ``GET /observer/heads``: the last head each peer announced, highest first;
* ``GET /observer/blocks?limit=N``: the blocks most recently seen first
  (50 by default, at most 1000);
* ``GET /observer/propagation?hash=H``: when the block (``B…``) or
  operation (``o…``) ``H`` was first seen, by which peer, and how much
  later each other peer announced it.

Answers are JSON; errors are the admin API's (400 for a missing or
malformed hash, 404 for a hash not in the window).  The metrics are added
to the node's registry by :func:`txtezosp2p.node.metrics.register_observer`.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from ..observer import Observer
from .admin import AdminResource, APIError

DEFAULT_BLOCKS = 50
MAX_BLOCKS = 1000


def _query(request: Request, name: str) -> str | None:
    values = (request.args or {}).get(name.encode())
    if not values:
        return None
    try:
        return bytes(values[-1]).decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(400, "rpc.bad_query", f"{name} is not UTF-8") from None


class ObserverEndpoints:
    """The handlers, bound to one observer."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def summary(self, request: Request) -> Any:
        observer = self.observer
        config = observer.config
        return {
            "chain_id": None if observer.chain_id is None else str(observer.chain_id),
            "sizes": observer.sizes(),
            "bounds": {
                "window": config.window,
                "max_blocks": config.max_blocks,
                "max_operations": config.max_operations,
                "max_peers": config.max_peers,
                "max_announcements": config.max_announcements,
            },
            "counters": dict(observer.counters),
        }

    def heads(self, request: Request) -> Any:
        return self.observer.heads_json()

    def blocks(self, request: Request) -> Any:
        text = _query(request, "limit")
        limit = DEFAULT_BLOCKS
        if text is not None:
            try:
                limit = int(text)
            except ValueError:
                raise APIError(400, "rpc.bad_query", "limit is not an integer") from None
            if not 1 <= limit <= MAX_BLOCKS:
                raise APIError(400, "rpc.bad_query", f"limit is within [1, {MAX_BLOCKS}]")
        return [sighting.to_json() for sighting in self.observer.recent_blocks(limit)]

    def propagation(self, request: Request) -> Any:
        text = _query(request, "hash")
        if not text:
            raise APIError(400, "rpc.bad_query", "give ?hash= a block or operation hash")
        try:
            sighting = self.observer.propagation(text)
        except ValueError as error:
            raise APIError(400, "rpc.bad_query", str(error)) from None
        if sighting is None:
            raise APIError(404, "observer.unknown_hash", f"{text} not seen in the window")
        return sighting.to_json()


def mount_observer(resource: AdminResource, observer: Observer) -> ObserverEndpoints:
    """Serve the observer's endpoints on an admin resource."""
    endpoints = ObserverEndpoints(observer)
    resource.add_route(b"GET", "observer", endpoints.summary)
    resource.add_route(b"GET", "observer/heads", endpoints.heads)
    resource.add_route(b"GET", "observer/blocks", endpoints.blocks)
    resource.add_route(b"GET", "observer/propagation", endpoints.propagation)
    return endpoints


__all__ = ["ObserverEndpoints", "mount_observer"]
