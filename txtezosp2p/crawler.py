# -*- test-case-name: tests.test_crawler -*-
"""
A network crawler: from bootstrap points, handshake with every reachable
point, ask each for addresses, follow what they advertise and the
alternatives of their Nacks, and record a map of the network.

It is a client of our own stack: each visit is a real session
(:func:`~txtezosp2p.session.connect_session`) dialled through an injected
:data:`~txtezosp2p.interfaces.EndpointFactory`, on an injected clock.  A
visit is polite and bounded:

1. one connection per point and per crawl, at most ``concurrency`` at once;
2. the TCP connect and the handshake within ``connect_timeout``;
3. once established, one ``Bootstrap``, then the messages are read until an
   ``Advertise`` arrives or ``advertise_timeout`` passes (a private peer
   never answers one: it is not asked), and the connection is closed.

The crawler never listens and announces no port, so the nodes it visits
have no point of it to advertise; it announces itself as a public node
(peers do not answer a private node's ``Bootstrap``, behaviour.md §3.7).

What a visit learns (:class:`PointRecord`): the peer id, the announced
network version, the proof-of-work level of the peer's stamp, the private
flag and the mempool flag of its metadata (all known once the peer is
authenticated, whatever happens next), what it advertised or the
alternatives of its Nack, and how the visit ended (``status``).

A crawl is resumable: each finished visit is appended to the output file as
one JSON line (one ``write`` each), and a crawl started on an existing file
reloads it, does not visit its points again and resumes from the points
they advertised.  A line cut by a crash is ignored.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .identity import Identity
from .interfaces import EndpointFactory
from .limits import Limits
from .session import ConnectionInfo, Session, SessionConfig, connect_session
from .wire.crypto import pow_level
from .wire.encoding import (
    Advertise,
    Bootstrap,
    ConnectionMetadata,
    NetworkVersion,
    P2PMessageCodec,
    default_metadata_config,
    raw_message_encodings,
)
from .wire.errors import (
    P2PError,
    RejectedByNack,
    RejectedNoCommonProtocol,
)
from .wire.ids import PeerId, Point
from .wire.versions import Versions

_log = Logger(namespace="txtezosp2p.crawler")

#: How a visit ended.
REACHABLE = "reachable"  # handshake done (both Acks); asked for addresses
NACKED = "nacked"  # authenticated, then the peer answered with a Nack
INCOMPATIBLE = "incompatible"  # authenticated, no common network version: we sent a Nack
REFUSED = "refused"  # authenticated, then closed without an Ack (private node, ban...)
FAILED = "failed"  # connected, but the handshake failed before authentication
UNREACHABLE = "unreachable"  # no TCP connection within the timeout
STATUSES = (REACHABLE, NACKED, INCOMPATIBLE, REFUSED, FAILED, UNREACHABLE)

#: Messages read at most while waiting for an Advertise.
MAX_MESSAGES_PER_VISIT = 1000
#: Longest line accepted when a crawl file is loaded.
MAX_LINE = 1 << 20


def _points(value: Iterable[Point]) -> tuple[Point, ...]:
    return tuple(value)


def _time(value: float) -> float:
    return round(float(value), 3)


def _round(value: float | None) -> float | None:
    """Times are kept to the millisecond, as written."""
    return None if value is None else round(float(value), 3)


@attrs.frozen
class PointRecord:
    """
    What one visit of a point taught us.  Times are the injected clock's
    seconds: ``discovered`` when the crawl first heard of the point,
    ``first_seen``/``last_seen`` when the peer was authenticated there.
    """

    point: Point
    status: str
    discovered: float = attrs.field(converter=_time)
    visited: float = attrs.field(converter=_time)
    peer_id: PeerId | None = None
    announced_version: NetworkVersion | None = None
    pow_level: int | None = None
    private: bool | None = None
    disable_mempool: bool | None = None
    first_seen: float | None = attrs.field(default=None, converter=_round)
    last_seen: float | None = attrs.field(default=None, converter=_round)
    advertised: tuple[Point, ...] = attrs.field(default=(), converter=_points)
    nack_motive: int | None = None
    alternatives: tuple[Point, ...] = attrs.field(default=(), converter=_points)
    error: str | None = None

    @property
    def learned(self) -> tuple[Point, ...]:
        """The points this visit led to: advertised, then Nack alternatives."""
        return self.advertised + self.alternatives

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "point",
            "point": self.point.to_text(),
            "status": self.status,
            "peer_id": None if self.peer_id is None else str(self.peer_id),
            "announced_version": (
                None if self.announced_version is None else self.announced_version.to_json()
            ),
            "pow_level": self.pow_level,
            "private": self.private,
            "disable_mempool": self.disable_mempool,
            "discovered": self.discovered,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "visited": self.visited,
            "advertised": [p.to_text() for p in self.advertised],
            "nack_motive": self.nack_motive,
            "alternatives": [p.to_text() for p in self.alternatives],
            "error": self.error,
        }

    @classmethod
    def from_json(cls, value: Any) -> PointRecord:
        """Raises ``ValueError`` (or a subclass) on anything malformed."""
        if not isinstance(value, dict) or value.get("type") != "point":
            raise ValueError("not a point record")
        status = value["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        peer_id = value.get("peer_id")
        version = value.get("announced_version")
        return cls(
            point=Point.parse(value["point"]),
            status=status,
            discovered=float(value["discovered"]),
            visited=float(value["visited"]),
            peer_id=None if peer_id is None else PeerId.from_b58check(peer_id),
            announced_version=None if version is None else NetworkVersion.from_json(version),
            pow_level=_optional(value.get("pow_level"), int),
            private=_optional(value.get("private"), bool),
            disable_mempool=_optional(value.get("disable_mempool"), bool),
            first_seen=_optional(value.get("first_seen"), float),
            last_seen=_optional(value.get("last_seen"), float),
            advertised=tuple(Point.parse(p) for p in value.get("advertised", ())),
            nack_motive=_optional(value.get("nack_motive"), int),
            alternatives=tuple(Point.parse(p) for p in value.get("alternatives", ())),
            error=_optional(value.get("error"), str),
        )


def _optional(value: Any, kind: type[Any]) -> Any:
    if value is None:
        return None
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {kind.__name__}, got {value!r}")
    return value


@attrs.define
class CrawlMap:
    """
    The map: every point visited (``records``), every point heard of
    (``discovered``, with when), and who advertised whom (``edges``: from an
    advertiser's point to the points it advertised or suggested in a Nack).
    """

    records: dict[Point, PointRecord] = attrs.field(factory=dict)
    discovered: dict[Point, float] = attrs.field(factory=dict)
    seeds: list[Point] = attrs.field(factory=list)
    #: ``False`` when the crawl stopped early (cancelled, time bound, point bound).
    complete: bool = False
    truncated: bool = False

    def add(self, record: PointRecord) -> None:
        self.records[record.point] = record
        self.discovered.setdefault(record.point, record.discovered)
        for point in record.learned:
            self.discovered.setdefault(point, record.visited)

    @property
    def edges(self) -> set[tuple[Point, Point]]:
        return {(r.point, p) for r in self.records.values() for p in r.learned}

    def advertised_by(self, point: Point) -> set[Point]:
        return {source for source, target in self.edges if target == point}

    @property
    def unvisited(self) -> list[Point]:
        return [p for p in self.discovered if p not in self.records]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for record in self.records.values():
            counts[record.status] += 1
        return counts

    def peers(self) -> dict[PeerId, list[Point]]:
        """Peer ids found, with the points they were found at."""
        found: dict[PeerId, list[Point]] = {}
        for record in self.records.values():
            if record.peer_id is not None:
                found.setdefault(record.peer_id, []).append(record.point)
        return found


@attrs.frozen
class CrawlProgress:
    visited: int
    reachable: int
    in_flight: int
    queued: int
    discovered: int
    elapsed: float


@attrs.frozen(kw_only=True)
class CrawlConfig:
    """
    ``pow_target`` is the proof of work peers must show (0: everyone is
    visited, and their level recorded).  ``max_duration`` bounds the whole
    crawl (``None``: no bound); ``max_points`` bounds the points it will
    visit.
    """

    identity: Identity
    versions: Versions
    concurrency: int = 16
    connect_timeout: float = 10.0
    advertise_timeout: float = 5.0
    pow_target: float = 0.0
    max_points: int = 100_000
    max_duration: float | None = None
    disable_mempool: bool = True

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            identity=self.identity,
            versions=self.versions,
            codec=P2PMessageCodec(raw_message_encodings()),
            pow_target=self.pow_target,
            metadata=default_metadata_config(ConnectionMetadata(self.disable_mempool, False)),
            advertised_port=None,
            limits=Limits(connection_timeout=self.connect_timeout),
        )


class CrawlFile:
    """
    The crawl's output: one JSON line per finished visit, appended with a
    single ``write`` and flushed, so a crash loses at most the line being
    written (ignored when the file is loaded).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: Any = None

    def load(self) -> tuple[list[PointRecord], int]:
        """The records of an existing file and the number of lines skipped."""
        records: list[PointRecord] = []
        skipped = 0
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - read line by line
        except FileNotFoundError:
            return records, 0
        with handle:
            while True:
                line = handle.readline(MAX_LINE + 1)
                if not line:
                    break
                if len(line) > MAX_LINE or not line.endswith(b"\n"):
                    skipped += 1
                    if len(line) > MAX_LINE:
                        # drop the rest of an overlong line
                        while line and not line.endswith(b"\n"):
                            line = handle.readline(MAX_LINE)
                    continue
                try:
                    value = json.loads(line)
                    if isinstance(value, dict) and value.get("type") != "point":
                        continue
                    records.append(PointRecord.from_json(value))
                except (ValueError, KeyError, TypeError, P2PError):
                    skipped += 1
        return records, skipped

    def append(self, record: PointRecord) -> None:
        if self._handle is None:
            self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open for the crawl
            if self._handle.tell() > 0:
                self._terminate_cut_line()
        line = json.dumps(record.to_json(), separators=(",", ":")).encode() + b"\n"
        self._handle.write(line)
        self._handle.flush()

    def _terminate_cut_line(self) -> None:
        with open(self.path, "rb") as reader:
            reader.seek(-1, os.SEEK_END)
            if reader.read(1) != b"\n":
                self._handle.write(b"\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Crawler:
    """
    Crawls from seed points; :meth:`crawl` fires with the :class:`CrawlMap`.
    Cancelling that Deferred stops the crawl (visits in flight are aborted)
    and fails it with ``CancelledError``; what was written stays in the file.
    """

    def __init__(
        self,
        config: CrawlConfig,
        clock: IReactorTime,
        endpoint_factory: EndpointFactory,
        *,
        output: CrawlFile | None = None,
        on_record: Callable[[PointRecord], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.endpoint_factory = endpoint_factory
        self.output = output
        self.on_record = on_record
        self.map = CrawlMap()
        self._session_config = config.session_config()
        self._queue: deque[Point] = deque()
        self._in_flight: dict[Point, Deferred[PointRecord | None]] = {}
        self._started = 0.0
        self._done: Deferred[CrawlMap] | None = None
        self._stopping = False
        self._deadline: Any = None
        self.skipped_lines = 0

    def progress(self) -> CrawlProgress:
        return CrawlProgress(
            visited=len(self.map.records),
            reachable=sum(1 for r in self.map.records.values() if r.status == REACHABLE),
            in_flight=len(self._in_flight),
            queued=len(self._queue),
            discovered=len(self.map.discovered),
            elapsed=self.clock.seconds() - self._started,
        )

    def crawl(self, seeds: Iterable[Point]) -> Deferred[CrawlMap]:
        if self._done is not None:
            raise RuntimeError("a crawler crawls once")
        self._started = self.clock.seconds()
        self._done = Deferred(lambda _: self._stop(cancelled=True))
        if self.output is not None:
            records, self.skipped_lines = self.output.load()
            for record in records:
                self.map.add(record)
        for point in seeds:
            if point not in self.map.seeds:
                self.map.seeds.append(point)
            self._discover(point)
        for point in self.map.unvisited:
            self._enqueue(point)
        if self.config.max_duration is not None:
            self._deadline = self.clock.callLater(self.config.max_duration, self._stop)
        self._pump()
        return self._done

    # -- scheduling ----------------------------------------------------------

    def _discover(self, point: Point) -> None:
        if point not in self.map.discovered:
            self.map.discovered[point] = self.clock.seconds()
        self._enqueue(point)

    def _enqueue(self, point: Point) -> None:
        if point in self.map.records or point in self._in_flight or point in self._queue:
            return
        if (
            len(self.map.records) + len(self._in_flight) + len(self._queue)
            >= self.config.max_points
        ):
            self.map.truncated = True
            return
        self._queue.append(point)

    def _pump(self) -> None:
        while self._queue and len(self._in_flight) < self.config.concurrency and not self._stopping:
            point = self._queue.popleft()
            visit = Deferred.fromCoroutine(self._visit(point))
            self._in_flight[point] = visit
            visit.addBoth(self._visited, point)
        if not self._queue and not self._in_flight and not self._stopping:
            self._finish(complete=not self.map.truncated)

    def _visited(self, result: PointRecord | Failure | None, point: Point) -> None:
        self._in_flight.pop(point, None)
        if self._stopping:
            return
        if isinstance(result, Failure):
            # a bug, not a network event: logged, and the crawl goes on
            _log.failure("crawler visit of {point} failed", result, point=str(point))
            self._pump()
            return
        if result is None:
            self._pump()
            return
        self.map.add(result)
        if self.output is not None:
            self.output.append(result)
        if self.on_record is not None:
            self.on_record(result)
        for learned in result.learned:
            self._discover(learned)
        self._pump()

    def _stop(self, cancelled: bool = False) -> None:
        if self._stopping:
            return
        self._stopping = True
        for visit in list(self._in_flight.values()):
            visit.cancel()
        self._finish(complete=False, cancelled=cancelled)

    def _finish(self, complete: bool, cancelled: bool = False) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._stopping = True
        self.map.complete = complete
        if self.output is not None:
            self.output.close()
        done = self._done
        if done is not None and not done.called and not cancelled:
            done.callback(self.map)

    # -- one visit -------------------------------------------------------------

    async def _visit(self, point: Point) -> PointRecord | None:
        discovered = self.map.discovered.get(point, self.clock.seconds())
        session = Session(self._session_config, self.clock, incoming=False, point=point)
        infos: list[tuple[ConnectionInfo, float]] = []
        session.when_authenticated().addCallbacks(
            lambda info: infos.append((info, self.clock.seconds())), lambda _: None
        )
        fields: dict[str, Any] = {}
        try:
            endpoint = self.endpoint_factory(point)
            await connect_session(
                self._session_config,
                self.clock,
                endpoint,
                point=point,
                timeout=self.config.connect_timeout,
                session=session,
            )
        except CancelledError:
            if self._stopping:
                raise
            # the attempt was aborted by its deadline before TCP connected
            fields = {"status": UNREACHABLE, "error": "connection timed out"}
        except RejectedByNack as error:
            fields = {
                "status": NACKED,
                "nack_motive": int(error.motive),
                "alternatives": error.alternative_points or (),
                "error": str(error),
            }
        except RejectedNoCommonProtocol as error:
            fields = {"status": INCOMPATIBLE, "error": str(error)}
        except (P2PError, OSError) as error:
            if infos:
                status = REFUSED
            elif session.transport is not None:
                status = FAILED
            else:
                status = UNREACHABLE
            fields = {"status": status, "error": str(error) or type(error).__name__}
        else:
            try:
                advertised = await self._ask_addresses(session, infos)
            finally:
                session.close("crawled")
            fields = {"status": REACHABLE, "advertised": advertised}
        now = self.clock.seconds()
        record = PointRecord(point=point, discovered=discovered, visited=now, **fields)
        if infos:
            record = self._with_peer(record, *infos[0], session)
        return record

    async def _ask_addresses(
        self, session: Session, infos: list[tuple[ConnectionInfo, float]]
    ) -> tuple[Point, ...]:
        if infos and infos[0][0].private_node:
            return ()
        session.write_now(Bootstrap())
        deadline = self.clock.seconds() + self.config.advertise_timeout
        for _ in range(MAX_MESSAGES_PER_VISIT):
            remaining = deadline - self.clock.seconds()
            if remaining <= 0:
                break
            reading = session.read()
            reading.addTimeout(remaining, self.clock)
            try:
                message = await reading
            except TimeoutError:
                break  # no Advertise in time
            except P2PError:
                break  # the peer closed
            if isinstance(message, Advertise):
                return message.points
        return ()

    def _with_peer(
        self, record: PointRecord, info: ConnectionInfo, when: float, session: Session
    ) -> PointRecord:
        level = None
        message = session.remote_connection_message
        if message is not None:
            level = pow_level(message.public_key, message.proof_of_work_stamp)
        metadata = info.remote_metadata
        previous = self.map.records.get(record.point)
        first = previous.first_seen if previous is not None else None
        return attrs.evolve(
            record,
            peer_id=info.peer_id,
            announced_version=info.announced_version,
            pow_level=level,
            private=info.private_node,
            disable_mempool=getattr(metadata, "disable_mempool", None),
            first_seen=first if first is not None else when,
            last_seen=when,
        )


# -- Seeds and summaries ----------------------------------------------------------------


def points_of_peers_file(data: bytes) -> list[str]:
    """
    Seed entries from a file: Octez's ``peers.json`` (the points of every
    peer's last connections), a crawl file (its points), or one
    ``host[:port][#peer_id]`` per line (``#`` starts a comment otherwise).
    Raises ``ValueError`` on a file it cannot read as any of these.
    """
    text = data.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _peers_json_points(json.loads(text))
    if stripped.startswith("{"):
        return [record.point.to_text() for record in _crawl_lines(text)]
    entries = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            entries.append(entry)
    return entries


def _peers_json_points(value: Any) -> list[str]:
    from .peers_file import LAST_FIELDS, peer_from_json

    if not isinstance(value, list):
        raise ValueError("expected a JSON array of peers")
    entries: list[str] = []
    for item in value:
        info = peer_from_json(item, lambda meta: meta)
        for name in LAST_FIELDS:
            last = getattr(info, name)
            point = None if last is None else last[0].point()
            if point is not None and point.to_text() not in entries:
                entries.append(point.to_text())
    return entries


def _crawl_lines(text: str) -> list[PointRecord]:
    records = []
    for line in text.splitlines():
        try:
            records.append(PointRecord.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, P2PError):
            continue
    return records


def render_summary(result: CrawlMap) -> str:
    """A table of every point visited, then the totals."""
    header = ("point", "status", "peer id", "chain", "ddb", "p2p", "pow", "priv", "adv", "by")
    rows: list[tuple[str, ...]] = []
    edges = result.edges
    incoming: dict[Point, int] = {}
    for _, target in edges:
        incoming[target] = incoming.get(target, 0) + 1
    order = {status: index for index, status in enumerate(STATUSES)}
    for record in sorted(
        result.records.values(), key=lambda r: (order[r.status], r.point.addr, r.point.port)
    ):
        version = record.announced_version
        rows.append(
            (
                record.point.to_text(),
                record.status,
                "-" if record.peer_id is None else str(record.peer_id),
                "-" if version is None else version.chain_name.decode("utf-8", "replace"),
                "-" if version is None else str(version.distributed_db_version),
                "-" if version is None else str(version.p2p_version),
                "-" if record.pow_level is None else str(record.pow_level),
                "-" if record.private is None else ("yes" if record.private else "no"),
                str(len(record.learned)),
                str(incoming.get(record.point, 0)),
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]
    counts = result.counts()
    totals = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    state = "complete" if result.complete else "incomplete"
    if result.truncated:
        state += ", point bound reached"
    unvisited = len(result.unvisited)
    lines.append("")
    lines.append(
        f"{len(result.records)} points ({totals or 'none'}), {len(result.peers())} peer ids, "
        f"{len(edges)} advertisements, {unvisited} points not visited; crawl {state}"
    )
    return "\n".join(lines)


def render_progress(progress: CrawlProgress) -> str:
    return (
        f"{progress.visited} visited ({progress.reachable} reachable), "
        f"{progress.in_flight} connecting, {progress.queued} queued, "
        f"{progress.discovered} known, {progress.elapsed:.0f} s"
    )


__all__ = [
    "FAILED",
    "INCOMPATIBLE",
    "NACKED",
    "REACHABLE",
    "REFUSED",
    "STATUSES",
    "UNREACHABLE",
    "CrawlConfig",
    "CrawlFile",
    "CrawlMap",
    "CrawlProgress",
    "Crawler",
    "PointRecord",
    "points_of_peers_file",
    "render_progress",
    "render_summary",
]
