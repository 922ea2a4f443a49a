# -*- test-case-name: tests.test_config -*-
"""
Tests for L{txtezosp2p.node.config}: reading Octez node configuration files
(behaviour.md 11.1, 11.2, 5, 9) into the one configuration tree, Octez's
validation, the C{--connections} derivation and the address text forms
(wire.md 9.2, L{txtezosp2p.wire.addresses}).
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

import tests.helpers  # noqa: F401  (loads the hypothesis profile)
from txtezosp2p.limits import Limits
from txtezosp2p.node.config import (
    DEFAULT_LISTEN_ADDR,
    LIMITS_KEYS,
    MAX_CONFIG_FILE_SIZE,
    NETWORKS,
    NODE_P2P,
    AddressError,
    ConfigError,
    Network,
    NodeConfig,
    P2PSettings,
    check,
    config_to_json,
    connection_problems,
    connections_limits,
    limits_from_json,
    limits_to_json,
    load_config_file,
    parse_config,
    parse_config_text,
    parse_discovery_addr,
    parse_listen_addr,
    parse_peer_text,
    peer_table,
    reconnection_from_json,
    validate,
    validation_warnings,
)
from txtezosp2p.pool_state import ReconnectionConfig
from txtezosp2p.wire.ids import PeerId
from txtezosp2p.wire.versions import GHOSTNET, MAINNET, SANDBOX, SHADOWNET

PEER_ID = "idrRoknJh9zwEePNswF3MPGFzmKaVp"
#: The same text with its last character changed: a bad checksum.
BAD_PEER_ID = "idrRoknJh9zwEePNswF3MPGFzmKaVq"

#: A node configuration as ``octez-node config init`` and an operator would
#: leave it: sections this layer does not read included.
OCTEZ_FILE = f"""{{
  "data-dir": "/var/lib/tezos/node",
  "rpc": {{ "listen-addrs": [ "127.0.0.1:8732" ], "acl": [] }},
  "p2p": {{
    "expected-proof-of-work": 26.5,
    "bootstrap-peers": [
      "boot.tzinit.org",
      "198.51.100.7:9733#{PEER_ID}",
      "[2001:db8::7]:9734",
      "[2001:db8::8]"
    ],
    "listen-addr": "[::]:9732",
    "advertised-net-port": 19732,
    "private-mode": false,
    "limits": {{
      "connection-timeout": 12,
      "min-connections": 8,
      "expected-connections": 16,
      "max-connections": 32,
      "max-download-speed": 2048,
      "maintenance-idle-time": null,
      "max_known_points": [ 800, 600 ],
      "max_known_peer_ids": [ 700, 500 ]
    }},
    "greylisting_config": {{ "factor": 2, "increase-cap": 3600.5 }},
    "disable_mempool": true
  }},
  "log": {{ "output": "stdout", "level": "info" }},
  "shell": {{ "chain_validator": {{ "synchronisation_threshold": 4 }},
             "history_mode": "rolling" }},
  "internal-events": {{ "active_sinks": [ "file-descriptor-path:///dev/stdout" ] }},
  "metrics_addr": [ "0.0.0.0:9932" ],
  "network": "mainnet"
}}
"""


#: Limits within the ranges the file format can hold.
file_limits = st.builds(
    Limits,
    connection_timeout=st.floats(0.01, 1e5),
    maintenance_idle_time=st.none() | st.floats(0.01, 1e5),
    backlog=st.integers(0, 255),
    max_upload_speed=st.none() | st.integers(1, 1 << 20),
    read_queue_size=st.none() | st.integers(0, 1 << 20),
    max_known_points=st.none() | st.just((1000, 700)),
    max_known_peer_ids=st.none() | st.just((500, 400)),
    swap_linger=st.none() | st.floats(0.01, 100),
    binary_chunks_size=st.none() | st.integers(19, 255),
)

node_configs = st.builds(
    NodeConfig,
    data_dir=st.none() | st.text(max_size=20),
    network=st.sampled_from([*NETWORKS.values(), Network(None, "TEZOS_X", "S", ("a", "b"))]),
    disable_config_validation=st.booleans(),
    bootstrap_peers=st.none()
    | st.lists(st.sampled_from(["h", "1.2.3.4:5", "[::1]"]), max_size=3).map(tuple),
    enable_testchain=st.booleans(),
    p2p=st.builds(
        P2PSettings,
        listen=st.sampled_from([(), ("[::]:9732",), ("127.0.0.1:19732",)]),
        advertised_port=st.none() | st.integers(0, 65535),
        discovery_addr=st.none() | st.sampled_from(["", ":10733", "10.0.0.255"]),
        private_mode=st.booleans(),
        proof_of_work_target=st.floats(0, 256),
        limits=file_limits,
        reconnection=st.builds(
            ReconnectionConfig,
            factor=st.floats(1, 3),
            initial_delay=st.floats(0, 100),
            disconnection_delay=st.floats(0, 100),
            increase_cap=st.floats(0, 1e6),
        ),
        disable_mempool=st.booleans(),
        disable_peer_discovery=st.booleans(),
        peers_file=st.just("peers.json"),
    ),
)


class OctezFileTests(SynchronousTestCase):
    """Real Octez files are read as they are."""

    def write(self, data: bytes | str) -> str:
        path = str(self.mktemp())
        with open(path, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    def test_realistic_file(self) -> None:
        """
        Every p2p key of the sample is read with its unit; the other sections
        are ignored but kept in C{raw}.
        """
        config = load_config_file(self.write(OCTEZ_FILE))
        self.assertEqual(config.data_dir, "/var/lib/tezos/node")
        self.assertEqual(config.network, NETWORKS["mainnet"])
        p2p = config.p2p
        self.assertEqual(p2p.proof_of_work_target, 26.5)
        self.assertEqual(p2p.listen, ("[::]:9732",))
        self.assertEqual(p2p.advertised_port, 19732)
        self.assertIsNone(p2p.discovery_addr)
        self.assertFalse(p2p.private_mode)
        self.assertTrue(p2p.disable_mempool)
        self.assertFalse(config.enable_testchain)
        self.assertFalse(p2p.disable_peer_discovery)
        self.assertEqual(
            config.bootstrap_peers,
            (
                "boot.tzinit.org",
                f"198.51.100.7:9733#{PEER_ID}",
                "[2001:db8::7]:9734",
                "[2001:db8::8]",
            ),
        )
        self.assertEqual(config.effective_bootstrap_peers, config.bootstrap_peers)
        self.assertEqual(
            [parse_peer_text(peer) for peer in config.effective_bootstrap_peers],
            [
                ("boot.tzinit.org", 9732, None),
                ("198.51.100.7", 9733, PeerId.from_b58check(PEER_ID)),
                ("2001:db8::7", 9734, None),
                ("2001:db8::8", 9732, None),
            ],
        )
        limits = p2p.limits
        self.assertEqual(limits.connection_timeout, 12.0)
        self.assertEqual(
            (limits.min_connections, limits.expected_connections, limits.max_connections),
            (8, 16, 32),
        )
        self.assertEqual(limits.max_download_speed, 2048)
        self.assertIsNone(limits.max_upload_speed)
        self.assertIsNone(limits.maintenance_idle_time)
        self.assertEqual(limits.max_known_points, (800, 600))
        self.assertEqual(limits.max_known_peer_ids, (700, 500))
        # Keys left out of the limits object keep Octez's defaults.
        self.assertEqual(limits.authentication_timeout, 5.0)
        self.assertEqual(limits.swap_linger, 30.0)
        self.assertEqual(limits.read_queue_size, 8 << 20)
        self.assertEqual(
            p2p.reconnection,
            ReconnectionConfig(factor=2.0, increase_cap=3600.5),
        )
        self.assertEqual(config.raw["shell"]["history_mode"], "rolling")
        self.assertEqual(config.raw["rpc"]["listen-addrs"], ["127.0.0.1:8732"])
        self.assertEqual(validate(config), [])
        self.assertEqual(validation_warnings(config), [validation_warnings(config)[0]])
        self.assertIn("maintenance is disabled", validation_warnings(config)[0])
        check(config)

    def test_empty_object(self) -> None:
        """An empty file is Octez's default configuration."""
        config = parse_config({})
        self.assertEqual(config, NodeConfig())
        self.assertIsNone(config.data_dir)
        self.assertEqual(config.network.chain_name, MAINNET)
        self.assertEqual(config.p2p, NODE_P2P)
        self.assertEqual(config.p2p.listen, (DEFAULT_LISTEN_ADDR,))
        self.assertEqual(config.p2p.peers_file, "peers.json")
        self.assertEqual(config.p2p.limits, Limits())
        self.assertEqual(config.p2p.reconnection, ReconnectionConfig())
        self.assertEqual(
            config.effective_bootstrap_peers, NETWORKS["mainnet"].default_bootstrap_peers
        )
        self.assertEqual(validate(config), [])

    def test_unknown_top_level_sections(self) -> None:
        """Sections we do not know are kept, not refused."""
        config = parse_config({"profiling": {"level": 3}, "future-section": [1, 2]})
        self.assertEqual(config.raw["future-section"], [1, 2])
        self.assertEqual(config.p2p, NODE_P2P)

    def test_top_level_types(self) -> None:
        for document, path in [
            ({"data-dir": 3}, "data-dir"),
            ({"disable-config-validation": "yes"}, "disable-config-validation"),
            ({"p2p": []}, "p2p"),
            ({"network": 4}, "network"),
        ]:
            error = self.assertRaises(ConfigError, parse_config, document)
            self.assertEqual(error.path, path)

    def test_disable_config_validation(self) -> None:
        config = parse_config({"disable-config-validation": True})
        self.assertTrue(config.disable_config_validation)


class QuirkTests(SynchronousTestCase):
    """The decoder behaviours of Octez that are reproduced on purpose."""

    def test_connection_timeout_in_present_limits(self) -> None:
        """
        A C{limits} object without C{connection-timeout} reads as 5 s (the
        authentication default), not the record default of 10 s.
        """
        config = parse_config({"p2p": {"limits": {"backlog": 30}}})
        self.assertEqual(config.p2p.limits.connection_timeout, 5.0)
        self.assertEqual(config.p2p.limits.backlog, 30)
        self.assertEqual(limits_from_json({}).connection_timeout, 5.0)

    def test_tables_in_present_limits(self) -> None:
        """Missing C{max_known_points} / C{max_known_peer_ids} read as unbounded."""
        limits = limits_from_json({"min-connections": 1})
        self.assertIsNone(limits.max_known_points)
        self.assertIsNone(limits.max_known_peer_ids)

    def test_present_limits_otherwise_default(self) -> None:
        self.assertEqual(
            limits_from_json({}),
            Limits(connection_timeout=5.0, max_known_points=None, max_known_peer_ids=None),
        )

    def test_absent_limits(self) -> None:
        """Without a C{limits} object the record defaults apply: 10 s, (400, 300)."""
        documents: list[dict[str, Any]] = [{}, {"p2p": {}}, {"p2p": {"private-mode": True}}]
        for document in documents:
            limits = parse_config(document).p2p.limits
            self.assertEqual(limits, Limits())
            self.assertEqual(limits.connection_timeout, 10.0)
            self.assertEqual(limits.max_known_points, (400, 300))

    def test_listen_addr_absent_in_present_section(self) -> None:
        """
        The C{[::]:9732} default belongs to the whole section: a C{p2p}
        object without C{listen-addr} does not listen.
        """
        self.assertEqual(parse_config({}).p2p.listen, ("[::]:9732",))
        self.assertEqual(parse_config({"p2p": {}}).p2p.listen, ())


class LimitsTests(SynchronousTestCase):
    """Every field of behaviour.md 11.1."""

    def test_keys(self) -> None:
        """
        Every Limits attribute has its Octez key, mixed spellings included;
        ``admission`` (set with ``--admission``) and ``receive_progress_timeout``
        are ours, not Octez's.
        """
        ours = {"admission", "receive_progress_timeout"}
        self.assertEqual(set(LIMITS_KEYS), {field.name for field in attrs.fields(Limits)} - ours)
        self.assertEqual(
            set(LIMITS_KEYS.values()),
            {
                "connection-timeout",
                "authentication-timeout",
                "greylist-timeout",
                "maintenance-idle-time",
                "min-connections",
                "expected-connections",
                "max-connections",
                "backlog",
                "max-incoming-connections",
                "max-download-speed",
                "max-upload-speed",
                "read-buffer-size",
                "read-queue-size",
                "write-queue-size",
                "incoming-message-queue-size",
                "outgoing-message-queue-size",
                "incoming-app-message-queue-size",
                "max_known_points",
                "max_known_peer_ids",
                "peer_greylist_size",
                "ip_greylist_size_in_kilobytes",
                "ip_greylist_cleanup_delay",
                "swap-linger",
                "binary-chunks-size",
            },
        )

    def test_each_field_read(self) -> None:
        """Each key, alone in a limits object, sets its attribute in its unit."""
        base = limits_from_json({})
        cases: list[tuple[str, Any, str, Any]] = [
            ("connection-timeout", 7.5, "connection_timeout", 7.5),
            ("authentication-timeout", 2, "authentication_timeout", 2.0),
            ("greylist-timeout", 60, "greylist_timeout", 60.0),
            ("maintenance-idle-time", 30.25, "maintenance_idle_time", 30.25),
            ("maintenance-idle-time", None, "maintenance_idle_time", None),
            ("min-connections", 0, "min_connections", 0),
            ("expected-connections", 60, "expected_connections", 60),
            ("max-connections", 65535, "max_connections", 65535),
            ("backlog", 255, "backlog", 255),
            ("max-incoming-connections", 0, "max_incoming_connections", 0),
            ("max-download-speed", 100, "max_download_speed", 100),
            ("max-upload-speed", 1073741823, "max_upload_speed", 1073741823),
            ("read-buffer-size", 4096, "read_buffer_size", 4096),
            ("read-queue-size", None, "read_queue_size", None),
            ("write-queue-size", 1024, "write_queue_size", 1024),
            ("incoming-message-queue-size", None, "incoming_message_queue_size", None),
            ("outgoing-message-queue-size", 0, "outgoing_message_queue_size", 0),
            ("incoming-app-message-queue-size", 3, "incoming_app_message_queue_size", 3),
            ("max_known_points", [10, 5], "max_known_points", (10, 5)),
            ("max_known_peer_ids", [0, 0], "max_known_peer_ids", (0, 0)),
            ("peer_greylist_size", 1, "peer_greylist_size", 1),
            ("ip_greylist_size_in_kilobytes", 65535, "ip_greylist_size_in_kilobytes", 65535),
            ("ip_greylist_cleanup_delay", 0.5, "ip_greylist_cleanup_delay", 0.5),
            ("swap-linger", None, "swap_linger", None),
            ("swap-linger", 1e-3, "swap_linger", 1e-3),
            ("binary-chunks-size", 19, "binary_chunks_size", 19),
            ("binary-chunks-size", 255, "binary_chunks_size", 255),
            # data-encoding reads integral numbers written with a fraction.
            ("backlog", 10.0, "backlog", 10),
        ]
        seen = set()
        for key, value, attr, expected in cases:
            seen.add(key)
            limits = limits_from_json({key: value})
            self.assertEqual(getattr(limits, attr), expected, key)
            self.assertEqual(limits, base.replace(**{attr: expected}), key)
        self.assertEqual(seen, set(LIMITS_KEYS.values()))

    def test_round_trip_defaults(self) -> None:
        """limits_to_json writes every field, so no quirk applies on reading."""
        self.assertEqual(limits_from_json(limits_to_json(Limits())), Limits())
        written = limits_to_json(Limits())
        self.assertEqual(written["connection-timeout"], 10.0)
        self.assertEqual(written["max_known_points"], [400, 300])
        self.assertNotIn("max-download-speed", written)
        self.assertNotIn("binary-chunks-size", written)

    def test_none_forms(self) -> None:
        """C{opt} fields are left out for None, C{option} fields written as null."""
        limits = Limits(
            maintenance_idle_time=None,
            swap_linger=None,
            read_queue_size=None,
            max_known_points=None,
            max_known_peer_ids=None,
        )
        written = limits_to_json(limits)
        self.assertIsNone(written["maintenance-idle-time"])
        self.assertIsNone(written["swap-linger"])
        self.assertIsNone(written["read-queue-size"])
        self.assertNotIn("max_known_points", written)
        self.assertNotIn("max_known_peer_ids", written)
        self.assertEqual(limits_from_json(written), limits)

    @given(
        st.fixed_dictionaries(
            {
                "connection_timeout": st.floats(0.001, 1e6),
                "authentication_timeout": st.floats(0.001, 1e6),
                "greylist_timeout": st.floats(-1e6, 1e6),
                "maintenance_idle_time": st.none() | st.floats(0.001, 1e6),
                "backlog": st.integers(0, 255),
                "max_incoming_connections": st.integers(0, 255),
                "max_download_speed": st.none() | st.integers(1, (1 << 30) - 1),
                "max_upload_speed": st.none() | st.integers(1, (1 << 30) - 1),
                "read_buffer_size": st.integers(1, (1 << 30) - 1),
                "read_queue_size": st.none() | st.integers(0, (1 << 30) - 1),
                "write_queue_size": st.none() | st.integers(0, (1 << 30) - 1),
                "incoming_message_queue_size": st.none() | st.integers(0, (1 << 30) - 1),
                "outgoing_message_queue_size": st.none() | st.integers(0, (1 << 30) - 1),
                "incoming_app_message_queue_size": st.none() | st.integers(0, (1 << 30) - 1),
                "peer_greylist_size": st.integers(0, 65535),
                "ip_greylist_size_in_kilobytes": st.integers(0, 65535),
                "ip_greylist_cleanup_delay": st.floats(0, 1e9),
                "swap_linger": st.none() | st.floats(0.001, 1e6),
                "binary_chunks_size": st.none() | st.integers(19, 255),
            }
        ),
        st.lists(st.integers(0, 65535), min_size=3, max_size=3).map(sorted),
        st.none()
        | st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(
            lambda pair: (max(pair), min(pair))
        ),
        st.none()
        | st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(
            lambda pair: (max(pair), min(pair))
        ),
    )
    def test_round_trip(
        self,
        values: dict[str, Any],
        bounds: list[int],
        points: tuple[int, int] | None,
        peer_ids: tuple[int, int] | None,
    ) -> None:
        """Any Limits within the file's ranges survives writing, JSON text and reading."""
        limits = Limits(
            min_connections=bounds[0],
            expected_connections=bounds[1],
            max_connections=bounds[2],
            max_known_points=points,
            max_known_peer_ids=peer_ids,
            **values,
        )
        text = json.dumps(limits_to_json(limits))
        self.assertEqual(limits_from_json(json.loads(text)), limits)

    def test_range_errors(self) -> None:
        """Out-of-range and mistyped values name their JSON path."""
        cases: list[tuple[str, Any, str]] = [
            ("max-connections", 65536, "expected an integer in [0, 65535]"),
            ("min-connections", -1, "expected an integer in [0, 65535]"),
            ("backlog", 256, "expected an integer in [0, 255]"),
            ("max-incoming-connections", 300, "expected an integer in [0, 255]"),
            ("peer_greylist_size", 70000, "expected an integer in [0, 65535]"),
            ("read-buffer-size", 1 << 30, "expected an integer in [0, 1073741823]"),
            ("read-queue-size", -5, "expected an integer in [0, 1073741823] or null"),
            ("binary-chunks-size", 18, "expected an integer in [19, 255]"),
            ("binary-chunks-size", 256, "expected an integer in [19, 255]"),
            ("backlog", 1.5, "expected an integer in [0, 255]"),
            ("backlog", True, "expected an integer in [0, 255], found a boolean"),
            ("backlog", "20", "found a string"),
            ("backlog", None, "found null"),
            ("connection-timeout", "10", "expected a duration in seconds"),
            ("connection-timeout", None, "expected a duration in seconds, found null"),
            ("max-download-speed", None, "null is not allowed here"),
            ("binary-chunks-size", None, "null is not allowed here"),
            ("max_known_points", None, "null is not allowed here"),
            ("max_known_points", [400], "expected an array [max, target]"),
            ("max_known_points", [1, 2, 3], "expected an array [max, target]"),
            ("max_known_points", {"max": 1}, "expected an array [max, target]"),
        ]
        for key, value, message in cases:
            error = self.assertRaises(ConfigError, parse_config, {"p2p": {"limits": {key: value}}})
            self.assertEqual(error.path, f"p2p.limits.{key}", key)
            self.assertIn(message, str(error), key)
            self.assertTrue(str(error).startswith(f"p2p.limits.{key}: "), str(error))

    def test_table_entry_path(self) -> None:
        error = self.assertRaises(
            ConfigError, parse_config, {"p2p": {"limits": {"max_known_peer_ids": [400, -1]}}}
        )
        self.assertEqual(
            str(error),
            "p2p.limits.max_known_peer_ids[1]: expected an integer in [0, 65535], "
            "found the number -1",
        )

    def test_limits_check_problems(self) -> None:
        """Values Limits refuses become ConfigErrors at the limits object."""
        for key, value in [
            ("authentication-timeout", 0),
            ("connection-timeout", -1),
            ("swap-linger", 0),
            ("maintenance-idle-time", -3),
            ("max-upload-speed", 0),
            ("read-buffer-size", 0),
        ]:
            error = self.assertRaises(ConfigError, limits_from_json, {key: value})
            self.assertEqual(error.path, "p2p.limits", key)

    def test_not_an_object(self) -> None:
        error = self.assertRaises(ConfigError, parse_config, {"p2p": {"limits": [1]}})
        self.assertEqual(str(error), "p2p.limits: expected an object, found an array")

    def test_unknown_key(self) -> None:
        """P2p_limits.encoding is a closed object: Octez refuses extra fields."""
        error = self.assertRaises(
            ConfigError, parse_config, {"p2p": {"limits": {"max_connections": 10}}}
        )
        self.assertEqual(error.path, "p2p.limits.max_connections")
        self.assertIn("unknown field", str(error))

    def test_writer_refuses_unrepresentable(self) -> None:
        """A CLI-sized chunk (KiB * 1024) does not fit the file's uint8."""
        error = self.assertRaises(ConfigError, limits_to_json, Limits(binary_chunks_size=4096))
        self.assertEqual(error.path, "p2p.limits.binary-chunks-size")
        self.assertRaises(ConfigError, limits_to_json, Limits(backlog=256))


class TreeTests(SynchronousTestCase):
    """The one configuration tree: its defaults and what it derives."""

    def test_defaults(self) -> None:
        """Octez's defaults: every address, one data directory per user, peers.json in it."""
        config = NodeConfig()
        self.assertEqual(config.p2p.listen, ("[::]:9732",))
        home = os.path.join(os.path.expanduser("~"), ".tezos-p2p")
        self.assertEqual(config.data_directory, home)
        self.assertEqual(config.peers_file, os.path.join(home, "peers.json"))
        self.assertEqual(config.lock_file, os.path.join(home, "lock"))
        self.assertEqual(config.identity_file, os.path.join(home, "identity.json"))
        config = attrs.evolve(config, data_dir="d").evolve_p2p(peers_file=None)
        self.assertIsNone(config.peers_file)
        self.assertEqual(config.lock_file, os.path.join("d", "lock"))

    def test_endpoint_strings_not_written(self) -> None:
        """An Octez file holds one ADDR:PORT; endpoint strings stay on the command line."""
        for listen in (("tcp:9732",), ("[::]:1", "[::]:2")):
            config = NodeConfig().evolve_p2p(listen=listen)
            error = self.assertRaises(ConfigError, config_to_json, config)
            self.assertEqual(error.path, "p2p.listen-addr")
        written = config_to_json(NodeConfig().evolve_p2p(listen=("127.0.0.1:1",)))
        self.assertEqual(written["p2p"]["listen-addr"], "127.0.0.1:1")

    def test_endpoint_strings_validated(self) -> None:
        """Listening entries that are endpoint strings are not read as Octez addresses."""
        config = NodeConfig().evolve_p2p(listen=("tcp:9732", "[::1"))
        [problem] = validate(config)
        self.assertIn("'[::1' in field 'p2p.listen-addr'", problem)


class P2PSectionTests(SynchronousTestCase):
    def test_unknown_key_refused(self) -> None:
        """The p2p object is closed in Octez's encoding."""
        for key in ("listen_addr", "bootstrap_peers", "expected-pow", "rpc"):
            error = self.assertRaises(ConfigError, parse_config, {"p2p": {key: 1}})
            self.assertEqual(error.path, f"p2p.{key}")
            self.assertIn("unknown field", str(error))

    def test_types(self) -> None:
        cases: list[tuple[str, Any, str]] = [
            ("expected-proof-of-work", "26", "p2p.expected-proof-of-work"),
            ("bootstrap-peers", "boot.tzinit.org", "p2p.bootstrap-peers"),
            ("bootstrap-peers", ["a", 3], "p2p.bootstrap-peers[1]"),
            ("bootstrap-peers", None, "p2p.bootstrap-peers"),
            ("listen-addr", 9732, "p2p.listen-addr"),
            ("listen-addr", None, "p2p.listen-addr"),
            ("advertised-net-port", 65536, "p2p.advertised-net-port"),
            ("advertised-net-port", None, "p2p.advertised-net-port"),
            ("discovery-addr", 10732, "p2p.discovery-addr"),
            ("private-mode", 1, "p2p.private-mode"),
            ("disable_mempool", "true", "p2p.disable_mempool"),
            ("enable_testchain", None, "p2p.enable_testchain"),
            ("disable_peer_discovery", 0, "p2p.disable_peer_discovery"),
            ("greylisting_config", [], "p2p.greylisting_config"),
        ]
        for key, value, path in cases:
            error = self.assertRaises(ConfigError, parse_config, {"p2p": {key: value}})
            self.assertEqual(error.path, path, key)

    def test_discovery_addr_nullable(self) -> None:
        """discovery-addr is a C{dft (option string)}: null is allowed."""
        self.assertIsNone(parse_config({"p2p": {"discovery-addr": None}}).p2p.discovery_addr)
        self.assertEqual(
            parse_config({"p2p": {"discovery-addr": ":10733"}}).p2p.discovery_addr, ":10733"
        )

    def test_flags(self) -> None:
        config = parse_config(
            {
                "p2p": {
                    "private-mode": True,
                    "disable_mempool": True,
                    "enable_testchain": True,
                    "disable_peer_discovery": True,
                    "bootstrap-peers": [],
                }
            }
        )
        p2p = config.p2p
        self.assertTrue(p2p.private_mode and p2p.disable_mempool and config.enable_testchain)
        self.assertTrue(p2p.disable_peer_discovery)
        self.assertEqual(config.bootstrap_peers, ())
        self.assertIn(
            "The option `p2p.enable_testchain` is deprecated.", validation_warnings(config)
        )


class ReconnectionTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        self.assertEqual(reconnection_from_json({}), ReconnectionConfig())

    def test_all_keys(self) -> None:
        self.assertEqual(
            reconnection_from_json(
                {
                    "factor": 1,
                    "initial-delay": 0.5,
                    "disconnection-delay": 10,
                    "increase-cap": 600,
                }
            ),
            ReconnectionConfig(
                factor=1.0, initial_delay=0.5, disconnection_delay=10.0, increase_cap=600.0
            ),
        )

    def test_errors(self) -> None:
        error = self.assertRaises(ConfigError, reconnection_from_json, {"initial_delay": 1})
        self.assertEqual(error.path, "p2p.greylisting_config.initial_delay")
        error = self.assertRaises(ConfigError, reconnection_from_json, {"factor": "2"})
        self.assertEqual(error.path, "p2p.greylisting_config.factor")
        error = self.assertRaises(ConfigError, reconnection_from_json, {"increase-cap": None})
        self.assertEqual(error.path, "p2p.greylisting_config.increase-cap")


class NetworkTests(SynchronousTestCase):
    def test_builtin(self) -> None:
        """The aliases of config_file.ml with their chain names and bootstrap peers."""
        self.assertEqual(list(NETWORKS), ["sandbox", "mainnet", "ghostnet", "shadownet"])
        expected = {
            "mainnet": (MAINNET, ("boot.tzinit.org", "boot.tzboot.net", "boot.tzbeta.net")),
            "ghostnet": (
                GHOSTNET,
                (
                    "ghostnet.teztnets.com",
                    "ghostnet.tzinit.org",
                    "ghostnet.tzboot.net",
                    "ghostnet.boot.ecadinfra.com",
                    "ghostnet.stakenow.de:9733",
                ),
            ),
            "shadownet": (SHADOWNET, ("shadownet.teztnets.com", "shadownet.tzinit.org")),
            "sandbox": (SANDBOX, ()),
        }
        for name, (chain_name, peers) in expected.items():
            config = parse_config({"network": name})
            self.assertEqual(config.network.name, name)
            self.assertEqual(config.network.chain_name, chain_name)
            self.assertEqual(config.network.default_bootstrap_peers, peers)
            self.assertIsNone(config.bootstrap_peers)
            self.assertEqual(config.effective_bootstrap_peers, peers)
            self.assertEqual(validate(config), [])
        self.assertEqual(NETWORKS["mainnet"].sandboxed_chain_name, "SANDBOXED_TEZOS_MAINNET")
        self.assertEqual(NETWORKS["sandbox"].chain_name, "TEZOS")

    def test_configured_peers_win(self) -> None:
        config = parse_config({"network": "ghostnet", "p2p": {"bootstrap-peers": ["x.example"]}})
        self.assertEqual(config.effective_bootstrap_peers, ("x.example",))

    def test_unknown_name(self) -> None:
        """Aliases match exactly, as data-encoding constants do."""
        for name in ("Mainnet", "kathmandunet", ""):
            error = self.assertRaises(ConfigError, parse_config, {"network": name})
            self.assertEqual(error.path, "network")
            self.assertIn("unknown network", str(error))

    def test_custom(self) -> None:
        """A network object as Octez writes one for a custom network."""
        document: dict[str, Any] = {
            "network": {
                "genesis": {
                    "timestamp": "2024-01-01T00:00:00Z",
                    "block": "BLockGenesisGenesisGenesisGenesisGenesisf79b5d1CoW2",
                    "protocol": "Ps9mPmXaRzmzk35gbAYNCAw6UXdE2qoABTHbN2oEEc1qM7CwT9P",
                },
                "chain_name": "TEZOS_PRIVATE_2024",
                "sandboxed_chain_name": "SANDBOXED_TEZOS",
                "default_bootstrap_peers": ["10.0.0.1", "10.0.0.2:9733"],
                "user_activated_upgrades": [],
            }
        }
        config = parse_config(document)
        self.assertEqual(
            config.network,
            Network(None, "TEZOS_PRIVATE_2024", "SANDBOXED_TEZOS", ("10.0.0.1", "10.0.0.2:9733")),
        )
        self.assertEqual(config.effective_bootstrap_peers, ("10.0.0.1", "10.0.0.2:9733"))
        # Fields we do not model survive writing.
        written = config_to_json(config)
        self.assertEqual(written["network"]["genesis"], document["network"]["genesis"])
        self.assertEqual(parse_config(written), config)

    def test_custom_minimal(self) -> None:
        network = parse_config({"network": {"chain_name": "X"}}).network
        self.assertEqual(network, Network(None, "X", "SANDBOXED_TEZOS", ()))

    def test_custom_errors(self) -> None:
        for value, path in [
            ({}, "network.chain_name"),
            ({"chain_name": 1}, "network.chain_name"),
            ({"chain_name": "X", "chain-name": "Y"}, "network.chain-name"),
            (
                {"chain_name": "X", "default_bootstrap_peers": "a"},
                "network.default_bootstrap_peers",
            ),
            ({"chain_name": "X", "sandboxed_chain_name": None}, "network.sandboxed_chain_name"),
        ]:
            error = self.assertRaises(ConfigError, parse_config, {"network": value})
            self.assertEqual(error.path, path)


class ValidationTests(SynchronousTestCase):
    """config_validation.ml's errors, and Limits.check problems."""

    def test_min_greater_than_expected(self) -> None:
        problems = connection_problems(
            min_connections=60,
            expected_connections=50,
            max_connections=100,
            max_known_points=None,
            max_known_peer_ids=None,
        )
        message = (
            "the minimum number of connections found in field 'p2p.limits.min-connections' (60) "
            "is greater than the expected number of connections found in field "
            "'p2p.limits.expected-connections' (50)."
        )
        self.assertEqual(problems, [message])
        # Limits cannot hold it, so reading the file reports it.
        error = self.assertRaises(
            ConfigError, parse_config, {"p2p": {"limits": {"min-connections": 60}}}
        )
        self.assertEqual(error.path, "p2p.limits")
        self.assertEqual(error.problems, [message])

    def test_expected_greater_than_max(self) -> None:
        problems = connection_problems(
            min_connections=10,
            expected_connections=150,
            max_connections=100,
            max_known_points=None,
            max_known_peer_ids=None,
        )
        message = (
            "the expected number of connections found in field "
            "'p2p.limits.expected-connections' (150) is greater than the maximum number of "
            "connections found in field 'p2p.limits.max-connections' (100)."
        )
        self.assertEqual(problems, [message])
        error = self.assertRaises(
            ConfigError, parse_config, {"p2p": {"limits": {"expected-connections": 150}}}
        )
        self.assertEqual(error.problems, [message])

    def test_table_target_greater_than_max(self) -> None:
        for key, what in (("max_known_points", "point ids"), ("max_known_peer_ids", "peer ids")):
            tables: dict[str, Any] = {"max_known_points": None, "max_known_peer_ids": None}
            tables[key] = (300, 400)
            problems = connection_problems(
                min_connections=10, expected_connections=50, max_connections=100, **tables
            )
            message = (
                f"in field 'p2p.limits.{key}', the target number of known {what} (400) is "
                f"greater than the maximum number of known {what} (300)."
            )
            self.assertEqual(problems, [message])
            error = self.assertRaises(
                ConfigError, parse_config, {"p2p": {"limits": {key: [300, 400]}}}
            )
            self.assertEqual(error.problems, [message])

    def test_max_connections_over_table_target(self) -> None:
        """The one connection rule Limits can hold, so validate() reports it."""
        for key, what in (("max_known_points", "point ids"), ("max_known_peer_ids", "peer ids")):
            config = parse_config({"p2p": {"limits": {"max-connections": 350, key: [400, 300]}}})
            self.assertEqual(
                validate(config),
                [
                    f"the target number of known {what} (300) in field 'p2p.limits.{key}' is "
                    f"lower than the maximum number of connections (350) found in field "
                    f"'p2p.limits.max-connections'."
                ],
            )

    def test_order_of_messages(self) -> None:
        """Octez's order: bounds, then peer ids, then points."""
        problems = connection_problems(
            min_connections=20,
            expected_connections=10,
            max_connections=5,
            max_known_points=(1, 2),
            max_known_peer_ids=(3, 4),
        )
        self.assertEqual(len(problems), 6)
        self.assertIn("minimum", problems[0])
        self.assertIn("expected number of connections found", problems[1])
        self.assertIn("max_known_peer_ids', the target", problems[2])
        self.assertIn("'p2p.limits.max_known_peer_ids' is lower", problems[3])
        self.assertIn("max_known_points', the target", problems[4])
        self.assertIn("'p2p.limits.max_known_points' is lower", problems[5])

    def test_expected_pow(self) -> None:
        for value in (-0.5, 256.5):
            config = parse_config({"p2p": {"expected-proof-of-work": value}})
            self.assertEqual(
                validate(config),
                [
                    "the expected proof-of-work must be between 0 and 256 (inclusive), but "
                    f"found the value {value} in field 'p2p.expected-proof-of-work'."
                ],
            )
        for value in (0, 256):
            self.assertEqual(validate(parse_config({"p2p": {"expected-proof-of-work": value}})), [])

    def test_addresses(self) -> None:
        config = parse_config(
            {
                "p2p": {
                    "bootstrap-peers": ["good.example", "2001:db8::1"],
                    "listen-addr": "0.0.0.0:99999",
                    "discovery-addr": "example.org",
                }
            }
        )
        self.assertEqual(
            validate(config),
            [
                "failed to parse address '2001:db8::1' in field 'p2p.bootstrap-peers': expected "
                "<addr>[:<port>][#<peer_id>] (write IPv6 addresses in brackets: "
                "[2001:db8::1]:9732).",
                "failed to parse address '0.0.0.0:99999' in field 'p2p.listen-addr': port "
                "'99999' not in range [0-65535].",
                "failed to parse address 'example.org' in field 'p2p.discovery-addr': the "
                "discovery address must be an IPv4 address.",
            ],
        )

    def test_network_default_peers(self) -> None:
        """Octez names the network's list 'network.default_bootstrap-peers'."""
        config = parse_config({"network": {"chain_name": "X", "default_bootstrap_peers": ["a b"]}})
        self.assertEqual(
            validate(config),
            [
                "failed to parse address 'a b' in field 'network.default_bootstrap-peers': "
                "expected <addr>[:<port>][#<peer_id>]."
            ],
        )

    def test_limits_check(self) -> None:
        """
        Problems of Limits.check are reported too, even with validation
        disabled (Octez's P2P layer runs them at creation).
        """
        config = NodeConfig()
        disabled = attrs.evolve(config, disable_config_validation=True)

        def refuse(limits: Limits) -> None:
            raise ValueError("swap-linger must be positive")

        self.patch(Limits, "check", refuse)
        self.assertEqual(validate(config), ["p2p.limits: swap-linger must be positive"])
        for each in (config, disabled):
            error = self.assertRaises(ConfigError, check, each)
            self.assertEqual(error.problems, ["p2p.limits: swap-linger must be positive"])

    def test_check_raises_all(self) -> None:
        config = parse_config(
            {
                "p2p": {
                    "expected-proof-of-work": 300,
                    "limits": {"max-connections": 500, "max_known_points": [400, 300]},
                }
            }
        )
        error = self.assertRaises(ConfigError, check, config)
        self.assertEqual(error.problems, validate(config))
        self.assertEqual(len(error.problems), 2)
        for problem in error.problems:
            self.assertIn(problem, str(error))

    def test_check_disabled(self) -> None:
        """disable-config-validation skips Octez's validation."""
        config = parse_config(
            {"disable-config-validation": True, "p2p": {"expected-proof-of-work": 300}}
        )
        self.assertNotEqual(validate(config), [])
        check(config)


class ConnectionsTests(SynchronousTestCase):
    """--connections N (shared_arg.ml)."""

    def test_values(self) -> None:
        base = Limits()
        for n, (low, expected, high), table in [
            (1, (1, 1, 1), (8, 6)),
            (2, (1, 2, 3), (16, 12)),
            (10, (5, 10, 15), (80, 60)),
            (50, (25, 50, 75), (400, 300)),
            (100, (50, 100, 150), (800, 600)),
        ]:
            limits = connections_limits(n, base)
            self.assertEqual(
                (limits.min_connections, limits.expected_connections, limits.max_connections),
                (low, expected, high),
                n,
            )
            self.assertEqual(limits.max_known_points, table, n)
            self.assertEqual(limits.max_known_peer_ids, table, n)
            # Nothing else changes.
            self.assertEqual(
                limits.replace(
                    min_connections=base.min_connections,
                    expected_connections=base.expected_connections,
                    max_connections=base.max_connections,
                    max_known_points=base.max_known_points,
                    max_known_peer_ids=base.max_known_peer_ids,
                ),
                base,
            )
            config = NodeConfig(p2p=P2PSettings(limits=limits))
            self.assertEqual(validate(config), [], n)

    def test_more_than_100(self) -> None:
        error = self.assertRaises(ConfigError, connections_limits, 101, Limits())
        self.assertIn("limited to 100", str(error))
        limits = connections_limits(101, Limits(), allow_more=True)
        self.assertEqual(limits.max_connections, 151)
        self.assertEqual(limits.max_known_points, (808, 606))

    def test_peer_table_size(self) -> None:
        """--peer-table-size wins over 8 * N; the target is N / 4 * 3."""
        limits = connections_limits(10, Limits(), peer_table_size=1001)
        self.assertEqual(limits.max_known_points, (1001, 750))
        self.assertEqual(limits.max_known_peer_ids, (1001, 750))
        self.assertEqual(peer_table(7), (7, 3))
        self.assertRaises(ConfigError, peer_table, -1)
        self.assertRaises(ConfigError, peer_table, 65536)

    def test_bad_values(self) -> None:
        self.assertRaises(ConfigError, connections_limits, -1, Limits())
        self.assertRaises(ConfigError, connections_limits, 50000, Limits(), allow_more=True)

    def test_zero(self) -> None:
        limits = connections_limits(0, Limits())
        self.assertEqual((limits.min_connections, limits.max_connections), (0, 0))
        self.assertEqual(limits.max_known_points, (0, 0))


class PeerTextTests(SynchronousTestCase):
    """<addr>[:<port>][#<peer_id>] (point_parser.mll, wire.md 9.2)."""

    def test_forms(self) -> None:
        peer = PeerId.from_b58check(PEER_ID)
        for text, expected in [
            ("1.2.3.4", ("1.2.3.4", 9732, None)),
            ("1.2.3.4:9733", ("1.2.3.4", 9733, None)),
            ("[::1]", ("::1", 9732, None)),
            ("[2001:db8::1]:0", ("2001:db8::1", 0, None)),
            ("[::ffff:1.2.3.4]:65535", ("::ffff:1.2.3.4", 65535, None)),
            ("[1.2.3.4]:5", ("1.2.3.4", 5, None)),
            ("boot.tzinit.org", ("boot.tzinit.org", 9732, None)),
            ("ghostnet.stakenow.de:9733", ("ghostnet.stakenow.de", 9733, None)),
            ("my-host", ("my-host", 9732, None)),
            (f"node.example:9734#{PEER_ID}", ("node.example", 9734, peer)),
            (f"[::1]#{PEER_ID}", ("::1", 9732, peer)),
            (f"10.0.0.1#{PEER_ID}", ("10.0.0.1", 9732, peer)),
            ("", ("::", 9732, None)),
            ("_", ("::", 9732, None)),
            (":9800", ("::", 9800, None)),
            ("_:9800", ("::", 9800, None)),
            ("h:09732", ("h", 9732, None)),
        ]:
            self.assertEqual(parse_peer_text(text), expected, text)

    def test_defaults(self) -> None:
        self.assertEqual(parse_peer_text("h", 1234), ("h", 1234, None))
        self.assertEqual(parse_peer_text("", default_host="1.1.1.1"), ("1.1.1.1", 9732, None))

    def test_errors(self) -> None:
        for text, why in [
            ("::1", "write IPv6 addresses in brackets"),
            ("2001:db8::1:9732", "write IPv6 addresses in brackets"),
            ("h:70000", "port '70000' not in range [0-65535]"),
            ("h:" + "9" * 5000, "not in range [0-65535]"),
            ("h:", "expected <addr>[:<port>][#<peer_id>]"),
            ("h:abc", "expected <addr>[:<port>][#<peer_id>]"),
            ("h:+1", "expected <addr>[:<port>][#<peer_id>]"),
            ("h:\u0661", "expected <addr>[:<port>][#<peer_id>]"),
            (f"h#{BAD_PEER_ID}", f"peer id '{BAD_PEER_ID}' is not valid (b58 format expected)"),
            ("h#abc", "peer id 'abc' is not valid (b58 format expected)"),
            ("h#", "expected <addr>[:<port>][#<peer_id>]"),
            ("h#id-x", "expected <addr>[:<port>][#<peer_id>]"),
            ("a b", "expected <addr>[:<port>][#<peer_id>]"),
            (" h", "expected <addr>[:<port>][#<peer_id>]"),
            ("under_score", "expected <addr>[:<port>][#<peer_id>]"),
            ("[::1", "expected <addr>[:<port>][#<peer_id>]"),
            ("[::1]9732", "expected <addr>[:<port>][#<peer_id>]"),
            ("[]", "expected <addr>[:<port>][#<peer_id>]"),
            ("[host]", "expected <addr>[:<port>][#<peer_id>]"),
            ("[1::2::3]", "'1::2::3' is not an IP address"),
            ("256.1.1.1", "'256.1.1.1' is not a valid IPv4 address"),
            ("h#" + "a" * 5000, "is not valid (b58 format expected)"),
            ("[" + "1:" * 2000 + "]", "is not an IP address"),
        ]:
            error = self.assertRaises(AddressError, parse_peer_text, text)
            self.assertIn(why, str(error), text)
            self.assertLess(len(str(error)), 300)

    def test_not_a_string(self) -> None:
        self.assertRaises(AddressError, parse_peer_text, 9732)

    def test_listen_addr(self) -> None:
        self.assertEqual(parse_listen_addr("[::]:9732"), ("::", 9732))
        self.assertEqual(parse_listen_addr("127.0.0.1"), ("127.0.0.1", 9732))
        self.assertEqual(parse_listen_addr(":19732"), ("::", 19732))

    def test_discovery_addr(self) -> None:
        """Port 10732, host 255.255.255.255 by default; IPv4 only."""
        for text, expected in [
            ("", ("255.255.255.255", 10732)),
            ("_", ("255.255.255.255", 10732)),
            (":10733", ("255.255.255.255", 10733)),
            ("192.168.1.255", ("192.168.1.255", 10732)),
            ("10.0.0.255:4000", ("10.0.0.255", 4000)),
            ("[::ffff:10.0.0.1]:5", ("10.0.0.1", 5)),
            (f"10.0.0.255#{PEER_ID}", ("10.0.0.255", 10732)),
        ]:
            self.assertEqual(parse_discovery_addr(text), expected, text)
        for text in ("[::1]", "[2001:db8::1]:10732", "localhost", "1.2.3.4:99999", "::1"):
            self.assertRaises(AddressError, parse_discovery_addr, text)


class RoundTripTests(SynchronousTestCase):
    """config_to_json gives a file parse_config reads back to an equal config."""

    def round_trip(self, config: NodeConfig) -> NodeConfig:
        text = json.dumps(config_to_json(config))
        return parse_config_text(text)

    def test_sample(self) -> None:
        config = parse_config_text(OCTEZ_FILE)
        again = self.round_trip(config)
        self.assertEqual(again, config)
        # Other sections come back untouched.
        for key in ("rpc", "log", "shell", "internal-events", "metrics_addr"):
            self.assertEqual(again.raw[key], config.raw[key], key)
        self.assertEqual(config_to_json(again), config_to_json(config))

    def test_quirky_file(self) -> None:
        """A file read with both quirks writes them out explicitly."""
        config = parse_config({"p2p": {"limits": {}}})
        written = config_to_json(config)
        self.assertEqual(written["p2p"]["limits"]["connection-timeout"], 5.0)
        self.assertNotIn("max_known_points", written["p2p"]["limits"])
        self.assertNotIn("listen-addr", written["p2p"])
        self.assertEqual(self.round_trip(config), config)

    def test_defaults(self) -> None:
        config = NodeConfig()
        written = config_to_json(config)
        self.assertNotIn("network", written)
        self.assertNotIn("data-dir", written)
        self.assertEqual(self.round_trip(config), config)

    def test_raw_keys_replaced(self) -> None:
        config = parse_config({"data-dir": "/a", "disable-config-validation": True})
        config = attrs.evolve(
            config,
            data_dir=None,
            disable_config_validation=False,
            network=NETWORKS["sandbox"],
        )
        written = config_to_json(config)
        self.assertNotIn("data-dir", written)
        self.assertNotIn("disable-config-validation", written)
        self.assertEqual(written["network"], "sandbox")
        self.assertEqual(self.round_trip(config), config)

    @given(st.data())
    def test_round_trip(self, data: st.DataObject) -> None:
        """Any configuration within the file's ranges comes back equal."""
        config = data.draw(node_configs)
        self.assertEqual(self.round_trip(config), config)


class FileTests(SynchronousTestCase):
    """load_config_file refuses what is not a node configuration."""

    def write(self, data: bytes) -> str:
        path = str(self.mktemp())
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    def test_missing(self) -> None:
        path = self.mktemp()
        error = self.assertRaises(ConfigError, load_config_file, path)
        self.assertIn(path, str(error))
        # Octez's Config_file.read gives the defaults for a missing file.
        self.assertEqual(load_config_file(path, missing_ok=True), NodeConfig())

    def test_directory(self) -> None:
        path = self.mktemp()
        os.mkdir(path)
        self.assertRaises(ConfigError, load_config_file, path)

    def test_not_json(self) -> None:
        for data in (b"", b"{", b"p2p: {}", b'{"p2p": {},}', b"{'p2p': {}}"):
            error = self.assertRaises(ConfigError, load_config_file, self.write(data))
            self.assertIn("not valid JSON", str(error))

    def test_not_utf8(self) -> None:
        error = self.assertRaises(
            ConfigError, load_config_file, self.write(b'{"data-dir": "\xff"}')
        )
        self.assertIn("not UTF-8", str(error))

    def test_non_standard_constants(self) -> None:
        """Python's NaN / Infinity extensions are not JSON."""
        for data in (b'{"p2p": {"expected-proof-of-work": NaN}}', b"[Infinity]"):
            error = self.assertRaises(ConfigError, load_config_file, self.write(data))
            self.assertIn("is not JSON", str(error))

    def test_duplicate_keys(self) -> None:
        data = b'{"p2p": {"private-mode": false, "private-mode": true}}'
        error = self.assertRaises(ConfigError, load_config_file, self.write(data))
        self.assertIn("duplicate key 'private-mode'", str(error))

    def test_too_large(self) -> None:
        padding = b" " * MAX_CONFIG_FILE_SIZE
        error = self.assertRaises(ConfigError, load_config_file, self.write(b"{}" + padding))
        self.assertIn("larger than", str(error))
        # Exactly at the limit is fine.
        config = load_config_file(self.write(b"{}" + padding[: MAX_CONFIG_FILE_SIZE - 2]))
        self.assertEqual(config, NodeConfig())
        self.assertRaises(ConfigError, parse_config_text, "{}" + " " * MAX_CONFIG_FILE_SIZE)

    def test_not_an_object(self) -> None:
        for data in (b"[]", b'"mainnet"', b"42", b"null", b"true"):
            error = self.assertRaises(ConfigError, load_config_file, self.write(data))
            self.assertIn("a node configuration is a JSON object", str(error))

    def test_deeply_nested(self) -> None:
        data = b'{"rpc": ' + b"[" * 100000 + b"]" * 100000 + b"}"
        self.assertRaises(ConfigError, load_config_file, self.write(data))

    def test_error_is_value_error(self) -> None:
        self.assertTrue(issubclass(ConfigError, ValueError))
