# -*- test-case-name: tests.test_ids -*-
"""
Tests for L{txtezosp2p.wire.ids}: Base58Check, peer ids (wire.md §1.2, §9.3),
points and their text forms (§9.1), connection ids and address formatting
(§9.2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

import tests.helpers  # noqa: F401  (loads the hypothesis profile)
from txtezosp2p.wire.errors import DecodingError
from txtezosp2p.wire.ids import (
    MAX_POINT_TEXT,
    PEER_ID_PREFIX,
    ConnectionId,
    PeerId,
    Point,
    b58check_decode,
    b58check_encode,
    format_addr,
    format_host,
    to_ipv6,
)

#: Appendix A.2 identities: (public key, Base58 peer id, raw peer id).
PK_A = bytes.fromhex("5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a")
ID_A = "idrRoknJh9zwEePNswF3MPGFzmKaVp"
RAW_A = bytes.fromhex("47f5c302e9ed3c9a73279fe9f4ad99b6")
PK_B = bytes.fromhex("6e699289a794e629a13335c6fb7cfe6ee143c29609b020a49b5a575593824459")
ID_B = "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf"
#: B's raw id, as it appears in the Swap_request example of wire.md §8.2.
RAW_B = bytes.fromhex("bfec777657369f33dd211f57eb32598f")

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

ports = st.integers(min_value=0, max_value=0xFFFF)

#: Text that looks like a point often enough to reach every parsing branch.
pointish_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789.:[]%abcdefABCDEFx ", max_size=50),
    st.builds(
        "[{}]:{}".format,
        st.text(alphabet="0123456789abcdef:.%", max_size=45),
        st.text(alphabet="0123456789+-", max_size=7),
    ),
    st.builds(
        "[{}%{}]:{}".format,
        st.ip_addresses(v=6).map(str),
        st.text(alphabet="0123456789abcz%", max_size=4),
        st.integers(min_value=0, max_value=0xFFFF),
    ),
    st.builds(
        "{}:{}".format,
        st.ip_addresses().map(str),
        st.text(alphabet="0123456789", max_size=7),
    ),
)


def _decoding_error_only(text: str, parse: Callable[[str], object]) -> None:
    """Call ``parse(text)``; anything but success or DecodingError escapes."""
    try:
        parse(text)
    except DecodingError:
        pass


class Base58CheckTests(SynchronousTestCase):
    """Base58Check as Octez's ``Base58`` module does it."""

    def test_knownVector(self) -> None:
        """
        21 zero bytes encode to the well-known Bitcoin burn address: every
        leading zero byte becomes a leading C{1}.
        """
        self.assertEqual(b58check_encode(bytes(21)), "1111111111111111111114oLvT2")
        self.assertEqual(b58check_decode("1111111111111111111114oLvT2"), bytes(21))

    def test_tezosAddress(self) -> None:
        """
        A Tezos C{tz1} address decodes to its 3-byte prefix C{06a19f} and a
        20-byte hash, and re-encodes to the same text.
        """
        text = "tz1burnburnburnburnburnburnburjAYjjX"
        data = b58check_decode(text)
        self.assertEqual(len(data), 23)
        self.assertEqual(data[:3], bytes.fromhex("06a19f"))
        self.assertEqual(b58check_encode(data), text)

    def test_empty(self) -> None:
        """The empty payload round-trips (only the checksum is encoded)."""
        self.assertEqual(b58check_decode(b58check_encode(b"")), b"")

    def test_badChecksum(self) -> None:
        """Changing one character breaks the checksum."""
        bad = ID_A[:-1] + ("q" if ID_A[-1] != "q" else "r")
        exc = self.assertRaises(DecodingError, b58check_decode, bad)
        self.assertEqual(exc.reason, "Invalid_b58check")

    def test_badCharacters(self) -> None:
        """
        Characters outside the Bitcoin alphabet (C{0}, C{O}, C{I}, C{l},
        punctuation, non-ASCII) are refused.
        """
        for char in ["0", "O", "I", "l", "+", "/", " ", "\u00e9", "\u0661"]:
            bad = ID_A[:10] + char + ID_A[11:]
            exc = self.assertRaises(DecodingError, b58check_decode, bad)
            self.assertEqual(exc.reason, "Invalid_b58check")

    def test_tooShort(self) -> None:
        """Fewer than 4 decoded bytes cannot hold a checksum."""
        for text in ["", "1", "2", "11", "zzz"]:
            self.assertRaises(DecodingError, b58check_decode, text)

    def test_tooLong(self) -> None:
        """
        Text over C{max_length} is refused before any decoding, even when
        it is otherwise valid.
        """
        payload = b"\xff" * 100
        text = b58check_encode(payload)
        self.assertGreater(len(text), 128)
        exc = self.assertRaises(DecodingError, b58check_decode, text)
        self.assertEqual(exc.reason, "Invalid_b58check")
        self.assertEqual(b58check_decode(text, max_length=len(text)), payload)
        self.assertRaises(DecodingError, b58check_decode, ID_A, max_length=29)

    @given(st.binary(max_size=64))
    def test_roundTrip(self, payload: bytes) -> None:
        """Any payload, leading zeros included, round-trips."""
        text = b58check_encode(payload)
        self.assertTrue(set(text) <= set(B58_ALPHABET))
        self.assertEqual(b58check_decode(text), payload)

    @given(st.one_of(st.text(max_size=150), st.text(alphabet=B58_ALPHABET, max_size=150)))
    def test_garbageRaisesDecodingErrorOnly(self, text: str) -> None:
        """Arbitrary text either decodes or raises DecodingError."""
        _decoding_error_only(text, b58check_decode)


class PeerIdTests(SynchronousTestCase):
    """Peer ids: Blake2b-128 of the public key, C{id…} in text (wire.md §1.2)."""

    def test_ofPublicKeyA(self) -> None:
        """The Appendix A.2 vector of identity A."""
        peer = PeerId.of_public_key(PK_A)
        self.assertEqual(peer.raw, RAW_A)
        self.assertEqual(peer.to_b58check(), ID_A)
        self.assertEqual(str(peer), ID_A)
        self.assertEqual(repr(peer), f"PeerId({ID_A!r})")

    def test_ofPublicKeyB(self) -> None:
        """The Appendix A.2 vector of identity B, whose raw form is in §8.2."""
        peer = PeerId.of_public_key(PK_B)
        self.assertEqual(peer.to_b58check(), ID_B)
        self.assertEqual(peer.raw, RAW_B)

    def test_fromB58check(self) -> None:
        """Parsing the text gives the raw hash back."""
        self.assertEqual(PeerId.from_b58check(ID_A), PeerId(RAW_A))
        self.assertEqual(PeerId.from_b58check(ID_B).raw, RAW_B)

    def test_prefix(self) -> None:
        """The Base58Check payload is C{99 67} followed by the 16 raw bytes."""
        self.assertEqual(PEER_ID_PREFIX, b"\x99\x67")
        self.assertEqual(b58check_decode(ID_A), b"\x99\x67" + RAW_A)

    def test_extremes(self) -> None:
        """All-zero and all-ones ids still give 30 characters starting with C{id}."""
        for raw in [bytes(16), b"\xff" * 16]:
            text = PeerId(raw).to_b58check()
            self.assertEqual(len(text), 30)
            self.assertTrue(text.startswith("id"))
            self.assertEqual(PeerId.from_b58check(text).raw, raw)

    def test_wrongPrefix(self) -> None:
        """Valid Base58Check with another prefix or size is not a peer id."""
        for payload in [
            b"\x99\x68" + RAW_A,
            b"\x99\x67" + RAW_A[:15],
            b"\x99\x67" + RAW_A + b"\x00",
            RAW_A,
        ]:
            exc = self.assertRaises(DecodingError, PeerId.from_b58check, b58check_encode(payload))
            self.assertEqual(exc.reason, "Invalid_b58check")

    def test_tooLong(self) -> None:
        """Overlong text is refused as a DecodingError."""
        self.assertRaises(DecodingError, PeerId.from_b58check, ID_A * 3)

    def test_badChecksum(self) -> None:
        """A corrupted id is refused."""
        self.assertRaises(DecodingError, PeerId.from_b58check, "id" + ID_A[2:][::-1])

    def test_rawSize(self) -> None:
        """A peer id holds exactly 16 bytes."""
        self.assertRaises(ValueError, PeerId, b"\x00" * 15)
        self.assertRaises(ValueError, PeerId, b"\x00" * 32)

    def test_valueSemantics(self) -> None:
        """Peer ids compare and hash by value."""
        self.assertEqual(PeerId(RAW_A), PeerId(bytes(RAW_A)))
        self.assertEqual(hash(PeerId(RAW_A)), hash(PeerId(bytes(RAW_A))))
        self.assertNotEqual(PeerId(RAW_A), PeerId(RAW_B))
        self.assertLess(PeerId(RAW_A), PeerId(RAW_B))

    @given(st.binary(min_size=16, max_size=16))
    def test_roundTrip(self, raw: bytes) -> None:
        """Every 16-byte hash gives a 30-char C{id…} text that parses back."""
        peer = PeerId(raw)
        text = peer.to_b58check()
        self.assertEqual(len(text), 30)
        self.assertTrue(text.startswith("id"))
        self.assertEqual(PeerId.from_b58check(text), peer)

    @given(st.binary(min_size=32, max_size=32))
    def test_ofPublicKeyIsBlake2b16(self, public_key: bytes) -> None:
        """The id of any key is a real 16-byte Blake2b digest."""
        import hashlib

        peer = PeerId.of_public_key(public_key)
        self.assertEqual(peer.raw, hashlib.blake2b(public_key, digest_size=16).digest())

    @given(
        st.one_of(
            st.text(max_size=80),
            st.text(alphabet=B58_ALPHABET, min_size=28, max_size=32),
            st.binary(min_size=16, max_size=16).map(lambda r: PeerId(r).to_b58check()[:-1]),
        )
    )
    def test_garbageRaisesDecodingErrorOnly(self, text: str) -> None:
        """Arbitrary text either parses or raises DecodingError."""
        _decoding_error_only(text, PeerId.from_b58check)


class PointTextTests(SynchronousTestCase):
    """The point strings carried inside messages (wire.md §9.1)."""

    def assertText(self, point: Point, text: str) -> None:
        """C{point} prints as C{text}, and C{text} parses back to C{point}."""
        self.assertEqual(point.to_text(), text)
        self.assertEqual(str(point), text)
        self.assertEqual(Point.parse(text), point)

    def test_ipv4(self) -> None:
        """IPv4 is written dotted, without brackets nor C{::ffff:}."""
        self.assertText(Point("1.2.3.4", 9732), "1.2.3.4:9732")
        self.assertText(Point(ipaddress.IPv4Address("0.0.0.0"), 0), "0.0.0.0:0")
        self.assertText(Point("255.255.255.255", 65535), "255.255.255.255:65535")

    def test_ipv4StoredMapped(self) -> None:
        """An IPv4 address is held as IPv4-mapped IPv6."""
        point = Point("1.2.3.4", 9732)
        self.assertEqual(point.addr, ipaddress.IPv6Address("::ffff:1.2.3.4"))
        self.assertEqual(point, Point("::ffff:1.2.3.4", 9732))
        self.assertEqual(point, Point(ipaddress.IPv4Address("1.2.3.4"), 9732))
        self.assertEqual(Point.parse("1.2.3.4:9732").addr, ipaddress.IPv6Address("::ffff:1.2.3.4"))

    def test_mappedInBrackets(self) -> None:
        """A bracketed IPv4-mapped address parses to the same point as plain IPv4."""
        self.assertEqual(Point.parse("[::ffff:1.2.3.4]:9732"), Point("1.2.3.4", 9732))
        self.assertEqual(Point.parse("[::ffff:1.2.3.4]:9732").to_text(), "1.2.3.4:9732")

    def test_ipv6(self) -> None:
        """Other IPv6 addresses are bracketed."""
        self.assertText(Point("2001:db8::1", 9732), "[2001:db8::1]:9732")
        self.assertText(Point("::1", 9732), "[::1]:9732")
        self.assertText(Point("::", 9732), "[::]:9732")

    def test_rfc5952LowercaseNoLeadingZeros(self) -> None:
        """Hex digits are lowercase, without leading zeros."""
        self.assertEqual(
            Point("2001:0DB8:0000:0000:0000:0000:0000:0001", 1).to_text(), "[2001:db8::1]:1"
        )
        self.assertEqual(
            Point.parse("[2001:0DB8:0:0:0:0:0:0001]:9732").to_text(), "[2001:db8::1]:9732"
        )

    def test_rfc5952FirstLongestRun(self) -> None:
        """The first of the longest zero runs is the one compressed."""
        self.assertEqual(Point("2001:db8:0:0:1:0:0:1", 1).to_text(), "[2001:db8::1:0:0:1]:1")
        self.assertEqual(Point("2001:0:0:1:0:0:0:1", 1).to_text(), "[2001:0:0:1::1]:1")
        self.assertEqual(Point("1:0:0:0:2:0:0:0", 1).to_text(), "[1::2:0:0:0]:1")

    def test_rfc5952SingleZeroGroup(self) -> None:
        """A single zero group is never compressed."""
        self.assertEqual(Point("2001:db8:0:1:1:1:1:1", 1).to_text(), "[2001:db8:0:1:1:1:1:1]:1")
        self.assertEqual(Point("1:0:1:0:1:0:1:0", 1).to_text(), "[1:0:1:0:1:0:1:0]:1")

    def test_longestTextFits(self) -> None:
        """The longest possible point text is exactly the 47-character bound."""
        point = Point("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535)
        self.assertEqual(len(point.to_text()), MAX_POINT_TEXT)
        self.assertEqual(MAX_POINT_TEXT, 47)
        self.assertEqual(Point.parse(point.to_text()), point)

    def test_parseLongFormAtLimit(self) -> None:
        """An uncompressed IPv6 text under 47 characters is accepted."""
        text = "[0000:0000:0000:0000:0000:0000:0000:0001]:9732"
        self.assertEqual(Point.parse(text), Point("::1", 9732))

    def test_portRange(self) -> None:
        """Ports 0 and 65535 are valid."""
        self.assertEqual(Point.parse("1.2.3.4:0").port, 0)
        self.assertEqual(Point.parse("[::1]:65535").port, 65535)

    def assertRejected(self, text: str) -> None:
        exc = self.assertRaises(DecodingError, Point.parse, text)
        self.assertEqual(exc.reason, "Invalid_point")

    def test_rejectHostnames(self) -> None:
        """Host names are not allowed inside messages."""
        for text in ["localhost:9732", "example.com:9732", "[localhost]:9732", "a.b.c.d:1"]:
            self.assertRejected(text)

    def test_rejectMissingPort(self) -> None:
        """The port is required."""
        for text in ["1.2.3.4", "1.2.3.4:", "[::1]", "[::1]:", "[2001:db8::1]"]:
            self.assertRejected(text)

    def test_rejectBadPort(self) -> None:
        """Ports must be ASCII decimal digits and at most 65535."""
        for text in [
            "1.2.3.4:65536",
            "1.2.3.4:99999",
            "[::1]:100000",
            "1.2.3.4:-1",
            "1.2.3.4:+1",
            "1.2.3.4: 1",
            "1.2.3.4:1 ",
            "1.2.3.4:0x10",
            "1.2.3.4:\u0669\u0667\u0663\u0662",
            "1.2.3.4:\u00b2",
            "[::1]9732",
            "[::1]x9732",
        ]:
            self.assertRejected(text)

    def test_rejectUnbracketedIPv6(self) -> None:
        """IPv6 addresses need brackets."""
        for text in ["::1:9732", "2001:db8::1:9732", ":::9732", "::ffff:1.2.3.4:9732"]:
            self.assertRejected(text)

    def test_rejectBadAddresses(self) -> None:
        """Malformed addresses are refused."""
        for text in [
            "1.2.3.256:1",
            "1.2.3:1",
            ":9732",
            "[]:9732",
            "[::1:9732",
            "[2001:db8::g]:1",
            "[1:2:3:4:5:6:7:8:9]:1",
        ]:
            self.assertRejected(text)

    def test_rejectTooLong(self) -> None:
        """Text over 47 characters is refused, even when otherwise valid."""
        text = "[0000:0000:0000:0000:0000:0000:0000:0001]:009732"
        self.assertEqual(len(text), 48)
        self.assertRejected(text)
        self.assertRejected("1.2.3.4:" + "0" * 40 + "1")

    def test_rejectScoped(self) -> None:
        """
        Scoped (zone index) IPv6 addresses are refused with a DecodingError,
        like any other malformed point.
        """
        for text in ["[fe80::1%eth0]:9732", "[fe80::1%1]:9732", "[::1%a]:1"]:
            self.assertRaises(DecodingError, Point.parse, text)

    def test_scopedAddressNotAPoint(self) -> None:
        """Building a point from a scoped address is a ValueError."""
        self.assertRaises(ValueError, Point, ipaddress.IPv6Address("fe80::1%eth0"), 1)
        self.assertRaises(ValueError, to_ipv6, "fe80::1%eth0")

    def test_constructorChecksPort(self) -> None:
        """Point refuses ports outside 0..65535."""
        self.assertRaises(ValueError, Point, "1.2.3.4", -1)
        self.assertRaises(ValueError, Point, "1.2.3.4", 65536)

    def test_valueSemantics(self) -> None:
        """Points compare by value, whatever form the address was given in."""
        self.assertEqual(Point("2001:db8::1", 1), Point("2001:0db8:0:0:0:0:0:1", 1))
        self.assertEqual(Point("[2001:db8::1]", 1), Point("2001:db8::1", 1))
        self.assertNotEqual(Point("2001:db8::1", 1), Point("2001:db8::1", 2))
        self.assertEqual(len({Point("1.2.3.4", 1), Point("::ffff:1.2.3.4", 1)}), 1)

    @given(st.ip_addresses(v=4), ports)
    def test_ipv4RoundTrip(self, address: ipaddress.IPv4Address, port: int) -> None:
        """Any IPv4 point prints unbracketed and parses back."""
        point = Point(address, port)
        text = point.to_text()
        self.assertEqual(text, f"{address}:{port}")
        self.assertLessEqual(len(text), MAX_POINT_TEXT)
        self.assertEqual(Point.parse(text), point)

    @given(st.ip_addresses(v=6), ports)
    def test_ipv6RoundTrip(self, address: ipaddress.IPv6Address, port: int) -> None:
        """Any IPv6 point (mapped or not) prints within 47 chars and parses back."""
        point = Point(address, port)
        text = point.to_text()
        self.assertLessEqual(len(text), MAX_POINT_TEXT)
        self.assertEqual(Point.parse(text), point)
        if address.ipv4_mapped is None:
            self.assertEqual(text, f"[{address.compressed}]:{port}")
        else:
            self.assertEqual(text, f"{address.ipv4_mapped}:{port}")

    @given(pointish_text)
    @example("[fe80::1%eth0]:9732")
    def test_garbageRaisesDecodingErrorOnly(self, text: str) -> None:
        """Arbitrary text either parses or raises DecodingError."""
        _decoding_error_only(text, Point.parse)

    @given(pointish_text)
    def test_parsedPointsPrintCanonically(self, text: str) -> None:
        """Whatever parses prints in a form that parses to the same point."""
        try:
            point = Point.parse(text)
        except (DecodingError, ValueError):
            return
        self.assertEqual(Point.parse(point.to_text()), point)


class AddressFormatTests(SynchronousTestCase):
    """C{format_addr}, C{format_host} and C{to_ipv6}."""

    def test_formatAddrMapped(self) -> None:
        """Mapped IPv4 is written C{::ffff:a.b.c.d} (logs and JSON)."""
        self.assertEqual(format_addr(to_ipv6("1.2.3.4")), "::ffff:1.2.3.4")
        self.assertEqual(format_addr(to_ipv6("::ffff:10.0.0.1")), "::ffff:10.0.0.1")

    def test_formatAddrIPv6(self) -> None:
        """Other addresses use RFC 5952."""
        self.assertEqual(format_addr(to_ipv6("2001:0DB8::0001")), "2001:db8::1")
        self.assertEqual(format_addr(to_ipv6("::")), "::")

    def test_formatHost(self) -> None:
        """C{format_host} writes mapped addresses as plain IPv4."""
        self.assertEqual(format_host(to_ipv6("1.2.3.4")), "1.2.3.4")
        self.assertEqual(format_host(to_ipv6("2001:db8::1")), "2001:db8::1")

    def test_toIPv6(self) -> None:
        """Strings, bracketed strings and address objects are accepted."""
        expected = ipaddress.IPv6Address("::ffff:1.2.3.4")
        self.assertEqual(to_ipv6("1.2.3.4"), expected)
        self.assertEqual(to_ipv6(ipaddress.IPv4Address("1.2.3.4")), expected)
        self.assertEqual(to_ipv6("[::1]"), ipaddress.IPv6Address("::1"))
        self.assertRaises(ValueError, to_ipv6, "not an address")


class ConnectionIdTests(SynchronousTestCase):
    """Connection ids: address plus optional listening port (wire.md §9.2)."""

    def test_strMapped(self) -> None:
        """Logs show the raw IPv6 form in brackets."""
        self.assertEqual(str(ConnectionId("1.2.3.4", 9732)), "[::ffff:1.2.3.4]:9732")

    def test_strIPv6(self) -> None:
        self.assertEqual(str(ConnectionId("2001:db8::1", 9732)), "[2001:db8::1]:9732")

    def test_strWithoutPort(self) -> None:
        """Without a port only the bracketed address is shown."""
        self.assertEqual(str(ConnectionId("1.2.3.4")), "[::ffff:1.2.3.4]")
        self.assertEqual(str(ConnectionId("::1")), "[::1]")

    def test_toJson(self) -> None:
        """C{addr} uses C{format_addr}; C{port} is present only when known."""
        self.assertEqual(
            ConnectionId("1.2.3.4", 9732).to_json(), {"addr": "::ffff:1.2.3.4", "port": 9732}
        )
        self.assertEqual(ConnectionId("2001:db8::1").to_json(), {"addr": "2001:db8::1"})
        self.assertEqual(ConnectionId("::1", 0).to_json(), {"addr": "::1", "port": 0})

    def test_point(self) -> None:
        """The reachable point exists only when the port is known."""
        self.assertEqual(ConnectionId("1.2.3.4", 9732).point(), Point("1.2.3.4", 9732))
        self.assertIsNone(ConnectionId("1.2.3.4").point())

    def test_addrNormalised(self) -> None:
        """The address is held as IPv6, IPv4 mapped."""
        self.assertEqual(ConnectionId("1.2.3.4", 1).addr, ipaddress.IPv6Address("::ffff:1.2.3.4"))
        self.assertEqual(ConnectionId("1.2.3.4", 1), ConnectionId("::ffff:1.2.3.4", 1))
