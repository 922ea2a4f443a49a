# -*- test-case-name: tests.test_session -*-
"""
The lifecycle of a session as an Automat typed state machine.

States: ``Idle → Greeting → Authenticating → Deciding → Acking → Running →
Closing → Closed``.  Inputs come from the bytes (``received``, then what the
reading states find: ``connection_message``, ``authenticated``,
``acknowledged``, ``failed``), from the gate (``accepted``, ``rejected``,
``refused``), from the transport (``lost``) and from the application
(``close``).  Every state that reads says what it does with ``received``;
the states that wait for something else keep the bytes, bounded (see
:mod:`txtezosp2p.session`).  Illegal transitions raise; events arriving after
the end are ignored on purpose.

States carry the data they need: ``Greeting`` our connection message (for
the nonces), ``Authenticating`` the metadata we sent, ``Running`` the
:class:`~txtezosp2p.inbox.Receiver` that decrypts, frames and decodes.  The
outputs call the session through :class:`SessionCore`, so this module does
not depend on the session's class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

import attrs
from automat import TypeMachineBuilder
from twisted.python.failure import Failure

from ._machine import indexed
from .gate import Accept, ConnectionInfo, Refuse, Reject
from .inbox import Receiver
from .wire.crypto import ChunkCipher
from .wire.encoding import ConnectionMessage
from .wire.errors import ConnectionClosed, P2PError


class Lifecycle(TypingProtocol):
    """Inputs of the session lifecycle (Automat typed machine)."""

    def start(self) -> None:
        "The transport is connected: send our connection message."

    def received(self) -> None:
        "Bytes are waiting in the input buffer."

    def connection_message(self, message: ConnectionMessage, cipher: ChunkCipher) -> None:
        "The remote connection message arrived and passed the proof-of-work check."

    def authenticated(self, info: ConnectionInfo) -> None:
        "The remote metadata arrived: ask the gate."

    def accepted(self, decision: Accept) -> None:
        "The gate accepts: send our Ack."

    def rejected(self, decision: Reject) -> None:
        "The gate rejects: send a Nack and close."

    def refused(self, decision: Refuse) -> None:
        "The gate refuses: close without a word."

    def acknowledged(self) -> None:
        "The remote Ack arrived."

    def failed(self, error: P2PError) -> None:
        "A protocol error, a timeout, a remote Nack."

    def lost(self, reason: Failure) -> None:
        "The transport is gone."

    def close(self, reason: str, wait: bool) -> None:
        "Close requested locally."


@attrs.define
class _Greeting:
    """Data of the Greeting state: our framed connection message (for the nonces)."""

    sent: bytes


@attrs.define
class _Authenticating:
    """Data of the Authenticating state: the metadata we sent."""

    local_metadata: Any


class SessionCore(TypingProtocol):
    """What the machine's outputs call on the session."""

    def _send_connection_message(self) -> bytes: ...
    def _read_connection_message(self, sent: bytes) -> None: ...
    def _start_encryption(self, message: ConnectionMessage, cipher: ChunkCipher) -> Any: ...
    def _read_metadata(self, local_metadata: Any) -> None: ...
    def _read_on(self) -> None: ...
    def _bound_handshake_input(self, *, reading: bool) -> None: ...
    def _ask_gate(self, info: ConnectionInfo) -> None: ...
    def _send_ack(self, decision: Accept) -> None: ...
    def _send_nack(self, decision: Reject) -> None: ...
    def _log_refusal(self, decision: Refuse) -> None: ...
    def _read_ack(self) -> None: ...
    def _receiver(self) -> Receiver: ...
    def _start_running(self) -> None: ...
    def _abort_handshake(self, error: P2PError) -> None: ...
    def _handshake_lost(self, reason: Failure) -> None: ...
    def _fail_running(self, error: P2PError) -> None: ...
    def _running_lost(self, reason: Failure) -> None: ...
    def _begin_close(self, reason: str, wait: bool) -> None: ...
    def _drop_input(self) -> None: ...
    def _transport_gone(self, reason: Failure) -> None: ...


def build_lifecycle() -> Callable[[SessionCore], Lifecycle]:
    builder = TypeMachineBuilder(Lifecycle, SessionCore)  # type: ignore[type-abstract]
    idle = builder.state("Idle")
    greeting = builder.state(
        "Greeting", lambda machine, session: _Greeting(session._send_connection_message())
    )
    authenticating = builder.state(
        "Authenticating",
        lambda machine, session, message, cipher: _Authenticating(
            session._start_encryption(message, cipher)
        ),
    )
    deciding = builder.state("Deciding")
    acking = builder.state("Acking")
    running = builder.state("Running", lambda machine, session: session._receiver())
    closing = builder.state("Closing")
    closed = builder.state("Closed")

    idle.upon(Lifecycle.start).to(greeting).returns(None)

    @greeting.upon(Lifecycle.received).loop()
    def _greeting_read(machine: Lifecycle, session: SessionCore, data: _Greeting) -> None:
        session._read_connection_message(data.sent)

    @greeting.upon(Lifecycle.connection_message).to(authenticating)
    def _greeted(
        machine: Lifecycle,
        session: SessionCore,
        data: _Greeting,
        message: ConnectionMessage,
        cipher: ChunkCipher,
    ) -> None:
        session._read_on()

    @authenticating.upon(Lifecycle.received).loop()
    def _authenticating_read(
        machine: Lifecycle, session: SessionCore, data: _Authenticating
    ) -> None:
        session._read_metadata(data.local_metadata)

    @authenticating.upon(Lifecycle.authenticated).to(deciding)
    def _authenticated(
        machine: Lifecycle, session: SessionCore, data: _Authenticating, info: ConnectionInfo
    ) -> None:
        session._ask_gate(info)

    @deciding.upon(Lifecycle.received).loop()
    def _deciding_read(machine: Lifecycle, session: SessionCore) -> None:
        session._bound_handshake_input(reading=False)

    @deciding.upon(Lifecycle.accepted).to(acking)
    def _accepted(machine: Lifecycle, session: SessionCore, decision: Accept) -> None:
        session._send_ack(decision)
        session._read_on()

    @deciding.upon(Lifecycle.rejected).to(closed)
    def _rejected(machine: Lifecycle, session: SessionCore, decision: Reject) -> None:
        session._send_nack(decision)
        session._abort_handshake(decision.error)

    @deciding.upon(Lifecycle.refused).to(closed)
    def _refused(machine: Lifecycle, session: SessionCore, decision: Refuse) -> None:
        session._log_refusal(decision)
        session._abort_handshake(decision.error)

    @acking.upon(Lifecycle.received).loop()
    def _acking_read(machine: Lifecycle, session: SessionCore) -> None:
        session._read_ack()

    @acking.upon(Lifecycle.acknowledged).to(running)
    def _acknowledged(machine: Lifecycle, session: SessionCore) -> None:
        session._start_running()

    for state in (idle, deciding, acking):

        @state.upon(Lifecycle.failed).to(closed)
        def _handshake_failed(machine: Lifecycle, session: SessionCore, error: P2PError) -> None:
            session._abort_handshake(error)

        @state.upon(Lifecycle.lost).to(closed)
        def _handshake_lost(machine: Lifecycle, session: SessionCore, reason: Failure) -> None:
            session._handshake_lost(reason)

        @state.upon(Lifecycle.close).to(closed)
        def _handshake_closed(
            machine: Lifecycle, session: SessionCore, reason: str, wait: bool
        ) -> None:
            session._abort_handshake(ConnectionClosed(reason or "closed locally"))

    # the same ends from the two states that hold data (not needed to end)
    @greeting.upon(Lifecycle.failed).to(closed)
    def _greeting_failed(
        machine: Lifecycle, session: SessionCore, data: _Greeting, error: P2PError
    ) -> None:
        session._abort_handshake(error)

    @authenticating.upon(Lifecycle.failed).to(closed)
    def _authenticating_failed(
        machine: Lifecycle, session: SessionCore, data: _Authenticating, error: P2PError
    ) -> None:
        session._abort_handshake(error)

    @greeting.upon(Lifecycle.lost).to(closed)
    def _greeting_lost(
        machine: Lifecycle, session: SessionCore, data: _Greeting, reason: Failure
    ) -> None:
        session._handshake_lost(reason)

    @authenticating.upon(Lifecycle.lost).to(closed)
    def _authenticating_lost(
        machine: Lifecycle, session: SessionCore, data: _Authenticating, reason: Failure
    ) -> None:
        session._handshake_lost(reason)

    @greeting.upon(Lifecycle.close).to(closed)
    def _greeting_closed(
        machine: Lifecycle, session: SessionCore, data: _Greeting, reason: str, wait: bool
    ) -> None:
        session._abort_handshake(ConnectionClosed(reason or "closed locally"))

    @authenticating.upon(Lifecycle.close).to(closed)
    def _authenticating_closed(
        machine: Lifecycle, session: SessionCore, data: _Authenticating, reason: str, wait: bool
    ) -> None:
        session._abort_handshake(ConnectionClosed(reason or "closed locally"))

    idle.upon(Lifecycle.received).loop().returns(None)  # before connectionMade: kept

    @running.upon(Lifecycle.received).loop()
    def _running_read(machine: Lifecycle, session: SessionCore, receiver: Receiver) -> None:
        receiver.receive()

    @running.upon(Lifecycle.failed).to(closed)
    def _running_failed(
        machine: Lifecycle, session: SessionCore, receiver: Receiver, error: P2PError
    ) -> None:
        receiver.stop()
        session._fail_running(error)

    @running.upon(Lifecycle.lost).to(closed)
    def _running_lost(
        machine: Lifecycle, session: SessionCore, receiver: Receiver, reason: Failure
    ) -> None:
        receiver.stop()
        session._running_lost(reason)

    @running.upon(Lifecycle.close).to(closing)
    def _running_close(
        machine: Lifecycle, session: SessionCore, receiver: Receiver, reason: str, wait: bool
    ) -> None:
        receiver.stop()
        session._begin_close(reason, wait)

    @closing.upon(Lifecycle.failed).to(closed)
    def _closing_failed(machine: Lifecycle, session: SessionCore, error: P2PError) -> None:
        session._fail_running(error)

    @closing.upon(Lifecycle.lost).to(closed)
    def _closing_lost(machine: Lifecycle, session: SessionCore, reason: Failure) -> None:
        session._running_lost(reason)

    closing.upon(Lifecycle.close).loop().returns(None)

    # Bytes after a local close are dropped unread; late events after the
    # end are ignored: a gate answering after a timeout, a second close, the
    # transport reporting its loss.
    for state in (closing, closed):

        @state.upon(Lifecycle.received).loop()
        def _dropped(machine: Lifecycle, session: SessionCore) -> None:
            session._drop_input()

    closed.upon(Lifecycle.accepted).loop().returns(None)
    closed.upon(Lifecycle.rejected).loop().returns(None)
    closed.upon(Lifecycle.refused).loop().returns(None)
    closed.upon(Lifecycle.failed).loop().returns(None)
    closed.upon(Lifecycle.close).loop().returns(None)

    @closed.upon(Lifecycle.lost).loop()
    def _closed_lost(machine: Lifecycle, session: SessionCore, reason: Failure) -> None:
        session._transport_gone(reason)

    return indexed(builder.build())
