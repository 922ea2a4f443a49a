"""Traffic statistics of a connection or a node (Octez ``P2p_stat``)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Stat:
    """Traffic of a connection (``P2p_stat``): byte totals and current rates (bytes/s)."""

    total_sent: int = 0
    total_recv: int = 0
    current_inflow: int = 0
    current_outflow: int = 0

    def to_json(self) -> dict[str, Any]:
        # 64-bit totals are decimal strings in Octez's JSON
        return {
            "total_sent": str(self.total_sent),
            "total_recv": str(self.total_recv),
            "current_inflow": self.current_inflow,
            "current_outflow": self.current_outflow,
        }


__all__ = ["Stat"]
