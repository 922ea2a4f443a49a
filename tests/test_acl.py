# -*- test-case-name: tests.test_acl -*-
"""
The ACL (behaviour.md section 6): the counting Bloom filter of the IP
greylist (sizes, countdown, false positives, a property test against a model
of its cells), the bounded FIFO set, and the ACL service on a simulated
clock (bans against greylists, expiry timing, display list, clearing, the
cleanup loop surviving an error).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

import tests.helpers  # noqa: F401  (loads the hypothesis profile)
from tests.helpers import capture_events
from txtezosp2p.acl import ACL, FifoSet, IPGreylist, countdown_table
from txtezosp2p.limits import Limits
from txtezosp2p.wire.ids import PeerId, to_ipv6

DELAY = 86400.0
PERIOD = DELAY / 16


def peer(n: int) -> PeerId:
    return PeerId(n.to_bytes(16, "big"))


def random_ips(rng: random.Random, count: int) -> list[ipaddress.IPv6Address]:
    out: list[ipaddress.IPv6Address] = []
    for _ in range(count):
        if rng.random() < 0.5:
            out.append(to_ipv6(ipaddress.IPv4Address(rng.getrandbits(32))))
        else:
            out.append(ipaddress.IPv6Address(rng.getrandbits(128)))
    return out


def small_acl(clock: Clock, **changes: Any) -> ACL:
    """An ACL with a small filter (the size does not matter for most tests)."""
    changes.setdefault("ip_greylist_size_in_kilobytes", 16)
    return ACL(clock, Limits(**changes))


# -- Bloom filter ---------------------------------------------------------------------------------


class IPGreylistTests(SynchronousTestCase):
    def test_default_size(self) -> None:
        """2048 KiB nominal: 2**23 cells of 4 bits, 4 MiB."""
        bloom = IPGreylist()
        self.assertEqual(bloom.index_bits, 23)
        self.assertEqual(bloom.cells, 8_388_608)
        self.assertEqual(bloom.nbytes, 4 * 1024 * 1024)
        self.assertTrue(all(0 <= i < bloom.cells for i in bloom.indices("1.2.3.4")))

    def test_sizes(self) -> None:
        """Cells = 2**bit_length(size * 8192 // 4), memory = cells / 2."""
        for size, bits in [(0, 0), (1, 12), (2, 13), (3, 13), (4, 14), (1000, 21), (1024, 22)]:
            bloom = IPGreylist(size)
            self.assertEqual((size, bloom.index_bits), (size, bits))
            self.assertEqual(bloom.cells, 1 << bits)
            self.assertEqual(bloom.nbytes, max(1, bloom.cells // 2))

    def test_bad_sizes(self) -> None:
        self.assertRaises(ValueError, IPGreylist, -1)
        # 5 indices of 52 bits do not fit in a 256-bit digest
        self.assertRaises(ValueError, IPGreylist, 1 << 41)

    def test_add_contains_remove(self) -> None:
        bloom = IPGreylist(1)
        self.assertFalse(bloom.contains("1.2.3.4"))
        bloom.add("1.2.3.4")
        self.assertTrue(bloom.contains("1.2.3.4"))
        self.assertIn("1.2.3.4", bloom)
        self.assertEqual({bloom.counter(i) for i in bloom.indices("1.2.3.4")}, {15})
        bloom.add("2001:db8::1")
        self.assertTrue(bloom.contains(ipaddress.IPv6Address("2001:db8::1")))
        bloom.remove("1.2.3.4")
        self.assertFalse(bloom.contains("1.2.3.4"))
        self.assertEqual({bloom.counter(i) for i in bloom.indices("1.2.3.4")}, {0})
        bloom.clear()
        self.assertFalse(bloom.contains("2001:db8::1"))

    def test_ipv4_is_ipv4_mapped(self) -> None:
        """An IPv4 address and its IPv4-mapped IPv6 form are one entry."""
        bloom = IPGreylist(1)
        v4 = ipaddress.IPv4Address("10.0.0.7")
        mapped = ipaddress.IPv6Address("::ffff:10.0.0.7")
        self.assertEqual(bloom.indices(v4), bloom.indices(mapped))
        self.assertEqual(bloom.indices("10.0.0.7"), bloom.indices("[::ffff:10.0.0.7]"))
        bloom.add(v4)
        self.assertTrue(bloom.contains(mapped))
        bloom.remove("::ffff:10.0.0.7")
        self.assertFalse(bloom.contains(v4))

    def test_indices_are_digest_bits(self) -> None:
        """Index i is bits [i*b, (i+1)*b) of the little-endian Blake2b-256 digest."""
        import hashlib

        bloom = IPGreylist(1)
        packed = to_ipv6("192.168.1.1").packed
        digest = hashlib.blake2b(packed, digest_size=32).digest()
        number = int.from_bytes(digest, "little")
        expected = tuple((number >> (12 * i)) & 0xFFF for i in range(5))
        self.assertEqual(bloom.indices("192.168.1.1"), expected)

    def test_countdown_table(self) -> None:
        """Both nibbles of a byte count down independently and stop at zero."""
        table = countdown_table()
        self.assertEqual(len(table), 256)
        for high in range(16):
            for low in range(16):
                value = table[(high << 4) | low]
                self.assertEqual(value >> 4, max(high - 1, 0))
                self.assertEqual(value & 0x0F, max(low - 1, 0))

    def test_expiry_after_15_countdowns(self) -> None:
        bloom = IPGreylist(1)
        bloom.add("1.2.3.4")
        for _ in range(14):
            bloom.countdown()
        self.assertTrue(bloom.contains("1.2.3.4"))
        self.assertEqual({bloom.counter(i) for i in bloom.indices("1.2.3.4")}, {1})
        bloom.countdown()
        self.assertFalse(bloom.contains("1.2.3.4"))
        bloom.countdown()
        self.assertEqual({bloom.counter(i) for i in bloom.indices("1.2.3.4")}, {0})

    def test_countdown_leaves_zero_cells(self) -> None:
        """Zero cells stay zero, even next to a non-zero cell in the same byte."""
        bloom = IPGreylist(1)
        bloom.add("1.2.3.4")
        mine = set(bloom.indices("1.2.3.4"))
        bloom.countdown()
        for index in range(bloom.cells):
            self.assertEqual(bloom.counter(index), 14 if index in mine else 0)
        # re-adding resets to 15; cells added later are counted down separately
        bloom.add("5.6.7.8")
        bloom.countdown()
        for index in bloom.indices("5.6.7.8"):
            self.assertEqual(bloom.counter(index), 14)

    def test_countdown_default_size_uses_translate(self) -> None:
        """
        The full-size countdown goes through ``bytearray.translate`` (C speed),
        and touches every byte of the 4 MiB.
        """
        bloom = IPGreylist()
        calls: list[int] = []

        class Spy(bytearray):
            def translate(self, table: Any, delete: bytes = b"") -> bytearray:
                calls.append(len(self))
                return bytearray(bytearray.translate(self, table, delete))

        bloom._data = Spy(bloom._data)
        bloom.add("1.2.3.4")
        bloom.countdown()
        self.assertEqual(calls, [4 * 1024 * 1024])
        self.assertTrue(bloom.contains("1.2.3.4"))

    def test_countdown_of_empty_filter_is_free(self) -> None:
        """Fifteen periods after the last add, nothing is left to count down."""
        bloom = IPGreylist(1)
        before = bloom._data
        bloom.countdown()
        self.assertIs(bloom._data, before)
        bloom.add("1.2.3.4")
        for _ in range(15):
            bloom.countdown()
        after = bloom._data
        self.assertEqual(after, bytearray(bloom.nbytes))
        bloom.countdown()
        self.assertIs(bloom._data, after)

    def test_false_positives_are_rare(self) -> None:
        """1000 greylisted addresses; fewer than 1% of 10 000 others look greylisted."""
        rng = random.Random(20240613)
        bloom = IPGreylist()
        added = random_ips(rng, 1000)
        for ip in added:
            bloom.add(ip)
        self.assertTrue(all(bloom.contains(ip) for ip in added))
        added_set = set(added)
        others = [ip for ip in random_ips(rng, 10000) if ip not in added_set]
        false_positives = sum(bloom.contains(ip) for ip in others)
        self.assertLess(false_positives, len(others) // 100)

    def test_remove_may_ungreylist_a_neighbour(self) -> None:
        """With a single cell (size 0) every address shares it: removing one removes all."""
        bloom = IPGreylist(0)
        bloom.add("1.1.1.1")
        self.assertTrue(bloom.contains("2.2.2.2"))  # a false positive
        bloom.add("2.2.2.2")
        bloom.remove("1.1.1.1")
        self.assertFalse(bloom.contains("2.2.2.2"))


_OPS = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 7)),
    st.tuples(st.just("remove"), st.integers(0, 7)),
    st.tuples(st.just("countdown"), st.just(0)),
    st.tuples(st.just("clear"), st.just(0)),
)


class IPGreylistPropertyTests(SynchronousTestCase):
    @given(
        size=st.sampled_from([0, 1]),
        pool=st.lists(st.ip_addresses(), min_size=8, max_size=8, unique_by=to_ipv6),
        ops=st.lists(_OPS, max_size=60),
    )
    def test_model(
        self, size: int, pool: list[ipaddress.IPv4Address | ipaddress.IPv6Address], ops: list[Any]
    ) -> None:
        """
        Against a model of the cells (index -> counter): counters and
        ``contains`` agree after every operation.  And, guaranteed whatever
        the collisions: an address added, then not removed, cleared or
        hit by the removal of an address sharing a cell, is contained for at
        least 14 countdowns; an address never added is contained only if
        each of its cells belongs to some added address.
        """
        bloom = IPGreylist(size)
        cells: dict[int, int] = {}
        indices = [bloom.indices(ip) for ip in pool]
        age: list[int | None] = [None] * len(pool)
        ever_added: set[int] = set()
        for op, k in ops:
            if op == "add":
                for index in indices[k]:
                    cells[index] = 15
                bloom.add(pool[k])
                age[k] = 0
                ever_added.add(k)
            elif op == "remove":
                for index in indices[k]:
                    cells[index] = 0
                bloom.remove(pool[k])
                hit = set(indices[k])
                for j in range(len(pool)):
                    if hit & set(indices[j]):
                        age[j] = None
            elif op == "countdown":
                cells = {index: max(value - 1, 0) for index, value in cells.items()}
                bloom.countdown()
                age = [None if a is None else a + 1 for a in age]
            else:
                cells = {}
                bloom.clear()
                age = [None] * len(pool)
                ever_added = set()
            for j, ip in enumerate(pool):
                for index in indices[j]:
                    self.assertEqual(bloom.counter(index), cells.get(index, 0))
                model = all(cells.get(index, 0) > 0 for index in indices[j])
                self.assertEqual(bloom.contains(ip), model)
                a = age[j]
                if a is not None and a <= 14:
                    self.assertTrue(bloom.contains(ip))
                if j not in ever_added and bloom.contains(ip):
                    covered = set().union(*(set(indices[i]) for i in ever_added))
                    self.assertTrue(set(indices[j]) <= covered)
        if len(ops) >= 15 and all(op == "countdown" for op, _ in ops[-15:]):
            # nothing added during the last 15 countdowns: nothing left
            self.assertFalse(any(bloom.contains(ip) for ip in pool))


# -- FIFO set ------------------------------------------------------------------------------------


class FifoSetTests(SynchronousTestCase):
    def test_insertion_order_and_eviction(self) -> None:
        fifo: FifoSet[int] = FifoSet(3)
        self.assertFalse(fifo.add(1))
        self.assertFalse(fifo.add(2))
        self.assertFalse(fifo.add(3))
        self.assertEqual(list(fifo), [1, 2, 3])
        self.assertTrue(fifo.full())
        self.assertTrue(fifo.add(4))  # evicts the oldest
        self.assertEqual(list(fifo), [2, 3, 4])
        self.assertNotIn(1, fifo)
        self.assertEqual(len(fifo), 3)

    def test_refresh_on_re_add(self) -> None:
        """Re-adding moves a member to the newest position, evicting nothing."""
        fifo = FifoSet(3, [1, 2, 3])
        self.assertFalse(fifo.add(1))
        self.assertEqual(list(fifo), [2, 3, 1])
        fifo.add(4)
        self.assertEqual(list(fifo), [3, 1, 4])

    def test_discard_and_clear(self) -> None:
        fifo = FifoSet(3, "abc")
        fifo.discard("b")
        fifo.discard("z")
        self.assertEqual(list(fifo), ["a", "c"])
        self.assertFalse(fifo.full())
        fifo.add("d")
        self.assertEqual(list(fifo), ["a", "c", "d"])
        fifo.clear()
        self.assertEqual(list(fifo), [])
        self.assertEqual(len(fifo), 0)

    def test_capacity(self) -> None:
        fifo = FifoSet(1000, range(5000))
        self.assertEqual(list(fifo), list(range(4000, 5000)))
        empty: FifoSet[int] = FifoSet(0)
        self.assertTrue(empty.add(1))
        self.assertEqual(list(empty), [])
        self.assertRaises(ValueError, FifoSet, -1)

    def test_iteration_while_discarding(self) -> None:
        fifo = FifoSet(5, range(5))
        for member in fifo:
            if member % 2:
                fifo.discard(member)
        self.assertEqual(list(fifo), [0, 2, 4])

    @given(st.integers(1, 6), st.lists(st.integers(0, 9), max_size=40))
    def test_model(self, capacity: int, adds: list[int]) -> None:
        """Same as a list model: remove if present, append, drop the head past capacity."""
        fifo: FifoSet[int] = FifoSet(capacity)
        model: list[int] = []
        for x in adds:
            if x in model:
                model.remove(x)
            model.append(x)
            del model[:-capacity]
            fifo.add(x)
            self.assertEqual(list(fifo), model)


# -- ACL -------------------------------------------------------------------------------------------


class ACLTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.acl = small_acl(self.clock)

    def test_defaults(self) -> None:
        """Default limits: 2048-entry display list, 1023 peers, 5400 s period."""
        acl = ACL(self.clock)
        self.assertEqual(acl.ip_greylist.cells, 1 << 23)
        self.assertEqual(acl.ip_greylist_display.capacity, 2048)
        self.assertEqual(acl.peer_greylist.capacity, 1023)
        self.assertEqual(acl.period, 5400.0)
        self.assertRaises(ValueError, small_acl, self.clock, ip_greylist_cleanup_delay=0.0)

    def test_ban_addr(self) -> None:
        acl = self.acl
        acl.ban_addr("1.2.3.4")
        self.assertTrue(acl.banned_addr("1.2.3.4"))
        self.assertTrue(acl.banned_addr("::ffff:1.2.3.4"))
        self.assertTrue(acl.blacklisted_addr(ipaddress.IPv4Address("1.2.3.4")))
        self.assertFalse(acl.greylisted_addr("1.2.3.4"))
        self.assertEqual(acl.greylisted_ips(), [])
        self.assertEqual(acl.banned_ips(), [to_ipv6("1.2.3.4")])
        self.assertFalse(acl.banned_addr("1.2.3.5"))

    def test_greylist_addr(self) -> None:
        acl = self.acl
        acl.greylist_addr("2001:db8::1")
        self.assertTrue(acl.banned_addr("2001:db8::1"))
        self.assertTrue(acl.greylisted_addr("2001:db8::1"))
        self.assertFalse(acl.blacklisted_addr("2001:db8::1"))
        self.assertEqual(acl.banned_ips(), [])
        self.assertEqual(acl.greylisted_ips(), [ipaddress.IPv6Address("2001:db8::1")])

    def test_unban_addr_removes_from_all_three(self) -> None:
        acl = self.acl
        acl.ban_addr("1.2.3.4")
        acl.greylist_addr("1.2.3.4")
        acl.greylist_addr("5.6.7.8")
        acl.unban_addr(ipaddress.IPv4Address("1.2.3.4"))
        self.assertFalse(acl.banned_addr("1.2.3.4"))
        self.assertFalse(acl.blacklisted_addr("1.2.3.4"))
        self.assertFalse(acl.greylisted_addr("1.2.3.4"))
        self.assertEqual(acl.greylisted_ips(), [to_ipv6("5.6.7.8")])
        self.assertTrue(acl.banned_addr("5.6.7.8"))

    def test_peers(self) -> None:
        acl = self.acl
        acl.ban_peer(peer(1))
        acl.greylist_peer(peer(2))
        self.assertTrue(acl.banned_peer(peer(1)))
        self.assertTrue(acl.blacklisted_peer(peer(1)))
        self.assertFalse(acl.greylisted_peer(peer(1)))
        self.assertTrue(acl.banned_peer(peer(2)))
        self.assertFalse(acl.blacklisted_peer(peer(2)))
        self.assertTrue(acl.greylisted_peer(peer(2)))
        self.assertFalse(acl.banned_peer(peer(3)))
        self.assertEqual(acl.banned_peers(), [peer(1)])
        self.assertEqual(acl.greylisted_peers(), [peer(2)])

    def test_unban_peer_removes_from_both(self) -> None:
        acl = self.acl
        acl.ban_peer(peer(1))
        acl.greylist_peer(peer(1))
        acl.unban_peer(peer(1))
        self.assertFalse(acl.banned_peer(peer(1)))
        self.assertEqual(acl.banned_peers(), [])
        self.assertEqual(acl.greylisted_peers(), [])

    def test_peer_greylist_is_bounded(self) -> None:
        acl = small_acl(self.clock, peer_greylist_size=3)
        for n in range(4):
            acl.greylist_peer(peer(n))
        acl.greylist_peer(peer(1))  # refreshed
        acl.greylist_peer(peer(4))
        self.assertEqual(acl.greylisted_peers(), [peer(3), peer(1), peer(4)])
        self.assertFalse(acl.banned_peer(peer(0)))
        self.assertFalse(acl.banned_peer(peer(2)))

    def test_display_list_capacity_and_not_reliable_since(self) -> None:
        """The display list holds ``ip_greylist_size_in_kilobytes`` entries."""
        acl = small_acl(self.clock, ip_greylist_size_in_kilobytes=3)
        self.clock.advance(1000)
        for n in range(3):
            acl.greylist_addr(f"10.0.0.{n}")
        acl.greylist_addr("10.0.0.0")  # refresh while full: nothing dropped
        self.assertIsNone(acl.not_reliable_since)
        self.assertEqual(acl.greylisted_ips(), [to_ipv6(f"10.0.0.{n}") for n in (1, 2, 0)])
        self.clock.advance(500)
        acl.greylist_addr("10.0.0.3")  # first overflow
        self.assertEqual(acl.not_reliable_since, 1500.0)
        self.assertEqual(acl.greylisted_ips(), [to_ipv6(f"10.0.0.{n}") for n in (2, 0, 3)])
        # dropped from display, still greylisted in the filter
        self.assertTrue(acl.greylisted_addr("10.0.0.1"))
        self.clock.advance(500)
        acl.greylist_addr("10.0.0.4")
        self.assertEqual(acl.not_reliable_since, 1500.0)

    def test_greylist_ips_json(self) -> None:
        acl = small_acl(self.clock, ip_greylist_size_in_kilobytes=2)
        self.assertEqual(acl.greylist_ips_json(), {"ips": [], "not_reliable_since": None})
        acl.greylist_addr("1.2.3.4")
        acl.greylist_addr("2001:db8::1")
        self.assertEqual(
            acl.greylist_ips_json(),
            {"ips": ["::ffff:1.2.3.4", "2001:db8::1"], "not_reliable_since": None},
        )
        self.clock.advance(1_700_000_000.25)
        acl.greylist_addr("2001:db8::2")
        self.assertEqual(
            acl.greylist_ips_json(),
            {
                "ips": ["2001:db8::1", "2001:db8::2"],
                "not_reliable_since": "2023-11-14T22:13:20.250-00:00",
            },
        )

    def _fill(self, acl: ACL) -> None:
        acl.ban_addr("1.1.1.1")
        acl.ban_peer(peer(1))
        acl.greylist_addr("2.2.2.2")
        acl.greylist_peer(peer(2))
        acl.not_reliable_since = 12.0

    def test_clear_greylists_keeps_bans(self) -> None:
        acl = self.acl
        self._fill(acl)
        acl.clear_greylists()
        self.assertTrue(acl.banned_addr("1.1.1.1"))
        self.assertTrue(acl.banned_peer(peer(1)))
        self.assertFalse(acl.banned_addr("2.2.2.2"))
        self.assertFalse(acl.banned_peer(peer(2)))
        self.assertEqual(acl.greylisted_ips(), [])
        self.assertEqual(acl.greylisted_peers(), [])
        self.assertIsNone(acl.not_reliable_since)

    def test_clear_all(self) -> None:
        acl = self.acl
        self._fill(acl)
        acl.clear_all()
        for ip in ("1.1.1.1", "2.2.2.2"):
            self.assertFalse(acl.banned_addr(ip))
        for p in (peer(1), peer(2)):
            self.assertFalse(acl.banned_peer(p))
        self.assertEqual(acl.banned_ips(), [])
        self.assertEqual(acl.banned_peers(), [])
        self.assertIsNone(acl.not_reliable_since)

    def test_greylisting_is_logged(self) -> None:
        events = capture_events(self)
        self.acl.greylist_addr("1.2.3.4")
        self.acl.greylist_peer(peer(7))
        mine = [e for e in events if e.get("log_namespace") == "txtezosp2p.p2p.acl"]
        self.assertEqual(
            [(e["event"], e.get("addr"), e.get("peer")) for e in mine],
            [("greylist_addr", "::ffff:1.2.3.4", None), ("greylist_peer", None, str(peer(7)))],
        )


class ACLServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.acl = small_acl(self.clock, ip_greylist_cleanup_delay=DELAY)
        self.acl.startService()
        self.addCleanup(self._stop)

    def _stop(self) -> None:
        if self.acl.running:
            self.acl.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_start_stop(self) -> None:
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime(), PERIOD)
        self.acl.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # restartable
        self.acl.startService()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_expiry_greylisted_at_start(self) -> None:
        """Greylisted at t=0: still at 14/16 of the delay, gone at 15/16."""
        self.acl.greylist_addr("1.2.3.4")
        self.clock.advance(14 * PERIOD)
        self.assertTrue(self.acl.banned_addr("1.2.3.4"))
        self.clock.advance(PERIOD - 0.001)
        self.assertTrue(self.acl.banned_addr("1.2.3.4"))
        self.clock.advance(0.002)
        self.assertFalse(self.acl.banned_addr("1.2.3.4"))

    def test_expiry_one_period_at_a_time(self) -> None:
        """The same, with the clock driven one period at a time."""
        self.acl.greylist_addr("1.2.3.4")
        self.clock.pump([PERIOD] * 14)
        self.assertTrue(self.acl.banned_addr("1.2.3.4"))
        self.assertEqual(
            {self.acl.ip_greylist.counter(i) for i in self.acl.ip_greylist.indices("1.2.3.4")},
            {1},
        )
        self.clock.pump([PERIOD])
        self.assertFalse(self.acl.banned_addr("1.2.3.4"))

    def test_missed_periods_are_caught_up(self) -> None:
        """A reactor that missed periods counts down once per period elapsed."""
        self.acl.greylist_addr("1.2.3.4")
        self.clock.advance(10 * PERIOD)  # one call of the loop, ten periods
        self.assertEqual(
            {self.acl.ip_greylist.counter(i) for i in self.acl.ip_greylist.indices("1.2.3.4")},
            {5},
        )
        self.clock.advance(100 * PERIOD)
        self.assertFalse(self.acl.banned_addr("1.2.3.4"))
        self.assertEqual(self.acl.greylisted_ips(), [])

    def test_expiry_within_a_period(self) -> None:
        """
        Greylisted just after a countdown: lasts nearly 15 periods; just
        before one: lasts just over 14.  Always in [14/16, 15/16] of the delay.
        """
        epsilon = 0.5
        self.clock.advance(3 * PERIOD + epsilon)
        early = self.clock.seconds()
        self.acl.greylist_addr("10.0.0.1")
        self.clock.advance(PERIOD - 2 * epsilon)
        late = self.clock.seconds()
        self.acl.greylist_addr("10.0.0.2")
        # both expire at the 15th countdown after 3 * PERIOD
        expiry = 18 * PERIOD
        self.clock.advance(expiry - epsilon / 2 - self.clock.seconds())
        self.assertTrue(self.acl.greylisted_addr("10.0.0.1"))
        self.assertTrue(self.acl.greylisted_addr("10.0.0.2"))
        self.clock.advance(epsilon)
        self.assertFalse(self.acl.greylisted_addr("10.0.0.1"))
        self.assertFalse(self.acl.greylisted_addr("10.0.0.2"))
        lifetimes = [expiry - early, expiry - late]
        self.assertEqual(lifetimes, [15 * PERIOD - epsilon, 14 * PERIOD + epsilon])
        for lifetime in lifetimes:
            self.assertTrue(DELAY * 14 / 16 < lifetime < DELAY * 15 / 16)

    def test_bans_do_not_expire(self) -> None:
        self.acl.ban_addr("1.2.3.4")
        self.acl.ban_peer(peer(1))
        self.acl.greylist_peer(peer(2))
        self.clock.advance(10 * DELAY)
        self.assertTrue(self.acl.banned_addr("1.2.3.4"))
        self.assertTrue(self.acl.banned_peer(peer(1)))
        # the peer greylist has no time-based expiry either
        self.assertTrue(self.acl.banned_peer(peer(2)))

    def test_display_list_pruned_after_expiry(self) -> None:
        acl = self.acl
        acl.greylist_addr("10.0.0.1")
        self.clock.advance(5 * PERIOD)
        acl.greylist_addr("10.0.0.2")
        self.clock.advance(10 * PERIOD)
        self.assertEqual(acl.greylisted_ips(), [to_ipv6("10.0.0.2")])
        self.clock.advance(5 * PERIOD)
        self.assertEqual(acl.greylisted_ips(), [])
        self.assertEqual(acl.greylist_ips_json()["ips"], [])

    def test_tick_by_hand(self) -> None:
        acl = self.acl
        acl.greylist_addr("10.0.0.1")
        for _ in range(14):
            acl.tick()
        self.assertEqual(acl.greylisted_ips(), [to_ipv6("10.0.0.1")])
        acl.tick()
        self.assertFalse(acl.banned_addr("10.0.0.1"))
        self.assertEqual(acl.greylisted_ips(), [])
        acl.greylist_addr("10.0.0.2")
        acl.tick(14)
        self.assertTrue(acl.banned_addr("10.0.0.2"))
        acl.tick(0)
        self.assertTrue(acl.banned_addr("10.0.0.2"))
        acl.tick(1000)
        self.assertFalse(acl.banned_addr("10.0.0.2"))

    def test_loop_survives_an_error(self) -> None:
        """A failing period is logged, the filter cleared, and the loop goes on."""
        events = capture_events(self)
        acl = self.acl
        acl.greylist_addr("10.0.0.1")
        acl.ban_addr("10.0.0.9")
        real_countdown = acl.ip_greylist.countdown
        calls: list[int] = []

        def failing_once() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom")
            real_countdown()

        acl.ip_greylist.countdown = failing_once  # type: ignore[method-assign]
        self.clock.advance(PERIOD)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        failures = [e for e in events if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["log_namespace"], "txtezosp2p.p2p.acl")
        self.assertFalse(acl.greylisted_addr("10.0.0.1"))  # cleared
        self.assertTrue(acl.banned_addr("10.0.0.9"))  # bans untouched
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        # still counting down
        acl.greylist_addr("10.0.0.2")
        self.clock.advance(15 * PERIOD)
        self.assertEqual(len(calls), 16)
        self.assertFalse(acl.greylisted_addr("10.0.0.2"))
        self.assertEqual(acl.greylisted_ips(), [])
