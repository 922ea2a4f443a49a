# -*- test-case-name: tests.test_answerer -*-
"""
Reactions to the P2P control messages (Octez ``P2p_protocol``,
behaviour.md §7.4-§7.6):

* **Bootstrap** from a public peer: answer with an Advertise of up to 50
  known public points;
* **Advertise**: register the points (trust unchanged);
* **Swap_request(P)**: unless a swap happened less than ``swap_linger``
  ago or P is known and not disconnected, answer Swap_ack naming another of
  our connections D, connect to P and, on success, drop D;
* **Swap_ack(Q)**, only on a connection where we sent a Swap_request:
  connect to Q and, on success, drop the connection we proposed;
* **application messages**: into the connection's bounded queue.

:class:`PrivateAnswerer` (private mode) ignores every control message and
only queues application messages.  With ``disable_peer_discovery``,
Bootstrap and Advertise are ignored.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _events as ev
from .interfaces import IAnswerer, IPeerLink, IPool
from .pool_state import Disconnected, PoolEvent, Running
from .wire.encoding import Advertise, Bootstrap, SwapAck, SwapRequest
from .wire.errors import DisconnectReason
from .wire.ids import PeerId, Point

_log = ev.logger("p2p.protocol")

#: How many points an Advertise answer carries at most.
ADVERTISE_SIZE = 50

Connect = Callable[[Point], Deferred[Any]]


@implementer(IAnswerer)
class Answerer:
    """
    The default answerer (public node).  ``connect`` dials a point (the
    connect handler's, given by the composition root); without it, swaps
    are answered but never carried out.
    """

    def __init__(
        self,
        pool: IPool,
        clock: IReactorTime,
        *,
        connect: Connect | None = None,
        swap_linger: float | None = 30.0,
        disable_peer_discovery: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.connect: Connect | None = connect
        self.swap_linger = swap_linger
        self.disable_peer_discovery = disable_peer_discovery
        self.rng = rng or random.Random()
        self.latest_accepted_swap = float("-inf")
        self.latest_successful_swap = float("-inf")

    def _event(self, kind: str, source: PeerId) -> None:
        self.pool.emit(PoolEvent(kind, source=source))

    # -- discovery -----------------------------------------------------------

    def bootstrap(self, link: IPeerLink) -> None:
        _log.debug(
            "bootstrap from {peer_id}", event=ev.BOOTSTRAP_RECEIVED, peer_id=str(link.peer_id)
        )
        self._event("bootstrap_received", link.peer_id)
        if self.disable_peer_discovery:
            return
        if link.private:
            _log.warn(
                "ignoring bootstrap from private peer {peer_id}",
                event=ev.PRIVATE_NODE_REQUEST,
                peer_id=str(link.peer_id),
            )
            return
        points = self.pool.list_known_points(ADVERTISE_SIZE, ignore_private=True)
        if not points:
            return
        _log.debug(
            "advertising {count} points to {peer_id}",
            event=ev.GET_POINTS,
            medium="advertise",
            count=len(points),
            peer_id=str(link.peer_id),
        )
        if link.send(Advertise(points)):
            self._event("advertise_sent", link.peer_id)
        else:
            _log.warn(
                "could not advertise to {peer_id}",
                event=ev.ADVERTISE_SENDING_FAILED,
                peer_id=str(link.peer_id),
            )

    def advertise(self, link: IPeerLink, points: tuple[Point, ...]) -> None:
        _log.debug(
            "{count} points advertised by {peer_id}",
            event=ev.ADVERTISE_RECEIVED,
            count=len(points),
            peer_id=str(link.peer_id),
        )
        self._event("advertise_received", link.peer_id)
        if self.disable_peer_discovery:
            return
        for point in points:
            self.pool.register_new_point(point)

    def send_bootstrap(self, link: IPeerLink) -> bool:
        """Ask ``link`` for points (maintenance does this when short of connections)."""
        if self.disable_peer_discovery:
            _log.warn("peer discovery disabled", event=ev.PEER_DISCOVERY_DISABLED)
            return False
        if link.private:
            return False
        if link.send(Bootstrap()):
            self._event("bootstrap_sent", link.peer_id)
            return True
        return False

    # -- swaps ---------------------------------------------------------------

    def _links(self) -> list[IPeerLink]:
        return [c.link for c in self.pool.connections()]

    def _public_with_port(self, exclude: IPeerLink | None = None) -> list[IPeerLink]:
        return [
            link
            for link in self._links()
            if link != exclude and not link.private and link.point is not None and not link.closed
        ]

    def send_swap_request(self) -> bool:
        """
        Propose to a random peer R another of our peers C (behaviour.md §7.4):
        needs two public connections with a known listening port.
        """
        candidates = [link for link in self._links() if not link.private and not link.closed]
        if len(candidates) < 2:
            return False
        recipient = self.rng.choice(candidates)
        proposals = self._public_with_port(exclude=recipient)
        if not proposals:
            return False
        proposal = self.rng.choice(proposals)
        assert proposal.point is not None
        if not recipient.send(SwapRequest(proposal.point, proposal.peer_id)):
            return False
        recipient.last_sent_swap_request = (self.clock.seconds(), proposal.peer_id)
        self._event("swap_request_sent", recipient.peer_id)
        return True

    def swap_request(self, link: IPeerLink, point: Point, peer_id: PeerId) -> None:
        _log.info(
            "swap request from {peer_id}: {point}",
            event=ev.SWAP_REQUEST_RECEIVED,
            peer_id=str(link.peer_id),
            point=point.to_text(),
        )
        self._event("swap_request_received", link.peer_id)
        if self.swap_linger is None:
            return
        now = self.clock.seconds()
        latest = max(self.latest_successful_swap, self.latest_accepted_swap)
        known = self.pool.points.get(point)
        if now - latest < self.swap_linger or (
            known is not None and not isinstance(known.state, Disconnected)
        ):
            _log.info(
                "swap request from {peer_id} ignored",
                event=ev.SWAP_REQUEST_IGNORED,
                peer_id=str(link.peer_id),
            )
            self._event("swap_request_ignored", link.peer_id)
            return
        others = self._public_with_port(exclude=link)
        if not others:
            _log.info("no swap candidate", event=ev.NO_SWAP_CANDIDATE)
            return
        dropped = self.rng.choice(others)
        assert dropped.point is not None
        if not link.send(SwapAck(dropped.point, dropped.peer_id)):
            return
        self._event("swap_ack_sent", link.peer_id)
        self._swap(link, point, dropped.peer_id)

    def swap_ack(self, link: IPeerLink, point: Point, peer_id: PeerId) -> None:
        _log.info(
            "swap ack from {peer_id}: {point}",
            event=ev.SWAP_ACK_RECEIVED,
            peer_id=str(link.peer_id),
            point=point.to_text(),
        )
        self._event("swap_ack_received", link.peer_id)
        if self.swap_linger is None or link.last_sent_swap_request is None:
            return
        known = self.pool.points.get(point)
        if known is not None and isinstance(known.state, Running):
            return
        _, proposed = link.last_sent_swap_request
        self._swap(link, point, proposed)

    def _swap(self, source: IPeerLink, point: Point, drop: PeerId) -> None:
        """Connect to ``point``; once connected, drop our connection to ``drop``."""
        if self.connect is None:
            return
        # both sides of a swap count as an accepted swap (behaviour.md §7.4)
        self.latest_accepted_swap = self.clock.seconds()
        attempt = self.connect(point)

        def succeeded(_: object) -> None:
            self.latest_successful_swap = self.clock.seconds()
            _log.info(
                "swap with {peer_id} done", event=ev.SWAP_SUCCEEDED, peer_id=str(source.peer_id)
            )
            self._event("swap_success", source.peer_id)
            victim = self.pool.connection_for_peer(drop)
            if victim is not None:
                victim.link.disconnect(DisconnectReason.PEER_SWAPPED)

        def failed(failure: Failure) -> None:
            self.latest_accepted_swap = self.latest_successful_swap
            _log.info(
                "swap with {peer_id} failed: {error}",
                event=ev.SWAP_FAILED,
                peer_id=str(source.peer_id),
                error=failure.getErrorMessage(),
            )
            self._event("swap_failure", source.peer_id)

        attempt.addCallbacks(succeeded, failed)

    # -- application messages ------------------------------------------------

    def message(self, link: IPeerLink, message: object) -> Deferred[None]:
        queued: Deferred[None] = link.push_message(message)
        return queued


class PrivateAnswerer(Answerer):
    """The answerer of a private node: control messages are ignored (behaviour.md §7.5)."""

    def bootstrap(self, link: IPeerLink) -> None:
        _log.warn(
            "private node: bootstrap from {peer_id} ignored",
            event=ev.PRIVATE_NODE_PEERS_REQUEST,
            peer_id=str(link.peer_id),
        )

    def advertise(self, link: IPeerLink, points: tuple[Point, ...]) -> None:
        _log.warn(
            "private node: advertise from {peer_id} ignored",
            event=ev.PRIVATE_NODE_NEW_PEERS,
            peer_id=str(link.peer_id),
        )

    def swap_request(self, link: IPeerLink, point: Point, peer_id: PeerId) -> None:
        _log.warn(
            "private node: swap request from {peer_id} ignored",
            event=ev.PRIVATE_NODE_SWAP_REQUEST,
            peer_id=str(link.peer_id),
        )

    def swap_ack(self, link: IPeerLink, point: Point, peer_id: PeerId) -> None:
        _log.warn(
            "private node: swap ack from {peer_id} ignored",
            event=ev.PRIVATE_NODE_SWAP_ACK,
            peer_id=str(link.peer_id),
        )

    def send_bootstrap(self, link: IPeerLink) -> bool:
        return False

    def send_swap_request(self) -> bool:
        return False
