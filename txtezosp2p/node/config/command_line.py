# -*- test-case-name: tests.test_config -*-
"""
What Octez's command line derives from its options (``shared_arg.ml``;
behaviour.md 11.2): ``--connections`` and ``--peer-table-size``.
"""

from __future__ import annotations

from ...limits import Limits
from ...wire.errors import P2PError
from .tree import ConfigError

__all__ = ["MAX_CONNECTIONS_ARGUMENT", "connections_limits", "peer_table"]

#: ``--connections`` above this is refused unless config validation is disabled.
MAX_CONNECTIONS_ARGUMENT = 100
UINT16_MAX = 0xFFFF


def peer_table(size: int) -> tuple[int, int]:
    """``--peer-table-size N``: the ``(max, target)`` pair ``(N, N / 4 * 3)`` of both tables."""
    if not 0 <= size <= UINT16_MAX:
        raise ConfigError(f"--peer-table-size: expected an integer in [0, {UINT16_MAX}]")
    return size, size // 4 * 3


def connections_limits(
    n: int, limits: Limits, peer_table_size: int | None = None, *, allow_more: bool = False
) -> Limits:
    """
    ``--connections N``: min ``N / 2`` (1 when N is 1), expected ``N``, max
    ``3 * N / 2``, and both tables sized by ``--peer-table-size`` or else
    ``8 * N`` (:func:`peer_table`).  N over 100 is refused unless
    ``allow_more`` (Octez: unless config validation is disabled).  Octez also
    derives the shell's synchronisation threshold, ``max(N / 4, 2)``; that is
    not a P2P limit.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError("--connections: expected a non-negative integer")
    if n > MAX_CONNECTIONS_ARGUMENT and not allow_more:
        raise ConfigError(
            f"--connections: the number of expected connections is limited to "
            f"{MAX_CONNECTIONS_ARGUMENT}; exceeding it may degrade the performance of the "
            f"node (--disable-config-validation overrides it)"
        )
    maximum = 3 * n // 2
    if maximum > UINT16_MAX or (peer_table_size is None and 8 * n > UINT16_MAX):
        raise ConfigError(f"--connections: {n} does not fit the configuration file's fields")
    table = peer_table(8 * n if peer_table_size is None else peer_table_size)
    try:
        return limits.replace(
            min_connections=1 if n == 1 else n // 2,
            expected_connections=n,
            max_connections=maximum,
            max_known_points=table,
            max_known_peer_ids=table,
        )
    except (ValueError, P2PError) as error:
        raise ConfigError(f"--connections: {error}") from None
