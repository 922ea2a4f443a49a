# -*- test-case-name: tests.test_p2p_config -*-
"""
Tests for L{txtezosp2p.p2p_config}: one configuration value from a node's
settings down to the sessions, and listening entries in both notations.
"""

from __future__ import annotations

import warnings

import attrs
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.limits import Limits
from txtezosp2p.node.composition import NodeOptions
from txtezosp2p.node.config import NETWORKS, NODE_P2P, AdminSettings, NodeConfig
from txtezosp2p.p2p import P2P
from txtezosp2p.p2p_config import (
    P2PConfig,
    P2PSettings,
    is_endpoint_string,
    listen_description,
)
from txtezosp2p.pool_state import ReconnectionConfig
from txtezosp2p.testing import SANDBOX_VERSIONS
from txtezosp2p.wire.encoding import P2PMessageCodec, default_metadata_config
from txtezosp2p.wire.ids import Point

from .helpers import IDENTITY_A


class ListenEntryTests(SynchronousTestCase):
    def test_endpoint_strings_as_they_are(self) -> None:
        for entry in ("tcp:9732", "tcp:0:interface=127.0.0.1", "tcp6:1:interface=\\:\\:1"):
            self.assertTrue(is_endpoint_string(entry))
            self.assertEqual(listen_description(entry), entry)

    def test_octez_addresses(self) -> None:
        """Octez's C{ADDR[:PORT]}, as in C{listen-addr} and C{--net-addr}."""
        cases = {
            "127.0.0.1:9732": "tcp:9732:interface=127.0.0.1",
            "[::]:9732": "tcp6:9732:interface=\\:\\:",
            ":19732": "tcp6:19732:interface=\\:\\:",
            "[::1]": "tcp6:9732:interface=\\:\\:1",
            "localhost:9733": "tcp:9733:interface=127.0.0.1",
        }
        for entry, expected in cases.items():
            self.assertFalse(is_endpoint_string(entry), entry)
            self.assertEqual(listen_description(entry), expected, entry)

    def test_neither(self) -> None:
        """A bad entry names both notations; a bare port is ambiguous."""
        for entry in ("tcp:x", "a=b:1", "[::1"):
            error = self.assertRaises(ValueError, listen_description, entry)
            self.assertIn("127.0.0.1:9732", str(error))
        error = self.assertRaises(ValueError, listen_description, "9732")
        self.assertIn(":9732", str(error))
        error = self.assertRaises(ValueError, listen_description, "no-such-host.invalid:1")
        self.assertIn("cannot resolve", str(error))


class OneShapeTests(SynchronousTestCase):
    """From a node's settings to a session's configuration, by evolving one value."""

    def test_of_keeps_every_setting(self) -> None:
        settings = P2PSettings(
            listen=("127.0.0.1:1",),
            advertised_port=2,
            private_mode=True,
            proof_of_work_target=3.0,
            limits=Limits(backlog=7),
            reconnection=ReconnectionConfig(factor=2.0),
            disable_mempool=True,
            disable_peer_discovery=True,
            trust_discovered_peers=True,
            peers_file="p.json",
            peers_file_interval=None,
            discovery_addr=":1",
            discovery_listen_port=3,
            discovery_listen_interface="127.0.0.1",
        )
        trusted = ((Point("127.0.0.1", 1), None),)
        config = P2PConfig.of(
            settings, identity=IDENTITY_A, versions=SANDBOX_VERSIONS, trusted_points=trusted
        )
        self.assertIsInstance(config, P2PSettings)
        for field in attrs.fields(P2PSettings):
            self.assertEqual(getattr(config, field.name), getattr(settings, field.name))
        self.assertEqual(config.trusted_points, trusted)
        self.assertIs(config.identity, IDENTITY_A)

    def test_session_config_derived(self) -> None:
        config = P2PConfig(
            identity=IDENTITY_A,
            versions=SANDBOX_VERSIONS,
            proof_of_work_target=8.0,
            advertised_port=9,
            limits=Limits(binary_chunks_size=100),
        )
        codec = P2PMessageCodec()
        metadata = default_metadata_config()
        session = config.session_config(codec, metadata)
        self.assertIs(session.identity, IDENTITY_A)
        self.assertIs(session.codec, codec)
        self.assertIs(session.metadata, metadata)
        self.assertIs(session.limits, config.limits)
        self.assertEqual(session.advertised_port, 9)
        self.assertEqual(session.pow_target.difficulty, 8.0)

    def test_layer_takes_limits_from_config(self) -> None:
        """C{P2P(reactor, config)} uses C{config.limits}; a C{limits} argument wins."""
        reactor = MemoryReactorClock()
        limits = Limits(max_connections=40, expected_connections=30, min_connections=20)
        config = P2PConfig(identity=IDENTITY_A, versions=SANDBOX_VERSIONS, limits=limits)
        p2p = P2P(reactor, config)
        self.assertIs(p2p.limits, limits)
        self.assertIs(p2p.handler.session_config.limits, limits)
        other = Limits(backlog=9)
        p2p = P2P(reactor, config, other)
        self.assertIs(p2p.limits, other)
        self.assertIs(p2p.handler.session_config.limits, other)

    def test_node_options_deprecated(self) -> None:
        """The former keywords build the same tree, with a warning."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = NodeOptions(
                data_dir="d",
                listen=("tcp:1",),
                bootstrap_peers=("1.2.3.4",),
                expected_pow=4.0,
                chain_name="TEZOS",
                discovery=("127.255.255.255", 5),
                admin=("tcp:0:interface=127.0.0.1",),
            )
        self.assertTrue(any(issubclass(w.category, DeprecationWarning) for w in caught))
        expected = NodeConfig(
            data_dir="d",
            network=NETWORKS["sandbox"],
            bootstrap_peers=("1.2.3.4",),
            admin=AdminSettings(endpoints=("tcp:0:interface=127.0.0.1",)),
            p2p=attrs.evolve(
                NODE_P2P,
                listen=("tcp:1",),
                proof_of_work_target=4.0,
                discovery_addr="127.255.255.255:5",
            ),
        )
        self.assertEqual(config, expected)
