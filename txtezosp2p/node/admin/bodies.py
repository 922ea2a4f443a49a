"""
Request bodies of the admin API: kept bounded while they arrive
(:class:`AdminRequest`), then decoded as JSON within limits: at most
:data:`MAX_BODY` bytes (413 beyond), UTF-8, nested at most
:data:`MAX_JSON_DEPTH` arrays or objects deep, no ``NaN`` or ``Infinity``,
integers of at most :data:`MAX_NUMBER_DIGITS` digits (400 otherwise).  The
depth is measured before decoding, in one pass, so that no body can make
the decoder recurse far or spend long on a number.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from twisted.web.server import Request

from .errors import APIError, bad_request

#: Largest request body accepted (PATCH bodies are a few dozen bytes).
MAX_BODY = 64 * 1024
#: Deepest nesting of arrays and objects accepted in a body (ours are 1 deep).
MAX_JSON_DEPTH = 32
#: Most digits accepted in an integer of a body.
MAX_NUMBER_DIGITS = 100

_TOKEN = re.compile(r'["\[\]{}]')
_STRING_TAIL = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)


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


def nesting_depth(text: str, limit: int) -> int:
    """
    How deep the arrays and objects of the JSON ``text`` nest, counting at
    most to ``limit + 1`` (brackets inside strings do not count).  One pass;
    malformed text gives some number, and the decoder then refuses it.
    """
    depth = deepest = 0
    position = 0
    while deepest <= limit:
        token = _TOKEN.search(text, position)
        if token is None:
            break
        position = token.end()
        char = token.group()
        if char == '"':
            tail = _STRING_TAIL.match(text, position)
            if tail is None:
                break  # an unterminated string
            position = tail.end()
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"an integer of more than {MAX_NUMBER_DIGITS} digits")
    return int(digits)


def parse_json(data: bytes) -> Any:
    """A JSON value from untrusted bytes, within the limits above (400 otherwise)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the body is not UTF-8") from None
    openers = text.count("[") + text.count("{")
    if openers > MAX_JSON_DEPTH and nesting_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise bad_request(f"the body nests more than {MAX_JSON_DEPTH} arrays or objects deep")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int)
    except (ValueError, RecursionError) as error:
        raise bad_request(f"the body is not JSON: {str(error)[:200]}") from None


def json_body(request: Request) -> Any:
    """The request's JSON body; ``None`` when it is empty."""
    content = request.content
    data = content.read(MAX_BODY + 1) if content is not None else b""
    if len(data) > MAX_BODY:
        raise APIError(413, "rpc.body_too_large", f"request bodies are limited to {MAX_BODY} bytes")
    if not data.strip():
        return None
    return parse_json(data)


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


__all__ = [
    "MAX_BODY",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_DIGITS",
    "AdminRequest",
    "acl_body",
    "json_body",
    "nesting_depth",
    "parse_json",
]
