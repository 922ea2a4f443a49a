# -*- test-case-name: tests.test_interfaces -*-
"""Every implementation provides its interface (``verifyObject``)."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txtezosp2p.identity import IdentityFile
from txtezosp2p.interfaces import (
    IAuthenticationGate,
    IChunkCipher,
    IIdentityStore,
    IMessageCodec,
    ISession,
)
from txtezosp2p.session import Session, VersionGate
from txtezosp2p.wire.crypto import ChunkCipher
from txtezosp2p.wire.encoding import BytesCodec, P2PMessageCodec

from .helpers import IDENTITY_A, SANDBOX_VERSIONS, backends, session_config


class InterfaceTests(SynchronousTestCase):
    def test_chunk_cipher(self) -> None:
        for _, backend in backends():
            verifyObject(
                IChunkCipher, ChunkCipher(bytes(32), bytes(24), bytes(24), backend=backend)
            )

    def test_codecs(self) -> None:
        verifyObject(IMessageCodec, P2PMessageCodec())
        verifyObject(IMessageCodec, BytesCodec())

    def test_gate(self) -> None:
        verifyObject(IAuthenticationGate, VersionGate(SANDBOX_VERSIONS))

    def test_session(self) -> None:
        verifyObject(ISession, Session(session_config(IDENTITY_A), Clock(), incoming=True))

    def test_identity_store(self) -> None:
        verifyObject(IIdentityStore, IdentityFile(self.mktemp()))
