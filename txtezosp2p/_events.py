"""
Logger namespaces and event names, aligned with Octez's structured events
(``src/lib_p2p/p2p_events.ml``, behaviour.md §14).

Every log call of the library passes ``event=<name>`` among its fields, so
that a JSON log sink can be filtered the way Octez operators filter
``p2p.socket`` or ``p2p.connect_handler`` events.  Namespaces are
``txtezosp2p.<octez section>``.

Events a remote host can repeat at will (refused connections, failed
handshakes) go through a :class:`SummarisingLogger`, which logs a few of
them one by one and counts the rest.

The library emits events of ``info`` and above unless :func:`set_level`
(public as :func:`txtezosp2p.log.set_level`) asks for ``debug``: a debug
event costs microseconds to build even when no observer keeps it, and
some are per connection or per message.  Hot paths also test
:func:`debug_enabled` before computing a debug event's fields.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

_LEVELS = (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical)

#: The levels the library emits; below them no event is built (see set_level).
_enabled: frozenset[LogLevel] = frozenset(_LEVELS[1:])


def set_level(level: LogLevel) -> None:
    """Emit events of ``level`` and above (``LogLevel.info`` until told otherwise)."""
    global _enabled
    _enabled = frozenset(_LEVELS[_LEVELS.index(level) :])


def level() -> LogLevel:
    """The lowest level emitted."""
    return min(_enabled, key=_LEVELS.index)


def debug_enabled() -> bool:
    """Whether debug events are emitted: hot paths test it before building one."""
    return LogLevel.debug in _enabled


class _SectionLogger(Logger):
    """A ``Logger`` that drops events below the library's level before building them."""

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        if level in _enabled:
            super().emit(level, format, **kwargs)


def logger(section: str) -> Logger:
    """The logger of an Octez event section, e.g. ``logger("p2p.socket")``."""
    return _SectionLogger(namespace=f"txtezosp2p.{section}")


# [p2p.socket]
SENDING_AUTHENTICATION = "sending_authentication"
NACK_POINT_WITH_LIST = "nack_point_with_list"
NACK_POINT_NO_POINT = "nack_point_no_point"
CONNECTION_CLOSED = "connection_closed"
SOCKET_READ_ERROR = "socket_read_error"
SOCKET_WRITE_ERROR = "socket_write_error"

# [p2p.connect_handler]
AUTHENTICATE_START = "authenticate_start"
AUTHENTICATE = "authenticate"
AUTHENTICATE_STATUS = "authenticate_status"
AUTHENTICATION_ERROR = "authentication_error"
CONNECTION_REJECTED_BY_PEERS = "connection_rejected_by_peers"
NEW_CONNECTION = "new_connection"
DISCONNECTED = "disconnected"
CONNECT_ERROR = "connect_error"

# [p2p]
ACTIVATE_LAYER = "activate_layer"
ACTIVATE_NETWORK = "activate_network"
SHUTDOWN_WELCOME_WORKER = "shutdown_welcome_worker"
SHUTDOWN_CONNECTION_HANDLER = "shutdown_connection_handler"

# [p2p.welcome]
INCOMING_CONNECTION_ERROR = "incoming_connection_error"

# [files] (no Octez counterpart: Octez leaves crash leftovers in place)
STALE_TEMP_FILES_REMOVED = "stale_temp_files_removed"

# [p2p.connect_handler]
CONNECT_STATUS = "connect_status"
PEER_REJECTED = "peer_rejected"
SIMULTANEOUS_CONNECTION = "simultaneous_connection"
TRIGGER_MAINTENANCE_TOO_MANY_CONNECTIONS = "trigger_maintenance_too_many_connections"
GREYLIST_PEER = "greylist_peer"

# [p2p.conn]
DISCONNECT = "disconnect"
UNEXPECTED_ERROR_ANSWERER = "unexpected_error_answerer"

# [p2p.protocol (the answerer)]
BOOTSTRAP_RECEIVED = "bootstrap_received"
ADVERTISE_RECEIVED = "advertise_received"
ADVERTISE_SENDING_FAILED = "advertise_sending_failed"
GET_POINTS = "get_points"
PEER_DISCOVERY_DISABLED = "peer_discovery_disabled"
SWAP_REQUEST_RECEIVED = "swap_request_received"
SWAP_REQUEST_IGNORED = "swap_request_ignored"
SWAP_ACK_RECEIVED = "swap_ack_received"
NO_SWAP_CANDIDATE = "no_swap_candidate"
SWAP_SUCCEEDED = "swap_succeeded"
SWAP_FAILED = "swap_failed"
PRIVATE_NODE_REQUEST = "private_node_request"
PRIVATE_NODE_NEW_PEERS = "private_node_new_peers"
PRIVATE_NODE_PEERS_REQUEST = "private_node_peers_request"
PRIVATE_NODE_SWAP_REQUEST = "private_node_swap_request"
PRIVATE_NODE_SWAP_ACK = "private_node_swap_ack"

# [p2p.maintenance]
MAINTENANCE_STARTED = "maintenance_started"
MAINTENANCE_ENDED = "maintenance_ended"
TOO_FEW_CONNECTIONS_MAINTENANCE = "too_few_connections_maintenance"
TOO_MANY_CONNECTIONS_MAINTENANCE = "too_many_connections_maintenance"
SHUTDOWN_MAINTENANCE_WORKER = "shutdown_maintenance_worker"
SHUTDOWN_CONNECTION_POOL = "shutdown_connection_pool"
#: Ours: Octez never starts its LAN discovery worker.
SHUTDOWN_DISCOVERY = "shutdown_discovery"

# [p2p.pool]
GC_POINTS = "gc_points"
GC_PEER_IDS = "gc_peer_ids"

# [p2p.acl]
GREYLIST_ADDR = "greylist_addr"
ACL_CLEANUP = "acl_cleanup"

# [p2p.io-scheduler]
UNEXPECTED_ERROR_SCHEDULER = "unexpected_error_scheduler"
SHUTDOWN_SCHEDULER = "shutdown_scheduler"

# [p2p.fd (socket options)]
INCOMING_ERROR = "incoming_error"
SET_SOCKET_OPTION_TCP_KEEPALIVE_FAILED = "set_socket_option_tcp_keepalive_failed"
SET_SOCKET_OPTION_TCP_USER_TIMEOUT_FAILED = "set_socket_option_tcp_user_timeout_failed"
SET_SOCKET_OPTION_TCP_NODELAY_FAILED = "set_socket_option_tcp_nodelay_failed"

# [p2p (the public API)]
BROADCAST = "broadcast"

# [observer (no Octez counterpart)]
OBSERVER_CHAIN = "observer_chain"
OBSERVER_ERROR = "observer_error"

# [any section]
UNEXPECTED_ERROR = "unexpected_error"

# [main] identity (octez-node identity)
IDENTITY_GENERATED = "identity_generated"
IDENTITY_LOADED = "identity_loaded"

# [node (the twistd service and the tezos-p2p command, no Octez counterpart)]
ADMIN_LISTENING = "admin_listening"
ADMIN_REQUEST = "admin_request"
ADMIN_ERROR = "admin_error"
ADMIN_STREAM_OVERFLOW = "admin_stream_overflow"
CONFIG_VALIDATION_WARNING = "config_validation_warning"
CANNOT_RESOLVE_BOOTSTRAP_PEER = "cannot_resolve_bootstrap_peer"
DIAL_SUMMARY = "dial_summary"
IDENTITY_MINING = "identity_mining"
MESSAGE_READ = "message_read"
STALE_LOCK = "stale_lock"


# -- Rate limiting of repetitive events --------------------------------------------


class _Window:
    """What one kind of event did since ``start``."""

    __slots__ = ("call", "count", "event", "kind", "log", "start", "subjects", "summary")

    def __init__(self, start: float, log: Logger, summary: str, event: Any, kind: str) -> None:
        self.start = start
        self.log = log
        self.summary = summary
        self.event = event
        self.kind = kind
        self.count = 0
        self.subjects: set[str] = set()
        self.call: IDelayedCall | None = None


class SummarisingLogger:
    """
    Rate-limits the log lines of repetitive events: per kind of event, in
    each window of ``period`` seconds (starting at the kind's first
    occurrence), the first ``burst`` occurrences are logged as usual and the
    others only counted; when a window in which some were held back ends,
    one line at info level summarises it.

    A kind is a logger namespace, an ``event`` name, a ``summary`` format
    and an optional ``kind`` text (a reason, from a small set).  ``summary``
    is the text of the summary line, with the fields ``kind``, ``count``
    (every occurrence of the window, logged or not), ``subjects`` (how many
    distinct ``subject`` values, e.g. addresses, counting up to
    ``max_subjects``), ``period`` and ``not_logged``; the line carries the
    same ``event`` name and ``summarised=True``.  So a flood of N events over
    T seconds writes O(T / period) lines, and memory stays bounded.

    ``clock`` is the node's clock; without one (a session used on its own)
    every occurrence is logged and nothing is counted.  A timer runs only
    while a window holds occurrences back; :meth:`flush` ends every window
    at once (at shutdown).
    """

    def __init__(
        self,
        clock: IReactorTime | None,
        *,
        period: float = 10.0,
        burst: int = 10,
        max_subjects: int = 10_000,
    ) -> None:
        if period <= 0 or burst < 0 or max_subjects < 0:
            raise ValueError("period must be positive, burst and max_subjects not negative")
        self.clock = clock
        self.period = period
        self.burst = burst
        self.max_subjects = max_subjects
        self._windows: dict[tuple[str, Any, str, str], _Window] = {}

    def debug(
        self, format: str, *, log: Logger, summary: str, subject: str, kind: str = "", **fields: Any
    ) -> None:
        self.emit(
            LogLevel.debug, format, log=log, summary=summary, subject=subject, kind=kind, **fields
        )

    def info(
        self, format: str, *, log: Logger, summary: str, subject: str, kind: str = "", **fields: Any
    ) -> None:
        self.emit(
            LogLevel.info, format, log=log, summary=summary, subject=subject, kind=kind, **fields
        )

    def emit(
        self,
        level: LogLevel,
        format: str,
        *,
        log: Logger,
        summary: str,
        subject: str,
        kind: str = "",
        **fields: Any,
    ) -> None:
        """Log ``format`` with ``fields`` at ``level``, or count it."""
        if self.clock is None:
            log.emit(level, format, **fields)
            return
        now = self.clock.seconds()
        key = (log.namespace, fields.get("event"), summary, kind)
        window = self._windows.get(key)
        if window is not None and window.call is None and now >= window.start + self.period:
            window = None  # a quiet window ends unannounced
        if window is None:
            window = self._windows[key] = _Window(now, log, summary, fields.get("event"), kind)
        window.count += 1
        if len(window.subjects) < self.max_subjects:
            window.subjects.add(subject)
        if window.count <= self.burst:
            log.emit(level, format, **fields)
        elif window.call is None:
            delay = max(0.0, window.start + self.period - now)
            window.call = self.clock.callLater(delay, self._close, key)

    def _close(self, key: tuple[str, Any, str, str]) -> None:
        window = self._windows.pop(key, None)
        if window is None:
            return
        if window.call is not None and window.call.active():
            window.call.cancel()
        window.call = None
        held = window.count - self.burst
        if held > 0:
            window.log.info(
                window.summary,
                event=window.event,
                kind=window.kind,
                count=window.count,
                subjects=len(window.subjects),
                period=self.period,
                not_logged=held,
                summarised=True,
            )

    def flush(self) -> None:
        """End every window now: summaries of what was held back, no timer left."""
        for key in list(self._windows):
            self._close(key)
