# -*- test-case-name: tests.test_acl -*-
"""
Access control lists of the P2P layer (Octez ``P2p_acl``, behaviour.md
section 6): who is banned, who is greylisted.

Four lists, none of them persisted (behaviour.md section 6.1, 6.4):

* the **IP blacklist** and the **peer blacklist**: plain sets, filled and
  emptied only by hand (the ``acl: ban`` RPCs, section 6.4);
* the **IP greylist**: :class:`IPGreylist`, a counting Bloom filter with 4-bit
  countdown cells (Octez ``src/lib_stdlib/bloomer.ml``).  Greylisting an
  address sets its 5 cells to 15; every ``ip_greylist_cleanup_delay / 16``
  seconds every non-zero cell is decremented; an address is greylisted while
  all 5 of its cells are non-zero.  An address therefore stays greylisted for
  15 periods after the period it was added in, i.e. between 14/16 and 15/16 of
  the cleanup delay, and an innocent address may look greylisted when all its
  cells are shared with greylisted ones (false positive).  Next to it sits a
  bounded FIFO of the greylisted addresses (the *display list*, what
  ``GET /network/greylist/ips`` shows) whose overflow marks the listing as
  ``not_reliable_since`` that moment;
* the **peer greylist**: a bounded FIFO set of peer ids (:class:`FifoSet`,
  capacity ``peer_greylist_size``), whose entries leave only by eviction or
  unban.

``banned`` means blacklisted *or* greylisted, for addresses and for peers
(section 6.2).  When the node greylists automatically (section 6.3) is the
business of the callers; greylisting a *peer* here only records the peer id,
the caller greylists the address of its connection as well.

Where we differ from Octez, on purpose:

* [QUIRK] Octez's ``clear`` (``DELETE /network/greylist``) also wipes the
  manual blacklists (behaviour.md section 6.4, section 16 item 3).
  :meth:`ACL.clear_greylists` clears only the greylists, as the RPC's
  description promises; :meth:`ACL.clear_all` does what Octez does.
* [QUIRK] Octez never prunes the display list, which therefore shows
  addresses whose Bloom entry expired long ago (section 6.1).  Each period of
  :class:`ACL` drops from it the addresses no longer greylisted.

Sources: Octez ``src/lib_p2p/p2p_acl.ml``, ``p2p_acl.mli``,
``src/lib_stdlib/bloomer.ml``, ``bits.ml``.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _events as ev
from .interfaces import IACL
from .limits import Limits
from .pool_state import rfc3339
from .wire.ids import PeerId, format_addr, to_ipv6

__all__ = ["ACL", "AddressLike", "FifoSet", "IPGreylist", "countdown_table"]

_log = ev.logger("p2p.acl")

#: What the public methods accept as an address; normalised with :func:`to_ipv6`.
AddressLike = str | ipaddress.IPv4Address | ipaddress.IPv6Address

T = TypeVar("T")

# -- Counting Bloom filter ---------------------------------------------------


def countdown_table() -> bytes:
    """
    The 256-entry ``bytes.translate`` table that decrements both 4-bit cells
    of a byte independently, leaving a zero cell at zero.
    """
    table = bytearray(256)
    for value in range(256):
        low, high = value & 0x0F, value >> 4
        table[value] = (max(high - 1, 0) << 4) | max(low - 1, 0)
    return bytes(table)


_COUNTDOWN = countdown_table()
#: Bytes of the Blake2b digest the cell indices are taken from.
_DIGEST_SIZE = 32


class IPGreylist:
    """
    Octez's IP greylist: a counting Bloom filter of ``2**b`` 4-bit cells,
    ``b`` being the bit length of ``size_in_kilobytes * 8192 // 4`` (23 for
    the default 2048, so 8 388 608 cells in 4 MiB: twice the nominal size, as
    in Octez).  Cells are packed two per byte of one ``bytearray`` allocated
    at once: cell ``j`` is the low nibble of byte ``j // 2`` when ``j`` is
    even, the high nibble when it is odd.

    An address (IPv6, IPv4 as IPv4-mapped) owns 5 cells: the 32-byte Blake2b
    digest of its 16 octets is read as one little-endian integer ``n`` and
    cell ``i`` is ``(n >> (i * b)) & (2**b - 1)``, i.e. bits ``[i*b, (i+1)*b)``
    (so ``b`` may be at most 51).  Two of the 5 indices may coincide.

    Size 0 is accepted and gives a single cell: everything collides.
    """

    #: Cells per address.
    HASHES = 5
    #: Bits per cell, and the value an add sets the cells to.
    COUNTDOWN_BITS = 4
    MAX_COUNT = (1 << COUNTDOWN_BITS) - 1

    def __init__(self, size_in_kilobytes: int = 2048) -> None:
        if size_in_kilobytes < 0:
            raise ValueError("the IP greylist size must not be negative")
        self.size_in_kilobytes = size_in_kilobytes
        #: ``b``: bits per index.
        self.index_bits = ((size_in_kilobytes * 8192) // 4).bit_length()
        if self.index_bits * self.HASHES > _DIGEST_SIZE * 8:
            raise ValueError("IP greylist size too large: 5 indices must fit in the digest")
        self.cells = 1 << self.index_bits
        self._mask = self.cells - 1
        self._data = bytearray((self.cells + 1) // 2)
        # Upper bound of every cell: 0 means the filter is empty, so a
        # countdown has nothing to do (saves copying 4 MiB on an idle node).
        self._live = 0

    @property
    def nbytes(self) -> int:
        """Memory held by the cells."""
        return len(self._data)

    def indices(self, address: AddressLike) -> tuple[int, ...]:
        """The 5 cells of ``address`` (see the class docstring)."""
        packed = to_ipv6(address).packed
        number = int.from_bytes(
            hashlib.blake2b(packed, digest_size=_DIGEST_SIZE).digest(), "little"
        )
        bits, mask = self.index_bits, self._mask
        return tuple((number >> (i * bits)) & mask for i in range(self.HASHES))

    def counter(self, index: int) -> int:
        """The value of cell ``index``."""
        byte = self._data[index >> 1]
        return (byte >> 4) if index & 1 else (byte & 0x0F)

    def _set(self, index: int, value: int) -> None:
        position = index >> 1
        byte = self._data[position]
        if index & 1:
            self._data[position] = (byte & 0x0F) | (value << 4)
        else:
            self._data[position] = (byte & 0xF0) | value

    def add(self, address: AddressLike) -> None:
        """Greylist ``address``: its 5 cells to 15."""
        for index in self.indices(address):
            self._set(index, self.MAX_COUNT)
        self._live = self.MAX_COUNT

    def contains(self, address: AddressLike) -> bool:
        """Whether all 5 cells of ``address`` are non-zero (false positives possible)."""
        if not self._live:  # empty filter: no need to hash
            return False
        return all(self.counter(index) for index in self.indices(address))

    __contains__ = contains

    def remove(self, address: AddressLike) -> None:
        """
        Zero the 5 cells of ``address``, as Octez's unban does.  Another
        address sharing one of these cells is un-greylisted too.
        """
        for index in self.indices(address):
            self._set(index, 0)

    def countdown(self) -> None:
        """Decrement every non-zero cell by one, two cells per byte in C."""
        if self._live == 0:
            return
        self._data = self._data.translate(_COUNTDOWN)
        self._live -= 1

    def clear(self) -> None:
        """Zero every cell."""
        self._data = bytearray(len(self._data))
        self._live = 0

    def __repr__(self) -> str:
        return f"IPGreylist(size_in_kilobytes={self.size_in_kilobytes})"


# -- Bounded FIFO set -------------------------------------------------------


class FifoSet(Generic[T]):
    """
    A set of at most ``capacity`` members that remembers insertion order
    (Ringo's FIFO "strong" set as Octez uses it): adding a member already
    present moves it to the newest position; adding to a full set evicts
    the oldest member.  Iteration goes from oldest to newest.
    """

    def __init__(self, capacity: int, members: Iterable[T] = ()) -> None:
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.capacity = capacity
        self._members: OrderedDict[T, None] = OrderedDict()
        for member in members:
            self.add(member)

    def add(self, member: T) -> bool:
        """
        Add or refresh ``member``; returns whether a member was dropped to make
        room (with capacity 0, ``member`` itself is dropped).
        """
        members = self._members
        if member in members:
            members.move_to_end(member)
            return False
        if self.capacity == 0:
            return True
        dropped = False
        if len(members) >= self.capacity:
            members.popitem(last=False)
            dropped = True
        members[member] = None
        return dropped

    def discard(self, member: T) -> None:
        self._members.pop(member, None)

    def clear(self) -> None:
        self._members.clear()

    def full(self) -> bool:
        return len(self._members) >= self.capacity

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._members))

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"FifoSet({self.capacity}, {list(self._members)!r})"


# -- The ACL ----------------------------------------------------------------


@implementer(IACL)
class ACL(Service):
    """
    The node's bans and greylists (behaviour.md section 6).

    As a service it runs the greylist expiry: every ``period`` =
    ``ip_greylist_cleanup_delay / 16`` seconds (5400 s by default) it counts
    the Bloom filter down and prunes the display list (:meth:`tick`); periods
    the reactor missed are caught up (a host asleep for a day wakes up with
    an empty greylist, as the time elapsed says it should).  A
    period that raises is logged, the filter is cleared (Octez clears it and
    restarts its loop) and the loop goes on.
    """

    def __init__(self, clock: IReactorTime, limits: Limits | None = None) -> None:
        limits = limits if limits is not None else Limits()
        if limits.ip_greylist_cleanup_delay <= 0:
            raise ValueError("ip_greylist_cleanup_delay must be positive")
        self.clock = clock
        self.limits = limits
        self.ip_blacklist: set[ipaddress.IPv6Address] = set()
        self.peer_blacklist: set[PeerId] = set()
        self.ip_greylist = IPGreylist(limits.ip_greylist_size_in_kilobytes)
        #: The greylisted addresses as ``GET /network/greylist/ips`` lists them.
        self.ip_greylist_display: FifoSet[ipaddress.IPv6Address] = FifoSet(
            limits.ip_greylist_size_in_kilobytes
        )
        #: When the display list first dropped an address (``None``: never).
        self.not_reliable_since: float | None = None
        self.peer_greylist: FifoSet[PeerId] = FifoSet(limits.peer_greylist_size)
        #: Seconds between two countdowns of the Bloom filter.
        self.period = limits.ip_greylist_cleanup_delay / 16
        self._loop = LoopingCall.withCount(self._run_period)
        self._loop.clock = clock

    # -- service -------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.period, now=False).addErrback(self._loop_failed)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def tick(self, periods: int = 1) -> None:
        """
        Run ``periods`` periods: count the Bloom filter down that many times
        (at most 15: by then it is empty) and drop the expired addresses from
        the display list.
        """
        for _ in range(min(periods, IPGreylist.MAX_COUNT)):
            self.ip_greylist.countdown()
        self._prune_display()

    def _run_period(self, periods: int) -> None:
        # ``periods`` > 1 when the reactor missed ticks (busy, suspended host):
        # the missed countdowns are caught up, so greylistings last in
        # wall-clock time what they should.  Octez's Lwt loop does not catch up.
        try:
            self.tick(periods)
        except Exception:
            _log.failure("IP greylist cleanup failed; clearing the filter", event=ev.ACL_CLEANUP)
            self.ip_greylist.clear()

    def _loop_failed(self, failure: Failure) -> None:  # pragma: no cover - _run_period catches
        _log.failure("IP greylist cleanup loop stopped", failure, event=ev.ACL_CLEANUP)

    def _prune_display(self) -> None:
        # [QUIRK] Octez never prunes the display list (behaviour.md section 6.1).
        greylist = self.ip_greylist
        for address in self.ip_greylist_display:
            if not greylist.contains(address):
                self.ip_greylist_display.discard(address)

    # -- addresses -----------------------------------------------------------

    def ban_addr(self, address: AddressLike) -> None:
        """Put ``address`` in the IP blacklist (until unbanned)."""
        self.ip_blacklist.add(to_ipv6(address))

    def unban_addr(self, address: AddressLike) -> None:
        """
        Remove ``address`` from the blacklist, the Bloom filter and the display
        list.  Zeroing its Bloom cells may un-greylist another address that
        shares one of them (as in Octez).
        """
        ip = to_ipv6(address)
        self.ip_blacklist.discard(ip)
        self.ip_greylist.remove(ip)
        self.ip_greylist_display.discard(ip)

    def greylist_addr(self, address: AddressLike) -> None:
        """Greylist ``address`` for 14/16 to 15/16 of the cleanup delay."""
        ip = to_ipv6(address)
        self.ip_greylist.add(ip)
        if self.ip_greylist_display.add(ip) and self.not_reliable_since is None:
            self.not_reliable_since = self.clock.seconds()
        _log.info("greylisted {addr}", event=ev.GREYLIST_ADDR, addr=format_addr(ip))

    def banned_addr(self, address: AddressLike) -> bool:
        """Blacklisted or greylisted (behaviour.md section 6.2)."""
        ip = to_ipv6(address)
        return ip in self.ip_blacklist or self.ip_greylist.contains(ip)

    def blacklisted_addr(self, address: AddressLike) -> bool:
        return to_ipv6(address) in self.ip_blacklist

    def greylisted_addr(self, address: AddressLike) -> bool:
        """In the Bloom filter (false positives possible)."""
        return self.ip_greylist.contains(address)

    # -- peers ---------------------------------------------------------------

    def ban_peer(self, peer: PeerId) -> None:
        """Put ``peer`` in the peer blacklist (until unbanned)."""
        self.peer_blacklist.add(peer)

    def unban_peer(self, peer: PeerId) -> None:
        """Remove ``peer`` from the peer blacklist and the peer greylist."""
        self.peer_blacklist.discard(peer)
        self.peer_greylist.discard(peer)

    def greylist_peer(self, peer: PeerId) -> None:
        """
        Add ``peer`` to the peer greylist (evicting the oldest entry when
        full).  Only the peer id: greylisting the address of its connection
        is the caller's job (behaviour.md section 6.3).
        """
        self.peer_greylist.add(peer)
        _log.info("greylisted peer {peer}", event=ev.GREYLIST_PEER, peer=str(peer))

    def banned_peer(self, peer: PeerId) -> bool:
        """Blacklisted or greylisted (behaviour.md section 6.2)."""
        return peer in self.peer_blacklist or peer in self.peer_greylist

    def blacklisted_peer(self, peer: PeerId) -> bool:
        return peer in self.peer_blacklist

    def greylisted_peer(self, peer: PeerId) -> bool:
        return peer in self.peer_greylist

    # -- listings ------------------------------------------------------------

    def greylisted_ips(self) -> list[ipaddress.IPv6Address]:
        """The display list, oldest first."""
        return list(self.ip_greylist_display)

    def greylisted_peers(self) -> list[PeerId]:
        """The peer greylist, oldest first."""
        return list(self.peer_greylist)

    def greylist_ips_json(self) -> dict[str, Any]:
        """The body of ``GET /network/greylist/ips`` (behaviour.md section 13)."""
        since = self.not_reliable_since
        return {
            "ips": [format_addr(ip) for ip in self.ip_greylist_display],
            "not_reliable_since": None if since is None else rfc3339(since),
        }

    def banned_ips(self) -> list[ipaddress.IPv6Address]:
        """The IP blacklist, sorted."""
        return sorted(self.ip_blacklist)

    def banned_peers(self) -> list[PeerId]:
        """The peer blacklist, sorted."""
        return sorted(self.peer_blacklist)

    # -- clearing ------------------------------------------------------------

    def clear_greylists(self) -> None:
        """
        Empty the IP greylist (filter and display list) and the peer
        greylist, and reset ``not_reliable_since``; the manual bans stay.
        [QUIRK] Octez's clear also wipes the blacklists (behaviour.md
        section 6.4); that is :meth:`clear_all`.
        """
        self.ip_greylist.clear()
        self.ip_greylist_display.clear()
        self.peer_greylist.clear()
        self.not_reliable_since = None

    def clear_all(self) -> None:
        """Empty all four lists, as Octez's ``P2p_acl.clear`` does."""
        self.clear_greylists()
        self.ip_blacklist.clear()
        self.peer_blacklist.clear()
