"""
Streaming answers (``/network/log``, ``.../log?monitor``): one JSON value per
line over chunked encoding, as events happen.  A client that does not read
is given :data:`STREAM_BACKLOG` events of slack and then cut off, so a
stalled reader never grows the node's memory.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.web.server import Request
from zope.interface import implementer

from ... import _events as ev
from .errors import JSON

_log = ev.logger("p2p.admin")

#: Events a stream may hold for a client that does not read, before it is cut off.
STREAM_BACKLOG = 1000


@implementer(IPushProducer)
class EventStream:
    """
    Writes JSON values to a streaming response, one per line, holding at
    most ``STREAM_BACKLOG`` while the client does not read.  The stream is
    in ``streams`` while it is open (the node closes them all when it stops).
    """

    def __init__(self, request: Request, streams: set[EventStream]) -> None:
        self.request = request
        self.streams = streams
        self.paused = False
        self.pending: deque[bytes] = deque()
        self.finished = False
        self._unsubscribe: list[Callable[[], None]] = []
        request.setHeader(b"content-type", JSON)
        # headers now, as Octez does: a client waiting for its first event
        # must already see the 200
        request.write(b"")
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._gone)
        streams.add(self)
        if request.method == b"HEAD":
            self.close()  # the headers were all it asked for

    def subscribe(self, unsubscribe: Callable[[], None]) -> None:
        """Call ``unsubscribe`` when the stream ends."""
        if self.finished:
            unsubscribe()
            return
        self._unsubscribe.append(unsubscribe)

    def send(self, value: Any) -> None:
        if self.finished:
            return
        line = json.dumps(value).encode() + b"\n"
        if self.paused:
            if len(self.pending) >= STREAM_BACKLOG:
                _log.warn(
                    "admin client too slow: stream closed",
                    event=ev.ADMIN_STREAM_OVERFLOW,
                    path=self.request.path.decode("latin-1"),
                )
                self.close()
                return
            self.pending.append(line)
            return
        self.request.write(line)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self.pending and not self.paused and not self.finished:
            self.request.write(self.pending.popleft())

    def stopProducing(self) -> None:
        self._cleanup()

    def close(self) -> None:
        """End the response (the node stops, or the client is too slow)."""
        if self.finished:
            return
        self._cleanup()
        self.request.unregisterProducer()
        self.request.finish()

    def _gone(self, _: object) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.pending.clear()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self.streams.discard(self)


__all__ = ["STREAM_BACKLOG", "EventStream"]
