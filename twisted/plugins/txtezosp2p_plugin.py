"""twistd plugin: ``twistd tezos-p2p`` runs a Tezos P2P node (see txtezosp2p.node.tap)."""

from twisted.application.service import ServiceMaker

tezos_p2p = ServiceMaker(
    "Tezos P2P",
    "txtezosp2p.node.tap",
    "A Tezos peer-to-peer node (Octez lib_p2p on Twisted).",
    "tezos-p2p",
)
