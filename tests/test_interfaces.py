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


class TopologyInterfaceTests(SynchronousTestCase):
    """Every topology component provides its interface; the answerer sees only a link."""

    def test_topology(self) -> None:
        from txtezosp2p.answerer import Answerer, PrivateAnswerer
        from txtezosp2p.interfaces import (
            IACL,
            IP2P,
            IAnswerer,
            IConnectHandler,
            IIOScheduler,
            IPool,
        )
        from txtezosp2p.limits import Limits
        from txtezosp2p.p2p import P2P, P2PConfig, faked_network

        clock = Clock()
        p2p = P2P(
            clock,
            P2PConfig(identity=IDENTITY_A, versions=SANDBOX_VERSIONS),
            Limits(maintenance_idle_time=None),
            clock=clock,
        )
        verifyObject(IP2P, p2p)
        verifyObject(IP2P, faked_network())
        verifyObject(IACL, p2p.acl)
        verifyObject(IPool, p2p.pool)
        verifyObject(IConnectHandler, p2p.handler)
        verifyObject(IAuthenticationGate, p2p.handler)
        verifyObject(IIOScheduler, p2p.scheduler)
        verifyObject(IAnswerer, p2p.answerer)
        verifyObject(IAnswerer, Answerer(p2p.pool, clock))
        verifyObject(IAnswerer, PrivateAnswerer(p2p.pool, clock))

    def test_connection_and_link(self) -> None:
        from txtezosp2p.interfaces import IP2PConnection, IPeerLink

        from .test_answerer import AnswererCase

        case = AnswererCase()
        case.setUp()
        connection = case.connection(1)
        verifyObject(IP2PConnection, connection)
        verifyObject(IPeerLink, connection.link)
        self.assertEqual(connection.link.peer_id, connection.peer_id)
