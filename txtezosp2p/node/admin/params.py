"""
What a request names: its path segments, its query parameters, and the peer
ids and points in them, decoded into values or a 400.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote

from twisted.web.server import Request

from ...wire.errors import P2PError
from ...wire.ids import PeerId, Point
from .errors import bad_request


def path_segments(request: Request) -> list[str]:
    """The segments of the request's path, without its leading and trailing slashes."""
    try:
        raw = request.path.decode("ascii")
    except UnicodeDecodeError:
        raise bad_request("the path is not ASCII") from None
    raw = raw.strip("/")
    return [unquote(s) for s in raw.split("/")] if raw else []


def printable_path(request: Request) -> str:
    """The request's path for a message (at most 200 characters)."""
    return request.path.decode("ascii", "replace")[:200]


def parse_peer_id(text: str) -> PeerId:
    try:
        return PeerId.from_b58check(text)
    except (P2PError, ValueError) as error:
        raise bad_request(f"invalid peer id {text[:80]!r}: {error}") from None


def parse_point(text: str) -> Point:
    try:
        return Point.parse(text)
    except (P2PError, ValueError) as error:
        raise bad_request(f"invalid point {text[:80]!r}: {error}") from None


def arg(request: Request, name: str) -> list[str]:
    """Every value of the query parameter ``name``."""
    # Parsed from the URI: twisted.web drops a bare ``?monitor`` (no ``=``),
    # which is how Octez clients pass flags.
    _, _, query = (request.uri or b"").partition(b"?")
    values = parse_qs(query, keep_blank_values=True).get(name.encode(), [])
    try:
        return [value.decode("utf-8") for value in values]
    except UnicodeDecodeError:
        raise bad_request(f"query parameter {name!r} is not UTF-8") from None


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
    "filters",
    "flag",
    "parse_peer_id",
    "parse_point",
    "path_segments",
    "printable_path",
]
