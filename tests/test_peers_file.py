# -*- test-case-name: tests.test_peers_file -*-
"""
Tests for :mod:`txtezosp2p.peers_file`: timestamps, the JSON of one peer,
loading and saving ``peers.json`` (round trip, Octez's format, points
registered from ``last_seen``, damaged files moved aside, atomic saves, a
real process killed while saving) and the periodic-save service.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any

from twisted.internet.task import Clock
from twisted.python.monkey import MonkeyPatcher
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import capture_events, named
from txtezosp2p import _files, peers_file
from txtezosp2p.acl import ACL
from txtezosp2p.limits import Limits
from txtezosp2p.peers_file import (
    MAX_EVENTS,
    PeersFile,
    PeersFileError,
    PeersFileService,
    parse_time,
    peer_from_json,
    peer_to_json,
)
from txtezosp2p.pool import PeerMetaConfig, Pool
from txtezosp2p.pool_state import EVENT_RING, Disconnected, PeerInfo, Running, rfc3339
from txtezosp2p.wire.ids import ConnectionId, PeerId, Point

#: The ``os`` module as ``_files`` sees it (patching its attributes patches ``os``).
FILES_OS = vars(_files)["os"]

#: 2026-01-01T00:00:00Z
T0 = 1767225600.0


def make_pool(clock: Clock | None = None, **kwargs: Any) -> Pool:
    clock = clock or Clock()
    return Pool(clock, ACL(clock, Limits(ip_greylist_size_in_kilobytes=1)), **kwargs)


def peer_id(n: int) -> PeerId:
    return PeerId(n.to_bytes(2, "big") * 8)


V4 = ConnectionId("1.2.3.4", 9732)
V4_NO_PORT = ConnectionId("5.6.7.8")
V6 = ConnectionId("2001:db8::1", 19732)
V6_NO_PORT = ConnectionId("2001:db8::2")

#: Octez's DDB counters, big integers as decimal strings (behaviour.md 12.1).
OCTEZ_METADATA = {
    "responses": {"sent": {"branch": "3", "head": "5"}, "failed": {}, "received": {}},
    "valid_blocks": "17",
    "old_heads": "0",
    "unadvertised": {"block": "1", "operations": "0", "protocol": "0"},
}


def sample_pool(clock: Clock | None = None) -> Pool:
    """
    A pool whose peers cover every persisted field: trusted and not,
    metadata, events, every ``last_*`` field, IPv4 and IPv6, with and without
    ports.
    """
    pool = make_pool(clock)
    full = PeerInfo(peer_id(1), T0 + 0.125, trusted=True, metadata=OCTEZ_METADATA)
    full.log(T0 + 1, "incoming_request", V4)
    full.log(T0 + 2, "connection_established", V4)
    full.log(T0 + 3, "disconnection", V6_NO_PORT)
    full.log(T0 + 4, "request_rejected", V6)
    full.last_failed_connection = (V4_NO_PORT, T0 + 5.5)
    full.last_rejected_connection = (V6, T0 + 6)
    full.last_established_connection = (V4, T0 + 7.25)
    full.last_disconnection = (V4, T0 + 8)  # the most recent: last_seen, has a port
    bare = PeerInfo(peer_id(2), T0, metadata={})
    # last_seen (the most recent) has no port; an older record has one
    portless = PeerInfo(peer_id(3), T0 - 86400.0, metadata={"valid_blocks": "2"})
    portless.last_established_connection = (V4, T0 + 1)
    portless.last_disconnection = (V4_NO_PORT, T0 + 2)
    portless.log(T0 + 2, "external_disconnection", V4_NO_PORT)
    ipv6 = PeerInfo(peer_id(4), T0 + 10.999, metadata={"x": [1, 2, 3]})
    ipv6.last_disconnection = (V6, T0 + 20)
    ipv6.log(T0 + 20, "rejecting_request", V6)
    # only failed: last_seen is None, so no point
    failed = PeerInfo(peer_id(5), T0, trusted=False, metadata={})
    failed.last_failed_connection = (V6, T0 + 30)
    for info in (full, bare, portless, ipv6, failed):
        pool.peers[info.peer_id] = info
    return pool


def snapshot(pool: Pool) -> dict[PeerId, Any]:
    """What can be compared of each peer: its file form and its admin-API form."""
    to_json = pool.peer_meta.to_json
    return {
        key: (peer_to_json(info, to_json), info.to_json(), info.state)
        for key, info in pool.peers.items()
    }


# -- Timestamps ---------------------------------------------------------------------------------


class ParseTimeTests(SynchronousTestCase):
    def test_octez_form(self) -> None:
        self.assertEqual(parse_time("2026-01-01T00:00:00.000-00:00"), T0)
        self.assertEqual(parse_time("2026-01-01T00:00:01.250-00:00"), T0 + 1.25)

    def test_offsets(self) -> None:
        for text in (
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00z",
            "2026-01-01t00:00:00+00:00",
            "2026-01-01T02:30:00+02:30",
            "2025-12-31T19:00:00-05:00",
            "2026-01-01 00:00:00.000000000Z",
        ):
            self.assertEqual(parse_time(text), T0, text)

    def test_fraction(self) -> None:
        self.assertEqual(parse_time("1970-01-01T00:00:00.5Z"), 0.5)
        self.assertAlmostEqual(parse_time("1970-01-01T00:00:01.123456789Z"), 1.123456789)

    def test_integers(self) -> None:
        """Seconds since the epoch: a JSON integer, or data-encoding's int64 string."""
        self.assertEqual(parse_time(1767225600), T0)
        self.assertEqual(parse_time("1767225600"), T0)
        self.assertEqual(parse_time(0), 0.0)
        self.assertEqual(parse_time(-1), -1.0)

    def test_round_trip_with_rfc3339(self) -> None:
        for seconds in (0.0, T0, T0 + 0.001, T0 + 59.999, 1e9 + 0.5, -1.5, 253402300799.0):
            self.assertEqual(rfc3339(parse_time(rfc3339(seconds))), rfc3339(seconds))

    def test_early_years(self) -> None:
        """``rfc3339`` writes years before 1000 without padding; they load."""
        seconds = parse_time("0500-06-01T00:00:00Z")
        self.assertEqual(parse_time(rfc3339(seconds)), seconds)

    def test_leap_second(self) -> None:
        self.assertEqual(parse_time("2016-12-31T23:59:60Z"), parse_time("2016-12-31T23:59:59Z"))

    def test_rejected(self) -> None:
        values: list[Any] = [
            None,
            True,
            1.5,
            [],
            {},
            "",
            "now",
            "2026-01-01",
            "2026-01-01T00:00:00",  # no offset
            "2026-01-01T00:00Z",  # no seconds
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+01:60",
            "2026-01-01T00:00:00.Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
            10**13,
            "1e9",
            "0x10",
            " 2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z\n",
            "\uff12026-01-01T00:00:00Z",  # a non-ASCII digit
        ]
        for value in values:
            self.assertRaises(ValueError, parse_time, value)


# -- One peer ----------------------------------------------------------------------------------


def identity(value: Any) -> Any:
    return value


class PeerJsonTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pool = sample_pool()
        self.full = self.pool.peers[peer_id(1)]

    def test_keys_in_octez_order(self) -> None:
        out = peer_to_json(self.full, identity)
        self.assertEqual(
            list(out),
            [
                "peer_id",
                "created",
                "trusted",
                "peer_metadata",
                "events",
                "last_failed_connection",
                "last_rejected_connection",
                "last_established_connection",
                "last_disconnection",
            ],
        )

    def test_values(self) -> None:
        out = peer_to_json(self.full, identity)
        self.assertEqual(out["peer_id"], str(peer_id(1)))
        self.assertTrue(out["peer_id"].startswith("id"))
        self.assertEqual(out["created"], "2026-01-01T00:00:00.125-00:00")
        self.assertIs(out["trusted"], True)
        self.assertEqual(out["peer_metadata"], OCTEZ_METADATA)
        self.assertEqual(
            out["events"][0],
            {
                "kind": "incoming_request",
                "timestamp": "2026-01-01T00:00:01.000-00:00",
                "addr": "::ffff:1.2.3.4",
                "port": 9732,
            },
        )
        self.assertEqual(
            out["events"][2],
            {
                "kind": "disconnection",
                "timestamp": "2026-01-01T00:00:03.000-00:00",
                "addr": "2001:db8::2",
            },
        )
        self.assertEqual(
            out["last_failed_connection"],
            [{"addr": "::ffff:5.6.7.8"}, "2026-01-01T00:00:05.500-00:00"],
        )
        self.assertEqual(
            out["last_rejected_connection"],
            [{"addr": "2001:db8::1", "port": 19732}, "2026-01-01T00:00:06.000-00:00"],
        )

    def test_trusted_and_optional_fields_omitted(self) -> None:
        out = peer_to_json(self.pool.peers[peer_id(2)], identity)
        self.assertEqual(list(out), ["peer_id", "created", "peer_metadata", "events"])
        self.assertEqual(out["events"], [])

    def test_metadata_converter(self) -> None:
        out = peer_to_json(self.full, lambda meta: {"wrapped": meta})
        self.assertEqual(out["peer_metadata"], {"wrapped": OCTEZ_METADATA})
        back = peer_from_json(out, lambda value: value["wrapped"])
        self.assertEqual(back.metadata, OCTEZ_METADATA)

    def test_event_without_connection_id_left_out(self) -> None:
        info = PeerInfo(peer_id(9), T0)
        info.log(T0, "connection_established", None)
        info.log(T0 + 1, "disconnection", V4)
        self.assertEqual(
            [event["kind"] for event in peer_to_json(info, identity)["events"]], ["disconnection"]
        )

    def test_round_trip(self) -> None:
        for info in self.pool.peers.values():
            out = peer_to_json(info, identity)
            back = peer_from_json(json.loads(json.dumps(out)), identity)
            self.assertEqual(peer_to_json(back, identity), out)
            self.assertEqual(back.to_json(), info.to_json())
            self.assertEqual(back.peer_id, info.peer_id)
            self.assertEqual(back.trusted, info.trusted)
            self.assertEqual(list(back.events), list(info.events))
            self.assertEqual(back.last_seen, info.last_seen)

    def test_loaded_peer_is_disconnected(self) -> None:
        self.full.state = Running(None, V4)
        back = peer_from_json(peer_to_json(self.full, identity), identity)
        self.assertIsInstance(back.state, Disconnected)

    def test_defaults(self) -> None:
        """``trusted`` and ``events`` may be absent; ``null`` optional fields too."""
        back = peer_from_json(
            {
                "peer_id": str(peer_id(7)),
                "created": "2026-01-01T00:00:00Z",
                "peer_metadata": {},
                "last_disconnection": None,
                "trusted": None,
                "unknown": "ignored",
            },
            identity,
        )
        self.assertFalse(back.trusted)
        self.assertEqual(list(back.events), [])
        self.assertIsNone(back.last_disconnection)
        self.assertEqual(back.created, T0)

    def test_events_bounded(self) -> None:
        """Only the last 100 events are read (Octez's ring keeps the last 100)."""
        raw = [
            {"kind": "disconnection", "timestamp": 1000 + n, "addr": "::ffff:1.2.3.4"}
            for n in range(250)
        ]
        raw[0] = {"bad": "not read"}
        back = peer_from_json(
            {"peer_id": str(peer_id(7)), "created": 0, "peer_metadata": {}, "events": raw},
            identity,
        )
        self.assertEqual(MAX_EVENTS, EVENT_RING)
        self.assertEqual(len(back.events), MAX_EVENTS)
        self.assertEqual([event.time for event in back.events], [1150.0 + n for n in range(100)])
        back.log(5000, "disconnection", V4)
        self.assertEqual(len(back.events), EVENT_RING)

    def assertBad(self, change: dict[str, Any], *fragments: str) -> None:
        value: dict[str, Any] = {
            "peer_id": str(peer_id(7)),
            "created": "2026-01-01T00:00:00.000-00:00",
            "peer_metadata": {},
        }
        value.update(change)
        value = {key: item for key, item in value.items() if item is not DROP}
        error = self.assertRaises(PeersFileError, peer_from_json, value, identity)
        self.assertIsInstance(error, ValueError)
        for fragment in fragments:
            self.assertIn(fragment, str(error))

    def test_bad_shapes(self) -> None:
        self.assertRaises(PeersFileError, peer_from_json, [], identity)
        self.assertRaises(PeersFileError, peer_from_json, "id", identity)
        self.assertBad({"peer_id": DROP}, "peer_id", "got null")
        self.assertBad({"peer_id": 12}, "peer_id", "got a number")
        self.assertBad({"peer_id": "idtnotapeerid"}, "peer_id", "bad peer id")
        # a valid Base58Check string of another kind (a public key hash prefix)
        self.assertBad({"peer_id": "tz1VSUr8wwNhLAzempoch5d6hLRiTh8Cjcjb"}, "bad peer id")
        self.assertBad({"created": DROP}, "created is missing")
        self.assertBad({"created": "yesterday"}, "created", "yesterday")
        self.assertBad({"created": 1.5}, "created")
        self.assertBad({"trusted": "yes"}, "trusted must be a boolean")
        self.assertBad({"peer_metadata": DROP}, "peer_metadata is missing")
        self.assertBad({"events": {}}, "events must be an array")
        self.assertBad({"events": [1]}, "events[0]", "must be an object")
        self.assertBad(
            {"events": [{"kind": "swap", "timestamp": 0, "addr": "::1"}]}, "unknown event kind"
        )
        self.assertBad(
            {"events": [{"kind": "disconnection", "timestamp": "x", "addr": "::1"}]},
            "events[0]",
        )
        self.assertBad(
            {"events": [{"kind": "disconnection", "timestamp": 0, "addr": "nowhere"}]},
            "bad addr",
        )
        self.assertBad(
            {"events": [{"kind": "disconnection", "timestamp": 0}]}, "addr must be a string"
        )
        self.assertBad(
            {"last_disconnection": [{"addr": "::1", "port": 70000}, 0]},
            "last_disconnection",
            "bad port",
        )
        self.assertBad({"last_disconnection": [{"addr": "::1", "port": True}, 0]}, "bad port")
        self.assertBad({"last_disconnection": [{"addr": "::1"}]}, "last_disconnection")
        self.assertBad({"last_rejected_connection": {"addr": "::1"}}, "last_rejected_connection")
        self.assertBad(
            {"last_established_connection": [{"addr": "::1"}, "soon"]},
            "last_established_connection",
        )
        self.assertBad({"last_failed_connection": ["::1", 0]}, "last_failed_connection")
        self.assertBad(
            {"last_failed_connection": [{"addr": "fe80::1%eth0"}, 0]}, "last_failed_connection"
        )

    def test_metadata_decoder_errors(self) -> None:
        def decoder(value: Any) -> Any:
            raise KeyError("responses")

        value = {"peer_id": str(peer_id(7)), "created": 0, "peer_metadata": {}}
        error = self.assertRaises(PeersFileError, peer_from_json, value, decoder)
        self.assertIn("bad peer_metadata", str(error))
        self.assertIn("responses", str(error))


#: A marker for fields to remove in :meth:`PeerJsonTests.assertBad`.
DROP: Any = object()


# -- The file ----------------------------------------------------------------------------------


class FileTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "peers.json")
        self.events = capture_events(self)

    def write(self, data: bytes | str) -> None:
        with open(self.path, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)

    def read(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read()

    def listing(self) -> list[str]:
        return sorted(os.listdir(self.directory))


class LoadSaveTests(FileTestCase):
    def test_round_trip(self) -> None:
        pool = sample_pool()
        PeersFile(self.path, pool).save()
        fresh = make_pool()
        self.assertEqual(PeersFile(self.path, fresh).load(), 5)
        self.assertEqual(list(fresh.peers), list(pool.peers))
        self.assertEqual(snapshot(fresh), snapshot(pool))
        self.assertEqual(self.listing(), ["peers.json"])
        # saving what was loaded writes the same bytes
        before = self.read()
        PeersFile(self.path, fresh).save()
        self.assertEqual(self.read(), before)

    def test_round_trip_with_metadata_codec(self) -> None:
        meta = PeerMetaConfig(
            initial=lambda: 0,
            to_json=lambda count: {"count": str(count)},
            from_json=lambda value: int(value["count"]),
        )
        pool = make_pool(peer_meta=meta)
        pool.set_peer_metadata(peer_id(1), 41)
        pool.set_peer_metadata(peer_id(2), 10**30)
        PeersFile(self.path, pool).save()
        self.assertEqual(
            [peer["peer_metadata"] for peer in json.loads(self.read())],
            [{"count": "41"}, {"count": str(10**30)}],
        )
        fresh = make_pool(peer_meta=meta)
        PeersFile(self.path, fresh).load()
        self.assertEqual(fresh.get_peer_metadata(peer_id(2)), 10**30)

    def test_format(self) -> None:
        """A JSON array of objects, Octez's keys and time format, ASCII, mode 0644."""
        PeersFile(self.path, sample_pool()).save()
        data = self.read()
        data.decode("ascii")
        document = json.loads(data)
        self.assertIsInstance(document, list)
        self.assertEqual(len(document), 5)
        by_id = {peer["peer_id"]: peer for peer in document}
        self.assertNotIn("trusted", by_id[str(peer_id(2))])
        self.assertIs(by_id[str(peer_id(1))]["trusted"], True)
        stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-00:00\Z")
        for peer in document:
            self.assertRegex(peer["created"], stamp)
            for event in peer["events"]:
                self.assertRegex(event["timestamp"], stamp)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o644)

    def test_empty_pool(self) -> None:
        PeersFile(self.path, make_pool()).save()
        self.assertEqual(json.loads(self.read()), [])
        self.assertEqual(PeersFile(self.path, make_pool()).load(), 0)

    def test_octez_document(self) -> None:
        """A file as Octez writes it (behaviour.md 12.1), written by hand."""
        first, second, third = (str(peer_id(n)) for n in (1, 2, 3))
        self.write(
            f"""[
  {{ "peer_id": "{first}",
     "created": "2026-01-01T00:00:00.000-00:00",
     "peer_metadata": {json.dumps(OCTEZ_METADATA)},
     "events": [
       {{ "kind": "incoming_request", "timestamp": "2026-01-01T00:00:01.000-00:00",
          "addr": "::ffff:1.2.3.4", "port": 9732 }},
       {{ "kind": "connection_established", "timestamp": 1767225602,
          "addr": "::ffff:1.2.3.4", "port": 9732 }},
       {{ "kind": "external_disconnection", "timestamp": "1767225700",
          "addr": "::ffff:1.2.3.4" }} ],
     "last_established_connection":
       [ {{ "addr": "::ffff:1.2.3.4", "port": 9732 }}, "2026-01-01T00:00:02.000-00:00" ],
     "last_disconnection": [ {{ "addr": "::ffff:1.2.3.4", "port": 9732 }}, "1767225700" ] }},
  {{ "peer_id": "{second}", "created": 1767225600, "trusted": false,
     "peer_metadata": {{}}, "events": [],
     "last_rejected_connection": [ {{ "addr": "2001:db8::1" }}, 1767225601 ] }},
  {{ "peer_id": "{third}", "created": "2026-01-01T01:00:00Z", "trusted": true,
     "peer_metadata": {{}} }}
]
"""
        )
        pool = make_pool()
        self.assertEqual(PeersFile(self.path, pool).load(), 3)
        one, two, three = (pool.peers[peer_id(n)] for n in (1, 2, 3))
        self.assertEqual(one.created, T0)
        self.assertFalse(one.trusted)
        self.assertEqual(one.metadata, OCTEZ_METADATA)
        self.assertEqual(
            [(event.time, event.kind, event.connection_id) for event in one.events],
            [
                (T0 + 1, "incoming_request", V4),
                (T0 + 2, "connection_established", V4),
                (T0 + 100, "external_disconnection", ConnectionId("1.2.3.4")),
            ],
        )
        self.assertEqual(one.last_established_connection, (V4, T0 + 2))
        self.assertEqual(one.last_disconnection, (V4, T0 + 100))
        self.assertIsNone(one.last_failed_connection)
        self.assertEqual(two.created, T0)
        self.assertFalse(two.trusted)
        self.assertEqual(two.last_rejected_connection, (ConnectionId("2001:db8::1"), T0 + 1))
        self.assertTrue(three.trusted)
        self.assertEqual(three.created, T0 + 3600)
        self.assertEqual(list(three.events), [])
        for info in (one, two, three):
            self.assertIsInstance(info.state, Disconnected)
        # only the first has a last_seen with a port
        self.assertEqual(list(pool.points), [Point("1.2.3.4", 9732)])

    def test_points_from_last_seen(self) -> None:
        PeersFile(self.path, sample_pool()).save()
        pool = make_pool()
        new_points: list[Any] = []
        pool.watch(new_points.append)
        PeersFile(self.path, pool).load()
        # peer 1: last_seen = last_disconnection (V4); peer 4: V6; peer 3's
        # last_seen has no port; peer 5 has only a failed connection
        self.assertEqual(set(pool.points), {Point("1.2.3.4", 9732), Point("2001:db8::1", 19732)})
        for info in pool.points.values():
            self.assertFalse(info.trusted)
            self.assertIsInstance(info.state, Disconnected)
        self.assertEqual([event.kind for event in new_points], ["new_point", "new_point"])

    def test_known_points_kept(self) -> None:
        """A point already known (e.g. trusted from the configuration) stays as it is."""
        PeersFile(self.path, sample_pool()).save()
        pool = make_pool()
        pool.register_point(Point("1.2.3.4", 9732), trusted=True)
        PeersFile(self.path, pool).load()
        self.assertTrue(pool.points[Point("1.2.3.4", 9732)].trusted)

    def test_existing_peers_win(self) -> None:
        PeersFile(self.path, sample_pool()).save()
        pool = make_pool()
        mine = pool.register_peer(peer_id(1))
        mine.metadata = {"mine": True}
        self.assertEqual(PeersFile(self.path, pool).load(), 4)
        self.assertIs(pool.peers[peer_id(1)], mine)
        self.assertEqual(mine.metadata, {"mine": True})
        self.assertEqual(len(pool.peers), 5)
        # its point (from the file's record) is not registered
        self.assertNotIn(Point("1.2.3.4", 9732), pool.points)

    def test_duplicates_last_wins(self) -> None:
        entry = {"peer_id": str(peer_id(1)), "created": 0, "peer_metadata": {"n": 1}}
        self.write(json.dumps([entry, dict(entry, peer_metadata={"n": 2})]))
        pool = make_pool()
        self.assertEqual(PeersFile(self.path, pool).load(), 1)
        self.assertEqual(pool.peers[peer_id(1)].metadata, {"n": 2})

    def test_loading_does_not_collect(self) -> None:
        """Peers are loaded whatever the table limits (as Octez); GC comes later."""
        source = make_pool(limits=Limits(max_known_peer_ids=None))
        for n in range(20):
            source.register_peer(peer_id(n))
        PeersFile(self.path, source).save()
        pool = make_pool(limits=Limits(max_known_peer_ids=(10, 5)))
        self.assertEqual(PeersFile(self.path, pool).load(), 20)
        pool.register_peer(peer_id(100))
        self.assertEqual(len(pool.peers), 5)

    def test_missing_file(self) -> None:
        pool = make_pool()
        self.assertEqual(PeersFile(self.path, pool).load(), 0)
        self.assertEqual(pool.peers, {})
        self.assertEqual(self.listing(), [])
        self.assertEqual(named(self.events, "parse_error_peers"), [])

    def test_dev_null(self) -> None:
        peers = PeersFile("/dev/null", sample_pool())
        self.assertTrue(peers.disabled)
        self.assertEqual(PeersFile("/dev/null", make_pool()).load(), 0)
        peers.save()  # nothing is written
        self.assertTrue(os.path.exists("/dev/null"))
        with open("/dev/null", "rb") as handle:
            self.assertEqual(handle.read(), b"")

    def test_unreadable(self) -> None:
        """A file that cannot be read is not damaged: the error is raised, nothing moved."""
        os.makedirs(self.path)
        self.assertRaises(OSError, PeersFile(self.path, make_pool()).load)
        self.assertEqual(self.listing(), ["peers.json"])
        self.assertTrue(os.path.isdir(self.path))

    def test_temporary_files_ignored(self) -> None:
        """Leftovers of an interrupted save are never read."""
        PeersFile(self.path, sample_pool()).save()
        for name in ("peers.json.abc123.tmp", "peers.json.tmp"):
            with open(os.path.join(self.directory, name), "wb") as handle:
                handle.write(b"[{garbage")
        pool = make_pool()
        self.assertEqual(PeersFile(self.path, pool).load(), 5)
        self.assertEqual(named(self.events, "parse_error_peers"), [])
        PeersFile(self.path, pool).save()
        self.assertIn("peers.json.tmp", self.listing())

    def test_save_logs(self) -> None:
        PeersFile(self.path, sample_pool()).save()
        [event] = named(self.events, "save_metadata")
        self.assertEqual(event["file"], self.path)
        self.assertEqual(event["log_namespace"], "txtezosp2p.p2p.pool")


class CorruptFileTests(FileTestCase):
    NOW = T0 + 3723.9  # 2026-01-01T01:02:03Z

    def load(self, data: bytes | str, **kwargs: Any) -> Pool:
        """Load ``data`` and check it was reported and moved aside intact."""
        self.write(data)
        original = self.read()
        pool = make_pool()
        peers = PeersFile(self.path, pool, wall_clock=lambda: self.NOW, **kwargs)
        self.assertEqual(peers.load(), 0)
        self.assertEqual(pool.peers, {})
        self.assertEqual(pool.points, {})
        aside = self.path + ".corrupt-20260101T010203Z"
        self.assertEqual(self.listing(), ["peers.json.corrupt-20260101T010203Z"])
        with open(aside, "rb") as handle:
            self.assertEqual(handle.read(), original)
        [event] = named(self.events, "parse_error_peers")
        self.assertEqual(event["log_level"].name, "error")
        self.assertEqual(event["path"], self.path)
        self.assertEqual(event["aside"], aside)
        self.reason = event["reason"]
        self.assertIsInstance(self.reason, str)
        return pool

    def test_invalid_json(self) -> None:
        self.load('[{"peer_id": "idt')
        self.assertIn("not JSON", self.reason)

    def test_empty_file(self) -> None:
        self.load(b"")
        self.assertIn("not JSON", self.reason)

    def test_not_utf8(self) -> None:
        self.load(b'["\xff\xfe"]')
        self.assertIn("not UTF-8", self.reason)

    def test_nan(self) -> None:
        self.load("[NaN]")

    def test_deep_nesting(self) -> None:
        self.load("[" * 100000 + "]" * 100000)

    def test_object_instead_of_array(self) -> None:
        self.load('{"peers": []}')
        self.assertIn("expected a JSON array", self.reason)

    def test_bad_peer_id(self) -> None:
        good = {"peer_id": str(peer_id(1)), "created": 0, "peer_metadata": {}}
        bad = {"peer_id": "idsomething", "created": 0, "peer_metadata": {}}
        self.load(json.dumps([good, bad]))
        self.assertIn("peer [1]", self.reason)
        self.assertIn("bad peer id", self.reason)

    def test_bad_timestamp(self) -> None:
        entry = {"peer_id": str(peer_id(1)), "created": "the day before", "peer_metadata": {}}
        self.load(json.dumps([entry]))
        self.assertIn("the day before", self.reason)

    def test_too_large(self) -> None:
        PeersFile(self.path, sample_pool()).save()
        size = len(self.read())
        self.load(self.read(), max_size=size - 1)
        self.assertIn("larger than", self.reason)

    def test_default_size_limit(self) -> None:
        self.assertEqual(peers_file.MAX_FILE_SIZE, 64 * 1024 * 1024)

    def test_names_do_not_collide(self) -> None:
        """Two damaged files in the same second: both kept."""
        for content in (b"first", b"second", b"third"):
            self.write(content)
            PeersFile(self.path, make_pool(), wall_clock=lambda: self.NOW).load()
        base = "peers.json.corrupt-20260101T010203Z"
        self.assertEqual(self.listing(), [base, base + "-1", base + "-2"])
        contents = []
        for name in self.listing():
            with open(os.path.join(self.directory, name), "rb") as handle:
                contents.append(handle.read())
        self.assertEqual(contents, [b"first", b"second", b"third"])

    def test_save_after_corrupt(self) -> None:
        """The next save writes a fresh file; the damaged one stays aside."""
        pool = self.load("not json")
        pool.register_peer(peer_id(1))
        PeersFile(self.path, pool).save()
        self.assertEqual(len(self.listing()), 2)
        self.assertEqual(PeersFile(self.path, make_pool()).load(), 1)

    def test_move_aside_fails(self) -> None:
        """The file is reported and stays where it is; nothing is loaded."""
        self.write(b"garbage")

        def rename(*args: Any) -> None:
            raise PermissionError(13, "Permission denied")

        self.patch(vars(peers_file)["os"], "rename", rename)
        pool = make_pool()
        self.assertEqual(PeersFile(self.path, pool).load(), 0)
        self.assertEqual(self.read(), b"garbage")
        [event] = named(self.events, "parse_error_peers")
        self.assertIsNone(event["aside"])
        self.assertIn("Permission denied", event["problem"])


class AtomicSaveTests(FileTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pool = sample_pool()
        self.peers = PeersFile(self.path, self.pool)
        self.peers.save()
        self.before = self.read()
        self.pool.register_peer(peer_id(99))

    def assertOldFileIntact(self) -> None:
        self.assertEqual(self.read(), self.before)
        fresh = make_pool()
        self.assertEqual(PeersFile(self.path, fresh).load(), 5)
        self.assertNotIn(peer_id(99), fresh.peers)

    def fail_in(self, name: str, error: OSError) -> MonkeyPatcher:
        def raiser(*args: object, **kwargs: object) -> None:
            raise error

        patcher: MonkeyPatcher = self.patch(FILES_OS, name, raiser)
        return patcher

    def assertSaveFails(self, error: type[Exception] = OSError) -> None:
        self.assertRaises(error, self.peers.save)
        [event] = named(self.events, "save_error_peers")
        self.assertEqual(event["log_level"].name, "error")
        self.assertEqual(event["file"], self.path)

    def test_replace_fails(self) -> None:
        self.fail_in("replace", OSError(28, "No space left on device"))
        self.assertSaveFails()
        self.assertIn("No space left", named(self.events, "save_error_peers")[0]["error"])
        self.assertOldFileIntact()
        self.assertEqual(self.listing(), ["peers.json"])

    def test_fsync_fails(self) -> None:
        self.fail_in("fsync", OSError(5, "Input/output error"))
        self.assertSaveFails()
        self.assertOldFileIntact()
        self.assertEqual(self.listing(), ["peers.json"])

    def test_crash_after_partial_write(self) -> None:
        """A writer that dies after writing half a temporary file."""

        def half_write(path: str, data: bytes, mode: int = 0o644) -> None:
            with open(path + ".partial.tmp", "wb") as handle:
                handle.write(data[: len(data) // 2])
            raise OSError(5, "Input/output error")

        self.patch(peers_file, "atomic_write", half_write)
        self.assertSaveFails()
        self.assertOldFileIntact()

    def test_recovers(self) -> None:
        patcher = self.fail_in("replace", OSError(28, "No space left on device"))
        self.assertSaveFails()
        patcher.restore()
        self.peers.save()
        fresh = make_pool()
        self.assertEqual(PeersFile(self.path, fresh).load(), 6)


# -- A process killed while saving -----------------------------------------------------------

CHILD = """
import os
import sys
from twisted.internet.task import Clock
from txtezosp2p.acl import ACL
from txtezosp2p.wire.ids import ConnectionId, PeerId
from txtezosp2p.limits import Limits
from txtezosp2p.peers_file import PeersFile
from txtezosp2p.pool import Pool

path, count, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clock = Clock()
clock.advance(1767225600)
pool = Pool(clock, ACL(clock, Limits(ip_greylist_size_in_kilobytes=1)),
            limits=Limits(max_known_peer_ids=None))
for n in range(count):
    info = pool.register_peer(PeerId(n.to_bytes(4, "big") * 4))
    where = ConnectionId("10.%d.%d.1" % (n // 256, n % 256), 9732)
    for k in range(100):
        info.log(1767225600 + k, "connection_established", where)
    info.last_established_connection = (where, 1767225600 + n)

generation = 0


def announce(kind):
    sys.stdout.write("%s %d\\n" % (kind, generation))
    sys.stdout.flush()


class ChunkedWriter:
    # the temporary file as atomic_write sees it: written in 64 KiB chunks,
    # the parent told once a quarter of the data is in the file; at
    # generation "pause", wait there for the parent (which kills us)
    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self.handle.__exit__(*exc_info)

    def write(self, data):
        chunk = 65536
        for start in range(0, len(data), chunk):
            self.handle.write(data[start:start + chunk])
            self.handle.flush()
            if start <= len(data) // 4 < start + chunk:
                announce("writing")
                if generation == pause:
                    announce("paused")
                    sys.stdin.readline()

    def flush(self):
        self.handle.flush()

    def fileno(self):
        return self.handle.fileno()


real_fdopen = os.fdopen
os.fdopen = lambda fd, *args, **kwargs: ChunkedWriter(real_fdopen(fd, *args, **kwargs))
peers = PeersFile(path, pool)
while True:
    generation += 1
    for info in pool.peers.values():
        info.metadata = {"generation": generation}
    peers.save()
    announce("saved")
"""


class CrashTests(SynchronousTestCase):
    #: 300 peers with 100 events each: a file of about 5 MB, a save of a
    #: few hundred milliseconds.
    PEERS = 300

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "peers.json")
        self.script = os.path.join(self.directory, "child.py")
        with open(self.script, "w") as handle:
            handle.write(CHILD)

    def temporary_files(self) -> list[str]:
        names = os.listdir(self.directory)
        self.assertEqual([name for name in names if ".corrupt-" in name], [])
        temporary = [name for name in names if name.endswith(".tmp")]
        self.assertEqual(sorted(set(names) - set(temporary)), ["child.py", "peers.json"])
        for name in temporary:
            self.assertTrue(name.startswith("peers.json."), name)
        return temporary

    def assertComplete(self, generations: tuple[int, ...]) -> int:
        """The file loads whole, every peer of one of ``generations``; returns it."""
        pool = make_pool(limits=Limits(max_known_peer_ids=None))
        self.assertEqual(PeersFile(self.path, pool).load(), self.PEERS)
        found = {info.metadata["generation"] for info in pool.peers.values()}
        self.assertEqual(len(found), 1, found)
        generation: int = found.pop()
        self.assertIn(generation, generations)
        self.assertEqual(len(pool.points), self.PEERS)
        return generation

    def test_kill_while_saving(self) -> None:
        """
        A child process saves in a tight loop and is killed with SIGKILL,
        either as soon as it has written a quarter of the temporary file
        (the rest of the write, the fsync or the rename are under way) or
        just after a save (it is encoding the next one).  Each time the file
        loads completely, all of one generation: the last one saved or the
        next.  Temporary files may stay behind; they are never read.
        """
        for attempt in range(6):
            phase = ("writing", "saved")[attempt % 2]
            saved = self.run_and_kill(saves=1 + attempt % 3, phase=phase)
            self.assertComplete((saved, saved + 1))
            self.temporary_files()

    def test_kill_in_the_middle_of_the_write(self) -> None:
        """
        The child stops with a quarter of its temporary file written and is
        killed there: the previous file is intact, the partial temporary file
        stays and is not taken for the real one.
        """
        saved = self.run_and_kill(saves=2, phase="paused", pause=3)
        self.assertEqual(saved, 2)
        self.assertEqual(self.assertComplete((2,)), 2)
        [name] = self.temporary_files()
        with open(os.path.join(self.directory, name), "rb") as handle:
            partial = handle.read()
        with open(self.path, "rb") as handle:
            whole = handle.read()
        self.assertTrue(0 < len(partial) < len(whole), (len(partial), len(whole)))
        self.assertRaises(ValueError, json.loads, partial)
        # a new run loads the same file and saves over it; the leftover stays aside
        saved = self.run_and_kill(saves=1, phase="saved")
        self.assertComplete((saved, saved + 1))
        self.assertIn(name, self.temporary_files())

    def test_leftovers_removed_at_start(self) -> None:
        """
        The service removes, when it starts, the temporary files of writers
        that were killed; then loads the intact file.
        """
        self.run_and_kill(saves=2, phase="paused", pause=3)
        self.run_and_kill(saves=1, phase="paused", pause=2)
        self.assertEqual(len(self.temporary_files()), 2)
        clock = Clock()
        pool = make_pool(clock, limits=Limits(max_known_peer_ids=None))
        service = PeersFileService(PeersFile(self.path, pool), clock, interval=None)
        service.startService()
        self.assertEqual(self.temporary_files(), [])
        self.assertEqual(len(pool.peers), self.PEERS)
        service.stopService()

    def run_and_kill(self, saves: int, phase: str, pause: int = 0) -> int:
        """
        Run the child until it has saved ``saves`` times, then kill it at
        its next line of kind ``phase``; returns the last generation saved.
        """
        child = subprocess.Popen(
            [sys.executable, self.script, self.path, str(self.PEERS), str(pause)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # a watchdog, in case the child hangs: no line would ever come
        watchdog = threading.Timer(120.0, child.kill)
        watchdog.start()
        try:
            assert child.stdout is not None
            saved = 0
            while True:
                line = child.stdout.readline()
                if not line:
                    assert child.stderr is not None
                    self.fail(f"child ended: {child.stderr.read().decode(errors='replace')}")
                kind, number = line.split()
                if kind == b"saved":
                    saved = int(number)
                if saved >= saves and kind == phase.encode("ascii"):
                    break
            child.send_signal(signal.SIGKILL)
            child.wait()
        finally:
            watchdog.cancel()
            if child.poll() is None:
                child.kill()
                child.wait()
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
        self.assertEqual(child.returncode, -signal.SIGKILL)
        return saved


# -- The service -------------------------------------------------------------------------------


class CountingPeersFile(PeersFile):
    """Counts loads and saves; ``errors`` are raised by the next saves."""

    def __init__(self, path: str, pool: Pool) -> None:
        super().__init__(path, pool)
        self.loads = 0
        self.saves: list[float] = []
        self.errors: list[Exception] = []

    def load(self) -> int:
        self.loads += 1
        return super().load()

    def save(self) -> None:
        self.saves.append(self.pool.now())
        if self.errors:
            raise self.errors.pop(0)
        super().save()


class ServiceTests(FileTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()
        self.pool = make_pool(self.clock)
        self.peers = CountingPeersFile(self.path, self.pool)

    def service(self, **kwargs: Any) -> PeersFileService:
        return PeersFileService(self.peers, self.clock, **kwargs)

    def test_load_on_start(self) -> None:
        PeersFile(self.path, sample_pool()).save()
        service = self.service()
        service.startService()
        self.assertTrue(service.running)
        self.assertEqual(self.peers.loads, 1)
        self.assertEqual(len(self.pool.peers), 5)
        self.assertEqual(self.peers.saves, [])
        service.stopService()

    def test_no_load(self) -> None:
        PeersFile(self.path, sample_pool()).save()
        service = self.service(load_on_start=False)
        service.startService()
        self.assertEqual(self.peers.loads, 0)
        self.assertEqual(self.pool.peers, {})
        service.stopService()

    def test_periodic_saves(self) -> None:
        service = self.service(interval=60.0)
        service.startService()
        self.clock.advance(59)
        self.assertEqual(self.peers.saves, [])
        self.assertFalse(os.path.exists(self.path))
        self.pool.register_peer(peer_id(1))
        self.clock.advance(1)
        self.assertEqual(self.peers.saves, [60.0])
        self.assertEqual(len(json.loads(self.read())), 1)
        self.pool.register_peer(peer_id(2))
        self.clock.pump([60, 60])
        self.assertEqual(self.peers.saves, [60.0, 120.0, 180.0])
        self.assertEqual(len(json.loads(self.read())), 2)
        service.stopService()
        self.assertEqual(self.peers.saves, [60.0, 120.0, 180.0, 180.0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_default_interval(self) -> None:
        service = self.service()
        self.assertEqual(service.interval, 300.0)
        service.startService()
        self.clock.advance(300)
        self.assertEqual(self.peers.saves, [300.0])
        service.stopService()

    def test_save_on_stop(self) -> None:
        service = self.service()
        service.startService()
        self.pool.register_peer(peer_id(1))
        self.clock.advance(10)
        service.stopService()
        self.assertFalse(service.running)
        self.assertEqual(self.peers.saves, [10.0])
        self.assertEqual(PeersFile(self.path, make_pool()).load(), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_interval(self) -> None:
        service = self.service(interval=None)
        service.startService()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10**6)
        self.assertEqual(self.peers.saves, [])
        service.stopService()
        self.assertEqual(self.peers.saves, [10.0**6])

    def test_bad_interval(self) -> None:
        self.assertRaises(ValueError, self.service, interval=0)
        self.assertRaises(ValueError, self.service, interval=-1.0)

    def test_error_during_periodic_save(self) -> None:
        """An OSError is logged by the save; the loop goes on."""
        self.pool.register_peer(peer_id(1))
        service = self.service(interval=60.0)
        service.startService()
        patcher = self.patch(peers_file, "atomic_write", self.failing_write)
        self.clock.advance(60)
        self.assertEqual(len(named(self.events, "save_error_peers")), 1)
        self.assertFalse(os.path.exists(self.path))
        patcher.restore()
        self.clock.advance(60)
        self.assertEqual(self.peers.saves, [60.0, 120.0])
        self.assertEqual(PeersFile(self.path, make_pool()).load(), 1)
        service.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    @staticmethod
    def failing_write(path: str, data: bytes, mode: int = 0o644) -> None:
        raise OSError(28, "No space left on device")

    def test_unexpected_error_during_periodic_save(self) -> None:
        """Any other error is logged as a failure; the loop goes on."""
        service = self.service(interval=60.0)
        service.startService()
        self.peers.errors.append(RuntimeError("metadata encoder broke"))
        self.clock.advance(60)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        [event] = named(self.events, "save_error_peers")
        self.assertEqual(event["log_level"].name, "critical")
        self.clock.advance(60)
        self.assertEqual(self.peers.saves, [60.0, 120.0])
        self.assertTrue(os.path.exists(self.path))
        service.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_error_on_stop(self) -> None:
        """A failing final save is logged, not raised."""
        service = self.service(interval=60.0)
        service.startService()
        self.patch(peers_file, "atomic_write", self.failing_write)
        service.stopService()
        self.assertEqual(len(named(self.events, "save_error_peers")), 1)
        self.peers.errors.append(RuntimeError("again"))
        service.startService()
        service.stopService()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_restart(self) -> None:
        service = self.service(interval=60.0)
        service.startService()
        service.stopService()
        service.startService()
        self.clock.advance(60)
        self.assertEqual(self.peers.saves, [0.0, 60.0])
        service.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_corrupt_file_on_start(self) -> None:
        """A damaged file does not stop the service from starting."""
        self.write(b"{")
        service = self.service()
        service.startService()
        self.assertTrue(service.running)
        self.assertEqual(len(named(self.events, "parse_error_peers")), 1)
        service.stopService()
        self.assertEqual(len([name for name in self.listing() if ".corrupt-" in name]), 1)
        self.assertEqual(json.loads(self.read()), [])

    def test_unreadable_file_on_start(self) -> None:
        """A file that cannot be read stops the start: it must not be overwritten."""
        os.makedirs(self.path)
        service = self.service()
        self.assertRaises(OSError, service.startService)
        self.assertFalse(service.running)
        self.assertEqual(self.clock.getDelayedCalls(), [])
