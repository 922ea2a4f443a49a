# -*- test-case-name: tests.test_discovery -*-
"""
Local peer discovery over UDP (wire.md section 10, behaviour.md section 9;
Octez ``src/lib_p2p/p2p_discovery.ml``).

Nodes on the same LAN announce themselves with a 28-byte datagram::

    offset size field
    0      10   ASCII "DISCOMAGIC"
    10     16   sender peer id (raw bytes)
    26     2    sender listening (TCP) port, int16 big-endian, *signed*

:func:`encode_discovery` and :func:`decode_discovery` are the codec.  Since
the port is a signed 16-bit field, ports above 32767 cannot be announced
(Octez's encoder raises too) and a received field is read signed, so a
negative or zero port is refused.

:class:`DiscoveryService` runs the two halves of Octez's discovery:

* **The sender** owns a UDP socket with broadcast allowed and sends our
  datagram to ``destination``.  Schedule (wire.md section 10, behaviour.md
  section 9): one send at start, then after 0.1, 0.2, 0.4 ... 51.2 seconds
  (ten delays, doubling), then every 51.2 seconds.  :meth:`~DiscoveryService.wake`
  (the maintenance worker calls it when it wants more peers) sends at once
  and restarts the delays at 0.1 s.  Send errors are logged and ignored.
  When our listening port does not fit the int16 field (over 32767) the
  sender does not start at all and says why in the log.
* **The answerer** listens on ``listen_interface:listen_port`` (SO_REUSEADDR
  where the platform allows it, broadcast allowed) and, for each datagram of
  exactly 28 bytes with the right magic, a positive port and a peer id that
  is not ours, calls ``register(Point(source_ip, announced_port), trusted)``
  (typically ``Pool.register_new_point``).  Anything else is logged and
  dropped; nothing a peer sends raises.

Where we differ from Octez:

* **Trust.**  Octez always passes ``~trusted:trust_discovered_peers`` to
  ``register_new_point``, so with ``trust_discovered_peers = false`` (every
  mode but sandbox) a datagram about an already trusted point *clears* its
  trusted flag ([QUIRK] of behaviour.md section 9).  We pass ``True`` when
  ``trust_discovered_peers`` is set and ``None`` otherwise, which leaves the
  flag of a known point unchanged.
* **Two ports.**  Octez uses the single ``discovery-addr`` port both to bind
  the answerer and as the destination of the sender.  Here ``listen_port``
  (where we listen) and ``destination`` (where we send) are separate, so two
  services can run and be tested on loopback, each sending to the other's
  port.  The node sets both from ``discovery-addr``: the answerer on
  ``0.0.0.0:port`` and the destination ``(host, port)``, the host being
  255.255.255.255 by default or any IPv4 address.
* **Wake-up.**  After a wake-up Octez doubles its initial state before the
  first wait (the restart state goes through the doubling step), so it waits
  0.2, 0.4 ... 102.4 s and then every 102.4 s; we restart exactly as at
  start (0.1 ... 51.2 s), which is what the specification describes.
* **One socket.**  Octez opens, connects and closes a new socket for every
  send; we keep one socket for the life of the service.
* **Activation.**  At the Octez commit studied nothing activates the
  discovery workers, so Octez never actually sends nor registers anything;
  this service works once started.
* **Length.**  Octez reads into a 28-byte buffer, so a longer datagram is
  truncated and may be accepted on its first 28 bytes; we require exactly
  28 bytes, as the specification states.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IReactorMulticast,
    IReactorTime,
    IReactorUDP,
    IUDPTransport,
)
from twisted.internet.protocol import DatagramProtocol

from . import _events as ev
from .wire.errors import DecodingError, EncodingError
from .wire.ids import PEER_ID_SIZE, PeerId, Point

__all__ = [
    "DATAGRAM_SIZE",
    "DEFAULT_DISCOVERY_ADDR",
    "DEFAULT_DISCOVERY_PORT",
    "INITIAL_DELAY",
    "MAGIC",
    "MAX_DELAY",
    "MAX_LOOP",
    "DiscoveryService",
    "decode_discovery",
    "encode_discovery",
]

_log = ev.logger("p2p.discovery")

# [p2p.discovery] event names (behaviour.md section 14)
CREATE_SOCKET_ERROR = "create_socket_error"
MESSAGE_RECEIVED = "message_received"
PARSE_ERROR = "parse_error"
REGISTER_NEW = "register_new"
UNEXPECTED_ERROR = "unexpected_error"
BROADCAST_MESSAGE = "broadcast_message"
BROADCAST_ERROR = "broadcast_error"

# -- The datagram ------------------------------------------------------------

#: The 10 ASCII bytes every discovery datagram starts with.
MAGIC = b"DISCOMAGIC"
_PORT = struct.Struct(">h")
#: Exact size of a discovery datagram: magic, peer id, int16 port.
DATAGRAM_SIZE = len(MAGIC) + PEER_ID_SIZE + _PORT.size
_MAX_PORT = 0x7FFF

#: Defaults of the node's ``discovery-addr`` (wire.md section 10).
DEFAULT_DISCOVERY_ADDR = "255.255.255.255"
DEFAULT_DISCOVERY_PORT = 10732

#: The sender's first delay, in seconds; it doubles after each send...
INITIAL_DELAY = 0.1
#: ...until this many delays have elapsed, and then stays (at 51.2 s).
MAX_LOOP = 10
#: The delay the schedule settles at: ``INITIAL_DELAY * 2 ** (MAX_LOOP - 1)``.
MAX_DELAY = INITIAL_DELAY * 2 ** (MAX_LOOP - 1)


def encode_discovery(peer_id: PeerId, port: int) -> bytes:
    """
    The datagram announcing ``peer_id`` listening on ``port``.  Raises
    :class:`EncodingError` unless ``1 <= port <= 32767`` (the field is a
    signed 16-bit integer).
    """
    if not 1 <= port <= _MAX_PORT:
        raise EncodingError(f"port {port} does not fit a discovery datagram (1..{_MAX_PORT})")
    return MAGIC + peer_id.raw + _PORT.pack(port)


def decode_discovery(data: bytes) -> tuple[PeerId, int]:
    """
    The ``(peer id, listening port)`` a datagram announces.  Raises
    :class:`DecodingError` for a wrong length, a wrong magic or a port that
    is not positive (the field is read signed).
    """
    if len(data) != DATAGRAM_SIZE:
        raise DecodingError(
            "Invalid_discovery_datagram", f"{len(data)} bytes, expected {DATAGRAM_SIZE}"
        )
    if data[: len(MAGIC)] != MAGIC:
        raise DecodingError("Invalid_discovery_datagram", "bad magic")
    end = len(MAGIC) + PEER_ID_SIZE
    (port,) = _PORT.unpack_from(data, end)
    if port < 1:
        raise DecodingError("Invalid_discovery_datagram", f"invalid port {port}")
    return PeerId(bytes(data[len(MAGIC) : end])), port


# -- The service -------------------------------------------------------------


class _AnswerProtocol(DatagramProtocol):
    noisy = False

    def __init__(self, service: DiscoveryService) -> None:
        self.service = service

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.service._datagram_received(datagram, addr)


class _SenderProtocol(DatagramProtocol):
    """The sender's socket: anything arriving on it is ignored."""

    noisy = False


def _check_port(name: str, port: int, minimum: int = 0) -> None:
    if not isinstance(port, int) or not minimum <= port <= 0xFFFF:
        raise ValueError(f"{name} out of range: {port!r}")


def _allow_broadcast(transport: IUDPTransport | None, reuse_address: bool) -> None:
    """SO_BROADCAST on ``transport`` and, where possible, SO_REUSEADDR."""
    if transport is None:
        return
    transport.setBroadcastAllowed(True)
    if not reuse_address:
        return
    # Already set before the bind where the reactor does multicast; with a
    # plain listenUDP it only lets later binders share the port.  Failures
    # (fake transports, odd platforms) do not matter.
    try:
        handle = transport.getHandle()  # type: ignore[attr-defined]
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except Exception:
        pass


class DiscoveryService(Service):
    """
    Local peer discovery: an answerer registering the peers it hears about
    and a sender announcing us (see the module documentation).

    ``reactor`` provides :class:`IReactorUDP`; ``clock`` (the reactor by
    default) drives the sender's timer.  ``peer_id`` and ``listening_port``
    (our TCP port) are what we announce; ``register(point, trusted)`` is
    called for every valid datagram of another node, ``trusted`` being
    ``True`` when ``trust_discovered_peers`` and ``None`` otherwise.
    ``destination`` is the ``(IPv4 address, port)`` we send to, a broadcast
    address or not; it may be changed at any time (the next send uses it).
    ``listen_port`` and ``listen_interface`` are where the answerer listens;
    with ``listen_port=0`` the system picks a port, which :meth:`listen`
    returns.

    ``sent``, ``received`` and ``registered`` count datagrams sent, received
    (valid or not) and points registered.
    """

    def __init__(
        self,
        reactor: IReactorUDP,
        *,
        peer_id: PeerId,
        listening_port: int,
        register: Callable[[Point, bool | None], object],
        destination: tuple[str, int],
        listen_port: int,
        listen_interface: str = "0.0.0.0",
        trust_discovered_peers: bool = False,
        clock: IReactorTime | None = None,
    ) -> None:
        _check_port("listening port", listening_port)
        _check_port("listen port", listen_port)
        self.reactor = reactor
        self.clock: IReactorTime = clock if clock is not None else cast(IReactorTime, reactor)
        self.peer_id = peer_id
        self.listening_port = listening_port
        self.register = register
        self.listen_port = listen_port
        self.listen_interface = listen_interface
        self.trust_discovered_peers = trust_discovered_peers
        self._destination = self._check_destination(destination)
        self.sent = 0
        self.received = 0
        self.registered = 0
        self._answer_protocol = _AnswerProtocol(self)
        self._sender_protocol = _SenderProtocol()
        self._answer_port: IListeningPort | None = None
        self._sender_port: IListeningPort | None = None
        self._datagram: bytes | None = None
        self._timer: IDelayedCall | None = None
        self._delay = INITIAL_DELAY
        self._loop = 0

    # -- configuration -------------------------------------------------------

    @staticmethod
    def _check_destination(destination: tuple[str, int]) -> tuple[str, int]:
        host, port = destination
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"discovery destination must be an IPv4 address: {host!r}") from None
        _check_port("destination port", port, minimum=1)
        return (host, port)

    @property
    def destination(self) -> tuple[str, int]:
        """Where the sender sends: ``(IPv4 address, UDP port)``."""
        return self._destination

    @destination.setter
    def destination(self, value: tuple[str, int]) -> None:
        self._destination = self._check_destination(value)

    @property
    def answer_port(self) -> int | None:
        """The UDP port the answerer is bound to, ``None`` while it is not."""
        if self._answer_port is None:
            return None
        return cast(int, self._answer_port.getHost().port)  # type: ignore[attr-defined]

    # -- service -------------------------------------------------------------

    def listen(self) -> int:
        """
        Bind the answerer now (idempotent) and return its UDP port, so that
        a caller using ``listen_port=0`` learns the port before anything is
        sent.  :meth:`startService` calls it.
        """
        if self._answer_port is None:
            try:
                port = self._bind_answerer()
            except Exception as error:
                _log.error(
                    "cannot bind the discovery socket on {interface}:{port}: {error}",
                    event=CREATE_SOCKET_ERROR,
                    interface=self.listen_interface,
                    port=self.listen_port,
                    error=str(error),
                )
                raise
            self._answer_port = port
            _allow_broadcast(self._answer_protocol.transport, reuse_address=True)
        port_number = self.answer_port
        assert port_number is not None
        return port_number

    def _bind_answerer(self) -> Any:
        # Several nodes of one host share the discovery port: with a reactor
        # that can, bind with SO_REUSEADDR set before the bind (Twisted's
        # multicast port does that), so every node hears the broadcasts.
        if IReactorMulticast.providedBy(self.reactor):
            return cast(IReactorMulticast, self.reactor).listenMulticast(
                self.listen_port,
                self._answer_protocol,
                interface=self.listen_interface,
                listenMultiple=True,
            )
        return self.reactor.listenUDP(  # type: ignore[call-arg]
            self.listen_port, self._answer_protocol, interface=self.listen_interface
        )

    def startService(self) -> None:
        self.listen()
        try:
            self._datagram = encode_discovery(self.peer_id, self.listening_port)
        except EncodingError:
            # Octez's encoder raises here too and its sender dies with
            # unexpected_error; we say so once and keep the answerer.
            self._datagram = None
            _log.warn(
                "not announcing listening port {port}: discovery datagrams carry ports up "
                "to {maximum} only",
                event=UNEXPECTED_ERROR,
                port=self.listening_port,
                maximum=_MAX_PORT,
            )
        if self._datagram is not None and self._sender_port is None:
            try:
                self._sender_port = self.reactor.listenUDP(  # type: ignore[call-arg]
                    0, self._sender_protocol
                )
            except Exception as error:
                _log.error(
                    "cannot create the discovery sender socket: {error}",
                    event=CREATE_SOCKET_ERROR,
                    error=str(error),
                )
                self._close_ports()
                raise
            _allow_broadcast(self._sender_protocol.transport, reuse_address=False)
        super().startService()
        self._reset_schedule()
        if self._datagram is not None:
            self._round()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self._cancel_timer()
        return self._close_ports()

    def _close_ports(self) -> Deferred[None] | None:
        ports = [p for p in (self._answer_port, self._sender_port) if p is not None]
        self._answer_port = self._sender_port = None
        if not ports:
            return None
        done = gatherResults([maybeDeferred(p.stopListening) for p in ports])
        return done.addCallback(lambda _: None)

    # -- sender --------------------------------------------------------------

    def wake(self) -> None:
        """
        Restart the sender's schedule: send now, then wait 0.1 s, 0.2 s...
        (the maintenance worker calls this when it wants more peers).
        """
        self._cancel_timer()
        self._reset_schedule()
        if self.running and self._datagram is not None:
            self._round()

    def _reset_schedule(self) -> None:
        self._delay = INITIAL_DELAY
        self._loop = 0

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _round(self) -> None:
        """Send once, then wait the current delay."""
        self._send()
        self._timer = self.clock.callLater(self._delay, self._slept)

    def _slept(self) -> None:
        self._timer = None
        self._loop += 1
        if self._loop == MAX_LOOP:
            self._loop = MAX_LOOP - 1  # the delay stays at MAX_DELAY from now on
        else:
            self._delay *= 2
        self._round()

    def _send(self) -> None:
        transport = self._sender_protocol.transport
        if transport is None or self._datagram is None:
            return
        host, port = self._destination
        try:
            transport.write(self._datagram, (host, port))
        except Exception as error:
            _log.warn(
                "cannot send the discovery datagram to {host}:{port}: {error}",
                event=BROADCAST_ERROR,
                host=host,
                port=port,
                error=str(error),
            )
            return
        self.sent += 1
        _log.debug(
            "discovery datagram sent to {host}:{port}",
            event=BROADCAST_MESSAGE,
            host=host,
            port=port,
        )

    # -- answerer ------------------------------------------------------------

    def _datagram_received(self, datagram: bytes, addr: Any) -> None:
        self.received += 1
        try:
            source = str(addr[0])
        except Exception:
            source = repr(addr)
        _log.debug("discovery datagram from {source}", event=MESSAGE_RECEIVED, source=source)
        try:
            peer_id, port = decode_discovery(datagram)
            if peer_id == self.peer_id:
                return
            point = Point(source, port)
        except (DecodingError, ValueError) as error:
            _log.info(
                "ignoring discovery datagram from {source}: {error}",
                event=PARSE_ERROR,
                source=source,
                error=str(error),
            )
            return
        trusted = True if self.trust_discovered_peers else None
        _log.info(
            "discovered peer {peer_id} at {point}",
            event=REGISTER_NEW,
            peer_id=str(peer_id),
            point=str(point),
        )
        try:
            self.register(point, trusted)
        except Exception:
            _log.failure(
                "cannot register discovered point {point}",
                event=UNEXPECTED_ERROR,
                point=str(point),
            )
            return
        self.registered += 1
