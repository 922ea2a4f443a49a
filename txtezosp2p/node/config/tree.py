# -*- test-case-name: tests.test_config -*-
"""
The one configuration of a node, as a tree of frozen values.

:class:`NodeConfig` is what an Octez ``config.json`` decodes to
(:mod:`.octez_file`), what command-line options evolve
(:mod:`txtezosp2p.node.tap`), and what :class:`~txtezosp2p.node.Node` runs.
Each section is what one component takes, as it is:

* ``network``: the chain name announced in the handshake and the default
  bootstrap peers (``Config_file.blockchain_network``);
* ``p2p``: the P2P layer's :class:`~txtezosp2p.p2p_config.P2PSettings`,
  which the node completes with its identity, versions and resolved
  bootstrap points (:meth:`~txtezosp2p.p2p_config.P2PConfig.of`) once it runs;
* ``admin``: the admin HTTP API's endpoints;
* the rest is the node's own: data directory, bootstrap peers as text (they
  are resolved at start), identity mining threads.

Changing a value is ``attrs.evolve``; no layer copies fields into another
shape.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from ...observer import ObserverConfig
from ...p2p_config import P2PSettings
from ...wire.addresses import DEFAULT_LISTEN_ADDR
from ...wire.versions import GHOSTNET, MAINNET, SANDBOX, SHADOWNET

__all__ = [
    "CONFIG_FILE",
    "IDENTITY_FILE",
    "LOCK_FILE",
    "NETWORKS",
    "NODE_P2P",
    "PEERS_FILE",
    "AdminSettings",
    "ConfigError",
    "Network",
    "NodeConfig",
    "default_data_dir",
]

#: Octez's file names in the data directory (``Data_version``).
IDENTITY_FILE = "identity.json"
PEERS_FILE = "peers.json"
CONFIG_FILE = "config.json"
#: The data directory's lock (``Data_version.lock_file``).
LOCK_FILE = "lock"


def default_data_dir() -> str:
    """``~/.tezos-p2p``: one data directory per user, as Octez's ``~/.tezos-node``."""
    return os.path.join(os.path.expanduser("~"), ".tezos-p2p")


class ConfigError(ValueError):
    """
    A configuration Octez would refuse, or one we cannot use.

    ``path`` is the JSON path of the offending value (``p2p.limits.backlog``)
    when there is one; ``problems`` lists every message when several were
    found at once (:func:`~.validation.check`).
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        problems: Sequence[str] = (),
        *,
        reason: str | None = None,
    ) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
        self.problems = list(problems) or [str(self)]
        #: For address text: why it does not parse, without the text itself.
        self.reason = reason or message


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _opt_str_tuple(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


@attrs.frozen
class Network:
    """
    What the ``network`` entry selects that the P2P layer needs: the chain
    name announced in the handshake, the one used with ``--sandbox``, and the
    bootstrap peers used when ``p2p.bootstrap-peers`` is absent.

    ``name`` is the alias of a built-in network, ``None`` for a network given
    as an object (Octez's "Custom" case, whose alias is ``None`` too).
    """

    name: str | None
    chain_name: str
    sandboxed_chain_name: str = "SANDBOXED_TEZOS"
    default_bootstrap_peers: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)


#: Octez's built-in networks (``builtin_blockchain_networks_with_tags``), in
#: its order.  Chain names, sandboxed chain names and default bootstrap peers
#: as in ``config_file.ml``.
NETWORKS: dict[str, Network] = {
    "sandbox": Network("sandbox", SANDBOX, "SANDBOXED_TEZOS", ()),
    "mainnet": Network(
        "mainnet",
        MAINNET,
        "SANDBOXED_TEZOS_MAINNET",
        ("boot.tzinit.org", "boot.tzboot.net", "boot.tzbeta.net"),
    ),
    "ghostnet": Network(
        "ghostnet",
        GHOSTNET,
        "SANDBOXED_TEZOS",
        (
            "ghostnet.teztnets.com",
            "ghostnet.tzinit.org",
            "ghostnet.tzboot.net",
            "ghostnet.boot.ecadinfra.com",
            "ghostnet.stakenow.de:9733",
        ),
    ),
    "shadownet": Network(
        "shadownet",
        SHADOWNET,
        "SANDBOXED_TEZOS",
        ("shadownet.teztnets.com", "shadownet.tzinit.org"),
    ),
}

#: Octez's ``default_p2p``: listen on every address, keep ``peers.json`` in
#: the data directory.
NODE_P2P = P2PSettings(listen=(DEFAULT_LISTEN_ADDR,), peers_file=PEERS_FILE)


@attrs.frozen(kw_only=True)
class AdminSettings:
    """The admin HTTP API: endpoint strings (none: no API), whether a public address is allowed."""

    endpoints: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    allow_public: bool = False


@attrs.frozen(kw_only=True)
class NodeConfig:
    """
    A node's whole configuration.  ``raw`` keeps the parsed file (not part of
    equality) so that sections we do not model survive
    :func:`~.octez_file.config_to_json`.
    """

    #: ``data-dir``; ``None`` when nothing says (:attr:`data_directory` is then
    #: :func:`default_data_dir`).
    data_dir: str | None = None
    network: Network = NETWORKS["mainnet"]
    p2p: P2PSettings = NODE_P2P
    #: ``p2p.bootstrap-peers``: ``host[:port][#peer_id]`` entries, trusted and
    #: dialled first; ``None``: the network's defaults.
    bootstrap_peers: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_str_tuple)
    #: ``p2p.enable_testchain``: deprecated in Octez; kept so files round-trip.
    enable_testchain: bool = False
    admin: AdminSettings = AdminSettings()
    #: Threads mining a new identity (``None``: one per core).
    identity_workers: int | None = None
    #: Observer mode (``--observe``): what the observer records; ``None``: off.
    observe: ObserverConfig | None = None
    #: ``disable-config-validation``: only the checks of the P2P layer's
    #: creation remain (:func:`~.validation.check`).
    disable_config_validation: bool = False
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def data_directory(self) -> str:
        """Where the node keeps its files."""
        return default_data_dir() if self.data_dir is None else self.data_dir

    @property
    def effective_bootstrap_peers(self) -> tuple[str, ...]:
        """``Config_file.bootstrap_peers``: the configured list, else the network's."""
        if self.bootstrap_peers is not None:
            return self.bootstrap_peers
        return self.network.default_bootstrap_peers

    def in_data_dir(self, name: str) -> str:
        """A path in the data directory (an absolute ``name`` stays as it is)."""
        return os.path.join(self.data_directory, name)

    @property
    def identity_file(self) -> str:
        return self.in_data_dir(IDENTITY_FILE)

    @property
    def peers_file(self) -> str | None:
        """``peers.json`` (``None``: not kept); a relative path is read from the data directory."""
        name = self.p2p.peers_file
        return None if name is None else self.in_data_dir(name)

    @property
    def lock_file(self) -> str:
        return self.in_data_dir(LOCK_FILE)

    def evolve_p2p(self, **changes: Any) -> NodeConfig:
        """This configuration with ``changes`` to its ``p2p`` section."""
        return attrs.evolve(self, p2p=attrs.evolve(self.p2p, **changes))
