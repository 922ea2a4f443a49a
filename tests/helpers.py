"""
Shared test fixtures: fixed identities, backend parametrisation, session
pairs over iosim.
"""

from __future__ import annotations

from typing import Any, cast

from hypothesis import settings
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p import _backend, log
from txtezosp2p.session import Session, SessionConfig
from txtezosp2p.testing import (
    IDENTITY_A,
    IDENTITY_B,
    SANDBOX_VERSIONS,
    session_config,
    weak_identity,
)
from txtezosp2p.wire.ids import Point

settings.register_profile("ci", deadline=None, max_examples=200)
settings.load_profile("ci")

__all__ = [
    "IDENTITY_A",
    "IDENTITY_B",
    "SANDBOX_VERSIONS",
    "backends",
    "capture_events",
    "connected_sessions",
    "debug_events",
    "named",
    "session_config",
    "weak_identity",
]


def backends() -> list[tuple[str, Any]]:
    """The crypto backends to test: the pure twin, and the compiled module if present."""
    found = [("python", _backend.cbox_py)]
    compiled = _backend.compiled_cbox()
    if compiled is not None:
        found.append(("cython", compiled))
    return found


def connected_sessions(
    server_config: SessionConfig,
    client_config: SessionConfig,
    clock: Clock | None = None,
    point: Point | None = None,
) -> tuple[Session, Session, iosim.IOPump, Clock]:
    """An incoming and an outgoing session joined by iosim (not yet pumped)."""
    clock = clock or Clock()
    server = Session(server_config, clock, incoming=True)
    client = Session(client_config, clock, incoming=False, point=point or Point("127.0.0.1", 9732))
    pump = iosim.connect(
        server,
        iosim.makeFakeServer(server),
        client,
        iosim.makeFakeClient(client),
        clock=clock,
    )
    return server, client, pump, clock


def capture_events(case: SynchronousTestCase) -> list[LogEvent]:
    """Collect the log events emitted until the end of the test."""
    events: list[LogEvent] = []
    observer = cast(ILogObserver, events.append)
    globalLogPublisher.addObserver(observer)
    case.addCleanup(globalLogPublisher.removeObserver, observer)
    return events


def debug_events(case: SynchronousTestCase) -> None:
    """Have the library emit its debug events until the end of the test."""
    before = log.level()
    log.set_level(LogLevel.debug)
    case.addCleanup(log.set_level, before)


def named(events: list[LogEvent], name: str) -> list[LogEvent]:
    """The events of ``events`` whose ``event`` field is ``name``."""
    return [event for event in events if event.get("event") == name]
