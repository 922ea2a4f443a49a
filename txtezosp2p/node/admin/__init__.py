# -*- test-case-name: tests.test_admin -*-
"""
The admin HTTP API: Octez's ``/network/*`` RPCs (behaviour.md section 13)
on ``twisted.web``, plus ``/version``, ``/network/version(s)`` and
``/metrics`` (Prometheus); docs/admin-api.md describes every endpoint.

Every answer, errors included, is JSON: unknown paths give 404, wrong verbs
405, malformed peer ids, points, query values or bodies 400, a P2P layer
still starting 503, and a 500 only for a bug of ours.  Errors are Octez's
error lists, ``[{"kind", "id", "msg"}]``.

One module per job:

* :mod:`.network`: the resource tree, one ``twisted.web`` resource per
  path, and the handlers;
* :mod:`.resources`: the base resource (JSON for every verb) and the one
  error boundary every answer goes through;
* :mod:`.params`: path segments, query parameters, peer ids and points;
* :mod:`.bodies`: request bodies, bounded while they arrive, and their JSON;
* :mod:`.errors`: the error answers;
* :mod:`.streams`: the event streams (chunked, bounded backlog);
* :mod:`.endpoints`: where the API may listen (loopback unless told);
* :mod:`.service`: :class:`AdminService`, the API on endpoint strings.

Why a ``twisted.web`` resource tree and not Klein: the API is two dozen
fixed paths, a third of them under a peer id or a point, which a tree of
resources expresses directly (a child per segment, made per request for
ids).  Klein would route the same paths with decorators but brings
Werkzeug's router, its URL decoding and its own error pages, which we would
have to override to keep every answer JSON and every decoding rule ours,
and three more dependencies for a node that only needs ``twisted.web``.
"""

from __future__ import annotations

from .bodies import MAX_BODY, AdminRequest
from .endpoints import check_admin_endpoint, is_local_endpoint
from .errors import APIError
from .network import AdminResource
from .service import AdminService
from .streams import STREAM_BACKLOG, EventStream

__all__ = [
    "MAX_BODY",
    "STREAM_BACKLOG",
    "APIError",
    "AdminRequest",
    "AdminResource",
    "AdminService",
    "EventStream",
    "check_admin_endpoint",
    "is_local_endpoint",
]
