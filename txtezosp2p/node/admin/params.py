"""
What a request names: its path segments, its query parameters, and the peer
ids and points in them, decoded into values or a 400.

The path and the query string arrive as bytes, from anyone.  They are
decoded strictly, once, before any handler runs (:func:`check_request`):
ASCII only on the wire, every ``%`` followed by two hex digits, and what the
percent-escapes spell must be UTF-8.  A peer id or a point is ASCII.
"""

from __future__ import annotations

from twisted.web.server import Request

from ...wire.errors import P2PError
from ...wire.ids import PeerId, Point
from .errors import bad_request

_HEX = frozenset(b"0123456789abcdefABCDEF")


def _unquote(raw: bytes, what: str) -> str:
    """Percent-decode ``raw`` strictly, then decode it as UTF-8 (400 otherwise)."""
    if b"%" in raw:
        first, *escaped = raw.split(b"%")
        out = bytearray(first)
        for part in escaped:
            if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
                raise bad_request(f"the {what} has a % not followed by two hex digits")
            out.append(int(part[:2], 16))
            out += part[2:]
        raw = bytes(out)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"the {what} is not UTF-8 once percent-decoded") from None


def path_segments(request: Request) -> list[str]:
    """The segments of the request's path, without its leading and trailing slashes."""
    raw = request.path
    if not raw.isascii():
        raise bad_request("the path is not ASCII")
    if not raw.startswith(b"/"):
        raise bad_request("the path must start with /")
    raw = raw.strip(b"/")
    return [_unquote(segment, "path") for segment in raw.split(b"/")] if raw else []


def query(request: Request) -> dict[str, list[str]]:
    """
    The query parameters, each with its values in order.  ``?monitor`` (no
    ``=``) is ``{"monitor": [""]}``: Octez clients pass flags that way.
    """
    _, _, raw = (request.uri or b"").partition(b"?")
    if not raw.isascii():
        raise bad_request("the query string is not ASCII")
    parameters: dict[str, list[str]] = {}
    for item in raw.split(b"&"):
        if not item:
            continue
        name, _, value = item.replace(b"+", b" ").partition(b"=")
        parameters.setdefault(_unquote(name, "query string"), []).append(
            _unquote(value, "query string")
        )
    return parameters


def check_request(request: Request) -> list[str]:
    """The path's segments, once the path and the query are known to decode."""
    segments = path_segments(request)
    query(request)
    return segments


def printable_path(request: Request) -> str:
    """The request's path for a message (at most 200 characters)."""
    return request.path.decode("ascii", "replace")[:200]


def parse_peer_id(text: str) -> PeerId:
    if not text.isascii():
        raise bad_request(f"invalid peer id {text[:80]!r}: not ASCII")
    try:
        return PeerId.from_b58check(text)
    except (P2PError, ValueError) as error:
        raise bad_request(f"invalid peer id {text[:80]!r}: {error}") from None


def parse_point(text: str) -> Point:
    if not text.isascii():
        raise bad_request(f"invalid point {text[:80]!r}: not ASCII")
    try:
        return Point.parse(text)
    except (P2PError, ValueError) as error:
        raise bad_request(f"invalid point {text[:80]!r}: {error}") from None


def arg(request: Request, name: str) -> list[str]:
    """Every value of the query parameter ``name``."""
    return query(request).get(name, [])


def flag(request: Request, name: str) -> bool:
    """An Octez query flag: ``?wait``, ``?wait=true`` or ``?wait=false``."""
    values = arg(request, name)
    if not values:
        return False
    value = values[-1].lower()
    if value in ("", "true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise bad_request(f"query flag {name!r} takes no value or true/false, not {value[:20]!r}")


def filters(request: Request, allowed: tuple[str, ...]) -> set[str]:
    """The states named by ``?filter=`` (repeatable), each one of ``allowed``."""
    wanted = set(arg(request, "filter"))
    unknown = wanted - set(allowed)
    if unknown:
        raise bad_request(
            f"unknown filter {sorted(unknown)[0][:20]!r} (allowed: {', '.join(allowed)})"
        )
    return wanted


__all__ = [
    "arg",
    "check_request",
    "filters",
    "flag",
    "parse_peer_id",
    "parse_point",
    "path_segments",
    "printable_path",
    "query",
]
