# -*- test-case-name: tests.test_crawler -*-
"""
The map a crawl builds (:mod:`txtezosp2p.crawler`): what one visit learnt
of a point (:class:`PointRecord`), the map of them all (:class:`CrawlMap`),
its output file of JSON lines (:class:`CrawlFile`, resumable, a line cut by
a crash ignored), the seeds read from a peers file and the summaries
printed by ``tezos-p2p crawl``.  Nothing here opens a connection.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import attrs

from .wire.encoding import (
    NetworkVersion,
)
from .wire.errors import (
    P2PError,
)
from .wire.ids import PeerId, Point

#: How a visit ended.
REACHABLE = "reachable"  # handshake done (both Acks); asked for addresses
NACKED = "nacked"  # authenticated, then the peer answered with a Nack
INCOMPATIBLE = "incompatible"  # authenticated, no common network version: we sent a Nack
REFUSED = "refused"  # authenticated, then closed without an Ack (private node, ban...)
FAILED = "failed"  # connected, but the handshake failed before authentication
UNREACHABLE = "unreachable"  # no TCP connection within the timeout
STATUSES = (REACHABLE, NACKED, INCOMPATIBLE, REFUSED, FAILED, UNREACHABLE)

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
    "MAX_LINE",
    "NACKED",
    "REACHABLE",
    "REFUSED",
    "STATUSES",
    "UNREACHABLE",
    "CrawlFile",
    "CrawlMap",
    "CrawlProgress",
    "PointRecord",
    "points_of_peers_file",
    "render_progress",
    "render_summary",
]
