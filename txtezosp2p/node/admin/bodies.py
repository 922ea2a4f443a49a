"""
Request bodies of the admin API: kept bounded while they arrive
(:class:`AdminRequest`), then decoded as JSON within limits.
"""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.web.server import Request

from .errors import APIError, bad_request

#: Largest request body accepted (PATCH bodies are a few dozen bytes).
MAX_BODY = 64 * 1024


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


def json_body(request: Request) -> Any:
    """The request's JSON body; ``None`` when it is empty."""
    content = request.content
    data = content.read(MAX_BODY + 1) if content is not None else b""
    if len(data) > MAX_BODY:
        raise APIError(413, "rpc.body_too_large", f"request bodies are limited to {MAX_BODY} bytes")
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"the body is not JSON: {error}") from None


def acl_body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The body of a PATCH: an object with only ``allowed`` keys and a valid ``acl``."""
    body = json_body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise bad_request(
            f"unexpected field {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    acl = body.get("acl")
    if acl is not None and acl not in ("ban", "trust", "open"):
        raise bad_request(f"acl must be one of ban, trust, open, not {str(acl)[:20]!r}")
    return body


__all__ = ["MAX_BODY", "AdminRequest", "acl_body", "json_body"]
