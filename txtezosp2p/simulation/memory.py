# -*- test-case-name: tests.test_simulation -*-
"""
An in-memory stream network for simulated nodes: hosts listen at points,
dial each other through an :data:`~txtezosp2p.interfaces.EndpointFactory`,
and exchange bytes over connections with a latency, on a simulated clock.

What it keeps of TCP: bytes arrive in order after the link's one-way
latency; a dial takes a round trip; a point nobody listens on refuses the
dial; a dial across a partition is never answered (the dialler's own
timeout ends it); a reader that pauses holds what arrives, and the writer's
pull producer is only asked for more once the reader took it (flow control
without a window); a clean close delivers what was written before the end
of stream; an abort drops it.  What it leaves out: bandwidth, loss and
retransmission.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import EndpointFactory
from ..wire.ids import Point, to_ipv6
from .clock import SimulatedCall, SimulatedClock

Address = ipaddress.IPv6Address
#: One-way latency of a link between two hosts, in seconds.
Latency = Callable[[Address, Address], float]


def _address(addr: Address, port: int) -> IAddress:
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return IPv4Address("TCP", str(mapped), port)
    return IPv6Address("TCP", str(addr), port)


class MemoryNetwork:
    """
    The hosts of a simulation and the links between them.  ``latency``
    gives the one-way delay between two hosts (a constant by default).
    """

    def __init__(self, clock: SimulatedClock, latency: Latency | float = 0.05) -> None:
        self.clock = clock
        if callable(latency):
            self.latency: Latency = latency
        else:
            constant = float(latency)
            self.latency = lambda a, b: constant
        self._listeners: dict[Point, IProtocolFactory] = {}
        #: Open links, in the order they were made (a dict keeps the order deterministic).
        self.links: dict[MemoryLink, None] = {}
        self._group: Callable[[Address], int] | None = None
        #: The next ephemeral port of each host (Linux's default range).
        self._ports: dict[Address, itertools.cycle[int]] = {}
        #: Dials made, refused, and lost in a partition.
        self.dials = 0
        self.refused = 0
        self.dropped = 0

    # -- hosts -----------------------------------------------------------------

    def listen(self, point: Point, factory: IProtocolFactory) -> None:
        """Accept connections to ``point`` with ``factory``."""
        self._listeners[point] = factory

    def stop_listening(self, point: Point) -> None:
        self._listeners.pop(point, None)

    def endpoint_factory(self, source: Address | str) -> EndpointFactory:
        """The dialling seam of the host at ``source``."""
        host = to_ipv6(source) if isinstance(source, str) else source

        def endpoint(point: Point) -> IStreamClientEndpoint:
            return MemoryClientEndpoint(self, host, point)

        return endpoint

    def links_of(self, host: Address) -> list[MemoryLink]:
        return [link for link in self.links if host in (link.client_host, link.server_host)]

    # -- partitions ------------------------------------------------------------

    def reachable(self, a: Address, b: Address) -> bool:
        return self._group is None or self._group(a) == self._group(b)

    def partition(self, group: Callable[[Address], int]) -> int:
        """
        Split the network: hosts of different ``group`` no longer reach each
        other.  Links across the split are cut (both ends see the
        connection lost); returns how many.
        """
        self._group = group
        cut = [link for link in self.links if group(link.client_host) != group(link.server_host)]
        for link in cut:
            link.abort()
        return len(cut)

    def heal(self) -> None:
        """Every host reaches every other again."""
        self._group = None

    # -- dialling ---------------------------------------------------------------

    def connect(
        self, source: Address, point: Point, factory: IProtocolFactory
    ) -> Deferred[IProtocol]:
        self.dials += 1
        clock = self.clock
        delay = self.latency(source, point.addr)
        state: dict[str, Any] = {"timer": None, "link": None}

        def cancel(_: Deferred[IProtocol]) -> None:
            timer: SimulatedCall | None = state["timer"]
            if timer is not None and timer.active():
                timer.cancel()
            link: MemoryLink | None = state["link"]
            if link is not None:
                link.abort()

        result: Deferred[IProtocol] = Deferred(cancel)

        def syn() -> None:
            state["timer"] = None
            if not self.reachable(source, point.addr):
                self.dropped += 1
                return  # never answered: the dialler's timeout ends the attempt
            listener = self._listeners.get(point)
            if listener is None:
                self.refused += 1
                state["timer"] = clock.callLater(delay, refused)
                return
            ports = self._ports.get(source)
            if ports is None:
                ports = self._ports[source] = itertools.cycle(range(32768, 61000))
            client_addr = _address(source, next(ports))
            server_addr = _address(point.addr, point.port)
            link = MemoryLink(
                self,
                client_host=source,
                server_host=point.addr,
                client_addr=client_addr,
                server_addr=server_addr,
                latency=delay,
            )
            state["link"] = link
            self.links[link] = None
            server = listener.buildProtocol(client_addr)
            if server is None:
                link.server.reject()
            else:
                link.server.attach(server)
            state["timer"] = clock.callLater(delay, synack)

        def refused() -> None:
            state["timer"] = None
            result.errback(Failure(ConnectionRefusedError(str(point))))

        def synack() -> None:
            state["timer"] = None
            link: MemoryLink = state["link"]
            protocol = factory.buildProtocol(link.server.host)
            if protocol is None:
                link.abort()
                result.errback(Failure(ConnectionRefusedError("no protocol")))
                return
            state["link"] = None  # from now on, the protocol owns the connection
            link.client.attach(protocol)
            result.callback(protocol)

        state["timer"] = clock.callLater(delay, syn)
        return result


@implementer(IStreamClientEndpoint)
class MemoryClientEndpoint:
    """Dials ``point`` from ``source`` on a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, source: Address, point: Point) -> None:
        self.network = network
        self.source = source
        self.point = point

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return self.network.connect(self.source, self.point, protocolFactory)


class MemoryLink:
    """One connection: a transport at each end."""

    def __init__(
        self,
        network: MemoryNetwork,
        *,
        client_host: Address,
        server_host: Address,
        client_addr: IAddress,
        server_addr: IAddress,
        latency: float,
    ) -> None:
        self.network = network
        self.client_host = client_host
        self.server_host = server_host
        self.client = MemoryTransport(self, client_addr, server_addr, latency)
        self.server = MemoryTransport(self, server_addr, client_addr, latency)
        self.client.other = self.server
        self.server.other = self.client

    def abort(self) -> None:
        """Cut the link: both ends lose the connection at once, pending bytes are dropped."""
        for end in (self.client, self.server):
            end.lost(Failure(ConnectionLost("link cut")))

    def _ended(self) -> None:
        if self.client.closed and self.server.closed:
            self.network.links.pop(self, None)
            # no cycle left between the ends and the link
            for end in (self.client, self.server):
                del end.other  # both closed: neither end reaches the other again
                end.link = None


@implementer(ITransport, IConsumer, IPushProducer)
class MemoryTransport:
    """One end of a :class:`MemoryLink`, the transport of its protocol."""

    def __init__(self, link: MemoryLink, host: IAddress, peer: IAddress, latency: float) -> None:
        self.link: MemoryLink | None = link
        self.clock = link.network.clock
        self.host = host
        self.peer = peer
        self.latency = latency
        self.other: MemoryTransport = self
        self.protocol: IProtocol | None = None
        self.connected = False
        self.disconnecting = False
        self.closed = False
        self.bytes_sent = 0
        self._out: list[bytes] = []
        self._delivery: SimulatedCall | None = None
        #: Bytes that arrived while our reader was paused (or not attached yet).
        self._held: deque[bytes] = deque()
        self._paused = False
        self._flush: SimulatedCall | None = None
        self._eof: Failure | None = None
        self._producer: Any = None
        self._streaming = False

    # -- set-up ----------------------------------------------------------------

    def attach(self, protocol: IProtocol) -> None:
        self.protocol = protocol
        self.connected = True
        protocol.makeConnection(self)
        if self._held or self._eof is not None:
            self._schedule_flush()

    def reject(self) -> None:
        """The listener refused the connection (no protocol): close it at once."""
        self.connected = True
        self.loseConnection()

    # -- ITransport ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        self._out.append(data)
        if self._delivery is None:
            self._delivery = self.clock.callLater(self.latency, self._deliver)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        for piece in data:
            self.write(piece)

    def loseConnection(self) -> None:
        if self.closed or self.disconnecting:
            return
        self.disconnecting = True
        self._maybe_close()

    def abortConnection(self) -> None:
        if self.closed:
            return
        if self.link is not None:
            self.link.abort()

    def getPeer(self) -> IAddress:
        return self.peer

    def getHost(self) -> IAddress:
        return self.host

    # -- IConsumer ---------------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer
        self._streaming = streaming
        if not streaming:
            self.clock.callLater(0, self._ask_producer)

    def unregisterProducer(self) -> None:
        self._producer = None
        if self.disconnecting:
            self._maybe_close()

    # -- IPushProducer (our reading side) -----------------------------------------

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._held or self._eof is not None:
            self._schedule_flush()

    def stopProducing(self) -> None:
        self.loseConnection()

    # -- delivery --------------------------------------------------------------------

    def _deliver(self) -> None:
        self._delivery = None
        if self.closed:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        self.bytes_sent += len(data)
        other = self.other  # reading may close both ends, and part them
        other._arrive(data)
        if not other._held:
            self._drained()
        if self.disconnecting:
            self._maybe_close()

    def _drained(self) -> None:
        """What we wrote was taken by the reader: a pull producer may give more."""
        if self._producer is not None and not self._streaming and not self.closed:
            self._ask_producer()

    def _ask_producer(self) -> None:
        producer = self._producer
        if producer is not None and not self._streaming and not self.closed:
            producer.resumeProducing()

    def _arrive(self, data: bytes) -> None:
        if self.closed:
            return
        if self._paused or self._held or self.protocol is None:
            self._held.append(data)
            return
        self.protocol.dataReceived(data)

    def _schedule_flush(self) -> None:
        if self._flush is None and not self.closed:
            self._flush = self.clock.callLater(0, self._flush_held)

    def _flush_held(self) -> None:
        self._flush = None
        while self._held and not self._paused and not self.closed and self.protocol is not None:
            self.protocol.dataReceived(self._held.popleft())
        if self._held or self.closed or self.protocol is None:
            return
        self.other._drained()
        if self._eof is not None and not self._paused:
            self._close(self._eof)

    # -- closing -----------------------------------------------------------------------

    def _maybe_close(self) -> None:
        if self.closed or self._out or (self._producer is not None and not self._streaming):
            return
        # the end of stream reaches the other end after what we wrote
        other = self.other
        self.clock.callLater(self.latency, other._remote_closed)
        self._close(Failure(ConnectionDone("closed")))

    def _remote_closed(self) -> None:
        if self.closed:
            return
        failure = Failure(ConnectionDone("closed by the remote end"))
        if self._held or self._paused or self.protocol is None:
            self._eof = failure  # delivered once what arrived before it is read
            return
        self._close(failure)

    def lost(self, reason: Failure) -> None:
        """The connection is gone (cut, aborted): no more bytes either way."""
        if self.closed:
            return
        self._held.clear()
        self._close(reason)

    def _close(self, reason: Failure) -> None:
        if self.closed:
            return
        self.closed = True
        self.connected = False
        self._out.clear()
        for call in (self._delivery, self._flush):
            if call is not None and call.active():
                call.cancel()
        self._delivery = self._flush = None
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()
        if self.link is not None:
            self.link._ended()
        protocol, self.protocol = self.protocol, None  # no cycle left behind
        if protocol is not None:
            protocol.connectionLost(reason)


__all__ = ["MemoryClientEndpoint", "MemoryLink", "MemoryNetwork", "MemoryTransport"]
