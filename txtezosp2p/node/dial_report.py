# -*- test-case-name: tests.test_dial_report -*-
"""
A periodic summary of the dials that failed, for the operator of a node that
reaches few peers or none.

Octez logs each failed dial at debug level and otherwise only says "too few
connections".  :class:`DialReport` is fed every dial's outcome by the connect
handler (:meth:`~txtezosp2p.connect_handler.ConnectHandler.on_dial_outcome`)
and, at most once per ``interval`` seconds and only when a dial failed in
that window, logs one ``dial_summary`` event: the points tried, how many
dials failed and why (refused, timed out, Nack motive, greylisted, closed by
the peer during the handshake...), a few points per reason, the connections
the node has, and a hint at what to change.  The level is ``warn`` while the
node has no connection, ``info`` otherwise.  A node with no connection and no
point to dial says that too, once per window.

Dials that were not attempted for ordinary reasons (a connection to that
point exists or is under way, the connection bound is reached) are not
failures and are not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from .. import _events as ev
from ..acl import ACL
from ..wire.errors import (
    ClosedBeforeHandshake,
    ClosedDuringAuthentication,
    Connected,
    ConnectionFailed,
    HandshakeTimeout,
    IdentityCheckFailure,
    Myself,
    NackMotive,
    NotEnoughProofOfWork,
    PendingConnection,
    PointBanned,
    PrivateMode,
    Rejected,
    RejectedByNack,
    RejectedNoCommonProtocol,
    TooManyConnections,
)
from ..wire.ids import Point

__all__ = ["DialReport", "classify"]

_log = ev.logger("p2p.connect_handler")

#: Not failures to reach a peer: nothing to report.
_ORDINARY = (CancelledError, Connected, PendingConnection, TooManyConnections)
#: Points shown per reason.
EXAMPLES = 3

#: Reason keys, their text, and the hint each gives, in the order hints are chosen.
_REASONS: dict[str, tuple[str, str | None]] = {
    "weak_identity": (
        "closed by the peer after our connection message (our proof of work is below 26)",
        "our identity's proof of work is below what Octez nodes expect (26): mine a new one "
        "with tezos-p2p identity generate --force --target 26 --data-dir <data dir>, "
        "then restart",
    ),
    "closed_during_authentication": (
        "closed by the peer after our connection message",
        "peers close the connection after reading our identity: they may expect more proof "
        "of work than ours",
    ),
    "closed_before_handshake": (
        "closed by the peer before the handshake",
        "peers refuse our address before any handshake: they banned or greylisted it (for "
        "about a day after an attempt with too little proof of work; their operator can "
        "clear it with tezos-p2p greylist clear), or they are full",
    ),
    "other_network": (
        "another network (chain name or versions)",
        "these peers run another network: check --network or --chain-name",
    ),
    "refused": (
        "connection refused",
        "nothing listens at these points: check the bootstrap peers (--peer, "
        "p2p.bootstrap-peers) and that those nodes run",
    ),
    "timeout": (
        "timed out",
        "check the network path (firewall, NAT) to these points, and that they are Tezos nodes",
    ),
    "unreachable": ("unreachable", "check the network path to these points"),
    "greylisted": (
        "greylisted by this node",
        "this node greylisted these addresses after failed handshakes; it retries them once "
        "the greylist expires (tezos-p2p greylist clear clears it now)",
    ),
    "banned": ("banned by this node", None),
    "peer_proof_of_work": (
        "the peer's proof of work is below --expected-pow",
        "these peers' identities have less proof of work than --expected-pow asks",
    ),
    "too_many_connections": (
        "refused by the peer: too many connections",
        "these peers are full; their Nacks bring other points to try",
    ),
    "already_connected": ("refused by the peer: already connected", None),
    "nack": ("refused by the peer with a Nack", None),
    "rejected": ("refused by this node", None),
    "myself": ("this node itself", None),
    "unexpected_peer": ("another peer id than expected there", None),
    "private_mode": ("not trusted, in private mode", None),
    "other": ("failed", None),
}


def classify(failure: Failure, acl: ACL | None = None) -> str | None:
    """The reason key of a failed dial, ``None`` when it is not a failure to report."""
    error = failure.value
    if isinstance(error, _ORDINARY):
        return None
    if isinstance(error, ClosedDuringAuthentication):
        return "weak_identity" if error.weak else "closed_during_authentication"
    if isinstance(error, ClosedBeforeHandshake):
        return "closed_before_handshake"
    if isinstance(error, RejectedNoCommonProtocol):
        return "other_network"
    if isinstance(error, RejectedByNack):
        if error.motive == NackMotive.TOO_MANY_CONNECTIONS:
            return "too_many_connections"
        if error.motive == NackMotive.ALREADY_CONNECTED:
            return "already_connected"
        if error.motive in (
            NackMotive.UNKNOWN_CHAIN_NAME,
            NackMotive.DEPRECATED_P2P_VERSION,
            NackMotive.DEPRECATED_DISTRIBUTED_DB_VERSION,
        ):
            return "other_network"
        return "nack"
    if isinstance(error, HandshakeTimeout):
        return "timeout"
    if isinstance(error, ConnectionFailed):
        text = str(error).lower()
        if "refused" in text:
            return "refused"
        if "timeout" in text or "timed out" in text:
            return "timeout"
        return "unreachable"
    if isinstance(error, PointBanned):
        point = error.point
        if acl is not None and isinstance(point, Point) and acl.blacklisted_addr(point.addr):
            return "banned"
        return "greylisted"
    if isinstance(error, NotEnoughProofOfWork):
        return "peer_proof_of_work"
    if isinstance(error, Rejected):
        return "rejected"
    if isinstance(error, Myself):
        return "myself"
    if isinstance(error, IdentityCheckFailure):
        return "unexpected_peer"
    if isinstance(error, PrivateMode):
        return "private_mode"
    return "other"


class DialReport(Service):
    """
    Collects dial outcomes and logs a summary every ``interval`` seconds on
    ``clock`` when a dial failed.  ``connections()`` counts the node's
    connections, ``known_points()`` its known points.
    """

    def __init__(
        self,
        clock: IReactorTime,
        connections: Callable[[], int],
        known_points: Callable[[], int],
        *,
        acl: ACL | None = None,
        interval: float = 30.0,
    ) -> None:
        self.clock = clock
        self.connections = connections
        self.known_points = known_points
        self.acl = acl
        self.interval = interval
        self._tried: set[Point] = set()
        self._reached = 0
        self._failed: Counter[str] = Counter()
        self._examples: dict[str, list[str]] = {}
        self._details: dict[str, str] = {}
        self._loop = LoopingCall(self.report)
        self._loop.clock = clock

    @property
    def pending(self) -> int:
        """Failed dials in the current window."""
        return sum(self._failed.values())

    def record(self, point: Point, failure: Failure | None) -> None:
        """One dial's outcome (the connect handler's hook)."""
        if failure is None:
            self._tried.add(point)
            self._reached += 1
            return
        reason = classify(failure, self.acl)
        if reason is None:
            return
        self._tried.add(point)
        self._failed[reason] += 1
        examples = self._examples.setdefault(reason, [])
        text = point.to_text()
        if text not in examples and len(examples) < EXAMPLES:
            examples.append(text)
        if reason in ("other", "unreachable", "nack"):
            self._details.setdefault(reason, failure.getErrorMessage())

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def report(self) -> None:
        """Log the summary of the window that ends now, if a dial failed in it."""
        connections = self.connections()
        level = LogLevel.warn if connections == 0 else LogLevel.info
        if not self._failed:
            if connections == 0 and not self._tried and self.known_points() == 0:
                _log.emit(
                    LogLevel.warn,
                    "no connection and no point to dial: give bootstrap peers "
                    "(--peer HOST:PORT, p2p.bootstrap-peers) or enable LAN discovery",
                    event=ev.DIAL_SUMMARY,
                    connections=0,
                    tried=0,
                    failed=0,
                )
            self._reset()
            return
        failed = sum(self._failed.values())
        parts = []
        for reason, count in self._failed.most_common():
            text = _REASONS[reason][0]
            detail = self._details.get(reason)
            if detail:
                text += f" ({detail})"
            shown = ", ".join(self._examples.get(reason, []))
            parts.append(f"{count} {text}: {shown}")
        hint = next(
            (_REASONS[r][1] for r in _REASONS if r in self._failed and _REASONS[r][1]), None
        )
        _log.emit(
            level,
            "{failed} dials to {tried} points failed in the last {window:.0f} s, "
            "{connections} connections: {reasons}{hint_text}",
            event=ev.DIAL_SUMMARY,
            failed=failed,
            tried=len(self._tried),
            reached=self._reached,
            window=self.interval,
            connections=connections,
            reasons="; ".join(parts),
            by_reason=dict(self._failed),
            points={reason: list(points) for reason, points in self._examples.items()},
            hint=hint,
            hint_text=f". Hint: {hint}" if hint else "",
        )
        self._reset()

    def _reset(self) -> None:
        self._tried = set()
        self._reached = 0
        self._failed = Counter()
        self._examples = {}
        self._details = {}
