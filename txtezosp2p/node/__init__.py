"""
The operator surface of txtezosp2p: what turns the library into a node.

* :mod:`~txtezosp2p.node.composition`: :class:`Node`, the composition root;
* :mod:`~txtezosp2p.node.config`: :class:`NodeConfig`, the one configuration
  tree, and Octez's ``config.json``;
* :mod:`~txtezosp2p.node.admin`, :mod:`~txtezosp2p.node.metrics`: the admin
  HTTP API and the Prometheus registry; :mod:`~txtezosp2p.node.observer_api`:
  the observer's endpoints (``--observe``);
* :mod:`~txtezosp2p.node.tap`: ``twistd tezos-p2p``;
* :mod:`~txtezosp2p.node.cli`, :mod:`~txtezosp2p.node.admin_client`,
  :mod:`~txtezosp2p.node.sandbox`: the ``tezos-p2p`` command line.

The library underneath (:mod:`txtezosp2p.p2p` and the modules it wires) never
imports from here.
"""

from ..p2p_config import P2PSettings
from .composition import (
    DEFAULT_LISTEN,
    Node,
    NodeOptions,
    listen_endpoint,
    parse_bootstrap_peer,
    parse_peer,
    resolve_points,
)
from .config import NETWORKS, AdminSettings, NodeConfig, default_data_dir

__all__ = [
    "DEFAULT_LISTEN",
    "NETWORKS",
    "AdminSettings",
    "Node",
    "NodeConfig",
    "NodeOptions",
    "P2PSettings",
    "default_data_dir",
    "listen_endpoint",
    "parse_bootstrap_peer",
    "parse_peer",
    "resolve_points",
]
