"""
The operator surface of txtezosp2p: what turns the library into a node.

* :mod:`~txtezosp2p.node.composition`: :class:`Node`, the composition root;
* :mod:`~txtezosp2p.node.config`: Octez's ``config.json`` and the options;
* :mod:`~txtezosp2p.node.admin`, :mod:`~txtezosp2p.node.metrics`: the admin
  HTTP API and the Prometheus registry; :mod:`~txtezosp2p.node.observer_api`:
  the observer's endpoints (``--observe``);
* :mod:`~txtezosp2p.node.tap`: ``twistd tezos-p2p``;
* :mod:`~txtezosp2p.node.cli`, :mod:`~txtezosp2p.node.admin_client`,
  :mod:`~txtezosp2p.node.sandbox`: the ``tezos-p2p`` command line.

The library underneath (:mod:`txtezosp2p.p2p` and the modules it wires) never
imports from here.
"""

from .composition import (
    DEFAULT_DATA_DIR,
    DEFAULT_LISTEN,
    Node,
    NodeOptions,
    listen_endpoint,
    parse_bootstrap_peer,
    parse_peer,
    resolve_points,
)

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_LISTEN",
    "Node",
    "NodeOptions",
    "listen_endpoint",
    "parse_bootstrap_peer",
    "parse_peer",
    "resolve_points",
]
