# -*- test-case-name: tests.test_config -*-
"""
The node configuration file, as Octez writes and reads it: the ``network``
and ``p2p`` sections of ``config.json`` (behaviour.md 11.1, 11.2, 5, 9),
decoded into the node's one configuration tree
(:class:`~.tree.NodeConfig`) and written back from it.  Validation is in
:mod:`.validation`, the command line's derivations in :mod:`.command_line`,
the address text in :mod:`txtezosp2p.wire.addresses`.

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
``null``).  ``listen-addr`` becomes the one entry of ``p2p.listen`` (the P2P
layer reads Octez's ``ADDR:PORT`` there as well as endpoint strings), and is
written back from it.

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

The module runs past the house's ~600 lines on purpose: it is one codec, in
Octez's field order (limits, reconnection, the ``p2p`` section, the network,
whole files), each reader next to its writer.

Sources, all in ``tezos/tezos-mirror`` at the commit behaviour.md names
(``d26a8bef82``): ``src/lib_node_config/config_file.ml`` (sections, keys,
networks, ``resolve_*_addrs``), ``config_validation.ml`` (validation
messages), ``shared_arg.ml`` (``--connections``),
``src/lib_p2p_services/p2p_limits.ml``, ``point_reconnection_config.ml``,
``src/lib_base/point_parser.mll`` and ``src/lib_base/unix/p2p_resolve.ml``
(address text), ``src/bin_node/node_run_command.ml`` (use of the section),
``data-encoding/json-data-encoding/src/json_encoding.ml`` (closed objects,
integer checks).

The module is longer than our usual 600 lines because it mirrors Octez's
file section by section: each field's JSON codec sits with its check and
its default, so that a field is read, validated and written in one place.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable, Container, Mapping
from typing import Any

import attrs

from ...limits import Limits
from ...p2p_config import is_endpoint_string
from ...pool_state import ReconnectionConfig
from ...wire.errors import P2PError
from .tree import NETWORKS, NODE_P2P, ConfigError, Network, NodeConfig
from .validation import connection_findings

__all__ = [
    "LIMITS_KEYS",
    "MAX_CONFIG_FILE_SIZE",
    "config_to_json",
    "limits_from_json",
    "limits_to_json",
    "load_config_file",
    "network_from_json",
    "p2p_from_json",
    "p2p_to_json",
    "parse_config",
    "parse_config_text",
    "reconnection_from_json",
    "reconnection_to_json",
]

#: Largest configuration file we read.
MAX_CONFIG_FILE_SIZE = 1 << 20

UINT8_MAX = 0xFF
UINT16_MAX = 0xFFFF
#: data-encoding's ``int31`` JSON bound (``Json_encoding.int``).
INT31_MAX = (1 << 30) - 1
#: On-wire chunk sizes a ``uint8`` can hold that leave at least one plaintext byte.
CHUNKS_MIN = 19

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


def _construct_limits(values: dict[str, Any], path: str) -> Limits:
    # Limits refuses unordered bounds and a table target over its maximum:
    # report those with Octez's validation messages, at parse time.
    findings = connection_findings(
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


def p2p_from_json(obj: Any, path: str = "p2p") -> dict[str, Any]:
    """
    Read a present ``p2p`` object into the :class:`NodeConfig` fields it
    sets: ``p2p`` (the P2P layer's settings), ``bootstrap_peers`` and
    ``enable_testchain``.  Keys it lacks take ``default_p2p``'s values,
    except ``listen-addr`` (an ``opt`` field: absent means no listening) and
    the ``limits`` quirks of :func:`limits_from_json`.
    """
    obj = _object(obj, path)
    _closed(obj, _P2P_KEYS, path)
    default = NODE_P2P

    def flag(key: str, fallback: bool) -> bool:
        return _bool(obj[key], _join(path, key)) if key in obj else fallback

    peers = _present(obj, "bootstrap-peers", path, "leave the field out for the network's peers")
    listen = _present(obj, "listen-addr", path, "leave the field out to not listen")
    advertised = _present(obj, "advertised-net-port", path, "leave the field out for none")
    discovery = obj.get("discovery-addr")
    settings = attrs.evolve(
        default,
        proof_of_work_target=(
            _float(obj["expected-proof-of-work"], _join(path, "expected-proof-of-work"))
            if "expected-proof-of-work" in obj
            else default.proof_of_work_target
        ),
        listen=() if listen is _MISSING else (_string(listen, _join(path, "listen-addr")),),
        advertised_port=(
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
        reconnection=(
            reconnection_from_json(obj["greylisting_config"], _join(path, "greylisting_config"))
            if "greylisting_config" in obj
            else default.reconnection
        ),
        disable_peer_discovery=flag("disable_peer_discovery", default.disable_peer_discovery),
    )
    return {
        "p2p": settings,
        "bootstrap_peers": (
            None if peers is _MISSING else _strings(peers, _join(path, "bootstrap-peers"))
        ),
        "enable_testchain": flag("enable_testchain", False),
    }


def _listen_addr(config: NodeConfig, path: str) -> str | None:
    """The one ``listen-addr`` an Octez file can hold, from ``p2p.listen``."""
    listen = config.p2p.listen
    if not listen:
        return None
    if len(listen) > 1:
        raise ConfigError("an Octez file holds one listening address", path)
    if is_endpoint_string(listen[0]):
        raise ConfigError(
            f"{listen[0]!r} is an endpoint string, not an Octez address (ADDR:PORT)", path
        )
    return listen[0]


def p2p_to_json(config: NodeConfig, path: str = "p2p") -> dict[str, Any]:
    """The ``p2p`` section with every key explicit; absent keys stand for ``None``."""
    section = config.p2p
    out: dict[str, Any] = {"expected-proof-of-work": float(section.proof_of_work_target)}
    if config.bootstrap_peers is not None:
        out["bootstrap-peers"] = list(config.bootstrap_peers)
    listen_addr = _listen_addr(config, _join(path, "listen-addr"))
    if listen_addr is not None:
        out["listen-addr"] = listen_addr
    if section.advertised_port is not None:
        out["advertised-net-port"] = _integer(
            section.advertised_port, _join(path, "advertised-net-port"), 0, UINT16_MAX
        )
    if section.discovery_addr is not None:
        out["discovery-addr"] = section.discovery_addr
    out["private-mode"] = section.private_mode
    out["limits"] = limits_to_json(section.limits, _join(path, "limits"))
    out["disable_mempool"] = section.disable_mempool
    out["enable_testchain"] = config.enable_testchain
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
    p2p = p2p_from_json(obj["p2p"]) if "p2p" in obj else {}
    return NodeConfig(
        data_dir=_string(obj["data-dir"], "data-dir") if "data-dir" in obj else None,
        disable_config_validation=(
            _bool(obj["disable-config-validation"], "disable-config-validation")
            if "disable-config-validation" in obj
            else False
        ),
        network=network_from_json(obj["network"]) if "network" in obj else NETWORKS["mainnet"],
        raw=obj,
        **p2p,
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
    out["p2p"] = p2p_to_json(config)
    return out
