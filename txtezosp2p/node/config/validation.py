# -*- test-case-name: tests.test_config -*-
"""
Octez's validation of a node configuration (``config_validation.ml``;
behaviour.md 11.2, 11.3): every problem found at once, with Octez's
messages, then the checks the P2P layer runs at creation
(``Limits.check``).  Name resolution is not attempted (Octez only warns
when it fails).
"""

from __future__ import annotations

from collections.abc import Callable

from ...limits import Limits
from ...p2p_config import is_endpoint_string
from ...wire.addresses import (
    AddressError,
    parse_discovery_addr,
    parse_listen_addr,
    parse_peer_text,
)
from ...wire.errors import P2PError
from .tree import ConfigError, NodeConfig

__all__ = [
    "check",
    "connection_findings",
    "connection_problems",
    "validate",
    "validation_warnings",
]


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def connection_findings(
    min_connections: int,
    expected_connections: int,
    max_connections: int,
    max_known_points: tuple[int, int] | None,
    max_known_peer_ids: tuple[int, int] | None,
) -> list[tuple[bool, str]]:
    """``(representable, message)`` pairs; ``Limits`` refuses the unrepresentable ones."""
    findings = []
    if min_connections > expected_connections:
        findings.append(
            (
                False,
                "the minimum number of connections found in field "
                f"'p2p.limits.min-connections' ({min_connections}) is greater than the expected "
                "number of connections found in field 'p2p.limits.expected-connections' "
                f"({expected_connections}).",
            )
        )
    if expected_connections > max_connections:
        findings.append(
            (
                False,
                "the expected number of connections found in field "
                f"'p2p.limits.expected-connections' ({expected_connections}) is greater than "
                "the maximum number of connections found in field "
                f"'p2p.limits.max-connections' ({max_connections}).",
            )
        )
    for key, what, table in (
        ("max_known_peer_ids", "peer ids", max_known_peer_ids),
        ("max_known_points", "point ids", max_known_points),
    ):
        if table is None:
            continue
        maximum, target = table
        if target > maximum:
            # Octez passes (max, target) to the points message and so prints
            # the two numbers swapped; we print them where they belong.
            findings.append(
                (
                    False,
                    f"in field 'p2p.limits.{key}', the target number of known {what} "
                    f"({target}) is greater than the maximum number of known {what} "
                    f"({maximum}).",
                )
            )
        if max_connections > target:
            findings.append(
                (
                    True,
                    f"the target number of known {what} ({target}) in field "
                    f"'p2p.limits.{key}' is lower than the maximum number of connections "
                    f"({max_connections}) found in field 'p2p.limits.max-connections'.",
                )
            )
    return findings


def connection_problems(
    *,
    min_connections: int,
    expected_connections: int,
    max_connections: int,
    max_known_points: tuple[int, int] | None,
    max_known_peer_ids: tuple[int, int] | None,
) -> list[str]:
    """
    Octez's ``validate_connections`` (``config_validation.ml``), in its
    order: min <= expected <= max, and for the peer-id then the point table,
    target <= max and max-connections <= target.
    """
    findings = connection_findings(
        min_connections, expected_connections, max_connections, max_known_points, max_known_peer_ids
    )
    return [message for _representable, message in findings]


def _address_problems(config: NodeConfig) -> list[str]:
    problems = []
    entries: list[tuple[str, str, Callable[[str], object]]] = []
    if config.bootstrap_peers is not None:
        entries += [
            (peer, "p2p.bootstrap-peers", parse_peer_text) for peer in config.bootstrap_peers
        ]
    else:
        # Octez's field name, spelling included.
        entries += [
            (peer, "network.default_bootstrap-peers", parse_peer_text)
            for peer in config.network.default_bootstrap_peers
        ]
    entries += [
        (entry, "p2p.listen-addr", parse_listen_addr)
        for entry in config.p2p.listen
        if not is_endpoint_string(entry)
    ]
    if config.p2p.discovery_addr is not None:
        entries.append((config.p2p.discovery_addr, "p2p.discovery-addr", parse_discovery_addr))
    for addr, field, parse in entries:
        try:
            parse(addr)
        except AddressError as error:
            problems.append(
                f"failed to parse address '{_clip(addr, 80)}' in field '{field}': {error.reason}."
            )
    return problems


def validate(config: NodeConfig) -> list[str]:
    """
    The errors of Octez's ``Config_validation`` (expected proof of work in
    [0, 256], addresses that do not parse, connection bounds and table sizes)
    followed by the problems of ``Limits.check`` (the checks Octez's P2P layer
    runs at creation).  Name resolution is not attempted (Octez only warns
    when it fails).  An empty list means valid.
    """
    problems = []
    pow_ = config.p2p.proof_of_work_target
    if not 0.0 <= pow_ <= 256.0:
        problems.append(
            "the expected proof-of-work must be between 0 and 256 (inclusive), but found the "
            f"value {pow_} in field 'p2p.expected-proof-of-work'."
        )
    problems += _address_problems(config)
    limits = config.p2p.limits
    problems += connection_problems(
        min_connections=limits.min_connections,
        expected_connections=limits.expected_connections,
        max_connections=limits.max_connections,
        max_known_points=limits.max_known_points,
        max_known_peer_ids=limits.max_known_peer_ids,
    )
    problems += _limits_check(limits)
    return problems


def _limits_check(limits: Limits) -> list[str]:
    try:
        limits.check()
    except (ValueError, P2PError) as error:
        return [f"p2p.limits: {error}"]
    return []


def validation_warnings(config: NodeConfig) -> list[str]:
    """Octez's validation warnings: maintenance disabled, deprecated test chain."""
    out = []
    if config.p2p.limits.maintenance_idle_time is None:
        out.append(
            "The P2P maintenance is disabled. The P2P maintenance should only be disabled "
            "for testing purposes."
        )
    if config.enable_testchain:
        out.append("The option `p2p.enable_testchain` is deprecated.")
    return out


def check(config: NodeConfig) -> None:
    """
    Raise :class:`ConfigError` listing every problem of :func:`validate`.
    With ``disable-config-validation`` only the checks of the P2P layer's
    creation remain, as in Octez.
    """
    if config.disable_config_validation:
        problems = _limits_check(config.p2p.limits)
    else:
        problems = validate(config)
    if problems:
        raise ConfigError("invalid node configuration: " + " ".join(problems), problems=problems)
