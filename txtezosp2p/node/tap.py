# -*- test-case-name: tests.test_node -*-
"""
``twistd tezos-p2p``: command-line options and ``makeService``.

Settings come from three places, each overriding the previous one:
built-in defaults, an Octez configuration file (``--config-file``, or
``config.json`` in the data directory when it exists; its ``network`` and
``p2p`` sections are read as Octez reads them, other sections are ignored),
and the command line.  The same validation as Octez's applies; a problem is
reported as a usage error, before anything starts.

This module is loaded lazily by the plugin in
``twisted/plugins/txtezosp2p_plugin.py``; only :func:`makeService` touches
the global reactor, and only when none is passed in.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

import attrs
from twisted.application.service import IService
from twisted.internet.defer import CancelledError
from twisted.python import usage
from twisted.python.failure import Failure

from .. import __version__
from .. import log as log_level
from ..limits import ADMISSION_POLICIES, Limits
from ..observer import ObserverConfig
from ..p2p_config import listen_description
from ..wire.addresses import AddressError, parse_discovery_addr, parse_peer_text
from ..wire.errors import DecodingError
from ..wire.shell_types import ChainId
from .admin import check_admin_endpoint
from .composition import Node, NodeStartError
from .config import (
    CONFIG_FILE,
    DEFAULT_DISCOVERY_PORT,
    MAX_CONNECTIONS_ARGUMENT,
    NETWORKS,
    AdminSettings,
    ConfigError,
    NodeConfig,
    check,
    connections_limits,
    default_data_dir,
    load_config_file,
    peer_table,
    validation_warnings,
)
from .logs import LEVELS, policy_observer, with_log_policy

#: Where the admin API listens by default: loopback only, on a port that
#: collides neither with octez-node's RPC (8732) nor with its P2P port (9732).
DEFAULT_ADMIN_PORT = 8742
DEFAULT_ADMIN = f"tcp:{DEFAULT_ADMIN_PORT}:interface=127.0.0.1"


def _difficulty(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 256.0:
        raise ValueError("the proof-of-work difficulty must be within [0, 256]")
    return number


_difficulty.coerceDoc = "A float within [0, 256]."  # type: ignore[attr-defined]


def _port(value: str) -> int:
    number = int(value)
    if not 0 < number <= 0xFFFF:
        raise ValueError("a port is within [1, 65535]")
    return number


def _speed(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("a speed is a positive number of KiB/s")
    return number


_speed.coerceDoc = "A positive integer."  # type: ignore[attr-defined]


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("a count is a non-negative integer")
    return number


def _admission(value: str) -> str:
    if value not in ADMISSION_POLICIES:
        raise ValueError(f"one of {', '.join(ADMISSION_POLICIES)}")
    return value


_admission.coerceDoc = "elastic or octez."  # type: ignore[attr-defined]


def _seconds(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("a duration is a positive number of seconds")
    return number


_seconds.coerceDoc = "Positive seconds."  # type: ignore[attr-defined]


def _log_level(value: str) -> str:
    if value not in LEVELS:
        raise ValueError(f"a log level is one of {', '.join(LEVELS)}")
    return value


_log_level.coerceDoc = "One of debug, info, warn, error."  # type: ignore[attr-defined]


class CommandOptions(usage.Options):
    """
    The options of ``twistd tezos-p2p``, turned into a :class:`NodeConfig`
    (:meth:`node_config`); errors are ``usage.UsageError``.
    """

    synopsis = "[options]"
    longdesc = (
        "Run a Tezos P2P node: load (or generate on first start) the identity in "
        "the data directory, listen for peers, dial the bootstrap peers, keep the "
        "number of connections within bounds, and save known peers in peers.json. "
        "Settings are read from an Octez configuration file (its p2p and network "
        "sections), then overridden by these options."
    )

    optFlags = [
        ["private-mode", None, "Only connect to trusted points; never advertised by peers."],
        [
            "no-bootstrap-peers",
            None,
            "Ignore the bootstrap peers of the configuration file and the network.",
        ],
        ["discovery", None, "Enable LAN discovery on 255.255.255.255:10732."],
        ["trust-discovered-peers", None, "Trust the points found by LAN discovery."],
        ["disable-mempool", None, "Announce to peers that we do not want mempool messages."],
        ["disable-peer-discovery", None, "Neither ask peers for points nor share ours."],
        ["disable-p2p-maintenance", None, "Do not dial or drop connections automatically."],
        ["disable-p2p-swap", None, "Neither propose nor accept connection swaps."],
        [
            "disable-config-validation",
            None,
            "Skip Octez's configuration checks (only the P2P layer's own checks remain).",
        ],
        ["no-peers-file", None, "Neither load nor save peers.json."],
        ["no-admin", None, "Do not serve the admin HTTP API."],
        [
            "observe",
            None,
            "Observer mode: ask peers for their chain's gossip, answer nothing, record "
            "heads and first sightings (admin API /observer/*).",
        ],
        [
            "admin-allow-public",
            None,
            "Allow the admin API on a non-loopback address (it has no authentication).",
        ],
    ]

    optParameters = [
        [
            "data-dir",
            "d",
            None,
            "Data directory: identity.json, peers.json, config.json, lock (default: "
            "~/.tezos-p2p, or the data-dir of the configuration file).",
        ],
        [
            "config-file",
            "c",
            None,
            f"Octez configuration file (JSON; default: {CONFIG_FILE} in the data "
            f"directory, when it exists).",
        ],
        [
            "network",
            None,
            None,
            "Network whose chain name and bootstrap peers to use: "
            + ", ".join(NETWORKS)
            + " (default: the configuration file's, else mainnet).",
        ],
        ["chain-name", None, None, "Chain name announced and required from peers."],
        [
            "expected-pow",
            None,
            None,
            "Proof-of-work difficulty required from peers, also used to generate our "
            "own identity (default: 26)",
            _difficulty,
        ],
        [
            "connections",
            None,
            None,
            "Expected number of connections N: min N/2, max 3N/2, peer tables 8N "
            f"(at most {MAX_CONNECTIONS_ARGUMENT} without --disable-config-validation).",
            _count,
        ],
        [
            "admission",
            None,
            None,
            "Who gets a connection slot: 'elastic' (default: a newcomer finds room "
            "while the network has capacity) or 'octez' (Octez's exact rule: refuse "
            "at max_threshold); see docs/admission.md.",
            _admission,
        ],
        [
            "peer-table-size",
            None,
            None,
            "Size of the known points and peers tables (garbage-collected to 3/4).",
            _count,
        ],
        [
            "advertised-port",
            None,
            None,
            "Port announced to peers (default: the listening port).",
            _port,
        ],
        [
            "discovery-addr",
            None,
            None,
            f"Enable LAN discovery, announcing to ADDR[:PORT] (IPv4; default port "
            f"{DEFAULT_DISCOVERY_PORT}).",
        ],
        [
            "max-download-speed",
            None,
            None,
            "Cap on the total download rate, in KiB/s (default: none)",
            _speed,
        ],
        [
            "max-upload-speed",
            None,
            None,
            "Cap on the total upload rate, in KiB/s (default: none)",
            _speed,
        ],
        [
            "maintenance-idle-time",
            None,
            None,
            "Seconds between two maintenance steps when nothing happens (default: 120)",
            _seconds,
        ],
        [
            "peers-file-interval",
            None,
            300.0,
            "Seconds between two saves of peers.json (it is also saved at shutdown)",
            _seconds,
        ],
        [
            "observe-chain-id",
            None,
            None,
            "Chain id to observe, Net... (default: learned from the first peer that names one).",
        ],
        [
            "observe-window",
            None,
            3600.0,
            "Seconds a block or operation sighting is kept, in observer mode",
            _seconds,
        ],
        ["observe-max-blocks", None, 1000, "Block sightings kept at most", int],
        ["observe-max-operations", None, 5000, "Operation sightings kept at most", int],
        [
            "log-level",
            None,
            "info",
            "Lowest level of the node's events in twistd's log: debug, info, warn or error "
            "(Twisted's own chatter is left out; see docs/operating.md).",
            _log_level,
        ],
        [
            "identity-workers",
            None,
            None,
            "Threads used to mine a new identity (default: one per core).",
            int,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["peers"] = []
        self["admin"] = []
        self.config: NodeConfig | None = None
        self.config_path: str | None = None
        self.warnings: list[str] = []

    def opt_version(self) -> None:
        """Print the version of txtezosp2p and exit."""
        from twisted import __version__ as twisted_version

        print(f"txtezosp2p {__version__} (Twisted {twisted_version})")
        raise SystemExit(0)

    def opt_listen(self, description: str) -> None:
        """Listen on an endpoint string (tcp:9732:interface=127.0.0.1) or ADDR:PORT (127.0.0.1:9732, [::]:9732); repeatable (default: the configuration file's listen-addr, else [::]:9732, every address)."""  # noqa: E501
        try:
            # checked (and names resolved) now; the endpoint is built on the real reactor
            listen_description(description)
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from exc
        self["listen"].append(description)

    def opt_net_addr(self, address: str) -> None:
        """Octez's --net-addr ADDR:PORT: the same as --listen ADDR:PORT."""
        try:
            parse_peer_text(address)
        except AddressError as exc:
            raise usage.UsageError(f"--net-addr: {exc}") from exc
        self.opt_listen(address)

    def opt_admin(self, description: str) -> None:
        """Serve the admin HTTP API on an endpoint string (repeatable; default: tcp:8742:interface=127.0.0.1)."""  # noqa: E501
        from twisted.internet.endpoints import serverFromString

        try:
            serverFromString(None, description)
        except (ValueError, KeyError, TypeError) as exc:
            raise usage.UsageError(f"invalid endpoint {description!r}: {exc}") from exc
        self["admin"].append(description)

    def opt_peer(self, point: str) -> None:
        """A bootstrap peer HOST[:PORT][#PEER_ID], trusted and dialled first (repeatable; added to the configuration file's)."""  # noqa: E501
        try:
            parse_peer_text(point.strip())
        except AddressError as exc:
            raise usage.UsageError(str(exc)) from exc
        self["peers"].append(point)

    def _load_config(self) -> NodeConfig:
        path = self["config-file"]
        if path is None:
            data_dir = self["data-dir"] or default_data_dir()
            default = os.path.join(data_dir, CONFIG_FILE)
            if not os.path.exists(default):
                self.config_path = None
                return NodeConfig()
            path = default
        self.config_path = path
        try:
            # its messages name the file
            return load_config_file(path)
        except ConfigError as exc:
            message = str(exc)
            raise usage.UsageError(message if path in message else f"{path}: {message}") from exc

    def postOptions(self) -> None:
        config = self._load_config()
        if self["network"] is not None:
            if self["network"] not in NETWORKS:
                raise usage.UsageError(
                    f"unknown network {self['network']!r} (known: {', '.join(NETWORKS)})"
                )
            config = attrs.evolve(config, network=NETWORKS[self["network"]])
        if self["disable-config-validation"]:
            config = attrs.evolve(config, disable_config_validation=True)
        try:
            config = self._derive(config)
            check(config)
        except ValueError as exc:  # ConfigError, a limit Limits refuses
            raise usage.UsageError(str(exc)) from exc
        self.config = config
        self.warnings = validation_warnings(config)

    def _derive(self, config: NodeConfig) -> NodeConfig:
        """The configuration file's tree evolved by the command line."""
        node: dict[str, Any] = {}
        p2p: dict[str, Any] = {}
        if self["data-dir"] is not None:
            node["data_dir"] = self["data-dir"]
        if self["chain-name"] is not None:
            node["network"] = attrs.evolve(config.network, chain_name=self["chain-name"])
        bootstrap = () if self["no-bootstrap-peers"] else config.effective_bootstrap_peers
        if self["no-bootstrap-peers"] or self["peers"]:
            node["bootstrap_peers"] = (*bootstrap, *self["peers"])
        if self["identity-workers"] is not None:
            node["identity_workers"] = self["identity-workers"]
        if self["observe"]:
            node["observe"] = self._observer_config()
        if not self["no-admin"]:
            admin = tuple(self["admin"]) or (DEFAULT_ADMIN,)
            for description in admin:
                try:
                    check_admin_endpoint(description, self["admin-allow-public"])
                except ValueError as exc:
                    raise usage.UsageError(f"{exc} (--admin-allow-public)") from exc
            node["admin"] = AdminSettings(endpoints=admin, allow_public=self["admin-allow-public"])
        if self["listen"]:
            p2p["listen"] = tuple(self["listen"])
        if self["expected-pow"] is not None:
            p2p["proof_of_work_target"] = self["expected-pow"]
        if self["advertised-port"] is not None:
            p2p["advertised_port"] = self["advertised-port"]
        for flag in (
            "private-mode",
            "disable-mempool",
            "disable-peer-discovery",
            "trust-discovered-peers",
        ):
            if self[flag]:
                p2p[flag.replace("-", "_")] = True
        if self["discovery-addr"] is not None:
            parse_discovery_addr(self["discovery-addr"])
            p2p["discovery_addr"] = self["discovery-addr"]
        elif self["discovery"]:
            p2p["discovery_addr"] = ""
        if self["no-peers-file"]:
            p2p["peers_file"] = None
        p2p["peers_file_interval"] = self["peers-file-interval"]
        p2p["limits"] = self._limits(config)
        return attrs.evolve(config, p2p=attrs.evolve(config.p2p, **p2p), **node)

    def _limits(self, config: NodeConfig) -> Limits:
        limits = config.p2p.limits
        if self["connections"] is not None:
            limits = connections_limits(
                self["connections"],
                limits,
                self["peer-table-size"],
                allow_more=config.disable_config_validation,
            )
        elif self["peer-table-size"] is not None:
            table = peer_table(self["peer-table-size"])
            limits = limits.replace(max_known_points=table, max_known_peer_ids=table)
        changes: dict[str, Any] = {}
        for option, field in (
            ("max-download-speed", "max_download_speed"),
            ("max-upload-speed", "max_upload_speed"),
            ("maintenance-idle-time", "maintenance_idle_time"),
            ("admission", "admission"),
        ):
            if self[option] is not None:
                changes[field] = self[option]
        if self["disable-p2p-maintenance"]:
            changes["maintenance_idle_time"] = None
        if self["disable-p2p-swap"]:
            changes["swap_linger"] = None
        return limits.replace(**changes) if changes else limits

    def _observer_config(self) -> ObserverConfig:
        chain_id = None
        if self["observe-chain-id"] is not None:
            try:
                chain_id = ChainId.from_b58check(self["observe-chain-id"])
            except DecodingError as exc:
                raise usage.UsageError(f"--observe-chain-id: {exc}") from exc
        return ObserverConfig(
            chain_id=chain_id,
            window=self["observe-window"],
            max_blocks=self["observe-max-blocks"],
            max_operations=self["observe-max-operations"],
        )

    def node_config(self) -> NodeConfig:
        """The configuration of the node to run (after :meth:`parseOptions`)."""
        if self.config is None:
            raise RuntimeError("the options are not parsed")
        return self.config


class Options(CommandOptions):
    """
    ``twistd tezos-p2p``'s options: a usage error is one line on standard
    error and exit status 1, instead of twistd's whole usage text.
    """

    def parseOptions(self, options: Any = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as error:
            raise SystemExit(
                f"twistd tezos-p2p: {error} (twistd tezos-p2p --help lists the options)"
            ) from None


class ExitStatus:
    """
    The status twistd's process ends with.  twistd always exits 0 after its
    reactor stops; a node that could not start must end non-zero, so the
    status is set at the very end of the interpreter's exit (after twistd
    removed its pid file and flushed its log).
    """

    def __init__(self, register: Callable[[Callable[[], None]], object] = atexit.register) -> None:
        self.status = 0
        self._register = register
        self._registered = False

    def fail(self, status: int = 1) -> None:
        self.status = status
        if not self._registered:
            self._registered = True
            self._register(self._exit)

    def _exit(self) -> None:  # pragma: no cover - runs as the interpreter exits
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(self.status)


def stop_on_start_failure(
    node: Node, reactor: Any, stderr: TextIO | None, exit_status: ExitStatus | None
) -> None:
    """
    When ``node`` cannot start: its reason on one line of ``stderr`` (the
    log has it too), the reactor stopped (now, or as soon as it runs), and
    the process's exit status set to 1.
    """

    def failed(failure: Failure) -> None:
        if failure.check(CancelledError):
            return
        reason = failure.getErrorMessage() if failure.check(NodeStartError) else repr(failure.value)
        if stderr is not None:
            try:
                stderr.write(f"twistd tezos-p2p: {reason}\n")
                stderr.flush()
            except (OSError, ValueError):  # pragma: no cover - a daemon's closed descriptor
                pass
        if exit_status is not None:
            exit_status.fail()
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    node.when_ready().addErrback(failed)


def makeService(config: Options, reactor: Any = None) -> IService:
    """
    Build the node service; the global reactor is used only when none is
    given.  Under twistd (the global reactor), a node that cannot start ends
    the process with its reason on standard error and exit status 1.
    """
    under_twistd = reactor is None
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    from .. import _events as ev

    log = ev.logger("p2p.node")
    for warning in config.warnings:
        log.warn("{warning}", event=ev.CONFIG_VALIDATION_WARNING, warning=warning)
    node = Node(reactor, config.node_config())
    if not under_twistd:
        return node
    # twistd redirects sys.stderr to its log; the terminal is the original one
    stop_on_start_failure(node, reactor, sys.__stderr__, ExitStatus())
    level = LEVELS[config["log-level"]]
    # the library builds no event below its level (txtezosp2p.log): --log-level debug raises it
    log_level.set_level(level)
    return with_log_policy(node, policy_observer(getattr(config, "parent", None), level))
