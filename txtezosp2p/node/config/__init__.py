"""
A node's configuration, split by job:

* :mod:`.tree`: :class:`NodeConfig`, the one frozen tree from the file and
  the options down to the P2P layer (its ``p2p`` section is the layer's
  :class:`~txtezosp2p.p2p_config.P2PSettings`), and the networks;
* :mod:`.octez_file`: Octez's ``config.json``, read and written exactly as
  Octez does (behaviour.md 11.1, 11.2);
* :mod:`.validation`: Octez's ``Config_validation`` (11.2, 11.3);
* :mod:`.command_line`: ``--connections`` and ``--peer-table-size``;
* :mod:`txtezosp2p.wire.addresses`: the ``host[:port][#peer_id]`` text of
  bootstrap peers, listening and discovery addresses (wire.md 9.2).

Every public name is available from this package.
"""

from ...p2p_config import P2PSettings
from ...wire.addresses import (
    BROADCAST_HOST,
    DEFAULT_DISCOVERY_PORT,
    DEFAULT_HOST,
    DEFAULT_LISTEN_ADDR,
    DEFAULT_P2P_PORT,
    AddressError,
    parse_discovery_addr,
    parse_listen_addr,
    parse_peer_text,
)
from .command_line import MAX_CONNECTIONS_ARGUMENT, connections_limits, peer_table
from .octez_file import (
    LIMITS_KEYS,
    MAX_CONFIG_FILE_SIZE,
    config_to_json,
    limits_from_json,
    limits_to_json,
    load_config_file,
    network_from_json,
    p2p_from_json,
    p2p_to_json,
    parse_config,
    parse_config_text,
    reconnection_from_json,
    reconnection_to_json,
)
from .tree import (
    CONFIG_FILE,
    IDENTITY_FILE,
    LOCK_FILE,
    NETWORKS,
    NODE_P2P,
    PEERS_FILE,
    AdminSettings,
    ConfigError,
    Network,
    NodeConfig,
    default_data_dir,
)
from .validation import check, connection_problems, validate, validation_warnings

__all__ = [
    "BROADCAST_HOST",
    "CONFIG_FILE",
    "DEFAULT_DISCOVERY_PORT",
    "DEFAULT_HOST",
    "DEFAULT_LISTEN_ADDR",
    "DEFAULT_P2P_PORT",
    "IDENTITY_FILE",
    "LIMITS_KEYS",
    "LOCK_FILE",
    "MAX_CONFIG_FILE_SIZE",
    "MAX_CONNECTIONS_ARGUMENT",
    "NETWORKS",
    "NODE_P2P",
    "PEERS_FILE",
    "AddressError",
    "AdminSettings",
    "ConfigError",
    "Network",
    "NodeConfig",
    "P2PSettings",
    "check",
    "config_to_json",
    "connection_problems",
    "connections_limits",
    "default_data_dir",
    "limits_from_json",
    "limits_to_json",
    "load_config_file",
    "network_from_json",
    "p2p_from_json",
    "p2p_to_json",
    "parse_config",
    "parse_config_text",
    "parse_discovery_addr",
    "parse_listen_addr",
    "parse_peer_text",
    "peer_table",
    "reconnection_from_json",
    "reconnection_to_json",
    "validate",
    "validation_warnings",
]
