"""
:class:`AdminService`: the admin resource tree served on endpoint strings,
each checked by the binding rule of :mod:`.endpoints` first.

Requests are not written to an access log: each one is a debug event
(``admin_request``, with its method, path, status and size), visible only
when debug logging is on.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.python.failure import Failure
from twisted.web.http import Request
from twisted.web.server import Site

from ... import _events as ev
from ...p2p import P2P, FakedP2P
from ...welcome import EndpointListener, address_text, when_all_listening
from .bodies import AdminRequest
from .endpoints import check_admin_endpoint
from .network import AdminResource

_log = ev.logger("p2p.admin")


class _AdminListener(EndpointListener):
    def log_listening(self, port: IListeningPort) -> None:
        _log.info(
            "admin API on {address}", event=ev.ADMIN_LISTENING, address=address_text(port.getHost())
        )

    def log_failure(self, failure: Failure) -> None:
        # the reason only: whoever waits on when_listening() gets the failure
        _log.error(
            "cannot serve the admin API on {description}: {reason}",
            event=ev.ADMIN_ERROR,
            description=self.description,
            reason=failure.getErrorMessage(),
        )


class _AdminSite(Site):
    """A site whose access log is debug events instead of one line per request."""

    def log(self, request: Request) -> None:
        _log.debug(
            "{method} {path} {status}",
            event=ev.ADMIN_REQUEST,
            method=request.method.decode("latin-1")[:20],
            path=(request.uri or b"").decode("latin-1")[:200],
            status=request.code,
            size=request.sentLength,
        )


class AdminService(MultiService):
    """Serves an :class:`AdminResource` on endpoint strings."""

    def __init__(
        self,
        reactor: IReactorTime,
        listen: tuple[str, ...],
        source: Callable[[], P2P | FakedP2P | None],
        *,
        allow_public: bool = False,
    ) -> None:
        super().__init__()
        for description in listen:
            check_admin_endpoint(description, allow_public)
        self.resource = AdminResource(source)
        self.site = _AdminSite(
            self.resource,
            requestFactory=AdminRequest,
            parsePOSTFormSubmission=False,  # no form bodies: never parsed into args
            reactor=reactor,
        )
        self.site.noisy = False
        self.listeners = [
            _AdminListener(serverFromString(reactor, d), self.site, d) for d in listen
        ]
        for listener in self.listeners:
            listener.setServiceParent(self)

    def when_listening(self) -> Deferred[list[IListeningPort]]:
        """Fires with the listening ports once all are open (fails if one cannot open)."""
        return when_all_listening(self.listeners, "admin service")

    @property
    def ports(self) -> list[IListeningPort]:
        return [listener.port for listener in self.listeners if listener.port is not None]

    def stopService(self) -> Deferred[None]:
        self.resource.close_streams()
        return maybeDeferred(super().stopService)  # type: ignore[arg-type]


__all__ = ["AdminService"]
