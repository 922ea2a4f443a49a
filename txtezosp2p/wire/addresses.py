"""
The text forms of addresses in Octez's configuration and command line
(wire.md 9.2; ``src/lib_base/point_parser.mll``, ``p2p_resolve.ml`` and
``Config_file.resolve_*_addrs``): ``<addr>[:<port>][#<peer_id>]`` for
bootstrap peers, ``listen-addr`` / ``--net-addr`` and ``discovery-addr``.

Parsing only: host names are returned as they are, to be resolved by the
caller.  Every function raises :class:`AddressError`, whose ``reason`` says
why without repeating the text.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import P2PError
from .ids import PeerId

__all__ = [
    "BROADCAST_HOST",
    "DEFAULT_DISCOVERY_PORT",
    "DEFAULT_HOST",
    "DEFAULT_LISTEN_ADDR",
    "DEFAULT_P2P_PORT",
    "AddressError",
    "parse_discovery_addr",
    "parse_listen_addr",
    "parse_peer_text",
]

#: ``Config_file.default_p2p_port``.
DEFAULT_P2P_PORT = 9732
#: ``Config_file.default_discovery_port``.
DEFAULT_DISCOVERY_PORT = 10732
#: ``default_p2p.listen_addr``: every address, IPv6 and IPv4 (a dual-stack socket).
DEFAULT_LISTEN_ADDR = f"[::]:{DEFAULT_P2P_PORT}"
#: Default host of a listening address and of bootstrap peers (``p2p_resolve`` ``default_addr``).
DEFAULT_HOST = "::"
#: Default host of a discovery address: the IPv4 broadcast address.
BROADCAST_HOST = "255.255.255.255"
_UINT16_MAX = 0xFFFF


class AddressError(ValueError):
    """Address text that does not parse; ``reason`` says why, without the text."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


_DOMAIN = re.compile(r"[A-Za-z0-9.\-]+")
_IPV4_LIKE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6_CHARS = re.compile(r"[A-Fa-f0-9:.]+")
_DIGITS = re.compile(r"[0-9]+")
_PEER_ID = re.compile(r"[A-Za-z0-9]+")

_FORMAT = "expected <addr>[:<port>][#<peer_id>]"


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def _bad(text: str, why: str) -> AddressError:
    return AddressError(f"cannot parse {_clip(text, 80)!r}: {why}", why)


def parse_peer_text(
    text: str, default_port: int = DEFAULT_P2P_PORT, *, default_host: str = DEFAULT_HOST
) -> tuple[str, int, PeerId | None]:
    """
    Parse ``<addr>[:<port>][#<peer_id>]`` as Octez's ``point_parser.mll``
    does: ``addr`` is a dotted IPv4 address, a bracketed IPv6 address, a DNS
    name, or empty / ``_`` for ``default_host``; the port is 0-65535; the
    peer id is Base58Check.  Returns ``(host, port, peer_id)`` with the
    brackets of an IPv6 host removed (the host still has to be resolved).

    Beyond Octez's grammar, bracketed text must be an IP address and a
    dotted quad must be a valid IPv4 address (Octez would hand either to
    ``getaddrinfo``, which finds nothing).
    """
    if not isinstance(text, str):
        raise AddressError(f"expected a string, found {type(text).__name__}", "expected a string")
    rest, hash_sign, peer_text = text.partition("#")
    if hash_sign and not _PEER_ID.fullmatch(peer_text):
        raise _bad(text, _FORMAT)
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise _bad(text, _FORMAT)
        host, after = rest[1:close], rest[close + 1 :]
        if not _IPV6_CHARS.fullmatch(host):
            raise _bad(text, _FORMAT)
        if after and not after.startswith(":"):
            raise _bad(text, _FORMAT)
        port_text: str | None = after[1:] if after else None
    else:
        host, colon, port_rest = rest.partition(":")
        port_text = port_rest if colon else None
        if ":" in port_rest:
            raise _bad(text, _FORMAT + " (write IPv6 addresses in brackets: [2001:db8::1]:9732)")
        if host not in ("", "_") and not _DOMAIN.fullmatch(host):
            raise _bad(text, _FORMAT)
    if port_text is not None and not _DIGITS.fullmatch(port_text):
        raise _bad(text, _FORMAT)
    port = default_port
    if port_text is not None:
        # int() refuses digit strings over 4300 characters; any over 5 is out of range.
        port = int(port_text) if len(port_text.lstrip("0")) <= 5 else _UINT16_MAX + 1
        if port > _UINT16_MAX:
            raise _bad(text, f"port '{_clip(port_text, 12)}' not in range [0-65535]")
    peer_id = None
    if hash_sign:
        try:
            peer_id = PeerId.from_b58check(peer_text)
        except (P2PError, ValueError):
            shown = _clip(peer_text, 40)
            raise _bad(text, f"peer id '{shown}' is not valid (b58 format expected)") from None
    if rest.startswith("["):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise _bad(text, f"'{_clip(host, 50)}' is not an IP address") from None
    elif host in ("", "_"):
        host = default_host
    elif _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _bad(text, f"'{host}' is not a valid IPv4 address") from None
    return host, port, peer_id


def parse_listen_addr(text: str) -> tuple[str, int]:
    """
    ``listen-addr`` / ``--net-addr``: ``Config_file.resolve_listening_addrs``
    (default host ``::``, port 9732).  A peer id is accepted and ignored, as
    Octez only warns about it.
    """
    host, port, _peer_id = parse_peer_text(text, DEFAULT_P2P_PORT, default_host=DEFAULT_HOST)
    return host, port


def parse_discovery_addr(text: str) -> tuple[str, int]:
    """
    ``discovery-addr``: ``Config_file.resolve_discovery_addrs`` (default host
    255.255.255.255, port 10732; addresses that are not IPv4 are dropped, so
    only IPv4 is usable).  IPv4-mapped IPv6 is converted as Octez's
    ``to_ipv4`` does; host names are refused (we do not resolve them here).
    A peer id is accepted and ignored.
    """
    host, port, _peer_id = parse_peer_text(
        text, DEFAULT_DISCOVERY_PORT, default_host=BROADCAST_HOST
    )
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _bad(text, "the discovery address must be an IPv4 address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            raise _bad(text, "the discovery address must be an IPv4 address")
        address = address.ipv4_mapped
    return str(address), port
