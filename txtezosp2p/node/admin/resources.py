"""
The building blocks of the admin resource tree: :class:`APIResource`, a
``twisted.web`` resource that answers JSON for every method, and the one
error boundary every answer goes through (:func:`respond`).

A resource defines a method per HTTP verb it serves (``get``, ``put``,
``patch``, ``delete``; ``HEAD`` is ``get`` without the body).  Another verb
is a 405 with an ``Allow`` header; a resource that serves none (``/network``)
and an unknown child are 404s.  A handler returns a JSON value, a
:class:`Raw` body, a ``Deferred`` of either, or ``NOT_DONE_YET`` when it
streams.  It fails with an :class:`~.errors.APIError` for an answer other
than 200; a failure of the P2P layer (a dial that failed) becomes a
4xx/5xx by its cause (:func:`~.errors.dial_error`).  Anything else is a bug
of ours: logged with its traceback and answered 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ... import _events as ev
from ...wire.errors import P2PError
from .errors import JSON, APIError, dial_error, internal_error, not_found
from .params import printable_path

_log = ev.logger("p2p.admin")

#: The verbs a resource may serve, and the method of the resource for each.
VERBS = {b"GET": "get", b"PUT": "put", b"PATCH": "patch", b"DELETE": "delete"}


class Raw:
    """A non-JSON body (the metrics)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type


def _json(request: Request, value: Any, status: int = 200) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", JSON)
    return json.dumps(value).encode() + b"\n"


def _error(request: Request, error: APIError) -> bytes:
    return _json(request, error.to_json(), error.status)


def _as_api_error(request: Request, failure: Failure) -> APIError:
    """The answer for a failed handler; a bug is logged (the only way to a 500)."""
    error = failure.value
    if isinstance(error, APIError):
        return error
    if isinstance(error, P2PError | CancelledError):
        return dial_error(error)
    _log.failure(
        "admin request failed",
        failure,
        event=ev.ADMIN_ERROR,
        path=printable_path(request),
    )
    return internal_error()


def _body(request: Request, result: Any) -> bytes:
    if isinstance(result, Raw):
        request.setHeader(b"content-type", result.content_type.encode())
        return result.body
    return _json(request, result)


def respond(request: Request, handler: Callable[[], Any]) -> bytes | int:
    """
    Run ``handler`` and render what it returns: the error boundary of the
    API.  A ``Deferred`` result is written when it fires, unless the client
    went away in the meantime.
    """
    try:
        result = handler()
        if result is NOT_DONE_YET:
            done: int = NOT_DONE_YET
            return done
        if not isinstance(result, Deferred):
            return _body(request, result)
    except Exception:
        return _error(request, _as_api_error(request, Failure()))
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))

    def write(body: bytes) -> None:
        if gone or request.finished:
            return
        request.write(body)
        request.finish()

    result.addCallback(lambda value: _body(request, value))
    result.addErrback(lambda failure: _error(request, _as_api_error(request, failure)))
    result.addCallback(write)
    result.addErrback(
        lambda failure: _log.failure("admin answer not written", failure, event=ev.ADMIN_ERROR)
    )
    return NOT_DONE_YET


class ErrorResource(Resource):
    """A leaf answering one error to every method."""

    isLeaf = True

    def __init__(self, error: APIError) -> None:
        super().__init__()
        self.error = error

    def render(self, request: Request) -> bytes:
        return _error(request, self.error)


class NotFound(Resource):
    """The leaf under every path nothing serves."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        return _error(request, not_found(f"no service at {printable_path(request)}"))


Handler = Callable[[Request], Any]


class APIResource(Resource):
    """A node of the admin tree: JSON answers for every method, errors included."""

    def getChild(self, path: bytes, request: Request) -> Resource:
        return NotFound()

    def handlers(self) -> dict[bytes, Handler]:
        """The handler of each HTTP verb this resource serves: its methods ``get``..."""
        found = {verb: getattr(self, name, None) for verb, name in VERBS.items()}
        return {verb: handler for verb, handler in found.items() if callable(handler)}

    def render(self, request: Request) -> bytes | int:
        handlers = self.handlers()
        if not handlers:
            return NotFound().render(request)
        method = b"GET" if request.method == b"HEAD" else request.method
        handler = handlers.get(method)
        if handler is None:
            allowed = ", ".join(sorted(verb.decode() for verb in handlers))
            request.setHeader(b"allow", allowed.encode())
            return _error(request, APIError(405, "rpc.method_not_allowed", f"use {allowed}"))
        return respond(request, lambda: handler(request))


class Mounted(APIResource):
    """A resource whose handlers were given by another module (:meth:`mount`)."""

    def __init__(self) -> None:
        super().__init__()
        self.mounted: dict[bytes, Handler] = {}

    def handlers(self) -> dict[bytes, Handler]:
        return self.mounted


def mount(root: Resource, method: bytes, path: str, handler: Handler) -> None:
    """
    Serve ``handler`` for ``method`` at ``path`` under ``root``, making the
    resources on the way; the path must not be one the tree serves already.
    """
    if method not in VERBS:
        raise ValueError(f"cannot serve {method!r}")
    node: Resource = root
    for segment in path.strip("/").split("/"):
        name = segment.encode()
        child = node.children.get(name)
        if child is None:
            child = Mounted()
            node.putChild(name, child)
        node = child
    if not isinstance(node, Mounted) or method in node.mounted:
        raise ValueError(f"{method.decode()} /{path.strip('/')} is served already")
    node.mounted[method] = handler


__all__ = [
    "VERBS",
    "APIResource",
    "ErrorResource",
    "Handler",
    "Mounted",
    "NotFound",
    "Raw",
    "mount",
    "respond",
]
