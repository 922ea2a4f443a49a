# -*- test-case-name: tests.test_peers_file -*-
"""
The ``peers.json`` file: what the pool remembers about peer ids across
restarts (behaviour.md section 12.1; Octez ``src/lib_p2p/p2p_peer_state.ml``,
module ``Info.File`` and ``Info.encoding``, and ``src/lib_p2p/p2p_pool.ml``,
which loads the file when the pool is created and saves it when the pool is
destroyed).

The file is a JSON array with one object per known peer id, its keys in
Octez's order::

    [ { "peer_id": "id...",
        "created": "2026-01-01T00:00:00.000-00:00",
        "trusted": true,                    # written only when true
        "peer_metadata": { ... },           # the upper layer's object
        "events": [ {"kind": "connection_established", "timestamp": "...",
                     "addr": "::ffff:1.2.3.4", "port": 9732} ],
        "last_failed_connection": [ {"addr": "...", "port": 9732}, "..." ],
        "last_rejected_connection": [ ... ],
        "last_established_connection": [ ... ],
        "last_disconnection": [ ... ] } ]

What is persisted is listed in behaviour.md section 2.5: the peer id, its
creation time, its trust flag, the upper layer's metadata, its last 100
events and the four ``last_*`` connection records.  The connection state is
not (a loaded peer is Disconnected), nor are points, bans, greylists or
reconnection delays.

Reading follows Octez's decoder (``Info.encoding``): ``trusted`` and
``events`` may be absent (``dft``), the four ``last_*`` fields may be absent
(``opt``), timestamps are RFC 3339 strings or seconds since the epoch
(``Time.System.encoding``: a JSON integer, or the decimal string that
data-encoding writes for an ``int64``), a port is absent when unknown.
Unknown keys are ignored; ``null`` for an optional field counts as absent.
When a list holds more than 100 events only the last 100 are read (Octez's
ring keeps the last 100 too).  Loading, for each loaded peer whose
``last_seen`` (the most recent of established / rejected / disconnection)
has a port, registers that point in the pool, not trusted, as Octez's
``P2p_pool.create`` does.

Where we differ from Octez, on purpose:

* **A damaged file is kept.**  Octez reports a file that is not JSON
  (``parse_error_peers``) and starts with no peers; valid JSON of the wrong
  shape probably makes its decoder raise ([UNCERTAIN] in behaviour.md
  12.1); a file it could not parse is overwritten by its next save, and no
  copy is kept.  Here a file that is not JSON, not UTF-8, of the wrong shape
  (one bad entry spoils the whole file, as in Octez's all-or-nothing
  decoder) or larger than :data:`MAX_FILE_SIZE` is reported with ``parse_error_peers`` and moved
  aside to ``<path>.corrupt-<UTC time YYYYmmddTHHMMSSZ>`` (a ``-<n>`` suffix
  is added if that name is taken); loading continues with no peers.
  Nothing is deleted or silently overwritten.  A file that cannot be *read*
  (permissions, I/O error) is not damaged: :meth:`PeersFile.load` raises the
  ``OSError`` rather than let a later save replace a file it never read.
* **Peers already in the pool win.**  Octez loads into an empty table; we
  may load into a pool that already knows some peer ids, and then keep the
  in-memory record, which is more recent.  Within the file the last entry
  of a peer id wins (insertion in file order).  Loaded peers are put
  into the table directly, like Octez, without its garbage collection: a
  table loaded above its high-water mark shrinks at the next new peer.
* **Saving is atomic and may be periodic.**  Octez writes the file only at
  pool destruction, so a node that is killed, or a container that is
  stopped without a clean shutdown, loses everything it learnt (behaviour.md
  section 16 item 1, tezos-k8s#561).  :class:`PeersFileService` saves every
  ``interval`` seconds (300 by default) and once more when stopped; each save
  goes through :func:`txtezosp2p._files.atomic_write` (temporary file,
  fsync, rename, directory fsync), so a crash leaves the old file or the new
  one, never a mix.  Temporary files left by a crash are named
  ``<name>.<pid>.<random>.tmp`` and are never read; the service removes
  the stale ones when it starts (:func:`txtezosp2p._files.remove_stale_temp_files`).
* ``/dev/null`` is never written (Octez skips only the load).
* Events without a connection id cannot be written in Octez's format (its
  ``addr`` is required); they are left out of the file.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from . import _events as ev
from ._files import atomic_write, remove_stale_temp_files
from .pool import Pool
from .pool_state import DISCONNECTED, EVENT_RING, MAX_TIME, InfoEvent, PeerInfo, rfc3339
from .wire.errors import DecodingError
from .wire.ids import ConnectionId, PeerId, to_ipv6

__all__ = [
    "MAX_EVENTS",
    "MAX_FILE_SIZE",
    "PEER_EVENT_KINDS",
    "PeersFile",
    "PeersFileError",
    "PeersFileService",
    "parse_time",
    "peer_from_json",
    "peer_to_json",
]

_log = ev.logger("p2p.pool")

# Octez event names ([p2p.pool] section, p2p_events.ml)
PARSE_ERROR_PEERS = "parse_error_peers"
SAVE_METADATA = "save_metadata"
SAVE_ERROR_PEERS = "save_error_peers"

#: Files larger than this are not read (treated as damaged and moved aside).
MAX_FILE_SIZE = 64 * 1024 * 1024

#: Events read per peer: the last ones of the list, as Octez's ring keeps.
MAX_EVENTS = EVENT_RING

#: The ``kind`` strings of Octez's ``P2p_peer.Pool_event`` (behaviour.md 2.9 item 3).
PEER_EVENT_KINDS = frozenset(
    {
        "incoming_request",
        "rejecting_request",
        "request_rejected",
        "connection_established",
        "disconnection",
        "external_disconnection",
    }
)

#: The ``last_*`` fields, in Octez's order.
LAST_FIELDS = (
    "last_failed_connection",
    "last_rejected_connection",
    "last_established_connection",
    "last_disconnection",
)

MetadataToJson = Callable[[Any], Any]
MetadataFromJson = Callable[[Any], Any]


class PeersFileError(ValueError):
    """The content of a peers file does not have the expected shape."""


# -- Timestamps -----------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{1,4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,18}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_INTEGER = re.compile(r"[+-]?\d{1,19}", re.ASCII)

#: 0001-01-01T00:00:00Z, the earliest time we represent.
MIN_TIME = -62135596800.0
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _check_range(seconds: float, value: Any) -> float:
    if not MIN_TIME <= seconds <= MAX_TIME:
        raise ValueError(f"time out of range: {value!r}")
    return seconds


def parse_time(value: Any) -> float:
    """
    A timestamp of Octez's JSON (``Time.System.encoding``) as seconds since
    the epoch: an RFC 3339 string (``2026-01-01T00:00:00.000-00:00``, ``Z`` or
    ``+hh:mm`` offsets, fractional seconds optional) or a number of seconds
    since the epoch (a JSON integer, or a decimal string as data-encoding
    writes an ``int64``).  Raises :class:`ValueError` otherwise, or when the
    time is outside years 1 to 9999.  Years of fewer than four digits are
    accepted: :func:`~txtezosp2p.pool_state.rfc3339` writes years before
    1000 that way, and its output must load again.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_range(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    if _INTEGER.fullmatch(value):
        return _check_range(float(int(value)), value)
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second = (int(match.group(n)) for n in range(1, 7))
    fraction, zulu, sign, off_hours, off_minutes = match.group(7, 8, 9, 10, 11)
    if second == 60:  # a leap second, as Ptime reads it: the last second of the minute
        second = 59
    offset = datetime.timedelta(0)
    if not zulu:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            raise ValueError(f"bad time zone offset: {value!r}")
        offset = datetime.timedelta(hours=int(off_hours), minutes=int(off_minutes))
        if sign == "-":
            offset = -offset
    try:
        moment = datetime.datetime(
            year, month, day, hour, minute, second, tzinfo=datetime.timezone(offset)
        )
    except ValueError as error:
        raise ValueError(f"bad timestamp {value!r}: {error}") from None
    whole = (moment - _EPOCH) // datetime.timedelta(seconds=1)
    seconds = whole + (float("0." + fraction) if fraction else 0.0)
    return _check_range(seconds, value)


# -- JSON of one peer ----------------------------------------------------------------


def _connection_json(connection_id: ConnectionId, when: float) -> list[Any]:
    return [connection_id.to_json(), rfc3339(when)]


def peer_to_json(info: PeerInfo, metadata_to_json: MetadataToJson) -> dict[str, Any]:
    """
    One element of ``peers.json`` (Octez ``P2p_peer_state.Info.encoding``),
    keys in Octez's order.  ``trusted`` is written only when true; events
    without a connection id are left out (Octez cannot represent them).
    """
    out: dict[str, Any] = {"peer_id": str(info.peer_id), "created": rfc3339(info.created)}
    if info.trusted:
        out["trusted"] = True
    out["peer_metadata"] = metadata_to_json(info.metadata)
    out["events"] = [event.peer_json() for event in info.events if event.connection_id is not None]
    for name in LAST_FIELDS:
        value: tuple[ConnectionId, float] | None = getattr(info, name)
        if value is not None:
            out[name] = _connection_json(*value)
    return out


def _fail(where: str, message: str) -> PeersFileError:
    return PeersFileError(f"{where}: {message}")


def _time(value: Any, where: str) -> float:
    try:
        return parse_time(value)
    except ValueError as error:
        raise _fail(where, str(error)) from None


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise _fail(where, f"bad port {value!r}")
    return value


def _connection_id(value: Any, where: str) -> ConnectionId:
    """``P2p_connection.Id.encoding``: ``{"addr": ipv6, "port"?: uint16}``."""
    if not isinstance(value, dict):
        raise _fail(where, f"expected an object with addr and port, got {_kind(value)}")
    addr = value.get("addr")
    if not isinstance(addr, str):
        raise _fail(where, f"addr must be a string, got {_kind(addr)}")
    try:
        address = to_ipv6(addr)
    except ValueError as error:
        raise _fail(where, f"bad addr {addr!r}: {error}") from None
    port = value.get("port")
    return ConnectionId(address, None if port is None else _port(port, where))


def _last(value: Any, where: str) -> tuple[ConnectionId, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise _fail(where, "expected [{addr, port}, timestamp]")
    return _connection_id(value[0], where), _time(value[1], where)


def _event(value: Any, where: str) -> InfoEvent:
    if not isinstance(value, dict):
        raise _fail(where, f"an event must be an object, got {_kind(value)}")
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in PEER_EVENT_KINDS:
        raise _fail(where, f"unknown event kind {kind!r}")
    when = _time(value.get("timestamp"), where)
    return InfoEvent(when, kind, None, _connection_id(value, where))


def _kind(value: Any) -> str:
    """The JSON type of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def peer_from_json(value: Any, metadata_from_json: MetadataFromJson) -> PeerInfo:
    """
    Decode one element of ``peers.json`` into a Disconnected :class:`PeerInfo`;
    raises :class:`PeersFileError` saying which field is wrong.  Only the
    last :data:`MAX_EVENTS` events are read.
    """
    if not isinstance(value, dict):
        raise PeersFileError(f"a peer must be an object, got {_kind(value)}")
    raw_id = value.get("peer_id")
    if not isinstance(raw_id, str):
        raise _fail("peer_id", f"expected a string, got {_kind(raw_id)}")
    try:
        peer_id = PeerId.from_b58check(raw_id)
    except (DecodingError, ValueError) as error:
        raise _fail("peer_id", f"bad peer id {raw_id!r}: {error}") from None
    where = f"peer {raw_id}"
    if "created" not in value:
        raise _fail(where, "created is missing")
    created = _time(value["created"], f"{where}: created")
    trusted = value.get("trusted", False)
    if trusted is None:
        trusted = False
    if not isinstance(trusted, bool):
        raise _fail(where, f"trusted must be a boolean, got {_kind(trusted)}")
    if "peer_metadata" not in value:
        raise _fail(where, "peer_metadata is missing")
    try:
        metadata = metadata_from_json(value["peer_metadata"])
    except Exception as error:
        raise _fail(where, f"bad peer_metadata: {error!r}") from None
    raw_events = value.get("events")
    if raw_events is None:
        raw_events = []
    if not isinstance(raw_events, list):
        raise _fail(where, f"events must be an array, got {_kind(raw_events)}")
    events: deque[InfoEvent] = deque(maxlen=EVENT_RING)
    skipped = max(0, len(raw_events) - MAX_EVENTS)
    for index, raw in enumerate(raw_events[skipped:], start=skipped):
        events.append(_event(raw, f"{where}: events[{index}]"))
    lasts: dict[str, tuple[ConnectionId, float] | None] = {}
    for name in LAST_FIELDS:
        raw = value.get(name)
        lasts[name] = None if raw is None else _last(raw, f"{where}: {name}")
    return PeerInfo(
        peer_id,
        created,
        trusted=trusted,
        metadata=metadata,
        state=DISCONNECTED,
        last_failed_connection=lasts["last_failed_connection"],
        last_rejected_connection=lasts["last_rejected_connection"],
        last_established_connection=lasts["last_established_connection"],
        last_disconnection=lasts["last_disconnection"],
        events=events,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- The file ----------------------------------------------------------------------


class PeersFile:
    """
    Load ``peers.json`` into a :class:`Pool` and save the pool's peers to it.

    ``wall_clock`` gives the time used to name the copy of a damaged file
    (``time.time`` unless given; the pool's clock is often a test clock).
    """

    def __init__(
        self,
        path: str,
        pool: Pool,
        *,
        max_size: int = MAX_FILE_SIZE,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.pool = pool
        self.max_size = max_size
        self.wall_clock = wall_clock

    @property
    def disabled(self) -> bool:
        """``/dev/null``: nothing is loaded or saved."""
        return os.path.abspath(self.path) in {os.devnull, "/dev/null"}

    # -- loading ---------------------------------------------------------------------

    def load(self) -> int:
        """
        Read the file and add its peers to the pool (peers already in the
        pool are kept); register the point of each loaded peer's
        ``last_seen`` when it has a port.  Returns the number of peers
        added.  A missing file, or ``/dev/null``, loads nothing; a damaged
        file is reported and moved aside, and nothing is loaded.  Raises
        ``OSError`` if the file exists but cannot be read.
        """
        if self.disabled:
            return 0
        try:
            data = self._read()
        except FileNotFoundError:
            return 0
        if data is None:
            return self._corrupt(f"larger than {self.max_size} bytes")
        try:
            infos = self.decode(data)
        except PeersFileError as error:
            return self._corrupt(str(error))
        loaded = 0
        peers = self.pool.peers
        fresh: dict[PeerId, PeerInfo] = {}
        for info in infos:
            if info.peer_id not in peers:
                fresh[info.peer_id] = info  # the last entry of an id wins
        for peer_id, info in fresh.items():
            peers[peer_id] = info
            loaded += 1
        for info in fresh.values():
            seen = info.last_seen
            point = None if seen is None else seen[0].point()
            if point is not None:
                self.pool.register_point(point)
        return loaded

    def _read(self) -> bytes | None:
        """The file's bytes, or ``None`` if it is larger than ``max_size``."""
        with open(self.path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > self.max_size:
                return None
            data = handle.read(self.max_size + 1)
        return None if len(data) > self.max_size else data

    def decode(self, data: bytes) -> list[PeerInfo]:
        """Decode a whole file; raises :class:`PeersFileError`."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PeersFileError(f"not UTF-8: {error}") from None
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            raise PeersFileError(f"not JSON: {error}") from None
        if not isinstance(value, list):
            raise PeersFileError(f"expected a JSON array of peers, got {_kind(value)}")
        from_json = self.pool.peer_meta.from_json
        infos = []
        for index, item in enumerate(value):
            try:
                infos.append(peer_from_json(item, from_json))
            except PeersFileError as error:
                raise PeersFileError(f"peer [{index}]: {error}") from None
        return infos

    def _corrupt(self, reason: str) -> int:
        """Report a damaged file and move it aside; nothing is loaded."""
        try:
            aside = self._move_aside()
        except OSError as error:
            _log.error(
                "failed to parse peers file {path}: {reason}; could not move it aside: {problem}",
                event=PARSE_ERROR_PEERS,
                path=self.path,
                reason=reason,
                aside=None,
                problem=str(error),
            )
        else:
            _log.error(
                "failed to parse peers file {path}: {reason}; moved to {aside}",
                event=PARSE_ERROR_PEERS,
                path=self.path,
                reason=reason,
                aside=aside,
            )
        return 0

    def _move_aside(self) -> str:
        stamp = datetime.datetime.fromtimestamp(self.wall_clock(), datetime.timezone.utc)
        base = f"{self.path}.corrupt-{stamp.strftime('%Y%m%dT%H%M%SZ')}"
        target, counter = base, 0
        while os.path.lexists(target):
            counter += 1
            target = f"{base}-{counter}"
        os.rename(self.path, target)
        return target

    # -- saving ------------------------------------------------------------------------

    def remove_stale_temp_files(self) -> list[str]:
        """Remove what interrupted saves left behind (before this process saves)."""
        return [] if self.disabled else remove_stale_temp_files(self.path)

    def encode(self) -> bytes:
        """The file content for the pool's current peers."""
        to_json = self.pool.peer_meta.to_json
        document = [peer_to_json(info, to_json) for info in self.pool.peers.values()]
        return (json.dumps(document, indent=2) + "\n").encode("ascii")

    def save(self) -> None:
        """
        Write every known peer atomically.  An ``OSError`` is logged
        (``save_error_peers``) and raised again; the old file stays intact.
        """
        if self.disabled:
            return
        _log.info("saving metadata in {file}", event=SAVE_METADATA, file=self.path)
        data = self.encode()
        try:
            atomic_write(self.path, data, 0o644)
        except OSError as error:
            _log.error(
                "failed to save peers file {file}: {error}",
                event=SAVE_ERROR_PEERS,
                file=self.path,
                error=str(error),
            )
            raise


# -- The service -------------------------------------------------------------------


class PeersFileService(Service):
    """
    Load the peers file when started, save it every ``interval`` seconds
    (never if ``None``) and once more when stopped.  Save errors are logged
    and do not stop the periodic saves; Octez saves only at shutdown
    (behaviour.md section 16 item 1 says why periodic saving is wanted).
    """

    def __init__(
        self,
        peers_file: PeersFile,
        clock: IReactorTime,
        interval: float | None = 300.0,
        *,
        load_on_start: bool = True,
    ) -> None:
        if interval is not None and interval <= 0:
            raise ValueError("the save interval must be positive")
        self.peers_file = peers_file
        self.clock = clock
        self.interval = interval
        self.load_on_start = load_on_start
        self._loop = LoopingCall(self._save_logged)
        self._loop.clock = clock

    def startService(self) -> None:
        self.peers_file.remove_stale_temp_files()
        if self.load_on_start:
            self.peers_file.load()
        super().startService()
        if self.interval is not None:
            self._loop.start(self.interval, now=False).addErrback(self._loop_failed)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        self._save_logged()

    def _save_logged(self) -> None:
        try:
            self.peers_file.save()
        except OSError:
            pass  # already logged by save
        except Exception:
            _log.failure(
                "failed to save peers file {file}",
                event=SAVE_ERROR_PEERS,
                file=self.peers_file.path,
            )

    def _loop_failed(self, failure: Failure) -> None:  # pragma: no cover - defensive
        _log.failure("peers file saving stopped", failure, event=SAVE_ERROR_PEERS)
