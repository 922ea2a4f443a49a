"""
A node inside a twistd application file: ``twistd -ny examples/node.tac``.

The same composition root as ``twistd tezos-p2p``, configured in Python
instead of options; add your own services next to it.
"""

from twisted.application.service import Application
from twisted.internet import reactor

from txtezosp2p.limits import Limits
from txtezosp2p.node import Node, NodeOptions

application = Application("tezos-p2p example")
node = Node(
    reactor,
    NodeOptions(
        data_dir="tac-node",
        listen=("tcp:19750:interface=127.0.0.1",),
        expected_pow=0.0,
        chain_name="SANDBOXED_TEZOS",
        limits=Limits(min_connections=1, expected_connections=4, max_connections=8),
    ),
)
node.setServiceParent(application)
