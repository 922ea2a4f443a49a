# -*- test-case-name: tests.test_tap -*-
"""
``twistd tezos-p2p``: command-line options and ``makeService``.

This module is loaded lazily by the plugin in
``twisted/plugins/txtezosp2p_plugin.py``; only :func:`makeService` touches
the global reactor, and only when none is passed in.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.python import usage

from .identity import DEFAULT_EXPECTED_POW
from .limits import Limits
from .node import DEFAULT_DATA_DIR, DEFAULT_LISTEN, Node, NodeOptions, parse_peer
from .session import MAINNET


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


class Options(usage.Options):
    """Options of ``twistd tezos-p2p``."""

    synopsis = "[options]"
    longdesc = (
        "Run a Tezos P2P node: load (or generate on first start) the identity in "
        "the data directory, listen for peers, dial the given points, and log "
        "every established session."
    )

    optParameters = [
        ["data-dir", "d", DEFAULT_DATA_DIR, "Data directory (holds identity.json)."],
        [
            "expected-pow",
            None,
            DEFAULT_EXPECTED_POW,
            "Proof-of-work difficulty required from peers, also used to generate our own identity.",
            _difficulty,
        ],
        ["chain-name", None, MAINNET, "Chain name announced and required from peers."],
        [
            "advertised-port",
            None,
            None,
            "Port announced to peers (default: the listening port).",
            _port,
        ],
        [
            "max-download-speed",
            None,
            None,
            "Cap on the total download rate, in KiB/s (default: none).",
            _speed,
        ],
        [
            "max-upload-speed",
            None,
            None,
            "Cap on the total upload rate, in KiB/s (default: none).",
            _speed,
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

    def opt_listen(self, description: str) -> None:
        """
        Listen on an endpoint string (repeatable), e.g. tcp:9732 or
        tcp:9732:interface=\\:\\: (default: tcp:9732).
        """
        from twisted.internet.endpoints import serverFromString

        try:
            # parse only: the endpoint is built again on the real reactor
            serverFromString(None, description)
        except (ValueError, KeyError, TypeError) as exc:
            raise usage.UsageError(f"invalid endpoint {description!r}: {exc}") from exc
        self["listen"].append(description)

    def opt_peer(self, point: str) -> None:
        """Dial HOST:PORT at start and stay connected (repeatable)."""
        try:
            parse_peer(point)
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from exc
        self["peers"].append(point)

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]

    def node_options(self) -> NodeOptions:
        return NodeOptions(
            data_dir=self["data-dir"],
            listen=tuple(self["listen"]),
            peers=tuple(self["peers"]),
            expected_pow=self["expected-pow"],
            chain_name=self["chain-name"],
            advertised_port=self["advertised-port"],
            limits=Limits(
                max_download_speed=self["max-download-speed"],
                max_upload_speed=self["max-upload-speed"],
            ),
            identity_workers=self["identity-workers"],
        )


def makeService(config: Options, reactor: Any = None) -> IService:
    """Build the node service; the global reactor is used only when none is given."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    return Node(reactor, config.node_options())
