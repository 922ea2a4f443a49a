# -*- test-case-name: tests.test_session -*-
"""
The lifecycle of a session as an Automat typed state machine.

States: ``Idle → Greeting → Authenticating → Deciding → Acking → Running →
Closing → Closed``.  Inputs come from what the reading states find in the
bytes (``connection_message``, ``authenticated``, ``acknowledged``,
``failed``), from the gate (``accepted``, ``rejected``, ``refused``), from
the transport (``lost``) and from the application (``close``).  Illegal
transitions raise; events arriving after the end are ignored on purpose.

Bytes are not an input: each state from ``Greeting`` to ``Running`` has a
:class:`Step` as its data, which the session hands every read (entering the
state gives the session its step).  A step reads what it waits for and
feeds the result to the machine, so a read costs no transition and a
handshake step one.  ``Greeting`` keeps our connection message (for the
nonces), ``Authenticating`` the metadata we sent, ``Deciding`` holds the
bytes, bounded, while the gate decides, and ``Running``'s step is the
:class:`~txtezosp2p.inbox.Receiver` that decrypts, frames and decodes.
Once closed a session reads nothing (see :mod:`txtezosp2p.session`).  The
outputs call the session through :class:`SessionCore`, so this module does
not depend on the session's class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
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

S = TypeVar("S", bound="Step")


class Lifecycle(TypingProtocol):
    """Inputs of the session lifecycle (Automat typed machine)."""

    def start(self) -> None:
        "The transport is connected: send our connection message."

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


class Step(TypingProtocol):
    """The data of a reading state: what it does with the bytes received."""

    def receive(self) -> None:
        "Read what the state waits for from the session's input buffer, if it is there."


@attrs.define
class _Greeting:
    """Greeting: reads the remote connection message; ours is kept for the nonces."""

    session: SessionCore
    sent: bytes

    def receive(self) -> None:
        self.session._read_connection_message(self.sent)


@attrs.define
class _Authenticating:
    """Authenticating: reads the remote metadata; ours is kept for the connection's info."""

    session: SessionCore
    local_metadata: Any

    def receive(self) -> None:
        self.session._read_metadata(self.local_metadata)


@attrs.define
class _Deciding:
    """Deciding: the gate has not answered; bytes wait, bounded."""

    session: SessionCore

    def receive(self) -> None:
        self.session._bound_handshake_input(reading=False)


@attrs.define
class _Acking:
    """Acking: reads the remote Ack or Nack."""

    session: SessionCore

    def receive(self) -> None:
        self.session._read_ack()


@attrs.define
class _Idle:
    """Idle: bytes received before the handshake starts are kept for it."""

    def receive(self) -> None:
        pass


#: The step of a session that has not started.
IDLE: Step = _Idle()


class SessionCore(TypingProtocol):
    """What the machine's outputs call on the session."""

    def _reading(self, step: S) -> S: ...
    def _send_connection_message(self) -> bytes: ...
    def _read_connection_message(self, sent: bytes) -> None: ...
    def _start_encryption(self, message: ConnectionMessage, cipher: ChunkCipher) -> Any: ...
    def _read_metadata(self, local_metadata: Any) -> None: ...
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
    def _transport_gone(self, reason: Failure) -> None: ...


def build_lifecycle() -> Callable[[SessionCore], Lifecycle]:
    builder = TypeMachineBuilder(Lifecycle, SessionCore)  # type: ignore[type-abstract]
    # Entering a reading state hands its step to the session (_reading).
    idle = builder.state("Idle")
    greeting = builder.state(
        "Greeting",
        lambda machine, session: session._reading(
            _Greeting(session, session._send_connection_message())
        ),
    )
    authenticating = builder.state(
        "Authenticating",
        lambda machine, session, message, cipher: session._reading(
            _Authenticating(session, session._start_encryption(message, cipher))
        ),
    )
    deciding = builder.state(
        "Deciding", lambda machine, session, info: session._reading(_Deciding(session))
    )
    acking = builder.state(
        "Acking", lambda machine, session, decision: session._reading(_Acking(session))
    )
    running = builder.state(
        "Running", lambda machine, session: session._reading(session._receiver())
    )
    closing = builder.state("Closing")
    closed = builder.state("Closed")

    idle.upon(Lifecycle.start).to(greeting).returns(None)
    greeting.upon(Lifecycle.connection_message).to(authenticating).returns(None)

    @authenticating.upon(Lifecycle.authenticated).to(deciding)
    def _authenticated(
        machine: Lifecycle, session: SessionCore, data: _Authenticating, info: ConnectionInfo
    ) -> None:
        session._ask_gate(info)

    @deciding.upon(Lifecycle.accepted).to(acking)
    def _accepted(
        machine: Lifecycle, session: SessionCore, data: _Deciding, decision: Accept
    ) -> None:
        session._send_ack(decision)

    @deciding.upon(Lifecycle.rejected).to(closed)
    def _rejected(
        machine: Lifecycle, session: SessionCore, data: _Deciding, decision: Reject
    ) -> None:
        session._send_nack(decision)
        session._abort_handshake(decision.error)

    @deciding.upon(Lifecycle.refused).to(closed)
    def _refused(
        machine: Lifecycle, session: SessionCore, data: _Deciding, decision: Refuse
    ) -> None:
        session._log_refusal(decision)
        session._abort_handshake(decision.error)

    @acking.upon(Lifecycle.acknowledged).to(running)
    def _acknowledged(machine: Lifecycle, session: SessionCore, data: _Acking) -> None:
        session._start_running()

    # the ends of a handshake, from any of its states (their steps are not needed to end)
    @idle.upon(Lifecycle.failed).to(closed)
    def _handshake_failed(machine: Lifecycle, session: SessionCore, error: P2PError) -> None:
        session._abort_handshake(error)

    @idle.upon(Lifecycle.lost).to(closed)
    def _handshake_lost(machine: Lifecycle, session: SessionCore, reason: Failure) -> None:
        session._handshake_lost(reason)

    @idle.upon(Lifecycle.close).to(closed)
    def _handshake_closed(
        machine: Lifecycle, session: SessionCore, reason: str, wait: bool
    ) -> None:
        session._abort_handshake(ConnectionClosed(reason or "closed locally"))

    for step in (greeting, authenticating, deciding, acking):

        @step.upon(Lifecycle.failed).to(closed)
        def _step_failed(
            machine: Lifecycle, session: SessionCore, data: object, error: P2PError
        ) -> None:
            session._abort_handshake(error)

        @step.upon(Lifecycle.lost).to(closed)
        def _step_lost(
            machine: Lifecycle, session: SessionCore, data: object, reason: Failure
        ) -> None:
            session._handshake_lost(reason)

        @step.upon(Lifecycle.close).to(closed)
        def _step_closed(
            machine: Lifecycle, session: SessionCore, data: object, reason: str, wait: bool
        ) -> None:
            session._abort_handshake(ConnectionClosed(reason or "closed locally"))

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

    # Late events after the end are ignored: a gate answering after a
    # timeout, a second close, the transport reporting its loss.
    closed.upon(Lifecycle.accepted).loop().returns(None)
    closed.upon(Lifecycle.rejected).loop().returns(None)
    closed.upon(Lifecycle.refused).loop().returns(None)
    closed.upon(Lifecycle.failed).loop().returns(None)
    closed.upon(Lifecycle.close).loop().returns(None)

    @closed.upon(Lifecycle.lost).loop()
    def _closed_lost(machine: Lifecycle, session: SessionCore, reason: Failure) -> None:
        session._transport_gone(reason)

    return indexed(builder.build())
