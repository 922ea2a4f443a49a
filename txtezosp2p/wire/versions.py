"""
The network versions a node supports and their negotiation (wire.md §7;
Octez ``Network_version``), and the chain names of the networks Octez knows.
"""

from __future__ import annotations

import attrs

from .encoding import NetworkVersion, _chain_name
from .errors import NackMotive


@attrs.frozen
class Versions:
    """
    The network versions we support; we announce the greatest of each list
    (wire.md §7).  Octez supports distributed-db versions 0-2 and p2p
    versions 0-1.
    """

    chain_name: bytes = attrs.field(converter=_chain_name)
    distributed_db_versions: tuple[int, ...] = (0, 1, 2)
    p2p_versions: tuple[int, ...] = (0, 1)
    # computed once: every connection message announces it
    _announced: NetworkVersion = attrs.field(init=False, repr=False, eq=False)

    @_announced.default
    def _greatest(self) -> NetworkVersion:
        return NetworkVersion(
            self.chain_name, max(self.distributed_db_versions), max(self.p2p_versions)
        )

    @property
    def announced(self) -> NetworkVersion:
        return self._announced

    def select(self, remote: NetworkVersion) -> NetworkVersion | NackMotive:
        """
        Octez's ``Network_version.select``: equal chain names, then for each
        version the greatest we support if the remote announces at least
        that, else the remote's if we support it (wire.md §7.2).  Returns the
        negotiated version or the Nack motive; when both versions fail the
        distributed-db motive wins.
        """
        if remote.chain_name != self.chain_name:
            return NackMotive.UNKNOWN_CHAIN_NAME

        def pick(supported: tuple[int, ...], announced: int) -> int | None:
            best = max(supported)
            if best <= announced:
                return best
            return announced if announced in supported else None

        ddb = pick(self.distributed_db_versions, remote.distributed_db_version)
        if ddb is None:
            return NackMotive.DEPRECATED_DISTRIBUTED_DB_VERSION
        p2p = pick(self.p2p_versions, remote.p2p_version)
        if p2p is None:
            return NackMotive.DEPRECATED_P2P_VERSION
        return NetworkVersion(self.chain_name, ddb, p2p)


#: Chain names of the networks Octez knows (wire.md §7.1).
MAINNET = "TEZOS_MAINNET"
GHOSTNET = "TEZOS_ITHACANET_2022-01-25T15:00:00Z"
SHADOWNET = "TEZOS_SHADOWNET_2025-08-07T20:00:00Z"
SANDBOX = "TEZOS"


__all__ = ["GHOSTNET", "MAINNET", "SANDBOX", "SHADOWNET", "Versions"]
