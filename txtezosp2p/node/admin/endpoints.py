"""
Where the admin API may listen: a loopback address or a UNIX socket, unless
a public address is asked for explicitly (the API has no authentication).

The decision is taken on what the endpoint would really bind, never on the
text of its description: the description is parsed by Twisted's own
``serverFromString`` and the endpoint is asked to listen on a stand-in
reactor (:class:`_BindRecorder`) that records each bind and opens nothing.
So ``tcp:8732:interface=127.0.0.1:interface=0.0.0.0`` is judged by the
``0.0.0.0`` Twisted would use (the last ``interface=`` wins), escaped colons
and IPv6 forms by what they parse to, and an endpoint type that binds in a
way we cannot see (``systemd:``, plugins) is not local.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol


class _Port:
    """What the stand-in reactor returns for a bind: a port that is not open."""

    def stopListening(self) -> None:
        pass


class _BindRecorder:
    """
    A stand-in reactor for :func:`effective_binds`: its ``listen*`` methods
    record what would be bound; any other reactor method is missing, so an
    endpoint that needs one fails to "listen" and is not judged local.
    """

    def __init__(self) -> None:
        #: ``("tcp", interface)`` (SSL included) or ``("unix", path)`` per bind.
        self.binds: list[tuple[str, str]] = []

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> _Port:
        self.binds.append(("tcp", interface))
        return _Port()

    def listenSSL(
        self, port: int, factory: Any, context: Any, backlog: int = 50, interface: str = ""
    ) -> _Port:
        self.binds.append(("tcp", interface))
        return _Port()

    def listenUNIX(self, address: Any, factory: Any, *args: Any, **kwargs: Any) -> _Port:
        path = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
        self.binds.append(("unix", path))
        return _Port()


def effective_binds(description: str) -> list[tuple[str, str]]:
    """
    What the endpoint string would bind, as ``serverFromString`` reads it:
    ``("tcp", interface)`` or ``("unix", path)`` for each socket.  A
    ``ValueError`` if Twisted cannot parse it or it binds in another way.
    """
    recorder = _BindRecorder()
    try:
        endpoint = serverFromString(recorder, description)
        listening: Deferred[Any] = endpoint.listen(Factory.forProtocol(Protocol))
    except Exception as error:
        raise ValueError(f"not a usable endpoint ({error})") from None
    outcome: list[object] = []
    listening.addBoth(outcome.append)
    if not outcome or not isinstance(outcome[0], _Port) or not recorder.binds:
        raise ValueError("an endpoint that does not bind a TCP address or a UNIX socket")
    return recorder.binds


def _loopback(interface: str) -> bool:
    try:
        address = ipaddress.ip_address(interface)
    except ValueError:
        return False  # "" (every address) or a host name (not resolved here)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_local_endpoint(description: str) -> bool:
    """Whether an endpoint string binds only loopback addresses or UNIX sockets."""
    try:
        binds = effective_binds(description)
    except ValueError:
        return False
    return all(kind == "unix" or _loopback(where) for kind, where in binds)


def check_admin_endpoint(description: str, allow_public: bool = False) -> None:
    """Refuse an endpoint that is not local, unless ``allow_public``."""
    if allow_public or is_local_endpoint(description):
        return
    try:
        binds = effective_binds(description)
    except ValueError as error:
        what = str(error)
    else:
        where = [w or "every address" for kind, w in binds if kind != "unix" and not _loopback(w)]
        what = f"it binds {', '.join(where)}"
    raise ValueError(
        f"the admin API would be reachable from the network on {description!r}: {what}; "
        "bind a loopback address (tcp:8742:interface=127.0.0.1) or a UNIX socket, "
        "or ask for a public address explicitly"
    )


__all__ = ["check_admin_endpoint", "effective_binds", "is_local_endpoint"]
