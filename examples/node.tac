"""
A node inside a twistd application file: ``twistd -ny examples/node.tac``.

The same composition root as ``twistd tezos-p2p``, configured in Python
instead of options; add your own services next to it.
"""

from twisted.application.service import Application
from twisted.internet import reactor

from txtezosp2p.limits import Limits
from txtezosp2p.node import NETWORKS, Node, NodeConfig, P2PSettings

application = Application("tezos-p2p example")
node = Node(
    reactor,
    NodeConfig(
        data_dir="tac-node",
        network=NETWORKS["sandbox"],
        p2p=P2PSettings(
            listen=("127.0.0.1:19750",),
            proof_of_work_target=0.0,
            limits=Limits(min_connections=1, expected_connections=4, max_connections=8),
            peers_file="peers.json",
        ),
    ),
)
node.setServiceParent(application)
