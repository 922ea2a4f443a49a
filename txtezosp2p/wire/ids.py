# -*- test-case-name: tests.test_ids -*-
"""
Identifiers: peer ids, points (address + port) and connection ids.

* :class:`PeerId` is the 16-byte Blake2b hash of a crypto_box public key,
  written in Base58Check with the ``id`` prefix (wire.md §1.2, §9.3).
* :class:`Point` is an IPv6 address (IPv4 held as IPv4-mapped) and a port;
  its text form is the one Octez puts inside messages: ``1.2.3.4:9732`` or
  ``[2001:db8::1]:9732`` (wire.md §9.1).
* :class:`ConnectionId` is an address with an optional listening port
  (Octez ``P2p_connection.Id``).

Sources: Octez ``src/lib_base/p2p_point.ml``, ``p2p_peer.ml``,
``src/lib_crypto/base58.ml``; RFC 5952 formatting as ``ocaml-ipaddr`` does it.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from typing import Any

import attrs

from .errors import DecodingError

# -- Base58Check -------------------------------------------------------------

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}

#: Base58 version bytes of ``Crypto_box.Public_key_hash`` (gives ``id…``).
PEER_ID_PREFIX = b"\x99\x67"
PEER_ID_SIZE = 16


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def b58check_encode(payload: bytes) -> str:
    """Base58Check-encode ``payload`` (prefix included) as Octez does."""
    data = payload + _checksum(payload)
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(_ALPHABET[digit])
    leading = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading + "".join(reversed(out))


@functools.lru_cache(maxsize=4096)
def _peer_id_text(raw: bytes) -> str:
    # peer ids are printed in every log line and JSON answer about them
    return b58check_encode(PEER_ID_PREFIX + raw)


def b58check_decode(text: str, max_length: int = 128) -> bytes:
    """Decode Base58Check text, verifying the checksum; returns prefix+payload."""
    if len(text) > max_length:
        raise DecodingError("Invalid_b58check", "string too long")
    number = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise DecodingError("Invalid_b58check", f"invalid character {char!r}")
        number = number * 58 + digit
    leading = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    data = b"\x00" * leading + body
    if len(data) < 4 or _checksum(data[:-4]) != data[-4:]:
        raise DecodingError("Invalid_b58check", "bad checksum")
    return data[:-4]


# -- Peer ids ---------------------------------------------------------------


@attrs.frozen(order=True, repr=False)
class PeerId:
    """The hash of a node's public key; compares and hashes by value."""

    raw: bytes = attrs.field()

    @raw.validator
    def _check(self, _attribute: Any, value: bytes) -> None:
        if not isinstance(value, bytes) or len(value) != PEER_ID_SIZE:
            raise ValueError("a peer id is 16 bytes")

    @classmethod
    def of_public_key(cls, public_key: bytes) -> PeerId:
        """``Crypto_box.hash``: Blake2b with a 16-byte digest (wire.md §1.2)."""
        return cls(hashlib.blake2b(public_key, digest_size=PEER_ID_SIZE).digest())

    @classmethod
    def from_b58check(cls, text: str) -> PeerId:
        """Parse ``id…`` text; raises :class:`DecodingError` on bad input."""
        data = b58check_decode(text, max_length=64)
        if len(data) != len(PEER_ID_PREFIX) + PEER_ID_SIZE or not data.startswith(PEER_ID_PREFIX):
            raise DecodingError("Invalid_b58check", "not a peer id")
        return cls(data[len(PEER_ID_PREFIX) :])

    def to_b58check(self) -> str:
        return _peer_id_text(self.raw)

    def __str__(self) -> str:
        return self.to_b58check()

    def __repr__(self) -> str:
        return f"PeerId({self.to_b58check()!r})"


# -- Addresses and points ---------------------------------------------------

IPv6 = ipaddress.IPv6Address

#: Longest point text accepted inside a message (51 bytes with prefix, wire.md §9.1).
MAX_POINT_TEXT = 47


def to_ipv6(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> IPv6:
    """Normalise an address to IPv6, IPv4 becoming IPv4-mapped (``::ffff:a.b.c.d``)."""
    if type(address) is IPv6 and address.scope_id is None:
        return address
    if isinstance(address, str):
        return _parse_ipv6(address)
    if isinstance(address, ipaddress.IPv4Address):
        return IPv6(b"\x00" * 10 + b"\xff\xff" + address.packed)
    if not isinstance(address, IPv6):
        raise ValueError(f"not an IP address: {address!r}")
    if address.scope_id is not None:
        raise ValueError("scoped IPv6 addresses are not supported")
    return address


@functools.lru_cache(maxsize=4096)
def _parse_ipv6(text: str) -> IPv6:
    # the same few peer addresses are parsed again and again (every accept,
    # every ACL check of a transport's host); an LRU keeps that cheap
    return to_ipv6(ipaddress.ip_address(text.strip("[]")))


def format_addr(address: IPv6) -> str:
    """
    The IPv6 text form Octez uses in JSON and logs: RFC 5952, with mapped
    IPv4 written ``::ffff:1.2.3.4`` (behaviour.md §13.1).
    """
    mapped = address.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{mapped}"
    return address.compressed


def format_host(address: IPv6) -> str:
    """Plain dotted IPv4 for mapped addresses, RFC 5952 IPv6 otherwise."""
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else address.compressed


def _parse_port(text: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 5:
        raise DecodingError("Invalid_point", f"invalid port {text!r}")
    port = int(text)
    if port > 0xFFFF:
        raise DecodingError("Invalid_point", f"port out of range: {port}")
    return port


@attrs.frozen(order=True, cache_hash=True)
class Point:
    """A reachable address: ``(IPv6 address, TCP port)``."""

    addr: IPv6 = attrs.field(converter=to_ipv6)
    port: int = attrs.field()

    @port.validator
    def _check_port(self, _attribute: Any, value: int) -> None:
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"port out of range: {value}")

    @classmethod
    def parse(cls, text: str) -> Point:
        """
        Parse the strict message form: ``a.b.c.d:port`` or ``[ipv6]:port``;
        no host names, the port is required (wire.md §9.1).  Raises
        :class:`DecodingError`.
        """
        if cls is Point:
            return _parse_point(text)  # the same points come back in every Advertise
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Point:
        if len(text) > MAX_POINT_TEXT:
            raise DecodingError("Invalid_point", "point text too long")
        if "%" in text:
            raise DecodingError("Invalid_point", "scoped addresses are not points")
        if text.startswith("["):
            close = text.find("]")
            if close < 0 or text[close + 1 : close + 2] != ":":
                raise DecodingError("Invalid_point", f"bad point {text!r}")
            host, port_text = text[1:close], text[close + 2 :]
            try:
                address: ipaddress.IPv4Address | ipaddress.IPv6Address = IPv6(host)
            except ValueError:
                # ocaml-ipaddr also accepts a bracketed IPv4 address
                try:
                    address = ipaddress.IPv4Address(host)
                except ValueError:
                    raise DecodingError("Invalid_point", f"bad address {host!r}") from None
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep:
                raise DecodingError("Invalid_point", f"missing port in {text!r}")
            try:
                address = ipaddress.IPv4Address(host)
            except ValueError:
                raise DecodingError("Invalid_point", f"bad address {host!r}") from None
        return cls(address, _parse_port(port_text))

    def to_text(self) -> str:
        """``1.2.3.4:9732`` for IPv4(-mapped), ``[2001:db8::1]:9732`` otherwise."""
        return _point_text(self.addr, self.port)

    def __str__(self) -> str:
        return self.to_text()


@functools.lru_cache(maxsize=8192)
def _parse_point(text: str) -> Point:
    return Point._parse(text)


@functools.lru_cache(maxsize=8192)
def _point_text(addr: IPv6, port: int) -> str:
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return f"{mapped}:{port}"
    return f"[{addr.compressed}]:{port}"


@attrs.frozen(order=True, cache_hash=True)
class ConnectionId:
    """
    Where a connection comes from: the remote address and, when known, its
    listening port (``P2p_connection.Id``, Octez's ``id_point``).
    """

    addr: IPv6 = attrs.field(converter=to_ipv6)
    port: int | None = None

    def point(self) -> Point | None:
        return None if self.port is None else Point(self.addr, self.port)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"addr": format_addr(self.addr)}
        if self.port is not None:
            out["port"] = self.port
        return out

    def __str__(self) -> str:
        # Octez logs connection ids with the raw IPv6 form (wire.md §9.2)
        port = "" if self.port is None else f":{self.port}"
        return f"[{format_addr(self.addr)}]{port}"
