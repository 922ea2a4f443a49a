# -*- test-case-name: tests.test_config -*-
"""
The node configuration file, as Octez writes and reads it: the ``network``
and ``p2p`` sections of ``config.json`` (behaviour.md 11.1, 11.2, 5, 9),
Octez's validation of them (11.2 last paragraph, 11.3), the ``--connections``
derivation of the command line (11.2) and the ``host[:port][#peer_id]`` text
forms of bootstrap peers, listening and discovery addresses (wire.md 9.2).

An Octez file is accepted as is.  Sections this layer does not use
(``rpc``, ``log``, ``shell``, ``internal-events``, ``metrics_addr``,
``profiling``...) are ignored and kept untouched in :attr:`NodeConfig.raw`;
Octez itself refuses unknown top-level keys, we do not, so that files of other
Octez versions still load.  Inside ``p2p``, ``p2p.limits``,
``p2p.greylisting_config`` and a custom ``network`` object, unknown keys are
refused as Octez refuses them: its data-encoding JSON objects are closed
(``Json_encoding.destruct`` runs with ``ignore_extra_fields = false`` and
raises ``Unexpected_field``).  Values are checked the way data-encoding
checks them: ``uint8`` / ``uint16`` ranges, integral numbers for integers
(``10.0`` is 10), ``null`` only where the field is an ``option`` (a plain
optional field such as ``listen-addr`` must be left out, not set to
``null``).

Decoder behaviours reproduced on purpose, because they decide how an Octez
file reads:

* **connection-timeout reads as 5 s.**  In ``P2p_limits.encoding`` the
  default of ``connection-timeout`` is ``default.authentication_timeout``
  (5 s), not the record default (10 s).  A ``limits`` object without the key
  gives 5 s; a file without ``limits`` gives the record default, 10 s
  (behaviour.md 11.1).
* **Known-point and known-peer tables read as unbounded.**
  ``max_known_points`` and ``max_known_peer_ids`` are ``opt`` fields: a
  ``limits`` object without them gives ``None`` (no table limit), whereas
  the record default is ``(400, 300)`` (behaviour.md 11.1).
* **listen-addr.**  ``"[::]:9732"`` is the default of the whole ``p2p``
  section; ``listen-addr`` itself is an ``opt`` field, so a ``p2p`` object
  without it means "do not listen" (``node_run_command.ml`` then emits
  ``disabled_listen_addr``).  behaviour.md 11.2 says "absent/null"; the
  decoder in fact refuses ``null`` there (``opt`` of a plain ``string``), and
  so do we.

Where we are stricter than Octez's decoder: ``int31`` sizes and speeds must not
be negative, ``binary-chunks-size`` must be in [19, 255] (the frame overhead
is 18 bytes; Octez refuses smaller values only when the P2P layer starts),
durations must be finite, JSON files must not repeat a key, and a discovery
address must be an IPv4 literal (Octez would also resolve a host name and keep
its IPv4 results).  Where we are more lenient: a custom ``network`` object
needs only ``chain_name`` (Octez also requires ``genesis`` and
``sandboxed_chain_name``; the latter defaults to ``SANDBOXED_TEZOS`` here),
and :func:`load_config_file` can give the defaults for a missing file, as
Octez's ``Config_file.read`` always does, but only when asked to.

Units: durations are float seconds, speeds KiB/s, queue sizes bytes (the
application queue counts messages), and the file's ``binary-chunks-size`` is
a byte count although the CLI option of the same name takes KiB
(behaviour.md 11.1 note, 16 #20).

Sources, all in ``tezos/tezos-mirror`` at the commit behaviour.md names
(``d26a8bef82``): ``src/lib_node_config/config_file.ml`` (sections, keys,
networks, ``resolve_*_addrs``), ``config_validation.ml`` (validation
messages), ``shared_arg.ml`` (``--connections``),
``src/lib_p2p_services/p2p_limits.ml``, ``point_reconnection_config.ml``,
``src/lib_base/point_parser.mll`` and ``src/lib_base/unix/p2p_resolve.ml``
(address text), ``src/bin_node/node_run_command.ml`` (use of the section),
``data-encoding/json-data-encoding/src/json_encoding.ml`` (closed objects,
integer checks).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..limits import Limits
from ..pool_state import ReconnectionConfig
from ..wire.errors import P2PError
from ..wire.ids import PeerId
from ..wire.versions import GHOSTNET, MAINNET, SANDBOX, SHADOWNET

__all__ = [
    "DEFAULT_DISCOVERY_PORT",
    "DEFAULT_LISTEN_ADDR",
    "DEFAULT_P2P_PORT",
    "MAX_CONFIG_FILE_SIZE",
    "MAX_CONNECTIONS_ARGUMENT",
    "NETWORKS",
    "ConfigError",
    "Network",
    "NodeConfig",
    "P2PSection",
    "check",
    "config_to_json",
    "connection_problems",
    "connections_limits",
    "limits_from_json",
    "limits_to_json",
    "load_config_file",
    "network_from_json",
    "p2p_from_json",
    "p2p_to_json",
    "parse_config",
    "parse_config_text",
    "parse_discovery_addr",
    "parse_listen_addr",
    "parse_peer_text",
    "peer_table",
    "reconnection_from_json",
    "reconnection_to_json",
    "validate",
    "validation_warnings",
]

#: ``Config_file.default_p2p_port``.
DEFAULT_P2P_PORT = 9732
#: ``Config_file.default_discovery_port``.
DEFAULT_DISCOVERY_PORT = 10732
#: ``default_p2p.listen_addr``: the default when the whole ``p2p`` section is absent.
DEFAULT_LISTEN_ADDR = f"[::]:{DEFAULT_P2P_PORT}"
#: Default host of a listening address and of bootstrap peers (``p2p_resolve`` ``default_addr``).
DEFAULT_HOST = "::"
#: Default host of a discovery address: the IPv4 broadcast address.
BROADCAST_HOST = "255.255.255.255"
#: Largest configuration file we read.
MAX_CONFIG_FILE_SIZE = 1 << 20
#: ``--connections`` above this is refused unless config validation is disabled.
MAX_CONNECTIONS_ARGUMENT = 100

UINT8_MAX = 0xFF
UINT16_MAX = 0xFFFF
#: data-encoding's ``int31`` JSON bound (``Json_encoding.int``).
INT31_MAX = (1 << 30) - 1
#: On-wire chunk sizes a ``uint8`` can hold that leave at least one plaintext byte.
CHUNKS_MIN = 19


class ConfigError(ValueError):
    """
    A configuration Octez would refuse, or one we cannot use.

    ``path`` is the JSON path of the offending value (``p2p.limits.backlog``)
    when there is one; ``problems`` lists every message when several were
    found at once (:func:`check`).
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


# -- Networks -----------------------------------------------------------------


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

#: Keys of Octez's custom network object (``blockchain_network_encoding``).
_NETWORK_KEYS = frozenset(
    {
        "genesis",
        "genesis_parameters",
        "chain_name",
        "old_chain_name",
        "incompatible_chain_name",
        "sandboxed_chain_name",
        "user_activated_upgrades",
        "user_activated_protocol_overrides",
        "default_bootstrap_peers",
        "dal_config",
    }
)


# -- Sections -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class P2PSection:
    """The ``p2p`` section (``Config_file.p2p``); defaults are ``default_p2p``."""

    #: ``host[:port]`` to listen on; ``None``: no listening socket.
    listen_addr: str | None = DEFAULT_LISTEN_ADDR
    #: Port announced in the handshake; ``None``: the listening port.
    advertised_net_port: int | None = None
    #: ``addr[:port]`` for local discovery; ``None``: disabled.
    discovery_addr: str | None = None
    #: ``host[:port][#peer_id]`` entries; ``None``: the network's defaults.
    bootstrap_peers: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_str_tuple)
    private_mode: bool = False
    #: Proof-of-work difficulty required from remote identities.
    expected_pow: float = 26.0
    limits: Limits = attrs.field(factory=Limits)
    #: ``greylisting_config`` (behaviour.md 5).
    reconnection: ReconnectionConfig = attrs.field(factory=ReconnectionConfig)
    disable_mempool: bool = False
    disable_peer_discovery: bool = False
    #: Deprecated in Octez; kept so files round-trip.
    enable_testchain: bool = False


@attrs.frozen(kw_only=True)
class NodeConfig:
    """
    A node configuration file: what the P2P layer uses, plus the whole
    parsed document in ``raw`` (not part of equality) so that other sections
    survive :func:`config_to_json`.
    """

    #: ``data-dir``; ``None`` when the file does not say (Octez: ``~/.tezos-node``).
    data_dir: str | None = None
    network: Network = NETWORKS["mainnet"]
    p2p: P2PSection = attrs.field(factory=P2PSection)
    #: ``disable-config-validation``: :func:`check` then only runs the checks
    #: Octez's P2P layer itself runs at creation.
    disable_config_validation: bool = False
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def bootstrap_peers(self) -> tuple[str, ...]:
        """``Config_file.bootstrap_peers``: the section's list, else the network's."""
        if self.p2p.bootstrap_peers is not None:
            return self.p2p.bootstrap_peers
        return self.network.default_bootstrap_peers


# -- Typed readers ----------------------------------------------------------------

_MISSING: Any = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"expected an object, found {_describe(value)}", path or None)
    for key in value:
        if not isinstance(key, str):
            raise ConfigError("object keys must be strings", path or None)
    return value


def _closed(obj: Mapping[str, Any], allowed: Container[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise ConfigError(
                "unknown field (Octez refuses fields it does not know here)", _join(path, key)
            )


def _integer(value: Any, path: str, low: int, high: int, *, nullable: bool = False) -> int:
    """data-encoding's ranged integers: a JSON number with no fractional part."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    if number is None or not low <= number <= high:
        expected = f"an integer in [{low}, {high}]" + (" or null" if nullable else "")
        raise ConfigError(f"expected {expected}, found {_describe(value)}", path)
    return number


def _float(value: Any, path: str, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected {what}, found {_describe(value)}", path)
    result = float(value)
    if not math.isfinite(result):
        raise ConfigError(f"expected {what}, found {value!r}", path)
    return result


def _span(value: Any, path: str) -> float:
    """``Time.System.Span.encoding``: float seconds."""
    return _float(value, path, "a duration in seconds")


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected a boolean, found {_describe(value)}", path)
    return value


def _string(value: Any, path: str, hint: str = "") -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string{hint}, found {_describe(value)}", path)
    return value


def _strings(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"expected an array of strings, found {_describe(value)}", path)
    return tuple(_string(item, f"{path}[{index}]") for index, item in enumerate(value))


def _present(obj: Mapping[str, Any], key: str, path: str, hint: str) -> Any:
    """An ``opt`` field: absent is ``_MISSING``; ``null`` is refused as Octez refuses it."""
    value = obj.get(key, _MISSING)
    if value is None:
        raise ConfigError(f"null is not allowed here ({hint})", _join(path, key))
    return value


# -- Limits (behaviour.md 11.1) -------------------------------------------------------


@attrs.frozen
class _Field:
    key: str
    attr: str
    read: Callable[[Any, str], Any]
    write: Callable[[Any, str], Any]
    #: ``opt`` field: absent reads as ``None``, ``None`` is written by leaving it out.
    optional: bool = False


def _uint(high: int) -> Callable[[Any, str], int]:
    return lambda value, path: _integer(value, path, 0, high)


def _nullable(read: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """A ``dft (option ...)`` field: ``null`` is ``None``."""
    return lambda value, path: None if value is None else read(value, path)


def _int31_or_null(value: Any, path: str) -> int | None:
    return None if value is None else _integer(value, path, 0, INT31_MAX, nullable=True)


def _chunks(value: Any, path: str) -> int:
    return _integer(value, path, CHUNKS_MIN, UINT8_MAX)


def _table(value: Any, path: str) -> tuple[int, int]:
    """``tup2 uint16 uint16``: ``[max, target]``."""
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"expected an array [max, target], found {_describe(value)}", path)
    return (
        _integer(value[0], f"{path}[0]", 0, UINT16_MAX),
        _integer(value[1], f"{path}[1]", 0, UINT16_MAX),
    )


def _write_table(value: tuple[int, int], path: str) -> list[int]:
    return list(_table(list(value), path))


def _write_span(value: float | None, path: str) -> float | None:
    return None if value is None else _span(value, path)


_LIMITS_FIELDS: tuple[_Field, ...] = (
    # In P2p_limits.encoding's order.
    _Field("connection-timeout", "connection_timeout", _span, _write_span),
    _Field("authentication-timeout", "authentication_timeout", _span, _write_span),
    _Field("min-connections", "min_connections", _uint(UINT16_MAX), _uint(UINT16_MAX)),
    _Field("expected-connections", "expected_connections", _uint(UINT16_MAX), _uint(UINT16_MAX)),
    _Field("max-connections", "max_connections", _uint(UINT16_MAX), _uint(UINT16_MAX)),
    _Field("backlog", "backlog", _uint(UINT8_MAX), _uint(UINT8_MAX)),
    _Field(
        "max-incoming-connections", "max_incoming_connections", _uint(UINT8_MAX), _uint(UINT8_MAX)
    ),
    _Field("max-download-speed", "max_download_speed", _uint(INT31_MAX), _uint(INT31_MAX), True),
    _Field("max-upload-speed", "max_upload_speed", _uint(INT31_MAX), _uint(INT31_MAX), True),
    _Field("swap-linger", "swap_linger", _nullable(_span), _write_span),
    _Field("binary-chunks-size", "binary_chunks_size", _chunks, _chunks, True),
    _Field("read-buffer-size", "read_buffer_size", _uint(INT31_MAX), _uint(INT31_MAX)),
    _Field("read-queue-size", "read_queue_size", _int31_or_null, _int31_or_null),
    _Field("write-queue-size", "write_queue_size", _int31_or_null, _int31_or_null),
    _Field(
        "incoming-app-message-queue-size",
        "incoming_app_message_queue_size",
        _int31_or_null,
        _int31_or_null,
    ),
    _Field(
        "incoming-message-queue-size",
        "incoming_message_queue_size",
        _int31_or_null,
        _int31_or_null,
    ),
    _Field(
        "outgoing-message-queue-size",
        "outgoing_message_queue_size",
        _int31_or_null,
        _int31_or_null,
    ),
    _Field("max_known_points", "max_known_points", _table, _write_table, True),
    _Field("max_known_peer_ids", "max_known_peer_ids", _table, _write_table, True),
    _Field("peer_greylist_size", "peer_greylist_size", _uint(UINT16_MAX), _uint(UINT16_MAX)),
    _Field(
        "ip_greylist_size_in_kilobytes",
        "ip_greylist_size_in_kilobytes",
        _uint(UINT16_MAX),
        _uint(UINT16_MAX),
    ),
    _Field("ip_greylist_cleanup_delay", "ip_greylist_cleanup_delay", _span, _write_span),
    _Field("greylist-timeout", "greylist_timeout", _span, _write_span),
    _Field("maintenance-idle-time", "maintenance_idle_time", _nullable(_span), _write_span),
)

#: JSON key of every :class:`Limits` attribute.
LIMITS_KEYS: dict[str, str] = {field.attr: field.key for field in _LIMITS_FIELDS}


def _decoder_defaults() -> dict[str, Any]:
    """What a present ``limits`` object gives for missing keys (the two quirks)."""
    base = Limits()
    values = {field.attr: getattr(base, field.attr) for field in _LIMITS_FIELDS}
    # P2p_limits.encoding: (dft "connection-timeout" ... default.authentication_timeout)
    values["connection_timeout"] = base.authentication_timeout
    # (opt "max_known_points" ...), (opt "max_known_peer_ids" ...)
    values["max_known_points"] = None
    values["max_known_peer_ids"] = None
    return values


def _connection_findings(
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
    findings = _connection_findings(
        min_connections, expected_connections, max_connections, max_known_points, max_known_peer_ids
    )
    return [message for _representable, message in findings]


def _construct_limits(values: dict[str, Any], path: str) -> Limits:
    # Limits refuses unordered bounds and a table target over its maximum:
    # report those with Octez's validation messages, at parse time.
    findings = _connection_findings(
        values["min_connections"],
        values["expected_connections"],
        values["max_connections"],
        values["max_known_points"],
        values["max_known_peer_ids"],
    )
    blocking = [message for representable, message in findings if not representable]
    if blocking:
        raise ConfigError(" ".join(blocking), path or None, blocking)
    try:
        return Limits(**values)
    except (ValueError, P2PError) as error:
        raise ConfigError(str(error), path or None) from None


def limits_from_json(obj: Any, path: str = "p2p.limits") -> Limits:
    """
    Read a ``limits`` object as ``P2p_limits.encoding`` does, quirks
    included: a missing ``connection-timeout`` is 5 s, missing
    ``max_known_points`` / ``max_known_peer_ids`` are unbounded (``None``).
    """
    obj = _object(obj, path)
    _closed(obj, LIMITS_KEYS.values(), path)
    values = _decoder_defaults()
    for field in _LIMITS_FIELDS:
        field_path = _join(path, field.key)
        if field.optional:
            value = _present(obj, field.key, path, "leave the field out for none")
            if value is not _MISSING:
                values[field.attr] = field.read(value, field_path)
        elif field.key in obj:
            values[field.attr] = field.read(obj[field.key], field_path)
    return _construct_limits(values, path)


def limits_to_json(limits: Limits, path: str = "p2p.limits") -> dict[str, Any]:
    """
    Every field, explicitly (so that neither decoder quirk applies when the
    result is read back); ``None`` of an ``opt`` field is written by leaving
    the key out, ``None`` of an ``option`` field as ``null``.  Raises
    :class:`ConfigError` for a value the file format cannot hold (say a
    ``binary_chunks_size`` over 255, which only the CLI can produce).
    """
    out: dict[str, Any] = {}
    for field in _LIMITS_FIELDS:
        value = getattr(limits, field.attr)
        if value is None and field.optional:
            continue
        out[field.key] = field.write(value, _join(path, field.key))
    return out


# -- Reconnection (behaviour.md 5) ------------------------------------------------------

_RECONNECTION_KEYS = ("factor", "initial-delay", "disconnection-delay", "increase-cap")


def reconnection_from_json(obj: Any, path: str = "p2p.greylisting_config") -> ReconnectionConfig:
    """``Point_reconnection_config.encoding``: every key optional, defaults as Octez."""
    obj = _object(obj, path)
    _closed(obj, _RECONNECTION_KEYS, path)
    default = ReconnectionConfig()
    return ReconnectionConfig(
        factor=_float(obj["factor"], _join(path, "factor")) if "factor" in obj else default.factor,
        initial_delay=(
            _span(obj["initial-delay"], _join(path, "initial-delay"))
            if "initial-delay" in obj
            else default.initial_delay
        ),
        disconnection_delay=(
            _span(obj["disconnection-delay"], _join(path, "disconnection-delay"))
            if "disconnection-delay" in obj
            else default.disconnection_delay
        ),
        increase_cap=(
            _span(obj["increase-cap"], _join(path, "increase-cap"))
            if "increase-cap" in obj
            else default.increase_cap
        ),
    )


def reconnection_to_json(config: ReconnectionConfig) -> dict[str, Any]:
    return {key: float(value) for key, value in config.to_json().items()}


# -- The p2p section (behaviour.md 11.2) -------------------------------------------------

_P2P_KEYS = (
    "expected-proof-of-work",
    "bootstrap-peers",
    "listen-addr",
    "advertised-net-port",
    "discovery-addr",
    "private-mode",
    "limits",
    "disable_mempool",
    "enable_testchain",
    "greylisting_config",
    "disable_peer_discovery",
)


def p2p_from_json(obj: Any, path: str = "p2p") -> P2PSection:
    """
    Read a present ``p2p`` object.  Keys it lacks take ``default_p2p``'s
    values, except ``listen-addr`` (an ``opt`` field: absent means no
    listening) and the ``limits`` quirks of :func:`limits_from_json`.
    """
    obj = _object(obj, path)
    _closed(obj, _P2P_KEYS, path)
    default = P2PSection()

    def flag(key: str, fallback: bool) -> bool:
        return _bool(obj[key], _join(path, key)) if key in obj else fallback

    peers = _present(obj, "bootstrap-peers", path, "leave the field out for the network's peers")
    listen = _present(obj, "listen-addr", path, "leave the field out to not listen")
    advertised = _present(obj, "advertised-net-port", path, "leave the field out for none")
    discovery = obj.get("discovery-addr")
    return P2PSection(
        expected_pow=(
            _float(obj["expected-proof-of-work"], _join(path, "expected-proof-of-work"))
            if "expected-proof-of-work" in obj
            else default.expected_pow
        ),
        bootstrap_peers=(
            None if peers is _MISSING else _strings(peers, _join(path, "bootstrap-peers"))
        ),
        listen_addr=None if listen is _MISSING else _string(listen, _join(path, "listen-addr")),
        advertised_net_port=(
            None
            if advertised is _MISSING
            else _integer(advertised, _join(path, "advertised-net-port"), 0, UINT16_MAX)
        ),
        discovery_addr=(
            None
            if discovery is None
            else _string(discovery, _join(path, "discovery-addr"), " or null")
        ),
        private_mode=flag("private-mode", default.private_mode),
        limits=(
            limits_from_json(obj["limits"], _join(path, "limits"))
            if "limits" in obj
            else default.limits
        ),
        disable_mempool=flag("disable_mempool", default.disable_mempool),
        enable_testchain=flag("enable_testchain", default.enable_testchain),
        reconnection=(
            reconnection_from_json(obj["greylisting_config"], _join(path, "greylisting_config"))
            if "greylisting_config" in obj
            else default.reconnection
        ),
        disable_peer_discovery=flag("disable_peer_discovery", default.disable_peer_discovery),
    )


def p2p_to_json(section: P2PSection, path: str = "p2p") -> dict[str, Any]:
    """The section with every key explicit; absent keys stand for ``None``."""
    out: dict[str, Any] = {"expected-proof-of-work": float(section.expected_pow)}
    if section.bootstrap_peers is not None:
        out["bootstrap-peers"] = list(section.bootstrap_peers)
    if section.listen_addr is not None:
        out["listen-addr"] = section.listen_addr
    if section.advertised_net_port is not None:
        out["advertised-net-port"] = _integer(
            section.advertised_net_port, _join(path, "advertised-net-port"), 0, UINT16_MAX
        )
    if section.discovery_addr is not None:
        out["discovery-addr"] = section.discovery_addr
    out["private-mode"] = section.private_mode
    out["limits"] = limits_to_json(section.limits, _join(path, "limits"))
    out["disable_mempool"] = section.disable_mempool
    out["enable_testchain"] = section.enable_testchain
    out["greylisting_config"] = reconnection_to_json(section.reconnection)
    out["disable_peer_discovery"] = section.disable_peer_discovery
    return out


# -- The network entry ----------------------------------------------------------------------


def network_from_json(value: Any, path: str = "network") -> Network:
    """Octez's ``sugared_blockchain_network_encoding``: an alias or a network object."""
    if isinstance(value, str):
        if value in NETWORKS:
            return NETWORKS[value]
        names = ", ".join(NETWORKS)
        raise ConfigError(
            f"unknown network {value!r} (expected one of {names}, or an object)", path
        )
    if not isinstance(value, dict):
        raise ConfigError(f"expected a network name or object, found {_describe(value)}", path)
    obj = _object(value, path)
    _closed(obj, _NETWORK_KEYS, path)
    if "chain_name" not in obj:
        raise ConfigError("missing field", _join(path, "chain_name"))
    return Network(
        None,
        _string(obj["chain_name"], _join(path, "chain_name")),
        (
            _string(obj["sandboxed_chain_name"], _join(path, "sandboxed_chain_name"))
            if "sandboxed_chain_name" in obj
            else "SANDBOXED_TEZOS"
        ),
        (
            _strings(obj["default_bootstrap_peers"], _join(path, "default_bootstrap_peers"))
            if "default_bootstrap_peers" in obj
            else ()
        ),
    )


# -- Whole files --------------------------------------------------------------------------


def parse_config(value: Any) -> NodeConfig:
    """
    Read a decoded Octez ``config.json``.  Unknown top-level sections are
    kept in ``raw`` and otherwise ignored.  Raises :class:`ConfigError`.
    """
    if not isinstance(value, dict):
        raise ConfigError(f"a node configuration is a JSON object, found {_describe(value)}")
    obj = _object(value, "")
    return NodeConfig(
        data_dir=_string(obj["data-dir"], "data-dir") if "data-dir" in obj else None,
        disable_config_validation=(
            _bool(obj["disable-config-validation"], "disable-config-validation")
            if "disable-config-validation" in obj
            else False
        ),
        network=network_from_json(obj["network"]) if "network" in obj else NETWORKS["mainnet"],
        p2p=p2p_from_json(obj["p2p"]) if "p2p" in obj else P2PSection(),
        raw=obj,
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"duplicate key {key!r} in an object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ConfigError(f"{name} is not JSON")


def parse_config_text(text: str | bytes, source: str = "configuration") -> NodeConfig:
    """Decode JSON text (UTF-8 when bytes) and read it with :func:`parse_config`."""
    if isinstance(text, bytes):
        if len(text) > MAX_CONFIG_FILE_SIZE:
            raise ConfigError(f"{source} is larger than {MAX_CONFIG_FILE_SIZE} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{source} is not UTF-8 text: {error.reason}") from None
    elif len(text) > MAX_CONFIG_FILE_SIZE:
        raise ConfigError(f"{source} is larger than {MAX_CONFIG_FILE_SIZE} bytes")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{source} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise ConfigError(f"{source} is nested too deeply") from None
    return parse_config(value)


def load_config_file(path: str, *, missing_ok: bool = False) -> NodeConfig:
    """
    Read an Octez node configuration file.  Files over 1 MiB, files that are
    not JSON and JSON that is not an object raise :class:`ConfigError`.  A
    missing file is an error too unless ``missing_ok``, which gives the
    defaults as Octez's ``Config_file.read`` does.
    """
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_CONFIG_FILE_SIZE:
                raise ConfigError(f"{path} is larger than {MAX_CONFIG_FILE_SIZE} bytes")
            data = handle.read(MAX_CONFIG_FILE_SIZE + 1)
    except FileNotFoundError:
        if missing_ok:
            return NodeConfig()
        raise ConfigError(f"{path}: no such file") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    return parse_config_text(data, path)


def config_to_json(config: NodeConfig) -> dict[str, Any]:
    """
    The configuration as an Octez file: ``raw`` with its ``data-dir``,
    ``disable-config-validation``, ``network`` and ``p2p`` entries replaced.
    ``parse_config`` reads the result back to an equal configuration.

    A built-in network is written as its alias (left out for mainnet when the
    file did not name a network, as Octez leaves out default values); any
    other network as an object, over the original object so that fields we
    do not model (``genesis``...) survive.  Such a network reads back with
    ``name`` ``None``.  The ``p2p`` section is written in full.
    """
    out = copy.deepcopy(config.raw)
    if config.data_dir is None:
        out.pop("data-dir", None)
    else:
        out["data-dir"] = config.data_dir
    if config.disable_config_validation:
        out["disable-config-validation"] = True
    else:
        out.pop("disable-config-validation", None)
    network = config.network
    if network.name is not None and NETWORKS.get(network.name) == network:
        if "network" in out or network != NETWORKS["mainnet"]:
            out["network"] = network.name
    else:
        previous = out.get("network")
        obj = dict(previous) if isinstance(previous, dict) else {}
        obj["chain_name"] = network.chain_name
        obj["sandboxed_chain_name"] = network.sandboxed_chain_name
        obj["default_bootstrap_peers"] = list(network.default_bootstrap_peers)
        out["network"] = obj
    out["p2p"] = p2p_to_json(config.p2p)
    return out


# -- Address text (wire.md 9.2; point_parser.mll) ----------------------------------------------

_DOMAIN = re.compile(r"[A-Za-z0-9.\-]+")
_IPV4_LIKE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6_CHARS = re.compile(r"[A-Fa-f0-9:.]+")
_DIGITS = re.compile(r"[0-9]+")
_PEER_ID = re.compile(r"[A-Za-z0-9]+")

_FORMAT = "expected <addr>[:<port>][#<peer_id>]"


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError(f"cannot parse {_clip(text, 80)!r}: {why}", reason=why)


def parse_peer_text(
    text: str, default_port: int = DEFAULT_P2P_PORT, *, default_host: str = DEFAULT_HOST
) -> tuple[str, int, PeerId | None]:
    """
    Parse ``<addr>[:<port>][#<peer_id>]`` as Octez's ``point_parser.mll``
    does: ``addr`` is a dotted IPv4 address, a bracketed IPv6 address, a DNS
    name, or empty / ``_`` for ``default_host``; the port is 0-65535; the
    peer id is Base58Check.  Returns ``(host, port, peer_id)`` with the
    brackets of an IPv6 host removed (the host still has to be resolved).

    Beyond Octez's grammar, bracketed text must be an IP address and a
    dotted quad must be a valid IPv4 address (Octez would hand either to
    ``getaddrinfo``, which finds nothing).
    """
    if not isinstance(text, str):
        raise ConfigError(f"expected a string, found {_describe(text)}")
    rest, hash_sign, peer_text = text.partition("#")
    if hash_sign and not _PEER_ID.fullmatch(peer_text):
        raise _bad(text, _FORMAT)
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise _bad(text, _FORMAT)
        host, after = rest[1:close], rest[close + 1 :]
        if not _IPV6_CHARS.fullmatch(host):
            raise _bad(text, _FORMAT)
        if after and not after.startswith(":"):
            raise _bad(text, _FORMAT)
        port_text: str | None = after[1:] if after else None
    else:
        host, colon, port_rest = rest.partition(":")
        port_text = port_rest if colon else None
        if ":" in port_rest:
            raise _bad(text, _FORMAT + " (write IPv6 addresses in brackets: [2001:db8::1]:9732)")
        if host not in ("", "_") and not _DOMAIN.fullmatch(host):
            raise _bad(text, _FORMAT)
    if port_text is not None and not _DIGITS.fullmatch(port_text):
        raise _bad(text, _FORMAT)
    port = default_port
    if port_text is not None:
        # int() refuses digit strings over 4300 characters; any over 5 is out of range.
        port = int(port_text) if len(port_text.lstrip("0")) <= 5 else UINT16_MAX + 1
        if port > UINT16_MAX:
            raise _bad(text, f"port '{_clip(port_text, 12)}' not in range [0-65535]")
    peer_id = None
    if hash_sign:
        try:
            peer_id = PeerId.from_b58check(peer_text)
        except (P2PError, ValueError):
            shown = _clip(peer_text, 40)
            raise _bad(text, f"peer id '{shown}' is not valid (b58 format expected)") from None
    if rest.startswith("["):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise _bad(text, f"'{_clip(host, 50)}' is not an IP address") from None
    elif host in ("", "_"):
        host = default_host
    elif _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _bad(text, f"'{host}' is not a valid IPv4 address") from None
    return host, port, peer_id


def parse_listen_addr(text: str) -> tuple[str, int]:
    """
    ``listen-addr`` / ``--net-addr``: ``Config_file.resolve_listening_addrs``
    (default host ``::``, port 9732).  A peer id is accepted and ignored, as
    Octez only warns about it.
    """
    host, port, _peer_id = parse_peer_text(text, DEFAULT_P2P_PORT, default_host=DEFAULT_HOST)
    return host, port


def parse_discovery_addr(text: str) -> tuple[str, int]:
    """
    ``discovery-addr``: ``Config_file.resolve_discovery_addrs`` (default host
    255.255.255.255, port 10732; addresses that are not IPv4 are dropped, so
    only IPv4 is usable).  IPv4-mapped IPv6 is converted as Octez's
    ``to_ipv4`` does; host names are refused (we do not resolve them here).
    A peer id is accepted and ignored.
    """
    host, port, _peer_id = parse_peer_text(
        text, DEFAULT_DISCOVERY_PORT, default_host=BROADCAST_HOST
    )
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _bad(text, "the discovery address must be an IPv4 address") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            raise _bad(text, "the discovery address must be an IPv4 address")
        address = address.ipv4_mapped
    return str(address), port


# -- Validation (config_validation.ml; behaviour.md 11.2, 11.3) ----------------------------------


def _address_problems(config: NodeConfig) -> list[str]:
    problems = []
    entries: list[tuple[str, str, Callable[[str], object]]] = []
    if config.p2p.bootstrap_peers is not None:
        entries += [
            (peer, "p2p.bootstrap-peers", parse_peer_text) for peer in config.bootstrap_peers
        ]
    else:
        # Octez's field name, spelling included.
        entries += [
            (peer, "network.default_bootstrap-peers", parse_peer_text)
            for peer in config.network.default_bootstrap_peers
        ]
    if config.p2p.listen_addr is not None:
        entries.append((config.p2p.listen_addr, "p2p.listen-addr", parse_listen_addr))
    if config.p2p.discovery_addr is not None:
        entries.append((config.p2p.discovery_addr, "p2p.discovery-addr", parse_discovery_addr))
    for addr, field, parse in entries:
        try:
            parse(addr)
        except ConfigError as error:
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
    pow_ = config.p2p.expected_pow
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
    if config.p2p.enable_testchain:
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


# -- Command line (shared_arg.ml) ------------------------------------------------------------------


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
            f"node (disable config validation to override)"
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
