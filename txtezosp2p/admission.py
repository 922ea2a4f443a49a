# -*- test-case-name: tests.test_admission -*-
"""
Who gets a slot, and whom maintenance lets go (``Limits.admission``).

Octez decides admission once a peer is authenticated: with maintenance on,
a node at ``max_threshold`` running connections Nacks every newcomer with
``Too_many_connections`` (behaviour.md §3.4), and its too-many step only
acts above ``max_threshold``, closing random connections (§4.4).  A node
that sits exactly at ``max_threshold`` therefore neither admits anyone nor
frees a slot: a network whose nodes all reach that count leaves a late
newcomer below ``min_connections`` for ever, although every node has room
up to ``max_connections``.  :class:`OctezAdmission` keeps that rule exactly.

:class:`ElasticAdmission` (the default) keeps Octez's bounds and the wire,
and always lets a newcomer in while there is room:

* **admission** up to ``max_connections``, counting the handshakes already
  accepted as well as the running connections (so concurrent handshakes
  cannot overshoot the cap, which Octez's count of running connections
  allows);
* **trimming** is still maintenance's too-many step (above
  ``max_threshold``, down to ``max_target``), but chooses its victims, as
  Bitcoin Core's inbound eviction does, among connections that are neither
  trusted nor among the longest-lived (the node's stable core), each time
  from the network group (/16 of IPv4, /32 of IPv6) holding the most of the
  node's peers (many peers from few networks, the mark of a Sybil flood, go
  first), then connections past the grace period (``maintenance_idle_time /
  4``, the time a newcomer needs to find its other peers) before younger
  ones, incoming before outgoing; ties broken at random;
* **exploration**: a maintenance step that finds the node inside its band
  but below ``expected_connections`` dials one point it is not connected
  to (one never missed, at random), so the overlay keeps mixing and a
  healed partition joins again.

docs/admission.md explains the choice and its measurements.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence
from typing import Any

from zope.interface import implementer

from .interfaces import IAdmissionPolicy
from .limits import ConnectionBounds, Limits


def network_group(address: ipaddress.IPv6Address) -> bytes | None:
    """
    The /16 of a public IPv4 (or IPv4-mapped) address, the /32 of a public
    IPv6 one: peers of one group are likely run by one operator.  None for
    loopback, private and link-local addresses: on a LAN or a test bench
    (where every node may share one address) a prefix says nothing about
    who runs a node, so such peers count as groups of their own.
    """
    mapped = address.ipv4_mapped
    if mapped is not None:
        if mapped.is_private or mapped.is_loopback or mapped.is_link_local:
            return None
        return b"4" + mapped.packed[:2]
    if address.is_private or address.is_loopback or address.is_link_local:
        return None
    return b"6" + address.packed[:4]


def _trusted(connection: Any) -> bool:
    point, peer = connection.point_info, connection.peer_info
    return bool((point is not None and point.trusted) or (peer is not None and peer.trusted))


@implementer(IAdmissionPolicy)
class OctezAdmission:
    """
    Octez's rule: no slot at ``threshold`` running connections
    (``max_threshold`` with maintenance, else ``max_connections``); victims
    drawn at random, never a connection both private and trusted.
    """

    name = "octez"

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    def has_room(
        self, running: int, accepted: int, address: ipaddress.IPv6Address, connections: Any
    ) -> bool:
        return running < self.threshold

    def victims(
        self, connections: Sequence[Any], count: int, now: float, rng: random.Random
    ) -> list[Any]:
        candidates = [c for c in connections if not (c.private and _trusted(c))]
        return rng.sample(candidates, min(count, len(candidates)))

    def exploration(self, running: int) -> int:
        return 0


@implementer(IAdmissionPolicy)
class ElasticAdmission:
    """Admit up to ``max_connections``; trim the crowded network groups first."""

    name = "elastic"

    def __init__(
        self,
        max_threshold: int,
        max_connections: int,
        grace: float,
        core: int = 0,
        expected: int = 0,
    ) -> None:
        self.max_threshold = max_threshold
        self.max_connections = max_connections
        self.grace = grace
        #: How many of the longest-lived connections are never closed.
        self.core = core
        #: Below this many connections, a step inside the band dials one new point.
        self.expected = expected

    def has_room(
        self, running: int, accepted: int, address: ipaddress.IPv6Address, connections: Any
    ) -> bool:
        count = running + accepted
        if count < self.max_threshold:
            return True
        if count >= self.max_connections:
            return False
        # the headroom above max_threshold is for peers from new network groups
        group = network_group(address)
        return group is None or all(network_group(c.id_point.addr) != group for c in connections)

    def victims(
        self, connections: Sequence[Any], count: int, now: float, rng: random.Random
    ) -> list[Any]:
        untrusted = sorted(
            (c for c in connections if not _trusted(c)), key=lambda c: c.established_at
        )
        # the longest-lived connections are the node's stable core
        candidates = untrusted[self.core :]
        groups: dict[bytes | None, int] = {None: 1}  # ungrouped peers count alone
        for connection in connections:
            key = network_group(connection.id_point.addr)
            if key is not None:
                groups[key] = groups.get(key, 0) + 1
        chosen: list[Any] = []
        while len(chosen) < count and candidates:
            # the most crowded network group first; then connections past
            # their grace before new ones (a newcomer needs time to find its
            # other peers), incoming before outgoing (maintenance chose those);
            # ties broken at random
            ranked = [
                (
                    -groups[network_group(c.id_point.addr)],
                    now - c.established_at < self.grace,
                    not c.incoming,
                    rng.random(),
                    index,
                )
                for index, c in enumerate(candidates)
            ]
            victim = candidates.pop(min(ranked)[-1])
            key = network_group(victim.id_point.addr)
            if key is not None:
                groups[key] -= 1
            chosen.append(victim)
        return chosen

    def exploration(self, running: int) -> int:
        # Octez's band lets a node rest anywhere between min_threshold and
        # max_threshold; its neighbours then never change unless one leaves,
        # so two halves of a healed partition, each node inside its band,
        # stay apart.  One dial per step towards the expected count keeps
        # the overlay mixing (as Bitcoin Core's feeler connections do),
        # never beyond max_target.
        return 1 if running < self.expected else 0


def admission_policy(limits: Limits, *, maintenance: bool = True) -> IAdmissionPolicy:
    """The policy ``limits.admission`` names, for a node with or without maintenance."""
    if limits.admission == "octez":
        threshold = (
            ConnectionBounds.of(limits).max_threshold if maintenance else limits.max_connections
        )
        return OctezAdmission(threshold)
    idle = limits.maintenance_idle_time
    return ElasticAdmission(
        ConnectionBounds.of(limits).max_threshold,
        limits.max_connections,
        grace=(idle or 120.0) / 4,
        core=limits.min_connections // 2,
        expected=limits.expected_connections,
    )


__all__ = ["ElasticAdmission", "OctezAdmission", "admission_policy", "network_group"]
