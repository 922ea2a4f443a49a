"""The session's lifecycle machine, and the index of its transitions."""

from __future__ import annotations

from typing import Any

from automat import NoTransition
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p._machine import indexed
from txtezosp2p.lifecycle import build_lifecycle
from txtezosp2p.session import Accept, Session
from txtezosp2p.wire.encoding import NetworkVersion
from txtezosp2p.wire.errors import ConnectionClosed

from .helpers import IDENTITY_A, session_config

SANDBOX_VERSION = NetworkVersion("SANDBOXED_TEZOS", 2, 1)


class IndexedMachineTests(SynchronousTestCase):
    def test_same_table(self) -> None:
        """Indexing keeps every transition and answers as Automat's own lookup does."""
        machine: Any = build_lifecycle()
        automaton = machine.__automat_automaton__
        transitions = automaton.allTransitions()
        self.assertGreater(len(transitions), 30)
        again: Any = indexed(machine)
        self.assertEqual(again.__automat_automaton__.allTransitions(), transitions)
        states = {t[0] for t in transitions} | {t[2] for t in transitions}
        symbols = {t[1] for t in transitions}
        base: Any = type(automaton).__mro__[1]  # Automat's class, with its scanning lookup
        for state in states:
            for symbol in symbols:
                try:
                    expected = base.outputForInput(automaton, state, symbol)
                except NoTransition:
                    self.assertRaises(NoTransition, automaton.outputForInput, state, symbol)
                else:
                    self.assertEqual(automaton.outputForInput(state, symbol), expected)

    def test_illegal_input_still_raises(self) -> None:
        session = Session(session_config(IDENTITY_A), Clock(), incoming=True)
        self.assertRaises(NoTransition, session._machine.acknowledged)
        session._machine.failed(ConnectionClosed("gone"))  # Idle -> Closed
        session._machine.accepted(Accept(SANDBOX_VERSION))  # late events are ignored
