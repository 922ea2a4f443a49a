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

The crawl's map, its file and its summaries are in
:mod:`txtezosp2p.crawl_map` (re-exported here); this module is the
dialling engine.  A crawl is resumable: each finished visit is appended to
the output file as one JSON line (one ``write`` each), and a crawl started
on an existing file reloads it, does not visit its points again and
resumes from the points they advertised.  A line cut by a crash is ignored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .crawl_map import (
    FAILED,
    INCOMPATIBLE,
    NACKED,
    REACHABLE,
    REFUSED,
    STATUSES,
    UNREACHABLE,
    CrawlFile,
    CrawlMap,
    CrawlProgress,
    PointRecord,
    points_of_peers_file,
    render_progress,
    render_summary,
)
from .identity import Identity
from .interfaces import EndpointFactory
from .limits import Limits
from .session import ConnectionInfo, Session, SessionConfig, connect_session
from .wire.crypto import pow_level
from .wire.encoding import (
    Advertise,
    Bootstrap,
    ConnectionMetadata,
    P2PMessageCodec,
    default_metadata_config,
    raw_message_encodings,
)
from .wire.errors import (
    P2PError,
    RejectedByNack,
    RejectedNoCommonProtocol,
)
from .wire.ids import Point
from .wire.versions import Versions

_log = Logger(namespace="txtezosp2p.crawler")

#: Messages read at most while waiting for an Advertise.
MAX_MESSAGES_PER_VISIT = 1000


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
